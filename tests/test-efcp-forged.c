/*
 * test-efcp-forged.c — the EFCP engine against forged datagrams, built the
 * way an attacker would build them: from docs/PROTOCOL.md, with a valid CRC
 * (plain mode: anyone can compute one). Each case runs a reliable transfer
 * (the sender closes with reason 4242 once everything is queued) over a
 * simulated LAN and slips forged frames in the middle of it. An on-path
 * attacker appends them to a real datagram and re-seals it (a datagram of
 * its own would need a packet number: one the sender has not used yet takes
 * the real packet's place — see forged_packet_number_collision — and one
 * ahead of it is acknowledged as unsent, which ends the association):
 *
 *   - a PING numbered 2^62 − 1 is dropped (beyond the packet-number jump
 *     bound): the transfer completes;
 *   - a PING a little ahead (within the bound) makes the receiver acknowledge
 *     a number the sender never sent: the association ends, with
 *     PROTOCOL_ERROR on both sides, instead of stalling for ever;
 *   - an ACK of the unsent ends it the same way;
 *   - a forged CLOSE request, or an ACK of a close nobody asked for, changes
 *     nothing (the close is confirmed);
 *   - a forged DEALLOC request with reason 0 (with or without a final
 *     sequence number, in the old 16-byte layout too) changes nothing (the
 *     deallocation is confirmed): the flow ends with 4242, complete;
 *   - a forged DEALLOC request without a final whose DENY the attacker drops
 *     on the path is replaced by the sender's real request (a final wins):
 *     the flow still ends with 4242, complete;
 *   - the sender's CONFIRM and the receiver's next acknowledgements lost for
 *     40 s (longer than the receiver ever gave up before): the flow still
 *     ends with 4242, complete;
 *   - a sender stopped by credit (the receiver reads nothing) whose peer
 *     ended the flow (forged DATA beyond the credit) and whose DEALLOC
 *     request is lost for 5 s learns of the end from the answer to its
 *     repeated BLOCKED: both sides end with PROTOCOL_ERROR, nothing stalls;
 *   - a forged ALLOC for the transfer's ports with another initial sequence
 *     number ends the flow with PROTOCOL_ERROR on both sides (which of the
 *     two is real cannot be told; taking either would shift the stream);
 *   - a forged CREDIT far past anything the receiver could grant is ignored;
 *   - forged DATA beyond the credit of a reliable flow ends the flow with
 *     PROTOCOL_ERROR on both sides rather than being acknowledged and lost;
 *   - a forged datagram taking the packet number the sender uses next makes
 *     the real one a duplicate whose data the sender believes delivered: the
 *     receiver notices (BLOCKED says what was acknowledged) and the flow ends
 *     with DATA_LOST on both sides — reported, never a silent stall;
 *   - data replaced on the path and re-sealed with a valid CRC IS delivered:
 *     in plain mode only authentication can stop it (test-efcp-secure shows
 *     the authenticated mode does).
 */
#include <errno.h>
#include <inttypes.h>

#include "efcp/efcp.h"
#include "efcp/wire.h"
#include "support/netsim.h"
#include "support/test.h"

#define MS 1000000ull
#define SEC 1000000000ull
#define NMSG 3000
#define MSGLEN 1000

static const netsim_link lan = {.delay_ns = 200000, .rate_bps = 200000000ull, .queue_bytes = 1 << 20};

/* ---- a transfer that an attacker interrupts once ---------------------- */

typedef struct xfer {
        efcp_flow *tx, *rx;
        uint32_t sent, got;
        bool tx_closed, rx_done, corrupted;
        uint32_t rx_reason;
        uint64_t inject_at;          /* virtual time of the forgery */
        void (*inject)(netsim_pair *p, struct xfer *x);
        bool injected;
        uint64_t last_pn[2];         /* highest packet number seen towards each node */
        uint32_t last_seq;           /* a DATA sequence number seen towards node 1 */
        bool dead[2];
        uint32_t dead_ev[2], dead_reason[2];
        uint32_t tx_reason;          /* why the sender's flow ended, if it did */
        /* frames to append to the next datagrams towards a node, one item each */
        struct {
                int to;
                uint8_t f[64];
                size_t n;
        } app[4];
        int napp, app_done;
        bool drop_deny;              /* the attacker drops DEALLOC DENY towards node 1 */
        uint64_t drop_answers_until; /* until then it drops every DEALLOC CONFIRM towards
                                        node 1 and every DEALLOC ACK towards node 0 but
                                        the first */
        uint32_t acks_seen;
        bool rx_hold;                /* the receiver reads nothing until its flow ends */
        uint64_t drop_requests_until; /* until then it drops every DEALLOC REQUEST
                                         towards node 0 */
        uint32_t requests_dropped;
} xfer;

