/* The loader (DESIGN 6): over one epoch every window is seen exactly once across all data-parallel ranks,
 * for several rank counts; the order is a function of the seed; a restored (epoch, cursor) continues with
 * the identical batches; fine-tuning weights line up with the response tokens of known examples, or with
 * every token of them (data.loss_on = "all"). */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/loader.h"
#include "data/shard_writer.h"
#include "tests/testutil.h"

enum { T = 12, N_WIN = 96, G = 8, V = 60000 };

static char dir[] = "/tmp/mt_loader_XXXXXX";
static char *paths[3];

/* Three shards whose concatenation is N_WIN windows (plus a tail) in which every token of window w is w,
 * cut at boundaries that fall inside windows. */
static void write_stream_shards(void) {
    long total = (long)N_WIN * (T + 1) + 5, cuts[4] = {0, 200, 777, total};
    for (int s = 0; s < 3; s++) {
        char path[256];
        snprintf(path, sizeof path, "%s/stream_%d.h5", dir, s);
        paths[s] = mt_strdup(path);
        mt_err err;
        shard_writer *w = shard_writer_open(path, "test", V, 0, "test", 0, &err);
        CHECK(w, "%s", err.msg);
        for (long i = cuts[s]; i < cuts[s + 1]; i++) {
            int32_t t = (int32_t)(i / (T + 1) % V);
            CHECK(!shard_writer_append(w, &t, NULL, 1, &err), "%s", err.msg);
        }
        shard_writer_end_doc(w, NULL);
        CHECK(!shard_writer_close(w, &err), "%s", err.msg);
    }
}

static loader open_stream(uint64_t seed) {
    loader l;
    mt_err err;
    CHECK(!loader_open(&l, LOADER_STREAM, paths, 3, T, seed, V, V, &err), "%s", err.msg);
    return l;
}

/* Window ids of one global batch as seen by all ranks (rank-major), checking window contents. */
static int batch_ids(loader *l, int dp, long *ids) {
    int32_t tokens[G * (T + 1)];
    float weights[G * T];
    loader_state st = loader_get_state(l);
    int per = G / dp, ok = 1;
    for (int r = 0; r < dp; r++) {
        loader_set_state(l, st);
        mt_err err;
        CHECK(!loader_global_batch(l, G, r, dp, tokens, weights, &err), "%s", err.msg);
        for (int k = 0; k < per; k++) {
            ids[r * per + k] = tokens[k * (T + 1)];
            for (int t = 0; t <= T; t++)
                ok &= tokens[k * (T + 1) + t] == tokens[k * (T + 1)];
            for (int t = 0; t < T; t++)
                ok &= weights[k * T + t] == 1.0f;
        }
    }
    return ok;
}

static void epoch_coverage(void) {
    int dps[] = {1, 2, 4, 8};
    for (int i = 0; i < 4; i++) {
        loader l = open_stream(7);
        int seen[N_WIN] = {0}, ok = l.n_seq == N_WIN;
        long ids[G];
        for (int step = 0; step < N_WIN / G; step++) {
            ok &= batch_ids(&l, dps[i], ids);
            for (int k = 0; k < G; k++)
                if (ids[k] >= 0 && ids[k] < N_WIN)
                    seen[ids[k]]++;
        }
        for (int w = 0; w < N_WIN; w++)
            ok &= seen[w] == 1;
        ok &= l.epoch == 1 && l.cursor == 0;
        char name[64];
        snprintf(name, sizeof name, "stream.one epoch, each window once, dp=%d", dps[i]);
        tu_check(ok, name, "windows missing, repeated or corrupted");
        loader_close(&l);
    }
}

static void order(void) {
    loader a = open_stream(7), b = open_stream(7), c = open_stream(8);
    long ia[G], ib[G], ic[G];
    int same = 1, differs_seed = 0, differs_epoch = 0;
    long first[G];
    for (int step = 0; step < 2 * N_WIN / G; step++) {
        batch_ids(&a, 1, ia);
        batch_ids(&b, 1, ib);
        batch_ids(&c, 1, ic);
        same &= !memcmp(ia, ib, sizeof ia);
        differs_seed |= memcmp(ia, ic, sizeof ia) != 0;
        if (step == 0)
            memcpy(first, ia, sizeof ia);
        if (step == N_WIN / G)
            differs_epoch = memcmp(first, ia, sizeof ia) != 0;
    }
    tu_check(same, "stream.same seed, same order", "orders differ");
    tu_check(differs_seed, "stream.other seed, other order", "seed 8 gave the order of seed 7");
    tu_check(differs_epoch, "stream.next epoch, new permutation", "epoch 1 repeats epoch 0");
    loader_close(&a);
    loader_close(&b);
    loader_close(&c);
}

