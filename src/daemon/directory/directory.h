/*
 * directory.h — the directory of names across hosts, on etcd: the face the
 * daemon uses. One `directory` per daemon, in its loop; everything is
 * asynchronous and bounded in time.
 *
 * PUBLISHING (publish.c): dir_publish() puts PREFIX/names/NAME/HOST (record.h)
 * under this host's lease, which is kept alive every ttl/3; dir_unpublish()
 * deletes the key at once. A daemon that dies stops keeping the lease alive:
 * etcd deletes its keys after the TTL. When the lease is lost (etcd
 * unreachable for longer than the TTL, or etcd says it expired), a new one
 * is granted and every name published again, by itself.
 *
 * RESOLVING (sync.c feeds the cache; resolve.c answers): the whole prefix is
 * listed once (in pages, at one revision) and then watched from the next
 * revision on, so the cache follows etcd without a round trip per lookup.
 * dir_lookup() answers from the cache; where the cache cannot answer (not
 * listed yet, the watch down, or the cache full) it says so and
 * dir_resolve() asks etcd with one range read. Hosts of one name are taken
 * round robin; "name@host" (dir_split_pinned) pins one. This host's own
 * records are skipped unless pinned (local names are the local registry's).
 *
 * EVENTS: the observer hears every change of a name's set of hosts
 * (cache.h's enum dir_change: DIR_NAME_UP when a name appears anywhere,
 * DIR_NAME_DOWN when its last host goes, HOST_UP/HOST_DOWN between).
 *
 * WHEN ETCD IS SICK: cached names keep resolving (dir_lookup never needs
 * etcd for a hit); a lookup that needs etcd and cannot reach it fails with
 * -ENOLINK within its deadline; the watch reconnects (next endpoint, from
 * the revision it had, or a full re-listing if that was compacted) and the
 * publisher republishes, by themselves. dir_health_get() tells the state.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/core/loop.h"
#include "daemon/directory/etcd.h"
#include "daemon/directory/record.h"

#define DIR_TTL_DEFAULT_S 5u
#define DIR_TTL_MAX_S 3600u
#define DIR_REQUEST_TIMEOUT_DEFAULT_MS 2000u
#define DIR_HEARTBEAT_DEFAULT_MS 1000u
#define DIR_CACHE_MAX_DEFAULT 65536u
#define DIR_CACHE_MAX_LIMIT (1u << 22)
#define DIR_PUBLISH_MAX 4096u      /* names one host may publish */
#define DIR_QUERIES_MAX 1024u      /* cold lookups in flight */
#define DIR_REVOKE_MAX_MS 500u     /* what a daemon on its way out waits for its lease's revocation */
#define DIR_PREFIX_DEFAULT "/ipcf/"
/* The windows over which a watch's losses and a rival's puts are counted
 * (below): [directory] watch_unstable_window_s, host_conflict_window_s. A
 * window under 10 s would never hold 3 reopenings of a watch (one per 2 s
 * once unstable, sync.c) or 3 keepalive rounds of a rival (ttl_s / 3). */
#define DIR_WINDOW_DEFAULT_S 60u
#define DIR_WINDOW_MIN_S 10u
#define DIR_WINDOW_MAX_S 3600u

typedef struct directory directory;
typedef struct dir_query dir_query;

typedef struct dir_opts {
        etcd_opts etcd;
        const char *prefix;          /* NULL: DIR_PREFIX_DEFAULT */
        uint32_t ttl_s;              /* lease TTL; 0: default */
        uint32_t request_timeout_ms; /* puts, keepalives, listing pages; 0: default */
        uint32_t heartbeat_ms;       /* how often the watch's member is checked; 0: default */
        size_t cache_max;            /* entries; 0: default */
        /* DIR_WINDOW_MIN_S..DIR_WINDOW_MAX_S; 0: DIR_WINDOW_DEFAULT_S */
        uint32_t watch_unstable_window_s, host_conflict_window_s;
        /* This host, for publishing (host NULL: this directory only resolves);
         * key: its public key as text, published beside fp (NULL: none). */
        const char *host, *addr, *fp, *key;
        /* Publish only: no listing, no watch, no cache (dir_lookup says
         * -EAGAIN; dir_resolve works). For a host that never resolves
         * names of others, and for load drivers. */
        bool publish_only;
} dir_opts;

/* A watch stream lost this many times within watch_unstable_window_s
 * after etcd had created it is unstable: not live (sync.c). */
#define WATCH_UNSTABLE_LOSSES 3

/* This host's records put under another lease this many times within
 * host_conflict_window_s: another daemon calls itself this host
 * (publish.c); it ends when none was taken for that long. */
#define HOST_CONFLICT_TAKEN 3

