/*
 * test-cli-monitor.c — `ipcf monitor` against the real daemon, with real
 * processes doing the work: `ipcf listen`, `ipcf cat` (accepted, refused,
 * to no name), and, as root, processes of other uids to check who sees
 * what (the policy of src/daemon/monitor/monitor.c).
 *
 * A monitor runs as its own process writing JSON lines to a file; each case
 * first waits until the monitor is subscribed (it sees a probe name come
 * up), then acts, then waits (bounded) for the last event it expects, then
 * parses every line with python3 and checks the events in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/shell.h"
#include "support/test.h"

/* `ipcf monitor --json ARGS` as a process (after becoming uid if not 0),
 * stdout to out. */
static pid_t monitor_start(const char *out, uid_t uid, const char *args) {
        char *bin = test_built("bin/ipcf");
        fflush(NULL);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                /* The file first: the scratch directory is root's. */
                int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
                if (fd < 0)
                        _exit(126);
                if (uid && (setgroups(0, NULL) < 0 || setgid(uid) < 0 || setuid(uid) < 0))
                        _exit(125);
                dup2(fd, 1);
                char cmd[1024];
                snprintf(cmd, sizeof(cmd), "exec '%s' monitor --json %s", bin, args);
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        free(bin);
        return pid;
}

/* Wait (at most 10 s) until file has a line matching want (grep -E). */
static void wait_for_line(const char *file, const char *want) {
        for (int i = 0; i < 1000; i++) {
                char *out = NULL;
                if (test_sh(&out, 10, "grep -E -- '%s' '%s'", want, file) == 0) {
                        free(out);
                        return;
                }
                free(out);
                usleep(10000);
        }
        char *all = NULL;
        test_sh(&all, 10, "cat '%s'", file);
        test_fail(__FILE__, __LINE__, "no line with %s in the monitor's output:\n%s", want, all);
}

/* Subscribed: a probe name registered now is seen coming up. */
static void wait_subscribed(const char *file, const char *probe) {
        for (int i = 0; i < 100; i++) {
                int reg = CHECK_OK(ipcf_register(probe, NULL));
                char *out = NULL;
                usleep(50000);
                int st = test_sh(&out, 10, "grep -q '\"name\":\"%s\"' '%s'", probe, file);
                free(out);
                CHECK_OK(ipcf_dealloc(reg, NULL));
                if (st == 0)
                        return;
        }
        test_fail(__FILE__, __LINE__, "the monitor never saw the probe");
}

static void monitor_stop(pid_t pid) {
        kill(pid, SIGTERM);
        test_wait(pid, 10000);
}

/* The events of the file (probe and other names left out) as lines
 * "event name a=PROGRAM b=PROGRAM errno reason" — python3 parses each line
 * as JSON, so a malformed one fails the case. */
static char *events_of(const char *file, const char *name_prefix) {
        return TEST_SH_OK("python3 -c '\n"
                          "import json,sys\n"
                          "for line in open(sys.argv[1]):\n"
                          "    e = json.loads(line)\n"
                          "    if not e[\"name\"].startswith(sys.argv[2]): continue\n"
                          "    print(e[\"event\"], e[\"name\"], \"a=\"+e[\"program_a\"], \"b=\"+e[\"program_b\"],"
                          " e[\"errno\"], e[\"end_side\"], e[\"reason\"])' '%s' '%s'",
                          file, name_prefix);
}

