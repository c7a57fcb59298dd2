#include "parallel/zero.h"

void zero_reduce_grads(comm_ctx *c, ops *o, ops_buf *grads, ops_buf *slice, size_t n) {
    if (!c || c->size[COMM_DP] == 1)
        return;
    if (slice)
        comm_reduce_scatter(c, COMM_DP, o, (ops_ptr){grads, 0}, (ops_ptr){slice, 0},
                            n / (size_t)c->size[COMM_DP]);
    else
        comm_allreduce(c, COMM_DP, COMM_SUM, o, (ops_ptr){grads, 0}, n);
}

void zero_gather_params(comm_ctx *c, ops *o, ops_buf *params, size_t n) {
    if (c && c->size[COMM_DP] > 1)
        comm_allgather(c, COMM_DP, o, (ops_ptr){params, 0}, n / (size_t)c->size[COMM_DP]);
}
