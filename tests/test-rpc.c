/*
 * test-rpc.c — remote procedure calls through generated stubs (from
 * tests/rpc/counter.x) against the real daemon, server and client in
 * separate processes: results, payloads of 64 MiB in pieces and at the
 * piece boundaries, calls side by side from four threads, the caller's
 * identity as the facility stamped it, versions, failures, deadlines and
 * cancellation reaching the handler, exactly once under dropped replies and
 * duplicated requests, "outcome unknown" when the server dies mid-call, an
 * idempotent call run again by a restarted server, and the persistent reply
 * cache answering a retried call after a crash without running it again,
 * a call that failed before sending leaving no gap in its slot's sequence
 * numbers, a call given up in pieces leaving its slot usable, a cancelled
 * call ending with the server's verdict (not run: -ECANCELED; ran: what its
 * handler returned; server killed: "outcome unknown"), an idempotent
 * call waiting for room for its session on a restarted server, and a
 * thread stopped while its call waits for a slot holding no other call
 * past its timeout.
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "counter.h"
#include "lib/rpc/rpc.h"
#include "lib/rpc/wire.h"
#include "support/names.h"
#include "support/shell.h"
#include "support/test.h"
#include "rpc/counter-calls.h"

static test_daemon d;

/* What the server process shares with the test (MAP_SHARED). */
struct shared {
        _Atomic int64_t count;     /* INCR executions */
        _Atomic int saw_cancel;    /* SLEEP saw ipcf_rpc_cancelled */
        _Atomic int notes;         /* NOTE calls */
        _Atomic int in_sleep;      /* SLEEP running */
        _Atomic int sleeps;        /* SLEEP calls begun */
        _Atomic int sleep_mode;    /* SLEEP when cancelled: 0 stops, result 1; 1 ignores it, result 2
                                    * at the end; 2 stops, fails -ECANCELED */
        char count_file[256];      /* persistent counter (cache test) */
        _Atomic uint64_t sleep_end_ms; /* when SLEEP's handler last returned (test_now_ms) */
        _Atomic int stop_in_sleep; /* SLEEP stops the server's run (ipcf_rpc_server_stop) */
};
static struct shared *sh;
static ipcf_rpc_server *serving; /* in the server process */

static void shared_init(void) {
        sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        CHECK(sh != MAP_FAILED);
        memset(sh, 0, sizeof(*sh));
}

/* The counter kept in a file, so a restarted server sees it. */
static int64_t file_incr(void) {
        int64_t v = 0;
        FILE *f = fopen(sh->count_file, "r");
        if (f) {
                if (fscanf(f, "%ld", &v) != 1)
                        v = 0;
                fclose(f);
        }
        f = fopen(sh->count_file, "w");
        fprintf(f, "%ld\n", ++v);
        fflush(f);
        fsync(fileno(f));
        fclose(f);
        return v;
}

static int h_incr(ipcf_rpc_ctx *ctx, int64_t *out, void *user) {
        *out = sh->count_file[0] ? file_incr() : atomic_fetch_add(&sh->count, 1) + 1;
        return 0;
}

static int h_get(ipcf_rpc_ctx *ctx, int64_t *out, void *user) {
        *out = atomic_load(&sh->count);
        return 0;
}

static int h_add(ipcf_rpc_ctx *ctx, const add_args *in, int64_t *out, void *user) {
        *out = in->a + in->b;
        return 0;
}

static int h_echo(ipcf_rpc_ctx *ctx, const blob *in, blob *out, void *user) {
        out->blob_len = in->blob_len;
        out->blob_val = in->blob_len ? malloc(in->blob_len) : NULL;
        if (in->blob_len)
                memcpy(out->blob_val, in->blob_val, in->blob_len);
        return 0;
}

static int h_sleep(ipcf_rpc_ctx *ctx, const int32_t *ms, int32_t *out, void *user) {
        atomic_store(&sh->in_sleep, 1);
        atomic_fetch_add(&sh->sleeps, 1);
        if (atomic_load(&sh->stop_in_sleep))
                ipcf_rpc_server_stop(serving);
        int mode = atomic_load(&sh->sleep_mode);
        uint64_t end = test_now_ms() + (uint64_t)*ms;
        *out = mode == 1 ? 2 : 0;
        while (test_now_ms() < end) {
                if (mode != 1 && ipcf_rpc_cancelled(ctx)) {
                        atomic_store(&sh->saw_cancel, 1);
                        *out = 1;
                        break;
                }
                usleep(1000);
        }
        atomic_store(&sh->sleep_end_ms, test_now_ms());
        atomic_store(&sh->in_sleep, 0);
        return mode == 2 && *out == 1 ? -ECANCELED : 0;
}

static int h_fail(ipcf_rpc_ctx *ctx, const int32_t *err, int32_t *out, void *user) {
        return *err;
}

static int h_note(ipcf_rpc_ctx *ctx, const int32_t *n, void *user) {
        atomic_fetch_add(&sh->notes, *n);
        return 0;
}

static int h_big(ipcf_rpc_ctx *ctx, const uint32_t *n, blob *out, void *user) {
        out->blob_len = *n;
        out->blob_val = malloc(*n ? *n : 1);
        test_fill(out->blob_val, *n, *n);
        return 0;
}

static int h_sum(ipcf_rpc_ctx *ctx, const blob *in, int64_t *out, void *user) {
        *out = (int64_t)test_hash(in->blob_val, in->blob_len, 0);
        return 0;
}

/* KINDED: the same case back, its int arm plus one, its string arm with
 * "!" appended. */
static int h_kinded(ipcf_rpc_ctx *ctx, const kinded *in, kinded *out, void *user) {
        out->kind = in->kind;
        if (in->kind == 1)
                out->kinded_u.kind = in->kinded_u.kind + 1;
        else if (in->kind == 2 && asprintf(&out->kinded_u.name, "%s!", in->kinded_u.name) < 0)
                return -ENOMEM;
        return 0;
}

/* REVERSE: the list in the other order (out is the first node; the
 * stubs free the ones after it). */
static int h_reverse(ipcf_rpc_ctx *ctx, const item *in, item *out, void *user) {
        item *rev = NULL;
        for (const item *i = in; i; i = i->next) {
                item *n = malloc(sizeof(*n));
                if (!n) {
                        for (item *k; rev; rev = k) {
                                k = rev->next;
                                free(rev);
                        }
                        return -ENOMEM;
                }
                *n = (item){ .value = i->value, .next = rev };
                rev = n;
        }
        *out = *rev; /* in has one node at least: rev is not NULL */
        free(rev);
        return 0;
}

static const counter_v1_handlers handlers = {
        .incr = h_incr, .get = h_get, .add = h_add, .echo = h_echo, .sleep = h_sleep,
        .fail = h_fail, .note = h_note, .who = counter_h_who, .big = h_big, .sum = h_sum,
        .kinded = h_kinded, .reverse = h_reverse,
};

struct server_args {
        const char *name;
        const char *cache;
        const char *impair;
        unsigned threads;
        uint32_t max_msg;
        uint32_t max_sessions;
        uint64_t max_memory;
};

static void server(void *arg) {
        const struct server_args *a = arg;
        if (a->impair)
                setenv("IPCF_RPC_IMPAIR", a->impair, 1);
        ipcf_rpc_server_opts o = { .cache_path = a->cache, .max_msg = a->max_msg, .max_sessions = a->max_sessions,
                                   .max_memory = a->max_memory };
        ipcf_rpc_server *s;
        CHECK_OK(ipcf_rpc_server_new(a->name, &o, &s));
        serving = s;
        CHECK_OK(counter_v1_serve(s, &handlers, NULL));
        /* until the case stops it (stop_server, or the harness at the case's
         * end): a server that quit on a timer of its own mid-case would make
         * the call in flight "outcome unknown" (test-rpc-hosts.c) */
        CHECK_OK(ipcf_rpc_server_run(s, a->threads ? a->threads : 2, -1));
        ipcf_rpc_server_free(s);
}

static pid_t start_server(struct server_args *a) {
        pid_t p = test_fork(server, a);
        test_wait_for_name(a->name, 10000);
        return p;
}

/* A server forked now (while this process has one thread: see test_fork)
 * that starts when start_gated_server() opens its gate. */
static pid_t fork_gated_server(struct server_args *a, int *gate) { return test_fork_gated(server, a, gate); }

static void start_gated_server(struct server_args *a, int *gate) {
        test_gate_open(gate);
        test_wait_for_name(a->name, 10000);
}

static void stop_server(pid_t p) {
        kill(p, SIGKILL);
        test_wait(p, 5000);
}

