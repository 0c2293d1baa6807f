/*
 * test-efcp-limits.c — the EFCP engine at its bounds and under abuse:
 * allocation refused beyond max_flows or beyond the window, a flood of
 * forged allocations cannot grow state, the probe timeout backs off and is
 * capped, spurious losses are detected (and CUBIC's reduction undone),
 * unordered flows are free of head-of-line blocking, heavy loss with many
 * ack ranges, association close, and the simulator's own statistics.
 */
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>

#include "efcp/efcp.h"
#include "efcp/wire.h"
#include "support/netsim.h"
#include "support/test.h"

#define MS 1000000ull
#define SEC 1000000000ull

static uint64_t g_seed;
#define SCHECK(cond)                                                                         \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "failing seed %" PRIu64 " (replay: NETSIM_SEED=%" PRIu64 \
                                        ")\n", g_seed, g_seed);                              \
                        CHECK(cond);                                                         \
                }                                                                            \
        } while (0)

static uint64_t app_none(netsim_pair *p, void *arg) {
        (void)p;
        (void)arg;
        return UINT64_MAX;
}

static void link_both(netsim_pair *p, const netsim_link *l) {
        netsim_set_link(p->net, 0, l);
        netsim_set_link(p->net, 1, l);
}

static const netsim_link lan = {.delay_ns = 100000, .rate_bps = 1000000000ull, .queue_bytes = 1 << 20};

/* Counts events of a type (and, for deallocations, with a reason). */
static int count_events(efcp_assoc *a, efcp_event_type type, uint32_t reason) {
        efcp_event ev;
        int n = 0;
        while (efcp_event_next(a, &ev))
                if (ev.type == type && (type != EFCP_EV_FLOW_DEALLOCATED || ev.reason == reason))
                        n++;
        return n;
}

TEST_TIMEOUT(flows_beyond_max_refused, 30) {
        efcp_config c0, c1;
        efcp_config_default(&c0);
        c1 = c0;
        c1.max_flows = 4;
        netsim_pair p;
        netsim_pair_init2(&p, 1, &c0, &c1);
        link_both(&p, &lan);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE, .isn_random = true};
        efcp_flow *f[8];
        for (uint32_t i = 0; i < 8; i++)
                CHECK_OK(efcp_flow_open(p.a[0], 10 + i, 20 + i, &pol, &f[i]));
        netsim_pair_run(&p, 1 * SEC, app_none, NULL);
        CHECK_EQ(count_events(p.a[1], EFCP_EV_FLOW_ALLOCATED, 0), 4);
        CHECK_EQ(count_events(p.a[0], EFCP_EV_FLOW_DEALLOCATED, EFCP_REASON_NO_RESOURCES), 4);
        int refused = 0;
        for (int i = 0; i < 8; i++)
                refused += efcp_flow_deallocated(f[i], NULL);
        CHECK_EQ(refused, 4);
        /* locally, max_flows is an error of its own */
        efcp_flow *g;
        for (uint32_t i = 0; i < 56; i++)
                CHECK_OK(efcp_flow_open(p.a[0], 100 + i, 200 + i, &pol, &g));
        CHECK_ERR(efcp_flow_open(p.a[0], 999, 999, &pol, &g), -ENOSPC);
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(window_larger_than_peer_refused, 30) {
        efcp_config c0, c1;
        efcp_config_default(&c0);
        c1 = c0;
        c0.flow_window = 512;
        netsim_pair p;
        netsim_pair_init2(&p, 2, &c0, &c1);
        link_both(&p, &lan);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE};
        efcp_flow *f;
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        CHECK_OK(efcp_flow_send(f, "x", 1));
        netsim_pair_run(&p, 1 * SEC, app_none, NULL);
        uint32_t reason = 0;
        CHECK(efcp_flow_deallocated(f, &reason));
        CHECK_EQ(reason, EFCP_REASON_NO_RESOURCES);
        CHECK_EQ(count_events(p.a[1], EFCP_EV_FLOW_ALLOCATED, 0), 0);
        CHECK_EQ(efcp_assoc_stats(p.a[1])->pdus_beyond_credit, 0);
        netsim_pair_deinit(&p);
}

