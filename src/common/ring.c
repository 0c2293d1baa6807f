/*
 * ring.c — the SPSC record ring of a flow (layout and trust rules in ring.h).
 *
 * Memory ordering: the producer fills a record, then stores its tag with
 * release; the consumer loads the tag with acquire, then reads the record;
 * it publishes its tail with release and the producer reads it with acquire
 * before reusing the space. Nothing else is needed on the fast path.
 */
#include "common/ring.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "common/util.h"

#define TAG(pos, st) (((pos) << 2) | (uint64_t)(st))

struct rec_hdr {
        _Atomic uint64_t tag;
        uint32_t len;
        uint32_t flags;
};

bool flow_qos_caches(const ipcf_qos *qos) {
        return qos->capacity == IPCF_CAPACITY_BOUNDED && qos->mode == IPCF_MODE_MESSAGE &&
               qos->full == IPCF_FULL_CACHE && qos->cache_msgs > 0;
}

/* The ring holds two records of max_msg_size (a pad to the lap's end and the
 * record) and the queue, rounded up to a power of two. A BOUNDED queue's
 * capacity is max_bytes itself (records with their headers; rounded down to
 * RING_ALIGN, at least one record of RING_ALIGN bytes: a stream can always move),
 * not that ring: prod_fits lets one message of any size into an empty queue
 * (MESSAGE mode; a stream write is cut to what fits). */
int flow_layout_for(const ipcf_qos *qos, flow_layout *ret) {
        uint64_t need = 2 * ring_rec_size(qos->max_msg_size);
        uint64_t want = qos->capacity == IPCF_CAPACITY_ZERO ? 0 : qos->max_bytes;
        uint64_t base = next_pow2_u64(MAX(MAX(need, want), (uint64_t)RING_MIN));
        uint64_t cap = base, size = base;
        const uint64_t limit = (QOS_LIMIT_UNBOUNDED > QOS_LIMIT_RING ? QOS_LIMIT_UNBOUNDED : QOS_LIMIT_RING) * 2;

        if (qos->capacity == IPCF_CAPACITY_BOUNDED && want)
                cap = MIN(base, MAX(want & ~(uint64_t)(RING_ALIGN - 1), (uint64_t)(REC_HDR + RING_ALIGN)));
        /* FULL_CACHE: the cached messages wait in the ring, beyond the queue. */
        if (flow_qos_caches(qos)) {
                uint64_t cache = (uint64_t)qos->cache_msgs * ring_rec_size(qos->max_msg_size);
                if (cache > QOS_LIMIT_RING)
                        return -EINVAL;
                size = next_pow2_u64(base + cache);
        }
        if (size > limit)
                return -EINVAL;
        ret->ring_size = size;
        ret->cap = cap;
        ret->total = FLOW_DATA_OFF + 2 * size;
        return 0;
}

void flow_region_init(void *mem, const flow_layout *l) {
        struct flow_hdr *h = mem;
        h->magic = FLOW_MAGIC;
        h->version = FLOW_VERSION;
        h->size = l->total;
}

static struct rec_hdr *rec_at(uint8_t *data, uint64_t mask, uint64_t pos) {
        return (struct rec_hdr *)(data + (pos & mask));
}

/* ---- producer ---------------------------------------------------------- */

/* How far ahead of its head the producer takes lines for writing. */
#define PREFETCH_AHEAD (4u * CACHELINE)

/* Ask for the line at a to be ours, to write (a hint: no fault, no effect on
 * what anyone reads). */
static inline void prefetch_write(const void *a) {
#if defined(__x86_64__) || defined(__i386__)
        __asm__ __volatile__("prefetchw %0" : : "m"(*(const char *)a));
#else
        __builtin_prefetch(a, 1, 3);
#endif
}

/* The lines the next records fill were read by the consumer a lap ago: take
 * them now, while this call finishes, rather than at the next commit's
 * fence. Only a line known to be consumed already (never one the consumer has
 * yet to read: that would take it from under it). */
static void prod_prefetch(const ring_prod *p) {
        uint64_t at = p->head + PREFETCH_AHEAD;
        if (at + CACHELINE - p->tail_seen <= p->size)
                prefetch_write(p->data + (at & p->mask));
}

