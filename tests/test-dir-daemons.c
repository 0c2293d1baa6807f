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
 *     (the library) and `ipcf watch` on gamma hear it come; two hosts with
 *     one name are spread; name@host pins; a name no host may allocate is
 *     never published; unregistration (its process alive) and death
 *     unpublish at once (NAME_DOWN, then ENOENT);
 *   - kill -9 of alpha's daemon: its names vanish after the lease's TTL
 *     (NAME_DOWN on beta, timed) and allocations fail cleanly; one etcd
 *     member killed: everything works;
 *     the whole cluster down: local flows and cached names work, an
 *     uncached name fails with ENOLINK within request_timeout_ms; the
 *     cluster back: names registered meanwhile are published by themselves.
 *   - records written straight into etcd by another writer, naming an
 *     enrolled host with a fingerprint that is not its key's, or a host not
 *     enrolled, lead nowhere (counted as unusable);
 *   - `ipcf ls --all-hosts [--json] [NAME...]` on gamma: names of alpha and
 *     beta and gamma's own, a forged record and a stray one listed as
 *     unusable with their reasons, the JSON parsed back (python3's json),
 *     names a uid's policy hides left out for that uid; without a
 *     directory, the static view (the enrolled hosts);
 *   - trust_keys = yes: gamma, which does not enrol alpha, reaches alpha's
 *     name through the key alpha publishes (real bytes both ways); with
 *     trust_keys = no the same allocation is ENOENT; a record whose key is
 *     not its fingerprint's, and a new key in etcd for a host enrolled here
 *     (pinned, or enrolled from etcd earlier) are refused and counted; a
 *     daemon without any [host] section reaches alpha the same way;
 *   - the config: a directory without enrolled hosts (and trust_keys = no)
 *     is refused at start and by --check-config.
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

#define REQUEST_MS 1500

static hostset S;
static etcd_cluster C;

/* A daemon's config: the directory on the cluster, trust_keys, its
 * attributes (NULL: none), rules. */
static const char *dir_conf_attrs(bool trust_keys, const char *attrs, const char *rules) {
        static char conf[4096];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s %s %s\nttl_s = 2\nrequest_timeout_ms = %d\n"
                 "trust_keys = %s\n%s%s%s%s",
                 C.client_url[0], C.client_url[1], C.client_url[2], REQUEST_MS, trust_keys ? "yes" : "no",
                 attrs ? "attributes = " : "", attrs ? attrs : "", attrs ? "\n" : "", rules ? rules : "");
        return conf;
}

static const char *dir_conf(bool trust_keys, const char *rules) { return dir_conf_attrs(trust_keys, NULL, rules); }

/* Start the cluster and the three daemons, every one with extra rules,
 * host i with attributes attrs[i] (attrs NULL: none). */
static void start_all_attrs(const char *rules, const char *const *attrs) {
        etcd_cluster_start(&C, 3);
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        for (int i = 0; i < 3; i++)
                hostset_start(&S, i, dir_conf_attrs(false, attrs ? attrs[i] : NULL, rules));
        for (int i = 0; i < 3; i++)
                CHECK(hostset_wait_up(&S, i, 15000));
}

static void start_all(const char *rules) { start_all_attrs(rules, NULL); }

static void stop_all(void) {
        hostset_stop(&S);
        etcd_cluster_stop(&C);
}

/* This host's directory live and its etcd member answering, within ms.
 * Reachable says the last request went through: one that failed (a member
 * slow to answer on a loaded machine, or not back yet) clears it until the
 * next goes through, while the watch may be live all along. */
