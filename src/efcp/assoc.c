/*
 * assoc.c — the association with one peer host: creation, input dispatch,
 * timers, the event queue, flow allocation from the peer, and death.
 *
 * Input: a datagram is checked whole (length, header, receiver index, CRC)
 * before any frame is acted on; its packet number must be new; then frames
 * are processed in order. A malformed frame stops processing of the datagram
 * (frames already processed stay processed: each is independently valid) and
 * is counted. Nothing a peer sends can make the engine allocate beyond
 * max_flows flows of configured size.
 *
 * Life: a peer silent for peer_timeout is dead (EFCP_EV_PEER_TIMEOUT, each
 * open flow gets EFCP_EV_FLOW_DEALLOCATED). A port-id released stays in
 * quarantine for quarantine_ns so late packets of its old flow cannot reach a
 * new one; frames arriving for it are answered with a DEALLOC.
 *
 * Callers: the application through efcp.h; one thread at a time.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "efcp/internal.h"

/* Defaults for a LAN: 1 ms timer floors (not TCP's 1 s), a 60 s peer
 * timeout so that a 30 s outage is survived, a 10 s quarantine (2·MPL + A + R
 * with MPL of a few seconds). */
void efcp_config_default(efcp_config *c) {
        *c = (efcp_config){
                .max_datagram = 1472,
                .max_flows = 64,
                .max_msg = 65536,
                .flow_window = 256,
                .flow_send_buf = 256,
                .max_inflight = 4096,
                .cc = EFCP_CC_NEWRENO,
                .ack_every = 2,
                .pacing = true,
                .initial_rtt_ns = 10000000,
                .max_ack_delay_ns = 1000000,
                .granularity_ns = 1000000,
                .max_pto_ns = 1000000000,
                .keepalive_ns = 2000000000,
                .peer_timeout_ns = 60000000000ull,
                .quarantine_ns = 10000000000ull,
                .flow_idle_ns = 0,
                .close_linger_ns = 60000000000ull,
                .seed = 1,
        };
}

/* Refuses configurations the engine could not honour (sizes that do not fit
 * the wire fields or the rings, zero timers). */
static int config_check(const efcp_config *c) {
        if (c->max_datagram < 256 || c->max_datagram > 65507 || c->max_flows == 0 ||
            c->max_flows > EFCP_MAX_FLOWS_LIMIT || c->flow_window == 0 || c->flow_window > (1u << 20) ||
            c->flow_send_buf == 0 || c->flow_send_buf > (1u << 20) || c->max_inflight < 16 ||
            c->max_inflight > (1u << 20) || c->cc > EFCP_CC_CUBIC ||
            c->ack_every == 0 || c->ack_every > 64 || c->max_ack_delay_ns == 0 ||
            c->granularity_ns == 0 || c->max_pto_ns == 0 || c->peer_timeout_ns == 0 ||
            c->initial_rtt_ns == 0 || c->keepalive_ns == 0 || c->max_msg > (1u << 30))
                return -EINVAL;
        /* the largest message must fit both windows, or it could never go */
        uint32_t pm = c->max_datagram - EFCP_HDR_LEN - EFCP_TAG_LEN - EFCP_DATA_HDR_LEN -
                      EFCP_ALLOC_LEN; /* the smallest fragment size (flow.c) */
        uint32_t frags = c->max_msg / pm + 1;
        if (frags > c->flow_window || frags > c->flow_send_buf)
                return -EINVAL;
        return 0;
}

/* All per-association memory is taken here: the sent-packet ring, the flow
 * slots, the event queue. Flows take their rings when they are created. */