void ring_prod_init(ring_prod *p, struct ring_ctl *ctl, uint8_t *data, uint64_t size,
                    const ipcf_qos *qos) {
        memset(p, 0, sizeof(*p));
        p->ctl = ctl;
        p->data = data;
        p->size = size;
        p->mask = size - 1;
        p->max_msgs = qos->max_msgs;
        p->max_msg = qos->max_msg_size;
        p->zero = qos->capacity == IPCF_CAPACITY_ZERO;
        p->alone = qos->mode == IPCF_MODE_MESSAGE;
        flow_layout l;
        p->cap = flow_layout_for(qos, &l) == 0 && l.ring_size == size ? l.cap : size;
        p->trim = qos->capacity == IPCF_CAPACITY_UNBOUNDED;
        p->pad_pos = UINT64_MAX;
}

/* Is (t, mr) a consumer position the producer at (head, msgs) can believe,
 * given the last one it saw? Only forward, never past the head, never more
 * than a ring behind it. */
static bool prod_tail_ok(const ring_prod *p, uint64_t head, uint64_t msgs, uint64_t t,
                         uint64_t mr) {
        return t >= p->tail_seen && t <= head && head - t <= p->size && t % RING_ALIGN == 0 &&
               mr >= p->msgs_r_seen && mr <= msgs;
}

/* Re-read the consumer's indexes and check them. */
static int prod_refresh(ring_prod *p) {
        uint64_t t = atomic_load_explicit(&p->ctl->tail, memory_order_acquire);
        uint64_t mr = atomic_load_explicit(&p->ctl->msgs_r, memory_order_acquire);
        if (!prod_tail_ok(p, p->head, p->msgs, t, mr))
                return -EPROTO;
        p->tail_seen = t;
        p->msgs_r_seen = mr;
        return 0;
}

/* Bytes needed at head for a record of rec bytes, counting a pad to the lap end. */
static uint64_t prod_need(const ring_prod *p, uint64_t rec) {
        uint64_t off = p->head & p->mask;
        return p->size - off < rec ? (p->size - off) + rec : rec;
}

/* Of the last messages written, how many end beyond the capacity (or past
 * max_msgs): the cached ones. */
static uint32_t prod_cached(const ring_prod *p) {
        if (!p->cache_max)
                return 0;
        uint64_t in_flight = p->msgs - p->msgs_r_seen;
        uint64_t over = p->max_msgs && in_flight > p->max_msgs ? in_flight - p->max_msgs : 0;
        uint64_t n = MIN(p->recent_n, in_flight), over_bytes = 0;
        for (uint64_t i = 0; i < n; i++) {
                uint32_t k = (p->recent_next + p->cache_max - 1 - (uint32_t)i) % p->cache_max;
                if (p->recent[k] - p->tail_seen <= p->cap)
                        break; /* this one and every older one are within */
                over_bytes++;
        }
        return (uint32_t)MIN(MAX(over, over_bytes), (uint64_t)p->cache_max);
}

static bool prod_fits(const ring_prod *p, uint64_t need) {
        uint64_t used = p->head - p->tail_seen, in_flight = p->msgs - p->msgs_r_seen;
        if (used > p->size || p->size - used < need)
                return false; /* no room at all */
        if ((!p->max_msgs || in_flight < p->max_msgs) && (used + need <= p->cap || (used == 0 && p->alone)))
                return true; /* within the queue's capacity, or alone in it */
        /* FULL_CACHE: beyond it, while fewer than cache_max are. */
        return p->cache_max && prod_cached(p) < p->cache_max &&
               (!p->max_msgs || in_flight < (uint64_t)p->max_msgs + p->cache_max);
}

void ring_prod_cache(ring_prod *p, uint64_t *recent, uint32_t n) {
        p->recent = recent;
        p->cache_max = recent ? n : 0;
        p->recent_n = 0;
        p->recent_next = 0;
}

uint32_t ring_cached(ring_prod *p) {
        return prod_refresh(p) < 0 ? 0 : prod_cached(p);
}

