/*
 * grplock.h — a lock in memory that other processes may write (the group
 * lock and the bounded buffer's two locks): it holds integers only, which
 * are validated on every use; no pointer is ever stored there or followed.
 *
 * THE WORD `owner` (64 bits) is 0 while free, or a holder's token:
 *   bits  0..21  the holder thread's tid (Linux tids are below 2^22)
 *   bits 22..29  the holder's member slot (0..GRPLOCK_SLOTS-1)
 *   bits 30..59  the holder's member serial (1..GRPLOCK_SERIAL_MAX)
 *   bit  60      GRPLOCK_INCONS: taken from a holder that was gone; cleared
 *                by grplock_consistent()
 * or one of two marks:
 *   GRPLOCK_DEAD    free, but its last holder ended holding it: the next
 *                   taker holds it inconsistent (the thread-exit hook)
 *   GRPLOCK_NOTREC  released while inconsistent: unusable (POSIX's
 *                   ENOTRECOVERABLE)
 *
 * LIVENESS: a holder is alive while roster[slot] == serial. The roster is
 * written by the facility alone (grpshm.h): the slot gets the serial when
 * the member is admitted and 0 when it exits or dies. A taker that finds a
 * holder the roster no longer carries — or a word that is no token at all —
 * takes the lock marked inconsistent (the caller is told: 1).
 *
 * WAITING: a taker spins up to spin_ns reading the word, then counts itself
 * in `sleepers` and FUTEX_WAITs on `seq` for at most GRPLOCK_SLICE_MS; a
 * release bumps seq and wakes one sleeper when there is one; the facility
 * bumps and wakes all when a member leaves (grplock_kick). After each slice
 * the taker looks at the holder's liveness and its stop callback again, so
 * a lost wake-up (a corrupt counter) costs at most one slice, and no wait
 * passes its deadline by more than one spin window (spin_ns).
 *
 * TRUST: a hostile member can make a taker wait until its deadline (a forged
 * live holder), let it take a lock that is held (a forged free or dead
 * word), or make the lock unrecoverable. It cannot make a taker fault, loop
 * without bound, or wait past its deadline.
 *
 * Pure functions on memory (plus futex calls): used by libipcf, by the
 * daemon (grplock_kick) and by fuzz/fuzz-bbuf.c.
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define GRPLOCK_SLOTS 256u                     /* member slots of a group */
#define GRPLOCK_SERIAL_MAX ((1u << 30) - 1)
#define GRPLOCK_TID_MAX ((1u << 22) - 1)
#define GRPLOCK_TOKEN_MASK ((1ull << 60) - 1)
#define GRPLOCK_INCONS (1ull << 60)
#define GRPLOCK_DEAD (1ull << 61)
#define GRPLOCK_NOTREC (1ull << 62)
#define GRPLOCK_SLICE_MS 50

struct grplock {
        _Atomic uint64_t owner;      /* 0, a token (| INCONS), DEAD or NOTREC */
        _Atomic uint32_t seq;        /* futex word: bumped when sleepers must look */
        _Atomic uint32_t sleepers;   /* takers asleep on seq (a hint) */
};

/* Who takes a lock, and how it tells a live holder from a gone one. */
typedef struct grplock_who {
        const _Atomic uint32_t *roster; /* GRPLOCK_SLOTS serials (grpshm_ctl.roster) */
        uint64_t me;                    /* the caller's token (grplock_token) */
        /* Asked between sleeps (may be NULL): 0 to wait on, or a -errno
         * to give up with (the handle closed, the group dissolved). */
        int (*stop)(void *arg);
        void *arg;
} grplock_who;

/* The token of thread tid of the member in slot with serial, or 0 if a
 * part is out of range. */
uint64_t grplock_token(unsigned slot, uint32_t serial, uint32_t tid);

/* One attempt, without waiting or reading the clock: as grplock_take, or
 * -EBUSY while a live holder has it. */
int grplock_try(struct grplock *l, const grplock_who *w);
/* Take l before deadline (monotonic ns; UINT64_MAX: never give up), after
 * spinning up to spin_ns (which the deadline does not cut short: timeout 0
 * with a spin is "try briefly"). Returns 0; 1 taken from a holder that is
 * gone (now held with GRPLOCK_INCONS); -ETIMEDOUT; -EDEADLK the caller's
 * token holds it; -ENOTRECOVERABLE; or what stop returned. */
int grplock_take(struct grplock *l, const grplock_who *w, uint64_t deadline, uint64_t spin_ns);
/* Release: 0, or -EPERM if me does not hold it. An inconsistent lock
 * becomes unrecoverable. */
int grplock_release(struct grplock *l, uint64_t me);
/* After a repair: 0; -EINVAL held by me but not inconsistent; -EPERM. */
int grplock_consistent(struct grplock *l, uint64_t me);
/* The caller's thread ends holding l: free it marked DEAD (the next taker
 * is told). 0, or -EPERM if me does not hold it. */
int grplock_abandon(struct grplock *l, uint64_t me);
/* Does me hold l (consistent or not)? */
bool grplock_held_by(struct grplock *l, uint64_t me);
/* Make every sleeper look again (a member left: its locks may be free). */
void grplock_kick(struct grplock *l);
