/*
 * grplock.c — the lock of shared-memory groups (see grplock.h for the word,
 * liveness, waiting and what a hostile writer can and cannot do).
 *
 * Every loop here ends by the deadline: each turn reads the clock (every
 * 32nd turn while spinning), and a word that changes on every look (a
 * hostile writer flipping it) sends the taker to sleep for a millisecond
 * after a few turns instead of letting it spin.
 */
#include "common/grplock.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define BUSY 2 /* attempt(): held by a live holder, or the word moved */

uint64_t grplock_token(unsigned slot, uint32_t serial, uint32_t tid) {
        if (slot >= GRPLOCK_SLOTS || serial == 0 || serial > GRPLOCK_SERIAL_MAX || tid == 0 ||
            tid > GRPLOCK_TID_MAX)
                return 0;
        return (uint64_t)serial << 30 | (uint64_t)slot << 22 | tid;
}

/* Is the holder named by word o (a token, maybe | INCONS) still a member?
 * Anything that is not a well-formed token counts as gone. */
static bool holder_alive(uint64_t o, const _Atomic uint32_t *roster) {
        o &= ~GRPLOCK_INCONS;
        if (o & ~GRPLOCK_TOKEN_MASK)
                return false;
        uint32_t tid = (uint32_t)(o & GRPLOCK_TID_MAX), serial = (uint32_t)(o >> 30);
        unsigned slot = (unsigned)(o >> 22) & (GRPLOCK_SLOTS - 1);
        return tid && serial && atomic_load_explicit(&roster[slot], memory_order_acquire) == serial;
}

static bool cas(struct grplock *l, uint64_t from, uint64_t to) {
        return atomic_compare_exchange_strong(&l->owner, &from, to);
}

static void futex_wake(_Atomic uint32_t *w, int n) {
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, n, NULL, NULL, 0);
}

/* Wake one sleeper if any (a release, or a woken taker giving up). */
static void wake_one(struct grplock *l) {
        if (atomic_load(&l->sleepers)) {
                atomic_fetch_add(&l->seq, 1);
                futex_wake(&l->seq, 1);
        }
}

void grplock_kick(struct grplock *l) {
        atomic_fetch_add(&l->seq, 1);
        futex_wake(&l->seq, INT_MAX);
}

/* One attempt on the word seen (o): 0 or 1 taken, -errno final, BUSY. */
static int attempt(struct grplock *l, const grplock_who *w, uint64_t o) {
        if (o == 0)
                return cas(l, 0, w->me) ? 0 : BUSY;
        if (o == GRPLOCK_NOTREC)
                return -ENOTRECOVERABLE;
        if ((o & ~GRPLOCK_INCONS) == w->me)
                return -EDEADLK;
        if (o == GRPLOCK_DEAD || !holder_alive(o, w->roster))
                return cas(l, o, w->me | GRPLOCK_INCONS) ? 1 : BUSY;
        return BUSY;
}

/* Sleep on seq while the word still reads o, for at most one slice of what
 * is left. Returns true if woken by a FUTEX_WAKE. */
static bool sleep_slice(struct grplock *l, uint64_t o, uint64_t now, uint64_t deadline) {
        uint64_t ns = MIN(deadline - now, (uint64_t)GRPLOCK_SLICE_MS * 1000000u);
        struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
        bool woken = false;
        atomic_fetch_add(&l->sleepers, 1);
        uint32_t seq = atomic_load(&l->seq);
        if (atomic_load(&l->owner) == o)
                woken = syscall(SYS_futex, (uint32_t *)&l->seq, FUTEX_WAIT, seq, &ts, NULL, 0) == 0;
        atomic_fetch_sub(&l->sleepers, 1);
        return woken;
}

int grplock_try(struct grplock *l, const grplock_who *w) {
        int r = attempt(l, w, atomic_load_explicit(&l->owner, memory_order_relaxed));
        return r == BUSY ? -EBUSY : r;
}

int grplock_take(struct grplock *l, const grplock_who *w, uint64_t deadline, uint64_t spin_ns) {
        int r = grplock_try(l, w); /* the uncontended case reads no clock */
        if (r != -EBUSY)
                return r;
        uint64_t now = now_ns(), spin_end = now + spin_ns;
        unsigned moved = 0; /* turns in a row the word changed before we slept */
        bool woken = false;
        for (unsigned i = 1;; i++) {
                uint64_t o = atomic_load_explicit(&l->owner, memory_order_relaxed);
                r = attempt(l, w, o);
                if (r != BUSY) {
                        if (r < 0 && woken)
                                wake_one(l); /* pass on the wake-up we took */
                        return r;
                }
                if (now < spin_end) {
                        cpu_relax();
                        if (i % 32 == 0)
                                now = now_ns();
                        continue;
                }
                now = now_ns();
                r = now >= deadline ? -ETIMEDOUT : w->stop ? w->stop(w->arg) : 0;
                if (r < 0) {
                        if (woken)
                                wake_one(l);
                        return r;
                }
                woken = false;
                if (atomic_load(&l->owner) == o) {
                        moved = 0;
                        woken = sleep_slice(l, o, now, deadline);
                } else if (++moved >= 8) {
                        /* It changes on every look: sleep a little anyway. */
                        struct timespec ms = { 0, 1000000 };
                        nanosleep(&ms, NULL);
                        moved = 0;
                } /* else it moved: look again at once */
                now = now_ns();
        }
}

int grplock_release(struct grplock *l, uint64_t me) {
        uint64_t o = atomic_load(&l->owner);
        if ((o & ~GRPLOCK_INCONS) != me || me == 0)
                return -EPERM;
        bool incons = o & GRPLOCK_INCONS;
        if (!cas(l, o, incons ? GRPLOCK_NOTREC : 0))
                return -EPERM; /* rewritten under us: not ours any more */
        if (incons)
                grplock_kick(l); /* every sleeper learns it is unrecoverable */
        else
                wake_one(l);
        return 0;
}

int grplock_consistent(struct grplock *l, uint64_t me) {
        uint64_t o = atomic_load(&l->owner);
        if (me == 0)
                return -EPERM;
        if (o == me)
                return -EINVAL;
        if (o != (me | GRPLOCK_INCONS))
                return -EPERM;
        return cas(l, o, me) ? 0 : -EPERM;
}

int grplock_abandon(struct grplock *l, uint64_t me) {
        uint64_t o = atomic_load(&l->owner);
        if ((o & ~GRPLOCK_INCONS) != me || me == 0 || !cas(l, o, GRPLOCK_DEAD))
                return -EPERM;
        wake_one(l);
        return 0;
}

bool grplock_held_by(struct grplock *l, uint64_t me) {
        return me && (atomic_load(&l->owner) & ~GRPLOCK_INCONS) == me;
}
