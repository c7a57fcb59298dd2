#!/usr/bin/env bash
# Every committed fuzz input (tests/fuzz/corpus/NAME/ seeds and tests/fuzz/regress/NAME/ inputs that once
# crashed) through its target, built without libFuzzer (build/fuzz/replay_NAME; under make SAN=1 test with
# the sanitizers): one check per target and folder, so a fixed crash stays fixed.
set -u
cd "$(dirname "$0")/.."
export MESHTRAIN_CACHE=${MESHTRAIN_CACHE:-$PWD/.cache}
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c) name=${name#fuzz_}
    for kind in corpus regress; do
        dir=tests/fuzz/$kind/$name
        [ -d "$dir" ] && [ -n "$(ls "$dir")" ] || continue
        out=$(build/fuzz/replay_"$name" "$dir" 2>&1)
        rc=$?
        n=$(ls "$dir" | wc -l)
        if [ $rc = 0 ] && [[ $out == *"replayed $n inputs"* ]]; then
            echo "ok replay.$name.$kind ($n inputs)"
        else
            echo "FAIL replay.$name.$kind: exit $rc: $(echo "$out" | grep -m3 -E 'ERROR|property|runtime error|SUMMARY|replay')"
        fi
    done
done
