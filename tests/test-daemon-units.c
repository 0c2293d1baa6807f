/*
 * test-daemon-units.c — unit tests of the daemon's building blocks, linked
 * against libipcfd.a: the config parser (common/conf.c), the id map, the
 * event loop's timer heap, deferred frees and spinners, and per-user quotas.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/util.h"
#include "daemon/core/idmap.h"
#include "daemon/core/ipcfd.h"
#include "daemon/core/loop.h"
#include "daemon/core/quota.h"
#include "support/test.h"

#include <sys/epoll.h>
#include <sys/mman.h>

static int parse(const char *text, conf *c, char *err) {
        return conf_parse(text, strlen(text), c, err, 256);
}

TEST_TIMEOUT(conf_full_example, 10) {
        const char *text =
                "# the example of docs/DAEMON.md\n"
                "[daemon]\n"
                "shared = yes\n"
                "\n"
                "[limits]\n"
                "flows_per_user = 1024\n"
                "registrations_per_user = 256\n"
                "pending_per_user = 2k\n"
                "clients_per_user=7\n"
                "unbounded_bytes_per_user = 1G\n"
                "[name printer*]            # fnmatch pattern\n"
                "allocate = user:alice group:lp uid:1000 gid:7 *     # '*' = anyone\n"
                "register = user:printd\n"
                "activate = /usr/bin/printd --serve#not-a-comment   # run via /bin/sh -c\n"
                "activate_timeout_ms = 250\n"
                "[ name  other ]\r\n"
                "register =\n";
        conf c;
        char err[256];
        CHECK_OK(parse(text, &c, err));
        CHECK(c.shared);
        CHECK_EQ(c.limits.flows_per_user, 1024);
        CHECK_EQ(c.limits.pending_per_user, 2048);
        CHECK_EQ(c.limits.clients_per_user, 7);
        CHECK_EQ(c.limits.unbounded_bytes_per_user, 1ull << 30);
        CHECK_EQ(c.n_rules, 2);
        const conf_rule *r = &c.rules[0];
        CHECK(strcmp(r->pattern, "printer*") == 0);
        CHECK(r->allocate.set);
        CHECK_EQ(r->allocate.n, 5);
        CHECK_EQ(r->allocate.who[0].kind, CONF_WHO_USER);
        CHECK(strcmp(r->allocate.who[0].name, "alice") == 0);
        CHECK_EQ(r->allocate.who[1].kind, CONF_WHO_GROUP);
        CHECK_EQ(r->allocate.who[2].kind, CONF_WHO_UID);
        CHECK_EQ(r->allocate.who[2].id, 1000);
        CHECK_EQ(r->allocate.who[3].kind, CONF_WHO_GID);
        CHECK_EQ(r->allocate.who[3].id, 7);
        CHECK_EQ(r->allocate.who[4].kind, CONF_WHO_ANY);
        CHECK_EQ(r->reg.n, 1);
        CHECK(strcmp(r->activate, "/usr/bin/printd --serve#not-a-comment") == 0);
        CHECK_EQ(r->activate_timeout_ms, 250);
        CHECK_EQ(r->line, 11);
        CHECK(strcmp(c.rules[1].pattern, "other") == 0);
        CHECK(c.rules[1].reg.set);
        CHECK_EQ(c.rules[1].reg.n, 0);
        CHECK(!c.rules[1].allocate.set);
        CHECK_EQ(c.rules[1].activate_timeout_ms, CONF_ACTIVATE_TIMEOUT_DEFAULT);
        CHECK(conf_match(&c, "printer-2") == &c.rules[0]);
        CHECK(conf_match(&c, "other") == &c.rules[1]);
        CHECK(conf_match(&c, "otherwise") == NULL);
        conf_deinit(&c);
        CHECK_EQ(c.n_rules, 0);
}

TEST_TIMEOUT(conf_defaults_and_empty, 10) {
        conf c;
        char err[256];
        CHECK_OK(parse("", &c, err));
        CHECK(!c.shared);
        CHECK_EQ(c.limits.flows_per_user, 4096);
        CHECK_EQ(c.limits.registrations_per_user, 256);
        CHECK_EQ(c.limits.pending_per_user, 256);
        CHECK_EQ(c.limits.clients_per_user, 256);
        CHECK_EQ(c.limits.unbounded_bytes_per_user, 1ull << 30);
        conf_deinit(&c);
        CHECK_OK(parse("# only comments\n\n   \n\t# more\n", &c, err));
        conf_deinit(&c);
}

TEST_TIMEOUT(conf_errors_name_their_line, 10) {
        static const struct {
                const char *text;
                const char *want;
        } bad[] = {
                { "shared = yes\n", "line 1:" },
                { "[daemon]\nshared = maybe\n", "line 2:" },
                { "[daemon]\nverbose = yes\n", "line 2:" },
                { "[dæmon]\n", "line 1:" },
                { "[limits]\n\n\nflows_per_user = -1\n", "line 4:" },
                { "[limits]\nflows_per_user = 99999999999\n", "line 2:" },
                { "[limits]\nflows_per_user = 5x\n", "line 2:" },
                { "[limits]\nflows_per_user\n", "line 2:" },
                { "[name a b]\n", "line 1:" },
                { "[name ]\n", "line 1:" },
                { "[name x\n", "line 1:" },
                { "[name x]\nallocate = user:\n", "line 2:" },
                { "[name x]\nallocate = bob\n", "line 2:" },
                { "[name x]\nallocate = uid:12a\n", "line 2:" },
                { "[name x]\nallocate = uid:4294967295\n", "line 2:" },
                { "[name x]\nallocate = *\nallocate = *\n", "line 3:" },
                { "[name x]\nactivate =\n", "line 2:" },
                { "[name x]\nactivate_timeout_ms = 0\n", "line 2:" },
                { "[name x]\nfoo = bar\n", "line 2:" },
                { "[daemon]\nshared = yes\x01\n", "line 2:" },
                { "[daemon]\0\n", "line 1:" },
        };
        for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
                conf c;
                char err[256];
                size_t len = strlen(bad[i].text) + (i == ARRAY_SIZE(bad) - 1 ? 2 : 0);
                int r = conf_parse(bad[i].text, len, &c, err, sizeof(err));
                if (r != -EINVAL || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
                        test_fail(__FILE__, __LINE__, "case %zu: r=%d err='%s'", i, r, err);
                CHECK_EQ(c.n_rules, 0);
                conf_deinit(&c);
        }
}

TEST_TIMEOUT(conf_bounds, 10) {
        /* Too many principals in one list; too long a command. */
        size_t cap = 64 * 1024;
        char *t = malloc(cap);
        size_t n = (size_t)snprintf(t, cap, "[name x]\nallocate =");
        for (int i = 0; i <= CONF_WHO_MAX; i++)
                n += (size_t)snprintf(t + n, cap - n, " uid:%d", i);
        conf c;
        char err[256];
        CHECK_ERR(parse(t, &c, err), -EINVAL);
        n = (size_t)snprintf(t, cap, "[name x]\nactivate = ");
        memset(t + n, 'a', CONF_CMD_MAX + 1);
        t[n + CONF_CMD_MAX + 1] = 0;
        CHECK_ERR(parse(t, &c, err), -EINVAL);
        t[n + CONF_CMD_MAX] = 0;
        CHECK_OK(parse(t, &c, err));
        CHECK_EQ(strlen(c.rules[0].activate), CONF_CMD_MAX);
        conf_deinit(&c);
        free(t);
}

