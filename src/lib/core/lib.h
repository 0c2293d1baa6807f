/*
 * lib.h — the core of libipcf: what its models (lib/models/) and groups
 * (lib/groups/) build on (never installed).
 *
 * Objects:
 *   conn   the process's one control connection to ipcfd (conn.c): requests
 *          are strictly request/reply under a mutex; nothing asynchronous ever
 *          arrives on it (asynchronous events use their own sockets/eventfds).
 *   handle a slot of the handle table (handles.c) holding an object of some
 *          kind (a handle_kind: its ops), reference-counted so a handle
 *          closed by one thread while another is inside a call on it stays
 *          valid until that call returns.
 *   port   one end of a flow (port.c, io.c, wait.c).
 *   reg    one registration of a name (reg.c).
 *
 * Rule: the core calls nothing outside lib/core/ and names no kind but its
 * own (ports, registrations); models and groups call the core through this
 * header and add their kinds beside it (docs/ARCHITECTURE.md, "The library's
 * seams").
 */
#pragma once

#include <errno.h>
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
 * or died; -ETIMEDOUT if the reply (or the connection, another thread's
 * request holding it) did not come within the request bound
 * (IPCF_REQUEST_TIMEOUT_MS), the connection kept. Always call
 * conn_reply_done(rep) afterwards. */
int conn_request(ctl_builder *req, const int *fds, unsigned n_fds, conn_reply *rep);
/* conn_request for a call with a timeout: -ETIMEDOUT also once deadline (of
 * now_ns()) passes first (UINT64_MAX: none but the request bound). */
int conn_request_until(ctl_builder *req, const int *fds, unsigned n_fds, conn_reply *rep, uint64_t deadline);
/* The request bound from now: the deadline conn_request waits by. */
uint64_t conn_bound_deadline(void);
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

/* How long a started daemon has to serve. */
#define AUTOSTART_TIMEOUT_MS 5000
/* autostart.c: start a daemon for runtime dir dir, detached, and call
 * try_connect until it returns 0 or deadline passes — or, at once, once the
 * daemon exited and no other daemon holds dir's lock. 0 (try_connect
 * succeeded), -EACCES (dir not ours to use), -ENOPKG (no daemon program),
 * -EHOSTDOWN (it did not serve), another -errno. */
int autostart_run(const char *dir, uint64_t deadline, int (*try_connect)(void));

/* A request and its reply on the heap (64 KiB each: never on a thread's stack). */
typedef struct conn_call {
        ctl_builder req;
        conn_reply rep;
} conn_call;

/* Allocate a call and begin a request of type. NULL if out of memory. */
conn_call *conn_call_new(uint16_t type);
/* Run it: conn_request(&c->req, fds, n_fds, &c->rep). */
int conn_call_run(conn_call *c, const int *fds, unsigned n_fds);
/* Run it by a deadline: conn_request_until. */
int conn_call_run_until(conn_call *c, const int *fds, unsigned n_fds, uint64_t deadline);
/* Close the reply's fds not taken (set to -1) and free. Accepts NULL. */
void conn_call_free(conn_call *c);
/* A request of type whose reply carries nothing to keep, with NAME = name
 * (unless NULL; a bad name is -EINVAL, nothing sent) and one attribute attr
 * of len bytes at val (unless val is NULL). Returns 0 or -errno. */
int conn_tell(uint16_t type, const char *name, uint16_t attr, const void *val, size_t len);
/* A paged listing (LIST_SKIP, LIST_MORE: core/listpage.h on the daemon's
 * side): requests of type with LIST_SKIP = entries received so far; each
 * reply goes to page(ctx, reply, &entries it held), which returns 0, 1 to
 * stop asking, or -errno; until a reply has no LIST_MORE or no entry.
 * Returns 0 or the first -errno. */
int conn_pages(uint16_t type, int (*page)(void *ctx, const ctl_msg *reply, uint32_t *ret_entries), void *ctx);
/* conn_tell with just a u64 attribute (an id). */
int conn_tell_u64(uint16_t type, uint16_t attr, uint64_t value);

/* ---- handle table (handles.c) ------------------------------------------- */

