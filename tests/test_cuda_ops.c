/* Op parity of the CUDA backend (run on the SIMT emulator, tests/simt) against the CPU backend.
 *
 * Every op of model/ops.h runs on both backends from the same random inputs (seed printed;
 * MT_TEST_SEED reruns it). Inputs the CUDA op takes in the working precision (ACT = bf16) are rounded to
 * bf16 first and the CPU gets the same rounded values, so differences come from the CUDA op itself.
 * Outputs an op overwrites start as NaN, outputs it accumulates into start from random contents, and every
 * array sits at an odd element offset between guard bands that must survive. Each CUDA run happens twice,
 * under the emulator's ascending and descending thread schedules, and the two results must agree bit for
 * bit (a missing barrier or a scheduling-dependent reduction shows up there). Comparison: relative L2 norm
 * against the CPU result, with the per-op tolerances of the table below; NaN or Inf never passes. */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/cuda/cuda.h"
#include "model/ops.h"
#include "tests/testutil.h"

#ifdef MT_SIMT
/* The emulator's schedule switch (tests/simt/simt.h, extern "C"). */
void simt_set_schedule(int schedule);
#else
/* On a GPU (make CUDA=1 test-gpu) the two CUDA runs are plain reruns: the kernels use no atomics, so they
 * must agree bit for bit as well. */
static void simt_set_schedule(int schedule) { (void)schedule; }
#endif

/* Tolerances (relative L2 norm against the fp32 CPU backend).
 *  EXACT  0      data movement, max, and casts: the same bf16/fp32 values must come out.
 *  SAME   1e-6   fp32 arithmetic done in the same order as the CPU (embed/pos gradients, adamw, ce_loss):
 *                only contraction into FMA or a libm ulp can differ.
 *  F32    1e-5   fp32 results of fp32 reductions in another order (matmul into fp32, bias_grad, dgamma,
 *                dbeta, layernorm statistics, sumexp): a few ulps over tens of terms.
 *  DBL    1e-12  double-accumulated dot products (sumsq, dot): exact products, different summation order.
 *  BF     4e-3   one rounding of an fp32 result to bf16 (relative error <= 2^-9, RMS ~2^-9/sqrt(3) = 1.1e-3,
 *                so 4e-3 leaves room for the fp32 differences underneath and is still far below a bug).
 *  BF2    8e-3   two bf16 roundings in series: attention out = round(round(P) V), and
 *                dV = round(round(P)^T dO).
 *  BF3    1e-2   attention dQ, dK: round(P), then dS = round(P (dP - rowsum(P dP)) scale), whose
 *                difference cancels (amplifying the rounding of P), then the output rounding; measured
 *                2.0e-3 to 2.6e-3 over 8 seeds. */
#define EXACT 0.0
#define SAME 1e-6
#define F32T 1e-5
#define DBL 1e-12
#define BF 4e-3
#define BF2 8e-3
#define BF3 1e-2

static ops *CPU, *GPU;

/* ---------------------------------------------------------------- host helpers */

