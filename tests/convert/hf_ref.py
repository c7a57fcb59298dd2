"""Hugging Face naming, orientation and config.json for the three families, written from SPEC 5.1-5.3 and
SPEC 1.1, 2.1, 3 (independently of train/hf_*.c), and the test models.

Parameters use the project names and [out, in] orientation of tests/ref/README.md.
"""
import numpy as np

FAMILIES = ("gptj", "gpt_neo", "gpt2")


def hf_tensors(family, cfg, p, prefix=True):
    """Project-named parameters -> [(HF name, array)] in HF's names and orientations (SPEC 5.1-5.3); the
    arrays may be views of p's."""
    T = "transformer." if prefix else ""
    out = [(T + "wte.weight", p["wte"])]
    if "wpe" in p:
        out.append((T + "wpe.weight", p["wpe"]))
    for i in range(cfg["n_layer"]):
        h, q = f"{T}h.{i}.", f"h.{i}."
        out += [(h + "ln_1.weight", p[q + "ln_1.weight"]), (h + "ln_1.bias", p[q + "ln_1.bias"])]
        if family == "gptj":                    # SPEC 5.1: [out, in], no attention biases
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                out.append((h + f"attn.{proj}.weight", p[q + f"attn.{proj}.weight"]))
            for lin in ("fc_in", "fc_out"):
                out += [(h + f"mlp.{lin}.weight", p[q + f"mlp.{lin}.weight"]),
                        (h + f"mlp.{lin}.bias", p[q + f"mlp.{lin}.bias"])]
            continue
        if family == "gpt_neo":                 # SPEC 5.2: nn.Linear [out, in], attn.attention.*
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                out.append((h + f"attn.attention.{proj}.weight", p[q + f"attn.{proj}.weight"]))
            out.append((h + "attn.attention.out_proj.bias", p[q + "attn.out_proj.bias"]))
            mlp = [("c_fc", "fc_in", False), ("c_proj", "fc_out", False)]
        else:                                   # SPEC 5.3: Conv1D [in, out], fused c_attn columns q|k|v
            qkv = [p[q + f"attn.{x}_proj.weight"] for x in "qkv"]
            out.append((h + "attn.c_attn.weight", np.concatenate([w.T for w in qkv], axis=1)))
            out.append((h + "attn.c_attn.bias", np.concatenate([p[q + f"attn.{x}_proj.bias"] for x in "qkv"])))
            out += [(h + "attn.c_proj.weight", p[q + "attn.out_proj.weight"].T),
                    (h + "attn.c_proj.bias", p[q + "attn.out_proj.bias"])]
            mlp = [("c_fc", "fc_in", True), ("c_proj", "fc_out", True)]
        out += [(h + "ln_2.weight", p[q + "ln_2.weight"]), (h + "ln_2.bias", p[q + "ln_2.bias"])]
        for theirs, ours, transposed in mlp:
            w = p[q + f"mlp.{ours}.weight"]
            out += [(h + f"mlp.{theirs}.weight", w.T if transposed else w),
                    (h + f"mlp.{theirs}.bias", p[q + f"mlp.{ours}.bias"])]
    out += [(T + "ln_f.weight", p["ln_f.weight"]), (T + "ln_f.bias", p["ln_f.bias"])]
    if not cfg["tie_embeddings"]:
        out.append(("lm_head.weight", p["lm_head.weight"]))
        if "lm_head.bias" in p:
            out.append(("lm_head.bias", p["lm_head.bias"]))
    return out


def mask_buffers(family, cfg, prefix=True):
    """The non-parameter buffers older HF files carry (SPEC 5.1-5.3): causal masks and masked_bias."""
    T = "transformer." if prefix else ""
    n = cfg["n_ctx"]
    attn = "attn.attention." if family == "gpt_neo" else "attn."
    tri = np.tril(np.ones((n, n), dtype=np.uint8))[None, None]
    out = []
    for i in range(cfg["n_layer"]):
        out.append((f"{T}h.{i}.{attn}bias", "BOOL", tri))
        out.append((f"{T}h.{i}.{attn}masked_bias", "F32", np.array(-1e9, dtype=np.float32)))
    return out


