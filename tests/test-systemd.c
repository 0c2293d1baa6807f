/*
 * test-systemd.c — ipcfd under systemd, with systemd's own tools and no
 * systemd running: socket activation through systemd-socket-activate (the
 * first client, whose connection starts the daemon, is served on the socket
 * it connected to), handed-over sockets ipcfd cannot serve refused with a
 * message instead of a hang, the sd_notify states on a notification socket
 * of the test's (READY only once the socket accepts, RELOADING/READY on
 * SIGHUP, STOPPING), journald's priority prefixes when stderr is the
 * journal, and `systemd-analyze verify` on the installed units.
 *
 * Every daemon runs on the case's scratch directory; every wait is bounded.
 */
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/sdnotify.h"
#include "support/shell.h"
#include "support/test.h"

#ifndef TEST_SRCDIR
#error "built by the Makefile, which defines TEST_SRCDIR, TEST_CC and TEST_SANFLAGS"
#endif

/* Start argv with stdout and stderr appended to err_path; returns its pid. */
static pid_t spawn(const char *err_path, const char *const *argv) {
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int fd = open(err_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
                int in = open("/dev/null", O_RDONLY);
                if (fd < 0 || in < 0)
                        _exit(126);
                dup2(in, 0);
                dup2(fd, 1);
                dup2(fd, 2);
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        return pid;
}

/* Wait (at most 10 s) until path exists. */
static void wait_for_file(const char *path) {
        for (int i = 0; i < 1000; i++) {
                if (access(path, F_OK) == 0)
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%s did not appear within 10 s", path);
}

/* Wait (at most 10 s) until a Unix socket bound to path listens, without
 * connecting to it (a connection would start the daemon): the kernel's
 * table of Unix sockets shows the listening flag (__SO_ACCEPTCON). */
static void wait_for_listen(const char *path) {
        char *out = NULL;
        for (int i = 0; i < 1000; i++) {
                int st = test_sh(&out, 10, "awk '$4 == \"00010000\" && $NF == \"%s\"' /proc/net/unix | grep -q .",
                                 path);
                free(out);
                if (st == 0)
                        return;
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "%s did not listen within 10 s", path);
}

static char *slurp(const char *path) {
        char *out = TEST_SH_OK("cat '%s'", path);
        return out;
}

static ino_t inode_of(const char *path) {
        struct stat st;
        CHECK(stat(path, &st) == 0);
        return st.st_ino;
}

static pid_t pid_file(const char *dir) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof(p), "%s/ipcfd.pid", dir);
        wait_for_file(p);
        char *s = slurp(p);
        pid_t pid = atoi(s);
        free(s);
        return pid;
}

/* Connect a socket of the given type to path; returns it, or -errno. */
static int connect_to(const char *path, int type) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CHECK(strlen(path) < sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path));
        int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return fd;
        int r = -errno;
        close(fd);
        return r;
}

static bool connects(const char *sock) {
        int fd = connect_to(sock, SOCK_SEQPACKET);
        if (fd >= 0)
                close(fd);
        return fd >= 0;
}

/* systemd-socket-activate passes on only the variables it is told to; a
 * daemon that ignored the handed socket would fall back on the default
 * runtime dir, which a test must never touch: this points it into the
 * scratch directory instead ("IPCF_RUNTIME_DIR=<scratch>/fallback"). */
static const char *safety_env(void) {
        static char env[PATH_MAX + 32];
        snprintf(env, sizeof(env), "IPCF_RUNTIME_DIR=%s/fallback", getenv("TEST_SCRATCH"));
        return env;
}

/* The case: systemd-socket-activate listens, the first client's
 * connection starts ipcfd with the socket, and that client is served. The
 * daemon is the activator's process (exec'd in place), it kept systemd's
 * socket (same inode) and leaves it in place when it stops. */
