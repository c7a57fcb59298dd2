#!/usr/bin/env bash
# bin/train and bin/prepare on bad input: one line naming the file and key (or offset), exit code 2.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# expect NAME CODE PATTERN -- CMD...: exit code CODE, exactly one stderr line matching PATTERN
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$? lines
    lines=$(wc -l <"$tmp/err")
    if [ "$rc" -eq "$code" ] && [ "$lines" -eq 1 ] && grep -qE -- "$pattern" "$tmp/err"; then
        echo "ok $name"
    else
        echo "FAIL $name: exit $rc (want $code), $lines stderr lines, want /$pattern/: $(head -c 300 "$tmp/err")"
    fi
}

# params: N for every shipped model config equals SPEC.
for pair in gpt-j-6b:6050882784 gpt-neo-125m:125198592 gpt-neo-1.3b:1315575808 gpt-neo-2.7b:2651307520 \
            gpt2-124m:124439808; do
    m=${pair%%:*} want=${pair##*:}
    got=$(bin/train "configs/models/$m.json" --dry-run | sed -n 's/^params: //p')
    [ "$got" = "$want" ] && echo "ok params.$m" || echo "FAIL params.$m: got '$got', want $want"
done

bin/prepare synthetic --out "$tmp/good.h5" --tokens 5000 --vocab 240 2>/dev/null
model=configs/models/tiny-gpt2.json
run() { # writes a run config with the given JSON fragment of train/data overrides
    cat >"$tmp/run.json" <<JSON
{"model": "$PWD/$model", "run_dir": "$tmp/run", "threads": 1,
 "data": {"train": "$1", "seq_len": 16}, "train": {"steps": 2, "micro_batch": 2}}
JSON
}
run "$tmp/good.h5"
R=$tmp/run.json
expect set-unknown-key 2 "^train: --set train.lrr: unknown key" -- bin/train $R --set train.lrr=1
expect set-wrong-type 2 "^train: --set train.lr: must be a number" -- bin/train $R --set train.lr='"x"'
sed 's/"steps": 2/"steps": 2, "stpes": 3/' $R >"$tmp/typo.json"
expect unknown-key 2 "typo.json: train.stpes: unknown key" -- bin/train "$tmp/typo.json"
sed 's/"steps": 2/"steps": "2"/' $R >"$tmp/str.json"
expect wrong-type 2 "str.json: train.steps: must be an integer" -- bin/train "$tmp/str.json"
expect set-names-override 2 "^train: --set model.n_head: 3 heads do not divide d_model 64" -- \
    bin/train $R --set model.n_head=3
expect odd-rotary 2 "rotary_dim: 3 must be even" -- bin/train $R --set model.rotary_dim=3
expect big-rotary 2 "rotary_dim: 32 must be even and at most the head dim 16" -- bin/train $R --set model.rotary_dim=32
expect window 2 "local_window: 0 is outside" -- bin/train $R --set model.local_window=0
expect seq-len 2 "data.seq_len: 65 is outside \[1, 64\]" -- bin/train $R --set data.seq_len=65
expect batch 2 "train.global_batch: 3 is not a multiple of micro_batch 2" -- bin/train $R --set train.global_batch=3
expect tied-bias 2 "bias.lm_head: a tied head" -- bin/train $R --set model.bias.lm_head=true
expect schedule 2 "train.schedule: must be" -- bin/train $R --set train.schedule=linear
expect loss-on 2 "data.loss_on: must be \"mask\" or \"all\"" -- bin/train $R --set data.loss_on='"response"'
expect loss-on-stream 2 "data.loss_on: \"all\" needs data.kind = \"examples\"" -- bin/train $R --set data.loss_on='"all"'
expect set-syntax 2 "--set nonsense: expected key.path=value" -- bin/train $R --set nonsense
printf '{"model": "%s", "data": {"train": "x"}, "train": {"steps": }' "$PWD/$model" >"$tmp/bad.json"
expect bad-json 2 "bad.json: invalid JSON at byte" -- bin/train "$tmp/bad.json"
sed 's/"n_layer": 2,//' $model >"$tmp/nolayer.json"
expect missing-field 2 "nolayer.json: n_layer: missing" -- bin/train "$tmp/nolayer.json" --dry-run
expect no-config 2 "cannot open" -- bin/train "$tmp/none.json"
expect model-needs-dry-run 2 "model: missing" -- bin/train $model

# Bad shards.
run "$tmp/missing.h5"
expect shard-missing 2 "missing.h5: cannot open token shard" -- bin/train $R
echo "not hdf5" >"$tmp/text.h5"
run "$tmp/text.h5"
expect shard-not-hdf5 2 "text.h5: not an HDF5 file" -- bin/train $R
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def shard(name, tokens, **over):
    with h5py.File(f"{d}/{name}", "w") as f:
        f.create_dataset("tokens", data=tokens)
        f.create_dataset("doc_offsets", data=np.array([0, len(tokens)], dtype=np.uint64))
        attrs = dict(format=np.bytes_("meshtrain.tokens"), format_version=1, tokenizer=np.bytes_("t"),
                     vocab_size=240, eot_token=0, n_tokens=len(tokens), n_docs=1, source=np.bytes_("s"))
        attrs.update(over)
        for k, v in attrs.items(): f.attrs[k] = v
shard("float.h5", np.zeros(100, dtype=np.float32))
big = np.arange(100, dtype=np.uint16) % 200; big[57] = 300
shard("bigid.h5", big)
shard("empty.h5", np.zeros(0, dtype=np.uint16))
PY
run "$tmp/float.h5"
expect shard-dtype 2 "float.h5: /tokens missing or not uint16" -- bin/train $R
run "$tmp/bigid.h5"
expect shard-token-id 2 "bigid.h5: token id 300 at offset 57 is not below the model.s vocab_size 250" -- bin/train $R
run "$tmp/empty.h5"
expect shard-empty 2 "empty.h5: empty shard" -- bin/train $R
run "$tmp/good.h5"
expect unwritable-run-dir 2 "cannot create" -- bin/train $R --set run_dir=/proc/nope

# ---- Issue 16: every input means one thing or is refused in one line.
say() { if [ "$1" = 0 ]; then echo "ok $2"; else echo "FAIL $2: ${3:-}"; fi; }
# Strict JSON: nothing after the object, no key twice (at any depth), numbers in JSON's grammar.
sed 's/}$/}xyz/' $R >"$tmp/trail.json"
expect json-trailing-text 2 "trail.json: invalid JSON at byte [0-9]+ \(line 2\): unexpected data after the value" -- \
    bin/train "$tmp/trail.json"
{ cat $R; echo '{}'; } >"$tmp/two.json"
expect json-two-objects 2 "two.json: invalid JSON at byte [0-9]+ \(line 3\)" -- bin/train "$tmp/two.json"
sed 's/"steps": 2/"lr": 0.001, "steps": 2, "lr": -5/' $R >"$tmp/dup.json"
expect json-duplicate-key 2 "dup.json: train.lr: duplicate key" -- bin/train "$tmp/dup.json"
sed 's/"seq_len": 16/"seq_len": 16, "seq_len": 16/' $R >"$tmp/dup2.json"
expect json-duplicate-equal-values 2 "dup2.json: data.seq_len: duplicate key" -- bin/train "$tmp/dup2.json"
sed 's/"steps": 2/"steps": 02/' $R >"$tmp/lead0.json"
expect json-leading-zero 2 "lead0.json: invalid JSON at byte" -- bin/train "$tmp/lead0.json"
expect set-hex-number 2 "^train: --set train.lr: must be a number" -- bin/train $R --set train.lr=0x10
expect set-number-junk 2 "^train: --set train.lr: must be a number" -- bin/train $R --set train.lr=1e-3x
expect set-leading-zero 2 "^train: --set train.steps: must be an integer" -- bin/train $R --set train.steps=02
expect set-empty-key 2 "^train: --set train..lr: a key of the path is empty" -- bin/train $R --set train..lr=1
expect resume-contradiction 2 "^train: --resume and --no-resume contradict" -- \
    bin/train $R --no-resume --resume "$tmp/x.h5"
expect set-empty-val 2 "^train: --set data.val: an empty file name" -- bin/train $R --set data.val=
# model may be a path, in the file or by --set; a missing one is named as given.
name=$(bin/train $R --dry-run --set model=configs/models/tiny-neo.json | grep -o '"name":[[:space:]]*"[^"]*"' | head -1)
[[ $name =~ \"tiny-neo\"$ ]]
say $? set-model-path "resolved model name '$name'"
expect set-model-missing 2 "^train: --set model: cannot open model config /abs/none.json: No such file" -- \
    bin/train $R --set model=/abs/none.json
sed "s#\"$PWD/$model\"#\"/abs/none.json\"#" $R >"$tmp/absm.json"
expect model-abs-missing 2 "absm.json: model: cannot open model config /abs/none.json: No such" -- \
    bin/train "$tmp/absm.json"
# A 10 MB value is quoted by a short prefix, never whole.
/usr/bin/python3 - "$R" "$tmp" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["data"]["train"] = "y" * 10_000_000
json.dump(r, open(sys.argv[2] + "/huge.json", "w"))
r["data"]["train"] = "x.h5"
r["train"]["k" * 10_000_000] = 1
json.dump(r, open(sys.argv[2] + "/hugekey.json", "w"))
PY
expect huge-key-clipped 2 "hugekey.json: train.k{64}\.\.\. \(10000000 bytes\): unknown key$" -- bin/train "$tmp/hugekey.json"
expect huge-value-clipped 2 "^train: y{64}\.\.\. \(10000000 bytes\): cannot open token shard" -- bin/train "$tmp/huge.json"
[ "$(wc -c <"$tmp/err")" -lt 300 ]
say $? huge-value-short-line "$(wc -c <"$tmp/err") bytes"

# --eval-only: refused without a checkpoint unless --allow-untrained; recorded in metrics.jsonl with 9 digits.
# More eval_batches than validation sequences: each sequence once, and said.
bin/prepare synthetic --out "$tmp/val.h5" --tokens 400 --vocab 240 --seed 3 2>/dev/null
E="--set data.val=$tmp/val.h5 --set run_dir=$tmp/ev"
expect eval-only-needs-checkpoint 2 "^train: --eval-only: no checkpoint to evaluate .*--allow-untrained" -- \
    bin/train $R $E --eval-only
bin/train $R $E --eval-only --allow-untrained >"$tmp/out" 2>&1
line=$(tail -1 "$tmp/out")
[[ $line =~ ^eval_loss:\ [0-9]+\.[0-9]{9}$ ]] && grep -q '"step": 0, "tokens": 0, "val_loss": [0-9.]*, "val_sequences": 16}' "$tmp/ev/metrics.jsonl"
say $? eval-only-recorded "$line / $(cat "$tmp/ev/metrics.jsonl" 2>&1)"
bin/train $R $E --set train.eval_batches=1001 --set train.eval_every=1 --set train.steps=1 >"$tmp/out" 2>&1
nseq=$(sed -n 's/^eval: data.val has \([0-9]*\) sequences.*/\1/p' "$tmp/out")
[ -n "$nseq" ] && grep -q "eval: data.val has $nseq sequences, fewer than train.eval_batches x micro_batch = 2002: each is used once" \
    "$tmp/out" && grep -q "\"val_sequences\": $nseq}" "$tmp/ev/metrics.jsonl"
say $? eval-batches-beyond-val "$(grep eval "$tmp/out")"
# The mean over 1001 batches (which wrapped unevenly before) equals the mean over each sequence once:
# --eval-only at step 1 with exactly n_seq/micro_batch batches (rounded up) gives the same number.
a=$(grep -o '"val_loss": [0-9.]*' "$tmp/ev/metrics.jsonl" | tail -1)
n1=$(wc -l <"$tmp/ev/metrics.jsonl")
bin/train $R $E --eval-only --set train.eval_batches=$(( (nseq + 1) / 2 )) >/dev/null 2>&1
b=$(grep -o '"val_loss": [0-9.]*' "$tmp/ev/metrics.jsonl" | tail -1)
[ -n "$a" ] && [ "$a" = "$b" ] && [ "$(wc -l <"$tmp/ev/metrics.jsonl")" = $((n1 + 1)) ]
say $? eval-batches-each-once "$a vs $b"

# A checkpoint of another model: the refusal lists whole items, never a value cut in the middle.
bin/train $R --set run_dir="$tmp/mm" --set train.steps=1 >/dev/null 2>&1
/usr/bin/python3 - "$model" "$tmp/longm.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m.update(n_layer=16, attention_layers=["global", "local"] * 8, local_window=4)
json.dump(m, open(sys.argv[2], "w"))
PY
bin/train $R --set run_dir="$tmp/mm" --set model="$tmp/longm.json" >"$tmp/out" 2>"$tmp/err"
grep -qE 'attention_layers \["global"\] \(checkpoint\) vs \["global","local",.*\.\.\. \([0-9]+ bytes\) \(model\)' "$tmp/err" &&
    grep -qE '(in the model|from the checkpoint|not in the model)(, \.\.\.)?$' "$tmp/err"
say $? model-mismatch-whole-items "$(cat "$tmp/err")"

# Shards written the ordinary h5py way (variable-length strings); a missing attribute is named.
/usr/bin/python3 - "$tmp" <<'PY'
import sys, h5py, numpy as np
d = sys.argv[1]
def shard(name, drop=None, **over):
    toks = (np.arange(300) % 200).astype(np.uint16)
    with h5py.File(f"{d}/{name}", "w") as f:
        f.create_dataset("tokens", data=toks)
        f.create_dataset("doc_offsets", data=np.array([0, len(toks)], dtype=np.uint64))
        attrs = dict(format="meshtrain.tokens", format_version=1, tokenizer="gpt2", vocab_size=240,
                     eot_token=0, n_tokens=len(toks), n_docs=1, source="h5py")
        attrs.update(over)
        for k, v in attrs.items():
            if k != drop:
                f.attrs[k] = v
shard("vlen.h5")
shard("noeot.h5", drop="eot_token")
shard("ntok.h5", n_tokens=299)
shard("fmt.h5", format="other")
shard("arr.h5", n_docs=np.array([1, 2, 3]))
with h5py.File(f"{d}/tok2d.h5", "w") as f:
    f.create_dataset("tokens", data=np.zeros((2, 3), dtype=np.uint16))
    for k, v in dict(format="meshtrain.tokens", format_version=1, vocab_size=240, eot_token=0, n_tokens=6,
                     n_docs=1).items():
        f.attrs[k] = v
PY
run "$tmp/vlen.h5"
bin/train $R --set run_dir="$tmp/vl" --set train.steps=1 >"$tmp/out" 2>&1
say $? shard-h5py-strings "$(tail -2 "$tmp/out")"
run "$tmp/noeot.h5"
expect shard-missing-attribute 2 "noeot.h5: attribute eot_token is missing$" -- bin/train $R
run "$tmp/ntok.h5"
expect shard-wrong-n-tokens 2 "ntok.h5: /tokens has 300 entries but attribute n_tokens says 299$" -- bin/train $R
run "$tmp/fmt.h5"
expect shard-wrong-format 2 "fmt.h5: not a token shard \(attribute format is \"other\"; a shard.s is \"meshtrain.tokens\"\)" -- bin/train $R
run "$tmp/arr.h5"
expect shard-array-attribute 2 "arr.h5: attribute n_docs is not a single integer" -- bin/train $R
run "$tmp/tok2d.h5"
expect shard-2d-tokens 2 "tok2d.h5: /tokens is not one-dimensional" -- bin/train $R

# Every binary and subcommand answers --help (and -h) with its usage on stdout and exit 0.
for cmd in "bin/train" "bin/generate" "bin/convert" "bin/convert hf-import" "bin/convert hf-export" \
           "bin/prepare" "bin/prepare text" "bin/prepare jsonl" "bin/prepare pile" "bin/prepare alpaca" \
           "bin/prepare synthetic"; do
    for h in --help -h; do
        $cmd $h >"$tmp/out" 2>"$tmp/err"
        rc=$?
        [ $rc = 0 ] && grep -q "^usage: " "$tmp/out" && [ ! -s "$tmp/err" ]
        say $? "help.${cmd// /.}.$h" "exit $rc, stdout $(head -c 80 "$tmp/out"), stderr $(head -c 200 "$tmp/err")"
    done
done
# README "Command-line help" holds exactly what each binary prints (bin/train's usage: its key reference
# follows in --help, and test_config_keys.sh checks README's copy of that).
for b in train prepare generate convert; do
    awk -v head="\`bin/$b --help\`:" '$0 == head { on = 1; next } on && /^```$/ { if (inblock) exit; inblock = 1; next }
        inblock { print }' README.md >"$tmp/readme_help"
    bin/$b --help | sed '/^Run config keys/,$d' | sed '${/^$/d}' >"$tmp/help"
    diff -q "$tmp/readme_help" "$tmp/help" >/dev/null
    say $? "readme-help.$b" "README's block differs from bin/$b --help: $(diff "$tmp/readme_help" "$tmp/help" | head -5)"
done
