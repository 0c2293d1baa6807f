/*
 * test-efcp-basic.c — unit tests of the EFCP engine's pieces: CRC32C, the
 * congestion controller (halving, random-loss tolerance),
 * the wire format, the API's error returns, and simple transfers over a perfect
 * simulated link (allocation, fragmentation, credit, deallocation,
 * quarantine, peer timeout).
 */
#include <errno.h>

#include "efcp/cc.h"
#include "efcp/crc32c.h"
#include "efcp/efcp.h"
#include "efcp/wire.h"
#include "support/netsim.h"
#include "support/test.h"

TEST_TIMEOUT(crc32c_known_vector, 10) {
        CHECK_EQ(efcp_crc32c(0, "123456789", 9), 0xE3069283u);
        /* incremental == one-shot, across the 8-byte fast path boundary */
        uint8_t buf[1000];
        test_fill(buf, sizeof(buf), 7);
        uint32_t whole = efcp_crc32c(0, buf, sizeof(buf));
        CHECK_EQ(efcp_crc32c(efcp_crc32c(0, buf, 13), buf + 13, sizeof(buf) - 13), whole);
        /* the fast path (three lanes joined) equals the table code everywhere */
        static uint8_t big[5000];
        test_fill(big, sizeof(big), 9);
        for (size_t len = 0; len <= sizeof(big); len += len < 300 ? 1 : 37)
                for (size_t off = 0; off < 8; off += 3)
                        if (off + len <= sizeof(big))
                                CHECK_EQ(efcp_crc32c(5, big + off, len), efcp_crc32c_sw(5, big + off, len));
}

TEST_TIMEOUT(wire_ack_roundtrip, 10) {
        efcp_ack_range r[4] = {{90, 100}, {50, 80}, {10, 10}, {0, 5}};
        uint8_t buf[256];
        size_t n = efcp_wire_put_ack(buf, r, 4, 1234);
        CHECK_EQ(n, EFCP_ACK_LEN(3));
        efcp_frame f;
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), (int)n);
        CHECK_EQ(f.type, EFCP_FT_ACK);
        CHECK_EQ(f.u.ack.largest, 100);
        CHECK_EQ(f.u.ack.delay_us, 1234);
        CHECK_EQ(f.u.ack.nranges, 4);
        for (int i = 0; i < 4; i++) {
                CHECK_EQ(f.u.ack.ranges[i].lo, r[i].lo);
                CHECK_EQ(f.u.ack.ranges[i].hi, r[i].hi);
        }
        /* truncated by one byte: malformed */
        CHECK_EQ(efcp_wire_get_frame(buf, n - 1, &f), -EBADMSG);
        /* a gap that would go below zero: malformed */
        buf[18 + 8 * 2 + 3] = 200;
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), -EBADMSG);
}

TEST_TIMEOUT(wire_frames_roundtrip, 10) {
        uint8_t buf[256];
        efcp_frame f;
        size_t n = efcp_wire_put_data_hdr(buf, EFCP_DF_FIRST, 3, 7, 9, 0xfffffffe);
        memcpy(buf + n, "abc", 3);
        CHECK_EQ(efcp_wire_get_frame(buf, n + 3, &f), (int)n + 3);
        CHECK_EQ(f.u.data.dst, 7);
        CHECK_EQ(f.u.data.src, 9);
        CHECK_EQ(f.u.data.seq, 0xfffffffeu);
        CHECK_EQ(f.u.data.flags, EFCP_DF_FIRST);
        CHECK_MEM(f.u.data.data, "abc", 3);
        CHECK_EQ(efcp_wire_get_frame(buf, n + 2, &f), -EBADMSG);
        n = efcp_wire_put_alloc(buf, 3, 1, 2, 42, 256, 65536);
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), (int)n);
        CHECK_EQ(f.u.alloc.isn, 42);
        CHECK_EQ(f.u.alloc.credit, 256);
        n = efcp_wire_put_dealloc(buf, EFCP_STEP_ACK, EFCP_DEALLOC_FINAL, 1, 2, 77, 0xfffffffeu);
        CHECK_EQ(n, EFCP_DEALLOC_LEN);
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), (int)n);
        CHECK_EQ(f.u.dealloc.step, EFCP_STEP_ACK);
        CHECK_EQ(f.u.dealloc.flags, EFCP_DEALLOC_FINAL);
        CHECK_EQ(f.u.dealloc.reason, 77);
        CHECK_EQ(f.u.dealloc.final, 0xfffffffeu);
        CHECK_EQ(efcp_wire_get_frame(buf, n - 1, &f), -EBADMSG);
        buf[1] = 4; /* no such step */
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), -EBADMSG);
        n = efcp_wire_put_blocked(buf, 1, 2, 10, 7);
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), (int)n);
        CHECK_EQ(f.u.fc.value, 10);
        CHECK_EQ(f.u.fc.acked, 7);
        n = efcp_wire_put_close(buf, EFCP_STEP_CONFIRM, 99);
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), (int)n);
        CHECK_EQ(f.u.close.step, EFCP_STEP_CONFIRM);
        CHECK_EQ(f.u.close.reason, 99);
        n = efcp_wire_put_fc(buf, EFCP_FT_CREDIT, 1, 2, 77);
        buf[0] = 0x7f;
        CHECK_EQ(efcp_wire_get_frame(buf, n, &f), -EBADMSG);
        /* sequence comparison across the wrap */
        CHECK(efcp_seq_lt(0xfffffff0u, 5));
        CHECK(!efcp_seq_lt(5, 0xfffffff0u));
}

