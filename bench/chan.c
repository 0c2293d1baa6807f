/*
 * chan.c — the mechanisms behind chan.h: how each one is set up, connected,
 * and used to send, receive, call and answer. The measurements built on
 * them are in measure.c.
 *
 * Every mechanism is used the way its documentation shows, with its default
 * settings, except where a message would not fit otherwise (ipcf and NNG
 * size limits raised for 1 MiB messages, socket buffers for seqpacket and
 * UDP); a size a mechanism cannot carry here is reported as "n/a"
 * (-EMSGSIZE), never as a failure.
 *
 * Waits are bounded: ipcf, NNG, ZeroMQ, mq, UDP, ONC RPC and D-Bus waits
 * by BENCH_IO_TIMEOUT_MS; blocking byte streams end when the peer's side
 * closes (a dead process closes its ends), and a stuck child by its alarm.
 */
#include "chan.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dbus/dbus.h>
#include <nng/nng.h>
#include <nng/protocol/pair0/pair.h>
#include <rpc/rpc.h>
#include <zmq.h>

#include "benchrpc.h"
#include "ipcf.h"
#include "batch.h"

/* The rpcgen server dispatcher (benchrpc_svc.c, generated with -m). */
void benchprog_1(struct svc_req *rqstp, SVCXPRT *transp);

#define KiB 1024u
#define MiB (1024u * 1024u)

/* The table order is the order of every output table: ipcf first (the
 * baseline of every ratio), then the kernel's mechanisms from the simplest,
 * then the libraries, then the call mechanisms. max_size is what this
 * machine's defaults allow: UDP's datagram limit, POSIX mq's msgsize_max
 * (raising it needs CAP_SYS_RESOURCE), the mailbox's 256 KiB ceiling, and
 * one ONC RPC UDP datagram (the svcudp buffers below). */
const chan_kind chan_kinds[] = {
        { "ipcf", "ipcf flow (spin 10 µs, default)", CH_IPCF, 10, 0, false },
        { "ipcf-nospin", "ipcf flow (spin_us = 0, sleep only)", CH_IPCF, 0, 0, false },
        { "ipcf-many", "ipcf flow, 32 messages per ipcf_write_many / _read_many", CH_IPCF, 10, 0,
          true },
        { "ipcf-call", "ipcf call (ipcf_call)", CH_CALL, 10, IPCF_CALL_MAX, false },
        { "ipcf-mbox", "ipcf mailbox (through ipcfd)", CH_MBOX, 10, 256 * KiB, false },
        { "pipe", "pipe", CH_PIPE, 0, 0, false },
        { "unix-stream", "Unix socket, stream", CH_STREAM, 0, 0, false },
        { "unix-seqpacket", "Unix socket, seqpacket", CH_SEQPACKET, 0, 0, false },
        { "tcp", "TCP loopback (TCP_NODELAY)", CH_TCP, 0, 0, false },
        { "udp", "UDP loopback", CH_UDP, 0, 65507, false },
        { "posix-mq", "POSIX message queue", CH_MQ, 0, 8192, false },
        { "nng", "NNG pair0, ipc://", CH_NNG, 0, 0, false },
        { "zmq", "ZeroMQ PAIR, ipc://", CH_ZMQ, 0, 0, false },
        { "oncrpc-tcp", "ONC RPC (rpcgen, libtirpc), TCP", CH_RPC_TCP, 0, 0, false },
        { "oncrpc-udp", "ONC RPC (rpcgen, libtirpc), UDP", CH_RPC_UDP, 0, 8800, false },
        { "dbus", "D-Bus method call (dbus-daemon)", CH_DBUS, 0, 0, false },
};
const unsigned chan_n_kinds = sizeof(chan_kinds) / sizeof(chan_kinds[0]);

/* The kind named key, or NULL. */
const chan_kind *chan_find(const char *key) {
        for (unsigned i = 0; i < chan_n_kinds; i++)
                if (!strcmp(chan_kinds[i].key, key))
                        return &chan_kinds[i];
        return NULL;
}

/* Calls have no one-way form: a request always waits for its answer. */
bool chan_oneway(const chan_kind *k) {
        return k->type != CH_CALL && k->type != CH_RPC_TCP && k->type != CH_RPC_UDP &&
               k->type != CH_DBUS;
}