TEST(calls_return_results_and_carry_the_callers_identity) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.basic" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.basic", NULL, &c));
        for (int64_t i = 1; i <= 1000; i++) {
                int64_t v = 0;
                CHECK_OK(counter_incr(c, &v, NULL));
                CHECK_EQ(v, i);
        }
        add_args aa = { 40, 2 };
        int64_t sum;
        CHECK_OK(counter_add(c, &aa, &sum, NULL));
        CHECK_EQ(sum, 42);
        /* the identity is the facility's, the deadline the caller's */
        who w;
        ipcf_rpc_opts o = { .timeout_ms = 7000 };
        CHECK_OK(counter_who(c, &w, &o));
        CHECK_EQ(w.pid, getpid());
        CHECK_EQ(w.uid, getuid());
        CHECK(strstr(w.prog, "test-rpc") != NULL);
        /* this host's name as the daemon has it (no [hosts] name: the first
         * label of gethostname()) */
        char host[256] = "";
        gethostname(host, sizeof(host) - 1);
        host[strcspn(host, ".")] = 0;
        CHECK(strcmp(w.host, host) == 0);
        /* (the call's own, not the default 20 s; a loaded machine may take
         * seconds to bring it to the handler) */
        CHECK(w.deadline_left_ms > 1000 && w.deadline_left_ms <= 7000);
        who_free(&w);
        /* [timeout(20000)] of the program is the default */
        CHECK_OK(counter_who(c, &w, NULL));
        CHECK(w.deadline_left_ms > 10000 && w.deadline_left_ms <= 20000);
        who_free(&w);
        /* the handler's error */
        int32_t code = -EACCES, r32;
        ipcf_rpc_info info;
        o = (ipcf_rpc_opts){ .info = &info };
        CHECK_ERR(counter_fail(c, &code, &r32, &o), -EREMOTEIO);
        CHECK_EQ(info.remote_error, -EACCES);
        /* a version the server does not serve: the range it does */
        int64_t v;
        CHECK_ERR(counter_incr3(c, &v, &o), -EPROTONOSUPPORT);
        CHECK_EQ(info.vers_low, 1);
        CHECK_EQ(info.vers_high, 1);
        uint32_t lo, hi;
        CHECK_OK(ipcf_rpc_client_versions(c, COUNTER_PROG, &lo, &hi));
        CHECK(lo == 1 && hi == 1);
        /* oneway: returns once taken */
        int32_t n = 5;
        CHECK_OK(counter_note(c, &n, NULL));
        for (int i = 0; i < 500 && atomic_load(&sh->notes) != 5; i++)
                usleep(2000);
        CHECK_EQ(atomic_load(&sh->notes), 5);
        /* the null procedure every version has */
        static const ipcf_rpc_proc nullproc = { .number = 0, .name = "NULL" };
        CHECK_OK(ipcf_rpc_invoke(c, &counter_v1_desc, &nullproc, NULL, NULL, NULL));
        ipcf_rpc_client_free(c);
        /* a name nobody serves: not sent, as ipcf_call says */
        CHECK_OK(ipcf_rpc_client_new("rpc.nobody", NULL, &c));
        CHECK_ERR(counter_incr(c, &v, NULL), -ENOENT);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(large_arguments_and_results_in_pieces, 180) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.big" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.big", NULL, &c));
        size_t sizes[] = { 0, 1, 1000, IPCF_CALL_MAX - 200, IPCF_CALL_MAX * 3 + 17, 64u << 20 };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                blob in = { (uint32_t)n, malloc(n ? n : 1) };
                test_fill(in.blob_val, n, i + 1);
                int64_t h;
                ipcf_rpc_opts o = { .timeout_ms = 60000 };
                CHECK_OK(counter_sum(c, &in, &h, &o));
                CHECK_EQ(h, (int64_t)test_hash(in.blob_val, n, 0));
                if (n <= (8u << 20)) {
                        blob out;
                        CHECK_OK(counter_echo(c, &in, &out, &o));
                        CHECK_EQ(out.blob_len, n);
                        if (n)
                                CHECK_MEM(out.blob_val, in.blob_val, n);
                        blob_free(&out);
                }
                free(in.blob_val);
        }
        /* a 20 MiB result */
        uint32_t n = 20u << 20;
        blob out;
        ipcf_rpc_opts o = { .timeout_ms = 60000 };
        CHECK_OK(counter_big(c, &n, &out, &o));
        CHECK_EQ(out.blob_len, n);
        char *want = malloc(n);
        test_fill(want, n, n);
        CHECK_MEM(out.blob_val, want, n);
        free(want);
        blob_free(&out);
        /* over the client's maximum: refused before sending */
        ipcf_rpc_client_free(c);
        ipcf_rpc_client_opts co = { .max_msg = 1u << 20 };
        CHECK_OK(ipcf_rpc_client_new("rpc.big", &co, &c));
        blob big = { 2u << 20, calloc(1, 2u << 20) };
        int64_t h;
        CHECK_ERR(counter_sum(c, &big, &h, NULL), -EMSGSIZE);
        free(big.blob_val);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* The XDR of a blob of n bytes: its length word and the bytes padded to 4. */
static uint64_t blob_xdr(size_t n) {
        return 4 + (((uint64_t)n + 3) & ~3ull);
}

/* Arguments and results around the piece sizes: a call whose arguments
 * fill one piece exactly is run from the request as it came (server.c,
 * one piece), one 4 bytes longer goes in two pieces and is reassembled; a
 * result that fills one reply exactly, and one that needs a fetch. */
TEST_TIMEOUT(arguments_and_results_at_the_piece_boundaries, 120) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.edge" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.edge", NULL, &c));
        size_t sizes[] = { RPC_PIECE - 8, RPC_PIECE - 4, RPC_PIECE - 3, RPC_PIECE,
                           RPC_REP_PIECE - 4, RPC_REP_PIECE - 3, 2 * RPC_PIECE - 4, 2 * RPC_PIECE - 3 };
        for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
                size_t n = sizes[i];
                uint64_t pieces = (blob_xdr(n) + RPC_PIECE - 1) / RPC_PIECE;
                blob in = { (uint32_t)n, malloc(n) };
                test_fill(in.blob_val, n, 100 + i);
                ipcf_rpc_info info;
                ipcf_rpc_opts o = { .timeout_ms = 30000, .info = &info };
                int64_t h;
                CHECK_OK(counter_sum(c, &in, &h, &o));
                CHECK_EQ(h, (int64_t)test_hash(in.blob_val, n, 0));
                CHECK(info.transmissions >= pieces); /* (more if one was sent again) */
                if (pieces == 2) /* two pieces: never as one */
                        CHECK(info.transmissions >= 2);
                blob out;
                CHECK_OK(counter_echo(c, &in, &out, &o));
                CHECK_EQ(out.blob_len, n);
                CHECK_MEM(out.blob_val, in.blob_val, n);
                blob_free(&out);
                free(in.blob_val);
        }
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

struct side_args {
        ipcf_rpc_client *c;
        unsigned id, calls;
        _Atomic int *bad;
};

/* Calls of many sizes (one piece, and a few in two) from one thread, each
 * result checked against its own arguments. */
static void *side_caller(void *arg) {
        struct side_args *a = arg;
        size_t cap = RPC_PIECE + 4096;
        char *buf = malloc(cap);
        for (unsigned i = 0; i < a->calls; i++) {
                size_t n = i % 16 == 15 ? RPC_PIECE - 3 + i % 7 : (a->id * 7919u + i * 131u) % 9000u;
                test_fill(buf, n, (uint64_t)a->id << 32 | i);
                blob in = { (uint32_t)n, buf }, out;
                ipcf_rpc_opts o = { .timeout_ms = 60000 };
                if (counter_echo(a->c, &in, &out, &o) != 0 || out.blob_len != n ||
                    (n && memcmp(out.blob_val, buf, n) != 0))
                        atomic_fetch_add(a->bad, 1);
                else
                        blob_free(&out);
                int64_t h;
                if (counter_sum(a->c, &in, &h, &o) != 0 || h != (int64_t)test_hash(buf, n, 0))
                        atomic_fetch_add(a->bad, 1);
        }
        free(buf);
        return NULL;
}

/* Four server workers, each running a call from its own request buffer
 * while the others take the next ones: four caller threads on one client
 * (its slots, its spare call, its transmissions' list) each get back
 * exactly their own arguments. */
TEST_TIMEOUT(calls_side_by_side_each_get_their_own_arguments_back, 180) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.side", .threads = 4 };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.side", NULL, &c));
        _Atomic int bad = 0;
        unsigned calls = getenv("IPCF_TEST_QUICK") ? 100 : 500;
        struct side_args sa[4];
        pthread_t t[4];
        for (unsigned i = 0; i < 4; i++) {
                sa[i] = (struct side_args){ c, i, calls, &bad };
                CHECK(pthread_create(&t[i], NULL, side_caller, &sa[i]) == 0);
        }
        for (unsigned i = 0; i < 4; i++)
                pthread_join(t[i], NULL);
        CHECK_EQ(atomic_load(&bad), 0);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

TEST(cancel_and_deadline_reach_the_handler) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.cancel" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.cancel", NULL, &c));
        /* asynchronous call, cancelled while the handler runs */
        int32_t ms = 10000, res = -1;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        for (int i = 0; i < 2000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        CHECK_ERR(ipcf_rpc_wait(k, 0), -EAGAIN);
        CHECK_OK(ipcf_rpc_cancel(k));
        /* it ran: the handler stopped early with its result (1), which is
         * the call's outcome, not "cancelled" */
        CHECK_OK(ipcf_rpc_wait(k, 20000));
        CHECK_EQ(res, 1);
        ipcf_rpc_call_free(k);
        for (int i = 0; i < 2000 && !atomic_load(&sh->saw_cancel); i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->saw_cancel), 1);
        /* a deadline: the handler sees it pass; the caller cannot know the outcome */
        atomic_store(&sh->saw_cancel, 0);
        for (int i = 0; i < 2000 && atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        ipcf_rpc_opts o = { .timeout_ms = 300 };
        uint64_t t0 = test_now_ms();
        /* the handler stops at the deadline (result 1) just as the caller
         * gives up (outcome unknown): whichever comes first */
        res = -1;
        int r = counter_sleep(c, &ms, &res, &o);
        CHECK((r == 0 && res == 1) || r == -IPCF_EUNKNOWN);
        CHECK(test_now_ms() - t0 < 5000);
        for (int i = 0; i < 2000 && !atomic_load(&sh->saw_cancel); i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->saw_cancel), 1);
        /* the slot is usable again once the handler stopped */
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        /* async calls in parallel, each its own result */
        ipcf_rpc_call *ks[8];
        add_args args[8];
        int64_t sums[8];
        for (int i = 0; i < 8; i++) {
                args[i] = (add_args){ i, 100 };
                CHECK_OK(counter_add_start(c, &args[i], &sums[i], NULL, &ks[i]));
        }
        for (int i = 7; i >= 0; i--) {
                CHECK_OK(ipcf_rpc_wait(ks[i], 5000));
                CHECK_EQ(sums[i], 100 + i);
                ipcf_rpc_call_free(ks[i]);
        }
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

TEST(a_deadline_before_sending_is_a_timeout) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.slots" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client_opts co = { .slots = 1 };
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.slots", &co, &c));
        int32_t ms = 2000, res;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        /* the only slot is taken: this call is never sent */
        int64_t v;
        ipcf_rpc_opts o = { .timeout_ms = 200 };
        CHECK_ERR(counter_incr(c, &v, &o), -ETIMEDOUT);
        CHECK_OK(ipcf_rpc_wait(k, 10000));
        CHECK_EQ(res, 0);
        ipcf_rpc_call_free(k);
        CHECK_OK(counter_get(c, &v, NULL));
        CHECK_EQ(v, 0); /* INCR never ran */
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

static unsigned quick(unsigned n) {
        return getenv("IPCF_TEST_QUICK") ? n / 10 : n;
}

TEST_TIMEOUT(exactly_once_when_replies_drop_and_requests_duplicate, 600) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.once", .impair = "drop_reply=0.01,seed=7" };
        pid_t srv = start_server(&a);
        setenv("IPCF_RPC_IMPAIR", "dup=0.01,seed=11", 1);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.once", NULL, &c));
        unsetenv("IPCF_RPC_IMPAIR");
        unsigned n = quick(100000);
        uint64_t sent = 0, cached = 0;
        counter_incr_n(c, n, &sent, &cached);
        CHECK_EQ(atomic_load(&sh->count), n);
        /* the impairment did happen: copies were sent and answered from the cache */
        CHECK(sent > n + n / 200);
        CHECK(cached > 0);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

static void *call_in_thread(void *arg) {
        ipcf_rpc_client *c = arg;
        int64_t v = 0;
        ipcf_rpc_info info = { 0 };
        ipcf_rpc_opts o = { .timeout_ms = 30000, .info = &info };
        int r = counter_incr(c, &v, &o);
        int64_t *res = malloc(3 * sizeof(int64_t));
        res[0] = r;
        res[1] = v;
        res[2] = info.from_cache;
        return res;
}

