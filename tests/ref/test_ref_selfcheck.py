#!/usr/bin/python3
"""Self-check of model_ref.py against the reference values quoted in SPEC 1.3 (rotary) and SPEC 8 (gelu_new),
and of LoRA dropout's hash against splitmix64's published outputs.

Run: /usr/bin/python3 tests/ref/test_ref_selfcheck.py
Prints `ok <name>` or `FAIL <name>: reason` per check; exits 1 if any check failed.
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_ref  # noqa: E402

TOL = 2e-9          # the SPEC values are rounded to 9-10 significant digits


def compare(name, got, want):
    """Print ok/FAIL for got vs want (sequences of floats); return True on success."""
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if abs(g - w) > TOL * max(1.0, abs(w))]
    if len(got) != len(want) or bad:
        print(f"FAIL {name}: " + ("; ".join(f"[{i}] got {g:.10g} want {w:.10g}" for i, g, w in bad)
                                  or f"got {len(got)} values, want {len(want)}"))
        return False
    print(f"ok {name}")
    return True


def main():
    results = []
    # SPEC 1.3: theta_i for r = 64
    theta = model_ref.inv_freq(64).tolist()
    results.append(compare("rotary_inv_freq", [theta[1], theta[2], theta[3], theta[31]],
                           [0.7498942093, 0.5623413252, 0.4216965034, 1.333521432e-4]))
    # SPEC 1.3: x = [(k+1)/64], k = 0..63, at position 5, r = 64, GPT-J interleaved pairing
    x = (torch.arange(64, dtype=model_ref.DT) + 1) / 64
    y = model_ref.rotary(x[None, :], torch.tensor([5]), 64)[0].tolist()
    results.append(compare("rotary_gptj_p5", y[:4] + y[-2:],
                           [0.034398605, -0.006118748, -0.002782436, -0.078075436, 0.983708021, 1.000656120]))
    # rotary leaves features past rotary_dim unchanged (SPEC 1.2)
    y8 = model_ref.rotary(x[None, :], torch.tensor([5]), 8)[0]
    results.append(compare("rotary_passthrough", y8[8:].tolist(), x[8:].tolist()))
    # SPEC 8: gelu_new table
    xs = torch.tensor([-3.0, -1.0, -0.5, 0.5, 1.0, 2.0, 3.0], dtype=model_ref.DT)
    results.append(compare("gelu_new", model_ref.gelu_new(xs).tolist(),
                           [-0.003637392, -0.158808009, -0.154285990, 0.345714010, 0.841191991, 1.954597694,
                            2.996362608]))
    # LoRA dropout's mix64 is splitmix64: from state 0 its first three outputs are these (Vigna's splitmix64.c)
    outs = [int(model_ref.mix64(model_ref.U64((0x9E3779B97F4A7C15 * k) % 2**64))) for k in range(3)]
    want = [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    ok = outs == want
    print("ok lora_dropout_mix64_splitmix64" if ok else f"FAIL lora_dropout_mix64_splitmix64: {outs} vs {want}")
    results.append(ok)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
