/* ZeRO-1 (DESIGN 5): the one place that knows how a flat buffer (parameters, gradients, Adam moments) is
 * split over the data-parallel ranks. A flat buffer's length is a multiple of zero_align(dp); dp rank r
 * owns the r-th of dp equal contiguous slices (in the dp-rank order of parallel/comm.c), updates only that
 * slice and keeps the Adam moments of it alone. */
#ifndef MT_ZERO_H
#define MT_ZERO_H

#include <stddef.h>

#include "model/ops.h"
#include "parallel/comm.h"

/* The multiple a flat buffer's length is padded to: equal slices of 16-element (64-byte) alignment. */
static inline size_t zero_align(int dp) { return 16 * (size_t)dp; }

/* The slice [*lo, *hi) of a flat buffer of n elements (a multiple of zero_align(dp)) that dp rank r owns. */
static inline void zero_slice(size_t n, int dp, int r, size_t *lo, size_t *hi) {
    size_t slice = n / (size_t)dp;
    *lo = slice * (size_t)r;
    *hi = *lo + slice;
}

/* The gradient of n flat elements summed over the dp group: with slice (ZeRO-1) only this rank's slice,
 * reduce-scattered into slice; without, all of grads in place (all-reduce). */
void zero_reduce_grads(comm_ctx *c, ops *o, ops_buf *grads, ops_buf *slice, size_t n);

/* Every dp rank's updated slice of params (n flat elements) into every rank's copy (all-gather). */
void zero_gather_params(comm_ctx *c, ops *o, ops_buf *params, size_t n);

#endif
