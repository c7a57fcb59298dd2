#!/usr/bin/env bash
# make fuzz: each named target (build/fuzz/fuzz_NAME) runs for FUZZ_SECONDS from its committed seeds
# (tests/fuzz/corpus/NAME/) and regression inputs (tests/fuzz/regress/NAME/), adding what it finds to a
# working corpus in build/fuzz/corpus/NAME/ (kept between runs, never committed). One check per target:
# "ok fuzz.NAME" when it ran its time without a crash, leak, timeout or failed property; otherwise
# "FAIL fuzz.NAME" naming the saved input (build/fuzz/findings/NAME/), which becomes a committed regression
# input once fixed. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
export MESHTRAIN_CACHE=${MESHTRAIN_CACHE:-$PWD/.cache}
secs=${FUZZ_SECONDS:-30}
passed=0 failed=0
for name in "$@"; do
    work=build/fuzz/corpus/$name findings=build/fuzz/findings/$name log=build/fuzz/$name.log
    mkdir -p "$work" "$findings" tests/fuzz/regress/"$name"
    # -timeout: one input may take at most 10 s; -rss_limit_mb: no input may use 2 GB; leaks are on (ASan).
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 \
        build/fuzz/fuzz_"$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
        -print_final_stats=1 -artifact_prefix="$findings/" \
        "$work" tests/fuzz/corpus/"$name" tests/fuzz/regress/"$name" >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    found=$(ls "$findings" 2>/dev/null | head -1)
    if [ "$rc" = 0 ] && [ -z "$found" ]; then
        echo "ok fuzz.$name ($runs inputs in $secs s, corpus $(ls "$work" | wc -l))"
        passed=$((passed + 1))
    else
        echo "FAIL fuzz.$name: exit $rc, input $findings/$found; $(grep -m1 -E 'ERROR|property failed|SUMMARY' "$log")"
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
