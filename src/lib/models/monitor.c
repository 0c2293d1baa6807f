/*
 * monitor.c — the traffic monitor (ipcf_monitor_open, ipcf_monitor_next):
 * a socket of its own per monitor, on which the daemon pushes MONITOR_EVENT
 * messages (src/daemon/monitor/monitor.c says which, and to whom).
 *
 * The descriptor is the caller's (unlike the notification socket, which the
 * library owns): several monitors may be open at once, each closed with
 * close(). The daemon's messages are checked like every reply: framing,
 * then each field's range (kind, strings cut to their bounds).
 * Who may call: anyone, any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

int ipcf_monitor_open(uint32_t flags) {
        if (flags != 0)
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_MONITOR_OPEN);
        if (!c)
                return -ENOMEM;
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

/* Fill *ret from a MONITOR_EVENT. 0 or -EPROTO. */
static int monitor_parse(const ctl_msg *m, ipcf_monitor_event *ret) {
        struct ctl_monitor_wire w;
        const char *s;
        if (m->type != CTL_MONITOR_EVENT || ctl_get_fixed(m, CTL_A_MONITOR, &w, sizeof(w)) < 0)
                return -EPROTO;
        ipcf_monitor_event ev;
        memset(&ev, 0, sizeof(ev));
        ev.kind = (int)le32toh(w.kind);
        if (ev.kind < IPCF_MONITOR_ALLOC || ev.kind > IPCF_MONITOR_NAME_DOWN)
                return -EPROTO;
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
        return 0;
}

int ipcf_monitor_next(int fd, int timeout_ms, ipcf_monitor_event *ret) {
        if (fd < 0 || !ret || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        conn_reply *rep = malloc(sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        int r = conn_recv_own_wait(fd, rep, timeout_ms);
        if (r == 0)
                r = monitor_parse(&rep->msg, ret);
        else if (r != -EPROTO && r != -EAGAIN && r != -ETIMEDOUT)
                r = -EHOSTDOWN;
        free(rep);
        return r;
}
