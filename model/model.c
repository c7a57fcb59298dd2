/* Forward and backward of the decoder (SPEC 1.2, 2.2, 3): one code path for every family, driven by
 * the config; every kernel goes through m->o. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/kv_cache.h"

typedef struct {
    ops_buf *ln1, *ln1_mean, *ln1_rstd;
    ops_buf *q, *k, *v, *probs, *att;
    ops_buf *mid, *ln2, *ln2_mean, *ln2_rstd; /* sequential blocks only */
    ops_buf *fc_pre, *fc_act;
} layer_acts;

struct model_acts {
    ops_buf *ids, *targets, *weights; /* targets and weights of the counted rows only */
    /* The head runs only on the rows the loss counts (weight != 0): head_rows [n_counted] lists them,
     * head_slot [N] gives each row's place among them (-1: not counted), head_x [n_counted, d] holds their
     * normed hidden states. When every row counts, the head reads lnf directly. */
    ops_buf *head_rows, *head_slot, *head_x;
    int n_counted;
    int32_t *host_ids, *host_targets, *host_rows, *host_slot; /* staging for load_batch */
    float *host_weights;
    int n_resid, n_sets; /* residual streams and layer activation sets allocated */
    ops_buf **resid;     /* residual streams [N, d]: layer l reads l % n_resid, writes the next */
    layer_acts *layer;
    ops_buf *proj; /* [N, d] output of a projection into the residual stream */
    ops_buf *lnf, *lnf_mean, *lnf_rstd;
    ops_buf *logits; /* [n_counted, Vl], overwritten by its gradient in the backward; inference: [B, Vl] */
    /* ce_stats: sumexp [n_counted] then tgt [n_counted], reduced together */
    ops_buf *rowmax, *ce_stats, *loss;
    ops_buf *rope; /* [T_max, rotary_dim] cos | sin table */
    /* backward scratch */
    ops_buf *d_resid, *d_ln, *d_att, *dq, *dk, *dv, *d_scores, *d_fc;
};

static ops_ptr P0(ops_buf *b) { return (ops_ptr){b, 0}; }

/* Layer l's activations: its own, or the one shared set under recompute and in inference. */
static layer_acts *acts_of(model *m, int l) { return &m->acts->layer[m->acts->n_sets == 1 ? 0 : l]; }

/* The residual stream layer l reads (the input of layer l, or of the final LayerNorm for l = n_layer). */
static ops_ptr resid_of(model *m, int l) { return (ops_ptr){m->acts->resid[l % m->acts->n_resid], 0}; }

/* Weights as the kernels read them: the working-precision copy. */
static ops_ptr W(model *m, int index) { return (ops_ptr){m->work, m->table.p[index].offset}; }
static ops_ptr G(model *m, int index) { return (ops_ptr){m->grads, m->table.p[index].offset}; }

static ops_buf *alloc_f(model *m, size_t n) { return m->o->alloc(m->o, n, OPS_F32); }
static ops_buf *alloc_act(model *m, size_t n) { return m->o->alloc(m->o, n, OPS_ACT); }

static void rope_table(model *m) {
    int T = m->T_max, r = m->cfg.rotary_dim;
    float *cs = mt_malloc((size_t)T * r * sizeof *cs);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < r / 2; i++) {
            /* SPEC 1.3: theta_i = 10000^(-2i/r), angle = t * theta_i (computed in double). */
            double angle = t * pow(10000.0, -2.0 * i / r);
            cs[(size_t)t * r + i] = (float)cos(angle);
            cs[(size_t)t * r + r / 2 + i] = (float)sin(angle);
        }
    m->acts->rope = alloc_f(m, (size_t)T * r);
    m->o->from_host(m->o, P0(m->acts->rope), cs, (size_t)T * r);
    free(cs);
}

/* Local output rows of a parameter (this rank's shard). */
static size_t local_rows(const model *m, int index) { return (size_t)m->table.p[index].local_shape[0]; }

/* What the forward needs: ids, the residual streams, n_sets sets of layer activations, the final
 * LayerNorm, logit_rows rows of logits, and the rotary table. */
static void alloc_forward(model *m, int n_resid, int n_sets, size_t logit_rows) {
    const model_config *c = &m->cfg;
    size_t N = (size_t)m->B * m->T_max, d = (size_t)c->d_model;
    size_t dl = local_rows(m, m->table.layer[0].q_w), fl = local_rows(m, m->table.layer[0].fc_w);
    size_t scores = (size_t)m->B * (dl / (size_t)model_head_dim(c)) * m->T_max * m->T_max;
    model_acts *a = mt_calloc(1, sizeof *a);
    m->acts = a;
    a->ids = m->o->alloc(m->o, N, OPS_I32);
    a->n_resid = n_resid;
    a->resid = mt_calloc((size_t)n_resid, sizeof *a->resid);
    for (int l = 0; l < n_resid; l++)
        a->resid[l] = alloc_act(m, N * d);
    a->n_sets = n_sets;
    a->layer = mt_calloc((size_t)n_sets, sizeof *a->layer);
    for (int l = 0; l < n_sets; l++) {
        layer_acts *L = &a->layer[l];
        L->ln1 = alloc_act(m, N * d);
        L->ln1_mean = alloc_f(m, N);
        L->ln1_rstd = alloc_f(m, N);
        L->q = alloc_act(m, N * dl);
        L->k = alloc_act(m, N * dl);
        L->v = alloc_act(m, N * dl);
        L->probs = alloc_act(m, scores);
        L->att = alloc_act(m, N * dl);
        if (!c->parallel_residual) {
            L->mid = alloc_act(m, N * d);
            L->ln2 = alloc_act(m, N * d);
            L->ln2_mean = alloc_f(m, N);
            L->ln2_rstd = alloc_f(m, N);
        }
        L->fc_pre = alloc_act(m, N * fl);
        L->fc_act = alloc_act(m, N * fl);
    }
    a->proj = alloc_act(m, N * d);
    a->lnf = alloc_act(m, N * d);
    a->lnf_mean = alloc_f(m, N);
    a->lnf_rstd = alloc_f(m, N);
    a->logits = alloc_act(m, logit_rows * local_rows(m, m->table.head_w));
    if (c->rotary_dim)
        rope_table(m);
}

