/*
 * test-daemon-directory.c — the directory module (src/daemon/directory/)
 * for real: a three-member etcd cluster on loopback, and several instances
 * of the module (simulated daemons, each with its own etcd connections)
 * driven by the daemon's event loop; a publisher in a child process killed
 * with SIGKILL; members killed one and all; records written straight into
 * etcd by a hostile writer. The cache, keys and records also get unit
 * tests without etcd.
 */
#include <json-c/json.h>
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/util.h"
#include "daemon/directory/cache.h"
#include "daemon/directory/directory.h"
#include "daemon/directory/etcd.h"
#include "daemon/directory/etcdmsg.h"
#include "daemon/directory/record.h"
#include "support/etcdcluster.h"
#include "support/loopwait.h"
#include "support/shell.h"
#include "support/test.h"

#define TTL_S 2

/* ---- units: keys, records, cache ---------------------------------------- */

#define ATTR_VAL_16 "0123456789abcdef"
#define ATTR_VAL_128 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16 ATTR_VAL_16

TEST(directory_keys_and_records) {
        dir_record r = { 0 }, back;
        char buf[DIR_VALUE_MAX + 1];
        uint8_t key[DIR_KEY_MAX + 1];
        CHECK_EQ(dir_key_make("/p/", "a/b@c", "hostB", (char *)key, sizeof(key)), strlen("/p/names/a/b@c/hostB"));
        CHECK_OK(dir_key_parse("/p/", key, strlen((char *)key), &back));
        CHECK(!strcmp(back.name, "a/b@c") && !strcmp(back.host, "hostB"));
        /* Not ours, no host, bad host, empty name, a NUL, another prefix. */
        const char *bad[] = { "/p/names/x", "/p/names/x/", "/p/names/x/h h", "/p/names//h", "/q/names/x/h",
                              "/p/nameX/x/h", "/p/names/x/h!" };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
                CHECK_ERR(dir_key_parse("/p/", (const uint8_t *)bad[i], strlen(bad[i]), &back), -EINVAL);
        CHECK_ERR(dir_key_parse("/p/", (const uint8_t *)"/p/names/a\0b/h", 14, &back), -EINVAL);

        str_copy(r.addr, "127.0.0.1:7000", sizeof(r.addr));
        str_copy(r.fp, "sha256:abcd", sizeof(r.fp));
        str_copy(r.key, "bfULdmSbIPeW7a+VziUKBbjBGvAopCSNlHYpLrCdaW8=", sizeof(r.key));
        r.n_attrs = 2;
        str_copy(r.attrs[0].key, "zone", sizeof(r.attrs[0].key));
        str_copy(r.attrs[0].val, "rack \"4\" \\", sizeof(r.attrs[0].val));
        str_copy(r.attrs[1].key, "w", sizeof(r.attrs[1].key));
        int n = CHECK_OK(dir_value_make(&r, buf, sizeof(buf)));
        memset(&back, 0, sizeof(back));
        CHECK_OK(dir_value_parse((uint8_t *)buf, (size_t)n, &back));
        CHECK(!strcmp(back.addr, r.addr) && !strcmp(back.fp, r.fp) && !strcmp(back.key, r.key));
        CHECK_EQ(back.n_attrs, 2);
        CHECK(!strcmp(back.attrs[0].val, "rack \"4\" \\") || !strcmp(back.attrs[1].val, "rack \"4\" \\"));

        const char *vals[] = {
                "", "null", "[]", "{}", "{\"v\":2,\"addr\":\"a\",\"fp\":\"\"}", "{\"v\":\"1\",\"addr\":\"a\",\"fp\":\"\"}",
                "{\"v\":1,\"fp\":\"\"}", "{\"v\":1,\"addr\":\"\",\"fp\":\"\"}", "{\"v\":1,\"addr\":\"a b\",\"fp\":\"\"}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":7}", "{\"v\":1,\"addr\":\"a\\u0000b\",\"fp\":\"\"}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":[]}", "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":1}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"bad key\":\"x\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"a\":\"1\",\"b\":\"1\",\"c\":\"1\",\"d\":\"1\",\"e\":\"1\",\"f\":\"1\",\"g\":\"1\",\"h\":\"1\",\"i\":\"1\"}}",
                /* attributes that are not ours: an empty key, a key or value too long, a
                 * control byte or a NUL in a value, a value not a string, attrs null */
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"\":\"x\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k23456789012345678901234567890123\":\"x\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":\"" ATTR_VAL_128 "\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":\"a\\u0001\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":\"a\\u0000b\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":{\"x\":\"y\"}}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":null}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":null}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"attrs\":{\"k\":\"caf\\u00e9\"}}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"key\":7}", "{\"v\":1,\"addr\":\"a\",\"fp\":\"\",\"key\":\"a b\"}",
                "{\"v\":1,\"addr\":\"a\",\"fp\":\"\"} x", "{\"v\":1,\"addr\":\"a\",\"fp\":\"\"",
                "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
        };
        for (size_t i = 0; i < ARRAY_SIZE(vals); i++)
                CHECK_ERR(dir_value_parse((const uint8_t *)vals[i], strlen(vals[i]), &back), -EINVAL);
        static char big[DIR_VALUE_MAX + 2];
        memset(big, ' ', sizeof(big) - 1);
        CHECK_ERR(dir_value_parse((const uint8_t *)big, sizeof(big) - 1, &back), -EMSGSIZE);
        /* Unknown fields are tolerated. */
        const char *later = "{\"v\":1,\"addr\":\"a:1\",\"fp\":\"\",\"new\":{\"x\":[1,2]}}";
        CHECK_OK(dir_value_parse((const uint8_t *)later, strlen(later), &back));
        CHECK(back.key[0] == 0); /* no key: "" */
        /* A key given twice in attrs is one attribute (json-c keeps the last). */
        const char *twice = "{\"v\":1,\"addr\":\"a:1\",\"fp\":\"\",\"attrs\":{\"k\":\"1\",\"k\":\"2\"}}";
        CHECK_OK(dir_value_parse((const uint8_t *)twice, strlen(twice), &back));
        CHECK_EQ(back.n_attrs, 1);
        CHECK(!strcmp(back.attrs[0].key, "k") && !strcmp(back.attrs[0].val, "2"));

        char name[IPCF_NAME_MAX + 1], host[DIR_HOST_MAX + 1];
        CHECK_OK(dir_split_pinned("printer@hostB", name, host));
        CHECK(!strcmp(name, "printer") && !strcmp(host, "hostB"));
        CHECK_OK(dir_split_pinned("mail@x@h-1", name, host));
        CHECK(!strcmp(name, "mail@x") && !strcmp(host, "h-1"));
        CHECK_OK(dir_split_pinned("plain", name, host));
        CHECK(!strcmp(name, "plain") && !host[0]);
        CHECK_OK(dir_split_pinned("a@b!c", name, host)); /* not a host: all name */
        CHECK(!strcmp(name, "a@b!c") && !host[0]);
        CHECK_ERR(dir_split_pinned("", name, host), -EINVAL);
        CHECK_ERR(dir_split_pinned("a b", name, host), -EINVAL);
}

static dir_record rec_of(const char *name, const char *host, const char *addr) {
        dir_record r = { 0 };
        str_copy(r.name, name, sizeof(r.name));
        str_copy(r.host, host, sizeof(r.host));
        str_copy(r.addr, addr, sizeof(r.addr));
        return r;
}

