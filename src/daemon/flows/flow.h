/*
 * flow.h — flows: the shared-memory region, its four wake-up channels and
 * its two sides.
 *
 * A flow is made by ACCEPT (flow_new()) and handed to both sides with FLOW.
 * The daemon keeps a mapping of the region's header pages (the end records
 * and ring counters, the first FLOW_DATA_OFF bytes — never the data) and the
 * bells of the four wake-up channels (common/flowmem.h), so it can tell a
 * side that its peer died and can count for LIST. It is never on the data
 * path, and it never waits on or reads from a descriptor a client holds.
 *
 * SIDES: side 0 is the allocator, side 1 the acceptor. A side is owned by a
 * client (the usual case), or in future by the daemon itself (the local end
 * of a remote flow): the flow code never needs the client, only the side's
 * identity and an owner list link. A side is OPEN until its owner
 * deallocates it, dies, or gives up during handover.
 * For a daemon-owned side: flow_new(), then flow_side_attach(f, idx, NULL,
 * identity, NULL), map f->mem.memfd whole (the engine needs the data area)
 * and take the side's ears out of f->mem before flow_handed_out(); only the
 * other side gets a FLOW message; ending it is flow_side_end() like any other
 * side.
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

struct client;
struct user;

typedef struct flow_side {
        struct flow *flow;
        int idx;                       /* 0 or 1 */
        bool open;
        struct client *owner;          /* NULL: owned by the daemon, or closed */
        struct dlist owner_link;       /* client.sides */
        cred cred;                     /* who holds it */
        char prog[IPCF_NAME_MAX + 1];
        struct user *user;             /* charged QUOTA_FLOWS while open */
} flow_side;

typedef struct flow {
        struct idmap_node node;        /* node.id: FLOW_ID */
        ipcfd *d;
        struct dlist link;             /* ipcfd.flows */
        char name[IPCF_NAME_MAX + 1];  /* the name it was allocated to */
        ipcf_qos qos;
        flow_layout layout;
        void *hdr;                     /* mapping of the first FLOW_DATA_OFF bytes */
        flow_mem mem;                  /* memfd and ears closed once the sides have them */
        flow_side side[2];
        uint64_t reg_id;               /* the registration that accepted it */
        struct user *bytes_user;       /* shared-memory charge (bytes_kind) */
        uint64_t bytes;
        int bytes_kind;                /* QUOTA_BYTES or QUOTA_RING_BYTES */
} flow;

/* Make a flow for a normalised qos and layout (flow_mem_make()) and map its
 * header pages. Charges nothing. Returns 0 or -errno. */
int flow_new(ipcfd *d, const char *name, const ipcf_qos *qos, const flow_layout *l, flow **ret);

/* The flow with id, or NULL. */
flow *flow_find(ipcfd *d, uint64_t id);

/* Give side idx to owner (may be NULL for the daemon) with identity cr/prog,
 * charging QUOTA_FLOWS to u (a reference is taken; u may be NULL). */
void flow_side_attach(flow *f, int idx, struct client *owner, const cred *cr, const char *prog,
                      struct user *u);

/* Send the FLOW message for side idx on sock (seq echoed). */
int flow_send(flow *f, int idx, int sock, uint32_t seq, struct client *as_client);

/* The daemon ends side idx on its owner's behalf: writes end[idx] = {code,
 * reason} in shared memory if the side has not written one, rings the other
 * side's rx and tx bells (if it wrote the record, or always with
 * ring_always: after a death), and closes the side. */
void flow_side_end(flow *f, int idx, uint32_t code, const char *reason, bool ring_always);

/* Close side idx without touching shared memory (DEALLOC bookkeeping).
 * Frees the flow when both sides are closed. */
void flow_side_close(flow *f, int idx);

/* The sides have their descriptors: drop the memfd and the ears. */
void flow_handed_out(flow *f);

/* Destroy a flow at once, whatever its sides (creation failed half-way). */
void flow_free(flow *f);

int flow_handle_dealloc(struct client *c, const ctl_msg *m);

/* Peer death: every open side of c ends with IPCF_END_PEER_DIED. */
void flow_client_gone(struct client *c);

/* Free every flow (daemon shutdown). */
void flow_free_all(ipcfd *d);

/* Counters of ring r (0: a -> b) read from shared memory. */
void flow_ring_stats(const flow *f, int r, uint64_t *msgs, uint64_t *bytes, uint64_t *queued);
/* 1 if one side has ended (shared-memory end code set, or side closed). */
uint32_t flow_state(const flow *f);
