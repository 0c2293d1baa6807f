/*
 * test-dir-probe.c — the directory against what an outside tester tries
 * (issue 11): a real etcd and real ipcfd ("alpha", "beta" on 127.0.0.1,
 * each enrolling the other), [directory] backend = etcd. This process plays
 * beta's applications; servers are forked children on alpha.
 *
 *   - etcd wiped and started anew on the same address (an operator's
 *     rebuilt cluster: empty, its revisions counting from 1 again): the
 *     daemons publish their names again, a name registered afterwards is
 *     found from the other host, a name gone afterwards leaves;
 *   - alpha's own record overwritten by another writer (garbage, which
 *     beta drops; a copy without a lease, which would outlive alpha): alpha
 *     puts it again, so beta reaches the name and, once alpha's daemon is
 *     killed, loses it within the TTL;
 *   - values near etcd's bound (1.4 MB) put under the prefix by someone
 *     else: 30 of them, more than one answer can hold, before the daemons
 *     start (their listing must still end: live, NAME_UP heard); 8 of
 *     them met by a watch catching up (beta's daemon stopped while etcd
 *     restarts and they are put): a name registered afterwards is heard;
 *   - the heartbeat of an idle daemon costs etcd nothing of what others
 *     wrote (a first key under the prefix holding 1.4 MB);
 *   - a cold lookup (the cache full) finds a name past 1000 longer names
 *     "svc/..." that sort before its own records;
 *   - a daemon stopped with SIGTERM: its names go at once (NAME_DOWN on
 *     beta), not when its lease runs out;
 *   - probes that found nothing: names of every shape ('/', '@',
 *     punctuation, the longest) reached from the other host; every change
 *     of a flapping name heard, alternating; one of two hosts of a name
 *     killed (the other reached, no NAME_DOWN); an uncached name with etcd down
 *     (ENOLINK within any allocation timeout); with trust_keys = yes,
 *     records of new hosts with keys of their own "at" beta's own address
 *     and at alpha's (enrolled, then EHOSTUNREACH within the timeout: the
 *     daemon there does not hold the key; both daemons serve on).
 */
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/dirtest.h"
#include "support/etcdcluster.h"
#include "support/hostset.h"
#include "support/shell.h"
#include "support/test.h"

static hostset S;
static etcd_cluster C;

static const char *conf_one_member(void) { return dirtest_conf(C.client_url[0]); }

/* alpha and beta on the member, this process one of beta's. */
static void start_daemons(void) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        for (int i = 0; i < 2; i++)
                hostset_start(&S, i, conf_one_member());
        for (int i = 0; i < 2; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
        hostset_enter(&S, 1);
}

static void start_two(void) {
        etcd_cluster_start(&C, 1);
        start_daemons();
}

static void stop_two(void) {
        hostset_stop(&S);
        etcd_cluster_stop(&C);
}

/* The store's revision moved on by n (puts of one key outside the prefix). */
static void churn(int n) {
        char *out = NULL;
        int st = test_sh(&out, 120,
                         "for i in $(seq %d); do curl -sf --max-time 5 -o /dev/null -X POST %s/v3/kv/put "
                         "-d '{\"key\":\"Y2h1cm4=\",\"value\":\"eA==\"}' || exit 1; done",
                         n, C.client_url[0]);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "churn: %d %s", st, out ? out : "");
        free(out);
}

/* ipcf_alloc(name) from beta until it gives want (a port: >= 0), within
 * ms; the last result (a port is deallocated). */
static int alloc_becomes(const char *name, int want, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        for (;;) {
                int r = ipcf_alloc(name, NULL, 3000, NULL);
                if (r >= 0)
                        ipcf_dealloc(r, NULL);
                if ((want >= 0 && r >= 0) || r == want || test_now_ms() > end)
                        return r;
                usleep(100000);
        }
}

/* How many keys etcd holds under /ipcf/names/NAME/HOST. */
static int etcd_count(const char *name, const char *host) {
        char *out = dirtest_record_range(C.client_url[0], name, host, ",\"count_only\":true");
        const char *c = strstr(out, "\"count\":\"");
        int n = c ? atoi(c + 9) : 0;
        free(out);
        return n;
}