/* ipcfd is counted for every ipcf kind: it moves mailbox messages, and for
 * flows and calls it should be idle (which the figure then shows). */
pid_t chan_broker_pid(const chan_kind *k) {
        if (k->type == CH_MBOX || k->type == CH_IPCF || k->type == CH_CALL)
                return bench_ipcfd_pid();
        if (k->type == CH_DBUS)
                return bench_dbus_pid();
        return 0;
}

/* ---- the channel ---------------------------------------------------------- */

static unsigned chan_seq; /* makes names unique within the run */

/* A TCP or UDP socket bound to 127.0.0.1 on a free port; its address. */
static int inet_socket(int type, uint32_t ip, struct sockaddr_in *ret_addr) {
        int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct sockaddr_in a = { .sin_family = AF_INET };
        a.sin_addr.s_addr = htonl(ip);
        socklen_t len = sizeof(a);
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0 ||
            (type == SOCK_STREAM && listen(fd, 64) < 0)) {
                int e = -errno;
                close(fd);
                return e;
        }
        *ret_addr = a;
        return fd;
}

/* Socket buffers for seqpacket and UDP: 4 messages or 256 KiB, whichever is
 * more (the kernel caps it at wmem_max/rmem_max, silently: a message that
 * then does not fit fails with EMSGSIZE and is reported n/a). */
static void set_bufs(int fd, size_t max_msg) {
        int want = (int)(max_msg * 4 > 256 * KiB ? max_msg * 4 : 256 * KiB);
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &want, sizeof(want));
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
}

