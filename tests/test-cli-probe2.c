/*
 * test-cli-probe2.c — the `ipcf` tool's command line as an outside tester
 * attacks it, against the promises of CLI.md ("The command line: the same
 * rules for every command"): a bad value or argument is one line on stderr,
 * exit status 2, "and nothing else is done (no daemon is contacted)".
 *
 * Every case runs with no daemon and autostart off, so a command that asks
 * the daemon anyway exits 1 ("no daemon serves ..."), not 2.
 */
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "support/shell.h"
#include "support/test.h"

/* No daemon, and none started: whatever asks for one fails with exit 1. */
static void no_daemon(void) {
        setenv("IPCF_RUNTIME_DIR", test_scratch("run"), 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
}

/* `ipcf WORDS` (shell words) exits want with one line on stderr starting
 * "ipcf: " and containing text (if not NULL). */
static void expect(const char *words, int want, const char *text) {
        char *ipcf = test_built("bin/ipcf");
        char *err = NULL;
        int st = test_sh(&err, 20, "'%s' %s </dev/null 2>&1 >/dev/null", ipcf, words);
        size_t lines = 0;
        for (const char *p = err; *p; p++)
                lines += *p == '\n';
        if (st != want || lines != 1 || strncmp(err, "ipcf: ", 6) != 0 || (text && !strstr(err, text)))
                test_fail(__FILE__, __LINE__, "ipcf %.60s...: exit %d (want %d), stderr:\n%s", words, st, want,
                          err);
        free(err);
        free(ipcf);
}

/* The commands whose first argument is a NAME, and what follows it. */
static const char *const name_commands[][2] = {
        { "cat", "" },           { "ping", "" },         { "perf", "" },
        { "listen", "" },        { "watch", "" },        { "call", "" },
        { "serve", "-- true" },  { "dgram send", "x" },  { "dgram recv", "" },
        { "mbox create", "" },   { "mbox send", "m" },   { "mbox recv", "" },
        { "mbox destroy", "" },  { "mcast create", "" }, { "mcast send", "m" },
        { "mcast join", "" },    { "mcast destroy", "" }, { "shm create", "4096" },
        { "shm info", "" },      { "shm resize", "8192" }, { "shm dissolve", "" },
        { "shm cat", "" },       { "shm write", "0" },   { "shm unlink", "" },
        { "rpc describe", "" },  { "rpc call", "p" },
};

/* A name longer than IPCF_NAME_MAX (127), an empty one, one with a blank or
 * a control byte: a usage error of every command that takes a NAME, found
 * before the daemon is asked (before: call, serve, dgram, mbox, mcast, shm
 * and rpc asked it, "ipcf: : invalid argument", exit 1). A name of 127
 * characters is good: the daemon is asked (exit 1, none runs). */
TEST_TIMEOUT(a_bad_name_is_a_usage_error_everywhere, 120) {
        no_daemon();
        char n127[128], n128[129], words[512];
        memset(n127, 'a', 127);
        n127[127] = 0;
        memset(n128, 'a', 128);
        n128[128] = 0;
        const char *const bad[] = { n128, "''", "'a b'", "\"$(printf 'a\\033b')\"" };
        for (size_t i = 0; i < sizeof(name_commands) / sizeof(name_commands[0]); i++) {
                for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
                        snprintf(words, sizeof(words), "%s %s %s", name_commands[i][0], bad[k],
                                 name_commands[i][1]);
                        expect(words, 2, "is not a valid name (1-127 printable characters, no spaces)");
                }
                snprintf(words, sizeof(words), "%s %s %s", name_commands[i][0], n127, name_commands[i][1]);
                expect(words, 1, "no daemon serves");
        }
}


/* A group's SIZE is 1 byte to 16 GiB (ipcf.h, ipcf_group_create and
 * _resize: -EINVAL otherwise): `shm create` and `shm resize` say a bad one
 * is a usage error before asking the daemon (before: "ipcf: x: invalid
 * argument", exit 1, from the daemon). 16 GiB itself is asked for. The
 * offsets of `shm cat` and `shm write` name their subcommand. */
