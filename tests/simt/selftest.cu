/* Self-test of the SIMT emulator: kernels exercising barriers, shared memory, warp operations and both
 * schedules; misuse that must abort (run in forked children); device memory checks; cuBLASLt against a
 * double-precision reference. NCCL needs mpirun and is tested elsewhere. Prints "ok NAME" / "FAIL NAME: why".
 */
#include "../testutil.h"
#include "simt.h"

#include <cublasLt.h>
#include <signal.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#define LAUNCH(kernel, grid, block, shmem, stream, ...)                                                      \
    simt_launch(#kernel, grid, block, shmem, stream, [=] { kernel(__VA_ARGS__); })

#define CK(call)                                                                                             \
    do {                                                                                                     \
        cudaError_t e_ = (call);                                                                             \
        if (e_ != cudaSuccess) {                                                                             \
            printf("FAIL %s: %s\n", #call, cudaGetErrorString(e_));                                          \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

/* ---- kernels ---- */

/* Threads >= keep return at once; the rest pass two barriers and read a neighbour's shared value. */
__global__ void early_return(int *out, int keep) {
    __shared__ int sh[256];
    int t = threadIdx.x;
    if (t >= keep)
        return;
    sh[t] = t * 10;
    __syncthreads();
    int v = sh[(t + 1) % keep];
    __syncthreads();
    sh[t] = v + 1;
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = sh[t];
}

/* Tree reduction in static shared memory; one sum per block. */
__global__ void __launch_bounds__(256) block_sum(float *sums, const float *__restrict__ x, int n) {
    __shared__ float sh[256];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    sh[t] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s)
            sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0)
        sums[blockIdx.x] = sh[0];
}

/* The same with a missing barrier between the write and the first read. */
__global__ void block_sum_racy(float *sums, const float *x) {
    __shared__ float sh[256];
    int t = threadIdx.x;
    sh[t] = x[blockIdx.x * blockDim.x + t];
    for (int s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s)
            sh[t] += sh[t + s];
        __syncthreads();
    }
    if (t == 0)
        sums[blockIdx.x] = sh[0];
}

/* Warp sums with xor and down shuffles, combined across warps through shared memory. */
__device__ __forceinline__ float warp_sum_xor(float v) {
    for (int o = 16; o > 0; o /= 2)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__global__ void warp_sums(float *out_xor, float *out_down, double *out_block, const float *x) {
    __shared__ double partial[32];
    int t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    float v = x[i];
    float a = warp_sum_xor(v);
    float b = v;
    for (int o = 16; o > 0; o /= 2)
        b += __shfl_down_sync(0xffffffffu, b, o);
    b = __shfl_sync(0xffffffffu, b, 0);
    out_xor[i] = a;
    out_down[i] = b;
    if (t % 32 == 0)
        partial[t / 32] = a;
    __syncthreads();
    if (t < 32) {
        double p = t < (int)(blockDim.x / 32) ? partial[t] : 0.0;
        for (int o = 16; o > 0; o /= 2)
            p += __shfl_xor_sync(0xffffffffu, p, o);
        if (t == 0)
            out_block[blockIdx.x] = p;
    }
}

/* One shuffle of each kind with a given width and lane argument, on ints. */
__global__ void shuffle_kinds(int *out, int width, int arg) {
    int t = threadIdx.x, v = 1000 + t;
    out[4 * t + 0] = __shfl_sync(0xffffffffu, v, arg, width);
    out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, (unsigned)arg, width);
    out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, (unsigned)arg, width);
    out[4 * t + 3] = __shfl_xor_sync(0xffffffffu, v, arg, width);
}

/* Inclusive prefix sum within each warp (Hillis-Steele with __shfl_up_sync). */
__global__ void warp_scan(int *out, const int *x) {
    int t = threadIdx.x, v = x[t];
    for (int o = 1; o < 32; o *= 2) {
        int u = __shfl_up_sync(0xffffffffu, v, (unsigned)o);
        if (t % 32 >= o)
            v += u;
    }
    out[t] = v;
}

