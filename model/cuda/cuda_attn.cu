/* CUDA backend: GPT-J rotary and the masked softmax pieces of attention (the products around them run in
 * cuBLASLt, cuda_gemm.c). Softmax rows are one block each with fixed-tree block reductions. */
#include "model/cuda/kern.h"

enum { ROT_BLOCK = 256, SM_BLOCK = 128, STEP_BLOCK = 128 };

/* one thread per (row, head, pair) */
__global__ void k_rotary(bf16 *x, const float *cs, int T, int H, int dh, int rot_dim, int ld, float sign,
                         size_t total) {
    size_t id = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= total)
        return;
    int half = rot_dim / 2;
    int i = (int)(id % (size_t)half);
    size_t rh = id / (size_t)half;
    int h = (int)(rh % (size_t)H);
    size_t r = rh / (size_t)H;
    const float *cosv = cs + (size_t)(r % (size_t)T) * rot_dim;
    float c = cosv[i], s = sign * cosv[half + i];
    bf16 *p = x + r * (size_t)ld + (size_t)h * dh + 2 * i;
    float x0 = ld_bf(&p[0]), x1 = ld_bf(&p[1]);
    st_bf(&p[0], x0 * c - x1 * s);
    st_bf(&p[1], x1 * c + x0 * s);
}

extern "C" void mt_cu_rotary(void *stream, void *x, const float *cos_sin, int B, int T, int H, int dh,
                             int rot_dim, int ld, float sign) {
    size_t total = (size_t)B * T * H * (size_t)(rot_dim / 2);
    if (!total)
        return;
    LAUNCH(k_rotary, dim3(mt_blocks(total, ROT_BLOCK)), dim3(ROT_BLOCK), 0, stream, (bf16 *)x, cos_sin, T, H,
           dh, rot_dim, ld, sign, total);
}

/* First visible key of query i. */
static __device__ __forceinline__ int first_key(int i, int window) {
    return i - window + 1 > 0 ? i - window + 1 : 0;
}

/* probs row = softmax over the visible keys of the scores row, 0 elsewhere. One block per row. */
__global__ void k_softmax_fwd(bf16 *probs, const float *scores, int T, int window) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t r = blockIdx.x;
    int i = (int)(r % (size_t)T), j0 = first_key(i, window);
    const float *s = scores + r * (size_t)T;
    bf16 *p = probs + r * (size_t)T;
    float mx = -INFINITY;
    for (int j = j0 + tid; j <= i; j += nt)
        mx = fmaxf(mx, s[j]);
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int j = j0 + tid; j <= i; j += nt)
        sum += expf(s[j] - mx);
    float inv = 1.0f / block_sum(sum, red);
    for (int j = tid; j < T; j += nt)
        st_bf(&p[j], (j >= j0 && j <= i) ? expf(s[j] - mx) * inv : 0.0f);
}

/* ds = p * (dp - sum_j p dp) * scale over the visible keys, 0 elsewhere. One block per row. */
__global__ void k_softmax_bwd(bf16 *ds, const float *dp, const bf16 *probs, int T, int window, float scale) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x;
    size_t r = blockIdx.x;
    int i = (int)(r % (size_t)T), j0 = first_key(i, window);
    const float *d = dp + r * (size_t)T;
    const bf16 *p = probs + r * (size_t)T;
    float acc = 0.0f;
    for (int j = j0 + tid; j <= i; j += nt)
        acc += ld_bf(&p[j]) * d[j];
    float dot = block_sum(acc, red);
    bf16 *o = ds + r * (size_t)T;
    for (int j = tid; j < T; j += nt)
        st_bf(&o[j], (j >= j0 && j <= i) ? ld_bf(&p[j]) * (d[j] - dot) * scale : 0.0f);
}

extern "C" void mt_cu_softmax_fwd(void *stream, void *probs, const float *scores, int rows, int T,
                                  int window) {
    if (rows <= 0)
        return;
    LAUNCH(k_softmax_fwd, dim3((unsigned)rows), dim3(SM_BLOCK), 0, stream, (bf16 *)probs, scores, T, window);
}

extern "C" void mt_cu_softmax_bwd(void *stream, void *ds, const float *dp, const void *probs, int rows, int T,
                                  int window, float scale) {
    if (rows <= 0)
        return;
    LAUNCH(k_softmax_bwd, dim3((unsigned)rows), dim3(SM_BLOCK), 0, stream, (bf16 *)ds, dp,
           (const bf16 *)probs, T, window, scale);
}

/* One decoding step, one block per (sequence, head): warp w scores the visible positions w, w + nwarp, ...
 * (its lanes split the head's features, joined by warp_sum), the scores go to the fp32 scratch, then the
 * block's max and sum of exponentials, then thread e forms output feature e over the positions in order.
 * Every value is made by a fixed thread in a fixed order, so the result does not depend on scheduling. */
__global__ void k_attention_step(bf16 *out, float *scratch, const bf16 *q, const bf16 *k, const bf16 *v,
                                 int H, int dh, int ld_q, int ld_kv, int ld_out, int slots, int pos,
                                 int window, float scale) {
    __shared__ float red[33];
    int tid = (int)threadIdx.x, nt = (int)blockDim.x, lane = tid & 31, warp = tid >> 5, nwarp = nt >> 5;
    int b = (int)blockIdx.x / H, h = (int)blockIdx.x % H;
    int j0 = first_key(pos, window), n = pos - j0 + 1;
    const bf16 *qh = q + (size_t)b * ld_q + (size_t)h * dh;
    size_t base = (size_t)b * slots;
    float *sc = scratch + (size_t)blockIdx.x * slots;
    float mx = -INFINITY;
    for (int i = warp; i < n; i += nwarp) {
        const bf16 *kr = k + (base + (size_t)((j0 + i) % slots)) * ld_kv + (size_t)h * dh;
        float part = 0.0f;
        for (int e = lane; e < dh; e += 32)
            part += ld_bf(&qh[e]) * ld_bf(&kr[e]);
        float score = scale * warp_sum(part);
        if (lane == 0)
            sc[i] = score;
        mx = fmaxf(mx, score);
    }
    mx = block_max(mx, red);
    float sum = 0.0f;
    for (int i = tid; i < n; i += nt) {
        float e = expf(sc[i] - mx);
        sc[i] = e;
        sum += e;
    }
    float inv = 1.0f / block_sum(sum, red);
    for (int e = tid; e < dh; e += nt) {
        float acc = 0.0f;
        for (int i = 0; i < n; i++)
            acc += sc[i] * ld_bf(&v[(base + (size_t)((j0 + i) % slots)) * ld_kv + (size_t)h * dh + e]);
        st_bf(&out[(size_t)b * ld_out + (size_t)h * dh + e], acc * inv);
    }
}

extern "C" void mt_cu_attention_step(void *stream, void *out, float *scratch, const void *q, const void *k,
                                     const void *v, int B, int H, int dh, int ld_q, int ld_kv, int ld_out,
                                     int slots, int pos, int window, float scale) {
    if (B <= 0 || H <= 0)
        return;
    LAUNCH(k_attention_step, dim3((unsigned)(B * H)), dim3(STEP_BLOCK), 0, stream, (bf16 *)out, scratch,
           (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, H, dh, ld_q, ld_kv, ld_out, slots, pos, window,
           scale);
}
