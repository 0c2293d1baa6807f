/*
 * bench-bbuf.c — the bounded buffer over a shared-memory group against a
 * POSIX message queue and a pipe, in ONE run on this machine (figures from
 * different runs do not compare).
 *
 * Two forked processes (parent on CPU 0, child on CPU 1) measure, for each
 * mechanism:
 *   - one-way throughput of 64-byte and 4 KiB items (items/s, MB/s): the
 *     child produces, the parent consumes;
 *   - the 64-byte ping-pong round trip (median and p99), one queue per
 *     direction.
 * The bbuf has 64 KiB of capacity. The message queue stays within the
 * default fs.mqueue limits (msgsize_max 8192, msg_max 10): 10 messages of at
 * most 4 KiB. The pipe moves items of at most PIPE_BUF bytes (atomic).
 *
 * Then the uncontended cost of the group lock (ipcf_group_lock(g, -1) +
 * ipcf_group_unlock, one thread, nobody else using it) against a
 * process-shared pthread mutex, plain and robust, in shared memory.
 *
 * The bbuf rows need a daemon: the bench starts ipcfd of this build
 * (<build>/bin/ipcfd from /proc/self/exe; IPCF_DAEMON overrides) on a
 * private runtime directory as its own child, and removes both at the end.
 * RULES: at most two busy processes; every wait is bounded (10 s per call,
 * an alarm in the child). Output: a Markdown table with ratios on stdout.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <mqueue.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"

#define IO_TIMEOUT_MS 10000
#define CHILD_ALARM_S 120
#define BB_CAP (64u << 10)
#define BB_A 0                               /* child -> parent */
#define BB_B (BB_CAP + IPCF_BBUF_HDR)        /* parent -> child (round trips) */
#define MQ_MSGS 10
#define MQ_SIZE 4096

enum mech { M_BBUF, M_MQ, M_PIPE, M_N };
static const char *mech_name[M_N] = { "ipcf bbuf", "POSIX mq", "pipe" };

static unsigned n_thr_small = 200000, n_thr_big = 50000, n_rtt = 20000, n_lock = 1000000;

/* Channels of one run: [0] child -> parent, [1] parent -> child. */
typedef struct chan {
        enum mech m;
        int group;                     /* bbuf */
        mqd_t mq[2];                   /* mq */
        char mq_name[2][64];
        int pfd[2][2];                 /* pipe: [dir][read/write] */
} chan;

static void pin(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        sched_setaffinity(0, sizeof(set), &set);
}

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int read_full(int fd, void *buf, size_t n) {
        size_t got = 0;
        while (got < n) {
                ssize_t k = read(fd, (char *)buf + got, n - got);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k <= 0)
                        return -1;
                got += (size_t)k;
        }
        return 0;
}

/* Send one item on direction dir (0: child -> parent). 0 or -1. */
static int ch_send(chan *c, int dir, const void *buf, size_t n) {
        switch (c->m) {
        case M_BBUF:
                return ipcf_bbuf_put(c->group, dir ? BB_B : BB_A, buf, n, IO_TIMEOUT_MS) < 0 ? -1 : 0;
        case M_MQ: {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += IO_TIMEOUT_MS / 1000;
                return mq_timedsend(c->mq[dir], buf, n, 0, &ts);
        }
        default:
                return write(c->pfd[dir][1], buf, n) == (ssize_t)n ? 0 : -1;
        }
}

static int ch_recv(chan *c, int dir, void *buf, size_t n) {
        switch (c->m) {
        case M_BBUF:
                return ipcf_bbuf_get(c->group, dir ? BB_B : BB_A, buf, MQ_SIZE, IO_TIMEOUT_MS) ==
                                       (ssize_t)n ? 0 : -1;
        case M_MQ: {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += IO_TIMEOUT_MS / 1000;
                char tmp[MQ_SIZE];
                return mq_timedreceive(c->mq[dir], tmp, sizeof(tmp), NULL, &ts) == (ssize_t)n
                               ? (memcpy(buf, tmp, n), 0) : -1;
        }
        default:
                return read_full(c->pfd[dir][0], buf, n);
        }
}

/* Make both directions of mechanism m before forking (the child inherits
 * them; the bbuf child joins the group itself). */
static int ch_open(chan *c, enum mech m) {
        memset(c, 0, sizeof(*c));
        c->m = m;
        if (m == M_BBUF) {
                if (ipcf_group_create("bench.bbuf", 2 * (BB_CAP + IPCF_BBUF_HDR), NULL) < 0 ||
                    (c->group = ipcf_group_join("bench.bbuf")) < 0 ||
                    ipcf_bbuf_init(c->group, BB_A, BB_CAP + IPCF_BBUF_HDR) < 0 ||
                    ipcf_bbuf_init(c->group, BB_B, BB_CAP + IPCF_BBUF_HDR) < 0)
                        return -1;
        } else if (m == M_MQ) {
                struct mq_attr a = { .mq_maxmsg = MQ_MSGS, .mq_msgsize = MQ_SIZE };
                for (int i = 0; i < 2; i++) {
                        snprintf(c->mq_name[i], sizeof(c->mq_name[i]), "/ipcf-bench-%d-%d", (int)getpid(), i);
                        c->mq[i] = mq_open(c->mq_name[i], O_RDWR | O_CREAT | O_EXCL, 0600, &a);
                        if (c->mq[i] == (mqd_t)-1)
                                return -1;
                }
        } else {
                if (pipe(c->pfd[0]) < 0 || pipe(c->pfd[1]) < 0)
                        return -1;
        }
        return 0;
}

