/*
 * set.c — readiness sets (ipcf_set_*): many ports, one descriptor, and one
 * call that says which of them a read would not block on, without a kernel
 * wake-up per message while the set's thread is awake.
 *
 * HOW. Each member port is either ARMED or WATCHED:
 *   armed    its rx want word (ring_ctl.rx_sleep) says WAKEWORD_EAR: the
 *            writer rings the port's ear at its next message (wait.c, the
 *            usual handshake), and the ear is in the set's epoll instance —
 *            the one descriptor ipcf_fd(set) gives;
 *   watched  the word is NONE: the writer rings no one, and the set looks at
 *            the port itself (the record header at its tail) on every pass.
 * A wait makes passes over the watched ports, reporting the ready ones; when
 * none is ready it spins for spin_us, then ARMS every watched port (store the
 * word, one fence for all, re-check each: the handshake of wait.c, so a
 * message published meanwhile is seen either by the re-check or by its
 * writer's load of the word) and sleeps in epoll_wait. A ring, or the ear of
 * an armed port found readable by an occasional epoll look while busy, makes
 * the port watched again. A watched port quiet for SET_IDLE_NS is armed again
 * on its own, so the passes stay over the busy ports only. So a busy port
 * costs its writer no system call, and the set's thread one look per pass.
 *
 * TRUST. Nothing is shared between the peers of different members: each
 * want word lives in its own flow's memory, which only that flow's two
 * sides map. A peer that rewrites its word, rings its ear, or forges records
 * costs the set a spurious look or wake-up, and only its own flow's
 * wake-ups can go missing. There is deliberately no ready list that writers
 * mark in memory shared by all of them: any one of them could wipe the
 * others' marks.
 *
 * RULES. A port is in at most one set, and a port in a set has no ipcf_fd
 * (its readiness is the set's): both are -EBUSY. The set holds a reference
 * to each member; a member the caller deallocated or detached is dropped at
 * the next pass. One thread waits at a time (a second waits for the lock);
 * ipcf_set_add/del from other threads ring the set so a sleeping wait lets
 * them in. A blocking read on a member from another thread takes the want
 * word for its sleep and rings the ear afterwards (wait.c), so the set looks
 * again. ipcf_fd(set) is readable whenever a wait would return at once —
 * once a wait has returned -EAGAIN or -ETIMEDOUT (every member armed); after
 * a wait that reported ports, call it again before sleeping on the descriptor.
 *
 * FORK. A set is its maker's: a child of fork() shares its epoll instance,
 * its bell and its members' want words with the parent, so in the child the
 * set's calls fail -EBADF, and closing it there (ipcf_detach, ipcf_dealloc)
 * only drops the child's copies — no epoll_ctl, no want word, no ring —
 * where it would take the members out of the parent's epoll and disarm them.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"
#include "lib/core/lib.h"

/* A watched port found quiet this long, and at this many looks in a row,
 * while other ports kept the set busy that long after it fell quiet, is
 * armed again (so passes stay short). All three: a wait that was preempted
 * for a while has not looked, one that looks often is not long, and when
 * every port is quiet (their writers preempted, say) the set arms them all
 * itself when it sleeps, and watches them again at the first ring. */
#define SET_IDLE_NS 4000000u
#define SET_IDLE_LOOKS 16u
/* While a wait spins, or the last look found rings, it looks at the armed
 * ports' ears this often (and at whether any peer may still write); while
 * it finds work and the ears were quiet, this often. */
#define SET_LOOK_NS 10000u
#define SET_LOOK_BUSY_NS 100000u
/* A look takes up to this many batches of SET_EVENTS at once. */
#define SET_LOOK_BATCHES 16
/* epoll events taken per look. */
#define SET_EVENTS 64
/* The spin of a wait before it sleeps, unless the options say; and how far
 * it grows when sleeps keep being cut short by a message (see spin_adapt). */
#define SET_SPIN_DEFAULT_US 50u
#define SET_SPIN_MAX_NS 4000000u
/* epoll data of the set's own ear, and the tag of a member's peer pidfd. */
#define SET_OWN_EAR 0u
#define SET_PIDFD_TAG 1u

