/*
 * ctl.h — the control protocol between libipcf and ipcfd: message framing,
 * a strict parser for untrusted input, a builder, and fd-passing I/O.
 *
 * TRANSPORT
 *   A SOCK_SEQPACKET Unix socket at <runtime dir>/ipcfd.sock: one control
 *   message per packet, at most CTL_MSG_MAX bytes, with up to CTL_FDS_MAX file
 *   descriptors attached (SCM_RIGHTS). The daemon learns the client's pid, uid
 *   and gid from SO_PEERCRED, never from a message.
 *
 * FRAMING (all integers little-endian)
 *   header, 16 bytes:  u16 type | u16 flags (0) | u32 len (whole message,
 *                      header included) | u32 seq | u32 reserved (0)
 *   then attributes:   u16 attr type | u16 value length | value | zero padding
 *                      to a multiple of 4.
 *   A message is valid only if len equals the packet length, every attribute
 *   lies wholly inside the message, and string attributes are NUL-terminated
 *   with no other NUL. Unknown attribute types are skipped (forward
 *   compatibility); a known attribute of the wrong length is an error. An
 *   attribute type may repeat (lists) — ctl_get_* return the first.
 *
 * CONVERSATION (client -> daemon requests; the daemon answers each with exactly
 * one CTL_OK or CTL_ERROR carrying the request's seq, in order):
 *   HELLO       VERSION                       -> OK: VERSION, PID (daemon's)
 *   REGISTER    NAME, REG_FLAGS, BACKLOG      -> OK: REG_ID + 1 fd (the
 *               registration's request socket, see REQUEST below)
 *   UNREGISTER  REG_ID                        -> OK
 *   ALLOC       NAME, QOS, TIMEOUT_MS, [ROLE] + 1 fd (the reply socket: one end
 *               of a socketpair the client made) -> OK: ALLOC_ID at once; later the
 *               daemon sends exactly one FLOW or ERROR (with REASON, END_CODE on
 *               refusal) on the reply socket and closes its end.
 *   ACCEPT      REG_ID, REQ_ID                -> FLOW (+ fds) or ERROR
 *   REFUSE      REG_ID, REQ_ID, REASON        -> OK or ERROR
 *   REQ_CHECK   REG_ID, REQ_ID                -> OK if the request is still
 *               pending on the registration, else ERROR as for ACCEPT
 *   DEALLOC     FLOW_ID, SIDE, REASON         -> OK (bookkeeping only: the data
 *               path ends through shared memory; see ring.h). SIDE says which side
 *               of the flow ends (one connection may hold both).
 *   LIST        [LIST_SKIP]                   -> OK: PID (the daemon's), UPTIME_MS, then
 *               repeated NAME_ENTRY and FLOW_ENTRY attributes (fixed structs below),
 *               skipping the first LIST_SKIP entries (names, then flows); LIST_MORE=1
 *               if the reply was full: ask again with LIST_SKIP += entries received.
 * Daemon -> registration socket (the fd REGISTER returned; SOCK_SEQPACKET):
 *   REQUEST     REQ_ID, NAME (asked for), PEER, PEER_NAME, QOS
 *   The socket is readable exactly when a REQUEST is waiting. A request the
 *   requester gave up on stays queued there (the daemon cannot take a message
 *   back): it answers REQ_CHECK, ACCEPT and REFUSE with ERROR -ECANCELED, and
 *   the library skips it (ipcf_request_next asks REQ_CHECK of each REQUEST).
 * FLOW (daemon -> client, as the reply to ACCEPT or on an ALLOC reply socket):
 *   FLOW_ID, SIDE (0 allocator, 1 acceptor), QOS (as granted), SHM_SIZE,
 *   PEER, PEER_NAME, PEER_HOST (the peer's host: this host's name, or the
 *   other host's for a relayed flow), and 7 fds in the order of common/flowmem.h: the flow's
 *   memfd (sealed against shrinking and growing), this side's rx and tx ears,
 *   the peer's rx and tx bells, this side's own rx and tx bells (wake-up
 *   channels, common/wake.h).
 * ERROR: ERRNO (positive errno value), optional REASON, optional END_CODE.
 * CONNECTION NOTICES: before the daemon closes a connection it refuses or
 *   reclaims, it sends an ERROR with seq 0 (no request has seq 0): ERRNO
 *   EDQUOT (the user's clients_per_user) or EUSERS (the facility is full)
 *   for a refused one, ECONNABORTED for an idle one reclaimed (no request
 *   of it was read: send it again on a new connection), and a REASON. The
 *   notice is followed by the end of the stream, never a reset: further
 *   sends on the connection fail EPIPE.
 *
 * MODELS (docs/MODELS.md): NOTIFY_OPEN -> OK + 1 fd (the notification
 * socket, on which the daemon sends EVENT: EVENT_KIND, [EVENT_LOST], [NAME],
 * [FLOW_ID], [PID], [END_CODE], [REASON]); WATCH / UNWATCH NAME -> OK;
 * MBOX_CREATE NAME, [MBOX_OPTS] / MCAST_CREATE NAME, [MCAST_OPTS] -> OK;
 * MBOX_DESTROY / MCAST_DESTROY NAME -> OK; MODEL_LIST [LIST_SKIP] -> OK:
 * MODEL_ENTRY..., LIST_MORE. An ALLOC whose ROLE is MBOX_SEND,
 * MBOX_RECV or MCAST is accepted by the daemon itself (the broker).
 *
 * A malformed message from a client makes the daemon drop that client only.
 * Every request's attributes, descriptors and reply are also one table,
 * checked before the daemon handles a request: ctlschema.h.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipcf.h"

#define CTL_VERSION 1
#define CTL_MSG_MAX 65536
#define CTL_HDR_SIZE 16
#define CTL_FDS_MAX 8
#define CTL_SOCKET_NAME "ipcfd.sock"

enum ctl_type {
        CTL_OK = 1,
        CTL_ERROR = 2,
        CTL_HELLO = 3,
        CTL_REGISTER = 4,
        CTL_UNREGISTER = 5,
        CTL_ALLOC = 6,
        CTL_ACCEPT = 7,
        CTL_REFUSE = 8,
        CTL_DEALLOC = 9,
        CTL_LIST = 10,
        CTL_REQUEST = 11,
        CTL_FLOW = 12,
        /* Shared-memory groups and named segments (src/daemon/groups/group.c,
         * docs/GROUPS.md; attributes below). */
        CTL_GROUP_CREATE = 13,  /* NAME, SHM_SIZE, [GROUP_FLAGS], ALLOW_* -> OK: GROUP_ID */
        CTL_GROUP_JOIN = 14,    /* NAME -> OK: GROUP_ID, MEMBER_ID (serial << 8 | slot),
                                 * SHM_SIZE + 2 fds (memfd, notice ear) */
        CTL_GROUP_EXIT = 15,    /* MEMBER_ID -> OK */
        CTL_GROUP_DISSOLVE = 16,/* NAME -> OK */
        CTL_GROUP_RESIZE = 17,  /* NAME, SHM_SIZE -> OK */
        CTL_GROUP_LIST = 18,    /* [NAME], [LIST_SKIP] -> OK: GROUP_ENTRY..., MEMBER_ENTRY...
                                 * (members only with NAME), LIST_MORE */
        CTL_SHM_OPEN = 19,      /* NAME, SHM_FLAGS, SHM_MODE -> OK + 1 fd */
        CTL_SHM_UNLINK = 20,    /* NAME -> OK */
        /* Notifications, mailboxes, multicast groups (docs/MODELS.md;
         * src/daemon/models/notify.c, mbox.c, mcast.c). */
        CTL_NOTIFY_OPEN = 21,   /* -> OK + 1 fd: this client's notification socket */
        CTL_WATCH = 22,         /* NAME -> OK (NAME_UP at once if it is up) */
        CTL_UNWATCH = 23,       /* NAME -> OK */
        CTL_EVENT = 24,         /* daemon -> notification socket: EVENT_KIND, ... */
        CTL_MBOX_CREATE = 25,   /* NAME, MBOX_OPTS -> OK */
        CTL_MBOX_DESTROY = 26,  /* NAME -> OK */
        CTL_MCAST_CREATE = 27,  /* NAME, MCAST_OPTS -> OK */
        CTL_MCAST_DESTROY = 28, /* NAME -> OK */
        CTL_MODEL_LIST = 29,    /* [LIST_SKIP] -> OK: MODEL_ENTRY..., LIST_MORE */
        /* Other hosts (docs/DAEMON.md "Hosts"; src/daemon/hosts/). */
        CTL_HOSTS = 30,         /* -> OK: HOST_SELF, HOST_KEY, HOST_ENTRY..., DIR_HEALTH */
        /* The traffic monitor (src/daemon/monitor/monitor.c, `ipcf monitor`). */
        CTL_MONITOR_OPEN = 31,  /* -> OK + 1 fd: a monitor socket of this client */
        CTL_MONITOR_EVENT = 32, /* daemon -> monitor socket: MONITOR, [NAME], [REASON] */
        /* The directory's records (src/daemon/directory/list.c, `ipcf ls --all-hosts`). */
        CTL_DIR_LIST = 33,      /* [LIST_SKIP] -> OK: [DIR_HEALTH], DIR_RECORD (each with its
                                 * DIR_ATTRS when it has attributes)..., LIST_MORE */
        /* Is a REQUEST still undecided? (ipcf_request_next, which hands out
         * no withdrawn request; src/daemon/names/registry.c.) */
        CTL_REQ_CHECK = 34,     /* REG_ID, REQ_ID -> OK, or ERROR ECANCELED / ENOENT */
        CTL_TYPE_MAX_ = 35,
};

