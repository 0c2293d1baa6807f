/*
 * test-rpc-hosts.c — remote procedure calls across two hosts ("alpha" and
 * "beta": real daemons, each in its own network namespace joined by veth
 * when root, else on 127.0.0.1 with distinct ports; tests/support/hostset.c)
 * through the same generated stubs as on one host:
 *  - the examples (calc, files) called from alpha and locally on beta with
 *    the same programs: the same bytes back, and each server's log names
 *    the caller as the facility stamped it — the host it called from, its
 *    pid, its program — which a local program cannot forge by its name;
 *  - ctx->caller and ctx->host in a handler for a local and a remote caller,
 *    also through `ipcf rpc describe / call NAME@beta` from alpha;
 *  - exactly once with the daemons' impairment hook on (datagrams lost,
 *    duplicated, corrupted, reordered) and the RPC hook too (replies
 *    dropped, requests duplicated): a non-idempotent counter increments once
 *    per call (100,000 calls; 10,000 with IPCF_TEST_QUICK);
 *  - the server killed mid-call: "outcome unknown"; beta's daemon killed:
 *    a call in flight is "outcome unknown", a new one -EHOSTUNREACH, both
 *    within the dead interval (2 s here) and a margin; an idempotent call in
 *    flight is asked again until its deadline, then "outcome unknown".
 */
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "counter.h"
#include "support/hostset.h"
#include "support/test.h"
#include "rpc/counter-calls.h"

static hostset S;

#define RULES "[name rpc.*]\nremote_allocate = *@alpha\n[name ex.*]\nremote_allocate = *@alpha\n"

/* Two hosts, beta serving what alpha may call; extra config on both. */
static void start_two(const char *extra) {
        bool ns = geteuid() == 0;
        CHECK(hostset_init(&S, 2, ns ? HOSTSET_NETNS : HOSTSET_LOOPBACK));
        char cfg[1024];
        snprintf(cfg, sizeof(cfg), "%s%s", RULES, extra ? extra : "");
        hostset_start(&S, 0, cfg);
        hostset_start(&S, 1, cfg);
        CHECK(hostset_wait_up(&S, 0, 15000));
        CHECK(hostset_wait_up(&S, 1, 15000));
}

/* ---- the counter server (tests/rpc/counter.x), on beta ------------------------- */

struct shared {
        _Atomic int64_t count;  /* INCR executions */
        _Atomic int in_sleep;   /* SLEEP running */
        _Atomic int saw_cancel; /* SLEEP saw ipcf_rpc_cancelled() before its time was up */
};
static struct shared *sh;

static int h_incr(ipcf_rpc_ctx *ctx, int64_t *out, void *user) {
        *out = atomic_fetch_add(&sh->count, 1) + 1;
        return 0;
}

static int h_sleep(ipcf_rpc_ctx *ctx, const int32_t *ms, int32_t *out, void *user) {
        atomic_store(&sh->in_sleep, 1);
        uint64_t end = test_now_ms() + (uint64_t)*ms;
        while (test_now_ms() < end && !ipcf_rpc_cancelled(ctx))
                usleep(1000);
        if (test_now_ms() < end)
                atomic_store(&sh->saw_cancel, 1);
        atomic_store(&sh->in_sleep, 0);
        *out = 0;
        return 0;
}

static const counter_v1_handlers handlers = { .incr = h_incr, .sleep = h_sleep, .who = counter_h_who };

static const char *server_impair;

static void counter_server(void *name) {
        hostset_enter(&S, 1);
        if (server_impair)
                setenv("IPCF_RPC_IMPAIR", server_impair, 1);
        ipcf_rpc_server *s;
        CHECK_OK(ipcf_rpc_server_new(name, NULL, &s));
        CHECK_OK(counter_v1_serve(s, &handlers, NULL));
        /* Until the case kills it (each does, and the harness kills what a
         * case leaves: its process group). It quit after 300 s, while the
         * 100,000 calls took 216 and 292 s in two runs at load 8-19: past
         * 300 s, the call in flight when it quit ends "outcome unknown"
         * (right for a server that goes; here, a failure of the test). */
        CHECK_OK(ipcf_rpc_server_run(s, 2, -1));
        ipcf_rpc_server_free(s);
}

static pid_t start_counter(const char *name, const char *impair) {
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(sh != MAP_FAILED);
        memset(sh, 0, sizeof(*sh));
        server_impair = impair;
        return test_fork(counter_server, (void *)name);
}

/* A client of name (on host alpha), retrying while beta's server is not
 * registered yet (ENOENT). */
