/*
 * activation.h — starting programs on demand.
 *
 * When an allocation finds no registration for a name whose [name] rule has
 * `activate = CMD`, the daemon runs CMD with /bin/sh -c (as its own user,
 * stdin /dev/null, IPCF_RUNTIME_DIR set to its runtime dir and
 * IPCF_NO_AUTOSTART=1) and parks the allocation until the name is
 * registered. Concurrent allocations of the same name join the same
 * activation: a program is started once.
 *
 * The child is watched with a pidfd in the epoll set (no SIGCHLD, no
 * polling). Outcomes for the waiting allocations:
 *   name registered                        -> they are dispatched to it
 *   child exits first, or cannot be run    -> ENOEXEC
 *   activate_timeout_ms passes             -> ETIMEDOUT, and the child's
 *                                             process group gets SIGTERM
 * After the first outcome the activation is "detached": it only reaps the
 * child when it exits (no zombies). BOUNDS: at most ipcfd.caps.activations
 * children alive in all, 8 per name; past that allocations get EBUSY.
 */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "common/conf.h"
#include "daemon/core/ipcfd.h"

struct alloc;

typedef struct activation {
        ipcfd *d;
        struct dlist link;             /* ipcfd.activations */
        char name[IPCF_NAME_MAX + 1];
        pid_t pid;
        int pidfd;
        loop_io io;
        loop_timer timer;
        bool starting;                 /* waiting for the name to be registered */
        struct dlist waiting;          /* alloc.act_link */
} activation;

/* Park a on the activation of its name, starting one if none is starting.
 * Returns 0 (a waits), or -errno: -ENOEXEC the program cannot be started,
 * -EBUSY too many activations. */
int activation_join(ipcfd *d, const conf_rule *rule, struct alloc *a);

/* a no longer waits (timed out, withdrawn). */
void activation_leave(struct alloc *a);

/* name was just registered: dispatch the allocations waiting for it. */
void activation_registered(ipcfd *d, const char *name);

/* SIGCHLD arrived: reap children watched without a pidfd (fallback for
 * kernels without pidfd_open). */
void activation_sigchld(ipcfd *d);

/* Forget every activation (daemon shutdown; the children keep running). */
void activation_free_all(ipcfd *d);
