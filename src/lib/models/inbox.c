/*
 * inbox.c — one input queue over many flows (the fan-in behind services and
 * datagram endpoints).
 *
 * An inbox owns a set of channels (flows) and, if named, the registration of
 * its name, made with CTL_REG_AUTO: the daemon accepts requests of the
 * inbox's role on its behalf (so a sender never waits for the receiver to come
 * round) and refuses other roles; the inbox takes the ready flows from its
 * registration socket. Every
 * message taken is stamped with its channel's peer, which the daemon took from
 * the kernel when the channel was allocated: a sender cannot pose as another.
 *
 * Taking scans the channels round robin from where the last take stopped
 * (fairness). When all are empty, the taker spins (only while some peer runs
 * on another CPU), then sets `want` on every channel, fences, re-checks, and
 * sleeps in epoll_wait() on the registration socket and every channel's rx
 * ear (the handshake of wait.c, over a set). b->wake is a wake-up channel
 * (common/wake.h) the takers ring for each other; a process fork() made
 * makes its own epoll set and wake-up channel at its first use of the inbox,
 * and serves only channels that came to it (family.c). Not an eventfd: a
 * process fork() made shares the parent's until then, and could clear
 * O_NONBLOCK on it and fill its counter, so that the parent's next ring
 * blocked for good.
 *
 * Who is awake: several threads may take from one inbox (a service's
 * workers). What callers see of the inbox's side in each channel's run slot
 * (ring.h: `blocked`, `waiting`, `cpu`; wait.c port_peer_spinnable decides
 * from them whether a caller spins for its answer or sleeps) is the state of
 * the inbox as a whole, not of the last thread that moved: it shows asleep
 * only while every taker in inbox_take sleeps and none is answering, and
 * waiting only while every taker waits and none is answering (a taker back
 * from an answer shows its wait late: spin_for_message). A taker is
 * answering from the moment it leaves inbox_take with a message until the
 * same thread comes back (b->out: at most INBOX_OUT_MAX of them, by
 * pthread_self(); one that has not come back within OUT_STALE_NS — a thread
 * that took a request and stopped taking — no longer counts when a taker goes
 * to sleep). A taker that leaves with a message shows its CPU on the channel
 * it took from; a spinning taker shows its own on every channel only while
 * nobody answers. These marks are hints for spinning, never part of the
 * wake-up: a request always finds `want` set while any taker sleeps (each
 * sleeper sets it on every channel and fences before its last look), so a
 * request published as the last taker goes to sleep still wakes one, whatever
 * the marks say. A wrong "awake" costs a caller its spin budget (10 µs); a
 * wrong "asleep" a futex sleep and wake-up for its answer.
 *
 * Locking: b->lock guards the set and the counts above; a taker holds it
 * while scanning and lets it go while asleep in epoll_wait(), so another
 * thread can add a channel (a datagram sender's new destination) meanwhile:
 * the adder marks the new channel like the others and rings b->wake so
 * sleepers rescan. `want` flags are cleared only when the last sleeper wakes.
 * epoll wakes one sleeper per event, so a sleeper that wakes to find the
 * inbox closed rings b->wake again for the next. Writers of answers need
 * only the channel's own write lock.
 *
 * A service's channels (role CTL_ROLE_CALL) each carry an account of the
 * requests this process took and has not answered (struct inbox_book,
 * inbox.h; port.extra, made as the channel comes into the set), so that
 * service.c answers each at most once: its slots change by
 * compare-and-swap alone, outside b->lock.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "lib/models/inbox.h"

#define REG_MARK INBOX_REG_MARK
#define WAKE_MARK INBOX_WAKE_MARK

/* Many callers at once: see inbox_set_busy. */
#define BUSY_ON 16u
#define BUSY_MANY 48u
#define BUSY_SPAN 8u /* windows: how far back BUSY_MANY counts */
#define BUSY_WINDOW_NS 10000000u

/* While requests keep coming, new channels are taken in at least this often
 * (inbox_take). */
#define ACCEPT_EVERY_NS 1000000u

static void inbox_show(inbox *b, bool force);

void inbox_wake_close(inbox *b) {
        b->wake = safe_close(b->wake);
        b->wake_bell = safe_close(b->wake_bell);
}

