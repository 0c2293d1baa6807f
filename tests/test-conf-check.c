/*
 * test-conf-check.c — the config as an administrator gets it wrong: every
 * key of every section (confcheck.h's table) accepted with its example,
 * refused when given twice (also across two [daemon] or [limits] sections)
 * with the line of the first, refused with a bad value by an error naming
 * the key and the value; a misspelt key or section named with the
 * nearest valid one; limits that would lock everyone out refused at their
 * least working value; [name] sections an earlier one hides refused; and
 * `ipcfd --check-config FILE` (exit status, message, no side effects) and
 * the real daemon refusing such a file at start and on reload; this host's
 * own key (its state dir's host.key) enrolled for another host, refused by
 * both with the same line.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/conf.h"
#include "common/confcheck.h"
#include "efcp/keyfile.h"
#include "ipcf.h"
#include "support/sdnotify.h"
#include "support/shell.h"
#include "support/test.h"

#define KEY_B "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* The header a key's section needs, with what the section needs besides
 * (a [host] its key; in [directory], etcd its endpoints, cert and key each
 * other). */
static const char *header_for(const conf_key *k) {
        if (!strcmp(k->section, "name"))
                return "[name x]\n";
        if (!strcmp(k->section, "host"))
                return !strcmp(k->key, "key") ? "[host beta]\n" : "[host beta]\nkey = " KEY_B "\n";
        if (!strcmp(k->section, "directory"))
                return !strcmp(k->key, "backend") ? "[directory]\nendpoints = https://127.0.0.1:2379\n"
                       : !strcmp(k->key, "cert")  ? "[directory]\nkey = /k.pem\n"
                       : !strcmp(k->key, "key")   ? "[directory]\ncert = /c.pem\n"
                                                  : "[directory]\n";
        static char h[32];
        snprintf(h, sizeof(h), "[%s]\n", k->section);
        return h;
}

static int parse(const char *text, char *err) {
        conf c;
        int r = conf_parse(text, strlen(text), &c, err, 512);
        conf_deinit(&c);
        return r;
}

/* Which line holds the key in header_for(k) + "key = ...". */
static unsigned key_line(const conf_key *k) {
        unsigned n = 1;
        for (const char *p = header_for(k); *p; p++)
                n += *p == '\n';
        return n;
}

TEST(every_key_is_accepted_with_its_example) {
        CHECK(conf_n_keys >= 37);
        for (size_t i = 0; i < conf_n_keys; i++) {
                const conf_key *k = &conf_keys[i];
                char text[512], err[512];
                snprintf(text, sizeof(text), "%s%s = %s\n", header_for(k), k->key, k->example);
                if (parse(text, err) != 0)
                        test_fail(__FILE__, __LINE__, "[%s] %s = %s: %s", k->section, k->key, k->example, err);
        }
}

/* A value that is wrong for its key is refused by an error that names the
 * key and shows the value: "line 2: clients_per_user: '1o': bad number".
 * Every key that takes a number, a yes/no, an address, a principal or a
 * word without blanks refuses "?a b?"; only free text (a command) may take it. */
TEST(every_bad_value_is_named_with_its_key) {
        size_t refused = 0;
        for (size_t i = 0; i < conf_n_keys; i++) {
                const conf_key *k = &conf_keys[i];
                char text[512], err[512], want[128];
                snprintf(text, sizeof(text), "%s%s = ?a b?\n", header_for(k), k->key);
                if (parse(text, err) == 0) {
                        if (strcmp(k->key, "activate") != 0 && strcmp(k->key, "search") != 0)
                                test_fail(__FILE__, __LINE__, "[%s] %s = ?a b? accepted", k->section, k->key);
                        continue;
                }
                snprintf(want, sizeof(want), "line %u: %s: ", key_line(k), k->key);
                if (strncmp(err, want, strlen(want)) != 0)
                        test_fail(__FILE__, __LINE__, "[%s] %s = ?a b?: '%s', want '%s...'", k->section, k->key,
                                  err, want);
                refused++;
        }
        CHECK(refused + 2 >= conf_n_keys);
        char err[512];
        CHECK(parse("[limits]\nclients_per_user = 1o\n", err) == -EINVAL);
        CHECK(strcmp(err, "line 2: clients_per_user: '1o': bad number") == 0);
        CHECK(parse("[name x]\nallocate = user:\n", err) == -EINVAL);
        CHECK(strncmp(err, "line 2: allocate: 'user:': bad principal (want ", 47) == 0);
}

