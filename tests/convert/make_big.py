#!/usr/bin/python3
"""Writes an HF model folder of a real model's shapes with random weights, one tensor at a time (a 1.3B
model's 5 GB file without holding it), for tests/bench_convert.sh.

Usage: make_big.py CASE OUT_DIR [--dtype F32|BF16]
"""
import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import hf_ref  # noqa: E402
import model_ref  # noqa: E402
import st_ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(hf_ref.CASES))
    ap.add_argument("out")
    ap.add_argument("--dtype", default="F32", choices=["F32", "BF16"])
    a = ap.parse_args()
    family, cfg, _ = hf_ref.CASES[a.case]
    # Names and shapes from zero-strided views: nothing of the model's size is allocated.
    views = {n: np.broadcast_to(np.float32(0), s) for n, s in model_ref.param_shapes(cfg).items()}
    specs = [(n, a.dtype, v.shape) for n, v in hf_ref.hf_tensors(family, cfg, views)]
    rng = np.random.default_rng(0)
    shapes = {n: s for n, _, s in specs}
    os.makedirs(a.out, exist_ok=True)
    st_ref.write_stream(os.path.join(a.out, "model.safetensors"), specs,
                        lambda n: 0.02 * rng.standard_normal(shapes[n], dtype=np.float32), {"format": "pt"})
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(hf_ref.hf_config(family, cfg), f, indent=2)


if __name__ == "__main__":
    main()