TEST_TIMEOUT(socket_activation_serves_the_first_client, 120) {
        const char *dir = test_scratch("run"), *sock = test_scratch("run/ipcfd.sock"), *log = test_scratch("log");
        CHECK(mkdir(dir, 0700) == 0);
        int nfd = test_notify_open(test_scratch("notify"));
        char *ipcfd = test_built("bin/ipcfd"), *ex = test_built("examples"), *ipcf = test_built("bin/ipcf");
        /* systemd-socket-activate passes on only the variables it is told to. */
        const char *argv[] = { "systemd-socket-activate", "--seqpacket", "-l", sock, "-E", "NOTIFY_SOCKET",
                               "-E", safety_env(), ipcfd, "--verbose", NULL };
        pid_t act = spawn(log, argv);
        wait_for_listen(sock);
        ino_t ino = inode_of(sock);
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1); /* served by the activated daemon or not at all */
        /* The first client registers a name (its connection starts the
         * daemon); a second allocates to it and gets the echo. */
        char *out = NULL;
        int st = test_sh(&out, 60,
                         "{ '%s/echo-server' greeter & } && i=0; "
                         "until '%s' ls 2>/dev/null | grep -q greeter; do "
                         "i=$((i+1)); [ $i -lt 500 ] || exit 1; sleep 0.02; done; "
                         "'%s/echo-client' greeter 'through systemd' && wait",
                         ex, ipcf, ex);
        if (st != 0 || strcmp(out, "through systemd\n") != 0)
                test_fail(__FILE__, __LINE__, "exit %d:\n%s\nipcfd's log:\n%s", st, out, slurp(log));
        char buf[512];
        const char *ready = test_notify_next(nfd, buf, sizeof(buf));
        if (strncmp(ready, "READY=1\nSTATUS=serving ", 23) != 0 || !strstr(ready, dir))
                test_fail(__FILE__, __LINE__, "first notification: %s", ready);
        CHECK_EQ(pid_file(dir), act);
        CHECK_EQ(inode_of(sock), ino);
        char *l = slurp(log);
        CHECK(strstr(l, "socket from systemd") != NULL);
        CHECK(kill(act, SIGTERM) == 0);
        CHECK_EQ(test_wait(act, 10000), 0);
        CHECK(strcmp(test_notify_next(nfd, buf, sizeof(buf)), "STOPPING=1") == 0);
        CHECK(access(sock, F_OK) == 0);              /* systemd's, not ours to remove */
        CHECK(access(test_scratch("run/ipcfd.pid"), F_OK) != 0);
        free(ipcfd);
        free(ex);
        free(ipcf);
        free(out);
        free(l);
}

/* Start `systemd-socket-activate ARGS... ipcfd EXTRA...` (NULL-terminated
 * lists), trigger it by a connection of the given type to trigger_path: the
 * daemon it starts must refuse the socket, saying want, and exit 1 (a client
 * then fails instead of hanging on a socket nobody accepts on). */
static void expect_refused(const char *const *act_args, const char *const *extra, int type,
                           const char *trigger_path, const char *want) {
        const char *log = test_scratch("log");
        char *ipcfd = test_built("bin/ipcfd");
        const char *argv[24] = { "systemd-socket-activate", "-E", safety_env() };
        unsigned n = 3;
        for (unsigned i = 0; act_args[i]; i++)
                argv[n++] = act_args[i];
        argv[n++] = ipcfd;
        for (unsigned i = 0; extra && extra[i]; i++)
                argv[n++] = extra[i];
        argv[n] = NULL;
        pid_t act = spawn(log, argv);
        wait_for_listen(trigger_path);
        int fd = CHECK_OK(connect_to(trigger_path, type));
        int st = test_wait(act, 20000);
        close(fd);
        char *out = slurp(log);
        if (st != 1 || !strstr(out, want))
                test_fail(__FILE__, __LINE__, "exit %d, want 1 and '%s':\n%s", st, want, out);
        free(out);
        free(ipcfd);
}

TEST_TIMEOUT(handed_stream_socket_is_refused, 60) {
        const char *sock = test_scratch("ipcfd.sock");
        const char *args[] = { "-l", sock, NULL };
        expect_refused(args, NULL, SOCK_STREAM, sock, "not a listening AF_UNIX SOCK_SEQPACKET");
}

TEST_TIMEOUT(handed_socket_with_another_name_is_refused, 60) {
        const char *sock = test_scratch("other.sock");
        const char *args[] = { "--seqpacket", "-l", sock, NULL };
        expect_refused(args, NULL, SOCK_SEQPACKET, sock, "clients look for DIR/ipcfd.sock");
}