/*
 * A handle kind: what the table calls for objects of that kind. A kind's
 * file defines one (const, static storage) and names it when it allocates and
 * looks up handles; the table and the calls every handle answers (verbs.c:
 * ipcf_dealloc, ipcf_detach, ipcf_fd) go through it and know no kind. A new
 * kind is a new file with its handle_kind; nothing central changes.
 */
typedef struct handle_kind {
        const char *name;       /* "port", "registration", ... */
        /* ipcf_dealloc(h, reason): end what the handle names for everyone
         * else (the peer, the daemon), after the number was closed and
         * before the caller's reference is dropped. NULL: nothing to tell.
         * reason may be NULL (then the kind's own default). */
        void (*end)(void *obj, const char *reason);
        /* ipcf_fd(h): the descriptor to poll, or -errno. NULL: -EBADF. */
        int (*fd)(void *obj);
        /* The last reference is gone: release what the object holds in this
         * process (mappings, descriptors, memory), telling no one. Also what
         * ipcf_detach amounts to. NULL: nothing to release. */
        void (*destroy)(void *obj);
        /* ipcf_detach(h), after the number was closed and before the
         * caller's reference is dropped: 0, or an error ipcf_detach returns
         * (the handle is closed all the same). NULL: nothing to do. */
        int (*detach)(void *obj);
} handle_kind;

/* The largest object a slot holds inline (a bigger kind keeps its body on
 * the heap and a pointer in the slot). */
#define HANDLE_OBJ_MAX 768

/* Reserve a slot for a new object of kind (size bytes, zeroed): returns its
 * memory and the number in *ret_h, or NULL (out of handles or memory, or size
 * over HANDLE_OBJ_MAX). Then initialise it and handle_publish() it, or
 * handle_abort() it. */
void *handle_alloc(const handle_kind *kind, size_t size, int *ret_h);
void handle_publish(void *obj);
void handle_abort(void *obj);
/* Look up handle h of kind (NULL: any kind) and take a reference, or NULL
 * (the caller's -EBADF). Lock-free. */
void *handle_get(int h, const handle_kind *kind);
/* The kind of an object the caller holds a reference to. */
const handle_kind *handle_kind_of(void *obj);
/* Take one more reference to an object the caller already holds one to. */
void handle_ref(void *obj);
/* Drop a reference; the last one of a closed handle calls its kind's destroy
 * and frees the number. */
void handle_put(void *obj);
/* Close h (of kind; NULL: any): later lookups fail. Returns the object with a
 * reference the caller must put, or NULL if h is not a live handle of kind. */
void *handle_close(int h, const handle_kind *kind);
/* A token naming obj (which the caller holds a reference to) for the life of
 * the process, unlike its number, which is reused: what the public structs
 * carry as opaque values (ipcf_call_req.token, ipcf_dgram_src.token). */
uint64_t handle_token(void *obj);
/* The live object of kind a token names, with a reference; else NULL and
 * *ret_err: -EINVAL not a token this process made (forged, garbage),
 * -ESTALE the object is gone, -EBADF a live object of another kind. */
void *handle_get_token(uint64_t token, const handle_kind *kind, int *ret_err);
/* Close the object of kind token names, as handle_close() its number, if it
 * is still live (never whatever holds its number now): it, with a reference
 * the caller must put, or NULL. */
void *handle_close_token(uint64_t token, const handle_kind *kind);
/* How many times this process was the child of a fork() (0 in a process
 * that was not): an object made under another value was inherited. */
unsigned handle_fork_gen(void);

