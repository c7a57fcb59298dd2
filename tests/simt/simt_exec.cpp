/* Kernel execution: blocks of a grid one after another, the threads of a block as fibers scheduled in
 * rounds. In each round every runnable thread runs, in ascending or descending thread order, until its
 * next sync point (__syncthreads, a warp operation, or the end of the kernel). A __syncthreads releases
 * when every thread that has not returned waits at it; a warp operation completes when all 32 lanes have
 * arrived. Because a thread runs a whole segment between sync points before the next thread starts, a
 * missing barrier shows up as a result that depends on the schedule. */
#include "simt.h"
#include "simt_internal.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

simt_fiber_view *simt_current;
uint3 simt_block_idx;
dim3 simt_block_dim, simt_grid_dim;

namespace {

enum class State : unsigned char { runnable, at_barrier, at_warp, done };

struct Thread : simt_fiber_view {
    simt_fiber fiber;
    State state;
    unsigned warp;
    /* the pending warp operation */
    simt_warp_op op;
    int arg, width;
    size_t size;
    unsigned char in[8], out[8];
};

struct Warp {
    int arrived, exited;
};

const char *kernel;
const std::function<void()> *body;
std::vector<Thread> threads;
std::vector<Warp> warps;
int live, at_barrier;
const char *barrier_file; /* where the threads at the barrier wait */
int barrier_line;
std::vector<unsigned char> dyn_buf; /* dynamic shared memory with guard zones on both sides */
size_t dyn_size;
constexpr size_t dyn_guard = 64;
constexpr unsigned char dyn_guard_byte = 0x5a;
size_t dyn_limit = 48 * 1024;
int schedule = -1; /* -1: not yet read from SIMT_SCHEDULE */
std::atomic<bool> launching;

const char *op_name(simt_warp_op op) {
    switch (op) {
    case SIMT_SYNCWARP:
        return "__syncwarp";
    case SIMT_SHFL_IDX:
        return "__shfl_sync";
    case SIMT_SHFL_UP:
        return "__shfl_up_sync";
    case SIMT_SHFL_DOWN:
        return "__shfl_down_sync";
    case SIMT_SHFL_XOR:
        return "__shfl_xor_sync";
    case SIMT_BALLOT:
        return "__ballot_sync/__any_sync/__all_sync";
    }
    return "?";
}

Thread &self() {
    if (!simt_current)
        simt_die("a device function (__syncthreads, a warp operation, dynamic shared memory) was called "
                 "outside a kernel");
    return *static_cast<Thread *>(simt_current);
}

[[noreturn]] void die_in_block(const Thread *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void die_in_block(const Thread *t, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (t)
        simt_die("kernel %s, block (%u,%u,%u), thread (%u,%u,%u): %s", kernel, simt_block_idx.x,
                 simt_block_idx.y, simt_block_idx.z, t->thread_idx.x, t->thread_idx.y, t->thread_idx.z, msg);
    simt_die("kernel %s, block (%u,%u,%u): %s", kernel, simt_block_idx.x, simt_block_idx.y, simt_block_idx.z,
             msg);
}

void fiber_main(void *arg) {
    Thread *t = static_cast<Thread *>(arg);
    simt_fiber_started();
    (*body)();
    t->state = State::done;
    live--;
    Warp &w = warps[t->warp];
    w.exited++;
    if (w.arrived)
        for (unsigned i = t->warp * 32; i < t->warp * 32 + 32; i++)
            if (threads[i].state == State::at_warp)
                die_in_block(t,
                             "returned while %d lanes of its warp wait in %s (all 32 lanes must take part)",
                             w.arrived, op_name(threads[i].op));
    simt_fiber_exit(&t->fiber);
}

/* Source lane of a shuffle, following the PTX shfl.sync rules with c = ((32 - width) << 8) | 0x1f (0 for
 * up): idx reads within the lane's segment of `width` lanes, up/down/xor keep their own value when the
 * source falls outside the segment (xor may read earlier segments). */
unsigned shuffle_source(simt_warp_op op, unsigned lane, int arg, int width) {
    unsigned seg = (unsigned)(32 - width);
    unsigned min_lane = lane & seg, max_lane = min_lane | (31u & ~seg);
    int j;
    bool in_range;
    switch (op) {
    case SIMT_SHFL_IDX:
        j = (int)(min_lane | ((unsigned)arg & 31u & ~seg));
        in_range = true;
        break;
    case SIMT_SHFL_UP:
        j = (int)lane - arg;
        in_range = j >= (int)min_lane;
        break;
    case SIMT_SHFL_DOWN:
        j = (int)lane + arg;
        in_range = j <= (int)max_lane;
        break;
    default: /* SIMT_SHFL_XOR */
        j = (int)(lane ^ ((unsigned)arg & 31u));
        in_range = j <= (int)max_lane;
        break;
    }
    return in_range ? (unsigned)j : lane;
}

/* Called by the last lane to arrive: checks that all lanes agree, then fills every lane's result. */
void complete_warp(unsigned warp) {
    Thread *l = &threads[warp * 32];
    for (unsigned i = 1; i < 32; i++)
        if (l[i].op != l[0].op || l[i].width != l[0].width || l[i].size != l[0].size)
            die_in_block(&l[i], "lane %u calls %s (width %d) while lane 0 of its warp calls %s (width %d)", i,
                         op_name(l[i].op), l[i].width, op_name(l[0].op), l[0].width);
    switch (l[0].op) {
    case SIMT_SYNCWARP:
        break;
    case SIMT_BALLOT: {
        unsigned bits = 0;
        for (unsigned i = 0; i < 32; i++)
            if (l[i].in[0])
                bits |= 1u << i;
        for (unsigned i = 0; i < 32; i++)
            std::memcpy(l[i].out, &bits, sizeof bits);
        break;
    }
    default:
        for (unsigned i = 0; i < 32; i++)
            std::memcpy(l[i].out, l[shuffle_source(l[0].op, i, l[i].arg, l[i].width)].in, l[i].size);
    }
    for (unsigned i = 0; i < 32; i++)
        l[i].state = State::runnable;
    warps[warp].arrived = 0;
}

void run_block(unsigned nthreads) {
    const unsigned bx = simt_block_dim.x, by = simt_block_dim.y;
    for (unsigned i = 0; i < nthreads; i++) {
        Thread &t = threads[i];
        t.thread_idx = uint3{i % bx, i / bx % by, i / (bx * by)};
        t.state = State::runnable;
        t.warp = i / 32;
        simt_fiber_init(&t.fiber, i, fiber_main, &t);
    }
    for (Warp &w : warps)
        w = Warp{0, 0};
    live = (int)nthreads;
    at_barrier = 0;
    if (dyn_size)
        std::memset(dyn_buf.data() + dyn_guard, 0xff, dyn_size); /* NaN bytes: never-written data shows */

    for (;;) {
        bool ran = false;
        for (unsigned k = 0; k < nthreads; k++) {
            Thread &t = threads[schedule ? nthreads - 1 - k : k];
            if (t.state != State::runnable)
                continue;
            simt_current = &t;
            simt_fiber_resume(&t.fiber);
            simt_current = nullptr;
            ran = true;
        }
        if (ran)
            continue;
        if (live == 0)
            break;
        if (at_barrier == live) {
            for (unsigned i = 0; i < nthreads; i++)
                if (threads[i].state == State::at_barrier)
                    threads[i].state = State::runnable;
            at_barrier = 0;
            continue;
        }
        int in_warp_ops = live - at_barrier;
        die_in_block(nullptr,
                     "deadlock: %d threads wait at __syncthreads while %d wait in warp operations whose "
                     "other lanes never arrive (%u threads returned)",
                     at_barrier, in_warp_ops, nthreads - (unsigned)live);
    }
}

void check_launch(const char *name, dim3 grid, dim3 block, size_t dyn_shared) {
    if (simt_device_count() == 0)
        simt_die("kernel %s launched with no device (SIMT_DEVICES=0)", name);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535)
        simt_die("kernel %s: bad grid (%u,%u,%u) (each >= 1; x <= 2^31-1, y and z <= 65535)", name, grid.x,
                 grid.y, grid.z);
    if (block.x == 0 || block.y == 0 || block.z == 0 || block.x > 1024 || block.y > 1024 || block.z > 64 ||
        (unsigned long long)block.x * block.y * block.z > 1024)
        simt_die("kernel %s: bad block (%u,%u,%u) (each >= 1; x, y <= 1024, z <= 64, at most 1024 threads)",
                 name, block.x, block.y, block.z);
    if (dyn_shared > dyn_limit)
        simt_die("kernel %s: %zu bytes of dynamic shared memory exceed the limit of %zu (raise it with "
                 "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize))",
                 name, dyn_shared, dyn_limit);
}

} // namespace

