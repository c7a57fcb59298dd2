/* AdamW with decoupled weight decay, learning-rate schedules and global-norm clipping (SPEC 1.5, 9). */
#ifndef MT_OPTIM_H
#define MT_OPTIM_H

#include "model/model.h"

typedef struct {
    double lr, end_lr;
    long warmup_steps, anneal_steps;
    int cosine; /* 0: constant lr */
    double weight_decay, beta1, beta2, eps, clip;
} optim_config;

typedef struct {
    ops_buf *m, *v; /* Adam moments, laid out like the flat parameters */
} optim_state;

/* lr of update `step` (0 for the first update). */
double optim_lr(const optim_config *c, long step);

void optim_state_init(optim_state *s, model *m);
void optim_state_free(optim_state *s, model *m);

/* One AdamW update of every parameter with gradient m->grads * grad_scale (grad_scale folds in the
 * 1/sum(weight) of the objective and the clip factor); `step` counts from 0. */
void optim_apply(optim_state *s, model *m, const optim_config *c, long step, double grad_scale);

/* The clip factor min(1, clip / norm) for a gradient norm (1 when clipping is off). */
double optim_clip_factor(const optim_config *c, double norm);

#endif
