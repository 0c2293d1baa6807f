/*
 * ipcf.h — the public interface of libipcf, the interprocess communication
 * facility.
 *
 * Applications reach each other by NAME, never by address (John Day's model):
 *
 *      int reg  = ipcf_register("printer", NULL);         // B becomes reachable
 *      int port = ipcf_alloc("printer", NULL, 5000, NULL); // A: Allocate(B, qos)
 *      int p2   = ipcf_accept(reg, 5000, NULL);           // B: its own port-id
 *      ipcf_write(port, "hello", 5, -1);                  // Write(port-id, buf)
 *      ipcf_read(p2, buf, sizeof(buf), -1);               // Read(port-id, buf)
 *      ipcf_dealloc(port, "done");                        // Deallocate(port-id, reason)
 *
 * The facility (the daemon ipcfd of this host) resolves the name, checks access,
 * may start the target on demand, and lets the target accept or refuse. Data
 * then moves through shared memory between the two processes; the daemon is not
 * on the data path.
 *
 * CONVENTIONS (they hold for every function below)
 *  - Handles (port-ids, registrations, services, datagram endpoints, group
 *    handles) are small non-negative ints, local to the process, numbered
 *    like file descriptors (the lowest free number first, reused after a
 *    close). They are not file descriptors: use ipcf_fd() to poll. Every
 *    handle, whatever made it, is closed by ipcf_dealloc() (which ends what it
 *    names: the flow, the registration, the membership...) or ipcf_detach()
 *    (which forgets it in this process only).
 *  - Return: 0 or a non-negative result on success, a negative errno on failure.
 *    ipcf_strerror() names each error in the facility's terms. Errors are only
 *    ever return values (nothing like errno to fetch); the one thing kept
 *    for later is the reason the facility gave for this thread's last
 *    allocation (ipcf_last_reason, since 1.9), for the calls that allocate
 *    without a reason parameter. The library never prints, never exits,
 *    never raises a signal (no SIGPIPE) and never changes process-wide
 *    settings. One signal comes of it: starting a daemon (no daemon serves
 *    the runtime dir, autostart on) forks a helper process that the library
 *    reaps itself, and its exit sends this process one SIGCHLD (ignored
 *    unless the program handles SIGCHLD).
 *  - Timeouts (timeout_ms): -1 waits for ever, 0 never waits, n > 0 waits at
 *    most n milliseconds — a call that allocates a flow or channel (ipcf_alloc,
 *    and ipcf_call, ipcf_dgram_send, the mailbox and multicast opens when
 *    they make one) at most n + 100 ms (see ipcf_alloc). Each outcome has its
 *    own error:
 *        -EAGAIN     timeout 0 and the call would have had to wait;
 *        -ETIMEDOUT  the n ms passed first.
 *    Signals never interrupt a wait (it resumes with the time left); -EINTR is
 *    never returned. A timeout below -1 is -EINVAL.
 *  - Errors common to every call on a handle: -EBADF (not a live handle of the
 *    right kind), -EINVAL (bad argument: a NULL where a pointer is required,
 *    a bad name, a bad size). Errors of every call that needs the daemon,
 *    one per cause (ipcf_error_cause() says more), each found without
 *    waiting for a daemon that cannot come:
 *        -EHOSTDOWN  the facility of this host is not running: no daemon and
 *                    autostart is off (IPCF_NO_AUTOSTART=1), or the runtime
 *                    dir cannot be made, or the daemon started for this call
 *                    exited without serving or did not serve within 5 s, or
 *                    it died (already established flows keep working);
 *        -ETIMEDOUT  the daemon did not answer in time: it is stopped
 *                    (SIGSTOP) or wedged (every call that needs the daemon;
 *                    the "Errors:" lists do not repeat it). Every request
 *                    to the daemon, including those of calls without a
 *                    timeout (ipcf_list, ipcf_register...), waits for its
 *                    reply — and for the process's connection, if another
 *                    thread's request holds it, or to be connected, if the
 *                    daemon's queue of connections is full — at most
 *                    IPCF_REQUEST_TIMEOUT_MS (default 30000 ms), a call
 *                    with a timeout at most its own time if that is
 *                    shorter; a listing of several pages, that long in
 *                    all (ipcf_dealloc, which tells the daemon last, waits
 *                    so too and succeeds). The connection, with every
 *                    registration and flow the process holds, stays: once
 *                    the daemon answers again the next call works. What
 *                    the late request asked may still be done when the
 *                    daemon resumes: a registration (or another handle)
 *                    made so is ended again when the process's next
 *                    request reads the late reply and closes its
 *                    descriptor;
 *        -ENOPKG     no daemon, and the daemon program to start was not
 *                    found (IPCF_DAEMON, else beside the program or in PATH);
 *        -EACCES     the runtime dir is not this user's: owned by another
 *                    uid, writable by group or others, not a directory (no
 *                    daemon is started there), or its socket is not ours;
 *        -EDQUOT, -EUSERS  the daemon refused the connection: its caps
 *                    (ipcf_connect() says which).
 *    A call that finds
 *    the daemon it talked to dead sends its request once more to a new one,
 *    started as on a first call unless IPCF_NO_AUTOSTART=1 (what the dead
 *    one held — registrations, flows to it — is gone with it). The list
 *    after "Errors:" in each comment names these too where they apply.
 *  - Parameters: inputs first, then timeout_ms, then the out-parameters,
 *    named ret_*, which may be NULL where said and are untouched on failure.
 *    A buffer the caller provides for data is (buf, cap), like read(2).
 *  - Structs passed in carry their size in a first field `size`: sizeof the
 *    struct of this header (ipcf_qos_init() sets it for an ipcf_qos; the
 *    option structs also take 0 for "this version"). Any other value is
 *    -EINVAL, so a struct from another version of this header is never
 *    misread.
 *  - Opaque fields (the `token` of a request, a datagram's source, a pending
 *    call) are made by the library and checked when they come back: a token
 *    the library did not make gives -EINVAL, one of another handle -EBADF,
 *    never another caller's channel. Copy them as they are; never make one.
 *  - Memory the library returns (listings) belongs to the caller, in one
 *    block: free it with ipcf_free().
 *  - Thread safety: every function may be called from any thread. Writes on one
 *    port are serialized with each other, and reads with each other; a reader and
 *    a writer of the same port run in parallel. That serialization is among the
 *    threads of one process: a port's writes (and its reads) must not run in two
 *    processes at once (see fork() below).
 *  - After fork() the child may keep using handles it inherited; its first
 *    call that needs the daemon opens its own connection. Each process closes
 *    the handles it does not use with ipcf_detach() (ipcf_dealloc() would end
 *    the flow for both). A port (a flow end, a pipe end) is written by one
 *    process at a time, and read by one: its queue is single-producer and
 *    single-consumer in shared memory, and a process that writes it after
 *    another did resumes where that one stopped — but two processes writing
 *    one end at once corrupt its queue (messages are lost, read twice or
 *    garbled, or the flow fails -EPROTO; the other side and the daemon are
 *    not harmed: the pipes section says what was measured). A service or
 *    datagram endpoint inherited across fork() is the exception: it may be
 *    served by every process (services, worker processes). Service calls
 *    need nothing either: each process calls on channels of its own (the
 *    child's first call to a service makes the child's; its copy of the
 *    parent's is let go, not ended), and a call started before fork() is
 *    the parent's (see ipcf_call). A process may close the numbers of its
 *    call channels (a loop detaching what it inherited): a port of its own
 *    that takes such a number is never written, read nor closed by the
 *    library, whose next call makes a new channel. For several writers give each its own flow or pipe, or use a
 *    mailbox (a named pipe: IPCF_MBOX_STREAM), which takes many. A handle
 *    that another thread of the parent was inside at the moment of fork()
 *    (blocked in ipcf_read(), say) keeps its descriptors and mapping in the
 *    child until the child exits, even once detached or deallocated there:
 *    its count of users was copied with that thread's use, and that thread
 *    does not exist in the child.
 *  - Descriptors: a port holds 7 file descriptors (6 ends of its wake-up
 *    socketpairs, and a pidfd of the peer so that its death is seen even
 *    without the daemon; a pipe end 8), a registration 1, a service or
 *    named datagram endpoint 6 plus its channels (its registration socket,
 *    an epoll, the two ends of the takers' wake-up socketpair and of its
 *    family's, which the processes fork() makes share; in a process fork()
 *    made, a pidfd of each process that serves channels it inherited; an
 *    endpoint without a name 5), a
 *    group handle 2, the process 1 for its connection to the daemon. All
 *    are close-on-exec.
 *
 * ENVIRONMENT
 *  IPCF_RUNTIME_DIR  the facility instance (its socket is <dir>/ipcfd.sock);
 *                    default $XDG_RUNTIME_DIR/ipcf, else /tmp/ipcf-<uid>.
 *  IPCF_NO_AUTOSTART if set to 1, never start a daemon (calls fail -EHOSTDOWN
 *                    when none runs).
 *  IPCF_DAEMON       the ipcfd program to start when none runs; default: ipcfd
 *                    beside the running program, else ipcfd in PATH.
 *  IPCF_REQUEST_TIMEOUT_MS  how long a request waits for the daemon's reply
 *                    before it fails -ETIMEDOUT (see above): 1..86400000 ms;
 *                    unset or any other value: 30000. Read at the first
 *                    call that needs the daemon.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define IPCF_API __attribute__((visibility("default")))
#else
#define IPCF_API
#endif

/* The version of this interface. MAJOR changes when a program written for the
 * previous one must change (1: one closing call for every handle, ret_* last,
 * opaque tokens, sizes checked, ipcf_free); MINOR when something is added. */
#define IPCF_VERSION_MAJOR 1
#define IPCF_VERSION_MINOR 10 /* 1: remote procedure calls (XDR streams, clients, servers);
                              * 2: other hosts (ipcf_hosts, flow hosts in ipcf_list);
                              * 3: the traffic monitor (ipcf_monitor_open, _next);
                              * 4: the directory's records (ipcf_dir_list);
                              * 5: ipcf_error_cause, -ENOPKG;
                              * 6: the daemon's datagrams to monitors (ipcf_monitor_read);
                              * 7: readiness sets (ipcf_set_new, _add, _del, _wait);
                              * 8: the maxima of mailbox and group options
                              *    (IPCF_MODEL_MAX_MSGS, _MAX_MSG_SIZE, IPCF_MBOX_MAX_BYTES);
                              *    this host's own attributes (ipcf_host_listing.attrs);
                              * 9: ipcf_last_reason;
                              * 10: batches of messages (ipcf_write_many, ipcf_read_many);
                              *     the directory's degraded and host_conflict flags
                              *     (ipcf_dir_health) */

/*
 * ipcf_version — the version of the library this program runs with, as
 * (MAJOR << 16) | MINOR; compare it with IPCF_VERSION_MAJOR and
 * IPCF_VERSION_MINOR, the header's version the program was built with.
 * Within one MAJOR (one SONAME, libipcf.so.MAJOR) a larger MINOR only adds
 * to the API. Never fails, needs no daemon.
 */
IPCF_API uint32_t ipcf_version(void);

/* A name: 1..IPCF_NAME_MAX bytes of printable ASCII without spaces. */
#define IPCF_NAME_MAX 127
/* A reason (refusal, deallocation): at most IPCF_REASON_MAX bytes, longer is cut. */
#define IPCF_REASON_MAX 127

/* ------------------------------------------------------------------------- */
/* IPC characteristics ("qos"), chosen at allocation                          */
/* ------------------------------------------------------------------------- */

/* How much a flow buffers in each direction (Silberschatz's three kinds). */
enum ipcf_capacity {
        /* n messages and/or n bytes; a full queue applies the full policy. Default. */
        IPCF_CAPACITY_BOUNDED = 0,
        /* Zero capacity, a rendezvous: ipcf_write returns only once the reader
         * has taken the message. If the write times out before that, the
         * message is withdrawn and never delivered. */
        IPCF_CAPACITY_ZERO = 1,
        /* The writer never waits: the queue grows in memory (pages are touched
         * only as the backlog grows, and given back as it shrinks) up to
         * max_bytes (raised as said there), a limit charged against the
         * user's quota in the daemon; past it a write fails with -ENOBUFS. */
        IPCF_CAPACITY_UNBOUNDED = 2,
};

/* How the byte stream is cut. */
enum ipcf_mode {
        IPCF_MODE_MESSAGE = 0, /* whole messages, boundaries kept. Default. */
        IPCF_MODE_STREAM = 1,  /* bytes; a read returns what is there, up to cap. */
};

/* What a write does when a bounded queue is full (Mach's options). */
enum ipcf_full {
        IPCF_FULL_BLOCK = 0, /* wait, up to the write's timeout. Default. */
        IPCF_FULL_FAIL = 1,  /* fail at once with -EAGAIN, whatever the timeout. */
        /* Accept the message anyway and deliver it later: up to cache_msgs
         * messages are cached beyond the queue's capacity (the flow's memory
         * has room for them); a cached message reaches the reader as soon as
         * the reader has taken what came before it — no further call of the
         * sender is needed, and it stays readable after ipcf_dealloc. When
         * the cache is full too, the write waits up to its timeout. MESSAGE
         * mode, BOUNDED capacity; otherwise it acts as BLOCK. */
        IPCF_FULL_CACHE = 2,
};

typedef struct ipcf_qos {
        uint32_t size;         /* sizeof(ipcf_qos), set by ipcf_qos_init(); any other
                                * value makes the call taking it fail -EINVAL */
        uint8_t capacity;      /* enum ipcf_capacity; default BOUNDED */
        uint8_t mode;          /* enum ipcf_mode; default MESSAGE */
        uint8_t full;          /* enum ipcf_full; default BLOCK */
        uint8_t reserved;      /* 0 (-EINVAL otherwise) */
        uint32_t max_msgs;     /* BOUNDED: at most this many queued messages, 0 = no count
                                * limit. Default 0. */
        uint64_t max_bytes;    /* BOUNDED: the most the queue holds per direction, each
                                * message with its 16-byte header (rounded down to 16
                                * bytes; default 1 MiB, at most 1 GiB): max_bytes 4096
                                * queues 51 messages of 64 bytes. A larger message still
                                * goes alone into an empty queue (MESSAGE mode; in STREAM
                                * mode a write is cut to what fits). UNBOUNDED: the memory
                                * limit per direction (default 64 MiB, at most 16 GiB),
                                * raised to hold two messages of max_msg_size with their
                                * headers, then rounded up to a power of two (max_bytes
                                * 4096 with the default max_msg_size queues 1 MiB; the
                                * user's quota is charged what the queue can hold).
                                * ipcf_qos_get() gives it as asked (0: the default).
                                * ZERO: ignored. 0 (what ipcf_qos_init sets) means the
                                * default of the capacity. */
        uint32_t max_msg_size; /* the largest message (default 256 KiB, at most 64 MiB). A
                                * larger write fails with -EMSGSIZE and writes nothing. In
                                * STREAM mode, the largest piece moved at once. */
        uint32_t spin_us;      /* a waiting side spins this long before it sleeps, and only
                                * while the peer is running on another CPU: the latency/CPU
                                * trade-off. 0 never spins. Default 10, at most 100000.
                                * ("Running": not asleep in an ipcf wait; a peer blocked
                                * in some other system call still looks running, so it
                                * costs at most spin_us per wait.) After a sleep that its peer ended
                                * within 200 us, a wait spins once up to 5 x spin_us, so
                                * that an exchange that fell asleep gets back into step. */
        uint32_t cache_msgs;   /* FULL_CACHE: how many messages may be cached beyond the
                                * queue. Default 1 (as in Mach), at most 65536. Each
                                * direction's ring grows by cache_msgs records of
                                * max_msg_size (each with a 16-byte header), then is
                                * rounded up to a power of two. Those records, headers
                                * included, take at most 1 GiB, else the qos is -EINVAL
                                * (4096 of 256 KiB are over it). */
        uint32_t reserved2;    /* 0 (-EINVAL otherwise) */
} ipcf_qos;

/*
 * ipcf_qos_init — fill qos with the defaults above and its size; start from
 * it and change the fields wanted. Does nothing if qos is NULL. Never fails.
 */
IPCF_API void ipcf_qos_init(ipcf_qos *qos);

/* ------------------------------------------------------------------------- */
/* Who is at the other end                                                    */
/* ------------------------------------------------------------------------- */

/* Identity stamped by the facility from kernel credentials (SO_PEERCRED),
 * never taken from the peer's word. */
typedef struct ipcf_peer_info {
        /* Allocating side: the name it allocated the flow to. Accepting side:
         * the name of the requester's program (basename of /proc/<pid>/exe). */
        char name[IPCF_NAME_MAX + 1];
        pid_t pid;
        uid_t uid;
        gid_t gid;
} ipcf_peer_info;

