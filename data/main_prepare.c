/* bin/prepare: turns corpora into HDF5 token shards (DESIGN 6).
 *   bin/prepare synthetic --out FILE.h5 [--tokens N] [--vocab V] [--eot ID] [--branch K] [--seed S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/synth.h"

static void usage(void) {
    fprintf(stderr,
            "usage: bin/prepare synthetic --out FILE.h5 [--tokens N] [--vocab V] [--eot ID] [--branch K] "
            "[--seed S]\n"
            "  synthetic: documents from a sparse Markov chain over V tokens (tests and the first demo)\n");
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

int main(int argc, char **argv) {
    if (argc >= 2 && !strcmp(argv[1], "synthetic"))
        return synthetic(argc - 2, argv + 2);
    usage();
    return 2;
}
