/* LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models"): a frozen weight W [out, in]
 * of a target projection gets a trainable low-rank update, y = x W^T + (alpha / rank) (x A^T) B^T, with
 * A [rank, in] drawn from U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform_(a = sqrt(5))) and B [out, rank]
 * zero, so training starts from the base model exactly.
 *
 * The adapters are their own small parameter set (a param_table with flat parameter, working-copy and
 * gradient buffers); the model calls lora_fwd / lora_bwd from its linear layers. Under tensor parallelism
 * each adapter is split like the layer it adapts, so its activations need no collective of their own:
 *  - column-parallel layers (q, k, v, fc_in; split by output): B is split by rows like W, A is replicated;
 *    h = x A^T is the same on every rank, and dx's partial sum joins the layer's own all-reduce of dx.
 *  - row-parallel layers (out_proj, fc_out; split by input): A is split by columns like W, B is replicated;
 *    each rank adds its partial (x_r A_r^T) B^T to its partial output, which the layer's all-reduce sums.
 * The replicated factor's gradient (dA of a column-parallel layer, dB of a row-parallel one) is then a
 * partial sum per tp rank: those tensors come first in the adapter table, and the training step sums
 * [0, tp_partial_n) of the adapter gradient over the tp group once per step (r x d floats per adapter). */
#ifndef MT_LORA_H
#define MT_LORA_H

#include "model/ops.h"
#include "model/params.h"

typedef enum { LORA_Q, LORA_K, LORA_V, LORA_OUT, LORA_FC_IN, LORA_FC_OUT, LORA_N_TARGETS } lora_target;

/* The config names of the targets: q_proj, k_proj, v_proj, out_proj, fc_in, fc_out. */
extern const char *const LORA_TARGET_NAMES[LORA_N_TARGETS];

typedef struct {
    int rank; /* 0: no LoRA (full fine-tuning) */
    double alpha;
    unsigned targets; /* bit t set: target t is adapted in every layer */
    double dropout;   /* probability of zeroing an element of an adapter's input x in training, in [0, 1) */
} lora_config;

/* The index of a target name, or -1. */
int lora_target_find(const char *name);

/* Why lc cannot adapt this model (rank above the smaller side of a target layer, no targets), or NULL. */
const char *lora_problem(const model_config *c, const lora_config *lc, char *buf, size_t cap);

/* One adapted weight. */
typedef struct {
    int base; /* index of W in the model's table */
    int a, b; /* A [rank, in] and B [out, rank] in the adapter table */
    int layer;
} lora_adapter;

typedef struct {
    lora_config cfg;
    float scale; /* alpha / rank */
    param_table table;
    size_t flat_n; /* flat buffer length: table.total rounded up to a multiple of the layout's flat_align */
    size_t tp_partial_n;            /* gradients of [0, tp_partial_n) are partial sums over the tp group */
    ops_buf *params, *work, *grads; /* work: the working-precision copy (params itself in fp32) */
    int n, per_layer;
    lora_adapter *ad;
    int *of_base; /* [base table size]: adapter of a base weight, or -1 */
    int n_sets;   /* sets of h buffers: n_layer, or 1 when the layers share activations */
    ops_buf **h;  /* [n_sets * per_layer] x A^T of each adapter, [rows, rank] */
    ops_buf *dh;  /* backward scratch [rows, rank]; NULL in inference */
    /* Dropout (training with cfg.dropout > 0): the dropped inputs [rows, in] of each adapter, a scratch for
     * the dropped part of dx, and the draw of the current pass (lora_dropout_pass). */
    ops_buf **xd, *dxd;
    uint64_t seed, pass_key;
    int dropping;
    uint32_t threshold;
} lora_set;

/* The adapter table of lc for tp rank tp_rank of tp on the model whose table is base: the adapters (layer
 * by layer, targets in LORA_N_TARGETS order; *n_out of them, malloc'd) with their factors' indices in t, and
 * in *tp_partial_n the flat length of the factors replicated over tp, which come first. */
lora_adapter *lora_table_build(param_table *t, int *n_out, size_t *tp_partial_n, const param_table *base,
                               const model_config *c, const lora_config *lc, int tp, int tp_rank);

/* The adapters of lc for this rank's shard of the model whose table is base, with activations for `rows`
 * positions per pass in n_sets sets, flat buffers padded to a multiple of flat_align; training adds gradients
 * and the backward scratch. */
lora_set *lora_create(ops *o, const param_table *base, const model_config *c, const lora_config *lc, int tp,
                      int tp_rank, size_t flat_align, size_t rows, int n_sets, int training);
void lora_free(ops *o, lora_set *l);

/* A random and B zero (a pure function of seed, tensor name and global index, like param_init_tensor);
 * seed also keys the dropout masks. */
void lora_init(ops *o, lora_set *l, const model_config *c, uint64_t seed);

/* Dropout on (training passes: those with a backward) for micro-batch `micro` of optimizer step `step`:
 * adapter k's mask is mt_dropout_keep with key mix64(pass_key ^ mix64(k)), pass_key = mix64(seed ^
 * mix64(step * 2^32 + micro)), over the [rows, in] input of the adapted layer (rows: this micro-batch's; in:
 * the layer's whole input, so tp ranks draw the masks of one process; dp ranks hold other rows, so under
 * dp the masks differ from one process's, as in any data-parallel trainer). No effect when cfg.dropout = 0.
 */
void lora_dropout_pass(lora_set *l, long step, int micro);
/* Dropout off (evaluation, inference): the default. */
void lora_dropout_off(lora_set *l);

/* The working copy follows the fp32 adapters. */
void lora_sync_work(ops *o, lora_set *l);

/* y [rows, out] += scale (x A^T) B^T for adapter k, keeping x A^T (in its layer's set) for the backward. */
void lora_fwd(ops *o, lora_set *l, int k, ops_ptr y, ops_ptr x, int rows);

/* dB += scale dy^T h, dA += (scale dy B)^T x, dx += (scale dy B) A (dx accumulated: the layer's own dx is
 * written first). */
void lora_bwd(ops *o, lora_set *l, int k, ops_ptr dx, ops_ptr dy, ops_ptr x, int rows);

#endif
