#!/usr/bin/env bash
# Every C, C++ and CUDA source of the project laid out as .clang-format says (clang-format 14 from
# Debian). With --fix (make format) the files are rewritten instead of checked.
set -u
cd "$(dirname "$0")/.."
mapfile -t files < <(find base model data parallel train tests -type f \
    \( -name '*.c' -o -name '*.h' -o -name '*.cu' -o -name '*.cpp' \) | sort)
if [ "${1:-}" = --fix ]; then
    exec clang-format -i "${files[@]}"
fi
bad=()
for f in "${files[@]}"; do
    clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -eq 0 ]; then
    echo "ok format: ${#files[@]} files as .clang-format lays them out"
else
    echo "FAIL format: ${#bad[@]} of ${#files[@]} files differ from .clang-format (make format fixes them): ${bad[*]}"
fi
