/* bin/prepare's pieces around the source processors (prepare.h): the command line, the sources its --in
 * arguments name and the work of each, and the end-of-run summary; main_prepare.c strings them together. */
#ifndef MT_PREPARE_CLI_H
#define MT_PREPARE_CLI_H

#include <stdio.h>

#include "data/prepare.h"
#include "data/synth.h"

/* A growing list of strings, each owned. */
typedef struct {
    char **v;
    int n, cap;
} prep_list;

void prep_list_push(prep_list *l, const char *s);
void prep_list_free(prep_list *l);

/* ---- prepare_args.c: the command line */

/* The options of `bin/prepare text|jsonl|alpaca` (pile is jsonl). */
typedef struct {
    const char *cmd;
    prep_list in;          /* --in arguments */
    const char *tokdir;    /* --tokenizer-dir, or $MESHTRAIN_CACHE/gpt2 (.cache/gpt2) */
    const char *tmpl;      /* --template, NULL for SPEC 6.2's */
    prep_opts o;           /* the output folder and the options of every source */
    mt_bytes templates[2]; /* the --template file's prompt_input and prompt_no_input */
    char defdir[4096];
} prep_args;

enum { PREP_ARGS_OK, PREP_ARGS_HELP, PREP_ARGS_BAD };

/* The usage text, to stdout for --help and to stderr after a usage error. */
void prep_usage(FILE *f);
/* The options after the subcommand cmd: PREP_ARGS_OK, PREP_ARGS_HELP (--help; nothing printed), or
 * PREP_ARGS_BAD after one line on stderr. */
int prep_parse_args(const char *cmd, int argc, char **argv, prep_args *a);
/* What the options name, made ready in a->o: the output folders DIR/train and DIR/val (created, and
 * found writable) and the tokenizer. The Alpaca templates are prep_alpaca_templates' (a->templates). */
int prep_args_open(prep_args *a, mt_err *err);
void prep_args_free(prep_args *a);
/* The options of `bin/prepare synthetic`: 0, PREP_ARGS_HELP (--help; nothing printed), or 2 after one line
 * on stderr. */
int prep_parse_synthetic(int argc, char **argv, synth_options *o, const char **out);

/* ---- prepare_sources.c: the sources and the work of each */

typedef enum { SRC_TEXT_FILES, SRC_TEXT_JSON, SRC_JSONL, SRC_ALPACA } prep_source_kind;

typedef struct {
    prep_source_kind kind;
    char name[256]; /* output name: the base name of the file or folder */
    char **paths;
    int n_paths;
    long long bytes;
} prep_source;

typedef struct {
    prep_source *v;
    int n;
} prep_sources;

/* The sources of the --in arguments of a, in a deterministic order; two with the same output name are
 * refused. */
int prep_collect(const prep_args *a, prep_sources *out, mt_err *err);
/* Prepares sources rank, rank + size, ... into a's output folders, counting into st: 0, or -1 with err set
 * at the first failure. */
int prep_run_sources(const prep_sources *s, const prep_args *a, int rank, int size, prep_stats *st,
                     mt_err *err);
void prep_sources_free(prep_sources *s);

/* ---- prepare_summary.c: the end of a run */

/* Collective over MPI_COMM_WORLD, given this rank's exit code: the exit code every rank returns (the
 * largest), and rank 0's summary of all ranks' counts (st) over n_sources sources since t0 (mt_now) on
 * success; on a failure, a note that the shards of the sources that finished stay in out_dir. */
int prep_finish(int code, const prep_stats *st, int n_sources, const char *out_dir, double t0);

#endif
