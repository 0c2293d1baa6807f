/*
 * flow.c — one flow inside an association: its sequence space, send ring,
 * retransmission queue, receive ring, reassembly, delivery and credit.
 *
 * Send side. efcp_flow_send() cuts a message into PDUs on consecutive
 * sequence numbers (FIRST on the first, LAST on the last) and copies them into
 * the send ring, but only while the whole message fits both the send buffer
 * and the peer's credit (seq < snd_edge): back-pressure reaches the sender's
 * application, and the receiver is never overrun. The association reports
 * each PDU as acknowledged or lost (through the packets that carried it); a
 * reliable flow queues lost PDUs for retransmission, an unreliable one forgets
 * them (and frees each PDU as soon as it is sent).
 *
 * Receive side. The ring covers [rcv_head, rcv_head + window). A PDU outside
 * the advertised window or already held is dropped and counted. A message is
 * ready when FIRST..LAST are all present. Ordered flows hand messages over in
 * sequence order (rcv_scan walks them); unordered flows as soon as complete.
 * Unreliable flows never wait for a hole: ordered ones drop an incomplete
 * message as soon as a later one completes; unordered ones drop incomplete
 * data that falls half a window behind a completed message; and both give up
 * whatever is incomplete below the point a BLOCKED sender says it has sent
 * everything to, so a window full of broken messages cannot stall the flow.
 * A sequence number below rcv_head is old: never delivered twice.
 *
 * Credit is an absolute right edge (rcv_head + window), re-sent when it moved
 * by a quarter window, when a packet carrying it is lost, and when the sender
 * says BLOCKED; a lost update therefore does no harm.
 *
 * All sequence arithmetic is modulo 2^32 (efcp_seq_lt). Callers: assoc.c,
 * recovery.c, output.c, and applications through the efcp.h flow calls.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "efcp/internal.h"

#ifndef MIN
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#endif

static void flow_rx_drop(efcp_flow *f, uint32_t from, uint32_t to);
static void flow_rx_advance(efcp_flow *f);

/* Ring sizes are powers of two so that seq & mask indexes them across the
 * 2^32 wrap without a division. */
static uint32_t pow2_at_least(uint32_t n) {
        uint32_t p = 1;
        while (p < n)
                p <<= 1;
        return p;
}

/* Frees the rings (the flow keeps its slot). */
static void flow_free_rings(efcp_flow *f) {
        free(f->tx_data);
        free(f->tx_len);
        free(f->tx_flags);
        free(f->retx);
        free(f->rx_data);
        free(f->rx_len);
        free(f->rx_flags);
        free(f->ready);
        f->tx_data = f->rx_data = f->tx_flags = f->rx_flags = NULL;
        f->tx_len = f->rx_len = NULL;
        f->retx = NULL;
        f->ready = NULL;
}

/* Takes a free slot and allocates its rings. *ret is owned by the association. */
int efcp_flow_create(efcp_assoc *a, uint32_t local_port, uint32_t remote_port, uint32_t policy,
                     efcp_flow **ret) {
        if (a->n_free == 0)
                return -ENOSPC;
        efcp_flow *f = &a->flows[a->free_slots[a->n_free - 1]];
        /* keep what outlives a flow in its slot: identity and the control FIFO
         * and ready list links (a freed slot may still sit on them; output.c
         * and efcp_assoc_next_ready skip it) */
        uint8_t gen = f->gen;
        uint16_t slot = f->slot, ctl_next = f->ctl_next, ready_next = f->ready_next;
        bool on_ctl = f->on_ctl, on_ready = f->on_ready;
        *f = (efcp_flow){0};
        f->a = a;
        f->gen = gen;
        f->slot = slot;
        f->on_ctl = on_ctl;
        f->ctl_next = ctl_next;
        f->on_ready = on_ready;
        f->ready_next = ready_next;
        f->hash_next = EFCP_NIL;
        uint32_t txn = pow2_at_least(a->cfg.flow_send_buf);
        uint32_t rxn = pow2_at_least(a->cfg.flow_window);
        f->tx_mask = txn - 1;
        f->rx_mask = rxn - 1;
        f->tx_data = malloc((size_t)txn * a->payload_max);
        f->tx_len = calloc(txn, sizeof(uint16_t));
        f->tx_flags = calloc(txn, 1);
        f->retx = calloc(txn, sizeof(uint32_t));
        f->rx_data = malloc((size_t)rxn * a->payload_max);
        f->rx_len = calloc(rxn, sizeof(uint16_t));
        f->rx_flags = calloc(rxn, 1);
        f->ready = calloc(rxn, sizeof(efcp_ready));
        if (!f->tx_data || !f->tx_len || !f->tx_flags || !f->retx || !f->rx_data || !f->rx_len ||
            !f->rx_flags || !f->ready) {
                flow_free_rings(f);
                return -ENOMEM;
        }
        a->n_free--;
        f->state = FS_OPEN;
        f->local_port = local_port;
        f->remote_port = remote_port;
        f->policy = policy;
        efcp_assoc_slot_taken(a, f);
        f->sched_prev = f->sched_next = EFCP_NIL;
        f->last_activity = a->now;
        if (a->cfg.flow_idle_ns)
                efcp_assoc_flow_timer(a, a->now + a->cfg.flow_idle_ns);
        a->nflows++;
        *ret = f;
        return 0;
}