TEST_TIMEOUT(idmap_many, 10) {
        idmap m = { 0 };
        enum { N = 5000 };
        struct idmap_node *nodes = calloc(N, sizeof(*nodes));
        for (int i = 0; i < N; i++) {
                nodes[i].id = (uint64_t)i * 7 + 1;
                CHECK_OK(idmap_add(&m, &nodes[i]));
        }
        CHECK_EQ(m.n, N);
        for (int i = 0; i < N; i++)
                CHECK(idmap_find(&m, (uint64_t)i * 7 + 1) == &nodes[i]);
        CHECK(idmap_find(&m, 3) == NULL);
        for (int i = 0; i < N; i += 2)
                idmap_del(&m, &nodes[i]);
        idmap_del(&m, &nodes[0]); /* twice: harmless */
        CHECK_EQ(m.n, N / 2);
        for (int i = 0; i < N; i++)
                CHECK((idmap_find(&m, (uint64_t)i * 7 + 1) != NULL) == (i % 2 == 1));
        idmap_deinit(&m);
        free(nodes);
}

/* Timers: fire in deadline order whatever the arming order; cancelled ones
 * never fire; re-arming moves. */
static loop *tl;
static int fired[64], n_fired;
typedef struct tt {
        loop_timer t;
        int id;
} tt;
static void on_tt(loop_timer *t) {
        tt *x = container_of(t, tt, t);
        fired[n_fired++] = x->id;
        if (x->id == 999)
                loop_quit(tl);
}