/* Queues frames f (n bytes) to ride in the next datagram towards node to. */
static void append(xfer *x, int to, const uint8_t *f, size_t n) {
        x->app[x->napp].to = to;
        memcpy(x->app[x->napp].f, f, n);
        x->app[x->napp++].n = n;
}

static void fill(uint8_t *b, uint32_t i) {
        memcpy(b, &i, 4);
        test_fill(b + 4, MSGLEN - 4, i);
}

/* Records what an eavesdropper learns: packet numbers, sequence numbers. */
static bool tap_watch(netsim_pair *p, int to, uint8_t *buf, size_t *len, void *arg) {
        xfer *x = arg;
        efcp_hdr h;
        if (efcp_wire_get_hdr(buf, *len, &h) == 0 && h.pn > x->last_pn[to])
                x->last_pn[to] = h.pn;
        if (x->app_done < x->napp && x->app[x->app_done].to == to && *len >= EFCP_HDR_LEN + EFCP_CRC_LEN) {
                /* the attacker adds its frames and computes a new CRC */
                size_t body = *len - EFCP_CRC_LEN;
                memcpy(buf + body, x->app[x->app_done].f, x->app[x->app_done].n);
                body += x->app[x->app_done++].n;
                efcp_wire_seal_plain(buf, body);
                *len = body + EFCP_CRC_LEN;
        }
        efcp_frame fr;
        for (size_t off = EFCP_HDR_LEN; *len >= EFCP_HDR_LEN + EFCP_CRC_LEN && off < *len - EFCP_CRC_LEN;) {
                int n = efcp_wire_get_frame(buf + off, *len - EFCP_CRC_LEN - off, &fr);
                if (n <= 0)
                        break;
                if (fr.type == EFCP_FT_DATA && to == 1)
                        x->last_seq = fr.u.data.seq;
                if (fr.type == EFCP_FT_DEALLOC && fr.u.dealloc.step == EFCP_STEP_DENY && to == 1 &&
                    x->drop_deny)
                        return false; /* dropped on the path */
                if (fr.type == EFCP_FT_DEALLOC && to == 0 && fr.u.dealloc.step == EFCP_STEP_REQUEST &&
                    p->now < x->drop_requests_until) {
                        x->requests_dropped++;
                        return false;
                }
                if (fr.type == EFCP_FT_DEALLOC && p->now < x->drop_answers_until &&
                    ((to == 1 && fr.u.dealloc.step == EFCP_STEP_CONFIRM) ||
                     (to == 0 && fr.u.dealloc.step == EFCP_STEP_ACK && x->acks_seen++ > 0)))
                        return false;
                off += (size_t)n;
        }
        return true;
}

static void drain_events(netsim_pair *p, xfer *x) {
        efcp_event ev;
        for (int i = 0; i < 2; i++)
                while (efcp_event_next(p->a[i], &ev)) {
                        if (ev.type == EFCP_EV_FLOW_ALLOCATED && i == 1)
                                x->rx = efcp_flow_get(p->a[1], ev.local_port);
                        if (ev.type == EFCP_EV_PEER_CLOSED || ev.type == EFCP_EV_PEER_TIMEOUT ||
                            ev.type == EFCP_EV_PROTOCOL_ERROR) {
                                x->dead[i] = true;
                                x->dead_ev[i] = ev.type;
                                x->dead_reason[i] = ev.reason;
                        }
                }
}