TEST_TIMEOUT(handed_socket_outside_runtime_dir_is_refused, 60) {
        const char *sock = test_scratch("ipcfd.sock"), *other = test_scratch("elsewhere");
        CHECK(mkdir(other, 0700) == 0);
        const char *args[] = { "--seqpacket", "-l", sock, NULL };
        const char *extra[] = { "--runtime-dir", other, NULL };
        expect_refused(args, extra, SOCK_SEQPACKET, sock, "but the handed-over socket is in");
}

TEST_TIMEOUT(two_handed_sockets_are_refused, 60) {
        const char *sock = test_scratch("ipcfd.sock"), *sock2 = test_scratch("second.sock");
        const char *args[] = { "--seqpacket", "-l", sock, "-l", sock2, NULL };
        expect_refused(args, NULL, SOCK_SEQPACKET, sock, "handed over 2 sockets");
}

/* With a socket of its own: READY=1 only once the socket accepts; SIGHUP
 * brings RELOADING=1 then READY=1 (also when the new file is bad); SIGTERM
 * STOPPING=1. Programs the daemon starts do not inherit NOTIFY_SOCKET. */
TEST_TIMEOUT(readiness_reload_and_stop_are_notified, 60) {
        const char *dir = test_scratch("run"), *conf = test_scratch("ipcfd.conf"), *log = test_scratch("log");
        CHECK(mkdir(dir, 0700) == 0);
        FILE *f = fopen(conf, "w");
        fprintf(f, "[name probe]\nactivate = echo \"NOTIFY_SOCKET=$NOTIFY_SOCKET.\" >'%s/child-env'\n",
                getenv("TEST_SCRATCH"));
        fclose(f);
        int nfd = test_notify_open(test_scratch("notify"));
        char *ipcfd = test_built("bin/ipcfd");
        const char *argv[] = { ipcfd, "--runtime-dir", dir, "--config", conf, NULL };
        pid_t pid = spawn(log, argv);
        char buf[512], sock[PATH_MAX + 16];
        snprintf(sock, sizeof(sock), "%s/ipcfd.sock", dir);
        const char *ready = test_notify_next(nfd, buf, sizeof(buf));
        CHECK(strncmp(ready, "READY=1\n", 8) == 0);
        CHECK(strstr(ready, "(private)") != NULL);
        CHECK(connects(sock)); /* at once: ready means accepting */

        /* An activated program's environment has no NOTIFY_SOCKET. */
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        ipcf_qos q;
        ipcf_qos_init(&q);
        int r = ipcf_alloc("probe", &q, 3000, NULL); /* the probe never registers */
        CHECK(r == -ETIMEDOUT || r == -ENOEXEC);
        char *env = slurp(test_scratch("child-env"));
        CHECK(strcmp(env, "NOTIFY_SOCKET=.\n") == 0);

        CHECK(kill(pid, SIGHUP) == 0);
        CHECK(strcmp(test_notify_next(nfd, buf, sizeof(buf)), "RELOADING=1") == 0);
        CHECK(strncmp(test_notify_next(nfd, buf, sizeof(buf)), "READY=1\n", 8) == 0);
        f = fopen(conf, "w");
        fputs("[bogus]\n", f);
        fclose(f);
        CHECK(kill(pid, SIGHUP) == 0);
        CHECK(strcmp(test_notify_next(nfd, buf, sizeof(buf)), "RELOADING=1") == 0);
        CHECK(strncmp(test_notify_next(nfd, buf, sizeof(buf)), "READY=1\n", 8) == 0);
        CHECK(kill(pid, SIGTERM) == 0);
        CHECK(strcmp(test_notify_next(nfd, buf, sizeof(buf)), "STOPPING=1") == 0);
        CHECK_EQ(test_wait(pid, 10000), 0);
        free(ipcfd);
        free(env);
}

/* Run ipcfd --verbose with stderr to a file, JOURNAL_STREAM set to that
 * file's DEV:INO (or a wrong one); make it log at each priority — a debug
 * line (a client), an error (a reload of a config made bad), info (serving,
 * the SIGUSR1 summary, exiting) — and return what it wrote. */
