/*
 * test-cli-probe.c — the `ipcf` tool as an outside tester attacks it: what
 * another process can put into its output (its program name, the runtime
 * directory's path) and what the documents promise of that output. CLI.md:
 * "Every listing takes --json and prints valid JSON (RFC 8259; strings
 * escaped)" — RFC 8259 JSON is UTF-8 — and listings show programs "read from
 * /proc/PID/comm", which any process sets to any 15 bytes (prctl
 * PR_SET_NAME), and which the kernel cuts at 15 bytes, inside a UTF-8
 * character if it must.
 *
 * JSON is checked with Python's json module reading bytes (strict UTF-8);
 * text output must hold no control byte but the newline (a program name
 * must not reach the terminal as an escape sequence).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/shell.h"
#include "support/test.h"

/* 15 bytes, as the kernel keeps them: an escape sequence (reverse video),
 * five 'é', and the first byte of a sixth (a name cut by the kernel). */
static const char hostile_comm[] = "\x1b[7m\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3";

/* The child: named so, registers name, waits to be killed. */
static void register_as_hostile(void *arg) {
        prctl(PR_SET_NAME, hostile_comm, 0, 0, 0);
        int reg = ipcf_register(arg, NULL);
        if (reg < 0)
                _exit(3);
        for (;;)
                pause();
}

static bool registered(const char *name) {
        ipcf_listing *l = NULL;
        bool found = false;
        if (ipcf_list(&l) == 0) {
                for (size_t k = 0; k < l->n_names; k++)
                        found |= !strcmp(l->names[k].name, name);
                ipcf_free(l);
        }
        return found;
}

static void wait_registered(const char *name) {
        for (int i = 0; i < 1000 && !registered(name); i++)
                usleep(10000);
        CHECK(registered(name));
}

/* The file is JSON (one document, or one per line), strictly UTF-8. */
static void check_json(const char *path, bool per_line) {
        char *out = NULL;
        int rc = test_sh(&out, 30,
                         "python3 -c 'import json, sys\n"
                         "data = open(sys.argv[1], \"rb\").read()\n"
                         "docs = data.splitlines() if sys.argv[2] == \"1\" else [data]\n"
                         "[json.loads(d) for d in docs if d.strip()]' '%s' %d",
                         path, per_line);
        if (rc != 0) {
                char *text = NULL;
                test_sh(&text, 10, "od -c '%s' | head -20", path);
                test_fail(__FILE__, __LINE__, "%s is not UTF-8 JSON: %s\n%s", path, out, text);
        }
        free(out);
}

/* The file holds no control byte but '\n'. */
static void check_no_control_bytes(const char *path) {
        FILE *f = fopen(path, "rb");
        CHECK(f != NULL);
        int c;
        long at = 0;
        while ((c = fgetc(f)) != EOF) {
                if ((c < 0x20 && c != '\n') || c == 0x7f)
                        test_fail(__FILE__, __LINE__, "%s: control byte 0x%02x at offset %ld", path, c, at);
                at++;
        }
        fclose(f);
}

/* `ipcf ARGS`, in the background, its stdout into file; its pid. */
static pid_t ipcf_bg(const char *file, const char *args) {
        char *bin = test_built("bin/ipcf");
        pid_t pid = test_sh_bg("exec '%s' %s > '%s'", bin, args, file);
        free(bin);
        return pid;
}

/* Until file has a line holding want (at most 10 s). */
static bool file_has(const char *file, const char *want) {
        char *out = NULL;
        int st = test_sh(&out, 10, "grep -qF -- '%s' '%s'", want, file);
        free(out);
        return st == 0;
}

/* Both monitors saw a probe name come up: they are subscribed. */
static void wait_subscribed(const char *text, const char *json) {
        for (int i = 0; i < 100; i++) {
                int reg = CHECK_OK(ipcf_register("probe.sub", NULL));
                usleep(50000);
                bool seen = file_has(text, "probe.sub") && file_has(json, "probe.sub");
                CHECK_OK(ipcf_dealloc(reg, NULL));
                if (seen)
                        return;
        }
        test_fail(__FILE__, __LINE__, "the monitors never saw the probe");
}

