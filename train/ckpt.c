/* Checkpoint save, load and resume selection (DESIGN 7); the HDF5 and directory pieces are in
 * ckpt_h5.c and ckpt_files.c, the checksum in ckpt_crc.c. */
#define _POSIX_C_SOURCE 200809L
#include "ckpt.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt_crc.h"
#include "ckpt_internal.h"
#include "data/shard.h"
#include "parallel/coll.h"
#include "parallel/watchdog.h"

/* The three tensor kinds, in file order. */
enum { KIND_PARAMS, KIND_M, KIND_V, N_KINDS };
static const char *const KIND_GROUP[N_KINDS] = {"params", "optim/m", "optim/v"};

/* Every rank returns the same result: when any rank failed, all get the lowest failing rank's message. */
static int agree(int rc, mt_err *err, MPI_Comm comm) { return coll_agree(comm, rc != 0, err); }

static size_t global_numel(const param_info *p) { return (size_t)p->shape[0] * (size_t)p->shape[1]; }

/* Whether this rank's shard of p is the whole global tensor (tp = 1, or a replicated tensor). */
static int holds_full(const param_info *p) {
    return p->row_start == 0 && p->col_start == 0 && p->valid_rows == p->shape[0] &&
           p->local_shape[1] == p->shape[1];
}

/* The flat buffer of a kind and the flat offset of its element 0 (NULL: moments not kept). */
static ops_buf *kind_buf(model *m, optim_state *opt, int kind, size_t *lo, size_t *hi) {
    *lo = 0;
    *hi = m->flat_n;
    if (kind == KIND_PARAMS)
        return m->params;
    if (!opt)
        return NULL;
    *lo = opt->lo;
    *hi = opt->hi;
    return kind == KIND_M ? opt->m : opt->v;
}

/* ---------------------------------------------------------------------------------------------- save */

/* The world layout of m: world rank r is tp rank r % tp of dp rank r / tp (parallel/comm.c). */
typedef struct {
    int tp, zero;
    size_t slice; /* ZeRO-1: flat elements per dp rank */
} layout;

static layout layout_of(model *m, optim_state *opt) {
    int dp = m->comm ? m->comm->size[COMM_DP] : 1;
    return (layout){m->comm ? m->comm->size[COMM_TP] : 1, opt && opt->zero, m->flat_n / (size_t)dp};
}

/* The elements of tensor p (local flat indices [*a, *b) of its shard) that world rank r contributes: its
 * whole shard from dp rank 0, except the Adam moments under ZeRO-1, where every dp rank holds a slice. A
 * tensor replicated over the tp ranks comes from tp rank 0 only, so that the parts of all ranks tile each
 * dataset exactly (each rank writes its part, and the checksums are joined from the parts). */
static int owned(const layout *L, const param_info *p, int kind, int r, size_t *a, size_t *b) {
    int dp_rank = r / L->tp;
    size_t valid = (size_t)p->valid_rows * (size_t)p->local_shape[1];
    if (holds_full(p) && r % L->tp != 0) {
        *a = *b = 0;
    } else if (kind == KIND_PARAMS || !L->zero) {
        *a = 0;
        *b = dp_rank == 0 ? valid : 0;
    } else {
        size_t lo = L->slice * (size_t)dp_rank, hi = lo + L->slice;
        *a = p->offset > lo ? 0 : lo - p->offset;
        *b = p->offset + valid < hi ? valid : hi > p->offset ? hi - p->offset : 0;
    }
    return *a < *b;
}

/* The part of tensor p's global array held by local flat indices [a, b) of a shard: a partial first row,
 * full middle rows and a partial last row, each a rectangle of the shard's rows and columns. */
