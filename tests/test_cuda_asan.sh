#!/usr/bin/env bash
# The emulated CUDA op-parity table once more, built with AddressSanitizer (the kernels, the backend's host
# code, the emulator and the test): an out-of-bounds access or a leak in any of them fails here.
set -u
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
ASAN_OPTIONS=detect_leaks=1:exitcode=23 build/asan/tests/test_cuda_ops >"$out" 2>&1
rc=$?
sed -E 's/^(ok|FAIL) /\1 asan./' "$out"
[ $rc -eq 0 ] || { echo "FAIL asan: exit $rc"; exit 1; }