static void ch_close(chan *c) {
        if (c->m == M_BBUF) {
                ipcf_dealloc(c->group, NULL);
                ipcf_group_dissolve("bench.bbuf");
        } else if (c->m == M_MQ) {
                for (int i = 0; i < 2; i++) {
                        mq_close(c->mq[i]);
                        mq_unlink(c->mq_name[i]);
                }
        } else {
                for (int i = 0; i < 2; i++) {
                        close(c->pfd[i][0]);
                        close(c->pfd[i][1]);
                }
        }
}

/* The child: in phase 't' produce n items of size len; in phase 'r' echo
 * n round trips. */
static void child_run(chan *c, char phase, unsigned n, size_t len) {
        pin(1);
        alarm(CHILD_ALARM_S);
        if (c->m == M_BBUF) /* its own membership (its own process) */
                c->group = ipcf_group_join("bench.bbuf");
        char buf[MQ_SIZE];
        memset(buf, 0x5a, sizeof(buf));
        int bad = c->m == M_BBUF && c->group < 0;
        for (unsigned i = 0; i < n && !bad; i++) {
                if (phase == 't') {
                        bad = ch_send(c, 0, buf, len) < 0;
                } else {
                        bad = ch_recv(c, 1, buf, len) < 0 || ch_send(c, 0, buf, len) < 0;
                }
        }
        _exit(bad ? 1 : 0);
}

static char runtime_dir[64];
static pid_t daemon_pid;

