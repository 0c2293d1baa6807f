/*
 * flow.h — flows: the shared-memory region, its four wake-up channels and
 * its two sides, each held by an END of some kind.
 *
 * A flow is made when an allocation is accepted (alloc.c: flow_new(), then an
 * end attached to each side) and handed to both ends. The daemon keeps a
 * mapping of the region's header pages (the end records and ring counters,
 * the first FLOW_DATA_OFF bytes — never the data) and the bells of the four
 * wake-up channels (common/flowmem.h), so it can tell a side that its peer
 * died and can count for LIST whatever ends hold the sides. It is never on
 * the data path (an end the daemon holds itself is, for its own side only),
 * and it never waits on or reads from a descriptor a client holds.
 *
 * ENDS. A side is held by an end of a kind, described by its ops:
 *   client end  (clientend.c) a process on the control socket: it gets the
 *               FLOW message with the descriptors, its death ends the side;
 *   daemon end  (broker.c) the daemon itself, as the broker of a mailbox or
 *               multicast group: it maps the region whole and reads and
 *               writes the rings;
 *   (next)      a relay into the protocol engine for a remote host.
 * flow.c never knows which: allocation, peer death (flow_side_end), the
 * counters and LIST work on any end, through the ops and the side's identity.
 *
 * WHAT AN END IMPLEMENTS (a new kind of end goes in its own file beside
 * clientend.c and broker.c; nothing here changes):
 *   - an identity for its side (cred, prog: who LIST and the peer's FLOW name;
 *     the user charged QUOTA_FLOWS, or NULL for the daemon itself);
 *   - flow_end_ops (all optional):
 *       open(f, idx, arg)     before the other side gets its FLOW: make the
 *                             side ready (map f->mem.memfd, take the side's
 *                             ears out of f->mem and watch them). 0, or
 *                             -errno: the flow is freed, the allocation fails
 *                             with that error;
 *       deliver(f, idx, arg)  after the other side got its FLOW: hand the side
 *                             out (a client end sends its FLOW); the memfd and
 *                             the ears still in f->mem are open during the
 *                             call, dropped after (flow_handed_out);
 *       peer_ended(f, idx)    the other side ended (its end record is written
 *                             and its bells rung): e.g. a relay tells the
 *                             remote host. It runs inside flow_side_end(): it
 *                             must not end or close sides itself;
 *       closed(f, idx)        this side is closing (ended, deallocated, given
 *                             up, or the flow freed): release what the end
 *                             holds for it (unwatch, close its ears, unmap); f
 *                             and its bells are still valid during the call;
 *       let_go(f, idx)        every copy of the side's rx ear is closed (see A
 *                             SIDE NOBODY HOLDS): end the side, saying whether
 *                             its holder died or let go of it (NULL: "peer let
 *                             go of the flow");
 *   - to end its side: flow_side_end() (an end record for the peer: dealloc,
 *     death, protocol error), or flow_side_close() (bookkeeping only);
 *   - to learn of its holder's death: whatever the holder is (a client's
 *     connection: OBSERVE_CLIENT_GONE; a remote host: its association), the
 *     end calls flow_side_end(f, idx, IPCF_END_PEER_DIED, "peer died", true).
 *
 * A SIDE NOBODY HOLDS: once a side is handed out (flow_side_watch), flow.c
 * watches the bell of its rx wake-up channel for a hang-up, which comes when
 * every copy of the side's rx ear is closed — its holder let go of the side
 * without ending it (ipcf_detach, descriptors closed, a FLOW message thrown
 * away unread with the socket it waited on), or died (a dying process's
 * descriptors may close before its connection does). The end's let_go op
 * then ends the side as a death (IPCF_END_PEER_DIED, "peer died" or "peer
 * let go of the flow"): the peer is told at once and nothing is listed live
 * that nobody can use. (A holder that shuts the channel down instead ends its
 * own side the same way.)
 *
 * SIDES: side 0 is the allocator, side 1 the acceptor. A side is OPEN until
 * its end ends or closes it.
 *
 * INVARIANT: a flow lives while at least one side is open; when both are
 * closed flow_side_close() frees it (unmaps, closes the bells, releases
 * the charges): its memory is reclaimed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "daemon/core/ipcfd.h"

struct user;
struct flow;

/* Flows alive at once: at most the daemon's descriptor share (each holds 4
 * bells), and this (tens of thousands: flows with other hosts all go
 * through this daemon). */
#define FLOWS_MAX 65536

typedef struct flow_end_ops {
        const char *kind;              /* "client", "daemon": for logs */
        int (*open)(struct flow *f, int idx, void *arg);
        void (*deliver)(struct flow *f, int idx, void *arg);
        void (*peer_ended)(struct flow *f, int idx);
        void (*closed)(struct flow *f, int idx);
        void (*let_go)(struct flow *f, int idx);
} flow_end_ops;

/* An end about to take a side (flow_side_attach). */
typedef struct flow_end_spec {
        const flow_end_ops *ops;
        void *holder;                  /* the end's object (a client, a bport...) */
        struct dlist *holder_list;     /* the holder's list of sides to link into, or NULL */
        const cred *cred;              /* who holds it */
        const char *prog;
        struct user *user;             /* charged QUOTA_FLOWS while open; NULL: the daemon */
        void *arg;                     /* passed to ops->open and ops->deliver */
        pid_t watch_pid;               /* whose death the other side watches, if not
                                        * cred->pid (a process on another host: the
                                        * daemon); 0: cred->pid */
        const char *host;              /* the host the holder is on, if another
                                        * (a relay end); NULL: this host */
} flow_end_spec;