/* Random loss: within one loss round (srtt from its first loss) a window of
 * fewer than 8 datagrams tolerates no loss, one of 8..15 one, one of 16..23
 * two, one of 24..199 three, one of 200 four (2 %); the next loss beyond
 * that reduces; a new round starts over. */
TEST_TIMEOUT(cc_tolerates_random_loss, 10) {
        efcp_cc cc;
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, false);
        cc.cwnd = 7000;
        CHECK(efcp_cc_on_loss(&cc, 1, 5, 10, 100)); /* 7 datagrams: Reno */
        CHECK_EQ(cc.cwnd, 3500);
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, false);
        CHECK(!efcp_cc_on_loss(&cc, 1, 5, 10, 100)); /* the initial 10 datagrams: one */
        CHECK(efcp_cc_on_loss(&cc, 1, 6, 20, 100));
        CHECK_EQ(cc.cwnd, 5000);
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, false);
        cc.cwnd = 20000;
        CHECK(!efcp_cc_on_loss(&cc, 2, 5, 1000, 100));
        CHECK_EQ(cc.cwnd, 20000);
        CHECK(efcp_cc_on_loss(&cc, 1, 6, 1050, 100)); /* the third in the round */
        CHECK_EQ(cc.cwnd, 10000);
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, false);
        cc.cwnd = 100000;
        CHECK(!efcp_cc_on_loss(&cc, 3, 5, 1000, 100)); /* 2 % would be two */
        CHECK(efcp_cc_on_loss(&cc, 1, 6, 1050, 100));
        CHECK_EQ(cc.cwnd, 50000);
        efcp_cc_init(&cc, EFCP_CC_CUBIC, 1000, false);
        cc.cwnd = 200000;
        CHECK(!efcp_cc_on_loss(&cc, 3, 5, 1000, 100));
        CHECK(!efcp_cc_on_loss(&cc, 1, 6, 1099, 100));
        CHECK(!efcp_cc_on_loss(&cc, 4, 7, 1100, 100)); /* a new round */
        CHECK_EQ(cc.cwnd, 200000);
        CHECK(efcp_cc_on_loss(&cc, 1, 8, 1150, 100));
        CHECK_EQ(cc.cwnd, 140000); /* CUBIC's beta */
}

TEST_TIMEOUT(cc_newreno_rules, 10) {
        efcp_cc cc;
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, false);
        CHECK_EQ(cc.cwnd, 10000);
        /* slow start: +acked bytes */
        efcp_cc_on_sent(&cc, 1000, 1);
        efcp_cc_on_acked(&cc, 1000, 1, 2, 1000, false);
        CHECK_EQ(cc.cwnd, 11000);
        CHECK_EQ(cc.bytes_in_flight, 0);
        /* loss: halve, once per recovery period */
        efcp_cc_on_congestion(&cc, 5, 10);
        CHECK_EQ(cc.cwnd, 5500);
        efcp_cc_on_congestion(&cc, 8, 12); /* sent before recovery began */
        CHECK_EQ(cc.cwnd, 5500);
        efcp_cc_on_congestion(&cc, 20, 30); /* a new period */
        CHECK_EQ(cc.cwnd, 2750);
        for (int i = 0; i < 5; i++)
                efcp_cc_on_congestion(&cc, 100 + 10 * (uint64_t)i, 101 + 10 * (uint64_t)i);
        CHECK_EQ(cc.cwnd, 2000); /* never below two datagrams */
        /* congestion avoidance: one datagram per window of acks */
        uint64_t w = cc.cwnd;
        for (uint64_t acked = 0; acked < w; acked += 1000) {
                efcp_cc_on_sent(&cc, 1000, 200);
                efcp_cc_on_acked(&cc, 1000, 200, 300, 1000, false);
        }
        CHECK_EQ(cc.cwnd, w + 1000);
        /* application-limited: no growth */
        efcp_cc_on_acked(&cc, 1000, 300, 400, 1000, true);
        CHECK_EQ(cc.cwnd, w + 1000);
        efcp_cc_on_persistent(&cc);
        CHECK_EQ(cc.cwnd, 2000);
}