static ipcf_rpc_client *client_of(const char *name) {
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new(name, NULL, &c));
        static const ipcf_rpc_proc nullproc = { .number = 0, .name = "NULL" };
        int r = -ENOENT;
        for (int t = 0; t < 200 && (r == -ENOENT || r == -EHOSTUNREACH); t++)
                if ((r = ipcf_rpc_invoke(c, &counter_v1_desc, &nullproc, NULL, NULL, NULL)) == -ENOENT ||
                    r == -EHOSTUNREACH)
                        usleep(50000);
        CHECK_OK(r);
        return c;
}

/* ---- running programs of the build on a host -------------------------------------- */

/* Run argv on host i; its stdout in out (NUL-ended), its exit status. */
static int run_on(int i, const char *const *argv, char *out, size_t cap) {
        int p[2];
        CHECK_OK(pipe(p));
        pid_t pid = hostset_spawn(&S, i, argv, -1, p[1]);
        close(p[1]);
        size_t n = 0;
        ssize_t k;
        while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
                n += (size_t)k;
        out[n] = 0;
        close(p[0]);
        return test_wait(pid, 60000);
}

/* Read lines of a server's log (fd) until one contains want (bounded). */
static bool log_has(int fd, char *log, size_t cap, const char *want) {
        size_t n = strlen(log);
        uint64_t end = test_now_ms() + 10000;
        while (!strstr(log, want) && test_now_ms() < end && n + 1 < cap) {
                ssize_t k = read(fd, log + n, cap - 1 - n);
                if (k > 0)
                        log[n += (size_t)k] = 0;
                else
                        usleep(10000);
        }
        return strstr(log, want) != NULL;
}

/* Does the nth line of log that starts with prefix end with end? */
static bool line_ends(const char *log, const char *prefix, int nth, const char *end) {
        for (const char *l = log; *l;) {
                const char *nl = strchr(l, '\n');
                if (!nl)
                        return false;
                size_t n = (size_t)(nl - l), k = strlen(end);
                if (!strncmp(l, prefix, strlen(prefix)) && nth-- == 0)
                        return n >= k && !memcmp(nl - k, end, k);
                l = nl + 1;
        }
        return false;
}

static int server_log(int i, const char *const *argv, pid_t *ret_pid) {
        int p[2];
        CHECK_OK(pipe(p));
        *ret_pid = hostset_spawn(&S, i, argv, -1, p[1]);
        close(p[1]);
        CHECK_OK(fcntl(p[0], F_SETFL, O_NONBLOCK));
        return p[0];
}

/* Wait until name answers from host i (the examples' servers register). */
static void wait_served(int i, const char *name) {
        char out[512];
        const char *argv[] = { "examples/calc-client", name, "0", "1", NULL };
        for (int t = 0; t < 200; t++) {
                if (run_on(i, argv, out, sizeof(out)) == 0)
                        return;
                usleep(50000);
        }
        CHECK(!"the server never answered");
}