enum ctl_attr_type {
        CTL_A_VERSION = 1,     /* u32 */
        CTL_A_PID = 2,         /* u32 */
        CTL_A_NAME = 3,        /* string, a valid ipcf name */
        CTL_A_REG_FLAGS = 4,   /* u32 */
        CTL_A_BACKLOG = 5,     /* u32 */
        CTL_A_REG_ID = 6,      /* u64 */
        CTL_A_QOS = 7,         /* struct ctl_qos_wire */
        CTL_A_TIMEOUT_MS = 8,  /* i32 (as u32) */
        CTL_A_ALLOC_ID = 9,    /* u64 */
        CTL_A_REQ_ID = 10,     /* u64 */
        CTL_A_REASON = 11,     /* string, <= IPCF_REASON_MAX bytes */
        CTL_A_FLOW_ID = 12,    /* u64 */
        CTL_A_ERRNO = 13,      /* u32, positive errno */
        CTL_A_END_CODE = 14,   /* u32, enum ipcf_end */
        CTL_A_PEER = 15,       /* struct ctl_peer_wire */
        CTL_A_PEER_NAME = 16,  /* string */
        CTL_A_SIDE = 17,       /* u32: 0 allocator, 1 acceptor */
        CTL_A_SHM_SIZE = 18,   /* u64 */
        CTL_A_UPTIME_MS = 19,  /* u64 */
        CTL_A_NAME_ENTRY = 20, /* struct ctl_name_entry_wire */
        CTL_A_FLOW_ENTRY = 21, /* struct ctl_flow_entry_wire */
        CTL_A_LIST_SKIP = 22,  /* u32: LIST entries (names, then flows) to skip */
        CTL_A_LIST_MORE = 23,  /* u32: 1 if the LIST reply was cut: ask again */
        CTL_A_GROUP_ID = 24,   /* u64 */
        CTL_A_MEMBER_ID = 25,  /* u64 */
        CTL_A_GROUP_FLAGS = 26,/* u32, 0 for now */
        CTL_A_ALLOW_NAME = 27, /* string, a program name; repeats (<= GROUP_ALLOW_MAX) */
        CTL_A_ALLOW_UID = 28,  /* u32; repeats */
        CTL_A_ALLOW_GID = 29,  /* u32; repeats */
        CTL_A_GROUP_ENTRY = 30,/* struct ctl_group_entry_wire */
        CTL_A_MEMBER_ENTRY = 31,/* struct ctl_member_entry_wire */
        CTL_A_SHM_FLAGS = 32,  /* u32: CTL_SHM_* */
        CTL_A_SHM_MODE = 33,   /* u32: permission bits 0..0777 */
        CTL_A_EVENT_KIND = 34, /* u32: enum ipcf_event_kind */
        CTL_A_EVENT_LOST = 35, /* u32: events dropped (socket full) before this one */
        CTL_A_MBOX_OPTS = 36,  /* struct ctl_mbox_opts_wire */
        CTL_A_MCAST_OPTS = 37, /* struct ctl_mcast_opts_wire */
        CTL_A_MODEL_ENTRY = 38,/* struct ctl_model_entry_wire */
        CTL_A_ROLE = 39,       /* u32: enum ctl_role of an ALLOC (absent: CTL_ROLE_FLOW) */
        CTL_A_HOST_SELF = 40,  /* string: this host's name (also when local only) */
        CTL_A_HOST_KEY = 41,   /* string: this host's public key, base64 */
        CTL_A_HOST_ENTRY = 42, /* struct ctl_host_entry_wire */
        CTL_A_FLOW_HOST = 43,  /* struct ctl_flow_host_wire: after the FLOW_ENTRY of a flow
                                * whose other side is on another host */
        CTL_A_UNDELIVERED = 44,/* u64: MBOX_DESTROY's reply: messages discarded whose senders
                                * had left (the others' senders are told) */
        CTL_A_PEER_HOST = 45,  /* string: FLOW: the host the peer is on, as the daemon knows it
                                * (this host's name for a local peer) */
        CTL_A_MONITOR = 46,    /* struct ctl_monitor_wire */
        CTL_A_DIR_HEALTH = 47, /* struct ctl_dir_health_wire: HOSTS, DIR_LIST, when a directory runs */
        CTL_A_DIR_RECORD = 48, /* struct ctl_dir_record_wire: DIR_LIST */
        CTL_A_DIR_ATTRS = 49,  /* string: after a DIR_RECORD, its attributes "K=V" one a line;
                                * in HOSTS, this host's own */
        CTL_A_MONITOR_FLAGS = 50, /* u32: MONITOR_OPEN's flags (IPCF_MONITOR_DATAGRAMS) */
        CTL_A_MONITOR_DGRAM = 51, /* struct ctl_monitor_dgram_wire: a DATAGRAM event's */
        CTL_A_TYPE_MAX_ = 52,
};

