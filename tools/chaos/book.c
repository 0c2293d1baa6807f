/*
 * book.c — the chaos driver's messages (numbered, checksummed, reproducible
 * from the round's seed) and the small helpers of its books (book.h).
 */
#include "book.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support/test.h"

#define CHAOS_MAGIC 0x43484f53u /* "CHOS" */

typedef struct msg_hdr {
        uint32_t magic, round, seq, len;
        uint64_t sum;
} msg_hdr;
_Static_assert(sizeof(msg_hdr) == 24, "the header is 24 bytes");

void chaos_book_error(chaos_book *b, int err) {
        atomic_fetch_add(&b->errors, 1);
        atomic_store(&b->last_error, err);
}

static uint64_t msg_seed(const chaos_book *b, uint32_t seq) {
        return b->seed ^ ((uint64_t)b->round << 32) ^ seq;
}

static uint64_t msg_sum(const msg_hdr *h, const void *payload) {
        uint64_t s = test_hash(h, offsetof(msg_hdr, sum), 0x6a09e667f3bcc908ull);
        return test_hash(payload, h->len, s);
}

size_t chaos_msg_make(void *buf, const chaos_book *b, uint32_t seq) {
        uint64_t x = msg_seed(b, seq) * 0x9E3779B97F4A7C15ull;
        msg_hdr h = { .magic = CHAOS_MAGIC, .round = b->round, .seq = seq,
                      .len = (uint32_t)((x >> 33) % (CHAOS_PAYLOAD_MAX + 1)) };
        uint8_t *p = buf;
        test_fill(p + sizeof(h), h.len, msg_seed(b, seq));
        h.sum = msg_sum(&h, p + sizeof(h));
        memcpy(p, &h, sizeof(h));
        return sizeof(h) + h.len;
}

int64_t chaos_msg_check(chaos_book *b, const void *buf, size_t len) {
        msg_hdr h;
        const uint8_t *p = buf;
        if (len < sizeof(h))
                goto corrupt;
        memcpy(&h, p, sizeof(h));
        if (h.magic != CHAOS_MAGIC || h.round != b->round || h.seq >= b->n_msgs ||
            h.len != len - sizeof(h) || h.sum != msg_sum(&h, p + sizeof(h)))
                goto corrupt;
        return h.seq;
corrupt:
        atomic_fetch_add(&b->corrupt, 1);
        return -1;
}

void chaos_got(chaos_book *b, unsigned k, uint32_t i) {
        if (i != 0 || !b->forget_first)
                atomic_fetch_add(&b->got[k][i], 1);
        if (b->pace_us)
                usleep(b->pace_us);
}

int chaos_receive(chaos_book *b, int h, chaos_recv_fn recv,
                  bool (*on_msg)(chaos_book *b, uint32_t seq, void *ctx), void *ctx) {
        static char buf[CHAOS_MSG_MAX];
        for (;;) {
                ssize_t r = recv(h, buf, sizeof(buf), 1000);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0) {
                        if (r != -EPIPE && r != -ECONNRESET)
                                chaos_book_error(b, (int)r);
                        return (int)r;
                }
                int64_t s = chaos_msg_check(b, buf, (size_t)r);
                if (s >= 0 && !on_msg(b, (uint32_t)s, ctx))
                        return 1;
        }
}

unsigned chaos_got_any(const chaos_book *b, uint32_t i) {
        unsigned n = 0;
        for (unsigned k = 0; k < CHAOS_SINKS; k++)
                n += atomic_load(&b->got[k][i]);
        return n;
}

bool chaos_was_sent(const chaos_book *b, uint32_t i) {
        return atomic_load(&b->sent[i]) || chaos_got_any(b, i);
}

uint64_t chaos_now_ms(void) {
        return test_now_ms();
}

void chaos_sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) != 0)
                ;
}

uint64_t chaos_rand(uint64_t *s) {
        uint64_t x = *s ? *s : 0x9E3779B97F4A7C15ull;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return *s = x;
}
