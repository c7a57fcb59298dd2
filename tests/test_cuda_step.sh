#!/usr/bin/env bash
# The CUDA backend in whole training runs, executed by the SIMT emulator (build/emu/bin/train): for a tiny
# model of each family, the losses of 5 steps on the emulated CUDA backend (bf16 working precision) equal
# the CPU backend's (fp32) within a stated bf16 tolerance; tensor parallel tp=2 with NCCL (emulated over
# MPI) and data parallel dp=2 with ZeRO-1 equal one rank; and the backend choice behaves as documented on
# a machine without a GPU.
set -u
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
cuda_train=${CUDA_TRAIN:-build/emu/bin/train} # make CUDA=1 test-gpu runs the real build on a GPU
bin/prepare synthetic --out "$tmp/train.h5" --tokens 50000 --vocab 240 --seed 3 2>/dev/null

config() { # family run_dir
    cat <<JSON
{"model": "$PWD/configs/models/tiny-$1.json", "run_dir": "$2", "threads": 1,
 "data": {"train": "$tmp/train.h5", "seq_len": 32},
 "train": {"micro_batch": 4, "global_batch": 8, "steps": 5, "lr": 3e-3, "warmup_steps": 2, "log_every": 1}}
JSON
}

# compare NAME A B TOL: per-step losses of two runs, relative difference below TOL at every step.
compare() {
    /usr/bin/python3 - "$@" <<'PY'
import json, math, sys
name, a, b, tol = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
la = [json.loads(l)["loss"] for l in open(f"{a}/metrics.jsonl") if '"loss"' in l]
lb = [json.loads(l)["loss"] for l in open(f"{b}/metrics.jsonl") if '"loss"' in l]
worst = max((abs(x - y) / abs(y) for x, y in zip(la, lb)), default=math.inf)
ok = len(la) == len(lb) == 5 and all(math.isfinite(x) for x in la + lb) and worst <= tol
print(f"ok {name}" if ok else f"FAIL {name}: worst relative loss difference {worst:.3e} > {tol:g}")
print(f"#   {name}: losses {' '.join(f'{x:.5f}' for x in la)} vs {' '.join(f'{y:.5f}' for y in lb)}; "
      f"worst relative difference {worst:.2e} (tolerance {tol:g})")
PY
}

run() { # name command...: runs, reports a failure with its output
    local name=$1; shift
    if "$@" >"$tmp/$name.out" 2>&1; then return 0; fi
    echo "FAIL $name: exit $?"; sed 's/^/    /' "$tmp/$name.out" | tail -20; return 1
}

# bf16 working precision (8-bit mantissa: relative rounding up to 2^-9 = 2e-3 per value) against fp32. The
# loss is a mean over 256 tokens whose rounding errors are independent, so it moves far less than one
# value's rounding; 1e-3 relative over 5 steps leaves a wide margin (measured: below 1e-4) yet fails on
# any real kernel error, which moves the loss by percents.
for fam in gptj neo gpt2; do
    config $fam "$tmp/cpu-$fam" >"$tmp/cpu-$fam.json"
    config $fam "$tmp/cuda-$fam" >"$tmp/cuda-$fam.json"
    run cpu-$fam bin/train "$tmp/cpu-$fam.json" || continue
    run cuda-$fam $cuda_train "$tmp/cuda-$fam.json" --set backend=cuda || continue
    grep -q "backend cuda" "$tmp/cuda-$fam/train.log" 2>/dev/null || grep -q "backend cuda" "$tmp/cuda-$fam.out" ||
        echo "FAIL $fam.runs on cuda: no 'backend cuda' in the log"
    compare "$fam.5 steps emulated cuda (bf16) vs cpu (fp32)" "$tmp/cuda-$fam" "$tmp/cpu-$fam" 1e-3
done