/* Sets the send side's initial sequence number; the peer assumes an initial
 * credit of one window. */
static void flow_tx_start(efcp_flow *f, uint32_t isn) {
        f->snd_isn = f->snd_una = f->snd_nxt = f->snd_end = isn;
        f->snd_edge = isn + f->a->cfg.flow_window;
}

/* Quarantine over (or association freed): the slot becomes FREE and its
 * generation changes, so sent-packet records naming it are ignored. */
void efcp_flow_release(efcp_flow *f) {
        efcp_assoc *a = f->a;
        efcp_sched_remove(a, f);
        flow_free_rings(f);
        efcp_assoc_slot_freed(a, f);
        f->state = FS_FREE;
        f->gen++;
        f->user = NULL;
        a->nflows--;
}

/* The flow is over on both sides (or can no longer be): drop its buffers now
 * (memory comes back at once) but keep the port-id bound until
 * quarantine_until, so late datagrams of this flow find no successor. */
void efcp_flow_quarantine(efcp_flow *f, uint64_t now) {
        efcp_sched_remove(f->a, f);
        flow_free_rings(f);
        f->ready_count = f->retx_count = 0;
        f->state = FS_QUARANTINE;
        f->ctl = 0;
        f->quarantine_until = now + f->a->cfg.quarantine_ns;
        efcp_assoc_flow_timer(f->a, f->quarantine_until);
}

/* The peer (or the engine on its behalf: refusal, idle, peer timeout) ends
 * the flow. The application learns it by event and keeps its handle (and any
 * complete messages already received) until it calls efcp_flow_close(). */
void efcp_flow_peer_dealloc(efcp_flow *f, uint32_t reason) {
        if (f->state == FS_CLOSING) {
                /* both sides closed: nothing left to say */
                efcp_flow_quarantine(f, f->a->now);
                return;
        }
        if (f->state != FS_OPEN)
                return;
        f->state = FS_DEALLOCATED;
        f->peer_gone = true;
        f->reason = reason;
        f->ctl = 0;
        efcp_sched_remove(f->a, f);
        efcp_assoc_event(f->a, EFCP_EV_FLOW_DEALLOCATED, f, reason);
        efcp_flow_notify(f);
}

/* ---- send side -------------------------------------------------------- */

static bool flow_reliable(const efcp_flow *f) { return f->policy & EFCP_POLICY_RELIABLE; }

/* Frees acknowledged (or forgotten) PDUs at the tail of the send ring. */
static void flow_tx_advance(efcp_flow *f) {
        uint32_t una = f->snd_una;
        while (f->snd_una != f->snd_nxt && (f->tx_flags[f->snd_una & f->tx_mask] & TX_ACKED)) {
                f->tx_flags[f->snd_una & f->tx_mask] = 0;
                f->snd_una++;
        }
        if (f->want_write && una != f->snd_una)
                efcp_flow_notify(f); /* room in the send buffer for a sender that was refused */
        efcp_flow_check_close(f);
}

/* After the app closed: once everything queued has been delivered (reliable)
 * or sent (unreliable), the DEALLOC goes out. */
void efcp_flow_check_close(efcp_flow *f) {
        if (f->state != FS_CLOSING || f->dealloc_sent)
                return;
        /* graceful: wait until everything queued is delivered, but no longer
         * than close_linger (a peer that stopped reading must not keep the
         * flow, its buffers and its port-id for ever) */
        bool lingered = f->a->now >= f->close_deadline;
        if (!lingered && (f->snd_una != f->snd_end || !f->alloc_acked))
                return;
        if (f->peer_gone) {
                efcp_flow_quarantine(f, f->a->now);
                return;
        }
        efcp_dealloc_request(f); /* resent until the peer acknowledges (dealloc.c) */
}

/* Fragment size for messages queued now. Until the peer has acknowledged our
 * ALLOC, every DATA rides with it, so PDUs are cut ALLOC-sized smaller to
 * leave it room in a full datagram; PDUs cut later use the whole payload. */
static uint32_t flow_chunk(const efcp_flow *f) {
        return f->a->payload_max - (f->alloc_acked ? 0 : EFCP_ALLOC_LEN);
}

static uint32_t flow_frags(const efcp_flow *f, size_t len) {
        uint32_t pm = flow_chunk(f);
        return len == 0 ? 1 : (uint32_t)((len + pm - 1) / pm);
}