int inbox_init(inbox *b, const char *name, const ipcf_reg_opts *opts, uint8_t role) {
        *b = (inbox){ .role = role, .epfd = -1, .wake = -1, .wake_bell = -1, .window = 1, .span = 1,
                    .accept_due = true, .window_len_ns = BUSY_WINDOW_NS, .busy_on = BUSY_ON, .busy_many = BUSY_MANY };
        b->fam_ear = b->fam_bell = -1;
        b->fork_gen = handle_fork_gen();
        b->epfd = epoll_create1(EPOLL_CLOEXEC);
        int e = b->epfd < 0 ? (errno == EMFILE ? -EMFILE : -errno) : wake_new(&b->wake, &b->wake_bell);
        struct epoll_event wev = { .events = EPOLLIN, .data.u64 = WAKE_MARK };
        if (e == 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->wake, &wev) < 0)
                e = -errno;
        if (e == 0)
                e = family_open(b);
        if (e < 0) {
                family_close(b);
                b->epfd = safe_close(b->epfd);
                inbox_wake_close(b);
                return e;
        }
        if (name) {
                uint32_t auto_role = CTL_REG_AUTO | (uint32_t)role << CTL_REG_ROLE_SHIFT;
                int r = reg_register(name, opts, auto_role, &b->reg_tok);
                b->has_reg = r >= 0;
                struct epoll_event ev = { .events = EPOLLIN, .data.u64 = REG_MARK };
                if (r >= 0 && epoll_ctl(b->epfd, EPOLL_CTL_ADD, reg_sock(b->reg_tok), &ev) < 0)
                        r = -errno;
                if (r < 0) {
                        if (b->has_reg)
                                reg_close_auto(b->reg_tok, NULL);
                        family_close(b);
                        b->epfd = safe_close(b->epfd);
                        inbox_wake_close(b);
                        return r;
                }
        }
        pthread_mutex_init(&b->lock, NULL);
        return 0;
}

void inbox_deinit(inbox *b) {
        /* Channels still here (the handle was detached, not deallocated): let
         * them go in this process only, handing those that other processes
         * of the family hold over to them. */
        (void)family_let_go(b);
        for (unsigned i = 0; i < b->n; i++) {
                handle_put(b->chans[i].p);
                ipcf_detach(b->chans[i].ph);
        }
        if (b->has_reg)
                reg_detach(b->reg_tok);
        safe_close(b->epfd);
        inbox_wake_close(b);
        family_close(b);
        free(b->chans);
        pthread_mutex_destroy(&b->lock);
}

int inbox_detach(inbox *b) {
        if (atomic_load(&b->fork_gen) != handle_fork_gen())
                return 0; /* inherited, never used here: inbox_deinit lets go of it */
        pthread_mutex_lock(&b->lock);
        int r = family_let_go(b);
        pthread_mutex_unlock(&b->lock);
        return r;
}

/* An empty account of requests for a service's channel p (under b->lock,
 * before p is marked as b's: nobody in this process answers on it yet). A
 * channel taken over (family.c) holds this process's copy, made at the
 * fork, of what another process owed then: emptied. */
static int book_ready(port *p) {
        struct inbox_book *k = p->extra;
        if (!k)
                return (p->extra = calloc(1, sizeof(*k))) ? 0 : -ENOMEM;
        atomic_store(&k->floor, 0);
        for (unsigned i = 0; i < INBOX_BOOK_SLOTS; i++)
                atomic_store(&k->id[i], 0);
        return 0;
}

int inbox_keep_locked(inbox *b, struct inbox_chan c) {
        port *p = c.p;
        if (b->role == CTL_ROLE_CALL && book_ready(p) < 0)
                return -ENOMEM;
        if (b->n == b->cap) {
                unsigned cap = b->cap ? b->cap * 2 : 16;
                struct inbox_chan *a = realloc(b->chans, cap * sizeof(*a));
                if (!a)
                        return -ENOMEM;
                b->chans = a;
                b->cap = cap;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)c.ph };
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, p->ear_rx, &ev) < 0)
                return -errno;
        c.window = c.span = 0;
        b->chans[b->n++] = c;
        atomic_store(&p->owner, b);
        /* What the others show ("Who is awake"). */
        atomic_store_explicit(&p->my_run->blocked, b->shown_blocked, memory_order_relaxed);
        atomic_store_explicit(&p->my_run->waiting, b->shown_waiting, memory_order_relaxed);
        if (b->poll_mode)
                (void)ipcf_fd(c.ph); /* the channel keeps its eventfd exact too */
        if (b->sleepers) {
                /* Sleepers set `want` on the channels they knew: this one too,
                 * and make them rescan. */
                atomic_store(&p->cons.ctl->rx_sleep, 1);
                (void)wake_ring(b->wake_bell);
        }
        return 0;
}

