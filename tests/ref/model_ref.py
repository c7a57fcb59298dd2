#!/usr/bin/python3
"""Independent float64 PyTorch reference for meshtrain's decoders (GPT-J, GPT-Neo, GPT-2).

Usage: /usr/bin/python3 tests/ref/model_ref.py CASE.h5 OUT.h5
       /usr/bin/python3 tests/ref/model_ref.py greedy CHECKPOINT.h5 PROMPTS.json OUT.json

Written from the model math (SPEC 1.2, 1.3, 1.5, 2.2, 3, 8, 9), not from the C code; LoRA from its paper
(Hu et al. 2021, eq. 3: h = W0 x + (alpha / r) B A x, W0 frozen). The input and
output contract is in README.md beside this file. Gradients come from autograd; the optimizer is AdamW
written out by hand so that it follows SPEC 1.5/9 term by term.
"""
import json
import math
import os
import sys

import h5py
import numpy as np
import torch

DT = torch.float64

MODEL_KEYS = ("vocab_size", "loss_vocab", "n_layer", "d_model", "n_head", "d_ff", "n_ctx", "rotary_dim",
              "parallel_residual", "tie_embeddings", "bias", "attn_scale", "attention_layers",
              "local_window", "layer_norm_eps")
BIAS_KEYS = ("qkv", "attn_out", "mlp", "lm_head")
TRAIN_KEYS = ("lr", "end_lr", "warmup_steps", "anneal_steps", "schedule", "weight_decay", "beta1", "beta2",
              "eps", "clip", "steps")
LORA_TARGETS = {"q_proj": "attn.q_proj", "k_proj": "attn.k_proj", "v_proj": "attn.v_proj",
                "out_proj": "attn.out_proj", "fc_in": "mlp.fc_in", "fc_out": "mlp.fc_out"}
LORA_SCALE = "lora.scale"                                        # alpha / rank, a constant entry of p
U64 = np.uint64


def mix64(x):
    """splitmix64's increment and finalizer on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = np.asarray(x, dtype=U64) + U64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> U64(30))) * U64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> U64(27))) * U64(0x94D049BB133111EB)
        return x ^ (x >> U64(31))


class LoraDropout:
    """LoRA's dropout on the input of A (README: "LoRA dropout"): element (r, c) of the [B*T, in] input of
    adapter k in micro-batch j of step s is kept iff the top 24 bits of mix64(key ^ mix64(r * in + c)) are
    at least round(p * 2^24), key = mix64(mix64(seed ^ mix64(s * 2^32 + j)) ^ mix64(k)); kept values are
    divided by 1 - p. Adapters are numbered layer by layer, targets in the order of LORA_TARGETS."""

    def __init__(self, cfg, lora, batch):
        order = [t for t in LORA_TARGETS if t in lora["targets"]]
        self.index = {f"h.{i}.{LORA_TARGETS[t]}": i * len(order) + k
                      for i in range(cfg["n_layer"]) for k, t in enumerate(order)}
        self.p, self.seed, self.batch, self.step = lora["dropout"], int(lora["seed"]), batch, 0
        self.threshold = U64(int(self.p * 16777216.0 + 0.5))

    def apply(self, x, name):
        micro = x.shape[0] // self.batch
        n = self.batch * x.shape[1] * x.shape[2]
        masks = []
        for j in range(micro):
            pass_key = mix64(U64(self.seed) ^ mix64(U64((self.step << 32) | j)))
            key = mix64(pass_key ^ mix64(U64(self.index[name])))
            keep = (mix64(key ^ mix64(np.arange(n, dtype=U64))) >> U64(40)) >= self.threshold
            masks.append(keep.reshape(self.batch, x.shape[1], x.shape[2]))
        return x * torch.from_numpy(np.concatenate(masks)).to(x.dtype) / (1.0 - self.p)


DROPOUT = None                                                   # a LoraDropout when the case has one


class CaseError(Exception):
    """The case file is missing or does not follow README.md."""


# ---------------------------------------------------------------------------------------------- math

def gelu_new(x):
    """gelu_new, the tanh approximation (SPEC 1.2, table in SPEC 8)."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def inv_freq(r):
    """Rotary inverse frequencies theta_i = 1 / 10000^(2i/r), i = 0 .. r/2-1 (SPEC 1.3)."""
    return 1.0 / 10000.0 ** (torch.arange(0, r, 2, dtype=DT) / r)