/* The other way round: the opener has the smaller window, so it is the
 * peer's answer that does not fit; the opener refuses, both sides learn it,
 * and no data is lost silently. */
TEST_TIMEOUT(answer_larger_than_opener_refused, 30) {
        efcp_config c0, c1;
        efcp_config_default(&c0);
        c1 = c0;
        c0.flow_window = 128;
        netsim_pair p;
        netsim_pair_init2(&p, 5, &c0, &c1);
        link_both(&p, &lan);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE};
        efcp_flow *f;
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        netsim_pair_run(&p, 1 * SEC, app_none, NULL);
        uint32_t reason = 0;
        CHECK(efcp_flow_deallocated(f, &reason));
        CHECK_EQ(reason, EFCP_REASON_NO_RESOURCES);
        CHECK_EQ(count_events(p.a[0], EFCP_EV_FLOW_DEALLOCATED, EFCP_REASON_NO_RESOURCES), 1);
        CHECK_EQ(count_events(p.a[1], EFCP_EV_FLOW_DEALLOCATED, EFCP_REASON_NO_RESOURCES), 1);
        netsim_pair_deinit(&p);
}

/* Forged but well-sealed datagrams full of ALLOC frames for thousands of
 * ports: the engine keeps at most max_flows, answers the rest with a bounded
 * queue of refusals, and stays healthy. */
TEST_TIMEOUT(alloc_flood_bounded, 30) {
        efcp_config c;
        efcp_config_default(&c);
        c.max_flows = 16;
        efcp_assoc *a;
        CHECK_OK(efcp_assoc_new(&c, 0, &a));
        uint8_t dg[1500], out[2048];
        uint64_t pn = 0, now = 0;
        for (uint32_t port = 0; port < 5000;) {
                efcp_hdr h = {.type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .pn = pn++};
                efcp_wire_put_hdr(dg, &h);
                size_t off = EFCP_HDR_LEN;
                for (int k = 0; k < 50; k++, port++)
                        off += efcp_wire_put_alloc(dg + off, 3, port, port + 1, 0, 16, 1024);
                efcp_wire_seal_plain(dg, off);
                CHECK_OK(efcp_input(a, dg, off + EFCP_CRC_LEN, now));
                while (efcp_output(a, out, sizeof(out), now) > 0)
                        ;
                now += 1000;
        }
        int live = 0;
        for (uint32_t port = 0; port < 5000; port++)
                live += efcp_flow_get(a, port) != NULL;
        CHECK_EQ(live, 16);
        CHECK_EQ(count_events(a, EFCP_EV_FLOW_ALLOCATED, 0), 16);
        CHECK(!efcp_assoc_dead(a));
        efcp_assoc_free(a);
}

/* During a long outage the probe timeout doubles up to max_pto and stays
 * there: a handful of probes per second at most, and the transfer resumes. */
TEST_TIMEOUT(pto_backs_off_and_caps, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 3, &c);
        netsim_link l = lan;
        l.down_from = 10 * MS;
        l.down_until = 20 * SEC;
        link_both(&p, &l);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED};
        efcp_flow *f;
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        netsim_pair_run(&p, 5 * MS, app_none, NULL);
        CHECK_OK(efcp_flow_send(f, "during", 6));
        netsim_pair_run(&p, 19 * SEC, app_none, NULL);
        uint64_t ptos = efcp_assoc_stats(p.a[0])->ptos;
        /* ~2 ms doubling to 1 s: ~10 to reach the cap, then one per second */
        CHECK(ptos >= 10 && ptos <= 40);
        efcp_path_info pi;
        efcp_assoc_path(p.a[0], &pi);
        CHECK(pi.pto_count >= 10);
        netsim_pair_run(&p, 22 * SEC, app_none, NULL);
        efcp_flow *r = efcp_flow_get(p.a[1], 2);
        CHECK(r);
        char buf[16];
        CHECK_EQ(efcp_flow_recv(r, buf, sizeof(buf)), 6);
        efcp_assoc_path(p.a[0], &pi);
        CHECK_EQ(pi.pto_count, 0);
        netsim_pair_deinit(&p);
}

