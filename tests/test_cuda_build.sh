#!/usr/bin/env bash
# The real CUDA build (compile and link only; no machine here has a GPU): nvcc builds every kernel for
# sm_80 and sm_90 with warnings as errors, ptxas's resource report of every kernel stays within
# model/cuda/ptxas_budget.txt, bin/train and bin/generate link against libcudart, libcublasLt and libnccl,
# and started here they say in one line that there is no usable GPU (exit 2), or with backend auto run on
# the CPU.
set -u
cd "$(dirname "$0")/.."
if [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" ]; then
    echo "# SKIP: no nvcc at ${CUDA_HOME:-/usr/local/cuda}; the CUDA build is not checked on this machine"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
train=build/cuda/bin/train generate=build/cuda/bin/generate
if make -s --no-print-directory CUDA=1 CUDA_TRAIN=$train CUDA_GENERATE=$generate $train $generate \
    >"$tmp/build.out" 2>&1; then
    echo "ok make CUDA=1 compiles and links bin/train and bin/generate (sm_80, sm_90)"
else
    echo "FAIL make CUDA=1: build failed"; sed 's/^/    /' "$tmp/build.out" | tail -30
    exit 1
fi
/usr/bin/python3 tests/check_ptxas.py --budget model/cuda/ptxas_budget.txt build/cuda/model/cuda/*.ptxas

bin/prepare synthetic --out "$tmp/train.h5" --tokens 20000 --vocab 240 --seed 1 2>/dev/null
cat >"$tmp/run.json" <<JSON
{"model": "$PWD/configs/models/tiny-gpt2.json", "run_dir": "$tmp/run", "threads": 2,
 "data": {"train": "$tmp/train.h5", "seq_len": 32}, "train": {"micro_batch": 4, "steps": 3}}
JSON
$train "$tmp/run.json" --set backend=cuda >"$tmp/cuda.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/cuda.out")" -eq 1 ]; then
    echo "ok the CUDA build without a GPU: one line, exit 2"
else
    echo "FAIL the CUDA build without a GPU: exit $rc"; sed 's/^/    /' "$tmp/cuda.out" | tail
fi
echo "#   $(head -1 "$tmp/cuda.out")"
$train "$tmp/run.json" --set backend=auto >"$tmp/auto.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "warning:.*runs on the CPU" "$tmp/auto.out"; then
    echo "ok the CUDA build without a GPU: backend auto trains on the CPU with a warning"
else
    echo "FAIL the CUDA build, backend auto: exit $rc"; sed 's/^/    /' "$tmp/auto.out" | tail
fi
# bin/generate of the CUDA build on the checkpoint just written: --backend cuda refuses in one line, auto
# generates on the CPU.
$generate "$tmp/run" --backend cuda --prompt x >"$tmp/gen.out" 2>&1
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <"$tmp/gen.out")" -eq 1 ]; then
    echo "ok the CUDA build of bin/generate without a GPU: one line, exit 2"
else
    echo "FAIL the CUDA build of bin/generate without a GPU: exit $rc"; sed 's/^/    /' "$tmp/gen.out" | tail
fi
echo '{"prompt_ids": [1, 2, 3]}' >"$tmp/prompts.jsonl" # a regular file: bin/generate refuses pipes
$generate "$tmp/run" --backend auto --batch-file "$tmp/prompts.jsonl" --out "$tmp/gen.jsonl" \
    --max-new-tokens 4 >"$tmp/gen.out" 2>&1
rc=$?
if [ $rc -eq 0 ] && grep -q "warning:.*runs on the CPU" "$tmp/gen.out" && grep -q '"new_tokens"' "$tmp/gen.jsonl"; then
    echo "ok the CUDA build of bin/generate, backend auto: generates on the CPU with a warning"
else
    echo "FAIL the CUDA build of bin/generate, backend auto: exit $rc"; sed 's/^/    /' "$tmp/gen.out" | tail
fi
