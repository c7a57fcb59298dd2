#!/usr/bin/python3
"""Performance on paper: one GPT-J-6B training step on 8 x H100 80GB SXM (one node).

An analytic model, not a measurement: no GPU was used. It reads configs/models/gpt-j-6b.json, rebuilds
the parameter table the way model/params.c does (vocabulary padded to a multiple of lcm(128, tp)), the
activation buffers the way model/model.c alloc_forward and alloc_training do, the collectives the way
model/model.c, train/step.c and parallel/comm.c issue them, and the memory the way train/optim.c
allocates it, then predicts the step time and MFU for tp x dp in {1x8, 2x4, 4x2, 8x1} from the
assumptions below.

    python3 tests/perf_model.py            # the README table
    python3 tests/perf_model.py --check    # also the cross-checks against bin/train --dry-run

Every number the README quotes comes from this script; change an assumption here, not there.
"""
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "configs", "models", "gpt-j-6b.json")

# ---------------------------------------------------------------------------------------------------
# Assumptions (each one is printed with the table)
# ---------------------------------------------------------------------------------------------------
N_GPU = 8
GLOBAL_SEQS = 512  # sequences per optimizer step
SEQ = 2048  # tokens per sequence
MICRO = 1  # sequences per micro-batch (GEMMs already have M = 2048 rows at 1; larger only costs memory)

PEAK = 989e12  # H100 SXM dense bf16 tensor-core FLOP/s (1979 is the 2:4-sparse figure)
GEMM_EFF = 0.70  # of PEAK, for the large bf16 GEMMs (cuBLASLt): q/k/v/out, fc_in/fc_out, lm_head
ATTN_GEMM_EFF = 0.60  # of PEAK, for the batched per-head GEMMs of attention (QK^T, PV and backward)
HBM_BW = 3.35e12  # B/s, H100 SXM HBM3
HBM_EFF = 0.80  # achieved fraction for streaming kernels (softmax, layernorm, gelu, AdamW, ...)
NVLINK_DIR = 450e9  # B/s per GPU per direction (NVLink 4: 18 links, 900 GB/s bidirectional)
NVLINK_EFF = 0.80  # achieved NCCL bus bandwidth / link bandwidth for large messages
COLL_LATENCY = 20e-6  # s per collective call (launch + ring latency), added to the bandwidth term
HBM_VISIBLE = 81559 * 2**20  # bytes nvidia-smi reports for "H100 80GB HBM3"
RUNTIME_RESERVE = 2 * 2**30  # CUDA context, cuBLASLt workspace, NCCL channel buffers
SAFETY_MARGIN = 4 * 2**30  # free memory we want left over before calling a layout "fits"

# bf16 working precision on the CUDA backend (model/ops.h): activations and the working weight copy.
ACT, F32, I32 = 2, 4, 4

# HBM traffic of the T x T matrices, in bytes per element of [B, H/tp, T, T], as the CUDA backend being
# written does attention (model/cuda/cuda_compute.c: cuBLASLt GEMMs around separate softmax kernels,
# model/cuda/cuda_attn.cu). Forward: S = scale Q K^T into fp32 scratch (write 4), softmax reads S (4)
# and writes bf16 probs (2), out = P V reads P (2). Backward: dV = P^T dO reads P (2), dP = dO V^T into
# fp32 scratch (4), softmax backward reads P (2) and dP (4) and writes bf16 dS (2), dQ = dS K and
# dK = dS^T Q read dS (2 + 2). The GEMMs cover the whole square, masked upper triangle included.
TT_BYTES_FWD = 12
TT_BYTES_BWD = 18
ATTN_SCRATCH_FLOATS = 64 << 20  # cuda_compute.c: fp32 S / dP scratch, whole heads per chunk


def load_config(path=CONFIG):
    with open(path) as f:
        c = json.load(f)
    return c


def round_up(x, q):
    return (x + q - 1) // q * q


