#!/usr/bin/env bash
# Data and tensor parallelism under mpirun (4 ranks oversubscribed on 2 cores): the layouts against one
# process (build/tests/mpi_parallel), bin/train itself under mpirun, bad layouts, and a killed rank.
set -u
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mpirun -n 4 build/tests/mpi_parallel 2>&1 || echo "FAIL mpi_parallel: exited with status $?"

bin/prepare synthetic --out "$tmp/train.h5" --tokens 50000 --vocab 240 2>/dev/null
cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/tiny-neo.json", "threads": 1,
 "data": {"train": "$tmp/train.h5", "seq_len": 32},
 "train": {"micro_batch": 2, "global_batch": 8, "steps": 12, "lr": 3e-3, "warmup_steps": 2, "anneal_steps": 10,
           "log_every": 4}}
JSON
bin/train "$tmp/run.json" --set run_dir="$tmp/single" >"$tmp/single.out" 2>&1 ||
    echo "FAIL bin/train single: $(tail -2 "$tmp/single.out")"
for layout in "2 2 1" "4 2 2" "4 4 1"; do
    set -- $layout
    n=$1 tp=$2 dp=$3
    mpirun -n "$n" bin/train "$tmp/run.json" --set run_dir="$tmp/mpi$n-$tp" --set parallel.tp="$tp" \
        >"$tmp/mpi.out" 2>&1 || echo "FAIL bin/train tp=$tp dp=$dp: $(tail -2 "$tmp/mpi.out")"
    /usr/bin/python3 - "$tmp/single/metrics.jsonl" "$tmp/mpi$n-$tp/metrics.jsonl" "tp=$tp dp=$dp" <<'PY'
import json, sys
a, b, name = sys.argv[1:]
la = [json.loads(l)["loss"] for l in open(a)]
try:
    lb = [json.loads(l)["loss"] for l in open(b)]
except OSError as e:
    lb = []
worst = max((abs(x - y) / abs(x) for x, y in zip(la, lb)), default=float("nan"))
ok = len(la) == len(lb) == 12 and worst <= 1e-5
print(f"ok bin/train {name}: 12 losses equal one process's" if ok else
      f"FAIL bin/train {name}: 12 losses equal one process's: worst {worst:.2e}, {len(lb)} rows")
if ok: print(f"#   worst relative difference {worst:.2e}")
PY
done
# train.recompute under tensor parallelism (the rerun forward repeats its all-reduces): the same losses,
# bit for bit, as the tp=2 run that kept its activations.
mpirun -n 2 bin/train "$tmp/run.json" --set run_dir="$tmp/recompute" --set parallel.tp=2 \
    --set train.recompute=true >"$tmp/recompute.out" 2>&1 ||
    echo "FAIL bin/train recompute: $(tail -2 "$tmp/recompute.out")"
losses() { grep -o '"loss": [^,]*' "$1/metrics.jsonl"; }
if cmp -s <(losses "$tmp/mpi2-2") <(losses "$tmp/recompute") &&
    [ "$(grep -c '"loss"' "$tmp/recompute/metrics.jsonl")" -eq 12 ]; then
    echo "ok bin/train tp=2 recompute: 12 losses bit-identical to tp=2 without"
else
    echo "FAIL bin/train tp=2 recompute: losses differ from tp=2 without recompute"
fi
# Checkpoints move between layouts: save after 6 steps in one layout, resume to 12 in another; the
# continuing losses match the uninterrupted single-process run.
run_layout() { # N TP RUN_DIR STEPS
    if [ "$1" = 1 ]; then
        bin/train "$tmp/run.json" --set run_dir="$3" --set parallel.tp="$2" --set train.steps="$4"
    else
        mpirun -n "$1" bin/train "$tmp/run.json" --set run_dir="$3" --set parallel.tp="$2" --set train.steps="$4"
    fi >>"$tmp/move.out" 2>&1
}
for move in "4 2 1 1" "4 2 4 4" "1 1 4 2" "4 4 4 2"; do
    set -- $move
    dir=$tmp/move-$1-$2-$3-$4
    run_layout "$1" "$2" "$dir" 6 && run_layout "$3" "$4" "$dir" 12 ||
        echo "FAIL move $move: $(tail -3 "$tmp/move.out")"
    /usr/bin/python3 - "$tmp/single/metrics.jsonl" "$dir/metrics.jsonl" "$1" "$2" "$3" "$4" <<'PY'
import json, sys
a, b, n1, tp1, n2, tp2 = sys.argv[1:]
la = [json.loads(l)["loss"] for l in open(a)]
lb = [json.loads(l)["loss"] for l in open(b)] if b else []
worst = max((abs(x - y) / abs(x) for x, y in zip(la, lb)), default=float("nan"))
name = f"checkpoint saved at (tp {tp1}, dp {int(n1)//int(tp1)}) resumed at (tp {tp2}, dp {int(n2)//int(tp2)})"
ok = len(lb) == 12 and worst <= 1e-5
print(f"ok {name}: losses match" if ok else f"FAIL {name}: losses match: worst {worst:.2e}, {len(lb)} rows")
if ok: print(f"#   worst relative difference {worst:.2e}")
PY
done

grep -q "comm .* MB" "$tmp/mpi4-2/train.log" && echo "ok step line reports communication" ||
    echo "FAIL step line reports communication: $(tail -1 "$tmp/mpi4-2/train.log")"

# Bad layouts: one line, exit 2.
mpirun -n 2 bin/train "$tmp/run.json" --set parallel.tp=3 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && [ "$(grep -c 'parallel.tp: 3 does not divide the world size 2' "$tmp/err")" -eq 1 ] &&
    echo "ok bad tp refused with one line" || echo "FAIL bad tp refused with one line: rc $rc: $(cat "$tmp/err")"
mpirun -n 4 bin/train "$tmp/run.json" --set train.global_batch=6 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -q "train.global_batch: 6 is not a multiple of micro_batch 2 x data-parallel size 4" "$tmp/err" &&
    echo "ok batch not divisible by dp refused" || echo "FAIL batch not divisible by dp refused: rc $rc: $(cat "$tmp/err")"

# A rank that dies brings the job down, non-zero, within 30 s.
mpirun -n 2 bin/train "$tmp/run.json" --set run_dir="$tmp/kill" --set train.steps=100000 >"$tmp/kill.out" 2>&1 &
job=$!
for _ in $(seq 100); do grep -q "^step" "$tmp/kill/train.log" 2>/dev/null && break; sleep 0.2; done
victim=$(pgrep -f "run_dir=$tmp/kill" | grep -v "^$job\$" | while read -r p; do
    [ "$(cat /proc/$p/comm 2>/dev/null)" = train ] && echo "$p"; done | tail -1)
start=$SECONDS
kill -9 "$victim"
waited=0
while kill -0 $job 2>/dev/null && [ $((SECONDS - start)) -lt 30 ]; do sleep 0.5; done
if kill -0 $job 2>/dev/null; then
    echo "FAIL killed rank: job still running after 30 s"
    kill -9 $job
else
    wait $job
    rc=$?
    [ $rc -ne 0 ] && echo "ok killed rank: job exited $rc after $((SECONDS - start)) s" ||
        echo "FAIL killed rank: job exited 0"
fi
pkill -9 -f "run_dir=$tmp/kill" 2>/dev/null
true
