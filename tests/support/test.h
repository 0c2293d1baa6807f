/*
 * test.h — the test harness every test program uses.
 *
 * A test program is a set of TEST() cases; the harness supplies main(). Each
 * case runs in its own forked child with a time bound (alarm), so a crash or a
 * hang fails that case only and never stalls the suite. A case passes when it
 * returns; any CHECK that fails prints file:line and ends the case.
 *
 *   TEST(ring_wraps) { CHECK_EQ(1 + 1, 2); }
 *   TEST_TIMEOUT(big_stream, 300) { ... }       // seconds; default 60
 *
 * Environment: TEST_FILTER=substring runs only matching cases.
 * Output: one line per case ("ok"/"FAIL"), then "N passed, N failed".
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

typedef void (*test_fn)(void);

void test_register(const char *name, test_fn fn, unsigned timeout_s);
_Noreturn void test_fail(const char *file, int line, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define TEST_TIMEOUT(name, secs)                                              \
        static void test_##name(void);                                        \
        __attribute__((constructor)) static void test_reg_##name(void) {      \
                test_register(#name, test_##name, (secs));                    \
        }                                                                     \
        static void test_##name(void)
#define TEST(name) TEST_TIMEOUT(name, 60)

#define CHECK(cond)                                                           \
        do {                                                                  \
                if (!(cond))                                                  \
                        test_fail(__FILE__, __LINE__, "CHECK(%s)", #cond);    \
        } while (0)

#define CHECK_EQ(a, b)                                                        \
        do {                                                                  \
                long long _a = (long long)(a), _b = (long long)(b);           \
                if (_a != _b)                                                 \
                        test_fail(__FILE__, __LINE__, "%s == %lld, want %s == %lld", \
                                  #a, _a, #b, _b);                            \
        } while (0)

/* expr must return >= 0 (the project's success convention); yields it. */
#define CHECK_OK(expr)                                                        \
        ({                                                                    \
                long long _r = (long long)(expr);                             \
                if (_r < 0)                                                   \
                        test_fail(__FILE__, __LINE__, "%s failed: %lld (%s)", \
                                  #expr, _r, strerror((int)-_r));             \
                _r;                                                           \
        })

/* expr must fail with exactly the negative errno want. */
#define CHECK_ERR(expr, want)                                                 \
        do {                                                                  \
                long long _r = (long long)(expr), _w = (long long)(want);     \
                if (_r != _w)                                                 \
                        test_fail(__FILE__, __LINE__, "%s == %lld (%s), want %lld (%s)", \
                                  #expr, _r, _r < 0 ? strerror((int)-_r) : "ok", _w, \
                                  strerror((int)-_w));                        \
        } while (0)

#define CHECK_MEM(a, b, n)                                                    \
        do {                                                                  \
                if (memcmp((a), (b), (n)) != 0)                               \
                        test_fail(__FILE__, __LINE__, "memory %s != %s (%zu bytes)", \
                                  #a, #b, (size_t)(n));                       \
        } while (0)

/* Monotonic time in nanoseconds / milliseconds. */
uint64_t test_now_ns(void);
static inline uint64_t test_now_ms(void) { return test_now_ns() / 1000000u; }
/* How long the calling thread has waited on a run queue (runnable, not
 * running), in ms: the second field of /proc/thread-self/schedstat. 0 where
 * the kernel does not keep it. The difference over a wait tells a thread
 * starved of the CPU from one held by something it waited for. */
uint64_t test_thread_runq_ms(void);
/* Stopping a thread where it waits, as a garbage collector or a debugger
 * does: test_park_install() makes SIGUSR1 keep the thread it reaches in
 * its handler while test_park(true) holds (test_park(false) lets it go).
 * test_thread_in_futex_wait(tid, ms): true once thread tid of this process
 * is seen asleep in a futex wait three times 2 ms apart, within ms. */
void test_park_install(void);
void test_park(bool hold);
bool test_thread_in_futex_wait(int tid, unsigned ms);
/* Park the thread that stores its tid in *tid_of once it is asleep in a
 * futex wait (checked: within 5 s): test_park(true), then SIGUSR1 to it. */
void test_park_when_asleep(_Atomic int *tid_of);

/* A real ipcfd on a private runtime directory (created with mkdtemp).
 * test_daemon_start() exports IPCF_RUNTIME_DIR and IPCF_NO_AUTOSTART=1 for this
 * process and its children, writes config_text (may be NULL) to
 * <dir>/ipcfd.conf, starts $IPCF_BUILD/bin/ipcfd and waits until it accepts
 * connections. extra_args (NULL-terminated, may be NULL) go on its command line. */
typedef struct test_daemon {
        char dir[256];
        pid_t pid;
} test_daemon;

void test_daemon_start(test_daemon *d, const char *config_text, const char *const *extra_args);
/* How long test_daemon_start waits for the daemon to serve, and
 * test_daemon_stop for it to exit on SIGTERM, before failing the test. */
#define TEST_DAEMON_START_MS 30000
/* The same with another daemon binary of the build (rel: "tests/ipcfd-x"). */
void test_daemon_start_bin(test_daemon *d, const char *rel, const char *config_text,
                           const char *const *extra_args);
/* SIGTERM, wait (bounded), remove the directory. */
void test_daemon_stop(test_daemon *d);
/* SIGKILL without cleanup: for daemon-death tests. */
void test_daemon_kill(test_daemon *d);
/* How many descriptors the daemon has open now (its /proc/PID/fd). */
int test_daemon_fds(const test_daemon *d);
/* The same once it held still for 100 ms (at most 5 s): a baseline taken
 * right after a process of the test exited, whose connection the daemon may
 * not have seen close yet. */
int test_daemon_fds_settled(const test_daemon *d);

/* Path of a built program: test_build_path("bin/ipcf"). Static buffer per call site is not
 * kept: the result is malloc'ed and owned by the caller. */
char *test_build_path(const char *rel);

/* Path of a file of the source tree (rel: "docs/DAEMON.md"): as is when the
 * working directory is the tree (make check), else found from this program's
 * place in the build (<tree>/<build>/tests/<program>). Malloc'ed. */
char *test_source_path(const char *rel);

/* Fork a child that runs fn(arg) and _exit(0) when it returns (a failing CHECK exits 1).
 * Only from a single-threaded process (else the test fails at once): a child forked while
 * another thread holds a lock of the allocator inherits it held (ASan's allocator in
 * clang 14 has no fork handlers) and may hang in its first malloc() for ever. A child
 * that must start while threads run is forked before them with test_fork_gated(). */
pid_t test_fork(void (*fn)(void *arg), void *arg);
/* Fork now (single-threaded, as test_fork) a child that waits until test_gate_open(*gate),
 * then runs fn(arg); it exits at once if the parent dies first. */
pid_t test_fork_gated(void (*fn)(void *arg), void *arg, int *gate);
void test_gate_open(int *gate);
/* Wait for pid at most timeout_ms; returns its exit status, 128+signal if killed by a signal,
 * or -ETIMEDOUT (the child is then killed). */
int test_wait(pid_t pid, int timeout_ms);

/* nftw() callback removing a tree (testutil.c; the runner's scratch dirs). */
struct stat;
struct FTW;
int test_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw);

/* Pin the calling thread to one CPU (a failing CHECK if it cannot). */
void test_pin(int cpu);
/* The first two CPUs this thread may run on, in cpus; false if there is only
 * one (it says so on stderr: "one CPU: nothing to test"). */
bool test_two_cpus(int cpus[2]);
/* Is fd readable now? (poll without waiting) */
bool test_readable(int fd);

/* Fill buf with a reproducible pattern from seed; a cheap 64-bit checksum. */
void test_fill(void *buf, size_t len, uint64_t seed);
uint64_t test_hash(const void *buf, size_t len, uint64_t h);
