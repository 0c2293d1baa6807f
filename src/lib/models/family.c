/*
 * family.c — an inbox (a service, a datagram endpoint: inbox.c) shared by
 * processes fork() made: every channel is served by exactly one of them.
 *
 * A channel is a port end, single-consumer and single-producer in shared
 * memory, and its locks are the process's own (ipcf.h, CONVENTIONS): two
 * processes taking requests from one channel and answering on it corrupt
 * it (its caller saw -ECONNRESET, and replies to other calls). Channels the
 * registration hands out after a fork go to one process each (whoever reads
 * the FLOW from the shared registration socket: the prefork pattern); the
 * channels a process serves when it forks are in every process that forked
 * from it. The rule for those: they stay with the process that served them
 * (the holder) until it lets the inbox go without ending it (ipcf_detach,
 * inbox_deinit: it hands them over) or dies (the ones holding copies see it
 * go); then whichever process of the family that holds a copy looks first
 * takes each, and the others let go of their copies, so that the channel
 * lives only in the process that serves it and its caller learns at once
 * when that one dies — unless it forked meanwhile: then the same again.
 * (Not the first to take after the fork: the holder may be answering a
 * request from one of them at that moment, and its answer must be the
 * channel's only writer.)
 *
 * The family: what the inbox's maker made before any fork and every process
 * since inherits — one page of shared memory (struct inbox_family, inbox.h)
 * with a slot per channel that more than one process may hold, and a count
 * of hand-overs; and a wake-up channel (common/wake.h) rung at each
 * (edge-triggered in every process's epoll set; family_ring). A slot holds
 * the channel's flow id and a pid, in one word (one compare-and-swap moves
 * it): served by pid (written by pid as it forks: atfork_prepare), or handed
 * over by pid (free to take). A process holding a copy takes the channel by
 * swapping in "served by me" for "handed over" or, once the holder it knew
 * died (a pidfd of each holder in its epoll set), for "served by <the dead
 * holder>": one process wins each; any other word means another process
 * serves it, and the copy is let go. A slot is written only by the channel's
 * server (or its taker, by the swap), so no two slots name one channel. The
 * server empties the slot when the channel ends.
 *
 * A full page (FAMILY_SLOTS channels registered at forks or handed over and
 * not yet taken, by live processes; slots of dead ones are reclaimed when
 * the page is full): a channel that cannot be registered as its holder forks
 * is let go by the others when that holder dies (its caller sees
 * -ECONNRESET at once); one that cannot be handed over is ended (its caller
 * sees -EPIPE at once, reason "service let go: ...page full"), and
 * ipcf_detach says -ENOSPC.
 *
 * Not an eventfd for the bell: every process of the family shares its open
 * file description, so one of them could clear O_NONBLOCK on it and fill its
 * counter, and the next hand-over of any other blocked for good in
 * write(2); a ring of a wake-up channel never blocks. (A process of the
 * family can still withhold wake-ups from the others — shut the channel
 * down, or keep its queue full — as it can write anything on the page: the
 * others then see hand-overs at their next take.)
 *
 * Adoption: a process fork() made (handle_fork_gen() differs from the
 * inbox's) makes the inbox its own at its first use of it: an epoll set and
 * takers' wake-up channel of its own, on the same descriptor numbers (dup3: a
 * descriptor the user polls stays right), watching the registration socket,
 * the family's ear and a pidfd of each holder; every inherited channel goes
 * to `foreign`, kept (so that it can be taken over) but neither watched nor
 * read, and marked so that no answer goes out on it (port.owner:
 * inbox_chan_of_token). The inbox's lock and counts of takers are made
 * fresh: the threads they counted are the parent's. A foreign channel taken
 * over gets its port's locks made fresh too: nothing of this process
 * touched them since the fork, so a holder can only be a thread of the
 * parent that this process does not have (or a process that died).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"
#include "lib/core/lib.h"
#include "lib/models/inbox.h"

static _Atomic unsigned forks_made;    /* fork()s this process made */
/* One adoption at a time; guards the list of the process's inboxes too (and
 * is held across fork(): atfork_prepare). */
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER;
static inbox *family_list;             /* the inboxes with a family, in this process */