def rotary(x, pos, r):
    """GPT-J interleaved ("rotate_every_two") rotary on the first r features of the last dim (SPEC 1.3).

    x: [..., T, head_dim]; pos: [T] positions. Pair i is features (2i, 2i+1), angle phi = pos * theta_i:
    x'[2i] = x[2i] cos phi - x[2i+1] sin phi,  x'[2i+1] = x[2i+1] cos phi + x[2i] sin phi.
    """
    phi = pos.to(DT)[:, None] * inv_freq(r)[None, :]            # [T, r/2]
    cos, sin = torch.cos(phi).to(x.dtype), torch.sin(phi).to(x.dtype)
    even, odd = x[..., 0:r:2], x[..., 1:r:2]
    rot = torch.stack((even * cos - odd * sin, odd * cos + even * sin), dim=-1).flatten(-2)
    return torch.cat((rot, x[..., r:]), dim=-1)


def layer_norm(x, p, name, eps):
    """LayerNorm over the last dim, population variance, eps inside the sqrt (SPEC 1.2, 8)."""
    mean = x.mean(-1, keepdim=True)
    var = ((x - mean) ** 2).mean(-1, keepdim=True)
    return (x - mean) / torch.sqrt(var + eps) * p[name + ".weight"] + p[name + ".bias"]


def linear(x, p, name):
    """y = x W^T (+ b when the case has that bias); every matrix is [out, in] (README). An adapted layer
    adds (alpha / r) (x A^T) B^T with A [r, in] and B [out, r] (LoRA, eq. 3)."""
    y = x @ p[name + ".weight"].T
    if name + ".lora_A" in p:
        xa = DROPOUT.apply(x, name) if DROPOUT else x
        y = y + p[LORA_SCALE] * ((xa @ p[name + ".lora_A"].T) @ p[name + ".lora_B"].T)
    return y + p[name + ".bias"] if name + ".bias" in p else y


def attention(cfg, p, pre, a, mask, pos):
    """Multi-head self-attention of one layer (SPEC 1.2 for GPT-J, 2.2 for GPT-Neo, 3 for GPT-2)."""
    B, T, d = a.shape
    H = cfg["n_head"]
    hd = d // H

    def heads(name):                                             # head j owns features [hd*j, hd*j+hd)
        return linear(a, p, pre + name).view(B, T, H, hd).transpose(1, 2)   # [B, H, T, hd]

    q, k, v = heads("q_proj"), heads("k_proj"), heads("v_proj")
    if cfg["rotary_dim"]:                                        # rotary on q and k only, not v (SPEC 1.3)
        q, k = rotary(q, pos, cfg["rotary_dim"]), rotary(k, pos, cfg["rotary_dim"])
    s = q @ k.transpose(-1, -2)
    if cfg["attn_scale"] == "inv_sqrt_head_dim":                 # GPT-J, GPT-2; GPT-Neo is unscaled (SPEC 2.2)
        s = s / math.sqrt(hd)
    s = s.masked_fill(~mask, float("-inf"))                      # the diagonal is always visible
    o = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(B, T, d)
    return linear(o, p, pre + "out_proj")


def mlp(p, pre, a):
    """fc_out(gelu_new(fc_in(a))) (SPEC 1.2, 2.2, 3)."""
    return linear(gelu_new(linear(a, p, pre + "mlp.fc_in")), p, pre + "mlp.fc_out")


