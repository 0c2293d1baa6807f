/*
 * group.c — shared-memory groups in libipcf: create, join, leave, dissolve,
 * resize, bounds-checked copies, raw access and remapping (docs/GROUPS.md;
 * the memfd layout is in common/grpshm.h).
 *
 * MAPPING: the data is mapped MAP_FIXED into the middle of a PROT_NONE
 * reservation one page larger on each side, so a raw overrun faults on a
 * guard page instead of touching other memory. The size mapped comes from
 * the kernel (fstat of the memfd, which is sealed against shrinking) clamped
 * by the logical size the daemon published: nothing read from the shared
 * control page can make this process fault.
 *
 * REMAP: every access (read, write, ptr, bbuf) first compares the group's
 * generation with the one its mapping reflects; if it changed, it remaps
 * under the write side of maplock, so no API call ever writes through a
 * view older than the change it has seen. The notice channel is drained
 * BEFORE the generation is read, so a change after that read rings it again.
 * NOTICE: each handle holds the ear of a wake-up channel (common/wake.h)
 * whose bell only the daemon holds; it rings on each change. Draining never
 * blocks whatever the descriptor's flags say, and is bounded.
 * PINNING: the view whose address ipcf_group_ptr() handed out is never
 * unmapped by such an automatic remap; it retires only when the owner calls
 * ipcf_group_ptr() or ipcf_group_remap() again, or exits. So a raw pointer
 * never faults under its user because another thread used the API (at most
 * two views exist: the current one and the pinned one).
 *
 * The lock's API is lock.c; the bounded buffer's bbuf.c.
 *
 * Who may call: the public functions from any thread; group_access() from
 * bbuf.c and lock.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/grpshm.h"
#include "common/util.h"
#include "common/wake.h"
#include "lib/core/lib.h"
#include "lib/groups/group.h"

/* The page size: guard pages and mapped sizes are whole pages. */
static uint64_t page_size(void) {
        long p = sysconf(_SC_PAGESIZE);
        return p > 0 ? (uint64_t)p : 4096;
}

/* Unmap the pinned view (the one ipcf_group_ptr handed out) if it is not
 * the current one. Under maplock (write) or at destruction. */
static void group_unpin(group *g) {
        if (g->pin_resv && g->pin_resv != g->resv)
                munmap(g->pin_resv, g->pin_len);
        g->pin_resv = NULL;
}

static void group_destroy(void *obj) {
        group *g = obj;
        group_unpin(g);
        if (g->resv)
                munmap(g->resv, g->resv_len);
        if (g->ctl)
                munmap(g->ctl, GRPSHM_CTL_SIZE);
        safe_close(g->memfd);
        safe_close(g->notice);
        pthread_rwlock_destroy(&g->maplock);
}

/* Has the daemon (or a member pretending) marked the group dissolved? */
bool group_dissolved(const group *g) {
        return atomic_load_explicit(&g->ctl->dissolved, memory_order_acquire) != 0;
}

/* Under maplock (write) or before publication: map the current size.
 * Returns 1 if the mapping changed, 0 if not, -EIDRM, -ENOMEM. */
static int group_remap_locked(group *g) {
        (void)wake_drain(g->notice); /* bounded; -EPIPE once the daemon is gone */
        uint64_t gen = atomic_load_explicit(&g->ctl->gen, memory_order_acquire);
        if (group_dissolved(g)) {
                g->gen = gen;
                return -EIDRM; /* the old mapping stays until exit: raw users keep theirs */
        }
        uint64_t pg = page_size(), size = atomic_load_explicit(&g->ctl->size, memory_order_relaxed);
        struct stat st;
        if (fstat(g->memfd, &st) < 0)
                return -errno;
        size = grpshm_map_size(size, (uint64_t)st.st_size, pg);
        if (g->resv && size == g->size) {
                g->gen = gen;
                return 0;
        }
        size_t len = (size_t)size + 2 * pg;
        uint8_t *resv = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (resv == MAP_FAILED)
                return -ENOMEM;
        if (size && mmap(resv + pg, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, g->memfd,
                         GRPSHM_CTL_SIZE) == MAP_FAILED) {
                int e = errno;
                munmap(resv, len);
                return e == ENOMEM ? -ENOMEM : -e;
        }
        /* The view a raw pointer was handed out for stays mapped (and
         * backed: the file never shrinks) until the owner retires it. */
        if (g->resv && g->resv != g->pin_resv)
                munmap(g->resv, g->resv_len);
        g->resv = resv;
        g->resv_len = len;
        g->data = resv + pg;
        g->size = size;
        g->gen = gen;
        return 1;
}

