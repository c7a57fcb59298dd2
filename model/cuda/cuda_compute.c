/* CUDA backend ops: argument checks (storage dtype and range of every buffer, per the precisions in
 * model/ops.h), then the cuBLASLt products and the kernel launchers. */
#include <stdlib.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_internal.h"
#include "model/cuda/cuda_kern_api.h"

#define ACT OPS_ACT
#define F32 OPS_F32
#define I32 OPS_I32

/* fp32 scores / dP scratch for attention: at most this many floats per chunk of heads */
enum { ATTN_SCRATCH_FLOATS = 64 << 20 };

static void *S(ops *o) { return (void *)cuda_of(o)->stream; }

static void cu_matmul(ops *o, int trans_a, int trans_b, int m, int n, int k, float alpha, ops_ptr a, int lda,
                      ops_ptr b, int ldb, float beta, ops_ptr c, int ldc) {
    const void *A = cuda_arg(a, cuda_extent(trans_a ? k : m, trans_a ? m : k, lda), ACT, "matmul a");
    const void *B = cuda_arg(b, cuda_extent(trans_b ? n : k, trans_b ? k : n, ldb), ACT, "matmul b");
    CHECK(c.buf && (c.buf->dtype == OPS_F32 || c.buf->dtype == OPS_BF16), "matmul c: f32 or act expected");
    void *C = cuda_arg(c, cuda_extent(m, n, ldc), c.buf->dtype, "matmul c");
    cuda_gemm(cuda_of(o), trans_a, trans_b, m, n, k, alpha, A, lda, 0, B, ldb, 0, beta, C,
              c.buf->dtype == OPS_F32, ldc, 0, 1);
}

static void cu_add_bias(ops *o, ops_ptr y, ops_ptr bias, int rows, int cols, int ld) {
    void *Y = cuda_arg(y, cuda_extent(rows, cols, ld), ACT, "add_bias y");
    const void *Bi = cuda_arg(bias, (size_t)cols, ACT, "add_bias bias");
    mt_cu_add_bias(S(o), Y, Bi, rows, cols, ld);
}

static void cu_bias_grad(ops *o, ops_ptr dbias, ops_ptr dy, int rows, int cols, int ld) {
    float *DB = cuda_arg(dbias, (size_t)cols, F32, "bias_grad dbias");
    const void *DY = cuda_arg(dy, cuda_extent(rows, cols, ld), ACT, "bias_grad dy");
    float *scr = cuda_scratch(cuda_of(o), (size_t)mt_cu_row_chunks(rows) * (size_t)cols * sizeof(float));
    mt_cu_bias_grad(S(o), DB, DY, rows, cols, ld, scr);
}

static void cu_dropout(ops *o, ops_ptr y, ops_ptr x, int rows, int cols, int col0, int width,
                       uint32_t threshold, float scale, uint64_t key) {
    size_t n = (size_t)rows * (size_t)cols;
    mt_cu_dropout(S(o), cuda_arg(y, n, ACT, "dropout y"), cuda_arg(x, n, ACT, "dropout x"), rows, cols, col0,
                  width, threshold, scale, key);
}

static void cu_add(ops *o, ops_ptr y, ops_ptr x, ops_ptr a, size_t n) {
    mt_cu_add(S(o), cuda_arg(y, n, ACT, "add y"), cuda_arg(x, n, ACT, "add x"), cuda_arg(a, n, ACT, "add a"),
              n);
}

static void cu_scale(ops *o, ops_ptr x, float alpha, size_t n) {
    mt_cu_scale(S(o), cuda_arg(x, n, F32, "scale x"), alpha, n);
}

