/*
 * test-cli-call.c — `ipcf serve`, `ipcf call` and `ipcf dgram` as a user runs
 * them, against the real daemon.
 */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* Run a shell command line; its stdout into out (NUL-terminated); returns its
 * exit status. */
static int sh(const char *line, char *out, size_t cap) {
        FILE *f = popen(line, "r");
        CHECK(f != NULL);
        size_t n = fread(out, 1, cap - 1, f);
        out[n] = 0;
        int st = pclose(f);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static pid_t spawn(const char *line) {
        pid_t p = fork();
        if (p == 0) {
                execl("/bin/sh", "sh", "-c", line, (char *)NULL);
                _exit(127);
        }
        return p;
}

static void wait_name(const char *ipcf, const char *name) {
        char cmd[512], out[8192];
        snprintf(cmd, sizeof(cmd), "%s ls", ipcf);
        for (int i = 0; i < 300; i++) {
                sh(cmd, out, sizeof(out));
                if (strstr(out, name))
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%s never registered", name);
}

TEST(serve_and_call_from_the_shell) {
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_build_path("bin/ipcf");
        char line[1024], out[4096];
        snprintf(line, sizeof(line),
                 "exec %s serve cli.upper -n 3 -- sh -c 'echo \"uid=$IPCF_CALLER_UID\"; tr a-z A-Z'",
                 ipcf);
        pid_t s = spawn(line);
        wait_name(ipcf, "cli.upper");
        snprintf(line, sizeof(line), "echo hello | %s call cli.upper", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        char want[64];
        snprintf(want, sizeof(want), "uid=%u\nHELLO\n", (unsigned)getuid());
        CHECK(strcmp(out, want) == 0);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        CHECK_EQ(test_wait(s, 5000), 0); /* -n 3: done */
        snprintf(line, sizeof(line), "exec %s serve cli.fail -n 1 -- sh -c 'exit 7'", ipcf);
        s = spawn(line);
        wait_name(ipcf, "cli.fail");
        snprintf(line, sizeof(line), "echo x | %s call cli.fail 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 1);
        CHECK(strstr(out, "code 7") != NULL);
        CHECK_EQ(test_wait(s, 5000), 0);
        snprintf(line, sizeof(line), "%s call cli.none </dev/null 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 1);
        CHECK(strstr(out, "no such name") != NULL);
        free(ipcf);
        test_daemon_stop(&d);
}

/* A served command starts as a command started from a shell would: no
 * signal ignored (ipcf ignores SIGPIPE itself, which a command would keep
 * across exec: a filter writing into a closed pipe would get EPIPE for
 * ever instead of dying, and serve would wait for it for ever). Errors name
 * the command and the service. */
TEST(serve_runs_commands_with_no_signal_ignored) {
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_build_path("bin/ipcf");
        char line[1024], out[4096];
        snprintf(line, sizeof(line), "exec %s serve cli.sig -n 1 -- grep ^SigIgn /proc/self/status", ipcf);
        pid_t s = spawn(line);
        wait_name(ipcf, "cli.sig");
        snprintf(line, sizeof(line), "%s call cli.sig -t 5000 </dev/null 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        /* ipcf ignores SIGPIPE; the command must not inherit that (what the
         * environment that started the test ignores, it may) */
        unsigned long long ign = 0;
        CHECK_EQ(sscanf(out, "SigIgn: %llx", &ign), 1);
        if (ign & (1ull << (SIGPIPE - 1)))
                test_fail(__FILE__, __LINE__, "the command ignores SIGPIPE: '%s'", out);
        CHECK_EQ(test_wait(s, 5000), 0);
        snprintf(line, sizeof(line), "%s call cli.none -t 300 </dev/null 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 1);
        CHECK(strcmp(out, "ipcf: call cli.none: no such name\n") == 0);
        free(ipcf);
        test_daemon_stop(&d);
}

/* A reply longer than IPCF_CALL_MAX fails the call with code 255 (CLI.md),
 * whether the command is killed by SIGPIPE when serve stops reading (it
 * failed with 141) or exits 0 with the rest left in the pipe; one of
 * exactly IPCF_CALL_MAX bytes is a reply; a command that cannot be run
 * fails it with 127. */
TEST(serve_fails_a_reply_too_long_with_255) {
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_build_path("bin/ipcf");
        char line[1024], out[4096];
        snprintf(line, sizeof(line),
                 "exec %s serve cli.long -n 3 -- sh -c 'read n; head -c $n /dev/zero'", ipcf);
        pid_t s = spawn(line);
        wait_name(ipcf, "cli.long");
        const unsigned sizes[] = { 1024u * 1024u, IPCF_CALL_MAX + 20u };
        for (size_t i = 0; i < 2; i++) {
                snprintf(line, sizeof(line), "echo %u | %s call cli.long -t 10000 2>&1 >/dev/null", sizes[i],
                         ipcf);
                CHECK_EQ(sh(line, out, sizeof(out)), 1);
                if (!strstr(out, "code 255"))
                        test_fail(__FILE__, __LINE__, "a reply of %u bytes: '%s'", sizes[i], out);
        }
        snprintf(line, sizeof(line), "echo %u | %s call cli.long -t 10000 | wc -c", IPCF_CALL_MAX, ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        CHECK_EQ(strtoul(out, NULL, 10), IPCF_CALL_MAX);
        CHECK_EQ(test_wait(s, 5000), 0);
        snprintf(line, sizeof(line), "exec %s serve cli.nocmd -n 1 -- /nonexistent/cmd", ipcf);
        s = spawn(line);
        wait_name(ipcf, "cli.nocmd");
        snprintf(line, sizeof(line), "%s call cli.nocmd -t 10000 </dev/null 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 1);
        CHECK(strstr(out, "code 127") != NULL);
        CHECK_EQ(test_wait(s, 5000), 0);
        free(ipcf);
        test_daemon_stop(&d);
}

TEST(datagrams_from_the_shell) {
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_build_path("bin/ipcf");
        char line[1024], out[4096];
        snprintf(line, sizeof(line), "%s dgram recv cli.dg -n 2", ipcf);
        FILE *rx = popen(line, "r");
        wait_name(ipcf, "cli.dg");
        snprintf(line, sizeof(line), "%s dgram send cli.dg 'one two'", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        snprintf(line, sizeof(line), "echo three | %s dgram send cli.dg", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 0);
        size_t n = fread(out, 1, sizeof(out) - 1, rx);
        out[n] = 0;
        CHECK(WEXITSTATUS(pclose(rx)) == 0);
        CHECK(strstr(out, ": one two\n") != NULL);
        CHECK(strstr(out, ": three\n") != NULL);
        /* stdin longer than a datagram may be: refused, not cut to 256 KiB */
        snprintf(line, sizeof(line), "head -c 262145 /dev/zero | %s dgram send cli.dg 2>&1", ipcf);
        CHECK_EQ(sh(line, out, sizeof(out)), 1);
        CHECK(strstr(out, "too long") || strstr(out, "too large"));
        free(ipcf);
        test_daemon_stop(&d);
}
