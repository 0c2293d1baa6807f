/*
 * bbuf.c — the bounded buffer: a many-producer, many-consumer queue of
 * variable-size items in a region of a group's memory (Knuth's circular
 * queue; Dijkstra's producer/consumer).
 *
 * LAYOUT at the region's offset (64-byte aligned):
 *   header (IPCF_BBUF_HDR bytes): magic and cap; the producers' cache line
 *   (head, items put, the futex word not_empty, sleeping consumers); the
 *   consumers' line (tail, items taken, not_full, sleeping producers); one
 *   robust process-shared mutex for producers and one for consumers
 *   data: cap bytes, a circle. An item is a 4-byte length then its bytes,
 *   both wrapping around the end as needed (no padding, ever).
 *
 * FULL CAPACITY: head and tail are free-running byte counters (never reduced
 * modulo cap): used = head - tail, so empty (used 0) and full (used cap)
 * differ without sacrificing a slot, and items of total size exactly cap fit.
 *
 * LOCKING (the two-lock queue): producers serialise on mu_put and own head;
 * consumers serialise on mu_get and own tail; each reads the other's counter
 * once per operation (seq_cst). A producer copies its item into free space,
 * then publishes head; a consumer copies an item out, then publishes tail:
 * neither ever touches bytes the other side may still use. A process that
 * dies mid-copy has not published, so EOWNERDEAD needs no repair: the next
 * locker just marks the mutex consistent.
 * WAITING: a waiter notes the other side's counter under its lock,
 * releases the lock, spins reading that counter (BBUF_SPIN_NS), then counts
 * itself in the sleepers and sleeps on a futex word (not_empty / not_full)
 * that the other side bumps, with a FUTEX_WAKE, only when someone sleeps:
 * while both sides are busy, no system call at all. Sleeps last at most
 * BBUF_SLICE_MS, so a dissolve or a remap is seen soon, and the group's map
 * lock is never held across a long sleep.
 *
 * TRUST: another member may write anything into the header or the data. cap
 * is checked against the mapped size, head - tail against cap, and each item
 * length against what is queued; a violation fails -EPROTO and nothing is
 * read or written outside [data, data + cap).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/grpshm.h"
#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/groups/group.h"

#define BBUF_MAGIC 0x46554242u /* "BBUF" */
#define BBUF_SPIN_NS 50000u      /* spin this long before sleeping */
#define BBUF_SLICE_MS 50

/* Producers and consumers each own a cache line and a lock: they meet only
 * at the other side's counter, read once per operation. */
struct bbuf_hdr {
        uint32_t magic, version;
        uint64_t cap;
        uint64_t epoch;                         /* set by init: keys cached counters */
        struct {
                uint64_t head;                  /* under mu_put; seq_cst store */
                uint64_t items_in;
                _Atomic uint32_t not_empty;     /* futex word: bumped to wake consumers */
                _Atomic uint32_t get_waiters;   /* consumers asleep */
        } p __attribute__((aligned(64)));
        struct {
                uint64_t tail;                  /* under mu_get; seq_cst store */
                uint64_t items_out;
                _Atomic uint32_t not_full;      /* futex word: bumped to wake producers */
                _Atomic uint32_t put_waiters;   /* producers asleep */
        } c __attribute__((aligned(64)));
        pthread_mutex_t mu_put __attribute__((aligned(64)));
        pthread_mutex_t mu_get __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct bbuf_hdr) <= IPCF_BBUF_HDR, "bbuf header too large");

/* The layout of group.bb_*_seen (lib.h). */
struct bbuf_seen {
        uint64_t off, epoch, val;
};

