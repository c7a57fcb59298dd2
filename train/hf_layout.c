#include "train/hf_layout.h"

#include <stdio.h>
#include <string.h>

static const char *const MODEL_TYPE[HF_N_FAMILIES] = {"gptj", "gpt_neo", "gpt2"};

const char *hf_model_type(hf_family f) { return MODEL_TYPE[f]; }

enum { GPTJ = 1 << HF_GPTJ, NEO = 1 << HF_GPT_NEO, GPT2 = 1 << HF_GPT2, ALL = GPTJ | NEO | GPT2 };

/* Project name (without the "h.<i>." of a layer) -> HF name, for the families that spell it differently.
 * GPT-Neo keeps its attention projections one level down and calls the MLP c_fc / c_proj, as nn.Linear
 * [out, in] (SPEC 5.2); GPT-2 fuses q, k, v into c_attn and stores Conv1D weights [in, out] (SPEC 5.3);
 * GPT-J's names are the project's (SPEC 5.1). */
static const struct {
    unsigned families;
    const char *ours, *theirs;
    int slot, n_slots, transposed;
} RENAMES[] = {
    {ALL, "wte", "wte.weight", 0, 1, 0},
    {ALL, "wpe", "wpe.weight", 0, 1, 0},
    {NEO, "attn.q_proj.weight", "attn.attention.q_proj.weight", 0, 1, 0},
    {NEO, "attn.k_proj.weight", "attn.attention.k_proj.weight", 0, 1, 0},
    {NEO, "attn.v_proj.weight", "attn.attention.v_proj.weight", 0, 1, 0},
    {NEO, "attn.out_proj.weight", "attn.attention.out_proj.weight", 0, 1, 0},
    {NEO, "attn.out_proj.bias", "attn.attention.out_proj.bias", 0, 1, 0},
    {NEO, "mlp.fc_in.weight", "mlp.c_fc.weight", 0, 1, 0},
    {NEO, "mlp.fc_in.bias", "mlp.c_fc.bias", 0, 1, 0},
    {NEO, "mlp.fc_out.weight", "mlp.c_proj.weight", 0, 1, 0},
    {NEO, "mlp.fc_out.bias", "mlp.c_proj.bias", 0, 1, 0},
    {GPT2, "attn.q_proj.weight", "attn.c_attn.weight", 0, 3, 1},
    {GPT2, "attn.k_proj.weight", "attn.c_attn.weight", 1, 3, 1},
    {GPT2, "attn.v_proj.weight", "attn.c_attn.weight", 2, 3, 1},
    {GPT2, "attn.q_proj.bias", "attn.c_attn.bias", 0, 3, 0},
    {GPT2, "attn.k_proj.bias", "attn.c_attn.bias", 1, 3, 0},
    {GPT2, "attn.v_proj.bias", "attn.c_attn.bias", 2, 3, 0},
    {GPT2, "attn.out_proj.weight", "attn.c_proj.weight", 0, 1, 1},
    {GPT2, "attn.out_proj.bias", "attn.c_proj.bias", 0, 1, 0},
    {GPT2, "mlp.fc_in.weight", "mlp.c_fc.weight", 0, 1, 1},
    {GPT2, "mlp.fc_in.bias", "mlp.c_fc.bias", 0, 1, 0},
    {GPT2, "mlp.fc_out.weight", "mlp.c_proj.weight", 0, 1, 1},
    {GPT2, "mlp.fc_out.bias", "mlp.c_proj.bias", 0, 1, 0},
};

