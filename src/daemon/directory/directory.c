/*
 * directory.c — the directory object: its options checked, its parts
 * (etcd client, cache, sync, publisher, queries) started and stopped, its
 * observer and its health (see directory.h).
 */
#include "daemon/directory/directory.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/conf.h"
#include "common/util.h"
#include "daemon/directory/dirstate.h"
#include "daemon/directory/etcdmsg.h"

void dir_notify(directory *d, const char *name, const char *host, int change) {
        if (d->observer)
                d->observer(d->observer_ctx, name, host, change);
}

void dir_set_observer(directory *d, dir_observer_fn fn, void *ctx) {
        d->observer = fn;
        d->observer_ctx = ctx;
}

int dir_opts_from_conf(const conf_directory *c, dir_opts *ret) {
        memset(ret, 0, sizeof(*ret));
        if (c->backend != CONF_DIR_ETCD || c->n_endpoints > ETCD_ENDPOINTS_MAX)
                return -EINVAL;
        for (size_t i = 0; i < c->n_endpoints; i++)
                ret->etcd.endpoints[i] = c->endpoints[i];
        ret->etcd.n_endpoints = c->n_endpoints;
        ret->etcd.ca_file = c->ca;
        ret->etcd.cert_file = c->cert;
        ret->etcd.key_file = c->key;
        ret->prefix = c->prefix;
        ret->ttl_s = c->ttl_s;
        ret->request_timeout_ms = c->request_timeout_ms;
        ret->cache_max = c->cache_max;
        ret->watch_unstable_window_s = c->watch_unstable_window_s;
        ret->host_conflict_window_s = c->host_conflict_window_s;
        return 0;
}

const char *dir_window_text(uint32_t window_s, char buf[16]) {
        if (window_s == 60)
                snprintf(buf, 16, "minute");
        else
                snprintf(buf, 16, "%" PRIu32 " s", window_s);
        return buf;
}

const char *dir_seconds_text(uint64_t ns, char buf[24]) {
        uint64_t tenths = ns / 100000000u;
        if (tenths % 10 == 0)
                snprintf(buf, 24, "%" PRIu64 " s", tenths / 10);
        else
                snprintf(buf, 24, "%" PRIu64 ".%" PRIu64 " s", tenths / 10, tenths % 10);
        return buf;
}

/* 0: the default; else within DIR_WINDOW_MIN_S..DIR_WINDOW_MAX_S. */
static bool window_valid(uint32_t window_s) {
        return window_s == 0 || (window_s >= DIR_WINDOW_MIN_S && window_s <= DIR_WINDOW_MAX_S);
}

int dir_new(loop *l, const dir_opts *o, directory **ret) {
        const char *prefix = o->prefix && *o->prefix ? o->prefix : DIR_PREFIX_DEFAULT;
        if (!dir_prefix_valid(prefix) || o->ttl_s > DIR_TTL_MAX_S || o->cache_max > DIR_CACHE_MAX_LIMIT ||
            !window_valid(o->watch_unstable_window_s) || !window_valid(o->host_conflict_window_s))
                return -EINVAL;
        if (o->host && *o->host) {
                if (!dir_host_valid(o->host, strlen(o->host)) || !o->addr || !dir_addr_valid(o->addr) ||
                    (o->fp && !dir_fp_valid(o->fp)) || (o->key && !dir_pubkey_valid(o->key)))
                        return -EINVAL;
        }
        directory *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->l = l;
        str_copy(d->prefix, prefix, sizeof(d->prefix));
        int kl = dir_key_names(prefix, d->names_key, sizeof(d->names_key));
        if (kl < 0) {
                free(d);
                return -EINVAL;
        }
        d->names_key_len = (size_t)kl;
        d->names_end_len = etcd_prefix_end(d->names_key, d->names_key_len, d->names_end);
        d->ttl_s = o->ttl_s ? o->ttl_s : DIR_TTL_DEFAULT_S;
        d->request_ms = o->request_timeout_ms ? o->request_timeout_ms : DIR_REQUEST_TIMEOUT_DEFAULT_MS;
        d->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : DIR_HEARTBEAT_DEFAULT_MS;
        d->watch_window_s = o->watch_unstable_window_s ? o->watch_unstable_window_s : DIR_WINDOW_DEFAULT_S;
        d->conflict_window_s = o->host_conflict_window_s ? o->host_conflict_window_s : DIR_WINDOW_DEFAULT_S;
        if (o->host && *o->host) {
                str_copy(d->host, o->host, sizeof(d->host));
                str_copy(d->addr, o->addr, sizeof(d->addr));
                str_copy(d->fp, o->fp ? o->fp : "", sizeof(d->fp));
                str_copy(d->key, o->key ? o->key : "", sizeof(d->key));
        }
        dir_cache_init(&d->cache, o->cache_max ? o->cache_max : DIR_CACHE_MAX_DEFAULT);
        dlist_init(&d->queries);
        int r = etcd_new(l, &o->etcd, &d->etcd);
        if (r < 0) {
                dir_cache_deinit(&d->cache);
                free(d);
                return r;
        }
        d->watching = !o->publish_only;
        if (d->watching)
                sync_start(d);
        publish_start(d);
        *ret = d;
        return 0;
}

