/*
 * cmd_monitor.c — `ipcf monitor [-n COUNT] [--json] [NAME...]`: what the
 * facility of this host does, as it happens (like `busctl monitor`): each
 * allocation, its acceptance, refusal or failure, each end of a flow with
 * its reason, names coming up and going down. One line per event, or one
 * JSON object per line; NAME... (shell globs) keep the events of matching
 * names. Until ^C, COUNT events, or the daemon's end (exit 1).
 *
 * What the daemon shows a user is its policy (ipcf.h, ipcf_monitor_open);
 * this file only formats. Only the public API is used.
 */
#include "cli/cli.h"
#include "common/util.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int cmd_monitor(int argc, char **argv);

static const char monitor_usage[] =
        "usage: ipcf monitor [-n COUNT] [--json] [NAME...]\n\n"
        "Print what the facility does as it happens: allocations (alloc), their\n"
        "outcome (accept, refuse, fail), flow ends (dealloc, with the side, how\n"
        "and the reason), names up and down. NAME... (shell globs) keep the events\n"
        "of matching names. Root and the daemon's user see every event, other\n"
        "users those of their own flows and names (see docs/CLI.md).\n"
        "  -n, --count=COUNT  stop after COUNT events\n"
        "      --json         one JSON object per event and line\n";

/* The event names, by enum ipcf_monitor_kind. */
static const char *const kind_names[] = {
        [IPCF_MONITOR_ALLOC] = "alloc",     [IPCF_MONITOR_ACCEPT] = "accept",
        [IPCF_MONITOR_REFUSE] = "refuse",   [IPCF_MONITOR_FAIL] = "fail",
        [IPCF_MONITOR_DEALLOC] = "dealloc", [IPCF_MONITOR_NAME_UP] = "up",
        [IPCF_MONITOR_NAME_DOWN] = "down",  [IPCF_MONITOR_DATAGRAM] = "datagram",
};

/* How a side ended, by enum ipcf_end. */
static const char *end_name(int code) {
        static const char *const names[] = { "live", "dealloc", "peer-died", "local", "refused", "protocol" };
        return code >= 0 && code < (int)(sizeof(names) / sizeof(names[0])) ? names[code] : "?";
}

/* A side's program: the daemon's word, else /proc of a visible local pid. */
static const char *program(char *buf, size_t cap, const char *prog, pid_t pid) {
        if (prog[0]) {
                snprintf(buf, cap, "%s", prog);
                return buf;
        }
        return cli_program(buf, cap, pid);
}

/* "12:03:04.123456" in local time. */
static const char *fmt_time(char *buf, size_t cap, uint64_t ns) {
        time_t s = (time_t)(ns / 1000000000u);
        struct tm tm;
        localtime_r(&s, &tm);
        size_t n = strftime(buf, cap, "%H:%M:%S", &tm);
        snprintf(buf + n, cap - n, ".%06u", (unsigned)(ns % 1000000000u / 1000));
        return buf;
}

static void print_text(const ipcf_monitor_event *ev) {
        char t[32], pa[32], pb[32];
        program(pa, sizeof(pa), ev->prog_a, ev->pid_a);
        program(pb, sizeof(pb), ev->prog_b, ev->pid_b);
        if (ev->lost)
                printf("(%u event%s lost)\n", ev->lost, plural(ev->lost));
        printf("%s %-7s %s", fmt_time(t, sizeof(t), ev->time_ns), kind_names[ev->kind], ev->name);
        switch (ev->kind) {
        case IPCF_MONITOR_ALLOC:
                printf(" alloc %llu by %d %s", (unsigned long long)ev->alloc_id, (int)ev->pid_a, pa);
                break;
        case IPCF_MONITOR_ACCEPT:
                printf(" flow %llu: %d %s -> %d %s", (unsigned long long)ev->flow_id, (int)ev->pid_a, pa,
                       (int)ev->pid_b, pb);
                break;
        case IPCF_MONITOR_REFUSE:
        case IPCF_MONITOR_FAIL:
                printf(" alloc %llu by %d %s: %s", (unsigned long long)ev->alloc_id, (int)ev->pid_a, pa,
                       ipcf_strerror(ev->error));
                break;
        case IPCF_MONITOR_DEALLOC:
                printf(" flow %llu: %d %s -> %d %s: %s ended (%s)", (unsigned long long)ev->flow_id,
                       (int)ev->pid_a, pa, (int)ev->pid_b, pb, ev->end_side ? "b" : "a",
                       end_name(ev->end_code));
                break;
        case IPCF_MONITOR_NAME_UP:
                printf(" pid %d %s", (int)ev->pid_b, pb);
                break;
        }
        if (ev->reason[0])
                printf(": %s", ev->reason);
        putchar('\n');
}

