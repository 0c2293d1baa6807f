/*
 * publish.c — this host's names in etcd, under one lease.
 *
 * THE LEASE: granted with the TTL; kept alive every ttl/3 (the tick). A
 * keepalive that etcd answers with TTL 0 or "lease not found" means the
 * lease is gone (and our keys with it); so does a lease not confirmed for
 * a whole TTL (etcd unreachable: it will have expired there). Then a new
 * lease is granted, as soon as etcd answers, and every name is put again.
 *
 * A NAME (dir_pub) holds its key and its value, rendered once. Its put is
 * confirmed or not. Puts go in BATCHES: one etcd transaction of up to
 * PUB_BATCH puts, at most PUB_WINDOW transactions in flight; names
 * published in one loop round go out together (a flush timer at "now"), and
 * a republication of every name after a new lease costs a few requests,
 * not one per name. Unconfirmed puts (etcd unreachable, a batch in flight
 * when the lease changed) are made again at the next tick. dir_unpublish()
 * deletes the key at once; a delete that fails is retried at the ticks
 * while the same lease lives (with the lease, the key dies anyway).
 *
 * ANOTHER WRITER: a key of ours deleted is put again at once; one
 * overwritten (another value, or another lease) at the next tick. A change
 * by another writer seen while our put is in flight is judged when that put
 * is answered, by revision (rival_rev against the transaction's): a later
 * one overwrote ours. (It used to be ignored, so when two puts crossed, the
 * key could stay the other's for good while we counted it ours.)
 *
 * ANOTHER DAEMON CALLING ITSELF THIS HOST: its puts of our keys come under
 * its own lease, at each of its ticks, as ours do at ours. A key taken so
 * HOST_CONFLICT_TAKEN times within the window (conflict_window_s, [directory]
 * host_conflict_window_s, a minute by default) is a conflict: logged once,
 * said by the health (publish_taken, conflict_told), and from then on a
 * taken key is put again only after a hold that starts at hold_min (a 30th
 * of the window: 2 s for a minute) and doubles, up to hold_max (a third of
 * it: 20 s), at each overwrite (the two daemons no longer flip the record
 * every tick: each holds back in turn). A taken key deleted (the other
 * daemon stopped, or its lease expired) is put again at once. The conflict
 * ends (logged once) when no key was taken for the window, longer than a
 * round of both holds.
 *
 * BOUNDS: DIR_PUBLISH_MAX names (those being deleted included); PUB_WINDOW
 * batches and one delete per name in flight.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "common/ctl.h"
#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/directory/dirstate.h"
#include "daemon/directory/etcdmsg.h"

#define PUB_BATCH 64
#define PUB_WINDOW 2
/* The holds in a conflict: a round of both stays within the window. */
static uint64_t hold_min_ns(const directory *d) { return window_ns(d->conflict_window_s) / 30; }
static uint64_t hold_max_ns(const directory *d) { return window_ns(d->conflict_window_s) / 3; }

typedef struct pub_batch pub_batch;

typedef struct dir_pub {
        struct dlist link;           /* directory.pubs */
        directory *d;
        char name[IPCF_NAME_MAX + 1];
        char *key, *value;
        bool confirmed;
        bool deleting;               /* unpublished: the key is being deleted */
        int64_t lease;               /* of the put in flight or confirmed */
        bool taken;                  /* put by another daemon: held (contest_until_ns) */
        int64_t rival_rev, rival_lease; /* another writer's put of the key seen while
                                         * ours was in flight (0: none): its revision
                                         * and lease, judged when ours is answered */
        bool rival_deleted;          /* ... and that change was a delete */
        pub_batch *batch;            /* the batch its put is in, or NULL */
        unsigned batch_slot;
        etcd_req *req;               /* its delete in flight */
} dir_pub;

/* One transaction of puts in flight. */
struct pub_batch {
        struct dlist link;           /* directory.batches_list */
        directory *d;
        int64_t lease;
        etcd_req *req;
        unsigned n;
        dir_pub *pubs[PUB_BATCH];    /* NULL where a name went meanwhile */
};

static void pub_put(dir_pub *p);
static void conflict_check_over(directory *d);

static uint64_t deadline(const directory *d) { return now_ns() + (uint64_t)d->request_ms * 1000000u; }

static uint64_t tick_ns(const directory *d) { return (uint64_t)d->ttl_s * 1000000000u / 3; }

/* The name's entry, published or being deleted. */
static dir_pub *pub_find(const directory *d, const char *name) {
        dlist_for_each(pos, &d->pubs) {
                dir_pub *p = dlist_entry(pos, dir_pub, link);
                if (!strcmp(p->name, name))
                        return p;
        }
        return NULL;
}

