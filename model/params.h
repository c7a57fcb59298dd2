/* The parameter table (DESIGN 3): the single list of every tensor, its global shape, decay flag and
 * tensor-parallel rule. Init, sharding, checkpoints, conversion, ZeRO and weight decay all read it. */
#ifndef MT_PARAMS_H
#define MT_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

/* Replicated tensors (LayerNorms, wpe, biases of input-split layers) get complete, identical gradients on
 * every tp rank: the model all-reduces the gradient of every replicated activation that feeds split
 * layers before the LayerNorm backward, so no parameter gradient needs a sum over tp. */
typedef enum {
    TP_REPLICATED, /* the same on every tp rank */
    /* Megatron-LM's column-parallel linear layer (Mesh Transformer JAX's output-sharded one): split by output
     * feature, rows of the [out, in] weight: q/k/v, fc_in, their biases. */
    TP_SPLIT_OUTPUT,
    /* Megatron-LM's row-parallel linear layer: split by input feature, columns of [out, in]: out_proj,
     * fc_out. Its partial outputs are summed over the tp group (model.c: tp_sum_outputs). */
    TP_SPLIT_INPUT,
    TP_VOCAB, /* vocabulary rows, padded to a multiple of lcm(128, tp): wte, lm_head */
} tp_rule;

/* INIT_FAN_IN_UNIFORM: U(-1/sqrt(in), 1/sqrt(in)) for a [out, in] matrix, which is PyTorch's default
 * kaiming_uniform_(a = sqrt(5)) for nn.Linear and PEFT's initialization of LoRA's A. */
typedef enum { INIT_NORMAL, INIT_NORMAL_RESID, INIT_ONES, INIT_ZEROS, INIT_FAN_IN_UNIFORM } init_kind;

typedef struct {
    char name[64];
    int ndim;
    long shape[2];       /* global shape as stored in checkpoints (vocab rows = vocab_size) */
    long local_shape[2]; /* this rank's shard in memory (vocab rows padded, then split) */
    long row_start;      /* first global row (TP_SPLIT_OUTPUT, TP_VOCAB) held by this rank */
    long valid_rows;     /* local rows inside the global shape (fewer than local_shape[0] in padding) */
    long col_start;      /* first global column (TP_SPLIT_INPUT) */
    size_t offset;       /* element offset in the flat buffers, 16-element (64-byte) aligned */
    size_t numel;        /* local element count */
    int decay;           /* weight decay applies (2+ dimensions) */
    tp_rule rule;
    init_kind init;
} param_info;

/* Indices of the tensors used by one layer (-1 when absent). */
typedef struct {
    int ln1_w, ln1_b, ln2_w, ln2_b;
    int q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b;
    int fc_w, fc_b, out_w, out_b;
} layer_params;

typedef struct {
    int n;
    param_info *p;
    size_t total; /* flat buffer length in elements */
    long padded_vocab;
    int wte, wpe, lnf_w, lnf_b, head_w, head_b; /* head_w == wte when tied */
    layer_params *layer;
} param_table;

/* Builds the table of a model for tensor-parallel rank tp_rank of tp. */
void param_table_build(param_table *t, const model_config *c, int tp, int tp_rank);
void param_table_free(param_table *t);

/* Appends tensor `name` of global shape [rows, cols] (cols = 1 when ndim is 1) to a table allocated for cap
 * entries, sharded by `rule` for tp rank tp_rank of tp; returns its index. Used by param_table_build and by
 * the LoRA adapters' own table (model/lora.c). */
int param_table_add(param_table *t, int cap, const char *name, int ndim, long rows, long cols, tp_rule rule,
                    init_kind init, int tp, int tp_rank);

/* The HF-layout parameter count (global shapes; what `params:` prints). */
long param_count(const param_table *t);

/* Fills a host copy of this rank's shard of tensor i (numel floats): a pure function of (seed, name,
 * global index), so every world layout starts from the same weights; padded rows are zero. */
void param_init_tensor(const param_table *t, const model_config *c, uint64_t seed, int i, float *out);

int param_find(const param_table *t, const char *name);

#endif
