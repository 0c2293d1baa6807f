/*
 * test-efcp-chaos.c — whole flow life cycles under random conditions.
 *
 * Each seed draws a link (delay, jitter, bandwidth, loss, bursts,
 * duplication, corruption, reordering) and a set of flows opened at random
 * times from either side, each with a random policy, message sizes from 0 to
 * 9000 bytes and a random count; every sender closes its flow when it has
 * queued everything, and every receiver reads until the flow says it is over,
 * then closes too; a quarter of the receivers quit early instead, and their
 * senders must see the flow end. Some links also black out for a while. At
 * the end every flow must have ended on both sides, and:
 *   - reliable flows delivered every message exactly once, intact (and in
 *     order when ordered), before the end was reported;
 *   - unreliable flows delivered only intact messages, each at most once
 *     (and never going backwards when ordered).
 * Traffic runs both ways at once (flows in both directions share the
 * association). A failing seed is printed; NETSIM_SEED replays it.
 */
#include <errno.h>
#include <inttypes.h>

#include "efcp/efcp.h"
#include "support/netsim.h"
#include "support/test.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define MAXF 6

static uint64_t g_seed;
#define SCHECK(cond)                                                                         \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "failing seed %" PRIu64 " (replay: NETSIM_SEED=%" PRIu64 \
                                        ")\n", g_seed, g_seed);                              \
                        CHECK(cond);                                                         \
                }                                                                            \
        } while (0)

typedef struct cflow {
        int from;             /* side that opens and sends */
        uint32_t port_tx, port_rx, policy, n, maxlen;
        uint64_t open_at;
        efcp_flow *tx, *rx;
        uint32_t sent, got, last;
        bool opened, tx_closed, rx_done, got_any;
        uint32_t rx_quit_after;  /* >0: the receiver closes after this many messages */
        uint8_t *seen;
} cflow;

typedef struct chaos {
        cflow f[MAXF];
        int nf;
} chaos;

static size_t clen(const cflow *c, uint32_t i) {
        uint64_t h = test_hash(&i, sizeof(i), c->port_tx);
        return i % 7 == 3 ? 0 : 8 + (size_t)(h % (c->maxlen - 8 + 1));
}

static void cmake(const cflow *c, uint32_t i, uint8_t *buf, size_t len) {
        if (len == 0)
                return;
        memcpy(buf, &i, 4);
        memcpy(buf + 4, &c->port_tx, 4);
        test_fill(buf + 8, len - 8, ((uint64_t)c->port_tx << 32) | i);
}

/* A delivered message: which index is it? Zero-length messages are told
 * apart only by order, so they are checked on reliable ordered flows only. */
static void ccheck(cflow *c, const uint8_t *buf, int len) {
        static uint8_t want[10000];
        uint32_t i;
        if (len == 0) {
                if ((c->policy & (EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED)) ==
                    (EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED)) {
                        SCHECK(clen(c, c->got) == 0);
                        i = c->got;
                } else {
                        c->got++;
                        return;
                }
        } else {
                SCHECK(len >= 8);
                memcpy(&i, buf, 4);
                SCHECK(i < c->n && clen(c, i) == (size_t)len);
                cmake(c, i, want, (size_t)len);
                SCHECK(memcmp(buf, want, (size_t)len) == 0);
        }
        SCHECK(!c->seen[i]);
        c->seen[i] = 1;
        if (c->policy & EFCP_POLICY_ORDERED) {
                if (c->policy & EFCP_POLICY_RELIABLE)
                        SCHECK(i == c->got);
                else if (len > 0)
                        SCHECK(!c->got_any || i > c->last);
        }
        if (len > 0) {
                c->last = i;
                c->got_any = true;
        }
        c->got++;
}

