/*
 * sync.c — keeps the directory's cache equal to etcd: list every key under
 * PREFIX "names/" (pages of SYNC_PAGE, all at the revision of the first
 * page), then watch from the next revision on.
 *
 * PAGES: SYNC_PAGE keys. A page past what the client takes (ETCD_BODY_MAX)
 * or not answered in time (values near etcd's 1.5 MiB, written by someone
 * else, take a member long to render; or etcd is away) is asked again at
 * the same revision SYNC_PAGE_SHRINK times smaller, down to one key (at
 * once when too big, after the backoff when unanswered); each page that
 * comes whole lets the next be twice as big. A listing thus always moves
 * on; another failure (the revision compacted, ...) starts it again.
 *
 * STATES: LISTING (a page in flight) -> WATCHING (the stream open) ->
 * on a failure WAIT (timer, backoff 50 ms doubling to 2 s) -> LISTING again
 * if the listing never finished or etcd compacted the revision we had, else
 * WATCHING from the last revision seen (events already applied are ignored
 * by the cache's revision check).
 *
 * WENT BACK: a revision below one already seen (a watch's first frame, the
 * heartbeat's read, a listing's first page) means etcd's store was rebuilt:
 * the cache forgets its revisions and everything is listed again.
 *
 * HEARTBEAT: a watch stream on a member that hangs or lost its quorum stays
 * silent, so every heartbeat_ms a small linearizable read goes through the
 * client. If it fails, or the client has moved to another endpoint than the
 * stream's, the stream is reopened (on the current endpoint).
 *
 * UNSTABLE: a stream etcd created and that then ends (or brings a frame
 * we cannot read) is a loss. A watch lost WATCH_UNSTABLE_LOSSES times in
 * the last watch_window_s ([directory] watch_unstable_window_s, a minute by
 * default) -- a proxy that cuts long requests, a member that dies under it
 * again and again -- is not live, however well the heartbeat's reads
 * go: the health says so (dir_health_get), the daemon logs it once (and
 * once when it holds again), and a new stream's creation no longer resets
 * the backoff, so reopening slows to one per SYNC_BACKOFF_MAX_NS.
 * `live` (sync_live) is "stream created, the last heartbeat answered and
 * the stream not unstable".
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/directory/dirstate.h"
#include "daemon/directory/etcdmsg.h"

#define SYNC_PAGE 1000
#define SYNC_PAGE_SHRINK 8 /* a page past ETCD_BODY_MAX is asked again this many times smaller */
#define SYNC_BACKOFF_MIN_NS (50ull * 1000000u)
#define SYNC_BACKOFF_MAX_NS (2000ull * 1000000u)

static void list_page(directory *d);
static void watch_open(directory *d);
static bool watch_unstable(const directory *d);

static uint64_t deadline(const directory *d) { return now_ns() + (uint64_t)d->request_ms * 1000000u; }

/* The cache's observer for sweeps. */
static void sweep_notify(void *ctx, const char *name, const char *host, int change) {
        dir_notify(ctx, name, host, change);
}

void sync_apply(directory *d, const etcd_kv *kv, bool is_delete) {
        dir_record rec;
        if (dir_key_parse(d->prefix, kv->key, kv->key_len, &rec) < 0) {
                d->rejected++;
                return;
        }
        int change;
        bool ours = !strcmp(rec.host, d->host);
        if (is_delete) {
                change = dir_cache_del(&d->cache, rec.name, rec.host, kv->mod_revision);
                if (ours)
                        publish_key_lost(d, rec.name, kv->mod_revision);
        } else {
                if (ours)
                        publish_key_seen(d, rec.name, kv->lease, kv->mod_revision, kv->value, kv->value_len);
                if (dir_value_parse(kv->value, kv->value_len, &rec) < 0) {
                        /* The key no longer holds a record we accept: as good as gone. */
                        d->rejected++;
                        change = dir_cache_del(&d->cache, rec.name, rec.host, kv->mod_revision);
                } else {
                        change = dir_cache_put(&d->cache, &rec, kv->mod_revision, kv->lease);
                }
        }
        if (change > 0)
                dir_notify(d, rec.name, rec.host, change);
}

