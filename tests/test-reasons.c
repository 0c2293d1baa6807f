/*
 * test-reasons.c — a requester learns why, at once (issue 16, item 7),
 * against the real daemon:
 *   - a datagram or a call to a name registered for plain flows is refused
 *     -ECONNREFUSED at once (not -ETIMEDOUT after the timeout);
 *   - activation failures carry their reason: the command not found, the
 *     program's exit status or signal, no registration in time;
 *   - after the daemon's death the next call starts a new one (autostart)
 *     and succeeds, instead of failing -EHOSTDOWN once.
 */
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

TEST(a_datagram_or_call_to_a_plain_name_is_refused_at_once) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("plain.name", NULL));
        int ep = CHECK_OK(ipcf_dgram_open(NULL, NULL));
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_dgram_send(ep, "plain.name", "x", 1, 20000), -ECONNREFUSED);
        char r[8];
        CHECK_ERR(ipcf_call("plain.name", "x", 1, r, sizeof(r), 20000, NULL), -ECONNREFUSED);
        CHECK(test_now_ms() - t0 < 20000);
        /* The plain registration saw no request of either. */
        ipcf_request req;
        CHECK_ERR(ipcf_request_next(reg, 0, &req), -EAGAIN);
        /* And a plain flow to a service or an endpoint is refused too. */
        int svc = CHECK_OK(ipcf_service("plain.svc", NULL));
        ipcf_reason why;
        CHECK_ERR(ipcf_alloc("plain.svc", NULL, 20000, &why), -ECONNREFUSED);
        CHECK_EQ(why.code, IPCF_END_REFUSED);
        CHECK(why.text[0] != 0);
        CHECK_OK(ipcf_dealloc(svc, NULL));
        CHECK_OK(ipcf_dealloc(ep, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

static const char activation_conf[] =
        "[name act.none]\n"
        "activate = /nonexistent/ipcf-no-such-program\n"
        "[name act.exit]\n"
        "activate = exit 3\n"
        "[name act.signal]\n"
        "activate = kill -9 $$\n"
        "[name act.slow]\n"
        "activate = sleep 30\n"
        "activate_timeout_ms = 300\n";

/* ipcf_alloc of name fails with err and a reason containing what, whose
 * code says the allocation was refused (IPCF_END_REFUSED: a reason with
 * code 0, IPCF_END_NONE, "the flow is live", said nothing); ipcf_last_reason
 * gives the same. */
static void check_activation(const char *name, int err, const char *what) {
        ipcf_reason why, last;
        memset(&why, 0, sizeof(why));
        CHECK_ERR(ipcf_alloc(name, NULL, 10000, &why), err);
        if (!strstr(why.text, what))
                test_fail(__FILE__, __LINE__, "%s: reason \"%s\" lacks \"%s\"", name, why.text, what);
        CHECK_OK(ipcf_last_reason(&last));
        if (why.code != IPCF_END_REFUSED || last.code != IPCF_END_REFUSED || strcmp(last.text, why.text))
                test_fail(__FILE__, __LINE__, "%s: code %d, last reason code %d \"%s\" (want %d, \"%s\")", name,
                          why.code, last.code, last.text, IPCF_END_REFUSED, why.text);
}

TEST(activation_failures_say_why) {
        test_daemon_start(&d, activation_conf, NULL);
        check_activation("act.none", -ENOEXEC, "status 127 (command not found)");
        check_activation("act.exit", -ENOEXEC, "exited with status 3");
        check_activation("act.signal", -ENOEXEC, "killed by signal 9");
        check_activation("act.slow", -ETIMEDOUT, "did not register the name within 300 ms");
        test_daemon_stop(&d);
}

/* The pid of the daemon of our runtime directory, from its pid file. */
static pid_t daemon_pid_of(const char *dir) {
        char path[300];
        snprintf(path, sizeof(path), "%s/ipcfd.pid", dir);
        FILE *f = fopen(path, "r");
        if (!f)
                return 0;
        int pid = 0;
        if (fscanf(f, "%d", &pid) != 1)
                pid = 0;
        fclose(f);
        return pid;
}

TEST(the_first_call_after_the_daemons_death_restarts_it) {
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("restart.a", NULL));
        (void)reg;
        /* From now on the library may start a daemon, this build's. */
        char *bin = test_build_path("bin/ipcfd");
        setenv("IPCF_DAEMON", bin, 1);
        unsetenv("IPCF_NO_AUTOSTART");
        test_daemon_kill(&d);
        /* The connection the library holds is to the dead daemon: the call
         * must start a new one and succeed on it. */
        int reg2 = CHECK_OK(ipcf_register("restart.b", NULL));
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        CHECK_EQ(l->n_names, 1);
        CHECK(strcmp(l->names[0].name, "restart.b") == 0);
        pid_t np = l->daemon_pid;
        ipcf_free(l);
        CHECK(np > 0);
        CHECK_EQ(daemon_pid_of(d.dir), np);
        /* A watch on the new daemon works too (the notification socket of
         * the old one is replaced). */
        CHECK_OK(ipcf_watch("restart.b"));
        ipcf_event ev;
        CHECK_OK(ipcf_notify_next(5000, &ev));
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK_OK(ipcf_dealloc(reg2, NULL));
        /* Stop the daemon we did not fork (it is not our child). */
        kill(np, SIGTERM);
        for (int i = 0; i < 500 && kill(np, 0) == 0; i++)
                usleep(10000);
        CHECK(kill(np, 0) < 0);
        free(bin);
        test_daemon_stop(&d);
}
