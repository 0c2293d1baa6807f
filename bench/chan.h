/*
 * chan.h — one interface over every mechanism the side-by-side benchmarks
 * compare: ipcf flows (spinning, sleep-only, and in batches of messages),
 * ipcf mailboxes and calls;
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
 * measure.h runs whole measurements (two processes) on top of this.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#include <dbus/dbus.h>
#include <nng/nng.h>
#include <rpc/rpc.h>

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
        bool many;            /* ipcf flows: messages gathered into ipcf_write_many /
                               * ipcf_read_many batches (batch.h) */
} chan_kind;

extern const chan_kind chan_kinds[];
extern const unsigned chan_n_kinds;
const chan_kind *chan_find(const char *key);
/* Does it move one-way messages (not only calls)? */
bool chan_oneway(const chan_kind *k);
/* The daemon a message of this kind crosses (ipcfd for mailboxes,
 * dbus-daemon), whose CPU time counts too; 0 if none. */
pid_t chan_broker_pid(const chan_kind *k);

/* ---- one channel ---------------------------------------------------------- */

/* What the parent makes before fork, shared by both sides (owned by the
 * parent: chan_setup_free after the children are gone). */
typedef struct chan_setup {
        const chan_kind *k;
        size_t max_msg;
        int fds[4];
        struct sockaddr_in addr;   /* TCP / ONC RPC: the server's address */
        char name[160];            /* ipcf name, bus name or ipc:// URL */
        bool mbox_made;
} chan_setup;

/* One side, opened in one process (chan_open .. chan_close). */
typedef struct chan {
        const chan_kind *k;
        int side;
        size_t cap;
        int rfd, wfd;
        int port, port2;           /* ipcf: flow / mailbox handles; service handle */
        nng_socket nng;
        void *zctx, *zsock;
        CLIENT *clnt;
        DBusConnection *dbus;
        const char *name;
        struct msg_batch *tx, *rx; /* kinds with many: messages gathered to be sent,
                                    * and read but not yet handed out */
} chan;

/* Make what both sides share for messages of up to max_msg bytes.
 * -EMSGSIZE: this kind cannot carry max_msg here (reported as n/a). */
int chan_prepare(const chan_kind *k, size_t max_msg, chan_setup *s);
/* The same with the TCP and UDP sockets (ONC RPC's too) bound to ip (IPv4,
 * host order) instead of 127.0.0.1: a server another network namespace or
 * host reaches at s->addr. */
int chan_prepare_at(const chan_kind *k, size_t max_msg, uint32_t ip, chan_setup *s);
void chan_setup_free(chan_setup *s);
/* Open side 0 (client / sender) or 1 (server / receiver) in this process;
 * synchronises with the other side over c. 0 or -errno. c NULL (calls
 * only: ipcf calls, ONC RPC, D-Bus): no synchronisation — one server
 * (side 1) then answers any number of clients (side 0) that open the same
 * setup (a copy: the address, the name), each retrying its first call
 * until the server is there. */
int chan_open(chan_setup *s, int side, const bench_ctl *c, chan *ch);
void chan_close(chan *ch);
/* One whole message of len bytes. 0 or -errno. A kind with many may only
 * gather it: chan_flush sends what is gathered (a no-op for other kinds). */
int chan_send(chan *ch, const void *buf, size_t len);
int chan_flush(chan *ch);
/* One message into buf (ch->cap bytes); byte streams read exactly want.
 * Its length in *ret_len. UDP: -EAGAIN after 1 s of silence. */
int chan_recv(chan *ch, void *buf, size_t want, size_t *ret_len);
/* Side 0: one round trip of len bytes (buf holds the request, then the
 * answer). Side 1: answer one. 0 or -errno. */
int chan_call(chan *ch, void *buf, size_t len);
int chan_serve(chan *ch, void *buf, size_t len);
