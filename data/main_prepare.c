/* bin/prepare: turns corpora into HDF5 token shards (DESIGN 6); see prep_usage() and README "Data". The
 * command line is in prepare_args.c, the sources and their work in prepare_sources.c and the source
 * processors (prepare_text.c, prepare_jsonl.c, prepare_alpaca.c), the summary in prepare_summary.c. */
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "base/signals.h"
#include "data/prepare_cli.h"

static int synthetic(int argc, char **argv) {
    synth_options o;
    const char *out;
    mt_err err;
    int parsed = prep_parse_synthetic(argc, argv, &o, &out);
    if (parsed == PREP_ARGS_HELP)
        prep_usage(stdout);
    if (parsed)
        return parsed == PREP_ARGS_HELP ? 0 : 2;
    if (synth_write_shard(out, &o, &err)) {
        fprintf(stderr, "prepare: %s\n", err.msg);
        return 2;
    }
    fprintf(stderr, "prepare: wrote %s (%ld tokens requested)\n", out, o.n_tokens);
    return 0;
}

/* bin/prepare CMD ... on every rank: the sources of rank r are r, r + size, ... */
static int run(const char *cmd, int argc, char **argv, int rank, int size) {
    prep_args a;
    int parsed = prep_parse_args(cmd, argc, argv, &a);
    if (parsed == PREP_ARGS_HELP && rank == 0)
        prep_usage(stdout);
    if (parsed != PREP_ARGS_OK) {
        prep_args_free(&a);
        return parsed == PREP_ARGS_HELP ? 0 : 2;
    }
    mt_err err = {{0}};
    prep_sources src = {0};
    prep_stats st = {0};
    int rc = prep_alpaca_templates(&a.o, a.tmpl, a.templates, &err) || prep_collect(&a, &src, &err) ||
             prep_args_open(&a, &err);
    double t0 = mt_now();
    if (!rc)
        rc = prep_run_sources(&src, &a, rank, size, &st, &err);
    if (rc)
        fprintf(stderr, "prepare: %s\n", err.msg);
    else
        prep_progress(&st, st.bytes, 1);
    int code = prep_finish(rc ? signals_stop_requested() ? MT_EXIT_STOPPED : MT_EXIT_BAD_INPUT : 0, &st,
                           src.n, a.o.out_dir, t0);
    prep_sources_free(&src);
    prep_args_free(&a);
    return code;
}

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "synthetic"))
        return synthetic(argc - 2, argv + 2);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        prep_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "text") && strcmp(cmd, "jsonl") && strcmp(cmd, "pile") && strcmp(cmd, "alpaca")) {
        fprintf(stderr, "prepare: unknown subcommand %s (see bin/prepare --help)\n", cmd);
        return 2;
    }
    signals_install(); /* before MPI_Init, as bin/train: a stop during start-up is kept */
    MPI_Init(&argc, &argv);
    signals_install();
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    prep_rank = rank;
    int rc = run(!strcmp(cmd, "pile") ? "jsonl" : cmd, argc - 2, argv + 2, rank, size);
    MPI_Finalize();
    return rc;
}
