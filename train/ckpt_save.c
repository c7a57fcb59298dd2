/* ckpt_save (DESIGN 7): every rank writes the elements it owns of every tensor straight into one HDF5 file
 * through MPI-IO, DIR/step_N.h5.tmp, checked (finite parameters, free space) before and cleaned up after a
 * failure; then the file is published as DIR/step_N.h5 and `latest`, and old checkpoints are pruned. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/h5.h"
#include "parallel/watchdog.h"
#include "parallel/zero.h"
#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

/* ---------------------------------------------------------------------- who owns what (ZeRO-1 slices) */

/* Who writes what: world rank r is tp rank r % tp of dp rank r / tp (parallel/comm.c). */
typedef struct {
    int tp, dp, zero;
    size_t flat_n;
} owners;

static owners owners_of(model *m, optim_state *opt) {
    return (owners){m->layout.tp_size, m->layout.dp_size, opt && opt->zero, model_trainable(m).flat_n};
}

/* The elements of tensor p (local flat indices [*a, *b) of its shard) that world rank r contributes: its
 * whole shard from dp rank 0, except the Adam moments under ZeRO-1, where every dp rank holds a slice. A
 * tensor replicated over the tp ranks comes from tp rank 0 only, so that the parts of all ranks tile each
 * dataset exactly (each rank writes its part, and the checksums are joined from the parts). */
static int owned(const owners *L, const param_info *p, int kind, int r, size_t *a, size_t *b) {
    int dp_rank = r / L->tp;
    size_t valid = (size_t)p->valid_rows * (size_t)p->local_shape[1];
    if (ckpt_holds_full(p) && r % L->tp != 0) {
        *a = *b = 0;
    } else if (kind == CKPT_PARAMS || !L->zero) {
        *a = 0;
        *b = dp_rank == 0 ? valid : 0;
    } else {
        size_t lo, hi;
        zero_slice(L->flat_n, L->dp, dp_rank, &lo, &hi);
        *a = p->offset > lo ? 0 : lo - p->offset;
        *b = p->offset + valid < hi ? valid : hi > p->offset ? hi - p->offset : 0;
    }
    return *a < *b;
}

/* ------------------------------------------------------------------------------------------- tensors */

/* This rank's owned elements [*a, *b) of tensor i of one kind, copied to host (zeros where the moments
 * are not kept). */
static void fetch_owned(model *m, optim_state *opt, const owners *L, int kind, int i, int rank, float *host,
                        size_t *a, size_t *b) {
    param_set ps = model_trainable(m);
    const param_info *p = &ps.table->p[i];
    size_t lo, hi;
    ops_buf *buf = ckpt_kind_buf(&ps, opt, kind, &lo, &hi);
    if (!owned(L, p, kind, rank, a, b))
        return;
    if (buf)
        m->o->to_host(m->o, host, (ops_ptr){buf, p->offset + *a - lo}, *b - *a);
    else
        memset(host, 0, (*b - *a) * sizeof *host);
}

/* Writes tensor i of one kind: every rank its owned elements as hyperslabs of the global array, in writes
 * of at most coll_chunk() elements, with the block checksums joined from every rank's runs. Collective:
 * every rank returns the same result. */
static int write_tensor(hid_t g, model *m, optim_state *opt, const owners *L, int kind, int i, float *host,
                        MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    const param_info *p = &model_trainable(m).table->p[i];
    size_t a = 0, b = 0, chunk = coll_chunk();
    fetch_owned(m, opt, L, kind, i, rank, host, &a, &b);
    uint32_t *crc = ckpt_shard_crcs(p, a, b, host, comm);
    hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
    hid_t d = ckpt_create_dataset(g, p->name, p->ndim, dims);
    int rc = ckpt_agree(d < 0, NULL, comm), failed = 0;
    for (size_t sa = a; sa < b && !rc && !failed; sa += chunk) { /* pieces of at most chunk elements */
        size_t sb = sa + chunk < b ? sa + chunk : b;
        ckpt_part part = ckpt_shard_part(p, sa, sb, host + (sa - a));
        failed = ckpt_write_part(d, &part);
        watchdog_progress();
    }
    if (!rc)
        rc = ckpt_agree(failed, NULL, comm);
    if (!rc)
        rc = ckpt_agree(ckpt_put_crcs(d, crc, ckpt_crc_blocks(ckpt_numel(p))), NULL, comm);
    if (d >= 0)
        H5Dclose(d);
    free(crc);
    return rc;
}

