/*
 * test-efcp-sim.c — the EFCP engine proven over the deterministic network
 * simulator, each scenario over many seeds:
 *
 *   - 10 % loss + 1 % duplication + 1 % corruption + reordering + jitter:
 *     every message of a reliable flow delivered exactly once, intact, in
 *     order (ordered flows); unreliable flows never deliver a duplicate or a
 *     corrupted message, and ordered ones never go backwards;
 *   - a slow receiver is never overrun (nothing ever arrives beyond credit);
 *   - flows sharing a host pair share its bandwidth fairly, and a flow whose
 *     receiver stopped reading does not hold up the others;
 *   - a 30-second blackout is survived and the transfer resumes;
 *   - sequence numbers wrap without harm;
 *   - a lost deallocation is recovered from (retransmission, and the answer
 *     to data for a flow that no longer exists);
 *   - the same seed replays the same run exactly;
 *   - 1 % random loss keeps at least half the loss-free goodput (it is not
 *     taken as congestion), while a queue that overflows is still answered.
 *
 * A failing run prints its seed; NETSIM_SEED=<seed> replays only that seed.
 * IPCF_TEST_QUICK=1 runs fewer seeds (sanitizer builds), and of the
 * random-loss goodput cases each controller with one queue size only.
 */
#include <errno.h>
#include <inttypes.h>

#include "efcp/efcp.h"
#include "support/netsim.h"
#include "support/test.h"

static uint64_t g_seed;

/* CHECK that also names the seed to replay. */
#define SCHECK(cond)                                                                         \
        do {                                                                                 \
                if (!(cond)) {                                                               \
                        fprintf(stderr, "failing seed %" PRIu64 " (replay: NETSIM_SEED=%" PRIu64 \
                                        ")\n", g_seed, g_seed);                              \
                        CHECK(cond);                                                         \
                }                                                                            \
        } while (0)

#define MS 1000000ull
#define SEC 1000000000ull

/* ---- traffic: numbered, self-checking messages ---------------------- */

#define MAX_TFLOWS 4
#define HDR 12 /* flow id, index, length */

typedef struct tflow {
        uint32_t id, policy, port_a, port_b;
        uint32_t n, sent, got, last_index;
        bool got_any;
        size_t max_len;
        uint32_t isn;
        efcp_flow *tx, *rx;
        uint8_t *seen;       /* per message index: delivered once already */
        uint64_t bytes_got;
        bool reader_stopped; /* this flow's application does not read */
        uint64_t read_every; /* >0: the reader takes one message per interval */
        uint64_t next_read;
} tflow;

typedef struct traffic {
        tflow f[MAX_TFLOWS];
        int nf;
        uint64_t stop_sending_at; /* 0: send until n */
        uint64_t watch_from;      /* record the first delivery at or after this time */
        uint64_t resumed_at;
} traffic;

static struct traffic *g_tr; /* the scenario running (for msg_check) */
static uint64_t g_now;

static size_t msg_len(const tflow *t, uint32_t i) {
        uint64_t h = test_hash(&i, sizeof(i), t->id * 7919u + 1);
        return HDR + (size_t)(h % (t->max_len - HDR + 1));
}

static void msg_make(const tflow *t, uint32_t i, uint8_t *buf, size_t len) {
        memcpy(buf, &t->id, 4);
        memcpy(buf + 4, &i, 4);
        uint32_t l = (uint32_t)len;
        memcpy(buf + 8, &l, 4);
        test_fill(buf + HDR, len - HDR, ((uint64_t)t->id << 32) | i);
}

