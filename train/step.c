#include "train/step.h"

#include <math.h>

#include "parallel/zero.h"

/* Completes the partial tp sums of LoRA's replicated factors (lora.h), then sums the accumulated gradient
 * over the data-parallel group: all of it, or with ZeRO-1 this rank's slice (parallel/zero.h). */
static void reduce_grads(model *m, optim_state *s) {
    param_set ps = model_trainable(m);
    comm_ctx *c = s->comm;
    if (c && c->size[COMM_TP] > 1 && ps.tp_partial_n)
        comm_allreduce(c, COMM_TP, COMM_SUM, m->o, (ops_ptr){ps.grads, 0}, ps.tp_partial_n);
    zero_reduce_grads(c, m->o, ps.grads, s->grad_slice, ps.flat_n);
}

void train_step(model *m, optim_state *s, const optim_config *c, long step, int n_micro,
                const int32_t *tokens, const float *weights, step_result *r) {
    size_t ntok = (size_t)m->B * (m->T + 1), nw = (size_t)m->B * m->T;
    double sums[3] = {0, 0, 0}; /* sum(w * CE), sum(w), counted rows */
    model_zero_grads(m);
    for (int j = 0; j < n_micro; j++) {
        double w;
        model_dropout(m, step, j);
        sums[0] += model_forward(m, tokens + j * ntok, weights + j * nw, &w);
        model_backward(m);
        sums[1] += w;
        sums[2] += model_counted_rows(m);
    }
    model_dropout(m, step, -1);
    reduce_grads(m, s);
    double sq = optim_grad_sumsq(s, m);
    if (s->comm) {
        comm_allreduce_host(s->comm, COMM_DP, COMM_SUM, sums, 3);
        comm_allreduce_host(s->comm, COMM_TP, COMM_SUM, &sq, 1);
        if (s->zero)
            comm_allreduce_host(s->comm, COMM_DP, COMM_SUM, &sq, 1);
    }
    r->weight_sum = sums[1];
    r->counted = sums[2];
    r->loss = sums[0] / sums[1];
    r->grad_norm = sqrt(sq) / sums[1];
    r->lr = optim_lr(c, step);
    r->skipped = !isfinite(r->loss) || !isfinite(r->grad_norm) || sums[1] == 0;
    if (!r->skipped)
        optim_apply(s, m, c, step, optim_clip_factor(c, r->grad_norm) / sums[1]);
    if (s->zero) /* every rank's updated slice back into everyone's parameters */
        zero_gather_params(s->comm, m->o, model_trainable(m).params, model_trainable(m).flat_n);
}