__global__ void votes(unsigned *ballot, int *any, int *all, const int *pred) {
    int t = threadIdx.x;
    unsigned b = __ballot_sync(0xffffffffu, pred[t]);
    int a = __any_sync(0xffffffffu, pred[t]);
    int l = __all_sync(0xffffffffu, pred[t]);
    __syncwarp();
    if (t % 32 == 0) {
        ballot[t / 32] = b;
        any[t / 32] = a;
        all[t / 32] = l;
    }
}

/* Reverses each block's slice through dynamic shared memory; a 2-D block checks the index macros. */
__global__ void reverse_dyn(float *y, const float *x) {
    SIMT_DYNAMIC_SHARED(float, sh);
    int t = threadIdx.y * blockDim.x + threadIdx.x, n = blockDim.x * blockDim.y;
    int base = (blockIdx.y * gridDim.x + blockIdx.x) * n;
    sh[t] = x[base + t];
    __syncthreads();
    y[base + t] = sh[n - 1 - t] + rsqrtf(4.0f) * 0.0f + __expf(0.0f) - 1.0f;
}

__global__ void write_at(float *p, int i) {
    if (threadIdx.x == 0)
        p[i] = 1.0f;
}

/* Recursion deep enough to run off a 256 KiB fiber stack. */
__device__ int deep(int n) {
    volatile char pad[1024];
    pad[n % 1024] = (char)n;
    return n == 0 ? 0 : deep(n - 1) + pad[n % 1024];
}

__global__ void stack_hog(int *out) { out[threadIdx.x] = deep(100000); }

__global__ void dyn_overflow(float *out) {
    SIMT_DYNAMIC_SHARED(float, sh);
    sh[threadIdx.x + 1] = 1.0f; /* one past the end for the last thread */
    __syncthreads();
    out[threadIdx.x] = sh[threadIdx.x];
}

__global__ void divergent_barrier(int *out) {
    if (threadIdx.x % 2) {
        __syncthreads();
        out[threadIdx.x] = 1;
    } else {
        __syncthreads();
        out[threadIdx.x] = 2;
    }
}