static uint64_t ld(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static void st(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }

/* One operation's view: the header, the data and the validated capacity. */
typedef struct bview {
        group *g;
        struct bbuf_hdr *h;
        uint8_t *data;
        uint64_t cap, off, epoch;
} bview;

/* Map the buffer at off (maplock held on success: bview_end). */
static int bview_begin(group *g, uint64_t off, bview *v) {
        uint8_t *p;
        if (off % 64)
                return -EINVAL;
        if (atomic_load(&g->closed))
                return -EBADF; /* exited while we waited */
        int r = group_access(g, off, IPCF_BBUF_HDR, &p);
        if (r < 0)
                return r;
        v->g = g;
        v->h = (struct bbuf_hdr *)p;
        v->data = p + IPCF_BBUF_HDR;
        v->cap = *(volatile uint64_t *)&v->h->cap;
        v->off = off;
        v->epoch = *(volatile uint64_t *)&v->h->epoch;
        /* off + HDR <= size holds (group_access checked it). */
        if (*(volatile uint32_t *)&v->h->magic != BBUF_MAGIC || v->cap == 0 ||
            v->cap > g->size - off - IPCF_BBUF_HDR) {
                group_access_end(g);
                return -EPROTO;
        }
        return 0;
}

static void bview_end(bview *v) {
        group_access_end(v->g);
}

/* Take the mutex: a few tries first (a robust mutex never spins by itself,
 * and sleeping in the kernel for a lock held a few hundred ns costs µs). */
static int mu_lock(pthread_mutex_t *mu) {
        int r = EBUSY;
        for (int i = 0; i < 200 && r == EBUSY; i++) {
                r = pthread_mutex_trylock(mu);
                if (r == EBUSY)
                        cpu_relax();
        }
        if (r == EBUSY)
                r = pthread_mutex_lock(mu);
        if (r == EOWNERDEAD) /* nothing to repair: see LOCKING */
                r = pthread_mutex_consistent(mu);
        return r ? -EPROTO : 0;
}

static void copy_in(bview *v, uint64_t pos, const void *src, size_t n) {
        if (n == 0)
                return; /* src may be NULL */
        uint64_t o = pos % v->cap;
        size_t first = (size_t)MIN((uint64_t)n, v->cap - o);
        memcpy(v->data + o, src, first);
        memcpy(v->data, (const uint8_t *)src + first, n - first);
}

static void copy_out(bview *v, uint64_t pos, void *dst, size_t n) {
        if (n == 0)
                return; /* dst may be NULL */
        uint64_t o = pos % v->cap;
        size_t first = (size_t)MIN((uint64_t)n, v->cap - o);
        memcpy(dst, v->data + o, first);
        memcpy((uint8_t *)dst + first, v->data, n - first);
}

/* Wait for the other side's counter *ctr to move from seen (read under our
 * side's lock, which the caller has released): spin reading it (no system
 * call for anybody), then count ourselves in *waiters, note the futex word
 * w, look at *ctr once more and sleep on w, for at most a slice of what is
 * left to deadline. The other side stores *ctr, then reads *waiters and, if
 * someone sleeps, bumps w and wakes (all seq_cst): either it sees us, or we
 * see its store. Returns -ETIMEDOUT once the deadline passed, else 0. */
static int bview_wait(const uint64_t *ctr, uint64_t seen, _Atomic uint32_t *w,
                      _Atomic uint32_t *waiters, uint64_t deadline) {
        uint64_t now = now_ns(), spin_end = now + BBUF_SPIN_NS;
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
                uint64_t ns = MIN(deadline - now, (uint64_t)BBUF_SLICE_MS * 1000000u);
                struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
                syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seq, &ts, NULL, 0);
        }
        atomic_fetch_sub(waiters, 1);
        return 0;
}

/* After publishing a counter: wake the other side if some of it sleeps. */
static void bview_wake(_Atomic uint32_t *w, _Atomic uint32_t *waiters) {
        if (atomic_load(waiters)) {
                atomic_fetch_add(w, 1);
                syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
        }
}

ssize_t ipcf_bbuf_init(int h, uint64_t offset, uint64_t len) {
        if (len <= IPCF_BBUF_HDR || offset % 64)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint8_t *p;
        int r = group_access(g, offset, len, &p);
        if (r == 0) {
                struct bbuf_hdr *hd = (struct bbuf_hdr *)p;
                memset(hd, 0, sizeof(*hd));
                hd->version = 1;
                hd->cap = len - IPCF_BBUF_HDR;
                hd->epoch = now_ns() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)hd;
                r = grpshm_mutex_init(&hd->mu_put);
                if (r == 0)
                        r = grpshm_mutex_init(&hd->mu_get);
                if (r == 0)
                        __atomic_store_n(&hd->magic, BBUF_MAGIC, __ATOMIC_RELEASE);
                group_access_end(g);
        }
        handle_put(g);
        return r < 0 ? r : (ssize_t)(len - IPCF_BBUF_HDR);
}

/* One put attempt: 1 done, 0 must wait (*ret_seen: the tail seen), or
 * -errno. */
static int put_once(bview *v, const void *buf, size_t len, uint64_t *ret_seen) {
        struct bbuf_hdr *h = v->h;
        uint64_t need = (uint64_t)len + IPCF_BBUF_ITEM_HDR;
        if (len > UINT32_MAX || need > v->cap)
                return -EMSGSIZE;
        int r = mu_lock(&h->mu_put);
        if (r < 0)
                return r;
        /* The tail seen last time is a lower bound (tails only grow): read
         * the consumers' line only when it does not leave room. */
        struct bbuf_seen *c = (struct bbuf_seen *)&v->g->bb_tail_seen;
        uint64_t head = h->p.head;
        uint64_t tail = c->off == v->off && c->epoch == v->epoch ? c->val : head - v->cap - 1;
        if (head - tail > v->cap || v->cap - (head - tail) < need)
                tail = ld(&h->c.tail);
        *c = (struct bbuf_seen){ v->off, v->epoch, tail };
        *ret_seen = tail;
        if (head - tail > v->cap) {
                r = -EPROTO;
        } else if (v->cap - (head - tail) < need) {
                r = 0;
        } else {
                uint32_t l32 = htole32((uint32_t)len);
                copy_in(v, head, &l32, sizeof(l32));
                copy_in(v, head + sizeof(l32), buf, len);
                st(&h->p.head, head + need);
                h->p.items_in++;
                r = 1;
        }
        pthread_mutex_unlock(&h->mu_put);
        if (r == 1)
                bview_wake(&h->p.not_empty, &h->p.get_waiters);
        return r;
}

