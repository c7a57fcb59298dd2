#include "model/lora.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/dropout_mask.h"

const char *const LORA_TARGET_NAMES[LORA_N_TARGETS] = {"q_proj",   "k_proj", "v_proj",
                                                       "out_proj", "fc_in",  "fc_out"};

int lora_target_find(const char *name) {
    for (int t = 0; t < LORA_N_TARGETS; t++)
        if (!strcmp(name, LORA_TARGET_NAMES[t]))
            return t;
    return -1;
}

/* The weight of target t in a layer's parameters. */
static int target_weight(const layer_params *L, int t) {
    const int w[LORA_N_TARGETS] = {L->q_w, L->k_w, L->v_w, L->o_w, L->fc_w, L->out_w};
    return w[t];
}

/* [out, in] of target t's weight (SPEC 1.2: every projection is [out, in]). */
static void target_shape(const model_config *c, int t, long *out, long *in) {
    long d = c->d_model, f = c->d_ff;
    *out = t == LORA_FC_IN ? f : d;
    *in = t == LORA_FC_OUT ? f : d;
}

const char *lora_problem(const model_config *c, const lora_config *lc, char *buf, size_t cap) {
    if (lc->rank <= 0) {
        snprintf(buf, cap, "rank must be at least 1");
        return buf;
    }
    if (!lc->targets) {
        snprintf(buf, cap, "targets must name at least one projection");
        return buf;
    }
    for (int t = 0; t < LORA_N_TARGETS; t++) {
        long out, in;
        target_shape(c, t, &out, &in);
        long side = out < in ? out : in;
        if ((lc->targets >> t & 1) && lc->rank > side) {
            snprintf(buf, cap, "rank %d is larger than %s [%ld, %ld] allows (at most %ld)", lc->rank,
                     LORA_TARGET_NAMES[t], out, in, side);
            return buf;
        }
    }
    return NULL;
}

/* "h.3.attn.q_proj.weight" -> "h.3.attn.q_proj.lora_A" */
static void factor_name(char *out, size_t cap, const char *weight, char factor) {
    size_t n = strlen(weight) - strlen(".weight");
    snprintf(out, cap, "%.*s.lora_%c", (int)n, weight, factor);
}

/* Adds the factors of every adapter, the replicated ones (partial gradients under tp) in a first pass;
 * returns where the second pass started. */
static size_t build_table(param_table *t, lora_adapter *ad, int n, int rank, const param_table *base, int tp,
                          int tp_rank) {
    int cap = 2 * n;
    size_t first_split = 0;
    t->p = mt_calloc((size_t)cap, sizeof *t->p);
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < n; k++) {
            lora_adapter *a = &ad[k];
            const param_info *w = &base->p[a->base];
            int row_parallel = w->rule == TP_SPLIT_INPUT;
            char name[64];
            if (row_parallel == pass) { /* A: split with W's input when W is row-parallel */
                factor_name(name, sizeof name, w->name, 'A');
                a->a =
                    param_table_add(t, cap, name, 2, rank, w->shape[1], pass ? TP_SPLIT_INPUT : TP_REPLICATED,
                                    INIT_FAN_IN_UNIFORM, tp, tp_rank);
            }
            if (row_parallel != pass) { /* B: split with W's output when W is column-parallel */
                factor_name(name, sizeof name, w->name, 'B');
                a->b = param_table_add(t, cap, name, 2, w->shape[0], rank,
                                       pass ? TP_SPLIT_OUTPUT : TP_REPLICATED, INIT_ZEROS, tp, tp_rank);
            }
        }
        if (pass == 0)
            first_split = t->total;
    }
    return first_split;
}

lora_adapter *lora_table_build(param_table *t, int *n_out, size_t *tp_partial_n, const param_table *base,
                               const model_config *c, const lora_config *lc, int tp, int tp_rank) {
    int per_layer = 0, n = 0;
    for (int k = 0; k < LORA_N_TARGETS; k++)
        per_layer += lc->targets >> k & 1;
    lora_adapter *ad = mt_calloc((size_t)(per_layer * c->n_layer), sizeof *ad);
    for (int layer = 0; layer < c->n_layer; layer++)
        for (int k = 0; k < LORA_N_TARGETS; k++)
            if (lc->targets >> k & 1)
                ad[n++] = (lora_adapter){.base = target_weight(&base->layer[layer], k), .layer = layer};
    memset(t, 0, sizeof *t);
    *tp_partial_n = build_table(t, ad, n, lc->rank, base, tp, tp_rank);
    *n_out = n;
    return ad;
}

