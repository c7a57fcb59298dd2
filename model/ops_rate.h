#ifndef MT_OPS_RATE_H
#define MT_OPS_RATE_H

#include "model/ops.h"

/* GFLOP/s of n x n x n fp32 matmuls on backend o, timed for at least `seconds`. */
double ops_matmul_gflops(ops *o, int n, double seconds);

#endif
