/*
 * mcast.c — multicast groups, the library's side (include/ipcf.h,
 * docs/MODELS.md): a member's handle is a flow to the daemon with the member
 * role; what it sends goes to every other member; LOST frames (DROP groups)
 * are counted on the way to the next message (modelio.c).
 * Who may call: applications, any thread.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/modelwire.h"
#include "lib/core/lib.h"
#include "lib/models/models.h"

/* Zero fields are the daemon's defaults; it checks the limits. */
int ipcf_mcast_create(const char *name, const ipcf_mcast_opts *opts) {
        struct ctl_mcast_opts_wire w;
        memset(&w, 0, sizeof(w));
        if (!ctl_name_valid(name))
                return -EINVAL;
        if (opts) {
                if (opts->size && opts->size != sizeof(*opts))
                        return -EINVAL;
                w.slow = htole32(opts->slow);
                w.max_msgs = htole32(opts->max_msgs);
                w.max_msg_size = htole32(opts->max_msg_size);
        }
        return conn_tell(CTL_MCAST_CREATE, name, CTL_A_MCAST_OPTS, &w, sizeof(w));
}

int ipcf_mcast_destroy(const char *name) {
        return conn_tell(CTL_MCAST_DESTROY, name, 0, NULL, 0);
}

int ipcf_mcast_join(const char *name, const ipcf_qos *qos, int timeout_ms) {
        return model_open(name, CTL_ROLE_MCAST, qos, timeout_ms);
}

ssize_t ipcf_mcast_send(int h, const void *buf, size_t len, int timeout_ms) {
        return model_send(h, buf, len, 0, NULL, timeout_ms);
}

ssize_t ipcf_mcast_recv(int h, void *buf, size_t cap, int timeout_ms, ipcf_peer_info *ret_sender) {
        return model_recv(h, buf, cap, ret_sender, timeout_ms);
}

int64_t ipcf_mcast_lost(int h) { return model_lost(h); }