/* Why a flow ended, or why an allocation was refused. */
enum ipcf_end {
        IPCF_END_NONE = 0,       /* the flow is live */
        IPCF_END_DEALLOC = 1,    /* the peer deallocated it (text: its reason) */
        IPCF_END_PEER_DIED = 2,  /* the peer process died (text: "peer died") */
        IPCF_END_LOCAL = 3,      /* this side deallocated it */
        IPCF_END_REFUSED = 4,    /* allocation refused by the target (text: its reason),
                                  * or for it by the facility (text: why: an activation
                                  * that failed, the directory unreachable...); every
                                  * failed allocation that gives a text has a code */
        IPCF_END_PROTOCOL = 5,   /* the flow's shared-memory protocol was broken: by the
                                  * peer (then reads and writes fail -EPROTO; also for an
                                  * end code this version does not know), or, when the
                                  * daemon ended a model's flow with it, by this side */
};

typedef struct ipcf_reason {
        int code;                        /* enum ipcf_end */
        char text[IPCF_REASON_MAX + 1];  /* NUL-terminated, may be empty */
} ipcf_reason;

/* ------------------------------------------------------------------------- */
/* Names: registration and incoming requests                                  */
/* ------------------------------------------------------------------------- */

enum ipcf_reg_flags {
        /* Fail with -EADDRINUSE if anyone holds the name, and keep others out
         * while this registration lives. */
        IPCF_REG_EXCLUSIVE = 1u << 0,
};

typedef struct ipcf_reg_opts {
        uint32_t size;     /* sizeof(ipcf_reg_opts), or 0 for this version; else -EINVAL */
        uint32_t flags;    /* enum ipcf_reg_flags */
        uint32_t backlog;  /* pending requests kept for this registration (0: the
                            * default, 64; at most 1024: a larger value is taken as
                            * 1024); beyond it requesters are spread to other
                            * registrants or fail with -EBUSY */
        uint32_t reserved;
} ipcf_reg_opts;

/*
 * ipcf_register — make this process reachable under name.
 * Several processes (or several registrations of one process) may register
 * one name; the facility spreads new flows among them (the least loaded first).
 * opts may be NULL. Returns a registration handle, pollable with ipcf_fd().
 * ipcf_dealloc() on it unregisters: pending requests on it are refused with
 * reason "unregistered"; flows already accepted live on.
 * Does not block beyond one round trip to the daemon.
 * Errors: -EINVAL bad name, bad opts (size, unknown flags); -EACCES the access
 * policy forbids this user to register name, or another user holds
 * registrations of it and the policy's `share` list does not name this one
 * (joining them would take a share of their flows); -EADDRINUSE exclusive
 * conflict;
 * -EDQUOT too many registrations for this user; -EMFILE; -EHOSTDOWN.
 */
IPCF_API int ipcf_register(const char *name, const ipcf_reg_opts *opts);

/* One pending allocation request, as seen by the target. */
typedef struct ipcf_request {
        uint64_t id;                     /* the facility's id for this request */
        char name[IPCF_NAME_MAX + 1];    /* the name that was asked for */
        ipcf_peer_info from;             /* who asks (stamped by the facility) */
        ipcf_qos qos;                    /* with what characteristics */
} ipcf_request;

/*
 * ipcf_request_next — wait up to timeout_ms for the next pending request on
 * reg and describe it in *ret without deciding it. Decide it with
 * ipcf_request_accept() or ipcf_request_refuse(); an undecided request is
 * withdrawn when its requester gives up (its ipcf_alloc timed out, or it
 * died). A request withdrawn before it is handed out is skipped, never
 * returned; one withdrawn after fails to be decided with -ECANCELED. Each
 * request handed out costs one round trip to the daemon (to know it is
 * still pending), besides its decision; ipcf_accept() does without.
 * Errors: -EAGAIN, -ETIMEDOUT; -EBADF; -EINVAL ret NULL; -EPROTO the daemon
 * sent nonsense; -EHOSTDOWN.
 */
IPCF_API int ipcf_request_next(int reg, int timeout_ms, ipcf_request *ret);

/*
 * ipcf_request_accept — accept req; returns the new port-id.
 * Errors: -ECANCELED the requester gave up (timed out, or died) first;
 * -ENOENT no such request; -EBADF; -EINVAL req NULL; -EDQUOT; -EMFILE out of
 * descriptors; -EHOSTDOWN.
 */
IPCF_API int ipcf_request_accept(int reg, const ipcf_request *req);

/*
 * ipcf_request_refuse — refuse req; the requester's ipcf_alloc fails with
 * -ECONNREFUSED and receives reason (may be NULL; cut to IPCF_REASON_MAX,
 * every byte outside printable ASCII replaced by '?', here and on other
 * hosts).
 * Errors: -ECANCELED, -ENOENT, -EBADF, -EINVAL, -EHOSTDOWN as for accept.
 */
IPCF_API int ipcf_request_refuse(int reg, const ipcf_request *req, const char *reason);

/*
 * ipcf_accept — wait up to timeout_ms for the next request on reg and accept
 * it (requests withdrawn meanwhile are skipped). Returns the new port-id; if
 * ret_req is not NULL it receives who asked and with what characteristics.
 * Errors: those of ipcf_request_next() and ipcf_request_accept().
 */
IPCF_API int ipcf_accept(int reg, int timeout_ms, ipcf_request *ret_req);

/* ------------------------------------------------------------------------- */
/* Flows                                                                      */
/* ------------------------------------------------------------------------- */

/*
 * ipcf_alloc — allocate a flow to name with characteristics qos (NULL: the
 * defaults) and return its port-id. Blocks up to timeout_ms for the whole
 * procedure: resolving the name, starting the target if it is configured for
 * activation, and its decision — and at most 100 ms more: the daemon's
 * verdict -ETIMEDOUT comes timeout_ms after it read the request, and is given
 * that long to arrive; past it (a daemon stopped, wedged or very busy) the
 * call fails -ETIMEDOUT by itself. Either way the request is withdrawn: the
 * target's ipcf_accept and ipcf_request_next skip it, a decision it was
 * making fails -ECANCELED, and a flow the target accepted just then, which
 * the caller never received, ends at once with reason "requester gave up";
 * the daemon keeps nothing of it.
 * If ret_reason is not NULL, on failure it receives the reason the facility
 * gave, if any: the target's (-ECONNREFUSED), or why an activation failed
 * (-ENOEXEC: the command was not found, the program exited with status N or
 * was killed by signal N before registering; -ETIMEDOUT: it did not
 * register in time; -EBUSY: too many started programs still run).
 * Errors: -ENOENT no process has that name and none can be started;
 * -EACCES the access policy forbids it; -ECONNREFUSED the target refused;
 * -EBUSY every registrant's backlog is full; -EINVAL bad name or qos (a
 * field out of range, or qos->size not sizeof(ipcf_qos));
 * -EDQUOT over a quota (flows per user, unbounded memory);
 * -ENOEXEC the activation command could not be run or exited before
 * registering; -ETIMEDOUT; -EINVAL for timeout 0 (an allocation always waits
 * for the target's decision); -EMFILE; -EHOSTDOWN; -EHOSTUNREACH the host
 * of "name@host" (or the host deciding), or every host the directory says
 * has the name, could not be reached (since 1.2).
 * With a directory on etcd ([directory] backend = etcd, since 1.4), when the
 * name is not registered here and this host's copy of the directory cannot
 * tell (not listed yet, its watch down, or full), etcd is asked: -ENOLINK no
 * etcd member answered before the request timeout or timeout_ms (reason
 * "directory unreachable"; a name not cached is not -ENOENT while etcd is
 * away); -EPROTO every member answered what is not etcd's ("directory answer
 * not understood"); -EACCES etcd refused this host's daemon ("directory
 * refused access"); -EREMOTEIO etcd reported another error ("directory
 * error"); -EAGAIN 1024 such lookups were in flight on this host.
 */
IPCF_API int ipcf_alloc(const char *name, const ipcf_qos *qos, int timeout_ms,
                        ipcf_reason *ret_reason);

/*
 * ipcf_last_reason — the reason the facility gave when the last allocation
 * this thread made failed (since 1.9): what ipcf_alloc puts in ret_reason,
 * also for the calls that allocate without such a parameter: ipcf_call and
 * ipcf_call_start (the service's channel, on the first call or after the
 * service restarted), ipcf_dgram_send, ipcf_mbox_open, ipcf_mcast_join and
 * the RPC client's calls. E.g. after -EACCES from "printer@beta", code
 * IPCF_END_REFUSED and text "not allowed from host alpha" (beta's access
 * policy); after -ENOEXEC from a name whose activation failed, code
 * IPCF_END_REFUSED and text "activation: the program exited with status 3
 * before registering the name". The call's errno is what it returned; the
 * code says who ended it (enum ipcf_end). An allocation that succeeds, or
 * fails without a reason, leaves code 0 and an empty text; a call that
 * allocates nothing leaves the last one's.
 * Errors: -EINVAL ret NULL.
 */
IPCF_API int ipcf_last_reason(ipcf_reason *ret);

/*
 * ipcf_write — write len bytes from buf to port.
 * MESSAGE mode: the whole message is queued (or cached, FULL_CACHE) and len is
 * returned; len 0 is a valid, empty message. STREAM mode: returns the number
 * of bytes moved, which is len unless the timeout passed after part was moved.
 * When the queue is full the qos full policy applies. In ZERO capacity, returns
 * only once the reader has taken the message.
 * Errors: -EMSGSIZE message larger than max_msg_size (nothing written);
 * -EAGAIN, -ETIMEDOUT (nothing written); -ENOBUFS (UNBOUNDED) over its memory
 * limit; -EPIPE the flow has ended (peer deallocated, or this side did);
 * -ECONNRESET the peer died; -EPROTO the peer corrupted the flow's shared
 * memory (the flow is dead; this process is unharmed); -EBADF; -EINVAL.
 */
IPCF_API ssize_t ipcf_write(int port, const void *buf, size_t len, int timeout_ms);

/*
 * ipcf_read — read from port into buf (cap bytes).
 * MESSAGE mode: one whole message; returns its length (0 for an empty one).
 * If cap is too small, fails with -EMSGSIZE and the message stays queued
 * (ipcf_next_size() tells its size): nothing is lost. STREAM mode: returns
 * 1..cap bytes.
 * After the peer deallocated, everything it wrote before can still be read;
 * then the read fails with -EPIPE (ipcf_end_reason() gives its reason). If the
 * peer died: -ECONNRESET once the queue is drained.
 * Errors: -EMSGSIZE, -EAGAIN, -ETIMEDOUT, -EPIPE, -ECONNRESET, -EPROTO (the
 * peer corrupted the flow's shared memory: from then on every read and write
 * on the port fails -EPROTO, whatever the peer writes later, and
 * ipcf_end_reason() says IPCF_END_PROTOCOL); -EBADF; -EINVAL.
 */
IPCF_API ssize_t ipcf_read(int port, void *buf, size_t cap, int timeout_ms);

/*
 * ipcf_write_many — write n messages at once (MESSAGE mode): msgs[i].iov_base
 * and iov_len are the i-th message. Each is queued in order as ipcf_write()
 * would queue it (whole or not at all, the qos full policy, the timeout
 * counted once for the whole call), under one lock, and the reader is
 * published to and rung once per batch rather than once per message: the
 * way to move many small messages. A batch is queued contiguously: what
 * other threads write to the port comes before or after it, never between
 * its messages. Returns how many were queued (n = 0: 0). n has no bound
 * but SSIZE_MAX (not IOV_MAX); a message with a NULL iov_base and length 0
 * is an empty message.
 * An error after the first message is queued ends the batch there and is
 * not returned: the count is, and the next call (from the first message not
 * queued) meets the error again (as sendmmsg(2)). So a batch that waits for
 * room past its timeout returns the count (-ETIMEDOUT only when none was
 * queued; timeout 0: -EAGAIN); one whose reader dies or forges its position
 * meanwhile returns the count as soon as its wait sees it (a death at once),
 * and the next call -ECONNRESET or -EPROTO. Everything a batch queued before
 * its writer died is read.
 * Errors: as ipcf_write() for the first message; -EOPNOTSUPP a STREAM flow;
 * -EINVAL msgs NULL with n > 0, a message NULL with a length, or n over
 * SSIZE_MAX.
 */
IPCF_API ssize_t ipcf_write_many(int port, const struct iovec *msgs, size_t n, int timeout_ms);

/*
 * ipcf_read_many — read up to n messages at once (MESSAGE mode): msgs[i]
 * gives a buffer (iov_base) and its capacity (iov_len); for each message
 * read, iov_len is set to the message's length. Waits as ipcf_read() for the
 * first message, then takes those already queued, in order, while they fit
 * their buffers (one that does not stays queued for the next call),
 * publishing its progress to the writer once. Returns how many were read.
 * A slot with a NULL iov_base and length 0 takes an empty message only.
 * An error after the first message is read ends the batch and is met again
 * by the next call: a record the peer forged (a bad header, a length past
 * the ring or max_msg_size) ends the batch before it, and the next call
 * fails -EPROTO, as every call after it. Records the reader skips (pads,
 * rendezvous messages withdrawn) are no error, but it passes at most 64 of
 * them per look, so that whatever the peer writes a call keeps its timeout:
 * a run of more than 64 may end a batch early, or make a call with timeout
 * 0 return -EAGAIN with a message behind it; the next call goes on past it.
 * Errors: as ipcf_read() for the first message (-EMSGSIZE: it does not fit
 * msgs[0], and stays queued); -EOPNOTSUPP a STREAM flow; -EINVAL as
 * ipcf_write_many().
 */
IPCF_API ssize_t ipcf_read_many(int port, struct iovec *msgs, size_t n, int timeout_ms);

/*
 * ipcf_next_size — length of the next message (MESSAGE mode) or of the bytes
 * readable at once (STREAM mode), waiting up to timeout_ms for one.
 * Errors: as ipcf_read().
 */
IPCF_API ssize_t ipcf_next_size(int port, int timeout_ms);

/*
 * ipcf_reserve — zero-copy write: wait up to timeout_ms for len contiguous
 * bytes in the outgoing queue and point *ret_ptr at them; fill them, then
 * ipcf_commit() the length actually written (<= len; MESSAGE mode: one
 * message). Until then, other writes on the port wait.
 * Errors: as ipcf_write(); -EBUSY a reservation is already open on this
 * port in this thread; -EOPNOTSUPP ZERO capacity.
 */
IPCF_API int ipcf_reserve(int port, size_t len, int timeout_ms, void **ret_ptr);

/*
 * ipcf_commit — publish n of the bytes ipcf_reserve() gave (n <= len).
 * Errors: -EINVAL no reservation by this thread, or n too large; -EBADF.
 */
IPCF_API int ipcf_commit(int port, size_t n);

/*
 * ipcf_peek — zero-copy read: wait up to timeout_ms for the next message
 * (STREAM: the next contiguous bytes) and point *ret_ptr at it inside the
 * shared memory; returns its length. The bytes stay valid until
 * ipcf_release(). They are in memory the peer can write: a hostile peer may
 * change them under you, so copy what you must trust.
 * Errors: as ipcf_read(); -EBUSY this thread is already peeking.
 */
IPCF_API ssize_t ipcf_peek(int port, int timeout_ms, const void **ret_ptr);

/*
 * ipcf_release — consume what ipcf_peek() showed.
 * Errors: -EINVAL this thread is not peeking; -EBADF.
 */
IPCF_API int ipcf_release(int port);

/*
 * ipcf_flush — FULL_CACHE: wait up to timeout_ms until no message is cached
 * (the reader has made room for them in the queue). Returns how many messages
 * are still cached (0: none). Other full policies: returns 0.
 * Errors: as ipcf_write().
 */
IPCF_API int ipcf_flush(int port, int timeout_ms);

/*
 * ipcf_dealloc — Deallocate(handle, reason): close any handle and end what
 * it names, for this process and the others. The number is free at once;
 * calls still running on the handle in other threads finish first.
 *   port-id (flows, pipe ends, mailbox and multicast handles): what was
 *     written (cached messages too) stays readable by the peer, which then
 *     sees -EPIPE and reason.
 *     A multicast member leaves the group; a mailbox handle stops sending or
 *     receiving (messages it had not read go to the other receivers).
 *   registration: the name is no longer served through it; pending requests
 *     are refused with reason "unregistered"; accepted flows live on.
 *   service: unregistered; every caller's channel ends with reason (default
 *     "service closed"), also those whose requests it never took: their
 *     pending calls fail -EPIPE at once.
 *   datagram endpoint: its name unregistered, its channels ended with
 *     reason (default "endpoint closed"), also those it never read from:
 *     their senders' next send fails, and what it never took is counted
 *     as dropped (ipcf_dgram_drops).
 *   group handle: leaves the group (unmaps; pointers from ipcf_group_ptr()
 *     die with it). Unlock first: a lock still held through this handle is
 *     left as by a dead holder (the next locker gets IPCF_GROUP_INCONSISTENT).
 * reason may be NULL (empty, or the default above); it is cut to
 * IPCF_REASON_MAX and is not sent for registrations and groups.
 * Calls waiting on the handle in other threads return: on a port -EPIPE
 * (this side ended the flow), on any other handle -EBADF.
 * Never blocks longer than a round trip to the daemon.
 * Errors: -EBADF not a live handle.
 */
