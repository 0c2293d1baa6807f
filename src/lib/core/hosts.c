/*
 * hosts.c — ipcf_hosts(): this host's name and key, and its associations
 * with the enrolled hosts, as the daemon reports them (HOSTS); and
 * ipcf_dir_list(): the directory's records (DIR_LIST, paged, at most
 * IPCF_DIR_LIST_MAX kept).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/util.h"
#include "lib/core/lib.h"

/* The longest text of this host's attributes: "K=V" lines ([directory]
 * attributes, common/conf.h). */
#define HOST_ATTRS_MAX (CONF_DIR_ATTRS_MAX * (CONF_DIR_ATTR_KEY_MAX + CONF_DIR_ATTR_VAL_MAX + 2))

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
        h->trust_keys = !!(f & CTL_DIR_TRUST_KEYS);
        h->keys_refused = le64toh(w->keys_refused);
        h->enrolled = le64toh(w->enrolled);
        h->degraded = !!(f & CTL_DIR_DEGRADED);
        h->host_conflict = !!(f & CTL_DIR_HOST_CONFLICT);
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
        /* one block: the listing, its hosts, the directory's health, this
         * host's attributes */
        const char *attrs = "";
        if (ctl_get_str(&c->rep.msg, CTL_A_DIR_ATTRS, HOST_ATTRS_MAX, &attrs) < 0)
                attrs = "";
        size_t attrs_len = strlen(attrs);
        ipcf_host_listing *l =
                calloc(1, sizeof(*l) + n * sizeof(ipcf_host_entry) + sizeof(ipcf_dir_health) + attrs_len + 1);
        if (!l) {
                conn_call_free(c);
                return -ENOMEM;
        }
        l->hosts = (ipcf_host_entry *)(l + 1);
        char *text = (char *)((ipcf_dir_health *)(l->hosts + n) + 1);
        memcpy(text, attrs, attrs_len + 1);
        l->attrs = text;
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

/* ---- ipcf_dir_list ------------------------------------------------------ */

/* The records gathered page by page; attrs[] holds offsets into text until
 * the block is packed. */
typedef struct dir_acc {
        ipcf_dir_record *recs;
        size_t n, cap;
        size_t *attr_off;
        char *text;
        size_t text_len, text_cap;
        ipcf_dir_health health;
        bool has_health, truncated;
} dir_acc;

/* Append len bytes + NUL to the text pool; its offset, or (size_t)-1. */
static size_t acc_text(dir_acc *a, const char *s, size_t len) {
        if (a->text_len + len + 1 > a->text_cap) {
                size_t cap = MAX(a->text_cap * 2, a->text_len + len + 1 + 1024);
                char *t = realloc(a->text, cap);
                if (!t)
                        return (size_t)-1;
                a->text = t;
                a->text_cap = cap;
        }
        size_t off = a->text_len;
        memcpy(a->text + off, s, len);
        a->text[off + len] = 0;
        a->text_len += len + 1;
        return off;
}

static void record_from_wire(const struct ctl_dir_record_wire *w, ipcf_dir_record *r) {
        memset(r, 0, sizeof(*r));
        text_from_wire(r->name, sizeof(r->name), w->name, sizeof(w->name));
        text_from_wire(r->host, sizeof(r->host), w->host, sizeof(w->host));
        text_from_wire(r->addr, sizeof(r->addr), w->addr, sizeof(w->addr));
        text_from_wire(r->fp, sizeof(r->fp), w->fp, sizeof(w->fp));
        r->status = le32toh(w->status);
        r->revision = (int64_t)le64toh((uint64_t)w->revision);
        r->lease = (int64_t)le64toh((uint64_t)w->lease);
        r->age_ms = le64toh(w->age_ms);
}

/* One page's records (each DIR_RECORD, with the DIR_ATTRS right after it
 * if any) into a. Returns 0 or -ENOMEM; *ret_got: records on the page. */
static int dir_absorb(dir_acc *a, const ctl_msg *m, uint32_t *ret_got) {
        size_t cur = 0;
        uint16_t t, len;
        const void *v;
        bool last_kept = false;
        *ret_got = 0;
        while (ctl_attr_next(m, &cur, &t, &v, &len)) {
                if (t == CTL_A_DIR_ATTRS && last_kept && len > 0 && memchr(v, 0, len) == (const char *)v + len - 1) {
                        size_t off = acc_text(a, v, len - 1);
                        if (off == (size_t)-1)
                                return -ENOMEM;
                        a->attr_off[a->n - 1] = off;
                        last_kept = false;
                        continue;
                }
                last_kept = false;
                if (t != CTL_A_DIR_RECORD || len != sizeof(struct ctl_dir_record_wire))
                        continue;
                (*ret_got)++;
                if (a->n >= IPCF_DIR_LIST_MAX) {
                        a->truncated = true;
                        continue;
                }
                if (a->n == a->cap) {
                        size_t cap = a->cap ? a->cap * 2 : 64;
                        ipcf_dir_record *r = realloc(a->recs, cap * sizeof(*r));
                        if (r)
                                a->recs = r;
                        size_t *o = r ? realloc(a->attr_off, cap * sizeof(*o)) : NULL;
                        if (!o)
                                return -ENOMEM;
                        a->attr_off = o;
                        a->cap = cap;
                }
                struct ctl_dir_record_wire w;
                memcpy(&w, v, sizeof(w));
                record_from_wire(&w, &a->recs[a->n]);
                a->attr_off[a->n++] = (size_t)-1;
                last_kept = true;
        }
        return 0;
}

/* One block: the listing, the health, the records, the attributes' text. */
static ipcf_dir_listing *dir_pack(const dir_acc *a) {
        size_t recs = a->n * sizeof(ipcf_dir_record);
        ipcf_dir_listing *l = calloc(1, sizeof(*l) + sizeof(ipcf_dir_health) + recs + a->text_len + 1);
        if (!l)
                return NULL;
        ipcf_dir_health *h = (ipcf_dir_health *)(l + 1);
        l->records = (ipcf_dir_record *)(h + 1);
        char *text = (char *)(l->records + a->n);
        if (a->has_health) {
                *h = a->health;
                l->directory = h;
        }
        l->truncated = a->truncated;
        l->n = a->n;
        if (a->text_len)
                memcpy(text, a->text, a->text_len);
        text[a->text_len] = 0;
        for (size_t i = 0; i < a->n; i++) {
                l->records[i] = a->recs[i];
                l->records[i].attrs = a->attr_off[i] == (size_t)-1 ? text + a->text_len : text + a->attr_off[i];
        }
        return l;
}

static int dir_page(void *ctx, const ctl_msg *m, uint32_t *ret_entries) {
        dir_acc *a = ctx;
        struct ctl_dir_health_wire dw;
        if (!a->has_health && ctl_get_fixed(m, CTL_A_DIR_HEALTH, &dw, sizeof(dw)) == 0) {
                dir_from_wire(&dw, &a->health);
                a->has_health = true;
        }
        int r = dir_absorb(a, m, ret_entries);
        return r < 0 ? r : a->truncated; /* past IPCF_DIR_LIST_MAX: only to learn that there is more */
}

int ipcf_dir_list(ipcf_dir_listing **ret) {
        if (!ret)
                return -EINVAL;
        dir_acc a = { 0 };
        int r = conn_pages(CTL_DIR_LIST, dir_page, &a);
        ipcf_dir_listing *l = r == 0 ? dir_pack(&a) : NULL;
        free(a.recs);
        free(a.attr_off);
        free(a.text);
        if (r < 0)
                return r;
        if (!l)
                return -ENOMEM;
        *ret = l;
        return 0;
}
