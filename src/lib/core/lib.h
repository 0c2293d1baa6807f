/*
 * lib.h — internals of libipcf shared by its files (never installed).
 *
 * Objects:
 *   conn   the process's one control connection to ipcfd (conn.c): requests
 *          are strictly request/reply under a mutex; nothing asynchronous ever
 *          arrives on it (asynchronous events use their own sockets/eventfds).
 *   handle a slot of the handle table (handles.c) holding a port or a reg,
 *          reference-counted so a handle closed by one thread while another
 *          is inside a call on it stays valid until that call returns.
 *   port   one end of a flow (port.c, io.c, wait.c).
 *   reg    one registration of a name (reg.c).
 */
#pragma once

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "lib/core/lock.h"
#include "ipcf.h"

/* ---- control connection (conn.c) ---------------------------------------- */

/* A reply as received: the buffer the message lives in, the parsed view, and
 * the fds that came with it (owned by the holder; conn_reply_done closes the
 * ones not taken, i.e. not set to -1). */
typedef struct conn_reply {
        uint8_t buf[CTL_MSG_MAX];
        ctl_msg msg;
        int fds[CTL_FDS_MAX];
        unsigned n_fds;
        ipcf_reason reason;      /* REASON/END_CODE of a CTL_ERROR reply */
} conn_reply;

/* Send req (with fds, kept by the caller) and wait for its reply. Returns 0
 * with *rep filled for CTL_OK/CTL_FLOW; -errno of a CTL_ERROR (rep->reason
 * filled, rep still to be released); -EHOSTDOWN if the daemon is unreachable
 * or died. Always call conn_reply_done(rep) afterwards. */
int conn_request(ctl_builder *req, const int *fds, unsigned n_fds, conn_reply *rep);
void conn_reply_done(conn_reply *rep);
/* Receive one message, without waiting, on a socket of its own (an
 * allocation's reply socket, a registration socket, an exported port) into
 * rep (on the heap: it is 64 KiB). Returns 0 with rep->msg parsed and its fds
 * in rep->fds, -EAGAIN if none waits, -EHOSTDOWN at end of stream, -EPROTO if
 * malformed, or the receive's -errno. Always conn_reply_done(rep) afterwards:
 * it closes the fds not taken (set to -1). */
int conn_recv_own(int sock, conn_reply *rep);
/* conn_recv_own, waiting up to timeout_ms for a message: also -EAGAIN
 * (timeout 0) and -ETIMEDOUT. The received fds are closed at once: it is for
 * sockets whose messages carry none (requests, notifications). */
int conn_recv_own_wait(int sock, conn_reply *rep, int timeout_ms);
/* Parse ERRNO/REASON/END_CODE of an error message into rep. Returns -errno. */
int conn_error_of(const ctl_msg *m, ipcf_reason *ret_reason);
/* Next request sequence number. */
uint32_t conn_next_seq(void);

/* A request and its reply on the heap (64 KiB each: never on a thread's stack). */
typedef struct conn_call {
        ctl_builder req;
        conn_reply rep;
} conn_call;

/* Allocate a call and begin a request of type. NULL if out of memory. */
conn_call *conn_call_new(uint16_t type);
/* Run it: conn_request(&c->req, fds, n_fds, &c->rep). */
int conn_call_run(conn_call *c, const int *fds, unsigned n_fds);
/* Close the reply's fds not taken (set to -1) and free. Accepts NULL. */
void conn_call_free(conn_call *c);

/* ---- handle table (handles.c) ------------------------------------------- */

enum handle_kind { HANDLE_PORT = 1, HANDLE_REG = 2, HANDLE_GROUP = 3, HANDLE_SERVICE = 4, HANDLE_DGRAM = 5 };

struct port;
struct reg;
struct group;
struct service;
struct dgram_ep;

/* Reserve a slot for a new object of kind: returns its zeroed memory (a port
 * or a reg) and the number in *ret_h, or NULL (out of handles/memory). Then
 * initialise it and handle_publish() it, or handle_abort() it. */
