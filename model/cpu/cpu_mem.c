/* CPU backend memory: host allocations, 64-byte aligned. */
#include <stdlib.h>
#include <string.h>

#include "base/common.h"
#include "model/cpu/cpu.h"

static size_t elem_size(ops_dtype t) { return t == OPS_I32 ? sizeof(int32_t) : sizeof(float); }

static ops_buf *cpu_alloc(ops *o, size_t n, ops_dtype dtype) {
    (void)o;
    CHECK(dtype != OPS_BF16, "the CPU backend has no bf16 storage");
    if (dtype == OPS_ACT)
        dtype = OPS_F32; /* the working precision is fp32 */
    ops_buf *b = mt_calloc(1, sizeof *b);
    size_t bytes = mt_round_up(n * elem_size(dtype) + 1, 64);
    b->data = aligned_alloc(64, bytes);
    if (!b->data)
        mt_out_of_memory("a CPU backend buffer", bytes);
    memset(b->data, 0, bytes);
    b->n = n;
    b->dtype = dtype;
    return b;
}

static void cpu_free(ops *o, ops_buf *b) {
    (void)o;
    if (!b)
        return;
    free(b->data);
    free(b);
}

static void check_range(ops_ptr p, size_t n) {
    CHECK(p.buf && p.off + n <= p.buf->n, "range [%zu, %zu) outside a buffer of %zu", p.off, p.off + n,
          p.buf ? p.buf->n : 0);
}

static void cpu_to_host(ops *o, void *dst, ops_ptr src, size_t n) {
    (void)o;
    check_range(src, n);
    size_t es = elem_size(src.buf->dtype);
    memcpy(dst, (char *)src.buf->data + src.off * es, n * es);
}

static void cpu_from_host(ops *o, ops_ptr dst, const void *src, size_t n) {
    (void)o;
    check_range(dst, n);
    size_t es = elem_size(dst.buf->dtype);
    memcpy((char *)dst.buf->data + dst.off * es, src, n * es);
}

static void cpu_zero(ops *o, ops_ptr x, size_t n) {
    (void)o;
    check_range(x, n);
    size_t es = elem_size(x.buf->dtype);
    memset((char *)x.buf->data + x.off * es, 0, n * es);
}

static void cpu_copy(ops *o, ops_ptr dst, ops_ptr src, size_t n) {
    (void)o;
    check_range(dst, n);
    check_range(src, n);
    CHECK(dst.buf->dtype == src.buf->dtype, "copy between dtypes");
    size_t es = elem_size(src.buf->dtype);
    memmove((char *)dst.buf->data + dst.off * es, (char *)src.buf->data + src.off * es, n * es);
}

/* Every float buffer is fp32 here, so a cast is a copy. */
static void cpu_cast(ops *o, ops_ptr dst, ops_ptr src, size_t n) { cpu_copy(o, dst, src, n); }

static ops_dtype cpu_dtype(ops *o, ops_ptr p) {
    (void)o;
    return p.buf->dtype;
}

static void *cpu_no_device(ops *o, ops_ptr p) {
    (void)o;
    (void)p;
    return NULL;
}

static void *cpu_no_stream(ops *o) {
    (void)o;
    return NULL;
}

static void *cpu_host_ptr(ops *o, ops_ptr p) {
    (void)o;
    size_t es = elem_size(p.buf->dtype);
    return (char *)p.buf->data + p.off * es;
}

void cpu_install_mem(ops *o) {
    o->act_dtype = OPS_F32;
    o->host_ptr = cpu_host_ptr;
    o->device_ptr = cpu_no_device;
    o->stream = cpu_no_stream;
    o->cast = cpu_cast;
    o->dtype = cpu_dtype;
    o->alloc = cpu_alloc;
    o->free = cpu_free;
    o->to_host = cpu_to_host;
    o->from_host = cpu_from_host;
    o->zero = cpu_zero;
    o->copy = cpu_copy;
}