/* What a flow is for: the ROLE attribute of an ALLOC. Only the library's
 * own model code sets it (an internal allocation function, never
 * ipcf_alloc()); the daemon takes the role from that attribute alone. The
 * accepting side refuses a role it does not serve. */
enum ctl_role {
        CTL_ROLE_FLOW = 0,        /* an ordinary flow (ipcf_alloc) */
        CTL_ROLE_CALL = 1,        /* a call channel to a service (ipcf_call) */
        CTL_ROLE_DGRAM = 2,       /* a datagram channel (ipcf_dgram_send) */
        CTL_ROLE_MBOX_SEND = 3,   /* a mailbox sender */
        CTL_ROLE_MBOX_RECV = 4,   /* a mailbox receiver */
        CTL_ROLE_MCAST = 5,       /* a multicast group member */
        CTL_ROLE_MAX_ = 6,
};

/* Internal REGISTER flags, beyond enum ipcf_reg_flags (the library's inboxes
 * use them): the daemon accepts on the registration's behalf every request
 * of the role in bits 24..31 and sends its FLOW (7 fds) on the registration
 * socket instead of a REQUEST; a request of another role is refused at once
 * (ECONNREFUSED, "wrong kind of channel"). */
#define CTL_REG_AUTO (1u << 16)
#define CTL_REG_ROLE_SHIFT 24
#define CTL_REG_FLAGS_KNOWN (IPCF_REG_EXCLUSIVE | CTL_REG_AUTO | (0xffu << CTL_REG_ROLE_SHIFT))

