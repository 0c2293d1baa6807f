/*
 * test-handles.c — the handle table (src/lib/core/handles.c) under the races
 * its references exist for: ports closed while other threads are inside
 * ipcf_write / ipcf_read / ipcf_next_size on them (64-byte and 256 KiB
 * messages, so that a close often lands during a copy into or out of the
 * ring), numbers closed and reused at once under a thread that keeps using
 * them (its lookups race with the new objects' birth: a stale lookup's
 * transient reference dropped to zero on a slot still BUILDING once let it
 * destroy the object born there, after that object was closed, while its
 * closer still held it — a crash in ipcf_dealloc), and calls nested by a
 * signal handler, on the same port and on another. What must hold: every call returns (success or a documented
 * error, never a crash: ASan catches a use after free), and every closed
 * port is destroyed exactly once — its descriptors come back, none twice (a
 * second destroy would close a number reused since, which the fd counts
 * below would show).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* Open descriptors below 4096, without malloc (safe in a forked child). */
static int open_fds(void) {
        int n = 0;
        for (int fd = 0; fd < 4096; fd++)
                if (fcntl(fd, F_GETFD) >= 0)
                        n++;
        return n;
}

static bool ended(ssize_t r) {
        return r == -EBADF || r == -EPIPE || r == -ECONNRESET;
}

#define BIG (256 * 1024) /* a message whose copy lasts long enough to be caught in */

struct hammer {
        _Atomic int *port;   /* the number to use (changes under the thread) */
        size_t size;         /* of each message (0: 64 B) */
        _Atomic bool stop;
        _Atomic long ok;     /* (read while it runs: is it under way?) */
        long gone, other;
        int what;            /* 0 write, 1 read, 2 next_size */
};

/* Calls on whatever number *port holds now, until told to stop. */
static void *hammer_run(void *arg) {
        struct hammer *h = arg;
        size_t n = h->size ? h->size : 64;
        char *buf = calloc(1, n);
        CHECK(buf != NULL);
        while (!atomic_load(&h->stop)) {
                int p = atomic_load(h->port);
                ssize_t r = h->what == 0   ? ipcf_write(p, buf, n, 1)
                            : h->what == 1 ? ipcf_read(p, buf, n, 1)
                                           : ipcf_next_size(p, 1);
                if (r >= 0)
                        h->ok++;
                else if (ended(r) || r == -ETIMEDOUT || r == -EAGAIN)
                        h->gone++;
                else
                        h->other++;
        }
        free(buf);
        return NULL;
}

TEST_TIMEOUT(ports_closed_under_callers_are_destroyed_once, 120) {
        test_daemon_start(&d, NULL, NULL);
        int base = open_fds();
        int rounds = getenv("IPCF_TEST_QUICK") ? 40 : 200;
        long ok = 0, gone = 0;
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.max_msg_size = BIG;
        for (int i = 0; i < rounds; i++) {
                /* Odd rounds: 256 KiB messages, so that the close often lands
                 * while a thread copies into or out of the ring. */
                size_t size = i % 2 ? BIG : 64;
                int p[2];
                CHECK_OK(ipcf_pipe(&q, p));
                _Atomic int wp = p[0], rp = p[1], sp = p[1];
                struct hammer hs[3] = { { .port = &wp, .what = 0, .size = size },
                                        { .port = &rp, .what = 1, .size = size },
                                        { .port = &sp, .what = 2 } };
                pthread_t t[3];
                for (int k = 0; k < 3; k++)
                        CHECK_EQ(pthread_create(&t[k], NULL, hammer_run, &hs[k]), 0);
                usleep((useconds_t)(200 + (i % 7) * 300));
                /* Close both ends while the three are inside or about to be. */
                CHECK_OK(ipcf_dealloc(i % 2 ? p[1] : p[0], "closing"));
                CHECK_OK(ipcf_dealloc(i % 2 ? p[0] : p[1], NULL));
                usleep(500);
                for (int k = 0; k < 3; k++) {
                        atomic_store(&hs[k].stop, true);
                        pthread_join(t[k], NULL);
                        CHECK_EQ(hs[k].other, 0);
                        ok += hs[k].ok;
                        gone += hs[k].gone;
                }
        }
        CHECK(ok > 0);
        CHECK(gone > 0);
        CHECK_EQ(open_fds(), base); /* every port destroyed, none twice */
        test_daemon_stop(&d);
}

