/*
 * fuzz-ring.c — the flow ring against a hostile peer. The fuzzer's bytes are
 * what the peer left in shared memory (ring control block and data) and then
 * a script of steps in which the honest side's consumer and producer run,
 * interleaved with the peer rewriting any control word, record header or data
 * byte with chosen values — including the adversarial ones (2^64 - 16, one
 * ring ahead, positions past RING_POS_MAX).
 *
 * Whatever the peer writes, every outcome must be a message, -EAGAIN,
 * -EPROTO or -EMSGSIZE; no call may read or write outside the region, loop
 * without bound (each call does bounded work: RING_SKIP_MAX), or accept a
 * state that breaks the bounds: a reservation always lies inside the data
 * area, the producer never believes more than one ring is free
 * (head - tail_seen <= size), no index it adopts reaches RING_POS_MAX, and
 * with FULL_CACHE never more than cache_msgs messages are beyond the queue's
 * capacity. A consumer that batches its index updates (ring_consume_local)
 * never holds back more than a quarter ring, nor any in a rendezvous.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/ring.h"

#define DATA 8192 /* the ring: 4096 bytes, 8192 with FULL_CACHE (cap 4096) */

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

/* Bytes of the script, consumed front to back (zeros past the end). */
typedef struct script {
        const uint8_t *p;
        size_t n;
} script;

static uint8_t take8(script *s) {
        if (!s->n)
                return 0;
        s->n--;
        return *s->p++;
}

static uint64_t take64(script *s) {
        uint64_t v = 0;
        for (int i = 0; i < 8; i++)
                v = v << 8 | take8(s);
        return v;
}

/* A value a hostile peer would try for an index. */
static uint64_t hostile_value(script *s, uint64_t near) {
        switch (take8(s) & 7) {
        case 0: return UINT64_MAX - 15;
        case 1: return RING_POS_MAX;
        case 2: return RING_POS_MAX - 16;
        case 3: return near + 4096;
        case 4: return near - 16;
        case 5: return near + 16 * (take8(s) & 15);
        case 6: return 1ull << 62;
        default: return take64(s);
        }
}

static void check_prod(const ring_prod *p) {
        if (p->head - p->tail_seen > p->size || p->head >= RING_POS_MAX ||
            p->tail_seen > p->head)
                abort(); /* the producer believes an impossible state */
}