/* Fixed wire structs: little-endian, packed, no implicit padding. */
struct __attribute__((packed)) ctl_qos_wire {
        uint8_t capacity, mode, full;
        uint8_t reserved0;       /* 0: an ALLOC with anything else is refused (EINVAL) */
        uint32_t max_msgs;
        uint64_t max_bytes;
        uint32_t max_msg_size;
        uint32_t spin_us;
        uint32_t cache_msgs;
        uint32_t reserved1;
};

/* Who is at the other end (FLOW, REQUEST). watch_pid (FLOW only): the
 * process whose death the side watches in place of pid (0: pid itself) —
 * the local daemon, when the peer is a process on another host. */
struct __attribute__((packed)) ctl_peer_wire {
        uint32_t pid, uid, gid, watch_pid;
};

struct __attribute__((packed)) ctl_name_entry_wire {
        char name[IPCF_NAME_MAX + 1];
        uint32_t pid, uid, flows, pending;
};

struct __attribute__((packed)) ctl_flow_entry_wire {
        uint64_t id;
        char name[IPCF_NAME_MAX + 1];
        uint32_t pid_a, pid_b;
        struct ctl_qos_wire qos;
        uint64_t msgs_ab, bytes_ab, queued_ab;
        uint64_t msgs_ba, bytes_ba, queued_ba;
        uint32_t state, drops; /* drops: datagrams dropped, both ways */
};