static uint64_t app_chaos(netsim_pair *p, void *arg) {
        chaos *ch = arg;
        static uint8_t buf[10000];
        uint64_t wake = UINT64_MAX;
        for (int side = 0; side < 2; side++) {
                efcp_event ev;
                while (efcp_event_next(p->a[side], &ev)) {
                        if (getenv("CHAOS_VERBOSE"))
                                fprintf(stderr, "%.6f side %d event %d port %u/%u reason %u\n",
                                        (double)p->now / 1e9, side, ev.type, ev.local_port,
                                        ev.remote_port, ev.reason);
                        if (ev.type != EFCP_EV_FLOW_ALLOCATED)
                                continue;
                        for (int k = 0; k < ch->nf; k++)
                                if (ch->f[k].from != side && ch->f[k].port_rx == ev.local_port)
                                        ch->f[k].rx = efcp_flow_get(p->a[side], ev.local_port);
                }
        }
        bool all = true;
        for (int k = 0; k < ch->nf; k++) {
                cflow *c = &ch->f[k];
                if (!c->opened) {
                        if (p->now < c->open_at) {
                                wake = c->open_at < wake ? c->open_at : wake;
                                all = false;
                                continue;
                        }
                        efcp_flow_policy pol = {.flags = c->policy, .isn_random = true};
                        SCHECK(efcp_flow_open(p->a[c->from], c->port_tx, c->port_rx, &pol, &c->tx) == 0);
                        c->opened = true;
                }
                while (!c->tx_closed && c->sent < c->n) {
                        size_t len = clen(c, c->sent);
                        if (!efcp_flow_writable(c->tx, len))
                                break;
                        cmake(c, c->sent, buf, len);
                        SCHECK(efcp_flow_send(c->tx, buf, len) == 0);
                        c->sent++;
                }
                if (!c->tx_closed && efcp_flow_deallocated(c->tx, NULL)) {
                        /* only a receiver that quit early may end a flow first */
                        SCHECK(c->rx_quit_after);
                        SCHECK(efcp_flow_send(c->tx, buf, 1) == -EPIPE);
                        efcp_flow_close(c->tx, 0);
                        c->tx_closed = true;
                }
                if (!c->tx_closed && c->sent == c->n) {
                        efcp_flow_close(c->tx, 1000 + (uint32_t)k);
                        c->tx_closed = true;
                }
                if (c->rx && !c->rx_done && c->rx_quit_after && c->got >= c->rx_quit_after) {
                        efcp_flow_close(c->rx, 77);
                        c->rx_done = true;
                }
                if (c->rx && !c->rx_done) {
                        int r = -EAGAIN;
                        while ((!c->rx_quit_after || c->got < c->rx_quit_after) &&
                               (r = efcp_flow_recv(c->rx, buf, sizeof(buf))) >= 0)
                                ccheck(c, buf, r);
                        if (c->rx_quit_after && c->got >= c->rx_quit_after) {
                                all = false; /* closes on the next turn */
                                wake = p->now;
                                continue;
                        }
                        if (r == -EPIPE) {
                                uint32_t reason = 0;
                                SCHECK(efcp_flow_deallocated(c->rx, &reason));
                                SCHECK(reason == 1000 + (uint32_t)k);
                                if ((c->policy & EFCP_POLICY_RELIABLE) && !c->rx_quit_after)
                                        SCHECK(c->got == c->n);
                                efcp_flow_close(c->rx, 0);
                                c->rx_done = true;
                        } else {
                                SCHECK(r == -EAGAIN);
                        }
                }
                all &= c->rx_done && c->tx_closed;
        }
        return all ? 0 : wake;
}

