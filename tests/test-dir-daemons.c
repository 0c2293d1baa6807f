/*
 * test-dir-daemons.c — the directory in the daemon, for real: a three-member
 * etcd cluster on loopback (tests/support/etcdcluster.c) and three real
 * ipcfd ("alpha", "beta", "gamma": distinct UDP ports on 127.0.0.1, each
 * enrolling the others) with [directory] backend = etcd. This process plays
 * beta's applications; servers are forked children on alpha and gamma.
 *
 *   - a name registered on alpha is allocated from beta by name alone (the
 *     "hosts" resolver's default is off with a directory: only the
 *     directory can place it) and real bytes go both ways; a watch on beta
 *     hears it come; two hosts with one name are spread; name@host pins;
 *     a name no host may allocate is never published; unregistration and
 *     death unpublish at once (NAME_DOWN, then ENOENT);
 *   - kill -9 of alpha's daemon: its names vanish after the lease's TTL and
 *     allocations fail cleanly; one etcd member killed: everything works;
 *     the whole cluster down: local flows and cached names work, an
 *     uncached name fails with ENOLINK within request_timeout_ms; the
 *     cluster back: names registered meanwhile are published by themselves.
 *   - records written straight into etcd by another writer, naming an
 *     enrolled host with a fingerprint that is not its key's, or a host not
 *     enrolled, lead nowhere (counted as unusable);
 *   - the config: trust_keys = yes, or a directory without enrolled hosts,
 *     is refused at start.
 */
#include <signal.h>
#include <sodium.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "ipcf.h"
#include "support/etcdcluster.h"
#include "support/hostset.h"
#include "support/test.h"

#define REQUEST_MS 1500

static hostset S;
static etcd_cluster C;

/* Start the cluster and the three daemons, every one with extra rules. */
static void start_all(const char *rules) {
        etcd_cluster_start(&C, 3);
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        char conf[4096];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s %s %s\nttl_s = 2\nrequest_timeout_ms = %d\n%s",
                 C.client_url[0], C.client_url[1], C.client_url[2], REQUEST_MS, rules ? rules : "");
        for (int i = 0; i < 3; i++)
                hostset_start(&S, i, conf);
        for (int i = 0; i < 3; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
}

static void stop_all(void) {
        hostset_stop(&S);
        etcd_cluster_stop(&C);
}

/* A server on a host: registers name, echoes every flow until it ends,
 * until its daemon goes (or it is killed). It runs in a fresh process (this
 * program executed again with DIRTEST_SERVE=name): the library keeps the
 * runtime directory of its first use, and this process uses beta's. */
static void echo_server(const char *name) {
        int reg = ipcf_register(name, NULL);
        if (reg < 0)
                _exit(2);
        static char buf[1 << 16];
        for (;;) {
                int port = ipcf_accept(reg, 60000, NULL);
                if (port == -ETIMEDOUT || port == -ECANCELED)
                        continue;
                if (port < 0)
                        _exit(0);
                ssize_t n;
                while ((n = ipcf_read(port, buf, sizeof(buf), 20000)) >= 0)
                        if (ipcf_write(port, buf, (size_t)n, 20000) != n)
                                break;
                ipcf_dealloc(port, NULL);
        }
}

__attribute__((constructor)) static void maybe_serve(void) {
        const char *name = getenv("DIRTEST_SERVE");
        if (name && *name)
                echo_server(name);
}

static pid_t serve(int host, const char *name) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                hostset_enter(&S, host);
                setenv("DIRTEST_SERVE", name, 1);
                execl("/proc/self/exe", "test-dir-daemons", (char *)NULL);
                _exit(127);
        }
        return pid;
}

/* Real bytes both ways on port. */
static void echo_check(int port, int count) {
        static uint8_t out[8192], in[8192];
        for (int i = 0; i < count; i++) {
                size_t len = (size_t)(i * 7919u % sizeof(out)) + 1;
                test_fill(out, len, (uint64_t)i);
                CHECK_EQ(ipcf_write(port, out, len, 10000), (ssize_t)len);
                CHECK_EQ(ipcf_read(port, in, sizeof(in), 10000), (ssize_t)len);
                CHECK_MEM(in, out, len);
        }
}