static void family_register(inbox *b);

/* Before fork(): each channel an inbox of ours serves goes to its family's
 * page as served by us, so that the processes holding copies can tell who
 * serves it, and take it over when we die. */
static void atfork_prepare(void) {
        pthread_mutex_lock(&adopt_lock);
        for (inbox *b = family_list; b; b = b->fam_next)
                family_register(b);
}

static void atfork_parent(void) {
        atomic_fetch_add(&forks_made, 1);
        pthread_mutex_unlock(&adopt_lock);
}

/* The child's one thread is the one that forked, which took adopt_lock in
 * atfork_prepare: it lets it go, as the parent does (not made fresh by
 * assignment: ThreadSanitizer then took the next lock for a double lock). */
static void atfork_child(void) {
        pthread_mutex_unlock(&adopt_lock);
}

__attribute__((constructor)) static void family_init(void) {
        pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
}

unsigned family_forks(void) {
        return atomic_load_explicit(&forks_made, memory_order_relaxed);
}

bool family_forked(void) {
        return family_forks() != 0 || handle_fork_gen() != 0;
}

/* ---- slots of the family's page ---- */

/* A slot: 0 free, else id << ID_SHIFT | HANDED? | pid. Flow ids are the
 * daemon's counter (41 bits: 2 * 10^12 flows); a pid is at most 2^22
 * (PID_MAX_LIMIT). */
#define PID_BITS 22
#define HANDED (1ull << PID_BITS)
#define ID_SHIFT (PID_BITS + 1)

static uint64_t slot_word(uint64_t id, bool handed, pid_t pid) {
        return id << ID_SHIFT | (handed ? HANDED : 0) | (uint64_t)pid;
}

static bool slot_is(uint64_t w, uint64_t id) {
        return w && w >> ID_SHIFT == (id << ID_SHIFT) >> ID_SHIFT;
}

static pid_t slot_pid(uint64_t w) {
        return (pid_t)(w & (HANDED - 1));
}

/* Empty the slots of processes that are gone (when the page is full): what
 * they registered or handed over and nobody took. */
static bool slots_reclaim(struct inbox_family *f) {
        bool any = false;
        for (unsigned k = 0; k < FAMILY_SLOTS; k++) {
                uint64_t w = atomic_load_explicit(&f->slot[k], memory_order_relaxed);
                if (w && kill(slot_pid(w), 0) < 0 && errno == ESRCH)
                        any |= atomic_compare_exchange_strong(&f->slot[k], &w, 0);
        }
        return any;
}

/* Put w in a free slot: its index, or -1 (the page is full). */
static int slot_put(struct inbox_family *f, uint64_t w) {
        for (int round = 0; round < 2; round++) {
                for (unsigned k = 0; k < FAMILY_SLOTS; k++) {
                        uint64_t v = 0;
                        if (atomic_compare_exchange_strong(&f->slot[k], &v, w))
                                return (int)k;
                }
                if (round == 0 && !slots_reclaim(f))
                        break;
        }
        return -1;
}

/* The slot of channel id: c->slot if it still names it, else the first that
 * does (a hand-over by a process that had none for it); -1 if none. */
static int slot_find(struct inbox_family *f, int hint, uint64_t id) {
        if (hint >= 0 && slot_is(atomic_load(&f->slot[hint]), id))
                return hint;
        for (unsigned k = 0; k < FAMILY_SLOTS; k++)
                if (slot_is(atomic_load_explicit(&f->slot[k], memory_order_acquire), id))
                        return (int)k;
        return -1;
}

/* Register the channels b serves (at a fork, under adopt_lock). b->lock is
 * tried a bounded time: a thread of ours may hold it while it forks (an
 * autostart of the daemon); its channels then are not registered. */
static void family_register(inbox *b) {
        if (!b->fam || atomic_load(&b->fork_gen) != handle_fork_gen())
                return;
        int locked = -1;
        for (int i = 0; i < 1000 && (locked = pthread_mutex_trylock(&b->lock)) != 0; i++)
                sched_yield();
        if (locked != 0)
                return;
        for (unsigned i = 0; i < b->n; i++) {
                struct inbox_chan *c = &b->chans[i];
                if (c->slot < 0 && c->p->flow_id && port_end_error(c->p) == 0)
                        c->slot = slot_put(b->fam, slot_word(c->p->flow_id, false, b->me));
        }
        pthread_mutex_unlock(&b->lock);
}

