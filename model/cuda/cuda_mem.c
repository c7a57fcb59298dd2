/* CUDA backend memory: device buffers, host copies converting bf16 <-> float on the host, zero, copy, cast,
 * and the argument checks every launcher goes through. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kern_api.h"

static const char *dtype_name(ops_dtype t) {
    switch (t) {
    case OPS_F32:
        return "f32";
    case OPS_I32:
        return "i32";
    case OPS_BF16:
        return "bf16";
    case OPS_ACT:
        return "act";
    }
    return "?";
}

static ops_dtype storage(ops_dtype t) { return t == OPS_ACT ? OPS_BF16 : t; }

size_t cuda_elem_size(ops_dtype t) { return storage(t) == OPS_BF16 ? 2 : 4; }

static void check_range(ops_ptr p, size_t n, const char *what) {
    CHECK(p.buf, "%s: no buffer", what);
    CHECK(p.off <= p.buf->n && n <= p.buf->n - p.off, "%s: range [%zu, %zu) outside a buffer of %zu", what,
          p.off, p.off + n, p.buf->n);
}

static void *addr(ops_ptr p) { return (char *)p.buf->d + p.off * cuda_elem_size(p.buf->dtype); }

void *cuda_arg(ops_ptr p, size_t n, ops_dtype want, const char *what) {
    check_range(p, n, what);
    CHECK(p.buf->dtype == storage(want), "%s: a %s buffer where %s (%s) is expected", what,
          dtype_name(p.buf->dtype), dtype_name(want), dtype_name(storage(want)));
    return addr(p);
}

size_t cuda_extent(int rows, int cols, int ld) {
    CHECK(rows >= 0 && cols >= 0 && ld >= cols, "block %d x %d with row stride %d", rows, cols, ld);
    return rows && cols ? (size_t)(rows - 1) * (size_t)ld + (size_t)cols : 0;
}

void *cuda_scratch(cuda_ctx *c, size_t bytes) {
    if (bytes > c->scratch_bytes) {
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        if (c->scratch)
            CUDA_CHECK(cudaFree(c->scratch));
        size_t want = mt_round_up(bytes + bytes / 4, 1 << 20);
        CUDA_CHECK(cudaMalloc(&c->scratch, want));
        c->scratch_bytes = want;
    }
    return c->scratch;
}

static ops_buf *cuda_alloc(ops *o, size_t n, ops_dtype dtype) {
    cuda_ctx *c = cuda_of(o);
    ops_buf *b = mt_calloc(1, sizeof *b);
    b->n = n;
    b->dtype = storage(dtype);
    size_t bytes = mt_round_up(n * cuda_elem_size(dtype) + 1, 64); /* cudaMalloc aligns to >= 256 bytes */
    CUDA_CHECK(cudaMalloc(&b->d, bytes));
    CUDA_CHECK(cudaMemsetAsync(b->d, 0, bytes, c->stream));
    return b;
}

static void cuda_free(ops *o, ops_buf *b) {
    if (!b)
        return;
    CUDA_CHECK(cudaStreamSynchronize(cuda_of(o)->stream));
    CUDA_CHECK(cudaFree(b->d));
    free(b);
}

static void cuda_to_host(ops *o, void *dst, ops_ptr src, size_t n) {
    cuda_ctx *c = cuda_of(o);
    check_range(src, n, "to_host");
    if (!n)
        return;
    if (src.buf->dtype == OPS_BF16) {
        uint16_t *tmp = mt_malloc(n * sizeof *tmp);
        CUDA_CHECK(cudaMemcpyAsync(tmp, addr(src), n * 2, cudaMemcpyDeviceToHost, c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        mt_cu_host_bf16_to_f32(dst, tmp, n);
        free(tmp);
    } else {
        CUDA_CHECK(cudaMemcpyAsync(dst, addr(src), n * 4, cudaMemcpyDeviceToHost, c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
}

static void cuda_from_host(ops *o, ops_ptr dst, const void *src, size_t n) {
    cuda_ctx *c = cuda_of(o);
    check_range(dst, n, "from_host");
    if (!n)
        return;
    if (dst.buf->dtype == OPS_BF16) {
        uint16_t *tmp = mt_malloc(n * sizeof *tmp);
        mt_cu_host_f32_to_bf16(tmp, src, n);
        CUDA_CHECK(cudaMemcpyAsync(addr(dst), tmp, n * 2, cudaMemcpyHostToDevice, c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
        free(tmp);
    } else {
        CUDA_CHECK(cudaMemcpyAsync(addr(dst), src, n * 4, cudaMemcpyHostToDevice, c->stream));
        CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
}

static void cuda_zero(ops *o, ops_ptr x, size_t n) {
    check_range(x, n, "zero");
    if (!n)
        return;
    CUDA_CHECK(cudaMemsetAsync(addr(x), 0, n * cuda_elem_size(x.buf->dtype), cuda_of(o)->stream));
}

static void cuda_copy(ops *o, ops_ptr dst, ops_ptr src, size_t n) {
    check_range(dst, n, "copy dst");
    check_range(src, n, "copy src");
    CHECK(dst.buf->dtype == src.buf->dtype, "copy from %s to %s", dtype_name(src.buf->dtype),
          dtype_name(dst.buf->dtype));
    if (!n)
        return;
    CUDA_CHECK(cudaMemcpyAsync(addr(dst), addr(src), n * cuda_elem_size(dst.buf->dtype),
                               cudaMemcpyDeviceToDevice, cuda_of(o)->stream));
}

/* F32 <-> BF16 with a kernel; same dtype (F32 -> F32 is how a cast to ACT looks on an fp32 backend): copy. */
static void cuda_cast(ops *o, ops_ptr dst, ops_ptr src, size_t n) {
    check_range(dst, n, "cast dst");
    check_range(src, n, "cast src");
    ops_dtype td = dst.buf->dtype, ts = src.buf->dtype;
    CHECK((td == OPS_F32 || td == OPS_BF16) && (ts == OPS_F32 || ts == OPS_BF16), "cast from %s to %s",
          dtype_name(ts), dtype_name(td));
    if (td == ts) {
        cuda_copy(o, dst, src, n);
    } else if (td == OPS_BF16) {
        mt_cu_cast_f32_bf16(cuda_of(o)->stream, addr(dst), addr(src), n);
    } else {
        mt_cu_cast_bf16_f32(cuda_of(o)->stream, addr(dst), addr(src), n);
    }
}

static ops_dtype cuda_dtype(ops *o, ops_ptr p) {
    (void)o;
    CHECK(p.buf, "dtype: no buffer");
    return p.buf->dtype;
}

static void *cuda_host_ptr(ops *o, ops_ptr p) {
    (void)o;
    (void)p;
    return NULL;
}

static void *cuda_device_ptr(ops *o, ops_ptr p) {
    (void)o;
    CHECK(p.buf && p.off <= p.buf->n, "device_ptr: offset outside the buffer");
    return addr(p);
}

static void *cuda_stream(ops *o) { return (void *)cuda_of(o)->stream; }

void cuda_install_mem(ops *o) {
    o->alloc = cuda_alloc;
    o->free = cuda_free;
    o->to_host = cuda_to_host;
    o->from_host = cuda_from_host;
    o->zero = cuda_zero;
    o->copy = cuda_copy;
    o->cast = cuda_cast;
    o->dtype = cuda_dtype;
    o->host_ptr = cuda_host_ptr;
    o->device_ptr = cuda_device_ptr;
    o->stream = cuda_stream;
}