const char *simt_kernel_name() { return kernel; }

/* Called by cudaFuncSetAttribute (simt_runtime.cpp): the limit is not tracked per kernel. */
void simt_raise_dynamic_shared_limit(size_t bytes) {
    if (bytes > dyn_limit)
        dyn_limit = bytes;
}

extern "C" void simt_set_schedule(int s) {
    if (s != 0 && s != 1)
        simt_die("simt_set_schedule(%d): the schedule is 0 (ascending) or 1 (descending)", s);
    schedule = s;
}

void simt_launch(const char *name, dim3 grid, dim3 block, size_t dyn_shared, void *stream,
                 const std::function<void()> &kernel_body) {
    if (launching.exchange(true))
        simt_die("kernel %s launched while kernel %s runs (from a kernel or another OS thread)", name,
                 kernel ? kernel : "?");
    if (schedule < 0) {
        const char *env = getenv("SIMT_SCHEDULE");
        if (env && *env && strcmp(env, "0") != 0 && strcmp(env, "1") != 0)
            simt_die("SIMT_SCHEDULE=%s: the schedule is 0 (ascending) or 1 (descending)", env);
        schedule = env && *env == '1';
    }
    check_launch(name, grid, block, dyn_shared);
    simt_check_stream(stream, name);

    unsigned nthreads = block.x * block.y * block.z;
    kernel = name;
    body = &kernel_body;
    threads.resize(nthreads);
    warps.resize((nthreads + 31) / 32);
    dyn_size = dyn_shared;
    dyn_buf.assign(dyn_shared + 2 * dyn_guard, dyn_guard_byte);
    simt_grid_dim = grid;
    simt_block_dim = block;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                simt_block_idx = uint3{x, y, z};
                run_block(nthreads);
            }
    for (size_t i = 0; i < dyn_guard; i++)
        if (dyn_buf[i] != dyn_guard_byte || dyn_buf[dyn_guard + dyn_size + i] != dyn_guard_byte)
            simt_die("kernel %s wrote outside its %zu bytes of dynamic shared memory", name, dyn_size);
    simt_check_guards_after(name);
    kernel = nullptr;
    body = nullptr;
    launching = false;
}