/* One enrolled host and its association (CTL_HOSTS). */
#define CTL_HOST_NAME_MAX 63
struct __attribute__((packed)) ctl_host_entry_wire {
        char name[CTL_HOST_NAME_MAX + 1];
        char addr[64];           /* "a.b.c.d:port", "[v6]:port", "" unknown */
        uint32_t state;          /* enum ipcf_host_state */
        uint32_t flows;          /* flows relayed with it */
        uint64_t rtt_ns, rttvar_ns, cwnd, inflight;
        uint64_t dgrams_in, dgrams_out, bytes_in, bytes_out;
        uint64_t lost, retransmitted, ups, downs;
};

/* The directory's health (HOSTS; daemon/directory/directory.h dir_health). */
#define CTL_DIR_TEXT_MAX 255
enum { CTL_DIR_REACHABLE = 1, CTL_DIR_SYNCED = 2, CTL_DIR_LIVE = 4, CTL_DIR_COMPLETE = 8, CTL_DIR_TRUST_KEYS = 16,
       CTL_DIR_DEGRADED = 32, CTL_DIR_HOST_CONFLICT = 64 };
struct __attribute__((packed)) ctl_dir_health_wire {
        char endpoint[CTL_DIR_TEXT_MAX + 1];
        char last_error[CTL_DIR_TEXT_MAX + 1];
        uint32_t flags;          /* CTL_DIR_* */
        int64_t revision, lease;
        uint64_t names, records, bytes, published, unconfirmed;
        uint64_t failovers, leases_granted, rejected, resyncs, watch_restarts, unusable;
        uint64_t keys_refused, enrolled; /* directory/trust.c */
};

/* One record of the directory's cache (DIR_LIST): what it says (name,
 * host, address, key fingerprint), whether this host may use it and why
 * not (CTL_DIR_ST_*), its etcd mod_revision and lease, and how long the
 * cache has held it. */
#define CTL_DIR_FP_MAX 128
enum {
        CTL_DIR_ST_USABLE = 0,       /* the host is enrolled here with the key the record names */
        CTL_DIR_ST_TRUSTED = 1,      /* usable: the host's key was taken from the directory */
        CTL_DIR_ST_TRUSTABLE = 2,    /* not enrolled; trust_keys = yes would enrol it on first use */
        CTL_DIR_ST_SELF = 3,         /* this host's own record */
        CTL_DIR_ST_NOT_ENROLLED = 4, /* the host is not enrolled here (trust_keys = no) */
        CTL_DIR_ST_FP_MISMATCH = 5,  /* enrolled with another key than the record's fingerprint */
        CTL_DIR_ST_BAD_KEY = 6,      /* trust_keys: no key, or a key that is not its fingerprint's */
        CTL_DIR_ST_MAX_ = 7,
};
struct __attribute__((packed)) ctl_dir_record_wire {
        char name[IPCF_NAME_MAX + 1];
        char host[CTL_HOST_NAME_MAX + 1];
        char addr[CTL_DIR_TEXT_MAX + 1];
        char fp[CTL_DIR_FP_MAX + 1];
        uint8_t reserved[3];
        uint32_t status;         /* CTL_DIR_ST_* */
        int64_t revision, lease;
        uint64_t age_ms;         /* since the cache took this version of it */
};

