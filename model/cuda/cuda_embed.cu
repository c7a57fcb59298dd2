/* CUDA backend: token and position embeddings, and the vocabulary-sharded cross-entropy pieces. Gradient
 * accumulations walk tokens (or batches) in order per column, as the CPU backend does: no atomics. */
#include "model/cuda/kern.h"

enum { COL_BLOCK = 128, ROW_BLOCK = 256, EW_BLOCK = 256 };

/* grid (tokens, column blocks): the long dimension in x, whose limit is 2^31 - 1 */
__global__ void k_embed_fwd(bf16 *out, const int32_t *ids, const bf16 *wte, int d, int row_start, int rows) {
    int c = (int)(blockIdx.y * blockDim.x + threadIdx.x);
    size_t i = blockIdx.x;
    if (c >= d)
        return;
    int row = ids[i] - row_start;
    out[i * (size_t)d + c] = (row >= 0 && row < rows) ? wte[(size_t)row * d + c] : __float2bfloat16(0.0f);
}

extern "C" void mt_cu_embed_fwd(void *stream, void *out, const int32_t *ids, const void *wte, int n, int d,
                                int row_start, int rows) {
    if (n <= 0 || d <= 0)
        return;
    LAUNCH(k_embed_fwd, dim3((unsigned)n, mt_blocks((size_t)d, COL_BLOCK)), dim3(COL_BLOCK), 0, stream,
           (bf16 *)out, ids, (const bf16 *)wte, d, row_start, rows);
}

/* one thread per column, tokens in order */
__global__ void k_embed_bwd(float *dwte, const int32_t *ids, const bf16 *dout, int n, int d, int row_start,
                            int rows) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (c >= d)
        return;
    for (int i = 0; i < n; i++) {
        int row = ids[i] - row_start;
        if (row < 0 || row >= rows)
            continue;
        dwte[(size_t)row * d + c] += ld_bf(&dout[(size_t)i * d + c]);
    }
}

extern "C" void mt_cu_embed_bwd(void *stream, float *dwte, const int32_t *ids, const void *dout, int n, int d,
                                int row_start, int rows) {
    if (n <= 0 || d <= 0)
        return;
    LAUNCH(k_embed_bwd, dim3(mt_blocks((size_t)d, COL_BLOCK)), dim3(COL_BLOCK), 0, stream, dwte, ids,
           (const bf16 *)dout, n, d, row_start, rows);
}

/* grid (B*T rows, column blocks) */
__global__ void k_pos_fwd(bf16 *out, const bf16 *wpe, int T, int d) {
    int c = (int)(blockIdx.y * blockDim.x + threadIdx.x);
    size_t r = blockIdx.x;
    if (c >= d)
        return;
    bf16 *y = out + r * (size_t)d + c;
    st_bf(y, ld_bf(y) + ld_bf(&wpe[(r % (size_t)T) * d + c]));
}

/* grid (column blocks, T): batches in order */
__global__ void k_pos_bwd(float *dwpe, const bf16 *dout, int B, int T, int d) {
    int c = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    size_t t = blockIdx.y;
    if (c >= d)
        return;
    float acc = dwpe[t * d + c];
    for (int b = 0; b < B; b++)
        acc += ld_bf(&dout[((size_t)b * T + t) * d + c]);
    dwpe[t * d + c] = acc;
}

extern "C" void mt_cu_pos_fwd(void *stream, void *out, const void *wpe, int B, int T, int d) {
    if (B <= 0 || T <= 0 || d <= 0)
        return;
    LAUNCH(k_pos_fwd, dim3((unsigned)(B * T), mt_blocks((size_t)d, COL_BLOCK)), dim3(COL_BLOCK), 0, stream,
           (bf16 *)out, (const bf16 *)wpe, T, d);
}

extern "C" void mt_cu_pos_bwd(void *stream, float *dwpe, const void *dout, int B, int T, int d) {
    if (B <= 0 || T <= 0 || d <= 0)
        return;
    LAUNCH(k_pos_bwd, dim3(mt_blocks((size_t)d, COL_BLOCK), (unsigned)T), dim3(COL_BLOCK), 0, stream, dwpe,
           (const bf16 *)dout, B, T, d);
}

