/*
 * event.h — a word threads of one process sleep on until it changes: the
 * condition variable of a state guarded by a mutex, for waits that must end
 * at their deadline.
 *
 * Why not pthread_cond_t: glibc's (2.36 here: the condvar with group
 * references) makes a broadcast or signal that closes a group wait, holding
 * the condvar's internal lock, until every waiter of that group has left its
 * futex (__condvar_quiesce_and_switch_g1), which each must run to do — one
 * that does not run (preempted, stopped, in a signal handler) holds the
 * broadcaster; and a waiter that times out meanwhile takes that internal
 * lock to leave (__condvar_cancel_waiting). The broadcaster usually holds the
 * state's mutex as well, which every waiter needs to return. test-call-probe
 * saw pthread_cond_broadcast take 57-213 ms so, and calls of 100 ms held
 * until their late reply came (308-413 ms). Here a wake is an increment and
 * a futex wake, which never waits, and a sleep is one futex wait bounded by
 * its absolute deadline, then the mutex.
 *
 * Use: under the mutex, change the state, then event_note(bits) for the
 * sleepers it concerns; let go of the mutex with event_unlock, which wakes
 * them after the unlock (a thread it wakes does not find the mutex held, and
 * a waker preempted there holds nobody). A waiter, under the mutex, finds
 * the state not as it wants and calls event_sleep_locked(bits), which reads
 * the word, drops the mutex (waking what was noted), sleeps while the word
 * is unchanged, and takes the mutex again; then it looks again. A note
 * after the read makes the word differ, so the sleep returns at once: no
 * wake is lost. A sleeper is woken by a note whose bits meet its own (each
 * bit a set of sleepers, FUTEX_WAKE_BITSET): a change that concerns one
 * thread wakes it, not all. `sleepers` spares the system call when nobody
 * sleeps.
 *
 * Rules: the word, sleepers and due change under the mutex only; the event
 * outlives every event_unlock of it (the wake comes after the mutex is
 * free). Process-private (FUTEX_PRIVATE_FLAG): never in memory another
 * process maps.
 */
#pragma once

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

typedef struct event {
        _Atomic uint32_t word;
        unsigned sleepers; /* threads in event_sleep_locked */
        uint32_t due;      /* bits noted for the next unlock to wake */
} event;

/* The state changed in a way that concerns the sleepers of bits (under the
 * mutex; the next event_unlock or event_sleep_locked wakes them). */
static inline void event_note(event *e, uint32_t bits) {
        atomic_fetch_add_explicit(&e->word, 1, memory_order_relaxed);
        if (e->sleepers)
                e->due |= bits;
}

/* Let go of mutex m, then wake the sleepers noted since the last wake. */
static inline void event_unlock(event *e, pthread_mutex_t *m) {
        uint32_t due = e->due;
        e->due = 0;
        pthread_mutex_unlock(m);
        if (due)
                syscall(SYS_futex, &e->word, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, INT32_MAX, NULL,
                        NULL, due);
}

/* Sleep until a note meets bits (not 0), or deadline (CLOCK_MONOTONIC ns;
 * UINT64_MAX: no deadline); called under mutex m, which is let go
 * (event_unlock) meanwhile and held again on return. Returns 0 (woken, or
 * spuriously: look at the state again), or -ETIMEDOUT once the deadline
 * passed. */
static inline int event_sleep_locked(event *e, pthread_mutex_t *m, uint64_t deadline, uint32_t bits) {
        uint32_t seen = atomic_load_explicit(&e->word, memory_order_relaxed);
        struct timespec ts, *tp = NULL;
        if (deadline != UINT64_MAX) {
                ts.tv_sec = (time_t)(deadline / 1000000000u);
                ts.tv_nsec = (long)(deadline % 1000000000u);
                tp = &ts;
        }
        e->sleepers++;
        event_unlock(e, m);
        /* Absolute monotonic timeout: FUTEX_WAIT_BITSET. */
        long r = syscall(SYS_futex, &e->word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, seen, tp, NULL, bits);
        bool timed_out = r < 0 && errno == ETIMEDOUT;
        pthread_mutex_lock(m);
        e->sleepers--;
        return timed_out ? -ETIMEDOUT : 0;
}
