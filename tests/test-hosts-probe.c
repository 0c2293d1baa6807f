/*
 * test-hosts-probe.c — what a hostile probe of "two hosts, one facility"
 * (issue 10) checked that no other test did, with real daemons over real
 * UDP on 127.0.0.1 (tests/support/hostset.c; no namespaces):
 *  - the search rules with three hosts: [hosts] search order, a [name]
 *    rule's own list (`hosts = beta`) and an empty one (`hosts =`: no host
 *    asked), local names first, `name@host` past the list, a host whose
 *    daemon died skipped once it is down;
 *  - remote access by the requester's uid, user name and gid as its daemon
 *    asserts them (`uid:N@alpha`, `user:NAME@alpha`, `gid:N@*`, `*@*`),
 *    and `*@<this host>` matching nobody: processes of other uids on alpha
 *    (its daemon --shared), each allowed or refused "not allowed from host
 *    alpha" exactly as the rules say;
 *  - requests withdrawn across hosts: the requester on alpha timed out while
 *    the request was handed out (deciding it: -ECANCELED), before it was
 *    handed out (skipped), and the requester killed (-ECANCELED);
 *  - an application's deallocation reason from beta: cut at
 *    IPCF_REASON_MAX, control bytes replaced, an empty one empty; a
 *    writer on alpha killed after writing: beta reads all it wrote, then
 *    "peer died";
 *  - an allocation and a plain call pending on beta when its daemon is
 *    killed (EHOSTUNREACH and ECONNRESET within the dead interval and a
 *    margin) or stopped (at once).
 */
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/hostset.h"
#include "support/test.h"

static hostset S;
static int gate[2]; /* test process -> a child on beta: go on */

static void gate_open(void) { CHECK(pipe(gate) == 0); }
static void gate_pass(void) { CHECK_EQ(write(gate[1], "g", 1), 1); }
static void gate_wait(void) {
        char c;
        CHECK_EQ(read(gate[0], &c, 1), 1);
}

/* ---- the search rules ------------------------------------------------------- */

typedef struct who_arg {
        int host;
        const char *name;
} who_arg;

/* Serve name on host: every flow is told the host's name, then ends. */
static void who_server(void *p) {
        const who_arg *w = p;
        hostset_enter(&S, w->host);
        int reg = CHECK_OK(ipcf_register(w->name, NULL));
        for (;;) {
                int port = ipcf_accept(reg, -1, NULL);
                if (port < 0)
                        continue;
                ipcf_write(port, S.h[w->host].name, strlen(S.h[w->host].name), 5000);
                ipcf_dealloc(port, "x");
        }
}

static pid_t *serve_all(const who_arg *w, size_t n) {
        static pid_t pids[16];
        CHECK(n <= 16);
        for (size_t i = 0; i < n; i++)
                pids[i] = test_fork(who_server, (void *)&w[i]);
        return pids;
}

static void kill_all(pid_t *pids, size_t n) {
        for (size_t i = 0; i < n; i++) {
                kill(pids[i], SIGKILL);
                test_wait(pids[i], 5000);
        }
}

/* Which host answers name from here ("" and *ret_err when none). */
static const char *who(const char *name, int *ret_err) {
        static char buf[32];
        int port = ipcf_alloc(name, NULL, 10000, NULL);
        *ret_err = port < 0 ? port : 0;
        if (port < 0)
                return "";
        ssize_t n = ipcf_read(port, buf, sizeof(buf) - 1, 5000);
        CHECK(n > 0);
        buf[n] = 0;
        ipcf_dealloc(port, NULL);
        return buf;
}

static void expect_who(const char *name, const char *host, int err) {
        int got_err;
        const char *got = who(name, &got_err);
        if (strcmp(got, host) != 0 || got_err != err)
                test_fail(__FILE__, __LINE__, "%s: answered by '%s' (%d), want '%s' (%d)", name, got, got_err, host,
                          err);
}

