/* Fibers for the CUDA threads of a block: a pool of guarded stacks and a hand-written x86-64 context
 * switch. ucontext's swapcontext would also work but makes a sigprocmask system call on every switch, and
 * a launch switches hundreds of thousands of times. Under AddressSanitizer every switch is announced with
 * the sanitizer fiber API, so ASan knows which stack is live. */
#include "simt_internal.h"

#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if !defined(__x86_64__)
#error "the SIMT emulator's context switch is written for x86-64"
#endif

/* simt_ctx_switch(save, to): pushes the callee-saved registers, MXCSR and the x87 control word, stores
 * the stack pointer in *save, loads `to` and pops the same set from there. simt_ctx_start is where a
 * fresh fiber "returns" to: it calls r13(r12) and never comes back (fibers leave through
 * simt_fiber_exit). rbp is 0 there, which ends frame-pointer backtraces inside fibers. */
extern "C" void simt_ctx_switch(void **save, void *to);
extern "C" void simt_ctx_start();
asm(R"(
    .text
    .globl simt_ctx_switch
    .hidden simt_ctx_switch
    .type simt_ctx_switch, @function
simt_ctx_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size simt_ctx_switch, .-simt_ctx_switch

    .globl simt_ctx_start
    .hidden simt_ctx_start
    .type simt_ctx_start, @function
simt_ctx_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size simt_ctx_start, .-simt_ctx_start
)");

namespace {

/* Kernel code is shallow, but ASan and -O0 builds have large frames, and printf in a kernel while
 * debugging needs several KiB. Stacks are reserved, not committed, so the size costs only address space. */
constexpr size_t stack_size = 256 * 1024;

struct Stack {
    char *guard; /* lowest page, PROT_NONE */
    char *lo, *hi;
};
std::vector<Stack> pool;
long page_size;

void *sched_sp;
#ifdef SIMT_ASAN
const void *sched_stack_bottom;
size_t sched_stack_size;
#endif

/* A fiber that runs past the bottom of its stack hits the guard page; say so instead of a bare SIGSEGV.
 * Other faults go to the handler that was installed before (ASan's or the default one). */
struct sigaction previous_segv;
char alt_stack[64 * 1024];

void on_segv(int sig, siginfo_t *info, void *) {
    const char *addr = static_cast<const char *>(info->si_addr);
    for (const Stack &s : pool)
        if (addr >= s.guard && addr < s.lo) {
            static const char head[] = "simt: stack overflow of a CUDA thread's fiber (256 KiB) in kernel ";
            const char *name = simt_kernel_name() ? simt_kernel_name() : "?";
            ssize_t r = write(2, head, sizeof head - 1);
            r = write(2, name, strlen(name));
            r = write(2, "\n", 1);
            (void)r;
            signal(SIGABRT, SIG_DFL);
            abort();
        }
    sigaction(sig, &previous_segv, nullptr); /* re-executing the access now reaches the old handler */
}

void install_segv_handler() {
    stack_t old;
    if (sigaltstack(nullptr, &old) == 0 && (old.ss_flags & SS_DISABLE)) {
        stack_t ss = {};
        ss.ss_sp = alt_stack;
        ss.ss_size = sizeof alt_stack;
        sigaltstack(&ss, nullptr);
    }
    struct sigaction sa = {};
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &previous_segv);
}

const Stack &stack_at(size_t i) {
    if (pool.empty()) {
        page_size = sysconf(_SC_PAGESIZE);
        install_segv_handler();
    }
    while (pool.size() <= i) {
        size_t total = stack_size + (size_t)page_size;
        void *m =
            mmap(nullptr, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            simt_die("cannot reserve %zu bytes for a fiber stack", total);
        char *g = static_cast<char *>(m);
        if (mprotect(g, (size_t)page_size, PROT_NONE) != 0)
            simt_die("cannot protect a fiber stack's guard page");
        pool.push_back(Stack{g, g + page_size, g + total});
    }
    return pool[i];
}

} // namespace

void simt_fiber_init(simt_fiber *f, size_t stack, void (*entry)(void *), void *arg) {
    const Stack &s = stack_at(stack);
    /* The frame simt_ctx_switch pops: [mxcsr, x87 cw] r15 r14 r13 r12 rbx rbp, then the return address.
     * With sp 16-aligned, rsp is 16-aligned after the `ret`, as the `call` in simt_ctx_start requires. */
    uint64_t *sp = reinterpret_cast<uint64_t *>(s.hi - 16) - 8;
    sp[0] = 0x1f80ull | (0x037full << 32); /* default MXCSR and x87 control word, as on a fresh thread */
    sp[1] = 0;                             /* r15 */
    sp[2] = 0;                             /* r14 */
    sp[3] = reinterpret_cast<uint64_t>(entry);
    sp[4] = reinterpret_cast<uint64_t>(arg);
    sp[5] = 0; /* rbx */
    sp[6] = 0; /* rbp */
    sp[7] = reinterpret_cast<uint64_t>(&simt_ctx_start);
    f->sp = sp;
    f->stack = stack;
    f->fake_stack = nullptr;
    f->done = false;
}

void simt_fiber_resume(simt_fiber *f) {
#ifdef SIMT_ASAN
    const Stack &s = pool[f->stack];
    void *fake = nullptr;
    __sanitizer_start_switch_fiber(&fake, s.lo, (size_t)(s.hi - s.lo));
    simt_ctx_switch(&sched_sp, f->sp);
    __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
    /* The frames a finished fiber abandoned keep their redzones poisoned; the next fiber on this stack
     * must start clean. Everything below the final stack pointer was unpoisoned by normal returns. */
    if (f->done)
        __asan_unpoison_memory_region(f->sp, (size_t)(s.hi - static_cast<char *>(f->sp)));
#else
    simt_ctx_switch(&sched_sp, f->sp);
#endif
}

void simt_fiber_started() {
#ifdef SIMT_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_stack_bottom, &sched_stack_size);
#endif
}

void simt_fiber_yield(simt_fiber *f) {
#ifdef SIMT_ASAN
    __sanitizer_start_switch_fiber(&f->fake_stack, sched_stack_bottom, sched_stack_size);
    simt_ctx_switch(&f->sp, sched_sp);
    __sanitizer_finish_switch_fiber(f->fake_stack, &sched_stack_bottom, &sched_stack_size);
#else
    simt_ctx_switch(&f->sp, sched_sp);
#endif
}

void simt_fiber_exit(simt_fiber *f) {
    f->done = true;
#ifdef SIMT_ASAN
    __sanitizer_start_switch_fiber(nullptr, sched_stack_bottom, sched_stack_size); /* frees the fake stack */
#endif
    simt_ctx_switch(&f->sp, sched_sp);
    __builtin_unreachable();
}
