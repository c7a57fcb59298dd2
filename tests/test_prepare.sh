#!/usr/bin/env bash
# bin/prepare text/jsonl/pile/alpaca (DESIGN 6): token ids against tests/tok/ref_gpt2.py's algorithm, EOT
# after every document, /doc_offsets, /doc_source, the validation split, shard cutting, every bad-input
# case (warning + count by default, exit 2 with --strict), Alpaca loss masks, two MPI ranks against one,
# and the real nlp-corpus end to end.
set -u
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
CHK="$PY tests/test_prepare_check.py"
P=bin/prepare
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
if ! make -s --no-print-directory vocab >/dev/null; then
    echo "FAIL prep_vocab: make vocab failed (needs npm once; see MESHTRAIN_CACHE)"
    exit 1
fi
ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
# expect NAME CODE PATTERN -- CMD...: exit code CODE and a stderr line matching PATTERN
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    if [ "$rc" -eq "$code" ] && grep -qE -- "$pattern" "$tmp/err"; then ok "$name"; else
        fail "$name" "exit $rc (want $code), want /$pattern/ in: $(head -c 400 "$tmp/err")"; fi
}
summary_has() { # NAME PATTERN: the last run's summary
    grep -qE -- "$2" "$tmp/err" && ok "$1" || fail "$1" "no /$2/ in: $(tail -c 600 "$tmp/err")"
}

# ---- text: .txt files (bytes as they are, \r\n, invalid UTF-8) and a JSON array (lone surrogate) ----
mkdir -p "$tmp/txt/sub"
printf 'Hello world\r\nline two\n' >"$tmp/txt/a.txt"
printf 'bad \xff\xfe bytes and caf\xc3\xa9' >"$tmp/txt/sub/b.txt"
: >"$tmp/txt/c.txt"
printf '["first doc", "second \\ud800 doc", 5, "", "emoji \\ud83d\\ude00 \\u00e9 \\n\\"q\\""]' >"$tmp/arr.json"
$PY - "$tmp" <<'PYEOF'
import json, sys
t = sys.argv[1]
json.dump(['Hello world\r\nline two\n', 'bad \xff\xfe bytes and caf\xc3\xa9'], open(t + '/txt.want', 'w'))
json.dump(['first doc', 'second \xef\xbf\xbd doc', 'emoji \xf0\x9f\x98\x80 \xc3\xa9 \n"q"'], open(t + '/arr.want', 'w'))
PYEOF
expect text.run 0 "done: 2 sources, 5 documents" -- $P text --in "$tmp/txt" "$tmp/arr.json" --out "$tmp/o1" --val-fraction 0
summary_has text.warn-not-string "warning: .*arr.json:1: element 2 is not a string; skipped"
summary_has text.counts "skipped 1 records .*missing field 1.*2 empty documents.* 3 U\+FFFD replacements"
$CHK docs "$tmp/o1/train/txt-00000.h5" "$tmp/txt.want" text.txt-docs
$CHK docs "$tmp/o1/train/arr-00000.h5" "$tmp/arr.want" text.json-docs
$CHK attr "$tmp/o1/train/txt-00000.h5" source "text files: txt (3 files)" text.source-attr
[ -z "$(ls "$tmp/o1/val")" ] && ok text.no-val || fail text.no-val "val shards with --val-fraction 0"
expect text.strict 2 "arr.json:1: element 2 is not a string \(--strict\)" -- \
    $P text --in "$tmp/arr.json" --out "$tmp/o2" --strict
[ -z "$(ls "$tmp/o2/train")" ] && ok text.strict-no-shard || fail text.strict-no-shard "$(ls "$tmp/o2/train")"
printf '["a", "b",\n "c" 7]' >"$tmp/broken.json"
expect text.bad-array 2 "^prepare: .*broken.json: invalid JSON at byte 16 \(line 2\): expected ',' or ']'" -- \
    $P text --in "$tmp/broken.json" --out "$tmp/o3"