TEST(every_key_given_twice_is_refused_naming_the_first) {
        for (size_t i = 0; i < conf_n_keys; i++) {
                const conf_key *k = &conf_keys[i];
                char text[512], err[512], want[128];
                snprintf(text, sizeof(text), "%s%s = %s\n# a comment\n%s = %s\n", header_for(k), k->key, k->example,
                         k->key, k->example);
                snprintf(want, sizeof(want), "line %u: duplicate key '%s' (first at line %u)", key_line(k) + 2,
                         k->key, key_line(k));
                if (parse(text, err) != -EINVAL || strcmp(err, want) != 0)
                        test_fail(__FILE__, __LINE__, "[%s] %s twice: '%s', want '%s'", k->section, k->key, err, want);
        }
        /* [daemon] and [limits] are one setting each, however cut up. */
        char err[512];
        CHECK_ERR(parse("[daemon]\nshared = yes\n[limits]\n[daemon]\nshared = no\n", err), -EINVAL);
        CHECK(strcmp(err, "line 5: duplicate key 'shared' (first at line 2)") == 0);
        CHECK_ERR(parse("[limits]\nflows_per_user = 8\n[name a]\n[limits]\nflows_per_user = 9\n", err), -EINVAL);
        CHECK(strcmp(err, "line 5: duplicate key 'flows_per_user' (first at line 2)") == 0);
        /* ... while a [name] key belongs to its own section. */
        CHECK_OK(parse("[name a]\nallocate = *\n[name b]\nallocate = *\n", err));
        CHECK_OK(parse("[daemon]\nshared = yes\n[limits]\nflows_per_user = 8\n[daemon]\nstate_dir = /x\n", err));
}

/* A key with one letter dropped is named back; a word far from every key
 * gets the list of the section's keys. */
TEST(misspelt_keys_are_named_with_the_nearest) {
        for (size_t i = 0; i < conf_n_keys; i++) {
                const conf_key *k = &conf_keys[i];
                char typo[64], text[512], err[512], want[128];
                size_t n = strlen(k->key), cut = n / 2;
                memcpy(typo, k->key, cut);
                strcpy(typo + cut, k->key + cut + 1);
                snprintf(text, sizeof(text), "%s%s = %s\n", header_for(k), typo, k->example);
                snprintf(want, sizeof(want), "line %u: unknown key in [%s]: '%s' (did you mean '%s'?)", key_line(k),
                         k->section, typo, k->key);
                if (parse(text, err) != -EINVAL || strcmp(err, want) != 0)
                        test_fail(__FILE__, __LINE__, "'%s': '%s', want '%s'", typo, err, want);
        }
        char err[512];
        CHECK_ERR(parse("[limits]\nclients = 3\n", err), -EINVAL);
        CHECK(strstr(err, "did you mean 'clients_per_user'?") != NULL);
        CHECK_ERR(parse("[limits]\nflow_per_user = 3\n", err), -EINVAL);
        CHECK(strstr(err, "did you mean 'flows_per_user'?") != NULL);
        CHECK_ERR(parse("[name x]\nalocate = *\n", err), -EINVAL);
        CHECK(strstr(err, "did you mean 'allocate'?") != NULL);
        CHECK_ERR(parse("[daemon]\nxyzzy = 1\n", err), -EINVAL);
        CHECK(strcmp(err, "line 2: unknown key in [daemon]: 'xyzzy' (want 'shared' or 'state_dir')") == 0);
        /* A long key is cut in the message, and never compared at length. */
        char text[2048];
        int n = snprintf(text, sizeof(text), "[limits]\n");
        memset(text + n, 'k', 1500);
        strcpy(text + n + 1500, " = 1\n");
        CHECK_ERR(parse(text, err), -EINVAL);
        CHECK(strlen(err) < 300 && strstr(err, "(want ") != NULL);
}

