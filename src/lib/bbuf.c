/*
 * bbuf.c — the bounded buffer: a many-producer, many-consumer queue of
 * variable-size items in a region of a group's memory (Knuth's circular
 * queue; Dijkstra's producer/consumer).
 *
 * LAYOUT at the region's offset (64-byte aligned):
 *   header (IPCF_BBUF_HDR bytes): magic, cap, head, tail, items, two futex
 *   words, two waiter counts, a robust process-shared mutex
 *   data: cap bytes, a circle. An item is a 4-byte length then its bytes,
 *   both wrapping around the end as needed (no padding, ever).
 *
 * FULL CAPACITY: head and tail are free-running byte counters (never reduced
 * modulo cap): used = head - tail, so empty (used 0) and full (used cap)
 * differ without sacrificing a slot, and items of total size exactly cap fit.
 *
 * LOCKING: head/tail/items change only under the mutex; the copy is done
 * under it too (then a producer that dies mid-copy leaves head unchanged, so
 * EOWNERDEAD needs no repair: the next locker just marks it consistent).
 * Waiting: the futex word not_empty is bumped by every put, not_full by every
 * get, under the mutex; a waiter notes the word under the mutex, counts
 * itself in the waiters, releases the mutex, spins briefly, then sleeps on
 * the word; the other side wakes only when someone waits. Sleeps last at most
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
#include "lib/lib.h"

#define BBUF_MAGIC 0x46554242u /* "BBUF" */
#define BBUF_SPINS 2000
#define BBUF_SLICE_MS 50

struct bbuf_hdr {
        uint32_t magic, version;
        uint64_t cap;
        uint64_t head, tail, items;           /* under mu */
        _Atomic uint32_t not_empty, not_full; /* futex words */
        _Atomic uint32_t get_waiters, put_waiters;
        pthread_mutex_t mu __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct bbuf_hdr) <= IPCF_BBUF_HDR, "bbuf header too large");

/* One operation's view: the header, the data and the validated capacity. */
typedef struct bview {
        group *g;
        struct bbuf_hdr *h;
        uint8_t *data;
        uint64_t cap;
} bview;

