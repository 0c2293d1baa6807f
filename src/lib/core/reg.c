/*
 * reg.c — registering names and deciding incoming allocation requests.
 *
 * A registration owns a SOCK_SEQPACKET socket on which the daemon sends one
 * REQUEST message per pending request, so the socket is readable exactly when
 * a request waits (that socket is what ipcf_fd() returns for it). Decisions go
 * back over the process's control connection (conn.c).
 */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

static void reg_destroy(void *obj) {
        reg *r = obj;
        safe_close(r->sock);
}

/* ipcf_fd of a registration: its socket, readable when a request waits. */
static int reg_fd(void *obj) {
        return ((reg *)obj)->sock;
}

/* ipcf_dealloc of a registration: the daemon refuses what is pending on it
 * ("unregistered"); the reason is not sent. */
static void reg_end(void *obj, const char *reason) {
        (void)reason;
        /* A thread waiting for a request on it sees the daemon hang up (it
         * closes its end on UNREGISTER): that is -EBADF, the handle's end. */
        atomic_store(&((reg *)obj)->closed, true);
        /* A dead daemon has forgotten it anyway. */
        (void)conn_tell_u64(CTL_UNREGISTER, CTL_A_REG_ID, ((reg *)obj)->reg_id);
}

const handle_kind reg_kind = {
        .name = "registration",
        .end = reg_end,
        .fd = reg_fd,
        .destroy = reg_destroy,
};

int ipcf_register(const char *name, const ipcf_reg_opts *opts) {
        return reg_register(name, opts, 0, NULL);
}

int reg_register(const char *name, const ipcf_reg_opts *opts, uint32_t internal_flags,
                 uint64_t *ret_tok) {
        ipcf_reg_opts o = { 0 };
        uint64_t reg_id;
        int r;

        /* The caller's options hold public flags only; ours are added here. */
        if (!ctl_name_valid(name) ||
            (opts && ((opts->size && opts->size != sizeof(*opts)) ||
                      (opts->flags & ~(uint32_t)IPCF_REG_EXCLUSIVE))))
                return -EINVAL;
        if (opts)
                o = *opts;
        o.flags |= internal_flags;
        conn_call *c = conn_call_new(CTL_REGISTER);
        if (!c)
                return -ENOMEM;
        ctl_put_str(&c->req, CTL_A_NAME, name);
        ctl_put_u32(&c->req, CTL_A_REG_FLAGS, o.flags);
        ctl_put_u32(&c->req, CTL_A_BACKLOG, o.backlog ? o.backlog : 64);
        r = conn_call_run(c, NULL, 0);
        if (r < 0)
                goto out;
        r = -EPROTO;
        if (ctl_get_u64(&c->rep.msg, CTL_A_REG_ID, &reg_id) < 0 || c->rep.n_fds != 1)
                goto out;
        int h;
        reg *g = handle_alloc(&reg_kind, sizeof(*g), &h);
        if (!g) {
                r = -EMFILE; /* the daemon drops the registration when the socket closes */
                goto out;
        }
        g->reg_id = reg_id;
        g->sock = c->rep.fds[0];
        c->rep.fds[0] = -1;
        str_copy(g->name, name, sizeof(g->name));
        if (ret_tok)
                *ret_tok = handle_token(g);
        handle_publish(g);
        r = h;
out:
        conn_call_free(c);
        return r;
}

int reg_sock(uint64_t tok) {
        int e;
        reg *g = handle_get_token(tok, &reg_kind, &e);
        if (!g)
                return -EBADF;
        int fd = g->sock;
        handle_put(g);
        return fd;
}

void reg_detach(uint64_t tok) {
        reg *g = handle_close_token(tok, &reg_kind);
        if (g)
                handle_put(g);
}

int reg_take_flow(uint64_t tok) {
        int e;
        reg *g = handle_get_token(tok, &reg_kind, &e);
        if (!g)
                return -EBADF;
        conn_reply *rep = malloc(sizeof(*rep));
        int r = -ENOMEM;
        if (rep) {
                rep->n_fds = 0;
                r = conn_recv_own(g->sock, rep);
                if (r == 0 && (rep->msg.type != CTL_FLOW || rep->n_fds != FLOW_SIDE_FDS))
                        r = -EPROTO;
                else if (r == 0)
                        r = port_open_from_flow(&rep->msg, rep->fds);
                conn_reply_done(rep);
                free(rep);
        }
        handle_put(g);
        return r;
}

void reg_close_auto(uint64_t tok, const char *why) {
        reg *g = handle_close_token(tok, &reg_kind);
        if (!g)
                return;
        /* Unregistered first: after its OK the daemon sends nothing more, so
         * what is queued now is all there will ever be. (A dead daemon sends
         * nothing either.) */
        reg_end(g, NULL);
        conn_reply *rep = malloc(sizeof(*rep));
        /* Bounded by what the socket can hold; the bound only guards the loop. */
        for (int i = 0; rep && i < 1 << 16; i++) {
                rep->n_fds = 0;
                int r = conn_recv_own(g->sock, rep);
                if (r == 0 && rep->msg.type == CTL_FLOW && rep->n_fds == FLOW_SIDE_FDS) {
                        /* Opened only to be ended in order: the peer reads
                         * what it wrote was not taken, then -EPIPE with why.
                         * (If it cannot be opened, its descriptors close and
                         * the daemon ends it for us: "peer let go".) */
                        int ph = port_open_from_flow(&rep->msg, rep->fds);
                        if (ph >= 0)
                                ipcf_dealloc(ph, why);
                }
                conn_reply_done(rep);
                if (r < 0 && r != -EPROTO)
                        break; /* -EAGAIN: none left; end of stream; an error */
        }
        free(rep);
        handle_put(g);
}

