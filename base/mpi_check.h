/* Every MPI call of the project is checked: a failure is a programmer or system error (CHECK). */
#ifndef MT_MPI_CHECK_H
#define MT_MPI_CHECK_H

#include <mpi.h>

#include "base/common.h"

#define MPI_CHECK(call)                                                                                      \
    do {                                                                                                     \
        int rc_ = (call);                                                                                    \
        CHECK(rc_ == MPI_SUCCESS, "%s failed with MPI error %d", #call, rc_);                                \
    } while (0)

#endif
