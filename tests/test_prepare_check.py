#!/usr/bin/python3
"""Checks of bin/prepare's shards for tests/test_prepare.sh; prints "ok NAME" / "FAIL NAME: why".
  docs SHARD DOCS.json NAME         the shard's documents are exactly the GPT-2 tokens (tests/tok/ref_gpt2.py's
                                    algorithm) of the byte strings in DOCS.json (a list of latin-1 strings of
                                    the raw bytes, invalid UTF-8 decoded with errors='replace'), each + EOT
  alpaca SHARD EXPECT.json NAME     per example: decode(mask-0 tokens) == prompt, mask-1 tokens == output
                                    tokens + EOT (or cut to max, no EOT), given [[prompt, output, max]...]
  same A B NAME                     two shards hold identical datasets and attributes
  attr SHARD KEY VALUE NAME"""
import json
import os
import sys

import h5py
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), 'tok'))
import ref_gpt2  # noqa: E402

CACHE = os.environ.get('MESHTRAIN_CACHE', os.path.join(os.path.dirname(__file__), '..', '.cache'))
ENC = json.load(open(os.path.join(CACHE, 'gpt2', 'encoder.json'), encoding='utf-8'))
DEC = {v: k for k, v in ENC.items()}
LINES = open(os.path.join(CACHE, 'gpt2', 'vocab.bpe'), encoding='utf-8').read().split('\n')[1:-1]
RANKS = {tuple(line.split()): i for i, line in enumerate(LINES)}
ALPHA = ref_gpt2.byte_alphabet()
BYTE = {v: k for k, v in ALPHA.items()}


def encode(text):
    ids = []
    for piece in ref_gpt2.PAT.findall(text):
        word = ''.join(ALPHA[b] for b in piece.encode('utf-8'))
        ids += [ENC[t] for t in ref_gpt2.bpe(word, RANKS)]
    return ids


def decode(ids):
    return bytes(BYTE[c] for i in ids for c in DEC[int(i)]).decode('utf-8', errors='replace')


def report(ok, name, why=''):
    print('ok ' + name if ok else 'FAIL %s: %s' % (name, why))


def check_docs(shard, docs_path, name):
    f = h5py.File(shard, 'r')
    tok, off = f['tokens'][:], f['doc_offsets'][:]
    want = [bytes(d, 'latin-1').decode('utf-8', errors='replace') for d in json.load(open(docs_path))]
    if len(off) != len(want) + 1 or off[0] != 0 or off[-1] != len(tok) or f.attrs['n_docs'] != len(want):
        return report(False, name, 'doc_offsets %s for %d documents' % (list(off[:10]), len(want)))
    for i, text in enumerate(want):
        got = list(tok[off[i]:off[i + 1]])
        exp = encode(text) + [50256]
        if got != exp:
            return report(False, name, 'document %d: got %s, want %s' % (i, got[:20], exp[:20]))
    attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    ok = attrs['tokenizer'] == 'gpt2' and attrs['vocab_size'] == 50257 and attrs['eot_token'] == 50256 and \
        attrs['format'] == 'meshtrain.tokens' and attrs['n_tokens'] == len(tok) and tok.dtype == np.uint16
    report(ok, name, 'attributes %s' % attrs)


def check_alpaca(shard, exp_path, name):
    f = h5py.File(shard, 'r')
    tok, mask, off = f['tokens'][:], f['loss_mask'][:], f['doc_offsets'][:]
    exp = json.load(open(exp_path))
    if len(off) != len(exp) + 1:
        return report(False, name, '%d documents, want %d' % (len(off) - 1, len(exp)))
    for i, (prompt, output, cut) in enumerate(exp):
        t, m = list(tok[off[i]:off[i + 1]]), list(mask[off[i]:off[i + 1]])
        np_ = m.index(1) if 1 in m else len(m)
        resp = encode(output) + [50256]
        if cut:
            resp = resp[:cut - len(encode(prompt))]
        if decode(t[:np_]) != prompt or t[:np_] != encode(prompt) or any(m[:np_]) or not all(m[np_:]) or \
                t[np_:] != resp:
            return report(False, name, 'example %d: prompt %r, response %s, want %s' %
                          (i, decode(t[:np_]), t[np_:], resp))
    report(True, name)


def check_same(a, b, name):
    fa, fb = h5py.File(a, 'r'), h5py.File(b, 'r')
    if sorted(fa) != sorted(fb) or dict(fa.attrs) != dict(fb.attrs):
        return report(False, name, 'datasets or attributes differ')
    for k in fa:
        if not np.array_equal(fa[k][:], fb[k][:]):
            return report(False, name, 'dataset %s differs' % k)
    report(True, name)


def check_attr(shard, key, value, name):
    v = h5py.File(shard, 'r').attrs.get(key)
    v = v.decode() if isinstance(v, bytes) else str(v)
    report(v == value, name, '%s = %r, want %r' % (key, v, value))


if __name__ == '__main__':
    cmd, args = sys.argv[1], sys.argv[2:]
    {'docs': check_docs, 'alpaca': check_alpaca, 'same': check_same, 'attr': check_attr}[cmd](*args)
