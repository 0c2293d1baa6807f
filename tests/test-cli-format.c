/*
 * test-cli-format.c — `ipcf cat --format` and `ipcf listen --format` (raw,
 * line, len, hex) and their -v progress, end to end: a real daemon on a
 * private runtime directory, real `ipcf listen` and `ipcf cat` processes
 * started by a shell with files as stdin/stdout/stderr, and the bytes of
 * those files checked exactly — in both directions (cat -> listen, and
 * listen's stdin -> cat's stdout), across formats (the message boundaries
 * one side cuts are the ones the other side writes), and the hostile inputs:
 * a record larger than the flow's largest message, a length prefix that
 * lies, a truncated prefix, a bad hex digit — each a one-line error naming
 * the record, exit 1, with the messages before it delivered.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/shell.h"
#include "support/test.h"

/* Create the scratch file name with exactly these bytes. */
static void put(const char *name, const void *data, size_t len) {
        FILE *f = fopen(test_scratch(name), "wb");
        CHECK(f != NULL);
        CHECK_EQ(fwrite(data, 1, len, f), len);
        CHECK_EQ(fclose(f), 0);
}

/* The whole scratch file name (NUL-terminated; *ret_len its length). */
static char *get(const char *name, size_t *ret_len) {
        FILE *f = fopen(test_scratch(name), "rb");
        CHECK(f != NULL);
        size_t cap = 1 << 12, len = 0, n;
        char *buf = malloc(cap + 1);
        CHECK(buf != NULL);
        while ((n = fread(buf + len, 1, cap - len, f)) > 0)
                if ((len += n) == cap)
                        CHECK((buf = realloc(buf, (cap *= 2) + 1)) != NULL);
        fclose(f);
        buf[len] = 0;
        *ret_len = len;
        return buf;
}

/* The file holds exactly len bytes of want. */
static void check_file(const char *name, const void *want, size_t len) {
        size_t got_len;
        char *got = get(name, &got_len);
        if (got_len != len || memcmp(got, want, len) != 0)
                test_fail(__FILE__, __LINE__, "%s: %zu bytes, want %zu:\n%s", name, got_len, len, got);
        free(got);
}

/* `ipcf listen t.fmt LARGS < l.in > l.out 2> l.err` in the background,
 * once it is registered `ipcf cat t.fmt CARGS < c.in > c.out 2> c.err`, then
 * both waited for (listen at most 30 s). Returns "CAT LISTEN" exit statuses. */
static char *pair(const char *largs, const char *cargs) {
        char *bin = test_built("bin");
        char *out = TEST_SH_OK(
                "cd '%s' && export PATH='%s':\"$PATH\"; "
                "timeout 30 ipcf listen t.fmt %s < l.in > l.out 2> l.err & L=$!; i=0; "
                "until ipcf ls t.fmt --json 2>/dev/null | grep -q '\"t.fmt\"'; do "
                "  i=$((i+1)); [ $i -gt 400 ] && { kill $L; echo 'not registered'; exit 1; }; sleep 0.05; "
                "done; "
                "ipcf cat t.fmt %s < c.in > c.out 2> c.err; c=$?; wait $L; echo \"$c $?\"",
                test_scratch(""), bin, largs, cargs);
        free(bin);
        return out;
}

static void check_status(const char *got, const char *want) {
        if (strcmp(got, want) != 0)
                test_fail(__FILE__, __LINE__, "exit statuses (cat listen) '%.*s', want '%s'\ncat: %s\nlisten: %s",
                          (int)strcspn(got, "\n"), got, want, get("c.err", &(size_t){ 0 }),
                          get("l.err", &(size_t){ 0 }));
}

/* One copy: what each side reads (l_in: listen's stdin, c_in: cat's) and
 * what each must write, byte for byte. Lengths are explicit: the texts hold
 * NULs. */
typedef struct copy_case {
        const char *what, *largs, *cargs;
        const char *c_in; size_t c_in_len;
        const char *l_in; size_t l_in_len;
        const char *l_out; size_t l_out_len;
        const char *c_out; size_t c_out_len;
} copy_case;

#define B(s) s, sizeof(s) - 1 /* a literal and its length */