/* Another process holding this port (after fork) may have published: adopt
 * its position if it is ahead of ours (never go back). The new head must be
 * encodable and come with a consumer position that is valid against it (and
 * that position is adopted too: a head believed without the tail that goes
 * with it would make the ring look empty for ever). */
static int prod_resync(ring_prod *p) {
        uint64_t h = atomic_load_explicit(&p->ctl->head, memory_order_relaxed);
        if (h == p->head || p->reserved)
                return 0;
        if (h < p->head)
                return 0; /* never go back */
        uint64_t t = atomic_load_explicit(&p->ctl->tail, memory_order_acquire);
        uint64_t mr = atomic_load_explicit(&p->ctl->msgs_r, memory_order_acquire);
        uint64_t m = atomic_load_explicit(&p->ctl->msgs_w, memory_order_relaxed);
        uint64_t b = atomic_load_explicit(&p->ctl->bytes_w, memory_order_relaxed);
        if (h % RING_ALIGN || h >= RING_POS_MAX || m < p->msgs || b < p->bytes ||
            !prod_tail_ok(p, h, m, t, mr))
                return -EPROTO;
        p->head = h;
        p->msgs = m;
        p->bytes = b;
        p->tail_seen = t;
        p->msgs_r_seen = mr;
        p->recent_n = 0; /* the other holder's messages: not known to be cached */
        return 0;
}

int ring_can_reserve(ring_prod *p, size_t len) {
        if (len > p->max_msg)
                return -EMSGSIZE;
        int r = prod_resync(p);
        if (r < 0)
                return r;
        uint64_t need = prod_need(p, ring_rec_size(len));
        if (prod_fits(p, need))
                return 0;
        r = prod_refresh(p);
        if (r < 0)
                return r;
        return prod_fits(p, need) ? 0 : -EAGAIN;
}

int ring_reserve(ring_prod *p, size_t len, void **ret) {
        int r = ring_can_reserve(p, len);
        if (r < 0)
                return r;
        uint64_t rec = ring_rec_size(len);
        uint64_t pos = p->head;
        if (pos + p->size + rec >= RING_POS_MAX)
                return -EPROTO; /* 2^61 bytes: only an adopted position gets here */
        p->pad_pos = UINT64_MAX;
        if (p->size - (pos & p->mask) < rec) {
                p->pad_pos = pos;
                pos = (pos | p->mask) + 1; /* start of the next lap */
        }
        p->res_pos = pos;
        p->res_len = len;
        p->reserved = true;
        *ret = p->data + (pos & p->mask) + REC_HDR;
        return 0;
}

/* Publish the reservation's record; `last` orders its tag's store (or, after
 * a pad, the pad's): seq_cst for ring_commit, release for ring_commit_quiet. */
static uint64_t commit(ring_prod *p, size_t n, memory_order last) {
        uint64_t pos = p->res_pos;
        struct rec_hdr *h = rec_at(p->data, p->mask, pos);

        if (n > p->res_len)
                n = p->res_len;
        h->len = (uint32_t)n;
        h->flags = 0;
        if (p->pad_pos == UINT64_MAX) {
                /* seq_cst: also the store half of the wake-up handshake (wait.c) */
                atomic_store_explicit(&h->tag, TAG(pos, REC_READY), last);
        } else {
                /* The record first, then the pad that leads to it. */
                atomic_store_explicit(&h->tag, TAG(pos, REC_READY), memory_order_release);
                struct rec_hdr *pad = rec_at(p->data, p->mask, p->pad_pos);
                pad->len = 0;
                pad->flags = REC_PAD;
                atomic_store_explicit(&pad->tag, TAG(p->pad_pos, REC_READY), last);
        }
        p->head = pos + ring_rec_size(n);
        p->msgs++;
        p->bytes += n;
        if (p->cache_max) {
                p->recent[p->recent_next] = p->head;
                p->recent_next = (p->recent_next + 1) % p->cache_max;
                if (p->recent_n < p->cache_max)
                        p->recent_n++;
        }
        p->reserved = false;
        atomic_store_explicit(&p->ctl->head, p->head, memory_order_release);
        atomic_store_explicit(&p->ctl->msgs_w, p->msgs, memory_order_relaxed);
        atomic_store_explicit(&p->ctl->bytes_w, p->bytes, memory_order_relaxed);
        prod_prefetch(p);
        return pos;
}

