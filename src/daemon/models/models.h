/*
 * models.h — the daemon's communication models beyond flows: mailboxes
 * (mbox.c) and multicast groups (mcast.c), objects of the daemon with a name
 * whose flows end in the daemon itself (the broker, flows/broker.h), and
 * notifications (notify.c). docs/MODELS.md.
 *
 * MODEL OBJECTS: a mailbox and a group are both a `model_obj` of a kind
 * (model_kind: the roles it serves, how it accepts a flow, its listing entry,
 * its destruction); modelobj.c keeps one list of them (one name space) and
 * does what creating and destroying share (policy, name taken, bounds, who
 * may destroy); models.c lists them (MODEL_LIST) and resolves their names
 * for allocations of their roles (a resolver, flows/resolve.h, rank
 * RESOLVE_RANK_MODELS). A new model is a new kind: a file beside mbox.c, its
 * kind, its requests in the schema, one line in models.c's init and list of
 * kinds.
 *
 * Every function here is called from the daemon's single thread.
 *
 * BOUNDS (every resource a client can make the daemon hold):
 *   notification sockets   one per client
 *   watches                NOTIFY_WATCH_MAX per client
 *   mailboxes + groups     MODELS_PER_USER per uid, MODELS_MAX in all
 *   queued messages        each mailbox/group's own max_msgs / max_bytes
 *                          (capped, see mbox.c / mcast.c)
 *   broker flows           the flow quota of the client + BROKER_FLOWS_MAX
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "daemon/core/ipcfd.h"
#include "daemon/core/module.h"

struct alloc;
struct request;

#define NOTIFY_WATCH_MAX 64
#define MODELS_PER_USER 64
#define MODELS_MAX 1024

typedef struct model_obj model_obj;

typedef struct model_kind {
        const char *what;              /* "mbox", for logs */
        uint32_t roles;                /* RESOLVE_ROLE bits of the roles it serves */
        /* Accept (or fail) allocation a to o, of one of its roles. Returns 0:
         * a was taken (accepted or failed). */
        int (*alloc)(model_obj *o, struct alloc *a);
        /* The MODEL_LIST entry of o (kind-specific fields; name and owner are
         * filled by models.c). */
        void (*entry)(const model_obj *o, struct ctl_model_entry_wire *e);
        /* Destroy o (its flows end; then free it, deferred). Returns how
         * many messages it discarded that nobody else is told of (their
         * senders had left): the destroyer is (MBOX_DESTROY's
         * UNDELIVERED). */
        uint64_t (*destroy)(model_obj *o);
} model_kind;

/* The common head of a mailbox or group (embedded first). */
struct model_obj {
        char name[IPCF_NAME_MAX + 1];
        struct dlist link;             /* the list of every object (models.c) */
        ipcfd *d;
        uid_t owner;
        gid_t owner_gid;               /* the creator's primary group (remote_register) */
        const model_kind *kind;
};

/* modelobj.c: the object of name, or NULL; the one after o (NULL: the
 * first), in creation order (o may be destroyed once its next is taken);
 * how many. */
model_obj *model_find(const char *name);
model_obj *model_next(const model_obj *o);
size_t model_count(void);
/* CREATE of a kind: the checks every kind shares — the register policy of
 * the name, one name space, the per-user and global bounds. Returns 0 (o may
 * be made) or -errno to answer. */
int model_may_create(struct request *rq, const char *name);
/* Put o (its name, owner and kind set) on the list, answer OK to rq, then
 * tell watchers (NAME_UP). */
void model_add(struct request *rq, model_obj *o);
/* DESTROY of a kind: the object of rq's NAME and that kind, if the client
 * may destroy it (its creator's uid, or privileged), is destroyed; OK is
 * answered, then watchers are told (NAME_DOWN). Returns 0 or -ENOENT, -EPERM. */
int model_destroy(struct request *rq, const model_kind *kind);
/* Unlink o from the list (its kind's destroy calls it). */
void model_remove(model_obj *o);

/* The notifications' part (notify.c): requests and observers. */
int notify_init(ipcfd *d);
void notify_shutdown(ipcfd *d);

/* The mailboxes' and groups' kinds and requests (mbox.c, mcast.c). */
extern const model_kind mbox_kind, mcast_kind;
int mbox_init(ipcfd *d);
int mcast_init(ipcfd *d);

extern const daemon_module models_module;