IPCF_API int ipcf_dealloc(int handle, const char *reason);

/*
 * ipcf_detach — forget handle in this process without ending what it names:
 * the number is freed and this process's mappings and descriptors for it are
 * released, telling no one. For the end of a pipe (or any handle) inherited
 * across fork() that this process does not use: the holders in other
 * processes go on. When every holder of a flow end is gone, its peer sees
 * -ECONNRESET, as for a peer that died (reason "peer let go of the flow"
 * for a flow the facility made, which notices at once). A service or
 * datagram endpoint hands the channels other processes of its family hold
 * over to them (see worker processes at ipcf_service).
 * Errors: -EBADF; -ENOSPC a service's or endpoint's channel could not be
 * handed over (its family's page is full) and was ended instead: the handle
 * is closed all the same.
 */
IPCF_API int ipcf_detach(int handle);

/*
 * ipcf_end_reason — why the flow of port ended (code IPCF_END_NONE while it
 * is live). The text is the peer's, with every byte outside printable ASCII
 * replaced by '?'.
 * Errors: -EBADF; -EINVAL ret NULL.
 */
IPCF_API int ipcf_end_reason(int port, ipcf_reason *ret);

/*
 * ipcf_peer — the identity of the other end of port (see ipcf_peer_info).
 * Errors: -EBADF; -EINVAL ret NULL.
 */
IPCF_API int ipcf_peer(int port, ipcf_peer_info *ret);

/*
 * ipcf_qos_get — the characteristics the flow of port was allocated with,
 * as the facility granted them (defaults filled in).
 * Errors: -EBADF; -EINVAL ret NULL.
 */
IPCF_API int ipcf_qos_get(int port, ipcf_qos *ret);

/* ------------------------------------------------------------------------- */
/* Readiness: poll/epoll                                                      */
/* ------------------------------------------------------------------------- */

/*
 * ipcf_fd — a file descriptor for poll/epoll, LEVEL-triggered, for any
 * handle: readable exactly when a read (port), an accept (registration) or a
 * take (service, datagram endpoint: a request or datagram may be waiting)
 * would not block — data is queued, the flow has ended, a request is
 * pending — or, for a group handle, once the group changed (resized or
 * dissolved) until ipcf_group_remap() takes notice (and for good, with
 * POLLHUP, once the facility is gone: nothing can change the group any more;
 * the memory stays mapped).
 * Poll it for POLLIN only; never read, write or close it. It stays valid until
 * the handle is closed (ipcf_dealloc, ipcf_detach).
 * The first call on a port switches it to poll mode: from then on the peer
 * rings the descriptor on each empty-to-non-empty change of the queue (one
 * system call on the peer's side per change); without it the peer rings only
 * when this side sleeps in a blocking call.
 * Transient exception: a request withdrawn by its requester can leave a
 * registration's descriptor readable until the next ipcf_request_next().
 * A readiness set's descriptor: see ipcf_set_new().
 * Errors: -EBADF not a live handle; -EBUSY a port in a readiness set (its
 * readiness is the set's).
 */
IPCF_API int ipcf_fd(int handle);

/*
 * ipcf_fd_send — a descriptor readable exactly when a write of one message of
 * max_msg_size (STREAM: of one byte) to port would not block, or the flow has
 * ended. Same rules as ipcf_fd(). ZERO capacity: readable when the message
 * can be placed (the write then still waits for the reader to take it).
 * UNBOUNDED: after a write failed with -ENOBUFS, it becomes readable again
 * when the reader has made room.
 * Errors: -EBADF not a live port-id.
 */
IPCF_API int ipcf_fd_send(int port);

/* ------------------------------------------------------------------------- */
/* Readiness sets: many ports, one descriptor, one call                       */
/* ------------------------------------------------------------------------- */

/*
 * A readiness set is for a server with many flows in one event loop. While
 * its thread is busy, a message on a port it watches costs no system call on
 * either side: the writer rings no one, and ipcf_set_wait finds the message
 * by looking at the port's queue. Only when nothing is ready for a while
 * (spin_us) does the set arm its ports and sleep; then a writer's first
 * message wakes it through the kernel, as ipcf_fd would. A port quiet for
 * some 4 ms while others keep the set busy is armed again on its own. Ports stay ordinary ports:
 * read and write them as usual (timeout 0 after a report). What a peer
 * does to its flow's shared memory or wake-up channel costs the set at most
 * spurious looks, and delays no other flow.
 */
typedef struct ipcf_set_opts {
        uint32_t size;     /* sizeof(ipcf_set_opts), or 0 for the defaults; else -EINVAL */
        uint32_t spin_us;  /* how long a wait keeps looking at busy ports before it arms
                            * them and sleeps (default 50; 0: never; at most 100000),
                            * while a peer may still write (one is not asleep in a
                            * wait, or has an answer to read).
                            * While sleeps keep being cut short by a message (a gap
                            * between bursts a bit longer than the spin), the spin
                            * grows to twice the gap, up to 4 ms; a long sleep
                            * brings it back. */
} ipcf_set_opts;

#define IPCF_SET_IN 1u     /* a read would not block: a message is queued, or the flow
                            * ended (the read reports how) */

typedef struct ipcf_set_event {
        int port;          /* the port-id, as added */
        uint32_t events;   /* IPCF_SET_IN */
        uint64_t data;     /* what ipcf_set_add was given for it */
} ipcf_set_event;

/*
 * ipcf_set_new — make a readiness set: many ports, one descriptor.
 * The set is empty at first. opts may be NULL. Close it with
 * ipcf_dealloc() (a thread waiting on it returns -EBADF) or ipcf_detach();
 * its ports stay open. ipcf_fd(set) is a descriptor for poll/epoll, readable
 * when a wait would report a port — once the last ipcf_set_wait returned
 * -EAGAIN or -ETIMEDOUT (that is what arms every port): after a wait that
 * reported ports, handle them and wait again (timeout 0) before sleeping on
 * the descriptor. It may be readable for nothing now and then.
 * Errors: -EINVAL bad opts; -EMFILE out of handles or descriptors; -ENOMEM.
 */
IPCF_API int ipcf_set_new(const ipcf_set_opts *opts);

/*
 * ipcf_set_add — add a port to a readiness set.
 * Watches port in set; data comes back with its reports. A port is a
 * flow's or pipe's end, or a mailbox or multicast handle (reported while
 * ipcf_mbox_recv / ipcf_mcast_recv would not block, the rest of a stream
 * mailbox's message kept by the library included). A port
 * is in one set at most, and has no ipcf_fd() while in it (its readiness is
 * the set's). The set holds the port until ipcf_set_del, or until the port
 * is closed: after ipcf_dealloc it leaves the set at the next wait,
 * unreported; after ipcf_detach, when the set next finds it ready (or
 * with the set). A set is for the process that made it: in a child of
 * fork() its calls (and ipcf_fd) fail -EBADF, and closing it there (ipcf_detach) leaves
 * the parent's set as it was.
 * Errors: -EBADF set or port not live (or port not a port-id); -EEXIST in
 * this set already; -EBUSY in another set, in poll mode (ipcf_fd was called
 * on it), a channel a service or datagram endpoint holds, or this thread holds a peek of it
 * (ipcf_peek); -ENOSPC too many members (the kernel's epoll limit); -ENOMEM.
 */
IPCF_API int ipcf_set_add(int set, int port, uint64_t data);

/*
 * ipcf_set_del — take a port out of a readiness set.
 * The set stops watching port (it may then get an ipcf_fd).
 * Errors: -EBADF; -ENOENT port is not in set.
 */
IPCF_API int ipcf_set_del(int set, int port);

/*
 * ipcf_set_wait — wait until ports of a readiness set are ready.
 * Waits up to timeout_ms (-1: for ever, 0: not at all) until at least one
 * port of set is ready, and fills evs with up to max of them.
 * Level-triggered: a port stays reported while a read would not block; when
 * more than max are ready, the next call goes on from where this one stopped.
 * A report may be spurious (a peer that rings for nothing; another thread
 * reading the port): read with timeout 0. One thread waits at a time (a
 * second one waits for the first); ipcf_set_add/del from another thread are
 * let in while a wait sleeps.
 * Returns the number of events (>= 1); -EAGAIN (timeout 0) or -ETIMEDOUT:
 * nothing ready, and every port armed.
 * Errors: -EBADF set not live, closed during the wait, or inherited across
 * fork(); -EINVAL evs NULL,
 * max 0 or over INT_MAX, timeout below -1.
 */
IPCF_API int ipcf_set_wait(int set, ipcf_set_event *evs, unsigned max, int timeout_ms);

/* ------------------------------------------------------------------------- */
/* Counters and the facility's view                                           */
/* ------------------------------------------------------------------------- */

typedef struct ipcf_port_stats {
        uint64_t msgs_out, bytes_out;   /* written by this side */
        uint64_t msgs_in, bytes_in;     /* read by this side */
        uint64_t queued_out;            /* bytes waiting in the outgoing queue */
        uint64_t queued_in;             /* bytes waiting in the incoming queue */
        uint32_t cached;                /* FULL_CACHE: messages written beyond the queue's
                                         * capacity, not yet within it */
        uint32_t reserved;
} ipcf_port_stats;

/*
 * ipcf_stats — the counters of port as its shared memory holds them now.
 * Errors: -EBADF; -EINVAL ret NULL.
 */
IPCF_API int ipcf_stats(int port, ipcf_port_stats *ret);

/* The facility's view of this host, for tools such as `ipcf ls`. */
typedef struct ipcf_name_entry {
        char name[IPCF_NAME_MAX + 1];
        pid_t pid;                  /* the registrant */
        uid_t uid;
        uint32_t flows;             /* flows accepted through this registration */
        uint32_t pending;           /* requests waiting for a decision */
} ipcf_name_entry;

typedef struct ipcf_flow_entry {
        uint64_t id;
        char name[IPCF_NAME_MAX + 1];   /* the name it was allocated to */
        pid_t pid_a, pid_b;             /* allocator, acceptor */
        ipcf_qos qos;
        uint64_t msgs_ab, bytes_ab, queued_ab;  /* a -> b: written, bytes, bytes queued */
        uint64_t msgs_ba, bytes_ba, queued_ba;  /* b -> a */
        uint32_t state;                 /* 0 live, 1 closing (one side gone) */
        uint32_t drops;                 /* datagrams dropped on it, both ways (queue full) */
} ipcf_flow_entry;

/* The longest name of a host (ipcfd.conf: [host NAME]). */
#define IPCF_HOST_MAX 63

typedef struct ipcf_listing {
        size_t n_names;
        ipcf_name_entry *names;
        size_t n_flows;
        ipcf_flow_entry *flows;
        pid_t daemon_pid;
        uint64_t daemon_uptime_ms;
        /* Since 1.2: flow_hosts[i] is the host the other side of flows[i] is
         * on, "" for a flow within this host. */
        char (*flow_hosts)[IPCF_HOST_MAX + 1];
} ipcf_listing;

/*
 * ipcf_list — a snapshot of every registration and flow the facility of this
 * host knows, as the calling user may see it (a user sees everything only if
 * it runs the daemon or is root; others see their own entries).
 * *ret is one allocated block (the listing and its arrays): ipcf_free() it.
 * Errors: -EINVAL ret NULL; -ENOMEM; -EPROTO; -EHOSTDOWN.
 */
IPCF_API int ipcf_list(ipcf_listing **ret);

/* ------------------------------------------------------------------------- */
/* Other hosts (since 1.2)                                                    */
/* ------------------------------------------------------------------------- */

/* A name on another host is reached like a local one: ipcf_alloc("printer",
 * ...) finds it on the enrolled hosts in the order of the search rules when
 * this host has none, and "printer@beta" names the one on host beta. The
 * daemons carry the flow over an authenticated, encrypted association;
 * ipcf_peer() tells where the peer is (its name ends in "@host"), and
 * -EHOSTUNREACH says a host could not be reached (docs/DAEMON.md). */

enum ipcf_host_state {
        IPCF_HOST_DOWN = 0,       /* no association: never made, or lost */
        IPCF_HOST_CONNECTING = 1, /* a handshake (or the daemons' greeting) is under way */
        IPCF_HOST_UP = 2,         /* associated: its names can be reached */
};

/* One enrolled host and the association with it. */
typedef struct ipcf_host_entry {
        char name[IPCF_HOST_MAX + 1];
        char addr[64];              /* "a.b.c.d:port", "[v6]:port", "" not known yet */
        uint32_t state;             /* enum ipcf_host_state */
        uint32_t flows;             /* flows with it now */
        uint64_t rtt_ns, rttvar_ns; /* smoothed round trip and its variation */
        uint64_t cwnd, inflight;    /* congestion window and bytes in flight */
        uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out;
        uint64_t lost, retransmitted; /* datagrams declared lost, PDUs sent again */
        uint64_t ups, downs;        /* associations made with it, and lost */
} ipcf_host_entry;

/* The directory of names on etcd as this host's daemon sees it
 * (docs/DAEMON.md "The directory on etcd"). */
typedef struct ipcf_dir_health {
        char endpoint[256];         /* the etcd member in use */
        char last_error[256];       /* the last failure talking to etcd, "" if none; first, when
                                     * so: "host name conflict: ..." (another daemon calls
                                     * itself this host), "degraded: ..." (the watch does not
                                     * hold): docs/DAEMON.md */
        uint8_t reachable;          /* 1: the last attempt reached etcd */
        uint8_t synced;             /* 1: listed once, and watching since */
        uint8_t live;               /* 1: the watch is up and its member answers: a miss is an answer
                                     * (0 while the stream was lost 3 times within [directory]
                                     * watch_unstable_window_s, a minute by default: last_error
                                     * then says "degraded: ...") */
        uint8_t complete;           /* 1: the cache has never been full since its listing */
        int64_t revision;           /* the etcd revision the cache reflects */
        int64_t lease;              /* this host's lease, 0 when none is held */
        uint64_t names, records, bytes; /* the cache: names, (name, host) records, memory */
        uint64_t published;         /* names this host publishes */
        uint64_t unconfirmed;       /* ... of which etcd has not confirmed the last put */
        uint64_t failovers;         /* times the member in use changed */
        uint64_t leases_granted, rejected, resyncs, watch_restarts;
        uint64_t unusable;          /* records naming a host not enrolled here, or not its key */
        /* Since 1.4: */
        uint8_t trust_keys;         /* 1: [directory] trust_keys = yes */
        uint64_t keys_refused;      /* records giving an enrolled host another key (refused) */
        uint64_t enrolled;          /* hosts enrolled with the key the directory published */
        /* Since 1.10 (0 from an older daemon): what last_error's first words say, as flags. */
        uint8_t degraded;           /* 1: the watch was lost 3 times within [directory]
                                     * watch_unstable_window_s ("degraded: ..."; live is 0) */
        uint8_t host_conflict;      /* 1: another daemon keeps putting this host's records under
                                     * its lease ("host name conflict: ...": docs/DAEMON.md) */
} ipcf_dir_health;

typedef struct ipcf_host_listing {
        char self[IPCF_HOST_MAX + 1]; /* this host's name ([hosts] name, else the first
                                       * label of the host name), also when no host is
                                       * enrolled (older daemons: "" then) */
        char key[48];                 /* this host's public key: 44 characters of base64 */
        size_t n;
        ipcf_host_entry *hosts;
        ipcf_dir_health *directory;   /* NULL: no directory ([directory] backend = static) */
        /* Since 1.8: the attributes this host publishes with its names in the
         * directory ([directory] attributes), "KEY=VALUE" lines; "" when none
         * or no directory runs. Never NULL. */
        const char *attrs;
} ipcf_host_listing;

/*
 * ipcf_hosts — this host's name and public key (to enrol it on others; made
 * on first use) and the hosts enrolled here with their associations.
 * *ret is one allocated block: ipcf_free() it.
 * Errors: -EINVAL ret NULL; -ENOMEM; -EPROTO; -EHOSTDOWN; -EACCES/-EPERM
 * and other errors of the daemon's key file (its state directory).
 */
IPCF_API int ipcf_hosts(ipcf_host_listing **ret);

/* What this host may do with a record of the directory (since 1.4;
 * docs/DAEMON.md "Trust"). */