/* Training adds the targets and loss weights, the cross-entropy statistics and the backward scratch. */
static void alloc_training(model *m) {
    model_acts *a = m->acts;
    size_t N = (size_t)m->B * m->T, d = (size_t)m->cfg.d_model;
    size_t dl = local_rows(m, m->table.layer[0].q_w), fl = local_rows(m, m->table.layer[0].fc_w);
    size_t scores = (size_t)m->B * (dl / (size_t)model_head_dim(&m->cfg)) * m->T * m->T;
    a->targets = m->o->alloc(m->o, N, OPS_I32);
    a->weights = alloc_f(m, N);
    a->head_rows = m->o->alloc(m->o, N, OPS_I32);
    a->head_slot = m->o->alloc(m->o, N, OPS_I32);
    a->head_x = alloc_act(m, N * d);
    a->host_ids = mt_malloc(N * sizeof *a->host_ids);
    a->host_targets = mt_malloc(N * sizeof *a->host_targets);
    a->host_rows = mt_malloc(N * sizeof *a->host_rows);
    a->host_slot = mt_malloc(N * sizeof *a->host_slot);
    a->host_weights = mt_malloc(N * sizeof *a->host_weights);
    a->rowmax = alloc_f(m, N);
    a->ce_stats = alloc_f(m, 2 * N);
    a->loss = alloc_f(m, N);
    a->d_resid = alloc_act(m, N * d);
    a->d_ln = alloc_act(m, N * d);
    a->d_att = alloc_act(m, N * dl);
    a->dq = alloc_act(m, N * dl);
    a->dk = alloc_act(m, N * dl);
    a->dv = alloc_act(m, N * dl);
    a->d_scores = alloc_act(m, scores);
    a->d_fc = alloc_act(m, N * fl);
}

const char *model_tp_problem(const model_config *cfg, int tp, char *buf, size_t cap) {
    if (cfg->n_head % tp == 0 && cfg->d_ff % tp == 0)
        return NULL;
    snprintf(buf, cap, "parallel.tp = %d must divide n_head %d and d_ff %d", tp, cfg->n_head, cfg->d_ff);
    return buf;
}

/* The parameters (and their working copy) of this rank's shard, for passes of up to B x T positions. */
static model *model_new(const model_config *cfg, ops *o, int B, int T, const model_layout *L) {
    CHECK(T <= cfg->n_ctx, "sequence length %d exceeds n_ctx %d", T, cfg->n_ctx);
    model_layout lay = L ? *L : layout_single();
    char why[160];
    CHECK(!model_tp_problem(cfg, lay.tp_size, why, sizeof why), "%s", why);
    model *m = mt_calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->o = o;
    m->B = B;
    m->T = T;
    m->T_max = T;
    m->layout = lay;
    param_table_build(&m->table, cfg, lay.tp_size, lay.tp_rank);
    m->flat_n = mt_round_up(m->table.total, lay.flat_align);
    m->params = alloc_f(m, m->flat_n);
    m->work = o->act_dtype == OPS_F32 ? m->params : alloc_act(m, m->flat_n);
    return m;
}

static int uses_lora(const lora_config *lc) { return lc && lc->rank > 0; }

/* The adapters of lc for this rank's shard, with x A^T kept in n_sets sets of B x T_max rows. */
static void add_lora(model *m, const lora_config *lc, int n_sets, int training) {
    const model_layout *L = &m->layout;
    m->lora = lora_create(m->o, &m->table, &m->cfg, lc, L->tp_size, L->tp_rank, L->flat_align,
                          (size_t)m->B * m->T_max, n_sets, training);
}

model *model_create_lora(const model_config *cfg, const lora_config *lc, ops *o, int B, int T,
                         const model_layout *L, int recompute) {
    model *m = model_new(cfg, o, B, T, L);
    int n_sets = recompute ? 1 : cfg->n_layer;
    m->recompute = recompute;
    if (!uses_lora(lc))
        m->grads = alloc_f(m, m->flat_n);
    alloc_forward(m, cfg->n_layer + 1, n_sets, (size_t)B * T);
    alloc_training(m);
    if (uses_lora(lc)) {
        add_lora(m, lc, n_sets, 1);
        m->sink = alloc_f(m, 2 * (size_t)cfg->d_model);
    }
    return m;
}