int efcp_assoc_new(const efcp_config *cfg, uint64_t now_ns, efcp_assoc **ret_assoc) {
        if (!cfg || !ret_assoc || config_check(cfg) < 0)
                return -EINVAL;
        efcp_assoc *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->cfg = *cfg;
        a->seal = &efcp_seal_plain;
        a->trailer = efcp_seal_plain.trailer;
        /* the payload size leaves room for a 16-byte tag, so that the later
         * authenticated mode carries the same PDUs in the same datagrams */
        a->payload_max = cfg->max_datagram - EFCP_HDR_LEN - EFCP_TAG_LEN - EFCP_DATA_HDR_LEN;
        a->max_frags = cfg->max_msg / (a->payload_max - EFCP_ALLOC_LEN) + 1;
        uint32_t ring = 1;
        while (ring < cfg->max_inflight)
                ring <<= 1;
        a->sent_mask = ring - 1;
        a->sent = calloc(ring, sizeof(efcp_sent));
        a->flows = calloc(cfg->max_flows, sizeof(efcp_flow));
        a->ev_cap = 2 * cfg->max_flows + 16;
        a->ev = calloc(a->ev_cap, sizeof(efcp_event));
        uint32_t buckets = 16;
        while (buckets < cfg->max_flows)
                buckets <<= 1;
        a->hash_mask = buckets - 1;
        a->port_hash = malloc(buckets * sizeof(uint16_t));
        a->free_slots = malloc(cfg->max_flows * sizeof(uint16_t));
        if (!a->sent || !a->flows || !a->ev || !a->port_hash || !a->free_slots)
                return efcp_assoc_free(a), -ENOMEM;
        for (uint32_t i = 0; i < buckets; i++)
                a->port_hash[i] = EFCP_NIL;
        /* slot 0 on top: flows take the lowest free slots first */
        for (uint32_t i = 0; i < cfg->max_flows; i++)
                a->free_slots[i] = (uint16_t)(cfg->max_flows - 1 - i);
        a->n_free = cfg->max_flows;
        for (uint32_t i = 0; i < ring; i++)
                a->sent[i].pn = UINT64_MAX;
        for (uint32_t i = 0; i < cfg->max_flows; i++) {
                a->flows[i].slot = (uint16_t)i;
                a->flows[i].ctl_next = a->flows[i].sched_next = a->flows[i].sched_prev = EFCP_NIL;
                a->flows[i].ready_next = a->flows[i].hash_next = EFCP_NIL;
        }
        a->ctl_head = a->ctl_tail = a->sched_head = EFCP_NIL;
        a->rdy_head = a->rdy_tail = EFCP_NIL;
        a->flow_timer_at = UINT64_MAX;
        efcp_cc_init(&a->cc, (int)cfg->cc, cfg->max_datagram, cfg->pacing);
        a->now = now_ns;
        a->last_rx = now_ns;
        a->last_eliciting_sent = now_ns;
        *ret_assoc = a;
        return 0;
}

/* Frees everything, flows included; pointers to flows die with it. */
efcp_assoc *efcp_assoc_free(efcp_assoc *a) {
        if (!a)
                return NULL;
        if (a->flows)
                for (uint32_t i = 0; i < a->cfg.max_flows; i++)
                        if (a->flows[i].state != FS_FREE)
                                efcp_flow_release(&a->flows[i]);
        free(a->flows);
        free(a->sent);
        free(a->ev);
        free(a->port_hash);
        free(a->free_slots);
        free(a);
        return NULL;
}

/* ---- events and lookups ------------------------------------------------ */

/* Queues an event for the application (f borrowed, may be NULL). */
void efcp_assoc_event(efcp_assoc *a, efcp_event_type type, const efcp_flow *f, uint32_t reason) {
        if (a->ev_count == a->ev_cap)
                return; /* the caller does not drain: bounded, oldest kept */
        efcp_event *e = &a->ev[(a->ev_head + a->ev_count++) % a->ev_cap];
        *e = (efcp_event){.type = type, .reason = reason};
        if (f) {
                e->local_port = f->local_port;
                e->remote_port = f->remote_port;
                e->policy = f->policy;
        }
}