TEST_TIMEOUT(dir_etcd_wiped_and_started_anew, 180) {
        start_two();
        churn(300); /* the old store's revision well past what the new one reaches here */
        pid_t before = dirtest_serve(&S, 0, "before");
        char host[64];
        CHECK(strcmp(dirtest_use("before", host, sizeof(host)), "alpha") == 0);

        etcd_cluster_wipe(&C);
        uint64_t t0 = test_now_ms();
        /* alpha's lease is unknown to the new store: a new one, its names put again */
        while (etcd_count("before", "alpha") != 1 && test_now_ms() < t0 + 10000)
                usleep(100000);
        CHECK_EQ(etcd_count("before", "alpha"), 1);
        fprintf(stderr, "'before' put again into the new store %llu ms after it was ready\n",
                (unsigned long long)(test_now_ms() - t0));

        /* a name registered now: the old revisions must not hide it */
        t0 = test_now_ms();
        pid_t after = dirtest_serve(&S, 0, "after");
        int r = alloc_becomes("after", 0, 10000);
        fprintf(stderr, "'after' registered on alpha once etcd was new: %d (%s) after %llu ms\n", r,
                r < 0 ? strerror(-r) : "ok", (unsigned long long)(test_now_ms() - t0));
        CHECK(r >= 0);

        /* a name gone now leaves beta's cache */
        kill(before, SIGKILL);
        test_wait(before, 5000);
        t0 = test_now_ms();
        r = alloc_becomes("before", -ENOENT, 10000);
        fprintf(stderr, "'before' after its server died: %d (%s) after %llu ms\n", r, strerror(-r),
                (unsigned long long)(test_now_ms() - t0));
        CHECK_EQ(r, -ENOENT);
        kill(after, SIGKILL);
        test_wait(after, 5000);
        stop_two();
}

/* The value etcd holds at /ipcf/names/NAME/HOST ("" if none), and its lease. */
static const char *etcd_value(const char *name, const char *host, long long *ret_lease) {
        char key[128], k64[256];
        static char val[8192];
        snprintf(key, sizeof(key), "/ipcf/names/%s/%s", name, host);
        sodium_bin2base64(k64, sizeof(k64), (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_ORIGINAL);
        char *out = TEST_SH_OK("curl -sf --max-time 5 -X POST %s/v3/kv/range -d '{\"key\":\"%s\"}' | python3 -c '"
                               "import sys,json,base64\n"
                               "kvs=json.load(sys.stdin).get(\"kvs\",[])\n"
                               "print(kvs[0].get(\"lease\",\"0\") if kvs else 0)\n"
                               "print(base64.b64decode(kvs[0].get(\"value\",\"\")).decode() if kvs else \"\")'",
                               C.client_url[0], k64);
        char *nl = strchr(out, '\n');
        CHECK(nl != NULL);
        *ret_lease = atoll(out);
        str_copy(val, nl + 1, sizeof(val));
        val[strcspn(val, "\n")] = 0;
        free(out);
        return val;
}

TEST_TIMEOUT(dir_own_record_overwritten_by_another_writer, 180) {
        start_two();
        pid_t svc = dirtest_serve(&S, 0, "svc");
        char host[64];
        CHECK(strcmp(dirtest_use("svc", host, sizeof(host)), "alpha") == 0);
        long long lease;
        char good[8192];
        str_copy(good, etcd_value("svc", "alpha", &lease), sizeof(good));
        CHECK(lease != 0 && good[0] == '{');

        /* garbage over alpha's record: beta's cache drops it (documented);
         * alpha, which still has the name, puts it again */
        dirtest_put_raw(C.client_url[0], "/ipcf/names/svc/alpha", "garbage");
        usleep(300000);
        uint64_t t0 = test_now_ms();
        int r = alloc_becomes("svc", 0, 5000);
        fprintf(stderr, "svc after garbage over alpha's record: %d after %llu ms\n", r,
                (unsigned long long)(test_now_ms() - t0));
        CHECK(r >= 0);

        /* alpha's own record, copied without a lease: alpha's lease must
         * still decide how long it lives */
        dirtest_put_raw(C.client_url[0], "/ipcf/names/svc/alpha", good);
        t0 = test_now_ms();
        while (test_now_ms() < t0 + 5000 && (etcd_value("svc", "alpha", &lease), lease == 0))
                usleep(100000);
        fprintf(stderr, "alpha's record under a lease again %llu ms after a copy without one\n",
                (unsigned long long)(test_now_ms() - t0));
        CHECK(lease != 0);
        hostset_kill_host(&S, 0);
        t0 = test_now_ms();
        r = alloc_becomes("svc", -ENOENT, 8000);
        fprintf(stderr, "svc on beta after alpha's daemon was killed (ttl 2 s): %d (%s) after %llu ms\n", r,
                strerror(-r), (unsigned long long)(test_now_ms() - t0));
        CHECK_EQ(r, -ENOENT);
        kill(svc, SIGKILL);
        test_wait(svc, 5000);
        stop_two();
}

/* n values of size bytes under /ipcf/names/hugeK/x (not records: too big),
 * each its own put. */
static void put_huge(int n, size_t size) {
        char *out = NULL;
        int st = test_sh(&out, 300,
                         "python3 -c 'import base64,json,http.client,sys\n"
                         "val=base64.b64encode(b\"{\" + b\"x\" * %zu).decode()\n"
                         "for k in range(%d):\n"
                         "  key=base64.b64encode(b\"/ipcf/names/huge%%d/x\" %% k).decode()\n"
                         "  c=http.client.HTTPConnection(sys.argv[1], 2379, timeout=60)\n"
                         "  c.request(\"POST\", \"/v3/kv/put\", json.dumps({\"key\":key,\"value\":val}))\n"
                         "  r=c.getresponse(); body=r.read(); c.close()\n"
                         "  if r.status != 200: sys.exit(\"put %%d: %%d %%s\" %% (k, r.status, body[:200]))\n"
                         "' %s",
                         size, n, C.host[0]);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "huge puts: %d %s", st, out ? out : "");
        free(out);
}

