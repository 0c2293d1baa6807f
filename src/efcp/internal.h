/*
 * internal.h — the engine's private structures, shared by its files:
 *
 *   assoc.c     association life cycle, input dispatch, timers, events
 *   recovery.c  packet-number spaces: ack ranges, RTT, loss detection, PTO
 *   output.c    building a datagram (acks, control, data under cwnd/pacing)
 *   flow.c      one flow: send ring, retransmission queue, receive ring,
 *               reassembly, delivery, credit
 *   sched.c     deficit round robin across flows, and the control list
 *   cc.c        congestion control and pacing
 *   seal.c      the datagram trailer (CRC32C, or the AEAD through a seal seam)
 *   dealloc.c   confirmed deallocation (request, ack, confirm/deny)
 *   close.c     confirmed close of the association
 *   wire.c      encoding and parsing; crc32c.c integrity
 *
 * Nobody outside src/efcp includes this file. Flows are kept in an array of
 * slots owned by the association; lists link slot indices (EFCP_NIL ends).
 * A flow slot's generation changes when it is freed, so a sent-packet record
 * that names a slot can tell a recycled flow from the one it carried.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "efcp/cc.h"
#include "efcp/efcp.h"
#include "efcp/wire.h"

#define EFCP_NIL 0xffffu
#define EFCP_MAX_PKT_REFS 32  /* frames remembered per sent packet */
#define EFCP_RX_RANGES 48     /* received-packet ranges tracked */
#define EFCP_UNSOL_MAX 4096   /* unsolicited DEALLOC answers queued (a burst of closes
                               * answered at once, not one PTO per 16) */
#define EFCP_PKT_THRESHOLD 3  /* RFC 9002 kPacketThreshold */
#define EFCP_LOST_RECENT 32   /* lost packets remembered to detect spurious losses */
#define EFCP_CONFIRM_TRIES 8  /* ACKs of a peer's CLOSE request sent before giving up (a DEALLOC's are sent until answered) */
#define EFCP_CLOSE_TRIES 8    /* CLOSE requests sent before giving up */
#define EFCP_CLOSE_Q 4        /* CLOSE frames queued */

/* What a sent packet carried that must be re-sent or acted on when it is
 * acknowledged or lost. */
enum { REF_DATA = 1, REF_ALLOC, REF_DEALLOC, REF_CREDIT };

typedef struct efcp_ref {
        uint8_t kind, gen;
        uint16_t slot;
        uint32_t seq; /* DATA: sequence number; CREDIT: edge sent */
} efcp_ref;

/* A sent packet awaiting its fate. Stored in a ring indexed by pn. */
typedef struct efcp_sent {
        uint64_t pn;
        uint64_t time;
        uint32_t bytes;
        uint8_t outstanding;   /* neither acked nor lost yet */
        uint8_t lost;          /* declared lost (kept to detect spurious losses) */
        uint8_t ack_eliciting, in_flight;
        uint8_t app_limited;
        uint8_t nrefs;
        efcp_ref refs[EFCP_MAX_PKT_REFS];
} efcp_sent;

/* Flow states. */
enum {
        FS_FREE = 0,
        FS_OPEN,        /* allocated, data may flow */
        FS_CLOSING,     /* app closed: flush reliable data, then DEALLOC until acked */
        FS_DEALLOCATED, /* peer (or engine) deallocated; app has not closed yet */
        FS_QUARANTINE,  /* port-id unusable until quarantine_until */
};

/* Control frames a flow wants to send. */
enum { CTL_ALLOC = 1, CTL_DEALLOC = 2, CTL_CREDIT = 4, CTL_BLOCKED = 8 };

/* Send-ring slot flags. */
enum { TX_FIRST = 1, TX_LAST = 2, TX_ACKED = 4, TX_QUEUED = 8, TX_SENT = 16 };
/* Receive-ring slot flags. */
enum { RX_PRESENT = 1, RX_FIRST = 2, RX_LAST = 4, RX_READY = 8, RX_DONE = 16 };

typedef struct efcp_ready {
        uint32_t seq, nfrag, len;
} efcp_ready;

struct efcp_flow {
        efcp_assoc *a;        /* owner */
        uint16_t slot;
        uint8_t gen, state;
        uint32_t local_port, remote_port, policy;
        uint32_t reason;      /* why deallocated (either side) */
        bool app_closed;      /* handle dead: the app called close */
        bool dealloc_sent;    /* our DEALLOC is queued or in flight */
        uint64_t close_deadline; /* CLOSING: DEALLOC goes by then, delivered or not */
        uint32_t dealloc_final;  /* our DEALLOC request's final sequence number */
        uint64_t dealloc_at;     /* resend our request then (until the peer's ACK) */
        uint32_t dealloc_tries;
        /* the peer's DEALLOC request, acknowledged, awaiting its CONFIRM */
        bool peer_req, peer_req_has_final;
        uint32_t peer_req_reason, peer_req_final, peer_req_tries;
        uint64_t peer_req_at;
        bool peer_gone;       /* peer deallocated (or refused) */
        uint64_t quarantine_until, last_activity;

