#define _POSIX_C_SOURCE 200809L
#include "parallel/coll.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Point-to-point tags on MPI_COMM_WORLD for finding out, after a timeout, which ranks are waiting in a
 * collective (nothing else in the project sends point-to-point messages). */
enum { TAG_QUERY = 0x4d54, TAG_REPLY = 0x4d55 };

/* A waiting rank polls (yielding its core) this long, then naps between polls, up to MAX_NAP_S each. */
static const double SPIN_S = 0.02, MAX_NAP_S = 1e-3;

static double env_positive(const char *name, double fallback) {
    const char *s = getenv(name);
    char *end;
    double v = s ? strtod(s, &end) : 0;
    return s && *s && !*end && v > 0 ? v : fallback;
}

size_t coll_chunk(void) {
    static size_t chunk;
    if (!chunk) {
        double v = env_positive("MT_CHUNK_ELEMS", (double)(1 << 28));
        chunk = v >= 1 && v <= INT_MAX ? (size_t)v : (size_t)1 << 28;
    }
    return chunk;
}

double coll_timeout(void) {
    static double t;
    if (!t)
        t = env_positive("MT_COMM_TIMEOUT", 600);
    return t;
}

static void nap(double s) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

/* Answers the peers that timed out and ask who is waiting: this rank is, in a collective. */
static void answer_queries(void) {
    for (;;) {
        int flag, q, yes = 1;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, MPI_COMM_WORLD, &flag, &st));
        if (!flag)
            return;
        MPI_CHECK(MPI_Recv(&q, 1, MPI_INT, st.MPI_SOURCE, TAG_QUERY, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        MPI_CHECK(MPI_Send(&yes, 1, MPI_INT, st.MPI_SOURCE, TAG_REPLY, MPI_COMM_WORLD));
    }
}

/* World ranks of the members of c. */
static int *world_ranks(MPI_Comm c, int n) {
    MPI_Group g, wg;
    MPI_CHECK(MPI_Comm_group(c, &g));
    MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &wg));
    int *in = mt_malloc((size_t)n * sizeof *in), *out = mt_malloc((size_t)n * sizeof *out);
    for (int i = 0; i < n; i++)
        in[i] = i;
    MPI_CHECK(MPI_Group_translate_ranks(g, n, in, wg, out));
    MPI_Group_free(&g);
    MPI_Group_free(&wg);
    free(in);
    return out;
}

/* After the timeout: asks every member of c whether it waits in a collective too, gives them a few
 * seconds to answer, names those that did not, and ends the job. */
static void give_up(MPI_Comm c, const char *what, double waited) {
    static const int query = 1;
    int n, me;
    MPI_Comm_size(c, &n);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    int *world = world_ranks(c, n), *answered = mt_calloc((size_t)n, sizeof *answered), missing = 0;
    for (int i = 0; i < n; i++) {
        MPI_Request r;
        answered[i] = world[i] == me;
        if (!answered[i]) {
            MPI_CHECK(MPI_Isend(&query, 1, MPI_INT, world[i], TAG_QUERY, MPI_COMM_WORLD, &r));
            MPI_CHECK(MPI_Request_free(&r));
            missing++;
        }
    }
    double grace = coll_timeout() / 4 < 5 ? coll_timeout() / 4 : 5, t0 = mt_now();
    while (missing && mt_now() - t0 < grace) {
        answer_queries();
        int flag, yes;
        MPI_Status st;
        MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPLY, MPI_COMM_WORLD, &flag, &st));
        if (!flag) {
            nap(MAX_NAP_S);
            continue;
        }
        MPI_CHECK(MPI_Recv(&yes, 1, MPI_INT, st.MPI_SOURCE, TAG_REPLY, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        for (int i = 0; i < n; i++)
            if (world[i] == st.MPI_SOURCE && !answered[i]) {
                answered[i] = 1;
                missing--;
            }
    }
    char list[512] = "";
    size_t len = 0;
    for (int i = 0; i < n && len + 16 < sizeof list; i++)
        if (!answered[i])
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", len ? ", " : "", world[i]);
    if (missing)
        fprintf(stderr,
                "%s: rank %d: %s did not complete within %.0f s (MT_COMM_TIMEOUT): rank%s %s never arrived "
                "(stopped, stuck or dead); ending the job\n",
                mt_program(), me, what, waited, missing > 1 ? "s" : "", list);
    else
        fprintf(stderr,
                "%s: rank %d: %s did not complete within %.0f s (MT_COMM_TIMEOUT) although every rank of the "
                "group is waiting in a collective (mismatched collectives or a broken network); ending the "
                "job\n",
                mt_program(), me, what, waited);
    free(world);
    free(answered);
    MPI_Abort(MPI_COMM_WORLD, MT_EXIT_INTERNAL);
}

