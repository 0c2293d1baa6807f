/*
 * copy.c — the copy loop of `ipcf cat` and `ipcf listen`: bytes from an input
 * descriptor into a flow and from the flow to an output descriptor, both at
 * once, driven by poll() on the input, ipcf_fd(port) and ipcf_fd_send(port).
 *
 * HALF-CLOSE CONVENTION (MESSAGE mode). A flow has no half-close, so the tool
 * uses one: an EMPTY message means "this side has nothing more to send". Each
 * side sends it once its input is exhausted (at once if it has no input). The
 * copy never produces empty messages otherwise (a read of 0 bytes is EOF).
 *  - The allocating side (cat) ends the flow with ipcf_dealloc(port, "eof")
 *    only after it has sent everything, sent its marker AND seen the peer's
 *    marker (or linger_ms passed): so everything the peer sent is received.
 *  - The accepting side (listen) never ends the flow itself: it reads until
 *    ipcf_read() says -EPIPE (everything before it has been delivered).
 *  - When listen's input is a terminal (end_with_peer), its input ends when
 *    the peer's does: someone typing at `ipcf listen x > file` must not keep
 *    `ipcf cat x < file` waiting for a ^D.
 * In STREAM mode there are no boundaries and hence no marker: the allocator
 * deallocates as soon as its input is sent, after draining what has already
 * arrived.
 *
 * FORMATS (format.c). Raw input sends each read() as a message; a framed
 * format (line, len, hex) cuts the input into records, one message each: the
 * loop reads when poll() says the input is readable and then takes out every
 * complete record before it polls the input again (uf_ready). A malformed or
 * oversized record ends the copy with an "input: ..." error. What arrives is
 * written through the format too.
 *
 * WAITING. Writes to the flow never wait inside the library (timeout 0);
 * the loop waits in poll() on ipcf_fd_send instead. Exceptions by qos:
 *  - ZERO capacity: a write completes only while it waits for the reader.
 *    Two loops alternating write slices with reads could stay in lockstep
 *    (each withdrawing its message just as the other looks), so the sending
 *    direction runs in a thread of its own while the main loop keeps reading.
 *  - UNBOUNDED at its memory limit (-ENOBUFS): waited out like a full queue,
 *    retrying every COPY_RETRY_MS.
 * Writes to out_fd are blocking: the output paces the flow.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Largest piece read from in_fd or the flow at once (STREAM, and the cap of
 * MESSAGE-mode chunks): big enough for full-speed copies. */
#define COPY_CHUNK (256u << 10)
/* Reads from the flow per wake-up before the input gets its turn. */
#define COPY_READ_BURST 64
/* ZERO capacity: one write waits at most this long for the reader. */
#define COPY_ZERO_SLICE_MS 10
/* UNBOUNDED at its memory limit: retry the write after this long. */
#define COPY_RETRY_MS 1

typedef struct copy_state {
        const cli_copy *c;
        bool stream;            /* STREAM mode: no markers */
        bool zero;              /* ZERO capacity: writes wait in slices */
        char *obuf;             /* input bytes not yet in the flow */
        size_t ochunk, olen, ooff;
        bool in_eof;            /* in_fd is exhausted (or there is none) */
        bool marker_sent;       /* our empty end-marker is in the flow */
        bool peer_done;         /* the peer's end marker arrived */
        bool send_blocked;      /* the last write would have waited */
        bool over_limit;        /* UNBOUNDED: the queue is at its memory limit */
        char *ibuf;             /* flow -> out_fd */
        size_t icap;
        /* ZERO capacity: the sending direction runs in its own thread, which
         * owns obuf/olen/ooff/in_eof/marker_sent; it says it is done through
         * sender_done (and a byte on wake[1] to end the main poll). */
        bool threaded;
        pthread_t sender;
        int wake[2];
        atomic_bool stop, sender_done;
        atomic_bool input_closed;  /* read no more input (end_with_peer) */
        int sender_err;
        const cli_format *fmt;  /* never NULL (raw when cli_copy says none) */
        bool framed;            /* uf cuts the input into messages */
        cli_unframe uf;
        bool uf_ready;          /* uf may hold more complete records */
        bool in_err;            /* the error is the input's (uf.err says why) */
        cli_progress *prog;     /* c->progress, or own_prog (off) */
        cli_progress own_prog;
} copy_state;