TEST(misspelt_sections_are_named_with_the_nearest) {
        static const struct {
                const char *text, *want;
        } cases[] = {
                { "[limit]\n", "line 1: unknown section [limit] (did you mean [limits]?)" },
                { "[deamon]\n", "line 1: unknown section [deamon] (did you mean [daemon]?)" },
                { "[nmae x]\n", "line 1: unknown section [nmae x] (did you mean [name PATTERN]?)" },
                { "[name]\n", "line 1: unknown section [name] (did you mean [name PATTERN]?)" },
                { "[host]\n", "line 1: unknown section [host] (did you mean [host NAME]?)" },
                { "\n[impairs]\n", "line 2: unknown section [impairs] (did you mean [impair]?)" },
                { "[bogus]\n", "line 1: unknown section [bogus] (want [daemon], [limits], [name PATTERN], [hosts], "
                               "[host NAME], [impair] or [directory])" },
                { "[directroy]\n", "line 1: unknown section [directroy] (did you mean [directory]?)" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char err[512];
                if (parse(cases[i].text, err) != -EINVAL || strcmp(err, cases[i].want) != 0)
                        test_fail(__FILE__, __LINE__, "'%s': '%s'", cases[i].text, err);
        }
}

/* Limits below which nobody, root included, could work: refused at the
 * value below the least working one, accepted at it. */
TEST(limits_that_lock_everyone_out_are_refused) {
        static const struct {
                const char *key, *bad, *least, *why;
        } cases[] = {
                { "clients_per_user", "0", "1", "would refuse every connection" },
                { "registrations_per_user", "0", "1", "would refuse every registration" },
                { "pending_per_user", "0", "1", "would refuse every allocation" },
                { "flows_per_user", "1", "2", "no flow between two processes of one user" },
                { "flows_per_user", "0", "2", "no flow between two processes of one user" },
                { "ring_bytes_per_user", "8191", "8k", "no bounded or zero-capacity flow would fit" },
                { "ring_bytes_per_user", "0", "8192", "no bounded or zero-capacity flow would fit" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char text[128], err[512];
                snprintf(text, sizeof(text), "[limits]\n%s = %s\n", cases[i].key, cases[i].bad);
                if (parse(text, err) != -EINVAL || strncmp(err, "line 2: ", 8) || !strstr(err, cases[i].why))
                        test_fail(__FILE__, __LINE__, "%s = %s: '%s'", cases[i].key, cases[i].bad, err);
                snprintf(text, sizeof(text), "[limits]\n%s = %s\n", cases[i].key, cases[i].least);
                if (parse(text, err) != 0)
                        test_fail(__FILE__, __LINE__, "%s = %s: '%s'", cases[i].key, cases[i].least, err);
        }
        /* No unbounded flows at all is a policy, not a lock-out. */
        char err[512];
        CHECK_OK(parse("[limits]\nunbounded_bytes_per_user = 0\n", err));
}

/* The first [name] section that matches decides: one that an earlier one
 * always beats is dead text, refused with both lines. */
TEST(name_sections_that_can_never_apply_are_refused) {
        static const struct {
                const char *text, *want;
        } bad[] = {
                { "[name a]\nallocate = *\n[name a]\n", "line 3: duplicate section [name a] (first at line 1)" },
                { "[name *]\n[name printer]\n", "line 2: [name printer] can never apply: [name *] at line 1" },
                { "[name *]\n[name p*]\n", "line 2: [name p*] can never apply: [name *] at line 1" },
                { "[name printer*]\n[name x]\n[name printer.color]\n",
                  "line 3: [name printer.color] can never apply: [name printer*] at line 1" },
                { "[name p?]\n[name pq]\n", "line 2: [name pq] can never apply: [name p?] at line 1" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char err[512];
                if (parse(bad[i].text, err) != -EINVAL || strncmp(err, bad[i].want, strlen(bad[i].want)) != 0)
                        test_fail(__FILE__, __LINE__, "'%s': '%s'", bad[i].text, err);
        }
        /* The narrower first is the right order, and patterns that only
         * overlap are kept. */
        char err[512];
        CHECK_OK(parse("[name printer.color]\n[name printer*]\n[name *]\n", err));
        CHECK_OK(parse("[name a*]\n[name *b]\n", err));
        /* The most sections, each compared with all before it: quick. */
        size_t cap = 1100 * 160, n = 0;
        char *text = malloc(cap);
        for (int i = 0; i < 512; i++)
                n += (size_t)snprintf(text + n, cap - n, "[name %0120d*]\n[name b%0120d]\n", i, i);
        uint64_t t0 = test_now_ms();
        conf c;
        CHECK_OK(conf_parse(text, n, &c, err, sizeof(err)));
        CHECK_EQ(c.n_rules, 1024);
        conf_deinit(&c);
        CHECK(test_now_ms() - t0 < 20000); /* a bound, not a speed: each pair is a linear check */
        free(text);
}

/* ---- ipcfd --check-config ------------------------------------------------ */

static const char *write_conf(const char *name, const char *text) {
        const char *path = test_scratch(name);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        fputs(text, f);
        fclose(f);
        return path;
}

TEST(check_config_says_ok_or_what_is_wrong) {
        char *ipcfd = test_built("bin/ipcfd");
        const char *good = write_conf("good.conf", "[daemon]\nshared = yes\n[limits]\nclients_per_user = 16\n"
                                                   "[name printer*]\nallocate = *\nregister = uid:0\n");
        char *out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, good);
        char want[512];
        snprintf(want, sizeof(want), "%s: ok (1 [name] section, 0 hosts)\n", good);
        CHECK(strcmp(out, want) == 0);
        free(out);
        /* a directory on etcd: a second line with what it publishes (its
         * hosts taken from it: without them and trust_keys the daemon would
         * refuse the file, and --check-config does, test-dir-daemons) */
        const char *dir = write_conf("dir.conf", "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1 "
                                                 "http://127.0.0.2:1\nattributes = zone=r1 rack=7\n"
                                                 "trust_keys = yes\n");
        out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, dir);
        snprintf(want, sizeof(want), "%s: ok (0 [name] sections, 0 hosts)\n%s: directory on etcd (2 endpoints), "
                                     "published with attributes zone=r1 rack=7\n", dir, dir);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "'%s', want '%s'", out, want);
        free(out);

        static const struct {
                const char *text, *says;
        } bad[] = {
                { "[limits]\nclient_per_user = 3\n", "line 2: unknown key in [limits]: 'client_per_user' "
                                                     "(did you mean 'clients_per_user'?)" },
                { "[limits]\nclients_per_user = 0\n", "line 2: clients_per_user: 0 would refuse every connection" },
                { "[name x]\nallocate = *\nallocate = uid:1\n", "line 3: duplicate key 'allocate' (first at line 2)" },
                { "[lmits]\n", "line 1: unknown section [lmits] (did you mean [limits]?)" },
                { "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\nattributes = zone=r1 zone=r2\n",
                  "line 4: attributes: duplicate attribute 'zone'" },
                { "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\nwatch_unstable_window_s = 9\n",
                  "line 4: watch_unstable_window_s: want 10..3600" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                const char *path = write_conf("bad.conf", bad[i].text);
                out = NULL;
                int st = test_sh(&out, 30, "'%s' --check-config '%s' 2>&1", ipcfd, path);
                snprintf(want, sizeof(want), "ipcfd: config %s: %s", path, bad[i].says);
                if (st != 1 || strncmp(out, want, strlen(want)) != 0)
                        test_fail(__FILE__, __LINE__, "exit %d: '%s', want '%s'", st, out, want);
                free(out);
        }
        out = NULL;
        CHECK_EQ(test_sh(&out, 30, "'%s' --check-config '%s/none.conf' 2>&1", ipcfd, getenv("TEST_SCRATCH")), 1);
        CHECK(strstr(out, "No such file") != NULL);
        free(out);
        /* An unknown user or group is what the daemon tolerates: a warning,
         * exit 0, naming the line of the key that names it. */
        const char *warn = write_conf("warn.conf", "[name x]\nallocate = *\nregister = user:no-such-user-here\n"
                                                   "share = group:no-such-group-here\n");
        out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, warn);
        CHECK(strstr(out, "config line 3: unknown user no-such-user-here") != NULL);
        CHECK(strstr(out, "config line 4: unknown group no-such-group-here") != NULL);
        CHECK(strstr(out, ": ok (1 [name] section, 0 hosts)") != NULL);
        free(out);
        free(ipcfd);
}

