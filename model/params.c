#include "model/params.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"

static long gcd(long a, long b) { return b ? gcd(b, a % b) : a; }

int param_table_add(param_table *t, int cap, const char *name, int ndim, long rows, long cols, tp_rule rule,
                    init_kind init, int tp, int tp_rank) {
    CHECK(t->n < cap, "parameter table overflow");
    param_info *p = &t->p[t->n];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = rows;
    p->shape[1] = ndim == 2 ? cols : 1;
    p->local_shape[0] = p->shape[0];
    p->local_shape[1] = p->shape[1];
    switch (rule) {
    case TP_SPLIT_OUTPUT:
        p->local_shape[0] = rows / tp;
        p->row_start = p->local_shape[0] * tp_rank;
        break;
    case TP_SPLIT_INPUT:
        p->local_shape[1] = cols / tp;
        p->col_start = p->local_shape[1] * tp_rank;
        break;
    case TP_VOCAB:
        p->local_shape[0] = t->padded_vocab / tp;
        p->row_start = p->local_shape[0] * tp_rank;
        break;
    default:
        break;
    }
    p->numel = (size_t)(p->local_shape[0] * p->local_shape[1]);
    p->valid_rows =
        p->shape[0] - p->row_start < p->local_shape[0] ? p->shape[0] - p->row_start : p->local_shape[0];
    if (p->valid_rows < 0)
        p->valid_rows = 0;
    p->offset = t->total;
    t->total = mt_round_up(t->total + p->numel, 16);
    p->decay = ndim >= 2;
    p->rule = rule;
    p->init = init;
    return t->n++;
}

void param_table_build(param_table *t, const model_config *c, int tp, int tp_rank) {
    memset(t, 0, sizeof *t);
    int cap = 8 + 16 * c->n_layer;
    t->p = mt_calloc((size_t)cap, sizeof *t->p);
    t->layer = mt_calloc((size_t)c->n_layer, sizeof *t->layer);
    long quantum = 128 / gcd(128, tp) * tp; /* lcm(128, tp) */
    t->padded_vocab = (long)mt_round_up((size_t)c->vocab_size, (size_t)quantum);
    long d = c->d_model, f = c->d_ff, V = c->vocab_size;
#define ADD(name, ndim, rows, cols, rule, init)                                                              \
    param_table_add(t, cap, name, ndim, rows, cols, rule, init, tp, tp_rank)
    t->wte = ADD("wte", 2, V, d, TP_VOCAB, INIT_NORMAL);
    t->wpe = c->rotary_dim == 0 ? ADD("wpe", 2, c->n_ctx, d, TP_REPLICATED, INIT_NORMAL) : -1;
    char nm[64];
    for (int i = 0; i < c->n_layer; i++) {
        layer_params *L = &t->layer[i];
        memset(L, -1, sizeof *L);
#define NAME(s) (snprintf(nm, sizeof nm, "h.%d.%s", i, s), nm)
        L->ln1_w = ADD(NAME("ln_1.weight"), 1, d, 1, TP_REPLICATED, INIT_ONES);
        L->ln1_b = ADD(NAME("ln_1.bias"), 1, d, 1, TP_REPLICATED, INIT_ZEROS);
        L->q_w = ADD(NAME("attn.q_proj.weight"), 2, d, d, TP_SPLIT_OUTPUT, INIT_NORMAL);
        if (c->bias_qkv)
            L->q_b = ADD(NAME("attn.q_proj.bias"), 1, d, 1, TP_SPLIT_OUTPUT, INIT_ZEROS);
        L->k_w = ADD(NAME("attn.k_proj.weight"), 2, d, d, TP_SPLIT_OUTPUT, INIT_NORMAL);
        if (c->bias_qkv)
            L->k_b = ADD(NAME("attn.k_proj.bias"), 1, d, 1, TP_SPLIT_OUTPUT, INIT_ZEROS);
        L->v_w = ADD(NAME("attn.v_proj.weight"), 2, d, d, TP_SPLIT_OUTPUT, INIT_NORMAL);
        if (c->bias_qkv)
            L->v_b = ADD(NAME("attn.v_proj.bias"), 1, d, 1, TP_SPLIT_OUTPUT, INIT_ZEROS);
        L->o_w = ADD(NAME("attn.out_proj.weight"), 2, d, d, TP_SPLIT_INPUT, INIT_NORMAL_RESID);
        if (c->bias_attn_out)
            L->o_b = ADD(NAME("attn.out_proj.bias"), 1, d, 1, TP_REPLICATED, INIT_ZEROS);
        if (!c->parallel_residual) {
            L->ln2_w = ADD(NAME("ln_2.weight"), 1, d, 1, TP_REPLICATED, INIT_ONES);
            L->ln2_b = ADD(NAME("ln_2.bias"), 1, d, 1, TP_REPLICATED, INIT_ZEROS);
        }
        L->fc_w = ADD(NAME("mlp.fc_in.weight"), 2, f, d, TP_SPLIT_OUTPUT, INIT_NORMAL);
        if (c->bias_mlp)
            L->fc_b = ADD(NAME("mlp.fc_in.bias"), 1, f, 1, TP_SPLIT_OUTPUT, INIT_ZEROS);
        L->out_w = ADD(NAME("mlp.fc_out.weight"), 2, d, f, TP_SPLIT_INPUT, INIT_NORMAL_RESID);
        if (c->bias_mlp)
            L->out_b = ADD(NAME("mlp.fc_out.bias"), 1, d, 1, TP_REPLICATED, INIT_ZEROS);
#undef NAME
    }
    t->lnf_w = ADD("ln_f.weight", 1, d, 1, TP_REPLICATED, INIT_ONES);
    t->lnf_b = ADD("ln_f.bias", 1, d, 1, TP_REPLICATED, INIT_ZEROS);
    t->head_w = c->tie_embeddings ? t->wte : ADD("lm_head.weight", 2, V, d, TP_VOCAB, INIT_NORMAL);
    t->head_b = c->bias_lm_head ? ADD("lm_head.bias", 1, V, 1, TP_VOCAB, INIT_ZEROS) : -1;
#undef ADD
}

