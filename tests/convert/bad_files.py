#!/usr/bin/python3
"""Damaged copies of valid HF model folders, for bin/convert hf-import's refusals.

Usage: bad_files.py GPT2_DIR GPTJ_SHARDED_DIR NEO_DIR OUT_ROOT

GPT2_DIR holds config.json + model.safetensors (no "transformer." prefix), GPTJ_SHARDED_DIR an index and
shards, NEO_DIR a gpt_neo folder. Writes OUT_ROOT/<case>/ and prints one line per case:
<case> TAB <folder> TAB <file the message must name> TAB <regex the message must match>.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_ref  # noqa: E402

WEIGHTS = "model.safetensors"


def split(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    return raw[8:8 + n], raw[8 + n:]


def join(path, header, body, n=None):
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header) if n is None else n) + header + body)


def edit_header(path, change):
    """Applies change(dict) to the parsed header and rewrites it (same data)."""
    header, body = split(path)
    h = json.loads(header)
    change(h)
    join(path, json.dumps(h).encode(), body)


def edit_config(folder, change):
    p = os.path.join(folder, "config.json")
    c = json.load(open(p))
    change(c)
    json.dump(c, open(p, "w"))


def by_offset(h):
    return sorted((k for k in h if k != "__metadata__"), key=lambda k: h[k]["data_offsets"][0])


def rewrite(path, change):
    """Reads every tensor, applies change(list of (name, dtype, array)) and writes the file anew."""
    meta, t = st_ref.read(path)
    tensors = [(n, d, a) for n, (d, _, a) in sorted(t.items())]
    st_ref.write(path, change(tensors), meta)


def main():
    gpt2, gptj, neo, root = sys.argv[1:5]
    cases = []

    def case(name, base, target, pattern, damage):
        d = os.path.join(root, name)
        shutil.copytree(base, d)
        damage(d)
        cases.append((name, d, os.path.join(d, target) if target else d, pattern))

    w = lambda d: os.path.join(d, WEIGHTS)  # noqa: E731

    def header_beyond(d):
        header, body = split(w(d))
        join(w(d), header, body, n=len(header) + len(body) + 1)

    def header_not_json(d):
        header, body = split(w(d))
        join(w(d), b'{"h.0.ln_1.weight": {"dtype": ' + b" " * (len(header) - 30), body)

    def header_not_utf8(d):
        header, body = split(w(d))
        i = header.index(b"ln_1")
        join(w(d), header[:i] + b"\xff" + header[i + 1:], body)

    def shift(d, by):
        def change(h):
            name = by_offset(h)[-1]
            h[name]["data_offsets"] = [x + by for x in h[name]["data_offsets"]]
        edit_header(w(d), change)

    def reshape(h):
        h["h.0.ln_1.bias"]["shape"] = [65]

    def drop(d):
        rewrite(w(d), lambda t: [x for x in t if x[0] != "h.1.mlp.c_fc.bias"])

    def transpose(d):
        rewrite(w(d), lambda t: [(n, dt, a.T.copy() if n == "h.0.mlp.c_fc.weight" else a) for n, dt, a in t])

    def extra(d):
        rewrite(w(d), lambda t: t + [("h.0.attn.rotary_emb.inv_freq", "F32", np.ones(8, np.float32))])

    def int_dtype(d):
        rewrite(w(d), lambda t: [(n, "I32" if n == "h.0.mlp.c_fc.bias" else dt, a) for n, dt, a in t])

    def nan(d):
        def change(t):
            out = [(n, dt, a.copy()) for n, dt, a in t]
            next(a for n, _, a in out if n == "h.0.ln_1.weight")[3] = np.nan
            return out
        rewrite(w(d), change)

    def truncate(d):
        raw = open(w(d), "rb").read()
        open(w(d), "wb").write(raw[:-10])

    def shard_missing(d):
        os.remove(os.path.join(d, "model-00002-of-00003.safetensors"))

    def index_wrong(d):
        p = os.path.join(d, "model.safetensors.index.json")
        idx = json.load(open(p))
        idx["weight_map"]["transformer.wte.weight"] = "model-00002-of-00003.safetensors"
        json.dump(idx, open(p, "w"))

    def pickle_only(d):
        os.remove(w(d))
        open(os.path.join(d, "pytorch_model.bin"), "wb").write(b"PK")

    case("header_beyond_file", gpt2, WEIGHTS, "header length .* beyond the end", header_beyond)
    case("header_too_large", gpt2, WEIGHTS, "exceeds the format's limit",
         lambda d: join(w(d), *split(w(d)), n=200_000_000))
    case("header_not_json", gpt2, WEIGHTS, "header is not valid JSON", header_not_json)
    case("header_not_utf8", gpt2, WEIGHTS, "header is not valid UTF-8", header_not_utf8)
    case("offsets_overlap", gpt2, WEIGHTS, "overlap", lambda d: shift(d, -2))
    case("offsets_outside_data", gpt2, WEIGHTS, "outside the .*data buffer", lambda d: shift(d, 2))
    case("shape_vs_bytes", gpt2, WEIGHTS, "h.0.ln_1.bias: F16 of 65 elements is not the 128 bytes",
         lambda d: edit_header(w(d), reshape))
    case("truncated_file", gpt2, WEIGHTS, "outside the .*data buffer", truncate)
    case("short_file", gpt2, WEIGHTS, "too short", lambda d: open(w(d), "wb").write(b"\x01\x02"))
    case("shard_missing", gptj, "model.safetensors.index.json", "names shard model-00002-of-00003.safetensors",
         shard_missing)
    case("index_wrong_shard", gptj, "model.safetensors.index.json", "transformer.wte.weight .* does not hold it",
         index_wrong)
    case("tensor_missing", gpt2, WEIGHTS, "tensor transformer.h.1.mlp.c_fc.bias is missing", drop)
    case("tensor_misshapen", gpt2, WEIGHTS, r"h.0.mlp.c_fc.weight is \[256, 64\]; .* needs \[64, 256\]", transpose)
    case("tensor_unexpected", gpt2, WEIGHTS, "unexpected tensor h.0.attn.rotary_emb.inv_freq", extra)
    case("tensor_int_dtype", gpt2, WEIGHTS, "h.0.mlp.c_fc.bias has dtype I32", int_dtype)
    case("tensor_nan", gpt2, WEIGHTS, "tensor h.0.ln_1.weight holds NaN or infinite values", nan)
    case("unknown_model_type", gpt2, "config.json", 'model_type: "llama" is not supported',
         lambda d: edit_config(d, lambda c: c.update(model_type="llama")))
    case("activation", gpt2, "config.json", 'activation_function: "relu" is not supported',
         lambda d: edit_config(d, lambda c: c.update(activation_function="relu")))
    case("gptj_rotary_null", gptj, "config.json", "rotary_dim: missing",
         lambda d: edit_config(d, lambda c: c.update(rotary_dim=None)))
    case("gptj_tied", gptj, "config.json", "tie_word_embeddings: true is not supported",
         lambda d: edit_config(d, lambda c: c.update(tie_word_embeddings=True)))
    case("neo_attention_types", neo, "config.json", "attention_types: describes more than num_layers = 3 layers",
         lambda d: edit_config(d, lambda c: c.update(attention_types=[[["global", "local"], 2]])))
    case("config_missing", gpt2, "config.json", "config.json", lambda d: os.remove(os.path.join(d, "config.json")))
    case("pickle_only", gpt2, "", "pytorch_model.bin is a pickle", pickle_only)
    for c in cases:
        print("\t".join(c))


if __name__ == "__main__":
    main()
