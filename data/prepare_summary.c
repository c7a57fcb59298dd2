/* The end of a bin/prepare run: one exit code for all ranks, and the counts of all ranks summed into one
 * summary on rank 0. */
#include <mpi.h>
#include <stdio.h>

#include "data/prepare_cli.h"

static void summary(const prep_stats *s, int n_sources, double sec) {
    long long skipped = 0;
    for (int k = 0; k < SKIP_N; k++)
        if (k != SKIP_EMPTY_DOC)
            skipped += s->skipped[k];
    fprintf(
        stderr,
        "prepare: done: %d sources, %lld documents (%lld val), %lld tokens, %lld train + %lld val shards, "
        "%.1f MB in %.1f s (%.2f MB/s)\n",
        n_sources, s->docs, s->val_docs, s->tokens, s->train_shards, s->val_shards, (double)s->bytes / 1e6,
        sec, sec > 0 ? (double)s->bytes / 1e6 / sec : 0.0);
    fprintf(
        stderr,
        "prepare: skipped %lld records (malformed JSON %lld, missing field %lld, truncated or corrupt stream "
        "%lld, empty input %lld, prompt too long %lld), %lld empty documents, %lld truncated examples, %lld "
        "U+FFFD replacements\n",
        skipped, s->skipped[SKIP_JSON], s->skipped[SKIP_FIELD], s->skipped[SKIP_STREAM],
        s->skipped[SKIP_EMPTY_IN], s->skipped[SKIP_TOO_LONG], s->skipped[SKIP_EMPTY_DOC], s->truncated,
        s->replacements);
}

int prep_finish(int failed, const prep_stats *st, int n_sources, double t0) {
    int code = failed ? 2 : 0, gcode = code;
    MPI_Allreduce(&code, &gcode, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    prep_stats g = *st;
    enum { N = sizeof(prep_stats) / sizeof(long long) };
    MPI_Reduce(st, &g, N, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0 && !gcode)
        summary(&g, n_sources, mt_now() - t0);
    return gcode;
}