TEST_TIMEOUT(dir_huge_values_under_the_prefix, 240) {
        etcd_cluster_start(&C, 1);
        put_huge(30, 1400 * 1000); /* 42 MB of values: more than one answer of 32 MiB */
        start_daemons();
        ipcf_dir_health h;
        uint64_t t0 = test_now_ms();
        bool live = dirtest_live_becomes(true, 15000, &h);
        fprintf(stderr, "beta's directory live: %d after %llu ms (rejected %llu, resyncs %llu)\n", live,
                (unsigned long long)(test_now_ms() - t0), (unsigned long long)h.rejected,
                (unsigned long long)h.resyncs);
        CHECK(live);
        CHECK_OK(ipcf_watch("w1"));
        pid_t w1 = dirtest_serve(&S, 0, "w1");
        ipcf_event ev;
        t0 = test_now_ms();
        int r;
        do
                r = ipcf_notify_next(200, &ev);
        while ((r == -ETIMEDOUT || r == -EAGAIN || (r == 0 && strcmp(ev.name, "w1"))) && test_now_ms() < t0 + 5000);
        CHECK_OK(r);
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        kill(w1, SIGKILL);
        test_wait(w1, 5000);
        stop_two();
}

TEST_TIMEOUT(dir_watch_catching_up_past_huge_values, 240) {
        start_two();
        ipcf_dir_health h;
        CHECK(dirtest_live_becomes(true, 15000, &h));
        /* beta's daemon away while etcd restarts and huge values are put:
         * its watch then starts again from before them, and etcd sends
         * the events it missed together */
        kill(S.h[1].d.pid, SIGSTOP);
        etcd_cluster_kill(&C, 0);
        etcd_cluster_restart(&C, 0);
        CHECK(etcd_cluster_wait_ready(&C, 0, 30000));
        put_huge(8, 1400 * 1000);
        kill(S.h[1].d.pid, SIGCONT);
        CHECK_OK(ipcf_watch("w2"));
        pid_t w2 = dirtest_serve(&S, 0, "w2");
        uint64_t t0 = test_now_ms();
        int ev = dirtest_next_name_event("w2", 15000);
        dirtest_live_becomes(true, 1, &h);
        fprintf(stderr, "w2 registered on alpha after the huge values: event %d on beta after %llu ms "
                        "(live %d, watch restarts %llu, rejected %llu)\n",
                ev, (unsigned long long)(test_now_ms() - t0), h.live, (unsigned long long)h.watch_restarts,
                (unsigned long long)h.rejected);
        CHECK_EQ(ev, IPCF_EVENT_NAME_UP);
        kill(w2, SIGKILL);
        test_wait(w2, 5000);
        stop_two();
}

