/* The backend interface (DESIGN 4): memory and kernels behind one struct of function pointers.
 *
 * Buffers are opaque handles owned by the backend; model code addresses them only as (buffer, element
 * offset) pairs, never through host pointers, so the same model code drives the CPU and CUDA backends.
 * All matrices are row-major; `ld` arguments are row strides in elements. Every kernel is deterministic:
 * reductions run in a fixed order, independent of thread scheduling. */
#ifndef MT_OPS_H
#define MT_OPS_H

#include <stddef.h>
#include <stdint.h>

/* Element types. OPS_ACT is a request, "the backend's working precision", used for activations and the
 * working copy of the weights: fp32 on the CPU backend, bf16 on the CUDA backend (ops.act_dtype says
 * which). OPS_F32 holds master weights, gradients, optimizer state and every reduction's statistics.
 * Host copies (to_host, from_host) are always float (int32 for OPS_I32): the backend converts. */
typedef enum { OPS_F32, OPS_I32, OPS_BF16, OPS_ACT } ops_dtype;

typedef struct ops_buf ops_buf;

/* An element offset into a backend buffer. */
typedef struct {
    ops_buf *buf;
    size_t off;
} ops_ptr;

static inline ops_ptr ops_at(ops_ptr p, size_t elements) {
    p.off += elements;
    return p;
}

/* Shape of one attention call: q, k, v are [B*T, ld_qkv] with head h in columns [h*dh, (h+1)*dh);
 * out is [B*T, ld_out]; probs is [B, H, T, T]. Query i sees key j iff j <= i and i - j < window
 * (window >= T means plain causal). Scores are multiplied by scale before the softmax. */
typedef struct {
    int B, T, H, dh;
    int ld_qkv, ld_out;
    int window;
    float scale;
} ops_attn_shape;

/* Shape of one decoding step's attention (the key/value cache of incremental decoding): one query per
 * sequence, q [B, ld_q] with head h in columns [h*dh, (h+1)*dh), against cached keys and values k, v
 * [B, slots, ld_kv] in which position j of sequence b sits in row b * slots + j % slots (a ring when
 * slots is shorter than the sequence). The query is at position pos and sees positions j with
 * j <= pos and pos - j < window, all of which must still be cached (window <= slots). out is [B, ld_out]. */
typedef struct {
    int B, H, dh;
    int ld_q, ld_kv, ld_out;
    int slots, pos, window;
    float scale;
} ops_step_shape;

/* Shape of the vocabulary-sharded cross-entropy (SPEC 4.4). logits are [N, ld] of which this rank holds
 * global columns [col_start, col_start + ld); only the first `ncols` local columns belong to the softmax
 * (global columns < loss_vocab). */
typedef struct {
    int N, ld, ncols, col_start;
} ops_ce_shape;

/* Argument precisions. The CPU backend stores everything as fp32; the CUDA backend expects, and checks,
 * the following, where ACT is the working precision and F32 is fp32:
 *   matmul: a, b ACT; c ACT or F32 (weight gradients accumulate into the F32 gradient buffer)
 *   add_bias, add, gelu, rotary x, attention and attention_step
 *   (all buffers but the step's scratch, which is F32), layernorm out/x/gamma/beta/dx, embed out/wte,
 *   pos out/wpe, cross-entropy logits: ACT
 *   bias_grad dbias, layernorm mean/rstd/dgamma/dbeta, embed/pos gradients, rotary cos_sin, every
 *   cross-entropy statistic, loss and weight, sumsq, dot, scale, adamw: F32
 *   zero, copy: any (same dtype on both sides of a copy); cast: F32 <-> ACT. */
typedef struct ops ops;
struct ops {
    const char *name;
    void *ctx;
    ops_dtype act_dtype; /* storage of OPS_ACT buffers: OPS_F32 or OPS_BF16 */

