/*
 * format.c — how `ipcf cat` and `ipcf listen` cut their input into messages
 * and write the messages they receive (--format, like nngcat's):
 *   raw   input: each read() is a message (up to max_msg_size); output: the
 *         bytes as they are (no boundaries).
 *   line  one message per line: input lines without their '\n' (a last line
 *         without '\n' counts); output each message followed by '\n'.
 *   len   each message preceded by its length, 4 bytes big-endian.
 *   hex   one message per line, its bytes as pairs of hex digits: output
 *         "48 65 6c 6c 6f"; input the same, white space ignored, either case.
 * Empty records (an empty line, a length of 0) are skipped on input: in
 * MESSAGE mode the empty message is the end marker (copy.c).
 *
 * A format is an ops row (cli_format); a new one is a row in `formats`.
 * The input side (cli_unframe) is driven by the copy loop: it reads once when
 * poll() says the input is readable, then takes out the complete messages.
 * Input is untrusted: a record larger than the flow's largest message, a bad
 * length prefix, a bad hex digit or an input that ends inside a record fail
 * with an error text that says which record and why (fuzz/fuzz-unframe.c).
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The largest message a framed input may carry, whatever max_msg_size says:
 * the input buffer is a few times this. */
#define FORMAT_MAX_MSG (64u << 20)

struct cli_format {
        const char *name;
        /* Bytes of input one record of a max-byte message may take. */
        size_t (*record_max)(size_t max);
        /* Take the next complete record from u's buffer into out: its length
         * (> 0), 0 if none is complete (at u->eof: the input is over), or
         * -EMSGSIZE/-EBADMSG with u->err filled. NULL: raw (no records). */
        ssize_t (*next)(cli_unframe *u, char *out);
        /* Write one received message to fd. 0 or -errno. */
        int (*write)(int fd, const void *msg, size_t len);
};

/* ---- errors ---------------------------------------------------------------- */

