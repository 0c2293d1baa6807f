/*
 * sched.c — who sends next: deficit round robin across the flows of an
 * association, and the FIFO of flows with control frames to send.
 *
 * DRR (Shreedhar & Varghese): backlogged flows sit on a ring. The flow at the
 * head gets one quantum (a full PDU) of credit per turn and sends PDUs while
 * its deficit covers them; then the turn passes. Flows of small messages and
 * flows of large ones thus get equal bytes, and a flow blocked by its credit
 * simply leaves the ring (efcp_flow_has_data() false) without holding up the
 * others. A flow rejoins when it has data again (send, credit, loss).
 *
 * Invariant: a flow is on the ring iff on_sched; on the control FIFO iff
 * on_ctl. Callers: flow.c, output.c, assoc.c.
 */
#include "efcp/internal.h"

void efcp_sched_add(efcp_assoc *a, efcp_flow *f) {
        /* a flow whose DEALLOC is out sends no more data */
        if (f->on_sched || f->state == FS_FREE || f->state == FS_QUARANTINE || f->dealloc_sent)
                return;
        f->on_sched = true;
        f->deficit = 0;
        f->turn = false;
        if (a->sched_head == EFCP_NIL) {
                f->sched_prev = f->sched_next = f->slot;
                a->sched_head = f->slot;
                return;
        }
        /* insert at the tail: just before the head */
        efcp_flow *h = &a->flows[a->sched_head];
        efcp_flow *t = &a->flows[h->sched_prev];
        f->sched_next = h->slot;
        f->sched_prev = t->slot;
        t->sched_next = f->slot;
        h->sched_prev = f->slot;
}

void efcp_sched_remove(efcp_assoc *a, efcp_flow *f) {
        if (!f->on_sched)
                return;
        f->on_sched = false;
        if (f->sched_next == f->slot) {
                a->sched_head = EFCP_NIL;
        } else {
                a->flows[f->sched_prev].sched_next = f->sched_next;
                a->flows[f->sched_next].sched_prev = f->sched_prev;
                if (a->sched_head == f->slot)
                        a->sched_head = f->sched_next;
        }
        f->sched_next = f->sched_prev = EFCP_NIL;
}

/* Picks the flow whose PDU goes next and the PDU (seq, retransmission?).
 * Returns NULL when nobody has data. room is only used to stop early. */
efcp_flow *efcp_sched_pick(efcp_assoc *a, uint32_t *ret_seq, bool *ret_retx, uint32_t room) {
        int32_t quantum = (int32_t)(a->payload_max + EFCP_DATA_HDR_LEN);
        /* each flow is visited at most twice per call: bounded work */
        for (uint32_t guard = 0; guard < 2 * a->cfg.max_flows + 2; guard++) {
                if (a->sched_head == EFCP_NIL)
                        return NULL;
                efcp_flow *f = &a->flows[a->sched_head];
                if (!efcp_flow_next_pdu(f, ret_seq, ret_retx)) {
                        efcp_sched_remove(a, f);
                        continue;
                }
                int32_t len = (int32_t)(efcp_flow_pdu_len(f, *ret_seq) + EFCP_DATA_HDR_LEN);
                if ((uint32_t)len > room)
                        return NULL;
                if (f->deficit >= len)
                        return f;
                if (!f->turn) {
                        f->turn = true;
                        f->deficit += quantum;
                        if (f->deficit >= len)
                                return f;
                }
                /* turn over: keep the leftover deficit, pass to the next flow */
                f->turn = false;
                a->sched_head = f->sched_next;
        }
        return NULL;
}

void efcp_sched_charge(efcp_assoc *a, efcp_flow *f, uint32_t bytes) {
        (void)a;
        f->deficit -= (int32_t)bytes;
}

void efcp_ctl_add(efcp_assoc *a, efcp_flow *f, uint8_t what) {
        f->ctl |= what;
        if (f->on_ctl)
                return;
        f->on_ctl = true;
        f->ctl_next = EFCP_NIL;
        if (a->ctl_head == EFCP_NIL)
                a->ctl_head = f->slot;
        else
                a->flows[a->ctl_tail].ctl_next = f->slot;
        a->ctl_tail = f->slot;
}

efcp_flow *efcp_ctl_pop(efcp_assoc *a) {
        if (a->ctl_head == EFCP_NIL)
                return NULL;
        efcp_flow *f = &a->flows[a->ctl_head];
        a->ctl_head = f->ctl_next;
        f->on_ctl = false;
        f->ctl_next = EFCP_NIL;
        return f;
}