/* One side's members of the JSON object: "pid_a":..,"uid_a":..,"program_a":.. */
static void json_side(const char *s, pid_t pid, uid_t uid, const char *prog) {
        printf(",\"pid_%s\":%d,\"uid_%s\":%u,\"program_%s\":", s, (int)pid, s, (unsigned)uid, s);
        cli_json_string(stdout, prog);
}

static void print_json(const ipcf_monitor_event *ev) {
        char pa[32], pb[32];
        printf("{\"event\":\"%s\",\"time_ns\":%llu,\"name\":", kind_names[ev->kind],
               (unsigned long long)ev->time_ns);
        cli_json_string(stdout, ev->name);
        printf(",\"alloc_id\":%llu,\"flow_id\":%llu", (unsigned long long)ev->alloc_id,
               (unsigned long long)ev->flow_id);
        json_side("a", ev->pid_a, ev->uid_a, program(pa, sizeof(pa), ev->prog_a, ev->pid_a));
        json_side("b", ev->pid_b, ev->uid_b, program(pb, sizeof(pb), ev->prog_b, ev->pid_b));
        printf(",\"errno\":%d,\"error\":", -ev->error);
        cli_json_string(stdout, ev->error ? ipcf_strerror(ev->error) : "");
        printf(",\"end\":\"%s\",\"end_side\":\"%s\",\"reason\":",
               ev->kind == IPCF_MONITOR_DEALLOC ? end_name(ev->end_code) : "",
               ev->kind == IPCF_MONITOR_DEALLOC ? (ev->end_side ? "b" : "a") : "");
        cli_json_string(stdout, ev->reason);
        printf(",\"lost\":%u}\n", ev->lost);
}

static int count_option(void *ctx, int key, const char *value) {
        return cli_parse_uint(value, UINT64_MAX, ctx);
}

int cli_monitor_loop(const cli_args *names, uint64_t count, uint32_t flags, cli_monitor_fn fn, void *ctx) {
        int fd = ipcf_monitor_open(flags);
        if (fd < 0)
                return cli_error(flags & IPCF_MONITOR_DATAGRAMS ? "monitor (datagrams: root or the daemon's user only)"
                                                                : "monitor",
                                 fd);
        cli_catch_interrupts();
        int rc = CLI_EXIT_OK;
        for (uint64_t k = 0; k < count && !cli_interrupted;) {
                ipcf_monitor_event ev;
                ipcf_monitor_datagram dg;
                static uint8_t data[4096];
                int r = ipcf_monitor_read(fd, 200, &ev, &dg, data, sizeof(data));
                if (r == -ETIMEDOUT || r == -EAGAIN)
                        continue;
                if (r < 0) {
                        rc = cli_error("monitor", r);
                        break;
                }
                bool dgram = ev.kind == IPCF_MONITOR_DATAGRAM;
                if (!dgram && !cli_name_match(names, ev.name))
                        continue;
                if ((r = fn(ctx, &ev, dgram ? &dg : NULL, data)) != 0) {
                        rc = r;
                        break;
                }
                k++;
        }
        close(fd);
        return rc;
}

/* The sink of `ipcf monitor`: a line of text or of JSON. */
static int print_event(void *ctx, const ipcf_monitor_event *ev, const ipcf_monitor_datagram *dg,
                       const uint8_t *data) {
        if (*(const bool *)ctx)
                print_json(ev);
        else
                print_text(ev);
        return cli_stdout_flush("monitor");
}

int cmd_monitor(int argc, char **argv) {
        static const cli_option options[] = { { "count", 'n', true }, { 0 } };
        uint64_t count = UINT64_MAX;
        const cli_spec spec = { .cmd = "monitor", .usage = monitor_usage, .options = options,
                                .json = true, .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, count_option, &count, &args);
        if (st != CLI_PARSED)
                return st;
        return cli_monitor_loop(&args, count, 0, print_event, &args.json);
}
