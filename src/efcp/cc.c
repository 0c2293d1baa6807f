/*
 * cc.c — congestion control shared by all flows to one host, and the pacer.
 *
 * NewReno as RFC 9002 §7 writes it: initial window 10 datagrams, minimum 2,
 * slow start, additive increase of one datagram per window, halve on loss,
 * one reduction per recovery period (a loss of a packet sent before the
 * period began does not reduce again).
 *
 * CUBIC as RFC 9438: W(t) = C·(t−K)³ + W_max with C = 0.4 (in datagrams and
 * seconds), β = 0.7, fast convergence, and the Reno-friendly estimate. A
 * reduction whose every loss later proves spurious (the "lost" packet is
 * acknowledged after all) is undone: cwnd, ssthresh and W_max return.
 *
 * Random loss is not congestion: losses within one srtt of the first one
 * (a loss round) count as congestion only beyond CC_LOSS_TOLERANCE_PCT of
 * the window in datagrams (BBRv2 uses a 2 % loss threshold per round the
 * same way), and never below a floor of one loss per
 * CC_LOSS_TOLERANCE_FLOOR_DIV datagrams of window, at most
 * CC_LOSS_TOLERANCE_FLOOR: windows of 2-7 datagrams tolerate none (Reno's
 * response), 8-15 one, 16-23 two, 24-199 three, 2 % from 200 on. A
 * queue that overflows drops more than that within a round or two (a
 * window growing past it loses one datagram, then two...), so congestion is
 * still answered. Without the tolerance a 1 % random loss keeps a window of
 * ~12 datagrams (Reno's 1.22/sqrt(p)), whatever the path could carry; with
 * 2 % alone (no floor), a loss or two in the first rounds of slow start,
 * when the window is small, left it there for good: a window of W
 * datagrams loses two in a round with a chance of ~(W/100)^2/2 at 1 %, so
 * NewReno (one datagram more per round) halved it again before it could
 * pass ~30. With the floor, four losses in a round (~(W/100)^4/24) are
 * needed, and NewReno can hold ~100 datagrams at 1 % loss.
 *
 * Pacer: a token bucket filled at 1.25·cwnd/srtt, holding at most ten
 * datagrams, so bursts are bounded while the average rate tracks the window.
 *
 * Invariant: cwnd >= 2·max_datagram; bytes_in_flight never underflows.
 */
#include "efcp/cc.h"

#include <math.h>

#include "efcp/efcp.h"

#define CC_INIT_PKTS 10
#define CC_MIN_PKTS 2
#define CC_BURST_PKTS 10
#define CC_LOSS_TOLERANCE_PCT 2
#define CC_LOSS_TOLERANCE_FLOOR 3
#define CC_LOSS_TOLERANCE_FLOOR_DIV 8
#define CUBIC_C 0.4
#define CUBIC_BETA 0.7

static uint64_t cc_min_window(const efcp_cc *cc) { return CC_MIN_PKTS * cc->max_datagram; }

void efcp_cc_init(efcp_cc *cc, int algo, uint32_t max_datagram, bool pacing) {
        *cc = (efcp_cc){0};
        cc->algo = algo;
        cc->max_datagram = max_datagram;
        cc->cwnd = CC_INIT_PKTS * (uint64_t)max_datagram;
        cc->ssthresh = UINT64_MAX;
        cc->pacing = pacing;
        cc->pace_tokens = CC_BURST_PKTS * (uint64_t)max_datagram;
}

void efcp_cc_on_sent(efcp_cc *cc, uint32_t bytes, uint64_t now) {
        (void)now;
        cc->bytes_in_flight += bytes;
}

void efcp_cc_on_removed(efcp_cc *cc, uint32_t bytes) {
        cc->bytes_in_flight = cc->bytes_in_flight > bytes ? cc->bytes_in_flight - bytes : 0;
}

/* CUBIC window target at time now (bytes). */
static uint64_t cubic_target(efcp_cc *cc, uint64_t now, uint64_t srtt) {
        double mss = (double)cc->max_datagram;
        double t = (double)(now - cc->epoch_start + srtt) / 1e9;
        double d = t - cc->k;
        double w = CUBIC_C * d * d * d * mss + cc->w_max;
        if (w < 0)
                w = 0;
        return (uint64_t)w;
}

void efcp_cc_on_acked(efcp_cc *cc, uint32_t bytes, uint64_t time_sent, uint64_t now,
                      uint64_t srtt, bool app_limited) {
        efcp_cc_on_removed(cc, bytes);
        /* Packets sent before the current recovery period began tell us about the
         * old window: no growth on them. */
        if (cc->in_recovery && time_sent <= cc->recovery_start)
                return;
        cc->in_recovery = false;
        if (app_limited)
                return;
        if (cc->cwnd < cc->ssthresh) {
                cc->cwnd += bytes; /* slow start */
                return;
        }
        if (cc->algo == EFCP_CC_CUBIC) {
                if (cc->epoch_start == 0) {
                        cc->epoch_start = now ? now : 1;
                        if (cc->w_max < (double)cc->cwnd)
                                cc->w_max = (double)cc->cwnd;
                        cc->k = cbrt((cc->w_max - (double)cc->cwnd) /
                                     ((double)cc->max_datagram * CUBIC_C));
                        cc->w_est = (double)cc->cwnd;
                }
                /* Reno-friendly estimate grows by α = 3(1−β)/(1+β) per window */
                cc->w_est += 3.0 * (1 - CUBIC_BETA) / (1 + CUBIC_BETA) * (double)bytes *
                             (double)cc->max_datagram / (double)cc->cwnd;
                uint64_t target = cubic_target(cc, now, srtt);
                if ((double)target < cc->w_est)
                        target = (uint64_t)cc->w_est;
                /* grow at most 1.5× per RTT (RFC 9438 §4.2 bounds the target) */
                if (target > cc->cwnd + cc->cwnd / 2)
                        target = cc->cwnd + cc->cwnd / 2;
                if (target > cc->cwnd)
                        cc->cwnd += (target - cc->cwnd) * bytes / cc->cwnd + 1;
                return;
        }
        /* NewReno congestion avoidance: one datagram per cwnd of acked bytes */
        cc->acked_accum += bytes;
        if (cc->acked_accum >= cc->cwnd) {
                cc->acked_accum -= cc->cwnd;
                cc->cwnd += cc->max_datagram;
        }
}