static float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) == 0x7f800000u)
        return x; /* Inf, NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

/* random values already representable in bf16 */
static float *hact(size_t n, double std) {
    float *x = tu_host_normal(n, std);
    for (size_t i = 0; i < n; i++)
        x[i] = bf16_round(x[i]);
    return x;
}
static int32_t *hints(size_t n, int lo, int hi) {
    int32_t *x = tu_host(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = lo + tu_int(hi - lo);
    return x;
}

/* ---------------------------------------------------------------- the parity engine */

enum { IN, OUT, ACC }; /* role: input; overwritten (starts NaN); accumulated into / in place */
enum { OFF = 3, GUARD = 5, MAX_ARGS = 16 };
#define FSENT (-12288.0f) /* exact in bf16 */
#define ISENT (-777)

typedef struct {
    const char *name;
    ops_dtype t; /* OPS_F32, OPS_I32 or OPS_ACT */
    size_t n;
    int role;
    const float *h;    /* IN / ACC contents (bf16-representable for ACT) */
    const int32_t *hi; /* I32 contents */
    double tol;        /* OUT / ACC: tolerance; < 0: not compared (e.g. scratch) */
    int cols, ld;      /* ld > 0: a strided block; element j is written iff j % ld < cols, and the others
                          must keep their initial contents */
    float *res[3];     /* CPU, CUDA schedule 0, CUDA schedule 1 */
} arg;

#define AF(NAME, T, N, ROLE, H, TOL)                                                                         \
    { .name = NAME, .t = T, .n = N, .role = ROLE, .h = H, .tol = TOL }
#define AI(NAME, N, HI)                                                                                      \
    { .name = NAME, .t = OPS_I32, .n = N, .role = IN, .hi = HI }
#define NA(a) ((int)(sizeof(a) / sizeof(a[0])))

typedef void (*call_fn)(ops *o, ops_ptr *p, void *ctx);
static double ret[3]; /* scalar results of sumsq / dot, per run */
static int side;

static void run_side(int s, arg *a, int na, call_fn fn, void *ctx, const char *name) {
    ops *o = s == 0 ? CPU : GPU;
    side = s;
    if (s > 0)
        simt_set_schedule(s - 1);
    ops_buf *b[MAX_ARGS];
    ops_ptr p[MAX_ARGS];
    for (int i = 0; i < na; i++) {
        size_t n = a[i].n, tot = OFF + n + GUARD;
        b[i] = o->alloc(o, tot, a[i].t);
        p[i] = (ops_ptr){b[i], OFF};
        if (a[i].t == OPS_I32) {
            int32_t *h = tu_host(tot * sizeof *h);
            for (size_t j = 0; j < tot; j++)
                h[j] = ISENT;
            if (a[i].hi)
                memcpy(h + OFF, a[i].hi, n * sizeof *h);
            o->from_host(o, (ops_ptr){b[i], 0}, h, tot);
        } else {
            float *h = tu_host(tot * sizeof *h);
            for (size_t j = 0; j < tot; j++)
                h[j] = FSENT;
            for (size_t j = 0; j < n; j++)
                h[OFF + j] = a[i].role == OUT ? NAN : a[i].h[j];
            o->from_host(o, (ops_ptr){b[i], 0}, h, tot);
        }
    }
    fn(o, p, ctx);
    int bad_guard = 0;
    for (int i = 0; i < na; i++) {
        size_t n = a[i].n, tot = OFF + n + GUARD;
        if (a[i].t == OPS_I32) {
            int32_t *h = tu_host(tot * sizeof *h);
            o->to_host(o, h, (ops_ptr){b[i], 0}, tot);
            for (size_t j = 0; j < tot; j++)
                if (j < OFF || j >= OFF + n)
                    bad_guard += h[j] != ISENT;
        } else {
            float *h = tu_host(tot * sizeof *h);
            o->to_host(o, h, (ops_ptr){b[i], 0}, tot);
            for (size_t j = 0; j < tot; j++)
                if (j < OFF || j >= OFF + n)
                    bad_guard += h[j] != FSENT;
            a[i].res[s] = h + OFF;
        }
        o->free(o, b[i]);
    }
    if (bad_guard)
        tu_check(0, tu_name("%s.guards.%s", name, s == 0 ? "cpu" : "cuda"),
                 "%d elements outside the arrays written", bad_guard);
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return 0;
    return 1;
}

/* Runs the case on the CPU and twice on CUDA, then checks every compared output. */
static void run_case(const char *name_in, arg *a, int na, call_fn fn, void *ctx) {
    char name[160];
    snprintf(name, sizeof name, "%s", name_in);
    for (int s = 0; s < 3; s++)
        run_side(s, a, na, fn, ctx, name);
    int same = 1;
    for (int i = 0; i < na; i++) {
        if (a[i].role == IN || a[i].t == OPS_I32)
            continue;
        size_t n = a[i].n;
        same &= memcmp(a[i].res[1], a[i].res[2], n * sizeof(float)) == 0;
        if (a[i].tol < 0)
            continue;
        const char *cn = tu_name("%s.%s", name, a[i].name);
        /* split written elements from untouched padding */
        float *g = tu_host(n * sizeof *g), *c = tu_host(n * sizeof *c);
        size_t m = 0, pad_bad = 0;
        for (size_t j = 0; j < n; j++) {
            if (a[i].ld > 0 && (int)(j % (size_t)a[i].ld) >= a[i].cols) {
                for (int s = 0; s < 3; s++) {
                    float v = a[i].res[s][j];
                    pad_bad += a[i].role == OUT ? !isnan(v) : memcmp(&v, &a[i].h[j], 4) != 0;
                }
                continue;
            }
            g[m] = a[i].res[1][j];
            c[m++] = a[i].res[0][j];
        }
        if (pad_bad) {
            tu_check(0, cn, "%zu padding elements (outside the block's columns) changed", pad_bad);
            continue;
        }
        if (!all_finite(g, m)) {
            tu_check(0, cn, "NaN or Inf in the CUDA result");
            continue;
        }
        tu_check_rel(tu_rel_err_ff(g, c, m), a[i].tol, cn);
    }
    tu_check(same, tu_name("%s.schedules", name), "results differ between emulator schedules 0 and 1");
}

/* ---------------------------------------------------------------- memory */

static void test_memory(void) {
    ops *o = GPU;
    tu_check(o->act_dtype == OPS_BF16 && !strcmp(o->name, "cuda"), "mem.identity", "name %s, act_dtype %d",
             o->name, (int)o->act_dtype);
    enum { N = 1001 };
    ops_buf *bf = o->alloc(o, N, OPS_F32), *ba = o->alloc(o, N, OPS_ACT), *bi = o->alloc(o, N, OPS_I32);
    ops_buf *ba2 = o->alloc(o, N, OPS_BF16);
    float *h = tu_host(N * sizeof *h);
    int32_t *hi = tu_host(N * sizeof *hi);
    int zero = 1;
    o->to_host(o, h, (ops_ptr){bf, 0}, N);
    for (int i = 0; i < N; i++)
        zero &= h[i] == 0.0f && !signbit(h[i]);
    o->to_host(o, h, (ops_ptr){ba, 0}, N);
    for (int i = 0; i < N; i++)
        zero &= h[i] == 0.0f && !signbit(h[i]);
    o->to_host(o, hi, (ops_ptr){bi, 0}, N);
    for (int i = 0; i < N; i++)
        zero &= hi[i] == 0;
    tu_check(zero, "mem.alloc_zero", "fresh buffers are not zero-filled");

    tu_check(o->dtype(o, (ops_ptr){bf, 0}) == OPS_F32 && o->dtype(o, (ops_ptr){ba, 7}) == OPS_BF16 &&
                 o->dtype(o, (ops_ptr){ba2, 0}) == OPS_BF16 && o->dtype(o, (ops_ptr){bi, 0}) == OPS_I32,
             "mem.dtype", "storage dtypes wrong");
    char *d0 = o->device_ptr(o, (ops_ptr){ba, 0}), *d5 = o->device_ptr(o, (ops_ptr){ba, 5});
    char *f0 = o->device_ptr(o, (ops_ptr){bf, 0}), *f5 = o->device_ptr(o, (ops_ptr){bf, 5});
    tu_check(o->host_ptr(o, (ops_ptr){bf, 0}) == NULL && d0 && d5 - d0 == 10 && f5 - f0 == 20 && o->stream(o),
             "mem.pointers", "host_ptr must be NULL, device_ptr offsets 2/4 bytes per element, stream set");

    /* round trips at offsets: f32 and i32 exact; act rounds to nearest even */
    float *x = tu_host_normal(300, 3), *back = tu_host(300 * sizeof *back);
    x[0] = 1.00390625f; /* halfway 1 + 2^-8: ties to even -> 1 */
    x[1] = 1.01171875f; /* halfway 1 + 3 * 2^-8: ties to even -> 1 + 2^-6 */
    x[2] = -0.0f;
    x[3] = INFINITY;
    int ok = 1;
    o->from_host(o, (ops_ptr){bf, 17}, x, 300);
    o->to_host(o, back, (ops_ptr){bf, 17}, 300);
    ok &= !memcmp(back, x, 300 * sizeof *x);
    tu_check(ok, "mem.roundtrip_f32", "f32 data read back differs");
    o->from_host(o, (ops_ptr){ba, 17}, x, 300);
    o->to_host(o, back, (ops_ptr){ba, 17}, 300);
    ok = back[0] == 1.0f && back[1] == 1.015625f && signbit(back[2]) && isinf(back[3]);
    for (int i = 0; i < 300; i++)
        ok &= !memcmp(&back[i], &(float){bf16_round(x[i])}, 4);
    tu_check(ok, "mem.roundtrip_act", "bf16 storage is not round-to-nearest-even of the host floats");
    int32_t *ids = hints(40, -100000, 100000), *idb = tu_host(40 * sizeof *idb);
    o->from_host(o, (ops_ptr){bi, 11}, ids, 40);
    o->to_host(o, idb, (ops_ptr){bi, 11}, 40);
    tu_check(!memcmp(ids, idb, 40 * sizeof *ids), "mem.roundtrip_i32", "i32 data read back differs");

    /* zero and copy in the middle of buffers, each dtype */
    float *all = tu_host(N * sizeof *all), *want = tu_host(N * sizeof *want);
    float *y = hact(N, 1);
    o->from_host(o, (ops_ptr){ba, 0}, y, N);
    o->from_host(o, (ops_ptr){ba2, 0}, y, N);
    o->zero(o, (ops_ptr){ba, 40}, 61);
    o->copy(o, (ops_ptr){ba2, 500}, (ops_ptr){ba, 30}, 101);
    memcpy(want, y, N * sizeof *y);
    memcpy(want + 500, y + 30, 101 * sizeof *y);
    for (int i = 0; i < 61; i++)
        want[500 + 10 + i] = 0.0f;
    o->to_host(o, all, (ops_ptr){ba2, 0}, N);
    ok = !memcmp(all, want, N * sizeof *all);
    float *yf = tu_host_normal(N, 1);
    o->from_host(o, (ops_ptr){bf, 0}, yf, N);
    o->zero(o, (ops_ptr){bf, 3}, 5);
    o->copy(o, (ops_ptr){bf, 900}, (ops_ptr){bf, 0}, 20);
    memcpy(want, yf, N * sizeof *yf);
    for (int i = 3; i < 8; i++)
        want[i] = 0.0f;
    memcpy(want + 900, want, 20 * sizeof *want);
    o->to_host(o, all, (ops_ptr){bf, 0}, N);
    ok &= !memcmp(all, want, N * sizeof *all);
    o->zero(o, (ops_ptr){bi, 11}, 10);
    o->to_host(o, idb, (ops_ptr){bi, 11}, 40);
    for (int i = 0; i < 10; i++)
        ok &= idb[i] == 0;
    ok &= !memcmp(idb + 10, ids + 10, 30 * sizeof *ids);
    tu_check(ok, "mem.zero_copy", "zero / copy at offsets wrong (bf16, f32, i32)");
    o->free(o, bf);
    o->free(o, ba);
    o->free(o, ba2);
    o->free(o, bi);
    tu_host_release();
}

/* cast: F32 -> ACT rounds to nearest even, ACT -> F32 is exact; both against the host rounding */
static void call_cast(ops *o, ops_ptr *p, void *ctx) {
    size_t n = *(size_t *)ctx;
    if (o == CPU) {
        /* the CPU reference: the host rounding of the same input */
        float *h = tu_host(n * sizeof *h);
        o->to_host(o, h, p[0], n);
        for (size_t i = 0; i < n; i++)
            h[i] = bf16_round(h[i]);
        o->from_host(o, p[1], h, n);
        o->to_host(o, h, p[2], n);
        o->from_host(o, p[3], h, n);
        return;
    }
    o->cast(o, p[1], p[0], n);
    o->cast(o, p[3], p[2], n);
}

static void test_cast(void) {
    size_t n = 1037;
    arg a[] = {
        AF("src_f32", OPS_F32, n, IN, tu_host_normal(n, 5), 0),
        AF("to_act", OPS_ACT, n, OUT, NULL, EXACT),
        AF("src_act", OPS_ACT, n, IN, hact(n, 5), 0),
        AF("to_f32", OPS_F32, n, OUT, NULL, EXACT),
    };
    run_case("cast", a, 4, call_cast, &n);
    tu_host_release();
}

/* ---------------------------------------------------------------- matmul */

typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
} mm_ctx;

