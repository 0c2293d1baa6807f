/*
 * monitor.c — the traffic monitor (ipcf_monitor_open, ipcf_monitor_next,
 * ipcf_monitor_read): a socket of its own per monitor, on which the daemon
 * pushes MONITOR_EVENT messages (src/daemon/monitor/monitor.c says which,
 * and to whom) — with IPCF_MONITOR_DATAGRAMS, its UDP datagrams too.
 *
 * The descriptor is the caller's (unlike the notification socket, which the
 * library owns): several monitors may be open at once, each closed with
 * close(). The daemon's messages are checked like every reply: framing,
 * then each field's range (kind, strings cut to their bounds).
 * Who may call: anyone, any thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

int ipcf_monitor_open(uint32_t flags) {
        if (flags & ~IPCF_MONITOR_DATAGRAMS)
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_MONITOR_OPEN);
        if (!c)
                return -ENOMEM;
        if (flags) {
                uint32_t le = htole32(flags);
                ctl_put(&c->req, CTL_A_MONITOR_FLAGS, &le, sizeof(le));
        }
        int r = conn_call_run(c, NULL, 0);
        if (r >= 0 && c->rep.n_fds != 1)
                r = -EPROTO;
        if (r >= 0) {
                r = c->rep.fds[0];
                c->rep.fds[0] = -1; /* the caller's */
        }
        conn_call_free(c);
        return r;
}

/* A program name from the wire: NUL-terminated within its field. */
static void prog_from_wire(char *dst, const char src[CTL_PROG_MAX + 1]) {
        size_t n = strnlen(src, CTL_PROG_MAX);
        memcpy(dst, src, n);
        dst[n] = 0;
}

/* A DATAGRAM event's datagram (*w, from the daemon: every field checked)
 * into *ret and buf; its peer's address as the event's name. 0 or -EPROTO. */
static int dgram_parse(const struct ctl_monitor_dgram_wire *w, ipcf_monitor_event *ev,
                       ipcf_monitor_datagram *ret, void *buf, size_t cap) {
        uint32_t captured = le32toh(w->captured), wire_len = le32toh(w->wire_len);
        if (w->direction > 1 || (w->family != 0 && w->family != 4 && w->family != 6) ||
            captured > CTL_MONITOR_SNAP || captured > wire_len)
                return -EPROTO;
        memset(ret, 0, sizeof(*ret));
        ret->direction = w->direction;
        ret->family = w->family;
        ret->port = le16toh(w->port);
        memcpy(ret->addr, w->addr, sizeof(ret->addr));
        ret->wire_len = wire_len;
        ret->captured = (uint32_t)MIN((size_t)captured, cap);
        if (ret->captured)
                memcpy(buf, w->data, ret->captured);
        char ip[INET6_ADDRSTRLEN] = "?";
        if (w->family)
                inet_ntop(w->family == 4 ? AF_INET : AF_INET6, w->addr, ip, sizeof(ip));
        snprintf(ev->name, sizeof(ev->name), w->family == 6 ? "[%s]:%u" : "%s:%u", ip, ret->port);
        return 0;
}

/* Fill *ret from a MONITOR_EVENT (and, for a DATAGRAM, *ret_dgram and buf).
 * 0 or -EPROTO. */
static int monitor_parse(const ctl_msg *m, ipcf_monitor_event *ret, ipcf_monitor_datagram *ret_dgram,
                         void *buf, size_t cap) {
        struct ctl_monitor_wire w;
        const char *s;
        if (m->type != CTL_MONITOR_EVENT || ctl_get_fixed(m, CTL_A_MONITOR, &w, sizeof(w)) < 0)
                return -EPROTO;
        ipcf_monitor_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = (int)le32toh(w.kind);
        if (ev.kind < IPCF_MONITOR_ALLOC || ev.kind > IPCF_MONITOR_DATAGRAM)
                return -EPROTO;
        ipcf_monitor_datagram dg;
        memset(&dg, 0, sizeof(dg));
        if (ev.kind == IPCF_MONITOR_DATAGRAM) {
                struct ctl_monitor_dgram_wire dw;
                if (ctl_get_fixed(m, CTL_A_MONITOR_DGRAM, &dw, sizeof(dw)) < 0 ||
                    dgram_parse(&dw, &ev, &dg, buf, cap) < 0)
                        return -EPROTO;
        }
        ev.lost = le32toh(w.lost);
        ev.time_ns = le64toh(w.time_ns);
        ev.flow_id = le64toh(w.flow_id);
        ev.alloc_id = le64toh(w.alloc_id);
        ev.pid_a = (pid_t)le32toh(w.pid_a);
        ev.pid_b = (pid_t)le32toh(w.pid_b);
        ev.uid_a = (uid_t)le32toh(w.uid_a);
        ev.uid_b = (uid_t)le32toh(w.uid_b);
        uint32_t err = le32toh(w.err);
        ev.error = err < 4096 ? -(int)err : -EPROTO;
        ev.end_code = (int)le32toh(w.end_code);
        ev.end_side = le32toh(w.end_side) ? 1 : 0;
        prog_from_wire(ev.prog_a, w.prog_a);
        prog_from_wire(ev.prog_b, w.prog_b);
        if (ctl_get_str(m, CTL_A_NAME, IPCF_NAME_MAX, &s) == 0)
                str_copy(ev.name, s, sizeof(ev.name));
        if (ctl_get_str(m, CTL_A_REASON, CTL_MSG_MAX, &s) == 0)
                str_copy(ev.reason, s, sizeof(ev.reason));
        *ret = ev;
        if (ret_dgram)
                *ret_dgram = dg;
        return 0;
}

int ipcf_monitor_next(int fd, int timeout_ms, ipcf_monitor_event *ret) {
        return ipcf_monitor_read(fd, timeout_ms, ret, NULL, NULL, 0);
}

int ipcf_monitor_read(int fd, int timeout_ms, ipcf_monitor_event *ret, ipcf_monitor_datagram *ret_dgram,
                      void *buf, size_t cap) {
        if (fd < 0 || !ret || (!buf && cap) || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        conn_reply *rep = malloc(sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        int r = conn_recv_own_wait(fd, rep, timeout_ms);
        if (r == 0)
                r = monitor_parse(&rep->msg, ret, ret_dgram, buf, cap);
        else if (r != -EPROTO && r != -EAGAIN && r != -ETIMEDOUT)
                r = -EHOSTDOWN;
        free(rep);
        return r;
}