void *handle_alloc(enum handle_kind kind, int *ret_h);
void handle_publish(void *obj);
void handle_abort(void *obj);
/* Look up handle h of a kind and take a reference, or NULL (-EBADF). */
struct port *handle_get_port(int h);
struct reg *handle_get_reg(int h);
struct group *handle_get_group(int h);
struct service *handle_get_service(int h);
struct dgram_ep *handle_get_dgram(int h);
/* Take one more reference to an object the caller already holds one to. */
void handle_ref(void *obj);
/* Drop a reference; the last one of a closed handle destroys the object
 * (port_destroy / reg_destroy) and frees the number. */
void handle_put(void *obj);
/* Close h: later lookups fail. Returns the object with a reference the
 * caller must put, or NULL if h is not a live handle of that kind. */
void *handle_close(int h, enum handle_kind kind);

/* ---- ports (port.c, io.c, wait.c) --------------------------------------- */

struct cached_msg {
        struct cached_msg *next;
        size_t len;
        uint8_t data[];
};

typedef struct port {
        uint64_t flow_id;
        int side;                       /* 0 allocator, 1 acceptor */
        ipcf_qos qos;
        flow_layout layout;
        void *mem;
        struct flow_hdr *hdr;
        struct flow_end *my_end, *peer_end;
        struct flow_run *my_run, *peer_run;
        ring_prod prod;                 /* my outgoing ring (index side) */
        ring_cons cons;                 /* my incoming ring (index 1 - side) */
        int ear_rx, ear_tx;             /* mine (common/wake.h): readable = data / room */
        int bell_rx, bell_tx;           /* to ring my own ears (poll mode, kicks, the end) */
        int peer_bell_rx, peer_bell_tx; /* to ring the peer's */
        int peer_pidfd;                 /* readable when the peer is gone (its pidfd, or a
                                         * pipe's liveness socket); -1 if none */
        int memfd;                      /* pipes only (to export them); else -1 */
        ipcf_peer_info peer;

        plock wlock, rlock;             /* writers serialised; readers serialised (lock.h) */
        bool poll_rx, poll_tx;          /* ipcf_fd / ipcf_fd_send were called */
        bool rx_unset, tx_unset;        /* poll mode: our ear may be unreadable */
        _Atomic bool catch_up;          /* the last sleep was short: spin longer once (wait.c) */
        _Atomic bool closed;            /* this side deallocated */
        _Atomic bool broken;            /* the peer broke the protocol */
        _Atomic bool peer_gone;         /* the peer process exited (pidfd) */
        _Atomic uint32_t kick;          /* bumped to make a waiting reader return (port_kick) */

        /* FULL_CACHE: messages kept in our memory, oldest first (under wlock) */
        struct cached_msg *cache_head, *cache_tail;
        _Atomic unsigned cache_n;
        /* zero-copy: the thread holding wlock (reserve) / rlock (peek) across calls */
        pthread_t reserver, peeker;
        bool reserving, peeking;
} port;

/* What a port is made from: one side of a flow (the FLOW message's
 * contents, or a flow made in this process). */
typedef struct port_desc {
        uint64_t flow_id;               /* 0: a flow the daemon never knew (a pipe) */
        int side;                       /* 0 or 1 */
        ipcf_qos qos;                   /* as granted */
        uint64_t shm_size;              /* the region's size, as the maker says */
        ipcf_peer_info peer;
        int fds[FLOW_SIDE_FDS];         /* FLOW_FD order (common/flowmem.h) */
} port_desc;

/* Make a port from d; its fds are taken on success (set to -1), left to the
 * caller on failure. Returns its handle (port-id) or -errno (-EPROTO: d does
 * not describe a usable flow). */
int port_open(port_desc *d);
/* port_open() from a FLOW message and its fds. */
int port_open_from_flow(const ctl_msg *m, int fds[FLOW_SIDE_FDS]);
/* Make side `side` of a flow made in this process by flow_mem_make() (its
 * descriptors are duplicated; m keeps its own). peer: the pid the port takes
 * for its peer (0: none). */