typedef struct member {
        port *p;                /* a reference of ours */
        int h;                  /* its port-id when added */
        uint64_t data;          /* the caller's */
        uint64_t quiet_since;   /* watched: when it was last found ready */
        uint32_t empty_looks;   /* watched: looks since, that found it not ready */
        uint32_t idx;           /* in set->mem */
        uint32_t watch;         /* in set->watched, or NOT_WATCHED */
        bool drop;              /* to leave the watched list (or the set) after a pass */
        bool gone;              /* to leave the set after a pass */
} member;

#define NOT_WATCHED UINT32_MAX

typedef struct rset {
        plock lock;                   /* the waiter's, and add/del's */
        _Atomic uint32_t pending;     /* add/del calls waiting for the lock */
        _Atomic bool closed;          /* ipcf_dealloc ran */
        unsigned fork_gen;            /* handle_fork_gen() when made (FORK) */
        int ep;                       /* epoll: member ears (and pidfds), our own ear */
        int ear, bell;                /* our own wake-up channel (add/del, close) */
        uint32_t spin_us;
        uint64_t spin_ns;             /* the spin now: spin_us, grown by spin_adapt */
        uint64_t rung_after;          /* a sleep a ring ended took this long, and the
                                       * pass after it is to say if it was a message
                                       * (0: no such sleep) */
        member **mem;                 /* every member */
        member **watched;             /* the watched ones (same capacity) */
        member **warm;                /* the ones watched when the wait went to sleep */
        uint32_t n, n_watched, n_warm, cap;
        uint32_t rr;                  /* where the next pass starts */
        uint64_t looked;              /* last epoll look while busy */
        uint64_t busy;                /* last pass that found a port ready */
        bool rung;                    /* and it found rings */
} rset;

static void set_end(void *obj, const char *reason);
static int set_fd(void *obj);
static void set_destroy(void *obj);

static const handle_kind set_kind = {
        .name = "set",
        .end = set_end,
        .fd = set_fd,
        .destroy = set_destroy,
};

static unsigned this_cpu(void) {
        int c = sched_getcpu();
        return c < 0 ? 0 : (unsigned)c;
}

/* ---- entering: add/del against a sleeping waiter --------------------------- */

static long futex_private(_Atomic uint32_t *w, int op, uint32_t val) {
        return syscall(SYS_futex, (uint32_t *)w, op | FUTEX_PRIVATE_FLAG, val, NULL, NULL, 0);
}

/* Take the lock for an add/del: say so (a waiter steps aside), ring the set
 * (a sleeping one wakes), lock. */
static void set_enter(rset *s) {
        atomic_fetch_add(&s->pending, 1);
        wake_ring(s->bell);
        plock_lock(&s->lock);
}

static void set_leave(rset *s) {
        plock_unlock(&s->lock);
        if (atomic_fetch_sub(&s->pending, 1) == 1)
                futex_private(&s->pending, FUTEX_WAKE, INT_MAX);
}

/* The waiter, holding the lock: let pending add/del calls in first. */
static void set_step_aside(rset *s) {
        uint32_t n;
        if (!atomic_load(&s->pending))
                return;
        plock_unlock(&s->lock);
        while ((n = atomic_load(&s->pending)) != 0)
                futex_private(&s->pending, FUTEX_WAIT, n);
        plock_lock(&s->lock);
}

/* ---- membership -------------------------------------------------------------- */

static void watch(rset *s, member *m, unsigned cpu, uint64_t now) {
        m->quiet_since = now;
        m->empty_looks = 0;
        m->drop = false;
        if (m->watch == NOT_WATCHED) {
                m->watch = s->n_watched;
                s->watched[s->n_watched++] = m;
        }
        port_set_watch(m->p, cpu);
}

/* Compact the watched list after a pass: members marked drop leave it,
 * members marked gone leave the set. */
static void member_remove(rset *s, member *m);

static void compact(rset *s) {
        uint32_t w = 0;
        for (uint32_t i = 0; i < s->n_watched; i++) {
                member *m = s->watched[i];
                if (m->drop || m->gone) {
                        m->watch = NOT_WATCHED;
                        m->drop = false;
                        continue;
                }
                m->watch = w;
                s->watched[w++] = m;
        }
        s->n_watched = w;
        for (uint32_t i = 0; i < s->n;) {
                if (s->mem[i]->gone)
                        member_remove(s, s->mem[i]); /* moves the last one here */
                else
                        i++;
        }
}

