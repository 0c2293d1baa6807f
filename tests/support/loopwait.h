/*
 * loopwait.h — run the daemon's event loop (src/daemon/core/loop.h) in a
 * test until a condition holds or a time bound passes.
 *
 * The condition is checked every LOOP_WAIT_CHECK_MS (a timer of the loop),
 * so a test never spins and never waits longer than its bound (plus one
 * check). Not for measuring latencies: that granularity is the timer's.
 */
#pragma once

#include <stdbool.h>

#include "daemon/core/loop.h"

#define LOOP_WAIT_CHECK_MS 2

/* Run l until pred(ctx) is true (returns true) or timeout_ms passes
 * (returns false). pred may be NULL: just run for timeout_ms. */
bool loop_wait(loop *l, bool (*pred)(void *ctx), void *ctx, int timeout_ms);