/* Checks a delivered message: intact, never seen, in order if ordered. */
static void msg_check(tflow *t, const uint8_t *buf, int len) {
        SCHECK(len >= HDR);
        uint32_t id, i, l;
        memcpy(&id, buf, 4);
        memcpy(&i, buf + 4, 4);
        memcpy(&l, buf + 8, 4);
        SCHECK(id == t->id);
        SCHECK(i < t->n);
        SCHECK(l == (uint32_t)len && (size_t)len == msg_len(t, i));
        static uint8_t want[70000];
        msg_make(t, i, want, (size_t)len);
        SCHECK(memcmp(buf, want, (size_t)len) == 0);
        SCHECK(!t->seen[i]); /* exactly once */
        t->seen[i] = 1;
        if (t->policy & EFCP_POLICY_ORDERED) {
                if (t->policy & EFCP_POLICY_RELIABLE)
                        SCHECK(i == t->got); /* every one, in order */
                else
                        SCHECK(!t->got_any || i > t->last_index); /* never backwards */
        }
        t->last_index = i;
        t->got_any = true;
        t->got++;
        t->bytes_got += (uint64_t)len;
        if (g_tr->watch_from && !g_tr->resumed_at && g_now >= g_tr->watch_from)
                g_tr->resumed_at = g_now;
}

static void traffic_open(netsim_pair *p, traffic *tr) {
        for (int k = 0; k < tr->nf; k++) {
                tflow *t = &tr->f[k];
                t->seen = calloc(t->n, 1);
                efcp_flow_policy pol = {.flags = t->policy, .isn = t->isn, .isn_random = !t->isn};
                CHECK_OK(efcp_flow_open(p->a[0], t->port_a, t->port_b, &pol, &t->tx));
        }
}

static void traffic_close(traffic *tr) {
        for (int k = 0; k < tr->nf; k++)
                free(tr->f[k].seen);
}

static bool traffic_reliable_done(const traffic *tr) {
        for (int k = 0; k < tr->nf; k++) {
                const tflow *t = &tr->f[k];
                if (t->sent < t->n && !tr->stop_sending_at)
                        return false;
                if ((t->policy & EFCP_POLICY_RELIABLE) && !t->reader_stopped && t->got < t->n &&
                    !tr->stop_sending_at)
                        return false;
        }
        return true;
}

static uint64_t app_traffic(netsim_pair *p, void *arg) {
        traffic *tr = arg;
        static uint8_t buf[70000];
        g_tr = tr;
        g_now = p->now;
        efcp_event ev;
        while (efcp_event_next(p->a[1], &ev))
                if (ev.type == EFCP_EV_FLOW_ALLOCATED)
                        for (int k = 0; k < tr->nf; k++)
                                if (tr->f[k].port_b == ev.local_port)
                                        tr->f[k].rx = efcp_flow_get(p->a[1], ev.local_port);
        uint64_t wake = UINT64_MAX;
        bool sending = !tr->stop_sending_at || p->now < tr->stop_sending_at;
        for (int k = 0; k < tr->nf; k++) {
                tflow *t = &tr->f[k];
                while (sending && t->sent < t->n) {
                        size_t len = msg_len(t, t->sent);
                        if (!efcp_flow_writable(t->tx, len))
                                break;
                        msg_make(t, t->sent, buf, len);
                        SCHECK(efcp_flow_send(t->tx, buf, len) == 0);
                        t->sent++;
                }
                if (!t->rx || t->reader_stopped)
                        continue;
                if (t->read_every) {
                        if (p->now >= t->next_read) {
                                int r = efcp_flow_recv(t->rx, buf, sizeof(buf));
                                if (r >= 0) {
                                        msg_check(t, buf, r);
                                        t->next_read = p->now + t->read_every;
                                }
                        }
                        if (t->next_read > p->now && t->next_read < wake)
                                wake = t->next_read;
                        continue;
                }
                int r;
                while ((r = efcp_flow_recv(t->rx, buf, sizeof(buf))) >= 0)
                        msg_check(t, buf, r);
                SCHECK(r == -EAGAIN);
        }
        if (!tr->stop_sending_at && traffic_reliable_done(tr))
                return 0;
        return wake;
}

static void link_set(netsim_pair *p, const netsim_link *l) {
        netsim_set_link(p->net, 0, l);
        netsim_set_link(p->net, 1, l);
}

/* The hostile link of the issue: 10 % loss, 1 % duplication, 1 % corruption,
 * reordering and jitter. */
static const netsim_link hostile = {
        .delay_ns = 2 * MS,
        .jitter_ns = 500000,
        .rate_bps = 100000000,
        .queue_bytes = 256 * 1024,
        .loss = 0.10,
        .dup = 0.01,
        .corrupt = 0.01,
        .reorder = 0.05,
        .reorder_ns = 3 * MS,
};