/* Map the buffer at off (maplock held on success: bview_end). */
static int bview_begin(group *g, uint64_t off, bview *v) {
        uint8_t *p;
        if (off % 64)
                return -EINVAL;
        int r = group_access(g, off, IPCF_BBUF_HDR, &p);
        if (r < 0)
                return r;
        v->g = g;
        v->h = (struct bbuf_hdr *)p;
        v->data = p + IPCF_BBUF_HDR;
        v->cap = *(volatile uint64_t *)&v->h->cap;
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

static int bview_lock(bview *v) {
        int r = pthread_mutex_lock(&v->h->mu);
        if (r == EOWNERDEAD) /* nothing to repair: see LOCKING */
                r = pthread_mutex_consistent(&v->h->mu);
        return r ? -EPROTO : 0;
}

static void bview_unlock(bview *v) {
        pthread_mutex_unlock(&v->h->mu);
}

static void copy_in(bview *v, uint64_t pos, const void *src, size_t n) {
        uint64_t o = pos % v->cap;
        size_t first = (size_t)MIN((uint64_t)n, v->cap - o);
        memcpy(v->data + o, src, first);
        memcpy(v->data, (const uint8_t *)src + first, n - first);
}

static void copy_out(bview *v, uint64_t pos, void *dst, size_t n) {
        uint64_t o = pos % v->cap;
        size_t first = (size_t)MIN((uint64_t)n, v->cap - o);
        memcpy(dst, v->data + o, first);
        memcpy((uint8_t *)dst + first, v->data, n - first);
}

static void futex_wake_all(_Atomic uint32_t *w) {
        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Called with the mutex held and *waiters already counted: release it, spin,
 * then sleep on w while it still holds seq, for at most a slice of what is
 * left to deadline. Returns -ETIMEDOUT once the deadline passed. */
static int bview_wait(bview *v, _Atomic uint32_t *w, _Atomic uint32_t *waiters, uint32_t seq,
                      uint64_t deadline) {
        bview_unlock(v);
        for (int i = 0; i < BBUF_SPINS && atomic_load(w) == seq; i++)
                cpu_relax();
        uint64_t now = now_ns();
        int r = 0;
        if (atomic_load(w) == seq) {
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                } else {
                        uint64_t ns = MIN(deadline - now, (uint64_t)BBUF_SLICE_MS * 1000000u);
                        struct timespec ts = { (time_t)(ns / 1000000000u), (long)(ns % 1000000000u) };
                        syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT, seq, &ts, NULL, 0);
                }
        }
        atomic_fetch_sub(waiters, 1);
        return r;
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
                r = grpshm_mutex_init(&hd->mu);
                if (r == 0)
                        __atomic_store_n(&hd->magic, BBUF_MAGIC, __ATOMIC_RELEASE);
                group_access_end(g);
        }
        handle_put(g);
        return r < 0 ? r : (ssize_t)(len - IPCF_BBUF_HDR);
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
                if ((r = bview_begin(g, offset, &v)) < 0)
                        break;
                uint64_t need = (uint64_t)len + IPCF_BBUF_ITEM_HDR;
                if (len > UINT32_MAX || need > v.cap) {
                        bview_end(&v);
                        r = -EMSGSIZE;
                        break;
                }
                if ((r = bview_lock(&v)) < 0) {
                        bview_end(&v);
                        break;
                }
                uint64_t head = v.h->head, tail = v.h->tail;
                if (head - tail > v.cap) {
                        r = -EPROTO;
                } else if (v.cap - (head - tail) >= need) {
                        uint32_t l32 = htole32((uint32_t)len);
                        copy_in(&v, head, &l32, sizeof(l32));
                        copy_in(&v, head + sizeof(l32), buf, len);
                        v.h->head = head + need;
                        v.h->items++;
                        atomic_fetch_add(&v.h->not_empty, 1);
                        bool wake = atomic_load(&v.h->get_waiters) != 0;
                        bview_unlock(&v);
                        if (wake)
                                futex_wake_all(&v.h->not_empty);
                        bview_end(&v);
                        r = (ssize_t)len;
                        break;
                } else if (timeout_ms == 0) {
                        r = -EAGAIN;
                } else {
                        uint32_t seq = atomic_load(&v.h->not_full);
                        atomic_fetch_add(&v.h->put_waiters, 1);
                        r = bview_wait(&v, &v.h->not_full, &v.h->put_waiters, seq, deadline);
                        bview_end(&v);
                        if (r < 0)
                                break;
                        continue;
                }
                bview_unlock(&v);
                bview_end(&v);
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
                if ((r = bview_begin(g, offset, &v)) < 0)
                        break;
                if ((r = bview_lock(&v)) < 0) {
                        bview_end(&v);
                        break;
                }
                uint64_t head = v.h->head, tail = v.h->tail, used = head - tail;
                if (used > v.cap) {
                        r = -EPROTO;
                } else if (used >= IPCF_BBUF_ITEM_HDR) {
                        uint32_t l32;
                        copy_out(&v, tail, &l32, sizeof(l32));
                        uint64_t len = le32toh(l32);
                        if (len + IPCF_BBUF_ITEM_HDR > used) {
                                r = -EPROTO;
                        } else if (len > cap) {
                                r = -EMSGSIZE; /* the item stays */
                        } else {
                                copy_out(&v, tail + IPCF_BBUF_ITEM_HDR, buf, (size_t)len);
                                v.h->tail = tail + IPCF_BBUF_ITEM_HDR + len;
                                if (v.h->items)
                                        v.h->items--;
                                atomic_fetch_add(&v.h->not_full, 1);
                                bool wake = atomic_load(&v.h->put_waiters) != 0;
                                bview_unlock(&v);
                                if (wake)
                                        futex_wake_all(&v.h->not_full);
                                bview_end(&v);
                                r = (ssize_t)len;
                                break;
                        }
                } else if (used != 0) {
                        r = -EPROTO; /* less than an item header queued */
                } else if (timeout_ms == 0) {
                        r = -EAGAIN;
                } else {
                        uint32_t seq = atomic_load(&v.h->not_empty);
                        atomic_fetch_add(&v.h->get_waiters, 1);
                        r = bview_wait(&v, &v.h->not_empty, &v.h->get_waiters, seq, deadline);
                        bview_end(&v);
                        if (r < 0)
                                break;
                        continue;
                }
                bview_unlock(&v);
                bview_end(&v);
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
                if ((r = bview_lock(&v)) == 0) {
                        uint64_t used = v.h->head - v.h->tail, items = v.h->items;
                        bview_unlock(&v);
                        if (used > v.cap) {
                                r = -EPROTO;
                        } else {
                                if (ret_bytes)
                                        *ret_bytes = used;
                                if (ret_items)
                                        *ret_items = items;
                        }
                }
                bview_end(&v);
        }
        handle_put(g);
        return r;
}