static ssize_t unframe_error(cli_unframe *u, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static ssize_t unframe_error(cli_unframe *u, int err, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(u->err, sizeof(u->err), fmt, ap);
        va_end(ap);
        return err;
}

/* ---- line ------------------------------------------------------------------ */

/* The next line of u's buffer (without '\n'): its start and length, 1; 0 if
 * no line is complete yet; -EMSGSIZE if it is longer than limit characters. */
static int take_line(cli_unframe *u, size_t limit, const char **ret_p, size_t *ret_n) {
        const char *p = u->buf + u->off;
        size_t avail = u->len - u->off;
        size_t look = avail < limit + 1 ? avail : limit + 1;
        const char *nl = memchr(p, '\n', look);
        size_t n;
        if (nl) {
                n = (size_t)(nl - p);
                u->off += n + 1;
        } else if (avail > limit) {
                n = avail;
        } else if (u->eof && avail > 0) {
                n = avail; /* the last line, without its '\n' */
                u->off += n;
        } else {
                return 0;
        }
        u->records++;
        if (n > limit)
                return -EMSGSIZE;
        *ret_p = p;
        *ret_n = n;
        return 1;
}

static size_t line_record_max(size_t max) {
        return max + 1;
}

static ssize_t line_next(cli_unframe *u, char *out) {
        for (;;) {
                const char *p;
                size_t n;
                int r = take_line(u, u->max, &p, &n);
                if (r == -EMSGSIZE)
                        return unframe_error(u, r, "line %llu is longer than %zu bytes (the flow's largest message)",
                                             (unsigned long long)u->records, u->max);
                if (r <= 0)
                        return r;
                if (n == 0)
                        continue; /* an empty line: not a message */
                memcpy(out, p, n);
                return (ssize_t)n;
        }
}

static int line_write(int fd, const void *msg, size_t len) {
        int r = cli_write_all(fd, msg, len);
        return r < 0 ? r : cli_write_all(fd, "\n", 1);
}

/* ---- len ------------------------------------------------------------------- */

static size_t len_record_max(size_t max) {
        return 4 + max;
}

static ssize_t len_next(cli_unframe *u, char *out) {
        for (;;) {
                const unsigned char *p = (const unsigned char *)u->buf + u->off;
                size_t avail = u->len - u->off;
                unsigned long long rec = (unsigned long long)u->records + 1;
                if (avail < 4) {
                        if (u->eof && avail > 0)
                                return unframe_error(u, -EBADMSG,
                                                     "input ends inside the length prefix of message %llu (%zu of 4 bytes)",
                                                     rec, avail);
                        return 0;
                }
                size_t n = (size_t)p[0] << 24 | (size_t)p[1] << 16 | (size_t)p[2] << 8 | p[3];
                if (n > u->max)
                        return unframe_error(u, -EMSGSIZE,
                                             "the length prefix of message %llu says %zu bytes, more than %zu (the flow's largest message)",
                                             rec, n, u->max);
                if (avail - 4 < n) {
                        if (u->eof)
                                return unframe_error(u, -EBADMSG,
                                                     "input ends inside message %llu (its prefix says %zu bytes, %zu follow)",
                                                     rec, n, avail - 4);
                        return 0;
                }
                u->off += 4 + n;
                u->records++;
                if (n == 0)
                        continue;
                memcpy(out, p + 4, n);
                return (ssize_t)n;
        }
}

static int len_write(int fd, const void *msg, size_t len) {
        if (len > UINT32_MAX)
                return -EMSGSIZE;
        unsigned char hdr[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                                 (unsigned char)(len >> 8), (unsigned char)len };
        int r = cli_write_all(fd, hdr, sizeof(hdr));
        return r < 0 ? r : cli_write_all(fd, msg, len);
}

/* ---- hex ------------------------------------------------------------------- */

/* The longest line: "ab cd" plus slack for other white space. */
static size_t hex_line_max(size_t max) {
        return 3 * max + 64;
}

/* A line of the longest plus its '\n' (take_line needs to see one more). */
static size_t hex_record_max(size_t max) {
        return hex_line_max(max) + 1;
}

static int hex_digit(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

static ssize_t hex_next(cli_unframe *u, char *out) {
        for (;;) {
                const char *p;
                size_t n;
                int r = take_line(u, hex_line_max(u->max), &p, &n);
                unsigned long long rec = (unsigned long long)u->records;
                if (r == -EMSGSIZE)
                        return unframe_error(u, r, "line %llu is longer than %zu characters", rec,
                                             hex_line_max(u->max));
                if (r <= 0)
                        return r;
                size_t got = 0, digits = 0;
                for (size_t i = 0; i < n; i++) {
                        char c = p[i];
                        if (c == ' ' || c == '\t' || c == '\r')
                                continue;
                        int d = hex_digit(c);
                        if (d < 0)
                                return unframe_error(u, -EBADMSG,
                                                     "line %llu: '%c' (byte %zu) is not a hex digit", rec,
                                                     c >= ' ' && c < 0x7f ? c : '?', i + 1);
                        if (digits % 2 == 0 && got == u->max)
                                return unframe_error(u, -EMSGSIZE,
                                                     "line %llu holds more than %zu bytes (the flow's largest message)",
                                                     rec, u->max);
                        if (digits++ % 2 == 0)
                                out[got] = (char)(d << 4);
                        else
                                out[got++] |= (char)d;
                }
                if (digits % 2)
                        return unframe_error(u, -EBADMSG, "line %llu has an odd number of hex digits (%zu)",
                                             rec, digits);
                if (got > 0)
                        return (ssize_t)got;
        }
}

static int hex_write(int fd, const void *msg, size_t len) {
        static const char digit[] = "0123456789abcdef";
        const unsigned char *m = msg;
        char buf[3 * 1024];
        size_t k = 0;
        for (size_t i = 0; i < len; i++) {
                buf[k++] = digit[m[i] >> 4];
                buf[k++] = digit[m[i] & 15];
                buf[k++] = i + 1 < len ? ' ' : '\n';
                if (k == sizeof(buf)) {
                        int r = cli_write_all(fd, buf, k);
                        if (r < 0)
                                return r;
                        k = 0;
                }
        }
        return k ? cli_write_all(fd, buf, k) : 0;
}

/* ---- the table ------------------------------------------------------------- */

static const cli_format formats[] = {
        { "raw", NULL, NULL, cli_write_all },
        { "line", line_record_max, line_next, line_write },
        { "len", len_record_max, len_next, len_write },
        { "hex", hex_record_max, hex_next, hex_write },
};

const char cli_format_names[] = "raw | line | len | hex";

const cli_format *cli_format_find(const char *name) {
        for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
                if (!strcmp(name, formats[i].name))
                        return &formats[i];
        return NULL;
}

const char *cli_format_name(const cli_format *f) {
        return f->name;
}

bool cli_format_framed(const cli_format *f) {
        return f->next != NULL;
}

int cli_format_write(const cli_format *f, int fd, const void *msg, size_t len) {
        return f->write(fd, msg, len);
}

/* ---- the input side -------------------------------------------------------- */

int cli_unframe_init(cli_unframe *u, const cli_format *f, size_t max) {
        memset(u, 0, sizeof(*u));
        if (!f->next)
                return -EINVAL;
        u->f = f;
        u->max = max == 0 || max > FORMAT_MAX_MSG ? FORMAT_MAX_MSG : max;
        u->cap = f->record_max(u->max);
        u->buf = malloc(u->cap);
        return u->buf ? 0 : -ENOMEM;
}

void cli_unframe_done(cli_unframe *u) {
        free(u->buf);
        u->buf = NULL;
}

int cli_unframe_read(cli_unframe *u, int fd) {
        if (u->off > 0) {
                memmove(u->buf, u->buf + u->off, u->len - u->off);
                u->len -= u->off;
                u->off = 0;
        }
        if (u->len == u->cap)
                return 0; /* next() reports the record too long */
        ssize_t n = read(fd, u->buf + u->len, u->cap - u->len);
        if (n < 0)
                return -errno;
        if (n == 0)
                u->eof = true;
        u->len += (size_t)n;
        return 0;
}

size_t cli_unframe_feed(cli_unframe *u, const void *data, size_t len, bool eof) {
        if (u->off > 0) {
                memmove(u->buf, u->buf + u->off, u->len - u->off);
                u->len -= u->off;
                u->off = 0;
        }
        if (len > u->cap - u->len)
                len = u->cap - u->len;
        memcpy(u->buf + u->len, data, len);
        u->len += len;
        u->eof = eof;
        return len;
}

ssize_t cli_unframe_next(cli_unframe *u, char *out) {
        return u->f->next(u, out);
}