/* Add channel ph, which came to this process (under b->lock). */
static int inbox_add_locked(inbox *b, int ph) {
        port *p = handle_get_port(ph);
        if (!p)
                return -EBADF;
        int r = inbox_keep_locked(b, (struct inbox_chan){ .ph = ph, .p = p, .forks = family_forks(), .slot = -1 });
        if (r < 0)
                handle_put(p);
        return r;
}

int inbox_add(inbox *b, int ph) {
        int r = inbox_adopt(b);
        if (r < 0)
                return r;
        pthread_mutex_lock(&b->lock);
        r = inbox_add_locked(b, ph);
        pthread_mutex_unlock(&b->lock);
        return r;
}

/* Forget channel i (under b->lock) and end it with why. The daemon is told
 * without waiting for its answer (a take must not wait for a stopped daemon
 * under the lock: the daemon learns anyway, when the port's ears close). */
static void inbox_remove(inbox *b, unsigned i, const char *why) {
        struct inbox_chan c = b->chans[i];
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, c.p->ear_rx, NULL);
        b->chans[i] = b->chans[--b->n];
        bool shared = family_shared(&c);
        family_drop(b, &c);
        handle_put(c.p);
        port_dealloc_by(c.ph, why, 0);
        if (shared)
                family_ring(b); /* the others let go of their copies */
}

void inbox_close_all(inbox *b, const char *why) {
        if (inbox_adopt(b) < 0) {
                /* Inherited, and no epoll set of our own could be made: let go
                 * of the family's (so that ending the channels below changes
                 * nothing in it) and end them all, the foreign ones too. */
                b->epfd = safe_close(b->epfd);
                inbox_wake_close(b);
        }
        pthread_mutex_lock(&b->lock);
        b->closed = true;
        /* The name first, with the channels the daemon accepted for us and
         * we never took (no new one can come after), then the set: every
         * sender learns at once, none is left writing to nobody. Under the
         * lock, so no taker takes a channel in between. */
        if (b->has_reg) {
                reg_close_auto(b->reg_tok, why);
                b->has_reg = false;
                b->reg_dead = true;
        }
        while (b->n)
                inbox_remove(b, b->n - 1, why);
        while (b->n_foreign) {
                struct inbox_chan c = b->foreign[--b->n_foreign];
                handle_put(c.p);
                ipcf_dealloc(c.ph, why);
        }
        family_ring(b); /* the others forget the channels that ended */
        if (b->sleepers)
                (void)wake_ring(b->wake_bell); /* they see closed and leave */
        pthread_mutex_unlock(&b->lock);
}

/* Take in every channel the daemon made for the name (never blocks): it
 * accepted them on our behalf (CTL_REG_AUTO), checking their role. It costs
 * a system call (a recvmsg that finds nothing, most times), so a take does
 * it only when due (inbox_take). */
static void accept_pending(inbox *b) {
        b->accept_due = false;
        b->accepted_ns = b->now_ns;
        if (!b->has_reg || b->reg_dead)
                return;
        for (;;) {
                int ph = reg_take_flow(b->reg_tok);
                if (ph == -EHOSTDOWN || ph == -EBADF) {
                        /* The daemon is gone, or the registration (the user
                         * detached its number): no new senders. Stop watching
                         * its socket (a hang-up stays readable: a busy loop;
                         * a closed one left the set already) and serve the
                         * channels we have. */
                        int fd = reg_sock(b->reg_tok);
                        if (fd >= 0)
                                epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
                        b->reg_dead = true;
                        return;
                }
                if (ph == -EAGAIN)
                        return;
                if (ph >= 0 && inbox_add_locked(b, ph) < 0)
                        ipcf_dealloc(ph, "cannot take more senders");
        }
}

