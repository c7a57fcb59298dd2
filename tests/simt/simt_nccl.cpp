/* NCCL subset over MPI. A communicator is an MPI_Comm_split of MPI_COMM_WORLD, so ncclCommInitRank must be
 * called by every rank of MPI_COMM_WORLD, in the same order (ranks outside a group still take part, each
 * with the id of its own group). Buffers must be device memory, as for NCCL; they are staged through host
 * copies so that MPI never sees a device address. Reductions gather every rank's contribution to one owner
 * per chunk and add in rank order, so results are deterministic and identical on all ranks, as NCCL's are.
 * bf16 is reduced in fp32 and rounded once. Calls run synchronously; ncclGroupStart/End do nothing. */
#include "simt_internal.h"

/* Only the C bindings: Open MPI's C++ bindings do not compile cleanly with -Wextra. */
#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <nccl.h>
#include <sys/random.h>
#include <vector>

#include "simt.h"

namespace {
constexpr uint32_t comm_magic = 0xcc11;
}

struct ncclComm {
    uint32_t magic;
    MPI_Comm mpi;
    int rank, nranks;
};

namespace {

ncclComm *comm_of(ncclComm_t c, const char *who) {
    if (!c || c->magic != comm_magic)
        simt_die("%s: %p is not a live NCCL communicator", who, (void *)c);
    return c;
}

size_t type_size(ncclDataType_t t, const char *who) {
    switch (t) {
    case ncclFloat32:
    case ncclInt32:
        return 4;
    case ncclBfloat16:
        return 2;
    default:
        simt_die("%s: data type %d is not emulated (ncclFloat32, ncclBfloat16, ncclInt32)", who, (int)t);
    }
}

int mpi_count(size_t n, const char *who) {
    if (n > INT_MAX)
        simt_die("%s: %zu elements exceed what one MPI call carries here", who, n);
    return (int)n;
}

void check(int rc, const char *what) {
    if (rc != MPI_SUCCESS)
        simt_die("%s failed (MPI error %d)", what, rc);
}

template <typename T> MPI_Datatype mpi_type();
template <> MPI_Datatype mpi_type<float>() { return MPI_FLOAT; }
template <> MPI_Datatype mpi_type<int32_t>() { return MPI_INT; }

/* Host copies of device data in the reduction type: float for fp32 and bf16, int32 for int32. */
template <typename T> std::vector<T> to_host(const void *dev, ncclDataType_t t, size_t n) {
    std::vector<T> h(n);
    if (t == ncclBfloat16)
        for (size_t i = 0; i < n; i++)
            h[i] = (T)__bfloat162float(static_cast<const __nv_bfloat16 *>(dev)[i]);
    else
        std::memcpy(h.data(), dev, n * sizeof(T));
    return h;
}

template <typename T> void from_host(void *dev, ncclDataType_t t, const T *h, size_t n) {
    if (t == ncclBfloat16)
        for (size_t i = 0; i < n; i++)
            static_cast<__nv_bfloat16 *>(dev)[i] = __float2bfloat16((float)h[i]);
    else
        std::memcpy(dev, h, n * sizeof(T));
}

/* Reduces n elements of every rank; rank r gets chunk [starts[r], starts[r+1]) reduced in rank order. */
template <typename T>
std::vector<T> reduce_chunks(const std::vector<T> &in, const std::vector<int> &starts, ncclRedOp_t op,
                             const ncclComm &c) {
    MPI_Datatype mt = mpi_type<T>();
    std::vector<int> scounts(c.nranks), sdispls(c.nranks), rcounts(c.nranks), rdispls(c.nranks);
    int mine = starts[c.rank + 1] - starts[c.rank];
    for (int r = 0; r < c.nranks; r++) {
        scounts[r] = starts[r + 1] - starts[r];
        sdispls[r] = starts[r];
        rcounts[r] = mine;
        rdispls[r] = r * mine;
    }
    std::vector<T> gathered((size_t)mine * c.nranks);
    check(MPI_Alltoallv(in.data(), scounts.data(), sdispls.data(), mt, gathered.data(), rcounts.data(),
                        rdispls.data(), mt, c.mpi),
          "MPI_Alltoallv");
    std::vector<T> out(gathered.begin(), gathered.begin() + mine);
    for (int r = 1; r < c.nranks; r++)
        for (int i = 0; i < mine; i++) {
            T v = gathered[(size_t)r * mine + i];
            out[i] = op == ncclSum ? out[i] + v : (v > out[i] ? v : out[i]);
        }
    return out;
}

void check_op(ncclRedOp_t op, const char *who) {
    if (op != ncclSum && op != ncclMax)
        simt_die("%s: reduction %d is not emulated (ncclSum, ncclMax)", who, (int)op);
}

template <typename T>
void all_reduce(const void *send, void *recv, size_t count, ncclDataType_t t, ncclRedOp_t op,
                const ncclComm &c) {
    int n = mpi_count(count, "ncclAllReduce");
    std::vector<int> starts(c.nranks + 1);
    for (int r = 0; r <= c.nranks; r++)
        starts[r] = (int)((long long)n * r / c.nranks);
    std::vector<T> mine = reduce_chunks(to_host<T>(send, t, count), starts, op, c);
    std::vector<int> counts(c.nranks);
    for (int r = 0; r < c.nranks; r++)
        counts[r] = starts[r + 1] - starts[r];
    std::vector<T> all(count);
    MPI_Datatype mt = mpi_type<T>();
    check(MPI_Allgatherv(mine.data(), (int)mine.size(), mt, all.data(), counts.data(), starts.data(), mt,
                         c.mpi),
          "MPI_Allgatherv");
    from_host(recv, t, all.data(), count);
}

template <typename T>
void reduce_scatter(const void *send, void *recv, size_t recvcount, ncclDataType_t t, ncclRedOp_t op,
                    const ncclComm &c) {
    int n = mpi_count(recvcount, "ncclReduceScatter");
    mpi_count(recvcount * c.nranks, "ncclReduceScatter");
    std::vector<int> starts(c.nranks + 1);
    for (int r = 0; r <= c.nranks; r++)
        starts[r] = n * r;
    std::vector<T> mine = reduce_chunks(to_host<T>(send, t, recvcount * c.nranks), starts, op, c);
    from_host(recv, t, mine.data(), recvcount);
}

void check_buffers(const void *send, size_t send_bytes, const void *recv, size_t recv_bytes,
                   const char *who) {
    char what[64];
    snprintf(what, sizeof what, "%s sendbuff", who);
    simt_check_device_range(send, send_bytes, what);
    snprintf(what, sizeof what, "%s recvbuff", who);
    simt_check_device_range(recv, recv_bytes, what);
}

} // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
    if (!uniqueId)
        simt_die("ncclGetUniqueId: NULL id");
    if (getrandom(uniqueId->internal, sizeof uniqueId->internal, 0) != (ssize_t)sizeof uniqueId->internal)
        simt_die("ncclGetUniqueId: getrandom failed");
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId, int rank) {
    int inited = 0, world = 0;
    MPI_Initialized(&inited);
    if (!inited)
        simt_die("ncclCommInitRank: MPI is not initialized (the emulated NCCL runs over MPI_COMM_WORLD)");
    if (!comm)
        simt_die("ncclCommInitRank: NULL comm");
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (nranks < 1 || nranks > world || rank < 0 || rank >= nranks)
        simt_die("ncclCommInitRank: rank %d of %d in a world of %d", rank, nranks, world);
    int color;
    std::memcpy(&color, commId.internal, sizeof color);
    color &= INT_MAX;
    MPI_Comm split;
    check(MPI_Comm_split(MPI_COMM_WORLD, color, rank, &split), "ncclCommInitRank: MPI_Comm_split");
    int size, got;
    MPI_Comm_size(split, &size);
    MPI_Comm_rank(split, &got);
    if (size != nranks || got != rank)
        simt_die(
            "ncclCommInitRank: the ranks holding this id form a group of %d where rank %d of %d was "
            "requested "
            "(every rank of MPI_COMM_WORLD must call ncclCommInitRank in the same order, one id per group)",
            size, rank, nranks);
    *comm = new ncclComm{comm_magic, split, rank, nranks};
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    ncclComm *c = comm_of(comm, "ncclCommDestroy");
    MPI_Comm_free(&c->mpi);
    c->magic = 0;
    delete c;
    return ncclSuccess;
}

