/* Checks every op of model/ops.h on the CPU backend.
 *
 * Forward ops are compared with naive double-precision loops written from the comments in ops.h;
 * backward ops with central finite differences of those double references (loss = sum(r * y) for a
 * random r). Every device array sits at an odd element offset between guard bands that no op may touch
 * (checked per group), accumulating ops start from random contents and overwriting ops from garbage.
 * Last, the ops whose reductions are the backend's own run on a 1-thread and a 2-thread backend, twice
 * each, and must agree bit for bit. */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/dropout_mask.h"
#include "model/ops.h"
#include "tests/testutil.h"

/* Tolerances (relative norm). fp32 forward kernels against double: a few 1e-7; backward kernels
 * against double finite differences (whose own error is ~1e-9): a few 1e-6. */
#define TOL_EXACT 0.0
#define TOL_ELEM 1e-6 /* elementwise fp32 arithmetic */
#define TOL_FWD 1e-5  /* fp32 reductions, exp/tanh */
#define TOL_BWD 1e-5  /* backward kernels against finite differences */
#define TOL_RED 1e-12 /* double-accumulated reductions (sumsq, dot) */

/* ---------------------------------------------------------------- typed host scratch (tu_host), freed per
 * group */

static float *hf(size_t n) { return tu_host(n * sizeof(float)); }
static double *hd(size_t n) { return tu_host(n * sizeof(double)); }
static int32_t *hi(size_t n) { return tu_host(n * sizeof(int32_t)); }
static float *hcopy(const float *x, size_t n) {
    float *y = hf(n);
    memcpy(y, x, n * sizeof *y);
    return y;
}
static double *hdbl(const float *x, size_t n) {
    double *y = hd(n);
    for (size_t i = 0; i < n; i++)
        y[i] = x[i];
    return y;
}

/* ---------------------------------------------------------------- device arrays with guard bands */

static ops *O;

enum { OFF = 3, GUARD = 5, MAX_DEV = 256 };
#define FSENT (-12345.5f)
#define ISENT (-777)

typedef struct {
    ops_buf *b;
    size_t n;
    ops_dtype t;
} dev_rec;
static dev_rec devs[MAX_DEV];
static int n_dev;

/* n elements at element offset OFF of a fresh buffer, with sentinels in [0, OFF) and after the end. */
static ops_ptr dev(size_t n, ops_dtype t) {
    if (n_dev == MAX_DEV) {
        fprintf(stderr, "test_ops: too many device arrays\n");
        exit(2);
    }
    ops_buf *b = O->alloc(O, OFF + n + GUARD, t);
    devs[n_dev++] = (dev_rec){b, n, t};
    float fg[GUARD];
    int32_t ig[GUARD];
    for (int i = 0; i < GUARD; i++)
        fg[i] = FSENT, ig[i] = ISENT;
    const void *g = t == OPS_F32 ? (const void *)fg : (const void *)ig;
    O->from_host(O, (ops_ptr){b, 0}, g, OFF);
    O->from_host(O, (ops_ptr){b, OFF + n}, g, GUARD);
    return (ops_ptr){b, OFF};
}
static ops_ptr upf(const float *h, size_t n) {
    ops_ptr p = dev(n, OPS_F32);
    O->from_host(O, p, h, n);
    return p;
}
static ops_ptr upi(const int32_t *h, size_t n) {
    ops_ptr p = dev(n, OPS_I32);
    O->from_host(O, p, h, n);
    return p;
}
static float *downf(ops_ptr p, size_t n) {
    float *h = hf(n);
    O->to_host(O, h, p, n);
    return h;
}

/* One check that no op of the group wrote into a guard band; then frees the group's arrays. */
static void dev_release(const char *group) {
    int bad = 0;
    for (int i = 0; i < n_dev; i++) {
        ops_buf *b = devs[i].b;
        size_t n = devs[i].n;
        if (devs[i].t == OPS_F32) {
            float g[OFF + GUARD];
            O->to_host(O, g, (ops_ptr){b, 0}, OFF);
            O->to_host(O, g + OFF, (ops_ptr){b, OFF + n}, GUARD);
            for (int j = 0; j < OFF + GUARD; j++)
                bad += g[j] != FSENT;
        } else {
            int32_t g[OFF + GUARD];
            O->to_host(O, g, (ops_ptr){b, 0}, OFF);
            O->to_host(O, g + OFF, (ops_ptr){b, OFF + n}, GUARD);
            for (int j = 0; j < OFF + GUARD; j++)
                bad += g[j] != ISENT;
        }
        O->free(O, b);
    }
    n_dev = 0;
    tu_check(bad == 0, tu_name("%s.guards", group), "%d elements outside the arrays were overwritten", bad);
}

/* ---------------------------------------------------------------- comparison and finite differences */

/* got is rows x ld (row stride ld). Column c < cols must equal ref (or pre + ref when acc, for
 * accumulating ops: the error is then measured on got - pre against ref); columns cols..ld-1 must still
 * hold pre bit for bit (when pre is given). Relative norm over the checked columns. */
static void check_mat(const char *name, const float *got, const float *pre, const double *ref, int acc,
                      int rows, int cols, int ld, double tol) {
    double num = 0, den = 0;
    size_t changed = 0;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ld; c++) {
            size_t i = (size_t)r * ld + c;
            if (c < cols) {
                double e = (double)got[i] - (acc ? (double)pre[i] : 0.0) - ref[i];
                num += e * e;
                den += ref[i] * ref[i];
            } else if (pre && memcmp(&got[i], &pre[i], sizeof(float)) != 0) {
                changed++;
            }
        }
    if (changed) {
        tu_check(0, name, "%zu elements outside the written columns changed", changed);
        return;
    }
    tu_check_rel(den > 0 ? sqrt(num / den) : sqrt(num), tol, name);
}
static void check_vec(const char *name, const float *got, const float *pre, const double *ref, int acc,
                      size_t n, double tol) {
    check_mat(name, got, pre, ref, acc, 1, (int)n, (int)n, tol);
}

typedef double (*loss_fn)(void *ctx);

/* g = d f / d x by central differences (x is perturbed in place and restored). */
static void fd_grad(loss_fn f, void *ctx, double *x, size_t n, double *g) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i], h = 1e-5 * (fabs(x0) > 1 ? fabs(x0) : 1);
        x[i] = x0 + h;
        double lp = f(ctx);
        x[i] = x0 - h;
        double lm = f(ctx);
        x[i] = x0;
        g[i] = (lp - lm) / (2 * h);
    }
}

/* ---------------------------------------------------------------- memory */

static int same(const void *a, const void *b, size_t bytes) { return memcmp(a, b, bytes) == 0; }