__global__ void barrier_vs_shuffle(int *out) {
    int v = threadIdx.x;
    if (threadIdx.x < 16)
        __syncthreads();
    else
        v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

__global__ void partial_warp_shuffle(int *out) {
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

__global__ void half_mask_shuffle(int *out) {
    out[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, (int)threadIdx.x, 1);
}

__global__ void exited_lane_shuffle(int *out) {
    if (threadIdx.x == 5)
        return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

/* ---- helpers ---- */

template <typename T> T *dev_alloc(size_t n) {
    void *p;
    CK(cudaMalloc(&p, n * sizeof(T)));
    return static_cast<T *>(p);
}

template <typename T> std::vector<T> to_host(const T *d, size_t n) {
    std::vector<T> h(n);
    CK(cudaMemcpy(h.data(), d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
}

template <typename T> T *to_dev(const std::vector<T> &h) {
    T *d = dev_alloc<T>(h.size());
    CK(cudaMemcpy(d, h.data(), h.size() * sizeof(T), cudaMemcpyHostToDevice));
    return d;
}

/* Runs f in a forked child with stderr captured; returns the wait status. */
template <typename F> int run_child(F f, std::string &err) {
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        exit(1);
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        f();
        _exit(0);
    }
    close(fds[1]);
    char buf[4096];
    ssize_t r;
    while ((r = read(fds[0], buf, sizeof buf)) > 0)
        err.append(buf, (size_t)r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return status;
}

static std::string first_line(const std::string &s) { return s.substr(0, s.find('\n')); }

/* Passes when f dies in a child (signal or non-zero exit) saying `expect` on stderr (or with
 * AddressSanitizer's report, which comes first for out-of-bounds accesses when built with ASan). */
template <typename F> void expect_death(const char *name, const char *expect, F f) {
    std::string err;
    int status = run_child(f, err);
    bool died = WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0);
    bool said = err.find(expect) != std::string::npos || err.find("AddressSanitizer") != std::string::npos;
    tu_check(died && said, name, "child %s; stderr: %s", died ? "died" : "did not die",
             first_line(err).c_str());
}

/* ---- tests ---- */

static void test_no_device() {
    std::string err;
    int status = run_child(
        [] {
            setenv("SIMT_DEVICES", "0", 1);
            int n = -1;
            void *p = nullptr;
            bool ok = cudaGetDeviceCount(&n) == cudaErrorNoDevice && n == 0 &&
                      cudaGetLastError() == cudaErrorNoDevice && cudaGetLastError() == cudaSuccess &&
                      cudaMalloc(&p, 16) == cudaErrorNoDevice && !p && cudaSetDevice(0) == cudaErrorNoDevice;
            _exit(ok ? 0 : 1);
        },
        err);
    tu_check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "no_device",
             "SIMT_DEVICES=0 does not look like a machine without GPU: %s", first_line(err).c_str());
}

static void test_runtime() {
    int n = 0, dev = -1, v = 0;
    CK(cudaGetDeviceCount(&n));
    CK(cudaSetDevice(0));
    CK(cudaGetDevice(&dev));
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    CK(cudaDeviceGetAttribute(&v, cudaDevAttrMultiProcessorCount, 0));
    tu_check(n == 1 && dev == 0 && prop.major == 9 && prop.warpSize == 32 &&
                 prop.maxThreadsPerBlock == 1024 && v == prop.multiProcessorCount &&
                 strcmp(prop.name, "SIMT emulator") == 0,
             "runtime_device", "count %d device %d major %d", n, dev, prop.major);
    tu_check(cudaSetDevice(1) == cudaErrorInvalidDevice && cudaGetLastError() == cudaErrorInvalidDevice &&
                 cudaPeekAtLastError() == cudaSuccess,
             "runtime_errors", "cudaSetDevice(1) on one device");

    cudaStream_t s;
    cudaEvent_t a, b, nt;
    CK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    CK(cudaEventCreateWithFlags(&nt, cudaEventDisableTiming));
    CK(cudaEventRecord(a, s));
    float *d = dev_alloc<float>(1000);
    CK(cudaMemsetAsync(d, 0, 1000 * sizeof(float), s));
    CK(cudaEventRecord(b, s));
    CK(cudaStreamWaitEvent(s, b, 0));
    CK(cudaEventSynchronize(b));
    CK(cudaStreamSynchronize(s));
    float ms = -1;
    CK(cudaEventElapsedTime(&ms, a, b));
    CK(cudaEventRecord(nt, s));
    tu_check(ms >= 0 && cudaEventElapsedTime(&ms, a, nt) == cudaErrorInvalidResourceHandle, "runtime_events",
             "elapsed %g", ms);
    cudaGetLastError();
    std::vector<float> h = to_host(d, 1000);
    bool zero = true;
    for (float x : h)
        zero = zero && x == 0.0f;
    tu_check(zero, "runtime_memset", "cudaMemsetAsync did not zero");
    CK(cudaEventDestroy(a));
    CK(cudaEventDestroy(b));
    CK(cudaEventDestroy(nt));
    CK(cudaStreamDestroy(s));

    float host = 0;
    size_t free_b, total_b;
    CK(cudaMemGetInfo(&free_b, &total_b));
    tu_check(simt_is_device_ptr(d) && simt_is_device_ptr(d + 999) && !simt_is_device_ptr(&host) &&
                 !simt_is_device_ptr(h.data()) && free_b < total_b,
             "device_ptr_registry", "simt_is_device_ptr or cudaMemGetInfo wrong");
    float *fresh = dev_alloc<float>(4);
    std::vector<float> hf = to_host(fresh, 4);
    tu_check(std::isnan(hf[0]) && std::isnan(hf[3]), "fresh_memory_is_nan", "got %g", hf[0]);
    void *pinned;
    CK(cudaMallocHost(&pinned, 100));
    tu_check(!simt_is_device_ptr(pinned), "pinned_is_host", "pinned memory registered as device");
    CK(cudaFreeHost(pinned));
    CK(cudaFree(fresh));
    CK(cudaFree(d));
    simt_check_guards();
}

static void test_barriers() {
    int *out = dev_alloc<int>(2 * 256);
    CK(cudaMemset(out, 0, 2 * 256 * sizeof(int)));
    const int keep = 100;
    LAUNCH(early_return, dim3(2), dim3(256), 0, nullptr, out, keep);
    std::vector<int> h = to_host(out, 2 * 256);
    bool ok = true;
    for (int b = 0; b < 2; b++)
        for (int t = 0; t < 256; t++)
            ok = ok && h[b * 256 + t] == (t < keep ? ((t + 1) % keep) * 10 + 1 : 0);
    tu_check(ok, "barrier_early_return", "wrong values");
    CK(cudaFree(out));
}

static void test_block_sum() {
    const int nb = 64, n = nb * 256 - 7;
    std::vector<float> x(nb * 256, 0.0f);
    for (int i = 0; i < n; i++)
        x[i] = (float)(i % 17) - 8.0f; /* integers: every order gives the exact sum */
    float *dx = to_dev(x), *ds = dev_alloc<float>(nb);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    LAUNCH(block_sum, dim3(nb), dim3(256), 0, nullptr, ds, dx, n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("# block_sum: %d blocks x 256 threads in %.1f ms\n", nb,
           (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
    std::vector<float> s = to_host(ds, nb);
    bool ok = true;
    for (int b = 0; b < nb; b++) {
        double ref = 0;
        for (int i = b * 256; i < (b + 1) * 256 && i < n; i++)
            ref += x[i];
        ok = ok && s[b] == (float)ref;
    }
    tu_check(ok, "shared_reduction", "block sums differ from the reference");

    /* Schedules: a correct kernel gives the same bits both ways, a racy one does not. */
    std::vector<float> r(nb * 256);
    for (size_t i = 0; i < r.size(); i++)
        r[i] = (float)tu_normal();
    float *dr = to_dev(r);
    std::vector<float> res[2], racy[2];
    for (int sch = 0; sch < 2; sch++) {
        simt_set_schedule(sch);
        LAUNCH(block_sum, dim3(nb), dim3(256), 0, nullptr, ds, dr, nb * 256);
        res[sch] = to_host(ds, nb);
        LAUNCH(block_sum_racy, dim3(nb), dim3(256), 0, nullptr, ds, dr);
        racy[sch] = to_host(ds, nb);
    }
    simt_set_schedule(0);
    tu_check(memcmp(res[0].data(), res[1].data(), nb * sizeof(float)) == 0, "schedules_agree_when_synced",
             "a correctly synchronized kernel differs between schedules");
    tu_check(memcmp(racy[0].data(), racy[1].data(), nb * sizeof(float)) != 0, "schedules_expose_missing_sync",
             "a kernel missing __syncthreads gives the same result under both schedules");
    CK(cudaFree(dx));
    CK(cudaFree(ds));
    CK(cudaFree(dr));
}

static void test_warps() {
    const int nb = 3, bs = 128;
    std::vector<float> x(nb * bs);
    for (auto &v : x)
        v = (float)tu_int(100) - 50.0f;
    float *dx = to_dev(x), *dxor = dev_alloc<float>(x.size()), *ddown = dev_alloc<float>(x.size());
    double *dblk = dev_alloc<double>(nb);
    LAUNCH(warp_sums, dim3(nb), dim3(bs), 0, nullptr, dxor, ddown, dblk, dx);
    std::vector<float> hx = to_host(dxor, x.size()), hd = to_host(ddown, x.size());
    std::vector<double> hb = to_host(dblk, nb);
    bool ok = true;
    for (int b = 0; b < nb; b++) {
        double bsum = 0;
        for (int w = 0; w < bs / 32; w++) {
            double s = 0;
            for (int l = 0; l < 32; l++)
                s += x[b * bs + w * 32 + l];
            bsum += s;
            for (int l = 0; l < 32; l++)
                ok = ok && hx[b * bs + w * 32 + l] == (float)s && hd[b * bs + w * 32 + l] == (float)s;
        }
        ok = ok && hb[b] == bsum;
    }
    tu_check(ok, "shuffle_reductions", "xor/down/idx shuffle sums wrong");

    /* Every shuffle kind against the documented CUDA semantics, for every width and several arguments. */
    int *dout = dev_alloc<int>(64 * 4);
    bool kinds_ok = true;
    char why[160] = "";
    for (int width = 1; width <= 32; width *= 2)
        for (int arg : {0, 1, 2, 3, 5, 8, 16, 31}) {
            LAUNCH(shuffle_kinds, dim3(1), dim3(64), 0, nullptr, dout, width, arg);
            std::vector<int> h = to_host(dout, 64 * 4);
            for (int t = 0; t < 64 && kinds_ok; t++) {
                int lane = t % 32, base = t - lane, seg = lane / width * width;
                int idx = seg + arg % width;
                int up = lane % width >= arg ? lane - arg : lane;
                int down = lane % width + arg < width ? lane + arg : lane;
                int x = lane ^ arg, xr = x < seg + width ? x : lane;
                int want[4] = {idx, up, down, xr};
                for (int k = 0; k < 4; k++)
                    if (h[4 * t + k] != 1000 + base + want[k]) {
                        kinds_ok = false;
                        snprintf(why, sizeof why, "width %d arg %d thread %d kind %d: got %d want %d", width,
                                 arg, t, k, h[4 * t + k] - 1000, base + want[k]);
                    }
            }
        }
    tu_check(kinds_ok, "shuffle_semantics", "%s", why);

    std::vector<int> xi(96);
    for (auto &v : xi)
        v = tu_int(10);
    int *dxi = to_dev(xi), *dscan = dev_alloc<int>(96);
    LAUNCH(warp_scan, dim3(1), dim3(96), 0, nullptr, dscan, dxi);
    std::vector<int> hs = to_host(dscan, 96);
    ok = true;
    for (int w = 0; w < 3; w++)
        for (int l = 0, acc = 0; l < 32; l++) {
            acc += xi[w * 32 + l];
            ok = ok && hs[w * 32 + l] == acc;
        }
    tu_check(ok, "shuffle_up_scan", "prefix sums wrong");

    std::vector<int> pred(128, 0);
    for (int l = 0; l < 32; l++) {
        pred[32 + l] = 1;          /* warp 1: all */
        pred[64 + l] = l % 3 == 0; /* warp 2: some */
    }
    int *dp = to_dev(pred), *dany = dev_alloc<int>(4), *dall = dev_alloc<int>(4);
    unsigned *dbal = dev_alloc<unsigned>(4);
    LAUNCH(votes, dim3(1), dim3(128), 0, nullptr, dbal, dany, dall, dp);
    std::vector<unsigned> bal = to_host(dbal, 4);
    std::vector<int> an = to_host(dany, 4), al = to_host(dall, 4);
    tu_check(bal[0] == 0 && bal[1] == 0xffffffffu && bal[2] == 0x49249249u && bal[3] == 0 && an[0] == 0 &&
                 an[1] == 1 && an[2] == 1 && al[0] == 0 && al[1] == 1 && al[2] == 0,
             "votes", "ballot %08x %08x %08x", bal[0], bal[1], bal[2]);
    for (void *p : {(void *)dx, (void *)dxor, (void *)ddown, (void *)dblk, (void *)dout, (void *)dxi,
                    (void *)dscan, (void *)dp, (void *)dany, (void *)dall, (void *)dbal})
        CK(cudaFree(p));
}

static void test_dynamic_shared() {
    const dim3 grid(3, 2), block(16, 4);
    const int n = 6 * 64;
    std::vector<float> x(n);
    for (int i = 0; i < n; i++)
        x[i] = (float)i;
    float *dx = to_dev(x), *dy = dev_alloc<float>(n);
    LAUNCH(reverse_dyn, grid, block, 64 * sizeof(float), nullptr, dy, dx);
    std::vector<float> y = to_host(dy, n);
    bool ok = true;
    for (int b = 0; b < 6; b++)
        for (int t = 0; t < 64; t++)
            ok = ok && y[b * 64 + t] == x[b * 64 + 63 - t];
    tu_check(ok, "dynamic_shared", "reversal wrong");
    CK(cudaFree(dx));
    CK(cudaFree(dy));
}

static void test_misuse() {
    expect_death("guard_overflow_after_end", "guard zone after its end", [] {
        float *p = dev_alloc<float>(25);
        LAUNCH(write_at, dim3(1), dim3(32), 0, nullptr, p, 25);
    });
    expect_death("guard_underflow_at_free", "guard zone before its start", [] {
        float *p = dev_alloc<float>(25);
        p[-1] = 0.0f;
        cudaFree(p);
    });
    expect_death("barrier_divergent", "barrier in divergent code", [] {
        int *o = dev_alloc<int>(64);
        LAUNCH(divergent_barrier, dim3(1), dim3(64), 0, nullptr, o);
    });
    expect_death("deadlock_detected", "deadlock", [] {
        int *o = dev_alloc<int>(64);
        LAUNCH(barrier_vs_shuffle, dim3(1), dim3(64), 0, nullptr, o);
    });
    expect_death("shuffle_partial_warp", "multiple of 32", [] {
        int *o = dev_alloc<int>(48);
        LAUNCH(partial_warp_shuffle, dim3(1), dim3(48), 0, nullptr, o);
    });
    expect_death("shuffle_partial_mask", "only the full mask", [] {
        int *o = dev_alloc<int>(32);
        LAUNCH(half_mask_shuffle, dim3(1), dim3(32), 0, nullptr, o);
    });
    expect_death("shuffle_exited_lane", "lanes of its warp", [] {
        int *o = dev_alloc<int>(32);
        LAUNCH(exited_lane_shuffle, dim3(1), dim3(32), 0, nullptr, o);
    });
    expect_death("block_too_large", "bad block", [] {
        int *o = dev_alloc<int>(32);
        LAUNCH(partial_warp_shuffle, dim3(1), dim3(2048), 0, nullptr, o);
    });
    expect_death("dynamic_shared_limit", "dynamic shared memory exceed", [] {
        float *o = dev_alloc<float>(64);
        LAUNCH(reverse_dyn, dim3(1), dim3(64), 64 * 1024, nullptr, o, o);
    });
    expect_death("fiber_stack_overflow", "stack overflow", [] {
        int *o = dev_alloc<int>(32);
        LAUNCH(stack_hog, dim3(1), dim3(32), 0, nullptr, o);
    });
    expect_death("dynamic_shared_overflow", "outside its 128 bytes of dynamic shared memory", [] {
        float *o = dev_alloc<float>(32);
        LAUNCH(dyn_overflow, dim3(1), dim3(32), 32 * sizeof(float), nullptr, o);
    });
    expect_death("memcpy_direction", "is not device memory", [] {
        float h[4] = {0, 0, 0, 0}, g[4];
        cudaMemcpy(g, h, sizeof h, cudaMemcpyHostToDevice);
    });
    expect_death("memcpy_extent", "exceed the device allocation", [] {
        float h[8] = {0};
        float *p = dev_alloc<float>(4);
        cudaMemcpy(p, h, sizeof h, cudaMemcpyHostToDevice);
    });
    expect_death("free_foreign_pointer", "not an address cudaMalloc returned", [] {
        float *p = dev_alloc<float>(4);
        cudaFree(p + 1);
    });
    expect_death("device_call_outside_kernel", "outside a kernel", [] { __syncthreads(); });
}

/* ---- cuBLASLt ---- */

struct MatSpec {
    cudaDataType type;
    int rows, cols, ld, batch;
    long long stride;
};

static size_t mat_elems(const MatSpec &m) {
    return (size_t)(m.batch - 1) * m.stride + (size_t)(m.cols - 1) * m.ld + m.rows;
}

/* Device matrix with random values; host copy of the values as the device holds them (bf16-rounded). */
static void *make_mat(const MatSpec &m, std::vector<double> &vals) {
    size_t n = mat_elems(m), es = m.type == CUDA_R_16BF ? 2 : 4;
    vals.assign(n, 0.0);
    std::vector<unsigned char> raw(n * es);
    for (size_t i = 0; i < n; i++) {
        float f = (float)tu_normal();
        if (m.type == CUDA_R_16BF) {
            __nv_bfloat16 b = __float2bfloat16(f);
            memcpy(&raw[i * 2], &b, 2);
            vals[i] = __bfloat162float(b);
        } else {
            memcpy(&raw[i * 4], &f, 4);
            vals[i] = f;
        }
    }
    void *d;
    CK(cudaMalloc(&d, raw.size()));
    CK(cudaMemcpy(d, raw.data(), raw.size(), cudaMemcpyHostToDevice));
    return d;
}

static cublasLtMatrixLayout_t make_layout(const MatSpec &m) {
    cublasLtMatrixLayout_t l;
    cublasLtMatrixLayoutCreate(&l, m.type, (uint64_t)m.rows, (uint64_t)m.cols, m.ld);
    int32_t order = CUBLASLT_ORDER_COL;
    cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_ORDER, &order, sizeof order);
    if (m.batch > 1) {
        int32_t b = m.batch;
        int64_t s = m.stride;
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &b, sizeof b);
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &s, sizeof s);
    }
    return l;
}

static double gelu_ref(double x) {
    return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

/* One cublasLtMatmul against a double reference; C == D (in place) when in_place. */
static void check_matmul(cublasLtHandle_t lt, cudaDataType ab, cudaDataType cd, int ta, int tb, int batch,
                         float beta, bool in_place, uint32_t epilogue) {
    const int m = 13, n = 7, k = 19;
    MatSpec A{ab, ta ? k : m, ta ? m : k, (ta ? k : m) + 3, batch, 0};
    MatSpec B{ab, tb ? n : k, tb ? k : n, (tb ? n : k) + 1, batch, 0};
    MatSpec C{cd, m, n, m + 2, batch, 0}, D{cd, m, n, m + 2, batch, 0};
    A.stride = (long long)A.ld * A.cols + 5;
    B.stride = (long long)B.ld * B.cols;
    C.stride = D.stride = (long long)C.ld * n + 4;
    std::vector<double> va, vb, vc, vd, vbias;
    void *dA = make_mat(A, va), *dB = make_mat(B, vb), *dC = make_mat(C, vc);
    void *dD = in_place ? dC : make_mat(D, vd);
    MatSpec bias{CUDA_R_32F, m, 1, m, 1, 0};
    void *dbias = make_mat(bias, vbias);

    cublasLtMatmulDesc_t desc;
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    int32_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue);
    if (epilogue & CUBLASLT_EPILOGUE_BIAS) {
        int32_t bt = CUDA_R_32F;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &dbias, sizeof dbias);
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt);
    }
    cublasLtMatrixLayout_t la = make_layout(A), lb = make_layout(B), lc = make_layout(C), ld = make_layout(D);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    uint64_t ws = 1 << 20;
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    cublasLtMatmulHeuristicResult_t heur;
    int nres = 0;
    cublasLtMatmulAlgoGetHeuristic(lt, desc, la, lb, lc, ld, pref, 1, &heur, &nres);
    void *work;
    CK(cudaMalloc(&work, ws));
    float alpha = 0.75f;
    cublasStatus_t st = cublasLtMatmul(lt, desc, &alpha, dA, la, dB, lb, &beta, dC, lc, dD, ld, &heur.algo,
                                       work, ws, nullptr);

    size_t es = cd == CUDA_R_16BF ? 2 : 4;
    std::vector<unsigned char> raw(mat_elems(D) * es);
    CK(cudaMemcpy(raw.data(), dD, raw.size(), cudaMemcpyDeviceToHost));
    std::vector<float> got, want_f;
    std::vector<double> want;
    for (int b = 0; b < batch; b++)
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    double a = ta ? va[b * A.stride + i * A.ld + p] : va[b * A.stride + p * A.ld + i];
                    double bb = tb ? vb[b * B.stride + p * B.ld + j] : vb[b * B.stride + j * B.ld + p];
                    s += a * bb;
                }
                size_t o = b * D.stride + (size_t)j * D.ld + i;
                double r = alpha * s + (beta != 0.0f ? beta * vc[o] : 0.0);
                if (epilogue & CUBLASLT_EPILOGUE_BIAS)
                    r += vbias[i];
                if (epilogue & CUBLASLT_EPILOGUE_GELU)
                    r = gelu_ref(r);
                float g;
                if (cd == CUDA_R_16BF) {
                    __nv_bfloat16 h;
                    memcpy(&h, &raw[o * 2], 2);
                    g = __bfloat162float(h);
                } else
                    memcpy(&g, &raw[o * 4], 4);
                got.push_back(g);
                want.push_back(r);
            }
    char name[128];
    const char *epi = epilogue == CUBLASLT_EPILOGUE_DEFAULT ? ""
                      : epilogue == CUBLASLT_EPILOGUE_BIAS  ? "_bias"
                      : epilogue == CUBLASLT_EPILOGUE_GELU  ? "_gelu"
                                                            : "_gelu_bias";
    snprintf(name, sizeof name, "blaslt_%s_%s_%c%c_batch%d_beta%g%s%s", ab == CUDA_R_16BF ? "bf16" : "f32",
             cd == CUDA_R_16BF ? "bf16" : "f32", ta ? 'T' : 'N', tb ? 'T' : 'N', batch, beta,
             in_place ? "_inplace" : "", epi);
    double err = tu_rel_err_fd(got.data(), want.data(), got.size());
    if (st != CUBLAS_STATUS_SUCCESS || nres != 1)
        tu_check(0, name, "status %d, %d heuristic results", (int)st, nres);
    else
        tu_check_rel(err, cd == CUDA_R_16BF ? 4e-3 : 1e-6, name);

    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatrixLayoutDestroy(ld);
    cublasLtMatmulDescDestroy(desc);
    for (void *p : {dA, dB, dC, dbias, work})
        CK(cudaFree(p));
    if (!in_place)
        CK(cudaFree(dD));
}

