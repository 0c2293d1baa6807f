/*
 * inbox.h — one input queue over many flows (inbox.c): the fan-in behind
 * services (service.c) and datagram endpoints (dgram.c).
 *
 * Its channels are ports it holds a reference to; each is marked as the
 * inbox's (port.owner), so that an answer addressed by a token (a service's
 * reply, a datagram's answer) goes only to a channel of the inbox it names;
 * a service's channels also carry an account of the requests taken on them
 * and not answered (port.extra: struct inbox_book).
 */
#pragma once

#include "lib/core/lib.h"

/* A taker that left inbox_take with a message and has not come back: it is
 * answering (inbox.c, "Who is awake"). */
struct inbox_out {
        pthread_t who;
        uint64_t since; /* inbox.now_ns at the take */
};
#define INBOX_OUT_MAX 16u
/* A taker that left with a message this long ago and has not come back no
 * longer counts as answering when another taker goes to sleep ("Who is
 * awake" in inbox.c): a caller's spin (10 µs) cannot outlast such a handler. */
#define OUT_STALE_NS 10000000u

struct inbox_chan {
        int ph;         /* the channel's port-id */
        port *p;        /* with a reference held while it is in the set */
        unsigned window; /* the window of time (inbox.c) it was last taken in */
        unsigned span;   /* the span of windows (inbox.c) it was last taken in */
        unsigned forks;  /* family_forks() when it came into the set */
        bool handed;     /* another process of the family let go of it to us */
        int slot;        /* its slot on the family's page (family.c), or -1 */
        pid_t holder;    /* (foreign ones) the process that served it when we
                          * got our copy */
};

/* A process that serves channels we hold copies of (family.c). */
struct inbox_holder {
        pid_t pid;
        int fd; /* a pidfd of it, in the epoll set */
};
#define FAMILY_WATCH 8u

/* What the processes fork() made from the inbox's maker share (family.c):
 * one page of shared memory, made with the inbox. */
#define FAMILY_SLOTS 511u
struct inbox_family {
        _Atomic uint64_t rung;                 /* hand-overs (and ends) so far */
        _Atomic uint64_t slot[FAMILY_SLOTS];   /* channels more than one process may
                                                * hold: flow id, served by or handed
                                                * over by whom (family.c); 0: free */
};

typedef struct inbox {
        bool has_reg;              /* made with a name: reg_tok is its registration */
        uint64_t reg_tok;          /* by token (handle_token), not by number: the user
                                    * may detach the number and be given it again */
        uint8_t role;              /* enum ctl_role of the channels it accepts */
        int epfd;                  /* the registration socket + every channel's rx ear */
        int wake, wake_bell;       /* the takers' wake-up channel (common/wake.h; a
                                    * process fork() made makes its own): a channel
                                    * was added while takers slept */
        pthread_mutex_t lock;      /* guards the set; let go while asleep */
        struct inbox_chan *chans;
        unsigned n, cap, next;     /* next: where the round robin resumes */
        unsigned sleepers;         /* takers asleep in epoll_wait */
        unsigned takers;           /* threads in inbox_take */
        unsigned waiters;          /* of them, in the wait (a spin or a sleep) */
        struct inbox_out out[INBOX_OUT_MAX]; /* takers answering (inbox.c) */
        unsigned n_out;
        uint32_t shown_blocked, shown_waiting; /* what every channel's run slot shows */
        unsigned window, senders;  /* this window of time: its number, and how many
                                    * channels had a request taken in it (inbox.c) */
        unsigned senders_here;     /* of those, how many ran on our CPU */
        unsigned span, span_senders; /* the span of windows this one is in (the number
                                    * of its first), and how many channels had a
                                    * request taken in it */
        unsigned busy_on, busy_many; /* the mark's two thresholds (BUSY_ON, BUSY_MANY) */
        uint64_t window_ns;        /* when it began */
        uint64_t now_ns;           /* the clock at the last take (inbox_roll_window) */
        uint64_t accepted_ns;      /* ... at the last look for new channels */
        bool accept_due;           /* look for new channels at the next take (after a sleep) */
        uint64_t window_len_ns;    /* how long a window lasts (BUSY_WINDOW_NS) */
        bool busy;                 /* many senders at once: CALL_RUN_BUSY shown */
        bool reg_dead;             /* the daemon hung up the registration socket */
        bool closed;               /* inbox_close_all ran: takers return -EBADF */
        bool poll_mode;            /* its descriptor was asked for */
        /* Fork (family.c): the set above is this process's own; channels it
         * inherited that another process of the family serves wait apart,
         * in foreign, until handed over. */
        _Atomic unsigned fork_gen; /* handle_fork_gen() of the process the set is for */
        struct inbox_family *fam;  /* shared memory of the family */
        struct inbox *fam_next;    /* the process's list of inboxes (family.c) */
        bool fam_listed;           /* in it */
        pid_t me;                  /* the process the set is for */
        struct inbox_holder watch[FAMILY_WATCH]; /* holders of foreign channels */
        unsigned n_watch;
        bool holder_news;          /* a holder exited: look at the foreign channels */
        int fam_ear, fam_bell;     /* the family's wake-up channel (common/wake.h):
                                    * rung at each hand-over (family.c) */
        uint64_t fam_rung;         /* the family's count of hand-overs when we last looked */
        struct inbox_chan *foreign;
        unsigned n_foreign, cap_foreign;
        char foreign_mark;         /* a foreign channel's port.owner: &foreign_mark */
} inbox;

