/*
 * port.c — one end of a flow: made from the daemon's FLOW message, queried,
 * and ended.
 *
 * Rules: sizes come from the qos the daemon granted, never from the shared
 * memory; the memfd must be at least that big (it is sealed against
 * shrinking, so the mapping can never turn into SIGBUS under us). The flow
 * ends for this side at ipcf_dealloc() (port_end, through the port kind's
 * ops); the memory is unmapped when the last call using the port returns.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"
#include "common/wakeword.h"
#include "lib/core/lib.h"

int port_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
        if (pid <= 0)
                return -1;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd >= 0)
                fcntl(fd, F_SETFD, FD_CLOEXEC);
        return fd;
#else
        return -1;
#endif
}

/* Fill p (zeroed) from d; takes d's fds on success. */
static int port_init(port *p, port_desc *d) {
        struct stat st;
        int r = -EPROTO;

        if (d->side < 0 || d->side > 1)
                return -EPROTO;
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                if (d->fds[i] < 0)
                        return -EPROTO;
        p->qos = d->qos;
        if (ctl_qos_normalize(&p->qos) < 0 || flow_layout_for(&p->qos, &p->layout) < 0 ||
            p->layout.total != d->shm_size || fstat(d->fds[FLOW_FD_MEM], &st) < 0 ||
            (uint64_t)st.st_size < p->layout.total)
                return -EPROTO;

        int mflags = MAP_SHARED | (p->qos.capacity == IPCF_CAPACITY_UNBOUNDED ? MAP_NORESERVE : 0);
        p->mem = mmap(NULL, p->layout.total, PROT_READ | PROT_WRITE, mflags, d->fds[FLOW_FD_MEM], 0);
        if (p->mem == MAP_FAILED) {
                r = -errno;
                p->mem = NULL;
                return r;
        }
        p->hdr = flow_hdr_of(p->mem);
        if (p->hdr->magic != FLOW_MAGIC || p->hdr->version != FLOW_VERSION) {
                munmap(p->mem, p->layout.total);
                p->mem = NULL;
                return -EPROTO;
        }
        int side = d->side;
        p->flow_id = d->flow_id;
        p->side = side;
        p->my_end = &p->hdr->end[side];
        p->peer_end = &p->hdr->end[1 - side];
        p->my_run = &p->hdr->run[side];
        p->peer_run = &p->hdr->run[1 - side];
        ring_prod_init(&p->prod, flow_ctl_of(p->mem, side), flow_data_of(p->mem, &p->layout, side),
                       p->layout.ring_size, &p->qos);
        ring_cons_init(&p->cons, flow_ctl_of(p->mem, 1 - side),
                       flow_data_of(p->mem, &p->layout, 1 - side), p->layout.ring_size, &p->qos);
        if (flow_qos_caches(&p->qos)) {
                p->cache_recent = calloc(p->qos.cache_msgs, sizeof(*p->cache_recent));
                if (!p->cache_recent) {
                        munmap(p->mem, p->layout.total);
                        p->mem = NULL;
                        return -ENOMEM;
                }
                ring_prod_cache(&p->prod, p->cache_recent, p->qos.cache_msgs);
        }
        close(d->fds[FLOW_FD_MEM]);
        p->memfd = -1;
        p->ear_rx = d->fds[FLOW_FD_RX_EAR];
        p->ear_tx = d->fds[FLOW_FD_TX_EAR];
        p->bell_rx = d->fds[FLOW_FD_RX_BELL];
        p->bell_tx = d->fds[FLOW_FD_TX_BELL];
        p->peer_bell_rx = d->fds[FLOW_FD_PEER_RX_BELL];
        p->peer_bell_tx = d->fds[FLOW_FD_PEER_TX_BELL];
        for (int i = 0; i < FLOW_SIDE_FDS; i++)
                d->fds[i] = -1;
        p->peer = d->peer;
        str_copy(p->peer_host, d->peer_host, sizeof(p->peer_host));
        p->peer_remote = d->watch_pid > 0;
        /* The peer's process, or (a peer on another host) the daemon that
         * relays for it: its death ends the flow from that side. */
        p->peer_pidfd = port_pidfd_open(d->watch_pid > 0 ? d->watch_pid : p->peer.pid);
        /* That daemon holds the other end and rings nobody when it dies:
         * ipcf_fd watches its pidfd too (as for a model's broker) */
        p->fd_with_peer = d->watch_pid > 0;
        p->ep_rx = p->ep_tx = -1;
        p->rx_unset = p->tx_unset = true;
        return 0;
}