static void call_mm(ops *o, ops_ptr *p, void *v) {
    mm_ctx *c = v;
    o->matmul(o, c->ta, c->tb, c->m, c->n, c->k, c->alpha, p[0], c->lda, p[1], c->ldb, c->beta, p[2], c->ldc);
}

static void test_matmul(void) {
    static const char *VN[3] = {"f32_acc", "act", "act_beta"};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (int var = 0; var < 3; var++) {
                /* 0: c F32, alpha 0.75, beta 1 (weight-gradient accumulation); 1: c ACT, beta 0; 2: c ACT,
                 * beta 0.5 */
                mm_ctx c = {ta,
                            tb,
                            37,
                            29,
                            77,
                            0,
                            0,
                            0,
                            var == 0 ? 0.75f : 1.0f,
                            var == 0 ? 1.0f : var == 2 ? 0.5f : 0.0f};
                int arows = ta ? c.k : c.m, acols = ta ? c.m : c.k;
                int brows = tb ? c.n : c.k, bcols = tb ? c.k : c.n;
                c.lda = acols + 3;
                c.ldb = bcols + 1;
                c.ldc = c.n + 2;
                size_t na = (size_t)arows * c.lda, nb = (size_t)brows * c.ldb, nc = (size_t)c.m * c.ldc;
                arg a[] = {
                    AF("a", OPS_ACT, na, IN, hact(na, 1), 0),
                    AF("b", OPS_ACT, nb, IN, hact(nb, 1), 0),
                    AF("c", var == 0 ? OPS_F32 : OPS_ACT, nc, var == 1 ? OUT : ACC,
                       var == 0 ? tu_host_normal(nc, 3) : hact(nc, 3), var == 0 ? F32T : BF),
                };
                a[2].cols = c.n;
                a[2].ld = c.ldc;
                run_case(tu_name("matmul.%c%c.%s", "NT"[ta], "NT"[tb], VN[var]), a, NA(a), call_mm, &c);
                tu_host_release();
            }
}

