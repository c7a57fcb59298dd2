/* bin/train RUN_CONFIG [--set key=value]... [--dry-run]: one binary for one process, mpirun and srun. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/shard.h"
#include "train/signals.h"
#include "train/trainer.h"

static void usage(void) {
    fprintf(
        stderr,
        "usage: bin/train CONFIG.json [--set key.path=value]... [--dry-run] [--resume PATH | --no-resume]\n"
        "                 [--eval-only]\n"
        "  CONFIG is a run config (model + data + train sections) or, with --dry-run, a model config.\n"
        "  A run resumes from RUN_DIR/ckpt/latest by default. Exit codes: 0 done, 1 internal error,\n"
        "  2 bad input, 3 stopped on a signal after writing a checkpoint (requeue).\n");
}

/* Every rank sees the same bad input (or has agreed on the failing rank's message); rank 0 alone says so,
 * and all exit with the same code. */
static int finish(int rank, int code, const char *msg) {
    if (code && rank == 0)
        fprintf(stderr, "train: %s\n", msg);
    if (h5_is_broken()) { /* HDF5 would crash while shutting down (MPI_Finalize, atexit) */
        fflush(NULL);
        _exit(code ? code : MT_EXIT_INTERNAL);
    }
    MPI_Finalize();
    return code;
}

int main(int argc, char **argv) {
    /* Before anything slow (MPI_Init, config loading, resume): a stop signal that comes during start-up
     * is remembered and honoured at the first step boundary instead of killing the rank. */
    signals_install();
    MPI_Init(&argc, &argv);
    signals_install(); /* again, in case the MPI library replaced a handler */
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    const char *config = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0, dry_run = 0;
    trainer_options topt = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc)
            sets[n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6))
            sets[n_sets++] = argv[i] + 6;
        else if (!strcmp(argv[i], "--dry-run"))
            dry_run = 1;
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc)
            topt.resume = argv[++i];
        else if (!strcmp(argv[i], "--no-resume"))
            topt.no_resume = 1;
        else if (!strcmp(argv[i], "--eval-only"))
            topt.eval_only = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return finish(rank, MT_EXIT_OK, "");
        } else if (argv[i][0] == '-' || config) {
            char msg[300];
            snprintf(msg, sizeof msg, "unexpected argument '%s' (see --help)", argv[i]);
            return finish(rank, MT_EXIT_BAD_INPUT, msg);
        } else
            config = argv[i];
    }
    if (!config)
        return finish(rank, MT_EXIT_BAD_INPUT, "no config given (see --help)");
    run_config rc;
    mt_err err = {""};
    if (run_config_load(&rc, config, sets, n_sets, dry_run, world, &err))
        return finish(rank, MT_EXIT_BAD_INPUT, err.msg);
    int code = MT_EXIT_OK;
    if (dry_run) {
        if (rank == 0)
            trainer_dry_run(&rc);
    } else {
        code = trainer_run(&rc, &topt, &err);
    }
    run_config_free(&rc);
    free(sets);
    return finish(rank, code, err.msg);
}
