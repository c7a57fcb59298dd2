#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include "parallel/cuda/comm_nccl.h"

#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model/cuda/cuda_check.h"

#define NCCL_CHECK(call)                                                                                     \
    do {                                                                                                     \
        ncclResult_t r_ = (call);                                                                            \
        CHECK(r_ == ncclSuccess, "%s: %s", #call, ncclGetErrorString(r_));                                   \
    } while (0)

typedef struct {
    comm_device dev;
    ncclComm_t comm[COMM_N_GROUPS];
    cudaStream_t stream; /* collectives run here, after the compute stream's earlier work */
    cudaEvent_t ready;
    double timeout;
} nccl_ctx;

static ncclDataType_t nccl_type(ops_dtype t) {
    CHECK(t == OPS_F32 || t == OPS_BF16 || t == OPS_I32, "NCCL collective on dtype %d", (int)t);
    return t == OPS_F32 ? ncclFloat32 : t == OPS_BF16 ? ncclBfloat16 : ncclInt32;
}

/* Orders the collective after the compute stream's pending kernels. */
static void begin(nccl_ctx *x, void *compute_stream) {
    CUDA_CHECK(cudaEventRecord(x->ready, (cudaStream_t)compute_stream));
    CUDA_CHECK(cudaStreamWaitEvent(x->stream, x->ready, 0));
}

/* Waits for the collective, polling NCCL's asynchronous error state: a peer that died or a broken link
 * aborts every communicator and the job rather than hanging it. */
static void finish(nccl_ctx *x, comm_group g, const char *what) {
    double t0 = mt_now();
    for (;;) {
        cudaError_t e = cudaStreamQuery(x->stream);
        if (e == cudaSuccess)
            return;
        CHECK(e == cudaErrorNotReady, "cudaStreamQuery: %s", cudaGetErrorString(e));
        ncclResult_t async;
        NCCL_CHECK(ncclCommGetAsyncError(x->comm[g], &async));
        double waited = mt_now() - t0;
        if (async != ncclSuccess || waited > x->timeout) {
            if (async != ncclSuccess)
                fprintf(stderr, "train: NCCL %s: %s; aborting the job\n", what, ncclGetErrorString(async));
            else
                fprintf(stderr,
                        "train: NCCL %s: no completion after %.0f s (MT_NCCL_TIMEOUT); aborting the job\n",
                        what, waited);
            for (int i = 0; i < COMM_N_GROUPS; i++)
                ncclCommAbort(x->comm[i]);
            MPI_Abort(MPI_COMM_WORLD, MT_EXIT_INTERNAL);
        }
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
}

static void nccl_allreduce(void *ctx, comm_group g, comm_op op, void *buf, size_t n, ops_dtype t,
                           void *stream) {
    nccl_ctx *x = ctx;
    begin(x, stream);
    NCCL_CHECK(
        ncclAllReduce(buf, buf, n, nccl_type(t), op == COMM_SUM ? ncclSum : ncclMax, x->comm[g], x->stream));
    finish(x, g, "all-reduce");
}

static void nccl_reduce_scatter(void *ctx, comm_group g, const void *full, void *out, size_t n, ops_dtype t,
                                void *stream) {
    nccl_ctx *x = ctx;
    begin(x, stream);
    NCCL_CHECK(ncclReduceScatter(full, out, n, nccl_type(t), ncclSum, x->comm[g], x->stream));
    finish(x, g, "reduce-scatter");
}

static void nccl_allgather(void *ctx, comm_group g, void *full, size_t n, ops_dtype t, void *stream) {
    nccl_ctx *x = ctx;
    int rank;
    NCCL_CHECK(ncclCommUserRank(x->comm[g], &rank));
    size_t es = t == OPS_BF16 ? 2 : 4;
    begin(x, stream);
    /* In place: this rank's block is already at its offset of the full buffer. */
    NCCL_CHECK(
        ncclAllGather((char *)full + (size_t)rank * n * es, full, n, nccl_type(t), x->comm[g], x->stream));
    finish(x, g, "all-gather");
}

static void nccl_broadcast(void *ctx, comm_group g, void *buf, size_t n, ops_dtype t, int root,
                           void *stream) {
    nccl_ctx *x = ctx;
    begin(x, stream);
    NCCL_CHECK(ncclBroadcast(buf, buf, n, nccl_type(t), root, x->comm[g], x->stream));
    finish(x, g, "broadcast");
}

static void nccl_free(void *ctx) {
    nccl_ctx *x = ctx;
    for (int g = 0; g < COMM_N_GROUPS; g++)
        ncclCommDestroy(x->comm[g]);
    cudaEventDestroy(x->ready);
    cudaStreamDestroy(x->stream);
    free(x);
}

const comm_device *comm_nccl_create(comm_ctx *c, mt_err *err) {
    nccl_ctx *x = mt_calloc(1, sizeof *x);
    const char *t = getenv("MT_NCCL_TIMEOUT");
    x->timeout = t && atof(t) > 0 ? atof(t) : 600;
    CUDA_CHECK(cudaStreamCreateWithFlags(&x->stream, cudaStreamNonBlocking));
    CUDA_CHECK(cudaEventCreateWithFlags(&x->ready, cudaEventDisableTiming));
    /* Every rank initializes the groups in the same order, so no two initializations interleave. */
    for (int g = 0; g < COMM_N_GROUPS; g++) {
        ncclUniqueId id;
        if (c->rank[g] == 0)
            NCCL_CHECK(ncclGetUniqueId(&id));
        CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, c->comm[g]) == MPI_SUCCESS, "MPI_Bcast of the NCCL id");
        ncclResult_t r = ncclCommInitRank(&x->comm[g], c->size[g], id, c->rank[g]);
        if (r != ncclSuccess) {
            for (int i = 0; i < g; i++)
                ncclCommDestroy(x->comm[i]);
            cudaEventDestroy(x->ready);
            cudaStreamDestroy(x->stream);
            free(x);
            mt_fail(err, "NCCL initialization of a group of %d ranks failed: %s", c->size[g],
                    ncclGetErrorString(r));
            return NULL;
        }
    }
    x->dev = (comm_device){.ctx = x,
                           .allreduce = nccl_allreduce,
                           .reduce_scatter = nccl_reduce_scatter,
                           .allgather = nccl_allgather,
                           .broadcast = nccl_broadcast,
                           .free = nccl_free};
    return &x->dev;
}