model *model_create_sharded(const model_config *cfg, ops *o, int B, int T, const model_layout *L,
                            int recompute) {
    return model_create_lora(cfg, NULL, o, B, T, L, recompute);
}

model *model_create_infer_lora(const model_config *cfg, const lora_config *lc, ops *o, int B, int T_max,
                               const model_layout *L) {
    model *m = model_new(cfg, o, B, T_max, L);
    /* A layer's activations are dead once the next layer has read its output: two residual streams used
     * in turn and one set of layer buffers serve every layer. */
    alloc_forward(m, 2, 1, (size_t)B);
    m->kv = kv_create(o, cfg, B, T_max, (int)local_rows(m, m->table.layer[0].q_w));
    if (uses_lora(lc))
        add_lora(m, lc, 1, 0);
    return m;
}

model *model_create_infer(const model_config *cfg, ops *o, int B, int T_max, const model_layout *L) {
    return model_create_infer_lora(cfg, NULL, o, B, T_max, L);
}

model *model_create(const model_config *cfg, ops *o, int B, int T) {
    return model_create_sharded(cfg, o, B, T, NULL, 0);
}

param_set model_base(const model *m) { return (param_set){&m->table, m->params, m->grads, m->flat_n, 0}; }

param_set model_trainable(const model *m) {
    const lora_set *l = m->lora;
    return l ? (param_set){&l->table, l->params, l->grads, l->flat_n, l->tp_partial_n} : model_base(m);
}

static void tp_allreduce(model *m, layout_op op, ops_ptr x, size_t n) {
    if (m->layout.tp_size > 1)
        m->layout.tp_allreduce(m->layout.ctx, op, m->o, x, n);
}

/* The two conjugate tensor-parallel operators of SPEC 4.3 (Megatron-LM's g and f), each one all-reduce of
 * a [N, d] activation over the tp group:
 *  - tp_sum_outputs, in the forward after layers split by input (row-parallel: out_proj, fc_out, and the
 *    vocabulary-split embedding), sums the ranks' partial outputs; its backward is the identity.
 *  - tp_sum_input_grads, in the backward before layers split by output (column-parallel: q/k/v, fc_in),
 *    sums the ranks' partial gradients of the shared input; its forward is the identity. The head, split
 *    by vocabulary rows, sums its input gradient the same way over its counted rows only (head_bwd). */
static void tp_sum_outputs(model *m, ops_ptr x) {
    tp_allreduce(m, LAYOUT_SUM, x, (size_t)m->B * m->T * m->cfg.d_model);
}

static void tp_sum_input_grads(model *m, ops_ptr dx) {
    tp_allreduce(m, LAYOUT_SUM, dx, (size_t)m->B * m->T * m->cfg.d_model);
}

static void free_bufs(ops *o, ops_buf **bufs, size_t n) {
    for (size_t i = 0; i < n; i++)
        o->free(o, bufs[i]);
}

void model_free(model *m) {
    if (!m)
        return;
    ops *o = m->o;
    model_acts *a = m->acts;
    for (int l = 0; l < a->n_sets; l++) {
        layer_acts *L = &a->layer[l];
        ops_buf *bufs[] = {L->ln1, L->ln1_mean, L->ln1_rstd, L->q,        L->k,        L->v,      L->probs,
                           L->att, L->mid,      L->ln2,      L->ln2_mean, L->ln2_rstd, L->fc_pre, L->fc_act};
        free_bufs(o, bufs, sizeof bufs / sizeof *bufs);
    }
    free_bufs(o, a->resid, (size_t)a->n_resid);
    ops_buf *bufs[] = {a->ids,      a->targets, a->weights,   a->proj,      a->lnf,    a->lnf_mean,
                       a->lnf_rstd, a->logits,  a->rowmax,    a->ce_stats,  a->loss,   a->rope,
                       a->d_resid,  a->d_ln,    a->d_att,     a->dq,        a->dk,     a->dv,
                       a->d_scores, a->d_fc,    a->head_rows, a->head_slot, a->head_x, m->params,
                       m->grads,    m->sink};
    if (m->work != m->params)
        o->free(o, m->work);
    lora_free(o, m->lora);
    kv_free(o, m->kv);
    free_bufs(o, bufs, sizeof bufs / sizeof *bufs);
    free(a->resid);
    free(a->layer);
    free(a->host_ids);
    free(a->host_targets);
    free(a->host_rows);
    free(a->host_slot);
    free(a->host_weights);
    free(a);
    param_table_free(&m->table);
    free(m);
}

void model_init_params(model *m, uint64_t seed) {
    size_t biggest = 0; /* tensor by tensor: no second copy of the whole model */
    for (int i = 0; i < m->table.n; i++)
        biggest = m->table.p[i].numel > biggest ? m->table.p[i].numel : biggest;
    float *host = mt_malloc(biggest * sizeof *host);
    m->o->zero(m->o, P0(m->params), m->flat_n); /* the gaps between tensors */
    for (int i = 0; i < m->table.n; i++) {
        param_init_tensor(&m->table, &m->cfg, seed, i, host);
        m->o->from_host(m->o, (ops_ptr){m->params, m->table.p[i].offset}, host, m->table.p[i].numel);
    }
    free(host);
    if (m->lora)
        lora_init(m->o, m->lora, &m->cfg, seed);
}