/* A process named with an escape sequence and a cut UTF-8 character: ls,
 * ls --json, monitor and monitor --json show it without either. */
TEST(a_hostile_program_name_reaches_no_output_raw) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *mon_txt = test_scratch("mon.txt"), *mon_json = test_scratch("mon.json");
        pid_t mon = ipcf_bg(mon_txt, "monitor"), monj = ipcf_bg(mon_json, "monitor --json");
        wait_subscribed(mon_txt, mon_json);

        pid_t hostile = test_fork(register_as_hostile, "probe.comm");
        wait_registered("probe.comm");
        for (int i = 0; i < 1000 && !(file_has(mon_txt, "probe.comm") && file_has(mon_json, "probe.comm")); i++)
                usleep(10000);
        CHECK(file_has(mon_txt, "probe.comm") && file_has(mon_json, "probe.comm"));

        char *bin = test_built("bin/ipcf");
        free(TEST_SH_OK("'%s' ls > '%s'", bin, test_scratch("ls.txt")));
        free(TEST_SH_OK("'%s' ls --json > '%s'", bin, test_scratch("ls.json")));
        free(bin);
        kill(mon, SIGTERM);
        kill(monj, SIGTERM);
        test_wait(mon, 10000);
        test_wait(monj, 10000);

        check_no_control_bytes(test_scratch("ls.txt"));
        check_no_control_bytes(mon_txt);
        check_json(test_scratch("ls.json"), false);
        check_json(mon_json, true);
        /* Still there: the listing shows the registrant, as something. */
        CHECK(file_has(test_scratch("ls.txt"), "probe.comm"));

        kill(hostile, SIGKILL);
        test_wait(hostile, 10000);
        test_daemon_stop(&d);
}

/* A runtime directory whose path is not UTF-8 (Latin-1 'é'): ls --json
 * still prints UTF-8 JSON. */
TEST(a_runtime_dir_not_utf8_gives_utf8_json) {
        char *bin = test_built("bin/ipcf"), *daemon = test_built("bin/ipcfd");
        const char *out = test_scratch("ls.json");
        int rc = test_sh(NULL, 60,
                         "d=\"$TEST_SCRATCH/run-$(printf '\\351')\"; mkdir -m 700 \"$d\" && "
                         "IPCF_RUNTIME_DIR=\"$d\" IPCF_DAEMON='%s' IPCF_NO_AUTOSTART= '%s' ls --json > '%s'; "
                         "st=$?; kill $(cat \"$d/ipcfd.pid\"); exit $st",
                         daemon, bin, out);
        CHECK_EQ(rc, 0);
        check_json(out, false);
        free(bin);
        free(daemon);
}

/* `ipcf ARGS` with no daemon to reach (autostart off, an empty runtime
 * dir): its exit status and stderr (malloc'ed, in *err). */
static int ipcf_no_daemon(char **err, const char *args) {
        char *bin = test_built("bin/ipcf");
        int rc = test_sh(err, 30, "mkdir -p \"$TEST_SCRATCH/none\"; IPCF_RUNTIME_DIR=\"$TEST_SCRATCH/none\" "
                                  "IPCF_NO_AUTOSTART=1 '%s' %s 2>&1 >/dev/null", bin, args);
        free(bin);
        return rc;
}

/* CLI.md: a bad value is a usage error, exit 2, "and nothing else is done
 * (no daemon is contacted)"; ipcf.h's ipcf_qos gives each field's limit.
 * A flow option beyond its limit is such a bad value, named in the line;
 * each limit itself is taken (the command then fails for want of a daemon,
 * exit 1). */
