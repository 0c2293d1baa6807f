/*
 * test-ctltime-probe.c — how long a call may wait for the daemon, as ipcf.h
 * promises it: every request, also of calls without a timeout (ipcf_list,
 * `ipcf ls`, ipcf_register), waits for the daemon's reply at most
 * IPCF_REQUEST_TIMEOUT_MS and then fails -ETIMEDOUT, keeping the process's
 * connection (its registrations and flows); an allocation with timeout n
 * ends within n ms and a small slack, and a verdict that comes after the
 * caller gave up leaves nothing behind.
 *
 * The daemons are real, on private runtime dirs, stopped with SIGSTOP and
 * resumed with SIGCONT.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/names.h"
#include "support/shell.h"
#include "support/test.h"

/* The bound these cases set, and how late past it a failure may come on a
 * loaded machine (the CI runs two test programs beside two builds). */
#define BOUND_MS 1000
#define LATE_MS 1500

static size_t flows_listed(void) {
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        size_t n = l->n_flows;
        ipcf_free(l);
        return n;
}

/* Accept one flow on the registration *arg (an int), its port as the result. */
static void *accept_one(void *arg) {
        return (void *)(intptr_t)ipcf_accept(*(int *)arg, 10000, NULL);
}

/* A listing in another thread: its result. */
static void *list_in_thread(void *arg) {
        (void)arg;
        ipcf_listing *l = NULL;
        int r = ipcf_list(&l);
        if (r == 0)
                ipcf_free(l);
        return (void *)(intptr_t)r;
}

/* The call took [BOUND_MS - 100, BOUND_MS + LATE_MS] ms from t0. */
static void check_bounded(const char *what, uint64_t t0) {
        uint64_t took = test_now_ms() - t0;
        if (took + 100 < BOUND_MS || took > BOUND_MS + LATE_MS)
                test_fail(__FILE__, __LINE__, "%s took %llu ms, want about the %d ms bound", what,
                          (unsigned long long)took, BOUND_MS);
}

/* ipcf_list, `ipcf ls` and ipcf_register against a stopped daemon fail
 * -ETIMEDOUT (exit 1) by IPCF_REQUEST_TIMEOUT_MS — also the one that waits
 * for the connection behind another thread's listing — and the process's
 * registration and flow stay: after SIGCONT both are listed, the flow still
 * carries data both ways, and the registration made by the request that was
 * given up does not stay. Before the fix, each waited 30 s and then closed
 * the connection (the registration and the flow gone). */
TEST_TIMEOUT(untimed_requests_end_by_the_bound_and_keep_the_connection, 120) {
        setenv("IPCF_REQUEST_TIMEOUT_MS", "1000", 1);
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("probe.kept", NULL));
        pthread_t acceptor;
        CHECK_EQ(pthread_create(&acceptor, NULL, accept_one, &reg), 0);
        int a = CHECK_OK(ipcf_alloc("probe.kept", NULL, 10000, NULL));
        void *accepted = NULL;
        CHECK_EQ(pthread_join(acceptor, &accepted), 0);
        int b = CHECK_OK((int)(intptr_t)accepted);
        CHECK_EQ(flows_listed(), 1);

        kill(d.pid, SIGSTOP);
        uint64_t t0 = test_now_ms();
        ipcf_listing *l = NULL;
        CHECK_ERR(ipcf_list(&l), -ETIMEDOUT);
        check_bounded("ipcf_list", t0);

        char *bin = test_built("bin/ipcf"), *out = NULL;
        t0 = test_now_ms();
        int rc = test_sh(&out, 20, "'%s' ls", bin);
        if (rc != 1 || !strstr(out, "timed out"))
                test_fail(__FILE__, __LINE__, "ipcf ls on a stopped daemon: exit %d (want 1, timed out): %s", rc,
                          out);
        check_bounded("ipcf ls", t0);
        free(out);

        /* A request waiting behind another thread's, which holds the
         * connection: bounded from its own start too. */
        pthread_t lister;
        CHECK_EQ(pthread_create(&lister, NULL, list_in_thread, NULL), 0);
        usleep(300000);
        t0 = test_now_ms();
        CHECK_ERR(ipcf_register("probe.late", NULL), -ETIMEDOUT);
        check_bounded("ipcf_register behind a listing", t0);
        void *listed_r = NULL;
        CHECK_EQ(pthread_join(lister, &listed_r), 0);
        CHECK_EQ((intptr_t)listed_r, -ETIMEDOUT);

        /* The flow works without the daemon meanwhile. */
        CHECK_EQ(ipcf_write(a, "x", 1, 1000), 1);
        char c = 0;
        CHECK_EQ(ipcf_read(b, &c, 1, 1000), 1);
        kill(d.pid, SIGCONT);

        /* The same connection: the registration and the flow are there. */
        test_wait_for_name("probe.kept", 0);
        CHECK_EQ(flows_listed(), 1);
        CHECK_EQ(ipcf_write(b, "y", 1, 1000), 1);
        CHECK_EQ(ipcf_read(a, &c, 1, 1000), 1);
        CHECK_EQ(c, 'y');
        /* The late REGISTER was done on resuming; its reply, skipped, had its
         * socket closed, which ends it. */
        test_wait_for_name_gone("probe.late", 2000);
        /* Still one connection: a new registration of the kept name's
         * process is there beside the old. */
        int reg2 = CHECK_OK(ipcf_register("probe.after", NULL));
        test_wait_for_name("probe.after", 0);
        test_wait_for_name("probe.kept", 0);

        CHECK_OK(ipcf_dealloc(a, NULL));
        CHECK_OK(ipcf_dealloc(b, NULL));
        CHECK_OK(ipcf_dealloc(reg2, NULL));
        CHECK_OK(ipcf_dealloc(reg, NULL));
        free(bin);
        test_daemon_stop(&d);
}
