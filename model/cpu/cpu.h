/* Internals shared by the CPU backend's files. */
#ifndef MT_CPU_H
#define MT_CPU_H

#include "model/ops.h"

#include <stdint.h>
#include <string.h>

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

/* e^x to about 2 ulp, branch-free so that `omp simd` loops vectorize it (glibc's expf and tanhf are
 * scalar calls without -ffast-math): e^x = 2^n e^r with n = round(x log2 e) and r = x - n ln 2 (ln 2 in
 * two parts, so r is exact), |r| <= 0.35; e^r by its Taylor series to r^7, whose truncation is below
 * 1e-8 relative. x is clamped to [-87, 88], where 2^n is a normal float (e^-87 = 1.6e-38 stands for
 * anything smaller, e^88 = 1.7e38 for anything larger); NaN stays NaN. */
static inline float cpu_expf(float x) {
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    /* n = round(x log2 e) by adding and subtracting 1.5 x 2^23 (floorf and rintf stay scalar calls unless
     * floating-point exceptions are ignored) */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693145751953125f; /* ln 2 = 0.693145751953125 + 1.42860677e-6 */
    r = r - n * 1.42860676533018704e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

/* y = alpha W x + beta y for W [n, k] with row stride ld (cpu_gemv.c): 1 when done, 0 where this build has
 * no such kernel and BLAS does it. */
int cpu_gemv_rows(int n, int k, float alpha, const float *W, int ld, const float *x, float beta, float *y);

void cpu_install_mem(ops *o);
void cpu_install_dense(ops *o);
void cpu_install_norm(ops *o);
void cpu_install_attn(ops *o);
void cpu_install_embed(ops *o);

#endif
