#define _POSIX_C_SOURCE 200809L
#include "train/ckpt_stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/h5.h"
#include "parallel/coll.h"
#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

struct ckpt_writer {
    hid_t file, params;
    const param_table *t;
    char path[4096], tmp[4200];
    unsigned char *written; /* per tensor of t */
};

/* The folder of path and its last component. */
static void split_path(const char *path, char *dir, size_t dir_cap, const char **base) {
    const char *slash = strrchr(path, '/');
    *base = slash ? slash + 1 : path;
    if (!slash)
        snprintf(dir, dir_cap, ".");
    else
        snprintf(dir, dir_cap, "%.*s", (int)(slash == path ? 1 : slash - path), path);
}

/* As ckpt_save does: free space checked, the file reserved, then the attributes and /params. */
static int start_file(ckpt_writer *w, const ckpt_meta *meta, mt_err *err) {
    uint64_t bytes = ckpt_file_bytes(w->t, meta, 1);
    char dir[4096];
    const char *base;
    split_path(w->path, dir, sizeof dir, &base);
    if (ckpt_check_space(dir, base, bytes, err))
        return -1;
    w->file = ckpt_create(w->tmp, MPI_COMM_SELF);
    if (w->file < 0)
        return mt_fail(err, "%s: cannot create (does the folder exist and is it writable?)", w->tmp);
    if (ckpt_reserve(w->tmp, bytes, err))
        return -1;
    if (ckpt_write_meta(w->file, meta))
        return mt_fail(err, "%s: cannot write attributes", w->tmp);
    if ((w->params = ckpt_make_group(w->file, "params")) < 0)
        return mt_fail(err, "%s: cannot create group /params", w->tmp);
    return 0;
}

ckpt_writer *ckpt_writer_open(const char *path, const ckpt_meta *meta, const param_table *t, mt_err *err) {
    h5_quiet();
    int mpi_up;
    MPI_Initialized(&mpi_up);
    if (!mpi_up) /* a single process (singleton), for the MPI-IO driver; not before it is needed */
        MPI_Init(NULL, NULL);
    ckpt_writer *w = mt_calloc(1, sizeof *w);
    snprintf(w->path, sizeof w->path, "%s", path);
    snprintf(w->tmp, sizeof w->tmp, "%s.tmp", path);
    w->t = t;
    w->written = mt_calloc((size_t)t->n, 1);
    w->file = w->params = -1;
    if (start_file(w, meta, err)) {
        ckpt_writer_close(w, 1, NULL);
        return NULL;
    }
    return w;
}

/* The whole tensor from this one process, in writes of whole rows of at most coll_chunk() elements (MPI-IO
 * takes int counts). */
static int write_rows(hid_t d, const param_info *p, const float *data) {
    size_t cols = (size_t)p->shape[1], rows = (size_t)p->shape[0];
    size_t step = coll_chunk() / cols > 0 ? coll_chunk() / cols : 1;
    for (size_t r = 0; r < rows; r += step) {
        size_t nr = rows - r < step ? rows - r : step;
        ckpt_part part = {.n = 1, .start = {{r, 0}}, .count = {{nr, cols}}, .data = data + r * cols};
        if (ckpt_write_part(d, &part))
            return -1;
    }
    return 0;
}

int ckpt_writer_put(ckpt_writer *w, int i, const float *data, mt_err *err) {
    const param_info *p = &w->t->p[i];
    size_t n = ckpt_numel(p), n_crc = ckpt_crc_blocks(n);
    uint32_t *crc = mt_malloc((n_crc ? n_crc : 1) * sizeof *crc);
    for (size_t b = 0; b < n_crc; b++) {
        size_t start = b * CKPT_CRC_BLOCK_FLOATS;
        size_t len = n - start < CKPT_CRC_BLOCK_FLOATS ? n - start : CKPT_CRC_BLOCK_FLOATS;
        crc[b] = crc32c(data + start, len * sizeof *data);
    }
    hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
    hid_t d = ckpt_create_dataset(w->params, p->name, p->ndim, dims);
    int rc = d < 0 || write_rows(d, p, data) || ckpt_put_crcs(d, crc, n_crc);
    if (d >= 0)
        H5Dclose(d);
    free(crc);
    if (rc)
        return mt_fail(err, "%s: cannot write dataset /params/%s (disk full or I/O error)", w->tmp, p->name);
    w->written[i] = 1;
    return 0;
}

int ckpt_writer_close(ckpt_writer *w, int abandon, mt_err *err) {
    int rc = 0;
    for (int i = 0; i < w->t->n && !abandon; i++)
        CHECK(w->written[i], "checkpoint %s closed without tensor %s", w->path, w->t->p[i].name);
    if (w->params >= 0)
        H5Gclose(w->params);
    if (w->file >= 0 && (abandon || H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0)) {
        ckpt_discard(w->file, w->tmp, MPI_COMM_SELF);
        rc = abandon ? -1 : mt_fail(err, "%s: cannot flush (disk full?)", w->tmp);
    } else if (w->file >= 0 && H5Fclose(w->file) < 0) {
        h5_mark_broken();
        rc = mt_fail(err, "%s: cannot close (disk full?)", w->tmp);
    } else if (w->file >= 0) {
        rc = ckpt_commit(w->tmp, w->path, err);
    }
    if (rc)
        unlink(w->tmp);
    free(w->written);
    free(w);
    return abandon ? -1 : rc;
}

struct ckpt_reader {
    hid_t file;
    char path[4096];
};

ckpt_reader *ckpt_reader_open(const char *path, ckpt_meta *meta, mt_err *err) {
    h5_quiet();
    hid_t f = ckpt_open(path, err);
    if (f < 0)
        return NULL;
    if (ckpt_read_meta(f, path, meta, err)) {
        H5Fclose(f);
        return NULL;
    }
    ckpt_reader *r = mt_calloc(1, sizeof *r);
    r->file = f;
    snprintf(r->path, sizeof r->path, "%s", path);
    return r;
}

int ckpt_reader_get(ckpt_reader *r, const param_info *p, float *out, mt_err *err) {
    char dname[128];
    snprintf(dname, sizeof dname, "params/%s", p->name);
    hsize_t dims[2];
    int nd = ckpt_dataset_shape(r->file, dname, dims);
    if (nd < 0)
        return mt_fail(err, "%s: dataset /%s is missing or not float32", r->path, dname);
    if (nd != p->ndim || (long)dims[0] != p->shape[0] || (long)dims[1] != p->shape[1])
        return mt_fail(err, "%s: dataset /%s is [%llu, %llu]; its model config says [%ld, %ld]", r->path,
                       dname, (unsigned long long)dims[0], (unsigned long long)(nd == 2 ? dims[1] : 1),
                       p->shape[0], p->shape[1]);
    return ckpt_read_dataset(r->file, r->path, dname, ckpt_numel(p), out, err);
}

void ckpt_reader_close(ckpt_reader *r) {
    if (!r)
        return;
    H5Fclose(r->file);
    free(r);
}