/* Many callers at once: when BUSY_ON channels or more had a request taken
 * within one window of BUSY_WINDOW_NS and at least one of their senders ran
 * on our CPU, or BUSY_MANY channels or more wherever they ran within a span
 * of BUSY_SPAN windows (64 callers pinned to one CPU, spinning in turn a
 * time slice each, showed 8-15 senders in most windows of a quiet machine),
 * a sender's answer may be many turns of the service away, and senders may
 * share a CPU.
 * The inbox then marks its side of every channel CALL_RUN_BUSY
 * (port_peer_spinnable: no plain spin; wait.c: a sender on another CPU than
 * ours gives its CPU away between looks for its answer, one on our CPU
 * sleeps and is woken by the answer), until a window sees fewer than BUSY_ON
 * senders, wherever they ran, in a span that saw fewer than BUSY_MANY (so a
 * window disturbed by other work does not lift it while many callers
 * remain). Counting senders over a long window,
 * not requests queued: callers that share one CPU and spin for their answers
 * take turns a time slice each and never queue more than one request at a
 * time, yet are many. Where they ran: 16 callers pinned to the other CPU
 * than ours lost a third of their calls/s under the mark (a switch between
 * callers per call instead of a short spin), while 16 and 32 callers spread
 * over both CPUs gained (docs/PERFORMANCE.md, "Many clients of one
 * service"). A sender's CPU is the one its last wait noted in its run slot
 * (wait.c run_note_cpu). */

/* Mark our side of every channel blocked or not (under b->lock). */
static void inbox_mark_blocked(inbox *b, uint32_t on) {
        for (unsigned i = 0; i < b->n; i++)
                if (atomic_load_explicit(&b->chans[i].p->my_run->blocked, memory_order_relaxed) != on)
                        atomic_store_explicit(&b->chans[i].p->my_run->blocked, on,
                                              memory_order_relaxed);
}

static void inbox_set_busy(inbox *b, bool busy) {
        if (b->busy == busy)
                return;
        b->busy = busy;
        inbox_show(b, false);
}

/* Do this window's (and span's) senders raise the mark? (Keeping it up
 * takes less: inbox_roll_window.) */
static bool inbox_window_busy(const inbox *b) {
        return b->span_senders >= b->busy_many || (b->senders >= b->busy_on && b->senders_here);
}

/* Start a new window once this one is over (under b->lock). */
static void inbox_roll_window(inbox *b) {
        uint64_t t = b->now_ns = now_ns();
        if (t - b->window_ns < b->window_len_ns)
                return;
        if (b->senders < b->busy_on && b->span_senders < b->busy_many)
                inbox_set_busy(b, false);
        b->window++;
        b->window_ns = t;
        b->senders = b->senders_here = 0;
        if (b->window % BUSY_SPAN == 0) {
                b->span = b->window;
                b->span_senders = 0;
        }
}

/* After a take from channel c (under b->lock): its sender counts once a
 * window, and once a span. */
static void inbox_note_take(inbox *b, struct inbox_chan *c) {
        if (c->window != b->window) {
                c->window = b->window;
                b->senders++;
                if (c->span != b->span) {
                        c->span = b->span;
                        b->span_senders++;
                }
                int cpu = sched_getcpu();
                if (cpu >= 0 && atomic_load_explicit(&c->p->peer_run->cpu, memory_order_relaxed) ==
                                        (uint32_t)cpu)
                        b->senders_here++;
                if (!b->busy && inbox_window_busy(b))
                        inbox_set_busy(b, true);
        }
        inbox_roll_window(b);
}

/* With this many channels or more, a take looks at each ring (as any_ready
 * does, under b->lock) before it takes the port's lock: 32 callers pinned to
 * one CPU made 838-906 k calls/s with the look against 383-446 k without
 * (spinning in turn they queue about one request at a time, and every take
 * tried up to 31 empty channels under their locks). With fewer channels it
 * does not: the look on every take cost 4 and 8 pinned callers 30-70 % of
 * their calls/s (43c0617). It costs 32 unpinned callers 5-10 %; skipping it
 * under the busy mark cost 64 pinned ones about 20 % (docs/PERFORMANCE.md,
 * "Where the senders ran"). */
