/* safetensors reader and writer (SPEC 5.4); see safetensors.h. */
#define _POSIX_C_SOURCE 200809L
#include "train/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The data are little-endian and are moved as the host's bytes. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors I/O assumes a little-endian host"
#endif

enum { STAGE_ELEMS = 1 << 20 }; /* 16-bit elements converted per pread / pwrite */

static const struct {
    const char *name;
    size_t size;
} DTYPES[ST_N_DTYPES] = {
    [ST_BOOL] = {"BOOL", 1},       [ST_U8] = {"U8", 1},           [ST_I8] = {"I8", 1},
    [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},         [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},
    [ST_I32] = {"I32", 4},         [ST_U32] = {"U32", 4},         [ST_F32] = {"F32", 4},
    [ST_I64] = {"I64", 8},         [ST_U64] = {"U64", 8},         [ST_F64] = {"F64", 8},
};

const char *st_dtype_name(st_dtype d) { return DTYPES[d].name; }
size_t st_dtype_size(st_dtype d) { return DTYPES[d].size; }
int st_dtype_is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16; }

uint64_t st_numel(const st_tensor *t) {
    uint64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i]; /* cannot overflow: st_parse_header checked the product */
    return n;
}

/* --------------------------------------------------------------------------------------- conversions */

float st_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* IEEE half precision. Clang before 15 has no _Float16 on x86 (the fuzz build, README "Fuzzing"); its
 * __fp16 is the same format, converted by F16C instructions that round to nearest even as well. */
#if defined(__clang__) && __clang_major__ < 15
typedef __fp16 st_half;
#else
typedef _Float16 st_half;
#endif

float st_f16_to_f32(uint16_t h) {
    st_half x;
    memcpy(&x, &h, 2);
    return (float)x;
}

uint16_t st_f32_to_bf16(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep the sign, force a quiet payload */
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

uint16_t st_f32_to_f16(float x) {
    st_half h = (st_half)x; /* the conversion rounds to nearest even (the default rounding mode) */
    uint16_t u;
    memcpy(&u, &h, 2);
    return u;
}

/* ------------------------------------------------------------------------------------------ parsing */

/* Length of the longest valid UTF-8 prefix of s (strict: no overlong forms, surrogates or > U+10FFFF). */
static size_t utf8_valid_prefix(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        if (!n || i + n > len)
            return i;
        uint32_t cp = n == 1 ? c : c & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        static const uint32_t MIN[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < MIN[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return i;
        i += n;
    }
    return i;
}

/* A JSON number that is an integer in [0, 2^53] (exact in a double, as every offset of a real file is). */
static int get_u64(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v))
        return -1;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= 9007199254740992.0) || d != floor(d))
        return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_dtype(const cJSON *v, st_dtype *out) {
    for (int d = 0; cJSON_IsString(v) && d < ST_N_DTYPES; d++)
        if (!strcmp(v->valuestring, DTYPES[d].name)) {
            *out = (st_dtype)d;
            return 0;
        }
    return -1;
}

static int parse_metadata(const cJSON *m, const char *path, mt_err *err) {
    if (!cJSON_IsObject(m))
        return mt_fail(err, "%s: header: __metadata__ is not an object", path);
    for (const cJSON *e = m->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return mt_fail(err, "%s: header: __metadata__ value \"%s\" is not a string", path, e->string);
    return 0;
}

/* One tensor entry: dtype, shape, offsets, and a byte range that matches them. */
static int parse_entry(const cJSON *e, uint64_t data_len, const char *path, st_tensor *t, mt_err *err) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e))
        return mt_fail(err, "%s: header: entry \"%s\" is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (parse_dtype(dt, &t->dtype))
        return mt_fail(err, "%s: tensor %s: missing or unknown dtype", path, nm);
    int nd = cJSON_GetArraySize(sh);
    if (!cJSON_IsArray(sh) || nd > ST_MAX_DIMS)
        return mt_fail(err, "%s: tensor %s: shape is not a list of at most %d sizes", path, nm, ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1, bytes;
    for (int i = 0; i < nd; i++)
        if (get_u64(cJSON_GetArrayItem(sh, i), &t->shape[i]) ||
            __builtin_mul_overflow(numel, t->shape[i], &numel))
            return mt_fail(err, "%s: tensor %s: shape entry %d is not a valid size", path, nm, i);
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 ||
        get_u64(cJSON_GetArrayItem(off, 0), &t->begin) || get_u64(cJSON_GetArrayItem(off, 1), &t->end) ||
        t->begin > t->end)
        return mt_fail(err, "%s: tensor %s: data_offsets is not a pair [begin, end] with begin <= end", path,
                       nm);
    if (t->end > data_len)
        return mt_fail(err, "%s: tensor %s: data_offsets [%llu, %llu] lie outside the %llu-byte data buffer",
                       path, nm, (unsigned long long)t->begin, (unsigned long long)t->end,
                       (unsigned long long)data_len);
    if (__builtin_mul_overflow(numel, (uint64_t)st_dtype_size(t->dtype), &bytes) ||
        bytes != t->end - t->begin)
        return mt_fail(
            err, "%s: tensor %s: %s of %llu elements is not the %llu bytes of data_offsets [%llu, %llu]",
            path, nm, st_dtype_name(t->dtype), (unsigned long long)numel,
            (unsigned long long)(t->end - t->begin), (unsigned long long)t->begin,
            (unsigned long long)t->end);
    t->name = mt_strdup(nm);
    return 0;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const st_tensor *)a)->name, ((const st_tensor *)b)->name);
}