/* ---- a bulk transfer helper ----------------------------------------------- */

typedef struct bulk {
        efcp_flow *tx, *rx;
        uint32_t n, sent, got;
        bool out_of_order; /* some message overtook an earlier one */
        uint32_t max_seen;
        uint8_t *seen;
} bulk;

static uint64_t app_bulk(netsim_pair *p, void *arg) {
        bulk *b = arg;
        uint8_t buf[4096];
        efcp_event ev;
        while (efcp_event_next(p->a[1], &ev))
                if (ev.type == EFCP_EV_FLOW_ALLOCATED)
                        b->rx = efcp_flow_get(p->a[1], ev.local_port);
        while (b->sent < b->n && efcp_flow_writable(b->tx, 2000)) {
                memset(buf, (int)(b->sent & 0xff), 2000);
                memcpy(buf, &b->sent, 4);
                SCHECK(efcp_flow_send(b->tx, buf, 2000) == 0);
                b->sent++;
        }
        int r;
        while (b->rx && (r = efcp_flow_recv(b->rx, buf, sizeof(buf))) >= 0) {
                SCHECK(r == 2000);
                uint32_t i;
                memcpy(&i, buf, 4);
                SCHECK(i < b->n && !b->seen[i] && buf[1999] == (uint8_t)(i & 0xff));
                b->seen[i] = 1;
                if (b->got > 0 && i < b->max_seen)
                        b->out_of_order = true;
                if (i > b->max_seen)
                        b->max_seen = i;
                b->got++;
        }
        return b->got == b->n ? 0 : UINT64_MAX;
}

static void bulk_run(netsim_pair *p, bulk *b, uint32_t policy, uint64_t limit) {
        b->seen = calloc(b->n, 1);
        efcp_flow_policy pol = {.flags = policy, .isn_random = true};
        CHECK_OK(efcp_flow_open(p->a[0], 1, 2, &pol, &b->tx));
        SCHECK(netsim_pair_run(p, limit, app_bulk, b));
        free(b->seen);
}

/* Heavy reordering: packets "lost" by the threshold rules arrive later; the
 * engine notices the losses were spurious and CUBIC takes its reduction back. */
TEST_TIMEOUT(spurious_loss_detected_and_undone, 60) {
        netsim_seeds s = netsim_seed_range(100, 12);
        uint64_t spurious = 0, undos = 0;
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                c.cc = EFCP_CC_CUBIC;
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 2 * MS, .rate_bps = 100000000, .queue_bytes = 1 << 20,
                                 .reorder = 0.05, .reorder_ns = 4 * MS};
                link_both(&p, &l);
                bulk b = {.n = 1500};
                bulk_run(&p, &b, EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, 120 * SEC);
                spurious += efcp_assoc_stats(p.a[0])->pkts_spurious;
                undos += efcp_assoc_stats(p.a[0])->cc_undos;
                SCHECK(efcp_assoc_stats(p.a[1])->pdus_beyond_credit == 0);
                netsim_pair_deinit(&p);
        }
        CHECK(spurious > 0);
        CHECK(undos > 0);
}

/* An unordered reliable flow hands over later messages while an earlier one
 * is being repaired; the ordered one never does (checked in test-efcp-sim). */
TEST_TIMEOUT(unordered_has_no_head_of_line_blocking, 60) {
        netsim_seeds s = netsim_seed_range(200, 8);
        int ooo = 0;
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 1 * MS, .rate_bps = 100000000, .queue_bytes = 1 << 20,
                                 .loss = 0.05};
                link_both(&p, &l);
                bulk b = {.n = 1000};
                bulk_run(&p, &b, EFCP_POLICY_RELIABLE, 120 * SEC);
                ooo += b.out_of_order;
                netsim_pair_deinit(&p);
        }
        CHECK(ooo > 0);
}

/* 30 % loss each way: the receiver's ack ranges overflow their bound again and
 * again; the transfer is still exact. */