TEST(a_server_killed_mid_call_leaves_the_outcome_unknown) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.kill" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.kill", NULL, &c));
        int32_t ms = 20000, res;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        kill(srv, SIGKILL);
        CHECK_ERR(ipcf_rpc_wait(k, 10000), -IPCF_EUNKNOWN);
        ipcf_rpc_call_free(k);
        test_wait(srv, 5000);
        /* the daemon may list the dead server's name a moment longer:
         * start_server would take that for the new one, and the call below
         * could find no server (-ENOENT: seen once in five runs) */
        test_wait_for_name_gone("rpc.kill", 10000);
        /* a new server: the old session is gone; new calls work */
        atomic_store(&sh->count, 0);
        srv = start_server(&a);
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* SLEEP(ms) by number, declared idempotent by the caller: the runtime may
 * run it again. Its result (0: slept the whole time) and the call's outcome. */
struct idem_call {
        ipcf_rpc_client *c;
        int32_t ms;
        int timeout_ms;
        int r;
        int32_t res;
        uint64_t took_ms;
};

static void *sleep_idempotent(void *arg) {
        struct idem_call *k = arg;
        uint8_t args[4] = { (uint8_t)(k->ms >> 24), (uint8_t)(k->ms >> 16), (uint8_t)(k->ms >> 8), (uint8_t)k->ms };
        ipcf_rpc_opts o = { .timeout_ms = k->timeout_ms };
        void *res = NULL;
        size_t len = 0;
        uint64_t t0 = test_now_ms();
        k->r = ipcf_rpc_call_raw(k->c, COUNTER_PROG, COUNTER_V1, SLEEP, IPCF_RPC_IDEMPOTENT, args, sizeof(args), &o,
                                 &res, &len);
        k->took_ms = test_now_ms() - t0;
        const uint8_t *b = res;
        k->res = k->r == 0 && len == 4 ? (int32_t)((uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3])
                                       : -1;
        free(res);
        return NULL;
}


static void *sleep_1500_other(void *arg) {
        int32_t ms = 1500, res;
        /* Normally this takes the only session first. Under load the
         * idempotent call's poll (every 200 ms) may come first: then this
         * one finds no room (-EBUSY) until that session is idle, and tries
         * again (a race of the test, not of the runtime). */
        int r;
        for (int i = 0; i < 200 && (r = counter_sleep(arg, &ms, &res, NULL)) == -EBUSY; i++)
                usleep(50 * 1000);
        CHECK_OK(r);
        return NULL;
}

/* An idempotent call whose server died finds the restarted one with no
 * room for its session (max_sessions 1, held by another client's running
 * call: -EBUSY): it keeps trying within its deadline, as while the name is
 * gone, and runs once the other session is idle (evicted). */
TEST_TIMEOUT(an_idempotent_call_waits_for_room_on_a_restarted_server, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.room", .max_sessions = 1 };
        pid_t srv = start_server(&a);
        struct idem_call k = { .ms = 1000, .timeout_ms = 20000 };
        ipcf_rpc_client *other;
        CHECK_OK(ipcf_rpc_client_new("rpc.room", NULL, &k.c));
        CHECK_OK(ipcf_rpc_client_new("rpc.room", NULL, &other));
        int gate;
        pid_t srv2 = fork_gated_server(&a, &gate);
        pthread_t t, t2;
        CHECK_EQ(pthread_create(&t, NULL, sleep_idempotent, &k), 0);
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        stop_server(srv);
        usleep(1000 * 1000); /* the name gone long enough that the call polls every 200 ms */
        atomic_store(&sh->in_sleep, 0);
        start_gated_server(&a, &gate);
        srv = srv2;
        CHECK_EQ(pthread_create(&t2, NULL, sleep_1500_other, other), 0); /* takes the only session */
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_EQ(pthread_join(t2, NULL), 0);
        printf("  idempotent call after the restart: %d in %lu ms\n", k.r, (unsigned long)k.took_ms);
        CHECK_OK(k.r);
        CHECK_EQ(k.res, 0);
        CHECK_EQ(atomic_load(&sh->sleeps), 3);
        ipcf_rpc_client_free(k.c);
        ipcf_rpc_client_free(other);
        stop_server(srv);
        test_daemon_stop(&d);
}
/* The server SIGKILLed while the call runs: an idempotent call is run again
 * once a server is back under the name (within the deadline); with none
 * back by the deadline its outcome is unknown (it may have run), never a
 * transport error at once. */
TEST(an_idempotent_call_runs_again_on_a_restarted_server) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.idem" };
        pid_t srv = start_server(&a);
        struct idem_call k = { .ms = 1000, .timeout_ms = 20000 };
        CHECK_OK(ipcf_rpc_client_new("rpc.idem", NULL, &k.c));
        int gate;
        pid_t srv2 = fork_gated_server(&a, &gate); /* the restarted one */
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, sleep_idempotent, &k), 0);
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        stop_server(srv);
        usleep(300 * 1000); /* the name is gone a while */
        atomic_store(&sh->in_sleep, 0);
        start_gated_server(&a, &gate);
        srv = srv2;
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_OK(k.r);
        CHECK_EQ(k.res, 0);                      /* the new server slept the whole second */
        CHECK_EQ(atomic_load(&sh->sleeps), 2);   /* run once by each server */
        /* no server comes back: "outcome unknown" at the deadline */
        k.timeout_ms = 1500;
        CHECK_EQ(pthread_create(&t, NULL, sleep_idempotent, &k), 0);
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        stop_server(srv);
        CHECK_EQ(pthread_join(t, NULL), 0);
        CHECK_ERR(k.r, -IPCF_EUNKNOWN);
        CHECK(k.took_ms >= 1000 && k.took_ms < 1500 + 1500);
        ipcf_rpc_client_free(k.c);
        test_daemon_stop(&d);
}

TEST(the_persistent_cache_answers_a_retry_after_a_crash) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        char db[300];
        snprintf(d.dir + strlen(d.dir), 1, "%s", "");
        snprintf(db, sizeof(db), "%s/replies.db", d.dir);
        snprintf(sh->count_file, sizeof(sh->count_file), "%s/count", d.dir);
        /* the first server dies right after caching its first reply */
        struct server_args a = { .name = "rpc.durable", .cache = db, .impair = "kill_after=1" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.durable", NULL, &c));
        /* the one restarted below, forked before the caller's thread runs */
        struct server_args b = { .name = "rpc.durable", .cache = db };
        int gate;
        pid_t srv2 = fork_gated_server(&b, &gate);
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, call_in_thread, c), 0);
        CHECK_EQ(test_wait(srv, 10000), 128 + SIGKILL);
        /* it ran the call once */
        FILE *f = fopen(sh->count_file, "r");
        CHECK(f);
        long cnt = 0;
        CHECK_EQ(fscanf(f, "%ld", &cnt), 1);
        fclose(f);
        CHECK_EQ(cnt, 1);
        /* restarted, it answers the retried call from its cache */
        start_gated_server(&b, &gate);
        srv = srv2;
        int64_t *r;
        CHECK_EQ(pthread_join(t, (void **)&r), 0);
        CHECK_EQ(r[0], 0);
        CHECK_EQ(r[1], 1);
        CHECK_EQ(r[2], 1); /* from the cache */
        free(r);
        f = fopen(sh->count_file, "r");
        CHECK_EQ(fscanf(f, "%ld", &cnt), 1);
        fclose(f);
        CHECK_EQ(cnt, 1); /* not run again */
        /* and goes on */
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 2);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A call that fails before anything of it is sent leaves its slot's
 * sequence as it was: the server, which never saw it, takes the slot's next
 * call as the next (not MISORDERED). Each way a call can fail before
 * sending, on a client of one slot, followed by a call on that slot: bad
 * arguments, arguments over max_msg, and no server under the name (the
 * session kept: the server has a persistent cache, and comes back). */
TEST(a_call_that_never_left_leaves_its_slot_in_sequence) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        char db[300];
        snprintf(db, sizeof(db), "%s/replies.db", d.dir);
        struct server_args a = { .name = "rpc.gap", .cache = db };
        pid_t srv = start_server(&a);
        struct server_args b = { .name = "rpc.gap", .cache = db };
        int gate;
        pid_t srv2 = fork_gated_server(&b, &gate);
        ipcf_rpc_client_opts co = { .slots = 1, .max_msg = 4096 };
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.gap", &co, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        /* arguments that do not encode (raw XDR not a multiple of 4) */
        void *res;
        size_t res_len;
        uint8_t three[3] = { 0 };
        CHECK_ERR(ipcf_rpc_call_raw(c, COUNTER_PROG, COUNTER_V1, 1, 0, three, 3, NULL, &res, &res_len), -EINVAL);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 2);
        /* arguments over the client's max_msg */
        blob in = { 8192, calloc(1, 8192) };
        blob out;
        CHECK_ERR(counter_echo(c, &in, &out, NULL), -EMSGSIZE);
        free(in.blob_val);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 3);
        /* no server under the name: nothing sent, so not "outcome unknown" */
        stop_server(srv);
        test_wait_for_name_gone("rpc.gap", 10000);
        ipcf_rpc_opts o = { .timeout_ms = 300 };
        int r = counter_incr(c, &v, &o);
        CHECK(r == -ECONNRESET || r == -ENOENT || r == -EPIPE || r == -ECONNREFUSED || r == -ETIMEDOUT);
        CHECK_EQ(atomic_load(&sh->count), 3); /* not run */
        /* the restarted server has the session from its cache: the slot's
         * next call is the one after INCR 3 */
        start_gated_server(&b, &gate);
        srv = srv2;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 4);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 5);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

static void *sleep_3s(void *arg) {
        ipcf_rpc_client *c = arg;
        int32_t ms = 3000, res;
        CHECK_OK(counter_sleep(c, &ms, &res, NULL));
        return NULL;
}

/* A call in pieces whose deadline passes while its later pieces wait for
 * room (both workers busy, nothing read) ends "outcome unknown" with its
 * first pieces at the server; the slot's next call drops them and runs
 * (it was MISORDERED on that slot for good: the server kept waiting for
 * the rest). */
