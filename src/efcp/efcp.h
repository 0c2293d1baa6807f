/*
 * efcp.h — the error and flow control protocol engine: its whole API.
 *
 * The engine is sans-I/O. It never touches a socket, a clock, a thread or the
 * terminal: the caller feeds it datagrams with efcp_input(), asks it for
 * datagrams with efcp_output(), tells it the time on every call, and sleeps
 * until efcp_next_deadline(). This is what lets the test suite run it on a
 * virtual clock over a simulated network, and the daemon run it over UDP.
 *
 * One efcp_assoc is the state shared with ONE peer host: a 64-bit packet-number
 * space (never reused), selective acknowledgements, RTT estimation, loss
 * detection and probe timeouts (RFC 9002's rules), congestion control and
 * pacing shared by all flows to that host, and a deficit-round-robin scheduler
 * across flows. Inside it, flows are told apart by their (local port-id,
 * remote port-id) pair; each flow has its own 32-bit sequence space, its own
 * credit window, and its own policy (reliable or not, ordered or not).
 *
 * Conventions: 0 or a non-negative value on success, a negative errno on
 * failure. The engine allocates at efcp_assoc_new() and efcp_flow_open() /
 * flow creation by the peer only; never per packet. Every buffer a peer can
 * make it fill is bounded by efcp_config.
 *
 * Threading: an association and its flows belong to one thread at a time.
 * Different associations are independent.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct efcp_assoc efcp_assoc;
typedef struct efcp_flow efcp_flow;

/* Congestion controllers. */
enum {
        EFCP_CC_NEWRENO = 0,
        EFCP_CC_CUBIC = 1,
};

/* Flow policy bits (efcp_flow_open, and the FLOW_ALLOCATED event). */
enum {
        EFCP_POLICY_RELIABLE = 0x01, /* lost PDUs are retransmitted */
        EFCP_POLICY_ORDERED = 0x02,  /* messages are delivered in send order */
};

/* Deallocation reasons carried on the wire (applications may add their own
 * values from EFCP_REASON_USER upward). */
enum {
        EFCP_REASON_NORMAL = 0,       /* the application closed the flow */
        EFCP_REASON_REFUSED = 1,      /* the peer refused the allocation */
        EFCP_REASON_PORT_BUSY = 2,    /* port-id in use or in quarantine */
        EFCP_REASON_NO_RESOURCES = 3, /* too many flows, window too large */
        EFCP_REASON_UNKNOWN_FLOW = 4, /* data for a flow the peer does not know */
        EFCP_REASON_PEER_TIMEOUT = 5, /* nothing heard from the peer in time */
        EFCP_REASON_PEER_CLOSED = 6,  /* the peer closed the association */
        EFCP_REASON_IDLE = 7,         /* flow discarded after inactivity */
        EFCP_REASON_PROTOCOL_ERROR = 8, /* the peer broke the protocol (see efcp_stats) */
        EFCP_REASON_DATA_LOST = 9,    /* the peer ended a reliable flow before all its data came */
        EFCP_REASON_PEER_RESTARTED = 10, /* the peer host started a new association */
        EFCP_REASON_USER = 256,
};

/* Association parameters. efcp_config_default() fills sensible LAN values;
 * change fields after it. Both ends should use the same sizes. */
typedef struct efcp_config {
        uint32_t max_datagram;    /* largest datagram sent, header+trailer included (1472) */
        uint32_t local_index;     /* our receiver index: incoming datagrams must carry it */
        uint32_t remote_index;    /* the peer's receiver index, put in datagrams we send */
        uint32_t max_flows;       /* flows (incl. quarantined) at once (64; at most
                                   * EFCP_MAX_FLOWS_LIMIT): lookups cost the same at any size */
        uint32_t max_msg;         /* largest message, bytes (65536) */
        uint32_t flow_window;     /* per-flow receive window = initial credit, PDUs (256) */
        uint32_t flow_send_buf;   /* per-flow send buffer, PDUs (256) */
        uint32_t max_inflight;    /* packets tracked in flight (4096) */
        uint32_t cc;              /* EFCP_CC_NEWRENO or EFCP_CC_CUBIC */
        uint32_t ack_every;       /* ack at once after this many ack-eliciting packets (2) */
        bool pacing;              /* pace at 1.25·cwnd/srtt (true) */
        uint64_t initial_rtt_ns;  /* RTT assumed before the first sample (10 ms) */
        uint64_t max_ack_delay_ns;/* delay before acking a lone packet (1 ms) */
        uint64_t granularity_ns;  /* floor of loss delay and PTO variance (1 ms) */
        uint64_t max_pto_ns;      /* cap of the backed-off probe timeout (1 s) */
        uint64_t keepalive_ns;    /* PING after this much send silence (2 s) */
        uint64_t peer_timeout_ns; /* declare the peer dead after this much silence (60 s) */
        uint64_t quarantine_ns;   /* a released port-id stays unusable (2·MPL+A+R = 10 s) */
        uint64_t flow_idle_ns;    /* discard a flow idle this long; 0 = never (0) */
        uint64_t close_linger_ns; /* a closing flow waits this long at most for its data (60 s) */
        uint64_t seed;            /* picks initial sequence numbers when asked to */
} efcp_config;

