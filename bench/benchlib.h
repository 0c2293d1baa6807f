/*
 * benchlib.h — helpers shared by the side-by-side benchmark programs
 * (bench/cmp-*.c, run together by bench/suite.sh; method in
 * docs/PERFORMANCE.md).
 *
 * What lives here: the clock, CPU pinning, percentiles and the
 * median/min/max of repeated runs, the CSV line every program prints, a
 * bounded control channel between a parent and its forked child, the
 * private ipcf daemon (and the private dbus-daemon) a run needs, a live
 * progress line, and per-process CPU time.
 *
 * Rules every program keeps: at most two busy measuring processes at once
 * (the machine has 2 CPUs); every wait is bounded (children carry an alarm,
 * fd reads end when the peer exits, spin loops check the clock).
 * Benchmark code: allocation failure aborts.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_IO_TIMEOUT_MS 10000 /* any single ipcf/socket wait longer than this fails */
#define BENCH_CHILD_ALARM_S 120   /* a child still running after this is killed */
#define BENCH_MAX_RUNS 15

/* ---- time and CPUs -------------------------------------------------------- */

uint64_t bench_now_ns(void);
/* CPU time (user + system) of this process so far, in ns (getrusage). */
uint64_t bench_cpu_ns(void);
/* CPU time of process pid (utime + stime from /proc/pid/stat), in ns; 0 if
 * it cannot be read. For the daemons a mechanism routes through. */
uint64_t bench_proc_cpu_ns(pid_t pid);
void bench_relax(void);
/* Pin the calling process to cpu; cpu < 0 lets it run anywhere. */
void bench_pin(int cpu);
/* CPU for side 0/1 of a measurement: 0 and 1 when pinned, -1 when not. */
static inline int bench_cpu_of(bool pinned, int side) { return pinned ? side : -1; }

/* ---- statistics ----------------------------------------------------------- */

/* Sort n samples in place and return the q-quantile (0 <= q <= 1). */
void bench_sort_u64(uint64_t *v, size_t n);
uint64_t bench_quantile(const uint64_t *sorted, size_t n, double q);

/* Median, min and max of n doubles (n >= 1); v is reordered. */
typedef struct bench_stat {
        double median, min, max;
        unsigned n;
} bench_stat;
bench_stat bench_stat_of(double *v, unsigned n);

/* ---- output --------------------------------------------------------------- */

/* The CSV header line and one measurement line on stdout:
 *   mechanism,metric,size,concurrency,pinned,median,min,max,unit
 * (median/min/max over the runs that measured it). */
void bench_csv_header(void);
void bench_csv(const char *mech, const char *metric, size_t size, unsigned conc, bool pinned,
               bench_stat st, const char *unit);
/* A comment line in the CSV ("# ..."); readers skip it. */
void bench_csv_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The live progress line on stderr ("\r"-rewritten on a terminal, one line
 * per step otherwise); bench_progress_done ends it. prog is the program's
 * name. */
void bench_progress(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void bench_progress_done(void);

/* ---- processes ------------------------------------------------------------ */

/* A control channel between parent and child: two pipes. */
typedef struct bench_ctl {
        int rfd, wfd;
} bench_ctl;

/* Read or write exactly len bytes of a blocking fd; 0, -EPIPE at EOF, or
 * -errno. */
int bench_io_all(int fd, void *buf, size_t len, bool writing);
/* Both sides reach this point before either goes on (bounded by the peer's
 * life: a dead peer closes its ends). c NULL: no peer to wait for (0). */
int bench_barrier(const bench_ctl *c);
static inline int bench_ctl_send(const bench_ctl *c, const void *p, size_t n) {
        return bench_io_all(c->wfd, (void *)p, n, true);
}
static inline int bench_ctl_recv(const bench_ctl *c, void *p, size_t n) {
        return bench_io_all(c->rfd, p, n, false);
}

/* Fork a child running fn(arg, its ctl) with an alarm of BENCH_CHILD_ALARM_S
 * and exiting with fn's status (0 ok). The parent gets its end of the control
 * channel in *ret_ctl and the pid; -errno on failure. */
typedef int (*bench_child_fn)(void *arg, const bench_ctl *ctl);
pid_t bench_fork(bench_child_fn fn, void *arg, bench_ctl *ret_ctl);
/* Close the parent's control ends, wait for pid at most timeout_ms, then kill
 * it. Returns the child's exit status, or -1 if it was killed or died of a
 * signal. */
int bench_reap(pid_t pid, bench_ctl *ctl, int timeout_ms);

/* ---- private daemons ------------------------------------------------------ */

/* Make the run's private directory (/tmp/ipcf-cmp.XXXXXX) and start ipcfd of
 * this build there (<build>/bin/ipcfd from /proc/self/exe; IPCF_DAEMON
 * overrides), pointing IPCF_RUNTIME_DIR at it. The directory also holds the
 * ipc:// endpoints of NNG and ZeroMQ and the dbus-daemon. Call before
 * pinning. */
int bench_env_start(void);
/* The private directory (valid between start and stop). */
const char *bench_dir(void);
pid_t bench_ipcfd_pid(void);
/* Start a dbus-daemon with a private configuration in bench_dir() (once;
 * later calls return the same address). NULL on failure. */
const char *bench_dbus_address(void);
pid_t bench_dbus_pid(void);
/* Stop the daemons and remove the directory (also registered atexit). */
void bench_env_stop(void);

/* ---- common options ------------------------------------------------------- */

/* Options every cmp-* program takes:
 *   --quick        smoke run (a few seconds)
 *   --runs=N       repeat every measurement N times (default 3)
 *   --pinned=both|yes|no   placement(s) to measure (default both)
 *   --only=KEYS    comma list of mechanism keys
 *   --cdf=FILE     (cmp-lat) latency distribution of one run per mechanism */
typedef struct bench_opts {
        bool quick;
        unsigned runs;
        bool do_pinned, do_unpinned;
        const char *only;
        const char *cdf;
} bench_opts;
/* Parse argv (exits 2 on bad usage, printing usage). */
void bench_opts_parse(bench_opts *o, int argc, char **argv, const char *usage_extra);
/* Is key in --only's list (or no --only)? */
bool bench_selected(const bench_opts *o, const char *key);