def forward(cfg, p, ids):
    """Logits [B, T, vocab_size] for input ids [B, T] at positions 0..T-1."""
    T = ids.shape[1]
    eps = cfg["layer_norm_eps"]
    pos = torch.arange(T)
    h = p["wte"][ids]
    if cfg["rotary_dim"] == 0:                                   # learned positions (SPEC 2.2, 3)
        h = h + p["wpe"][:T]
    i, j = pos[:, None], pos[None, :]
    causal = j <= i                                              # SPEC 1.2
    local = causal & (j > i - cfg["local_window"])               # SPEC 2.2: i - window < j <= i
    pattern = cfg["attention_layers"]
    for layer in range(cfg["n_layer"]):
        pre = f"h.{layer}."
        mask = local if pattern[layer % len(pattern)] == "local" else causal
        a = layer_norm(h, p, pre + "ln_1", eps)
        if cfg["parallel_residual"]:                             # GPT-J: h + attn(a) + mlp(a) (SPEC 1.2)
            h = h + attention(cfg, p, pre + "attn.", a, mask, pos) + mlp(p, pre, a)
        else:                                                    # GPT-Neo / GPT-2 (SPEC 2.2, 3)
            h = h + attention(cfg, p, pre + "attn.", a, mask, pos)
            h = h + mlp(p, pre, layer_norm(h, p, pre + "ln_2", eps))
    h = layer_norm(h, p, "ln_f", eps)
    if cfg["tie_embeddings"]:                                    # tied head, no bias (SPEC 2.2, 3)
        return h @ p["wte"].T
    return linear(h, p, "lm_head")                               # GPT-J untied head with bias (SPEC 1.2)


def objective(cfg, z_loss, p, tokens, weights):
    """Objective of one step (SPEC 9): sum of w*CE over every micro-batch and position, divided by sum of w.

    tokens [micro, B, T+1], weights [micro, B, T]. CE uses a log-softmax over the first loss_vocab columns
    only. Returns the objective and the logits of micro-batch 0.
    """
    M, B, T1 = tokens.shape
    logits = forward(cfg, p, tokens[..., :-1].reshape(M * B, T1 - 1))
    lse = torch.logsumexp(logits[..., :cfg["loss_vocab"]], dim=-1)
    target = torch.gather(logits, -1, tokens[..., 1:].reshape(M * B, T1 - 1, 1))[..., 0]
    per_token = lse - target + z_loss * lse ** 2                 # z-loss term, weighted the same (SPEC 9)
    w = weights.reshape(M * B, T1 - 1)
    return (w * per_token).sum() / w.sum(), logits[:B]


def learning_rate(tr, s):
    """LR of update s, s = 0 for the first update (README, SPEC 1.5 gpt3_schedule)."""
    if tr["schedule"] == "constant":
        return tr["lr"]
    W, A = tr["warmup_steps"], tr["anneal_steps"]
    w = min(s, W) / W if W > 0 else 1.0
    a = min(max(s - W, 0), A) / A
    return w * tr["lr"] - (tr["lr"] - tr["end_lr"]) * (1.0 - math.cos(math.pi * a)) / 2.0


def trainable_names(params):
    """Every parameter, or with LoRA adapters in the case only the adapters (the base is frozen)."""
    adapters = [n for n in params if ".lora_" in n]
    return adapters if adapters else [n for n in params if n != LORA_SCALE]


def train(cfg, tr, params, tokens, weights):
    """Run tr["steps"] AdamW updates (README, SPEC 1.5, 9) and collect everything OUT.h5 needs."""
    names = trainable_names(params)
    p = {n: t.clone().requires_grad_(n in names) for n, t in params.items()}
    m = {n: torch.zeros_like(params[n]) for n in names}
    v = {n: torch.zeros_like(params[n]) for n in names}
    z_loss = tr.get("z_loss", 0.0)
    out = {"step_loss": []}
    for s in range(tr["steps"]):
        if DROPOUT:
            DROPOUT.step = s
        loss, logits = objective(cfg, z_loss, p, tokens[s], weights[s])
        grads = dict(zip(names, torch.autograd.grad(loss, [p[n] for n in names])))
        if s == 0:
            out.update(loss=loss.item(), logits=logits.detach(), grads=grads)
        out["step_loss"].append(loss.item())
        norm = math.sqrt(sum(float((g * g).sum()) for g in grads.values()))   # true global norm (SPEC 9)
        scale = min(1.0, tr["clip"] / norm) if norm > 0 else 1.0
        lr, t = learning_rate(tr, s), s + 1                       # bias correction with t = 1 first (SPEC 9)
        with torch.no_grad():
            for n in names:
                g = grads[n] * scale
                m[n].mul_(tr["beta1"]).add_((1 - tr["beta1"]) * g)
                v[n].mul_(tr["beta2"]).add_((1 - tr["beta2"]) * g * g)
                mhat = m[n] / (1 - tr["beta1"] ** t)
                vhat = v[n] / (1 - tr["beta2"] ** t)
                step = mhat / (torch.sqrt(vhat) + tr["eps"])
                if p[n].dim() >= 2:                               # decoupled decay on 2+-dim tensors (SPEC 1.5)
                    step = step + tr["weight_decay"] * p[n]
                p[n].sub_(lr * step)
    out["final"] = {n: p[n].detach() for n in names}
    if DROPOUT:
        DROPOUT.step = 0
    out["grads32"] = float32_grads(cfg, z_loss, params, tokens[0], weights[0])
    return out