/* Unlike destroy, abort must not wait for the peers (one of them may be the reason for the abort), so the
 * MPI communicator is left to MPI_Abort or MPI_Finalize. */
ncclResult_t ncclCommAbort(ncclComm_t comm) {
    ncclComm *c = comm_of(comm, "ncclCommAbort");
    c->magic = 0;
    delete c;
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
    comm_of(comm, "ncclCommGetAsyncError");
    if (!asyncError)
        simt_die("ncclCommGetAsyncError: NULL result pointer");
    /* Failure injection for the tests of the caller's abort path: SIMT_NCCL_ASYNC_ERROR=1 reports the error
     * a dead peer or a broken link would raise. */
    const char *inject = getenv("SIMT_NCCL_ASYNC_ERROR");
    *asyncError = inject && !strcmp(inject, "1") ? ncclRemoteError : ncclSuccess;
    return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count) {
    *count = comm_of(comm, "ncclCommCount")->nranks;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank) {
    *rank = comm_of(comm, "ncclCommUserRank")->rank;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error";
    case ncclSystemError:
        return "unhandled system error";
    case ncclInternalError:
        return "internal error";
    case ncclInvalidArgument:
        return "invalid argument";
    case ncclInvalidUsage:
        return "invalid usage";
    case ncclRemoteError:
        return "remote process exited or there was a network error";
    case ncclInProgress:
        return "NCCL operation in progress";
    default:
        return "unknown result code";
    }
}

