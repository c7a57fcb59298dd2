#define _DEFAULT_SOURCE /* glob */
#include "base/jcfg_table.h"

#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static const jcfg_key *find_key(const jcfg_key *keys, const char *name) {
    for (const jcfg_key *k = keys; k->name; k++)
        if (!strcmp(k->name, name))
            return k;
    return NULL;
}

static size_t field_size(const jcfg_key *k) {
    switch (k->type) {
    case JCFG_INT:
    case JCFG_BOOL:
    case JCFG_ENUM:
        return sizeof(int);
    case JCFG_LONG:
        return sizeof(long);
    case JCFG_NUM:
        return sizeof(double);
    case JCFG_FILES:
        return sizeof(jcfg_files);
    default:
        return k->size; /* a string's capacity; a section's or custom type's own business */
    }
}

/* A programmer error in a table: a field that does not fit the declared type, a computed default without
 * its rule. */
static void check_field(const jcfg_key *k) {
    CHECK(k->size == field_size(k) && (k->type != JCFG_STR || k->size > 0),
          "config key %s: field of %zu bytes", k->name, k->size);
    CHECK(!k->computed == !k->compute, "config key %s: computed default without its rule", k->name);
}

/* ------------------------------------------------------------------------------------------- parsing */

/* "'a', 'b' or 'c'" with the quote character q. */
static void list_choices(const jcfg_choice *choices, char q, char *out, size_t cap) {
    out[0] = 0;
    for (const jcfg_choice *c = choices; c->name; c++) {
        size_t n = strlen(out);
        const char *sep = c == choices ? "" : c[1].name ? ", " : " or ";
        snprintf(out + n, cap - n, "%s%c%s%c", sep, q, c->name, q);
    }
}

static const jcfg_choice *choice_named(const jcfg_choice *choices, const char *name) {
    for (const jcfg_choice *c = choices; c->name; c++)
        if (!strcmp(c->name, name))
            return c;
    return NULL;
}

static void sort_names(char **names, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
}

/* Expands the patterns of v (one, or a list) into g; a pattern that matches nothing stays as written, for
 * the reader to name it. Returns the problem, or NULL. */
static const char *expand(const cJSON *v, glob_t *g) {
    int items = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 1;
    for (int i = 0; i < items; i++) {
        const cJSON *e = cJSON_IsArray(v) ? cJSON_GetArrayItem(v, i) : v;
        if (!cJSON_IsString(e))
            return "must be a file name, a glob, or a list of them";
        if (!e->valuestring[0])
            return "an empty file name";
        if (glob(e->valuestring, GLOB_NOCHECK | (i ? GLOB_APPEND : 0), NULL, g))
            return "glob failed";
    }
    return g->gl_pathc ? NULL : "no files";
}

/* The expanded files in name order (DESIGN 6; glob sorts each pattern's matches only). */
static int parse_files(const jcfg_src *src, const char *path, const cJSON *v, jcfg_files *out, mt_err *err) {
    glob_t g;
    memset(&g, 0, sizeof g);
    const char *why = expand(v, &g);
    if (!why) {
        out->paths = mt_calloc(g.gl_pathc, sizeof *out->paths);
        for (size_t i = 0; i < g.gl_pathc; i++)
            out->paths[i] = mt_strdup(g.gl_pathv[i]);
        out->n = (int)g.gl_pathc;
        sort_names(out->paths, out->n);
    }
    globfree(&g);
    return why ? jcfg_fail(src, path, err, "%s", why) : 0;
}

static int parse_section(const jcfg_src *src, const char *prefix, const cJSON *obj, const jcfg_key *keys,
                         char *base, mt_err *err);

static int parse_string(const jcfg_src *src, const char *path, const jcfg_key *k, const cJSON *v, void *field,
                        mt_err *err) {
    const char *s;
    if (jcfg_str_at(src, path, v, &s, err))
        return -1;
    const jcfg_choice *c = k->choices ? choice_named(k->choices, s) : NULL;
    if (k->choices && !c) {
        char list[256];
        list_choices(k->choices, '"', list, sizeof list);
        return jcfg_fail(src, path, err, "must be %s", list);
    }
    if (k->type == JCFG_ENUM)
        *(int *)field = c->value;
    else
        snprintf(field, k->size, "%s", s);
    return 0;
}