static void resume(void) {
    loader a = open_stream(3);
    long ids[G], cont[5][G];
    for (int step = 0; step < 17; step++)
        batch_ids(&a, 2, ids); /* crosses an epoch boundary later */
    loader_state st = loader_get_state(&a);
    for (int k = 0; k < 5; k++)
        batch_ids(&a, 2, cont[k]);
    loader b = open_stream(3);
    loader_set_state(&b, st);
    int ok = 1;
    for (int k = 0; k < 5; k++) {
        batch_ids(&b, 2, ids);
        ok &= !memcmp(ids, cont[k], sizeof ids);
    }
    tu_check(ok, "stream.restored state continues identically", "batches differ after restore");
    loader_close(&a);
    loader_close(&b);
}

/* Example d: prompt of 3 + d % 4 tokens (mask 0), response of 2 + d % 5 tokens (mask 1), then EOT
 * (mask 1). Example 5 has a prompt longer than T + 1, so it has no counted token and is dropped. */
/* Twelve examples: prompt tokens 100 + d (masked), response tokens 500 + d, EOT; example 5's prompt alone
 * is longer than T + 1. */
static void write_examples(const char *path) {
    mt_err err;
    shard_writer *w = shard_writer_open(path, "test", 1000, 0, "test", 1, &err);
    CHECK(w, "%s", err.msg);
    for (int d = 0; d < 12; d++) {
        int prompt = d == 5 ? T + 4 : 3 + d % 4, resp = 2 + d % 5;
        for (int i = 0; i < prompt + resp + 1; i++) {
            int32_t t = i < prompt ? 100 + d : i < prompt + resp ? 500 + d : 0;
            uint8_t m = i >= prompt;
            CHECK(!shard_writer_append(w, &t, &m, 1, &err), "%s", err.msg);
        }
        shard_writer_end_doc(w, NULL);
    }
    CHECK(!shard_writer_close(w, &err), "%s", err.msg);
}

/* examples: the prediction at t is of token t+1, counted iff that is a response token or the EOT, and
 * example 5 (no counted token within T + 1) is dropped; examples_all: every prediction of a real token
 * counts, so all twelve are kept. Padding is EOT and never counts. */
static void examples(const char *path, loader_kind kind, const char *name) {
    int all = kind == LOADER_EXAMPLES_ALL;
    char *p[1] = {(char *)path}, check[64];
    mt_err err;
    loader l;
    CHECK(!loader_open(&l, kind, p, 1, T, 1, 1000, 1000, &err), "%s", err.msg);
    snprintf(check, sizeof check, "%s.dropped without counted tokens", name);
    tu_check(l.n_seq == 12 - !all && l.dropped == !all, check, "%ld kept, %ld dropped", l.n_seq, l.dropped);
    int ok = 1;
    int32_t tokens[T + 1];
    float weights[T];
    for (long s = 0; s < l.n_seq; s++) {
        CHECK(!loader_sequence(&l, s, tokens, weights, &err), "%s", err.msg);
        int d = tokens[0] - 100, prompt = d == 5 ? T + 4 : 3 + d % 4, len = prompt + 2 + d % 5 + 1;
        for (int t = 0; t < T; t++) {
            int want = t + 1 < len && (all || t + 1 >= prompt);
            ok &= weights[t] == (float)want;
        }
        for (int t = len; t <= T; t++)
            ok &= tokens[t] == 0; /* padding */
    }
    snprintf(check, sizeof check, "%s.weights %s", name,
             all ? "on every real token" : "on response tokens and EOT only");
    tu_check(ok, check, "a weight is misplaced");
    loader_close(&l);
}

int main(void) {
    printf("# test_loader: deterministic inputs (no seed)\n");
    CHECK(mkdtemp(dir), "mkdtemp");
    write_stream_shards();
    epoch_coverage();
    order();
    resume();
    char path[256];
    snprintf(path, sizeof path, "%s/examples.h5", dir);
    write_examples(path);
    examples(path, LOADER_EXAMPLES, "examples");
    examples(path, LOADER_EXAMPLES_ALL, "examples_all");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd))
        fprintf(stderr, "could not remove %s\n", dir);
    for (int i = 0; i < 3; i++)
        free(paths[i]);
    return tu_exit();
}