/* group_remap_locked() under the write side of maplock. */
static int group_remap(group *g) {
        pthread_rwlock_wrlock(&g->maplock);
        int r = group_remap_locked(g);
        pthread_rwlock_unlock(&g->maplock);
        return r;
}

int group_access(group *g, uint64_t off, uint64_t len, uint8_t **ret_ptr) {
        pthread_rwlock_rdlock(&g->maplock);
        if (atomic_load_explicit(&g->ctl->gen, memory_order_acquire) != g->gen) {
                /* Changed: remap once, then use whatever is mapped (a hostile
                 * member bumping gen for ever must not keep us looping). */
                pthread_rwlock_unlock(&g->maplock);
                int r = group_remap(g);
                if (r < 0 && r != -EIDRM)
                        return r;
                pthread_rwlock_rdlock(&g->maplock);
        }
        if (group_dissolved(g)) {
                pthread_rwlock_unlock(&g->maplock);
                return -EIDRM;
        }
        if (off > g->size || len > g->size - off) {
                pthread_rwlock_unlock(&g->maplock);
                return -ERANGE;
        }
        *ret_ptr = g->data + off;
        return 0;
}

/* Release what group_access() took. */
void group_access_end(group *g) {
        pthread_rwlock_unlock(&g->maplock);
}

/* ---- requests to the daemon ------------------------------------------- */

/* Run a request that carries just NAME (and optionally SHM_SIZE). */
static int name_request(uint16_t type, const char *name, const uint64_t *size) {
        if (!ctl_name_valid(name))
                return -EINVAL;
        conn_call *c = conn_call_new(type);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        if (size)
                ctl_put_u64(&c->req, CTL_A_SHM_SIZE, *size);
        int r = conn_call_run(c, NULL, 0);
        conn_call_free(c);
        return r;
}

/* The allow lists travel as repeated attributes; the daemon enforces the
 * same bounds (GROUP_ALLOW_MAX) and checks everything again. */
int ipcf_group_create(const char *name, uint64_t size, const ipcf_group_opts *opts) {
        if (!ctl_name_valid(name) || size == 0 || size > GRPSHM_SIZE_MAX)
                return -EINVAL;
        if (opts && ((opts->size && opts->size != sizeof(*opts)) || opts->flags ||
                     opts->n_names > GROUP_ALLOW_MAX ||
                     opts->n_uids > GROUP_ALLOW_MAX || opts->n_gids > GROUP_ALLOW_MAX ||
                     (opts->n_names && !opts->names) || (opts->n_uids && !opts->uids) ||
                     (opts->n_gids && !opts->gids)))
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_GROUP_CREATE);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        ctl_put_u64(&c->req, CTL_A_SHM_SIZE, size);
        int r = 0;
        for (size_t i = 0; opts && i < opts->n_names; i++) {
                if (!ctl_name_valid(opts->names[i]))
                        r = -EINVAL;
                else
                        ctl_put_str(&c->req, CTL_A_ALLOW_NAME, opts->names[i]);
        }
        for (size_t i = 0; opts && i < opts->n_uids; i++)
                ctl_put_u32(&c->req, CTL_A_ALLOW_UID, (uint32_t)opts->uids[i]);
        for (size_t i = 0; opts && i < opts->n_gids; i++)
                ctl_put_u32(&c->req, CTL_A_ALLOW_GID, (uint32_t)opts->gids[i]);
        if (r == 0)
                r = conn_call_run(c, NULL, 0);
        conn_call_free(c);
        return r < 0 ? r : 0;
}

/* Join: the daemon admits us and hands over the memfd and the ear of our
 * notice channel;
 * we map the control page, then the data between guard pages. If anything
 * fails after the daemon counted us, we tell it we left. */
int ipcf_group_join(const char *name) {
        if (!ctl_name_valid(name))
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_GROUP_JOIN);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        uint64_t gid, mid;
        int h = -1, r = conn_call_run(c, NULL, 0);
        if (r < 0)
                goto out;
        r = -EPROTO;
        if (ctl_get_u64(&c->rep.msg, CTL_A_GROUP_ID, &gid) < 0 ||
            ctl_get_u64(&c->rep.msg, CTL_A_MEMBER_ID, &mid) < 0 || c->rep.n_fds != 2)
                goto out;
        group *g = handle_alloc(&group_kind, sizeof(*g), &h);
        if (!g) {
                r = -EMFILE;
                goto out_exit;
        }
        g->group_id = gid;
        g->member_id = mid;
        g->fork_gen = group_fork_gen();
        str_copy(g->name, name, sizeof(g->name));
        g->memfd = c->rep.fds[0];
        g->notice = c->rep.fds[1];
        c->rep.fds[0] = c->rep.fds[1] = -1;
        pthread_rwlock_init(&g->maplock, NULL);
        g->ctl = mmap(NULL, GRPSHM_CTL_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, g->memfd, 0);
        if (g->ctl == MAP_FAILED) {
                g->ctl = NULL;
                r = -ENOMEM;
        } else if (g->ctl->magic != GRPSHM_MAGIC || g->ctl->version != GRPSHM_VERSION ||
                   grpshm_member_decode(mid, &g->slot, &g->serial) < 0) {
                /* (the member id is our slot and serial: our lock tokens) */
                r = -EPROTO;
        } else {
                g->token_base = grplock_token(g->slot, g->serial, 1) - 1;
                r = group_remap_locked(g);
        }
        if (r < 0) {
                group_destroy(g);
                handle_abort(g);
                goto out_exit;
        }
        handle_publish(g);
        r = h;
        goto out;
