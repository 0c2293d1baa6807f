/*
 * flowmem.c — making a flow's memory and wake-up channels (see flowmem.h).
 *
 * Order: size, seal, then write the header; the memfd is sealed before any
 * descriptor of it leaves the maker, so no holder can ever make another's
 * mapping fault by truncating it.
 */
#include "common/flowmem.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"
#include "common/wake.h"

static void flow_mem_clear(flow_mem *m) {
        m->memfd = -1;
        for (int i = 0; i < FLOW_WAKES; i++)
                m->ear[i] = m->bell[i] = -1;
}

int flow_mem_make(const ipcf_qos *qos, const char *label, flow_mem *ret) {
        flow_mem m;
        int r;

        flow_mem_clear(&m);
        if ((r = flow_layout_for(qos, &m.layout)) < 0)
                return r;
        m.memfd = memfd_create(label, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (m.memfd < 0)
                goto fail_errno;
        if (ftruncate(m.memfd, (off_t)m.layout.total) < 0 ||
            fcntl(m.memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                goto fail_errno;
        void *hdr = mmap(NULL, FLOW_HDR_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, m.memfd, 0);
        if (hdr == MAP_FAILED)
                goto fail_errno;
        flow_region_init(hdr, &m.layout);
        munmap(hdr, FLOW_HDR_SIZE);
        for (int i = 0; i < FLOW_WAKES; i++)
                if ((r = wake_new(&m.ear[i], &m.bell[i])) < 0)
                        goto fail;
        *ret = m;
        return 0;

fail_errno:
        r = errno == EMFILE || errno == ENFILE ? -EMFILE : -errno;
fail:
        flow_mem_close(&m);
        return r;
}

void flow_mem_side_fds(const flow_mem *m, int side, int ret_fds[FLOW_SIDE_FDS]) {
        int rx = flow_wake_rx(side), tx = flow_wake_tx(side);
        int peer_rx = flow_wake_rx(1 - side), peer_tx = flow_wake_tx(1 - side);
        ret_fds[FLOW_FD_MEM] = m->memfd;
        ret_fds[FLOW_FD_RX_EAR] = m->ear[rx];
        ret_fds[FLOW_FD_TX_EAR] = m->ear[tx];
        ret_fds[FLOW_FD_PEER_RX_BELL] = m->bell[peer_rx];
        ret_fds[FLOW_FD_PEER_TX_BELL] = m->bell[peer_tx];
        ret_fds[FLOW_FD_RX_BELL] = m->bell[rx];
        ret_fds[FLOW_FD_TX_BELL] = m->bell[tx];
}

void flow_mem_drop_handout(flow_mem *m) {
        m->memfd = safe_close(m->memfd);
        for (int i = 0; i < FLOW_WAKES; i++)
                m->ear[i] = safe_close(m->ear[i]);
}

void flow_mem_close(flow_mem *m) {
        flow_mem_drop_handout(m);
        for (int i = 0; i < FLOW_WAKES; i++)
                m->bell[i] = safe_close(m->bell[i]);
}