        /* send side: [snd_una, snd_end) queued; [snd_nxt, snd_end) never sent;
         * the peer allows seq < snd_edge. */
        uint32_t snd_una, snd_nxt, snd_end, snd_edge, snd_isn;
        uint32_t tx_mask;     /* ring size - 1 (power of two) */
        uint8_t *tx_data;     /* (tx_mask+1) × payload_max */
        uint16_t *tx_len;
        uint8_t *tx_flags;
        uint32_t *retx;       /* FIFO of seqs to resend, tx_mask+1 entries */
        uint32_t retx_head, retx_count;
        uint64_t blocked_at;  /* last BLOCKED sent */
        uint32_t blocked_edge;
        uint32_t blocked_tries; /* BLOCKED repeated at this edge (backoff) */
        bool credit_stopped;  /* the app's last send was refused by credit */

        /* receive side: [rcv_head, rcv_edge) is the window; messages before
         * rcv_scan were handed to the ready queue (ordered flows). */
        bool rx_known;
        uint32_t rcv_isn, rcv_head, rcv_scan, rcv_adv;
        uint32_t rcv_top;     /* one past the highest sequence number received */
        uint32_t rx_mask;
        uint8_t *rx_data;
        uint16_t *rx_len;
        uint8_t *rx_flags;
        efcp_ready *ready;    /* FIFO of complete messages, rx_mask+1 entries */
        uint32_t ready_head, ready_count;

        /* control */
        uint8_t ctl;
        bool alloc_acked;
        bool on_ctl;
        uint16_t ctl_next;

        /* DRR scheduler */
        bool on_sched, turn;
        uint16_t sched_prev, sched_next;
        int32_t deficit;

        /* the caller's: the ready list (efcp_assoc_next_ready) and its pointer */
        bool on_ready, want_write;
        uint16_t ready_next;
        uint16_t hash_next;   /* the port-id index (assoc.c) */
        void *user;
};

/* A DEALLOC frame to send that no flow slot holds (answers, refusals). */
typedef struct efcp_unsol {
        uint32_t dst, src, reason, final;
        uint8_t step, flags;
} efcp_unsol;

typedef struct efcp_close_frame {
        uint8_t step;
        uint32_t reason;
} efcp_close_frame;

struct efcp_assoc {
        efcp_config cfg;
        uint32_t payload_max;  /* largest DATA payload in one datagram */
        uint32_t max_frags;    /* fragments of the largest message */
        uint32_t trailer;      /* integrity trailer bytes (seal->trailer) */
        const efcp_seal_ops *seal; /* seal.c: plain CRC32C unless installed */
        void *seal_ctx;
        bool dead;
        /* confirmed close (close.c) */
        bool closer;               /* we closed (or died of a protocol error) */
        bool close_confirmed;      /* the peer acknowledged our CLOSE request */
        uint32_t close_reason;     /* ours, carried by our requests */
        uint32_t close_tries;
        uint64_t close_next;       /* resend our request then */
        uint64_t close_answer_at;  /* a dead side answers strangers at most this often */
        bool close_wait;           /* the peer's request acknowledged, awaiting CONFIRM */
        uint32_t peer_close_reason, close_wait_tries;
        uint64_t close_wait_next;
        efcp_close_frame close_q[EFCP_CLOSE_Q];
        uint32_t nclose_q;
        uint64_t now;          /* time of the latest call */
        efcp_stats st;

        /* our packet-number space */
        uint64_t next_pn;
        efcp_sent *sent;
        uint32_t sent_mask;
        uint64_t sent_lo;          /* lowest pn that may be outstanding */
        uint64_t largest_acked;    /* valid if any_acked */
        bool any_acked;
        uint64_t last_eliciting_sent;
        uint64_t loss_time;        /* 0 = no loss timer */
        uint32_t pto_count;
        uint32_t probes;           /* probe packets owed after a PTO */
        uint32_t eliciting_in_flight;
        uint64_t lost_recent[EFCP_LOST_RECENT];
        uint32_t nlost_recent;

        /* RTT (RFC 9002 §5) */
        uint64_t srtt, rttvar, min_rtt, latest_rtt;
        bool have_rtt;

        efcp_cc cc;

