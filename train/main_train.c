/* bin/train RUN_CONFIG [--set key=value]... [--dry-run]: one binary for one process, mpirun and srun. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/h5.h"
#include "base/signals.h"
#include "train/trainer.h"

/* The usage, then the key reference that README's config tables copy (tests/test_config_keys.sh). */
static void usage(void) {
    printf(
        "usage: bin/train CONFIG.json [--set key.path=value]... [--dry-run] [--resume PATH | --no-resume]\n"
        "                 [--eval-only [--allow-untrained]]\n"
        "  CONFIG is a run config (model + data + train sections) or, with --dry-run, a model config;\n"
        "  strict JSON: no key twice, nothing after the object (README \"Parsing rules\").\n"
        "  --set key.path=value  override a config key; value is JSON when all of it is a JSON value,\n"
        "                        else a string (--set model=PATH names another model config)\n"
        "  --dry-run             print the resolved config, params: N and the memory per rank; no run\n"
        "  --resume PATH         start from this checkpoint (default: RUN_DIR/ckpt/latest if present)\n"
        "  --no-resume           start fresh even if RUN_DIR/ckpt holds checkpoints\n"
        "  --eval-only           print eval_loss of the checkpoint's parameters on data.val, record it in\n"
        "                        metrics.jsonl, and exit; --allow-untrained permits random parameters\n"
        "  Exit codes: 0 done, 1 internal error, 2 bad input, 3 stopped on a signal after writing a\n"
        "  checkpoint (requeue).\n"
        "\nRun config keys (unknown keys are errors; a default in words is computed after parsing):\n");
    jcfg_reference(stdout, run_config_keys);
    printf("\nModel config keys (configs/models/*.json, or the run config's `model` object):\n");
    jcfg_reference(stdout, model_config_keys);
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

typedef struct {
    const char *config;
    char **sets; /* the --set assignments, pointing into argv */
    int n_sets, dry_run, help;
    trainer_options topt;
} cli;

/* 0, or MT_EXIT_BAD_INPUT with err set. */
static int parse_args(int argc, char **argv, cli *c, mt_err *err) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc)
            c->sets[c->n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6))
            c->sets[c->n_sets++] = argv[i] + 6;
        else if (!strcmp(argv[i], "--dry-run"))
            c->dry_run = 1;
        else if (!strcmp(argv[i], "--resume") && i + 1 < argc && argv[i + 1][0])
            c->topt.resume = argv[++i];
        else if (!strcmp(argv[i], "--no-resume"))
            c->topt.no_resume = 1;
        else if (!strcmp(argv[i], "--eval-only"))
            c->topt.eval_only = 1;
        else if (!strcmp(argv[i], "--allow-untrained"))
            c->topt.allow_untrained = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            c->help = 1;
        else if (argv[i][0] == '-' || c->config)
            return mt_fail(err, "unexpected argument '%s' (see --help)", argv[i]), MT_EXIT_BAD_INPUT;
        else
            c->config = argv[i];
    }
    if (c->help)
        return MT_EXIT_OK;
    if (!c->config)
        return mt_fail(err, "no config given (see --help)"), MT_EXIT_BAD_INPUT;
    if (c->topt.resume && c->topt.no_resume)
        return mt_fail(err, "--resume and --no-resume contradict each other: give one"), MT_EXIT_BAD_INPUT;
    if (c->topt.allow_untrained && !c->topt.eval_only)
        return mt_fail(err, "--allow-untrained goes with --eval-only"), MT_EXIT_BAD_INPUT;
    return MT_EXIT_OK;
}

static int run(const cli *c, int rank, int world, mt_err *err) {
    run_config rc;
    if (run_config_load(&rc, c->config, c->sets, c->n_sets, c->dry_run, world, err))
        return MT_EXIT_BAD_INPUT;
    int code = MT_EXIT_OK;
    if (!c->dry_run)
        code = trainer_run(&rc, &c->topt, err);
    else if (rank == 0)
        trainer_dry_run(&rc);
    run_config_free(&rc);
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
    cli c = {.sets = mt_calloc((size_t)argc, sizeof *c.sets)};
    mt_err err = {""};
    int code = parse_args(argc, argv, &c, &err);
    if (!code && c.help && rank == 0)
        usage();
    else if (!code && !c.help)
        code = run(&c, rank, world, &err);
    free(c.sets);
    return finish(rank, code, err.msg);
}
