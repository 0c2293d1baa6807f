/*
 * ring.h — the shared-memory layout of a flow and its two single-producer /
 * single-consumer record rings. Pure, non-blocking operations: waiting and
 * wake-ups live in src/lib/core/wait.c, the daemon only lays the memory out.
 *
 * A FLOW REGION (one memfd, sealed against shrink/grow, made by the daemon):
 *
 *   0      flow_hdr     magic, version, per-side end records and run state
 *   4096   ring_ctl[0]  side 0 (allocator) -> side 1 (acceptor)
 *   4352   ring_ctl[1]  side 1 -> side 0
 *   8192   data of ring 0   (ring_size bytes, a power of two >= 4096)
 *   8192+R data of ring 1
 *
 * Sizes are never read from the region: each side derives them from the qos
 * the daemon granted (flow_layout()) and checks the memfd is at least that big.
 *
 * A RECORD (16-byte aligned, never wraps around the end of the data area):
 *
 *   u64 tag   = position << 2 | state     (state: 1 READY, 2 TAKEN, 3 WITHDRAWN)
 *   u32 len   payload length
 *   u32 flags REC_PAD: skip to the start of the next lap (len 0)
 *   payload, padded to 16
 *
 * "position" is the record's absolute byte offset in the ring's history (it
 * never wraps in practice: 2^62 bytes), so a stale record of an earlier lap
 * can never look ready: no zeroing of consumed space is needed, and the
 * consumer polls only the record header at its own tail — one cache line per
 * small message, no shared head index on the fast path. The producer re-reads
 * the tail only when the ring looks full to what it knows. The consumer
 * publishes its tail after every ring_consume(); ring_consume_local() defers
 * that to ring_cons_publish() (a quarter ring at most), which the caller does
 * before it waits or returns. The layout is unchanged by either (FLOW_VERSION).
 *
 * TRUST: the peer can write anything anywhere in the region. The consumer
 * keeps its own tail and reads only the header at it, validating tag, length
 * and bounds; the producer keeps its own head and checks the tail it reads is
 * monotonic and within [head - size, head]. Every index adopted from shared
 * memory is bounded the same way, against the other side's and the ring's
 * size, and below RING_POS_MAX. Any violation is -EPROTO: the flow is dead,
 * this process is unharmed. No call does more than bounded work whatever the
 * peer writes (RING_SKIP_MAX), so the callers' deadlines hold.
 *
 * HANDOVER: one process at a time produces (and one consumes) on a ring. If a
 * port is passed on after fork(), the new holder adopts the position in shared
 * memory when it is ahead of its own copy (never one behind it).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ipcf.h"

#define FLOW_MAGIC 0x46435049u /* "IPCF" */
#define FLOW_VERSION 1u
#define FLOW_HDR_SIZE 4096u
#define FLOW_CTL_SIZE 256u
#define FLOW_DATA_OFF 8192u
#define RING_ALIGN 16u
#define REC_HDR 16u
#define RING_MIN 4096u
/* No position (head or tail) reaches this: 2 EiB of history, and a tag
 * (position << 2) must hold it. One that does is a peer's forgery. */
#define RING_POS_MAX (1ull << 61)
/* ring_peek() skips at most this many records (pads, withdrawn) per call. */
#define RING_SKIP_MAX 64u

enum { REC_READY = 1, REC_TAKEN = 2, REC_WITHDRAWN = 3 };
enum { REC_PAD = 1u };

#define CACHELINE 64

/* How one side ended the flow, written by that side (or by the daemon when the
 * side died) before it rings the other side. */
struct flow_end {
        _Atomic uint32_t code;            /* enum ipcf_end, 0 while live */
        uint32_t reserved;
        char reason[IPCF_REASON_MAX + 1];
};

/* Run state of one side, read by the other to decide whether to spin. A
 * daemon end (broker.h) writes its slot when its owner says so (mailboxes,
 * bport_run_note: blocked = the daemon sleeps as far as that mailbox goes);
 * otherwise it stays as the flow began (CPU 0, awake). */
struct flow_run {
        _Alignas(CACHELINE) _Atomic uint32_t blocked; /* 1 while asleep in a wait */
        _Atomic uint32_t cpu;                         /* CPU it last ran on */
        _Atomic uint32_t waiting;                     /* 1 while in a wait (one with an
                                                       * answer due: past its first spin
                                                       * rounds, lib.h ANNOUNCE_ROUNDS) */
};