/* Take p out of its batch (the batch's answer no longer concerns it). */
static void pub_unbatch(dir_pub *p) {
        if (p->batch) {
                p->batch->pubs[p->batch_slot] = NULL;
                p->batch = NULL;
        }
}

static void pub_free(dir_pub *p) {
        pub_unbatch(p);
        etcd_cancel(p->req);
        dlist_del(&p->link);
        p->d->n_pubs--;
        free(p->key);
        free(p->value);
        free(p);
}

/* ---- puts and deletes ---------------------------------------------------- */

static void flush(directory *d);
static void key_overwritten(directory *d, dir_pub *p, int64_t lease);

static void batch_done(void *ctx, int err, json_object *resp) {
        pub_batch *b = ctx;
        directory *d = b->d;
        json_object *ok;
        /* A transaction without conditions says "succeeded": true; anything
         * else is not etcd's answer (the puts stay owed, the next member is
         * asked). */
        if (err == 0 && !(json_object_object_get_ex(resp, "succeeded", &ok) &&
                          json_object_is_type(ok, json_type_boolean) && json_object_get_boolean(ok))) {
                etcd_answer_bad(d->etcd, "transaction answer is not etcd's");
                err = -EPROTO;
        }
        /* The revision of our puts: a rival's put seen meanwhile with a
         * later one overwrote ours (one without it: taken as later). */
        int64_t rev = 0;
        if (err == 0 && etcd_header_revision(resp, &rev) < 0)
                rev = 0;
        for (unsigned i = 0; i < b->n; i++) {
                dir_pub *p = b->pubs[i];
                if (!p)
                        continue;
                p->batch = NULL;
                p->confirmed = err == 0 && b->lease == d->lease && d->lease_state == LEASE_HELD;
                bool rival_later = p->confirmed && p->rival_rev && (rev == 0 || p->rival_rev > rev);
                if (rival_later && p->rival_deleted)
                        pub_put(p); /* deleted after ours was put: ours again at once */
                else if (rival_later)
                        key_overwritten(d, p, p->rival_lease);
                p->rival_rev = p->rival_lease = 0;
                p->rival_deleted = false;
        }
        d->batches--;
        dlist_del(&b->link);
        free(b);
        if (err == 0)
                flush(d); /* more waiting? (after a failure: the next tick) */
}

/* Send the unconfirmed puts, PUB_BATCH per transaction, PUB_WINDOW
 * transactions at a time. */
static void flush(directory *d) {
        if (d->lease_state != LEASE_HELD)
                return;
        struct dlist *pos = d->pubs.next;
        while (d->batches < PUB_WINDOW) {
                pub_batch *b = calloc(1, sizeof(*b));
                if (!b)
                        return;
                dlist_init(&b->link);
                const char *keys[PUB_BATCH], *vals[PUB_BATCH];
                for (; pos != &d->pubs && b->n < PUB_BATCH; pos = pos->next) {
                        dir_pub *p = dlist_entry(pos, dir_pub, link);
                        if (p->deleting || p->confirmed || p->batch || (p->taken && now_ns() < d->contest_until_ns))
                                continue;
                        p->taken = false;
                        keys[b->n] = p->key;
                        vals[b->n] = p->value;
                        b->pubs[b->n++] = p;
                }
                char *body = b->n ? etcd_body_txn_puts(keys, vals, b->n, d->lease) : NULL;
                b->d = d;
                b->lease = d->lease;
                if (!body || etcd_call(d->etcd, "/v3/kv/txn", body, deadline(d), batch_done, b, &b->req) < 0) {
                        free(body);
                        free(b);
                        return; /* nothing to send, or the next tick tries again */
                }
                free(body);
                for (unsigned i = 0; i < b->n; i++) {
                        b->pubs[i]->batch = b;
                        b->pubs[i]->batch_slot = i;
                        b->pubs[i]->lease = d->lease;
                        b->pubs[i]->rival_rev = b->pubs[i]->rival_lease = 0;
                        b->pubs[i]->rival_deleted = false;
                }
                d->batches++;
                dlist_add_tail(&d->batch_list, &b->link);
        }
}

static void flush_timer_fn(loop_timer *t) { flush(container_of(t, directory, flush_timer)); }

/* p's put is owed: it goes with the next flush, at the end of this round. */
static void pub_put(dir_pub *p) {
        directory *d = p->d;
        p->confirmed = false;
        if (d->lease_state == LEASE_HELD && !loop_timer_armed(&d->flush_timer))
                loop_timer_arm(d->l, &d->flush_timer, now_ns());
}