    /* memory */
    ops_buf *(*alloc)(ops *o, size_t n, ops_dtype dtype); /* zero-filled, 64-byte aligned */
    void (*free)(ops *o, ops_buf *b);
    void (*to_host)(ops *o, void *dst, ops_ptr src, size_t n);
    void (*from_host)(ops *o, ops_ptr dst, const void *src, size_t n);
    void (*zero)(ops *o, ops_ptr x, size_t n);
    void (*copy)(ops *o, ops_ptr dst, ops_ptr src, size_t n);
    /* dst = src converted to dst's dtype (rounding to nearest even into bf16). */
    void (*cast)(ops *o, ops_ptr dst, ops_ptr src, size_t n);
    /* Storage dtype of a buffer (never OPS_ACT). */
    ops_dtype (*dtype)(ops *o, ops_ptr p);
    /* The host address of a buffer in host memory, NULL for device memory: MPI and HDF5 take only host
     * addresses (DESIGN 4), so device data goes through explicit copies. */
    void *(*host_ptr)(ops *o, ops_ptr p);
    /* The device address of a buffer in device memory (NULL for host memory) and the stream its kernels
     * run on, for the device collectives (NCCL); both NULL on the CPU backend. */
    void *(*device_ptr)(ops *o, ops_ptr p);
    void *(*stream)(ops *o);

    /* C = alpha * op(A) op(B) + beta * C, op(A) is m x k, op(B) is k x n. */
    void (*matmul)(ops *o, int trans_a, int trans_b, int m, int n, int k, float alpha, ops_ptr a, int lda,
                   ops_ptr b, int ldb, float beta, ops_ptr c, int ldc);
    /* y[r, c] += bias[c] for an rows x cols block with row stride ld. */
    void (*add_bias)(ops *o, ops_ptr y, ops_ptr bias, int rows, int cols, int ld);
    /* dbias[c] += sum_r dy[r, c]. */
    void (*bias_grad)(ops *o, ops_ptr dbias, ops_ptr dy, int rows, int cols, int ld);

    /* y = x + a (n elements; y may alias x or a). */
    void (*add)(ops *o, ops_ptr y, ops_ptr x, ops_ptr a, size_t n);
    /* x *= alpha */
    void (*scale)(ops *o, ops_ptr x, float alpha, size_t n);
    /* Inverted dropout (LoRA's input, model/lora.h): y[r, c] = x[r, c] * scale where
     * mt_dropout_keep(key, r * width + col0 + c, threshold) (model/dropout_mask.h) keeps element (r, col0 +
     * c) of a rows x width matrix, else 0. x and y are its columns [col0, col0 + cols) as rows x cols blocks
     * (row stride cols; y may alias x), so every rank of a column split draws the mask one process would. */
    void (*dropout)(ops *o, ops_ptr y, ops_ptr x, int rows, int cols, int col0, int width, uint32_t threshold,
                    float scale, uint64_t key);
    /* sum of squares, accumulated in double */
    double (*sumsq)(ops *o, ops_ptr x, size_t n);
    /* sum_i a[i] * b[i], accumulated in double */
    double (*dot)(ops *o, ops_ptr a, ops_ptr b, size_t n);

    /* LayerNorm over rows of length cols (population variance, eps inside the sqrt). Saves mean and
     * rstd ([rows]) for the backward. */
    void (*layernorm_fwd)(ops *o, ops_ptr out, ops_ptr mean, ops_ptr rstd, ops_ptr x, ops_ptr gamma,
                          ops_ptr beta, int rows, int cols, float eps);
    /* dx += d/dx, dgamma += .., dbeta += .. */
    void (*layernorm_bwd)(ops *o, ops_ptr dx, ops_ptr dgamma, ops_ptr dbeta, ops_ptr dout, ops_ptr x,
                          ops_ptr mean, ops_ptr rstd, ops_ptr gamma, int rows, int cols);

    /* gelu_new (tanh approximation): y = gelu(x); dx = dy * gelu'(x) (dx may alias dy). */
    void (*gelu_fwd)(ops *o, ops_ptr y, ops_ptr x, size_t n);
    void (*gelu_bwd)(ops *o, ops_ptr dx, ops_ptr x, ops_ptr dy, size_t n);

