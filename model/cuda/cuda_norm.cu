/* CUDA backend: LayerNorm forward/backward and gelu_new, fp32 arithmetic on bf16 data. Row statistics are
 * block tree reductions (one block per row); dgamma/dbeta are column sums in fixed row chunks combined in
 * chunk order. */
#include "model/cuda/kern.h"

enum { ROW_BLOCK = 128, COL_BLOCK = 128, EW_BLOCK = 256 };

#define GELU_K 0.7978845608028654f /* sqrt(2/pi) */
#define GELU_C 0.044715f

/* one block per row */
__global__ void k_layernorm_fwd(bf16 *out, float *mean, float *rstd, const bf16 *x, const bf16 *gamma,
                                const bf16 *beta, int cols, float eps) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t r = blockIdx.x;
    const bf16 *xr = x + r * (size_t)cols;
    float s = 0.0f;
    for (int c = tid; c < cols; c += nt)
        s += ld_bf(&xr[c]);
    float mu = block_sum(s, red) / (float)cols;
    float ss = 0.0f;
    for (int c = tid; c < cols; c += nt) {
        float d = ld_bf(&xr[c]) - mu;
        ss += d * d;
    }
    float rs = 1.0f / sqrtf(block_sum(ss, red) / (float)cols + eps);
    if (tid == 0) {
        mean[r] = mu;
        rstd[r] = rs;
    }
    bf16 *yr = out + r * (size_t)cols;
    for (int c = tid; c < cols; c += nt)
        st_bf(&yr[c], (ld_bf(&xr[c]) - mu) * rs * ld_bf(&gamma[c]) + ld_bf(&beta[c]));
}

extern "C" void mt_cu_layernorm_fwd(void *stream, void *out, float *mean, float *rstd, const void *x,
                                    const void *gamma, const void *beta, int rows, int cols, float eps) {
    if (rows <= 0 || cols <= 0)
        return;
    LAUNCH(k_layernorm_fwd, dim3((unsigned)rows), dim3(ROW_BLOCK), 0, stream, (bf16 *)out, mean, rstd,
           (const bf16 *)x, (const bf16 *)gamma, (const bf16 *)beta, cols, eps);
}

/* dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * gamma; one block per row. */
__global__ void k_layernorm_bwd_dx(bf16 *dx, const bf16 *dout, const bf16 *x, const float *mean,
                                   const float *rstd, const bf16 *gamma, int cols) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t r = blockIdx.x;
    const bf16 *xr = x + r * (size_t)cols, *dyr = dout + r * (size_t)cols;
    float m = mean[r], rs = rstd[r];
    float sg = 0.0f, sgx = 0.0f;
    for (int c = tid; c < cols; c += nt) {
        float g = ld_bf(&dyr[c]) * ld_bf(&gamma[c]);
        sg += g;
        sgx += g * (ld_bf(&xr[c]) - m) * rs;
    }
    float mg = block_sum(sg, red) / (float)cols;
    float mgx = block_sum(sgx, red) / (float)cols;
    bf16 *dxr = dx + r * (size_t)cols;
    for (int c = tid; c < cols; c += nt) {
        float xhat = (ld_bf(&xr[c]) - m) * rs;
        float g = ld_bf(&dyr[c]) * ld_bf(&gamma[c]);
        st_bf(&dxr[c], ld_bf(&dxr[c]) + rs * (g - mg - xhat * mgx));
    }
}

/* grid (column blocks, row chunks): partial dgamma and dbeta of one chunk of rows, rows in order. */
__global__ void k_layernorm_bwd_part(float *pg, float *pb, const bf16 *dout, const bf16 *x, const float *mean,
                                     const float *rstd, int rows, int cols) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    int r0 = (int)blockIdx.y * MT_CU_ROW_CHUNK, r1 = min(rows, r0 + MT_CU_ROW_CHUNK);
    if (c >= cols)
        return;
    float ag = 0.0f, ab = 0.0f;
    for (int r = r0; r < r1; r++) {
        size_t i = (size_t)r * cols + c;
        float dy = ld_bf(&dout[i]);
        ag += dy * (ld_bf(&x[i]) - mean[r]) * rstd[r];
        ab += dy;
    }
    pg[(size_t)blockIdx.y * cols + c] = ag;
    pb[(size_t)blockIdx.y * cols + c] = ab;
}

__global__ void k_layernorm_bwd_final(float *dgamma, float *dbeta, const float *pg, const float *pb,
                                      int chunks, int cols) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= cols)
        return;
    float ag = 0.0f, ab = 0.0f;
    for (int k = 0; k < chunks; k++) {
        ag += pg[(size_t)k * cols + c];
        ab += pb[(size_t)k * cols + c];
    }
    dgamma[c] += ag;
    dbeta[c] += ab;
}

extern "C" void mt_cu_layernorm_bwd(void *stream, void *dx, float *dgamma, float *dbeta, const void *dout,
                                    const void *x, const float *mean, const float *rstd, const void *gamma,
                                    int rows, int cols, float *scratch) {
    if (rows <= 0 || cols <= 0)
        return;
    LAUNCH(k_layernorm_bwd_dx, dim3((unsigned)rows), dim3(ROW_BLOCK), 0, stream, (bf16 *)dx,
           (const bf16 *)dout, (const bf16 *)x, mean, rstd, (const bf16 *)gamma, cols);
    int chunks = mt_cu_row_chunks(rows);
    unsigned cb = mt_blocks((size_t)cols, COL_BLOCK);
    float *pg = scratch, *pb = scratch + (size_t)chunks * cols;
    LAUNCH(k_layernorm_bwd_part, dim3(cb, (unsigned)chunks), dim3(COL_BLOCK), 0, stream, pg, pb,
           (const bf16 *)dout, (const bf16 *)x, mean, rstd, rows, cols);
    LAUNCH(k_layernorm_bwd_final, dim3(cb), dim3(COL_BLOCK), 0, stream, dgamma, dbeta, (const float *)pg,
           (const float *)pb, chunks, cols);
}

__global__ void k_gelu_fwd(bf16 *y, const bf16 *x, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float v = ld_bf(&x[i]);
    st_bf(&y[i], 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v))));
}

__global__ void k_gelu_bwd(bf16 *dx, const bf16 *x, const bf16 *dy, size_t n) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float v = ld_bf(&x[i]);
    float t = tanhf(GELU_K * (v + GELU_C * v * v * v));
    float dt = GELU_K * (1.0f + 3.0f * GELU_C * v * v) * (1.0f - t * t);
    st_bf(&dx[i], ld_bf(&dy[i]) * (0.5f * (1.0f + t) + 0.5f * v * dt));
}

extern "C" void mt_cu_gelu_fwd(void *stream, void *y, const void *x, size_t n) {
    if (!n)
        return;
    LAUNCH(k_gelu_fwd, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, (bf16 *)y, (const bf16 *)x,
           n);
}

extern "C" void mt_cu_gelu_bwd(void *stream, void *dx, const void *x, const void *dy, size_t n) {
    if (!n)
        return;
    LAUNCH(k_gelu_bwd, dim3(mt_blocks(n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, (bf16 *)dx, (const bf16 *)x,
           (const bf16 *)dy, n);
}
