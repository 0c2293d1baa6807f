/*
 * registry.c — REGISTER / UNREGISTER, name lookup and load spreading (see
 * registry.h).
 *
 * Names hash into REG_BUCKETS lists; a lookup walks one bucket comparing
 * names. The number of regs is bounded by the per-user quota and the global
 * cap, so buckets stay short.
 */
#include "daemon/names/registry.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/names/activation.h"
#include "daemon/flows/alloc.h"
#include "daemon/core/client.h"
#include "daemon/core/log.h"
#include "daemon/models/models.h"
#include "daemon/core/policy.h"
#include "daemon/core/quota.h"

static int set_nonblock(int fd) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static size_t name_bucket(const char *name) {
        uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
        for (; *name; name++)
                h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
        return (size_t)(h % REG_BUCKETS);
}

reg *reg_find(ipcfd *d, uint64_t id) {
        struct idmap_node *n = idmap_find(&d->reg_ids, id);
        return n ? container_of(n, reg, node) : NULL;
}

bool registry_has(ipcfd *d, const char *name) {
        dlist_for_each(pos, &d->reg_buckets[name_bucket(name)]) {
                reg *r = dlist_entry(pos, reg, name_link);
                if (strcmp(r->name, name) == 0 && !r->owner->dying)
                        return true;
        }
        return false;
}

/* qsort order of candidates: least loaded first, where load = flows alive
 * through the registration + requests waiting for its decision. */
static int reg_cmp_load(const void *a, const void *b) {
        const reg *x = *(reg *const *)a, *y = *(reg *const *)b;
        uint64_t lx = (uint64_t)x->flows + x->pending, ly = (uint64_t)y->flows + y->pending;
        if (lx != ly)
                return lx < ly ? -1 : 1;
        /* Equal load: the older registration first, for a stable order. */
        return x->node.id < y->node.id ? -1 : x->node.id > y->node.id;
}

size_t registry_candidates(ipcfd *d, const char *name, reg **out, size_t max) {
        size_t n = 0;
        dlist_for_each(pos, &d->reg_buckets[name_bucket(name)]) {
                reg *r = dlist_entry(pos, reg, name_link);
                if (n == max)
                        break;
                if (strcmp(r->name, name) != 0 || r->owner->dying || r->pending >= r->backlog)
                        continue;
                out[n++] = r;
        }
        qsort(out, n, sizeof(*out), reg_cmp_load);
        return n;
}

/* A ring of the last TOMBS_MAX withdrawn requests, indexed by REQ_ID: the
 * oldest falls out when the ring is full, after which a late decision on it
 * gets ENOENT instead of ECANCELED. 1.5 MiB at most, allocated on first
 * use. A request is withdrawn at most once (then its alloc is gone), so an
 * id is never in the map twice. */
void reg_tomb_add(reg *r, uint64_t req_id) {
        ipcfd *d = r->d;
        if (!d->tombs) {
                d->tombs = calloc(TOMBS_MAX, sizeof(*d->tombs));
                if (!d->tombs)
                        return; /* then late decisions get ENOENT: harmless */
        }
        struct tomb *t = &d->tombs[d->n_tombs % TOMBS_MAX];
        if (d->n_tombs >= TOMBS_MAX)
                idmap_del(&d->tomb_ids, &t->node);
        t->node.id = req_id;
        t->reg_id = r->node.id;
        d->n_tombs++;
        if (idmap_add(&d->tomb_ids, &t->node) < 0)
                t->node.id = 0; /* not findable; ids start at 1 */
}

bool reg_tomb_has(const reg *r, uint64_t req_id) {
        struct idmap_node *n = idmap_find(&r->d->tomb_ids, req_id);
        return n && container_of(n, struct tomb, node)->reg_id == r->node.id;
}

void registry_tombs_free(ipcfd *d) {
        idmap_deinit(&d->tomb_ids);
        free(d->tombs);
        d->tombs = NULL;
        d->n_tombs = 0;
}

/* The client closed its end of the request socket (or wrote to it, which it
 * must not): the registration is over, as if it had unregistered. */
static void reg_on_event(loop_io *io, uint32_t events) {
        reg *r = container_of(io, reg, io);
        char b[64];
        ssize_t n = recv(r->sock, b, sizeof(b), MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EINTR) && !(events & (EPOLLHUP | EPOLLERR)))
                return;
        log_debug("reg %llu (%s): request socket %s", (unsigned long long)r->node.id, r->name,
                  n > 0 ? "written to by the client" : "closed by the client");
        reg_free(r, REG_END_UNREGISTER);
}

