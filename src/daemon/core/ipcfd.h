/*
 * ipcfd.h — the daemon's top-level object and the types shared by its
 * modules.
 *
 * OBJECTS (each module owns one kind; see docs/DAEMON.md):
 *   client      a connection on ipcfd.sock                    (client.c)
 *   reg         a registration of a name by a client          (registry.c)
 *   alloc       an allocation request in progress             (alloc.c)
 *   flow        a shared-memory flow and its two sides        (flow.c)
 *   activation  a program started on demand                   (activation.c)
 *   user        per-uid accounting of the above               (quota.c)
 *   dgroup      a shared-memory group / named segment, members (group.c;
 *               its state is private to group.c, bounded by constants there)
 *
 * The daemon is one thread around one event loop; no locking anywhere.
 * Every object a client can make the daemon create is charged to a user
 * (quota.c) and counted against a global cap (ipcfd.caps), so a client can
 * never exhaust the daemon's memory or file descriptors.
 */
#pragma once

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/conf.h"
#include "daemon/core/dlist.h"
#include "daemon/core/idmap.h"
#include "daemon/core/loop.h"

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

/* Global caps, derived at start from RLIMIT_NOFILE. */
typedef struct ipcfd_caps {
        size_t clients;
        size_t flows;
        size_t allocs;
        size_t regs;
        size_t activations;
} ipcfd_caps;

#define REG_BUCKETS 1024
/* Withdrawn requests remembered (registry.c), whatever their registration. */
#define TOMBS_MAX 65536

struct tomb {
        struct idmap_node node; /* node.id: the REQ_ID */
        uint64_t reg_id;        /* the registration it was pending on */
};

typedef struct ipcfd {
        loop *loop;
        conf conf;                  /* principals resolved by policy_resolve() */
        uid_t uid;                  /* the daemon's own identity */
        gid_t gid;
        pid_t pid;
        uint64_t start_ns;
        char runtime_dir[PATH_MAX];
        uint64_t next_id;           /* ids of regs, allocs and flows; never reused */
        bool shutdown;              /* tearing down: tell nobody anything */
        ipcfd_caps caps;

        int listen_fd;
        loop_io listen_io;
        loop_timer accept_pause;    /* accept() hit EMFILE: retry later */

        struct dlist clients;       /* client.link */
        size_t n_clients;
        struct dlist regs;          /* reg.link, every registration */
        struct dlist reg_buckets[REG_BUCKETS]; /* reg.name_link, hashed by name */
        size_t n_regs;
        idmap reg_ids;
        struct tomb *tombs;         /* ring of TOMBS_MAX, allocated on first use */
        uint64_t n_tombs;           /* ever added; the ring slot is n % TOMBS_MAX */
        idmap tomb_ids;
        idmap alloc_ids;
        size_t n_allocs;
        struct dlist flows;         /* flow.link */
        idmap flow_ids;
        size_t n_flows;
        struct dlist activations;   /* activation.link */
        size_t n_activations;
        struct dlist users;         /* user.link */
        struct models *models;      /* mailboxes, groups, notifications (models.h) */
} ipcfd;

/* A fresh id for a reg, alloc or flow. */
static inline uint64_t ipcfd_new_id(ipcfd *d) { return ++d->next_id; }