static void epoll_del(rset *s, member *m) {
        epoll_ctl(s->ep, EPOLL_CTL_DEL, m->p->ear_rx, NULL);
        if (m->p->fd_with_peer && m->p->peer_pidfd >= 0)
                epoll_ctl(s->ep, EPOLL_CTL_DEL, m->p->peer_pidfd, NULL);
}

/* Was s made by another process (this one is a child of fork())? */
static bool inherited(const rset *s) {
        return s->fork_gen != handle_fork_gen();
}

/* Take m out of the set (not watched any more) and give the port back. In
 * a child of fork() only the child's copies go (FORK). */
static void member_remove(rset *s, member *m) {
        port *p = m->p;
        s->n_warm = 0; /* (it may be there) */
        if (!inherited(s))
                epoll_del(s, m);
        s->mem[m->idx] = s->mem[--s->n];
        s->mem[m->idx]->idx = m->idx;
        /* (no rlock: this thread may hold it, in a zero-copy peek) */
        if (!inherited(s))
                port_set_watch(p, this_cpu()); /* no ring for a set that is gone */
        p->set_member = NULL;
        atomic_store(&p->set, NULL);
        handle_put(p);
        free(m);
}

static int grow(rset *s) {
        if (s->n < s->cap)
                return 0;
        uint32_t cap = s->cap ? s->cap * 2 : 16;
        if (cap > (1u << 24))
                return -ENOSPC;
        member **mem = realloc(s->mem, cap * sizeof(*mem));
        if (!mem)
                return -ENOMEM;
        s->mem = mem;
        member **w = realloc(s->watched, cap * sizeof(*w));
        if (!w)
                return -ENOMEM;
        s->watched = w;
        member **warm = realloc(s->warm, cap * sizeof(*warm));
        if (!warm)
                return -ENOMEM;
        s->warm = warm;
        s->cap = cap;
        return 0;
}

static int epoll_add(rset *s, int fd, uint64_t data) {
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = data };
        if (epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
                return errno == ENOSPC || errno == ENOMEM ? -errno : -EPROTO;
        return 0;
}

/* Claim p for s (under its rlock: against ipcf_fd). */
static int claim(rset *s, port *p) {
        if (atomic_load(&p->owner))
                return -EBUSY; /* a channel of a model */
        if (p->peeking && pthread_equal(p->peeker, pthread_self()))
                return -EBUSY; /* we hold its rlock (ipcf_peek) */
        plock_lock(&p->rlock);
        void *none = NULL;
        int r = 0;
        if (p->poll_rx)
                r = -EBUSY;
        else if (!atomic_compare_exchange_strong(&p->set, &none, s))
                r = none == s ? -EEXIST : -EBUSY;
        plock_unlock(&p->rlock);
        return r;
}

static int member_add(rset *s, port *p, int h, uint64_t data) {
        int r = claim(s, p);
        if (r < 0)
                return r;
        member *m = calloc(1, sizeof(*m));
        if (!m || (r = grow(s)) < 0) {
                free(m);
                atomic_store(&p->set, NULL);
                return m ? r : -ENOMEM;
        }
        m->p = p;
        m->h = h;
        m->data = data;
        m->watch = NOT_WATCHED;
        bool pidfd = p->fd_with_peer && p->peer_pidfd >= 0;
        if ((r = epoll_add(s, p->ear_rx, (uint64_t)(uintptr_t)m)) < 0 ||
            (pidfd && (r = epoll_add(s, p->peer_pidfd, (uint64_t)(uintptr_t)m | SET_PIDFD_TAG)) < 0)) {
                epoll_ctl(s->ep, EPOLL_CTL_DEL, p->ear_rx, NULL);
                free(m);
                atomic_store(&p->set, NULL);
                return r;
        }
        handle_ref(p);
        p->set_member = m;
        m->idx = s->n;
        s->mem[s->n++] = m;
        /* Watched at first: a message may be queued already. */
        watch(s, m, this_cpu(), now_ns());
        return 0;
}

/* ---- the public calls -------------------------------------------------------- */

