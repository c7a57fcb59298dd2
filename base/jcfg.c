#include "base/jcfg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void join(const char *prefix, const char *key, char *out, size_t cap) {
    if (prefix && *prefix)
        snprintf(out, cap, "%s.%s", prefix, key);
    else
        snprintf(out, cap, "%s", key);
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

static int failp(const jcfg_src *src, const char *prefix, const char *key, mt_err *err, const char *what) {
    char path[256], where[512];
    join(prefix, key, path, sizeof path);
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

int jcfg_only_keys(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *const *allowed,
                   mt_err *err) {
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next) {
        int ok = 0;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, it->string) == 0;
        if (!ok)
            return failp(src, prefix, it->string, err, "unknown key");
    }
    return 0;
}

static const cJSON *member(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key,
                           int required, int *rc, mt_err *err) {
    const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, key) : NULL;
    *rc = 0;
    if (!v && required)
        *rc = failp(src, prefix, key, err, "missing (required)");
    return v;
}

int jcfg_long(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              long lo, long hi, long *out, mt_err *err) {
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, &rc, err);
    if (!v)
        return rc;
    double d = v->valuedouble;
    if (!cJSON_IsNumber(v) || d != floor(d))
        return failp(src, prefix, key, err, "must be an integer");
    if (d < (double)lo || d > (double)hi) {
        char what[128];
        snprintf(what, sizeof what, "%.17g is outside [%ld, %ld]", d, lo, hi);
        return failp(src, prefix, key, err, what);
    }
    *out = (long)d;
    return 0;
}

int jcfg_int(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             long lo, long hi, int *out, mt_err *err) {
    long v = *out;
    if (jcfg_long(src, prefix, obj, key, required, lo, hi, &v, err))
        return -1;
    *out = (int)v;
    return 0;
}

int jcfg_num(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             double lo, double hi, double *out, mt_err *err) {
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, &rc, err);
    if (!v)
        return rc;
    if (!cJSON_IsNumber(v))
        return failp(src, prefix, key, err, "must be a number");
    double d = v->valuedouble;
    if (!(d >= lo && d <= hi)) {
        char what[128];
        snprintf(what, sizeof what, "%g is outside [%g, %g]", d, lo, hi);
        return failp(src, prefix, key, err, what);
    }
    *out = d;
    return 0;
}

int jcfg_bool(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
              int *out, mt_err *err) {
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, &rc, err);
    if (!v)
        return rc;
    if (!cJSON_IsBool(v))
        return failp(src, prefix, key, err, "must be true or false");
    *out = cJSON_IsTrue(v);
    return 0;
}

int jcfg_str(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const char **out, mt_err *err) {
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, &rc, err);
    if (!v)
        return rc;
    if (!cJSON_IsString(v))
        return failp(src, prefix, key, err, "must be a string");
    *out = v->valuestring;
    return 0;
}

int jcfg_obj(const jcfg_src *src, const char *prefix, const cJSON *obj, const char *key, int required,
             const cJSON **out, mt_err *err) {
    int rc;
    const cJSON *v = member(src, prefix, obj, key, required, &rc, err);
    *out = NULL;
    if (!v)
        return rc;
    if (!cJSON_IsObject(v))
        return failp(src, prefix, key, err, "must be an object");
    *out = v;
    return 0;
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
