/*
 * loop.h — the daemon's event loop: one epoll set, a min-heap of timers, and
 * deferred freeing.
 *
 * The daemon is single-threaded; everything happens in callbacks of this loop.
 *
 * IO SOURCES: an object embeds a `loop_io` (fd + callback) and adds it with
 * loop_io_add(). Watches are level-triggered. loop_io_del() removes the fd
 * from the set (it does not close it) and marks the io dead: an event for it
 * already fetched in the current batch is then skipped, so a callback may
 * destroy any other object safely.
 *
 * TIMERS: an object embeds a `loop_timer`; loop_timer_arm() (re)schedules it
 * at an absolute CLOCK_MONOTONIC deadline in ns (fired to the microsecond
 * where the kernel has epoll_pwait2, else at the next millisecond), loop_timer_cancel() removes
 * it (safe when not armed). Timers sit in a binary min-heap: no per-object
 * polling, O(log n) per change. Expired timers fire after the IO batch.
 *
 * DEFERRED FREE: an object that may still be referenced by a fetched event is
 * released with loop_defer_free(); the memory is free()d after the current
 * batch of events and timers, when no stale pointer can remain.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/core/dlist.h"

typedef struct loop loop;
typedef struct loop_io loop_io;
typedef struct loop_timer loop_timer;

typedef void (*loop_io_fn)(loop_io *io, uint32_t events);
typedef void (*loop_timer_fn)(loop_timer *t);

struct loop_io {
        int fd;          /* watched fd, -1 once deleted */
        loop_io_fn fn;
        bool added;
};

struct loop_timer {
        uint64_t deadline;  /* ns, CLOCK_MONOTONIC */
        size_t heap_idx;    /* position in the heap, SIZE_MAX when not armed */
        loop_timer_fn fn;
};

int loop_new(loop **ret);
loop *loop_free(loop *l);

/* Watch io->fd (set by the caller, along with io->fn) for events (EPOLLIN...).
 * Returns 0 or -errno. */
int loop_io_add(loop *l, loop_io *io, int fd, uint32_t events, loop_io_fn fn);
/* Change the event mask of a watched io. */
int loop_io_mod(loop *l, loop_io *io, uint32_t events);
/* Stop watching (idempotent). Does not close the fd. */
void loop_io_del(loop *l, loop_io *io);

void loop_timer_init(loop_timer *t, loop_timer_fn fn);
/* (Re)arm t at deadline (ns). Returns 0 or -ENOMEM. */
int loop_timer_arm(loop *l, loop_timer *t, uint64_t deadline);
void loop_timer_cancel(loop *l, loop_timer *t);
static inline bool loop_timer_armed(const loop_timer *t) { return t->heap_idx != (size_t)-1; }

/* free(p) once the current dispatch round is over. On allocation failure
 * (rare) the pointer is kept on a fallback list and freed the same way. */
void loop_defer_free(loop *l, void *p);

/* Look at the descriptors without sleeping until deadline (ns): for a
 * module whose peers answer within microseconds while traffic flows (the
 * relay of flows with other hosts), so that their next event costs no
 * wake-up. Each call can only extend it. */
void loop_poll_until(loop *l, uint64_t deadline);

/*
 * SPINNERS: a module that expects a peer to write shared memory within
 * microseconds (the relay, after it delivered a message the local process
 * will answer) asks the loop to watch that memory instead of sleeping, until
 * a deadline (loop_spin_until). When the loop would sleep, it spins: it asks
 * each spinner's ready() (a few loads of memory, no system call), and every
 * LOOP_SPIN_PEEK_NS yields the CPU (sched_yield: a process woken onto this
 * CPU, often the one spun for, runs first) and looks at the descriptors
 * without sleeping (epoll, timeout 0); events and timers are served as
 * usual. A spinner whose ready() says yes, or whose deadline passed, leaves
 * the list and its fn() runs (it re-arms its wake-up there: the loop sleeps
 * after it). Spinning never outlasts the latest deadline asked, nor the
 * next timer. A loop too busy to sleep still asks every spinner once after
 * each round of events and timers (a spinner's process rings nobody: it
 * must not be starved).
 * ready() reads memory another process writes: it must only look (no
 * pointer from it followed), and fn() does the bounded work.
 */
typedef struct loop_spin loop_spin;
struct loop_spin {
        uint64_t until;                   /* ns, CLOCK_MONOTONIC */
        bool (*ready)(loop_spin *s);
        void (*fn)(loop_spin *s);         /* ready, or the deadline passed */
        struct dlist link;
};
/* Look at the descriptors this often while spinning. */
#define LOOP_SPIN_PEEK_NS 2000u
void loop_spin_init(loop_spin *s, bool (*ready)(loop_spin *s), void (*fn)(loop_spin *s));
/* Spin for s until deadline (extends an armed one). */
void loop_spin_until(loop *l, loop_spin *s, uint64_t deadline);
/* Stop spinning for s (safe when not spinning); fn() is not called. */
void loop_spin_cancel(loop_spin *s);
static inline bool loop_spinning(const loop_spin *s) { return dlist_linked(&s->link); }

/* Run until loop_quit() (which ends this run only: the loop may be run
 * again). Returns 0, or -errno if epoll_wait fails. */
int loop_run(loop *l);
void loop_quit(loop *l);

/* Timers pending (for tests and LIST). */
size_t loop_timers(const loop *l);
