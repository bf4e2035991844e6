// A thread-block emulator for the project's CUDA sources, compiled by a host C++ compiler in the test suite.
//
// Every thread of a block is a fiber (ucontext) on one OS thread; blocks run one after another. A fiber runs until it
// reaches __syncthreads() or returns, then the next fiber runs: one "phase" is every thread running from one barrier
// to the next. The order in which the threads of a phase run is chosen by the launch (ascending, descending, or a
// seeded shuffle per phase), so code whose result depends on that order (a data race between two barriers) shows up
// as different outputs under different orders. A block in which some threads return while others wait at a barrier,
// or in which threads wait at different __syncthreads() calls (source lines), is reported as barrier divergence. __shared__ variables are function statics, shared by the fibers of the running
// block. Float intrinsics with explicit rounding are the IEEE operations they name (compile with -ffp-contract=off);
// atomics are plain read-modify-writes (one fiber runs at a time).
#pragma once

#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <random>
#include <vector>

struct EmulatedDim3 {
    unsigned int x, y, z;
};
static EmulatedDim3 threadIdx, blockIdx, blockDim, gridDim;

#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static

inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __int_as_float(unsigned int bits) { float f; memcpy(&f, &bits, sizeof f); return f; }
inline unsigned int __float_as_uint(float value) { unsigned int u; memcpy(&u, &value, sizeof u); return u; }
// Fibers never interleave inside a call, so the read-modify-write is atomic.
inline int atomicAdd(int* address, int value) { const int old = *address; *address += value; return old; }

namespace emulator {

constexpr size_t kStackBytes = 256 * 1024;
constexpr int kOk = 0;
constexpr int kBarrierDivergence = 1;
constexpr int kMemoryFault = 2;

struct Fiber {
    ucontext_t context;
    std::vector<char> stack;
    bool finished = false;
    int barrier_line = 0;  // the source line of the __syncthreads() the fiber waits at
};

// Static so that a memory fault, which leaves a launch by siglongjmp without unwinding, skips no destructor.
static std::vector<Fiber> fibers;
static std::vector<unsigned int> sequence;
static ucontext_t scheduler;
static Fiber* running = nullptr;
static const std::function<void()>* kernel_body = nullptr;
static sigjmp_buf fault_return;

static void fiber_main() {
    (*kernel_body)();
    running->finished = true;  // returning resumes uc_link, the scheduler
}

static void on_memory_fault(int) { siglongjmp(fault_return, 1); }

inline void barrier(int line) {
    running->barrier_line = line;
    swapcontext(&running->context, &scheduler);
}

inline int run_blocks(unsigned int grid, unsigned int block, unsigned int order) {
    fibers.resize(block);
    sequence.resize(block);
    std::mt19937 shuffle_rng(order);
    for (unsigned int b = 0; b < grid; ++b) {
        blockIdx = {b, 0, 0};
        for (Fiber& fiber : fibers) {
            fiber.finished = false;
            fiber.stack.resize(kStackBytes);
            getcontext(&fiber.context);
            fiber.context.uc_stack.ss_sp = fiber.stack.data();
            fiber.context.uc_stack.ss_size = fiber.stack.size();
            fiber.context.uc_link = &scheduler;
            makecontext(&fiber.context, fiber_main, 0);
        }
        for (;;) {
            for (unsigned int t = 0; t < block; ++t) sequence[t] = t;
            if (order == 1) std::reverse(sequence.begin(), sequence.end());
            if (order >= 2) std::shuffle(sequence.begin(), sequence.end(), shuffle_rng);
            for (unsigned int t : sequence) {
                running = &fibers[t];
                threadIdx = {t, 0, 0};
                swapcontext(&scheduler, &fibers[t].context);
            }
            const auto finished = std::count_if(fibers.begin(), fibers.end(), [](const Fiber& f) { return f.finished; });
            if (finished == (long)block) break;
            if (finished != 0) return kBarrierDivergence;
            const int line = fibers[0].barrier_line;
            for (const Fiber& fiber : fibers) {
                if (fiber.barrier_line != line) return kBarrierDivergence;
            }
        }
    }
    return kOk;
}

// order: 0 ascending thread index, 1 descending, >= 2 a shuffle per phase seeded with order. A SIGSEGV or SIGBUS
// during the launch (an access past an argument's guard page, see cuda_emulator.py) ends it with kMemoryFault; the
// process's own handlers are restored afterwards.
inline int launch(unsigned int grid, unsigned int block, unsigned int order, const std::function<void()>& body) {
    kernel_body = &body;
    gridDim = {grid, 1, 1};
    blockDim = {block, 1, 1};
    struct sigaction fault_action = {}, previous_segv = {}, previous_bus = {};
    fault_action.sa_handler = on_memory_fault;
    sigemptyset(&fault_action.sa_mask);
    sigaction(SIGSEGV, &fault_action, &previous_segv);
    sigaction(SIGBUS, &fault_action, &previous_bus);
    int status = kMemoryFault;
    if (sigsetjmp(fault_return, 1) == 0) status = run_blocks(grid, block, order);
    sigaction(SIGSEGV, &previous_segv, nullptr);
    sigaction(SIGBUS, &previous_bus, nullptr);
    return status;
}

}  // namespace emulator

#define __syncthreads() emulator::barrier(__LINE__)