/* ---------------------------------------------------------------- dense */

typedef struct {
    int rows, cols, ld;
    size_t n;
    float alpha;
} dn_ctx;

static void call_add_bias(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->add_bias(o, p[0], p[1], c->rows, c->cols, c->ld);
}
static void call_bias_grad(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->bias_grad(o, p[0], p[1], c->rows, c->cols, c->ld);
}
static void call_add(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->add(o, p[0], p[1], p[2], c->n);
}
static void call_add_alias(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->add(o, p[0], p[0], p[1], c->n); /* y += a, y aliasing x */
}
static void call_scale(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->scale(o, p[0], c->alpha, c->n);
}
static void call_dropout(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v; /* columns [11, 11 + cols) of a matrix of width cols + 20, p = 0.25 */
    o->dropout(o, p[0], p[1], c->rows, c->cols, 11, c->cols + 20, 4194304u, 1.0f / 0.75f,
               0x5eedULL + (uint64_t)c->ld);
}
static void call_dropout_alias(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    o->dropout(o, p[0], p[0], c->rows, c->cols, 11, c->cols + 20, 4194304u, 1.0f / 0.75f,
               0x5eedULL + (uint64_t)c->ld);
}
static void call_sumsq(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    ret[side] = o->sumsq(o, p[0], c->n);
}
static void call_dot(ops *o, ops_ptr *p, void *v) {
    dn_ctx *c = v;
    ret[side] = o->dot(o, p[0], p[1], c->n);
}

static void check_ret(const char *name) {
    double err = fabs(ret[1] - ret[0]) / (fabs(ret[0]) > 0 ? fabs(ret[0]) : 1.0);
    if (!isfinite(ret[1]))
        err = NAN;
    tu_check_rel(err, DBL, name);
    tu_check(memcmp(&ret[1], &ret[2], sizeof(double)) == 0, tu_name("%s.schedules", name),
             "results differ between emulator schedules");
}

static void test_dense(void) {
    {
        dn_ctx c = {37, 77, 80, 0, 0};
        size_t ny = (size_t)c.rows * c.ld;
        arg a[] = {AF("y", OPS_ACT, ny, ACC, hact(ny, 1), BF), AF("bias", OPS_ACT, 77, IN, hact(77, 1), 0)};
        a[0].cols = c.cols;
        a[0].ld = c.ld;
        run_case("add_bias", a, NA(a), call_add_bias, &c);
        tu_host_release();
    }
    {
        /* 300 rows: three row chunks of the CUDA column reduction */
        int rows[2] = {37, 300};
        for (int t = 0; t < 2; t++) {
            dn_ctx c = {rows[t], 77, 81, 0, 0};
            size_t ny = (size_t)c.rows * c.ld;
            arg a[] = {AF("dbias", OPS_F32, 77, ACC, tu_host_normal(77, 1), F32T),
                       AF("dy", OPS_ACT, ny, IN, hact(ny, 1), 0)};
            run_case(tu_name("bias_grad.rows%d", rows[t]), a, NA(a), call_bias_grad, &c);
            tu_host_release();
        }
    }
    {
        dn_ctx c = {0, 0, 0, 1037, 0};
        arg a[] = {AF("y", OPS_ACT, c.n, OUT, NULL, BF), AF("x", OPS_ACT, c.n, IN, hact(c.n, 1), 0),
                   AF("a", OPS_ACT, c.n, IN, hact(c.n, 1), 0)};
        run_case("add", a, NA(a), call_add, &c);
        tu_host_release();
        arg b[] = {AF("y", OPS_ACT, c.n, ACC, hact(c.n, 1), BF), AF("a", OPS_ACT, c.n, IN, hact(c.n, 1), 0)};
        run_case("add.alias", b, NA(b), call_add_alias, &c);
        tu_host_release();
    }
    {
        /* the same mask on both backends: a dropped element is 0 and a kept one scaled, so a different mask
         * moves the result by far more than the bf16 tolerance */
        dn_ctx c = {29, 83, (int)(tu_next() % 1000), (size_t)29 * 83, 0};
        arg a[] = {AF("y", OPS_ACT, c.n, OUT, NULL, BF), AF("x", OPS_ACT, c.n, IN, hact(c.n, 1), 0)};
        run_case("dropout", a, NA(a), call_dropout, &c);
        tu_host_release();
        arg b[] = {AF("y", OPS_ACT, c.n, ACC, hact(c.n, 1), BF)};
        run_case("dropout.alias", b, NA(b), call_dropout_alias, &c);
        tu_host_release();
    }
    {
        dn_ctx c = {0, 0, 0, 1037, -0.37f};
        arg a[] = {AF("x", OPS_F32, c.n, ACC, tu_host_normal(c.n, 1), SAME)};
        run_case("scale", a, NA(a), call_scale, &c);
        tu_host_release();
    }
    {
        /* 5000 elements: several dot blocks; 200000: the grid-stride loop */
        size_t ns[2] = {5000, 200000};
        for (int t = 0; t < 2; t++) {
            dn_ctx c = {0, 0, 0, ns[t], 0};
            arg a[] = {AF("x", OPS_F32, c.n, IN, tu_host_normal(c.n, 1), 0),
                       AF("y", OPS_F32, c.n, IN, tu_host_normal(c.n, 1), 0)};
            run_case(tu_name("sumsq.n%zu", ns[t]), a, 1, call_sumsq, &c);
            check_ret(tu_name("sumsq.n%zu.value", ns[t]));
            run_case(tu_name("dot.n%zu", ns[t]), a, 2, call_dot, &c);
            check_ret(tu_name("dot.n%zu.value", ns[t]));
            tu_host_release();
        }
    }
}

