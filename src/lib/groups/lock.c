/*
 * lock.c — the group lock's API (ipcf_group_lock / consistent / unlock) and
 * who a taker of a group's locks is (group_who), over common/grplock.c.
 *
 * TOKENS: a taker is (member slot, serial, tid): the slot and serial the
 * daemon gave this handle at join, and the calling thread's tid (cached
 * per thread, forgotten in the child of fork()). The daemon clears the
 * slot when the member exits or dies, so a lock it held is seen as left.
 *
 * FORK: a child inherits the parent's handles but is not a member (the
 * facility counts processes). If it could take a lock, its death would go
 * unseen (the parent's slot stays alive), so group_who refuses (-EPERM) a
 * handle joined before the latest fork() of this process.
 *
 * THREAD EXIT: each thread keeps, in its own memory, the group locks it
 * holds; a thread that exits holding some frees each marked DEAD from a
 * thread-specific-data destructor (grplock_abandon): the next taker gets
 * IPCF_GROUP_INCONSISTENT, as after a process death.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/grpshm.h"
#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/groups/group.h"

/* A group lock waits this long spinning before it sleeps (timeout != 0). */
#define GROUP_LOCK_SPIN_NS 5000u

static _Atomic unsigned fork_gen;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_key_t held_key;

/* The group locks this thread holds: (handle, token). */
typedef struct held_list {
        unsigned n, cap;
        struct held {
                int h;
                uint64_t me;
        } *v;
} held_list;

static __thread uint32_t tls_tid;
static __thread held_list tls_held;
static __thread bool tls_held_hooked;

static void atfork_child(void) {
        atomic_fetch_add(&fork_gen, 1);
        tls_tid = 0;      /* this thread has a new tid in the child */
        tls_held.n = 0;   /* and holds none of the parent's locks */
}

/* Thread exit: every group lock still held is left marked DEAD. */
static void held_exit(void *arg) {
        held_list *l = arg;
        for (unsigned i = 0; i < l->n; i++) {
                group *g = handle_get_group(l->v[i].h);
                if (g) {
                        (void)grplock_abandon(&g->ctl->lock, l->v[i].me);
                        handle_put(g);
                }
        }
        free(l->v);
        *l = (held_list){ 0 };
        tls_held_hooked = false;
}

static void init_once(void) {
        pthread_atfork(NULL, NULL, atfork_child);
        pthread_key_create(&held_key, held_exit);
}

unsigned group_fork_gen(void) {
        pthread_once(&once, init_once);
        return atomic_load(&fork_gen);
}

/* Remember that this thread holds h's lock as me (a failure to remember
 * only loses the thread-exit hook for it). */
static void held_push(int h, uint64_t me) {
        held_list *l = &tls_held;
        if (l->n == l->cap) {
                unsigned cap = l->cap ? 2 * l->cap : 4;
                struct held *v = realloc(l->v, cap * sizeof(*v));
                if (!v)
                        return;
                l->v = v;
                l->cap = cap;
        }
        if (!tls_held_hooked) /* the destructor runs at this thread's end */
                tls_held_hooked = pthread_setspecific(held_key, l) == 0;
        l->v[l->n++] = (struct held){ h, me };
}

static void held_pop(int h, uint64_t me) {
        held_list *l = &tls_held;
        for (unsigned i = 0; i < l->n; i++) {
                if (l->v[i].h == h && l->v[i].me == me) {
                        l->v[i] = l->v[--l->n];
                        return;
                }
        }
}

static uint32_t my_tid(void) {
        if (tls_tid == 0)
                tls_tid = (uint32_t)syscall(SYS_gettid);
        return tls_tid;
}

/* Between sleeps: an exited handle or a dissolved group ends the wait. */
static int group_stop(void *arg) {
        group *g = arg;
        return atomic_load(&g->closed) ? -EBADF : group_dissolved(g) ? -EIDRM : 0;
}

/* The calling thread's token for g's locks: 0, -EPERM (an inherited
 * handle), -EPROTO (a tid out of range: cannot happen on Linux). */
static int group_token(group *g, uint64_t *ret_me) {
        if (g->fork_gen != atomic_load_explicit(&fork_gen, memory_order_relaxed))
                return -EPERM;
        uint32_t tid = my_tid();
        *ret_me = g->token_base | tid;
        return tid && tid <= GRPLOCK_TID_MAX ? 0 : -EPROTO;
}

int group_who(group *g, grplock_who *ret) {
        ret->roster = g->ctl->roster;
        ret->stop = group_stop;
        ret->arg = g;
        return group_token(g, &ret->me);
}

int ipcf_group_lock(int h, int timeout_ms) {
        if (lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        grplock_who w;
        int r = group_who(g, &w);
        if (r == 0 && group_dissolved(g))
                r = -EIDRM;
        if (r == 0) {
                /* The deadline (a clock read) only if we must wait. */
                r = grplock_try(&g->ctl->lock, &w);
                if (r == -EBUSY)
                        r = timeout_ms == 0 ? -EAGAIN
                                            : grplock_take(&g->ctl->lock, &w, deadline_from_timeout(timeout_ms),
                                                           GROUP_LOCK_SPIN_NS);
                if (r >= 0)
                        held_push(h, w.me);
        }
        handle_put(g);
        return r; /* 1 is IPCF_GROUP_INCONSISTENT */
}

/* After a repair: the lock is healthy again for everyone. */
int ipcf_group_consistent(int h) {
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint64_t me;
        int r = group_token(g, &me);
        if (r == 0)
                r = grplock_consistent(&g->ctl->lock, me);
        handle_put(g);
        return r;
}

int ipcf_group_unlock(int h) {
        group *g = handle_get_group(h);
        if (!g)
                return -EBADF;
        uint64_t me;
        int r = group_token(g, &me);
        if (r == 0) {
                r = grplock_release(&g->ctl->lock, me);
                held_pop(h, me); /* released, or not ours any more (-EPERM) */
        }
        handle_put(g);
        return r;
}