TEST_TIMEOUT(cc_cubic_and_undo, 10) {
        efcp_cc cc;
        efcp_cc_init(&cc, EFCP_CC_CUBIC, 1000, false);
        cc.cwnd = 100000;
        efcp_cc_on_congestion(&cc, 5, 10);
        CHECK_EQ(cc.cwnd, 70000); /* β = 0.7 */
        CHECK(efcp_cc_on_spurious(&cc));
        CHECK_EQ(cc.cwnd, 100000); /* the only loss was spurious: undone */
        /* two losses in one period: undone only when both prove spurious */
        efcp_cc_on_congestion(&cc, 20, 30);
        efcp_cc_on_congestion(&cc, 25, 31);
        CHECK_EQ(cc.cwnd, 70000);
        CHECK(!efcp_cc_on_spurious(&cc));
        CHECK_EQ(cc.cwnd, 70000);
        CHECK(efcp_cc_on_spurious(&cc));
        CHECK_EQ(cc.cwnd, 100000);
        /* growth in congestion avoidance follows the cubic: after K the
         * window passes W_max */
        efcp_cc_on_congestion(&cc, 40, 50);
        uint64_t t = 60;
        for (int i = 0; i < 200000 && cc.cwnd < 100000; i++, t += 1000000) {
                efcp_cc_on_sent(&cc, 1000, t);
                efcp_cc_on_acked(&cc, 1000, t, t + 1000000, 10000000, false);
        }
        CHECK(cc.cwnd >= 100000);
}

TEST_TIMEOUT(cc_pacer, 10) {
        efcp_cc cc;
        efcp_cc_init(&cc, EFCP_CC_NEWRENO, 1000, true);
        /* cwnd 10000 over srtt 1 ms: 12.5 MB/s, a 1000-byte packet per 80 µs */
        uint64_t now = 1000000000, srtt = 1000000;
        int burst = 0;
        while (efcp_cc_pace_time(&cc, 1000, now, srtt) == now && burst < 100) {
                efcp_cc_pace_consume(&cc, 1000, now, srtt);
                burst++;
        }
        CHECK_EQ(burst, 10); /* the bucket holds ten datagrams */
        uint64_t next = efcp_cc_pace_time(&cc, 1000, now, srtt);
        CHECK(next > now + 79000 && next < now + 81000);
}

TEST_TIMEOUT(config_rejects_nonsense, 10) {
        efcp_config c;
        efcp_assoc *a = NULL;
        efcp_config_default(&c);
        c.max_flows = 0;
        CHECK_ERR(efcp_assoc_new(&c, 0, &a), -EINVAL);
        efcp_config_default(&c);
        c.flow_window = 4; /* too small for the largest message */
        CHECK_ERR(efcp_assoc_new(&c, 0, &a), -EINVAL);
        efcp_config_default(&c);
        CHECK_OK(efcp_assoc_new(&c, 0, &a));
        uint8_t small[16];
        CHECK_ERR(efcp_output(a, small, sizeof(small), 0), -EINVAL);
        efcp_assoc_free(a);
}

/* ---- transfers over a perfect link ---------------------------------- */

typedef struct xfer {
        efcp_flow *tx, *rx;
        uint32_t n, sent, got;
        size_t msg_len;
        bool check_order;
} xfer;

static uint64_t app_xfer(netsim_pair *p, void *arg) {
        xfer *x = arg;
        efcp_event ev;
        while (efcp_event_next(p->a[1], &ev))
                if (ev.type == EFCP_EV_FLOW_ALLOCATED)
                        x->rx = efcp_flow_get(p->a[1], ev.local_port);
        static uint8_t buf[70000];
        while (x->sent < x->n) {
                size_t len = x->msg_len ? x->msg_len : 1 + x->sent % 3000;
                if (!efcp_flow_writable(x->tx, len))
                        break;
                test_fill(buf, len, x->sent);
                int r = efcp_flow_send(x->tx, buf, len);
                CHECK_OK(r);
                x->sent++;
        }
        if (x->rx) {
                int r;
                while ((r = efcp_flow_recv(x->rx, buf, sizeof(buf))) >= 0) {
                        size_t len = x->msg_len ? x->msg_len : 1 + x->got % 3000;
                        CHECK_EQ(r, (int)len);
                        uint8_t want[70000];
                        test_fill(want, len, x->got);
                        CHECK_MEM(buf, want, len);
                        x->got++;
                }
                CHECK_EQ(r, -EAGAIN);
        }
        return x->got == x->n ? 0 : UINT64_MAX;
}

