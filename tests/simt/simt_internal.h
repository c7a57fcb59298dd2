/* Shared by the emulator's source files; not part of the interface kernels or host code see. */
#ifndef MT_SIMT_INTERNAL_H
#define MT_SIMT_INTERNAL_H

#include <cstddef>
#include <cuda_runtime_api.h>

/* Built with AddressSanitizer (g++ defines the first, clang has the feature test). */
#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif

/* Prints "simt: <message>" on stderr and aborts: every misuse the emulator detects ends here. */
[[noreturn]] void simt_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Device memory (simt_mem.cpp). Aborts unless [p, p + bytes) lies inside one live allocation. */
void simt_check_device_range(const void *p, size_t bytes, const char *what);
/* Aborts naming `when` (e.g. the kernel just run) if any guard zone was overwritten. */
void simt_check_guards_after(const char *when);

/* Runtime state (simt_runtime.cpp). */
int simt_device_count();
/* Remembers e for cudaGetLastError and returns it. */
cudaError_t simt_record_error(cudaError_t e);
/* Aborts unless stream is 0, a legacy/per-thread handle or a live cudaStreamCreate result. */
void simt_check_stream(const void *stream, const char *who);

/* Fibers (simt_fiber.cpp): one per CUDA thread of the running block. */
struct simt_fiber {
    void *sp;     /* saved stack pointer while not running */
    size_t stack; /* index into the stack pool */
    void *fake_stack;
    bool done;
};
/* Prepares f to run entry(arg) on pool stack `stack` the next time it is resumed. */
void simt_fiber_init(simt_fiber *f, size_t stack, void (*entry)(void *), void *arg);
/* Scheduler side: runs f until it yields or exits. */
void simt_fiber_resume(simt_fiber *f);
/* Fiber side: the first call of a fresh fiber, then back to the scheduler (yield) or for good (exit). */
void simt_fiber_started();
void simt_fiber_yield(simt_fiber *f);
[[noreturn]] void simt_fiber_exit(simt_fiber *f);
/* Execution (simt_exec.cpp). cudaFuncSetAttribute raises the dynamic shared memory limit of all kernels. */
void simt_raise_dynamic_shared_limit(size_t bytes);
/* Name of the running kernel, or NULL between launches (read by the stack-overflow handler). */
const char *simt_kernel_name();

inline bool simt_overlap(const void *a, size_t na, const void *b, size_t nb) {
    const char *pa = static_cast<const char *>(a), *pb = static_cast<const char *>(b);
    return na && nb && pa < pb + nb && pb < pa + na;
}

#endif
