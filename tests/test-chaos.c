/*
 * test-chaos.c — the chaos driver of the local facility (tools/chaos/,
 * issue 16), run briefly: real daemon, real processes using flows, calls,
 * mailboxes and multicast, some killed with SIGKILL, the daemon too. The
 * invariants must hold (nothing lost unreported, no duplicate, no corrupt
 * or out-of-order message, no call past its timeout, nothing hung, the
 * daemon alive unless killed, its descriptors back), and the run must have done something (rounds,
 * kills, messages). The books themselves are checked: with a receiver that
 * forgets one message per round (--inject-loss), the driver must see it.
 * Longer runs (the figures in docs/TESTING.md) are `ipcf-chaos --seconds N`.
 */
#include <inttypes.h>
#include <time.h>

#include "support/shell.h"
#include "support/test.h"

/* The number after "key": in the driver's JSON line; fails if absent. */
static long long json_num(const char *json, const char *key) {
        char pat[64];
        snprintf(pat, sizeof(pat), "\"%s\": ", key);
        const char *p = strstr(json, pat);
        if (!p)
                test_fail(__FILE__, __LINE__, "no %s in: %s", key, json);
        return strtoll(p + strlen(pat), NULL, 10);
}

/* Run the driver for secs seconds with extra options; its exit status and output. */
static int chaos_run(unsigned secs, const char *extra, char **ret_out) {
        char *bin = test_built("bin/ipcf-chaos");
        uint64_t seed = (uint64_t)time(NULL);
        printf("ipcf-chaos --seed %" PRIu64 " %s\n", seed, extra);
        int st = test_sh(ret_out, secs + 60, "'%s' --seconds %u --seed %" PRIu64 " --json %s 2>&1", bin,
                         secs, seed, extra);
        free(bin);
        return st;
}

TEST_TIMEOUT(chaos_nothing_lost_unreported, 120) {
        char *out = NULL;
        int st = chaos_run(20, "--kill-daemon", &out);
        printf("%s", out);
        CHECK_EQ(st, 0);
        CHECK(json_num(out, "rounds") >= 4);
        CHECK(json_num(out, "processes_killed") >= 1);
        CHECK(json_num(out, "messages_sent") >= 500);
        CHECK(json_num(out, "delivered") > 0);
        CHECK_EQ(json_num(out, "lost_unreported"), 0);
        CHECK_EQ(json_num(out, "duplicates"), 0);
        CHECK_EQ(json_num(out, "corrupt"), 0);
        CHECK_EQ(json_num(out, "out_of_order"), 0);
        CHECK_EQ(json_num(out, "late_calls"), 0);
        CHECK_EQ(json_num(out, "unexpected_errors"), 0);
        CHECK_EQ(json_num(out, "hung"), 0);
        CHECK_EQ(json_num(out, "daemon_deaths"), 0);
        CHECK_EQ(json_num(out, "daemon_fds_end"), json_num(out, "daemon_fds_start"));
        CHECK(strstr(out, "\"holds\": true"));
        free(out);
}

TEST_TIMEOUT(chaos_books_see_a_silent_loss, 60) {
        char *out = NULL;
        int st = chaos_run(3, "--inject-loss", &out);
        printf("%s", out);
        CHECK_EQ(st, 1);
        CHECK(json_num(out, "rounds") >= 1);
        CHECK(json_num(out, "lost_unreported") >= 1);
        CHECK(strstr(out, "\"holds\": false"));
        free(out);
}