/* Queues a BLOCKED for the current edge, sent at now; a new edge starts
 * the repeats' backoff again. */
static void flow_say_blocked(efcp_flow *f, uint64_t now) {
        if (f->blocked_edge != f->snd_edge) {
                f->blocked_tries = 0;
                f->blocked_edge = f->snd_edge;
        }
        f->blocked_at = now;
        efcp_ctl_add(f->a, f, CTL_BLOCKED);
}

/* The peer's credit stops a message of n fragments: say BLOCKED (once per
 * edge, again after a PTO) so that a lost CREDIT is repaired. The flow
 * timer (efcp_flow_blocked_timer) repeats it while the flow stays stopped:
 * an application waiting to be told "writable" sends nothing more, and a
 * receiver that ended the flow meanwhile (its DEALLOC request lost) hears
 * of it only from a frame of ours. */
static void flow_note_blocked(efcp_flow *f) {
        efcp_assoc *a = f->a;
        if (!f->credit_stopped) {
                f->credit_stopped = true;
                efcp_assoc_flow_timer(a, a->now + efcp_recovery_pto(a));
        }
        /* only once everything queued has gone out: BLOCKED then also tells
         * the receiver that nothing below snd_end is still to come (which an
         * unreliable receiver uses to give up broken messages) */
        if (f->snd_nxt != f->snd_end)
                return;
        if (f->blocked_edge != f->snd_edge || a->now >= f->blocked_at + efcp_recovery_pto(a))
                flow_say_blocked(f, a->now);
}

/* The flow timer's part for a sender stopped by credit: BLOCKED again once
 * everything queued has gone out, backed off from the PTO to max_pto, for as
 * long as the stop lasts (a send that passes or the peer's credit ends it).
 * Returns when to look again. */
uint64_t efcp_flow_blocked_timer(efcp_flow *f, uint64_t now) {
        efcp_assoc *a = f->a;
        if (f->state != FS_OPEN || !f->credit_stopped || !f->want_write)
                return UINT64_MAX;
        uint64_t due = f->blocked_at + efcp_recovery_backoff(a, f->blocked_tries);
        if (f->snd_nxt == f->snd_end && (f->blocked_edge != f->snd_edge || now >= due)) {
                if (f->blocked_edge == f->snd_edge)
                        f->blocked_tries++;
                flow_say_blocked(f, now);
                due = now + efcp_recovery_backoff(a, f->blocked_tries);
        }
        /* data still queued goes out by the sender's own timers; look again
         * one PTO later */
        return now < due ? due : now + efcp_recovery_pto(a);
}

bool efcp_flow_writable(efcp_flow *f, size_t len) {
        if (!f || f->state != FS_OPEN || f->app_closed || f->a->dead || len > f->a->cfg.max_msg)
                return false;
        uint32_t n = flow_frags(f, len);
        if (f->snd_end - f->snd_una + n > f->a->cfg.flow_send_buf) {
                f->want_write = true;
                return false;
        }
        if (!efcp_seq_le(f->snd_end + n, f->snd_edge)) {
                f->want_write = true;
                flow_note_blocked(f);
                return false;
        }
        return true;
}

int efcp_flow_send(efcp_flow *f, const void *msg, size_t len) {
        struct iovec iov = { (void *)msg, len };
        if (!msg && len)
                return -EINVAL;
        return efcp_flow_sendv(f, &iov, 1);
}

int efcp_flow_sendv(efcp_flow *f, const struct iovec *iov, int iovcnt) {
        size_t len = 0;
        if (!f || f->app_closed || iovcnt < 0 || (iovcnt && !iov))
                return -EINVAL;
        for (int i = 0; i < iovcnt; i++) {
                if (!iov[i].iov_base && iov[i].iov_len)
                        return -EINVAL;
                len += iov[i].iov_len;
        }
        efcp_assoc *a = f->a;
        if (f->state != FS_OPEN || a->dead)
                return -EPIPE;
        if (len > a->cfg.max_msg)
                return -EMSGSIZE;
        uint32_t n = flow_frags(f, len);
        if (f->snd_end - f->snd_una + n > a->cfg.flow_send_buf) {
                f->want_write = true;
                return -EAGAIN;
        }
        if (!efcp_seq_le(f->snd_end + n, f->snd_edge)) {
                f->want_write = true;
                flow_note_blocked(f);
                return -EAGAIN;
        }
        f->want_write = false;
        f->credit_stopped = false;
        /* gather the pieces into PDUs of pm bytes */
        uint32_t pm = flow_chunk(f);
        int vi = 0;
        size_t voff = 0;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t seq = f->snd_end + i, k = seq & f->tx_mask;
                size_t chunk = len > pm ? pm : len;
                uint8_t *dst = f->tx_data + (size_t)k * a->payload_max;
                for (size_t done = 0; done < chunk;) {
                        while (voff == iov[vi].iov_len) {
                                vi++;
                                voff = 0;
                        }
                        size_t take = MIN(chunk - done, iov[vi].iov_len - voff);
                        memcpy(dst + done, (const uint8_t *)iov[vi].iov_base + voff, take);
                        done += take;
                        voff += take;
                }
                f->tx_len[k] = (uint16_t)chunk;
                f->tx_flags[k] = (uint8_t)((i == 0 ? TX_FIRST : 0) | (i == n - 1 ? TX_LAST : 0));
                len -= chunk;
        }
        f->snd_end += n;
        f->last_activity = a->now;
        efcp_sched_add(a, f);
        return 0;
}