#define LOOK_FIRST 16u

/* Take one message from any channel without waiting (under b->lock). */
static ssize_t take(inbox *b, port_msg_fn fn, void *ctx, port **ret_chan) {
        bool look = b->n >= LOOK_FIRST;
        for (unsigned k = 0; k < b->n;) {
                unsigned i = (b->next + k) % b->n;
                struct inbox_chan *c = &b->chans[i];
                if (look && !ring_ready(&c->p->cons) && !port_end_error(c->p)) {
                        k++;
                        continue;
                }
                ssize_t r = port_read_with(c->p, 0, fn, ctx);
                if (r >= 0 || r == -EMSGSIZE) {
                        /* Its sender waits for our answer: say where it is made. */
                        int cpu = sched_getcpu();
                        if (cpu >= 0 && atomic_load_explicit(&c->p->my_run->cpu, memory_order_relaxed) !=
                                                (uint32_t)cpu)
                                atomic_store_explicit(&c->p->my_run->cpu, (uint32_t)cpu,
                                                      memory_order_relaxed);
                        handle_ref(c->p);
                        *ret_chan = c->p;
                        b->next = i + 1;
                        inbox_note_take(b, c);
                        return r;
                }
                if (r == -EAGAIN) {
                        k++;
                        continue;
                }
                /* The sender left (or broke its channel): forget it. */
                inbox_remove(b, i, r == -EPROTO ? "protocol error" : "sender gone");
        }
        return -EAGAIN;
}

static bool any_ready(inbox *b) {
        for (unsigned i = 0; i < b->n; i++)
                if (ring_ready(&b->chans[i].p->cons) || port_end_error(b->chans[i].p))
                        return true;
        return false;
}

/* Mark every channel's run slot as waiting (or not) (under b->lock). */
static void inbox_mark_waiting(inbox *b, uint32_t on) {
        for (unsigned i = 0; i < b->n; i++)
                atomic_store_explicit(&b->chans[i].p->my_run->waiting, on, memory_order_relaxed);
}

/* ---- who is awake (see the top of the file) ---- */

/* The calling thread comes back: it no longer answers (under b->lock). */
static bool out_forget(inbox *b, pthread_t me) {
        for (unsigned i = 0; i < b->n_out; i++)
                if (pthread_equal(b->out[i].who, me)) {
                        b->out[i] = b->out[--b->n_out];
                        return true;
                }
        return false;
}

/* The calling thread leaves with a message (under b->lock, b->now_ns the
 * take's time). With INBOX_OUT_MAX answering already it does not count: the
 * inbox may then show asleep while it answers (a futex hand-off, no more). */
static void out_note(inbox *b) {
        if (b->n_out < INBOX_OUT_MAX)
                b->out[b->n_out++] = (struct inbox_out){ .who = pthread_self(), .since = b->now_ns };
}

/* Forget takers that left more than OUT_STALE_NS ago (under b->lock). */
static void out_expire(inbox *b) {
        for (unsigned i = 0; i < b->n_out;) {
                if (b->now_ns - b->out[i].since > OUT_STALE_NS)
                        b->out[i] = b->out[--b->n_out];
                else
                        i++;
        }
}

/* Show on every channel what the takers do, where it changed (or, with
 * force, wherever a slot says otherwise: a reply's wait for room in wait.c
 * writes the slot too) (under b->lock): asleep (1) only while every taker
 * sleeps and none answers, else CALL_RUN_BUSY under the busy mark; waiting
 * only while every taker waits and none answers. */
static void inbox_show(inbox *b, bool force) {
        bool answering = b->n_out > 0;
        uint32_t blocked = !answering && b->sleepers && b->sleepers == b->takers ? 1u
                           : b->busy                                          ? CALL_RUN_BUSY
                                                                              : 0u;
        uint32_t waiting = !answering && b->waiters && b->waiters == b->takers;
        if (blocked != b->shown_blocked || force) {
                b->shown_blocked = blocked;
                inbox_mark_blocked(b, blocked);
        }
        if (waiting != b->shown_waiting) {
                b->shown_waiting = waiting;
                inbox_mark_waiting(b, waiting);
        }
}

