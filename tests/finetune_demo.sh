#!/usr/bin/env bash
# make finetune-demo: instruction fine-tuning that measurably learns. From a pretrained checkpoint (the
# demo's runs/demo, or a short pretraining here when there is none), generate the instruction benchmark
# (bin/instruct gen: train records and held-out records whose values never occur in training), tokenize it
# with bin/prepare alpaca (loss on the responses), score the held-out split before fine-tuning, fine-tune
# with configs/runs/finetune-demo.json, score again, answer a few Alpaca-style prompts, and draw the loss
# curves (runs/finetune/loss.png). Ends with "held-out exact match: X% (before fine-tuning: Y%)" over the
# simple tasks.
#   FT_STEPS=N        fine-tune N steps instead of the config's (CI: a short run)
#   PRETRAIN_STEPS=N  pretraining steps when runs/demo has no checkpoint (default 100)
#   FT_COMPARE=1      also fine-tune on the whole sequence (data.loss_on = "all") and compare
# Other arguments go to both bin/train runs (e.g. --set threads=2).
set -euo pipefail
cd "$(dirname "$0")/.."
make -s --no-print-directory vocab
data=runs/finetune-data
start=$SECONDS

if [ ! -e runs/demo/ckpt/latest ]; then
    echo "== no runs/demo checkpoint (make demo): pretraining the demo model for ${PRETRAIN_STEPS:-100} steps"
    steps=${PRETRAIN_STEPS:-100}
    bin/prepare text --in "${MESHTRAIN_CACHE:-$PWD/.cache}/nlp-corpus/nlp-corpus/builds" --out runs/demo-data \
        --val-fraction 0.02 >/dev/null
    rm -rf runs/demo
    bin/train configs/runs/demo.json --set train.steps="$steps" --set train.warmup_steps=$((steps / 10)) "$@"
fi
echo "== pretrained model: runs/demo/ckpt/latest (step $(/usr/bin/python3 -c \
    'import h5py; print(h5py.File("runs/demo/ckpt/latest")["/"].attrs["step"])'))"

echo "== the benchmark: bin/instruct gen, bin/prepare alpaca"
rm -rf "$data" runs/finetune runs/finetune-all
bin/instruct gen --out "$data" --train 20000 --heldout 25
bin/prepare alpaca --in "$data/train.json" --out "$data" --val-fraction 0.02 2>&1 | grep 'done:'

evaluate() { # NAME CKPT: per-task exact match on the held-out split, scores in $data/NAME.json
    echo "== held-out exact match, $1 (bin/instruct eval: bin/generate --alpaca --temperature 0)"
    bin/instruct eval "$2" --data "$data/heldout.jsonl" --out "$data/$1.completions.jsonl" --json "$data/$1.json"
}
evaluate before runs/demo

short=()
if [ -n "${FT_STEPS:-}" ]; then
    short=(--set train.steps="$FT_STEPS" --set train.warmup_steps=$((FT_STEPS / 10)) --set train.eval_every="$FT_STEPS")
fi
echo "== fine-tuning: bin/train configs/runs/finetune-demo.json ${short[*]} $*"
bin/train configs/runs/finetune-demo.json "${short[@]}" "$@"
evaluate after runs/finetune
runs=(runs/finetune)
if [ -n "${FT_COMPARE:-}" ]; then
    echo "== the same fine-tuning on the whole sequence (data.loss_on = all)"
    bin/train configs/runs/finetune-demo.json --set data.loss_on=all --set run_dir=runs/finetune-all \
        "${short[@]}" "$@"
    evaluate after-all runs/finetune-all
    runs+=(runs/finetune-all)
fi
bin/plot "${runs[@]}" --out runs/finetune/loss.png --title "fine-tuning on bin/instruct (response-token loss)"

echo
echo "== answers to Alpaca-style prompts (bin/generate runs/finetune --alpaca --temperature 0)"
ask() { # INSTRUCTION [INPUT]
    local in=()
    [ $# -gt 1 ] && in=(--input "$2")
    printf '\n> %s%s\n' "$1" "${2:+ [input: $2]}"
    bin/generate runs/finetune --alpaca --prompt "$1" "${in[@]}" --temperature 0 --max-new-tokens 24 \
        2>runs/finetune/generate.log || { cat runs/finetune/generate.log; exit 1; }
    echo
}
ask "Reverse the order of these words." "star dog key"
ask "Sort these numbers from smallest to largest." "17 4 9"
ask "How many words are in this list: car ice red book"
ask "Write these words in capital letters." "king bus"
ask "Tell me which of these numbers is the biggest: 3 18 11" # a phrasing the training never used
echo
echo "loss curves: runs/finetune/loss.png; $((SECONDS - start)) s in all"
/usr/bin/python3 - "$data" <<'PY'
import json, sys
import os
before, after = (json.load(open(f"{sys.argv[1]}/{k}.json")) for k in ("before", "after"))
if os.path.exists(f"{sys.argv[1]}/after-all.json"):
    whole = json.load(open(f"{sys.argv[1]}/after-all.json"))
    print(f"trained on the whole sequence instead: {100 * whole['simple']:.1f}%")
print(f"held-out exact match: {100 * after['simple']:.1f}% (before fine-tuning: {100 * before['simple']:.1f}%)")
PY
