/* Model helpers shared by the C test programs: configs from configs/models and perturbed parameters. */
#ifndef MT_TESTMODEL_H
#define MT_TESTMODEL_H

#include <stdlib.h>

#include "model/model.h"
#include "tests/testutil.h"

/* A model config file; a bad one is a broken test (CHECK). */
static inline model_config tm_load_config(const char *path) {
    mt_err err;
    cJSON *j = jcfg_load(path, &err);
    jcfg_src src = {.file = path};
    model_config cfg;
    CHECK(j && !model_config_parse(&src, "", j, &cfg, &err), "%s", err.msg);
    cJSON_Delete(j);
    return cfg;
}

/* Biases and LayerNorm parameters start at 0 and 1; perturb every tensor so that a misplaced bias or
 * gain shows in a comparison (the test RNG, so a printed seed reproduces it). */
static inline void tm_perturb_params(model *m) {
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