/* ---------------------------------------------------------------- adamw */

static void call_adamw(ops *o, ops_ptr *p, void *v) {
    size_t n = *(size_t *)v;
    o->adamw(o, p[0], p[1], p[2], p[3], n, 0.8f, 3e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.271f, 0.0975f);
}

static void test_adamw(void) {
    size_t n = 1037;
    float *vv = tu_host_normal(n, 1e-2);
    for (size_t i = 0; i < n; i++)
        vv[i] = fabsf(vv[i]);
    arg a[] = {AF("p", OPS_F32, n, ACC, tu_host_normal(n, 1), SAME),
               AF("g", OPS_F32, n, IN, tu_host_normal(n, 0.1), 0),
               AF("m", OPS_F32, n, ACC, tu_host_normal(n, 0.05), SAME), AF("v", OPS_F32, n, ACC, vv, SAME)};
    run_case("adamw", a, NA(a), call_adamw, &n);
    tu_host_release();
}

/* ---------------------------------------------------------------- layernorm, gelu */

typedef struct {
    int rows, cols;
    size_t n;
} ln_ctx;

static void call_ln_fwd(ops *o, ops_ptr *p, void *v) {
    ln_ctx *c = v;
    o->layernorm_fwd(o, p[0], p[1], p[2], p[3], p[4], p[5], c->rows, c->cols, 1e-5f);
}
static void call_ln_bwd(ops *o, ops_ptr *p, void *v) {
    ln_ctx *c = v;
    o->layernorm_bwd(o, p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], c->rows, c->cols);
}
static void call_gelu_fwd(ops *o, ops_ptr *p, void *v) {
    ln_ctx *c = v;
    o->gelu_fwd(o, p[0], p[1], c->n);
}
static void call_gelu_bwd(ops *o, ops_ptr *p, void *v) {
    ln_ctx *c = v;
    o->gelu_bwd(o, p[0], p[1], p[2], c->n);
}
static void call_gelu_bwd_alias(ops *o, ops_ptr *p, void *v) {
    ln_ctx *c = v;
    o->gelu_bwd(o, p[0], p[1], p[0], c->n);
}

static void test_norm(void) {
    int rows[2] = {37, 300};
    for (int t = 0; t < 2; t++) {
        ln_ctx c = {rows[t], 77, 0};
        size_t n = (size_t)c.rows * c.cols;
        float *x = tu_host_normal(n, 2);
        for (size_t i = 0; i < n; i++)
            x[i] = bf16_round(x[i] + 0.5f); /* non-zero mean */
        float *gamma = hact(77, 1), *beta = hact(77, 1);
        arg f[] = {AF("out", OPS_ACT, n, OUT, NULL, BF),         AF("mean", OPS_F32, c.rows, OUT, NULL, F32T),
                   AF("rstd", OPS_F32, c.rows, OUT, NULL, F32T), AF("x", OPS_ACT, n, IN, x, 0),
                   AF("gamma", OPS_ACT, 77, IN, gamma, 0),       AF("beta", OPS_ACT, 77, IN, beta, 0)};
        run_case(tu_name("layernorm_fwd.rows%d", rows[t]), f, NA(f), call_ln_fwd, &c);
        /* the backward from the CPU's statistics (rounded to what the CUDA op would have saved: fp32) */
        float *mean = f[1].res[0], *rstd = f[2].res[0];
        arg b[] = {AF("dx", OPS_ACT, n, ACC, hact(n, 0.5), BF),
                   AF("dgamma", OPS_F32, 77, ACC, tu_host_normal(77, 1), F32T),
                   AF("dbeta", OPS_F32, 77, ACC, tu_host_normal(77, 1), F32T),
                   AF("dout", OPS_ACT, n, IN, hact(n, 1), 0),
                   AF("x", OPS_ACT, n, IN, x, 0),
                   AF("mean", OPS_F32, c.rows, IN, mean, 0),
                   AF("rstd", OPS_F32, c.rows, IN, rstd, 0),
                   AF("gamma", OPS_ACT, 77, IN, gamma, 0)};
        run_case(tu_name("layernorm_bwd.rows%d", rows[t]), b, NA(b), call_ln_bwd, &c);
        tu_host_release();
    }
    ln_ctx c = {0, 0, 1037};
    float *x = hact(c.n, 2);
    arg f[] = {AF("y", OPS_ACT, c.n, OUT, NULL, BF), AF("x", OPS_ACT, c.n, IN, x, 0)};
    run_case("gelu_fwd", f, NA(f), call_gelu_fwd, &c);
    arg b[] = {AF("dx", OPS_ACT, c.n, OUT, NULL, BF), AF("x", OPS_ACT, c.n, IN, x, 0),
               AF("dy", OPS_ACT, c.n, IN, hact(c.n, 1), 0)};
    run_case("gelu_bwd", b, NA(b), call_gelu_bwd, &c);
    arg b2[] = {AF("dx", OPS_ACT, c.n, ACC, hact(c.n, 1), BF), AF("x", OPS_ACT, c.n, IN, x, 0)};
    run_case("gelu_bwd.alias", b2, NA(b2), call_gelu_bwd_alias, &c);
    tu_host_release();
}

/* ---------------------------------------------------------------- rotary, attention */

typedef struct {
    int B, T, H, dh, rot, ld;
} rot_ctx;

