#!/usr/bin/env bash
# The layers of README "Layout", read from the include lines: each folder includes only the project
# folders below it, by their path from the root ("model/ops.h", never "../ops.h"), and nothing outside
# tests/ includes tests/.
set -u
cd "$(dirname "$0")/.."
declare -A may=(
    [base]="base"
    [model]="base model"
    [data]="base data"
    [parallel]="base model parallel"
    [train]="base model data parallel train"
)
for layer in base model data parallel train; do
    bad=$(grep -rn '^#include "' "$layer" --include='*.c' --include='*.h' --include='*.cu' |
        while IFS= read -r line; do
            inc=${line#*#include \"}
            inc=${inc%%\"*}
            top=${inc%%/*}
            if [ "$top" = "$inc" ] || [[ " ${may[$layer]} " != *" $top "* ]]; then echo "${line%%:#*}: $inc"; fi
        done)
    if [ -z "$bad" ]; then
        echo "ok layers: $layer/ includes only ${may[$layer]// /, }"
    else
        echo "FAIL layers: $layer/ includes outside ${may[$layer]// /, }:" $bad
    fi
done
