/*
 * benchlib.c — shared helpers of the side-by-side benchmarks (see
 * benchlib.h): clock, pinning, statistics, CSV, progress line, forked
 * children with a control channel, and the private ipcfd / dbus-daemon.
 *
 * The private directory and both daemons are children of the benchmark
 * process: it knows their pids, stops them itself (SIGTERM, then SIGKILL
 * after 2 s) and removes the directory, also at exit.
 */
#include "benchlib.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"

/* ---- time and CPUs -------------------------------------------------------- */

/* CLOCK_MONOTONIC in ns (a vDSO read: ~26 ns here). */
uint64_t bench_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* User + system time of this process; getrusage is precise to the µs
 * (scheduler accounting), unlike /proc's ticks. */
uint64_t bench_cpu_ns(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return ((uint64_t)ru.ru_utime.tv_sec + (uint64_t)ru.ru_stime.tv_sec) * 1000000000u +
               ((uint64_t)ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_usec) * 1000u;
}

/* Another process's CPU time is only in /proc (getrusage sees children
 * only once reaped): utime + stime in clock ticks, so a 10 ms resolution —
 * fine over a 0.25–0.5 s phase, and only brokers are measured this way. */
uint64_t bench_proc_cpu_ns(pid_t pid) {
        char path[64], buf[1024];
        if (pid <= 0)
                return 0;
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return 0;
        buf[n] = 0;
        /* Fields after the ")" that ends the command name: state is field 3,
         * utime 14 and stime 15. */
        char *p = strrchr(buf, ')');
        if (!p)
                return 0;
        unsigned long long ut = 0, st = 0;
        if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
                return 0;
        long hz = sysconf(_SC_CLK_TCK);
        return (ut + st) * (1000000000ull / (uint64_t)(hz > 0 ? hz : 100));
}

/* The spin-wait hint (PAUSE on x86). */
void bench_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
}

/* Pinning is best effort: a failure (a CPU offline, a cpuset) leaves the
 * process where it was, and the figures then say "unpinned" wrongly — the
 * machine.txt of the run lists the CPU count. */
void bench_pin(int cpu) {
        cpu_set_t set;
        CPU_ZERO(&set);
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        if (cpu >= 0 && cpu < n)
                CPU_SET(cpu, &set);
        else
                for (long i = 0; i < n && i < CPU_SETSIZE; i++)
                        CPU_SET((int)i, &set);
        sched_setaffinity(0, sizeof(set), &set);
}

/* ---- statistics ----------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

void bench_sort_u64(uint64_t *v, size_t n) { qsort(v, n, sizeof(*v), cmp_u64); }

/* Nearest-rank quantile of sorted samples (q = 0.5: the median). */
uint64_t bench_quantile(const uint64_t *sorted, size_t n, double q) {
        if (n == 0)
                return 0;
        size_t i = (size_t)(q * (double)(n - 1) + 0.5);
        return sorted[i < n ? i : n - 1];
}

/* Median (mean of the middle two for even n), min and max. */
bench_stat bench_stat_of(double *v, unsigned n) {
        bench_stat s = { 0, 0, 0, n };
        if (n == 0)
                return s;
        qsort(v, n, sizeof(*v), cmp_double);
        s.min = v[0];
        s.max = v[n - 1];
        s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
        return s;
}

/* ---- output --------------------------------------------------------------- */

void bench_csv_header(void) {
        printf("mechanism,metric,size,concurrency,pinned,median,min,max,unit\n");
        fflush(stdout);
}

/* %.6g keeps six significant digits: enough for any of our figures, and
 * the file stays readable. A stat of no runs prints nothing. */
void bench_csv(const char *mech, const char *metric, size_t size, unsigned conc, bool pinned,
               bench_stat st, const char *unit) {
        if (st.n == 0)
                return;
        printf("%s,%s,%zu,%u,%s,%.6g,%.6g,%.6g,%s\n", mech, metric, size, conc,
               pinned ? "yes" : "no", st.median, st.min, st.max, unit);
        fflush(stdout);
}

void bench_csv_note(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("# ", stdout);
        vprintf(fmt, ap);
        fputc('\n', stdout);
        va_end(ap);
        fflush(stdout);
}

