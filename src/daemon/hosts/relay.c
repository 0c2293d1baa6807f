/*
 * relay.c — the relay end (relay.h): a daemon end (flows/broker.h) on one
 * side of a flow, pumped into and out of an EFCP flow.
 *
 * ONE PUMP (relay_pump), run on every wake-up of the ring (the bport's
 * callback) and of the engine flow (the link's ready list):
 *   out: records from the ring into the engine while it takes them;
 *   in:  messages from the engine into the ring while it has room;
 *   then the ends: the local side ended and everything it wrote went out
 *   (forward the end), or the remote side ended and everything it sent is
 *   in the ring (write the end record: the other host's reason, unless the
 *   engine cut the flow itself, DATA_LOST above all: then the cut's, and a
 *   record it left unfinished is given up).
 * The local side's end is looked at BEFORE its ring is read (an acquire of
 * its end record, written after its last commit): a ring then found empty
 * holds nothing it wrote. Looked at after, a record committed between the
 * last read and the look would be left behind, the end forwarded ahead of
 * it (the other host's reader lost the last message).
 * Each direction does at most RELAY_BUDGET messages per pump; a pump that
 * stops with work left kicks itself (after the loop's other work), so one
 * busy flow holds up nobody. A pump that moved a message and left nothing to
 * do may start a SPIN window (relay_spin: the answer is watched for instead
 * of slept for).
 */
#include "daemon/hosts/relay.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "common/growfifo.h"
#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/flows/broker.h"

#define RELAY_BUDGET 256
/* After a message was delivered to the local process, watch its ring this
 * long for the answer before sleeping (SPIN below). */
#define RELAY_SPIN_NS 50000u
/* Misses in a row after which the relay stops spinning for a while, and
 * the longest while (deliveries without a spin). */
#define RELAY_SPIN_MISSES 2u
#define RELAY_SPIN_SKIP_MAX 1024u
enum { SPIN_LOCAL, SPIN_REMOTE };

struct relay {
        hostrec *h;                    /* NULL once its host went down */
        bport *b;                      /* our side of the shared-memory flow */
        efcp_flow *ef;                 /* NULL once closed here or gone with the host */
        uint32_t lport, rport;
        struct idmap_node rnode;       /* id: rport, in h->relays_by_rport */
        struct dlist link;             /* h->relays */
        bool reliable;
        bool started;
        /* out: the record being sent, and how much of it went */
        size_t out_off;
        /* in: a record reserved in the ring, being filled piece by piece */
        bool in_open;
        uint8_t *in_rec;
        uint32_t in_total, in_off;
        uint64_t dropped;              /* datagrams given up (a piece lost) */
        uint64_t delivered;            /* records written into the ring */
        uint64_t sent;                 /* records taken from the ring */
        /* the other host's DEALLOC */
        bool remote_said;
        uint32_t r_code;
        char r_reason[IPCF_REASON_MAX + 1];
        loop_timer wait;               /* for r_reason after the engine's end */
        bool waiting;                  /* wait armed once (its end decides) */
        bool done;                     /* ended: only freeing is left */
        bool in_pump;
        bool need_arm;                 /* the ring was found empty: arm or watch it */
        /* SPIN: watching the local ring for an answer */
        loop_spin spin;
        int spin_kind;                 /* SPIN_LOCAL, SPIN_REMOTE: the answer from where */
        unsigned spin_miss[2];         /* windows of each kind in a row that ended without one */
        unsigned spin_skip[2];         /* windows of each kind left out before the next */
        uint64_t spin_hits, spin_misses;
        /* a mailbox receiver's channel (relay.h MAILBOX RECEIVER) */
        bool receiver;                 /* held or reporting */
        bool held;                     /* on the mailbox's host */
        growfifo unread;               /* in flight unread, oldest first: on a held relay
                                        * the ring's mark after each record sent, on a
                                        * reporting one each delivered record's ring
                                        * position (in .tail); at most RELAY_HELD_MAX */
        uint64_t read_total;           /* records the receiving process read, in all */
        uint64_t reported;             /* reporting: read_total as last told */
        /* a mailbox sender's channel (relay.h MAILBOX SENDER) */
        bool sender;                   /* telling or counting */
        bool telling;                  /* on the mailbox's host */
        uint64_t told;                 /* records receivers took, as last told (heard) */
        uint64_t tell_ns;              /* telling: the next look after this long */
        loop_timer tell;               /* telling: that look */
};

