/* make bench: decoding speed of the CPU backend at batch 1 (bin/generate's loop: a decoding step, the
 * logits to the host, the greedy draw) for the model configs given, with random weights.
 *
 * A decoding step reads every weight once, so its speed is bounded by memory bandwidth: bound = read
 * bandwidth / bytes of weights read per token (every matrix, the head's padded rows included, one row of
 * wte and wpe; the key/value cache read at position p, 2 x n_layer x p x d_model floats, is reported apart).
 * The bandwidth is measured here, in the same process and with the same threads, right before each model's
 * decoding: the best of 5 passes of a vectorized sum over 512 MiB. The machine may be shared: every figure
 * is the best of 3 rounds (a round's decoding figure is the median of its 32 steps), and the 1-minute load
 * average is printed beside it.
 *
 *   build/tests/bench_generate configs/models/gpt2-124m.json ... */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "model/cpu/cpu.h"
#include "model/model.h"
#include "tests/test_model.h"
#include "train/sample.h"

enum { PROMPT = 64, STEPS = 32, FAR = 900, ROUNDS = 3 };

static volatile double sink; /* the sums are stored, so the compiler cannot drop the reads */

static double read_bandwidth(void) {
    size_t n = (size_t)128 << 20; /* floats: 512 MiB */
    float *x = aligned_alloc(64, n * sizeof *x);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(i & 7);
    double best = 0, total = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = omp_get_wtime(), sums[256] = {0};
#pragma omp parallel
        {
            int t = omp_get_thread_num(), nt = omp_get_num_threads();
            size_t lo = n / 16 * t / nt * 16, hi = n / 16 * (t + 1) / nt * 16;
            float acc[16] = {0};
            for (size_t i = lo; i < hi; i += 16)
#pragma omp simd
                for (int j = 0; j < 16; j++)
                    acc[j] += x[i + j];
            for (int j = 0; j < 16; j++)
                sums[t % 256] += acc[j];
        }
        double s = omp_get_wtime() - t0, gbs = (double)n * sizeof *x / s / 1e9;
        best = gbs > best ? gbs : best;
        for (int t = 0; t < 256; t++)
            total += sums[t];
    }
    free(x);
    sink = total;
    return best;
}

/* The 1-minute load average: other processes on the machine bend every figure here. */
static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f && fscanf(f, "%lf", &l) != 1)
        l = -1;
    if (f)
        fclose(f);
    return l;
}

/* Bytes of weights a decoding step reads. */
static double step_bytes(const model *m) {
    const param_table *t = &m->table;
    double floats = 0;
    for (int i = 0; i < t->n; i++) {
        int lookup = i == t->wpe || (i == t->wte && !m->cfg.tie_embeddings);
        floats += lookup ? (double)t->p[i].local_shape[1] : (double)t->p[i].numel;
    }
    return 4 * floats;
}

/* One pass of the matrix-vector products of a token over every matrix of m, by OpenBLAS's sgemv (ours = 0)
 * or the backend's kernel: ms; *bytes gets their size. */
static double matvec_pass(model *m, int ours, const float *x, float *y, double *bytes) {
    const param_table *t = &m->table;
    double t0 = omp_get_wtime();
    *bytes = 0;
    for (int i = 0; i < t->n; i++) {
        const param_info *p = &t->p[i];
        if (p->ndim != 2 || i == t->wpe || (i == t->wte && !m->cfg.tie_embeddings))
            continue;
        const float *w = m->o->host_ptr(m->o, (ops_ptr){m->params, p->offset});
        int n = (int)p->local_shape[0], k = (int)p->local_shape[1];
        if (!ours || !cpu_gemv_rows(n, k, 1.0f, w, k, x, 0.0f, y))
            cblas_sgemv(CblasRowMajor, CblasNoTrans, n, k, 1.0f, w, k, x, 1, 0.0f, y, 1);
        *bytes += 4.0 * n * k;
    }
    return 1e3 * (omp_get_wtime() - t0);
}