/* Whether a "\r" progress line is on the terminal (to be erased). */
static bool progress_open;

void bench_progress(const char *prog, const char *fmt, ...) {
        char line[200];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof(line), fmt, ap);
        va_end(ap);
        if (isatty(2)) {
                fprintf(stderr, "\r\033[K%s: %s", prog, line);
                progress_open = true;
        } else {
                fprintf(stderr, "%s: %s\n", prog, line);
        }
}

void bench_progress_done(void) {
        if (progress_open)
                fputs("\r\033[K", stderr);
        progress_open = false;
}

/* ---- processes ------------------------------------------------------------ */

/* Loops over short reads and writes and EINTR. */
int bench_io_all(int fd, void *buf, size_t len, bool writing) {
        char *p = buf;
        while (len > 0) {
                ssize_t n = writing ? write(fd, p, len) : read(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        return -EPIPE;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Write one byte, then read the peer's: both have arrived. */
int bench_barrier(const bench_ctl *c) {
        if (!c)
                return 0;
        char b = 'b';
        int r = bench_io_all(c->wfd, &b, 1, true);
        return r < 0 ? r : bench_io_all(c->rfd, &b, 1, false);
}

/* Two pipes (parent -> child, child -> parent), close-on-exec; each side
 * closes the other's ends so that an exit is seen as EOF. */
pid_t bench_fork(bench_child_fn fn, void *arg, bench_ctl *ret_ctl) {
        int p2c[2], c2p[2];
        if (pipe2(p2c, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(c2p, O_CLOEXEC) < 0) {
                int e = -errno;
                close(p2c[0]);
                close(p2c[1]);
                return e;
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0) {
                int e = -errno;
                close(p2c[0]), close(p2c[1]), close(c2p[0]), close(c2p[1]);
                return e;
        }
        if (pid == 0) {
                close(p2c[1]);
                close(c2p[0]);
                alarm(BENCH_CHILD_ALARM_S);
                bench_ctl c = { .rfd = p2c[0], .wfd = c2p[1] };
                int r = fn(arg, &c);
                fflush(NULL);
                _exit(r == 0 ? 0 : 1);
        }
        close(p2c[0]);
        close(c2p[1]);
        ret_ctl->rfd = c2p[0];
        ret_ctl->wfd = p2c[1];
        return pid;
}

/* Closing the control ends first lets a child blocked on them finish;
 * then poll waitpid every 2 ms up to the bound. */
int bench_reap(pid_t pid, bench_ctl *ctl, int timeout_ms) {
        if (ctl) {
                if (ctl->rfd >= 0)
                        close(ctl->rfd);
                if (ctl->wfd >= 0)
                        close(ctl->wfd);
                ctl->rfd = ctl->wfd = -1;
        }
        if (pid <= 0)
                return -1;
        int st = 0;
        for (int waited = 0;; waited += 2) {
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        break;
                if (r < 0)
                        return -1;
                if (waited >= timeout_ms) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return -1;
                }
                usleep(2000);
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- private daemons ------------------------------------------------------ */

/* The run's private directory and the daemons in it (pids 0: none). */
static char env_dir[PATH_MAX];
static pid_t ipcfd_pid, dbus_pid, env_owner;
static char dbus_addr[512];

const char *bench_dir(void) { return env_dir; }
pid_t bench_ipcfd_pid(void) { return ipcfd_pid; }
pid_t bench_dbus_pid(void) { return dbus_pid; }

/* <build>/bench/<prog> -> <build>/bin/<name> (or $IPCF_DAEMON for ipcfd). */
static void build_bin(char *out, size_t cap, const char *name) {
        char exe[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        exe[n > 0 ? n : 0] = 0;
        for (int i = 0; i < 2; i++) {
                char *slash = strrchr(exe, '/');
                if (slash)
                        *slash = 0;
        }
        snprintf(out, cap, "%s/bin/%s", exe, name);
}

/* Forked children inherit the atexit handler: only the process that made
 * the environment tears it down. */
static void env_atexit(void) {
        if (getpid() == env_owner)
                bench_env_stop();
}

/* The daemon is our child, its log in the directory; we wait (at most
 * 5 s) until the library connects, so the first measurement finds it up. */
int bench_env_start(void) {
        char daemon[PATH_MAX + 32], log[PATH_MAX + 32];
        build_bin(daemon, sizeof(daemon), "ipcfd");
        if (getenv("IPCF_DAEMON"))
                snprintf(daemon, sizeof(daemon), "%s", getenv("IPCF_DAEMON"));
        snprintf(env_dir, sizeof(env_dir), "/tmp/ipcf-cmp.XXXXXX");
        if (!mkdtemp(env_dir)) {
                env_dir[0] = 0;
                return -errno;
        }
        env_owner = getpid();
        atexit(env_atexit);
        setenv("IPCF_RUNTIME_DIR", env_dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        snprintf(log, sizeof(log), "%s/ipcfd.log", env_dir);
        fflush(NULL);
        ipcfd_pid = fork();
        if (ipcfd_pid < 0)
                return -errno;
        if (ipcfd_pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0)
                        dup2(fd, 1), dup2(fd, 2);
                execl(daemon, daemon, "--runtime-dir", env_dir, (char *)NULL);
                _exit(127);
        }
        for (int i = 0; i < 500; i++) {
                if (ipcf_connect() == 0)
                        return 0;
                if (waitpid(ipcfd_pid, NULL, WNOHANG) == ipcfd_pid) {
                        ipcfd_pid = 0;
                        fprintf(stderr, "bench: %s exited at start (log %s)\n", daemon, log);
                        return -EHOSTDOWN;
                }
                usleep(10000);
        }
        return -EHOSTDOWN;
}

/* The private bus: a session-type bus on a socket in our directory that
 * anyone of this user may use, with no activation and a permissive policy.
 * dbus-daemon is the reference broker (what most desktops and many
 * servers run); EXTERNAL authentication is the Unix-credentials default. */
static const char dbus_conf[] =
        "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
        " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
        "<busconfig>\n"
        "  <type>session</type>\n"
        "  <listen>unix:path=%s/dbus.sock</listen>\n"
        "  <auth>EXTERNAL</auth>\n"
        "  <policy context=\"default\">\n"
        "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
        "    <allow eavesdrop=\"true\"/>\n"
        "    <allow own=\"*\"/>\n"
        "  </policy>\n"
        "</busconfig>\n";

/* Started on first use only (the programs without D-Bus never start it):
 * the config in our directory, --nofork so that it stays our child, and
 * --print-address on a pipe, which we read (bounded: 5 s) to learn that it
 * listens and where. */
const char *bench_dbus_address(void) {
        if (dbus_addr[0])
                return dbus_addr;
        if (!env_dir[0])
                return NULL;
        char conf[PATH_MAX + 32];
        snprintf(conf, sizeof(conf), "%s/dbus.conf", env_dir);
        FILE *f = fopen(conf, "w");
        if (!f)
                return NULL;
        fprintf(f, dbus_conf, env_dir);
        fclose(f);
        int pfd[2];
        if (pipe2(pfd, O_CLOEXEC) < 0)
                return NULL;
        fflush(NULL);
        dbus_pid = fork();
        if (dbus_pid < 0) {
                close(pfd[0]), close(pfd[1]);
                dbus_pid = 0;
                return NULL;
        }
        if (dbus_pid == 0) {
                char arg_conf[PATH_MAX + 64], arg_fd[64];
                int fd = dup(pfd[1]); /* without close-on-exec */
                int devnull = open("/dev/null", O_RDWR);
                if (devnull >= 0)
                        dup2(devnull, 0), dup2(devnull, 1), dup2(devnull, 2);
                snprintf(arg_conf, sizeof(arg_conf), "--config-file=%s", conf);
                snprintf(arg_fd, sizeof(arg_fd), "--print-address=%d", fd);
                execlp("dbus-daemon", "dbus-daemon", arg_conf, "--nofork", arg_fd, (char *)NULL);
                _exit(127);
        }
        close(pfd[1]);
        /* The daemon prints its address once it listens; bounded by poll. */
        size_t got = 0;
        uint64_t deadline = bench_now_ns() + 5000000000ull;
        fcntl(pfd[0], F_SETFL, O_NONBLOCK);
        while (bench_now_ns() < deadline && got < sizeof(dbus_addr) - 1) {
                ssize_t n = read(pfd[0], dbus_addr + got, sizeof(dbus_addr) - 1 - got);
                if (n > 0) {
                        got += (size_t)n;
                        if (memchr(dbus_addr, '\n', got))
                                break;
                } else if (n == 0) {
                        break;
                } else {
                        usleep(5000);
                }
        }
        close(pfd[0]);
        dbus_addr[got] = 0;
        char *nl = strchr(dbus_addr, '\n');
        if (!nl) {
                dbus_addr[0] = 0;
                fprintf(stderr, "bench: dbus-daemon did not start\n");
                return NULL;
        }
        *nl = 0;
        return dbus_addr;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        remove(path);
        return 0;
}

/* SIGTERM, then SIGKILL after 2 s. */
static void stop_child(pid_t *pid) {
        if (*pid <= 0)
                return;
        kill(*pid, SIGTERM);
        int i = 0;
        while (waitpid(*pid, NULL, WNOHANG) == 0 && i++ < 200)
                usleep(10000);
        if (i > 200) {
                kill(*pid, SIGKILL);
                waitpid(*pid, NULL, 0);
        }
        *pid = 0;
}

/* The bus first (its clients are gone), then ipcfd, then the files. */
void bench_env_stop(void) {
        stop_child(&dbus_pid);
        stop_child(&ipcfd_pid);
        dbus_addr[0] = 0;
        if (env_dir[0])
                nftw(env_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        env_dir[0] = 0;
}

/* ---- common options ------------------------------------------------------- */

/* Defaults: 3 runs, both placements; --quick alone means 1 run. Also sets
 * what every program needs: SIGPIPE ignored (sockets report EPIPE) and the
 * descriptor limit raised to the hard limit (1,000 flows need ~5,000 a
 * side, and the daemon, started after this, inherits it). */
void bench_opts_parse(bench_opts *o, int argc, char **argv, const char *usage_extra) {
        static const struct option longopts[] = {
                { "quick", no_argument, NULL, 'q' },
                { "runs", required_argument, NULL, 'n' },
                { "pinned", required_argument, NULL, 'p' },
                { "only", required_argument, NULL, 'o' },
                { "cdf", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        memset(o, 0, sizeof(*o));
        o->runs = 3;
        o->do_pinned = o->do_unpinned = true;
        bool runs_set = false;
        int opt;
        while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
                switch (opt) {
                case 'q': o->quick = true; break;
                case 'n':
                        o->runs = (unsigned)strtoul(optarg, NULL, 10);
                        runs_set = true;
                        break;
                case 'p':
                        o->do_pinned = strcmp(optarg, "no") != 0;
                        o->do_unpinned = strcmp(optarg, "yes") != 0;
                        break;
                case 'o': o->only = optarg; break;
                case 'c': o->cdf = optarg; break;
                default:
                        fprintf(opt == 'h' ? stdout : stderr,
                                "usage: %s [--quick] [--runs=N] [--pinned=both|yes|no] "
                                "[--only=KEYS] [--cdf=FILE]\n%s",
                                argv[0], usage_extra);
                        exit(opt == 'h' ? 0 : 2);
                }
        }
        if (o->quick && !runs_set)
                o->runs = 1;
        if (o->runs < 1 || o->runs > BENCH_MAX_RUNS || optind < argc) {
                fprintf(stderr, "%s: bad arguments (--runs 1..%d)\n", argv[0], BENCH_MAX_RUNS);
                exit(2);
        }
        /* Sockets and mq report failures as return values, never signals. */
        signal(SIGPIPE, SIG_IGN);
        /* Enough descriptors for 1,000 flows a side. */
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* Exact match against the comma list. */
bool bench_selected(const bench_opts *o, const char *key) {
        if (!o->only)
                return true;
        size_t k = strlen(key);
        for (const char *p = o->only; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                if (len == k && !strncmp(p, key, k))
                        return true;
                p += len + (comma ? 1 : 0);
        }
        return false;
}
