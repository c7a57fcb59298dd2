/* The case files of the PyTorch reference (tests/ref/README.md), written by the C tests, and the reading
 * of its results. Test code: every failure is a CHECK. */
#ifndef MT_REF_CASE_H
#define MT_REF_CASE_H

#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>

#include "data/shard.h"
#include "model/model.h"
#include "tests/testutil.h"
#include "train/optim.h"

/* The optimizer of every reference case (the PyTorch reference replays it from the case's train JSON). The
 * clip is small so that clipping acts. */
static const optim_config RC_OPT = {.lr = 1e-2,
                                    .end_lr = 1e-3,
                                    .warmup_steps = 3,
                                    .anneal_steps = 7,
                                    .cosine = 1,
                                    .weight_decay = 0.1,
                                    .beta1 = 0.9,
                                    .beta2 = 0.95,
                                    .eps = 1e-8,
                                    .clip = 0.05};

static inline void rc_write_f32(hid_t file, const char *name, const float *data, int ndim,
                                const hsize_t *dims) {
    hid_t sp = H5Screate_simple(ndim, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    hid_t d = H5Dcreate2(file, name, H5T_IEEE_F32LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    CHECK(d >= 0 && H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0, "write %s",
          name);
    H5Dclose(d);
    H5Pclose(lcpl);
    H5Sclose(sp);
}

/* Reads a dataset as doubles; returns its element count or -1. */
static inline long rc_read_f64(hid_t file, const char *name, double *out, long cap) {
    if (H5Lexists(file, name, H5P_DEFAULT) <= 0)
        return -1;
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT), sp = H5Dget_space(d);
    long n = (long)H5Sget_simple_extent_npoints(sp);
    herr_t rc = n <= cap ? H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) : -1;
    H5Sclose(sp);
    H5Dclose(d);
    return rc < 0 ? -1 : n;
}

/* The reference's logits [n_rows, V] of the rows the loss counts (nonzero weights[0..n_rows)), which are
 * the rows model_get_logits returns; their element count, or -1. */
static inline long rc_read_counted_logits(hid_t file, const float *weights, long n_rows, long V,
                                          double *out) {
    if (rc_read_f64(file, "logits", out, n_rows * V) != n_rows * V)
        return -1;
    long k = 0;
    for (long i = 0; i < n_rows; i++)
        if (weights[i] != 0)
            memmove(out + k++ * V, out + i * V, (size_t)V * sizeof *out);
    return k * V;
}

/* Every tensor of a parameter set (one process: global shapes) as group/<name>. */
static inline void rc_write_set(hid_t f, const char *group, ops *o, const param_set *ps) {
    for (int i = 0; i < ps->table->n; i++) {
        const param_info *p = &ps->table->p[i];
        float *x = mt_malloc((size_t)(p->shape[0] * p->shape[1]) * sizeof *x);
        param_set_get_tensor(o, ps, ps->params, i, x);
        char name[128];
        snprintf(name, sizeof name, "%s/%s", group, p->name);
        hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
        rc_write_f32(f, name, x, p->ndim, dims);
        free(x);
    }
}

/* CASE.h5 for m (one process): the model config, train_json, /params, with LoRA the `lora` attribute and
 * /lora, and the tokens [steps, micro, B, T+1] and weights [steps, micro, B, T]. */
static inline void rc_write_case(const char *path, model *m, const char *train_json, const int32_t *tokens,
                                 const float *weights, int steps, int micro) {
    hid_t fapl = h5_fapl(), f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    CHECK(f >= 0, "create %s", path);
    cJSON *cfg = model_config_to_json(&m->cfg);
    char *cj = cJSON_PrintUnformatted(cfg);
    h5_put_str(f, "model", cj);
    h5_put_str(f, "train", train_json);
    free(cj);
    cJSON_Delete(cfg);
    param_set base = model_base(m);
    rc_write_set(f, "params", m->o, &base);
    if (m->lora) {
        const lora_config *lc = &m->lora->cfg;
        char lj[512];
        int n = snprintf(
            lj, sizeof lj,
            "{\"rank\": %d, \"alpha\": %.17g, \"dropout\": %.17g, \"seed\": \"%llu\", \"targets\": [",
            lc->rank, lc->alpha, lc->dropout, (unsigned long long)m->lora->seed);
        for (int t = 0, first = 1; t < LORA_N_TARGETS; t++)
            if (lc->targets >> t & 1) {
                n += snprintf(lj + n, sizeof lj - (size_t)n, "%s\"%s\"", first ? "" : ", ",
                              LORA_TARGET_NAMES[t]);
                first = 0;
            }
        snprintf(lj + n, sizeof lj - (size_t)n, "]}");
        h5_put_str(f, "lora", lj);
        param_set ad = model_trainable(m);
        rc_write_set(f, "lora", m->o, &ad);
    }
    hsize_t td[4] = {(hsize_t)steps, (hsize_t)micro, (hsize_t)m->B, (hsize_t)m->T + 1};
    hsize_t wd[4] = {(hsize_t)steps, (hsize_t)micro, (hsize_t)m->B, (hsize_t)m->T};
    hid_t sp = H5Screate_simple(4, td, NULL);
    hid_t d = H5Dcreate2(f, "tokens", H5T_STD_I32LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tokens);
    H5Dclose(d);
    H5Sclose(sp);
    rc_write_f32(f, "weights", weights, 4, wd);
    H5Fclose(f);
}

/* Runs the reference on a case; the opened OUT.h5, or -1 after a failed check named fam.reference ran. */
static inline hid_t rc_run_reference(const char *case_path, const char *out_path, const char *fam) {
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 tests/ref/model_ref.py %s %s", case_path, out_path);
    int rc = system(cmd);
    tu_check(rc == 0, tu_name("%s.reference ran", fam), "'%s' exited with %d", cmd, rc);
    return rc == 0 ? H5Fopen(out_path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
}

#endif
