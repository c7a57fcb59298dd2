/* The root attributes of a checkpoint (DESIGN 7): format, version, the run's ckpt_meta and a checksum over
 * all of them, written and read the same way by every writer (ckpt_save, ckpt_writer) and reader. */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/ckpt_crc.h"
#include "train/ckpt_internal.h"

/* The root attributes as one text, in a fixed order: what the attribute checksum covers. */
static char *meta_text(const ckpt_meta *meta) {
    const char *config = meta->config_json ? meta->config_json : "{}";
    size_t cap = strlen(config) + (meta->lora_base ? strlen(meta->lora_base) : 0) + 600;
    char *t = mt_malloc(cap);
    int n =
        snprintf(t, cap,
                 "format=%s\nformat_version=%d\nstep=%ld\ntokens_seen=%ld\nloader_epoch=%ld\nloader_cursor=%"
                 "ld\nrng_state=%llu\nworld_dp=%d\nworld_tp=%d\nthreads=%d\nconfig=%s",
                 CKPT_FORMAT, CKPT_FORMAT_VERSION, meta->step, meta->tokens_seen, meta->loader_epoch,
                 meta->loader_cursor, (unsigned long long)meta->rng_state, meta->world_dp, meta->world_tp,
                 meta->threads, config);
    if (meta->lora_base) /* adapter checkpoints only: the text of every other checkpoint is unchanged */
        snprintf(t + n, cap - (size_t)n, "\nlora_base=%s\nlora_base_crc32c=%u", meta->lora_base,
                 (unsigned)meta->lora_base_crc);
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
    bad |= h5_put_str(f, "format", CKPT_FORMAT);
    bad |= h5_put_i64(f, "format_version", CKPT_FORMAT_VERSION);
    bad |= h5_put_str(f, "config", meta->config_json ? meta->config_json : "{}");
    bad |= h5_put_i64(f, "step", meta->step);
    bad |= h5_put_i64(f, "tokens_seen", meta->tokens_seen);
    bad |= h5_put_i64(f, "loader_epoch", meta->loader_epoch);
    bad |= h5_put_i64(f, "loader_cursor", meta->loader_cursor);
    bad |= h5_put_u64(f, "rng_state", meta->rng_state);
    bad |= h5_put_i64(f, "world_dp", meta->world_dp);
    bad |= h5_put_i64(f, "world_tp", meta->world_tp);
    bad |= h5_put_i64(f, "threads", meta->threads);
    if (meta->lora_base) {
        bad |= h5_put_str(f, "lora_base", meta->lora_base);
        bad |= h5_put_u64(f, "lora_base_crc32c", meta->lora_base_crc);
    }
    bad |= h5_put_u64(f, "meta_crc32c", meta_crc(meta));
    return bad ? -1 : 0;
}

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

/* The format and version attributes: those this build reads. */
static int check_format(hid_t f, const char *path, mt_err *err) {
    char *format = h5_get_str(f, "format", NULL);
    int is_ckpt = format && !strcmp(format, CKPT_FORMAT);
    free(format);
    if (!is_ckpt)
        return mt_fail(err, "%s: not a meshtrain checkpoint (attribute format != \"%s\")", path, CKPT_FORMAT);
    long long version = 0;
    if (h5_get_i64(f, "format_version", &version) || version != CKPT_FORMAT_VERSION)
        return mt_fail(err,
                       "%s: unsupported checkpoint format_version %lld (this build reads %d; version 1 files "
                       "have no attribute checksum)",
                       path, version, CKPT_FORMAT_VERSION);
    return 0;
}

/* The attributes of ckpt_meta (got->config_json allocated) and their checksum, of the right types; *narrowed
 * when an int field does not hold the stored value. */
static int read_fields(hid_t f, const char *path, ckpt_meta *got, uint64_t *crc, int *narrowed, mt_err *err) {
    static const char *const LONGS[] = {"step",     "tokens_seen", "loader_epoch", "loader_cursor",
                                        "world_dp", "world_tp",    "threads"};
    long long v[7];
    for (int i = 0; i < 7; i++)
        if (h5_get_i64(f, LONGS[i], &v[i]))
            return mt_fail(err, "%s: attribute %s is missing or not an integer", path, LONGS[i]);
    uint64_t rng;
    if (h5_get_u64(f, "rng_state", &rng))
        return mt_fail(err, "%s: attribute rng_state is missing or not an integer", path);
    if (h5_get_u64(f, "meta_crc32c", crc))
        return mt_fail(err, "%s: attribute meta_crc32c is missing or not an integer", path);
    char *config = h5_get_str(f, "config", NULL);
    if (!config)
        return mt_fail(err, "%s: attribute config is missing or not a string", path);
    *got = (ckpt_meta){.step = (long)v[0],
                       .tokens_seen = (long)v[1],
                       .loader_epoch = (long)v[2],
                       .loader_cursor = (long)v[3],
                       .rng_state = rng,
                       .world_dp = (int)v[4],
                       .world_tp = (int)v[5],
                       .threads = (int)v[6],
                       .config_json = config};
    *narrowed = got->world_dp != v[4] || got->world_tp != v[5] || got->threads != v[6];
    uint64_t base_crc = 0;
    got->lora_base = h5_get_str(f, "lora_base", NULL);
    if (got->lora_base && h5_get_u64(f, "lora_base_crc32c", &base_crc)) {
        ckpt_meta_free(got);
        return mt_fail(err, "%s: attribute lora_base_crc32c is missing or not an integer", path);
    }
    got->lora_base_crc = (uint32_t)base_crc;
    *narrowed |= got->lora_base_crc != base_crc;
    return 0;
}

int ckpt_read_meta(hid_t f, const char *path, ckpt_meta *meta, mt_err *err) {
    ckpt_meta got;
    uint64_t crc;
    int narrowed = 0, rc = 0;
    if (check_format(f, path, err) || read_fields(f, path, &got, &crc, &narrowed, err))
        return -1;
    const char *bad = NULL;
    if (narrowed || meta_crc(&got) != crc)
        rc = mt_fail(err, "%s: the root attributes fail their checksum (meta_crc32c): corrupted or edited",
                     path);
    else if ((bad = meta_problem(&got)))
        rc = mt_fail(err, "%s: attribute %s is out of range", path, bad);
    if (!rc && meta)
        *meta = got;
    else
        ckpt_meta_free(&got);
    return rc;
}

void ckpt_meta_free(ckpt_meta *m) {
    if (!m)
        return;
    free(m->config_json);
    free(m->lora_base);
    m->config_json = NULL;
    m->lora_base = NULL;
}
