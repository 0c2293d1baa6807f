/*
 * broker.h — the daemon end of a flow (flow.h, ENDS): side 1 held by the
 * daemon itself, as the broker of a mailbox or multicast group
 * (docs/MODELS.md).
 *
 * A client allocates a flow to a mailbox or group name with a ROLE; the
 * resolver of those names (models/models.c) accepts it with bport_accept():
 * the flow is made (alloc.c, flow.c), side 0 goes to the client and the
 * daemon keeps side 1: it maps the whole region, consumes ring 0 (client ->
 * daemon) and produces on ring 1 (daemon -> client) with src/common/ring.c,
 * exactly as a library port would, following the wake-up handshake of
 * src/lib/core/wait.c:
 *
 *   after producing:  if (load(rx_sleep) && exchange(rx_sleep, 0)) ring client rx
 *   after consuming:  if (load(tx_sleep) && exchange(tx_sleep, 0)) ring client tx
 *   to be woken:      drain our ear; want = 1; fence; re-check
 *
 * A drain is a system call, so the RX ear is drained only when a ring may
 * be queued: on its event, and when re-arming only if our word, set since
 * the last drain, was taken (the client's exchange rings once per word we
 * set). Any other ring (an end, a hostile client) makes the level-triggered
 * watch fire, whose event drains: a drain skipped costs at most a spurious
 * event, never a lost wake-up (want = 1, fence and re-check always run).
 *
 * The ears of our two wake-up channels (RX1, TX1; common/wake.h) are in the
 * daemon's epoll set; every event calls the owner's callback, which then
 * reads/writes as much as it can.
 * NEVER BLOCKS: every ring operation here is non-blocking; a full or empty
 * ring is reported, and the owner arms the matching wake-up. Rings and
 * drains are non-blocking per call, whatever the client did to the shared
 * sockets; a client that shuts a channel down (our ear hangs up) has ended
 * its side: bport_peer_ended() says so and the ears are no longer watched.
 *
 * TRUST: the client can write anything in the region; ring.c validates
 * every index and record (-EPROTO), and the daemon's mapping can never fault
 * (the memfd is sealed at its size).
 *
 * LIFE: bport_accept() -> events -> bport_end() (the daemon ends its side:
 * the client reads what is left, then -EPIPE with the reason) -> bport_free().
 * The client's end (dealloc, death, a hung-up channel) shows as
 * bport_peer_ended(): the daemon end learns of it through its ears, whose
 * bells flow_side_end() rings (it has no peer_ended op).
 *
 * AS A FLOW END (ops in broker.c): open maps the region, takes its ears and
 * watches them before the client has its FLOW; deliver arms the consumer;
 * closed unwatches, closes the ears and unmaps before the flow can be freed.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ring.h"
#include "daemon/core/ipcfd.h"

struct alloc;
struct flow;
struct bport;

/* Called on every wake-up of the port (data, room, or the client's end). */
typedef void (*bport_fn)(struct bport *b);

typedef struct bport {
        ipcfd *d;
        struct flow *f;                /* NULL once our side ended */
        uint64_t flow_id;
        void *mem;                     /* the whole region */
        uint64_t map_len;
        ipcf_qos qos;
        int side;                      /* ours: 1 for the broker, either for other owners */
        ring_prod prod;                /* ring `side`: daemon -> client */
        ring_cons cons;                /* ring 1 - side: client -> daemon */
        int ear_rx, ear_tx;            /* ours (taken from the flow; closed with our side) */
        int peer_rx, peer_tx;          /* the client's bells (borrowed from the flow) */
        loop_io rx_io, tx_io;
        loop_timer kick;               /* bport_kick(): the callback again, after the batch */
        cred peer;                     /* the client, from the kernel */
        char peer_prog[IPCF_NAME_MAX + 1];
        bport_fn fn;
        void *owner;
        struct dlist link;             /* the owner's list */
        bool in_cb;
        bool hung_up;                  /* the client shut a wake-up channel down */
        bool rx_set;                   /* we set our RX word since the ear's last drain */
} bport;

/* Accept allocation a into a broker flow (side 1 is this end), on the
 * broker's terms: BOUNDED, MESSAGE, ring <= MW_RING_MAX, messages of at most
 * max_msg bytes of payload (the full policy stays the client's: it acts in the
 * client's library). fn(b) runs on every wake-up, b->owner = owner.
 * Returns 0 and *ret; or as alloc_accept(): -ECANCELED (a is gone), other
 * -errno (-EINVAL, -EDQUOT: BROKER_FLOWS_MAX; a is untouched: the caller
 * fails it). */
