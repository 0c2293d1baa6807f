/*
 * client.c — connections on ipcfd.sock: accept, identify, receive, hand to the
 * dispatcher, and peer death (see client.h). Knows no service: requests go
 * through the method table (dispatch.h), deaths through observers.
 *
 * Each readable event handles at most CLIENT_BURST requests, so one busy
 * client cannot starve the others (the watch is level-triggered: the rest
 * waits for the next round). Requests are answered in order because they are
 * handled one at a time and every request is answered before the next.
 *
 * PROTOCOL VIOLATIONS (malformed framing, a reply-type message, a known
 * attribute of the wrong size, a bad string, unexpected fds: see
 * common/ctlschema.h) drop that client only; nothing it sends can crash or
 * block the daemon. A client that does not read its replies is not read
 * either until it does (backpressure, see client_on_event()); should a reply
 * still not fit, the client is dropped: the daemon never waits for one client.
 */
#include "daemon/core/client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/admit.h"
#include "daemon/core/dispatch.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/core/quota.h"

#define CLIENT_BURST 16
/* After accept() fails for lack of descriptors, stop accepting this long. */
#define ACCEPT_PAUSE_NS (100 * 1000000ull)

static void client_on_event(loop_io *io, uint32_t events);

bool client_is_privileged(const client *c) {
        return c->cred.uid == 0 || c->cred.uid == c->d->uid;
}

int client_hold_kind(ipcfd *d, const char *label) {
        if (d->n_holds == CLIENT_HOLDS_MAX)
                return -ENOSPC;
        d->hold_labels[d->n_holds] = label;
        return (int)d->n_holds++;
}

/* The program name of pid: basename of /proc/PID/exe, without the " (deleted)"
 * the kernel appends to a replaced binary. Falls back to "unknown". */
static void client_read_prog(pid_t pid, char *out, size_t size) {
        char path[64], exe[PATH_MAX];
        snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
        ssize_t n = readlink(path, exe, sizeof(exe) - 1);
        if (n <= 0) {
                str_copy(out, "unknown", size);
                return;
        }
        exe[n] = 0;
        static const char del[] = " (deleted)";
        size_t len = (size_t)n;
        if (len > sizeof(del) - 1 && strcmp(exe + len - (sizeof(del) - 1), del) == 0)
                exe[len - (sizeof(del) - 1)] = 0;
        const char *base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        /* The name travels as a string attribute: keep it printable. */
        size_t k = 0;
        for (; base[k] && k + 1 < size; k++)
                out[k] = (base[k] > ' ' && base[k] <= '~') ? base[k] : '_';
        out[k] = 0;
        if (k == 0)
                str_copy(out, "unknown", size);
}

static int client_read_cred(int fd, cred *cr) {
        struct ucred uc;
        socklen_t len = sizeof(uc);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        memset(cr, 0, sizeof(*cr));
        cr->pid = uc.pid;
        cr->uid = uc.uid;
        cr->gid = uc.gid;
        /* Supplementary groups for group: rules, kept up to CRED_GROUPS_MAX.
         * A longer list fails with ERANGE and reports the size it needs:
         * fetch it into a temporary buffer (at most NGROUPS_MAX entries) and
         * keep the first ones. */
        len = sizeof(cr->groups);
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, cr->groups, &len) == 0) {
                cr->n_groups = len / sizeof(gid_t);
        } else if (errno == ERANGE && len > sizeof(cr->groups) && len <= 65536 * sizeof(gid_t)) {
                gid_t *all = malloc(len);
                if (all && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, all, &len) == 0) {
                        cr->n_groups = MIN(len / sizeof(gid_t), (size_t)CRED_GROUPS_MAX);
                        memcpy(cr->groups, all, cr->n_groups * sizeof(gid_t));
                }
                free(all);
        }
        return 0;
}

/* A new connection: identify it, admit it (admit.h: reserves, idle ones
 * reclaimed; a refusal is told, never silent), charge its user, watch it.
 * Any other failure just closes it (the client sees EOF and may retry). */