/* The host of a listed flow's other side (LIST). */
struct __attribute__((packed)) ctl_flow_host_wire {
        uint64_t flow_id;
        char host[CTL_HOST_NAME_MAX + 1];
};

/* Shared-memory groups (docs/GROUPS.md). */
#define GROUP_ALLOW_MAX 16     /* entries per ALLOW_* list */

enum { CTL_SHM_CREAT = 1, CTL_SHM_EXCL = 2, CTL_SHM_RDWR = 4 };

struct __attribute__((packed)) ctl_group_entry_wire {
        char name[IPCF_NAME_MAX + 1];
        uint64_t id, size, generation;
        uint32_t kind;                 /* 0 group, 1 named segment */
        uint32_t state;                /* 0 live, 1 dissolved (members still mapped) */
        uint32_t members, owner_uid, creator_pid, mode;
};

struct __attribute__((packed)) ctl_member_entry_wire {
        char name[IPCF_NAME_MAX + 1];  /* the member's program */
        uint64_t member_id;
        uint32_t pid, uid, gid, reserved;
};

/* Mailboxes and multicast groups (docs/MODELS.md). Zero fields: defaults. */
struct __attribute__((packed)) ctl_mbox_opts_wire {
        uint32_t flags;          /* IPCF_MBOX_EXCLUSIVE */
        uint32_t max_msgs;       /* queue in the daemon: messages */
        uint64_t max_bytes;      /* queue in the daemon: payload bytes */
        uint32_t max_msg_size;
        uint32_t reserved;
};

struct __attribute__((packed)) ctl_mcast_opts_wire {
        uint32_t slow;           /* enum ipcf_mcast_slow */
        uint32_t max_msgs;       /* queue in the daemon (BLOCK) */
        uint32_t max_msg_size;
        uint32_t reserved;
};

struct __attribute__((packed)) ctl_model_entry_wire {
        char name[IPCF_NAME_MAX + 1];
        uint32_t kind;           /* 0 mailbox, 1 multicast group */
        uint32_t owner_uid;
        uint32_t senders, receivers; /* mcast: members, 0 */
        uint32_t queued;         /* messages queued in the daemon */
        uint32_t flags;          /* mailbox flags, or the mcast slow policy */
        uint64_t msgs_in, msgs_out;  /* messages taken from senders / delivered */
        uint64_t dropped;        /* mcast: drops; mbox: undelivered at destroy */
};

/* One monitor event (MONITOR_EVENT). Side a is the allocator, b the
 * acceptor; pids and uids 0 where unknown or hidden, programs "" then. */
#define CTL_PROG_MAX 15
struct __attribute__((packed)) ctl_monitor_wire {
        uint32_t kind;           /* enum ipcf_monitor_kind */
        uint32_t lost;           /* events that did not fit before this one */
        uint64_t time_ns;        /* CLOCK_REALTIME when the daemon saw it */
        uint64_t flow_id, alloc_id;
        uint32_t pid_a, uid_a, pid_b, uid_b;
        uint32_t err;            /* positive errno: FAIL, REFUSE */
        uint32_t end_code;       /* DEALLOC: enum ipcf_end */
        uint32_t end_side;       /* DEALLOC: 0 a's side ended, 1 b's */
        uint32_t reserved;
        char prog_a[CTL_PROG_MAX + 1], prog_b[CTL_PROG_MAX + 1];
};

/* The datagram of a MONITOR_EVENT of kind DATAGRAM (with a ctl_monitor_wire
 * for its time and losses): one the daemon sent or received on its UDP
 * socket, cut to its first CTL_MONITOR_SNAP bytes. */
#define CTL_MONITOR_SNAP 512
struct __attribute__((packed)) ctl_monitor_dgram_wire {
        uint8_t direction;       /* 0 sent by the daemon, 1 received */
        uint8_t family;          /* the peer's: 4 or 6 (0 unknown) */
        uint16_t port;           /* the peer's UDP port */
        uint8_t addr[16];        /* the peer's address (IPv4: the first 4 bytes) */
        uint32_t wire_len;       /* the datagram's length */
        uint32_t captured;       /* bytes of data that are the datagram's (<= SNAP) */
        uint8_t data[CTL_MONITOR_SNAP];
};

