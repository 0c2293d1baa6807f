/*
 * bench-mbox.c — mailbox throughput with 4 competing receivers (64-byte
 * messages, msgs/s), with 1 and with 4 senders; a 1 x 1 mailbox and a direct
 * flow for comparison (same run, same machine); a multicast group of 3
 * members (deliveries/s); and the round trip of a send that waits for its
 * receipt.
 *
 * Every message goes sender -> daemon -> receiver (the daemon is the broker:
 * docs/MODELS.md), so the daemon's CPU is part of each figure; on this
 * 2-CPU machine the daemon, the senders and the receivers share two CPUs.
 * The bench starts ipcfd of this build (<build>/bin/ipcfd from
 * /proc/self/exe; IPCF_DAEMON overrides) on a private runtime directory as
 * its own child and removes both at the end.
 * Options: --quick (smoke run: 10x fewer messages), --msgs=N per row.
 * Output: a Markdown table on stdout. Every wait is bounded.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"

#define MSG 64
#define IO_TIMEOUT_MS 10000
#define CHILD_ALARM_S 300

static uint64_t n_msgs = 2000000, n_rtt = 20000;

struct shared {
        _Atomic uint64_t received;
        _Atomic int ready;
};
static struct shared *S;

static uint64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static char runtime_dir[64];
static pid_t daemon_pid;

static int daemon_start(void) {
        char exe[PATH_MAX], bin[PATH_MAX + 32];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (k <= 0)
                return -1;
        exe[k] = 0;
        for (int j = 0; j < 2; j++) { /* <build>/bench/bench-mbox -> <build> */
                char *sl = strrchr(exe, '/');
                if (sl)
                        *sl = 0;
        }
        snprintf(bin, sizeof(bin), "%s/bin/ipcfd", exe);
        if (getenv("IPCF_DAEMON"))
                snprintf(bin, sizeof(bin), "%s", getenv("IPCF_DAEMON"));
        snprintf(runtime_dir, sizeof(runtime_dir), "/tmp/ipcf-mbox.XXXXXX");
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
        (void)st;
        (void)flag;
        (void)f;
        return remove(path);
}