/* Could the scheduler send something of this flow now (a retransmission, or
 * new data within credit)? Stale retransmission entries may make this true
 * once too often; efcp_flow_next_pdu() sorts that out. */
bool efcp_flow_has_data(const efcp_flow *f) {
        return f->retx_count > 0 ||
               (f->snd_nxt != f->snd_end && efcp_seq_lt(f->snd_nxt, f->snd_edge));
}

/* The PDU this flow would send next, without committing to it: the caller
 * reports what it actually sent with efcp_flow_pdu_sent(). */
bool efcp_flow_next_pdu(efcp_flow *f, uint32_t *ret_seq, bool *ret_retx) {
        /* retransmissions first; skip entries made stale by a later ack */
        while (f->retx_count > 0) {
                uint32_t seq = f->retx[f->retx_head & f->tx_mask];
                uint8_t fl = f->tx_flags[seq & f->tx_mask];
                if (efcp_seq_le(f->snd_una, seq) && efcp_seq_lt(seq, f->snd_nxt) &&
                    !(fl & TX_ACKED)) {
                        *ret_seq = seq;
                        *ret_retx = true;
                        return true;
                }
                f->tx_flags[seq & f->tx_mask] &= (uint8_t)~TX_QUEUED;
                f->retx_head++;
                f->retx_count--;
        }
        if (f->snd_nxt != f->snd_end && efcp_seq_lt(f->snd_nxt, f->snd_edge)) {
                *ret_seq = f->snd_nxt;
                *ret_retx = false;
                return true;
        }
        return false;
}

/* seq went out in a packet: pop it from the retransmission queue, or move
 * snd_nxt past it. */
void efcp_flow_pdu_sent(efcp_flow *f, uint32_t seq, bool retx) {
        efcp_assoc *a = f->a;
        a->st.pdus_out++;
        f->last_activity = a->now;
        if (retx) {
                f->tx_flags[seq & f->tx_mask] &= (uint8_t)~TX_QUEUED;
                f->retx_head++;
                f->retx_count--;
                a->st.pdus_retx++;
                return;
        }
        f->snd_nxt++;
        if (!flow_reliable(f)) {
                /* nothing to keep: unreliable PDUs are never sent twice */
                f->tx_flags[seq & f->tx_mask] |= TX_ACKED;
                flow_tx_advance(f);
        }
}

/* Is seq a PDU of ours still awaiting acknowledgement? */
static bool flow_tx_pending(const efcp_flow *f, uint32_t seq) {
        return f->tx_data && efcp_seq_le(f->snd_una, seq) && efcp_seq_lt(seq, f->snd_nxt) &&
               !(f->tx_flags[seq & f->tx_mask] & TX_ACKED);
}

/* A packet carrying r was acknowledged: its frame reached the peer. */
void efcp_flow_on_acked(efcp_flow *f, const efcp_ref *r) {
        switch (r->kind) {
        case REF_DATA:
                if (flow_reliable(f) && flow_tx_pending(f, r->seq)) {
                        f->tx_flags[r->seq & f->tx_mask] |= TX_ACKED;
                        flow_tx_advance(f);
                }
                break;
        case REF_ALLOC:
                if (!f->alloc_acked) {
                        f->alloc_acked = true;
                        efcp_flow_check_close(f);
                }
                break;
        default: /* a DEALLOC request is done when the peer acknowledges it (dealloc.c) */
                break;
        }
}

/* A packet carrying r was declared lost (or is being probed after a PTO):
 * queue again whatever still matters. Idempotent: TX_QUEUED and the control
 * bits make a second call for the same frame a no-op. */
