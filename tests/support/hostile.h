/*
 * hostile.h — what a hostile local process does to the objects it shares
 * with an honest one, for the tests that play it (tests/test-hostile.c):
 * find the descriptors and shared memory the library gave it, and tamper
 * with them — open file description flags, eventfd counters or socket
 * queues, shutdowns — as any process may do to what it holds.
 *
 * Every helper only touches this process's own descriptors and mappings.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/ring.h"
#include "support/test.h"

#define HOSTILE_FDS_MAX 1024

/* The set of open descriptors of this process. */
typedef struct fdset {
        bool open[HOSTILE_FDS_MAX];
} fdset;

void fdset_snapshot(fdset *s);
/* Descriptors open now that were not in before; returns how many (<= max). */
int fdset_new_since(const fdset *before, int *ret_fds, int max);

enum hostile_fd_mode {
        /* Clear O_NONBLOCK on the shared open file description. */
        HOSTILE_CLEAR_NONBLOCK = 1u << 0,
        /* Make a write block: an eventfd's counter to 2^64-2, a socket's
         * queue full (with its send buffer shrunk). */
        HOSTILE_FILL = 1u << 1,
        /* Make a read block: empty an eventfd or socket. */
        HOSTILE_DRAIN = 1u << 2,
        /* Shut a socket down (both directions). */
        HOSTILE_SHUTDOWN = 1u << 3,
};

/* Tamper with fd as mode says (combined; the flags are cleared last so that
 * this process itself never blocks). Returns 0, or -errno of a step that
 * did not apply to this kind of descriptor (ignored by callers). */
int hostile_fd(int fd, unsigned mode);
/* Make whoever polls fd wake up, as a peer ringing it would (an eventfd:
 * add 1; a socket: send a byte), without ever blocking. */
void hostile_ring(int fd);
/* hostile_fd() on every descriptor of fds. */
void hostile_fds(const int *fds, int n, unsigned mode);

/* Is fd an eventfd / a socket? */
bool fd_is_eventfd(int fd);
bool fd_is_socket(int fd);

/* The shared mappings of this process whose /proc/self/maps line contains
 * a name (e.g. "memfd:ipcf-flow"). */
#define HOSTILE_MAPS_MAX 256
typedef struct mapset {
        uintptr_t lo[HOSTILE_MAPS_MAX];
        size_t len[HOSTILE_MAPS_MAX];
        int n;
} mapset;

void mapset_snapshot(mapset *s, const char *name);
/* A mapping named name that is not in before (the one an object made since
 * then): its address and length, or NULL. */
void *mapset_new_since(const mapset *before, const char *name, size_t *ret_len);

/* ---- forged records and time bounds ------------------------------------ */

/* Write a record header at position pos of ring `ring` in the flow region
 * mem of layout l — len and flags, then tag with a release store, as a
 * producer publishes one (tag: pos << 2 | state for a well-placed one). */
void hostile_record(void *mem, const flow_layout *l, int ring, uint64_t pos, uint64_t tag,
                    uint32_t len, uint32_t flags);

/* How late an honest call may return after its timeout on a loaded machine
 * (a hostile that held a call for seconds would show most of it). */
#define HOSTILE_SLACK_MS 1500

/* Evaluate expr (a call with a timeout of timeout_ms) and fail the test if
 * it came back later than its timeout plus HOSTILE_SLACK_MS; its value. */
#define WITHIN(timeout_ms, expr)                                                  \
        ({                                                                        \
                uint64_t _t0 = test_now_ms();                                     \
                long long _wr = (long long)(expr);                                \
                uint64_t _el = test_now_ms() - _t0;                               \
                if (_el > (uint64_t)(timeout_ms) + HOSTILE_SLACK_MS)              \
                        test_fail(__FILE__, __LINE__, "%s took %llu ms (timeout %d)", #expr, \
                                  (unsigned long long)_el, (int)(timeout_ms));    \
                _wr;                                                              \
        })

/* A pipe to say "done" from one process to another (the hostile and the
 * honest side of a test): sync_post writes a byte, sync_wait reads one
 * within timeout_ms (else the test fails). */
typedef struct sync_pipe {
        int fd[2];
} sync_pipe;

void sync_init(sync_pipe *s);
void sync_post(sync_pipe *s);
void sync_wait(sync_pipe *s, int timeout_ms);

/* ---- the seeded mutator of a flow's shared memory and descriptors ------- */

/* What a hostile holder of one side of a flow may touch: the whole region
 * (as mapped in this process), the flow's geometry, its side, and the
 * descriptors the flow brought. */
typedef struct mutator {
        uint64_t rng;           /* xorshift state (the seed, never 0) */
        uint8_t *mem;
        flow_layout layout;
        int side;               /* the hostile's side: it produces ring `side` */
        int fds[64];
        int n_fds;
        unsigned shutdown_pct;  /* chance (%) that a descriptor step shuts one down */
        uint64_t steps, by_kind[12];
        uint64_t dev, ino;      /* the mapping's file (its memfd): is it still the one at mem? */
        bool by_maps;           /* /proc/self/map_files not readable: look in /proc/self/maps */
        uint64_t gone;          /* steps skipped: the region was unmapped (or reused) */
} mutator;

enum {
        MUT_CTL, MUT_RECORD, MUT_DATA, MUT_END, MUT_RUN, MUT_CANCEL, MUT_FD_FLAGS,
        MUT_FD_RING, MUT_FD_SHUTDOWN, MUT_KINDS
};

/* Set m up for the region of len bytes at mem (as mapped: the layout
 * follows from its length) on side `side`. */
void mutator_init(mutator *m, uint64_t seed, void *mem, size_t len, int side, const int *fds,
                  int n_fds);
/* A pseudo-random number from m's stream. */
uint64_t mutator_rand(mutator *m);
/* One hostile step: rewrite a ring control word, a record header near a
 * reader's position, data, an end record, run state or cancel slots with a
 * random or adversarial value, or tamper with one of the descriptors.
 * Returns the kind of step (MUT_*), or -1 without touching anything when
 * the region is no longer the flow's mapping at mem: the hostile's own
 * library unmapped it (a broken channel is dropped) and the addresses may
 * hold something else since (a heap's memory: writing there was a
 * use-after-free). Checked before every step, so a caller that unmaps only
 * from its own thread, between steps, is safe. */
int mutator_step(mutator *m);