uint64_t ring_commit(ring_prod *p, size_t n) { return commit(p, n, memory_order_seq_cst); }

uint64_t ring_commit_quiet(ring_prod *p, size_t n) { return commit(p, n, memory_order_release); }

bool ring_looks_full(const ring_prod *p, size_t len) {
        return !prod_fits(p, prod_need(p, ring_rec_size(len)));
}

/* A batch: an eighth of the queue, in bytes and in messages. */
#define BATCH_PART 8u

bool ring_batches(const ring_prod *p, size_t len) {
        return !p->zero && !p->cache_max &&
               p->cap / BATCH_PART >= 8 * ring_rec_size(len) &&
               (!p->max_msgs || p->max_msgs >= 8 * BATCH_PART);
}

int ring_batch_free(ring_prod *p, uint64_t *ret_tail) {
        if (prod_refresh(p) < 0)
                return -EPROTO;
        *ret_tail = p->tail_seen;
        uint64_t used = p->head - p->tail_seen, in_flight = p->msgs - p->msgs_r_seen;
        return used + p->cap / BATCH_PART <= p->cap &&
               (!p->max_msgs || in_flight + p->max_msgs / BATCH_PART <= p->max_msgs);
}

uint64_t ring_writable(ring_prod *p) {
        if (prod_refresh(p) < 0)
                return 0;
        if (p->max_msgs && p->msgs - p->msgs_r_seen >= p->max_msgs)
                return 0;
        if (p->head - p->tail_seen >= p->cap)
                return 0;
        uint64_t free_bytes = p->cap - (p->head - p->tail_seen);
        uint64_t to_end = p->size - (p->head & p->mask);
        /* A record at head, or a pad and a record at the start of the next lap. */
        uint64_t here = MIN(free_bytes, to_end);
        uint64_t there = free_bytes > to_end ? free_bytes - to_end : 0;
        uint64_t best = MAX(here, there) & ~(uint64_t)(RING_ALIGN - 1);
        if (best <= REC_HDR)
                return 0;
        return MIN(best - REC_HDR, (uint64_t)p->max_msg);
}

int ring_passed(ring_prod *p, uint64_t pos) {
        if (prod_refresh(p) < 0)
                return -EPROTO;
        return p->tail_seen > pos;
}

int ring_withdraw(ring_prod *p, uint64_t pos, size_t len) {
        struct rec_hdr *h = rec_at(p->data, p->mask, pos);
        uint64_t expect = TAG(pos, REC_READY);
        if (!atomic_compare_exchange_strong_explicit(&h->tag, &expect, TAG(pos, REC_WITHDRAWN),
                                                     memory_order_acq_rel, memory_order_acquire))
                return -EALREADY;
        /* Never delivered: it no longer counts as written, nor against
         * max_msgs (the consumer skips it without counting it read). Its
         * bytes stay in the ring until the consumer passes them. */
        p->msgs--;
        p->bytes -= len;
        atomic_store_explicit(&p->ctl->msgs_w, p->msgs, memory_order_relaxed);
        atomic_store_explicit(&p->ctl->bytes_w, p->bytes, memory_order_relaxed);
        return 0;
}

void ring_prod_trim(ring_prod *p) {
        const uint64_t slack = 1u << 20, chunk = 1u << 20;
        if (!p->trim || p->size <= 4 * slack)
                return;
        /* Once per MiB written, see how far the reader got: the tail we know
         * is refreshed only when the ring looks full, which a large unbounded
         * ring rarely does. */
        if (p->head / chunk == p->trim_check / chunk)
                return;
        p->trim_check = p->head;
        if (prod_refresh(p) < 0)
                return;
        /* Free region: [head, tail + size). Keep slack bytes after head warm. */
        uint64_t from = MAX(p->head + slack, p->trimmed_to);
        uint64_t to = p->tail_seen + p->size;
        from = ALIGN_UP(from, chunk);
        to &= ~(chunk - 1);
        if (to <= from || to - from < 4 * chunk)
                return;
        for (uint64_t a = from; a < to;) {
                uint64_t off = a & p->mask;
                uint64_t n = MIN(to - a, p->size - off);
                madvise(p->data + off, n, MADV_REMOVE);
                a += n;
        }
        p->trimmed_to = to;
}

