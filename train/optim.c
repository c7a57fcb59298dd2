#include "optim.h"

#include <math.h>

double optim_lr(const optim_config *c, long s) {
    if (!c->cosine)
        return c->lr;
    double W = (double)c->warmup_steps, A = (double)c->anneal_steps;
    double w = W > 0 ? fmin((double)s, W) / W : 1.0;
    double a = A > 0 ? fmin(fmax((double)s - W, 0.0), A) / A : 0.0;
    return w * c->lr - (c->lr - c->end_lr) * (1.0 - cos(3.14159265358979323846 * a)) / 2.0;
}

void optim_state_init(optim_state *s, model *m) {
    s->m = m->o->alloc(m->o, m->table.total, OPS_F32);
    s->v = m->o->alloc(m->o, m->table.total, OPS_F32);
}

void optim_state_free(optim_state *s, model *m) {
    m->o->free(m->o, s->m);
    m->o->free(m->o, s->v);
    s->m = s->v = NULL;
}

double optim_clip_factor(const optim_config *c, double norm) {
    if (c->clip <= 0 || !(norm > c->clip))
        return 1.0;
    return c->clip / norm;
}

void optim_apply(optim_state *s, model *m, const optim_config *c, long step, double grad_scale) {
    double lr = optim_lr(c, step), t = (double)(step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2 = (float)(1.0 - pow(c->beta2, t));
    for (int i = 0; i < m->table.n; i++) {
        const param_info *p = &m->table.p[i];
        size_t off = p->offset;
        m->o->adamw(m->o, (ops_ptr){m->params, off}, (ops_ptr){m->grads, off}, (ops_ptr){s->m, off},
                    (ops_ptr){s->v, off}, p->numel, (float)grad_scale, (float)lr, (float)c->beta1,
                    (float)c->beta2, (float)c->eps, p->decay ? (float)c->weight_decay : 0.0f, bc1, bc2);
    }
}
