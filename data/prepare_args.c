/* bin/prepare's command line: the usage, the options of each subcommand, and what they name (template,
 * output folders, tokenizer) made ready. */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/prepare_cli.h"

void prep_usage(FILE *f) {
    fprintf(
        f,
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

static int parse_fraction(const char *flag, const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= 0 && v <= 1)) {
        fprintf(stderr, "prepare: %s %s: expected a number in [0, 1]\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* One option of a subcommand and its value; -1 after a line on stderr. */
static int set_option(prep_args *a, const char *flag, const char *v) {
    prep_opts *o = &a->o;
    int jsonl = !strcmp(a->cmd, "jsonl"), alpaca = !strcmp(a->cmd, "alpaca");
    long seed;
    if (!strcmp(flag, "--out"))
        o->out_dir = v;
    else if (!strcmp(flag, "--tokenizer-dir"))
        a->tokdir = v;
    else if (!strcmp(flag, "--field") && jsonl)
        o->field = v;
    else if (!strcmp(flag, "--template") && alpaca)
        a->tmpl = v;
    else if (!strcmp(flag, "--max-tokens") && alpaca)
        return parse_long(flag, v, 0, 1L << 40, &o->max_tokens);
    else if (!strcmp(flag, "--shard-tokens"))
        return parse_long(flag, v, 1, 1L << 40, &o->shard_tokens);
    else if (!strcmp(flag, "--seed")) {
        if (parse_long(flag, v, 0, 1L << 62, &seed))
            return -1;
        o->seed = (unsigned long long)seed;
    } else if (!strcmp(flag, "--val-fraction"))
        return parse_fraction(flag, v, &o->val_fraction);
    else {
        fprintf(stderr, "prepare: %s: unknown option for %s (see bin/prepare --help)\n", flag, a->cmd);
        return -1;
    }
    return 0;
}

int prep_parse_args(const char *cmd, int argc, char **argv, prep_args *a) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->o = (prep_opts){.field = "text", .shard_tokens = 64L << 20, .val_fraction = 0.01};
    for (int i = 0; i < argc; i++) {
        const char *flag = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(flag, "--strict")) {
            a->o.strict = 1;
            continue;
        }
        if (!strcmp(flag, "--help") || !strcmp(flag, "-h"))
            return PREP_ARGS_HELP;
        if (!v || strncmp(flag, "--", 2)) {
            fprintf(stderr, v ? "prepare: unexpected argument %s\n" : "prepare: %s needs a value\n", flag);
            return PREP_ARGS_BAD;
        }
        if (!strcmp(flag, "--in")) { /* every argument up to the next option */
            for (; i + 1 < argc && strncmp(argv[i + 1], "--", 2); i++)
                prep_list_push(&a->in, argv[i + 1]);
            continue;
        }
        if (set_option(a, flag, v))
            return PREP_ARGS_BAD;
        i++;
    }
    if (!a->in.n || !a->o.out_dir) {
        fprintf(stderr, "prepare: %s: --in and --out are required (see bin/prepare --help)\n", cmd);
        return PREP_ARGS_BAD;
    }
    if (!a->tokdir) {
        const char *cache = getenv("MESHTRAIN_CACHE");
        snprintf(a->defdir, sizeof a->defdir, "%s/gpt2", cache && *cache ? cache : ".cache");
        a->tokdir = a->defdir;
    }
    return PREP_ARGS_OK;
}

/* An output folder: created with its parents, and writable. */
static int output_folder(const char *out, const char *split, mt_err *err) {
    char path[4200], probe[4300];
    snprintf(path, sizeof path, "%s/%s", out, split);
    if (mt_make_dirs(path, err))
        return -1;
    snprintf(probe, sizeof probe, "%s/.prepare-probe", path);
    FILE *f = fopen(probe, "wb");
    if (!f)
        return mt_fail(err, "%s: folder is not writable: %s", path, strerror(errno));
    fclose(f);
    remove(probe);
    return 0;
}

int prep_args_open(prep_args *a, mt_err *err) {
    if (output_folder(a->o.out_dir, "train", err) || output_folder(a->o.out_dir, "val", err))
        return -1;
    char enc[4200], bpe[4200];
    snprintf(enc, sizeof enc, "%s/encoder.json", a->tokdir);
    snprintf(bpe, sizeof bpe, "%s/vocab.bpe", a->tokdir);
    a->o.tk = tok_load(enc, bpe, err);
    if (!a->o.tk)
        return -1;
    a->o.eot = tok_eot(a->o.tk);
    a->o.vocab_size = tok_vocab_size(a->o.tk);
    return 0;
}

void prep_args_free(prep_args *a) {
    if (a->o.tk)
        tok_free(a->o.tk);
    prep_list_free(&a->in);
    mt_bytes_free(&a->templates[0]);
    mt_bytes_free(&a->templates[1]);
}

/* The numeric options of `synthetic`: default and bounds. */
enum { SYN_TOKENS, SYN_VOCAB, SYN_EOT, SYN_BRANCH, SYN_SEED, SYN_N };
static const struct {
    const char *flag;
    long def, lo, hi;
} SYNTH[SYN_N] = {{"--tokens", 100000, 1, 1L << 40},
                  {"--vocab", 256, 2, 1L << 24},
                  {"--eot", 0, 0, 1L << 24},
                  {"--branch", 4, 1, 1024},
                  {"--seed", 1, 0, 1L << 62}};

/* One option of `synthetic` and its value; -1 after a line on stderr. */
static int set_synth_option(const char *flag, const char *v, long val[SYN_N], const char **out) {
    if (!strcmp(flag, "--out")) {
        *out = v;
        return 0;
    }
    for (int k = 0; k < SYN_N; k++)
        if (!strcmp(flag, SYNTH[k].flag))
            return parse_long(flag, v, SYNTH[k].lo, SYNTH[k].hi, &val[k]);
    fprintf(stderr, "prepare: unknown option %s for synthetic (see bin/prepare --help)\n", flag);
    return -1;
}

int prep_parse_synthetic(int argc, char **argv, synth_options *o, const char **out) {
    long val[SYN_N];
    for (int k = 0; k < SYN_N; k++)
        val[k] = SYNTH[k].def;
    *out = NULL;
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return PREP_ARGS_HELP;
    for (int i = 0; i < argc; i += 2) {
        if (i + 1 == argc) {
            fprintf(stderr, "prepare: %s needs a value\n", argv[i]);
            return 2;
        }
        if (set_synth_option(argv[i], argv[i + 1], val, out))
            return 2;
    }
    if (!*out || val[SYN_EOT] >= val[SYN_VOCAB]) {
        fprintf(stderr, *out ? "prepare: --eot must be below --vocab\n" : "prepare: --out is required\n");
        return 2;
    }
    *o = (synth_options){.vocab_size = (int)val[SYN_VOCAB],
                         .eot_token = (int)val[SYN_EOT],
                         .branch = (int)val[SYN_BRANCH],
                         .n_tokens = val[SYN_TOKENS],
                         .min_doc = 16,
                         .max_doc = 400,
                         .seed = (uint64_t)val[SYN_SEED]};
    return 0;
}