int port_open_local(const ipcf_qos *qos, int side, pid_t peer, const flow_mem *m);
/* A pidfd (close-on-exec) of the peer process pid, or -1 (pid <= 0, or gone). */
int port_pidfd_open(pid_t pid);
/* Release what a port holds (the last handle_put calls it). */
void port_destroy(port *p);

/* How the flow ended as seen from here: 0 while it is live (or data remains to
 * be read, for readers), else -EPIPE, -ECONNRESET or -EPROTO. */
int port_end_error(port *p);

/* wait.c: is the peer worth spinning for (see wait.c)? */
bool port_peer_spinnable(port *p, unsigned my_cpu);
/* wait.c: wake-ups. */
void port_notify_data(port *p);    /* after a commit: ring the reader if it asked */
void port_notify_space(port *p);   /* after a consume: ring the writer if it asked */
/* Wait until ring_ready (rx), the flow ends, or the port is kicked (its kick
 * count differs from kick_seen), up to deadline (UINT64_MAX: never). Returns
 * 0, -EAGAIN (timeout 0), -ETIMEDOUT. */
int port_wait_rx(port *p, uint64_t deadline, bool timeout_zero, uint32_t kick_seen);
/* Make a thread waiting to read p return (-EAGAIN from port_read_with). */
void port_kick(port *p);
/* Wait until a record of len fits (or the flow ends). Same returns. */
int port_wait_tx(port *p, size_t len, uint64_t deadline, bool timeout_zero);
/* Wait until the consumer passed pos (rendezvous). Same returns. */
int port_wait_passed(port *p, uint64_t pos, uint64_t deadline);
/* Poll mode: keep the descriptors' readiness exact after a read / a write. */
void port_rearm_rx(port *p);
void port_rearm_tx(port *p);

/* io.c: move cached messages into the ring without waiting (under wlock). */
int port_flush_cache_locked(port *p);
/* io.c: write one message made of a then b (b may be NULL), MESSAGE mode. */
ssize_t port_write2(port *p, const void *a, size_t al, const void *b, size_t bl, int timeout_ms);
/* io.c: wait for the next message and call fn(arg, data, len) under the read
 * lock (data is in shared memory: copy what you keep); the message is consumed
 * if fn returns >= 0, kept otherwise. Returns fn's result or the wait's error. */
typedef ssize_t (*port_msg_fn)(void *arg, const void *data, size_t len);
ssize_t port_read_with(port *p, int timeout_ms, port_msg_fn fn, void *arg);

/* ---- registrations (reg.c) ----------------------------------------------- */

typedef struct reg {
        uint64_t reg_id;
        int sock;                        /* the daemon sends REQUESTs here */
        char name[IPCF_NAME_MAX + 1];
} reg;

void reg_destroy(reg *r);
/* ipcf_register with internal flags (CTL_REG_AUTO | role << CTL_REG_ROLE_SHIFT). */
int reg_register(const char *name, const ipcf_reg_opts *opts, uint32_t internal_flags);
/* An auto-accepting registration: take one FLOW the daemon sent on its socket
 * and make its port. -EAGAIN if none waits, -EHOSTDOWN if the daemon is gone. */
int reg_take_flow(int h);

/* ---- allocation (alloc.c) ------------------------------------------------- */

/* ipcf_alloc for a channel of the library's own models: role (enum
 * ctl_role) travels as the ALLOC's ROLE attribute. Only the model code
 * (call.c, dgram.c, modelio.c) passes a role other than CTL_ROLE_FLOW;
 * ipcf_alloc() is alloc_role(..., CTL_ROLE_FLOW, ...). */
int alloc_role(const char *name, const ipcf_qos *qos, unsigned role, int timeout_ms,
               ipcf_reason *ret_reason);

/* ---- shared-memory groups (group.c, bbuf.c) ------------------------------ */

struct grpshm_ctl;

/* A member's view of a group. The mapping (data, size) changes only under
 * maplock held for writing (remap); accesses hold it for reading. */
