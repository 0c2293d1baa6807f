/*
 * flowopt.c — the options every flow command shares (the flow's "qos") and
 * the allocation helper built on them.
 *
 * listen, cat, ping and perf set their cli_spec's flow field; the parser
 * (args.c) then accepts cli_flow_options and hands them to cli_flow_opt().
 * So the spelling, the checks and the help text of these options exist once.
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include "common/ctl.h"
#include "common/ring.h"
#include "common/util.h"

const char cli_flow_opts_help[] =
        "flow options (the allocating side chooses; see docs/CLI.md):\n"
        "  --stream               byte stream instead of whole messages\n"
        "  --capacity=KIND        zero | bounded (default) | unbounded\n"
        "  --max-bytes=N          queue bytes per direction (k/M/G suffixes)\n"
        "  --max-msgs=N           at most N queued messages (bounded)\n"
        "  --max-msg-size=N       largest message (default 256K)\n"
        "  --full=POLICY          when the queue is full: block | fail | cache\n"
        "  --cache-msgs=N         messages the sender may cache (--full=cache)\n"
        "  --spin-us=N            spin this long before sleeping (0: never spin)\n"
        "  --timeout-ms=N         wait for the allocation (or a flow) at most N ms\n";

const cli_option cli_flow_options[] = {
        { "stream", CLI_OPT_STREAM, false },
        { "capacity", CLI_OPT_CAPACITY, true },
        { "max-bytes", CLI_OPT_MAX_BYTES, true },
        { "max-msgs", CLI_OPT_MAX_MSGS, true },
        { "max-msg-size", CLI_OPT_MAX_MSG_SIZE, true },
        { "full", CLI_OPT_FULL, true },
        { "cache-msgs", CLI_OPT_CACHE_MSGS, true },
        { "spin-us", CLI_OPT_SPIN_US, true },
        { "timeout-ms", CLI_OPT_TIMEOUT_MS, true },
        { 0 },
};

/* The library's defaults, so that an option changes only what it names. */
void cli_flow_opts_init(cli_flow_opts *o, int default_timeout_ms) {
        memset(o, 0, sizeof(*o));
        ipcf_qos_init(&o->qos);
        o->timeout_ms = default_timeout_ms;
}

/* Look word up in a NULL-terminated list of names; its index or -1. */
static int pick(const char *word, const char *const *names) {
        for (int i = 0; names[i]; i++)
                if (!strcmp(word, names[i]))
                        return i;
        return -1;
}

/* The enum values of ipcf.h, in the order of these names. */
static const char *const capacity_names[] = { "bounded", "zero", "unbounded", NULL };
static const char *const mode_names[] = { "message", "stream", NULL };
static const char *const full_names[] = { "block", "fail", "cache", NULL };

const char *cli_capacity_name(unsigned capacity) {
        return capacity < 3 ? capacity_names[capacity] : "?";
}
const char *cli_mode_name(unsigned mode) {
        return mode < 2 ? mode_names[mode] : "?";
}
const char *cli_full_name(unsigned full) {
        return full < 3 ? full_names[full] : "?";
}

/* Claim and check one shared option. A bad value breaks out of the switch
 * to the common usage error at the end; an unknown code returns 0. */
