/*
 * cmd_perf.c — `ipcf perf NAME`: one-way throughput to a sinking peer
 * (`ipcf listen NAME --sink`, or `ipcf listen NAME > /dev/null`). Writes
 * messages of SIZE bytes as fast as the flow takes them for SECONDS, waits
 * until the peer has taken everything queued (so the figure is what was
 * delivered, not what was buffered), then prints messages/s and bytes/s.
 * A live progress line goes to stderr (\r, ~4 times a second) when stderr is
 * a terminal or with --progress. A peer that takes nothing for 5 s (or
 * --timeout-ms) ends the run with an error.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char perf_usage[] =
        "usage: ipcf perf NAME [-s SIZE] [-t SECONDS] [--progress] [flow options]\n\n"
        "Measure throughput to 'ipcf listen NAME --sink'.\n"
        "  -s, --size=N       bytes per message (default 64; k/M suffixes)\n"
        "  -t, --time=SECONDS how long to send (default 3)\n"
        "      --progress     live figures on stderr even when it is not a terminal\n\n";

#define PERF_PROGRESS_NS 250000000ull  /* progress line period */
#define PERF_DRAIN_NS 2000000000ull    /* wait at most this for the peer to catch up */

typedef struct perf_counts {
        uint64_t msgs, bytes;
} perf_counts;

/* Wait until the peer has read everything queued (bounded); the figures then
 * count delivered bytes. Without stats, returns at once. */
static void wait_drained(int port) {
        uint64_t until = cli_now_ns() + PERF_DRAIN_NS;
        ipcf_port_stats st;
        while (ipcf_stats(port, &st) == 0 && st.queued_out > 0 && cli_now_ns() < until)
                nanosleep(&(struct timespec){ .tv_nsec = 200000 }, NULL);
}

/* Print "  2.0 s   4.10 M msgs/s   262 MB/s" for the counts of an interval. */
static void print_rate(FILE *out, const char *lead, perf_counts c, double seconds) {
        char m[32];
        double mps = seconds > 0 ? (double)c.msgs / seconds : 0;
        double bps = seconds > 0 ? (double)c.bytes / seconds : 0;
        fprintf(out, "%s%s msgs/s  %.1f MB/s  %.2f GB/s  %.2f Gbit/s", lead,
                cli_fmt_count(m, sizeof(m), mps), bps / 1e6, bps / 1e9, bps * 8 / 1e9);
}

/* Send for `seconds`; fills *ret with what was sent. 0 or -errno. */
static int perf_run(int port, size_t size, double seconds, bool progress, int io_timeout,
                    perf_counts *ret, uint64_t *ret_ns) {
        char *buf = malloc(size ? size : 1);
        if (!buf)
                return -ENOMEM;
        memset(buf, 'p', size);
        /* Check the clock once per ~64 KiB written: cheap, and still precise. */
        uint64_t check_every = size >= 65536 ? 1 : 65536 / (size ? size : 1);
        uint64_t start = cli_now_ns(), end = start + (uint64_t)(seconds * 1e9);
        uint64_t next_progress = start + PERF_PROGRESS_NS, last_t = start;
        perf_counts total = { 0, 0 }, last = { 0, 0 };
        int r = 0;
        for (;;) {
                r = cli_flow_write_all(port, buf, size, io_timeout);
                if (r < 0)
                        break;
                total.msgs++;
                total.bytes += size;
                if (total.msgs % check_every)
                        continue;
                uint64_t now = cli_now_ns();
                if (now >= end)
                        break;
                if (progress && now >= next_progress) {
                        perf_counts d = { total.msgs - last.msgs, total.bytes - last.bytes };
                        char lead[32];
                        snprintf(lead, sizeof(lead), "\r%5.1f s  ", (double)(now - start) / 1e9);
                        print_rate(stderr, lead, d, (double)(now - last_t) / 1e9);
                        fputs("   ", stderr);
                        fflush(stderr);
                        last = total;
                        last_t = now;
                        next_progress = now + PERF_PROGRESS_NS;
                }
        }
        if (r == 0)
                wait_drained(port);
        *ret = total;
        *ret_ns = cli_now_ns() - start;
        free(buf);
        return r;
}

enum { OPT_PROGRESS = CLI_OPT_FIRST_PRIVATE };

typedef struct perf_cfg {
        uint64_t size;
        double seconds;
        bool progress;
} perf_cfg;

static int perf_option(void *ctx, int key, const char *value) {
        perf_cfg *c = ctx;
        switch (key) {
        case 's': return cli_parse_size(value, 64u << 20, &c->size);
        case 't': return cli_parse_seconds(value, &c->seconds) < 0 || c->seconds <= 0 ? -EINVAL : 0;
        case OPT_PROGRESS: c->progress = true; return 0;
        }
        return -EINVAL;
}

/* ipcf perf NAME: parse, allocate, send for the given time, print what
 * was delivered; the flow ends with reason "done" (the sink exits 0). */
int cmd_perf(int argc, char **argv) {
        static const cli_option options[] = {
                { "size", 's', true },
                { "time", 't', true },
                { "progress", OPT_PROGRESS, false },
                { 0 },
        };
        cli_flow_opts fo;
        cli_flow_opts_init(&fo, 10000);
        perf_cfg cfg = { .size = 64, .seconds = 3, .progress = isatty(2) };
        const cli_spec spec = { .cmd = "perf", .usage = perf_usage, .options = options, .flow = &fo,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, perf_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        uint64_t size = cfg.size;
        double seconds = cfg.seconds;
        bool progress = cfg.progress;
        const char *name = args.v[0];
        if (size == 0 && fo.qos.mode == IPCF_MODE_STREAM)
                return cli_usage("perf", "a stream has no empty messages: give -s 1 or more");
        if (cli_flow_fit_size("perf", &fo, size) != 0)
                return CLI_EXIT_USAGE;
        int io_timeout = fo.set_timeout ? fo.timeout_ms : 5000; /* (not the allocation's default) */

        int port = cli_flow_alloc("perf", name, &fo);
        if (port < 0)
                return CLI_EXIT_FAIL;
        ipcf_qos q;
        char desc[96] = "";
        if (ipcf_qos_get(port, &q) == 0)
                cli_qos_describe(desc, sizeof(desc), &q);
        printf("perf %s: messages of %llu bytes for %.1f s (%s)\n", name,
               (unsigned long long)size, seconds, desc);
        fflush(stdout);

        perf_counts total;
        uint64_t ns = 0;
        int r = perf_run(port, (size_t)size, seconds, progress, io_timeout, &total, &ns);
        /* A terminal gets its progress line erased; a file keeps it. */
        if (progress)
                fputs(isatty(2) ? "\r\033[K" : "\n", stderr);
        ipcf_dealloc(port, r < 0 ? "error" : "done");
        if (r < 0) {
                char what[IPCF_NAME_MAX + 32];
                snprintf(what, sizeof(what), "perf %.127s", name);
                return cli_error(what, r);
        }
        char lead[128];
        snprintf(lead, sizeof(lead), "%llu msgs in %.2f s: ", (unsigned long long)total.msgs,
                 (double)ns / 1e9);
        print_rate(stdout, lead, total, (double)ns / 1e9);
        putchar('\n');
        return CLI_EXIT_OK;
}
