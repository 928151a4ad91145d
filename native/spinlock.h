/*
 * spinlock.h — the lock behind lock()/unlock(): test-and-test-and-set on C11
 * atomics. Spin reading (no cache-line ping-pong) with a CPU pause, and after a
 * while yield the CPU: on 2 cores a spinning waiter can otherwise starve the
 * holder that the scheduler preempted.
 */
#ifndef HEAPLAB_SPINLOCK_H
#define HEAPLAB_SPINLOCK_H

#include <sched.h>
#include <stdatomic.h>

typedef struct hl_spinlock { atomic_int held; } hl_spinlock;

#define HL_SPINLOCK_INIT { 0 }
enum { HL_SPIN_BEFORE_YIELD = 64 };

static inline void hl_cpu_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static inline void hl_spin_lock(hl_spinlock *l) {
    for (;;) {
        if (!atomic_exchange_explicit(&l->held, 1, memory_order_acquire)) return;
        int spins = 0;
        while (atomic_load_explicit(&l->held, memory_order_relaxed)) {
            if (++spins < HL_SPIN_BEFORE_YIELD) hl_cpu_pause();
            else { sched_yield(); spins = 0; }
        }
    }
}

static inline int hl_spin_trylock(hl_spinlock *l) {
    return !atomic_load_explicit(&l->held, memory_order_relaxed) &&
           !atomic_exchange_explicit(&l->held, 1, memory_order_acquire);
}

static inline void hl_spin_unlock(hl_spinlock *l) {
    atomic_store_explicit(&l->held, 0, memory_order_release);
}

#endif