        /* the peer's packet-number space, as we received it */
        efcp_ack_range rxr[EFCP_RX_RANGES]; /* descending, disjoint, non-adjacent */
        uint32_t nrxr;
        uint64_t rx_floor;          /* numbers below are refused as too old */
        uint64_t largest_rx_time;
        uint32_t unacked_eliciting; /* ack-eliciting packets since our last ACK */
        bool ack_pending;           /* something new to acknowledge */
        bool ack_now;
        uint64_t ack_deadline;      /* 0 = none */

        uint64_t last_rx;
        bool ping_pending;

        /* flows */
        efcp_flow *flows;
        uint32_t nflows;            /* slots in use (any state but FREE) */
        uint16_t ctl_head, ctl_tail;
        uint16_t sched_head;        /* DRR ring */
        uint16_t rdy_head, rdy_tail;/* flows with news for the caller */
        uint16_t *port_hash;        /* local port-id -> slot chains (hash_next), hash_mask + 1 */
        uint32_t hash_mask;
        uint16_t *free_slots;       /* a stack of FREE slot numbers */
        uint32_t n_free;
        uint64_t flow_timer_at;     /* earliest quarantine expiry / idle check */

        efcp_unsol unsol[EFCP_UNSOL_MAX];
        uint32_t nunsol;

        efcp_event *ev;
        uint32_t ev_cap, ev_head, ev_count;
};

/* assoc.c */
void efcp_assoc_event(efcp_assoc *a, efcp_event_type type, const efcp_flow *f, uint32_t reason);
/* Queues a DEALLOC frame no flow slot carries (deduplicated, bounded). */
void efcp_assoc_unsolicited(efcp_assoc *a, uint8_t step, uint8_t flags, uint32_t dst, uint32_t src,
                            uint32_t reason, uint32_t final);
/* Every open flow ends with flow_reason; the association is dead; event
 * ev_type with ev_reason for the application. */
void efcp_assoc_die(efcp_assoc *a, uint32_t flow_reason, efcp_event_type ev_type, uint32_t ev_reason);
/* The peer broke the protocol: close the association, telling the peer. */
void efcp_assoc_protocol_error(efcp_assoc *a);
efcp_flow *efcp_assoc_lookup(efcp_assoc *a, uint32_t local_port);
/* The port-id index and the free-slot stack (a slot leaving or entering FREE). */
void efcp_assoc_slot_taken(efcp_assoc *a, efcp_flow *f);
void efcp_assoc_slot_freed(efcp_assoc *a, efcp_flow *f);
/* Puts f on the ready list (once) for the caller's efcp_assoc_next_ready(). */
void efcp_flow_notify(efcp_flow *f);
/* The slot of flow (dst ours, src the peer's) in any state, or NULL. */
efcp_flow *efcp_assoc_flow_for(efcp_assoc *a, uint32_t dst, uint32_t src);
/* Makes sure the per-flow timer scan runs no later than at. */
void efcp_assoc_flow_timer(efcp_assoc *a, uint64_t at);

/* seal.c: the plain ops every association starts with. */
extern const efcp_seal_ops efcp_seal_plain;
/* Writes the header for packet pn at dgram (type and flags from the seal ops). */
void efcp_seal_header(efcp_assoc *a, uint8_t *dgram, uint64_t pn);
/* Appends the trailer to dgram[0..len) (room for a->trailer bytes
 * guaranteed by the caller) and returns the datagram's length. */
size_t efcp_seal(efcp_assoc *a, uint8_t *dgram, size_t len);
/* Checks (and decrypts) a datagram whose header h was parsed; on success
 * ret_frames and ret_len give the frame area, borrowed from dgram or the
 * seal's buffer until the next call. -EBADMSG if it fails integrity. */
int efcp_unseal(efcp_assoc *a, const uint8_t *dgram, size_t len, const efcp_hdr *h,
                const uint8_t **ret_frames, size_t *ret_len);

/* dealloc.c */
void efcp_dealloc_input(efcp_assoc *a, const efcp_frame *fr);
/* Our DEALLOC request goes out now (flow CLOSING, everything delivered). */
void efcp_dealloc_request(efcp_flow *f);
/* Per-flow deallocation timers; returns the flow's next such deadline. */
uint64_t efcp_dealloc_timers(efcp_flow *f, uint64_t now);
/* DATA at seq arrived: a pending peer request whose final it contradicts was forged. */
void efcp_dealloc_on_data(efcp_flow *f, uint32_t seq);

/* close.c */
void efcp_close_start(efcp_assoc *a, uint32_t reason);
void efcp_close_input(efcp_assoc *a, const efcp_frame *fr);
/* A dead association got a valid datagram without CLOSE frames. */
void efcp_close_stranger(efcp_assoc *a);
void efcp_close_timeout(efcp_assoc *a, uint64_t now);
uint64_t efcp_close_deadline(const efcp_assoc *a);
bool efcp_close_has_output(const efcp_assoc *a);
/* Writes queued CLOSE frames while they fit; returns the new p. */
uint8_t *efcp_close_put(efcp_assoc *a, uint8_t *p, uint8_t *end);