/* Checking touches nothing: no runtime dir, lock or socket is made, and a
 * daemon serving the same directory goes on serving. */
TEST(check_config_has_no_side_effects) {
        char *ipcfd = test_built("bin/ipcfd");
        const char *empty = test_scratch("empty");
        CHECK(mkdir(empty, 0700) == 0);
        const char *good = write_conf("good.conf", "[name x]\nallocate = *\n");
        free(TEST_SH_OK("IPCF_RUNTIME_DIR='%s' '%s' --check-config '%s' >/dev/null", empty, ipcfd, good));
        char *left = TEST_SH_OK("ls -A '%s'", empty);
        CHECK(left[0] == 0);
        free(left);
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        free(TEST_SH_OK("'%s' --runtime-dir '%s' --check-config '%s' >/dev/null", ipcfd, d.dir, good));
        CHECK_OK(ipcf_connect());
        CHECK_OK(ipcf_register("still.serving", NULL));
        test_daemon_stop(&d);
        free(ipcfd);
}

/* The daemon itself: such a file stops it at start, and on SIGHUP is logged
 * with the old config kept (the daemon still serves, under the old limits). */
TEST(daemon_refuses_a_lock_out_at_start_and_reload) {
        char *ipcfd = test_built("bin/ipcfd");
        const char *dir = test_scratch("run"), *bad = write_conf("bad.conf", "[limits]\nclients_per_user = 0\n");
        CHECK(mkdir(dir, 0700) == 0);
        char *out = NULL;
        CHECK_EQ(test_sh(&out, 30, "'%s' --runtime-dir '%s' --config '%s' 2>&1", ipcfd, dir, bad), 1);
        CHECK(strstr(out, "line 2: clients_per_user: 0 would refuse every connection") != NULL);
        free(out);

        /* The daemon says RELOADING=1, then READY=1 once the reload is
         * over: only then is the next connection a test of the kept config. */
        int nfd = test_notify_open(test_scratch("notify"));
        char buf[512];
        test_daemon d;
        test_daemon_start(&d, "[limits]\nclients_per_user = 8\n", NULL);
        CHECK(strncmp(test_notify_next(nfd, buf, sizeof(buf)), "READY=1", 7) == 0);
        char conf_file[300];
        snprintf(conf_file, sizeof(conf_file), "%s/ipcfd.conf", d.dir);
        write_conf("bad2.conf", "[limits]\nclients_per_user = 0\n");
        free(TEST_SH_OK("cp '%s/bad2.conf' '%s'", getenv("TEST_SCRATCH"), conf_file));
        CHECK(kill(d.pid, SIGHUP) == 0);
        CHECK(strcmp(test_notify_next(nfd, buf, sizeof(buf)), "RELOADING=1") == 0);
        CHECK(strncmp(test_notify_next(nfd, buf, sizeof(buf)), "READY=1", 7) == 0);
        CHECK_OK(ipcf_connect());
        CHECK_OK(ipcf_register("after.bad.reload", NULL));
        test_daemon_stop(&d);
        free(ipcfd);
}

