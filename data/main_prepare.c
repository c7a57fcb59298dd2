/* bin/prepare: turns corpora into HDF5 token shards (DESIGN 6); see usage() and README "Data". */
#define _DEFAULT_SOURCE
#include <dirent.h>
#include <errno.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/alpaca.h"
#include "data/prepare.h"
#include "data/prepare_input.h"
#include "data/prepare_json.h"
#include "data/synth.h"

static void usage(void) {
    fprintf(
        stderr,
        "usage: bin/prepare text   --in FILE_OR_DIR... --out DIR [common options]\n"
        "       bin/prepare jsonl  --in FILE_OR_DIR... --out DIR [--field text] [common options]\n"
        "       bin/prepare pile   --in FILE_OR_DIR... --out DIR [common options]   (jsonl, field text)\n"
        "       bin/prepare alpaca --in FILE... --out DIR [--template FILE.json] [--max-tokens N] [common]\n"
        "       bin/prepare synthetic --out FILE.h5 [--tokens N] [--vocab V] [--eot ID] [--branch K] [--seed "
        "S]\n"
        "  text: each .txt file is one document (bytes as they are); a folder's .txt files (recursively, "
        "sorted)\n"
        "        form one source named after the folder; a .json file is an array of strings, one document "
        "each\n"
        "  jsonl: .jsonl or .jsonl.zst, one JSON object per line, the document in --field (default text);\n"
        "        meta.pile_set_name, when present, is kept per document in /doc_source\n"
        "  alpaca: .json array or .jsonl of {instruction, input, output}; prompt = SPEC 6.2 template (or\n"
        "        --template FILE.json with keys prompt_input, prompt_no_input and the placeholders "
        "{instruction},\n"
        "        {input}); /loss_mask = 1 on output tokens and EOT. --max-tokens N (default 0: no limit): a "
        "longer\n"
        "        example keeps its prompt and the first N - len(prompt) output tokens, without EOT; one "
        "whose\n"
        "        prompt alone has N tokens or more is dropped (counted)\n"
        "  common: --tokenizer-dir D (default $MESHTRAIN_CACHE/gpt2 or .cache/gpt2), --shard-tokens N "
        "(default\n"
        "        67108864; a shard is closed after the document that reaches N), --val-fraction F (default "
        "0.01;\n"
        "        by a hash of (source name, record index, --seed)), --seed S (default 0), --strict (stop "
        "with exit\n"
        "        code 2 at the first bad record instead of skipping it with a warning)\n"
        "  output: DIR/train/<source>-00000.h5, DIR/val/<source>-00000.h5, ...; under mpirun -n K, source i "
        "is\n"
        "        prepared by rank i %% K and the output is identical to a one-rank run's\n");
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) {
        fprintf(stderr, "prepare: %s %s: expected an integer in [%ld, %ld]\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int synthetic(int argc, char **argv) {
    const char *out = NULL;
    long tokens = 100000, vocab = 256, eot = 0, branch = 4, seed = 1;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!v) {
            fprintf(stderr, "prepare: %s needs a value\n", a);
            return 2;
        }
        if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--tokens"))
            bad = parse_long(a, v, 1, 1L << 40, &tokens);
        else if (!strcmp(a, "--vocab"))
            bad = parse_long(a, v, 2, 1L << 24, &vocab);
        else if (!strcmp(a, "--eot"))
            bad = parse_long(a, v, 0, 1L << 24, &eot);
        else if (!strcmp(a, "--branch"))
            bad = parse_long(a, v, 1, 1024, &branch);
        else if (!strcmp(a, "--seed"))
            bad = parse_long(a, v, 0, 1L << 62, &seed);
        else {
            fprintf(stderr, "prepare: unknown option %s\n", a);
            usage();
            return 2;
        }
        if (bad)
            return 2;
        i++;
    }
    if (!out || eot >= vocab) {
        fprintf(stderr, out ? "prepare: --eot must be below --vocab\n" : "prepare: --out is required\n");
        return 2;
    }
    synth_options o = {.vocab_size = (int)vocab,
                       .eot_token = (int)eot,
                       .branch = (int)branch,
                       .n_tokens = tokens,
                       .min_doc = 16,
                       .max_doc = 400,
                       .seed = (uint64_t)seed};
    mt_err err;
    if (synth_write_shard(out, &o, &err)) {
        fprintf(stderr, "prepare: %s\n", err.msg);
        return 2;
    }
    fprintf(stderr, "prepare: wrote %s (%ld tokens requested)\n", out, tokens);
    return 0;
}

typedef enum { SRC_TEXT_FILES, SRC_TEXT_JSON, SRC_JSONL, SRC_ALPACA } src_kind;

