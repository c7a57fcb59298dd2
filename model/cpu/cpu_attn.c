/* CPU backend: rotary embedding and softmax attention (per-head sgemm around a masked softmax). */
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "base/common.h"
#include "model/cpu/cpu.h"

/* Rotates the pairs (2i, 2i+1) of the first rot_dim features of every head by +angle (sign 1) or
 * -angle (sign -1, the backward). */
static void rotate(float *X, const float *cs, int B, int T, int H, int dh, int rot_dim, int ld, float sign) {
    int half = rot_dim / 2;
#pragma omp parallel for schedule(static) if ((long)B * T * H * rot_dim >= CPU_PAR_MIN)
    for (int r = 0; r < B * T; r++) {
        const float *cosv = cs + (size_t)(r % T) * rot_dim, *sinv = cosv + half;
        for (int h = 0; h < H; h++) {
            float *x = X + (size_t)r * ld + (size_t)h * dh;
            for (int i = 0; i < half; i++) {
                float c = cosv[i], s = sign * sinv[i];
                float x0 = x[2 * i], x1 = x[2 * i + 1];
                x[2 * i] = x0 * c - x1 * s;
                x[2 * i + 1] = x1 * c + x0 * s;
            }
        }
    }
}

static void cpu_rotary_fwd(ops *o, ops_ptr x, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim,
                           int ld) {
    (void)o;
    rotate(cpu_f(x), cpu_f(cos_sin), B, T, H, dh, rot_dim, ld, 1.0f);
}

static void cpu_rotary_bwd(ops *o, ops_ptr dx, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim,
                           int ld) {
    (void)o;
    rotate(cpu_f(dx), cpu_f(cos_sin), B, T, H, dh, rot_dim, ld, -1.0f);
}

/* First visible key of query i. */
static inline int first_key(int i, int window) { return i - window + 1 > 0 ? i - window + 1 : 0; }

static void masked_softmax(float *P, int T, int window) {
    for (int i = 0; i < T; i++) {
        float *row = P + (size_t)i * T;
        int j0 = first_key(i, window);
        float mx = -INFINITY;
        for (int j = j0; j <= i; j++)
            mx = row[j] > mx ? row[j] : mx;
        double sum = 0;
        for (int j = j0; j <= i; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = (float)(1.0 / sum);
        for (int j = 0; j < T; j++)
            row[j] = (j >= j0 && j <= i) ? row[j] * inv : 0.0f;
    }
}

static void cpu_attention_fwd(ops *o, ops_ptr out, ops_ptr probs, ops_ptr q, ops_ptr k, ops_ptr v,
                              const ops_attn_shape *s) {
    (void)o;
    int B = s->B, T = s->T, H = s->H, dh = s->dh;
    float *O = cpu_f(out), *P = cpu_f(probs);
    const float *Q = cpu_f(q), *K = cpu_f(k), *V = cpu_f(v);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t base = (size_t)b * T * s->ld_qkv + (size_t)h * dh;
        float *Pbh = P + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, s->scale, Q + base, s->ld_qkv,
                    K + base, s->ld_qkv, 0.0f, Pbh, T);
        masked_softmax(Pbh, T, s->window);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.0f, Pbh, T, V + base, s->ld_qkv,
                    0.0f, O + (size_t)b * T * s->ld_out + (size_t)h * dh, s->ld_out);
    }
}

/* dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(P * dP)) * scale; dQ = dS K; dK = dS^T Q. */
static void cpu_attention_bwd(ops *o, ops_ptr dq, ops_ptr dk, ops_ptr dv, ops_ptr scratch, ops_ptr dout,
                              ops_ptr q, ops_ptr k, ops_ptr v, ops_ptr probs, const ops_attn_shape *s) {
    (void)o;
    int B = s->B, T = s->T, H = s->H, dh = s->dh, ld = s->ld_qkv;
    float *DQ = cpu_f(dq), *DK = cpu_f(dk), *DV = cpu_f(dv), *DS = cpu_f(scratch);
    const float *DO = cpu_f(dout), *Q = cpu_f(q), *K = cpu_f(k), *V = cpu_f(v), *P = cpu_f(probs);
#pragma omp parallel for schedule(static)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H;
        size_t base = (size_t)b * T * ld + (size_t)h * dh;
        const float *dO = DO + (size_t)b * T * s->ld_out + (size_t)h * dh;
        const float *Pbh = P + (size_t)bh * T * T;
        float *dS = DS + (size_t)bh * T * T;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.0f, Pbh, T, dO, s->ld_out, 0.0f,
                    DV + base, ld);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, dh, 1.0f, dO, s->ld_out, V + base, ld,
                    0.0f, dS, T);
        for (int i = 0; i < T; i++) {
            const float *p = Pbh + (size_t)i * T;
            float *d = dS + (size_t)i * T;
            int j0 = first_key(i, s->window);
            double acc = 0;
            for (int j = j0; j <= i; j++)
                acc += (double)p[j] * d[j];
            float dot = (float)acc;
            for (int j = 0; j < T; j++)
                d[j] = (j >= j0 && j <= i) ? p[j] * (d[j] - dot) * s->scale : 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, dh, T, 1.0f, dS, T, K + base, ld, 0.0f,
                    DQ + base, ld);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, dh, T, 1.0f, dS, T, Q + base, ld, 0.0f,
                    DK + base, ld);
    }
}