/* ---------------------------------------------------------------- cross-entropy; one block per row */

__global__ void k_ce_rowmax(float *rowmax, const bf16 *logits, int ld, int ncols) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t i = blockIdx.x;
    const bf16 *l = logits + i * (size_t)ld;
    float mx = -INFINITY;
    for (int c = tid; c < ncols; c += nt)
        mx = fmaxf(mx, ld_bf(&l[c]));
    mx = block_max(mx, red);
    if (tid == 0)
        rowmax[i] = mx;
}

__global__ void k_ce_sumexp(float *sumexp, float *tgt, const bf16 *logits, const float *rowmax,
                            const int32_t *targets, int ld, int ncols, int col_start) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t i = blockIdx.x;
    const bf16 *l = logits + i * (size_t)ld;
    float m = rowmax[i], sum = 0.0f;
    for (int c = tid; c < ncols; c += nt)
        sum += expf(ld_bf(&l[c]) - m);
    sum = block_sum(sum, red);
    if (tid == 0) {
        sumexp[i] = sum;
        int t = targets[i] - col_start;
        tgt[i] = (t >= 0 && t < ncols) ? ld_bf(&l[t]) - m : 0.0f;
    }
}

__global__ void k_ce_loss(float *loss, const float *rowmax, const float *sumexp, const float *tgt, float z,
                          int n) {
    int i = (int)(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= n)
        return;
    float log_s = logf(sumexp[i]), lse = rowmax[i] + log_s;
    loss[i] = log_s - tgt[i] + z * lse * lse;
}

/* d loss / d logit_c = w (p_c (1 + 2 z lse) - [c == target]); zero outside the softmax columns. */
__global__ void k_ce_bwd(bf16 *logits, const float *rowmax, const float *sumexp, const int32_t *targets,
                         const float *weights, float z, int ld, int ncols, int col_start) {
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t i = blockIdx.x;
    bf16 *l = logits + i * (size_t)ld;
    float w = weights[i], m = rowmax[i], inv_s = 1.0f / sumexp[i];
    float pscale = w * (1.0f + 2.0f * z * (m + logf(sumexp[i])));
    int t = targets[i] - col_start;
    for (int c = tid; c < ld; c += nt) {
        float g = 0.0f;
        if (w != 0.0f && c < ncols) {
            g = pscale * expf(ld_bf(&l[c]) - m) * inv_s;
            if (c == t)
                g -= w;
        }
        st_bf(&l[c], g);
    }
}

extern "C" void mt_cu_ce_rowmax(void *stream, float *rowmax, const void *logits, int N, int ld, int ncols) {
    if (N <= 0)
        return;
    LAUNCH(k_ce_rowmax, dim3((unsigned)N), dim3(ROW_BLOCK), 0, stream, rowmax, (const bf16 *)logits, ld,
           ncols);
}

extern "C" void mt_cu_ce_sumexp(void *stream, float *sumexp, float *tgt, const void *logits,
                                const float *rowmax, const int32_t *targets, int N, int ld, int ncols,
                                int col_start) {
    if (N <= 0)
        return;
    LAUNCH(k_ce_sumexp, dim3((unsigned)N), dim3(ROW_BLOCK), 0, stream, sumexp, tgt, (const bf16 *)logits,
           rowmax, targets, ld, ncols, col_start);
}

extern "C" void mt_cu_ce_loss(void *stream, float *loss, const float *rowmax, const float *sumexp,
                              const float *tgt, float z, int n) {
    if (n <= 0)
        return;
    LAUNCH(k_ce_loss, dim3(mt_blocks((size_t)n, EW_BLOCK)), dim3(EW_BLOCK), 0, stream, loss, rowmax, sumexp,
           tgt, z, n);
}

extern "C" void mt_cu_ce_bwd(void *stream, void *logits, const float *rowmax, const float *sumexp,
                             const int32_t *targets, const float *weights, float z, int N, int ld, int ncols,
                             int col_start) {
    if (N <= 0)
        return;
    LAUNCH(k_ce_bwd, dim3((unsigned)N), dim3(ROW_BLOCK), 0, stream, (bf16 *)logits, rowmax, sumexp, targets,
           weights, z, ld, ncols, col_start);
}
