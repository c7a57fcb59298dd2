"""An independent safetensors reader and writer for the tests, written from the format description (SPEC
5.4: an 8-byte little-endian header length N, N bytes of UTF-8 JSON {name: {dtype, shape, data_offsets}}
plus an optional "__metadata__", then the little-endian row-major data) with struct and numpy only.

16-bit floats: fp16 through numpy's float16 (round to nearest even); bf16 as the upper half of a float32,
rounded to nearest even by integer arithmetic on the float32 bits.
"""
import json
import struct

import numpy as np

ITEMSIZE = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
            "F32": 4, "I64": 8, "U64": 8, "F64": 8}
NUMPY = {"BOOL": np.uint8, "U8": np.uint8, "I8": np.int8, "I16": "<i2", "U16": "<u2", "F16": "<f2",
         "BF16": "<u2", "I32": "<i4", "U32": "<u4", "F32": "<f4", "I64": "<i8", "U64": "<u8", "F64": "<f8"}


def bf16_bits(x):
    """float32 array -> uint16 bf16 bit patterns, rounded to nearest even; NaN stays (a quiet) NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), rounded)


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint32) << 16).view(np.float32)


def encode(x, dtype):
    """The bytes of array x stored as dtype (floats rounded to nearest even for F16/BF16)."""
    if dtype == "BF16":
        return bf16_bits(x).astype("<u2").tobytes()
    return np.ascontiguousarray(x, dtype=NUMPY[dtype]).tobytes()


def decode(raw, dtype, shape):
    """The array stored in raw; F16 and BF16 are widened exactly to float32."""
    a = np.frombuffer(raw, dtype=NUMPY[dtype]).reshape(shape)
    if dtype == "BF16":
        return bf16_to_f32(a)
    if dtype == "F16":
        return a.astype(np.float32)
    return a


def rounded(x, dtype):
    """x as it reads back after being stored as dtype (float32)."""
    return decode(encode(x, dtype), dtype, np.shape(x)).astype(np.float32)


def write(path, tensors, metadata=None):
    """tensors: list of (name, dtype, array) in file order."""
    arrays = {name: arr for name, _, arr in tensors}
    write_stream(path, [(name, dtype, np.shape(arr)) for name, dtype, arr in tensors], lambda name: arrays[name],
                 metadata)


def write_stream(path, specs, make, metadata=None):
    """specs: list of (name, dtype, shape) in file order; make(name) gives each array when its turn comes,
    so that a file larger than memory can be written."""
    header, off = {}, 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape in specs:
        size = int(np.prod(shape, dtype=np.int64)) * ITEMSIZE[dtype]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [off, off + size]}
        off += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, dtype, shape in specs:
            raw = encode(make(name), dtype)
            assert len(raw) == header[name]["data_offsets"][1] - header[name]["data_offsets"][0], name
            f.write(raw)


class FormatError(Exception):
    pass


def read(path):
    """-> (metadata, {name: (dtype, shape, array)}), validating the layout as the reference reader does."""
    data = open(path, "rb").read()
    if len(data) < 8:
        raise FormatError("shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n > 100_000_000 or 8 + n > len(data):
        raise FormatError(f"header length {n}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", None)
    body = data[8 + n:]
    spans = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items())
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise FormatError(f"{name}: offsets {begin}..{end}, expected to start at {pos}")
        pos = end
    if pos != len(body):
        raise FormatError(f"data covers {pos} of {len(body)} bytes")
    out = {}
    for name, v in header.items():
        dtype, shape = v["dtype"], tuple(v["shape"])
        begin, end = v["data_offsets"]
        if int(np.prod(shape, dtype=np.int64)) * ITEMSIZE[dtype] != end - begin:
            raise FormatError(f"{name}: {dtype} {shape} does not fill {end - begin} bytes")
        out[name] = (dtype, shape, decode(body[begin:end], dtype, shape))
    return meta, out


def read_folder(folder):
    """-> ({name: (dtype, shape, array)}, list of (file, metadata)): model.safetensors or the index's shards."""
    import os
    single = os.path.join(folder, "model.safetensors")
    if os.path.exists(single):
        meta, t = read(single)
        return t, [("model.safetensors", meta)]
    index = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
    tensors, files = {}, []
    for shard in sorted(set(index["weight_map"].values())):
        meta, t = read(os.path.join(folder, shard))
        files.append((shard, meta))
        for name, v in t.items():
            if index["weight_map"].get(name) != shard:
                raise FormatError(f"{shard}: {name} is not mapped to this shard by the index")
            tensors[name] = v
    if set(tensors) != set(index["weight_map"]):
        raise FormatError("index and shards disagree on the tensor set")
    total = sum(a.size * ITEMSIZE[d] for d, _, a in tensors.values())
    if index.get("metadata", {}).get("total_size") != total:
        raise FormatError(f"index total_size {index.get('metadata')} != {total}")
    return tensors, files
