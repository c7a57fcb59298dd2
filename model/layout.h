/* How one rank's model fits a parallel job, as the model sees it (DESIGN 5, SPEC 4). The model owns this
 * small interface so that it never depends on MPI or NCCL: parallel/ fills it in (comm_model_layout) and
 * a single process passes NULL. The model reaches only its tensor-parallel group, through one all-reduce;
 * the data-parallel coordinates are there for the optimizer and the checkpoints, and flat_align for the
 * equal ZeRO-1 slices of the flat buffers (parallel/zero.h). */
#ifndef MT_LAYOUT_H
#define MT_LAYOUT_H

#include <stddef.h>

#include "model/ops.h"

typedef enum { LAYOUT_SUM, LAYOUT_MAX } layout_op;

typedef struct {
    int tp_rank, tp_size; /* this rank's tensor-parallel shard (SPEC 4.2) */
    int dp_rank, dp_size; /* its replica among the data-parallel ones */
    size_t flat_align;    /* flat buffers are padded to a multiple of this */
    void *ctx;            /* passed back to tp_allreduce */
    /* In place over the tensor-parallel group, on n elements of a backend buffer. */
    void (*tp_allreduce)(void *ctx, layout_op op, ops *o, ops_ptr buf, size_t n);
} model_layout;

/* One process: no collective, rank 0 of 1 in both groups, 16-element alignment. */
static inline model_layout layout_single(void) { return (model_layout){0, 1, 0, 1, 16, NULL, NULL}; }

#endif
