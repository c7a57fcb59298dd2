#include "base/jcfg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *jcfg_path(const char *prefix, const char *key, char *out) {
    snprintf(out, JCFG_PATH_MAX, "%s%s%s", prefix, *prefix ? "." : "", key);
    return out;
}

void jcfg_where(const jcfg_src *src, const char *path, char *out, size_t cap) {
    for (int i = 0; i < src->n_sets; i++) {
        size_t n = strcspn(src->sets[i], "=");
        if (strncmp(path, src->sets[i], n) == 0 && (path[n] == 0 || path[n] == '.')) {
            snprintf(out, cap, "--set %s", path);
            return;
        }
    }
    if (src->model_file && strncmp(path, "model.", 6) == 0)
        snprintf(out, cap, "%s: %s", src->model_file, path + 6);
    else
        snprintf(out, cap, "%s: %s", src->file, path);
}

int jcfg_fail(const jcfg_src *src, const char *path, mt_err *err, const char *fmt, ...) {
    char where[512], what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    jcfg_where(src, path, where, sizeof where);
    return mt_fail(err, "%s: %s", where, what);
}

cJSON *jcfg_load(const char *path, mt_err *err) {
    struct stat st;
    if (stat(path, &st) == 0 && st.st_size > JCFG_MAX_BYTES) {
        mt_fail(err, "%s: %lld bytes is too large for a config file (the limit is %d MiB)", path,
                (long long)st.st_size, JCFG_MAX_BYTES >> 20);
        return NULL;
    }
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return NULL;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        size_t off = end ? (size_t)(end - text) : 0;
        mt_fail(err, "%s: invalid JSON at byte %zu", path, off);
    } else if (!cJSON_IsObject(root)) {
        mt_fail(err, "%s: the top level must be a JSON object", path);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

/* The member `key` of obj (NULL when absent: rc is then 0, or the error when it is required), and its path.
 */
static const cJSON *member(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key,
                           int required, char *path, int *rc, mt_err *err) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    jcfg_path(prefix, key, path);
    *rc = !v && required ? jcfg_fail(src, path, err, "missing (required)") : 0;
    return v;
}

int jcfg_long_at(const jcfg_src *src, const char *path, const cJSON *v, long lo, long hi, long *out,
                 mt_err *err) {
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d))
        return jcfg_fail(src, path, err, "must be an integer");
    if (d < (double)lo || d > (double)hi)
        return jcfg_fail(src, path, err, "%.17g is outside [%ld, %ld]", d, lo, hi);
    *out = (long)d;
    return 0;
}

int jcfg_num_at(const jcfg_src *src, const char *path, const cJSON *v, double lo, double hi, double *out,
                mt_err *err) {
    if (!cJSON_IsNumber(v))
        return jcfg_fail(src, path, err, "must be a number");
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi))
        return jcfg_fail(src, path, err, "%g is outside [%g, %g]", d, lo, hi);
    *out = d;
    return 0;
}

int jcfg_bool_at(const jcfg_src *src, const char *path, const cJSON *v, int *out, mt_err *err) {
    if (!cJSON_IsBool(v))
        return jcfg_fail(src, path, err, "must be true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

int jcfg_str_at(const jcfg_src *src, const char *path, const cJSON *v, const char **out, mt_err *err) {
    if (!cJSON_IsString(v))
        return jcfg_fail(src, path, err, "must be a string");
    *out = v->valuestring;
    return 0;
}

int jcfg_obj_at(const jcfg_src *src, const char *path, const cJSON *v, mt_err *err) {
    return cJSON_IsObject(v) ? 0 : jcfg_fail(src, path, err, "must be an object");
}

int jcfg_int(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             long lo, long hi, int *out, mt_err *err) {
    char path[JCFG_PATH_MAX];
    int rc;
    long v = 0;
    const cJSON *m = member(src, prefix, obj, key, required, path, &rc, err);
    if (!m)
        return rc;
    if (jcfg_long_at(src, path, m, lo, hi, &v, err))
        return -1;
    *out = (int)v;
    return 0;
}

int jcfg_num(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             double lo, double hi, double *out, mt_err *err) {
    char path[JCFG_PATH_MAX];
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, path, &rc, err);
    return v ? jcfg_num_at(src, path, v, lo, hi, out, err) : rc;
}

int jcfg_bool(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              int *out, mt_err *err) {
    char path[JCFG_PATH_MAX];
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, path, &rc, err);
    return v ? jcfg_bool_at(src, path, v, out, err) : rc;
}

int jcfg_str(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const char **out, mt_err *err) {
    char path[JCFG_PATH_MAX];
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, path, &rc, err);
    return v ? jcfg_str_at(src, path, v, out, err) : rc;
}

int jcfg_set(cJSON *root, const char *assignment, mt_err *err) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return mt_fail(err, "--set %s: expected key.path=value", assignment);
    char path[256];
    size_t plen = (size_t)(eq - assignment);
    if (plen >= sizeof path)
        return mt_fail(err, "--set %s: key path too long", assignment);
    memcpy(path, assignment, plen);
    path[plen] = 0;
    cJSON *value = cJSON_Parse(eq + 1);
    if (!value)
        value = cJSON_CreateString(eq + 1);
    cJSON *obj = root;
    char *save = NULL, *key = strtok_r(path, ".", &save);
    for (char *next; (next = strtok_r(NULL, ".", &save)); key = next) {
        cJSON *child = cJSON_GetObjectItemCaseSensitive(obj, key);
        if (!child) {
            child = cJSON_CreateObject();
            cJSON_AddItemToObject(obj, key, child);
        } else if (!cJSON_IsObject(child)) {
            cJSON_Delete(value);
            return mt_fail(err, "--set %s: '%s' is not an object", assignment, key);
        }
        obj = child;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    else
        cJSON_AddItemToObject(obj, key, value);
    return 0;
}
