/* Emulated device memory: host memory with guard zones on both sides, kept in a registry of device
 * ranges so that every API taking device or host pointers can check which one it got. Fresh allocations
 * are filled with 0xff bytes (NaN as fp32 and as bf16), as cudaMalloc does not zero memory: code that
 * reads what it never wrote produces NaN instead of a plausible zero. Under ASan the guard zones are also
 * poisoned, so an overflow is reported at the faulting access. */
#include "simt.h"
#include "simt_internal.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>

#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) __asan_poison_memory_region((p), (n))
#define UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace {

constexpr size_t guard = 256;             /* bytes each side; also the allocation alignment */
constexpr size_t total_mem = 80ull << 30; /* what the emulated device reports (an 80 GiB GPU) */

struct Alloc {
    char *
        user; /* the address cudaMalloc returned; guards at [user - guard, user) and [user + size, + guard) */
    size_t size;
};
std::map<uintptr_t, Alloc> allocs; /* by user address */
std::set<void *> pinned;           /* cudaMallocHost results */
size_t allocated;

/* Position-dependent, so a shifted copy of the pattern does not pass for it. */
unsigned char guard_byte(size_t i) { return (unsigned char)(0xa5 ^ (i * 37)); }

void fill_guard(char *g) {
    for (size_t i = 0; i < guard; i++)
        g[i] = (char)guard_byte(i);
}

void check_alloc(const Alloc &a, const char *when) {
    char *sides[2] = {a.user - guard, a.user + a.size};
    UNPOISON(sides[0], guard);
    UNPOISON(sides[1], guard);
    for (int s = 0; s < 2; s++)
        for (size_t i = 0; i < guard; i++)
            if ((unsigned char)sides[s][i] != guard_byte(i))
                simt_die(
                    "device allocation of %zu bytes at %p: guard zone %s overwritten (byte %s%zu), found %s",
                    a.size, (void *)a.user, s ? "after its end" : "before its start", s ? "+" : "-",
                    s ? a.size + i : guard - i, when);
    POISON(sides[0], guard);
    POISON(sides[1], guard);
}

/* The allocation containing p (guards included), or NULL. */
const Alloc *find(const void *p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    auto it = allocs.upper_bound(a + guard);
    if (it == allocs.begin())
        return nullptr;
    --it;
    const Alloc &al = it->second;
    uintptr_t lo = reinterpret_cast<uintptr_t>(al.user) - guard,
              hi = reinterpret_cast<uintptr_t>(al.user) + al.size + guard;
    return a >= lo && a < hi ? &al : nullptr;
}

void check_host_range(const void *p, size_t n, const char *what) {
    if (n == 0)
        return;
    if (!p)
        simt_die("%s: NULL host pointer", what);
    const char *c = static_cast<const char *>(p);
    if (find(c) || find(c + n - 1))
        simt_die("%s: %zu bytes at %p are device memory where host memory is required", what, n, p);
    for (const auto &kv : allocs) /* a host range could also enclose a whole allocation */
        if (simt_overlap(c, n, kv.second.user - guard, kv.second.size + 2 * guard))
            simt_die("%s: host range of %zu bytes at %p overlaps device memory", what, n, p);
}

} // namespace

void simt_check_device_range(const void *p, size_t bytes, const char *what) {
    const Alloc *a = find(p);
    const char *c = static_cast<const char *>(p);
    if (!a)
        simt_die("%s: %p is not device memory (no cudaMalloc allocation holds it)", what, p);
    if (c < a->user || bytes > a->size || c - a->user > (ptrdiff_t)(a->size - bytes))
        simt_die("%s: %zu bytes at %p exceed the device allocation of %zu bytes at %p", what, bytes, p,
                 a->size, (void *)a->user);
}

void simt_check_guards_after(const char *when) {
    char buf[256];
    snprintf(buf, sizeof buf, "after kernel %s", when);
    for (const auto &kv : allocs)
        check_alloc(kv.second, buf);
}

extern "C" int simt_is_device_ptr(const void *p) { return find(p) != nullptr; }
/* The project's hook (base/common.h), overriding its weak default in the emulated build. */
extern "C" int mt_is_device_memory(const void *p) { return simt_is_device_ptr(p); }

extern "C" void simt_check_guards(void) {
    for (const auto &kv : allocs)
        check_alloc(kv.second, "by simt_check_guards");
}

