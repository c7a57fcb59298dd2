/* AdamW with decoupled weight decay, learning-rate schedules and global-norm clipping (SPEC 1.5, 9). */
#ifndef MT_OPTIM_H
#define MT_OPTIM_H

#include "model/model.h"
#include "parallel/comm.h"

typedef struct {
    double lr, end_lr;
    long warmup_steps, anneal_steps;
    int cosine; /* 0: constant lr */
    double weight_decay, beta1, beta2, eps, clip;
} optim_config;

/* The range of the flat buffers of the trainable parameters (model_trainable: the model's, or its LoRA
 * adapters') this rank updates: all of it, or with ZeRO-1 (DESIGN 5) its 1/dp slice, for which alone it
 * keeps the Adam moments. */
typedef struct {
    comm_ctx *comm; /* the job's groups; NULL: one process */
    int zero;
    size_t lo, hi;
    ops_buf *m, *v;      /* Adam moments of [lo, hi) */
    ops_buf *grad_slice; /* ZeRO-1: the reduce-scattered gradient of [lo, hi) */
} optim_state;

/* lr of update `step` (0 for the first update). */
double optim_lr(const optim_config *c, long step);

/* c: the groups m was laid out on (NULL: one process). zero: shard the optimizer over the data-parallel
 * group (parallel/zero.h; needs dp > 1 to mean anything). */
void optim_state_init(optim_state *s, model *m, comm_ctx *c, int zero);
void optim_state_free(optim_state *s, model *m);

/* The gradient of [lo, hi) this rank updates: the reduce-scattered slice with ZeRO-1, else m->grads. */
ops_ptr optim_grad(const optim_state *s, model *m);

/* Sum of squares of this rank's share of the true global gradient: its range, with tensors replicated
 * over tp counted on tp rank 0 only (SPEC 9: each tensor once). The caller sums it over the groups. */
double optim_grad_sumsq(const optim_state *s, model *m);

/* One AdamW update of [lo, hi) with gradient optim_grad() * grad_scale (grad_scale folds in the
 * 1/sum(weight) of the objective and the clip factor); `step` counts from 0. */
void optim_apply(optim_state *s, model *m, const optim_config *c, long step, double grad_scale);

/* The clip factor min(1, clip / norm) for a gradient norm (1 when clipping is off). */
double optim_clip_factor(const optim_config *c, double norm);

#endif