out_exit:
        /* Tell the daemon we are not a member after all. */
        (void)conn_tell_u64(CTL_GROUP_EXIT, CTL_A_MEMBER_ID, mid);
out:
        conn_call_free(c);
        return r;
}

/* ipcf_dealloc of a group handle: leave the group. The handle is closed
 * first (later calls fail -EBADF); the daemon is told; the last reference
 * unmaps. */
static void group_end(void *obj, const char *reason) {
        group *g = obj;
        (void)reason;
        /* Threads blocked in a bbuf wait on this handle give up (-EBADF)
         * within one sleep slice; the last one's put destroys the view. */
        atomic_store(&g->closed, true);
        /* A dead daemon has forgotten us anyway. */
        (void)conn_tell_u64(CTL_GROUP_EXIT, CTL_A_MEMBER_ID, g->member_id);
}

/* ipcf_fd of a group handle: the ear of the notice channel (the library
 * owns it; the caller only polls it). */
static int group_fd(void *obj) {
        return ((group *)obj)->notice;
}

const handle_kind group_kind = {
        .name = "group",
        .end = group_end,
        .fd = group_fd,
        .destroy = group_destroy,
};

/* Dissolve and resize are decisions of the daemon: one round trip each. */
int ipcf_group_dissolve(const char *name) {
        return name_request(CTL_GROUP_DISSOLVE, name, NULL);
}

int ipcf_group_resize(const char *name, uint64_t size) {
        if (size == 0 || size > GRPSHM_SIZE_MAX)
                return -EINVAL;
        return name_request(CTL_GROUP_RESIZE, name, &size);
}

/* ---- access -------------------------------------------------------------- */

ssize_t ipcf_group_read(int h, uint64_t offset, void *buf, size_t len) {
        if (!buf && len)
                return -EINVAL;
        if (len > SSIZE_MAX)
                return -ERANGE;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint8_t *p;
        int r = group_access(g, offset, len, &p);
        if (r == 0) {
                if (len)
                        memcpy(buf, p, len);
                group_access_end(g);
        }
        handle_put(g);
        return r < 0 ? r : (ssize_t)len;
}

ssize_t ipcf_group_write(int h, uint64_t offset, const void *buf, size_t len) {
        if (!buf && len)
                return -EINVAL;
        if (len > SSIZE_MAX)
                return -ERANGE;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint8_t *p;
        int r = group_access(g, offset, len, &p);
        if (r == 0) {
                if (len)
                        memcpy(p, buf, len);
                group_access_end(g);
        }
        handle_put(g);
        return r < 0 ? r : (ssize_t)len;
}

/* Raw access: the current view, pinned for the caller (see PINNING). */
int ipcf_group_ptr(int h, void **ret_ptr, uint64_t *ret_size) {
        if (!ret_ptr)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint8_t *p;
        int r = group_access(g, 0, 0, &p);
        if (r == 0) {
                group_access_end(g);
                /* Pin the current view; the one handed out before retires. */
                pthread_rwlock_wrlock(&g->maplock);
                if (g->pin_resv != g->resv) {
                        group_unpin(g);
                        g->pin_resv = g->resv;
                        g->pin_len = g->resv_len;
                }
                *ret_ptr = g->data;
                if (ret_size)
                        *ret_size = g->size;
                pthread_rwlock_unlock(&g->maplock);
        }
        handle_put(g);
        return r;
}

/* Take notice of a change and retire the pinned view. */
int ipcf_group_remap(int h) {
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        pthread_rwlock_wrlock(&g->maplock);
        bool stale = g->pin_resv && g->pin_resv != g->resv;
        int r = group_remap_locked(g);
        /* The caller takes notice: a view kept for its raw pointer retires. */
        if (r >= 0 && (stale || (g->pin_resv && g->pin_resv != g->resv)))
                r = 1;
        if (r >= 0 || r == -EIDRM)
                group_unpin(g);
        pthread_rwlock_unlock(&g->maplock);
        handle_put(g);
        return r;
}
