#include "parallel/comm.h"

#include <string.h>

#include "parallel/coll.h"
#include "parallel/zero.h"

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
    if (c->dev)
        c->dev->free(c->dev->ctx);
    for (int g = 0; g < COMM_N_GROUPS; g++)
        if (c->comm[g] != MPI_COMM_NULL && c->comm[g])
            MPI_Comm_free(&c->comm[g]);
}

void comm_reset_stats(comm_ctx *c) {
    memset(c->bytes, 0, sizeof c->bytes);
    memset(c->calls, 0, sizeof c->calls);
    c->seconds = 0;
}

/* MPI never receives a device buffer (DESIGN 4): host memory goes to MPI, device memory to the device
 * collectives (NCCL), which a device backend attaches with comm_attach_device. */
static void *host(ops *o, ops_ptr p) {
    void *h = o->host_ptr(o, p);
    CHECK(!h || !mt_is_device_memory(h), "backend %s handed device memory to MPI as a host address", o->name);
    return h;
}

static const comm_device *device(comm_ctx *c, ops *o) {
    CHECK(c->dev, "backend %s buffer in a collective but no device communicator is attached", o->name);
    return c->dev;
}

static MPI_Datatype mpi_type(ops *o, ops_ptr p) {
    ops_dtype t = o->dtype(o, p);
    CHECK(t == OPS_F32 || t == OPS_I32, "MPI collective on a buffer of dtype %d", (int)t);
    return t == OPS_F32 ? MPI_FLOAT : MPI_INT;
}

static double elem_bytes(ops *o, ops_ptr p) { return o->dtype(o, p) == OPS_BF16 ? 2.0 : 4.0; }

/* "all-reduce on the tp group": what a timeout message names. */
static const char *what(comm_group g, comm_kind k) {
    static const char *const NAMES[COMM_N_GROUPS][COMM_N_KINDS] = {
        {"all-reduce on the tp group", "reduce-scatter on the tp group", "all-gather on the tp group",
         "broadcast on the tp group"},
        {"all-reduce on the dp group", "reduce-scatter on the dp group", "all-gather on the dp group",
         "broadcast on the dp group"},
        {"all-reduce on the world", "reduce-scatter on the world", "all-gather on the world",
         "broadcast on the world"}};
    return NAMES[g][k];
}

static MPI_Op mpi_op(comm_op op) { return op == COMM_SUM ? MPI_SUM : MPI_MAX; }

static void count(comm_ctx *c, comm_group g, comm_kind k, double bytes, double t0) {
    c->bytes[g][k] += bytes;
    c->calls[g][k]++;
    c->seconds += mt_now() - t0;
}

void comm_attach_device(comm_ctx *c, const comm_device *dev) { c->dev = dev; }

void comm_allreduce(comm_ctx *c, comm_group g, comm_op op, ops *o, ops_ptr buf, size_t n) {
    if (c->size[g] == 1 || n == 0)
        return;
    double t0 = mt_now();
    void *h = host(o, buf);
    if (h)
        coll_allreduce(c->comm[g], h, n, mpi_type(o, buf), mpi_op(op), what(g, COMM_ALLREDUCE));
    else
        device(c, o)->allreduce(c->dev->ctx, g, op, o->device_ptr(o, buf), n, o->dtype(o, buf), o->stream(o));
    count(c, g, COMM_ALLREDUCE, elem_bytes(o, buf) * n, t0);
}

void comm_reduce_scatter(comm_ctx *c, comm_group g, ops *o, ops_ptr full, ops_ptr out, size_t n) {
    if (c->size[g] == 1) {
        o->copy(o, out, full, n);
        return;
    }
    double t0 = mt_now();
    void *h = host(o, full);
    if (h)
        coll_reduce_scatter(c->comm[g], h, host(o, out), n, mpi_type(o, full), what(g, COMM_REDUCE_SCATTER));
    else
        device(c, o)->reduce_scatter(c->dev->ctx, g, o->device_ptr(o, full), o->device_ptr(o, out), n,
                                     o->dtype(o, full), o->stream(o));
    count(c, g, COMM_REDUCE_SCATTER, elem_bytes(o, full) * n * c->size[g], t0);
}

void comm_allgather(comm_ctx *c, comm_group g, ops *o, ops_ptr full, size_t n) {
    if (c->size[g] == 1)
        return;
    double t0 = mt_now();
    void *h = host(o, full);
    if (h)
        coll_allgather(c->comm[g], h, n, mpi_type(o, full), what(g, COMM_ALLGATHER));
    else
        device(c, o)->allgather(c->dev->ctx, g, o->device_ptr(o, full), n, o->dtype(o, full), o->stream(o));
    count(c, g, COMM_ALLGATHER, elem_bytes(o, full) * n * c->size[g], t0);
}

void comm_broadcast(comm_ctx *c, comm_group g, ops *o, ops_ptr buf, size_t n, int root) {
    if (c->size[g] == 1)
        return;
    double t0 = mt_now();
    void *h = host(o, buf);
    if (h)
        coll_bcast(c->comm[g], h, n, mpi_type(o, buf), root, what(g, COMM_BROADCAST));
    else
        device(c, o)->broadcast(c->dev->ctx, g, o->device_ptr(o, buf), n, o->dtype(o, buf), root,
                                o->stream(o));
    count(c, g, COMM_BROADCAST, elem_bytes(o, buf) * n, t0);
}

void comm_allreduce_host(comm_ctx *c, comm_group g, comm_op op, double *x, int n) {
    if (c->size[g] == 1)
        return;
    double t0 = mt_now();
    coll_allreduce(c->comm[g], x, (size_t)n, MPI_DOUBLE, mpi_op(op), what(g, COMM_ALLREDUCE));
    count(c, g, COMM_ALLREDUCE, 8.0 * n, t0);
}

void comm_allgather_host(comm_ctx *c, comm_group g, const double *mine, double *all, size_t n) {
    memmove(all + (size_t)c->rank[g] * n, mine, n * sizeof *all);
    if (c->size[g] == 1)
        return;
    double t0 = mt_now();
    coll_allgather(c->comm[g], all, n, MPI_DOUBLE, what(g, COMM_ALLGATHER));
    count(c, g, COMM_ALLGATHER, 8.0 * (double)n * c->size[g], t0);
}

void comm_broadcast_host(comm_ctx *c, comm_group g, void *buf, size_t n, int root) {
    if (c->size[g] == 1)
        return;
    double t0 = mt_now();
    coll_bcast(c->comm[g], buf, n, MPI_BYTE, root, what(g, COMM_BROADCAST));
    count(c, g, COMM_BROADCAST, (double)n, t0);
}

int comm_agree(comm_ctx *c, int failed, mt_err *err) { return coll_agree(c->comm[COMM_WORLD], failed, err); }

static void layout_tp_allreduce(void *ctx, layout_op op, ops *o, ops_ptr buf, size_t n) {
    comm_allreduce(ctx, COMM_TP, op == LAYOUT_MAX ? COMM_MAX : COMM_SUM, o, buf, n);
}

model_layout comm_model_layout(comm_ctx *c) {
    return (model_layout){.tp_rank = c->rank[COMM_TP],
                          .tp_size = c->size[COMM_TP],
                          .dp_rank = c->rank[COMM_DP],
                          .dp_size = c->size[COMM_DP],
                          .flat_align = zero_align(c->size[COMM_DP]),
                          .ctx = c,
                          .tp_allreduce = layout_tp_allreduce};
}
