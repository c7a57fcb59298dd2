#!/usr/bin/env bash
# The instruction benchmark and its tools: bin/instruct's generator (answers recomputed independently,
# disjoint splits, phrasings) and scorer, bin/plot (a PNG; bad input refused), data.loss_on = "all" wired
# into bin/train (training counts the prompt, validation still the response only), and a short version of
# make finetune-demo: a tiny model fine-tuned for a minute of CPU lifts held-out exact match far above its
# starting value.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s --no-print-directory vocab >/dev/null
/usr/bin/python3 tests/instruct_check.py "$tmp"

# ---- data.loss_on = all: the same batch costs more (the prompt is counted); validation is unchanged
d=$tmp/bench
bin/instruct gen --out "$d" --tasks last,count,copy --train 3000 --heldout 20 --seed 3 >/dev/null
bin/prepare alpaca --in "$d/train.json" --out "$d" --val-fraction 0.02 >/dev/null 2>&1 ||
    echo "FAIL prepare alpaca of the benchmark"
cat >"$tmp/ft.json" <<JSON
{"model": "$PWD/configs/models/demo-gptj.json", "run_dir": "$tmp/run", "threads": 2,
 "data": {"train": "$d/train/*.h5", "val": "$d/val/*.h5", "kind": "examples", "seq_len": 64},
 "train": {"micro_batch": 16, "global_batch": 16, "steps": 300, "lr": 3e-3, "warmup_steps": 10,
           "weight_decay": 0, "log_every": 50, "eval_every": 100, "eval_batches": 2}}
JSON
tiny=(--set model.n_layer=2 --set model.d_model=64 --set model.n_head=4 --set model.d_ff=256)
val_mask=$(bin/train "$tmp/ft.json" "${tiny[@]}" --eval-only --allow-untrained 2>&1 | sed -n 's/^eval_loss: //p')
val_all=$(bin/train "$tmp/ft.json" "${tiny[@]}" --set data.loss_on='"all"' --eval-only --allow-untrained 2>&1 |
    sed -n 's/^eval_loss: //p')
[ -n "$val_mask" ] && [ "$val_mask" = "$val_all" ] && echo "ok loss_on=all: validation still counts the response only" ||
    echo "FAIL loss_on=all: validation still counts the response only: '$val_mask' vs '$val_all'"
for on in mask all; do
    bin/train "$tmp/ft.json" "${tiny[@]}" --set data.loss_on="\"$on\"" --set train.steps=1 \
        --set run_dir="\"$tmp/one-$on\"" >"$tmp/one-$on.out" 2>&1 || echo "FAIL loss_on=$on: $(tail -1 "$tmp/one-$on.out")"
done
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
first = {on: json.loads(open(f"{t}/one-{on}/metrics.jsonl").readline()) for on in ("mask", "all")}
cfg = {on: json.load(open(f"{t}/one-{on}/config.json"))["data"]["loss_on"] for on in ("mask", "all")}
ok = cfg == {"mask": "mask", "all": "all"} and first["all"]["loss"] != first["mask"]["loss"]
print("ok loss_on=all: the first step's loss counts other tokens; config.json records it" if ok else
      f"FAIL loss_on=all: first losses {first}, config {cfg}")
PY

# ---- the short benchmark: a tiny model (2 layers, d_model 64) on three tasks, from its initialization
# (one step at learning rate 0: the warmup starts at 0) to 300 steps of 16 examples; greedy decoding of
# the held-out split before and after. Training is deterministic (fixed seeds and thread count).
run_bench() { # NAME STEPS
    bin/train "$tmp/ft.json" "${tiny[@]}" --set train.steps="$2" --set run_dir="\"$tmp/$1\"" >"$tmp/$1.out" 2>&1 ||
        echo "FAIL bench.$1: bin/train exit $?: $(tail -1 "$tmp/$1.out")"
    bin/instruct eval "$tmp/$1" --data "$d/heldout.jsonl" --json "$tmp/$1.json" --threads 2 >"$tmp/$1.score" 2>&1 ||
        echo "FAIL bench.$1: bin/instruct eval: $(tail -1 "$tmp/$1.score")"
}
run_bench before 1
run_bench after 300
sed 's/^/#   /' "$tmp/after.score"
/usr/bin/python3 - "$tmp" <<'PY'
import json, sys
t = sys.argv[1]
before, after = (json.load(open(f"{t}/{k}.json")) for k in ("before", "after"))
print(f"#   held-out exact match {100 * after['all']:.1f}% after 300 steps (at initialization: {100 * before['all']:.1f}%)")
ok = after["all"] >= before["all"] + 0.20
print("ok bench: fine-tuning lifts held-out exact match by 20 points or more" if ok else
      f"FAIL bench: fine-tuning lifts held-out exact match by 20 points or more: {before} -> {after}")
PY
