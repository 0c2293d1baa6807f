/*
 * client.h — a connection of a process to the daemon (ipcfd.sock).
 *
 * The client object learns who the process is once, at accept time, from the
 * kernel (SO_PEERCRED, SO_PEERGROUPS, /proc/PID/exe), then receives requests,
 * checks their framing and fds, and hands each to the module that owns the
 * request type. Replies go back on the same socket, in order.
 *
 * LIFE CYCLE: client_free() runs when the socket ends (EOF, hang-up) or the
 * client breaks the protocol. It is where PEER DEATH is detected: every
 * object the client held is released at once — registrations (their pending
 * requests are re-dispatched or refused), allocations it was waiting for
 * (withdrawn), and its flow sides (the peer is told in shared memory and its
 * eventfds are rung).
 *
 * INVARIANT: a client with `dead` set sends nothing more and is freed by its
 * own dispatch loop as soon as the current request returns.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"

struct user;

typedef struct client {
        ipcfd *d;
        int fd;
        loop_io io;
        uint64_t id;
        cred cred;
        char prog[IPCF_NAME_MAX + 1];  /* basename of its executable */
        struct user *user;             /* charged QUOTA_CLIENTS */
        struct dlist link;             /* in ipcfd.clients */
        struct dlist regs;             /* reg.owner_link */
        struct dlist allocs;           /* alloc.req_link: allocations it asked for */
        struct dlist sides;            /* flow_side.owner_link: flow sides it holds */
        bool dead;                     /* broke the protocol or cannot be written to */
        bool dying;                    /* being freed: no new work for it */
        bool paused;                   /* not reading: its replies are not read */
} client;

/* Accept every waiting connection on the listening socket (its loop callback). */
void client_accept_all(ipcfd *d);
/* The ipcfd.accept_pause timer callback: watch the listening socket again. */
void client_accept_resume(loop_timer *t);

/* Send a finished message (and fds, which stay the caller's) to c. On any
 * failure (the client does not read its replies, or is gone) c is marked dead
 * and the error returned. */
int client_send(client *c, ctl_builder *b, const int *fds, unsigned n_fds);
/* Reply ERROR with errno -err (err is a negative errno) to the request seq. */
void client_reply_error(client *c, uint32_t seq, int err);
/* Reply a bare OK to the request seq. */
void client_reply_ok(client *c, uint32_t seq);

/* Release c and everything it holds (peer death). Idempotent. */
void client_free(client *c);

/* Drop every client (daemon shutdown). */
void client_free_all(ipcfd *d);

/* Is c entitled to see every object (root, or the daemon's own uid)? */
bool client_is_privileged(const client *c);