static double dot_impl(ops *o, const float *A, const float *B, size_t n) {
    if (!n)
        return 0.0;
    cuda_ctx *c = cuda_of(o);
    int nb = mt_cu_dot_blocks(n);
    double *part = cuda_scratch(c, (size_t)nb * sizeof(double));
    mt_cu_dot_partials(S(o), part, A, B, n);
    double *h = mt_malloc((size_t)nb * sizeof *h);
    CUDA_CHECK(cudaMemcpyAsync(h, part, (size_t)nb * sizeof *h, cudaMemcpyDeviceToHost, c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    double total = 0;
    for (int i = 0; i < nb; i++)
        total += h[i];
    free(h);
    return total;
}

static double cu_sumsq(ops *o, ops_ptr x, size_t n) {
    const float *X = cuda_arg(x, n, F32, "sumsq x");
    return dot_impl(o, X, X, n);
}

static double cu_dot(ops *o, ops_ptr a, ops_ptr b, size_t n) {
    return dot_impl(o, cuda_arg(a, n, F32, "dot a"), cuda_arg(b, n, F32, "dot b"), n);
}

static void cu_adamw(ops *o, ops_ptr p, ops_ptr g, ops_ptr m, ops_ptr v, size_t n, float grad_scale, float lr,
                     float beta1, float beta2, float eps, float wd, float bc1, float bc2) {
    mt_cu_adamw(S(o), cuda_arg(p, n, F32, "adamw p"), cuda_arg(g, n, F32, "adamw g"),
                cuda_arg(m, n, F32, "adamw m"), cuda_arg(v, n, F32, "adamw v"), n, grad_scale, lr, beta1,
                beta2, eps, wd, bc1, bc2);
}

static void cu_layernorm_fwd(ops *o, ops_ptr out, ops_ptr mean, ops_ptr rstd, ops_ptr x, ops_ptr gamma,
                             ops_ptr beta, int rows, int cols, float eps) {
    size_t n = (size_t)rows * (size_t)cols;
    mt_cu_layernorm_fwd(
        S(o), cuda_arg(out, n, ACT, "layernorm out"), cuda_arg(mean, (size_t)rows, F32, "layernorm mean"),
        cuda_arg(rstd, (size_t)rows, F32, "layernorm rstd"), cuda_arg(x, n, ACT, "layernorm x"),
        cuda_arg(gamma, (size_t)cols, ACT, "layernorm gamma"),
        cuda_arg(beta, (size_t)cols, ACT, "layernorm beta"), rows, cols, eps);
}

static void cu_layernorm_bwd(ops *o, ops_ptr dx, ops_ptr dgamma, ops_ptr dbeta, ops_ptr dout, ops_ptr x,
                             ops_ptr mean, ops_ptr rstd, ops_ptr gamma, int rows, int cols) {
    size_t n = (size_t)rows * (size_t)cols;
    void *DX = cuda_arg(dx, n, ACT, "layernorm dx");
    float *DG = cuda_arg(dgamma, (size_t)cols, F32, "layernorm dgamma");
    float *DB = cuda_arg(dbeta, (size_t)cols, F32, "layernorm dbeta");
    const void *DY = cuda_arg(dout, n, ACT, "layernorm dout");
    const void *X = cuda_arg(x, n, ACT, "layernorm x");
    const float *MU = cuda_arg(mean, (size_t)rows, F32, "layernorm mean");
    const float *RS = cuda_arg(rstd, (size_t)rows, F32, "layernorm rstd");
    const void *G = cuda_arg(gamma, (size_t)cols, ACT, "layernorm gamma");
    float *scr = cuda_scratch(cuda_of(o), 2 * (size_t)mt_cu_row_chunks(rows) * (size_t)cols * sizeof(float));
    mt_cu_layernorm_bwd(S(o), DX, DG, DB, DY, X, MU, RS, G, rows, cols, scr);
}

static void cu_gelu_fwd(ops *o, ops_ptr y, ops_ptr x, size_t n) {
    mt_cu_gelu_fwd(S(o), cuda_arg(y, n, ACT, "gelu y"), cuda_arg(x, n, ACT, "gelu x"), n);
}

static void cu_gelu_bwd(ops *o, ops_ptr dx, ops_ptr x, ops_ptr dy, size_t n) {
    mt_cu_gelu_bwd(S(o), cuda_arg(dx, n, ACT, "gelu dx"), cuda_arg(x, n, ACT, "gelu x"),
                   cuda_arg(dy, n, ACT, "gelu dy"), n);
}

static void rotary(ops *o, ops_ptr x, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim, int ld,
                   float sign, const char *what) {
    CHECK(rot_dim >= 0 && rot_dim % 2 == 0 && rot_dim <= dh && H * dh <= ld,
          "%s: rot_dim %d, H %d, dh %d, ld %d", what, rot_dim, H, dh, ld);
    void *X = cuda_arg(x, cuda_extent(B * T, H * dh, ld), ACT, what);
    const float *CS = cuda_arg(cos_sin, (size_t)T * (size_t)rot_dim, F32, "rotary cos_sin");
    mt_cu_rotary(S(o), X, CS, B, T, H, dh, rot_dim, ld, sign);
}

static void cu_rotary_fwd(ops *o, ops_ptr x, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim,
                          int ld) {
    rotary(o, x, cos_sin, B, T, H, dh, rot_dim, ld, 1.0f, "rotary_fwd x");
}

static void cu_rotary_bwd(ops *o, ops_ptr dx, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim,
                          int ld) {
    rotary(o, dx, cos_sin, B, T, H, dh, rot_dim, ld, -1.0f, "rotary_bwd dx");
}

/* Heads per chunk so that a chunk's fp32 T x T matrices fit the scratch budget. */
static int head_chunk(const ops_attn_shape *s) {
    size_t tt = (size_t)s->T * (size_t)s->T;
    size_t hc = ATTN_SCRATCH_FLOATS / (tt ? tt : 1);
    if (hc < 1)
        hc = 1;
    return hc < (size_t)s->H ? (int)hc : s->H;
}

/* Batch b, heads [h0, h0 + nh) of a chunk: byte offsets into q/k/v (and dq/dk/dv), probs, and out. */
typedef struct {
    int nh;
    size_t qkv, probs, out;
} chunk_at;

static chunk_at chunk_offsets(const ops_attn_shape *s, int b, int h0, int hc) {
    const size_t e = 2; /* bf16 bytes */
    size_t tt = (size_t)s->T * (size_t)s->T;
    return (chunk_at){.nh = s->H - h0 < hc ? s->H - h0 : hc,
                      .qkv = ((size_t)b * s->T * s->ld_qkv + (size_t)h0 * s->dh) * e,
                      .probs = ((size_t)b * s->H + h0) * tt * e,
                      .out = ((size_t)b * s->T * s->ld_out + (size_t)h0 * s->dh) * e};
}

static void check_shape(const ops_attn_shape *s) {
    CHECK(s->B >= 1 && s->T >= 1 && s->H >= 1 && s->dh >= 1 && s->window >= 1 && s->H * s->dh <= s->ld_qkv &&
              s->H * s->dh <= s->ld_out,
          "attention shape B %d T %d H %d dh %d ld_qkv %d ld_out %d window %d", s->B, s->T, s->H, s->dh,
          s->ld_qkv, s->ld_out, s->window);
}

/* Per batch b and chunk of heads: S = scale Q K^T (fp32 scratch), probs = softmax (bf16), out = probs V. */
static void cu_attention_fwd(ops *o, ops_ptr out, ops_ptr probs, ops_ptr q, ops_ptr k, ops_ptr v,
                             const ops_attn_shape *s) {
    check_shape(s);
    int B = s->B, T = s->T, H = s->H, dh = s->dh, lq = s->ld_qkv, lo = s->ld_out;
    size_t tt = (size_t)T * T, nqkv = cuda_extent(B * T, H * dh, lq);
    char *O = cuda_arg(out, cuda_extent(B * T, H * dh, lo), ACT, "attention out");
    char *P = cuda_arg(probs, (size_t)B * H * tt, ACT, "attention probs");
    const char *Q = cuda_arg(q, nqkv, ACT, "attention q");
    const char *K = cuda_arg(k, nqkv, ACT, "attention k");
    const char *V = cuda_arg(v, nqkv, ACT, "attention v");
    cuda_ctx *c = cuda_of(o);
    int hc = head_chunk(s);
    float *scores = cuda_scratch(c, (size_t)hc * tt * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int h0 = 0; h0 < H; h0 += hc) {
            chunk_at at = chunk_offsets(s, b, h0, hc);
            int nh = at.nh;
            size_t qoff = at.qkv, poff = at.probs, ooff = at.out;
            cuda_gemm(c, 0, 1, T, T, dh, s->scale, Q + qoff, lq, dh, K + qoff, lq, dh, 0.0f, scores, 1, T,
                      (long long)tt, nh);
            mt_cu_softmax_fwd(c->stream, P + poff, scores, nh * T, T, s->window);
            cuda_gemm(c, 0, 0, T, dh, T, 1.0f, P + poff, T, (long long)tt, V + qoff, lq, dh, 0.0f, O + ooff,
                      0, lo, dh, nh);
        }
}

/* dV = P^T dO; dP = dO V^T (fp32 scratch); dS = P (dP - rowsum(P dP)) scale (bf16, `scratch`);
 * dQ = dS K; dK = dS^T Q. */
static void cu_attention_bwd(ops *o, ops_ptr dq, ops_ptr dk, ops_ptr dv, ops_ptr scratch, ops_ptr dout,
                             ops_ptr q, ops_ptr k, ops_ptr v, ops_ptr probs, const ops_attn_shape *s) {
    check_shape(s);
    int B = s->B, T = s->T, H = s->H, dh = s->dh, lq = s->ld_qkv, lo = s->ld_out;
    size_t tt = (size_t)T * T, nqkv = cuda_extent(B * T, H * dh, lq);
    char *DQ = cuda_arg(dq, nqkv, ACT, "attention dq");
    char *DK = cuda_arg(dk, nqkv, ACT, "attention dk");
    char *DV = cuda_arg(dv, nqkv, ACT, "attention dv");
    char *DS = cuda_arg(scratch, (size_t)B * H * tt, ACT, "attention scratch");
    const char *DO = cuda_arg(dout, cuda_extent(B * T, H * dh, lo), ACT, "attention dout");
    const char *Q = cuda_arg(q, nqkv, ACT, "attention q");
    const char *K = cuda_arg(k, nqkv, ACT, "attention k");
    const char *V = cuda_arg(v, nqkv, ACT, "attention v");
    const char *P = cuda_arg(probs, (size_t)B * H * tt, ACT, "attention probs");
    cuda_ctx *c = cuda_of(o);
    int hc = head_chunk(s);
    float *dp = cuda_scratch(c, (size_t)hc * tt * sizeof(float));
    for (int b = 0; b < B; b++)
        for (int h0 = 0; h0 < H; h0 += hc) {
            chunk_at at = chunk_offsets(s, b, h0, hc);
            int nh = at.nh;
            size_t qoff = at.qkv, poff = at.probs, ooff = at.out;
            cuda_gemm(c, 1, 0, T, dh, T, 1.0f, P + poff, T, (long long)tt, DO + ooff, lo, dh, 0.0f, DV + qoff,
                      0, lq, dh, nh);
            cuda_gemm(c, 0, 1, T, T, dh, 1.0f, DO + ooff, lo, dh, V + qoff, lq, dh, 0.0f, dp, 1, T,
                      (long long)tt, nh);
            mt_cu_softmax_bwd(c->stream, DS + poff, dp, P + poff, nh * T, T, s->window, s->scale);
            cuda_gemm(c, 0, 0, T, dh, T, 1.0f, DS + poff, T, (long long)tt, K + qoff, lq, dh, 0.0f, DQ + qoff,
                      0, lq, dh, nh);
            cuda_gemm(c, 1, 0, T, dh, T, 1.0f, DS + poff, T, (long long)tt, Q + qoff, lq, dh, 0.0f, DK + qoff,
                      0, lq, dh, nh);
        }
}

static void cu_attention_step(ops *o, ops_ptr out, ops_ptr scratch, ops_ptr q, ops_ptr k, ops_ptr v,
                              const ops_step_shape *s) {
    CHECK(s->B >= 1 && s->H >= 1 && s->dh >= 1 && s->window >= 1 && s->window <= s->slots && s->pos >= 0 &&
              s->H * s->dh <= s->ld_q && s->H * s->dh <= s->ld_kv && s->H * s->dh <= s->ld_out,
          "attention_step shape B %d H %d dh %d ld %d/%d/%d slots %d pos %d window %d", s->B, s->H, s->dh,
          s->ld_q, s->ld_kv, s->ld_out, s->slots, s->pos, s->window);
    int w = s->H * s->dh;
    size_t nkv = cuda_extent(s->B * s->slots, w, s->ld_kv);
    mt_cu_attention_step(S(o), cuda_arg(out, cuda_extent(s->B, w, s->ld_out), ACT, "attention_step out"),
                         cuda_arg(scratch, (size_t)s->B * s->H * s->slots, F32, "attention_step scratch"),
                         cuda_arg(q, cuda_extent(s->B, w, s->ld_q), ACT, "attention_step q"),
                         cuda_arg(k, nkv, ACT, "attention_step k"), cuda_arg(v, nkv, ACT, "attention_step v"),
                         s->B, s->H, s->dh, s->ld_q, s->ld_kv, s->ld_out, s->slots, s->pos, s->window,
                         s->scale);
}

static void cu_embed_fwd(ops *o, ops_ptr out, ops_ptr ids, ops_ptr wte, int n, int d, int row_start,
                         int rows) {
    mt_cu_embed_fwd(S(o), cuda_arg(out, (size_t)n * d, ACT, "embed out"),
                    cuda_arg(ids, (size_t)n, I32, "embed ids"),
                    cuda_arg(wte, (size_t)rows * d, ACT, "embed wte"), n, d, row_start, rows);
}

static void cu_embed_bwd(ops *o, ops_ptr dwte, ops_ptr ids, ops_ptr dout, int n, int d, int row_start,
                         int rows) {
    mt_cu_embed_bwd(S(o), cuda_arg(dwte, (size_t)rows * d, F32, "embed dwte"),
                    cuda_arg(ids, (size_t)n, I32, "embed ids"),
                    cuda_arg(dout, (size_t)n * d, ACT, "embed dout"), n, d, row_start, rows);
}

static void cu_pos_fwd(ops *o, ops_ptr out, ops_ptr wpe, int B, int T, int d) {
    mt_cu_pos_fwd(S(o), cuda_arg(out, (size_t)B * T * d, ACT, "pos out"),
                  cuda_arg(wpe, (size_t)T * d, ACT, "pos wpe"), B, T, d);
}

static void cu_pos_bwd(ops *o, ops_ptr dwpe, ops_ptr dout, int B, int T, int d) {
    mt_cu_pos_bwd(S(o), cuda_arg(dwpe, (size_t)T * d, F32, "pos dwpe"),
                  cuda_arg(dout, (size_t)B * T * d, ACT, "pos dout"), B, T, d);
}

static void check_ce(const ops_ce_shape *s) {
    CHECK(s->N >= 0 && s->ncols >= 0 && s->ncols <= s->ld, "cross-entropy shape N %d ld %d ncols %d", s->N,
          s->ld, s->ncols);
}

static void cu_ce_rowmax(ops *o, ops_ptr rowmax, ops_ptr logits, const ops_ce_shape *s) {
    check_ce(s);
    mt_cu_ce_rowmax(S(o), cuda_arg(rowmax, (size_t)s->N, F32, "ce rowmax"),
                    cuda_arg(logits, (size_t)s->N * s->ld, ACT, "ce logits"), s->N, s->ld, s->ncols);
}

static void cu_ce_sumexp(ops *o, ops_ptr sumexp, ops_ptr tgt, ops_ptr logits, ops_ptr rowmax, ops_ptr targets,
                         const ops_ce_shape *s) {
    check_ce(s);
    size_t N = (size_t)s->N;
    mt_cu_ce_sumexp(S(o), cuda_arg(sumexp, N, F32, "ce sumexp"), cuda_arg(tgt, N, F32, "ce tgt"),
                    cuda_arg(logits, N * s->ld, ACT, "ce logits"), cuda_arg(rowmax, N, F32, "ce rowmax"),
                    cuda_arg(targets, N, I32, "ce targets"), s->N, s->ld, s->ncols, s->col_start);
}

static void cu_ce_loss(ops *o, ops_ptr loss, ops_ptr rowmax, ops_ptr sumexp, ops_ptr tgt, float z, int n) {
    size_t N = n > 0 ? (size_t)n : 0;
    mt_cu_ce_loss(S(o), cuda_arg(loss, N, F32, "ce loss"), cuda_arg(rowmax, N, F32, "ce rowmax"),
                  cuda_arg(sumexp, N, F32, "ce sumexp"), cuda_arg(tgt, N, F32, "ce tgt"), z, n);
}

static void cu_ce_bwd(ops *o, ops_ptr logits, ops_ptr rowmax, ops_ptr sumexp, ops_ptr targets,
                      ops_ptr weights, float z, const ops_ce_shape *s) {
    check_ce(s);
    size_t N = (size_t)s->N;
    mt_cu_ce_bwd(S(o), cuda_arg(logits, N * s->ld, ACT, "ce logits"), cuda_arg(rowmax, N, F32, "ce rowmax"),
                 cuda_arg(sumexp, N, F32, "ce sumexp"), cuda_arg(targets, N, I32, "ce targets"),
                 cuda_arg(weights, N, F32, "ce weights"), z, s->N, s->ld, s->ncols, s->col_start);
}

void cuda_install_compute(ops *o) {
    o->matmul = cu_matmul;
    o->add_bias = cu_add_bias;
    o->bias_grad = cu_bias_grad;
    o->add = cu_add;
    o->scale = cu_scale;
    o->sumsq = cu_sumsq;
    o->dot = cu_dot;
    o->adamw = cu_adamw;
    o->layernorm_fwd = cu_layernorm_fwd;
    o->layernorm_bwd = cu_layernorm_bwd;
    o->dropout = cu_dropout;
    o->gelu_fwd = cu_gelu_fwd;
    o->gelu_bwd = cu_gelu_bwd;
    o->rotary_fwd = cu_rotary_fwd;
    o->rotary_bwd = cu_rotary_bwd;
    o->attention_fwd = cu_attention_fwd;
    o->attention_bwd = cu_attention_bwd;
    o->attention_step = cu_attention_step;
    o->embed_fwd = cu_embed_fwd;
    o->embed_bwd = cu_embed_bwd;
    o->pos_fwd = cu_pos_fwd;
    o->pos_bwd = cu_pos_bwd;
    o->ce_rowmax = cu_ce_rowmax;
    o->ce_sumexp = cu_ce_sumexp;
    o->ce_loss = cu_ce_loss;
    o->ce_bwd = cu_ce_bwd;
}