static void test_blaslt() {
    cublasLtHandle_t lt;
    cublasLtCreate(&lt);
    const cudaDataType types[3][2] = {
        {CUDA_R_16BF, CUDA_R_16BF}, {CUDA_R_16BF, CUDA_R_32F}, {CUDA_R_32F, CUDA_R_32F}};
    for (auto &t : types)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                check_matmul(lt, t[0], t[1], ta, tb, ta == tb ? 3 : 1, 0.0f, false,
                             CUBLASLT_EPILOGUE_DEFAULT);
    check_matmul(lt, CUDA_R_16BF, CUDA_R_32F, 1, 0, 2, 1.0f, true, CUBLASLT_EPILOGUE_DEFAULT);
    check_matmul(lt, CUDA_R_32F, CUDA_R_32F, 0, 1, 1, -0.5f, false, CUBLASLT_EPILOGUE_DEFAULT);
    check_matmul(lt, CUDA_R_16BF, CUDA_R_16BF, 0, 0, 1, 0.0f, false, CUBLASLT_EPILOGUE_BIAS);
    check_matmul(lt, CUDA_R_16BF, CUDA_R_16BF, 1, 0, 1, 0.0f, false, CUBLASLT_EPILOGUE_GELU);
    check_matmul(lt, CUDA_R_32F, CUDA_R_32F, 0, 1, 2, 0.0f, false, CUBLASLT_EPILOGUE_GELU_BIAS);
    cublasLtDestroy(lt);

    expect_death("blaslt_host_pointer_rejected", "is not device memory", [] {
        cublasLtHandle_t h;
        cublasLtCreate(&h);
        cublasLtMatmulDesc_t desc;
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasLtMatrixLayout_t l;
        cublasLtMatrixLayoutCreate(&l, CUDA_R_32F, 2, 2, 2);
        float a[4] = {0}, alpha = 1, beta = 0;
        void *d;
        cudaMalloc(&d, sizeof a);
        cublasLtMatmul(h, desc, &alpha, a, l, d, l, &beta, d, l, d, l, nullptr, nullptr, 0, nullptr);
    });
    expect_death("blaslt_shape_mismatch", "op(A)", [] {
        cublasLtHandle_t h;
        cublasLtCreate(&h);
        cublasLtMatmulDesc_t desc;
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        cublasLtMatrixLayout_t l2, l3;
        cublasLtMatrixLayoutCreate(&l2, CUDA_R_32F, 2, 2, 2);
        cublasLtMatrixLayoutCreate(&l3, CUDA_R_32F, 3, 2, 3);
        float alpha = 1, beta = 0;
        void *d;
        cudaMalloc(&d, 64);
        cublasLtMatmul(h, desc, &alpha, d, l3, d, l2, &beta, d, l2, d, l2, nullptr, nullptr, 0, nullptr);
    });
}

int main() {
    tu_srand(tu_seed("simt_selftest"));
    test_no_device(); /* first: SIMT_DEVICES is read once per process */
    test_runtime();
    test_barriers();
    test_block_sum();
    test_warps();
    test_dynamic_shared();
    test_misuse();
    test_blaslt();
    simt_check_guards();
    return tu_exit();
}