TEST_TIMEOUT(dir_names_of_every_shape, 180) {
        start_two();
        char longest[IPCF_NAME_MAX + 1];
        memset(longest, 'n', IPCF_NAME_MAX);
        longest[IPCF_NAME_MAX] = 0;
        longest[5] = '/';
        /* '/' splits keys, '@' pins hosts, a name of the longest length
         * with a '/' (its key split at the last one), every punctuation
         * sign (they travel in base64) */
        const char *names[] = { "x/y", "x", "mail@home", "a@alpha.x", "~!#$%^&*()_+{}|:\"<>?`-=[]\\;',./", longest };
        pid_t srv[6];
        for (int i = 0; i < 6; i++)
                srv[i] = dirtest_serve(&S, 0, names[i]);
        for (int i = 0; i < 6; i++) {
                int r = alloc_becomes(names[i], 0, 8000);
                fprintf(stderr, "'%s' from beta: %d (%s)\n", names[i], r, r < 0 ? strerror(-r) : "ok");
                CHECK(r >= 0);
        }
        for (int i = 0; i < 6; i++) {
                kill(srv[i], SIGKILL);
                test_wait(srv[i], 5000);
        }
        stop_two();
}

struct flap {
        int cycles, gap_ms;
};

static void flapper(void *arg) {
        const struct flap *f = arg;
        for (int i = 0; i < f->cycles; i++) {
                int reg = CHECK_OK(ipcf_register("flap", NULL));
                usleep((useconds_t)f->gap_ms * 1000u);
                CHECK_OK(ipcf_dealloc(reg, NULL));
                usleep((useconds_t)f->gap_ms * 1000u);
        }
}

TEST_TIMEOUT(dir_watch_hears_every_change, 180) {
        start_two();
        CHECK_OK(ipcf_watch("flap"));
        struct flap fl[] = { { 10, 300 }, { 30, 20 } };
        for (int k = 0; k < 2; k++) {
                pid_t pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        hostset_enter(&S, 0);
                        flapper(&fl[k]);
                        _exit(0);
                }
                int ups = 0, downs = 0, last = 0, ev;
                bool alternating = true;
                /* Until 3 s without an event; the first round ends as soon as
                 * it has heard every change: an event too many from it would
                 * still be heard, in the second round's counts. */
                while ((ev = dirtest_next_name_event("flap", 3000)) != 0) {
                        alternating &= ev != last;
                        last = ev;
                        ups += ev == IPCF_EVENT_NAME_UP;
                        downs += ev == IPCF_EVENT_NAME_DOWN;
                        if (k == 0 && ups == fl[k].cycles && downs == fl[k].cycles)
                                break;
                }
                CHECK_EQ(test_wait(pid, 10000), 0);
                fprintf(stderr, "%d cycles %d ms apart on alpha: %d NAME_UP, %d NAME_DOWN on beta, alternating %d\n",
                        fl[k].cycles, fl[k].gap_ms, ups, downs, alternating);
                CHECK(alternating && last == IPCF_EVENT_NAME_DOWN);
                CHECK_EQ(ups, fl[k].cycles);
                CHECK_EQ(downs, fl[k].cycles);
        }
        stop_two();
}