    /* GPT-J interleaved rotary (SPEC 1.3), in place on x [B*T, ld], the first rot_dim features of each
     * of H heads of width dh; row r has position r % T. cos_sin is [T, rot_dim] holding, per position,
     * rot_dim/2 cosines then rot_dim/2 sines. The backward applies the inverse rotation to dx. */
    void (*rotary_fwd)(ops *o, ops_ptr x, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim, int ld);
    void (*rotary_bwd)(ops *o, ops_ptr dx, ops_ptr cos_sin, int B, int T, int H, int dh, int rot_dim, int ld);

    /* Softmax attention: out = softmax(mask(scale * q k^T)) v per (batch, head); saves probs. */
    void (*attention_fwd)(ops *o, ops_ptr out, ops_ptr probs, ops_ptr q, ops_ptr k, ops_ptr v,
                          const ops_attn_shape *s);
    /* Overwrites dq, dk, dv; scratch has the size of probs. */
    void (*attention_bwd)(ops *o, ops_ptr dq, ops_ptr dk, ops_ptr dv, ops_ptr scratch, ops_ptr dout,
                          ops_ptr q, ops_ptr k, ops_ptr v, ops_ptr probs, const ops_attn_shape *s);

    /* One decoding step: out[b] = softmax(scale * q[b] . k[visible positions]) v per head, with the
     * probabilities in fp32. scratch holds B * H * slots floats. */
    void (*attention_step)(ops *o, ops_ptr out, ops_ptr scratch, ops_ptr q, ops_ptr k, ops_ptr v,
                           const ops_step_shape *s);

    /* Vocabulary-split embedding: out[i] = wte[ids[i] - row_start] when that row is local, else 0. */
    void (*embed_fwd)(ops *o, ops_ptr out, ops_ptr ids, ops_ptr wte, int n, int d, int row_start, int rows);
    /* dwte[ids[i] - row_start] += dout[i] for local rows. */
    void (*embed_bwd)(ops *o, ops_ptr dwte, ops_ptr ids, ops_ptr dout, int n, int d, int row_start, int rows);
    /* out[b, t] += wpe[t] for x [B*T, d]; dwpe[t] += sum_b dout[b, t]. */
    void (*pos_fwd)(ops *o, ops_ptr out, ops_ptr wpe, int B, int T, int d);
    void (*pos_bwd)(ops *o, ops_ptr dwpe, ops_ptr dout, int B, int T, int d);

    /* Cross-entropy pieces for a vocabulary-sharded softmax (SPEC 4.4); the caller combines ranks with
     * all-reduce max (rowmax) and sum (sumexp, tgt) between them. */
    void (*ce_rowmax)(ops *o, ops_ptr rowmax, ops_ptr logits, const ops_ce_shape *s);
    /* sumexp[i] = sum_c exp(logits[i,c] - rowmax[i]); tgt[i] = logits[i, target - col_start] -
     * rowmax[i] on the rank that owns the target column, else 0. */
    void (*ce_sumexp)(ops *o, ops_ptr sumexp, ops_ptr tgt, ops_ptr logits, ops_ptr rowmax, ops_ptr targets,
                      const ops_ce_shape *s);
    /* loss[i] = log(sumexp) - tgt + z * lse^2 with lse = rowmax + log(sumexp). */
    void (*ce_loss)(ops *o, ops_ptr loss, ops_ptr rowmax, ops_ptr sumexp, ops_ptr tgt, float z, int n);
    /* In place: logits <- weight[i] * d loss[i] / d logits (zero outside the softmax columns). */
    void (*ce_bwd)(ops *o, ops_ptr logits, ops_ptr rowmax, ops_ptr sumexp, ops_ptr targets, ops_ptr weights,
                   float z, const ops_ce_shape *s);

    /* AdamW on a flat range (SPEC 1.5, 9): g' = grad_scale * g; m, v updated; p -= lr * (m_hat /
     * (sqrt(v_hat) + eps) + wd * p) with m_hat = m / bc1, v_hat = v / bc2. */
    void (*adamw)(ops *o, ops_ptr p, ops_ptr g, ops_ptr m, ops_ptr v, size_t n, float grad_scale, float lr,
                  float beta1, float beta2, float eps, float wd, float bc1, float bc2);

    void (*destroy)(ops *o);
};

/* The CPU backend (model/cpu): fp32, OpenBLAS, OpenMP with `threads` threads. */
ops *ops_cpu_create(int threads);

#endif