static int parse_value(const jcfg_src *src, const char *path, const jcfg_key *k, const cJSON *v, void *field,
                       mt_err *err) {
    long l;
    switch (k->type) {
    case JCFG_INT:
        if (jcfg_long_at(src, path, v, (long)k->lo, (long)k->hi, &l, err))
            return -1;
        *(int *)field = (int)l;
        return 0;
    case JCFG_LONG:
        return jcfg_long_at(src, path, v, (long)k->lo, (long)k->hi, field, err);
    case JCFG_NUM:
        return jcfg_num_at(src, path, v, k->lo, k->hi, field, err);
    case JCFG_BOOL:
        return jcfg_bool_at(src, path, v, field, err);
    case JCFG_STR:
    case JCFG_ENUM:
        return parse_string(src, path, k, v, field, err);
    case JCFG_FILES:
        return parse_files(src, path, v, field, err);
    case JCFG_SECTION:
        return jcfg_obj_at(src, path, v, err) || parse_section(src, path, v, k->keys, field, err) ? -1 : 0;
    case JCFG_CUSTOM:
        return k->custom->parse(src, path, v, field, err);
    }
    return 0;
}

/* The table's default goes through the same parse as a given value; a default it refuses is a bug. */
static void parse_default(const jcfg_src *src, const char *path, const jcfg_key *k, void *field) {
    int plain = k->type == JCFG_STR || k->type == JCFG_ENUM;
    cJSON *v = plain ? cJSON_CreateString(k->def) : cJSON_Parse(k->def);
    mt_err err = {""};
    CHECK(v && !parse_value(src, path, k, v, field, &err), "default of config key %s: %s", path, err.msg);
    cJSON_Delete(v);
}

static int parse_absent(const jcfg_src *src, const char *path, const jcfg_key *k, void *field, mt_err *err) {
    if (k->need == JCFG_REQUIRED || (k->need == JCFG_NEEDED_TO_TRAIN && !src->dry_run))
        return jcfg_fail(src, path, err, "missing (required)");
    if (k->type == JCFG_SECTION)
        return parse_section(src, path, NULL, k->keys, field, err);
    if (k->def)
        parse_default(src, path, k, field);
    return 0; /* computed later, or the zero value */
}

static int parse_section(const jcfg_src *src, const char *prefix, const cJSON *obj, const jcfg_key *keys,
                         char *base, mt_err *err) {
    for (const cJSON *it = obj ? obj->child : NULL; it; it = it->next)
        if (!find_key(keys, it->string)) {
            char path[JCFG_PATH_MAX], clip[MT_CLIP_CAP];
            jcfg_path(prefix, mt_clip(it->string, clip), path); /* a 10 MB key is quoted by its first bytes */
            return jcfg_fail(src, path, err, "unknown key");
        }
    for (const jcfg_key *k = keys; k->name; k++) {
        check_field(k);
        char path[JCFG_PATH_MAX];
        jcfg_path(prefix, k->name, path);
        const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, k->name) : NULL;
        if (v ? parse_value(src, path, k, v, base + k->offset, err)
              : parse_absent(src, path, k, base + k->offset, err))
            return -1;
    }
    return 0;
}

static void compute_absent(const jcfg_src *src, const cJSON *obj, const jcfg_key *keys, void *root) {
    for (const jcfg_key *k = keys; k->name; k++) {
        const cJSON *v = obj ? cJSON_GetObjectItemCaseSensitive(obj, k->name) : NULL;
        if (k->type == JCFG_SECTION)
            compute_absent(src, v, k->keys, root);
        else if (!v && k->compute)
            k->compute(root, src);
    }
}

int jcfg_parse(const jcfg_src *src, const char *prefix, const cJSON *obj, const jcfg_key *keys, void *base,
               mt_err *err) {
    if (parse_section(src, prefix, obj, keys, base, err))
        return -1;
    compute_absent(src, obj, keys, base);
    return 0;
}

void jcfg_free(const jcfg_key *keys, void *base) {
    for (const jcfg_key *k = keys; k->name; k++) {
        void *field = (char *)base + k->offset;
        if (k->type == JCFG_SECTION)
            jcfg_free(k->keys, field);
        if (k->type != JCFG_FILES)
            continue;
        jcfg_files *f = field;
        for (int i = 0; i < f->n; i++)
            free(f->paths[i]);
        free(f->paths);
        memset(f, 0, sizeof *f);
    }
}

/* ------------------------------------------------------------------------------------- resolved JSON */

static const char *choice_name(const jcfg_key *k, int value) {
    for (const jcfg_choice *c = k->choices; c->name; c++)
        if (c->value == value)
            return c->name;
    CHECK(0, "config key %s: value %d is none of its choices", k->name, value);
}

