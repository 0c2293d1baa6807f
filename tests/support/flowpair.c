/*
 * flowpair.c — see flowpair.h. The flow is made by the one flow maker
 * (common/flowmem.c, as the daemon and ipcf_pipe make theirs) and its ports
 * opened by the library's port_open_local(), with the peers' pids of choice.
 */
#include "support/flowpair.h"

#include <errno.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/util.h"
#include "lib/core/lib.h"

int flowpair_make(const ipcf_qos *qos, pid_t peer_of_0, pid_t peer_of_1, int *ret_port0,
                  int *ret_port1) {
        ipcf_qos q;
        flow_mem m;
        int r;

        if (qos)
                q = *qos;
        else
                ipcf_qos_init(&q);
        if ((r = ctl_qos_normalize(&q)) < 0)
                return r;
        if ((r = flow_mem_make(&q, "ipcf-test", &m)) < 0)
                return r;
        r = *ret_port0 = port_open_local(&q, 0, peer_of_0, &m);
        if (r >= 0)
                r = *ret_port1 = port_open_local(&q, 1, peer_of_1, &m);
        flow_mem_close(&m);
        return r < 0 ? r : 0;
}

int flowpair_watch(int h, pid_t pid) {
        port *p = handle_get_port(h);
        if (!p)
                return -EBADF;
        safe_close(p->peer_pidfd);
        p->peer.pid = pid;
        p->peer_pidfd = port_pidfd_open(pid);
        int r = p->peer_pidfd >= 0 ? 0 : -ESRCH;
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