/* Is there data or the marker still to write? */
static bool copy_have_unwritten(const copy_state *s) {
        return s->ooff < s->olen || (s->in_eof && !s->marker_sent && !s->stream);
}

/* Push pending input bytes, then the marker, into the flow without waiting
 * (ZERO: a short slice). Returns 0 (progress, or blocked: send_blocked set)
 * or a negative errno from ipcf_write. */
static int copy_send(copy_state *s) {
        int timeout = s->zero ? COPY_ZERO_SLICE_MS : 0;
        s->send_blocked = s->over_limit = false;
        while (copy_have_unwritten(s)) {
                size_t len = s->olen - s->ooff; /* 0: the marker */
                ssize_t n = ipcf_write(s->c->port, s->obuf + s->ooff, len, timeout);
                if (n == -EAGAIN || n == -ETIMEDOUT || n == -ENOBUFS) {
                        /* -ENOBUFS: an UNBOUNDED queue at its memory limit;
                         * a copy waits for the reader like a full queue. */
                        s->send_blocked = true;
                        s->over_limit = n == -ENOBUFS;
                        return 0;
                }
                if (n < 0)
                        return (int)n;
                s->ooff += (size_t)n;
                if (len == 0)
                        s->marker_sent = true;
                else
                        cli_progress_sent(s->prog, (size_t)n);
        }
        return 0;
}

/* Fill the empty output buffer with the next message: raw, one read from
 * in_fd; framed, the next complete record, reading in_fd once first if none
 * is complete and may_read (poll() said in_fd is readable). 0 or -errno
 * (in_err set when the input is malformed). */
static int copy_fill(copy_state *s, bool may_read) {
        s->olen = s->ooff = 0;
        if (!s->framed) {
                ssize_t n = read(s->c->in_fd, s->obuf, s->ochunk);
                if (n < 0)
                        return (errno == EINTR || errno == EAGAIN) ? 0 : -errno;
                if (n == 0)
                        s->in_eof = true;
                s->olen = (size_t)n;
                return 0;
        }
        ssize_t n = cli_unframe_next(&s->uf, s->obuf);
        if (n == 0 && !s->uf.eof && may_read) {
                int r = cli_unframe_read(&s->uf, s->c->in_fd);
                if (r < 0)
                        return r == -EINTR || r == -EAGAIN ? 0 : r;
                n = cli_unframe_next(&s->uf, s->obuf);
        }
        if (n < 0) {
                s->in_err = true;
                return (int)n;
        }
        s->uf_ready = n > 0;
        if (n == 0 && s->uf.eof)
                s->in_eof = true;
        s->olen = (size_t)n;
        return 0;
}

/* Framed input: take the next record already read, if any, without reading
 * (after the previous message went out). 0 or -errno. */
static int copy_refill(copy_state *s) {
        if (s->uf_ready && !s->in_eof && s->ooff >= s->olen)
                return copy_fill(s, false);
        return 0;
}

/* Move what the flow holds to out_fd, up to a burst. Returns 0 (nothing more
 * now), 1 the flow ended normally (-EPIPE), or a negative errno; *ret_out_err
 * is set when the error is the output's, not the flow's. */