TEST_TIMEOUT(search_order_per_name_lists_and_a_dead_host_with_three_hosts, 120) {
        CHECK(hostset_init(&S, 3, HOSTSET_LOOPBACK));
        const char *remote = "[name *]\nremote_allocate = *@alpha\n";
        hostset_start(&S, 1, remote);
        hostset_start(&S, 2, remote);
        S.hosts_keys = "search = gamma beta\n";
        hostset_start(&S, 0, "[name b.*]\nhosts = beta\n[name none.*]\nhosts =\n");
        S.hosts_keys = NULL;
        CHECK(hostset_wait_up(&S, 0, 10000));
        static const who_arg served[] = { { 1, "svc" },    { 2, "svc" },       { 1, "b.x" }, { 2, "b.x" },
                                          { 1, "none.x" }, { 1, "only.beta" }, { 0, "loc" }, { 1, "loc" } };
        size_t n = sizeof(served) / sizeof(served[0]);
        pid_t *pids = serve_all(served, n);
        hostset_enter(&S, 0);
        usleep(800000); /* every server registered */
        expect_who("svc", "gamma", 0);       /* [hosts] search: gamma first */
        expect_who("b.x", "beta", 0);        /* the rule's own list */
        expect_who("none.x", "", -ENOENT);   /* an empty list: no host asked */
        expect_who("svc@beta", "beta", 0);   /* pinned: past the list */
        expect_who("only.beta", "beta", 0);  /* gamma says ENOENT: the next */
        expect_who("loc", "alpha", 0);       /* local names first */
        expect_who("loc@beta", "beta", 0);
        /* gamma's daemon dies: once it is down, svc comes from beta */
        hostset_kill_host(&S, 2);
        usleep(2500000); /* the dead interval (2 s) */
        expect_who("svc", "beta", 0);
        expect_who("svc@gamma", "", -EHOSTUNREACH);
        kill_all(pids, n);
        hostset_stop(&S);
}

/* ---- remote access by uid, user and gid --------------------------------------- */

typedef struct asker {
        uid_t uid;
        gid_t gid;
        const char *name;
} asker;

/* As uid/gid on alpha: allocate name@beta. Exit 0 allowed, 1 refused with
 * the policy's reason, 2 otherwise. */
static void ask_as(void *p) {
        const asker *a = p;
        if (setgroups(0, NULL) < 0 || setgid(a->gid) < 0 || setuid(a->uid) < 0)
                _exit(3);
        hostset_enter(&S, 0);
        char name[64];
        snprintf(name, sizeof(name), "%s@beta", a->name);
        ipcf_reason why = { 0 };
        int port = -ENOENT;
        for (int t = 0; t < 50 && port == -ENOENT; t++)
                if ((port = ipcf_alloc(name, NULL, 10000, &why)) == -ENOENT)
                        usleep(50000);
        if (port >= 0)
                _exit(0);
        _exit(port == -EACCES && strcmp(why.text, "not allowed from host alpha") == 0 ? 1 : 2);
}

static int asked(uid_t uid, gid_t gid, const char *name) {
        asker a = { uid, gid, name };
        pid_t c = test_fork(ask_as, &a);
        return test_wait(c, 30000);
}

TEST_TIMEOUT(remote_access_by_the_requesters_uid_user_and_gid, 120) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to run processes of other uids\n");
                return;
        }
        struct passwd *nobody = getpwnam("nobody");
        CHECK(nobody != NULL);
        uid_t nb = nobody->pw_uid;
        CHECK(hostset_init(&S, 2, HOSTSET_LOOPBACK));
        static const char *const shared[] = { "--shared", NULL };
        S.daemon_args = shared; /* alpha serves every uid */
        hostset_start(&S, 0, "[name *]\nallocate = *\n");
        S.daemon_args = NULL;
        hostset_start(&S, 1, "[name u.*]\nremote_allocate = uid:1234@alpha\n"
                             "[name n.*]\nremote_allocate = user:nobody@alpha\n"
                             "[name g.*]\nremote_allocate = gid:4321@*\n"
                             "[name x.*]\nremote_allocate = *@beta\n" /* this host: nobody */
                             "[name s.*]\nremote_allocate = *@*\n");
        CHECK(hostset_wait_up(&S, 0, 10000));
        static const who_arg served[] = { { 1, "u.a" }, { 1, "n.a" }, { 1, "g.a" }, { 1, "x.a" }, { 1, "s.a" } };
        pid_t *pids = serve_all(served, 5);
        usleep(500000);
        /* 0: allowed, 1: refused "not allowed from host alpha" */
        CHECK_EQ(asked(0, 0, "u.a"), 1);
        CHECK_EQ(asked(1234, 4321, "u.a"), 0);
        CHECK_EQ(asked(1234, 1, "u.a"), 0);
        CHECK_EQ(asked(nb, 4321, "u.a"), 1);
        CHECK_EQ(asked(nb, nb, "n.a"), 0);
        CHECK_EQ(asked(1234, 4321, "n.a"), 1);
        CHECK_EQ(asked(0, 0, "n.a"), 1);
        CHECK_EQ(asked(1234, 4321, "g.a"), 0);
        CHECK_EQ(asked(nb, 4321, "g.a"), 0);
        CHECK_EQ(asked(1234, 1, "g.a"), 1);
        CHECK_EQ(asked(0, 0, "x.a"), 1);
        CHECK_EQ(asked(1234, 4321, "x.a"), 1);
        CHECK_EQ(asked(0, 0, "s.a"), 0);
        CHECK_EQ(asked(nb, nb, "s.a"), 0);
        kill_all(pids, 5);
        hostset_stop(&S);
}

