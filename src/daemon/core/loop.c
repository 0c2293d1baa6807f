/*
 * loop.c — epoll dispatch, the timer min-heap and deferred frees (see loop.h).
 *
 * INVARIANTS
 *  - heap[i]->heap_idx == i for every armed timer; heap[0] is the earliest.
 *  - memory handed to loop_defer_free() is freed only between dispatch
 *    rounds, so a pointer fetched by epoll_wait() in this round stays valid
 *    (its io->fd is -1 and the event is skipped).
 */
#include "daemon/core/loop.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define LOOP_BATCH 64

struct loop {
        int epfd;
        bool quit;
        loop_timer **heap;
        size_t n_heap, cap_heap;
        void **defer;            /* pointers to free after this round */
        size_t n_defer, cap_defer;
        uint64_t poll_until;     /* loop_poll_until(): look without sleeping until then */
        struct dlist spinners;   /* loop_spin_until(): watched before sleeping */
        bool no_pwait2;          /* the kernel has no epoll_pwait2: ms timeouts */
};

int loop_new(loop **ret) {
        loop *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (l->epfd < 0) {
                int r = -errno;
                free(l);
                return r;
        }
        dlist_init(&l->spinners);
        *ret = l;
        return 0;
}

/* Free what was retired during the round just finished. */
static void loop_run_defer(loop *l) {
        for (size_t i = 0; i < l->n_defer; i++)
                free(l->defer[i]);
        l->n_defer = 0;
}

loop *loop_free(loop *l) {
        if (!l)
                return NULL;
        loop_run_defer(l);
        safe_close(l->epfd);
        free(l->heap);
        free(l->defer);
        free(l);
        return NULL;
}

int loop_io_add(loop *l, loop_io *io, int fd, uint32_t events, loop_io_fn fn) {
        struct epoll_event ev = { .events = events, .data.ptr = io };
        io->fd = fd;
        io->fn = fn;
        if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
                io->fd = -1;
                io->added = false;
                return -errno;
        }
        io->added = true;
        return 0;
}

int loop_io_mod(loop *l, loop_io *io, uint32_t events) {
        struct epoll_event ev = { .events = events, .data.ptr = io };
        if (!io->added)
                return -EBADF;
        return epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0 ? -errno : 0;
}

void loop_io_del(loop *l, loop_io *io) {
        if (io->added)
                epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
        io->added = false;
        io->fd = -1;
}

/* ---- timers: binary min-heap on deadline --------------------------------- */

void loop_timer_init(loop_timer *t, loop_timer_fn fn) {
        t->deadline = 0;
        t->heap_idx = (size_t)-1;
        t->fn = fn;
}

static void heap_set(loop *l, size_t i, loop_timer *t) {
        l->heap[i] = t;
        t->heap_idx = i;
}

/* Move the timer at i towards the root while it is earlier than its parent. */
static void heap_up(loop *l, size_t i) {
        loop_timer *t = l->heap[i];
        while (i > 0) {
                size_t p = (i - 1) / 2;
                if (l->heap[p]->deadline <= t->deadline)
                        break;
                heap_set(l, i, l->heap[p]);
                i = p;
        }
        heap_set(l, i, t);
}

/* Move the timer at i towards the leaves while a child is earlier. */
static void heap_down(loop *l, size_t i) {
        loop_timer *t = l->heap[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= l->n_heap)
                        break;
                if (c + 1 < l->n_heap && l->heap[c + 1]->deadline < l->heap[c]->deadline)
                        c++;
                if (t->deadline <= l->heap[c]->deadline)
                        break;
                heap_set(l, i, l->heap[c]);
                i = c;
        }
        heap_set(l, i, t);
}

void loop_timer_cancel(loop *l, loop_timer *t) {
        size_t i = t->heap_idx;
        if (i == (size_t)-1)
                return;
        t->heap_idx = (size_t)-1;
        loop_timer *last = l->heap[--l->n_heap];
        if (i == l->n_heap)
                return; /* it was the last slot */
        /* The last timer fills the hole; it may belong above or below it. */
        heap_set(l, i, last);
        heap_up(l, i);
        heap_down(l, last->heap_idx);
}

int loop_timer_arm(loop *l, loop_timer *t, uint64_t deadline) {
        loop_timer_cancel(l, t);
        if (l->n_heap == l->cap_heap) {
                size_t nc = l->cap_heap ? l->cap_heap * 2 : 64;
                loop_timer **h = realloc(l->heap, nc * sizeof(*h));
                if (!h)
                        return -ENOMEM;
                l->heap = h;
                l->cap_heap = nc;
        }
        t->deadline = deadline;
        heap_set(l, l->n_heap++, t);
        heap_up(l, t->heap_idx);
        return 0;
}

size_t loop_timers(const loop *l) { return l->n_heap; }

/* ---- deferred free ------------------------------------------------------- */

void loop_defer_free(loop *l, void *p) {
        if (!p)
                return;
        if (l->n_defer == l->cap_defer) {
                size_t nc = l->cap_defer ? l->cap_defer * 2 : 64;
                void **d = realloc(l->defer, nc * sizeof(*d));
                if (!d) {
                        /* Cannot defer: leak rather than risk a use-after-free. */
                        return;
                }
                l->defer = d;
                l->cap_defer = nc;
        }
        l->defer[l->n_defer++] = p;
}

/* ---- the loop ------------------------------------------------------------ */

void loop_quit(loop *l) { l->quit = true; }

/* How long epoll may sleep: until the earliest timer (UINT64_MAX: none), and
 * not at all while a poller asked to be looked at (loop_poll_until). */