def float32_grads(cfg, z_loss, params, tokens, weights):
    """The step-0 gradients computed in float32 by the same code: how far an fp32 implementation of this
    model lands from the float64 truth on these inputs (ill-conditioned inputs make it large)."""
    names = trainable_names(params)
    p = {n: t.to(torch.float32).requires_grad_(n in names) for n, t in params.items()}
    loss, _ = objective(cfg, z_loss, p, tokens, weights.to(torch.float32))
    return dict(zip(names, torch.autograd.grad(loss, [p[n] for n in names])))


# ------------------------------------------------------------------------------------------------ io

def param_shapes(cfg):
    """Expected parameter names and shapes (README)."""
    V, d, f, b = cfg["vocab_size"], cfg["d_model"], cfg["d_ff"], cfg["bias"]
    shapes = {"wte": (V, d)}
    if cfg["rotary_dim"] == 0:
        shapes["wpe"] = (cfg["n_ctx"], d)
    for i in range(cfg["n_layer"]):
        pre = f"h.{i}."
        lns = ["ln_1"] if cfg["parallel_residual"] else ["ln_1", "ln_2"]
        for ln in lns:
            shapes[pre + ln + ".weight"] = shapes[pre + ln + ".bias"] = (d,)
        for proj in ("q_proj", "k_proj", "v_proj"):
            shapes[pre + "attn." + proj + ".weight"] = (d, d)
            if b["qkv"]:
                shapes[pre + "attn." + proj + ".bias"] = (d,)
        shapes[pre + "attn.out_proj.weight"] = (d, d)
        if b["attn_out"]:
            shapes[pre + "attn.out_proj.bias"] = (d,)
        shapes[pre + "mlp.fc_in.weight"] = (f, d)
        shapes[pre + "mlp.fc_out.weight"] = (d, f)
        if b["mlp"]:
            shapes[pre + "mlp.fc_in.bias"] = (f,)
            shapes[pre + "mlp.fc_out.bias"] = (d,)
    shapes["ln_f.weight"] = shapes["ln_f.bias"] = (d,)
    if not cfg["tie_embeddings"]:
        shapes["lm_head.weight"] = (V, d)
        if b["lm_head"]:
            shapes["lm_head.bias"] = (V,)
    return shapes


def lora_shapes(cfg, lora):
    """Adapter names and shapes of the case's `lora` attribute: for each layer and target with weight
    [out, in], <weight name without .weight>.lora_A [rank, in] and .lora_B [out, rank] (README)."""
    shapes, r = {}, lora["rank"]
    for t in lora["targets"]:
        if t not in LORA_TARGETS:
            raise CaseError(f"unknown LoRA target {t!r}")
        for i in range(cfg["n_layer"]):
            name = f"h.{i}.{LORA_TARGETS[t]}"
            out, inp = param_shapes(cfg)[name + ".weight"]
            shapes[name + ".lora_A"], shapes[name + ".lora_B"] = (r, inp), (out, r)
    return shapes


def read_params(group, shapes):
    """float64 tensors of the named datasets of an HDF5 group, shapes checked."""
    params = {}
    for name, shape in shapes.items():
        if name not in group:
            raise CaseError(f"missing dataset {group.name}/{name}")
        ds = group[name]
        if ds.shape != shape:
            raise CaseError(f"{group.name}/{name} has shape {ds.shape}, expected {shape}")
        params[name] = torch.from_numpy(np.asarray(ds, dtype=np.float32)).to(DT)
    return params


def check_config(cfg, tr):
    """Reject configs the reference cannot run unambiguously."""
    check_model(cfg)
    missing = [k for k in TRAIN_KEYS if k not in tr]
    if missing:
        raise CaseError("attr 'train' lacks " + ", ".join(missing))
    if tr["schedule"] not in ("cosine", "constant"):
        raise CaseError(f"unknown schedule {tr['schedule']!r}")
    if tr["schedule"] == "cosine" and tr["anneal_steps"] <= 0:
        raise CaseError("cosine schedule needs anneal_steps > 0 (README divides by it)")
    if tr["clip"] <= 0:
        raise CaseError(f"clip must be > 0, got {tr['clip']}")