TEST(directory_cache_units) {
        dir_cache c;
        dir_cache_init(&c, 4);
        dir_record a = rec_of("svc", "h1", "1:1"), b = rec_of("svc", "h2", "2:2"), x = rec_of("x", "h1", "1:1");
        CHECK_EQ(dir_cache_put(&c, &a, 10, 0), DIR_NAME_UP);
        CHECK_EQ(dir_cache_put(&c, &b, 11, 0), DIR_HOST_UP);
        CHECK_EQ(dir_cache_put(&c, &x, 12, 0), DIR_NAME_UP);
        /* Older news is ignored; newer replaces in place. */
        dir_record a_old = rec_of("svc", "h1", "old:1");
        CHECK_EQ(dir_cache_put(&c, &a_old, 9, 0), DIR_SAME);
        dir_record got;
        dir_entry *e = dir_cache_pick(&c, "svc", "h1", NULL);
        CHECK(e && !strcmp(e->addr, "1:1"));
        dir_record a_new = rec_of("svc", "h1", "new:1");
        CHECK_EQ(dir_cache_put(&c, &a_new, 13, 0), DIR_SAME);
        e = dir_cache_pick(&c, "svc", "h1", NULL);
        CHECK(e && !strcmp(e->addr, "new:1"));
        /* Round robin over the hosts, and skipping one. */
        int h1 = 0, h2 = 0;
        for (int i = 0; i < 10; i++) {
                dir_entry_to_record(dir_cache_pick(&c, "svc", NULL, NULL), &got);
                h1 += !strcmp(got.host, "h1");
                h2 += !strcmp(got.host, "h2");
        }
        CHECK_EQ(h1, 5);
        CHECK_EQ(h2, 5);
        for (int i = 0; i < 4; i++)
                CHECK(!strcmp(dir_cache_pick(&c, "svc", NULL, "h1")->host, "h2"));
        CHECK(dir_cache_pick(&c, "x", NULL, "h1") == NULL);
        CHECK(dir_cache_pick(&c, "nope", NULL, NULL) == NULL);
        /* The bound. */
        dir_record y = rec_of("y", "h", "1:1"), z = rec_of("z", "h", "1:1");
        CHECK_EQ(dir_cache_put(&c, &y, 14, 0), DIR_NAME_UP);
        CHECK_ERR(dir_cache_put(&c, &z, 15, 0), -ENOSPC);
        CHECK(c.overflowed);
        CHECK_EQ(c.n_entries, 4);
        /* Deletes: older than the entry ignored; the last host takes the name. */
        CHECK_EQ(dir_cache_del(&c, "svc", "h1", 12), DIR_SAME);
        CHECK_EQ(dir_cache_del(&c, "svc", "h1", 20), DIR_HOST_DOWN);
        CHECK_EQ(dir_cache_del(&c, "svc", "h2", 0), DIR_NAME_DOWN);
        CHECK_ERR(dir_cache_del(&c, "svc", "h2", 0), -ENOENT);
        CHECK(dir_cache_find(&c, "svc") == NULL);
        /* Sweep: what a new listing did not see goes, unless newer. */
        dir_cache_mark(&c);
        CHECK_EQ(dir_cache_put(&c, &x, 12, 0), DIR_SAME);
        CHECK_EQ(dir_cache_sweep(&c, 14, NULL, NULL), 1); /* y (rev 14) went, x stayed */
        CHECK(dir_cache_find(&c, "x") && !dir_cache_find(&c, "y"));
        size_t bytes = c.bytes;
        CHECK(bytes > 0);
        CHECK_EQ(dir_cache_del(&c, "x", "h1", 0), DIR_NAME_DOWN);
        CHECK_EQ(c.n_names, 0);
        CHECK(c.bytes < bytes);
        dir_cache_deinit(&c);

        /* Many names: the table grows, every one is found. */
        dir_cache_init(&c, 100000);
        for (int i = 0; i < 20000; i++) {
                char nm[32];
                snprintf(nm, sizeof(nm), "n%d", i);
                dir_record r = rec_of(nm, "h", "1:1");
                CHECK_EQ(dir_cache_put(&c, &r, i + 1, 0), DIR_NAME_UP);
        }
        for (int i = 0; i < 20000; i += 7) {
                char nm[32];
                snprintf(nm, sizeof(nm), "n%d", i);
                CHECK(dir_cache_find(&c, nm));
        }
        CHECK(c.n_buckets >= 20000);
        dir_cache_deinit(&c);
}

/* ---- instances on a real cluster ----------------------------------------- */

typedef struct seen {
        int name_up, name_down, host_up, host_down;
        char last_name[IPCF_NAME_MAX + 1], last_host[DIR_HOST_MAX + 1];
        int last_change;
} seen;

static void observe(void *ctx, const char *name, const char *host, int change) {
        seen *s = ctx;
        s->name_up += change == DIR_NAME_UP;
        s->name_down += change == DIR_NAME_DOWN;
        s->host_up += change == DIR_HOST_UP;
        s->host_down += change == DIR_HOST_DOWN;
        str_copy(s->last_name, name, sizeof(s->last_name));
        str_copy(s->last_host, host, sizeof(s->last_host));
        s->last_change = change;
}

static directory *instance(loop *l, etcd_cluster *c, int first, const char *host, seen *s) {
        dir_opts o = { .etcd = { .n_endpoints = (size_t)c->n, .attempt_timeout_ms = 500 },
                       .prefix = "/test/", .ttl_s = TTL_S, .request_timeout_ms = 2000, .heartbeat_ms = 500 };
        for (int i = 0; i < c->n; i++)
                o.etcd.endpoints[i] = c->client_url[(first + i) % c->n];
        char addr[64];
        if (host) {
                snprintf(addr, sizeof(addr), "10.0.0.%d:7000", host[strlen(host) - 1]);
                o.host = host;
                o.addr = addr;
                o.fp = "fp-of-";
        }
        directory *d;
        CHECK_OK(dir_new(l, &o, &d));
        if (s)
                dir_set_observer(d, observe, s);
        return d;
}

typedef struct lookfor {
        directory *d;
        const char *name, *host;
        int want; /* 1: found, -ENOENT: known absent */
} lookfor;

static bool lookup_is(void *ctx) {
        lookfor *q = ctx;
        dir_record r;
        return dir_lookup(q->d, q->name, q->host, &r) == q->want;
}

static void wait_lookup(loop *l, directory *d, const char *name, const char *host, int want, int ms) {
        lookfor q = { d, name, host, want };
        if (!loop_wait(l, lookup_is, &q, ms))
                test_fail(__FILE__, __LINE__, "lookup of %s@%s did not become %d", name, host ? host : "", want);
}

static bool is_live_published(void *ctx) {
        dir_health h;
        dir_health_get(ctx, &h);
        return h.live && h.lease && h.unconfirmed == 0;
}

static bool is_live(void *ctx) {
        dir_health h;
        dir_health_get(ctx, &h);
        return h.live;
}

typedef struct answer {
        bool done;
        int err;
        dir_record rec;
        uint64_t at_ns;
} answer;

static void on_answer(void *ctx, int err, const dir_record *rec) {
        answer *a = ctx;
        a->done = true;
        a->err = err;
        a->at_ns = now_ns();
        if (rec)
                a->rec = *rec;
}

static bool answered(void *ctx) { return ((answer *)ctx)->done; }

