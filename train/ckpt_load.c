/* ckpt_load (DESIGN 7): every rank reads the whole tensors it needs from the file, verifying every block
 * it reads, after checking the file against its model: the same tensor set and shapes, or a refusal that
 * names the differing tensors and model fields. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/h5.h"
#include "train/ckpt_internal.h"
#include "train/config_diff.h"

/* A growing one-line message of whole items. */
typedef struct {
    char *buf;
    size_t cap, len;
    int items;
} line;

static void line_add(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(line *l, const char *fmt, ...) {
    if (l->len + 1 >= l->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
    va_end(ap);
    if (k < 0 || l->len + (size_t)k >= l->cap) { /* an item fits whole or not at all */
        l->buf[l->len] = 0;
        return;
    }
    l->len += (size_t)k;
    l->items++;
}

/* The model fields whose values differ between the checkpoint's run config and m's, into out. */
static void config_differences(const char *config_json, const model_config *cfg, char *out, size_t cap) {
    static const config_sides SIDES = {"checkpoint", "model"};
    cJSON *saved = cJSON_Parse(config_json ? config_json : "");
    const cJSON *sm = cJSON_GetObjectItemCaseSensitive(saved, "model");
    if (!cJSON_IsObject(sm)) /* a config of the model alone */
        sm = saved;
    cJSON *mine = model_config_to_json(cfg);
    out[0] = 0;
    if (cJSON_IsObject(sm))
        config_diff_json(sm, mine, "", &SIDES, out, cap);
    cJSON_Delete(mine);
    cJSON_Delete(saved);
}

typedef struct {
    const param_table *t;
    line *l;
    int count;
} extra_ctx;

static herr_t note_extra(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    extra_ctx *c = data;
    if (param_find(c->t, name) < 0 && c->count++ < 2)
        line_add(c->l, "%s%s in the checkpoint but not in the model", c->l->items ? ", " : "", name);
    return 0;
}

/* The tensors of m's table that the file lacks or holds in another shape, the first 4 named in l; their
 * count. */
static int shape_differences(hid_t f, const param_table *t, line *l) {
    int n_diff = 0;
    for (int i = 0; i < t->n; i++) {
        const param_info *p = &t->p[i];
        char dname[128];
        snprintf(dname, sizeof dname, "params/%s", p->name);
        hsize_t dims[2];
        int nd = ckpt_dataset_shape(f, dname, dims);
        int differs = nd < 0 || nd != p->ndim || (long)dims[0] != p->shape[0] || (long)dims[1] != p->shape[1];
        if (differs && n_diff < 4) {
            if (nd < 0)
                line_add(l, "%s%s missing from the checkpoint", l->items ? ", " : "", p->name);
            else
                line_add(l, "%s%s [%lld,%lld] in the checkpoint vs [%ld,%ld] in the model",
                         l->items ? ", " : "", p->name, (long long)dims[0], nd == 2 ? (long long)dims[1] : 1,
                         p->shape[0], p->shape[1]);
        }
        n_diff += differs;
    }
    return n_diff;
}

/* The datasets of /params that table t lacks, the first 2 named in l; their count, or -1 when the file has
 * no readable /params. */
static int extra_tensors(hid_t f, const param_table *t, line *l) {
    hid_t g = H5Lexists(f, "params", H5P_DEFAULT) > 0 ? H5Gopen2(f, "params", H5P_DEFAULT) : -1;
    if (g < 0)
        return -1;
    extra_ctx ctx = {t, l, 0};
    H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, note_extra, &ctx);
    H5Gclose(g);
    return ctx.count;
}

/* The tensor set and shapes of the file against the table of ps (one of m's parameter sets); a refusal
 * names the differing config fields and the first differing tensors. */
static int check_tensors(hid_t f, const char *path, model *m, const param_set *ps, const char *config_json,
                         mt_err *err) {
    char diff[400] = "";
    line l = {diff, sizeof diff, 0, 0};
    int n_diff = shape_differences(f, ps->table, &l);
    line extra = {diff + l.len, sizeof diff - l.len, 0, n_diff ? 1 : 0};
    int n_extra = extra_tensors(f, ps->table, &extra);
    if (n_extra < 0)
        return mt_fail(err, "%s: group /params is missing or unreadable", path);
    n_diff += n_extra;
    if (!n_diff)
        return 0;
    char fields[400];
    config_differences(config_json, &m->cfg, fields, sizeof fields);
    return mt_fail(err, "%s: checkpoint is for a different model: config %s; %d tensors differ: %s%s", path,
                   fields[0] ? fields : "(no differing model field found)", n_diff, diff,
                   n_diff > 4 ? ", ..." : "");
}

/* Puts the global tensor `full` of p into the flat buffer `buf` covering flat offsets [lo, hi): this rank's
 * block of rows and columns, then the part of it inside the range; padded rows are zeroed. */
static void scatter_tensor(model *m, const param_info *p, const float *full, ops_buf *buf, size_t lo,
                           size_t hi, float *block) {
    size_t cols = (size_t)p->local_shape[1], valid = (size_t)p->valid_rows * cols;
    const float *local = full;
    if (!ckpt_holds_full(p)) {
        for (long r = 0; r < p->valid_rows; r++)
            memcpy(block + (size_t)r * cols,
                   full + (size_t)(p->row_start + r) * (size_t)p->shape[1] + (size_t)p->col_start,
                   cols * sizeof *block);
        local = block;
    }
    size_t a = p->offset > lo ? p->offset : lo, b = p->offset + valid < hi ? p->offset + valid : hi;
    if (a < b)
        m->o->from_host(m->o, (ops_ptr){buf, a - lo}, local + (a - p->offset), b - a);
    size_t pa = p->offset + valid > lo ? p->offset + valid : lo,
           pb = p->offset + p->numel < hi ? p->offset + p->numel : hi;
    if (pa < pb)
        m->o->zero(m->o, (ops_ptr){buf, pa - lo}, pb - pa);
}

/* Reads and verifies one tensor of one kind; straight into backend host memory when this rank holds the
 * whole tensor there. */
static int load_tensor(hid_t f, const char *path, model *m, const param_set *ps, optim_state *opt, int kind,
                       const param_info *p, float *scratch, float *block, mt_err *err) {
    size_t lo, hi;
    ops_buf *buf = ckpt_kind_buf(ps, opt, kind, &lo, &hi);
    char dname[128];
    snprintf(dname, sizeof dname, "%s/%s", ckpt_group(kind), p->name);
    size_t n = ckpt_numel(p);
    float *direct = NULL;
    if (ckpt_holds_full(p) && p->offset >= lo && p->offset + p->numel <= hi && m->o->host_ptr)
        direct = m->o->host_ptr(m->o, (ops_ptr){buf, p->offset - lo});
    CHECK(!direct || !mt_is_device_memory(direct), "device memory passed to HDF5 as a host address");
    float *data = direct ? direct : scratch;
    if (ckpt_read_dataset(f, path, dname, n, data, err))
        return -1;
    for (size_t j = 0; kind == CKPT_PARAMS && j < n; j++)
        if (!isfinite(data[j])) /* a file meshtrain wrote never holds these (check_finite) */
            return mt_fail(err, "%s: dataset %s holds NaN or infinite values", path, dname);
    if (direct) {
        if (p->numel > n)
            m->o->zero(m->o, (ops_ptr){buf, p->offset - lo + n}, p->numel - n);
        return 0;
    }
    scatter_tensor(m, p, scratch, buf, lo, hi, block);
    return 0;
}

/* A parameters-only checkpoint (bin/convert hf-import) resumes with Adam's moments at zero. */
static void zero_moments(model *m, optim_state *opt) {
    m->o->zero(m->o, (ops_ptr){opt->m, 0}, opt->hi - opt->lo);
    m->o->zero(m->o, (ops_ptr){opt->v, 0}, opt->hi - opt->lo);
}

/* Every tensor into ps, and unless opt is NULL every moment into opt (zeros from a parameters-only file). */
static int load_tensors(hid_t f, const char *path, model *m, const param_set *ps, optim_state *opt,
                        int params_only, mt_err *err) {
    const param_table *t = ps->table;
    size_t biggest = 0;
    for (int i = 0; i < t->n; i++)
        biggest = ckpt_numel(&t->p[i]) > biggest ? ckpt_numel(&t->p[i]) : biggest;
    float *scratch = mt_malloc(biggest * sizeof *scratch), *block = mt_malloc(biggest * sizeof *block);
    int rc = 0;
    for (int kind = 0; kind < (opt && !params_only ? CKPT_N_KINDS : 1) && !rc; kind++)
        for (int i = 0; i < t->n && !rc; i++)
            rc = load_tensor(f, path, m, ps, opt, kind, &t->p[i], scratch, block, err);
    if (!rc && opt && params_only)
        zero_moments(m, opt);
    free(scratch);
    free(block);
    return rc;
}

static int load_local(const char *path, ckpt_meta *meta_out, model *m, const param_set *ps, optim_state *opt,
                      mt_err *err) {
    hid_t f = ckpt_open(path, err);
    if (f < 0)
        return -1;
    ckpt_meta meta = {0};
    int rc = ckpt_read_meta(f, path, &meta, err);
    if (!rc)
        rc = check_tensors(f, path, m, ps, meta.config_json, err);
    meta.params_only = H5Lexists(f, "optim", H5P_DEFAULT) <= 0;
    if (!rc)
        rc = load_tensors(f, path, m, ps, opt, meta.params_only, err);
    if (H5Fclose(f) < 0 && !rc)
        rc = mt_fail(err, "%s: error closing the file", path);
    if (!rc && meta_out)
        *meta_out = meta;
    else
        ckpt_meta_free(&meta);
    return rc;
}

static int load_set(const char *path, ckpt_meta *meta_out, model *m, const param_set *ps, optim_state *opt,
                    MPI_Comm comm, mt_err *err) {
    h5_quiet();
    if (meta_out)
        *meta_out = (ckpt_meta){0};
    /* Every rank reads the whole tensors it needs (and so can verify every block it uses). */
    int rc = ckpt_agree(load_local(path, meta_out, m, ps, opt, err), err, comm);
    if (rc)
        ckpt_meta_free(meta_out);
    return rc;
}

int ckpt_load(const char *path, ckpt_meta *meta_out, model *m, optim_state *opt, MPI_Comm comm, mt_err *err) {
    param_set ps = model_trainable(m);
    return load_set(path, meta_out, m, &ps, opt, comm, err);
}

int ckpt_load_base(const char *path, ckpt_meta *meta_out, model *m, MPI_Comm comm, mt_err *err) {
    param_set ps = model_base(m);
    return load_set(path, meta_out, m, &ps, NULL, comm, err);
}