int ipcf_set_new(const ipcf_set_opts *opts) {
        /* (size 0: the defaults, whatever the rest says) */
        if (opts && opts->size && (opts->size != sizeof(*opts) || opts->spin_us > QOS_LIMIT_SPIN_US))
                return -EINVAL;
        int h;
        rset *s = handle_alloc(&set_kind, sizeof(*s), &h);
        if (!s)
                return -EMFILE;
        s->spin_us = opts && opts->size ? opts->spin_us : SET_SPIN_DEFAULT_US;
        s->spin_ns = (uint64_t)s->spin_us * 1000u;
        s->fork_gen = handle_fork_gen();
        s->ear = s->bell = -1;
        s->ep = epoll_create1(EPOLL_CLOEXEC);
        int r = s->ep < 0 ? (errno == ENFILE ? -EMFILE : -errno) : wake_new(&s->ear, &s->bell);
        if (r == 0)
                r = epoll_add(s, s->ear, SET_OWN_EAR);
        if (r < 0) {
                set_destroy(s);
                handle_abort(s);
                return r;
        }
        handle_publish(s);
        return h;
}

/* ipcf_set_del's work, under the set's lock. */
static int member_del(rset *s, port *p, int h, uint64_t data) {
        (void)h, (void)data;
        member *m = atomic_load(&p->set) == s ? p->set_member : NULL;
        if (!m)
                return -ENOENT;
        if (m->watch != NOT_WATCHED) {
                m->drop = true;
                compact(s);
        }
        member_remove(s, m);
        return 0;
}

/* Run op on set and port_id (each looked up with a reference: -EBADF if
 * either is not live) under the set's lock. */
static int with_member(int set, int port_id, uint64_t data,
                       int (*op)(rset *s, port *p, int h, uint64_t data)) {
        rset *s = handle_get(set, &set_kind);
        if (s && inherited(s)) {
                handle_put(s);
                s = NULL;
        }
        port *p = s ? handle_get_port(port_id) : NULL;
        int r = -EBADF;
        if (p) {
                set_enter(s);
                r = op(s, p, port_id, data);
                set_leave(s);
                handle_put(p);
        }
        if (s)
                handle_put(s);
        return r;
}

int ipcf_set_add(int set, int port_id, uint64_t data) {
        return with_member(set, port_id, data, member_add);
}

int ipcf_set_del(int set, int port_id) {
        return with_member(set, port_id, 0, member_del);
}

/* ---- waiting ------------------------------------------------------------------- */

/* Is m's port-id still the port we hold (not closed, nor reused)? */
static bool still_named(member *m) {
        if (atomic_load_explicit(&m->p->closed, memory_order_relaxed))
                return false;
        port *now = handle_get_port(m->h);
        if (now)
                handle_put(now);
        return now == m->p;
}

/* Report m into evs[*n] if there is room (a member whose number is gone is
 * dropped instead). */
static void report(member *m, ipcf_set_event *evs, unsigned max, unsigned *n) {
        if (*n >= max)
                return;
        if (!still_named(m)) {
                m->gone = true;
                return;
        }
        evs[*n] = (ipcf_set_event){ .port = m->h, .events = IPCF_SET_IN, .data = m->data };
        (*n)++;
}

/* Arm the watched members in want[0..k) (drop marks them), fence, re-check:
 * the ready ones are watched again and reported. */
static void arm(rset *s, member **want, uint32_t k, ipcf_set_event *evs, unsigned max,
                unsigned *n, unsigned cpu, uint64_t now) {
        for (uint32_t i = 0; i < k; i++)
                port_set_arm(want[i]->p);
        atomic_thread_fence(memory_order_seq_cst);
        for (uint32_t i = 0; i < k; i++) {
                member *m = want[i];
                if (port_rx_ready(m->p)) {
                        watch(s, m, cpu, now);
                        report(m, evs, max, n);
                } else {
                        m->drop = true;
                }
        }
}

/* One pass over the watched members from rr: report the ready ones (up to
 * max), arm those quiet for SET_IDLE_NS (up to SET_ARM_BATCH per pass). */
#define SET_ARM_BATCH 64
static unsigned pass(rset *s, ipcf_set_event *evs, unsigned max, unsigned cpu, uint64_t now) {
        unsigned n = 0;
        uint32_t k = s->n_watched, start = k ? s->rr % k : 0, quiet = 0;
        member *idle[SET_ARM_BATCH];
        bool gone = false;
        for (uint32_t j = 0; j < k && n < max; j++) {
                uint32_t i = start + j < k ? start + j : start + j - k;
                member *m = s->watched[i];
                s->rr = i + 1;
                /* (the hint first: lock-free, so the looks at many
                 * ports overlap their cache misses) */
                if (port_rx_hint(m->p) && port_rx_ready(m->p)) {
                        m->quiet_since = now;
                        m->empty_looks = 0;
                        port_set_watch(m->p, cpu);
                        report(m, evs, max, &n);
                        gone |= m->gone;
                        s->busy = now;
                } else if (++m->empty_looks >= SET_IDLE_LOOKS &&
                           s->busy > m->quiet_since + SET_IDLE_NS && quiet < SET_ARM_BATCH) {
                        idle[quiet++] = m;
                }
        }
        if (quiet)
                arm(s, idle, quiet, evs, max, &n, cpu, now);
        if (quiet || gone)
                compact(s);
        return n;
}