static void relay_pump(relay *r);
static void relay_free(relay *r);

static void relay_on_ring(bport *b) { relay_pump(b->owner); }

static void relay_on_wait(loop_timer *t) {
        relay *r = container_of(t, relay, wait);
        relay_pump(r);
}

static void relay_on_tell(loop_timer *t);

/* SPIN's end: the local process wrote (ready), or the window closed (a
 * miss: no answer within it). RELAY_SPIN_MISSES misses in a row of one kind
 * stop the spinning of that kind for 4, 8, ... RELAY_SPIN_SKIP_MAX windows
 * (a local process that answers at once beside a host that answers late
 * keeps its windows). */
static bool relay_spin_ready(loop_spin *s) { return bport_rx_ready(container_of(s, relay, spin)->b); }

static void relay_spin_hit(relay *r) {
        r->spin_miss[r->spin_kind] = 0;
        r->spin_hits++;
}

static void relay_spin_fn(loop_spin *s) {
        relay *r = container_of(s, relay, spin);
        if (bport_rx_ready(r->b)) {
                if (r->spin_kind == SPIN_LOCAL)
                        relay_spin_hit(r);
        } else {
                unsigned *miss = &r->spin_miss[r->spin_kind];
                r->spin_misses++;
                if (++*miss >= RELAY_SPIN_MISSES)
                        r->spin_skip[r->spin_kind] = MIN(4u << MIN(*miss - RELAY_SPIN_MISSES, 8u), RELAY_SPIN_SKIP_MAX);
        }
        relay_pump(r);
}

relay *relay_new(hostrec *h, const cred *peer, const char *peer_prog, bool reliable) {
        relay *r = calloc(1, sizeof(*r));
        if (!r)
                return NULL;
        r->b = bport_new(the_hosts.d, peer, peer_prog, relay_on_ring, r);
        if (!r->b) {
                free(r);
                return NULL;
        }
        r->h = h;
        r->reliable = reliable;
        dlist_init(&r->link);
        loop_timer_init(&r->wait, relay_on_wait);
        loop_timer_init(&r->tell, relay_on_tell);
        loop_spin_init(&r->spin, relay_spin_ready, relay_spin_fn);
        growfifo_init(&r->unread, sizeof(ring_mark));
        return r;
}

void relay_set_receiver(relay *r, bool held) {
        r->receiver = true;
        r->held = held;
}

void relay_set_sender(relay *r, bool here) {
        r->sender = true;
        r->telling = here;
        r->tell_ns = RELAY_TELL_NS;
}

void relay_qos(ipcf_qos *q) { q->spin_us = 0; }

void relay_spec(relay *r, flow_end_spec *ret, const cred *who, const char *prog) {
        bport_spec(r->b, ret, who, prog, the_hosts.d->pid);
        ret->host = r->h->p->name;
}

relay *relay_by_rport(hostrec *h, uint32_t rport) {
        struct idmap_node *n = idmap_find(&h->relays_by_rport, rport);
        return n ? container_of(n, relay, rnode) : NULL;
}

int relay_start(relay *r, flow *f, efcp_flow *ef, uint32_t lport, uint32_t rport) {
        hostrec *h = r->h;
        if (!ef) {
                uint32_t pol = EFCP_POLICY_ORDERED | (r->reliable ? EFCP_POLICY_RELIABLE : 0);
                int e = hlink_flow_open(h->p, lport, rport, pol, r, &ef);
                if (e < 0)
                        return e;
        } else {
                hlink_flow_adopt(h->p, ef, r);
        }
        r->ef = ef;
        r->lport = lport;
        r->rport = rport;
        r->rnode.id = rport;
        if (idmap_add(&h->relays_by_rport, &r->rnode) < 0) {
                hlink_flow_close(h->p, ef, EFCP_REASON_NO_RESOURCES);
                r->ef = NULL;
                return -ENOMEM;
        }
        dlist_add_tail(&h->relays, &r->link);
        h->n_relays++;
        r->started = true;
        f->host = h->p->name;
        if (r->held)
                bport_hold(r->b); /* before anything is consumed */
        /* our consumer starts armed (the client may write before we look) */
        bport_arm_rx(r->b);
        relay_pump(r);
        return 0;
}

void relay_discard(relay *r) { relay_free(r); }