/* Bound a blocking receive (UDP: a lost datagram must not hang us). */
static void set_rcvtimeo(int fd, int ms) {
        struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* Make what both sides share. -EMSGSIZE: this kind cannot carry max_msg.
 * Names (ipcf names, mq names, bus names, ipc:// paths) carry our pid and a
 * sequence number: unique within the run and among concurrent runs. */
int chan_prepare(const chan_kind *k, size_t max_msg, chan_setup *s) {
        return chan_prepare_at(k, max_msg, INADDR_LOOPBACK, s);
}

int chan_prepare_at(const chan_kind *k, size_t max_msg, uint32_t ip, chan_setup *s) {
        memset(s, 0, sizeof(*s));
        s->k = k;
        s->max_msg = max_msg < 64 ? 64 : max_msg;
        for (int i = 0; i < 4; i++)
                s->fds[i] = -1;
        if (k->max_size && max_msg > k->max_size)
                return -EMSGSIZE;
        unsigned seq = ++chan_seq;
        int pid = (int)getpid();
        switch (k->type) {
        case CH_IPCF:
        case CH_CALL:
                /* nothing to share but the name: the daemon makes the flow */
                snprintf(s->name, sizeof(s->name), "cmp.%d.%u", pid, seq);
                return 0;
        case CH_MBOX: {
                /* two mailboxes, "<name>.a" (side 0 -> 1) and "<name>.b"
                 * (1 -> 0); they live in the daemon until destroyed */
                snprintf(s->name, sizeof(s->name), "cmp.box.%d.%u", pid, seq);
                ipcf_mbox_opts o = { .size = sizeof(o) };
                o.max_msg_size = (uint32_t)(s->max_msg > 64 * KiB ? s->max_msg : 64 * KiB);
                char n[200];
                for (int i = 0; i < 2; i++) {
                        snprintf(n, sizeof(n), "%s.%c", s->name, 'a' + i);
                        int r = ipcf_mbox_create(n, &o);
                        if (r < 0)
                                return r;
                }
                s->mbox_made = true;
                return 0;
        }
        case CH_PIPE:
                /* fds[0..1]: side 0 -> 1; fds[2..3]: side 1 -> 0 */
                if (pipe2(s->fds, O_CLOEXEC) < 0 || pipe2(s->fds + 2, O_CLOEXEC) < 0)
                        return -errno;
                return 0;
        case CH_STREAM:
        case CH_SEQPACKET: {
                int type = k->type == CH_STREAM ? SOCK_STREAM : SOCK_SEQPACKET;
                if (socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, s->fds) < 0)
                        return -errno;
                if (k->type == CH_SEQPACKET)
                        for (int i = 0; i < 2; i++)
                                set_bufs(s->fds[i], s->max_msg);
                return 0;
        }
        case CH_TCP:
        case CH_RPC_TCP:
                /* the listening socket; side 1 accepts (or svctcp does) */
                s->fds[0] = inet_socket(SOCK_STREAM, ip, &s->addr);
                return s->fds[0] < 0 ? s->fds[0] : 0;
        case CH_UDP:
        case CH_RPC_UDP: {
                /* two bound sockets connected to each other, so that plain
                 * send/recv work and stray datagrams are filtered */
                struct sockaddr_in a[2];
                for (int i = 0; i < 2; i++) {
                        s->fds[i] = inet_socket(SOCK_DGRAM, ip, &a[i]);
                        if (s->fds[i] < 0)
                                return s->fds[i];
                        set_bufs(s->fds[i], s->max_msg);
                }
                s->addr = a[1]; /* the server's (side 1) */
                if (k->type == CH_RPC_UDP) {
                        close(s->fds[0]); /* the client makes its own */
                        s->fds[0] = -1;
                        return 0;
                }
                if (connect(s->fds[0], (struct sockaddr *)&a[1], sizeof(a[1])) < 0 ||
                    connect(s->fds[1], (struct sockaddr *)&a[0], sizeof(a[0])) < 0)
                        return -errno;
                return 0;
        }
        case CH_MQ: {
                /* two queues, opened here and unlinked at once: the
                 * descriptors survive fork, the names never linger */
                struct mq_attr attr = { .mq_maxmsg = 10, .mq_msgsize = (long)s->max_msg };
                for (int i = 0; i < 2; i++) {
                        char n[64];
                        snprintf(n, sizeof(n), "/ipcf-cmp-%d-%u-%d", pid, seq, i);
                        mqd_t q = mq_open(n, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &attr);
                        if (q == (mqd_t)-1)
                                return errno == EINVAL ? -EMSGSIZE : -errno;
                        mq_unlink(n);
                        s->fds[i] = (int)q;
                }
                return 0;
        }
        case CH_NNG:
        case CH_ZMQ:
                /* a socket path in the run's private directory; the
                 * libraries' sockets are made after fork, in each side */
                snprintf(s->name, sizeof(s->name), "ipc://%s/%s-%u", bench_dir(),
                         k->type == CH_NNG ? "nng" : "zmq", seq);
                return 0;
        case CH_DBUS:
                /* the run's private bus (started on first use) and a
                 * well-known name for this channel's server */
                if (!bench_dbus_address())
                        return -EHOSTDOWN;
                snprintf(s->name, sizeof(s->name), "org.ipcf.Bench.p%d.s%u", pid, seq);
                return 0;
        }
        return -EINVAL;
}

/* Release what chan_prepare made (in the parent, after the children are
 * gone): descriptors, and the mailboxes (destroyed in the daemon). */
void chan_setup_free(chan_setup *s) {
        for (int i = 0; i < 4; i++)
                if (s->fds[i] >= 0) {
                        if (s->k && s->k->type == CH_MQ)
                                mq_close((mqd_t)s->fds[i]);
                        else
                                close(s->fds[i]);
                        s->fds[i] = -1;
                }
        if (s->mbox_made) {
                char n[200];
                for (int i = 0; i < 2; i++) {
                        snprintf(n, sizeof(n), "%s.%c", s->name, 'a' + i);
                        ipcf_mbox_destroy(n);
                }
                s->mbox_made = false;
        }
}

/* Keep fds[keep] (and fds[keep2]) in this process, close the others. */
static void keep_fds(chan_setup *s, int keep, int keep2) {
        for (int i = 0; i < 4; i++)
                if (i != keep && i != keep2 && s->fds[i] >= 0) {
                        close(s->fds[i]);
                        s->fds[i] = -1;
                }
}

/* ---- ONC RPC server ------------------------------------------------------- */

static uint64_t rpc_served;

/* ECHO: the argument is the result (sent before svc_freeargs frees it). */
blob *echo_1_svc(blob *argp, struct svc_req *rqstp);
blob *echo_1_svc(blob *argp, struct svc_req *rqstp) {
        (void)rqstp;
        static blob res;
        res = *argp;
        return &res;
}

/* Counts every request, NULLPROC included, then lets rpcgen's code answer. */
static void rpc_dispatch(struct svc_req *rqstp, SVCXPRT *transp) {
        rpc_served++;
        benchprog_1(rqstp, transp);
}

/* xdr_void with the xdrproc_t type (the header declares it without
 * parameters, which a cast would hide from the compiler). */
static bool_t xdr_nothing(XDR *xdrs, ...) {
        (void)xdrs;
        return TRUE;
}

/* ---- D-Bus ---------------------------------------------------------------- */

#define DBUS_IFACE "org.ipcf.Bench"
#define DBUS_PATH "/org/ipcf/Bench"

static DBusConnection *dbus_open(const char *addr) {
        DBusError err;
        dbus_error_init(&err);
        DBusConnection *c = dbus_connection_open_private(addr, &err);
        if (!c) {
                dbus_error_free(&err);
                return NULL;
        }
        dbus_connection_set_exit_on_disconnect(c, FALSE);
        if (!dbus_bus_register(c, &err)) {
                dbus_error_free(&err);
                dbus_connection_close(c);
                dbus_connection_unref(c);
                return NULL;
        }
        return c;
}

/* ---- open, send, receive, call, serve ------------------------------------- */

/* Every case ends with a barrier (both sides ready) so that no timed
 * phase starts while the other side is still connecting. The server side
 * always makes its endpoint before the first barrier, the client connects
 * after it: nothing needs a retry loop. */
int chan_open(chan_setup *s, int side, const bench_ctl *c, chan *ch) {
        memset(ch, 0, sizeof(*ch));
        ch->k = s->k;
        ch->side = side;
        ch->cap = s->max_msg;
        ch->rfd = ch->wfd = ch->port = ch->port2 = -1;
        ch->name = s->name;
        if (s->k->many && (!(ch->tx = batch_new()) || !(ch->rx = batch_new()))) {
                batch_free(ch->tx);
                ch->tx = NULL;
                return -ENOMEM;
        }
        int r = 0;
        switch (s->k->type) {
        case CH_IPCF:
                /* side 1 registers the name, side 0 allocates a flow to it
                 * with the kind's spin budget (and room for 1 MiB messages
                 * when asked: four of them per ring), side 1 accepts */
                if (side == 1) {
                        int reg = ipcf_register(s->name, NULL);
                        r = bench_barrier(c);
                        if (reg < 0 || r < 0)
                                return reg < 0 ? reg : r;
                        ch->port = ipcf_accept(reg, BENCH_IO_TIMEOUT_MS, NULL);
                        ipcf_dealloc(reg, NULL);
                        return ch->port < 0 ? ch->port : bench_barrier(c);
                } else {
                        if ((r = bench_barrier(c)) < 0)
                                return r;
                        ipcf_qos q;
                        ipcf_qos_init(&q);
                        q.spin_us = s->k->spin_us;
                        if (s->max_msg > q.max_msg_size) {
                                q.max_msg_size = (uint32_t)s->max_msg;
                                q.max_bytes = 4 * s->max_msg;
                        }
                        ch->port = ipcf_alloc(s->name, &q, BENCH_IO_TIMEOUT_MS, NULL);
                        return ch->port < 0 ? ch->port : bench_barrier(c);
                }
        case CH_CALL:
                /* the caller's channel is made by its first ipcf_call(in
                 * the warm-up, NULL); only the service exists beforehand */
                if (side == 1) {
                        ch->port2 = ipcf_service(s->name, NULL);
                        if (ch->port2 < 0)
                                return ch->port2;
                }
                return bench_barrier(c);
        case CH_MBOX: {
                char a[200], b[200];
                snprintf(a, sizeof(a), "%s.a", s->name);
                snprintf(b, sizeof(b), "%s.b", s->name);
                /* side 0 sends on a and receives on b; side 1 the reverse */
                ch->port = ipcf_mbox_open(side == 0 ? a : b, IPCF_MBOX_SEND, NULL,
                                          BENCH_IO_TIMEOUT_MS);
                ch->port2 = ipcf_mbox_open(side == 0 ? b : a, IPCF_MBOX_RECV, NULL,
                                           BENCH_IO_TIMEOUT_MS);
                if (ch->port < 0 || ch->port2 < 0)
                        return ch->port < 0 ? ch->port : ch->port2;
                return bench_barrier(c);
        }
        case CH_PIPE:
                /* keep our two ends, close the peer's: its exit is then
                 * our EOF, never a hang */
                ch->wfd = side == 0 ? s->fds[1] : s->fds[3];
                ch->rfd = side == 0 ? s->fds[2] : s->fds[0];
                keep_fds(s, side == 0 ? 1 : 3, side == 0 ? 2 : 0);
                return bench_barrier(c);
        case CH_STREAM:
        case CH_SEQPACKET:
        case CH_UDP:
                ch->rfd = ch->wfd = s->fds[side];
                keep_fds(s, side, side);
                if (s->k->type == CH_UDP)
                        set_rcvtimeo(ch->rfd, 1000);
                return bench_barrier(c);
        case CH_MQ:
                /* side 0 writes queue 0 and reads queue 1 */
                ch->wfd = s->fds[side];
                ch->rfd = s->fds[1 - side];
                return bench_barrier(c);
        case CH_TCP:
                /* Nagle off on both sides: a round trip must not wait for
                 * a delayed ACK */
                if (side == 1) {
                        struct pollfd p = { .fd = s->fds[0], .events = POLLIN };
                        if ((r = bench_barrier(c)) < 0)
                                return r;
                        if (poll(&p, 1, BENCH_IO_TIMEOUT_MS) != 1)
                                return -ETIMEDOUT;
                        ch->rfd = ch->wfd = accept4(s->fds[0], NULL, NULL, SOCK_CLOEXEC);
                } else {
                        if ((r = bench_barrier(c)) < 0)
                                return r;
                        ch->rfd = ch->wfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                        if (ch->rfd >= 0 &&
                            connect(ch->rfd, (struct sockaddr *)&s->addr, sizeof(s->addr)) < 0)
                                return -errno;
                }
                if (ch->rfd < 0)
                        return -errno;
                keep_fds(s, -1, -1);
                int one = 1;
                setsockopt(ch->rfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                return bench_barrier(c);
        case CH_NNG: {
                /* pair0 (one peer, blocking send); receive size unlimited
                 * (its default of 1 MiB refuses a 1 MiB message with its
                 * header); waits bounded by the socket timeouts */
                int e = nng_pair0_open(&ch->nng);
                if (e)
                        return -EIO;
                nng_socket_set_ms(ch->nng, NNG_OPT_RECVTIMEO, BENCH_IO_TIMEOUT_MS);
                nng_socket_set_ms(ch->nng, NNG_OPT_SENDTIMEO, BENCH_IO_TIMEOUT_MS);
                nng_socket_set_size(ch->nng, NNG_OPT_RECVMAXSZ, 0);
                if (side == 1) {
                        e = nng_listen(ch->nng, s->name, NULL, 0);
                        r = bench_barrier(c);
                } else {
                        r = bench_barrier(c);
                        if (r == 0)
                                e = nng_dial(ch->nng, s->name, NULL, 0);
                }
                if (e)
                        return -ECONNREFUSED;
                return r < 0 ? r : bench_barrier(c);
        }
        case CH_ZMQ: {
                /* one context per process; LINGER 0 so that closing never
                 * waits for unsent messages */
                ch->zctx = zmq_ctx_new();
                ch->zsock = ch->zctx ? zmq_socket(ch->zctx, ZMQ_PAIR) : NULL;
                if (!ch->zsock)
                        return -EIO;
                int t = BENCH_IO_TIMEOUT_MS, zero = 0;
                zmq_setsockopt(ch->zsock, ZMQ_RCVTIMEO, &t, sizeof(t));
                zmq_setsockopt(ch->zsock, ZMQ_SNDTIMEO, &t, sizeof(t));
                zmq_setsockopt(ch->zsock, ZMQ_LINGER, &zero, sizeof(zero));
                int e = 0;
                if (side == 1) {
                        e = zmq_bind(ch->zsock, s->name);
                        r = bench_barrier(c);
                } else {
                        r = bench_barrier(c);
                        if (r == 0)
                                e = zmq_connect(ch->zsock, s->name);
                }
                if (e)
                        return -ECONNREFUSED;
                return r < 0 ? r : bench_barrier(c);
        }
        case CH_RPC_TCP:
        case CH_RPC_UDP: {
                /* the server registers our dispatcher on the prepared
                 * socket without the portmapper (protocol 0); the client
                 * knows the address, so it needs no portmapper either */
                bool tcp = s->k->type == CH_RPC_TCP;
                if (side == 1) {
                        int fd = tcp ? s->fds[0] : s->fds[1];
                        SVCXPRT *x = tcp ? svctcp_create(fd, 0, 0)
                                         : svcudp_bufcreate(fd, 9000, 9000);
                        if (!x || !svc_register(x, BENCHPROG, BENCHVERS, rpc_dispatch, 0))
                                return -EIO;
                        return bench_barrier(c);
                }
                keep_fds(s, -1, -1);
                if ((r = bench_barrier(c)) < 0)
                        return r;
                int sock = RPC_ANYSOCK;
                struct sockaddr_in a = s->addr;
                struct timeval retry = { 1, 0 };
                ch->clnt = tcp ? clnttcp_create(&a, BENCHPROG, BENCHVERS, &sock, 0, 0)
                               : clntudp_bufcreate(&a, BENCHPROG, BENCHVERS, retry, &sock,
                                                   9000, 9000);
                return ch->clnt ? 0 : -ECONNREFUSED;
        }
        case CH_DBUS: {
                /* both sides connect to the bus; the server owns the name
                 * before the barrier, so the first call finds it */
                ch->dbus = dbus_open(bench_dbus_address());
                if (!ch->dbus)
                        return -ECONNREFUSED;
                if (side == 1) {
                        DBusError err;
                        dbus_error_init(&err);
                        int got = dbus_bus_request_name(ch->dbus, s->name,
                                                        DBUS_NAME_FLAG_DO_NOT_QUEUE, &err);
                        dbus_error_free(&err);
                        if (got != DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER)
                                return -EADDRINUSE;
                }
                return bench_barrier(c);
        }
        }
        return -EINVAL;
}

/* End this side: ipcf handles are deallocated, library sockets closed;
 * kernel descriptors belong to the setup (closed at exit or by the parent). */
void chan_close(chan *ch) {
        batch_free(ch->tx);
        batch_free(ch->rx);
        ch->tx = ch->rx = NULL;
        switch (ch->k->type) {
        case CH_IPCF:
        case CH_MBOX:
                if (ch->port >= 0)
                        ipcf_dealloc(ch->port, "bench done");
                if (ch->port2 >= 0)
                        ipcf_dealloc(ch->port2, "bench done");
                break;
        case CH_CALL:
                if (ch->port2 >= 0)
                        ipcf_dealloc(ch->port2, NULL);
                break;
        case CH_TCP:
                close(ch->rfd);
                break;
        case CH_NNG:
                /* NNG's worker threads do not survive fork(): shut the
                 * library down, so the next fork starts a clean one. */
                nng_close(ch->nng);
                nng_fini();
                break;
        case CH_ZMQ:
                zmq_close(ch->zsock);
                zmq_ctx_term(ch->zctx);
                break;
        case CH_RPC_TCP:
        case CH_RPC_UDP:
                if (ch->clnt)
                        clnt_destroy(ch->clnt);
                break;
        case CH_DBUS:
                dbus_connection_close(ch->dbus);
                dbus_connection_unref(ch->dbus);
                break;
        default:
                break; /* fds belong to the setup */
        }
}

/* Absolute CLOCK_REALTIME deadline BENCH_IO_TIMEOUT_MS from now (mq). */
static struct timespec mq_deadline(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += BENCH_IO_TIMEOUT_MS / 1000;
        return ts;
}

/* Send one message of len bytes. 0 or -errno (-EMSGSIZE: too large here).
 * Every mechanism copies: ipcf into its ring, the kernel into its buffers,
 * NNG and ZeroMQ into their own messages. */
int chan_send(chan *ch, const void *buf, size_t len) {
        ssize_t n;
        switch (ch->k->type) {
        case CH_IPCF:
                if (ch->tx)
                        return batch_send(ch->tx, ch->port, buf, len, BENCH_IO_TIMEOUT_MS);
                n = ipcf_write(ch->port, buf, len, BENCH_IO_TIMEOUT_MS);
                return n < 0 ? (int)n : 0;
        case CH_MBOX:
                n = ipcf_mbox_send(ch->port, buf, len, BENCH_IO_TIMEOUT_MS, NULL);
                return n < 0 ? (int)n : 0;
        case CH_SEQPACKET:
        case CH_UDP:
                n = send(ch->wfd, buf, len, MSG_NOSIGNAL);
                return n == (ssize_t)len ? 0 : n < 0 ? -errno : -EMSGSIZE;
        case CH_MQ: {
                struct timespec ts = mq_deadline();
                return mq_timedsend((mqd_t)ch->wfd, buf, len, 0, &ts) < 0 ? -errno : 0;
        }
        case CH_NNG:
                return nng_send(ch->nng, (void *)buf, len, 0) ? -EIO : 0;
        case CH_ZMQ:
                return zmq_send(ch->zsock, buf, len, 0) == (int)len ? 0 : -EIO;
        case CH_PIPE:
        case CH_STREAM:
        case CH_TCP:
                return bench_io_all(ch->wfd, (void *)buf, len, true);
        default:
                return -EOPNOTSUPP;
        }
}

int chan_flush(chan *ch) {
        return ch->tx ? batch_flush(ch->tx, ch->port, BENCH_IO_TIMEOUT_MS) : 0;
}

/* Receive one message; *ret_len its length (byte streams: exactly want).
 * UDP: -EAGAIN after 1 s without a datagram. */
int chan_recv(chan *ch, void *buf, size_t want, size_t *ret_len) {
        ssize_t n;
        *ret_len = want;
        switch (ch->k->type) {
        case CH_IPCF:
                if (ch->rx)
                        return batch_recv(ch->rx, ch->port, buf, ch->cap, ret_len,
                                          BENCH_IO_TIMEOUT_MS);
                n = ipcf_read(ch->port, buf, ch->cap, BENCH_IO_TIMEOUT_MS);
                break;
        case CH_MBOX:
                n = ipcf_mbox_recv(ch->port2, buf, ch->cap, BENCH_IO_TIMEOUT_MS, NULL);
                break;
        case CH_SEQPACKET:
        case CH_UDP:
                n = recv(ch->rfd, buf, ch->cap, 0);
                if (n < 0)
                        return errno == EWOULDBLOCK ? -EAGAIN : -errno;
                if (n == 0 && ch->k->type == CH_SEQPACKET)
                        return -EPIPE;
                break;
        case CH_MQ: {
                struct timespec ts = mq_deadline();
                n = mq_timedreceive((mqd_t)ch->rfd, buf, ch->cap, NULL, &ts);
                if (n < 0)
                        return -errno;
                break;
        }
        case CH_NNG: {
                size_t sz = ch->cap;
                if (nng_recv(ch->nng, buf, &sz, 0))
                        return -EIO;
                n = (ssize_t)sz;
                break;
        }
        case CH_ZMQ:
                n = zmq_recv(ch->zsock, buf, ch->cap, 0);
                if (n < 0)
                        return -EIO;
                break;
        case CH_PIPE:
        case CH_STREAM:
        case CH_TCP:
                return bench_io_all(ch->rfd, buf, want, false);
        default:
                return -EOPNOTSUPP;
        }
        if (n < 0)
                return (int)n;
        *ret_len = (size_t)n;
        return 0;
}

/* Side 0: one round trip of len bytes (a write and a read, or a call). */
int chan_call(chan *ch, void *buf, size_t len) {
        switch (ch->k->type) {
        case CH_CALL: {
                ssize_t n = ipcf_call(ch->name, buf, len, buf, ch->cap, BENCH_IO_TIMEOUT_MS, NULL);
                return n < 0 ? (int)n : n == (ssize_t)len ? 0 : -EBADMSG;
        }
        case CH_RPC_TCP:
        case CH_RPC_UDP: {
                struct timeval tv = { BENCH_IO_TIMEOUT_MS / 1000, 0 };
                if (len == 0)
                        return clnt_call(ch->clnt, NULLPROC, xdr_nothing, NULL, xdr_nothing,
                                         NULL, tv) == RPC_SUCCESS
                                       ? 0
                                       : -EIO;
                blob arg = { .blob_len = (u_int)len, .blob_val = buf };
                blob res = { 0, NULL };
                enum clnt_stat st = clnt_call(ch->clnt, ECHO, (xdrproc_t)xdr_blob, (char *)&arg,
                                              (xdrproc_t)xdr_blob, (char *)&res, tv);
                int r = st == RPC_SUCCESS && res.blob_len == len ? 0 : -EIO;
                xdr_free((xdrproc_t)xdr_blob, (char *)&res);
                return r;
        }
        case CH_DBUS: {
                DBusMessage *m = dbus_message_new_method_call(ch->name, DBUS_PATH, DBUS_IFACE,
                                                              "Echo");
                if (!m)
                        return -ENOMEM;
                const unsigned char *p = buf;
                if (len)
                        dbus_message_append_args(m, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, (int)len,
                                                 DBUS_TYPE_INVALID);
                DBusError err;
                dbus_error_init(&err);
                DBusMessage *rep = dbus_connection_send_with_reply_and_block(
                        ch->dbus, m, BENCH_IO_TIMEOUT_MS, &err);
                dbus_message_unref(m);
                if (!rep) {
                        dbus_error_free(&err);
                        return -EIO;
                }
                dbus_message_unref(rep);
                return 0;
        }
        default: {
                size_t got;
                int r = chan_send(ch, buf, len);
                if (r == 0)
                        r = chan_flush(ch);
                if (r == 0)
                        r = chan_recv(ch, buf, len, &got);
                return r < 0 ? r : got == len ? 0 : -EBADMSG;
        }
        }
}

/* Side 1: answer one round trip — echo what came, by each mechanism's own
 * means (ipcf_service_reply, an rpcgen dispatch, a D-Bus method return). */
int chan_serve(chan *ch, void *buf, size_t len) {
        switch (ch->k->type) {
        case CH_CALL: {
                ipcf_call_req req;
                ssize_t n = ipcf_service_next(ch->port2, buf, ch->cap, BENCH_IO_TIMEOUT_MS, &req);
                if (n < 0)
                        return (int)n;
                return ipcf_service_reply(ch->port2, &req, buf, (size_t)n, BENCH_IO_TIMEOUT_MS);
        }
        case CH_RPC_TCP:
        case CH_RPC_UDP: {
                /* poll the transports the library registered, and let it
                 * read and dispatch, until our dispatcher counted a call
                 * (a TCP accept is an event that serves none) */
                uint64_t want = rpc_served + 1;
                uint64_t deadline = bench_now_ns() + BENCH_IO_TIMEOUT_MS * 1000000ull;
                while (rpc_served < want) {
                        int n = poll(svc_pollfd, (nfds_t)svc_max_pollfd, BENCH_IO_TIMEOUT_MS);
                        if (n < 0 && errno != EINTR)
                                return -errno;
                        if (n > 0)
                                svc_getreq_poll(svc_pollfd, n);
                        if (bench_now_ns() > deadline)
                                return -ETIMEDOUT;
                }
                return 0;
        }
        case CH_DBUS: {
                /* take what libdbus already read first, then read more;
                 * signals from the bus (NameAcquired) are skipped */
                uint64_t deadline = bench_now_ns() + BENCH_IO_TIMEOUT_MS * 1000000ull;
                for (;;) {
                        DBusMessage *m = dbus_connection_pop_message(ch->dbus);
                        if (!m) {
                                if (!dbus_connection_read_write(ch->dbus, 100))
                                        return -EPIPE;
                                if (bench_now_ns() > deadline)
                                        return -ETIMEDOUT;
                                continue;
                        }
                        if (!dbus_message_is_method_call(m, DBUS_IFACE, "Echo")) {
                                dbus_message_unref(m);
                                continue;
                        }
                        DBusMessage *rep = dbus_message_new_method_return(m);
                        unsigned char *p = NULL;
                        int n = 0;
                        DBusError err;
                        dbus_error_init(&err);
                        if (dbus_message_get_args(m, &err, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p, &n,
                                                  DBUS_TYPE_INVALID) &&
                            n > 0)
                                dbus_message_append_args(rep, DBUS_TYPE_ARRAY, DBUS_TYPE_BYTE, &p,
                                                         n, DBUS_TYPE_INVALID);
                        dbus_error_free(&err);
                        dbus_connection_send(ch->dbus, rep, NULL);
                        dbus_connection_flush(ch->dbus);
                        dbus_message_unref(rep);
                        dbus_message_unref(m);
                        return 0;
                }
        }
        default: {
                size_t got;
                int r = chan_recv(ch, buf, len, &got);
                if (r == 0)
                        r = chan_send(ch, buf, got);
                if (r == 0)
                        r = chan_flush(ch);
                return r;
        }
        }
}