TEST(flow_options_beyond_the_qos_limits_are_usage_errors) {
        static const struct {
                const char *args, *names;
        } bad[] = {
                { "cat x --max-msg-size=64M1", "--max-msg-size" }, /* not a size */
                { "cat x --max-msg-size=65M", "--max-msg-size" },
                { "ping x --spin-us=100001", "--spin-us" },
                { "perf x --full=cache --cache-msgs=65537 --max-msg-size=16", "--cache-msgs" },
                { "cat x --max-bytes=1025M", "--max-bytes" },      /* bounded: at most 1 GiB */
                { "cat x --capacity=unbounded --max-bytes=17G", "--max-bytes" },
                { "cat x --full=cache --cache-msgs=4096", "--cache-msgs" }, /* 4096 x 256 KiB > 1 GiB */
                { "listen x --max-msg-size=65M", "--max-msg-size" },
                /* ipcf_alloc: "-EINVAL for timeout 0" (an allocation waits for
                 * the target's decision), as `call -t 0` is refused. */
                { "cat x --timeout-ms 0", "--timeout-ms" },
                { "ping x --timeout-ms=0", "--timeout-ms" },
                { "perf x --timeout-ms=0", "--timeout-ms" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *err = NULL;
                int rc = ipcf_no_daemon(&err, bad[i].args);
                if (rc != 2 || !strstr(err, bad[i].names) || strstr(err, "daemon"))
                        test_fail(__FILE__, __LINE__, "ipcf %s: exit %d (want 2, naming %s): %s", bad[i].args, rc,
                                  bad[i].names, err);
                free(err);
        }
        static const char *const good[] = {
                "cat x --max-msg-size=64M",
                "ping x --spin-us=100000",
                "perf x --full=cache --cache-msgs=65536 --max-msg-size=16 -s 16",
                "cat x --max-bytes=1G",
                "cat x --capacity=unbounded --max-bytes=16G",
                "cat x --full=cache --cache-msgs=4095",
                "listen x --timeout-ms 0", /* an accept may poll */
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char *err = NULL;
                int rc = ipcf_no_daemon(&err, good[i]);
                if (rc != 1 || !strstr(err, "no daemon serves"))
                        test_fail(__FILE__, __LINE__, "ipcf %s: exit %d (want 1, no daemon): %s", good[i], rc, err);
                free(err);
        }
}

/* "-n COUNT: stop after COUNT" is one rule for every command that takes
 * it: -n 0 stops at once, exit 0 (watch, monitor, capture, mbox recv and
 * mcast join did; dgram recv and serve waited for ever). */
TEST(count_zero_stops_at_once_everywhere) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *bin = test_built("bin/ipcf");
        free(TEST_SH_OK("'%s' mbox create probe.box && '%s' mcast create probe.group", bin, bin));
        static const char *const cmds[] = {
                "watch probe.x -n 0", "monitor -n 0", "capture -w /dev/null -n 0",
                "mbox recv probe.box -n 0", "mcast join probe.group -n 0",
                "dgram recv probe.dg -n 0", "serve probe.svc -n 0 -- cat",
        };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                char *out = NULL;
                int rc = test_sh(&out, 5, "'%s' %s </dev/null", bin, cmds[i]);
                if (rc != 0)
                        test_fail(__FILE__, __LINE__, "ipcf %s: %s (want exit 0 at once): %s", cmds[i],
                                  rc == -ETIMEDOUT ? "still running after 5 s" : "failed", out);
                free(out);
        }
        free(bin);
        test_daemon_stop(&d);
}

/* ipcfd --runtime-dir "" (a script's unset variable) is a usage error, not
 * the user's own facility served instead; --config "" too. The fallback
 * it would take is pointed at the scratch directory, where a daemon that
 * starts is found by its socket. */
TEST(daemon_refuses_an_empty_runtime_dir_or_config) {
        char *daemon = test_built("bin/ipcfd");
        static const char *const args[] = { "--runtime-dir ''", "--runtime-dir=", "--config ''" };
        for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
                char *out = NULL;
                int rc = test_sh(&out, 30,
                                 "mkdir -p \"$TEST_SCRATCH/fallback\"; IPCF_RUNTIME_DIR=\"$TEST_SCRATCH/fallback\" "
                                 "timeout 3 '%s' %s; st=$?; ls \"$TEST_SCRATCH/fallback\"; exit $st",
                                 daemon, args[i]);
                if (rc != 2 || strstr(out, "ipcfd.sock"))
                        test_fail(__FILE__, __LINE__, "ipcfd %s: exit %d (want 2, nothing served): %s", args[i], rc,
                                  out);
                free(out);
        }
        free(daemon);
}

