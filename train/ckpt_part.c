/* What one rank writes of a tensor's shard in a checkpoint (DESIGN 7): the rectangles of the global array
 * that a flat range of the shard covers, and the block checksums of the whole dataset joined on rank 0
 * from the checksummed runs every rank holds, without moving the data. */
#define _POSIX_C_SOURCE 200809L
#include <stdlib.h>

#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

/* The part of tensor p's global array held by local flat indices [a, b) of a shard: a partial first row,
 * full middle rows and a partial last row, each a rectangle of the shard's rows and columns. */
ckpt_part ckpt_shard_part(const param_info *p, size_t a, size_t b, const float *data) {
    ckpt_part part = {.n = 0, .data = data};
    size_t cols = (size_t)p->local_shape[1];
    for (size_t e = a; e < b;) {
        size_t r = e / cols, c = e % cols, rows = 1, width = cols;
        if (c || b - e < cols)
            width = cols - c < b - e ? cols - c : b - e;
        else
            rows = (b - e) / cols;
        part.start[part.n][0] = (hsize_t)p->row_start + r;
        part.start[part.n][1] = (hsize_t)p->col_start + c;
        part.count[part.n][0] = rows;
        part.count[part.n][1] = width;
        part.n++;
        e += rows * width;
    }
    return part;
}

/* A piece of a dataset's global row-major float32 bytes that one rank holds contiguously, inside one
 * checksum block, with its CRC32C. */
typedef struct {
    uint64_t off, len;
    uint32_t crc;
    uint32_t zero; /* no padding: the runs go to rank 0 as raw bytes, every one of them set */
} crc_run;

typedef struct {
    crc_run *v;
    size_t n, cap;
} run_list;

/* Appends the run of n floats at global element g (data: their values), cut at checksum block bounds. */
static void add_run(run_list *l, size_t g, size_t n, const float *data) {
    while (n) {
        size_t len = CKPT_CRC_BLOCK_FLOATS - g % CKPT_CRC_BLOCK_FLOATS;
        len = len < n ? len : n;
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 16;
            l->v = realloc(l->v, l->cap * sizeof *l->v);
            CHECK(l->v, "out of memory");
        }
        l->v[l->n++] = (crc_run){g * sizeof *data, len * sizeof *data, crc32c(data, len * sizeof *data), 0};
        g += len;
        n -= len;
        data += len;
    }
}

/* The checksummed runs of local flat indices [a, b) of p's shard (values in data): row pieces that
 * continue each other in the global array (a shard spanning all columns) are joined first, so a run is
 * as long as the block bounds allow. */
static run_list shard_runs(const param_info *p, size_t a, size_t b, const float *data) {
    run_list l = {NULL, 0, 0};
    size_t cols = (size_t)p->local_shape[1], run_g = 0, run_a = a, run_n = 0;
    for (size_t e = a; e < b;) {
        size_t c = e % cols, len = cols - c < b - e ? cols - c : b - e;
        size_t g = ((size_t)p->row_start + e / cols) * (size_t)p->shape[1] + (size_t)p->col_start + c;
        if (run_n && run_g + run_n == g)
            run_n += len;
        else {
            add_run(&l, run_g, run_n, data + (run_a - a));
            run_g = g;
            run_a = e;
            run_n = len;
        }
        e += len;
    }
    add_run(&l, run_g, run_n, data + (run_a - a));
    return l;
}

static int run_order(const void *x, const void *y) {
    const crc_run *a = x, *b = y;
    return a->off < b->off ? -1 : a->off > b->off;
}

/* The nb block checksums of a dataset of n floats from all its runs, sorted here: the runs of each block, in
 * offset order, must tile it exactly. */
static void join_runs(crc_run *all, size_t n_runs, size_t n, uint32_t *crc, size_t nb) {
    size_t k = 0;
    qsort(all, n_runs, sizeof *all, run_order);
    for (size_t blk = 0; blk < nb; blk++) {
        uint64_t at = blk * CKPT_CRC_BLOCK_FLOATS * sizeof(float),
                 end = (blk + 1) * CKPT_CRC_BLOCK_FLOATS < n ? (blk + 1) * CKPT_CRC_BLOCK_FLOATS : n;
        end *= sizeof(float);
        uint32_t c = 0; /* crc32c of no bytes */
        for (; k < n_runs && all[k].off < end; k++) {
            CHECK(all[k].off == at && all[k].len <= end - at,
                  "checkpoint: checksum runs overlap or leave a gap at byte %llu", (unsigned long long)at);
            c = crc32c_combine(c, all[k].crc, all[k].len);
            at += all[k].len;
        }
        CHECK(at == end, "checkpoint: checksum runs leave bytes %llu..%llu uncovered", (unsigned long long)at,
              (unsigned long long)end);
        crc[blk] = c;
    }
    CHECK(k == n_runs, "checkpoint: checksum runs beyond the end of the dataset");
}

/* Block checksums of a dataset of n floats, identical on every rank, joined on rank 0 from every rank's
 * runs. */
static uint32_t *block_crcs(const run_list *mine, size_t n, MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    size_t total;
    crc_run *all = coll_gather_bytes(comm, mine->v, mine->n * sizeof *mine->v, 0, &total,
                                     "the gather of checkpoint checksums");
    size_t nb = ckpt_crc_blocks(n);
    uint32_t *crc = mt_calloc(nb ? nb : 1, sizeof *crc);
    if (rank == 0)
        join_runs(all, total / sizeof *all, n, crc, nb);
    coll_bcast(comm, crc, nb, MPI_UINT32_T, 0, "the broadcast of checkpoint checksums");
    free(all);
    return crc;
}

uint32_t *ckpt_shard_crcs(const param_info *p, size_t a, size_t b, const float *data, MPI_Comm comm) {
    run_list runs = shard_runs(p, a, b, data);
    uint32_t *crc = block_crcs(&runs, ckpt_numel(p), comm);
    free(runs.v);
    return crc;
}
