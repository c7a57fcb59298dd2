/* bin/train RUN_CONFIG [--set key=value]... [--dry-run] */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/trainer.h"

static void usage(void) {
    fprintf(stderr,
            "usage: bin/train CONFIG.json [--set key.path=value]... [--dry-run]\n"
            "  CONFIG is a run config (model + data + train sections) or, with --dry-run, a model config.\n");
}

int main(int argc, char **argv) {
    const char *config = NULL;
    char **sets = calloc((size_t)argc, sizeof *sets);
    int n_sets = 0, dry_run = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--set") && i + 1 < argc)
            sets[n_sets++] = argv[++i];
        else if (!strncmp(argv[i], "--set=", 6))
            sets[n_sets++] = argv[i] + 6;
        else if (!strcmp(argv[i], "--dry-run"))
            dry_run = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            return 0;
        } else if (argv[i][0] == '-' || config) {
            fprintf(stderr, "train: unexpected argument '%s'\n", argv[i]);
            usage();
            return MT_EXIT_BAD_INPUT;
        } else
            config = argv[i];
    }
    if (!config) {
        usage();
        return MT_EXIT_BAD_INPUT;
    }
    run_config rc;
    mt_err err;
    if (run_config_load(&rc, config, sets, n_sets, dry_run, &err))
        mt_die("train", MT_EXIT_BAD_INPUT, "%s", err.msg);
    int code = MT_EXIT_OK;
    if (dry_run) {
        trainer_dry_run(&rc);
    } else {
        MPI_Init(&argc, &argv);
        code = trainer_run(&rc, &err);
        if (code)
            fprintf(stderr, "train: %s\n", err.msg);
        MPI_Finalize();
    }
    run_config_free(&rc);
    free(sets);
    return code;
}