static int write_tensors(hid_t f, const char *tmp, model *m, optim_state *opt, MPI_Comm comm, mt_err *err) {
    const param_table *t = model_trainable(m).table;
    size_t biggest = 0;
    for (int i = 0; i < t->n; i++)
        biggest = t->p[i].numel > biggest ? t->p[i].numel : biggest;
    float *host = mt_malloc(biggest * sizeof *host);
    owners L = owners_of(m, opt);
    int rc = 0;
    for (int kind = 0; kind < CKPT_N_KINDS && !rc; kind++) {
        hid_t g = ckpt_make_group(f, ckpt_group(kind));
        rc = ckpt_agree(g < 0, NULL, comm)
                 ? mt_fail(err, "%s: cannot create group /%s", tmp, ckpt_group(kind))
                 : 0;
        for (int i = 0; i < t->n && !rc; i++)
            if (write_tensor(g, m, opt, &L, kind, i, host, comm))
                rc = mt_fail(err, "%s: cannot write dataset /%s/%s (disk full or I/O error)", tmp,
                             ckpt_group(kind), t->p[i].name);
        if (g >= 0)
            H5Gclose(g);
    }
    free(host);
    return rc;
}

/* A checkpoint never holds non-finite parameters: the first such tensor of this rank's shard is named. */
static int check_finite(model *m, long step, mt_err *err) {
    param_set ps = model_trainable(m);
    for (int i = 0; i < ps.table->n; i++) {
        const param_info *p = &ps.table->p[i];
        if (!isfinite(m->o->sumsq(m->o, (ops_ptr){ps.params, p->offset}, p->numel)))
            return mt_fail(
                err,
                "step %ld: parameter %s holds NaN or infinite values; no checkpoint is written (the "
                "previous one stays latest)",
                step, p->name);
    }
    return 0;
}

/* After a failed write: gives the file's space back first, so that the few metadata bytes HDF5 flushes
 * on close fit (a close that fails leaves HDF5 in a state that crashes at exit), then closes and deletes. */
void ckpt_discard(hid_t f, const char *tmp, MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0)
        truncate(tmp, 0); /* on failure there is nothing to give back; the close may still fit */
    coll_barrier(comm, "the barrier before closing a failed checkpoint");
    if (H5Fclose(f) < 0)
        h5_mark_broken();
    if (rank == 0)
        unlink(tmp);
}

/* The HDF5 file tmp through MPI-IO, collectively: created, its space reserved, written, closed; on a
 * failure, discarded. Every rank returns the same result. */
static int write_file(const char *tmp, uint64_t bytes, const ckpt_meta *meta, model *m, optim_state *opt,
                      MPI_Comm comm, mt_err *err) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    hid_t f = ckpt_create(tmp, comm);
    int rc =
        f < 0 ? mt_fail(err, "%s: cannot create checkpoint file (does the folder exist and is it writable?)",
                        tmp)
              : 0;
    if (ckpt_agree(rc, err, comm)) {
        if (f >= 0)
            H5Fclose(f);
        return -1;
    }
    rc = ckpt_agree(rank == 0 ? ckpt_reserve(tmp, bytes, err) : 0, err, comm);
    if (!rc)
        rc = ckpt_agree(ckpt_write_meta(f, meta) ? mt_fail(err, "%s: cannot write attributes", tmp) : 0, err,
                        comm);
    if (!rc)
        rc = write_tensors(f, tmp, m, opt, comm, err);
    if (!rc)
        rc = ckpt_agree(H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? mt_fail(err, "%s: cannot flush (disk full?)", tmp)
                                                          : 0,
                        err, comm);
    if (rc) {
        ckpt_discard(f, tmp, comm);
        return -1;
    }
    if (H5Fclose(f) < 0) {
        h5_mark_broken();
        rc = mt_fail(err, "%s: cannot close (disk full?)", tmp);
    }
    return ckpt_agree(rc, err, comm);
}

int ckpt_save(const char *dir, const ckpt_meta *meta, model *m, optim_state *opt, int keep_last,
              int keep_every, MPI_Comm comm, mt_err *err) {
    h5_quiet();
    int rank;
    MPI_Comm_rank(comm, &rank);
    char name[64], tmp[4096];
    snprintf(name, sizeof name, "step_%ld.h5", meta->step);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    uint64_t bytes = ckpt_file_bytes(model_trainable(m).table, meta, CKPT_N_KINDS);
    if (ckpt_agree(check_finite(m, meta->step, err), err, comm) ||
        ckpt_agree(rank == 0 ? ckpt_check_space(dir, name, bytes, err) : 0, err, comm))
        return -1;
    /* HDF5 creates datasets and attributes in collectives of its own, which block without a timeout: a
     * watchdog guards them. */
    static char guarded[128];
    snprintf(guarded, sizeof guarded, "the write of checkpoint %s", name);
    watchdog_arm(guarded);
    int rc = write_file(tmp, bytes, meta, m, opt, comm, err);
    watchdog_disarm();
    if (rc)
        return -1;
    if (rank == 0) {
        rc = ckpt_publish(dir, tmp, name, err);
        if (!rc)
            ckpt_prune(dir, meta->step, keep_last, keep_every);
        else
            unlink(tmp);
    }
    return ckpt_agree(rc, err, comm);
}
