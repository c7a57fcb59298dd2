/* CUDA backend: casts, bias, elementwise arithmetic and the deterministic reductions (column sums in row
 * chunks combined in chunk order; dot products as per-block partials combined on the host in order). */
#include "model/cuda/kern.h"
#include "model/dropout_mask.h"

enum { EW_BLOCK = 256, COL_BLOCK = 128, DOT_BLOCK = 256, DOT_MAX_BLOCKS = 1024, DOT_PER_THREAD = 8 };

/* ---------------------------------------------------------------- host conversions */

extern "C" void mt_cu_host_f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        __nv_bfloat16_raw r = __float2bfloat16(src[i]);
        dst[i] = r.x;
    }
}

extern "C" void mt_cu_host_bf16_to_f32(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        __nv_bfloat16_raw r;
        r.x = src[i];
        dst[i] = __bfloat162float(bf16(r));
    }
}

/* ---------------------------------------------------------------- elementwise */

static __device__ __forceinline__ size_t gid(void) {
    return (size_t)blockIdx.x * (size_t)blockDim.x + (size_t)threadIdx.x;
}

__global__ void k_cast_f32_bf16(bf16 *dst, const float *src, size_t n) {
    size_t i = gid();
    if (i < n)
        st_bf(&dst[i], src[i]);
}

__global__ void k_cast_bf16_f32(float *dst, const bf16 *src, size_t n) {
    size_t i = gid();
    if (i < n)
        dst[i] = ld_bf(&src[i]);
}

extern "C" void mt_cu_cast_f32_bf16(void *stream, void *dst, const float *src, size_t n) {
    if (!n)
        return;
    LAUNCH(k_cast_f32_bf16, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, (bf16 *)dst, src, n);
}

extern "C" void mt_cu_cast_bf16_f32(void *stream, float *dst, const void *src, size_t n) {
    if (!n)
        return;
    LAUNCH(k_cast_bf16_f32, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, dst, (const bf16 *)src,
           n);
}

/* grid (rows, column blocks): rows in x, whose limit is 2^31 - 1 (y and z stop at 65535) */
__global__ void k_add_bias(bf16 *y, const bf16 *bias, int cols, int ld) {
    int c = (int)(blockIdx.y * blockDim.x + threadIdx.x);
    size_t r = blockIdx.x;
    if (c < cols) {
        bf16 *p = y + r * (size_t)ld + c;
        st_bf(p, ld_bf(p) + ld_bf(&bias[c]));
    }
}

extern "C" void mt_cu_add_bias(void *stream, void *y, const void *bias, int rows, int cols, int ld) {
    if (rows <= 0 || cols <= 0)
        return;
    LAUNCH(k_add_bias, dim3((unsigned)rows, mt_blocks((size_t)cols, COL_BLOCK)), dim3(COL_BLOCK), 0, stream,
           (bf16 *)y, (const bf16 *)bias, cols, ld);
}

__global__ void k_add(bf16 *y, const bf16 *x, const bf16 *a, size_t n) {
    size_t i = gid();
    if (i < n)
        st_bf(&y[i], ld_bf(&x[i]) + ld_bf(&a[i]));
}

extern "C" void mt_cu_add(void *stream, void *y, const void *x, const void *a, size_t n) {
    if (!n)
        return;
    LAUNCH(k_add, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, (bf16 *)y, (const bf16 *)x,
           (const bf16 *)a, n);
}

__global__ void k_dropout(bf16 *y, const bf16 *x, int rows, int cols, int col0, int width, uint32_t threshold,
                          float scale, uint64_t key) {
    size_t i = gid();
    if (i >= (size_t)rows * (size_t)cols)
        return;
    size_t r = i / (size_t)cols, c = i % (size_t)cols;
    uint64_t index = (uint64_t)r * (uint64_t)width + (uint64_t)col0 + c;
    st_bf(&y[i], mt_dropout_keep(key, index, threshold) ? ld_bf(&x[i]) * scale : 0.0f);
}