static void check_no_violations(netsim_pair *p) {
        for (int i = 0; i < 2; i++) {
                const efcp_stats *s = efcp_assoc_stats(p->a[i]);
                SCHECK(s->pdus_beyond_credit == 0);
                SCHECK(s->bad_frame == 0);
        }
}

/* ---- scenarios ------------------------------------------------------ */

static void run_hostile(uint64_t seed, int cc) {
        efcp_config c;
        efcp_config_default(&c);
        c.cc = (uint32_t)cc;
        netsim_pair p;
        netsim_pair_init(&p, seed, &c);
        link_set(&p, &hostile);
        traffic tr = {.nf = 4};
        uint32_t pols[4] = {EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, EFCP_POLICY_RELIABLE,
                            EFCP_POLICY_ORDERED, 0};
        for (int k = 0; k < 4; k++)
                tr.f[k] = (tflow){.id = (uint32_t)k + 1, .policy = pols[k], .port_a = 100u + (uint32_t)k,
                                  .port_b = 200u + (uint32_t)k, .n = 300, .max_len = 4000};
        traffic_open(&p, &tr);
        SCHECK(netsim_pair_run(&p, 300 * SEC, app_traffic, &tr));
        /* let the unreliable stragglers land, then look again */
        netsim_pair_run(&p, p.now + 1 * SEC, app_traffic, &tr);
        for (int k = 0; k < 4; k++) {
                tflow *t = &tr.f[k];
                if (t->policy & EFCP_POLICY_RELIABLE)
                        SCHECK(t->got == t->n);
                else
                        SCHECK(t->got > t->n / 2); /* most arrive despite 10 % loss */
        }
        const efcp_stats *s1 = efcp_assoc_stats(p.a[1]);
        SCHECK(s1->bad_crc > 0); /* corruption happened and was caught */
        check_no_violations(&p);
        traffic_close(&tr);
        netsim_pair_deinit(&p);
}

TEST_TIMEOUT(hostile_link_newreno, 120) {
        netsim_seeds s = netsim_seed_range(1000, 100);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++)
                run_hostile(g_seed, EFCP_CC_NEWRENO);
}

TEST_TIMEOUT(hostile_link_cubic, 120) {
        netsim_seeds s = netsim_seed_range(2000, 50);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++)
                run_hostile(g_seed, EFCP_CC_CUBIC);
}

/* Bursty loss (Gilbert–Elliott) instead of independent loss. */
TEST_TIMEOUT(bursty_loss, 120) {
        netsim_seeds s = netsim_seed_range(3000, 50);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = hostile;
                l.loss = 0.01;
                l.burst_enter = 0.02;
                l.burst_exit = 0.2;
                l.burst_loss = 0.8;
                link_set(&p, &l);
                traffic tr = {.nf = 2};
                tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                  .port_a = 1, .port_b = 2, .n = 400, .max_len = 3000};
                tr.f[1] = (tflow){.id = 2, .policy = EFCP_POLICY_ORDERED, .port_a = 3, .port_b = 4,
                                  .n = 400, .max_len = 3000};
                traffic_open(&p, &tr);
                SCHECK(netsim_pair_run(&p, 300 * SEC, app_traffic, &tr));
                SCHECK(tr.f[0].got == 400);
                check_no_violations(&p);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
}

/* A slow reader: the sender floods, the receiver takes one message per
 * millisecond. Nothing may ever arrive beyond the credit. */
TEST_TIMEOUT(receiver_never_overrun, 120) {
        netsim_seeds s = netsim_seed_range(4000, 50);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                c.flow_window = 64;
                c.max_msg = 16384;
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                link_set(&p, &hostile);
                traffic tr = {.nf = 2};
                tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                  .port_a = 1, .port_b = 2, .n = 500, .max_len = 3000,
                                  .read_every = 1 * MS};
                tr.f[1] = (tflow){.id = 2, .policy = 0, .port_a = 3, .port_b = 4, .n = 500,
                                  .max_len = 3000, .read_every = 1 * MS};
                traffic_open(&p, &tr);
                SCHECK(netsim_pair_run(&p, 300 * SEC, app_traffic, &tr));
                SCHECK(tr.f[0].got == 500);
                check_no_violations(&p);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
}

