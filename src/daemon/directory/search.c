/*
 * search.c — the resolver "directory" (dirmodule.h): an allocation of a
 * name no local resolver took goes to the hosts the directory says publish
 * it, before the "hosts" resolver's search lists.
 *
 * WARM (the cache answers, no round trip): the name's hosts are taken
 * round robin from the next one (each allocation starts one further), each
 * kept only if trust.c lets it be used (enrolled here with the key whose
 * fingerprint the record carries; with trust_keys, enrolled now); they are asked in that order (hosts/remote.c remote_ask: a host
 * that is down is skipped, ENOENT asks the next). Usable hosts but none
 * reachable: EHOSTUNREACH "host unreachable". None usable, or the cache
 * knows the name is nowhere: the next resolver.
 *
 * COLD (the cache cannot tell: not listed yet, the watch down, the cache
 * full): the allocation is held while one range read asks etcd, with the
 * deadline request_timeout_ms, cut to end before the allocation's own
 * timeout. etcd unreachable: the allocation fails with ENOLINK "directory
 * unreachable" (distinct from ENOENT and ETIMEDOUT); every endpoint
 * answering what is not etcd's: EPROTO "directory answer not understood";
 * etcd refusing us: EACCES "directory refused access"; another error etcd
 * reported: EREMOTEIO "directory error"; DIR_QUERIES_MAX cold lookups in
 * flight already: EAGAIN. Found: as warm. Not found: the resolvers after
 * this one.
 *
 * WATCHES (has): a name is up through the directory when the cache has a
 * record of it an allocation could use (trust.c dir_record_reachable).
 *
 * Never: an allocation that came from another host (no forwarding); a
 * "name@host" of an enrolled host (the "pinned" resolver took it).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/directory/dirmodule.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"
#include "daemon/hosts/hosts.h"

/* A cold lookup holding its allocation. */
typedef struct dir_hold {
        alloc *a;
        dir_query *q;            /* NULL once answered */
        struct dlist link;       /* held */
} dir_hold;

static const resolver dir_resolver;
static struct dlist held = DLIST_INIT(held);
static uint32_t request_ms;

/* Ask the usable hosts among recs[0..n) for a. As a resolver, with
 * RESOLVE_NEXT when none is usable. */
static int ask_hosts(alloc *a, const dir_record *recs, unsigned n) {
        const char *names[CONF_HOSTLIST_MAX];
        unsigned k = 0;
        for (unsigned i = 0; i < n && k < CONF_HOSTLIST_MAX; i++)
                if (dir_record_use(&recs[i]))
                        names[k++] = recs[i].host;
        if (k == 0)
                return RESOLVE_NEXT;
        int r = remote_ask(a, names, k);
        if (r == RESOLVE_NEXT) {
                alloc_fail(a, -EHOSTUNREACH, "host unreachable", IPCF_END_PEER_DIED);
                return 0;
        }
        return r;
}

/* From the cache: the name's hosts, one lap round robin (the next
 * allocation starts one host further). 1 if the cache had some (*ret_n of
 * them, at most CONF_HOSTLIST_MAX), else dir_lookup's -ENOENT or -EAGAIN. */
static int cached_hosts(const char *name, dir_record *recs, unsigned *ret_n) {
        static dir_record rec;
        unsigned n = 0;
        for (unsigned i = 0; i <= CONF_HOSTLIST_MAX; i++) {
                int r = dir_lookup(the_directory, name, NULL, &rec);
                if (r != 1) {
                        if (i == 0)
                                return r;
                        break;
                }
                if (i > 0 && strcmp(rec.host, recs[0].host) == 0)
                        break; /* a whole lap */
                if (n < CONF_HOSTLIST_MAX)
                        recs[n++] = rec;
        }
        *ret_n = n;
        return 1;
}

/* The lookup's answer for a (held by nobody): taken, or failed. */
static void finish(alloc *a, int r) {
        if (r == RESOLVE_NEXT)
                r = resolve_walk_after(a->d, a, a->role, &dir_resolver);
        if (r != 0)
                alloc_fail(a, r == RESOLVE_NEXT ? -ENOENT : r, NULL, 0);
}

/* The error and reason of a cold lookup that etcd did not answer with a
 * listing (ENOLINK has its own, below): one errno per cause, so that
 * ipcf_alloc's list (ipcf.h) is short and none is mistaken for another
 * meaning (etcd's INVALID_ARGUMENT is not the caller's -EINVAL). */