void model_zero_grads(model *m) {
    param_set ps = model_trainable(m);
    m->o->zero(m->o, P0(ps.grads), ps.flat_n);
    if (m->sink)
        m->o->zero(m->o, P0(m->sink), 2 * (size_t)m->cfg.d_model);
}

void model_dropout(model *m, long step, int micro) {
    if (m->lora && micro >= 0)
        lora_dropout_pass(m->lora, step, micro);
    else if (m->lora)
        lora_dropout_off(m->lora);
}

/* The adapter of base weight w, or -1. */
static int adapter_of(const model *m, int w) { return m->lora ? m->lora->of_base[w] : -1; }

/* y[N, out] = x[N, in] W^T (+ b), W is the local [out, in] shard of parameter w. */
static void linear_fwd(model *m, ops_ptr y, ops_ptr x, int w, int b, float beta) {
    const param_info *p = &m->table.p[w];
    int N = m->B * m->T, out = (int)p->local_shape[0], in = (int)p->local_shape[1];
    m->o->matmul(m->o, 0, 1, N, out, in, 1.0f, x, in, W(m, w), in, beta, y, out);
    if (adapter_of(m, w) >= 0)
        lora_fwd(m->o, m->lora, adapter_of(m, w), y, x, N);
    if (b >= 0)
        m->o->add_bias(m->o, y, W(m, b), N, out, out);
}

/* dW += dy^T x, db += colsum(dy) (not for a frozen base), and dx = dy W (accumulated when beta = 1;
 * skipped when dx.buf is NULL), plus the adapter's gradients and its share of dx. */
static void linear_bwd(model *m, ops_ptr dx, ops_ptr dy, ops_ptr x, int w, int b, float beta) {
    const param_info *p = &m->table.p[w];
    int N = m->B * m->T, out = (int)p->local_shape[0], in = (int)p->local_shape[1];
    if (m->grads) {
        m->o->matmul(m->o, 1, 0, out, in, N, 1.0f, dy, out, x, in, 1.0f, G(m, w), in);
        if (b >= 0)
            m->o->bias_grad(m->o, G(m, b), dy, N, out, out);
    }
    if (dx.buf)
        m->o->matmul(m->o, 0, 0, N, in, out, 1.0f, dy, out, W(m, w), in, beta, dx, in);
    if (adapter_of(m, w) >= 0)
        lora_bwd(m->o, m->lora, adapter_of(m, w), dx, dy, x, N);
}

static ops_attn_shape attn_shape(model *m, int layer) {
    const model_config *c = &m->cfg;
    int dh = model_head_dim(c), dl = (int)m->table.p[m->table.layer[layer].q_w].local_shape[0];
    ops_attn_shape s = {.B = m->B, .T = m->T, .H = dl / dh, .dh = dh, .ld_qkv = dl, .ld_out = dl};
    s.window = model_layer_is_local(c, layer) ? c->local_window : m->T_max;
    s.scale = c->attn_scaled ? 1.0f / sqrtf((float)dh) : 1.0f;
    return s;
}

static void attention_fwd(model *m, int l, ops_ptr x_ln) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    ops *o = m->o;
    linear_fwd(m, P0(A->q), x_ln, L->q_w, L->q_b, 0.0f);
    linear_fwd(m, P0(A->k), x_ln, L->k_w, L->k_b, 0.0f);
    linear_fwd(m, P0(A->v), x_ln, L->v_w, L->v_b, 0.0f);
    ops_attn_shape s = attn_shape(m, l);
    int r = m->cfg.rotary_dim;
    if (r) { /* rows at positions pos .. pos + T - 1 (SPEC 1.3) */
        ops_ptr cs = ops_at(P0(m->acts->rope), (size_t)m->pos * (size_t)r);
        o->rotary_fwd(o, P0(A->q), cs, s.B, s.T, s.H, s.dh, r, s.ld_qkv);
        o->rotary_fwd(o, P0(A->k), cs, s.B, s.T, s.H, s.dh, r, s.ld_qkv);
    }
    if (m->kv && m->pos > 0) { /* a decoding step: its own key and value join the cache, then attend */
        kv_store(m->kv, o, l, P0(A->k), P0(A->v), m->B, m->T, m->pos);
        kv_attend(m->kv, o, l, P0(A->att), P0(A->q), s.H, s.dh, m->pos, s.window, s.scale);
        return;
    }
    o->attention_fwd(o, P0(A->att), P0(A->probs), P0(A->q), P0(A->k), P0(A->v), &s);
    if (m->kv) /* prefill */
        kv_store(m->kv, o, l, P0(A->k), P0(A->v), m->B, m->T, m->pos);
}