static void link_lan(netsim_pair *p) {
        netsim_link l = {.delay_ns = 50000, .rate_bps = 1000000000ull, .queue_bytes = 1 << 20};
        netsim_set_link(p->net, 0, &l);
        netsim_set_link(p->net, 1, &l);
}

TEST_TIMEOUT(transfer_reliable_ordered, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 1, &c);
        link_lan(&p);
        xfer x = {.n = 2000};
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 100};
        CHECK_OK(efcp_flow_open(p.a[0], 10, 20, &pol, &x.tx));
        CHECK_ERR(efcp_flow_open(p.a[0], 10, 21, &pol, &x.tx), -EADDRINUSE);
        CHECK(netsim_pair_run(&p, 10000000000ull, app_xfer, &x));
        CHECK(x.rx);
        CHECK_EQ(efcp_flow_remote_port(x.rx), 10);
        CHECK_EQ(efcp_flow_local_port(x.rx), 20);
        const efcp_stats *s = efcp_assoc_stats(p.a[1]);
        CHECK_EQ(s->bad_crc + s->bad_frame + s->bad_header, 0);
        CHECK_EQ(efcp_assoc_stats(p.a[0])->pdus_retx, 0);
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(transfer_large_messages_fragmented, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 2, &c);
        link_lan(&p);
        xfer x = {.n = 200, .msg_len = 65536};
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 5};
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &x.tx));
        uint8_t big[65537];
        CHECK_ERR(efcp_flow_send(x.tx, big, sizeof(big)), -EMSGSIZE);
        CHECK(netsim_pair_run(&p, 10000000000ull, app_xfer, &x));
        netsim_pair_deinit(&p);
}

/* The receiver reads nothing: the sender must stop at the credit, and
 * nothing beyond it may be sent. */
static uint64_t app_flood(netsim_pair *p, void *arg) {
        efcp_flow *f = arg;
        uint8_t buf[1000] = {0};
        while (efcp_flow_send(f, buf, sizeof(buf)) == 0)
                ;
        return p->now > 2000000000ull ? 0 : p->now + 1000000;
}

TEST_TIMEOUT(credit_stops_sender, 30) {
        efcp_config c;
        efcp_config_default(&c);
        c.flow_window = 64;
        c.max_msg = 8192;
        netsim_pair p;
        netsim_pair_init(&p, 3, &c);
        link_lan(&p);
        efcp_flow *f;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE, .isn_random = true};
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        CHECK(netsim_pair_run(&p, 10000000000ull, app_flood, f));
        const efcp_stats *s = efcp_assoc_stats(p.a[1]);
        CHECK_EQ(s->pdus_in, 64);
        CHECK_EQ(s->pdus_beyond_credit, 0);
        CHECK(!efcp_flow_writable(f, 1));
        /* the receiver drains: credit returns and the sender moves again */
        efcp_flow *r = efcp_flow_get(p.a[1], 2);
        CHECK(r);
        uint8_t buf[2000];
        for (int i = 0; i < 64; i++)
                CHECK_EQ(efcp_flow_recv(r, buf, sizeof(buf)), 1000);
        CHECK_ERR(efcp_flow_recv(r, buf, sizeof(buf)), -EAGAIN);
        netsim_pair_run(&p, p.now + 100000000ull, NULL, NULL);
        CHECK(efcp_flow_writable(f, 1000));
        netsim_pair_deinit(&p);
}

static uint64_t app_idle(netsim_pair *p, void *arg) {
        (void)p;
        (void)arg;
        return UINT64_MAX;
}