# Fine-tuning data (data.kind = examples): the loss counts only each example's response, so the head and the
# cross-entropy run on the gathered counted rows (model_forward) and their gradients are scattered back;
# emulated cuda against the cpu, and tp=2 over NCCL against tp=1. The examples: random prompts of 5-20
# tokens and responses of 1-6 (+ EOT) from the tiny vocabulary, written as a shard with h5py.
/usr/bin/python3 - "$tmp/examples.h5" <<'PY'
import h5py, numpy, sys
rng = numpy.random.default_rng(5)
tokens, mask, offsets = [], [], [0]
for _ in range(200):
    p, r = rng.integers(5, 21), rng.integers(1, 7)
    tokens += list(rng.integers(1, 240, p + r)) + [0]
    mask += [0] * p + [1] * (r + 1)
    offsets.append(len(tokens))
with h5py.File(sys.argv[1], "w") as f:
    f["tokens"] = numpy.array(tokens, numpy.uint16)
    f["loss_mask"] = numpy.array(mask, numpy.uint8)
    f["doc_offsets"] = numpy.array(offsets, numpy.uint64)
    f.attrs.update({"format": "meshtrain.tokens", "format_version": 1, "vocab_size": 240, "eot_token": 0,
                    "n_tokens": len(tokens), "n_docs": 200, "source": "test examples", "tokenizer": "none"})
PY
examples=(--set "data.train=\"$tmp/examples.h5\"" --set data.kind=examples)
config gptj "$tmp/ex-cpu" >"$tmp/ex-cpu.json"
config gptj "$tmp/ex-cuda" >"$tmp/ex-cuda.json"
config gptj "$tmp/ex-tp2" >"$tmp/ex-tp2.json"
if run ex-cpu bin/train "$tmp/ex-cpu.json" "${examples[@]}" &&
    run ex-cuda $cuda_train "$tmp/ex-cuda.json" "${examples[@]}" --set backend=cuda; then
    compare "gptj.examples (head on the counted rows): emulated cuda vs cpu" "$tmp/ex-cuda" "$tmp/ex-cpu" 1e-3
fi
if run ex-tp2 env SIMT_DEVICES=2 mpirun -np 2 $cuda_train "$tmp/ex-tp2.json" "${examples[@]}" --set backend=cuda \
    --set parallel.tp=2; then
    compare "gptj.examples tp=2 over NCCL vs tp=1 (emulated cuda)" "$tmp/ex-tp2" "$tmp/ex-cuda" 1e-3
fi

# Tensor parallel through NCCL (emulated over MPI, two emulated devices): tp=2 against tp=1, both on the
# emulated CUDA backend. The partial sums of a split layer are added in another order and rounded to bf16 at
# other points, so the same bf16 tolerance applies.
config gptj "$tmp/tp1" >"$tmp/tp1.json"
config gptj "$tmp/tp2" >"$tmp/tp2.json"
if run tp1 $cuda_train "$tmp/tp1.json" --set backend=cuda &&
    run tp2 env SIMT_DEVICES=2 mpirun -np 2 $cuda_train "$tmp/tp2.json" --set backend=cuda --set parallel.tp=2; then
    compare "gptj.tp=2 over NCCL vs tp=1 (emulated cuda)" "$tmp/tp2" "$tmp/tp1" 1e-3
fi
# Data parallel with ZeRO-1 through NCCL: fp32 gradients reduce-scattered, parameters all-gathered.
config gptj "$tmp/dp2" >"$tmp/dp2.json"
if run dp2 env SIMT_DEVICES=2 mpirun -np 2 $cuda_train "$tmp/dp2.json" --set backend=cuda; then
    grep -q "ZeRO-1" "$tmp/dp2.out" || echo "FAIL gptj.dp=2: not a ZeRO-1 run"
    compare "gptj.dp=2 ZeRO-1 over NCCL vs one rank (emulated cuda)" "$tmp/dp2" "$tmp/tp1" 1e-3
fi