/* Input width of adapter k on this rank. */
static int in_of(const lora_set *l, int k) { return (int)l->table.p[l->ad[k].a].local_shape[1]; }

static void alloc_dropout(ops *o, lora_set *l, size_t rows) {
    int n = l->n_sets * l->per_layer, widest = 0;
    l->threshold = (uint32_t)(l->cfg.dropout * 16777216.0 + 0.5);
    l->xd = mt_calloc((size_t)n, sizeof *l->xd);
    for (int i = 0; i < n; i++)
        l->xd[i] = o->alloc(o, rows * (size_t)in_of(l, i % l->per_layer), OPS_ACT);
    for (int k = 0; k < l->per_layer; k++)
        widest = in_of(l, k) > widest ? in_of(l, k) : widest;
    l->dxd = o->alloc(o, rows * (size_t)widest, OPS_ACT);
}

lora_set *lora_create(ops *o, const param_table *base, const model_config *c, const lora_config *lc, int tp,
                      int tp_rank, size_t flat_align, size_t rows, int n_sets, int training) {
    lora_set *l = mt_calloc(1, sizeof *l);
    l->cfg = *lc;
    l->scale = (float)(lc->alpha / lc->rank);
    l->ad = lora_table_build(&l->table, &l->n, &l->tp_partial_n, base, c, lc, tp, tp_rank);
    l->per_layer = l->n / c->n_layer;
    l->of_base = mt_malloc((size_t)base->n * sizeof *l->of_base);
    for (int i = 0; i < base->n; i++)
        l->of_base[i] = -1;
    for (int k = 0; k < l->n; k++)
        l->of_base[l->ad[k].base] = k;
    l->flat_n = mt_round_up(l->table.total, flat_align);
    l->params = o->alloc(o, l->flat_n, OPS_F32);
    l->work = o->act_dtype == OPS_F32 ? l->params : o->alloc(o, l->flat_n, OPS_ACT);
    l->n_sets = n_sets;
    l->h = mt_calloc((size_t)(n_sets * l->per_layer), sizeof *l->h);
    for (int i = 0; i < n_sets * l->per_layer; i++)
        l->h[i] = o->alloc(o, rows * (size_t)lc->rank, OPS_ACT);
    if (training) {
        l->grads = o->alloc(o, l->flat_n, OPS_F32);
        l->dh = o->alloc(o, rows * (size_t)lc->rank, OPS_ACT);
    }
    if (training && lc->dropout > 0)
        alloc_dropout(o, l, rows);
    return l;
}

void lora_free(ops *o, lora_set *l) {
    if (!l)
        return;
    for (int i = 0; i < l->n_sets * l->per_layer; i++) {
        o->free(o, l->h[i]);
        if (l->xd)
            o->free(o, l->xd[i]);
    }
    o->free(o, l->dxd);
    free(l->xd);
    if (l->work != l->params)
        o->free(o, l->work);
    o->free(o, l->params);
    o->free(o, l->grads);
    o->free(o, l->dh);
    free(l->h);
    free(l->ad);
    free(l->of_base);
    param_table_free(&l->table);
    free(l);
}

void lora_init(ops *o, lora_set *l, const model_config *c, uint64_t seed) {
    l->seed = seed;
    size_t biggest = 0;
    for (int i = 0; i < l->table.n; i++)
        biggest = l->table.p[i].numel > biggest ? l->table.p[i].numel : biggest;
    float *host = mt_malloc(biggest * sizeof *host);
    o->zero(o, (ops_ptr){l->params, 0}, l->flat_n);
    for (int i = 0; i < l->table.n; i++) {
        param_init_tensor(&l->table, c, seed, i, host);
        o->from_host(o, (ops_ptr){l->params, l->table.p[i].offset}, host, l->table.p[i].numel);
    }
    free(host);
}

void lora_sync_work(ops *o, lora_set *l) {
    if (l->work != l->params)
        o->cast(o, (ops_ptr){l->work, 0}, (ops_ptr){l->params, 0}, l->flat_n);
}

