/*
 * test-cli-reasons.c — a refused allocation's reason reaches the user of
 * `ipcf`: every command that allocates a flow (cat, ping, perf) or a
 * channel (call, rpc, mbox send and recv, mcast send and join, dgram send)
 * prints it after the facility's words, on its one error line, and exits 1:
 *   - here: an application refusing with its own reason, an activation
 *     whose program exits before registering, and a second receiver of an
 *     exclusive mailbox (the daemon's reasons);
 *   - across two hosts (real daemons over UDP on 127.0.0.1): the target
 *     host's access policy ("not allowed from host alpha") and the target's
 *     application, through both daemons.
 * Each command runs as a real process; its standard error is checked byte
 * for byte, and its exit status.
 */
#include <signal.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostset.h"
#include "support/shell.h"
#include "support/test.h"

static hostset S;

/* What a refusing application is told: its name, the host whose daemon it
 * talks to (-1: the process's own IPCF_RUNTIME_DIR), and a pipe to say that
 * it is registered. */
typedef struct refuser {
        const char *name;
        int host;
        int ready;
} refuser;

/* Register name and refuse every request with "printer offline", until
 * killed. */
static void refuse_all(void *p) {
        refuser *r = p;
        if (r->host >= 0)
                hostset_enter(&S, r->host);
        int reg = CHECK_OK(ipcf_register(r->name, NULL));
        CHECK_EQ(write(r->ready, "r", 1), 1);
        for (;;) {
                ipcf_request rq;
                int e = ipcf_request_next(reg, 60000, &rq);
                if (e == -ETIMEDOUT)
                        continue;
                CHECK_OK(e);
                e = ipcf_request_refuse(reg, &rq, "printer offline");
                CHECK(e == 0 || e == -ECANCELED);
        }
}

/* A refuser of name on host (-1: here), registered when this returns. */
static pid_t start_refuser(const char *name, int host) {
        int p[2];
        CHECK_OK(pipe(p));
        refuser r = { name, host, p[1] };
        pid_t pid = test_fork(refuse_all, &r);
        close(p[1]);
        char c;
        CHECK_EQ(read(p[0], &c, 1), 1);
        close(p[0]);
        return pid;
}

/* Run `ipcf ARGS` (through this process's IPCF_RUNTIME_DIR): it must exit
 * 1 with exactly the line "ipcf: WHAT: WHY" on stderr (and nothing else
 * there). */
static void check_line(const char *args, const char *what, const char *why) {
        char *bin = test_built("bin/ipcf"), *err = NULL;
        int st = test_sh(&err, 60, "'%s' %s </dev/null 2>&1 >/dev/null", bin, args);
        char want[512];
        snprintf(want, sizeof(want), "ipcf: %s: %s\n", what, why);
        if (st != 1 || strcmp(err, want) != 0)
                test_fail(__FILE__, __LINE__, "ipcf %s: exit %d, stderr:\n%s\nwant exit 1, stderr:\n%s", args, st,
                          err, want);
        free(err);
        free(bin);
}

/* `ipcf CMD NAME ARGS`, whose error line names "CMD NAME". */
static void check_refused(const char *cmd, const char *name, const char *args, const char *why) {
        char line[256], what[128];
        snprintf(line, sizeof(line), "%s %s %s", cmd, name, args);
        snprintf(what, sizeof(what), "%s %s", cmd, name);
        check_line(line, what, why);
}

/* Each allocating command, with the same expected reason. */
static void check_all_refused(const char *name, const char *why) {
        check_refused("ping", name, "-c 1", why);
        check_refused("cat", name, "", why);
        check_refused("perf", name, "-t 1", why);
}

TEST(an_applications_and_an_activations_reason_are_printed) {
        test_daemon d;
        test_daemon_start(&d, "[name lazy]\nactivate = exit 3\n", NULL);
        pid_t r = start_refuser("printer", -1);
        check_all_refused("printer", "refused by the target: printer offline");
        /* the daemon's reason for a failed activation */
        check_refused("ping", "lazy", "-c 1",
                      "could not start the target program: activation: the program exited with status 3 "
                      "before registering the name");
        /* no reason: the facility's words alone */
        check_refused("ping", "nobody", "-c 1", "no such name");
        /* the daemon's reason for a mailbox's channel, through
         * ipcf_last_reason: an exclusive mailbox that has its receiver */
        ipcf_mbox_opts mo = { .size = sizeof(mo), .flags = IPCF_MBOX_EXCLUSIVE };
        CHECK_OK(ipcf_mbox_create("solo", &mo));
        int rx = CHECK_OK(ipcf_mbox_open("solo", IPCF_MBOX_RECV, NULL, 5000));
        check_line("mbox recv solo -n 1", "solo",
                   "busy: the target can take no more now (a full backlog, an exclusive receiver already "
                   "there, or no free session): exclusive mailbox has a receiver");
        CHECK_OK(ipcf_dealloc(rx, NULL));
        kill(r, SIGKILL);
        test_wait(r, 5000);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(the_target_hosts_policy_and_application_reasons_are_printed, 180) {
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        hostset_start(&S, 0, NULL);
        /* beta: "printer" for its own processes only; the rest for alpha's */
        hostset_start(&S, 1, "[name printer]\nallocate = *\n[name *]\nremote_allocate = *@alpha\n");
        CHECK(hostset_wait_up(&S, 0, 10000));
        CHECK(hostset_wait_up(&S, 1, 10000));
        /* both names are served on beta by an application that refuses: the
         * policy's refusal comes first for printer */
        pid_t p = start_refuser("printer", 1);
        pid_t b = start_refuser("busy", 1);
        hostset_enter(&S, 0);
        static const char policy[] = "access denied by the facility's policy: not allowed from host alpha";
        check_all_refused("printer@beta", policy);
        /* the commands whose allocation is a channel of a model, through
         * ipcf_last_reason */
        check_refused("call", "printer@beta", "", policy);
        check_line("rpc describe printer@beta", "printer@beta", policy);
        check_line("rpc call printer@beta NULLPROC", "printer@beta", policy);
        check_line("mbox send printer@beta hello", "printer@beta", policy);
        check_line("mbox recv printer@beta -n 1", "printer@beta", policy);
        check_line("mcast send printer@beta hello", "printer@beta", policy);
        check_line("mcast join printer@beta", "printer@beta", policy);
        check_line("dgram send printer@beta hello", "printer@beta", policy);
        check_all_refused("busy@beta", "refused by the target: printer offline");
        kill(p, SIGKILL);
        kill(b, SIGKILL);
        test_wait(p, 5000);
        test_wait(b, 5000);
        hostset_stop(&S);
}