static char *log_of_daemon(bool journal) {
        const char *dir = test_scratch("run"), *log = test_scratch("log"), *conf = test_scratch("conf");
        CHECK(mkdir(dir, 0700) == 0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        struct stat st;
        CHECK(fd >= 0 && fstat(fd, &st) == 0);
        close(fd);
        free(TEST_SH_OK("printf '[limits]\\n' > '%s'", conf));
        char js[64];
        snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (journal ? 0 : 1));
        setenv("JOURNAL_STREAM", js, 1);
        char *ipcfd = test_built("bin/ipcfd");
        const char *argv[] = { ipcfd, "--runtime-dir", dir, "--config", conf, "--verbose", NULL };
        pid_t pid = spawn(log, argv);
        unsetenv("JOURNAL_STREAM");
        pid_file(dir);
        char *ipcf = test_built("bin/ipcf");
        free(TEST_SH_OK("IPCF_RUNTIME_DIR='%s' IPCF_NO_AUTOSTART=1 '%s' ls > /dev/null", dir, ipcf));
        free(ipcf);
        free(TEST_SH_OK("printf 'no such key = 1\\n' > '%s'", conf));
        CHECK(kill(pid, SIGHUP) == 0);
        char *out = NULL;
        for (int i = 0; i < 1000; i++) {
                free(out);
                out = slurp(log);
                if (strstr(out, "reload of "))
                        break;
                usleep(10000);
        }
        CHECK(kill(pid, SIGUSR1) == 0);
        for (int i = 0; i < 1000; i++) {
                free(out);
                out = slurp(log);
                if (strstr(out, "state: "))
                        break;
                usleep(10000);
        }
        CHECK(kill(pid, SIGTERM) == 0);
        CHECK_EQ(test_wait(pid, 10000), 0);
        free(out);
        out = slurp(log);
        free(ipcfd);
        return out;
}

TEST_TIMEOUT(journal_gets_priority_prefixes, 60) {
        char *out = log_of_daemon(true);
        if (!strstr(out, "<6>serving ") || !strstr(out, "<6>state: ") || !strstr(out, "<6>signal 15: exiting") ||
            !strstr(out, "<3>reload of ") || !strstr(out, "<7>client ") || strstr(out, "<7>serving ") ||
            strstr(out, "ipcfd["))
                test_fail(__FILE__, __LINE__, "log:\n%s", out);
        free(out);
}

TEST_TIMEOUT(other_stderr_gets_plain_lines, 60) {
        char *out = log_of_daemon(false);
        if (!strstr(out, "]: serving ") || !strstr(out, "]: state: ") || !strstr(out, "]: reload of ") ||
            strstr(out, "<3>") || strstr(out, "<6>") || strstr(out, "<7>"))
                test_fail(__FILE__, __LINE__, "log:\n%s", out);
        free(out);
}

/* The installed units, as systemd reads them: `systemd-analyze verify`
 * (system and user managers; no systemd needs to run) prints nothing. The
 * tree is installed with its real PREFIX (no DESTDIR) so that ExecStart
 * names a program that exists. */
TEST_TIMEOUT(installed_units_pass_systemd_analyze_verify, 300) {
        const char *prefix = test_scratch("prefix"), *xdg = test_scratch("xdg");
        free(TEST_MAKE("install PREFIX='%s' >/dev/null", prefix));
        CHECK(mkdir(xdg, 0700) == 0);
        char *out = TEST_SH_OK("cd '%s/lib/systemd/system' && systemd-analyze verify --man=no "
                               "./ipcfd.socket ./ipcfd.service 2>&1",
                               prefix);
        if (out[0])
                test_fail(__FILE__, __LINE__, "system units:\n%s", out);
        free(out);
        out = TEST_SH_OK("cd '%s/lib/systemd/user' && XDG_RUNTIME_DIR='%s' systemd-analyze --user verify "
                         "--man=no ./ipcfd.socket ./ipcfd.service 2>&1",
                         prefix, xdg);
        if (out[0])
                test_fail(__FILE__, __LINE__, "user units:\n%s", out);
        free(out);
        /* The check bites: a unit systemd cannot parse is reported. */
        out = NULL;
        int st = test_sh(&out, 60, "cd '%s/lib/systemd/system' && sed -i 's/^Type=notify/Type=notfy/' "
                         "ipcfd.service && systemd-analyze verify --man=no ./ipcfd.socket ./ipcfd.service 2>&1",
                         prefix);
        CHECK(st != 0 || strstr(out, "notfy") != NULL);
        free(out);
}