int bport_accept(struct alloc *a, uint32_t max_msg, bport_fn fn, void *owner, bport **ret);

/* The daemon end for another owner (the relay of a flow with another host,
 * daemon/hosts): a bport not yet on any flow, for the flow's own qos and
 * either side. peer/peer_prog: the client at the other side. Then
 * bport_spec() fills the end for alloc_accept() or an allocation origin (who,
 * prog: the identity this side shows; watch_pid: flow_end_spec's). The
 * bport is live once the flow opened it (b->f set), ended by bport_end() and
 * freed by bport_free() like the broker's. NULL on -ENOMEM. */
bport *bport_new(ipcfd *d, const cred *peer, const char *peer_prog, bport_fn fn, void *owner);
struct flow_end_spec;
void bport_spec(bport *b, struct flow_end_spec *ret, const cred *who, const char *prog, pid_t watch_pid);

/* Incoming: the next message (length, *ret into shared memory), -EAGAIN if
 * none now, -EPROTO. */
ssize_t bport_peek(bport *b, const void **ret);
/* Consume the peeked message and ring the client if it waits for room. */
void bport_consume(bport *b);
/* HOLD (ring.h; the mailbox's cut-through): from now on what is consumed
 * is published only by bport_publish_at(). */
void bport_hold(bport *b);
/* The consumer's position now (after bport_peek: the start of the record). */
ring_mark bport_mark(bport *b);
/* Publish m (ring_cons_publish_at) and ring the client if it waits for room. */
void bport_publish_at(bport *b, ring_mark m);
/* The payload of the record at pos of the incoming ring, which bport_peek
 * returned (its bounds checked then); NULL once our side ended (unmapped). */
const void *bport_payload_at(bport *b, uint64_t pos);
/* The ring is empty: arm the wake-up. Returns true if data came meanwhile
 * (the caller reads on instead of sleeping). */
bool bport_arm_rx(bport *b);

/* Spinning instead of sleeping (loop_spin): has the client written a
 * message? Reads the ring only (its indexes checked as ring_peek does). */
bool bport_rx_ready(bport *b);
/* Take back the RX word bport_arm_rx set, so that the client's next write
 * rings nobody (the caller watches the ring meanwhile, then arms again).
 * If the client took the word first, its ring is queued and drained as
 * usual. */
void bport_disarm_rx(bport *b);

/* Outgoing: reserve room for len bytes (-EAGAIN full, -EMSGSIZE, -EPROTO). */
int bport_reserve(bport *b, size_t len, void **ret);
/* Publish it (n bytes) and ring the client if it sleeps; returns the record's
 * position (for bport_passed). */
uint64_t bport_commit(bport *b, size_t n);
/* Ask to be woken when the client consumes (room, or a receipt to send).
 * Returns true if len bytes fit already (the caller writes on). */
bool bport_arm_tx(bport *b, size_t len);
/* Spinning (loop_spin): would len bytes fit now? Reads the client's index
 * only (validated as bport_reserve does), arms nothing. */
bool bport_tx_room(bport *b, size_t len);
/* Ask to be woken on the client's next consume (receipts), whatever the room. */
void bport_want_tx(bport *b);
/* Has the client consumed the record at pos? */
bool bport_passed(bport *b, uint64_t pos);

/* RUN SLOT: publish the daemon's run state in our side's slot of the flow
 * (struct flow_run, ring.h), which the client reads to decide whether to
 * spin for us (src/lib/core/wait.c): the CPU we run on, and asleep = the
 * owner will not look at this flow again without a wake-up (a client never
 * spins for a daemon that sleeps, nor on the daemon's CPU). An owner that
 * never calls it leaves the slot as the flow began (CPU 0, awake). Written
 * only when changed (a store is a cache line taken from the client); the
 * client can write the slot too: it is read for nothing but "changed?". */
void bport_run_note(bport *b, unsigned cpu, bool asleep);

/* Has the client ended its side (dealloc, death, or a hung-up channel)? */
bool bport_peer_ended(bport *b);

/* Run the owner's callback again soon (from the loop): for an owner that
 * stopped with work left, so that other objects get the loop first. */
void bport_kick(bport *b);

/* End our side with code/reason (the client is rung) and stop watching.
 * Idempotent. The bport stays allocated until bport_free(). */
void bport_end(bport *b, uint32_t code, const char *reason);
/* bport_end() if needed, then free (deferred). Accepts NULL; returns NULL. */
bport *bport_free(bport *b);

/* Broker flows in the daemon (a global cap: each maps its region). */
#define BROKER_FLOWS_MAX 2048
