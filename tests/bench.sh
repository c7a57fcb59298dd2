#!/usr/bin/env bash
# make bench: training speed of bin/train at the benchmark configs. For each: ms/step, tokens/s, model
# GFLOP/s (DESIGN 10 FLOP count; the head's share only for the positions the loss counts), the sgemm
# GFLOP/s that bin/train measured at start-up in the same run, their ratio (sgemm utilization), and peak
# RSS. Steps 1-2 are warm-up; the median of the rest counts. The last row is a fine-tuning step: the demo
# model on bin/instruct's Alpaca records, the loss on the responses only.
# Then decoding at batch 1 against the memory-bandwidth bound (tests/bench_generate.c), the loader, the
# tokenizer and checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
STEPS=${BENCH_STEPS:-8}
bin/prepare synthetic --out "$tmp/data.h5" --tokens 2000000 --vocab 50257 --eot 50256 2>/dev/null
printf '| model | batch x seq | ms/step | tokens/s | model GFLOP/s | sgemm GFLOP/s | ratio | peak RSS |\n'
printf '|---|---|---|---|---|---|---|---|\n'
bench() { # MODEL B T [DATA KIND LABEL]
    local model=$1 B=$2 T=$3 data=${4:-$tmp/data.h5} kind=${5:-stream} label=${6:-}
    cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/$model.json", "run_dir": "$tmp/run", "threads": $(nproc),
 "data": {"train": "$data", "kind": "$kind", "seq_len": $T},
 "train": {"micro_batch": $B, "steps": $STEPS, "lr": 1e-4, "log_every": 1000}}
JSON
    rm -rf "$tmp/run"
    /usr/bin/time -f '%M' -o "$tmp/rss" bin/train "$tmp/run.json" >"$tmp/out" 2>&1 ||
        { cat "$tmp/out"; exit 1; }
    local sgemm
    sgemm=$(sed -n 's/.*sgemm \([0-9.]*\) GFLOP\/s.*/\1/p' "$tmp/run/train.log" | head -1)
    /usr/bin/python3 - "$tmp/run/metrics.jsonl" "$model$label" "$B" "$T" "$sgemm" "$(cat "$tmp/rss")" "$kind" <<'PY'
import json, statistics, sys
path, model, B, T, sgemm, rss, kind = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"loss"' in l][2:]
tps = statistics.median(r["tokens_per_s"] for r in rows)
ms = int(B) * int(T) / tps * 1e3
gf = statistics.median(r["sgemm_util"] for r in rows) * float(sgemm)  # bin/train's model FLOP count
with open(path.rsplit("/", 2)[0] + "/fastest_tps", "a+") as f:  # what the loader must keep up with
    f.seek(0); prev = float(f.read() or 0); f.seek(0); f.truncate()
    f.write(str(max(prev, tps) if kind == "stream" else prev))
print(f"| {model} | {B} x {T} | {ms:.0f} | {tps:.0f} | {gf:.1f} | {float(sgemm):.1f} | {gf / float(sgemm):.2f} | {int(rss) / 1024:.0f} MiB |")
PY
}
bench gpt2-124m 4 64
bench gpt2-124m 4 256
bench gptj-124m 4 64
bench gptj-124m 4 256
bin/instruct gen --out "$tmp/ft" --train 4000 --heldout 1 >/dev/null
bin/prepare alpaca --in "$tmp/ft/train.json" --out "$tmp/ft" --val-fraction 0 2>/dev/null
bench demo-gptj 64 64 "$tmp/ft/train/*.h5" examples " (fine-tuning)"
echo
build/tests/bench_generate configs/models/gpt2-124m.json configs/models/gptj-124m.json
echo
# A decoding step is ~6 parallel regions per layer (one per matrix): threads that spin while they wait for
# the next one steal the cores of a busy machine, so the same with sleeping threads for comparison.
OMP_WAIT_POLICY=passive build/tests/bench_generate configs/models/gpt2-124m.json configs/models/gptj-124m.json
echo
build/tests/bench_loader "$tmp/data.h5" "$(cat "$tmp/fastest_tps")"
tests/tok/bench.sh
build/tests/bench_ckpt
echo
tests/bench_convert.sh
