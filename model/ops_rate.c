/* The matmul rate of a backend, measured in the same process: the denominator of the utilization
 * figure that the step line and the benchmarks print (DESIGN 10). */
#include "model/ops_rate.h"

#include <stdlib.h>

#include "base/common.h"

double ops_matmul_gflops(ops *o, int n, double seconds) {
    size_t nn = (size_t)n * n;
    ops_buf *a = o->alloc(o, nn, OPS_ACT), *b = o->alloc(o, nn, OPS_ACT), *c = o->alloc(o, nn, OPS_ACT);
    float *host = mt_malloc(nn * sizeof *host);
    for (size_t i = 0; i < nn; i++)
        host[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    o->from_host(o, (ops_ptr){a, 0}, host, nn);
    o->from_host(o, (ops_ptr){b, 0}, host, nn);
    free(host);
    ops_ptr A = {a, 0}, B = {b, 0}, C = {c, 0};
    o->matmul(o, 0, 1, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n); /* warm-up */
    int reps = 0;
    double t0 = mt_now(), t;
    do {
        o->matmul(o, 0, 1, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        reps++;
        float last;
        o->to_host(o, &last, C, 1); /* waits for a device backend's queued work */
        t = mt_now() - t0;
    } while (t < seconds);
    o->free(o, a);
    o->free(o, b);
    o->free(o, c);
    return 2.0 * n * (double)n * n * reps / t / 1e9;
}