TEST_TIMEOUT(dealloc_reason_and_quarantine, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 4, &c);
        link_lan(&p);
        efcp_flow *f;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED};
        CHECK_OK(efcp_flow_open(p.a[0], 7, 8, &pol, &f));
        CHECK_OK(efcp_flow_send(f, "hello", 5));
        netsim_pair_run(&p, 100000000ull, app_idle, NULL);
        efcp_event ev;
        CHECK_EQ(efcp_event_next(p.a[1], &ev), 1);
        CHECK_EQ(ev.type, EFCP_EV_FLOW_ALLOCATED);
        CHECK_EQ(ev.local_port, 8);
        CHECK_EQ(ev.remote_port, 7);
        efcp_flow_close(f, 4242);
        netsim_pair_run(&p, 200000000ull, app_idle, NULL);
        CHECK_EQ(efcp_event_next(p.a[1], &ev), 1);
        CHECK_EQ(ev.type, EFCP_EV_FLOW_DEALLOCATED);
        CHECK_EQ(ev.reason, 4242);
        efcp_flow *r = efcp_flow_get(p.a[1], 8);
        CHECK(r);
        uint8_t buf[16];
        CHECK_EQ(efcp_flow_recv(r, buf, sizeof(buf)), 5); /* data before dealloc still readable */
        CHECK_ERR(efcp_flow_recv(r, buf, sizeof(buf)), -EPIPE);
        CHECK_ERR(efcp_flow_send(r, "x", 1), -EPIPE);
        efcp_flow_close(r, 0);
        /* port 7 is quarantined for quarantine_ns, then usable again */
        CHECK_ERR(efcp_flow_open(p.a[0], 7, 8, &pol, &f), -EADDRINUSE);
        netsim_pair_run(&p, 100000000ull + c.quarantine_ns + 1000000000ull, app_idle, NULL);
        CHECK_OK(efcp_flow_open(p.a[0], 7, 8, &pol, &f));
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(peer_timeout_kills_flows, 30) {
        efcp_config c;
        efcp_config_default(&c);
        c.peer_timeout_ns = 5000000000ull;
        netsim_pair p;
        netsim_pair_init(&p, 5, &c);
        link_lan(&p);
        efcp_flow *f;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE};
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        netsim_pair_run(&p, 100000000ull, app_idle, NULL);
        /* keepalives hold the association up across idle time */
        netsim_pair_run(&p, 20000000000ull, app_idle, NULL);
        CHECK(!efcp_assoc_dead(p.a[0]));
        /* cut both directions for good */
        netsim_link_of(p.net, 0)->down_from = netsim_link_of(p.net, 1)->down_from = p.now;
        netsim_link_of(p.net, 0)->down_until = netsim_link_of(p.net, 1)->down_until = UINT64_MAX;
        netsim_pair_run(&p, p.now + 6000000000ull, app_idle, NULL);
        CHECK(efcp_assoc_dead(p.a[0]));
        efcp_event ev;
        bool flow_ev = false, peer_ev = false;
        while (efcp_event_next(p.a[0], &ev)) {
                if (ev.type == EFCP_EV_FLOW_DEALLOCATED && ev.reason == EFCP_REASON_PEER_TIMEOUT)
                        flow_ev = true;
                if (ev.type == EFCP_EV_PEER_TIMEOUT)
                        peer_ev = true;
        }
        CHECK(flow_ev && peer_ev);
        CHECK_ERR(efcp_flow_send(f, "x", 1), -EPIPE);
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(malformed_datagrams_counted, 10) {
        efcp_config c;
        efcp_config_default(&c);
        efcp_assoc *a;
        CHECK_OK(efcp_assoc_new(&c, 0, &a));
        uint8_t buf[64] = {0};
        CHECK_ERR(efcp_input(a, buf, 3, 0), -EBADMSG);
        efcp_hdr h = {.type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .rx_index = 0, .pn = 1};
        efcp_wire_put_hdr(buf, &h);
        buf[16] = EFCP_FT_PING;
        efcp_wire_seal_plain(buf, 17);
        uint32_t idx = 99;
        CHECK_OK(efcp_datagram_index(buf, 21, &idx));
        CHECK_EQ(idx, 0);
        CHECK_ERR(efcp_datagram_index(buf, 10, &idx), -EBADMSG);
        CHECK_OK(efcp_input(a, buf, 21, 0));
        CHECK_ERR(efcp_input(a, buf, 21, 0), -EALREADY); /* replayed */
        buf[5] ^= 1;
        CHECK_ERR(efcp_input(a, buf, 21, 0), -EBADMSG); /* wrong index */
        buf[5] ^= 1;
        buf[8] = 0;
        buf[15] = 2;
        buf[16] = 0x42; /* unknown frame type, valid CRC */
        efcp_wire_seal_plain(buf, 17);
        CHECK_ERR(efcp_input(a, buf, 21, 0), -EBADMSG);
        buf[16] = EFCP_FT_PING;
        CHECK_ERR(efcp_input(a, buf, 21, 0), -EBADMSG); /* CRC now wrong */
        const efcp_stats *s = efcp_assoc_stats(a);
        CHECK_EQ(s->bad_crc, 1);
        CHECK_EQ(s->bad_frame, 1);
        CHECK_EQ(s->bad_header, 2);
        CHECK_EQ(s->dup_packets, 1);
        efcp_assoc_free(a);
}