TEST_TIMEOUT(heavy_loss_many_ranges, 60) {
        netsim_seeds s = netsim_seed_range(300, 8);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 1 * MS, .jitter_ns = 2 * MS, .rate_bps = 50000000,
                                 .queue_bytes = 1 << 20, .loss = 0.30};
                link_both(&p, &l);
                bulk b = {.n = 400};
                bulk_run(&p, &b, EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, 300 * SEC);
                SCHECK(!b.out_of_order);
                netsim_pair_deinit(&p);
        }
}

/* A path with a 1200-byte MTU: an association configured for it (no path MTU
 * discovery yet: max_datagram is configuration) never sends a datagram the
 * link drops, and fragmentation carries the large messages. */
TEST_TIMEOUT(small_mtu_path, 60) {
        netsim_seeds s = netsim_seed_range(400, 4);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                c.max_datagram = 1200;
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 1 * MS, .rate_bps = 100000000, .queue_bytes = 1 << 20,
                                 .mtu = 1200, .loss = 0.02};
                link_both(&p, &l);
                bulk b = {.n = 300};
                bulk_run(&p, &b, EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, 120 * SEC);
                SCHECK(netsim_stats(p.net, 0)->mtu_drops == 0 && netsim_stats(p.net, 1)->mtu_drops == 0);
                netsim_pair_deinit(&p);
        }
}

/* Both sides open the same pair at once (each names the other's port): the
 * two ALLOCs cross, each answers the other, and data flows both ways. */
TEST_TIMEOUT(simultaneous_open, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 6, &c);
        netsim_link l = lan;
        l.loss = 0.2;
        link_both(&p, &l);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn_random = true};
        efcp_flow *f0, *f1;
        CHECK_OK(efcp_flow_open(p.a[0], 7, 9, &pol, &f0));
        CHECK_OK(efcp_flow_open(p.a[1], 9, 7, &pol, &f1));
        CHECK_OK(efcp_flow_send(f0, "from 0", 6));
        CHECK_OK(efcp_flow_send(f1, "from 1", 6));
        netsim_pair_run(&p, 2 * SEC, app_none, NULL);
        char buf[16];
        CHECK_EQ(efcp_flow_recv(f1, buf, sizeof(buf)), 6);
        CHECK_MEM(buf, "from 0", 6);
        CHECK_EQ(efcp_flow_recv(f0, buf, sizeof(buf)), 6);
        CHECK_MEM(buf, "from 1", 6);
        CHECK_EQ(count_events(p.a[0], EFCP_EV_FLOW_ALLOCATED, 0), 0);
        CHECK_EQ(count_events(p.a[1], EFCP_EV_FLOW_ALLOCATED, 0), 0);
        netsim_pair_deinit(&p);
}

/* Does a sealed datagram carry a DATA frame? (the frame area is parsed with
 * the wire functions, as the engine would) */
static bool has_data_frame(const uint8_t *d, size_t len) {
        size_t off = EFCP_HDR_LEN, end = len - EFCP_CRC_LEN;
        efcp_frame fr;
        while (off < end) {
                int n = efcp_wire_get_frame(d + off, end - off, &fr);
                if (n <= 0)
                        return false;
                if (fr.type == EFCP_FT_DATA)
                        return true;
                off += (size_t)n;
        }
        return false;
}

/* A path that never delivers DATA (but everything else) cannot hold a closing
 * flow for ever: after close_linger the DEALLOC goes without waiting for the
 * data, and the port-id is released after its quarantine. The peer is not
 * told the application's reason but DATA_LOST: the flow did not end whole. */