/* Input: d_out = dL/d(attention block output) in d_proj_out; adds dL/d(x_ln) into d_ln (beta). */
static void attention_bwd(model *m, int l, ops_ptr d_out, ops_ptr x_ln, ops_ptr d_ln, float beta) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    model_acts *a = m->acts;
    ops *o = m->o;
    linear_bwd(m, P0(a->d_att), d_out, P0(A->att), L->o_w, -1, 0.0f);
    ops_attn_shape s = attn_shape(m, l);
    o->attention_bwd(o, P0(a->dq), P0(a->dk), P0(a->dv), P0(a->d_scores), P0(a->d_att), P0(A->q), P0(A->k),
                     P0(A->v), P0(A->probs), &s);
    if (m->cfg.rotary_dim) {
        o->rotary_bwd(o, P0(a->dq), P0(a->rope), s.B, s.T, s.H, s.dh, m->cfg.rotary_dim, s.ld_qkv);
        o->rotary_bwd(o, P0(a->dk), P0(a->rope), s.B, s.T, s.H, s.dh, m->cfg.rotary_dim, s.ld_qkv);
    }
    linear_bwd(m, d_ln, P0(a->dq), x_ln, L->q_w, L->q_b, beta);
    linear_bwd(m, d_ln, P0(a->dk), x_ln, L->k_w, L->k_b, 1.0f);
    linear_bwd(m, d_ln, P0(a->dv), x_ln, L->v_w, L->v_b, 1.0f);
}

/* fc_act = gelu(x_ln W_in^T + b_in); proj (beta) += fc_act W_out^T. */
static void mlp_fwd(model *m, int l, ops_ptr x_ln, ops_ptr proj, float beta) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    size_t n = (size_t)m->B * m->T * (size_t)m->table.p[L->fc_w].local_shape[0];
    linear_fwd(m, P0(A->fc_pre), x_ln, L->fc_w, L->fc_b, 0.0f);
    m->o->gelu_fwd(m->o, P0(A->fc_act), P0(A->fc_pre), n);
    linear_fwd(m, proj, P0(A->fc_act), L->out_w, -1, beta);
}

static void mlp_bwd(model *m, int l, ops_ptr d_out, ops_ptr x_ln, ops_ptr d_ln, float beta) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    model_acts *a = m->acts;
    size_t n = (size_t)m->B * m->T * (size_t)m->table.p[L->fc_w].local_shape[0];
    linear_bwd(m, P0(a->d_fc), d_out, P0(A->fc_act), L->out_w, -1, 0.0f);
    m->o->gelu_bwd(m->o, P0(a->d_fc), P0(A->fc_pre), P0(a->d_fc), n);
    linear_bwd(m, d_ln, P0(a->d_fc), x_ln, L->fc_w, L->fc_b, beta);
}

static void layernorm_fwd(model *m, ops_ptr out, ops_buf *mean, ops_buf *rstd, ops_ptr x, int w, int b) {
    m->o->layernorm_fwd(m->o, out, P0(mean), P0(rstd), x, W(m, w), W(m, b), m->B * m->T, m->cfg.d_model,
                        (float)m->cfg.ln_eps);
}

/* A frozen base's gain and bias gradients go to the sink (the op computes them with dx). */
static void layernorm_bwd(model *m, ops_ptr dx, ops_ptr dout, ops_ptr x, ops_buf *mean, ops_buf *rstd, int w,
                          int b) {
    ops_ptr dg = m->grads ? G(m, w) : P0(m->sink),
            db = m->grads ? G(m, b) : ops_at(P0(m->sink), m->cfg.d_model);
    m->o->layernorm_bwd(m->o, dx, dg, db, dout, x, P0(mean), P0(rstd), W(m, w), m->B * m->T, m->cfg.d_model);
}

/* Adds the biases of the projections that write into the residual stream (once, after the partial
 * sums of a split layer are combined). */
static void add_resid_bias(model *m, ops_ptr proj, int b) {
    if (b >= 0)
        m->o->add_bias(m->o, proj, W(m, b), m->B * m->T, m->cfg.d_model, m->cfg.d_model);
}

static void resid_bias_grad(model *m, ops_ptr d, int b) {
    if (b >= 0 && m->grads)
        m->o->bias_grad(m->o, G(m, b), d, m->B * m->T, m->cfg.d_model, m->cfg.d_model);
}

static void layer_fwd(model *m, int l) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    ops_ptr x = resid_of(m, l), out = resid_of(m, l + 1), proj = P0(m->acts->proj);
    size_t nd = (size_t)m->B * m->T * m->cfg.d_model;
    layernorm_fwd(m, P0(A->ln1), A->ln1_mean, A->ln1_rstd, x, L->ln1_w, L->ln1_b);
    attention_fwd(m, l, P0(A->ln1));
    linear_fwd(m, proj, P0(A->att), L->o_w, -1, 0.0f);
    if (m->cfg.parallel_residual) {
        /* GPT-J: x + attn(ln_1 x) + mlp(ln_1 x), both branches from the same normed input. */
        mlp_fwd(m, l, P0(A->ln1), proj, 1.0f);
        tp_sum_outputs(m, proj); /* the one all-reduce of a parallel-residual layer */
        add_resid_bias(m, proj, L->o_b);
        add_resid_bias(m, proj, L->out_b);
        m->o->add(m->o, out, x, proj, nd);
    } else {
        tp_sum_outputs(m, proj);
        add_resid_bias(m, proj, L->o_b);
        m->o->add(m->o, P0(A->mid), x, proj, nd);
        layernorm_fwd(m, P0(A->ln2), A->ln2_mean, A->ln2_rstd, P0(A->mid), L->ln2_w, L->ln2_b);
        mlp_fwd(m, l, P0(A->ln2), proj, 0.0f);
        tp_sum_outputs(m, proj);
        add_resid_bias(m, proj, L->out_b);
        m->o->add(m->o, out, P0(A->mid), proj, nd);
    }
}

