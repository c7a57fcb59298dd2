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
} jcfg_src;

/* "FILE: path" or "--set path" or "MODELFILE: subpath" for the key path. */
void jcfg_where(const jcfg_src *src, const char *path, char *out, size_t cap);

enum { JCFG_MAX_BYTES = 64 << 20 };

/* Reads and parses a JSON file of at most JCFG_MAX_BYTES (one-line error with the byte offset of a syntax
 * error). */
cJSON *jcfg_load(const char *path, mt_err *err);

/* Errors on any key of obj not in the NULL-terminated list `allowed`. */
int jcfg_only_keys(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *const *allowed,
                   mt_err *err);

/* Getters: a missing key takes *out's current value (the default) unless required. Paths are
 * "prefix.key" ("key" when prefix is ""). */
int jcfg_int(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             long lo, long hi, int *out, mt_err *err);
int jcfg_long(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              long lo, long hi, long *out, mt_err *err);
int jcfg_num(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             double lo, double hi, double *out, mt_err *err);
int jcfg_bool(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              int *out, mt_err *err);
/* *out points into the tree (or keeps the default). */
int jcfg_str(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const char **out, mt_err *err);
/* An object member (NULL when absent and not required). */
int jcfg_obj(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const cJSON **out, mt_err *err);

/* Applies "a.b.c=value" to the tree: value is parsed as JSON when it parses, else taken as a string.
 * Intermediate objects must exist (unknown keys are caught by validation afterwards). */
int jcfg_set(cJSON *root, const char *assignment, mt_err *err);

#endif
