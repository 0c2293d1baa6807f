/*
 * dealloc.c — the confirmed deallocation of a flow.
 *
 * One DEALLOC frame that ended a flow would let one forged datagram truncate
 * it and make the cut look like a normal close. So deallocation takes three
 * steps, all DEALLOC frames (docs/PROTOCOL.md §5):
 *
 *   ender (A)                                  peer (B)
 *   REQUEST(reason, final) ─────────────────►  checks final, acknowledges,
 *                                              keeps the flow as it is
 *                          ◄───────────────── ACK(reason, final)
 *   CONFIRM(reason, final) ─────────────────►  ends the flow: reason, or
 *   (A's port-id to quarantine)                DATA_LOST if a reliable flow
 *                                              lacks data below final
 *
 * final is A's next sequence number (flag EFCP_DEALLOC_FINAL): B refuses a
 * request whose final lies below data it already has or beyond its credit,
 * and forgets one when DATA at or past final arrives. A answers an ACK of a
 * request it never made with DENY, and B forgets the request: a forged
 * REQUEST changes nothing. An ACK for a flow A no longer has (quarantined,
 * deallocated, unknown) is confirmed: that flow is gone here.
 *
 * Requests the engine makes without a flow of its own (refusals, answers to
 * data for unknown flows, idle discards) carry no final and one of the
 * engine's reasons, and go through the unsolicited queue (a request without
 * a final that carries NORMAL or an application's reason is forged: only the
 * owner of a live flow ends it so, and it always sends its final; taken, a
 * forged REQUEST and CONFIRM pair would cut a transfer short and make the
 * cut look like the application's end); they are repeated by the peer's next data or BLOCKED
 * (flow.c repeats a stopped sender's BLOCKED on a timer), not by a
 * timer. A's own request is resent after each probe timeout (backed off)
 * until acknowledged; B's ACK until confirmed or denied, for as long as the
 * association lives (backed off to max_pto): B cannot tell a lost CONFIRM
 * from a lost DENY, and A, once it has confirmed, sends nothing more on that
 * flow — a B that gave up would keep a flow open for ever. A answers every
 * ACK (CONFIRM when the flow is gone here or the final is its own, DENY
 * otherwise, including a final that is not its own while it closes), so the
 * probing ends. Every answer is stateless or idempotent, so duplicates and
 * crossing requests (both ends closing at once) settle.
 *
 * Callers: assoc.c (input), flow.c (close), the per-flow timer scan.
 */
#include "efcp/internal.h"

/* Answers a DEALLOC frame d from the peer with step (the ports swap). */
static void answer(efcp_assoc *a, uint8_t step, const efcp_frame *fr) {
        efcp_assoc_unsolicited(a, step, fr->u.dealloc.flags, fr->u.dealloc.src, fr->u.dealloc.dst,
                               fr->u.dealloc.reason, fr->u.dealloc.final);
}

void efcp_dealloc_request(efcp_flow *f) {
        efcp_assoc *a = f->a;
        f->dealloc_sent = true;
        f->dealloc_final = f->snd_end;
        f->dealloc_tries = 1;
        f->dealloc_at = a->now + efcp_recovery_backoff(a, 0);
        efcp_assoc_flow_timer(a, f->dealloc_at);
        efcp_sched_remove(a, f);
        efcp_ctl_add(a, f, CTL_DEALLOC);
}

static bool flow_live(const efcp_flow *f) { return f->state == FS_OPEN || f->state == FS_CLOSING; }

/* Could the peer have ended its direction at final? Not below data we hold,
 * not beyond the credit we gave. */
static bool final_plausible(const efcp_flow *f, uint32_t final) {
        if (!f->rx_known)
                return true;
        return efcp_seq_le(f->rcv_top, final) && efcp_seq_le(final, f->rcv_adv);
}

static void on_request(efcp_assoc *a, efcp_flow *f, const efcp_frame *fr) {
        bool has_final = fr->u.dealloc.flags & EFCP_DEALLOC_FINAL;
        if (!has_final && !efcp_reason_is_engine(fr->u.dealloc.reason)) {
                a->st.bad_frame++; /* forged: see the head of this file */
                return;
        }
        if (f && flow_live(f)) {
                if (has_final && !final_plausible(f, fr->u.dealloc.final)) {
                        a->st.bad_frame++;
                        return;
                }
                /* A request with a final replaces one without: only the
                 * owner of a live flow sends a final, and a request without
                 * one (the engine's word that it has no such flow, or a
                 * forgery) kept pending would make us ignore the owner's
                 * real request and end the flow on the other's reason. */
                if (!f->peer_req || (has_final && !f->peer_req_has_final)) {
                        f->peer_req = true;
                        f->peer_req_has_final = has_final;
                        f->peer_req_reason = fr->u.dealloc.reason;
                        f->peer_req_final = fr->u.dealloc.final;
                        f->peer_req_tries = 1;
                        f->peer_req_at = a->now + efcp_recovery_backoff(a, 0);
                        efcp_assoc_flow_timer(a, f->peer_req_at);
                }
        }
        /* live flow: acknowledge and wait; no flow (gone, never was): the
         * acknowledgement is all there is to say */
        answer(a, EFCP_STEP_ACK, fr);
}

