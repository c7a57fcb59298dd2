#!/usr/bin/env bash
# make bench: training speed of bin/train at the benchmark configs. For each: ms/step, tokens/s, model
# GFLOP/s (DESIGN 10 FLOP count), the sgemm GFLOP/s that bin/train measured at start-up in the same run,
# their ratio (sgemm utilization), and peak RSS. Steps 1-2 are warm-up; the median of the rest counts.
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
bench() { # MODEL B T
    local model=$1 B=$2 T=$3
    cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/$model.json", "run_dir": "$tmp/run", "threads": $(nproc),
 "data": {"train": "$tmp/data.h5", "seq_len": $T},
 "train": {"micro_batch": $B, "steps": $STEPS, "lr": 1e-4, "log_every": 1000}}
JSON
    rm -rf "$tmp/run"
    /usr/bin/time -f '%M' -o "$tmp/rss" bin/train "$tmp/run.json" >"$tmp/out" 2>&1 ||
        { cat "$tmp/out"; exit 1; }
    local flops sgemm
    flops=$(bin/train "$tmp/run.json" --dry-run | sed -n 's/^model FLOPs per token: //p')
    sgemm=$(sed -n 's/.*sgemm \([0-9.]*\) GFLOP\/s.*/\1/p' "$tmp/run/train.log" | head -1)
    /usr/bin/python3 - "$tmp/run/metrics.jsonl" "$model" "$B" "$T" "$flops" "$sgemm" "$(cat "$tmp/rss")" <<'PY'
import json, statistics, sys
path, model, B, T, flops, sgemm, rss = sys.argv[1:]
rows = [json.loads(l) for l in open(path) if '"loss"' in l][2:]
tps = statistics.median(r["tokens_per_s"] for r in rows)
ms = int(B) * int(T) / tps * 1e3
gf = tps * float(flops) / 1e9
with open(path.rsplit("/", 2)[0] + "/fastest_tps", "a+") as f:
    f.seek(0); prev = float(f.read() or 0); f.seek(0); f.truncate(); f.write(str(max(prev, tps)))
print(f"| {model} | {B} x {T} | {ms:.0f} | {tps:.0f} | {gf:.1f} | {float(sgemm):.1f} | {gf / float(sgemm):.2f} | {int(rss) / 1024:.0f} MiB |")
PY
}
bench gpt2-124m 4 64
bench gpt2-124m 4 256
bench gptj-124m 4 64
bench gptj-124m 4 256
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