/* Completes a non-blocking collective: polls at full speed for SPIN_S, then naps between polls (answering
 * timeout queries) until it completes or the timeout ends the job. */
static void wait_for(MPI_Request *req, MPI_Comm c, const char *what) {
    double t0 = mt_now(), pause = 1e-5;
    for (;;) {
        int done;
        MPI_CHECK(MPI_Test(req, &done, MPI_STATUS_IGNORE));
        if (done)
            return;
        double waited = mt_now() - t0;
        if (waited < SPIN_S) {
            sched_yield(); /* with more ranks than cores, the rank we wait for may need this core */
            continue;
        }
        answer_queries();
        if (waited > coll_timeout())
            give_up(c, what, waited);
        nap(pause);
        pause = pause * 2 < MAX_NAP_S ? pause * 2 : MAX_NAP_S;
    }
}

static size_t type_size(MPI_Datatype t) {
    int s;
    MPI_CHECK(MPI_Type_size(t, &s));
    return (size_t)s;
}

static int comm_size(MPI_Comm c) {
    int s;
    MPI_Comm_size(c, &s);
    return s;
}

void coll_allreduce(MPI_Comm c, void *buf, size_t n, MPI_Datatype t, MPI_Op op, const char *what) {
    size_t es = type_size(t), chunk = coll_chunk();
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        MPI_Request r;
        MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + off * es, (int)k, t, op, c, &r));
        wait_for(&r, c, what);
    }
}

/* Pieces of k elements per rank (size * k <= chunk, so no count inside MPI exceeds the limit). */
static size_t piece(size_t n, int size) {
    size_t k = coll_chunk() / (size_t)size;
    return k < 1 ? 1 : k < n ? k : n;
}

void coll_reduce_scatter(MPI_Comm c, const void *full, void *out, size_t n, MPI_Datatype t,
                         const char *what) {
    int size = comm_size(c);
    size_t es = type_size(t), k = piece(n, size);
    if (k == n) {
        MPI_Request r;
        MPI_CHECK(MPI_Ireduce_scatter_block(full, out, (int)n, t, MPI_SUM, c, &r));
        wait_for(&r, c, what);
        return;
    }
    /* Piece by piece: rank r's part of each piece is gathered into a contiguous staging buffer. */
    char *stage = mt_malloc((size_t)size * k * es);
    for (size_t off = 0; off < n; off += k) {
        size_t len = n - off < k ? n - off : k;
        for (int r = 0; r < size; r++)
            memcpy(stage + (size_t)r * len * es, (const char *)full + ((size_t)r * n + off) * es, len * es);
        MPI_Request req;
        MPI_CHECK(MPI_Ireduce_scatter_block(stage, (char *)out + off * es, (int)len, t, MPI_SUM, c, &req));
        wait_for(&req, c, what);
    }
    free(stage);
}