static void delete_done(void *ctx, int err, json_object *resp) {
        dir_pub *p = ctx;
        (void)resp;
        p->req = NULL;
        if (err == 0 || p->lease != p->d->lease)
                pub_free(p); /* deleted, or gone with its lease */
}

static void pub_delete(dir_pub *p) {
        directory *d = p->d;
        if (p->req)
                return;
        char *body = etcd_body_delete(p->key, strlen(p->key));
        if (body)
                etcd_call(d->etcd, "/v3/kv/deleterange", body, deadline(d), delete_done, p, &p->req);
        free(body);
}

/* Every name not confirmed under the current lease: put it (again); every
 * delete still owed: try it again. */
static void pubs_catch_up(directory *d) {
        dlist_for_each_safe(pos, tmp, &d->pubs) {
                dir_pub *p = dlist_entry(pos, dir_pub, link);
                if (p->deleting) {
                        if (p->lease != d->lease || d->lease_state == LEASE_NONE)
                                pub_free(p);
                        else
                                pub_delete(p);
                } else if (p->lease != d->lease) {
                        p->confirmed = false;
                }
        }
        flush(d);
}

/* ---- the lease ----------------------------------------------------------- */

static void lease_grant(directory *d);

static void lease_lost(directory *d) {
        d->lease_state = LEASE_NONE;
        d->lease = 0;
        dlist_for_each_safe(pos, tmp, &d->pubs) {
                dir_pub *p = dlist_entry(pos, dir_pub, link);
                if (!p->deleting) { /* a batch in flight answers for the old lease: ignored */
                        pub_unbatch(p);
                        p->confirmed = false;
                }
        }
        pubs_catch_up(d); /* owed deletes die with the lease */
        lease_grant(d);
}

static void lease_arm(directory *d, uint64_t at) { loop_timer_arm(d->l, &d->lease_timer, at); }

static void grant_done(void *ctx, int err, json_object *resp) {
        directory *d = ctx;
        d->lease_req = NULL;
        int64_t id = 0, ttl = 0;
        if (err < 0 || !etcd_json_i64(resp, "ID", &id) || !etcd_json_i64(resp, "TTL", &ttl) || id == 0 || ttl <= 0) {
                if (err == 0) /* not etcd's answer: ask the next member */
                        etcd_answer_bad(d->etcd, "lease grant answer is not etcd's");
                d->lease_state = LEASE_NONE;
                lease_arm(d, now_ns() + MIN(tick_ns(d), 1000000000ull));
                return;
        }
        d->lease = id;
        d->lease_state = LEASE_HELD;
        d->lease_ok_ns = now_ns();
        d->leases_granted++;
        pubs_catch_up(d);
        lease_arm(d, now_ns() + tick_ns(d));
}

static void lease_grant(directory *d) {
        if (d->lease_req || !d->host[0])
                return;
        d->lease_state = LEASE_GRANTING;
        char *body = etcd_body_lease_grant(d->ttl_s);
        if (!body || etcd_call(d->etcd, "/v3/lease/grant", body, deadline(d), grant_done, d, &d->lease_req) < 0) {
                d->lease_state = LEASE_NONE;
                lease_arm(d, now_ns() + tick_ns(d));
        }
        free(body);
}

static void keepalive_done(void *ctx, int err, json_object *resp) {
        directory *d = ctx;
        d->lease_req = NULL;
        json_object *res = NULL;
        int64_t ttl = 0;
        if (err == 0) {
                /* A stream RPC: the answer is {"result": {"ID", "TTL"}}. */
                if (!json_object_object_get_ex(resp, "result", &res) || !etcd_json_i64(res, "TTL", &ttl)) {
                        etcd_answer_bad(d->etcd, "keepalive answer is not etcd's");
                        err = -EPROTO;
                }
        }
        if (err == -ENOENT || (err == 0 && ttl <= 0)) {
                lease_lost(d); /* expired at etcd */
                return;
        }
        if (err == 0) {
                d->lease_ok_ns = now_ns();
                conflict_check_over(d);
                pubs_catch_up(d);
        } else if (now_ns() - d->lease_ok_ns >= (uint64_t)d->ttl_s * 1000000000u) {
                lease_lost(d); /* not confirmed for a TTL: it expired there */
                return;
        }
        lease_arm(d, now_ns() + tick_ns(d));
}