TEST_TIMEOUT(the_examples_answer_the_same_stub_locally_and_from_another_host, 300) {
        start_two(NULL);
        const char *calc[] = { "examples/calc-server", "ex.calc", NULL };
        pid_t cs;
        int clog = server_log(1, calc, &cs);
        wait_served(1, "ex.calc@beta"); /* here only: no asking alpha meanwhile */
        static const char want[] = "sum 86\nproduct 168\nquotient 42\ntotal 84\n";
        static const char want2[] = "sum 86\nproduct 168\nquotient 42\ntotal 168\n";
        static const char want3[] = "sum 5\nproduct 0\nquotient: Numerical argument out of domain\ntotal 173\n";
        char out[4096], log[16384] = "";
        /* locally on beta, then from alpha by name@host and by the search rules */
        const char *local[] = { "examples/calc-client", "ex.calc", "84", "2", NULL };
        CHECK_EQ(run_on(1, local, out, sizeof(out)), 0);
        CHECK(strcmp(out, want) == 0);
        CHECK(log_has(clog, log, sizeof(log), "ACCUMULATE 84 by calc-client (pid "));
        CHECK(strstr(log, ", uid 0) on beta\n") || getuid() != 0);
        const char *pinned[] = { "examples/calc-client", "ex.calc@beta", "84", "2", NULL };
        CHECK_EQ(run_on(0, pinned, out, sizeof(out)), 0);
        CHECK(strcmp(out, want2) == 0);
        const char *searched[] = { "examples/calc-client", "ex.calc", "5", "0", NULL };
        CHECK_EQ(run_on(0, searched, out, sizeof(out)), 0);
        CHECK(strcmp(out, want3) == 0);
        CHECK(log_has(clog, log, sizeof(log), "ACCUMULATE 5 by calc-client (pid "));
        /* the local call was stamped with beta, the two remote ones with alpha */
        CHECK(line_ends(log, "ACCUMULATE 84 ", 0, " on beta"));
        CHECK(line_ends(log, "ACCUMULATE 84 ", 1, " on alpha"));
        CHECK(line_ends(log, "ACCUMULATE 5 ", 0, " on alpha"));
        /* a local program named like a remote caller is still a local caller */
        char fake[400];
        snprintf(fake, sizeof(fake), "%s/calc-client@alpha", S.h[1].state_dir);
        char *real = test_build_path("examples/calc-client");
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "cp %s '%s'", real, fake);
        free(real);
        CHECK_EQ(system(cmd), 0);
        int p[2];
        CHECK_OK(pipe(p));
        pid_t f = fork();
        if (f == 0) {
                hostset_enter(&S, 1);
                dup2(p[1], 1);
                execl(fake, fake, "ex.calc", "1", "1", (char *)NULL);
                _exit(127);
        }
        close(p[1]);
        while (read(p[0], out, sizeof(out)) > 0) {
        }
        close(p[0]);
        CHECK_EQ(test_wait(f, 30000), 0);
        CHECK(log_has(clog, log, sizeof(log), "ACCUMULATE 1 by calc-client@alpha (pid "));
        CHECK(line_ends(log, "ACCUMULATE 1 by calc-client@alpha ", 0, " on beta"));
        kill(cs, SIGKILL);
        test_wait(cs, 5000);
        close(clog);

        /* the file service: 5 MiB there and back, in one call each */
        char dir[400], data[400];
        snprintf(dir, sizeof(dir), "%s/served", S.h[1].state_dir);
        CHECK_EQ(mkdir(dir, 0700), 0);
        const char *files[] = { "examples/files-server", "ex.files", dir, NULL };
        pid_t fs;
        int flog = server_log(1, files, &fs);
        snprintf(data, sizeof(data), "%s/local", S.h[0].state_dir);
        size_t len = 5u << 20;
        char *buf = malloc(len);
        test_fill(buf, len, 99);
        FILE *fl = fopen(data, "wb");
        CHECK_EQ(fwrite(buf, 1, len, fl), len);
        fclose(fl);
        const char *put[] = { "examples/files-client", "ex.files@beta", "put", data, "copy", NULL };
        int r = -1;
        for (int t = 0; t < 200 && r != 0; t++)
                if ((r = run_on(0, put, out, sizeof(out))) != 0)
                        usleep(50000);
        CHECK_EQ(r, 0);
        const char *append[] = { "examples/files-client", "ex.files@beta", "append", data, "copy", NULL };
        CHECK_EQ(run_on(0, append, out, sizeof(out)), 0);
        const char *stat_[] = { "examples/files-client", "ex.files@beta", "stat", "copy", NULL };
        CHECK_EQ(run_on(0, stat_, out, sizeof(out)), 0);
        CHECK_EQ(strtoull(out, NULL, 10), 2 * len);
        char back[400];
        snprintf(back, sizeof(back), "%s/back", S.h[0].state_dir);
        const char *get[] = { "examples/files-client", "ex.files@beta", "get", "copy", back, NULL };
        CHECK_EQ(run_on(0, get, out, sizeof(out)), 0);
        /* the bytes: what beta wrote, and what alpha got back */
        char *got = malloc(2 * len);
        char served[500];
        snprintf(served, sizeof(served), "%s/copy", dir);
        const char *paths[] = { served, back };
        for (int i = 0; i < 2; i++) {
                fl = fopen(paths[i], "rb");
                CHECK(fl);
                CHECK_EQ(fread(got, 1, 2 * len, fl), 2 * len);
                CHECK_EQ(fgetc(fl), EOF);
                fclose(fl);
                CHECK_MEM(got, buf, len);
                CHECK_MEM(got + len, buf, len);
        }
        /* the same client locally on beta: the same answer */
        const char *stat_local[] = { "examples/files-client", "ex.files", "stat", "copy", NULL };
        CHECK_EQ(run_on(1, stat_local, out, sizeof(out)), 0);
        CHECK_EQ(strtoull(out, NULL, 10), 2 * len);
        log[0] = 0;
        CHECK(log_has(flog, log, sizeof(log), "APPEND copy (5242880 bytes) by files-client (pid "));
        CHECK(strstr(log, "PUT copy (5242880 bytes) by files-client (pid "));
        CHECK(line_ends(log, "PUT copy ", 0, " on alpha"));
        CHECK(line_ends(log, "APPEND copy ", 0, " on alpha"));
        free(got);
        free(buf);
        kill(fs, SIGKILL);
        test_wait(fs, 5000);
        close(flog);
        hostset_stop(&S);
}

