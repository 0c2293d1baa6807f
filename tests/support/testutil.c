/*
 * testutil.c — the helpers of test.h that need no harness: failing a case,
 * time, build paths, the real daemon on a private runtime directory, child
 * processes, reproducible data. Benchmarks link them too (they have a main
 * of their own).
 */
#include "support/test.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void test_fail(const char *file, int line, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "%s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        fflush(stderr);
        _exit(1);
}

void test_pin(int cpu) {
        cpu_set_t s;
        CPU_ZERO(&s);
        CPU_SET(cpu, &s);
        CHECK_OK(sched_setaffinity(0, sizeof(s), &s));
}

bool test_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, 0) == 1;
}

bool test_two_cpus(int cpus[2]) {
        cpu_set_t may;
        int n = 0;
        CHECK_OK(sched_getaffinity(0, sizeof(may), &may));
        for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
                if (CPU_ISSET(c, &may))
                        cpus[n++] = c;
        if (n < 2)
                fprintf(stderr, "one CPU: nothing to test\n");
        return n == 2;
}

uint64_t test_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t test_thread_runq_ms(void) {
        unsigned long long run = 0, runq = 0;
        FILE *f = fopen("/proc/thread-self/schedstat", "r");
        if (!f)
                return 0;
        if (fscanf(f, "%llu %llu", &run, &runq) != 2)
                runq = 0;
        fclose(f);
        return runq / 1000000u;
}

static volatile sig_atomic_t park_hold;

static void park_handler(int sig) {
        (void)sig;
        struct timespec ms = { 0, 1000000 };
        while (park_hold)
                nanosleep(&ms, NULL);
}

void test_park_install(void) {
        struct sigaction sa = { .sa_handler = park_handler };
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGUSR1, &sa, NULL) != 0)
                abort();
}

void test_park(bool hold) { park_hold = hold; }

static bool in_futex(int tid) {
        char path[64], buf[128] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%d/syscall", tid);
        FILE *f = fopen(path, "r");
        if (!f)
                return false;
        bool yes = fgets(buf, sizeof(buf), f) && atol(buf) == SYS_futex;
        fclose(f);
        return yes;
}

bool test_thread_in_futex_wait(int tid, unsigned ms) {
        uint64_t give_up = test_now_ms() + ms;
        int seen = 0;
        while (seen < 3 && test_now_ms() < give_up) {
                seen = in_futex(tid) ? seen + 1 : 0;
                usleep(2000);
        }
        return seen == 3;
}

void test_park_when_asleep(_Atomic int *tid_of) {
        int tid;
        while (!(tid = atomic_load(tid_of)))
                usleep(1000);
        CHECK(test_thread_in_futex_wait(tid, 5000));
        test_park(true);
        CHECK_EQ(syscall(SYS_tgkill, getpid(), tid, SIGUSR1), 0);
}

char *test_build_path(const char *rel) {
        const char *build = getenv("IPCF_BUILD");
        char *p = NULL;
        if (asprintf(&p, "%s/%s", build && *build ? build : "build", rel) < 0)
                abort();
        return p;
}

char *test_source_path(const char *rel) {
        char exe[PATH_MAX], *p = NULL;
        ssize_t n;
        if (access(rel, F_OK) == 0 || (n = readlink("/proc/self/exe", exe, sizeof(exe) - 1)) <= 0)
                return strdup(rel);
        exe[n] = 0;
        for (int up = 0; up < 3; up++) {
                char *slash = strrchr(exe, '/');
                if (slash)
                        *slash = 0;
        }
        if (asprintf(&p, "%s/%s", exe, rel) < 0)
                abort();
        return p;
}

int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        remove(path);
        return 0;
}

static bool socket_ready(const char *dir) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ipcfd.sock", dir) >=
            sizeof(sa.sun_path))
                return false;
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return false;
        bool ok = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
        close(fd);
        return ok;
}

void test_daemon_start(test_daemon *d, const char *config_text, const char *const *extra_args) {
        test_daemon_start_bin(d, "bin/ipcfd", config_text, extra_args);
}

void test_daemon_start_bin(test_daemon *d, const char *rel, const char *config_text,
                           const char *const *extra_args) {
        memset(d, 0, sizeof(*d));
        const char *scratch = getenv("TEST_SCRATCH");
        snprintf(d->dir, sizeof(d->dir), "%s/ipcfd.XXXXXX", scratch && *scratch ? scratch : "/tmp");
        if (!mkdtemp(d->dir))
                test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        chmod(d->dir, 0755); /* tests that run a child as another user reach it */
        setenv("IPCF_RUNTIME_DIR", d->dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);

        char conf[300];
        snprintf(conf, sizeof(conf), "%s/ipcfd.conf", d->dir);
        if (config_text) {
                FILE *f = fopen(conf, "w");
                if (!f)
                        test_fail(__FILE__, __LINE__, "config: %s", strerror(errno));
                fputs(config_text, f);
                fclose(f);
        }

        char *bin = test_build_path(rel);
        const char *argv[32] = { bin, "--runtime-dir", d->dir };
        unsigned n = 3;
        if (config_text) {
                argv[n++] = "--config";
                argv[n++] = conf;
        }
        for (unsigned i = 0; extra_args && extra_args[i] && n < 30; i++)
                argv[n++] = extra_args[i];
        argv[n] = NULL;

        d->pid = fork();
        if (d->pid < 0)
                test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
        if (d->pid == 0) {
                /* its host key (made by `ipcf host key`, `ipcf hosts`) in its own
                 * directory, not this machine's /var/lib/ipcf (as root) */
                setenv("IPCF_STATE_DIR", d->dir, 0);
                execv(bin, (char *const *)argv);
                fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
                _exit(127);
        }
        free(bin);
        /* A hang guard, not a speed check: under Valgrind on a loaded
         * 2-CPU machine a daemon took more than 5 s to serve (h3, CI's
         * Valgrind stage at load 15). */
        for (int i = 0; i < TEST_DAEMON_START_MS / 10; i++) {
                if (socket_ready(d->dir))
                        return;
                int st;
                if (waitpid(d->pid, &st, WNOHANG) == d->pid)
                        test_fail(__FILE__, __LINE__, "ipcfd exited at start (status %d)", st);
                usleep(10000);
        }
        test_fail(__FILE__, __LINE__, "ipcfd did not start within %d s", TEST_DAEMON_START_MS / 1000);
}