# Checkpoints from device memory: 3 steps and a checkpoint, then a new process resumes to 6; its losses and
# final parameters equal an uninterrupted 6-step run's bit for bit (the kernels use no atomics).
config gptj "$tmp/straight" >"$tmp/straight.json"
config gptj "$tmp/split" >"$tmp/split.json"
sched=(--set backend=cuda --set train.steps=6 --set train.anneal_steps=4)
if run straight $cuda_train "$tmp/straight.json" "${sched[@]}" &&
    run split1 $cuda_train "$tmp/split.json" "${sched[@]}" --set train.steps=3 &&
    run split2 $cuda_train "$tmp/split.json" "${sched[@]}"; then
    /usr/bin/python3 - "$tmp/straight" "$tmp/split" <<'PY'
import h5py, json, numpy, sys
a, b = sys.argv[1:]
la = [json.loads(l)["loss"] for l in open(f"{a}/metrics.jsonl") if '"loss"' in l]
lb = [json.loads(l)["loss"] for l in open(f"{b}/metrics.jsonl") if '"loss"' in l]
fa, fb = h5py.File(f"{a}/ckpt/latest"), h5py.File(f"{b}/ckpt/latest")
names = sorted(fa["params"])
same = all(numpy.array_equal(fa["params"][n][()], fb["params"][n][()]) for n in names)
ok = len(la) == 6 and la == lb and fa.attrs["step"] == fb.attrs["step"] == 6 and same
print("ok resume on cuda: 3 + 3 steps = 6 steps, losses and parameters bit for bit" if ok else
      f"FAIL resume on cuda: losses {la} vs {lb}, {len(names)} tensors {'equal' if same else 'differ'}")
PY
fi

# No GPU (the emulator reports none): backend cuda refuses to start with one line and exit 2; auto falls
# back to the CPU with a warning.
[ "$cuda_train" = build/emu/bin/train ] || exit 0
config gpt2 "$tmp/nogpu" >"$tmp/nogpu.json"
SIMT_DEVICES=0 $cuda_train "$tmp/nogpu.json" --set backend=cuda >"$tmp/nogpu.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/nogpu.out")" -eq 1 ] && grep -q "backend" "$tmp/nogpu.out"; then
    echo "ok no gpu: backend cuda exits 2 with one line"
else
    echo "FAIL no gpu: backend cuda: exit $rc"; sed 's/^/    /' "$tmp/nogpu.out"
fi
echo "#   $(cat "$tmp/nogpu.out")"
SIMT_DEVICES=0 $cuda_train "$tmp/nogpu.json" --set backend=auto >"$tmp/auto.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "warning:.*runs on the CPU" "$tmp/auto.out" && grep -q "backend cpu" "$tmp/auto.out"; then
    echo "ok no gpu: backend auto warns and trains on the CPU"
else
    echo "FAIL no gpu: backend auto: exit $rc"; sed 's/^/    /' "$tmp/auto.out" | tail
fi

# A collective that never completes (the emulator's streams made to look busy forever) and an asynchronous
# NCCL error (as a dead peer raises): the job aborts with a line naming NCCL instead of hanging.
config gptj "$tmp/hang" >"$tmp/hang.json"
for fault in "SIMT_STREAM_HANG=1 MT_NCCL_TIMEOUT=2:no completion after 2 s" "SIMT_STREAM_HANG=1 SIMT_NCCL_ASYNC_ERROR=1:remote"; do
    vars=${fault%%:*} want=${fault#*:}
    env SIMT_DEVICES=2 $vars timeout 300 mpirun -np 2 $cuda_train "$tmp/hang.json" --set backend=cuda \
        --set parallel.tp=2 >"$tmp/hang.out" 2>&1
    rc=$?
    if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q "NCCL all-reduce: $want.*aborting the job" "$tmp/hang.out"; then
        echo "ok nccl fault ($vars): the job aborts with exit $rc"
    else
        echo "FAIL nccl fault ($vars): exit $rc (124: hung)"; sed 's/^/    /' "$tmp/hang.out" | tail
    fi
    echo "#   $(grep -m1 NCCL "$tmp/hang.out")"
done