static void lease_timer_fn(loop_timer *t) {
        directory *d = container_of(t, directory, lease_timer);
        if (d->lease_req)
                return;
        if (d->lease_state != LEASE_HELD) {
                lease_grant(d);
                return;
        }
        char *body = etcd_body_lease_id(d->lease);
        /* A keepalive must not outlive its tick. */
        uint64_t dl = now_ns() + MIN((uint64_t)d->request_ms * 1000000u, tick_ns(d));
        if (!body || etcd_call(d->etcd, "/v3/lease/keepalive", body, dl, keepalive_done, d, &d->lease_req) < 0)
                lease_arm(d, now_ns() + tick_ns(d));
        free(body);
}

/* ---- the face ------------------------------------------------------------ */

bool dir_published(const directory *d, const char *name) {
        const dir_pub *p = pub_find(d, name);
        return p && !p->deleting;
}

int dir_publish(directory *d, const char *name, const dir_attr *attrs, unsigned n_attrs) {
        if (!d->host[0] || !ctl_name_valid(name) || n_attrs > DIR_ATTRS_MAX)
                return -EINVAL;
        static dir_record rec;
        memset(&rec, 0, sizeof(rec));
        str_copy(rec.name, name, sizeof(rec.name));
        str_copy(rec.host, d->host, sizeof(rec.host));
        str_copy(rec.addr, d->addr, sizeof(rec.addr));
        str_copy(rec.fp, d->fp, sizeof(rec.fp));
        str_copy(rec.key, d->key, sizeof(rec.key));
        for (unsigned i = 0; i < n_attrs; i++) {
                if (!dir_attr_valid(attrs[i].key, attrs[i].val))
                        return -EINVAL;
                rec.attrs[i] = attrs[i];
        }
        rec.n_attrs = n_attrs;
        char key[DIR_KEY_MAX + 1], value[DIR_VALUE_MAX + 1];
        int r = dir_value_make(&rec, value, sizeof(value));
        if (r < 0)
                return r == -EMSGSIZE ? -EINVAL : r;
        if (dir_key_make(d->prefix, name, d->host, key, sizeof(key)) < 0)
                return -EINVAL;
        dir_pub *p = pub_find(d, name);
        if (p) { /* new attributes, or published again while its delete was owed: put */
                p->deleting = false;
                char *v = strdup(value);
                if (!v)
                        return -ENOMEM;
                free(p->value);
                p->value = v;
                etcd_cancel(p->req); /* a delete owed */
                p->req = NULL;
                pub_unbatch(p);
                pub_put(p);
                return 0;
        }
        if (d->n_pubs >= DIR_PUBLISH_MAX)
                return -ENOSPC;
        p = calloc(1, sizeof(*p));
        if (!p || !(p->key = strdup(key)) || !(p->value = strdup(value))) {
                if (p)
                        free(p->key);
                free(p);
                return -ENOMEM;
        }
        p->d = d;
        str_copy(p->name, name, sizeof(p->name));
        dlist_add_tail(&d->pubs, &p->link);
        d->n_pubs++;
        pub_put(p);
        return 0;
}

int dir_unpublish(directory *d, const char *name) {
        dir_pub *p = pub_find(d, name);
        if (!p || p->deleting)
                return -ENOENT;
        pub_unbatch(p);
        p->deleting = true;
        if (d->lease_state != LEASE_HELD) {
                pub_free(p); /* nothing of it can be in etcd under a live lease */
                return 0;
        }
        pub_delete(p);
        return 0;
}

void publish_key_lost(directory *d, const char *name, int64_t mod_revision) {
        dir_pub *p = pub_find(d, name);
        if (p && !p->deleting && p->batch && mod_revision > p->rival_rev) {
                p->rival_rev = mod_revision; /* judged when ours is answered (batch_done) */
                p->rival_lease = 0;
                p->rival_deleted = true;
        } else if (p && !p->deleting && !p->batch && (p->confirmed || p->taken)) {
                p->taken = false;
                pub_put(p); /* someone deleted it (or the daemon that took it is gone): ours again */
        }
}

/* ---- another daemon calling itself this host -------------------------------- */

unsigned publish_taken(const directory *d, int64_t *ret_lease, uint64_t *ret_hold_ns) {
        unsigned n = recent_count(&d->taken, now_ns(), window_ns(d->conflict_window_s));
        if (ret_lease)
                *ret_lease = d->taken_lease;
        if (ret_hold_ns)
                *ret_hold_ns = d->contest_backoff_ns;
        return n;
}

static bool host_conflict(const directory *d) { return publish_taken(d, NULL, NULL) >= HOST_CONFLICT_TAKEN; }