/* Spin while some sender runs on another CPU, up to the spin budget; with
 * many senders at once (b->busy), the whole budget: their next requests come
 * within it. A taker that comes back from an answer shows it waits only
 * after ANNOUNCE_ROUNDS rounds (inbox_take; as wait.c, and for the same
 * reason: a caller reads the run slot at each of its waits, and a request
 * that comes at once then finds no store of ours to it). */
static bool spin_for_message(inbox *b, uint64_t deadline) {
        int cpu = sched_getcpu();
        /* Say where we run, so that senders waiting for our answers know
         * whether spinning for them can pay; not while another taker answers
         * (it showed its CPU on the channel it took from: take()). */
        for (unsigned i = 0; i < b->n && !b->n_out; i++)
                if (atomic_load_explicit(&b->chans[i].p->my_run->cpu, memory_order_relaxed) !=
                    (uint32_t)cpu)
                        atomic_store_explicit(&b->chans[i].p->my_run->cpu, (uint32_t)cpu,
                                              memory_order_relaxed);
        uint64_t limit = MIN(now_ns() + (uint64_t)QOS_DEFAULT_SPIN_US * 1000u, deadline);
        for (unsigned i = 1;; i++) {
                if (any_ready(b))
                        return true;
                cpu_relax();
                if (i == ANNOUNCE_ROUNDS)
                        inbox_show(b, false);
                if ((i & 63) == 0) {
                        if (now_ns() >= limit)
                                return false;
                        bool someone = b->busy;
                        for (unsigned j = 0; j < b->n && !someone; j++)
                                someone = port_peer_spinnable(b->chans[j].p, (unsigned)cpu);
                        if (!someone)
                                return false;
                }
        }
}

/* What epoll_wait reported (under b->lock). */
static void events_note(inbox *b, const struct epoll_event *ev, int n) {
        for (int k = 0; k < n; k++) {
                if (ev[k].data.u64 == WAKE_MARK) {
                        (void)wake_drain(b->wake);
                        continue;
                }
                if (ev[k].data.u64 == INBOX_HOLDER_MARK)
                        b->holder_news = true; /* (inbox_take looks) */
                if (ev[k].data.u64 == REG_MARK || ev[k].data.u64 >= INBOX_HOLDER_MARK || b->poll_mode)
                        continue; /* (the family's: inbox_take looks) */
                for (unsigned i = 0; i < b->n; i++) /* it may have left meanwhile */
                        if ((uint64_t)b->chans[i].ph == ev[k].data.u64 &&
                            wake_drain(b->chans[i].p->ear_rx) == -EPIPE)
                                /* hung up: the sender is gone (take() drops it) */
                                atomic_store(&b->chans[i].p->peer_gone, true);
        }
}

/* In poll mode, a take of 0 that finds nothing reaps the epoll set's
 * events without waiting (under b->lock): nobody else waits on it, and an
 * edge-triggered entry (the family's bell, a holder's exit) stays ready,
 * keeping the descriptor the user polls readable for ever, until reaped.
 * Whether there were any. Not while takers sleep on the set, nor in a
 * process no fork() touched (no such entry fires there: the system call
 * would be spent on every empty take of an event loop for nothing). */
static bool events_reap(inbox *b) {
        if (b->sleepers || !family_forked())
                return false; /* (sleepers reap it, and need its wake-ups) */
        struct epoll_event ev[64];
        int n = epoll_wait(b->epfd, ev, 64, 0);
        events_note(b, ev, n);
        return n > 0;
}

/* Sleep until a channel or the registration has something, or the deadline.
 * Called and returns with b->lock held; lets it go while asleep. */
