/* Scaffolding of the C tests that build models: a model config read from its file, a CPU model with its
 * AdamW state, and global tensors copied out of a flat buffer. Test code: every failure is a CHECK. */
#ifndef MT_TEST_MODEL_H
#define MT_TEST_MODEL_H

#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tests/testutil.h"
#include "train/optim.h"

/* The model config of a JSON file such as configs/models/tiny-gptj.json. */
static inline model_config tu_model_config(const char *path) {
    mt_err err;
    cJSON *j = jcfg_load(path, &err);
    jcfg_src src = {.file = path};
    model_config cfg;
    CHECK(j && !model_config_parse(&src, "", j, &cfg, &err), "%s", err.msg);
    cJSON_Delete(j);
    return cfg;
}

/* A model of one process on the CPU backend, with its optimizer state (no ZeRO). */
typedef struct {
    ops *o;
    model *m;
    optim_state opt;
} tu_trainee;

/* threads: the backend's; batch x seq: the token shape of a micro-batch. */
static inline tu_trainee tu_trainee_make(const model_config *cfg, int threads, int batch, int seq) {
    tu_trainee t;
    t.o = ops_cpu_create(threads);
    t.m = model_create(cfg, t.o, batch, seq);
    optim_state_init(&t.opt, t.m, NULL, 0);
    return t;
}

static inline void tu_trainee_drop(tu_trainee *t) {
    optim_state_free(&t->opt, t->m);
    model_free(t->m);
    t->o->destroy(t->o);
    t->o = NULL;
    t->m = NULL;
}

/* Elements of tensor p's global array. */
static inline size_t tu_numel(const param_info *p) { return (size_t)p->shape[0] * (size_t)p->shape[1]; }

/* The global tensor i of the flat buffer buf (parameters, gradients or a moment), newly allocated. */
static inline float *tu_get_tensor(model *m, ops_buf *buf, int i) {
    float *x = mt_malloc(tu_numel(&m->table.p[i]) * sizeof *x);
    model_get_tensor(m, buf, i, x);
    return x;
}

/* GPT-2's key bias has a true gradient of exactly zero (SPEC 8.1): tests bound it absolutely, not
 * relatively. */
static inline int tu_zero_grad_tensor(const char *name) { return strstr(name, "k_proj.bias") != NULL; }

/* Biases and LayerNorm parameters start at 0 and 1; perturb every tensor so that a misplaced bias or
 * gain shows in a comparison (the test RNG, so a printed seed reproduces it). */
static inline void tu_perturb_params(model *m) {
    for (int i = 0; i < m->table.n; i++) {
        const param_info *p = &m->table.p[i];
        size_t n = (size_t)(p->shape[0] * p->shape[1]);
        float *x = mt_malloc(n * sizeof *x);
        model_get_tensor(m, m->params, i, x);
        for (size_t j = 0; j < n; j++)
            x[j] += (float)((p->ndim == 1 ? 0.1 : 0.01) * tu_normal());
        model_set_tensor(m, m->params, i, x);
        free(x);
    }
}

#endif