static void check_cons(const ring_cons *c) {
        if (c->tail >= RING_POS_MAX)
                abort();
        /* Unpublished progress: never backwards, under a quarter ring, none
         * in a rendezvous (its writer waits for each record to be taken). */
        if (c->pub_tail > c->tail || c->pub_msgs > c->msgs || c->tail - c->pub_tail >= c->size / 4 ||
            (c->zero && c->pub_tail != c->tail))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len) {
        static struct ring_ctl ctl;
        static _Alignas(64) uint8_t data[DATA];
        script s = { in, len };
        ipcf_qos q;
        memset(&q, 0, sizeof(q));
        q.max_msg_size = 1000;
        uint8_t mode = take8(&s);
        q.capacity = mode & 1 ? IPCF_CAPACITY_ZERO : IPCF_CAPACITY_BOUNDED;
        q.max_msgs = q.capacity == IPCF_CAPACITY_ZERO ? 1 : (mode >> 1) & 7;
        uint64_t recent[4];
        uint32_t cache = 0;
        if ((mode & 0x40) && q.capacity == IPCF_CAPACITY_BOUNDED) {
                q.full = IPCF_FULL_CACHE;
                q.cache_msgs = cache = 1 + ((mode >> 4) & 3);
        }
        flow_layout l;
        if (flow_layout_for(&q, &l) < 0 || l.ring_size > DATA)
                abort();
        const uint64_t size = l.ring_size;

        memset(&ctl, 0, sizeof(ctl));
        memset(data, 0, sizeof(data));
        /* What the peer left before we start: the control block, then data. */
        if (mode & 0x80) {
                for (size_t i = 0; i < sizeof(ctl); i++)
                        ((uint8_t *)&ctl)[i] = take8(&s);
                for (size_t i = 0; i < 256; i++)
                        data[i] = take8(&s);
        }

        ring_cons cons;
        ring_prod prod;
        ring_cons_init(&cons, &ctl, data, size, &q);
        ring_prod_init(&prod, &ctl, data, size, &q);
        if (cache) {
                ring_prod_cache(&prod, recent, cache);
                if (prod.cap != 4096 || size != 8192)
                        abort();
        }
        uint64_t last_pos = UINT64_MAX, last_len = 0;

        for (int step = 0; step < 256 && s.n; step++) {
                uint8_t op = take8(&s);
                switch (op % 12) {
                case 0: case 1: { /* the honest consumer reads */
                        const void *p;
                        ssize_t n = ring_peek(&cons, &p);
                        if (n == -EAGAIN || n == -EPROTO)
                                break;
                        if (n < 0 || (size_t)n > q.max_msg_size)
                                abort();
                        const uint8_t *b = p;
                        if (b < data || b + n > data + size)
                                abort(); /* a record outside the ring */
                        volatile uint8_t sink = 0;
                        for (ssize_t k = 0; k < n; k++)
                                sink ^= b[k];
                        (void)sink;
                        if (op & 0x10) {
                                if (op & 0x20)
                                        ring_consume_local(&cons); /* a stream read's batch */
                                else
                                        ring_consume(&cons);
                        }
                        if (op & 0x40)
                                (void)ring_cons_publish(&cons);
                        break;
                }
                case 2: case 3: { /* the honest producer writes */
                        void *dst;
                        size_t want = (size_t)take8(&s) * 5;
                        int r = ring_reserve(&prod, want, &dst);
                        if (r == -EAGAIN || r == -EPROTO || r == -EMSGSIZE)
                                break;
                        if (r < 0)
                                abort();
                        if ((uint8_t *)dst < data || (uint8_t *)dst + want > data + size)
                                abort();
                        if (ring_cached(&prod) > cache)
                                abort(); /* more cached than allowed */
                        memset(dst, 0xAB, want);
                        last_pos = ring_commit(&prod, want);
                        last_len = want;
                        break;
                }
                case 4: /* rendezvous: passed? withdraw? */
                        if (last_pos != UINT64_MAX) {
                                int r = ring_passed(&prod, last_pos);
                                if (r < -EPROTO || r > 1)
                                        abort();
                                if (r == 0 && (op & 0x10) &&
                                    ring_withdraw(&prod, last_pos, last_len) == 0)
                                        last_pos = UINT64_MAX;
                        }
                        break;
                case 5: /* the peer rewrites an index with a hostile value */
                        switch (take8(&s) & 7) {
                        case 0: atomic_store(&ctl.head, hostile_value(&s, prod.head)); break;
                        case 1: atomic_store(&ctl.tail, hostile_value(&s, cons.tail)); break;
                        case 2: atomic_store(&ctl.msgs_w, hostile_value(&s, prod.msgs)); break;
                        case 3: atomic_store(&ctl.msgs_r, hostile_value(&s, cons.msgs)); break;
                        case 4: atomic_store(&ctl.bytes_w, take64(&s)); break;
                        case 5: atomic_store(&ctl.bytes_r, take64(&s)); break;
                        case 6: atomic_store(&ctl.rx_sleep, (uint32_t)take64(&s)); break;
                        default: atomic_store(&ctl.tx_sleep, (uint32_t)take64(&s)); break;
                        }
                        break;
                case 6: { /* the peer writes a record header at the consumer's tail */
                        uint64_t pos = cons.tail + 16 * (take8(&s) & 3);
                        uint8_t *h = data + (pos & (size - 1));
                        uint64_t tag = pos << 2 | (take8(&s) & 3);
                        uint32_t rlen = (uint32_t)take8(&s) * 8, flags = take8(&s) & 1;
                        memcpy(h, &tag, 8);
                        memcpy(h + 8, &rlen, 4);
                        memcpy(h + 12, &flags, 4);
                        break;
                }
                case 7: /* the peer writes a data byte anywhere */
                        data[(take8(&s) << 8 | take8(&s)) & (size - 1)] = take8(&s);
                        break;
                case 8: /* the peer flips the tag of the producer's last record */
                        if (last_pos != UINT64_MAX) {
                                uint64_t tag = last_pos << 2 | (take8(&s) & 3);
                                memcpy(data + (last_pos & (size - 1)), &tag, 8);
                        }
                        break;
                case 9: { /* how much room; a writer's batch (forged indexes: -EPROTO) */
                        (void)ring_writable(&prod);
                        uint64_t tail;
                        if (ring_looks_full(&prod, 16) && ring_batches(&prod, 16)) {
                                int r = ring_batch_free(&prod, &tail);
                                if (r < -EPROTO || r > 1 || (r >= 0 && tail != prod.tail_seen))
                                        abort();
                        }
                        break;
                }
                case 10:
                        (void)ring_ready(&cons);
                        (void)ring_queued(&ctl, size);
                        if (ring_cached(&prod) > cache)
                                abort();
                        break;
                default:
                        ring_prod_trim(&prod);
                        break;
                }
                check_prod(&prod);
                check_cons(&cons);
        }
        return 0;
}
