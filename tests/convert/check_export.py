#!/usr/bin/python3
"""Checks a folder written by bin/convert hf-export against the checkpoint it came from, with the
independent reader (st_ref.py) and HF naming (hf_ref.py).

Usage: check_export.py CKPT.h5 HF_DIR FAMILY DTYPE [--shards N] [--tokenizer-dir DIR]

Prints "ok NAME" / "FAIL NAME: why" lines. Checked: the tensor set is exactly the HF names of the
family (SPEC 5), shapes and dtypes, every value bit for bit equal to the checkpoint's float32 value
rounded to DTYPE by numpy (F16) or integer round-to-nearest-even (BF16); {"format": "pt"} metadata in
every file; the index (when sharded); config.json; vocab.json and merges.txt equal to the tokenizer files.
"""
import argparse
import json
import os
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_ref  # noqa: E402
import st_ref  # noqa: E402

TORCH_DTYPE = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def say(ok, name, why=""):
    print(f"ok {name}" if ok else f"FAIL {name}: {why}")
    return ok


def load_ckpt(path):
    with h5py.File(path, "r") as f:
        cfg = json.loads(f.attrs["config"])["model"]
        params = {}
        f["params"].visititems(lambda n, d: params.__setitem__(n, d[()]) if isinstance(d, h5py.Dataset) else None)
    return cfg, params


def check_tensors(tag, expected, tensors, dtype):
    names_ok = say(set(tensors) == set(expected), f"{tag}.names",
                   f"missing {sorted(set(expected) - set(tensors))[:3]}, extra {sorted(set(tensors) - set(expected))[:3]}")
    bad = []
    for name, want in expected.items():
        if name not in tensors:
            continue
        got_dtype, shape, got = tensors[name]
        want = st_ref.rounded(want, dtype)
        if got_dtype != dtype or shape != want.shape or \
                not np.array_equal(got.astype(np.float32).view(np.uint32), want.view(np.uint32)):
            bad.append(f"{name} ({got_dtype} {shape})")
    return say(names_ok and not bad, f"{tag}.values_{dtype}", f"{len(bad)} differ: {bad[:3]}")


def check_config(tag, folder, family, cfg, dtype):
    got = json.load(open(os.path.join(folder, "config.json")))
    want = hf_ref.hf_config(family, cfg, dtype=TORCH_DTYPE[dtype])
    want.pop("transformers_version")
    diff = [k for k in want if got.get(k, "(absent)") != want[k]]
    return say(not diff, f"{tag}.config_json", "; ".join(f"{k}: {got.get(k)} vs {want[k]}" for k in diff))


def check_tokenizer(tag, folder, tok_dir):
    pairs = [("vocab.json", "encoder.json"), ("merges.txt", "vocab.bpe")]
    same = all(open(os.path.join(folder, a), "rb").read() == open(os.path.join(tok_dir, b), "rb").read()
               for a, b in pairs)
    json.load(open(os.path.join(folder, "vocab.json")))
    return say(same, f"{tag}.tokenizer_files")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("ckpt")
    ap.add_argument("folder")
    ap.add_argument("family", choices=hf_ref.FAMILIES)
    ap.add_argument("dtype", choices=sorted(TORCH_DTYPE))
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--tokenizer-dir")
    ap.add_argument("--tag", default="export")
    a = ap.parse_args()
    cfg, params = load_ckpt(a.ckpt)
    expected = dict(hf_ref.hf_tensors(a.family, cfg, params, prefix=True))
    try:
        tensors, files = st_ref.read_folder(a.folder)
    except (st_ref.FormatError, ValueError, KeyError, OSError) as e:
        say(False, f"{a.tag}.readable", str(e))
        return 1
    ok = say(len(files) == a.shards and all(m == {"format": "pt"} for _, m in files), f"{a.tag}.files",
             f"{len(files)} files (want {a.shards}), metadata {[m for _, m in files][:2]}")
    ok &= check_tensors(a.tag, expected, tensors, a.dtype)
    ok &= check_config(a.tag, a.folder, a.family, cfg, a.dtype)
    if a.tokenizer_dir:
        ok &= check_tokenizer(a.tag, a.folder, a.tokenizer_dir)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
