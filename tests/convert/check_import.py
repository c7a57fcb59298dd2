#!/usr/bin/python3
"""Checks of bin/convert hf-import's outputs, read with h5py and json.

  check_import.py params P.npz CKPT.h5     the checkpoint's /params equal the case's parameters bit for bit
  check_import.py same A.h5 B.h5            two checkpoints hold bit-identical /params
  check_import.py model REF.json MODEL.json the model config equals the one make_case.py expects

Exit status 0 when equal; otherwise one line on stdout says what differs.
"""
import json
import sys

import h5py
import numpy as np


def params(path):
    with h5py.File(path, "r") as f:
        out = {}
        f["params"].visititems(lambda n, d: out.__setitem__(n, d[()]) if isinstance(d, h5py.Dataset) else None)
        if "optim" in f:
            raise SystemExit(f"{path}: has an /optim group (parameters only expected)")
        return out


def same(a, b, what):
    if set(a) != set(b):
        raise SystemExit(f"{what}: tensor sets differ: {sorted(set(a) ^ set(b))[:4]}")
    bad = [n for n in a if a[n].shape != b[n].shape or
           not np.array_equal(np.asarray(a[n], np.float32).view(np.uint32), np.asarray(b[n], np.float32).view(np.uint32))]
    if bad:
        raise SystemExit(f"{what}: {len(bad)} tensors differ, e.g. {bad[:3]}")


def layers(cfg):
    pat = cfg["attention_layers"]
    return [pat[i % len(pat)] for i in range(cfg["n_layer"])]


def model(ref, got):
    want = json.load(open(ref))["model"]
    got = json.load(open(got))
    keys = [k for k in want if k not in ("attention_layers", "local_window")]
    diff = [k for k in keys if got.get(k) != want[k]]
    if layers(got) != layers(want):
        diff.append("attention_layers")
    if "local" in layers(want) and got.get("local_window") != want["local_window"]:
        diff.append("local_window")
    if diff:
        raise SystemExit("differs: " + ", ".join(f"{k} {got.get(k)} vs {want.get(k)}" for k in diff))


def main():
    kind, a, b = sys.argv[1:4]
    if kind == "params":
        npz = np.load(a)
        same(params(b), {k: npz[k] for k in npz.files}, b)
    elif kind == "same":
        same(params(a), params(b), f"{a} vs {b}")
    else:
        model(a, b)


if __name__ == "__main__":
    main()
