/*
 * hosts.c — ipcf_hosts(): this host's name and key, and its associations
 * with the enrolled hosts, as the daemon reports them (HOSTS).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "lib/core/lib.h"

static void host_from_wire(const struct ctl_host_entry_wire *w, ipcf_host_entry *e) {
        memset(e, 0, sizeof(*e));
        memcpy(e->name, w->name, IPCF_HOST_MAX);
        memcpy(e->addr, w->addr, sizeof(e->addr) - 1);
        e->state = le32toh(w->state);
        e->flows = le32toh(w->flows);
        e->rtt_ns = le64toh(w->rtt_ns);
        e->rttvar_ns = le64toh(w->rttvar_ns);
        e->cwnd = le64toh(w->cwnd);
        e->inflight = le64toh(w->inflight);
        e->dgrams_in = le64toh(w->dgrams_in);
        e->dgrams_out = le64toh(w->dgrams_out);
        e->bytes_in = le64toh(w->bytes_in);
        e->bytes_out = le64toh(w->bytes_out);
        e->lost = le64toh(w->lost);
        e->retransmitted = le64toh(w->retransmitted);
        e->ups = le64toh(w->ups);
        e->downs = le64toh(w->downs);
}

/* A string of the daemon's, cut at its field and at the first byte that
 * is not printable. */
static void text_from_wire(char *out, size_t size, const char *w, size_t wsize) {
        size_t n = 0;
        while (n + 1 < size && n < wsize && w[n] >= ' ' && w[n] <= '~') {
                out[n] = w[n];
                n++;
        }
        out[n] = 0;
}

static void dir_from_wire(const struct ctl_dir_health_wire *w, ipcf_dir_health *h) {
        memset(h, 0, sizeof(*h));
        text_from_wire(h->endpoint, sizeof(h->endpoint), w->endpoint, sizeof(w->endpoint));
        text_from_wire(h->last_error, sizeof(h->last_error), w->last_error, sizeof(w->last_error));
        uint32_t f = le32toh(w->flags);
        h->reachable = !!(f & CTL_DIR_REACHABLE);
        h->synced = !!(f & CTL_DIR_SYNCED);
        h->live = !!(f & CTL_DIR_LIVE);
        h->complete = !!(f & CTL_DIR_COMPLETE);
        h->revision = (int64_t)le64toh((uint64_t)w->revision);
        h->lease = (int64_t)le64toh((uint64_t)w->lease);
        h->names = le64toh(w->names);
        h->records = le64toh(w->records);
        h->bytes = le64toh(w->bytes);
        h->published = le64toh(w->published);
        h->unconfirmed = le64toh(w->unconfirmed);
        h->failovers = le64toh(w->failovers);
        h->leases_granted = le64toh(w->leases_granted);
        h->rejected = le64toh(w->rejected);
        h->resyncs = le64toh(w->resyncs);
        h->watch_restarts = le64toh(w->watch_restarts);
        h->unusable = le64toh(w->unusable);
}

int ipcf_hosts(ipcf_host_listing **ret) {
        if (!ret)
                return -EINVAL;
        conn_call *c = conn_call_new(CTL_HOSTS);
        if (!c)
                return -ENOMEM;
        int r = conn_call_run(c, NULL, 0);
        if (r < 0) {
                conn_call_free(c);
                return r;
        }
        /* count, then one block: the listing and its array */
        size_t cur = 0, n = 0;
        uint16_t t, len;
        const void *v;
        while (ctl_attr_next(&c->rep.msg, &cur, &t, &v, &len))
                n += t == CTL_A_HOST_ENTRY && len == sizeof(struct ctl_host_entry_wire);
        /* one block: the listing, its hosts, the directory's health */
        ipcf_host_listing *l = calloc(1, sizeof(*l) + n * sizeof(ipcf_host_entry) + sizeof(ipcf_dir_health));
        if (!l) {
                conn_call_free(c);
                return -ENOMEM;
        }
        l->hosts = (ipcf_host_entry *)(l + 1);
        const char *s;
        if (ctl_get_str(&c->rep.msg, CTL_A_HOST_SELF, IPCF_HOST_MAX, &s) == 0)
                str_copy(l->self, s, sizeof(l->self));
        if (ctl_get_str(&c->rep.msg, CTL_A_HOST_KEY, sizeof(l->key) - 1, &s) == 0)
                str_copy(l->key, s, sizeof(l->key));
        cur = 0;
        while (ctl_attr_next(&c->rep.msg, &cur, &t, &v, &len)) {
                if (t != CTL_A_HOST_ENTRY || len != sizeof(struct ctl_host_entry_wire))
                        continue;
                struct ctl_host_entry_wire w;
                memcpy(&w, v, sizeof(w));
                host_from_wire(&w, &l->hosts[l->n++]);
        }
        struct ctl_dir_health_wire dw;
        if (ctl_get_fixed(&c->rep.msg, CTL_A_DIR_HEALTH, &dw, sizeof(dw)) == 0) {
                l->directory = (ipcf_dir_health *)(l->hosts + n);
                dir_from_wire(&dw, l->directory);
        }
        conn_call_free(c);
        *ret = l;
        return 0;
}
