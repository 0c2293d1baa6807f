/*
 * util.c — small helpers of the ipcf tool: error lines, number parsing,
 * the clock, human-readable figures and a full write.
 *
 * Error lines all have the shape "ipcf: <what>: <why>" on stderr, one line,
 * so scripts and tests can rely on it. Nothing here exits: the helpers return
 * the exit status for the caller to pass up.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

/* The one error line of a failed call: the facility's own words for err,
 * with its cause where the library can tell (which of the reasons the daemon
 * cannot be reached: ipcf_error_cause). */
static void error_text(int err, char *buf, size_t cap) {
        /* -ENOLINK from anything the tool calls but an RPC call's outcome
         * (cmd_rpc.c says that one itself) is an allocation's: the directory
         * on etcd could not be asked (reason "directory unreachable"). It is
         * IPCF_EUNKNOWN's number, which ipcf_strerror names "outcome unknown". */
        if (err == -ENOLINK)
                snprintf(buf, cap, "directory unreachable");
        else
                ipcf_error_cause(err, buf, cap);
}

int cli_error(const char *what, int err) {
        char why[512];
        error_text(err, why, sizeof(why));
        fprintf(stderr, "ipcf: %s: %s\n", what, why);
        return CLI_EXIT_FAIL;
}

/* The error line of a failed allocation: the facility's words for err, then
 * the reason the target (its application, or its host's access policy: "not
 * allowed from host alpha"), the directory or a failed activation gave, when
 * there is one that says more than those words. */
int cli_error_reason(const char *what, int err, const ipcf_reason *why) {
        char text[512];
        error_text(err, text, sizeof(text));
        if (!why || !why->text[0] || strcmp(why->text, text) == 0)
                return cli_error(what, err);
        fprintf(stderr, "ipcf: %s: %s: %.*s\n", what, text, IPCF_REASON_MAX, why->text);
        return CLI_EXIT_FAIL;
}

/* Only right after the failed call: a later one that allocates replaces it. */
int cli_error_alloc(const char *what, int err) {
        ipcf_reason why;
        if (ipcf_last_reason(&why) < 0)
                why.text[0] = 0;
        return cli_error_reason(what, err, &why);
}

/* An error line whose reason is not an errno (a mismatch, a bad echo...). */
int cli_stdout_flush(const char *what) {
        if (fflush(stdout) == 0 && !ferror(stdout))
                return 0;
        return cli_fail("%s: stdout: write failed", what);
}

int cli_fail(const char *fmt, ...) {
        va_list ap;
        fputs("ipcf: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return CLI_EXIT_FAIL;
}

/* A usage error: what was wrong, then where to look, on the same line. */
int cli_usage(const char *cmd, const char *fmt, ...) {
        va_list ap;
        fprintf(stderr, "ipcf: %s: ", cmd);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fprintf(stderr, " (try 'ipcf %s --help')\n", cmd);
        return CLI_EXIT_USAGE;
}

/* A -v note: same shape as an error line, so logs read alike. */
void cli_note(bool verbose, const char *fmt, ...) {
        if (!verbose)
                return;
        va_list ap;
        fputs("ipcf: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* Strict decimal: digits only, no sign, no spaces, no suffix. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL; /* strtoull would accept "-1" and " 1" */
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Decimal with an optional binary suffix (k = 1024): sizes of queues and
 * messages are powers of two in the facility, so binary units read best. */
int cli_parse_size(const char *s, uint64_t max, uint64_t *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        unsigned shift = 0;
        switch (*end) {
        case 0: break;
        case 'k': case 'K': shift = 10; end++; break;
        case 'm': case 'M': shift = 20; end++; break;
        case 'g': case 'G': shift = 30; end++; break;
        default: return -EINVAL;
        }
        /* Accept "64k", "64K", "64KiB" and "64KB" alike. */
        if (shift && (!strcmp(end, "iB") || !strcmp(end, "B")))
                end += strlen(end);
        if (*end || (shift && v > (UINT64_MAX >> shift)))
                return -EINVAL;
        v <<= shift;
        if (v > max)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* Seconds as a non-negative decimal fraction, at most a million. */
int cli_parse_seconds(const char *s, double *ret) {
        if (!s || *s < '0' || *s > '9')
                return -EINVAL;
        char *end = NULL;
        errno = 0;
        double v = strtod(s, &end);
        if (errno || *end || !isfinite(v) || v > 1e6)
                return -EINVAL;
        *ret = v;
        return 0;
}

/* CLOCK_MONOTONIC: never jumps, so durations stay right across clock changes. */
uint64_t cli_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Binary units with three significant digits: "64 B", "1.50 KiB", "812 MiB". */
const char *cli_fmt_bytes(char *buf, size_t cap, double bytes) {
        static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
        unsigned u = 0;
        while (bytes >= 1024 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
                bytes /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, cap, "%.0f B", bytes);
        else
                snprintf(buf, cap, bytes < 10 ? "%.2f %s" : bytes < 100 ? "%.1f %s" : "%.0f %s",
                         bytes, unit[u]);
        return buf;
}

/* Decimal units (k = 1000) for counts and rates: "950", "12.3 k", "4.56 M". */
const char *cli_fmt_count(char *buf, size_t cap, double n) {
        static const char *const unit[] = { "", " k", " M", " G", " T" };
        unsigned u = 0;
        while (n >= 1000 && u + 1 < sizeof(unit) / sizeof(unit[0])) {
                n /= 1000;
                u++;
        }
        if (u == 0)
                snprintf(buf, cap, "%.0f", n);
        else
                snprintf(buf, cap, n < 10 ? "%.2f%s" : n < 100 ? "%.1f%s" : "%.0f%s", n, unit[u]);
        return buf;
}

/* A full write: retries short writes and EINTR; EPIPE comes back as an error
 * (SIGPIPE is ignored by main). */
volatile sig_atomic_t cli_interrupted, cli_copy_active;

/* Inside the copy loop: note it, the loop ends the flow. Elsewhere (waiting
 * for a flow, allocating): the default action, as if never caught. */
static void on_interrupt(int sig) {
        if (!cli_copy_active) {
                signal(sig, SIG_DFL);
                raise(sig);
                return;
        }
        cli_interrupted = 1;
}

/* No SA_RESTART: a blocked poll() returns EINTR and the loop sees the flag. */
void cli_catch_interrupts(void) {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_interrupt;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
}

int cli_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* `ls PATTERN...`: shell globs, so `ipcf ls 'printer.*'` works; a plain
 * name matches itself. */
bool cli_name_match(const cli_args *patterns, const char *name) {
        if (!patterns || patterns->n == 0)
                return true;
        for (int i = 0; i < patterns->n; i++)
                if (fnmatch(patterns->v[i], name, 0) == 0)
                        return true;
        return false;
}

/* /proc/PID/comm is readable for every process (exe is not, for another
 * user's): the kernel's 15-byte program name. The process chose it (any
 * bytes, prctl PR_SET_NAME; or the kernel cut a UTF-8 name inside a
 * character): bytes outside printable ASCII are shown as '?', so that no
 * escape sequence reaches the terminal and a listing's JSON stays UTF-8. */
const char *cli_program(char *buf, size_t cap, pid_t pid) {
        snprintf(buf, cap, "-");
        if (pid <= 0 || cap < 2)
                return buf;
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f)
                return buf;
        if (fgets(buf, (int)cap, f)) {
                buf[strcspn(buf, "\n")] = 0;
                str_printable(buf);
        }
        if (!buf[0])
                snprintf(buf, cap, "-");
        fclose(f);
        return buf;
}
