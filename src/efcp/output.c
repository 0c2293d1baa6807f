/*
 * output.c — building the next datagram of an association.
 *
 * Order of frames in a datagram, by urgency:
 *   1. ACK when due (else, at the end, 6., if it fits beside the rest);
 *   2. DEALLOC frames no flow slot holds (refusals, answers, confirmation
 *      steps) and the steps of a confirmed close;
 *   3. per-flow control: ALLOC, DEALLOC, CREDIT, BLOCKED;
 *   4. PING (keepalive or probe);
 *   5. DATA, retransmissions first within each flow, flows by DRR, while
 *      the congestion window and the pacer allow (a probe after a PTO
 *      ignores both). An ALLOC rides in front of a flow's DATA until the
 *      peer has acknowledged one, so DATA never reaches a peer that cannot
 *      know the flow's initial sequence number.
 *   6. a pending (not yet due) ACK, in whatever room is left.
 * Control frames ignore cwnd (they are small and unblock the peer). A packet
 * that carries anything but ACK/PADDING is ack-eliciting and in flight; its
 * frames are remembered (refs) so recovery.c can requeue or confirm them.
 * ACK-only packets are not remembered and never acknowledged by themselves.
 *
 * Caller: the application through efcp_output(); one thread at a time.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "efcp/internal.h"

/* Remembers that packet s carries a frame of flow f (slot and generation,
 * never a pointer: the flow may be gone when the packet's fate is known). */
static void pkt_ref(efcp_sent *s, uint8_t kind, const efcp_flow *f, uint32_t seq) {
        efcp_ref *r = &s->refs[s->nrefs++];
        r->kind = kind;
        r->gen = f->gen;
        r->slot = f->slot;
        r->seq = seq;
}

/* Does packet s already carry f's ALLOC? (at most 32 refs: a short scan) */
static bool pkt_has_alloc(const efcp_sent *s, const efcp_flow *f) {
        for (uint32_t i = 0; i < s->nrefs; i++)
                if (s->refs[i].kind == REF_ALLOC && s->refs[i].slot == f->slot)
                        return true;
        return false;
}

/* Writes f's ALLOC: our ISN, the credit we assume, our largest message. */
static uint8_t *put_alloc(uint8_t *p, efcp_sent *s, const efcp_flow *f) {
        p += efcp_wire_put_alloc(p, (uint8_t)f->policy, f->remote_port, f->local_port, f->snd_isn,
                                 f->a->cfg.flow_window, f->a->cfg.max_msg);
        pkt_ref(s, REF_ALLOC, f, 0);
        return p;
}

/* Writes an ACK of as many ranges as fit (newest first; at least one), if
 * one fits at all. */
static uint8_t *put_ack(efcp_assoc *a, uint8_t *p, uint8_t *end, uint64_t now) {
        if (end - p < (ptrdiff_t)EFCP_ACK_LEN(0))
                return p;
        efcp_ack_range r[EFCP_ACK_MAX_RANGES + 1];
        uint32_t fit = (uint32_t)((end - p - EFCP_ACK_LEN(0)) / 8) + 1;
        uint32_t n = efcp_rx_ack_ranges(a, r, fit < EFCP_ACK_MAX_RANGES + 1 ? fit : EFCP_ACK_MAX_RANGES + 1);
        uint64_t delay = now > a->largest_rx_time ? (now - a->largest_rx_time) / 1000 : 0;
        p += efcp_wire_put_ack(p, r, n, delay > UINT32_MAX ? UINT32_MAX : (uint32_t)delay);
        efcp_rx_ack_sent(a);
        a->st.acks_out++;
        return p;
}

/* Writes the control frames of the flows on the control FIFO while they fit. */
static uint8_t *put_ctl(efcp_assoc *a, uint8_t *p, uint8_t *end, efcp_sent *s) {
        efcp_flow *f, *leftover = NULL;
        while (!leftover && (f = efcp_ctl_pop(a))) {
                uint8_t want = f->ctl, left = 0;
                f->ctl = 0;
                if (f->state == FS_FREE || f->state == FS_QUARANTINE)
                        continue;
                if (want & CTL_ALLOC) {
                        if (f->alloc_acked || (f->state != FS_OPEN && f->state != FS_CLOSING)) {
                                /* nothing to say any more (a closing flow still
                                 * needs its ALLOC through before its DEALLOC) */
                        } else if (end - p >= EFCP_ALLOC_LEN && s->nrefs < EFCP_MAX_PKT_REFS) {
                                if (!pkt_has_alloc(s, f))
                                        p = put_alloc(p, s, f);
                        } else {
                                left |= CTL_ALLOC;
                        }
                }
                if ((want & CTL_DEALLOC) && f->state == FS_CLOSING) {
                        if (end - p >= EFCP_DEALLOC_LEN && s->nrefs < EFCP_MAX_PKT_REFS) {
                                p += efcp_wire_put_dealloc(p, EFCP_STEP_REQUEST, EFCP_DEALLOC_FINAL,
                                                           f->remote_port, f->local_port, f->reason,
                                                           f->dealloc_final);
                                pkt_ref(s, REF_DEALLOC, f, 0);
                        } else {
                                left |= CTL_DEALLOC;
                        }
                }
                if ((want & CTL_CREDIT) && f->state == FS_OPEN && f->rx_known) {
                        if (end - p >= EFCP_FLOWCTL_LEN && s->nrefs < EFCP_MAX_PKT_REFS) {
                                p += efcp_wire_put_fc(p, EFCP_FT_CREDIT, f->remote_port,
                                                      f->local_port, f->rcv_adv);
                                pkt_ref(s, REF_CREDIT, f, f->rcv_adv);
                        } else {
                                left |= CTL_CREDIT;
                        }
                }
                if ((want & CTL_BLOCKED) && f->state == FS_OPEN) {
                        if (end - p >= EFCP_BLOCKED_LEN)
                                p += efcp_wire_put_blocked(p, f->remote_port, f->local_port,
                                                           f->snd_end, f->snd_una);
                        else
                                left |= CTL_BLOCKED;
                }
                if (left) {
                        f->ctl = left;
                        leftover = f; /* the packet is full: stop here */
                }
        }
        if (leftover) {
                /* back to the front of the FIFO so its turn is kept */
                leftover->on_ctl = true;
                leftover->ctl_next = a->ctl_head;
                if (a->ctl_head == EFCP_NIL)
                        a->ctl_tail = leftover->slot;
                a->ctl_head = leftover->slot;
        }
        return p;
}

