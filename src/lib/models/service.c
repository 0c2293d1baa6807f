/*
 * service.c — the service's side of calls (Denning's protected service
 * process): an inbox of call channels (inbox.c) and the call frames
 * (callwire.h). The caller's side is call.c.
 *
 * Rules: a request is answered on the channel it came from, at most once; an
 * answer to a call its caller gave up on is dropped (-ECANCELED).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/models/callwire.h"
#include "lib/core/lib.h"

int ipcf_service(const char *name, const ipcf_reg_opts *opts) {
        if (!ctl_name_valid(name))
                return -EINVAL;
        int h;
        service *s = handle_alloc(HANDLE_SERVICE, &h);
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

ssize_t ipcf_service_next(int h, void *buf, size_t cap, ipcf_call_req *ret, int timeout_ms) {
        if (!ret || (!buf && cap) || timeout_ms < -1)
                return -EINVAL;
        service *s = handle_get_service(h);
        if (!s)
                return -EBADF;
        struct take_ctx t = { buf, cap, ret };
        int ph = -1;
        ssize_t r = inbox_take(&s->box, take_frame, &t, &ph, timeout_ms);
        if (r >= 0 || r == -EMSGSIZE) {
                port *p = handle_get_port(ph);
                if (p) {
                        ret->from = p->peer;
                        handle_put(p);
                }
                ret->channel = ph;
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

int ipcf_service_cancelled(int h, const ipcf_call_req *req) {
        (void)h;
        if (!req)
                return -EINVAL;
        port *p = handle_get_port(req->channel);
        if (!p)
                return 1; /* the channel is gone: nobody waits for this call */
        int r = id_cancelled(p, req->id) || port_end_error(p) != 0;
        handle_put(p);
        return r;
}

static int answer(int h, const ipcf_call_req *req, uint32_t kind, int code, const void *data,
                  size_t len, int timeout_ms) {
        if (!req || (!data && len) || timeout_ms < -1)
                return -EINVAL;
        if (len > IPCF_CALL_MAX)
                return -EMSGSIZE;
        service *s = handle_get_service(h);
        if (!s)
                return -EBADF;
        handle_put(s);
        port *p = handle_get_port(req->channel);
        if (!p)
                return -EPIPE;
        /* A cancelled call says so even if its caller has gone since. */
        int r = id_cancelled(p, req->id) ? -ECANCELED : port_end_error(p);
        if (r == 0) {
                struct call_hdr hdr = { .id = req->id, .kind = kind, .code = code };
                ssize_t w = port_write2(p, &hdr, sizeof(hdr), data, len, timeout_ms);
                r = w < 0 ? (int)w : 0;
        }
        handle_put(p);
        return r;
}

int ipcf_service_reply(int h, const ipcf_call_req *req, const void *reply, size_t len,
                       int timeout_ms) {
        return answer(h, req, CALL_REPLY, 0, reply, len, timeout_ms);
}

int ipcf_service_fail(int h, const ipcf_call_req *req, int code, int timeout_ms) {
        return answer(h, req, CALL_FAIL, code, NULL, 0, timeout_ms);
}

int ipcf_service_close(int h) {
        service *s = handle_close(h, HANDLE_SERVICE);
        if (!s)
                return -EBADF;
        inbox_close_all(&s->box, "service closed");
        handle_put(s);
        return 0;
}

void service_destroy(service *s) {
        inbox_deinit(&s->box);
}

int service_fd(int h) {
        service *s = handle_get_service(h);
        if (s) {
                int fd = inbox_fd(&s->box);
                handle_put(s);
                return fd;
        }
        dgram_ep *e = handle_get_dgram(h);
        if (e) {
                int fd = inbox_fd(&e->box);
                handle_put(e);
                return fd;
        }
        return -EBADF;
}
