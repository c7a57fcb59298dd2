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