# ---- jsonl and the Pile (.zst): fields, meta.pile_set_name, bad records ----
cat >"$tmp/p1.jsonl" <<'JSONL'
{"text": "It is a doc.", "meta": {"pile_set_name": "Pile-CC"}}
{"text": "Another one\nwith lines", "meta": {"pile_set_name": "Github"}}
{"text": "broken", "meta":
{"meta": {"pile_set_name": "ArXiv"}}
{"text": 12}

{"text": "Third \ud83d", "meta": {"pile_set_name": "Pile-CC"}}
{"text": "no meta"}
JSONL
printf '%s\n' "It is a doc." $'Another one\nwith lines' 'Third \xef\xbf\xbd' 'no meta' |
    $PY -c 'import json,sys; d=open(sys.argv[1],"rb").read().decode("latin-1").split("\n"); json.dump(["It is a doc.", d[1]+"\n"+d[2], d[3], d[4]], open(sys.argv[2],"w"))' /dev/stdin "$tmp/p1.want"
$PY - "$tmp" <<'PYEOF'
import json, sys
t = sys.argv[1]
json.dump(['It is a doc.', 'Another one\nwith lines', 'Third \xef\xbf\xbd', 'no meta'], open(t + '/p1.want', 'w'))
PYEOF
zstd -q -f "$tmp/p1.jsonl" -o "$tmp/p1.jsonl.zst"
for src in p1.jsonl p1.jsonl.zst; do
    expect "pile.run.$src" 0 "done: 1 sources, 4 documents" -- $P pile --in "$tmp/$src" --out "$tmp/o4.$src" --val-fraction 0
    summary_has "pile.warn-json.$src" "warning: .*$src:3: invalid JSON at byte [0-9]+ of the line"
    summary_has "pile.warn-field.$src" "warning: .*$src:4: field \"text\" is missing; skipped"
    summary_has "pile.warn-type.$src" "warning: .*$src:5: field \"text\" is not a string; skipped"
    summary_has "pile.counts.$src" "skipped 3 records \(malformed JSON 1, missing field 2.* 1 U\+FFFD"
    $CHK docs "$tmp/o4.$src/train/p1-00000.h5" "$tmp/p1.want" "pile.docs.$src"
done
$PY -c 'import h5py,sys; f=h5py.File(sys.argv[1]); print(list(f["doc_source"][:]), f.attrs["doc_source_names"].decode().split("\n"))' \
    "$tmp/o4.p1.jsonl.zst/train/p1-00000.h5" >"$tmp/src.txt"
grep -qF "[0, 1, 0, 2] ['Pile-CC', 'Github', '']" "$tmp/src.txt" && ok pile.doc-source || fail pile.doc-source "$(cat "$tmp/src.txt")"
expect pile.strict 2 "p1.jsonl.zst:3: invalid JSON .*\(--strict\)" -- $P pile --in "$tmp/p1.jsonl.zst" --out "$tmp/o5" --strict
ls "$tmp/o5/train" | grep -q . && fail pile.strict-no-shard "$(ls "$tmp/o5/train")" || ok pile.strict-no-shard
printf '{"body": "x y", "text": 1}\n' >"$tmp/f.jsonl"
expect jsonl.field 0 "done: 1 sources, 1 documents" -- $P jsonl --in "$tmp/f.jsonl" --field body --out "$tmp/o6"

# truncated .zst: the records before the cut are kept, the stream problem is warned and counted
$PY -c 'import json; [print(json.dumps({"text": "document number %d " % i * 20})) for i in range(3000)]' >"$tmp/big.jsonl"
zstd -q -f "$tmp/big.jsonl" -o "$tmp/big.jsonl.zst"
head -c $(($(stat -c %s "$tmp/big.jsonl.zst") / 2)) "$tmp/big.jsonl.zst" >"$tmp/cut.jsonl.zst"
expect zst.truncated 0 "warning: .*cut.jsonl.zst: truncated zstd stream" -- $P pile --in "$tmp/cut.jsonl.zst" --out "$tmp/o7" --val-fraction 0
summary_has zst.truncated-count "truncated or corrupt stream 1"
n=$($PY -c 'import h5py,sys; print(h5py.File(sys.argv[1]).attrs["n_docs"])' "$tmp/o7/train/cut-00000.h5" 2>&1)
[ "$n" -gt 0 ] 2>/dev/null && [ "$n" -lt 3000 ] && ok zst.truncated-partial || fail zst.truncated-partial "n_docs $n"
expect zst.truncated-strict 2 "cut.jsonl.zst: truncated zstd stream.*--strict" -- $P pile --in "$tmp/cut.jsonl.zst" --out "$tmp/o8" --strict
[ -z "$(ls "$tmp/o8/train")" ] && ok zst.strict-no-partial || fail zst.strict-no-partial "$(ls "$tmp/o8/train")"

# empty input, unwritable output, missing input
: >"$tmp/empty.jsonl"
expect empty.warn 0 "warning: .*empty.jsonl: empty input; skipped" -- $P jsonl --in "$tmp/empty.jsonl" --out "$tmp/o9"
summary_has empty.count "empty input 1"
expect empty.strict 2 "empty.jsonl: empty input \(--strict\)" -- $P jsonl --in "$tmp/empty.jsonl" --out "$tmp/o9" --strict
expect unwritable 2 "^prepare: .*arr.json: cannot create folder: not a folder" -- \
    $P text --in "$tmp/arr.json" --out "$tmp/arr.json/notadir/out"
expect missing-input 2 "^prepare: .*nothere.txt: cannot open" -- $P text --in "$tmp/nothere.txt" --out "$tmp/o10"
ls "$tmp"/o*/*/*.tmp >/dev/null 2>&1 && fail no-tmp-left "$(ls "$tmp"/o*/*/*.tmp)" || ok no-tmp-left

# ---- shards: size, validation split independent of the other inputs and of the shard size ----
$PY -c 'import json; json.dump(["sentence %d of the test corpus." % i for i in range(400)], open("'"$tmp"'/s1.json","w"))'
$PY -c 'import json; json.dump(["other %d" % i for i in range(50)], open("'"$tmp"'/s2.json","w"))'
expect split.a 0 "done" -- $P text --in "$tmp/s1.json" --out "$tmp/sa" --val-fraction 0.2 --shard-tokens 1000
expect split.b 0 "done" -- $P text --in "$tmp/s2.json" "$tmp/s1.json" --out "$tmp/sb" --val-fraction 0.2
$PY - "$tmp" <<'PYEOF'
import glob, h5py, numpy as np, sys
t = sys.argv[1]
def docs(pattern):
    out = []
    for p in sorted(glob.glob(pattern)):
        f = h5py.File(p); tok, off = f['tokens'][:], f['doc_offsets'][:]
        out += [tuple(tok[off[i]:off[i + 1]]) for i in range(len(off) - 1)]
    return out
for split in ('train', 'val'):
    a, b = docs(t + '/sa/%s/s1-*.h5' % split), docs(t + '/sb/%s/s1-*.h5' % split)
    print('ok split.same-%s' % split if a == b and a else 'FAIL split.same-%s: %d vs %d docs' % (split, len(a), len(b)))
nv, nt = len(docs(t + '/sa/val/s1-*.h5')), len(docs(t + '/sa/train/s1-*.h5'))
print('ok split.fraction' if nv + nt == 400 and 40 <= nv <= 130 else 'FAIL split.fraction: %d val of %d' % (nv, nv + nt))
shards = sorted(glob.glob(t + '/sa/train/s1-*.h5'))
sizes = [h5py.File(p).attrs['n_tokens'] for p in shards]
ok = len(shards) >= 3 and all(s >= 1000 for s in sizes[:-1]) and all(s < 1000 + 20 for s in sizes)
print('ok split.shard-size' if ok else 'FAIL split.shard-size: %s' % sizes)
PYEOF

# ---- alpaca: templates, loss mask, custom template, truncation policy ----
cat >"$tmp/al.json" <<'JSON'
[{"instruction": "Give three tips for staying healthy.", "input": "", "output": "1. Eat well.\n2. Sleep."},
 {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour"},
 {"instruction": "No output here", "input": ""},
 {"instruction": "Say hi", "input": "", "output": ": hi!"}]
JSON
$PY - "$tmp" <<'PYEOF'
import json, sys
t = sys.argv[1]
A = ('Below is an instruction that describes a task, paired with an input that provides further context. '
     'Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n'
     '### Input:\n{input}\n\n### Response:')
B = ('Below is an instruction that describes a task. Write a response that appropriately completes the '
     'request.\n\n### Instruction:\n{instruction}\n\n### Response:')
ex = [r for r in json.load(open(t + '/al.json')) if 'output' in r]
def prompt(r, a, b):
    return (a if r['input'] else b).replace('{instruction}', r['instruction']).replace('{input}', r['input'])
json.dump([[prompt(r, A, B), r['output'], 0] for r in ex], open(t + '/al.want', 'w'))
CA, CB = 'Q: {instruction} [{input}]\nA:', 'Q: {instruction}\nA:'
json.dump({'prompt_input': CA, 'prompt_no_input': CB}, open(t + '/tmpl.json', 'w'))
json.dump([[prompt(r, CA, CB), r['output'], 0] for r in ex], open(t + '/al2.want', 'w'))
# --max-tokens 44: example 0 (prompt 41 tokens) is cut to 44 with no EOT; example 1 (prompt 51) is
# dropped; example 3 (prompt 38 + 4 + EOT = 43) is whole
json.dump([[prompt(ex[0], A, B), ex[0]['output'], 44], [prompt(ex[2], A, B), ex[2]['output'], 0]],
          open(t + '/al3.want', 'w'))
with open(t + '/al.jsonl', 'w') as f:
    for r in json.load(open(t + '/al.json')):
        f.write(json.dumps(r) + '\n')
PYEOF
expect alpaca.run 0 "done: 1 sources, 3 documents" -- $P alpaca --in "$tmp/al.json" --out "$tmp/a1" --val-fraction 0
summary_has alpaca.warn "warning: .*al.json:3: element 2: field \"output\" is missing; skipped"
$CHK alpaca "$tmp/a1/train/al-00000.h5" "$tmp/al.want" alpaca.mask
expect alpaca.jsonl 0 "done: 1 sources, 3 documents" -- $P alpaca --in "$tmp/al.jsonl" --out "$tmp/a2" --val-fraction 0
$CHK same "$tmp/a1/train/al-00000.h5" "$tmp/a2/train/al-00000.h5" alpaca.jsonl-same-as-json
expect alpaca.template 0 "done" -- $P alpaca --in "$tmp/al.json" --out "$tmp/a3" --val-fraction 0 --template "$tmp/tmpl.json"
$CHK alpaca "$tmp/a3/train/al-00000.h5" "$tmp/al2.want" alpaca.template-mask
echo '{"prompt_input": "{instruction}"}' >"$tmp/badtmpl.json"
expect alpaca.bad-template 2 "badtmpl.json: prompt_input: must contain \{instruction\} and \{input\}" -- \
    $P alpaca --in "$tmp/al.json" --out "$tmp/a4" --template "$tmp/badtmpl.json"
expect alpaca.truncate 0 "prompt too long 1\), 0 empty documents, 1 truncated examples" -- \
    $P alpaca --in "$tmp/al.json" --out "$tmp/a5" --val-fraction 0 --max-tokens 44
$CHK alpaca "$tmp/a5/train/al-00000.h5" "$tmp/al3.want" alpaca.truncate-mask
expect alpaca.strict 2 "al.json:3: element 2: field \"output\" is missing \(--strict\)" -- \
    $P alpaca --in "$tmp/al.json" --out "$tmp/a6" --strict

# ---- two MPI ranks give the same shards as one ----
mkdir -p "$tmp/m"
cp "$tmp/s1.json" "$tmp/s2.json" "$tmp/m/"
cp "$tmp/p1.jsonl.zst" "$tmp/m/q1.jsonl.zst"
cp "$tmp/big.jsonl.zst" "$tmp/m/q2.jsonl.zst"
$PY -c 'import json; [print(json.dumps({"text": "x %d" % i, "meta": {"pile_set_name": ["A","B","C"][i % 3]}})) for i in range(500)]' >"$tmp/m/q3.jsonl"
expect mpi.one 0 "done: 3 sources" -- $P pile --in "$tmp/m/q1.jsonl.zst" "$tmp/m/q2.jsonl.zst" "$tmp/m/q3.jsonl" \
    --out "$tmp/m1" --val-fraction 0.1 --shard-tokens 5000
sleep 1 # a different second: no timestamp may reach the files
expect mpi.two 0 "done: 3 sources" -- mpirun -n 2 $P pile --in "$tmp/m/q1.jsonl.zst" "$tmp/m/q2.jsonl.zst" \
    "$tmp/m/q3.jsonl" --out "$tmp/m2" --val-fraction 0.1 --shard-tokens 5000
summary_has mpi.global-summary "skipped 3 records"
(cd "$tmp/m1" && find . -name '*.h5' | sort) >"$tmp/l1"
(cd "$tmp/m2" && find . -name '*.h5' | sort) >"$tmp/l2"
if cmp -s "$tmp/l1" "$tmp/l2" && [ "$(wc -l <"$tmp/l1")" -ge 5 ]; then
    bad=0
    while read -r f; do cmp -s "$tmp/m1/$f" "$tmp/m2/$f" || bad=$((bad + 1)); done <"$tmp/l1"
    [ $bad -eq 0 ] && ok mpi.byte-identical || fail mpi.byte-identical "$bad files differ"
    $CHK same "$tmp/m1/train/q3-00000.h5" "$tmp/m2/train/q3-00000.h5" mpi.tensor-identical
else
    fail mpi.same-names "$(diff "$tmp/l1" "$tmp/l2" | head -5)"
fi

# ---- the real corpus end to end (nlp-corpus: 100 JSON arrays of strings) ----
CORPUS=${MESHTRAIN_CACHE:-$PWD/.cache}/nlp-corpus/nlp-corpus/builds
expect corpus.run 0 "done: 100 sources, 100000 documents" -- $P text --in "$CORPUS" --out "$tmp/c" --val-fraction 0
grep -o 'in [0-9.]* s ([0-9.]* MB/s)' "$tmp/err" | sed 's/^/# nlp-corpus: /'
$PY -c 'import json,sys; json.dump([s.encode("utf-8").decode("latin-1") for s in json.load(open(sys.argv[1]))], open(sys.argv[2],"w"))' \
    "$CORPUS/doc-7.json" "$tmp/doc7.want"
$CHK docs "$tmp/c/train/doc-7-00000.h5" "$tmp/doc7.want" corpus.doc-7-tokens

# a document of 2.5 MB (several 1 MiB pieces) tokenizes exactly as a whole
$PY -c '
import json, glob, sys
parts = []
for f in sorted(glob.glob(sys.argv[1] + "/doc-*.json"))[:30]:
    parts += json.load(open(f))
text = "".join(p + (" " if i % 3 else "\r\n") for i, p in enumerate(parts))
open(sys.argv[2] + "/long.txt", "w", newline="").write(text)
json.dump([text.encode().decode("latin-1")], open(sys.argv[2] + "/long.want", "w"))' "$CORPUS" "$tmp"
expect long.run 0 "done: 1 sources, 1 documents" -- $P text --in "$tmp/long.txt" --out "$tmp/l" --val-fraction 0
$CHK docs "$tmp/l/train/long-00000.h5" "$tmp/long.want" long.pieces-exact

# ---- Issue 16: honest summaries, no silent misreading, no leftovers ----
# tokens: N in the summary = the tokens in the shards (a document over 1 MiB; Alpaca examples)
shard_tokens() { $PY -c 'import h5py, glob, sys; print(sum(h5py.File(f)["tokens"].shape[0] for f in glob.glob(sys.argv[1] + "/*/*.h5")))' "$1"; }
summary_tokens() { sed -n 's/.*documents ([0-9]* val), \([0-9]*\) tokens.*/\1/p' "$tmp/err"; }
a=$(summary_tokens) b=$(shard_tokens "$tmp/l")
[ -n "$a" ] && [ "$a" = "$b" ] && ok summary.tokens-long-document || fail summary.tokens-long-document "summary $a, shards $b"
$P alpaca --in "$tmp/al.json" --out "$tmp/alt" 2>"$tmp/err"
a=$(summary_tokens) b=$(shard_tokens "$tmp/alt")
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$b" -gt 10 ] && ok summary.tokens-alpaca || fail summary.tokens-alpaca "summary $a, shards $b"

# --in: a folder with files but none to read is refused; .TXT is .txt; text refuses JSON Lines
mkdir -p "$tmp/nodocs" "$tmp/upper"
echo "notes" >"$tmp/nodocs/a.md"
expect in.folder-without-inputs 2 "nodocs: none of its 1 files is a .txt or .json file \(e.g. .*a.md\)" -- \
    $P text --in "$tmp/nodocs" --out "$tmp/nd"
printf 'Upper case name' >"$tmp/upper/A.TXT"
echo "x" >"$tmp/upper/b.md"
expect in.upper-case-extension 0 "done: 1 sources, 1 documents" -- $P text --in "$tmp/upper" --out "$tmp/up" --val-fraction 0
summary_has in.skipped-files-said "upper: skipping 1 files that are not .txt or .json files \(e.g. .*b.md\)"
printf '{"text": "a"}\n' >"$tmp/lines.jsonl"
expect in.text-refuses-jsonl 2 "lines.jsonl: a JSON Lines file; bin/prepare jsonl reads it" -- \
    $P text --in "$tmp/lines.jsonl" --out "$tmp/tj"

# JSON Lines: a byte order mark, blank lines counted, null input, a set name holding a newline
printf '\xef\xbb\xbf{"text": "first"}\n\n  \n{"text": "second", "meta": {"pile_set_name": "Pile\\nCC"}}\n{"text": "third", "meta": {"pile_set_name": "Pile\\nCC"}}\n' >"$tmp/bom.jsonl"
expect jsonl.bom-first-record 0 "done: 1 sources, 3 documents" -- $P jsonl --in "$tmp/bom.jsonl" --out "$tmp/bom" --val-fraction 0
summary_has jsonl.blank-lines-counted "U\+FFFD replacements, 2 blank lines$"
$PY - "$tmp/bom/train/bom-00000.h5" <<'PYEOF' && ok jsonl.set-name-newline || fail jsonl.set-name-newline "see above"
import h5py, sys
f = h5py.File(sys.argv[1])
names = f.attrs["doc_source_names"]
names = names.decode() if isinstance(names, bytes) else str(names)
src = list(f["doc_source"][()])
print("# doc_source_names", repr(names), "doc_source", src)
sys.exit(0 if names.split("\n") == ["", "Pile CC"] and src == [0, 1, 1] else 1)
PYEOF
printf '[{"instruction": "Say hi.", "input": null, "output": "Hi."}]' >"$tmp/null.json"
printf '[{"instruction": "Say hi.", "output": "Hi."}]' >"$tmp/noinput.json"
expect alpaca.null-input 0 "done: 1 sources, 1 documents" -- $P alpaca --in "$tmp/null.json" --out "$tmp/an" --val-fraction 0
$P alpaca --in "$tmp/noinput.json" --out "$tmp/ani" --val-fraction 0 2>/dev/null
$PY - "$tmp/an/train/null-00000.h5" "$tmp/ani/train/noinput-00000.h5" <<'PYEOF' && ok alpaca.null-input-is-empty ||
import h5py, sys
a, b = h5py.File(sys.argv[1]), h5py.File(sys.argv[2])
sys.exit(0 if all((a[k][()] == b[k][()]).all() for k in ("tokens", "loss_mask", "doc_offsets")) else 1)
PYEOF
    fail alpaca.null-input-is-empty "tokens or loss mask differ from a record without input"

# .zst: the rate of the text after decompression is reported too
expect zst.rates 0 "MB of input files in [0-9.]* s \([0-9.]* MB/s; [0-9.]* MB of text after zstd decompression, [0-9.]* MB/s\)" -- \
    $P pile --in "$tmp/p1.jsonl.zst" --out "$tmp/zr"

# A fatal error after another source finished: the finished source's shards stay, and the run says so.
printf 'A finished source.' >"$tmp/fine.txt"
expect fatal.finished-sources-said 2 "note: the shards of the 1 sources that finished are complete and stay in" -- \
    $P text --in "$tmp/fine.txt" "$tmp/broken.json" --out "$tmp/fa"
[ -f "$tmp/fa/train/fine-00000.h5" ] && ok fatal.finished-shards-kept || fail fatal.finished-shards-kept "$(ls -R "$tmp/fa")"
# --strict on a multi-shard source: its shards already complete are removed with it (all or none)
$PY -c 'import json; print("\n".join(json.dumps({"text": "word " * 300}) for _ in range(20)) + "\n{bad")' >"$tmp/many.jsonl"
expect strict.multi-shard 2 "many.jsonl:21: invalid JSON" -- $P jsonl --in "$tmp/many.jsonl" --out "$tmp/ms" --strict \
    --shard-tokens 500 --val-fraction 0
[ -z "$(ls "$tmp/ms/train")" ] && ok strict.multi-shard-none-left || fail strict.multi-shard-none-left "$(ls "$tmp/ms/train")"

# SIGTERM and SIGINT: no *.h5.tmp left behind, exit 3. The input is a FIFO, so the signal lands mid-source.
for sig in TERM INT; do
    rm -f "$tmp/fifo.jsonl" && mkfifo "$tmp/fifo.jsonl"
    $P jsonl --in "$tmp/fifo.jsonl" --out "$tmp/sig$sig" --val-fraction 0 2>"$tmp/err" &
    pid=$!
    exec 7<>"$tmp/fifo.jsonl" # read-write: the open does not wait for bin/prepare, and no write gets SIGPIPE
    yes '{"text": "some words for the shard"}' | head -n 60000 >&7 # 2 MB: past the first 1 MiB read
    for i in $(seq 100); do ls "$tmp/sig$sig/train/"*.tmp >/dev/null 2>&1 && break; sleep 0.1; done
    had_tmp=$(ls "$tmp/sig$sig/train/" 2>/dev/null)
    kill -$sig $pid
    sleep 0.3
    echo '{"text": "one more"}' >&7
    exec 7>&-
    wait $pid
    rc=$?
    left=$(ls "$tmp/sig$sig/train/")
    [ $rc = 3 ] && [ -n "$had_tmp" ] && [ -z "$left" ] && grep -q "stopped on signal" "$tmp/err" &&
        ok "signal.$sig-cleans-up" || fail "signal.$sig-cleans-up" "exit $rc, before: $had_tmp, left: $left, $(cat "$tmp/err")"
done
