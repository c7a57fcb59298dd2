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
    char zst[200] = "";
    double text = (double)(s->bytes - s->zst_bytes + s->zst_text), rate = sec > 0 ? 1e-6 / sec : 0;
    if (s->zst_bytes) /* the rate of the text too: compressed bytes alone would understate the work */
        snprintf(zst, sizeof zst, "; %.1f MB of text after zstd decompression, %.2f MB/s", text / 1e6,
                 text * rate);
    fprintf(
        stderr,
        "prepare: done: %d sources, %lld documents (%lld val), %lld tokens, %lld train + %lld val shards, "
        "%.1f MB of input files in %.1f s (%.2f MB/s%s)\n",
        n_sources, s->docs, s->val_docs, s->tokens, s->train_shards, s->val_shards, (double)s->bytes / 1e6,
        sec, (double)s->bytes * rate, zst);
    fprintf(
        stderr,
        "prepare: skipped %lld records (malformed JSON %lld, missing field %lld, truncated or corrupt stream "
        "%lld, empty input %lld, prompt too long %lld), %lld empty documents, %lld truncated examples, "
        "%lld U+FFFD replacements, %lld blank lines\n",
        skipped, s->skipped[SKIP_JSON], s->skipped[SKIP_FIELD], s->skipped[SKIP_STREAM],
        s->skipped[SKIP_EMPTY_IN], s->skipped[SKIP_TOO_LONG], s->skipped[SKIP_EMPTY_DOC], s->truncated,
        s->replacements, s->blank_lines);
}

int prep_finish(int code, const prep_stats *st, int n_sources, const char *out_dir, double t0) {
    int gcode = code;
    MPI_Allreduce(&code, &gcode, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    prep_stats g = *st;
    enum { N = sizeof(prep_stats) / sizeof(long long) };
    MPI_Reduce(st, &g, N, MPI_LONG_LONG, MPI_SUM, 0, MPI_COMM_WORLD);
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0 && !gcode)
        summary(&g, n_sources, mt_now() - t0);
    if (rank == 0 && gcode && g.sources_done)
        fprintf(stderr,
                "prepare: note: the shards of the %lld sources that finished are complete and stay in %s "
                "(the unfinished ones were removed)\n",
                g.sources_done, out_dir);
    return gcode;
}