static void test_mem(void) {
    enum { N = 1001, NI = 77 };
    float *h = tu_host_normal(N, 1), *zf = hf(N);
    int32_t *hiv = hi(NI), *zi = hi(NI);
    for (int i = 0; i < NI; i++)
        hiv[i] = 1;
    /* dirty two buffers and free them, so that the allocator is likely to hand their memory back */
    ops_buf *dirty_f = O->alloc(O, N, OPS_F32), *dirty_i = O->alloc(O, NI, OPS_I32);
    O->from_host(O, (ops_ptr){dirty_f, 0}, h, N);
    O->from_host(O, (ops_ptr){dirty_i, 0}, hiv, NI);
    O->free(O, dirty_f);
    O->free(O, dirty_i);
    ops_buf *bf = O->alloc(O, N, OPS_F32), *bf2 = O->alloc(O, N, OPS_F32);
    ops_buf *bi = O->alloc(O, NI, OPS_I32), *bi2 = O->alloc(O, NI, OPS_I32);
    O->to_host(O, h, (ops_ptr){bf, 0}, N);
    O->to_host(O, hiv, (ops_ptr){bi, 0}, NI);
    tu_check(same(h, zf, sizeof(float) * N) && same(hiv, zi, sizeof(int32_t) * NI), "alloc",
             "fresh buffers are not zero-filled");

    /* from_host / to_host at offsets, both dtypes */
    float *a = tu_host_normal(300, 1), *expf_ = hf(N), *all = hf(N), *part = hf(50);
    memcpy(expf_ + 17, a, 300 * sizeof(float));
    O->from_host(O, (ops_ptr){bf, 17}, a, 300);
    O->to_host(O, all, (ops_ptr){bf, 0}, N);
    O->to_host(O, part, (ops_ptr){bf, 100}, 50);
    int ok = same(all, expf_, sizeof(float) * N) && same(part, a + 83, 50 * sizeof(float));
    int32_t *ids = hi(40), *expi = hi(NI), *alli = hi(NI), *parti = hi(10);
    for (int i = 0; i < 40; i++)
        ids[i] = (int32_t)tu_next();
    memcpy(expi + 11, ids, 40 * sizeof(int32_t));
    O->from_host(O, (ops_ptr){bi, 11}, ids, 40);
    O->to_host(O, alli, (ops_ptr){bi, 0}, NI);
    O->to_host(O, parti, (ops_ptr){bi, 20}, 10);
    ok = ok && same(alli, expi, sizeof(int32_t) * NI) && same(parti, ids + 9, 10 * sizeof(int32_t));
    tu_check(ok, "to_host_from_host", "data read back differs from data written (offsets 17/100, 11/20)");

    /* zero */
    O->zero(O, (ops_ptr){bf, 40}, 61);
    memset(expf_ + 40, 0, 61 * sizeof(float));
    O->to_host(O, all, (ops_ptr){bf, 0}, N);
    O->zero(O, (ops_ptr){bi, 15}, 7);
    memset(expi + 15, 0, 7 * sizeof(int32_t));
    O->to_host(O, alli, (ops_ptr){bi, 0}, NI);
    tu_check(same(all, expf_, sizeof(float) * N) && same(alli, expi, sizeof(int32_t) * NI), "zero",
             "zero(offset 40, 61) / zero(offset 15, 7) wrong");

    /* copy */
    float *noise = tu_host_normal(N, 1), *exp2 = hcopy(noise, N);
    O->from_host(O, (ops_ptr){bf2, 0}, noise, N);
    O->copy(O, (ops_ptr){bf2, 5}, (ops_ptr){bf, 20}, 200);
    memcpy(exp2 + 5, expf_ + 20, 200 * sizeof(float));
    O->to_host(O, all, (ops_ptr){bf2, 0}, N);
    int32_t *noisei = hi(NI), *expi2 = hi(NI);
    for (int i = 0; i < NI; i++)
        noisei[i] = expi2[i] = (int32_t)tu_next();
    O->from_host(O, (ops_ptr){bi2, 0}, noisei, NI);
    O->copy(O, (ops_ptr){bi2, 30}, (ops_ptr){bi, 9}, 33);
    memcpy(expi2 + 30, expi + 9, 33 * sizeof(int32_t));
    O->to_host(O, alli, (ops_ptr){bi2, 0}, NI);
    tu_check(same(all, exp2, sizeof(float) * N) && same(alli, expi2, sizeof(int32_t) * NI), "copy",
             "copy(offset 5 <- 20, 200) / copy(i32, 30 <- 9, 33) wrong");

    O->free(O, bf);
    O->free(O, bf2);
    O->free(O, bi);
    O->free(O, bi2);
    tu_host_release();
}

/* ---------------------------------------------------------------- matmul */

static void ref_matmul(int ta, int tb, int m, int n, int k, double alpha, const double *A, int lda,
                       const double *B, int ldb, double beta, double *C, int ldc) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (ta ? A[(size_t)p * lda + i] : A[(size_t)i * lda + p]) *
                     (tb ? B[(size_t)j * ldb + p] : B[(size_t)p * ldb + j]);
            C[(size_t)i * ldc + j] = alpha * s + beta * C[(size_t)i * ldc + j];
        }
}

typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldr;
    double *A, *B, *R, *C;
} mm_ctx;

static double mm_loss(void *v) {
    mm_ctx *c = v;
    ref_matmul(c->ta, c->tb, c->m, c->n, c->k, 1.0, c->A, c->lda, c->B, c->ldb, 0.0, c->C, c->n);
    double L = 0;
    for (int i = 0; i < c->m; i++)
        for (int j = 0; j < c->n; j++)
            L += c->R[(size_t)i * c->ldr + j] * c->C[(size_t)i * c->n + j];
    return L;
}

static void test_matmul(void) {
    static const char *TN[2] = {"N", "T"};
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* forward: C = alpha op(A) op(B) + beta C with padded leading dimensions; 37 rows, and one row
             * (a decoding step: the CPU backend's matrix-vector path) accumulating, overwriting NaN, and
             * large enough to use both threads */
            for (int shape = 0; shape < 4; shape++) {
                int m = shape ? 1 : 37, n = shape == 3 ? 1003 : 29, k = shape == 3 ? 77 : 70;
                int ar = ta ? k : m, ac = ta ? m : k, lda = ac + 5;
                int br = tb ? n : k, bc = tb ? k : n, ldb = bc + 3, ldc = n + 7;
                float *A = tu_host_normal((size_t)ar * lda, 1), *B = tu_host_normal((size_t)br * ldb, 1);
                float *C0 = tu_host_normal((size_t)m * ldc, 1);
                float alpha = 0.75f, beta = shape == 2 ? 0.0f : -0.5f;
                for (int c = 0; c < n && shape == 2; c++)
                    C0[c] = NAN;
                ops_ptr pA = upf(A, (size_t)ar * lda), pB = upf(B, (size_t)br * ldb),
                        pC = upf(C0, (size_t)m * ldc);
                O->matmul(O, ta, tb, m, n, k, alpha, pA, lda, pB, ldb, beta, pC, ldc);
                double *ref = hdbl(C0, (size_t)m * ldc);
                for (int c = 0; c < n && shape == 2; c++)
                    ref[c] = 0;
                ref_matmul(ta, tb, m, n, k, alpha, hdbl(A, (size_t)ar * lda), lda, hdbl(B, (size_t)br * ldb),
                           ldb, beta, ref, ldc);
                static const char *SHAPE[4] = {"", ".row", ".row.beta0", ".row.threads"};
                check_mat(tu_name("matmul.%s%s%s", TN[ta], TN[tb], SHAPE[shape]), downf(pC, (size_t)m * ldc),
                          C0, ref, 0, m, n, ldc, TOL_FWD);
            }

            /* backward: the transposed products that give dA (overwrite) and dB (accumulate, beta 1)
             * of loss = sum(R * op(A) op(B)), against finite differences */
            int m = 13, n = 11, k = 21;
            int ar = ta ? k : m, ac = ta ? m : k, lda = ac + 5;
            int br = tb ? n : k, bc = tb ? k : n, ldb = bc + 3;
            int ldr = n + 4;
            size_t nA = (size_t)ar * lda, nB = (size_t)br * ldb, nR = (size_t)m * ldr;
            float *A = tu_host_normal(nA, 1), *B = tu_host_normal(nB, 1);
            float *R = tu_host_normal(nR, 1), *dA0 = tu_host_normal(nA, 1), *dB0 = tu_host_normal(nB, 1);
            mm_ctx c = {ta,  tb,  m,           n,           k,           lda,
                        ldb, ldr, hdbl(A, nA), hdbl(B, nB), hdbl(R, nR), hd((size_t)m * n)};
            double *gA = hd(nA), *gB = hd(nB);
            fd_grad(mm_loss, &c, c.A, nA, gA);
            fd_grad(mm_loss, &c, c.B, nB, gB);
            ops_ptr pA = upf(A, nA), pB = upf(B, nB);
            ops_ptr pR = upf(R, nR), pdA = upf(dA0, nA), pdB = upf(dB0, nB);
            if (!ta)
                O->matmul(O, 0, !tb, m, k, n, 1.0f, pR, ldr, pB, ldb, 0.0f, pdA, lda);
            else
                O->matmul(O, tb, 1, k, m, n, 1.0f, pB, ldb, pR, ldr, 0.0f, pdA, lda);
            if (!tb)
                O->matmul(O, !ta, 0, k, n, m, 1.0f, pA, lda, pR, ldr, 1.0f, pdB, ldb);
            else
                O->matmul(O, 1, ta, n, k, m, 1.0f, pR, ldr, pA, lda, 1.0f, pdB, ldb);
            check_mat(tu_name("matmul_bwd.%s%s.dA", TN[ta], TN[tb]), downf(pdA, nA), dA0, gA, 0, ar, ac, lda,
                      TOL_BWD);
            check_mat(tu_name("matmul_bwd.%s%s.dB", TN[ta], TN[tb]), downf(pdB, nB), dB0, gB, 1, br, bc, ldb,
                      TOL_BWD);
        }
    dev_release("matmul");
    tu_host_release();
}

/* ---------------------------------------------------------------- bias, elementwise, reductions, adamw */

typedef struct {
    int rows, cols, ld;
    double *bias, *R;
} bias_ctx;

static double bias_loss(void *v) {
    bias_ctx *c = v;
    double L = 0;
    for (int r = 0; r < c->rows; r++)
        for (int j = 0; j < c->cols; j++)
            L += c->R[(size_t)r * c->ld + j] * c->bias[j];
    return L;
}