void param_table_free(param_table *t) {
    free(t->p);
    free(t->layer);
    memset(t, 0, sizeof *t);
}

long param_count(const param_table *t) {
    long n = 0;
    for (int i = 0; i < t->n; i++)
        n += t->p[i].shape[0] * t->p[i].shape[1];
    return n;
}

int param_find(const param_table *t, const char *name) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->p[i].name, name) == 0)
            return i;
    return -1;
}

/* splitmix64: a counter-based generator, so element i's value needs no state. */
static uint64_t mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

/* Uniform in [0, 1) from one counter. */
static double uniform_at(uint64_t key, uint64_t index) {
    return (double)(mix64(key ^ mix64(index)) >> 11) / 9007199254740992.0;
}

/* Standard normal from two 53-bit uniforms of one counter (Box-Muller). */
static double normal_at(uint64_t key, uint64_t index) {
    uint64_t a = mix64(key ^ mix64(2 * index)), b = mix64(key ^ mix64(2 * index + 1));
    double u1 = ((double)(a >> 11) + 1.0) / 9007199254740993.0, u2 = (double)(b >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void param_init_tensor(const param_table *t, const model_config *c, uint64_t seed, int i, float *out) {
    const param_info *p = &t->p[i];
    double std = c->init_std;
    /* GPT-2 / GPT-J scale the projections that write into the residual stream by 1/sqrt(2L). */
    if (p->init == INIT_NORMAL_RESID)
        std /= sqrt(2.0 * c->n_layer);
    uint64_t key = mix64(seed ^ name_hash(p->name));
    memset(out, 0, p->numel * sizeof *out); /* padded vocabulary rows stay zero */
#pragma omp parallel for schedule(static)
    for (long r = 0; r < p->valid_rows; r++) {
        long gr = r + p->row_start;
        for (long col = 0; col < p->local_shape[1]; col++) {
            long gc = col + p->col_start;
            float v = 0.0f;
            if (p->init == INIT_ONES)
                v = 1.0f;
            uint64_t index = (uint64_t)(gr * p->shape[1] + gc);
            if (p->init == INIT_NORMAL || p->init == INIT_NORMAL_RESID)
                v = (float)(std * normal_at(key, index));
            if (p->init == INIT_FAN_IN_UNIFORM)
                v = (float)((2.0 * uniform_at(key, index) - 1.0) / sqrt((double)p->shape[1]));
            out[r * p->local_shape[1] + col] = v;
        }
    }
}