/* ---- requests withdrawn across hosts ------------------------------------------ */

/* Beta's registrant, deciding late (each step waits for the gate). */
static void late_decider(void *p) {
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register("wd", NULL));
        ipcf_request rq;
        /* 1: handed out, then its requester timed out */
        CHECK_OK(ipcf_request_next(reg, 20000, &rq));
        gate_wait();
        CHECK_ERR(ipcf_request_accept(reg, &rq), -ECANCELED);
        /* 2: withdrawn before it was handed out: skipped */
        gate_wait();
        CHECK_ERR(ipcf_request_next(reg, 500, &rq), -ETIMEDOUT);
        /* 3: handed out, then its requester was killed */
        CHECK_OK(ipcf_request_next(reg, 20000, &rq));
        gate_wait();
        CHECK_ERR(ipcf_request_refuse(reg, &rq, "late"), -ECANCELED);
}

static void wait_for_ever(void *p) {
        hostset_enter(&S, 0);
        ipcf_alloc("wd@beta", NULL, -1, NULL);
}

TEST_TIMEOUT(requests_withdrawn_across_hosts, 90) {
        gate_open();
        hostset_start_two(&S, "[name *]\nremote_allocate = *@alpha\n");
        pid_t srv = test_fork(late_decider, NULL);
        int go;
        pid_t requester = test_fork_gated(wait_for_ever, NULL, &go);
        hostset_enter(&S, 0);
        usleep(300000);
        CHECK_ERR(ipcf_alloc("wd@beta", NULL, 1000, NULL), -ETIMEDOUT);
        usleep(300000); /* the CANCEL crossed */
        gate_pass();
        usleep(300000);
        CHECK_ERR(ipcf_alloc("wd@beta", NULL, 300, NULL), -ETIMEDOUT);
        usleep(300000);
        gate_pass();
        usleep(1000000); /* beta's registrant waited 0.5 s in vain */
        test_gate_open(&go);
        usleep(800000);
        kill(requester, SIGKILL);
        test_wait(requester, 5000);
        usleep(300000);
        gate_pass();
        CHECK_EQ(test_wait(srv, 20000), 0);
        hostset_stop(&S);
}

/* ---- reasons and deaths across hosts ------------------------------------------- */

static const char *const *reasons_sent;

/* Beta accepts one flow per reason, writes "hello" and deallocates with it. */
static void dealloc_with_reasons(void *p) {
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register("rs", NULL));
        for (int i = 0; reasons_sent[i]; i++) {
                int port = CHECK_OK(ipcf_accept(reg, 20000, NULL));
                CHECK_EQ(ipcf_write(port, "hello", 5, 5000), 5);
                CHECK_OK(ipcf_dealloc(port, reasons_sent[i]));
        }
}

static void expect_dealloc(const char *want) {
        int port = CHECK_OK(hostset_alloc("rs@beta", NULL));
        char buf[64];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 5);
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 10000), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        if (strcmp(why.text, want) != 0)
                test_fail(__FILE__, __LINE__, "reason '%s', want '%s'", why.text, want);
        ipcf_dealloc(port, NULL);
}

TEST_TIMEOUT(dealloc_reasons_from_another_host_cut_and_made_printable, 90) {
        static char long_reason[IPCF_REASON_MAX + 40];
        memset(long_reason, 'r', sizeof(long_reason) - 1);
        static const char *const sent[] = { "bye", "", long_reason, "tab\there\x1b[0m\n", NULL };
        reasons_sent = sent;
        hostset_start_two(&S, "[name *]\nremote_allocate = *@alpha\n");
        pid_t srv = test_fork(dealloc_with_reasons, NULL);
        hostset_enter(&S, 0);
        expect_dealloc("bye");
        expect_dealloc("");
        expect_dealloc(long_reason + (sizeof(long_reason) - 1 - IPCF_REASON_MAX));
        expect_dealloc("tab?here?[0m?");
        CHECK_EQ(test_wait(srv, 10000), 0);
        hostset_stop(&S);
}