static void test_dense(void) {
    /* add_bias / bias_grad on a 37 x 70 block with row stride 75 */
    int rows = 37, cols = 70, ld = 75;
    size_t ny = (size_t)rows * ld;
    float *y0 = tu_host_normal(ny, 1), *bias = tu_host_normal(cols, 1);
    ops_ptr py = upf(y0, ny), pb = upf(bias, cols);
    O->add_bias(O, py, pb, rows, cols, ld);
    double *ref = hd(ny);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            ref[(size_t)r * ld + c] = (double)y0[(size_t)r * ld + c] + bias[c];
    check_mat("add_bias", downf(py, ny), y0, ref, 0, rows, cols, ld, TOL_ELEM);

    float *dy = tu_host_normal(ny, 1), *db0 = tu_host_normal(cols, 1);
    bias_ctx bc = {rows, cols, ld, hdbl(bias, cols), hdbl(dy, ny)};
    double *gb = hd(cols);
    fd_grad(bias_loss, &bc, bc.bias, cols, gb);
    ops_ptr pdy = upf(dy, ny), pdb = upf(db0, cols);
    O->bias_grad(O, pdb, pdy, rows, cols, ld);
    check_vec("bias_grad", downf(pdb, cols), db0, gb, 1, cols, TOL_FWD);

    /* add (also aliased), scale */
    size_t n = 1001;
    float *x = tu_host_normal(n, 1), *a = tu_host_normal(n, 1), *yg = tu_host_normal(n, 1);
    ops_ptr px = upf(x, n), pa = upf(a, n), pyy = upf(yg, n);
    O->add(O, pyy, px, pa, n);
    double *sum = hd(n);
    for (size_t i = 0; i < n; i++)
        sum[i] = (double)x[i] + a[i];
    check_vec("add", downf(pyy, n), NULL, sum, 0, n, TOL_ELEM);
    O->add(O, px, px, pa, n); /* y aliases x */
    float *g1 = downf(px, n);
    O->from_host(O, px, x, n);
    O->add(O, pa, px, pa, n); /* y aliases a */
    float *g2 = downf(pa, n);
    double e1 = 0, e2 = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        e1 += (g1[i] - sum[i]) * (g1[i] - sum[i]);
        e2 += (g2[i] - sum[i]) * (g2[i] - sum[i]);
        den += sum[i] * sum[i];
    }
    tu_check_rel(sqrt((e1 > e2 ? e1 : e2) / den), TOL_ELEM, "add.alias");

    float *xs = tu_host_normal(n, 1);
    ops_ptr pxs = upf(xs, n);
    O->scale(O, pxs, -0.37f, n);
    double *sc = hd(n);
    for (size_t i = 0; i < n; i++)
        sc[i] = (double)xs[i] * (double)-0.37f;
    check_vec("scale", downf(pxs, n), NULL, sc, 0, n, TOL_ELEM);

    /* dropout of a 23 x 90 matrix, p = 0.3: whole, and as its column blocks [0, 40) and [40, 90) (a split
     * over two ranks) in place, against the definition (model/dropout_mask.h) */
    {
        int dr = 23, dc = 90, c0 = 40;
        uint64_t key = tu_next();
        uint32_t thr = (uint32_t)(0.3 * 16777216.0 + 0.5);
        size_t dn = (size_t)dr * dc;
        float *dx = tu_host_normal(dn, 1), *left = tu_host((size_t)dr * c0 * 4),
              *right = tu_host((size_t)dr * (dc - c0) * 4);
        double *dref = hd(dn), *dsplit = hd(dn);
        long kept = 0;
        for (int r = 0; r < dr; r++)
            for (int c = 0; c < dc; c++) {
                int keep = mt_dropout_keep(key, (uint64_t)r * dc + c, thr);
                dref[(size_t)r * dc + c] =
                    keep ? (double)dx[(size_t)r * dc + c] * (double)(1.0f / 0.7f) : 0.0;
                kept += keep;
                if (c < c0)
                    left[(size_t)r * c0 + c] = dx[(size_t)r * dc + c];
                else
                    right[(size_t)r * (dc - c0) + c - c0] = dx[(size_t)r * dc + c];
            }
        ops_ptr pdx = upf(dx, dn), pdy = upf(tu_host_normal(dn, 1), dn), pl = upf(left, (size_t)dr * c0),
                pr = upf(right, (size_t)dr * (dc - c0));
        O->dropout(O, pdy, pdx, dr, dc, 0, dc, thr, 1.0f / 0.7f, key);
        check_vec("dropout", downf(pdy, dn), NULL, dref, 0, dn, TOL_ELEM);
        O->dropout(O, pl, pl, dr, c0, 0, dc, thr, 1.0f / 0.7f, key);
        O->dropout(O, pr, pr, dr, dc - c0, c0, dc, thr, 1.0f / 0.7f, key);
        float *gl = downf(pl, (size_t)dr * c0), *gr = downf(pr, (size_t)dr * (dc - c0));
        for (int r = 0; r < dr; r++)
            for (int c = 0; c < dc; c++)
                dsplit[(size_t)r * dc + c] =
                    c < c0 ? gl[(size_t)r * c0 + c] : gr[(size_t)r * (dc - c0) + c - c0];
        double e = 0;
        for (size_t i = 0; i < dn; i++)
            e = fmax(e, fabs(dsplit[i] - dref[i]));
        tu_check(e <= 1e-6 * 4, "dropout.column split in place = whole", "max difference %.3e", e);
        /* the share kept: 1 - p within 5 standard deviations of a binomial over 2070 draws */
        double share = (double)kept / (double)dn, sd = sqrt(0.3 * 0.7 / (double)dn);
        tu_check(fabs(share - 0.7) < 5 * sd, "dropout.share kept", "%.4f of %zu kept, expected 0.7", share,
                 dn);
    }

    /* sumsq / dot over several of the backend's reduction chunks */
    size_t nr = 300007;
    float *ra = tu_host_normal(nr, 1), *rb = tu_host_normal(nr, 1);
    ops_ptr pra = upf(ra, nr), prb = upf(rb, nr);
    double ss = 0, dt = 0;
    for (size_t i = 0; i < nr; i++) {
        ss += (double)ra[i] * ra[i];
        dt += (double)ra[i] * rb[i];
    }
    double gss = O->sumsq(O, pra, nr), gdt = O->dot(O, pra, prb, nr);
    tu_check_rel(fabs(gss - ss) / fabs(ss), TOL_RED, "sumsq");
    tu_check_rel(fabs(gdt - dt) / fabs(dt), TOL_RED, "dot");

    /* adamw: two steps from zero moments, grad_scale != 1, wd > 0, some zero gradients */
    size_t np = 1037;
    float *p0 = tu_host_normal(np, 1), *gr[2] = {tu_host_normal(np, 1), tu_host_normal(np, 1)};
    for (size_t i = 0; i < np; i += 97)
        gr[0][i] = gr[1][i] = 0.0f;
    float gs = 0.37f, lr = 1e-2f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f;
    ops_ptr pp = upf(p0, np), pm = dev(np, OPS_F32), pv = dev(np, OPS_F32), pg = dev(np, OPS_F32);
    O->zero(O, pm, np);
    O->zero(O, pv, np);
    double *P = hdbl(p0, np), *M = hd(np), *V = hd(np);
    for (int t = 1; t <= 2; t++) {
        float bc1 = 1.0f - powf(b1, (float)t), bc2 = 1.0f - powf(b2, (float)t);
        O->from_host(O, pg, gr[t - 1], np);
        O->adamw(O, pp, pg, pm, pv, np, gs, lr, b1, b2, eps, wd, bc1, bc2);
        for (size_t i = 0; i < np; i++) {
            double g = (double)gs * gr[t - 1][i];
            M[i] = (double)b1 * M[i] + (1.0 - (double)b1) * g;
            V[i] = (double)b2 * V[i] + (1.0 - (double)b2) * g * g;
            double mh = M[i] / bc1, vh = V[i] / bc2;
            P[i] -= (double)lr * (mh / (sqrt(vh) + eps) + (double)wd * P[i]);
        }
    }
    double *dP = hd(np);
    for (size_t i = 0; i < np; i++)
        dP[i] = P[i] - p0[i];
    check_vec("adamw.p", downf(pp, np), p0, dP, 1, np, TOL_FWD); /* the update p - p0 */
    check_vec("adamw.m", downf(pm, np), NULL, M, 0, np, TOL_ELEM);
    check_vec("adamw.v", downf(pv, np), NULL, V, 0, np, TOL_ELEM);

    dev_release("dense");
    tu_host_release();
}

/* ---------------------------------------------------------------- layernorm, gelu */