TEST_TIMEOUT(a_call_given_up_in_pieces_leaves_its_slot_usable, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.pieces" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *busy, *c;
        ipcf_rpc_client_opts co = { .slots = 1 };
        CHECK_OK(ipcf_rpc_client_new("rpc.pieces", NULL, &busy));
        CHECK_OK(ipcf_rpc_client_new("rpc.pieces", &co, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
                CHECK_EQ(pthread_create(&t[i], NULL, sleep_3s, busy), 0);
        while (atomic_load(&sh->sleeps) < 2)
                usleep(1000);
        size_t n = 32u << 20;
        blob in = { (uint32_t)n, calloc(1, n) };
        CHECK(in.blob_val);
        int64_t h;
        ipcf_rpc_opts o = { .timeout_ms = 300 };
        int r = counter_sum(c, &in, &h, &o);
        CHECK(r == -IPCF_EUNKNOWN || r == 0); /* 0: a load spike outlasted the sleeps */
        free(in.blob_val);
        for (int i = 0; i < 2; i++)
                CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 2);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 3);
        ipcf_rpc_client_free(c);
        ipcf_rpc_client_free(busy);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A call that times out while the slot's last call (itself given up) still
 * runs at the server was answered SLOT_BUSY only: the server never took its
 * number. It ends "outcome unknown" (a copy still on its way may yet run
 * it), and the slot's next calls run, each at most once: the server takes a
 * later number as the next call (the numbers between were never taken, and
 * a late copy of one is MISORDERED). They were -EPROTO for good: the gap
 * left the slot MISORDERED. */
TEST_TIMEOUT(a_call_timed_out_behind_a_running_one_leaves_its_slot_usable, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        atomic_store(&sh->sleep_mode, 1); /* the SLEEP outlives its deadline */
        struct server_args a = { .name = "rpc.behind" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        ipcf_rpc_client_opts co = { .slots = 1 };
        CHECK_OK(ipcf_rpc_client_new("rpc.behind", &co, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        int32_t ms = 1000, res;
        ipcf_rpc_opts o = { .timeout_ms = 100 };
        int r = counter_sleep(c, &ms, &res, &o);
        CHECK(r == -IPCF_EUNKNOWN || r == 0); /* 0: a load spike held this thread 1 s */
        while (r == -IPCF_EUNKNOWN && atomic_load(&sh->sleeps) < 1)
                usleep(1000);
        int r2 = counter_incr(c, &v, &o); /* while the SLEEP runs: SLOT_BUSY */
        CHECK(r2 == -IPCF_EUNKNOWN || r2 == 0);
        int64_t done = 1 + (r2 == 0);
        printf("  SLEEP: %d, INCR behind it: %d\n", r, r2);
        for (int i = 0; i < 3; i++) {
                r = counter_incr(c, &v, NULL);
                CHECK_EQ(r, 0);
                done++;
                CHECK(v == done || (r2 != 0 && v == done + 1)); /* the INCR given up ran at most once */
        }
        int64_t n = atomic_load(&sh->count);
        printf("  INCR ran %ld times, %ld of them calls that succeeded\n", (long)n, (long)done);
        CHECK(n == done || (r2 != 0 && n == done + 1));
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

static void *sleep_any(void *arg) {
        ipcf_rpc_client *c = arg;
        int32_t ms = 5000, res;
        ipcf_rpc_opts o = { .timeout_ms = 8000 };
        (void)counter_sleep(c, &ms, &res, &o); /* its server is killed */
        return NULL;
}

struct sum_call {
        ipcf_rpc_client *c;
        int timeout_ms; /* of the SLEEP */
        int r;
};

static void *sum_32m(void *arg) {
        struct sum_call *k = arg;
        size_t n = 32u << 20;
        blob in = { (uint32_t)n, calloc(1, n) };
        CHECK(in.blob_val);
        int64_t h;
        ipcf_rpc_opts o = { .timeout_ms = 1000 };
        k->r = counter_sum(k->c, &in, &h, &o);
        free(in.blob_val);
        return NULL;
}

static void *sleep_20s(void *arg) {
        struct sum_call *k = arg;
        int32_t ms = 20000, res;
        ipcf_rpc_opts o = { .timeout_ms = k->timeout_ms };
        k->r = counter_sleep(k->c, &ms, &res, &o);
        return NULL;
}

/* A server with a persistent cache SIGKILLed while a call was sent to it,
 * and the caller gives the call up ("outcome unknown") before the server is
 * back: the restarted server has the slot as its cache had it, one call
 * behind the caller's; the slot's next call runs (it was MISORDERED: the
 * gap of the call given up). Twice: a call in pieces whose later pieces wait
 * for room (both workers sleep), and a call killed while it runs (never
 * recorded: it is not run again). And a slot's first call killed while it
 * runs, retried (not given up): UNKNOWN, not run again (it ran again: a
 * slot with no reply recorded was not taken as loaded). */
TEST_TIMEOUT(a_call_given_up_across_a_crash_leaves_its_slot_usable, 90) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        char db[300];
        snprintf(db, sizeof(db), "%s/replies.db", d.dir);
        struct server_args a = { .name = "rpc.gone", .cache = db };
        pid_t srv = start_server(&a);
        int gate2, gate3, gate4;
        pid_t srv2 = fork_gated_server(&a, &gate2);
        pid_t srv3 = fork_gated_server(&a, &gate3);
        pid_t srv4 = fork_gated_server(&a, &gate4);
        ipcf_rpc_client *busy, *c;
        ipcf_rpc_client_opts co = { .slots = 1 };
        CHECK_OK(ipcf_rpc_client_new("rpc.gone", NULL, &busy));
        CHECK_OK(ipcf_rpc_client_new("rpc.gone", &co, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        /* 1. in pieces: both workers sleep, the pieces wait for room */
        pthread_t t[3];
        for (int i = 0; i < 2; i++)
                CHECK_EQ(pthread_create(&t[i], NULL, sleep_any, busy), 0);
        while (atomic_load(&sh->sleeps) < 2)
                usleep(1000);
        struct sum_call k = { .c = c };
        CHECK_EQ(pthread_create(&t[2], NULL, sum_32m, &k), 0);
        usleep(300 * 1000);
        stop_server(srv);
        CHECK_EQ(pthread_join(t[2], NULL), 0);
        /* given up before the server is back (or, under a load that kept
         * it from sending before the kill, never sent) */
        CHECK(k.r == -IPCF_EUNKNOWN || k.r == -ECONNRESET || k.r == -ENOENT || k.r == -EPIPE ||
              k.r == -ECONNREFUSED);
        start_gated_server(&a, &gate2);
        srv = srv2;
        for (int i = 0; i < 2; i++) /* their retries: UNKNOWN */
                CHECK_EQ(pthread_join(t[i], NULL), 0);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 2);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 3);
        /* 2. killed while it runs, given up before the server is back */
        atomic_store(&sh->sleeps, 0);
        k.timeout_ms = 1500;
        CHECK_EQ(pthread_create(&t[2], NULL, sleep_20s, &k), 0);
        for (int i = 0; i < 10000 && atomic_load(&sh->sleeps) < 1; i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->sleeps), 1);
        stop_server(srv);
        CHECK_EQ(pthread_join(t[2], NULL), 0);
        CHECK_ERR(k.r, -IPCF_EUNKNOWN);
        start_gated_server(&a, &gate3);
        srv = srv3;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 4);
        CHECK_EQ(atomic_load(&sh->sleeps), 1); /* the SLEEP given up did not run again */
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 5);
        /* 3. a slot's first call (no reply of it recorded), killed while it
         * runs and retried on the restarted server: UNKNOWN, not run again */
        ipcf_rpc_client *c3;
        CHECK_OK(ipcf_rpc_client_new("rpc.gone", &co, &c3));
        atomic_store(&sh->sleeps, 0);
        struct sum_call k3 = { .c = c3, .timeout_ms = 10000 };
        CHECK_EQ(pthread_create(&t[2], NULL, sleep_20s, &k3), 0);
        for (int i = 0; i < 10000 && atomic_load(&sh->sleeps) < 1; i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->sleeps), 1);
        stop_server(srv);
        start_gated_server(&a, &gate4);
        srv = srv4;
        CHECK_EQ(pthread_join(t[2], NULL), 0);
        CHECK_ERR(k3.r, -IPCF_EUNKNOWN);
        CHECK_EQ(atomic_load(&sh->sleeps), 1);
        CHECK_OK(counter_incr(c3, &v, NULL));
        CHECK_EQ(v, 6);
        ipcf_rpc_client_free(c3);
        ipcf_rpc_client_free(c);
        ipcf_rpc_client_free(busy);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A call sent to a server with a persistent cache, not driven while that
 * server is SIGKILLed mid-call and restarted (an asynchronous call nobody
 * waits for; another call of the client meanwhile sees the break and makes
 * the new channel). Its first wait must not resend it to the restarted
 * server as a new call (without the retry flag the restored slot takes it
 * as the next call and runs it a second time): "outcome unknown", run once. */
TEST_TIMEOUT(an_undriven_call_is_not_resent_as_new_to_a_restarted_server, 90) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        char db[300];
        snprintf(db, sizeof(db), "%s/replies.db", d.dir);
        struct server_args a = { .name = "rpc.resend", .cache = db };
        pid_t srv = start_server(&a);
        int gate;
        pid_t srv2 = fork_gated_server(&a, &gate);
        ipcf_rpc_client_opts co = { .slots = 2 };
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.resend", &co, &c));
        /* both slots get a recorded reply */
        ipcf_rpc_call *ki[2];
        int64_t vi[2];
        for (int i = 0; i < 2; i++)
                CHECK_OK(counter_incr_start(c, &vi[i], NULL, &ki[i]));
        for (int i = 0; i < 2; i++) {
                CHECK_OK(ipcf_rpc_wait(ki[i], 10000));
                ipcf_rpc_call_free(ki[i]);
        }
        /* two calls running on the two slots */
        int32_t ms = 20000, ra = -1, rb = -1;
        ipcf_rpc_opts o = { .timeout_ms = 6000 };
        ipcf_rpc_call *ka, *kb;
        CHECK_OK(counter_sleep_start(c, &ms, &ra, &o, &ka));
        CHECK_OK(counter_sleep_start(c, &ms, &rb, &o, &kb));
        for (int i = 0; i < 10000 && atomic_load(&sh->sleeps) < 2; i++)
                usleep(1000);
        CHECK_EQ(atomic_load(&sh->sleeps), 2);
        stop_server(srv);
        start_gated_server(&a, &gate);
        srv = srv2;
        CHECK_ERR(ipcf_rpc_wait(ka, 10000), -IPCF_EUNKNOWN);
        CHECK_ERR(ipcf_rpc_wait(kb, 10000), -IPCF_EUNKNOWN);
        ipcf_rpc_call_free(ka);
        ipcf_rpc_call_free(kb);
        usleep(300 * 1000);
        CHECK_EQ(atomic_load(&sh->sleeps), 2); /* neither ran again */
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* Arguments and results beyond either side's max_msg: a clear -EMSGSIZE
 * within the call's deadline, nothing run, nothing wedged: the next calls
 * on the client (and its slots) run. The server takes 1 MiB; a client that
 * allows 128 MiB sends 100 MiB (the server refuses it on its first piece);
 * a result of 8 MiB passes the server's bound, one of 2 MiB a client's of
 * 1 MiB. And the bound is configurable: 100 MiB each way with 128 MiB. */
TEST_TIMEOUT(arguments_and_results_beyond_max_msg_fail_cleanly, 120) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.bound", .max_msg = 1u << 20 };
        pid_t srv = start_server(&a);
        ipcf_rpc_client_opts big = { .slots = 2, .max_msg = 128u << 20 }, small = { .max_msg = 1u << 20 };
        ipcf_rpc_client *c, *cs;
        CHECK_OK(ipcf_rpc_client_new("rpc.bound", &big, &c));
        CHECK_OK(ipcf_rpc_client_new("rpc.bound", &small, &cs));
        size_t n = 100u << 20;
        blob in = { (uint32_t)n, calloc(1, n) };
        CHECK(in.blob_val);
        int64_t h, v;
        ipcf_rpc_opts o = { .timeout_ms = 60000 };
        uint64_t t0 = test_now_ms();
        CHECK_ERR(counter_sum(c, &in, &h, &o), -EMSGSIZE);
        printf("  100 MiB refused in %llu ms\n", (unsigned long long)(test_now_ms() - t0));
        free(in.blob_val);
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        n = 512u << 10;
        in = (blob){ (uint32_t)n, calloc(1, n) };
        CHECK_OK(counter_sum(c, &in, &h, NULL));
        CHECK_EQ(h, (int64_t)test_hash(in.blob_val, n, 0));
        free(in.blob_val);
        /* results */
        uint32_t len = 8u << 20;
        blob out = { 0 };
        int r = counter_big(c, &len, &out, NULL);
        CHECK(r == -EMSGSIZE || r == -EREMOTEIO);
        CHECK(out.blob_val == NULL);
        len = 2u << 20;
        r = counter_big(cs, &len, &out, NULL);
        CHECK(r == -EMSGSIZE || r == -EREMOTEIO);
        CHECK(out.blob_val == NULL);
        len = 4096;
        CHECK_OK(counter_big(cs, &len, &out, NULL));
        CHECK_EQ(out.blob_len, 4096);
        blob_free(&out);
        CHECK_OK(counter_incr(cs, &v, NULL));
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 3);
        ipcf_rpc_client_free(cs);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        /* the bound is configurable: 100 MiB both ways with 128 MiB each side */
        struct server_args b = { .name = "rpc.bound2", .max_msg = 128u << 20 };
        srv = start_server(&b);
        CHECK_OK(ipcf_rpc_client_new("rpc.bound2", &big, &c));
        n = 100u << 20;
        in = (blob){ (uint32_t)n, malloc(n) };
        CHECK(in.blob_val);
        test_fill(in.blob_val, n, 5);
        CHECK_OK(counter_sum(c, &in, &h, NULL));
        CHECK_EQ(h, (int64_t)test_hash(in.blob_val, n, 0));
        free(in.blob_val);
        len = 100u << 20;
        CHECK_OK(counter_big(c, &len, &out, NULL));
        CHECK_EQ(out.blob_len, len);
        blob_free(&out);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