static uint64_t loop_sleep_ns(loop *l, uint64_t now) {
        if (now < l->poll_until)
                return 0;
        if (l->n_heap == 0)
                return UINT64_MAX;
        uint64_t d = l->heap[0]->deadline;
        return d <= now ? 0 : d - now;
}

void loop_poll_until(loop *l, uint64_t deadline) {
        if (deadline > l->poll_until)
                l->poll_until = deadline;
}

/* epoll_pwait2 with a nanosecond timeout where the kernel has it (timers of
 * less than a millisecond — the protocol engine's pacing and acknowledgement
 * delays — fire on time), else epoll_wait rounded up to milliseconds (never
 * early). */
static int loop_wait(loop *l, struct epoll_event *ev, int n, uint64_t sleep_ns) {
        if (!l->no_pwait2) {
                struct timespec ts = { (time_t)(sleep_ns / 1000000000u), (long)(sleep_ns % 1000000000u) };
                int r = epoll_pwait2(l->epfd, ev, n, sleep_ns == UINT64_MAX ? NULL : &ts, NULL);
                if (r >= 0 || errno != ENOSYS)
                        return r;
                l->no_pwait2 = true;
        }
        int ms = sleep_ns == UINT64_MAX ? -1
                 : sleep_ns / 1000000u >= 0x7fffffff ? 0x7fffffff
                                                     : (int)((sleep_ns + 999999u) / 1000000u);
        return epoll_wait(l->epfd, ev, n, ms);
}

/* ---- spinners ------------------------------------------------------------ */

void loop_spin_init(loop_spin *s, bool (*ready)(loop_spin *s), void (*fn)(loop_spin *s)) {
        s->until = 0;
        s->ready = ready;
        s->fn = fn;
        dlist_init(&s->link);
}

void loop_spin_until(loop *l, loop_spin *s, uint64_t deadline) {
        if (deadline > s->until || !loop_spinning(s))
                s->until = deadline;
        if (!loop_spinning(s))
                dlist_add_tail(&l->spinners, &s->link);
}

void loop_spin_cancel(loop_spin *s) { dlist_del(&s->link); }

/* The first spinner that is ready (now: also one whose deadline passed),
 * taken off the list; NULL if none. */
static loop_spin *spin_take(loop *l, uint64_t now) {
        dlist_for_each(pos, &l->spinners) {
                loop_spin *s = dlist_entry(pos, loop_spin, link);
                if ((now && now >= s->until) || s->ready(s)) {
                        dlist_del(&s->link);
                        return s;
                }
        }
        return NULL;
}

/* After a round of events and timers: the spinners that are ready or whose
 * deadline passed, each once (a loop that never sleeps must not starve
 * them: their process's writes ring nobody while they spin). */
static void loop_spin_poll(loop *l) {
        if (dlist_empty(&l->spinners))
                return;
        size_t n = 0;
        dlist_for_each(pos, &l->spinners)
                n++;
        uint64_t now = now_ns();
        for (size_t i = 0; i < n && !l->quit; i++) {
                loop_spin *s = spin_take(l, now);
                if (!s)
                        return;
                s->fn(s);
        }
}

/* The loop would sleep for sleep_ns: spin instead while spinners wait
 * (loop.h). Returns the events fetched meanwhile (0 when a spinner ran or
 * the spinning ended: the caller looks again without sleeping), or -1 when
 * there was nothing to spin for (the caller sleeps). */
static int loop_spin_wait(loop *l, struct epoll_event *ev, int n, uint64_t now, uint64_t sleep_ns) {
        if (dlist_empty(&l->spinners))
                return -1;
        uint64_t end = sleep_ns == UINT64_MAX ? UINT64_MAX : now + sleep_ns, peek = now + LOOP_SPIN_PEEK_NS;
        for (unsigned i = 1;; i++) {
                loop_spin *s = spin_take(l, 0);
                if (!s && (i & 15) == 0) {
                        now = now_ns();
                        s = spin_take(l, now);
                        if (!s && (dlist_empty(&l->spinners) || now >= end))
                                return 0;
                        if (!s && now >= peek) {
                                /* a process woken onto this CPU (often the
                                 * one spun for) runs first */
                                sched_yield();
                                int r = loop_wait(l, ev, n, 0);
                                if (r != 0)
                                        return r < 0 && errno == EINTR ? 0 : r;
                                peek = now + LOOP_SPIN_PEEK_NS;
                        }
                }
                if (s) {
                        s->fn(s);
                        return 0;
                }
                cpu_relax();
        }
}

int loop_run(loop *l) {
        struct epoll_event ev[LOOP_BATCH];

        l->quit = false; /* a loop may be run again after loop_quit() */
        while (!l->quit) {
                uint64_t now = now_ns(), sleep_ns = loop_sleep_ns(l, now);
                int n = sleep_ns ? loop_spin_wait(l, ev, LOOP_BATCH, now, sleep_ns) : -1;
                if (n < 0)
                        n = loop_wait(l, ev, LOOP_BATCH, sleep_ns);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                for (int i = 0; i < n && !l->quit; i++) {
                        loop_io *io = ev[i].data.ptr;
                        if (io->fd < 0)
                                continue; /* deleted earlier in this batch */
                        io->fn(io, ev[i].events);
                }
                /* Fire every expired timer; a callback may arm or cancel others. */
                now = now_ns();
                while (!l->quit && l->n_heap && l->heap[0]->deadline <= now) {
                        loop_timer *t = l->heap[0];
                        loop_timer_cancel(l, t);
                        t->fn(t);
                }
                loop_spin_poll(l);
                loop_run_defer(l);
        }
        return 0;
}