void hf_place_of(hf_family f, const param_info *p, hf_place *out) {
    memset(out, 0, sizeof *out);
    /* Split "h.<i>.<rest>" into the layer part and the rest. */
    const char *rest = p->name;
    int layer_len = 0;
    if (!strncmp(rest, "h.", 2)) {
        const char *dot = strchr(rest + 2, '.');
        CHECK(dot, "parameter name %s", p->name);
        layer_len = (int)(dot + 1 - rest);
        rest = dot + 1;
    }
    const char *theirs = rest;
    out->n_slots = 1;
    for (size_t i = 0; i < sizeof RENAMES / sizeof *RENAMES; i++)
        if ((RENAMES[i].families & (1u << f)) && !strcmp(RENAMES[i].ours, rest)) {
            theirs = RENAMES[i].theirs;
            out->slot = RENAMES[i].slot;
            out->n_slots = RENAMES[i].n_slots;
            out->transposed = RENAMES[i].transposed;
        }
    const char *prefix = strncmp(p->name, "lm_head.", 8) ? "transformer." : "";
    int k = snprintf(out->name, sizeof out->name, "%s%.*s%s", prefix, layer_len, p->name, theirs);
    CHECK(k > 0 && (size_t)k < sizeof out->name, "HF name of %s too long", p->name);
    uint64_t rows = (uint64_t)p->shape[0], cols = (uint64_t)p->shape[1], slots = (uint64_t)out->n_slots;
    out->ndim = p->ndim;
    if (p->ndim == 1) {
        out->shape[0] = rows * slots;
    } else if (out->transposed) {
        out->shape[0] = cols;
        out->shape[1] = rows * slots;
    } else {
        out->shape[0] = rows;
        out->shape[1] = cols * slots;
    }
}

static int ends_with(const char *s, const char *tail) {
    size_t n = strlen(s), k = strlen(tail);
    return n >= k && !strcmp(s + n - k, tail);
}

int hf_is_mask_buffer(const char *name) {
    return ends_with(name, ".attn.bias") || ends_with(name, ".attn.masked_bias") ||
           ends_with(name, ".attn.attention.bias") || ends_with(name, ".attn.attention.masked_bias");
}

/* Transposed places: HF row i is column i of the project tensor [rows, cols], stored at columns
 * [c0, c0 + rows) of an HF row of hf_cols; blocks of HF rows go through stage. */
static int copy_transposed(const hf_place *pl, long rows, long cols, float *data, int to_hf, hf_io_fn io,
                           void *ctx, float *stage, size_t stage_n, mt_err *err) {
    uint64_t hf_cols = (uint64_t)rows * (uint64_t)pl->n_slots, c0 = (uint64_t)pl->slot * (uint64_t)rows;
    long block = (long)(stage_n / (size_t)rows);
    CHECK(block >= 1, "stage of %zu floats is smaller than a row of %ld", stage_n, rows);
    for (long i0 = 0; i0 < cols; i0 += block) {
        long nb = cols - i0 < block ? cols - i0 : block;
        if (to_hf)
            for (long o = 0; o < rows; o++)
                for (long i = 0; i < nb; i++)
                    stage[i * rows + o] = data[o * cols + i0 + i];
        int rc = 0;
        if (pl->n_slots == 1) /* the rows of the block are contiguous in the HF tensor */
            rc = io(ctx, (uint64_t)i0 * hf_cols, (size_t)(nb * rows), stage, err);
        for (long i = 0; i < nb && !rc && pl->n_slots > 1; i++)
            rc = io(ctx, (uint64_t)(i0 + i) * hf_cols + c0, (size_t)rows, stage + i * rows, err);
        if (rc)
            return -1;
        if (!to_hf)
            for (long o = 0; o < rows; o++)
                for (long i = 0; i < nb; i++)
                    data[o * cols + i0 + i] = stage[i * rows + o];
    }
    return 0;
}

int hf_copy(const hf_place *pl, const param_info *p, float *data, int to_hf, hf_io_fn io, void *ctx,
            float *stage, size_t stage_n, mt_err *err) {
    /* The project tensor as a matrix: [out, in], or one row for a vector. */
    long rows = p->ndim == 2 ? p->shape[0] : 1, cols = p->ndim == 2 ? p->shape[1] : p->shape[0];
    if (pl->transposed)
        return copy_transposed(pl, rows, cols, data, to_hf, io, ctx, stage, stage_n, err);
    if (pl->n_slots == 1)
        return io(ctx, 0, (size_t)(rows * cols), data, err);
    uint64_t hf_cols = (uint64_t)cols * (uint64_t)pl->n_slots, c0 = (uint64_t)pl->slot * (uint64_t)cols;
    for (long r = 0; r < rows; r++)
        if (io(ctx, (uint64_t)r * hf_cols + c0, (size_t)cols, data + r * cols, err))
            return -1;
    return 0;
}