static void *sleep_1500(void *arg) {
        ipcf_rpc_client *c = arg;
        int32_t ms = 1500, res;
        CHECK_OK(counter_sleep(c, &ms, &res, NULL));
        return NULL;
}

/* A call cancelled while it waits behind busy workers (sent, not started)
 * is not run: -ECANCELED, and the counter shows it never ran; one whose
 * result came before the cancel keeps its result. */
TEST_TIMEOUT(a_call_cancelled_before_it_started_is_not_run, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.queued" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *busy, *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.queued", NULL, &busy));
        CHECK_OK(ipcf_rpc_client_new("rpc.queued", NULL, &c));
        int64_t v = -1, n;
        CHECK_OK(counter_get(c, &n, NULL)); /* the session is made */
        CHECK_OK(counter_get(busy, &n, NULL));
        pthread_t t[2];
        uint64_t t0 = test_now_ms(); /* no SLEEP began before: none ends before t0 + 1500 */
        for (int i = 0; i < 2; i++)
                CHECK_EQ(pthread_create(&t[i], NULL, sleep_1500, busy), 0);
        while (atomic_load(&sh->sleeps) < 2)
                usleep(1000);
        ipcf_rpc_call *k;
        CHECK_OK(counter_incr_start(c, &v, NULL, &k));
        usleep(200 * 1000);
        uint64_t cancel_at = test_now_ms() - t0;
        CHECK_OK(ipcf_rpc_cancel(k));
        int r = ipcf_rpc_wait(k, 10000);
        ipcf_rpc_call_free(k);
        for (int i = 0; i < 2; i++)
                CHECK_EQ(pthread_join(t[i], NULL), 0);
        usleep(300 * 1000);
        CHECK_OK(counter_get(c, &n, NULL));
        printf("  cancelled call: %d, INCR ran %ld times; cancelled %llu ms after the SLEEPs were started\n", r,
               (long)n, (unsigned long long)cancel_at);
        /* Cancelled while both workers still slept, the INCR never ran. A
         * load that held this thread's 200 ms sleep past the SLEEPs' end (the
         * CI's TSan step beside other work once: INCR ran once, result 0) let
         * a worker take the INCR first: then it ran, whole, and kept its
         * result. */
        if (cancel_at < 1500) {
                CHECK_ERR(r, -ECANCELED);
                CHECK_EQ(n, 0);
        } else {
                CHECK((r == -ECANCELED && n == 0) || (r == 0 && n == 1));
        }
        int64_t ran = n; /* the INCRs so far: 0, or 1 after such a load */
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, ran + 1);
        /* a call whose result came before the cancel (not yet waited for)
         * ran: the cancel does not make it "cancelled" (ipcf.h: "-ECANCELED
         * unless its result came first") */
        v = -1;
        CHECK_OK(counter_incr_start(c, &v, NULL, &k));
        for (int i = 0; i < 2000 && atomic_load(&sh->count) < ran + 2; i++)
                usleep(1000);
        usleep(100 * 1000);
        CHECK_OK(ipcf_rpc_cancel(k));
        CHECK_OK(ipcf_rpc_wait(k, 10000));
        CHECK_EQ(v, ran + 2);
        ipcf_rpc_call_free(k);
        CHECK_OK(counter_get(c, &n, NULL));
        CHECK_EQ(n, ran + 2);
        ipcf_rpc_client_free(c);
        ipcf_rpc_client_free(busy);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A call cancelled after its handler started ends with the server's
 * verdict, never "cancelled" (not run) when it ran: a handler that ignores
 * the cancel and completes gives its result; one that sees
 * ipcf_rpc_cancelled and fails gives its error; a server killed after the
 * cancel leaves the outcome unknown. */