static void ref_layernorm(const double *x, const double *g, const double *b, int rows, int cols, double eps,
                          double *y, double *mean, double *rstd) {
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * cols;
        double mu = 0, var = 0;
        for (int c = 0; c < cols; c++)
            mu += xr[c];
        mu /= cols;
        for (int c = 0; c < cols; c++)
            var += (xr[c] - mu) * (xr[c] - mu);
        var /= cols;
        double rs = 1.0 / sqrt(var + eps);
        if (mean)
            mean[r] = mu, rstd[r] = rs;
        for (int c = 0; c < cols; c++)
            y[(size_t)r * cols + c] = (xr[c] - mu) * rs * g[c] + b[c];
    }
}

typedef struct {
    int rows, cols;
    double eps, *x, *g, *b, *R, *y;
} ln_ctx;

static double ln_loss(void *v) {
    ln_ctx *c = v;
    ref_layernorm(c->x, c->g, c->b, c->rows, c->cols, c->eps, c->y, NULL, NULL);
    double L = 0;
    for (size_t i = 0; i < (size_t)c->rows * c->cols; i++)
        L += c->R[i] * c->y[i];
    return L;
}

static double ref_gelu(double x) {
    const double k = sqrt(2.0 / 3.14159265358979323846);
    return 0.5 * x * (1.0 + tanh(k * (x + 0.044715 * x * x * x)));
}

typedef struct {
    size_t n;
    double *x, *R;
} gelu_ctx;

static double gelu_loss(void *v) {
    gelu_ctx *c = v;
    double L = 0;
    for (size_t i = 0; i < c->n; i++)
        L += c->R[i] * ref_gelu(c->x[i]);
    return L;
}

static void test_norm(void) {
    int rows = 37, cols = 70;
    size_t nx = (size_t)rows * cols;
    float eps = 1e-5f;
    float *x = hf(nx), *g = hf(cols), *b = tu_host_normal(cols, 0.2);
    for (size_t i = 0; i < nx; i++)
        x[i] = (float)(0.7 + 1.5 * tu_normal());
    for (int c = 0; c < cols; c++)
        g[c] = (float)(1.0 + 0.3 * tu_normal());
    float *out0 = tu_host_normal(nx, 1), *mean0 = tu_host_normal(rows, 1), *rstd0 = tu_host_normal(rows, 1);
    ops_ptr px = upf(x, nx), pg = upf(g, cols), pb = upf(b, cols), pout = upf(out0, nx),
            pmean = upf(mean0, rows), prstd = upf(rstd0, rows);
    O->layernorm_fwd(O, pout, pmean, prstd, px, pg, pb, rows, cols, eps);
    double *y = hd(nx), *mu = hd(rows), *rs = hd(rows);
    ln_ctx lc = {rows, cols, eps, hdbl(x, nx), hdbl(g, cols), hdbl(b, cols), NULL, hd(nx)};
    ref_layernorm(lc.x, lc.g, lc.b, rows, cols, eps, y, mu, rs);
    check_vec("layernorm_fwd", downf(pout, nx), NULL, y, 0, nx, TOL_FWD);
    check_vec("layernorm_fwd.mean", downf(pmean, rows), NULL, mu, 0, rows, TOL_FWD);
    check_vec("layernorm_fwd.rstd", downf(prstd, rows), NULL, rs, 0, rows, TOL_FWD);

    float *dy = tu_host_normal(nx, 1), *dx0 = tu_host_normal(nx, 1), *dg0 = tu_host_normal(cols, 1),
          *db0 = tu_host_normal(cols, 1);
    lc.R = hdbl(dy, nx);
    double *gx = hd(nx), *gg = hd(cols), *gb = hd(cols);
    fd_grad(ln_loss, &lc, lc.x, nx, gx);
    fd_grad(ln_loss, &lc, lc.g, cols, gg);
    fd_grad(ln_loss, &lc, lc.b, cols, gb);
    ops_ptr pdy = upf(dy, nx), pdx = upf(dx0, nx), pdg = upf(dg0, cols), pdb = upf(db0, cols);
    O->layernorm_bwd(O, pdx, pdg, pdb, pdy, px, pmean, prstd, pg, rows, cols);
    check_vec("layernorm_bwd.dx", downf(pdx, nx), dx0, gx, 1, nx, TOL_BWD);
    check_vec("layernorm_bwd.dgamma", downf(pdg, cols), dg0, gg, 1, cols, TOL_BWD);
    check_vec("layernorm_bwd.dbeta", downf(pdb, cols), db0, gb, 1, cols, TOL_BWD);

    size_t n = 1001;
    float *gx_ = tu_host_normal(n, 2.5), *gy0 = tu_host_normal(n, 1);
    ops_ptr pgx = upf(gx_, n), pgy = upf(gy0, n);
    O->gelu_fwd(O, pgy, pgx, n);
    double *gref = hd(n);
    for (size_t i = 0; i < n; i++)
        gref[i] = ref_gelu(gx_[i]);
    check_vec("gelu_fwd", downf(pgy, n), NULL, gref, 0, n, TOL_FWD);

    float *gdy = tu_host_normal(n, 1), *gdx0 = tu_host_normal(n, 1);
    gelu_ctx gc = {n, hdbl(gx_, n), hdbl(gdy, n)};
    double *gd = hd(n);
    fd_grad(gelu_loss, &gc, gc.x, n, gd);
    ops_ptr pgdy = upf(gdy, n), pgdx = upf(gdx0, n);
    O->gelu_bwd(O, pgdx, pgx, pgdy, n);
    check_vec("gelu_bwd", downf(pgdx, n), NULL, gd, 0, n, TOL_BWD);
    O->gelu_bwd(O, pgdy, pgx, pgdy, n); /* dx aliases dy */
    check_vec("gelu_bwd.alias", downf(pgdy, n), NULL, gd, 0, n, TOL_BWD);

    /* Element by element over the whole range, tails included, where gelu is e^-(cubic) small: v from -15
     * to 15 by 1/64, and +-1e30; each within 2e-5 of its own value (or 1e-30 absolute): in the tails the
     * exponent z = -2u (up to 88) is itself rounded to fp32, so e^z carries |z| 2^-24. The reference is
     * ref_gelu rewritten as v / (1 + e^-2u) (0.5 (1 + tanh u) = 1 / (1 + e^-2u)), which keeps its
     * precision where 1 + tanh(u) cancels to 0 even in double (v < -6). */
    size_t ns = 30 * 64 + 3;
    float *sx = hf(ns);
    for (size_t i = 0; i + 2 < ns; i++)
        sx[i] = -15.0f + (float)i / 64;
    sx[ns - 2] = -1e30f;
    sx[ns - 1] = 1e30f;
    ops_ptr psx = upf(sx, ns), psy = upf(sx, ns);
    O->gelu_fwd(O, psy, psx, ns);
    float *sy = downf(psy, ns);
    double worst = 0;
    for (size_t i = 0; i < ns; i++) {
        double v = sx[i], u = sqrt(2.0 / 3.14159265358979323846) * (v + 0.044715 * v * v * v);
        double want = v == -1e30f ? 0.0 : v == 1e30f ? 1e30 : v / (1.0 + exp(-2.0 * u));
        double e = fabs(sy[i] - want) / fmax(fabs(want), 1e-30);
        worst = e > worst || isnan(e) ? e : worst;
    }
    tu_check_rel(worst, 2e-5, "gelu_fwd.every value in [-15, 15] and +-1e30, elementwise");

    dev_release("norm");
    tu_host_release();
}

/* ---------------------------------------------------------------- rotary */

/* GPT-J rotate_every_two: pair (2i, 2i+1) of the first rot features of each head turns by the angle
 * whose cos / sin are cs[t, i] / cs[t, rot/2 + i], t = row % T. */
static void ref_rotary(double *x, const double *cs, int B, int T, int H, int dh, int rot, int ld) {
    for (int r = 0; r < B * T; r++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < rot / 2; i++) {
                double c = cs[(size_t)(r % T) * rot + i], s = cs[(size_t)(r % T) * rot + rot / 2 + i];
                double *p = x + (size_t)r * ld + (size_t)h * dh + 2 * i;
                double x0 = p[0], x1 = p[1];
                p[0] = x0 * c - x1 * s;
                p[1] = x1 * c + x0 * s;
            }
}

typedef struct {
    int B, T, H, dh, rot, ld;
    double *cs, *x, *R, *tmp;
} rot_ctx;

static double rot_loss(void *v) {
    rot_ctx *c = v;
    size_t n = (size_t)c->B * c->T * c->ld;
    memcpy(c->tmp, c->x, n * sizeof(double));
    ref_rotary(c->tmp, c->cs, c->B, c->T, c->H, c->dh, c->rot, c->ld);
    double L = 0;
    for (size_t i = 0; i < n; i++)
        L += c->R[i] * c->tmp[i];
    return L;
}