int port_open(port_desc *d) {
        int h;
        port *p = handle_alloc(&port_kind, sizeof(*p), &h);
        if (!p)
                return -EMFILE;
        int r = port_init(p, d);
        if (r < 0) {
                handle_abort(p);
                return r;
        }
        handle_publish(p);
        return h;
}

int port_open_from_flow(const ctl_msg *m, int fds[FLOW_SIDE_FDS]) {
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw;
        uint32_t side;
        const char *peer_name, *peer_host;
        port_desc d = { .side = -1 };

        if (ctl_get_u64(m, CTL_A_FLOW_ID, &d.flow_id) < 0 ||
            ctl_get_u32(m, CTL_A_SIDE, &side) < 0 || side > 1 ||
            ctl_get_fixed(m, CTL_A_QOS, &qw, sizeof(qw)) < 0 ||
            ctl_get_u64(m, CTL_A_SHM_SIZE, &d.shm_size) < 0 ||
            ctl_get_fixed(m, CTL_A_PEER, &pw, sizeof(pw)) < 0 ||
            ctl_get_str(m, CTL_A_PEER_NAME, IPCF_NAME_MAX, &peer_name) < 0)
                return -EPROTO;
        d.side = (int)side;
        ctl_qos_from_wire(&qw, &d.qos);
        str_copy(d.peer.name, peer_name, sizeof(d.peer.name));
        d.peer.pid = (pid_t)le32toh(pw.pid);
        d.peer.uid = (uid_t)le32toh(pw.uid);
        d.peer.gid = (gid_t)le32toh(pw.gid);
        d.watch_pid = (pid_t)le32toh(pw.watch_pid);
        int r = ctl_get_str(m, CTL_A_PEER_HOST, IPCF_HOST_MAX, &peer_host);
        if (r == 0)
                str_copy(d.peer_host, peer_host, sizeof(d.peer_host));
        else if (r != -ENOENT)
                return -EPROTO;
        memcpy(d.fds, fds, sizeof(d.fds));
        r = port_open(&d);
        if (r >= 0)
                memcpy(fds, d.fds, sizeof(d.fds)); /* all -1: taken */
        return r;
}

static void port_destroy(void *obj) {
        port *p = obj;
        munmap(p->mem, p->layout.total);
        safe_close(p->ear_rx);
        safe_close(p->ear_tx);
        safe_close(p->bell_rx);
        safe_close(p->bell_tx);
        safe_close(p->peer_bell_rx);
        safe_close(p->peer_bell_tx);
        safe_close(p->peer_pidfd);
        safe_close(p->memfd);
        safe_close(p->ep_rx);
        safe_close(p->ep_tx);
        free(p->cache_recent);
        free(p->extra);
}

uint32_t port_peer_end_latch(port *p, uint32_t code) {
        if (code != IPCF_END_DEALLOC && code != IPCF_END_PEER_DIED && code != IPCF_END_PROTOCOL) {
                atomic_store(&p->broken, true);
                code = IPCF_END_PROTOCOL;
        }
        uint32_t none = 0;
        if (!atomic_compare_exchange_strong(&p->peer_code, &none, code))
                code = none; /* another thread latched it first */
        return code;
}

