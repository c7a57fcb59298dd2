/* bin/convert merge-lora: an adapter checkpoint and its base merged into one parameters-only checkpoint of
 * the plain model, W + (alpha / rank) B A for every adapted weight, streamed tensor by tensor. */
#ifndef MT_LORA_MERGE_H
#define MT_LORA_MERGE_H

#include "base/common.h"

/* base: the base checkpoint, or NULL for the one the adapter checkpoint names; it must have the identity
 * the adapter checkpoint recorded. out is written as out.tmp and renamed when complete. */
int lora_merge(const char *adapter, const char *base, const char *out, mt_err *err);

#endif