static float *rope_table(int T, int rot) {
    float *cs = hf((size_t)T * rot);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < rot / 2; i++) {
            double ang = t * pow(10000.0, -2.0 * i / rot);
            cs[(size_t)t * rot + i] = (float)cos(ang);
            cs[(size_t)t * rot + rot / 2 + i] = (float)sin(ang);
        }
    return cs;
}

static void test_rotary(void) {
    /* rot_dim 6 < dh 8, ld 29 > H * dh: features 6, 7 of each head and the 5 padding columns pass */
    int B = 2, T = 13, H = 3, dh = 8, rot = 6, ld = 29;
    size_t n = (size_t)B * T * ld;
    float *cs = rope_table(T, rot), *x = tu_host_normal(n, 1);
    ops_ptr pcs = upf(cs, (size_t)T * rot), px = upf(x, n);
    O->rotary_fwd(O, px, pcs, B, T, H, dh, rot, ld);
    rot_ctx rc = {B, T, H, dh, rot, ld, hdbl(cs, (size_t)T * rot), hdbl(x, n), NULL, hd(n)};
    double *ref = hdbl(x, n);
    ref_rotary(ref, rc.cs, B, T, H, dh, rot, ld);
    check_vec("rotary_fwd", downf(px, n), NULL, ref, 0, n, TOL_ELEM);

    float *dy = tu_host_normal(n, 1);
    rc.R = hdbl(dy, n);
    double *g = hd(n);
    fd_grad(rot_loss, &rc, rc.x, n, g);
    ops_ptr pdx = upf(dy, n);
    O->rotary_bwd(O, pdx, pcs, B, T, H, dh, rot, ld);
    check_vec("rotary_bwd", downf(pdx, n), NULL, g, 0, n, TOL_BWD);

    /* SPEC 1.3 worked example: x = (k+1)/64, k < 64, at position 5, r = dh = 64 */
    int T5 = 6, r64 = 64;
    float *cs64 = rope_table(T5, r64), *xs = hf((size_t)T5 * r64);
    for (int k = 0; k < r64; k++)
        xs[5 * r64 + k] = (float)(k + 1) / 64.0f;
    ops_ptr pcs64 = upf(cs64, (size_t)T5 * r64), pxs = upf(xs, (size_t)T5 * r64);
    O->rotary_fwd(O, pxs, pcs64, 1, T5, 1, r64, r64, r64);
    float *gs = downf(pxs, (size_t)T5 * r64) + 5 * r64;
    float got[6] = {gs[0], gs[1], gs[2], gs[3], gs[62], gs[63]};
    double want[6] = {0.034398605, -0.006118748, -0.002782436, -0.078075436, 0.983708021, 1.000656120};
    tu_check_rel(tu_rel_err_fd(got, want, 6), 1e-6, "rotary_fwd.spec_example");

    dev_release("rotary");
    tu_host_release();
}

/* ---------------------------------------------------------------- attention */

/* out[b, i, h] = sum_j p_ij v[b, j, h], p = softmax_j(scale * q[b, i, h] . k[b, j, h]) over the keys
 * j <= i with i - j < window; probs [B, H, T, T] with zeros at the masked positions. */
static void ref_attention(const ops_attn_shape *s, const double *q, const double *k, const double *v,
                          double *out, double *probs) {
    double sc[256];
    int T = s->T, dh = s->dh;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++)
            for (int i = 0; i < T; i++) {
                const double *qi = q + ((size_t)b * T + i) * s->ld_qkv + (size_t)h * dh;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= i; j++) {
                    if (i - j >= s->window)
                        continue;
                    const double *kj = k + ((size_t)b * T + j) * s->ld_qkv + (size_t)h * dh;
                    double d = 0;
                    for (int e = 0; e < dh; e++)
                        d += qi[e] * kj[e];
                    sc[j] = (double)s->scale * d;
                    if (sc[j] > mx)
                        mx = sc[j];
                }
                for (int j = 0; j <= i; j++)
                    if (i - j < s->window)
                        sum += exp(sc[j] - mx);
                double *o = out + ((size_t)b * T + i) * s->ld_out + (size_t)h * dh;
                for (int e = 0; e < dh; e++)
                    o[e] = 0;
                for (int j = 0; j < T; j++) {
                    int vis = j <= i && i - j < s->window;
                    double p = vis ? exp(sc[j] - mx) / sum : 0.0;
                    if (probs)
                        probs[(((size_t)b * s->H + h) * T + i) * T + j] = p;
                    if (!vis)
                        continue;
                    const double *vj = v + ((size_t)b * T + j) * s->ld_qkv + (size_t)h * dh;
                    for (int e = 0; e < dh; e++)
                        o[e] += p * vj[e];
                }
            }
}

typedef struct {
    const ops_attn_shape *s;
    double *q, *k, *v, *R, *out;
} att_ctx;

static double att_loss(void *v) {
    att_ctx *c = v;
    const ops_attn_shape *s = c->s;
    ref_attention(s, c->q, c->k, c->v, c->out, NULL);
    double L = 0;
    for (int r = 0; r < s->B * s->T; r++)
        for (int j = 0; j < s->H * s->dh; j++)
            L += c->R[(size_t)r * s->ld_out + j] * c->out[(size_t)r * s->ld_out + j];
    return L;
}

static void test_attention(void) {
    static const struct {
        const char *tag;
        int B, T, H, dh, ld_qkv, ld_out, window, scaled;
    } cases[] = {
        {"causal", 2, 13, 3, 8, 24, 24, 13, 1},
        {"local5.ld29.unscaled", 2, 13, 3, 8, 29, 27, 5, 0},
        {"win40.ldout31", 2, 13, 3, 8, 24, 31, 40, 1},
        {"local3.dh5", 3, 9, 2, 5, 11, 10, 3, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ops_attn_shape s = {
            cases[ci].B,      cases[ci].T,
            cases[ci].H,      cases[ci].dh,
            cases[ci].ld_qkv, cases[ci].ld_out,
            cases[ci].window, cases[ci].scaled ? (float)(1.0 / sqrt((double)cases[ci].dh)) : 1.0f};
        const char *tag = cases[ci].tag;
        int rows = s.B * s.T, w = s.H * s.dh;
        size_t nq = (size_t)rows * s.ld_qkv, no = (size_t)rows * s.ld_out, np = (size_t)s.B * s.H * s.T * s.T;
        float *q = tu_host_normal(nq, 1), *k = tu_host_normal(nq, 1), *v = tu_host_normal(nq, 1),
              *out0 = tu_host_normal(no, 1), *probs0 = tu_host_normal(np, 1);
        ops_ptr pq = upf(q, nq), pk = upf(k, nq), pv = upf(v, nq), pout = upf(out0, no),
                pprobs = upf(probs0, np);
        O->attention_fwd(O, pout, pprobs, pq, pk, pv, &s);
        att_ctx ac = {&s, hdbl(q, nq), hdbl(k, nq), hdbl(v, nq), NULL, hd(no)};
        double *ref = hd(no), *pref = hd(np);
        ref_attention(&s, ac.q, ac.k, ac.v, ref, pref);
        check_mat(tu_name("attention_fwd[%s]", tag), downf(pout, no), out0, ref, 0, rows, w, s.ld_out,
                  TOL_FWD);
        check_vec(tu_name("attention_fwd.probs[%s]", tag), downf(pprobs, np), NULL, pref, 0, np, TOL_FWD);

        /* dout with garbage in its padding columns; dq, dk, dv, scratch start as garbage */
        float *dout = tu_host_normal(no, 1), *dq0 = tu_host_normal(nq, 1), *dk0 = tu_host_normal(nq, 1),
              *dv0 = tu_host_normal(nq, 1), *scr = tu_host_normal(np, 1);
        ac.R = hdbl(dout, no);
        double *gq = hd(nq), *gk = hd(nq), *gv = hd(nq);
        fd_grad(att_loss, &ac, ac.q, nq, gq);
        fd_grad(att_loss, &ac, ac.k, nq, gk);
        fd_grad(att_loss, &ac, ac.v, nq, gv);
        ops_ptr pdout = upf(dout, no), pdq = upf(dq0, nq), pdk = upf(dk0, nq), pdv = upf(dv0, nq),
                pscr = upf(scr, np);
        O->attention_bwd(O, pdq, pdk, pdv, pscr, pdout, pq, pk, pv, pprobs, &s);
        check_mat(tu_name("attention_bwd.dq[%s]", tag), downf(pdq, nq), dq0, gq, 0, rows, w, s.ld_qkv,
                  TOL_BWD);
        check_mat(tu_name("attention_bwd.dk[%s]", tag), downf(pdk, nq), dk0, gk, 0, rows, w, s.ld_qkv,
                  TOL_BWD);
        check_mat(tu_name("attention_bwd.dv[%s]", tag), downf(pdv, nq), dv0, gv, 0, rows, w, s.ld_qkv,
                  TOL_BWD);
        tu_host_release();
    }
    dev_release("attention");
}

/* One decoding step (ops_step_shape): sequence b's query at position pos against the cached positions j with
 * j <= pos and pos - j < window, position j in row b * slots + j % slots of k and v. */
static void ref_attention_step(const ops_step_shape *s, const double *q, const double *k, const double *v,
                               double *out) {
    int dh = s->dh;
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            double *sc = hd((size_t)s->window), mx = -INFINITY, sum = 0;
            int j0 = s->pos - s->window + 1 > 0 ? s->pos - s->window + 1 : 0;
            for (int j = j0; j <= s->pos; j++) {
                const double *kj =
                    k + ((size_t)b * s->slots + (size_t)(j % s->slots)) * s->ld_kv + (size_t)h * dh;
                double d = 0;
                for (int e = 0; e < dh; e++)
                    d += q[(size_t)b * s->ld_q + (size_t)h * dh + e] * kj[e];
                sc[j - j0] = (double)s->scale * d;
                mx = fmax(mx, sc[j - j0]);
            }
            for (int j = j0; j <= s->pos; j++)
                sum += exp(sc[j - j0] - mx);
            double *o = out + (size_t)b * s->ld_out + (size_t)h * dh;
            for (int e = 0; e < dh; e++)
                o[e] = 0;
            for (int j = j0; j <= s->pos; j++) {
                const double *vj =
                    v + ((size_t)b * s->slots + (size_t)(j % s->slots)) * s->ld_kv + (size_t)h * dh;
                for (int e = 0; e < dh; e++)
                    o[e] += exp(sc[j - j0] - mx) / sum * vj[e];
            }
        }
}