TEST_TIMEOUT(dir_one_of_two_hosts_killed_others_still_reached, 180) {
        etcd_cluster_start(&C, 1);
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        for (int i = 0; i < 3; i++)
                hostset_start(&S, i, conf_one_member());
        for (int i = 0; i < 3; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
        hostset_enter(&S, 1);
        pid_t on_alpha = dirtest_serve(&S, 0, "svc"), on_gamma = dirtest_serve(&S, 2, "svc");
        char host[64];
        bool seen[2] = { false, false };
        for (int i = 0; i < 20 && !(seen[0] && seen[1]); i++) {
                dirtest_use("svc", host, sizeof(host));
                seen[0] |= !strcmp(host, "alpha");
                seen[1] |= !strcmp(host, "gamma");
        }
        CHECK(seen[0] && seen[1]);
        CHECK_OK(ipcf_watch("svc"));
        CHECK_EQ(dirtest_next_name_event("svc", 5000), IPCF_EVENT_NAME_UP); /* up already: said at once */
        hostset_kill_host(&S, 0);
        uint64_t worst = 0;
        for (int i = 0; i < 10; i++) {
                uint64_t t0 = test_now_ms();
                int port = ipcf_alloc("svc", NULL, 10000, NULL);
                uint64_t took = test_now_ms() - t0;
                worst = took > worst ? took : worst;
                if (port < 0)
                        fprintf(stderr, "svc %d after alpha's daemon was killed: %d (%s) in %llu ms\n", i, port,
                                strerror(-port), (unsigned long long)took);
                CHECK(port >= 0);
                ipcf_peer_info pi;
                CHECK_OK(ipcf_peer(port, &pi));
                CHECK(strstr(pi.name, "@gamma") != NULL);
                CHECK_OK(ipcf_dealloc(port, NULL));
        }
        fprintf(stderr, "svc after alpha's daemon was killed: 10 of 10 to gamma, the slowest in %llu ms\n",
                (unsigned long long)worst);
        /* alpha's record gone with its lease (ttl_s 2): svc is still up on
         * gamma (no event until 1 s after etcd no longer holds the record) */
        uint64_t t0 = test_now_ms();
        while (etcd_count("svc", "alpha") != 0 && test_now_ms() < t0 + 8000)
                CHECK_EQ(dirtest_next_name_event("svc", 100), 0);
        CHECK_EQ(etcd_count("svc", "alpha"), 0);
        CHECK_EQ(dirtest_next_name_event("svc", 1000), 0);
        kill(on_alpha, SIGKILL);
        kill(on_gamma, SIGKILL);
        test_wait(on_alpha, 5000);
        test_wait(on_gamma, 5000);
        hostset_stop(&S);
        etcd_cluster_stop(&C);
}

TEST_TIMEOUT(dir_uncached_name_with_etcd_down_fails_within_any_timeout, 180) {
        start_two();
        ipcf_dir_health h;
        CHECK(dirtest_live_becomes(true, 15000, &h));
        etcd_cluster_kill(&C, 0);
        CHECK(dirtest_live_becomes(false, 15000, &h));
        int timeouts[] = { 50, 100, 300, 1000, 5000, -1 };
        for (int i = 0; i < 6; i++) {
                ipcf_reason why;
                memset(&why, 0, sizeof(why));
                uint64_t t0 = test_now_ms();
                int r = ipcf_alloc("nowhere", NULL, timeouts[i], &why);
                uint64_t took = test_now_ms() - t0;
                fprintf(stderr, "uncached, etcd down, timeout %d ms: %d (%s) '%s' after %llu ms\n", timeouts[i], r,
                        strerror(-r), why.text, (unsigned long long)took);
                CHECK_EQ(r, -ENOLINK);
                uint64_t bound = timeouts[i] < 0 || timeouts[i] > 1500 ? 1500 : (uint64_t)timeouts[i];
                CHECK(took <= bound + 500);
        }
        stop_two();
}

/* Bytes etcd's member has sent to its clients so far (its metrics). */
static double etcd_sent_bytes(void) {
        char *out = TEST_SH_OK("curl -sf --max-time 5 %s/metrics | awk '/^etcd_network_client_grpc_sent_bytes_total/ {print $2}'",
                               C.client_url[0]);
        double v = atof(out);
        free(out);
        return v;
}

TEST_TIMEOUT(dir_heartbeat_costs_no_one_elses_values, 120) {
        etcd_cluster_start(&C, 1);
        /* the first key under the prefix, with a value near etcd's bound */
        char *out = NULL;
        int st = test_sh(&out, 60,
                         "python3 -c 'import base64,json\n"
                         "print(json.dumps({\"key\":base64.b64encode(b\"/ipcf/names/!/x\").decode(),"
                         "\"value\":base64.b64encode(b\"x\" * 1400000).decode()}))' > %s/first.json && "
                         "curl -sf --max-time 20 -o /dev/null -X POST %s/v3/kv/put -d @%s/first.json",
                         C.dir, C.client_url[0], C.dir);
        CHECK_EQ(st, 0);
        free(out);
        start_daemons();
        ipcf_dir_health h;
        CHECK(dirtest_live_becomes(true, 15000, &h));
        double before = etcd_sent_bytes();
        sleep(5); /* idle: heartbeats (1 s) and keepalives only */
        double sent = etcd_sent_bytes() - before;
        fprintf(stderr, "etcd sent %.0f bytes in 5 s of two idle daemons\n", sent);
        CHECK(sent < 200000);
        stop_two();
}

TEST_TIMEOUT(dir_cold_lookup_past_many_longer_names, 180) {
        etcd_cluster_start(&C, 1);
        /* 1000 names "svc/aNNNN", sorting before "svc"'s own records */
        char *out = NULL;
        int st = test_sh(&out, 120,
                         "python3 -c 'import base64,json,http.client,sys\n"
                         "c=http.client.HTTPConnection(sys.argv[1], 2379)\n"
                         "for i in range(1000):\n"
                         "  k=base64.b64encode(b\"/ipcf/names/svc/a%%04d/delta\" %% i).decode()\n"
                         "  v=base64.b64encode(b\"{\\\"v\\\":1,\\\"addr\\\":\\\"1.2.3.4:5\\\",\\\"fp\\\":\\\"f\\\"}\").decode()\n"
                         "  c.request(\"POST\", \"/v3/kv/put\", json.dumps({\"key\":k,\"value\":v}))\n"
                         "  r=c.getresponse(); r.read()\n"
                         "  assert r.status == 200\n"
                         "' %s",
                         C.host[0]);
        CHECK_EQ(st, 0);
        free(out);
        static char conf[1024];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s\nttl_s = 2\nrequest_timeout_ms = 1500\ncache_max = 100\n"
                 "[name *]\nremote_allocate = *@*\n",
                 C.client_url[0]);
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        for (int i = 0; i < 2; i++)
                hostset_start(&S, i, conf);
        for (int i = 0; i < 2; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
        hostset_enter(&S, 1);
        pid_t svc = dirtest_serve(&S, 0, "svc");
        int r = alloc_becomes("svc", 0, 8000);
        fprintf(stderr, "svc from beta (cache full: cold lookups) past 1000 names svc/...: %d (%s)\n", r,
                r < 0 ? strerror(-r) : "ok");
        CHECK(r >= 0);
        kill(svc, SIGKILL);
        test_wait(svc, 5000);
        stop_two();
}

TEST_TIMEOUT(dir_daemon_stopped_cleanly_takes_its_names_at_once, 120) {
        start_two();
        CHECK_OK(ipcf_watch("bye"));
        pid_t bye = dirtest_serve(&S, 0, "bye");
        CHECK_EQ(dirtest_next_name_event("bye", 10000), IPCF_EVENT_NAME_UP);
        uint64_t t0 = test_now_ms();
        hostset_stop_host(&S, 0); /* SIGTERM: every registration on alpha ends with it */
        int ev = dirtest_next_name_event("bye", 5000);
        uint64_t took = test_now_ms() - t0;
        fprintf(stderr, "bye on beta after alpha's daemon stopped on SIGTERM (ttl 2 s): event %d after %llu ms\n",
                ev, (unsigned long long)took);
        CHECK_EQ(ev, IPCF_EVENT_NAME_DOWN);
        CHECK(took < 1000); /* at once, not when the lease runs out */
        kill(bye, SIGKILL);
        test_wait(bye, 5000);
        stop_two();
}

TEST_TIMEOUT(dir_trusted_records_pointing_at_known_addresses, 120) {
        etcd_cluster_start(&C, 1);
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        static char conf[1024];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s\nttl_s = 2\nrequest_timeout_ms = 1500\ntrust_keys = yes\n"
                 "[name *]\nremote_allocate = *@*\n",
                 C.client_url[0]);
        for (int i = 0; i < 2; i++)
                hostset_start(&S, i, conf);
        for (int i = 0; i < 2; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
        hostset_enter(&S, 1);
        /* new hosts, each with a fresh key of its own, "at" beta's own
         * address and at alpha's */
        for (int i = 0; i < 2; i++) {
                char key[64], fp[80], rec[512], k[64];
                dirtest_fresh_key(key, fp);
                snprintf(rec, sizeof(rec), "{\"v\":1,\"addr\":\"127.0.0.1:%u\",\"fp\":\"%s\",\"key\":\"%s\"}",
                         S.h[1 - i].port, fp, key);
                snprintf(k, sizeof(k), "/ipcf/names/evil%d/mallory%d", i, i);
                dirtest_put_raw(C.client_url[0], k, rec);
        }
        usleep(500000);
        for (int i = 0; i < 2; i++) {
                char name[16];
                snprintf(name, sizeof(name), "evil%d", i);
                uint64_t t0 = test_now_ms();
                ipcf_reason why;
                memset(&why, 0, sizeof(why));
                int r = ipcf_alloc(name, NULL, 4000, &why);
                fprintf(stderr, "%s (a new host at %s's address): %d (%s) '%s' after %llu ms\n", name,
                        i ? "alpha" : "beta", r, strerror(-r), why.text, (unsigned long long)(test_now_ms() - t0));
                CHECK(r < 0);
        }
        /* both daemons still serve */
        pid_t real = dirtest_serve(&S, 0, "real");
        char host[64];
        CHECK(strcmp(dirtest_use("real", host, sizeof(host)), "alpha") == 0);
        kill(real, SIGKILL);
        test_wait(real, 5000);
        stop_two();
}
