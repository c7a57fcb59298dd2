#!/usr/bin/env bash
# Nothing lost, nothing hung (issue 11): each way a cluster or a user breaks a job, and what bin/train does.
# Numbers refer to the README's "Reliability" table. Needs root for the tmpfs of the disk-full checks.
set -u
cd "$(dirname "$0")/.."
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
cleanup() {
    pkill -9 -f "$tmp" 2>/dev/null
    mountpoint -q "$tmp/small" && umount "$tmp/small"
    rm -rf "$tmp"
}
trap cleanup EXIT
say() { if [ "$1" = 0 ]; then echo "ok $2"; else echo "FAIL $2: ${3:-}"; fi; }
crashed() { [ "$1" -ge 128 ] || [ "$1" = 86 ]; } # a signal, or a sanitizer report (make SAN=1 test)
one_line() { [ "$(wc -l <"$1")" = 1 ]; }

bin/prepare synthetic --out "$tmp/train.h5" --tokens 60000 --vocab 240 --seed 1 2>/dev/null
bin/prepare synthetic --out "$tmp/val.h5" --tokens 6000 --vocab 240 --seed 2 2>/dev/null
cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/tiny-gpt2.json", "threads": 1,
 "data": {"train": "$tmp/train.h5", "val": "$tmp/val.h5", "seq_len": 32},
 "train": {"micro_batch": 4, "global_batch": 8, "steps": 6, "ckpt_every": 2, "log_every": 1, "eval_batches": 2}}
JSON
R=$tmp/run.json
bin/train $R --set run_dir="$tmp/base" >/dev/null 2>&1 || echo "FAIL base run"

# --- 1. Memory safety: failed loads never free what they did not allocate -------------------------------
h5edit() { /usr/bin/python3 - "$@" <<'PY'
import sys, h5py
path, op = sys.argv[1], sys.argv[2]
with h5py.File(path, "r+") as f:
    if op == "drop":
        del f[sys.argv[3]]
    else:
        f.attrs.modify(sys.argv[3], int(sys.argv[4]))
PY
}
cp "$tmp/base/ckpt/step_6.h5" "$tmp/nolayer.h5" && h5edit "$tmp/nolayer.h5" drop params/h.0.mlp.fc_in.weight
echo "not an HDF5 file" >"$tmp/text.h5"
check_load() { # NAME EXPECTED_TEXT ARGS...: exit 2, one line with the text, no crash, three times
    local name=$1 want=$2 bad=0 rc
    shift 2
    for _ in 1 2 3; do
        rm -rf "$tmp/load"
        bin/train $R --set run_dir="$tmp/load" "$@" >"$tmp/out" 2>"$tmp/err"
        rc=$?
        { [ $rc = 2 ] && ! crashed $rc && one_line "$tmp/err" && grep -q -- "$want" "$tmp/err"; } || bad=1
    done
    say $bad "1. $name: exit 2, one line, no crash (x3)" "exit $rc: $(head -c 600 "$tmp/err")"
}
check_load "resume with a changed model" "model config differs" --resume "$tmp/base/ckpt/step_6.h5" \
    --set model.local_window=8
check_load "init_from a missing file" "missing.h5: cannot open checkpoint" --set train.init_from="$tmp/missing.h5"
check_load "--resume of a checkpoint lacking a tensor" "h.0.mlp.fc_in.weight missing" --resume "$tmp/nolayer.h5"
check_load "--resume of a non-HDF5 file" "text.h5: not an HDF5 file" --resume "$tmp/text.h5"

# --- 2. Full disks: refused before writing, or cleaned up after a failed write; never a hang or a crash --
mkdir -p "$tmp/small"
if mount -t tmpfs -o size=2200k tmpfs "$tmp/small" 2>/dev/null; then
    # Room for one checkpoint (1.5 MB) but not two: the second save is refused before anything is written.
    bin/train $R --set run_dir="$tmp/small/run" --set train.keep_last=2 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] && grep -q "not enough free space for step_4.h5: it needs" "$tmp/err" &&
        [ "$(readlink "$tmp/small/run/ckpt/latest")" = step_2.h5 ] && [ -z "$(ls "$tmp/small/run/ckpt" | grep tmp)" ]
    say $? "2. disk full (tmpfs): refused before writing, latest still step_2.h5, no .tmp left" \
        "exit $rc: $(cat "$tmp/err"); $(ls "$tmp/small/run/ckpt")"
    bin/train $R --set run_dir="$tmp/small/run" --eval-only >"$tmp/out" 2>&1
    say $? "2. disk full (tmpfs): the run resumes from latest" "$(tail -2 "$tmp/out")"
    umount "$tmp/small"