TEST_TIMEOUT(close_lingers_at_most, 30) {
        efcp_config c;
        efcp_config_default(&c);
        c.close_linger_ns = 3 * SEC;
        c.quarantine_ns = 2 * SEC;
        efcp_assoc *a[2];
        for (int i = 0; i < 2; i++) {
                c.local_index = (uint32_t)i;
                c.remote_index = (uint32_t)!i;
                CHECK_OK(efcp_assoc_new(&c, 0, &a[i]));
        }
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED};
        efcp_flow *f;
        CHECK_OK(efcp_flow_open(a[0], 1, 2, &pol, &f));
        CHECK_OK(efcp_flow_send(f, "first", 5));
        static uint8_t buf[2048];
        uint64_t dealloc_at = 0;
        for (uint64_t now = 0; now < 10 * SEC; now += 1 * MS) {
                if (now == 60 * MS)
                        CHECK_OK(efcp_flow_send(f, "never", 5));
                if (now == 100 * MS)
                        efcp_flow_close(f, 33);
                int len;
                /* from 50 ms on, the path eats every datagram carrying DATA */
                while ((len = efcp_output(a[0], buf, sizeof(buf), now)) > 0)
                        if (now < 50 * MS || !has_data_frame(buf, (size_t)len))
                                efcp_input(a[1], buf, (size_t)len, now);
                while ((len = efcp_output(a[1], buf, sizeof(buf), now)) > 0)
                        efcp_input(a[0], buf, (size_t)len, now);
                efcp_event ev;
                while (efcp_event_next(a[1], &ev))
                        if (ev.type == EFCP_EV_FLOW_DEALLOCATED && ev.reason == EFCP_REASON_DATA_LOST &&
                            !dealloc_at)
                                dealloc_at = now;
                efcp_timeout(a[0], now);
                efcp_timeout(a[1], now);
        }
        /* the peer learns of the end at close + linger, not before */
        if (!(dealloc_at >= 3 * SEC && dealloc_at < 3300 * MS))
                fprintf(stderr, "dealloc at %.3f s\n", (double)dealloc_at / 1e9);
        CHECK(dealloc_at >= 3 * SEC && dealloc_at < 3300 * MS);
        CHECK_OK(efcp_flow_open(a[0], 1, 2, &pol, &f)); /* quarantine over */
        efcp_assoc_free(a[0]);
        efcp_assoc_free(a[1]);
}

TEST_TIMEOUT(assoc_close_tells_peer, 30) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 4, &c);
        link_both(&p, &lan);
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE};
        efcp_flow *f;
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
        netsim_pair_run(&p, 100 * MS, app_none, NULL);
        CHECK_EQ(count_events(p.a[1], EFCP_EV_FLOW_ALLOCATED, 0), 1);
        efcp_assoc_close(p.a[0], 99);
        CHECK(efcp_assoc_dead(p.a[0]));
        CHECK_ERR(efcp_flow_send(f, "x", 1), -EPIPE);
        netsim_pair_run(&p, 200 * MS, app_none, NULL);
        CHECK(efcp_assoc_dead(p.a[1]));
        efcp_event ev;
        bool peer_closed = false, flow_gone = false;
        while (efcp_event_next(p.a[1], &ev)) {
                peer_closed |= ev.type == EFCP_EV_PEER_CLOSED;
                flow_gone |= ev.type == EFCP_EV_FLOW_DEALLOCATED && ev.local_port == 2;
        }
        CHECK(peer_closed && flow_gone);
        netsim_pair_deinit(&p);
}

/* No allocation per packet: two engines wired memory to memory move 20 000
 * messages (fragmented ones too, with loss and reordering done by hand) and
 * the heap in use does not change by a byte once the flow exists. */