/* ---- losses of the stream ------------------------------------------------ */

unsigned sync_watch_losses(const directory *d) {
        return recent_count(&d->watch_lost, now_ns(), window_ns(d->watch_window_s));
}

static bool watch_unstable(const directory *d) { return sync_watch_losses(d) >= WATCH_UNSTABLE_LOSSES; }

bool sync_live(const directory *d) {
        return d->sync == SYNC_WATCHING && d->watch_created && !d->heartbeat_failed && !watch_unstable(d);
}

/* The stream etcd had created is gone: count it, and say so once when it
 * makes the watch unstable. */
static void watch_lost(directory *d) {
        if (!d->watch_created)
                return; /* never up: etcd unreachable, which the health says already */
        recent_note(&d->watch_lost, now_ns());
        if (watch_unstable(d) && !d->watch_unstable_told) {
                d->watch_unstable_told = true;
                etcd_health h;
                etcd_health_get(d->etcd, &h);
                char window[16];
                log_error("directory: the watch on %s keeps failing: lost %u times in the last %s right after "
                          "it opened (last error: %s); the directory is not live until it holds",
                          h.endpoint, sync_watch_losses(d), dir_window_text(d->watch_window_s, window),
                          h.last_error[0] ? h.last_error : "none");
        }
}

/* An unstable watch that has held for its window: say so once. */
static void watch_check_held(directory *d) {
        if (d->watch_unstable_told && !watch_unstable(d) && d->sync == SYNC_WATCHING && d->watch_created) {
                d->watch_unstable_told = false;
                log_info("directory: the watch on etcd holds again");
        }
}

/* Something failed: try again after the backoff. */
static void backoff(directory *d) {
        d->sync_backoff_ns = d->sync_backoff_ns ? MIN(d->sync_backoff_ns * 2, SYNC_BACKOFF_MAX_NS) : SYNC_BACKOFF_MIN_NS;
        loop_timer_arm(d->l, &d->sync_timer, now_ns() + d->sync_backoff_ns);
}

static void sync_retry(directory *d) {
        d->sync = SYNC_WAIT;
        d->sync_req = NULL;
        d->watch_created = false;
        backoff(d);
}

/* etcd's revision is below one we saw: the store was rebuilt (a cluster
 * started anew, empty, or restored from an older copy). Watching on from our
 * revision would wait for revisions it has not reached, and its puts would
 * look older than the cache's entries: forget the revisions, so the listing
 * (which may be under way) takes everything and the sweep removes the rest. */
static void store_went_back(directory *d) {
        d->revision = 0;
        dir_cache_forget_revisions(&d->cache);
}

static void sync_timer_fn(loop_timer *t) {
        directory *d = container_of(t, directory, sync_timer);
        if (d->synced) {
                d->watch_restarts++;
                watch_open(d);
        } else {
                list_page(d);
        }
}

/* ---- listing ------------------------------------------------------------- */

