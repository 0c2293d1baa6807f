/*
 * eventloop-echo.h — what the event-loop examples (eventloop-epoll.c,
 * eventloop-uv.c, eventloop-glib.c) share: an echo server's flows driven by
 * readiness instead of blocking calls. Each example only shows how its loop
 * watches the descriptors.
 *
 * The rules of a port in an event loop:
 *  - ipcf_fd(handle) is level-triggered and readable exactly when a read
 *    (on a registration: an accept) would not block; ipcf_fd_send(port) when
 *    a write would not block. Watch for reading (POLLIN, EPOLLIN, UV_READABLE,
 *    G_IO_IN) only, and never read, write or close these descriptors.
 *  - When one is ready, call with timeout 0: -EAGAIN means "not any more"
 *    (someone else was first), never an error.
 *  - Level-triggered: a flow may stop after a fair share of messages and be
 *    woken again at once, so one busy peer cannot starve the others.
 * A flow waits on one descriptor at a time: its read side, or, while a
 * message it read could not be written back (the peer is slow to read),
 * its send side.
 */
#pragma once

#include <errno.h>
#include <ipcf.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Messages moved per wake-up before the loop gets to the others. */
#define ECHO_FAIR_SHARE 64

/* What a flow waits for next. */
enum echo_want { ECHO_WANT_READ, ECHO_WANT_WRITE, ECHO_DONE };

typedef struct echo_flow {
        int port;
        bool pending;        /* buf holds a message read, not yet written back */
        size_t len;
        void *loop_data;     /* the example's watcher of this flow */
        char buf[256 * 1024]; /* the default max_msg_size: any message fits */
} echo_flow;

/* Totals, printed at exit ("flows F messages M bytes B") for the tests. */
typedef struct echo_totals {
        unsigned long flows, messages;
        unsigned long long bytes;
} echo_totals;

/* Accept one pending request of reg: a new flow (malloc'ed; echo_flow_end
 * frees it), or NULL when none is pending any more or on an error (told on
 * stderr: the server goes on). */
static inline echo_flow *echo_accept(int reg) {
        int port = ipcf_accept(reg, 0, NULL);
        if (port < 0) {
                if (port != -EAGAIN)
                        fprintf(stderr, "accept: %s\n", ipcf_strerror(port));
                return NULL;
        }
        echo_flow *f = malloc(sizeof(*f));
        if (!f) {
                ipcf_dealloc(port, "out of memory");
                return NULL;
        }
        f->port = port;
        f->pending = false;
        f->loop_data = NULL;
        return f;
}

/* The descriptor the flow waits on for want (ECHO_WANT_READ or _WRITE). */
static inline int echo_flow_fd(const echo_flow *f, enum echo_want want) {
        return want == ECHO_WANT_WRITE ? ipcf_fd_send(f->port) : ipcf_fd(f->port);
}

/* The flow's descriptor is ready: echo what can be echoed without waiting,
 * at most a fair share. Returns what to wait for next; ECHO_DONE once the
 * flow has ended (the peer deallocated or died) or failed. */
static inline enum echo_want echo_flow_run(echo_flow *f, echo_totals *t) {
        for (int i = 0; i < ECHO_FAIR_SHARE; i++) {
                if (f->pending) {
                        ssize_t n = ipcf_write(f->port, f->buf, f->len, 0);
                        if (n == -EAGAIN)
                                return ECHO_WANT_WRITE;
                        if (n < 0)
                                return ECHO_DONE;
                        f->pending = false;
                        t->messages++;
                        t->bytes += f->len;
                }
                ssize_t n = ipcf_read(f->port, f->buf, sizeof(f->buf), 0);
                if (n == -EAGAIN)
                        return ECHO_WANT_READ;
                if (n < 0)
                        return ECHO_DONE; /* -EPIPE: the peer ended it; -ECONNRESET: it died */
                f->len = (size_t)n;
                f->pending = true;
        }
        return f->pending ? ECHO_WANT_WRITE : ECHO_WANT_READ;
}

/* Close the flow and free it; counts it. */
static inline void echo_flow_end(echo_flow *f, echo_totals *t) {
        ipcf_dealloc(f->port, "echo done");
        free(f);
        t->flows++;
}

/* "NAME [N]": the name to serve and how many flows to serve before
 * returning (0: for ever). Returns the registration, or -1 (told). */
static inline int echo_start(int argc, char **argv, const char *prog, unsigned long *ret_max_flows) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s NAME [FLOWS]\n", prog);
                return -1;
        }
        *ret_max_flows = argc > 2 ? strtoul(argv[2], NULL, 10) : 0;
        int reg = ipcf_register(argv[1], NULL);
        if (reg < 0)
                fprintf(stderr, "%s: register %s: %s\n", prog, argv[1], ipcf_strerror(reg));
        return reg;
}

static inline void echo_report(const echo_totals *t) {
        printf("flows %lu messages %lu bytes %llu\n", t->flows, t->messages, t->bytes);
}