enum ipcf_dir_status {
        IPCF_DIR_USABLE = 0,       /* its host is enrolled here with the key the record names */
        IPCF_DIR_TRUSTED = 1,      /* usable: the host was enrolled with the key the directory published */
        IPCF_DIR_TRUSTABLE = 2,    /* not enrolled yet: trust_keys = yes enrols it on first use */
        IPCF_DIR_SELF = 3,         /* this host's own record */
        IPCF_DIR_NOT_ENROLLED = 4, /* unusable: the host is not enrolled here (trust_keys = no) */
        IPCF_DIR_FP_MISMATCH = 5,  /* unusable: the host is enrolled with another key */
        IPCF_DIR_BAD_KEY = 6,      /* unusable (trust_keys = yes): no key, or not its fingerprint's */
};

/* One (name, host) record of the directory, as this host's cache holds it. */
typedef struct ipcf_dir_record {
        char name[IPCF_NAME_MAX + 1];
        char host[IPCF_HOST_MAX + 1];
        char addr[256];             /* the host's address for associations, as published */
        char fp[129];               /* its public key's fingerprint, as published */
        uint32_t status;            /* enum ipcf_dir_status */
        int64_t revision;           /* etcd's mod_revision of the record */
        int64_t lease;              /* etcd's lease of it (its host's) */
        uint64_t age_ms;            /* how long this host's cache has held this version */
        const char *attrs;          /* its attributes, "KEY=VALUE" lines; "" when none */
} ipcf_dir_record;

/* The most records ipcf_dir_list returns. */
#define IPCF_DIR_LIST_MAX 16384

typedef struct ipcf_dir_listing {
        ipcf_dir_health *directory; /* NULL: no directory ([directory] backend = static), n is 0 */
        uint8_t truncated;          /* 1: the cache holds more than IPCF_DIR_LIST_MAX records the
                                     * caller may see: the first IPCF_DIR_LIST_MAX are here */
        size_t n;
        ipcf_dir_record *records;
} ipcf_dir_listing;

/*
 * ipcf_dir_list (since 1.4) — the directory's view: every record of the
 * directory's cache on this host whose name the calling user's policy lets
 * it allocate or register (as ipcf_watch), with what this host may do with
 * it, and the directory's health. *ret is one allocated block: ipcf_free()
 * it. Errors: -EINVAL ret NULL; -ENOMEM; -EPROTO; -EHOSTDOWN; -ENOSYS (a
 * daemon older than 1.4).
 */
IPCF_API int ipcf_dir_list(ipcf_dir_listing **ret);

/* ------------------------------------------------------------------------- */
/* Misc                                                                       */
/* ------------------------------------------------------------------------- */

/*
 * ipcf_free — free what the library returned allocated (ipcf_list,
 * ipcf_model_list, ipcf_group_list, ipcf_hosts, ipcf_dir_list). NULL is allowed. Never fails.
 */
IPCF_API void ipcf_free(void *p);

/*
 * ipcf_strerror — a short English text for a negative errno returned by this
 * library, in the facility's terms (-ENOENT: "no such name", -ECONNRESET:
 * "peer died", ...). Never NULL; static storage. Never fails. -ENOLINK is
 * two errors with one number: an RPC call's "outcome unknown"
 * (IPCF_EUNKNOWN) and an allocation's "directory unreachable" (etcd could
 * not be asked); its text names both, and the caller knows which it called.
 */
IPCF_API const char *ipcf_strerror(int err);

/*
 * ipcf_error_cause — ipcf_strerror(err) made precise where the library can
 * find out more by looking again, into buf (cap bytes, always terminated,
 * truncated like snprintf). For the errors of reaching the daemon it names
 * the cause as things are now:
 *   -EHOSTDOWN  "the daemon for DIR closed the connection" (while one
 *               accepts connections there), "no
 *               daemon serves DIR, and autostart is off (...)", "...
 *               the runtime dir cannot be made: ...", or what DIR/ipcfd.log
 *               tells of the daemon last started for DIR: "the daemon for
 *               DIR (PROGRAM) exited with status N before serving" (or "was
 *               killed by signal N", or "did not serve within 5 s"), then
 *               "; its log (...) ends: LINE" or ", and wrote nothing to its
 *               log (...)";
 *   -ENOPKG     where the daemon program was looked for;
 *   -EACCES     "runtime dir DIR (uid N, mode 0700) is not searchable by
 *               this user: ...", "runtime dir DIR is owned by uid N",
 *               "... has mode 0777: others may write to it" — when no
 *               daemon can be reached there; otherwise the policy's
 *               refusal, as ipcf_strerror;
 *   -EDQUOT, -EUSERS  "refused by quota: ..." when connecting again
 *               (ipcf_connect(), which it calls) is refused the same way.
 * Any other error: ipcf_strerror's text. Returns the length of the full text
 * (as snprintf). No thread-local state: it looks at the environment, the
 * runtime dir and the daemon afresh.
 * Errors: -EINVAL buf NULL or cap 0.
 */
IPCF_API int ipcf_error_cause(int err, char *buf, size_t cap);

/*
 * ipcf_runtime_dir — the facility instance this process talks to (see
 * IPCF_RUNTIME_DIR). Returns a static string. Never fails.
 */
IPCF_API const char *ipcf_runtime_dir(void);

/*
 * ipcf_connect — connect to the daemon now (otherwise the first call that
 * needs it does) and make sure it admits this process (one round trip).
 * Starts one unless IPCF_NO_AUTOSTART=1.
 * Errors: -EACCES the runtime dir or the daemon's socket is not ours to use;
 * -ENOPKG no daemon runs and the program to start was not found; -EDQUOT this user
 * holds its quota of connections (clients_per_user); -EUSERS the facility
 * has no room for another connection and none idle to reclaim (root and the
 * daemon's user have a reserve; every user has room for a few); -EHOSTDOWN.
 * Every call that needs the daemon may fail -EDQUOT or -EUSERS the same way
 * when it must open a connection. A connection the daemon reclaimed because
 * it was idle is opened again by the next call, transparently.
 */
IPCF_API int ipcf_connect(void);

/* ------------------------------------------------------------------------- */
/* Pipes                                                                      */
/* ------------------------------------------------------------------------- */

/*
 * An ordinary pipe is a flow whose two ends are made in this process, without
 * the daemon (it works even when none runs), to be handed to a child: after
 * fork() each process detaches the end it does not use (ipcf_detach), and
 * each end is used by one process at a time (CONVENTIONS, fork);
 * across exec(), export an end to a descriptor the new program imports. Both
 * ends read and write (full duplex) with the qos given. When every holder of
 * one end is gone without ipcf_dealloc, the other end sees -ECONNRESET, as
 * for a peer that died; ipcf_dealloc ends it in order (-EPIPE with the reason).
 * Named pipes — several unrelated processes on one name — are mailboxes in
 * stream mode (see the mailbox section).
 *
 * Two processes using one end at once (of a pipe or of any flow), which the
 * rule above forbids, break its queue as a hostile peer could, and nothing
 * worse: the other side reads messages lost, read twice, out of order or
 * garbled (mixed from two messages' bytes), or fails -EPROTO, or finds no
 * more messages (-ETIMEDOUT, as with a silent peer, until the end's holders
 * let go); it never crashes nor waits past its timeout, and the daemon and
 * the other flows go on. The two processes see the same kinds of outcome.
 * For a mailbox handle the other side is the daemon: it goes on serving the
 * mailbox's other senders and receivers, whose messages arrive whole and in
 * order.
 * (tests/test-fork-probe.c: of 240,000 messages two writers meant to send,
 * a reader read 17,060-240,000 whole and 0-5 garbled; of 120,000 sent to
 * two readers, they read 114,998-125,905 whole and 0-1 garbled.)
 */

/*
 * ipcf_pipe — make a connected pair of port-ids in ret_ports[0] and [1].
 * qos may be NULL. Each end holds 8 descriptors (the pipe's memory, 6 ends
 * of wake-up socketpairs, one end of a liveness socket), close-on-exec.
 * Errors: -EINVAL bad qos (or ret_ports NULL); -EMFILE; -ENOMEM.
 */
IPCF_API int ipcf_pipe(const ipcf_qos *qos, int ret_ports[2]);

/*
 * ipcf_port_export — a descriptor, inheritable across exec (no close-on-exec),
 * from which another program makes the same end with ipcf_port_import(); pass
 * its number e.g. in the environment. Only pipe ends can be exported. The
 * port stays usable here until closed (ipcf_detach it to hand it over). The
 * caller owns the descriptor.
 * Errors: -EBADF; -EOPNOTSUPP not a pipe end; -EMFILE; -ENOMEM.
 */
IPCF_API int ipcf_port_export(int port);

/*
 * ipcf_port_import — make a port from a descriptor of ipcf_port_export (which
 * is consumed: closed on success and on failure).
 * Errors: -EBADF not a descriptor of a socket; -EPROTO not an exported port;
 * -EMFILE; -ENOMEM.
 */
IPCF_API int ipcf_port_import(int fd);

/* ------------------------------------------------------------------------- */
/* Service processes and calls (Denning's protected service process, LPC)     */
/* ------------------------------------------------------------------------- */

/*
 * A service has one input queue: every request in it is stamped by the
 * facility with its sender (ipcf_peer_info). A caller's requests travel on a
 * "call channel", a flow the library allocates to the service on the first
 * call and keeps (one per service per process); the service's library accepts
 * channels by itself. A call is B = LPC(S, A): send A, sleep until B.
 * Calls from several threads of one process share the channel; each reply goes
 * to the thread that made its call.
 *
 * Worker processes: a service inherited across fork() may be served by every
 * process that holds it (ipcf_service_next in each), and each caller's
 * channel is served by exactly one of them. A channel that comes after the
 * fork goes to the process that takes it in. The channels a process serves
 * when it forks (the maker's, or a worker's that forks in turn) stay with
 * it, until it lets the service go without closing it (ipcf_detach) or,
 * unless it is the service's maker (below), dies: then they are handed
 * over, each to whichever process that inherited it takes from the service
 * first, calls in flight included (but a request the dead process had
 * taken and not answered gets no answer: its call fails at its timeout,
 * -ETIMEDOUT). A process answers only the requests it took: in a child,
 * the answer to a request its parent took before the fork (a copy of its
 * ipcf_call_req) fails -EBADF, or -EALREADY once the channel was handed
 * over to the child (it owes that request nothing). The channels that came to a process alone
 * end with its ipcf_detach or its death (a call in flight on one fails
 * -ECONNRESET; the caller's next call makes a new channel). The service
 * ends when the process that made it exits: its name goes, and so do all
 * its channels, whoever serves them (the daemon accepted each for the
 * service's maker). Each process of the family holds the channels it
 * inherited (their descriptors) until they end, another process takes them
 * over, or it lets the service go: a channel taken over lives in the
 * process that serves it alone, whose death its caller sees at once
 * (-ECONNRESET) unless that process forked meanwhile. The family keeps
 * account of the channels on one page of shared memory, of 511 slots: one
 * per channel served by a process when it forks, and per channel handed
 * over and not yet taken, by processes alive. With the page full, a channel
 * a process serves as it forks is not handed over when that process dies
 * (its caller sees -ECONNRESET at once), and one it cannot hand over at its
 * ipcf_detach is ended (its caller sees -EPIPE at once, reason "service let
 * go: its family's page is full"), and that ipcf_detach returns -ENOSPC:
 * the handle is closed all the same. A process of the family can only
 * delay another's wake-ups, never block its calls (the family's bell is a
 * wake-up socketpair, sent to without blocking). The same holds for datagram
 * endpoints; a process fork() made sends its datagrams on channels of its
 * own.
 */

/* The largest request or reply of a call. */
#define IPCF_CALL_MAX (256u * 1024u - 64u)

/* One request, as the service sees it. */
typedef struct ipcf_call_req {
        uint64_t id;            /* the call's id on its channel */
        ipcf_peer_info from;    /* the caller, stamped by the facility */
        size_t len;             /* bytes of the request (in the buffer given) */
        uint64_t token;         /* opaque: names the caller's channel to this service
                                 * (ipcf_service_reply, _fail, _cancelled check it) */
} ipcf_call_req;

/*
 * ipcf_service — register name as a service and return its handle, pollable
 * with ipcf_fd() (readable when a request may be waiting; level-triggered).
 * opts as for ipcf_register (may be NULL). ipcf_dealloc() closes it.
 * Errors: as ipcf_register().
 */
IPCF_API int ipcf_service(const char *name, const ipcf_reg_opts *opts);

/*
 * ipcf_service_next — take the next request from the service's input queue,
 * copying it into buf (cap bytes), waiting up to timeout_ms. Returns its
 * length and fills *ret. Requests are taken fairly across callers (round
 * robin). Several threads may take requests at once (workers).
 * Errors: -EMSGSIZE cap too small (the request stays queued; ret->len tells
 * its size); -EAGAIN, -ETIMEDOUT; -EBADF; -EINVAL ret NULL; -EHOSTDOWN the
 * daemon died, or (in a worker process) the service's maker exited, or the
 * service's registration was detached by its number (ipcf_detach of a number
 * the program never got: the name is gone; the number, given again, is
 * never touched by the service), and no caller is connected (nothing can
 * come).
 */
IPCF_API ssize_t ipcf_service_next(int svc, void *buf, size_t cap, int timeout_ms,
                                   ipcf_call_req *ret);

/*
 * ipcf_service_reply — answer req with len bytes (<= IPCF_CALL_MAX). Waits as
 * long as the caller's queue is full, at most timeout_ms.
 * A request is answered at most once, by reply or fail: the first answer
 * counts whatever its outcome, and any later one (of req or a copy of it,
 * from any thread; of threads answering it at once, one goes) fails
 * -EALREADY and sends nothing — except after -EAGAIN or -ETIMEDOUT (nothing
 * was written: answer again) and the argument errors -EINVAL and -EMSGSIZE.
 * A caller that sends one call id twice made two requests, each answered
 * once. The service keeps account of 64 requests taken and not answered
 * per caller's channel; past that it forgets the oldest (the smallest id),
 * whose answer then goes out unchecked: a late answer is never refused.
 * Errors: -ECANCELED the caller gave up on this call (the reply is dropped);
 * -EPIPE / -ECONNRESET the caller is gone; -EMSGSIZE; -EAGAIN, -ETIMEDOUT;
 * -EALREADY req was answered already (or another thread's answer to it is
 * under way), or is not one this process took;
 * -EBADF svc is not a service, or req is a request of another service, or
 * one the parent took before fork() (see worker processes above);
 * -EINVAL req NULL, its token was not made by ipcf_service_next, or its id
 * is 0 (no request's).
 */
IPCF_API int ipcf_service_reply(int svc, const ipcf_call_req *req, const void *reply, size_t len,
                                int timeout_ms);

/*
 * ipcf_service_fail — answer req with an error: the caller's ipcf_call
 * returns -EREMOTEIO and puts code (any int the service and its callers agree
 * on) in its ret_code.
 * Errors: as ipcf_service_reply().
 */
IPCF_API int ipcf_service_fail(int svc, const ipcf_call_req *req, int code, int timeout_ms);

/*
 * ipcf_service_cancelled — 1 if the caller of req gave up (timed out or
 * cancelled) or is gone, 0 if not yet; a long request can poll it to stop
 * early. Never blocks. A caller on another host giving up is not seen (0
 * until its flow ends: docs/DAEMON.md "Hosts").
 * Errors: -EALREADY req was answered already (nothing more to stop);
 * -EBADF, -EINVAL as ipcf_service_reply().
 */
IPCF_API int ipcf_service_cancelled(int svc, const ipcf_call_req *req);

/*
 * ipcf_call — call service: send req (len bytes) and wait up to timeout_ms for
 * the reply, copied into reply (cap bytes). Returns the reply's length.
 * (ipcf_call_start + ipcf_call_wait, and ipcf_call_cancel on a timeout.)
 * The first call to a service allocates its channel (within the same timeout);
 * a request that finds the channel broken since the last call (the service
 * restarted) was not sent on it, and goes once on a new channel (-ETIMEDOUT
 * if the timeout passes first). A broken channel is let go without waiting
 * for the daemon: a service that dies while the daemon is stopped fails its
 * call at once (-ECONNRESET), whatever the timeout.
 * If the service failed the call (ipcf_service_fail), returns -EREMOTEIO and,
 * if ret_code is not NULL, puts the service's code in *ret_code.
 * Errors: -ENOENT, -EACCES as ipcf_alloc; -ECONNREFUSED at once, if service
 * is not a service (a plain registration, a datagram endpoint); -ETIMEDOUT (the
 * request is cancelled: the service sees it with ipcf_service_cancelled and
 * its late reply is dropped); -ECONNRESET the service died before answering
 * (never a hang); -EPIPE the service closed (also before taking the request); -EREMOTEIO the service failed the
 * call; -EMSGSIZE request too large, or the reply did not fit in cap (the
 * reply is dropped); -EINVAL bad name, timeout 0; -ENOMEM; -EHOSTDOWN.
 * After fork() each process has channels of its own: the child's first call
 * to a service allocates the child's (also while a thread of the parent was
 * waiting in a call at the fork); the parent's channels, and its calls in
 * progress, are the parent's alone, whatever the child does or however it
 * ends. A call started before the fork (ipcf_call_start) is the parent's:
 * in the child ipcf_call_wait on it fails -ECANCELED at once (unknown) and
 * ipcf_call_cancel -ENOENT.
 */
