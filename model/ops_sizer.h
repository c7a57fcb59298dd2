/* A memory-counting stand-in backend (alloc, free and from_host only). */
#ifndef MT_OPS_SIZER_H
#define MT_OPS_SIZER_H

#include "model/ops.h"

/* act_dtype: the storage of OPS_ACT buffers on the backend being sized (OPS_F32 for cpu, OPS_BF16 for
 * cuda). */
ops *ops_sizer_create(ops_dtype act_dtype);
size_t ops_sizer_bytes(ops *o); /* bytes currently allocated through it */

#endif
