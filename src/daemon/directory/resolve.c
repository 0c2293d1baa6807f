/*
 * resolve.c — answering "where is NAME?": from the cache (dir_lookup), or
 * with one range read of PREFIX "names/" NAME "/" (dir_resolve).
 *
 * The cache answers a miss only when it is complete (listed, never full
 * since) and live (watching, its member answering, the stream not lost
 * again and again: sync_live): otherwise a miss may be
 * a name the cache has not seen, and the caller must ask etcd.
 *
 * A range read feeds the cache (the revision check keeps the newest), then
 * picks: the pinned host, else the next host round robin skipping this
 * one. When the cache is full the pick is made among the answer's records
 * with a directory-wide counter.
 *
 * PAGES: a read gives at most RESOLVE_HOSTS_MAX records. NAME's own sort
 * among the longer names "NAME/..." (the same key prefix), so a full page
 * in which none fits is followed by the next one (after its last key)
 * while the deadline allows: a thousand longer names do not hide NAME.
 *
 * TWO READS, ONE DEADLINE: the read is linearizable (the leader confirms
 * the member is current). Without a leader — an election after the leader
 * died, or a quorum lost — a member holds such a read until a leader is
 * elected (etcd 3.4: then "leader changed", retried), which under load
 * takes longer than a request timeout. So the linearizable read gets the
 * deadline less a reserve (a third of the time, at most
 * RESOLVE_RESERVE_MAX_NS); if no member answered it by then (-ENOLINK),
 * a serializable read — answered by any member that is up, from its own
 * copy, which may be behind — gets the rest. Its answer is used for this
 * lookup only and does not feed the cache (an old copy could bring back a
 * record deleted since). Both unanswered: -ENOLINK at the deadline.
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
#define RESOLVE_RESERVE_MAX_NS (500ull * 1000000u) /* kept for the serializable read */

struct dir_query {
        struct dlist link;      /* directory.queries */
        directory *d;
        char name[IPCF_NAME_MAX + 1];
        char host[DIR_HOST_MAX + 1];
        dir_resolve_fn fn;
        void *ctx;
        etcd_req *req;
        uint64_t deadline;      /* the lookup's (CLOCK_MONOTONIC ns) */
        bool serializable;      /* the linearizable read went unanswered: the second read */
        uint8_t *from;          /* the next page starts here (heap), or NULL: at the name's key */
        size_t from_len;
};

static bool cache_is_answer(const directory *d) {
        return d->synced && sync_live(d) && !d->cache.overflowed;
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
        free(q->from);
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

static int query_send(dir_query *q);

/* A full page (more to come) in which no record fits q: only longer
 * names ("NAME/x" lives under "NAME/" and sorts before most hosts)? Then
 * the next page, after its last key, while the deadline allows; true if
 * it was asked. The answer so far neither fits nor feeds the cache. */
static bool query_next_page(dir_query *q, json_object *kvs, bool more) {
        size_t n = kvs ? json_object_array_length(kvs) : 0;
        if (!more || n == 0 || now_ns() >= q->deadline)
                return false;
        static etcd_kv kv;
        static dir_record rec;
        for (size_t i = 0; i < n; i++)
                if (etcd_kv_decode(json_object_array_get_idx(kvs, i), &kv) == 0 &&
                    dir_key_parse(q->d->prefix, kv.key, kv.key_len, &rec) == 0 &&
                    dir_value_parse(kv.value, kv.value_len, &rec) == 0 && query_wants(q, &rec))
                        return false;
        uint8_t *last;
        size_t len;
        if (etcd_kv_key(json_object_array_get_idx(kvs, n - 1), &last, &len) < 0)
                return false;
        uint8_t *next = realloc(last, len + 1);
        if (!next) {
                free(last);
                return false;
        }
        next[len] = 0; /* just after the last key */
        free(q->from);
        q->from = next;
        q->from_len = len + 1;
        return query_send(q) == 0;
}

static void range_done(void *ctx, int err, json_object *resp) {
        dir_query *q = ctx;
        directory *d = q->d;
        q->req = NULL;
        if (err == -ENOLINK && !q->serializable && now_ns() < q->deadline) {
                q->serializable = true; /* no leader to confirm: ask a member's own copy */
                if (query_send(q) == 0)
                        return; /* else -ENOLINK, as the first read said */
        }
        int64_t rev;
        bool more;
        json_object *kvs = NULL;
        if (err == 0 && etcd_range_decode(resp, &rev, &more, &kvs) == 0 && query_next_page(q, kvs, more))
                return;
        dir_resolve_fn fn = q->fn;
        void *fctx = q->ctx;
        bool fresh = !q->serializable; /* feeds the cache */
        dir_query want = { .d = d };
        str_copy(want.name, q->name, sizeof(want.name));
        str_copy(want.host, q->host, sizeof(want.host));
        query_free(q); /* only the copy is used below */
        static etcd_kv kv;
        static dir_record rec, pick;
        kvs = NULL;
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
                if (fresh)
                        sync_apply(d, &kv, false);
                fits += query_wants(&want, &rec);
        }
        if (fits == 0) {
                fn(fctx, -ENOENT, NULL);
                return;
        }
        dir_entry *e = fresh ? dir_cache_pick(&d->cache, want.name, want.host, want.host[0] ? NULL : d->host) : NULL;
        if (e) {
                dir_entry_to_record(e, &pick);
                fn(fctx, 0, &pick);
                return;
        }
        /* Not in the cache (full, or a serializable answer): the k-th
         * fitting record of the answer. */
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
        if (dir_key_name(d->prefix, name, key, sizeof(key)) < 0)
                return -EINVAL;
        dir_query *q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->d = d;
        str_copy(q->name, name, sizeof(q->name));
        str_copy(q->host, host ? host : "", sizeof(q->host));
        q->fn = fn;
        q->ctx = ctx;
        q->deadline = deadline_ns;
        dlist_add_tail(&d->queries, &q->link);
        d->n_queries++;
        int r = query_send(q);
        if (r < 0) {
                query_free(q);
                return r;
        }
        if (ret)
                *ret = q;
        return 0;
}

/* The range read of q's name: linearizable until the deadline less the
 * reserve, or serializable until the deadline (TWO READS above). */
static int query_send(dir_query *q) {
        directory *d = q->d;
        char key[DIR_KEY_MAX + 1];
        uint8_t end[DIR_KEY_MAX + 1];
        int kl = dir_key_name(d->prefix, q->name, key, sizeof(key));
        if (kl < 0)
                return -EINVAL;
        size_t el = etcd_prefix_end(key, (size_t)kl, end);
        const void *from = q->from ? (const void *)q->from : key;
        size_t from_len = q->from ? q->from_len : (size_t)kl;
        uint64_t now = now_ns(), until = q->deadline;
        if (!q->serializable && until > now)
                until -= MIN((until - now) / 3, RESOLVE_RESERVE_MAX_NS);
        char *body = q->serializable ? etcd_body_range_serializable(from, from_len, end, el, RESOLVE_HOSTS_MAX)
                                     : etcd_body_range(from, from_len, end, el, RESOLVE_HOSTS_MAX, 0);
        int r = body ? etcd_call(d->etcd, "/v3/kv/range", body, until, range_done, q, &q->req) : -ENOMEM;
        free(body);
        if (r < 0)
                q->req = NULL;
        return r;
}

void resolve_stop(directory *d) {
        while (!dlist_empty(&d->queries))
                query_free(dlist_entry(d->queries.next, dir_query, link));
}
