/*
 * lock.h — the small mutex of a port's read and write paths.
 *
 * A port takes two locks per call on its fast path; glibc's general mutex
 * costs about 50 instructions a lock/unlock pair, this one a few: a word that
 * is 0 (free), 1 (held) or 2 (held, someone may sleep), with a private futex
 * for the sleepers (Drepper, "Futexes are tricky", mutex3). Built on C11
 * atomics with acquire/release, so sanitizers see its ordering.
 *
 * Rules: not recursive; unlocked by the thread that locked it; after fork()
 * in a child, a lock another thread held stays held (use the port in one
 * thread there, as with any mutex).
 */
#pragma once

#include <errno.h>
#include <linux/futex.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct plock {
        _Atomic uint32_t v;
} plock;

static inline bool plock_try(plock *l) {
        uint32_t z = 0;
        return atomic_compare_exchange_strong_explicit(&l->v, &z, 1, memory_order_acquire,
                                                       memory_order_relaxed);
}

/* Lock, waiting at most until deadline (CLOCK_MONOTONIC ns; UINT64_MAX: for
 * ever). Returns 0 or -ETIMEDOUT. */
static inline int plock_lock_by(plock *l, uint64_t deadline) {
        if (plock_try(l))
                return 0;
        /* Contended: mark it 2 and sleep while it stays held. */
        while (atomic_exchange_explicit(&l->v, 2, memory_order_acquire) != 0) {
                struct timespec ts, *tp = NULL;
                if (deadline != UINT64_MAX) {
                        struct timespec now;
                        clock_gettime(CLOCK_MONOTONIC, &now);
                        uint64_t n = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
                        if (n >= deadline)
                                return -ETIMEDOUT;
                        ts.tv_sec = (time_t)(deadline / 1000000000u);
                        ts.tv_nsec = (long)(deadline % 1000000000u);
                        tp = &ts;
                }
                /* Absolute monotonic timeout: FUTEX_WAIT_BITSET. */
                syscall(SYS_futex, &l->v, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 2, tp, NULL,
                        FUTEX_BITSET_MATCH_ANY);
        }
        return 0;
}

static inline void plock_lock(plock *l) {
        (void)plock_lock_by(l, UINT64_MAX);
}

static inline void plock_unlock(plock *l) {
        if (atomic_exchange_explicit(&l->v, 0, memory_order_release) == 2)
                syscall(SYS_futex, &l->v, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
}