static ckpt_part shard_part(const param_info *p, size_t a, size_t b, const float *data) {
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

hid_t ckpt_make_group(hid_t file, const char *name) {
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), gcpl = H5Pcreate(H5P_GROUP_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    H5Pset_obj_track_times(gcpl, 0);
    hid_t g = H5Gcreate2(file, name, lcpl, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    H5Pclose(lcpl);
    return g;
}

/* The root attributes as one text, in a fixed order: what the attribute checksum covers. */
static char *meta_text(const ckpt_meta *meta) {
    const char *config = meta->config_json ? meta->config_json : "{}";
    size_t cap = strlen(config) + 512;
    char *t = mt_malloc(cap);
    snprintf(t, cap,
             "format=%s\nformat_version=%d\nstep=%ld\ntokens_seen=%ld\nloader_epoch=%ld\nloader_cursor=%ld\n"
             "rng_state=%llu\nworld_dp=%d\nworld_tp=%d\nthreads=%d\nconfig=%s",
             CKPT_FORMAT, CKPT_FORMAT_VERSION, meta->step, meta->tokens_seen, meta->loader_epoch,
             meta->loader_cursor, (unsigned long long)meta->rng_state, meta->world_dp, meta->world_tp,
             meta->threads, config);
    return t;
}

static uint32_t meta_crc(const ckpt_meta *meta) {
    char *t = meta_text(meta);
    uint32_t c = crc32c(t, strlen(t));
    free(t);
    return c;
}

int ckpt_write_meta(hid_t f, const ckpt_meta *meta) {
    int bad = 0;
    bad |= ckpt_put_str(f, "format", CKPT_FORMAT);
    bad |= ckpt_put_i64(f, "format_version", CKPT_FORMAT_VERSION);
    bad |= ckpt_put_str(f, "config", meta->config_json ? meta->config_json : "{}");
    bad |= ckpt_put_i64(f, "step", meta->step);
    bad |= ckpt_put_i64(f, "tokens_seen", meta->tokens_seen);
    bad |= ckpt_put_i64(f, "loader_epoch", meta->loader_epoch);
    bad |= ckpt_put_i64(f, "loader_cursor", meta->loader_cursor);
    bad |= ckpt_put_u64(f, "rng_state", meta->rng_state);
    bad |= ckpt_put_i64(f, "world_dp", meta->world_dp);
    bad |= ckpt_put_i64(f, "world_tp", meta->world_tp);
    bad |= ckpt_put_i64(f, "threads", meta->threads);
    bad |= ckpt_put_u64(f, "meta_crc32c", meta_crc(meta));
    return bad ? -1 : 0;
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

/* Block checksums of a dataset of n floats, identical on every rank, from every rank's runs: rank 0 joins
 * the runs of each block in offset order; they must tile it exactly. */
static uint32_t *block_crcs(const run_list *mine, size_t n, MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    size_t total;
    crc_run *all = coll_gather_bytes(comm, mine->v, mine->n * sizeof *mine->v, 0, &total,
                                     "the gather of checkpoint checksums");
    size_t nb = ckpt_crc_blocks(n);
    uint32_t *crc = mt_calloc(nb ? nb : 1, sizeof *crc);
    if (rank == 0) {
        size_t n_runs = total / sizeof *all, k = 0;
        qsort(all, n_runs, sizeof *all, run_order);
        for (size_t blk = 0; blk < nb; blk++) {
            uint64_t at = blk * CKPT_CRC_BLOCK_FLOATS * sizeof(float),
                     end = (blk + 1) * CKPT_CRC_BLOCK_FLOATS < n ? (blk + 1) * CKPT_CRC_BLOCK_FLOATS : n;
            end *= sizeof(float);
            uint32_t c = 0; /* crc32c of no bytes */
            for (; k < n_runs && all[k].off < end; k++) {
                CHECK(all[k].off == at && all[k].len <= end - at,
                      "checkpoint: checksum runs overlap or leave a gap at byte %llu",
                      (unsigned long long)at);
                c = crc32c_combine(c, all[k].crc, all[k].len);
                at += all[k].len;
            }
            CHECK(at == end, "checkpoint: checksum runs leave bytes %llu..%llu uncovered",
                  (unsigned long long)at, (unsigned long long)end);
            crc[blk] = c;
        }
        CHECK(k == n_runs, "checkpoint: checksum runs beyond the end of the dataset");
    }
    coll_bcast(comm, crc, nb, MPI_UINT32_T, 0, "the broadcast of checkpoint checksums");
    free(all);
    return crc;
}

/* Writes tensor i of one kind: every rank its owned elements as hyperslabs of the global array, in writes
 * of at most coll_chunk() elements, with the block checksums joined from every rank's runs. Collective:
 * every rank returns the same result. */
static int write_tensor(hid_t g, model *m, optim_state *opt, const layout *L, int kind, int i, float *host,
                        MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    const param_info *p = &m->table.p[i];
    size_t a = 0, b = 0, lo, hi, chunk = coll_chunk();
    ops_buf *buf = kind_buf(m, opt, kind, &lo, &hi);
    if (owned(L, p, kind, rank, &a, &b)) {
        if (buf)
            m->o->to_host(m->o, host, (ops_ptr){buf, p->offset + a - lo}, b - a);
        else /* moments not kept: zeros */
            memset(host, 0, (b - a) * sizeof *host);
    }
    run_list runs = shard_runs(p, a, b, host);
    uint32_t *crc = block_crcs(&runs, global_numel(p), comm);
    free(runs.v);
    hsize_t dims[2] = {(hsize_t)p->shape[0], (hsize_t)p->shape[1]};
    hid_t d = ckpt_create_dataset(g, p->name, p->ndim, dims);
    int rc = agree(d < 0, NULL, comm), failed = 0;
    for (size_t sa = a; sa < b && !rc && !failed; sa += chunk) { /* pieces of at most chunk elements */
        size_t sb = sa + chunk < b ? sa + chunk : b;
        ckpt_part part = shard_part(p, sa, sb, host + (sa - a));
        failed = ckpt_write_part(d, &part);
        watchdog_progress();
    }
    if (!rc)
        rc = agree(failed, NULL, comm);
    if (!rc)
        rc = agree(ckpt_put_crcs(d, crc, ckpt_crc_blocks(global_numel(p))), NULL, comm);
    if (d >= 0)
        H5Dclose(d);
    free(crc);
    return rc;
}

static int write_tensors(hid_t f, const char *tmp, model *m, optim_state *opt, MPI_Comm comm, mt_err *err) {
    size_t biggest = 0;
    for (int i = 0; i < m->table.n; i++)
        biggest = m->table.p[i].numel > biggest ? m->table.p[i].numel : biggest;
    float *host = mt_malloc(biggest * sizeof *host);
    layout L = layout_of(m, opt);
    int rc = 0;
    for (int kind = 0; kind < N_KINDS && !rc; kind++) {
        hid_t g = ckpt_make_group(f, KIND_GROUP[kind]);
        rc = agree(g < 0, NULL, comm) ? mt_fail(err, "%s: cannot create group /%s", tmp, KIND_GROUP[kind]) : 0;
        for (int i = 0; i < m->table.n && !rc; i++)
            if (write_tensor(g, m, opt, &L, kind, i, host, comm))
                rc = mt_fail(err, "%s: cannot write dataset /%s/%s (disk full or I/O error)", tmp,
                             KIND_GROUP[kind], m->table.p[i].name);
        if (g >= 0)
            H5Gclose(g);
    }
    free(host);
    return rc;
}

/* Bytes a checkpoint of m takes: three float32 copies of every tensor (parameters, Adam m and v), their
 * checksums, and room for HDF5's object headers and the root attributes. */
static uint64_t checkpoint_bytes(const model *m, const ckpt_meta *meta) {
    uint64_t bytes = 65536 + (meta->config_json ? strlen(meta->config_json) : 0);
    for (int i = 0; i < m->table.n; i++) {
        size_t n = global_numel(&m->table.p[i]);
        bytes += N_KINDS * (n * sizeof(float) + 4 * ckpt_crc_blocks(n) + 1024);
    }
    return bytes;
}

/* A checkpoint never holds non-finite parameters: the first such tensor of this rank's shard is named. */
static int check_finite(model *m, long step, mt_err *err) {
    for (int i = 0; i < m->table.n; i++) {
        const param_info *p = &m->table.p[i];
        if (!isfinite(m->o->sumsq(m->o, (ops_ptr){m->params, p->offset}, p->numel)))
            return mt_fail(err,
                           "step %ld: parameter %s holds NaN or infinite values; no checkpoint is written (the "
                           "previous one stays latest)",
                           step, p->name);
    }
    return 0;
}

/* After a failed write: gives the file's space back first, so that the few metadata bytes HDF5 flushes
 * on close fit (a close that fails leaves HDF5 in a state that crashes at exit), then closes and deletes. */
void ckpt_discard(hid_t f, const char *tmp, MPI_Comm comm) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    if (rank == 0)
        truncate(tmp, 0); /* on failure there is nothing to give back; the close may still fit */
    coll_barrier(comm, "the barrier before closing a failed checkpoint");
    if (H5Fclose(f) < 0)
        h5_mark_broken();
    if (rank == 0)
        unlink(tmp);
}

/* The HDF5 file tmp through MPI-IO, collectively: created, its space reserved, written, closed; on a
 * failure, discarded. Every rank returns the same result. */
static int write_file(const char *tmp, uint64_t bytes, const ckpt_meta *meta, model *m, optim_state *opt,
                      MPI_Comm comm, mt_err *err) {
    int rank;
    MPI_Comm_rank(comm, &rank);
    hid_t fapl = h5_fapl();
    H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL);
    hid_t fcpl = h5_fcpl(), f = H5Fcreate(tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    int rc =
        f < 0 ? mt_fail(err, "%s: cannot create checkpoint file (does the folder exist and is it writable?)",
                        tmp)
              : 0;
    if (agree(rc, err, comm)) {
        if (f >= 0)
            H5Fclose(f);
        return -1;
    }
    rc = agree(rank == 0 ? ckpt_reserve(tmp, bytes, err) : 0, err, comm);
    if (!rc)
        rc = agree(ckpt_write_meta(f, meta) ? mt_fail(err, "%s: cannot write attributes", tmp) : 0, err,
                   comm);
    if (!rc)
        rc = write_tensors(f, tmp, m, opt, comm, err);
    if (!rc)
        rc = agree(H5Fflush(f, H5F_SCOPE_GLOBAL) < 0 ? mt_fail(err, "%s: cannot flush (disk full?)", tmp) : 0,
                   err, comm);
    if (rc) {
        ckpt_discard(f, tmp, comm);
        return -1;
    }
    if (H5Fclose(f) < 0) {
        h5_mark_broken();
        rc = mt_fail(err, "%s: cannot close (disk full?)", tmp);
    }
    return agree(rc, err, comm);
}

int ckpt_save(const char *dir, const ckpt_meta *meta, model *m, optim_state *opt, int keep_last,
              int keep_every, MPI_Comm comm, mt_err *err) {
    h5_quiet();
    mt_err local;
    if (!err)
        err = &local;
    int rank;
    MPI_Comm_rank(comm, &rank);
    char name[64], tmp[4096];
    snprintf(name, sizeof name, "step_%ld.h5", meta->step);
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    uint64_t bytes = checkpoint_bytes(m, meta);
    if (agree(check_finite(m, meta->step, err), err, comm) ||
        agree(rank == 0 ? ckpt_check_space(dir, name, bytes, err) : 0, err, comm))
        return -1;
    /* HDF5 creates datasets and attributes in collectives of its own, which block without a timeout: a
     * watchdog guards them. */
    static char guarded[128];
    snprintf(guarded, sizeof guarded, "the write of checkpoint %s", name);
    watchdog_arm(guarded);
    int rc = write_file(tmp, bytes, meta, m, opt, comm, err);
    watchdog_disarm();
    if (rc)
        return -1;
    if (rank == 0) {
        rc = ckpt_publish(dir, tmp, name, err);
        if (!rc)
            ckpt_prune(dir, meta->step, keep_last, keep_every);
        else
            unlink(tmp);
    }
    return agree(rc, err, comm);
}

/* ---------------------------------------------------------------------------------------------- load */

/* The range every attribute must lie in: a value outside was not written by meshtrain. */
static const char *meta_problem(const ckpt_meta *m) {
    static const long LIMIT = 1L << 50;
    if (m->step < 0 || m->step > LIMIT)
        return "step";
    if (m->tokens_seen < 0 || m->tokens_seen > LIMIT * 64)
        return "tokens_seen";
    if (m->loader_epoch < 0 || m->loader_epoch > LIMIT)
        return "loader_epoch";
    if (m->loader_cursor < 0 || m->loader_cursor > LIMIT)
        return "loader_cursor";
    if (m->world_dp < 1 || m->world_tp < 1 || m->threads < 1)
        return m->world_dp < 1 ? "world_dp" : m->world_tp < 1 ? "world_tp" : "threads";
    return NULL;
}

int ckpt_read_meta(hid_t f, const char *path, ckpt_meta *meta, mt_err *err) {
    char *format = ckpt_get_str(f, "format");
    int is_ckpt = format && !strcmp(format, CKPT_FORMAT);
    free(format);
    if (!is_ckpt)
        return mt_fail(err, "%s: not a meshtrain checkpoint (attribute format != \"%s\")", path, CKPT_FORMAT);
    long long version = 0;
    if (ckpt_get_i64(f, "format_version", &version) || version != CKPT_FORMAT_VERSION)
        return mt_fail(err,
                       "%s: unsupported checkpoint format_version %lld (this build reads %d; version 1 files "
                       "have no attribute checksum)",
                       path, version, CKPT_FORMAT_VERSION);
    static const char *const LONGS[] = {"step",     "tokens_seen", "loader_epoch", "loader_cursor",
                                        "world_dp", "world_tp",    "threads"};
    long long v[7];
    for (int i = 0; i < 7; i++)
        if (ckpt_get_i64(f, LONGS[i], &v[i]))
            return mt_fail(err, "%s: attribute %s is missing or not an integer", path, LONGS[i]);
    uint64_t rng, crc;
    if (ckpt_get_u64(f, "rng_state", &rng))
        return mt_fail(err, "%s: attribute rng_state is missing or not an integer", path);
    if (ckpt_get_u64(f, "meta_crc32c", &crc))
        return mt_fail(err, "%s: attribute meta_crc32c is missing or not an integer", path);
    char *config = ckpt_get_str(f, "config");
    if (!config)
        return mt_fail(err, "%s: attribute config is missing or not a string", path);
    ckpt_meta got = {.step = (long)v[0],
                     .tokens_seen = (long)v[1],
                     .loader_epoch = (long)v[2],
                     .loader_cursor = (long)v[3],
                     .rng_state = rng,
                     .world_dp = (int)v[4],
                     .world_tp = (int)v[5],
                     .threads = (int)v[6],
                     .config_json = config};
    int narrowed = got.world_dp != v[4] || got.world_tp != v[5] || got.threads != v[6];
    if (narrowed || meta_crc(&got) != crc) {
        ckpt_meta_free(&got);
        return mt_fail(err, "%s: the root attributes fail their checksum (meta_crc32c): corrupted or edited",
                       path);
    }
    const char *bad = meta_problem(&got);
    if (bad) {
        ckpt_meta_free(&got);
        return mt_fail(err, "%s: attribute %s is out of range", path, bad);
    }
    if (meta)
        *meta = got;
    else
        ckpt_meta_free(&got);
    return 0;
}

/* A growing one-line message. */
typedef struct {
    char *buf;
    size_t cap, len;
    int items;
} line;

static void line_add(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void line_add(line *l, const char *fmt, ...) {
    if (l->len + 1 >= l->cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->buf + l->len, l->cap - l->len, fmt, ap);
    va_end(ap);
    l->len = k < 0 ? l->len : l->len + (size_t)k < l->cap ? l->len + (size_t)k : l->cap - 1;
    l->items++;
}

/* The model fields whose values differ between the checkpoint's config and m's. */
static void config_differences(const char *config_json, const model_config *cfg, line *l) {
    cJSON *saved = cJSON_Parse(config_json ? config_json : "");
    const cJSON *sm = saved ? cJSON_GetObjectItemCaseSensitive(saved, "model") : NULL;
    if (!cJSON_IsObject(sm))
        sm = saved;
    cJSON *mine = model_config_to_json(cfg);
    for (const cJSON *f = mine ? mine->child : NULL; f && sm; f = f->next) {
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(sm, f->string);
        if (s && cJSON_Compare(s, f, 1))
            continue;
        char *a = s ? cJSON_PrintUnformatted(s) : NULL, *b = cJSON_PrintUnformatted(f);
        line_add(l, "%s%s %s (checkpoint) vs %s (model)", l->items ? ", " : "", f->string, a ? a : "absent",
                 b ? b : "?");
        free(a);
        free(b);
    }
    cJSON_Delete(mine);
    cJSON_Delete(saved);
}

typedef struct {
    const param_table *t;
    line *l;
    int count;
} extra_ctx;

static herr_t note_extra(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    extra_ctx *c = data;
    if (param_find(c->t, name) < 0 && c->count++ < 2)
        line_add(c->l, "%s%s in the checkpoint but not in the model", c->l->items ? ", " : "", name);
    return 0;
}

/* The tensor set and shapes of the file against m's table; a refusal names the differing config fields and
 * the first differing tensors. */
static int check_tensors(hid_t f, const char *path, model *m, const char *config_json, mt_err *err) {
    char diff[400] = "";
    line l = {diff, sizeof diff, 0, 0};
    int n_diff = 0;
    for (int i = 0; i < m->table.n; i++) {
        const param_info *p = &m->table.p[i];
        char dname[128];
        snprintf(dname, sizeof dname, "params/%s", p->name);
        hsize_t dims[2];
        int nd = ckpt_dataset_shape(f, dname, dims);
        int differs = nd < 0 || nd != p->ndim || (long)dims[0] != p->shape[0] || (long)dims[1] != p->shape[1];
        if (differs && n_diff < 4) {
            if (nd < 0)
                line_add(&l, "%s%s missing from the checkpoint", l.items ? ", " : "", p->name);
            else
                line_add(&l, "%s%s [%lld,%lld] in the checkpoint vs [%ld,%ld] in the model",
                         l.items ? ", " : "", p->name, (long long)dims[0], nd == 2 ? (long long)dims[1] : 1,
                         p->shape[0], p->shape[1]);
        }
        n_diff += differs;
    }
    hid_t g = H5Lexists(f, "params", H5P_DEFAULT) > 0 ? H5Gopen2(f, "params", H5P_DEFAULT) : -1;
    if (g < 0)
        return mt_fail(err, "%s: group /params is missing or unreadable", path);
    line extra = {diff + l.len, sizeof diff - l.len, 0, n_diff ? 1 : 0};
    extra_ctx ctx = {&m->table, &extra, 0};
    H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, note_extra, &ctx);
    H5Gclose(g);
    n_diff += ctx.count;
    if (!n_diff)
        return 0;
    char fields[400] = "";
    line lf = {fields, sizeof fields, 0, 0};
    config_differences(config_json, &m->cfg, &lf);
    return mt_fail(err, "%s: checkpoint is for a different model: config %s; %d tensors differ: %s%s", path,
                   lf.items ? fields : "(no differing model field found)", n_diff, diff,
                   n_diff > 4 + 0 ? ", ..." : "");
}

/* Puts the global tensor `full` of p into the flat buffer `buf` covering flat offsets [lo, hi): this rank's
 * block of rows and columns, then the part of it inside the range; padded rows are zeroed. */
static void scatter_tensor(model *m, const param_info *p, const float *full, ops_buf *buf, size_t lo,
                           size_t hi, float *block) {
    size_t cols = (size_t)p->local_shape[1], valid = (size_t)p->valid_rows * cols;
    const float *local = full;
    if (!holds_full(p)) {
        for (long r = 0; r < p->valid_rows; r++)
            memcpy(block + (size_t)r * cols,
                   full + (size_t)(p->row_start + r) * (size_t)p->shape[1] + (size_t)p->col_start,
                   cols * sizeof *block);
        local = block;
    }
    size_t a = p->offset > lo ? p->offset : lo, b = p->offset + valid < hi ? p->offset + valid : hi;
    if (a < b)
        m->o->from_host(m->o, (ops_ptr){buf, a - lo}, local + (a - p->offset), b - a);
    size_t pa = p->offset + valid > lo ? p->offset + valid : lo,
           pb = p->offset + p->numel < hi ? p->offset + p->numel : hi;
    if (pa < pb)
        m->o->zero(m->o, (ops_ptr){buf, pa - lo}, pb - pa);
}

/* Reads and verifies one tensor of one kind; straight into backend host memory when this rank holds the
 * whole tensor there. */
static int load_tensor(hid_t f, const char *path, model *m, optim_state *opt, int kind, const param_info *p,
                       float *scratch, float *block, mt_err *err) {
    size_t lo, hi;
    ops_buf *buf = kind_buf(m, opt, kind, &lo, &hi);
    char dname[128];
    snprintf(dname, sizeof dname, "%s/%s", KIND_GROUP[kind], p->name);
    size_t n = global_numel(p);
    float *direct = NULL;
    if (holds_full(p) && p->offset >= lo && p->offset + p->numel <= hi && m->o->host_ptr)
        direct = m->o->host_ptr(m->o, (ops_ptr){buf, p->offset - lo});
    CHECK(!direct || !mt_is_device_memory(direct), "device memory passed to HDF5 as a host address");
    float *data = direct ? direct : scratch;
    if (ckpt_read_dataset(f, path, dname, n, data, err))
        return -1;
    for (size_t j = 0; kind == KIND_PARAMS && j < n; j++)
        if (!isfinite(data[j])) /* a file meshtrain wrote never holds these (check_finite) */
            return mt_fail(err, "%s: dataset %s holds NaN or infinite values", path, dname);
    if (direct) {
        if (p->numel > n)
            m->o->zero(m->o, (ops_ptr){buf, p->offset - lo + n}, p->numel - n);
        return 0;
    }
    scatter_tensor(m, p, scratch, buf, lo, hi, block);
    return 0;
}

/* A parameters-only checkpoint (bin/convert hf-import) resumes with Adam's moments at zero. */
static void zero_moments(model *m, optim_state *opt) {
    m->o->zero(m->o, (ops_ptr){opt->m, 0}, opt->hi - opt->lo);
    m->o->zero(m->o, (ops_ptr){opt->v, 0}, opt->hi - opt->lo);
}

static int load_local(const char *path, ckpt_meta *meta_out, model *m, optim_state *opt, mt_err *err) {
    if (access(path, R_OK))
        return mt_fail(err, "%s: cannot open checkpoint", path);
    hid_t fapl = h5_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return mt_fail(err, "%s: not an HDF5 file, or truncated or corrupted", path);
    ckpt_meta meta = {0};
    int rc = ckpt_read_meta(f, path, &meta, err);
    if (!rc)
        rc = check_tensors(f, path, m, meta.config_json, err);
    size_t biggest = 0;
    for (int i = 0; i < m->table.n; i++)
        biggest = global_numel(&m->table.p[i]) > biggest ? global_numel(&m->table.p[i]) : biggest;
    float *scratch = mt_malloc(biggest * sizeof *scratch), *block = mt_malloc(biggest * sizeof *block);
    meta.params_only = H5Lexists(f, "optim", H5P_DEFAULT) <= 0;
    for (int kind = 0; kind < (opt && !meta.params_only ? N_KINDS : 1) && !rc; kind++)
        for (int i = 0; i < m->table.n && !rc; i++)
            rc = load_tensor(f, path, m, opt, kind, &m->table.p[i], scratch, block, err);
    if (!rc && opt && meta.params_only)
        zero_moments(m, opt);
    free(scratch);
    free(block);
    if (H5Fclose(f) < 0 && !rc)
        rc = mt_fail(err, "%s: error closing the file", path);
    if (!rc && meta_out)
        *meta_out = meta;
    else
        ckpt_meta_free(&meta);
    return rc;
}

int ckpt_load(const char *path, ckpt_meta *meta_out, model *m, optim_state *opt, MPI_Comm comm, mt_err *err) {
    h5_quiet();
    mt_err local;
    if (!err)
        err = &local;
    if (meta_out)
        *meta_out = (ckpt_meta){0};
    /* Every rank reads the whole tensors it needs (and so can verify every block it uses). */
    int rc = agree(load_local(path, meta_out, m, opt, err), err, comm);
    if (rc)
        ckpt_meta_free(meta_out);
    return rc;
}

void ckpt_meta_free(ckpt_meta *m) {
    if (!m)
        return;
    free(m->config_json);
    m->config_json = NULL;
}

/* -------------------------------------------------------------------------------------------- verify */

typedef struct {
    hid_t file;
    const char *path, *group;
    float *buf;
    size_t cap;
    mt_err *err;
    int rc;
    int n_kinds; /* params, or params and the moments */
} verify_ctx;

static herr_t verify_one(hid_t g, const char *name, const H5L_info_t *info, void *data) {
    (void)g;
    (void)info;
    verify_ctx *c = data;
    char dname[256];
    snprintf(dname, sizeof dname, "%s/%s", c->group, name);
    hsize_t dims[2];
    int nd = ckpt_dataset_shape(c->file, dname, dims);
    if (nd < 0) {
        c->rc = mt_fail(c->err, "%s: dataset %s is unreadable or not float32", c->path, dname);
        return 1;
    }
    size_t n = (size_t)dims[0] * (nd == 2 ? (size_t)dims[1] : 1);
    if (n > c->cap) {
        free(c->buf);
        c->buf = mt_malloc(n * sizeof *c->buf);
        c->cap = n;
    }
    c->rc = ckpt_read_dataset(c->file, c->path, dname, n, c->buf, c->err);
    if (!c->rc && strcmp(c->group, "params") == 0 && c->n_kinds == N_KINDS)
        for (int k = KIND_M; k < N_KINDS && !c->rc; k++) {
            snprintf(dname, sizeof dname, "%s/%s", KIND_GROUP[k], name);
            if (H5Lexists(c->file, KIND_GROUP[k], H5P_DEFAULT) <= 0 ||
                H5Lexists(c->file, dname, H5P_DEFAULT) <= 0)
                c->rc = mt_fail(c->err, "%s: dataset %s is missing", c->path, dname);
        }
    return c->rc ? 1 : 0;
}

static int verify_local(const char *path, mt_err *err) {
    if (access(path, R_OK))
        return mt_fail(err, "%s: cannot open checkpoint", path);
    hid_t fapl = h5_fapl();
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, fapl);
    H5Pclose(fapl);
    if (f < 0)
        return mt_fail(err, "%s: not an HDF5 file, or truncated or corrupted", path);
    verify_ctx c = {f, path, NULL, NULL, 0, err, ckpt_read_meta(f, path, NULL, err), N_KINDS};
    if (H5Lexists(f, "optim", H5P_DEFAULT) <= 0) /* parameters only (bin/convert hf-import) */
        c.n_kinds = 1;
    for (int k = 0; k < c.n_kinds && !c.rc; k++) {
        c.group = KIND_GROUP[k];
        hid_t g = H5Lexists(f, "optim", H5P_DEFAULT) >= 0 && H5Lexists(f, c.group, H5P_DEFAULT) > 0
                      ? H5Gopen2(f, c.group, H5P_DEFAULT)
                      : -1;
        if (g < 0) {
            c.rc = mt_fail(err, "%s: group /%s is missing or unreadable", path, c.group);
            break;
        }
        if (H5Literate(g, H5_INDEX_NAME, H5_ITER_NATIVE, NULL, verify_one, &c) < 0 && !c.rc)
            c.rc = mt_fail(err, "%s: group /%s is unreadable", path, c.group);
        H5Gclose(g);
    }
    free(c.buf);
    if (H5Fclose(f) < 0 && !c.rc)
        c.rc = mt_fail(err, "%s: error closing the file", path);
    return c.rc;
}

int ckpt_verify(const char *path, MPI_Comm comm, mt_err *err) {
    h5_quiet();
    mt_err local;
    if (!err)
        err = &local;
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = rank == 0 ? verify_local(path, err) : 0;
    return agree(rc, err, comm);
}

/* ---------------------------------------------------------------------------------------------- latest */

/* snprintf for messages where truncation is acceptable (paths in a one-line note). */
static void text(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void text(char *buf, size_t cap, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
}

static int latest_local(const char *dir, char *path_out, size_t cap, char *note, size_t note_cap,
                        mt_err *err) {
    char link[4096], target[4096], why[1100] = "", tried[4096] = "";
    text(link, sizeof link, "%s/latest", dir);
    ssize_t k = readlink(link, target, sizeof target - 1);
    mt_err e;
    if (k < 0)
        text(why, sizeof why, "%s is missing", link);
    else {
        target[k] = 0;
        if (target[0] == '/')
            text(tried, sizeof tried, "%s", target);
        else
            text(tried, sizeof tried, "%s/%s", dir, target);
        if (!verify_local(tried, &e)) {
            text(path_out, cap, "%s", tried);
            if (note && note_cap)
                note[0] = 0;
            return 0;
        }
        text(why, sizeof why, "%s -> %s fails verification (%s)", link, target, e.msg);
    }
    long *steps;
    int n = ckpt_list_steps(dir, &steps);
    if (n < 0)
        return mt_fail(err, "%s: cannot read the checkpoint folder", dir);
    int rc = -1;
    for (int i = n - 1; i >= 0 && rc; i--) {
        char path[4096];
        text(path, sizeof path, "%s/step_%ld.h5", dir, steps[i]);
        if (strcmp(path, tried) && !verify_local(path, &e)) {
            text(path_out, cap, "%s", path);
            if (note && note_cap)
                text(note, note_cap, "checkpoint: %s; resuming from %s instead", why, path);
            rc = 0;
        }
    }
    free(steps);
    return rc ? mt_fail(err, "%s: no valid checkpoint (%s; %d step_*.h5 files checked)", dir, why, n) : 0;
}

int ckpt_latest_valid(const char *dir, char *path_out, size_t cap, char *note, size_t note_cap, MPI_Comm comm,
                      mt_err *err) {
    h5_quiet();
    mt_err local;
    if (!err)
        err = &local;
    int rank;
    MPI_Comm_rank(comm, &rank);
    int rc = rank == 0 ? latest_local(dir, path_out, cap, note, note_cap, err) : 0;
    if (agree(rc, err, comm))
        return -1;
    MPI_Bcast(path_out, (int)cap, MPI_CHAR, 0, comm);
    if (note && note_cap)
        MPI_Bcast(note, (int)note_cap, MPI_CHAR, 0, comm);
    return 0;
}