/* Beta reads, once the writer on alpha is dead, everything it wrote; then
 * "peer died". Exits with the count. */
static void read_after_the_writers_death(void *p) {
        hostset_enter(&S, 1);
        int reg = CHECK_OK(ipcf_register("late", NULL));
        int port = CHECK_OK(ipcf_accept(reg, 20000, NULL));
        gate_wait();
        static uint8_t buf[65536], want[8192];
        int i = 0;
        ssize_t n;
        while ((n = ipcf_read(port, buf, sizeof(buf), 10000)) > 0) {
                test_fill(want, sizeof(want), (uint64_t)i++);
                CHECK_EQ(n, (ssize_t)sizeof(want));
                CHECK_MEM(buf, want, sizeof(want));
        }
        CHECK_EQ(n, -ECONNRESET);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        CHECK(strcmp(why.text, "peer died") == 0);
        _exit(i);
}

/* Writes up to 100 messages of 8 KiB without waiting, exits with the count
 * (then it is dead: its daemon tells beta's). */
static void write_and_die(void *p) {
        hostset_enter(&S, 0);
        int port = CHECK_OK(hostset_alloc("late@beta", NULL));
        static uint8_t msg[8192];
        int i;
        for (i = 0; i < 100; i++) {
                test_fill(msg, sizeof(msg), (uint64_t)i);
                if (ipcf_write(port, msg, sizeof(msg), 0) != (ssize_t)sizeof(msg))
                        break;
        }
        _exit(i);
}

TEST_TIMEOUT(a_writer_killed_on_alpha_everything_it_wrote_arrives_then_peer_died, 60) {
        gate_open();
        hostset_start_two(&S, "[name *]\nremote_allocate = *@alpha\n");
        pid_t reader = test_fork(read_after_the_writers_death, NULL);
        pid_t writer = test_fork(write_and_die, NULL);
        int wrote = test_wait(writer, 30000);
        CHECK(wrote > 0);
        gate_pass();
        CHECK_EQ(test_wait(reader, 30000), wrote);
        hostset_stop(&S);
}

/* Beta: a registration nobody decides, and a service that takes a call and
 * never answers. */
static void never_answer(void *p) {
        hostset_enter(&S, 1);
        CHECK_OK(ipcf_register("nd", NULL));
        int svc = CHECK_OK(ipcf_service("nds", NULL));
        static char buf[64];
        ipcf_call_req rq;
        ipcf_service_next(svc, buf, sizeof(buf), 20000, &rq);
        pause();
}

/* An allocation (call: a plain call) pending on beta when beta's daemon is
 * killed (kill_it) or stopped, 0.5 s after it started: its result, and no
 * hang (the dead interval, 2 s, and a margin; at once when stopped). */
static void pending_when_beta_goes(bool kill_it, bool call, long want) {
        hostset_start_two(&S, "[name *]\nremote_allocate = *@alpha\n");
        pid_t srv = test_fork(never_answer, NULL);
        hostset_enter(&S, 0);
        usleep(400000);
        pid_t beta = S.h[1].d.pid;
        pid_t killer = fork();
        if (killer == 0) {
                usleep(500000);
                kill(beta, kill_it ? SIGKILL : SIGTERM);
                _exit(0);
        }
        uint64_t t0 = test_now_ms();
        char rep[64];
        long r = call ? (long)ipcf_call("nds@beta", "x", 1, rep, sizeof(rep), 20000, NULL)
                      : (long)ipcf_alloc("nd@beta", NULL, 20000, NULL);
        uint64_t ms = test_now_ms() - t0;
        fprintf(stderr, "%s pending when beta's daemon was %s: %ld after %llu ms\n", call ? "call" : "allocation",
                kill_it ? "killed" : "stopped", r, (unsigned long long)ms);
        CHECK_EQ(r, want);
        CHECK(ms < (kill_it ? 6000u : 1500u));
        test_wait(killer, 5000);
        CHECK(test_wait(beta, 5000) >= 0);
        S.h[1].running = false;
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        hostset_stop(&S);
}

TEST_TIMEOUT(an_allocation_pending_when_the_host_dies_fails_host_unreachable, 60) {
        pending_when_beta_goes(true, false, -EHOSTUNREACH);
}
TEST_TIMEOUT(an_allocation_pending_when_the_host_stops_fails_at_once, 60) {
        pending_when_beta_goes(false, false, -EHOSTUNREACH);
}
TEST_TIMEOUT(a_call_pending_when_the_host_dies_fails_connreset, 60) {
        pending_when_beta_goes(true, true, -ECONNRESET);
}
