/*
 * activation.h — starting programs on demand: the last resolver
 * (flows/resolve.h, rank RESOLVE_RANK_ACTIVATION).
 *
 * When no resolver before it took an allocation of a name whose [name] rule
 * has `activate = CMD`, the daemon runs CMD with /bin/sh -c (as its own user,
 * stdin /dev/null, IPCF_RUNTIME_DIR set to its runtime dir and
 * IPCF_NO_AUTOSTART=1) and parks the allocation until the name is
 * registered. Concurrent allocations of the same name join the same
 * activation: a program is started once.
 *
 * The child is watched with a pidfd in the epoll set (no SIGCHLD, no
 * polling). Outcomes for the waiting allocations:
 *   name registered                        -> the resolvers before this one
 *                                             are asked again (EBUSY if none
 *                                             takes them)
 *   child exits first, or cannot be run    -> ENOEXEC
 *   activate_timeout_ms passes             -> ETIMEDOUT, and the child's
 *                                             process group gets SIGTERM
 * After the first outcome the activation is "detached": it only reaps the
 * child when it exits (no zombies). BOUNDS: at most ipcfd.caps.activations
 * children alive in all, 8 per name; past that allocations get EBUSY.
 */
#pragma once

#include "daemon/core/module.h"

extern const daemon_module activation_module;
