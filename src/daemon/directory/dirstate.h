/*
 * dirstate.h — the directory object's fields and the functions its files
 * share (internal to src/daemon/directory/: directory.c owns the object,
 * sync.c the listing and watch, publish.c the lease and the puts,
 * resolve.c the lookups).
 */
#pragma once

#include "daemon/core/dlist.h"
#include "daemon/directory/cache.h"
#include "daemon/directory/directory.h"
#include "daemon/directory/etcdmsg.h"

enum sync_state { SYNC_IDLE, SYNC_LISTING, SYNC_WATCHING, SYNC_WAIT };

/* The times of the last RECENT_KEPT events of one kind (a ring; 0: no
 * event), so as to count those within a window: a watch stream lost
 * (sync.c), a record taken by another daemon (publish.c). */
#define RECENT_KEPT 64
typedef struct recent_times {
        uint64_t at[RECENT_KEPT];
        unsigned next;
} recent_times;

static inline void recent_note(recent_times *r, uint64_t now) { r->at[r->next++ % RECENT_KEPT] = now; }

/* How many of the kept events are less than window_ns old. */
static inline unsigned recent_count(const recent_times *r, uint64_t now, uint64_t window_ns) {
        unsigned n = 0;
        for (unsigned i = 0; i < RECENT_KEPT; i++)
                n += r->at[i] && now - r->at[i] < window_ns;
        return n;
}

/* The time of the last event (0: none yet). */
static inline uint64_t recent_last(const recent_times *r) {
        return r->at[(r->next + RECENT_KEPT - 1) % RECENT_KEPT];
}

static inline uint64_t window_ns(uint32_t window_s) { return (uint64_t)window_s * 1000000000u; }

enum lease_state { LEASE_NONE, LEASE_GRANTING, LEASE_HELD };

struct directory {
        loop *l;
        etcd *etcd;
        char prefix[DIR_PREFIX_MAX + 1];
        char names_key[DIR_KEY_MAX + 1];     /* PREFIX "names/" */
        size_t names_key_len;
        uint8_t names_end[DIR_KEY_MAX + 1];  /* its range end */
        size_t names_end_len;
        uint32_t ttl_s, request_ms, heartbeat_ms;
        uint32_t watch_window_s, conflict_window_s; /* dir_opts' windows */
        char host[DIR_HOST_MAX + 1], addr[DIR_ADDR_MAX + 1], fp[DIR_FP_MAX + 1], key[DIR_PUBKEY_MAX + 1];

        dir_cache cache;
        dir_observer_fn observer;
        void *observer_ctx;

        /* sync.c */
        bool watching;                       /* not publish_only */
        enum sync_state sync;
        etcd_req *sync_req;                  /* listing page or watch stream */
        loop_timer sync_timer;               /* retry after a failure */
        loop_timer heartbeat;
        etcd_req *heartbeat_req;
        uint64_t sync_backoff_ns;
        int64_t list_rev;                    /* revision of the listing in progress */
        uint32_t list_limit;                 /* keys asked per page (SYNC_PAGE, less after too big) */
        uint8_t *list_next;                  /* the key the next page starts at (heap) */
        size_t list_next_len;
        int64_t revision;
        size_t watch_ep;                     /* endpoint the stream was opened on */
        bool synced, watch_created, heartbeat_failed;
        uint64_t rejected, resyncs, watch_restarts;
        recent_times watch_lost;             /* when a created stream was lost */
        bool watch_unstable_told;            /* logged; cleared (and logged) when it holds again */

        /* publish.c */
        struct dlist pubs;                   /* dir_pub.link */
        size_t n_pubs;
        enum lease_state lease_state;
        int64_t lease;
        uint64_t lease_ok_ns;                /* last grant or keepalive etcd confirmed */
        etcd_req *lease_req;
        loop_timer lease_timer;
        loop_timer flush_timer;              /* puts owed go out at the end of the round */
        unsigned batches;                    /* put transactions in flight */
        struct dlist batch_list;             /* ... their pub_batch.link */
        uint64_t leases_granted;
        /* another daemon putting this host's records under its lease (publish.c) */
        recent_times taken;                  /* when one was */
        int64_t taken_lease;                 /* its lease, last seen */
        uint64_t contest_backoff_ns;         /* the hold after the last overwrite, 0: none */
        uint64_t contest_until_ns;           /* records taken are put again from then on */
        bool conflict_told;                  /* logged; cleared (and logged) when it ends */

        /* resolve.c */
        struct dlist queries;                /* dir_query.link */
        size_t n_queries;
};

/* sync.c */
void sync_start(directory *d);
void sync_stop(directory *d);
/* The watch is up, its member answered the last heartbeat, and the stream
 * has not been lost WATCH_UNSTABLE_LOSSES times in the last watch_window_s. */
bool sync_live(const directory *d);
/* Created streams lost within the last watch_window_s. */
unsigned sync_watch_losses(const directory *d);
/* Apply one kv of etcd (listing or watch) to the cache; tells the observer. */
void sync_apply(directory *d, const etcd_kv *kv, bool is_delete);

/* publish.c */
void publish_start(directory *d);
void publish_stop(directory *d);
/* The watch saw this host's key for name deleted: put it again if ours. */
void publish_key_lost(directory *d, const char *name, int64_t mod_revision);
/* The watch or a listing saw this host's key for name hold lease and
 * value: put it again (at the next tick) if ours and not what we put. */
void publish_key_seen(directory *d, const char *name, int64_t lease, int64_t mod_revision,
                      const uint8_t *value, size_t len);
/* Revoke the lease (its keys go with it), waiting at most timeout_ms. */
void publish_revoke(directory *d, long timeout_ms);
/* Records of this host put under another daemon's lease within the last
 * conflict_window_s; that lease in *ret_lease (may be NULL), the
 * current hold before this host puts them again in *ret_hold_ns. */
unsigned publish_taken(const directory *d, int64_t *ret_lease, uint64_t *ret_hold_ns);
/* Names whose last put etcd has not confirmed. */
size_t publish_unconfirmed(const directory *d);

/* resolve.c */
void resolve_stop(directory *d);

/* directory.c: tell the observer. */
void dir_notify(directory *d, const char *name, const char *host, int change);
