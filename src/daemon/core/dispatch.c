/*
 * dispatch.c — from a received request to its one reply (see dispatch.h):
 * frame, check against the schema row, call the registered handler, answer.
 *
 * The reply builder is one static buffer (64 KiB): the daemon has one thread
 * and handles one request at a time, and nothing a handler calls builds a
 * reply to another request.
 */
#include "daemon/core/dispatch.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/log.h"

static ctl_builder reply_buf;

int dispatch_add(ipcfd *d, const method *table, size_t n) {
        for (size_t i = 0; i < n; i++) {
                uint16_t t = table[i].type;
                if (!ctl_req_spec_of(t) || t >= CTL_TYPE_MAX_)
                        return -EINVAL;
                if (d->methods[t])
                        return -EEXIST;
                d->methods[t] = table[i].fn;
        }
        return 0;
}

void request_reply_fd(request *rq, int fd, bool give) {
        if (rq->n_reply_fds == CTL_FDS_MAX) {
                /* A handler bug, not the client's: the reply would be wrong. */
                log_error("dispatch: more than %d descriptors in a reply", CTL_FDS_MAX);
                if (give)
                        close(fd);
                return;
        }
        if (give)
                rq->reply_fds_owned |= 1u << rq->n_reply_fds;
        rq->reply_fds[rq->n_reply_fds++] = fd;
}

/* Close the reply descriptors handed over to the dispatcher. */
static void request_close_reply_fds(request *rq) {
        for (unsigned i = 0; i < rq->n_reply_fds; i++)
                if (rq->reply_fds_owned & (1u << i))
                        close(rq->reply_fds[i]);
        rq->n_reply_fds = 0;
        rq->reply_fds_owned = 0;
}

int request_send(request *rq, ctl_builder *b, const int *fds, unsigned n_fds) {
        rq->replied = true;
        return client_send(rq->c, b, fds, n_fds);
}

int request_reply_now(request *rq) {
        int r = request_send(rq, rq->reply, rq->reply_fds, rq->n_reply_fds);
        request_close_reply_fds(rq);
        return r;
}

/* The one place an ERROR is made for a request. */
static void request_reply_error(request *rq, int err) {
        ctl_begin(rq->reply, CTL_ERROR, rq->seq);
        ctl_put_u32(rq->reply, CTL_A_ERRNO, (uint32_t)(err < 0 ? -err : err));
        request_send(rq, rq->reply, NULL, 0);
}

int dispatch_request(client *c, const void *buf, size_t len, int *fds, unsigned n_fds) {
        ipcfd *d = c->d;
        ctl_msg m;
        ctl_args args;
        if (ctl_msg_parse(buf, len, &m) < 0)
                return -EBADMSG;
        int r = ctl_args_parse(&m, n_fds, &args);
        if (r == -EBADMSG)
                return r;
        request rq = { .d = d, .c = c, .seq = m.seq, .m = &m, .args = &args, .fds = fds,
                       .reply = &reply_buf };
        ctl_begin(rq.reply, CTL_OK, m.seq);
        method_fn fn = d->methods[m.type];
        if (r == 0)
                r = fn ? fn(&rq) : -ENOSYS;
        if (r == METHOD_DROP) {
                request_close_reply_fds(&rq);
                return -EBADMSG;
        }
        if (r < 0 && rq.replied)
                /* A handler may not fail after answering: its bug, logged. */
                log_error("dispatch: %s failed (%s) after replying", args.spec->name, strerror(-r));
        else if (r < 0)
                request_reply_error(&rq, r);
        else if (!rq.replied)
                request_reply_now(&rq);
        request_close_reply_fds(&rq);
        return 0;
}