void coll_allgather(MPI_Comm c, void *full, size_t n, MPI_Datatype t, const char *what) {
    int size = comm_size(c), rank;
    MPI_Comm_rank(c, &rank);
    size_t es = type_size(t), k = piece(n, size);
    if (k == n) {
        MPI_Request r;
        MPI_CHECK(MPI_Iallgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, (int)n, t, c, &r));
        wait_for(&r, c, what);
        return;
    }
    char *stage = mt_malloc((size_t)size * k * es);
    for (size_t off = 0; off < n; off += k) {
        size_t len = n - off < k ? n - off : k;
        MPI_Request r;
        MPI_CHECK(MPI_Iallgather((char *)full + ((size_t)rank * n + off) * es, (int)len, t, stage, (int)len,
                                 t, c, &r));
        wait_for(&r, c, what);
        for (int q = 0; q < size; q++)
            memcpy((char *)full + ((size_t)q * n + off) * es, stage + (size_t)q * len * es, len * es);
    }
    free(stage);
}

void coll_bcast(MPI_Comm c, void *buf, size_t n, MPI_Datatype t, int root, const char *what) {
    size_t es = type_size(t), chunk = coll_chunk();
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        MPI_Request r;
        MPI_CHECK(MPI_Ibcast((char *)buf + off * es, (int)k, t, root, c, &r));
        wait_for(&r, c, what);
    }
}

void coll_barrier(MPI_Comm c, const char *what) {
    MPI_Request r;
    MPI_CHECK(MPI_Ibarrier(c, &r));
    wait_for(&r, c, what);
}

void *coll_gather_bytes(MPI_Comm c, const void *mine, size_t n, int root, size_t *total, const char *what) {
    int size = comm_size(c), rank;
    MPI_Comm_rank(c, &rank);
    CHECK(n <= INT_MAX, "%s: %zu bytes from one rank", what, n);
    int bytes = (int)n, *counts = rank == root ? mt_malloc((size_t)size * sizeof *counts) : NULL;
    MPI_Request r;
    MPI_CHECK(MPI_Igather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, root, c, &r));
    wait_for(&r, c, what);
    int *displs = NULL;
    char *all = NULL;
    size_t sum = 0;
    if (rank == root) {
        displs = mt_malloc((size_t)size * sizeof *displs);
        for (int q = 0; q < size; q++) {
            CHECK(sum + (size_t)counts[q] <= INT_MAX, "%s: over 2 GiB gathered", what);
            displs[q] = (int)sum;
            sum += (size_t)counts[q];
        }
        all = mt_malloc(sum ? sum : 1);
    }
    MPI_CHECK(MPI_Igatherv(mine, bytes, MPI_BYTE, all, counts, displs, MPI_BYTE, root, c, &r));
    wait_for(&r, c, what);
    free(counts);
    free(displs);
    if (total)
        *total = sum;
    return all;
}

int coll_agree(MPI_Comm c, int failed, mt_err *err) {
    int rank, size, world;
    MPI_Comm_rank(c, &rank);
    MPI_Comm_size(c, &size);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    int first = failed ? rank : size;
    coll_allreduce(c, &first, 1, MPI_INT, MPI_MIN, "the agreement on errors");
    if (first == size)
        return 0;
    mt_err local;
    mt_err *e = err ? err : &local;
    if (rank == first) {
        if (!err)
            snprintf(local.msg, sizeof local.msg, "error");
        int wr;
        MPI_Comm_rank(MPI_COMM_WORLD, &wr);
        if (world > 1 && strncmp(e->msg, "rank ", 5)) {
            char prefix[32];
            size_t k = (size_t)snprintf(prefix, sizeof prefix, "rank %d: ", wr);
            memmove(e->msg + k, e->msg, sizeof e->msg - k - 1);
            memcpy(e->msg, prefix, k);
            e->msg[sizeof e->msg - 1] = 0;
        }
    }
    coll_bcast(c, e->msg, sizeof e->msg, MPI_CHAR, first, "the agreement on errors (message)");
    return -1;
}
