#!/usr/bin/python3
"""Builds a Hugging Face model folder for a test model and its reference loss.

Usage: make_case.py CASE OUT_DIR --seed S --val VAL.h5 --seq-len T --windows N [--params-out P.npz]

Random parameters (project names, tests/ref/README.md) are rounded to the case's file dtype, written in
HF's names and orientations (hf_ref.py, SPEC 5) with config.json as HF writes it, by the independent
safetensors writer (st_ref.py). The reference loss is tests/ref/model_ref.py's float64 objective of those
parameters over the first N windows of T+1 tokens of VAL.h5 (what bin/train --eval-only evaluates).
Prints one JSON line: {"ref_loss": ..., "model": <the model config hf-import must produce>}.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "ref"))
import hf_ref  # noqa: E402
import model_ref  # noqa: E402
import st_ref  # noqa: E402

# Values whose float32 -> bf16 / fp16 rounding is delicate: ties (to even, both ways), the fp16 overflow
# threshold (65520 is a tie that rounds to inf), subnormals, signed zero, bf16 overflow.
SPECIAL = np.array([1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 65504.0,
                    65519.0, 65520.0, 70000.0, -1e5, 6e-8, 3e-8, 1e-7, 2 ** -24, 2 ** -25, -0.0, 1e-40,
                    3.3961776e38, 3.4e38, 0.1, -0.3], dtype=np.float32)
SPECIAL_ROW = 50300  # a GPT-J embedding row beyond the data's 50257 ids: never looked up


def random_params(cfg, rng):
    shapes = model_ref.param_shapes(cfg)
    p = {}
    for name, shape in shapes.items():
        if name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
            x = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
        elif len(shape) == 1:
            x = 0.05 * rng.standard_normal(shape, dtype=np.float32)
        else:
            x = 0.02 * rng.standard_normal(shape, dtype=np.float32)
        p[name] = x.astype(np.float32)
    return p


def write_folder(out, family, cfg, opts, tensors):
    os.makedirs(out, exist_ok=True)
    conf = hf_ref.hf_config(family, cfg, dtype={"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[opts["dtype"]],
                            dropout=0.1 if family == "gpt2" else 0.0)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    n = opts["shards"]
    if n == 1:
        st_ref.write(os.path.join(out, "model.safetensors"), tensors, {"format": "pt"})
        return
    chunks = [tensors[i::n] for i in range(n)]           # shards in any order: interleave them
    weight_map, total = {}, 0
    for k, chunk in enumerate(chunks):
        name = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        st_ref.write(os.path.join(out, name), chunk, {"format": "pt"})
        for tname, dtype, arr in chunk:
            weight_map[tname] = name
            total += arr.size * st_ref.ITEMSIZE[dtype]
    with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


def reference_loss(cfg, p, val, T, windows):
    tokens = h5py.File(val, "r")["tokens"][: windows * (T + 1)].astype(np.int64).reshape(1, windows, T + 1)
    params = {k: torch.from_numpy(v).to(torch.float64) for k, v in p.items()}
    weights = torch.ones((1, windows, T), dtype=torch.float64)
    with torch.no_grad():
        loss, _ = model_ref.objective(cfg, 0.0, params, torch.from_numpy(tokens), weights)
    return float(loss)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=sorted(hf_ref.CASES))
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--val", required=True)
    ap.add_argument("--seq-len", type=int, required=True)
    ap.add_argument("--windows", type=int, required=True)
    ap.add_argument("--params-out")
    a = ap.parse_args()
    family, cfg, opts = hf_ref.CASES[a.case]
    rng = np.random.default_rng(a.seed)
    p = random_params(cfg, rng)
    if family == "gptj":
        p["wte"][SPECIAL_ROW, :SPECIAL.size] = SPECIAL
    p = {k: st_ref.rounded(v, opts["dtype"]) for k, v in p.items()}   # what the file will hold
    tensors = [(n, opts["dtype"], a_) for n, a_ in hf_ref.hf_tensors(family, cfg, p, prefix=opts["prefix"])]
    if opts["buffers"]:
        tensors += hf_ref.mask_buffers(family, cfg, prefix=opts["prefix"])
    write_folder(a.out, family, cfg, opts, tensors)
    if a.params_out:
        np.savez(a.params_out, **p)
    model = dict(cfg, name=os.path.basename(os.path.normpath(a.out)))
    print(json.dumps({"ref_loss": reference_loss(cfg, p, a.val, a.seq_len, a.windows), "model": model}))


if __name__ == "__main__":
    main()