def check_model(cfg):
    """Reject model configs the reference cannot run unambiguously."""
    missing = [k for k in MODEL_KEYS if k not in cfg] + ["bias." + k for k in BIAS_KEYS
                                                          if k not in cfg.get("bias", {})]
    if missing:
        raise CaseError("attr 'model' lacks " + ", ".join(missing))
    d, H, r = cfg["d_model"], cfg["n_head"], cfg["rotary_dim"]
    if H <= 0 or d % H or r % 2 or not 0 <= r <= d // H:
        raise CaseError(f"bad attention shape: d_model {d}, n_head {H}, rotary_dim {r}")
    if not 0 < cfg["loss_vocab"] <= cfg["vocab_size"]:
        raise CaseError(f"loss_vocab {cfg['loss_vocab']} not in 1..vocab_size {cfg['vocab_size']}")
    if cfg["attn_scale"] not in ("inv_sqrt_head_dim", "none"):
        raise CaseError(f"unknown attn_scale {cfg['attn_scale']!r}")
    if not cfg["attention_layers"] or set(cfg["attention_layers"]) - {"global", "local"}:
        raise CaseError(f"bad attention_layers {cfg['attention_layers']!r}")


def load_case(path):
    """Read and validate CASE.h5 (README). Returns cfg, train, params, tokens, weights."""
    if not os.path.isfile(path):
        raise CaseError("no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CaseError(f"not a readable HDF5 file ({e})")
    with f:
        missing = [a for a in ("model", "train") if a not in f.attrs]
        if missing:
            raise CaseError("missing attribute " + ", ".join(repr(a) for a in missing))
        try:
            cfg, tr = json.loads(f.attrs["model"]), json.loads(f.attrs["train"])
        except (TypeError, ValueError) as e:
            raise CaseError(f"attribute is not a JSON string ({e})")
        if not isinstance(cfg, dict) or not isinstance(tr, dict):
            raise CaseError("attrs 'model' and 'train' must be JSON objects")
        try:
            check_config(cfg, tr)
        except (TypeError, AttributeError) as e:
            raise CaseError(f"malformed config value ({e})")
        for name in ("params", "tokens", "weights"):
            if name not in f:
                raise CaseError(f"missing /{name}")
        expected, got = param_shapes(cfg), set(f["params"])
        if got != set(expected):
            raise CaseError("/params mismatch: missing " + (", ".join(sorted(set(expected) - got)) or "none")
                            + "; unexpected " + (", ".join(sorted(got - set(expected))) or "none"))
        params = read_params(f["params"], expected)
        if "lora" in f.attrs:                                    # LoRA adapters on the frozen /params
            lora = json.loads(f.attrs["lora"])
            if "lora" not in f:
                raise CaseError("attr 'lora' without /lora")
            params.update(read_params(f["lora"], lora_shapes(cfg, lora)))
            params[LORA_SCALE] = torch.tensor(lora["alpha"] / lora["rank"], dtype=DT)
            if lora.get("dropout", 0) > 0:
                global DROPOUT
                DROPOUT = LoraDropout(cfg, lora, f["tokens"].shape[2])
        tokens, weights = f["tokens"], f["weights"]
        if tokens.dtype.kind not in "iu" or weights.dtype.kind != "f":
            raise CaseError(f"/tokens must be integer and /weights float (got {tokens.dtype}, {weights.dtype})")
        tokens, weights = np.asarray(tokens, dtype=np.int64), np.asarray(weights, dtype=np.float32)
    steps = tr["steps"]
    if tokens.ndim != 4 or tokens.shape[0] != steps or tokens.shape[3] < 2:
        raise CaseError(f"/tokens has shape {tokens.shape}, expected [steps={steps}, micro, B, T+1]")
    S, M, B, T1 = tokens.shape
    if weights.shape != (S, M, B, T1 - 1):
        raise CaseError(f"/weights has shape {weights.shape}, expected {(S, M, B, T1 - 1)}")
    if T1 - 1 > cfg["n_ctx"]:
        raise CaseError(f"T = {T1 - 1} exceeds n_ctx {cfg['n_ctx']}")
    if tokens.min() < 0 or tokens[..., :-1].max() >= cfg["vocab_size"] or \
            tokens[..., 1:].max() >= cfg["loss_vocab"]:
        raise CaseError("token out of range (inputs must be < vocab_size, targets < loss_vocab)")
    if (weights.reshape(S, -1).sum(axis=1) <= 0).any():
        raise CaseError("some step has sum of /weights <= 0")
    return cfg, tr, params, torch.from_numpy(tokens), torch.from_numpy(weights).to(DT)


def write_out(path, out):
    """Write OUT.h5 (README): float32 tensors, float64 /loss and /step_loss."""
    f32 = lambda t: t.to(torch.float32).numpy()
    with h5py.File(path, "w") as f:
        f["logits"] = f32(out["logits"])
        f["loss"] = np.float64(out["loss"])
        f["step_loss"] = np.asarray(out["step_loss"], dtype=np.float64)
        for group in ("grads", "grads32", "final"):
            for name, t in out[group].items():
                f[f"{group}/{name}"] = f32(t)


# -------------------------------------------------------------------------------------------- greedy

def greedy(cfg, p, prompt, max_new, limit):
    """Greedy decoding, the whole sequence recomputed for every new token.

    The next token is the argmax of the last position's logits over ids [0, limit) (torch.argmax takes the
    first of equal maxima: the lowest id). A completion ends before the end-of-text token, after max_new
    tokens, or when the sequence holds n_ctx + 1 tokens (the last one was predicted at position n_ctx - 1).
    Returns the new tokens and the smallest gap between the best and the second-best logit on the way.
    """
    seq, new, margin = list(prompt), [], math.inf
    while True:
        logits = forward(cfg, p, torch.tensor([seq]))[0, -1, :limit]
        top2 = torch.topk(logits, 2).values
        margin = min(margin, float(top2[0] - top2[1]))
        tok = int(torch.argmax(logits))
        if tok == cfg["eot_token"]:
            break
        seq.append(tok)
        new.append(tok)
        if len(new) == max_new or len(seq) > cfg["n_ctx"]:
            break
    return new, margin


def load_checkpoint(path):
    """The model config and float64 parameters of a meshtrain checkpoint (README: Checkpoints)."""
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise CaseError(f"not a readable HDF5 file ({e})")
    with f:
        cfg = json.loads(f.attrs["config"])["model"]
        check_model(cfg)
        params = {name: torch.from_numpy(np.asarray(f["params"][name], dtype=np.float32)).to(DT)
                  for name in param_shapes(cfg)}
    return cfg, params


def main_greedy(ckpt, prompts_path, out_path):
    """PROMPTS.json: {"prompts": [[ids]...], "max_new": N, "limit": L}; OUT.json: {"completions": [[ids]...],
    "min_margin": the smallest top-1 / top-2 logit gap seen}."""
    cfg, params = load_checkpoint(ckpt)
    with open(prompts_path) as f:
        job = json.load(f)
    out, margin = [], math.inf
    with torch.no_grad():
        for prompt in job["prompts"]:
            new, m = greedy(cfg, params, prompt, job["max_new"], job["limit"])
            out.append(new)
            margin = min(margin, m)
    with open(out_path, "w") as f:
        json.dump({"completions": out, "min_margin": margin}, f)
    return 0


def main(argv):
    if len(argv) == 5 and argv[1] == "greedy":
        try:
            return main_greedy(*argv[2:])
        except (CaseError, KeyError, ValueError) as e:
            print(f"model_ref.py: {argv[2]}: {e}", file=sys.stderr)
            return 2
    if len(argv) != 3:
        print("usage: model_ref.py CASE.h5 OUT.h5 | greedy CHECKPOINT.h5 PROMPTS.json OUT.json", file=sys.stderr)
        return 2
    try:
        cfg, tr, params, tokens, weights = load_case(argv[1])
    except CaseError as e:
        print(f"model_ref.py: {argv[1]}: {e}", file=sys.stderr)
        return 2
    out = train(cfg, tr, params, tokens, weights)
    try:
        write_out(argv[2], out)
    except OSError as e:
        print(f"model_ref.py: {argv[2]}: cannot write ({e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