static int by_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* Unique names, and byte ranges that tile [0, data_len) exactly. */
static int check_layout(const st_header *h, uint64_t data_len, const char *path, mt_err *err) {
    for (size_t i = 1; i < h->n; i++)
        if (!strcmp(h->t[i - 1].name, h->t[i].name))
            return mt_fail(err, "%s: header: tensor %s appears twice", path, h->t[i].name);
    const st_tensor **order = mt_malloc((h->n ? h->n : 1) * sizeof *order);
    for (size_t i = 0; i < h->n; i++)
        order[i] = &h->t[i];
    qsort(order, h->n, sizeof *order, by_offset);
    uint64_t next = 0;
    int rc = 0;
    for (size_t i = 0; i < h->n && !rc; i++) {
        const st_tensor *t = order[i];
        if (t->begin < next)
            rc = mt_fail(
                err, "%s: tensor %s: data_offsets [%llu, %llu] overlap the previous tensor (ends at %llu)",
                path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                (unsigned long long)next);
        else if (t->begin > next)
            rc = mt_fail(err,
                         "%s: tensor %s: data_offsets [%llu, %llu] leave bytes %llu..%llu of the data unused",
                         path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                         (unsigned long long)next, (unsigned long long)t->begin);
        next = t->end;
    }
    free(order);
    if (!rc && next != data_len)
        rc = mt_fail(err, "%s: the tensors cover %llu bytes of data but the file holds %llu after the header",
                     path, (unsigned long long)next, (unsigned long long)data_len);
    return rc;
}

static int parse_tree(const cJSON *root, uint64_t data_len, const char *path, st_header *h, mt_err *err) {
    if (!cJSON_IsObject(root))
        return mt_fail(err, "%s: header is not a JSON object", path);
    h->t = mt_calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *h->t);
    for (const cJSON *e = root->child; e; e = e->next) {
        for (const char *c = e->string; *c; c++) /* escapes such as \n: no name is printed with them */
            if ((unsigned char)*c < 0x20)
                return mt_fail(err, "%s: header: a tensor name contains a control character", path);
        if (!strcmp(e->string, "__metadata__")) {
            if (parse_metadata(e, path, err))
                return -1;
        } else if (parse_entry(e, data_len, path, &h->t[h->n], err)) {
            return -1;
        } else {
            h->n++;
        }
    }
    qsort(h->t, h->n, sizeof *h->t, by_name);
    return check_layout(h, data_len, path, err);
}