static int look_once(rset *s, int timeout_ms, unsigned cpu);

/* Take what epoll says (waiting up to timeout_ms): the members whose ear was
 * rung (or whose peer died) are watched again. Full batches are followed by
 * more, at once (up to SET_LOOK_BATCHES). Returns how many events. */
static int look(rset *s, int timeout_ms, unsigned cpu) {
        int total = 0;
        for (int b = 0; b < SET_LOOK_BATCHES; b++) {
                int k = look_once(s, b ? 0 : timeout_ms, cpu);
                if (k < 0)
                        return total ? total : k;
                total += k;
                if (k < SET_EVENTS)
                        break;
        }
        s->rung = total > 0;
        return total;
}

static int look_once(rset *s, int timeout_ms, unsigned cpu) {
        struct epoll_event ev[SET_EVENTS];
        int k = epoll_wait(s->ep, ev, SET_EVENTS, timeout_ms);
        if (k < 0)
                return errno == EINTR ? 0 : -errno;
        uint64_t now = now_ns();
        for (int i = 0; i < k; i++) {
                uint64_t d = ev[i].data.u64;
                if (d == SET_OWN_EAR) {
                        wake_drain(s->ear);
                        continue;
                }
                member *m = (member *)(uintptr_t)(d & ~(uint64_t)SET_PIDFD_TAG);
                if (d & SET_PIDFD_TAG)
                        atomic_store(&m->p->peer_gone, true);
                else if (wake_drain(m->p->ear_rx) == -EPIPE)
                        atomic_store(&m->p->peer_gone, true);
                watch(s, m, cpu, now);
        }
        return k;
}

/* After a sleep of slept ns that a message ended (woken: a ring, and the
 * pass after it found a port ready) or the deadline or a ring for nothing
 * did: a message soon after the spin gave up says the gap between bursts
 * is a bit longer than the spin — and each burst then starts with a kernel
 * wake-up (and its first writers' rings until the set is up again). So the
 * spin grows to twice the gap seen (at most SET_SPIN_MAX_NS); a long or
 * idle sleep brings it back to spin_us. (No spin wanted, none grown.) Only
 * a message grows it: a peer that rings its ear for nothing every few ms
 * (and says in its run slot that it may write) would otherwise keep the
 * set's thread spinning 4 ms of every few, for no message at all. */
static void spin_adapt(rset *s, uint64_t slept, bool woken) {
        uint64_t base = (uint64_t)s->spin_us * 1000u;
        if (!base)
                return;
        if (woken && slept < SET_SPIN_MAX_NS)
                s->spin_ns = MIN(2 * (s->spin_ns + slept), (uint64_t)SET_SPIN_MAX_NS);
        else
                s->spin_ns = base;
}

/* Is a spin worth it: may a watched port's peer write soon? Yes if one is
 * not asleep in a wait, or has an answer of ours to read (it is waking up
 * for it). Not if every one sleeps with nothing from us: each waits for
 * something else (run slots: the peer's to write; a lie costs a spin). */
static bool peers_may_write(rset *s) {
        for (uint32_t i = 0; i < s->n_watched; i++) {
                port *p = s->watched[i]->p;
                if (!atomic_load_explicit(&p->peer_run->blocked, memory_order_relaxed) ||
                    atomic_load_explicit(&p->prod.ctl->tail, memory_order_relaxed) !=
                            atomic_load_explicit(&p->prod.ctl->head, memory_order_relaxed))
                        return true;
        }
        return false;
}

/* The wait of ipcf_set_wait, under the set's lock: deadline is the call's,
 * from before it waited for the lock (timeout_ms tells 0 and -1 apart). */