static void test_attention_step(void) {
    /* a whole cache (slots = window), a ring that has wrapped, a window shorter than the ring, position 0,
     * and a long one */
    static const struct {
        const char *tag;
        int B, H, dh, ld_q, ld_kv, ld_out, slots, pos, window, scaled;
    } cases[] = {
        {"global", 2, 3, 8, 25, 26, 27, 13, 9, 13, 1},
        {"ring.wrapped", 2, 3, 8, 24, 24, 24, 5, 11, 5, 1},
        {"ring.window3.unscaled", 3, 2, 5, 11, 13, 10, 5, 12, 3, 0},
        {"pos0", 2, 3, 8, 24, 24, 24, 13, 0, 13, 1},
        /* long enough to run on both threads, which split the 15 (sequence, head) pairs inside sequence 1 */
        {"pos590.threads", 3, 5, 16, 80, 83, 81, 600, 590, 600, 1},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ops_step_shape s = {
            cases[ci].B,      cases[ci].H,
            cases[ci].dh,     cases[ci].ld_q,
            cases[ci].ld_kv,  cases[ci].ld_out,
            cases[ci].slots,  cases[ci].pos,
            cases[ci].window, cases[ci].scaled ? (float)(1.0 / sqrt((double)cases[ci].dh)) : 1.0f};
        int w = s.H * s.dh;
        size_t nq = (size_t)s.B * s.ld_q, nkv = (size_t)s.B * s.slots * s.ld_kv, no = (size_t)s.B * s.ld_out,
               nsc = (size_t)s.B * s.H * s.slots;
        float *q = tu_host_normal(nq, 1), *k = tu_host_normal(nkv, 1), *v = tu_host_normal(nkv, 1),
              *out0 = tu_host_normal(no, 1);
        ops_ptr pout = upf(out0, no), pscr = upf(tu_host_normal(nsc, 1), nsc);
        O->attention_step(O, pout, pscr, upf(q, nq), upf(k, nkv), upf(v, nkv), &s);
        double *ref = hd(no);
        ref_attention_step(&s, hdbl(q, nq), hdbl(k, nkv), hdbl(v, nkv), ref);
        check_mat(tu_name("attention_step[%s]", cases[ci].tag), downf(pout, no), out0, ref, 0, s.B, w,
                  s.ld_out, TOL_FWD);
        tu_host_release();
    }
    dev_release("attention_step");
}

/* ---------------------------------------------------------------- embeddings */

typedef struct {
    int n, d, row_start, rows;
    const int32_t *ids;
    double *wte, *R;
} emb_ctx;

static double emb_loss(void *v) {
    emb_ctx *c = v;
    double L = 0;
    for (int i = 0; i < c->n; i++) {
        int row = c->ids[i] - c->row_start;
        if (row < 0 || row >= c->rows)
            continue;
        for (int j = 0; j < c->d; j++)
            L += c->R[(size_t)i * c->d + j] * c->wte[(size_t)row * c->d + j];
    }
    return L;
}

typedef struct {
    int B, T, d;
    double *wpe, *R;
} pos_ctx;

static double pos_loss(void *v) {
    pos_ctx *c = v;
    double L = 0;
    for (int b = 0; b < c->B; b++)
        for (int t = 0; t < c->T; t++)
            for (int j = 0; j < c->d; j++)
                L += c->R[((size_t)b * c->T + t) * c->d + j] * c->wpe[(size_t)t * c->d + j];
    return L;
}

static void test_embed(void) {
    /* this rank holds vocabulary rows [50, 90); ids from [30, 110), with repeats and both edges */
    int n = 37, d = 70, row_start = 50, rows = 40;
    int32_t *ids = hi(n);
    for (int i = 0; i < n; i++)
        ids[i] = 30 + tu_int(80);
    ids[0] = 49, ids[1] = 50, ids[2] = 89, ids[3] = 90, ids[4] = ids[5] = ids[6] = 61;
    size_t nw = (size_t)rows * d, no = (size_t)n * d;
    float *wte = tu_host_normal(nw, 1), *out0 = tu_host_normal(no, 1);
    ops_ptr pids = upi(ids, n), pwte = upf(wte, nw), pout = upf(out0, no);
    O->embed_fwd(O, pout, pids, pwte, n, d, row_start, rows);
    double *ref = hd(no);
    for (int i = 0; i < n; i++) {
        int row = ids[i] - row_start;
        for (int j = 0; j < d; j++)
            ref[(size_t)i * d + j] = (row >= 0 && row < rows) ? wte[(size_t)row * d + j] : 0.0;
    }
    check_vec("embed_fwd", downf(pout, no), NULL, ref, 0, no, TOL_EXACT);

    float *dout = tu_host_normal(no, 1), *dw0 = tu_host_normal(nw, 1);
    emb_ctx ec = {n, d, row_start, rows, ids, hdbl(wte, nw), hdbl(dout, no)};
    double *g = hd(nw);
    fd_grad(emb_loss, &ec, ec.wte, nw, g);
    ops_ptr pdout = upf(dout, no), pdw = upf(dw0, nw);
    O->embed_bwd(O, pdw, pids, pdout, n, d, row_start, rows);
    check_vec("embed_bwd", downf(pdw, nw), dw0, g, 1, nw, TOL_FWD);

    /* positions: wpe has n_ctx = 17 rows of which T = 13 are used; dwpe rows >= T must not change */
    int B = 3, T = 13, nctx = 17;
    size_t nx = (size_t)B * T * d, np = (size_t)nctx * d;
    float *x0 = tu_host_normal(nx, 1), *wpe = tu_host_normal(np, 1);
    ops_ptr px = upf(x0, nx), pwpe = upf(wpe, np);
    O->pos_fwd(O, px, pwpe, B, T, d);
    double *pref = hd(nx);
    for (int r = 0; r < B * T; r++)
        for (int j = 0; j < d; j++)
            pref[(size_t)r * d + j] = (double)x0[(size_t)r * d + j] + wpe[(size_t)(r % T) * d + j];
    check_vec("pos_fwd", downf(px, nx), NULL, pref, 0, nx, TOL_ELEM);

    float *pdy = tu_host_normal(nx, 1), *dwpe0 = tu_host_normal(np, 1);
    pos_ctx pc = {B, T, d, hdbl(wpe, np), hdbl(pdy, nx)};
    double *gp = hd(np);
    fd_grad(pos_loss, &pc, pc.wpe, np, gp);
    ops_ptr ppdy = upf(pdy, nx), pdwpe = upf(dwpe0, np);
    O->pos_bwd(O, pdwpe, ppdy, B, T, d);
    check_vec("pos_bwd", downf(pdwpe, np), dwpe0, gp, 1, np, TOL_FWD);

    dev_release("embed");
    tu_host_release();
}

/* ---------------------------------------------------------------- cross-entropy */