ncclResult_t ncclGroupStart() { return ncclSuccess; }
ncclResult_t ncclGroupEnd() { return ncclSuccess; }

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                           ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream) {
    const char *who = "ncclAllReduce";
    const ncclComm &c = *comm_of(comm, who);
    simt_check_stream(stream, who);
    check_op(op, who);
    size_t bytes = count * type_size(datatype, who);
    check_buffers(sendbuff, bytes, recvbuff, bytes, who);
    if (sendbuff != recvbuff && simt_overlap(sendbuff, bytes, recvbuff, bytes))
        simt_die("%s: send and receive buffers overlap without being the same", who);
    if (datatype == ncclInt32)
        all_reduce<int32_t>(sendbuff, recvbuff, count, datatype, op, c);
    else
        all_reduce<float>(sendbuff, recvbuff, count, datatype, op, c);
    return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream) {
    const char *who = "ncclReduceScatter";
    const ncclComm &c = *comm_of(comm, who);
    simt_check_stream(stream, who);
    check_op(op, who);
    size_t es = type_size(datatype, who), bytes = recvcount * es;
    check_buffers(sendbuff, bytes * c.nranks, recvbuff, bytes, who);
    /* in place means recvbuff is this rank's chunk of sendbuff */
    if (recvbuff != static_cast<const char *>(sendbuff) + c.rank * bytes &&
        simt_overlap(sendbuff, bytes * c.nranks, recvbuff, bytes))
        simt_die("%s: recvbuff overlaps sendbuff without being this rank's chunk of it", who);
    if (datatype == ncclInt32)
        reduce_scatter<int32_t>(sendbuff, recvbuff, recvcount, datatype, op, c);
    else
        reduce_scatter<float>(sendbuff, recvbuff, recvcount, datatype, op, c);
    return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
    const char *who = "ncclAllGather";
    const ncclComm &c = *comm_of(comm, who);
    simt_check_stream(stream, who);
    size_t bytes = sendcount * type_size(datatype, who);
    check_buffers(sendbuff, bytes, recvbuff, bytes * c.nranks, who);
    /* in place means sendbuff is this rank's chunk of recvbuff */
    if (sendbuff != static_cast<const char *>(recvbuff) + c.rank * bytes &&
        simt_overlap(sendbuff, bytes, recvbuff, bytes * c.nranks))
        simt_die("%s: sendbuff overlaps recvbuff without being this rank's chunk of it", who);
    int n = mpi_count(bytes, who);
    mpi_count(bytes * c.nranks, who);
    std::vector<char> send(static_cast<const char *>(sendbuff), static_cast<const char *>(sendbuff) + bytes);
    std::vector<char> recv(bytes * c.nranks);
    check(MPI_Allgather(send.data(), n, MPI_BYTE, recv.data(), n, MPI_BYTE, c.mpi), "MPI_Allgather");
    std::memcpy(recvbuff, recv.data(), recv.size());
    return ncclSuccess;
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count, ncclDataType_t datatype,
                           int root, ncclComm_t comm, cudaStream_t stream) {
    const char *who = "ncclBroadcast";
    const ncclComm &c = *comm_of(comm, who);
    simt_check_stream(stream, who);
    if (root < 0 || root >= c.nranks)
        simt_die("%s: root %d outside 0..%d", who, root, c.nranks - 1);
    size_t bytes = count * type_size(datatype, who);
    int n = mpi_count(bytes, who);
    simt_check_device_range(recvbuff, bytes, "ncclBroadcast recvbuff");
    std::vector<char> buf(bytes);
    if (c.rank == root) {
        simt_check_device_range(sendbuff, bytes, "ncclBroadcast sendbuff");
        if (sendbuff != recvbuff && simt_overlap(sendbuff, bytes, recvbuff, bytes))
            simt_die("%s: send and receive buffers overlap without being the same", who);
        std::memcpy(buf.data(), sendbuff, bytes);
    }
    check(MPI_Bcast(buf.data(), n, MPI_BYTE, root, c.mpi), "MPI_Bcast");
    std::memcpy(recvbuff, buf.data(), bytes);
    return ncclSuccess;
}