IPCF_API ssize_t ipcf_call(const char *service, const void *req, size_t len, void *reply,
                           size_t cap, int timeout_ms, int *ret_code);

/*
 * Asynchronous calls: start several, wait for each, or cancel one (from any
 * thread, also while another waits for it).
 */
typedef struct ipcf_pending {
        uint64_t id;             /* the call's id on its channel (the service's req.id) */
        uint64_t token;          /* opaque: names the channel (checked on use) */
} ipcf_pending;

/*
 * ipcf_call_start — send req to service (waiting up to timeout_ms for the
 * channel and for room) and return at once; *ret names the call. reply (cap
 * bytes) receives the reply and must stay valid until the call is finished
 * by ipcf_call_wait or ipcf_call_cancel.
 * Errors: as ipcf_call, before the request is sent (then there is no call);
 * -EINVAL ret NULL.
 */
IPCF_API int ipcf_call_start(const char *service, const void *req, size_t len, void *reply,
                             size_t cap, int timeout_ms, ipcf_pending *ret);

/*
 * ipcf_call_wait — wait up to timeout_ms for the reply of call. Returns its
 * length; on -EREMOTEIO the service's code goes to *ret_code (may be NULL).
 * A timeout of 0 reads what the channel holds: a reply already there is
 * returned, -EAGAIN only if none is. -EAGAIN / -ETIMEDOUT leave the call
 * pending (wait again, or cancel it); any other result finishes it.
 * Errors: as ipcf_call; -ECANCELED it was cancelled (also by another thread
 * during this wait), or is unknown (finished); -EINVAL call NULL, or not made
 * by ipcf_call_start.
 */
IPCF_API ssize_t ipcf_call_wait(ipcf_pending *call, int timeout_ms, int *ret_code);

/*
 * ipcf_call_cancel — give up on call: the service sees it in
 * ipcf_service_cancelled(), a reply that still comes is dropped, a thread
 * waiting for it returns -ECANCELED. Finishes the call. Never blocks.
 * Errors: -ENOENT the call is already finished; -EINVAL call NULL, or not
 * made by ipcf_call_start.
 */
IPCF_API int ipcf_call_cancel(ipcf_pending *call);

/* ------------------------------------------------------------------------- */
/* Datagrams (the Internet model's SEND_DG)                                   */
/* ------------------------------------------------------------------------- */

/*
 * A datagram endpoint sends single messages to names, without allocating a
 * flow itself, and receives the datagrams sent to its name (if it has one)
 * and the answers to its own. Every datagram is stamped by the facility with
 * its sender. Underneath, the endpoint keeps one channel (a flow) per
 * destination, made on the first send; the receiving side's daemon accepts
 * channels at once, so a send never waits for the receiver to come round.
 * A datagram that finds the receiver's queue full is dropped after the
 * sender's timeout (0: at once) and counted, here (ipcf_dgram_drops) and in
 * `ipcf ls`; so are the datagrams a receiver that closed its endpoint or
 * died never took (counted at the next send, or ipcf_dgram_drops).
 */

typedef struct ipcf_dgram_src {
        ipcf_peer_info from;     /* the sender, stamped by the facility */
        uint64_t token;          /* opaque: where ipcf_dgram_answer goes (checked) */
} ipcf_dgram_src;

/*
 * ipcf_dgram_open — a datagram endpoint, receiving datagrams sent to name
 * (registered; NULL: no name, it receives only answers). opts as for
 * ipcf_register. Pollable with ipcf_fd() (readable when a datagram may be
 * waiting). ipcf_dealloc() closes it and its channels.
 * Errors: as ipcf_register(); -EMFILE.
 */
IPCF_API int ipcf_dgram_open(const char *name, const ipcf_reg_opts *opts);

/*
 * ipcf_dgram_send — send len bytes (<= the default max_msg_size, 256 KiB) to
 * the endpoint named dest. If its queue is full, wait up to timeout_ms for
 * room (0: not at all), then drop the datagram: -EAGAIN / -ETIMEDOUT, counted
 * as a drop. Returns len. A channel found dead (dest's endpoint died) is
 * replaced by a new one in the same call: the datagram goes to whoever serves
 * dest now, or the call fails as ipcf_alloc does (-ENOENT: nobody does).
 * Making a channel (the first send to dest, and the first after its
 * endpoint died) is an allocation (ipcf_alloc) with a timeout of 5 s, or of
 * timeout_ms if that is longer or -1, whatever a shorter timeout_ms says:
 * timeout_ms bounds the wait for room, so that a send that must not wait (0)
 * can still reach a new name. A stopped daemon holds such a send that long
 * (then -ETIMEDOUT); sends on channels already made never wait for the
 * daemon.
 * Errors: -ENOENT, -EACCES, -ECONNREFUSED at once (dest is not a datagram endpoint)
 * as ipcf_alloc; -EMSGSIZE; -ECONNRESET the new channel's endpoint died too;
 * -EBADF; -EINVAL bad name; -EHOSTDOWN.
 */
IPCF_API ssize_t ipcf_dgram_send(int ep, const char *dest, const void *buf, size_t len,
                                 int timeout_ms);

/*
 * ipcf_dgram_recv — the next datagram for ep (fairly across senders), into
 * buf (cap bytes); returns its length and, if ret_src is not NULL, who sent
 * it (also when it did not fit).
 * Errors: -EMSGSIZE cap too small (it stays queued); -EAGAIN, -ETIMEDOUT;
 * -EBADF; -EINVAL; -EHOSTDOWN the daemon died, or (a named endpoint in a
 * process fork() made) the endpoint's maker exited, or its registration
 * was detached by number (as for ipcf_service_next), and no sender is
 * connected.
 */
IPCF_API ssize_t ipcf_dgram_recv(int ep, void *buf, size_t cap, int timeout_ms,
                                 ipcf_dgram_src *ret_src);

/*
 * ipcf_dgram_answer — send a datagram back to the sender of src (it arrives
 * at the endpoint that sent it).
 * Errors: as ipcf_dgram_send; -EPIPE the sender has closed its endpoint;
 * -EBADF src came to another endpoint; -EINVAL src NULL, or its token was not
 * made by ipcf_dgram_recv.
 */
IPCF_API ssize_t ipcf_dgram_answer(int ep, const ipcf_dgram_src *src, const void *buf, size_t len,
                                   int timeout_ms);

/*
 * ipcf_dgram_drops — datagrams this endpoint dropped so far (queue full, or
 * never taken by a receiver that went away), in *ret.
 * Errors: -EBADF; -EINVAL ret NULL.
 */
IPCF_API int ipcf_dgram_drops(int ep, uint64_t *ret);

/* ------------------------------------------------------------------------- */
/* Shared-memory groups (Denning's shared page model, made safe)              */
/* ------------------------------------------------------------------------- */
/*
 * A GROUP is a named piece of memory that the facility shares among the
 * processes it admits (docs/GROUPS.md). The facility knows every member; the
 * memory has a lock that tells when its holder died; the copy API is
 * bounds-checked; a resize is announced to every member, who remaps; a
 * dissolve makes every later API access fail cleanly. Group names are a
 * namespace of their own (not the names of ipcf_register, not the multicast
 * groups), under the same access policy: creating one needs the policy's
 * `register` right on the name.
 *
 * Other members share the memory, the lock and the bounded buffers, and may
 * be hostile: nothing they write can make a call of this process fault or
 * wait past its timeout (they can corrupt the data and make calls fail).
 *
 * A group handle (from ipcf_group_join) is a handle like a port-id: a small
 * int, local to the process, holding 2 descriptors (the memory and a
 * notification socket, which ipcf_fd() gives). ipcf_dealloc() on it leaves
 * the group. After fork() the child inherits the mapping but is not a
 * member: it must join itself (the facility counts processes); through the
 * inherited handle it may read and write but not lock (-EPERM).
 */

/* Who may join, besides the creator's uid (always allowed). A process is
 * admitted if ANY entry matches: its uid, its primary or a supplementary
 * gid, or its program name (basename of its executable, as the facility
 * reads it; names identify programs, not authority: combine with uids on a
 * shared host). At most 16 entries per list. */
typedef struct ipcf_group_opts {
        uint32_t size;                /* sizeof(ipcf_group_opts), or 0; else -EINVAL */
        uint32_t flags;               /* 0 */
        const char *const *names;     /* n_names program names */
        size_t n_names;
        const uid_t *uids;
        size_t n_uids;
        const gid_t *gids;
        size_t n_gids;
} ipcf_group_opts;

/* ipcf_group_lock() result when the previous holder died holding the lock:
 * the caller holds the lock, and the data may be half-updated. */
#define IPCF_GROUP_INCONSISTENT 1

/*
 * ipcf_group_create — create group name with size bytes of zeroed memory
 * (rounded up to the page size) and the members allowed by opts (NULL: the
 * creator's uid only). The group lives until ipcf_group_dissolve(), whoever
 * is joined. The caller is not a member until it joins.
 * Errors: -EINVAL bad name, size 0 or over 16 GiB, too many entries;
 * -EACCES the access policy does not give the caller this name; -EEXIST the
 * name is taken; -EDQUOT over the user's quota (groups, bytes); -ENOMEM;
 * -EHOSTDOWN.
 */
IPCF_API int ipcf_group_create(const char *name, uint64_t size, const ipcf_group_opts *opts);

/*
 * ipcf_group_join — become a member of group name and map its memory, with
 * an inaccessible guard page before and after the data. Returns a group
 * handle. The group's lock is ipcf_group_lock() on it. One round trip.
 * Errors: -ENOENT no such group (a dissolved group's name is free at once);
 * -EIDRM the group was dissolved while this call joined it (the facility
 * had admitted it, then counts it out: nothing stays mapped);
 * -EACCES not an allowed member (a clear refusal: nothing is mapped);
 * -EDQUOT too many members; -EMFILE; -ENOMEM; -EHOSTDOWN.
 */
IPCF_API int ipcf_group_join(const char *name);

/*
 * ipcf_group_dissolve — end group name: every member is notified (its
 * ipcf_fd of its handle becomes readable) and its later API calls fail -EIDRM; the
 * name is free at once; the memory is reclaimed when the last member has
 * exited or died. Allowed to the creator's uid (and root, and the daemon's
 * uid). Errors: -ENOENT; -EPERM; -EHOSTDOWN.
 */
IPCF_API int ipcf_group_dissolve(const char *name);

/*
 * ipcf_group_resize — change the data size of group name to size (rounded up
 * to the page size). Every member is notified; the API remaps before its
 * next access, so no API call faults or writes through a stale view; raw
 * pointer users must call ipcf_group_remap() (a growth keeps old pointers
 * valid for the old size; after a shrink the bytes past the new size are
 * discarded, even if written through an old pointer). Allowed to the
 * creator's uid (and root, and the daemon's uid). Errors: -ENOENT; -EPERM; -EINVAL; -EIDRM; -EDQUOT;
 * -EHOSTDOWN.
 */
IPCF_API int ipcf_group_resize(const char *name, uint64_t size);

/*
 * ipcf_group_lock — take the group lock, waiting up to timeout_ms.
 * Returns 0, or IPCF_GROUP_INCONSISTENT: the previous holder died, exited
 * the group, or ended its thread while holding it (or the lock's word was
 * corrupt); the caller now holds it, should repair the data, then call
 * ipcf_group_consistent() before ipcf_group_unlock() (unlocking without it
 * makes the lock unusable: later locks fail -ENOTRECOVERABLE). A holder that
 * is alive but stopped is waited for until the timeout.
 * Errors: -EAGAIN, -ETIMEDOUT; -EDEADLK this thread holds it;
 * -ENOTRECOVERABLE; -EIDRM dissolved; -EPERM a handle inherited across
 * fork(); -EBADF (also when the handle is exited while waiting).
 */
IPCF_API int ipcf_group_lock(int g, int timeout_ms);
/*
 * ipcf_group_consistent — mark the data repaired (after INCONSISTENT).
 * Errors: -EINVAL the lock was not inconsistent; -EPERM not the holder;
 * -EBADF.
 */
IPCF_API int ipcf_group_consistent(int g);

/*
 * ipcf_group_unlock — release the lock.
 * Errors: -EPERM not the holder (or another member rewrote the lock
 * meanwhile); -EBADF.
 */
IPCF_API int ipcf_group_unlock(int g);

/*
 * ipcf_group_read — copy len bytes of the group's memory at offset into
 * buf, after remapping if the group changed. Nothing is copied unless all
 * of [offset, offset + len) lies inside the current size. It does not lock
 * (use ipcf_group_lock around a multi-step update). Returns len.
 * Errors: -ERANGE past the end; -EIDRM dissolved; -EBADF; -EINVAL.
 */
IPCF_API ssize_t ipcf_group_read(int g, uint64_t offset, void *buf, size_t len);

/*
 * ipcf_group_write — copy len bytes from buf into the group's memory at
 * offset, as ipcf_group_read: a write past the end never spills anywhere.
 * Returns len.
 * Errors: as ipcf_group_read().
 */
IPCF_API ssize_t ipcf_group_write(int g, uint64_t offset, const void *buf, size_t len);

/*
 * ipcf_group_ptr — raw access for speed: the address of the data and its
 * size in *ret_size. Guard pages before and after the data make an overrun
 * fault instead of corrupting. The pointer stays valid (mapped, never
 * faulting) until this process calls ipcf_group_ptr() or ipcf_group_remap()
 * on g again, or exits the group — API calls that remap after a change keep
 * it. After a resize it may show a stale size: watch ipcf_fd(g). Other
 * members write the same memory: use the lock.
 * Errors: -EIDRM; -EBADF; -EINVAL ret_ptr NULL (ret_size may be NULL).
 */
IPCF_API int ipcf_group_ptr(int g, void **ret_ptr, uint64_t *ret_size);

/*
 * ipcf_group_remap — take notice of a change: drain the notification, map
 * the current size, retire the pointer ipcf_group_ptr() gave (call it again
 * for the new one). Returns 1 if that view changed, 0 if not.
 * Errors: -EIDRM dissolved; -ENOMEM; -EBADF.
 */
IPCF_API int ipcf_group_remap(int g);

/* What the facility knows of a group or named segment. */
typedef struct ipcf_group_entry {
        char name[IPCF_NAME_MAX + 1];
        uint64_t id;
        uint64_t size;          /* data bytes */
        uint64_t generation;    /* changes counted so far */
        uint32_t kind;          /* 0 group, 1 named segment (ipcf_shm_open) */
        uint32_t state;         /* 0 live, 1 dissolved, members still mapped */
        uint32_t members;       /* processes joined (segments: 0) */
        uid_t owner_uid;
        pid_t creator_pid;
        uint32_t mode;          /* segments: permission bits */
} ipcf_group_entry;

/*
 * ipcf_group_list — every group and named segment the caller may see (its
 * own uid's, or all for root and the daemon's uid), dissolved groups still
 * mapped included. *ret_entries is allocated (ipcf_free() it; NULL when
 * none), *ret_n entries.
 * Errors: -EINVAL a NULL argument; -ENOMEM; -EPROTO; -EHOSTDOWN.
 */
IPCF_API int ipcf_group_list(ipcf_group_entry **ret_entries, size_t *ret_n);

/*
 * ipcf_group_members — the members of group name as the facility knows them
 * (identity from kernel credentials). Fills up to cap entries of buf; returns
 * the number of members (may exceed cap).
 * Errors: -ENOENT; -EACCES (not the owner's uid, nor a member); -EINVAL bad
 * name, buf NULL with cap > 0; -EHOSTDOWN.
 */
IPCF_API int ipcf_group_members(const char *name, ipcf_peer_info *buf, size_t cap);

/* ---- The bounded buffer over a group's memory ---------------------------- */
/*
 * A producer/consumer queue of variable-size items (Knuth's circular queue)
 * in the region [offset, offset + len) of a group. Every member may put and
 * get (many producers, many consumers). It uses all of its capacity: an item
 * of n bytes takes exactly n + IPCF_BBUF_ITEM_HDR bytes, and a buffer of
 * capacity C holds items totalling exactly C bytes (free-running counters:
 * full and empty differ without a wasted slot). Waits spin briefly, then
 * sleep on a futex. The shared state is validated on every call: a corrupt
 * buffer fails -EPROTO, never crashes, and a buffer whose producer or
 * consumer lock another member holds (or forged) is waited for no longer
 * than the timeout (0: one short spin, then -EAGAIN).
 */
