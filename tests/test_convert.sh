#!/usr/bin/env bash
# bin/convert (issue 13). An independent writer (tests/convert: Python struct + numpy, from the safetensors
# format description and SPEC 5) builds HF model folders of each family from random parameters; hf-import
# then bin/train --eval-only must give tests/ref/model_ref.py's float64 loss to 1e-5 relative (tiny configs
# and real-width gpt2-124m and gpt-neo-125m), and the imported parameters must equal the written ones bit for
# bit. hf-export is read back by the independent reader (names, shapes, dtypes, values; bf16 and fp16 as
# numpy rounds them); import -> export -> import is bit-exact; sharded input and output; an imported
# checkpoint resumes (--resume) and loads at tp=2; bad files are refused with one line and exit code 2 and
# leave an existing output alone; the header parser runs under AddressSanitizer and UBSan.
set -u
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY=passive
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say() { if [ "$1" = 0 ]; then echo "ok $2"; else echo "FAIL $2: ${3:-}"; fi; }
PY=/usr/bin/python3
SEED=${MT_TEST_SEED:-$RANDOM}
echo "# test_convert: seed $SEED (rerun with MT_TEST_SEED=$SEED)"
TOKDIR=${MESHTRAIN_CACHE:-$PWD/.cache}/gpt2
T=16 WINDOWS=4

bin/prepare synthetic --out "$tmp/val50257.h5" --tokens 4000 --vocab 50257 --eot 50256 --seed "$SEED" 2>/dev/null
bin/prepare synthetic --out "$tmp/val250.h5" --tokens 4000 --vocab 250 --eot 0 --seed "$SEED" 2>/dev/null
bin/prepare synthetic --out "$tmp/val240.h5" --tokens 4000 --vocab 240 --eot 0 --seed "$SEED" 2>/dev/null

# within A B TOL: |A - B| <= TOL |B|, A finite.
within() { $PY -c "import math, sys; a, b, t = map(float, sys.argv[1:]); sys.exit(not (math.isfinite(a) and abs(a - b) <= t * abs(b)))" "$@"; }
ref_loss() { $PY -c "import json, sys; print(json.load(open(sys.argv[1]))['ref_loss'])" "$1"; }
peak_mib() { echo $(($(cat "$1") / 1024)); }

# run_config NAME MODEL VAL [CKPT]: a run config that evaluates the first WINDOWS windows of VAL, starting
# from CKPT (init_from) when given.
run_config() {
    local init=""
    [ -n "${4:-}" ] && init=", \"init_from\": \"$4\""
    cat >"$tmp/$1.run.json" <<JSON
{"model": "$2", "threads": 2, "run_dir": "$tmp/runs/$1",
 "data": {"train": "$3", "val": "$3", "seq_len": $T},
 "train": {"micro_batch": 2, "eval_batches": $((WINDOWS / 2)), "steps": 2, "lr": 1e-4, "log_every": 1$init}}
JSON
}
eval_loss() { bin/train "$tmp/$1.run.json" --eval-only "${@:2}" 2>&1 | sed -n 's/^eval_loss: //p'; }

# import_case CASE VAL [make_case args]: the HF folder, its import, and the reference loss vs --eval-only.
import_case() {
    local c=$1 val=$2
    $PY tests/convert/make_case.py "$c" "$tmp/$c" --seed "$SEED" --val "$val" --seq-len $T --windows $WINDOWS \
        "${@:3}" >"$tmp/$c.ref.json"
    /usr/bin/time -f %M -o "$tmp/$c.rss" bin/convert hf-import --in "$tmp/$c" --out "$tmp/$c.h5" \
        --config-out "$tmp/$c.model.json" >"$tmp/out" 2>&1
    say $? "import.$c" "$(cat "$tmp/out")"
    out=$($PY tests/convert/check_import.py model "$tmp/$c.ref.json" "$tmp/$c.model.json" 2>&1)
    say $? "import.$c.model_config" "$out"
    run_config "$c" "$tmp/$c.model.json" "$val" "$tmp/$c.h5"
    local got want
    got=$(eval_loss "$c") want=$(ref_loss "$tmp/$c.ref.json")
    within "$got" "$want" 1e-5
    say $? "eval.$c.matches_pytorch_reference" "eval_loss $got vs reference $want"
    echo "#   $c: eval_loss $got, reference $want; hf-import peak RSS $(peak_mib "$tmp/$c.rss") MiB"
}