static bool live_and_reachable(int ms, ipcf_dir_health *h) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        while (dirtest_live_becomes(true, ms, h) && !h->reachable && test_now_ms() < end)
                usleep(100000);
        return h->live && h->reachable;
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
        /* `ipcf watch` on gamma too: every host hears it */
        int p[2];
        CHECK(pipe(p) == 0);
        const char *argv[] = { "bin/ipcf", "watch", "-n", "1", "svc", NULL };
        pid_t watcher = hostset_spawn(&S, 2, argv, -1, p[1]);
        close(p[1]);
        pid_t on_alpha = dirtest_serve(&S, 0, "svc");
        CHECK_EQ(dirtest_next_name_event("svc", 10000), IPCF_EVENT_NAME_UP);
        CHECK_EQ(test_wait(watcher, 10000), 0);
        char said[256] = "";
        CHECK(read(p[0], said, sizeof(said) - 1) > 0);
        close(p[0]);
        if (strcmp(said, "up svc pid 0\n") != 0) /* pid 0: a process of another host */
                test_fail(__FILE__, __LINE__, "ipcf watch on gamma said: %s", said);
        char host[64];
        CHECK(strcmp(dirtest_use("svc", host, sizeof(host)), "alpha") == 0);

        /* the same name on gamma: spread over both (round robin) */
        pid_t on_gamma = dirtest_serve(&S, 2, "svc");
        int seen_gamma = 0;
        for (int i = 0; i < 100 && !seen_gamma; i++) {
                seen_gamma = strcmp(dirtest_use("svc", host, sizeof(host)), "gamma") == 0;
                if (!seen_gamma)
                        usleep(50000);
        }
        CHECK(seen_gamma);
        int alpha = 0, gamma = 0;
        for (int i = 0; i < 6; i++) {
                dirtest_use("svc", host, sizeof(host));
                alpha += strcmp(host, "alpha") == 0;
                gamma += strcmp(host, "gamma") == 0;
        }
        CHECK_EQ(alpha, 3);
        CHECK_EQ(gamma, 3);
        /* a pin takes that host only */
        for (int i = 0; i < 3; i++)
                CHECK(strcmp(dirtest_use("svc@gamma", host, sizeof(host)), "gamma") == 0);

        /* a name no host may allocate is not published: once a visible name
         * registered after it is found, it still is not */
        pid_t hidden = dirtest_serve(&S, 0, "hidden");
        usleep(100000);
        pid_t shown = dirtest_serve(&S, 0, "shown");
        CHECK(strcmp(dirtest_use("shown", host, sizeof(host)), "alpha") == 0);
        CHECK_ERR(ipcf_alloc("hidden", NULL, 5000, NULL), -ENOENT);

        /* unregistration unpublishes at once, its process alive */
        CHECK_OK(ipcf_watch("brief"));
        pid_t brief = dirtest_serve_unregister(&S, 0, "brief", 1000);
        CHECK_EQ(dirtest_next_name_event("brief", 10000), IPCF_EVENT_NAME_UP);
        CHECK_EQ(dirtest_next_name_event("brief", 10000), IPCF_EVENT_NAME_DOWN);
        CHECK(kill(brief, 0) == 0);
        CHECK_ERR(ipcf_alloc("brief", NULL, 5000, NULL), -ENOENT);
        kill(brief, SIGKILL);
        test_wait(brief, 5000);

        /* deaths unpublish at once: the watch hears the last host go */
        kill(on_alpha, SIGKILL);
        test_wait(on_alpha, 5000);
        for (int i = 0; i < 4; i++)
                CHECK(strcmp(dirtest_use("svc", host, sizeof(host)), "gamma") == 0);
        uint64_t t0 = test_now_ms();
        kill(on_gamma, SIGKILL);
        test_wait(on_gamma, 5000);
        CHECK_EQ(dirtest_next_name_event("svc", 5000), IPCF_EVENT_NAME_DOWN);
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
        dirtest_serve(&S, 0, "a1");
        dirtest_serve(&S, 2, "g1");
        CHECK(strcmp(dirtest_use("a1", host, sizeof(host)), "alpha") == 0);
        CHECK(strcmp(dirtest_use("g1", host, sizeof(host)), "gamma") == 0);
        /* the health: live, the two names cached, nothing published here */
        ipcf_dir_health h;
        CHECK(live_and_reachable(5000, &h));
        CHECK(h.synced && h.complete && h.lease != 0);
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
        CHECK_OK(ipcf_watch("a1"));
        CHECK_EQ(dirtest_next_name_event("a1", 5000), IPCF_EVENT_NAME_UP); /* up already: said at once */
        uint64_t t0 = test_now_ms();
        hostset_kill_host(&S, 0);
        /* the lease expires about the TTL after the last keepalive (every
         * TTL/3): NAME_DOWN on beta, from the watch */
        CHECK_EQ(dirtest_next_name_event("a1", 15000), IPCF_EVENT_NAME_DOWN);
        uint64_t down = test_now_ms() - t0;
        fprintf(stderr, "a1 NAME_DOWN on beta %llu ms after alpha's daemon was killed (ttl 2 s)\n",
                (unsigned long long)down);
        CHECK(down <= 2 * 2000 + 6000); /* (etcd's expiry and a loaded machine's slack) */
        CHECK_OK(ipcf_unwatch("a1"));
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
        dirtest_serve(&S, 2, "g2");
        CHECK(strcmp(dirtest_use("g2", host, sizeof(host)), "gamma") == 0);
        CHECK(strcmp(dirtest_use("g1", host, sizeof(host)), "gamma") == 0);

        /* the whole cluster down */
        etcd_cluster_kill(&C, 1);
        etcd_cluster_kill(&C, 2);
        CHECK(dirtest_live_becomes(false, 10000, &h));
        CHECK_OK(ipcf_watch("local"));
        dirtest_serve(&S, 1, "local");
        CHECK_EQ(dirtest_next_name_event("local", 10000), IPCF_EVENT_NAME_UP);
        int port = CHECK_OK(ipcf_alloc("local", NULL, 5000, NULL)); /* a local flow */
        dirtest_echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, NULL));
        CHECK(strcmp(dirtest_use("g1", host, sizeof(host)), "gamma") == 0); /* cached */
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
        CHECK(took <= REQUEST_MS + 3000); /* not the allocation's 10 s */
        /* a short allocation timeout wins over the directory's: still ENOLINK
         * (the directory's would end it after REQUEST_MS, and the library
         * at its 400 ms with -ETIMEDOUT) */
        uint64_t t2 = test_now_ms();
        CHECK_ERR(ipcf_alloc("never2", NULL, 400, NULL), -ENOLINK);
        CHECK(test_now_ms() - t2 < REQUEST_MS);
        /* registered while etcd is down: gamma's daemon lists it before
         * the cluster comes back (a fixed 300 ms was not always enough) */
        dirtest_serve(&S, 2, "during");
        bool registered = false;
        for (uint64_t end = test_now_ms() + 10000; !registered && test_now_ms() < end;) {
                char *ls = NULL;
                registered = dirtest_ipcf_on(&S, 2, 0, "ls", &ls) == 0 && strstr(ls, "during") != NULL;
                free(ls);
                if (!registered)
                        usleep(50000);
        }
        CHECK(registered);

        /* the cluster back: "during" published by itself, the rest as before */
        for (int i = 0; i < 3; i++)
                etcd_cluster_restart(&C, i);
        CHECK(etcd_cluster_wait_ready(&C, -1, 30000));
        CHECK(live_and_reachable(20000, &h));
        t0 = test_now_ms();
        uint64_t until_back = t0 + 20000;
        do {
                port = ipcf_alloc("during", NULL, 5000, NULL);
                if (port == -ENOENT || port == -ENOLINK)
                        usleep(50000);
        } while ((port == -ENOENT || port == -ENOLINK) && test_now_ms() < until_back);
        CHECK_OK(port);
        dirtest_echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, NULL));
        fprintf(stderr, "'during' allocatable from beta %llu ms after the cluster was ready again\n",
                (unsigned long long)(test_now_ms() - t0));
        CHECK(strcmp(dirtest_use("g2", host, sizeof(host)), "gamma") == 0);
        CHECK_ERR(ipcf_alloc("a1", NULL, 5000, NULL), -ENOENT);
        stop_all();
}

