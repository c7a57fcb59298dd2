#!/usr/bin/env bash
# Checkpoints in bin/train (issue 4): bit-identical resume (also after a SIGTERM at a random moment),
# SIGKILL during saves never breaks `latest`, corrupted/truncated/deleted checkpoints are refused or
# skipped with a note, model changes are refused, init_from and --eval-only.
set -u
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
trap 'pkill -9 -f "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
say() { if [ "$1" = 0 ]; then echo "ok $2"; else echo "FAIL $2: ${3:-}"; fi; }

bin/prepare synthetic --out "$tmp/train.h5" --tokens 100000 --vocab 240 --seed 1 2>/dev/null
bin/prepare synthetic --out "$tmp/val.h5" --tokens 10000 --vocab 240 --seed 2 2>/dev/null
cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/tiny-gpt2.json", "threads": 2,
 "data": {"train": "$tmp/train.h5", "val": "$tmp/val.h5", "seq_len": 32},
 "train": {"micro_batch": 4, "global_batch": 8, "steps": 20, "lr": 3e-3, "warmup_steps": 3,
           "anneal_steps": 17, "log_every": 100, "eval_batches": 2}}
JSON
R=$tmp/run.json
losses() { /usr/bin/python3 -c "
import json, sys
print(' '.join(repr(json.loads(l)['loss']) for l in open(sys.argv[1]) if '\"loss\"' in l))" "$1"; }
params_equal() { /usr/bin/python3 - "$1" "$2" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
names = []
a["params"].visit(lambda n: names.append(n) if isinstance(a["params"][n], h5py.Dataset) else None)
same = all(np.array_equal(a["params"][n][()], b["params"][n][()]) for n in names)
sys.exit(0 if same and len(names) > 10 else 1)
PY
}

# 1. 20 steps straight; 10, then resume for 10 more: identical losses and parameters.
bin/train $R --set run_dir="$tmp/straight" >/dev/null 2>&1
bin/train $R --set run_dir="$tmp/split" --set train.steps=10 >/dev/null 2>&1
bin/train $R --set run_dir="$tmp/split" >"$tmp/split.out" 2>&1
[ "$(losses "$tmp/straight/metrics.jsonl")" = "$(losses "$tmp/split/metrics.jsonl")" ]
say $? "resume: 20 losses bit-identical to a straight run" "$(losses "$tmp/split/metrics.jsonl")"
params_equal "$tmp/straight/ckpt/latest" "$tmp/split/ckpt/latest"
say $? "resume: final parameters bit-identical"
grep -q "resumed from .*step_10.h5 at step 10" "$tmp/split.out"
say $? "resume: says where it resumed" "$(head -3 "$tmp/split.out")"

# 2. SIGTERM at a random moment: exit 3 with a checkpoint; the rerun finishes identically.
S="--set model.d_model=256 --set model.d_ff=1024 --set train.log_every=1"
bin/train $R $S --set run_dir="$tmp/sigref" >/dev/null 2>&1
for attempt in 1 2; do
    rm -rf "$tmp/sig"
    bin/train $R $S --set run_dir="$tmp/sig" >"$tmp/sig.out" 2>&1 &
    pid=$!
    for _ in $(seq 200); do grep -q "^step" "$tmp/sig/train.log" 2>/dev/null && break; sleep 0.05; done
    sleep "0.$((RANDOM % 5))"
    kill -TERM $pid
    wait $pid
    rc=$?
    bin/train $R $S --set run_dir="$tmp/sig" >>"$tmp/sig.out" 2>&1
    rc2=$?
    [ $rc = 3 ] && [ $rc2 = 0 ] && [ "$(losses "$tmp/sigref/metrics.jsonl")" = "$(losses "$tmp/sig/metrics.jsonl")" ] &&
        params_equal "$tmp/sigref/ckpt/latest" "$tmp/sig/ckpt/latest"
    say $? "SIGTERM mid-run ($attempt): exit 3, resume, bit-identical" "exit $rc then $rc2: $(grep -E 'stopped|resumed' "$tmp/sig.out")"
    grep -E "stopped on signal" "$tmp/sig.out" | sed 's/^/#   /'
done

# 3. SIGKILL at random moments while checkpoints are written (a checkpoint every step): latest always
#    loads and verifies.
bad=0
for i in $(seq 12); do
    bin/train $R --set run_dir="$tmp/kill" --set train.ckpt_every=1 --set train.steps=100000 \
        --set model.d_model=256 --set model.d_ff=1024 >/dev/null 2>&1 &
    pid=$!
    sleep "0.$((RANDOM % 10))$((RANDOM % 10))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if [ -e "$tmp/kill/ckpt/latest" ]; then
        bin/train $R --set run_dir="$tmp/kill" --set model.d_model=256 --set model.d_ff=1024 --eval-only \
            >"$tmp/kill.out" 2>&1 || { bad=$((bad + 1)); cat "$tmp/kill.out"; }
        grep -q "resume:" "$tmp/kill.out" && { bad=$((bad + 1)); cat "$tmp/kill.out"; }
    fi
done
say $bad "SIGKILL during saves x12: latest always loads and verifies"

# 4. Damaged checkpoints.
cp -r "$tmp/straight" "$tmp/dmg"
bin/train $R --set run_dir="$tmp/dmg" --set train.steps=21 --set train.ckpt_every=1 >/dev/null 2>&1
newest=$(readlink "$tmp/dmg/ckpt/latest")
/usr/bin/python3 - "$tmp/dmg/ckpt/$newest" <<'PY'
import sys, h5py
path = sys.argv[1]
with h5py.File(path, "r") as f:
    off = f["params/wte"].id.get_offset()
with open(path, "r+b") as f:
    f.seek(off + 1000); b = f.read(1); f.seek(off + 1000); f.write(bytes([b[0] ^ 0x40]))
PY
bin/train $R --set run_dir="$tmp/dmg" --set train.steps=22 >"$tmp/dmg.out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "resume: .*step_21.h5.*params/wte.*step_20.h5" "$tmp/dmg.out"
say $? "flipped byte: automatic resume falls back to the previous checkpoint, saying so" "$(head -3 "$tmp/dmg.out")"
bin/train $R --set run_dir="$tmp/dmg" --resume "$tmp/dmg/ckpt/step_21.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "step_21.h5: dataset params/wte fails its checksum" "$tmp/err"
say $? "flipped byte: --resume of it refused with one line" "exit $rc: $(cat "$tmp/err")"
cp "$tmp/dmg/ckpt/step_20.h5" "$tmp/cut.h5" && truncate -s 100000 "$tmp/cut.h5"
bin/train $R --set run_dir="$tmp/dmg" --resume "$tmp/cut.h5" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "cut.h5" "$tmp/err"
say $? "truncated checkpoint refused" "exit $rc: $(cat "$tmp/err")"
rm "$tmp/dmg/ckpt/$(readlink "$tmp/dmg/ckpt/latest")"
bin/train $R --set run_dir="$tmp/dmg" --set train.steps=22 --eval-only >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 0 ] && grep -q "resume: .*step_20.h5" "$tmp/out" && grep -q "^eval_loss: [0-9.]*$" "$tmp/out"
say $? "deleted newest: falls back past the corrupted one to step_20" "exit $rc: $(cat "$tmp/out" "$tmp/err")"