typedef struct group {
        uint64_t group_id, member_id;
        char name[IPCF_NAME_MAX + 1];
        int memfd, efd;                  /* the group's memory; our notice eventfd */
        struct grpshm_ctl *ctl;          /* mapping of the control page */
        pthread_rwlock_t maplock;
        uint8_t *resv;                   /* guard page, data, guard page */
        size_t resv_len;
        uint8_t *pin_resv;               /* the view ipcf_group_ptr handed out, */
        size_t pin_len;                  /* kept until retired (group.c: PINNING) */
        _Atomic bool closed;             /* ipcf_group_exit ran: waiters give up */
        uint8_t *data;
        uint64_t size;                   /* bytes mapped at data */
        uint64_t gen;                    /* the generation the mapping reflects */
        /* bbuf.c: the other side's counter as last seen, per direction (a
         * bound that only grows: read again only when it is not enough).
         * Used under the buffer's own producer / consumer lock. */
        struct { uint64_t off, epoch, val; } bb_tail_seen, bb_head_seen;
} group;

void group_destroy(group *g);
/* Resolve [off, off + len) of g to an address, remapping first if the group
 * changed. On success maplock is held for reading: group_access_end(). Returns
 * 0, -ERANGE, -EIDRM. */
int group_access(group *g, uint64_t off, uint64_t len, uint8_t **ret_ptr);
void group_access_end(group *g);

/* misc.c */
int lib_check_timeout(int timeout_ms);

/* ---- inboxes (inbox.c): one input queue over many flows ------------------ */

struct inbox_chan {
        int ph;         /* the channel's port-id */
        port *p;        /* with a reference held while it is in the set */
};

typedef struct inbox {
        int reg_h;                 /* the registration of its name, or -1 */
        uint8_t role;              /* enum ctl_role of the channels it accepts */
        int epfd;                  /* the registration socket + every channel's rx ear */
        int wake;                  /* eventfd (private to this process): a channel was
                                    * added while takers slept */
        pthread_mutex_t lock;      /* guards the set; let go while asleep */
        struct inbox_chan *chans;
        unsigned n, cap, next;     /* next: where the round robin resumes */
        unsigned sleepers;         /* takers asleep in epoll_wait */
        bool reg_dead;             /* the daemon hung up the registration socket */
        bool poll_mode;            /* its descriptor was asked for */
} inbox;

/* Set up b; with a name, register it and accept channels of role. */
int inbox_init(inbox *b, const char *name, const ipcf_reg_opts *opts, uint8_t role);
void inbox_deinit(inbox *b);
/* Add a channel we allocated ourselves (takes b->lock briefly). */
int inbox_add(inbox *b, int ph);
/* End every channel with why and unregister the name. */
void inbox_close_all(inbox *b, const char *why);
/* Take the next message from any channel: fn(ctx, data, len) as in
 * port_read_with; *ret_ph says which channel. Waits up to timeout_ms. */
ssize_t inbox_take(inbox *b, port_msg_fn fn, void *ctx, int *ret_ph, int timeout_ms);
/* The inbox's pollable descriptor (switches its channels to poll mode). */
int inbox_fd(inbox *b);

/* ---- services (service.c; the caller's side is call.c) ------------------- */

typedef struct service {
        inbox box;
} service;

void service_destroy(service *s);
/* ipcf_fd() of a service or datagram endpoint: its inbox's descriptor. */
int service_fd(int h);

/* ---- datagram endpoints (dgram.c) ---------------------------------------- */

struct dgram_out {
        char name[IPCF_NAME_MAX + 1];  /* the destination */
        int ph;                        /* our channel to it (also in the inbox) */
        port *p;                       /* with a reference held */
};

typedef struct dgram_ep {
        inbox box;                     /* channels to us, and ours (for answers) */
        pthread_mutex_t out_lock;      /* guards outs */
        struct dgram_out *outs;
        unsigned n_outs, cap_outs;
        _Atomic uint64_t drops;
} dgram_ep;

void dgram_destroy(dgram_ep *e);
