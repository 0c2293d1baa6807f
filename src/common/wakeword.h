/*
 * wakeword.h — the "want" words of a flow's rings (ring_ctl.rx_sleep and
 * tx_sleep): how a waiting side says that it sleeps, and how it sleeps, and
 * how the other side wakes it.
 *
 * A side about to sleep stores, then fences, then re-checks its condition:
 *   WAKEWORD_EAR    it sleeps in poll() on its ear (wake.h), or it is in
 *                   poll mode (its ear's readiness is what a user's epoll
 *                   sees): a waker rings its bell.
 *   WAKEWORD_FUTEX  it sleeps in futex_wait() on this very word: a waker
 *                   wakes the futex. No socket buffer, no drain afterwards:
 *                   a sleep and a wake-up cost one system call each, like a
 *                   blocking read(2) and a write(2) of a Unix socket.
 * A waker, after the seq_cst store that published (ring.c), exchanges a
 * non-zero word with 0 and wakes the way the old value says
 * (wakeword_wake). Either the sleeper sees the publication or the waker sees
 * the word: no lost wake-up (wait.c has the whole argument).
 *
 * A futex sleep does not watch the peer's pidfd nor the ear, so whoever ends
 * a flow or kicks a reader calls wakeword_end() besides ringing the ear; and a
 * sleeper stays on the futex at most a slice (wait.c) before it falls back to
 * poll(), so even a peer that dies with the daemon is seen within the slice.
 *
 * TRUST: the word is in shared memory; the peer can write anything at any
 * time. A value other than WAKEWORD_FUTEX is taken as WAKEWORD_EAR (a ring:
 * bounded, never blocking); a futex wake wakes only sleepers on that word,
 * which re-check their condition and deadline; a sleep is bounded by an
 * absolute deadline the peer cannot move (FUTEX_WAIT_BITSET on
 * CLOCK_MONOTONIC) and returns at once if the word is not WAKEWORD_FUTEX.
 * The worst a peer can do is wake us for nothing, which it could already do
 * by ringing the ear.
 *
 * Who may call: anyone mapping a flow region (the library, the daemon).
 */
#pragma once

#include <stdatomic.h>
#include <stdint.h>

enum { WAKEWORD_NONE = 0, WAKEWORD_EAR = 1, WAKEWORD_FUTEX = 2 };

/* The waker's half: if the sleeper asked (word non-zero), clear the word and
 * wake it — a futex wake for WAKEWORD_FUTEX, else a ring of bell. Call right
 * after the seq_cst store that published. Never blocks. */
void wakeword_wake(_Atomic uint32_t *want, int bell);

/* A flow end or a kick: wake a futex sleeper on want, if any (the caller
 * rings the ear as well, for poll sleepers and pollers). Never blocks. */
void wakeword_end(_Atomic uint32_t *want);

/* Sleep on the futex while *want is WAKEWORD_FUTEX, at most until until_ns
 * (CLOCK_MONOTONIC). Returns 0 when woken, interrupted or the word changed,
 * -ETIMEDOUT when until_ns passed. The caller stored WAKEWORD_FUTEX, fenced
 * and re-checked its condition before. */
int wakeword_sleep(_Atomic uint32_t *want, uint64_t until_ns);