TEST_TIMEOUT(monitor_shows_allocations_outcomes_ends_and_names, 90) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *out = test_scratch("monitor.json");
        pid_t mon = monitor_start(out, 0, "");
        wait_subscribed(out, "mon.probe");
        /* A stream-only listener refuses a message-mode cat, serves a stream
         * one; a cat to no name fails; the listener's death takes the name. */
        char *log = TEST_SH_OK("b='%s/bin/ipcf'; \"$b\" listen svc.mon --stream -k </dev/null >/dev/null & L=$!; "
                               "\"$b\" watch -n 1 svc.mon >/dev/null; "
                               "echo x | \"$b\" cat svc.mon 2>&1; "
                               "echo hello | \"$b\" cat svc.mon --stream; "
                               "\"$b\" cat svc.none </dev/null 2>&1; "
                               "kill $L; wait $L; true",
                               test_build_abs());
        CHECK(strstr(log, "stream mode required") && strstr(log, "no such name"));
        free(log);
        wait_for_line(out, "\"event\":\"down\".*\"name\":\"svc.mon\"");
        monitor_stop(mon);
        char *ev = events_of(out, "svc.");
        /* In order; "dealloc" twice (each side's end), the allocator's with
         * cat's reason "eof". */
        const char *want[] = {
                "up svc.mon a=- b=ipcf 0  \n",
                "alloc svc.mon a=ipcf b=ipcf 0  \n",
                "refuse svc.mon a=ipcf b=ipcf 111  stream mode required\n",
                "alloc svc.mon a=ipcf b=ipcf 0  \n",
                "accept svc.mon a=ipcf b=ipcf 0  \n",
                "alloc svc.none a=ipcf b=- 0  \n",
                "fail svc.none a=ipcf b=- 2  \n",
                "down svc.mon a=- b=- 0  \n",
        };
        const char *p = ev;
        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                const char *hit = strstr(p, want[i]);
                if (!hit)
                        test_fail(__FILE__, __LINE__, "missing or out of order: %s--- events:\n%s", want[i], ev);
                p = hit + strlen(want[i]);
        }
        CHECK(strstr(ev, "dealloc svc.mon a=ipcf b=ipcf 0 a eof\n") != NULL);
        CHECK(strstr(ev, "dealloc svc.mon a=ipcf b=ipcf 0 b \n") != NULL);
        free(ev);
        test_daemon_stop(&d);
}

/* NAME... filters; -n stops; the text form has one line per event. Names
 * drop.N and keep.N come up in turns until the monitor, subscribed at some
 * point, has shown one event and exited: it must be a keep.N. */
TEST_TIMEOUT(monitor_filters_by_name_and_counts, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        const char *out = test_scratch("monitor.txt");
        char *bin = test_built("bin/ipcf");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "exec '%s' monitor -n 1 'keep.*' > '%s'", bin, out);
        fflush(NULL);
        pid_t mon = fork();
        CHECK(mon >= 0);
        if (mon == 0) {
                execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
                _exit(127);
        }
        int st = -1;
        for (int i = 0; i < 200 && st < 0; i++) {
                char name[32];
                snprintf(name, sizeof(name), "drop.%d", i);
                CHECK_OK(ipcf_register(name, NULL));
                snprintf(name, sizeof(name), "keep.%d", i);
                CHECK_OK(ipcf_register(name, NULL));
                usleep(50000);
                int ws;
                if (waitpid(mon, &ws, WNOHANG) == mon)
                        st = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128;
        }
        CHECK_EQ(st, 0);
        char *text = TEST_SH_OK("cut -d' ' -f2- '%s'", out);
        if (strncmp(text, "up      keep.", 13) != 0 || strchr(text, '\n') != text + strlen(text) - 1)
                test_fail(__FILE__, __LINE__, "want one line 'up keep.N', got:\n%s", text);
        free(text);
        free(bin);
        test_daemon_stop(&d);
}

/* ---- who sees what (root only: processes of other uids) ---------------- */

#define ALICE 65534u
#define BOB 65533u

static const char open_conf[] = "[name open.*]\nallocate = *\nregister = *\n";

struct actor {
        uid_t uid;
        const char *name;
        int go[2], done[2];
};

/* Register name as uid, say so, accept one flow, wait to be let go. */
static void serve_one(void *arg) {
        struct actor *a = arg;
        if (setgroups(0, NULL) < 0 || setgid(a->uid) < 0 || setuid(a->uid) < 0)
                _exit(125);
        int reg = CHECK_OK(ipcf_register(a->name, NULL));
        char c = 1;
        CHECK_EQ(write(a->done[1], &c, 1), 1);
        int port = CHECK_OK(ipcf_accept(reg, 10000, NULL));
        CHECK_EQ(read(a->go[0], &c, 1), 1);
        CHECK_OK(ipcf_dealloc(port, "served"));
        CHECK_OK(ipcf_dealloc(reg, NULL));
}

static pid_t actor_start(struct actor *a) {
        CHECK(pipe(a->go) == 0 && pipe(a->done) == 0);
        pid_t pid = test_fork(serve_one, a);
        char c;
        CHECK_EQ(read(a->done[0], &c, 1), 1);
        return pid;
}