static void daemon_stop(void) {
        if (daemon_pid > 0) {
                kill(daemon_pid, SIGTERM);
                waitpid(daemon_pid, NULL, 0);
        }
        nftw(runtime_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* A receiver: count until everything of the row arrived. */
static void receiver(const char *box, uint64_t total) {
        alarm(CHILD_ALARM_S);
        int rx = ipcf_mbox_open(box, IPCF_MBOX_RECV, NULL, IO_TIMEOUT_MS);
        if (rx < 0)
                _exit(1);
        atomic_fetch_add(&S->ready, 1);
        char buf[MSG];
        while (atomic_load(&S->received) < total) {
                ssize_t n = ipcf_mbox_recv(rx, buf, sizeof(buf), 50, NULL);
                if (n == -ETIMEDOUT)
                        continue;
                if (n != MSG)
                        _exit(1);
                atomic_fetch_add_explicit(&S->received, 1, memory_order_relaxed);
        }
        _exit(0);
}

static void sender(const char *box, uint64_t n) {
        alarm(CHILD_ALARM_S);
        int tx = ipcf_mbox_open(box, IPCF_MBOX_SEND, NULL, IO_TIMEOUT_MS);
        if (tx < 0)
                _exit(1);
        char buf[MSG];
        memset(buf, 0x5a, sizeof(buf));
        for (uint64_t i = 0; i < n; i++)
                if (ipcf_mbox_send(tx, buf, sizeof(buf), IO_TIMEOUT_MS, NULL) != MSG)
                        _exit(1);
        _exit(0);
}

static pid_t spawn(void (*fn)(const char *, uint64_t), const char *box, uint64_t n) {
        fflush(NULL);
        pid_t p = fork();
        if (p == 0)
                fn(box, n);
        return p;
}

/* One row: ns senders, nr receivers, total messages. Returns msgs/s or -1. */
static double mbox_row(int ns, int nr, uint64_t total) {
        static int row;
        char box[32];
        snprintf(box, sizeof(box), "bench.box%d", row++);
        ipcf_mbox_opts o = { .size = sizeof(o), .max_msgs = 4096 };
        if (ipcf_mbox_create(box, &o) < 0)
                return -1;
        atomic_store(&S->received, 0);
        atomic_store(&S->ready, 0);
        pid_t pids[16];
        int np = 0, bad = 0;
        for (int i = 0; i < nr; i++)
                pids[np++] = spawn(receiver, box, total);
        for (int i = 0; i < 1000 && atomic_load(&S->ready) < nr; i++)
                usleep(10000);
        uint64_t t0 = now_ns();
        for (int i = 0; i < ns; i++)
                pids[np++] = spawn(sender, box, total / (uint64_t)ns);
        for (int i = 0; i < np; i++) {
                int st;
                waitpid(pids[i], &st, 0);
                bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        uint64_t dt = now_ns() - t0;
        ipcf_mbox_destroy(box);
        return bad ? -1 : (double)total * 1e9 / (double)dt;
}

/* The same 64-byte stream over one direct flow (no broker). */
static double flow_row(uint64_t total) {
        int reg = ipcf_register("bench.flow", NULL);
        if (reg < 0)
                return -1;
        fflush(NULL);
        pid_t p = fork();
        if (p == 0) {
                alarm(CHILD_ALARM_S);
                int port = ipcf_alloc("bench.flow", NULL, IO_TIMEOUT_MS, NULL);
                char buf[MSG];
                memset(buf, 0x5a, sizeof(buf));
                for (uint64_t i = 0; port >= 0 && i < total; i++)
                        if (ipcf_write(port, buf, sizeof(buf), IO_TIMEOUT_MS) != MSG)
                                _exit(1);
                _exit(port < 0);
        }
        int port = ipcf_accept(reg, IO_TIMEOUT_MS, NULL);
        uint64_t t0 = now_ns();
        char buf[MSG];
        int bad = port < 0;
        for (uint64_t i = 0; !bad && i < total; i++)
                bad = ipcf_read(port, buf, sizeof(buf), IO_TIMEOUT_MS) != MSG;
        uint64_t dt = now_ns() - t0;
        int st;
        waitpid(p, &st, 0);
        ipcf_dealloc(reg, NULL);
        if (port >= 0)
                ipcf_dealloc(port, NULL);
        return bad || !WIFEXITED(st) || WEXITSTATUS(st) ? -1 : (double)total * 1e9 / (double)dt;
}

/* A multicast member: count until every message of the row arrived. */
static void member(const char *grp, uint64_t n) {
        alarm(CHILD_ALARM_S);
        int h = ipcf_mcast_join(grp, NULL, IO_TIMEOUT_MS);
        if (h < 0)
                _exit(1);
        atomic_fetch_add(&S->ready, 1);
        char buf[MSG];
        for (uint64_t i = 0; i < n; i++)
                if (ipcf_mcast_recv(h, buf, sizeof(buf), IO_TIMEOUT_MS, NULL) != MSG)
                        _exit(1);
        _exit(0);
}

/* 1 sender, nm members (BLOCK group): deliveries per second. */
static double mcast_row(int nm, uint64_t n) {
        if (ipcf_mcast_create("bench.grp", NULL) < 0)
                return -1;
        atomic_store(&S->ready, 0);
        pid_t pids[8];
        int bad = 0;
        for (int i = 0; i < nm; i++)
                pids[i] = spawn(member, "bench.grp", n);
        for (int i = 0; i < 1000 && atomic_load(&S->ready) < nm; i++)
                usleep(10000);
        int h = ipcf_mcast_join("bench.grp", NULL, IO_TIMEOUT_MS);
        char buf[MSG];
        memset(buf, 0x5a, sizeof(buf));
        uint64_t t0 = now_ns();
        for (uint64_t i = 0; h >= 0 && !bad && i < n; i++)
                bad = ipcf_mcast_send(h, buf, sizeof(buf), IO_TIMEOUT_MS) != MSG;
        for (int i = 0; i < nm; i++) {
                int st;
                waitpid(pids[i], &st, 0);
                bad |= !WIFEXITED(st) || WEXITSTATUS(st) != 0;
        }
        uint64_t dt = now_ns() - t0;
        if (h >= 0)
                ipcf_dealloc(h, "left the group");
        ipcf_mcast_destroy("bench.grp");
        return bad || h < 0 ? -1 : (double)n * nm * 1e9 / (double)dt;
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Send-with-receipt round trips to one receiver: median and p99 in us. */
static int receipt_row(double *med, double *p99) {
        if (ipcf_mbox_create("bench.rc", NULL) < 0)
                return -1;
        atomic_store(&S->received, 0);
        atomic_store(&S->ready, 0);
        pid_t p = spawn(receiver, "bench.rc", n_rtt);
        for (int i = 0; i < 1000 && atomic_load(&S->ready) < 1; i++)
                usleep(10000);
        int tx = ipcf_mbox_open("bench.rc", IPCF_MBOX_SEND, NULL, IO_TIMEOUT_MS);
        uint64_t *lat = malloc(n_rtt * sizeof(*lat));
        char buf[MSG] = { 0 };
        int bad = tx < 0 || !lat;
        for (uint64_t i = 0; !bad && i < n_rtt; i++) {
                ipcf_receipt rc;
                uint64_t t = now_ns();
                bad = ipcf_mbox_send(tx, buf, sizeof(buf), IO_TIMEOUT_MS, &rc) != MSG;
                lat[i] = now_ns() - t;
        }
        int st;
        waitpid(p, &st, 0);
        if (!bad) {
                qsort(lat, n_rtt, sizeof(*lat), cmp_u64);
                *med = (double)lat[n_rtt / 2] / 1000;
                *p99 = (double)lat[n_rtt * 99 / 100] / 1000;
        }
        free(lat);
        if (tx >= 0)
                ipcf_dealloc(tx, NULL);
        ipcf_mbox_destroy("bench.rc");
        return bad ? -1 : 0;
}

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        n_msgs = 200000;
                        n_rtt = 2000;
                } else if (!strncmp(argv[i], "--msgs=", 7)) {
                        n_msgs = strtoull(argv[i] + 7, NULL, 10);
                        if (n_msgs < 4)
                                n_msgs = 4;
                } else {
                        fprintf(stderr, "usage: bench-mbox [--quick] [--msgs=N]\n");
                        return 2;
                }
        }
        S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (S == MAP_FAILED || daemon_start() < 0) {
                fprintf(stderr, "bench-mbox: cannot start ipcfd\n");
                daemon_stop();
                return 1;
        }
        n_msgs -= n_msgs % 4;
        printf("| %llu messages of %d B | msgs/s |\n|---|---:|\n", (unsigned long long)n_msgs, MSG);
        int status = 0;
        struct { const char *what; int ns, nr; } rows[] = {
                { "mailbox, 1 sender x 4 receivers", 1, 4 },
                { "mailbox, 4 senders x 4 receivers", 4, 4 },
                { "mailbox, 1 sender x 1 receiver", 1, 1 },
        };
        for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
                double r = mbox_row(rows[i].ns, rows[i].nr, n_msgs);
                if (r < 0) {
                        printf("| %s | FAILED |\n", rows[i].what);
                        status = 1;
                } else {
                        printf("| %s | %.0f |\n", rows[i].what, r);
                }
                fflush(stdout);
        }
        double f = flow_row(n_msgs);
        if (f < 0) {
                printf("| direct flow, 1 x 1 (no broker) | FAILED |\n");
                status = 1;
        } else {
                printf("| direct flow, 1 x 1 (no broker) | %.0f |\n", f);
        }
        double g = mcast_row(3, n_msgs / 4);
        if (g < 0) {
                printf("| multicast, 1 sender x 3 members (deliveries/s) | FAILED |\n");
                status = 1;
        } else {
                printf("| multicast, 1 sender x 3 members (deliveries/s) | %.0f |\n", g);
        }
        double med = 0, p99 = 0;
        if (receipt_row(&med, &p99) < 0) {
                printf("\nsend with receipt: FAILED\n");
                status = 1;
        } else {
                printf("\nsend with receipt (1 receiver, %llu round trips): median %.1f us, p99 %.1f us\n",
                       (unsigned long long)n_rtt, med, p99);
        }
        daemon_stop();
        return status;
}
