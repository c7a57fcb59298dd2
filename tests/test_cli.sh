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
