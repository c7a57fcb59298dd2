/* Compiled twice: without MT_CUDA into the CPU-only build, with it into the CUDA builds (the real one and
 * the emulated one of the test suite). */
#include "model/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef MT_CUDA
#include "model/cuda/cuda.h"
#endif

int backend_has_cuda(void) {
#ifdef MT_CUDA
    return 1;
#else
    return 0;
#endif
}

#ifdef MT_CUDA
/* The rank's index on its node, from the launcher's environment (Open MPI, Slurm, MPICH/Hydra). */
static int local_rank(void) {
    static const char *const VARS[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof VARS / sizeof *VARS; i++) {
        const char *v = getenv(VARS[i]);
        if (v && *v)
            return atoi(v);
    }
    return 0;
}
#endif

ops *backend_create(const char *kind, int threads, mt_err *err) {
    if (!strcmp(kind, "cpu"))
        return ops_cpu_create(threads);
#ifdef MT_CUDA
    mt_err why;
    ops *o = ops_cuda_create(local_rank(), &why);
    if (o)
        return o;
    if (!strcmp(kind, "auto")) {
        fprintf(stderr, "warning: %s; backend \"auto\" runs on the CPU\n", why.msg);
        return ops_cpu_create(threads);
    }
    mt_fail(err, "%s", why.msg);
    return NULL;
#else
    CHECK(!strcmp(kind, "auto"), "backend \"%s\" in a build without CUDA", kind);
    (void)err;
    fprintf(stderr, "warning: this build has no CUDA backend (make CUDA=1); backend \"auto\" runs on "
                    "the CPU\n");
    return ops_cpu_create(threads);
#endif
}