static void client_new(ipcfd *d, int fd) {
        cred cr;
        user *u = NULL;
        client *c = NULL;
        int r = client_read_cred(fd, &cr);
        if (r < 0) {
                log_error("client: SO_PEERCRED: %s", strerror(-r));
                goto fail;
        }
        u = user_ref_uid(d, cr.uid);
        if (!u)
                goto fail;
        const char *why;
        r = admit_connection(d, cr.uid, u, &why);
        if (r < 0) {
                /* Debug level: a hostile user must not be able to flood the log. */
                log_debug("client: refusing pid %d uid %u: %s", (int)cr.pid, (unsigned)cr.uid, why);
                admit_notice(fd, -r, why);
                goto fail;
        }
        quota_charge(u, QUOTA_CLIENTS, 1); /* admitted: within the quota */
        c = calloc(1, sizeof(*c));
        if (!c)
                goto fail_charged;
        c->d = d;
        c->fd = fd;
        c->cred = cr;
        c->user = u;
        c->id = ipcfd_new_id(d);
        c->last_ns = now_ns();
        for (size_t k = 0; k < CLIENT_HOLDS_MAX; k++)
                dlist_init(&c->held[k]);
        /* Read once, now: the name must describe the process that connected,
         * even if it later execs something else. */
        client_read_prog(cr.pid, c->prog, sizeof(c->prog));
        if (loop_io_add(d->loop, &c->io, fd, EPOLLIN, client_on_event) < 0)
                goto fail_charged;
        dlist_add_tail(&d->clients, &c->link);
        d->n_clients++;
        log_debug("client %llu: pid %d uid %u gid %u prog %s", (unsigned long long)c->id,
                  (int)cr.pid, (unsigned)cr.uid, (unsigned)cr.gid, c->prog);
        return;

fail_charged:
        quota_release(u, QUOTA_CLIENTS, 1);
fail:
        user_unref(u);
        free(c);
        close(fd);
}

void client_accept_resume(loop_timer *t) {
        ipcfd *d = container_of(t, ipcfd, accept_pause);
        loop_io_mod(d->loop, &d->listen_io, EPOLLIN);
}

void client_accept_all(ipcfd *d) {
        for (int i = 0; i < CLIENT_BURST; i++) {
                int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (fd >= 0) {
                        client_new(d, fd);
                        continue;
                }
                if (errno == EINTR || errno == ECONNABORTED)
                        continue;
                if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                        /* The connection stays queued and the watch is level-
                         * triggered: pause it rather than spin. */
                        log_error("accept: %s; pausing", strerror(errno));
                        loop_io_mod(d->loop, &d->listen_io, 0);
                        loop_timer_arm(d->loop, &d->accept_pause, now_ns() + ACCEPT_PAUSE_NS);
                }
                return; /* EAGAIN or a hard error */
        }
}

int client_send(client *c, ctl_builder *b, const int *fds, unsigned n_fds) {
        if (c->dead)
                return -EPIPE;
        int r = ctl_end(b);
        if (r >= 0)
                r = ctl_send(c->fd, b, fds, n_fds);
        if (r < 0) {
                log_debug("client %llu: send: %s; dropping it", (unsigned long long)c->id,
                          strerror(-r));
                c->dead = true;
        }
        return r < 0 ? r : 0;
}

/* HELLO: the protocol version and the daemon's pid. */
static int client_on_hello(request *rq) {
        ctl_put_u32(rq->reply, CTL_A_VERSION, CTL_VERSION);
        ctl_put_u32(rq->reply, CTL_A_PID, (uint32_t)rq->d->pid);
        return 0;
}

static int client_init(ipcfd *d) {
        static const method methods[] = { { CTL_HELLO, client_on_hello } };
        /* The daemon's sends never wait (common/ctl.h): not on a socket a
         * client handed it and may have made blocking (an ALLOC's reply
         * socket), nor on any other. */
        ctl_sends_never_wait();
        return dispatch_add(d, methods, ARRAY_SIZE(methods));
}

const daemon_module client_module = { .name = "core", .init = client_init };

/* Could one more reply (at most CTL_MSG_MAX bytes) be queued on c's socket
 * without blocking? The kernel calls a Unix socket writable while at most a
 * quarter of its send buffer is in flight, which leaves room for the largest
 * reply; so a request is read only when this holds. */