typedef struct dir_health {
        etcd_health etcd;
        bool synced;            /* listed once, and watching since */
        bool live;              /* the watch is up, its member answered the last heartbeat, and
                                 * the stream was not lost WATCH_UNSTABLE_LOSSES times in its window */
        bool complete;          /* the cache holds every record: a miss is an answer */
        int64_t revision;       /* the etcd revision the cache reflects */
        size_t names, entries, bytes;
        size_t published;       /* names this host publishes */
        size_t unconfirmed;     /* ... of which etcd has not confirmed the last put */
        int64_t lease;          /* 0: none held */
        uint64_t leases_granted, rejected, resyncs, watch_restarts;
        unsigned watch_losses;  /* created streams lost in the last watch_window_s (sync.c) */
        bool degraded;          /* ... WATCH_UNSTABLE_LOSSES times or more: the watch does not hold */
        bool host_conflict;     /* another daemon calls itself this host (publish.c) */
        unsigned taken;         /* this host's records put under another lease in the last
                                 * conflict_window_s */
        int64_t taken_lease;    /* ... that lease, last seen */
        uint64_t taken_hold_ns; /* how long this host now waits before putting them again */
        uint32_t watch_window_s, conflict_window_s; /* the windows these are counted over */
} dir_health;

typedef void (*dir_observer_fn)(void *ctx, const char *name, const char *host, int change);
/* err 0: rec is the answer (borrowed for the call). */
typedef void (*dir_resolve_fn)(void *ctx, int err, const dir_record *rec);

struct conf_directory;
/* Options from the config's [directory] section (strings borrowed from it;
 * this host's name, address and fingerprint are the caller's to add).
 * Returns 0, or -EINVAL if the backend is not etcd. */
int dir_opts_from_conf(const struct conf_directory *c, dir_opts *ret);

/* For texts: a window, "minute" (60 s) else "N s"; a time, "N s" or
 * "N.N s" (rounded down to a tenth). Both in buf, returned. */
const char *dir_window_text(uint32_t window_s, char buf[16]);
const char *dir_seconds_text(uint64_t ns, char buf[24]);

/* Connects in the background (nothing is waited for here). Returns 0,
 * -EINVAL (an option out of range), -ENOMEM. */
int dir_new(loop *l, const dir_opts *o, directory **ret);
directory *dir_free(directory *d);
/* On the way out of a daemon (its loop no longer runs): revoke this host's
 * lease, so etcd deletes every name it published at once instead of when
 * the lease runs out. Waits at most min(request_timeout_ms,
 * DIR_REVOKE_MAX_MS) for etcd; nothing if no name is published. */
void dir_revoke(directory *d);

void dir_set_observer(directory *d, dir_observer_fn fn, void *ctx);

/* Publish name (with up to DIR_ATTRS_MAX attributes) or update its
 * attributes. Returns 0, -EINVAL (bad name or attribute, or no host
 * configured), -ENOSPC (DIR_PUBLISH_MAX), -ENOMEM. */
int dir_publish(directory *d, const char *name, const dir_attr *attrs, unsigned n_attrs);
/* Returns 0 or -ENOENT (not published). */
int dir_unpublish(directory *d, const char *name);

/* Is name published by this host (and not being unpublished)? */
bool dir_published(const directory *d, const char *name);
/* Does the cache hold a record of name from a host other than this one
 * for which ok (NULL: any) says yes? (No round robin step: for watches.) */
bool dir_has_other(const directory *d, const char *name, bool (*ok)(const dir_record *rec));

/* From the cache only: 1 and *ret filled, -ENOENT (the cache is complete
 * and live: the name has no host, or not that one), or -EAGAIN (the cache
 * cannot tell: ask dir_resolve()). host: "" or NULL for any. */
int dir_lookup(directory *d, const char *name, const char *host, dir_record *ret);
/* Ask etcd (one range read of the name) and answer through fn, always from
 * the loop, never inside this call: 0 and the record, -ENOENT, -ENOLINK
 * (etcd unreachable before deadline_ns), -EACCES. The answer also feeds the
 * cache. Returns 0, -EAGAIN (DIR_QUERIES_MAX in flight), -EINVAL, -ENOMEM. */
int dir_resolve(directory *d, const char *name, const char *host, uint64_t deadline_ns, dir_resolve_fn fn,
                void *ctx, dir_query **ret);
void dir_resolve_cancel(dir_query *q);

void dir_health_get(const directory *d, dir_health *ret);

struct dir_entry;
/* Each record of the cache (cache.h dir_cache_walk), until fn says false. */
void dir_walk(const directory *d, bool (*fn)(void *ctx, const struct dir_entry *e), void *ctx);