static uint64_t app_xfer(netsim_pair *p, void *arg) {
        xfer *x = arg;
        static uint8_t buf[4096];
        if (!x->injected && p->now >= x->inject_at) {
                x->injected = true;
                x->inject(p, x);
        }
        drain_events(p, x);
        while (!x->tx_closed && x->sent < NMSG && efcp_flow_writable(x->tx, MSGLEN)) {
                fill(buf, x->sent);
                CHECK_OK(efcp_flow_send(x->tx, buf, MSGLEN));
                x->sent++;
        }
        if (!x->tx_closed && efcp_flow_deallocated(x->tx, &x->tx_reason)) {
                efcp_flow_close(x->tx, 0);
                x->tx_closed = true;
        }
        if (!x->tx_closed && x->sent == NMSG) {
                efcp_flow_close(x->tx, 4242);
                x->tx_closed = true;
        }
        if (x->rx && !x->rx_done && (!x->rx_hold || efcp_flow_deallocated(x->rx, NULL))) {
                int r;
                while ((r = efcp_flow_recv(x->rx, buf, sizeof(buf))) >= 0) {
                        uint8_t want[MSGLEN];
                        fill(want, x->got);
                        if (r != MSGLEN || memcmp(buf, want, MSGLEN) != 0)
                                x->corrupted = true;
                        x->got++;
                }
                if (r == -EPIPE) {
                        CHECK(efcp_flow_deallocated(x->rx, &x->rx_reason));
                        efcp_flow_close(x->rx, 0);
                        x->rx_done = true;
                }
        }
        if (x->dead[0] && x->dead[1])
                return 0;
        if (x->rx_done && x->tx_closed && efcp_flow_get(p->a[0], 1) == NULL)
                return 0;
        return x->injected ? UINT64_MAX : x->inject_at;
}

static void run(xfer *x, uint64_t seed) {
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, seed, &c);
        netsim_set_link(p.net, 0, &lan);
        netsim_set_link(p.net, 1, &lan);
        p.tap = tap_watch;
        p.tap_arg = x;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 1000};
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &x->tx));
        if (!x->inject_at)
                x->inject_at = 40 * MS;
        /* bounded: a stall shows up as "not finished" rather than a hang */
        bool done = netsim_pair_run(&p, 100 * SEC, app_xfer, x);
        if (!done) {
                fprintf(stderr, "stalled: sent %u got %u tx_closed %d rx_done %d dead %d/%d\n", x->sent,
                        x->got, x->tx_closed, x->rx_done, x->dead[0], x->dead[1]);
                for (int i = 0; i < 2; i++) {
                        const efcp_stats *s = efcp_assoc_stats(p.a[i]);
                        fprintf(stderr, "side %d: in %" PRIu64 " out %" PRIu64 " bad_frame %" PRIu64
                                        " dup %" PRIu64 " retx %" PRIu64 " ptos %" PRIu64 " denied %" PRIu64
                                        " beyond %" PRIu64 " dropped %" PRIu64 "\n",
                                i, s->dgrams_in, s->dgrams_out, s->bad_frame, s->dup_packets, s->pdus_retx,
                                s->ptos, s->denied, s->pdus_beyond_credit, s->pdus_dropped);
                }
        }
        CHECK(done);
        drain_events(&p, x);
        netsim_pair_deinit(&p);
}

/* The transfer must be whole and end normally. */
static void check_complete(const xfer *x) {
        CHECK_EQ(x->app_done, x->napp); /* every forgery went out */
        CHECK(!x->dead[0] && !x->dead[1]);
        CHECK(!x->corrupted);
        CHECK_EQ(x->got, NMSG);
        CHECK(x->rx_done);
        CHECK_EQ(x->rx_reason, 4242);
}

/* Sends one forged plain datagram (frames f, n bytes) to node `to`. */
static int forge(netsim_pair *p, int to, uint64_t pn, const uint8_t *f, size_t n) {
        uint8_t d[2048];
        efcp_hdr h = {.type = EFCP_TYPE_PLAIN, .version = EFCP_VERSION, .rx_index = (uint32_t)to, .pn = pn};
        efcp_wire_put_hdr(d, &h);
        memcpy(d + EFCP_HDR_LEN, f, n);
        efcp_wire_seal_plain(d, EFCP_HDR_LEN + n);
        return efcp_input(p->a[to], d, EFCP_HDR_LEN + n + EFCP_CRC_LEN, p->now);
}

/* ---- packet numbers ------------------------------------------------------ */

static void inject_ping_max(netsim_pair *p, xfer *x) {
        uint8_t f[1] = {EFCP_FT_PING};
        CHECK_ERR(forge(p, 1, (UINT64_C(1) << 62) - 1, f, 1), -ERANGE);
        (void)x;
}

TEST_TIMEOUT(forged_ping_far_ahead_dropped, 60) {
        xfer x = {.inject = inject_ping_max};
        run(&x, 1);
        check_complete(&x);
}

static void inject_ping_ahead(netsim_pair *p, xfer *x) {
        uint8_t f[1] = {EFCP_FT_PING};
        CHECK_OK(forge(p, 1, x->last_pn[1] + 1000, f, 1));
}

