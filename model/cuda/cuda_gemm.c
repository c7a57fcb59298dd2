/* Row-major (batched) GEMM on cuBLASLt: bf16 A and B, fp32 compute and scale, bf16 or fp32 C = D.
 *
 * cuBLASLt is column-major: a row-major X (r x c, row stride ld) is the column-major X^T (c x r, leading
 * dimension ld). So row-major C = op(A) op(B) is computed as column-major C^T = op(B)^T op(A)^T: the Lt
 * "A" operand is our B and its "B" operand our A, with the same transpose flags. Split-K reductions that
 * work in place on the output are excluded (only workspace reductions in a fixed order remain). */
#include <stdint.h>

#include "model/cuda/cuda_check.h"
#include "model/cuda/cuda_internal.h"

static uint32_t alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t al = 256;
    while (al > 1 && a % al)
        al >>= 1;
    return al;
}

static cublasLtMatrixLayout_t layout(cudaDataType_t t, int rows, int cols, int ld, long long stride,
                                     int batch) {
    cublasLtMatrixLayout_t l;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, t, (uint64_t)rows, (uint64_t)cols, (int64_t)ld));
    if (batch > 1) {
        int32_t bc = batch;
        int64_t st = stride;
        CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc));
        CUBLAS_CHECK(
            cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &st, sizeof st));
    }
    return l;
}

void cuda_gemm(cuda_ctx *c, int trans_a, int trans_b, int m, int n, int k, float alpha, const void *A,
               int lda, long long sA, const void *B, int ldb, long long sB, float beta, void *C, int c_f32,
               int ldc, long long sC, int batch) {
    CHECK(m >= 0 && n >= 0 && k >= 0 && batch >= 1, "gemm %d x %d x %d, batch %d", m, n, k, batch);
    if (m == 0 || n == 0)
        return;
    CHECK(k > 0, "gemm with k = 0");
    cudaDataType_t ct = c_f32 ? CUDA_R_32F : CUDA_R_16BF;

    cublasLtMatmulDesc_t desc;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opb = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));

    /* Lt A = our B: stored column-major as (trans_b ? k x n : n x k); Lt B = our A: (trans_a ? m x k : k x
     * m). */
    cublasLtMatrixLayout_t la =
        trans_b ? layout(CUDA_R_16BF, k, n, ldb, sB, batch) : layout(CUDA_R_16BF, n, k, ldb, sB, batch);
    cublasLtMatrixLayout_t lb =
        trans_a ? layout(CUDA_R_16BF, m, k, lda, sA, batch) : layout(CUDA_R_16BF, k, m, lda, sA, batch);
    cublasLtMatrixLayout_t lc = layout(ct, n, m, ldc, sC, batch);

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = c->ws_bytes;
    uint32_t mask = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE | CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE;
    uint32_t al_a = alignment(B), al_b = alignment(A), al_c = alignment(C);
    CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &mask,
                                                      sizeof mask));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                      sizeof al_a));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                      sizeof al_b));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                                      sizeof al_c));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                                      sizeof al_c));

    cublasLtMatmulHeuristicResult_t heur;
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(c->lt, desc, la, lb, lc, lc, pref, 1, &heur, &found));
    CHECK(found > 0,
          "cuBLASLt has no algorithm for gemm %d x %d x %d (trans %d %d, lda %d ldb %d ldc %d, batch %d)", m,
          n, k, trans_a, trans_b, lda, ldb, ldc, batch);
    CUBLAS_CHECK(cublasLtMatmul(c->lt, desc, &alpha, B, la, A, lb, &beta, C, lc, C, lc, &heur.algo, c->ws,
                                c->ws_bytes, c->stream));

    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lc));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(lb));
    CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(la));
    CUBLAS_CHECK(cublasLtMatmulDescDestroy(desc));
}
