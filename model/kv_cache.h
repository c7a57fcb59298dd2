/* The key/value cache of incremental decoding (model_create_infer): per layer, the keys and the values of
 * B sequences as [B, slots, dl] in the backend's working precision, dl = this rank's heads x head_dim, with
 * position j of sequence b in row b * slots + j % slots. A global layer keeps every position (slots =
 * T_max); a local layer attends only to its last local_window positions, so its slots are
 * min(local_window, T_max), a ring. Allocated once; storing and attending allocate nothing. */
#ifndef MT_KV_CACHE_H
#define MT_KV_CACHE_H

#include "model/config.h"
#include "model/ops.h"

typedef struct model_kv model_kv;

model_kv *kv_create(ops *o, const model_config *c, int B, int T_max, int dl);
void kv_free(ops *o, model_kv *kv);

/* Stores the keys and values of a pass of T positions per sequence starting at position pos: rows
 * b * T + t of k and v ([B*T, dl]). A ring keeps the last `slots` positions of a longer pass. */
void kv_store(model_kv *kv, ops *o, int layer, ops_ptr k, ops_ptr v, int B, int T, int pos);

/* One query per sequence (q [B, dl], H heads of dh, at position pos, whose own key and value are stored)
 * against the cached positions it sees (window: the layer's; at most the layer's slots are visible) into
 * out [B, dl]. */
void kv_attend(model_kv *kv, ops *o, int layer, ops_ptr out, ops_ptr q, int H, int dh, int pos, int window,
               float scale);

#endif