/* Pops the oldest event (copied into *ret_ev). */
int efcp_event_next(efcp_assoc *a, efcp_event *ret_ev) {
        if (!a || !ret_ev || a->ev_count == 0)
                return 0;
        *ret_ev = a->ev[a->ev_head];
        a->ev_head = (a->ev_head + 1) % a->ev_cap;
        a->ev_count--;
        return 1;
}

/* Any slot (live or quarantined) bound to local_port, or NULL. */
/* The port-id index: a chained hash of the slots not FREE (quarantined ones
 * included: their port-id is still taken), so that finding the flow of a
 * frame costs the same with 10 flows or 60,000. */
static uint32_t port_bucket(const efcp_assoc *a, uint32_t port) {
        return (port * 0x9e3779b1u >> 7) & a->hash_mask;
}

static efcp_flow *assoc_find(efcp_assoc *a, uint32_t local_port) {
        for (uint16_t i = a->port_hash[port_bucket(a, local_port)]; i != EFCP_NIL; i = a->flows[i].hash_next) {
                efcp_flow *f = &a->flows[i];
                if (f->local_port == local_port)
                        return f;
        }
        return NULL;
}

void efcp_assoc_slot_taken(efcp_assoc *a, efcp_flow *f) {
        uint32_t b = port_bucket(a, f->local_port);
        f->hash_next = a->port_hash[b];
        a->port_hash[b] = f->slot;
}

void efcp_assoc_slot_freed(efcp_assoc *a, efcp_flow *f) {
        uint16_t *link = &a->port_hash[port_bucket(a, f->local_port)];
        while (*link != EFCP_NIL && *link != f->slot)
                link = &a->flows[*link].hash_next;
        if (*link == f->slot)
                *link = f->hash_next;
        f->hash_next = EFCP_NIL;
        a->free_slots[a->n_free++] = f->slot;
}

/* ---- the ready list ------------------------------------------------------ */

void efcp_flow_notify(efcp_flow *f) {
        efcp_assoc *a = f->a;
        if (f->on_ready || f->app_closed)
                return;
        f->on_ready = true;
        f->ready_next = EFCP_NIL;
        if (a->rdy_head == EFCP_NIL)
                a->rdy_head = f->slot;
        else
                a->flows[a->rdy_tail].ready_next = f->slot;
        a->rdy_tail = f->slot;
}

efcp_flow *efcp_assoc_next_ready(efcp_assoc *a) {
        while (a && a->rdy_head != EFCP_NIL) {
                efcp_flow *f = &a->flows[a->rdy_head];
                a->rdy_head = f->ready_next;
                f->on_ready = false;
                f->ready_next = EFCP_NIL;
                /* a slot freed or closed while on the list has nothing to say */
                if ((f->state == FS_OPEN || f->state == FS_DEALLOCATED) && !f->app_closed)
                        return f;
        }
        return NULL;
}

void efcp_flow_set_user(efcp_flow *f, void *user) {
        if (f)
                f->user = user;
}

void *efcp_flow_user(const efcp_flow *f) { return f ? f->user : NULL; }

efcp_flow *efcp_assoc_lookup(efcp_assoc *a, uint32_t local_port) { return assoc_find(a, local_port); }

efcp_flow *efcp_flow_get(efcp_assoc *a, uint32_t local_port) {
        efcp_flow *f = a ? assoc_find(a, local_port) : NULL;
        return f && !f->app_closed && f->state != FS_QUARANTINE ? f : NULL;
}

/* Queues a DEALLOC frame that no flow slot holds: a refusal, an answer, a
 * step of someone else's request (bounded, deduplicated by ports and step:
 * if it is lost, the peer's next frame for that flow brings another). */
void efcp_assoc_unsolicited(efcp_assoc *a, uint8_t step, uint8_t flags, uint32_t dst, uint32_t src,
                            uint32_t reason, uint32_t final) {
        for (uint32_t i = 0; i < a->nunsol; i++)
                if (a->unsol[i].dst == dst && a->unsol[i].src == src && a->unsol[i].step == step)
                        return;
        if (a->nunsol < EFCP_UNSOL_MAX)
                a->unsol[a->nunsol++] = (efcp_unsol){.dst = dst, .src = src, .reason = reason,
                                                     .final = final, .step = step, .flags = flags};
}

