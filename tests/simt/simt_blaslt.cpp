/* cuBLASLt subset on OpenBLAS: D = epilogue(alpha op(A) op(B) + beta C), column-major as in cuBLASLt.
 * A and B are bf16 or fp32 (widened to fp32), the product is one cblas_sgemm in fp32, C is added in fp32
 * and D is rounded once at the end, as the GPU's fp32 accumulator does. Epilogues: DEFAULT, BIAS, GELU,
 * GELU_BIAS (bias added first, then the tanh-approximation GELU). Anything else aborts rather than
 * computing something the GPU would not. */
#include "simt_internal.h"

#include <algorithm>
#include <cblas.h>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <vector>

#include "simt.h"

namespace {

constexpr uint32_t handle_magic = 0xb1a5, desc_magic = 0xde5c, layout_magic = 0x1a70, pref_magic = 0x9ef;
constexpr uint64_t algo_marker = 0x53494d54414c474full; /* "SIMTALGO" */

struct MatmulDesc {
    uint32_t magic;
    int32_t transa, transb;
    uint32_t epilogue;
    const void *bias;
    int32_t bias_type; /* -1: the type of D */
    int64_t bias_batch_stride;
};

struct Layout {
    uint32_t magic;
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
    int32_t batch;
    int64_t stride;
};

/* The alignments an algorithm may assume of A, B, C and D: cuBLASLt assumes 256 bytes unless the preference
 * says less, and a real GPU then faults or computes garbage on a less aligned pointer. */
struct Pref {
    uint32_t magic;
    uint64_t max_workspace;
    uint32_t reduction_mask;
    uint32_t min_align[4];
};

MatmulDesc *desc_of(cublasLtMatmulDesc_t d, const char *who) {
    MatmulDesc *m = reinterpret_cast<MatmulDesc *>(d);
    if (!m || m->magic != desc_magic)
        simt_die("%s: %p is not a live cublasLtMatmulDesc", who, (void *)d);
    return m;
}

Layout *layout_of(cublasLtMatrixLayout_t l, const char *who, const char *which) {
    Layout *m = reinterpret_cast<Layout *>(l);
    if (!m || m->magic != layout_magic)
        simt_die("%s: %s layout %p is not a live cublasLtMatrixLayout", who, which, (void *)l);
    return m;
}

Pref *pref_of(cublasLtMatmulPreference_t p, const char *who) {
    Pref *m = reinterpret_cast<Pref *>(p);
    if (!m || m->magic != pref_magic)
        simt_die("%s: %p is not a live cublasLtMatmulPreference", who, (void *)p);
    return m;
}

template <typename T> T attr_value(const void *buf, size_t size, const char *who, int attr) {
    if (!buf || size != sizeof(T))
        simt_die("%s: attribute %d takes %zu bytes, got %zu", who, attr, sizeof(T), size);
    T v;
    std::memcpy(&v, buf, sizeof v);
    return v;
}

size_t type_size(cudaDataType t) { return t == CUDA_R_16BF ? 2 : 4; }

const char *type_name(cudaDataType t) {
    return t == CUDA_R_16BF ? "CUDA_R_16BF" : t == CUDA_R_32F ? "CUDA_R_32F" : "?";
}

/* Bytes from the first to one past the last element a layout touches, over all batches. */
size_t extent_bytes(const Layout &l) {
    if (l.rows == 0 || l.cols == 0)
        return 0;
    uint64_t elems = (l.cols - 1) * (uint64_t)l.ld + l.rows + (uint64_t)(l.batch - 1) * (uint64_t)l.stride;
    return (size_t)elems * type_size(l.type);
}

struct Shape {
    int m, n, k;
};

/* Checks what cublasLtMatmul and the heuristic both see: descriptors, types and dimensions. */
Shape check_problem(const MatmulDesc &d, const Layout &a, const Layout &b, const Layout &c, const Layout &dd,
                    const char *who) {
    const Layout *all[4] = {&a, &b, &c, &dd};
    const char *names[4] = {"A", "B", "C", "D"};
    for (int i = 0; i < 4; i++) {
        const Layout &l = *all[i];
        if (l.ld < 1 || (uint64_t)l.ld < l.rows)
            simt_die("%s: %s has ld %lld < rows %llu", who, names[i], (long long)l.ld,
                     (unsigned long long)l.rows);
        if (l.rows > INT32_MAX || l.cols > INT32_MAX || l.ld > INT32_MAX)
            simt_die("%s: %s is too large for the emulator (dimensions above 2^31)", who, names[i]);
        if (l.batch != dd.batch)
            simt_die("%s: %s has batch count %d, D has %d", who, names[i], l.batch, dd.batch);
    }
    if (a.type != b.type)
        simt_die("%s: A is %s, B is %s (must match)", who, type_name(a.type), type_name(b.type));
    if (c.type != dd.type)
        simt_die("%s: C is %s, D is %s (must match)", who, type_name(c.type), type_name(dd.type));
    if (a.type == CUDA_R_32F && dd.type != CUDA_R_32F)
        simt_die("%s: fp32 A and B need an fp32 D", who);
    /* Batches may interleave within a row (attention heads side by side: stride >= rows, all of them within
     * one leading dimension), or follow one another; they may not overlap. */
    bool interleaved =
        dd.stride >= (int64_t)dd.rows && (dd.batch - 1) * dd.stride + (int64_t)dd.rows <= (int64_t)dd.ld;
    if (dd.batch > 1 && !interleaved && dd.stride < (int64_t)((dd.cols - 1) * dd.ld + dd.rows))
        simt_die("%s: D's batch stride %lld makes batches overlap", who, (long long)dd.stride);
    Shape s{(int)dd.rows, (int)dd.cols, (int)(d.transa == CUBLAS_OP_N ? a.cols : a.rows)};
    uint64_t am = d.transa == CUBLAS_OP_N ? a.rows : a.cols;
    uint64_t bk = d.transb == CUBLAS_OP_N ? b.rows : b.cols, bn = d.transb == CUBLAS_OP_N ? b.cols : b.rows;
    if (am != (uint64_t)s.m || bn != (uint64_t)s.n || bk != (uint64_t)s.k)
        simt_die("%s: op(A) is %llux%d and op(B) is %llux%llu, but D is %dx%d", who, (unsigned long long)am,
                 s.k, (unsigned long long)bk, (unsigned long long)bn, s.m, s.n);
    if (c.rows != dd.rows || c.cols != dd.cols)
        simt_die("%s: C is %llux%llu, D is %dx%d", who, (unsigned long long)c.rows,
                 (unsigned long long)c.cols, s.m, s.n);
    if (d.epilogue & CUBLASLT_EPILOGUE_BIAS) {
        int32_t bt = d.bias_type < 0 ? (int32_t)dd.type : d.bias_type;
        if (bt != (int32_t)dd.type && bt != CUDA_R_32F)
            simt_die("%s: bias type %d is neither D's type nor CUDA_R_32F", who, bt);
    }
    return s;
}

/* Column-major rows x cols matrix (leading dimension ld) widened to a dense float copy with the same ld. */
std::vector<float> widen(const void *p, cudaDataType type, size_t elems) {
    std::vector<float> out(elems);
    if (type == CUDA_R_32F)
        std::memcpy(out.data(), p, elems * sizeof(float));
    else
        for (size_t i = 0; i < elems; i++)
            out[i] = __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
    return out;
}

float load(const void *p, cudaDataType type, size_t i) {
    return type == CUDA_R_32F ? static_cast<const float *>(p)[i]
                              : __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
}

float gelu(float x) {
    const float c = 0.7978845608028654f; /* sqrt(2 / pi) */
    return 0.5f * x * (1.0f + std::tanh(c * (x + 0.044715f * x * x * x)));
}

} // namespace

