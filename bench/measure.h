/*
 * measure.h — whole measurements over one mechanism of chan.h, each between
 * two forked processes (measure.c): round trips and one-way streams. This is
 * what the cmp-* programs call; they repeat, combine and print.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"

/* Round trips of size bytes (0: an empty call; ONC RPC then makes a null
 * call): warm-up, then timed ones until target_s or max_iters. The caller
 * owns *ret_samples (ns, sorted; free() it). */
typedef struct rtt_result {
        uint64_t *samples;
        size_t n;
        double per_s;        /* round trips per second over the timed phase */
        double cpu_ns;       /* CPU per round trip, both processes (+ broker) */
        char error[160];
} rtt_result;
int chan_rtt_measure(const chan_kind *k, size_t size, bool pinned, double target_s,
                     size_t max_iters, rtt_result *ret);

/* One-way messages of size bytes for warm_s then dur_s. */
typedef struct oneway_result {
        double msgs_per_s, bytes_per_s;
        double cpu_ns;       /* CPU per message, both processes (+ broker) */
        char error[160];
} oneway_result;
int chan_oneway_measure(const chan_kind *k, size_t size, bool pinned, double warm_s,
                        double dur_s, oneway_result *ret);