# 5. A changed model is refused naming the field; init_from takes parameters only; --eval-only.
bin/train $R --set run_dir="$tmp/straight" --set model.local_window=8 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -q "model config differs.*model.local_window" "$tmp/err"
say $? "changed model refused naming the field" "exit $rc: $(cat "$tmp/err")"
bin/train $R --set run_dir="$tmp/ft" --set train.init_from="$tmp/straight/ckpt/latest" --set train.steps=1 \
    >"$tmp/ft.out" 2>&1
first=$(losses "$tmp/ft/metrics.jsonl")
last=$(losses "$tmp/straight/metrics.jsonl" | awk '{print $NF}')
/usr/bin/python3 -c "import sys; sys.exit(0 if abs(float('$first') - float('$last')) < 0.3 else 1)" &&
    grep -q "init_from .*parameters of step 20" "$tmp/ft.out"
say $? "init_from: parameters only, fresh step 1 near the source's loss" "first $first vs $last"
out=$(bin/train $R --set run_dir="$tmp/straight" --eval-only 2>&1 | tail -1)
[[ "$out" =~ ^eval_loss:\ [0-9]+\.[0-9]+$ ]]
say $? "--eval-only prints one eval_loss line" "$out"

# 6. A second SIGINT stops at once without touching latest.
rm -rf "$tmp/int"
bin/train $R --set run_dir="$tmp/int" --set train.steps=100000 --set model.d_model=512 --set model.d_ff=2048 \
    --set model.n_layer=4 --set train.log_every=1 >/dev/null 2>&1 &
pid=$!
for _ in $(seq 400); do grep -q "^step" "$tmp/int/train.log" 2>/dev/null && break; sleep 0.05; done
kill -INT $pid
sleep 0.05
kill -INT $pid
wait $pid
rc=$?
[ $rc -ne 0 ] && [ $rc -ne 3 ] && [ ! -e "$tmp/int/ckpt/latest" ]
say $? "second SIGINT stops at once, no checkpoint" "exit $rc, $(ls "$tmp/int/ckpt")"