/* Fair shares: two bulk flows over one bottleneck get equal goodput, and a
 * third flow whose reader stopped does not hold them up. */
TEST_TIMEOUT(fair_share_and_blocked_flow, 120) {
        netsim_seeds s = netsim_seed_range(5000, 20);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 5 * MS, .jitter_ns = 100000, .rate_bps = 20000000,
                                 .queue_bytes = 64 * 1024, .loss = 0.001};
                link_set(&p, &l);
                traffic tr = {.nf = 3, .stop_sending_at = 6 * SEC};
                for (int k = 0; k < 3; k++)
                        tr.f[k] = (tflow){.id = (uint32_t)k + 1,
                                          .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                          .port_a = 10u + (uint32_t)k, .port_b = 20u + (uint32_t)k,
                                          .n = 1000000, .max_len = k == 0 ? 1400 : 3000};
                tr.f[2].reader_stopped = true;
                traffic_open(&p, &tr);
                netsim_pair_run(&p, 1 * SEC, app_traffic, &tr);
                uint64_t b0 = tr.f[0].bytes_got, b1 = tr.f[1].bytes_got;
                netsim_pair_run(&p, 6 * SEC, app_traffic, &tr);
                double g0 = (double)(tr.f[0].bytes_got - b0), g1 = (double)(tr.f[1].bytes_got - b1);
                double ratio = g0 > g1 ? g0 / g1 : g1 / g0;
                double util = (g0 + g1) * 8 / 5.0 / 20e6;
                if (ratio > 1.15 || util < 0.75)
                        fprintf(stderr, "ratio %.3f utilisation %.3f\n", ratio, util);
                SCHECK(ratio < 1.15);
                SCHECK(util > 0.75);
                check_no_violations(&p);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
}

/* A 30-second blackout in both directions: the association survives (peer
 * timeout 60 s) and the transfer completes afterwards. */
TEST_TIMEOUT(blackout_30s_survived, 120) {
        netsim_seeds s = netsim_seed_range(6000, 30);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = {.delay_ns = 10 * MS, .jitter_ns = 1 * MS, .rate_bps = 10000000,
                                 .queue_bytes = 128 * 1024, .loss = 0.01,
                                 .down_from = 500 * MS, .down_until = 30500 * MS};
                link_set(&p, &l);
                traffic tr = {.nf = 2, .watch_from = 30500 * MS};
                tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                  .port_a = 1, .port_b = 2, .n = 1000, .max_len = 2000};
                tr.f[1] = (tflow){.id = 2, .policy = EFCP_POLICY_RELIABLE, .port_a = 3,
                                  .port_b = 4, .n = 1000, .max_len = 2000};
                traffic_open(&p, &tr);
                SCHECK(netsim_pair_run(&p, 60 * SEC, app_traffic, &tr));
                SCHECK(p.now > 30500 * MS); /* the blackout really was in the way */
                /* the link returned at 30.5 s; the probe timeout is capped at 1 s,
                 * so delivery resumes within about a second (two if both probes
                 * of the first PTO fall to the 1 % loss), not after TCP's 64 s */
                if (tr.resumed_at > 32700 * MS)
                        fprintf(stderr, "resumed at %.3f s\n", (double)tr.resumed_at / 1e9);
                SCHECK(tr.resumed_at && tr.resumed_at < 32700 * MS);
                SCHECK(!efcp_assoc_dead(p.a[0]) && !efcp_assoc_dead(p.a[1]));
                check_no_violations(&p);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
}