/* On entry d_resid = dL/d resid[l+1]; on exit dL/d resid[l]. */
static void layer_bwd(model *m, int l) {
    const layer_params *L = &m->table.layer[l];
    layer_acts *A = acts_of(m, l);
    model_acts *a = m->acts;
    ops_ptr dr = P0(a->d_resid), d_ln = P0(a->d_ln), x = resid_of(m, l);
    if (m->cfg.parallel_residual) {
        resid_bias_grad(m, dr, L->out_b);
        resid_bias_grad(m, dr, L->o_b);
        mlp_bwd(m, l, dr, P0(A->ln1), d_ln, 0.0f);
        attention_bwd(m, l, dr, P0(A->ln1), d_ln, 1.0f);
        tp_sum_input_grads(m, d_ln); /* the one backward all-reduce of a parallel-residual layer */
        layernorm_bwd(m, dr, d_ln, x, A->ln1_mean, A->ln1_rstd, L->ln1_w, L->ln1_b);
    } else {
        resid_bias_grad(m, dr, L->out_b);
        mlp_bwd(m, l, dr, P0(A->ln2), d_ln, 0.0f);
        tp_sum_input_grads(m, d_ln);
        layernorm_bwd(m, dr, d_ln, P0(A->mid), A->ln2_mean, A->ln2_rstd, L->ln2_w, L->ln2_b);
        resid_bias_grad(m, dr, L->o_b);
        attention_bwd(m, l, dr, P0(A->ln1), d_ln, 0.0f);
        tp_sum_input_grads(m, d_ln);
        layernorm_bwd(m, dr, d_ln, x, A->ln1_mean, A->ln1_rstd, L->ln1_w, L->ln1_b);
    }
}

static ops_ce_shape ce_shape(model *m) {
    const param_info *h = &m->table.p[m->table.head_w];
    long local_loss_cols = m->cfg.loss_vocab - h->row_start;
    if (local_loss_cols < 0)
        local_loss_cols = 0;
    if (local_loss_cols > h->local_shape[0])
        local_loss_cols = h->local_shape[0];
    return (ops_ce_shape){.N = m->acts->n_counted,
                          .ld = (int)h->local_shape[0],
                          .ncols = (int)local_loss_cols,
                          .col_start = (int)h->row_start};
}

/* logits [n, Vl] = x [n rows of stride ldx] times this rank's vocabulary rows of the head (SPEC 4.4). */
static void head_fwd(model *m, ops_ptr x, int ldx, int n) {
    int h = m->table.head_w, rows = (int)local_rows(m, h), d = m->cfg.d_model;
    ops_ptr logits = P0(m->acts->logits);
    m->o->matmul(m->o, 0, 1, n, rows, d, 1.0f, x, ldx, W(m, h), d, 0.0f, logits, rows);
    if (m->table.head_b >= 0)
        m->o->add_bias(m->o, logits, W(m, m->table.head_b), n, rows, rows);
}

/* Its backward from the logits' gradient: dW += dlogits^T x and db += colsum(dlogits) (not for a frozen
 * base), dx [n, d] = dlogits W, summed over the tp group (the head is split by output). */
static void head_bwd(model *m, ops_ptr dx, ops_ptr x, int n) {
    int h = m->table.head_w, rows = (int)local_rows(m, h), d = m->cfg.d_model;
    ops_ptr dy = P0(m->acts->logits);
    if (m->grads) {
        m->o->matmul(m->o, 1, 0, rows, d, n, 1.0f, dy, rows, x, d, 1.0f, G(m, h), d);
        if (m->table.head_b >= 0)
            m->o->bias_grad(m->o, G(m, m->table.head_b), dy, n, rows, rows);
    }
    m->o->matmul(m->o, 0, 0, n, d, rows, 1.0f, dy, rows, W(m, h), d, 0.0f, dx, d);
    tp_allreduce(m, LAYOUT_SUM, dx, (size_t)n * d);
}

/* Inputs of every position; targets and weights of the counted rows only (those of nonzero weight, in
 * order), with the rows' places for the head's gather and scatter. */
static void load_batch(model *m, const int32_t *tokens, const float *weights) {
    model_acts *a = m->acts;
    int B = m->B, T = m->T, n = 0;
    int32_t *ids = a->host_ids, *tg = a->host_targets, *rows = a->host_rows, *slot = a->host_slot;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int i = b * T + t;
            ids[i] = tokens[(size_t)b * (T + 1) + t];
            slot[i] = weights[i] != 0 ? n : -1;
            if (weights[i] != 0) {
                rows[n] = i;
                tg[n] = tokens[(size_t)b * (T + 1) + t + 1];
                a->host_weights[n++] = weights[i];
            }
        }
    a->n_counted = n;
    m->o->from_host(m->o, P0(a->ids), ids, (size_t)B * T);
    m->o->from_host(m->o, P0(a->targets), tg, (size_t)n);
    m->o->from_host(m->o, P0(a->weights), a->host_weights, (size_t)n);
    if (n < B * T) {
        m->o->from_host(m->o, P0(a->head_rows), rows, (size_t)n);
        m->o->from_host(m->o, P0(a->head_slot), slot, (size_t)B * T);
    }
}