void efcp_config_default(efcp_config *ret_cfg);

/* The policy of a new flow. isn is the first sequence number the local side
 * sends; with isn_random the engine derives one from cfg.seed instead. */
typedef struct efcp_flow_policy {
        uint32_t flags;  /* EFCP_POLICY_* */
        uint32_t isn;
        bool isn_random;
} efcp_flow_policy;

/* Events the caller drains with efcp_event_next(). */
typedef enum efcp_event_type {
        EFCP_EV_FLOW_ALLOCATED = 1,   /* the peer opened a flow: local_port now names it */
        EFCP_EV_FLOW_DEALLOCATED = 2, /* the peer (or the engine) ended a flow; see reason */
        EFCP_EV_PEER_TIMEOUT = 3,     /* nothing heard for peer_timeout: assoc is dead */
        EFCP_EV_PEER_CLOSED = 4,      /* the peer closed the association (reason: its reason) */
        EFCP_EV_PROTOCOL_ERROR = 5,   /* the peer broke the protocol: we closed the
                                       * association (the peer is told, with the reason) */
} efcp_event_type;

typedef struct efcp_event {
        efcp_event_type type;
        uint32_t local_port, remote_port; /* flow events */
        uint32_t policy;                  /* FLOW_ALLOCATED */
        uint32_t reason;                  /* EFCP_REASON_* */
} efcp_event;

/* The largest max_flows (slot numbers are 16 bits, one value is "none"). */
#define EFCP_MAX_FLOWS_LIMIT 65534u

/* Counters (monotonic). Malformed input is counted, never fatal. */
typedef struct efcp_stats {
        uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out;
        uint64_t bad_crc, bad_header, bad_frame, dup_packets, old_packets;
        uint64_t pdus_in, pdus_out, pdus_retx, pdus_dup, pdus_beyond_credit, pdus_dropped;
        uint64_t msgs_delivered, msgs_dropped;
        uint64_t pkts_lost, pkts_spurious, ptos, congestion_events, cc_undos;
        uint64_t losses_tolerated; /* lost packets not taken as congestion (random loss) */
        uint64_t acks_in, acks_out;
        uint64_t pn_too_far;     /* packet number beyond the jump bound: dropped */
        uint64_t denied;         /* CLOSE/DEALLOC requests the peer denied having sent, and
                                  * acknowledgements of requests we never sent */
} efcp_stats;

/* A snapshot of the association's path state (for tools and tests). */
typedef struct efcp_path_info {
        uint64_t srtt_ns, rttvar_ns, min_rtt_ns, latest_rtt_ns;
        uint64_t cwnd, ssthresh, bytes_in_flight;
        uint32_t pto_count;
        bool dead;
} efcp_path_info;

/* --- association ------------------------------------------------------- */

/* Creates an association. cfg is copied. *ret_assoc is owned by the caller and
 * released with efcp_assoc_free(). -EINVAL on a bad configuration. */
int efcp_assoc_new(const efcp_config *cfg, uint64_t now_ns, efcp_assoc **ret_assoc);
/* Frees the association and every flow in it (flow pointers die). NULL is fine.
 * Returns NULL. */
efcp_assoc *efcp_assoc_free(efcp_assoc *a);

/* For a caller holding many associations on one socket: the receiver index
 * of a datagram (which association it is for), from its header alone.
 * 0, or -EBADMSG if it is no EFCP datagram. Integrity is not checked here:
 * efcp_input() does that. */