void *simt_dynamic_shared() {
    self();
    return dyn_buf.data() + dyn_guard;
}

void simt_syncthreads(const char *file, int line) {
    Thread &t = self();
    if (at_barrier == 0) {
        barrier_file = file;
        barrier_line = line;
    } else if (line != barrier_line || strcmp(file, barrier_file) != 0)
        die_in_block(&t,
                     "waits at __syncthreads() at %s:%d while other threads of the block wait at %s:%d (a "
                     "barrier in divergent code)",
                     file, line, barrier_file, barrier_line);
    t.state = State::at_barrier;
    at_barrier++;
    simt_fiber_yield(&t.fiber);
}

void simt_warp(simt_warp_op op, unsigned mask, const void *in, void *out, size_t size, int arg, int width) {
    Thread &t = self();
    if (mask != 0xffffffffu)
        die_in_block(&t, "%s with mask 0x%08x: only the full mask 0xffffffff is supported", op_name(op),
                     mask);
    if (width < 1 || width > 32 || (width & (width - 1)))
        die_in_block(&t, "%s with width %d (a power of 2 from 1 to 32)", op_name(op), width);
    if (threads.size() % 32)
        die_in_block(&t, "%s in a block of %zu threads (warp operations need a multiple of 32)", op_name(op),
                     threads.size());
    Warp &w = warps[t.warp];
    if (w.exited)
        die_in_block(&t, "%s while %d lanes of its warp have returned (all 32 lanes must take part)",
                     op_name(op), w.exited);
    t.op = op;
    t.arg = arg;
    t.width = width;
    t.size = size;
    if (size)
        std::memcpy(t.in, in, size);
    t.state = State::at_warp;
    if (++w.arrived == 32)
        complete_warp(t.warp);
    simt_fiber_yield(&t.fiber);
    if (size)
        std::memcpy(out, t.out, size);
}