void family_drop(inbox *b, struct inbox_chan *c) {
        if (c->slot < 0)
                return;
        uint64_t w = slot_word(c->p->flow_id, false, b->me);
        atomic_compare_exchange_strong(&b->fam->slot[c->slot], &w, 0);
        c->slot = -1;
}

/* ---- opening, closing ---- */

int family_open(inbox *b) {
        void *m = mmap(NULL, sizeof(*b->fam), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return -ENOMEM;
        b->fam = m;
        b->me = getpid();
        int r = wake_new(&b->fam_ear, &b->fam_bell);
        if (r < 0)
                return r;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = INBOX_FAM_MARK };
        if (epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->fam_ear, &ev) < 0)
                return -errno;
        pthread_mutex_lock(&adopt_lock);
        b->fam_next = family_list;
        family_list = b;
        b->fam_listed = true;
        pthread_mutex_unlock(&adopt_lock);
        return 0;
}

static void watch_close(inbox *b) {
        for (unsigned i = 0; i < b->n_watch; i++)
                safe_close(b->watch[i].fd);
        b->n_watch = 0;
}

void family_close(inbox *b) {
        if (b->fam_listed) {
                pthread_mutex_lock(&adopt_lock);
                inbox **at = &family_list;
                while (*at && *at != b)
                        at = &(*at)->fam_next;
                if (*at)
                        *at = b->fam_next;
                b->fam_listed = false;
                pthread_mutex_unlock(&adopt_lock);
        }
        if (b->fam)
                munmap(b->fam, sizeof(*b->fam));
        b->fam = NULL;
        b->fam_ear = safe_close(b->fam_ear);
        b->fam_bell = safe_close(b->fam_bell);
        watch_close(b);
        for (unsigned i = 0; i < b->n_foreign; i++) {
                handle_put(b->foreign[i].p);
                ipcf_detach(b->foreign[i].ph);
        }
        b->n_foreign = 0;
        free(b->foreign);
        b->foreign = NULL;
}

bool family_shared(const struct inbox_chan *c) {
        return c->handed || c->slot >= 0 || c->forks != family_forks();
}

/* Every process watches the ear edge-triggered and none reads it, but the
 * ringer: it takes what is queued first (a few bytes, bounded work), so that
 * the queue never fills and each ring is a new edge in every epoll set. A
 * process whose wake-up finds the ear emptied by a ringer meanwhile (epoll
 * drops an event that no longer holds when it is reported) gets that
 * ringer's own ring, which follows. */
void family_ring(inbox *b) {
        atomic_fetch_add(&b->fam->rung, 1);
        (void)wake_drain(b->fam_ear);
        (void)wake_ring(b->fam_bell);
}

/* ---- adoption ---- */

/* Put the descriptor made at number old (closing this process's copy of
 * what old was); if that cannot be, made's own number. */
static int renumber(int old, int made) {
        if (old < 0 || dup3(made, old, O_CLOEXEC) < 0) {
                safe_close(old);
                return made;
        }
        close(made);
        return old;
}

