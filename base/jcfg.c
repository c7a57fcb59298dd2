#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include "base/jcfg.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/json_pull.h"

const char *jcfg_path(const char *prefix, const char *key, char *out) {
    snprintf(out, JCFG_PATH_MAX, "%s%s%s", prefix, *prefix ? "." : "", key);
    return out;
}

void jcfg_where(const jcfg_src *src, const char *path, char *out, size_t cap) {
    for (int i = 0; i < src->n_sets; i++) {
        size_t n = strcspn(src->sets[i], "=");
        if (src->model_file && n == 5 && !strncmp(src->sets[i], "model", 5) && strcmp(path, "model"))
            continue; /* --set model=PATH: the keys inside are the file's */
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

static int by_name(const void *a, const void *b) {
    return strcmp((*(const cJSON *const *)a)->string, (*(const cJSON *const *)b)->string);
}

/* The first key that appears twice in an object of the tree, as a key path into path; 0 if none. */
static int duplicate_key(const cJSON *obj, char *path, size_t cap) {
    size_t n = 0, plen = strlen(path);
    for (const cJSON *it = obj->child; it; it = it->next)
        n++;
    const cJSON **kids = mt_calloc(n, sizeof *kids);
    n = 0;
    for (const cJSON *it = obj->child; it; it = it->next)
        kids[n++] = it;
    int found = 0;
    if (cJSON_IsObject(obj)) {
        qsort(kids, n, sizeof *kids, by_name);
        for (size_t i = 1; i < n && !found; i++)
            if (!strcmp(kids[i - 1]->string, kids[i]->string)) {
                snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", kids[i]->string);
                found = 1;
            }
    }
    for (size_t i = 0; i < n && !found; i++) {
        if (!cJSON_IsObject(kids[i]) && !cJSON_IsArray(kids[i]))
            continue;
        if (kids[i]->string)
            snprintf(path + plen, cap - plen, "%s%s", plen ? "." : "", kids[i]->string);
        else
            snprintf(path + plen, cap - plen, "[%zu]", i);
        found = duplicate_key(kids[i], path, cap);
        if (!found)
            path[plen] = 0;
    }
    free(kids);
    return found;
}

cJSON *jcfg_parse_text(const char *text, size_t len, const char *name, mt_err *err) {
    pj p;
    pj_init(&p, text, len);
    if (pj_skip(&p) || pj_end(&p)) {
        mt_fail(err, "%s: invalid JSON at byte %zu (line %ld): %s", name, p.err_pos,
                pj_line_of(text, p.err_pos), p.err);
        return NULL;
    }
    /* cJSON refuses a lone surrogate escape ("\ud800"), which the strict check lets through */
    cJSON *root = p.surrogates ? NULL : cJSON_ParseWithLength(text, len);
    char path[256] = "";
    if (!root) {
        mt_fail(err, "%s: a string holds a lone UTF-16 surrogate escape", name);
        return NULL;
    }
    if (!cJSON_IsObject(root))
        mt_fail(err, "%s: the top level must be a JSON object", name);
    else if (duplicate_key(root, path, sizeof path))
        mt_fail(err, "%s: %s: duplicate key (each key may appear once)", name, path);
    else
        return root;
    cJSON_Delete(root);
    return NULL;
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
    cJSON *root = jcfg_parse_text(text, len, path, err);
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
    char path[256], clip[MT_CLIP_CAP];
    size_t plen = eq ? (size_t)(eq - assignment) : 0;
    if (!eq || eq == assignment)
        return mt_fail(err, "--set %s: expected key.path=value", mt_clip(assignment, clip));
    if (plen >= sizeof path)
        return mt_fail(err, "--set %s: key path too long", mt_clip(assignment, clip));
    memcpy(path, assignment, plen);
    path[plen] = 0;
    if (path[0] == '.' || path[plen - 1] == '.' || strstr(path, ".."))
        return mt_fail(err, "--set %s: a key of the path is empty", path);
    pj p; /* a whole, strict JSON value ("0x10" or "1e-3x" are strings, refused where a number belongs) */
    pj_init(&p, eq + 1, strlen(eq + 1));
    cJSON *value = pj_skip(&p) || pj_end(&p) ? NULL : cJSON_Parse(eq + 1);
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
            return mt_fail(err, "--set %.*s: '%s' is not an object", (int)plen, assignment, key);
        }
        obj = child;
    }
    if (cJSON_GetObjectItemCaseSensitive(obj, key))
        cJSON_ReplaceItemInObjectCaseSensitive(obj, key, value);
    else
        cJSON_AddItemToObject(obj, key, value);
    return 0;
}
