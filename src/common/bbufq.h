/*
 * bbufq.h — the bounded buffer's shared state and the operations on it: a
 * many-producer, many-consumer queue of variable-size items in a region of
 * a group's memory (Knuth's circular queue; Dijkstra's producer/consumer).
 * libipcf's bbuf.c puts the public API (handles, remapping, timeouts) around
 * it; fuzz/fuzz-bbuf.c runs it over arbitrary headers.
 *
 * LAYOUT at the region's start (IPCF_BBUF_HDR bytes of header, then cap
 * bytes of data, a circle): magic, version, cap, epoch; the producers' cache
 * line (head, items put, the futex word not_empty, sleeping consumers); the
 * consumers' line (tail, items taken, not_full, sleeping producers); the
 * producers' lock and the consumers' lock (common/grplock.h), a line each.
 * An item is a 4-byte little-endian length, then its bytes, both wrapping
 * around the end as needed (no padding, ever).
 *
 * FULL CAPACITY: head and tail are free-running byte counters (never reduced
 * modulo cap): used = head - tail, so empty (0) and full (cap) differ
 * without a wasted slot, and items totalling exactly cap bytes fit.
 *
 * LOCKING (the two-lock queue): producers serialise on lk_put and own head;
 * consumers on lk_get and own tail; each reads the other's counter once per
 * operation at most (seq_cst). A producer copies into free space, then
 * publishes head; a consumer copies out, then publishes tail. A process
 * that dies mid-copy has not published, so a lock taken from a dead holder
 * needs no repair: the taker marks it consistent and goes on.
 *
 * TRUST: any member may write anything into the header or the data. cap is
 * checked against what is mapped, head - tail against cap, each item's
 * length against what is queued; a violation fails -EPROTO and nothing is
 * read or written outside [data, data + cap). A lock word that is corrupt
 * (unrecoverable, or forging the caller) fails -EPROTO; one that names a
 * live holder makes the caller wait until its deadline, never longer.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/grplock.h"
#include "ipcf.h"

#define BBUFQ_MAGIC 0x46554242u     /* "BBUF" */
#define BBUFQ_VERSION 2u
#define BBUFQ_SPIN_NS 50000u        /* waiting for items or room: spin this long first */
#define BBUFQ_LOCK_SPIN_NS 20000u   /* waiting for the other producer/consumer */

struct bbufq_hdr {
        uint32_t magic, version;
        uint64_t cap;
        uint64_t epoch;                         /* set by init: keys cached counters */
        struct {
                uint64_t head;                  /* under lk_put; seq_cst store */
                uint64_t items_in;
                _Atomic uint32_t not_empty;     /* futex word: bumped to wake consumers */
                _Atomic uint32_t get_waiters;   /* consumers asleep */
        } p __attribute__((aligned(64)));
        struct {
                uint64_t tail;                  /* under lk_get; seq_cst store */
                uint64_t items_out;
                _Atomic uint32_t not_full;      /* futex word: bumped to wake producers */
                _Atomic uint32_t put_waiters;   /* producers asleep */
        } c __attribute__((aligned(64)));
        struct grplock lk_put __attribute__((aligned(64)));
        struct grplock lk_get __attribute__((aligned(64)));
};

_Static_assert(sizeof(struct bbufq_hdr) <= IPCF_BBUF_HDR, "bbuf header too large");

/* One operation's view of a buffer whose header was validated. */
typedef struct bbufq {
        struct bbufq_hdr *h;
        uint8_t *data;
        uint64_t cap, epoch;
} bbufq;

/* A handle's memory of the other side's counter (a lower bound that only
 * grows: read the other side's line again only when it is not enough),
 * valid for the buffer at key with epoch. Private memory of the caller. */
typedef struct bbufq_seen {
        uint64_t key, epoch, val;
} bbufq_seen;

/* The caller's deadline, read from the clock only when first needed: a call
 * that waits neither for a lock nor for items or room reads no clock. (Its
 * timeout then counts from its first wait, one attempt after the call
 * began.) */
typedef struct bbufq_when {
        int timeout_ms;     /* as the API's: 0 try, -1 never */
        uint64_t at;        /* monotonic ns; 0 until computed */
} bbufq_when;

/* The deadline of w, computing it on first use. */
uint64_t bbufq_deadline(bbufq_when *w);

/* Lay out an empty buffer in len (> IPCF_BBUF_HDR) bytes at region. Only
 * while nobody uses it. */
void bbufq_init(void *region, uint64_t len, uint64_t epoch);
/* Read and validate the header at region, of which avail bytes (>=
 * IPCF_BBUF_HDR) are mapped. 0 or -EPROTO. */
int bbufq_open(void *region, uint64_t avail, bbufq *ret);

/* One put attempt, taking lk_put by the deadline: 1 done; 0 no room (*ret_seen:
 * the tail seen, for bbufq_wait_room); -EMSGSIZE; -EPROTO; -ETIMEDOUT (the
 * lock); or the stop callback's error. */
int bbufq_put_once(const bbufq *q, const grplock_who *w, bbufq_when *when, const void *buf,
                   size_t len, bbufq_seen *seen, uint64_t key, uint64_t *ret_seen);
/* One get attempt: the item's length (copied to buf); or 0 with *ret_wait
 * when empty (*ret_seen: the head seen); -EMSGSIZE cap too small (the item
 * stays); -EPROTO; -ETIMEDOUT; the stop callback's error. */
ssize_t bbufq_get_once(const bbufq *q, const grplock_who *w, bbufq_when *when, void *buf,
                       size_t cap, bbufq_seen *seen, uint64_t key, uint64_t *ret_seen,
                       bool *ret_wait);
/* Wait (spin, then one futex sleep of at most GRPLOCK_SLICE_MS) for head
 * to move from seen / tail to move from seen. 0 (look again) or -ETIMEDOUT. */
int bbufq_wait_items(const bbufq *q, uint64_t seen, bbufq_when *when);
int bbufq_wait_room(const bbufq *q, uint64_t seen, bbufq_when *when);
/* A snapshot without the locks: bytes and items queued. 0 or -EPROTO. */
int bbufq_stat(const bbufq *q, uint64_t *ret_bytes, uint64_t *ret_items);