/* Sequence numbers start just below 2^32 and wrap during a lossy transfer. */
TEST_TIMEOUT(sequence_wrap, 120) {
        netsim_seeds s = netsim_seed_range(7000, 50);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                link_set(&p, &hostile);
                traffic tr = {.nf = 3};
                tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                  .port_a = 1, .port_b = 2, .n = 600, .max_len = 3000,
                                  .isn = 0xffffff00u};
                tr.f[1] = (tflow){.id = 2, .policy = EFCP_POLICY_RELIABLE, .port_a = 3, .port_b = 4,
                                  .n = 600, .max_len = 3000, .isn = 0xfffffff0u};
                tr.f[2] = (tflow){.id = 3, .policy = EFCP_POLICY_ORDERED, .port_a = 5, .port_b = 6,
                                  .n = 600, .max_len = 3000, .isn = 0xffffffffu};
                traffic_open(&p, &tr);
                SCHECK(netsim_pair_run(&p, 300 * SEC, app_traffic, &tr));
                SCHECK(tr.f[0].got == 600 && tr.f[1].got == 600);
                check_no_violations(&p);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
}

/* ---- deallocation under loss ---------------------------------------- */

static uint64_t app_none(netsim_pair *p, void *arg) {
        (void)p;
        (void)arg;
        return UINT64_MAX;
}

static bool got_dealloc(efcp_assoc *a, uint32_t port, uint32_t *ret_reason) {
        efcp_event ev;
        bool got = false;
        while (efcp_event_next(a, &ev))
                if (ev.type == EFCP_EV_FLOW_DEALLOCATED && ev.local_port == port) {
                        got = true;
                        *ret_reason = ev.reason;
                }
        return got;
}

/* The DEALLOC is lost (the link is dead for a while after the close): it is
 * retransmitted and the peer learns the reason. */
TEST_TIMEOUT(lost_dealloc_retransmitted, 120) {
        netsim_seeds s = netsim_seed_range(8000, 50);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                netsim_link l = hostile;
                link_set(&p, &l);
                efcp_flow *f;
                efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                        .isn_random = true};
                CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
                SCHECK(efcp_flow_send(f, "last words", 10) == 0);
                netsim_pair_run(&p, 1 * SEC, app_none, NULL);
                efcp_flow_close(f, 777);
                /* everything from 0 to 1 is lost for a while */
                netsim_link_of(p.net, 0)->down_from = p.now;
                netsim_link_of(p.net, 0)->down_until = p.now + 300 * MS + netsim_rand(p.net) % (500 * MS);
                netsim_pair_run(&p, p.now + 10 * SEC, app_none, NULL);
                uint32_t reason = 0;
                SCHECK(got_dealloc(p.a[1], 2, &reason));
                SCHECK(reason == 777);
                efcp_flow *r = efcp_flow_get(p.a[1], 2);
                SCHECK(r);
                char buf[16];
                SCHECK(efcp_flow_recv(r, buf, sizeof(buf)) == 10);
                efcp_flow_close(r, 0);
                netsim_pair_deinit(&p);
        }
}

/* One side discards an idle flow (delta-t) and its DEALLOC is lost: the
 * other side, which still believes in the flow, learns it from the DEALLOC
 * that answers its next data. */
TEST_TIMEOUT(idle_flow_discarded_and_answered, 120) {
        netsim_seeds s = netsim_seed_range(9000, 30);
        for (g_seed = s.first; g_seed < s.first + s.count; g_seed++) {
                efcp_config c0, c1;
                efcp_config_default(&c0);
                c1 = c0;
                c1.flow_idle_ns = 3 * SEC;
                netsim_pair p;
                netsim_pair_init2(&p, g_seed, &c0, &c1);
                netsim_link l = hostile;
                link_set(&p, &l);
                efcp_flow *f;
                efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE, .isn_random = true};
                CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &f));
                SCHECK(efcp_flow_send(f, "hi", 2) == 0);
                netsim_pair_run(&p, 1 * SEC, app_none, NULL);
                efcp_flow *r = efcp_flow_get(p.a[1], 2);
                SCHECK(r);
                char buf[8];
                SCHECK(efcp_flow_recv(r, buf, sizeof(buf)) == 2);
                /* from 2 s to 20 s nothing from side 1 reaches side 0 */
                netsim_link_of(p.net, 1)->down_from = 2 * SEC;
                netsim_link_of(p.net, 1)->down_until = 20 * SEC;
                netsim_pair_run(&p, 5 * SEC, app_none, NULL);
                uint32_t reason = 0;
                SCHECK(got_dealloc(p.a[1], 2, &reason) && reason == EFCP_REASON_IDLE);
                SCHECK(!efcp_flow_deallocated(f, NULL)); /* side 0 has not heard */
                SCHECK(efcp_flow_send(f, "anyone?", 7) == 0);
                netsim_pair_run(&p, 40 * SEC, app_none, NULL);
                SCHECK(got_dealloc(p.a[0], 1, &reason));
                SCHECK(reason == EFCP_REASON_IDLE);
                SCHECK(efcp_flow_deallocated(f, NULL));
                efcp_flow_close(r, 0);
                efcp_flow_close(f, 0);
                netsim_pair_deinit(&p);
        }
}