/* ipcf_list in a thread: NULL if it succeeded. */
static void *list_in_thread(void *arg) {
        ipcf_listing *l = NULL;
        int r = ipcf_list(&l);
        ipcf_free(l);
        return r == 0 ? NULL : (void *)1;
}

/* ipcf.h: "n > 0 waits at most n milliseconds", and ipcf_alloc "blocks up
 * to timeout_ms for the whole procedure" (and at most 100 ms more for the
 * daemon's verdict). A daemon that stopped answering (SIGSTOP: wedged)
 * held every allocation for the library's 30 s reply timeout instead:
 * `ipcf cat x --timeout-ms 1000`, `ipcf call x -t 1000` and ipcf_alloc(500)
 * all waited 30 s. They end with -ETIMEDOUT within their time; and the
 * connection is kept (closing it would end the process's registrations and
 * flows): once the daemon runs again, the abandoned request's late reply is
 * skipped and the same connection serves the next request. */
TEST_TIMEOUT(a_stopped_daemon_does_not_outlast_a_timeout, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("probe.kept", NULL));
        char *bin = test_built("bin/ipcf");
        kill(d.pid, SIGSTOP);

        static const char *const cmds[] = { "cat probe.x --timeout-ms 1000", "call probe.x -t 1000" };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                char *out = NULL;
                uint64_t t0 = test_now_ms();
                int rc = test_sh(&out, 20, "'%s' %s </dev/null", bin, cmds[i]);
                uint64_t took = test_now_ms() - t0;
                if (rc != 1 || took > 6000)
                        test_fail(__FILE__, __LINE__, "ipcf %s against a stopped daemon: exit %d after %llu ms "
                                  "(want 1 within its 1000 ms + 100 ms): %s",
                                  cmds[i], rc, (unsigned long long)took, out);
                free(out);
        }
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_alloc("probe.x", NULL, 500, NULL), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 < 5000);

        kill(d.pid, SIGCONT);
        /* The same connection: the registration made before is still there,
         * and the late reply of the abandoned ALLOC was not taken for this. */
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        bool kept = false;
        for (size_t k = 0; k < l->n_names; k++)
                kept |= !strcmp(l->names[k].name, "probe.kept");
        ipcf_free(l);
        CHECK(kept);
        CHECK_ERR(ipcf_alloc("probe.x", NULL, 500, NULL), -ENOENT);

        /* A request without a timeout (a listing) waits on the stopped
         * daemon in another thread, holding the connection: an allocation
         * still ends by its own time. */
        kill(d.pid, SIGSTOP);
        pthread_t lister;
        CHECK_EQ(pthread_create(&lister, NULL, list_in_thread, NULL), 0);
        usleep(200000);
        t0 = test_now_ms();
        CHECK_ERR(ipcf_alloc("probe.x", NULL, 500, NULL), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 < 5000);
        kill(d.pid, SIGCONT);
        void *listed = NULL;
        CHECK_EQ(pthread_join(lister, &listed), 0);
        CHECK(listed == NULL);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        free(bin);
        test_daemon_stop(&d);
}

/* `ipcf capture -w FILE`: a file that cannot be written is the system's
 * error, with the file — not the facility's words for that errno ("no such
 * name", "access denied by the facility's policy"), which blamed a name or
 * the daemon's policy for a missing directory or a read-only file. */
TEST(capture_names_a_file_error_as_a_file_error) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *bin = test_built("bin/ipcf");
        static const struct {
                const char *file, *want;
        } cases[] = {
                { "no/such/dir/x.pcap", "No such file or directory" },
                { ".", "Is a directory" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                char *out = NULL;
                int rc = test_sh(&out, 30, "cd \"$TEST_SCRATCH\" && '%s' capture -w '%s' -n 1", bin, cases[i].file);
                if (rc != 1 || !strstr(out, cases[i].want) || !strstr(out, cases[i].file) ||
                    strstr(out, "no such name"))
                        test_fail(__FILE__, __LINE__, "capture -w %s: exit %d (want 1, \"%s\"): %s", cases[i].file, rc,
                                  cases[i].want, out);
                free(out);
        }
        free(bin);
        test_daemon_stop(&d);
}

