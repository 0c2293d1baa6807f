/*
 * inbox.h — one input queue over many flows (inbox.c): the fan-in behind
 * services (service.c) and datagram endpoints (dgram.c).
 *
 * Its channels are ports it holds a reference to; each is marked as the
 * inbox's (port.owner), so that an answer addressed by a token (a service's
 * reply, a datagram's answer) goes only to a channel of the inbox it names.
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
};

typedef struct inbox {
        int reg_h;                 /* the registration of its name, or -1 */
        uint8_t role;              /* enum ctl_role of the channels it accepts */
        int epfd;                  /* the registration socket + every channel's rx ear */
        int wake;                  /* eventfd (private to this process): a channel was
                                    * added while takers slept */
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
} inbox;

/* Set up b; with a name, register it and accept channels of role. */
int inbox_init(inbox *b, const char *name, const ipcf_reg_opts *opts, uint8_t role);
/* Release what b holds in this process; channels still in it are let go
 * without being ended (ipcf_detach), as for a handle that is detached. */
void inbox_deinit(inbox *b);
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
