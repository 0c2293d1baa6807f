/*
 * models.c — the glue of the communication models: their state object, the
 * dispatch of their requests, the ALLOC hook for mailbox/group roles, and
 * the LIST of mailboxes and groups (see models.h).
 *
 * Who may call: client.c, alloc.c, flow.c, registry.c, main.c (one line each).
 */
#include "daemon/models/models.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/flows/flow.h"
#include "daemon/core/log.h"

/* Made lazily so a daemon that never sees a model request pays nothing, and
 * so the hooks can test d->models for "nothing to do". */
models *models_of(ipcfd *d) {
        if (!d->models) {
                models *ms = calloc(1, sizeof(*ms));
                if (!ms)
                        return NULL;
                dlist_init(&ms->sub_list);
                dlist_init(&ms->mboxes);
                dlist_init(&ms->groups);
                d->models = ms;
        }
        return d->models;
}

/* Our request types (ctl.h, MODELS); 1 tells client.c "not ours". */
int models_dispatch(client *c, const ctl_msg *m) {
        switch (m->type) {
        case CTL_NOTIFY_OPEN: return notify_handle_open(c, m);
        case CTL_WATCH: return notify_handle_watch(c, m, true);
        case CTL_UNWATCH: return notify_handle_watch(c, m, false);
        case CTL_MBOX_CREATE: return mbox_handle_create(c, m);
        case CTL_MBOX_DESTROY: return mbox_handle_destroy(c, m);
        case CTL_MCAST_CREATE: return mcast_handle_create(c, m);
        case CTL_MCAST_DESTROY: return mcast_handle_destroy(c, m);
        case CTL_MODEL_LIST: return models_handle_list(c, m);
        default: return 1;
        }
}

/* Roles the broker serves; the others (CALL, DGRAM, FLOW) go to registrations. */
bool models_role(unsigned role) {
        return role == CTL_ROLE_MBOX_SEND || role == CTL_ROLE_MBOX_RECV || role == CTL_ROLE_MCAST;
}

/* Route an ALLOC with a model role (policy and name already checked by
 * alloc.c); the modules reply themselves and take the reply socket. */
int models_alloc(client *c, const ctl_msg *m, const char *name, const ipcf_qos *qos, unsigned role,
                 int *reply_fd) {
        if (models_of(c->d) && role == CTL_ROLE_MCAST)
                return mcast_alloc(c, name, qos, reply_fd, m->seq);
        if (models_of(c->d))
                return mbox_alloc(c, name, qos, role, reply_fd, m->seq);
        *reply_fd = safe_close(*reply_fd);
        client_reply_error(c, m->seq, -ENOMEM);
        return 0;
}

/* Flow sides of c end through flow.c (the broker sees their end records);
 * only the notification state is c's own. */
void models_client_gone(client *c) {
        notify_client_gone(c);
}

/* Shutdown: objects first (they close their broker sides), then the rest. */
void models_free_all(ipcfd *d) {
        if (!d->models)
                return;
        mbox_free_all(d);
        mcast_free_all(d);
        notify_free_all(d);
        idmap_deinit(&d->models->subs);
        free(d->models);
        d->models = NULL;
}

/* For the per-user bound on mailboxes + groups (MODELS_PER_USER). */
size_t models_owned_by(ipcfd *d, uid_t uid) {
        return mbox_count_owned(d, uid) + mcast_count_owned(d, uid);
}

struct list_ctx {
        ctl_builder *b;
        uint32_t skip;
        bool more;
};

/* One entry into the reply, paged like LIST (LIST_SKIP, LIST_MORE). */
static void list_put(void *arg, const struct ctl_model_entry_wire *e) {
        struct list_ctx *x = arg;
        if (x->skip) {
                x->skip--;
                return;
        }
        /* Keep room for LIST_MORE. */
        if (x->more || x->b->len + 4 + sizeof(*e) + 3 + 8 > CTL_MSG_MAX) {
                x->more = true;
                return;
        }
        ctl_put(x->b, CTL_A_MODEL_ENTRY, e, sizeof(*e));
}

/* Every mailbox and group is listed to everyone: names are public, as
 * registrations' are to their users. */
int models_handle_list(client *c, const ctl_msg *m) {
        struct list_ctx x = { 0 };
        int r = ctl_get_u32(m, CTL_A_LIST_SKIP, &x.skip);
        if (r == -EBADMSG)
                return r;
        models *ms = models_of(c->d);
        x.b = malloc(sizeof(*x.b));
        if (!ms || !x.b) {
                free(x.b);
                return client_reply_error(c, m->seq, -ENOMEM), 0;
        }
        ctl_begin(x.b, CTL_OK, m->seq);
        mbox_list(c->d, list_put, &x);
        mcast_list(c->d, list_put, &x);
        ctl_put_u32(x.b, CTL_A_LIST_MORE, x.more);
        client_send(c, x.b, NULL, 0);
        free(x.b);
        return 0;
}