TEST_TIMEOUT(a_call_cancelled_while_its_handler_runs_ends_with_the_servers_verdict, 90) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.verdict" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.verdict", NULL, &c));
        /* 1. the handler ignores the cancel and completes: its result */
        atomic_store(&sh->sleep_mode, 1);
        int32_t ms = 300, res = -1;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        CHECK_OK(ipcf_rpc_cancel(k));
        int r = ipcf_rpc_wait(k, 20000);
        ipcf_rpc_call_free(k);
        printf("  handler that ignored the cancel: %d, result %d\n", r, res);
        CHECK(r != -ECANCELED);
        CHECK((r == 0 && res == 2) || r == -IPCF_EUNKNOWN); /* (unknown only past the bound) */
        for (int i = 0; i < 5000 && atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        /* 2. the handler sees the cancel and fails: its error */
        atomic_store(&sh->sleep_mode, 2);
        ms = 20000;
        ipcf_rpc_info info = { 0 };
        ipcf_rpc_opts o = { .info = &info, .timeout_ms = 30000 };
        CHECK_OK(counter_sleep_start(c, &ms, &res, &o, &k));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        CHECK_OK(ipcf_rpc_cancel(k));
        r = ipcf_rpc_wait(k, 20000);
        ipcf_rpc_call_free(k);
        printf("  handler that failed on the cancel: %d, its error %d\n", r, info.remote_error);
        CHECK_ERR(r, -EREMOTEIO);
        CHECK_EQ(info.remote_error, -ECANCELED);
        for (int i = 0; i < 5000 && atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        /* 3. the server killed after the cancel, its handler still running:
         * outcome unknown */
        atomic_store(&sh->sleep_mode, 1);
        CHECK_OK(counter_sleep_start(c, &ms, &res, &o, &k));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        CHECK_OK(ipcf_rpc_cancel(k));
        stop_server(srv);
        uint64_t t0 = test_now_ms();
        r = ipcf_rpc_wait(k, 20000);
        ipcf_rpc_call_free(k);
        printf("  server killed after the cancel: %d (%lu ms)\n", r, (unsigned long)(test_now_ms() - t0));
        CHECK_ERR(r, -IPCF_EUNKNOWN);
        ipcf_rpc_client_free(c);
        test_daemon_stop(&d);
}

/* A server restarted while its client is idle (no call in flight): the
 * client's next call finds the old channel broken before sending anything,
 * so it goes to the new server (nothing of it reached the old one). */
TEST(a_call_after_the_server_restarted_while_idle_reaches_the_new_one) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.idle" };
        pid_t srv = start_server(&a);
        int gate;
        pid_t srv2 = fork_gated_server(&a, &gate);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.idle", NULL, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        stop_server(srv);
        test_wait_for_name_gone("rpc.idle", 10000);
        atomic_store(&sh->count, 0);
        start_gated_server(&a, &gate);
        srv = srv2;
        int r = counter_incr(c, &v, NULL);
        printf("  first call after the restart: %d\n", r);
        CHECK_OK(r);
        CHECK_EQ(v, 1);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* Run the ipcf tool with args; its exit status, stdout in out. */
static int run_ipcf(char *out, size_t cap, const char *args) {
        char *ipcf = test_build_path("bin/ipcf");
        char cmd[2048];
        snprintf(cmd, sizeof(cmd), "%s %s 2>&1", ipcf, args);
        free(ipcf);
        FILE *p = popen(cmd, "r");
        CHECK(p);
        size_t n = fread(out, 1, cap - 1, p);
        out[n] = 0;
        int st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

TEST(the_tool_describes_a_server_and_calls_any_procedure_with_json) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.cli" };
        pid_t srv = start_server(&a);
        char out[8192];
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc describe rpc.cli"), 0);
        CHECK(strstr(out, "program COUNTER_PROG") && strstr(out, "hyper SUM(blob) = 10;"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 40, \"b\": 2}'"), 0);
        CHECK(strcmp(out, "42\n") == 0);
        /* an integer as any JSON number whose value is whole (h3: 1e3 was
         * refused); a fraction is refused as such */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 4e1, \"b\": 2.0}'"), 0);
        CHECK(strcmp(out, "42\n") == 0);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1.5, \"b\": 2}'"), 2);
        CHECK(strstr(out, "integer 1.5 has a fraction"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli incr"), 0);
        CHECK(strcmp(out, "1\n") == 0);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ECHO '\"00ff10\"'"), 0);
        CHECK(strcmp(out, "\"00ff10\"\n") == 0);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli WHO -t 4000"), 0);
        CHECK(strstr(out, "\"pid\": ") && strstr(out, "\"prog\": \"ipcf\""));
        /* errors: each its own way */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli FAIL -13"), 1);
        CHECK(strstr(out, "Permission denied"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1}'"), 2);
        CHECK(strstr(out, "member 'b' of add_args is missing"));
        /* a misspelt member is an error, not dropped */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1, \"b\": 2, \"bb\": 3}'"), 2);
        CHECK(strstr(out, "struct add_args has no member 'bb'"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1, '"), 2);
        /* values outside their types: exit 2, nothing sent */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli BIG -1"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli BIG 4294967296"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli SLEEP 2147483648"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ECHO '\"abc\"'"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ECHO '\"zz\"'"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ECHO 12"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1, \"b\": null}'"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1, \"b\": 2}' -V 9"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli INCR 5"), 2);
        /* a key twice is an error, not one of them dropped */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli ADD '{\"a\": 1, \"b\": 2, \"a\": 3}'"), 2);
        CHECK(strstr(out, "a key given twice"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli NOPE"), 2);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.cli INCR3"), 1);
        CHECK(strstr(out, "versions 1..1"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.nobody INCR"), 1);
        /* a plain service (it echoes the request back) is named as no RPC
         * server, not as a broken peer alone */
        CHECK_EQ(run_ipcf(out, sizeof(out), "serve rpc.plain -- cat >/dev/null 2>&1 &"), 0);
        test_wait_for_name("rpc.plain", 10000);
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc describe rpc.plain"), 1);
        CHECK(strstr(out, "rpc.plain: does not answer as an RPC server"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.plain INCR"), 1);
        CHECK(strstr(out, "rpc.plain: does not answer as an RPC server"));
        /* the deadline reaches the handler: it stops (result 1) just as the
         * caller gives up (outcome unknown), whichever comes first */
        int st = run_ipcf(out, sizeof(out), "rpc call rpc.cli SLEEP 5000 -t 200");
        CHECK((st == 0 && strcmp(out, "1\n") == 0) || (st == 1 && strstr(out, "outcome unknown")));
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A list of 10,000 nodes through the tool, both ways, through the real
 * daemon and server (REVERSE: the same list in the other order), its JSON
 * read from standard input ('-': a list's JSON outgrows an argument); a
 * short one as an argument. Before, the tool's JSON nested an object per
 * node and refused more than about 250 of them. */
TEST(the_tool_passes_a_list_of_any_length_both_ways) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.list" };
        pid_t srv = start_server(&a);
        char out[8192];
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.list REVERSE "
                                            "'{\"value\": 1, \"next\": {\"value\": 2, \"next\": null}}'"), 0);
        if (strcmp(out, "{\"value\": 2, \"next\": {\"value\": 1, \"next\": null}}\n"))
                test_fail(__FILE__, __LINE__, "printed '%s'", out);
        enum { NODES = 10000 };
        char *in = NULL, *want = NULL;
        size_t in_len = 0, want_len = 0;
        FILE *fi = open_memstream(&in, &in_len), *fw = open_memstream(&want, &want_len);
        CHECK(fi && fw);
        for (unsigned k = 0; k < NODES; k++) {
                fprintf(fi, "{\"value\": %u, \"next\": ", k);
                fprintf(fw, "{\"value\": %u, \"next\": ", NODES - 1 - k);
        }
        fputs("null", fi);
        fputs("null", fw);
        for (unsigned k = 0; k < NODES; k++) {
                fputc('}', fi);
                fputc('}', fw);
        }
        fputc('\n', fw);
        fclose(fi);
        fclose(fw);
        const char *path = test_scratch("list.json");
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs(in, f);
        fclose(f);
        char *ipcf = test_build_path("bin/ipcf");
        char *got = TEST_SH_OK("'%s' rpc call rpc.list REVERSE - < '%s'", ipcf, path);
        if (strcmp(got, want) != 0)
                test_fail(__FILE__, __LINE__, "%zu bytes back, want %zu: '%.120s...'", strlen(got), strlen(want), got);
        free(got);
        free(ipcf);
        free(in);
        free(want);
        stop_server(srv);
        test_daemon_stop(&d);
}

#define CHECK_OUT(got, want)                                                                      \
        do {                                                                                      \
                if (strcmp((got), (want)))                                                        \
                        test_fail(__FILE__, __LINE__, "printed '%s', want '%s'", (got), (want));  \
        } while (0)

/* A union whose arm is named like its discriminant (kinded of counter.x,
 * as RFC 4506 allows): the JSON gives the discriminant as "switch", both
 * ways, through the real daemon and server. Before, the CLI printed the
 * key twice ({"kind": 1, "kind": 42}, which it could not read back) and
 * could not be given the arm at all. */
TEST(the_tool_writes_and_reads_a_union_whose_arm_is_named_like_its_discriminant) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.kinded" };
        pid_t srv = start_server(&a);
        char out[8192];
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.kinded KINDED '{\"switch\": 1, \"kind\": 41}'"), 0);
        CHECK_OUT(out, "{\"switch\": 1, \"kind\": 42}\n");
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.kinded KINDED '{\"switch\": 2, \"name\": \"hi\"}'"), 0);
        CHECK_OUT(out, "{\"switch\": 2, \"name\": \"hi!\"}\n");
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.kinded KINDED '{\"switch\": 3}'"), 0);
        CHECK_OUT(out, "{\"switch\": 3}\n");
        /* the discriminant by its name is the arm here: refused, nothing sent */
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.kinded KINDED '{\"kind\": 1}'"), 2);
        CHECK(strstr(out, "union kinded needs its discriminant 'switch'"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.kinded KINDED '{\"switch\": 1, \"kind\": 1, \"name\": \"x\"}'"),
                 2);
        CHECK(strstr(out, "union kinded has no member 'name'"));
        stop_server(srv);
        test_daemon_stop(&d);
}

static void exec_example(void *arg) {
        char **argv = arg;
        char *prog = test_build_path(argv[0]);
        execv(prog, argv);
        _exit(127);
}

TEST_TIMEOUT(the_examples_call_their_servers_through_the_stubs, 120) {
        test_daemon_start(&d, NULL, NULL);
        char *calc[] = { "examples/calc-server", "ex.calc", NULL };
        pid_t cs = test_fork(exec_example, calc);
        test_wait_for_name("ex.calc", 10000);
        char out[4096];
        char *client = test_build_path("examples/calc-client");
        char cmd[4096];
        snprintf(cmd, sizeof(cmd), "%s ex.calc 84 2 && %s ex.calc 5 0", client, client);
        FILE *p = popen(cmd, "r");
        size_t n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        CHECK_EQ(pclose(p), 0);
        CHECK(strcmp(out, "sum 86\nproduct 168\nquotient 42\ntotal 84\n"
                          "sum 5\nproduct 0\nquotient: Numerical argument out of domain\ntotal 89\n") == 0);
        /* past 64 bits: ADD fails (ERANGE), then ACCUMULATE does and keeps
         * its total; the server serves on */
        snprintf(cmd, sizeof(cmd),
                 "%s ex.calc 9223372036854775807 1 2>/dev/null; echo $?; "
                 "%s ex.calc 9223372036854775807 0 2>/dev/null; echo $?; %s ex.calc 1 -1",
                 client, client, client);
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        CHECK_EQ(pclose(p), 0);
        CHECK(strcmp(out, "1\n1\nsum 0\nproduct -1\nquotient -1\ntotal 90\n") == 0);
        free(client);
        stop_server(cs);

        char dir[300], data[400];
        snprintf(dir, sizeof(dir), "%s/served", d.dir);
        CHECK_EQ(mkdir(dir, 0700), 0);
        char *files[] = { "examples/files-server", "ex.files", dir, NULL };
        pid_t fs = test_fork(exec_example, files);
        test_wait_for_name("ex.files", 10000);
        /* a 5 MiB file there and back, in one call each */
        snprintf(data, sizeof(data), "%s/local", d.dir);
        size_t len = 5u << 20;
        char *buf = malloc(len);
        test_fill(buf, len, 99);
        FILE *f = fopen(data, "wb");
        CHECK_EQ(fwrite(buf, 1, len, f), len);
        fclose(f);
        char *fc = test_build_path("examples/files-client");
        snprintf(cmd, sizeof(cmd),
                 "%s ex.files put %s/local copy && %s ex.files append %s/local copy && "
                 "%s ex.files stat copy && %s ex.files get copy %s/back && cmp -s %s/back %s/served/copy && "
                 "! %s ex.files get ../local %s/nope 2>/dev/null",
                 fc, d.dir, fc, d.dir, fc, fc, d.dir, d.dir, d.dir, fc, d.dir);
        p = popen(cmd, "r");
        n = fread(out, 1, sizeof(out) - 1, p);
        out[n] = 0;
        CHECK_EQ(pclose(p), 0);
        CHECK_EQ(strtoull(out, NULL, 10), 2 * len);
        free(fc);
        free(buf);
        stop_server(fs);
        test_daemon_stop(&d);
}

/* Calls that run longer than the retransmission timer, a third of all
 * replies lost: copies find the call running (IN_PROGRESS), then its result
 * in the cache; still each runs once. */
TEST_TIMEOUT(slow_calls_with_lost_replies_run_once, 300) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.slow", .impair = "drop_reply=0.3,seed=3" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.slow", NULL, &c));
        unsigned n = getenv("IPCF_TEST_QUICK") ? 40 : 200;
        uint64_t sent = 0;
        for (unsigned i = 1; i <= n; i++) {
                int32_t ms = 10, res = -1;
                int64_t v = 0;
                ipcf_rpc_info info;
                ipcf_rpc_opts o = { .info = &info };
                CHECK_OK(counter_sleep(c, &ms, &res, &o));
                CHECK_EQ(res, 0);
                sent += info.transmissions;
                CHECK_OK(counter_incr(c, &v, &o));
                CHECK_EQ(v, i);
        }
        CHECK_EQ(atomic_load(&sh->count), n);
        CHECK(sent > n); /* the sleeping calls were asked again */
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A process's resident memory, in KiB (VmRSS of /proc/PID/status). */
static long rss_kib(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        CHECK(f);
        long kib = -1;
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld", &kib) == 1)
                        break;
        fclose(f);
        return kib;
}

/* Arguments that decode but leave bytes over (a hostile or mismatched
 * client, through ipcf_rpc_call_raw) are refused -EBADMSG, never run — and
 * what decoding allocated is freed: the server leaked every such
 * argument before (60 KB a call here, the blob's copy). The slot works on. */
TEST_TIMEOUT(arguments_with_bytes_left_over_are_refused_without_a_leak, 120) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.leftover" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.leftover", NULL, &c));
        /* SUM(blob): a 60,000-byte blob (copied by the decoder: below the
         * borrowing threshold), then 4 bytes more */
        uint32_t n = 60000;
        size_t len = 4 + n + 4;
        uint8_t *args = calloc(1, len);
        args[0] = (uint8_t)(n >> 24);
        args[1] = (uint8_t)(n >> 16);
        args[2] = (uint8_t)(n >> 8);
        args[3] = (uint8_t)n;
        test_fill(args + 4, n, 7);
        void *res = NULL;
        size_t res_len = 0;
        /* the well-formed call first: it runs */
        CHECK_OK(ipcf_rpc_call_raw(c, COUNTER_PROG, COUNTER_V1, SUM, 0, args, len - 4, NULL, &res, &res_len));
        CHECK_EQ(res_len, 8);
        free(res);
        long before = rss_kib(srv);
        unsigned calls = getenv("IPCF_TEST_QUICK") ? 300 : 1000;
        for (unsigned i = 0; i < calls; i++) {
                res = NULL;
                CHECK_ERR(ipcf_rpc_call_raw(c, COUNTER_PROG, COUNTER_V1, SUM, 0, args, len, NULL, &res, &res_len),
                          -EBADMSG);
                CHECK(res == NULL);
        }
        long after = rss_kib(srv);
        /* leaking, the server grew by calls x 60 KB (18-60 MB); under a
         * sanitizer or Valgrind freed memory waits in a quarantine (Valgrind's
         * free list: 20 MB): no figure there (memcheck reports a leak itself) */
        if (!*TEST_SAN && !getenv("IPCF_UNDER_VALGRIND") && after - before > 8 * 1024)
                test_fail(__FILE__, __LINE__, "the server grew from %ld to %ld KiB over %u refused calls", before,
                          after, calls);
        int64_t v = 0;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        free(args);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* One RPC message straight through ipcf_call (a hostile client, not the
 * runtime): its reply's status, the reply header in *ret, its body in
 * body (cap bytes). */
static uint32_t raw_rpc(const char *name, const rpc_req *rq, const void *piece, size_t len, rpc_rep *ret,
                        uint8_t *body, size_t cap) {
        uint8_t msg[RPC_REQ_HDR + 64], rep[RPC_REP_HDR + 64];
        CHECK(len <= 64 && cap <= 64);
        wire_put_req(msg, rq);
        if (len)
                memcpy(msg + RPC_REQ_HDR, piece, len);
        ssize_t n = ipcf_call(name, msg, RPC_REQ_HDR + len, rep, sizeof(rep), 10000, NULL);
        CHECK(n >= (ssize_t)RPC_REP_HDR);
        CHECK_OK(wire_parse_rep(rep, (size_t)n, ret));
        if (body)
                memcpy(body, rep + RPC_REP_HDR, (size_t)n - RPC_REP_HDR < cap ? (size_t)n - RPC_REP_HDR : cap);
        return ret->status;
}

/* A raw call of SUM on slot of session (id: 16 bytes from base). */
static rpc_req raw_sum(uint8_t base, uint32_t slot, uint32_t timeout_ms, uint32_t piece, uint64_t total) {
        rpc_req rq = { .kind = RPC_CALL, .slot = slot, .seq = 1, .prog = COUNTER_PROG, .vers = COUNTER_V1,
                       .proc = SUM, .timeout_ms = timeout_ms, .piece = piece, .total = total };
        for (int i = 0; i < 16; i++)
                rq.session[i] = (uint8_t)(base + i);
        return rq;
}

/* Make the session of id base (raw_sum) on the server name, 4 slots. */
static void raw_session(const char *name, uint8_t base) {
        rpc_req rq = raw_sum(base, 4, 0, 0, 0);
        rq.kind = RPC_CREATE;
        rpc_rep rp;
        CHECK_EQ(raw_rpc(name, &rq, NULL, 0, &rp, NULL, 0), RS_OK);
}

/* A piece at offset == total (legal on the wire: offset + 0 bytes stays in
 * total) of a call whose total is a multiple of its piece size named piece
 * n_pieces of n_pieces: the server marked it received one past the end of
 * its bitmap (a heap write out of bounds) and counted it, so the call ran
 * with a piece it never got (here: SUM over 8 bytes of garbage). Now it is
 * misordered, and the real last piece completes the call. */
TEST(a_piece_past_the_arguments_end_is_misordered_not_counted) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.pieces" };
        pid_t srv = start_server(&a);
        raw_session("rpc.pieces", 0xa0);
        /* SUM(blob of 12 bytes): 16 bytes of XDR in two pieces of 8 */
        uint8_t args[16] = { 0, 0, 0, 12 };
        test_fill(args + 4, 12, 5);
        rpc_req rq = raw_sum(0xa0, 0, 10000, 8, 16);
        rpc_rep rp;
        CHECK_EQ(raw_rpc("rpc.pieces", &rq, args, 8, &rp, NULL, 0), RS_PIECE_OK);
        rq.offset = 16; /* == total: no piece of this call */
        CHECK_EQ(raw_rpc("rpc.pieces", &rq, NULL, 0, &rp, NULL, 0), RS_MISORDERED);
        rq.offset = 8;
        uint8_t body[64];
        CHECK_EQ(raw_rpc("rpc.pieces", &rq, args + 8, 8, &rp, body, sizeof(body)), RS_OK);
        CHECK_EQ(rp.total, 8);
        uint64_t sum = (uint64_t)body[0] << 56 | (uint64_t)body[1] << 48 | (uint64_t)body[2] << 40 |
                       (uint64_t)body[3] << 32 | (uint64_t)body[4] << 24 | (uint64_t)body[5] << 16 |
                       (uint64_t)body[6] << 8 | body[7];
        CHECK_EQ(sum, (uint64_t)(int64_t)test_hash(args + 4, 12, 0));
        CHECK_EQ(waitpid(srv, NULL, WNOHANG), 0); /* the server lives */
        stop_server(srv);
        test_daemon_stop(&d);
}

