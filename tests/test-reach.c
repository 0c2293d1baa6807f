/*
 * test-reach.c — why the daemon cannot be reached, one error per cause
 * (issue 13): each cause made for real — a fresh runtime dir with autostart
 * off, IPCF_DAEMON pointing nowhere, an `ipcf` with no ipcfd beside it nor in
 * PATH, a runtime dir chown'd to another uid, one of mode 0777, a file in its
 * place, a real ipcfd that exits at start (a broken config), a --shared
 * daemon capped at one connection per user — and for each: the library's
 * errno (ipcf_connect, in a child process with that environment), how long
 * it took (never the 5 s start timeout: each cause is found before any wait),
 * ipcf_error_cause's text, and the CLI's one error line and exit status.
 * Also: processes autostarting at once on one dir all get the one daemon
 * (the losers' daemons exit, and that is not taken for a failure); and a
 * quota or policy error that is not the connection's is not blamed on it.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ctl.h"
#include "ipcf.h"
#include "support/rawctl.h"
#include "support/shell.h"
#include "support/test.h"

/* What one process found trying to reach the facility of a runtime dir. */
typedef struct reach {
        int err;          /* ipcf_connect() */
        unsigned ms;      /* how long that took */
        char cause[480];  /* ipcf_error_cause(err) */
} reach;

typedef struct reach_args {
        const char *dir;
        const char *env;  /* "NAME=VALUE NAME2=VALUE2", or NULL */
        int fd;           /* where the child writes its reach */
} reach_args;