static int copy_recv(copy_state *s, bool *ret_out_err) {
        for (int i = 0; i < COPY_READ_BURST; i++) {
                ssize_t n = ipcf_read(s->c->port, s->ibuf, s->icap, 0);
                if (n == -EAGAIN)
                        return 0;
                if (n == -EPIPE)
                        return 1;
                if (n == -EMSGSIZE) {
                        /* A message larger than our buffer: grow and retry. */
                        ssize_t need = ipcf_next_size(s->c->port, 0);
                        char *p = need > 0 ? realloc(s->ibuf, (size_t)need) : NULL;
                        if (!p)
                                return need < 0 ? (int)need : -ENOMEM;
                        s->ibuf = p;
                        s->icap = (size_t)need;
                        continue;
                }
                if (n < 0)
                        return (int)n;
                if (n == 0 && !s->stream) {
                        s->peer_done = true; /* the peer's end marker */
                        /* A terminal's input ends with the peer's (see
                         * cli_copy.end_with_peer): no more typing is read. */
                        if (s->c->end_with_peer)
                                atomic_store(&s->input_closed, true);
                        continue;
                }
                cli_progress_received(s->prog, (size_t)n);
                int r = n == 0 ? 0 : cli_format_write(s->fmt, s->c->out_fd, s->ibuf, (size_t)n);
                if (r < 0) {
                        *ret_out_err = true;
                        return r;
                }
        }
        return 0;
}

/* Move everything the flow still holds to out_fd, without waiting.
 * Returns 0 (also when the flow has ended) or a negative errno. */
static int copy_drain(copy_state *s, bool *ret_out_err) {
        int r;
        while ((r = copy_recv(s, ret_out_err)) == 0 && ipcf_next_size(s->c->port, 0) >= 0)
                ;
        return r == 1 ? 0 : r;
}

/* ZERO capacity: the sending direction, in its own thread. Input waits and
 * write slices are short, so that `stop` is seen within a slice. */
static void *copy_sender_main(void *arg) {
        copy_state *s = arg;
        int r = 0;
        while (r == 0 && !atomic_load(&s->stop)) {
                if (copy_have_unwritten(s)) {
                        r = copy_send(s); /* a write waits at most one slice */
                        continue;
                }
                if ((r = copy_refill(s)) < 0 || s->ooff < s->olen)
                        continue; /* a record already read: send it */
                if (atomic_load(&s->input_closed))
                        s->in_eof = true;
                if (s->in_eof)
                        break; /* everything and the marker are sent */
                struct pollfd pfd = { .fd = s->c->in_fd, .events = POLLIN };
                int pr = poll(&pfd, 1, COPY_ZERO_SLICE_MS);
                if (pr < 0 && errno != EINTR)
                        r = -errno;
                else if (pr > 0)
                        r = copy_fill(s, true);
        }
        s->sender_err = r;
        atomic_store(&s->sender_done, true);
        (void)!write(s->wake[1], "", 1);
        return NULL;
}

/* Is all input sent (and the marker), as far as the main loop can tell? */
static bool copy_input_done(const copy_state *s) {
        if (s->threaded)
                return atomic_load(&s->sender_done) && s->sender_err == 0;
        return s->in_eof && !copy_have_unwritten(s);
}

/* Has the allocator finished its part (everything sent and, in MESSAGE mode,
 * the peer's marker seen)? */
static bool copy_allocator_done(const copy_state *s) {
        return copy_input_done(s) && (s->stream || s->peer_done);
}