#define IPCF_BBUF_HDR 512       /* bytes of the region taken by the header */
#define IPCF_BBUF_ITEM_HDR 4    /* bytes taken per item */

/*
 * ipcf_bbuf_init — lay out an empty buffer in [offset, offset + len) of g
 * (len > IPCF_BBUF_HDR, offset a multiple of 64; capacity = len -
 * IPCF_BBUF_HDR). Only while nobody uses that region. Returns the capacity.
 * Errors: -ERANGE outside the group; -EINVAL; -EIDRM; -EBADF.
 */
IPCF_API ssize_t ipcf_bbuf_init(int g, uint64_t offset, uint64_t len);

/*
 * ipcf_bbuf_put — append one item of len bytes (0 allowed), waiting up to
 * timeout_ms for room. Returns len.
 * Errors: -EMSGSIZE larger than the capacity; -EAGAIN, -ETIMEDOUT; -EPROTO
 * corrupt; -ERANGE; -EIDRM; -EPERM a handle inherited across fork();
 * -EBADF; -EINVAL.
 */
IPCF_API ssize_t ipcf_bbuf_put(int g, uint64_t offset, const void *buf, size_t len,
                               int timeout_ms);

/*
 * ipcf_bbuf_get — take the oldest item into buf (cap bytes), waiting up to
 * timeout_ms. Returns its length.
 * Errors: -EMSGSIZE cap is too small (the item stays); others as
 * ipcf_bbuf_put().
 */
IPCF_API ssize_t ipcf_bbuf_get(int g, uint64_t offset, void *buf, size_t cap, int timeout_ms);

/*
 * ipcf_bbuf_stat — bytes queued (headers included) in *ret_bytes and items
 * queued in *ret_items (either may be NULL), a snapshot.
 * Errors: -EPROTO corrupt; -ERANGE; -EIDRM; -EBADF.
 */
IPCF_API int ipcf_bbuf_stat(int g, uint64_t offset, uint64_t *ret_bytes, uint64_t *ret_items);

/* ---- Named segments in the POSIX style (shm_open semantics) --------------- */
/*
 * ipcf_shm_open — open (O_CREAT: create; O_EXCL: fail if it exists) the
 * facility-managed segment name, with access O_RDONLY or O_RDWR checked
 * against mode (owner: the creator's uid and gid; like a file's 0..0777).
 * Returns a file descriptor (close-on-exec, an open file description of its
 * own) that the caller owns: size it with ftruncate, map it with mmap, close
 * it. A read-only one cannot be reopened read-write. A new segment has size
 * 0. The facility lists segments (ipcf_group_list, kind 1) and keeps them
 * until ipcf_shm_unlink(), as a tmpfs file would be. Creating one needs the
 * access policy's `register` right on the name.
 * Errors: -ENOENT; -EEXIST; -EACCES (mode, or policy); -EINVAL; -EDQUOT;
 * -EMFILE; -EHOSTDOWN.
 */
IPCF_API int ipcf_shm_open(const char *name, int oflag, mode_t mode);
/*
 * ipcf_shm_unlink — remove the name; open descriptors and mappings live on.
 * Allowed to the owner's uid (and root, and the daemon's uid).
 * Errors: -ENOENT; -EPERM; -EINVAL bad name; -EHOSTDOWN.
 */
IPCF_API int ipcf_shm_unlink(const char *name);

/* ------------------------------------------------------------------------- */
/* Notifications (Mach's notify port)                                         */
/* ------------------------------------------------------------------------- */

/*
 * The facility tells a process about events without polling: a name it
 * watches appeared or disappeared, one of its flows ended (and why), a peer
 * of one of its flows died. Events queue on one per-process notification
 * descriptor (ipcf_notify_fd), made on first use. Events about flows are sent
 * to every process that opened its notification descriptor; name events only
 * for watched names. If the process does not read its events, the facility
 * keeps no backlog beyond the descriptor's socket buffer: the next event that
 * fits says how many were dropped (ipcf_event.lost) — never silent.
 */
enum ipcf_event_kind {
        IPCF_EVENT_NAME_UP = 1,     /* a watched name became reachable (registered,
                                     * or a mailbox/group of that name created) */
        IPCF_EVENT_NAME_DOWN = 2,   /* a watched name is no longer reachable */
        IPCF_EVENT_FLOW_ENDED = 3,  /* a flow of this process ended at the other side:
                                     * end_code and reason say why */
        IPCF_EVENT_PEER_DIED = 4,   /* the peer process of a flow of this process died
                                     * (sent besides FLOW_ENDED's information) */
};

typedef struct ipcf_event {
        int kind;                        /* enum ipcf_event_kind */
        uint32_t lost;                   /* events dropped before this one */
        char name[IPCF_NAME_MAX + 1];    /* NAME_*: the name; flows: the flow's name */
        uint64_t flow_id;                /* flows: the facility's id of the flow */
        int port;                        /* flows: this process's port-id, or -1 */
        pid_t pid;                       /* flows: the peer's pid; NAME_UP: registrant */
        int end_code;                    /* FLOW_ENDED, PEER_DIED: enum ipcf_end */
        char reason[IPCF_REASON_MAX + 1];
} ipcf_event;

/*
 * ipcf_notify_fd — the process's notification descriptor, readable (POLLIN)
 * exactly when an event waits. Made on first call (one round trip to the
 * daemon); owned by the library: never read or close it.
 * Errors: -EMFILE, -EHOSTDOWN.
 */
IPCF_API int ipcf_notify_fd(void);

/*
 * ipcf_notify_next — wait up to timeout_ms for the next event and return it
 * in *ret. Opens the notification descriptor if needed.
 * Errors: -EAGAIN, -ETIMEDOUT; -EINVAL ret NULL; -EPROTO the daemon sent
 * nonsense; -ENOMEM; -EHOSTDOWN (the daemon died: no more events).
 */
IPCF_API int ipcf_notify_next(int timeout_ms, ipcf_event *ret);

/*
 * ipcf_watch — be told (NAME_UP / NAME_DOWN) when name becomes reachable or
 * stops being so. If it is reachable now, a NAME_UP is queued at once, so
 * "watch, then wait for NAME_UP" never misses a registration. A process
 * watches at most 64 names, and only names the access policy lets it
 * allocate or register; an event's pid is the registrant's only if it runs
 * as the same user (or the watcher is root or the daemon's user), else 0 —
 * as ipcf_list shows them. Opens the notification descriptor if needed.
 * Errors: -EINVAL bad name, or any name with an '@' in it — name@host,
 * and also a local name that holds an '@' (a watch is of a name as this
 * host resolves it); -EACCES the policy hides name from this user;
 * -EDQUOT too many watches; -EHOSTDOWN.
 */
IPCF_API int ipcf_watch(const char *name);

/*
 * ipcf_unwatch — stop watching name.
 * Errors: -ENOENT not watched; -EINVAL bad name; -EHOSTDOWN.
 */
IPCF_API int ipcf_unwatch(const char *name);

/* ------------------------------------------------------------------------- */
/* The traffic monitor (`ipcf monitor`)                                       */
/* ------------------------------------------------------------------------- */

/*
 * A monitor sees, as they happen, the allocations the facility of this host
 * handles, their outcomes, the ends of flows and names coming and going.
 * What a monitor is shown is bounded by the access policy: root and the
 * daemon's user see every event; another user sees the events of flows one
 * of whose sides runs as that user (allocations it asked for, and those to
 * a name a process of its user serves), and the name events of names the
 * policy lets it allocate or register (as ipcf_watch) — with pids of other
 * users' processes shown as 0.
 */
enum ipcf_monitor_kind {
        IPCF_MONITOR_ALLOC = 1,     /* a process asked for a flow to name (side a) */
        IPCF_MONITOR_ACCEPT = 2,    /* the flow was made: a -> b, flow_id */
        IPCF_MONITOR_REFUSE = 3,    /* the server refused it (error -ECONNREFUSED, reason) */
        IPCF_MONITOR_FAIL = 4,      /* it failed otherwise (error: -ENOENT no such name,
                                     * -ETIMEDOUT, -EDQUOT, -ECANCELED withdrawn...) */
        IPCF_MONITOR_DEALLOC = 5,   /* a side of a flow ended: side a or b (end_side),
                                     * end_code (enum ipcf_end), reason */
        IPCF_MONITOR_NAME_UP = 6,   /* name became reachable (pid_b: a registrant) */
        IPCF_MONITOR_NAME_DOWN = 7, /* name is no longer reachable */
        IPCF_MONITOR_DATAGRAM = 8,  /* a datagram the daemon sent or received on its UDP
                                     * socket, to another host (monitors opened with
                                     * IPCF_MONITOR_DATAGRAMS only; name: the peer's
                                     * address "IP:PORT"; ipcf_monitor_read gives it) */
};

/* ipcf_monitor_open's flags. */
#define IPCF_MONITOR_DATAGRAMS 1u /* also the daemon's datagrams (root and the
                                   * daemon's user only: they show every user's
                                   * traffic to other hosts) */

/* A DATAGRAM event's datagram (ipcf_monitor_read). */
typedef struct ipcf_monitor_datagram {
        int direction;                   /* 0 sent by the daemon, 1 received */
        int family;                      /* the peer's address family: 4, 6 (0 unknown) */
        uint16_t port;                   /* the peer's UDP port */
        uint8_t addr[16];                /* its address (IPv4: the first 4 bytes) */
        uint32_t wire_len;               /* the datagram's length on the wire */
        uint32_t captured;               /* its first bytes copied to the caller's
                                          * buffer: at most the daemon's snap length
                                          * (512) and the buffer's size */
} ipcf_monitor_datagram;

typedef struct ipcf_monitor_event {
        int kind;                        /* enum ipcf_monitor_kind */
        uint32_t lost;                   /* events dropped before this one (not read in time) */
        uint64_t time_ns;                /* CLOCK_REALTIME when the daemon saw it */
        char name[IPCF_NAME_MAX + 1];    /* the name allocated to / that changed */
        uint64_t flow_id;                /* ACCEPT, DEALLOC */
        uint64_t alloc_id;               /* ALLOC, ACCEPT, REFUSE, FAIL */
        pid_t pid_a, pid_b;              /* allocator, acceptor (0: unknown or hidden) */
        uid_t uid_a, uid_b;
        char prog_a[16], prog_b[16];     /* their programs ("" unknown) */
        int error;                       /* REFUSE, FAIL: a negative errno */
        int end_code;                    /* DEALLOC: enum ipcf_end */
        int end_side;                    /* DEALLOC: 0 a's side ended, 1 b's */
        char reason[IPCF_REASON_MAX + 1];/* REFUSE, FAIL, DEALLOC */
} ipcf_monitor_event;

/*
 * ipcf_monitor_open — start monitoring: a new descriptor the events arrive
 * on, readable (POLLIN) when one waits. flags: 0, or IPCF_MONITOR_DATAGRAMS
 * for the daemon's datagrams to other hosts too (DATAGRAM events).
 * The caller owns the descriptor: read it only with ipcf_monitor_next(),
 * close() it to stop. The daemon never waits for a monitor: events that do
 * not fit in the descriptor's socket buffer are dropped and counted
 * (ipcf_monitor_event.lost). A process holds at most 4 monitors at once.
 * Errors: -EINVAL an unknown flag; -EPERM IPCF_MONITOR_DATAGRAMS and the
 * caller is neither root nor the daemon's user; -EDQUOT too many monitors
 * (this process's, or the daemon's 64); -EMFILE; -ENOMEM; -EHOSTDOWN.
 */
IPCF_API int ipcf_monitor_open(uint32_t flags);

/*
 * ipcf_monitor_next — wait up to timeout_ms for the next event on fd (from
 * ipcf_monitor_open) and return it in *ret.
 * Errors: -EAGAIN, -ETIMEDOUT; -EINVAL fd < 0 or ret NULL; -EPROTO the
 * daemon sent nonsense; -ENOMEM; -EHOSTDOWN (the daemon ended: no more
 * events; close fd).
 */
IPCF_API int ipcf_monitor_next(int fd, int timeout_ms, ipcf_monitor_event *ret);

/*
 * ipcf_monitor_read — ipcf_monitor_next, and for a DATAGRAM event its
 * datagram: *ret_dgram (may be NULL) and its first bytes in buf (cap bytes;
 * may be NULL with cap 0). For other events *ret_dgram is zeroed.
 * Errors: as ipcf_monitor_next; -EINVAL buf NULL with cap > 0.
 */
IPCF_API int ipcf_monitor_read(int fd, int timeout_ms, ipcf_monitor_event *ret,
                               ipcf_monitor_datagram *ret_dgram, void *buf, size_t cap);

/* ------------------------------------------------------------------------- */
/* Mailboxes (indirect communication)                                         */
/* ------------------------------------------------------------------------- */

/*
 * A mailbox is a named queue kept by the facility. Any number of senders and
 * receivers open it; each message goes to exactly one receiver, chosen round
 * robin among those with room in their queue (fair; a slow receiver is given
 * less). A sender may ask for a receipt: the pid of the receiver that took
 * its message. A receiver killed holding messages it had not read gives them
 * back: they go to the other receivers. Destroying a mailbox ends every
 * receiver's handle (it reads what it already had, then -EPIPE with reason
 * "mailbox destroyed") and every sender's; messages still in the facility are
 * reported to their senders as undelivered (ipcf_mbox_undelivered) — none is
 * silently lost. If the facility itself dies, every handle learns it (its
 * calls fail -ECONNRESET, its ipcf_fd turns readable; a receiver first reads
 * what its queue holds) and a sender's ipcf_mbox_undelivered counts what no
 * receiver was seen to take; so does a sender on another host than the
 * mailbox when that host dies or goes out of reach.
 * Handles are port-ids: ipcf_fd() polls them, ipcf_dealloc() closes them.
 */
enum ipcf_mbox_flags {
        IPCF_MBOX_EXCLUSIVE = 1u << 0,  /* one receiver at a time (others: -EBUSY) */
        /* A byte stream (a named pipe with many writers and readers): each
         * send (<= max_msg_size) goes whole to one receiver, as a write of at
         * most PIPE_BUF to a FIFO; a receive returns 1..cap bytes of what that
         * receiver was given, boundaries not kept (read the rest with the
         * next receives; one reader thread per handle). */
        IPCF_MBOX_STREAM = 1u << 1,
};

/* The largest values a mailbox's or multicast group's options may take
 * (more is -EINVAL; since 1.8, the same in earlier daemons). */
#define IPCF_MODEL_MAX_MSGS 65536u                /* max_msgs */
#define IPCF_MODEL_MAX_MSG_SIZE (256u * 1024u)    /* max_msg_size */
#define IPCF_MBOX_MAX_BYTES (16ull << 20)         /* a mailbox's max_bytes */

typedef struct ipcf_mbox_opts {
        uint32_t size;          /* sizeof(ipcf_mbox_opts), or 0; else -EINVAL */
        uint32_t flags;         /* enum ipcf_mbox_flags */
        uint32_t max_msgs;      /* messages queued in the facility (0: the default, 1024; max 65536) */
        uint32_t max_msg_size;  /* the largest message (0: the default, 64 KiB; max 256 KiB) */
        uint64_t max_bytes;     /* bytes queued in the facility (0: the default, 1 MiB; max 16 MiB):
                                 * it takes a message while it holds fewer, so it may
                                 * hold one message more than max_bytes */
} ipcf_mbox_opts;

/*
 * ipcf_mbox_create — create the mailbox name (opts may be NULL). It lives
 * until ipcf_mbox_destroy() or the daemon stops, not with its creator.
 * Errors: -EINVAL; -EEXIST a mailbox or group of that name exists;
 * -EACCES the access policy forbids registering name; -EDQUOT (64 mailboxes
 * and groups per user); -EHOSTDOWN.
 */
IPCF_API int ipcf_mbox_create(const char *name, const ipcf_mbox_opts *opts);

/*
 * ipcf_mbox_destroy — destroy it (its creator's uid, root, or the daemon's
 * uid). Returns how many messages it discarded whose senders had closed
 * their handles (the others are reported to their senders:
 * ipcf_mbox_undelivered); 0 if none.
 * Errors: -ENOENT; -EPERM; -EINVAL bad name; -EHOSTDOWN.
 */
IPCF_API int ipcf_mbox_destroy(const char *name);

enum { IPCF_MBOX_SEND = 1, IPCF_MBOX_RECV = 2 };

/*
 * ipcf_mbox_open — open mailbox name to send (IPCF_MBOX_SEND) or to receive
 * (IPCF_MBOX_RECV) with flow characteristics qos (NULL: defaults; the
 * facility makes the queue bounded, message mode, at most 256 KiB; the full
 * policy is the sender's: block, fail or cache). Returns a handle (port-id).
 * Blocks at most timeout_ms (> 0 or -1).
 * Errors: -ENOENT no such mailbox; -EBUSY exclusive mailbox has a receiver;
 * -EACCES; -EINVAL; -EDQUOT; -ETIMEDOUT; -EMFILE; -EHOSTDOWN.
 */