/* Calls whose callers stopped sending their pieces (killed mid-upload, or
 * hostile) held their arguments' memory for ever: a session with a call
 * in pieces is never evicted, and max_memory counts the pieces, so two
 * abandoned 4 MiB uploads made a server of 8 MiB refuse every later call
 * with arguments (-ENOBUFS) until it restarted. A call in pieces whose
 * deadline has passed can no longer run: its pieces are dropped when the
 * memory is wanted, and the next call runs. */
TEST(pieces_of_a_call_whose_deadline_passed_give_their_memory_back) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.abandon", .max_memory = 8u << 20 };
        pid_t srv = start_server(&a);
        raw_session("rpc.abandon", 0x50);
        uint8_t first[64] = { 0, 0x3f, 0xff, 0xfc }; /* SUM(blob of 4 MiB - 4) */
        rpc_req rq;
        rpc_rep rp;
        for (uint32_t slot = 0; slot < 2; slot++) {
                rq = raw_sum(0x50, slot, 1000, 64, 4u << 20);
                CHECK_EQ(raw_rpc("rpc.abandon", &rq, first, sizeof(first), &rp, NULL, 0), RS_PIECE_OK);
        }
        /* the uploads stop here; their deadlines pass */
        usleep(1500 * 1000);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.abandon", NULL, &c));
        add_args in = { 40, 2 };
        int64_t v = 0;
        CHECK_OK(counter_add(c, &in, &v, NULL));
        CHECK_EQ(v, 42);
        /* and a call of 6 MiB: the memory is all back */
        blob big = { .blob_len = 6u << 20, .blob_val = malloc(6u << 20) };
        test_fill(big.blob_val, big.blob_len, 9);
        CHECK_OK(counter_sum(c, &big, &v, NULL));
        CHECK_EQ(v, (int64_t)test_hash(big.blob_val, big.blob_len, 0));
        free(big.blob_val);
        /* a late piece of an upload given up is misordered, not taken */
        rq.offset = 64;
        CHECK_EQ(raw_rpc("rpc.abandon", &rq, first, sizeof(first), &rp, NULL, 0), RS_MISORDERED);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* ipcf_rpc_wait with a timeout of 0 never waits, but a result already
 * there is no wait: polled with 0 only, an asynchronous call's result must
 * come (here within 10 s; before, a wait of 0 never read the channel and
 * said -EAGAIN for ever). */
TEST(a_call_polled_with_a_wait_of_0_gets_its_result) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.poll0" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.poll0", NULL, &c));
        for (int64_t i = 1; i <= 3; i++) {
                int64_t v = -1;
                ipcf_rpc_call *k;
                CHECK_OK(counter_incr_start(c, &v, NULL, &k));
                int r = -EAGAIN;
                for (int j = 0; j < 10000 && r == -EAGAIN; j++) {
                        r = ipcf_rpc_wait(k, 0);
                        if (r == -EAGAIN)
                                usleep(1000);
                }
                CHECK_OK(r);
                CHECK_EQ(v, i);
                ipcf_rpc_call_free(k);
        }
        CHECK_EQ(atomic_load(&sh->count), 3);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

struct waited_call {
        ipcf_rpc_call *k;
        int r;
};

static void *wait_in_thread(void *arg) {
        struct waited_call *w = arg;
        w->r = ipcf_rpc_wait(w->k, -1);
        return NULL;
}

/* A call cancelled while it waits to be sent again (an idempotent call
 * whose server died: it polls for a server to come back under the name) is
 * not sent again: a server that comes back never runs it. It had reached
 * the dead server, which may have run it: -IPCF_EUNKNOWN (not -ECANCELED,
 * "not run"). Before, the cancel was ignored there and the restarted
 * server ran it. */
TEST_TIMEOUT(a_call_cancelled_before_it_is_sent_again_is_never_sent, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.unsent" };
        pid_t srv = start_server(&a);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.unsent", NULL, &c));
        int gate;
        pid_t srv2 = fork_gated_server(&a, &gate); /* the restarted one */
        /* SLEEP declared idempotent for this call */
        const ipcf_rpc_proc *sleep_proc = NULL;
        for (size_t i = 0; i < counter_v1_desc.n_procs; i++)
                if (counter_v1_desc.procs[i].number == SLEEP)
                        sleep_proc = &counter_v1_desc.procs[i];
        CHECK(sleep_proc);
        ipcf_rpc_proc p = *sleep_proc;
        p.flags |= IPCF_RPC_IDEMPOTENT;
        int32_t ms = 1000, res = -1;
        ipcf_rpc_opts o = { .timeout_ms = 20000 };
        struct waited_call w = { .r = 1 };
        CHECK_OK(ipcf_rpc_start(c, &counter_v1_desc, &p, &ms, &res, &o, &w.k));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, wait_in_thread, &w), 0);
        stop_server(srv);
        usleep(300 * 1000); /* the waiter polls for a server under the name */
        CHECK_OK(ipcf_rpc_cancel(w.k));
        atomic_store(&sh->in_sleep, 0);
        start_gated_server(&a, &gate);
        srv = srv2;
        CHECK_EQ(pthread_join(t, NULL), 0);
        usleep(300 * 1000); /* a copy sent late would have started by now */
        printf("  cancelled while waiting to be sent again: %d, SLEEP begun %d times\n", w.r,
               atomic_load(&sh->sleeps));
        CHECK_ERR(w.r, -IPCF_EUNKNOWN);
        CHECK_EQ(atomic_load(&sh->sleeps), 1); /* the dead server's run only */
        ipcf_rpc_call_free(w.k);
        /* the client works with the new server */
        int64_t v = -1;
        CHECK_OK(counter_incr(c, &v, NULL));
        CHECK_EQ(v, 1);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

struct evictor {
        const char *name;
        _Atomic int stop;
        unsigned made;
};

/* Make sessions of random ids as fast as the server answers (each evicts
 * the least recently used idle one: the server holds max_sessions). */
static void *evict_sessions(void *arg) {
        struct evictor *ev = arg;
        uint64_t r = 0x9e3779b97f4a7c15ull;
        while (!atomic_load(&ev->stop)) {
                rpc_req rq = { .kind = RPC_CREATE, .slot = 1 };
                for (int i = 0; i < 16; i++) {
                        r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                        rq.session[i] = (uint8_t)r;
                }
                uint8_t msg[RPC_REQ_HDR], rep[RPC_REP_HDR + 512];
                wire_put_req(msg, &rq);
                if (ipcf_call(ev->name, msg, sizeof(msg), rep, sizeof(rep), 50, NULL) >= 0)
                        ev->made++;
        }
        return NULL;
}