/* Leave the host's books (the flow no longer relays). */
static void relay_unlink(relay *r) {
        if (!r->started || !r->h)
                return;
        idmap_del(&r->h->relays_by_rport, &r->rnode);
        dlist_del(&r->link);
        r->h->n_relays--;
}

/* The one way a relay goes, started or not: out of the host's books, its
 * timer and spin stopped, our side of the flow closed (bport_free: a side
 * not ended yet ends "closed"; at shutdown it only closes), its memory
 * freed after this loop round (a callback of this round may still hold r:
 * done tells it). */
static void relay_free(relay *r) {
        if (r->started)
                log_debug("relay %u/%u: %llu delivered, spins answered %llu, run out %llu", r->lport, r->rport,
                          (unsigned long long)r->delivered, (unsigned long long)r->spin_hits,
                          (unsigned long long)r->spin_misses);
        r->done = true;
        relay_unlink(r);
        r->h = NULL;
        r->ef = NULL;
        loop_timer_cancel(the_hosts.d->loop, &r->wait);
        loop_timer_cancel(the_hosts.d->loop, &r->tell);
        loop_spin_cancel(&r->spin);
        r->b = bport_free(r->b);
        growfifo_free(&r->unread);
        loop_defer_free(the_hosts.d->loop, r);
}

/* End our side with (code, reason) for the local client, close the engine
 * flow (efcp_reason) if it is open, and go (a relay that never started
 * has none). */
static void relay_finish(relay *r, uint32_t code, const char *reason, uint32_t efcp_reason) {
        if (r->done)
                return;
        r->done = true;
        if (r->ef && r->h)
                hlink_flow_close(r->h->p, r->ef, efcp_reason);
        r->ef = NULL;
        bport_end(r->b, code, reason);
        relay_free(r);
}

void relay_fail(relay *r, uint32_t code, const char *reason) { relay_finish(r, code, reason, EFCP_REASON_NORMAL); }

/* The other daemon broke the relay's wire on this flow: end it alone. */
static void relay_broken(relay *r, const char *what) {
        log_debug("relay %u/%u: %s: ending the flow", r->lport, r->rport, what);
        relay_finish(r, IPCF_END_PROTOCOL, "the other host broke the flow protocol", EFCP_REASON_PROTOCOL_ERROR);
}

/* ---- out: ring -> engine ----------------------------------------------------- */

/* Returns true when the ring is drained (nothing more to send now). */
static bool relay_out(relay *r) {
        for (int n = 0; n < RELAY_BUDGET; n++) {
                if (!r->ef)
                        return true;
                if (r->held && r->out_off == 0 && growfifo_room(&r->unread, RELAY_HELD_MAX) < 0)
                        return false; /* RELAY_HELD_MAX unread there: its CONSUMED pumps us */
                const void *rec;
                ssize_t len = bport_peek(r->b, &rec);
                if (len == -EAGAIN) {
                        /* armed at the pump's end, unless a spin watches
                         * the ring instead (relay_pump) */
                        r->need_arm = true;
                        return true;
                }
                if (len < 0) {
                        /* the local client broke its ring (-EPROTO): it ended
                         * its own flow; nothing more comes from it */
                        return true;
                }
                size_t off = r->out_off, chunk = MIN((size_t)len - off, (size_t)RELAY_CHUNK);
                /* flags, then the record's length on its first piece, else
                 * the piece's offset in it */
                uint8_t hdr[RELAY_HDR_MAX];
                uint32_t word = off == 0 ? (uint32_t)len : (uint32_t)off;
                hdr[0] = (uint8_t)((off == 0 ? RELAY_FIRST : 0) | (off + chunk == (size_t)len ? RELAY_LAST : 0));
                hdr[1] = (uint8_t)(word >> 24);
                hdr[2] = (uint8_t)(word >> 16);
                hdr[3] = (uint8_t)(word >> 8);
                hdr[4] = (uint8_t)word;
                struct iovec iov[2] = { { hdr, RELAY_HDR_MAX }, { (uint8_t *)rec + off, chunk } };
                int e = efcp_flow_sendv(r->ef, iov, 2);
                if (e == -EAGAIN)
                        return false; /* no credit: the ready list says when */
                if (e < 0)
                        return true;  /* the flow is over: the in side sees it */
                if (off + chunk == (size_t)len) {
                        bport_consume(r->b);
                        if (r->held)
                                *(ring_mark *)growfifo_push(&r->unread) = bport_mark(r->b); /* published once read */
                        r->sent++;
                        r->out_off = 0;
                } else {
                        r->out_off = off + chunk;
                }
        }
        bport_kick(r->b);
        return false;
}