/* The same seed gives the same run, datagram for datagram. */
TEST_TIMEOUT(replay_is_exact, 60) {
        efcp_stats st[2];
        for (int run = 0; run < 2; run++) {
                g_seed = 42;
                efcp_config c;
                efcp_config_default(&c);
                netsim_pair p;
                netsim_pair_init(&p, g_seed, &c);
                link_set(&p, &hostile);
                traffic tr = {.nf = 1};
                tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED,
                                  .port_a = 1, .port_b = 2, .n = 200, .max_len = 5000, .isn = 9};
                traffic_open(&p, &tr);
                SCHECK(netsim_pair_run(&p, 300 * SEC, app_traffic, &tr));
                st[run] = *efcp_assoc_stats(p.a[0]);
                traffic_close(&tr);
                netsim_pair_deinit(&p);
        }
        CHECK_MEM(&st[0], &st[1], sizeof(st[0]));
}

/* ---- goodput under random loss ------------------------------------------- */

#define GBIT(n) ((uint64_t)(n) * 1000000000u)

typedef struct bulk {
        double bps;                 /* goodput from 0.1 s to 0.6 s */
        uint64_t congestion_events, losses_tolerated, lost, ptos;
        uint64_t sent, queue_drops; /* on the data direction's link */
} bulk;

/* One bulk reliable flow over a LAN-like link (rate_bps, 100 µs each way,
 * a queue of queue_bytes) with independent loss both ways. */
static bulk bulk_run(uint64_t seed, double loss, int cc, uint64_t queue_bytes, uint64_t rate_bps) {
        efcp_config c;
        efcp_config_default(&c);
        c.cc = (uint32_t)cc;
        netsim_pair p;
        netsim_pair_init(&p, seed, &c);
        netsim_link l = {.delay_ns = 100000, .rate_bps = rate_bps, .queue_bytes = queue_bytes, .loss = loss};
        link_set(&p, &l);
        traffic tr = {.nf = 1};
        tr.f[0] = (tflow){.id = 1, .policy = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .port_a = 1,
                          .port_b = 2, .n = 1u << 20, .max_len = 16000};
        traffic_open(&p, &tr);
        netsim_pair_run(&p, 100 * MS, app_traffic, &tr);
        uint64_t b0 = tr.f[0].bytes_got;
        netsim_pair_run(&p, 600 * MS, app_traffic, &tr);
        const efcp_stats *st = efcp_assoc_stats(p.a[0]);
        bulk r = {.bps = (double)(tr.f[0].bytes_got - b0) * 8 / 0.5,
                  .congestion_events = st->congestion_events,
                  .losses_tolerated = st->losses_tolerated,
                  .lost = st->pkts_lost,
                  .ptos = st->ptos,
                  .sent = netsim_stats(p.net, 0)->sent,
                  .queue_drops = netsim_stats(p.net, 0)->queue_drops};
        check_no_violations(&p);
        traffic_close(&tr);
        netsim_pair_deinit(&p);
        return r;
}

/* 1 % random loss is not congestion: the goodput stays at least half the
 * loss-free figure (the target for the daemons), with either
 * controller, whether the flow's credit limits it (a 512 KiB queue never
 * fills: the daemons' case, where NewReno alone kept 0.31x) or the link's
 * queue does (64 KiB: NewReno alone kept about a third). Where the queue overflows
 * that is still answered: congestion events, and queue drops a small share
 * of what was sent. */