/* The loss of the whole (combined) softmax as d loss / d logits sees it: with the pieces combined over
 * ranks, loss = log S - tgt + z lse^2 = lse - logit[target] + z lse^2 (rowmax cancels); a target on
 * another rank contributes a constant. Here this rank is the only one holding softmax columns. */
typedef struct {
    const ops_ce_shape *s;
    const int32_t *tg;
    double *w, *L, z;
} ce_ctx;

static double ce_total(void *v) {
    ce_ctx *c = v;
    const ops_ce_shape *s = c->s;
    double total = 0;
    for (int i = 0; i < s->N; i++) {
        const double *l = c->L + (size_t)i * s->ld;
        double mx = -INFINITY, S = 0;
        for (int j = 0; j < s->ncols; j++)
            mx = l[j] > mx ? l[j] : mx;
        for (int j = 0; j < s->ncols; j++)
            S += exp(l[j] - mx);
        double lse = mx + log(S);
        int t = c->tg[i] - s->col_start;
        total += c->w[i] * (lse - ((t >= 0 && t < s->ncols) ? l[t] : 0.0) + c->z * lse * lse);
    }
    return total;
}

static void test_ce(void) {
    static const struct {
        const char *tag;
        int N, ld, ncols, col_start;
        float z;
    } cases[] = {
        {"shard", 37, 70, 53, 211, 0.0f}, /* holds the loss_vocab edge: ncols < ld */
        {"zloss", 29, 45, 45, 90, 0.05f}, /* a middle rank; targets on both sides */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        ops_ce_shape s = {cases[ci].N, cases[ci].ld, cases[ci].ncols, cases[ci].col_start};
        const char *tag = cases[ci].tag;
        float z = cases[ci].z;
        int N = s.N, full = s.ncols == s.ld;
        size_t nl = (size_t)N * s.ld;
        int32_t *tg = hi(N);
        float *w = hf(N);
        for (int i = 0; i < N; i++) {
            /* targets < loss_vocab: left of this rank, local, or (when ncols == ld) right of it */
            int lo = s.col_start - 25, hi_ = s.col_start + (full ? s.ld + 25 : s.ncols);
            tg[i] = lo + tu_int(hi_ - lo);
            w[i] = (i % 5 == 4) ? 0.0f : (float)(0.2 + 1.3 * tu_uniform());
        }
        tg[0] = s.col_start - 1, tg[1] = 0, tg[2] = s.col_start, tg[3] = s.col_start + s.ncols - 1;
        if (full)
            tg[5] = s.col_start + s.ld + 3;
        float *L = tu_host_normal(nl, 2.0);
        int outside = 0;
        for (int i = 0; i < N; i++)
            outside += tg[i] < s.col_start || tg[i] >= s.col_start + s.ncols;
        printf("# ce[%s]: %d of %d targets outside the local columns\n", tag, outside, N);

        /* ce_rowmax */
        float *m0 = tu_host_normal(N, 1);
        ops_ptr pL = upf(L, nl), ptg = upi(tg, N), pm = upf(m0, N);
        O->ce_rowmax(O, pm, pL, &s);
        double *mref = hd(N);
        float *mloc = hf(N);
        for (int i = 0; i < N; i++) {
            float mx = -INFINITY;
            for (int j = 0; j < s.ncols; j++)
                mx = L[(size_t)i * s.ld + j] > mx ? L[(size_t)i * s.ld + j] : mx;
            mloc[i] = mx, mref[i] = mx;
        }
        check_vec(tu_name("ce_rowmax[%s]", tag), downf(pm, N), NULL, mref, 0, N, TOL_EXACT);

        /* ce_sumexp with a rowmax above the local one on even rows (the all-reduced max) */
        float *min_ = hf(N), *S0 = tu_host_normal(N, 1), *t0 = tu_host_normal(N, 1);
        for (int i = 0; i < N; i++)
            min_[i] = mloc[i] + (i % 2 ? 0.0f : (float)tu_uniform());
        ops_ptr pmin = upf(min_, N), pS = upf(S0, N), pt = upf(t0, N);
        O->ce_sumexp(O, pS, pt, pL, pmin, ptg, &s);
        double *Sref = hd(N), *tref = hd(N);
        for (int i = 0; i < N; i++) {
            const float *l = L + (size_t)i * s.ld;
            double S = 0;
            for (int j = 0; j < s.ncols; j++)
                S += exp((double)l[j] - min_[i]);
            int t = tg[i] - s.col_start;
            Sref[i] = S;
            tref[i] = (t >= 0 && t < s.ncols) ? (double)l[t] - min_[i] : 0.0;
        }
        float *Sg = downf(pS, N), *tgot = downf(pt, N);
        check_vec(tu_name("ce_sumexp[%s]", tag), Sg, NULL, Sref, 0, N, TOL_FWD);
        check_vec(tu_name("ce_sumexp.tgt[%s]", tag), tgot, NULL, tref, 0, N, TOL_ELEM);

        /* ce_loss from those pieces */
        float *loss0 = tu_host_normal(N, 1);
        ops_ptr ploss = upf(loss0, N);
        O->ce_loss(O, ploss, pmin, pS, pt, z, N);
        double *lref = hd(N);
        for (int i = 0; i < N; i++) {
            double lse = (double)min_[i] + log((double)Sg[i]);
            lref[i] = log((double)Sg[i]) - tgot[i] + (double)z * lse * lse;
        }
        check_vec(tu_name("ce_loss[%s]", tag), downf(ploss, N), NULL, lref, 0, N, TOL_FWD);

        /* ce_bwd with this rank's (exact) rowmax and sumexp, against d(sum_i w_i loss_i)/d logits */
        float *Sl = hf(N);
        for (int i = 0; i < N; i++) {
            double S = 0;
            for (int j = 0; j < s.ncols; j++)
                S += exp((double)L[(size_t)i * s.ld + j] - mloc[i]);
            Sl[i] = (float)S;
        }
        ce_ctx cc = {&s, tg, hdbl(w, N), hdbl(L, nl), z};
        double *g = hd(nl);
        fd_grad(ce_total, &cc, cc.L, nl, g);
        ops_ptr pG = upf(L, nl), pml = upf(mloc, N), pSl = upf(Sl, N), pw = upf(w, N);
        O->ce_bwd(O, pG, pml, pSl, ptg, pw, z, &s);
        check_vec(tu_name("ce_bwd[%s]", tag), downf(pG, nl), NULL, g, 0, nl, TOL_BWD);
        tu_host_release();
    }
    dev_release("ce");
}

/* ---------------------------------------------------------------- determinism over thread counts */

typedef struct {
    /* layernorm_bwd */
    int ln_rows, ln_cols;
    float *ln_x, *ln_g, *ln_b, *ln_dy, *ln_dx0, *ln_dg0, *ln_db0;
    /* bias_grad */
    int bg_rows, bg_cols, bg_ld;
    float *bg_dy, *bg_db0;
    /* embed_bwd */
    int em_n, em_d, em_start, em_rows;
    int32_t *em_ids;
    float *em_dy, *em_dw0;
    /* pos_bwd */
    int ps_B, ps_T, ps_d;
    float *ps_dy, *ps_dw0;
    /* attention */
    ops_attn_shape at;
    float *at_q, *at_k, *at_v, *at_dy;
    /* attention_step */
    ops_step_shape st;
    float *st_q, *st_k, *st_v;
    /* sumsq, dot */
    size_t rd_n;
    float *rd_a, *rd_b;
} det_in;

typedef struct {
    float *ln, *bg, *em, *ps, *at, *st;
    double red[2];
} det_out;

static const float *det_field(const det_out *o, int op) {
    const float *f[6] = {o->ln, o->bg, o->em, o->ps, o->at, o->st};
    return f[op];
}

enum { DET_OPS = 6 };

static size_t det_sizes(const det_in *d, size_t sz[DET_OPS]) {
    size_t nq = (size_t)d->at.B * d->at.T * d->at.ld_qkv;
    sz[0] = (size_t)d->ln_rows * d->ln_cols + 2 * (size_t)d->ln_cols;
    sz[1] = (size_t)d->bg_cols;
    sz[2] = (size_t)d->em_rows * d->em_d;
    sz[3] = (size_t)d->ps_T * d->ps_d;
    sz[4] = 3 * nq;
    sz[5] = (size_t)d->st.B * d->st.ld_out;
    return nq;
}