else
    say 1 "2. disk full (tmpfs)" "cannot mount a tmpfs (this test needs root)"
fi
# Every write failing (the file is /dev/full): the failure is agreed on by every rank after the dataset,
# the file is closed and deleted, and the job ends with one line; under mpirun it used to hang forever.
for layout in "1 1" "2 2" "2 1"; do
    set -- $layout
    n=$1 tp=$2
    rm -rf "$tmp/full" && mkdir -p "$tmp/full/ckpt" && ln -s /dev/full "$tmp/full/ckpt/step_4.h5.tmp"
    t0=$SECONDS
    timeout 120 mpirun -n "$n" bin/train $R --set run_dir="$tmp/full" --set parallel.tp="$tp" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] && grep -q "step_4.h5.tmp: cannot write dataset /params/wte" "$tmp/err" &&
        [ "$(readlink "$tmp/full/ckpt/latest")" = step_2.h5 ] && [ ! -e "$tmp/full/ckpt/step_4.h5.tmp" ]
    say $? "2. writes failing mid-checkpoint, $n rank(s), tp=$tp: exit 1 in $((SECONDS - t0)) s, latest kept, .tmp removed" \
        "exit $rc: $(grep -v '^mca_\|^,mca' "$tmp/err" | head -3)"
done

# --- 3. Failed writes to metrics.jsonl and train.log stop the run, after a checkpoint --------------------
for f in metrics.jsonl train.log; do
    rm -rf "$tmp/log" && mkdir -p "$tmp/log" && ln -s /dev/full "$tmp/log/$f"
    bin/train $R --set run_dir="$tmp/log" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 1 ] && grep -q "$f: write failed: No space left on device" "$tmp/err" && one_line "$tmp/err" &&
        [ "$(readlink "$tmp/log/ckpt/latest")" = step_1.h5 ]
    say $? "3. $f unwritable: exit 1 after step 1 with its checkpoint" "exit $rc: $(cat "$tmp/err")"
done

# --- 4. 64-bit counts: every collective and checkpoint hyperslab cut into pieces of MT_CHUNK_ELEMS --------
MT_CHUNK_ELEMS=1000 bash tests/test_parallel.sh >"$tmp/chunked.out" 2>&1
p=$(grep -c '^ok ' "$tmp/chunked.out")
f=$(grep -c '^FAIL ' "$tmp/chunked.out")
[ "$f" = 0 ] && [ "$p" -ge 60 ]
say $? "4. the parallel suite with MT_CHUNK_ELEMS=1000 (every collective and hyperslab in pieces): $p ok" \
    "$(grep '^FAIL' "$tmp/chunked.out" | head -5)"
run_ckpt() { # DIR [ENV]: 2 steps at tp=2 x dp=2 with ZeRO-1
    env ${2:-} timeout 120 mpirun -n 4 bin/train $R --set run_dir="$1" --set parallel.tp=2 --set train.steps=2 \
        --set train.global_batch=8 >/dev/null 2>&1
}
run_ckpt "$tmp/whole" && run_ckpt "$tmp/pieces" MT_CHUNK_ELEMS=777
/usr/bin/python3 - "$tmp/whole/ckpt/step_2.h5" "$tmp/pieces/ckpt/step_2.h5" <<'PY'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:])
names = []
a.visit(lambda n: names.append(n) if isinstance(a[n], h5py.Dataset) else None)
same = all(np.array_equal(a[n][()], b[n][()]) and np.array_equal(a[n].attrs["crc32c"], b[n].attrs["crc32c"])
           for n in names)
print(("ok" if same and len(names) > 30 else "FAIL") +
      f" 4. a checkpoint written in pieces of 777 elements by 4 ranks equals one written whole ({len(names)} datasets)")
PY