cudaError_t cudaMalloc(void **devPtr, size_t size) {
    if (!devPtr)
        simt_die("cudaMalloc: NULL devPtr");
    *devPtr = nullptr;
    if (simt_device_count() == 0)
        return simt_record_error(cudaErrorNoDevice);
    if (size == 0)
        return cudaSuccess;
    size_t rounded = (size + guard - 1) / guard * guard;
    if (size > total_mem || allocated + rounded > total_mem)
        return simt_record_error(cudaErrorMemoryAllocation);
    char *base = static_cast<char *>(aligned_alloc(guard, rounded + 2 * guard));
    if (!base)
        return simt_record_error(cudaErrorMemoryAllocation);
    Alloc a{base + guard, size};
    fill_guard(a.user - guard);
    fill_guard(a.user + size);
    std::memset(a.user, 0xff, size);
    POISON(a.user - guard, guard);
    POISON(a.user + size, guard);
    allocs[reinterpret_cast<uintptr_t>(a.user)] = a;
    allocated += rounded;
    *devPtr = a.user;
    return cudaSuccess;
}

cudaError_t cudaFree(void *devPtr) {
    if (!devPtr)
        return cudaSuccess;
    auto it = allocs.find(reinterpret_cast<uintptr_t>(devPtr));
    if (it == allocs.end())
        simt_die("cudaFree(%p): not an address cudaMalloc returned (or freed twice)", devPtr);
    Alloc a = it->second;
    check_alloc(a, "at cudaFree");
    UNPOISON(a.user - guard, guard);
    UNPOISON(a.user + a.size, guard);
    allocs.erase(it);
    allocated -= (a.size + guard - 1) / guard * guard;
    free(a.user - guard);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    if (!free_bytes || !total)
        simt_die("cudaMemGetInfo: NULL argument");
    *free_bytes = total_mem - allocated;
    *total = total_mem;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t size) {
    if (!ptr)
        simt_die("cudaMallocHost: NULL ptr");
    *ptr = aligned_alloc(guard, (size + guard - 1) / guard * guard + guard);
    if (!*ptr)
        return simt_record_error(cudaErrorMemoryAllocation);
    pinned.insert(*ptr);
    return cudaSuccess;
}

cudaError_t cudaFreeHost(void *ptr) {
    if (!ptr)
        return cudaSuccess;
    if (!pinned.erase(ptr))
        simt_die("cudaFreeHost(%p): not an address cudaMallocHost returned (or freed twice)", ptr);
    free(ptr);
    return cudaSuccess;
}

static void check_copy(void *dst, const void *src, size_t count, cudaMemcpyKind kind, const char *who) {
    char what[96];
    bool dst_dev, src_dev;
    switch (kind) {
    case cudaMemcpyHostToHost:
        dst_dev = false;
        src_dev = false;
        break;
    case cudaMemcpyHostToDevice:
        dst_dev = true;
        src_dev = false;
        break;
    case cudaMemcpyDeviceToHost:
        dst_dev = false;
        src_dev = true;
        break;
    case cudaMemcpyDeviceToDevice:
        dst_dev = true;
        src_dev = true;
        break;
    case cudaMemcpyDefault:
        dst_dev = find(dst) != nullptr;
        src_dev = find(src) != nullptr;
        break;
    default:
        simt_die("%s: unknown cudaMemcpyKind %d", who, (int)kind);
    }
    if (count == 0)
        return;
    snprintf(what, sizeof what, "%s destination", who);
    if (dst_dev)
        simt_check_device_range(dst, count, what);
    else
        check_host_range(dst, count, what);
    snprintf(what, sizeof what, "%s source", who);
    if (src_dev)
        simt_check_device_range(src, count, what);
    else
        check_host_range(src, count, what);
    if (simt_overlap(dst, count, src, count))
        simt_die("%s: source and destination of %zu bytes overlap", who, count);
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, cudaMemcpyKind kind) {
    check_copy(dst, src, count, kind, "cudaMemcpy");
    if (count)
        std::memcpy(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    simt_check_stream(stream, "cudaMemcpyAsync");
    check_copy(dst, src, count, kind, "cudaMemcpyAsync");
    if (count)
        std::memcpy(dst, src, count);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count) {
    if (count) {
        simt_check_device_range(devPtr, count, "cudaMemset");
        std::memset(devPtr, value, count);
    }
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream) {
    simt_check_stream(stream, "cudaMemsetAsync");
    return cudaMemset(devPtr, value, count);
}