/* A file (path) the daemon must refuse with what ("line N: ..."), alike:
 * check-config exits 1 naming it; the daemon on run refuses to start with
 * it (timeout: one that starts is stopped, and fails the test); one
 * started with a good file and given this one on SIGHUP logs it with the
 * same words and keeps its old config (it exits 0 when stopped). */
static void expect_refused_everywhere(const char *ipcfd, const char *run, const char *path, const char *what) {
        char want[1024];
        snprintf(want, sizeof(want), "ipcfd: config %s: %s\n", path, what);
        char *out = NULL;
        int st = test_sh(&out, 30, "'%s' --check-config '%s' 2>&1", ipcfd, path);
        if (st != 1 || strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "check-config: exit %d: '%s', want '%s'", st, out, want);
        free(out);
        out = NULL;
        st = test_sh(&out, 30, "timeout 5 '%s' --runtime-dir '%s' --config '%s' 2>&1", ipcfd, run, path);
        if (st != 1 || strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "start: exit %d: '%s', want '%s'", st, out, want);
        free(out);
        char live[300], log[300], good[300]; /* test_scratch's buffers rotate */
        snprintf(live, sizeof(live), "%s", test_scratch("live.conf"));
        snprintf(log, sizeof(log), "%s", test_scratch("ipcfd.log"));
        snprintf(good, sizeof(good), "%s", write_conf("good.conf", "[name x]\nallocate = *\n"));
        out = TEST_SH_OK("cp '%s' '%s'; '%s' --runtime-dir '%s' --config '%s' 2>'%s' & P=$!; i=0; "
                         "until grep -qs serving '%s'; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done; "
                         "cp '%s' '%s'; kill -HUP $P; i=0; "
                         "until grep -qs 'reload' '%s'; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done; "
                         "kill $P; wait $P; echo \"exit $?\"; grep 'reload' '%s' | sed 's/^ipcfd\\[[0-9]*\\]: //'",
                         good, live, ipcfd, run, live, log, log, path, live, log, log);
        snprintf(want, sizeof(want), "exit 0\nreload of %s failed, keeping the old config: %s\n", live, what);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "reload: '%s', want '%s'", out, want);
        free(out);
}