static void call_rot_fwd(ops *o, ops_ptr *p, void *v) {
    rot_ctx *c = v;
    o->rotary_fwd(o, p[0], p[1], c->B, c->T, c->H, c->dh, c->rot, c->ld);
}
static void call_rot_bwd(ops *o, ops_ptr *p, void *v) {
    rot_ctx *c = v;
    o->rotary_bwd(o, p[0], p[1], c->B, c->T, c->H, c->dh, c->rot, c->ld);
}

static float *cos_sin_table(int T, int rot) {
    float *cs = tu_host((size_t)T * rot * sizeof *cs);
    int half = rot / 2;
    for (int t = 0; t < T; t++)
        for (int i = 0; i < half; i++) {
            double ang = t * pow(10000.0, -2.0 * i / rot);
            cs[(size_t)t * rot + i] = (float)cos(ang);
            cs[(size_t)t * rot + half + i] = (float)sin(ang);
        }
    return cs;
}

static void test_rotary(void) {
    rot_ctx c = {2, 13, 3, 16, 6, 3 * 16 + 5}; /* partial rotary: 6 of 16 features per head */
    size_t n = (size_t)c.B * c.T * c.ld;
    float *cs = cos_sin_table(c.T, c.rot);
    arg a[] = {AF("x", OPS_ACT, n, ACC, hact(n, 1), BF),
               AF("cos_sin", OPS_F32, (size_t)c.T * c.rot, IN, cs, 0)};
    a[0].cols = c.H * c.dh;
    a[0].ld = c.ld;
    run_case("rotary_fwd", a, NA(a), call_rot_fwd, &c);
    run_case("rotary_bwd", a, NA(a), call_rot_bwd, &c);
    tu_host_release();
}

typedef struct {
    ops_attn_shape s;
} at_ctx;

/* q, k, v live in one fused [B*T, 3*H*dh + 2] buffer (ld_qkv), as in the model; so do dq, dk, dv. */
static void call_att_fwd(ops *o, ops_ptr *p, void *v) {
    at_ctx *c = v;
    int hd = c->s.H * c->s.dh;
    o->attention_fwd(o, p[0], p[1], p[2], ops_at(p[2], (size_t)hd), ops_at(p[2], 2 * (size_t)hd), &c->s);
}
static void call_att_bwd(ops *o, ops_ptr *p, void *v) {
    at_ctx *c = v;
    size_t hd = (size_t)c->s.H * c->s.dh;
    o->attention_bwd(o, p[0], ops_at(p[0], hd), ops_at(p[0], 2 * hd), p[1], p[2], p[3], ops_at(p[3], hd),
                     ops_at(p[3], 2 * hd), p[4], &c->s);
}

static void test_attention(void) {
    struct {
        int window;
        int inv_sqrt;
    } cases[3] = {{1 << 30, 1}, {5, 1}, {1 << 30, 0}};
    for (int t = 0; t < 3; t++) {
        at_ctx c = {{2, 13, 3, 8, 3 * 3 * 8 + 2, 3 * 8 + 1, cases[t].window, 1.0f}};
        if (cases[t].inv_sqrt)
            c.s.scale = 1.0f / sqrtf((float)c.s.dh);
        int BT = c.s.B * c.s.T;
        size_t nq = (size_t)BT * c.s.ld_qkv, no = (size_t)BT * c.s.ld_out;
        size_t np = (size_t)c.s.B * c.s.H * c.s.T * c.s.T;
        float *qkv = hact(nq, 1.5);
        const char *cn = cases[t].window < c.s.T ? "local5" : cases[t].inv_sqrt ? "causal" : "causal_scale1";
        arg f[] = {AF("out", OPS_ACT, no, OUT, NULL, BF2), AF("probs", OPS_ACT, np, OUT, NULL, BF),
                   AF("qkv", OPS_ACT, nq, IN, qkv, 0)};
        f[0].cols = c.s.H * c.s.dh;
        f[0].ld = c.s.ld_out;
        run_case(tu_name("attention_fwd.%s", cn), f, NA(f), call_att_fwd, &c);
        /* backward from the CPU's probabilities rounded to bf16 (what the CUDA forward stores) */
        float *probs = tu_host(np * sizeof *probs);
        for (size_t i = 0; i < np; i++)
            probs[i] = bf16_round(f[1].res[0][i]);
        float *dout = hact(no, 1);
        arg b[] = {AF("dqkv", OPS_ACT, nq, OUT, NULL, BF3), AF("scratch", OPS_ACT, np, OUT, NULL, -1),
                   AF("dout", OPS_ACT, no, IN, dout, 0), AF("qkv", OPS_ACT, nq, IN, qkv, 0),
                   AF("probs", OPS_ACT, np, IN, probs, 0)};
        b[0].cols = 3 * c.s.H * c.s.dh;
        b[0].ld = c.s.ld_qkv;
        run_case(tu_name("attention_bwd.%s", cn), b, NA(b), call_att_bwd, &c);
        /* dv alone, for its tighter tolerance */
        size_t hd = (size_t)c.s.H * c.s.dh;
        float *g = tu_host(nq * sizeof *g), *r = tu_host(nq * sizeof *r);
        size_t m = 0;
        for (int row = 0; row < BT; row++)
            for (size_t j = 2 * hd; j < 3 * hd; j++, m++) {
                g[m] = b[0].res[1][(size_t)row * c.s.ld_qkv + j];
                r[m] = b[0].res[0][(size_t)row * c.s.ld_qkv + j];
            }
        tu_check_rel(all_finite(g, m) ? tu_rel_err_ff(g, r, m) : NAN, BF2,
                     tu_name("attention_bwd.%s.dv", cn));
        tu_host_release();
    }
}

/* One decoding step over a key/value cache: fp32 scores and probabilities on both sides, one bf16 rounding of
 * the output. Cases: a whole cache, a wrapped ring, a window shorter than its ring, position 0, and a head
 * wider than a warp (dh 40: lanes take two features) with more positions than the block has threads. */
static void call_att_step(ops *o, ops_ptr *p, void *v) {
    o->attention_step(o, p[0], p[1], p[2], p[3], p[4], (const ops_step_shape *)v);
}