# --- 5. A stopped rank ends the job with a line naming it, and the waiting rank does not spin ------------
cpu_seconds() { awk '{print ($14 + $15) / 100}' "/proc/$1/stat"; }
rank_pid() { # RANK: the bin/train process of that rank in this test
    local p
    for p in $(pgrep -f "bin/train $R"); do
        tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$1" && echo "$p"
    done
}
stop_rank1() { # RUN_DIR EXTRA...: starts 2 ranks, SIGSTOPs rank 1 once training runs; sets rc, took, cpu
    local dir=$1
    shift
    rm -rf "$dir"
    MT_COMM_TIMEOUT=4 timeout 90 mpirun -n 2 -x MT_COMM_TIMEOUT bin/train $R --set run_dir="$dir" \
        --set parallel.tp=2 --set train.steps=100000 "$@" >"$tmp/out" 2>"$tmp/err" &
    local job=$! r0 r1
    for _ in $(seq 300); do grep -q "^step 3/" "$dir/train.log" 2>/dev/null && break; sleep 0.1; done
    r0=$(rank_pid 0)
    r1=$(rank_pid 1)
    kill -STOP "$r1"
    local t0=$SECONDS c0
    sleep 1
    c0=$(cpu_seconds "$r0")
    sleep 2
    cpu=$(awk -v a="$(cpu_seconds "$r0")" -v b="$c0" 'BEGIN { print a - b }')
    wait $job
    rc=$?
    took=$((SECONDS - t0))
    kill -9 "$r1" 2>/dev/null
}
stop_rank1 "$tmp/stop" --set train.ckpt_every=0
# With tp=2 the tp group is the world: the stop lands in a collective of either (the gradient or the loss all-reduce).
grep -q "rank 0: all-reduce on the \(tp group\|world\) did not complete within 4 s (MT_COMM_TIMEOUT): rank 1 never arrived" "$tmp/err" &&
    [ $rc != 0 ] && [ $took -lt 30 ] && awk -v c="$cpu" 'BEGIN { exit !(c < 0.5) }'
say $? "5. SIGSTOP of rank 1: the job ends in $took s naming rank 1; the waiting rank used ${cpu} s of CPU in 2 s" \
    "exit $rc after $took s, cpu $cpu: $(grep -v '^-\|^$' "$tmp/err" | head -3)"
# The same while checkpoints are written at every step: the stop lands in a checkpoint write (HDF5 metadata operations are collective)
# (guarded by the watchdog) or in a collective of ours; either way the job ends with a line saying so.
stop_rank1 "$tmp/stopck" --set train.ckpt_every=1 --set model.d_model=256 --set model.d_ff=1024
grep -q "rank 1 never arrived\|write of checkpoint step_[0-9]*.h5 made no progress" "$tmp/err" &&
    [ $rc != 0 ] && [ $took -lt 30 ]
say $? "5. SIGSTOP of rank 1 while checkpointing every step: the job ends in $took s with one line" \
    "exit $rc after $took s: $(grep -v '^-\|^$' "$tmp/err" | head -3)"

# --- 6. A failing rank's message reaches the user with its rank ------------------------------------------
/usr/bin/python3 - "$tmp/train.h5" "$tmp/zbad.h5" <<'PY'
import sys, shutil, h5py
shutil.copy(sys.argv[1], sys.argv[2])
with h5py.File(sys.argv[2], "r+") as f:
    f["tokens"][100] = 245   # vocab_size 240 in the shard, the model's is 250: only the loss_vocab check fails
PY
# Shards are dealt out over the ranks for the check before step 1: rank 1 checks the second in name order.
timeout 60 mpirun -n 2 bin/train $R --set run_dir="$tmp/rank" --set "data.train=[\"$tmp/train.h5\",\"$tmp/zbad.h5\"]" \
    --set parallel.tp=2 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "^train: rank 1: .*zbad.h5: token id 245 at offset 100 is a target but not below loss_vocab 240" "$tmp/err"
say $? "6. a failure on rank 1 only: rank 0 prints it with the rank" "exit $rc: $(head -3 "$tmp/err")"