/* Allocate name until it is not `until_not` (bounded by ms). */
static int alloc_until(const char *name, int until_not, int ms, ipcf_reason *why) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        int r;
        do {
                r = ipcf_alloc(name, NULL, 5000, why);
                if (r != until_not)
                        return r;
                usleep(50000);
        } while (test_now_ms() < end);
        return r;
}

/* Allocate name (retrying while the directory has not heard of it) and
 * check bytes; returns the host that served it (the part after '@'). */
static const char *use(const char *name, char *host, size_t size) {
        int port = CHECK_OK(alloc_until(name, -ENOENT, 10000, NULL));
        ipcf_peer_info pi;
        CHECK_OK(ipcf_peer(port, &pi));
        const char *at = strrchr(pi.name, '@');
        if (!at)
                test_fail(__FILE__, __LINE__, "peer name %s", pi.name);
        str_copy(host, at + 1, size);
        echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, "done"));
        return host;
}

/* The next NAME_UP or NAME_DOWN of name, within ms. */
static int next_name_event(const char *name, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        while (test_now_ms() < end) {
                ipcf_event ev;
                int r = ipcf_notify_next(200, &ev);
                if (r == -ETIMEDOUT || r == -EAGAIN)
                        continue;
                CHECK_OK(r);
                if (strcmp(ev.name, name) == 0 && (ev.kind == IPCF_EVENT_NAME_UP || ev.kind == IPCF_EVENT_NAME_DOWN))
                        return ev.kind;
        }
        return 0;
}

/* The directory's health on this process's host (ipcf_hosts): waits up to
 * ms for live == want_live; returns whether it came. */
static bool dir_live_becomes(bool want_live, int ms, ipcf_dir_health *ret) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        for (;;) {
                ipcf_host_listing *hl;
                CHECK_OK(ipcf_hosts(&hl));
                CHECK(hl->directory != NULL);
                *ret = *hl->directory;
                ipcf_free(hl);
                if (!!ret->live == want_live)
                        return true;
                if (test_now_ms() > end)
                        return false;
                usleep(100000);
        }
}

/* `ipcf hosts [--json]` on host i: its output. */
static char *cli_hosts(int i, bool json) {
        int p[2];
        CHECK(pipe(p) == 0);
        const char *argv[] = { "bin/ipcf", "hosts", json ? "--json" : NULL, NULL };
        pid_t pid = hostset_spawn(&S, i, argv, -1, p[1]);
        close(p[1]);
        static char out[8192];
        size_t n = 0;
        ssize_t k;
        while (n < sizeof(out) - 1 && (k = read(p[0], out + n, sizeof(out) - 1 - n)) > 0)
                n += (size_t)k;
        out[n] = 0;
        close(p[0]);
        CHECK_EQ(test_wait(pid, 10000), 0);
        return out;
}