# 1. Tiny models of each family: parameters bit for bit, config, loss; export read back; re-import exact.
for spec in tiny-gptj:val50257:gptj:F32 tiny-neo:val250:gpt_neo:BF16 tiny-gpt2:val250:gpt2:F16; do
    IFS=: read -r c val fam dtype <<<"$spec"
    import_case "$c" "$tmp/$val.h5" --params-out "$tmp/$c.npz"
    out=$($PY tests/convert/check_import.py params "$tmp/$c.npz" "$tmp/$c.h5" 2>&1)
    say $? "import.$c.params_bit_exact_from_$dtype" "$out"
    shards=1 limit=5GB
    [ "$c" = tiny-gptj ] && shards=8 limit=100KB # sharded output, with an index
    bin/convert hf-export --in "$tmp/$c.h5" --out "$tmp/$c.fp32" --max-shard-size $limit >"$tmp/out" 2>&1
    say $? "export.$c.fp32" "$(cat "$tmp/out")"
    $PY tests/convert/check_export.py "$tmp/$c.h5" "$tmp/$c.fp32" "$fam" F32 --shards $shards --tag "export.$c"
    bin/convert hf-import --in "$tmp/$c.fp32" --out "$tmp/$c.again.h5" >/dev/null 2>&1 &&
        out=$($PY tests/convert/check_import.py same "$tmp/$c.h5" "$tmp/$c.again.h5" 2>&1)
    say $? "roundtrip.$c.import_export_import_bit_exact" "$out"
done

# 2. bf16 and fp16 export (tiny-gptj holds ties, overflow and subnormal values in unused rows), with the
#    GPT-2 tokenizer files: GPT-J's 50400 rows exceed the tokenizer's 50257 ids.
for d in bf16 fp16; do
    bin/convert hf-export --in "$tmp/tiny-gptj.h5" --out "$tmp/gptj.$d" --dtype $d --tokenizer-dir "$TOKDIR" \
        >"$tmp/out" 2>"$tmp/err"
    say $? "export.tiny-gptj.$d" "$(cat "$tmp/err")"
    grep -q "became infinite" "$tmp/err"
    say $? "export.tiny-gptj.$d.warns_overflow" "$(cat "$tmp/err")"
    st=BF16 && [ $d = fp16 ] && st=F16
    $PY tests/convert/check_export.py "$tmp/tiny-gptj.h5" "$tmp/gptj.$d" gptj $st --tokenizer-dir "$TOKDIR" \
        --tag "export.tiny-gptj.$d"
done

# 3. An imported checkpoint resumes (--resume: zero Adam moments, with a note) and refuses another model;
#    the trained checkpoint exports.
run_config resume "$tmp/tiny-gptj.model.json" "$tmp/val50257.h5"
bin/train "$tmp/resume.run.json" --resume "$tmp/tiny-gptj.h5" >"$tmp/out" 2>&1
rc=$?
[ $rc = 0 ] && grep -q "holds parameters only (no optimizer state): Adam's moments start at zero" "$tmp/out" &&
    grep -q "resumed from .*tiny-gptj.h5 at step 0" "$tmp/out" && grep -q "^step 2/2" "$tmp/out"
say $? "resume.params_only_checkpoint" "rc $rc: $(tail -3 "$tmp/out")"
# ... and what training wrote (parameters, Adam moments, a `latest` link) exports like an import.
bin/convert hf-export --in "$tmp/runs/resume/ckpt/latest" --out "$tmp/trained" --no-tokenizer >"$tmp/out" 2>&1
say $? "export.trained_checkpoint" "$(cat "$tmp/out")"
$PY tests/convert/check_export.py "$tmp/runs/resume/ckpt/latest" "$tmp/trained" gptj F32 --tag export.trained
bin/train "$tmp/resume.run.json" --resume "$tmp/tiny-gptj.h5" --set model.layer_norm_eps=1e-6 \
    --set run_dir="$tmp/runs/other" >"$tmp/out" 2>&1
rc=$?
[ $rc = 2 ] && grep -q "model config differs from the checkpoint's: model.layer_norm_eps" "$tmp/out"
say $? "resume.other_model_refused" "rc $rc: $(tail -1 "$tmp/out")"

# 4. Another layout: tp=2 over mpirun evaluates the same loss.
one=$(eval_loss tiny-gptj)
two=$(OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 \
    mpirun -n 2 bin/train "$tmp/tiny-gptj.run.json" --eval-only --set parallel.tp=2 --set threads=1 \
    --set run_dir="$tmp/runs/tp2" 2>&1 | sed -n 's/^eval_loss: //p')
within "$two" "$one" 1e-5
say $? "layout.tp2_eval_matches_one_process" "tp=2 $two vs $one"

# 5. Real widths: gpt2-124m (the hub's layout: no prefix, F32, mask buffers) and gpt-neo-125m (BF16, 2
#    shards); the gpt2 export is read back with its tokenizer files.
import_case gpt2-124m "$tmp/val50257.h5"
/usr/bin/time -f %M -o "$tmp/export.rss" bin/convert hf-export --in "$tmp/gpt2-124m.h5" --out "$tmp/gpt2.out" \
    --tokenizer-dir "$TOKDIR" >"$tmp/out" 2>&1
