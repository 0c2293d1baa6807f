/*
 * models.c — the models module: its parts' init (notifications, mailboxes,
 * groups), the listing of model objects (MODEL_LIST) and the resolver of
 * their names (see models.h). The objects themselves: modelobj.c.
 */
#include "daemon/models/models.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/listpage.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"

/* The kinds, in the order MODEL_LIST lists them. */
static const model_kind *const kinds[] = { &mbox_kind, &mcast_kind };

/* MODEL_LIST: every mailbox and group is listed to everyone (names are
 * public, as registrations' are to their users), by kind, in creation order,
 * paged like LIST. */
static int models_on_list(request *rq) {
        list_page page;
        list_page_init(&page, rq->reply, ctl_arg_u32(rq->args, CTL_A_LIST_SKIP, 0));
        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
                for (model_obj *o = model_next(NULL); o; o = model_next(o)) {
                        if (o->kind != kinds[k])
                                continue;
                        struct ctl_model_entry_wire e;
                        memset(&e, 0, sizeof(e));
                        str_copy(e.name, o->name, sizeof(e.name));
                        e.owner_uid = htole32(o->owner);
                        o->kind->entry(o, &e);
                        list_page_put(&page, CTL_A_MODEL_ENTRY, &e, sizeof(e));
                }
        }
        list_page_end(&page);
        return 0;
}

/* The resolver: an allocation of a model's role to the name of an object of
 * that kind is the object's to accept. */
static int models_resolve(ipcfd *d, alloc *a) {
        model_obj *o = model_find(a->name);
        if (!o || !(o->kind->roles & RESOLVE_ROLE(a->role)))
                return RESOLVE_NEXT;
        /* An allocation from another host reaches only the objects of the
         * creators its origin lets serve (remote_register), as for a
         * registration (names/registry.c) */
        cred creator = { .uid = o->owner, .gid = o->owner_gid };
        if (!alloc_may_serve(a, &creator))
                return RESOLVE_NEXT;
        return o->kind->alloc(o, a);
}

static bool models_has(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid) {
        model_obj *o = model_find(name);
        if (!o)
                return false;
        *ret_pid = d->pid; /* the daemon serves it, */
        *ret_uid = o->owner; /* on its creator's behalf */
        return true;
}

static const resolver models_resolver = {
        .name = "models",
        .rank = RESOLVE_RANK_MODELS,
        .roles = RESOLVE_ROLE(CTL_ROLE_MBOX_SEND) | RESOLVE_ROLE(CTL_ROLE_MBOX_RECV) |
                 RESOLVE_ROLE(CTL_ROLE_MCAST),
        .resolve = models_resolve,
        .has = models_has,
};

static int models_init(ipcfd *d) {
        static const method methods[] = { { CTL_MODEL_LIST, models_on_list } };
        int r = notify_init(d);
        if (r == 0)
                r = mbox_init(d);
        if (r == 0)
                r = mcast_init(d);
        if (r == 0)
                r = dispatch_add(d, methods, ARRAY_SIZE(methods));
        if (r == 0)
                r = resolver_add(&models_resolver);
        return r;
}

/* Shutdown: objects first (they close their broker sides), then the rest. */
static void models_shutdown(ipcfd *d) {
        for (model_obj *o = model_next(NULL), *next; o; o = next) {
                next = model_next(o);
                o->kind->destroy(o);
        }
        notify_shutdown(d);
}

static void models_dump(ipcfd *d, char *buf, size_t size) {
        size_t n = model_count();
        snprintf(buf, size, "%zu %s", n, n == 1 ? "mailbox or group" : "mailboxes and groups");
}

const daemon_module models_module = {
        .name = "models",
        .init = models_init,
        .shutdown = models_shutdown,
        .dump = models_dump,
};