/* ---- in: engine -> ring -------------------------------------------------------- */

/* Take the next engine message and drop it (a piece of a datagram whose
 * record was given up). */
static void relay_skip(relay *r) {
        uint8_t one;
        struct iovec iov = { &one, 1 };
        int len = efcp_flow_next_len(r->ef);
        uint8_t *tmp = len > 1 ? malloc((size_t)len) : NULL;
        if (tmp)
                iov = (struct iovec){ tmp, (size_t)len };
        efcp_flow_recvv(r->ef, &iov, 1);
        free(tmp);
        r->dropped++;
}

/* Returns 1 when the engine has nothing more now, 0 when the ring is full
 * (or the budget is spent), -EPIPE when the other side ended and every
 * message is in the ring (or the flow broke). On a reliable flow a piece out
 * of place is the other daemon's fault (the flow ends); on an unreliable one
 * (datagrams) pieces may be lost: a record missing one is given up, never
 * delivered in part. */
static int relay_in(relay *r) {
        for (int n = 0; n < RELAY_BUDGET; n++) {
                if (!r->ef)
                        return -EPIPE;
                uint8_t hdr[RELAY_HDR_MAX];
                int k = efcp_flow_peek(r->ef, hdr, sizeof(hdr));
                if (k == -EAGAIN)
                        return 1;
                if (k < 0)
                        return -EPIPE;
                int len = efcp_flow_next_len(r->ef);
                if (k < RELAY_HDR_MAX || (hdr[0] & ~(RELAY_FIRST | RELAY_LAST))) {
                        relay_broken(r, "a bad piece header");
                        return -EPIPE;
                }
                bool first = hdr[0] & RELAY_FIRST, last = hdr[0] & RELAY_LAST;
                uint32_t word = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
                size_t piece = (size_t)len - RELAY_HDR_MAX;
                if (first && r->in_open) {
                        if (r->reliable) {
                                relay_broken(r, "a record before the last one ended");
                                return -EPIPE;
                        }
                        r->in_open = false; /* the rest of that datagram was lost */
                        r->dropped++;
                }
                if (!first && (!r->in_open || word != r->in_off || piece > r->in_total - r->in_off ||
                               (last && r->in_off + piece != r->in_total))) {
                        if (r->reliable) {
                                relay_broken(r, "a piece out of place");
                                return -EPIPE;
                        }
                        r->in_open = false; /* give the datagram up */
                        relay_skip(r);
                        continue;
                }
                void *dst;
                uint32_t total = r->in_total;
                if (first) {
                        total = word;
                        if (total > r->b->qos.max_msg_size || piece > total || (last && piece != total) ||
                            (!last && piece == total)) {
                                relay_broken(r, "a record of a bad length");
                                return -EPIPE;
                        }
                        int e = bport_reserve(r->b, total, &dst);
                        if (e == -EAGAIN) {
                                if (bport_arm_tx(r->b, total))
                                        continue; /* room came while arming */
                                return 0; /* the reader consumes: our TX ear rings */
                        }
                        if (e < 0) {
                                relay_broken(r, "a record the ring cannot take");
                                return -EPIPE;
                        }
                        if (r->receiver && !r->held && growfifo_room(&r->unread, RELAY_HELD_MAX) < 0) {
                                /* the other relay holds at most RELAY_HELD_MAX */
                                relay_broken(r, "more records unread than the other host holds");
                                return -EPIPE;
                        }
                        r->in_rec = dst;
                        r->in_total = total;
                        r->in_off = 0;
                }
                struct iovec iov[2] = { { hdr, RELAY_HDR_MAX }, { r->in_rec + r->in_off, piece } };
                efcp_flow_recvv(r->ef, iov, 2);
                r->in_off += (uint32_t)piece;
                r->in_open = !last;
                if (last) {
                        uint64_t pos = bport_commit(r->b, total);
                        if (r->receiver && !r->held)
                                *(ring_mark *)growfifo_push(&r->unread) = (ring_mark){ .tail = pos };
                        r->delivered++;
                }
        }
        bport_kick(r->b);
        return 0;
}

/* ---- ends ---------------------------------------------------------------------- */