/* The working copy follows the master weights, whatever changed them (an optimizer step, a checkpoint
 * load); with fp32 working precision it is the master buffer itself. */
static void sync_work(model *m) {
    if (m->work != m->params)
        m->o->cast(m->o, P0(m->work), P0(m->params), m->flat_n);
    if (m->lora)
        lora_sync_work(m->o, m->lora);
}

/* The B x T ids already on the device, at positions pos .. pos + T - 1, through the embedding, every layer
 * and the final LayerNorm: lnf holds the normed last hidden states. */
static void trunk_fwd(model *m) {
    const model_config *c = &m->cfg;
    model_acts *a = m->acts;
    ops *o = m->o;
    const param_info *wte = &m->table.p[m->table.wte];
    ops_ptr x = resid_of(m, 0);
    o->embed_fwd(o, x, P0(a->ids), W(m, m->table.wte), m->B * m->T, c->d_model, (int)wte->row_start,
                 (int)wte->local_shape[0]);
    tp_sum_outputs(m, x); /* vocabulary-split lookup: the owning rank contributes the row */
    if (m->table.wpe >= 0)
        o->pos_fwd(o, x, ops_at(W(m, m->table.wpe), (size_t)m->pos * c->d_model), m->B, m->T, c->d_model);
    for (int l = 0; l < c->n_layer; l++)
        layer_fwd(m, l);
    layernorm_fwd(m, P0(a->lnf), a->lnf_mean, a->lnf_rstd, resid_of(m, c->n_layer), m->table.lnf_w,
                  m->table.lnf_b);
}

/* Whether some rows do not count: the head then runs on the gathered counted rows. */
static int head_gathers(const model *m) { return m->acts->n_counted < m->B * m->T; }

double model_forward(model *m, const int32_t *tokens, const float *weights, double *weight_sum) {
    model_acts *a = m->acts;
    ops *o = m->o;
    int N = m->B * m->T, d = m->cfg.d_model;
    load_batch(m, tokens, weights);
    sync_work(m);
    double wsum = 0;
    for (int i = 0; i < N; i++)
        wsum += weights[i];
    *weight_sum = wsum;
    int n = a->n_counted;
    if (n == 0) /* nothing counts: no loss, no gradient (model_backward does nothing) */
        return 0;

    trunk_fwd(m);
    ops_ptr x = P0(a->lnf);
    if (head_gathers(m)) { /* a row gather is an embedding lookup with the rows as the table */
        x = P0(a->head_x);
        o->embed_fwd(o, x, P0(a->head_rows), P0(a->lnf), n, d, 0, N);
    }
    head_fwd(m, x, d, n);
    ops_ce_shape s = ce_shape(m);
    /* SPEC 4.4: global row max, then the sums of exp and the target logit over the vocabulary shards. */
    ops_ptr sumexp = P0(a->ce_stats), tgt = ops_at(P0(a->ce_stats), (size_t)n);
    o->ce_rowmax(o, P0(a->rowmax), P0(a->logits), &s);
    tp_allreduce(m, LAYOUT_MAX, P0(a->rowmax), (size_t)n);
    o->ce_sumexp(o, sumexp, tgt, P0(a->logits), P0(a->rowmax), P0(a->targets), &s);
    tp_allreduce(m, LAYOUT_SUM, P0(a->ce_stats), 2 * (size_t)n);
    o->ce_loss(o, P0(a->loss), P0(a->rowmax), sumexp, tgt, m->z_loss, n);
    return o->dot(o, P0(a->loss), P0(a->weights), (size_t)n);
}

int model_counted_rows(const model *m) { return m->acts->n_counted; }

void model_backward(model *m) {
    const model_config *c = &m->cfg;
    model_acts *a = m->acts;
    ops *o = m->o;
    int N = m->B * m->T, n = a->n_counted, d = c->d_model;
    if (n == 0)
        return;
    ops_ce_shape s = ce_shape(m);
    o->ce_bwd(o, P0(a->logits), P0(a->rowmax), P0(a->ce_stats), P0(a->targets), P0(a->weights), m->z_loss,
              &s);
    if (head_gathers(m)) { /* the counted rows' gradients (in d_resid, free until below), scattered */
        head_bwd(m, P0(a->d_resid), P0(a->head_x), n);
        o->embed_fwd(o, P0(a->d_ln), P0(a->head_slot), P0(a->d_resid), N, d, 0, n);
    } else {
        head_bwd(m, P0(a->d_ln), P0(a->lnf), N);
    }
    o->zero(o, P0(a->d_resid), (size_t)N * d);
    layernorm_bwd(m, P0(a->d_resid), P0(a->d_ln), resid_of(m, c->n_layer), a->lnf_mean, a->lnf_rstd,
                  m->table.lnf_w, m->table.lnf_b);
    for (int l = c->n_layer - 1; l >= 0; l--) {
        /* The shared buffers still hold the last layer's forward; every other layer reruns its forward
         * from its kept input resid[l] (rewriting resid[l + 1] with the same bits). */
        if (m->recompute && l < c->n_layer - 1)
            layer_fwd(m, l);
        layer_bwd(m, l);
    }
    if (!m->grads) /* a frozen base: the embeddings have nothing to learn */
        return;
    const param_info *wte = &m->table.p[m->table.wte];
    o->embed_bwd(o, G(m, m->table.wte), P0(a->ids), P0(a->d_resid), N, c->d_model, (int)wte->row_start,
                 (int)wte->local_shape[0]);
    if (m->table.wpe >= 0)
        o->pos_bwd(o, G(m, m->table.wpe), P0(a->d_resid), m->B, m->T, c->d_model);
}