static const copy_case copies[] = {
        /* Each format to itself, cat -> listen: empty records dropped, the
         * last line's '\n' supplied. */
        { "line", "--format=line", "--format=line", B("one\ntwo two\n\nthree"), B(""),
          B("one\ntwo two\nthree\n"), B("") },
        /* The same through a ZERO-capacity flow, whose sending side runs in a
         * thread of its own (copy.c). */
        { "line, zero capacity", "--format=line", "--format=line --capacity=zero",
          B("one\ntwo two\n\nthree"), B(""), B("one\ntwo two\nthree\n"), B("") },
        /* Two messages (one with a NUL and a '\n') and an empty record. */
        { "len", "-f len", "-f len", B("\0\0\0\3a\nb" "\0\0\0\0" "\0\0\0\2\0\xff"), B(""),
          B("\0\0\0\3a\nb" "\0\0\0\2\0\xff"), B("") },
        /* Either case, spaces anywhere between digits, CRLF; a blank line. */
        { "hex", "--format hex", "--format=hex", B("00 FF 1a\r\n\n4142 4344\n"), B(""),
          B("00 ff 1a\n41 42 43 44\n"), B("") },
        /* raw keeps today's behaviour: the bytes as they are. */
        { "raw", "", "--format=raw", B("raw\n\nbytes"), B(""), B("raw\n\nbytes"), B("") },
        /* The other direction: listen's stdin -> cat's stdout. */
        { "line back", "--format=line", "--format=line", B(""), B("alpha\nbeta\n"), B(""),
          B("alpha\nbeta\n") },
        { "len back", "--format=len", "--format=len", B(""), B("\0\0\0\1x" "\0\0\0\4abcd"), B(""),
          B("\0\0\0\1x" "\0\0\0\4abcd") },
        { "hex back", "--format=hex", "--format=hex", B(""), B("de ad\nbeef\n"), B(""),
          B("de ad\nbe ef\n") },
        /* Across formats: the boundaries one side cuts are those the other
         * writes. Lines in, length-prefixed out... */
        { "line to len", "--format=len", "--format=line", B("ab\ncde\n"), B(""),
          B("\0\0\0\2ab\0\0\0\3cde"), B("") },
        /* ...and both directions at once: listen reads hex and cat prints
         * length-prefixed records, cat reads len and listen prints hex. */
        { "both ways", "--format=hex", "--format=len", B("\0\0\0\2\x01\x02"), B("68 69\n6f6b\n"),
          B("01 02\n"), B("\0\0\0\2hi\0\0\0\2ok") },
};

TEST_TIMEOUT(each_format_both_directions_and_across, 180) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        for (size_t i = 0; i < sizeof(copies) / sizeof(copies[0]); i++) {
                const copy_case *c = &copies[i];
                printf("  %s\n", c->what);
                put("c.in", c->c_in, c->c_in_len);
                put("l.in", c->l_in, c->l_in_len);
                char *st = pair(c->largs, c->cargs);
                check_status(st, "0 0\n");
                check_file("l.out", c->l_out, c->l_out_len);
                check_file("c.out", c->c_out, c->c_out_len);
                free(st);
        }
        test_daemon_stop(&d);
}

/* Hostile input: cat exits 1 with one line naming the record and the
 * reason; the messages before it arrived; the listener ends normally. */
static void check_bad_input(const char *cargs, const void *in, size_t len, const char *err,
                            const char *delivered, size_t dlen) {
        put("c.in", in, len);
        char *st = pair("--format=hex", cargs);
        check_status(st, "1 0\n");
        check_file("c.err", err, strlen(err));
        check_file("l.out", delivered, dlen);
        free(st);
}

TEST_TIMEOUT(too_big_and_bad_records_are_errors, 180) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        put("l.in", "", 0);
        check_bad_input("--format=line --max-msg-size=16", "short\n0123456789abcdefX\n", 24,
                        "ipcf: cat t.fmt: input: line 2 is longer than 16 bytes (the flow's largest message)\n",
                        "73 68 6f 72 74\n", 15);
        /* A line of exactly 16 bytes is fine; the error is the next one. */
        check_bad_input("--format=line --max-msg-size=16", "0123456789abcdef\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 58,
                        "ipcf: cat t.fmt: input: line 2 is longer than 16 bytes (the flow's largest message)\n",
                        "30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66\n", 48);
        check_bad_input("--format=len --max-msg-size=16", "\0\0\0\1Z\0\0\0\x11", 9,
                        "ipcf: cat t.fmt: input: the length prefix of message 2 says 17 bytes, more than 16 (the flow's largest message)\n",
                        "5a\n", 3);
        /* A prefix of 4 GiB - 1: refused at once, nothing read for it. */
        check_bad_input("--format=len", "\xff\xff\xff\xff", 4,
                        "ipcf: cat t.fmt: input: the length prefix of message 1 says 4294967295 bytes, more than 262144 (the flow's largest message)\n",
                        "", 0);
        check_bad_input("--format=len", "\0\0\0\1Z\0\0\0\x0a" "abc", 12,
                        "ipcf: cat t.fmt: input: input ends inside message 2 (its prefix says 10 bytes, 3 follow)\n",
                        "5a\n", 3);
        check_bad_input("--format=len", "\0\0\0\1Z\0\0", 7,
                        "ipcf: cat t.fmt: input: input ends inside the length prefix of message 2 (2 of 4 bytes)\n",
                        "5a\n", 3);
        check_bad_input("--format=hex", "41\n4g\n", 6,
                        "ipcf: cat t.fmt: input: line 2: 'g' (byte 2) is not a hex digit\n", "41\n", 3);
        check_bad_input("--format=hex", "414\n", 4,
                        "ipcf: cat t.fmt: input: line 1 has an odd number of hex digits (3)\n", "", 0);
        check_bad_input("--format=hex --max-msg-size=2", "41 42 43\n", 9,
                        "ipcf: cat t.fmt: input: line 1 holds more than 2 bytes (the flow's largest message)\n",
                        "", 0);
        test_daemon_stop(&d);
}

