/*
 * cmd_ping.c — `ipcf ping NAME`: round-trip latency to an echoing peer
 * (`ipcf listen NAME --echo`). Sends COUNT messages of SIZE bytes one at a
 * time, each after the previous echo came back, and prints the distribution
 * of the round trips: min, median, p90, p99, p99.9, max, in microseconds.
 * A warm-up (not counted) comes first. Each echo is checked: its length and
 * the sequence number carried in its first bytes. A peer silent for 5 s (or
 * --timeout-ms) ends the run with an error.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ping_usage[] =
        "usage: ipcf ping NAME [-c COUNT] [-s SIZE] [-w WARMUP] [flow options]\n\n"
        "Measure round trips to 'ipcf listen NAME --echo'.\n"
        "  -c, --count=N    round trips to time (default 10000)\n"
        "  -s, --size=N     bytes per message (default 64; k/M suffixes)\n"
        "  -w, --warmup=N   round trips before timing starts (default 1000)\n\n";

/* qsort order for round-trip times. */
static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0..100) of n sorted values, in microseconds. */
static double percentile_us(const uint64_t *sorted, size_t n, double p) {
        size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
        if (rank < 1)
                rank = 1;
        if (rank > n)
                rank = n;
        return (double)sorted[rank - 1] / 1000.0;
}

/* One round trip of message seq; returns its duration in ns or a negative
 * errno (-EBADMSG: the echo was not our message). */
static int64_t round_trip(int port, char *out, char *in, size_t size, bool stream,
                          uint64_t seq, int timeout_ms) {
        if (size >= sizeof(seq))
                memcpy(out, &seq, sizeof(seq));
        uint64_t t0 = cli_now_ns();
        int r = cli_flow_write_all(port, out, size, timeout_ms);
        if (r == 0)
                r = cli_flow_read_full(port, in, size, stream, timeout_ms);
        uint64_t t1 = cli_now_ns();
        if (r < 0)
                return r;
        if (size >= sizeof(seq) && memcmp(in, &seq, sizeof(seq)) != 0)
                return -EBADMSG;
        return (int64_t)(t1 - t0);
}

/* Time count round trips after warmup ones into rtt[]; 0 or -errno. */
static int ping_run(int port, size_t size, uint64_t warmup, uint64_t count, uint64_t *rtt,
                    int timeout_ms) {
        ipcf_qos q;
        int r = ipcf_qos_get(port, &q);
        if (r < 0)
                return r;
        bool stream = q.mode == IPCF_MODE_STREAM;
        char *out = calloc(1, size + 1), *in = malloc(size + 1);
        if (!out || !in) {
                free(out);
                free(in);
                return -ENOMEM;
        }
        for (size_t i = sizeof(uint64_t); i < size; i++)
                out[i] = (char)('a' + i % 26);
        for (uint64_t i = 0; i < warmup + count && r == 0; i++) {
                int64_t ns = round_trip(port, out, in, size, stream, i, timeout_ms);
                if (ns < 0)
                        r = (int)ns;
                else if (i >= warmup)
                        rtt[i - warmup] = (uint64_t)ns;
        }
        free(out);
        free(in);
        return r;
}

typedef struct ping_cfg {
        uint64_t count, size, warmup;
} ping_cfg;

static int ping_option(void *ctx, int key, const char *value) {
        ping_cfg *c = ctx;
        switch (key) {
        case 'c':
                return cli_parse_size(value, 1u << 30, &c->count) < 0 || c->count == 0 ? -EINVAL : 0;
        case 's': return cli_parse_size(value, 64u << 20, &c->size);
        case 'w': return cli_parse_size(value, 1u << 30, &c->warmup);
        }
        return -EINVAL;
}

/* ipcf ping NAME: parse, allocate, time the round trips, print the
 * distribution; the flow ends with reason "done" (the echo exits 0). */
int cmd_ping(int argc, char **argv) {
        static const cli_option options[] = {
                { "count", 'c', true },
                { "size", 's', true },
                { "warmup", 'w', true },
                { 0 },
        };
        cli_flow_opts fo;
        cli_flow_opts_init(&fo, 10000);
        ping_cfg cfg = { .count = 10000, .size = 64, .warmup = 1000 };
        const cli_spec spec = { .cmd = "ping", .usage = ping_usage, .options = options, .flow = &fo,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, ping_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        uint64_t count = cfg.count, size = cfg.size, warmup = cfg.warmup;
        const char *name = args.v[0];
        if (size == 0 && fo.qos.mode == IPCF_MODE_STREAM)
                return cli_usage("ping", "a stream has no empty messages: give -s 1 or more");
        if (cli_flow_fit_size("ping", &fo, size) != 0)
                return CLI_EXIT_USAGE;
        /* Once allocated, a silent peer fails the run after this long. */
        int io_timeout = fo.set_timeout ? fo.timeout_ms : 5000; /* (not the allocation's default) */

        uint64_t *rtt = malloc(count * sizeof(uint64_t));
        if (!rtt)
                return cli_error("ping", -ENOMEM);
        int port = cli_flow_alloc("ping", name, &fo);
        if (port < 0) {
                free(rtt);
                return CLI_EXIT_FAIL;
        }
        ipcf_qos q;
        char desc[96] = "";
        if (ipcf_qos_get(port, &q) == 0)
                cli_qos_describe(desc, sizeof(desc), &q);
        printf("ping %s: %llu round trips of %llu bytes (%s)\n", name,
               (unsigned long long)count, (unsigned long long)size, desc);
        fflush(stdout);

        int r = ping_run(port, (size_t)size, warmup, count, rtt, io_timeout);
        ipcf_dealloc(port, r < 0 ? "error" : "done");
        if (r < 0) {
                char what[IPCF_NAME_MAX + 32];
                snprintf(what, sizeof(what), "ping %.127s", name);
                free(rtt);
                if (r == -EBADMSG)
                        return cli_fail("%s: the echo differs from what was sent "
                                        "(is the peer 'ipcf listen --echo'?)", what);
                return cli_error(what, r);
        }
        /* Sorted, every percentile is one index away. */
        qsort(rtt, count, sizeof(uint64_t), cmp_u64);
        double sum = 0;
        for (uint64_t i = 0; i < count; i++)
                sum += (double)rtt[i];
        printf("rtt us: min %.3f  median %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f"
               "  (mean %.3f)\n",
               percentile_us(rtt, count, 0), percentile_us(rtt, count, 50),
               percentile_us(rtt, count, 90), percentile_us(rtt, count, 99),
               percentile_us(rtt, count, 99.9), percentile_us(rtt, count, 100),
               sum / (double)count / 1000.0);
        free(rtt);
        return CLI_EXIT_OK;
}
