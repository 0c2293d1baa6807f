/*
 * recovery.c — the two packet-number spaces of an association, after
 * RFC 9002 (QUIC loss detection and congestion control).
 *
 * Outgoing: every datagram gets the next 64-bit packet number (never reused:
 * later the AEAD nonce). Ack-eliciting packets are remembered in a ring indexed
 * by pn until acknowledged or declared lost. A packet is lost when a packet
 * sent 3 numbers later is acknowledged, or when it is older than
 * 9/8·max(srtt, latest_rtt) (at least the granularity) at the time a later one
 * is acknowledged. When no ack arrives for a probe timeout
 * (srtt + max(4·rttvar, granularity) + max_ack_delay, doubled per expiry,
 * capped by max_pto), the oldest packet's data is queued again and two probes
 * go out, regardless of cwnd.
 *
 * Incoming: the numbers received are kept as at most EFCP_RX_RANGES disjoint
 * ranges (descending); a number already seen is a duplicate, a number below
 * the oldest range we still remember is refused as stale. The ranges are what
 * our ACK frames carry. An ACK is due at once when a gap appears or two
 * ack-eliciting packets are unacknowledged, else after max_ack_delay.
 *
 * Callers: assoc.c (input, timers) and output.c (sending). Invariant:
 * sent_lo <= every outstanding pn < next_pn, next_pn - sent_lo <= ring size.
 */
#include <errno.h>
#include <string.h>

#include "efcp/internal.h"

/* ---- incoming numbers ------------------------------------------------- */

int efcp_rx_record(efcp_assoc *a, uint64_t pn, bool eliciting, uint64_t now) {
        if (pn < a->rx_floor)
                return -ESTALE;
        /* a number far beyond anything an honest peer can have reached would
         * make us acknowledge what it never sent (and it could never catch up) */
        uint64_t top = a->nrxr ? a->rxr[0].hi : 0;
        if (pn > top && pn - top > EFCP_PN_MAX_JUMP)
                return -ERANGE;
        uint32_t n = a->nrxr, i = 0;
        /* find the first range entirely below pn (ranges are descending) */
        while (i < n && a->rxr[i].hi >= pn) {
                if (a->rxr[i].lo <= pn)
                        return -EALREADY;
                i++;
        }
        /* a gap appears, or one is being filled: acknowledge at once so the
         * sender repairs (or stops repairing) quickly */
        if (eliciting && n > 0 && pn != a->rxr[0].hi + 1)
                a->ack_now = true;
        if (n == 0 || pn > a->rxr[0].hi)
                a->largest_rx_time = now;
        bool joins_above = i > 0 && a->rxr[i - 1].lo == pn + 1;
        bool joins_below = i < n && a->rxr[i].hi + 1 == pn;
        if (joins_above && joins_below) {
                a->rxr[i - 1].lo = a->rxr[i].lo;
                memmove(&a->rxr[i], &a->rxr[i + 1], (n - i - 1) * sizeof(a->rxr[0]));
                a->nrxr--;
        } else if (joins_above) {
                a->rxr[i - 1].lo = pn;
        } else if (joins_below) {
                a->rxr[i].hi = pn;
        } else {
                if (n == EFCP_RX_RANGES) {
                        /* forget the oldest range; numbers up to it become stale */
                        if (i == n) {
                                a->rx_floor = pn + 1;
                                goto counted;
                        }
                        a->rx_floor = a->rxr[n - 1].hi + 1;
                        n = --a->nrxr;
                }
                memmove(&a->rxr[i + 1], &a->rxr[i], (n - i) * sizeof(a->rxr[0]));
                a->rxr[i].lo = a->rxr[i].hi = pn;
                a->nrxr++;
        }
counted:
        /* packets that only acknowledge are acknowledged along with others,
         * never on their own (no ack of acks) */
        if (eliciting) {
                a->ack_pending = true;
                if (++a->unacked_eliciting >= a->cfg.ack_every)
                        a->ack_now = true;
                else if (a->ack_deadline == 0)
                        a->ack_deadline = now + a->cfg.max_ack_delay_ns;
        }
        return 0;
}

/* An ACK went out: nothing is pending until the next ack-eliciting packet. */
void efcp_rx_ack_sent(efcp_assoc *a) {
        a->ack_pending = false;
        a->ack_now = false;
        a->unacked_eliciting = 0;
        a->ack_deadline = 0;
}

