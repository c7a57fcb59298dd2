/* The sampler (train/sample.h), one process:
 *  - selection: select_count and select_mass against a full sort, on random logits with many ties;
 *  - statistics: 100000 draws per setting from fixed logits; the counts against the probabilities that the
 *    definition gives (a full sort, top_k, softmax at the temperature, the nucleus; written out here, not
 *    taken from the sampler), by Pearson's chi-squared test at significance 1e-6 (bins expected below 5
 *    pooled); tokens outside the kept set must never be drawn. A deliberately wrong expectation (another
 *    temperature) must be rejected, which shows the test can fail;
 *  - greedy: temperature 0 and top_k = 1 give the most likely token, the lowest id among ties;
 *  - the same seed gives the same tokens, another seed others; a non-finite logit gives -1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"
#include "train/sample.h"
#include "train/sample_select.h"

enum { DRAWS = 100000 };
#define ALPHA 1e-6

/* ---------------------------------------------------------------- the chi-squared tail */

/* Regularized upper incomplete gamma Q(a, x): series below a + 1, continued fraction above. */
static double gamma_q(double a, double x) {
    if (x <= 0)
        return 1.0;
    double lg = lgamma(a);
    if (x < a + 1) {
        double sum = 1.0 / a, term = sum;
        for (int n = 1; n < 1000 && fabs(term) > 1e-16 * sum; n++) {
            term *= x / (a + n);
            sum += term;
        }
        return 1.0 - sum * exp(-x + a * log(x) - lg);
    }
    double b = x + 1 - a, c = 1e300, d = 1 / b, h = d;
    for (int i = 1; i < 1000; i++) {
        double an = -i * (i - a);
        b += 2;
        d = an * d + b;
        d = fabs(d) < 1e-300 ? 1e-300 : d;
        c = b + an / c;
        c = fabs(c) < 1e-300 ? 1e-300 : c;
        d = 1 / d;
        h *= d * c;
        if (fabs(d * c - 1) < 1e-16)
            break;
    }
    return exp(-x + a * log(x) - lg) * h;
}

/* Pearson's test of counts against probabilities (bins expected below 5 pooled): the p-value; *stray gets
 * the draws of tokens whose probability is 0. */
static double chi2_pvalue(const long *count, const double *prob, int V, long draws, long *stray, int *df) {
    double chi2 = 0, pool_e = 0;
    long pool_o = 0;
    int bins = 0;
    *stray = 0;
    for (int i = 0; i < V; i++) {
        double e = prob[i] * draws;
        if (prob[i] == 0) {
            *stray += count[i];
        } else if (e < 5) {
            pool_e += e;
            pool_o += count[i];
        } else {
            chi2 += (count[i] - e) * (count[i] - e) / e;
            bins++;
        }
    }
    if (pool_e > 0) {
        chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
        bins++;
    }
    *df = bins - 1;
    return *df > 0 ? gamma_q(*df / 2.0, chi2 / 2.0) : 1.0;
}

/* ---------------------------------------------------------------- the definition */

static const float *sort_logits;
static int by_order(const void *x, const void *y) {
    int a = *(const int *)x, b = *(const int *)y;
    if (sort_logits[a] != sort_logits[b])
        return sort_logits[a] > sort_logits[b] ? -1 : 1;
    return a < b ? -1 : a > b;
}

/* prob[V]: the distribution a setting draws from. */
static void expected(const float *logits, int V, const sample_params *p, double *prob) {
    int *idx = malloc((size_t)V * sizeof *idx);
    for (int i = 0; i < V; i++)
        idx[i] = i;
    sort_logits = logits;
    qsort(idx, (size_t)V, sizeof *idx, by_order);
    int keep = p->top_k > 0 && p->top_k < V ? p->top_k : V;
    double z = 0, top = logits[idx[0]];
    memset(prob, 0, (size_t)V * sizeof *prob);
    for (int r = 0; r < keep; r++)
        z += prob[idx[r]] = exp((logits[idx[r]] - top) / p->temperature);
    double mass = 0, kept = 0;
    for (int r = 0; r < keep; r++) {
        if (mass >= p->top_p) {
            prob[idx[r]] = 0; /* beyond the nucleus: the mass before it already reaches top_p */
            continue;
        }
        mass += prob[idx[r]] / z;
        kept += prob[idx[r]];
    }
    for (int i = 0; i < V; i++)
        prob[i] /= kept;
    free(idx);
}

/* ---------------------------------------------------------------- checks */

static void check_selection(void) {
    enum { N = 3000 };
    sample_cand *c = malloc(N * sizeof *c), *ref = malloc(N * sizeof *ref);
    float *logits = malloc(N * sizeof *logits);
    int ok_count = 1, ok_mass = 1;
    for (int trial = 0; trial < 40; trial++) {
        int n = 1 + tu_int(N);
        for (int i = 0; i < n; i++) {
            logits[i] = trial % 2 ? (float)tu_int(7) : (float)tu_normal(); /* odd trials: ties everywhere */
            c[i] = (sample_cand){.w = tu_uniform() / n, .logit = logits[i], .id = i};
        }
        int *idx = malloc((size_t)n * sizeof *idx);
        for (int i = 0; i < n; i++)
            idx[i] = i;
        sort_logits = logits;
        qsort(idx, (size_t)n, sizeof *idx, by_order);
        for (int i = 0; i < n; i++)
            ref[i] = c[idx[i]];
        int k = 1 + tu_int(n);
        sample_cand *work = malloc((size_t)n * sizeof *work);
        memcpy(work, c, (size_t)n * sizeof *work);
        select_count(work, n, k);
        for (int i = 0; i < k; i++)
            ok_count &= work[i].id == ref[i].id;
        double target = tu_uniform() * 0.6, mass = 0;
        int want = 0;
        while (want < n && mass < target)
            mass += ref[want++].w;
        memcpy(work, c, (size_t)n * sizeof *work);
        int got = select_mass(work, n, target);
        ok_mass &= got == want;
        for (int i = 0; i < got && i < want; i++)
            ok_mass &= work[i].id == ref[i].id;
        free(work);
        free(idx);
    }
    tu_check(ok_count, "select_count = the first k of a full sort (40 arrays, ties included)", "differs");
    tu_check(ok_mass, "select_mass = the shortest sorted prefix reaching the mass (40 arrays)", "differs");
    free(c);
    free(ref);
    free(logits);
}