def attention_types(cfg):
    """The per-layer pattern as GPT-Neo's attention_types: [[pattern, repeats], [partial pattern, 1]]."""
    pat, L = cfg["attention_layers"], cfg["n_layer"]
    out = [[list(pat), L // len(pat)]] if L >= len(pat) else []
    if L % len(pat):
        out.append([list(pat[:L % len(pat)]), 1])
    return out


def hf_config(family, cfg, dtype="float32", dropout=0.0):
    """config.json as save_pretrained writes it for GPTJConfig / GPTNeoConfig / GPT2Config."""
    d, f = cfg["d_model"], cfg["d_ff"]
    inner = None if f == 4 * d else f
    common = {"vocab_size": cfg["vocab_size"], "activation_function": "gelu_new",
              "layer_norm_epsilon": cfg["layer_norm_eps"], "initializer_range": 0.02, "use_cache": True,
              "bos_token_id": cfg["eot_token"], "eos_token_id": cfg["eot_token"],
              "tie_word_embeddings": cfg["tie_embeddings"], "torch_dtype": dtype,
              "transformers_version": "4.30.2"}
    if family == "gptj":
        return {"architectures": ["GPTJForCausalLM"], "model_type": "gptj", "n_positions": cfg["n_ctx"],
                "n_embd": d, "n_layer": cfg["n_layer"], "n_head": cfg["n_head"], "rotary_dim": cfg["rotary_dim"],
                "n_inner": inner, "resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout, **common}
    if family == "gpt_neo":
        L = cfg["n_layer"]
        layers = [cfg["attention_layers"][i % len(cfg["attention_layers"])] for i in range(L)]
        return {"architectures": ["GPTNeoForCausalLM"], "model_type": "gpt_neo",
                "max_position_embeddings": cfg["n_ctx"], "hidden_size": d, "num_layers": L,
                "num_heads": cfg["n_head"], "attention_types": attention_types(cfg), "attention_layers": layers,
                "window_size": cfg["local_window"], "intermediate_size": inner, "embed_dropout": dropout,
                "attention_dropout": dropout, "resid_dropout": dropout, **common}
    return {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_positions": cfg["n_ctx"],
            "n_ctx": cfg["n_ctx"], "n_embd": d, "n_layer": cfg["n_layer"], "n_head": cfg["n_head"],
            "n_inner": inner, "resid_pdrop": dropout, "embd_pdrop": dropout, "attn_pdrop": dropout,
            "scale_attn_weights": cfg["attn_scale"] == "inv_sqrt_head_dim", "scale_attn_by_inverse_layer_idx": False,
            "reorder_and_upcast_attn": False, **common}


def family_config(family, **shape):
    """A project model config (tests/ref/README.md) of the family's architecture (SPEC 8 tables)."""
    arch = {
        "gptj": dict(parallel_residual=True, tie_embeddings=False, attn_scale="inv_sqrt_head_dim",
                     bias=dict(qkv=False, attn_out=False, mlp=True, lm_head=True)),
        "gpt_neo": dict(rotary_dim=0, parallel_residual=False, tie_embeddings=True, attn_scale="none",
                        bias=dict(qkv=False, attn_out=True, mlp=True, lm_head=False)),
        "gpt2": dict(rotary_dim=0, parallel_residual=False, tie_embeddings=True, attn_scale="inv_sqrt_head_dim",
                     bias=dict(qkv=True, attn_out=True, mlp=True, lm_head=False)),
    }[family]
    cfg = dict(attention_layers=["global"], local_window=256, layer_norm_eps=1e-5, eot_token=50256, **arch)
    cfg.update(shape)
    if not cfg["tie_embeddings"] and family != "gptj":
        cfg["bias"] = dict(cfg["bias"], lm_head=False)
    cfg["loss_vocab"] = cfg["vocab_size"]         # HF's softmax covers every row (SPEC 1.2)
    return cfg


# The test models: (family, project config, HF file options).
CASES = {
    # GPT-J with its 50400 rows (more than the tokenizer's 50257); sharded F32 with mask buffers.
    "tiny-gptj": ("gptj", family_config("gptj", vocab_size=50400, n_layer=2, d_model=64, n_head=4, d_ff=256,
                                        n_ctx=64, rotary_dim=8),
                  dict(dtype="F32", shards=3, prefix=True, buffers=True)),
    # GPT-Neo: 3 layers of a global/local pattern (attention_types with a partial group), a window
    # shorter than the sequence, d_ff != 4d; BF16, tied.
    "tiny-neo": ("gpt_neo", family_config("gpt_neo", vocab_size=250, n_layer=3, d_model=64, n_head=4, d_ff=192,
                                          n_ctx=64, attention_layers=["global", "local"], local_window=6,
                                          eot_token=0),
                 dict(dtype="BF16", shards=1, prefix=True, buffers=True)),
    # GPT-2 as the hub stores it (no "transformer." prefix), F16, with an untied head.
    "tiny-gpt2": ("gpt2", family_config("gpt2", vocab_size=250, n_layer=2, d_model=64, n_head=4, d_ff=256,
                                        n_ctx=64, tie_embeddings=False, eot_token=0),
                  dict(dtype="F16", shards=1, prefix=False, buffers=True)),
    # Real widths.
    "gpt2-124m": ("gpt2", family_config("gpt2", vocab_size=50257, n_layer=12, d_model=768, n_head=12, d_ff=3072,
                                        n_ctx=1024),
                  dict(dtype="F32", shards=1, prefix=False, buffers=True)),
    "gpt-neo-1.3b": ("gpt_neo", family_config("gpt_neo", vocab_size=50257, n_layer=24, d_model=2048, n_head=16,
                                              d_ff=8192, n_ctx=2048, attention_layers=["global", "local"],
                                              local_window=256),
                     dict(dtype="F32", shards=1, prefix=True, buffers=False)),
    "gpt-neo-125m": ("gpt_neo", family_config("gpt_neo", vocab_size=50257, n_layer=12, d_model=768, n_head=12,
                                              d_ff=3072, n_ctx=2048, attention_layers=["global", "local"],
                                              local_window=256),
                     dict(dtype="BF16", shards=2, prefix=True, buffers=False)),
}
