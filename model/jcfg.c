#define _POSIX_C_SOURCE 200809L /* strtok_r */
#include "jcfg.h"

#include "data/prepare_json.h"

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

static int failp(const jcfg_src *src, const char *prefix, const char *key, mt_err *err, const char *what) {
    char path[256], where[512], clip[MT_CLIP_CAP];
    join(prefix, mt_clip(key, clip), path, sizeof path); /* a 10 MB key is quoted by its first bytes */
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

cJSON *jcfg_parse(const char *text, size_t len, const char *name, mt_err *err) {
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
    cJSON *root = jcfg_parse(text, len, path, err);
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