static int set_collect(rset *s, ipcf_set_event *evs, unsigned max, int timeout_ms,
                       uint64_t deadline) {
        unsigned cpu = this_cpu();
        uint64_t spin_end = 0;
        for (unsigned round = 0;; round++) {
                if (atomic_load(&s->closed))
                        return -EBADF;
                set_step_aside(s);
                uint64_t now = now_ns();
                /* the armed members' ears, now and then; and whether to
                 * spin on */
                if (now - s->looked >= (spin_end || s->rung ? SET_LOOK_NS : SET_LOOK_BUSY_NS)) {
                        s->looked = now;
                        int r = s->n_watched < s->n ? look(s, 0, cpu) : 0;
                        if (r < 0)
                                return r;
                        if (spin_end && !peers_may_write(s))
                                spin_end = now;
                }
                unsigned n = pass(s, evs, max, cpu, now);
                if (s->rung_after) {
                        spin_adapt(s, s->rung_after, n > 0);
                        s->rung_after = 0;
                }
                if (n)
                        return (int)n;
                if (timeout_ms != 0 && s->n_watched && s->spin_ns) {
                        if (!spin_end)
                                spin_end = peers_may_write(s) ? MIN(now + s->spin_ns, deadline)
                                                              : now;
                        if (now < spin_end) {
                                for (int i = 0; i < 16; i++)
                                        cpu_relax();
                                continue;
                        }
                }
                /* Nothing ready: arm every watched member, then sleep until
                 * a ring. (Spurious rings, a peer's flood among them, cost
                 * rounds, never the deadline: timeout 0 looks twice.) */
                arm(s, s->watched, s->n_watched, evs, max, &n, cpu, now);
                if (s->n_watched)
                        memcpy(s->warm, s->watched, s->n_watched * sizeof(*s->warm));
                s->n_warm = s->n_watched;
                compact(s);
                if (n)
                        return (int)n;
                if (timeout_ms == 0 ? round > 0 : now_ns() >= deadline)
                        return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
                int r = look(s, timeout_ms == 0 ? 0 : deadline_poll_ms(deadline), cpu);
                if (r < 0)
                        return r;
                if (timeout_ms != 0 && r > 0)
                        s->rung_after = MAX(now_ns() - now, 1u); /* (the next pass decides) */
                else if (timeout_ms != 0)
                        spin_adapt(s, now_ns() - now, false);
                now = s->looked = now_ns();
                /* Woken: the ports that were busy when it fell asleep are
                 * likely busy again (their writers' next messages would each
                 * ring through the kernel): watch them at once. Those that
                 * stay quiet are armed again after SET_IDLE_NS. */
                if (r > 0)
                        for (uint32_t i = 0; i < s->n_warm; i++)
                                watch(s, s->warm[i], cpu, now);
                s->n_warm = 0;
                spin_end = 0;
        }
}

int ipcf_set_wait(int set, ipcf_set_event *evs, unsigned max, int timeout_ms) {
        if (!evs || !max || max > INT_MAX || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        rset *s = handle_get(set, &set_kind);
        if (!s)
                return -EBADF;
        if (inherited(s)) {
                handle_put(s);
                return -EBADF;
        }
        /* (one deadline for the whole call: a wait for another waiter's
         * lock counts against the timeout) */
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        int r;
        if (plock_try(&s->lock))
                r = 0;
        else if (timeout_ms == 0)
                r = -EAGAIN;
        else
                r = plock_lock_by(&s->lock, deadline);
        if (r == 0) {
                r = set_collect(s, evs, max, timeout_ms, deadline);
                plock_unlock(&s->lock);
        }
        handle_put(s);
        return r;
}

/* ---- the handle kind ------------------------------------------------------------ */

/* ipcf_dealloc of a set: a thread waiting on it returns -EBADF. */
static void set_end(void *obj, const char *reason) {
        (void)reason;
        rset *s = obj;
        atomic_store(&s->closed, true);
        if (!inherited(s)) /* (the bell is the maker's too) */
                wake_ring(s->bell);
}

/* In a child of fork() the descriptor is the maker's epoll instance: -EBADF,
 * as the set's other calls there (FORK). */
static int set_fd(void *obj) {
        rset *s = obj;
        return inherited(s) ? -EBADF : s->ep;
}

static void set_destroy(void *obj) {
        rset *s = obj;
        while (s->n)
                member_remove(s, s->mem[s->n - 1]);
        free(s->mem);
        free(s->watched);
        free(s->warm);
        safe_close(s->ep);
        safe_close(s->ear);
        safe_close(s->bell);
}
