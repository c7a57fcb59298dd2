/* Helpers for the C test programs: a printed seed, a reproducible RNG, relative-norm comparison, host
 * scratch arrays, and the report protocol that tests/run.sh counts: one line "ok NAME" or "FAIL NAME: why"
 * per check, and a non-zero exit status when anything failed. */
#ifndef MT_TESTUTIL_H
#define MT_TESTUTIL_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static int tu_failures;

/* The seed comes from MT_TEST_SEED when set, else from the clock; it is always printed. */
static inline uint64_t tu_seed(const char *test) {
    const char *env = getenv("MT_TEST_SEED");
    uint64_t s = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) ^ ((uint64_t)clock() << 20);
    printf("# %s: seed %llu (rerun with MT_TEST_SEED=%llu)\n", test, (unsigned long long)s,
           (unsigned long long)s);
    return s;
}

static uint64_t tu_state;
static inline void tu_srand(uint64_t s) { tu_state = s * 0x9e3779b97f4a7c15ULL + 1; }
static inline uint64_t tu_next(void) {
    uint64_t x = (tu_state += 0x9e3779b97f4a7c15ULL);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}
static inline double tu_uniform(void) { return (double)(tu_next() >> 11) / 9007199254740992.0; }
static inline double tu_normal(void) {
    double u1 = tu_uniform() + 1e-300, u2 = tu_uniform();
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}
static inline int tu_int(int n) { return (int)(tu_next() % (uint64_t)n); }
static inline void tu_fill(float *x, size_t n, double std) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(std * tu_normal());
}

/* ||a - b|| / ||b|| in double; NaN anywhere gives NaN (which never passes). */
static inline double tu_rel_err_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
static inline double tu_rel_err_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static inline void tu_check(int ok, const char *name, const char *fmt, ...) {
    if (ok) {
        printf("ok %s\n", name);
        return;
    }
    tu_failures++;
    printf("FAIL %s: ", name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
}

/* A relative error check that NaN can never pass. */
static inline void tu_check_rel(double err, double tol, const char *name) {
    tu_check(err <= tol, name, "relative error %.3e > %.1e", err, tol);
    if (err <= tol)
        printf("#   %s: relative error %.3e (tolerance %.1e)\n", name, err, tol);
}

/* A check name formatted like printf, in one of 16 rotating buffers (valid for the next 15 calls). */
static inline const char *tu_name(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline const char *tu_name(const char *fmt, ...) {
    static char buf[16][160];
    static int k;
    k = (k + 1) % 16;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf[k], sizeof buf[k], fmt, ap);
    va_end(ap);
    return buf[k];
}

/* Zeroed host scratch that lives until tu_host_release (a test group's arrays, freed together). */
enum { TU_MAX_HOST = 4096 };
static void *tu_host_keep[TU_MAX_HOST];
static int tu_host_n;
static inline void *tu_host(size_t bytes) {
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p || tu_host_n == TU_MAX_HOST) {
        fprintf(stderr, "out of host scratch\n");
        exit(2);
    }
    tu_host_keep[tu_host_n++] = p;
    return p;
}
static inline void tu_host_release(void) {
    while (tu_host_n)
        free(tu_host_keep[--tu_host_n]);
}
/* n values drawn from N(0, std^2), in host scratch. */
static inline float *tu_host_normal(size_t n, double std) {
    float *x = (float *)tu_host(n * sizeof *x);
    tu_fill(x, n, std);
    return x;
}

static inline int tu_exit(void) {
    fflush(stdout);
    return tu_failures ? 1 : 0;
}

#endif
