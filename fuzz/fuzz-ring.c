/*
 * fuzz-ring.c — the flow ring against a hostile peer: the fuzzer's bytes are
 * what the peer left in shared memory (ring control block and data), and we
 * run the consumer and the producer over it. Neither may read or write
 * outside the region, loop for ever, or accept a record that breaks the
 * bounds; every outcome must be a message, -EAGAIN or -EPROTO.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/ring.h"

#define DATA 4096

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *in, size_t len) {
        static struct ring_ctl ctl;
        static _Alignas(64) uint8_t data[DATA];
        ipcf_qos q;
        memset(&q, 0, sizeof(q));
        q.max_msg_size = 1000;
        q.capacity = len && (in[0] & 1) ? IPCF_CAPACITY_ZERO : IPCF_CAPACITY_BOUNDED;
        q.max_msgs = len > 1 ? in[1] & 7 : 0;

        memset(&ctl, 0, sizeof(ctl));
        memset(data, 0, sizeof(data));
        /* The first bytes become the control block, the rest the data area. */
        size_t c = len < sizeof(ctl) ? len : sizeof(ctl);
        memcpy(&ctl, in, c);
        if (len > c)
                memcpy(data, in + c, len - c < DATA ? len - c : DATA);

        ring_cons cons;
        ring_cons_init(&cons, &ctl, data, DATA, &q);
        for (int i = 0; i < 64; i++) {
                const void *p;
                ssize_t n = ring_peek(&cons, &p);
                if (n == -EAGAIN || n == -EPROTO)
                        break;
                if (n < 0 || (size_t)n > q.max_msg_size)
                        abort();
                const uint8_t *b = p;
                if (b < data || b + n > data + DATA)
                        abort(); /* a record outside the ring */
                volatile uint8_t sink = 0;
                for (ssize_t k = 0; k < n; k++)
                        sink ^= b[k];
                (void)sink;
                ring_consume(&cons);
        }

        ring_prod prod;
        ring_prod_init(&prod, &ctl, data, DATA, &q);
        for (int i = 0; i < 16; i++) {
                void *dst;
                size_t want = (size_t)(i * 97) % 1200;
                int r = ring_reserve(&prod, want, &dst);
                if (r == -EAGAIN || r == -EPROTO || r == -EMSGSIZE)
                        continue;
                if (r < 0)
                        abort();
                if ((uint8_t *)dst < data || (uint8_t *)dst + want > data + DATA)
                        abort();
                memset(dst, 0xAB, want);
                ring_commit(&prod, want);
        }
        (void)ring_writable(&prod);
        return 0;
}