/* Put key = value into etcd as another writer would (through member 1). */
static void etcd_put_raw(const char *key, const char *value) { dirtest_put_raw(C.client_url[1], key, value); }

TEST_TIMEOUT(dir_records_naming_a_wrong_key_or_unenrolled_host_lead_nowhere, 120) {
        start_all("[name *]\nremote_allocate = *@*\n");
        hostset_enter(&S, 1);
        char fp0[80];
        snprintf(fp0, sizeof(fp0), "sha256:%064d", 0);
        char rec[256];
        snprintf(rec, sizeof(rec), "{\"v\":1,\"addr\":\"127.0.0.1:%u\",\"fp\":\"%s\"}", S.h[0].port, fp0);
        ipcf_dir_health h;
        CHECK(dirtest_live_becomes(true, 5000, &h));
        uint64_t before = h.unusable, records = h.records;
        CHECK_OK(ipcf_watch("forged"));
        etcd_put_raw("/ipcf/names/forged/alpha", rec); /* alpha, not alpha's key */
        etcd_put_raw("/ipcf/names/stray/delta", rec);  /* no such host here */
        for (int i = 0; i < 100 && h.records < records + 2; i++) { /* the cache has them */
                usleep(50000);
                CHECK(dirtest_live_becomes(true, 5000, &h));
        }
        CHECK_EQ(h.records, records + 2);
        CHECK_EQ(dirtest_next_name_event("forged", 500), 0); /* not up: it leads nowhere */
        CHECK_ERR(ipcf_alloc("forged", NULL, 5000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("stray", NULL, 5000, NULL), -ENOENT);
        CHECK(dirtest_live_becomes(true, 5000, &h));
        CHECK(h.unusable >= before + 2);
        /* alpha's real names still work beside them */
        dirtest_serve(&S, 0, "real");
        char host[64];
        CHECK(strcmp(dirtest_use("real", host, sizeof(host)), "alpha") == 0);
        stop_all();
}

static int ipcf_on(int i, unsigned uid, const char *args, char **ret_out) {
        return dirtest_ipcf_on(&S, i, uid, args, ret_out);
}

/* `ipcf ls --all-hosts --json ARGS` on host i as uid, parsed back by
 * python3's json module and told line by line: "directory on|off", "self
 * HOST", "truncated False", "name NAME" per name of the host, "record NAME
 * HOST STATUS usable|unusable rev|norev fp|nofp" per record (sorted), each
 * followed by "attrs NAME HOST K=V ..." (sorted) if it has attributes,
 * "host HOST" per enrolled host. NULL if the command failed. */
static char *all_hosts(int i, unsigned uid, const char *args) {
        static const char py[] =
                "import json, sys\n"
                "d = json.load(sys.stdin)\n"
                "print(\"directory\", \"on\" if d[\"directory\"] else \"off\")\n"
                "print(\"self\", d[\"self\"])\n"
                "print(\"truncated\", d[\"truncated\"])\n"
                "for n in d[\"names\"]: print(\"name\", n[\"name\"])\n"
                "for r in sorted(d[\"records\"], key=lambda r: (r[\"name\"], r[\"host\"])):\n"
                "    print(\"record\", r[\"name\"], r[\"host\"], r[\"status\"],\n"
                "          \"usable\" if r[\"usable\"] else \"unusable\", \"rev\" if r[\"revision\"] > 0 else \"norev\",\n"
                "          \"fp\" if r[\"fp\"].startswith(\"sha256:\") and r[\"age_ms\"] >= 0 else \"nofp\")\n"
                "    if r[\"attrs\"]: print(\"attrs\", r[\"name\"], r[\"host\"],\n"
                "                         \" \".join(k + \"=\" + v for k, v in sorted(r[\"attrs\"].items())))\n"
                "for h in d[\"hosts\"]: print(\"host\", h[\"name\"])\n";
        char cmd[1024], *out = NULL;
        snprintf(cmd, sizeof(cmd), "ls --all-hosts --json %s | python3 -c '%s'", args, py);
        if (ipcf_on(i, uid, cmd, &out) != 0) {
                fprintf(stderr, "ipcf %s: %s\n", cmd, out ? out : "");
                free(out);
                return NULL;
        }
        return out;
}

/* all_hosts() until its output holds every line of want (bounded by ms). */
static char *all_hosts_until(int i, const char *args, const char *const *want, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        for (;;) {
                char *out = all_hosts(i, 0, args);
                bool all = out != NULL;
                for (size_t k = 0; all && want[k]; k++)
                        all = strstr(out, want[k]) != NULL;
                if (all)
                        return out;
                if (test_now_ms() > end)
                        test_fail(__FILE__, __LINE__, "ipcf ls --all-hosts --json %s on %s:\n%s", args, S.h[i].name,
                                  out ? out : "(failed)");
                free(out);
                usleep(100000);
        }
}

/* A record as another writer would put it: addr, fingerprint, key (NULL:
 * none). */
static const char *record_json(uint16_t port, const char *fp, const char *key) {
        static char rec[512];
        snprintf(rec, sizeof(rec), "{\"v\":1,\"addr\":\"127.0.0.1:%u\",\"fp\":\"%s\"%s%s%s}", port, fp,
                 key ? ",\"key\":\"" : "", key ? key : "", key ? "\"" : "");
        return rec;
}

/* Values with what JSON escapes: '"' and '\\'. */
static const char *const ls_attrs[] = { "zone=r1 rack=7 role=print.spool", NULL, "q=\"x\"\\y" };

TEST_TIMEOUT(dir_ls_all_hosts_every_host_and_why, 180) {
        start_all_attrs("[daemon]\nshared = yes\n"
                        "[name secret*]\nallocate = uid:0\nregister = uid:0\nremote_allocate = *@*\n"
                        "[name *]\nallocate = *\nregister = *\nremote_allocate = *@*\n",
                        ls_attrs);
        hostset_enter(&S, 2); /* this process: gamma's */
        pid_t srv[4] = { dirtest_serve(&S, 0, "on-alpha"), dirtest_serve(&S, 1, "on-beta"),
                         dirtest_serve(&S, 2, "on-gamma"), dirtest_serve(&S, 0, "secret-a") };
        char fp0[80];
        snprintf(fp0, sizeof(fp0), "sha256:%064d", 0);
        etcd_put_raw("/ipcf/names/forged/alpha", record_json(S.h[0].port, fp0, NULL)); /* not alpha's key */
        etcd_put_raw("/ipcf/names/stray/delta", record_json(S.h[0].port, fp0, NULL));  /* not enrolled */
        /* attributes another writer got wrong: the record is rejected whole */
        etcd_put_raw("/ipcf/names/badattrs/beta", "{\"v\":1,\"addr\":\"127.0.0.1:1\",\"fp\":\"\","
                                                  "\"attrs\":{\"k\":\"a\\u0001\"}}");
        const char *want[] = {
                "directory on\nself gamma\ntruncated False\n",
                "\nname on-gamma\n",
                "\nrecord forged alpha fp_mismatch unusable rev fp\n"
                "record on-alpha alpha usable usable rev fp\n"
                "attrs on-alpha alpha rack=7 role=print.spool zone=r1\n"
                "record on-beta beta usable usable rev fp\n"
                "record on-gamma gamma self usable rev fp\n"
                "attrs on-gamma gamma q=\"x\"\\y\n"
                "record secret-a alpha usable usable rev fp\n"
                "attrs secret-a alpha rack=7 role=print.spool zone=r1\n"
                "record stray delta not_enrolled unusable rev fp\n"
                "host alpha\nhost beta\n",
                NULL,
        };
        char *out = all_hosts_until(2, "", want, 15000);
        fprintf(stderr, "%s", out);
        CHECK(!strstr(out, "badattrs"));
        free(out);
        /* the same on beta, whose own records have none */
        const char *want_beta[] = { "\nrecord on-alpha alpha usable usable rev fp\n"
                                    "attrs on-alpha alpha rack=7 role=print.spool zone=r1\n"
                                    "record on-beta beta self usable rev fp\n"
                                    "record on-gamma gamma usable usable rev fp\n"
                                    "attrs on-gamma gamma q=\"x\"\\y\n",
                                    NULL };
        free(all_hosts_until(1, "", want_beta, 15000));
        /* names the policy hides from a uid are not listed to it (setpriv
         * needs root) */
        out = getuid() == 0 ? all_hosts(2, 65534, "") : strdup("\nrecord on-alpha alpha usable usable rev fp\n"
                                                               "record stray delta not_enrolled");
        CHECK(out != NULL);
        if (strstr(out, "secret-a") || !strstr(out, "\nrecord on-alpha alpha usable usable rev fp\n") ||
            !strstr(out, "\nrecord stray delta not_enrolled"))
                test_fail(__FILE__, __LINE__, "as uid 65534:\n%s", out);
        free(out);
        /* NAME globs keep the names that match, local and directory alike */
        out = all_hosts(2, 0, "'on-*' stray");
        CHECK(out != NULL);
        if (strstr(out, "forged") || strstr(out, "secret-a") || !strstr(out, "\nname on-gamma\n") ||
            !strstr(out, "\nrecord on-alpha alpha usable usable rev fp\nattrs on-alpha alpha rack=7 role=print.spool "
                         "zone=r1\nrecord on-beta beta usable usable rev fp\nrecord on-gamma gamma self usable rev "
                         "fp\nattrs on-gamma gamma q=\"x\"\\y\nrecord stray delta not_enrolled"))
                test_fail(__FILE__, __LINE__, "with NAME globs:\n%s", out);
        free(out);
        /* the text: the health, both tables, the reasons */
        CHECK_EQ(ipcf_on(2, 0, "ls --all-hosts", &out), 0);
        fprintf(stderr, "%s", out);
        if (!strstr(out, "this host gamma:\n") || !strstr(out, "\ndirectory: etcd http://127.") ||
            !strstr(out, "UNUSABLE: fingerprint mismatch") || !strstr(out, "UNUSABLE: host not enrolled") ||
            !strstr(out, "on-beta ") || !strstr(out, "this host") || !strstr(out, " ATTRIBUTES ") ||
            !strstr(out, " zone=r1,rack=7,role=print.spool ") || !strstr(out, " q=\"x\"\\y "))
                test_fail(__FILE__, __LINE__, "ipcf ls --all-hosts:\n%s", out);
        free(out);
        /* ipcf hosts: the attributes this host publishes, in file order */
        CHECK_EQ(ipcf_on(0, 0, "hosts", &out), 0);
        if (!strstr(out, "\nthis host's attributes: zone=r1 rack=7 role=print.spool\n"))
                test_fail(__FILE__, __LINE__, "ipcf hosts on alpha:\n%s", out);
        free(out);
        CHECK_EQ(ipcf_on(0, 0, "hosts --json", &out), 0);
        if (!strstr(out, ",\"attrs\":{\"zone\":\"r1\",\"rack\":\"7\",\"role\":\"print.spool\"},"))
                test_fail(__FILE__, __LINE__, "ipcf hosts --json on alpha:\n%s", out);
        free(out);
        CHECK_EQ(ipcf_on(2, 0, "hosts --json", &out), 0);
        if (!strstr(out, ",\"attrs\":{\"q\":\"\\\"x\\\"\\\\y\"},"))
                test_fail(__FILE__, __LINE__, "ipcf hosts --json on gamma:\n%s", out);
        free(out);
        CHECK_EQ(ipcf_on(1, 0, "hosts", &out), 0);
        CHECK(strstr(out, "attributes:") == NULL);
        free(out);
        CHECK_EQ(ipcf_on(1, 0, "hosts --json", &out), 0);
        CHECK(strstr(out, ",\"attrs\":{},") != NULL);
        free(out);
        for (int i = 0; i < 4; i++) {
                kill(srv[i], SIGKILL);
                test_wait(srv[i], 5000);
        }
        stop_all();
}

TEST_TIMEOUT(dir_ls_all_hosts_without_a_directory, 60) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, NULL);
        hostset_start(&S, 1, NULL);
        CHECK(hostset_wait_up(&S, 0, 15000));
        char *out = all_hosts(0, 0, "");
        CHECK(out != NULL);
        if (!strstr(out, "directory off\nself alpha\ntruncated False\n") || !strstr(out, "\nhost beta\n") ||
            strstr(out, "record "))
                test_fail(__FILE__, __LINE__, "static, --json:\n%s", out);
        free(out);
        CHECK_EQ(ipcf_on(0, 0, "ls --all-hosts", &out), 0);
        if (!strstr(out, "directory: off ([directory] backend = static)") || !strstr(out, "\nbeta "))
                test_fail(__FILE__, __LINE__, "static:\n%s", out);
        free(out);
        hostset_stop(&S);
}

