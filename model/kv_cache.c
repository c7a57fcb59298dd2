/* The key/value cache: ring-buffer bookkeeping around ops.copy and ops.attention_step. */
#include "model/kv_cache.h"

#include <stdlib.h>

#include "base/common.h"

struct model_kv {
    int B, dl, n_layer;
    int *slots;       /* per layer */
    ops_buf **k, **v; /* per layer, [B, slots, dl] */
    ops_buf *scratch; /* attention_step's fp32 scores: B * heads * max slots */
};

model_kv *kv_create(ops *o, const model_config *c, int B, int T_max, int dl) {
    model_kv *kv = mt_calloc(1, sizeof *kv);
    kv->B = B;
    kv->dl = dl;
    kv->n_layer = c->n_layer;
    kv->slots = mt_calloc((size_t)c->n_layer, sizeof *kv->slots);
    kv->k = mt_calloc((size_t)c->n_layer, sizeof *kv->k);
    kv->v = mt_calloc((size_t)c->n_layer, sizeof *kv->v);
    int most = 1;
    for (int l = 0; l < c->n_layer; l++) {
        int slots = model_layer_is_local(c, l) && c->local_window < T_max ? c->local_window : T_max;
        kv->slots[l] = slots;
        kv->k[l] = o->alloc(o, (size_t)B * slots * dl, OPS_ACT);
        kv->v[l] = o->alloc(o, (size_t)B * slots * dl, OPS_ACT);
        most = slots > most ? slots : most;
    }
    kv->scratch = o->alloc(o, (size_t)B * (dl / model_head_dim(c)) * most, OPS_F32);
    return kv;
}

void kv_free(ops *o, model_kv *kv) {
    if (!kv)
        return;
    for (int l = 0; l < kv->n_layer; l++) {
        o->free(o, kv->k[l]);
        o->free(o, kv->v[l]);
    }
    o->free(o, kv->scratch);
    free(kv->slots);
    free(kv->k);
    free(kv->v);
    free(kv);
}

/* Rows [t0, t0 + n) of sequence b's pass (positions pos + t0 ...) into the ring: one copy, or two where the
 * ring wraps. */
static void store_rows(model_kv *kv, ops *o, ops_buf *cache, int slots, ops_ptr src, int b, int T, int t0,
                       int n, int pos) {
    size_t dl = (size_t)kv->dl;
    int s0 = (pos + t0) % slots, first = n < slots - s0 ? n : slots - s0;
    ops_ptr from = ops_at(src, ((size_t)b * T + t0) * dl);
    o->copy(o, (ops_ptr){cache, ((size_t)b * slots + s0) * dl}, from, (size_t)first * dl);
    if (first < n)
        o->copy(o, (ops_ptr){cache, (size_t)b * slots * dl}, ops_at(from, (size_t)first * dl),
                (size_t)(n - first) * dl);
}

void kv_store(model_kv *kv, ops *o, int layer, ops_ptr k, ops_ptr v, int B, int T, int pos) {
    CHECK(B == kv->B && layer >= 0 && layer < kv->n_layer, "kv_store: B %d, layer %d", B, layer);
    int slots = kv->slots[layer], t0 = T > slots ? T - slots : 0;
    for (int b = 0; b < B; b++) {
        store_rows(kv, o, kv->k[layer], slots, k, b, T, t0, T - t0, pos);
        store_rows(kv, o, kv->v[layer], slots, v, b, T, t0, T - t0, pos);
    }
}

void kv_attend(model_kv *kv, ops *o, int layer, ops_ptr out, ops_ptr q, int H, int dh, int pos, int window,
               float scale) {
    int slots = kv->slots[layer];
    ops_step_shape s = {.B = kv->B,
                        .H = H,
                        .dh = dh,
                        .ld_q = kv->dl,
                        .ld_kv = kv->dl,
                        .ld_out = kv->dl,
                        .slots = slots,
                        .pos = pos,
                        .window = window < slots ? window : slots,
                        .scale = scale};
    o->attention_step(o, out, (ops_ptr){kv->scratch, 0}, q, (ops_ptr){kv->k[layer], 0},
                      (ops_ptr){kv->v[layer], 0}, &s);
}