/* ---- the caller's stamp ------------------------------------------------------------ */

static void who_from(void *host) {
        int i = (int)(intptr_t)host;
        hostset_enter(&S, i);
        ipcf_rpc_client *c = client_of(i == 0 ? "rpc.who@beta" : "rpc.who");
        who w;
        ipcf_rpc_opts o = { .timeout_ms = 7000 };
        CHECK_OK(counter_who(c, &w, &o));
        CHECK_EQ(w.pid, getpid());
        CHECK_EQ(w.uid, getuid());
        CHECK(strcmp(w.prog, "test-rpc-hosts") == 0); /* the program, without "@host" */
        CHECK(strcmp(w.host, i == 0 ? "alpha" : "beta") == 0);
        CHECK(w.deadline_left_ms > 3000 && w.deadline_left_ms <= 7000); /* the deadline travels */
        who_free(&w);
        ipcf_rpc_client_free(c);
}

TEST_TIMEOUT(a_handler_sees_the_callers_host_as_the_facility_stamped_it, 120) {
        start_two(NULL);
        pid_t srv = start_counter("rpc.who", NULL);
        for (int i = 0; i < 2; i++)
                CHECK_EQ(test_wait(test_fork(who_from, (void *)(intptr_t)i), 60000), 0);
        /* the shell's tool from alpha: the server's description, then a call */
        char out[8192];
        const char *describe[] = { "bin/ipcf", "rpc", "describe", "rpc.who@beta", NULL };
        CHECK_EQ(run_on(0, describe, out, sizeof(out)), 0);
        CHECK(strstr(out, "program COUNTER_PROG"));
        const char *call[] = { "bin/ipcf", "rpc", "call", "rpc.who@beta", "WHO", NULL };
        CHECK_EQ(run_on(0, call, out, sizeof(out)), 0);
        CHECK(strstr(out, "\"prog\": \"ipcf\"") && strstr(out, "\"host\": \"alpha\""));
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        hostset_stop(&S);
}

/* ---- exactly once across impaired hosts ------------------------------------------------ */

static unsigned calls_once(void) { return getenv("IPCF_TEST_QUICK") ? 10000 : 100000; }

static void incr_many(void *arg) {
        hostset_enter(&S, 0);
        setenv("IPCF_RPC_IMPAIR", "dup=0.01,seed=11", 1);
        ipcf_rpc_client *c = client_of("rpc.once@beta");
        unsigned n = calls_once();
        uint64_t sent = 0, cached = 0;
        counter_incr_n(c, n, &sent, &cached);
        CHECK(sent > n + n / 200); /* copies were sent... */
        CHECK(cached > 0);         /* ...and answered from the reply cache */
        ipcf_rpc_client_free(c);
        /* and the link between the daemons lost datagrams on the way */
        ipcf_host_listing *l;
        CHECK_OK(ipcf_hosts(&l));
        CHECK_EQ(l->n, 1);
        CHECK(l->hosts[0].lost > 0 && l->hosts[0].retransmitted > 0);
        printf("%u calls: %llu transmissions, %llu answered from the reply cache; the link: %llu datagrams "
               "out, %llu lost, %llu PDUs sent again\n",
               n, (unsigned long long)sent, (unsigned long long)cached,
               (unsigned long long)l->hosts[0].dgrams_out, (unsigned long long)l->hosts[0].lost,
               (unsigned long long)l->hosts[0].retransmitted);
        ipcf_free(l);
}

TEST_TIMEOUT(exactly_once_across_hosts_with_datagrams_lost_duplicated_corrupted, 900) {
        start_two("[impair]\nloss = 3%\nduplicate = 2%\ncorrupt = 1%\nreorder = 3%\nseed = 5\n");
        pid_t srv = start_counter("rpc.once", "drop_reply=0.01,seed=7");
        CHECK_EQ(test_wait(test_fork(incr_many, NULL), 800000), 0);
        CHECK_EQ(atomic_load(&sh->count), calls_once());
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        hostset_stop(&S);
}

/* ---- a cancel reaches the handler on the other host ----------------------------------- */