/* ping and perf take -s SIZE up to 64M (their help and ipcf(1)), and the
 * allocating side chooses the flow: a SIZE above the default largest
 * message (256 KiB) gets a flow whose messages fit, not "message too large"
 * after the flow is made; with --max-msg-size below SIZE (message mode) it
 * is a usage error naming both. */
TEST_TIMEOUT(ping_and_perf_fit_the_flow_to_their_size, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *bin = test_built("bin/ipcf");
        pid_t echo = test_sh_bg("exec '%s' listen probe.echo --echo -k </dev/null >/dev/null", bin);
        pid_t sink = test_sh_bg("exec '%s' listen probe.sink --sink -k </dev/null >/dev/null", bin);
        wait_registered("probe.echo");
        wait_registered("probe.sink");
        static const char *const good[] = {
                "ping probe.echo -c 3 -w 0 -s 300k",
                "ping probe.echo -c 2 -w 0 -s 4M",
                "perf probe.sink -t 1 -s 1M",
                "ping probe.echo -c 3 -w 0 -s 300k --max-msg-size=300k",
        };
        for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
                char *out = NULL;
                int rc = test_sh(&out, 60, "'%s' %s </dev/null", bin, good[i]);
                if (rc != 0)
                        test_fail(__FILE__, __LINE__, "ipcf %s: exit %d: %s", good[i], rc, out);
                free(out);
        }
        char *out = NULL;
        int rc = test_sh(&out, 60, "'%s' ping probe.echo -c 1 -s 300k --max-msg-size=64k </dev/null", bin);
        if (rc != 2 || !strstr(out, "--max-msg-size"))
                test_fail(__FILE__, __LINE__, "ping -s 300k --max-msg-size=64k: exit %d (want 2): %s", rc, out);
        free(out);
        kill(echo, SIGTERM);
        kill(sink, SIGTERM);
        test_wait(echo, 10000);
        test_wait(sink, 10000);
        free(bin);
        test_daemon_stop(&d);
}

/* A runtime dir whose lock another process holds while nothing serves (a
 * wedged daemon, or anything else flocking DIR/ipcfd.lock): autostart's
 * daemon sees the lock taken and leaves, and the library waits the 5 s a
 * racing daemon gets. Then the error said the started daemon "exited with
 * status 0 before serving ... another ipcfd already serves DIR": not the
 * cause. It names the process that holds the lock. */
TEST(a_lock_held_by_a_process_that_does_not_serve_is_named) {
        char *bin = test_built("bin/ipcf"), *daemon = test_built("bin/ipcfd");
        char *out = NULL;
        int rc = test_sh(&out, 30,
                         "d=\"$TEST_SCRATCH/run\"; mkdir -m 700 \"$d\" && "
                         "flock \"$d/ipcfd.lock\" sleep 20 & sleep 0.5; "
                         "IPCF_RUNTIME_DIR=\"$TEST_SCRATCH/run\" IPCF_DAEMON='%s' IPCF_NO_AUTOSTART= '%s' ls; st=$?; "
                         "kill %%1; exit $st",
                         daemon, bin);
        if (rc != 1 || !strstr(out, "holds its lock") || !strstr(out, "ipcfd.lock"))
                test_fail(__FILE__, __LINE__, "ls with the lock held by a process that does not serve: exit %d: %s",
                          rc, out);
        free(out);
        free(bin);
        free(daemon);
}

/* Every error line is "ipcf: <what>: <why>" (CLI.md); a listing's <what> is
 * the command as typed, as `ipcf ls` and `ipcf hosts` say it ("shm ls" said
 * "list", "mbox ls" and "mcast ls" said "ls"). */
TEST(a_listing_names_itself_in_its_error) {
        static const char *const cmds[] = { "ls", "hosts", "shm ls", "mbox ls", "mcast ls" };
        for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
                char *err = NULL, want[64];
                int rc = ipcf_no_daemon(&err, cmds[i]);
                snprintf(want, sizeof(want), "ipcf: %s: no daemon serves", cmds[i]);
                if (rc != 1 || strncmp(err, want, strlen(want)) != 0)
                        test_fail(__FILE__, __LINE__, "ipcf %s: exit %d, want \"%s ...\": %s", cmds[i], rc, want, err);
                free(err);
        }
}