bool efcp_flow_on_lost(efcp_flow *f, const efcp_ref *r) {
        efcp_assoc *a = f->a;
        switch (r->kind) {
        case REF_DATA: {
                if (!flow_reliable(f) || !flow_tx_pending(f, r->seq))
                        return false;
                uint8_t *fl = &f->tx_flags[r->seq & f->tx_mask];
                if (*fl & TX_QUEUED)
                        return false;
                /* the queue cannot overflow: it holds distinct seqs of the ring */
                *fl |= TX_QUEUED;
                f->retx[(f->retx_head + f->retx_count) & f->tx_mask] = r->seq;
                f->retx_count++;
                efcp_sched_add(a, f);
                return true;
        }
        case REF_ALLOC:
                if (!f->alloc_acked && (f->state == FS_OPEN || f->state == FS_CLOSING)) {
                        efcp_ctl_add(a, f, CTL_ALLOC);
                        return true;
                }
                return false;
        case REF_DEALLOC:
                if (f->state == FS_CLOSING && f->dealloc_sent) {
                        efcp_ctl_add(a, f, CTL_DEALLOC);
                        return true;
                }
                return false;
        case REF_CREDIT:
                if (f->state == FS_OPEN && f->rx_known && r->seq == f->rcv_adv) {
                        efcp_ctl_add(a, f, CTL_CREDIT);
                        return true;
                }
                return false;
        default:
                return false;
        }
}

bool efcp_flow_rx_has_all(const efcp_flow *f, uint32_t from, uint32_t to) {
        if (!f->rx_known || !f->rx_flags)
                return true;
        for (uint32_t s = from; efcp_seq_lt(s, to); s++)
                if (!(f->rx_flags[s & f->rx_mask] & (RX_PRESENT | RX_READY | RX_DONE)))
                        return false;
        return true;
}

void efcp_flow_rx_blocked(efcp_flow *f, uint32_t sent_end, uint32_t acked) {
        if (f->state != FS_OPEN || !f->rx_known)
                return;
        if (flow_reliable(f) && efcp_seq_lt(f->rcv_head, acked) && efcp_seq_le(acked, f->rcv_adv) &&
            !efcp_flow_rx_has_all(f, f->rcv_head, acked)) {
                /* the sender holds as acknowledged a PDU that never reached
                 * us (a packet number another datagram took): it will never
                 * resend it, and the flow would wait for ever */
                efcp_flow_refuse(f, EFCP_REASON_DATA_LOST);
                return;
        }
        if (!flow_reliable(f) && efcp_seq_le(sent_end, f->rcv_adv)) {
                /* An unreliable sender has sent every PDU below sent_end (a
                 * message boundary) and will never resend: whatever is still
                 * incomplete there is lost (or so late it may as well be).
                 * Give it up, or a window full of broken messages would hold
                 * the flow forever. */
                uint32_t from = (f->policy & EFCP_POLICY_ORDERED) ? f->rcv_scan : f->rcv_head;
                if (efcp_seq_lt(from, sent_end)) {
                        flow_rx_drop(f, from, sent_end);
                        if (f->policy & EFCP_POLICY_ORDERED)
                                f->rcv_scan = sent_end;
                        flow_rx_advance(f);
                }
        }
        /* advertise the full edge now, whatever the quarter-window rule says:
         * the sender waits for it */
        uint32_t full = f->rcv_head + f->a->cfg.flow_window;
        if (efcp_seq_lt(f->rcv_adv, full))
                f->rcv_adv = full;
        efcp_ctl_add(f->a, f, CTL_CREDIT);
}

void efcp_flow_refuse(efcp_flow *f, uint32_t reason) {
        efcp_assoc *a = f->a;
        efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, f->remote_port, f->local_port, reason, 0);
        efcp_flow_peer_dealloc(f, reason);
}

/* A CREDIT frame: the peer allows sequence numbers below edge. Its edge is
 * its read point plus its window, and it cannot have read what we never
 * sent: an edge more than a window past snd_nxt is not honest and is ignored
 * (obeying it would overrun the peer). */
void efcp_flow_rx_credit(efcp_flow *f, uint32_t edge) {
        /* an absolute edge: older (reordered, repeated) updates are harmless */
        if (!efcp_seq_lt(f->snd_edge, edge))
                return;
        if (edge - f->snd_nxt > f->a->cfg.flow_window) {
                f->a->st.bad_frame++;
                return;
        }
        f->snd_edge = edge;
        f->credit_stopped = false; /* a send refused again sets it again */
        if (efcp_flow_has_data(f))
                efcp_sched_add(f->a, f);
        if (f->want_write)
                efcp_flow_notify(f); /* credit for a sender that was refused */
}

/* ---- receive side ----------------------------------------------------- */

/* The peer's ALLOC: it tells us where its sequence numbers start and what
 * credit it assumes; from now on its DATA can be placed. */