# --- 7. Checkpoint attributes: checksummed and range-checked ---------------------------------------------
meta_edit() { # FILE NAME VALUE [rehash]: sets a root attribute, and with rehash a valid meta_crc32c for it
    /usr/bin/python3 - "$@" <<'PY'
import sys, h5py, numpy as np
path, name, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
rehash = len(sys.argv) > 4
def crc32c(data):  # CRC-32C (Castagnoli), reflected polynomial 0x82F63B78
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF
with h5py.File(path, "r+") as f:
    a = f.attrs
    a.modify(name, np.int64(value))
    def s(k):
        v = a[k]
        return v.decode() if isinstance(v, bytes) else str(v)
    text = (f"format={s('format')}\nformat_version={s('format_version')}\nstep={s('step')}\n"
            f"tokens_seen={s('tokens_seen')}\nloader_epoch={s('loader_epoch')}\nloader_cursor={s('loader_cursor')}\n"
            f"rng_state={s('rng_state')}\nworld_dp={s('world_dp')}\nworld_tp={s('world_tp')}\nthreads={s('threads')}\n"
            f"config={s('config')}")
    if rehash:
        a.modify("meta_crc32c", np.uint64(crc32c(text.encode())))
PY
}
for edit in "loader_cursor 999999999999" "step -5" "world_tp 0" "tokens_seen -1" "loader_epoch 4000000000"; do
    set -- $edit
    cp "$tmp/base/ckpt/step_6.h5" "$tmp/meta.h5" && meta_edit "$tmp/meta.h5" "$1" "$2"
    bin/train $R --set run_dir="$tmp/meta" --resume "$tmp/meta.h5" --set train.steps=8 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && grep -q "meta.h5: the root attributes fail their checksum" "$tmp/err" && one_line "$tmp/err"
    say $? "7. $1 = $2 edited: refused by the attribute checksum" "exit $rc: $(cat "$tmp/err")"
done
for edit in "step -5 attribute step is out of range" "world_tp 0 attribute world_tp is out of range" \
    "loader_cursor 999999 loader_cursor 999999 is beyond the [0-9]* sequences of data.train"; do
    set -- $edit
    name=$1 value=$2
    shift 2
    cp "$tmp/base/ckpt/step_6.h5" "$tmp/meta.h5" && meta_edit "$tmp/meta.h5" "$name" "$value" rehash
    timeout 30 bin/train $R --set run_dir="$tmp/meta" --resume "$tmp/meta.h5" --set train.steps=8 >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && grep -q "$*" "$tmp/err" && one_line "$tmp/err"
    say $? "7. $name = $value with a valid checksum: refused by the range checks" "exit $rc: $(cat "$tmp/err")"
done

# --- 8. Token data is checked before step 1, and the refusal goes to train.log ---------------------------
/usr/bin/python3 - "$tmp/train.h5" "$tmp" <<'PY'
import sys, shutil, h5py, numpy as np
src, d = sys.argv[1:]
def variant(name, edit):
    shutil.copy(src, f"{d}/{name}.h5")
    with h5py.File(f"{d}/{name}.h5", "r+") as f:
        edit(f)
n = h5py.File(src, "r").attrs["n_tokens"]
variant("late_id", lambda f: f["tokens"].__setitem__(n - 3, 300))         # beyond vocab_size 250, at the end
variant("eot", lambda f: f.attrs.modify("eot_token", np.int64(7)))
def offsets(f):
    o = f["doc_offsets"][()]
    o[len(o) // 2] = o[len(o) // 2 - 1] - 1 if len(o) > 2 else 0
    f["doc_offsets"][...] = o
variant("offsets", offsets)
PY
for v in "late_id token id 300 at offset" "eot eot_token 7 differs from the model's eot_token 0" \
    "offsets /doc_offsets is not an increasing list"; do
    set -- $v
    name=$1
    shift
    rm -rf "$tmp/data"
    bin/train $R --set run_dir="$tmp/data" --set data.train="$tmp/$name.h5" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && grep -q "$name.h5: $*" "$tmp/err" && ! grep -q "^step" "$tmp/out" &&
        grep -q "^error: .*$name.h5: $*" "$tmp/data/train.log"
    say $? "8. shard with a bad $name: refused before step 1, in train.log" "exit $rc: $(cat "$tmp/err")"
done

# --- 9. Values that poison the weights --------------------------------------------------------------------
bin/train $R --set run_dir="$tmp/eps" --set train.eps=0 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "train.eps: 0 is outside" "$tmp/err"
say $? "9. train.eps = 0 refused" "exit $rc: $(cat "$tmp/err")"
# lr 10 with weight decay 10 multiplies the weights by -99 per step: the losses stop being finite, the run
# stops after a checkpoint of its last sound step, and that checkpoint holds finite values only (a NaN
# parameter is never saved nor loaded: test_ckpt non_finite).
bin/train $R --set run_dir="$tmp/nan" --set train.lr=10 --set train.weight_decay=10 --set train.clip=0 \
    --set train.warmup_steps=0 --set train.schedule=constant --set train.max_bad_steps=1 --set train.steps=200 \
    --set train.ckpt_every=1000 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 1 ] && grep -q "non-finite steps in a row" "$tmp/err" && /usr/bin/python3 - "$tmp/nan/ckpt/latest" <<'PY'