typedef struct flow_side {
        struct flow *flow;
        int idx;                       /* 0 or 1 */
        bool open;
        const flow_end_ops *ops;       /* the kind of end holding it (NULL: not attached) */
        void *holder;
        struct dlist holder_link;      /* in the holder's list, if it keeps one */
        cred cred;                     /* who holds it */
        char prog[IPCF_NAME_MAX + 1];
        pid_t watch_pid;               /* flow_end_spec.watch_pid */
        struct user *user;             /* charged QUOTA_FLOWS while open */
        loop_io hangup;                /* the rx bell, watched for the side's ears to close */
} flow_side;

typedef struct flow {
        struct idmap_node node;        /* node.id: FLOW_ID */
        ipcfd *d;
        struct dlist link;             /* the list of every flow (flow.c) */
        char name[IPCF_NAME_MAX + 1];  /* the name it was allocated to */
        ipcf_qos qos;
        flow_layout layout;
        void *hdr;                     /* mapping of the first FLOW_DATA_OFF bytes */
        flow_mem mem;                  /* memfd and ears closed once the sides have them */
        flow_side side[2];
        struct user *bytes_user;       /* shared-memory charge (bytes_kind) */
        uint64_t bytes;
        int bytes_kind;                /* QUOTA_BYTES or QUOTA_RING_BYTES */
        /* Called once when the flow is reclaimed, with the cookie the
         * acceptor's module set (a registration counts its live flows so, by
         * its id: it may be gone by then). May be NULL. */
        void (*on_free)(ipcfd *d, uint64_t cookie);
        uint64_t on_free_cookie;
        /* The host the other side is on (set by the relay end that holds a
         * side: daemon/hosts); NULL: both sides are on this host. */
        const char *host;
} flow;

/* Make a flow for a normalised qos and layout (flow_mem_make()) and map its
 * header pages. Charges nothing. Returns 0 or -errno. */
int flow_new(ipcfd *d, const char *name, const ipcf_qos *qos, const flow_layout *l, flow **ret);

/* The flow with id, or NULL. */
flow *flow_find(ipcfd *d, uint64_t id);

/* Flows alive, and the bound on them (FLOWS_MAX and the descriptor share). */
size_t flow_count(void);
bool flow_room(const ipcfd *d);

/* Give side idx to end e, charging QUOTA_FLOWS to e->user (a reference is
 * taken; the caller checked the quota). */
void flow_side_attach(flow *f, int idx, const flow_end_spec *e);

/* The FLOW message for side idx (seq echoed) into b, and its FLOW_SIDE_FDS
 * descriptors (borrowed from f) into fds. */
void flow_message(flow *f, int idx, uint32_t seq, ctl_builder *b, int fds[FLOW_SIDE_FDS]);
/* flow_message() sent on sock. Returns 0 or -errno. */
int flow_send(flow *f, int idx, int sock, uint32_t seq);

/* End side idx on its end's behalf: writes end[idx] = {code, reason} in
 * shared memory if the side has not written one, tells observers
 * (OBSERVE_FLOW_ENDED) and the other end (peer_ended), rings the other side's
 * rx and tx bells (if it wrote the record, or always with ring_always:
 * after a death), and closes the side. */
void flow_side_end(flow *f, int idx, uint32_t code, const char *reason, bool ring_always);

/* Close side idx without touching shared memory (DEALLOC bookkeeping, or
 * daemon shutdown). Frees the flow when both sides are closed. */
void flow_side_close(flow *f, int idx);

/* The sides have their descriptors: drop the memfd and the ears. */
void flow_handed_out(flow *f);

/* Side idx is in its holder's hands (its FLOW delivered or queued for it):
 * from now on, the closing of every copy of its rx ear ends it (see A SIDE
 * NOBODY HOLDS). Idempotent; a side not open is ignored. */
void flow_side_watch(flow *f, int idx);

/* Destroy a flow at once, whatever its sides (creation failed half-way, or
 * shutdown): open sides are closed (ops->closed) without an end record. */
void flow_free(flow *f);

/* Free every flow (daemon shutdown). */
void flow_free_all(ipcfd *d);

/* Counters of ring r (0: a -> b) read from shared memory. */
void flow_ring_stats(const flow *f, int r, uint64_t *msgs, uint64_t *bytes, uint64_t *queued);
/* 1 if one side has ended (shared-memory end code set, or side closed). */
uint32_t flow_state(const flow *f);
/* Datagrams dropped, both directions (from the ring control blocks). */
uint64_t flow_drops(const flow *f);
/* The end record of side idx as written in shared memory (by the side, or
 * by the daemon for it), never trusted: the code (IPCF_END_DEALLOC if out of
 * range) and the reason copied out, cut, with any byte outside printable
 * ASCII replaced by '?'. */
uint32_t flow_end_record(const flow *f, int idx, char reason[IPCF_REASON_MAX + 1]);

/* Iterate every flow in creation order (LIST). */
#define flow_for_each(f) for (flow *f = flow_first(); f; f = flow_next(f))
flow *flow_first(void);
flow *flow_next(const flow *f);