/* What an engine reason means to the application, when no DEALLOC said more. */
static void relay_reason_of(uint32_t why, uint32_t *ret_code, const char **ret_text) {
        *ret_code = IPCF_END_PEER_DIED;
        switch (why) {
        case EFCP_REASON_PEER_TIMEOUT: *ret_text = "host unreachable"; return;
        case EFCP_REASON_PEER_RESTARTED: *ret_text = "peer host restarted"; return;
        case EFCP_REASON_PEER_CLOSED: *ret_text = "host closed the association"; return;
        case EFCP_REASON_DATA_LOST: *ret_code = IPCF_END_PROTOCOL; *ret_text = "data lost between hosts"; return;
        case EFCP_REASON_PROTOCOL_ERROR: *ret_code = IPCF_END_PROTOCOL; *ret_text = "the other host broke the protocol"; return;
        case EFCP_REASON_NO_RESOURCES: *ret_text = "the other host ran out of resources"; return;
        default:
                if (why >= EFCP_REASON_USER && why - EFCP_REASON_USER <= IPCF_END_PROTOCOL) {
                        *ret_code = why - EFCP_REASON_USER;
                        *ret_text = "";
                        return;
                }
                *ret_text = "the other host ended the flow";
        }
}

/* Reporting (relay.h MAILBOX RECEIVER): count the records our process has
 * read since, and tell the other host, whose relay then publishes that far;
 * be rung by its next read while records are unread. */
static void relay_report(relay *r) {
        if (!r->receiver || r->held)
                return;
        if (r->unread.n)
                bport_want_tx(r->b); /* before looking: a read after it rings */
        while (r->unread.n && bport_passed(r->b, ((ring_mark *)growfifo_at(&r->unread, 0))->tail)) {
                growfifo_pop(&r->unread);
                r->read_total++;
        }
        if (r->read_total != r->reported && r->h) {
                hw_msg m = { .type = HW_CONSUMED, .port = r->lport, .count = r->read_total };
                if (hlink_send(r->h->p, &m) == 0)
                        r->reported = r->read_total; /* else again at the next pump */
        }
}

void relay_on_consumed(relay *r, uint64_t count) {
        if (!r->held || r->done || count == r->read_total)
                return;
        if (count < r->read_total || count - r->read_total > r->unread.n) {
                relay_broken(r, "a count of records read that were never sent");
                return;
        }
        ring_mark m = { 0 };
        while (r->read_total < count) {
                m = *(ring_mark *)growfifo_at(&r->unread, 0);
                growfifo_pop(&r->unread);
                r->read_total++;
        }
        bport_publish_at(r->b, m); /* the broker: taken */
        relay_pump(r);
}

/* Telling (relay.h MAILBOX SENDER): the broker's count of this flow's
 * records that receivers took (it writes it in the flow's header, where a
 * local sender reads it), as far as it moved, to the sender's host. */
static void relay_tell_now(relay *r) {
        if (!r->telling || r->done || !r->h || !r->b->mem)
                return;
        uint64_t n = atomic_load_explicit(&flow_hdr_of(r->b->mem)->broker.delivered, memory_order_acquire);
        if (n == r->told)
                return;
        hw_msg m = { .type = HW_DELIVERED, .port = r->lport, .count = n };
        if (hlink_send(r->h->p, &m) == 0)
                r->told = n; /* else again at the next look */
        r->tell_ns = RELAY_TELL_NS;
}

/* Look again after tell_ns while records written for the broker are not
 * all counted taken (none: no look, until more come). */
static void relay_tell_later(relay *r) {
        if (r->telling && !r->done && r->told < r->delivered && !loop_timer_armed(&r->tell))
                loop_timer_arm(the_hosts.d->loop, &r->tell, now_ns() + r->tell_ns);
}

/* A look: one that finds the count where it was waits twice as long for
 * the next (at most RELAY_TELL_MAX_NS: a mailbox nobody takes from costs a
 * look in that long); one that tells waits RELAY_TELL_NS. */
static void relay_on_tell(loop_timer *t) {
        relay *r = container_of(t, relay, tell);
        uint64_t before = r->told;
        relay_tell_now(r);
        if (r->told == before)
                r->tell_ns = MIN(2 * r->tell_ns, RELAY_TELL_MAX_NS);
        relay_tell_later(r);
}