int ipcf_end_reason(int h, ipcf_reason *ret) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (!ret) {
                handle_put(p);
                return -EINVAL;
        }
        memset(ret, 0, sizeof(*ret));
        uint32_t code = port_peer_end_code(p);
        if (atomic_load(&p->broken)) {
                ret->code = IPCF_END_PROTOCOL;
                str_copy(ret->text, "peer broke the flow protocol", sizeof(ret->text));
        } else if (code != IPCF_END_NONE) {
                ret->code = (int)code;
                /* Copy what the peer wrote, then make sure it is a string. */
                memcpy(ret->text, p->peer_end->reason, sizeof(ret->text));
                ret->text[IPCF_REASON_MAX] = 0;
                str_printable(ret->text); /* the peer's bytes in shared memory */
                if (code == IPCF_END_PEER_DIED && !ret->text[0])
                        str_copy(ret->text, "peer died", sizeof(ret->text));
        } else if (atomic_load(&p->peer_gone)) {
                ret->code = IPCF_END_PEER_DIED;
                str_copy(ret->text, "peer died", sizeof(ret->text));
        }
        handle_put(p);
        return 0;
}

/* Copy size bytes at offset of port h's struct (a field fixed at creation). */
static int port_copy_field(int h, size_t offset, void *ret, size_t size) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (ret)
                memcpy(ret, (const char *)p + offset, size);
        handle_put(p);
        return ret ? 0 : -EINVAL;
}

int ipcf_peer(int h, ipcf_peer_info *ret) {
        return port_copy_field(h, offsetof(port, peer), ret, sizeof(*ret));
}

int ipcf_qos_get(int h, ipcf_qos *ret) {
        return port_copy_field(h, offsetof(port, qos), ret, sizeof(*ret));
}

int ipcf_stats(int h, ipcf_port_stats *ret) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        if (!ret) {
                handle_put(p);
                return -EINVAL;
        }
        memset(ret, 0, sizeof(*ret));
        ret->msgs_out = atomic_load(&p->prod.ctl->msgs_w);
        ret->bytes_out = atomic_load(&p->prod.ctl->bytes_w);
        ret->msgs_in = atomic_load(&p->cons.ctl->msgs_r);
        ret->bytes_in = atomic_load(&p->cons.ctl->bytes_r);
        ret->queued_out = ring_queued(p->prod.ctl, p->layout.ring_size);
        ret->queued_in = ring_queued(p->cons.ctl, p->layout.ring_size);
        plock_lock(&p->wlock);
        ret->cached = ring_cached(&p->prod);
        plock_unlock(&p->wlock);
        handle_put(p);
        return 0;
}

/* The descriptor to poll for ear (under the lock of its direction): the ear
 * itself, or, for a port whose peer rings nobody when it dies
 * (fd_with_peer), an epoll set of the ear and the peer's pidfd, made once
 * into *ep, so that the peer's death makes it readable too. -errno if that
 * set cannot be made. */
static int port_poll_fd(port *p, int ear, int *ep) {
        if (!p->fd_with_peer || p->peer_pidfd < 0)
                return ear;
        if (*ep >= 0)
                return *ep;
        int fd = epoll_create1(EPOLL_CLOEXEC);
        struct epoll_event ev = { .events = EPOLLIN };
        if (fd < 0)
                return errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
        if (epoll_ctl(fd, EPOLL_CTL_ADD, ear, &ev) < 0 ||
            epoll_ctl(fd, EPOLL_CTL_ADD, p->peer_pidfd, &ev) < 0) {
                int e = -errno;
                close(fd);
                return e;
        }
        return *ep = fd;
}

/* ipcf_fd of a port: its rx ear (see port_poll_fd), kept exact from now on
 * (poll mode). */
static int port_fd(void *obj) {
        port *p = obj;
        plock_lock(&p->rlock);
        if (atomic_load(&p->set)) {
                /* its readiness is the set's (ipcf_set_add) */
                plock_unlock(&p->rlock);
                return -EBUSY;
        }
        if (!p->poll_rx) {
                p->poll_rx = true;
                port_rearm_rx(p);
        }
        int fd = port_poll_fd(p, p->ear_rx, &p->ep_rx);
        plock_unlock(&p->rlock);
        return fd;
}