/* Parse one REQUEST into *ret. */
static int request_parse(const ctl_msg *m, ipcf_request *ret) {
        const char *name, *pname;
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw;

        if (m->type != CTL_REQUEST ||
            ctl_get_u64(m, CTL_A_REQ_ID, &ret->id) < 0 ||
            ctl_get_str(m, CTL_A_NAME, IPCF_NAME_MAX, &name) < 0 ||
            ctl_get_fixed(m, CTL_A_PEER, &pw, sizeof(pw)) < 0 ||
            ctl_get_str(m, CTL_A_PEER_NAME, IPCF_NAME_MAX, &pname) < 0 ||
            ctl_get_fixed(m, CTL_A_QOS, &qw, sizeof(qw)) < 0)
                return -EPROTO;
        str_copy(ret->name, name, sizeof(ret->name));
        str_copy(ret->from.name, pname, sizeof(ret->from.name));
        ret->from.pid = (pid_t)le32toh(pw.pid);
        ret->from.uid = (uid_t)le32toh(pw.uid);
        ret->from.gid = (gid_t)le32toh(pw.gid);
        ctl_qos_from_wire(&qw, &ret->qos);
        return 0;
}

/* Is req still pending on g? 0 if so; -ECANCELED withdrawn, -ENOENT not
 * known (any other error: the daemon's, as for a decision). */
static int request_check(reg *g, const ipcf_request *req) {
        conn_call *c = conn_call_new(CTL_REQ_CHECK);
        if (!c)
                return -ENOMEM;
        ctl_put_u64(&c->req, CTL_A_REG_ID, g->reg_id);
        ctl_put_u64(&c->req, CTL_A_REQ_ID, req->id);
        int r = conn_call_run(c, NULL, 0);
        conn_call_free(c);
        return r;
}

/* The next REQUEST on h within timeout_ms. check: skip those withdrawn
 * meanwhile (a REQUEST the daemon sent stays queued on the socket when its
 * requester gives up), asking the daemon of each; ipcf_accept does not, its
 * ACCEPT says so anyway. */
static int request_next(int h, int timeout_ms, ipcf_request *ret, bool check) {
        reg *g = handle_get(h, &reg_kind);
        if (!g)
                return -EBADF;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        conn_reply *rep = malloc(sizeof(*rep));
        int r = rep ? 0 : -ENOMEM;
        while (r == 0) {
                int left = timeout_ms;
                if (timeout_ms > 0)
                        left = deadline_poll_ms(deadline);
                r = conn_recv_own_wait(g->sock, rep, left);
                if (r == -EAGAIN && timeout_ms > 0)
                        r = -ETIMEDOUT; /* the time went on skipped ones */
                if (r < 0 && atomic_load(&g->closed))
                        r = -EBADF;
                if (r < 0)
                        break;
                ipcf_request req;
                r = request_parse(&rep->msg, &req);
                if (r == 0 && check) {
                        r = request_check(g, &req);
                        if (r == -ECANCELED || r == -ENOENT) {
                                r = 0;
                                continue; /* withdrawn: not handed out */
                        }
                }
                if (r == 0)
                        *ret = req;
                break;
        }
        free(rep);
        handle_put(g);
        return r;
}

int ipcf_request_next(int h, int timeout_ms, ipcf_request *ret) {
        if (!ret || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        return request_next(h, timeout_ms, ret, true);
}

/* Send ACCEPT or REFUSE for req on registration g; for ACCEPT, make the port. */
static int decide(reg *g, const ipcf_request *req, bool accept, const char *reason) {
        conn_call *c = conn_call_new(accept ? CTL_ACCEPT : CTL_REFUSE);
        if (!c)
                return -ENOMEM;
        ctl_put_u64(&c->req, CTL_A_REG_ID, g->reg_id);
        ctl_put_u64(&c->req, CTL_A_REQ_ID, req->id);
        if (!accept) {
                char text[IPCF_REASON_MAX + 1];
                str_copy(text, reason ? reason : "", sizeof(text));
                ctl_put_str(&c->req, CTL_A_REASON, text);
        }
        int r = conn_call_run(c, NULL, 0);
        if (r == 0 && accept) {
                if (c->rep.msg.type != CTL_FLOW || c->rep.n_fds != FLOW_SIDE_FDS) {
                        r = -EPROTO;
                } else {
                        r = port_open_from_flow(&c->rep.msg, c->rep.fds);
                }
        }
        conn_call_free(c);
        return r;
}

int ipcf_request_accept(int h, const ipcf_request *req) {
        if (!req)
                return -EINVAL;
        reg *g = handle_get(h, &reg_kind);
        if (!g)
                return -EBADF;
        int r = decide(g, req, true, NULL);
        handle_put(g);
        return r;
}

int ipcf_request_refuse(int h, const ipcf_request *req, const char *reason) {
        if (!req)
                return -EINVAL;
        reg *g = handle_get(h, &reg_kind);
        if (!g)
                return -EBADF;
        int r = decide(g, req, false, reason);
        handle_put(g);
        return r;
}

int ipcf_accept(int h, int timeout_ms, ipcf_request *ret_req) {
        if (lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        uint64_t deadline = deadline_from_timeout(timeout_ms);
        for (;;) {
                ipcf_request req;
                int left = timeout_ms;
                if (timeout_ms > 0) {
                        left = deadline_poll_ms(deadline);
                        if (left == 0)
                                return -ETIMEDOUT;
                }
                int r = request_next(h, left, &req, false);
                if (r < 0)
                        return r;
                r = ipcf_request_accept(h, &req);
                if (r == -ECANCELED || r == -ENOENT)
                        continue; /* withdrawn by its requester (long ago): take the next */
                if (r >= 0 && ret_req)
                        *ret_req = req;
                return r;
        }
}
