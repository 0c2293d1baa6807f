/*
 * notify.c — notifications: the per-process notification socket the daemon
 * pushes EVENT messages on, and watched names (ipcf_watch).
 *
 * The socket is opened on first use with NOTIFY_OPEN (one end of a
 * socketpair comes back) and belongs to the process that opened it: after
 * fork() the child's first call opens its own (its daemon connection is its
 * own too). If the daemon dies the socket reads EOF: -EHOSTDOWN, and the next
 * call opens a fresh one (watches must be made again); so does a watch that
 * finds a new daemon, which knows no socket of ours.
 *
 * Who may call: anyone, any thread. Several threads may wait in
 * ipcf_notify_next(); each event goes to one of them (SOCK_SEQPACKET).
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

static pthread_mutex_t nlock = PTHREAD_MUTEX_INITIALIZER;
static int nfd = -1;
static pid_t nfd_pid;

/* The notification socket of this process, opened if needed. */
static int notify_get(void) {
        pthread_mutex_lock(&nlock);
        if (nfd >= 0 && nfd_pid == getpid()) {
                int fd = nfd;
                pthread_mutex_unlock(&nlock);
                return fd;
        }
        if (nfd >= 0)
                close(nfd); /* the parent's, inherited: not ours to read */
        nfd = -1;
        int r;
        conn_call *c = conn_call_new(CTL_NOTIFY_OPEN);
        if (!c) {
                r = -ENOMEM;
        } else {
                r = conn_call_run(c, NULL, 0);
                if (r >= 0 && c->rep.n_fds != 1)
                        r = -EPROTO;
                if (r >= 0) {
                        nfd = c->rep.fds[0];
                        c->rep.fds[0] = -1;
                        nfd_pid = getpid();
                        r = nfd;
                }
                conn_call_free(c);
        }
        pthread_mutex_unlock(&nlock);
        return r;
}

/* The daemon hung up: forget the socket so the next call opens a new one. */
static void notify_reset(int fd) {
        pthread_mutex_lock(&nlock);
        if (nfd == fd) {
                close(nfd);
                nfd = -1;
        }
        pthread_mutex_unlock(&nlock);
}

int ipcf_notify_fd(void) { return notify_get(); }

/* The port-id of this process holding flow_id, or -1 (handles are dense,
 * lowest first: stop after a run of free numbers). */
static int notify_port_of(uint64_t flow_id) {
        for (int h = 0, misses = 0; misses < 256 && h < (1 << 20); h++) {
                port *p = handle_get_port(h);
                if (!p) {
                        misses++;
                        continue;
                }
                misses = 0;
                bool hit = p->flow_id == flow_id;
                handle_put(p);
                if (hit)
                        return h;
        }
        return -1;
}

/* Fill *ret from an EVENT message. Returns 0 or -EPROTO. */
static int notify_parse(const ctl_msg *m, ipcf_event *ret) {
        ipcf_event ev;
        uint32_t u;
        const char *s;
        memset(&ev, 0, sizeof(ev));
        ev.port = -1;
        if (m->type != CTL_EVENT || ctl_get_u32(m, CTL_A_EVENT_KIND, &u) < 0 || u < 1 || u > 4)
                return -EPROTO;
        ev.kind = (int)u;
        if (ctl_get_u32(m, CTL_A_EVENT_LOST, &u) == 0)
                ev.lost = u;
        if (ctl_get_str(m, CTL_A_NAME, IPCF_NAME_MAX, &s) == 0)
                str_copy(ev.name, s, sizeof(ev.name));
        if (ctl_get_u64(m, CTL_A_FLOW_ID, &ev.flow_id) == 0)
                ev.port = notify_port_of(ev.flow_id);
        if (ctl_get_u32(m, CTL_A_PID, &u) == 0)
                ev.pid = (pid_t)u;
        if (ctl_get_u32(m, CTL_A_END_CODE, &u) == 0)
                ev.end_code = (int)u;
        if (ctl_get_str(m, CTL_A_REASON, CTL_MSG_MAX, &s) == 0)
                str_copy(ev.reason, s, sizeof(ev.reason));
        *ret = ev;
        return 0;
}

int ipcf_notify_next(int timeout_ms, ipcf_event *ret) {
        if (!ret || lib_check_timeout(timeout_ms) < 0)
                return -EINVAL;
        int fd = notify_get();
        if (fd < 0)
                return fd;
        conn_reply *rep = malloc(sizeof(*rep));
        if (!rep)
                return -ENOMEM;
        /* (Another thread may take a message first: the wait goes on.) */
        int r = conn_recv_own_wait(fd, rep, timeout_ms);
        if (r == 0)
                r = notify_parse(&rep->msg, ret);
        else if (r != -EPROTO && r != -EAGAIN && r != -ETIMEDOUT) {
                notify_reset(fd);
                r = -EHOSTDOWN;
        }
        free(rep);
        return r;
}

static int notify_watch_req(const char *name, uint16_t type) {
        /* name@host: no daemon tells of another host's names by host (a
         * watch of it was taken and never fired) */
        if (!ctl_name_valid(name) || strchr(name, '@'))
                return -EINVAL;
        for (int attempt = 0;; attempt++) {
                int fd = notify_get();
                if (fd < 0)
                        return fd;
                int r = conn_tell(type, name, 0, NULL, 0);
                /* A daemon that does not know our socket: a new one, started
                 * since the one that made it died. Open one with it, once. */
                if (r != -ENOTCONN || attempt > 0)
                        return r;
                notify_reset(fd);
        }
}

int ipcf_watch(const char *name) { return notify_watch_req(name, CTL_WATCH); }

int ipcf_unwatch(const char *name) { return notify_watch_req(name, CTL_UNWATCH); }