static void on_ack(efcp_assoc *a, efcp_flow *f, const efcp_frame *fr) {
        if (f && f->state == FS_CLOSING && f->dealloc_sent) {
                if (!(fr->u.dealloc.flags & EFCP_DEALLOC_FINAL) ||
                    fr->u.dealloc.final != f->dealloc_final) {
                        /* not an answer to our request: the peer holds a
                         * forged one, which it probes until told */
                        a->st.denied++;
                        answer(a, EFCP_STEP_DENY, fr);
                        return;
                }
                answer(a, EFCP_STEP_CONFIRM, fr);
                efcp_flow_quarantine(f, a->now);
                return;
        }
        if (f && flow_live(f)) {
                /* we never asked: the request the peer saw was forged */
                a->st.denied++;
                answer(a, EFCP_STEP_DENY, fr);
                return;
        }
        /* the flow is gone here (deallocated, quarantined, unknown): yes */
        answer(a, EFCP_STEP_CONFIRM, fr);
}

/* Does the confirmation (or denial) fr answer f's pending peer request? */
static bool answers_pending(const efcp_flow *f, const efcp_frame *fr) {
        if (!f || !f->peer_req || !flow_live(f))
                return false;
        bool has_final = fr->u.dealloc.flags & EFCP_DEALLOC_FINAL;
        return has_final == f->peer_req_has_final && (!has_final || fr->u.dealloc.final == f->peer_req_final);
}

static void on_confirm(efcp_assoc *a, efcp_flow *f, const efcp_frame *fr) {
        if (!answers_pending(f, fr))
                return;
        uint32_t reason = f->peer_req_reason;
        f->peer_req = false;
        /* a reliable flow the peer ended before all its data arrived (it gave
         * up after close_linger) must not look like a normal end */
        if (f->peer_req_has_final && (f->policy & EFCP_POLICY_RELIABLE) && f->state == FS_OPEN &&
            !efcp_flow_rx_has_all(f, f->rcv_head, f->peer_req_final))
                reason = EFCP_REASON_DATA_LOST;
        efcp_flow_peer_dealloc(f, reason);
        (void)a;
}

void efcp_dealloc_input(efcp_assoc *a, const efcp_frame *fr) {
        efcp_flow *f = efcp_assoc_flow_for(a, fr->u.dealloc.dst, fr->u.dealloc.src);
        switch (fr->u.dealloc.step) {
        case EFCP_STEP_REQUEST:
                on_request(a, f, fr);
                break;
        case EFCP_STEP_ACK:
                on_ack(a, f, fr);
                break;
        case EFCP_STEP_CONFIRM:
                on_confirm(a, f, fr);
                break;
        default: /* DENY */
                if (answers_pending(f, fr)) {
                        f->peer_req = false;
                        a->st.denied++;
                }
                break;
        }
}

void efcp_dealloc_on_data(efcp_flow *f, uint32_t seq) {
        if (f->peer_req && f->peer_req_has_final && efcp_seq_le(f->peer_req_final, seq)) {
                f->peer_req = false; /* the peer is still sending: it never ended */
                f->a->st.denied++;
        }
}

uint64_t efcp_dealloc_timers(efcp_flow *f, uint64_t now) {
        efcp_assoc *a = f->a;
        uint64_t next = UINT64_MAX;
        if (f->state == FS_CLOSING && f->dealloc_sent) {
                if (now >= f->dealloc_at) {
                        efcp_ctl_add(a, f, CTL_DEALLOC);
                        f->dealloc_at = now + efcp_recovery_backoff(a, f->dealloc_tries++);
                }
                next = f->dealloc_at;
        }
        if (f->peer_req && flow_live(f)) {
                if (now >= f->peer_req_at) {
                        efcp_assoc_unsolicited(a, EFCP_STEP_ACK,
                                               f->peer_req_has_final ? EFCP_DEALLOC_FINAL : 0,
                                               f->remote_port, f->local_port, f->peer_req_reason,
                                               f->peer_req_final);
                        f->peer_req_at = now + efcp_recovery_backoff(a, f->peer_req_tries++);
                }
                if (f->peer_req_at < next)
                        next = f->peer_req_at;
        }
        return next;
}