TEST_TIMEOUT(loop_timer_order, 10) {
        CHECK_OK(loop_new(&tl));
        tt ts[40], last;
        uint64_t now = now_ns();
        /* ids 0..39 with deadlines in a shuffled order. */
        for (int i = 0; i < 40; i++) {
                int k = (i * 17) % 40;
                ts[k].id = k;
                loop_timer_init(&ts[k].t, on_tt);
                CHECK_OK(loop_timer_arm(tl, &ts[k].t, now + 1000000ull + (uint64_t)k * 100000));
        }
        /* Cancel the odd ones, move 0 to the end. */
        for (int i = 1; i < 40; i += 2)
                loop_timer_cancel(tl, &ts[i].t);
        loop_timer_cancel(tl, &ts[1].t);
        CHECK_OK(loop_timer_arm(tl, &ts[0].t, now + 9000000ull));
        last.id = 999;
        loop_timer_init(&last.t, on_tt);
        CHECK_OK(loop_timer_arm(tl, &last.t, now + 10000000ull));
        CHECK_EQ(loop_timers(tl), 21);
        CHECK_OK(loop_run(tl));
        CHECK_EQ(n_fired, 21);
        for (int i = 0; i < 19; i++)
                CHECK_EQ(fired[i], 2 + 2 * i);
        CHECK_EQ(fired[19], 0);
        CHECK_EQ(fired[20], 999);
        CHECK(now_ns() - now >= 10000000ull);
        CHECK_EQ(loop_timers(tl), 0);
        tl = loop_free(tl);
}

/* A callback deletes another io fetched in the same batch: its event is
 * skipped, and its memory stays valid until the round ends. */
typedef struct tio {
        loop_io io;
        struct tio *victim;
} tio;
static int tio_calls;
static tio *tio_survivor;
static void on_tio(loop_io *io, uint32_t ev) {
        tio *x = container_of(io, tio, io);
        tio_calls++;
        tio_survivor = x;
        loop_io_del(tl, &x->victim->io);
        loop_defer_free(tl, x->victim);
        /* Stop watching ourselves too, so the loop goes quiet. */
        loop_io_del(tl, &x->io);
}
static void on_quit(loop_timer *t) { loop_quit(tl); }

TEST_TIMEOUT(loop_delete_in_batch, 10) {
        CHECK_OK(loop_new(&tl));
        tio *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
        int pa[2], pb[2];
        CHECK_OK(pipe(pa));
        CHECK_OK(pipe(pb));
        a->victim = b;
        b->victim = a;
        CHECK_OK(loop_io_add(tl, &a->io, pa[0], EPOLLIN, on_tio));
        CHECK_OK(loop_io_add(tl, &b->io, pb[0], EPOLLIN, on_tio));
        CHECK(write(pa[1], "x", 1) == 1);
        CHECK(write(pb[1], "x", 1) == 1);
        loop_timer q;
        loop_timer_init(&q, on_quit);
        CHECK_OK(loop_timer_arm(tl, &q, now_ns() + 20000000ull));
        CHECK_OK(loop_run(tl));
        /* Both were readable in one batch; only the first ran. */
        CHECK_EQ(tio_calls, 1);
        free(tio_survivor);
        tl = loop_free(tl);
        close(pa[0]), close(pa[1]), close(pb[0]), close(pb[1]);
}

/* Spinners: memory another process writes is seen without any descriptor
 * event; a spinner whose window passes is told once; a loop too busy to
 * sleep still asks its spinners. */
typedef struct tspin {
        loop_spin s;
        _Atomic uint32_t *word;
        int calls, ready_calls;
        uint64_t at;
} tspin;
static bool tspin_ready(loop_spin *s) {
        return atomic_load(container_of(s, tspin, s)->word) != 0;
}
static void tspin_fn(loop_spin *s) {
        tspin *t = container_of(s, tspin, s);
        t->calls++;
        t->ready_calls += tspin_ready(s);
        t->at = now_ns();
}

static void write_later(void *p) {
        usleep(5000);
        atomic_store((_Atomic uint32_t *)p, 1);
}

TEST_TIMEOUT(loop_spinner_sees_another_process_write, 30) {
        _Atomic uint32_t *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(shared != MAP_FAILED);
        CHECK_OK(loop_new(&tl));
        tspin t = { .word = shared };
        loop_spin_init(&t.s, tspin_ready, tspin_fn);
        uint64_t t0 = now_ns();
        loop_spin_until(tl, &t.s, t0 + 5000000000ull);
        loop_timer q;
        loop_timer_init(&q, on_quit);
        CHECK_OK(loop_timer_arm(tl, &q, t0 + 6000000000ull));
        pid_t w = test_fork(write_later, (void *)shared);
        /* quit as soon as the spinner ran */
        while (!t.calls) {
                loop_timer_arm(tl, &q, now_ns() + 1000000ull);
                CHECK_OK(loop_run(tl));
        }
        CHECK_EQ(t.calls, 1);
        CHECK_EQ(t.ready_calls, 1); /* the write, not the window's end */
        CHECK(t.at < t0 + 5000000000ull);
        CHECK(!loop_spinning(&t.s));
        CHECK_EQ(test_wait(w, 10000), 0);
        tl = loop_free(tl);
        munmap((void *)shared, 4096);
}