/* Our key for p was put under lease, another daemon's: count it; in a
 * conflict, hold p back (the hold doubling at each overwrite). */
static void key_taken(directory *d, dir_pub *p, int64_t lease) {
        recent_note(&d->taken, now_ns());
        d->taken_lease = lease;
        if (!d->conflict_told && !host_conflict(d))
                return;
        if (!d->conflict_told) {
                d->conflict_told = true;
                char window[16], hmin[24], hmax[24];
                log_error("directory: another daemon (lease %" PRIx64 ") keeps taking this host's records (%s, ...): "
                          "%u times in the last %s; is another daemon configured as host %s? this one puts "
                          "them again only after a growing hold (%s up to %s)",
                          (uint64_t)lease, p->name, publish_taken(d, NULL, NULL),
                          dir_window_text(d->conflict_window_s, window), d->host,
                          dir_seconds_text(hold_min_ns(d), hmin), dir_seconds_text(hold_max_ns(d), hmax));
        }
        d->contest_backoff_ns = d->contest_backoff_ns ? MIN(d->contest_backoff_ns * 2, hold_max_ns(d))
                                                      : hold_min_ns(d);
        d->contest_until_ns = now_ns() + d->contest_backoff_ns;
        p->taken = true;
}

/* A conflict nobody has renewed for the window is over: say so once. */
static void conflict_check_over(directory *d) {
        if (d->conflict_told && now_ns() - recent_last(&d->taken) >= window_ns(d->conflict_window_s)) {
                char window[16];
                d->conflict_told = false;
                d->contest_backoff_ns = 0;
                log_info("directory: no other daemon has taken this host's records in the last %s",
                         dir_window_text(d->conflict_window_s, window));
        }
}

/* Another writer's value or lease (garbage, or a copy that would outlive
 * us) holds p's key: ours again at the next tick -- not at once, so two
 * daemons both calling themselves this host do not make etcd spin; under
 * another daemon's lease again and again: after a hold. */
static void key_overwritten(directory *d, dir_pub *p, int64_t lease) {
        p->confirmed = false;
        if (lease != 0 && lease != p->lease && lease != d->lease)
                key_taken(d, p, lease);
}

void publish_key_seen(directory *d, const char *name, int64_t lease, int64_t mod_revision,
                      const uint8_t *value, size_t len) {
        dir_pub *p = pub_find(d, name);
        if (!p || p->deleting)
                return;
        if (lease == p->lease && len == strlen(p->value) && !memcmp(value, p->value, len))
                return; /* our own put */
        if (p->batch) {
                /* Ours is in flight: whether this came before or after it,
                 * its answer's revision tells (batch_done). Before, such a
                 * put was ignored, and when it came after ours the key stayed
                 * the rival's while we took it for ours. */
                if (mod_revision > p->rival_rev) {
                        p->rival_rev = mod_revision;
                        p->rival_lease = lease;
                }
                return;
        }
        if (p->confirmed)
                key_overwritten(d, p, lease);
}

void publish_revoke(directory *d, long timeout_ms) {
        if (d->lease_state != LEASE_HELD)
                return;
        char *body = etcd_body_lease_id(d->lease);
        if (body)
                etcd_call_now(d->etcd, "/v3/lease/revoke", body, timeout_ms);
        free(body);
        d->lease_state = LEASE_NONE;
}

void publish_start(directory *d) {
        dlist_init(&d->pubs);
        dlist_init(&d->batch_list);
        loop_timer_init(&d->lease_timer, lease_timer_fn);
        loop_timer_init(&d->flush_timer, flush_timer_fn);
        lease_grant(d);
}

void publish_stop(directory *d) {
        etcd_cancel(d->lease_req);
        d->lease_req = NULL;
        loop_timer_cancel(d->l, &d->lease_timer);
        loop_timer_cancel(d->l, &d->flush_timer);
        while (!dlist_empty(&d->pubs))
                pub_free(dlist_entry(d->pubs.next, dir_pub, link));
        while (!dlist_empty(&d->batch_list)) {
                pub_batch *b = dlist_entry(d->batch_list.next, pub_batch, link);
                etcd_cancel(b->req);
                dlist_del(&b->link);
                free(b);
        }
        d->batches = 0;
}

size_t publish_unconfirmed(const directory *d) {
        size_t n = 0;
        dlist_for_each(pos, &d->pubs) {
                const dir_pub *p = dlist_entry(pos, dir_pub, link);
                n += !p->deleting && !p->confirmed;
        }
        return n;
}