typedef struct {
    src_kind kind;
    char name[256];
    char **paths;
    int n_paths;
    long long bytes;
} source;

typedef struct {
    char **v;
    int n, cap;
} strlist;

static void push(strlist *l, const char *s) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        CHECK(l->v, "out of memory");
    }
    l->v[l->n++] = mt_strdup(s);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Every regular file under dir (recursively). */
static int walk(const char *dir, strlist *out, mt_err *err) {
    DIR *d = opendir(dir);
    if (!d)
        return mt_fail(err, "%s: cannot open folder: %s", dir, strerror(errno));
    struct dirent *e;
    strlist sub = {0};
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') {
            char p[4096];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            push(&sub, p);
        }
    closedir(d);
    qsort(sub.v, (size_t)sub.n, sizeof *sub.v, cmp_str);
    int rc = 0;
    for (int i = 0; i < sub.n; i++) {
        struct stat st;
        if (!rc && stat(sub.v[i], &st) == 0) {
            if (S_ISDIR(st.st_mode))
                rc = walk(sub.v[i], out, err);
            else if (S_ISREG(st.st_mode))
                push(out, sub.v[i]);
        }
        free(sub.v[i]);
    }
    free(sub.v);
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

static void add_source(source **v, int *n, src_kind kind, const char *name_of, char **paths, int n_paths) {
    *v = realloc(*v, (size_t)(*n + 1) * sizeof **v);
    CHECK(*v, "out of memory");
    source *s = &(*v)[(*n)++];
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

/* The sources of the --in arguments, in a deterministic order. */
static int collect(const char *cmd, strlist *in, source **out, int *n, mt_err *err) {
    int text = !strcmp(cmd, "text"), alpaca = !strcmp(cmd, "alpaca");
    for (int i = 0; i < in->n; i++) {
        const char *a = in->v[i];
        struct stat st;
        if (stat(a, &st))
            return mt_fail(err, "%s: cannot open: %s", a, strerror(errno));
        strlist files = {0}, txt = {0};
        if (S_ISDIR(st.st_mode)) {
            if (walk(a, &files, err))
                return -1;
        } else {
            push(&files, a);
        }
        for (int k = 0; k < files.n; k++) {
            const char *f = files.v[k];
            int dir = S_ISDIR(st.st_mode);
            if (text && pin_ends_with(f, ".json"))
                add_source(out, n, SRC_TEXT_JSON, f, &files.v[k], 1);
            else if (text && (!dir || pin_ends_with(f, ".txt")))
                push(&txt, f);
            else if (!text && (!dir || pin_ends_with(f, ".jsonl") || pin_ends_with(f, ".jsonl.zst") ||
                               (alpaca && pin_ends_with(f, ".json"))))
                add_source(out, n, alpaca ? SRC_ALPACA : SRC_JSONL, f, &files.v[k], 1);
        }
        if (txt.n)
            add_source(out, n, SRC_TEXT_FILES, a, txt.v, txt.n);
        if (!files.n)
            return mt_fail(err, "%s: no input files in this folder", a);
        for (int k = 0; k < files.n; k++)
            free(files.v[k]);
        for (int k = 0; k < txt.n; k++)
            free(txt.v[k]);
        free(files.v);
        free(txt.v);
    }
    for (int i = 0; i < *n; i++)
        for (int j = 0; j < i; j++)
            if (!strcmp((*out)[i].name, (*out)[j].name))
                return mt_fail(err, "%s and %s: both give the output name \"%s\"; rename one",
                               (*out)[j].paths[0], (*out)[i].paths[0], (*out)[i].name);
    return 0;
}

static int mkdir_p(const char *path, mt_err *err) {
    char p[4096];
    snprintf(p, sizeof p, "%s", path);
    for (char *c = p + 1;; c++) {
        if (*c == '/' || !*c) {
            char keep = *c;
            *c = 0;
            struct stat st;
            if (mkdir(p, 0777) && errno != EEXIST)
                return mt_fail(err, "%s: cannot create folder: %s", p, strerror(errno));
            if (stat(p, &st) || !S_ISDIR(st.st_mode))
                return mt_fail(err, "%s: cannot create folder: not a folder", p);
            *c = keep;
            if (!keep)
                break;
        }
    }
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/.prepare-probe", path);
    FILE *f = fopen(probe, "wb");
    if (!f)
        return mt_fail(err, "%s: folder is not writable: %s", path, strerror(errno));
    fclose(f);
    remove(probe);
    return 0;
}

/* A template file: {"prompt_input": "...", "prompt_no_input": "..."} with {instruction} and {input}. */
static int load_template(const char *path, tok_bytes v[2], mt_err *err) {
    size_t len;
    char *text = mt_read_file(path, &len, err);
    if (!text)
        return -1;
    static const char *const keys[2] = {"prompt_input", "prompt_no_input"};
    int state[2] = {0, 0}, rc = 0;
    pj p;
    pj_init(&p, text, len);
    if (pj_fields(&p, keys, 2, v, state) || pj_end(&p))
        rc = mt_fail(err, "%s: invalid JSON at byte %zu: %s", path, p.err_pos, p.err);
    for (int k = 0; k < 2 && !rc; k++) {
        if (state[k] != 1)
            rc = mt_fail(err, "%s: %s: missing (a string is required)", path, keys[k]);
        else {
            v[k].data = realloc(v[k].data, v[k].n + 1);
            v[k].data[v[k].n] = 0;
            if (strlen(v[k].data) != v[k].n || !strstr(v[k].data, "{instruction}") ||
                (k == 0 && !strstr(v[k].data, "{input}")))
                rc = mt_fail(err, "%s: %s: must contain {instruction}%s", path, keys[k],
                             k ? "" : " and {input}");
        }
    }
    free(text);
    return rc;
}

static void summary(const prep_stats *g, int n_sources, double sec) {
    const prep_stats *s = g;
    long long skipped = 0;
    for (int k = 0; k < SKIP_N; k++)
        if (k != SKIP_EMPTY_DOC)
            skipped += s->skipped[k];
    fprintf(
        stderr,
        "prepare: done: %d sources, %lld documents (%lld val), %lld tokens, %lld train + %lld val shards, "
        "%.1f MB in %.1f s (%.2f MB/s)\n",
        n_sources, s->docs, s->val_docs, s->tokens, s->train_shards, s->val_shards, (double)s->bytes / 1e6,
        sec, sec > 0 ? (double)s->bytes / 1e6 / sec : 0.0);
    fprintf(
        stderr,
        "prepare: skipped %lld records (malformed JSON %lld, missing field %lld, truncated or corrupt stream "
        "%lld, empty input %lld, prompt too long %lld), %lld empty documents, %lld truncated examples, %lld "
        "U+FFFD replacements\n",
        skipped, s->skipped[SKIP_JSON], s->skipped[SKIP_FIELD], s->skipped[SKIP_STREAM],
        s->skipped[SKIP_EMPTY_IN], s->skipped[SKIP_TOO_LONG], s->skipped[SKIP_EMPTY_DOC], s->truncated,
        s->replacements);
}

static int run(const char *cmd, int argc, char **argv, int rank, int size) {
    strlist in = {0};
    const char *out = NULL, *tokdir = NULL, *tmpl = NULL;
    char defdir[4096];
    prep_opts o = {.field = "text", .shard_tokens = 64L << 20, .val_fraction = 0.01};
    long seed = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--strict")) {
            o.strict = 1;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            if (rank == 0)
                usage();
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v || !strncmp(a, "--", 2) == 0) {
            fprintf(stderr, v ? "prepare: unexpected argument %s\n" : "prepare: %s needs a value\n", a);
            return 2;
        }
        int bad = 0;
        if (!strcmp(a, "--in")) {
            for (; i + 1 < argc && strncmp(argv[i + 1], "--", 2); i++)
                push(&in, argv[i + 1]);
            continue;
        } else if (!strcmp(a, "--out"))
            out = v;
        else if (!strcmp(a, "--tokenizer-dir"))
            tokdir = v;
        else if (!strcmp(a, "--field") && strcmp(cmd, "jsonl") == 0)
            o.field = v;
        else if (!strcmp(a, "--template") && strcmp(cmd, "alpaca") == 0)
            tmpl = v;
        else if (!strcmp(a, "--max-tokens") && strcmp(cmd, "alpaca") == 0)
            bad = parse_long(a, v, 0, 1L << 40, &o.max_tokens);
        else if (!strcmp(a, "--shard-tokens"))
            bad = parse_long(a, v, 1, 1L << 40, &o.shard_tokens);
        else if (!strcmp(a, "--seed"))
            bad = parse_long(a, v, 0, 1L << 62, &seed);
        else if (!strcmp(a, "--val-fraction")) {
            char *end;
            o.val_fraction = strtod(v, &end);
            if (!*v || *end || !(o.val_fraction >= 0 && o.val_fraction <= 1)) {
                fprintf(stderr, "prepare: --val-fraction %s: expected a number in [0, 1]\n", v);
                return 2;
            }
        } else {
            fprintf(stderr, "prepare: %s: unknown option for %s (see bin/prepare --help)\n", a, cmd);
            return 2;
        }
        if (bad)
            return 2;
        i++;
    }
    if (!in.n || !out) {
        fprintf(stderr, "prepare: %s: --in and --out are required (see bin/prepare --help)\n", cmd);
        return 2;
    }
    o.seed = (unsigned long long)seed;
    o.out_dir = out;
    if (!tokdir) {
        const char *cache = getenv("MESHTRAIN_CACHE");
        snprintf(defdir, sizeof defdir, "%s/gpt2", cache && *cache ? cache : ".cache");
        tokdir = defdir;
    }
    mt_err err = {{0}};
    source *src = NULL;
    int n_src = 0, rc = 0;
    tok_bytes tv[2] = {{0}};
    char path[2][4200], sub[4200];
    if (tmpl) {
        rc = load_template(tmpl, tv, &err);
        o.tmpl_input = tv[0].data;
        o.tmpl_no_input = tv[1].data;
    } else {
        o.tmpl_input = ALPACA_PROMPT_INPUT;
        o.tmpl_no_input = ALPACA_PROMPT_NO_INPUT;
    }
    if (!rc)
        rc = collect(cmd, &in, &src, &n_src, &err);
    snprintf(sub, sizeof sub, "%s/train", out);
    if (!rc)
        rc = mkdir_p(sub, &err);
    snprintf(sub, sizeof sub, "%s/val", out);
    if (!rc)
        rc = mkdir_p(sub, &err);
    if (!rc) {
        snprintf(path[0], sizeof path[0], "%s/encoder.json", tokdir);
        snprintf(path[1], sizeof path[1], "%s/vocab.bpe", tokdir);
        o.tk = tok_load(path[0], path[1], &err);
        if (!o.tk)
            rc = -1;
        else {
            o.eot = tok_eot(o.tk);
            o.vocab_size = tok_vocab_size(o.tk);
        }
    }
    prep_stats st = {0};
    double t0 = mt_now();
    for (int i = rank; i < n_src && !rc; i += size)
        prep_total_bytes += src[i].bytes;
    for (int i = rank; i < n_src && !rc; i += size) {
        source *s = &src[i];
        static const char *const kinds[] = {"text files", "text JSON array", "jsonl", "alpaca"};
        char desc[1024];
        if (s->kind == SRC_JSONL)
            snprintf(desc, sizeof desc, "%s: %s, field %s", kinds[s->kind], s->name, o.field);
        else if (s->kind == SRC_TEXT_FILES)
            snprintf(desc, sizeof desc, "%s: %s (%d files)", kinds[s->kind], s->name, s->n_paths);
        else
            snprintf(desc, sizeof desc, "%s: %s%s%s", kinds[s->kind], s->name, tmpl ? ", template " : "",
                     tmpl ? tmpl : "");
        prep_src ps;
        prep_src_init(&ps, &o, &st, s->name, desc, s->kind == SRC_ALPACA);
        switch (s->kind) {
        case SRC_TEXT_FILES:
            rc = prepare_text_files(&ps, s->paths, s->n_paths, &err);
            break;
        case SRC_TEXT_JSON:
            rc = prepare_text_json(&ps, s->paths[0], &err);
            break;
        case SRC_JSONL:
            rc = prepare_jsonl(&ps, s->paths[0], &err);
            break;
        case SRC_ALPACA:
            rc = prepare_alpaca(&ps, s->paths[0], &err);
            break;
        }
        if (rc)
            prep_src_abort(&ps);
        else
            rc = prep_src_close(&ps, &err);
    }
    if (rc)
        fprintf(stderr, "prepare: %s\n", err.msg);
    else
        prep_progress(&st, st.bytes, 1);
    /* The global outcome and summary. */
    int code = rc ? 2 : 0, gcode = code;
    MPI_Allreduce(&code, &gcode, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    prep_stats g = st;
    enum { N = sizeof(prep_stats) / sizeof(long long) };
    MPI_Reduce(&st, &g, N, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    if (rank == 0 && !gcode)
        summary(&g, n_src, mt_now() - t0);
    if (o.tk)
        tok_free(o.tk);
    for (int i = 0; i < n_src; i++) {
        for (int k = 0; k < src[i].n_paths; k++)
            free(src[i].paths[k]);
        free(src[i].paths);
    }
    free(src);
    for (int i = 0; i < in.n; i++)
        free(in.v[i]);
    free(in.v);
    tok_bytes_free(&tv[0]);
    tok_bytes_free(&tv[1]);
    return gcode;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "synthetic"))
        return synthetic(argc - 2, argv + 2);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "text") && strcmp(cmd, "jsonl") && strcmp(cmd, "pile") && strcmp(cmd, "alpaca")) {
        fprintf(stderr, "prepare: unknown subcommand %s (see bin/prepare --help)\n", cmd);
        return 2;
    }
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    prep_rank = rank;
    int rc = run(!strcmp(cmd, "pile") ? "jsonl" : cmd, argc - 2, argv + 2, rank, size);
    MPI_Finalize();
    return rc;
}
