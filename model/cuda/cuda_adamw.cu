/* CUDA backend: AdamW on fp32 master weights and state (the CPU backend's arithmetic, element by element). */
#include "model/cuda/kern.h"

enum { ADAM_BLOCK = 256 };

__global__ void k_adamw(float *p, const float *g, float *m, float *v, size_t n, float grad_scale, float lr,
                        float beta1, float beta2, float eps, float wd, float inv_bc1, float inv_bc2) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n)
        return;
    float gi = g[i] * grad_scale;
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float pi = p[i];
    p[i] = pi - lr * (mi * inv_bc1 / (sqrtf(vi * inv_bc2) + eps) + wd * pi);
}

extern "C" void mt_cu_adamw(void *stream, float *p, const float *g, float *m, float *v, size_t n,
                            float grad_scale, float lr, float beta1, float beta2, float eps, float wd,
                            float bc1, float bc2) {
    if (!n)
        return;
    LAUNCH(k_adamw, dim3(mt_blocks(n, ADAM_BLOCK)), dim3(ADAM_BLOCK), 0, stream, p, g, m, v, n, grad_scale,
           lr, beta1, beta2, eps, wd, 1.0f / bc1, 1.0f / bc2);
}