/* Within the bound the receiver cannot tell; it acknowledges the number, the
 * sender sees an acknowledgement of what it never sent, and the association
 * ends on both sides with the reason: never a silent stall. */
TEST_TIMEOUT(forged_ping_ahead_ends_with_reason, 60) {
        xfer x = {.inject = inject_ping_ahead};
        run(&x, 2);
        CHECK(x.dead[0] && x.dead[1]);
        CHECK_EQ(x.dead_ev[0], EFCP_EV_PROTOCOL_ERROR);
        CHECK_EQ(x.dead_ev[1], EFCP_EV_PEER_CLOSED);
        CHECK_EQ(x.dead_reason[1], EFCP_REASON_PROTOCOL_ERROR);
        CHECK(x.got < NMSG);
}

static void inject_ack_unsent(netsim_pair *p, xfer *x) {
        efcp_ack_range r = {x->last_pn[1] + 100000, x->last_pn[1] + 100000};
        uint8_t f[64];
        append(x, 0, f, efcp_wire_put_ack(f, &r, 1, 0));
        (void)p;
}

TEST_TIMEOUT(ack_of_unsent_ends_with_reason, 60) {
        xfer x = {.inject = inject_ack_unsent};
        run(&x, 3);
        CHECK(x.dead[0] && x.dead[1]);
        CHECK_EQ(x.dead_ev[0], EFCP_EV_PROTOCOL_ERROR);
        CHECK_EQ(x.dead_reason[1], EFCP_REASON_PROTOCOL_ERROR);
}

/* ---- close ------------------------------------------------------------------ */

static void inject_close(netsim_pair *p, xfer *x) {
        uint8_t f[EFCP_CLOSE_LEN];
        append(x, 1, f, efcp_wire_put_close(f, EFCP_STEP_REQUEST, 0));
        (void)p;
}

TEST_TIMEOUT(forged_close_changes_nothing, 60) {
        xfer x = {.inject = inject_close};
        run(&x, 4);
        check_complete(&x);
}

/* An acknowledgement of a close nobody asked for is denied; a confirmation of
 * a request never acknowledged is ignored. */
static void inject_close_ack(netsim_pair *p, xfer *x) {
        uint8_t f[EFCP_CLOSE_LEN];
        append(x, 0, f, efcp_wire_put_close(f, EFCP_STEP_ACK, 0));
        append(x, 1, f, efcp_wire_put_close(f, EFCP_STEP_CONFIRM, 0));
        (void)p;
}

TEST_TIMEOUT(forged_close_answers_change_nothing, 60) {
        xfer x = {.inject = inject_close_ack};
        run(&x, 5);
        check_complete(&x);
}

/* ---- deallocation ------------------------------------------------------------ */

static void inject_dealloc(netsim_pair *p, xfer *x) {
        uint8_t f[64];
        /* dst = the receiver's port 2, src = the sender's port 1, reason 0 */
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_REQUEST, 0, 2, 1, EFCP_REASON_NORMAL, 0));
        /* with a final sequence number just past what was seen */
        append(x, 1, f,
               efcp_wire_put_dealloc(f, EFCP_STEP_REQUEST, EFCP_DEALLOC_FINAL, 2, 1, 0, x->last_seq + 1));
        /* the 16-byte layout of the first protocol version */
        uint8_t old[16] = {EFCP_FT_DEALLOC, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0};
        append(x, 1, old, sizeof(old));
        (void)p;
}

TEST_TIMEOUT(forged_dealloc_changes_nothing, 60) {
        xfer x = {.inject = inject_dealloc};
        run(&x, 6);
        check_complete(&x);
}

/* A forged request without a final, whose denial the attacker drops on the
 * path, stays pending at the receiver until the sender's real request comes:
 * the real one (with its final) takes its place, and the flow ends with the
 * sender's reason, complete — not with the forged reason once the sender's
 * flow is gone and "confirms" the stale request. */
static void inject_dealloc_deny_dropped(netsim_pair *p, xfer *x) {
        uint8_t f[64];
        x->drop_deny = true;
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_REQUEST, 0, 2, 1, EFCP_REASON_NORMAL, 0));
        (void)p;
}

TEST_TIMEOUT(forged_dealloc_with_its_denial_dropped_changes_nothing, 60) {
        xfer x = {.inject = inject_dealloc_deny_dropped, .inject_at = 100 * MS};
        run(&x, 12);
        check_complete(&x);
}