static void list_done(void *ctx, int err, json_object *resp) {
        directory *d = ctx;
        d->sync_req = NULL;
        int64_t rev;
        bool more;
        json_object *kvs;
        if (err == 0 && etcd_range_decode(resp, &rev, &more, &kvs) < 0) {
                etcd_answer_bad(d->etcd, "range answer is not etcd's"); /* list on the next one */
                err = -EPROTO;
        }
        if (err == -EMSGSIZE || err == -ENOLINK) {
                /* Too big to take, or no answer in time (a member may take
                 * longer than an attempt to render huge values): the same
                 * page again at the same revision, smaller -- what was
                 * listed stays listed, so huge values written by someone
                 * else slow the listing down but cannot stop it. */
                d->list_limit = MAX(d->list_limit / SYNC_PAGE_SHRINK, 1u);
                if (err == -EMSGSIZE)
                        list_page(d);
                else
                        backoff(d); /* still LISTING: the timer asks list_page for the same page */
                return;
        }
        if (err < 0) {
                sync_retry(d);
                return;
        }
        d->list_limit = MIN(d->list_limit * 2, (uint32_t)SYNC_PAGE);
        if (!watch_unstable(d))
                d->sync_backoff_ns = 0;
        if (!d->list_rev) {
                d->list_rev = rev;
                if (rev < d->revision)
                        store_went_back(d);
        }
        static etcd_kv kv; /* 9 KiB: not on the stack; the loop is single-threaded */
        size_t n = kvs ? json_object_array_length(kvs) : 0;
        for (size_t i = 0; i < n; i++) {
                if (etcd_kv_decode(json_object_array_get_idx(kvs, i), &kv) < 0) {
                        d->rejected++;
                        continue;
                }
                sync_apply(d, &kv, false);
        }
        if (more && n > 0) {
                /* The next page starts just after the last key, whatever that
                 * record was worth (a bad one must not stop the listing). */
                uint8_t *last;
                size_t len;
                if (etcd_kv_key(json_object_array_get_idx(kvs, n - 1), &last, &len) < 0) {
                        d->sync = SYNC_IDLE;
                        sync_retry(d);
                        return;
                }
                uint8_t *next = realloc(last, len + 1);
                if (!next) {
                        free(last);
                        d->sync = SYNC_IDLE;
                        sync_retry(d);
                        return;
                }
                next[len] = 0;
                free(d->list_next);
                d->list_next = next;
                d->list_next_len = len + 1;
                list_page(d);
                return;
        }
        /* The whole snapshot is in: what it did not hold is gone. */
        dir_cache_sweep(&d->cache, d->list_rev, sweep_notify, d);
        d->revision = MAX(d->revision, d->list_rev);
        d->synced = true;
        watch_open(d);
}

/* Ask for the next page (the first one starts a new listing). */
static void list_page(directory *d) {
        if (d->sync != SYNC_LISTING) {
                d->sync = SYNC_LISTING;
                d->synced = false;
                d->list_rev = 0;
                free(d->list_next);
                d->list_next = malloc(d->names_key_len);
                if (!d->list_next) {
                        d->sync = SYNC_IDLE;
                        sync_retry(d);
                        return;
                }
                memcpy(d->list_next, d->names_key, d->names_key_len);
                d->list_next_len = d->names_key_len;
                dir_cache_mark(&d->cache);
                d->resyncs++;
        }
        char *body = etcd_body_range(d->list_next, d->list_next_len, d->names_end, d->names_end_len, d->list_limit,
                                     d->list_rev);
        if (!body || etcd_call(d->etcd, "/v3/kv/range", body, deadline(d), list_done, d, &d->sync_req) < 0) {
                d->sync = SYNC_IDLE; /* the retry lists again from the start */
                sync_retry(d);
        }
        free(body);
}

/* ---- watching ------------------------------------------------------------ */

static void watch_frame(void *ctx, json_object *res) {
        directory *d = ctx;
        etcd_watch_frame f;
        bool bad = etcd_watch_decode(res, &f) < 0;
        if (bad) {
                d->rejected++;
                etcd_answer_bad(d->etcd, "watch frame is not etcd's"); /* reopened on the next one */
        }
        if (!bad && f.created) {
                d->watch_created = true;
                if (!watch_unstable(d))
                        d->sync_backoff_ns = 0; /* else reopening stays slow */
        }
        bool went_back = !bad && f.created && f.revision > 0 && f.revision < d->revision;
        if (went_back)
                store_went_back(d);
        if (bad || went_back || f.canceled || f.compact_revision > 0) {
                /* Compacted past what we had, cancelled by etcd, or a frame
                 * we cannot read (events may be lost): list everything again. */
                if (bad || (f.canceled && f.compact_revision <= 0))
                        watch_lost(d); /* a compaction is etcd's way, not a loss */
                etcd_cancel(d->sync_req);
                d->sync = SYNC_IDLE;
                d->synced = false;
                sync_retry(d);
                return;
        }
        static etcd_kv kv;
        size_t n = f.events ? json_object_array_length(f.events) : 0;
        for (size_t i = 0; i < n; i++) {
                bool del = false;
                if (etcd_event_decode(json_object_array_get_idx(f.events, i), &del, &kv) < 0) {
                        d->rejected++;
                        if (!kv.key_len)
                                continue;
                        /* A good key with a value we refuse: no record there now. */
                        kv.value_len = 0;
                }
                sync_apply(d, &kv, del);
                d->revision = MAX(d->revision, kv.mod_revision);
        }
}

