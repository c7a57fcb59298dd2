#include "step.h"

#include <math.h>

void train_step(model *m, optim_state *s, const optim_config *c, long step, int n_micro,
                const int32_t *tokens, const float *weights, step_result *r) {
    size_t ntok = (size_t)m->B * (m->T + 1), nw = (size_t)m->B * m->T;
    double sum = 0, wsum = 0;
    model_zero_grads(m);
    for (int j = 0; j < n_micro; j++) {
        double w;
        sum += model_forward(m, tokens + j * ntok, weights + j * nw, &w);
        model_backward(m);
        wsum += w;
    }
    r->weight_sum = wsum;
    r->loss = sum / wsum;
    r->grad_norm = sqrt(m->o->sumsq(m->o, (ops_ptr){m->grads, 0}, m->table.total)) / wsum;
    r->lr = optim_lr(c, step);
    r->skipped = !isfinite(r->loss) || !isfinite(r->grad_norm) || wsum == 0;
    if (!r->skipped)
        optim_apply(s, m, c, step, optim_clip_factor(c, r->grad_norm) / wsum);
}
