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
 * channels the inbox held at the fork are in every process that forked from
 * it. The rule for those: they stay with the process that held them — the
 * maker, which forked — until it lets the inbox go without ending it
 * (ipcf_detach, inbox_deinit); then it hands them over, and whichever
 * process of the family looks first takes each. (Not the first to take
 * after the fork: the maker may be answering a request from one of them at
 * that moment, and its answer must be the channel's only writer.)
 *
 * The family: what the inbox's maker made before any fork and every process
 * since inherits — one page of shared memory (struct inbox_family, inbox.h)
 * with the flow ids of the channels handed over (a taker marks an id TAKEN:
 * one process wins each, and the others then let go of their copies, so
 * that the channel lives only in the process that serves it and its caller
 * learns at once when that one dies) and a count of hand-overs, and a
 * wake-up channel (common/wake.h) rung at each (edge-triggered in every
 * process's epoll set; family_ring). Not an eventfd: every process of the
 * family shares its open file description, so one of them could clear
 * O_NONBLOCK on it and fill its counter, and the next hand-over of any other
 * blocked for good in write(2); a ring of a wake-up channel never blocks. (A
 * process of the family can still withhold wake-ups from the others — shut
 * the channel down, or keep its queue full — as it can write anything on
 * the page: the others then see hand-overs at their next take.)
 *
 * Adoption: a process fork() made (handle_fork_gen() differs from the
 * inbox's) makes the inbox its own at its first use of it: an epoll set and
 * takers' wake-up channel of its own, on the same descriptor numbers (dup3: a
 * descriptor the user polls stays right), watching the registration socket
 * and the family's ear; every inherited channel goes to `foreign`, kept (so
 * that it can be handed over) but neither watched nor read, and marked so
 * that no answer goes out on it (port.owner: inbox_chan_of_token). The
 * inbox's lock and counts of takers are made fresh: the threads they counted
 * are the parent's. A foreign channel taken over gets its port's locks made
 * fresh too: nothing of this process touched them since the fork, so a
 * holder can only be a thread of the parent that this process does not have.
 *
 * A channel goes to the family's page only if another process may hold it:
 * one that was in the set when this process forked (family_forks moved
 * since it came), or that was handed to us. Without a free slot (FAMILY_SLOTS
 * hand-overs nobody took, e.g. of channels no other process held), it is
 * ended instead: its caller's next call makes a new channel.
 */
#include <errno.h>
#include <fcntl.h>
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
static pthread_mutex_t adopt_lock = PTHREAD_MUTEX_INITIALIZER; /* one adoption at a time */

static void atfork_parent(void) {
        atomic_fetch_add(&forks_made, 1);
}

/* The child is single-threaded: a lock another thread held is free. */
static void atfork_child(void) {
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
        adopt_lock = fresh;
}

__attribute__((constructor)) static void family_init(void) {
        pthread_atfork(NULL, atfork_parent, atfork_child);
}

unsigned family_forks(void) {
        return atomic_load_explicit(&forks_made, memory_order_relaxed);
}

int family_open(inbox *b) {
        void *m = mmap(NULL, sizeof(*b->fam), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
                return -ENOMEM;
        b->fam = m;
        int r = wake_new(&b->fam_ear, &b->fam_bell);
        if (r < 0)
                return r;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u64 = INBOX_FAM_MARK };
        return epoll_ctl(b->epfd, EPOLL_CTL_ADD, b->fam_ear, &ev) < 0 ? -errno : 0;
}

void family_close(inbox *b) {
        if (b->fam)
                munmap(b->fam, sizeof(*b->fam));
        b->fam = NULL;
        b->fam_ear = safe_close(b->fam_ear);
        b->fam_bell = safe_close(b->fam_bell);
        for (unsigned i = 0; i < b->n_foreign; i++) {
                handle_put(b->foreign[i].p);
                ipcf_detach(b->foreign[i].ph);
        }
        b->n_foreign = 0;
        free(b->foreign);
        b->foreign = NULL;
}

bool family_shared(const struct inbox_chan *c) {
        return c->handed || c->forks != family_forks();
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
        if (r == 0 && b->reg_h >= 0 && !b->reg_dead)
                r = watch(b, ipcf_fd(b->reg_h), EPOLLIN, INBOX_REG_MARK);
        if (r == 0)
                r = watch(b, b->fam_ear, EPOLLIN | EPOLLET, INBOX_FAM_MARK);
        if (r < 0)
                return r; /* (the next try makes another set) */
        for (unsigned i = 0; i < b->n; i++) {
                atomic_store(&b->chans[i].p->owner, &b->foreign_mark);
                b->foreign[b->n_foreign++] = b->chans[i];
        }
        b->n = b->next = 0;
        b->sleepers = b->takers = b->waiters = b->n_out = 0;
        b->shown_blocked = b->shown_waiting = 0;
        pthread_mutex_init(&b->lock, NULL);
        /* Look at the family's page at the first take: it may hold channels
         * handed over before we came. */
        b->fam_rung = atomic_load(&b->fam->rung) - 1;
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

/* A slot of the family's page holding id | TAKEN: the channel of flow id
 * was handed over and a process took it; the others let go of their copies
 * (so that when the taker ends, nobody holds the channel and its caller
 * learns at once). Flow ids are the daemon's counter: bit 63 is free. A
 * taken slot is reused only when no slot is 0. */
#define TAKEN (1ull << 63)

/* The index in b->foreign of the channel of flow id, or b->n_foreign. */
static unsigned foreign_find(const inbox *b, uint64_t id) {
        unsigned i = 0;
        while (i < b->n_foreign && b->foreign[i].p->flow_id != id)
                i++;
        return i;
}

/* Forget foreign channel i: another process serves it, or it ended. */
static void foreign_forget(inbox *b, unsigned i) {
        struct inbox_chan c = b->foreign[i];
        b->foreign[i] = b->foreign[--b->n_foreign];
        handle_put(c.p);
        ipcf_detach(c.ph);
}

/* Serve foreign channel i, handed over to us (under b->lock). */
static void take_over(inbox *b, unsigned i) {
        struct inbox_chan c = b->foreign[i];
        b->foreign[i] = b->foreign[--b->n_foreign];
        /* Only a thread of the parent can have held them. */
        atomic_store(&c.p->rlock.v, 0);
        atomic_store(&c.p->wlock.v, 0);
        c.handed = true;
        c.forks = family_forks();
        if (inbox_keep_locked(b, c) == 0)
                return;
        handle_put(c.p);
        ipcf_dealloc(c.ph, "cannot take more senders");
}

void family_look(inbox *b) {
        b->fam_rung = atomic_load(&b->fam->rung);
        /* The page first (a few ids at most, most times), each id marked
         * taken only by a process that holds its channel. */
        for (unsigned k = 0; k < FAMILY_SLOTS && b->n_foreign; k++) {
                uint64_t v = atomic_load_explicit(&b->fam->let_go[k], memory_order_acquire);
                if (!v)
                        continue;
                uint64_t id = v & ~TAKEN;
                unsigned i = foreign_find(b, id);
                if (i == b->n_foreign)
                        continue;
                if (!(v & TAKEN) && atomic_compare_exchange_strong(&b->fam->let_go[k], &v, id | TAKEN))
                        take_over(b, i);
                else if (v == (id | TAKEN))
                        foreign_forget(b, i); /* (v: what the failed swap found) */
        }
        for (unsigned i = 0; i < b->n_foreign;) {
                if (port_end_error(b->foreign[i].p) == 0)
                        i++;
                else
                        foreign_forget(b, i); /* ended: forget our copy */
        }
}

/* Put flow id in a free slot of the family's page (else in a taken one). */
static bool hand_over(struct inbox_family *f, uint64_t id) {
        if (id & TAKEN)
                return false;
        for (int reuse = 0; reuse < 2; reuse++)
                for (unsigned k = 0; k < FAMILY_SLOTS; k++) {
                        uint64_t v = atomic_load_explicit(&f->let_go[k], memory_order_relaxed);
                        if ((reuse ? (v & TAKEN) != 0 : v == 0) &&
                            atomic_compare_exchange_strong(&f->let_go[k], &v, id))
                                return true;
                }
        return false;
}

void family_let_go(inbox *b) {
        if (!b->fam)
                return;
        if (atomic_load(&b->fork_gen) != handle_fork_gen()) {
                /* Inherited and never used here: nothing in it is ours. */
                for (unsigned i = 0; i < b->n; i++) {
                        handle_put(b->chans[i].p);
                        ipcf_detach(b->chans[i].ph);
                }
                b->n = 0;
                return;
        }
        bool handed = false;
        for (unsigned i = 0; i < b->n;) {
                struct inbox_chan c = b->chans[i];
                if (!family_shared(&c)) {
                        i++; /* nobody else has it */
                        continue;
                }
                b->chans[i] = b->chans[--b->n];
                bool over = c.p->flow_id && port_end_error(c.p) == 0 && hand_over(b->fam, c.p->flow_id);
                handle_put(c.p);
                if (over)
                        ipcf_detach(c.ph);
                else
                        ipcf_dealloc(c.ph, "service let go");
                handed |= over;
        }
        if (handed)
                family_ring(b);
}
