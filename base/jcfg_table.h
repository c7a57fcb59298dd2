/* Config sections declared once, as tables of keys (name, type, where the value goes, default, bounds,
 * help), and one walker over them that parses a section (unknown keys are errors naming the file or --set
 * and the key path, DESIGN 8), writes the resolved JSON in table order and prints the key reference that
 * `bin/train --help` shows and README copies. Cross-field rules stay as explicit code after the parse. */
#ifndef MT_JCFG_TABLE_H
#define MT_JCFG_TABLE_H

#include <stddef.h>
#include <stdio.h>

#include "base/jcfg.h"

typedef enum {
    JCFG_INT,     /* int */
    JCFG_LONG,    /* long */
    JCFG_NUM,     /* double */
    JCFG_BOOL,    /* int, 0 or 1 */
    JCFG_STR,     /* char[size] (longer strings are cut); with choices, one of their names */
    JCFG_ENUM,    /* int: the value of the choice whose name is given */
    JCFG_FILES,   /* jcfg_files: a file name, a glob or a list of them, expanded and sorted */
    JCFG_SECTION, /* a nested object, described by .keys; its offsets are relative to this key's offset */
    JCFG_CUSTOM,  /* .custom's functions parse and write the value */
} jcfg_type;

typedef enum {
    JCFG_OPTIONAL,        /* absent: .def, else .computed, else the zero value (no files, "") */
    JCFG_REQUIRED,        /* absent: "missing (required)" */
    JCFG_NEEDED_TO_TRAIN, /* required unless jcfg_src.dry_run */
} jcfg_need;

typedef struct {
    const char *name;
    int value;
} jcfg_choice;

typedef struct {
    char **paths;
    int n;
} jcfg_files;

/* A value no scalar type describes. `field` is the struct at base + offset (offset 0 gives a custom type
 * the whole struct, when it fills several members). */
typedef struct {
    int (*parse)(const jcfg_src *src, const char *path, const cJSON *v, void *field, mt_err *err);
    cJSON *(*to_json)(const void *field);
    const char *values; /* what the reference says it accepts */
} jcfg_custom;

typedef struct jcfg_key {
    const char *name;
    jcfg_type type;
    size_t offset, size; /* JCFG_FIELD(struct, member); size is checked against the type */
    jcfg_need need;
    /* The default, in JSON for the number, bool and custom types ("6e-4", "true", "[\"global\"]"), the
     * plain string for JCFG_STR and JCFG_ENUM ("cosine"). The walker parses it as it would parse the
     * key's value, so the reference shows what the code uses. */
    const char *def;
    /* A default computed after parsing from other keys: what the reference says ("0.1 x lr"), and the code
     * that sets it when the key is absent. The functions run after the whole table (nested sections
     * included) is parsed, in table order, on the struct given to jcfg_parse. */
    const char *computed;
    void (*compute)(void *base, const jcfg_src *src);
    double lo, hi;               /* bounds of the number types, inclusive */
    const jcfg_choice *choices;  /* JCFG_ENUM, JCFG_STR: allowed names, ended by {NULL} */
    const struct jcfg_key *keys; /* JCFG_SECTION: its table, ended by {NULL} */
    const jcfg_custom *custom;
    const char *help; /* one line for the reference */
} jcfg_key;

#define JCFG_FIELD(type, member) offsetof(type, member), sizeof(((type *)0)->member)

/* Parses obj (the object at key path `prefix`, "" for the top level; NULL when absent, which gives every
 * default) into base, then applies the computed defaults. The first problem fails with one line. */
int jcfg_parse(const jcfg_src *src, const char *prefix, const cJSON *obj, const jcfg_key *keys, void *base,
               mt_err *err);

/* The resolved object: every key of the table, in table order. */
cJSON *jcfg_to_json(const jcfg_key *keys, const void *base);

/* Frees the JCFG_FILES values of the table in base (recursively) and zeroes them. */
void jcfg_free(const jcfg_key *keys, void *base);

/* The key reference: a Markdown table, one row "| `path` | values | default | meaning |" per key, nested
 * sections flattened to dotted paths. */
void jcfg_reference(FILE *f, const jcfg_key *keys);

#endif
