/* prepare's input files, read as a stream of bytes (plain, or zstd-decompressed for *.zst) or of lines,
 * in bounded memory (a line is held whole). */
#ifndef MT_PREPARE_INPUT_H
#define MT_PREPARE_INPUT_H

#include <stdio.h>

#include "base/common.h"

typedef struct {
    char path[4096];
    FILE *f;
    void *zstd; /* ZSTD_DCtx, NULL for plain files */
    char *zin;
    size_t zin_n, zin_pos, zlast;
    int zin_eof;
    char *buf; /* line buffer: [start, n) not yet returned */
    size_t start, n, cap;
    int eof;
    long long size, consumed; /* file bytes: total and read so far */
    long long decoded;        /* bytes pin_read returned (decompressed for .zst) */
    long line;                /* 1-based number of the last line returned */
} pin;

int pin_open(pin *p, const char *path, mt_err *err);
void pin_close(pin *p);
/* Up to cap decompressed bytes into dst: > 0 bytes, 0 at the end, -1 with err set (read error, corrupt
 * or truncated zstd stream). */
long pin_read(pin *p, char *dst, size_t cap, mt_err *err);
/* The next line without its '\n' (valid until the next call): 1, 0 at the end, -1 with err set. */
int pin_line(pin *p, char **line, size_t *len, mt_err *err);

/* Counts a finished input's compressed and decompressed bytes when it is a .zst file (the summary's rates).
 */
typedef struct prep_stats prep_stats;
void prep_input_done(prep_stats *st, const pin *in);

/* Whether name ends with suffix, ignoring ASCII case (a .TXT file is a .txt file). */
int pin_ends_with(const char *name, const char *suffix);

#endif
