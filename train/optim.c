#include "train/optim.h"

#include <math.h>

#include "parallel/zero.h"

double optim_lr(const optim_config *c, long s) {
    if (!c->cosine)
        return c->lr;
    double W = (double)c->warmup_steps, A = (double)c->anneal_steps;
    double w = W > 0 ? fmin((double)s, W) / W : 1.0;
    double a = A > 0 ? fmin(fmax((double)s - W, 0.0), A) / A : 0.0;
    return w * c->lr - (c->lr - c->end_lr) * (1.0 - cos(3.14159265358979323846 * a)) / 2.0;
}

void optim_state_init(optim_state *s, model *m, comm_ctx *c, int zero) {
    size_t flat_n = model_trainable(m).flat_n;
    s->comm = c;
    s->zero = zero && m->layout.dp_size > 1;
    s->lo = 0;
    s->hi = flat_n;
    if (s->zero)
        zero_slice(flat_n, m->layout.dp_size, m->layout.dp_rank, &s->lo, &s->hi);
    s->m = m->o->alloc(m->o, s->hi - s->lo, OPS_F32);
    s->v = m->o->alloc(m->o, s->hi - s->lo, OPS_F32);
    s->grad_slice = s->zero ? m->o->alloc(m->o, s->hi - s->lo, OPS_F32) : NULL;
}

void optim_state_free(optim_state *s, model *m) {
    m->o->free(m->o, s->m);
    m->o->free(m->o, s->v);
    m->o->free(m->o, s->grad_slice);
    s->m = s->v = s->grad_slice = NULL;
}

ops_ptr optim_grad(const optim_state *s, model *m) {
    return s->zero ? (ops_ptr){s->grad_slice, 0} : (ops_ptr){model_trainable(m).grads, 0};
}

/* The part of tensor i inside [lo, hi), as [*a, *b) in flat offsets; 0 when empty. */
static int overlap(const optim_state *s, const param_info *p, size_t *a, size_t *b) {
    *a = p->offset > s->lo ? p->offset : s->lo;
    *b = p->offset + p->numel < s->hi ? p->offset + p->numel : s->hi;
    return *a < *b;
}

double optim_grad_sumsq(const optim_state *s, model *m) {
    int tp_rank = m->layout.tp_rank;
    ops_ptr g = optim_grad(s, m);
    const param_table *t = model_trainable(m).table;
    double sum = 0;
    for (int i = 0; i < t->n; i++) {
        const param_info *p = &t->p[i];
        size_t a, b;
        if ((p->rule == TP_REPLICATED && tp_rank != 0) || !overlap(s, p, &a, &b))
            continue;
        sum += m->o->sumsq(m->o, ops_at(g, a - s->lo), b - a);
    }
    return sum;
}

double optim_clip_factor(const optim_config *c, double norm) {
    if (c->clip <= 0 || !(norm > c->clip))
        return 1.0;
    return c->clip / norm;
}

void optim_apply(optim_state *s, model *m, const optim_config *c, long step, double grad_scale) {
    double lr = optim_lr(c, step), t = (double)(step + 1);
    float bc1 = (float)(1.0 - pow(c->beta1, t)), bc2 = (float)(1.0 - pow(c->beta2, t));
    ops_ptr g = optim_grad(s, m);
    param_set ps = model_trainable(m);
    for (int i = 0; i < ps.table->n; i++) {
        const param_info *p = &ps.table->p[i];
        size_t a, b;
        if (!overlap(s, p, &a, &b))
            continue;
        m->o->adamw(m->o, (ops_ptr){ps.params, a}, ops_at(g, a - s->lo), (ops_ptr){s->m, a - s->lo},
                    (ops_ptr){s->v, a - s->lo}, b - a, (float)grad_scale, (float)lr, (float)c->beta1,
                    (float)c->beta2, (float)c->eps, p->decay ? (float)c->weight_decay : 0.0f, bc1, bc2);
    }
}