/* A parsed message: a view into the caller's buffer (borrowed; valid as long
 * as that buffer is). */
typedef struct ctl_msg {
        uint16_t type;
        uint32_t seq;
        const uint8_t *attrs;
        size_t attrs_len;
} ctl_msg;

/* Validate the framing of buf[0..len) completely (see FRAMING) and fill *ret.
 * Returns 0, or -EBADMSG for any malformation. Never reads outside buf. */
int ctl_msg_parse(const void *buf, size_t len, ctl_msg *ret);

/* Attribute iteration over a parsed message. *cursor starts at 0. Returns 1
 * and fills type/val/len for the next attribute, 0 at the end. */
int ctl_attr_next(const ctl_msg *m, size_t *cursor, uint16_t *ret_type, const void **ret_val,
                  uint16_t *ret_len);

/* Typed getters for the first attribute of a type. Return 0, -ENOENT if absent,
 * -EBADMSG if present but malformed (wrong length, bad string). */
int ctl_get_u32(const ctl_msg *m, uint16_t type, uint32_t *ret);
int ctl_get_u64(const ctl_msg *m, uint16_t type, uint64_t *ret);
int ctl_get_str(const ctl_msg *m, uint16_t type, size_t max_len, const char **ret);
int ctl_get_fixed(const ctl_msg *m, uint16_t type, void *ret, size_t size);

/* A message under construction. Errors are sticky: a put that does not fit
 * sets err = -EMSGSIZE and later puts do nothing; ctl_end() returns err or the
 * finished length. */
typedef struct ctl_builder {
        uint8_t buf[CTL_MSG_MAX];
        size_t len;
        int err;
} ctl_builder;

void ctl_begin(ctl_builder *b, uint16_t type, uint32_t seq);
void ctl_put(ctl_builder *b, uint16_t type, const void *val, size_t len);
void ctl_put_u32(ctl_builder *b, uint16_t type, uint32_t v);
void ctl_put_u64(ctl_builder *b, uint16_t type, uint64_t v);
void ctl_put_str(ctl_builder *b, uint16_t type, const char *s); /* includes the NUL */
int ctl_end(ctl_builder *b);

/* Send a finished message with fds (n_fds <= CTL_FDS_MAX; the fds stay owned by
 * the caller). MSG_NOSIGNAL; retries EINTR. Returns 0 or -errno (-EAGAIN: the
 * socket is full and this process's sends never wait). */
int ctl_send(int sock, const ctl_builder *b, const int *fds, unsigned n_fds);
/* From now on every ctl_send of this process is also MSG_DONTWAIT, whatever
 * the socket's O_NONBLOCK says. For the daemon, which must never block: a
 * socket a client handed it (an ALLOC's reply socket) shares its open file
 * description, flags included, with every copy the client kept, so the
 * client can clear O_NONBLOCK under it and fill the queue behind it. */
void ctl_sends_never_wait(void);

/* Receive one packet into buf (cap >= CTL_MSG_MAX) with up to CTL_FDS_MAX fds.
 * Received fds become the caller's (close-on-exec) and *ret_n_fds says how many;
 * on any error every received fd is closed. Returns the packet length, 0 at
 * end of stream, -EAGAIN if flags has MSG_DONTWAIT and nothing waits, -EBADMSG
 * if the packet or its fds were truncated, or -errno. */
ssize_t ctl_recv(int sock, void *buf, size_t cap, int *fds, unsigned *ret_n_fds, int flags);

/* Names and reasons. */
bool ctl_name_valid(const char *name);

/* qos <-> wire (the wire's reserved0 is written 0 and not read: the daemon
 * checks it on an ALLOC), and validation/normalisation of a requested qos
 * (fills defaults for zeros where documented, rounds sizes, checks ranges,
 * refuses a non-zero reserved byte). Returns 0 or -EINVAL. */
void ctl_qos_to_wire(const ipcf_qos *q, struct ctl_qos_wire *w);
void ctl_qos_from_wire(const struct ctl_qos_wire *w, ipcf_qos *q);
int ctl_qos_normalize(ipcf_qos *q);
