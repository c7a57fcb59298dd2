#!/usr/bin/env bash
# bin/train end to end on a generated shard: the loss falls far below the unigram entropy ln(V), the
# validation loss follows, the run directory holds config.json and metrics.jsonl, and two runs of the
# same config give bit-identical losses.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bin/prepare synthetic --out "$tmp/train.h5" --tokens 200000 --vocab 240 --seed 1 2>/dev/null
bin/prepare synthetic --out "$tmp/val.h5" --tokens 20000 --vocab 240 --seed 2 2>/dev/null
for fam in gptj neo gpt2; do
    cat >"$tmp/$fam.json" <<JSON
{"model": "$PWD/configs/models/tiny-$fam.json", "run_dir": "$tmp/run-$fam", "threads": 2,
 "data": {"train": "$tmp/train.h5", "val": "$tmp/val.h5", "seq_len": 32},
 "train": {"micro_batch": 8, "global_batch": 16, "steps": 150, "lr": 3e-3, "warmup_steps": 10,
           "log_every": 50, "eval_every": 150, "eval_batches": 4}}
JSON
    bin/train "$tmp/$fam.json" >"$tmp/$fam.out" 2>&1
    rc=$?
    [ $rc -eq 0 ] && echo "ok $fam.runs" || { echo "FAIL $fam.runs: exit $rc"; sed 's/^/    /' "$tmp/$fam.out"; continue; }
    /usr/bin/python3 - "$tmp/run-$fam" "$fam" <<'PY'
import json, math, sys
run, fam = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(f"{run}/metrics.jsonl")]
train = [r["loss"] for r in rows if "loss" in r]
val = [r["val_loss"] for r in rows if "val_loss" in r]
cfg = json.load(open(f"{run}/config.json"))
unigram = math.log(240)
first, last = sum(train[:5]) / 5, sum(train[-5:]) / 5
def check(ok, name, why):
    print(f"ok {fam}.{name}" if ok else f"FAIL {fam}.{name}: {why}")
check(len(train) == 150 and all(math.isfinite(x) for x in train), "150 finite losses", f"{len(train)} rows")
check(abs(first - unigram) < 0.3, "starts near ln(V)", f"first losses {first:.3f}, ln(240) = {unigram:.3f}")
check(last < 0.5 * unigram, "loss falls below half of ln(V)", f"last losses {last:.3f}")
check(len(val) == 1 and val[0] < 0.5 * unigram, "val loss falls", f"val {val}")
check(cfg["train"]["steps"] == 150 and cfg["model"]["name"] == f"tiny-{fam}", "config.json resolved", str(cfg)[:200])
print(f"#   {fam}: loss {first:.3f} -> {last:.3f}, val {val}, ln(V) {unigram:.3f}")
PY
done
# Determinism: the same config twice gives the same losses, bit for bit.
cp -r "$tmp/run-gptj/metrics.jsonl" "$tmp/first.jsonl"
rm -rf "$tmp/run-gptj"
bin/train "$tmp/gptj.json" >/dev/null 2>&1
strip() { sed -E 's/"(tokens_per_s|sgemm_util|elapsed_s)": [^,}]*//g' "$1"; }
if diff <(strip "$tmp/first.jsonl") <(strip "$tmp/run-gptj/metrics.jsonl") >/dev/null; then
    echo "ok rerun.bit-identical losses"
else
    echo "FAIL rerun.bit-identical losses: metrics differ"
fi

# Fine-tuning: Alpaca-style examples (prompt masked, response + EOT counted) through bin/prepare alpaca and
# data.kind = examples; the loss on the response tokens falls as the model memorizes them.
make -s --no-print-directory vocab >/dev/null
/usr/bin/python3 - "$tmp/alpaca.json" <<'PY'
import json, sys
colors = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
ex = [{"instruction": f"Name the color number {i}.", "input": "" if i % 2 else f"Palette {i % 3}",
       "output": f"The color is {colors[i % 8]}."} for i in range(48)]
json.dump(ex, open(sys.argv[1], "w"))
PY
bin/prepare alpaca --in "$tmp/alpaca.json" --out "$tmp/alpaca" --val-fraction 0 2>"$tmp/prep.err" ||
    echo "FAIL finetune.prepare: $(tail -2 "$tmp/prep.err")"
cat >"$tmp/ft.json" <<JSON
{"model": "$PWD/configs/models/demo-gptj.json", "run_dir": "$tmp/run-ft", "threads": 2,
 "data": {"train": "$tmp/alpaca/train/*.h5", "kind": "examples", "seq_len": 64},
 "train": {"micro_batch": 8, "global_batch": 16, "steps": 40, "lr": 3e-3, "warmup_steps": 5, "log_every": 40}}
JSON
bin/train "$tmp/ft.json" --set model.n_layer=1 >"$tmp/ft.out" 2>&1 || echo "FAIL finetune.runs: $(tail -3 "$tmp/ft.out")"
/usr/bin/python3 - "$tmp/run-ft/metrics.jsonl" <<'PY'
import json, math, sys
loss = [json.loads(l)["loss"] for l in open(sys.argv[1]) if '"loss"' in l]
first, last = sum(loss[:5]) / 5, sum(loss[-5:]) / 5
ok = len(loss) == 40 and all(math.isfinite(x) for x in loss) and last < 0.5 * first
print(f"ok finetune.response loss falls ({first:.2f} -> {last:.2f})" if ok else
      f"FAIL finetune.response loss falls: {len(loss)} steps, {first:.2f} -> {last:.2f}")
PY
