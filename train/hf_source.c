#define _POSIX_C_SOURCE 200809L
#include "train/hf_source.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/jcfg.h"

static int by_name(const void *a, const void *b) {
    return strcmp(((const hf_entry *)a)->name, ((const hf_entry *)b)->name);
}

static void add_entry(hf_source *s, size_t *cap, const char *name, st_file *f, const st_tensor *t) {
    if (s->n == *cap) {
        *cap = *cap ? 2 * *cap : 256;
        s->e = realloc(s->e, *cap * sizeof *s->e);
        CHECK(s->e, "out of memory");
    }
    s->e[s->n++] = (hf_entry){mt_strdup(name), f, t, 0};
}

static int open_single(hf_source *s, const char *path, mt_err *err) {
    s->files = mt_calloc(1, sizeof *s->files);
    if (st_open(&s->files[0], path, err))
        return -1;
    s->n_files = 1;
    size_t cap = 0;
    for (size_t i = 0; i < s->files[0].h.n; i++)
        add_entry(s, &cap, s->files[0].h.t[i].name, &s->files[0], &s->files[0].h.t[i]);
    return 0;
}

/* The shard called file (a plain name in dir), opened once. */
static st_file *shard(hf_source *s, const char *dir, const char *file, int cap, mt_err *err) {
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(strrchr(s->files[i].path, '/') + 1, file))
            return &s->files[i];
    if (!*file || strchr(file, '/') || !strcmp(file, ".") || !strcmp(file, "..")) {
        mt_fail(err, "%s: weight_map names \"%s\", which is not a file name in the folder", s->where, file);
        return NULL;
    }
    CHECK(s->n_files < cap, "more shards than index entries");
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    mt_err why;
    if (st_open(&s->files[s->n_files], path, &why)) {
        mt_fail(err, "%s: names shard %s: %s", s->where, file, why.msg);
        return NULL;
    }
    return &s->files[s->n_files++];
}

static int open_index(hf_source *s, const char *dir, mt_err *err) {
    cJSON *root = jcfg_load(s->where, err);
    if (!root)
        return -1;
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int n = cJSON_GetArraySize(map), rc = 0;
    if (!cJSON_IsObject(map) || n == 0)
        rc = mt_fail(err, "%s: weight_map is missing, empty or not an object", s->where);
    s->files = mt_calloc(n > 0 ? (size_t)n : 1, sizeof *s->files);
    size_t cap = 0;
    for (const cJSON *e = map ? map->child : NULL; e && !rc; e = e->next) {
        st_file *f = NULL;
        if (!cJSON_IsString(e))
            rc = mt_fail(err, "%s: weight_map: the value of %s is not a file name", s->where, e->string);
        else if (!(f = shard(s, dir, e->valuestring, n, err)))
            rc = -1;
        const st_tensor *t = f ? st_find(&f->h, e->string) : NULL;
        if (f && !t)
            rc = mt_fail(err, "%s: weight_map puts tensor %s in %s, which does not hold it", s->where,
                         e->string, e->valuestring);
        if (!rc)
            add_entry(s, &cap, e->string, f, t);
    }
    cJSON_Delete(root);
    return rc;
}

int hf_source_open(hf_source *s, const char *dir, mt_err *err) {
    memset(s, 0, sizeof *s);
    char single[4200], pickle[4200];
    snprintf(single, sizeof single, "%s/model.safetensors", dir);
    snprintf(s->where, sizeof s->where, "%s/model.safetensors.index.json", dir);
    snprintf(pickle, sizeof pickle, "%s/pytorch_model.bin", dir);
    int rc;
    if (!access(single, F_OK)) { /* from_pretrained's order: the single file first */
        snprintf(s->where, sizeof s->where, "%s", single);
        rc = open_single(s, single, err);
    } else if (!access(s->where, F_OK)) {
        rc = open_index(s, dir, err);
    } else {
        rc = mt_fail(err, "%s: no model.safetensors or model.safetensors.index.json%s", dir,
                     access(pickle, F_OK)
                         ? ""
                         : " (pytorch_model.bin is a pickle: convert it to safetensors first, "
                           "see README \"Fine-tuning a released model\")");
    }
    if (!rc) {
        qsort(s->e, s->n, sizeof *s->e, by_name);
        for (size_t i = 1; i < s->n && !rc; i++)
            if (!strcmp(s->e[i - 1].name, s->e[i].name))
                rc = mt_fail(err, "%s: tensor %s is listed twice", s->where, s->e[i].name);
    }
    if (rc)
        hf_source_close(s);
    return rc;
}

void hf_source_close(hf_source *s) {
    for (int i = 0; i < s->n_files; i++)
        st_close(&s->files[i]);
    for (size_t i = 0; i < s->n; i++)
        free(s->e[i].name);
    free(s->files);
    free(s->e);
    memset(s, 0, sizeof *s);
}

hf_entry *hf_source_find(hf_source *s, const char *name) {
    static const char PREFIX[] = "transformer.";
    hf_entry key = {.name = (char *)name};
    hf_entry *e = s->n ? bsearch(&key, s->e, s->n, sizeof *s->e, by_name) : NULL;
    if (!e && !strncmp(name, PREFIX, sizeof PREFIX - 1))
        return hf_source_find(s, name + sizeof PREFIX - 1);
    return e;
}