say $? "export.gpt2-124m" "$(cat "$tmp/out")"
echo "#   gpt2-124m: hf-export peak RSS $(peak_mib "$tmp/export.rss") MiB"
$PY tests/convert/check_export.py "$tmp/gpt2-124m.h5" "$tmp/gpt2.out" gpt2 F32 --tokenizer-dir "$TOKDIR" \
    --tag export.gpt2-124m
rm -rf "$tmp/gpt2-124m" "$tmp/gpt2.out"
import_case gpt-neo-125m "$tmp/val50257.h5"
rm -rf "$tmp/gpt-neo-125m" "$tmp"/gpt*.h5

# 6. Bad files: exit 2, one stderr line naming the file and the problem; an existing output is untouched.
$PY tests/convert/bad_files.py "$tmp/tiny-gpt2" "$tmp/tiny-gptj" "$tmp/tiny-neo" "$tmp/bad" >"$tmp/cases"
echo "keep" >"$tmp/existing.h5"
while IFS=$'\t' read -r name dir file pattern; do
    bin/convert hf-import --in "$dir" --out "$tmp/existing.h5" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    [ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -qF -- "$file" "$tmp/err" && grep -qE -- "$pattern" "$tmp/err" &&
        [ "$(cat "$tmp/existing.h5")" = keep ] && [ ! -e "$tmp/existing.h5.tmp" ]
    say $? "bad.$name" "rc $rc, want 2, a line naming $file and /$pattern/: $(head -c 300 "$tmp/err")"
done <"$tmp/cases"
echo "#   e.g. $(bin/convert hf-import --in "$tmp/bad/offsets_overlap" --out "$tmp/x.h5" 2>&1)"

# expect NAME PATTERN CMD...: exit 2 and one stderr line matching PATTERN.
expect() {
    local name=$1 pattern=$2
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    local rc=$?
    [ $rc = 2 ] && [ "$(wc -l <"$tmp/err")" = 1 ] && grep -qE -- "$pattern" "$tmp/err"
    say $? "$name" "rc $rc: $(head -c 300 "$tmp/err")"
}
mkdir -p "$tmp/full" && echo x >"$tmp/full/keep"
expect export.refuses_nonempty_folder "full: exists and is not empty" \
    bin/convert hf-export --in "$tmp/tiny-neo.h5" --out "$tmp/full"
[ "$(ls "$tmp/full")" = keep ] && [ -z "$(ls -d "$tmp"/full.partial-* 2>/dev/null)" ]
say $? "export.nonempty_folder_untouched"
cp "$tmp/tiny-neo.h5" "$tmp/flipped.h5"
$PY - "$tmp/flipped.h5" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    off = f["params/h.1.mlp.fc_in.weight"].id.get_offset()
with open(sys.argv[1], "r+b") as f:
    f.seek(off + 100); b = f.read(1); f.seek(off + 100); f.write(bytes([b[0] ^ 0x10]))
PY
expect export.refuses_corrupt_checkpoint "flipped.h5: dataset params/h.1.mlp.fc_in.weight fails its checksum" \
    bin/convert hf-export --in "$tmp/flipped.h5" --out "$tmp/flipped.out"
[ ! -e "$tmp/flipped.out" ] && [ -z "$(ls -d "$tmp"/flipped.out.partial-* 2>/dev/null)" ]
say $? "export.failure_leaves_nothing"
cat >"$tmp/local.run.json" <<JSON
{"model": "$PWD/configs/models/tiny-gptj.json", "threads": 2, "run_dir": "$tmp/runs/local",
 "data": {"train": "$tmp/val240.h5", "seq_len": 16}, "train": {"steps": 1, "log_every": 100}}
JSON
bin/train "$tmp/local.run.json" >/dev/null 2>&1
expect export.refuses_unrepresentable "model.attention_layers: local layers cannot be expressed as gptj" \
    bin/convert hf-export --in "$tmp/runs/local/ckpt/latest" --out "$tmp/local.out"
expect cli.bad_dtype "--dtype fp8: expected fp32, bf16 or fp16" \
    bin/convert hf-export --in "$tmp/tiny-neo.h5" --out "$tmp/o" --dtype fp8
expect cli.bad_shard_size "--max-shard-size 5XB" \
    bin/convert hf-export --in "$tmp/tiny-neo.h5" --out "$tmp/o" --max-shard-size 5XB
expect cli.missing_out "--in and --out are required" bin/convert hf-import --in "$tmp/tiny-neo"
expect cli.unknown_subcommand "unknown subcommand" bin/convert hf-convert
bin/convert --help 2>&1 | grep -q "round to nearest" && bin/convert hf-import --help >/dev/null 2>&1
say $? "cli.help_exits_0"

