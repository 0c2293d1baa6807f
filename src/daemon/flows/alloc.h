/*
 * alloc.h — the allocation pipeline: from ALLOC to the one final message on
 * the requester's reply socket.
 *
 * STATE MACHINE of an `alloc` (docs/DAEMON.md has the picture):
 *
 *   ALLOC ok ─► dispatch ─┬─► PENDING (REQUEST sent to a reg) ─┬─ ACCEPT ─► HANDOVER
 *                         ├─► WAIT_ACT (activation running) ───┘  REFUSE ─► ERROR ECONNREFUSED
 *                         └─► ERROR (ENOENT, EBUSY, ENOEXEC)
 *   PENDING/WAIT_ACT: timer ─► ERROR ETIMEDOUT; requester gone ─► withdrawn;
 *                     target reg gone ─► re-dispatch, else ERROR ECONNREFUSED.
 *   HANDOVER: FLOW sent on the reply socket; CTL_OK back ─► done;
 *             hang-up without OK ─► the allocator gave up: end[0] = DEALLOC.
 *
 * Exactly one outcome message (FLOW or ERROR) is ever written to the reply
 * socket; then the daemon closes it (after the handover OK for FLOW).
 * INVARIANT: an alloc holds a QUOTA_PENDING charge until its outcome, and
 * its unbounded-bytes charge until handed to the flow or failed.
 */
#pragma once

#include <stdint.h>

#include "common/ctl.h"
#include "common/ring.h"
#include "daemon/core/ipcfd.h"

struct client;
struct reg;
struct flow;
struct user;
struct activation;

enum alloc_state {
        ALLOC_NEW,
        ALLOC_WAIT_ACT,
        ALLOC_PENDING,
        ALLOC_HANDOVER,
};

typedef struct alloc {
        struct idmap_node node;        /* node.id: ALLOC_ID == REQ_ID */
        ipcfd *d;
        enum alloc_state state;
        struct client *requester;      /* NULL once detached (handover only) */
        struct dlist req_link;         /* client.allocs */
        cred cred;                     /* the requester's */
        char prog[IPCF_NAME_MAX + 1];  /* the requester's program name */
        struct user *user;             /* the requester's: charged PENDING, BYTES */
        uint64_t bytes;                /* shared-memory charge held (bytes_kind) */
        int bytes_kind;                /* QUOTA_BYTES (unbounded) or QUOTA_RING_BYTES */
        bool pending_charged;
        uint32_t seq;                  /* of the ALLOC, echoed on the outcome */
        char name[IPCF_NAME_MAX + 1];
        ipcf_qos qos;                  /* normalised */
        uint32_t role;                 /* enum ctl_role (the ALLOC's ROLE) */
        flow_layout layout;
        int reply;                     /* the reply socket */
        loop_io io;
        loop_timer timer;              /* TIMEOUT_MS; handover guard */
        struct reg *target;            /* PENDING: the reg deciding */
        struct dlist target_link;      /* reg.pending_allocs */
        struct activation *act;        /* WAIT_ACT */
        struct dlist act_link;         /* activation.waiting */
        uint64_t flow_id;              /* HANDOVER: the flow handed over */
} alloc;

/* Takes the reply socket *reply_fd in every case (sets it to -1). */
int alloc_handle_alloc(struct client *c, const ctl_msg *m, int *reply_fd);
int alloc_handle_accept(struct client *c, const ctl_msg *m);
int alloc_handle_refuse(struct client *c, const ctl_msg *m);

/* Send a to a registration of its name (without activation) — used when the
 * activation it waited for registered the name, or its target went away.
 * If none can take it: fail with err/reason/end_code (err < 0). */
void alloc_redispatch(alloc *a, int err, const char *reason, uint32_t end_code);

/* Fail a with err (< 0), optional reason and end code: the ERROR outcome. */
void alloc_fail(alloc *a, int err, const char *reason, uint32_t end_code);

/* The requester is gone: withdraw every alloc of c. */
void alloc_client_gone(struct client *c);

/* Release every alloc (daemon shutdown): nothing is sent. */
void alloc_free_all(ipcfd *d);
