/*
 * impair.h — the impairment hook on the daemon's datagram send path, for
 * tests only: switched on by a config's [impair] section (common/confhosts.h),
 * never by default. Each datagram the daemon sends is, with the configured
 * probabilities, dropped, duplicated, corrupted (one random bit flipped: the
 * receiver's AEAD must catch it), held back so that later ones overtake it
 * (reordering), and delayed. The kernel here has no netem; this does what it
 * would, inside the daemon, on the real socket's path.
 *
 * Held datagrams wait in a heap ordered by release time (at most
 * IMPAIR_HELD_MAX; more are dropped and counted), released by a loop timer.
 * Randomness: a xorshift generator seeded from the config (seed), so a run
 * can be repeated.
 *
 * The section's linger_ms is no part of the hook: link.c gives it to the
 * engine as its close linger (a closing flow's unacknowledged data given
 * up after that long), so a test can lose data on purpose.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "common/confhosts.h"
#include "daemon/core/loop.h"
#include "efcp/host.h"

#define IMPAIR_HELD_MAX 16384
#define IMPAIR_REORDER_HOLD_NS (2 * 1000000ull) /* a reordered datagram waits up to this */

typedef struct impair impair;

/* Where a datagram goes once the hook lets it: the real send. */
typedef void (*impair_out_fn)(void *ctx, const void *buf, size_t len, const efcp_addr *dst);

typedef struct impair_stats {
        uint64_t passed, dropped, duplicated, corrupted, reordered, delayed, overflow;
} impair_stats;

/* NULL *ret (and 0) when c is not set: no hook. -ENOMEM. */
int impair_new(loop *l, const conf_impair *c, impair_out_fn out, void *ctx, impair **ret);
impair *impair_free(impair *m);

/* One datagram to send (copied if held). */
void impair_send(impair *m, const void *buf, size_t len, const efcp_addr *dst, uint64_t now);

const impair_stats *impair_stats_get(const impair *m);
