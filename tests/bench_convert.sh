#!/usr/bin/env bash
# bin/convert's time and peak RSS (make bench): an F32 HF folder of gpt2-124m's and gpt-neo-1.3b's shapes
# with random weights (tests/convert/make_big.py) through hf-import, then hf-export (fp32). The largest
# tensor in fp32 is what streaming should cost: wte, 147 MiB and 393 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/bench_convert.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
printf '| model | params | hf-import | peak RSS | hf-export (fp32) | peak RSS | largest tensor (fp32) |\n'
printf '|---|---|---|---|---|---|---|\n'
for spec in gpt2-124m:147 gpt-neo-1.3b:393; do
    m=${spec%%:*}
    /usr/bin/python3 tests/convert/make_big.py "$m" "$tmp/hf"
    gb=$(du -b "$tmp/hf/model.safetensors" | cut -f1)
    /usr/bin/time -f '%e %M' -o "$tmp/import" bin/convert hf-import --in "$tmp/hf" --out "$tmp/ck.h5" >"$tmp/out"
    params=$(sed -n 's/.* tensors, \([0-9]*\) parameters.*/\1/p' "$tmp/out")
    rm -rf "$tmp/hf"
    /usr/bin/time -f '%e %M' -o "$tmp/export" bin/convert hf-export --in "$tmp/ck.h5" --out "$tmp/hf" \
        --no-tokenizer >/dev/null
    read -r ti ri <"$tmp/import"
    read -r te re <"$tmp/export"
    awk -v m="$m" -v p="$params" -v gb="$gb" -v ti="$ti" -v ri="$ri" -v te="$te" -v re="$re" -v big="${spec##*:}" \
        'BEGIN { printf "| %s | %d | %.1f s (%.2f GB/s) | %d MiB | %.1f s | %d MiB | %d MiB |\n", m, p, ti,
                 gb / 1e9 / ti, ri / 1024, te, re / 1024, big }'
    rm -rf "$tmp/hf" "$tmp/ck.h5"
done