void param_set_get_tensor(ops *o, const param_set *ps, ops_buf *flat, int index, float *out) {
    const param_info *p = &ps->table->p[index];
    size_t n = (size_t)(p->valid_rows * p->local_shape[1]); /* rows beyond the global shape are padding */
    o->to_host(o, out, (ops_ptr){flat, p->offset}, n);
}

void param_set_set_tensor(ops *o, const param_set *ps, ops_buf *flat, int index, const float *in) {
    const param_info *p = &ps->table->p[index];
    size_t n = (size_t)(p->valid_rows * p->local_shape[1]);
    o->from_host(o, (ops_ptr){flat, p->offset}, in, n);
}

void model_get_tensor(model *m, ops_buf *flat, int index, float *out) {
    param_set ps = model_base(m);
    param_set_get_tensor(m->o, &ps, flat, index, out);
}

void model_set_tensor(model *m, ops_buf *flat, int index, const float *in) {
    param_set ps = model_base(m);
    param_set_set_tensor(m->o, &ps, flat, index, in);
}

int model_get_logits(model *m, float *out) {
    const param_info *h = &m->table.p[m->table.head_w];
    size_t n = (size_t)m->acts->n_counted, ld = (size_t)h->local_shape[0], V = (size_t)h->valid_rows;
    float *all = mt_malloc(n * ld * sizeof *all);
    m->o->to_host(m->o, all, P0(m->acts->logits), n * ld);
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * V, all + i * ld, V * sizeof *out);
    free(all);
    return (int)n;
}

/* ---------------------------------------------------------------------------------------------- inference */

void model_infer_ready(model *m) {
    CHECK(m->kv, "model_infer_ready on a training model");
    sync_work(m);
    if (m->work != m->params) { /* the kernels read only the working copy from here on */
        m->o->free(m->o, m->params);
        m->params = NULL;
    }
}

/* logits [B, Vl] = the normed hidden state of each sequence's last position (row stride T x d) times the
 * head. */
static void head_last(model *m) {
    head_fwd(m, ops_at(P0(m->acts->lnf), (size_t)(m->T - 1) * m->cfg.d_model), m->T * m->cfg.d_model, m->B);
}

/* One inference pass of T positions per sequence starting at position pos. */
static void infer_pass(model *m, const int32_t *ids, int T, int pos) {
    CHECK(m->kv && T >= 1 && pos + T <= m->T_max, "inference pass of %d positions at %d (capacity %d)", T,
          pos, m->T_max);
    m->T = T;
    m->pos = pos;
    m->o->from_host(m->o, P0(m->acts->ids), ids, (size_t)m->B * T);
    trunk_fwd(m);
    head_last(m);
}

void model_prefill(model *m, const int32_t *ids, int t) { infer_pass(m, ids, t, 0); }

void model_decode(model *m, const int32_t *ids) { infer_pass(m, ids, 1, m->pos + m->T); }

int model_next_position(const model *m) { return m->pos + m->T; }

void model_get_last_logits(model *m, float *out, int n) {
    size_t ld = local_rows(m, m->table.head_w);
    CHECK(n >= 0 && (size_t)n <= ld, "%d logit columns of %zu", n, ld);
    for (int b = 0; b < m->B; b++)
        m->o->to_host(m->o, out + (size_t)b * n, (ops_ptr){m->acts->logits, (size_t)b * ld}, (size_t)n);
}

double model_head_flops(const param_table *t) {
    return 6.0 * (double)t->p[t->head_w].shape[0] * (double)t->p[t->head_w].shape[1];
}

double model_flops_per_token(const model_config *c, const param_table *t, int T) {
    double n_matmul = 0;
    for (int i = 0; i < t->n; i++)
        if (t->p[i].ndim == 2 && i != t->wpe && (i != t->wte || c->tie_embeddings))
            n_matmul += (double)t->p[i].shape[0] * (double)t->p[i].shape[1];
    double attn = 0;
    for (int l = 0; l < c->n_layer; l++) {
        int t_eff = model_layer_is_local(c, l) && c->local_window < T ? c->local_window : T;
        attn += 12.0 * c->d_model * t_eff;
    }
    return 6.0 * n_matmul + attn;
}
