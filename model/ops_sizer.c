/* A backend that only counts what would be allocated: `--dry-run` builds the real model against it to
 * report per-rank memory without touching any. */
#include <stdlib.h>

#include "base/common.h"
#include "model/ops.h"
#include "model/ops_sizer.h"

struct ops_buf {
    size_t bytes;
};

typedef struct {
    size_t bytes;
} sizer_ctx;

static ops_buf *sz_alloc(ops *o, size_t n, ops_dtype dtype) {
    ops_buf *b = mt_calloc(1, sizeof *b);
    int bf16 = dtype == OPS_BF16 || (dtype == OPS_ACT && o->act_dtype == OPS_BF16);
    b->bytes = mt_round_up(n * (bf16 ? 2 : 4), 64);
    ((sizer_ctx *)o->ctx)->bytes += b->bytes;
    return b;
}

static void sz_free(ops *o, ops_buf *b) {
    if (!b)
        return;
    ((sizer_ctx *)o->ctx)->bytes -= b->bytes;
    free(b);
}

static void sz_from_host(ops *o, ops_ptr dst, const void *src, size_t n) {
    (void)o, (void)dst, (void)src, (void)n;
}

static void sz_destroy(ops *o) {
    free(o->ctx);
    free(o);
}

ops *ops_sizer_create(ops_dtype act_dtype) {
    ops *o = mt_calloc(1, sizeof *o);
    o->name = "sizer";
    o->act_dtype = act_dtype;
    o->ctx = mt_calloc(1, sizeof(sizer_ctx));
    o->alloc = sz_alloc;
    o->free = sz_free;
    o->from_host = sz_from_host;
    o->destroy = sz_destroy;
    return o;
}

size_t ops_sizer_bytes(ops *o) { return ((sizer_ctx *)o->ctx)->bytes; }