/* The best of 10 interleaved passes each way (ms): the comparison least disturbed by a shared machine. */
static void matvec_ms(model *m, double *blas, double *mine, double *bytes) {
    size_t most = (size_t)m->table.padded_vocab + (size_t)m->cfg.d_ff;
    float *x = mt_calloc(most, sizeof *x), *y = mt_calloc(most, sizeof *y);
    *blas = *mine = INFINITY;
    for (int round = 0; round < 10; round++) {
        double a = matvec_pass(m, 0, x, y, bytes), b = matvec_pass(m, 1, x, y, bytes);
        *blas = a < *blas ? a : *blas;
        *mine = b < *mine ? b : *mine;
    }
    free(x);
    free(y);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ms per decoding step (a step, the logits to the host, the greedy draw) after a prefill of n: the median of
 * STEPS steps, the best of ROUNDS rounds (the machine is shared: the best round is the one least disturbed).
 */
static double decode_ms(model *m, sampler *s, float *logits, int n_logits, const int32_t *prompt, int n) {
    static const sample_params GREEDY = {0, 0, 1};
    double best = INFINITY;
    for (int round = 0; round < ROUNDS; round++) {
        double ms[STEPS];
        model_prefill(m, prompt, n);
        model_get_last_logits(m, logits, n_logits);
        int32_t id = sampler_next(s, &GREEDY, logits);
        for (int k = 0; k < STEPS; k++) {
            double t0 = omp_get_wtime();
            model_decode(m, &id);
            model_get_last_logits(m, logits, n_logits);
            id = sampler_next(s, &GREEDY, logits);
            ms[k] = 1e3 * (omp_get_wtime() - t0);
        }
        qsort(ms, STEPS, sizeof *ms, cmp_double);
        best = ms[STEPS / 2] < best ? ms[STEPS / 2] : best;
    }
    return best;
}

static char notes[8][300]; /* printed after the table */
static int n_notes;

static void bench(const char *path, ops *o) {
    model_config cfg = tu_model_config(path);
    model *m = model_create_infer(&cfg, o, 1, cfg.n_ctx, NULL);
    model_init_params(m, 1);
    model_infer_ready(m);
    int n_logits = cfg.loss_vocab;
    float *logits = mt_malloc((size_t)n_logits * sizeof *logits);
    sampler *s = sampler_create(n_logits, 0, NULL);
    int32_t *prompt = mt_malloc(FAR * sizeof *prompt);
    for (int i = 0; i < FAR; i++)
        prompt[i] = (int32_t)((i * 7919) % cfg.loss_vocab);
    double prefill = INFINITY;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = omp_get_wtime();
        model_prefill(m, prompt, PROMPT);
        model_get_last_logits(m, logits, n_logits);
        double t = omp_get_wtime() - t0;
        prefill = t < prefill ? t : prefill;
    }
    double bw = read_bandwidth(), near = decode_ms(m, s, logits, n_logits, prompt, PROMPT);
    double far = decode_ms(m, s, logits, n_logits, prompt, FAR);
    double bytes = step_bytes(m), bound = bw * 1e9 / bytes, tps = 1e3 / near;
    double cache_far = 2.0 * cfg.n_layer * (FAR + STEPS / 2) * cfg.d_model * 4;
    printf("| %s | %.0f | %.1f | %.0f MB | %.1f | %.1f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", cfg.name,
           PROMPT / prefill, bw, bytes / 1e6, tps, bound, tps / bound, near, far,
           1e3 * cache_far / (bw * 1e9), load_average());
    double mb, blas, mine;
    matvec_ms(m, &blas, &mine, &mb);
    snprintf(notes[n_notes++ % 8], sizeof notes[0],
             "%s, the matrix-vector products of a token (%.0f MB): OpenBLAS sgemv %.2f ms (%.1f GB/s), the "
             "backend's cpu_gemv_rows %.2f ms (%.1f GB/s)",
             cfg.name, mb / 1e6, blas, mb / blas / 1e6, mine, mb / mine / 1e6);
    fflush(stdout);
    free(prompt);
    free(logits);
    sampler_free(s);
    model_free(m);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_generate MODEL_CONFIG.json...\n");
        return 2;
    }
    int threads = omp_get_max_threads();
    ops *o = ops_cpu_create(threads);
    const char *policy = getenv("OMP_WAIT_POLICY");
    printf("decoding at batch 1, CPU backend, %d threads, OMP_WAIT_POLICY %s\n\n", threads,
           policy ? policy : "unset (spin, then sleep)");
    printf(
        "| model | prompt tokens/s (%d) | read GB/s | weights per token | new tokens/s | bound (bandwidth / "
        "weights) | ratio | ms/token at %d | ms/token at %d | cache read at %d, ms | load |\n",
        PROMPT, PROMPT, FAR, FAR);
    printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 1; i < argc; i++)
        bench(argv[i], o);
    printf("\n");
    for (int i = 0; i < n_notes && i < 8; i++)
        printf("%s\n", notes[i]);
    printf("load average at the end: %.2f\n", load_average());
    o->destroy(o);
    return 0;
}
