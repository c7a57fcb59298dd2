/* Compiled twice, as model/backend.c is: without MT_CUDA into the CPU-only build, with it into the CUDA
 * builds (the real one and the emulated one of the test suite). */
#include "parallel/comm_backend.h"

#include <string.h>

#ifdef MT_CUDA
#include "parallel/cuda/comm_nccl.h"
#endif

int comm_attach_backend(comm_ctx *c, ops *o, mt_err *err) {
#ifdef MT_CUDA
    if (!strcmp(o->name, "cuda")) {
        const comm_device *dev = comm_nccl_create(c, err);
        if (!dev)
            return -1;
        comm_attach_device(c, dev);
    }
#else
    (void)o;
    (void)c;
    (void)err;
#endif
    return 0;
}