TEST_TIMEOUT(dir_name_across_hosts_watch_spread_pin, 180) {
        start_all("[name hidden]\nremote_allocate =\n[name *]\nremote_allocate = *@*\n");
        hostset_enter(&S, 1); /* this process: beta's applications */
        CHECK_OK(ipcf_watch("svc"));
        pid_t on_alpha = serve(0, "svc");
        CHECK_EQ(next_name_event("svc", 10000), IPCF_EVENT_NAME_UP);
        char host[64];
        CHECK(strcmp(use("svc", host, sizeof(host)), "alpha") == 0);

        /* the same name on gamma: spread over both (round robin) */
        pid_t on_gamma = serve(2, "svc");
        int seen_gamma = 0;
        for (int i = 0; i < 100 && !seen_gamma; i++) {
                seen_gamma = strcmp(use("svc", host, sizeof(host)), "gamma") == 0;
                if (!seen_gamma)
                        usleep(50000);
        }
        CHECK(seen_gamma);
        int alpha = 0, gamma = 0;
        for (int i = 0; i < 6; i++) {
                use("svc", host, sizeof(host));
                alpha += strcmp(host, "alpha") == 0;
                gamma += strcmp(host, "gamma") == 0;
        }
        CHECK_EQ(alpha, 3);
        CHECK_EQ(gamma, 3);
        /* a pin takes that host only */
        for (int i = 0; i < 3; i++)
                CHECK(strcmp(use("svc@gamma", host, sizeof(host)), "gamma") == 0);

        /* a name no host may allocate is not published: once a visible name
         * registered after it is found, it still is not */
        pid_t hidden = serve(0, "hidden");
        usleep(100000);
        pid_t shown = serve(0, "shown");
        CHECK(strcmp(use("shown", host, sizeof(host)), "alpha") == 0);
        CHECK_ERR(ipcf_alloc("hidden", NULL, 5000, NULL), -ENOENT);

        /* deaths unpublish at once: the watch hears the last host go */
        kill(on_alpha, SIGKILL);
        test_wait(on_alpha, 5000);
        for (int i = 0; i < 4; i++)
                CHECK(strcmp(use("svc", host, sizeof(host)), "gamma") == 0);
        uint64_t t0 = test_now_ms();
        kill(on_gamma, SIGKILL);
        test_wait(on_gamma, 5000);
        CHECK_EQ(next_name_event("svc", 5000), IPCF_EVENT_NAME_DOWN);
        fprintf(stderr, "NAME_DOWN on beta %llu ms after the last server died\n",
                (unsigned long long)(test_now_ms() - t0));
        CHECK_ERR(ipcf_alloc("svc", NULL, 5000, NULL), -ENOENT);
        kill(hidden, SIGKILL);
        kill(shown, SIGKILL);
        test_wait(hidden, 5000);
        test_wait(shown, 5000);
        stop_all();
}

