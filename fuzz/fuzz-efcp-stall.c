/*
 * fuzz-efcp-stall.c — libFuzzer target that finds stalls, not only crashes.
 *
 * Two associations run a reliable transfer (64 messages, then the sender
 * closes its flow with reason 4242 and the receiver closes when it has read
 * everything) over a perfect simulated link on a virtual clock. The input is
 * a list of forged datagrams, each with a time, a side, a packet number
 * relative to the largest the side has seen, and arbitrary frames; they get a
 * valid header and CRC (what a buggy authenticated peer could send) and are
 * slipped into the transfer. Afterwards, within 200 virtual seconds (peer
 * timeout 5 s), the run must have:
 *   - completed: both flows ended and both port-ids released, or
 *   - ended with an error someone was told about: an association dead, or a
 *     flow ended with one of the engine's error reasons;
 * anything else is a stall and traps. And a flow that ended normally (4242,
 * or 0) must have delivered all 64 messages intact whenever no DATA frame was
 * forged into the receiver: a forgery may end a transfer, never cut it short
 * silently.
 *
 * Input record: side|gap(1) delta(2, signed) len(1) frames(len). The gap (the
 * high 7 bits) is in units of 100 us after the previous injection.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "efcp/efcp.h"
#include "efcp/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NMSG 64
#define MS 1000000ull
#define SEC 1000000000ull
#define DELAY (100 * 1000ull) /* one-way, ns */
#define QCAP 4096

typedef struct dgram {
        uint64_t at;
        uint16_t len;
        uint8_t b[1500];
} dgram;

typedef struct sim {
        efcp_assoc *a[2];
        uint64_t now;
        dgram q[2][QCAP]; /* towards side i, FIFO (constant delay keeps order) */
        uint32_t qh[2], qn[2];
        uint64_t largest[2]; /* largest packet number seen towards each side */
        efcp_flow *tx, *rx;
        uint32_t sent, got;
        bool tx_closed, rx_done, bad_content, forged_data;
        uint32_t rx_reason, tx_reason;
        bool tx_ended; /* the sender's flow ended before it closed it */
} sim;

static sim S;

/* Message i's bytes are (i*31 + k*7) mod 256: a slice of one table of
 * 7*j mod 256 (7 is odd, so i*31 = 7*m mod 256 for one m), so that filling
 * and checking a message is one memcpy/memcmp — a per-byte loop under the
 * fuzzer's comparison tracing was two thirds of every run. */
#define MSG_MAX 3000
static uint8_t pattern[256 + MSG_MAX];

static const uint8_t *msg_bytes(uint32_t i) {
        if (pattern[1] == 0)
                for (size_t j = 0; j < sizeof(pattern); j++)
                        pattern[j] = (uint8_t)(j * 7);
        /* 183 is the inverse of 7 mod 256 */
        return pattern + (uint8_t)(i * 31u * 183u);
}
static size_t msg_len(uint32_t i) { return 1 + (i * 977) % MSG_MAX; }

static void deliver(sim *s, int to, const uint8_t *b, size_t len) {
        efcp_hdr h;
        if (efcp_wire_get_hdr(b, len, &h) == 0 && h.pn > s->largest[to])
                s->largest[to] = h.pn;
        efcp_input(s->a[to], b, len, s->now);
}

static void pump(sim *s) {
        for (int i = 0; i < 2; i++) {
                int to = !i, len;
                uint8_t buf[2048];
                while ((len = efcp_output(s->a[i], buf, sizeof(buf), s->now)) > 0) {
                        if (s->qn[to] == QCAP)
                                continue; /* a full link drops */
                        dgram *d = &s->q[to][(s->qh[to] + s->qn[to]++) % QCAP];
                        d->at = s->now + DELAY;
                        d->len = (uint16_t)len;
                        memcpy(d->b, buf, (size_t)len);
                }
        }
}

static void app(sim *s) {
        static uint8_t buf[4096];
        efcp_event ev;
        for (int i = 0; i < 2; i++)
                while (efcp_event_next(s->a[i], &ev))
                        /* the transfer's flow (port 2): a forged ALLOC may
                         * have made another flow first, which no one reads */
                        if (i == 1 && ev.type == EFCP_EV_FLOW_ALLOCATED && ev.local_port == 2 && !s->rx)
                                s->rx = efcp_flow_get(s->a[1], ev.local_port);
        if (!s->tx_closed) {
                uint32_t reason;
                if (efcp_flow_deallocated(s->tx, &reason)) {
                        s->tx_ended = true;
                        s->tx_reason = reason;
                        efcp_flow_close(s->tx, 0);
                        s->tx_closed = true;
                } else {
                        while (s->sent < NMSG) {
                                if (efcp_flow_send(s->tx, msg_bytes(s->sent), msg_len(s->sent)) < 0)
                                        break;
                                s->sent++;
                        }
                        if (s->sent == NMSG) {
                                efcp_flow_close(s->tx, 4242);
                                s->tx_closed = true;
                        }
                }
        }
        if (s->rx && !s->rx_done) {
                int r;
                while ((r = efcp_flow_recv(s->rx, buf, sizeof(buf))) >= 0) {
                        if ((size_t)r != msg_len(s->got) || memcmp(buf, msg_bytes(s->got), (size_t)r) != 0)
                                s->bad_content = true;
                        s->got++;
                }
                if (r == -EPIPE || efcp_flow_deallocated(s->rx, NULL)) {
                        if (r == -EPIPE) {
                                efcp_flow_deallocated(s->rx, &s->rx_reason);
                                efcp_flow_close(s->rx, 0);
                                s->rx_done = true;
                        }
                }
        }
}

