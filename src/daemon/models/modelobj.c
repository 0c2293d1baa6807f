/*
 * modelobj.c — the daemon's model objects (mailboxes, groups): one list, one
 * name space, and what creating and destroying them share (see models.h).
 * The kinds (mbox.c, mcast.c) call it; models.c lists and resolves through it.
 *
 * STATE: one list of every object, in creation order (one daemon per process).
 */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/models/models.h"

static struct dlist objects = DLIST_INIT(objects); /* model_obj.link */
static size_t n_objects;

size_t model_count(void) { return n_objects; }

model_obj *model_next(const model_obj *o) {
        const struct dlist *at = o ? &o->link : &objects;
        return at->next == &objects ? NULL : dlist_entry(at->next, model_obj, link);
}

model_obj *model_find(const char *name) {
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
        if (r == 0)
                r = policy_name_local(rq->d, name); /* name@<a host>: unreachable if made here */
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
        o->owner_gid = rq->c->cred.gid;
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
        uint64_t untold = kind->destroy(o);
        if (kind == &mbox_kind)
                ctl_put_u64(rq->reply, CTL_A_UNDELIVERED, untold);
        model_announce(rq, nm);
        return 0;
}
