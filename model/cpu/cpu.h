/* Internals shared by the CPU backend's files. */
#ifndef MT_CPU_H
#define MT_CPU_H

#include "model/ops.h"

#include <stdint.h>

struct ops_buf {
    void *data;
    size_t n;
    ops_dtype dtype;
};

static inline float *cpu_f(ops_ptr p) { return (float *)p.buf->data + p.off; }
static inline int32_t *cpu_i(ops_ptr p) { return (int32_t *)p.buf->data + p.off; }

/* Column blocks for reductions over rows: each thread owns whole columns and walks the rows in order,
 * so sums never depend on the thread count. */
enum { CPU_COL_BLOCK = 64 };

/* Loops over fewer elements than this run on the calling thread: starting a parallel region costs
 * microseconds (far more when a thread has to be woken), more than a decoding step's one-row operations
 * take. Every element is computed the same way either way. */
#define CPU_PAR_MIN 32768L

/* y = alpha W x + beta y for W [n, k] with row stride ld (cpu_gemv.c): 1 when done, 0 where this build has
 * no such kernel and BLAS does it. */
int cpu_gemv_rows(int n, int k, float alpha, const float *W, int ld, const float *x, float beta, float *y);

void cpu_install_mem(ops *o);
void cpu_install_dense(ops *o);
void cpu_install_norm(ops *o);
void cpu_install_attn(ops *o);
void cpu_install_embed(ops *o);

#endif