/* A service's account of one channel's requests (port.extra of each channel
 * of an inbox of role CTL_ROLE_CALL): the ids this process took and has not
 * answered, so that a request is answered at most once (service.c). Ids are
 * the caller's (any u64 but 0, repeated, in any order); an id is kept in the
 * slot it hashes to (id % INBOX_BOOK_SLOTS) or the next free one. Full, it
 * forgets the smallest id it holds and raises `floor` to it: an id up to
 * floor that it does not hold may still be owed (forgotten), so its answer
 * is let through unchecked. The memory is fixed, whatever the caller sends
 * or the service leaves unanswered. Lock-free: each slot changes by
 * compare-and-swap (several threads take and answer on one channel). */
#define INBOX_BOOK_SLOTS 64u
struct inbox_book {
        _Atomic uint64_t floor;
        _Atomic uint64_t id[INBOX_BOOK_SLOTS]; /* 0: free */
};

/* The request id was taken from channel p (after inbox_take; p's book if it
 * has one): it is owed an answer. */
void inbox_book_owe(port *p, uint64_t id);
/* An answer to id is about to go out on p: 0 if it was owed (and is no
 * longer: of threads answering at once, one gets 0), -EALREADY if not (it
 * was answered, or never taken here). */
int inbox_book_settle(port *p, uint64_t id);
/* Is id owed an answer on p (or may it be: forgotten)? Changes nothing. */
bool inbox_book_owes(port *p, uint64_t id);

/* Set up b; with a name, register it and accept channels of role. */
int inbox_init(inbox *b, const char *name, const ipcf_reg_opts *opts, uint8_t role);
/* Release what b holds in this process; channels still in it are let go
 * without being ended (ipcf_detach), as for a handle that is detached. */
void inbox_deinit(inbox *b);
/* At ipcf_detach of b's handle: hand the channels other processes of the
 * family may hold over to them (family_let_go). 0 or -ENOSPC. */
int inbox_detach(inbox *b);
/* Add a channel we allocated ourselves (takes b->lock briefly). */
int inbox_add(inbox *b, int ph);
/* Unregister the name, then end with why every channel: those in the set
 * and those the daemon accepted for the inbox that were never taken (their
 * senders see -EPIPE and why at once). Takers waiting on b (in other
 * threads) return -EBADF. */
void inbox_close_all(inbox *b, const char *why);
/* Take the next message from any channel: fn(ctx, data, len) as in
 * port_read_with, waiting up to timeout_ms (-EBADF once b is closed). When a message was taken (or
 * stays, -EMSGSIZE), *ret_chan is its channel, with a reference for the
 * caller (handle_put it). */
ssize_t inbox_take(inbox *b, port_msg_fn fn, void *ctx, int timeout_ms, port **ret_chan);
/* The inbox's pollable descriptor (switches its channels to poll mode). */
int inbox_fd(inbox *b);
/* The channel a token names, if it is one of b's, with a reference; else
 * NULL and *ret_err: -EINVAL not a token, -EBADF not a channel of b, -EPIPE
 * the channel is gone (its sender left). */
port *inbox_chan_of_token(inbox *b, uint64_t token, int *ret_err);

/* ---- between inbox.c and family.c ---- */

/* The marks of the epoll set's entries other than channels (whose mark is
 * their port-id). */
#define INBOX_REG_MARK UINT64_MAX
#define INBOX_WAKE_MARK (UINT64_MAX - 1)
#define INBOX_FAM_MARK (UINT64_MAX - 2)
#define INBOX_HOLDER_MARK (UINT64_MAX - 3)

/* Close b's takers' wake-up channel (b->wake, b->wake_bell). */
void inbox_wake_close(inbox *b);

/* Put channel c (its reference held) in b's set (under b->lock): watched,
 * marked as b's, shown as the others; a service's channel gets an empty
 * account of requests (struct inbox_book: one taken over from another
 * process of the family owes nothing of what that process took). 0, or
 * -errno and c is not in it. */
int inbox_keep_locked(inbox *b, struct inbox_chan c);

/* family.c: the family's shared memory and bell for b (at inbox_init, before
 * b's epoll set holds anything else; 0 or -errno), and their release. */
int family_open(inbox *b);
void family_close(inbox *b);
/* How many fork()s this process made since it started (as a parent). */
unsigned family_forks(void);
/* Has this process forked, or did fork() make it (since the library was
 * loaded)? Until then no other process shares an inbox of ours, and no
 * family event but our own inbox_close_all's can come. */
bool family_forked(void);
/* Make b this process's if it was inherited across fork() and not yet made
 * so: an epoll set and takers' wake-up channel of its own, every inherited channel foreign
 * (another process of the family serves it until it lets go), its lock and
 * takers' counts fresh. Before anything else touches b in a process; cheap
 * when there is nothing to do. 0 or -errno (-EMFILE, -ENOMEM: try again). */
int inbox_adopt(inbox *b);
/* Take the foreign channels another process of the family handed over, and
 * forget the foreign ones that ended (under b->lock): when the family's
 * count of hand-overs moved. */
void family_look(inbox *b);
static inline bool family_news(inbox *b) {
        return b->n_foreign &&
               (b->holder_news || atomic_load_explicit(&b->fam->rung, memory_order_acquire) != b->fam_rung);
}
/* At ipcf_detach (under b->lock) and inbox_deinit: hand the channels of the
 * set that other processes of the family may hold over to them (whichever
 * takes one first serves it); end those for which the family's page has no
 * room. 0, or -ENOSPC if one was ended so. */
int family_let_go(inbox *b);
/* Channel c leaves the set (it ends): empty its slot (under b->lock). */
void family_drop(inbox *b, struct inbox_chan *c);
/* Ring the family: its processes look at their foreign channels (after b's
 * channels were ended). */
void family_ring(inbox *b);
/* May other processes of the family hold channel c of the set (it was in
 * the set at a fork, or handed over)? */
bool family_shared(const struct inbox_chan *c);
