/*
 * test-models-cli.c — `ipcf mbox`, `ipcf mcast`, `ipcf watch` and the models
 * section of `ipcf ls`, run as real commands against the real daemon.
 */
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* Run "ipcf ARGS" through the shell; its stdout into out (cut to cap).
 * Returns the exit status. */
static int run(char *out, size_t cap, const char *args) {
        char *bin = test_build_path("bin/ipcf");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "%s %s", bin, args);
        free(bin);
        FILE *f = popen(cmd, "r");
        CHECK(f != NULL);
        size_t n = fread(out, 1, cap - 1, f);
        out[n] = 0;
        int st = pclose(f);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(mbox_commands_and_ls) {
        test_daemon_start(&d, NULL, NULL);
        char out[8192];
        CHECK_EQ(run(out, sizeof(out), "mbox create box.cli --max-msgs 10"), 0);
        CHECK_EQ(run(out, sizeof(out), "mbox create box.cli 2>/dev/null"), 1);
        CHECK_EQ(run(out, sizeof(out), "mbox send box.cli one two three"), 0);
        CHECK_EQ(run(out, sizeof(out), "ls"), 0);
        CHECK(strstr(out, "box.cli") && strstr(out, "mbox"));
        CHECK_EQ(run(out, sizeof(out), "ls --json"), 0);
        CHECK(strstr(out, "\"models\":[") && strstr(out, "\"name\":\"box.cli\""));
        CHECK_EQ(run(out, sizeof(out), "mbox recv box.cli -n 3"), 0);
        CHECK(strcmp(out, "one\ntwo\nthree\n") == 0);
        CHECK_EQ(run(out, sizeof(out), "mbox destroy box.cli"), 0);
        CHECK_EQ(run(out, sizeof(out), "mbox send box.cli x 2>/dev/null"), 1);
        CHECK_EQ(run(out, sizeof(out), "mbox 2>/dev/null"), 2);
        test_daemon_stop(&d);
}

TEST(mcast_and_watch_commands) {
        test_daemon_start(&d, NULL, NULL);
        char out[8192];
        CHECK_EQ(run(out, sizeof(out), "mcast create grp.cli --slow drop"), 0);
        CHECK_EQ(run(out, sizeof(out), "mcast create grp.x --slow sideways 2>/dev/null"), 2);
        int m = CHECK_OK(ipcf_mcast_join("grp.cli", NULL, 2000));
        CHECK_EQ(run(out, sizeof(out), "mcast send grp.cli hello"), 0);
        char buf[16];
        CHECK_EQ(ipcf_mcast_recv(m, buf, sizeof(buf), 2000, NULL), 5);
        CHECK_MEM(buf, "hello", 5);
        CHECK_EQ(run(out, sizeof(out), "mcast ls"), 0);
        CHECK(strstr(out, "mcast/drop") != NULL);
        /* watch: a name already up is reported at once. */
        CHECK_EQ(run(out, sizeof(out), "watch grp.cli -n 1"), 0);
        CHECK(strncmp(out, "up grp.cli", 10) == 0);
        CHECK_EQ(run(out, sizeof(out), "mcast destroy grp.cli"), 0);
        CHECK_ERR(ipcf_mcast_recv(m, buf, sizeof(buf), 2000, NULL), -EPIPE);
        test_daemon_stop(&d);
}

/* The options' maxima (IPCF_MODEL_MAX_MSGS, IPCF_MODEL_MAX_MSG_SIZE) are
 * taken; one more is a usage error (exit 2, a line naming the option), not
 * the daemon's -EINVAL (exit 1), and nothing is made. */
TEST(model_limits_are_usage_errors) {
        test_daemon_start(&d, NULL, NULL);
        char out[8192];
        CHECK_EQ(run(out, sizeof(out), "mbox create box.max --max-msgs 64k --max-msg-size 256k"), 0);
        CHECK_EQ(run(out, sizeof(out), "mbox create box.over --max-msgs 65537 2>/dev/null"), 2);
        CHECK_EQ(run(out, sizeof(out), "mbox create box.over --max-msgs 70000 2>/dev/null"), 2);
        CHECK_EQ(run(out, sizeof(out), "mbox create box.over --max-msg-size 262145 2>/dev/null"), 2);
        CHECK_EQ(run(out, sizeof(out), "mbox create box.over --max-msgs 70000 2>&1 >/dev/null"), 2);
        CHECK(strstr(out, "max-msgs") != NULL);
        CHECK_EQ(run(out, sizeof(out), "mcast create grp.max --max-msgs 65536"), 0);
        CHECK_EQ(run(out, sizeof(out), "mcast create grp.over --max-msgs 70000 2>/dev/null"), 2);
        CHECK_EQ(run(out, sizeof(out), "ls"), 0);
        CHECK(strstr(out, "box.max") && strstr(out, "grp.max"));
        CHECK(!strstr(out, "box.over") && !strstr(out, "grp.over"));
        test_daemon_stop(&d);
}
