/*
 * bbufq.c — the bounded buffer's operations on shared memory (see bbufq.h
 * for the layout, the locking and what is validated).
 *
 * Every word of the header is read once per use into a local (atomic loads:
 * another process may be writing it), validated, and only the local is used
 * for addressing. Waits end by the caller's deadline (read from the clock
 * only once a call must wait: bbufq_when): lock waits through
 * grplock, item/room waits in one spin window plus one bounded futex sleep
 * per call (the caller loops).
 */
#include "common/bbufq.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static uint64_t ldr(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static void st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
static void inc(uint64_t *p) { __atomic_store_n(p, ldr(p) + 1, __ATOMIC_RELAXED); }

void bbufq_init(void *region, uint64_t len, uint64_t epoch) {
        struct bbufq_hdr *h = region;
        memset(h, 0, sizeof(*h));
        h->version = BBUFQ_VERSION;
        h->cap = len - IPCF_BBUF_HDR;
        h->epoch = epoch;
        __atomic_store_n(&h->magic, BBUFQ_MAGIC, __ATOMIC_RELEASE);
}

int bbufq_open(void *region, uint64_t avail, bbufq *ret) {
        struct bbufq_hdr *h = region;
        ret->h = h;
        ret->data = (uint8_t *)region + IPCF_BBUF_HDR;
        ret->cap = ldr(&h->cap);
        ret->epoch = ldr(&h->epoch);
        if (__atomic_load_n(&h->magic, __ATOMIC_ACQUIRE) != BBUFQ_MAGIC || ret->cap == 0 ||
            avail < IPCF_BBUF_HDR || ret->cap > avail - IPCF_BBUF_HDR)
                return -EPROTO;
        return 0;
}

/* The deadline of w, given the time now if it must be computed. */
static uint64_t when_at(bbufq_when *w, uint64_t now) {
        if (w->at == 0)
                w->at = w->timeout_ms < 0 ? UINT64_MAX : now + (uint64_t)w->timeout_ms * 1000000u;
        return w->at;
}

uint64_t bbufq_deadline(bbufq_when *w) {
        return w->at ? w->at : when_at(w, now_ns());
}

/* Take one side's lock (the clock only if it is busy). A lock left by a
 * dead holder needs no repair (see LOCKING); one that is unrecoverable or
 * forges the caller is corrupt. */
static int side_lock(struct grplock *l, const grplock_who *w, bbufq_when *when) {
        int r = grplock_try(l, w);
        if (r == -EBUSY)
                r = grplock_take(l, w, bbufq_deadline(when), BBUFQ_LOCK_SPIN_NS);
        if (r == 1)
                r = grplock_consistent(l, w->me) == 0 ? 0 : -EPROTO;
        else if (r == -ENOTRECOVERABLE || r == -EDEADLK)
                r = -EPROTO;
        return r;
}

/* Release it; a word rewritten under us (-EPERM) is someone else's now. */
static void side_unlock(struct grplock *l, const grplock_who *w) {
        (void)grplock_release(l, w->me);
}

static void copy_in(const bbufq *q, uint64_t pos, const void *src, size_t n) {
        if (n == 0)
                return; /* src may be NULL */
        uint64_t o = pos % q->cap;
        size_t first = (size_t)MIN((uint64_t)n, q->cap - o);
        memcpy(q->data + o, src, first);
        memcpy(q->data, (const uint8_t *)src + first, n - first);
}

static void copy_out(const bbufq *q, uint64_t pos, void *dst, size_t n) {
        if (n == 0)
                return; /* dst may be NULL */
        uint64_t o = pos % q->cap;
        size_t first = (size_t)MIN((uint64_t)n, q->cap - o);
        memcpy(dst, q->data + o, first);
        memcpy((uint8_t *)dst + first, q->data, n - first);
}

/* After publishing a counter: wake the other side if some of it sleeps. */
static void wake_side(_Atomic uint32_t *w, _Atomic uint32_t *waiters) {
        if (atomic_load(waiters)) {
                atomic_fetch_add(w, 1);
                syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        }
}

int bbufq_put_once(const bbufq *q, const grplock_who *w, bbufq_when *when, const void *buf,
                   size_t len, bbufq_seen *seen, uint64_t key, uint64_t *ret_seen) {
        struct bbufq_hdr *h = q->h;
        uint64_t need = (uint64_t)len + IPCF_BBUF_ITEM_HDR;
        if (len > UINT32_MAX || need > q->cap)
                return -EMSGSIZE;
        int r = side_lock(&h->lk_put, w, when);
        if (r < 0)
                return r;
        /* The tail seen last time is a lower bound (tails only grow): read
         * the consumers' line only when it does not leave room. */
        uint64_t head = ldr(&h->p.head);
        uint64_t tail = seen->key == key && seen->epoch == q->epoch ? seen->val : head - q->cap - 1;
        if (head - tail > q->cap || q->cap - (head - tail) < need)
                tail = ld(&h->c.tail);
        *seen = (bbufq_seen){ key, q->epoch, tail };
        *ret_seen = tail;
        if (head - tail > q->cap) {
                r = -EPROTO;
        } else if (q->cap - (head - tail) < need) {
                r = 0;
        } else {
                uint32_t l32 = htole32((uint32_t)len);
                copy_in(q, head, &l32, sizeof(l32));
                copy_in(q, head + sizeof(l32), buf, len);
                st(&h->p.head, head + need);
                inc(&h->p.items_in);
                r = 1;
        }
        side_unlock(&h->lk_put, w);
        if (r == 1)
                wake_side(&h->p.not_empty, &h->p.get_waiters);
        return r;
}