static void test_attention_step(void) {
    static const struct {
        const char *tag;
        ops_step_shape s;
    } cases[] = {
        {"global", {2, 3, 8, 25, 26, 27, 13, 9, 13, 0.35f}},
        {"ring_wrapped", {2, 3, 8, 24, 24, 24, 5, 11, 5, 0.35f}},
        {"ring_window3", {3, 2, 5, 11, 13, 10, 5, 12, 3, 1.0f}},
        {"pos0", {2, 3, 8, 24, 24, 24, 13, 0, 13, 0.35f}},
        {"dh40_pos150", {1, 2, 40, 80, 83, 81, 160, 150, 160, 0.16f}},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ops_step_shape s = cases[ci].s;
        size_t nq = (size_t)s.B * s.ld_q, nkv = (size_t)s.B * s.slots * s.ld_kv, no = (size_t)s.B * s.ld_out;
        arg a[] = {AF("out", OPS_ACT, no, OUT, NULL, BF),
                   AF("scratch", OPS_F32, (size_t)s.B * s.H * s.slots, OUT, NULL, -1),
                   AF("q", OPS_ACT, nq, IN, hact(nq, 1), 0), AF("k", OPS_ACT, nkv, IN, hact(nkv, 1), 0),
                   AF("v", OPS_ACT, nkv, IN, hact(nkv, 1), 0)};
        a[0].cols = s.H * s.dh;
        a[0].ld = s.ld_out;
        run_case(tu_name("attention_step.%s", cases[ci].tag), a, NA(a), call_att_step, &s);
        tu_host_release();
    }
}

/* ---------------------------------------------------------------- embeddings */

typedef struct {
    int n, d, row_start, rows, B, T;
} em_ctx;

static void call_emb_fwd(ops *o, ops_ptr *p, void *v) {
    em_ctx *c = v;
    o->embed_fwd(o, p[0], p[1], p[2], c->n, c->d, c->row_start, c->rows);
}
static void call_emb_bwd(ops *o, ops_ptr *p, void *v) {
    em_ctx *c = v;
    o->embed_bwd(o, p[0], p[1], p[2], c->n, c->d, c->row_start, c->rows);
}
static void call_pos_fwd(ops *o, ops_ptr *p, void *v) {
    em_ctx *c = v;
    o->pos_fwd(o, p[0], p[1], c->B, c->T, c->d);
}
static void call_pos_bwd(ops *o, ops_ptr *p, void *v) {
    em_ctx *c = v;
    o->pos_bwd(o, p[0], p[1], c->B, c->T, c->d);
}

static void test_embed(void) {
    /* vocabulary 101 split in two: this rank holds rows [50, 101); ids anywhere in [0, 101), repeats included
     */
    em_ctx c = {2 * 13, 77, 50, 51, 2, 13};
    int32_t *ids = hints((size_t)c.n, 0, 101);
    ids[0] = 50;
    ids[1] = 49;
    ids[2] = 100;
    ids[3] = ids[4] = 77;
    size_t no = (size_t)c.n * c.d, nw = (size_t)c.rows * c.d;
    arg f[] = {AF("out", OPS_ACT, no, OUT, NULL, EXACT), AI("ids", c.n, ids),
               AF("wte", OPS_ACT, nw, IN, hact(nw, 1), 0)};
    run_case("embed_fwd", f, NA(f), call_emb_fwd, &c);
    arg b[] = {AF("dwte", OPS_F32, nw, ACC, tu_host_normal(nw, 1), SAME), AI("ids", c.n, ids),
               AF("dout", OPS_ACT, no, IN, hact(no, 1), 0)};
    run_case("embed_bwd", b, NA(b), call_emb_bwd, &c);
    size_t nwp = (size_t)c.T * c.d;
    arg pf[] = {AF("out", OPS_ACT, no, ACC, hact(no, 1), BF), AF("wpe", OPS_ACT, nwp, IN, hact(nwp, 1), 0)};
    run_case("pos_fwd", pf, NA(pf), call_pos_fwd, &c);
    arg pb[] = {AF("dwpe", OPS_F32, nwp, ACC, tu_host_normal(nwp, 1), SAME),
                AF("dout", OPS_ACT, no, IN, hact(no, 1), 0)};
    run_case("pos_bwd", pb, NA(pb), call_pos_bwd, &c);
    tu_host_release();
}

/* ---------------------------------------------------------------- cross-entropy */

typedef struct {
    ops_ce_shape s;
    float z;
} ce_ctx;

static void call_ce_rowmax(ops *o, ops_ptr *p, void *v) {
    ce_ctx *c = v;
    o->ce_rowmax(o, p[0], p[1], &c->s);
}
static void call_ce_sumexp(ops *o, ops_ptr *p, void *v) {
    ce_ctx *c = v;
    o->ce_sumexp(o, p[0], p[1], p[2], p[3], p[4], &c->s);
}
static void call_ce_loss(ops *o, ops_ptr *p, void *v) {
    ce_ctx *c = v;
    o->ce_loss(o, p[0], p[1], p[2], p[3], c->z, c->s.N);
}
static void call_ce_bwd(ops *o, ops_ptr *p, void *v) {
    ce_ctx *c = v;
    o->ce_bwd(o, p[0], p[1], p[2], p[3], p[4], c->z, &c->s);
}