TEST_TIMEOUT(dir_trust_keys_enrols_hosts_from_the_directory, 240) {
        const char *rules = "[name *]\nremote_allocate = *@*\n";
        etcd_cluster_start(&C, 3);
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, dir_conf(false, rules));
        hostset_start(&S, 1, dir_conf(false, rules));
        /* gamma enrols beta only: alpha is a stranger to it */
        hostset_start_enrol(&S, 2, dir_conf(false, rules), 1u << 1, NULL);
        CHECK(hostset_wait_up(&S, 1, 15000)); /* beta has both up: gamma's daemon is there too */
        pid_t srv = dirtest_serve(&S, 0, "t-alpha");

        /* trust_keys = no: alpha's record is cached but leads nowhere, as
         * today (a child asks: this process's library will keep the runtime
         * directory of gamma's next daemon) */
        const char *untrusted[] = { "\nrecord t-alpha alpha not_enrolled unusable rev fp\n", NULL };
        free(all_hosts_until(2, "", untrusted, 15000));
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                hostset_enter(&S, 2);
                _exit(ipcf_alloc("t-alpha", NULL, 5000, NULL) == -ENOENT ? 0 : 1);
        }
        CHECK_EQ(test_wait(child, 10000), 0);

        /* trust_keys = yes: the key alpha publishes enrols it on first use */
        hostset_stop_host(&S, 2);
        hostset_start_enrol(&S, 2, dir_conf(true, rules), 1u << 1, NULL);
        hostset_enter(&S, 2);
        const char *trustable[] = { "\nrecord t-alpha alpha trustable usable rev fp\n", NULL };
        free(all_hosts_until(2, "", trustable, 15000));
        uint64_t t0 = test_now_ms();
        char host[64];
        CHECK(strcmp(dirtest_use("t-alpha", host, sizeof(host)), "alpha") == 0);
        fprintf(stderr, "t-alpha allocated from gamma through alpha's published key in %llu ms\n",
                (unsigned long long)(test_now_ms() - t0));
        const char *trusted[] = { "\nrecord t-alpha alpha trusted usable rev fp\n", "\nhost beta\nhost alpha\n", NULL };
        char *out = all_hosts_until(2, "", trusted, 5000);
        free(out);
        ipcf_dir_health h = dirtest_health();
        CHECK(h.trust_keys && h.enrolled == 1 && h.keys_refused == 0);

        /* a record whose key is not its fingerprint's is not used */
        char key[64], fp[80], fp0[80];
        dirtest_fresh_key(key, fp);
        snprintf(fp0, sizeof(fp0), "sha256:%064d", 0);
        etcd_put_raw("/ipcf/names/badkey/delta", record_json(S.h[0].port, fp0, key));
        etcd_put_raw("/ipcf/names/nokey/delta", record_json(S.h[0].port, fp0, NULL));
        /* a new key (with its own fingerprint) for beta, pinned here, and
         * for alpha, enrolled from etcd before: refused, counted */
        etcd_put_raw("/ipcf/names/swap-b/beta", record_json(S.h[1].port, fp, key));
        etcd_put_raw("/ipcf/names/swap-a/alpha", record_json(S.h[0].port, fp, key));
        const char *refused[] = { "\nrecord badkey delta bad_key unusable rev fp\nrecord nokey delta bad_key unusable",
                                  "\nrecord swap-a alpha fp_mismatch unusable rev fp\n"
                                  "record swap-b beta fp_mismatch unusable rev fp\n",
                                  NULL };
        out = all_hosts_until(2, "", refused, 15000);
        fprintf(stderr, "%s", out);
        free(out);
        CHECK_ERR(ipcf_alloc("badkey", NULL, 5000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("nokey", NULL, 5000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("swap-b", NULL, 5000, NULL), -ENOENT);
        CHECK_ERR(ipcf_alloc("swap-a", NULL, 5000, NULL), -ENOENT);
        h = dirtest_health();
        CHECK(h.enrolled == 1 && h.keys_refused >= 2 && h.unusable >= 4);
        /* alpha's real name still works, with the key it was enrolled with */
        CHECK(strcmp(dirtest_use("t-alpha", host, sizeof(host)), "alpha") == 0);
        CHECK_EQ(ipcf_on(2, 0, "hosts", &out), 0);
        if (!strstr(out, "trust_keys = yes: 1 hosts enrolled with keys from etcd"))
                test_fail(__FILE__, __LINE__, "ipcf hosts on gamma:\n%s", out);
        free(out);

        /* no [host] section at all: with trust_keys = yes the daemon starts
         * and reaches alpha through the directory alone (`ipcf ping` asks:
         * this process's library keeps gamma's former runtime directory) */
        hostset_stop_host(&S, 2);
        hostset_start_enrol(&S, 2, dir_conf(true, rules), 0, NULL);
        const char *alone[] = { "\nrecord t-alpha alpha trustable usable rev fp\n", NULL };
        free(all_hosts_until(2, "", alone, 15000));
        if (ipcf_on(2, 0, "ping -c 3 t-alpha", &out) != 0)
                test_fail(__FILE__, __LINE__, "ipcf ping t-alpha on gamma without [host]:\n%s", out);
        free(out);
        const char *alone_after[] = { "\nrecord t-alpha alpha trusted usable rev fp\n", "\nhost alpha\n", NULL };
        free(all_hosts_until(2, "", alone_after, 5000));
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        stop_all();
}

TEST_TIMEOUT(dir_config_refused, 60) {
        /* a directory without enrolled hosts (trust_keys = no): the daemon
         * exits 1 with the line */
        char dir[] = "/tmp/ipcf-dirconf-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        const char *confs[] = {
                "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\n",
        };
        const char *want[] = { "wants the hosts it may reach enrolled" };
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
                /* --check-config reads it as the daemon would: refused too,
                 * with the line of [directory] */
                snprintf(cmd, sizeof(cmd),
                         "IPCF_RUNTIME_DIR=%s IPCF_STATE_DIR=%s timeout 20 %s --check-config %s 2>&1; echo rc=$?",
                         dir, dir, test_build_path("bin/ipcfd"), path);
                p = popen(cmd, "r");
                CHECK(p != NULL);
                n = fread(out, 1, sizeof(out) - 1, p);
                out[n] = 0;
                pclose(p);
                if (!strstr(out, want[i]) || !strstr(out, "line 1:") || !strstr(out, "rc=1"))
                        test_fail(__FILE__, __LINE__, "--check-config %zu: %s", i, out);
        }
        char rm[300];
        snprintf(rm, sizeof(rm), "rm -rf %s", dir);
        CHECK(system(rm) == 0);
}
