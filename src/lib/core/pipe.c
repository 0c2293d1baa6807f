/*
 * pipe.c — ordinary pipes: both ends of a flow made in this process, without
 * the daemon, and ports carried across exec() by a descriptor.
 *
 * A pipe is laid out exactly as the daemon lays out a flow (sealed memfd,
 * region header, four eventfds), so the whole data path is shared with
 * allocated flows. What the daemon would add — noticing the death of a side —
 * comes from a liveness socketpair: each end holds one socket; when every
 * holder of an end is gone, the other end's socket hangs up, and the waits in
 * wait.c, which poll it in place of a peer pidfd, see the peer gone.
 *
 * Export: the port's description and its six descriptors travel over a fresh
 * socketpair; the exported descriptor is the receiving end, left inheritable
 * so that a program started with exec() can import it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

int flow_make_local(const ipcf_qos *qos, int efd[4]) {
        flow_layout l;
        int memfd, r;

        if ((r = flow_layout_for(qos, &l)) < 0)
                return r;
        for (int i = 0; i < 4; i++)
                efd[i] = -1;
        memfd = memfd_create("ipcf-pipe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (memfd < 0)
                return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        if (ftruncate(memfd, (off_t)l.total) < 0 ||
            fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                goto fail;
        void *hdr = mmap(NULL, FLOW_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (hdr == MAP_FAILED)
                goto fail;
        flow_region_init(hdr, &l);
        munmap(hdr, FLOW_HDR_SIZE);
        for (int i = 0; i < 4; i++)
                if ((efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
                        goto fail;
        return memfd;
fail:
        r = errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        for (int i = 0; i < 4; i++)
                efd[i] = safe_close(efd[i]);
        close(memfd);
        return r;
}

/* The FLOW message the daemon would send to side `side`. */
static int local_flow_msg(ctl_builder *b, const ipcf_qos *q, int side, pid_t peer) {
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw = { .pid = htole32((uint32_t)peer),
                                    .uid = htole32((uint32_t)getuid()),
                                    .gid = htole32((uint32_t)getgid()) };
        flow_layout l;
        int r = flow_layout_for(q, &l);
        if (r < 0)
                return r;
        ctl_qos_to_wire(q, &qw);
        ctl_begin(b, CTL_FLOW, 0);
        ctl_put_u64(b, CTL_A_FLOW_ID, 0);
        ctl_put_u32(b, CTL_A_SIDE, (uint32_t)side);
        ctl_put(b, CTL_A_QOS, &qw, sizeof(qw));
        ctl_put_u64(b, CTL_A_SHM_SIZE, l.total);
        ctl_put(b, CTL_A_PEER, &pw, sizeof(pw));
        ctl_put_str(b, CTL_A_PEER_NAME, "pipe");
        return ctl_end(b);
}

int port_open_local(const ipcf_qos *qos, int side, pid_t peer, int memfd, const int efd[4]) {
        ctl_builder *b = malloc(sizeof(*b));
        ctl_msg m;
        int fds[5], r;

        if (!b)
                return -ENOMEM;
        r = local_flow_msg(b, qos, side, peer);
        if (r >= 0)
                r = ctl_msg_parse(b->buf, (size_t)r, &m);
        if (r < 0) {
                free(b);
                return r;
        }
        fds[0] = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
        for (int i = 0; i < 4; i++) /* side 0: rx0 tx0 rx1 tx1; side 1: rx1 tx1 rx0 tx0 */
                fds[1 + i] = fcntl(efd[side ? (i + 2) % 4 : i], F_DUPFD_CLOEXEC, 0);
        r = port_open_from_flow(&m, fds);
        for (int i = 0; i < 5; i++)
                safe_close(fds[i]); /* -1 where taken */
        free(b);
        return r;
}

/* Give port h its liveness socket and a copy of the memory's descriptor. */
static int pipe_end_setup(int h, int life, int memfd) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        safe_close(p->peer_pidfd);
        p->peer_pidfd = life;
        p->memfd = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
        p->peer.pid = getpid();
        int r = p->memfd < 0 ? -EMFILE : 0;
        handle_put(p);
        return r;
}

int ipcf_pipe(const ipcf_qos *qos, int ret_ports[2]) {
        ipcf_qos q;
        int efd[4], life[2] = { -1, -1 }, h[2] = { -1, -1 }, r;

        if (!ret_ports)
                return -EINVAL;
        if (qos)
                q = *qos;
        else
                ipcf_qos_init(&q);
        if (ctl_qos_normalize(&q) < 0)
                return -EINVAL;
        int memfd = flow_make_local(&q, efd);
        if (memfd < 0)
                return memfd;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, life) < 0) {
                r = -EMFILE;
                goto out;
        }
        for (int side = 0; side < 2; side++) {
                if ((r = h[side] = port_open_local(&q, side, 0, memfd, efd)) < 0)
                        goto out;
                if ((r = pipe_end_setup(h[side], life[side], memfd)) < 0)
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
                        ipcf_port_release(h[i]);
        }
        for (int i = 0; i < 4; i++)
                safe_close(efd[i]);
        close(memfd);
        return r;
}

int ipcf_port_release(int h) {
        port *p = handle_close(h, HANDLE_PORT);
        if (!p)
                return -EBADF;
        handle_put(p); /* the last put unmaps it; the flow itself goes on */
        return 0;
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
        if ((r = local_flow_msg(b, &p->qos, p->side, 0)) < 0)
                goto out;
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0) {
                r = -EMFILE;
                goto out;
        }
        int fds[6] = { p->memfd, p->efd_rx, p->efd_tx, p->peer_efd_rx, p->peer_efd_tx,
                       p->peer_pidfd };
        if ((r = ctl_send(sp[0], b, fds, 6)) < 0)
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
        else if (r < 0 || rep->n_fds != 6 || rep->msg.type != CTL_FLOW)
                r = -EPROTO;
        else {
                int memfd = fcntl(rep->fds[0], F_DUPFD_CLOEXEC, 0);
                int life = rep->fds[5];
                r = port_open_from_flow(&rep->msg, rep->fds); /* takes fds[0..4] */
                if (r >= 0) {
                        port *p = handle_get_port(r);
                        safe_close(p->peer_pidfd);
                        p->peer_pidfd = life;
                        p->memfd = memfd;
                        p->peer.pid = getppid();
                        handle_put(p);
                        rep->fds[5] = -1;
                } else {
                        safe_close(memfd);
                }
        }
        conn_reply_done(rep);
        free(rep);
        close(fd);
        return r;
}