int st_parse_header(const char *json, size_t len, uint64_t data_len, const char *path, st_header *h,
                    mt_err *err) {
    memset(h, 0, sizeof *h);
    size_t valid = utf8_valid_prefix((const unsigned char *)json, len);
    if (valid < len)
        return mt_fail(err, "%s: header is not valid UTF-8 (byte %zu of %zu)", path, valid, len);
    /* Raw control characters are invalid anywhere in JSON; rejecting them also keeps NUL out of names. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)json[i] < 0x20 && json[i] != '\t' && json[i] != '\n' && json[i] != '\r')
            return mt_fail(err, "%s: header is not valid JSON (control character at byte %zu)", path, i);
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(json, len, &end, 0);
    if (!root) {
        size_t at = end && end >= json ? (size_t)(end - json) : 0;
        return mt_fail(err, "%s: header is not valid JSON (error at byte %zu of %zu)", path, at, len);
    }
    size_t rest = (size_t)(end - json);
    while (rest < len && strchr(" \t\r\n", json[rest]))
        rest++;
    int rc = rest < len ? mt_fail(err, "%s: header has bytes after its JSON object (at byte %zu)", path, rest)
                        : parse_tree(root, data_len, path, h, err);
    cJSON_Delete(root);
    if (rc)
        st_header_free(h);
    return rc;
}

void st_header_free(st_header *h) {
    for (size_t i = 0; h->t && i < h->n; i++)
        free(h->t[i].name);
    free(h->t);
    memset(h, 0, sizeof *h);
}

const st_tensor *st_find(const st_header *h, const char *name) {
    st_tensor key = {.name = (char *)name};
    return h->n ? bsearch(&key, h->t, h->n, sizeof *h->t, by_name) : NULL;
}

/* ------------------------------------------------------------------------------------------ reading */

/* pread of exactly n bytes; -1 on an error or a short file. */
static int pread_all(int fd, void *buf, size_t n, uint64_t off) {
    for (size_t done = 0; done < n;) {
        ssize_t k = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static int pwrite_all(int fd, const void *buf, size_t n, uint64_t off) {
    for (size_t done = 0; done < n;) {
        ssize_t k = pwrite(fd, (const char *)buf + done, n - done, (off_t)(off + done));
        if (k <= 0)
            return -1;
        done += (size_t)k;
    }
    return 0;
}

static int open_checked(st_file *f, mt_err *err) {
    const char *path = f->path;
    struct stat st;
    if (fstat(f->fd, &st) || !S_ISREG(st.st_mode))
        return mt_fail(err, "%s: not a regular file", path);
    uint64_t size = (uint64_t)st.st_size, n;
    unsigned char len8[8];
    if (size < 8 || pread_all(f->fd, len8, 8, 0))
        return mt_fail(err, "%s: %llu bytes: too short for a safetensors header length", path,
                       (unsigned long long)size);
    n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | len8[i];
    if (n > ST_MAX_HEADER)
        return mt_fail(err, "%s: header length %llu exceeds the format's limit of %d bytes", path,
                       (unsigned long long)n, ST_MAX_HEADER);
    if (n > size - 8)
        return mt_fail(err, "%s: header length %llu goes beyond the end of the %llu-byte file", path,
                       (unsigned long long)n, (unsigned long long)size);
    char *json = mt_malloc(n ? n : 1);
    int rc = pread_all(f->fd, json, n, 8) ? mt_fail(err, "%s: cannot read the header", path)
                                          : st_parse_header(json, n, size - 8 - n, path, &f->h, err);
    free(json);
    f->data_start = 8 + n;
    return rc;
}

int st_open(st_file *f, const char *path, mt_err *err) {
    memset(f, 0, sizeof *f);
    f->fd = open(path, O_RDONLY);
    if (f->fd < 0)
        return mt_fail(err, "%s: cannot open: %s", path, strerror(errno));
    f->path = mt_strdup(path);
    if (open_checked(f, err)) {
        st_close(f);
        return -1;
    }
    f->stage = mt_malloc(STAGE_ELEMS * sizeof *f->stage);
    return 0;
}

void st_close(st_file *f) {
    if (f->fd >= 0)
        close(f->fd);
    st_header_free(&f->h);
    free(f->path);
    free(f->stage);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

int st_read_f32(st_file *f, const st_tensor *t, uint64_t first, size_t n, float *out, mt_err *err) {
    CHECK(first + n <= st_numel(t), "read past the end of tensor %s", t->name);
    if (!st_dtype_is_float(t->dtype))
        return mt_fail(err, "%s: tensor %s has dtype %s (F32, F16 or BF16 expected)", f->path, t->name,
                       st_dtype_name(t->dtype));
    size_t es = st_dtype_size(t->dtype);
    uint64_t off = f->data_start + t->begin + first * es;
    if (t->dtype == ST_F32) {
        if (pread_all(f->fd, out, n * 4, off))
            return mt_fail(err, "%s: cannot read tensor %s (file truncated?)", f->path, t->name);
        return 0;
    }
    for (size_t done = 0; done < n;) {
        size_t k = n - done < STAGE_ELEMS ? n - done : STAGE_ELEMS;
        if (pread_all(f->fd, f->stage, k * 2, off + done * 2))
            return mt_fail(err, "%s: cannot read tensor %s (file truncated?)", f->path, t->name);
        if (t->dtype == ST_F16) /* two loops, so that each one vectorizes */
            for (size_t i = 0; i < k; i++)
                out[done + i] = st_f16_to_f32(f->stage[i]);
        else
            for (size_t i = 0; i < k; i++)
                out[done + i] = st_bf16_to_f32(f->stage[i]);
        done += k;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ writing */

/* A growing string. */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        CHECK(k >= 0, "vsnprintf");
        if ((size_t)k < b->cap - b->len) {
            b->len += (size_t)k;
            return;
        }
        b->cap = 2 * b->cap + (size_t)k;
        b->s = realloc(b->s, b->cap);
        CHECK(b->s, "out of memory");
    }
}

char *st_header_build(st_tensor *t, size_t n, size_t *len) {
    sbuf b = {mt_malloc(256), 0, 256};
    sb_add(&b, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        for (const char *c = t[i].name; *c; c++) /* names come from the parameter table: plain ASCII */
            CHECK(*c > 0x20 && *c != '"' && *c != '\\' && *c < 0x7f, "tensor name needs JSON escaping");
        t[i].begin = off;
        t[i].end = off += st_numel(&t[i]) * st_dtype_size(t[i].dtype);
        sb_add(&b, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name, st_dtype_name(t[i].dtype));
        for (int k = 0; k < t[i].ndim; k++)
            sb_add(&b, "%s%llu", k ? "," : "", (unsigned long long)t[i].shape[k]);
        sb_add(&b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)t[i].begin,
               (unsigned long long)t[i].end);
    }
    sb_add(&b, "}");
    while (b.len % 8) /* the data then starts 8-byte aligned, as the reference writer pads */
        sb_add(&b, " ");
    *len = b.len;
    return b.s;
}

int st_create(st_writer *w, const char *path, st_tensor *t, size_t n, mt_err *err) {
    memset(w, 0, sizeof *w);
    size_t len;
    char *json = st_header_build(t, n, &len);
    w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w->fd < 0) {
        free(json);
        return mt_fail(err, "%s: cannot create: %s", path, strerror(errno));
    }
    w->path = mt_strdup(path);
    unsigned char len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)((uint64_t)len >> (8 * i));
    int rc = pwrite_all(w->fd, len8, 8, 0) || pwrite_all(w->fd, json, len, 8);
    free(json);
    w->data_start = 8 + len;
    w->stage = mt_malloc(STAGE_ELEMS * 2);
    if (rc) {
        st_finish(w, NULL);
        return mt_fail(err, "%s: cannot write the header: %s", path, strerror(errno));
    }
    return 0;
}

int st_write_f32(st_writer *w, const st_tensor *t, uint64_t first, size_t n, const float *in, mt_err *err) {
    CHECK(st_dtype_is_float(t->dtype) && first + n <= st_numel(t), "bad write to tensor %s", t->name);
    uint64_t off = w->data_start + t->begin + first * st_dtype_size(t->dtype);
    if (t->dtype == ST_F32)
        return pwrite_all(w->fd, in, n * 4, off)
                   ? mt_fail(err, "%s: write failed: %s", w->path, strerror(errno))
                   : 0;
    uint16_t *stage = w->stage, inf = t->dtype == ST_F16 ? 0x7c00 : 0x7f80;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < STAGE_ELEMS ? n - done : STAGE_ELEMS;
        if (t->dtype == ST_F16)
            for (size_t i = 0; i < k; i++)
                stage[i] = st_f32_to_f16(in[done + i]);
        else
            for (size_t i = 0; i < k; i++)
                stage[i] = st_f32_to_bf16(in[done + i]);
        for (size_t i = 0; i < k; i++)
            w->overflow += (stage[i] & 0x7fff) == inf && isfinite(in[done + i]);
        if (pwrite_all(w->fd, stage, k * 2, off + done * 2))
            return mt_fail(err, "%s: write failed: %s", w->path, strerror(errno));
        done += k;
    }
    return 0;
}

int st_finish(st_writer *w, mt_err *err) {
    int rc = 0;
    if (err && fsync(w->fd))
        rc = mt_fail(err, "%s: fsync failed: %s", w->path, strerror(errno));
    if (close(w->fd) && err && !rc)
        rc = mt_fail(err, "%s: close failed: %s", w->path, strerror(errno));
    free(w->path);
    free(w->stage);
    w->path = NULL;
    w->stage = NULL;
    w->fd = -1;
    return rc;
}
