/* Collectives on host memory over an MPI communicator, as every part of the project issues them
 * (DESIGN 5, 8):
 *  - 64-bit counts: MPI takes int counts, so a call is cut into pieces of at most coll_chunk() elements
 *    (MT_CHUNK_ELEMS, default 2^28; tests set it tiny so that every piece boundary is exercised);
 *  - no hang: a collective that has not completed after MT_COMM_TIMEOUT seconds (default 600) ends the
 *    job with one line naming the operation, the group and the ranks that never arrived;
 *  - no spinning: a rank that waits long sleeps between polls instead of burning its core;
 *  - agreement: coll_agree makes every rank leave together when any rank failed, with the failing
 *    rank's message (and its rank) on every rank.
 * `what` names the operation and group for that line, e.g. "all-reduce on the dp group". */
#ifndef MT_COLL_H
#define MT_COLL_H

#include <mpi.h>
#include <stddef.h>

#include "base/common.h"
#include "base/mpi_check.h"

/* Largest element count of one MPI (or MPI-IO) call. */
size_t coll_chunk(void);
/* Seconds a collective may take before the job is ended (MT_COMM_TIMEOUT). */
double coll_timeout(void);

void coll_allreduce(MPI_Comm c, void *buf, size_t n, MPI_Datatype t, MPI_Op op, const char *what);
/* full [size * n]; rank r gets the sum of block r into out [n]. */
void coll_reduce_scatter(MPI_Comm c, const void *full, void *out, size_t n, MPI_Datatype t, const char *what);
/* full [size * n], in place: block r comes from rank r. */
void coll_allgather(MPI_Comm c, void *full, size_t n, MPI_Datatype t, const char *what);
void coll_bcast(MPI_Comm c, void *buf, size_t n, MPI_Datatype t, int root, const char *what);
void coll_barrier(MPI_Comm c, const char *what);
/* Bytes: rank r's `n` bytes (n may differ per rank) concatenated in rank order into a new buffer on root
 * (NULL elsewhere); *total gets its length on root. */
void *coll_gather_bytes(MPI_Comm c, const void *mine, size_t n, int root, size_t *total, const char *what);

/* Collective: 0 on every rank when no rank failed, else -1 on every rank, with err (may be NULL) holding
 * the message of the lowest failing rank, prefixed "rank R: " (R its rank in MPI_COMM_WORLD) when the
 * world has more than one rank. */
int coll_agree(MPI_Comm c, int failed, mt_err *err);

#endif