int registry_handle_register(client *c, const ctl_msg *m) {
        ipcfd *d = c->d;
        const char *name;
        uint32_t flags = 0, backlog = 0;
        int r;

        /* Fetch the name with a loose length bound so that a too-long name is
         * an EINVAL answer, not a protocol violation. */
        r = ctl_get_str(m, CTL_A_NAME, CTL_MSG_MAX, &name);
        if (r == -EBADMSG)
                return r;
        if (r < 0 || !ctl_name_valid(name))
                return client_reply_error(c, m->seq, -EINVAL), 0;
        r = ctl_get_u32(m, CTL_A_REG_FLAGS, &flags);
        if (r == -EBADMSG)
                return r;
        r = ctl_get_u32(m, CTL_A_BACKLOG, &backlog);
        if (r == -EBADMSG)
                return r;
        if ((flags & ~(uint32_t)CTL_REG_FLAGS_KNOWN) ||
            (flags >> CTL_REG_ROLE_SHIFT) >= CTL_ROLE_MAX_)
                return client_reply_error(c, m->seq, -EINVAL), 0;
        if (backlog == 0)
                backlog = REG_BACKLOG_DEFAULT;
        backlog = MIN(backlog, REG_BACKLOG_MAX);

        r = policy_check(d, name, POLICY_REGISTER, &c->cred);
        if (r < 0)
                return client_reply_error(c, m->seq, r), 0;

        /* Exclusivity either way: a new exclusive reg needs the name free, a
         * new shared one needs no exclusive holder. */
        dlist_for_each(pos, &d->reg_buckets[name_bucket(name)]) {
                reg *o = dlist_entry(pos, reg, name_link);
                if (strcmp(o->name, name) == 0 &&
                    ((flags & IPCF_REG_EXCLUSIVE) || (o->flags & IPCF_REG_EXCLUSIVE)))
                        return client_reply_error(c, m->seq, -EADDRINUSE), 0;
        }
        if (d->n_regs >= d->caps.regs)
                return client_reply_error(c, m->seq, -EDQUOT), 0;
        r = quota_charge(c->user, QUOTA_REGS, 1);
        if (r < 0)
                return client_reply_error(c, m->seq, r), 0;

        int sv[2] = { -1, -1 };
        reg *g = calloc(1, sizeof(*g));
        if (!g || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
                r = g ? -errno : -ENOMEM;
                goto fail;
        }
        /* Our end never blocks: a full socket is a full backlog. */
        r = set_nonblock(sv[0]);
        if (r < 0)
                goto fail;
        g->d = d;
        g->node.id = ipcfd_new_id(d);
        g->owner = c;
        str_copy(g->name, name, sizeof(g->name));
        g->flags = flags;
        g->backlog = backlog;
        g->sock = sv[0];
        g->user = user_ref(c->user);
        dlist_init(&g->pending_allocs);
        r = loop_io_add(d->loop, &g->io, g->sock, EPOLLIN, reg_on_event);
        if (r < 0)
                goto fail;
        r = idmap_add(&d->reg_ids, &g->node);
        if (r < 0) {
                loop_io_del(d->loop, &g->io);
                goto fail;
        }

        ctl_builder *b = malloc(sizeof(*b));
        if (!b) {
                r = -ENOMEM;
                idmap_del(&d->reg_ids, &g->node);
                loop_io_del(d->loop, &g->io);
                goto fail;
        }
        ctl_begin(b, CTL_OK, m->seq);
        ctl_put_u64(b, CTL_A_REG_ID, g->node.id);
        r = client_send(c, b, &sv[1], 1);
        free(b);
        close(sv[1]);
        sv[1] = -1;
        if (r < 0) {
                /* The client is being dropped; nothing to undo for it. */
                idmap_del(&d->reg_ids, &g->node);
                loop_io_del(d->loop, &g->io);
                user_unref(g->user);
                g->user = NULL;
                goto fail_quiet;
        }
        dlist_add_tail(&d->regs, &g->link);
        dlist_add_tail(&d->reg_buckets[name_bucket(name)], &g->name_link);
        dlist_add_tail(&c->regs, &g->owner_link);
        d->n_regs++;
        log_debug("reg %llu: %s by pid %d%s", (unsigned long long)g->node.id, g->name,
                  (int)c->cred.pid, (flags & IPCF_REG_EXCLUSIVE) ? " (exclusive)" : "");
        /* Allocations parked on an activation of this name go now. */
        activation_registered(d, g->name);
        models_name_changed(d, g->name); /* watchers: NAME_UP */
        return 0;

fail:
        client_reply_error(c, m->seq, r);
        if (g)
                user_unref(g->user);
fail_quiet:
        quota_release(c->user, QUOTA_REGS, 1);
        safe_close(sv[0]);
        safe_close(sv[1]);
        free(g);
        return 0;
}

int registry_handle_unregister(client *c, const ctl_msg *m) {
        uint64_t id;
        int r = ctl_get_u64(m, CTL_A_REG_ID, &id);
        if (r == -EBADMSG)
                return r;
        reg *g = r < 0 ? NULL : reg_find(c->d, id);
        if (!g || g->owner != c)
                return client_reply_error(c, m->seq, -ENOENT), 0;
        reg_free(g, REG_END_UNREGISTER);
        client_reply_ok(c, m->seq);
        return 0;
}

/* Every path that ends a registration comes here: UNREGISTER, the request
 * socket closed, the owner's death, shutdown. */
void reg_free(reg *g, enum reg_end why) {
        ipcfd *d = g->d;
        log_debug("reg %llu (%s): ended (%s)", (unsigned long long)g->node.id, g->name,
                  why == REG_END_UNREGISTER ? "unregistered" : why == REG_END_DIED ? "died" : "shutdown");
        /* Out of every index first, so a re-dispatch below cannot pick it. */
        idmap_del(&d->reg_ids, &g->node);
        dlist_del(&g->link);
        dlist_del(&g->name_link);
        dlist_del(&g->owner_link);
        d->n_regs--;
        loop_io_del(d->loop, &g->io);
        close(g->sock);
        g->sock = -1;

        dlist_for_each_safe(pos, tmp, &g->pending_allocs) {
                alloc *a = dlist_entry(pos, alloc, target_link);
                dlist_del(&a->target_link);
                a->target = NULL;
                g->pending--;
                if (why == REG_END_SHUTDOWN)
                        continue;
                if (why == REG_END_DIED)
                        alloc_redispatch(a, -ECONNREFUSED, "target died", IPCF_END_PEER_DIED);
                else
                        alloc_redispatch(a, -ECONNREFUSED, "unregistered", IPCF_END_REFUSED);
        }
        quota_release(g->user, QUOTA_REGS, 1);
        user_unref(g->user);
        if (why != REG_END_SHUTDOWN)
                models_name_changed(d, g->name); /* watchers: NAME_DOWN */
        loop_defer_free(d->loop, g);
}