extern "C" void mt_cu_dropout(void *stream, void *y, const void *x, int rows, int cols, int col0, int width,
                              uint32_t threshold, float scale, uint64_t key) {
    size_t n = (size_t)rows * (size_t)cols;
    if (!n)
        return;
    LAUNCH(k_dropout, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, (bf16 *)y, (const bf16 *)x,
           rows, cols, col0, width, threshold, scale, key);
}

__global__ void k_scale(float *x, float alpha, size_t n) {
    size_t i = gid();
    if (i < n)
        x[i] *= alpha;
}

extern "C" void mt_cu_scale(void *stream, float *x, float alpha, size_t n) {
    if (!n)
        return;
    LAUNCH(k_scale, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, x, alpha, n);
}

/* ---------------------------------------------------------------- column sums (bias_grad) */

extern "C" int mt_cu_row_chunks(int rows) {
    return rows <= 0 ? 1 : (rows + MT_CU_ROW_CHUNK - 1) / MT_CU_ROW_CHUNK;
}

/* grid (column blocks, row chunks): part[chunk, c] = sum of the chunk's rows of column c, in row order. */
__global__ void k_colsum_part(float *part, const bf16 *x, int rows, int cols, int ld) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    int r0 = (int)blockIdx.y * MT_CU_ROW_CHUNK, r1 = min(rows, r0 + MT_CU_ROW_CHUNK);
    if (c >= cols)
        return;
    float acc = 0.0f;
    for (int r = r0; r < r1; r++)
        acc += ld_bf(&x[(size_t)r * ld + c]);
    part[(size_t)blockIdx.y * cols + c] = acc;
}

/* dst[c] += sum over chunks in chunk order. */
__global__ void k_colsum_final(float *dst, const float *part, int chunks, int cols) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols)
        return;
    float acc = 0.0f;
    for (int k = 0; k < chunks; k++)
        acc += part[(size_t)k * cols + c];
    dst[c] += acc;
}

extern "C" void mt_cu_bias_grad(void *stream, float *dbias, const void *dy, int rows, int cols, int ld,
                                float *scratch) {
    if (rows <= 0 || cols <= 0)
        return;
    int chunks = mt_cu_row_chunks(rows);
    unsigned cb = mt_blocks((size_t)cols, COL_BLOCK);
    LAUNCH(k_colsum_part, dim3(cb, (unsigned)chunks), dim3(COL_BLOCK), 0, stream, scratch, (const bf16 *)dy,
           rows, cols, ld);
    LAUNCH(k_colsum_final, dim3(cb), dim3(COL_BLOCK), 0, stream, dbias, (const float *)scratch, chunks, cols);
}

/* ---------------------------------------------------------------- dot products */

extern "C" int mt_cu_dot_blocks(size_t n) {
    size_t b = (n + (size_t)DOT_BLOCK * DOT_PER_THREAD - 1) / ((size_t)DOT_BLOCK * DOT_PER_THREAD);
    if (b < 1)
        b = 1;
    if (b > DOT_MAX_BLOCKS)
        b = DOT_MAX_BLOCKS;
    return (int)b;
}

/* Thread t of block b takes elements b*DOT_BLOCK + t + k * gridDim.x * DOT_BLOCK in order; the block sums its
 * threads in a fixed tree. The grid size depends on n only. */
__global__ void k_dot(double *partials, const float *a, const float *b, size_t n) {
    __shared__ double red[33];
    size_t stride = (size_t)gridDim.x * blockDim.x;
    double acc = 0.0;
    for (size_t i = gid(); i < n; i += stride)
        acc += (double)a[i] * (double)b[i];
    acc = block_sum_d(acc, red);
    if (threadIdx.x == 0)
        partials[blockIdx.x] = acc;
}

extern "C" void mt_cu_dot_partials(void *stream, double *partials, const float *a, const float *b, size_t n) {
    LAUNCH(k_dot, dim3((unsigned)mt_cu_dot_blocks(n)), dim3(DOT_BLOCK), 0, stream, partials, a, b, n);
}