void test_daemon_kill(test_daemon *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGKILL);
                test_wait(d->pid, 5000);
                d->pid = 0;
        }
}

int test_daemon_fds(const test_daemon *d) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/fd", (int)d->pid);
        DIR *dir = opendir(path);
        if (!dir)
                test_fail(__FILE__, __LINE__, "%s: %s", path, strerror(errno));
        int n = 0;
        while (readdir(dir))
                n++;
        closedir(dir);
        return n;
}

int test_daemon_fds_settled(const test_daemon *d) {
        uint64_t end = test_now_ms() + 5000;
        int n = test_daemon_fds(d);
        for (;;) {
                usleep(100000);
                int m = test_daemon_fds(d);
                if (m == n || test_now_ms() >= end)
                        return m;
                n = m;
        }
}

void test_daemon_stop(test_daemon *d) {
        if (d->pid > 0) {
                kill(d->pid, SIGTERM);
                if (test_wait(d->pid, TEST_DAEMON_START_MS) == -ETIMEDOUT)
                        test_fail(__FILE__, __LINE__, "ipcfd did not stop on SIGTERM");
                d->pid = 0;
        }
        if (d->dir[0])
                nftw(d->dir, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        d->dir[0] = 0;
}

/* Threads of this process (from /proc/self/stat), or 0 if unknown. */
static __attribute__((unused)) long test_threads(void) {
        FILE *f = fopen("/proc/self/stat", "r");
        if (!f)
                return 0;
        char buf[1024];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;
        /* "pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime stime cutime cstime priority nice num_threads ...": comm
         * may hold anything, so count from its last ')'. */
        const char *p = strrchr(buf, ')');
        long threads = 0;
        if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %ld",
                         &threads) != 1)
                return 0;
        return threads;
}

/* ThreadSanitizer runs a thread of its own and makes fork() safe itself. */
#if defined(__SANITIZE_THREAD__)
#define TEST_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TEST_TSAN 1
#endif
#endif

/* Fail the test unless this process is single-threaded. A thread just joined
 * may still be counted for a moment (it is reaped after its join returns):
 * allow it up to a second to go. */
static void test_fork_check_threads(const char *file, int line) {
#ifndef TEST_TSAN
        long threads = test_threads();
        for (int i = 0; threads > 1 && i < 1000; i++) {
                usleep(1000);
                threads = test_threads();
        }
        if (threads > 1)
                test_fail(file, line, "fork from a process with %ld threads (its child may hang in "
                          "malloc): fork before starting threads (test_fork_gated)", threads);
#else
        (void)file;
        (void)line;
#endif
}

/* Fork; the child waits for a byte on wait_fd first (if >= 0) and closes close_fd. */
static pid_t test_fork_at(const char *file, int line, void (*fn)(void *arg), void *arg, int wait_fd,
                          int close_fd) {
        test_fork_check_threads(file, line);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0)
                test_fail(file, line, "fork: %s", strerror(errno));
        if (pid == 0) {
                if (close_fd >= 0)
                        close(close_fd); /* the gate's other end: the parent's alone */
                if (wait_fd >= 0) {
                        char c;
                        ssize_t r;
                        while ((r = read(wait_fd, &c, 1)) < 0 && errno == EINTR)
                                ;
                        if (r != 1)
                                _exit(0); /* the parent is gone (or gave up on us) */
                        close(wait_fd);
                }
                fn(arg);
                _exit(0);
        }
        return pid;
}

pid_t test_fork(void (*fn)(void *arg), void *arg) { return test_fork_at(__FILE__, __LINE__, fn, arg, -1, -1); }

pid_t test_fork_gated(void (*fn)(void *arg), void *arg, int *gate) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                test_fail(__FILE__, __LINE__, "pipe: %s", strerror(errno));
        pid_t pid = test_fork_at(__FILE__, __LINE__, fn, arg, p[0], p[1]);
        close(p[0]);
        *gate = p[1];
        return pid;
}

void test_gate_open(int *gate) {
        if (*gate < 0)
                return;
        if (write(*gate, "g", 1) != 1)
                test_fail(__FILE__, __LINE__, "gate: %s", strerror(errno));
        close(*gate);
        *gate = -1;
}

int test_wait(pid_t pid, int timeout_ms) {
        uint64_t deadline = test_now_ms() + (uint64_t)timeout_ms;
        for (;;) {
                int st = 0;
                pid_t r = waitpid(pid, &st, WNOHANG);
                if (r == pid)
                        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                if (r < 0)
                        return -errno;
                if (test_now_ms() >= deadline) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return -ETIMEDOUT;
                }
                usleep(1000);
        }
}

void test_fill(void *buf, size_t len, uint64_t seed) {
        uint8_t *p = buf;
        uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
        for (size_t i = 0; i < len; i++) {
                if ((i & 7) == 0) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                }
                p[i] = (uint8_t)(x >> ((i & 7) * 8));
        }
}

uint64_t test_hash(const void *buf, size_t len, uint64_t h) {
        const uint8_t *p = buf;
        if (h == 0)
                h = 0xcbf29ce484222325ull;
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ull;
        }
        return h;
}