/* Records need messages: cat refuses --stream with a format (usage, exit 2,
 * nothing allocated); a listener with a format refuses a stream flow with a
 * reason the requester prints; --format with --echo is a usage error; an
 * unknown format is a usage error. */
TEST(formats_need_message_mode) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *bin = test_built("bin/ipcf"), *out = NULL;
        CHECK_EQ(test_sh(&out, 20, "'%s' cat t.fmt --format=line --stream </dev/null", bin), 2);
        CHECK(strstr(out, "ipcf: cat: --format=line needs message mode, not --stream") != NULL);
        free(out);
        CHECK_EQ(test_sh(&out, 20, "'%s' cat t.fmt --format=yaml </dev/null", bin), 2);
        CHECK(strstr(out, "ipcf: cat: bad value for --format: 'yaml'") != NULL);
        free(out);
        CHECK_EQ(test_sh(&out, 20, "'%s' listen t.fmt --echo --format=len </dev/null", bin), 2);
        CHECK(strstr(out, "--format applies to the copy, not to --echo or --sink") != NULL);
        free(out);
        free(bin);

        put("l.in", "", 0);
        put("c.in", "x\n", 2);
        char *st = pair("--format=line --timeout-ms=5000", "--stream");
        check_status(st, "1 1\n"); /* the listener's wait for a flow then times out */
        static const char refused[] = "ipcf: cat t.fmt: refused by the target: message mode required\n";
        check_file("c.err", refused, strlen(refused));
        free(st);
        test_daemon_stop(&d);
}

/* -v on a transfer longer than a second: progress lines once a second, then
 * a summary whose counts are exactly what was sent (2 MiB in 4 line records
 * of 512 KiB), on both sides; a short transfer prints none. */
TEST_TIMEOUT(verbose_reports_progress, 120) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        char *bin = test_built("bin");
        char *out = TEST_SH_OK(
                "cd '%s' && export PATH='%s':\"$PATH\"; "
                "line() { head -c 524288 /dev/zero | tr '\\0' x; echo; }; "
                "timeout 30 ipcf listen t.fmt -v --format=len </dev/null > l.out 2> l.err & L=$!; i=0; "
                "until ipcf ls t.fmt --json 2>/dev/null | grep -q '\"t.fmt\"'; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 1; done; "
                "{ line; line; sleep 1.6; line; line; } | ipcf cat t.fmt -v --format=line --max-msg-size=1M 2> c.err; "
                "c=$?; wait $L; echo \"$c $?\"; wc -c < l.out",
                test_scratch(""), bin);
        CHECK(strcmp(out, "0 0\n2097168\n") == 0); /* 4 x (4 + 512 KiB) */
        free(out);
        size_t n;
        char *cerr = get("c.err", &n), *lerr = get("l.err", &n);
        /* A progress line came while cat waited for its input (normally
         * "sent 1.00 MiB in 2 msgs": the second pair comes 1.6 s later)... */
        CHECK(strstr(cerr, "ipcf: cat t.fmt: sent ") != NULL);
        CHECK(strstr(lerr, "ipcf: listen t.fmt: sent 0 B in 0 msgs, received ") != NULL);
        /* ...and the summaries count every byte and message. */
        CHECK(strstr(cerr, "ipcf: cat t.fmt: done in ") != NULL);
        CHECK(strstr(cerr, " s: sent 2.00 MiB in 4 msgs, received 0 B in 0 msgs, ") != NULL);
        CHECK(strstr(lerr, " s: sent 0 B in 0 msgs, received 2.00 MiB in 4 msgs, ") != NULL);
        free(cerr);
        free(lerr);

        /* --sink -v counts too; a short transfer reports nothing. */
        out = TEST_SH_OK(
                "cd '%s' && export PATH='%s':\"$PATH\"; "
                "timeout 30 ipcf listen t.fmt --sink -v 2> s.err & L=$!; i=0; "
                "until ipcf ls t.fmt --json 2>/dev/null | grep -q '\"t.fmt\"'; do sleep 0.05; i=$((i+1)); [ $i -gt 400 ] && exit 1; done; "
                "head -c 1000 /dev/zero | ipcf cat t.fmt -v 2> c.err; c=$?; wait $L; echo \"$c $?\"",
                test_scratch(""), bin);
        CHECK(strcmp(out, "0 0\n") == 0);
        free(out);
        cerr = get("c.err", &n);
        lerr = get("s.err", &n);
        CHECK(strstr(cerr, " msgs") == NULL);
        CHECK(strstr(lerr, " msgs") == NULL);
        CHECK(strstr(lerr, "flow ended: eof") != NULL);
        free(cerr);
        free(lerr);
        free(bin);
        test_daemon_stop(&d);
}