TEST_TIMEOUT(a_user_sees_its_own_flows_and_root_sees_all, 90) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, open_conf, shared);
        const char *root_out = test_scratch("root.json"), *alice_out = test_scratch("alice.json");
        pid_t m_root = monitor_start(root_out, 0, "");
        pid_t m_alice = monitor_start(alice_out, ALICE, "");
        wait_subscribed(root_out, "open.probe");
        wait_subscribed(alice_out, "open.probe");
        struct actor alice = { .uid = ALICE, .name = "open.alice" }, bob = { .uid = BOB, .name = "open.bob" };
        pid_t pa = actor_start(&alice), pb = actor_start(&bob);
        /* Root allocates to both; each server accepts and ends its flow. */
        int fa = CHECK_OK(ipcf_alloc("open.alice", NULL, 10000, NULL));
        int fb = CHECK_OK(ipcf_alloc("open.bob", NULL, 10000, NULL));
        char c = 1;
        CHECK_EQ(write(alice.go[1], &c, 1), 1);
        CHECK_EQ(write(bob.go[1], &c, 1), 1);
        CHECK_EQ(test_wait(pa, 10000), 0);
        CHECK_EQ(test_wait(pb, 10000), 0);
        CHECK_OK(ipcf_dealloc(fa, NULL));
        CHECK_OK(ipcf_dealloc(fb, NULL));
        wait_for_line(root_out, "\"event\":\"down\".*\"name\":\"open.bob\"");
        wait_for_line(alice_out, "\"event\":\"down\".*\"name\":\"open.bob\"");
        usleep(300000); /* anything Alice must not see would be there by now */
        monitor_stop(m_root);
        monitor_stop(m_alice);
        /* Root: every flow, every pid. */
        char *root_ev = events_of(root_out, "open.");
        CHECK(strstr(root_ev, "accept open.alice a=test-cli-monito b=test-cli-monito 0  \n") != NULL);
        CHECK(strstr(root_ev, "accept open.bob a=test-cli-monito b=test-cli-monito 0  \n") != NULL);
        CHECK(strstr(root_ev, "dealloc open.bob a=test-cli-monito b=test-cli-monito 0 b served\n") != NULL);
        /* Alice: her flow, root's side hidden; Bob's name comes and goes
         * (the policy lets her allocate open.*) but his pid and flow do not. */
        char *alice_ev = events_of(alice_out, "open.");
        CHECK(strstr(alice_ev, "accept open.alice a=- b=test-cli-monito 0  \n") != NULL);
        CHECK(strstr(alice_ev, "dealloc open.alice a=- b=test-cli-monito 0 b served\n") != NULL);
        CHECK(strstr(alice_ev, "up open.bob a=- b=- 0  \n") != NULL);
        if (strstr(alice_ev, "alloc open.bob") || strstr(alice_ev, "accept open.bob") ||
            strstr(alice_ev, "dealloc open.bob"))
                test_fail(__FILE__, __LINE__, "Alice saw Bob's flow:\n%s", alice_ev);
        free(root_ev);
        free(alice_ev);
        test_daemon_stop(&d);
}

/* The library's side: bad arguments, the per-process bound (a closed
 * monitor frees its place), the daemon's end. */
TEST_TIMEOUT(monitor_api_bounds_and_the_daemons_end, 60) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        CHECK_ERR(ipcf_monitor_open(2), -EINVAL);
        ipcf_monitor_event ev;
        CHECK_ERR(ipcf_monitor_next(-1, 0, &ev), -EINVAL);
        int fd[4];
        for (int i = 0; i < 4; i++)
                fd[i] = CHECK_OK(ipcf_monitor_open(0));
        CHECK_ERR(ipcf_monitor_open(0), -EDQUOT);
        close(fd[0]);
        fd[0] = CHECK_OK(ipcf_monitor_open(0));
        CHECK_ERR(ipcf_monitor_next(fd[1], 0, &ev), -EAGAIN);
        CHECK_OK(ipcf_register("mon.api", NULL));
        CHECK_OK(ipcf_monitor_next(fd[1], 5000, &ev));
        CHECK_EQ(ev.kind, IPCF_MONITOR_NAME_UP);
        CHECK(strcmp(ev.name, "mon.api") == 0 && ev.pid_b == getpid());
        test_daemon_stop(&d);
        /* fd[2] has the same "up" first, then the end. */
        CHECK_OK(ipcf_monitor_next(fd[2], 5000, &ev));
        CHECK_EQ(ev.kind, IPCF_MONITOR_NAME_UP);
        CHECK_ERR(ipcf_monitor_next(fd[2], 5000, &ev), -EHOSTDOWN);
        for (int i = 0; i < 4; i++)
                close(fd[i]);
}