/* Writes DATA frames while the scheduler has PDUs and they fit. */
static uint8_t *put_data(efcp_assoc *a, uint8_t *p, uint8_t *end, efcp_sent *s, bool *ret_any) {
        uint32_t seq;
        bool retx;
        efcp_flow *f;
        while (s->nrefs + 2 <= EFCP_MAX_PKT_REFS && end - p >= EFCP_DATA_HDR_LEN &&
               (f = efcp_sched_pick(a, &seq, &retx, (uint32_t)(end - p)))) {
                uint32_t k = seq & f->tx_mask, plen = f->tx_len[k];
                bool need_alloc = !f->alloc_acked && !pkt_has_alloc(s, f);
                size_t need = EFCP_DATA_HDR_LEN + plen + (need_alloc ? EFCP_ALLOC_LEN : 0);
                if (need > (size_t)(end - p))
                        break;
                if (need_alloc)
                        p = put_alloc(p, s, f);
                p += efcp_wire_put_data_hdr(p, f->tx_flags[k] & (TX_FIRST | TX_LAST),
                                            (uint16_t)plen, f->remote_port, f->local_port, seq);
                memcpy(p, f->tx_data + (size_t)k * a->payload_max, plen);
                p += plen;
                pkt_ref(s, REF_DATA, f, seq);
                efcp_sched_charge(a, f, EFCP_DATA_HDR_LEN + plen);
                efcp_flow_pdu_sent(f, seq, retx);
                *ret_any = true;
        }
        return p;
}

int efcp_output(efcp_assoc *a, void *buf, size_t cap, uint64_t now) {
        if (!a || !buf || cap < a->cfg.max_datagram)
                return -EINVAL;
        efcp_timeout(a, now);
        uint8_t *b = buf;
        size_t lim = a->cfg.max_datagram - a->trailer;
        uint8_t *p = b + EFCP_HDR_LEN, *end = b + lim;
        uint64_t pn = a->next_pn;
        bool eliciting = false, data = false;
        efcp_sent *s = NULL;
        uint64_t srtt = a->have_rtt ? a->srtt : a->cfg.initial_rtt_ns;

        if (a->dead) {
                /* only the confirmed close goes on (close.c) */
                p = efcp_close_put(a, p, end);
                goto seal;
        }
        bool ring_full = efcp_recovery_ring_full(a);
        bool data_ok = !ring_full && a->sched_head != EFCP_NIL &&
                       (a->probes || efcp_cc_can_send(&a->cc));
        if (data_ok && !a->probes && efcp_cc_pace_time(&a->cc, a->cfg.max_datagram, now, srtt) > now)
                data_ok = false;
        bool ctl_ok = !ring_full && (a->ctl_head != EFCP_NIL || a->ping_pending || a->nunsol ||
                                     efcp_close_has_output(a));
        bool ack_due = a->ack_pending && a->ack_now;
        if (!ack_due && !ctl_ok && !data_ok)
                return 0;

        /* An ACK that is due goes first; one that is merely pending rides at
         * the end of the datagram if there is room left (a full-size DATA
         * leaves none, and is worth more than an early ack). */
        if (ack_due || ring_full)
                p = put_ack(a, p, end, now);
        if (ring_full) {
                p = efcp_close_put(a, p, end); /* never held back by the ring */
                goto seal;
        }
        s = &a->sent[pn & a->sent_mask];
        s->nrefs = 0;
        while (a->nunsol > 0 && end - p >= EFCP_DEALLOC_LEN) {
                efcp_unsol *u = &a->unsol[--a->nunsol];
                p += efcp_wire_put_dealloc(p, u->step, u->flags, u->dst, u->src, u->reason, u->final);
                eliciting = true;
        }
        if (efcp_close_has_output(a)) {
                p = efcp_close_put(a, p, end);
                eliciting = true;
        }
        uint8_t *before = p;
        p = put_ctl(a, p, end, s);
        if (a->ping_pending && end - p >= 1) {
                p += efcp_wire_put_ping(p);
                a->ping_pending = false;
        }
        eliciting |= p != before;
        if (data_ok)
                p = put_data(a, p, end, s, &data);
        eliciting |= data;
        if (a->ack_pending && eliciting)
                p = put_ack(a, p, end, now);

seal:
        if (p == b + EFCP_HDR_LEN)
                return 0;
        efcp_seal_header(a, b, pn);
        size_t len = (size_t)(p - b);
        len = efcp_seal(a, b, len);
        a->next_pn++;
        a->st.dgrams_out++;
        a->st.bytes_out += len;
        if (eliciting && s) {
                s->pn = pn;
                s->time = now;
                s->bytes = (uint32_t)len;
                s->ack_eliciting = 1;
                efcp_recovery_on_sent(a, s, now);
                if (a->probes)
                        a->probes--;
                else if (data)
                        efcp_cc_pace_consume(&a->cc, (uint32_t)len, now, srtt);
        }
        return (int)len;
}