static void watch_end(void *ctx, int err, json_object *resp) {
        directory *d = ctx;
        (void)err, (void)resp;
        watch_lost(d);
        sync_retry(d);
}

static void watch_open(directory *d) {
        char *body = etcd_body_watch(d->names_key, d->names_key_len, d->names_end, d->names_end_len, d->revision + 1);
        d->sync = SYNC_WATCHING;
        d->watch_created = false;
        d->watch_ep = etcd_current(d->etcd);
        if (!body || etcd_stream(d->etcd, "/v3/watch", body, watch_frame, watch_end, d, &d->sync_req) < 0)
                sync_retry(d);
        free(body);
}

/* ---- heartbeat ----------------------------------------------------------- */

static void heartbeat_arm(directory *d) {
        loop_timer_arm(d->l, &d->heartbeat, now_ns() + (uint64_t)d->heartbeat_ms * 1000000u);
}

/* Reopen the stream on the current endpoint. */
static void watch_reopen(directory *d) {
        if (d->sync != SYNC_WATCHING)
                return;
        etcd_cancel(d->sync_req);
        d->sync_req = NULL;
        d->watch_restarts++;
        watch_open(d);
}

static void heartbeat_done(void *ctx, int err, json_object *resp) {
        directory *d = ctx;
        (void)resp;
        d->heartbeat_req = NULL;
        d->heartbeat_failed = err < 0;
        int64_t rev;
        bool more;
        json_object *kvs;
        if (err == 0 && d->sync == SYNC_WATCHING && etcd_range_decode(resp, &rev, &more, &kvs) == 0 &&
            rev < d->revision) {
                /* A linearizable read is at least as new as every event
                 * the watch gave: the store itself went back. */
                store_went_back(d);
                etcd_cancel(d->sync_req);
                d->sync = SYNC_IDLE;
                d->synced = false;
                sync_retry(d);
        } else if (err < 0 || etcd_current(d->etcd) != d->watch_ep) {
                watch_reopen(d);
        }
        heartbeat_arm(d);
}

static void heartbeat_fn(loop_timer *t) {
        directory *d = container_of(t, directory, heartbeat);
        watch_check_held(d);
        if (d->sync != SYNC_WATCHING) {
                heartbeat_arm(d);
                return;
        }
        /* The one key PREFIX "names/" (no record's), without a value: the
         * answer's header is all we need, and a huge first record must
         * not be read again every heartbeat. */
        char *body = etcd_body_range_keys_only(d->names_key, d->names_key_len);
        /* A sick member is found within heartbeat_ms + request_ms. */
        if (!body || etcd_call(d->etcd, "/v3/kv/range", body, deadline(d), heartbeat_done, d, &d->heartbeat_req) < 0)
                heartbeat_arm(d);
        free(body);
}

void sync_start(directory *d) {
        loop_timer_init(&d->sync_timer, sync_timer_fn);
        loop_timer_init(&d->heartbeat, heartbeat_fn);
        d->sync = SYNC_IDLE;
        d->list_limit = SYNC_PAGE;
        list_page(d);
        heartbeat_arm(d);
}

void sync_stop(directory *d) {
        if (!d->watching)
                return;
        etcd_cancel(d->sync_req);
        etcd_cancel(d->heartbeat_req);
        d->sync_req = d->heartbeat_req = NULL;
        loop_timer_cancel(d->l, &d->sync_timer);
        loop_timer_cancel(d->l, &d->heartbeat);
        d->sync = SYNC_IDLE;
        free(d->list_next);
        d->list_next = NULL;
}
