/*
 * chan.h — one interface over every mechanism the side-by-side benchmarks
 * compare: ipcf flows (spinning and sleep-only), ipcf mailboxes and calls;
 * pipes, Unix stream and seqpacket sockets, TCP and UDP loopback, POSIX
 * message queues; NNG pair and ZeroMQ PAIR over ipc://; ONC RPC over TCP and
 * UDP; a D-Bus method call through a private dbus-daemon.
 *
 * Life of a channel: the parent prepares what both processes must share
 * (chan_prepare: sockets, queues, names), forks, and each process opens its
 * side (chan_open: side 0 is the client / sender, side 1 the server /
 * receiver), which synchronises over the control channel. Then:
 *   - message kinds (chan_oneway() true) move whole messages either way with
 *     chan_send / chan_recv;
 *   - every kind does round trips: chan_call on side 0 (a write and a read,
 *     or a real call) and chan_serve on side 1 (answer one).
 * Buffers passed in must hold the max_msg given to chan_prepare.
 * chan_rtt_measure and chan_oneway_measure run a whole measurement (two
 * processes) and are what the cmp-* programs call.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "benchlib.h"

enum chan_type {
        CH_IPCF, CH_MBOX, CH_CALL, CH_PIPE, CH_STREAM, CH_SEQPACKET, CH_TCP, CH_UDP, CH_MQ,
        CH_NNG, CH_ZMQ, CH_RPC_TCP, CH_RPC_UDP, CH_DBUS,
};

typedef struct chan_kind {
        const char *key;      /* short name: CSV "mechanism" and --only */
        const char *label;    /* for tables */
        enum chan_type type;
        uint32_t spin_us;     /* ipcf flows: qos.spin_us */
        size_t max_size;      /* the largest message it can carry here (0: any) */
} chan_kind;

extern const chan_kind chan_kinds[];
extern const unsigned chan_n_kinds;
const chan_kind *chan_find(const char *key);
/* Does it move one-way messages (not only calls)? */
bool chan_oneway(const chan_kind *k);
/* The daemon a message of this kind crosses (ipcfd for mailboxes,
 * dbus-daemon), whose CPU time counts too; 0 if none. */
pid_t chan_broker_pid(const chan_kind *k);

/* ---- measurements --------------------------------------------------------- */

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
