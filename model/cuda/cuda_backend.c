/* The CUDA backend: device selection, stream, cuBLASLt handle and workspace, the vtable. */
#include <stdlib.h>

#include "model/cuda/cuda.h"
#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_internal.h"

enum { WORKSPACE_BYTES = 32 << 20 };

static void cuda_destroy(ops *o) {
    if (!o)
        return;
    cuda_ctx *c = cuda_of(o);
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    if (c->scratch)
        CUDA_CHECK(cudaFree(c->scratch));
    CUDA_CHECK(cudaFree(c->ws));
    CUBLAS_CHECK(cublasLtDestroy(c->lt));
    CUDA_CHECK(cudaStreamDestroy(c->stream));
    free(c);
    free(o);
}

ops *ops_cuda_create(int device, mt_err *err) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError(); /* clear the error state */
        mt_fail(err, "backend cuda: no usable GPU (%s)", cudaGetErrorString(e));
        return NULL;
    }
    if (count <= 0) {
        mt_fail(err, "backend cuda: no GPU found");
        return NULL;
    }
    if (device < 0 || device >= count) {
        mt_fail(err, "backend cuda: device %d does not exist (%d GPU%s)", device, count,
                count == 1 ? "" : "s");
        return NULL;
    }
    CUDA_CHECK(cudaSetDevice(device));
    cuda_ctx *c = mt_calloc(1, sizeof *c);
    c->device = device;
    CUDA_CHECK(cudaStreamCreate(&c->stream));
    CUBLAS_CHECK(cublasLtCreate(&c->lt));
    c->ws_bytes = WORKSPACE_BYTES;
    CUDA_CHECK(cudaMalloc(&c->ws, c->ws_bytes));

    ops *o = mt_calloc(1, sizeof *o);
    o->name = "cuda";
    o->ctx = c;
    o->act_dtype = OPS_BF16;
    o->destroy = cuda_destroy;
    cuda_install_mem(o);
    cuda_install_compute(o);
    return o;
}