/* ---- ports (port.c, io.c, wait.c) --------------------------------------- */

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
        char peer_host[IPCF_HOST_MAX + 1]; /* the peer's host as the daemon said ("": not said) */
        bool peer_remote;               /* the peer is on another host (a relay ends for it) */
        /* The peer rings nobody when it dies (the daemon, broker of a mailbox
         * or group; a pipe's other end, whose death only its liveness socket
         * shows): ipcf_fd / ipcf_fd_send give an epoll set of the ear and
         * peer_pidfd (ep_rx, ep_tx: made on first use, else -1), and a
         * readiness set watches peer_pidfd too. */
        bool fd_with_peer;
        int ep_rx, ep_tx;

        plock wlock, rlock;             /* writers serialised; readers serialised (lock.h) */
        bool poll_rx, poll_tx;          /* ipcf_fd / ipcf_fd_send were called */
        bool rx_unset, tx_unset;        /* poll mode: our ear may be unreadable */
        _Atomic bool catch_up;          /* the last sleep was short: spin longer once (wait.c) */
        _Atomic uint64_t head_at_wait;  /* our ring's head at our last wait (wait.c
                                         * answer_due) */
        uint32_t spin_yield_mark;       /* nonzero: a spin gives the CPU away between looks
                                         * while the peer's run slot shows this value
                                         * (wait.c; set before first use) */
        _Atomic uint32_t yield_skip;    /* waits left that do not yield (a yield took a
                                         * timeslice: wait.c yield_spin) */
        _Atomic bool closed;            /* this side deallocated */
        _Atomic bool broken;            /* the peer broke the protocol */
        _Atomic bool peer_gone;         /* the peer process exited (pidfd), or hung up */
        _Atomic uint32_t peer_code;     /* the peer's end code once seen (latched; 0: live) */
        _Atomic uint32_t kick;          /* bumped to make a waiting reader return (port_kick) */
        _Atomic(const void *) owner;    /* what holds it as one of its channels (an inbox), or
                                         * NULL: checked before answering on it */
        void *extra;                    /* a block what holds it keeps with it (a service's
                                         * account of the requests taken on it, inbox.c),
                                         * or NULL: freed with the port */
        _Atomic bool rx_kept;           /* this process keeps bytes a read of the handle
                                         * gives before the ring's (a stream mailbox's rest
                                         * of a frame, modelio.c): readable for a set too */
        _Atomic(void *) set;            /* the readiness set it is in (set.c), or NULL: then
                                         * the set owns the rx want word (changed under rlock) */
        void *set_member;               /* its entry there (the set's, under the set's lock) */

        /* FULL_CACHE: where the last messages ended (ring_prod_cache) */
        uint64_t *cache_recent;
        /* zero-copy: the thread holding wlock (reserve) / rlock (peek) across calls */
        pthread_t reserver, peeker;
        bool reserving, peeking;
} port;

/* The kind of ports (port.c): ipcf_dealloc ends the flow, ipcf_fd polls it. */
extern const handle_kind port_kind;

/* ipcf_dealloc of port h, waiting for the daemon's answer (bookkeeping: the
 * peer learns from shared memory) only until deadline (0: not at all):
 * for the library's own ports that a call must let go within its time. */
int port_dealloc_by(int h, const char *reason, uint64_t deadline);
/* The same of the port token (handle_token) names, if it is still live:
 * for a port the library keeps, whose number the user may have closed and
 * reused meanwhile. */
int port_dealloc_token_by(uint64_t token, const char *reason, uint64_t deadline);

/* Look up port-id h with a reference (handle_put it), or NULL (-EBADF). */
static inline port *handle_get_port(int h) {
        return handle_get(h, &port_kind);
}

/* What a port is made from: one side of a flow (the FLOW message's
 * contents, or a flow made in this process). */