static cJSON *value_json(const jcfg_key *k, const void *field) {
    switch (k->type) {
    case JCFG_INT:
        return cJSON_CreateNumber(*(const int *)field);
    case JCFG_LONG:
        return cJSON_CreateNumber((double)*(const long *)field);
    case JCFG_NUM:
        return cJSON_CreateNumber(*(const double *)field);
    case JCFG_BOOL:
        return cJSON_CreateBool(*(const int *)field);
    case JCFG_STR:
        return cJSON_CreateString(field);
    case JCFG_ENUM:
        return cJSON_CreateString(choice_name(k, *(const int *)field));
    case JCFG_FILES: {
        const jcfg_files *f = field;
        cJSON *a = cJSON_CreateArray();
        for (int i = 0; i < f->n; i++)
            cJSON_AddItemToArray(a, cJSON_CreateString(f->paths[i]));
        return a;
    }
    case JCFG_SECTION:
        return jcfg_to_json(k->keys, field);
    case JCFG_CUSTOM:
        return k->custom->to_json(field);
    }
    return NULL;
}

cJSON *jcfg_to_json(const jcfg_key *keys, const void *base) {
    cJSON *o = cJSON_CreateObject();
    for (const jcfg_key *k = keys; k->name; k++)
        cJSON_AddItemToObject(o, k->name, value_json(k, (const char *)base + k->offset));
    return o;
}

/* --------------------------------------------------------------------------------------- reference */

/* 2^k for the large powers of two that integer bounds use, else the shortest decimal that reads back as x. */
static void format_bound(double x, int integer, char *out, size_t cap) {
    int e;
    if (integer && x >= 65536 && frexp(x, &e) == 0.5)
        snprintf(out, cap, "2^%d", e - 1);
    else if (x == floor(x) && fabs(x) < 1e15)
        snprintf(out, cap, "%.0f", x);
    else
        for (int p = 1; p <= 17; p++) {
            snprintf(out, cap, "%.*g", p, x);
            if (strtod(out, NULL) == x)
                break;
        }
    char *plus = strstr(out, "e+"); /* 1e30, not 1e+30 */
    if (plus)
        memmove(plus + 1, plus + 2, strlen(plus + 2) + 1);
}

static void format_values(const jcfg_key *k, char *out, size_t cap) {
    int integer = k->type == JCFG_INT || k->type == JCFG_LONG;
    if (integer || k->type == JCFG_NUM) {
        char lo[32], hi[32];
        format_bound(k->lo, integer, lo, sizeof lo);
        format_bound(k->hi, integer, hi, sizeof hi);
        snprintf(out, cap, "%s in [%s, %s]", integer ? "integer" : "number", lo, hi);
    } else if (k->type == JCFG_BOOL)
        snprintf(out, cap, "`true` or `false`");
    else if (k->choices)
        list_choices(k->choices, '`', out, cap);
    else if (k->type == JCFG_STR)
        snprintf(out, cap, "string");
    else if (k->type == JCFG_FILES)
        snprintf(out, cap, "file, glob, or a list of them");
    else
        snprintf(out, cap, "%s", k->custom->values);
}

static void format_default(const jcfg_key *k, char *out, size_t cap) {
    if (k->need == JCFG_REQUIRED)
        snprintf(out, cap, "(required)");
    else if (k->need == JCFG_NEEDED_TO_TRAIN)
        snprintf(out, cap, "(required to train)");
    else if (k->computed)
        snprintf(out, cap, "%s", k->computed);
    else if (k->def)
        snprintf(out, cap, "`%s`", k->def);
    else
        snprintf(out, cap, "(none)");
}

static void reference_rows(FILE *f, const char *prefix, const jcfg_key *keys) {
    for (const jcfg_key *k = keys; k->name; k++) {
        char path[JCFG_PATH_MAX], values[256], def[128];
        jcfg_path(prefix, k->name, path);
        if (k->type == JCFG_SECTION) {
            reference_rows(f, path, k->keys);
            continue;
        }
        format_values(k, values, sizeof values);
        format_default(k, def, sizeof def);
        fprintf(f, "| `%s` | %s | %s | %s |\n", path, values, def, k->help);
    }
}

void jcfg_reference(FILE *f, const jcfg_key *keys) {
    fprintf(f, "| key | values | default | meaning |\n|---|---|---|---|\n");
    reference_rows(f, "", keys);
}
