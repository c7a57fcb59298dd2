/* bin/generate's command line: usage and options. */
#define _POSIX_C_SOURCE 200809L
#include "train/gen_args.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "model/backend.h"

void gen_usage(FILE *f) {
    static const char USAGE[] =
        "usage: bin/generate CKPT_OR_RUN_DIR [--prompt TEXT | --prompt-file FILE |\n"
        "                    --batch-file IN.jsonl --out OUT.jsonl] [--alpaca [--input TEXT]]\n"
        "                    [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S]\n"
        "                    [--stop STRING]... [--backend cpu|cuda|auto] [--threads N]\n"
        "                    [--tokenizer-dir DIR] [--base BASE.h5]\n"
        "  CKPT_OR_RUN_DIR: a checkpoint file, or a run directory (its ckpt/latest, or the newest\n"
        "  checkpoint that verifies). A LoRA adapter checkpoint (train.lora) runs on the base checkpoint\n"
        "  it names, or on --base BASE.h5, which must hold the same parameters. The prompt comes from "
        "--prompt, --prompt-file (its bytes as they\n"
        "  are), or stdin: one prompt per line, Ctrl-D ends. Only the new text is printed, while it is\n"
        "  produced, then a newline; stderr gets a line of token counts and speed per completion.\n"
        "  --alpaca             the prompt is an instruction in the Alpaca template (SPEC 6.2);\n"
        "                       --input TEXT selects the template with input\n"
        "  --max-new-tokens N   at most N new tokens (default 256); the context (n_ctx) also ends one\n"
        "  --temperature T      0 is greedy (default 0.8)\n"
        "  --top-k K            keep the K most likely tokens (default 0: all)\n"
        "  --top-p P            then the most likely ones up to probability P (default 0.95; 1: all)\n"
        "  --seed S             completion i of a run draws with seed S + i (default 1): same seed,\n"
        "                       same text\n"
        "  --stop STRING        end before STRING (repeatable); the end-of-text token always ends\n"
        "  --batch-file IN.jsonl --out OUT.jsonl\n"
        "                       a JSON object per line in: {\"prompt\": TEXT} or {\"prompt_ids\": [ids]}\n"
        "                       (with --alpaca {\"instruction\": ..., \"input\": ...}); one per completion\n"
        "                       out\n"
        "  --backend cpu|cuda|auto (default cpu); --threads N (default: OMP_NUM_THREADS or all cores)\n"
        "  --tokenizer-dir DIR  GPT-2 encoder.json and vocab.bpe (default $MESHTRAIN_CACHE/gpt2,\n"
        "                       else .cache/gpt2)\n"
        "  A prompt of n_ctx tokens or more is refused (exit 2), not truncated. Under mpirun -n K the\n"
        "  model is split over the K ranks. Exit codes: 0 done, 1 internal error, 2 bad input.\n";
    fputs(USAGE, f);
}

/* ---------------------------------------------------------------------------------------------- arguments */

/* A value option at argv[*i]; 1 if argv[*i] is not name. */
static int value(int argc, char **argv, int *i, const char *name, const char **out, mt_err *err) {
    if (strcmp(argv[*i], name))
        return 1;
    if (*i + 1 >= argc)
        return mt_fail(err, "%s needs a value (see --help)", name);
    *out = argv[++*i];
    return 0;
}

/* A numeric option: a number in [lo, hi] (an integer when integral), into *out. */
static int numeric(int argc, char **argv, int *i, const char *name, double lo, double hi, int integral,
                   double *out, mt_err *err) {
    const char *v = NULL;
    int rc = value(argc, argv, i, name, &v, err);
    if (rc)
        return rc;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi || (integral && x != floor(x)))
        return mt_fail(err, "%s: '%s' is not %s in [%g, %g]", name, v, integral ? "an integer" : "a number",
                       lo, hi);
    *out = x;
    return 0;
}

static int option(int argc, char **argv, int *i, gen_args *o, mt_err *err) {
    static const char *const TEXT[] = {"--prompt",        "--prompt-file", "--input",
                                       "--batch-file",    "--out",         "--backend",
                                       "--tokenizer-dir", "--base",        NULL};
    const char **const text[] = {&o->prompt, &o->prompt_file, &o->input,  &o->batch,
                                 &o->out,    &o->backend,     &o->tokdir, &o->base};
    const struct {
        const char *name;
        double lo, hi;
        int integral;
        double *out;
    } NUM[] = {{"--max-new-tokens", 1, 1 << 30, 1, &o->max_new}, {"--top-k", 0, 1 << 30, 1, &o->top_k},
               {"--threads", 1, 4096, 1, &o->threads},           {"--seed", 0, 0x1p53, 1, &o->seed},
               {"--temperature", 0, 1e6, 0, &o->temperature},    {"--top-p", 0, 1, 0, &o->top_p}};
    int rc;
    for (int k = 0; TEXT[k]; k++)
        if ((rc = value(argc, argv, i, TEXT[k], text[k], err)) <= 0)
            return rc;
    for (size_t k = 0; k < sizeof NUM / sizeof *NUM; k++)
        if ((rc = numeric(argc, argv, i, NUM[k].name, NUM[k].lo, NUM[k].hi, NUM[k].integral, NUM[k].out,
                          err)) <= 0)
            return rc;
    const char *stop = NULL;
    if ((rc = value(argc, argv, i, "--stop", &stop, err)) <= 0) {
        if (rc == 0 && !*stop)
            return mt_fail(err, "--stop: an empty stop string");
        if (rc == 0)
            o->stop[o->n_stop++] = stop;
        return rc;
    }
    if (!strcmp(argv[*i], "--alpaca")) {
        o->alpaca = 1;
        return 0;
    }
    if (argv[*i][0] == '-' || o->ckpt)
        return mt_fail(err, "unexpected argument '%s' (see --help)", argv[*i]);
    o->ckpt = argv[*i];
    return 0;
}

int gen_parse_args(int argc, char **argv, gen_args *o, mt_err *err) {
    *o = (gen_args){.backend = "cpu",
                    .max_new = 256,
                    .top_k = 0,
                    .threads = omp_get_max_threads(),
                    .seed = 1,
                    .temperature = 0.8,
                    .top_p = 0.95};
    o->stop = mt_calloc((size_t)argc, sizeof *o->stop);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
            return 1;
        if (option(argc, argv, &i, o, err))
            return -1;
    }
    if (!o->ckpt)
        return mt_fail(err, "no checkpoint or run directory given (see --help)");
    if (o->top_p == 0)
        return mt_fail(err, "--top-p: 0 keeps no token (the range is (0, 1])");
    if (o->prompt && o->prompt_file)
        return mt_fail(err, "--prompt and --prompt-file exclude each other");
    if (!o->batch != !o->out)
        return mt_fail(err, "--batch-file and --out go together");
    if (o->batch && (o->prompt || o->prompt_file))
        return mt_fail(err, "--batch-file excludes --prompt and --prompt-file");
    if (o->input && (!o->alpaca || o->batch))
        return mt_fail(err,
                       "--input needs --alpaca and a single prompt (a batch file has its own \"input\")");
    if (strcmp(o->backend, "cpu") && strcmp(o->backend, "cuda") && strcmp(o->backend, "auto"))
        return mt_fail(err, "--backend: '%s' is not cpu, cuda or auto", o->backend);
    if (!strcmp(o->backend, "cuda") && !backend_has_cuda())
        return mt_fail(err, "--backend cuda: this build has no CUDA backend (build it with make CUDA=1)");
    return 0;
}