static answer resolve(loop *l, directory *d, const char *name, const char *host, int deadline_ms) {
        answer a = { 0 };
        CHECK_OK(dir_resolve(d, name, host, now_ns() + (uint64_t)deadline_ms * 1000000u, on_answer, &a, NULL));
        CHECK(!a.done); /* never answered inside the call */
        CHECK(loop_wait(l, answered, &a, deadline_ms + 5000));
        return a;
}

TEST_TIMEOUT(directory_publish_resolve_spread_pin_events, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        seen sa = { 0 }, sb = { 0 }, sc = { 0 };
        directory *a = instance(l, &c, 0, "hostA", &sa), *b = instance(l, &c, 1, "hostB", &sb),
                  *v = instance(l, &c, 2, NULL, &sc);
        dir_attr at[2] = { { "zone", "r1" }, { "weight", "3" } };
        CHECK_OK(dir_publish(a, "printer", at, 2));
        CHECK_OK(dir_publish(a, "scanner", NULL, 0));
        CHECK(loop_wait(l, is_live_published, a, 10000));

        /* B and the resolve-only instance see them through their watches. */
        wait_lookup(l, b, "printer", NULL, 1, 5000);
        wait_lookup(l, v, "scanner", NULL, 1, 5000);
        dir_record r;
        CHECK_EQ(dir_lookup(b, "printer", NULL, &r), 1);
        CHECK(!strcmp(r.host, "hostA") && !strcmp(r.addr, "10.0.0.65:7000") && !strcmp(r.fp, "fp-of-"));
        CHECK_EQ(r.n_attrs, 2);
        CHECK_EQ(sb.name_up, 2);
        CHECK_EQ(sc.name_up, 2);

        /* A second host publishes printer: spread across both, pin one. */
        CHECK_OK(dir_publish(b, "printer", NULL, 0));
        lookfor q = { v, "printer", "hostB", 1 };
        CHECK(loop_wait(l, lookup_is, &q, 5000));
        CHECK_EQ(sc.host_up, 1);
        int on_a = 0, on_b = 0;
        for (int i = 0; i < 10; i++) {
                CHECK_EQ(dir_lookup(v, "printer", NULL, &r), 1);
                on_a += !strcmp(r.host, "hostA");
                on_b += !strcmp(r.host, "hostB");
        }
        CHECK_EQ(on_a, 5);
        CHECK_EQ(on_b, 5);
        for (int i = 0; i < 3; i++) {
                CHECK_EQ(dir_lookup(v, "printer", "hostB", &r), 1);
                CHECK(!strcmp(r.host, "hostB"));
        }
        /* (a miss is an answer only while the cache is live: a heartbeat
         * late on a loaded machine makes it -EAGAIN for a while) */
        wait_lookup(l, v, "printer", "hostC", -ENOENT, 5000);
        /* A host's own records are skipped unless pinned. */
        wait_lookup(l, a, "printer", "hostB", 1, 5000);
        for (int i = 0; i < 4; i++) {
                CHECK_EQ(dir_lookup(a, "printer", NULL, &r), 1);
                CHECK(!strcmp(r.host, "hostB"));
        }
        CHECK_EQ(dir_lookup(a, "printer", "hostA", &r), 1);
        wait_lookup(l, a, "scanner", NULL, -ENOENT, 5000);

        /* The cold path gives the same answers: one range read. */
        answer ans = resolve(l, v, "printer", "hostA", 3000);
        CHECK_OK(ans.err);
        CHECK(!strcmp(ans.rec.host, "hostA") && ans.rec.n_attrs == 2);
        ans = resolve(l, v, "nothing", NULL, 3000);
        CHECK_ERR(ans.err, -ENOENT);
        CHECK_ERR(dir_resolve(v, "bad name", NULL, now_ns() + 1000000000u, on_answer, &ans, NULL), -EINVAL);

        /* Unpublished: gone at once (no TTL), everywhere, with events. */
        CHECK_OK(dir_unpublish(a, "scanner"));
        CHECK_ERR(dir_unpublish(a, "scanner"), -ENOENT);
        wait_lookup(l, v, "scanner", NULL, -ENOENT, 5000);
        CHECK_EQ(dir_lookup(v, "printer", "hostA", &r), 1); /* same lease: not by its expiry */
        CHECK_EQ(sc.name_down, 1);
        CHECK(!strcmp(sc.last_name, "scanner"));
        CHECK_OK(dir_unpublish(a, "printer"));
        q = (lookfor){ v, "printer", "hostA", -ENOENT };
        CHECK(loop_wait(l, lookup_is, &q, 5000));
        CHECK_EQ(sc.host_down, 1);
        CHECK_EQ(dir_lookup(v, "printer", NULL, &r), 1);
        CHECK(!strcmp(r.host, "hostB"));

        /* Attributes updated in place. */
        dir_attr at2 = { "zone", "r9" };
        CHECK_OK(dir_publish(b, "printer", &at2, 1));
        bool updated = false;
        for (int i = 0; i < 500 && !updated; i++) {
                loop_wait(l, NULL, NULL, 10);
                updated = dir_lookup(v, "printer", NULL, &r) == 1 && r.n_attrs == 1 && !strcmp(r.attrs[0].val, "r9");
        }
        CHECK(updated);

        /* Refusals. */
        CHECK_ERR(dir_publish(v, "x", NULL, 0), -EINVAL); /* no host configured */
        CHECK_ERR(dir_publish(a, "a b", NULL, 0), -EINVAL);
        dir_attr badattr = { "bad key", "v" };
        CHECK_ERR(dir_publish(a, "ok", &badattr, 1), -EINVAL);
        CHECK_ERR(dir_unpublish(a, "never"), -ENOENT);

        dir_health h;
        dir_health_get(v, &h);
        CHECK(h.synced && h.live && h.complete);
        CHECK(h.revision > 0);
        CHECK_EQ(h.names, 1);
        CHECK_EQ(h.entries, 1);
        CHECK(h.bytes > 0);
        CHECK_EQ(h.rejected, 0);
        dir_free(a);
        dir_free(b);
        dir_free(v);
        loop_free(l);
        etcd_cluster_stop(&c);
}

static etcd_cluster *child_cluster;

/* A publisher in a child process: publishes "ghost" and runs until killed. */
static void publisher_child(void *arg) {
        (void)arg;
        loop *l;
        CHECK_OK(loop_new(&l));
        directory *d = instance(l, child_cluster, 0, "hostG", NULL);
        CHECK_OK(dir_publish(d, "ghost", NULL, 0));
        loop_wait(l, NULL, NULL, 60000);
}

