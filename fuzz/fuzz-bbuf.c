/*
 * fuzz-bbuf.c — libFuzzer target for the state other members can write: the
 * bounded buffer's header and data (common/bbufq.c) and the lock words and
 * roster (common/grplock.c). The input is the buffer's image (header and a
 * small data area), four roster entries, then a script of operations —
 * put, get, stat, lock calls with various tokens, writes over the header
 * (another member scribbling between our calls), and a re-initialisation
 * followed by a put/get round trip that must give back what was put.
 *
 * Invariants: nothing is read or written outside the region (ASan: the
 * region is its own allocation), every result is in the documented set,
 * a get never returns more than its buffer holds, and every call returns
 * (every timeout is 0: a held lock is waited for one spin window).
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bbufq.h"
#include "common/grplock.h"
#include "common/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REGION (IPCF_BBUF_HDR + 512)
#define OP_BYTES 4

static const uint8_t *in;
static size_t in_left;

static uint64_t take(unsigned n) {
        uint64_t v = 0;
        for (unsigned i = 0; i < n && in_left; i++, in++, in_left--)
                v |= (uint64_t)*in << (8 * i);
        return v;
}

static void check(bool ok) {
        if (!ok)
                abort();
}

static bool put_ok(int r) {
        return r == 1 || r == 0 || r == -EMSGSIZE || r == -EPROTO || r == -ETIMEDOUT;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        in = data;
        in_left = size;
        uint8_t *region = calloc(1, REGION);
        _Atomic uint32_t roster[GRPLOCK_SLOTS] = { 0 };
        if (!region)
                return 0;
        for (size_t i = 0; i < REGION && in_left; i++)
                region[i] = (uint8_t)take(1);
        for (unsigned i = 0; i < 4; i++)
                atomic_store(&roster[i], (uint32_t)take(4));
        atomic_store(&roster[9], 7);
        grplock_who me = { roster, grplock_token(9, 7, 100), NULL, NULL };
        uint64_t other = take(8);
        bbufq_seen seen = { 0 };
        uint8_t buf[600], out[600];
        memset(buf, 0x5a, sizeof(buf));
        while (in_left) {
                uint8_t op = (uint8_t)take(1);
                uint64_t arg = take(OP_BYTES - 1);
                bbufq q;
                uint64_t s;
                bool wait;
                bbufq_when now = { 0, 0 }; /* timeout 0 */
                int opened = bbufq_open(region, REGION, &q);
                check(opened == 0 || opened == -EPROTO);
                if (opened == 0)
                        check(q.cap > 0 && q.cap <= REGION - IPCF_BBUF_HDR);
                switch (op % 8) {
                case 0:
                        if (opened == 0)
                                check(put_ok(bbufq_put_once(&q, &me, &now, buf, arg % sizeof(buf),
                                                            &seen, 0, &s)));
                        break;
                case 1:
                        if (opened == 0) {
                                size_t cap = arg % sizeof(out);
                                ssize_t n = bbufq_get_once(&q, &me, &now, out, cap, &seen, 1, &s, &wait);
                                check((n >= 0 && (size_t)n <= cap && (!wait || n == 0)) || n == -EMSGSIZE ||
                                      n == -EPROTO || n == -ETIMEDOUT);
                        }
                        break;
                case 2:
                        if (opened == 0) {
                                uint64_t bytes, items;
                                int r = bbufq_stat(&q, &bytes, &items);
                                check((r == 0 && bytes <= q.cap) || r == -EPROTO);
                        }
                        break;
                case 3: { /* another member writes 4 or 8 bytes of the header */
                        size_t o = arg % (IPCF_BBUF_HDR - 8);
                        uint64_t v = take(8);
                        memcpy(region + o, &v, (arg >> 16) & 1 ? 8 : 4);
                        break;
                }
                case 4: { /* re-initialise, then a round trip must work */
                        bbufq_init(region, REGION, arg);
                        check(bbufq_open(region, REGION, &q) == 0);
                        size_t len = arg % 200;
                        memset(buf, (int)(arg >> 8), len);
                        check(bbufq_put_once(&q, &me, &now, buf, len, &seen, 2, &s) == 1);
                        check(bbufq_get_once(&q, &me, &now, out, sizeof(out), &seen, 3, &s, &wait) ==
                              (ssize_t)len);
                        check(memcmp(buf, out, len) == 0);
                        break;
                }
                case 5: { /* the lock API on one of the header's locks */
                        struct bbufq_hdr *h = (struct bbufq_hdr *)region;
                        struct grplock *l = arg & 1 ? &h->lk_put : &h->lk_get;
                        grplock_who who = me;
                        if ((arg >> 1) & 1)
                                who.me = other;
                        int r;
                        switch ((arg >> 2) % 5) {
                        case 0:
                                r = grplock_take(l, &who, now_ns(), 0);
                                check(r == 0 || r == 1 || r == -ETIMEDOUT || r == -EDEADLK ||
                                      r == -ENOTRECOVERABLE);
                                break;
                        case 1:
                                r = grplock_release(l, who.me);
                                check(r == 0 || r == -EPERM);
                                break;
                        case 2:
                                r = grplock_consistent(l, who.me);
                                check(r == 0 || r == -EINVAL || r == -EPERM);
                                break;
                        case 3:
                                r = grplock_abandon(l, who.me);
                                check(r == 0 || r == -EPERM);
                                break;
                        default:
                                grplock_kick(l);
                                break;
                        }
                        break;
                }
                case 6: /* a wait: rare (it spins one window) */
                        if (opened == 0 && arg % 64 == 0) {
                                int r = arg & 64 ? bbufq_wait_items(&q, arg, &now)
                                                 : bbufq_wait_room(&q, arg, &now);
                                check(r == 0 || r == -ETIMEDOUT);
                        }
                        break;
                default: /* the roster changes (a member left or came) */
                        atomic_store(&roster[arg % 4], (uint32_t)(arg >> 8));
                        break;
                }
        }
        free(region);
        return 0;
}