int cli_flow_opt(int opt, const char *arg, cli_flow_opts *o) {
        uint64_t v = 0;
        int k;
        switch (opt) {
        case CLI_OPT_STREAM:
                o->qos.mode = IPCF_MODE_STREAM;
                o->set_mode = true;
                return 1;
        case CLI_OPT_CAPACITY:
                if ((k = pick(arg, capacity_names)) < 0)
                        break;
                o->qos.capacity = (uint8_t)k;
                o->set_capacity = true;
                /* Without --max-bytes, max_bytes stays 0, as ipcf_qos_init()
                 * left it: the facility picks the capacity's default (64 MiB
                 * for UNBOUNDED). */
                if (k == IPCF_CAPACITY_UNBOUNDED && !o->set_max_bytes)
                        o->qos.max_bytes = 0;
                return 1;
        case CLI_OPT_FULL:
                if ((k = pick(arg, full_names)) < 0)
                        break;
                o->qos.full = (uint8_t)k;
                return 1;
        case CLI_OPT_MAX_BYTES: /* its limit depends on --capacity: cli_flow_opts_check */
                if (cli_parse_size(arg, UINT64_MAX, &v) < 0)
                        break;
                o->qos.max_bytes = v;
                o->set_max_bytes = true;
                return 1;
        case CLI_OPT_MAX_MSGS:
                if (cli_parse_size(arg, UINT32_MAX, &v) < 0)
                        break;
                o->qos.max_msgs = (uint32_t)v;
                return 1;
        case CLI_OPT_MAX_MSG_SIZE:
                if (cli_parse_size(arg, QOS_LIMIT_MAX_MSG, &v) < 0 || v == 0)
                        break;
                o->qos.max_msg_size = (uint32_t)v;
                o->set_max_msg_size = true;
                return 1;
        case CLI_OPT_CACHE_MSGS:
                if (cli_parse_uint(arg, QOS_LIMIT_CACHE_MSGS, &v) < 0)
                        break;
                o->qos.cache_msgs = (uint32_t)v;
                return 1;
        case CLI_OPT_SPIN_US:
                if (cli_parse_uint(arg, QOS_LIMIT_SPIN_US, &v) < 0)
                        break;
                o->qos.spin_us = (uint32_t)v;
                return 1;
        case CLI_OPT_TIMEOUT_MS:
                /* -1 means "wait for ever", as everywhere in the API. */
                if (!strcmp(arg, "-1"))
                        o->timeout_ms = -1;
                else if (cli_parse_uint(arg, INT32_MAX, &v) == 0)
                        o->timeout_ms = (int)v;
                else
                        break;
                o->set_timeout = true;
                return 1;
        default:
                return 0; /* not ours */
        }
        return -EINVAL; /* cli_parse names the option in its error line */
}

int cli_flow_opts_check(const char *cmd, const cli_flow_opts *o) {
        /* An allocation always waits for the target's decision (ipcf_alloc:
         * -EINVAL for timeout 0); listen's accept may look without waiting. */
        if (o->set_timeout && o->timeout_ms == 0 && strcmp(cmd, "listen") != 0)
                return cli_usage(cmd, "bad value for --timeout-ms: '0' (an allocation waits for the "
                                      "target's decision: at least 1, or -1 for ever)");
        ipcf_qos q = o->qos;
        uint64_t limit = q.capacity == IPCF_CAPACITY_UNBOUNDED ? QOS_LIMIT_UNBOUNDED : QOS_LIMIT_RING;
        char b[32], m[32];
        if (q.capacity != IPCF_CAPACITY_ZERO && q.max_bytes > limit)
                return cli_usage(cmd, "bad value for --max-bytes: more than %s (the limit of %s queue)",
                                 cli_fmt_bytes(b, sizeof(b), (double)limit),
                                 q.capacity == IPCF_CAPACITY_UNBOUNDED ? "an unbounded" : "a bounded");
        flow_layout l;
        if (ctl_qos_normalize(&q) < 0)
                return cli_usage(cmd, "the flow options ask for what the facility refuses (ipcf_qos in ipcf.h)");
        if (flow_qos_caches(&q) && flow_layout_for(&q, &l) < 0)
                return cli_usage(cmd, "bad value for --cache-msgs: %u messages of %s take more than %s", q.cache_msgs,
                                 cli_fmt_bytes(m, sizeof(m), (double)q.max_msg_size),
                                 cli_fmt_bytes(b, sizeof(b), (double)QOS_LIMIT_RING));
        return 0;
}

int cli_flow_fit_size(const char *cmd, cli_flow_opts *o, uint64_t size) {
        if (o->qos.mode == IPCF_MODE_STREAM)
                return 0; /* a stream moves any size in pieces */
        uint32_t max = o->qos.max_msg_size ? o->qos.max_msg_size : QOS_DEFAULT_MAX_MSG;
        if (size <= max)
                return 0;
        if (o->set_max_msg_size)
                return cli_usage(cmd, "messages of %llu bytes (-s) do not fit --max-msg-size=%u",
                                 (unsigned long long)size, max);
        o->qos.max_msg_size = (uint32_t)size; /* -s is at most 64M: a valid size */
        return cli_flow_opts_check(cmd, o);   /* (a cache of such messages) */
}