static void reach_child(void *arg) {
        reach_args *a = arg;
        setenv("IPCF_RUNTIME_DIR", a->dir, 1);
        unsetenv("IPCF_NO_AUTOSTART");
        unsetenv("IPCF_DAEMON");
        char env[512];
        snprintf(env, sizeof(env), "%s", a->env ? a->env : "");
        for (char *save = NULL, *kv = strtok_r(env, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
                char *eq = strchr(kv, '=');
                *eq = 0;
                setenv(kv, eq + 1, 1);
        }
        reach r = { 0 };
        uint64_t t0 = test_now_ms();
        r.err = ipcf_connect();
        r.ms = (unsigned)(test_now_ms() - t0);
        ipcf_error_cause(r.err, r.cause, sizeof(r.cause));
        _exit(write(a->fd, &r, sizeof(r)) == sizeof(r) ? 0 : 1);
}

/* ipcf_connect() in a new process with IPCF_RUNTIME_DIR=dir and env. */
static reach reach_from(const char *dir, const char *env) {
        int p[2];
        CHECK_OK(pipe(p));
        reach_args a = { dir, env, p[1] };
        pid_t pid = test_fork(reach_child, &a);
        close(p[1]);
        CHECK_EQ(test_wait(pid, 20000), 0);
        reach r;
        CHECK_EQ(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
        close(p[0]);
        return r;
}

/* `ipcf ls` with IPCF_RUNTIME_DIR=dir and env (shell words): its exit
 * status, and its output in *ret_out. */
static int cli_from(const char *ipcf, const char *dir, const char *env, char **ret_out) {
        return test_sh(ret_out, 30, "unset IPCF_NO_AUTOSTART IPCF_DAEMON; IPCF_RUNTIME_DIR='%s' %s '%s' ls",
                       dir, env ? env : "", ipcf);
}

/* The library's errno and text, promptly; the CLI's line and status. */
static void check_cause(const char *dir, const char *env, int want_err, const char *want_cause) {
        reach r = reach_from(dir, env);
        if (r.err != want_err || strcmp(r.cause, want_cause) != 0)
                test_fail(__FILE__, __LINE__, "%s: got %d '%s', want %d '%s'", dir, r.err, r.cause, want_err,
                          want_cause);
        CHECK(r.ms < 4000); /* found, not waited out (the start timeout is 5 s) */
        char *ipcf = test_built("bin/ipcf"), *out = NULL, want[600];
        CHECK_EQ(cli_from(ipcf, dir, env, &out), 1);
        snprintf(want, sizeof(want), "ipcf: ls: %s\n", want_cause);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "ipcf ls printed '%s', want '%s'", out, want);
        free(out);
        free(ipcf);
}

/* A fresh directory in the case's scratch (mode 0700, ours). */
static const char *fresh_dir(const char *name) {
        const char *d = test_scratch(name);
        CHECK_OK(mkdir(d, 0700));
        return d;
}

TEST(no_daemon_and_autostart_off) {
        const char *d = fresh_dir("run");
        char want[800];
        snprintf(want, sizeof(want), "no daemon serves %s, and autostart is off (IPCF_NO_AUTOSTART=1)", d);
        check_cause(d, "IPCF_NO_AUTOSTART=1", -EHOSTDOWN, want);
        CHECK(strcmp(ipcf_strerror(-EHOSTDOWN), "IPC facility (ipcfd) not running") == 0);
}

/* Something accepts connections on the socket but closes each at once (a
 * daemon that drops us): the cause says so, not "no daemon". */
/* A child that takes every connection and closes it at once (a process,
 * not a thread: the case forks afterwards, see test_fork). */
static void drop_every_connection(void *arg) {
        int l = *(int *)arg, c;
        while ((c = accept(l, NULL, NULL)) >= 0)
                close(c);
}

TEST(daemon_that_drops_the_connection) {
        const char *d = fresh_dir("run");
        int l = CHECK_OK(socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", d, CTL_SOCKET_NAME);
        CHECK_OK(bind(l, (struct sockaddr *)&sa, sizeof(sa)));
        CHECK_OK(listen(l, 16));
        pid_t dropper = test_fork(drop_every_connection, &l);
        close(l);
        char want[600];
        snprintf(want, sizeof(want), "the daemon for %s closed the connection", d);
        check_cause(d, "IPCF_NO_AUTOSTART=1", -EHOSTDOWN, want);
        kill(dropper, SIGKILL);
        test_wait(dropper, 5000);
}

TEST(daemon_program_not_found) {
        const char *d = fresh_dir("run");
        check_cause(d, "IPCF_DAEMON=/nowhere/ipcfd", -ENOPKG,
                    "the daemon program was not found at /nowhere/ipcfd (IPCF_DAEMON)");
        /* Not executable is not found either. */
        const char *plain = test_scratch("ipcfd-plain");
        int fd = CHECK_OK(open(plain, O_CREAT | O_WRONLY, 0644));
        CHECK_OK(close(fd));
        char env[400], want[400];
        snprintf(env, sizeof(env), "IPCF_DAEMON=%s", plain);
        snprintf(want, sizeof(want), "the daemon program was not found at %s (IPCF_DAEMON)", plain);
        check_cause(d, env, -ENOPKG, want);
        CHECK(strcmp(ipcf_strerror(-ENOPKG), "the daemon program (ipcfd) was not found") == 0);

        /* No IPCF_DAEMON: an ipcf with no ipcfd beside it, and none in PATH. */
        char *ipcf = test_built("bin/ipcf"), *out = NULL;
        const char *bin = test_scratch("bin");
        free(TEST_SH_OK("mkdir '%s' && cp '%s' '%s/ipcf'", bin, ipcf, bin));
        CHECK_EQ(test_sh(&out, 30, "unset IPCF_NO_AUTOSTART IPCF_DAEMON; IPCF_RUNTIME_DIR='%s' PATH=/nonexistent "
                                   "'%s/ipcf' ls", d, bin),
                 1);
        snprintf(want, sizeof(want), "ipcf: ls: the daemon program was not found at %s/ipcfd nor as ipcfd in PATH\n",
                 bin);
        if (strcmp(out, want) != 0)
                test_fail(__FILE__, __LINE__, "printed '%s', want '%s'", out, want);
        free(out);
        free(ipcf);
}

TEST(runtime_dir_not_ours) {
        char want[800];
        if (geteuid() == 0) {
                const char *d = fresh_dir("theirs");
                CHECK_OK(chown(d, 65534, 65534));
                snprintf(want, sizeof(want), "runtime dir %s is owned by uid 65534", d);
                check_cause(d, NULL, -EACCES, want);
                CHECK(access(test_scratch("theirs/ipcfd.log"), F_OK) < 0); /* nothing started */
        } else {
                printf("  (not root: the chown'd dir is skipped)\n");
        }
        const char *open_dir = fresh_dir("open");
        CHECK_OK(chmod(open_dir, 0777));
        snprintf(want, sizeof(want), "runtime dir %s has mode 0777: others may write to it", open_dir);
        check_cause(open_dir, NULL, -EACCES, want);

        const char *file = test_scratch("file");
        int fd = CHECK_OK(open(file, O_CREAT | O_WRONLY, 0600));
        CHECK_OK(close(fd));
        snprintf(want, sizeof(want), "runtime dir %s is not a directory", file);
        check_cause(file, NULL, -EACCES, want);

        /* One that cannot be made: its parent is missing, or a file. */
        char dir[400];
        snprintf(dir, sizeof(dir), "%s/run", file);
        snprintf(want, sizeof(want), "no daemon serves %s, and the runtime dir cannot be made: Not a directory", dir);
        check_cause(dir, NULL, -EHOSTDOWN, want);
        snprintf(dir, sizeof(dir), "%s/run", test_scratch("missing"));
        snprintf(want, sizeof(want), "no daemon serves %s, and the runtime dir cannot be made: No such file or directory",
                 dir);
        check_cause(dir, NULL, -EHOSTDOWN, want);
}

/* A real ipcfd that cannot start (its lock file is a directory): the caller
 * learns it at once, with how it exited and the daemon's last word. */
TEST(daemon_exits_at_start) {
        const char *d = fresh_dir("run");
        CHECK_OK(mkdir(test_scratch("run/ipcfd.lock"), 0700));
        char *ipcfd = test_built("bin/ipcfd"), env[600], *out = NULL;
        snprintf(env, sizeof(env), "IPCF_DAEMON=%s", ipcfd);
        reach r = reach_from(d, env);
        CHECK_EQ(r.err, -EHOSTDOWN);
        CHECK(r.ms < 4000); /* at once, not the start timeout (5 s) */
        /* The log: the start's line, the daemon's error, how it exited. */
        char *log = TEST_SH_OK("tail -n 3 '%s/ipcfd.log'", d), want[1200], line[600];
        int pid = 0;
        char *start = strstr(log, "ipcf: starting "), *err = start ? strchr(start, '\n') : NULL;
        CHECK(start == log && err && sscanf(strrchr(start, '(') ? strrchr(start, '(') : "", "(pid %d)", &pid) == 1);
        snprintf(want, sizeof(want), "ipcf: starting %s for %s (pid %d)\n", ipcfd, d, pid);
        CHECK(strncmp(log, want, strlen(want)) == 0);
        snprintf(line, sizeof(line), "%.*s", (int)strcspn(err + 1, "\n"), err + 1);
        CHECK(strstr(line, "ipcfd.lock") != NULL); /* the daemon's own error */
        snprintf(want, sizeof(want), "ipcf: pid %d exited with status 1\n", pid);
        CHECK(strstr(log, want) != NULL);
        snprintf(want, sizeof(want), "the daemon for %s (%s) exited with status 1 before serving; its log (%s/ipcfd.log) ends: %s",
                 d, ipcfd, d, line);
        if (strcmp(r.cause, want) != 0)
                test_fail(__FILE__, __LINE__, "cause '%s', want '%s'", r.cause, want);
        char *ipcf = test_built("bin/ipcf");
        CHECK_EQ(cli_from(ipcf, d, env, &out), 1);
        CHECK(strstr(out, "exited with status 1 before serving; its log") != NULL);
        free(out);
        free(log);
        free(ipcf);
        free(ipcfd);
}

/* A daemon program that exits, or is killed, before serving and without a
 * word of its own (IPCF_DAEMON=/bin/false): the cause says how it ended,
 * at once — not the generic "not running". */
TEST(daemon_program_ends_without_a_word) {
        const char *d = fresh_dir("run");
        char want[800];
        snprintf(want, sizeof(want),
                 "the daemon for %s (/bin/false) exited with status 1 before serving, and wrote nothing to its log (%s/ipcfd.log)",
                 d, d);
        check_cause(d, "IPCF_DAEMON=/bin/false", -EHOSTDOWN, want);

        /* One that says something, then dies of a signal. */
        const char *prog = test_scratch("dies");
        free(TEST_SH_OK("printf '#!/bin/sh\\necho no luck today\\nkill -9 $$\\n' > '%s' && chmod 755 '%s'", prog, prog));
        char env[600];
        snprintf(env, sizeof(env), "IPCF_DAEMON=%s", prog);
        snprintf(want, sizeof(want),
                 "the daemon for %s (%s) was killed by signal 9 before serving; its log (%s/ipcfd.log) ends: no luck today",
                 d, prog, d);
        check_cause(d, env, -EHOSTDOWN, want);
}

/* A daemon program that runs but never serves: after the start timeout
 * (5 s) the cause says so, with what it wrote. */
TEST_TIMEOUT(daemon_program_never_serves, 60) {
        const char *d = fresh_dir("run");
        const char *prog = test_scratch("sleeper");
        free(TEST_SH_OK("printf '#!/bin/sh\\necho thinking\\nexec sleep 30\\n' > '%s' && chmod 755 '%s'", prog, prog));
        char env[600], want[800];
        snprintf(env, sizeof(env), "IPCF_DAEMON=%s", prog);
        reach r = reach_from(d, env);
        CHECK_EQ(r.err, -EHOSTDOWN);
        CHECK(r.ms >= 4000); /* it was waited for: it still runs */
        snprintf(want, sizeof(want), "the daemon for %s (%s) did not serve within 5 s; its log (%s/ipcfd.log) ends: thinking",
                 d, prog, d);
        if (strcmp(r.cause, want) != 0)
                test_fail(__FILE__, __LINE__, "cause '%s', want '%s'", r.cause, want);
        free(TEST_SH_OK("kill $(sed -n 's/^ipcf: starting .*(pid \\([0-9]*\\))$/\\1/p' '%s/ipcfd.log')", d));
}

/* Eight processes autostart on one fresh dir at once: one daemon wins the
 * lock, the others' daemons exit at once, and every process is served by
 * the winner. */
TEST(racing_autostarts_all_get_the_one_daemon) {
        const char *d = fresh_dir("run");
        char *ipcf = test_built("bin/ipcf"), *ipcfd = test_built("bin/ipcfd");
        char *out = TEST_SH_OK("unset IPCF_NO_AUTOSTART; export IPCF_RUNTIME_DIR='%s' IPCF_DAEMON='%s'; "
                               "pids=; for i in 1 2 3 4 5 6 7 8; do '%s' ls > /dev/null & pids=\"$pids $!\"; done; fails=0; "
                               "for p in $pids; do wait $p || fails=$((fails+1)); done; echo $fails",
                               d, ipcfd, ipcf);
        CHECK(strcmp(out, "0\n") == 0);
        free(out);
        /* Stop the winner (its pid from the daemon itself: the pid file may
         * not be written yet) and wait until it is gone — once the losers'
         * daemons, which may still be starting, have all exited: one started
         * after the winner's end would take the lock and stay. */
        out = TEST_SH_OK("for i in $(seq 500); do [ $(pgrep -fc -- '--runtime-dir %s$') -le 1 ] && break; sleep 0.01; done; "
                         "p=$(IPCF_RUNTIME_DIR='%s' IPCF_NO_AUTOSTART=1 '%s' ls --json | "
                         "sed -n 's/.*\"daemon_pid\":\\([0-9]*\\).*/\\1/p'); [ -n \"$p\" ] && kill $p && "
                         "for i in $(seq 500); do kill -0 $p 2>/dev/null || break; sleep 0.01; done; "
                         "! kill -0 $p 2>/dev/null && { grep -c 'another ipcfd already serves' '%s/ipcfd.log' || true; }",
                         d, d, ipcf, d);
        printf("  %d of the daemons started lost the race\n", atoi(out));
        free(out);
        free(ipcf);
        free(ipcfd);
}

/* A --shared daemon capped at one connection per user: a user holding it
 * is refused a second, with the cause (the user's own cap), at once. */
static void capped_child(void *arg) {
        (void)arg;
        if (setgid(71001) < 0 || setuid(71001) < 0)
                _exit(10);
        int fd = dconnect(); /* the user's one connection... */
        ctl_builder b;
        ctl_begin(&b, CTL_HELLO, 1);
        if (fd < 0 || ctl_end(&b) < 0 || ctl_send(fd, &b, NULL, 0) < 0)
                _exit(11);
        rmsg m;
        if (recv_msg(fd, &m, 10000) != 1 || m.m.type != CTL_OK)
                _exit(12);
        reach r = { 0 };
        uint64_t t0 = test_now_ms();
        r.err = ipcf_connect(); /* ...so this second one is refused */
        r.ms = (unsigned)(test_now_ms() - t0);
        ipcf_error_cause(r.err, r.cause, sizeof(r.cause));
        if (r.err != -EDQUOT)
                _exit(13);
        if (strcmp(r.cause, "refused by quota: the daemon admits no more connections of this user "
                            "(clients_per_user)") != 0)
                _exit(14);
        if (r.ms > 1500)
                _exit(15);
        /* The CLI, as this user, while the connection is held. */
        char *ipcf = test_built("bin/ipcf"), *out = NULL;
        int st = test_sh(&out, 30, "'%s' ls", ipcf);
        if (st != 1 || strcmp(out, "ipcf: ls: refused by quota: the daemon admits no more connections of this "
                                   "user (clients_per_user)\n") != 0) {
                fprintf(stderr, "ipcf ls: %d '%s'\n", st, out);
                _exit(16);
        }
        _exit(0);
}

TEST(capped_daemon_refuses_by_quota) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to run a client as another user\n");
                return;
        }
        test_daemon d;
        static const char *const shared[] = { "--shared", NULL };
        test_daemon_start(&d, "[limits]\nclients_per_user = 1\n", shared);
        CHECK_EQ(test_wait(test_fork(capped_child, NULL), 30000), 0);
        /* The daemon still serves others, and a quota error elsewhere is not
         * blamed on the connection cap. */
        CHECK_OK(ipcf_connect());
        char buf[200];
        CHECK(ipcf_error_cause(-EDQUOT, buf, sizeof(buf)) > 0);
        CHECK(strcmp(buf, "over quota") == 0);
        CHECK_EQ(ipcf_error_cause(-EDQUOT, NULL, 10), -EINVAL);
        /* Nor is a policy's refusal blamed on the runtime dir (it is root's,
         * but a daemon serves there). */
        CHECK(ipcf_error_cause(-EACCES, buf, sizeof(buf)) > 0);
        CHECK(strcmp(buf, "access denied by the facility's policy") == 0);
        test_daemon_stop(&d);
}