static void run_chaos(uint64_t seed) {
        netsim *r = netsim_new(seed ^ 0xc4a05);
        efcp_config c;
        efcp_config_default(&c);
        c.cc = netsim_rand(r) & 1;
        c.max_msg = 16384;
        /* graceful closes here may take long (outages, 15 % loss, slow
         * links); the linger bound has its own test */
        c.close_linger_ns = 600 * SEC;
        c.flow_window = 64 << (netsim_rand(r) % 3);
        c.flow_send_buf = c.flow_window;
        netsim_pair p;
        netsim_pair_init(&p, seed, &c);
        netsim_link l = {
                .delay_ns = 100000 + netsim_rand(r) % (20 * MS),
                .jitter_ns = netsim_rand(r) % (2 * MS),
                .rate_bps = 10000000ull << (netsim_rand(r) % 7),
                .queue_bytes = 64 * 1024 + netsim_rand(r) % (1 << 20),
                .loss = netsim_uniform(r) * 0.15,
                .dup = netsim_uniform(r) * 0.03,
                .corrupt = netsim_uniform(r) * 0.02,
                .reorder = netsim_uniform(r) * 0.05,
                .reorder_ns = netsim_rand(r) % (5 * MS),
        };
        if (netsim_rand(r) % 3 == 0) {
                l.burst_enter = 0.01;
                l.burst_exit = 0.3;
                l.burst_loss = 0.7;
        }
        if (netsim_rand(r) % 3 == 0) {
                /* an outage somewhere in the first seconds */
                l.down_from = netsim_rand(r) % (3 * SEC);
                l.down_until = l.down_from + netsim_rand(r) % (5 * SEC);
        }
        netsim_set_link(p.net, 0, &l);
        l.delay_ns += netsim_rand(r) % MS; /* asymmetric */
        netsim_set_link(p.net, 1, &l);
        chaos ch = {.nf = 2 + (int)(netsim_rand(r) % (MAXF - 1))};
        for (int k = 0; k < ch.nf; k++) {
                cflow *cf = &ch.f[k];
                cf->from = (int)(netsim_rand(r) & 1);
                cf->port_tx = 100 + (uint32_t)k;
                cf->port_rx = 200 + (uint32_t)k;
                cf->policy = (uint32_t)(netsim_rand(r) & 3);
                cf->n = 1 + (uint32_t)(netsim_rand(r) % 300);
                cf->maxlen = 16 + (uint32_t)(netsim_rand(r) % 9000);
                cf->open_at = netsim_rand(r) % (2 * SEC);
                if (netsim_rand(r) % 4 == 0)
                        cf->rx_quit_after = 1 + (uint32_t)(netsim_rand(r) % cf->n);
                cf->seen = calloc(cf->n, 1);
        }
        netsim_free(r);
        bool done = netsim_pair_run(&p, 600 * SEC, app_chaos, &ch);
        if (!done)
                for (int k = 0; k < ch.nf; k++)
                        fprintf(stderr,
                                "flow %d: from %d policy %u n %u sent %u got %u closed %d done %d "
                                "rx %s quit %u\n",
                                k, ch.f[k].from, ch.f[k].policy, ch.f[k].n, ch.f[k].sent, ch.f[k].got,
                                ch.f[k].tx_closed, ch.f[k].rx_done, ch.f[k].rx ? "yes" : "no",
                                ch.f[k].rx_quit_after);
        SCHECK(done);
        if (getenv("CHAOS_VERBOSE")) {
                uint32_t msgs = 0, want = 0;
                for (int k = 0; k < ch.nf; k++) {
                        msgs += ch.f[k].got;
                        want += ch.f[k].n;
                }
                fprintf(stderr, "seed %" PRIu64 ": %d flows, %u/%u messages, loss %.3f, %.1f s, %" PRIu64
                                " dgrams, %" PRIu64 " retx\n",
                        seed, ch.nf, msgs, want, netsim_link_of(p.net, 0)->loss, (double)p.now / 1e9,
                        efcp_assoc_stats(p.a[0])->dgrams_out + efcp_assoc_stats(p.a[1])->dgrams_out,
                        efcp_assoc_stats(p.a[0])->pdus_retx + efcp_assoc_stats(p.a[1])->pdus_retx);
        }
        for (int i = 0; i < 2; i++) {
                const efcp_stats *s = efcp_assoc_stats(p.a[i]);
                if (s->pdus_beyond_credit || s->bad_frame)
                        fprintf(stderr, "side %d: beyond credit %" PRIu64 ", bad frames %" PRIu64 "\n", i,
                                s->pdus_beyond_credit, s->bad_frame);
                SCHECK(s->pdus_beyond_credit == 0 && s->bad_frame == 0);
                SCHECK(!efcp_assoc_dead(p.a[i]));
        }
        for (int k = 0; k < ch.nf; k++)
                free(ch.f[k].seen);
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(chaos_life_cycles, 220) {
        netsim_seeds s = netsim_seed_range(10000, 400);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++)
                run_chaos(g_seed);
}