/* ---- death --------------------------------------------------------------- */

/* The peer is gone (timeout), closed (confirmed), or broke the protocol:
 * every open flow is deallocated with the reason, flows the application
 * already closed go to quarantine, and nothing but CLOSE frames is sent or
 * accepted any more (close.c). */
void efcp_assoc_die(efcp_assoc *a, uint32_t flow_reason, efcp_event_type ev_type, uint32_t ev_reason) {
        if (a->dead)
                return;
        a->dead = true;
        if (!a->closer)
                a->close_reason = flow_reason;
        for (uint32_t i = 0; i < a->cfg.max_flows; i++) {
                efcp_flow *f = &a->flows[i];
                if (f->state == FS_OPEN)
                        efcp_flow_peer_dealloc(f, flow_reason);
                else if (f->state == FS_CLOSING)
                        efcp_flow_quarantine(f, a->now);
        }
        efcp_assoc_event(a, ev_type, NULL, ev_reason);
}

void efcp_assoc_protocol_error(efcp_assoc *a) {
        if (a->dead)
                return;
        efcp_assoc_die(a, EFCP_REASON_PROTOCOL_ERROR, EFCP_EV_PROTOCOL_ERROR,
                       EFCP_REASON_PROTOCOL_ERROR);
        efcp_close_start(a, EFCP_REASON_PROTOCOL_ERROR);
}

void efcp_assoc_close(efcp_assoc *a, uint32_t reason) {
        if (!a || a->dead)
                return;
        for (uint32_t i = 0; i < a->cfg.max_flows; i++) {
                efcp_flow *f = &a->flows[i];
                if (f->state == FS_OPEN || f->state == FS_CLOSING) {
                        f->state = FS_DEALLOCATED;
                        f->reason = reason;
                        efcp_sched_remove(a, f);
                        f->ctl = 0;
                }
        }
        efcp_close_start(a, reason);
}

void efcp_assoc_abort(efcp_assoc *a, uint32_t reason) {
        if (a)
                efcp_assoc_die(a, reason, EFCP_EV_PEER_CLOSED, reason);
}

bool efcp_assoc_dead(const efcp_assoc *a) { return a->dead; }
void efcp_assoc_set_remote_index(efcp_assoc *a, uint32_t remote_index) { a->cfg.remote_index = remote_index; }
const efcp_stats *efcp_assoc_stats(const efcp_assoc *a) { return &a->st; }

void efcp_assoc_path(const efcp_assoc *a, efcp_path_info *ret) {
        *ret = (efcp_path_info){
                .srtt_ns = a->srtt,
                .rttvar_ns = a->rttvar,
                .min_rtt_ns = a->min_rtt,
                .latest_rtt_ns = a->latest_rtt,
                .cwnd = a->cc.cwnd,
                .ssthresh = a->cc.ssthresh,
                .bytes_in_flight = a->cc.bytes_in_flight,
                .pto_count = a->pto_count,
                .dead = a->dead,
        };
}

/* ---- input ----------------------------------------------------------------- */

/* Is the frame about the flow f as the peer sees it (dst ours, src theirs)? */
efcp_flow *efcp_assoc_flow_for(efcp_assoc *a, uint32_t dst, uint32_t src) {
        efcp_flow *f = assoc_find(a, dst);
        return f && f->remote_port == src ? f : NULL;
}

/* An ALLOC from the peer: the answer to our open, a repeat, or a new flow
 * (created if it fits our bounds, else refused with a reason). */
