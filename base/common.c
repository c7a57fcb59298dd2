#define _GNU_SOURCE /* program_invocation_short_name */
#include "base/common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

void mt_check_failed(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "%s:%d: CHECK(%s) failed: ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

int mt_fail(mt_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void mt_die(const char *prog, int code, const char *fmt, ...) {
    fprintf(stderr, "%s: ", prog);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

const char *mt_program(void) { return program_invocation_short_name; }

void mt_out_of_memory(const char *what, size_t bytes) {
    fprintf(stderr, "%s: out of memory: cannot allocate %.3f GiB for %s\n", mt_program(),
            (double)bytes / (1024.0 * 1024.0 * 1024.0), what);
    exit(MT_EXIT_INTERNAL);
}

void *mt_malloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p)
        mt_out_of_memory("a host buffer", bytes);
    return p;
}

void *mt_calloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        mt_out_of_memory("a host buffer", n * size);
    return p;
}

const char *mt_clip(const char *s, char *buf) {
    size_t n = strlen(s);
    if (n < MT_CLIP_CAP - 32)
        return s;
    snprintf(buf, MT_CLIP_CAP, "%.64s... (%zu bytes)", s, n);
    return buf;
}

char *mt_strdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = mt_malloc(n);
    memcpy(d, s, n);
    return d;
}

char *mt_read_file(const char *path, size_t *len, mt_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        mt_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) { /* /dev/zero would never end */
        fclose(f);
        mt_fail(err, "%s: not a regular file", path);
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = mt_malloc(cap);
    for (;;) {
        if (n + 1 >= cap) {
            cap *= 2;
            buf = realloc(buf, cap);
            if (!buf)
                mt_out_of_memory(path, cap);
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        mt_fail(err, "%s: read error", path);
        return NULL;
    }
    buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

int mt_make_dirs(const char *path, mt_err *err) {
    char p[4096];
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p)
        return mt_fail(err, "%.200s...: path too long", path);
    for (char *c = p + 1;; c++) {
        if (*c != '/' && *c)
            continue;
        char keep = *c;
        *c = 0;
        struct stat st;
        if (mkdir(p, 0777) && errno != EEXIST)
            return mt_fail(err, "%s: cannot create folder: %s", p, strerror(errno));
        if (stat(p, &st) || !S_ISDIR(st.st_mode))
            return mt_fail(err, "%s: cannot create folder: not a folder", p);
        *c = keep;
        if (!keep)
            return 0;
    }
}

double mt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

__attribute__((weak)) int mt_is_device_memory(const void *p) {
    (void)p;
    return 0;
}