/* ---- consumer ---------------------------------------------------------- */

void ring_cons_init(ring_cons *c, struct ring_ctl *ctl, uint8_t *data, uint64_t size,
                    const ipcf_qos *qos) {
        memset(c, 0, sizeof(*c));
        c->ctl = ctl;
        c->data = data;
        c->size = size;
        c->mask = size - 1;
        c->max_msg = qos->max_msg_size;
        c->zero = qos->capacity == IPCF_CAPACITY_ZERO;
}

/* Publish the consumer's position and counts (the producer's view of them). */
static void cons_publish(ring_cons *c) {
        c->pub_tail = c->tail;
        c->pub_msgs = c->msgs;
        atomic_store_explicit(&c->ctl->bytes_r, c->bytes, memory_order_relaxed);
        atomic_store_explicit(&c->ctl->msgs_r, c->msgs, memory_order_release);
        /* seq_cst: also the store half of the wake-up handshake (wait.c) */
        atomic_store_explicit(&c->ctl->tail, c->tail, memory_order_seq_cst);
}

/* Move past a record (counted: a message taken, else a pad or a withdrawn
 * one); publish unless told not to and not a quarter ring behind. */
static void cons_advance(ring_cons *c, uint64_t next, bool counted, uint32_t len,
                         bool publish) {
        c->tail = next;
        if (counted) {
                c->msgs++;
                c->bytes += len;
        }
        if (!c->hold && (publish || c->zero || c->tail - c->pub_tail >= c->size / 4))
                cons_publish(c);
}

ring_mark ring_cons_mark(const ring_cons *c) { return (ring_mark){ c->tail, c->msgs, c->bytes }; }

bool ring_cons_publish_at(ring_cons *c, ring_mark m) {
        bool tail = m.tail > c->pub_tail && m.tail <= c->tail;
        if (!tail && c->msgs == c->pub_msgs)
                return false;
        if (tail)
                c->pub_tail = m.tail;
        c->pub_msgs = c->msgs;
        atomic_store_explicit(&c->ctl->bytes_r, c->bytes, memory_order_relaxed);
        atomic_store_explicit(&c->ctl->msgs_r, c->msgs, memory_order_release);
        /* seq_cst: also the store half of the wake-up handshake (wait.c) */
        atomic_store_explicit(&c->ctl->tail, c->pub_tail, memory_order_seq_cst);
        return true;
}

bool ring_cons_publish(ring_cons *c) {
        if (c->tail == c->pub_tail && c->msgs == c->pub_msgs)
                return false;
        cons_publish(c);
        return true;
}

/* As prod_resync, for the consumer's position: only forward, encodable,
 * within a ring of the producer's head. */
static int cons_resync(ring_cons *c) {
        uint64_t t = atomic_load_explicit(&c->ctl->tail, memory_order_relaxed);
        if (t <= c->tail)
                return 0; /* never go back */
        uint64_t h = atomic_load_explicit(&c->ctl->head, memory_order_acquire);
        uint64_t m = atomic_load_explicit(&c->ctl->msgs_r, memory_order_relaxed);
        uint64_t b = atomic_load_explicit(&c->ctl->bytes_r, memory_order_relaxed);
        if (t % RING_ALIGN || t >= RING_POS_MAX - c->size || h >= RING_POS_MAX || t > h ||
            h - t > c->size || m < c->msgs || b < c->bytes)
                return -EPROTO;
        c->tail = c->pub_tail = t;
        c->msgs = c->pub_msgs = m;
        c->bytes = b;
        return 0;
}

bool ring_ready(ring_cons *c) {
        if (c->peeked)
                return true;
        if (cons_resync(c) < 0)
                return true; /* a reader wakes and ring_peek() says -EPROTO */
        struct rec_hdr *h = rec_at(c->data, c->mask, c->tail);
        uint64_t tag = atomic_load_explicit(&h->tag, memory_order_acquire);
        /* state 0 is fresh memory (position 0 of the first lap) */
        return tag >> 2 == c->tail && (tag & 3) != 0;
}

