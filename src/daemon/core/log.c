/*
 * log.c — see log.h. Each message is formatted into one buffer and written
 * with a single write(2) so lines from a crashing child never interleave.
 */
#include "daemon/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

bool log_verbose;

__attribute__((format(printf, 1, 0))) static void log_line(const char *fmt, va_list ap) {
        char buf[1024];
        int n = snprintf(buf, sizeof(buf), "ipcfd[%d]: ", (int)getpid());
        int m = vsnprintf(buf + n, sizeof(buf) - (size_t)n - 1, fmt, ap);
        if (m < 0)
                return;
        size_t len = (size_t)n + ((size_t)m < sizeof(buf) - (size_t)n - 1 ? (size_t)m : sizeof(buf) - (size_t)n - 2);
        buf[len++] = '\n';
        ssize_t w = write(STDERR_FILENO, buf, len);
        (void)w; /* nothing to do if stderr is gone */
}

void log_error(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_line(fmt, ap);
        va_end(ap);
}

void log_debug(const char *fmt, ...) {
        va_list ap;
        if (!log_verbose)
                return;
        va_start(ap, fmt);
        log_line(fmt, ap);
        va_end(ap);
}
