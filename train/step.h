/* One optimizer step (SPEC 9): the gradient of sum(w * CE) over every micro-batch, divided once by
 * sum(w); global-norm clipping; AdamW. Shared by bin/train and the parity tests. */
#ifndef MT_STEP_H
#define MT_STEP_H

#include "train/optim.h"

typedef struct {
    double loss;      /* sum(w * CE) / sum(w) before the update */
    double grad_norm; /* norm of the gradient of that objective, before clipping */
    double lr;
    double weight_sum; /* sum of the loss weights */
    double counted;    /* rows the head ran on (nonzero weights), over the data-parallel group */
    int skipped;       /* non-finite loss or gradient: no update */
} step_result;

/* tokens: n_micro blocks of [B, T+1]; weights: n_micro blocks of [B, T]. */
void train_step(model *m, optim_state *s, const optim_config *c, long step, int n_micro,
                const int32_t *tokens, const float *weights, step_result *r);

#endif
