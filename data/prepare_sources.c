/* bin/prepare's sources and the work of each: the --in arguments become sources (a file, or for text the
 * .txt files of a folder), each prepared whole by one rank into its own shard sequences, so the output does
 * not depend on the number of ranks. */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/prepare_cli.h"
#include "data/prepare_input.h"

void prep_list_push(prep_list *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        CHECK(l->v, "out of memory");
    }
    l->v[l->n++] = mt_strdup(s);
}

void prep_list_free(prep_list *l) {
    for (int i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (prep_list){0};
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file under dir (recursively). */
static int walk(const char *dir, prep_list *out, mt_err *err) {
    DIR *d = opendir(dir);
    if (!d)
        return mt_fail(err, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    prep_list sub = {0};
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            prep_list_push(&sub, p);
        }
    closedir(d);
    qsort(sub.v, (size_t)sub.n, sizeof *sub.v, cmp_str);
    int rc = 0;
    for (int i = 0; i < sub.n && !rc; i++) {
        struct stat st;
        if (stat(sub.v[i], &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(sub.v[i], out, err);
            else if (S_ISREG(st.st_mode))
                prep_list_push(out, sub.v[i]);
        }
    }
    prep_list_free(&sub);
    return rc;
}

static long long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* The output name of an input: its base name without .zst, .jsonl, .json, .txt. */
static void base_name(const char *path, char *out, size_t cap) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    const char *b = path;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/' && i + 1 < n)
            b = path + i + 1;
    size_t len = (size_t)(path + n - b);
    snprintf(out, cap, "%.*s", (int)len, b);
    static const char *const ext[] = {".zst", ".jsonl", ".json", ".txt"};
    for (int k = 0; k < 4; k++)
        if (pin_ends_with(out, ext[k]) && strlen(out) > strlen(ext[k]))
            out[strlen(out) - strlen(ext[k])] = 0;
}

static void add_source(prep_sources *v, prep_source_kind kind, const char *name_of, char **paths,
                       int n_paths) {
    v->v = realloc(v->v, (size_t)(v->n + 1) * sizeof *v->v);
    CHECK(v->v, "out of memory");
    prep_source *s = &v->v[v->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    base_name(name_of, s->name, sizeof s->name);
    s->paths = mt_malloc((size_t)n_paths * sizeof *s->paths);
    for (int i = 0; i < n_paths; i++) {
        s->paths[i] = mt_strdup(paths[i]);
        s->bytes += file_size(paths[i]);
    }
    s->n_paths = n_paths;
}

/* What a file named on its own cannot be for `text`: JSON Lines, which would become one document of JSON. */
static int refuse_for_text(const char *f, mt_err *err) {
    if (pin_ends_with(f, ".jsonl") || pin_ends_with(f, ".jsonl.zst"))
        return mt_fail(err,
                       "%s: a JSON Lines file; bin/prepare jsonl reads it (text takes .txt files and JSON "
                       "arrays of strings)",
                       f);
    return 0;
}

/* The kind of source a file of a folder is for this subcommand, or -1 when it is not one. */
static int kind_in_folder(const char *f, int text, int alpaca) {
    if (text)
        return pin_ends_with(f, ".json") ? SRC_TEXT_JSON : pin_ends_with(f, ".txt") ? SRC_TEXT_FILES : -1;
    if (pin_ends_with(f, ".jsonl") || pin_ends_with(f, ".jsonl.zst") || (alpaca && pin_ends_with(f, ".json")))
        return alpaca ? SRC_ALPACA : SRC_JSONL;
    return -1;
}

/* A folder's files that are no input of this subcommand: refused when nothing else is there, else said. */
static int report_skipped(const char *dir, const prep_list *files, int used, int text, int alpaca,
                          mt_err *err) {
    int skipped = files->n - used;
    const char *example = NULL;
    for (int k = 0; k < files->n && !example; k++)
        if (kind_in_folder(files->v[k], text, alpaca) < 0)
            example = files->v[k];
    const char *want = text     ? ".txt or .json"
                       : alpaca ? ".json, .jsonl or .jsonl.zst"
                                : ".jsonl or .jsonl.zst";
    if (!files->n)
        return mt_fail(err, "%s: no input files in this folder", dir);
    if (!used)
        return mt_fail(err, "%s: none of its %d files is a %s file (e.g. %s)", dir, files->n, want,
                       example ? example : files->v[0]);
    if (skipped && prep_rank == 0)
        fprintf(stderr, "prepare: %s: skipping %d files that are not %s files (e.g. %s)\n", dir, skipped,
                want, example ? example : "?");
    return 0;
}

/* The sources of one --in argument: a file, or the files below a folder. */
static int collect_arg(const char *a, int text, int alpaca, prep_sources *out, mt_err *err) {
    struct stat st;
    if (stat(a, &st))
        return mt_fail(err, "%s: cannot open: %s", a, strerror(errno));
    int dir = S_ISDIR(st.st_mode), rc = 0, used = 0;
    prep_list files = {0}, txt = {0};
    if (dir)
        rc = walk(a, &files, err);
    else if (!(rc = text ? refuse_for_text(a, err) : 0))
        prep_list_push(&files, a);
    for (int k = 0; k < files.n && !rc; k++) {
        const char *f = files.v[k];
        int kind = kind_in_folder(f, text, alpaca);
        if (kind < 0 && dir)
            continue;
        used++;
        if (text && kind != SRC_TEXT_JSON)
            prep_list_push(&txt, f);
        else
            add_source(out, text ? SRC_TEXT_JSON : alpaca ? SRC_ALPACA : SRC_JSONL, f, &files.v[k], 1);
    }
    if (!rc && txt.n)
        add_source(out, SRC_TEXT_FILES, a, txt.v, txt.n);
    if (!rc && dir)
        rc = report_skipped(a, &files, used, text, alpaca, err);
    prep_list_free(&files);
    prep_list_free(&txt);
    return rc;
}

int prep_collect(const prep_args *args, prep_sources *out, mt_err *err) {
    int text = !strcmp(args->cmd, "text"), alpaca = !strcmp(args->cmd, "alpaca");
    for (int i = 0; i < args->in.n; i++)
        if (collect_arg(args->in.v[i], text, alpaca, out, err))
            return -1;
    for (int i = 0; i < out->n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp(out->v[i].name, out->v[j].name))
                return mt_fail(err, "%s and %s: both give the output name \"%s\"; rename one",
                               out->v[j].paths[0], out->v[i].paths[0], out->v[i].name);
    return 0;
}

void prep_sources_free(prep_sources *s) {
    for (int i = 0; i < s->n; i++) {
        for (int k = 0; k < s->v[i].n_paths; k++)
            free(s->v[i].paths[k]);
        free(s->v[i].paths);
    }
    free(s->v);
    *s = (prep_sources){0};
}

/* What a source is, for the description attribute of its shards. */
static void describe(const prep_source *s, const prep_args *a, char *desc, size_t cap) {
    static const char *const kinds[] = {"text files", "text JSON array", "jsonl", "alpaca"};
    if (s->kind == SRC_JSONL)
        snprintf(desc, cap, "%s: %s, field %s", kinds[s->kind], s->name, a->o.field);
    else if (s->kind == SRC_TEXT_FILES)
        snprintf(desc, cap, "%s: %s (%d files)", kinds[s->kind], s->name, s->n_paths);
    else
        snprintf(desc, cap, "%s: %s%s%s", kinds[s->kind], s->name, a->tmpl ? ", template " : "",
                 a->tmpl ? a->tmpl : "");
}

/* One source, whole, into its train and val shard sequences; nothing of it is left on a failure. */
static int run_source(const prep_source *s, const prep_args *a, prep_stats *st, mt_err *err) {
    char desc[1024];
    describe(s, a, desc, sizeof desc);
    prep_src ps;
    prep_src_init(&ps, &a->o, st, s->name, desc, s->kind == SRC_ALPACA);
    int rc = 0;
    switch (s->kind) {
    case SRC_TEXT_FILES:
        rc = prepare_text_files(&ps, s->paths, s->n_paths, err);
        break;
    case SRC_TEXT_JSON:
        rc = prepare_text_json(&ps, s->paths[0], err);
        break;
    case SRC_JSONL:
        rc = prepare_jsonl(&ps, s->paths[0], err);
        break;
    case SRC_ALPACA:
        rc = prepare_alpaca(&ps, s->paths[0], err);
        break;
    }
    if (rc)
        prep_src_abort(&ps);
    else
        rc = prep_src_close(&ps, err);
    return rc;
}

int prep_run_sources(const prep_sources *s, const prep_args *a, int rank, int size, prep_stats *st,
                     mt_err *err) {
    for (int i = rank; i < s->n; i += size)
        prep_total_bytes += s->v[i].bytes;
    int rc = 0;
    for (int i = rank; i < s->n && !rc; i += size)
        if (!(rc = run_source(&s->v[i], a, st, err)))
            st->sources_done++;
    return rc;
}