TEST_TIMEOUT(random_loss_keeps_half_the_goodput, 120) {
        static const uint64_t queues[2] = { 512 * 1024, 64 * 1024 };
        for (int q = 0; q < 2; q++)
                for (int cc = EFCP_CC_NEWRENO; cc <= EFCP_CC_CUBIC; cc++) {
                        if (netsim_quick() && cc != q)
                                continue; /* NewReno with the large queue, CUBIC with the small */
                        g_seed = 77;
                        bulk clean = bulk_run(g_seed, 0, cc, queues[q], GBIT(2)),
                             lossy = bulk_run(g_seed, 0.01, cc, queues[q], GBIT(2));
                        fprintf(stderr,
                                "%s, %llu KiB queue: loss-free %.2f Gbit/s, 1 %% loss %.2f Gbit/s (%.2fx); congestion "
                                "events %llu / %llu, losses tolerated %llu, queue drops %llu of %llu / %llu of %llu\n",
                                cc == EFCP_CC_CUBIC ? "cubic" : "newreno", (unsigned long long)queues[q] / 1024,
                                clean.bps / 1e9, lossy.bps / 1e9, lossy.bps / clean.bps,
                                (unsigned long long)clean.congestion_events, (unsigned long long)lossy.congestion_events,
                                (unsigned long long)lossy.losses_tolerated, (unsigned long long)clean.queue_drops,
                                (unsigned long long)clean.sent, (unsigned long long)lossy.queue_drops,
                                (unsigned long long)lossy.sent);
                        SCHECK(lossy.bps >= 0.5 * clean.bps);
                        SCHECK(clean.bps >= 1.5e9); /* the link is used */
                        SCHECK(lossy.losses_tolerated > 0);
                        SCHECK(clean.queue_drops * 50 < clean.sent && lossy.queue_drops * 50 < lossy.sent);
                        if (queues[q] < 100 * 1024)
                                SCHECK(clean.congestion_events > 0 && lossy.congestion_events > 0);
                }
}

/* 1 % random loss where the flow's credit limits the sender (4 Gbit/s, a
 * queue that never fills), over several seeds: the losses are recovered by
 * fast retransmit, not probe timeouts, and at most one in 20 is taken as
 * congestion, whichever rounds they fall in. Before, a window under 16
 * datagrams tolerated no loss, and one under 50 one per round: a loss or
 * two in the first rounds of slow start left the window at a few
 * datagrams, and NewReno then held it near 30 (two losses in a round
 * halved it again), a third of the goodput (seed 101: 214 congestion
 * events of 712 losses, 0.31x the loss-free goodput), where the other
 * seeds never left slow start's large window (0.86x). */
TEST_TIMEOUT(random_loss_does_not_trap_the_window, 240) {
        bulk clean = bulk_run(100, 0, EFCP_CC_NEWRENO, 512 * 1024, GBIT(4));
        /* Under IPCF_TEST_QUICK only seed 101, the one that trapped the window. */
        netsim_seeds ss = netsim_quick() ? netsim_seed_range(101, 1) : netsim_seed_range(100, 4);
        for (g_seed = ss.first; g_seed < ss.first + ss.count; g_seed++) {
                bulk lossy = bulk_run(g_seed, 0.01, EFCP_CC_NEWRENO, 512 * 1024, GBIT(4));
                fprintf(stderr,
                        "seed %llu: 1 %% loss %.2fx loss-free; %llu lost, %llu taken as congestion, %llu probe "
                        "timeouts, %llu queue drops\n",
                        (unsigned long long)g_seed, lossy.bps / clean.bps, (unsigned long long)lossy.lost,
                        (unsigned long long)lossy.congestion_events, (unsigned long long)lossy.ptos,
                        (unsigned long long)lossy.queue_drops);
                SCHECK(lossy.queue_drops == 0 && lossy.lost > 0);
                SCHECK(lossy.congestion_events * 20 <= lossy.lost);
                SCHECK(lossy.ptos * 100 <= lossy.lost);
                SCHECK(lossy.bps >= 0.5 * clean.bps);
        }
}