/* A [host] whose key is this host's own (the host.key of the state dir the
 * daemon would use: [daemon] state_dir, else $IPCF_STATE_DIR): check-config
 * names its line and exits 1, the daemon refuses to start with the same
 * line and logs it on SIGHUP, keeping its config; without a key there yet
 * (one made at start is new) or with another key, check-config says ok and
 * makes no key. */
TEST(this_hosts_own_key_enrolled_for_another_host_is_refused) {
        char *ipcfd = test_built("bin/ipcfd");
        char state[300], run[300]; /* test_scratch's buffers rotate */
        snprintf(state, sizeof(state), "%s", test_scratch("state"));
        snprintf(run, sizeof(run), "%s", test_scratch("run"));
        CHECK(mkdir(state, 0700) == 0);
        CHECK(mkdir(run, 0700) == 0);
        char conf_text[1024], self[EFCP_KEY_TEXT_LEN + 1];
        /* no key yet: nothing to compare, and none is made */
        snprintf(conf_text, sizeof(conf_text),
                 "[daemon]\nstate_dir = %s\n[hosts]\nname = alpha\n[host beta]\nkey = " KEY_B "\n", state);
        const char *path = write_conf("own.conf", conf_text);
        char *out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, path);
        char want[1024];
        snprintf(want, sizeof(want), "%s: ok (0 [name] sections, 1 host)\n", path);
        CHECK(strcmp(out, want) == 0);
        free(out);
        CHECK(access(test_scratch("state/host.key"), F_OK) < 0 && errno == ENOENT);
        /* this host's key, as `ipcf host key` prints it */
        uint8_t priv[32], pub[32];
        CHECK_OK(efcp_keyfile_load(state, priv, pub, NULL));
        CHECK_EQ(efcp_key_format(pub, self, sizeof(self)), EFCP_KEY_TEXT_LEN);
        free(TEST_SH_OK("'%s' --check-config '%s' >/dev/null", ipcfd, path)); /* KEY_B is another's */
        snprintf(conf_text, sizeof(conf_text),
                 "[daemon]\nstate_dir = %s\n[hosts]\nname = alpha\n[host beta]\nkey = " KEY_B "\n"
                 "[host gamma]\naddress = 127.0.0.1:1\nkey = %s\n", state, self);
        char own[300]; /* kept across the test_scratch calls below */
        snprintf(own, sizeof(own), "%s", write_conf("own.conf", conf_text));
        path = own;
        snprintf(want, sizeof(want),
                 "line 7: [host] key: this host's own key is enrolled for another host (%s/host.key)", state);
        expect_refused_everywhere(ipcfd, run, own, want);
        /* the state dir from the environment (no state_dir in the file) */
        snprintf(conf_text, sizeof(conf_text), "[host gamma]\nkey = %s\n", self);
        path = write_conf("env.conf", conf_text);
        snprintf(want, sizeof(want),
                 "ipcfd: config %s: line 1: [host] key: this host's own key is enrolled for another host (%s/host.key)\n",
                 path, state);
        out = NULL;
        int st = test_sh(&out, 30, "IPCF_STATE_DIR='%s' '%s' --check-config '%s' 2>&1", state, ipcfd, path);
        if (st != 1 || strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "check-config (IPCF_STATE_DIR): exit %d: '%s', want '%s'", st, out, want);
        free(out);
        free(ipcfd);
}