static bool client_writable(const client *c) {
        struct pollfd p = { .fd = c->fd, .events = POLLOUT };
        return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

static void client_on_event(loop_io *io, uint32_t events) {
        client *c = container_of(io, client, io);
        /* The receive buffer is static: one thread, one message at a time. */
        static uint8_t buf[CTL_MSG_MAX];

        bool hup = events & (EPOLLHUP | EPOLLERR);
        if (c->paused && (hup || (events & EPOLLOUT))) {
                c->paused = false;
                loop_io_mod(c->d->loop, &c->io, EPOLLIN);
        }
        for (int i = 0; i < CLIENT_BURST && !c->dead && !c->paused; i++) {
                /* BACKPRESSURE: a client that does not read its replies is not
                 * read either, until its socket drains (EPOLLOUT); the daemon
                 * neither blocks nor buffers for it. A hang-up still shows. */
                if (!hup && !client_writable(c)) {
                        c->paused = true;
                        loop_io_mod(c->d->loop, &c->io, EPOLLOUT);
                        log_debug("client %llu: paused until it reads its replies",
                                  (unsigned long long)c->id);
                        break;
                }
                int fds[CTL_FDS_MAX];
                unsigned n_fds = 0;
                ssize_t n = ctl_recv(c->fd, buf, sizeof(buf), fds, &n_fds, MSG_DONTWAIT);
                if (n == -EAGAIN) {
                        if (hup)
                                c->dead = true; /* hang-up with nothing left to read */
                        break;
                }
                if (n <= 0) {
                        if (n < 0 && n != -ECONNRESET)
                                log_debug("client %llu: recv: %s", (unsigned long long)c->id,
                                          strerror((int)-n));
                        c->dead = true;
                        break;
                }
                /* Active: to the tail of the list (idle ones gather at its head). */
                c->last_ns = now_ns();
                dlist_del(&c->link);
                dlist_add_tail(&c->d->clients, &c->link);
                int r = dispatch_request(c, buf, (size_t)n, fds, n_fds);
                /* Close fds no handler took (a taken one was set to -1). */
                for (unsigned k = 0; k < n_fds; k++)
                        if (fds[k] >= 0)
                                close(fds[k]);
                if (r < 0) {
                        /* Debug level: a hostile client must not flood the log. */
                        log_debug("client %llu (pid %d %s): %s; dropping it",
                                  (unsigned long long)c->id, (int)c->cred.pid, c->prog,
                                  r == -EBADMSG ? "protocol violation" : strerror(-r));
                        c->dead = true;
                }
        }
        if (c->dead)
                client_free(c);
}

void client_free(client *c) {
        if (!c || c->dying)
                return;
        ipcfd *d = c->d;
        c->dying = true;
        c->dead = true;
        log_debug("client %llu (pid %d %s): gone", (unsigned long long)c->id, (int)c->cred.pid,
                  c->prog);
        loop_io_del(d->loop, &c->io);
        /* Every module lets go of what c held; the flows module, subscribed
         * first, ends its flow sides before anything else happens (this is
         * the latency-critical path: the peers learn of the death at once). */
        observe_emit(d, &(observe_ev){ .kind = OBSERVE_CLIENT_GONE, .client = c });
        close(c->fd);
        c->fd = -1;
        dlist_del(&c->link);
        d->n_clients--;
        quota_release(c->user, QUOTA_CLIENTS, 1);
        user_unref(c->user);
        loop_defer_free(d->loop, c);
}

void client_free_all(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &d->clients)
                client_free(dlist_entry(pos, client, link));
}

void client_dump_all(ipcfd *d) {
        dlist_for_each(pos, &d->clients) {
                client *c = dlist_entry(pos, client, link);
                char held[256];
                size_t n = 0;
                held[0] = 0;
                for (unsigned k = 0; k < d->n_holds && n < sizeof(held); k++) {
                        size_t count = 0;
                        dlist_for_each(p2, &c->held[k]) count++;
                        const char *label = d->hold_labels[k];
                        int len = (int)strlen(label) - (count == 1); /* "1 flow side" */
                        int w = snprintf(held + n, sizeof(held) - n, ", %zu %.*s", count, len, label);
                        n += w > 0 ? (size_t)w : 0;
                }
                log_info("state: client %llu pid %d uid %u %s%s%s", (unsigned long long)c->id,
                          (int)c->cred.pid, (unsigned)c->cred.uid, c->prog, held,
                          c->paused ? ", paused" : "");
        }
}
