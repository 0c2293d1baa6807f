/*
 * pipe.c — ordinary pipes: both ends of a flow made in this process, without
 * the daemon, and ports carried across exec() by a descriptor.
 *
 * A pipe is made by the same maker as the daemon's flows (common/flowmem.c:
 * sealed memfd, region header, four wake-up channels), so the whole data path
 * is shared with allocated flows. What the daemon would add — noticing the death of a side —
 * comes from a liveness socketpair: each end holds one socket; when every
 * holder of an end is gone, the other end's socket hangs up, and the waits in
 * wait.c, which poll it in place of a peer pidfd, see the peer gone.
 *
 * Export: the port's description (as a FLOW message) and its eight
 * descriptors (the flow's seven, then the liveness socket) travel over a
 * fresh socketpair; the exported descriptor is the receiving end, left
 * inheritable so that a program started with exec() can import it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* An exported end: the flow's descriptors, then its liveness socket. */
#define PIPE_FD_LIFE FLOW_SIDE_FDS
#define PIPE_EXPORT_FDS (FLOW_SIDE_FDS + 1)
_Static_assert(PIPE_EXPORT_FDS <= CTL_FDS_MAX, "an exported pipe end fits one message");

int port_open_local(const ipcf_qos *qos, int side, pid_t peer, const flow_mem *m) {
        port_desc d = { .flow_id = 0, .side = side, .qos = *qos, .shm_size = m->layout.total,
                        .peer = { .pid = peer, .uid = getuid(), .gid = getgid() } };
        int fds[FLOW_SIDE_FDS], r = 0;

        str_copy(d.peer.name, "pipe", sizeof(d.peer.name));
        flow_mem_side_fds(m, side, fds);
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                if ((d.fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0)) < 0)
                        r = -EMFILE;
        if (r == 0)
                r = port_open(&d);
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                safe_close(d.fds[i]); /* -1 where taken */
        return r;
}

/* Give port h its liveness socket and a copy of the memory's descriptor. */
static int pipe_end_setup(int h, int life, int memfd) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        safe_close(p->peer_pidfd);
        p->peer_pidfd = life;
        /* No daemon rings this end when the other's holders are gone: its
         * liveness socket goes into what ipcf_fd and a set watch. */
        p->fd_with_peer = true;
        p->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
        p->peer.pid = getpid();
        int r = p->memfd < 0 ? -EMFILE : 0;
        handle_put(p);
        return r;
}

int ipcf_pipe(const ipcf_qos *qos, int ret_ports[2]) {
        ipcf_qos q;
        flow_mem m;
        int life[2] = { -1, -1 }, h[2] = { -1, -1 }, r;

        if (!ret_ports)
                return -EINVAL;
        if (lib_qos_or_default(qos, &q) < 0 || ctl_qos_normalize(&q) < 0)
                return -EINVAL;
        if ((r = flow_mem_make(&q, "ipcf-pipe", &m)) < 0)
                return r;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, life) < 0) {
                r = -EMFILE;
                goto out;
        }
        for (int side = 0; side < 2; side++) {
                if ((r = h[side] = port_open_local(&q, side, 0, &m)) < 0)
                        goto out;
                if ((r = pipe_end_setup(h[side], life[side], m.memfd)) < 0)
                        goto out;
                life[side] = -1;
        }
        ret_ports[0] = h[0];
        ret_ports[1] = h[1];
        h[0] = h[1] = -1;
        r = 0;
out:
        for (int i = 0; i < 2; i++) {
                safe_close(life[i]);
                if (h[i] >= 0)
                        ipcf_detach(h[i]);
        }
        flow_mem_close(&m);
        return r;
}

/* The FLOW message describing pipe end p (peer 0: the importer fills it in). */
static int pipe_flow_msg(ctl_builder *b, const port *p) {
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw = { .pid = 0, .uid = htole32((uint32_t)p->peer.uid),
                                    .gid = htole32((uint32_t)p->peer.gid) };
        ctl_qos_to_wire(&p->qos, &qw);
        ctl_begin(b, CTL_FLOW, 0);
        ctl_put_u64(b, CTL_A_FLOW_ID, 0);
        ctl_put_u32(b, CTL_A_SIDE, (uint32_t)p->side);
        ctl_put(b, CTL_A_QOS, &qw, sizeof(qw));
        ctl_put_u64(b, CTL_A_SHM_SIZE, p->layout.total);
        ctl_put(b, CTL_A_PEER, &pw, sizeof(pw));
        ctl_put_str(b, CTL_A_PEER_NAME, p->peer.name);
        return ctl_end(b);
}

int ipcf_port_export(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        int sp[2] = { -1, -1 }, r;
        ctl_builder *b = NULL;
        if (p->memfd < 0) {
                r = -EOPNOTSUPP;
                goto out;
        }
        if (!(b = malloc(sizeof(*b)))) {
                r = -ENOMEM;
                goto out;
        }
        /* The description as a FLOW message, peer as the creator left it. */
        if ((r = pipe_flow_msg(b, p)) < 0)
                goto out;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = -EMFILE;
                goto out;
        }
        int fds[PIPE_EXPORT_FDS];
        fds[FLOW_FD_MEM] = p->memfd;
        fds[FLOW_FD_RX_EAR] = p->ear_rx;
        fds[FLOW_FD_TX_EAR] = p->ear_tx;
        fds[FLOW_FD_PEER_RX_BELL] = p->peer_bell_rx;
        fds[FLOW_FD_PEER_TX_BELL] = p->peer_bell_tx;
        fds[FLOW_FD_RX_BELL] = p->bell_rx;
        fds[FLOW_FD_TX_BELL] = p->bell_tx;
        fds[PIPE_FD_LIFE] = p->peer_pidfd;
        if ((r = ctl_send(sp[0], b, fds, PIPE_EXPORT_FDS)) < 0)
                goto out;
        /* Inheritable across exec: the point of exporting. */
        if (fcntl(sp[1], F_SETFD, 0) < 0) {
                r = -errno;
                goto out;
        }
        r = sp[1];
        sp[1] = -1;
out:
        safe_close(sp[0]);
        safe_close(sp[1]);
        free(b);
        handle_put(p);
        return r;
}

int ipcf_port_import(int fd) {
        conn_reply *rep = malloc(sizeof(*rep));
        if (!rep) {
                close(fd);
                return -ENOMEM;
        }
        rep->n_fds = 0;
        int r = conn_recv_own(fd, rep);
        if (r == -ENOTSOCK || r == -EBADF)
                r = -EBADF;
        else if (r < 0 || rep->n_fds != PIPE_EXPORT_FDS || rep->msg.type != CTL_FLOW)
                r = -EPROTO;
        else {
                int memfd = fcntl(rep->fds[FLOW_FD_MEM], F_DUPFD_CLOEXEC, 0);
                int life = rep->fds[PIPE_FD_LIFE];
                r = port_open_from_flow(&rep->msg, rep->fds); /* takes the flow's fds */
                if (r >= 0) {
                        port *p = handle_get_port(r);
                        safe_close(p->peer_pidfd);
                        p->peer_pidfd = life;
                        p->fd_with_peer = true; /* (as pipe_end_setup) */
                        p->memfd = memfd;
                        p->peer.pid = getppid();
                        handle_put(p);
                        rep->fds[PIPE_FD_LIFE] = -1;
                } else {
                        safe_close(memfd);
                }
        }
        conn_reply_done(rep);
        free(rep);
        close(fd);
        return r;
}
