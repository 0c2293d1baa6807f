/*
 * fuzz-unframe.c — libFuzzer target for the input side of `ipcf cat/listen
 * --format` (src/cli/format.c), which reads whatever stdin holds. The first
 * byte picks the format (line, len, hex) and the largest message (1..64
 * bytes, or 4096), the second how the rest is cut into reads;
 * the rest is the input.
 *
 * Invariants: nothing is read or written outside the buffers (ASan); every
 * message is 1..max bytes; an error has a text; the input is consumed (no
 * endless "nothing complete yet" once it has ended); and the messages, written
 * back with the same format and cut again, give the same messages.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What cli_format_write writes: the target's memory, not a descriptor. */
static char *sink;
static size_t sink_len, sink_cap;

int cli_write_all(int fd, const void *buf, size_t len) {
        (void)fd;
        if (sink_len + len > sink_cap) {
                sink_cap = (sink_len + len) * 2;
                sink = realloc(sink, sink_cap);
                if (!sink)
                        abort();
        }
        memcpy(sink + sink_len, buf, len);
        sink_len += len;
        return 0;
}

static void check(bool ok) {
        if (!ok)
                abort();
}

/* Cut in (reads of at most step bytes) into messages; each is passed to fn.
 * Returns the number of messages, or -1 after an error. */
static long cut(const cli_format *f, size_t max, const uint8_t *in, size_t len, size_t step,
                void (*fn)(const char *msg, size_t n, void *ctx), void *ctx) {
        cli_unframe u;
        check(cli_unframe_init(&u, f, max) == 0);
        char *out = malloc(u.max ? u.max : 1);
        check(out != NULL);
        long n_msgs = 0;
        size_t off = 0;
        for (unsigned guard = 0;; guard++) {
                check(guard < 4 * (len + 4) + 16);
                ssize_t n = cli_unframe_next(&u, out);
                if (n < 0) {
                        check((n == -EMSGSIZE || n == -EBADMSG) && u.err[0]);
                        n_msgs = -1;
                        break;
                }
                if (n > 0) {
                        check((size_t)n <= u.max);
                        fn(out, (size_t)n, ctx);
                        n_msgs++;
                        continue;
                }
                if (u.eof)
                        break;
                size_t take = len - off < step ? len - off : step;
                off += cli_unframe_feed(&u, in + off, take, false);
                if (off == len)
                        cli_unframe_feed(&u, in + off, 0, true);
        }
        free(out);
        cli_unframe_done(&u);
        return n_msgs;
}

static void write_back(const char *msg, size_t n, void *ctx) {
        check(cli_format_write(ctx, 1, msg, n) == 0);
}

/* The messages of the first cut, in one buffer, each after its length. */
static char *first;
static size_t first_len, first_pos;

static void record(const char *msg, size_t n, void *ctx) {
        (void)ctx;
        first = realloc(first, first_len + sizeof(n) + n);
        check(first != NULL);
        memcpy(first + first_len, &n, sizeof(n));
        memcpy(first + first_len + sizeof(n), msg, n);
        first_len += sizeof(n) + n;
}

static void compare(const char *msg, size_t n, void *ctx) {
        (void)ctx;
        size_t want;
        check(first_pos + sizeof(want) <= first_len);
        memcpy(&want, first + first_pos, sizeof(want));
        check(want == n && memcmp(first + first_pos + sizeof(want), msg, n) == 0);
        first_pos += sizeof(want) + n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const names[] = { "line", "len", "hex" };
        if (size < 2)
                return 0;
        const cli_format *f = cli_format_find(names[data[0] % 3]);
        size_t max = (data[0] >> 2) == 63 ? 4096 : (data[0] >> 2) + 1u;
        size_t step = data[1] ? data[1] : 1;
        data += 2;
        size -= 2;

        first_len = first_pos = 0;
        long n = cut(f, max, data, size, step, record, NULL);
        /* Written back and cut again: the same messages (whole input, one read). */
        sink_len = 0;
        first_pos = 0;
        if (n > 0) {
                size_t pos = 0;
                while (pos < first_len) {
                        size_t k;
                        memcpy(&k, first + pos, sizeof(k));
                        write_back(first + pos + sizeof(k), k, (void *)f);
                        pos += sizeof(k) + k;
                }
                check(cut(f, max, (const uint8_t *)sink, sink_len, sink_len + 1, compare, NULL) == n);
                check(first_pos == first_len);
        }
        return 0;
}
