/* The decoder, written once against the ops interface (DESIGN 3): forward, backward and the
 * token-weighted cross-entropy of SPEC 9; and inference with a key/value cache on the same layers. */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include "model/layout.h"
#include "model/lora.h"
#include "model/ops.h"
#include "model/params.h"

typedef struct model_acts model_acts;
typedef struct model_kv model_kv;

typedef struct {
    model_config cfg;
    param_table table;
    ops *o;
    int B, T;            /* a pass: B sequences of T positions (training: the micro-batch, fixed) */
    int T_max;           /* positions per sequence the activations are sized for (training: T) */
    int pos;             /* position of a pass's first row: 0 except in inference's decoding steps */
    model_layout layout; /* this rank's place in the job (model/layout.h) */
    size_t flat_n;       /* flat buffer length: table.total rounded up to a multiple of layout.flat_align */
    ops_buf *params;     /* flat parameters (fp32 master weights) */
    ops_buf *work;       /* the weights in the backend's working precision; params itself when that is fp32 */
    ops_buf *grads; /* flat gradients, accumulated over micro-batches; NULL in inference and under LoRA */
    lora_set *lora; /* LoRA adapters (the trainable parameters; the base is frozen), or NULL */
    ops_buf *sink;  /* under LoRA: where the LayerNorm backward puts the frozen gains' gradients [2 d] */
    float z_loss;   /* z * logsumexp^2 per counted token (SPEC 9); 0 by default */
    int recompute;  /* one set of layer activations, each layer's forward rerun in the backward */
    model_acts *acts;
    model_kv *kv; /* inference: the key/value cache (model/kv_cache.h); NULL in training */
} model;

/* Allocates parameters, gradients and every activation for micro-batches of B x T, once, for this rank's
 * tensor-parallel shard of the layout L (SPEC 4.2, 8; NULL: one process). With recompute, the layers share
 * one set of activation buffers and the backward reruns each layer's forward (with its all-reduces) from the
 * layer's input, which is kept: memory for one layer's activations instead of n_layer, for about a third more
 * compute. The results are bit-identical either way. */
model *model_create_sharded(const model_config *cfg, ops *o, int B, int T, const model_layout *L,
                            int recompute);
/* A single process, no recompute. */
model *model_create(const model_config *cfg, ops *o, int B, int T);
/* model_create_sharded with LoRA adapters (lc->rank > 0) on a frozen base: no base gradients are allocated
 * and the backward computes only what the adapters need (lc NULL or rank 0: full training). The adapters
 * are zero until lora_init or a checkpoint sets them. */
model *model_create_lora(const model_config *cfg, const lora_config *lc, ops *o, int B, int T,
                         const model_layout *L, int recompute);

/* The parameters an optimizer updates and a checkpoint of the run holds: the model's own, or under LoRA
 * the adapters. Gradients of [0, tp_partial_n) are partial sums over the tp group (lora.h). */
typedef struct {
    const param_table *table;
    ops_buf *params, *grads;
    size_t flat_n, tp_partial_n;
} param_set;
param_set model_trainable(const model *m);
/* The model's own parameters (grads NULL under LoRA). */
param_set model_base(const model *m);

/* Why the layout cannot shard this model (tp must divide the heads and d_ff), or NULL. */
const char *model_tp_problem(const model_config *cfg, int tp, char *buf, size_t cap);

void model_free(model *m);

/* Initializes the parameters (param_init) on the backend. */
void model_init_params(model *m, uint64_t seed);

/* tokens: [B, T+1] (inputs [:, :T], targets [:, 1:]), weights: [B, T] loss weight of each prediction.
 * Runs the forward and returns sum(weight * CE) over the micro-batch; *weight_sum gets sum(weight). The
 * head and the cross-entropy run only on the rows the loss counts (weight != 0): fine-tuning on responses
 * skips most of the head's cost. */
double model_forward(model *m, const int32_t *tokens, const float *weights, double *weight_sum);
/* The rows the last forward counted (its weights' nonzeros). */
int model_counted_rows(const model *m);

/* Backward of the last forward: accumulates d sum(weight * CE) / d params into m->grads. */
void model_backward(model *m);

void model_zero_grads(model *m);

/* LoRA's dropout in the passes that follow: those of micro-batch `micro` of optimizer step `step`
 * (lora_dropout_pass), or none when micro < 0 (evaluation: the default). Nothing without LoRA. */
void model_dropout(model *m, long step, int micro);

/* Host copies of this rank's shard of one parameter (or gradient): its valid_rows x local_shape[1] block
 * (padded rows dropped); with one process, the whole tensor in its global shape. */
void model_get_tensor(model *m, ops_buf *flat, int index, float *out);
void model_set_tensor(model *m, ops_buf *flat, int index, const float *in);
/* The same for tensor `index` of a parameter set's table (the adapters: model_trainable). */
void param_set_get_tensor(ops *o, const param_set *ps, ops_buf *flat, int index, float *out);
void param_set_set_tensor(ops *o, const param_set *ps, ops_buf *flat, int index, const float *in);

/* Host copy of the last forward's logits, which exist for the counted rows only: [n, valid columns of this
 * rank] (padding dropped) for its n counted rows in order; returns n. */
int model_get_logits(model *m, float *out);

/* Inference (bin/generate): this rank's parameters and the forward's buffers for B sequences of up to
 * T_max positions, with a key/value cache sized once (n_layer x [B, heads of this rank, slots, head_dim]
 * for keys and for values; slots = T_max for a global layer and min(local_window, T_max) for a local
 * one); no gradients and no backward buffers. The passes run the training forward's layers (layer_fwd),
 * so prefill is the training forward over the prompt; a decoding step differs only in its attention
 * (ops.attention_step over the cache) and in positions (rotary at the absolute position, wpe row pos).
 * Nothing is allocated per pass. */
model *model_create_infer(const model_config *cfg, ops *o, int B, int T_max, const model_layout *L);
/* The same with LoRA adapters applied (lc NULL or rank 0: none); set them through ckpt_load. */
model *model_create_infer_lora(const model_config *cfg, const lora_config *lc, ops *o, int B, int T_max,
                               const model_layout *L);

/* Once the parameters are set (ckpt_load, model_init_params, model_set_tensor): the working-precision copy
 * the kernels read. Where that copy is not the fp32 buffer (CUDA), the fp32 parameters are released
 * (m->params = NULL): inference never reads them again. */
void model_infer_ready(model *m);

/* Starts B new sequences: ids [B, t] (t <= T_max) at positions 0 .. t-1 in one pass, which fills the cache
 * and leaves the logits of each sequence's position t-1. */
void model_prefill(model *m, const int32_t *ids, int t);
/* One more token per sequence (ids [B]) at the next position (model_next_position, < T_max); leaves the
 * logits there. */
void model_decode(model *m, const int32_t *ids);
int model_next_position(const model *m);
/* Host copy of the first n of this rank's logit columns (global columns row_start of the head onward) of
 * each sequence after model_prefill / model_decode: out [B, n]. */
void model_get_last_logits(model *m, float *out, int n);

/* Model FLOPs per token (DESIGN 10): 6 N_matmul + 12 sum_layers d T_eff, when the loss counts every
 * token; model_head_flops of that is the head's, spent only on the rows the loss counts. */
double model_flops_per_token(const model_config *c, const param_table *t, int T);
double model_head_flops(const param_table *t);

#endif