/* recovery.c */
int efcp_rx_record(efcp_assoc *a, uint64_t pn, bool eliciting, uint64_t now);
void efcp_rx_ack_sent(efcp_assoc *a);
uint32_t efcp_rx_ack_ranges(const efcp_assoc *a, efcp_ack_range *ret, uint32_t max);
void efcp_recovery_on_ack(efcp_assoc *a, const efcp_frame *f, uint64_t now);
void efcp_recovery_on_sent(efcp_assoc *a, efcp_sent *s, uint64_t now);
void efcp_recovery_timeout(efcp_assoc *a, uint64_t now);
uint64_t efcp_recovery_deadline(const efcp_assoc *a);
uint64_t efcp_recovery_pto(const efcp_assoc *a);
/* The probe timeout doubled tries times, capped by max_pto: the wait before
 * resending a control step. */
uint64_t efcp_recovery_backoff(const efcp_assoc *a, uint32_t tries);
bool efcp_recovery_ring_full(const efcp_assoc *a);

/* flow.c */
int efcp_flow_create(efcp_assoc *a, uint32_t local_port, uint32_t remote_port, uint32_t policy,
                     efcp_flow **ret);
void efcp_flow_release(efcp_flow *f); /* slot -> FREE */
void efcp_flow_start(efcp_flow *f, const efcp_flow_policy *pol);
void efcp_flow_quarantine(efcp_flow *f, uint64_t now);
void efcp_flow_peer_dealloc(efcp_flow *f, uint32_t reason);
void efcp_flow_rx_data(efcp_flow *f, const efcp_frame *fr, uint64_t now);
void efcp_flow_rx_alloc(efcp_flow *f, const efcp_frame *fr);
void efcp_flow_rx_credit(efcp_flow *f, uint32_t edge);
/* The peer says our credit stops it, having sent everything below sent_end
 * and had everything below acked acknowledged: re-advertise the full edge
 * (an unreliable flow first gives up what is still incomplete below
 * sent_end; a reliable flow missing something below acked ends with
 * DATA_LOST: an acknowledgement was not ours). */
void efcp_flow_rx_blocked(efcp_flow *f, uint32_t sent_end, uint32_t acked);
uint64_t efcp_flow_blocked_timer(efcp_flow *f, uint64_t now);
/* Has every sequence number in [from, to) reached us (present, ready or
 * delivered)? True when the receive side is unknown or gone. */
bool efcp_flow_rx_has_all(const efcp_flow *f, uint32_t from, uint32_t to);
/* Ends an open flow because the peer's parameters do not fit ours: event for
 * the application, DEALLOC(reason) to the peer. */
void efcp_flow_refuse(efcp_flow *f, uint32_t reason);
void efcp_flow_on_acked(efcp_flow *f, const efcp_ref *r);
/* Requeues what r carried if still needed; true if anything was requeued. */
bool efcp_flow_on_lost(efcp_flow *f, const efcp_ref *r);
bool efcp_flow_has_data(const efcp_flow *f);
/* next PDU to send: seq, and whether it is a retransmission; false if none */
bool efcp_flow_next_pdu(efcp_flow *f, uint32_t *ret_seq, bool *ret_retx);
void efcp_flow_pdu_sent(efcp_flow *f, uint32_t seq, bool retx);
void efcp_flow_check_close(efcp_flow *f);
/* One of the engine's own reasons (a refusal, an idle discard, a flow gone,
 * an error), not NORMAL nor an application's (>= EFCP_REASON_USER). */
static inline bool efcp_reason_is_engine(uint32_t reason) {
        return reason != EFCP_REASON_NORMAL && reason < EFCP_REASON_USER;
}

static inline uint32_t efcp_flow_pdu_len(const efcp_flow *f, uint32_t seq) {
        return f->tx_len[seq & f->tx_mask];
}

/* sched.c */
void efcp_sched_add(efcp_assoc *a, efcp_flow *f);
void efcp_sched_remove(efcp_assoc *a, efcp_flow *f);
efcp_flow *efcp_sched_pick(efcp_assoc *a, uint32_t *ret_seq, bool *ret_retx, uint32_t room);
void efcp_sched_charge(efcp_assoc *a, efcp_flow *f, uint32_t bytes);
void efcp_ctl_add(efcp_assoc *a, efcp_flow *f, uint8_t what);
efcp_flow *efcp_ctl_pop(efcp_assoc *a);