static void input_alloc(efcp_assoc *a, const efcp_frame *fr) {
        uint32_t dst = fr->u.alloc.dst, src = fr->u.alloc.src;
        efcp_flow *f = assoc_find(a, dst);
        if (f) {
                if (f->remote_port != src || f->state == FS_QUARANTINE)
                        efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, src, dst,
                                               EFCP_REASON_PORT_BUSY, 0);
                else if (f->state == FS_OPEN)
                        efcp_flow_rx_alloc(f, fr); /* the answer to our open, or a repeat */
                return;
        }
        /* a new flow from the peer: its promises must fit our bounds */
        if ((fr->u.alloc.policy & ~3u) || fr->u.alloc.credit == 0 ||
            fr->u.alloc.credit > a->cfg.flow_window || fr->u.alloc.max_msg > a->cfg.max_msg) {
                efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, src, dst,
                                       EFCP_REASON_NO_RESOURCES, 0);
                return;
        }
        if (efcp_flow_create(a, dst, src, fr->u.alloc.policy, &f) < 0) {
                efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, src, dst,
                                       EFCP_REASON_NO_RESOURCES, 0);
                return;
        }
        efcp_flow_rx_alloc(f, fr);
        efcp_flow_policy pol = {.flags = fr->u.alloc.policy, .isn_random = true};
        efcp_flow_start(f, &pol); /* our ALLOC tells the peer our ISN */
        efcp_assoc_event(a, EFCP_EV_FLOW_ALLOCATED, f, 0);
}

/* The peer spoke of a flow that is gone here (f: its slot, deallocated or
 * quarantined, or NULL): say so again with a flow-less DEALLOC request and
 * its reason — this recovers a lost DEALLOC. A flow-less request carries one
 * of the engine's reasons (dealloc.c): a flow that ended normally or with an
 * application's reason did so by the confirmed exchange, which the peer
 * completes by itself; here it is UNKNOWN_FLOW. */
static void tell_flow_gone(efcp_assoc *a, const efcp_flow *f, uint32_t dst, uint32_t src) {
        efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, src, dst,
                               f && efcp_reason_is_engine(f->reason) ? f->reason : EFCP_REASON_UNKNOWN_FLOW, 0);
}

/* Acts on one frame of a datagram that passed every check. fr borrows the
 * datagram. */
static void input_frame(efcp_assoc *a, const efcp_frame *fr, uint64_t now) {
        efcp_flow *f;
        switch (fr->type) {
        case EFCP_FT_ACK:
                efcp_recovery_on_ack(a, fr, now);
                break;
        case EFCP_FT_DATA:
                f = efcp_assoc_flow_for(a, fr->u.data.dst, fr->u.data.src);
                if (f && (f->state == FS_OPEN || f->state == FS_CLOSING)) {
                        efcp_flow_rx_data(f, fr, now);
                } else {
                        /* the flow is gone here (never existed, deallocated,
                         * discarded, quarantined): the peer's view is stale, so
                         * tell it again; this recovers a lost DEALLOC */
                        a->st.pdus_dropped++;
                        tell_flow_gone(a, f, fr->u.data.dst, fr->u.data.src);
                }
                break;
        case EFCP_FT_CREDIT:
                f = efcp_assoc_flow_for(a, fr->u.fc.dst, fr->u.fc.src);
                if (f && (f->state == FS_OPEN || f->state == FS_CLOSING))
                        efcp_flow_rx_credit(f, fr->u.fc.value);
                break;
        case EFCP_FT_BLOCKED:
                f = efcp_assoc_flow_for(a, fr->u.fc.dst, fr->u.fc.src);
                if (f && f->state == FS_OPEN)
                        efcp_flow_rx_blocked(f, fr->u.fc.value, fr->u.fc.acked);
                else if (f && f->state != FS_CLOSING)
                        /* a sender stopped by credit on a flow that ended
                         * here (its DEALLOC request lost): it sends nothing
                         * else that would tell it. Not for a flow never
                         * seen: its BLOCKED may be ahead of its ALLOC. */
                        tell_flow_gone(a, f, fr->u.fc.dst, fr->u.fc.src);
                break;
        case EFCP_FT_ALLOC:
                input_alloc(a, fr);
                break;
        case EFCP_FT_DEALLOC:
                efcp_dealloc_input(a, fr);
                break;
        case EFCP_FT_CLOSE:
                efcp_close_input(a, fr);
                break;
        default: /* PING, PADDING: nothing beyond eliciting an ack */
                break;
        }
}

