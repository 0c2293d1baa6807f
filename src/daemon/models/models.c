/*
 * models.c — the models module: the objects of the daemon with a name
 * (mailboxes, groups: one name space), what creating, destroying and listing
 * them share, and the resolver of their names (see models.h).
 *
 * STATE: one list of every object, in creation order (one daemon per process).
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

static struct dlist objects = DLIST_INIT(objects); /* model_obj.link */
static size_t n_objects;

/* The kinds, in the order MODEL_LIST lists them. */
static const model_kind *const kinds[] = { &mbox_kind, &mcast_kind };

static model_obj *model_find(const char *name) {
        dlist_for_each(pos, &objects) {
                model_obj *o = dlist_entry(pos, model_obj, link);
                if (strcmp(o->name, name) == 0)
                        return o;
        }
        return NULL;
}

/* For the per-user bound (MODELS_PER_USER). */
static size_t model_owned_by(uid_t uid) {
        size_t n = 0;
        dlist_for_each(pos, &objects)
                n += dlist_entry(pos, model_obj, link)->owner == uid;
        return n;
}

int model_may_create(request *rq, const char *name) {
        int r = policy_check(rq->d, name, POLICY_REGISTER, &rq->c->cred);
        if (r < 0)
                return r;
        if (model_find(name))
                return -EEXIST;
        if (n_objects >= MODELS_MAX || model_owned_by(rq->c->cred.uid) >= MODELS_PER_USER)
                return -EDQUOT;
        return 0;
}

/* Watchers learn of the name after the creator got its answer. */
static void model_announce(request *rq, const char *name) {
        request_reply_now(rq);
        observe_emit(rq->d, &(observe_ev){ .kind = OBSERVE_NAME_CHANGED, .name = name });
}

void model_add(request *rq, model_obj *o) {
        dlist_add_tail(&objects, &o->link);
        n_objects++;
        log_debug("%s %s: created by pid %d", o->kind->what, o->name, (int)rq->c->cred.pid);
        model_announce(rq, o->name);
}

void model_remove(model_obj *o) {
        dlist_del(&o->link);
        n_objects--;
}

int model_destroy(request *rq, const model_kind *kind) {
        const char *name = ctl_arg_str(rq->args, CTL_A_NAME);
        model_obj *o = model_find(name);
        if (!o || o->kind != kind)
                return -ENOENT;
        if (o->owner != rq->c->cred.uid && !client_is_privileged(rq->c))
                return -EPERM;
        char nm[IPCF_NAME_MAX + 1];
        str_copy(nm, name, sizeof(nm));
        log_debug("%s %s: destroyed by pid %d", kind->what, nm, (int)rq->c->cred.pid);
        kind->destroy(o);
        model_announce(rq, nm);
        return 0;
}

/* MODEL_LIST: every mailbox and group is listed to everyone (names are
 * public, as registrations' are to their users), by kind, in creation order,
 * paged like LIST. */
static int models_on_list(request *rq) {
        list_page page;
        list_page_init(&page, rq->reply, ctl_arg_u32(rq->args, CTL_A_LIST_SKIP, 0));
        for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
                dlist_for_each(pos, &objects) {
                        model_obj *o = dlist_entry(pos, model_obj, link);
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
        return o->kind->alloc(o, a);
}

static bool models_has(ipcfd *d, const char *name, pid_t *ret_pid) {
        if (!model_find(name))
                return false;
        if (ret_pid)
                *ret_pid = d->pid;
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
        dlist_for_each_safe(pos, tmp, &objects) {
                model_obj *o = dlist_entry(pos, model_obj, link);
                o->kind->destroy(o);
        }
        notify_shutdown(d);
}

static void models_dump(ipcfd *d, char *buf, size_t size) {
        snprintf(buf, size, "%zu mailboxes and groups", n_objects);
}

const daemon_module models_module = {
        .name = "models",
        .init = models_init,
        .shutdown = models_shutdown,
        .dump = models_dump,
};