int efcp_datagram_index(const void *dgram, size_t len, uint32_t *ret_index);

/* Feeds one received datagram (borrowed for the call only). Returns 0 when it
 * was accepted, or a negative errno saying why it was dropped (-EBADMSG bad
 * integrity or format, -EALREADY duplicate, -ESTALE too old, -ENOTCONN dead
 * association). Dropping is always safe; the return value is informative. */
int efcp_input(efcp_assoc *a, const void *dgram, size_t len, uint64_t now_ns);

/* Writes the next datagram to send into buf (owned by the caller, cap bytes,
 * at least cfg.max_datagram, else -EINVAL). Returns its length, or 0 when
 * nothing is due now. Call it until it returns 0. */
int efcp_output(efcp_assoc *a, void *buf, size_t cap, uint64_t now_ns);

/* Runs expired timers (loss detection, probe timeout, delayed ack, keepalive,
 * peer timeout, quarantine). efcp_output() and efcp_input() run them too. */
void efcp_timeout(efcp_assoc *a, uint64_t now_ns);

/* When the caller must next call efcp_timeout()/efcp_output(), absent any
 * input: an absolute time in ns, UINT64_MAX if never. */
uint64_t efcp_next_deadline(const efcp_assoc *a);

/* Next pending event into *ret_ev: 1 if one was returned, 0 if none. */
int efcp_event_next(efcp_assoc *a, efcp_event *ret_ev);

/* The next flow with news for its user since it was last returned: a
 * message became ready for efcp_flow_recv(), room or credit appeared after
 * efcp_flow_send() said -EAGAIN (or efcp_flow_writable() said no), or the
 * flow was deallocated. Each flow is on the list at most once, so a caller
 * with thousands of flows touches only those that moved (call it after
 * efcp_input()/efcp_timeout()/efcp_output() until it returns NULL). Flows
 * the application closed are never returned. Borrowed like efcp_flow_get(). */
efcp_flow *efcp_assoc_next_ready(efcp_assoc *a);

/* Closes the association: every flow is deallocated with reason and the
 * association is dead at once. The close is confirmed: a CLOSE request goes to
 * the peer (call efcp_output afterwards) and is resent until the peer
 * acknowledges it (the peer ends its side only when we confirm). Keep feeding
 * the dead association input and calling efcp_output() until
 * efcp_next_deadline() returns UINT64_MAX; then free it. */
void efcp_assoc_close(efcp_assoc *a, uint32_t reason);

/* Ends the association at once without telling the peer (it is known to be
 * gone, e.g. restarted): every open flow gets EFCP_EV_FLOW_DEALLOCATED with
 * reason, then EFCP_EV_PEER_CLOSED with reason. */
void efcp_assoc_abort(efcp_assoc *a, uint32_t reason);
bool efcp_assoc_dead(const efcp_assoc *a);
/* The peer's receiver index changed (a repeated handshake): datagrams now
 * carry this one. */
void efcp_assoc_set_remote_index(efcp_assoc *a, uint32_t remote_index);
const efcp_stats *efcp_assoc_stats(const efcp_assoc *a);   /* borrowed, lives with a */
void efcp_assoc_path(const efcp_assoc *a, efcp_path_info *ret_info);

/* How datagrams are sealed and opened: the seam between the engine and its
 * integrity (seal.c). Every association starts with the plain CRC32C ops
 * (benchmarks only); host.h installs the authenticated ones. ctx is the
 * installer's, borrowed for the association's life. */
typedef struct efcp_seal_ops {
        uint8_t type;     /* header type byte of sealed datagrams (EFCP_TYPE_*) */
        uint32_t trailer; /* bytes seal() appends (CRC 4, tag 16) */
        /* the header's flags field for the next datagram (e.g. a key phase) */
        uint16_t (*flags)(void *ctx);
        /* dgram[0..len) is header + frames, room for trailer bytes behind:
         * seal it in place; returns the sealed length */
        size_t (*seal)(void *ctx, uint8_t *dgram, size_t len);
        /* checks (and decrypts) a datagram whose 16-byte header says pn and
         * flags; *ret_frames, *ret_len: the clear frames, valid until the next
         * call. 0, or -EBADMSG (and nothing about it is remembered) */
        int (*open)(void *ctx, const uint8_t *dgram, size_t len, uint64_t pn, uint16_t flags,
                    const uint8_t **ret_frames, size_t *ret_len);
} efcp_seal_ops;