void efcp_flow_rx_alloc(efcp_flow *f, const efcp_frame *fr) {
        if (f->rx_known) {
                /* A repeat. One that disagrees on where the peer's sequence
                 * space starts, or on its policy, means one of the two was
                 * forged (the first, possibly: it made the flow): which one
                 * cannot be told, and taking either would shift or cut the
                 * stream silently, so the flow ends with the reason. */
                if (f->state == FS_OPEN &&
                    (fr->u.alloc.isn != f->rcv_isn || fr->u.alloc.policy != (f->policy & 3u)))
                        efcp_flow_refuse(f, EFCP_REASON_PROTOCOL_ERROR);
                return;
        }
        if (fr->u.alloc.credit == 0 || fr->u.alloc.credit > f->a->cfg.flow_window ||
            fr->u.alloc.max_msg > f->a->cfg.max_msg) {
                /* the peer would send more than our rings hold: refuse loudly
                 * rather than drop data it believes delivered */
                efcp_flow_refuse(f, EFCP_REASON_NO_RESOURCES);
                return;
        }
        f->rx_known = true;
        f->rcv_isn = f->rcv_head = f->rcv_scan = f->rcv_top = fr->u.alloc.isn;
        f->rcv_adv = fr->u.alloc.isn + fr->u.alloc.credit;
}

/* Which message holds seq? Fills *first and *n (fragments) and returns true
 * when FIRST..LAST are all present and not yet delivered. */
static bool flow_msg_complete(const efcp_flow *f, uint32_t seq, uint32_t *first, uint32_t *n) {
        uint32_t max = f->a->max_frags, s = seq, k = 1;
        while (!(f->rx_flags[s & f->rx_mask] & RX_FIRST)) {
                if (s == f->rcv_head || k >= max)
                        return false;
                s--;
                k++;
                if ((f->rx_flags[s & f->rx_mask] & (RX_PRESENT | RX_READY | RX_DONE)) != RX_PRESENT)
                        return false;
        }
        uint32_t e = seq;
        while (!(f->rx_flags[e & f->rx_mask] & RX_LAST)) {
                if (k >= max || !efcp_seq_lt(e + 1, f->rcv_adv))
                        return false;
                e++;
                k++;
                if ((f->rx_flags[e & f->rx_mask] & (RX_PRESENT | RX_READY | RX_DONE)) != RX_PRESENT)
                        return false;
        }
        *first = s;
        *n = e - s + 1;
        return true;
}

/* Queues the complete message [first, first+n) for delivery. */
static void flow_msg_ready(efcp_flow *f, uint32_t first, uint32_t n) {
        uint32_t len = 0;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t k = (first + i) & f->rx_mask;
                f->rx_flags[k] |= RX_READY;
                len += f->rx_len[k];
        }
        efcp_ready *r = &f->ready[(f->ready_head + f->ready_count) & f->rx_mask];
        r->seq = first;
        r->nfrag = n;
        r->len = len;
        f->ready_count++;
        efcp_flow_notify(f);
}

/* Drops undelivered, non-ready data in [from, to): an unreliable flow gives up. */
static void flow_rx_drop(efcp_flow *f, uint32_t from, uint32_t to) {
        for (uint32_t s = from; efcp_seq_lt(s, to); s++) {
                uint8_t *fl = &f->rx_flags[s & f->rx_mask];
                if (*fl & (RX_READY | RX_DONE))
                        continue;
                if (*fl & RX_FIRST)
                        f->a->st.msgs_dropped++;
                *fl = RX_DONE;
        }
}

/* Frees delivered slots at the head and re-advertises credit when the edge
 * moved far enough. */
static void flow_rx_advance(efcp_flow *f) {
        while (f->rx_flags[f->rcv_head & f->rx_mask] & RX_DONE) {
                f->rx_flags[f->rcv_head & f->rx_mask] = 0;
                f->rcv_head++;
        }
        if (efcp_seq_lt(f->rcv_scan, f->rcv_head))
                f->rcv_scan = f->rcv_head;
        uint32_t w = f->a->cfg.flow_window;
        uint32_t edge = f->rcv_head + w;
        uint32_t step = w / 4 ? w / 4 : 1;
        if (efcp_seq_lt(f->rcv_adv, edge) && edge - f->rcv_adv >= step && f->state == FS_OPEN) {
                f->rcv_adv = edge;
                efcp_ctl_add(f->a, f, CTL_CREDIT);
        }
}

/* Ordered flows: hand over every complete message at rcv_scan, in order. */
static void flow_rx_scan(efcp_flow *f) {
        uint32_t first, n;
        while (efcp_seq_lt(f->rcv_scan, f->rcv_adv)) {
                uint8_t fl = f->rx_flags[f->rcv_scan & f->rx_mask];
                if (!(fl & RX_PRESENT))
                        break;
                if (!(fl & RX_FIRST)) {
                        /* a message must start here: the peer broke the rules */
                        f->rx_flags[f->rcv_scan & f->rx_mask] = RX_DONE;
                        f->a->st.bad_frame++;
                        f->rcv_scan++;
                        continue;
                }
                if (!flow_msg_complete(f, f->rcv_scan, &first, &n))
                        break;
                flow_msg_ready(f, first, n);
                f->rcv_scan += n;
        }
}

