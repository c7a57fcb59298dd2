#include "comm.h"

#include <string.h>

#define MPI_CHECK(call)                                                                                      \
    do {                                                                                                     \
        int rc_ = (call);                                                                                    \
        CHECK(rc_ == MPI_SUCCESS, "%s failed with MPI error %d", #call, rc_);                                \
    } while (0)

int comm_init(comm_ctx *c, MPI_Comm world_comm, int tp, mt_err *err) {
    memset(c, 0, sizeof *c);
    int world, rank;
    MPI_Comm_size(world_comm, &world);
    MPI_Comm_rank(world_comm, &rank);
    if (tp < 1 || world % tp)
        return mt_fail(err, "parallel.tp = %d does not divide the world size %d", tp, world);
    MPI_CHECK(MPI_Comm_dup(world_comm, &c->comm[COMM_WORLD]));
    MPI_CHECK(MPI_Comm_split(world_comm, rank / tp, rank % tp, &c->comm[COMM_TP]));
    MPI_CHECK(MPI_Comm_split(world_comm, rank % tp, rank / tp, &c->comm[COMM_DP]));
    for (int g = 0; g < COMM_N_GROUPS; g++) {
        MPI_Comm_rank(c->comm[g], &c->rank[g]);
        MPI_Comm_size(c->comm[g], &c->size[g]);
    }
    return 0;
}

void comm_free(comm_ctx *c) {
    for (int g = 0; g < COMM_N_GROUPS; g++)
        if (c->comm[g] != MPI_COMM_NULL && c->comm[g]) MPI_Comm_free(&c->comm[g]);
}

void comm_reset_stats(comm_ctx *c) {
    memset(c->bytes, 0, sizeof c->bytes);
    memset(c->calls, 0, sizeof c->calls);
    c->seconds = 0;
}

/* MPI never receives a device buffer (DESIGN 4): the backend must hand out a host address. */
static void *host(ops *o, ops_ptr p) {
    void *h = o->host_ptr(o, p);
    CHECK(h, "backend %s buffer passed to MPI without a host copy", o->name);
    return h;
}

static void count(comm_ctx *c, comm_group g, comm_kind k, double bytes, double t0) {
    c->bytes[g][k] += bytes;
    c->calls[g][k]++;
    c->seconds += mt_now() - t0;
}

void comm_allreduce(comm_ctx *c, comm_group g, comm_op op, ops *o, ops_ptr buf, size_t n) {
    if (c->size[g] == 1 || n == 0) return;
    double t0 = mt_now();
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, host(o, buf), (int)n, MPI_FLOAT, op == COMM_SUM ? MPI_SUM : MPI_MAX,
                            c->comm[g]));
    count(c, g, COMM_ALLREDUCE, 4.0 * n, t0);
}

void comm_reduce_scatter(comm_ctx *c, comm_group g, ops *o, ops_ptr full, ops_ptr out, size_t n) {
    if (c->size[g] == 1) {
        o->copy(o, out, full, n);
        return;
    }
    double t0 = mt_now();
    MPI_CHECK(MPI_Reduce_scatter_block(host(o, full), host(o, out), (int)n, MPI_FLOAT, MPI_SUM, c->comm[g]));
    count(c, g, COMM_REDUCE_SCATTER, 4.0 * n * c->size[g], t0);
}

void comm_allgather(comm_ctx *c, comm_group g, ops *o, ops_ptr full, size_t n) {
    if (c->size[g] == 1) return;
    double t0 = mt_now();
    MPI_CHECK(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, host(o, full), (int)n, MPI_FLOAT, c->comm[g]));
    count(c, g, COMM_ALLGATHER, 4.0 * n * c->size[g], t0);
}

void comm_broadcast(comm_ctx *c, comm_group g, ops *o, ops_ptr buf, size_t n, int root) {
    if (c->size[g] == 1) return;
    double t0 = mt_now();
    MPI_CHECK(MPI_Bcast(host(o, buf), (int)n, MPI_FLOAT, root, c->comm[g]));
    count(c, g, COMM_BROADCAST, 4.0 * n, t0);
}

void comm_allreduce_host(comm_ctx *c, comm_group g, comm_op op, double *x, int n) {
    if (c->size[g] == 1) return;
    double t0 = mt_now();
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, x, n, MPI_DOUBLE, op == COMM_SUM ? MPI_SUM : MPI_MAX, c->comm[g]));
    count(c, g, COMM_ALLREDUCE, 8.0 * n, t0);
}