TEST_TIMEOUT(loop_spinner_window_ends_once, 10) {
        static _Atomic uint32_t never;
        CHECK_OK(loop_new(&tl));
        tspin t = { .word = &never };
        loop_spin_init(&t.s, tspin_ready, tspin_fn);
        uint64_t t0 = now_ns();
        loop_spin_until(tl, &t.s, t0 + 2000000ull);
        loop_spin_until(tl, &t.s, t0 + 1000000ull); /* never shortens it */
        loop_timer q;
        loop_timer_init(&q, on_quit);
        CHECK_OK(loop_timer_arm(tl, &q, t0 + 50000000ull));
        CHECK_OK(loop_run(tl));
        CHECK_EQ(t.calls, 1);
        CHECK_EQ(t.ready_calls, 0);
        CHECK(t.at >= t0 + 2000000ull);
        /* cancelled: never told */
        tspin u = { .word = &never };
        loop_spin_init(&u.s, tspin_ready, tspin_fn);
        loop_spin_until(tl, &u.s, now_ns() + 1000000ull);
        loop_spin_cancel(&u.s);
        CHECK_OK(loop_timer_arm(tl, &q, now_ns() + 5000000ull));
        CHECK_OK(loop_run(tl));
        CHECK_EQ(u.calls, 0);
        tl = loop_free(tl);
}

/* The loop looks without sleeping for 200 ms (loop_poll_until, as the
 * hosts' poll_us does after traffic): it never sleeps, and a timer at 1 ms
 * writes what the spinner waits for. */
static _Atomic uint32_t busy_word;
static void on_busy(loop_timer *t) { atomic_store(&busy_word, 1); }

TEST_TIMEOUT(loop_too_busy_to_sleep_still_asks_its_spinners, 10) {
        CHECK_OK(loop_new(&tl));
        tspin t = { .word = &busy_word };
        loop_spin_init(&t.s, tspin_ready, tspin_fn);
        uint64_t t0 = now_ns(), busy_until = t0 + 200000000ull;
        loop_poll_until(tl, busy_until);
        loop_spin_until(tl, &t.s, t0 + 10000000000ull);
        loop_timer b, q;
        loop_timer_init(&b, on_busy);
        loop_timer_init(&q, on_quit);
        CHECK_OK(loop_timer_arm(tl, &b, t0 + 1000000ull));
        CHECK_OK(loop_timer_arm(tl, &q, busy_until + 10000000ull));
        CHECK_OK(loop_run(tl));
        /* told while the loop was busy, not when it went quiet */
        CHECK_EQ(t.calls, 1);
        CHECK_EQ(t.ready_calls, 1);
        CHECK(t.at < busy_until);
        tl = loop_free(tl);
}

TEST_TIMEOUT(quota_accounting, 10) {
        ipcfd d;
        memset(&d, 0, sizeof(d));
        conf_init(&d.conf);
        d.conf.limits.flows_per_user = 3;
        d.conf.limits.unbounded_bytes_per_user = 100;
        dlist_init(&d.users);
        user *u = user_ref_uid(&d, 1000), *v = user_ref_uid(&d, 1001);
        CHECK(u && v && u != v);
        CHECK(user_ref_uid(&d, 1000) == u);
        CHECK_EQ(u->refs, 2);
        user_unref(u);
        CHECK_OK(quota_charge(u, QUOTA_FLOWS, 2));
        CHECK_ERR(quota_charge(u, QUOTA_FLOWS, 2), -EDQUOT);
        CHECK_EQ(u->used[QUOTA_FLOWS], 2);
        CHECK_OK(quota_charge(u, QUOTA_FLOWS, 1));
        CHECK_ERR(quota_check(u, QUOTA_FLOWS, 1), -EDQUOT);
        CHECK_OK(quota_check(v, QUOTA_FLOWS, 3));
        quota_release(u, QUOTA_FLOWS, 3);
        CHECK_OK(quota_charge(u, QUOTA_BYTES, 100));
        CHECK_ERR(quota_charge(u, QUOTA_BYTES, 1), -EDQUOT);
        CHECK_ERR(quota_check(v, QUOTA_BYTES, UINT64_MAX), -EDQUOT);
        user_unref(u);
        user_unref(v);
        CHECK(dlist_empty(&d.users));
}
