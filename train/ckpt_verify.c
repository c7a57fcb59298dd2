/* ckpt_verify (DESIGN 7): a checkpoint checked without a model, by rank 0: its root attributes, and every
 * dataset read whole against its block checksums. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/h5.h"
#include "train/ckpt_internal.h"

typedef struct {
    hid_t file;
    const char *path, *group;
    float *buf;
    size_t cap;
    mt_err *err;
    int rc;
    int n_kinds; /* params, or params and the moments */
} verify_ctx;

static herr_t verify_one(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    verify_ctx *c = data;
    char dname[256];
    snprintf(dname, sizeof dname, "%s/%s", c->group, name);
    hsize_t dims[2];
    int nd = ckpt_dataset_shape(c->file, dname, dims);
    if (nd < 0) {
        c->rc = mt_fail(c->err, "%s: dataset %s is unreadable or not float32", c->path, dname);
        return 1;
    }
    size_t n = (size_t)dims[0] * (nd == 2 ? (size_t)dims[1] : 1);
    if (n > c->cap) {
        free(c->buf);
        c->buf = mt_malloc(n * sizeof *c->buf);
        c->cap = n;
    }
    c->rc = ckpt_read_dataset(c->file, c->path, dname, n, c->buf, c->err);
    if (!c->rc && strcmp(c->group, "params") == 0 && c->n_kinds == CKPT_N_KINDS)
        for (int k = CKPT_M; k < CKPT_N_KINDS && !c->rc; k++) {
            snprintf(dname, sizeof dname, "%s/%s", ckpt_group(k), name);
            if (H5Lexists(c->file, ckpt_group(k), H5P_DEFAULT) <= 0 ||
                H5Lexists(c->file, dname, H5P_DEFAULT) <= 0)
                c->rc = mt_fail(c->err, "%s: dataset %s is missing", c->path, dname);
        }
    return c->rc ? 1 : 0;
}

int ckpt_verify_file(const char *path, mt_err *err) {
    hid_t f = ckpt_open(path, err);
    if (f < 0)
        return -1;
    verify_ctx c = {f, path, NULL, NULL, 0, err, ckpt_read_meta(f, path, NULL, err), CKPT_N_KINDS};
    if (H5Lexists(f, "optim", H5P_DEFAULT) <= 0) /* parameters only (bin/convert hf-import) */
        c.n_kinds = 1;
    for (int k = 0; k < c.n_kinds && !c.rc; k++) {
        c.group = ckpt_group(k);
        hid_t g = H5Lexists(f, "optim", H5P_DEFAULT) >= 0 && H5Lexists(f, c.group, H5P_DEFAULT) > 0
                      ? H5Gopen2(f, c.group, H5P_DEFAULT)
                      : -1;
        if (g < 0) {
            c.rc = mt_fail(err, "%s: group /%s is missing or unreadable", path, c.group);
            break;
        }
        if (H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, verify_one, &c) < 0 && !c.rc)
            c.rc = mt_fail(err, "%s: group /%s is unreadable", path, c.group);
        H5Gclose(g);
    }
    free(c.buf);
    if (H5Fclose(f) < 0 && !c.rc)
        c.rc = mt_fail(err, "%s: error closing the file", path);
    return c.rc;
}

int ckpt_verify(const char *path, MPI_Comm comm, mt_err *err) {
    h5_quiet();
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = rank == 0 ? ckpt_verify_file(path, err) : 0;
    return ckpt_agree(rc, err, comm);
}