TEST(a_group_size_out_of_range_is_a_usage_error) {
        no_daemon();
        static const char *const bad[] = {
                "shm create g 0",        "shm create g 17179869185", "shm create g 17G",
                "shm create g 99999999999999999999",                 "shm resize g 0",
                "shm resize g 17179869185",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                expect(bad[i], 2, "bad size");
        expect("shm create g 16G", 1, "no daemon serves");
        expect("shm resize g 17179869184", 1, "no daemon serves");
        expect("shm cat g -1", 2, "ipcf: shm cat: bad offset");
        expect("shm cat g 0 x", 2, "ipcf: shm cat: bad length");
        expect("shm write g -1", 2, "ipcf: shm write: bad offset");
}

/* `mbox send --receipt` waits up to 10 s for a receiver (ipcf(1)); when none
 * takes the message by then, ipcf_mbox_send's -ETIMEDOUT leaves it queued
 * ("may still be delivered", ipcf.h). The tool said "ipcf: send: timed
 * out", as if nothing had been sent, and a later receiver got the message;
 * it says so now, naming the command and the mailbox, exit 1. */
TEST_TIMEOUT(a_receipt_not_given_in_time_says_the_message_stays_queued, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_built("bin/ipcf");
        CHECK_EQ(test_sh(NULL, 20, "'%s' mbox create probe.mb", ipcf), 0);
        char *err = NULL;
        uint64_t t0 = test_now_ms();
        int st = test_sh(&err, 30, "'%s' mbox send probe.mb --receipt hello 2>&1 >/dev/null", ipcf);
        uint64_t took = test_now_ms() - t0;
        if (st != 1 || took < 9000 ||
            !strstr(err, "ipcf: mbox send probe.mb: no receiver took message 1 within 10 s: it stays "
                         "queued and may still be delivered\n"))
                test_fail(__FILE__, __LINE__, "exit %d after %llu ms:\n%s", st, (unsigned long long)took, err);
        free(err);
        char *out = NULL;
        CHECK_EQ(test_sh(&out, 20, "'%s' mbox recv probe.mb -n 1", ipcf), 0);
        CHECK(strcmp(out, "hello\n") == 0);
        free(out);
        free(ipcf);
        test_daemon_stop(&d);
}

/* CLI.md: "a closed stdout is reported as an error" — also for the tool's
 * own --help and --version (they exited 0 into /dev/full, while `ipcf cat
 * --help` exited 1 with "stdout: write failed"). */
TEST(help_and_version_into_a_full_stdout_fail) {
        no_daemon();
        char *ipcf = test_built("bin/ipcf");
        static const char *const words[] = { "--help", "--version", "help", "-h", "cat --help" };
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
                char *err = NULL;
                int st = test_sh(&err, 20, "'%s' %s </dev/null 2>&1 >/dev/full", ipcf, words[i]);
                if (st != 1 || !strstr(err, "stdout: write failed"))
                        test_fail(__FILE__, __LINE__, "ipcf %s >/dev/full: exit %d:\n%s", words[i], st, err);
                free(err);
        }
        free(ipcf);
}

/* CLI.md: "`watch` refuses every name with an `@`" — before the daemon is
 * asked, as a bad name (it exited 1, "ipcf: a@b: invalid argument"). */
TEST(watch_refuses_a_name_with_an_at_as_a_usage_error) {
        no_daemon();
        expect("watch a@b", 2, "cannot be watched");
        expect("watch ok a@b", 2, "cannot be watched");
        expect("watch --json @", 2, "cannot be watched");
}

/* A receiver whose stdout fails (a full disk: /dev/full) stops at the
 * first message it could not write and says so, exit 1: `mbox recv -n 3`
 * exited 0 having taken three messages out of the mailbox and written none
 * (and without -n took every message for ever); `dgram recv` and `watch`
 * the same. The mailbox keeps what was not taken. */