/* A dead association still takes part in the confirmed close: it answers
 * CLOSE frames, and tells a peer that missed the close (close.c). Nothing
 * else in the datagram is acted on. */
static int input_dead(efcp_assoc *a, const uint8_t *fp, size_t flen) {
        efcp_frame fr;
        bool closing = false;
        for (size_t off = 0; off < flen;) {
                int n = efcp_wire_get_frame(fp + off, flen - off, &fr);
                if (fr.type == EFCP_FT_CLOSE) {
                        efcp_close_input(a, &fr);
                        closing = true;
                }
                off += (size_t)n;
        }
        if (!closing)
                efcp_close_stranger(a);
        return -ENOTCONN;
}

int efcp_datagram_index(const void *dgram, size_t len, uint32_t *ret_index) {
        efcp_hdr h;
        if (!dgram || !ret_index || efcp_wire_get_hdr(dgram, len, &h) < 0)
                return -EBADMSG;
        *ret_index = h.rx_index;
        return 0;
}

int efcp_input(efcp_assoc *a, const void *dgram, size_t len, uint64_t now) {
        if (!a || (!dgram && len))
                return -EINVAL;
        a->now = now;
        a->st.dgrams_in++;
        a->st.bytes_in += len;
        const uint8_t *p = dgram;
        efcp_hdr h;
        if (len > 65535 || efcp_wire_get_hdr(p, len, &h) < 0 || h.rx_index != a->cfg.local_index) {
                a->st.bad_header++;
                return -EBADMSG;
        }
        const uint8_t *fp;
        size_t flen;
        if (efcp_unseal(a, p, len, &h, &fp, &flen) < 0) {
                a->st.bad_crc++;
                return -EBADMSG;
        }
        /* pass 1: parse everything; a datagram with any malformed frame is
         * dropped whole, before its packet number is recorded */
        size_t off = 0;
        bool eliciting = false;
        efcp_frame fr;
        while (off < flen) {
                int n = efcp_wire_get_frame(fp + off, flen - off, &fr);
                if (n < 0) {
                        a->st.bad_frame++;
                        return -EBADMSG;
                }
                if (fr.type != EFCP_FT_ACK && fr.type != EFCP_FT_PADDING)
                        eliciting = true;
                off += (size_t)n;
        }
        int r = efcp_rx_record(a, h.pn, eliciting, now);
        if (r < 0) {
                if (r == -EALREADY)
                        a->st.dup_packets++;
                else if (r == -ERANGE)
                        a->st.pn_too_far++;
                else
                        a->st.old_packets++;
                return r;
        }
        if (a->dead)
                return input_dead(a, fp, flen);
        a->last_rx = now;
        /* pass 2: act */
        for (off = 0; off < flen && !a->dead;) {
                int n = efcp_wire_get_frame(fp + off, flen - off, &fr);
                input_frame(a, &fr, now);
                off += (size_t)n;
        }
        efcp_timeout(a, now);
        return 0;
}

/* ---- timers ---------------------------------------------------------------- */

/* Per-flow timers (quarantine expiry, idle discard) are not polled: one scan
 * runs when the earliest of them is due and finds the next earliest. A timer
 * that moved later (activity) only causes a scan that finds nothing. */