TEST_TIMEOUT(a_number_reused_under_a_caller_names_the_new_port, 120) {
        test_daemon_start(&d, NULL, NULL);
        int base = open_fds();
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        _Atomic int wp = p[0];
        struct hammer h = { .port = &wp, .what = 0 };
        pthread_t t;
        CHECK_EQ(pthread_create(&t, NULL, hammer_run, &h), 0);
        /* Under way before the rounds (on a loaded machine a new thread may
         * not run during all of them: they take milliseconds). */
        uint64_t t0 = test_now_ms();
        while (atomic_load(&h.ok) == 0) {
                CHECK(test_now_ms() - t0 < 20000);
                usleep(1000);
        }
        /* The writer keeps using the number it read; each round closes both
         * ends and makes a new pair, which takes the lowest free numbers —
         * the same ones. */
        int rounds = getenv("IPCF_TEST_QUICK") ? 100 : 500;
        for (int i = 0; i < rounds; i++) {
                char buf[64];
                while (ipcf_read(p[1], buf, sizeof(buf), 0) > 0)
                        ;
                CHECK_OK(ipcf_dealloc(p[0], NULL));
                CHECK_OK(ipcf_dealloc(p[1], NULL));
                CHECK_OK(ipcf_pipe(NULL, p));
                atomic_store(&wp, p[0]);
        }
        atomic_store(&h.stop, true);
        pthread_join(t, NULL);
        CHECK_EQ(h.other, 0);
        CHECK(h.ok > 0);
        CHECK_OK(ipcf_dealloc(p[0], NULL));
        CHECK_OK(ipcf_dealloc(p[1], NULL));
        CHECK_EQ(open_fds(), base);
        test_daemon_stop(&d);
}

/* ---- a signal handler's calls nest in the interrupted one ------------------ */

static int sig_port[2];
static _Atomic long sig_wrote, sig_bad;

static void on_alarm(int sig) {
        (void)sig;
        int e = errno;
        char b[8] = "sig";
        ssize_t r = ipcf_write(sig_port[0], b, sizeof(b), 0);
        if (r == (ssize_t)sizeof(b))
                atomic_fetch_add(&sig_wrote, 1);
        else if (r != -EAGAIN)
                atomic_fetch_add(&sig_bad, 1);
        errno = e;
}

TEST_TIMEOUT(calls_nested_by_a_signal_handler_keep_their_references, 60) {
        test_daemon_start(&d, NULL, NULL);
        int base = open_fds();
        int q[2];
        CHECK_OK(ipcf_pipe(NULL, q));
        CHECK_OK(ipcf_pipe(NULL, sig_port));
        struct sigaction sa = { .sa_handler = on_alarm, .sa_flags = SA_RESTART };
        sigemptyset(&sa.sa_mask);
        CHECK_OK(sigaction(SIGALRM, &sa, NULL));
        struct itimerval it = { .it_interval = { 0, 200 }, .it_value = { 0, 200 } };
        CHECK_OK(setitimer(ITIMER_REAL, &it, NULL));
        /* The handler writes on sig_port while this thread is inside calls
         * on q and on sig_port itself (a nested reference on the same port). */
        char b[64] = { 1 };
        long rounds = getenv("IPCF_TEST_QUICK") ? 100000 : 400000;
        for (long i = 0; i < rounds; i++) {
                CHECK_EQ(ipcf_write(q[0], b, sizeof(b), 1000), (ssize_t)sizeof(b));
                CHECK_EQ(ipcf_read(q[1], b, sizeof(b), 1000), (ssize_t)sizeof(b));
                ssize_t r;
                while ((r = ipcf_read(sig_port[1], b, sizeof(b), 0)) > 0)
                        ;
                CHECK(r == -EAGAIN || r == -ETIMEDOUT);
        }
        struct itimerval off = { 0 };
        CHECK_OK(setitimer(ITIMER_REAL, &off, NULL));
        signal(SIGALRM, SIG_IGN);
        CHECK(atomic_load(&sig_wrote) > 0);
        CHECK_EQ(atomic_load(&sig_bad), 0);
        CHECK_OK(ipcf_dealloc(q[0], NULL));
        CHECK_OK(ipcf_dealloc(q[1], NULL));
        CHECK_OK(ipcf_dealloc(sig_port[0], NULL));
        CHECK_OK(ipcf_dealloc(sig_port[1], NULL));
        CHECK_EQ(open_fds(), base);
        test_daemon_stop(&d);
}