ssize_t bbufq_get_once(const bbufq *q, const grplock_who *w, bbufq_when *when, void *buf,
                       size_t cap, bbufq_seen *seen, uint64_t key, uint64_t *ret_seen,
                       bool *ret_wait) {
        struct bbufq_hdr *h = q->h;
        *ret_wait = false;
        int r = side_lock(&h->lk_get, w, when);
        if (r < 0)
                return r;
        ssize_t n;
        /* The head seen last time is a lower bound (heads only grow): read
         * the producers' line only when nothing is left below it. */
        uint64_t tail = ldr(&h->c.tail);
        uint64_t head = seen->key == key && seen->epoch == q->epoch ? seen->val : tail;
        if (head - tail > q->cap || head == tail)
                head = ld(&h->p.head);
        *seen = (bbufq_seen){ key, q->epoch, head };
        uint64_t used = head - tail;
        *ret_seen = head;
        if (used > q->cap) {
                n = -EPROTO;
        } else if (used == 0) {
                n = 0;
                *ret_wait = true;
        } else if (used < IPCF_BBUF_ITEM_HDR) {
                n = -EPROTO; /* less than an item header queued */
        } else {
                uint32_t l32;
                copy_out(q, tail, &l32, sizeof(l32));
                uint64_t len = le32toh(l32);
                if (len + IPCF_BBUF_ITEM_HDR > used) {
                        n = -EPROTO;
                } else if (len > cap) {
                        n = -EMSGSIZE; /* the item stays */
                } else {
                        copy_out(q, tail + IPCF_BBUF_ITEM_HDR, buf, (size_t)len);
                        st(&h->c.tail, tail + IPCF_BBUF_ITEM_HDR + len);
                        inc(&h->c.items_out);
                        n = (ssize_t)len;
                }
        }
        side_unlock(&h->lk_get, w);
        if (n > 0 || (n == 0 && !*ret_wait))
                wake_side(&h->c.not_full, &h->c.put_waiters);
        return n;
}

/* Wait for the other side's counter *ctr to move from seen (read under our
 * side's lock, which is released by now): spin reading it (no system call
 * for anybody), then count ourselves in *waiters, note the futex word w,
 * look at *ctr once more and sleep on w for at most a slice of what is left.
 * The other side stores *ctr, then reads *waiters and, if someone sleeps,
 * bumps w and wakes (all seq_cst): either it sees us, or we see its store. */
static int wait_move(const uint64_t *ctr, uint64_t seen, _Atomic uint32_t *w,
                     _Atomic uint32_t *waiters, bbufq_when *when) {
        uint64_t now = now_ns(), deadline = when_at(when, now), spin_end = now + BBUFQ_SPIN_NS;
        for (unsigned i = 1; ld(ctr) == seen; i++) {
                cpu_relax();
                if (i % 64 == 0 && (now = now_ns()) >= spin_end)
                        break;
        }
        if (ld(ctr) != seen)
                return 0;
        if (now >= deadline)
                return -ETIMEDOUT;
        atomic_fetch_add(waiters, 1);
        uint32_t seq = atomic_load(w);
        if (ld(ctr) == seen) {
                uint64_t ns = MIN(deadline - now, (uint64_t)GRPLOCK_SLICE_MS * 1000000u);
                struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
                syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seq, &ts, NULL, 0);
        }
        atomic_fetch_sub(waiters, 1);
        return 0;
}

int bbufq_wait_items(const bbufq *q, uint64_t seen, bbufq_when *when) {
        return wait_move(&q->h->p.head, seen, &q->h->p.not_empty, &q->h->p.get_waiters, when);
}

int bbufq_wait_room(const bbufq *q, uint64_t seen, bbufq_when *when) {
        return wait_move(&q->h->c.tail, seen, &q->h->c.not_full, &q->h->c.put_waiters, when);
}

int bbufq_stat(const bbufq *q, uint64_t *ret_bytes, uint64_t *ret_items) {
        /* Tail first, so used <= cap holds for an intact buffer. */
        uint64_t tail = ld(&q->h->c.tail), out = ldr(&q->h->c.items_out);
        uint64_t head = ld(&q->h->p.head), in = ldr(&q->h->p.items_in);
        if (head - tail > q->cap)
                return -EPROTO;
        if (ret_bytes)
                *ret_bytes = head - tail;
        if (ret_items)
                *ret_items = in - out;
        return 0;
}
