#!/usr/bin/env bash
# make demo: generate a corpus, train a small GPT-J-style model on it, and compare the final losses with
# the unigram entropy of the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p runs/demo-data
bin/prepare synthetic --out runs/demo-data/train.h5 --tokens 2000000 --vocab 240 --seed 1
bin/prepare synthetic --out runs/demo-data/val.h5 --tokens 50000 --vocab 240 --seed 2
rm -rf runs/demo-synthetic
bin/train configs/runs/demo-synthetic.json
/usr/bin/python3 - <<'PY'
import h5py, json, math, numpy as np
tokens = h5py.File("runs/demo-data/train.h5")["tokens"][:]
p = np.bincount(tokens) / len(tokens)
unigram = -sum(x * math.log(x) for x in p if x > 0)
rows = [json.loads(l) for l in open("runs/demo-synthetic/metrics.jsonl")]
train = [r["loss"] for r in rows if "loss" in r][-20:]
val = [r["val_loss"] for r in rows if "val_loss" in r][-1]
print(f"unigram entropy of the corpus: {unigram:.3f} nats; final train loss {sum(train)/len(train):.3f}; "
      f"validation loss {val:.3f}")
PY
