/*
 * resolve.c — answering "where is NAME?": from the cache (dir_lookup), or
 * with one range read of PREFIX "names/" NAME "/" (dir_resolve).
 *
 * The cache answers a miss only when it is complete (listed, never full
 * since) and live (watching, its member answering): otherwise a miss may be
 * a name the cache has not seen, and the caller must ask etcd.
 *
 * A range read feeds the cache (the revision check keeps the newest), then
 * picks: the pinned host, else the next host round robin skipping this
 * one. When the cache is full the pick is made among the answer's records
 * with a directory-wide counter.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/util.h"
#include "daemon/directory/dirstate.h"
#include "daemon/directory/etcdmsg.h"

#define RESOLVE_HOSTS_MAX 1000 /* hosts of one name read by a cold lookup */

struct dir_query {
        struct dlist link;      /* directory.queries */
        directory *d;
        char name[IPCF_NAME_MAX + 1];
        char host[DIR_HOST_MAX + 1];
        dir_resolve_fn fn;
        void *ctx;
        etcd_req *req;
};

static bool cache_is_answer(const directory *d) {
        return d->synced && d->sync == SYNC_WATCHING && d->watch_created && !d->heartbeat_failed &&
               !d->cache.overflowed;
}

int dir_lookup(directory *d, const char *name, const char *host, dir_record *ret) {
        bool pinned = host && *host;
        dir_entry *e = dir_cache_pick(&d->cache, name, host, pinned ? NULL : d->host);
        if (e) {
                dir_entry_to_record(e, ret);
                return 1;
        }
        return cache_is_answer(d) ? -ENOENT : -EAGAIN;
}

bool dir_has_other(const directory *d, const char *name, bool (*ok)(const dir_record *rec)) {
        const dir_name *n = dir_cache_find(&d->cache, name);
        if (!n)
                return false;
        static dir_record rec;
        dlist_for_each(pos, &n->entries) {
                const dir_entry *e = dlist_entry(pos, dir_entry, link);
                if (strcmp(e->host, d->host) == 0)
                        continue;
                if (!ok)
                        return true;
                dir_entry_to_record(e, &rec);
                if (ok(&rec))
                        return true;
        }
        return false;
}

static void query_free(dir_query *q) {
        etcd_cancel(q->req);
        dlist_del(&q->link);
        q->d->n_queries--;
        free(q);
}

void dir_resolve_cancel(dir_query *q) {
        if (q)
                query_free(q);
}

/* Does record rec (of the answer) fit the query? */
static bool query_wants(const dir_query *q, const dir_record *rec) {
        if (strcmp(rec->name, q->name) != 0) /* "a/b" lives under "a/" too */
                return false;
        if (q->host[0])
                return !strcmp(rec->host, q->host);
        return strcmp(rec->host, q->d->host) != 0;
}

static void range_done(void *ctx, int err, json_object *resp) {
        dir_query *q = ctx;
        directory *d = q->d;
        dir_resolve_fn fn = q->fn;
        void *fctx = q->ctx;
        dir_query want = { .d = d };
        str_copy(want.name, q->name, sizeof(want.name));
        str_copy(want.host, q->host, sizeof(want.host));
        q->req = NULL;
        query_free(q); /* only the copy is used below */
        static etcd_kv kv;
        static dir_record rec, pick;
        int64_t rev;
        bool more;
        json_object *kvs = NULL;
        if (err == 0 && etcd_range_decode(resp, &rev, &more, &kvs) < 0) {
                etcd_answer_bad(d->etcd, "range answer is not etcd's"); /* the next asks another */
                err = -EPROTO;
        }
        if (err < 0) {
                fn(fctx, err, NULL);
                return;
        }
        /* Feed the cache, count what fits the query. */
        size_t n = kvs ? json_object_array_length(kvs) : 0, fits = 0;
        for (size_t i = 0; i < n; i++) {
                if (etcd_kv_decode(json_object_array_get_idx(kvs, i), &kv) < 0 ||
                    dir_key_parse(d->prefix, kv.key, kv.key_len, &rec) < 0 ||
                    dir_value_parse(kv.value, kv.value_len, &rec) < 0) {
                        d->rejected++;
                        continue;
                }
                sync_apply(d, &kv, false);
                fits += query_wants(&want, &rec);
        }
        if (fits == 0) {
                fn(fctx, -ENOENT, NULL);
                return;
        }
        dir_entry *e = dir_cache_pick(&d->cache, want.name, want.host, want.host[0] ? NULL : d->host);
        if (e) {
                dir_entry_to_record(e, &pick);
                fn(fctx, 0, &pick);
                return;
        }
        /* Not in the cache (full): the k-th fitting record of the answer. */
        static uint32_t spread;
        size_t k = spread++ % fits;
        for (size_t i = 0; i < n; i++) {
                if (etcd_kv_decode(json_object_array_get_idx(kvs, i), &kv) < 0 ||
                    dir_key_parse(d->prefix, kv.key, kv.key_len, &rec) < 0 ||
                    dir_value_parse(kv.value, kv.value_len, &rec) < 0 || !query_wants(&want, &rec))
                        continue;
                if (k-- == 0) {
                        fn(fctx, 0, &rec);
                        return;
                }
        }
        fn(fctx, -ENOENT, NULL);
}

int dir_resolve(directory *d, const char *name, const char *host, uint64_t deadline_ns, dir_resolve_fn fn,
                void *ctx, dir_query **ret) {
        if (!ctl_name_valid(name) || (host && *host && !dir_host_valid(host, strlen(host))))
                return -EINVAL;
        if (d->n_queries >= DIR_QUERIES_MAX)
                return -EAGAIN;
        char key[DIR_KEY_MAX + 1];
        uint8_t end[DIR_KEY_MAX + 1];
        int kl = dir_key_name(d->prefix, name, key, sizeof(key));
        if (kl < 0)
                return -EINVAL;
        size_t el = etcd_prefix_end(key, (size_t)kl, end);
        dir_query *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->d = d;
        str_copy(q->name, name, sizeof(q->name));
        str_copy(q->host, host ? host : "", sizeof(q->host));
        q->fn = fn;
        q->ctx = ctx;
        dlist_add_tail(&d->queries, &q->link);
        d->n_queries++;
        char *body = etcd_body_range(key, (size_t)kl, end, el, RESOLVE_HOSTS_MAX, 0);
        int r = body ? etcd_call(d->etcd, "/v3/kv/range", body, deadline_ns, range_done, q, &q->req) : -ENOMEM;
        free(body);
        if (r < 0) {
                q->req = NULL;
                query_free(q);
                return r;
        }
        if (ret)
                *ret = q;
        return 0;
}

void resolve_stop(directory *d) {
        while (!dlist_empty(&d->queries))
                query_free(dlist_entry(d->queries.next, dir_query, link));
}
