/*
 * service.c — the service's side of calls (Denning's protected service
 * process): an inbox of call channels (inbox.c) and the call frames
 * (callwire.h). The caller's side is call.c.
 *
 * Rules: a request is answered on the channel it came from, at most once; an
 * answer to a call its caller gave up on is dropped (-ECANCELED). The
 * request names its channel by a token (ipcf_call_req.token: the handle
 * table's token of the channel's port), which is checked to name a live
 * channel of this very service before anything is written: a forged or
 * foreign token never reaches another caller.
 *
 * At most once: each channel keeps account of the ids this process took
 * and has not answered (struct inbox_book, inbox.h): a take notes the id,
 * an answer settles it first (one compare-and-swap: of threads answering
 * one request at once, one wins) and a second finds it gone (-EALREADY),
 * whatever the answer's outcome — but an answer that found no room in the
 * caller's queue (-EAGAIN, -ETIMEDOUT, -ENOBUFS: nothing written) leaves it
 * owed again, and one refused for its arguments never settled it. A caller
 * that sends one id twice made two requests: each is answered once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/core/lib.h"
#include "lib/models/callwire.h"
#include "lib/models/inbox.h"
#include "lib/models/service.h"

typedef struct service {
        inbox box;
} service;

/* ipcf_dealloc of a service: end every caller's channel, unregister. */
static void service_end(void *obj, const char *reason) {
        inbox_close_all(&((service *)obj)->box, reason ? reason : "service closed");
}

static int service_fd(void *obj) {
        return inbox_fd(&((service *)obj)->box);
}

static void service_destroy(void *obj) {
        inbox_deinit(&((service *)obj)->box);
}

static int service_detach(void *obj) {
        return inbox_detach(&((service *)obj)->box);
}

static const handle_kind service_kind = {
        .name = "service",
        .end = service_end,
        .fd = service_fd,
        .destroy = service_destroy,
        .detach = service_detach,
};

int ipcf_service(const char *name, const ipcf_reg_opts *opts) {
        if (!ctl_name_valid(name))
                return -EINVAL;
        int h;
        service *s = handle_alloc(&service_kind, sizeof(*s), &h);
        if (!s)
                return -EMFILE;
        int r = inbox_init(&s->box, name, opts, CTL_ROLE_CALL);
        if (r < 0) {
                handle_abort(s);
                return r;
        }
        handle_publish(s);
        return h;
}

struct take_ctx {
        void *buf;
        size_t cap;
        ipcf_call_req *ret;
};

/* One request frame -> the caller's buffer (under the channel's read lock). */
static ssize_t take_frame(void *arg, const void *data, size_t len) {
        struct take_ctx *t = arg;
        struct call_hdr h;
        if (len < sizeof(h))
                return -EPROTO;
        memcpy(&h, data, sizeof(h));
        if (h.kind != CALL_REQ || h.id == 0)
                return -EPROTO;
        size_t body = len - sizeof(h);
        t->ret->id = h.id;
        t->ret->len = body;
        if (body > t->cap)
                return -EMSGSIZE; /* kept: the caller retries with a bigger buffer */
        memcpy(t->buf, (const uint8_t *)data + sizeof(h), body);
        return (ssize_t)body;
}

ssize_t ipcf_service_next(int h, void *buf, size_t cap, int timeout_ms, ipcf_call_req *ret) {
        if (!ret || (!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        service *s = handle_get(h, &service_kind);
        if (!s)
                return -EBADF;
        struct take_ctx t = { buf, cap, ret };
        port *p = NULL;
        ssize_t r = inbox_take(&s->box, take_frame, &t, timeout_ms, &p);
        if (r >= 0 || r == -EMSGSIZE) {
                ret->from = p->peer;
                ret->token = handle_token(p);
                if (r >= 0)
                        inbox_book_owe(p, ret->id); /* (-EMSGSIZE: it stays queued) */
                handle_put(p);
        }
        handle_put(s);
        return r;
}

/* Did the caller cancel call id (its id is in the channel's cancel slots)? */
static bool id_cancelled(port *p, uint64_t id) {
        for (unsigned i = 0; i < FLOW_CANCEL_SLOTS; i++)
                if (atomic_load(&p->hdr->cancel.ids[i]) == id)
                        return true;
        return false;
}

/* The channel req came on, if req is one of service h's: with references to
 * both (*ret_svc, the result), or NULL and *ret_err (-EBADF h is not a
 * service, or req not of it; -EINVAL req is not a request this process took;
 * -EPIPE its caller is gone). */
static port *request_channel(int h, const ipcf_call_req *req, service **ret_svc, int *ret_err) {
        service *s = handle_get(h, &service_kind);
        if (!s) {
                *ret_err = -EBADF;
                return NULL;
        }
        port *p = inbox_chan_of_token(&s->box, req->token, ret_err);
        if (!p) {
                handle_put(s);
                return NULL;
        }
        *ret_svc = s;
        return p;
}

int ipcf_service_cancelled(int h, const ipcf_call_req *req) {
        if (!req || req->id == 0)
                return -EINVAL;
        service *s;
        int err;
        port *p = request_channel(h, req, &s, &err);
        if (!p)
                return err == -EPIPE ? 1 : err; /* the channel is gone: nobody waits */
        int r = !inbox_book_owes(p, req->id) ? -EALREADY : id_cancelled(p, req->id) || port_end_error(p) != 0;
        handle_put(p);
        handle_put(s);
        return r;
}

int service_caller_host(int h, const ipcf_call_req *req, char *host, size_t cap) {
        if (!req || !host || !cap)
                return -EINVAL;
        service *s;
        int err;
        port *p = request_channel(h, req, &s, &err);
        if (!p)
                return err;
        str_copy(host, p->peer_host, cap);
        int r = p->peer_remote;
        handle_put(p);
        handle_put(s);
        return r;
}

static int answer(int h, const ipcf_call_req *req, uint32_t kind, int code, const void *data,
                  size_t len, int timeout_ms) {
        if (!req || req->id == 0 || (!data && len) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        if (len > IPCF_CALL_MAX)
                return -EMSGSIZE;
        service *s;
        int r;
        port *p = request_channel(h, req, &s, &r);
        if (!p)
                return r;
        /* Settled first: a second answer (or one racing this) finds it gone.
         * A cancelled call says so even if its caller has gone since. */
        r = inbox_book_settle(p, req->id);
        if (r == 0)
                r = id_cancelled(p, req->id) ? -ECANCELED : port_end_error(p);
        if (r == 0) {
                struct call_hdr hdr = { .id = req->id, .kind = kind, .code = code };
                ssize_t w = port_write2(p, &hdr, sizeof(hdr), data, len, timeout_ms);
                r = w < 0 ? (int)w : 0;
                if (r == -EAGAIN || r == -ETIMEDOUT || r == -ENOBUFS)
                        inbox_book_owe(p, req->id); /* nothing written: still owed */
        }
        handle_put(p);
        handle_put(s);
        return r;
}

int ipcf_service_reply(int h, const ipcf_call_req *req, const void *reply, size_t len,
                       int timeout_ms) {
        return answer(h, req, CALL_REPLY, 0, reply, len, timeout_ms);
}

int ipcf_service_fail(int h, const ipcf_call_req *req, int code, int timeout_ms) {
        return answer(h, req, CALL_FAIL, code, NULL, 0, timeout_ms);
}