void efcp_flow_rx_data(efcp_flow *f, const efcp_frame *fr, uint64_t now) {
        efcp_assoc *a = f->a;
        uint32_t seq = fr->u.data.seq;
        if (f->state != FS_OPEN || !f->rx_data) {
                a->st.pdus_dropped++; /* our application closed: it wants no more */
                return;
        }
        if (!f->rx_known || !efcp_seq_lt(seq, f->rcv_adv)) {
                /* DATA before the ALLOC that must ride in front of it, or
                 * beyond the credit we gave: the packet is acknowledged, so a
                 * reliable sender would believe it delivered. Dropping it
                 * quietly would lose data silently: the flow ends instead,
                 * with the reason, on both sides. */
                if (f->rx_known)
                        a->st.pdus_beyond_credit++;
                else
                        a->st.pdus_dropped++;
                if (flow_reliable(f)) {
                        a->st.bad_frame++;
                        efcp_flow_refuse(f, EFCP_REASON_PROTOCOL_ERROR);
                }
                return;
        }
        efcp_dealloc_on_data(f, seq);
        if (efcp_seq_lt(seq, f->rcv_head)) {
                a->st.pdus_dup++; /* old: delivered or given up already */
                return;
        }
        if (efcp_seq_le(f->rcv_top, seq))
                f->rcv_top = seq + 1;
        uint32_t k = seq & f->rx_mask;
        if (f->rx_flags[k] & (RX_PRESENT | RX_DONE)) {
                a->st.pdus_dup++;
                return;
        }
        if (fr->u.data.len > a->payload_max) {
                /* larger PDUs than our slots: configurations differ; refuse */
                a->st.bad_frame++;
                efcp_flow_refuse(f, EFCP_REASON_NO_RESOURCES);
                return;
        }
        memcpy(f->rx_data + (size_t)k * a->payload_max, fr->u.data.data, fr->u.data.len);
        f->rx_len[k] = fr->u.data.len;
        f->rx_flags[k] = (uint8_t)(RX_PRESENT | ((fr->u.data.flags & EFCP_DF_FIRST) ? RX_FIRST : 0) |
                                   ((fr->u.data.flags & EFCP_DF_LAST) ? RX_LAST : 0));
        f->last_activity = now;
        a->st.pdus_in++;

        uint32_t first, n;
        bool ordered = f->policy & EFCP_POLICY_ORDERED;
        if (ordered) {
                if (!flow_reliable(f) && flow_msg_complete(f, seq, &first, &n) &&
                    efcp_seq_lt(f->rcv_scan, first)) {
                        /* a later message is complete: give up what lies before it */
                        flow_rx_drop(f, f->rcv_scan, first);
                        f->rcv_scan = first;
                }
                flow_rx_scan(f);
        } else if (flow_msg_complete(f, seq, &first, &n)) {
                flow_msg_ready(f, first, n);
                if (!flow_reliable(f)) {
                        uint32_t half = a->cfg.flow_window / 2;
                        if (first - f->rcv_head > half)
                                flow_rx_drop(f, f->rcv_head, first - half);
                }
        }
        flow_rx_advance(f);
}

/* A complete message is waiting in the ready FIFO. */
bool efcp_flow_readable(const efcp_flow *f) { return f && f->ready_count > 0; }

int efcp_flow_next_len(const efcp_flow *f) {
        if (!f || f->app_closed)
                return -EINVAL;
        if (f->ready_count == 0)
                return (f->state != FS_OPEN || f->a->dead) ? -EPIPE : -EAGAIN;
        return (int)f->ready[f->ready_head & f->rx_mask].len;
}

/* Copies the oldest ready message out of the ring (fragments in order),
 * frees its slots, and lets the window (and so the credit) move on. */
int efcp_flow_recv(efcp_flow *f, void *buf, size_t cap) {
        struct iovec iov = { buf, cap };
        if (!buf && cap)
                return -EINVAL;
        return efcp_flow_recvv(f, &iov, 1);
}

/* Copies the ready message r into iov from its byte skip on, at most want
 * bytes (the fragments in order). Returns the bytes copied. */
static size_t flow_copy_out(const efcp_flow *f, const efcp_ready *r, size_t skip, size_t want,
                            const struct iovec *iov, int iovcnt) {
        const efcp_assoc *a = f->a;
        int vi = 0;
        size_t voff = 0, copied = 0;
        for (uint32_t i = 0; i < r->nfrag && copied < want; i++) {
                uint32_t k = (r->seq + i) & f->rx_mask;
                size_t flen = f->rx_len[k], fo = 0;
                if (skip >= flen) {
                        skip -= flen;
                        continue;
                }
                fo = skip;
                skip = 0;
                const uint8_t *src = f->rx_data + (size_t)k * a->payload_max;
                while (fo < flen && copied < want) {
                        while (vi < iovcnt && voff == iov[vi].iov_len) {
                                vi++;
                                voff = 0;
                        }
                        if (vi == iovcnt)
                                return copied;
                        size_t take = MIN(MIN(flen - fo, iov[vi].iov_len - voff), want - copied);
                        memcpy((uint8_t *)iov[vi].iov_base + voff, src + fo, take);
                        fo += take;
                        voff += take;
                        copied += take;
                }
        }
        return copied;
}