/* One get attempt: the item's length; or 0 with *ret_wait set when empty
 * (*ret_seen: the head seen); or -errno. */
static ssize_t get_once(bview *v, void *buf, size_t cap, uint64_t *ret_seen, bool *ret_wait) {
        struct bbuf_hdr *h = v->h;
        int r = mu_lock(&h->mu_get);
        if (r < 0)
                return r;
        ssize_t n;
        *ret_wait = false;
        /* The head seen last time is a lower bound (heads only grow): read
         * the producers' line only when nothing is left below it. */
        struct bbuf_seen *c = (struct bbuf_seen *)&v->g->bb_head_seen;
        uint64_t tail = h->c.tail;
        uint64_t head = c->off == v->off && c->epoch == v->epoch ? c->val : tail;
        if (head - tail > v->cap || head == tail)
                head = ld(&h->p.head);
        *c = (struct bbuf_seen){ v->off, v->epoch, head };
        uint64_t used = head - tail;
        *ret_seen = head;
        if (used > v->cap) {
                n = -EPROTO;
        } else if (used == 0) {
                n = 0;
                *ret_wait = true;
        } else if (used < IPCF_BBUF_ITEM_HDR) {
                n = -EPROTO; /* less than an item header queued */
        } else {
                uint32_t l32;
                copy_out(v, tail, &l32, sizeof(l32));
                uint64_t len = le32toh(l32);
                if (len + IPCF_BBUF_ITEM_HDR > used) {
                        n = -EPROTO;
                } else if (len > cap) {
                        n = -EMSGSIZE; /* the item stays */
                } else {
                        copy_out(v, tail + IPCF_BBUF_ITEM_HDR, buf, (size_t)len);
                        st(&h->c.tail, tail + IPCF_BBUF_ITEM_HDR + len);
                        h->c.items_out++;
                        n = (ssize_t)len;
                }
        }
        pthread_mutex_unlock(&h->mu_get);
        if (n >= 0 && !*ret_wait)
                bview_wake(&h->c.not_full, &h->c.put_waiters);
        return n;
}

ssize_t ipcf_bbuf_put(int h, uint64_t offset, const void *buf, size_t len, int timeout_ms) {
        if ((!buf && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        ssize_t r;
        for (;;) {
                bview v;
                uint64_t seen = 0;
                if ((r = bview_begin(g, offset, &v)) < 0)
                        break;
                r = put_once(&v, buf, len, &seen);
                bool again = false;
                if (r == 1) {
                        r = (ssize_t)len;
                } else if (r == 0 && timeout_ms == 0) {
                        r = -EAGAIN;
                } else if (r == 0) {
                        r = bview_wait(&v.h->c.tail, seen, &v.h->c.not_full, &v.h->c.put_waiters,
                                       deadline);
                        again = r == 0;
                }
                bview_end(&v);
                if (!again)
                        break;
        }
        handle_put(g);
        return r;
}

ssize_t ipcf_bbuf_get(int h, uint64_t offset, void *buf, size_t cap, int timeout_ms) {
        if ((!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        ssize_t r;
        for (;;) {
                bview v;
                uint64_t seen = 0;
                bool wait;
                if ((r = bview_begin(g, offset, &v)) < 0)
                        break;
                r = get_once(&v, buf, cap, &seen, &wait);
                if (wait && timeout_ms == 0)
                        r = -EAGAIN;
                else if (wait)
                        r = bview_wait(&v.h->p.head, seen, &v.h->p.not_empty, &v.h->p.get_waiters,
                                       deadline);
                bview_end(&v);
                if (!wait || r < 0)
                        break;
        }
        handle_put(g);
        return r;
}

int ipcf_bbuf_stat(int h, uint64_t offset, uint64_t *ret_bytes, uint64_t *ret_items) {
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        bview v;
        int r = bview_begin(g, offset, &v);
        if (r == 0) {
                /* A snapshot without the locks: tail first, so used <= cap
                 * holds for an intact buffer. */
                uint64_t tail = ld(&v.h->c.tail), out = v.h->c.items_out;
                uint64_t head = ld(&v.h->p.head), in = v.h->p.items_in;
                if (head - tail > v.cap) {
                        r = -EPROTO;
                } else {
                        if (ret_bytes)
                                *ret_bytes = head - tail;
                        if (ret_items)
                                *ret_items = in - out;
                }
                bview_end(&v);
        }
        handle_put(g);
        return r;
}
