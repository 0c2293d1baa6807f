/*
 * flowpair.c — see flowpair.h.
 */
#include "support/flowpair.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/util.h"
#include "lib/lib.h"

static int pidfd_open_for_test(pid_t pid) {
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

static int make_side(const ipcf_qos *q, const flow_layout *l, int side, pid_t peer, int memfd,
                     const int efd[4], int *ret) {
        ctl_builder *b = malloc(sizeof(*b));
        struct ctl_qos_wire qw;
        struct ctl_peer_wire pw = { .pid = (uint32_t)peer, .uid = getuid(), .gid = getgid() };
        ctl_msg m;
        int fds[5], r;

        ctl_qos_to_wire(q, &qw);
        ctl_begin(b, CTL_FLOW, 0);
        ctl_put_u64(b, CTL_A_FLOW_ID, 1);
        ctl_put_u32(b, CTL_A_SIDE, (uint32_t)side);
        ctl_put(b, CTL_A_QOS, &qw, sizeof(qw));
        ctl_put_u64(b, CTL_A_SHM_SIZE, l->total);
        ctl_put(b, CTL_A_PEER, &pw, sizeof(pw));
        ctl_put_str(b, CTL_A_PEER_NAME, "flowpair");
        r = ctl_end(b);
        if (r >= 0)
                r = ctl_msg_parse(b->buf, (size_t)r, &m);
        if (r < 0) {
                free(b);
                return r;
        }
        fds[0] = fcntl(memfd, F_DUPFD_CLOEXEC, 0);
        for (int i = 0; i < 4; i++)
                /* side 0: rx0 tx0 rx1 tx1; side 1: rx1 tx1 rx0 tx0 */
                fds[1 + i] = fcntl(efd[side ? (i + 2) % 4 : i], F_DUPFD_CLOEXEC, 0);
        r = port_open_from_flow(&m, fds);
        free(b);
        if (r < 0) {
                for (int i = 0; i < 5; i++)
                        safe_close(fds[i]);
                return r;
        }
        *ret = r;
        return 0;
}

int flowpair_make(const ipcf_qos *qos, pid_t peer_of_0, pid_t peer_of_1, int *ret_port0,
                  int *ret_port1) {
        ipcf_qos q;
        flow_layout l;
        int efd[4] = { -1, -1, -1, -1 }, memfd, r;

        if (qos)
                q = *qos;
        else
                ipcf_qos_init(&q);
        if ((r = ctl_qos_normalize(&q)) < 0 || (r = flow_layout_for(&q, &l)) < 0)
                return r;
        memfd = memfd_create("ipcf-flowpair", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (memfd < 0)
                return -errno;
        if (ftruncate(memfd, (off_t)l.total) < 0 ||
            fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                r = -errno;
                goto out;
        }
        void *mem = mmap(NULL, FLOW_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
        if (mem == MAP_FAILED) {
                r = -errno;
                goto out;
        }
        flow_region_init(mem, &l);
        munmap(mem, FLOW_HDR_SIZE);
        for (int i = 0; i < 4; i++)
                if ((efd[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
                        r = -errno;
                        goto out;
                }
        r = make_side(&q, &l, 0, peer_of_0, memfd, efd, ret_port0);
        if (r == 0)
                r = make_side(&q, &l, 1, peer_of_1, memfd, efd, ret_port1);
out:
        for (int i = 0; i < 4; i++)
                safe_close(efd[i]);
        close(memfd);
        return r;
}

int flowpair_watch(int h, pid_t pid) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        safe_close(p->peer_pidfd);
        p->peer.pid = pid;
        p->peer_pidfd = pidfd_open_for_test(pid);
        int r = p->peer_pidfd >= 0 ? 0 : -errno;
        handle_put(p);
        return r;
}

void *flowpair_mem(int h, size_t *ret_size) {
        port *p = handle_get_port(h);
        if (!p)
                return NULL;
        void *mem = p->mem;
        *ret_size = p->layout.total;
        handle_put(p);
        return mem;
}
