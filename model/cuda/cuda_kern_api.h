/* The C entry points of the CUDA backend's kernels (defined in the .cu files, called by the host C code).
 * Pointers are device addresses; bf16 arrays are passed as void *; `stream` is the backend's cudaStream_t.
 * Every launcher only enqueues work on the stream. */
#ifndef MT_CUDA_KERN_API_H
#define MT_CUDA_KERN_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* host-side bf16 <-> float conversion (round to nearest even; NaN stays NaN) */
void mt_cu_host_f32_to_bf16(uint16_t *dst, const float *src, size_t n);
void mt_cu_host_bf16_to_f32(float *dst, const uint16_t *src, size_t n);

/* cuda_dense.cu */
void mt_cu_cast_f32_bf16(void *stream, void *dst, const float *src, size_t n);
void mt_cu_cast_bf16_f32(void *stream, float *dst, const void *src, size_t n);
void mt_cu_add_bias(void *stream, void *y, const void *bias, int rows, int cols, int ld);
/* Column sums over rows, in row chunks of MT_CU_ROW_CHUNK rows: scratch holds mt_cu_row_chunks(rows) * cols
 * floats. dst[c] += sum_r x[r, c]. */
enum { MT_CU_ROW_CHUNK = 128 };
int mt_cu_row_chunks(int rows);
void mt_cu_bias_grad(void *stream, float *dbias, const void *dy, int rows, int cols, int ld, float *scratch);
void mt_cu_add(void *stream, void *y, const void *x, const void *a, size_t n);
void mt_cu_scale(void *stream, float *x, float alpha, size_t n);
void mt_cu_dropout(void *stream, void *y, const void *x, int rows, int cols, int col0, int width,
                   uint32_t threshold, float scale, uint64_t key);
/* Per-block partial sums of a[i] * b[i] in double, mt_cu_dot_blocks(n) of them, into partials (device);
 * the caller adds them in index order. */
int mt_cu_dot_blocks(size_t n);
void mt_cu_dot_partials(void *stream, double *partials, const float *a, const float *b, size_t n);

/* cuda_adamw.cu */
void mt_cu_adamw(void *stream, float *p, const float *g, float *m, float *v, size_t n, float grad_scale,
                 float lr, float beta1, float beta2, float eps, float wd, float bc1, float bc2);

/* cuda_norm.cu */
void mt_cu_layernorm_fwd(void *stream, void *out, float *mean, float *rstd, const void *x, const void *gamma,
                         const void *beta, int rows, int cols, float eps);
/* scratch: 2 * mt_cu_row_chunks(rows) * cols floats */
void mt_cu_layernorm_bwd(void *stream, void *dx, float *dgamma, float *dbeta, const void *dout, const void *x,
                         const float *mean, const float *rstd, const void *gamma, int rows, int cols,
                         float *scratch);
void mt_cu_gelu_fwd(void *stream, void *y, const void *x, size_t n);
void mt_cu_gelu_bwd(void *stream, void *dx, const void *x, const void *dy, size_t n);

/* cuda_attn.cu. Softmax rows: `rows` consecutive rows of length T (row r is query r % T) of one batch and
 * a run of heads. */
void mt_cu_rotary(void *stream, void *x, const float *cos_sin, int B, int T, int H, int dh, int rot_dim,
                  int ld, float sign);
void mt_cu_softmax_fwd(void *stream, void *probs, const float *scores, int rows, int T, int window);
void mt_cu_softmax_bwd(void *stream, void *ds, const float *dp, const void *probs, int rows, int T,
                       int window, float scale);
/* One decoding step over a key/value cache (ops_step_shape in model/ops.h); scratch: B * H * slots floats. */
void mt_cu_attention_step(void *stream, void *out, float *scratch, const void *q, const void *k,
                          const void *v, int B, int H, int dh, int ld_q, int ld_kv, int ld_out, int slots,
                          int pos, int window, float scale);

/* cuda_embed.cu */
void mt_cu_embed_fwd(void *stream, void *out, const int32_t *ids, const void *wte, int n, int d,
                     int row_start, int rows);
void mt_cu_embed_bwd(void *stream, float *dwte, const int32_t *ids, const void *dout, int n, int d,
                     int row_start, int rows);
void mt_cu_pos_fwd(void *stream, void *out, const void *wpe, int B, int T, int d);
void mt_cu_pos_bwd(void *stream, float *dwpe, const void *dout, int B, int T, int d);
void mt_cu_ce_rowmax(void *stream, float *rowmax, const void *logits, int N, int ld, int ncols);
void mt_cu_ce_sumexp(void *stream, float *sumexp, float *tgt, const void *logits, const float *rowmax,
                     const int32_t *targets, int N, int ld, int ncols, int col_start);
void mt_cu_ce_loss(void *stream, float *loss, const float *rowmax, const float *sumexp, const float *tgt,
                   float z, int n);
void mt_cu_ce_bwd(void *stream, void *logits, const float *rowmax, const float *sumexp,
                  const int32_t *targets, const float *weights, float z, int N, int ld, int ncols,
                  int col_start);

#ifdef __cplusplus
}
#endif

#endif