/* Heads [h0, h1) of sequence b in a decoding step. The cached positions are walked in order, each row's
 * features of these heads (contiguous) at once, so keys and values stream through memory: scores of every
 * visible position, a softmax per head, then the weighted sum of the values. Each head is computed the same
 * way whatever the range it is in. */
static void step_heads(const ops_step_shape *s, int b, int h0, int h1, float *out, float *scratch,
                       const float *q, const float *K, const float *V) {
    enum { MAX_HEADS = 64 };
    int dh = s->dh, j0 = first_key(s->pos, s->window), n = s->pos - j0 + 1, nh = h1 - h0;
    size_t base = (size_t)b * s->slots, off = (size_t)h0 * dh;
    const float *qb = q + (size_t)b * s->ld_q + off;
    float mx[MAX_HEADS], inv[MAX_HEADS];
    CHECK(nh <= MAX_HEADS, "%d heads in one call", nh);
    for (int h = 0; h < nh; h++)
        mx[h] = -INFINITY;
    for (int i = 0; i < n; i++) {
        const float *k = K + (base + (size_t)((j0 + i) % s->slots)) * s->ld_kv + off;
        for (int h = 0; h < nh; h++) {
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int e = 0; e < dh; e++)
                acc += qb[h * dh + e] * k[h * dh + e];
            float score = s->scale * acc;
            scratch[(size_t)h * s->slots + i] = score;
            mx[h] = score > mx[h] ? score : mx[h];
        }
    }
    for (int h = 0; h < nh; h++) {
        float *sc = scratch + (size_t)h * s->slots;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            sc[i] = expf(sc[i] - mx[h]);
            sum += sc[i];
        }
        inv[h] = (float)(1.0 / sum);
    }
    float *o = out + (size_t)b * s->ld_out + off;
    for (int e = 0; e < nh * dh; e++)
        o[e] = 0.0f;
    for (int i = 0; i < n; i++) {
        const float *v = V + (base + (size_t)((j0 + i) % s->slots)) * s->ld_kv + off;
        for (int h = 0; h < nh; h++) {
            float p = scratch[(size_t)h * s->slots + i] * inv[h];
#pragma omp simd
            for (int e = 0; e < dh; e++)
                o[h * dh + e] += p * v[h * dh + e];
        }
    }
}

/* Each thread takes a contiguous run of the B x H (sequence, head) pairs, in groups of heads of one
 * sequence. */
static void cpu_attention_step(ops *o, ops_ptr out, ops_ptr scratch, ops_ptr q, ops_ptr k, ops_ptr v,
                               const ops_step_shape *s) {
    (void)o;
    CHECK(s->window >= 1 && s->window <= s->slots && s->pos >= 0,
          "attention_step: window %d, slots %d, pos %d", s->window, s->slots, s->pos);
    float *O = cpu_f(out), *SC = cpu_f(scratch);
    const float *Q = cpu_f(q), *K = cpu_f(k), *V = cpu_f(v);
    int pairs = s->B * s->H;
#pragma omp parallel if ((long)pairs * (s->pos + 1) * s->dh >= CPU_PAR_MIN)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        for (int bh = pairs * t / nt, end = pairs * (t + 1) / nt; bh < end;) {
            int b = bh / s->H, h0 = bh % s->H, h1 = s->H - h0 < end - bh ? s->H : h0 + (end - bh);
            h1 = h1 - h0 > 64 ? h0 + 64 : h1;
            step_heads(s, b, h0, h1, O, SC + (size_t)bh * s->slots, Q, K, V);
            bh += h1 - h0;
        }
    }
}

void cpu_install_attn(ops *o) {
    o->rotary_fwd = cpu_rotary_fwd;
    o->rotary_bwd = cpu_rotary_bwd;
    o->attention_fwd = cpu_attention_fwd;
    o->attention_bwd = cpu_attention_bwd;
    o->attention_step = cpu_attention_step;
}
