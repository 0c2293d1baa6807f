/*
 * grpwire.h — strict parsing of the shared-memory group requests of the
 * control protocol (GROUP_CREATE and the name of the others). Untrusted
 * input: pure functions, fuzzed by fuzz/fuzz-group.c. Used by the daemon.
 *
 * Returns everywhere: 0; -EBADMSG for a protocol violation (a known
 * attribute of the wrong size, a string that is not one NUL-terminated
 * string: the daemon drops the client); -EINVAL for well-formed but bad
 * values (the daemon answers EINVAL). Framing errors win over bad values.
 */
#pragma once

#include "common/ctl.h"

typedef struct grpwire_create {
        const char *name;                        /* borrowed from the message */
        uint64_t size;
        uint32_t flags;
        const char *names[GROUP_ALLOW_MAX];      /* borrowed */
        uint32_t uids[GROUP_ALLOW_MAX], gids[GROUP_ALLOW_MAX];
        unsigned n_names, n_uids, n_gids;
} grpwire_create;

/* GROUP_CREATE: NAME, SHM_SIZE (1..GRPSHM_SIZE_MAX), GROUP_FLAGS (0),
 * ALLOW_NAME / ALLOW_UID / ALLOW_GID at most GROUP_ALLOW_MAX each. */
int grpwire_parse_create(const ctl_msg *m, grpwire_create *ret);

/* The NAME of any other group request: a valid ipcf name. */
int grpwire_parse_name(const ctl_msg *m, const char **ret);