/* A remote principal P@HOST whose HOST is no [host] of the file nor this
 * host ([hosts] name: one file may serve every host) could match nobody:
 * check-config names the remote_allocate line and exits 1, the daemon
 * refuses to start with the same line and logs it on SIGHUP, keeping its
 * config. With hosts enrolled from the directory (trust_keys = yes) such
 * a host may come later: a warning, exit 0. */
TEST(remote_principal_of_a_host_not_enrolled_is_refused) {
        char *ipcfd = test_built("bin/ipcfd");
        char state[300], run[300], path[300], want[1024];
        snprintf(state, sizeof(state), "%s", test_scratch("state"));
        snprintf(run, sizeof(run), "%s", test_scratch("run"));
        CHECK(mkdir(state, 0700) == 0);
        CHECK(mkdir(run, 0700) == 0);
        char text[1024];
        snprintf(text, sizeof(text),
                 "[daemon]\nstate_dir = %s\n[hosts]\nname = alpha\nlisten = 127.0.0.1:%u\n[host beta]\nkey = " KEY_B "\n"
                 "[name x]\nremote_allocate = *@beta *@alpha uid:0@* uid:1000@delta\n",
                 state, 20000u + (unsigned)getpid() % 40000u); /* bound only before the fix */
        snprintf(path, sizeof(path), "%s", write_conf("delta.conf", text));
        expect_refused_everywhere(ipcfd, run, path,
                                  "line 9: remote_allocate: 'uid:1000@delta': no [host delta] section, and this "
                                  "host is alpha");
        /* the enrolled host, this host and '*' alone are good */
        snprintf(text, sizeof(text), "[hosts]\nname = alpha\n[host beta]\nkey = " KEY_B "\n"
                                     "[name x]\nremote_allocate = *@beta user:bob@alpha gid:7@*\n");
        const char *good = write_conf("good.conf", text);
        char *out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, good);
        snprintf(want, sizeof(want), "%s: ok (1 [name] section, 1 host)\n", good);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "'%s', want '%s'", out, want);
        free(out);
        /* trust_keys = yes: delta may be enrolled from the directory later */
        snprintf(text, sizeof(text),
                 "[hosts]\nname = alpha\n[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\n"
                 "trust_keys = yes\n[name x]\nremote_allocate = *@beta uid:1000@delta\n");
        snprintf(path, sizeof(path), "%s", write_conf("trust.conf", text));
        out = TEST_SH_OK("'%s' --check-config '%s' 2>&1 | sed 's/^ipcfd\\[[0-9]*\\]: //'", ipcfd, path);
        snprintf(want, sizeof(want),
                 "config line 8: remote_allocate: '*@beta': host beta is not enrolled here yet: it matches once the "
                 "directory enrols it (trust_keys = yes)\n"
                 "config line 8: remote_allocate: 'uid:1000@delta': host delta is not enrolled here yet: it matches "
                 "once the directory enrols it (trust_keys = yes)\n"
                 "%s: ok (1 [name] section, 0 hosts)\n", path);
        if (strncmp(out, want, strlen(want)) != 0)
                test_fail(__FILE__, __LINE__, "trust_keys: '%s', want '%s...'", out, want);
        free(out);
        free(ipcfd);
}

