/*
 * test-dir-hostname-probe.c — two daemons configured with the same host
 * name on one etcd (hostile test, h3): a real etcd
 * (tests/support/etcdcluster.c), real ipcfd on 127.0.0.1 — "alpha" twice
 * (each with a key of its own) and beta, which enrols the first.
 *
 * Both publish one name: its key (PREFIX names/NAME/alpha) is the same for
 * both, under two leases. Before, each took the other's put as an
 * overwrite and put its own again at its next keepalive: the record flipped
 * between them every tick (about three puts a second, for ever) and nobody
 * was told. Now each sees the record held under another lease again and
 * again: it logs the conflict once, its health says it (`ipcf hosts`:
 * "host name conflict: ...", and ipcf_dir_health.host_conflict), and it
 * puts the record again only after a hold that doubles at each overwrite,
 * from a 30th of the window the takes
 * are counted over up to a third of it ([directory] host_conflict_window_s:
 * WINDOW_S here, 0.5 s up to 5 s; the default minute, 2 s up to 20 s, made
 * this test wait 30 s); when the other daemon dies (its lease, and the
 * record, expire), the one left puts it at once.
 */
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
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

/* The alphas' host_conflict_window_s. */
#define WINDOW_S 15

/* etcd's revision now, and the lease of PREFIX names/NAME/HOST (0: none). */
static int64_t etcd_key_lease(const char *name, const char *host, int64_t *ret_rev) {
        char *out = dirtest_record_range(C.client_url[0], name, host, ",\"keys_only\":true");
        const char *r = strstr(out, "\"revision\":\"");
        const char *l = strstr(out, "\"lease\":\"");
        if (ret_rev)
                *ret_rev = r ? strtoll(r + 12, NULL, 10) : 0;
        int64_t lease = l ? strtoll(l + 9, NULL, 10) : 0;
        free(out);
        return lease;
}

/* Host i's directory health (through `ipcf hosts --json` would do too; the
 * library in a child on that host). */
static ipcf_dir_health health_of(int i) {
        static ipcf_dir_health h;
        int fds[2];
        CHECK_OK(pipe(fds));
        pid_t child = fork();
        CHECK(child >= 0);
        if (child == 0) {
                hostset_enter(&S, i);
                ipcf_host_listing *hl;
                CHECK_OK(ipcf_hosts(&hl));
                CHECK(hl->directory != NULL);
                CHECK(write(fds[1], hl->directory, sizeof(*hl->directory)) == (ssize_t)sizeof(*hl->directory));
                _exit(0);
        }
        close(fds[1]);
        CHECK(read(fds[0], &h, sizeof(h)) == (ssize_t)sizeof(h));
        close(fds[0]);
        CHECK_EQ(test_wait(child, 10000), 0);
        return h;
}

static int count_in(const char *path, const char *pattern) {
        char *n = TEST_SH_OK("grep -c -- '%s' '%s' || true", pattern, path);
        int c = atoi(n);
        free(n);
        return c;
}

TEST_TIMEOUT(dir_two_daemons_with_one_host_name_back_off_and_say_so, 240) {
        etcd_cluster_start(&C, 1);
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        snprintf(S.h[2].name, sizeof(S.h[2].name), "alpha"); /* a second alpha, its own key */
        char log0[PATH_MAX], log2[PATH_MAX];
        snprintf(log0, sizeof(log0), "%s", test_scratch("alpha0.log"));
        snprintf(log2, sizeof(log2), "%s", test_scratch("alpha2.log"));
        char window_key[64];
        snprintf(window_key, sizeof(window_key), "host_conflict_window_s = %d\n", WINDOW_S);
        dirtest_start_logged(&S, 0, dirtest_conf_with(C.client_url[0], window_key), 1u << 1, log0);
        dirtest_start_logged(&S, 2, dirtest_conf_with(C.client_url[0], window_key), 1u << 1, log2);
        hostset_start_enrol(&S, 1, dirtest_conf(C.client_url[0]), 1u << 0, NULL); /* beta knows the first alpha */
        pid_t srv0 = dirtest_serve(&S, 0, "dup-svc");
        pid_t srv2 = dirtest_serve(&S, 2, "dup-svc");

        /* Both say it, in the log and the health. */
        uint64_t end = test_now_ms() + 30000;
        ipcf_dir_health h0, h2;
        for (;;) {
                h0 = health_of(0);
                h2 = health_of(2);
                if ((strstr(h0.last_error, "host name conflict") && strstr(h2.last_error, "host name conflict")) ||
                    test_now_ms() > end)
                        break;
                usleep(300000);
        }
        fprintf(stderr, "first alpha: %s\nsecond alpha: %s\n", h0.last_error, h2.last_error);
        CHECK(strstr(h0.last_error, "host name conflict: another daemon (lease ") != NULL);
        CHECK(strstr(h0.last_error, "is another daemon configured as host alpha?") != NULL);
        char in_window[64];
        snprintf(in_window, sizeof(in_window), "times in the last %d s:", WINDOW_S);
        CHECK(strstr(h0.last_error, in_window) != NULL);
        CHECK(strstr(h2.last_error, "host name conflict") != NULL);
        CHECK(h0.host_conflict && h2.host_conflict && !h0.degraded); /* the flag says it too */
        CHECK(!health_of(1).host_conflict);                           /* (beta has no twin) */
        char *out = NULL;
        CHECK_EQ(dirtest_ipcf_on(&S, 0, 0, "hosts", &out), 0);
        if (!strstr(out, "directory: last error: host name conflict: another daemon"))
                test_fail(__FILE__, __LINE__, "ipcf hosts on the first alpha:\n%s", out);
        free(out);
        CHECK_EQ(count_in(log0, "directory: another daemon (lease [0-9a-f]*) keeps taking this host"), 1);
        CHECK_EQ(count_in(log2, "directory: another daemon (lease [0-9a-f]*) keeps taking this host"), 1);

        /* They stop fighting: the record changes hands rarely, where before
         * it changed about three times a second (a third of the window after
         * the conflict was seen, as the default minute's 20 s). */
        sleep(WINDOW_S / 3);
        int64_t rev0, rev1;
        etcd_key_lease("dup-svc", "alpha", &rev0);
        sleep(10);
        etcd_key_lease("dup-svc", "alpha", &rev1);
        fprintf(stderr, "puts in 10 s, %d s after the conflict was seen: %" PRId64 "\n", WINDOW_S / 3, rev1 - rev0);
        CHECK(rev1 - rev0 <= 6);

        /* The second alpha dies: its lease and its record expire, and the
         * first puts the record again at once. */
        kill(srv2, SIGKILL);
        test_wait(srv2, 5000);
        hostset_kill_host(&S, 2);
        int64_t lease0 = health_of(0).lease;
        CHECK(lease0 != 0);
        end = test_now_ms() + 8000;
        while (etcd_key_lease("dup-svc", "alpha", NULL) != lease0 && test_now_ms() < end)
                usleep(100000);
        CHECK_EQ(etcd_key_lease("dup-svc", "alpha", NULL), lease0);

        kill(srv0, SIGKILL);
        test_wait(srv0, 5000);
        hostset_stop(&S);
        etcd_cluster_stop(&C);
}
