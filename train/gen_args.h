/* bin/generate's command line (train/main_generate.c). */
#ifndef MT_GEN_ARGS_H
#define MT_GEN_ARGS_H

#include <stdio.h>

#include "base/common.h"

/* The options as given (numbers checked against their ranges). */
typedef struct {
    const char *ckpt, *prompt, *prompt_file, *input, *batch, *out, *backend, *tokdir, *base;
    int alpaca;
    double max_new, top_k, threads, seed, temperature, top_p; /* checked numbers */
    const char **stop;
    int n_stop;
} gen_args;

void gen_usage(FILE *f);

/* The options of argv: 0, 1 for --help, or -1 with a one-line err. o->stop is allocated (free it). */
int gen_parse_args(int argc, char **argv, gen_args *o, mt_err *err);

#endif