import sys, h5py, numpy as np
f = h5py.File(sys.argv[1], "r")
names = []
f.visit(lambda n: names.append(n) if isinstance(f[n], h5py.Dataset) else None)
sys.exit(0 if names and all(np.isfinite(f[n][()]).all() for n in names) else 1)
PY
say $? "9. weights driven to overflow: the run stops, its checkpoint holds finite values only" \
    "exit $rc: $(cat "$tmp/err")"

# --- 10. Run directories that are not one ---------------------------------------------------------------
for d in '' / /./; do
    bin/train $R --set run_dir="$d" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && grep -q "run_dir: must not be" "$tmp/err" && [ ! -e /metrics.jsonl ] && [ ! -e /ckpt ]
    say $? "10. run_dir '$d' refused" "exit $rc: $(cat "$tmp/err")"
done

# --- 11. Memory: estimated before it is allocated ---------------------------------------------------------
bin/train $R --set run_dir="$tmp/huge" --set model.d_model=16384 --set model.d_ff=65536 --set model.n_layer=40 \
    --set model.n_head=16 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "needs [0-9.]* GiB per rank .* but [0-9.]* GiB is available" "$tmp/err" && one_line "$tmp/err"
say $? "11. a model too large for the machine refused before allocating" "exit $rc: $(cat "$tmp/err")"
sed "s#\"model\": \"[^\"]*\"#\"model\": \"/dev/zero\"#" $R >"$tmp/zero.json"
bin/train "$tmp/zero.json" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "/dev/zero: not a regular file" "$tmp/err"
say $? "11. \"model\": \"/dev/zero\" refused" "exit $rc: $(cat "$tmp/err")"
if [ -z "${MT_SAN:-}" ]; then # AddressSanitizer reserves terabytes of address space: no ulimit -v there
    (
        ulimit -v 2500000
        bin/train $R --set run_dir="$tmp/ulimit" --set model.d_model=2048 --set model.d_ff=8192 \
            --set model.n_layer=8 >"$tmp/out" 2>"$tmp/err"
    )
    rc=$?
    [ $rc = 1 ] && grep -q "out of memory: cannot allocate [0-9.]* GiB for" "$tmp/err" && one_line "$tmp/err"
    say $? "11. an allocation that fails anyway (ulimit -v): exit 1, one line" "exit $rc: $(tail -3 "$tmp/err")"
fi

# --- 12. latest that is a folder; the signal to send to mpirun ---------------------------------------------
rm -rf "$tmp/dir" && mkdir -p "$tmp/dir/ckpt/latest"
bin/train $R --set run_dir="$tmp/dir" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc = 2 ] && grep -q "ckpt/latest is not a symbolic link to a checkpoint (a folder)" "$tmp/err" &&
    ! grep -q "^step" "$tmp/out"
say $? "12. latest that is a folder: refused at start" "exit $rc: $(cat "$tmp/err")"
rm -rf "$tmp/usr1"
timeout 90 mpirun -n 2 bin/train $R --set run_dir="$tmp/usr1" --set parallel.tp=2 --set train.steps=100000 \
    --set train.ckpt_every=0 >"$tmp/out" 2>"$tmp/err" &
job=$!
for _ in $(seq 300); do grep -q "^step 2/" "$tmp/usr1/train.log" 2>/dev/null && break; sleep 0.1; done
kill -USR1 "$(pgrep -P $job mpirun || echo $job)"
wait $job
rc=$?
[ $rc = 3 ] && grep -q "stopped on signal 10" "$tmp/usr1/train.log" && [ -L "$tmp/usr1/ckpt/latest" ]
say $? "12. SIGUSR1 to mpirun: every rank checkpoints, mpirun exits 3" "exit $rc: $(tail -3 "$tmp/err")"
