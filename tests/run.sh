#!/usr/bin/env bash
# The whole suite: every build/tests/test_* program and tests/test_*.sh script (or the ones named). Each
# prints "ok NAME" or "FAIL NAME: why" per check; a program that dies without reporting counts as one
# failure. Ends with the line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
passed=0 failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
run() {
    local name=$1; shift
    local start=$SECONDS
    timeout "${TEST_TIMEOUT:-900}" "$@" >"$log/out" 2>&1
    local rc=$? p f
    [ "$rc" -eq 124 ] && echo "FAIL $name: timed out after ${TEST_TIMEOUT:-900} s" >>"$log/out"
    p=$(grep -c '^ok ' "$log/out")
    f=$(grep -c '^FAIL ' "$log/out")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc without reporting a failure" >>"$log/out"
        f=1
    fi
    passed=$((passed + p)) failed=$((failed + f))
    printf '%-28s %3d ok %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
    if [ "$f" -ne 0 ] || [ -n "${VERBOSE:-}" ]; then sed 's/^/    /' "$log/out"; fi
}
# With arguments, just those tests (programs or .sh scripts), e.g. `make CUDA=1 test-gpu`.
if [ $# -gt 0 ]; then tests=("$@"); else tests=(build/tests/test_* tests/test_*.sh); fi
for t in "${tests[@]}"; do
    # `make SAN=1 test` builds the CPU binaries with sanitizers; the emulated CUDA backend has its own
    # AddressSanitizer run (test_cuda_asan.sh) in the plain suite, and the Slurm test runs the same
    # bin/train under srun that test_parallel.sh runs under mpirun, in three times the time.
    [ -n "${MT_SAN:-}" ] && [[ $t == *test_cuda_* || $t == *test_simt || $t == *test_slurm.sh ]] && continue
    case $t in
    *.sh) [ -f "$t" ] && run "$(basename "$t")" bash "$t" ;;
    *) [ -x "$t" ] && run "$(basename "$t")" "$t" ;;
    esac
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
