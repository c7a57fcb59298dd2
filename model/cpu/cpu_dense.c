/* CPU backend: matmul (OpenBLAS), bias, elementwise arithmetic, reductions and AdamW. */
#include <cblas.h>
#include <math.h>

#include "base/common.h"
#include "model/cpu/cpu.h"
#include "model/dropout_mask.h"

/* One row (a decoding step at batch 1) is a matrix-vector product: OpenBLAS's sgemm packs the whole
 * weight matrix before using it, moving it about twice, where a matrix-vector product streams it once
 * (make bench). */
static void cpu_matmul(ops *o, int trans_a, int trans_b, int m, int n, int k, float alpha, ops_ptr a, int lda,
                       ops_ptr b, int ldb, float beta, ops_ptr c, int ldc) {
    (void)o;
    if (m == 1 && !trans_a) {
        if (trans_b && cpu_gemv_rows(n, k, alpha, cpu_f(b), ldb, cpu_f(a), beta, cpu_f(c)))
            return; /* c = B a with B [n, k]: every linear layer */
        if (trans_b)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, alpha, cpu_f(b), ldb, cpu_f(a), 1, beta, cpu_f(c),
                        1);
        else /* c = B^T a with B [k, n] */
            cblas_sgemv(CblasRowMajor, CblasTrans, k, n, alpha, cpu_f(b), ldb, cpu_f(a), 1, beta, cpu_f(c),
                        1);
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n,
                k, alpha, cpu_f(a), lda, cpu_f(b), ldb, beta, cpu_f(c), ldc);
}

static void cpu_add_bias(ops *o, ops_ptr y, ops_ptr bias, int rows, int cols, int ld) {
    (void)o;
    float *Y = cpu_f(y);
    const float *b = cpu_f(bias);
#pragma omp parallel for schedule(static) if ((long)rows * cols >= CPU_PAR_MIN)
    for (int r = 0; r < rows; r++) {
        float *row = Y + (size_t)r * ld;
#pragma omp simd
        for (int c = 0; c < cols; c++)
            row[c] += b[c];
    }
}

static void cpu_bias_grad(ops *o, ops_ptr dbias, ops_ptr dy, int rows, int cols, int ld) {
    (void)o;
    float *db = cpu_f(dbias);
    const float *D = cpu_f(dy);
    int nblk = (cols + CPU_COL_BLOCK - 1) / CPU_COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CPU_COL_BLOCK, c1 = c0 + CPU_COL_BLOCK < cols ? c0 + CPU_COL_BLOCK : cols;
        float acc[CPU_COL_BLOCK] = {0};
        for (int r = 0; r < rows; r++) {
            const float *row = D + (size_t)r * ld;
#pragma omp simd
            for (int c = c0; c < c1; c++)
                acc[c - c0] += row[c];
        }
        for (int c = c0; c < c1; c++)
            db[c] += acc[c - c0];
    }
}

static void cpu_add(ops *o, ops_ptr y, ops_ptr x, ops_ptr a, size_t n) {
    (void)o;
    float *Y = cpu_f(y);
    const float *X = cpu_f(x), *A = cpu_f(a);
#pragma omp parallel for simd schedule(static) if ((long)n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        Y[i] = X[i] + A[i];
}

static void cpu_scale(ops *o, ops_ptr x, float alpha, size_t n) {
    (void)o;
    float *X = cpu_f(x);
#pragma omp parallel for simd schedule(static) if ((long)n >= CPU_PAR_MIN)
    for (size_t i = 0; i < n; i++)
        X[i] *= alpha;
}

static void cpu_dropout(ops *o, ops_ptr y, ops_ptr x, int rows, int cols, int col0, int width,
                        uint32_t threshold, float scale, uint64_t key) {
    (void)o;
    float *Y = cpu_f(y);
    const float *X = cpu_f(x);
#pragma omp parallel for schedule(static) if ((long)rows * cols >= CPU_PAR_MIN)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            uint64_t index = (uint64_t)r * (uint64_t)width + (uint64_t)(col0 + c);
            Y[i] = mt_dropout_keep(key, index, threshold) ? X[i] * scale : 0.0f;
        }
}

/* Reductions: fixed chunks summed in double, chunk sums combined in index order, so the result does not
 * depend on the number of threads. */
enum { MAX_CHUNKS = 1024, MIN_CHUNK = 4096 };

static double chunked_dot(const float *a, const float *b, size_t n) {
    size_t chunk = n / MAX_CHUNKS + 1;
    if (chunk < MIN_CHUNK)
        chunk = MIN_CHUNK;
    size_t nchunks = (n + chunk - 1) / chunk;
    double part[MAX_CHUNKS];
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < nchunks; c++) {
        size_t i0 = c * chunk, i1 = i0 + chunk < n ? i0 + chunk : n;
        double s = 0;
        for (size_t i = i0; i < i1; i++)
            s += (double)a[i] * (double)b[i];
        part[c] = s;
    }
    double total = 0;
    for (size_t c = 0; c < nchunks; c++)
        total += part[c];
    return total;
}

static double cpu_sumsq(ops *o, ops_ptr x, size_t n) {
    (void)o;
    return chunked_dot(cpu_f(x), cpu_f(x), n);
}

static double cpu_dot(ops *o, ops_ptr a, ops_ptr b, size_t n) {
    (void)o;
    return chunked_dot(cpu_f(a), cpu_f(b), n);
}

static void cpu_adamw(ops *o, ops_ptr p, ops_ptr g, ops_ptr m, ops_ptr v, size_t n, float grad_scale,
                      float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2) {
    (void)o;
    float *P = cpu_f(p), *M = cpu_f(m), *V = cpu_f(v);
    const float *G = cpu_f(g);
    float inv_bc1 = 1.0f / bc1, inv_bc2 = 1.0f / bc2;
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) {
        float gi = G[i] * grad_scale;
        float mi = beta1 * M[i] + (1.0f - beta1) * gi;
        float vi = beta2 * V[i] + (1.0f - beta2) * gi * gi;
        M[i] = mi;
        V[i] = vi;
        P[i] -= lr * (mi * inv_bc1 / (sqrtf(vi * inv_bc2) + eps) + wd * P[i]);
    }
}

void cpu_install_dense(ops *o) {
    o->matmul = cpu_matmul;
    o->add_bias = cpu_add_bias;
    o->bias_grad = cpu_bias_grad;
    o->add = cpu_add;
    o->scale = cpu_scale;
    o->dropout = cpu_dropout;
    o->sumsq = cpu_sumsq;
    o->dot = cpu_dot;
    o->adamw = cpu_adamw;
}