/* An ACK of a deallocation the sender never asked for is denied; a CONFIRM
 * of a request the receiver never saw is ignored. */
static void inject_dealloc_answers(netsim_pair *p, xfer *x) {
        uint8_t f[64];
        append(x, 0, f, efcp_wire_put_dealloc(f, EFCP_STEP_ACK, EFCP_DEALLOC_FINAL, 1, 2, 0, 1000));
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_CONFIRM, 0, 2, 1, 0, 0));
        (void)p;
}

TEST_TIMEOUT(forged_dealloc_answers_change_nothing, 60) {
        xfer x = {.inject = inject_dealloc_answers};
        run(&x, 7);
        check_complete(&x);
}

/* A forged request without a final and its forged CONFIRM, with NORMAL and
 * with an application's reason: only the owner of a live flow ends it so, and
 * it sends its final, so both are refused; taken, they ended the receiver's
 * flow with the forged reason in the middle of the transfer, looking like the
 * application's end (fuzz-efcp-stall: 42 of 64 messages, reason 65536). */
static void inject_dealloc_and_confirm(netsim_pair *p, xfer *x) {
        uint8_t f[64];
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_REQUEST, 0, 2, 1, 65536, 0));
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_CONFIRM, 0, 2, 1, 65536, 0));
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_REQUEST, 0, 2, 1, EFCP_REASON_NORMAL, 0));
        append(x, 1, f, efcp_wire_put_dealloc(f, EFCP_STEP_CONFIRM, 0, 2, 1, EFCP_REASON_NORMAL, 0));
        (void)p;
}

TEST_TIMEOUT(forged_request_and_confirm_without_final_change_nothing, 60) {
        xfer x = {.inject = inject_dealloc_and_confirm};
        run(&x, 14);
        check_complete(&x);
}

/* The sender's CONFIRM is lost, and so are the receiver's next
 * acknowledgements for longer than it used to try (8 of them): the sender
 * has confirmed and sends nothing more on the flow, so a receiver that gave
 * up kept its flow open for ever. It probes until answered: the flow ends
 * with 4242 once the path heals. */
static void inject_nothing(netsim_pair *p, xfer *x) { (void)p, (void)x; }

TEST_TIMEOUT(lost_confirm_and_acks_still_end_the_flow, 60) {
        xfer x = {.inject = inject_nothing, .drop_answers_until = 40 * SEC};
        run(&x, 13);
        check_complete(&x);
        CHECK(x.acks_seen > 9);
}

/* ---- credit and data ------------------------------------------------------------ */

static void inject_credit(netsim_pair *p, xfer *x) {
        uint8_t f[EFCP_FLOWCTL_LEN];
        append(x, 0, f, efcp_wire_put_fc(f, EFCP_FT_CREDIT, 1, 2, x->last_seq + 100000));
        (void)p;
}

TEST_TIMEOUT(forged_credit_ignored, 60) {
        xfer x = {.inject = inject_credit};
        run(&x, 8);
        check_complete(&x);
}

static void inject_data_beyond(netsim_pair *p, xfer *x) {
        uint8_t f[64];
        size_t n = efcp_wire_put_data_hdr(f, EFCP_DF_FIRST | EFCP_DF_LAST, 4, 2, 1, x->last_seq + 5000);
        memcpy(f + n, "evil", 4);
        append(x, 1, f, n + 4);
        (void)p;
}

/* The receiver cannot take it, and must not acknowledge it as if it had:
 * the flow ends on both sides with the reason (never silent loss). */