static void draw_counts(sampler *s, const sample_params *p, const float *logits, int V, long *count) {
    memset(count, 0, (size_t)V * sizeof *count);
    for (long d = 0; d < DRAWS; d++) {
        int32_t id = sampler_next(s, p, logits);
        CHECK(id >= 0 && id < V, "drew %d", id);
        count[id]++;
    }
}

static void check_statistics(void) {
    enum { V = 120 };
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)(2.0 * tu_normal());
    logits[17] = logits[42]; /* a tie */
    static const struct {
        const char *name;
        sample_params p;
    } settings[] = {
        {"temperature 1", {1.0, 0, 1.0}},
        {"temperature 0.7", {0.7, 0, 1.0}},
        {"temperature 1.5, top_k 20", {1.5, 20, 1.0}},
        {"temperature 0.9, top_p 0.8", {0.9, 0, 0.8}},
        {"temperature 1.2, top_k 40, top_p 0.6", {1.2, 40, 0.6}},
        {"temperature 1, top_p 0.999", {1.0, 0, 0.999}},
    };
    sampler *s = sampler_create(V, 0, NULL);
    sampler_seed(s, tu_next());
    long count[V];
    double prob[V];
    for (size_t k = 0; k < sizeof settings / sizeof *settings; k++) {
        draw_counts(s, &settings[k].p, logits, V, count);
        expected(logits, V, &settings[k].p, prob);
        long stray;
        int df;
        double pv = chi2_pvalue(count, prob, V, DRAWS, &stray, &df);
        char name[160];
        snprintf(name, sizeof name, "chi2[%s]", settings[k].name);
        tu_check(pv >= ALPHA && stray == 0, name, "p-value %.3g < %g or %ld draws of excluded tokens", pv,
                 ALPHA, stray);
        printf("#   %s: p-value %.3g (significance %g, %d degrees of freedom, %d draws)\n", name, pv, ALPHA,
               df, DRAWS);
        if (k == 1) { /* power: the temperature 0.7 counts against the temperature 1 distribution */
            sample_params wrong = {1.0, 0, 1.0};
            expected(logits, V, &wrong, prob);
            pv = chi2_pvalue(count, prob, V, DRAWS, &stray, &df);
            tu_check(pv < ALPHA, "chi2 rejects temperature 0.7 draws as temperature 1", "p-value %.3g", pv);
        }
    }
    sampler_free(s);
}

static void check_greedy(void) {
    enum { V = 500 };
    float logits[V];
    sampler *s = sampler_create(V, 0, NULL);
    sampler_seed(s, 7);
    int ok = 1;
    for (int trial = 0; trial < 200; trial++) {
        int best = 0;
        for (int i = 0; i < V; i++) {
            logits[i] = (float)tu_normal();
            best = logits[i] > logits[best] ? i : best;
        }
        sample_params g = {0, 0, 1}, k1 = {1.3, 1, 0.9};
        ok &= sampler_next(s, &g, logits) == best && sampler_next(s, &k1, logits) == best;
    }
    tu_check(ok, "greedy and top_k 1 give the most likely token (200 vectors)", "differs");
    for (int i = 0; i < V; i++)
        logits[i] = 0;
    logits[300] = logits[123] = 4;
    sample_params g = {0, 0, 1};
    int32_t id = sampler_next(s, &g, logits);
    tu_check(id == 123, "greedy tie goes to the lowest id", "got %d", id);
    logits[77] = NAN;
    sample_params t = {1, 0, 1};
    tu_check(sampler_next(s, &g, logits) == -1 && sampler_next(s, &t, logits) == -1,
             "a NaN logit gives -1 (greedy and sampling)", "accepted");
    sampler_free(s);
}

static void check_seed(void) {
    enum { V = 1000, N = 200 };
    float logits[V];
    for (int i = 0; i < V; i++)
        logits[i] = (float)tu_normal();
    sampler *s = sampler_create(V, 0, NULL);
    static const sample_params P[3] = {{1, 0, 1}, {0.8, 0, 0.95}, {1, 50, 1}};
    for (int k = 0; k < 3; k++) {
        int32_t a[N], b[N], c[N];
        sampler_seed(s, 1234);
        for (int i = 0; i < N; i++)
            a[i] = sampler_next(s, &P[k], logits);
        sampler_seed(s, 1234);
        for (int i = 0; i < N; i++)
            b[i] = sampler_next(s, &P[k], logits);
        sampler_seed(s, 1235);
        for (int i = 0; i < N; i++)
            c[i] = sampler_next(s, &P[k], logits);
        char name[80];
        snprintf(name, sizeof name, "seed: same seed same %d tokens, another seed others (setting %d)", N, k);
        tu_check(!memcmp(a, b, sizeof a) && memcmp(a, c, sizeof a), name, "same %d, other %d",
                 !memcmp(a, b, sizeof a), !memcmp(a, c, sizeof a));
    }
    sampler_free(s);
}

int main(void) {
    tu_srand(tu_seed("test_sample"));
    check_selection();
    check_statistics();
    check_greedy();
    check_seed();
    return tu_exit();
}