static void assoc_flow_timers(efcp_assoc *a, uint64_t now) {
        uint64_t next = UINT64_MAX;
        for (uint32_t i = 0; i < a->cfg.max_flows; i++) {
                efcp_flow *f = &a->flows[i];
                uint64_t t = UINT64_MAX;
                if (f->state == FS_QUARANTINE) {
                        if (now >= f->quarantine_until)
                                efcp_flow_release(f);
                        else
                                t = f->quarantine_until;
                } else if (f->state == FS_CLOSING && !f->dealloc_sent) {
                        if (now >= f->close_deadline)
                                efcp_flow_check_close(f);
                        else
                                t = f->close_deadline;
                } else if (f->state == FS_OPEN && a->cfg.flow_idle_ns) {
                        t = f->last_activity + a->cfg.flow_idle_ns;
                        if (now >= t && f->snd_una == f->snd_end) {
                                /* delta-t: state of an idle flow is discarded */
                                efcp_flow_peer_dealloc(f, EFCP_REASON_IDLE);
                                efcp_assoc_unsolicited(a, EFCP_STEP_REQUEST, 0, f->remote_port,
                                                       f->local_port, EFCP_REASON_IDLE, 0);
                                continue;
                        }
                        if (now >= t)
                                t = now + a->cfg.flow_idle_ns; /* busy: look again later */
                }
                if (f->state == FS_OPEN || f->state == FS_CLOSING) {
                        uint64_t d = efcp_dealloc_timers(f, now);
                        if (d < t)
                                t = d;
                        d = efcp_flow_blocked_timer(f, now);
                        if (d < t)
                                t = d;
                }
                if (t < next)
                        next = t;
        }
        a->flow_timer_at = next;
}

void efcp_assoc_flow_timer(efcp_assoc *a, uint64_t at) {
        if (at < a->flow_timer_at)
                a->flow_timer_at = at;
}

void efcp_timeout(efcp_assoc *a, uint64_t now) {
        if (!a)
                return;
        a->now = now;
        efcp_close_timeout(a, now);
        if (a->dead)
                return;
        if (now >= a->last_rx + a->cfg.peer_timeout_ns) {
                efcp_assoc_die(a, EFCP_REASON_PEER_TIMEOUT, EFCP_EV_PEER_TIMEOUT,
                               EFCP_REASON_PEER_TIMEOUT);
                return;
        }
        efcp_recovery_timeout(a, now);
        if (a->ack_pending && a->ack_deadline && now >= a->ack_deadline)
                a->ack_now = true;
        if (a->eliciting_in_flight == 0 && now >= a->last_eliciting_sent + a->cfg.keepalive_ns)
                a->ping_pending = true;
        if (now >= a->flow_timer_at)
                assoc_flow_timers(a, now);
}

/* The earliest of: an ack that is due, control frames waiting, the loss or
 * probe timer, the delayed-ack timer, the pacer (only if data waits and
 * cwnd allows), keepalive, peer timeout, and the per-flow timers. "now"
 * means: call efcp_output() again. */
uint64_t efcp_next_deadline(const efcp_assoc *a) {
        if (!a)
                return UINT64_MAX;
        uint64_t d = efcp_close_deadline(a);
        if (a->dead)
                return d;
        bool ring_full = efcp_recovery_ring_full(a);
        if (a->ack_now && a->ack_pending)
                return a->now;
        if (!ring_full && (a->ctl_head != EFCP_NIL || a->ping_pending || a->nunsol))
                return a->now;
        uint64_t t = efcp_recovery_deadline(a);
        if (t < d)
                d = t;
        if (a->ack_pending && a->ack_deadline && a->ack_deadline < d)
                d = a->ack_deadline;
        if (a->sched_head != EFCP_NIL && !ring_full) {
                if (a->probes)
                        return a->now;
                if (efcp_cc_can_send(&a->cc)) {
                        uint64_t pace = efcp_cc_pace_time(&a->cc, a->cfg.max_datagram, a->now,
                                                          a->have_rtt ? a->srtt : a->cfg.initial_rtt_ns);
                        if (pace < d)
                                d = pace;
                }
        }
        t = a->last_rx + a->cfg.peer_timeout_ns;
        if (t < d)
                d = t;
        if (a->eliciting_in_flight == 0) {
                t = a->last_eliciting_sent + a->cfg.keepalive_ns;
                if (t < d)
                        d = t;
        }
        if (a->flow_timer_at < d)
                d = a->flow_timer_at;
        return d;
}