TEST_TIMEOUT(data_beyond_credit_ends_flow_with_reason, 60) {
        xfer x = {.inject = inject_data_beyond};
        run(&x, 9);
        CHECK(x.rx_done);
        CHECK_EQ(x.rx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK_EQ(x.tx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK(!x.corrupted);
}

/* The receiver reads nothing, so the sender fills its credit window (every
 * PDU acknowledged) and waits to be told it may write. Forged DATA beyond
 * the credit then ends the receiver's flow with PROTOCOL_ERROR, and its
 * DEALLOC request (flow-less: repeated only when the sender's data arrives)
 * is dropped on the path for 5 s. The sender sends no data while stopped:
 * its BLOCKED, repeated on a timer and answered with the request again,
 * is what tells it (before, it waited for ever). */
TEST_TIMEOUT(a_sender_stopped_by_credit_hears_of_a_lost_end, 60) {
        xfer x = {.inject = inject_data_beyond, .rx_hold = true, .drop_requests_until = 5 * SEC};
        run(&x, 14);
        CHECK(x.requests_dropped >= 1);
        CHECK(x.rx_done);
        CHECK_EQ(x.rx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK(x.tx_closed);
        CHECK_EQ(x.tx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK(x.sent < NMSG);
        CHECK(!x.corrupted);
}

/* An ALLOC for the transfer's own ports with another initial sequence
 * number (a forged one came first, or a forged repeat): the receiver cannot
 * tell which is real, and either would shift or cut the stream. */
static void inject_alloc_other_isn(netsim_pair *p, xfer *x) {
        uint8_t f[EFCP_ALLOC_LEN];
        append(x, 1, f, efcp_wire_put_alloc(f, EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, 2, 1, 5000, 64, 4096));
        (void)p;
}

TEST_TIMEOUT(alloc_disagreeing_on_the_start_ends_flow_with_reason, 60) {
        xfer x = {.inject = inject_alloc_other_isn};
        run(&x, 15);
        CHECK(x.rx_done);
        CHECK_EQ(x.rx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK_EQ(x.tx_reason, EFCP_REASON_PROTOCOL_ERROR);
        CHECK(!x.corrupted);
}

static void inject_collision(netsim_pair *p, xfer *x) {
        uint8_t f[1] = {EFCP_FT_PING};
        CHECK_OK(forge(p, 1, x->last_pn[1] + 1, f, 1));
}

TEST_TIMEOUT(forged_packet_number_collision_reported, 60) {
        xfer x = {.inject = inject_collision};
        run(&x, 11);
        CHECK(x.rx_done);
        CHECK_EQ(x.rx_reason, EFCP_REASON_DATA_LOST);
        CHECK_EQ(x.tx_reason, EFCP_REASON_DATA_LOST);
        CHECK(x.got < NMSG);
        CHECK(!x.corrupted);
}

/* ---- the limit of plain mode ---------------------------------------------------- */

typedef struct reseal {
        xfer *x;
        bool done;
} reseal;

/* Replaces the first byte of the first DATA payload towards node 1 after
 * 40 ms and recomputes the CRC, as anyone on the path can. */
static bool tap_reseal(netsim_pair *p, int to, uint8_t *buf, size_t *len, void *arg) {
        reseal *r = arg;
        tap_watch(p, to, buf, len, r->x);
        if (r->done || to != 1 || p->now < 40 * MS)
                return true;
        efcp_frame fr;
        for (size_t off = EFCP_HDR_LEN; off < *len - EFCP_CRC_LEN;) {
                int n = efcp_wire_get_frame(buf + off, *len - EFCP_CRC_LEN - off, &fr);
                if (n <= 0)
                        break;
                if (fr.type == EFCP_FT_DATA && fr.u.data.len > 8) {
                        buf[off + EFCP_DATA_HDR_LEN + 8] ^= 0xff;
                        efcp_wire_seal_plain(buf, *len - EFCP_CRC_LEN);
                        r->done = true;
                        break;
                }
                off += (size_t)n;
        }
        return true;
}

/* Plain mode: the CRC only catches noise. The replaced data is delivered and
 * both ends report success — documented, and the reason plain mode is for
 * benchmarks only. */
TEST_TIMEOUT(plain_mode_cannot_stop_resealed_data, 60) {
        xfer x = {.inject = inject_close_ack, .inject_at = UINT64_MAX - 1};
        efcp_config c;
        efcp_config_default(&c);
        netsim_pair p;
        netsim_pair_init(&p, 10, &c);
        netsim_set_link(p.net, 0, &lan);
        netsim_set_link(p.net, 1, &lan);
        reseal r = {.x = &x};
        p.tap = tap_reseal;
        p.tap_arg = &r;
        efcp_flow_policy pol = {.flags = EFCP_POLICY_RELIABLE | EFCP_POLICY_ORDERED, .isn = 1000};
        CHECK_OK(efcp_flow_open(p.a[0], 1, 2, &pol, &x.tx));
        x.injected = true;
        CHECK(netsim_pair_run(&p, 100 * SEC, app_xfer, &x));
        CHECK(r.done);
        CHECK_EQ(x.got, NMSG);
        CHECK_EQ(x.rx_reason, 4242);
        CHECK(x.corrupted); /* the limitation, shown */
        netsim_pair_deinit(&p);
}