def param_table(c, tp):
    """(name, global_shape, local_numel, kind) per tensor, in model/params.c order, plus the flat
    length (each tensor rounded up to 16 floats) and the padded vocabulary."""
    d, f, V, L = c["d_model"], c["d_ff"], c["vocab_size"], c["n_layer"]
    quantum = 128 // math.gcd(128, tp) * tp
    Vp = round_up(V, quantum)
    b = c["bias"]
    rows = []

    def add(name, shape, local, kind):
        rows.append((name, shape, local, kind))

    add("wte", (V, d), Vp // tp * d, "embed")
    if c["rotary_dim"] == 0:
        add("wpe", (c["n_ctx"], d), c["n_ctx"] * d, "embed")
    for i in range(L):
        add("ln_1.w", (d,), d, "vec")
        add("ln_1.b", (d,), d, "vec")
        for p in ("q", "k", "v"):
            add(p + "_proj.w", (d, d), d // tp * d, "layer")
            if b["qkv"]:
                add(p + "_proj.b", (d,), d // tp, "vec")
        add("out_proj.w", (d, d), d * (d // tp), "layer")
        if b["attn_out"]:
            add("out_proj.b", (d,), d, "vec")
        if not c["parallel_residual"]:
            add("ln_2.w", (d,), d, "vec")
            add("ln_2.b", (d,), d, "vec")
        add("fc_in.w", (f, d), f // tp * d, "layer")
        if b["mlp"]:
            add("fc_in.b", (f,), f // tp, "vec")
        add("fc_out.w", (d, f), d * (f // tp), "layer")
        if b["mlp"]:
            add("fc_out.b", (d,), d, "vec")
    add("ln_f.w", (d,), d, "vec")
    add("ln_f.b", (d,), d, "vec")
    if not c["tie_embeddings"]:
        add("lm_head.w", (V, d), Vp // tp * d, "head")
    if b["lm_head"]:
        add("lm_head.b", (V,), Vp // tp, "vec")
    total = sum(round_up(r[2], 16) for r in rows)
    return rows, total, Vp


def n_params(c):
    rows, _, _ = param_table(c, 1)
    return sum(math.prod(r[1]) for r in rows)


def n_matmul(c):
    """DESIGN 10: 2-D tensors, lookup-only tables (untied wte, wpe) left out, the head kept."""
    rows, _, _ = param_table(c, 1)
    return sum(math.prod(r[1]) for r in rows if len(r[1]) == 2 and r[3] != "embed")


def t_eff(c, layer, T):
    pat = c["attention_layers"]
    local = pat[layer % len(pat)] == "local"
    return min(T, c["local_window"]) if local else T


def model_flops_per_token(c, T):
    """DESIGN 10 (model_flops_per_token in model/model.c): 6 N_matmul + 12 sum_l d T_eff."""
    return 6 * n_matmul(c) + sum(12 * c["d_model"] * t_eff(c, l, T) for l in range(c["n_layer"]))


def act_buffers(c, tp, B, T, recompute):
    """The buffers of alloc_forward and alloc_training as (bytes-per-element, elements), per rank. With
    recompute only the layer inputs resid[l] are kept per layer and one layer's buffers are reused
    (DESIGN 3 plans this switch; model.c does not have it yet)."""
    N, d, L = B * T, c["d_model"], c["n_layer"]
    dl, fl = d // tp, c["d_ff"] // tp
    Hl = c["n_head"] // tp
    _, _, Vp = param_table(c, tp)
    vl = Vp // tp
    scores = B * Hl * T * T
    g = [(I32, N), (I32, N), (F32, N)]  # ids, targets, weights
    g += [(ACT, N * d)] * (L + 1)  # resid[0..L]
    layer = [(ACT, N * d), (F32, N), (F32, N)]  # ln1, mean, rstd
    layer += [(ACT, N * dl)] * 3 + [(ACT, scores), (ACT, N * dl)]  # q, k, v, probs, att
    if not c["parallel_residual"]:
        layer += [(ACT, N * d), (ACT, N * d), (F32, N), (F32, N)]  # mid, ln2, mean, rstd
    layer += [(ACT, N * fl)] * 2  # fc_pre, fc_act
    g += layer * (1 if recompute else L)
    g += [(ACT, N * d), (ACT, N * d), (F32, N), (F32, N)]  # proj, lnf, lnf mean, rstd
    g += [(ACT, N * vl), (F32, N), (F32, 2 * N), (F32, N)]  # logits, rowmax, ce_stats, loss
    g += [(ACT, N * d), (ACT, N * d), (ACT, N * dl)]  # d_resid, d_ln, d_att
    g += [(ACT, N * dl)] * 3 + [(ACT, scores), (ACT, N * fl)]  # dq, dk, dv, d_scores, d_fc
    if c["rotary_dim"]:
        g.append((F32, T * c["rotary_dim"]))  # rope table
    return g, layer


def buf_bytes(bufs, act_bytes=ACT):
    """Sum with each allocation rounded to 64 bytes (model/ops_sizer.c)."""
    return sum(round_up((act_bytes if b == ACT else b) * n, 64) for b, n in bufs)


def memory(c, tp, dp, B, T, recompute, shard_master=False):
    """Bytes per GPU, by kind. As coded (model.c, optim.c): one fp32 flat parameter buffer and one fp32
    flat gradient buffer of the whole tp shard on every rank; ZeRO-1 shards only Adam m and v and adds a
    1/dp fp32 gradient slice for the reduce-scatter output; the CUDA backend adds a bf16 working copy of
    the weights (model/ops.h)."""
    _, total, _ = param_table(c, tp)
    flat = round_up(total, 16 * dp)
    zero = dp > 1
    sl = flat // dp if zero else flat
    m = {
        "master fp32": 4 * (sl if shard_master else flat),
        "bf16 weights": 2 * flat,
        "grads fp32": 4 * flat + (4 * sl if zero else 0),
        "adam m,v fp32": 8 * sl,
    }
    bufs, _ = act_buffers(c, tp, B, T, recompute)
    m["activations"] = buf_bytes(bufs)
    Hl, tt = c["n_head"] // tp, T * T
    m["attn scratch fp32"] = 4 * tt * max(1, min(Hl, ATTN_SCRATCH_FLOATS // tt))
    m["total"] = sum(m.values())
    return m


def max_micro(c, tp, dp, T, recompute):
    per_rank = GLOBAL_SEQS // dp
    best, B = 0, 1
    while B <= per_rank:
        if memory(c, tp, dp, B, T, recompute)["total"] + RUNTIME_RESERVE + SAFETY_MARGIN <= HBM_VISIBLE:
            best = B
        B *= 2
    return best


def ring_time(payload, n, kind, calls):
    """NCCL ring: all-reduce moves 2(n-1)/n x payload per GPU each way, reduce-scatter and all-gather
    (n-1)/n x payload (payload = the full logical buffer)."""
    if n == 1:
        return 0.0, 0.0
    factor = 2 * (n - 1) / n if kind == "allreduce" else (n - 1) / n
    bus = factor * payload
    return bus, bus / (NVLINK_DIR * NVLINK_EFF) + calls * COLL_LATENCY


def step_model(c, tp, dp, recompute, B=MICRO, T=SEQ, gemm_eff=GEMM_EFF):
    d, f, L = c["d_model"], c["d_ff"], c["n_layer"]
    dl, fl, Hl = d // tp, f // tp, c["n_head"] // tp
    rows, total, Vp = param_table(c, tp)
    vl = Vp // tp
    flat = round_up(total, 16 * dp)
    n_micro = GLOBAL_SEQS // (dp * B)
    tok = GLOBAL_SEQS * T // dp  # tokens through one GPU per step
    N = B * T
    r = {"tp": tp, "dp": dp, "B": B, "n_micro": n_micro, "recompute": recompute}

    # FLOPs ---------------------------------------------------------------------------------------
    r["model_flops"] = model_flops_per_token(c, T) * GLOBAL_SEQS * T  # whole step, all GPUs
    layer_mm = sum(x[2] for x in rows if x[3] == "layer")  # local
    head_mm = sum(x[2] for x in rows if x[3] == "head")  # local, padded rows included
    attn_tok = sum(12 * dl * t_eff(c, l, T) for l in range(L))  # full T x T square, per token
    gemm = tok * (6 * (layer_mm + head_mm) + (2 * layer_mm if recompute else 0))
    attn = tok * attn_tok * (1 + (1 / 3 if recompute else 0))  # forward is 4 of the 12
    r["hw_flops"] = N_GPU * (gemm + attn)
    t_gemm = gemm / (PEAK * gemm_eff)
    t_attn_mm = attn / (PEAK * ATTN_GEMM_EFF)

    # HBM-bound work -------------------------------------------------------------------------------
    tt = n_micro * L * B * Hl * T * T * (TT_BYTES_FWD * (2 if recompute else 1) + TT_BYTES_BWD)
    t_tt = tt / (HBM_BW * HBM_EFF)
    # elementwise per token per layer, in elements: layernorm r/w (2d), rotary q,k r/w (4 dl), fc bias
    # r/w (2 fl), gelu r/w (2 fl), out bias r/w (2 d), residual add (3 d) forward; bias grad (d), gelu
    # backward (3 fl) + fc bias grad (fl), rotary backward (4 dl), layernorm backward (4 d) backward.
    fwd_el, bwd_el = 7 * d + 4 * dl + 4 * fl, 5 * d + 4 * dl + 4 * fl
    elem = tok * L * ACT * (fwd_el * (2 if recompute else 1) + bwd_el)
    elem += tok * ACT * 6 * vl  # head bias r/w, rowmax, sumexp, ce backward r/w over [N, V/tp]
    sl = flat // dp if dp > 1 else flat
    elem += sl * (28 + 4) + flat * (4 + 6)  # AdamW + sumsq on the slice; zero grads + bf16 cast
    t_elem = elem / (HBM_BW * HBM_EFF)
    r["t_attn"] = t_attn_mm + t_tt
    r["attn_eff"] = attn / r["t_attn"] / PEAK
    r["t_compute"] = t_gemm + t_attn_mm + t_tt + t_elem
    r["t_gemm"], r["t_elem"] = t_gemm, t_elem

    # Collectives -----------------------------------------------------------------------------------
    # tp, per micro-batch (model.c): embedding sum, one forward and one backward all-reduce per
    # parallel-residual layer (two each for sequential blocks), the head's input gradient: [N, d] bf16;
    # cross-entropy row max [N] and (sumexp, target) [2N] fp32. Recompute repeats the forward ones.
    per_layer = 1 if c["parallel_residual"] else 2
    n_big = 2 + per_layer * L * (3 if recompute else 2)
    colls = []  # (what, group size, kind, calls per step, message bytes)
    if tp > 1:
        colls.append(("tp all-reduce [N,d] bf16", tp, "allreduce", n_micro * n_big, N * d * ACT))
        colls.append(("tp all-reduce CE row max [N] fp32", tp, "allreduce", n_micro, N * F32))
        colls.append(("tp all-reduce CE sums [2N] fp32", tp, "allreduce", n_micro, 2 * N * F32))
    # dp, per step (step.c, comm.c): reduce-scatter of the fp32 flat gradient, all-gather of the fp32
    # flat parameters (ZeRO-1); a few scalar all-reduces (latency only, left out).
    if dp > 1:
        colls.append(("dp reduce-scatter grads fp32", dp, "rs", 1, 4 * flat))
        colls.append(("dp all-gather params fp32", dp, "ag", 1, 4 * flat))
    r["colls"] = []
    r["tp_payload"] = r["tp_bus"] = r["t_tp"] = r["dp_payload"] = r["dp_bus"] = r["t_dp"] = 0.0
    for what, n, kind, calls, msg in colls:
        bus, t = ring_time(calls * msg, n, kind, calls)
        r["colls"].append((what, n, calls, msg, calls * msg, bus, t))
        g = what[:2]
        r[g + "_payload"] += calls * msg
        r[g + "_bus"] += bus
        r["t_" + g] += t
    r["t_comm"] = r["t_tp"] + r["t_dp"]

    r["t_step"] = r["t_compute"] + r["t_comm"]  # this code: collectives block, no overlap
    r["t_overlap"] = max(r["t_compute"], r["t_comm"])
    denom = N_GPU * PEAK
    r["mfu"] = r["model_flops"] / (denom * r["t_step"])
    r["mfu_overlap"] = r["model_flops"] / (denom * r["t_overlap"])
    r["hfu"] = r["hw_flops"] / (denom * r["t_step"])
    r["tok_s"] = GLOBAL_SEQS * T / r["t_step"]
    r["mem"] = memory(c, tp, dp, B, T, recompute)
    r["free"] = HBM_VISIBLE - RUNTIME_RESERVE - r["mem"]["total"]
    r["fits"] = r["free"] >= SAFETY_MARGIN
    r["max_micro"] = max_micro(c, tp, dp, T, recompute)
    return r


def gib(x):
    return x / 2**30


def gb(x):
    return x / 1e9


def main(argv):
    c = load_config()
    T = SEQ
    out = []
    p = out.append
    fpt = model_flops_per_token(c, T)
    p("GPT-J-6B (%s): d_model %d, n_layer %d, n_head %d (head_dim %d), d_ff %d, vocab %d, rotary_dim %d,"
      % (os.path.relpath(CONFIG, os.path.join(HERE, "..")), c["d_model"], c["n_layer"], c["n_head"],
         c["d_model"] // c["n_head"], c["d_ff"], c["vocab_size"], c["rotary_dim"]))
    p("n_ctx %d, parallel residual. params %d, N_matmul %d." % (c["n_ctx"], n_params(c), n_matmul(c)))
    p("Step: %d sequences x %d tokens = %d tokens on %d x H100 80GB SXM, micro-batch %d sequence(s)."
      % (GLOBAL_SEQS, T, GLOBAL_SEQS * T, N_GPU, MICRO))
    p("Model FLOPs per token (DESIGN 10): 6 x %.4g + 12 x %d x %d x %d = %.4g; per step %.4g."
      % (n_matmul(c), c["n_layer"], c["d_model"], T, fpt, fpt * GLOBAL_SEQS * T))
    p("")

    splits = [(1, 8), (2, 4), (4, 2), (8, 1)]
    rows = []
    for tp, dp in splits:
        for rc in (False, True):
            rows.append(step_model(c, tp, dp, rc))

    hdr = ("| tp x dp | recompute | memory/GPU GiB | free GiB | max micro-batch | hardware PFLOP/step |"
           " compute s | tp bus GB/GPU | dp bus GB/GPU | comm s | step s | MFU, no overlap |"
           " MFU, full overlap |")
    p(hdr)
    p("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        p("| %d x %d | %s | %.1f | %.1f%s | %s | %.1f | %.2f | %.0f | %.0f | %.2f | %.2f | %.1f%% | %.1f%% |" % (
            r["tp"], r["dp"], "yes" if r["recompute"] else "no", gib(r["mem"]["total"]), gib(r["free"]),
            "" if r["fits"] else " (too tight)", r["max_micro"] or "-", r["hw_flops"] / 1e15, r["t_compute"],
            gb(r["tp_bus"]), gb(r["dp_bus"]), r["t_comm"], r["t_step"], 100 * r["mfu"],
            100 * r["mfu_overlap"]))
    p("")
    p("Collectives per step, no recompute (each GPU; all on NVLink 4 through the node's NVSwitches):")
    p("")
    hdr = "| tp x dp | collective | group size | calls/step | message MB | payload GB/step | bus GB/GPU | s |"
    p(hdr)
    p("|" + "---|" * (hdr.count("|") - 1))
    for r in rows:
        if r["recompute"]:
            continue
        for what, n, calls, msg, pay, bus, t in r["colls"]:
            p("| %d x %d | %s | %d | %d | %s | %.1f | %.1f | %.2f |" % (
                r["tp"], r["dp"], what, n, calls, ("%.3f" % (msg / 1e6)) if msg < 1e6 else "%.1f" % (msg / 1e6),
                gb(pay), gb(bus), t))
    p("")

    # Recommendation: best no-overlap MFU among layouts that fit (recompute only where needed).
    cands = [r for r in rows if r["fits"]]
    best = max(cands, key=lambda r: r["mfu"])
    p("Recommended: tp=%d dp=%d, %s recompute: %.2f s per step, %.0f tokens/s, MFU %.1f%% (no overlap), "
      "%.1f%% (full overlap), HFU %.1f%%." % (
          best["tp"], best["dp"], "with" if best["recompute"] else "no", best["t_step"], best["tok_s"],
          100 * best["mfu"], 100 * best["mfu_overlap"], 100 * best["hfu"]))
    b = best
    p("  compute %.2f s = GEMMs %.2f + attention %.2f (effective %.0f%% of peak) + elementwise/CE/AdamW %.2f;"
      % (b["t_compute"], b["t_gemm"], b["t_attn"], 100 * b["attn_eff"], b["t_elem"]))
    p("  tp all-reduces: payload %.1f GB, bus %.1f GB per GPU, %.2f s; dp reduce-scatter + all-gather"
      " (fp32, together): payload %.1f GB, bus %.1f GB per GPU, %.2f s." % (
          gb(b["tp_payload"]), gb(b["tp_bus"]), b["t_tp"], gb(b["dp_payload"]), gb(b["dp_bus"]), b["t_dp"]))
    m = b["mem"]
    p("  memory per GPU (GiB): " + ", ".join("%s %.1f" % (k, gib(v)) for k, v in m.items())
      + "; + %.0f runtime reserve, of %.1f visible." % (gib(RUNTIME_RESERVE), gib(HBM_VISIBLE)))
    for tp, dp in splits[:1]:
        a = step_model(c, tp, dp, False)
        s = memory(c, tp, dp, MICRO, T, False, shard_master=True)
        p("  tp=%d dp=%d without recompute needs %.1f GiB (+%.0f reserve): %.1f GiB left, under the %.0f GiB"
          " margin; with the fp32 master sharded too (textbook ZeRO-1) it would need %.1f GiB and run at"
          " MFU %.1f%%." % (tp, dp, gib(a["mem"]["total"]), gib(RUNTIME_RESERVE),
                            gib(HBM_VISIBLE - RUNTIME_RESERVE - a["mem"]["total"]), gib(SAFETY_MARGIN),
                            gib(s["total"]), 100 * a["mfu"]))
    sens = ["%.0f%% -> %.1f%%" % (100 * e, 100 * step_model(c, b["tp"], b["dp"], b["recompute"], gemm_eff=e)["mfu"])
            for e in (0.6, 0.7, 0.8)]
    p("  sensitivity, GEMM efficiency -> MFU (no overlap): " + ", ".join(sens) + ".")
    pcie = b["tp_payload"] * 2 / 50e9
    p("  (NCCL on device buffers matters: staging the tp all-reduces through host memory for MPI would add"
      " %.1f s per step in PCIe copies alone, 2 x payload at ~50 GB/s.)" % pcie)
    p("")
    p("Assumptions: bf16 dense peak %.0f TFLOP/s; GEMMs at %.0f%% of peak, attention GEMMs at %.0f%%; T x T"
      " buffers and elementwise kernels HBM-bound at %.0f%% of %.2f TB/s (%d + %d bytes per element of [B,H/tp,T,T]"
      " per layer, fp32 scores); NVLink %.0f GB/s per direction at %.0f%% + %.0f us per collective; ring bus bytes"
      " 2(n-1)/n (all-reduce), (n-1)/n (reduce-scatter, all-gather); %.0f GiB reserve + %.0f GiB margin"
      " of %.1f GiB visible." % (
          PEAK / 1e12, 100 * GEMM_EFF, 100 * ATTN_GEMM_EFF, 100 * HBM_EFF, HBM_BW / 1e12, TT_BYTES_FWD,
          TT_BYTES_BWD, NVLINK_DIR / 1e9, 100 * NVLINK_EFF, COLL_LATENCY * 1e6, gib(RUNTIME_RESERVE),
          gib(SAFETY_MARGIN), gib(HBM_VISIBLE)))
    print("\n".join(out))

    if "--check" in argv:
        # Cross-checks against the C code (bin/train configs/models/gpt-j-6b.json --dry-run
        # --set data.seq_len=2048 --set train.micro_batch=1 prints params, FLOPs, and fp32 memory).
        bufs, _ = act_buffers(c, 1, 1, T, False)
        _, total, _ = param_table(c, 1)
        w = total * 4
        print("check: params %d, model FLOPs per token %.4g, fp32 (CPU backend) memory per rank (GiB): "
              "weights %.3f, activations %.3f, total %.3f" % (
                  n_params(c), fpt, gib(w), gib(buf_bytes(bufs, act_bytes=4) + round_up(w, 64) * 2 - 2 * w),
                  gib(buf_bytes(bufs, act_bytes=4) + round_up(w, 64) * 2 + 2 * w)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
