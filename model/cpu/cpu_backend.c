/* The CPU backend: fp32 everywhere, OpenBLAS (OpenMP build) for matmuls, OpenMP loops for the rest. */
#include "model/cpu/cpu.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "base/common.h"

static void cpu_destroy(ops *o) { free(o); }

ops *ops_cpu_create(int threads) {
    CHECK(threads >= 1, "threads = %d", threads);
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
    ops *o = mt_calloc(1, sizeof *o);
    o->name = "cpu";
    o->destroy = cpu_destroy;
    cpu_install_mem(o);
    cpu_install_dense(o);
    cpu_install_norm(o);
    cpu_install_attn(o);
    cpu_install_embed(o);
    return o;
}