TEST_TIMEOUT(directory_lease_expires_when_publisher_killed, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        child_cluster = &c;
        pid_t child = test_fork(publisher_child, NULL);
        loop *l;
        CHECK_OK(loop_new(&l));
        seen s = { 0 };
        directory *v = instance(l, &c, 1, NULL, &s);
        wait_lookup(l, v, "ghost", NULL, 1, 10000);
        /* Alive, the lease is kept: still there after two TTLs. */
        loop_wait(l, NULL, NULL, 2 * TTL_S * 1000);
        dir_record r;
        CHECK_EQ(dir_lookup(v, "ghost", NULL, &r), 1);
        CHECK_EQ(s.name_down, 0);
        /* Its key is under a lease of TTL_S (etcd says so). How much of the
         * lease is left at the kill depends on when the last keepalive got
         * through (late on a loaded machine: less than a third of the TTL
         * was seen), so the wait for its end is not timed from below. */
        char *kv = TEST_SH_OK("curl -sf --max-time 10 -X POST %s/v3/kv/range -d '{\"key\":\"%s\"}'",
                              c.client_url[1], "L3Rlc3QvbmFtZXMvZ2hvc3QvaG9zdEc="); /* /test/names/ghost/hostG */
        const char *id = strstr(kv, "\"lease\":\"");
        CHECK(id != NULL);
        char *lease = TEST_SH_OK("curl -sf --max-time 10 -X POST %s/v3/lease/timetolive -d '{\"ID\":%lld}'",
                                 c.client_url[1], strtoll(id + strlen("\"lease\":\""), NULL, 10));
        char want_ttl[32];
        snprintf(want_ttl, sizeof(want_ttl), "\"grantedTTL\":\"%d\"", TTL_S);
        if (!strstr(lease, want_ttl))
                test_fail(__FILE__, __LINE__, "the lease of ghost's key: %s", lease);
        free(kv);
        free(lease);

        CHECK_OK(kill(child, SIGKILL));
        CHECK_EQ(test_wait(child, 5000), 128 + SIGKILL);
        uint64_t t0 = now_ns();
        /* Gone by the lease: within the TTL plus etcd's expiry check. */
        wait_lookup(l, v, "ghost", NULL, -ENOENT, TTL_S * 1000 + 5000);
        uint64_t ms = (now_ns() - t0) / 1000000u;
        CHECK_EQ(s.name_down, 1);
        answer a = resolve(l, v, "ghost", NULL, 3000);
        CHECK_ERR(a.err, -ENOENT);
        printf("    lease expiry seen %llu ms after kill -9 (TTL %d s)\n", (unsigned long long)ms, TTL_S);
        dir_free(v);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(directory_one_member_killed_everything_works, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        seen sb = { 0 };
        /* Both instances use member 0 first: it is the one to die. */
        directory *a = instance(l, &c, 0, "hostA", NULL), *b = instance(l, &c, 0, "hostB", &sb);
        CHECK_OK(dir_publish(a, "before", NULL, 0));
        CHECK(loop_wait(l, is_live_published, a, 10000));
        wait_lookup(l, b, "before", NULL, 1, 5000);
        dir_health h;
        dir_health_get(a, &h);
        int64_t lease = h.lease;

        etcd_cluster_kill(&c, 0);
        /* Publishing, watching and the lease carry on through the others. */
        CHECK_OK(dir_publish(a, "after", NULL, 0));
        wait_lookup(l, b, "after", NULL, 1, 10000);
        CHECK(loop_wait(l, is_live, b, 10000));
        loop_wait(l, NULL, NULL, 2 * TTL_S * 1000);
        dir_record r;
        CHECK_EQ(dir_lookup(b, "before", NULL, &r), 1);
        CHECK_EQ(dir_lookup(b, "after", NULL, &r), 1);
        dir_health_get(a, &h);
        CHECK_EQ(h.lease, lease); /* kept alive all along */
        CHECK(strcmp(h.etcd.endpoint, c.client_url[0]) != 0);
        CHECK(h.etcd.failovers >= 1);
        dir_health_get(b, &h);
        CHECK(h.live && h.complete);
        CHECK_EQ(sb.name_down, 0);
        CHECK_OK(dir_unpublish(a, "after"));
        wait_lookup(l, b, "after", NULL, -ENOENT, 5000);
        dir_free(a);
        dir_free(b);
        loop_free(l);
        etcd_cluster_stop(&c);
}

static bool is_not_live(void *ctx) { return !is_live(ctx); }

/* resolve(), again while it says -ENOLINK (at most ten times): without a
 * leader the serializable read has what is left of the deadline, at most
 * 500 ms, which a member on a loaded machine can outlast. A lookup that never
 * answers without a leader says -ENOLINK every time. *ret_t0: when the last
 * one began. */
static answer resolve_leaderless(loop *l, directory *d, const char *name, const char *host, int deadline_ms,
                                 uint64_t *ret_t0) {
        answer a;
        for (int i = 0; i < 10; i++) {
                *ret_t0 = now_ns();
                a = resolve(l, d, name, host, deadline_ms);
                if (a.err != -ENOLINK)
                        break;
        }
        return a;
}

/* No leader (two of three members killed: the quorum is lost, as during an
 * election after the leader died): a linearizable read is held by the
 * member until it times out, so the cold lookup's serializable read, from
 * the member that is up, answers within the deadline. Before it: -ENOLINK
 * at the deadline. Its answer does not feed the cache. */
TEST_TIMEOUT(directory_cold_lookup_without_a_leader, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        directory *a = instance(l, &c, 0, "hostA", NULL), *b = instance(l, &c, 0, "hostB", NULL);
        dir_attr at = { "zone", "r1" };
        CHECK_OK(dir_publish(a, "held", &at, 1));
        CHECK(loop_wait(l, is_live_published, a, 10000));
        /* linearizable on member 0: it has applied the put */
        answer w = resolve(l, b, "held", NULL, 3000);
        CHECK_OK(w.err);
        dir_free(b);
        etcd_cluster_kill(&c, 1);
        etcd_cluster_kill(&c, 2);
        b = instance(l, &c, 0, "hostB", NULL); /* a cache that cannot answer */
        uint64_t t0;
        answer x = resolve_leaderless(l, b, "held", NULL, 1500, &t0);
        fprintf(stderr, "cold lookup without a leader: %d after %.0f ms\n", x.err, (double)(x.at_ns - t0) / 1e6);
        CHECK_OK(x.err);
        CHECK(!strcmp(x.rec.host, "hostA") && !strcmp(x.rec.addr, "10.0.0.65:7000"));
        CHECK(x.rec.n_attrs == 1 && !strcmp(x.rec.attrs[0].key, "zone") && !strcmp(x.rec.attrs[0].val, "r1"));
        CHECK(x.at_ns - t0 < (1500 + 3000) * 1000000ull);
        dir_record r;
        CHECK_ERR(dir_lookup(b, "held", NULL, &r), -EAGAIN); /* not fed into the cache */
        x = resolve_leaderless(l, b, "nowhere", NULL, 1500, &t0);
        CHECK_ERR(x.err, -ENOENT);
        x = resolve_leaderless(l, b, "held", "hostC", 1500, &t0); /* pinned to a host without it */
        CHECK_ERR(x.err, -ENOENT);
        /* nobody up: -ENOLINK at the deadline */
        etcd_cluster_kill(&c, 0);
        t0 = now_ns();
        x = resolve(l, b, "held", NULL, 1000);
        CHECK_ERR(x.err, -ENOLINK);
        CHECK(x.at_ns - t0 >= 1000 * 1000000ull && x.at_ns - t0 < (1000 + 3000) * 1000000ull);
        dir_free(a);
        dir_free(b);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(directory_cluster_down_cached_names_work_then_recover, 180) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        seen sb = { 0 };
        directory *a = instance(l, &c, 0, "hostA", NULL), *b = instance(l, &c, 1, "hostB", &sb);
        CHECK_OK(dir_publish(a, "kept", NULL, 0));
        CHECK(loop_wait(l, is_live_published, a, 10000));
        wait_lookup(l, b, "kept", NULL, 1, 5000);
        dir_health h;
        dir_health_get(a, &h);
        int64_t lease = h.lease;
        uint64_t granted = h.leases_granted;

        for (int i = 0; i < 3; i++)
                etcd_cluster_kill(&c, i);
        CHECK(loop_wait(l, is_not_live, b, 5000));
        /* Cached names resolve; a miss cannot be trusted: it needs etcd, and
         * etcd says -ENOLINK within the deadline. */
        dir_record r;
        CHECK_EQ(dir_lookup(b, "kept", NULL, &r), 1);
        CHECK_ERR(dir_lookup(b, "unknown", NULL, &r), -EAGAIN);
        uint64_t t0 = now_ns();
        answer ans = resolve(l, b, "unknown", NULL, 700);
        CHECK_ERR(ans.err, -ENOLINK);
        CHECK((ans.at_ns - t0) / 1000000u < 700 + 3000);
        dir_health_get(b, &h);
        CHECK(!h.live && !h.etcd.reachable && h.etcd.last_error[0]);
        /* Published during the outage: goes out when etcd is back. */
        CHECK_OK(dir_publish(a, "during", NULL, 0));
        loop_wait(l, NULL, NULL, TTL_S * 1000 + 500); /* past the TTL: the lease counts as lost */

        for (int i = 0; i < 3; i++)
                etcd_cluster_restart(&c, i);
        CHECK(etcd_cluster_wait_ready(&c, -1, 30000));
        CHECK(loop_wait(l, is_live, b, 20000));
        CHECK(loop_wait(l, is_live_published, a, 20000));
        wait_lookup(l, b, "during", NULL, 1, 10000);
        wait_lookup(l, b, "kept", NULL, 1, 10000);
        dir_health_get(a, &h);
        CHECK(h.leases_granted > granted); /* republished under a new lease, by itself */
        CHECK(h.lease != lease);
        /* The old lease's keys are replaced, not lost when it expires. */
        uint64_t regranted = h.leases_granted;
        loop_wait(l, NULL, NULL, 2 * TTL_S * 1000);
        dir_health_get(a, &h);
        if (h.leases_granted != regranted) {
                /* The new lease was lost meanwhile too (keepalives that did
                 * not get through within TTL_S on a loaded machine: seen),
                 * and its names are being put again under another: once
                 * they are, the old leases are behind us. */
                printf("    lease lost again after the recovery: names put again\n");
                CHECK(loop_wait(l, is_live_published, a, 20000));
                wait_lookup(l, b, "kept", NULL, 1, 10000);
        }
        CHECK_EQ(dir_lookup(b, "kept", NULL, &r), 1);
        ans = resolve(l, b, "kept", "hostA", 3000);
        CHECK_OK(ans.err);
        dir_health_get(b, &h);
        CHECK(h.live && h.complete);
        dir_free(a);
        dir_free(b);
        loop_free(l);
        etcd_cluster_stop(&c);
}

/* Write raw bytes under a key, as any holder of etcd write access could. */
static bool raw_done;
static void raw_cb(void *ctx, int err, json_object *resp) {
        (void)resp;
        *(int *)ctx = err;
        raw_done = true;
}
static bool raw_is_done(void *ctx) {
        (void)ctx;
        return raw_done;
}

static void raw_put(loop *l, etcd *e, const char *key, const void *val, size_t len) {
        int err = 1;
        raw_done = false;
        char *body = etcd_body_put(key, strlen(key), val, len, 0);
        CHECK(body);
        CHECK_OK(etcd_call(e, "/v3/kv/put", body, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        free(body);
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);
}

static bool seen_two_downs(void *ctx) { return ((seen *)ctx)->name_down >= 2; }

TEST_TIMEOUT(directory_hostile_records, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 1);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd_opts eo = { .endpoints = { c.client_url[0] }, .n_endpoints = 1 };
        etcd *raw;
        CHECK_OK(etcd_new(l, &eo, &raw));
        const char *good = "{\"v\":1,\"addr\":\"1.2.3.4:5\",\"fp\":\"f\"}";
        raw_put(l, raw, "/test/names/good/h1", good, strlen(good));
        raw_put(l, raw, "/test/names/broken/h1", "{\"v\":1,", 7);
        raw_put(l, raw, "/test/names/nohost", good, strlen(good));
        raw_put(l, raw, "/test/names/bad name/h1", good, strlen(good));
        raw_put(l, raw, "/test/names/x/bad host", good, strlen(good));
        int err;
        static char big[ETCD_VALUE_MAX]; /* past a record's bound */
        memset(big, ' ', sizeof(big));
        memcpy(big, good, strlen(good));
        raw_put(l, raw, "/test/names/big/h1", big, sizeof(big));
        /* Past what the client decodes at all (not a body our builder makes). */
        static char body[4 * ETCD_VALUE_MAX];
        size_t hl = (size_t)snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"", "L3Rlc3QvbmFtZXMvaHVnZS9oMQ==");
        for (size_t i = 0; i < (ETCD_VALUE_MAX + 300) / 3 * 4; i++)
                body[hl++] = 'A';
        memcpy(body + hl, "\"}", 3);
        raw_done = false;
        err = 1;
        CHECK_OK(etcd_call(raw, "/v3/kv/put", body, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);

        seen s = { 0 };
        directory *v = instance(l, &c, 0, NULL, &s);
        wait_lookup(l, v, "good", NULL, 1, 10000);
        CHECK(loop_wait(l, is_live, v, 10000));
        dir_health h;
        dir_health_get(v, &h);
        CHECK_EQ(h.entries, 1);
        CHECK(h.rejected >= 6);
        wait_lookup(l, v, "broken", NULL, -ENOENT, 5000);
        wait_lookup(l, v, "huge", NULL, -ENOENT, 5000);
        wait_lookup(l, v, "big", NULL, -ENOENT, 5000);
        /* Through the watch: garbage over a good record takes it away. */
        raw_put(l, raw, "/test/names/good/h1", "not json", 8);
        wait_lookup(l, v, "good", NULL, -ENOENT, 5000);
        CHECK_EQ(s.name_down, 1);
        raw_put(l, raw, "/test/names/good/h1", good, strlen(good));
        wait_lookup(l, v, "good", NULL, 1, 5000);
        /* A value past what we decode at all, over a good record: gone too. */
        raw_put(l, raw, "/test/names/good/h1", big, sizeof(big)); /* past a record's bound */
        wait_lookup(l, v, "good", NULL, -ENOENT, 5000);
        raw_put(l, raw, "/test/names/good/h1", good, strlen(good));
        wait_lookup(l, v, "good", NULL, 1, 5000);
        snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"", "L3Rlc3QvbmFtZXMvZ29vZC9oMQ==");
        hl = strlen(body);
        for (size_t i = 0; i < (ETCD_VALUE_MAX + 300) / 3 * 4; i++)
                body[hl++] = 'A';
        memcpy(body + hl, "\"}", 3);
        raw_done = false;
        CHECK_OK(etcd_call(raw, "/v3/kv/put", body, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);
        wait_lookup(l, v, "good", NULL, -ENOENT, 5000);
        raw_put(l, raw, "/test/names/good/h1", good, strlen(good));
        wait_lookup(l, v, "good", NULL, 1, 5000);
        /* The cold path is as careful. */
        answer a = resolve(l, v, "broken", NULL, 3000);
        CHECK_ERR(a.err, -ENOENT);
        /* Still alive and well. */
        dir_health_get(v, &h);
        CHECK(h.live);
        /* A publisher's key deleted behind its back is put again. */
        directory *p = instance(l, &c, 0, "hostP", NULL);
        CHECK_OK(dir_publish(p, "mine", NULL, 0));
        CHECK(loop_wait(l, is_live_published, p, 10000));
        wait_lookup(l, v, "mine", NULL, 1, 5000);
        raw_done = false;
        err = 1;
        char *del = etcd_body_delete("/test/names/mine/hostP", strlen("/test/names/mine/hostP"));
        CHECK_OK(etcd_call(raw, "/v3/kv/deleterange", del, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        free(del);
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);
        CHECK(loop_wait(l, seen_two_downs, &s, 5000)); /* it went */
        wait_lookup(l, v, "mine", NULL, 1, 5000);        /* and came back */
        CHECK(!strcmp(s.last_name, "mine") && s.last_change == DIR_NAME_UP);
        dir_free(p);
        dir_free(v);
        etcd_free(raw);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(directory_cache_bound, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 1);
        loop *l;
        CHECK_OK(loop_new(&l));
        directory *a = instance(l, &c, 0, "hostA", NULL);
        char nm[32];
        for (int i = 0; i < 10; i++) {
                snprintf(nm, sizeof(nm), "n%d", i);
                CHECK_OK(dir_publish(a, nm, NULL, 0));
        }
        CHECK(loop_wait(l, is_live_published, a, 10000));
        dir_opts o = { .etcd = { .endpoints = { c.client_url[0] }, .n_endpoints = 1 },
                       .prefix = "/test/", .cache_max = 4, .heartbeat_ms = 300 };
        directory *small;
        CHECK_OK(dir_new(l, &o, &small));
        CHECK(loop_wait(l, is_live, small, 10000));
        dir_health h;
        dir_health_get(small, &h);
        CHECK_EQ(h.entries, 4);
        CHECK(!h.complete);
        /* Misses cannot be trusted: -EAGAIN, and the range read finds them. */
        int found = 0, again = 0;
        for (int i = 0; i < 10; i++) {
                dir_record r;
                snprintf(nm, sizeof(nm), "n%d", i);
                int x = dir_lookup(small, nm, NULL, &r);
                found += x == 1;
                again += x == -EAGAIN;
                answer ans = resolve(l, small, nm, NULL, 3000);
                CHECK_OK(ans.err);
                CHECK(!strcmp(ans.rec.host, "hostA"));
        }
        CHECK_EQ(found, 4);
        CHECK_EQ(again, 6);
        dir_free(small);
        dir_free(a);
        loop_free(l);
        etcd_cluster_stop(&c);
}

/* ---- the [directory] section of the config -------------------------------- */

static int parse(const char *text, conf *c, char *err) { return conf_parse(text, strlen(text), c, err, 128); }

TEST(directory_config_section) {
        conf c;
        char err[128];
        CHECK_OK(parse("[daemon]\nshared = no\n", &c, err));
        CHECK_EQ(c.directory.backend, CONF_DIR_STATIC); /* the default */
        CHECK_EQ(c.directory.line, 0);
        dir_opts o;
        CHECK_ERR(dir_opts_from_conf(&c.directory, &o), -EINVAL);
        conf_deinit(&c);

        CHECK_OK(parse("[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:2379  https://h:2379\n"
                       "prefix = /p/\nttl_s = 7\nrequest_timeout_ms = 1500\ncache_max = 100\n"
                       "ca = /c.pem\ncert = /x.pem\nkey = /x.key\ntrust_keys = yes\n"
                       "watch_unstable_window_s = 10\nhost_conflict_window_s = 3600\n",
                       &c, err));
        CHECK_EQ(c.directory.backend, CONF_DIR_ETCD);
        CHECK_EQ(c.directory.n_endpoints, 2);
        CHECK(!strcmp(c.directory.endpoints[1], "https://h:2379"));
        CHECK(!strcmp(c.directory.prefix, "/p/") && !strcmp(c.directory.key, "/x.key"));
        CHECK_EQ(c.directory.ttl_s, 7);
        CHECK(c.directory.trust_keys);
        CHECK_OK(dir_opts_from_conf(&c.directory, &o));
        CHECK_EQ(o.etcd.n_endpoints, 2);
        CHECK_EQ(o.ttl_s, 7);
        CHECK_EQ(o.cache_max, 100);
        CHECK_EQ(o.watch_unstable_window_s, 10);
        CHECK_EQ(o.host_conflict_window_s, 3600);
        CHECK(!strcmp(o.etcd.cert_file, "/x.pem"));
        conf_deinit(&c);

        /* attributes: in file order, a value may be empty or hold '=' */
        CHECK_OK(parse("[directory]\nattributes = zone=r1  rack.row_7-b=A:1=2\tempty=\n", &c, err));
        CHECK_EQ(c.directory.n_attrs, 3);
        CHECK(!strcmp(c.directory.attrs[0].key, "zone") && !strcmp(c.directory.attrs[0].val, "r1"));
        CHECK(!strcmp(c.directory.attrs[1].key, "rack.row_7-b") && !strcmp(c.directory.attrs[1].val, "A:1=2"));
        CHECK(!strcmp(c.directory.attrs[2].key, "empty") && !strcmp(c.directory.attrs[2].val, ""));
        conf_deinit(&c);
        char most[1400];
        int mn = snprintf(most, sizeof(most), "[directory]\nattributes =");
        for (int i = 0; i < CONF_DIR_ATTRS_MAX; i++) /* the most, each at its longest */
                mn += snprintf(most + mn, sizeof(most) - (size_t)mn, " %c%030d=%0127d", 'a' + i, 0, i);
        CHECK_OK(parse(most, &c, err));
        CHECK_EQ(c.directory.n_attrs, CONF_DIR_ATTRS_MAX);
        CHECK_EQ(strlen(c.directory.attrs[7].key), CONF_DIR_ATTR_KEY_MAX);
        CHECK_EQ(strlen(c.directory.attrs[7].val), CONF_DIR_ATTR_VAL_MAX);
        conf_deinit(&c);
        char too_many[64 * 9 + 64], too_long_key[128], too_long_val[256];
        int tn = snprintf(too_many, sizeof(too_many), "[directory]\nattributes =");
        for (int i = 0; i <= CONF_DIR_ATTRS_MAX; i++)
                tn += snprintf(too_many + tn, sizeof(too_many) - (size_t)tn, " k%d=v", i);
        snprintf(too_long_key, sizeof(too_long_key), "[directory]\nattributes = %032d=v\n", 0);
        snprintf(too_long_val, sizeof(too_long_val), "[directory]\nattributes = big=%0128d\n", 0);

        const struct {
                const char *text;
                const char *why;
        } bad[] = {
                { "[directory]\nbackend = zookeeper\n", "line 2: backend" },
                { "[directory]\nbackend = etcd\n", "line 1: [directory] backend = etcd wants endpoints" },
                { "[directory]\nendpoints = ftp://x\n", "line 2: endpoints" },
                { "[directory]\nendpoints =\n", "line 2: endpoints" },
                { "[directory]\nendpoints = http://a http://a http://a http://a http://a http://a http://a "
                  "http://a http://a http://a http://a http://a http://a http://a http://a http://a http://a\n",
                  "line 2: endpoints: at most 16" },
                { "[directory]\nttl_s = 0\n", "line 2: ttl_s" },
                { "[directory]\nttl_s = 3601\n", "line 2: ttl_s" },
                { "[directory]\nttl_s = 5\nttl_s = 5\n", "line 3: duplicate key" },
                { "[directory]\nbackend = etcd\nbackend = etcd\n", "line 3: duplicate key" },
                { "[directory]\nprefix = a b\n", "line 2: prefix" },
                { "[directory]\ncert = /x\n", "line 1: [directory] cert and key go together" },
                { "[directory]\ncache_max = 4194305\n", "line 2: cache_max" },
                { "[directory]\nwatch_unstable_window_s = 9\n", "line 2: watch_unstable_window_s: want 10..3600" },
                { "[directory]\nwatch_unstable_window_s = 3601\n", "line 2: watch_unstable_window_s" },
                { "[directory]\nhost_conflict_window_s = 0\n", "line 2: host_conflict_window_s: want 10..3600" },
                { "[directory]\nhost_conflict_window_s = 3601\n", "line 2: host_conflict_window_s" },
                { "[directory]\ntrust_keys = maybe\n", "line 2: trust_keys" },
                { "[directory]\nhost = x\n", "line 2: unknown key in [directory]" },
                { "[directory]\n[directory]\n", "line 2: duplicate [directory] section" },
                { "[directory]\nattributes = zone=r1 rack=7 zone=r2\n",
                  "line 2: attributes: duplicate attribute 'zone'" },
                { "[directory]\nattributes = zone=r1\nattributes = rack=7\n",
                  "line 3: duplicate key 'attributes' (first at line 2)" },
                { "[directory]\nattributes =\n", "line 2: attributes: want KEY=VALUE" },
                { "[directory]\nattributes = zone\n", "line 2: attributes: 'zone': want KEY=VALUE, KEY of 1..31" },
                { "[directory]\nattributes = =r1\n", "line 2: attributes: '=r1': want KEY=VALUE" },
                { "[directory]\nattributes = zo/ne=r1\n", "line 2: attributes: 'zo/ne=r1': want KEY=VALUE" },
                { "[directory]\nattributes = zone=r\xc3\xa9\n", "line 2: attributes: 'zone=r\xc3\xa9': a value is printable ASCII" },
                { too_many, "line 2: attributes: at most 8" },
                { too_long_key, "line 2: attributes: '00000000000000000000000000000000=v': want KEY=VALUE" },
                { too_long_val, "line 2: attributes: 'big': value longer than 127 bytes" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                CHECK_ERR(parse(bad[i].text, &c, err), -EINVAL);
                if (strncmp(err, bad[i].why, strlen(bad[i].why)) != 0)
                        test_fail(__FILE__, __LINE__, "config %zu: error \"%s\", want \"%s...\"", i, err, bad[i].why);
        }
}

TEST_TIMEOUT(directory_from_config_runs, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 1);
        char text[512];
        snprintf(text, sizeof(text), "[directory]\nbackend = etcd\nendpoints = %s\nprefix = /cfg/\nttl_s = 3\n",
                 c.client_url[0]);
        conf cf;
        char err[128];
        CHECK_OK(parse(text, &cf, err));
        dir_opts o;
        CHECK_OK(dir_opts_from_conf(&cf.directory, &o));
        o.host = "hostC";
        o.addr = "127.0.0.1:9";
        loop *l;
        CHECK_OK(loop_new(&l));
        directory *d;
        CHECK_OK(dir_new(l, &o, &d));
        CHECK_OK(dir_publish(d, "from-config", NULL, 0));
        CHECK(loop_wait(l, is_live_published, d, 10000));
        answer a = resolve(l, d, "from-config", "hostC", 3000);
        CHECK_OK(a.err);
        CHECK(!strcmp(a.rec.addr, "127.0.0.1:9"));
        dir_free(d);
        conf_deinit(&cf);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(directory_over_tls_from_config, 120) {
        etcd_cluster c;
        etcd_cluster_start_tls(&c, 3);
        char text[2048];
        snprintf(text, sizeof(text),
                 "[directory]\nbackend = etcd\nendpoints = %s %s %s\nca = %s\ncert = %s\nkey = %s\nttl_s = 2\n",
                 c.client_url[0], c.client_url[1], c.client_url[2], c.ca, c.cert, c.key);
        conf cf;
        char err[128];
        CHECK_OK(parse(text, &cf, err));
        loop *l;
        CHECK_OK(loop_new(&l));
        dir_opts o;
        CHECK_OK(dir_opts_from_conf(&cf.directory, &o));
        o.host = "hostT";
        o.addr = "127.0.0.1:7";
        directory *a, *b;
        CHECK_OK(dir_new(l, &o, &a));
        o.host = NULL;
        CHECK_OK(dir_new(l, &o, &b));
        CHECK_OK(dir_publish(a, "secure", NULL, 0));
        CHECK(loop_wait(l, is_live_published, a, 15000));
        wait_lookup(l, b, "secure", NULL, 1, 10000);
        CHECK(loop_wait(l, is_live, b, 10000));
        CHECK_OK(dir_unpublish(a, "secure"));
        wait_lookup(l, b, "secure", NULL, -ENOENT, 10000);
        dir_free(a);
        dir_free(b);
        conf_deinit(&cf);
        loop_free(l);
        etcd_cluster_stop(&c);
}

TEST_TIMEOUT(directory_resyncs_after_compaction, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 3);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd_opts eo = { .endpoints = { c.client_url[1], c.client_url[2] }, .n_endpoints = 2 };
        etcd *raw;
        CHECK_OK(etcd_new(l, &eo, &raw));
        const char *good = "{\"v\":1,\"addr\":\"1.2.3.4:5\",\"fp\":\"\"}";
        raw_put(l, raw, "/test/names/stays/h1", good, strlen(good));
        raw_put(l, raw, "/test/names/goes/h1", good, strlen(good));
        /* v talks to member 0 only. */
        dir_opts o = { .etcd = { .endpoints = { c.client_url[0] }, .n_endpoints = 1, .attempt_timeout_ms = 500 },
                       .prefix = "/test/", .heartbeat_ms = 300 };
        directory *v;
        CHECK_OK(dir_new(l, &o, &v));
        seen s = { 0 };
        dir_set_observer(v, observe, &s);
        CHECK(loop_wait(l, is_live, v, 10000));
        dir_health h;
        dir_health_get(v, &h);
        uint64_t resyncs = h.resyncs;
        CHECK_EQ(h.entries, 2);

        /* While v cannot see: a delete, a put, and the history compacted. */
        etcd_cluster_kill(&c, 0);
        CHECK(loop_wait(l, is_not_live, v, 5000));
        raw_done = false;
        int err = 1;
        char *body = etcd_body_delete("/test/names/goes/h1", strlen("/test/names/goes/h1"));
        CHECK_OK(etcd_call(raw, "/v3/kv/deleterange", body, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        free(body);
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);
        raw_put(l, raw, "/test/names/new/h2", good, strlen(good));
        raw_put(l, raw, "/test/other", "x", 1); /* the revision to compact to */
        raw_done = false;
        char cbody[96];
        snprintf(cbody, sizeof(cbody), "{\"revision\":\"%lld\",\"physical\":true}", (long long)h.revision + 3);
        CHECK_OK(etcd_call(raw, "/v3/kv/compaction", cbody, now_ns() + 3000000000ull, raw_cb, &err, NULL));
        CHECK(loop_wait(l, raw_is_done, NULL, 8000));
        CHECK_OK(err);
        dir_record r;
        CHECK_EQ(dir_lookup(v, "goes", NULL, &r), 1); /* cached: still answers while etcd is away */

        /* Back: the watch cannot resume from its revision, so v lists again,
         * and what went while it was away goes (with its event). */
        etcd_cluster_restart(&c, 0);
        CHECK(etcd_cluster_wait_ready(&c, 0, 30000));
        wait_lookup(l, v, "new", NULL, 1, 15000);
        wait_lookup(l, v, "goes", NULL, -ENOENT, 15000);
        CHECK_EQ(dir_lookup(v, "stays", NULL, &r), 1);
        dir_health_get(v, &h);
        CHECK(h.resyncs > resyncs);
        CHECK_EQ(h.entries, 2);
        CHECK_EQ(s.name_down, 1);
        CHECK(loop_wait(l, is_live, v, 10000));
        dir_free(v);
        etcd_free(raw);
        loop_free(l);
        etcd_cluster_stop(&c);
}

/* Nothing answers at 127.0.0.1:1: everything must still be bounded. */
TEST_TIMEOUT(directory_bounds_without_etcd, 60) {
        loop *l;
        CHECK_OK(loop_new(&l));
        dir_opts o = { .etcd = { .endpoints = { "http://127.0.0.1:1" }, .n_endpoints = 1 },
                       .host = "hostZ", .addr = "127.0.0.1:7", .request_timeout_ms = 300 };
        directory *d;
        CHECK_OK(dir_new(l, &o, &d));
        /* Publishing needs no answer to be accepted, up to the bound. */
        char nm[32];
        for (unsigned i = 0; i < DIR_PUBLISH_MAX; i++) {
                snprintf(nm, sizeof(nm), "p%u", i);
                CHECK_OK(dir_publish(d, nm, NULL, 0));
        }
        CHECK_ERR(dir_publish(d, "one-more", NULL, 0), -ENOSPC);
        CHECK_OK(dir_publish(d, "p0", NULL, 0)); /* an update is not one more */
        /* Cold lookups: at most DIR_QUERIES_MAX at once, each answered
         * -ENOLINK by its deadline. */
        static answer a[DIR_QUERIES_MAX];
        uint64_t t0 = now_ns();
        for (unsigned i = 0; i < DIR_QUERIES_MAX; i++) {
                snprintf(nm, sizeof(nm), "q%u", i);
                CHECK_OK(dir_resolve(d, nm, NULL, t0 + 500000000ull, on_answer, &a[i], NULL));
        }
        answer extra = { 0 };
        CHECK_ERR(dir_resolve(d, "q-extra", NULL, t0 + 500000000ull, on_answer, &extra, NULL), -EAGAIN);
        CHECK(loop_wait(l, answered, &a[DIR_QUERIES_MAX - 1], 5000));
        loop_wait(l, NULL, NULL, 50);
        for (unsigned i = 0; i < DIR_QUERIES_MAX; i++) {
                CHECK(a[i].done);
                CHECK_ERR(a[i].err, -ENOLINK);
        }
        CHECK((now_ns() - t0) / 1000000u < 500 + 3000);
        /* A cancelled query says nothing. */
        answer c = { 0 };
        dir_query *q;
        CHECK_OK(dir_resolve(d, "q-cancel", NULL, now_ns() + 200000000ull, on_answer, &c, &q));
        dir_resolve_cancel(q);
        loop_wait(l, NULL, NULL, 400);
        CHECK(!c.done);
        dir_record r;
        CHECK_ERR(dir_lookup(d, "p1", NULL, &r), -EAGAIN);
        dir_health h;
        dir_health_get(d, &h);
        CHECK(!h.synced && !h.live && !h.etcd.reachable);
        CHECK_EQ(h.published, DIR_PUBLISH_MAX);
        CHECK_EQ(h.unconfirmed, DIR_PUBLISH_MAX);
        CHECK_EQ(h.lease, 0);
        CHECK(strstr(h.etcd.last_error, "127.0.0.1:1"));
        /* Options out of range are refused. */
        directory *bad;
        dir_opts b = o;
        b.ttl_s = DIR_TTL_MAX_S + 1;
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        b = o;
        b.host = "bad host";
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        b = o;
        b.watch_unstable_window_s = DIR_WINDOW_MIN_S - 1;
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        b = o;
        b.host_conflict_window_s = DIR_WINDOW_MAX_S + 1;
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        b = o;
        b.prefix = "with space";
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        b = o;
        b.addr = NULL;
        CHECK_ERR(dir_new(l, &b, &bad), -EINVAL);
        dir_free(d);
        loop_free(l);
}

/* A page of the listing that ends on a record we refuse (a key past our
 * bound, a value past it): the listing must go on past it. */
TEST_TIMEOUT(directory_listing_pages_past_bad_records, 120) {
        etcd_cluster c;
        etcd_cluster_start(&c, 1);
        loop *l;
        CHECK_OK(loop_new(&l));
        etcd_opts eo = { .endpoints = { c.client_url[0] }, .n_endpoints = 1 };
        etcd *raw;
        CHECK_OK(etcd_new(l, &eo, &raw));
        const char *good = "{\"v\":1,\"addr\":\"1.2.3.4:5\",\"fp\":\"\"}";
        /* 999 good records, in transactions of 50. */
        static char keys[999][48];
        const char *kp[50], *vp[50];
        for (int i = 0; i < 999;) {
                int n = 0;
                for (; n < 50 && i < 999; n++, i++) {
                        snprintf(keys[i], sizeof(keys[i]), "/test/names/a%04d/h", i);
                        kp[n] = keys[i];
                        vp[n] = good;
                }
                char *body = etcd_body_txn_puts(kp, vp, (size_t)n, 0);
                CHECK(body);
                int err = 1;
                raw_done = false;
                CHECK_OK(etcd_call(raw, "/v3/kv/txn", body, now_ns() + 5000000000ull, raw_cb, &err, NULL));
                free(body);
                CHECK(loop_wait(l, raw_is_done, NULL, 10000));
                CHECK_OK(err);
        }
        /* The 1000th key (the last of the first page): 3000 bytes long, its
         * value 9000 bytes — both past what we take. */
        static uint8_t key[3000], val[9000];
        memset(key, 'x', sizeof(key));
        memcpy(key, "/test/names/a0999", 17);
        memset(val, 'v', sizeof(val));
        static char b64k[4100], b64v[12100], body[17000];
        sodium_bin2base64(b64k, sizeof(b64k), key, sizeof(key), sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64(b64v, sizeof(b64v), val, sizeof(val), sodium_base64_VARIANT_ORIGINAL);
        snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", b64k, b64v);
        int err = 1;
        raw_done = false;
        CHECK_OK(etcd_call(raw, "/v3/kv/put", body, now_ns() + 5000000000ull, raw_cb, &err, NULL));
        CHECK(loop_wait(l, raw_is_done, NULL, 10000));
        CHECK_OK(err);
        raw_put(l, raw, "/test/names/b/h", good, strlen(good)); /* on the second page */

        dir_opts o = { .etcd = { .endpoints = { c.client_url[0] }, .n_endpoints = 1 }, .prefix = "/test/" };
        directory *v;
        CHECK_OK(dir_new(l, &o, &v));
        CHECK(loop_wait(l, is_live, v, 20000));
        dir_health h;
        dir_health_get(v, &h);
        CHECK(h.synced && h.complete);
        CHECK_EQ(h.entries, 1000);
        CHECK(h.rejected >= 1);
        dir_record r;
        CHECK_EQ(dir_lookup(v, "b", NULL, &r), 1);
        CHECK_EQ(dir_lookup(v, "a0000", NULL, &r), 1);
        CHECK_EQ(dir_lookup(v, "a0998", NULL, &r), 1);
        dir_free(v);
        etcd_free(raw);
        loop_free(l);
        etcd_cluster_stop(&c);
}