typedef struct port_desc {
        uint64_t flow_id;               /* 0: a flow the daemon never knew (a pipe) */
        int side;                       /* 0 or 1 */
        ipcf_qos qos;                   /* as granted */
        uint64_t shm_size;              /* the region's size, as the maker says */
        ipcf_peer_info peer;
        pid_t watch_pid;                /* whose death ends the peer (0: peer.pid); set
                                         * only for a peer on another host (its relay) */
        char peer_host[IPCF_HOST_MAX + 1]; /* "": not said (a pipe) */
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

/* port.c: latch code, the first non-zero end code read from the peer's end
 * record, and return the latched one; a code no honest writer uses breaks
 * the protocol (the port is broken, and IPCF_END_PROTOCOL is latched). */
uint32_t port_peer_end_latch(port *p, uint32_t code);

/* The end code the peer wrote (or the daemon for it), latched the first time
 * it is seen non-zero, so a peer cannot take its end back. */
static inline uint32_t port_peer_end_code(port *p) {
        uint32_t code = atomic_load_explicit(&p->peer_code, memory_order_acquire);
        if (code)
                return code;
        code = atomic_load_explicit(&p->peer_end->code, memory_order_acquire);
        return code ? port_peer_end_latch(p, code) : 0;
}

/* How the flow ended as seen from here: 0 while it is live (or data remains to
 * be read, for readers), else -EPIPE, -ECONNRESET or -EPROTO. On the data
 * path of every call: inline, and below everything that calls it. */
static inline int port_end_error(port *p) {
        uint32_t code = port_peer_end_code(p);
        if (atomic_load_explicit(&p->broken, memory_order_relaxed))
                return -EPROTO;
        if (atomic_load_explicit(&p->closed, memory_order_relaxed))
                return -EPIPE;
        if (code == IPCF_END_PEER_DIED)
                return -ECONNRESET;
        if (code != IPCF_END_NONE)
                return -EPIPE;
        if (atomic_load_explicit(&p->peer_gone, memory_order_acquire)) {
                /* The process exited without ending the flow: re-read the end
                 * record, which it may have written just before exiting. */
                code = port_peer_end_code(p);
                if (atomic_load_explicit(&p->broken, memory_order_relaxed))
                        return -EPROTO;
                return code == IPCF_END_NONE || code == IPCF_END_PEER_DIED ? -ECONNRESET : -EPIPE;
        }
        return 0;
}

/* wait.c: has the peer's process exited (its pidfd, one poll, never
 * waiting)? Then p reads as ended (peer_gone). For callers that must know
 * without waiting: a peer whose death nobody rings (the daemon, broker of a
 * mailbox; any peer once the daemon is gone). */
bool port_peer_exited(port *p);
/* wait.c: is the peer worth spinning for (see wait.c)? */
bool port_peer_spinnable(port *p, unsigned my_cpu);

/* A wait with an answer due shows it waits in its run slot (which
 * port_peer_spinnable reads) only after this many spin rounds (about 2 µs
 * here: a PAUSE of this 2-vCPU EPYC takes 26-28 ns): long enough for a peer
 * that answers at once, short enough that two sides waiting for each other
 * with nothing in between see it at their first periodic look (every 64
 * rounds) and stop spinning. wait.c's spin and the inbox's (inbox.c) both. */
#define ANNOUNCE_ROUNDS 64u
/* wait.c: wake-ups. */
void port_notify_data(port *p);    /* after a commit: ring the reader if it asked */
void port_notify_space(port *p);   /* after a consume: ring the writer if it asked */
/* Wait until ring_ready (rx), the flow ends, or the port is kicked (its kick
 * count differs from kick_seen), up to deadline (UINT64_MAX: never). Returns
 * 0, -EAGAIN (timeout 0), -ETIMEDOUT. */
int port_wait_rx(port *p, uint64_t deadline, bool timeout_zero, uint32_t kick_seen);
/* Make a thread waiting to read p return (-EAGAIN from port_read_with). */
void port_kick(port *p);
/* A writer about to reserve len in a queue that looks full: spin (never
 * sleep, at most spin_us) while the reader works through it, until a batch
 * is free (ring_batches) or the reader pauses. Then reserve as usual. */
void port_wait_batch(port *p, size_t len, uint64_t deadline);
/* Wait until a record of len fits (or the flow ends). Same returns. */
int port_wait_tx(port *p, size_t len, uint64_t deadline, bool timeout_zero);
/* Wait until the consumer passed pos (rendezvous). Same returns. */
int port_wait_passed(port *p, uint64_t pos, uint64_t deadline);
/* FULL_CACHE: wait until no message is beyond the queue's capacity. Same
 * returns. */
int port_wait_uncached(port *p, uint64_t deadline, bool timeout_zero);
/* Poll mode: keep the descriptors' readiness exact after a read / a write. */
void port_rearm_rx(port *p);
void port_rearm_tx(port *p);
/* Readiness sets (set.c), on a port in one. port_rx_ready: would a read not
 * block (a message, the end, or bytes kept: rx_kept)? Takes rlock for a moment; for a port whose
 * rlock another thread holds (a blocked read, a peek), the lock-free hint
 * answers (a spurious report at worst; the blocked reader rings the ear when
 * it is done).
 * port_set_arm: the set stops watching p: the writer rings p's ear at its
 * next message, and p's peer sees this side asleep (no spinning for it). The
 * caller fences (seq_cst) after arming and re-checks port_rx_ready before it
 * sleeps. port_set_watch: the set watches p itself again (writers ring no
 * one) and runs on cpu. */
bool port_rx_ready(port *p);
/* port_rx_ready's hint, lock-free (ring_ready_hint): a poller's quick look. */
bool port_rx_hint(port *p);
void port_set_arm(port *p);
void port_set_watch(port *p, unsigned cpu);

/* io.c: write one message made of a then b (b may be NULL), MESSAGE mode. */
ssize_t port_write2(port *p, const void *a, size_t al, const void *b, size_t bl, int timeout_ms);
/* The same by a deadline the caller made (monotonic ns; 0: never wait, as
 * timeout 0; UINT64_MAX: for ever), so that a caller that already read the
 * clock does not read it again (call.c). */
ssize_t port_write2_by(port *p, const void *a, size_t al, const void *b, size_t bl, uint64_t deadline);
/* io.c: wait for the next message and call fn(arg, data, len) under the read
 * lock (data is in shared memory: copy what you keep); the message is consumed
 * if fn returns >= 0, kept otherwise. Returns fn's result or the wait's error. */
typedef ssize_t (*port_msg_fn)(void *arg, const void *data, size_t len);
ssize_t port_read_with(port *p, int timeout_ms, port_msg_fn fn, void *arg);
/* The same by a deadline (as port_write2_by). */
ssize_t port_read_with_by(port *p, uint64_t deadline, port_msg_fn fn, void *arg);

/* ---- registrations (reg.c) ----------------------------------------------- */

typedef struct reg {
        uint64_t reg_id;
        int sock;                        /* the daemon sends REQUESTs here */
        char name[IPCF_NAME_MAX + 1];
        _Atomic bool closed;             /* ipcf_dealloc ran: waits end with -EBADF */
} reg;

/* The kind of registrations (reg.c): ipcf_dealloc unregisters, ipcf_fd is the
 * socket requests arrive on. */
extern const handle_kind reg_kind;

/* ipcf_register with internal flags (CTL_REG_AUTO | role << CTL_REG_ROLE_SHIFT);
 * *ret_tok (if not NULL): its handle_token. The models keep a registration
 * they made by token, never by number: the user may detach the number (it is
 * reachable like any other) and be given it again for one of its own. */
int reg_register(const char *name, const ipcf_reg_opts *opts, uint32_t internal_flags,
                 uint64_t *ret_tok);
/* The socket of the registration tok names, or -EBADF if it is gone. */
int reg_sock(uint64_t tok);
/* An auto-accepting registration (by token): take one FLOW the daemon sent
 * on its socket and make its port. -EAGAIN if none waits, -EHOSTDOWN if the
 * daemon is gone, -EBADF if the registration is (detached by its number). */
int reg_take_flow(uint64_t tok);
/* Close the auto-accepting registration tok names for good (nothing if it is
 * gone): unregister, then end with why every flow the daemon accepted on its
 * behalf that is still queued on its socket, never taken (their peers see
 * -EPIPE and why at once). */
void reg_close_auto(uint64_t tok, const char *why);
/* Detach the registration tok names, if it is still there. */
void reg_detach(uint64_t tok);

/* ---- allocation (alloc.c) ------------------------------------------------- */

/* ipcf_alloc for a channel of the library's own models: role (enum
 * ctl_role) travels as the ALLOC's ROLE attribute. Only the model code
 * (call.c, dgram.c, modelio.c) passes a role other than CTL_ROLE_FLOW;
 * ipcf_alloc() is alloc_role(..., CTL_ROLE_FLOW, ...). */
int alloc_role(const char *name, const ipcf_qos *qos, unsigned role, int timeout_ms,
               ipcf_reason *ret_reason);

/* ---- misc ------------------------------------------------------------------ */

/* A caller's qos copied into *ret (NULL: the defaults), or -EINVAL if its
 * size is not this version's (every call taking a qos checks it). */
int lib_qos_or_default(const ipcf_qos *qos, ipcf_qos *ret);

/* Every call's timeout: -1, 0 or n > 0 (-EINVAL below -1). */
static inline int lib_check_timeout(int timeout_ms) {
        return timeout_ms < -1 ? -EINVAL : 0;
}
