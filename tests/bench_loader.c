/* make bench: loader tokens/s from a warm page cache (every shard read once first), for the pretraining
 * stream at the benchmark shape, printed with the training consumption it has to feed (aim: 100x).
 * Usage: bench_loader SHARD.h5 TRAIN_TOKENS_PER_S */
#include <stdio.h>
#include <stdlib.h>

#include "data/loader.h"

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: bench_loader SHARD.h5 TRAIN_TOKENS_PER_S\n");
        return 2;
    }
    enum { T = 256, G = 64 };
    loader l;
    mt_err err;
    if (loader_open(&l, LOADER_STREAM, &argv[1], 1, T, 1, 50304, 50304, &err)) {
        fprintf(stderr, "bench_loader: %s\n", err.msg);
        return 2;
    }
    int32_t *tokens = malloc((size_t)G * (T + 1) * sizeof *tokens);
    float *weights = malloc((size_t)G * T * sizeof *weights);
    for (long s = 0; s < l.n_seq / G; s++) /* warm the page cache */
        loader_global_batch(&l, G, 0, 1, tokens, weights, &err);
    double t0 = mt_now(), tok = 0;
    while (mt_now() - t0 < 2.0) {
        if (loader_global_batch(&l, G, 0, 1, tokens, weights, &err)) {
            fprintf(stderr, "bench_loader: %s\n", err.msg);
            return 1;
        }
        tok += (double)G * T;
    }
    double rate = tok / (mt_now() - t0), need = atof(argv[2]);
    printf("loader: %.3g tokens/s (shuffled windows of %d, batches of %d); training consumes %.3g tokens/s: "
           "%.0fx\n",
           rate, T + 1, G, need, need > 0 ? rate / need : 0);
    loader_close(&l);
    free(tokens);
    free(weights);
    return 0;
}
