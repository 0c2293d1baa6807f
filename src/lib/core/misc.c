/*
 * misc.c — qos defaults, error texts, and the facility's listing.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/core/lib.h"

void ipcf_qos_init(ipcf_qos *qos) {
        if (!qos)
                return;
        memset(qos, 0, sizeof(*qos));
        qos->size = sizeof(*qos);
        qos->capacity = IPCF_CAPACITY_BOUNDED;
        qos->mode = IPCF_MODE_MESSAGE;
        qos->full = IPCF_FULL_BLOCK;
        qos->max_bytes = 0; /* the default of whichever capacity is chosen */
        qos->max_msg_size = QOS_DEFAULT_MAX_MSG;
        qos->spin_us = QOS_DEFAULT_SPIN_US;
        qos->cache_msgs = 1;
}

int lib_qos_or_default(const ipcf_qos *qos, ipcf_qos *ret) {
        if (!qos) {
                ipcf_qos_init(ret);
                return 0;
        }
        if (qos->size != sizeof(*qos) || qos->reserved || qos->reserved2)
                return -EINVAL; /* not made by ipcf_qos_init (or another version's) */
        *ret = *qos;
        return 0;
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
        case EBUSY: return "busy: the target can take no more now (a full backlog, an exclusive receiver already there, or no free session)";
        case EDQUOT: return "over quota";
        case EUSERS: return "refused by quota: the facility has too many connections";
        case ECONNABORTED: return "connection to the facility reclaimed";
        case ENOEXEC: return "could not start the target program";
        case ECANCELED: return "request withdrawn by its requester";
        case EADDRINUSE: return "name held exclusively";
        case EMFILE: return "out of file descriptors";
        case ENOMEM: return "out of memory";
        case ENAMETOOLONG: return "name too long";
        case EOPNOTSUPP: return "not supported for this flow";
        case EIDRM: return "shared-memory group dissolved";
        case ERANGE: return "outside the group's memory";
        case ENOTRECOVERABLE: return "group lock unusable: its holder died and it was not repaired";
        /* one number, two errors: an RPC call's and an allocation's (ipcf.h) */
        case IPCF_EUNKNOWN: return "outcome unknown: the call may or may not have run (from an allocation: directory unreachable)";
        case EEXIST: return "name exists";
        case EHOSTUNREACH: return "host unreachable";
        case ENOPKG: return "the daemon program (ipcfd) was not found";
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
        e->drops = le32toh(w->drops);
}

/* Append the entries of one LIST reply to l (arrays grown as needed; the
 * flows' hosts in l->flow_hosts, as long as l->flows). */
static int list_absorb(ipcf_listing *l, const ctl_msg *m, size_t *cap_n, size_t *cap_f,
                       uint32_t *ret_entries) {
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        *ret_entries = 0;
        while (ctl_attr_next(m, &cur, &t, &v, &len)) {
                if (t == CTL_A_NAME_ENTRY && len == sizeof(struct ctl_name_entry_wire)) {
                        if (l->n_names == *cap_n) {
                                size_t n = *cap_n ? *cap_n * 2 : 64;
                                void *a = realloc(l->names, n * sizeof(*l->names));
                                if (!a)
                                        return -ENOMEM;
                                l->names = a;
                                *cap_n = n;
                        }
                        struct ctl_name_entry_wire w;
                        memcpy(&w, v, sizeof(w));
                        name_from_wire(&w, &l->names[l->n_names++]);
                        (*ret_entries)++;
                } else if (t == CTL_A_FLOW_ENTRY && len == sizeof(struct ctl_flow_entry_wire)) {
                        if (l->n_flows == *cap_f) {
                                size_t n = *cap_f ? *cap_f * 2 : 64;
                                void *a = realloc(l->flows, n * sizeof(*l->flows));
                                if (!a)
                                        return -ENOMEM;
                                l->flows = a;
                                a = realloc(l->flow_hosts, n * sizeof(*l->flow_hosts));
                                if (!a)
                                        return -ENOMEM;
                                l->flow_hosts = a;
                                *cap_f = n;
                        }
                        struct ctl_flow_entry_wire w;
                        memcpy(&w, v, sizeof(w));
                        l->flow_hosts[l->n_flows][0] = 0;
                        flow_from_wire(&w, &l->flows[l->n_flows++]);
                        (*ret_entries)++;
                } else if (t == CTL_A_FLOW_HOST && len == sizeof(struct ctl_flow_host_wire) && l->n_flows) {
                        /* follows the entry of its flow */
                        struct ctl_flow_host_wire w;
                        memcpy(&w, v, sizeof(w));
                        if (le64toh(w.flow_id) == l->flows[l->n_flows - 1].id) {
                                memcpy(l->flow_hosts[l->n_flows - 1], w.host, IPCF_HOST_MAX);
                                l->flow_hosts[l->n_flows - 1][IPCF_HOST_MAX] = 0;
                        }
                }
        }
        return 0;
}

/* One block: the listing, then its names, its flows and their hosts
 * (ipcf_free frees it all). Frees the growing arrays of l either way. */
static ipcf_listing *list_pack(ipcf_listing *l) {
        size_t names = l->n_names * sizeof(*l->names);
        size_t off = sizeof(*l) + names;
        off = (off + _Alignof(ipcf_flow_entry) - 1) / _Alignof(ipcf_flow_entry) *
              _Alignof(ipcf_flow_entry);
        size_t flows = l->n_flows * sizeof(*l->flows), hosts = l->n_flows * sizeof(*l->flow_hosts);
        ipcf_listing *b = malloc(off + flows + hosts);
        if (b) {
                *b = *l;
                b->names = (ipcf_name_entry *)(b + 1);
                b->flows = (ipcf_flow_entry *)((char *)b + off);
                b->flow_hosts = (char (*)[IPCF_HOST_MAX + 1])((char *)b + off + flows);
                if (names)
                        memcpy(b->names, l->names, names);
                if (l->n_flows) {
                        memcpy(b->flows, l->flows, flows);
                        memcpy(b->flow_hosts, l->flow_hosts, hosts);
                }
        }
        free(l->names);
        free(l->flows);
        free(l->flow_hosts);
        return b;
}

/* The state of ipcf_list's pages. */
typedef struct list_acc {
        ipcf_listing l;
        size_t cap_n, cap_f;
} list_acc;

static int list_page(void *ctx, const ctl_msg *m, uint32_t *ret_entries) {
        list_acc *a = ctx;
        uint32_t pid = 0;
        (void)ctl_get_u32(m, CTL_A_PID, &pid);
        (void)ctl_get_u64(m, CTL_A_UPTIME_MS, &a->l.daemon_uptime_ms);
        a->l.daemon_pid = (pid_t)pid;
        return list_absorb(&a->l, m, &a->cap_n, &a->cap_f, ret_entries);
}

int ipcf_list(ipcf_listing **ret) {
        if (!ret)
                return -EINVAL;
        list_acc acc = { 0 };
        /* Page by page: each reply is one control message. */
        int r = conn_pages(CTL_LIST, list_page, &acc);
        ipcf_listing l = acc.l;
        if (r < 0) {
                free(l.names);
                free(l.flows);
                free(l.flow_hosts);
                return r;
        }
        ipcf_listing *b = list_pack(&l);
        if (!b)
                return -ENOMEM;
        *ret = b;
        return 0;
}