/* Set up buffers (and the sender thread in ZERO capacity). 0 or -errno. */
static int copy_setup(copy_state *s, const cli_copy *c, const ipcf_qos *q) {
        s->c = c;
        s->wake[0] = s->wake[1] = -1;
        s->stream = q->mode == IPCF_MODE_STREAM;
        s->zero = q->capacity == IPCF_CAPACITY_ZERO;
        s->fmt = c->format ? c->format : cli_format_find("raw");
        s->prog = c->progress ? c->progress : &s->own_prog;
        s->framed = cli_format_framed(s->fmt);
        if (s->framed && s->stream)
                return -EPROTOTYPE; /* records need messages: callers check first */
        s->ochunk = COPY_CHUNK;
        if (!s->stream && q->max_msg_size && q->max_msg_size < s->ochunk)
                s->ochunk = q->max_msg_size;
        if (s->framed) {
                int r = cli_unframe_init(&s->uf, s->fmt, q->max_msg_size);
                if (r < 0)
                        return r;
                s->ochunk = s->uf.max; /* a record may be as large as the flow allows */
        }
        s->icap = s->stream || !q->max_msg_size ? COPY_CHUNK : q->max_msg_size;
        s->obuf = malloc(s->ochunk);
        s->ibuf = malloc(s->icap);
        s->in_eof = c->in_fd < 0;
        atomic_init(&s->stop, false);
        atomic_init(&s->sender_done, false);
        atomic_init(&s->input_closed, false);
        if (!s->obuf || !s->ibuf)
                return -ENOMEM;
        if (!s->zero)
                return 0;
        if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        /* Signals go to the main thread only: its poll() must see them. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        int r = pthread_create(&s->sender, NULL, copy_sender_main, s);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (r)
                return -r;
        s->threaded = true;
        return 0;
}

static void copy_teardown(copy_state *s) {
        if (s->threaded) {
                atomic_store(&s->stop, true);
                pthread_join(s->sender, NULL);
        }
        for (int i = 0; i < 2; i++)
                if (s->wake[i] >= 0)
                        close(s->wake[i]);
        free(s->obuf);
        free(s->ibuf);
        if (s->framed)
                cli_unframe_done(&s->uf);
}

/* One step of the sending direction from the main loop: the inline send, or
 * the sender thread's outcome. 0 or a negative errno. */
static int copy_send_step(copy_state *s) {
        if (!s->threaded)
                return copy_send(s);
        return atomic_load(&s->sender_done) ? s->sender_err : 0;
}

int cli_copy_run(const cli_copy *c) {
        copy_state s;
        memset(&s, 0, sizeof(s));
        ipcf_qos q;
        int r = ipcf_qos_get(c->port, &q);
        int flow_fd = r < 0 ? r : ipcf_fd(c->port);
        int send_fd = flow_fd < 0 ? flow_fd : ipcf_fd_send(c->port);
        r = send_fd < 0 ? send_fd : copy_setup(&s, c, &q);
        const char *reason = "error";
        bool out_err = false, lingering = false;
        uint64_t linger_end = 0;
        /* ^C and SIGTERM (util.c: they set cli_interrupted) are blocked in
         * the loop but in its wait, ppoll with the mask from before: one
         * that comes after the loop's look at the flag ends the next wait
         * (EINTR), never lost to a poll() that waits for ever. */
        sigset_t interrupts, waiting;
        sigemptyset(&interrupts);
        sigaddset(&interrupts, SIGINT);
        sigaddset(&interrupts, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &interrupts, &waiting);
        cli_copy_active = 1;

        while (r == 0) {
                if (cli_interrupted) {
                        /* ^C or SIGTERM (caught outside poll, or inside: below):
                         * end the flow with a reason rather than leave the
                         * peer with "peer died". */
                        r = -EINTR;
                        reason = "interrupted";
                        break;
                }
                if (!s.threaded && atomic_load(&s.input_closed))
                        s.in_eof = true;
                if (!s.threaded && (r = copy_refill(&s)) < 0)
                        break;
                r = copy_send_step(&s);
                if (r == -EPIPE) {
                        /* The peer ended the flow while we still had bytes for
                         * it: deliver what it sent us; for the accepting side
                         * that is a normal end, the allocator lost input. */
                        r = copy_drain(&s, &out_err);
                        if (r == 0 && c->allocator)
                                r = -EPIPE;
                        reason = NULL;
                        break;
                }
                if (r < 0)
                        break;
                if (c->allocator && copy_allocator_done(&s)) {
                        r = copy_drain(&s, &out_err); /* STREAM: what already came */
                        reason = "eof";
                        break;
                }
                /* Allocator in MESSAGE mode, input done: wait for the marker,
                 * at most linger_ms. */
                if (c->allocator && copy_input_done(&s) && !lingering) {
                        lingering = true;
                        if (c->linger_ms >= 0)
                                linger_end = cli_now_ns() + (uint64_t)c->linger_ms * 1000000u;
                }
                int timeout = -1;
                if (!s.threaded && s.send_blocked && s.over_limit)
                        timeout = COPY_RETRY_MS; /* no descriptor tells when it shrinks */
                if (lingering && c->linger_ms >= 0) {
                        uint64_t now = cli_now_ns();
                        if (now >= linger_end) {
                                reason = "eof";
                                break;
                        }
                        timeout = (int)((linger_end - now + 999999u) / 1000000u);
                }
                if (!s.threaded && s.uf_ready && !s.in_eof && s.ooff >= s.olen)
                        timeout = 0; /* records already read wait to be sent */
                timeout = cli_progress_timeout(s.prog, timeout);

                struct pollfd pfd[3] = {
                        { .fd = flow_fd, .events = POLLIN },
                        { .fd = -1, .events = POLLIN },
                        { .fd = -1, .events = POLLIN },
                };
                if (s.threaded) {
                        if (!atomic_load(&s.sender_done))
                                pfd[1].fd = s.wake[0];   /* the sender thread ends */
                } else {
                        if (!s.in_eof && s.ooff >= s.olen)
                                pfd[1].fd = c->in_fd;    /* room for more input */
                        if (s.send_blocked && !s.over_limit)
                                pfd[2].fd = send_fd;     /* wait for room in the flow */
                }
                struct timespec wait_ts = { .tv_sec = timeout / 1000, .tv_nsec = (long)(timeout % 1000) * 1000000L };
                if (ppoll(pfd, 3, timeout < 0 ? NULL : &wait_ts, &waiting) < 0) {
                        if (errno == EINTR)
                                continue; /* the loop's top sees cli_interrupted */
                        r = -errno;
                        break;
                }
                cli_progress_tick(s.prog);
                if (pfd[1].revents && !s.threaded)
                        r = copy_fill(&s, true);
                if (r == 0 && pfd[0].revents) {
                        r = copy_recv(&s, &out_err);
                        if (r == 1) {
                                /* The peer ended the flow; all it wrote is out. */
                                r = 0;
                                reason = NULL;
                                break;
                        }
                }
        }

        pthread_sigmask(SIG_SETMASK, &waiting, NULL); /* one pending: noted, the copy ended anyway */
        cli_copy_active = 0;
        ipcf_reason why;
        if (r == 0 && !reason && c->verbose && ipcf_end_reason(c->port, &why) == 0)
                cli_note(true, "%s: flow ended by the peer: %s", c->what,
                         why.text[0] ? why.text : "-");
        if (r == -EINTR) {
                copy_teardown(&s);
                ipcf_dealloc(c->port, reason);
                return r;
        }
        if (r < 0) {
                if (out_err)
                        fprintf(stderr, "ipcf: %s: output: %s\n", c->what, strerror(-r));
                else if (s.in_err)
                        fprintf(stderr, "ipcf: %s: input: %s\n", c->what, s.uf.err);
                else if ((r == -ECONNRESET || r == -EPIPE) && ipcf_end_reason(c->port, &why) == 0 &&
                         why.text[0] && strcmp(why.text, ipcf_strerror(r)) != 0)
                        /* the end's own reason: "host unreachable", "peer
                         * host restarted", the peer's words */
                        fprintf(stderr, "ipcf: %s: %s (%s)\n", c->what, ipcf_strerror(r), why.text);
                else
                        cli_error(c->what, r);
        } else {
                cli_progress_end(s.prog);
        }
        copy_teardown(&s); /* the sender thread stops before the port goes */
        ipcf_dealloc(c->port, r < 0 ? "error" : reason);
        return r;
}
