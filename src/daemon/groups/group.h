/*
 * group.h — shared-memory groups and named segments in the daemon
 * (docs/GROUPS.md).
 *
 * A `dgroup` is one name in the groups namespace: either a GROUP (a memfd
 * with a control page, an allow list, and the exact set of its members) or a
 * named SEGMENT (a plain memfd handed out shm_open style). The daemon creates
 * the memory, admits members by their kernel credentials, tells every member
 * of a resize or a dissolve through the member's own eventfd, and forgets a
 * dissolved group when its last member has exited or died.
 *
 * BOUNDS (fixed constants, documented in GROUPS.md): names per user, bytes of
 * group data per user, members per group and in all, names in all.
 *
 * Who may call: the dispatcher (its requests, registered by its module's
 * init) and the observers of a client's death. Single-threaded like the rest
 * of the daemon.
 */
#pragma once

#include "daemon/core/module.h"

extern const daemon_module groups_module;