TEST_TIMEOUT(receivers_stop_at_a_failed_stdout, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_built("bin/ipcf");
        CHECK_EQ(test_sh(NULL, 20, "'%s' mbox create probe.mb && '%s' mbox send probe.mb a b c d", ipcf, ipcf),
                 0);
        char *err = NULL;
        int st = test_sh(&err, 20, "'%s' mbox recv probe.mb -n 3 2>&1 >/dev/full", ipcf);
        if (st != 1 || !strstr(err, "ipcf: mbox recv probe.mb: stdout: write failed"))
                test_fail(__FILE__, __LINE__, "mbox recv >/dev/full: exit %d:\n%s", st, err);
        free(err);
        char *out = NULL;
        CHECK_EQ(test_sh(&out, 20, "'%s' mbox recv probe.mb -n 3", ipcf), 0);
        CHECK(strcmp(out, "b\nc\nd\n") == 0);
        free(out);

        /* watch: the name is up (a listener), the event cannot be written */
        pid_t l = test_sh_bg("exec '%s' listen probe.w </dev/null >/dev/null 2>&1", ipcf);
        st = test_sh(&err, 20, "'%s' watch -n 5 probe.w 2>&1 >/dev/full", ipcf);
        if (st != 1 || !strstr(err, "ipcf: watch: stdout: write failed"))
                test_fail(__FILE__, __LINE__, "watch >/dev/full: exit %d:\n%s", st, err);
        free(err);
        kill(l, SIGTERM);
        test_wait(l, 5000);

        /* dgram recv: a datagram comes, cannot be written */
        pid_t r = test_sh_bg("'%s' dgram recv probe.dg -n 5 >/dev/full 2>'%s'", ipcf, test_scratch("dg.err"));
        for (int i = 0; i < 200 && test_sh(NULL, 10, "'%s' dgram send probe.dg x 2>/dev/null", ipcf) != 0; i++)
                usleep(20000);
        int ws = test_wait(r, 10000);
        char *dg = NULL;
        test_sh(&dg, 10, "cat '%s'", test_scratch("dg.err"));
        if (ws != 1 || !strstr(dg, "ipcf: dgram recv probe.dg: stdout: write failed"))
                test_fail(__FILE__, __LINE__, "dgram recv >/dev/full: status %d:\n%s", ws, dg);
        free(dg);
        free(ipcf);
        test_daemon_stop(&d);
}

/* A receiver of a mailbox or group whose daemon dies (kill -9) exits 1
 * naming the command, the name and the cause: it said "ipcf: recv: peer
 * died" (the broker is the daemon: no peer of the user's died). */
TEST_TIMEOUT(a_receiver_names_the_daemons_death, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *ipcf = test_built("bin/ipcf");
        CHECK_EQ(test_sh(NULL, 20, "'%s' mbox create probe.mb && '%s' mcast create probe.mc", ipcf, ipcf), 0);
        pid_t mb = test_sh_bg("'%s' mbox recv probe.mb >/dev/null 2>'%s'", ipcf, test_scratch("mb.err"));
        pid_t mc = test_sh_bg("'%s' mcast join probe.mc </dev/null >/dev/null 2>'%s'", ipcf,
                              test_scratch("mc.err"));
        usleep(500000); /* both joined (a late one fails "no daemon serves": also exit 1) */
        test_daemon_kill(&d);
        CHECK_EQ(test_wait(mb, 10000), 1);
        CHECK_EQ(test_wait(mc, 10000), 1);
        char *err = NULL;
        test_sh(&err, 10, "cat '%s' '%s'", test_scratch("mb.err"), test_scratch("mc.err"));
        if (!strstr(err, "ipcf: mbox recv probe.mb: the daemon ended (peer died)\n") ||
            !strstr(err, "ipcf: mcast join probe.mc: the daemon ended (peer died)\n"))
                test_fail(__FILE__, __LINE__, "after the daemon's death:\n%s", err);
        free(err);
        free(ipcf);
}

/* CLI.md: "a long option may be abbreviated while the abbreviation is
 * unambiguous". An ambiguous one is a usage error that says so (it said
 * "unknown option '--ma'" of cat's --max-bytes, --max-msgs, ...). */
TEST(an_ambiguous_abbreviation_is_named_so) {
        no_daemon();
        expect("cat x --ma=1", 2, "ambiguous option '--ma' (--max-bytes, --max-msgs, --max-msg-size)");
        expect("cat x --max-msg 1", 2, "ambiguous option '--max-msg' (--max-msgs, --max-msg-size)");
        expect("cat x --frob", 2, "unknown option '--frob'");
        expect("cat x --max-b=1k --timeout-ms=5", 1, "no daemon serves");
}
