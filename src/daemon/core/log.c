/*
 * log.c — see log.h. Each message is formatted into one buffer and written
 * with a single write(2) so lines from a crashing child never interleave.
 *
 * Two forms of a line, chosen once, at the first message:
 *  - stderr is the journal (systemd set JOURNAL_STREAM to the device and
 *    inode of our stderr): "<3>text" for errors, "<6>text" for the
 *    daemon's life (serving, reloaded, exiting), "<7>text" for debug lines,
 *    the priority prefixes journald reads (the journal adds name and pid);
 *  - otherwise (a terminal, a file, an autostart's ipcfd.log):
 *    "ipcfd[PID]: text".
 */
#include "daemon/core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

bool log_verbose;

enum { LOG_PRIO_ERR = 3, LOG_PRIO_INFO = 6, LOG_PRIO_DEBUG = 7 };

/* Is stderr the stream JOURNAL_STREAM ("DEV:INO") names? A variable
 * inherited through a redirection no longer matches, as sd_journal says. */
static bool stderr_is_journal(void) {
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

__attribute__((format(printf, 2, 0))) static void log_line(int prio, const char *fmt, va_list ap) {
        static int journal = -1;
        char buf[1024];
        int n;
        if (journal < 0)
                journal = stderr_is_journal();
        if (journal)
                n = snprintf(buf, sizeof(buf), "<%d>", prio);
        else
                n = snprintf(buf, sizeof(buf), "ipcfd[%d]: ", (int)getpid());
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
        log_line(LOG_PRIO_ERR, fmt, ap);
        va_end(ap);
}

void log_info(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_line(LOG_PRIO_INFO, fmt, ap);
        va_end(ap);
}

void log_debug(const char *fmt, ...) {
        va_list ap;
        if (!log_verbose)
                return;
        va_start(ap, fmt);
        log_line(LOG_PRIO_DEBUG, fmt, ap);
        va_end(ap);
}
