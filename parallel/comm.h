/* Process groups and collectives (DESIGN 5). World = dp x tp with tp ranks consecutive; the groups come
 * from MPI_Comm_split. Collectives act on backend buffers and count their logical payload bytes per
 * group and kind, so a step can report (and a test can check) its communication. */
#ifndef MT_COMM_H
#define MT_COMM_H

#include <mpi.h>

#include "base/common.h"
#include "model/layout.h"
#include "model/ops.h"

typedef enum { COMM_TP, COMM_DP, COMM_WORLD, COMM_N_GROUPS } comm_group;
typedef enum { COMM_ALLREDUCE, COMM_REDUCE_SCATTER, COMM_ALLGATHER, COMM_BROADCAST, COMM_N_KINDS } comm_kind;
typedef enum { COMM_SUM, COMM_MAX } comm_op;

/* Collectives on device memory (NCCL, parallel/cuda/), attached by a device backend. Each call returns
 * when the collective has completed; stream is the backend's compute stream, whose earlier work the
 * collective waits for. */
typedef struct {
    void *ctx;
    void (*allreduce)(void *ctx, comm_group g, comm_op op, void *buf, size_t n, ops_dtype t, void *stream);
    void (*reduce_scatter)(void *ctx, comm_group g, const void *full, void *out, size_t n, ops_dtype t,
                           void *stream);
    void (*allgather)(void *ctx, comm_group g, void *full, size_t n, ops_dtype t, void *stream);
    void (*broadcast)(void *ctx, comm_group g, void *buf, size_t n, ops_dtype t, int root, void *stream);
    void (*free)(void *ctx);
} comm_device;

typedef struct {
    MPI_Comm comm[COMM_N_GROUPS];
    int rank[COMM_N_GROUPS], size[COMM_N_GROUPS];
    double bytes[COMM_N_GROUPS][COMM_N_KINDS]; /* logical payload since the last comm_reset_stats */
    long calls[COMM_N_GROUPS][COMM_N_KINDS];
    double seconds;         /* time spent inside collectives */
    const comm_device *dev; /* NULL: every buffer is in host memory */
} comm_ctx;

/* Splits `world` (MPI_COMM_WORLD for a job) into tp groups of consecutive ranks and dp groups across
 * them. tp must divide the world size. */
int comm_init(comm_ctx *c, MPI_Comm world, int tp, mt_err *err);
void comm_free(comm_ctx *c);
void comm_reset_stats(comm_ctx *c);
/* This rank's layout as the model sees it (model/layout.h), its tensor-parallel sums routed to c. */
model_layout comm_model_layout(comm_ctx *c);
/* Routes collectives on device buffers to dev; comm_free frees it. */
void comm_attach_device(comm_ctx *c, const comm_device *dev);

/* In place on n elements of a backend buffer. Payload: n elements (4 bytes each, 2 for bf16). */
void comm_allreduce(comm_ctx *c, comm_group g, comm_op op, ops *o, ops_ptr buf, size_t n);
/* full [size * n] summed over the group; rank r receives block r into out [n]. Payload: size * n elements. */
void comm_reduce_scatter(comm_ctx *c, comm_group g, ops *o, ops_ptr full, ops_ptr out, size_t n);
/* full [size * n]: block r of every rank r is gathered into all. Payload: size * n elements. */
void comm_allgather(comm_ctx *c, comm_group g, ops *o, ops_ptr full, size_t n);
void comm_broadcast(comm_ctx *c, comm_group g, ops *o, ops_ptr buf, size_t n, int root);
/* Host doubles (scalars such as loss sums), in place. Payload: n doubles. */
void comm_allreduce_host(comm_ctx *c, comm_group g, comm_op op, double *x, int n);
/* Host doubles: the n values of every rank of the group, in rank order, into all [size * n], which must
 * may hold mine at block rank. A sum over them in that order gives the same bits on every rank, which an
 * all-reduce does not promise. Payload: size * n doubles. */
void comm_allgather_host(comm_ctx *c, comm_group g, const double *mine, double *all, size_t n);
/* Host bytes from rank root of the group to the others. Payload: n bytes. */
void comm_broadcast_host(comm_ctx *c, comm_group g, void *buf, size_t n, int root);
/* coll_agree over the world: -1 on every rank when any failed, err holding the first failing rank's
 * message with its rank. */
int comm_agree(comm_ctx *c, int failed, mt_err *err);

#endif
