/* Pieces of the checkpoint module shared by its files (not part of the API). */
#ifndef MT_CKPT_INTERNAL_H
#define MT_CKPT_INTERNAL_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/h5.h"
#include "parallel/coll.h"
#include "train/ckpt.h"

/* The three tensor kinds of a checkpoint, in file order, and the group each lives in. */
enum { CKPT_PARAMS, CKPT_M, CKPT_V, CKPT_N_KINDS };
static inline const char *ckpt_group(int kind) {
    return kind == CKPT_PARAMS ? "params" : kind == CKPT_M ? "optim/m" : "optim/v";
}

/* The flat buffer of a kind of parameter set ps and the flat offsets [*lo, *hi) it covers (NULL: moments
 * not kept). */
static inline ops_buf *ckpt_kind_buf(const param_set *ps, optim_state *opt, int kind, size_t *lo,
                                     size_t *hi) {
    *lo = 0;
    *hi = ps->flat_n;
    if (kind == CKPT_PARAMS)
        return ps->params;
    if (!opt)
        return NULL;
    *lo = opt->lo;
    *hi = opt->hi;
    return kind == CKPT_M ? opt->m : opt->v;
}

/* Elements of tensor p's global (unsharded, unpadded) array: what its dataset holds. */
static inline size_t ckpt_numel(const param_info *p) { return (size_t)p->shape[0] * (size_t)p->shape[1]; }

/* Whether this rank's shard of p is the whole global tensor (tp = 1, or a replicated tensor). */
static inline int ckpt_holds_full(const param_info *p) {
    return p->row_start == 0 && p->col_start == 0 && p->valid_rows == p->shape[0] &&
           p->local_shape[1] == p->shape[1];
}

/* Every rank returns the same result: when any rank failed, all get the lowest failing rank's message. */
static inline int ckpt_agree(int rc, mt_err *err, MPI_Comm comm) { return coll_agree(comm, rc != 0, err); }

/* ckpt_meta.c: the root attributes (format, version, ckpt_meta and their checksum) every checkpoint
 * carries, written and read (and validated; one-line error naming path) the same way by every writer and
 * reader. */
int ckpt_write_meta(hid_t f, const ckpt_meta *meta);
int ckpt_read_meta(hid_t f, const char *path, ckpt_meta *meta, mt_err *err);

/* ckpt_save.c: the cleanup of a file whose write failed (collective over comm): its space is given back,
 * it is closed and deleted. */
void ckpt_discard(hid_t f, const char *tmp, MPI_Comm comm);

/* ckpt_verify.c: ckpt_verify's checks of one file by this process alone. */
int ckpt_verify_file(const char *path, mt_err *err);

/* ckpt_h5.c: files, groups and datasets (attributes: base/h5.h). */
/* Creates (truncates) the file path for writing through MPI-IO over comm, collectively; < 0 on failure. */
hid_t ckpt_create(const char *path, MPI_Comm comm);
/* Opens a checkpoint read-only; < 0 with a one-line error naming path when it is unreadable or not HDF5. */
hid_t ckpt_open(const char *path, mt_err *err);
/* A group created with the project's HDF5 properties (no timestamps), with its intermediate groups. */
hid_t ckpt_make_group(hid_t file, const char *name);

/* The part of a dataset one rank writes: the union of n (0 to 3) [count] blocks at [start] of the global
 * shape (a flat range of a shard: partial first row, full rows, partial last row), whose elements `data`
 * holds in global row-major order, the order in which HDF5 transfers a union selection; a 1-D dataset is
 * one column (count[k][1] = 1). */
typedef struct {
    int n;
    hsize_t start[3][2], count[3][2];
    const float *data;
} ckpt_part;

/* Creates the contiguous float32 dataset `name` (ndim, dims) in loc, allocated at once; < 0 on failure.
 * Collective. */
hid_t ckpt_create_dataset(hid_t loc, const char *name, int ndim, const hsize_t *dims);
/* Writes a non-empty part of dataset d from this rank alone (independent MPI-IO). */
int ckpt_write_part(hid_t d, const ckpt_part *part);
/* Attaches the block checksums `crc` (n values, identical on every rank) as attribute crc32c. */
int ckpt_put_crcs(hid_t d, const uint32_t *crc, size_t n);

/* Reads the whole float32 dataset `name` (n elements expected) into out and checks every block against
 * its `crc32c` attribute; a one-line error naming path and dataset otherwise. */
int ckpt_read_dataset(hid_t file, const char *path, const char *name, size_t n, float *out, mt_err *err);

/* Global shape of dataset `name`: its rank (1 or 2), or -1 when missing or not a float32 1-D/2-D dataset. */
int ckpt_dataset_shape(hid_t file, const char *name, hsize_t dims[2]);

/* ckpt_part.c: what one rank writes of a tensor's shard: local flat indices [a, b) of p's shard (values
 * in data) as a part of the global array, and the block checksums of the whole dataset joined from every
 * rank's pieces (collective over comm: every rank gets the same array, ckpt_crc_blocks(numel) values). */
ckpt_part ckpt_shard_part(const param_info *p, size_t a, size_t b, const float *data);
uint32_t *ckpt_shard_crcs(const param_info *p, size_t a, size_t b, const float *data, MPI_Comm comm);

/* ckpt_files.c: the directory side. */
/* Steps of DIR/step_<N>.h5 files (not .tmp), ascending; returns the count (*steps malloc'd) or -1. */
int ckpt_list_steps(const char *dir, long **steps);
/* Bytes a checkpoint of the tensors of t takes with n_kinds copies of each (1: parameters only; 3: with
 * Adam's m and v): float32 data, block checksums, and room for HDF5's object headers and meta's root
 * attributes. */
uint64_t ckpt_file_bytes(const param_table *t, const ckpt_meta *meta, int n_kinds);
/* Whether DIR's file system has `bytes` free for checkpoint NAME; a one-line error otherwise. */
int ckpt_check_space(const char *dir, const char *name, uint64_t bytes, mt_err *err);
/* Reserves `bytes` for the file at path (fallocate), so that a full disk fails here rather than in the
 * middle of HDF5's writes; nothing is done where the file system cannot reserve. */
int ckpt_reserve(const char *path, uint64_t bytes, mt_err *err);
/* fsyncs tmp, renames it to final, fsyncs the folder: a crash leaves final old or new, never partial. */
int ckpt_commit(const char *tmp, const char *final, mt_err *err);
/* fsyncs tmp, renames it to DIR/NAME, fsyncs DIR, and points DIR/latest at NAME through DIR/latest.tmp. */
int ckpt_publish(const char *dir, const char *tmp, const char *name, mt_err *err);
/* Deletes DIR/step_N.h5 files outside the newest keep_last and the multiples of keep_every, never the one
 * at step `current` (a resumed run may find newer steps left by an earlier one). */
void ckpt_prune(const char *dir, long current, int keep_last, int keep_every);

#endif
