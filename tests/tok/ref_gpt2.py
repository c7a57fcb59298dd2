#!/usr/bin/python3
"""A second reference with GPT-2's own semantics: openai's encoder.py algorithm (SPEC 7.2-7.3), written
here from the spec, on Python's third-party `regex` module (Debian python3-regex), as GPT-2 ran it.
  ref_gpt2.py encode ENCODER_JSON VOCAB_BPE OUT.bin DOC.json...   ids, same format as ref_encode.js
  ref_gpt2.py diffs DIFFS.txt    checks that each code point a JavaScript engine classes differently is
                                 U+0085/U+FEFF (whitespace rules) or unassigned in the regex module's Unicode"""
import json
import struct
import sys

import regex

PAT = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")


def byte_alphabet():
    printable = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(0x100 + extra)
            extra += 1
    return table


def bpe(word, ranks):
    word = list(word)
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float('inf')))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = merged
    return word


def encode_cmd(encoder_path, vocab_path, out_path, docs):
    encoder = json.load(open(encoder_path, encoding='utf-8'))
    lines = open(vocab_path, encoding='utf-8').read().split('\n')[1:-1]
    ranks = {tuple(line.split()): i for i, line in enumerate(lines)}
    alphabet = byte_alphabet()
    cache = {}
    with open(out_path, 'wb') as out:
        for path in docs:
            for text in json.load(open(path, encoding='utf-8')):
                ids = []
                for piece in PAT.findall(text):
                    word = ''.join(alphabet[b] for b in piece.encode('utf-8'))
                    if word not in cache:
                        cache[word] = [encoder[t] for t in bpe(word, ranks)]
                    ids += cache[word]
                out.write(struct.pack('<I%dI' % len(ids), len(ids), *ids))


def diffs_cmd(path):
    unassigned = regex.compile(r'\p{Cn}')
    bad = 0
    counts = {'whitespace': 0, 'unassigned': 0}
    for line in open(path):
        cp = int(line.split()[0], 16)
        if cp in (0x85, 0xFEFF):
            counts['whitespace'] += 1
        elif unassigned.match(chr(cp)):
            counts['unassigned'] += 1
        else:
            bad += 1
            print('# U+%04X: classed differently but assigned in the regex module' % cp)
    print('# JavaScript classes differ on %d whitespace code points (U+0085, U+FEFF) and %d code points '
          'unassigned in Unicode 15.0 (python3-regex, module version %s); GPT-2\'s side is the regex module\'s'
          % (counts['whitespace'], counts['unassigned'], regex.__version__))
    print('ok tok_js_differences_explained' if not bad else
          'FAIL tok_js_differences_explained: %d code points unexplained' % bad)


if __name__ == '__main__':
    if sys.argv[1] == 'encode':
        encode_cmd(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:])
    else:
        diffs_cmd(sys.argv[2])