void dir_revoke(directory *d) {
        if (d && d->n_pubs)
                publish_revoke(d, (long)MIN(d->request_ms, DIR_REVOKE_MAX_MS));
}

directory *dir_free(directory *d) {
        if (!d)
                return NULL;
        resolve_stop(d);
        publish_stop(d);
        sync_stop(d);
        etcd_free(d->etcd);
        dir_cache_deinit(&d->cache);
        free(d);
        return NULL;
}

void dir_walk(const directory *d, bool (*fn)(void *ctx, const dir_entry *e), void *ctx) {
        dir_cache_walk(&d->cache, fn, ctx);
}

/* What is wrong beyond etcd's last error goes first in last_error (the
 * text `ipcf hosts` prints): another daemon calling itself this host, a
 * watch that does not hold. */
static void dir_health_explain(dir_health *h, const char *host) {
        bool conflict = h->host_conflict, unstable = h->degraded;
        if (!conflict && !unstable)
                return;
        char etcd_error[sizeof(h->etcd.last_error)], said[sizeof(h->etcd.last_error)] = "";
        char window[16], hold[24];
        str_copy(etcd_error, h->etcd.last_error, sizeof(etcd_error));
        if (conflict)
                snprintf(said, sizeof(said),
                         "host name conflict: another daemon (lease %" PRIx64 ") put this host's records %u times in "
                         "the last %s: is another daemon configured as host %s? this one puts them again after "
                         "%s; ",
                         (uint64_t)h->taken_lease, h->taken, dir_window_text(h->conflict_window_s, window), host,
                         dir_seconds_text(h->taken_hold_ns, hold));
        if (unstable)
                snprintf(said + strlen(said), sizeof(said) - strlen(said),
                         "degraded: the watch was lost %u times in the last %s right after it opened; ",
                         h->watch_losses, dir_window_text(h->watch_window_s, window));
        said[strlen(said) - 2] = 0; /* the last "; " */
        snprintf(h->etcd.last_error, sizeof(h->etcd.last_error), "%.380s%s%.120s", said,
                 etcd_error[0] ? "; etcd: " : "", etcd_error);
}

void dir_health_get(const directory *d, dir_health *ret) {
        memset(ret, 0, sizeof(*ret));
        etcd_health_get(d->etcd, &ret->etcd);
        ret->synced = d->synced;
        ret->live = sync_live(d);
        ret->watch_losses = d->watching ? sync_watch_losses(d) : 0;
        ret->degraded = ret->watch_losses >= WATCH_UNSTABLE_LOSSES;
        ret->complete = d->synced && !d->cache.overflowed;
        ret->revision = d->revision;
        ret->names = d->cache.n_names;
        ret->entries = d->cache.n_entries;
        ret->bytes = d->cache.bytes;
        ret->published = d->n_pubs;
        ret->unconfirmed = publish_unconfirmed(d);
        ret->lease = d->lease_state == LEASE_HELD ? d->lease : 0;
        ret->leases_granted = d->leases_granted;
        ret->rejected = d->rejected;
        ret->resyncs = d->resyncs;
        ret->watch_restarts = d->watch_restarts;
        ret->taken = publish_taken(d, &ret->taken_lease, &ret->taken_hold_ns);
        ret->host_conflict = d->conflict_told;
        ret->watch_window_s = d->watch_window_s;
        ret->conflict_window_s = d->conflict_window_s;
        dir_health_explain(ret, d->host);
}
