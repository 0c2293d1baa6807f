/*
 * close.c — the confirmed close of an association.
 *
 * A CLOSE that one datagram could deliver would let one forged (or
 * misrouted) datagram end an association, with the other side none the wiser.
 * So closing takes three steps, all CLOSE frames (docs/PROTOCOL.md §5):
 *
 *   closer                                   peer
 *   REQUEST(reason) ───────────────────────►  acknowledges, still alive
 *                   ◄─────────────────────── ACK(reason)
 *   CONFIRM(reason) ───────────────────────►  dies: EFCP_EV_PEER_CLOSED(reason)
 *
 * A side that receives an ACK of a request it never sent answers DENY, and
 * the peer forgets the request: a forged REQUEST changes nothing. The closer
 * is dead from the first step (it sends nothing else) and resends its request
 * after each probe timeout, EFCP_CLOSE_TRIES times at most; the peer resends
 * its ACK until it is confirmed or denied, EFCP_CONFIRM_TRIES times at most,
 * then forgets the request. A dead association answers a valid datagram that
 * carries no CLOSE frame with a request of its own (at most once per
 * max_pto), so a peer that missed the close learns of it from its next
 * packet. Frames here are never remembered for loss recovery: the timers
 * above resend them.
 *
 * Callers: assoc.c (input, timers, death) and output.c.
 */
#include "efcp/internal.h"

/* Queues one CLOSE frame (a repeat of a queued step replaces it). */
static void close_queue(efcp_assoc *a, uint8_t step, uint32_t reason) {
        for (uint32_t i = 0; i < a->nclose_q; i++)
                if (a->close_q[i].step == step) {
                        a->close_q[i].reason = reason;
                        return;
                }
        if (a->nclose_q < EFCP_CLOSE_Q)
                a->close_q[a->nclose_q++] = (efcp_close_frame){step, reason};
}

void efcp_close_start(efcp_assoc *a, uint32_t reason) {
        a->dead = true;
        a->closer = true;
        a->close_reason = reason;
        a->close_tries = 1;
        a->close_next = a->now + efcp_recovery_backoff(a, 0);
        a->close_wait = false;
        close_queue(a, EFCP_STEP_REQUEST, reason);
}

void efcp_close_input(efcp_assoc *a, const efcp_frame *fr) {
        uint32_t reason = fr->u.close.reason;
        switch (fr->u.close.step) {
        case EFCP_STEP_REQUEST:
                /* alive: acknowledge and wait for the confirmation; dead
                 * (both closed at once, or a late copy): acknowledge too */
                close_queue(a, EFCP_STEP_ACK, reason);
                if (!a->dead && !a->close_wait) {
                        a->close_wait = true;
                        a->peer_close_reason = reason;
                        a->close_wait_tries = 1;
                        a->close_wait_next = a->now + efcp_recovery_backoff(a, 0);
                }
                break;
        case EFCP_STEP_ACK:
                if (a->dead) {
                        /* our request (or a dead side's answer) reached the peer */
                        close_queue(a, EFCP_STEP_CONFIRM, reason);
                        a->close_confirmed = true;
                } else {
                        /* we never asked to close: someone else did */
                        a->st.denied++;
                        close_queue(a, EFCP_STEP_DENY, reason);
                }
                break;
        case EFCP_STEP_CONFIRM:
                if (!a->dead && a->close_wait) {
                        a->close_wait = false;
                        efcp_assoc_die(a, EFCP_REASON_PEER_CLOSED, EFCP_EV_PEER_CLOSED,
                                       a->peer_close_reason);
                }
                break;
        default: /* DENY */
                if (!a->dead && a->close_wait) {
                        a->close_wait = false;
                        a->st.denied++;
                }
                break;
        }
}

void efcp_close_stranger(efcp_assoc *a) {
        if (a->now < a->close_answer_at)
                return;
        a->close_answer_at = a->now + a->cfg.max_pto_ns;
        close_queue(a, EFCP_STEP_REQUEST, a->close_reason);
}

void efcp_close_timeout(efcp_assoc *a, uint64_t now) {
        if (a->dead && a->closer && !a->close_confirmed && a->close_tries < EFCP_CLOSE_TRIES &&
            now >= a->close_next) {
                close_queue(a, EFCP_STEP_REQUEST, a->close_reason);
                a->close_next = now + efcp_recovery_backoff(a, a->close_tries++);
        }
        if (!a->dead && a->close_wait && now >= a->close_wait_next) {
                if (a->close_wait_tries >= EFCP_CONFIRM_TRIES) {
                        a->close_wait = false; /* never confirmed: forget it */
                } else {
                        close_queue(a, EFCP_STEP_ACK, a->peer_close_reason);
                        a->close_wait_next = now + efcp_recovery_backoff(a, a->close_wait_tries++);
                }
        }
}

uint64_t efcp_close_deadline(const efcp_assoc *a) {
        if (a->nclose_q)
                return a->now;
        if (a->dead && a->closer && !a->close_confirmed && a->close_tries < EFCP_CLOSE_TRIES)
                return a->close_next;
        if (!a->dead && a->close_wait)
                return a->close_wait_next;
        return UINT64_MAX;
}

bool efcp_close_has_output(const efcp_assoc *a) { return a->nclose_q > 0; }

uint8_t *efcp_close_put(efcp_assoc *a, uint8_t *p, uint8_t *end) {
        uint32_t i = 0;
        for (; i < a->nclose_q && end - p >= EFCP_CLOSE_LEN; i++)
                p += efcp_wire_put_close(p, a->close_q[i].step, a->close_q[i].reason);
        for (uint32_t k = i; k < a->nclose_q; k++)
                a->close_q[k - i] = a->close_q[k];
        a->nclose_q -= i;
        return p;
}