/* Watch fd in b's epoll set under mark. */
static int watch(inbox *b, int fd, uint32_t events, uint64_t mark) {
        struct epoll_event ev = { .events = events, .data.u64 = mark };
        return epoll_ctl(b->epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* A pidfd of each holder of our foreign channels (up to FAMILY_WATCH), in
 * the epoll set: its exit wakes a taker (the copies inherited ones were the
 * parent's: closed here). Others are seen dead by kill(2) at a look. */
static void holders_watch(inbox *b) {
        watch_close(b);
        for (unsigned i = 0; i < b->n_foreign && b->n_watch < FAMILY_WATCH; i++) {
                pid_t h = b->foreign[i].holder;
                unsigned k = 0;
                while (k < b->n_watch && b->watch[k].pid != h)
                        k++;
                if (k < b->n_watch)
                        continue;
                int fd = port_pidfd_open(h);
                if (fd < 0)
                        continue; /* gone already (or no pidfds): seen at the first look */
                b->watch[b->n_watch++] = (struct inbox_holder){ h, fd };
                (void)watch(b, fd, EPOLLIN | EPOLLET, INBOX_HOLDER_MARK);
        }
}

/* inbox_adopt's work (under adopt_lock). */
static int adopt(inbox *b, unsigned gen) {
        if (b->n) {
                size_t want = (size_t)b->n_foreign + b->n;
                if (want > b->cap_foreign) {
                        struct inbox_chan *a = realloc(b->foreign, want * sizeof(*a));
                        if (!a)
                                return -ENOMEM;
                        b->foreign = a;
                        b->cap_foreign = (unsigned)want;
                }
        }
        int ep = epoll_create1(EPOLL_CLOEXEC);
        int ear = -1, bell = -1;
        int e = ep < 0 ? (errno == EMFILE ? -EMFILE : -errno) : wake_new(&ear, &bell);
        if (e < 0) {
                safe_close(ep);
                return e;
        }
        /* From here on the parent's epoll set and takers' wake-up channel
         * are not ours. */
        b->epfd = renumber(b->epfd, ep);
        b->wake = renumber(b->wake, ear);
        b->wake_bell = renumber(b->wake_bell, bell);
        int r = watch(b, b->wake, EPOLLIN, INBOX_WAKE_MARK);
        if (r == 0 && b->has_reg && !b->reg_dead && reg_sock(b->reg_tok) >= 0)
                r = watch(b, reg_sock(b->reg_tok), EPOLLIN, INBOX_REG_MARK);
        if (r == 0)
                r = watch(b, b->fam_ear, EPOLLIN | EPOLLET, INBOX_FAM_MARK);
        if (r < 0)
                return r; /* (the next try makes another set) */
        for (unsigned i = 0; i < b->n; i++) {
                atomic_store(&b->chans[i].p->owner, &b->foreign_mark);
                b->chans[i].holder = b->me; /* who served it */
                b->foreign[b->n_foreign++] = b->chans[i];
        }
        b->me = getpid();
        b->n = b->next = 0;
        b->sleepers = b->takers = b->waiters = b->n_out = 0;
        b->shown_blocked = b->shown_waiting = 0;
        pthread_mutex_init(&b->lock, NULL);
        holders_watch(b);
        /* Look at the family's page at the first take: it may hold channels
         * handed over before we came, or a holder may be gone already. */
        b->holder_news = true;
        atomic_store_explicit(&b->fork_gen, gen, memory_order_release);
        return 0;
}

int inbox_adopt(inbox *b) {
        unsigned gen = handle_fork_gen();
        if (atomic_load_explicit(&b->fork_gen, memory_order_acquire) == gen)
                return 0;
        pthread_mutex_lock(&adopt_lock);
        int r = 0;
        if (atomic_load_explicit(&b->fork_gen, memory_order_relaxed) != gen)
                r = adopt(b, gen);
        pthread_mutex_unlock(&adopt_lock);
        return r;
}

/* ---- taking over ---- */

/* Forget foreign channel i: another process serves it, or it ended. */
static void foreign_forget(inbox *b, unsigned i) {
        struct inbox_chan c = b->foreign[i];
        b->foreign[i] = b->foreign[--b->n_foreign];
        handle_put(c.p);
        ipcf_detach(c.ph);
}

/* Serve foreign channel i, whose slot k we won (under b->lock). */
static void take_over(inbox *b, unsigned i, int k) {
        struct inbox_chan c = b->foreign[i];
        b->foreign[i] = b->foreign[--b->n_foreign];
        /* Only a thread of the parent (or a process now dead) can have held them. */
        atomic_store(&c.p->rlock.v, 0);
        atomic_store(&c.p->wlock.v, 0);
        c.handed = true;
        c.slot = k;
        c.forks = family_forks();
        if (inbox_keep_locked(b, c) == 0)
                return;
        family_drop(b, &c);
        handle_put(c.p);
        port_dealloc_by(c.ph, "cannot take more senders", 0); /* (under b->lock: no wait) */
}

/* Has process pid exited (a zombie too, when we hold a pidfd of it)? */
static bool holder_gone(const inbox *b, pid_t pid) {
        for (unsigned i = 0; i < b->n_watch; i++)
                if (b->watch[i].pid == pid) {
                        struct pollfd p = { .fd = b->watch[i].fd, .events = POLLIN };
                        return poll(&p, 1, 0) > 0;
                }
        return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Foreign channel i: take it over (handed over, or its holder died: one
 * process wins the slot), forget it (another process serves it, it ended,
 * or its holder died and it has no slot), or keep it. Returns whether it
 * left b->foreign. */
static bool foreign_settle(inbox *b, unsigned i) {
        struct inbox_chan *c = &b->foreign[i];
        uint64_t id = c->p->flow_id;
        int k = slot_find(b->fam, c->slot, id);
        bool gone = port_end_error(c->p) != 0;
        if (k < 0) {
                if (!gone && !holder_gone(b, c->holder))
                        return false; /* its holder serves it */
                foreign_forget(b, i);
                return true;
        }
        uint64_t w = atomic_load_explicit(&b->fam->slot[k], memory_order_acquire);
        bool free_to_take = (w & HANDED) || (slot_pid(w) == c->holder && holder_gone(b, c->holder));
        if (!free_to_take) {
                if (slot_pid(w) == c->holder && !gone)
                        return false;
                foreign_forget(b, i); /* another serves it (or it ended) */
                return true;
        }
        if (gone) {
                /* Nobody serves it: empty its slot on the way out. */
                atomic_compare_exchange_strong(&b->fam->slot[k], &w, 0);
                foreign_forget(b, i);
                return true;
        }
        if (atomic_compare_exchange_strong(&b->fam->slot[k], &w, slot_word(id, false, b->me)))
                take_over(b, i, k);
        else
                foreign_forget(b, i); /* another process won it */
        return true;
}

void family_look(inbox *b) {
        b->fam_rung = atomic_load(&b->fam->rung);
        b->holder_news = false;
        for (unsigned i = 0; i < b->n_foreign;)
                if (!foreign_settle(b, i))
                        i++;
}

/* ---- letting go ---- */

/* Hand channel c over (we serve it): its slot says so, or a new one. */
static bool hand_over(inbox *b, struct inbox_chan *c) {
        uint64_t id = c->p->flow_id;
        uint64_t handed = slot_word(id, true, b->me);
        if (c->slot >= 0) {
                uint64_t w = slot_word(id, false, b->me);
                if (atomic_compare_exchange_strong(&b->fam->slot[c->slot], &w, handed))
                        return true;
        }
        return slot_put(b->fam, handed) >= 0;
}

int family_let_go(inbox *b) {
        if (!b->fam)
                return 0;
        if (atomic_load(&b->fork_gen) != handle_fork_gen()) {
                /* Inherited and never used here: nothing in it is ours. */
                for (unsigned i = 0; i < b->n; i++) {
                        handle_put(b->chans[i].p);
                        ipcf_detach(b->chans[i].ph);
                }
                b->n = 0;
                return 0;
        }
        bool handed = false;
        int r = 0;
        for (unsigned i = 0; i < b->n;) {
                struct inbox_chan c = b->chans[i];
                if (!family_shared(&c)) {
                        i++; /* nobody else has it */
                        continue;
                }
                epoll_ctl(b->epfd, EPOLL_CTL_DEL, c.p->ear_rx, NULL);
                b->chans[i] = b->chans[--b->n];
                bool live = c.p->flow_id && port_end_error(c.p) == 0;
                bool over = live && hand_over(b, &c);
                if (!over)
                        family_drop(b, &c);
                handle_put(c.p);
                if (over) {
                        ipcf_detach(c.ph);
                } else {
                        if (live)
                                r = -ENOSPC; /* (not for one that had ended anyway) */
                        port_dealloc_by(c.ph, "service let go: its family's page is full", 0);
                }
                handed |= over;
        }
        if (handed)
                family_ring(b);
        return r;
}