int ipcf_fd_send(int h) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        plock_lock(&p->wlock);
        if (!p->poll_tx) {
                p->poll_tx = true;
                port_rearm_tx(p);
        }
        int fd = port_poll_fd(p, p->ear_tx, &p->ep_tx);
        plock_unlock(&p->wlock);
        handle_put(p);
        return fd;
}

/* Tell the daemon (bookkeeping only; the peer learns from shared memory),
 * waiting for its answer until deadline. A daemon that does not answer in
 * time (stopped, busy) still learns: when the port's descriptors close, it
 * sees the side's ears hang up and ends it ("let go", clientend.c). */
static void dealloc_tell_daemon(uint64_t flow_id, int side, const char *reason, uint64_t deadline) {
        if (flow_id == 0)
                return; /* a pipe: the daemon never knew it */
        conn_call *c = conn_call_new(CTL_DEALLOC);
        if (!c)
                return;
        ctl_put_u64(&c->req, CTL_A_FLOW_ID, flow_id);
        ctl_put_u32(&c->req, CTL_A_SIDE, (uint32_t)side);
        ctl_put_str(&c->req, CTL_A_REASON, reason);
        (void)conn_call_run_until(c, NULL, 0, deadline);
        conn_call_free(c);
}

/* ipcf_dealloc of a port: Deallocate(port-id, reason) — deliver the cache,
 * write our end record, ring the peer, tell the daemon. */
static void port_end_by(port *p, const char *reason, uint64_t deadline) {
        char text[IPCF_REASON_MAX + 1];

        str_copy(text, reason ? reason : "", sizeof(text));

        plock_lock(&p->wlock);
        atomic_store(&p->closed, true);
        /* The reason first, then the code that makes it valid (release). */
        if (atomic_load(&p->my_end->code) == IPCF_END_NONE) {
                memset(p->my_end->reason, 0, sizeof(p->my_end->reason));
                memcpy(p->my_end->reason, text, strlen(text));
                atomic_store_explicit(&p->my_end->code, IPCF_END_DEALLOC, memory_order_release);
        }
        plock_unlock(&p->wlock);

        /* Ring both of the peer's ears (its reader and its writer wake), and
         * our own, for threads of ours still waiting on this port. */
        wake_ring(p->peer_bell_rx);
        wake_ring(p->peer_bell_tx);
        wake_ring(p->bell_rx);
        wake_ring(p->bell_tx);
        /* ... and whoever sleeps on a futex (common/wakeword.h). */
        wakeword_end(&p->prod.ctl->rx_sleep);
        wakeword_end(&p->cons.ctl->tx_sleep);
        wakeword_end(&p->cons.ctl->rx_sleep);
        wakeword_end(&p->prod.ctl->tx_sleep);
        dealloc_tell_daemon(p->flow_id, p->side, text, deadline);
        /* the caller's put unmaps it once no other call uses it */
}

static void port_end(void *obj, const char *reason) {
        port_end_by(obj, reason, UINT64_MAX);
}

/* End p, just closed (NULL: it was not a live port), and put it. */
static int port_dealloc_closed(port *p, const char *reason, uint64_t deadline) {
        if (!p)
                return -EBADF;
        port_end_by(p, reason, deadline);
        handle_put(p);
        return 0;
}

int port_dealloc_by(int h, const char *reason, uint64_t deadline) {
        return port_dealloc_closed(handle_close(h, &port_kind), reason, deadline);
}

int port_dealloc_token_by(uint64_t token, const char *reason, uint64_t deadline) {
        return port_dealloc_closed(handle_close_token(token, &port_kind), reason, deadline);
}

const handle_kind port_kind = {
        .name = "port",
        .end = port_end,
        .fd = port_fd,
        .destroy = port_destroy,
};