IPCF_API int ipcf_mbox_open(const char *name, int how, const ipcf_qos *qos, int timeout_ms);

/* Who took a message. */
typedef struct ipcf_receipt {
        pid_t receiver;         /* the receiver's pid */
        uint32_t reserved;
        uint64_t seq;           /* the message's number on this handle (from 1) */
} ipcf_receipt;

/*
 * ipcf_mbox_send — send len bytes (<= the mailbox's max_msg_size).
 * ret_receipt NULL: returns once the message is queued (the full policy of
 * the handle's qos applies while the queue is full). Otherwise also waits
 * (same timeout) until a receiver has taken it and fills *ret_receipt.
 * -EAGAIN / -ETIMEDOUT with ret_receipt: ret_receipt->seq is 0 if the queue
 * stayed full and nothing was sent; else the message was sent (seq is its
 * number, receiver 0) and may still be delivered: its receipt can be
 * collected later with ipcf_mbox_receipt().
 * Returns len.
 * Errors: -EMSGSIZE; -EAGAIN, -ETIMEDOUT; -EPIPE the mailbox was destroyed
 * (see ipcf_mbox_undelivered); -ECONNRESET the daemon died (every send that
 * starts after its death fails so; see ipcf_mbox_undelivered); -EPROTO;
 * -EBADF (also at once, nothing sent, for a handle that is not a sender's:
 * a receiver's, a plain flow's, a pipe end); -EINVAL.
 */
IPCF_API ssize_t ipcf_mbox_send(int h, const void *buf, size_t len, int timeout_ms,
                                ipcf_receipt *ret_receipt);

/*
 * ipcf_mbox_send_async — send len bytes asking for a receipt without waiting
 * for it: returns len once the message is queued (full policy as above) and
 * its number on this handle in *ret_seq (may be NULL). Collect receipts with
 * ipcf_mbox_receipt().
 * Errors: as ipcf_mbox_send.
 */
IPCF_API ssize_t ipcf_mbox_send_async(int h, const void *buf, size_t len, int timeout_ms,
                                      uint64_t *ret_seq);

/*
 * ipcf_mbox_receipt — wait up to timeout_ms for the next receipt not waited
 * for yet (oldest first) and fill *ret (receiver pid, message number). The
 * library keeps at most 1024 uncollected receipts per handle (the oldest
 * give way). One thread at a time should read a handle's receipts.
 * Errors: -EAGAIN, -ETIMEDOUT; -EPIPE the mailbox was destroyed;
 * -ECONNRESET; -EPROTO; -EBADF (also a handle not a sender's); -EINVAL.
 */
IPCF_API int ipcf_mbox_receipt(int h, int timeout_ms, ipcf_receipt *ret);

/*
 * ipcf_mbox_recv — receive the next message into buf (cap bytes); the
 * sender's identity, stamped by the facility, in *ret_sender (may be NULL;
 * its name is empty). Returns the length.
 * In a stream mailbox (IPCF_MBOX_STREAM), returns 1..cap bytes: the rest of
 * a message that did not fit comes with the next receives.
 * Errors: -EMSGSIZE (cap too small: the message stays queued); -EAGAIN,
 * -ETIMEDOUT; -EPIPE the mailbox was destroyed and nothing is left;
 * -ECONNRESET the daemon died; -EPROTO; -EBADF (also at once for a handle
 * that is not a receiver's: a sender's, a plain flow's, a pipe end);
 * -EINVAL; -ENOMEM.
 */
IPCF_API ssize_t ipcf_mbox_recv(int h, void *buf, size_t cap, int timeout_ms,
                                ipcf_peer_info *ret_sender);

/*
 * ipcf_mbox_undelivered — how many messages sent on h were not delivered:
 *  - the mailbox was destroyed (known once ipcf_mbox_send has failed -EPIPE):
 *    those still queued in the facility or never read from h, exactly;
 *  - the daemon died (known once a call on h has failed -ECONNRESET): every
 *    message sent on h that no receiver was seen to take while the daemon
 *    lived — those it held, those it never read from h (a send racing with
 *    the death included), and those a receiver had in its queue, unread:
 *    that receiver may still read them after the death (they are the only
 *    ones in doubt; asking for receipts tells which were taken);
 *  - a mailbox on another host (name@host): when that host dies, stops or
 *    goes out of reach (the flow ends -ECONNRESET, "host unreachable"...)
 *    or this host's daemon dies: every message sent on h that the mailbox's
 *    host had not told this host were taken (it tells within about 10 ms,
 *    250 ms once idle). In doubt besides the above: those taken just before
 *    the end, not told yet, and, when this host's daemon died or the hosts
 *    lost each other, those the mailbox's host had received: it keeps them
 *    for its receivers (docs/MODELS.md "Across hosts").
 * 0 while nothing is known lost (always, for a receiver's handle).
 * Errors: -EBADF (also a handle that is not a mailbox's).
 */
IPCF_API int64_t ipcf_mbox_undelivered(int h);

/* ------------------------------------------------------------------------- */
/* Multicast groups                                                           */
/* ------------------------------------------------------------------------- */

/*
 * A multicast group copies each message a member sends to every other current
 * member. Every member gets them in one order, the order the facility took
 * them in, which keeps each sender's order (messages of several senders
 * interleave as they reached the facility, not as they were written).
 * What happens when a member's queue is full is chosen at creation: block the
 * senders until it has room, drop messages for that member only (it is told
 * how many: ipcf_mcast_lost), or remove it (its handle ends with reason "too
 * slow"). Handles are port-ids (ipcf_fd, ipcf_dealloc).
 */
enum ipcf_mcast_slow {
        IPCF_MCAST_BLOCK = 0,
        IPCF_MCAST_DROP = 1,
        IPCF_MCAST_REMOVE = 2,
};

typedef struct ipcf_mcast_opts {
        uint32_t size;          /* sizeof(ipcf_mcast_opts), or 0; else -EINVAL */
        uint32_t slow;          /* enum ipcf_mcast_slow */
        uint32_t max_msgs;      /* messages queued in the facility (0: the default, 1024; max 65536) */
        uint32_t max_msg_size;  /* 0: the default, 64 KiB; max 256 KiB */
} ipcf_mcast_opts;

/*
 * ipcf_mcast_create — create the multicast group name (opts may be NULL), as
 * ipcf_mbox_create (mailboxes and groups share one name space).
 * Errors: as ipcf_mbox_create().
 */
IPCF_API int ipcf_mcast_create(const char *name, const ipcf_mcast_opts *opts);

/*
 * ipcf_mcast_destroy — destroy it (its creator's uid, root, or the daemon's
 * uid): every member's handle ends with reason "group destroyed", and the
 * messages it had not yet been given are counted in its ipcf_mcast_lost().
 * Errors: as ipcf_mbox_destroy().
 */
IPCF_API int ipcf_mcast_destroy(const char *name);

/*
 * ipcf_mcast_join — become a member; returns a handle (a port-id: poll it
 * with ipcf_fd(), leave with ipcf_dealloc(); what it sent is still
 * delivered). qos as for ipcf_mbox_open.
 * Errors: as ipcf_mbox_open.
 */
IPCF_API int ipcf_mcast_join(const char *name, const ipcf_qos *qos, int timeout_ms);

/*
 * ipcf_mcast_send — send to every other member. Returns len. The handle's
 * full policy applies when the facility's queue is full (BLOCK groups).
 * Errors: as ipcf_mbox_send (-EPIPE: removed, or the group destroyed;
 * -ECONNRESET: the daemon died — messages it had taken but not yet copied
 * to every member died with it, and no member can count them: each learns
 * only that the group is gone, -ECONNRESET once its queue is read).
 */
IPCF_API ssize_t ipcf_mcast_send(int h, const void *buf, size_t len, int timeout_ms);

/*
 * ipcf_mcast_recv — the next message from the group, with its sender
 * (stamped; may be NULL).
 * Errors: as ipcf_mbox_recv.
 */
IPCF_API ssize_t ipcf_mcast_recv(int h, void *buf, size_t cap, int timeout_ms,
                                 ipcf_peer_info *ret_sender);

/*
 * ipcf_mcast_lost — how many messages the group dropped for this member so
 * far (DROP groups, and those it was still owed when the group was
 * destroyed), as far as received: the count arrives in order, before the
 * next message this member gets.
 * Errors: -EBADF (also a handle that is not a member's).
 */
IPCF_API int64_t ipcf_mcast_lost(int h);

/* Mailboxes and groups of this host (for `ipcf ls`). */
typedef struct ipcf_model_entry {
        char name[IPCF_NAME_MAX + 1];
        int kind;                   /* 0 mailbox, 1 multicast group */
        uid_t owner_uid;
        uint32_t senders, receivers; /* groups: members, 0 */
        uint32_t queued;            /* messages in the facility */
        uint32_t flags;             /* mailbox flags / group slow policy */
        uint64_t msgs_in, msgs_out, dropped;
} ipcf_model_entry;

/*
 * ipcf_model_list — every mailbox and group: *ret allocated (ipcf_free() it;
 * NULL when none), *ret_n entries.
 * Errors: -EINVAL a NULL argument; -ENOMEM; -EPROTO; -EHOSTDOWN.
 */
IPCF_API int ipcf_model_list(ipcf_model_entry **ret, size_t *ret_n);

/* ------------------------------------------------------------------------- */
/* Remote procedure calls: XDR streams (docs/RPC.md)                          */
/* ------------------------------------------------------------------------- */

/*
 * The code ipcf-idl generates from an interface file (.x) encodes and
 * decodes values with these streams (RFC 4506: big-endian, 4-byte units).
 * Applications rarely call them directly; they may, to encode a generated
 * type themselves (T_encode / T_decode / T_free).
 *
 * Errors are sticky: after the first failure every call returns it again and
 * does nothing, so generated code checks once at the end. Decoding never
 * trusts the input: every length is checked against its bound and against
 * the bytes that remain before anything is allocated, nesting is bounded
 * (max_depth), and all it allocates is charged to a budget.
 *   -EBADMSG  malformed input: truncated, a length over its bound, a bool or
 *             enum or union case out of its type, non-zero padding, a NUL in
 *             a string, bytes left over (ipcf_xdr_end);
 *   -ELOOP    nested deeper than max_depth (generated code counts nesting
 *             when encoding too: what encodes decodes; the nodes of a list,
 *             a struct whose last member points to its own type, do not
 *             nest);  -ENOBUFS  the budget is spent;
 *   -ENOMEM   memory; -EINVAL (encoding) a value outside its type (a length
 *             over its bound, an enum or union case not declared, a NULL
 *             string).
 */

/* The encoding of a quadruple (IEEE 754 binary128), kept as its 16 bytes. */
typedef struct ipcf_xdr_quad {
        uint8_t b[16];
} ipcf_xdr_quad;

/* One piece of a scatter-gather encoding (see ipcf_xdr_encoder_sg). */
typedef struct ipcf_xdr_seg {
        const void *ptr; /* NULL: bytes [off, off+len) of the stream's own buffer */
        size_t off, len;
} ipcf_xdr_seg;

typedef struct ipcf_xdr {
        uint8_t *buf;            /* encoding: the output; decoding: the input */
        size_t pos;              /* bytes written / read */
        size_t cap;              /* encoding: room in buf; decoding: the input's length */
        int err;                 /* the first error (sticky), 0 if none */
        uint32_t depth;          /* current nesting */
        uint32_t max_depth;      /* decoding: deepest nesting allowed (default 256) */
        uint64_t budget;         /* decoding: bytes it may still allocate */
        uint32_t flags;          /* internal */
        uint32_t n_segs, cap_segs; /* scatter-gather: the segments so far */
        ipcf_xdr_seg *segs;
        size_t sg_min;           /* scatter-gather: opaque data this long is referenced */
        size_t total;            /* scatter-gather: bytes of the whole encoding */
} ipcf_xdr;

/* The default bound on decoding's nesting, and its allocation budget:
 * IPCF_XDR_BUDGET_FACTOR times the input's length plus 64 KiB. */
#define IPCF_XDR_MAX_DEPTH 256
#define IPCF_XDR_BUDGET_FACTOR 4

/*
 * ipcf_xdr_encoder — start encoding into buf (cap bytes, may be NULL/0);
 * when it is full the stream moves to memory of its own, which grows (then
 * x->buf is that memory). Free it with ipcf_xdr_release().
 * ipcf_xdr_encoder_sg — the same, but opaque data of at least sg_min bytes
 * is not copied: it becomes a segment referring to the caller's memory,
 * which must stay unchanged until the encoding is used. The encoding is
 * then the segments in order (ipcf_xdr_segments); x->total is its length.
 * Errors: none (they never fail); the encoder's later calls report theirs.
 */
IPCF_API void ipcf_xdr_encoder(ipcf_xdr *x, void *buf, size_t cap);
IPCF_API void ipcf_xdr_encoder_sg(ipcf_xdr *x, void *buf, size_t cap, size_t sg_min);
/* ipcf_xdr_decoder — start decoding len bytes at buf (not copied; must
 * outlive the decoding), with the default depth and budget.
 * Errors: none (never fails). */
IPCF_API void ipcf_xdr_decoder(ipcf_xdr *x, const void *buf, size_t len);
/* ipcf_xdr_release — free what an encoder allocated (its own buffer, its
 * segment list); of a decoder that borrows (ipcf_xdr_borrow), end its
 * input's loan on this thread. Errors: none (never fails). */
IPCF_API void ipcf_xdr_release(ipcf_xdr *x);
/* ipcf_xdr_segments — close a scatter-gather encoding and return its
 * segments (owned by x). Errors: none of its own; after an error of the
 * encoding (x->err) *ret_n is 0. */
IPCF_API const ipcf_xdr_seg *ipcf_xdr_segments(ipcf_xdr *x, size_t *ret_n);
/* ipcf_xdr_end — decoding: 0 if every byte was consumed and no error
 * happened. Errors: -EBADMSG bytes left over; else the decoding's first
 * error (x->err). */
IPCF_API int ipcf_xdr_end(ipcf_xdr *x);
/* ipcf_xdr_fail — record an error (the first one sticks); returns x->err.
 * Errors: none of its own. */
IPCF_API int ipcf_xdr_fail(ipcf_xdr *x, int err);

/* Encoding: append a value to the stream (bound: the declared maximum,
 * 0xffffffff when none). Errors (sticky, see above): -ENOMEM the stream's own memory could not
 * grow; -EINVAL put_fixed / put_var with p NULL and n > 0, put_var /
 * put_string / put_count over bound, put_string with s NULL; or the
 * stream's earlier error, returned again. */
IPCF_API int ipcf_xdr_put_u32(ipcf_xdr *x, uint32_t v);
IPCF_API int ipcf_xdr_put_u64(ipcf_xdr *x, uint64_t v);
IPCF_API int ipcf_xdr_put_float(ipcf_xdr *x, float v);
IPCF_API int ipcf_xdr_put_double(ipcf_xdr *x, double v);
IPCF_API int ipcf_xdr_put_fixed(ipcf_xdr *x, const void *p, size_t n);  /* opaque[n] */
IPCF_API int ipcf_xdr_put_var(ipcf_xdr *x, const void *p, uint32_t n, uint32_t bound); /* opaque<> */
IPCF_API int ipcf_xdr_put_string(ipcf_xdr *x, const char *s, uint32_t bound);
IPCF_API int ipcf_xdr_put_count(ipcf_xdr *x, uint32_t n, uint32_t bound); /* an array's length */

/* Decoding: take the next value from the stream. Errors (sticky, see above): -EBADMSG the input is truncated,
 * a bool not 0 or 1, padding not zero, a count over its bound or over what
 * the input still holds (get_count with min_wire), a NUL inside a string;
 * -ENOBUFS the budget is spent; -ENOMEM; or the stream's earlier error,
 * returned again. */
IPCF_API int ipcf_xdr_get_u32(ipcf_xdr *x, uint32_t *ret);
IPCF_API int ipcf_xdr_get_u64(ipcf_xdr *x, uint64_t *ret);
IPCF_API int ipcf_xdr_get_float(ipcf_xdr *x, float *ret);
IPCF_API int ipcf_xdr_get_double(ipcf_xdr *x, double *ret);
IPCF_API int ipcf_xdr_get_bool(ipcf_xdr *x, int32_t *ret);     /* 0 or 1, else -EBADMSG */
IPCF_API int ipcf_xdr_get_fixed(ipcf_xdr *x, void *p, size_t n);
/* ipcf_xdr_get_var — opaque<bound>: *ret_p is allocated (NULL when empty),
 * *ret_n its length. Errors: as the decoding above. */
IPCF_API int ipcf_xdr_get_var(ipcf_xdr *x, char **ret_p, uint32_t *ret_n, uint32_t bound);
/* ipcf_xdr_get_string — string<bound>: allocated, NUL-terminated, without
 * NUL inside. Errors: as the decoding above. */