/* Counts of one are singular: check-config's "(1 [name] section, 1 host)"
 * and "(1 endpoint)", a reload's "1 rule", the SIGUSR1 summary's "1
 * client", "1 registration" (a module's phrase) and a client's "1
 * registration" (a kind it holds). */
TEST(counts_of_one_are_singular) {
        char *ipcfd = test_built("bin/ipcfd"), *ipcf = test_built("bin/ipcf");
        const char *path = write_conf("one.conf", "[host beta]\nkey = " KEY_B "\n[name x]\nallocate = *\n"
                                                  "[directory]\nbackend = etcd\nendpoints = http://127.0.0.1:1\n");
        char *out = TEST_SH_OK("'%s' --check-config '%s' 2>&1", ipcfd, path);
        char want[1024];
        snprintf(want, sizeof(want), "%s: ok (1 [name] section, 1 host)\n%s: directory on etcd (1 endpoint), no "
                                     "attributes\n", path, path);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "'%s', want '%s'", out, want);
        free(out);
        char run[300], log[300], good[300]; /* test_scratch's buffers rotate */
        snprintf(run, sizeof(run), "%s", test_scratch("run"));
        snprintf(log, sizeof(log), "%s", test_scratch("ipcfd.log"));
        snprintf(good, sizeof(good), "%s", write_conf("good.conf", "[name x]\nallocate = *\n"));
        CHECK(mkdir(run, 0700) == 0);
        out = TEST_SH_OK("'%s' --runtime-dir '%s' --config '%s' 2>'%s' & P=$!; i=0; "
                         "until grep -qs serving '%s'; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; done; "
                         "export IPCF_RUNTIME_DIR='%s' IPCF_NO_AUTOSTART=1; '%s' listen one --echo & L=$!; i=0; "
                         "until '%s' ls 2>/dev/null | grep -q one; do i=$((i+1)); [ $i -gt 400 ] && break; "
                         "sleep 0.05; done; kill -HUP $P; kill -USR1 $P; i=0; "
                         "until grep -qs 'state: client' '%s'; do i=$((i+1)); [ $i -gt 400 ] && break; sleep 0.05; "
                         "done; kill $L; kill $P; wait $P; echo \"exit $?\"; sed 's/^ipcfd\\[[0-9]*\\]: //' '%s'",
                         ipcfd, run, good, log, log, run, ipcf, ipcf, log, log);
        snprintf(want, sizeof(want), "reloaded %s: 1 rule\n", good);
        if (!strstr(out, want) || !strstr(out, "state: 1 client, 0 allocations, 0 flows, 1 registration, ") ||
            !strstr(out, " 0 flow sides, 0 allocations, 1 registration, ") || !strstr(out, "exit 0\n"))
                test_fail(__FILE__, __LINE__, "log:\n%s", out);
        free(out);
        free(ipcf);
        free(ipcfd);
}
