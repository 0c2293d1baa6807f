/*
 * netsim.h — a deterministic network simulator for testing the EFCP engine.
 *
 * Two nodes (0 and 1) joined by two one-way links, each with its own delay,
 * jitter, bandwidth (a serialising queue with tail drop), MTU, random loss,
 * bursty loss (Gilbert–Elliott), duplication, reordering, corruption and
 * blackout windows. Time is virtual (ns); randomness comes from one seeded
 * generator, so a seed replays exactly: a failing test prints its seed and
 * NETSIM_SEED=<seed> runs only that one.
 *
 * netsim_pair drives two efcp associations over a netsim: it pumps their
 * output, delivers datagrams, runs timers, and jumps the clock to the next
 * event, calling the test's application callback at each step.
 *
 * Test support only: allocates freely, aborts on out-of-memory.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "efcp/efcp.h"

typedef struct netsim_link {
        uint64_t delay_ns;       /* one-way propagation delay */
        uint64_t jitter_ns;      /* + uniform [0, jitter) per datagram (may reorder) */
        uint64_t rate_bps;       /* bandwidth; 0 = infinite */
        uint64_t queue_bytes;    /* bottleneck queue before tail drop; 0 = unbounded */
        uint32_t mtu;            /* larger datagrams are dropped; 0 = no limit */
        double loss;             /* independent loss probability */
        double burst_enter;      /* Gilbert–Elliott: P(good -> bad) per datagram */
        double burst_exit;       /* P(bad -> good) */
        double burst_loss;       /* loss probability in the bad state */
        double dup;              /* probability a datagram is delivered twice */
        double corrupt;          /* probability one random bit is flipped */
        double reorder;          /* probability of extra delay reorder_ns */
        uint64_t reorder_ns;
        uint64_t down_from, down_until; /* blackout: everything sent inside is lost */
} netsim_link;

typedef struct netsim_link_stats {
        uint64_t sent, delivered, lost, queue_drops, mtu_drops, dups, corrupted, reordered;
} netsim_link_stats;

typedef struct netsim netsim;

netsim *netsim_new(uint64_t seed);
void netsim_free(netsim *n);
/* Link from node `from` to the other node. */
void netsim_set_link(netsim *n, int from, const netsim_link *l);
netsim_link *netsim_link_of(netsim *n, int from);
const netsim_link_stats *netsim_stats(const netsim *n, int from);
/* Sends a copy of data from node `from` at time now. */
void netsim_send(netsim *n, int from, const void *data, size_t len, uint64_t now);
/* Time of the next delivery, UINT64_MAX if none. */
uint64_t netsim_next(const netsim *n);
/* Pops a datagram due at or before now into buf; returns its length (0 if
 * none due) and the receiving node in *ret_to. */
size_t netsim_recv(netsim *n, uint64_t now, int *ret_to, void *buf, size_t cap);
/* The simulator's generator (for tests that want reproducible choices). */
uint64_t netsim_rand(netsim *n);
double netsim_uniform(netsim *n);

/* Seeds to run: base..base+count-1, or only NETSIM_SEED when set. QUICK
 * (IPCF_TEST_QUICK=1) divides count by 4, keeping at least 3. Soak testing:
 * NETSIM_SEEDS=N [NETSIM_BASE=B] runs N seeds from B (or base). */
typedef struct netsim_seeds {
        uint64_t first, count;
} netsim_seeds;
netsim_seeds netsim_seed_range(uint64_t base, uint64_t count);
bool netsim_quick(void);

/* ---- two associations over one netsim -------------------------------- */

typedef struct netsim_pair netsim_pair;
/* Application step: called after every event; returns the next time it wants
 * to be called (UINT64_MAX: only on events), or 0 when the scenario is done. */
typedef uint64_t (*netsim_app_fn)(netsim_pair *p, void *arg);
/* An on-path attacker: sees every datagram about to be delivered to node
 * `to` (buf, *len bytes, room for 65536) and may change it (and *len), or
 * return false to drop it. */
typedef bool (*netsim_tap_fn)(netsim_pair *p, int to, uint8_t *buf, size_t *len, void *arg);

struct netsim_pair {
        netsim *net;
        efcp_assoc *a[2];
        uint64_t now;
        uint64_t steps;
        uint64_t seed;
        netsim_tap_fn tap; /* NULL: none */
        void *tap_arg;
        uint8_t buf[65536];
};

/* Creates both associations (cfg copied, receiver indices set to 0/1) at time
 * 0 over a fresh netsim seeded with seed; links start perfect (delay 0). */
void netsim_pair_init(netsim_pair *p, uint64_t seed, const efcp_config *cfg);
/* The same with a configuration per side. */
void netsim_pair_init2(netsim_pair *p, uint64_t seed, const efcp_config *cfg0,
                       const efcp_config *cfg1);
void netsim_pair_deinit(netsim_pair *p);
/* Runs until app returns 0 (returns true) or the clock passes until (false). */
bool netsim_pair_run(netsim_pair *p, uint64_t until, netsim_app_fn app, void *arg);