static void cancel_from_alpha(void *arg) {
        hostset_enter(&S, 0);
        ipcf_rpc_client *c = client_of("rpc.cancel@beta");
        int32_t ms = 30000, res;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        for (int i = 0; i < 10000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        uint64_t t0 = test_now_ms();
        CHECK_OK(ipcf_rpc_cancel(k));
        /* the handler saw it and returned: it ran, and the server's verdict
         * (its result) comes back across the hosts, not "cancelled" */
        CHECK_OK(ipcf_rpc_wait(k, 20000));
        ipcf_rpc_call_free(k);
        for (int i = 0; i < 5000 && !atomic_load(&sh->saw_cancel); i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->saw_cancel), 1);
        printf("the handler on beta saw the cancel %llu ms after ipcf_rpc_cancel\n",
               (unsigned long long)(test_now_ms() - t0));
        /* the slot is free again once the handler stopped */
        for (int i = 0; i < 5000 && atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        ipcf_rpc_client_free(c);
}

TEST_TIMEOUT(a_cancel_reaches_the_handler_on_another_host, 120) {
        start_two(NULL);
        pid_t srv = start_counter("rpc.cancel", NULL);
        CHECK_EQ(test_wait(test_fork(cancel_from_alpha, NULL), 60000), 0);
        kill(srv, SIGKILL);
        test_wait(srv, 5000);
        hostset_stop(&S);
}

/* ---- deaths ----------------------------------------------------------------------------- */

static void sleep_then(void *what) {
        hostset_enter(&S, 0);
        ipcf_rpc_client *c = client_of("rpc.die@beta");
        int32_t ms = 60000, res;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        /* the test kills the server (or its host's daemon) once it runs */
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_rpc_wait(k, 20000), -IPCF_EUNKNOWN);
        uint64_t took = test_now_ms() - t0; /* from the start of the call */
        printf("%s killed: outcome unknown %llu ms after the call began (the dead interval: 2000 ms)\n",
               (const char *)what, (unsigned long long)took);
        CHECK(took < 10000);
        ipcf_rpc_call_free(k);
        if (!strcmp(what, "daemon")) {
                /* the host is gone: a new call is not sent */
                int64_t v;
                t0 = test_now_ms();
                CHECK_ERR(counter_incr(c, &v, NULL), -EHOSTUNREACH);
                CHECK(test_now_ms() - t0 < 5000);
        }
        ipcf_rpc_client_free(c);
}

/* SLEEP(60 s) declared idempotent by the caller, on beta, whose daemon the
 * test kills: the runtime asks again for a server until the deadline, and
 * the call may have run, so it ends "outcome unknown" (it ended
 * -EHOSTUNREACH, as if not run, once the relay said the host was gone). */
static void idempotent_sleep_then(void *what) {
        hostset_enter(&S, 0);
        ipcf_rpc_client *c = client_of("rpc.die@beta");
        const uint8_t args[4] = { 0, 0, 0xea, 0x60 }; /* 60000 ms */
        /* twice the dead interval (2000 ms): asked again after the host is gone */
        ipcf_rpc_opts o = { .timeout_ms = 4000 };
        void *res = NULL;
        size_t len = 0;
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_rpc_call_raw(c, COUNTER_PROG, COUNTER_V1, SLEEP, IPCF_RPC_IDEMPOTENT, args, sizeof(args), &o,
                                    &res, &len),
                  -IPCF_EUNKNOWN);
        uint64_t took = test_now_ms() - t0;
        printf("%s killed: an idempotent call outcome unknown %llu ms after it began (deadline 4000 ms)\n",
               (const char *)what, (unsigned long long)took);
        CHECK(took < 4000 + 5000);
        free(res);
        ipcf_rpc_client_free(c);
}

static void killed_mid_call_by(const char *what, void (*client)(void *)) {
        start_two(NULL);
        pid_t srv = start_counter("rpc.die", NULL);
        pid_t cl = test_fork(client, (void *)what);
        for (int i = 0; i < 30000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        if (!strcmp(what, "daemon"))
                hostset_kill_host(&S, 1);
        kill(srv, SIGKILL);
        CHECK_EQ(test_wait(cl, 30000), 0);
        test_wait(srv, 5000);
        hostset_stop(&S);
}

static void killed_mid_call(const char *what) {
        killed_mid_call_by(what, sleep_then);
}

TEST_TIMEOUT(a_server_killed_mid_call_on_another_host_leaves_the_outcome_unknown, 120) {
        killed_mid_call("server");
}

TEST_TIMEOUT(a_dead_host_ends_a_call_unknown_and_refuses_new_ones, 120) {
        killed_mid_call("daemon");
}

TEST_TIMEOUT(a_dead_host_ends_an_idempotent_call_unknown, 120) {
        killed_mid_call_by("daemon", idempotent_sleep_then);
}