/* Installs ops (static, borrowed) with ctx, before the first datagram. The
 * DATA payload size is the same for every ops (16 trailer bytes reserved),
 * so the two modes carry the same PDUs. -EINVAL if ops does not fit. */
int efcp_assoc_set_seal(efcp_assoc *a, const efcp_seal_ops *ops, void *ctx);

/* --- flows ------------------------------------------------------------- */

/* Allocates a flow (local_port, remote_port) with the given policy and tells
 * the peer. The flow pointer is owned by the association and stays valid until
 * efcp_flow_close() (even after the peer deallocates it). Errors: -EADDRINUSE
 * (local port in use or quarantined), -ENOSPC (max_flows), -ENOTCONN (dead),
 * -EINVAL, -ENOMEM. */
int efcp_flow_open(efcp_assoc *a, uint32_t local_port, uint32_t remote_port,
                   const efcp_flow_policy *policy, efcp_flow **ret_flow);

/* The live flow bound to local_port (e.g. after EFCP_EV_FLOW_ALLOCATED), or
 * NULL. Borrowed: valid until efcp_flow_close(). */
efcp_flow *efcp_flow_get(efcp_assoc *a, uint32_t local_port);

/* Queues one message (copied; msg is borrowed for the call). Returns 0, or
 * -EAGAIN when the peer's credit or the send buffer has no room for it now,
 * -EMSGSIZE when len > max_msg, -EPIPE when the flow is deallocated. */
int efcp_flow_send(efcp_flow *f, const void *msg, size_t len);

/* efcp_flow_send() of the message made of iovcnt pieces, gathered (as
 * writev). */
struct iovec;
int efcp_flow_sendv(efcp_flow *f, const struct iovec *iov, int iovcnt);

/* Takes the next deliverable message into buf (cap bytes, caller-owned).
 * Returns its length, -EAGAIN if none is ready, -EMSGSIZE if cap is too small
 * (the message stays), -EPIPE when deallocated and drained. */
int efcp_flow_recv(efcp_flow *f, void *buf, size_t cap);

/* efcp_flow_recv() scattered over iovcnt pieces (as readv): -EMSGSIZE if
 * they hold less than the message (which stays). */
int efcp_flow_recvv(efcp_flow *f, const struct iovec *iov, int iovcnt);
/* Copies the first n bytes (at most) of the next ready message into buf
 * without taking it. Returns the bytes copied, -EAGAIN, -EPIPE. */
int efcp_flow_peek(const efcp_flow *f, void *buf, size_t n);

/* Deallocates the flow with a reason: queued reliable data is still delivered
 * (for at most close_linger_ns), then DEALLOC goes to the peer; the port-id
 * is quarantined. The pointer dies. */
void efcp_flow_close(efcp_flow *f, uint32_t reason);

/* Would a message of len bytes be accepted by efcp_flow_send() now? Asking
 * counts as wanting to send: when the peer's credit is what stops it, the
 * engine tells the peer (BLOCKED), exactly as a failed send would. */
bool efcp_flow_writable(efcp_flow *f, size_t len);
/* Is a message ready for efcp_flow_recv()? */
bool efcp_flow_readable(const efcp_flow *f);
/* The length of the message efcp_flow_recv() would return next, -EAGAIN if
 * none is ready, -EPIPE when deallocated and drained (so a caller can make
 * room for it before taking it). */
int efcp_flow_next_len(const efcp_flow *f);
/* A pointer of the caller's kept with the flow (NULL until set). */
void efcp_flow_set_user(efcp_flow *f, void *user);
void *efcp_flow_user(const efcp_flow *f);
/* Has the peer (or the engine) deallocated the flow? Reason in *ret_reason. */
bool efcp_flow_deallocated(const efcp_flow *f, uint32_t *ret_reason);
/* Bytes and messages queued by the sender not yet acknowledged. */
size_t efcp_flow_unacked(const efcp_flow *f);
uint32_t efcp_flow_local_port(const efcp_flow *f);
uint32_t efcp_flow_remote_port(const efcp_flow *f);
