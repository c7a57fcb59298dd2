/* The decoder, written once against the ops interface (DESIGN 3): forward, backward and the
 * token-weighted cross-entropy of SPEC 9. */
#ifndef MT_MODEL_H
#define MT_MODEL_H

#include "ops.h"
#include "parallel/comm.h"
#include "params.h"

typedef struct model_acts model_acts;

typedef struct {
    model_config cfg;
    param_table table;
    ops *o;
    int B, T;        /* micro-batch and sequence length the activations are sized for */
    comm_ctx *comm;  /* NULL: a single process */
    size_t flat_n;   /* flat buffer length: table.total rounded up to a multiple of 16 * dp */
    ops_buf *params; /* flat parameters (fp32 master weights) */
    ops_buf *work;   /* the weights in the backend's working precision; params itself when that is fp32 */
    ops_buf *grads;  /* flat gradients, accumulated over micro-batches */
    float z_loss;    /* z * logsumexp^2 per counted token (SPEC 9); 0 by default */
    int recompute;   /* one set of layer activations, each layer's forward rerun in the backward */
    model_acts *acts;
} model;

/* Allocates parameters, gradients and every activation for micro-batches of B x T, once, for this rank's
 * tensor-parallel shard of comm's layout (SPEC 4.2, 8). With recompute, the layers share one set of
 * activation buffers and the backward reruns each layer's forward (with its all-reduces) from the layer's
 * input, which is kept: memory for one layer's activations instead of n_layer, for about a third more
 * compute. The results are bit-identical either way. */
model *model_create_sharded(const model_config *cfg, ops *o, int B, int T, comm_ctx *comm, int recompute);
/* A single process, no recompute. */
model *model_create(const model_config *cfg, ops *o, int B, int T);

/* Why the layout cannot shard this model (tp must divide the heads and d_ff), or NULL. */
const char *model_tp_problem(const model_config *cfg, int tp, char *buf, size_t cap);

void model_free(model *m);

/* Initializes the parameters (param_init) on the backend. */
void model_init_params(model *m, uint64_t seed);

/* tokens: [B, T+1] (inputs [:, :T], targets [:, 1:]), weights: [B, T] loss weight of each prediction.
 * Runs the forward and returns sum(weight * CE) over the micro-batch; *weight_sum gets sum(weight). */
double model_forward(model *m, const int32_t *tokens, const float *weights, double *weight_sum);

/* Backward of the last forward: accumulates d sum(weight * CE) / d params into m->grads. */
void model_backward(model *m);

void model_zero_grads(model *m);

/* Host copies of this rank's shard of one parameter (or gradient): its valid_rows x local_shape[1] block
 * (padded rows dropped); with one process, the whole tensor in its global shape. */
void model_get_tensor(model *m, ops_buf *flat, int index, float *out);
void model_set_tensor(model *m, ops_buf *flat, int index, const float *in);

/* Host copy of the last forward's logits: [B*T, valid columns of this rank] (padding dropped). */
void model_get_logits(model *m, float *out);

/* Model FLOPs per token (DESIGN 10): 6 N_matmul + 12 sum_layers d T_eff. */
double model_flops_per_token(const model_config *c, const param_table *t, int T);

#endif