static int cold_failure(int err, const char **ret_why) {
        switch (err) {
        case -EPROTO:
        case -EMSGSIZE:
                *ret_why = "directory answer not understood"; /* every endpoint: not etcd's */
                return -EPROTO;
        case -EACCES:
                *ret_why = "directory refused access";        /* etcd's authentication or RBAC */
                return -EACCES;
        case -ENOMEM:
                *ret_why = NULL;
                return -ENOMEM;
        default:
                *ret_why = "directory error";                 /* another error etcd reported */
                return -EREMOTEIO;
        }
}

static void cold_done(void *ctx, int err, const dir_record *rec) {
        dir_hold *s = ctx;
        alloc *a = s->a;
        s->q = NULL; /* the directory is done with it */
        alloc_unhold(a); /* frees s */
        if (err == -ENOLINK) {
                alloc_fail(a, -ENOLINK, "directory unreachable", 0);
                return;
        }
        if (err == -ENOENT) {
                finish(a, RESOLVE_NEXT);
                return;
        }
        if (err < 0) {
                const char *why;
                err = cold_failure(err, &why);
                alloc_fail(a, err, why, 0);
                return;
        }
        static dir_record recs[CONF_HOSTLIST_MAX];
        unsigned n;
        if (cached_hosts(a->name, recs, &n) != 1) { /* the cache is full: the answer's record */
                recs[0] = *rec;
                n = 1;
        }
        finish(a, ask_hosts(a, recs, n));
}

/* The deadline of a cold lookup: request_timeout_ms, ending before a's own
 * timeout (by a tenth of what is left, at most 50 ms) so that the distinct
 * error wins. */
static uint64_t cold_deadline(const alloc *a) {
        uint64_t now = now_ns(), dl = now + (uint64_t)request_ms * 1000000u;
        if (loop_timer_armed(&a->timer) && a->timer.deadline > now) {
                uint64_t left = a->timer.deadline - now, margin = MIN(left / 10, 50000000ull);
                dl = MIN(dl, a->timer.deadline - margin);
        }
        return dl;
}

static int dir_search_resolve(ipcfd *d, alloc *a) {
        if (a->origin || !the_directory || a->here_only) /* name@<this host>: here only */
                return RESOLVE_NEXT;
        static dir_record recs[CONF_HOSTLIST_MAX];
        unsigned n;
        int r = cached_hosts(a->name, recs, &n);
        if (r == 1)
                return ask_hosts(a, recs, n);
        if (r == -ENOENT)
                return RESOLVE_NEXT; /* the cache is an answer: nowhere */
        dir_hold *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->a = a;
        dlist_add_tail(&held, &s->link);
        alloc_hold(a, &dir_resolver, s, NULL);
        r = dir_resolve(the_directory, a->name, NULL, cold_deadline(a), cold_done, s, &s->q);
        if (r < 0) {
                s->q = NULL;
                alloc_unhold(a); /* frees s */
                return r == -EAGAIN ? -EAGAIN : r;
        }
        return 0;
}

static void dir_search_release(alloc *a, bool withdrawn) {
        dir_hold *s = a->holder;
        dir_resolve_cancel(s->q);
        dlist_del(&s->link);
        free(s);
}

static bool dir_search_has(ipcfd *d, const char *name, pid_t *ret_pid, uid_t *ret_uid) {
        if (!the_directory || !dir_has_other(the_directory, name, dir_record_reachable))
                return false;
        *ret_pid = 0; /* a process of another host */
        *ret_uid = d->uid;
        return true;
}

/* Every role travels, as for the "hosts" resolver (hosts/remote.c). */
static const resolver dir_resolver = {
        .name = "directory",
        .rank = RESOLVE_RANK_DIRECTORY,
        .roles = RESOLVE_ROLE(CTL_ROLE_FLOW) | RESOLVE_ROLE(CTL_ROLE_CALL) | RESOLVE_ROLE(CTL_ROLE_DGRAM) |
                 RESOLVE_ROLE(CTL_ROLE_MBOX_SEND) | RESOLVE_ROLE(CTL_ROLE_MBOX_RECV) |
                 RESOLVE_ROLE(CTL_ROLE_MCAST),
        .resolve = dir_search_resolve,
        .release = dir_search_release,
        .has = dir_search_has,
};

int dir_search_init(ipcfd *d) {
        uint32_t ms = d->conf.directory.request_timeout_ms;
        request_ms = ms ? ms : DIR_REQUEST_TIMEOUT_DEFAULT_MS;
        return resolver_add(&dir_resolver);
}

void dir_search_shutdown(void) {
        /* The directory goes next: its queries with it. The allocations
         * themselves are the flows module's to free. */
        dlist_for_each(pos, &held) {
                dir_hold *s = dlist_entry(pos, dir_hold, link);
                dir_resolve_cancel(s->q);
                s->q = NULL;
        }
}