/* Call channels (src/lib/models/call.c): ids of the calls the caller (side 0) gave
 * up on, the last FLOW_CANCEL_SLOTS of them, so the service can notice without
 * reading ahead in its queue. Written by the caller only. */
#define FLOW_CANCEL_SLOTS 16
struct flow_cancel {
        _Alignas(CACHELINE) _Atomic uint64_t next;
        _Atomic uint64_t ids[FLOW_CANCEL_SLOTS];
};

/* Mailbox senders' flows (src/daemon/models/mbox.c): how many messages of
 * this flow a receiver has taken, written by the daemon (the broker, side 1)
 * as it sees them taken; for a mailbox on another host, by the sender's
 * daemon's relay (side 1 here) as the mailbox's host tells it
 * (daemon/hosts/relay.h MAILBOX SENDER). After the daemon's death, or the
 * end of the flow with IPCF_END_PEER_DIED (the mailbox's host went), the
 * sender counts as undelivered what it sent beyond this
 * (src/lib/models/modelio.c). */
struct flow_broker {
        _Alignas(CACHELINE) _Atomic uint64_t delivered;
};

struct flow_hdr {
        uint32_t magic, version;
        uint64_t size;
        struct flow_end end[2];
        struct flow_run run[2];
        struct flow_cancel cancel;
        struct flow_broker broker;
};

struct ring_ctl {
        /* written by the producer */
        _Alignas(CACHELINE) _Atomic uint64_t head;  /* bytes published */
        _Atomic uint64_t msgs_w, bytes_w;           /* messages, payload bytes written */
        _Atomic uint64_t drops;                     /* datagrams dropped, queue full */
        /* written by the consumer */
        _Alignas(CACHELINE) _Atomic uint64_t tail;  /* bytes consumed */
        _Atomic uint64_t msgs_r, bytes_r;
        /* wake-up flags for the consumer's waits (rarely written) */
        _Alignas(CACHELINE) _Atomic uint32_t rx_sleep; /* consumer wants a ring (asleep, or
                                                        * poll mode with its queue empty) */
        /* wake-up flags for the producer's waits */
        _Alignas(CACHELINE) _Atomic uint32_t tx_sleep; /* producer wants a ring when room
                                                        * appears (asleep, or poll mode) */
};

_Static_assert(sizeof(struct flow_hdr) <= FLOW_HDR_SIZE, "flow header too big");
_Static_assert(sizeof(struct ring_ctl) <= FLOW_CTL_SIZE, "ring ctl too big");

/* The geometry of a flow region, from a normalised qos. */
typedef struct flow_layout {
        uint64_t ring_size;   /* data bytes per direction, power of two */
        uint64_t cap;         /* the queue's capacity in bytes (<= ring_size): beyond it
                               * only FULL_CACHE's cached messages (ring_prod_cache) */
        uint64_t total;       /* bytes of the whole region */
} flow_layout;

/* Does a flow of qos keep FULL_CACHE's cached messages in its rings? */
bool flow_qos_caches(const ipcf_qos *qos);

