/*
 * dispatch.h — the daemon's method table: each request type of the control
 * protocol goes to the one handler a module registered for it.
 *
 * The table is made from the protocol's schema (common/ctlschema.h): a module
 * registers a handler for a type that has a schema row (dispatch_add(), from
 * its init function, see module.h); the dispatcher checks every request
 * against that row before the handler runs, and turns the handler's result
 * into the reply in one place. A handler never parses and never sends an
 * ERROR. (dbus-broker's driver method table is the model.)
 *
 * A HANDLER returns exactly one of:
 *   0             success: the dispatcher sends rq->reply (OK, with the
 *                 attributes and descriptors the handler put in it), unless
 *                 the handler has already replied (request_reply_now(),
 *                 request_send());
 *   -errno        failure: the dispatcher sends ERROR with that errno. The
 *                 handler has sent nothing on the connection;
 *   METHOD_DROP   the client broke the protocol in a way the schema cannot
 *                 see (e.g. GROUP_CREATE's allow lists): the dispatcher drops
 *                 the client, nothing is sent.
 * A request whose row is violated (framing, descriptors: -EBADMSG) drops the
 * client before any handler; a bad value the row states (a missing required
 * attribute, an invalid name) is answered EINVAL; a request type no module
 * serves is answered ENOSYS.
 *
 * Requests are handled one at a time (one thread): rq and rq->reply are valid
 * only during the handler.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "common/ctl.h"
#include "common/ctlschema.h"
#include "daemon/core/ipcfd.h"

struct client;

/* A request being handled. */
typedef struct request {
        ipcfd *d;
        struct client *c;               /* who asked */
        uint32_t seq;                   /* echoed by the reply */
        const ctl_msg *m;               /* the request (for REPEAT attributes) */
        const ctl_args *args;           /* checked against the schema row */
        int *fds;                       /* the request's descriptors (args->spec->fds of
                                         * them); a handler that keeps one sets it to -1,
                                         * the rest are closed after the handler */
        ctl_builder *reply;             /* CTL_OK with the seq, begun: put attributes */
        int reply_fds[CTL_FDS_MAX];     /* sent with the OK (request_reply_fd) */
        unsigned n_reply_fds;
        uint32_t reply_fds_owned;       /* bit i: close reply_fds[i] once sent */
        bool replied;                   /* a reply went out (or the client is dead) */
} request;

/* A positive, documented handler result: drop the client (see above). */
#define METHOD_DROP 1

typedef int (*method_fn)(request *rq);

typedef struct method {
        uint16_t type;                  /* enum ctl_type, with a row in ctlschema.c */
        method_fn fn;
} method;

/* Register n methods. Returns 0, -EEXIST if a type already has a handler,
 * or -EINVAL if a type has no schema row (it is no request). */
int dispatch_add(ipcfd *d, const method *table, size_t n);

/* Handle one request of c (client.c): buf[0..len) with n_fds descriptors
 * (those a handler keeps are set to -1 in fds). Returns 0, or -EBADMSG when
 * c must be dropped. */
int dispatch_request(struct client *c, const void *buf, size_t len, int *fds, unsigned n_fds);

/* Attach fd to the OK; give: the dispatcher closes it once the reply is sent
 * (or cannot be), else it stays the caller's (it must live until then). */
void request_reply_fd(request *rq, int fd, bool give);

/* Send the OK now (when the handler must know it went out before going on).
 * Returns 0, or -errno: the client is then marked dead (dropped after this
 * request). Either way the request counts as answered. */
int request_reply_now(request *rq);

/* Answer with a message of another type (FLOW to an ACCEPT), finished by the
 * caller's builder b with the request's seq. Same returns as above. */
int request_send(request *rq, ctl_builder *b, const int *fds, unsigned n_fds);