static int sleep_for_message(inbox *b, uint64_t deadline) {
        b->sleepers++;
        /* `want` on every channel whoever else is awake: the wake-up never
         * depends on another taker coming back ("Who is awake"). */
        for (unsigned i = 0; i < b->n; i++)
                atomic_store(&b->chans[i].p->cons.ctl->rx_sleep, 1);
        out_expire(b);
        inbox_show(b, true);
        atomic_thread_fence(memory_order_seq_cst);
        int r = 0;
        if (!any_ready(b)) {
                struct epoll_event ev[64];
                pthread_mutex_unlock(&b->lock);
                int n = epoll_wait(b->epfd, ev, 64, deadline_poll_ms(deadline));
                pthread_mutex_lock(&b->lock);
                if (n == 0)
                        r = -ETIMEDOUT;
                events_note(b, ev, n);
        }
        if (--b->sleepers == 0) {
                for (unsigned i = 0; i < b->n; i++)
                        atomic_store_explicit(&b->chans[i].p->cons.ctl->rx_sleep, 0,
                                              memory_order_relaxed);
        } else {
                /* epoll wakes one waiter per event, and the sender that woke us
                 * cleared its `want`: the others still asleep need it set again
                 * (then our scan after the fence catches what came meanwhile). */
                for (unsigned i = 0; i < b->n; i++)
                        atomic_store(&b->chans[i].p->cons.ctl->rx_sleep, 1);
                atomic_thread_fence(memory_order_seq_cst);
        }
        inbox_show(b, false);
        return r;
}

ssize_t inbox_take(inbox *b, port_msg_fn fn, void *ctx, int timeout_ms, port **ret_chan) {
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        ssize_t r = inbox_adopt(b);
        if (r < 0)
                return r;
        bool waited = false;
        pthread_mutex_lock(&b->lock);
        /* This thread is a taker now, and no longer answers (if it did). */
        bool answered = b->n_out && out_forget(b, pthread_self());
        b->takers++;
        inbox_show(b, false);
        for (;;) {
                if (b->closed) {
                        r = -EBADF; /* the handle was closed while we waited */
                        /* epoll woke one sleeper (us, perhaps), which
                         * drained b->wake: pass the news on to the others. */
                        if (b->sleepers)
                                (void)wake_ring(b->wake_bell);
                        break;
                }
                if (family_news(b))
                        family_look(b); /* channels handed over to us */
                /* New channels: after a sleep (the registration socket is
                 * in the epoll set: one that came woke us), at most
                 * ACCEPT_EVERY_NS after the last look while requests keep
                 * coming (by the clock of the last take), and when a wait
                 * of 0 finds nothing (a caller polling the inbox's
                 * descriptor, which the registration socket makes
                 * readable). Not on every take: a system call each. */
                bool accepted = b->accept_due || b->now_ns - b->accepted_ns >= ACCEPT_EVERY_NS;
                if (accepted)
                        accept_pending(b);
                r = take(b, fn, ctx, ret_chan);
                if (r == -EAGAIN && !accepted && timeout_ms == 0) {
                        accept_pending(b);
                        r = take(b, fn, ctx, ret_chan);
                }
                if (r == -EAGAIN && timeout_ms == 0 && b->poll_mode && events_reap(b) && family_news(b)) {
                        family_look(b);
                        r = take(b, fn, ctx, ret_chan);
                }
                if (r == -EAGAIN && b->reg_dead && b->n == 0) {
                        r = -EHOSTDOWN; /* nothing can ever come */
                        break;
                }
                if (r != -EAGAIN) {
                        /* More waiting and another taker asleep: let it take it. */
                        if (b->sleepers && any_ready(b))
                                (void)wake_ring(b->wake_bell);
                        break;
                }
                if (timeout_ms == 0)
                        break;
                if (!waited) {
                        /* Tell senders we wait, if every other taker does
                         * (see port_peer_spinnable); back from an answer,
                         * after ANNOUNCE_ROUNDS of the spin (spin_for_message)
                         * or at the sleep. */
                        waited = true;
                        b->waiters++;
                        if (!answered)
                                inbox_show(b, false);
                }
                if (spin_for_message(b, deadline))
                        continue;
                inbox_roll_window(b);
                int slept = sleep_for_message(b, deadline);
                b->accept_due = true;
                if (slept == -ETIMEDOUT || now_ns() >= deadline) {
                        accept_pending(b);
                        r = take(b, fn, ctx, ret_chan);
                        if (r == -EAGAIN)
                                r = -ETIMEDOUT;
                        break;
                }
        }
        if (waited)
                b->waiters--;
        b->takers--;
        if (r >= 0 || r == -EMSGSIZE)
                out_note(b); /* answering until it comes back */
        inbox_show(b, false);
        pthread_mutex_unlock(&b->lock);
        return r;
}

