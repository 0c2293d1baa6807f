/*
 * admit.h — who gets a connection when connections are scarce: the global
 * cap on clients split into reserves, and idle connections reclaimed under
 * pressure (docs/DAEMON.md, "Connections").
 *
 * THE CAP (ipcfd.max_clients, from the fd limit) is divided so that no
 * group of users can lock the others out:
 *   - ROOT'S RESERVE: the last max_clients/64 (1 at least) are for root and
 *     the daemon's uid only;
 *   - EVERY USER'S FIRST CLIENTS_RESERVED connections come from the rest,
 *     while it has room;
 *   - THE EXCESS (each user's connections beyond its first
 *     CLIENTS_RESERVED) may fill the rest less a pool of max_clients/4,
 *     which is thus kept for other users' first connections.
 * A connection that finds no room reclaims an IDLE connection (below) of
 * the user holding the most connections — more than the newcomer's user
 * would hold, so a user never loses one to a user that has as many — and
 * takes its place; with none to reclaim it is refused.
 *
 * IDLE: a connection is idle when its client holds nothing (every
 * client.held list is empty: no flow side, registration, allocation,
 * group membership, notification socket...), has no reply it has not read
 * and no request the daemon has not read, is not paused, and has sent no
 * request for CLIENT_IDLE_NS (its connecting counts as one).
 *
 * NOTICES: the daemon says why it closes a connection it refuses or
 * reclaims — a CTL_ERROR with seq 0 (ctl.h, CONNECTION NOTICES): EDQUOT
 * (the user's clients_per_user), EUSERS (the facility is full),
 * ECONNABORTED (an idle connection reclaimed: the library reconnects) —
 * never silence.
 *
 * Who may call: client.c, at accept.
 */
#pragma once

#include <stdint.h>

#include "daemon/core/ipcfd.h"

struct user;
struct client;

/* How long a connection must have sent nothing to be idle. */
#define CLIENT_IDLE_NS (2000ull * 1000000u)
/* The connections of each user that come from the reserved pool. */
#define CLIENTS_RESERVED 8u

/* May a new connection of uid (user u, not yet charged for it) come in?
 * 0, possibly after reclaiming an idle connection to make room; or -EDQUOT
 * (the user's own quota) / -EUSERS (no room, none idle) with *ret_why the
 * notice's reason. */
int admit_connection(ipcfd *d, uid_t uid, struct user *u, const char **ret_why);

/* Tell the other end of a connection why it is closed (a notice, see
 * NOTICES) and end it: shut down both ways, then read away what it sent
 * (unread data would make the close a reset, hiding the notice; admit.c,
 * THE END OF A CONNECTION). The caller closes fd; nothing sent on it after
 * this reaches the client. Never blocks. */
void admit_notice(int fd, int err, const char *why);