void relay_on_delivered(relay *r, uint64_t count) {
        if (!r->sender || r->telling || r->done || count == r->told)
                return;
        if (count < r->told || count > r->sent) {
                relay_broken(r, "a count of records taken that were never sent");
                return;
        }
        r->told = count;
        /* where our sender's library reads it, as a local broker writes it */
        if (r->b->mem)
                atomic_store_explicit(&flow_hdr_of(r->b->mem)->broker.delivered, count, memory_order_release);
}

/* The local client ended: once everything it wrote went to the engine, tell
 * the other host (its reason) and close the engine flow after its data. */
static void relay_local_end(relay *r) {
        const struct flow_hdr *fh = flow_hdr_of(r->b->mem);
        const struct flow_end *e = &fh->end[1 - r->b->side];
        uint32_t code = atomic_load_explicit(&e->code, memory_order_acquire);
        char reason[IPCF_REASON_MAX + 1];
        memcpy(reason, e->reason, sizeof(reason));
        reason[IPCF_REASON_MAX] = 0;
        str_printable(reason); /* the client wrote it: printable on the wire */
        if (code == IPCF_END_NONE || code > IPCF_END_PROTOCOL) {
                code = IPCF_END_PEER_DIED; /* its side closed without a record: it died */
                str_copy(reason, "peer died", sizeof(reason));
        } else if (code == IPCF_END_PEER_DIED && !reason[0]) {
                str_copy(reason, "peer died", sizeof(reason));
        }
        relay_tell_now(r); /* the last count, before the end */
        if (r->h) {
                hw_msg m = { .type = HW_DEALLOC, .port = r->lport, .code = code };
                str_copy(m.reason, reason, sizeof(m.reason));
                hlink_send(r->h->p, &m);
        }
        log_debug("relay %u/%u: local side ended (%u %s)", r->lport, r->rport, code, reason);
        relay_finish(r, IPCF_END_DEALLOC, "", EFCP_REASON_USER + code);
}

/* The engine flow ended and every message is in the ring. The other
 * relay's close ends it with NORMAL or a user reason (EFCP_REASON_USER +
 * its local side's code), its data all checked in; REFUSED (or PORT_BUSY)
 * ends one the other side never had (remote.c: its requester gave up), so
 * nothing of it was lost. Any other reason is the engine's own, a CUT:
 * DATA_LOST (the other engine gave up its unacknowledged data after its
 * linger), a flow refused for its data (PROTOCOL_ERROR, NO_RESOURCES), or
 * that the other host no longer knew. A cut wins over the other host's
 * DEALLOC, which came first on the control flow and says only how the
 * writer ended, not that its data all came. */
static bool relay_cut(const relay *r) {
        uint32_t why = EFCP_REASON_NORMAL;
        if (!efcp_flow_deallocated(r->ef, &why))
                return false;
        return why != EFCP_REASON_NORMAL && why < EFCP_REASON_USER && why != EFCP_REASON_REFUSED &&
               why != EFCP_REASON_PORT_BUSY;
}

static void relay_remote_end(relay *r) {
        uint32_t why = 0, code;
        const char *text;
        efcp_flow_deallocated(r->ef, &why);
        if (r->remote_said && !relay_cut(r)) {
                relay_finish(r, r->r_code, r->r_reason, EFCP_REASON_NORMAL);
                return;
        }
        if (why >= EFCP_REASON_USER && !r->waiting && r->h) {
                /* its reason is on its way on the control flow */
                r->waiting = true;
                loop_timer_arm(the_hosts.d->loop, &r->wait, now_ns() + RELAY_REASON_WAIT_NS);
                return;
        }
        if (loop_timer_armed(&r->wait))
                return; /* still waiting for the reason */
        relay_reason_of(why, &code, &text);
        relay_finish(r, code, text, EFCP_REASON_NORMAL);
}

/* SPIN: the relay expects an answer within microseconds, and watches for
 * it instead of sleeping (loop_spin), for at most RELAY_SPIN_NS:
 *   SPIN_LOCAL   it delivered a message and the ring to it is empty: the
 *                local process may answer at once (a call, a ping-pong).
 *                Its want word is taken back, so its write rings nobody,
 *                and the answer leaves in the same wake-up (no bell, no
 *                epoll wake, no drain).
 *   SPIN_REMOTE  it sent the local process's message(s) and has nothing to
 *                deliver: the other host may answer soon. The loop looks
 *                at the socket every LOOP_SPIN_PEEK_NS meanwhile.
 * Either keeps this CPU awake across the exchange: on a machine whose idle
 * CPUs halt, a process woken onto a halted CPU waits for it to come back
 * (tens of microseconds in a VM), which a spinning CPU avoids. A window
 * that closes without its answer is a miss; misses in a row back off
 * (relay_spin_fn, each kind apart): a stream, a slow server or a slow host
 * costs at most one window in 4 ... 1024. A delivery during a REMOTE window
 * is its answer. */
