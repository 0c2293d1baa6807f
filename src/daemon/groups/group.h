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
 * Who may call: client.c's dispatch (the handlers) and client_free()
 * (group_client_gone). Single-threaded like the rest of the daemon.
 */
#pragma once

#include "common/ctl.h"

struct client;

/* Request handlers: 0, or -EBADMSG when the message breaks the protocol. */
int group_handle_create(struct client *c, const ctl_msg *m);
int group_handle_join(struct client *c, const ctl_msg *m);
int group_handle_exit(struct client *c, const ctl_msg *m);
int group_handle_dissolve(struct client *c, const ctl_msg *m);
int group_handle_resize(struct client *c, const ctl_msg *m);
int group_handle_list(struct client *c, const ctl_msg *m);
int group_handle_shm_open(struct client *c, const ctl_msg *m);
int group_handle_shm_unlink(struct client *c, const ctl_msg *m);

/* The client is gone (peer death): drop its memberships. */
void group_client_gone(struct client *c);
