/*
 * hostwire.h — the control messages between two daemons (docs/PROTOCOL.md
 * §9): what travels on the control flow of a host association.
 *
 * Each message is one EFCP message on the association's control flow (port
 * HW_CONTROL_PORT at both ends, reliable and ordered), so no framing is
 * needed. Everything is big-endian:
 *
 *   header   type u8, version u8 (HW_VERSION), flags u16 (0)
 *   HELLO    boot u64, name str                  a daemon (re)started its side
 *   ALLOC    req u64, port u32, timeout_ms u32, role u8, 0 u8[3], qos,
 *            pid u32, uid u32, gid u32, name str, prog str, user str
 *   ACCEPT   req u64, port u32, pid u32, uid u32, gid u32, qos, prog str
 *   REFUSE   req u64, err u32, code u32, reason str
 *   CANCEL   req u64                            the requester withdrew
 *   DEALLOC  port u32, code u32, reason str      the sender's end of a flow ended
 *   CONSUMED port u32, count u64                 a mailbox receiver on the sender's
 *                                                host has read count records in all
 *   DELIVERED port u32, count u64                the mailbox's receivers took count
 *                                                records of a remote sender in all
 *   qos      capacity u8, mode u8, full u8, 0 u8, max_msgs u32, max_bytes u64,
 *            max_msg_size u32, spin_us u32, cache_msgs u32   (28 bytes)
 *   str      length u8, then that many bytes of printable ASCII (no NUL)
 *
 * TRUST: the other daemon is authenticated (its key is enrolled) but not
 * trusted: hw_parse() checks every field (lengths, types, a known version,
 * reserved bytes zero, names as ipcf names, strings printable, nothing left
 * over) before anything in a message is used, and copies what it returns.
 * What a field MEANS (is the port ours, the request pending, the qos within
 * our bounds) is for the caller to check. Fuzzed by fuzz/fuzz-hostwire.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipcf.h"

#define HW_VERSION 1
#define HW_CONTROL_PORT 1u   /* the control flow's port-id at both ends */
#define HW_MSG_MAX 1024      /* the largest control message */
#define HW_PROG_MAX 63       /* program names as other hosts see them */
#define HW_USER_MAX 32

enum hw_type {
        HW_HELLO = 1,
        HW_ALLOC = 2,
        HW_ACCEPT = 3,
        HW_REFUSE = 4,
        HW_CANCEL = 5,
        HW_DEALLOC = 6,
        HW_CONSUMED = 7,
        HW_DELIVERED = 8,
        HW_TYPE_MAX_,
};

/* The identity a daemon asserts for one of its processes. */
typedef struct hw_ident {
        uint32_t pid, uid, gid;
        char prog[HW_PROG_MAX + 1];
} hw_ident;

typedef struct hw_msg {
        uint8_t type;                   /* enum hw_type */
        uint64_t req;                   /* ALLOC, ACCEPT, REFUSE, CANCEL */
        uint32_t port;                  /* ALLOC, ACCEPT: the sender's EFCP port-id; DEALLOC, CONSUMED, DELIVERED */
        uint32_t timeout_ms;            /* ALLOC: 0 = none (the requester waits for ever) */
        uint8_t role;                   /* ALLOC: enum ctl_role */
        ipcf_qos qos;                   /* ALLOC (asked), ACCEPT (granted) */
        hw_ident who;                   /* ALLOC: the requester; ACCEPT: the acceptor */
        uint32_t err;                   /* REFUSE: a positive errno */
        uint32_t code;                  /* REFUSE, DEALLOC: enum ipcf_end */
        uint64_t boot;                  /* HELLO */
        uint64_t count;                 /* CONSUMED, DELIVERED */
        char name[IPCF_NAME_MAX + 1];   /* ALLOC: the name asked for; HELLO: the host's */
        char user[HW_USER_MAX + 1];     /* ALLOC: the requester's user name ("" unknown) */
        char reason[IPCF_REASON_MAX + 1]; /* REFUSE, DEALLOC */
} hw_msg;

/* Parse buf[0..len) into *ret. 0, or -EBADMSG (anything wrong: nothing of
 * *ret may be used), -EPROTONOSUPPORT (another version). */
int hw_parse(const void *buf, size_t len, hw_msg *ret);

/* Encode m into buf (cap bytes). Returns the length, or -EINVAL (a field
 * hw_parse would refuse), -ENOBUFS. Strings longer than their field are cut. */
int hw_build(const hw_msg *m, void *buf, size_t cap);

/* Is s (len bytes) a valid ipcf name (printable ASCII, no blanks, 1..127)? */
bool hw_name_valid(const char *s, size_t len);