/* Copies the newest max ranges into ret (caller-owned). */
uint32_t efcp_rx_ack_ranges(const efcp_assoc *a, efcp_ack_range *ret, uint32_t max) {
        uint32_t n = a->nrxr < max ? a->nrxr : max;
        memcpy(ret, a->rxr, n * sizeof(*ret));
        return n;
}

/* ---- RTT -------------------------------------------------------------- */

/* RFC 9002 §5.3. latest: time from sending the largest newly acked packet
 * to its ack; ack_delay: what the peer says it held the ack. */
static void rtt_update(efcp_assoc *a, uint64_t latest, uint64_t ack_delay) {
        a->latest_rtt = latest;
        if (!a->have_rtt) {
                a->have_rtt = true;
                a->min_rtt = a->srtt = latest;
                a->rttvar = latest / 2;
                return;
        }
        if (latest < a->min_rtt)
                a->min_rtt = latest;
        /* discount the peer's ack delay, bounded by what it promised, and never
         * below the minimum RTT */
        if (ack_delay > a->cfg.max_ack_delay_ns)
                ack_delay = a->cfg.max_ack_delay_ns;
        uint64_t adj = latest >= a->min_rtt + ack_delay ? latest - ack_delay : latest;
        uint64_t dev = a->srtt > adj ? a->srtt - adj : adj - a->srtt;
        a->rttvar = (3 * a->rttvar + dev) / 4;
        a->srtt = (7 * a->srtt + adj) / 8;
}

static uint64_t rtt_srtt(const efcp_assoc *a) { return a->have_rtt ? a->srtt : a->cfg.initial_rtt_ns; }

/* The probe timeout with its exponential backoff, capped by max_pto (a long
 * outage is then noticed within max_pto of its end). */
uint64_t efcp_recovery_pto(const efcp_assoc *a) {
        uint64_t srtt = rtt_srtt(a);
        uint64_t var = a->have_rtt ? a->rttvar : srtt / 2;
        uint64_t v4 = 4 * var > a->cfg.granularity_ns ? 4 * var : a->cfg.granularity_ns;
        /* the peer may hold its ack for max_ack_delay only while fewer than
         * ack_every packets are unacknowledged; with more in flight it acks
         * at once, and waiting for its delay would only lengthen the stall
         * after a lost tail (at loopback RTTs the delay dwarfs the RTT) */
        uint64_t pto = srtt + v4 + (a->eliciting_in_flight < a->cfg.ack_every ? a->cfg.max_ack_delay_ns : 0);
        for (uint32_t i = 0; i < a->pto_count && pto < a->cfg.max_pto_ns; i++)
                pto *= 2;
        return pto < a->cfg.max_pto_ns ? pto : a->cfg.max_pto_ns;
}

uint64_t efcp_recovery_backoff(const efcp_assoc *a, uint32_t tries) {
        uint64_t t = efcp_recovery_pto(a);
        for (uint32_t i = 0; i < tries && t < a->cfg.max_pto_ns; i++)
                t *= 2;
        return t < a->cfg.max_pto_ns ? t : a->cfg.max_pto_ns;
}

/* ---- outgoing numbers ------------------------------------------------- */

bool efcp_recovery_ring_full(const efcp_assoc *a) {
        return a->next_pn - a->sent_lo > a->sent_mask;
}

static efcp_flow *ref_flow(efcp_assoc *a, const efcp_ref *r) {
        if (r->slot >= a->cfg.max_flows)
                return NULL;
        efcp_flow *f = &a->flows[r->slot];
        return f->state != FS_FREE && f->gen == r->gen ? f : NULL;
}

void efcp_recovery_on_sent(efcp_assoc *a, efcp_sent *s, uint64_t now) {
        s->outstanding = s->ack_eliciting;
        s->lost = 0;
        if (s->ack_eliciting) {
                s->in_flight = 1;
                a->eliciting_in_flight++;
                a->last_eliciting_sent = now;
                s->app_limited = a->cc.bytes_in_flight + s->bytes < a->cc.cwnd / 2;
                efcp_cc_on_sent(&a->cc, s->bytes, now);
        }
}