static void test_ce(void) {
    /* the last shard of a 101-column vocabulary padded to 128 in memory: columns [64, 128) of which the
     * first 37 count (loss_vocab 101); targets on this shard, below it, and in the padding */
    ce_ctx c = {{37, 64, 37, 64}, 1e-4f};
    int N = c.s.N;
    size_t nl = (size_t)N * c.s.ld;
    float *logits = hact(nl, 3);
    int32_t *targets = hints((size_t)N, 0, 101);
    targets[0] = 64;
    targets[1] = 100;
    targets[2] = 63;
    targets[3] = 0;
    float *weights = tu_host((size_t)N * sizeof *weights);
    for (int i = 0; i < N; i++)
        weights[i] = i % 7 == 3 ? 0.0f : (float)(0.5 + tu_uniform());
    arg rm[] = {AF("rowmax", OPS_F32, N, OUT, NULL, EXACT), AF("logits", OPS_ACT, nl, IN, logits, 0)};
    run_case("ce_rowmax", rm, NA(rm), call_ce_rowmax, &c);
    /* the global max of a sharded softmax can exceed this shard's: add a rank's offset to some rows */
    float *rowmax = tu_host((size_t)N * sizeof *rowmax);
    for (int i = 0; i < N; i++)
        rowmax[i] = rm[0].res[0][i] + (i % 3 == 0 ? 1.5f : 0.0f);
    arg se[] = {AF("sumexp", OPS_F32, N, OUT, NULL, F32T), AF("tgt", OPS_F32, N, OUT, NULL, SAME),
                AF("logits", OPS_ACT, nl, IN, logits, 0), AF("rowmax", OPS_F32, N, IN, rowmax, 0),
                AI("targets", N, targets)};
    run_case("ce_sumexp", se, NA(se), call_ce_sumexp, &c);
    float *sumexp = se[0].res[0], *tgt = se[1].res[0];
    arg ls[] = {AF("loss", OPS_F32, N, OUT, NULL, SAME), AF("rowmax", OPS_F32, N, IN, rowmax, 0),
                AF("sumexp", OPS_F32, N, IN, sumexp, 0), AF("tgt", OPS_F32, N, IN, tgt, 0)};
    run_case("ce_loss", ls, NA(ls), call_ce_loss, &c);
    arg bw[] = {AF("logits", OPS_ACT, nl, ACC, logits, BF), AF("rowmax", OPS_F32, N, IN, rowmax, 0),
                AF("sumexp", OPS_F32, N, IN, sumexp, 0), AI("targets", N, targets),
                AF("weights", OPS_F32, N, IN, weights, 0)};
    run_case("ce_bwd", bw, NA(bw), call_ce_bwd, &c);
    tu_host_release();
}

/* ---------------------------------------------------------------- no device */

#ifdef MT_SIMT
/* Before any other CUDA call: the emulator reads SIMT_DEVICES once per process, so the child sets it. */
static void test_no_device(void) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SIMT_DEVICES", "0", 1);
        mt_err e = {{0}};
        ops *g = ops_cuda_create(0, &e);
        printf("#   SIMT_DEVICES=0: %s\n", g ? "(created)" : e.msg);
        fflush(stdout);
        _exit(g == NULL && e.msg[0] ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    tu_check(WIFEXITED(st) && WEXITSTATUS(st) == 0, "create.no_device",
             "with SIMT_DEVICES=0 ops_cuda_create did not return NULL with a message");
    mt_err err = {{0}};
    ops *o = ops_cuda_create(1000, &err);
    tu_check(o == NULL && err.msg[0], "create.bad_device", "device 1000 accepted (message '%s')", err.msg);
    if (o)
        o->destroy(o);
}
#endif

/* A buffer of the wrong precision must stop the program (CHECK), not compute garbage: each misuse runs in
 * a child process that must die. */
static void misuse_add(void) {
    ops_buf *a = GPU->alloc(GPU, 10, OPS_ACT), *f = GPU->alloc(GPU, 10, OPS_F32);
    GPU->add(GPU, (ops_ptr){a, 0}, (ops_ptr){a, 0}, (ops_ptr){f, 0}, 10); /* a must be ACT */
}
static void misuse_matmul(void) {
    ops_buf *a = GPU->alloc(GPU, 16, OPS_F32), *c = GPU->alloc(GPU, 16, OPS_F32);
    GPU->matmul(GPU, 0, 0, 4, 4, 4, 1.0f, (ops_ptr){a, 0}, 4, (ops_ptr){a, 0}, 4, 0.0f, (ops_ptr){c, 0}, 4);
}
static void misuse_adamw(void) {
    ops_buf *a = GPU->alloc(GPU, 10, OPS_ACT), *f = GPU->alloc(GPU, 10, OPS_F32);
    GPU->adamw(GPU, (ops_ptr){a, 0}, (ops_ptr){f, 0}, (ops_ptr){f, 0}, (ops_ptr){f, 0}, 10, 1, 1e-3f, 0.9f,
               0.95f, 1e-8f, 0, 1, 1);
}
static void misuse_range(void) {
    ops_buf *f = GPU->alloc(GPU, 10, OPS_F32);
    GPU->scale(GPU, (ops_ptr){f, 5}, 2.0f, 6);
}

static void test_misuse(void) {
    struct {
        const char *name;
        void (*fn)(void);
    } cases[] = {{"checks.add_f32_arg", misuse_add},
                 {"checks.matmul_f32_operands", misuse_matmul},
                 {"checks.adamw_act_param", misuse_adamw},
                 {"checks.range", misuse_range}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            if (!getenv("MT_SHOW_MISUSE"))
                (void)!freopen("/dev/null", "w", stderr);
            cases[i].fn();
            _exit(0);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        tu_check(!(WIFEXITED(st) && WEXITSTATUS(st) == 0), cases[i].name, "the misuse was not caught");
    }
}

int main(void) {
    tu_srand(tu_seed("test_cuda_ops"));
#ifdef MT_SIMT
    test_no_device();
#endif
    mt_err err = {{0}};
    GPU = ops_cuda_create(0, &err);
    if (!GPU) {
        tu_check(0, "create", "%s", err.msg);
        return tu_exit();
    }
    CPU = ops_cpu_create(1);
    test_memory();
    test_misuse();
    test_cast();
    test_matmul();
    test_dense();
    test_adamw();
    test_norm();
    test_rotary();
    test_attention();
    test_attention_step();
    test_embed();
    test_ce();
    GPU->destroy(GPU);
    CPU->destroy(CPU);
    return tu_exit();
}