int efcp_flow_peek(const efcp_flow *f, void *buf, size_t n) {
        if (!f || f->app_closed || (!buf && n))
                return -EINVAL;
        if (f->ready_count == 0)
                return (f->state != FS_OPEN || f->a->dead) ? -EPIPE : -EAGAIN;
        const efcp_ready *r = &f->ready[f->ready_head & f->rx_mask];
        struct iovec iov = { buf, n };
        return (int)flow_copy_out(f, r, 0, MIN(n, (size_t)r->len), &iov, 1);
}

int efcp_flow_recvv(efcp_flow *f, const struct iovec *iov, int iovcnt) {
        if (!f || f->app_closed || iovcnt < 0 || (iovcnt && !iov))
                return -EINVAL;
        if (f->ready_count == 0)
                return (f->state != FS_OPEN || f->a->dead) ? -EPIPE : -EAGAIN;
        efcp_ready *r = &f->ready[f->ready_head & f->rx_mask];
        size_t cap = 0;
        for (int i = 0; i < iovcnt; i++)
                cap += iov[i].iov_len;
        if (r->len > cap)
                return -EMSGSIZE;
        efcp_assoc *a = f->a;
        flow_copy_out(f, r, 0, r->len, iov, iovcnt);
        for (uint32_t i = 0; i < r->nfrag; i++)
                f->rx_flags[(r->seq + i) & f->rx_mask] = RX_DONE;
        int len = (int)r->len;
        f->ready_head++;
        f->ready_count--;
        a->st.msgs_delivered++;
        f->last_activity = a->now;
        flow_rx_advance(f);
        return len;
}

/* ---- application calls -------------------------------------------------- */

/* A small mixing function for initial sequence numbers: not a secret, just
 * unlikely to collide with the previous incarnation of a port pair. */
static uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
}

/* Opens the send direction of f: picks its ISN and queues our ALLOC. */
/* pol is borrowed for the call. */
void efcp_flow_start(efcp_flow *f, const efcp_flow_policy *pol) {
        uint32_t isn;
        if (!pol || pol->isn_random) {
                uint64_t x = f->a->cfg.seed ^ ((uint64_t)f->local_port << 32) ^ f->a->now ^ f->gen;
                isn = (uint32_t)splitmix64(&x);
        } else {
                isn = pol->isn;
        }
        flow_tx_start(f, isn);
        efcp_ctl_add(f->a, f, CTL_ALLOC);
}

int efcp_flow_open(efcp_assoc *a, uint32_t local_port, uint32_t remote_port,
                   const efcp_flow_policy *policy, efcp_flow **ret_flow) {
        if (!a || !policy || !ret_flow || (policy->flags & ~3u))
                return -EINVAL;
        if (a->dead)
                return -ENOTCONN;
        if (efcp_assoc_lookup(a, local_port))
                return -EADDRINUSE;
        efcp_flow *f;
        int r = efcp_flow_create(a, local_port, remote_port, policy->flags, &f);
        if (r < 0)
                return r;
        efcp_flow_start(f, policy);
        *ret_flow = f;
        return 0;
}

void efcp_flow_close(efcp_flow *f, uint32_t reason) {
        if (!f || f->app_closed)
                return;
        efcp_assoc *a = f->a;
        f->app_closed = true;
        f->ready_count = 0;
        if (f->state != FS_OPEN || a->dead) {
                efcp_flow_quarantine(f, a->now);
                return;
        }
        f->state = FS_CLOSING;
        f->reason = reason;
        f->ctl &= (uint8_t)~CTL_CREDIT;
        f->close_deadline = a->now + a->cfg.close_linger_ns;
        efcp_assoc_flow_timer(a, f->close_deadline);
        efcp_flow_check_close(f);
}

/* Any state but OPEN means the flow no longer carries data. */
bool efcp_flow_deallocated(const efcp_flow *f, uint32_t *ret_reason) {
        if (!f || f->state == FS_OPEN)
                return false;
        if (ret_reason)
                *ret_reason = f->reason;
        return true;
}

size_t efcp_flow_unacked(const efcp_flow *f) { return f ? f->snd_end - f->snd_una : 0; }
uint32_t efcp_flow_local_port(const efcp_flow *f) { return f->local_port; }
uint32_t efcp_flow_remote_port(const efcp_flow *f) { return f->remote_port; }