# 7. A stop signal during start-up, before MPI_Init (bin/train installs its handlers first thing): it is
#    remembered, not fatal; the run trains its first step, writes step_1.h5 and exits 3, and a rerun resumes
#    from it and ends bit-identical to the straight run. The signal goes out as soon as /proc/PID/status
#    shows the USR1 handler of bin/train (SigCgt bit 9) while it still has a single thread (MPI_Init
#    starts threads); an attempt that misses that moment is retried, and a build that installs its
#    handlers only after MPI_Init never gets one.
caught_usr1() { # PID: bin/train (exec done: before it, the forked bash catches USR1 itself) catches USR1
    local pid comm k v
    read -r pid comm _ 2>/dev/null <"/proc/$1/stat" && [ "$comm" = "(train)" ] || return 1
    while read -r k v; do
        [ "$k" = SigCgt: ] && { (((0x$v >> 9) & 1)); return; }
    done 2>/dev/null <"/proc/$1/status"
    return 1
}
early_signal() { # SIG PID: sends SIG once PID catches USR1, if it still runs one thread; else 1
    local t0=$SECONDS threads
    until caught_usr1 "$2"; do
        kill -0 "$2" 2>/dev/null && [ $((SECONDS - t0)) -lt 20 ] || return 1
    done
    threads=("/proc/$2/task/"*)
    [ ${#threads[@]} = 1 ] || return 1
    kill -"$1" "$2"
}
for sig in USR1 TERM; do
    result="no attempt caught the process before MPI_Init (handlers installed too late?)"
    for attempt in 1 2 3 4 5; do
        rm -rf "$tmp/early"
        bin/train "$R" --set run_dir="$tmp/early" >"$tmp/early.out" 2>&1 &
        pid=$!
        early_signal "$sig" $pid
        sent=$?
        wait $pid
        rc=$?
        [ $sent = 0 ] || continue
        first=$(readlink "$tmp/early/ckpt/latest")
        bin/train "$R" --set run_dir="$tmp/early" >"$tmp/early2.out" 2>&1
        rc2=$?
        num=$(kill -l "$sig")
        [ $rc = 3 ] && grep -q "stopped on signal $num after step 1;" "$tmp/early.out" && [ "$first" = step_1.h5 ] &&
            grep -q "resumed from .*step_1.h5 at step 1 " "$tmp/early2.out" && [ $rc2 = 0 ] &&
            [ "$(losses "$tmp/straight/metrics.jsonl")" = "$(losses "$tmp/early/metrics.jsonl")" ] &&
            params_equal "$tmp/straight/ckpt/latest" "$tmp/early/ckpt/latest"
        say $? "SIG$sig during start-up: remembered, step 1, step_1.h5, exit 3; the rerun ends bit-identical" \
            "exit $rc then $rc2: $(grep -hE 'stopped|resumed|error' "$tmp/early.out" "$tmp/early2.out" | tr '\n' ' ')"
        result=''
        break
    done
    [ -z "$result" ] || say 1 "SIG$sig during start-up" "$result"
done
# The same under mpirun with 2 ranks, the signal to rank 1 only, while it waits in MPI_Init for rank 0,
# which starts 2 s late: rank 1 remembers it and the stop is agreed over the ranks.
if command -v mpirun >/dev/null; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
    comm_of() { local c; read -r _ c _ 2>/dev/null <"/proc/$1/stat" && echo "$c"; }
    rank_of() { # PID: its OMPI_COMM_WORLD_RANK, or nothing
        local env
        mapfile -d '' env 2>/dev/null <"/proc/$1/environ" || return
        printf '%s\n' "${env[@]}" | sed -n 's/^OMPI_COMM_WORLD_RANK=//p'
    }
    result="rank 0 had started bin/train before rank 1 could be signalled in every attempt"
    for attempt in 1 2 3; do
        rm -rf "$tmp/early2"
        args=("$R" --set threads=1 --set run_dir="$tmp/early2")
        # shellcheck disable=SC2016 # $0 and $@ are for the inner sh
        OMP_NUM_THREADS=1 mpirun -n 1 sh -c 'sleep 2; exec "$0" "$@"' bin/train "${args[@]}" : \
            -n 1 bin/train "${args[@]}" >"$tmp/early.out" 2>&1 &
        job=$!
        rank0='' rank1='' t0=$SECONDS
        while { [ -z "$rank0" ] || [ -z "$rank1" ] || [ "$(comm_of "$rank1")" != "(train)" ]; } &&
            [ $((SECONDS - t0)) -lt 20 ] && kill -0 $job 2>/dev/null; do
            for p in $(pgrep -P $job); do
                case $(rank_of "$p") in 0) rank0=$p ;; 1) rank1=$p ;; esac
            done
            sleep 0.05
        done
        sleep 1 # rank 1 is in MPI_Init now, waiting for rank 0
        sent=1
        if [ -n "$rank1" ] && [ "$(comm_of "$rank0")" != "(train)" ]; then kill -USR1 "$rank1" && sent=0; fi
        wait $job
        rc=$?
        [ $sent = 0 ] || continue
        [ $rc = 3 ] && grep -q "stopped on signal 10 after step 1;" "$tmp/early.out" &&
            [ "$(readlink "$tmp/early2/ckpt/latest")" = step_1.h5 ]
        say $? "SIGUSR1 to rank 1 of 2 in MPI_Init: both stop after step 1, step_1.h5, exit 3" \
            "exit $rc: $(grep -E 'stopped|error|signal' "$tmp/early.out" | head -n 3 | tr '\n' ' ')"
        result=''
        break
    done
    [ -z "$result" ] || say 1 "SIGUSR1 to rank 1 of 2 in MPI_Init" "$result"
fi