static void relay_spin(relay *r, int kind) {
        if (kind == SPIN_LOCAL && loop_spinning(&r->spin) && r->spin_kind == SPIN_REMOTE) {
                relay_spin_hit(r);
        } else if (r->spin_skip[kind]) {
                r->spin_skip[kind]--;
                return;
        }
        r->spin_kind = kind;
        if (kind == SPIN_LOCAL)
                bport_disarm_rx(r->b);
        loop_spin_until(the_hosts.d->loop, &r->spin, now_ns() + RELAY_SPIN_NS);
}

static void relay_pump(relay *r) {
        if (r->done || !r->started || r->in_pump)
                return;
        r->in_pump = true;
        uint64_t sent = r->sent;
        /* the end first, then the ring (see the top of the file) */
        bool ended = bport_peer_ended(r->b);
        bool drained = relay_out(r);
        uint64_t before = r->delivered;
        int in = r->done ? 1 : relay_in(r);
        if (!r->done) {
                relay_report(r); /* (before a DEALLOC below) */
                relay_tell_later(r);
        }
        r->in_pump = false;
        if (r->done)
                return;
        if (drained && in == 1) {
                if (r->delivered != before)
                        relay_spin(r, SPIN_LOCAL);
                else if (r->sent != sent && !loop_spinning(&r->spin))
                        relay_spin(r, SPIN_REMOTE);
        }
        /* The ring is empty and no spin watches it: ask to be rung. (Not
         * before: a want word set while the answer is spun for would be
         * taken by the local process's next write, a ring for nothing.) */
        if (r->need_arm && !loop_spinning(&r->spin)) {
                r->need_arm = false;
                if (bport_arm_rx(r->b))
                        bport_kick(r->b); /* data came while arming */
        }
        if (r->h) {
                hlink_kick(r->h->p->k);
                hlink_busy(r->h->p->k);
        }
        if (ended && drained) {
                relay_local_end(r);
                return;
        }
        if (in == -EPIPE && r->in_open && (!r->reliable || relay_cut(r)))
                r->in_open = false; /* a datagram cut by the end, a record by a loss: given up */
        if (in == -EPIPE && !r->in_open)
                relay_remote_end(r);
        else if (in == -EPIPE)
                relay_finish(r, IPCF_END_PROTOCOL, "the other host ended inside a record", EFCP_REASON_NORMAL);
}

void relay_on_engine(relay *r) { relay_pump(r); }

void relay_on_dealloc(relay *r, uint32_t code, const char *reason) {
        if (code == IPCF_END_NONE || code > IPCF_END_PROTOCOL || code == IPCF_END_LOCAL)
                code = IPCF_END_DEALLOC;
        r->remote_said = true;
        r->r_code = code;
        str_copy(r->r_reason, reason, sizeof(r->r_reason));
        relay_pump(r);
}

static void relay_host_down(relay *r, uint32_t reason) {
        /* what already came is the application's to read */
        if (r->ef && !r->done)
                relay_in(r);
        if (r->done)
                return;
        relay_unlink(r);
        r->h = NULL;
        r->ef = NULL; /* the association is gone: so is the flow */
        uint32_t code;
        const char *text;
        relay_reason_of(reason, &code, &text);
        relay_finish(r, code, text, EFCP_REASON_NORMAL);
}

static void relay_shutdown(relay *r) {
        r->ef = NULL; /* the engine goes with the daemon: nothing is closed */
        relay_free(r); /* bport_free at shutdown only closes our side */
}

void relays_host_down(hostrec *h, uint32_t reason) {
        dlist_for_each_safe(pos, tmp, &h->relays)
                relay_host_down(dlist_entry(pos, relay, link), reason);
}

void relays_shutdown(hostrec *h) {
        dlist_for_each_safe(pos, tmp, &h->relays)
                relay_shutdown(dlist_entry(pos, relay, link));
}