void lora_dropout_pass(lora_set *l, long step, int micro) {
    l->dropping = l->threshold > 0;
    l->pass_key = mt_dropout_mix64(l->seed ^ mt_dropout_mix64((uint64_t)step << 32 | (uint32_t)micro));
}

void lora_dropout_off(lora_set *l) { l->dropping = 0; }

/* Adapter k's buffers in its layer's activation set (or the one shared set). */
static int slot_of(const lora_set *l, int k) {
    return (l->n_sets == 1 ? 0 : l->ad[k].layer) * l->per_layer + k % l->per_layer;
}

/* x A^T of adapter k. */
static ops_ptr h_of(lora_set *l, int k) { return (ops_ptr){l->h[slot_of(l, k)], 0}; }

/* Applies adapter k's mask of this pass to a [rows, in] block of its input space. */
static void drop(ops *o, lora_set *l, int k, ops_ptr y, ops_ptr x, int rows) {
    const param_info *a = &l->table.p[l->ad[k].a];
    uint64_t key = mt_dropout_mix64(l->pass_key ^ mt_dropout_mix64((uint64_t)k));
    o->dropout(o, y, x, rows, (int)a->local_shape[1], (int)a->col_start, (int)a->shape[1], l->threshold,
               (float)(1.0 / (1.0 - l->cfg.dropout)), key);
}

/* The input A reads: x, or in a training pass with dropout its dropped copy (made by the forward). */
static ops_ptr input_of(ops *o, lora_set *l, int k, ops_ptr x, int rows, int make) {
    if (!l->dropping)
        return x;
    ops_ptr xd = {l->xd[slot_of(l, k)], 0};
    if (make)
        drop(o, l, k, xd, x, rows);
    return xd;
}

/* Local shapes: A [rank, in], B [out, rank] of this rank's shard. */
static void dims(const lora_set *l, int k, int *out, int *in) {
    *in = (int)l->table.p[l->ad[k].a].local_shape[1];
    *out = (int)l->table.p[l->ad[k].b].local_shape[0];
}

void lora_fwd(ops *o, lora_set *l, int k, ops_ptr y, ops_ptr x, int rows) {
    int out, in, r = l->cfg.rank;
    dims(l, k, &out, &in);
    ops_ptr A = {l->work, l->table.p[l->ad[k].a].offset}, B = {l->work, l->table.p[l->ad[k].b].offset};
    ops_ptr h = h_of(l, k), xa = input_of(o, l, k, x, rows, 1);
    o->matmul(o, 0, 1, rows, r, in, 1.0f, xa, in, A, in, 0.0f, h, r);
    o->matmul(o, 0, 1, rows, out, r, l->scale, h, r, B, r, 1.0f, y, out);
}

void lora_bwd(ops *o, lora_set *l, int k, ops_ptr dx, ops_ptr dy, ops_ptr x, int rows) {
    int out, in, r = l->cfg.rank;
    dims(l, k, &out, &in);
    size_t a_off = l->table.p[l->ad[k].a].offset, b_off = l->table.p[l->ad[k].b].offset;
    ops_ptr A = {l->work, a_off}, B = {l->work, b_off}, h = h_of(l, k), dh = {l->dh, 0};
    o->matmul(o, 1, 0, out, r, rows, l->scale, dy, out, h, r, 1.0f, (ops_ptr){l->grads, b_off}, r);
    o->matmul(o, 0, 0, rows, r, out, l->scale, dy, out, B, r, 0.0f, dh, r);
    o->matmul(o, 1, 0, r, in, rows, 1.0f, dh, r, input_of(o, l, k, x, rows, 0), in, 1.0f,
              (ops_ptr){l->grads, a_off}, in);
    if (!dx.buf)
        return;
    if (!l->dropping) {
        o->matmul(o, 0, 0, rows, in, r, 1.0f, dh, r, A, in, 1.0f, dx, in);
        return;
    }
    ops_ptr t = {l->dxd, 0}; /* dx += mask * scale * (dh A) */
    o->matmul(o, 0, 0, rows, in, r, 1.0f, dh, r, A, in, 0.0f, t, in);
    drop(o, l, k, t, t, rows);
    o->add(o, dx, dx, t, (size_t)rows * (size_t)in);
}