/* Record size for a payload of len bytes. */
static inline uint64_t ring_rec_size(uint64_t len) {
        return (REC_HDR + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

/* Geometry for qos (normalised by ctl_qos_normalize()). Returns 0 or -EINVAL. */
int flow_layout_for(const ipcf_qos *qos, flow_layout *ret);

/* Initialise a zero-filled region of layout l (the daemon does this once). */
void flow_region_init(void *mem, const flow_layout *l);

static inline struct flow_hdr *flow_hdr_of(void *mem) { return mem; }
static inline struct ring_ctl *flow_ctl_of(void *mem, int ring) {
        return (struct ring_ctl *)((uint8_t *)mem + FLOW_HDR_SIZE + (size_t)ring * FLOW_CTL_SIZE);
}
static inline uint8_t *flow_data_of(void *mem, const flow_layout *l, int ring) {
        return (uint8_t *)mem + FLOW_DATA_OFF + (size_t)ring * l->ring_size;
}

/* ---- producer ---------------------------------------------------------- */

typedef struct ring_prod {
        struct ring_ctl *ctl;
        uint8_t *data;
        uint64_t size, mask;
        uint64_t head;          /* own, authoritative */
        uint64_t tail_seen;     /* last tail read from shm (validated) */
        uint64_t msgs;          /* own count of published messages */
        uint64_t msgs_r_seen;   /* last msgs_r read (validated) */
        uint64_t bytes;         /* own count of payload bytes */
        uint32_t max_msgs;      /* 0: no count limit */
        uint32_t max_msg;
        uint64_t cap;           /* bytes in flight allowed (the queue's capacity) */
        bool zero;              /* rendezvous: consumer claims records by CAS */
        bool alone;             /* MESSAGE mode: a message larger than cap goes into an
                                 * empty queue (a stream's is cut to fit instead) */
        /* FULL_CACHE (ring_prod_cache): up to cache_max messages beyond the
         * capacity; recent[] holds the end positions of the last messages
         * written (a ring of cache_max), to tell which are beyond it. */
        uint32_t cache_max;
        uint64_t *recent;
        uint64_t recent_n;      /* messages recorded in recent (saturates at cache_max) */
        uint32_t recent_next;   /* where the next one goes */
        /* open reservation */
        uint64_t res_pos;       /* position of the reserved record */
        uint64_t res_len;       /* reserved payload length */
        uint64_t pad_pos;       /* position of a pad record to publish, or UINT64_MAX */
        bool reserved;
        /* unbounded mode: the free region beyond this is known to be released */
        bool trim;
        uint64_t trimmed_to;
        uint64_t trim_check;    /* head when the reader's progress was last read */
} ring_prod;

void ring_prod_init(ring_prod *p, struct ring_ctl *ctl, uint8_t *data, uint64_t size,
                    const ipcf_qos *qos);

/* FULL_CACHE: accept up to n messages beyond the queue's capacity (the ring
 * has room for them: flow_layout_for). They are in the ring at once — the
 * reader gets them as soon as it has read what came before — and count as
 * "cached" while they are beyond the capacity. recent: n words the caller
 * owns for as long as p. */
void ring_prod_cache(ring_prod *p, uint64_t *recent, uint32_t n);

/* FULL_CACHE: how many of the messages in flight are beyond the queue's
 * capacity now (re-reads the consumer's indexes; 0 if they are forged). */
uint32_t ring_cached(ring_prod *p);

/* Reserve room for a record of len payload bytes, contiguous. Returns 0 and
 * points *ret at the payload; -EAGAIN if the ring (or the message count) is
 * full now; -EMSGSIZE if len > max_msg; -EPROTO if the consumer corrupted
 * the indexes. Does not publish; at most one reservation at a time. */
int ring_reserve(ring_prod *p, size_t len, void **ret);

/* Publish the reservation with n <= reserved bytes. Returns the record's
 * position (for ring_taken / ring_withdraw). */
uint64_t ring_commit(ring_prod *p, size_t n);
/* ring_commit for a record followed by more of the same batch: its store is
 * a release, not the store half of the wake-up handshake, so the writer must
 * issue atomic_thread_fence(memory_order_seq_cst) after the batch's last
 * record (or before it waits) and then look at the reader's want word, as
 * ring_commit's caller does (src/lib/core/io.c, ipcf_write_many). */
uint64_t ring_commit_quiet(ring_prod *p, size_t n);

/* Would a reservation of len succeed now? (re-reads the consumer's indexes) */
int ring_can_reserve(ring_prod *p, size_t len);

/* Does the queue look full for a record of len to what the producer knows
 * (no shared read)? Then its next reservation re-reads the consumer's index. */
bool ring_looks_full(const ring_prod *p, size_t len);

/* WRITER BATCHES. A writer that finds the queue full while its reader works
 * through it would otherwise take the reader's index line (and the reader
 * take it back) at every message. It may instead wait for a batch of room —
 * an eighth of the queue, in bytes and in messages — so the line moves once
 * per batch. Is a queue big enough for batches of records of len? (Not a
 * rendezvous nor FULL_CACHE, and a batch holds at least 8 such records.) */
bool ring_batches(const ring_prod *p, size_t len);

/* Re-read the consumer's indexes: 1 if a batch is free, 0 if not, -EPROTO if
 * they are forged. *ret_tail: the consumer's position read (to see progress). */
int ring_batch_free(ring_prod *p, uint64_t *ret_tail);

/* The largest payload a reservation could take now (0 if none). */
uint64_t ring_writable(ring_prod *p);

/* Rendezvous: has the consumer taken (or withdrawn-skipped) the record at
 * pos? 1 yes, 0 not yet, -EPROTO the consumer's indexes are forged. */
int ring_passed(ring_prod *p, uint64_t pos);
/* Rendezvous: withdraw the record at pos (len payload bytes, the last one
 * committed) if the consumer has not claimed it: it then counts neither as
 * written nor against max_msgs. Returns 0 if withdrawn, -EALREADY if it was
 * taken. */
int ring_withdraw(ring_prod *p, uint64_t pos, size_t len);


/* Unbounded mode: give back pages of the free region the producer will not
 * reach soon. Cheap when there is nothing to do. */
void ring_prod_trim(ring_prod *p);

/* ---- consumer ---------------------------------------------------------- */

typedef struct ring_cons {
        struct ring_ctl *ctl;
        uint8_t *data;
        uint64_t size, mask;
        uint64_t tail;          /* own, authoritative */
        uint64_t msgs, bytes;   /* own counts */
        uint64_t pub_tail, pub_msgs; /* as last published (ring_cons_publish) */
        uint32_t max_msg;
        bool zero;
        /* the record ring_peek() returned, until ring_consume() */
        bool peeked;
        uint64_t cur_next;      /* tail after it */
        uint32_t cur_len;
        uint32_t cur_off;       /* STREAM mode: bytes of it already read */
        bool hold;              /* HOLD: publish only with ring_cons_publish_at() */
} ring_cons;

/* A consumer's position with its counts (HOLD). */
typedef struct ring_mark {
        uint64_t tail, msgs, bytes;
} ring_mark;

void ring_cons_init(ring_cons *c, struct ring_ctl *ctl, uint8_t *data, uint64_t size,
                    const ipcf_qos *qos);

/* Look at the next message: returns its length and points *ret at its payload
 * (inside shared memory), -EAGAIN if the ring is empty (or RING_SKIP_MAX pad
 * and withdrawn records were skipped: call again), -EPROTO if the producer
 * wrote garbage. Idempotent until consumed. */
ssize_t ring_peek(ring_cons *c, const void **ret);

/* Consume the peeked record (publishes the new tail). */
void ring_consume(ring_cons *c);

/* Consume the peeked record without publishing the new tail (unless it is a
 * quarter ring ahead of the published one): a reader taking several records
 * in one call publishes once, with ring_cons_publish(), before it returns or
 * waits — a writer may be waiting for that room. */
void ring_consume_local(ring_cons *c);

/* Publish the consumer's position if it moved since it was last published.
 * Returns true if it did (the caller then wakes a writer waiting for room). */
bool ring_cons_publish(ring_cons *c);

/* HOLD (the daemon's mailbox cut-through, src/daemon/models/mbox.c): a
 * consumer that lets the producer reuse the room of what it read only
 * later. While c->hold is set, nothing publishes by itself (ring_consume,
 * the pads and withdrawn records ring_peek skips, the quarter-ring rule);
 * the owner publishes with ring_cons_publish_at(): the counts of what it
 * read (a held record costs its producer bytes, not messages) and a tail
 * it passed — never one behind what is published (a producer checks the
 * tail never goes back), never one ahead of the consumer's own.
 * ring_cons_mark(): the position now (after ring_peek(), the start of the
 * record peeked). */
ring_mark ring_cons_mark(const ring_cons *c);
/* Publish the counts and tail m.tail (if ahead of what is published and
 * not beyond c->tail). Returns true if anything was published (the caller
 * wakes a writer waiting for room). */
bool ring_cons_publish_at(ring_cons *c, ring_mark m);

/* Is a record ready at the tail? (no side effects) */
bool ring_ready(ring_cons *c);

/* A hint of ring_ready() that takes no lock and touches nothing of c that a
 * reader changes: a record at the tail as last published (ring_consume
 * publishes it; a peeked record is at it). Never follows the peer beyond the
 * data area; may be wrong while a reader moves, or if the peer forged the
 * tail: for a poller that re-checks with ring_peek() before it reports, and
 * with ring_ready() before it sleeps. */
bool ring_ready_hint(const ring_cons *c);

/* Bytes queued, as seen by either side (head - tail, clamped). */
uint64_t ring_queued(const struct ring_ctl *ctl, uint64_t size);
