/* CPU backend: token and position embeddings, and the vocabulary-sharded cross-entropy pieces. */
#include <math.h>
#include <string.h>

#include "base/common.h"
#include "model/cpu/cpu.h"

static void cpu_embed_fwd(ops *o, ops_ptr out, ops_ptr ids, ops_ptr wte, int n, int d, int row_start,
                          int rows) {
    (void)o;
    float *Y = cpu_f(out);
    const float *W = cpu_f(wte);
    const int32_t *I = cpu_i(ids);
#pragma omp parallel for schedule(static) if ((long)n * d >= CPU_PAR_MIN)
    for (int i = 0; i < n; i++) {
        int row = I[i] - row_start;
        float *y = Y + (size_t)i * d;
        if (row >= 0 && row < rows)
            memcpy(y, W + (size_t)row * d, (size_t)d * sizeof(float));
        else
            memset(y, 0, (size_t)d * sizeof(float));
    }
}

/* Column blocks in parallel, tokens in order within each: deterministic without atomics. */
static void cpu_embed_bwd(ops *o, ops_ptr dwte, ops_ptr ids, ops_ptr dout, int n, int d, int row_start,
                          int rows) {
    (void)o;
    float *DW = cpu_f(dwte);
    const float *DY = cpu_f(dout);
    const int32_t *I = cpu_i(ids);
    int nblk = (d + CPU_COL_BLOCK - 1) / CPU_COL_BLOCK;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CPU_COL_BLOCK, c1 = c0 + CPU_COL_BLOCK < d ? c0 + CPU_COL_BLOCK : d;
        for (int i = 0; i < n; i++) {
            int row = I[i] - row_start;
            if (row < 0 || row >= rows)
                continue;
            float *dw = DW + (size_t)row * d;
            const float *dy = DY + (size_t)i * d;
#pragma omp simd
            for (int c = c0; c < c1; c++)
                dw[c] += dy[c];
        }
    }
}

static void cpu_pos_fwd(ops *o, ops_ptr out, ops_ptr wpe, int B, int T, int d) {
    (void)o;
    float *Y = cpu_f(out);
    const float *W = cpu_f(wpe);
#pragma omp parallel for schedule(static) if ((long)B * T * d >= CPU_PAR_MIN)
    for (int r = 0; r < B * T; r++) {
        float *y = Y + (size_t)r * d;
        const float *w = W + (size_t)(r % T) * d;
#pragma omp simd
        for (int c = 0; c < d; c++)
            y[c] += w[c];
    }
}

static void cpu_pos_bwd(ops *o, ops_ptr dwpe, ops_ptr dout, int B, int T, int d) {
    (void)o;
    float *DW = cpu_f(dwpe);
    const float *DY = cpu_f(dout);
#pragma omp parallel for schedule(static)
    for (int t = 0; t < T; t++) {
        float *dw = DW + (size_t)t * d;
        for (int b = 0; b < B; b++) {
            const float *dy = DY + ((size_t)b * T + t) * d;
#pragma omp simd
            for (int c = 0; c < d; c++)
                dw[c] += dy[c];
        }
    }
}

static void cpu_ce_rowmax(ops *o, ops_ptr rowmax, ops_ptr logits, const ops_ce_shape *s) {
    (void)o;
    float *M = cpu_f(rowmax);
    const float *L = cpu_f(logits);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < s->N; i++) {
        const float *l = L + (size_t)i * s->ld;
        float mx = -INFINITY;
        for (int c = 0; c < s->ncols; c++)
            mx = l[c] > mx ? l[c] : mx;
        M[i] = mx;
    }
}

static void cpu_ce_sumexp(ops *o, ops_ptr sumexp, ops_ptr tgt, ops_ptr logits, ops_ptr rowmax,
                          ops_ptr targets, const ops_ce_shape *s) {
    (void)o;
    float *S = cpu_f(sumexp), *TG = cpu_f(tgt);
    const float *L = cpu_f(logits), *M = cpu_f(rowmax);
    const int32_t *Y = cpu_i(targets);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < s->N; i++) {
        const float *l = L + (size_t)i * s->ld;
        float m = M[i], sum = 0;
        for (int c = 0; c < s->ncols; c++)
            sum += expf(l[c] - m);
        S[i] = sum;
        int t = Y[i] - s->col_start;
        TG[i] = (t >= 0 && t < s->ncols) ? l[t] - m : 0.0f;
    }
}

static void cpu_ce_loss(ops *o, ops_ptr loss, ops_ptr rowmax, ops_ptr sumexp, ops_ptr tgt, float z, int n) {
    (void)o;
    float *LS = cpu_f(loss);
    const float *M = cpu_f(rowmax), *S = cpu_f(sumexp), *TG = cpu_f(tgt);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float log_s = logf(S[i]), lse = M[i] + log_s;
        LS[i] = log_s - TG[i] + z * lse * lse;
    }
}

/* d loss / d logit_c = p_c - [c == target] + 2 z lse p_c, p = softmax over the loss columns. */
static void cpu_ce_bwd(ops *o, ops_ptr logits, ops_ptr rowmax, ops_ptr sumexp, ops_ptr targets,
                       ops_ptr weights, float z, const ops_ce_shape *s) {
    (void)o;
    float *L = cpu_f(logits);
    const float *M = cpu_f(rowmax), *S = cpu_f(sumexp), *W = cpu_f(weights);
    const int32_t *Y = cpu_i(targets);
#pragma omp parallel for schedule(static)
    for (int i = 0; i < s->N; i++) {
        float *l = L + (size_t)i * s->ld;
        float w = W[i], m = M[i], inv_s = 1.0f / S[i];
        float pscale = w * (1.0f + 2.0f * z * (m + logf(S[i])));
        if (w == 0.0f) {
            memset(l, 0, (size_t)s->ld * sizeof(float));
            continue;
        }
#pragma omp simd
        for (int c = 0; c < s->ncols; c++)
            l[c] = pscale * expf(l[c] - m) * inv_s;
        for (int c = s->ncols; c < s->ld; c++)
            l[c] = 0.0f;
        int t = Y[i] - s->col_start;
        if (t >= 0 && t < s->ncols)
            l[t] -= w;
    }
}

void cpu_install_embed(ops *o) {
    o->embed_fwd = cpu_embed_fwd;
    o->embed_bwd = cpu_embed_bwd;
    o->pos_fwd = cpu_pos_fwd;
    o->pos_bwd = cpu_pos_bwd;
    o->ce_rowmax = cpu_ce_rowmax;
    o->ce_sumexp = cpu_ce_sumexp;
    o->ce_loss = cpu_ce_loss;
    o->ce_bwd = cpu_ce_bwd;
}