static void det_run(const det_in *d, det_out *out) {
    size_t sz[DET_OPS], nq = det_sizes(d, sz);
    size_t nx = (size_t)d->ln_rows * d->ln_cols;
    ops_ptr x = upf(d->ln_x, nx), g = upf(d->ln_g, d->ln_cols), b = upf(d->ln_b, d->ln_cols);
    ops_ptr y = dev(nx, OPS_F32), mu = dev(d->ln_rows, OPS_F32), rs = dev(d->ln_rows, OPS_F32);
    O->layernorm_fwd(O, y, mu, rs, x, g, b, d->ln_rows, d->ln_cols, 1e-5f);
    ops_ptr dy = upf(d->ln_dy, nx), dx = upf(d->ln_dx0, nx), dg = upf(d->ln_dg0, d->ln_cols),
            db = upf(d->ln_db0, d->ln_cols);
    O->layernorm_bwd(O, dx, dg, db, dy, x, mu, rs, g, d->ln_rows, d->ln_cols);
    out->ln = hf(sz[0]);
    O->to_host(O, out->ln, dx, nx);
    O->to_host(O, out->ln + nx, dg, d->ln_cols);
    O->to_host(O, out->ln + nx + d->ln_cols, db, d->ln_cols);

    ops_ptr bdy = upf(d->bg_dy, (size_t)d->bg_rows * d->bg_ld), bdb = upf(d->bg_db0, d->bg_cols);
    O->bias_grad(O, bdb, bdy, d->bg_rows, d->bg_cols, d->bg_ld);
    out->bg = downf(bdb, sz[1]);

    ops_ptr ids = upi(d->em_ids, d->em_n), edy = upf(d->em_dy, (size_t)d->em_n * d->em_d),
            edw = upf(d->em_dw0, sz[2]);
    O->embed_bwd(O, edw, ids, edy, d->em_n, d->em_d, d->em_start, d->em_rows);
    out->em = downf(edw, sz[2]);

    ops_ptr pdy = upf(d->ps_dy, (size_t)d->ps_B * d->ps_T * d->ps_d), pdw = upf(d->ps_dw0, sz[3]);
    O->pos_bwd(O, pdw, pdy, d->ps_B, d->ps_T, d->ps_d);
    out->ps = downf(pdw, sz[3]);

    const ops_attn_shape *s = &d->at;
    size_t no = (size_t)s->B * s->T * s->ld_out, np = (size_t)s->B * s->H * s->T * s->T;
    ops_ptr q = upf(d->at_q, nq), k = upf(d->at_k, nq), v = upf(d->at_v, nq), ao = dev(no, OPS_F32),
            pr = dev(np, OPS_F32), ady = upf(d->at_dy, no), dq = dev(nq, OPS_F32), dk = dev(nq, OPS_F32),
            dv = dev(nq, OPS_F32), scr = dev(np, OPS_F32);
    O->attention_fwd(O, ao, pr, q, k, v, s);
    O->attention_bwd(O, dq, dk, dv, scr, ady, q, k, v, pr, s);
    out->at = hf(sz[4]);
    O->to_host(O, out->at, dq, nq);
    O->to_host(O, out->at + nq, dk, nq);
    O->to_host(O, out->at + 2 * nq, dv, nq);

    const ops_step_shape *st = &d->st;
    size_t nkv = (size_t)st->B * st->slots * st->ld_kv;
    ops_ptr so = dev(sz[5], OPS_F32), sscr = dev((size_t)st->B * st->H * st->slots, OPS_F32);
    O->attention_step(O, so, sscr, upf(d->st_q, (size_t)st->B * st->ld_q), upf(d->st_k, nkv),
                      upf(d->st_v, nkv), st);
    out->st = downf(so, sz[5]);

    ops_ptr ra = upf(d->rd_a, d->rd_n), rb = upf(d->rd_b, d->rd_n);
    out->red[0] = O->sumsq(O, ra, d->rd_n);
    out->red[1] = O->dot(O, ra, rb, d->rd_n);
}

static void test_determinism(void) {
    det_in d = {0};
    d.ln_rows = 333, d.ln_cols = 150; /* three column blocks of 64 */
    size_t nx = (size_t)d.ln_rows * d.ln_cols;
    d.ln_x = tu_host_normal(nx, 1), d.ln_g = tu_host_normal(d.ln_cols, 1),
    d.ln_b = tu_host_normal(d.ln_cols, 1);
    d.ln_dy = tu_host_normal(nx, 1), d.ln_dx0 = tu_host_normal(nx, 1),
    d.ln_dg0 = tu_host_normal(d.ln_cols, 1), d.ln_db0 = tu_host_normal(d.ln_cols, 1);
    d.bg_rows = 333, d.bg_cols = 150, d.bg_ld = 155;
    d.bg_dy = tu_host_normal((size_t)d.bg_rows * d.bg_ld, 1), d.bg_db0 = tu_host_normal(d.bg_cols, 1);
    d.em_n = 500, d.em_d = 150, d.em_start = 13, d.em_rows = 97;
    d.em_ids = hi(d.em_n);
    for (int i = 0; i < d.em_n; i++)
        d.em_ids[i] = tu_int(120);
    d.em_dy = tu_host_normal((size_t)d.em_n * d.em_d, 1),
    d.em_dw0 = tu_host_normal((size_t)d.em_rows * d.em_d, 1);
    d.ps_B = 5, d.ps_T = 37, d.ps_d = 150;
    d.ps_dy = tu_host_normal((size_t)d.ps_B * d.ps_T * d.ps_d, 1),
    d.ps_dw0 = tu_host_normal((size_t)d.ps_T * d.ps_d, 1);
    d.at = (ops_attn_shape){2, 37, 4, 16, 67, 64, 11, 0.25f};
    size_t nq = (size_t)d.at.B * d.at.T * d.at.ld_qkv;
    d.at_q = tu_host_normal(nq, 1), d.at_k = tu_host_normal(nq, 1), d.at_v = tu_host_normal(nq, 1);
    d.at_dy = tu_host_normal((size_t)d.at.B * d.at.T * d.at.ld_out, 1);
    d.st = (ops_step_shape){3, 5, 16, 80, 83, 81, 600, 590, 600, 0.25f}; /* two threads split sequence 1 */
    d.st_q = tu_host_normal((size_t)d.st.B * d.st.ld_q, 1);
    d.st_k = tu_host_normal((size_t)d.st.B * d.st.slots * d.st.ld_kv, 1);
    d.st_v = tu_host_normal((size_t)d.st.B * d.st.slots * d.st.ld_kv, 1);
    d.rd_n = 300007;
    d.rd_a = tu_host_normal(d.rd_n, 1), d.rd_b = tu_host_normal(d.rd_n, 1);

    /* ops_cpu_create sets the process-wide OpenMP / OpenBLAS thread counts, so the two backends are
     * created one after the other, each used (twice) while it is the current one. */
    det_out res[2][2];
    for (int ti = 0; ti < 2; ti++) {
        int threads = ti + 1;
        O = ops_cpu_create(threads);
        int team = 0;
#pragma omp parallel
        {
#pragma omp single
            team = omp_get_num_threads();
        }
        char group[32];
        snprintf(group, sizeof group, "determinism.threads%d", threads);
        tu_check(team == threads, group, "backend for %d threads runs %d", threads, team);
        det_run(&d, &res[ti][0]);
        det_run(&d, &res[ti][1]);
        dev_release(group);
        O->destroy(O);
        O = NULL;
    }
    size_t sz[DET_OPS];
    det_sizes(&d, sz);
    static const char *names[DET_OPS] = {"layernorm_bwd", "bias_grad",     "embed_bwd",
                                         "pos_bwd",       "attention_bwd", "attention_step"};
    for (int op = 0; op < DET_OPS; op++) {
        const float *base = det_field(&res[0][0], op);
        int ok = 1;
        for (int ti = 0; ti < 2; ti++)
            for (int run = 0; run < 2; run++)
                ok = ok && same(det_field(&res[ti][run], op), base, sz[op] * sizeof(float));
        tu_check(ok, tu_name("determinism.%s", names[op]),
                 "results differ between runs or thread counts (1, 2)");
    }
    int ok = 1;
    for (int ti = 0; ti < 2; ti++)
        for (int run = 0; run < 2; run++)
            ok = ok && same(res[ti][run].red, res[0][0].red, sizeof res[0][0].red);
    tu_check(ok, "determinism.sumsq_dot", "results differ between runs or thread counts (1, 2)");
    tu_host_release();
}

int main(void) {
    tu_srand(tu_seed("test_ops"));
    double t0 = omp_get_wtime();
    O = ops_cpu_create(2);
    test_mem();
    test_matmul();
    test_dense();
    test_norm();
    test_rotary();
    test_attention();
    test_attention_step();
    test_embed();
    test_ce();
    O->destroy(O);
    test_determinism();
    printf("# test_ops: %.2f s\n", omp_get_wtime() - t0);
    return tu_exit();
}