TEST_TIMEOUT(dir_daemon_killed_members_killed_cluster_down_and_back, 240) {
        start_all("[name *]\nremote_allocate = *@*\n");
        hostset_enter(&S, 1);
        char host[64];
        serve(0, "a1");
        serve(2, "g1");
        CHECK(strcmp(use("a1", host, sizeof(host)), "alpha") == 0);
        CHECK(strcmp(use("g1", host, sizeof(host)), "gamma") == 0);
        /* the health: live, the two names cached, nothing published here */
        ipcf_dir_health h;
        CHECK(dir_live_becomes(true, 5000, &h));
        CHECK(h.reachable && h.synced && h.complete && h.lease != 0);
        CHECK(h.names >= 2 && h.published == 0 && h.revision > 0);
        CHECK(strstr(h.endpoint, "http://127.") == h.endpoint);
        char *out = cli_hosts(2, true); /* gamma publishes g1 */
        if (!strstr(out, "\"directory\":{") || !strstr(out, "\"live\":true") || !strstr(out, "\"published\":1"))
                test_fail(__FILE__, __LINE__, "ipcf hosts --json on gamma: %s", out);
        out = cli_hosts(2, false);
        fprintf(stderr, "%s", out);
        if (!strstr(out, "\ndirectory: etcd http://127.") || !strstr(out, ", reachable, live; ") ||
            !strstr(out, " 1 published (0 unconfirmed)"))
                test_fail(__FILE__, __LINE__, "ipcf hosts on gamma: %s", out);

        /* kill -9 of alpha's daemon: a1 goes when its lease expires; until
         * then allocations fail cleanly (host unreachable, or timed out
         * while the association was not yet declared dead) */
        uint64_t t0 = test_now_ms();
        hostset_kill_host(&S, 0);
        int r;
        for (;;) {
                r = ipcf_alloc("a1", NULL, 3000, NULL);
                if (r == -ENOENT || test_now_ms() - t0 > 15000)
                        break;
                if (r != -EHOSTUNREACH && r != -ETIMEDOUT)
                        test_fail(__FILE__, __LINE__, "a1 after alpha died: %d (%s)", r, strerror(-r));
                usleep(100000);
        }
        CHECK_ERR(r, -ENOENT);
        fprintf(stderr, "a1 gone from beta %llu ms after alpha's daemon was killed (ttl 2 s)\n",
                (unsigned long long)(test_now_ms() - t0));

        /* one member killed: everything keeps working, new names included */
        etcd_cluster_kill(&C, 0);
        serve(2, "g2");
        CHECK(strcmp(use("g2", host, sizeof(host)), "gamma") == 0);
        CHECK(strcmp(use("g1", host, sizeof(host)), "gamma") == 0);

        /* the whole cluster down */
        etcd_cluster_kill(&C, 1);
        etcd_cluster_kill(&C, 2);
        CHECK(dir_live_becomes(false, 10000, &h));
        CHECK_OK(ipcf_watch("local"));
        serve(1, "local");
        CHECK_EQ(next_name_event("local", 10000), IPCF_EVENT_NAME_UP);
        int port = CHECK_OK(ipcf_alloc("local", NULL, 5000, NULL)); /* a local flow */
        echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK(strcmp(use("g1", host, sizeof(host)), "gamma") == 0); /* cached */
        /* an uncached name: ENOLINK within the request timeout (once the
         * daemon has seen its watch go: until then the cache answers) */
        uint64_t until = test_now_ms() + 10000, took = 0;
        do {
                uint64_t t1 = test_now_ms();
                ipcf_reason why;
                memset(&why, 0, sizeof(why));
                r = ipcf_alloc("never", NULL, 10000, &why);
                took = test_now_ms() - t1;
                if (r == -ENOLINK)
                        CHECK(strcmp(why.text, "directory unreachable") == 0);
                else
                        CHECK_ERR(r, -ENOENT);
        } while (r != -ENOLINK && test_now_ms() < until);
        CHECK_ERR(r, -ENOLINK);
        fprintf(stderr, "uncached name with etcd down: ENOLINK after %llu ms (request_timeout_ms %d)\n",
                (unsigned long long)took, REQUEST_MS);
        CHECK(took <= REQUEST_MS + 500);
        /* a short allocation timeout wins over the directory's: still ENOLINK */
        uint64_t t2 = test_now_ms();
        CHECK_ERR(ipcf_alloc("never2", NULL, 400, NULL), -ENOLINK);
        CHECK(test_now_ms() - t2 <= 600);
        serve(2, "during"); /* registered while etcd is down */
        usleep(300000);

        /* the cluster back: "during" published by itself, the rest as before */
        for (int i = 0; i < 3; i++)
                etcd_cluster_restart(&C, i);
        CHECK(etcd_cluster_wait_ready(&C, -1, 30000));
        CHECK(dir_live_becomes(true, 20000, &h));
        CHECK(h.reachable);
        t0 = test_now_ms();
        uint64_t until_back = t0 + 20000;
        do {
                port = ipcf_alloc("during", NULL, 5000, NULL);
                if (port == -ENOENT || port == -ENOLINK)
                        usleep(50000);
        } while ((port == -ENOENT || port == -ENOLINK) && test_now_ms() < until_back);
        CHECK_OK(port);
        echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, NULL));
        fprintf(stderr, "'during' allocatable from beta %llu ms after the cluster was ready again\n",
                (unsigned long long)(test_now_ms() - t0));
        CHECK(strcmp(use("g2", host, sizeof(host)), "gamma") == 0);
        CHECK_ERR(ipcf_alloc("a1", NULL, 5000, NULL), -ENOENT);
        stop_all();
}

/* Put key = value into etcd as another writer would (curl(1) to member 1's
 * JSON gateway). */
