/*
 * cc.h — congestion control (NewReno, CUBIC with spurious-loss undo, both
 * tolerating a little random loss) and the pacer, one instance per
 * association: all flows to a host share it.
 *
 * Pure arithmetic on the state given; the association (assoc.c, recovery.c,
 * output.c) is the only caller. Windows are in bytes, times in ns.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef struct efcp_cc {
        int algo;                 /* EFCP_CC_* */
        uint64_t max_datagram;
        uint64_t cwnd, ssthresh, bytes_in_flight;
        uint64_t recovery_start;  /* packets sent before this time do not grow cwnd */
        bool in_recovery;
        uint64_t acked_accum;     /* congestion-avoidance byte counter */
        /* CUBIC (RFC 9438) */
        double w_max, k;          /* in bytes; k in seconds */
        uint64_t epoch_start;     /* 0 = no epoch */
        double w_est;             /* Reno-friendly estimate */
        /* undo of a congestion response later found spurious */
        uint64_t undo_cwnd, undo_ssthresh;
        double undo_w_max;
        uint32_t epoch_lost, epoch_spurious;
        /* losses of the current loss round (one srtt from its first loss) */
        uint64_t loss_round_end;
        uint32_t round_lost;
        /* pacer: token bucket in bytes */
        uint64_t pace_tokens, pace_last;
        bool pacing;
} efcp_cc;

void efcp_cc_init(efcp_cc *cc, int algo, uint32_t max_datagram, bool pacing);
/* A packet of bytes left in flight (counted in bytes_in_flight). */
void efcp_cc_on_sent(efcp_cc *cc, uint32_t bytes, uint64_t now);
/* A packet left flight by acknowledgement. app_limited: the sender did not fill
 * cwnd, so the window must not grow on this evidence. */
void efcp_cc_on_acked(efcp_cc *cc, uint32_t bytes, uint64_t time_sent, uint64_t now,
                      uint64_t srtt, bool app_limited);
/* A packet left flight as lost (or was abandoned): bytes leave the count. */
void efcp_cc_on_removed(efcp_cc *cc, uint32_t bytes);
/* lost packets detected at once; time_sent of the newest of them. Congestion
 * (efcp_cc_on_congestion) only when the losses of this loss round (one srtt
 * from its first loss) exceed 2 % of the window in datagrams and a floor of
 * one per 8 datagrams of window, at most 3 (cc.c): a window under 8
 * tolerates none (Reno's response). Returns true when taken as congestion. */
bool efcp_cc_on_loss(efcp_cc *cc, uint32_t lost, uint64_t time_sent, uint64_t now, uint64_t srtt);
/* Congestion; time_sent of the newest lost packet. One reduction per
 * recovery period. */
void efcp_cc_on_congestion(efcp_cc *cc, uint64_t time_sent, uint64_t now);
/* A packet declared lost was acknowledged after all. Returns true when this
 * undid the last reduction (all of its losses proved spurious). */
bool efcp_cc_on_spurious(efcp_cc *cc);
/* Losses spanning the persistent-congestion duration: back to the minimum. */
void efcp_cc_on_persistent(efcp_cc *cc);
/* May a new packet enter flight under cwnd? */
bool efcp_cc_can_send(const efcp_cc *cc);
/* The earliest time a packet of bytes may leave per the pacer (now if at once). */
uint64_t efcp_cc_pace_time(const efcp_cc *cc, uint32_t bytes, uint64_t now, uint64_t srtt);
/* Takes bytes from the pacer's bucket (after a send at now). */
void efcp_cc_pace_consume(efcp_cc *cc, uint32_t bytes, uint64_t now, uint64_t srtt);