/* Start ipcfd of this build on a private runtime directory. */
static int daemon_start(void) {
        char exe[PATH_MAX], bin[PATH_MAX + 32];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (k <= 0)
                return -1;
        exe[k] = 0;
        for (int j = 0; j < 2; j++) { /* <build>/bench/bench-bbuf -> <build> */
                char *sl = strrchr(exe, '/');
                if (sl)
                        *sl = 0;
        }
        snprintf(bin, sizeof(bin), "%s/bin/ipcfd", exe);
        if (getenv("IPCF_DAEMON"))
                snprintf(bin, sizeof(bin), "%s", getenv("IPCF_DAEMON"));
        snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/ipcf-bbuf.XXXXXX");
        if (!mkdtemp(runtime_dir))
                return -1;
        setenv("IPCF_RUNTIME_DIR", runtime_dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        fflush(NULL);
        daemon_pid = fork();
        if (daemon_pid == 0) {
                int fd = open("/dev/null", O_WRONLY);
                dup2(fd, 1);
                dup2(fd, 2);
                execl(bin, bin, "--runtime-dir", runtime_dir, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                if (ipcf_connect() == 0)
                        return 0;
                usleep(10000);
        }
        return -1;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *f) {
        return remove(path);
}

static void daemon_stop(void) {
        if (daemon_pid > 0) {
                kill(daemon_pid, SIGTERM);
                waitpid(daemon_pid, NULL, 0);
        }
        nftw(runtime_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Items per second of n items of len bytes, child to parent. */
static double run_thr(enum mech m, size_t len, unsigned n) {
        chan c;
        double rate = -1;
        if (ch_open(&c, m) < 0) {
                fprintf(stderr, "bench-bbuf: %s: setup: %s\n", mech_name[m], strerror(errno));
                return -1;
        }
        fflush(NULL);
        uint64_t t0 = now_ns();
        pid_t p = fork();
        if (p == 0)
                child_run(&c, 't', n, len);
        char buf[MQ_SIZE];
        unsigned i = 0;
        for (; i < n; i++)
                if (ch_recv(&c, 0, buf, len) < 0)
                        break;
        uint64_t t1 = now_ns();
        int st;
        waitpid(p, &st, 0);
        if (i == n && WIFEXITED(st) && WEXITSTATUS(st) == 0)
                rate = n / ((double)(t1 - t0) / 1e9);
        else
                fprintf(stderr, "bench-bbuf: %s: throughput run failed at %u\n", mech_name[m], i);
        ch_close(&c);
        return rate;
}

/* Round trips of 64 bytes: median and p99 in microseconds. */
static int run_rtt(enum mech m, unsigned n, double *ret_med, double *ret_p99) {
        chan c;
        if (ch_open(&c, m) < 0)
                return -1;
        uint64_t *v = calloc(n, sizeof(*v));
        fflush(NULL);
        pid_t p = fork();
        if (p == 0)
                child_run(&c, 'r', n, 64);
        char buf[64] = { 0 };
        unsigned i = 0;
        for (; v && i < n; i++) {
                uint64_t t0 = now_ns();
                if (ch_send(&c, 1, buf, 64) < 0 || ch_recv(&c, 0, buf, 64) < 0)
                        break;
                v[i] = now_ns() - t0;
        }
        int st;
        waitpid(p, &st, 0);
        int r = -1;
        if (v && i == n && WIFEXITED(st) && WEXITSTATUS(st) == 0) {
                qsort(v, n, sizeof(*v), cmp_u64);
                *ret_med = v[n / 2] / 1e3;
                *ret_p99 = v[(size_t)n * 99 / 100] / 1e3;
                r = 0;
        }
        free(v);
        ch_close(&c);
        return r;
}

/* Nanoseconds per uncontended lock + unlock pair: the group lock, and a
 * process-shared pthread mutex (plain; robust) in a shared mapping. */
static int run_lock(unsigned n, double ret_ns[3]) {
        if (ipcf_group_create("bench.lock", 4096, NULL) < 0)
                return -1;
        int g = ipcf_group_join("bench.lock");
        pthread_mutex_t *mu = mmap(NULL, 2 * sizeof(*mu), PROT_READ | PROT_WRITE,
                                   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        int r = g < 0 || mu == MAP_FAILED ? -1 : 0;
        for (int k = 0; r == 0 && k < 2; k++) {
                pthread_mutexattr_t a;
                pthread_mutexattr_init(&a);
                pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
                if (k)
                        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
                pthread_mutex_init(&mu[k], &a);
                pthread_mutexattr_destroy(&a);
        }
        for (int k = 0; r == 0 && k < 3; k++) {
                uint64_t best = UINT64_MAX;
                for (int rep = 0; rep < 5 && r == 0; rep++) { /* best of 5 */
                        uint64_t t0 = now_ns();
                        for (unsigned i = 0; i < n && r == 0; i++) {
                                if (k == 0)
                                        r = ipcf_group_lock(g, -1) || ipcf_group_unlock(g) ? -1 : 0;
                                else
                                        r = pthread_mutex_lock(&mu[k - 1]) || pthread_mutex_unlock(&mu[k - 1])
                                                    ? -1 : 0;
                        }
                        uint64_t t = now_ns() - t0;
                        best = t < best ? t : best;
                }
                ret_ns[k] = (double)best / n;
        }
        if (mu != MAP_FAILED)
                munmap(mu, 2 * sizeof(*mu));
        if (g >= 0)
                ipcf_dealloc(g, NULL);
        ipcf_group_dissolve("bench.lock");
        return r;
}

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        n_thr_small = 30000, n_thr_big = 8000, n_rtt = 3000, n_lock = 100000;
                } else {
                        fprintf(stderr, "usage: bench-bbuf [--quick]\n");
                        return 2;
                }
        }
        if (daemon_start() < 0) {
                fprintf(stderr, "bench-bbuf: cannot start ipcfd\n");
                daemon_stop();
                return 1;
        }
        pin(0);

        double thr[M_N][2], med[M_N], p99[M_N];
        int fail = 0;
        for (int m = 0; m < M_N; m++) {
                fprintf(stderr, "bench-bbuf: %s...\n", mech_name[m]);
                thr[m][0] = run_thr(m, 64, n_thr_small);
                thr[m][1] = run_thr(m, 4096, n_thr_big);
                if (run_rtt(m, n_rtt, &med[m], &p99[m]) < 0)
                        med[m] = p99[m] = -1;
                fail |= thr[m][0] < 0 || thr[m][1] < 0 || med[m] < 0;
        }
        double lock_ns[3] = { -1, -1, -1 };
        if (run_lock(n_lock, lock_ns) < 0)
                fail = 1;
        daemon_stop();

        printf("| mechanism | 64 B items/s | 4 KiB items/s | 4 KiB MB/s | RTT 64 B median us | RTT p99 us |\n");
        printf("|---|---:|---:|---:|---:|---:|\n");
        for (int m = 0; m < M_N; m++)
                printf("| %s | %.0f | %.0f | %.0f | %.2f | %.2f |\n", mech_name[m], thr[m][0], thr[m][1],
                       thr[m][1] * 4096 / 1e6, med[m], p99[m]);
        printf("\nratios (bbuf / other; for latency: other / bbuf, so > 1 means bbuf is better):\n");
        for (int m = 1; m < M_N; m++)
                printf("  vs %-9s  64 B thr x%.2f   4 KiB thr x%.2f   RTT x%.2f\n", mech_name[m],
                       thr[M_BBUF][0] / thr[m][0], thr[M_BBUF][1] / thr[m][1], med[m] / med[M_BBUF]);
        printf("\nuncontended lock + unlock (ns per pair, best of 5 x %u):\n", n_lock);
        printf("| lock | ns | ratio to the group lock |\n|---|---:|---:|\n");
        const char *lock_name[3] = { "ipcf_group_lock/unlock", "pthread mutex, process-shared",
                                     "pthread mutex, process-shared robust" };
        for (int k = 0; k < 3; k++)
                printf("| %s | %.1f | %.2f |\n", lock_name[k], lock_ns[k], lock_ns[k] / lock_ns[0]);
        return fail ? 1 : 0;
}
