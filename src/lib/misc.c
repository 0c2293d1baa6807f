/*
 * misc.c — qos defaults, error texts, and the facility's listing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/lib.h"

void ipcf_qos_init(ipcf_qos *qos) {
        if (!qos)
                return;
        memset(qos, 0, sizeof(*qos));
        qos->size = sizeof(*qos);
        qos->capacity = IPCF_CAPACITY_BOUNDED;
        qos->mode = IPCF_MODE_MESSAGE;
        qos->full = IPCF_FULL_BLOCK;
        qos->max_bytes = QOS_DEFAULT_RING;
        qos->max_msg_size = QOS_DEFAULT_MAX_MSG;
        qos->spin_us = QOS_DEFAULT_SPIN_US;
        qos->cache_msgs = 1;
}

const char *ipcf_strerror(int err) {
        switch (err < 0 ? -err : err) {
        case 0: return "success";
        case EAGAIN: return "would block";
        case ETIMEDOUT: return "timed out";
        case ENOENT: return "no such name";
        case EACCES: return "access denied by the facility's policy";
        case ECONNREFUSED: return "refused by the target";
        case EPIPE: return "flow ended by its peer";
        case ECONNRESET: return "peer died";
        case EPROTO: return "peer broke the flow protocol";
        case EMSGSIZE: return "message too large";
        case ENOBUFS: return "queue memory limit reached";
        case EHOSTDOWN: return "IPC facility (ipcfd) not running";
        case EBADF: return "not a valid handle";
        case EINVAL: return "invalid argument";
        case EBUSY: return "busy: every registrant's backlog is full";
        case EDQUOT: return "over quota";
        case ENOEXEC: return "could not start the target program";
        case ECANCELED: return "request withdrawn by its requester";
        case EADDRINUSE: return "name held exclusively";
        case EMFILE: return "out of file descriptors";
        case ENOMEM: return "out of memory";
        case ENAMETOOLONG: return "name too long";
        case EOPNOTSUPP: return "not supported for this flow";
        default: return strerror(err < 0 ? -err : err);
        }
}

static void name_from_wire(const struct ctl_name_entry_wire *w, ipcf_name_entry *e) {
        memset(e, 0, sizeof(*e));
        memcpy(e->name, w->name, IPCF_NAME_MAX);
        e->pid = (pid_t)le32toh(w->pid);
        e->uid = (uid_t)le32toh(w->uid);
        e->flows = le32toh(w->flows);
        e->pending = le32toh(w->pending);
}

static void flow_from_wire(const struct ctl_flow_entry_wire *w, ipcf_flow_entry *e) {
        memset(e, 0, sizeof(*e));
        e->id = le64toh(w->id);
        memcpy(e->name, w->name, IPCF_NAME_MAX);
        e->pid_a = (pid_t)le32toh(w->pid_a);
        e->pid_b = (pid_t)le32toh(w->pid_b);
        ctl_qos_from_wire(&w->qos, &e->qos);
        e->msgs_ab = le64toh(w->msgs_ab);
        e->bytes_ab = le64toh(w->bytes_ab);
        e->queued_ab = le64toh(w->queued_ab);
        e->msgs_ba = le64toh(w->msgs_ba);
        e->bytes_ba = le64toh(w->bytes_ba);
        e->queued_ba = le64toh(w->queued_ba);
        e->state = le32toh(w->state);
}

int ipcf_list(ipcf_listing **ret) {
        if (!ret)
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_LIST);
        if (!c)
                return -ENOMEM;
        int r = conn_call_run(c, NULL, 0);
        ipcf_listing *l = NULL;
        if (r < 0)
                goto out;
        r = -ENOMEM;
        l = calloc(1, sizeof(*l));
        if (!l)
                goto out;
        uint32_t pid = 0;
        (void)ctl_get_u32(&c->rep.msg, CTL_A_PID, &pid);
        (void)ctl_get_u64(&c->rep.msg, CTL_A_UPTIME_MS, &l->daemon_uptime_ms);
        l->daemon_pid = (pid_t)pid;
        size_t cur = 0, nn = 0, nf = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(&c->rep.msg, &cur, &t, &v, &len)) {
                nn += t == CTL_A_NAME_ENTRY && len == sizeof(struct ctl_name_entry_wire);
                nf += t == CTL_A_FLOW_ENTRY && len == sizeof(struct ctl_flow_entry_wire);
        }
        l->names = calloc(nn ? nn : 1, sizeof(*l->names));
        l->flows = calloc(nf ? nf : 1, sizeof(*l->flows));
        if (!l->names || !l->flows)
                goto out;
        cur = 0;
        while (ctl_attr_next(&c->rep.msg, &cur, &t, &v, &len)) {
                if (t == CTL_A_NAME_ENTRY && len == sizeof(struct ctl_name_entry_wire)) {
                        struct ctl_name_entry_wire w;
                        memcpy(&w, v, sizeof(w));
                        name_from_wire(&w, &l->names[l->n_names++]);
                } else if (t == CTL_A_FLOW_ENTRY && len == sizeof(struct ctl_flow_entry_wire)) {
                        struct ctl_flow_entry_wire w;
                        memcpy(&w, v, sizeof(w));
                        flow_from_wire(&w, &l->flows[l->n_flows++]);
                }
        }
        *ret = l;
        l = NULL;
        r = 0;
out:
        ipcf_listing_free(l);
        conn_call_free(c);
        return r;
}

void ipcf_listing_free(ipcf_listing *l) {
        if (!l)
                return;
        free(l->names);
        free(l->flows);
        free(l);
}
