/*
 * client.h — a connection of a process to the daemon (ipcfd.sock).
 *
 * The client object learns who the process is once, at accept time, from the
 * kernel (SO_PEERCRED, SO_PEERGROUPS, /proc/PID/exe), then receives requests
 * and hands each to the dispatcher (dispatch.h), which checks it against the
 * protocol schema and calls the handler a module registered for its type.
 * Replies go back on the same socket, in order. client.c knows no service.
 *
 * WHAT A CLIENT HOLDS: modules link the objects a client holds (its
 * registrations, allocations, flow sides...) into the client's own lists, one
 * per kind a module registered with client_hold_kind(); nothing else about a
 * module is in the client.
 *
 * LIFE CYCLE: client_free() runs when the socket ends (EOF, hang-up) or the
 * client breaks the protocol. It is where PEER DEATH is detected: it emits
 * OBSERVE_CLIENT_GONE (observe.h), and every module releases at once what the
 * client held — flow sides first (the peer is told in shared memory and its
 * eventfds are rung), then allocations, registrations, memberships...
 *
 * INVARIANT: a client with `dead` set sends nothing more and is freed by its
 * own dispatch loop as soon as the current request returns.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"
#include "daemon/core/module.h"

struct user;

typedef struct client {
        ipcfd *d;
        int fd;
        loop_io io;
        uint64_t id;
        cred cred;
        char prog[IPCF_NAME_MAX + 1];  /* basename of its executable */
        struct user *user;             /* charged QUOTA_CLIENTS */
        struct dlist link;             /* in ipcfd.clients, oldest activity first */
        uint64_t last_ns;              /* its last request (or its connecting) */
        struct dlist held[CLIENT_HOLDS_MAX]; /* objects it holds, by kind (client_hold_kind) */
        bool dead;                     /* broke the protocol or cannot be written to */
        bool dying;                    /* being freed: no new work for it */
        bool paused;                   /* not reading: its replies are not read */
} client;

/* Register a kind of object clients hold (label: "flow sides", for the
 * SIGUSR1 dump: a plural ending in 's', which the dump drops for one —
 * "1 flow side"). Returns its index into client.held, or -ENOSPC. Called from
 * a module's init. */
int client_hold_kind(ipcfd *d, const char *label);

/* Accept every waiting connection on the listening socket (its loop callback). */
void client_accept_all(ipcfd *d);
/* The ipcfd.accept_pause timer callback: watch the listening socket again. */
void client_accept_resume(loop_timer *t);

/* Send a finished message (and fds, which stay the caller's) to c. On any
 * failure (the client does not read its replies, or is gone) c is marked dead
 * and the error returned. For replies: dispatch.c. */
int client_send(client *c, ctl_builder *b, const int *fds, unsigned n_fds);

/* Release c and everything it holds (peer death). Idempotent. */
void client_free(client *c);

/* Drop every client (daemon shutdown). */
void client_free_all(ipcfd *d);

/* Is c entitled to see and control every object (root, or the daemon's own uid)? */
bool client_is_privileged(const client *c);

/* The core as a module: its own request (HELLO). First in the table. */
extern const daemon_module client_module;

/* One line per client on stderr: who, and how many objects of each kind it
 * holds (the SIGUSR1 dump). */
void client_dump_all(ipcfd *d);
