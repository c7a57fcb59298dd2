/* The safetensors format (SPEC 5.4): an 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * mapping tensor names to {dtype, shape, data_offsets} (plus an optional "__metadata__" object of strings),
 * then the raw little-endian row-major tensor data, tiled exactly by the offsets. Reading and writing go
 * tensor by tensor (pread/pwrite of element ranges), so no file is ever held in memory; only F32, F16 and
 * BF16 convert to and from float. */
#ifndef MT_SAFETENSORS_H
#define MT_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

typedef enum {
    ST_BOOL,
    ST_U8,
    ST_I8,
    ST_F8_E4M3,
    ST_F8_E5M2,
    ST_I16,
    ST_U16,
    ST_F16,
    ST_BF16,
    ST_I32,
    ST_U32,
    ST_F32,
    ST_I64,
    ST_U64,
    ST_F64,
    ST_N_DTYPES
} st_dtype;

enum {
    ST_MAX_DIMS = 8,
    ST_MAX_HEADER = 100000000, /* the reference reader's limit on N */
};

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;
    uint64_t shape[ST_MAX_DIMS];
    uint64_t begin, end; /* byte range in the data buffer, end exclusive */
} st_tensor;

typedef struct {
    st_tensor *t; /* sorted by name */
    size_t n;
} st_header;

const char *st_dtype_name(st_dtype d);
size_t st_dtype_size(st_dtype d);
uint64_t st_numel(const st_tensor *t);
/* Whether st_read_f32 / st_write_f32 handle the dtype (F32, F16, BF16). */
int st_dtype_is_float(st_dtype d);

/* Parses and validates a header: the len bytes of JSON that follow the length field, for a file whose data
 * buffer holds data_len bytes. Checks UTF-8, JSON syntax, every entry's dtype, shape and offsets, that
 * byte ranges match dtype and shape and tile [0, data_len) without gaps or overlaps, and unique names.
 * `path` only names the file in the one-line error. A pure function of a byte buffer (a fuzz target). */
int st_parse_header(const char *json, size_t len, uint64_t data_len, const char *path, st_header *h,
                    mt_err *err);
void st_header_free(st_header *h);
/* The tensor called name, or NULL. */
const st_tensor *st_find(const st_header *h, const char *name);

/* ------------------------------------------------------------------------------------------ reading */

typedef struct {
    int fd;
    char *path;
    uint64_t data_start; /* file offset of the data buffer: 8 + N */
    st_header h;
    uint16_t *stage; /* conversion buffer of 16-bit elements */
} st_file;

/* Opens and validates a file (length field against the file size, then st_parse_header). */
int st_open(st_file *f, const char *path, mt_err *err);
void st_close(st_file *f);

/* Elements [first, first + n) of tensor t (of file f) in row-major order, converted exactly to float. */
int st_read_f32(st_file *f, const st_tensor *t, uint64_t first, size_t n, float *out, mt_err *err);

/* ------------------------------------------------------------------------------------------ writing */

/* The header of a file holding tensors t[0..n) in that order, with metadata {"format": "pt"}: fills each
 * t[i].begin and end and returns the JSON (malloc'd), padded with spaces to a multiple of 8 bytes. */
char *st_header_build(st_tensor *t, size_t n, size_t *len);

typedef struct {
    int fd;
    char *path;
    uint64_t data_start;
    void *stage;
    uint64_t overflow; /* finite floats that became infinite in a 16-bit dtype */
} st_writer;

/* Creates path with the header of tensors t[0..n) (st_header_build fills their offsets); the data is
 * then written in any order by st_write_f32. */
int st_create(st_writer *w, const char *path, st_tensor *t, size_t n, mt_err *err);
/* Writes elements [first, first + n) of tensor t from floats, rounding to nearest even for F16 and BF16. */
int st_write_f32(st_writer *w, const st_tensor *t, uint64_t first, size_t n, const float *in, mt_err *err);
/* fsyncs and closes; st_finish(w, NULL) after a failure just closes. */
int st_finish(st_writer *w, mt_err *err);

/* Conversions (exposed for tests): exact widening, and rounding to nearest even (NaN stays NaN). */
float st_bf16_to_f32(uint16_t h);
float st_f16_to_f32(uint16_t h);
uint16_t st_f32_to_bf16(float x);
uint16_t st_f32_to_f16(float x);

#endif
