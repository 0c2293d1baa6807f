/*
 * alloc.c — ipcf_alloc: Allocate(dest-appl-name, ipc characteristics).
 *
 * The request goes over the control connection with one end of a fresh
 * socketpair (the reply socket); the daemon answers OK at once, and later sends
 * the outcome — a FLOW or an ERROR — on the reply socket. Waiting there keeps
 * the control connection free for other threads.
 *
 * THE TIMEOUT: the daemon enforces it (its verdict ETIMEDOUT comes timeout_ms
 * after it read the request); we wait for the whole procedure, the request's
 * own reply included, ALLOC_SLACK_MS longer (ipcf.h: "at most n ms and
 * 100 ms more"), then fail -ETIMEDOUT ourselves: a daemon stopped with
 * SIGSTOP, wedged or slow holds an allocation no longer. Giving up closes the
 * reply socket, which is how the daemon learns it (alloc.c of the daemon): an
 * undecided request is withdrawn (the target's takers skip it, a decision
 * under way fails -ECANCELED); a flow already sent, never acknowledged, is
 * ended ("requester gave up"). Receiving the FLOW, we acknowledge it with an
 * OK.
 *
 * ROLES: a channel of the library's models (call, datagram, mailbox,
 * multicast) is allocated with alloc_role(); its role goes in the ALLOC's
 * ROLE attribute. The public ipcf_alloc() always asks for a plain flow.
 *
 * THE LAST REASON: every alloc_role() leaves its outcome's reason in the
 * calling thread's last_reason (cleared by a success), so the calls that
 * allocate without a reason parameter (ipcf_call, ipcf_dgram_send, the
 * models' opens, the RPC client) give it too, by ipcf_last_reason().
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* How much longer than its timeout an allocation waits for the daemon's
 * verdict (THE TIMEOUT above): the daemon's timer starts when it reads the
 * request, and its verdict has to come back. */
#define ALLOC_SLACK_MS 100

/* Wait until deadline for and interpret the one outcome message on the
 * reply socket. */
static int alloc_outcome(int sock, uint64_t deadline, ipcf_reason *ret_reason) {
        struct pollfd pfd = { .fd = sock, .events = POLLIN };
        for (;;) {
                int r = poll(&pfd, 1, deadline_poll_ms(deadline));
                if (r > 0)
                        break;
                if (r == 0)
                        return -ETIMEDOUT;
                if (errno != EINTR)
                        return -errno;
        }
        conn_reply *rep = malloc(sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        rep->n_fds = 0;
        int r = conn_recv_own(sock, rep);
        if (r < 0 && r != -EPROTO)
                r = -EHOSTDOWN; /* the daemon died before deciding */
        else if (r == 0 && rep->msg.type == CTL_ERROR)
                r = conn_error_of(&rep->msg, ret_reason);
        else if (r == 0 && (rep->msg.type != CTL_FLOW || rep->n_fds != FLOW_SIDE_FDS))
                r = -EPROTO;
        else if (r == 0 && (r = port_open_from_flow(&rep->msg, rep->fds)) >= 0) {
                ctl_builder *ack = malloc(sizeof(*ack));
                if (ack) {
                        ctl_begin(ack, CTL_OK, 0);
                        if (ctl_end(ack) > 0)
                                (void)ctl_send(sock, ack, NULL, 0);
                        free(ack);
                }
        }
        conn_reply_done(rep);
        free(rep);
        return r;
}

/* The reason of this thread's last allocation (zero: it succeeded, or no
 * reason was given). */
static __thread ipcf_reason last_reason;

static int alloc_run(const char *name, const ipcf_qos *qos, unsigned role, int timeout_ms,
                     ipcf_reason *ret_reason) {
        ipcf_qos q;
        struct ctl_qos_wire qw;
        int sp[2], r;

        if (!ctl_name_valid(name) || timeout_ms == 0 || lib_check_timeout(timeout_ms) < 0 ||
            role >= CTL_ROLE_MAX_)
                return -EINVAL;
        if (lib_qos_or_default(qos, &q) < 0 || ctl_qos_normalize(&q) < 0)
                return -EINVAL;
        flow_layout l;
        if (flow_layout_for(&q, &l) < 0)
                return -EINVAL;
        ctl_qos_to_wire(&q, &qw);

        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
                return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        conn_call *c = conn_call_new(CTL_ALLOC);
        if (!c) {
                close(sp[0]);
                close(sp[1]);
                return -ENOMEM;
        }
        ctl_put_str(&c->req, CTL_A_NAME, name);
        ctl_put(&c->req, CTL_A_QOS, &qw, sizeof(qw));
        ctl_put_u32(&c->req, CTL_A_TIMEOUT_MS, (uint32_t)timeout_ms);
        if (role != CTL_ROLE_FLOW)
                ctl_put_u32(&c->req, CTL_A_ROLE, role);
        /* The whole procedure by one deadline (THE TIMEOUT). */
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                           : deadline_from_timeout(MIN(timeout_ms, INT_MAX - ALLOC_SLACK_MS) +
                                                                   ALLOC_SLACK_MS);
        r = conn_call_run_until(c, &sp[1], 1, deadline);
        if (r < 0 && ret_reason)
                *ret_reason = c->rep.reason;
        conn_call_free(c);
        close(sp[1]);
        if (r >= 0)
                r = alloc_outcome(sp[0], deadline, ret_reason);
        close(sp[0]);
        return r;
}

int alloc_role(const char *name, const ipcf_qos *qos, unsigned role, int timeout_ms,
               ipcf_reason *ret_reason) {
        ipcf_reason why;
        memset(&why, 0, sizeof(why));
        int r = alloc_run(name, qos, role, timeout_ms, &why);
        if (r >= 0)
                memset(&why, 0, sizeof(why));
        last_reason = why;
        if (r < 0 && ret_reason)
                *ret_reason = why;
        return r;
}

int ipcf_last_reason(ipcf_reason *ret) {
        if (!ret)
                return -EINVAL;
        *ret = last_reason;
        return 0;
}

/* The public call: an ordinary flow. A qos whose reserved byte is set fails
 * in ctl_qos_normalize() (EINVAL): it can never name a role. */
int ipcf_alloc(const char *name, const ipcf_qos *qos, int timeout_ms, ipcf_reason *ret_reason) {
        return alloc_role(name, qos, CTL_ROLE_FLOW, timeout_ms, ret_reason);
}