bool efcp_cc_on_loss(efcp_cc *cc, uint32_t lost, uint64_t time_sent, uint64_t now, uint64_t srtt) {
        if (now >= cc->loss_round_end) {
                cc->loss_round_end = now + (srtt ? srtt : 1);
                cc->round_lost = 0;
        }
        cc->round_lost += lost;
        uint64_t pkts = cc->cwnd / cc->max_datagram;
        uint64_t tolerated = pkts * CC_LOSS_TOLERANCE_PCT / 100;
        uint64_t least = pkts / CC_LOSS_TOLERANCE_FLOOR_DIV;
        if (least > CC_LOSS_TOLERANCE_FLOOR)
                least = CC_LOSS_TOLERANCE_FLOOR;
        if (tolerated < least)
                tolerated = least;
        if (cc->round_lost <= tolerated)
                return false;
        efcp_cc_on_congestion(cc, time_sent, now);
        return true;
}

void efcp_cc_on_congestion(efcp_cc *cc, uint64_t time_sent, uint64_t now) {
        if (cc->in_recovery && time_sent <= cc->recovery_start) {
                cc->epoch_lost++;
                return;
        }
        cc->undo_cwnd = cc->cwnd;
        cc->undo_ssthresh = cc->ssthresh;
        cc->undo_w_max = cc->w_max;
        cc->epoch_lost = 1;
        cc->epoch_spurious = 0;
        cc->in_recovery = true;
        cc->recovery_start = now;
        cc->acked_accum = 0;
        if (cc->algo == EFCP_CC_CUBIC) {
                double w = (double)cc->cwnd;
                /* fast convergence: release bandwidth when the window shrinks */
                cc->w_max = w < cc->w_max ? w * (1 + CUBIC_BETA) / 2 : w;
                cc->ssthresh = (uint64_t)(w * CUBIC_BETA);
                cc->epoch_start = 0;
        } else {
                cc->ssthresh = cc->cwnd / 2;
        }
        if (cc->ssthresh < cc_min_window(cc))
                cc->ssthresh = cc_min_window(cc);
        cc->cwnd = cc->ssthresh;
}

bool efcp_cc_on_spurious(efcp_cc *cc) {
        if (!cc->undo_cwnd)
                return false;
        if (++cc->epoch_spurious < cc->epoch_lost)
                return false;
        /* every loss of the last reduction was spurious: undo it */
        if (cc->undo_cwnd > cc->cwnd)
                cc->cwnd = cc->undo_cwnd;
        cc->ssthresh = cc->undo_ssthresh;
        cc->w_max = cc->undo_w_max;
        cc->epoch_start = 0;
        cc->in_recovery = false;
        cc->undo_cwnd = 0;
        return true;
}

void efcp_cc_on_persistent(efcp_cc *cc) {
        cc->cwnd = cc_min_window(cc);
        cc->undo_cwnd = 0;
        cc->epoch_start = 0;
        cc->in_recovery = false;
}

bool efcp_cc_can_send(const efcp_cc *cc) { return cc->bytes_in_flight < cc->cwnd; }

/* Tokens in the bucket at now: what was left plus the refill since. */
static uint64_t pace_tokens_at(const efcp_cc *cc, uint64_t now, double rate) {
        uint64_t burst = CC_BURST_PKTS * cc->max_datagram;
        if (now <= cc->pace_last)
                return cc->pace_tokens;
        double add = rate * (double)(now - cc->pace_last) / 1e9;
        if (add >= (double)burst)
                return burst;
        uint64_t t = cc->pace_tokens + (uint64_t)add;
        return t > burst ? burst : t;
}

/* Pacing rate in bytes per second: 1.25·cwnd/srtt. */
static double pace_rate(const efcp_cc *cc, uint64_t srtt) {
        return 1.25 * (double)cc->cwnd * 1e9 / (double)srtt;
}

uint64_t efcp_cc_pace_time(const efcp_cc *cc, uint32_t bytes, uint64_t now, uint64_t srtt) {
        if (!cc->pacing || srtt == 0)
                return now;
        double rate = pace_rate(cc, srtt);
        uint64_t tok = pace_tokens_at(cc, now, rate);
        if (tok >= bytes)
                return now;
        return now + (uint64_t)((double)(bytes - tok) * 1e9 / rate) + 1;
}

void efcp_cc_pace_consume(efcp_cc *cc, uint32_t bytes, uint64_t now, uint64_t srtt) {
        if (!cc->pacing || srtt == 0)
                return;
        uint64_t tok = pace_tokens_at(cc, now, pace_rate(cc, srtt));
        if (now > cc->pace_last)
                cc->pace_last = now;
        cc->pace_tokens = tok > bytes ? tok - bytes : 0;
}
