/* Typed, validated access to JSON config trees, with errors that name the file and key path (DESIGN 8).
 * A jcfg_src says where the values came from: a run config file, an included model config file, and the
 * --set overrides, so a message names the place the user has to edit. */
#ifndef MT_JCFG_H
#define MT_JCFG_H

#include <cjson/cJSON.h>

#include "base/common.h"

typedef struct {
    const char *file;        /* the file the tree was read from */
    const char *model_file;  /* the model config file included by `model`, or NULL */
    const char *const *sets; /* the --set assignments ("key.path=value") */
    int n_sets;
    int dry_run; /* bin/train --dry-run: keys needed only to train may be absent (jcfg_table.h) */
} jcfg_src;

enum { JCFG_PATH_MAX = 256 };

/* Joins a key path: "prefix.key", or "key" when prefix is ""; out holds JCFG_PATH_MAX bytes. */
const char *jcfg_path(const char *prefix, const char *key, char *out);

/* "FILE: path" or "--set path" or "MODELFILE: subpath" for the key path. */
void jcfg_where(const jcfg_src *src, const char *path, char *out, size_t cap);

/* Fails with "WHERE: what" (WHERE as jcfg_where says it); returns -1. */
int jcfg_fail(const jcfg_src *src, const char *path, mt_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

enum { JCFG_MAX_BYTES = 64 << 20 };

/* Parses text as strict JSON (RFC 8259): one object and nothing after it but whitespace, numbers in JSON's
 * grammar (no "01", "1.", "0x10", NaN), no key twice in an object. A one-line error names `name` and the
 * byte offset and line of a syntax error, or the key path of a duplicate key. */
cJSON *jcfg_parse_text(const char *text, size_t len, const char *name, mt_err *err);
/* Reads a file of at most JCFG_MAX_BYTES and parses it with jcfg_parse_text. */
cJSON *jcfg_load(const char *path, mt_err *err);

/* Getters for trees without a key table (jcfg_table.h), such as an HF config.json: a missing key takes
 * *out's current value (the default) unless required. Paths are jcfg_path(prefix, key). */
int jcfg_int(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             long lo, long hi, int *out, mt_err *err);
int jcfg_num(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             double lo, double hi, double *out, mt_err *err);
int jcfg_bool(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              int *out, mt_err *err);
/* *out points into the tree (or keeps the default). */
int jcfg_str(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const char **out, mt_err *err);
/* The checks of the getters for the value v found at key path `path`. */
int jcfg_long_at(const jcfg_src *src, const char *path, const cJSON *v, long lo, long hi, long *out,
                 mt_err *err);
int jcfg_num_at(const jcfg_src *src, const char *path, const cJSON *v, double lo, double hi, double *out,
                mt_err *err);
int jcfg_bool_at(const jcfg_src *src, const char *path, const cJSON *v, int *out, mt_err *err);
int jcfg_str_at(const jcfg_src *src, const char *path, const cJSON *v, const char **out, mt_err *err);
int jcfg_obj_at(const jcfg_src *src, const char *path, const cJSON *v, mt_err *err);

/* Applies "a.b.c=value" to the tree: value is JSON when the whole of it is a strict JSON value, else a
 * string. Intermediate objects must exist (unknown keys are caught by validation afterwards). */
int jcfg_set(cJSON *root, const char *assignment, mt_err *err);

#endif