/* A call that ran, whose reply was lost, and whose session was evicted
 * (more clients than max_sessions) before it asked again: the server
 * answers BADSESSION, which the client took for "never reached a server
 * that knew it" and ran the call again in a new session — twice. A
 * non-idempotent call that may have reached the session is "outcome
 * unknown" instead: executions never pass the calls that said they ran
 * plus those whose outcome is unknown. */
TEST_TIMEOUT(a_call_whose_session_was_evicted_after_it_ran_is_not_run_again, 120) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.evict", .impair = "drop_reply=0.5,seed=11", .max_sessions = 2,
                                 .threads = 2 };
        pid_t srv = start_server(&a);
        struct evictor ev = { .name = "rpc.evict" };
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, evict_sessions, &ev), 0);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.evict", NULL, &c));
        unsigned calls = getenv("IPCF_TEST_QUICK") ? 600 : 1200, ok = 0, unknown = 0, other = 0;
        for (unsigned i = 0; i < calls; i++) {
                int64_t v = 0;
                ipcf_rpc_opts o = { .timeout_ms = 2000 };
                int r = counter_incr(c, &v, &o);
                if (r == 0)
                        ok++;
                else if (r == -IPCF_EUNKNOWN)
                        unknown++;
                else
                        other++;
        }
        atomic_store(&ev.stop, 1);
        pthread_join(th, NULL);
        int64_t ran = atomic_load(&sh->count);
        fprintf(stderr, "  %u calls: %u ran, %u unknown, %u other; executions %lld; %u sessions made by the evictor\n",
                calls, ok, unknown, other, (long long)ran, ev.made);
        CHECK(ran >= (int64_t)ok);
        CHECK(ran <= (int64_t)(ok + unknown));
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}

/* A server that serves counter's version 1 and a version of its own whose
 * interface text is (size_t)arg bytes long. */
static void server_with_text(void *arg) {
        size_t n = (size_t)(uintptr_t)arg;
        char *text = malloc(n + 1);
        CHECK(text);
        memset(text, 'x', n);
        text[n] = 0;
        static ipcf_rpc_version v = { .prog = 0x2000ffff, .vers = 1, .prog_name = "TEXT", .vers_name = "TEXT_V1" };
        v.description = text;
        ipcf_rpc_server *s;
        CHECK_OK(ipcf_rpc_server_new("rpc.text", NULL, &s));
        CHECK_OK(counter_v1_serve(s, &handlers, NULL));
        CHECK_OK(ipcf_rpc_server_add(s, &v, &handlers, NULL));
        CHECK_OK(ipcf_rpc_server_run(s, 1, -1));
}

/* ipcf_rpc_describe of a server whose interface texts together are
 * text_len + counter's bytes: 0 and the text (counter's, then ours), or
 * its error. */
static int describe_server_with_text(size_t text_len, size_t *ret_len) {
        pid_t srv = test_fork(server_with_text, (void *)(uintptr_t)text_len);
        test_wait_for_name("rpc.text", 10000);
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.text", NULL, &c));
        char *text = NULL;
        int r = ipcf_rpc_describe(c, 5000, &text);
        *ret_len = text ? strlen(text) : 0;
        free(text);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        /* The daemon ends the registration when it sees the server's
         * connection close, after the kill: the next server of the name
         * must not be found in its place (under Valgrind the next call
         * reached the dead one: -ECONNRESET). */
        test_wait_for_name_gone("rpc.text", 10000);
        return r;
}

/* A server's description is one reply: texts that fit whole are given,
 * else -EMSGSIZE and none, never a description that leaves an interface
 * out without saying so (hostile test, h2: the server left out a text
 * that did not fit, so describe succeeded without it, and `ipcf rpc call`
 * said the server served no such procedure). */
TEST_TIMEOUT(a_description_longer_than_one_reply_is_refused_not_cut, 60) {
        test_daemon_start(&d, NULL, NULL);
        size_t counter_len = strlen(counter_v1_desc.description) + 1, len;
        size_t room = IPCF_CALL_MAX - RPC_REP_HDR - counter_len - 1; /* for ours and its newline */
        CHECK_OK(describe_server_with_text(room, &len));
        CHECK_EQ(len, counter_len + room + 1);
        CHECK_ERR(describe_server_with_text(room + 1, &len), -EMSGSIZE);
        CHECK_EQ(len, 0);
        pid_t srv = test_fork(server_with_text, (void *)(uintptr_t)300000);
        test_wait_for_name("rpc.text", 10000);
        char out[8192];
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc describe rpc.text"), 1);
        CHECK(strstr(out, "rpc.text: its interface files are longer than one reply"));
        CHECK_EQ(run_ipcf(out, sizeof(out), "rpc call rpc.text INCR"), 1);
        CHECK(strstr(out, "longer than one reply"));
        stop_server(srv);
        test_daemon_stop(&d);
}

struct started_sleep {
        ipcf_rpc_client *c;
        int32_t ms, out;
        int r;
        uint64_t done_ms; /* test_now_ms when the call returned */
};

static void *sleep_call(void *arg) {
        struct started_sleep *q = arg;
        q->r = counter_sleep(q->c, &q->ms, &q->out, NULL);
        q->done_ms = test_now_ms();
        return NULL;
}

/* A call's result comes back as soon as its handler's reply does, though
 * the client waits on its newest transmission, a copy queued behind other
 * callers' work or never taken; and a server stopped while the handler
 * ran, then freed, has sent that reply (hostile test, h2: the client saw
 * a reply to an older transmission only when its retransmission timer
 * came, up to 1 s later: 0.4-0.9 s here; and a server freed right after
 * its run ended made such a call "outcome unknown" though it had run and
 * answered). */
TEST_TIMEOUT(a_reply_to_an_earlier_transmission_ends_the_call_at_once, 60) {
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.older", .threads = 1 };
        pid_t srv = start_server(&a);
        struct started_sleep first = { .ms = 1100 }, second = { .ms = 3000 };
        CHECK_OK(ipcf_rpc_client_new("rpc.older", NULL, &first.c));
        CHECK_OK(ipcf_rpc_client_new("rpc.older", NULL, &second.c));
        int64_t v;
        CHECK_OK(counter_incr(second.c, &v, NULL)); /* its session: its next call is sent at once */
        pthread_t t1, t2;
        CHECK_OK(pthread_create(&t1, NULL, sleep_call, &first));
        for (int i = 0; i < 5000 && !atomic_load(&sh->in_sleep); i++)
                usleep(1000);
        CHECK(atomic_load(&sh->in_sleep));
        CHECK_OK(pthread_create(&t2, NULL, sleep_call, &second)); /* behind the first, one worker */
        CHECK_OK(pthread_join(t1, NULL));
        CHECK_OK(first.r);
        CHECK_EQ(first.out, 0);
        uint64_t late = first.done_ms - atomic_load(&sh->sleep_end_ms);
        printf("the reply came %llu ms after the handler returned\n", (unsigned long long)late);
        CHECK(late < 300); /* before: at the next retransmission, 0.9 s */
        CHECK_OK(pthread_join(t2, NULL));
        CHECK_OK(second.r);
        ipcf_rpc_client_free(first.c);
        ipcf_rpc_client_free(second.c);
        stop_server(srv);
        /* stopped while the handler runs, freed once its run returns */
        atomic_store(&sh->stop_in_sleep, 1);
        struct server_args b = { .name = "rpc.older2", .threads = 1 };
        srv = start_server(&b);
        struct started_sleep q = { .ms = 300 };
        CHECK_OK(ipcf_rpc_client_new("rpc.older2", NULL, &q.c));
        sleep_call(&q);
        CHECK_OK(q.r); /* before: -IPCF_EUNKNOWN */
        CHECK_EQ(q.out, 0);
        ipcf_rpc_client_free(q.c);
        test_wait(srv, 5000);
        atomic_store(&sh->stop_in_sleep, 0);
        test_daemon_stop(&d);
}

/* ---- a thread stopped waiting for a slot holds no other call ------------ */

#define SLOT_K 8
static _Atomic int slot_tid, slot_bad;

static void *slot_parked(void *arg) {
        atomic_store(&slot_tid, (int)gettid());
        int64_t v;
        ipcf_rpc_opts o = { .timeout_ms = 20000 };
        CHECK_OK(counter_incr(arg, &v, &o));
        return NULL;
}

static void *slot_short(void *arg) {
        int64_t v;
        ipcf_rpc_opts o = { .timeout_ms = 100 };
        uint64_t t0 = test_now_ms();
        int r = counter_incr(arg, &v, &o);
        uint64_t dt = test_now_ms() - t0;
        printf("# call of 100 ms: %d after %llu ms\n", r, (unsigned long long)dt);
        if ((r != 0 && r != -ETIMEDOUT) || dt > 1100)
                atomic_fetch_add(&slot_bad, 1);
        return NULL;
}

/* One slot. A call waits for it, and its thread is stopped there; the slot
 * is given back (waking the stopped one, which does not run), and calls of
 * 100 ms from threads that do run take the slot one after another or wait
 * for it: each must end by its timeout, give or take scheduling, answered
 * or -ETIMEDOUT, not when the stopped thread goes on (2 s). */
TEST_TIMEOUT(a_thread_stopped_waiting_for_a_slot_holds_no_other_call_past_its_timeout, 60) {
        if (strcmp(TEST_SAN, "tsan") == 0) {
                /* (TSan runs a handler at the thread's next interceptor, say
                 * as it takes a lock: the thread cannot be stopped where the
                 * signal finds it) */
                printf("# not under TSan\n");
                return;
        }
        shared_init();
        test_daemon_start(&d, NULL, NULL);
        struct server_args a = { .name = "rpc.park", .threads = SLOT_K + 2 };
        pid_t srv = start_server(&a);
        test_park_install();
        ipcf_rpc_client_opts co = { .slots = 1 };
        ipcf_rpc_client *c;
        CHECK_OK(ipcf_rpc_client_new("rpc.park", &co, &c));
        int64_t v;
        CHECK_OK(counter_incr(c, &v, NULL)); /* the session */
        int32_t ms = 300, res;
        ipcf_rpc_call *k;
        CHECK_OK(counter_sleep_start(c, &ms, &res, NULL, &k));
        pthread_t parked, st[SLOT_K];
        CHECK_OK(pthread_create(&parked, NULL, slot_parked, c));
        test_park_when_asleep(&slot_tid); /* its call waiting for a slot */
        CHECK_OK(ipcf_rpc_wait(k, 10000)); /* its slot given back: the stopped one's */
        ipcf_rpc_call_free(k);
        for (int i = 0; i < SLOT_K; i++)
                CHECK_OK(pthread_create(&st[i], NULL, slot_short, c));
        usleep(2000000);
        test_park(false);
        for (int i = 0; i < SLOT_K; i++)
                CHECK_OK(pthread_join(st[i], NULL));
        CHECK_OK(pthread_join(parked, NULL));
        CHECK_EQ(atomic_load(&slot_bad), 0);
        ipcf_rpc_client_free(c);
        stop_server(srv);
        test_daemon_stop(&d);
}