int inbox_fd(inbox *b) {
        int r = inbox_adopt(b);
        if (r < 0)
                return r;
        pthread_mutex_lock(&b->lock);
        if (!b->poll_mode) {
                b->poll_mode = true;
                for (unsigned i = 0; i < b->n; i++)
                        (void)ipcf_fd(b->chans[i].ph);
        }
        pthread_mutex_unlock(&b->lock);
        return b->epfd;
}

port *inbox_chan_of_token(inbox *b, uint64_t token, int *ret_err) {
        /* In a process fork() made, channels it inherited are not b's until
         * handed over (family.c): never answer on them. */
        int err = inbox_adopt(b);
        if (err < 0) {
                *ret_err = err;
                return NULL;
        }
        port *p = handle_get_token(token, &port_kind, &err);
        if (p && atomic_load(&p->owner) == b)
                return p;
        if (p) {
                /* Another inbox's channel, or a flow of this process that is
                 * no channel at all: never answer there. (A channel stays
                 * marked as b's until its handle closes, which happens as b
                 * lets go of it: then it is gone, -EPIPE.) */
                err = -EBADF;
                handle_put(p);
        }
        *ret_err = err == -ESTALE ? -EPIPE : err;
        return NULL;
}

/* ---- the account of requests taken (struct inbox_book, inbox.h) ---- */

/* Raise k's floor to at least id. */
static void book_raise(struct inbox_book *k, uint64_t id) {
        uint64_t f = atomic_load(&k->floor);
        while (f < id && !atomic_compare_exchange_weak(&k->floor, &f, id))
                ;
}

void inbox_book_owe(port *p, uint64_t id) {
        struct inbox_book *k = p->extra;
        if (!k || id == 0)
                return;
        unsigned h = (unsigned)(id % INBOX_BOOK_SLOTS);
        /* A few rounds: others take and answer on the channel meanwhile. */
        for (int round = 0; round < 8; round++) {
                for (unsigned i = 0; i < INBOX_BOOK_SLOTS; i++) {
                        _Atomic uint64_t *s = &k->id[(h + i) % INBOX_BOOK_SLOTS];
                        uint64_t free_ = 0;
                        if (atomic_load_explicit(s, memory_order_relaxed) == 0 &&
                            atomic_compare_exchange_strong(s, &free_, id))
                                return;
                }
                /* Full: forget the smallest id held (the floor first, so
                 * that an answer that no longer finds it lets it through). */
                unsigned j = INBOX_BOOK_SLOTS;
                uint64_t m = UINT64_MAX;
                for (unsigned i = 0; i < INBOX_BOOK_SLOTS; i++) {
                        uint64_t v = atomic_load(&k->id[i]);
                        if (v && v <= m) {
                                m = v;
                                j = i;
                        }
                }
                if (j == INBOX_BOOK_SLOTS)
                        continue; /* emptied meanwhile */
                book_raise(k, m);
                if (atomic_compare_exchange_strong(&k->id[j], &m, id))
                        return;
        }
        book_raise(k, id); /* not kept: its answer goes unchecked */
}

int inbox_book_settle(port *p, uint64_t id) {
        struct inbox_book *k = p->extra;
        if (!k)
                return -EALREADY;
        unsigned h = (unsigned)(id % INBOX_BOOK_SLOTS);
        for (unsigned i = 0; i < INBOX_BOOK_SLOTS; i++) {
                _Atomic uint64_t *s = &k->id[(h + i) % INBOX_BOOK_SLOTS];
                /* (acquire: a slot another id took by forgetting ours
                 * shows the floor raised over ours) */
                uint64_t v = atomic_load_explicit(s, memory_order_acquire);
                if (v == id && atomic_compare_exchange_strong(s, &v, 0))
                        return 0;
        }
        return id <= atomic_load(&k->floor) ? 0 : -EALREADY;
}

bool inbox_book_owes(port *p, uint64_t id) {
        struct inbox_book *k = p->extra;
        if (!k || id == 0)
                return false;
        for (unsigned i = 0; i < INBOX_BOOK_SLOTS; i++)
                if (atomic_load(&k->id[i]) == id)
                        return true;
        return id <= atomic_load(&k->floor);
}