struct cublasLtContext {
    uint32_t magic;
};

namespace {
void check_handle(cublasLtHandle_t h, const char *who) {
    if (!h || h->magic != handle_magic)
        simt_die("%s: %p is not a live cublasLt handle", who, (void *)h);
}
} // namespace

cublasStatus_t cublasLtCreate(cublasLtHandle_t *lightHandle) {
    if (!lightHandle)
        simt_die("cublasLtCreate: NULL handle pointer");
    *lightHandle = new cublasLtContext{handle_magic};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t lightHandle) {
    check_handle(lightHandle, "cublasLtDestroy");
    lightHandle->magic = 0;
    delete lightHandle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *matmulDesc, cublasComputeType_t computeType,
                                        cudaDataType_t scaleType) {
    if (!matmulDesc)
        simt_die("cublasLtMatmulDescCreate: NULL descriptor pointer");
    if (computeType != CUBLAS_COMPUTE_32F)
        simt_die("cublasLtMatmulDescCreate: compute type %d is not emulated (only CUBLAS_COMPUTE_32F)",
                 (int)computeType);
    if (scaleType != CUDA_R_32F)
        simt_die("cublasLtMatmulDescCreate: scale type %d is not emulated (only CUDA_R_32F)", (int)scaleType);
    *matmulDesc = reinterpret_cast<cublasLtMatmulDesc_t>(
        new MatmulDesc{desc_magic, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, nullptr, -1, 0});
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t matmulDesc) {
    MatmulDesc *d = desc_of(matmulDesc, "cublasLtMatmulDescDestroy");
    d->magic = 0;
    delete d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t matmulDesc,
                                              cublasLtMatmulDescAttributes_t attr, const void *buf,
                                              size_t sizeInBytes) {
    const char *who = "cublasLtMatmulDescSetAttribute";
    MatmulDesc *d = desc_of(matmulDesc, who);
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA:
    case CUBLASLT_MATMUL_DESC_TRANSB: {
        int32_t op = attr_value<int32_t>(buf, sizeInBytes, who, attr);
        if (op != CUBLAS_OP_N && op != CUBLAS_OP_T)
            simt_die("%s: transpose %d is not emulated (only CUBLAS_OP_N and CUBLAS_OP_T)", who, op);
        (attr == CUBLASLT_MATMUL_DESC_TRANSA ? d->transa : d->transb) = op;
        break;
    }
    case CUBLASLT_MATMUL_DESC_EPILOGUE: {
        uint32_t e = attr_value<uint32_t>(buf, sizeInBytes, who, attr);
        if (e != CUBLASLT_EPILOGUE_DEFAULT && e != CUBLASLT_EPILOGUE_BIAS && e != CUBLASLT_EPILOGUE_GELU &&
            e != CUBLASLT_EPILOGUE_GELU_BIAS)
            simt_die("%s: epilogue %u is not emulated (DEFAULT, BIAS, GELU, GELU_BIAS)", who, e);
        d->epilogue = e;
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        d->bias = attr_value<const void *>(buf, sizeInBytes, who, attr);
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: {
        int32_t t = attr_value<int32_t>(buf, sizeInBytes, who, attr);
        if (t != CUDA_R_32F && t != CUDA_R_16BF)
            simt_die("%s: bias data type %d is not emulated (CUDA_R_32F, CUDA_R_16BF)", who, t);
        d->bias_type = t;
        break;
    }
    case CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE:
        d->bias_batch_stride = attr_value<int64_t>(buf, sizeInBytes, who, attr);
        break;
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        if (attr_value<int32_t>(buf, sizeInBytes, who, attr) != CUDA_R_32F)
            simt_die("%s: only CUDA_R_32F scale type is emulated", who);
        break;
    case CUBLASLT_MATMUL_DESC_POINTER_MODE:
        if (attr_value<int32_t>(buf, sizeInBytes, who, attr) != CUBLASLT_POINTER_MODE_HOST)
            simt_die("%s: only CUBLASLT_POINTER_MODE_HOST is emulated", who);
        break;
    default:
        simt_die("%s: attribute %d is not emulated", who, (int)attr);
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *matLayout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (!matLayout)
        simt_die("cublasLtMatrixLayoutCreate: NULL layout pointer");
    if (type != CUDA_R_32F && type != CUDA_R_16BF)
        simt_die("cublasLtMatrixLayoutCreate: data type %d is not emulated (CUDA_R_32F, CUDA_R_16BF)",
                 (int)type);
    *matLayout =
        reinterpret_cast<cublasLtMatrixLayout_t>(new Layout{layout_magic, type, rows, cols, ld, 1, 0});
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t matLayout) {
    Layout *l = layout_of(matLayout, "cublasLtMatrixLayoutDestroy", "the");
    l->magic = 0;
    delete l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t matLayout,
                                                cublasLtMatrixLayoutAttribute_t attr, const void *buf,
                                                size_t sizeInBytes) {
    const char *who = "cublasLtMatrixLayoutSetAttribute";
    Layout *l = layout_of(matLayout, who, "the");
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT:
        l->batch = attr_value<int32_t>(buf, sizeInBytes, who, attr);
        if (l->batch < 1)
            simt_die("%s: batch count %d < 1", who, l->batch);
        break;
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET:
        l->stride = attr_value<int64_t>(buf, sizeInBytes, who, attr);
        if (l->stride < 0)
            simt_die("%s: negative batch stride %lld", who, (long long)l->stride);
        break;
    case CUBLASLT_MATRIX_LAYOUT_ORDER:
        if (attr_value<int32_t>(buf, sizeInBytes, who, attr) != CUBLASLT_ORDER_COL)
            simt_die("%s: only CUBLASLT_ORDER_COL is emulated", who);
        break;
    default:
        simt_die("%s: attribute %d is not emulated", who, (int)attr);
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    if (!pref)
        simt_die("cublasLtMatmulPreferenceCreate: NULL preference pointer");
    *pref = reinterpret_cast<cublasLtMatmulPreference_t>(new Pref{pref_magic, 0, 0, {256, 256, 256, 256}});
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    Pref *p = pref_of(pref, "cublasLtMatmulPreferenceDestroy");
    p->magic = 0;
    delete p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *buf, size_t sizeInBytes) {
    const char *who = "cublasLtMatmulPreferenceSetAttribute";
    Pref *p = pref_of(pref, who);
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        p->max_workspace = attr_value<uint64_t>(buf, sizeInBytes, who, attr);
        break;
    case CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK: /* every scheme reduces in fp32 here */
        p->reduction_mask = attr_value<uint32_t>(buf, sizeInBytes, who, attr);
        break;
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        p->min_align[attr - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] =
            attr_value<uint32_t>(buf, sizeInBytes, who, attr);
        break;
    default:
        simt_die("%s: attribute %d is not emulated", who, (int)attr);
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t lightHandle,
                                              cublasLtMatmulDesc_t operationDesc,
                                              cublasLtMatrixLayout_t Adesc, cublasLtMatrixLayout_t Bdesc,
                                              cublasLtMatrixLayout_t Cdesc, cublasLtMatrixLayout_t Ddesc,
                                              cublasLtMatmulPreference_t preference, int requestedAlgoCount,
                                              cublasLtMatmulHeuristicResult_t heuristicResultsArray[],
                                              int *returnAlgoCount) {
    const char *who = "cublasLtMatmulAlgoGetHeuristic";
    check_handle(lightHandle, who);
    const Pref &p = *pref_of(preference, who);
    check_problem(*desc_of(operationDesc, who), *layout_of(Adesc, who, "A"), *layout_of(Bdesc, who, "B"),
                  *layout_of(Cdesc, who, "C"), *layout_of(Ddesc, who, "D"), who);
    if (requestedAlgoCount < 1 || !heuristicResultsArray || !returnAlgoCount)
        simt_die("%s: requestedAlgoCount %d < 1 or NULL result pointers", who, requestedAlgoCount);
    cublasLtMatmulHeuristicResult_t &r = heuristicResultsArray[0];
    std::memset(&r, 0, sizeof r);
    r.algo.data[0] = algo_marker;
    for (int i = 0; i < 4; i++)
        r.algo.data[1 + i] = p.min_align[i];
    r.workspaceSize = 0;
    r.state = CUBLAS_STATUS_SUCCESS;
    r.wavesCount = 1.0f;
    *returnAlgoCount = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t lightHandle, cublasLtMatmulDesc_t computeDesc,
                              const void *alpha, const void *A, cublasLtMatrixLayout_t Adesc, const void *B,
                              cublasLtMatrixLayout_t Bdesc, const void *beta, const void *C,
                              cublasLtMatrixLayout_t Cdesc, void *D, cublasLtMatrixLayout_t Ddesc,
                              const cublasLtMatmulAlgo_t *algo, void *workspace, size_t workspaceSizeInBytes,
                              cudaStream_t stream) {
    const char *who = "cublasLtMatmul";
    check_handle(lightHandle, who);
    const MatmulDesc &d = *desc_of(computeDesc, who);
    const Layout &la = *layout_of(Adesc, who, "A"), &lb = *layout_of(Bdesc, who, "B");
    const Layout &lc = *layout_of(Cdesc, who, "C"), &ld = *layout_of(Ddesc, who, "D");
    Shape s = check_problem(d, la, lb, lc, ld, who);
    simt_check_stream(stream, who);
    if (algo && algo->data[0] != algo_marker)
        simt_die("%s: algo was not produced by cublasLtMatmulAlgoGetHeuristic", who);
    const void *ptrs[4] = {A, B, C, D};
    for (int i = 0; algo && i < 4; i++)
        if ((uintptr_t)ptrs[i] % algo->data[1 + i])
            simt_die("%s: %c = %p is not aligned to the %llu bytes its algorithm was chosen for", who,
                     "ABCD"[i], ptrs[i], (unsigned long long)algo -> data[1 + i]);
    if (workspaceSizeInBytes)
        simt_check_device_range(workspace, workspaceSizeInBytes, "cublasLtMatmul workspace");
    if (!alpha || !beta || simt_is_device_ptr(alpha) || simt_is_device_ptr(beta))
        simt_die("%s: alpha and beta must be host pointers (CUBLASLT_POINTER_MODE_HOST)", who);
    const float al = *static_cast<const float *>(alpha), be = *static_cast<const float *>(beta);

    size_t ea = extent_bytes(la), eb = extent_bytes(lb), ec = extent_bytes(lc), ed = extent_bytes(ld);
    if (ed)
        simt_check_device_range(D, ed, "cublasLtMatmul D");
    if (s.m == 0 || s.n == 0)
        return CUBLAS_STATUS_SUCCESS;
    if (ea)
        simt_check_device_range(A, ea, "cublasLtMatmul A");
    if (eb)
        simt_check_device_range(B, eb, "cublasLtMatmul B");
    if (be != 0.0f || C)
        simt_check_device_range(C, ec, "cublasLtMatmul C");
    if (simt_overlap(D, ed, A, ea) || simt_overlap(D, ed, B, eb))
        simt_die("%s: D overlaps A or B", who);
    if (C == D ? lc.ld != ld.ld || lc.stride != ld.stride : simt_overlap(C, ec, D, ed))
        simt_die("%s: C and D overlap without being the same matrix (same pointer, ld and batch stride)",
                 who);
    const void *bias = nullptr;
    cudaDataType bias_type = ld.type;
    if (d.epilogue & CUBLASLT_EPILOGUE_BIAS) {
        bias = d.bias;
        if (d.bias_type >= 0)
            bias_type = (cudaDataType)d.bias_type;
        size_t bias_elems = (size_t)s.m + (size_t)(ld.batch - 1) * (size_t)d.bias_batch_stride;
        simt_check_device_range(bias, bias_elems * type_size(bias_type), "cublasLt bias");
    }

    const size_t es = type_size(la.type), dsz = type_size(ld.type);
    std::vector<float> prod((size_t)s.m * s.n);
    for (int bt = 0; bt < ld.batch; bt++) {
        const char *pa = static_cast<const char *>(A) + (size_t)bt * la.stride * es;
        const char *pb = static_cast<const char *>(B) + (size_t)bt * lb.stride * es;
        std::vector<float> fa = widen(pa, la.type, (la.cols - 1) * la.ld + la.rows);
        std::vector<float> fb = widen(pb, lb.type, (lb.cols - 1) * lb.ld + lb.rows);
        if (s.k == 0)
            std::fill(prod.begin(), prod.end(), 0.0f);
        else
            cblas_sgemm(CblasColMajor, d.transa == CUBLAS_OP_N ? CblasNoTrans : CblasTrans,
                        d.transb == CUBLAS_OP_N ? CblasNoTrans : CblasTrans, s.m, s.n, s.k, al, fa.data(),
                        (int)la.ld, fb.data(), (int)lb.ld, 0.0f, prod.data(), s.m);
        const char *pc = be != 0.0f ? static_cast<const char *>(C) + (size_t)bt * lc.stride * dsz : nullptr;
        char *pd = static_cast<char *>(D) + (size_t)bt * ld.stride * dsz;
        const char *pbias =
            bias ? static_cast<const char *>(bias) + (size_t)bt * d.bias_batch_stride * type_size(bias_type)
                 : nullptr;
        for (int j = 0; j < s.n; j++)
            for (int i = 0; i < s.m; i++) {
                float v = prod[(size_t)j * s.m + i];
                if (pc)
                    v += be * load(pc, lc.type, (size_t)j * lc.ld + i);
                if (pbias)
                    v += load(pbias, bias_type, (size_t)i);
                if (d.epilogue & CUBLASLT_EPILOGUE_GELU)
                    v = gelu(v);
                size_t o = (size_t)j * ld.ld + i;
                if (ld.type == CUDA_R_32F)
                    reinterpret_cast<float *>(pd)[o] = v;
                else
                    reinterpret_cast<__nv_bfloat16 *>(pd)[o] = __float2bfloat16(v);
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

static const char *status_string(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS:
        return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "the functionality requested is not supported";
    default:
        return "unknown error";
    }
}

const char *cublasLtGetStatusString(cublasStatus_t status) { return status_string(status); }
const char *cublasGetStatusString(cublasStatus_t status) { return status_string(status); }
