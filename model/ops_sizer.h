/* A memory-counting stand-in backend (alloc, free and from_host only). */
#ifndef MT_OPS_SIZER_H
#define MT_OPS_SIZER_H

#include "ops.h"

ops *ops_sizer_create(void);
size_t ops_sizer_bytes(ops *o); /* bytes currently allocated through it */

#endif