static void pkt_acked(efcp_assoc *a, efcp_sent *s, uint64_t now) {
        s->outstanding = 0;
        a->eliciting_in_flight--;
        efcp_cc_on_acked(&a->cc, s->bytes, s->time, now, rtt_srtt(a), s->app_limited);
        for (uint32_t i = 0; i < s->nrefs; i++) {
                efcp_flow *f = ref_flow(a, &s->refs[i]);
                if (f)
                        efcp_flow_on_acked(f, &s->refs[i]);
        }
}

static void pkt_lost(efcp_assoc *a, efcp_sent *s) {
        s->outstanding = 0;
        s->lost = 1;
        a->eliciting_in_flight--;
        a->st.pkts_lost++;
        /* remember it for a while: an ACK may yet show the loss was spurious */
        if (a->nlost_recent == EFCP_LOST_RECENT)
                memmove(a->lost_recent, a->lost_recent + 1, --a->nlost_recent * sizeof(uint64_t));
        a->lost_recent[a->nlost_recent++] = s->pn;
        efcp_cc_on_removed(&a->cc, s->bytes);
        for (uint32_t i = 0; i < s->nrefs; i++) {
                efcp_flow *f = ref_flow(a, &s->refs[i]);
                if (f)
                        efcp_flow_on_lost(f, &s->refs[i]);
        }
}

static void advance_sent_lo(efcp_assoc *a) {
        while (a->sent_lo < a->next_pn && !a->sent[a->sent_lo & a->sent_mask].outstanding)
                a->sent_lo++;
}

/* Persistent-congestion duration (RFC 9002 §7.6.1): three PTOs, no backoff. */
static uint64_t persistent_duration(const efcp_assoc *a) {
        uint64_t v4 = 4 * a->rttvar > a->cfg.granularity_ns ? 4 * a->rttvar : a->cfg.granularity_ns;
        return 3 * (a->srtt + v4 + a->cfg.max_ack_delay_ns);
}

/* RFC 9002 §6.1: declare lost what is far enough behind the largest acked.
 * Also finds persistent congestion: a run of lost packets, none acknowledged
 * in between, spanning more than the persistent-congestion duration. */
static void detect_lost(efcp_assoc *a, uint64_t now) {
        a->loss_time = 0;
        if (!a->any_acked)
                return;
        uint64_t r = a->latest_rtt > rtt_srtt(a) ? a->latest_rtt : rtt_srtt(a);
        uint64_t delay = r + r / 8;
        if (delay < a->cfg.granularity_ns)
                delay = a->cfg.granularity_ns;
        uint64_t lost_before = now > delay ? now - delay : 0;
        uint64_t newest = 0, run_start = 0, pc_dur = a->have_rtt ? persistent_duration(a) : UINT64_MAX;
        bool in_run = false, persistent = false;
        uint32_t nlost = 0;
        for (uint64_t pn = a->sent_lo; pn < a->largest_acked; pn++) {
                efcp_sent *s = &a->sent[pn & a->sent_mask];
                if (s->pn != pn || !s->ack_eliciting)
                        continue;
                if (!s->outstanding) {
                        if (!s->lost)
                                in_run = false; /* acknowledged: the path worked */
                        continue;
                }
                if (s->time <= lost_before || a->largest_acked >= pn + EFCP_PKT_THRESHOLD) {
                        if (s->time > newest)
                                newest = s->time;
                        if (!in_run) {
                                in_run = true;
                                run_start = s->time;
                        } else if (s->time - run_start > pc_dur) {
                                persistent = true;
                        }
                        nlost++;
                        pkt_lost(a, s);
                } else {
                        in_run = false;
                        uint64_t t = s->time + delay;
                        if (a->loss_time == 0 || t < a->loss_time)
                                a->loss_time = t;
                }
        }
        if (nlost == 0)
                return;
        bool was = a->cc.in_recovery;
        uint64_t start = a->cc.recovery_start;
        if (!efcp_cc_on_loss(&a->cc, nlost, newest, now, rtt_srtt(a)))
                a->st.losses_tolerated += nlost;
        else if (!was || start != a->cc.recovery_start)
                a->st.congestion_events++;
        if (persistent)
                efcp_cc_on_persistent(&a->cc);
        advance_sent_lo(a);
}

/* Does the ACK frame cover pn? */
static bool ack_covers(const efcp_frame *f, uint64_t pn) {
        for (uint32_t i = 0; i < f->u.ack.nranges; i++)
                if (pn >= f->u.ack.ranges[i].lo && pn <= f->u.ack.ranges[i].hi)
                        return true;
        return false;
}