TEST_TIMEOUT(no_allocation_per_packet, 30) {
        efcp_config c;
        efcp_config_default(&c);
        efcp_assoc *a[2];
        for (int i = 0; i < 2; i++) {
                c.local_index = (uint32_t)i;
                c.remote_index = (uint32_t)!i;
                CHECK_OK(efcp_assoc_new(&c, 0, &a[i]));
        }
        efcp_flow *tx, *rx = NULL;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 5};
        CHECK_OK(efcp_flow_open(a[0], 1, 2, &pol, &tx));
        static uint8_t buf[2048], held[2048], msg[5000];
        size_t held_len = 0;
        uint64_t now = 0;
        uint32_t sent = 0, got = 0;
        size_t before = 0;
        for (int step = 0; got < 20000 && step < 2000000; step++) {
                if (step == 1000) {
                        CHECK(rx);
                        before = mallinfo2().uordblks;
                }
                now += 20000;
                while (sent < 20000 && efcp_flow_send(tx, msg, 1 + sent % 4000) == 0)
                        sent++;
                int len;
                while ((len = efcp_output(a[0], buf, sizeof(buf), now)) > 0) {
                        /* every 50th datagram lost, every 7th held back one turn */
                        if (test_hash(&now, sizeof(now), (uint64_t)len) % 50 == 0)
                                continue;
                        if (!held_len && len % 7 == 0) {
                                memcpy(held, buf, (size_t)len);
                                held_len = (size_t)len;
                                continue;
                        }
                        efcp_input(a[1], buf, (size_t)len, now);
                }
                if (held_len) {
                        efcp_input(a[1], held, held_len, now);
                        held_len = 0;
                }
                efcp_event ev;
                while (efcp_event_next(a[1], &ev))
                        rx = efcp_flow_get(a[1], ev.local_port);
                while (rx && efcp_flow_recv(rx, msg, sizeof(msg)) >= 0)
                        got++;
                while ((len = efcp_output(a[1], buf, sizeof(buf), now)) > 0)
                        efcp_input(a[0], buf, (size_t)len, now);
                efcp_timeout(a[0], now);
                efcp_timeout(a[1], now);
        }
        CHECK_EQ(got, 20000);
        CHECK_EQ(mallinfo2().uordblks, before);
        CHECK(efcp_assoc_stats(a[0])->pdus_retx > 0);
        efcp_assoc_free(a[0]);
        efcp_assoc_free(a[1]);
}

/* The simulator itself: configured rates are what happens, and a seed
 * replays exactly. */
TEST_TIMEOUT(netsim_statistics, 30) {
        for (int run = 0; run < 2; run++) {
                netsim *n = netsim_new(77);
                netsim_link l = {.delay_ns = 1000, .loss = 0.1, .dup = 0.05, .corrupt = 0.02,
                                 .reorder = 0.1, .reorder_ns = 500};
                netsim_set_link(n, 0, &l);
                uint8_t d[100] = {0}, out[200];
                for (int i = 0; i < 100000; i++)
                        netsim_send(n, 0, d, sizeof(d), (uint64_t)i * 10);
                int to, delivered = 0, corrupted = 0;
                size_t len;
                while ((len = netsim_recv(n, UINT64_MAX, &to, out, sizeof(out))) > 0) {
                        CHECK_EQ(to, 1);
                        delivered++;
                        corrupted += memcmp(out, d, len) != 0;
                }
                const netsim_link_stats *st = netsim_stats(n, 0);
                CHECK(st->lost > 9500 && st->lost < 10500);
                CHECK(st->dups > 4200 && st->dups < 4800);
                CHECK_EQ(delivered, 100000 - (int)st->lost + (int)st->dups);
                CHECK(corrupted > 1600 && corrupted < 2200);
                static uint64_t first_lost;
                if (run == 0)
                        first_lost = st->lost;
                else
                        CHECK_EQ(st->lost, first_lost);
                netsim_free(n);
        }
}

/* Bandwidth and queue: a 10 Mbit/s link with a 30 kB queue carries about
 * 10 Mbit/s and drops what overflows. */
TEST_TIMEOUT(netsim_bandwidth_and_queue, 30) {
        netsim *n = netsim_new(5);
        netsim_link l = {.delay_ns = 1 * MS, .rate_bps = 10000000, .queue_bytes = 30000};
        netsim_set_link(n, 0, &l);
        uint8_t d[1000] = {0}, out[2000];
        /* offer 20 Mbit/s for one second */
        for (int i = 0; i < 2500; i++)
                netsim_send(n, 0, d, sizeof(d), (uint64_t)i * 400000);
        int to, got = 0;
        uint64_t last = 0;
        while (netsim_next(n) != UINT64_MAX) {
                last = netsim_next(n);
                while (netsim_recv(n, last, &to, out, sizeof(out)) > 0)
                        got++;
        }
        CHECK(got > 1200 && got < 1300); /* ~half of what was offered */
        CHECK(netsim_stats(n, 0)->queue_drops > 1200);
        CHECK(last > 1 * SEC && last < 1100 * MS);
        netsim_free(n);
}
