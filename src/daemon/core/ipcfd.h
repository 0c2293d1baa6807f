/*
 * ipcfd.h — the daemon's top-level object: what the core holds, and the
 * types every module shares.
 *
 * THE CORE (src/daemon/core/) knows no service. It runs the loop, accepts
 * and identifies clients (client.c), hands each request to the handler a
 * module registered for its type (dispatch.h, made from the protocol schema
 * common/ctlschema.h), tells modules of events they subscribed to
 * (observe.h), and keeps per-uid accounting (quota.h) and the access policy
 * (policy.h). Every service is a module (module.h; the table of modules is
 * src/daemon/modules.c): flows/ (flows, their ends, allocation and the
 * resolver list), names/ (registrations, activation), models/ (mailboxes,
 * multicast, notifications), groups/. A module keeps its objects in its own
 * files (one daemon per process: a module's state is file-level), reaches
 * clients only through the core's API, and other modules only through the
 * seams: method table, observers, resolvers (flows/resolve.h), flow-end ops
 * (flows/flow.h).
 *
 * The daemon is one thread around one event loop; no locking anywhere.
 * Every object a client can make the daemon create is charged to a user
 * (quota.c) and bounded by a global cap (a module's cap is at most fd_share,
 * below), so a client can never exhaust the daemon's memory or descriptors.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/conf.h"
#include "common/ctl.h"
#include "daemon/core/dlist.h"
#include "daemon/core/idmap.h"
#include "daemon/core/loop.h"
#include "daemon/core/observe.h"

struct request;

/* The credentials of a process as the kernel tells them (SO_PEERCRED and
 * SO_PEERGROUPS), never as the process claims. */
#define CRED_GROUPS_MAX 64
typedef struct cred {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        unsigned n_groups;                 /* supplementary groups (may be cut) */
        gid_t groups[CRED_GROUPS_MAX];
} cred;

/* Is gid the primary or a supplementary group of cr, as the kernel reported
 * them at connect time? (Group changes after connecting are not seen: the
 * usual semantics of credentials passed over a socket.) The one membership
 * check of the daemon: access policy and group admission both use it. */
bool cred_in_group(const cred *cr, gid_t gid);

/* Kinds of objects a client can hold, for the per-client lists (client.h). */
#define CLIENT_HOLDS_MAX 8

typedef struct ipcfd {
        loop *loop;
        conf conf;                  /* principals resolved by policy_resolve() */
        uid_t uid;                  /* the daemon's own identity */
        gid_t gid;
        pid_t pid;
        uint64_t start_ns;
        char runtime_dir[PATH_MAX];
        uint64_t next_id;           /* ids of every object clients name; never reused */
        bool shutdown;              /* tearing down: tell nobody anything */
        const char *host_name;      /* this host's name among hosts (set by the hosts
                                     * module; NULL until then) */
        /* Does an allocation of "NAME@host" go to that host, or here without
         * the "@host" (the hosts module's "pinned" resolver: this host and
         * the hosts enrolled with it)? NULL: no host is, names with an '@'
         * are ordinary names (local only). Set by the hosts module. */
        bool (*host_pins)(const char *host);
        /* Descriptor budget: a tenth of the fd limit less a reserve (main.c).
         * Each module bounds what it holds descriptors for by it (and by its
         * own maximum), so all of them together stay below the limit. */
        size_t fd_share;
        size_t max_clients;

        int listen_fd;
        loop_io listen_io;
        loop_timer accept_pause;    /* accept() hit EMFILE: retry later */

        struct dlist clients;       /* client.link */
        size_t n_clients;
        struct dlist users;         /* user.link */

        /* The method table (dispatch.h): a handler per request type. */
        int (*methods[CTL_TYPE_MAX_])(struct request *rq);
        /* Observers (observe.h), in subscription order. */
        observer_fn observers[OBSERVE_KINDS_][OBSERVERS_MAX];
        unsigned n_observers[OBSERVE_KINDS_];
        /* The kinds of per-client lists (client_hold_kind()), by label. */
        const char *hold_labels[CLIENT_HOLDS_MAX];
        unsigned n_holds;
} ipcfd;

/* A fresh id for an object clients name (registration, allocation, flow,
 * member...). */
static inline uint64_t ipcfd_new_id(ipcfd *d) { return ++d->next_id; }