void efcp_recovery_on_ack(efcp_assoc *a, const efcp_frame *f, uint64_t now) {
        uint64_t largest = f->u.ack.largest;
        if (largest >= a->next_pn) {
                /* acknowledges what we never sent: the peer is broken or
                 * someone speaks for it. Ignoring it would stall us for good
                 * (every later ACK would carry that number), so the
                 * association ends, with the reason, on both sides. */
                a->st.bad_frame++;
                efcp_assoc_protocol_error(a);
                return;
        }
        a->st.acks_in++;
        bool newly_largest = false, eliciting = false;
        uint64_t ring_lo = a->next_pn > a->sent_mask + 1 ? a->next_pn - a->sent_mask - 1 : 0;
        for (uint32_t i = 0; i < f->u.ack.nranges; i++) {
                const efcp_ack_range *r = &f->u.ack.ranges[i];
                /* below sent_lo nothing is outstanding: never walk the past */
                uint64_t lo = r->lo > a->sent_lo ? r->lo : a->sent_lo;
                if (r->hi < lo)
                        continue;
                for (uint64_t pn = r->hi + 1; pn-- > lo;) {
                        efcp_sent *s = &a->sent[pn & a->sent_mask];
                        if (s->pn != pn || !s->outstanding)
                                continue;
                        if (pn == largest)
                                newly_largest = true;
                        eliciting |= s->ack_eliciting;
                        pkt_acked(a, s, now);
                }
        }
        /* packets declared lost that this ACK covers were not lost at all */
        for (uint32_t k = 0; k < a->nlost_recent; k++) {
                uint64_t pn = a->lost_recent[k];
                if (pn < ring_lo || !ack_covers(f, pn))
                        continue;
                efcp_sent *s = &a->sent[pn & a->sent_mask];
                if (s->pn == pn && s->lost) {
                        s->lost = 0;
                        a->st.pkts_spurious++;
                        if (efcp_cc_on_spurious(&a->cc))
                                a->st.cc_undos++;
                }
                a->lost_recent[k--] = a->lost_recent[--a->nlost_recent];
        }
        if (!a->any_acked || largest > a->largest_acked) {
                a->largest_acked = largest;
                a->any_acked = true;
        }
        if (newly_largest && eliciting) {
                efcp_sent *s = &a->sent[largest & a->sent_mask];
                uint64_t delay_ns = (uint64_t)f->u.ack.delay_us * 1000;
                rtt_update(a, now > s->time ? now - s->time : 1, delay_ns);
        }
        detect_lost(a, now);
        if (newly_largest || eliciting)
                a->pto_count = 0;
        advance_sent_lo(a);
}

uint64_t efcp_recovery_deadline(const efcp_assoc *a) {
        if (a->loss_time)
                return a->loss_time;
        if (a->eliciting_in_flight == 0)
                return UINT64_MAX;
        return a->last_eliciting_sent + efcp_recovery_pto(a);
}

void efcp_recovery_timeout(efcp_assoc *a, uint64_t now) {
        if (a->loss_time && now >= a->loss_time) {
                detect_lost(a, now);
                return;
        }
        if (a->eliciting_in_flight == 0 || now < a->last_eliciting_sent + efcp_recovery_pto(a))
                return;
        /* probe timeout: send two ack-eliciting probes carrying the oldest
         * outstanding data again (the packets stay outstanding) */
        a->pto_count++;
        a->st.ptos++;
        a->probes = 2;
        uint32_t requeued = 0;
        /* the oldest two packets that still carry something worth resending
         * (packets of PINGs only, or of data acked since, are passed over) */
        for (uint64_t pn = a->sent_lo; pn < a->next_pn && requeued < 2; pn++) {
                efcp_sent *s = &a->sent[pn & a->sent_mask];
                if (!s->outstanding || s->pn != pn)
                        continue;
                bool any = false;
                for (uint32_t i = 0; i < s->nrefs; i++) {
                        efcp_flow *f = ref_flow(a, &s->refs[i]);
                        if (f)
                                any |= efcp_flow_on_lost(f, &s->refs[i]);
                }
                requeued += any;
        }
        /* a probe that finds nothing to resend is a PING */
        a->ping_pending = true;
        /* restart the timer from now so the backed-off value counts from the probe */
        a->last_eliciting_sent = now;
}