/* One line for humans: what ping/perf/listen -v print about a flow. */
const char *cli_qos_describe(char *buf, size_t cap, const ipcf_qos *q) {
        char bytes[32];
        if (q->capacity == IPCF_CAPACITY_ZERO)
                snprintf(bytes, sizeof(bytes), "no buffer");
        else
                cli_fmt_bytes(bytes, sizeof(bytes), (double)q->max_bytes);
        snprintf(buf, cap, "%s, %s %s, full: %s, spin %u us", cli_mode_name(q->mode),
                 cli_capacity_name(q->capacity), bytes, cli_full_name(q->full), q->spin_us);
        return buf;
}

/* The rule of ipcf.h (IPCF_NAME_MAX printable ASCII, no spaces), checked
 * here so that a typo is a usage error (exit 2), not a failed call. */
int cli_name_check(const char *cmd, const char *name) {
        size_t len = strlen(name);
        bool ok = len >= 1 && len <= IPCF_NAME_MAX;
        for (const char *p = name; ok && *p; p++)
                ok = *p > ' ' && *p < 0x7f;
        if (ok)
                return 0;
        char shown[IPCF_NAME_MAX + 1];
        str_copy(shown, name, sizeof(shown));
        str_printable(shown); /* the bad bytes as '?', not sent to the terminal */
        return cli_usage(cmd, "'%s' is not a valid name (1-%d printable characters, no spaces)", shown,
                         IPCF_NAME_MAX);
}

/* Allocation with the reason in the error line when there is one: the
 * target's refusal, "ipcf: cat x: refused by the target: stream mode
 * required", its host's policy, "ipcf: ping x@beta: access denied by the
 * facility's policy: not allowed from host alpha", or a failed activation's. */
int cli_flow_alloc(const char *cmd, const char *name, const cli_flow_opts *o) {
        ipcf_reason why;
        memset(&why, 0, sizeof(why));
        int port = ipcf_alloc(name, &o->qos, o->timeout_ms, &why);
        if (port >= 0)
                return port;
        char what[IPCF_NAME_MAX + 32];
        snprintf(what, sizeof(what), "%s %s", cmd, name);
        cli_error_reason(what, port, &why);
        return port;
}

int cli_flow_write_all(int port, const void *buf, size_t len, int timeout_ms) {
        const char *p = buf;
        uint64_t deadline = timeout_ms < 0 ? UINT64_MAX
                                           : cli_now_ns() + (uint64_t)timeout_ms * 1000000u;
        do {
                uint64_t now = cli_now_ns();
                int left = deadline == UINT64_MAX ? -1
                         : now >= deadline        ? 0
                                                  : (int)((deadline - now + 999999u) / 1000000u);
                ssize_t n = ipcf_write(port, p, len, left);
                if (n == -EAGAIN || n == -ENOBUFS) {
                        /* FULL_FAIL fails at once and an UNBOUNDED queue at its
                         * limit does too: wait for room ourselves, within the
                         * caller's timeout. */
                        if (left == 0)
                                return timeout_ms == 0 ? -EAGAIN : -ETIMEDOUT;
                        int wait_ms = left < 0 || left > 100 ? 100 : left;
                        struct pollfd pfd = { .fd = ipcf_fd_send(port), .events = POLLIN };
                        if (n == -ENOBUFS || pfd.fd < 0)
                                poll(NULL, 0, 1); /* no descriptor tells: retry soon */
                        else
                                poll(&pfd, 1, wait_ms);
                        continue;
                }
                if (n < 0)
                        return (int)n;
                p += n;
                len -= (size_t)n;
        } while (len > 0);
        return 0;
}

/* MESSAGE mode: one read must be exactly one message of len bytes (a bigger
 * one stays queued: -EMSGSIZE becomes -EBADMSG). STREAM: gather len bytes. */
int cli_flow_read_full(int port, void *buf, size_t len, bool stream, int timeout_ms) {
        char *p = buf;
        if (!stream) {
                ssize_t n = ipcf_read(port, p, len, timeout_ms);
                if (n == -EMSGSIZE || (n >= 0 && (size_t)n != len))
                        return -EBADMSG;
                return n < 0 ? (int)n : 0;
        }
        while (len > 0) {
                ssize_t n = ipcf_read(port, p, len, timeout_ms);
                if (n < 0)
                        return (int)n;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}
