#define _POSIX_C_SOURCE 200809L /* fileno */
#include "data/prepare_input.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <zstd.h>

int pin_ends_with(const char *name, const char *suffix) {
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && !strcasecmp(name + n - m, suffix);
}

int pin_open(pin *p, const char *path, mt_err *err) {
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "%s", path);
    p->f = fopen(path, "rb");
    if (!p->f)
        return mt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(p->f), &st) == 0)
        p->size = st.st_size;
    if (pin_ends_with(path, ".zst")) {
        p->zstd = ZSTD_createDCtx();
        CHECK(p->zstd, "out of memory");
        p->zin = mt_malloc(ZSTD_DStreamInSize());
    }
    return 0;
}

void pin_close(pin *p) {
    if (p->f)
        fclose(p->f);
    if (p->zstd)
        ZSTD_freeDCtx(p->zstd);
    free(p->zin);
    free(p->buf);
    memset(p, 0, sizeof *p);
}

static long plain_read(pin *p, char *dst, size_t cap, mt_err *err) {
    size_t got = fread(dst, 1, cap, p->f);
    p->consumed += (long long)got;
    if (got == 0 && ferror(p->f))
        return mt_fail(err, "%s: read error at byte %lld", p->path, p->consumed);
    return (long)got;
}

static long zstd_read(pin *p, char *dst, size_t cap, mt_err *err);

long pin_read(pin *p, char *dst, size_t cap, mt_err *err) {
    long got = p->zstd ? zstd_read(p, dst, cap, err) : plain_read(p, dst, cap, err);
    if (got > 0)
        p->decoded += got;
    return got;
}

static long zstd_read(pin *p, char *dst, size_t cap, mt_err *err) {
    for (;;) {
        if (p->zin_pos == p->zin_n && !p->zin_eof) {
            long got = plain_read(p, p->zin, ZSTD_DStreamInSize(), err);
            if (got < 0)
                return -1;
            p->zin_n = (size_t)got;
            p->zin_pos = 0;
            p->zin_eof = got == 0;
        }
        int at_end = p->zin_eof && p->zin_pos == p->zin_n;
        if (at_end && p->zlast == 0) /* every frame complete (or no frame at all) */
            return 0;
        ZSTD_inBuffer in = {p->zin, p->zin_n, p->zin_pos};
        ZSTD_outBuffer out = {dst, cap, 0};
        size_t r = ZSTD_decompressStream(p->zstd, &out, &in);
        if (ZSTD_isError(r))
            return mt_fail(err, "%s: corrupt zstd stream near compressed byte %lld: %s", p->path,
                           p->consumed - (long long)(p->zin_n - in.pos), ZSTD_getErrorName(r));
        if (in.pos > p->zin_pos || out.pos > 0)
            p->zlast = r; /* 0: a frame ended here */
        p->zin_pos = in.pos;
        if (out.pos > 0)
            return (long)out.pos;
        if (at_end)
            return mt_fail(err, "%s: truncated zstd stream (ends at byte %lld inside a frame)", p->path,
                           p->consumed);
    }
}

int pin_line(pin *p, char **line, size_t *len, mt_err *err) {
    size_t scanned = p->start;
    for (;;) {
        char *nl = scanned < p->n ? memchr(p->buf + scanned, '\n', p->n - scanned) : NULL;
        if (nl || (p->eof && p->start < p->n)) {
            size_t end = nl ? (size_t)(nl - p->buf) : p->n;
            *line = p->buf + p->start;
            *len = end - p->start;
            p->start = nl ? end + 1 : end;
            p->line++;
            return 1;
        }
        if (p->eof)
            return 0;
        scanned = p->n;
        if (p->start > 0) { /* keep the partial line at the front */
            memmove(p->buf, p->buf + p->start, p->n - p->start);
            p->n -= p->start;
            scanned -= p->start;
            p->start = 0;
        }
        if (p->cap - p->n < (1 << 16)) {
            p->cap = p->cap ? p->cap * 2 : 1 << 20;
            p->buf = realloc(p->buf, p->cap);
            CHECK(p->buf, "out of memory reading %s", p->path);
        }
        long got = pin_read(p, p->buf + p->n, p->cap - p->n, err);
        if (got < 0)
            return -1;
        if (got == 0)
            p->eof = 1;
        p->n += (size_t)got;
    }
}