bool ring_ready_hint(const ring_cons *c) {
        /* The published tail: the peer may have forged it, so it only picks
         * a header inside the data area (16-aligned), and a forged one is a
         * wrong hint — never a wrong answer of ring_peek(). */
        uint64_t t = atomic_load_explicit(&c->ctl->tail, memory_order_relaxed);
        struct rec_hdr *h = rec_at(c->data, c->mask & ~(uint64_t)(RING_ALIGN - 1), t);
        uint64_t tag = atomic_load_explicit(&h->tag, memory_order_relaxed);
        return tag >> 2 == t && (tag & 3) != 0;
}

ssize_t ring_peek(ring_cons *c, const void **ret) {
        if (!c->peeked && cons_resync(c) < 0)
                return -EPROTO;
        if (c->peeked) {
                *ret = c->data + (c->tail & c->mask) + REC_HDR + c->cur_off;
                return (ssize_t)c->cur_len - c->cur_off;
        }
        for (unsigned skips = 0;; skips++) {
                uint64_t pos = c->tail, off = pos & c->mask;
                struct rec_hdr *h = rec_at(c->data, c->mask, pos);
                uint64_t tag = atomic_load_explicit(&h->tag, memory_order_acquire);

                /* Bounded work per call, whatever the producer writes: a
                 * flood of withdrawn or pad records (or a tag flipped under
                 * our claim) returns -EAGAIN now and then, so the caller's
                 * deadline is checked. */
                if (skips >= RING_SKIP_MAX)
                        return -EAGAIN;
                if (pos >= RING_POS_MAX - c->size)
                        return -EPROTO; /* (so one more step stays below it) */
                if (tag >> 2 != pos || (tag & 3) == 0)
                        return -EAGAIN;
                uint32_t st = tag & 3;
                /* Read once: the peer may change these under us. */
                uint32_t len = *(volatile uint32_t *)&h->len;
                uint32_t flags = *(volatile uint32_t *)&h->flags;

                if (st == REC_WITHDRAWN) {
                        if (len > c->max_msg || ring_rec_size(len) > c->size - off)
                                return -EPROTO;
                        cons_advance(c, pos + ring_rec_size(len), false, 0, true);
                        continue;
                }
                if (st != REC_READY)
                        return -EPROTO;
                if (flags & REC_PAD) {
                        if (off == 0)
                                return -EPROTO;
                        cons_advance(c, (pos | c->mask) + 1, false, 0, true);
                        continue;
                }
                if (flags != 0 || len > c->max_msg || ring_rec_size(len) > c->size - off)
                        return -EPROTO;
                if (c->zero) {
                        /* Claim it, unless the writer withdrew it meanwhile. */
                        uint64_t expect = tag;
                        if (!atomic_compare_exchange_strong_explicit(
                                    &h->tag, &expect, ((pos) << 2) | REC_TAKEN,
                                    memory_order_acq_rel, memory_order_acquire))
                                continue; /* re-read: now withdrawn (or garbage) */
                }
                c->peeked = true;
                c->cur_len = len;
                c->cur_off = 0;
                c->cur_next = pos + ring_rec_size(len);
                *ret = c->data + off + REC_HDR;
                return len;
        }
}

void ring_consume(ring_cons *c) {
        if (!c->peeked)
                return;
        c->peeked = false;
        cons_advance(c, c->cur_next, true, c->cur_len, true);
}

void ring_consume_local(ring_cons *c) {
        if (!c->peeked)
                return;
        c->peeked = false;
        cons_advance(c, c->cur_next, true, c->cur_len, false);
}

uint64_t ring_queued(const struct ring_ctl *ctl, uint64_t size) {
        uint64_t h = atomic_load_explicit(&ctl->head, memory_order_acquire);
        uint64_t t = atomic_load_explicit(&ctl->tail, memory_order_acquire);
        return h >= t && h - t <= size ? h - t : 0;
}