static bool finished(const sim *s) {
        bool gone = efcp_flow_get(s->a[0], 1) == NULL;
        return s->rx_done && s->tx_closed && gone;
}

/* The engine's own reasons tell of an error; 0 (NORMAL) and application
 * values (4242 here) look like a normal end. */
static bool error_reason(uint32_t r) { return r != EFCP_REASON_NORMAL && r < EFCP_REASON_USER; }

static bool errored(const sim *s) {
        return efcp_assoc_dead(s->a[0]) || efcp_assoc_dead(s->a[1]) ||
               (s->rx_done && error_reason(s->rx_reason)) || (s->tx_ended && error_reason(s->tx_reason));
}

/* Builds and feeds one forged datagram; returns the input bytes it took. */
static size_t inject(sim *s, const uint8_t *p, size_t left) {
        if (left < 4)
                return left;
        int to = p[0] & 1;
        int16_t delta = (int16_t)((p[1] << 8) | p[2]);
        size_t n = p[3];
        if (n > left - 4)
                n = left - 4;
        uint8_t d[512];
        int64_t pn = (int64_t)s->largest[to] + delta;
        efcp_hdr h = {.type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .rx_index = (uint32_t)to,
                      .pn = pn < 0 ? 0 : (uint64_t)pn};
        efcp_wire_put_hdr(d, &h);
        memcpy(d + EFCP_HDR_LEN, p + 4, n);
        /* note whether it carries DATA for the receiver's flow */
        efcp_frame fr;
        for (size_t off = 0; to == 1 && off < n;) {
                int k = efcp_wire_get_frame(p + 4 + off, n - off, &fr);
                if (k <= 0)
                        break;
                if (fr.type == EFCP_FT_DATA)
                        s->forged_data = true;
                off += (size_t)k;
        }
        efcp_wire_seal_plain(d, EFCP_HDR_LEN + n);
        deliver(s, to, d, EFCP_HDR_LEN + n + EFCP_CRC_LEN);
        return 4 + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sim *s = &S;
        memset(s, 0, offsetof(sim, q));
        memset(s->qh, 0, sizeof(s->qh));
        memset(s->qn, 0, sizeof(s->qn));
        memset(s->largest, 0, sizeof(s->largest));
        s->tx = s->rx = NULL;
        s->sent = s->got = 0;
        s->tx_closed = s->rx_done = s->bad_content = s->forged_data = s->tx_ended = false;
        efcp_config c;
        efcp_config_default(&c);
        c.max_flows = 8;
        c.flow_window = 32;
        c.flow_send_buf = 32;
        c.max_msg = 4096;
        c.max_inflight = 256;
        c.peer_timeout_ns = 5 * SEC;
        c.keepalive_ns = 1 * SEC;
        c.quarantine_ns = 2 * SEC;
        c.close_linger_ns = 10 * SEC;
        for (int i = 0; i < 2; i++) {
                c.local_index = (uint32_t)i;
                c.remote_index = (uint32_t)!i;
                c.seed = (uint64_t)i + 1;
                if (efcp_assoc_new(&c, 0, &s->a[i]) < 0)
                        __builtin_trap();
        }
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 0xfffffff0u};
        if (efcp_flow_open(s->a[0], 1, 2, &pol, &s->tx) < 0)
                __builtin_trap();
        size_t off = 0;
        uint64_t next_inject = size ? (data[0] >> 1) * 100000ull : UINT64_MAX;
        const uint64_t until = 200 * SEC;
        while (s->now < until && !finished(s)) {
                app(s);
                pump(s);
                while (next_inject <= s->now && off < size) {
                        off += inject(s, data + off, size - off);
                        next_inject = off < size ? s->now + (data[off] >> 1) * 100000ull : UINT64_MAX;
                }
                uint64_t t = next_inject;
                for (int i = 0; i < 2; i++) {
                        uint64_t d = efcp_next_deadline(s->a[i]);
                        if (d < t)
                                t = d;
                        if (s->qn[i] && s->q[i][s->qh[i]].at < t)
                                t = s->q[i][s->qh[i]].at;
                }
                if (t <= s->now)
                        t = s->now + 1000;
                if (t == UINT64_MAX || t > until)
                        t = until;
                s->now = t;
                for (int i = 0; i < 2; i++)
                        while (s->qn[i] && s->q[i][s->qh[i]].at <= s->now) {
                                dgram *d = &s->q[i][s->qh[i]];
                                s->qh[i] = (s->qh[i] + 1) % QCAP;
                                s->qn[i]--;
                                deliver(s, i, d->b, d->len);
                        }
                for (int i = 0; i < 2; i++)
                        efcp_timeout(s->a[i], s->now);
        }
        app(s);
        /* completed, or ended with an error someone heard of: anything else
         * is a stall */
        if (!finished(s) && !errored(s))
                __builtin_trap();
        /* a normal end is a whole transfer, unless DATA itself was forged */
        if (s->rx_done && !error_reason(s->rx_reason) && !s->forged_data &&
            (s->got != NMSG || s->bad_content))
                __builtin_trap();
        for (int i = 0; i < 2; i++)
                s->a[i] = efcp_assoc_free(s->a[i]);
        return 0;
}
