/* bin/convert hf-import: an HF model folder to a parameters-only checkpoint (see hf_convert.h). */
#define _DEFAULT_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/jcfg.h"
#include "model/params.h"
#include "train/ckpt_stream.h"
#include "train/hf_config.h"
#include "train/hf_convert.h"
#include "train/hf_source.h"

enum { STAGE_FLOATS = 1 << 22 }; /* blocks of transposed rows (GPT-2's Conv1D weights) */

/* The model is named after its folder. */
static void folder_name(const char *dir, char *out, size_t cap) {
    char *real = realpath(dir, NULL);
    const char *base = real ? strrchr(real, '/') + 1 : dir;
    snprintf(out, cap, "%s", *base ? base : "model");
    free(real);
}

static int load_config(const char *dir, model_config *c, hf_family *fam, mt_err *err) {
    char path[4200], name[64];
    snprintf(path, sizeof path, "%s/config.json", dir);
    cJSON *hf = jcfg_load(path, err);
    if (!hf)
        return -1;
    folder_name(dir, name, sizeof name);
    int rc = hf_config_import(hf, path, name, c, fam, err);
    cJSON_Delete(hf);
    return rc;
}

static void shape_text(const uint64_t *shape, int ndim, char *out, size_t cap) {
    size_t n = (size_t)snprintf(out, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(out + n, cap - n, "%s%llu", i ? ", " : "", (unsigned long long)shape[i]);
    if (n < cap)
        snprintf(out + n, cap - n, "]");
}

/* The HF tensor of table entry p: present, a float dtype, the shape its place needs. */
static int check_one(hf_source *s, const param_info *p, const hf_place *pl, hf_family fam, hf_entry **out,
                     mt_err *err) {
    hf_entry *e = hf_source_find(s, pl->name);
    if (!e)
        return mt_fail(err, "%s: tensor %s is missing (this %s config needs it for %s)", s->where, pl->name,
                       hf_model_type(fam), p->name);
    if (!st_dtype_is_float(e->t->dtype))
        return mt_fail(err, "%s: tensor %s has dtype %s (F32, F16 or BF16 expected)", e->file->path, e->name,
                       st_dtype_name(e->t->dtype));
    int same = e->t->ndim == pl->ndim;
    for (int k = 0; k < pl->ndim && same; k++)
        same = e->t->shape[k] == pl->shape[k];
    if (!same) {
        char have[200], want[64];
        shape_text(e->t->shape, e->t->ndim, have, sizeof have);
        shape_text(pl->shape, pl->ndim, want, sizeof want);
        return mt_fail(err, "%s: tensor %s is %s; this %s config needs %s", e->file->path, e->name, have,
                       hf_model_type(fam), want);
    }
    e->used = 1;
    *out = e;
    return 0;
}

/* Every table entry's tensor; then nothing may be left over but the attention-mask buffers, and the copy
 * of wte that some files keep as lm_head.weight for a tied head. */
static int plan(hf_source *s, const param_table *t, hf_family fam, int tied, hf_place *places, hf_entry **src,
                mt_err *err) {
    for (int i = 0; i < t->n; i++) {
        hf_place_of(fam, &t->p[i], &places[i]);
        if (check_one(s, &t->p[i], &places[i], fam, &src[i], err))
            return -1;
    }
    for (size_t i = 0; i < s->n; i++) {
        const hf_entry *e = &s->e[i];
        if (!e->used && !hf_is_mask_buffer(e->name) && !(tied && !strcmp(e->name, "lm_head.weight")))
            return mt_fail(err, "%s: unexpected tensor %s (not a parameter of this %s config)", e->file->path,
                           e->name, hf_model_type(fam));
    }
    return 0;
}

typedef struct {
    st_file *f;
    const st_tensor *t;
} read_ctx;

static int read_io(void *ctx, uint64_t first, size_t n, float *buf, mt_err *err) {
    read_ctx *r = ctx;
    return st_read_f32(r->f, r->t, first, n, buf, err);
}

static size_t numel(const param_info *p) { return (size_t)p->shape[0] * (size_t)p->shape[1]; }

static int all_finite(const float *x, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        ok &= isfinite(x[i]) != 0;
    return ok;
}

static ckpt_writer *open_output(const char *out, const model_config *c, const param_table *t, mt_err *err) {
    cJSON *cfg = cJSON_CreateObject();
    cJSON_AddItemToObject(cfg, "model", model_config_to_json(c));
    char *json = cJSON_PrintUnformatted(cfg);
    cJSON_Delete(cfg);
    /* Step 0 of a run that has not started, written by one process. */
    ckpt_meta meta = {.world_dp = 1, .world_tp = 1, .threads = 1, .config_json = json};
    ckpt_writer *w = ckpt_writer_open(out, &meta, t, err);
    free(json);
    return w;
}

static int write_checkpoint(const char *out, const model_config *c, const param_table *t,
                            const hf_place *places, hf_entry *const *src, mt_err *err) {
    ckpt_writer *w = open_output(out, c, t, err);
    if (!w)
        return -1;
    size_t biggest = 0;
    for (int i = 0; i < t->n; i++)
        biggest = t->p[i].numel > biggest ? t->p[i].numel : biggest; /* tp = 1: the global size */
    float *buf = mt_malloc(biggest * sizeof *buf), *stage = mt_malloc(STAGE_FLOATS * sizeof *stage);
    double t0 = mt_now(), shown = t0;
    int rc = 0;
    for (int i = 0; i < t->n && !rc; i++) {
        read_ctx ctx = {src[i]->file, src[i]->t};
        rc = hf_copy(&places[i], &t->p[i], buf, 0, read_io, &ctx, stage, STAGE_FLOATS, err);
        if (!rc && !all_finite(buf, numel(&t->p[i]))) /* as bin/train, which never checkpoints them */
            rc = mt_fail(err, "%s: tensor %s holds NaN or infinite values", src[i]->file->path, src[i]->name);
        if (!rc)
            rc = ckpt_writer_put(w, i, buf, err);
        if (mt_now() - shown > 10) {
            shown = mt_now();
            printf("hf-import: %d of %d tensors, %.0f s\n", i + 1, t->n, shown - t0);
            fflush(stdout);
        }
    }
    free(buf);
    free(stage);
    if (ckpt_writer_close(w, rc != 0, err))
        rc = -1;
    if (!rc)
        printf("hf-import: wrote %s: %d tensors, %ld parameters (%s), in %.1f s\n", out, t->n, param_count(t),
               c->name, mt_now() - t0);
    return rc;
}

int hf_import(const char *hf_dir, const char *out, const char *config_out, mt_err *err) {
    model_config c;
    hf_family fam;
    hf_source s;
    if (load_config(hf_dir, &c, &fam, err) || hf_source_open(&s, hf_dir, err))
        return -1;
    param_table t;
    param_table_build(&t, &c, 1, 0);
    hf_place *places = mt_calloc((size_t)t.n, sizeof *places);
    hf_entry **src = mt_calloc((size_t)t.n, sizeof *src);
    int rc = plan(&s, &t, fam, c.tie_embeddings, places, src, err);
    if (!rc)
        rc = write_checkpoint(out, &c, &t, places, src, err);
    if (!rc && config_out) {
        cJSON *j = model_config_to_json(&c);
        rc = hf_write_json(config_out, j, err);
        cJSON_Delete(j);
    }
    free(places);
    free(src);
    param_table_free(&t);
    hf_source_close(&s);
    return rc;
}