static void etcd_put_raw(const char *key, const char *value) {
        char k64[1024], v64[2048], cmd[4096];
        sodium_bin2base64(k64, sizeof(k64), (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64(v64, sizeof(v64), (const unsigned char *)value, strlen(value),
                          sodium_base64_VARIANT_ORIGINAL);
        snprintf(cmd, sizeof(cmd),
                 "curl -sf --max-time 5 -o /dev/null -X POST %s/v3/kv/put -d '{\"key\":\"%s\",\"value\":\"%s\"}'",
                 C.client_url[1], k64, v64);
        CHECK(system(cmd) == 0);
}

TEST_TIMEOUT(dir_records_naming_a_wrong_key_or_unenrolled_host_lead_nowhere, 120) {
        start_all("[name *]\nremote_allocate = *@*\n");
        hostset_enter(&S, 1);
        char fp0[80];
        snprintf(fp0, sizeof(fp0), "sha256:%064d", 0);
        char rec[256];
        snprintf(rec, sizeof(rec), "{\"v\":1,\"addr\":\"127.0.0.1:%u\",\"fp\":\"%s\"}", S.h[0].port, fp0);
        ipcf_dir_health h;
        CHECK(dir_live_becomes(true, 5000, &h));
        uint64_t before = h.unusable, records = h.records;
        CHECK_OK(ipcf_watch("forged"));
        etcd_put_raw("/ipcf/names/forged/alpha", rec); /* alpha, not alpha's key */
        etcd_put_raw("/ipcf/names/stray/delta", rec);  /* no such host here */
        for (int i = 0; i < 100 && h.records < records + 2; i++) { /* the cache has them */
                usleep(50000);
                CHECK(dir_live_becomes(true, 5000, &h));
        }
        CHECK_EQ(h.records, records + 2);
        CHECK_EQ(next_name_event("forged", 500), 0); /* not up: it leads nowhere */
        CHECK_ERR(ipcf_alloc("forged", NULL, 5000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("stray", NULL, 5000, NULL), -ENOENT);
        CHECK(dir_live_becomes(true, 5000, &h));
        CHECK(h.unusable >= before + 2);
        /* alpha's real names still work beside them */
        serve(0, "real");
        char host[64];
        CHECK(strcmp(use("real", host, sizeof(host)), "alpha") == 0);
        stop_all();
}

TEST_TIMEOUT(dir_config_refused, 60) {
        /* trust_keys = yes, and a directory without enrolled hosts: the
         * daemon exits 1 with the line */
        char dir[] = "/tmp/ipcf-dirconf-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        const char *confs[] = {
                "[hosts]\nname = solo\nlisten = 127.0.0.1:47391\n[host other]\naddress = 127.0.0.1:2\n"
                "key = bfULdmSbIPeW7a+VziUKBbjBGvAopCSNlHYpLrCdaW8=\n"
                "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\ntrust_keys = yes\n",
                "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\n",
        };
        const char *want[] = { "trust_keys = yes is not supported", "wants the hosts it may reach enrolled" };
        for (size_t i = 0; i < ARRAY_SIZE(confs); i++) {
                char path[300], cmd[1024];
                snprintf(path, sizeof(path), "%s/ipcfd.conf", dir);
                FILE *f = fopen(path, "w");
                CHECK(f != NULL);
                fputs(confs[i], f);
                fclose(f);
                snprintf(cmd, sizeof(cmd),
                         "IPCF_RUNTIME_DIR=%s IPCF_STATE_DIR=%s timeout 20 %s --config %s 2>&1; echo rc=$?", dir, dir,
                         test_build_path("bin/ipcfd"), path);
                FILE *p = popen(cmd, "r");
                CHECK(p != NULL);
                char out[4096] = "";
                size_t n = fread(out, 1, sizeof(out) - 1, p);
                out[n] = 0;
                pclose(p);
                if (!strstr(out, want[i]) || !strstr(out, "rc=1"))
                        test_fail(__FILE__, __LINE__, "config %zu: %s", i, out);
        }
        char rm[300];
        snprintf(rm, sizeof(rm), "rm -rf %s", dir);
        CHECK(system(rm) == 0);
}