IPCF_API int ipcf_xdr_get_string(ipcf_xdr *x, char **ret_s, uint32_t bound);
/* ipcf_xdr_get_count — an array's length: at most bound, and no more
 * elements of min_wire bytes each than the input still holds.
 * Errors: as the decoding above. */
IPCF_API int ipcf_xdr_get_count(ipcf_xdr *x, uint32_t *ret_n, uint32_t bound, uint64_t min_wire);
/* ipcf_xdr_alloc — zeroed memory of n elements of size bytes, charged to
 * the budget; freed with free(). NULL when n or size is 0 (no error) or on
 * an error. Errors (set in x->err): -ENOBUFS the budget is spent;
 * -ENOMEM; after an earlier error it does nothing. */
IPCF_API void *ipcf_xdr_alloc(ipcf_xdr *x, size_t n, size_t size);
/* Nesting: enter before decoding (or encoding) an aggregate, leave after.
 * Errors: ipcf_xdr_enter -ELOOP deeper than max_depth, or the stream's
 * earlier error; ipcf_xdr_leave none. */
IPCF_API int ipcf_xdr_enter(ipcf_xdr *x);
IPCF_API void ipcf_xdr_leave(ipcf_xdr *x);
/*
 * ipcf_xdr_borrow — let decoder x leave variable-length opaque data of at
 * least min bytes where it is in the input instead of copying it (the RPC
 * server does so for a handler's arguments, whose input outlives them).
 * Its input is then marked lent out on this thread, until another decoder
 * borrows there or x is released (ipcf_xdr_release): free what x decoded
 * (T_free) on this thread before either, and before the input goes.
 * ipcf_xdr_free — free what a decoder returned for opaque data: memory of
 * its own, never borrowed input. Generated T_free functions use it.
 * Errors: none (neither fails; ipcf_xdr_free accepts NULL).
 */
IPCF_API void ipcf_xdr_borrow(ipcf_xdr *x, size_t min);
IPCF_API void ipcf_xdr_free(void *p);

/* ------------------------------------------------------------------------- */
/* Remote procedure calls: clients, servers, semantics (docs/RPC.md)          */
/* ------------------------------------------------------------------------- */

/*
 * ipcf-idl turns an interface file (.x) into stubs that call these. A call
 * runs in a session of the client with the server (NFSv4.1's model): the
 * session has slots, each with a sequence number; the server keeps, per
 * slot, the call in progress or the reply of the last one, so a request
 * sent again (a retransmission, or after reconnecting) is never executed
 * twice: it is dropped while in progress and answered from the reply cache
 * when done. Every reply carries the server's incarnation.
 *
 * Guarantees: exactly once while the server lives; across a restart of the
 * server at most once (an answer the client cannot get is "outcome
 * unknown"); with the server's persistent reply cache, exactly once across
 * a crash of the server process too (docs/RPC.md says where the window is).
 * A procedure declared [idempotent] is run again, in a new session, when its
 * server died after the request was sent and a server is back under the
 * name (with room for its session: -EBUSY is tried again too) within the
 * deadline (else -IPCF_EUNKNOWN).
 *
 * Errors of a call (besides those of ipcf_call: -ENOENT, -EACCES, ...):
 *   -EHOSTUNREACH     the server's host could not be reached, or the
 *                     directory on etcd could not be asked where the name
 *                     is (ipcf_alloc's -ENOLINK, which here would read as
 *                     -IPCF_EUNKNOWN): nothing sent, not run;
 *   -ETIMEDOUT        the deadline passed and the call did NOT run (never
 *                     sent, or the server did not start it in time);
 *   -IPCF_EUNKNOWN    the outcome cannot be known: the request reached the
 *                     server (or may have) and then the server died, the
 *                     deadline passed, or the server restarted without its
 *                     cache. The call may or may not have run;
 *   -ECANCELED        cancelled by the caller (ipcf_rpc_cancel) and NOT
 *                     run: nothing of it was sent, or the server says it
 *                     had not started it (and now never will). A call whose
 *                     handler had started ends with what the handler
 *                     returned (it ran: its result, or -EREMOTEIO if it
 *                     saw ipcf_rpc_cancelled and failed); with no verdict
 *                     from the server within the deadline and at most 5 s
 *                     of the cancel (the handler goes on, the server died,
 *                     its host is gone): -IPCF_EUNKNOWN;
 *   -EREMOTEIO        the handler ran and failed: info->remote_error is the
 *                     negative errno it returned;
 *   -EPROTONOSUPPORT  the program or version is not served: info->vers_low
 *                     and vers_high give what the server serves of it (0, 0
 *                     for none); not run;
 *   -EOPNOTSUPP       the procedure is not served; not run;
 *   -EBADMSG          the server could not decode the arguments (not run),
 *                     or the client could not decode the result (it ran);
 *   -EMSGSIZE         arguments or result over the configured maximum;
 *   -ENOBUFS          the server's memory bound (max_memory) would be passed:
 *                     not run;
 *   -EBUSY            the server has max_sessions sessions, none idle: no
 *                     session for this client, not run;
 *   -EPROTO           the server answered something malformed.
 */
#define IPCF_EUNKNOWN ENOLINK

typedef struct ipcf_rpc_client ipcf_rpc_client;
typedef struct ipcf_rpc_server ipcf_rpc_server;
typedef struct ipcf_rpc_call ipcf_rpc_call;

/* What a finished call tells besides its result (optional, see opts). */
typedef struct ipcf_rpc_info {
        int remote_error;         /* -EREMOTEIO: the handler's negative errno */
        uint32_t vers_low;        /* -EPROTONOSUPPORT: versions served */
        uint32_t vers_high;
        uint32_t transmissions;   /* how often the request (or a piece) was sent */
        uint32_t from_cache;      /* 1: answered from the server's reply cache */
        uint64_t incarnation;     /* the server's, from its last reply */
} ipcf_rpc_info;

/* Per call; NULL means all defaults. */
typedef struct ipcf_rpc_opts {
        int timeout_ms;           /* 0: the procedure's [timeout(ms)], else the client's
                                   * default; -1: none; n > 0: n ms for the whole call */
        ipcf_rpc_info *info;      /* if not NULL, filled when the call finishes */
} ipcf_rpc_opts;

typedef struct ipcf_rpc_client_opts {
        uint32_t slots;           /* calls in progress at once (default 16, 1..64) */
        int default_timeout_ms;   /* default 30000 */
        uint32_t max_msg;         /* largest arguments / result (default 64 MiB + 64 KiB) */
} ipcf_rpc_client_opts;

/*
 * ipcf_rpc_client_new — a client of the server registered as service. No
 * message is sent yet: the session is made by the first call. opts may be
 * NULL. Errors: -EINVAL; -ENOMEM.
 */
IPCF_API int ipcf_rpc_client_new(const char *service, const ipcf_rpc_client_opts *opts,
                                 ipcf_rpc_client **ret);
/* ipcf_rpc_client_free — end the session (best effort) and free the client;
 * its calls must be finished. Accepts NULL; returns NULL.
 * Errors: none (never fails). */
IPCF_API ipcf_rpc_client *ipcf_rpc_client_free(ipcf_rpc_client *c);
/* ipcf_rpc_client_versions — the versions of prog the server said it serves
 * (at the session's start, or in a version mismatch).
 * Errors: -ENOENT not known (yet); -EINVAL c NULL. */
IPCF_API int ipcf_rpc_client_versions(ipcf_rpc_client *c, uint32_t prog, uint32_t *ret_low,
                                      uint32_t *ret_high);

/* One procedure of an interface, as ipcf-idl describes it. */
enum { IPCF_RPC_IDEMPOTENT = 1u, IPCF_RPC_ONEWAY = 2u };

typedef struct ipcf_rpc_ctx ipcf_rpc_ctx;

typedef struct ipcf_rpc_proc {
        uint32_t number;
        uint32_t flags;               /* IPCF_RPC_IDEMPOTENT, IPCF_RPC_ONEWAY */
        int timeout_ms;               /* [timeout(ms)], 0 if none */
        const char *name;             /* as in the .x */
        const char *arg_type, *res_type; /* type names, "void" */
        size_t arg_size, res_size;    /* 0 for void */
        int (*encode_arg)(ipcf_xdr *x, const void *v);
        int (*decode_arg)(ipcf_xdr *x, void *v);
        void (*free_arg)(void *v);
        int (*encode_res)(ipcf_xdr *x, const void *v);
        int (*decode_res)(ipcf_xdr *x, void *v);
        void (*free_res)(void *v);
        /* Calls the handler of this procedure in handlers (a generated
         * *_handlers struct); with ctx NULL only says whether there is one
         * (0) or not (-EOPNOTSUPP). */
        int (*invoke)(const void *handlers, ipcf_rpc_ctx *ctx, const void *in, void *out, void *user);
} ipcf_rpc_proc;

typedef struct ipcf_rpc_version {
        uint32_t prog, vers;
        const char *prog_name, *vers_name;
        const ipcf_rpc_proc *procs;
        size_t n_procs;
        const char *description;      /* the interface file's text */
} ipcf_rpc_version;

/*
 * The generated stubs call these; applications may too (a call by numbers).
 * ipcf_rpc_invoke — call procedure p of version v: encode *in, wait for the
 * result, decode it into *out (owned by the caller afterwards: free it with
 * the type's T_free). in / out are ignored for void. Returns 0 or an error
 * above; *out is untouched on failure.
 *
 * ipcf_rpc_start — the same, returning at once with *ret naming the call
 * once the arguments are sent; out must stay valid until the call is
 * finished.
 *
 * ipcf_rpc_wait — wait up to timeout_ms for a started call: 0 or the call's
 * error (final), or -EAGAIN / -ETIMEDOUT while it is still running (then
 * the call's own deadline has not passed). A timeout of 0 polls: a result
 * already there is read and returned.
 *
 * ipcf_rpc_cancel — ask the server to stop the call (its handler sees
 * ipcf_rpc_cancelled, also on another host: it waits up to 100 ms for the
 * server to take the request). A wait then gives the call's verdict: its
 * result if it came first; -ECANCELED if nothing was sent or the server
 * had not started it; else what its handler returned, or -IPCF_EUNKNOWN if
 * the server does not say within the deadline and 5 s (see -ECANCELED
 * above). A call cancelled while it waits to be sent again (for a slot or
 * its session after the server lost it, or for a server back under the
 * name) is not sent again: -ECANCELED if no server can have run it, else
 * (its channel broke after sending) -IPCF_EUNKNOWN. The wait for the verdict is bounded by those, not by the wait's
 * own timeout_ms (-ETIMEDOUT / -EAGAIN meanwhile).
 *
 * ipcf_rpc_call_free — free a finished call (a running one is cancelled
 * first); NULL is accepted.
 *
 * Errors: ipcf_rpc_invoke, ipcf_rpc_start and ipcf_rpc_wait, those of a call
 * (above); -EINVAL v or p NULL, out NULL for a non-void result, call NULL,
 * a timeout below -1. ipcf_rpc_cancel: -EINVAL call NULL, else 0.
 * ipcf_rpc_call_free: none.
 */
IPCF_API int ipcf_rpc_invoke(ipcf_rpc_client *c, const ipcf_rpc_version *v, const ipcf_rpc_proc *p,
                             const void *in, void *out, const ipcf_rpc_opts *o);
IPCF_API int ipcf_rpc_start(ipcf_rpc_client *c, const ipcf_rpc_version *v, const ipcf_rpc_proc *p,
                            const void *in, void *out, const ipcf_rpc_opts *o, ipcf_rpc_call **ret);
IPCF_API int ipcf_rpc_wait(ipcf_rpc_call *call, int timeout_ms);
IPCF_API int ipcf_rpc_cancel(ipcf_rpc_call *call);
IPCF_API ipcf_rpc_call *ipcf_rpc_call_free(ipcf_rpc_call *call);

/*
 * ipcf_rpc_call_raw — call (prog, vers, proc) with arguments already in XDR
 * (len bytes); *ret_res receives the result's XDR (malloc'ed, free() it) and
 * *ret_len its length. flags: IPCF_RPC_IDEMPOTENT / ONEWAY as the procedure
 * is declared. Used by `ipcf rpc call`. Errors as ipcf_rpc_invoke.
 */
IPCF_API int ipcf_rpc_call_raw(ipcf_rpc_client *c, uint32_t prog, uint32_t vers, uint32_t proc,
                               uint32_t flags, const void *args, size_t len, const ipcf_rpc_opts *o,
                               void **ret_res, size_t *ret_len);
/* ipcf_rpc_describe — the server's interface files (their texts, as served,
 * one after the other), malloc'ed in *ret_text (free() it).
 * Errors: as ipcf_call (-ENOENT, -EACCES, -ETIMEDOUT, -EHOSTDOWN, ...),
 * but -EHOSTUNREACH where ipcf_call has -ENOLINK (the directory on etcd
 * unreachable: -IPCF_EUNKNOWN's number, as for a call);
 * -EPROTO the server answered but not with its interfaces; -EMSGSIZE its
 * interface texts together are longer than one reply (IPCF_CALL_MAX less
 * 48 bytes of header, a newline after each): none is given; -EINVAL c or
 * ret_text NULL; -ENOMEM. */
IPCF_API int ipcf_rpc_describe(ipcf_rpc_client *c, int timeout_ms, char **ret_text);

/* The handler's view of a call. */
struct ipcf_rpc_ctx {
        ipcf_peer_info caller;        /* stamped by the facility: the program's name, pid, uid, gid
                                       * (of a caller on another host: as its daemon asserts them) */
        char host[IPCF_NAME_MAX + 1]; /* the caller's host as the facility names it: this host's
                                       * name for a local caller, the other host's for a remote one */
        uint64_t deadline_ns;         /* CLOCK_MONOTONIC; UINT64_MAX: none */
        uint32_t prog, vers, proc;
        uint32_t reserved;
        void *internal;
};
/* ipcf_rpc_cancelled — 1 once the caller cancelled the call, went away, or
 * the deadline passed (a handler should stop early), else 0.
 * Errors: none (never fails). */
IPCF_API int ipcf_rpc_cancelled(const ipcf_rpc_ctx *ctx);

typedef struct ipcf_rpc_server_opts {
        const char *cache_path;       /* persistent reply cache (an SQLite file); NULL: none */
        int cache_sync;               /* 1: fsync every reply (survives a crash of the machine);
                                       * 0 (default): survives a crash of the process */
        uint32_t max_sessions;        /* default 1024 */
        uint32_t max_slots;           /* per session, default 64 */
        uint32_t max_msg;             /* largest arguments / result, default 64 MiB + 64 KiB */
        uint64_t max_memory;          /* arguments being received + cached replies, default 256 MiB */
        const ipcf_reg_opts *reg;     /* as for ipcf_service; may be NULL */
} ipcf_rpc_server_opts;

/*
 * ipcf_rpc_server_new — register name as a service that answers RPCs (no
 * version yet: the generated <version>_serve() adds them). With a
 * cache_path, sessions and replies of the last run are loaded from it.
 * Errors: as ipcf_service; -EIO the cache cannot be opened; -ENOSYS a
 * cache_path was given and libsqlite3.so.0 cannot be loaded.
 */
IPCF_API int ipcf_rpc_server_new(const char *name, const ipcf_rpc_server_opts *opts,
                                 ipcf_rpc_server **ret);
/* ipcf_rpc_server_add — serve version v with handlers (a generated
 * *_handlers struct) and user, which every handler receives.
 * Errors: -EEXIST the version is served; -EINVAL s, v or handlers NULL;
 * -ENOMEM. */
IPCF_API int ipcf_rpc_server_add(ipcf_rpc_server *s, const ipcf_rpc_version *v, const void *handlers,
                                 void *user);
/*
 * ipcf_rpc_server_run — serve calls with threads workers (the calling thread
 * is one of them; 0 means 1, more than 64 means 64) until
 * ipcf_rpc_server_stop or timeout_ms. Returns 0 (stopped or timed out).
 * Errors: -EINVAL s NULL or a timeout below -1; those of the service
 * (ipcf_service_next: -EHOSTDOWN, -ECONNRESET, ...).
 */
IPCF_API int ipcf_rpc_server_run(ipcf_rpc_server *s, unsigned threads, int timeout_ms);
/* ipcf_rpc_server_stop — make ipcf_rpc_server_run return (from any thread,
 * also a handler). Errors: none (never fails). */
IPCF_API void ipcf_rpc_server_stop(ipcf_rpc_server *s);
/* ipcf_rpc_server_free — unregister, end every channel, free. Accepts
 * NULL; returns NULL. Errors: none (never fails). */
IPCF_API ipcf_rpc_server *ipcf_rpc_server_free(ipcf_rpc_server *s);

#ifdef __cplusplus
}
#endif
