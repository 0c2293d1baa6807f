/*
 * cmp-report.c — turn the suite's CSV (bench/results/latest.csv, written by
 * the cmp-* programs through bench/suite.sh) into the Markdown report
 * (latest.md): tables with every figure as "median (min–max)" over the runs
 * and its ratio against ipcf beside it, the targets the issues set with
 * what was measured, and — computed, not hand-written — every place where
 * an alternative beat ipcf.
 *
 * usage: cmp-report CSV [MACHINE_FILE] > latest.md
 * MACHINE_FILE: free text about the machine and the run, copied verbatim.
 * Ratios are always mechanism ÷ ipcf: above 1 is slower for a latency or a
 * CPU cost, below 1 is slower for a rate.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One CSV line. */
typedef struct rec {
        char mech[40], metric[24], unit[8];
        size_t size;
        unsigned conc;
        bool pinned;
        double med, min, max;
} rec;

static rec *recs;
static size_t n_recs;

/* Read the CSV, skipping the header and comment lines; notes (lines "# ")
 * about failures are kept for the report (at most 64; n/a notes are not
 * failures and stay in the CSV only). Malformed lines are skipped: the
 * smoke test checks the programs' CSV, not this reader. */
static char notes[64][520];
static unsigned n_notes;

static int load(const char *path) {
        FILE *f = fopen(path, "r");
        if (!f)
                return -1;
        char line[512];
        size_t cap = 0;
        while (fgets(line, sizeof(line), f)) {
                if (line[0] == '#') {
                        if ((strstr(line, "FAILED") || strstr(line, "failed")) && n_notes < 64) {
                                line[strcspn(line, "\n")] = 0;
                                snprintf(notes[n_notes++], sizeof(notes[0]), "%s", line + 2);
                        }
                        continue;
                }
                if (!strncmp(line, "mechanism,", 10))
                        continue;
                rec r;
                char pin[8];
                if (sscanf(line, "%39[^,],%23[^,],%zu,%u,%7[^,],%lf,%lf,%lf,%7[^,\n]", r.mech,
                           r.metric, &r.size, &r.conc, pin, &r.med, &r.min, &r.max, r.unit) != 9)
                        continue;
                r.pinned = !strcmp(pin, "yes");
                if (n_recs == cap) {
                        cap = cap ? 2 * cap : 256;
                        recs = realloc(recs, cap * sizeof(rec));
                }
                recs[n_recs++] = r;
        }
        fclose(f);
        return 0;
}

/* The measurement of mech/metric at size, concurrency and placement, or
 * NULL (a linear scan: a suite writes under a thousand lines). */
static const rec *find(const char *mech, const char *metric, size_t size, unsigned conc,
                       bool pinned) {
        for (size_t i = 0; i < n_recs; i++) {
                const rec *r = &recs[i];
                if (r->size == size && r->conc == conc && r->pinned == pinned &&
                    !strcmp(r->mech, mech) && !strcmp(r->metric, metric))
                        return r;
        }
        return NULL;
}

/* ---- formatting ----------------------------------------------------------- */

/* One number in the unit's natural form (no unit suffix for rates):
 *   us   two decimals below 10, one below 100, none above (the column says µs)
 *   1/s  "1.23 M", "45.6 k"
 *   B/s  GB/s, three decimals below 1 GB/s
 *   ns   CPU time: "265 ns", "1.2 µs", "190 µs" */
static void fmt_num(char *b, size_t cap, const char *unit, double v) {
        if (!strcmp(unit, "us")) {
                snprintf(b, cap, v < 10 ? "%.2f" : v < 100 ? "%.1f" : "%.0f", v);
        } else if (!strcmp(unit, "1/s")) {
                if (v >= 1e6)
                        snprintf(b, cap, "%.2f M", v / 1e6);
                else if (v >= 1e3)
                        snprintf(b, cap, "%.1f k", v / 1e3);
                else
                        snprintf(b, cap, "%.0f", v);
        } else if (!strcmp(unit, "B/s")) {
                snprintf(b, cap, v >= 1e9 ? "%.2f" : "%.3f", v / 1e9);
        } else if (!strcmp(unit, "ns")) {
                if (v >= 1e4)
                        snprintf(b, cap, "%.0f µs", v / 1e3);
                else if (v >= 1e3)
                        snprintf(b, cap, "%.1f µs", v / 1e3);
                else
                        snprintf(b, cap, "%.0f ns", v);
        } else {
                snprintf(b, cap, "%.3g", v);
        }
}

/* "median (min–max)", or "—" when not measured; only the median when all
 * runs agreed (or there was one run). */
static void fmt_cell(char *b, size_t cap, const rec *r) {
        if (!r) {
                snprintf(b, cap, "—");
                return;
        }
        char m[24], lo[24], hi[24];
        fmt_num(m, sizeof(m), r->unit, r->med);
        fmt_num(lo, sizeof(lo), r->unit, r->min);
        fmt_num(hi, sizeof(hi), r->unit, r->max);
        if (r->min == r->max)
                snprintf(b, cap, "%s", m);
        else
                snprintf(b, cap, "%s (%s–%s)", m, lo, hi);
}

/* "1.23×" (r ÷ base), "1" for the baseline itself, or "—". Whole numbers
 * from 100× up (two decimals there would be noise). */
static void fmt_ratio(char *b, size_t cap, const rec *r, const rec *base) {
        if (!r || !base || base->med <= 0)
                snprintf(b, cap, "—");
        else if (r == base)
                snprintf(b, cap, "1");
        else
                snprintf(b, cap, r->med / base->med >= 100 ? "%.0f×" : "%.2f×", r->med / base->med);
}

/* ---- the mechanisms, in table order --------------------------------------- */

/* Rows in this order (as chan.c's table); unknown keys are not shown. */
static const struct {
        const char *key, *label;
} mechs[] = {
        { "ipcf", "**ipcf flow** (spin 10 µs, default)" },
        { "ipcf-nospin", "ipcf flow (spin_us = 0, sleep only)" },
        { "ipcf-call", "ipcf call" },
        { "ipcf-mbox", "ipcf mailbox (via ipcfd)" },
        { "pipe", "pipe" },
        { "unix-stream", "Unix socket, stream" },
        { "unix-seqpacket", "Unix socket, seqpacket" },
        { "tcp", "TCP loopback" },
        { "udp", "UDP loopback" },
        { "posix-mq", "POSIX message queue" },
        { "nng", "NNG pair0, ipc://" },
        { "zmq", "ZeroMQ PAIR, ipc://" },
        { "oncrpc-tcp", "ONC RPC, TCP" },
        { "oncrpc-udp", "ONC RPC, UDP" },
        { "dbus", "D-Bus (dbus-daemon)" },
};
#define N_MECHS (sizeof(mechs) / sizeof(mechs[0]))

static const size_t thr_sizes[] = { 8, 64, 512, 4096, 65536, 1048576 };
#define N_THR (sizeof(thr_sizes) / sizeof(thr_sizes[0]))

/* "64 B", "64 KiB", "1 MiB" (static buffer: use before the next call). */
static const char *size_name(size_t s) {
        static char b[32];
        if (s >= 1048576)
                snprintf(b, sizeof(b), "%zu MiB", s / 1048576);
        else if (s >= 1024)
                snprintf(b, sizeof(b), "%zu KiB", s / 1024);
        else
                snprintf(b, sizeof(b), "%zu B", s);
        return b;
}

/* ---- the tables ----------------------------------------------------------- */

/* Round trips, throughput at 64 B and 64 KiB: the summary of one placement.
 * One row per mechanism that has a round trip; rows without one-way
 * figures (the calls) show dashes there. */
static void table_summary(bool pinned) {
        printf("| mechanism | RTT median µs | ÷ ipcf | RTT p99 µs | RTT p99.9 µs | CPU per round "
               "trip | 64 B msgs/s | ÷ ipcf | 64 KiB GB/s | ÷ ipcf |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        const rec *b50 = find("ipcf", "rtt_p50", 64, 1, pinned);
        const rec *bm = find("ipcf", "thr_msgs", 64, 1, pinned);
        const rec *bb = find("ipcf", "thr_bytes", 65536, 1, pinned);
        for (unsigned i = 0; i < N_MECHS; i++) {
                const char *k = mechs[i].key;
                const rec *p50 = find(k, "rtt_p50", 64, 1, pinned);
                if (!p50)
                        continue;
                const rec *p99 = find(k, "rtt_p99", 64, 1, pinned);
                const rec *p999 = find(k, "rtt_p999", 64, 1, pinned);
                const rec *cpu = find(k, "rtt_cpu", 64, 1, pinned);
                const rec *m = find(k, "thr_msgs", 64, 1, pinned);
                const rec *g = find(k, "thr_bytes", 65536, 1, pinned);
                char c[10][128];
                fmt_cell(c[0], 128, p50);
                fmt_ratio(c[1], 128, p50, b50);
                fmt_cell(c[2], 128, p99);
                fmt_cell(c[3], 128, p999);
                fmt_cell(c[4], 128, cpu);
                fmt_cell(c[5], 128, m);
                fmt_ratio(c[6], 128, m, bm);
                fmt_cell(c[7], 128, g);
                fmt_ratio(c[8], 128, g, bb);
                printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", mechs[i].label,
                       c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]);
        }
}

/* One metric of cmp-thr against size: "median (min–max) ×ratio". Rows
 * with no figure at any size (calls) are left out; a size a mechanism
 * cannot carry is a dash. */
static void table_by_size(const char *metric, bool pinned) {
        printf("| mechanism |");
        for (unsigned z = 0; z < N_THR; z++)
                printf(" %s |", size_name(thr_sizes[z]));
        printf("\n|---|");
        for (unsigned z = 0; z < N_THR; z++)
                printf("---:|");
        printf("\n");
        for (unsigned i = 0; i < N_MECHS; i++) {
                bool any = false;
                for (unsigned z = 0; z < N_THR; z++)
                        any |= find(mechs[i].key, metric, thr_sizes[z], 1, pinned) != NULL;
                if (!any)
                        continue;
                printf("| %s |", mechs[i].label);
                for (unsigned z = 0; z < N_THR; z++) {
                        const rec *r = find(mechs[i].key, metric, thr_sizes[z], 1, pinned);
                        const rec *b = find("ipcf", metric, thr_sizes[z], 1, pinned);
                        char c[96], q[32];
                        fmt_cell(c, sizeof(c), r);
                        fmt_ratio(q, sizeof(q), r, b);
                        printf(r && r != b ? " %s ×%s |" : " %s |", c, q);
                }
                printf("\n");
        }
}

/* The calls of cmp-rpc: null and 64 B, ratios against the ipcf call. */
static void table_calls(bool pinned) {
        static const char *const keys[] = { "ipcf-call", "oncrpc-tcp", "oncrpc-udp", "dbus" };
        printf("| call | null RTT median µs | ÷ ipcf | p99 | p99.9 | null calls/s | ÷ ipcf | "
               "64 B RTT median µs | ÷ ipcf | 64 B calls/s | ÷ ipcf | CPU per 64 B call |\n");
        printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (unsigned i = 0; i < 4; i++) {
                const char *k = keys[i];
                const rec *r[6], *b[6];
                static const char *const met[6] = { "call_p50", "call_p99", "call_p999",
                                                    "call_rate", "call_p50", "call_rate" };
                static const size_t sz[6] = { 0, 0, 0, 0, 64, 64 };
                for (int j = 0; j < 6; j++) {
                        r[j] = find(k, met[j], sz[j], 1, pinned);
                        b[j] = find("ipcf-call", met[j], sz[j], 1, pinned);
                }
                if (!r[0] && !r[4])
                        continue;
                const rec *cpu = find(k, "call_cpu", 64, 1, pinned);
                char c[12][96];
                fmt_cell(c[0], 96, r[0]);
                fmt_ratio(c[1], 96, r[0], b[0]);
                fmt_cell(c[2], 96, r[1]);
                fmt_cell(c[3], 96, r[2]);
                fmt_cell(c[4], 96, r[3]);
                fmt_ratio(c[5], 96, r[3], b[3]);
                fmt_cell(c[6], 96, r[4]);
                fmt_ratio(c[7], 96, r[4], b[4]);
                fmt_cell(c[8], 96, r[5]);
                fmt_ratio(c[9], 96, r[5], b[5]);
                fmt_cell(c[10], 96, cpu);
                printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k, c[0],
                       c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10]);
        }
}

/* Scaling: one row per (mechanism, metric), one column per level; ratios
 * against the part's first mechanism (the ipcf one). mech ends with NULL;
 * a mechanism with no figure of the part in this run (an older CSV, or
 * --only) has no rows. */
static void table_scale(const char *part, const char *const *mech, const unsigned *levels,
                        const char *const *metrics, const char *const *mnames, int n_metrics,
                        bool pinned) {
        printf("| mechanism | figure |");
        for (int l = 0; levels[l]; l++)
                printf(" %u |", levels[l]);
        printf("\n|---|---|");
        for (int l = 0; levels[l]; l++)
                printf("---:|");
        printf("\n");
        for (int j = 0; j < n_metrics; j++)
                for (int m = 0; mech[m]; m++) {
                        char metric[40];
                        snprintf(metric, sizeof(metric), "%s_%s", part, metrics[j]);
                        bool any = false;
                        for (int l = 0; levels[l]; l++)
                                any |= find(mech[m], metric, 64, levels[l], pinned) != NULL;
                        if (!any && m > 0)
                                continue;
                        printf("| %s | %s |", mech[m], mnames[j]);
                        for (int l = 0; levels[l]; l++) {
                                const rec *r = find(mech[m], metric, 64, levels[l], pinned);
                                const rec *b = find(mech[0], metric, 64, levels[l], pinned);
                                char c[96], q[32];
                                fmt_cell(c, sizeof(c), r);
                                fmt_ratio(q, sizeof(q), r, b);
                                printf(m && r && b ? " %s ×%s |" : " %s |", c, q);
                        }
                        printf("\n");
                }
}

/* ---- targets and losses --------------------------------------------------- */

/* One target: the median (scaled to the target's unit) against the limit. */
static void row_target(const char *what, const char *target, const rec *r, double limit,
                       bool at_most, double scale, const char *unit) {
        if (!r) {
                printf("| %s | %s | not measured | — |\n", what, target);
                return;
        }
        double v = r->med * scale;
        bool met = at_most ? v <= limit : v >= limit;
        printf("| %s | %s | %.3g %s (%.3g–%.3g) | %s |\n", what, target, v, unit, r->min * scale,
               r->max * scale, met ? "met" : "**missed**");
}

/* A target on a ratio num ÷ den of one run: the median's ratio, and a range
 * that pairs num's worst run with den's best and vice versa. */
static void row_ratio(const char *what, const char *target, const rec *num, const rec *den,
                      double limit, bool at_most) {
        if (!num || !den || den->med <= 0 || den->min <= 0) {
                printf("| %s | %s | not measured | — |\n", what, target);
                return;
        }
        rec q = *num;
        q.med = num->med / den->med;
        q.min = num->min / den->max;
        q.max = num->max / den->min;
        row_target(what, target, &q, limit, at_most, 1, "×");
}

/* The figures the issues set, all on the pinned placement (the one the
 * targets were stated for: both sides active on their own CPUs). The
 * calls/s ratio takes the faster of ONC RPC's two transports. Issue 14's
 * ratios are against the peer measured in the same run. */
static void targets(void) {
        printf("| target (issues) | wanted | measured here (pinned, median (min–max)) | |\n");
        printf("|---|---|---|---|\n");
        row_target("flow round trip, 64 B", "≤ 1 µs", find("ipcf", "rtt_p50", 64, 1, true), 1.0,
                   true, 1, "µs");
        row_target("flow messages/s, 64 B", "≥ 10 M/s", find("ipcf", "thr_msgs", 64, 1, true),
                   10.0, false, 1e-6, "M/s");
        row_target("flow throughput, 64 KiB", "≥ 8 GB/s", find("ipcf", "thr_bytes", 65536, 1, true),
                   8.0, false, 1e-9, "GB/s");
        row_target("call round trip, 64 B", "≤ 2 µs", find("ipcf-call", "call_p50", 64, 1, true),
                   2.0, true, 1, "µs");
        row_target("null call round trip", "≤ 2 µs", find("ipcf-call", "call_p50", 0, 1, true),
                   2.0, true, 1, "µs");
        const rec *rt = find("oncrpc-tcp", "call_rate", 0, 1, true);
        const rec *ru = find("oncrpc-udp", "call_rate", 0, 1, true);
        const rec *best = rt && ru ? (rt->med > ru->med ? rt : ru) : rt ? rt : ru;
        row_ratio("null calls/s ÷ the faster ONC RPC", "≥ 10×",
                  find("ipcf-call", "call_rate", 0, 1, true), best, 10, false);
        row_ratio("1,000 flows into one readiness-set server ÷ Unix sockets (issue 14)", "≥ 4×",
                  find("ipcf-set", "flows_rate", 64, 1000, true),
                  find("unix-stream", "flows_rate", 64, 1000, true), 4, false);
        row_ratio("1 flow in an event loop (readiness set) ÷ a Unix socket (issue 14)", "≥ 3×",
                  find("ipcf-set", "flows_rate", 64, 1, true),
                  find("unix-stream", "flows_rate", 64, 1, true), 3, false);
        row_ratio("64 clients: worst client's p99 ÷ epoll over Unix sockets (issue 14)", "≤ 1×",
                  find("ipcf-call", "clients_p99", 64, 64, true),
                  find("unix-stream-epoll", "clients_p99", 64, 64, true), 1, true);
        row_ratio("64 B one way ÷ ZeroMQ PAIR (issue 14)", "≥ 1.5×",
                  find("ipcf", "thr_msgs", 64, 1, true), find("zmq", "thr_msgs", 64, 1, true), 1.5,
                  false);
        row_ratio("sleep-only round trip ÷ a Unix stream socket (issue 14)", "≤ 1×",
                  find("ipcf-nospin", "rtt_p50", 64, 1, true),
                  find("unix-stream", "rtt_p50", 64, 1, true), 1, true);
        row_ratio("mailbox 64 KiB GB/s ÷ a flow's (issue 14)", "≥ 0.5×",
                  find("ipcf-mbox", "thr_bytes", 65536, 1, true),
                  find("ipcf", "thr_bytes", 65536, 1, true), 0.5, false);
        row_ratio("mailbox round trip ÷ a flow's (issue 14)", "≤ 3×",
                  find("ipcf-mbox", "rtt_p50", 64, 1, true), find("ipcf", "rtt_p50", 64, 1, true), 3,
                  true);
}

/* Every figure where a non-ipcf mechanism did better than the ipcf one it
 * is compared with (same metric, size, concurrency, placement): calls
 * against the ipcf call, competing receivers against the mailbox, all else
 * against the ipcf flow. Lower is better for times and CPU, higher for
 * rates. Computed, so that no loss can be left out of the report by hand;
 * a difference within the runs' spread is listed too (the reader sees the
 * ratio). */
static void losses(void) {
        unsigned n = 0;
        for (size_t i = 0; i < n_recs; i++) {
                const rec *r = &recs[i];
                if (!strncmp(r->mech, "ipcf", 4))
                        continue;
                const char *base = !strncmp(r->metric, "call_", 5)      ? "ipcf-call"
                                   : !strncmp(r->metric, "clients_", 8) ? "ipcf-call"
                                   : !strncmp(r->metric, "mbox_", 5)    ? "ipcf-mbox"
                                                                        : "ipcf";
                const rec *b = find(base, r->metric, r->size, r->conc, r->pinned);
                if (!b)
                        continue;
                bool lower_better = !strcmp(r->unit, "us") || !strcmp(r->unit, "ns");
                bool wins = lower_better ? r->med < b->med : r->med > b->med;
                if (!wins)
                        continue;
                char v[32], bv[32];
                fmt_num(v, sizeof(v), r->unit, r->med);
                fmt_num(bv, sizeof(bv), b->unit, b->med);
                const char *u = !strcmp(r->unit, "B/s") ? " GB/s" : !strcmp(r->unit, "us") ? " µs"
                                                                                            : "";
                printf("- %s, %s, %s, %u×, %s: %s%s vs %s %s%s (%.2f×)\n", r->mech, r->metric,
                       size_name(r->size), r->conc, r->pinned ? "pinned" : "unpinned", v, u, base,
                       bv, u, lower_better ? b->med / r->med : r->med / b->med);
                n++;
        }
        if (!n)
                printf("- none: ipcf was ahead on every figure of this run.\n");
}

/* The report: machine, targets, then per placement the summary and the
 * calls, then the size tables (pinned), scaling, and the losses. */
int main(int argc, char **argv) {
        if (argc < 2 || load(argv[1]) < 0) {
                fprintf(stderr, "usage: cmp-report CSV [MACHINE_FILE]\n");
                return 2;
        }
        printf("# ipcf side by side — latest run\n\n");
        if (argc > 2) {
                FILE *f = fopen(argv[2], "r");
                char line[512];
                while (f && fgets(line, sizeof(line), f))
                        fputs(line, stdout);
                if (f)
                        fclose(f);
                printf("\n");
        }
        printf("Every figure: median over the runs (min–max in brackets). Ratios: mechanism ÷ "
               "ipcf — above 1 is slower for a time or a CPU cost, below 1 is slower for a "
               "rate. Method: docs/PERFORMANCE.md.\n\n");
        printf("## Targets\n\n");
        targets();
        for (int p = 0; p < 2; p++) {
                bool pinned = p == 0;
                const char *pl = pinned ? "pinned to CPUs 0 and 1" : "unpinned";
                printf("\n## Round trips (64 B) and throughput, %s\n\n", pl);
                table_summary(pinned);
                printf("\n## Calls, %s\n\n", pl);
                table_calls(pinned);
        }
        printf("\n## Throughput against message size, pinned: messages/s (×ratio)\n\n");
        table_by_size("thr_msgs", true);
        printf("\n## Throughput against message size, pinned: GB/s (×ratio)\n\n");
        table_by_size("thr_bytes", true);
        printf("\n## CPU time per message against size, pinned (both processes + broker)\n\n");
        table_by_size("thr_cpu", true);
        for (int p = 0; p < 2; p++) {
                bool pinned = p == 0;
                const char *pl = pinned ? "pinned" : "unpinned";
                static const unsigned lf[] = { 1, 10, 100, 1000, 0 };
                static const unsigned lc[] = { 1, 2, 4, 8, 16, 32, 64, 0 };
                static const unsigned lm[] = { 1, 4, 0 };
                static const char *const fm[] = { "ipcf", "unix-stream", "ipcf-set", NULL };
                static const char *const cm[] = { "ipcf-call", "unix-stream-epoll", NULL };
                static const char *const mm[] = { "ipcf-mbox", "posix-mq", NULL };
                static const char *const metrics[3] = { "rate", "p50", "p99" };
                static const char *const fnames[3] = { "msgs/s", "round median µs",
                                                       "round p99 µs" };
                static const char *const cnames[3] = { "calls/s (all)", "RTT median µs",
                                                       "RTT p99 µs (worst client)" };
                static const char *const mnames[1] = { "msgs/s" };
                printf("\n## Concurrent flows (one client; one server: epoll, or ipcf-set: a "
                       "readiness set), %s\n\n", pl);
                table_scale("flows", fm, lf, metrics, fnames, 3, pinned);
                printf("\n## Clients of one service, %s\n\n", pl);
                table_scale("clients", cm, lc, metrics, cnames, 3, pinned);
                printf("\n## One sender, competing receivers, %s\n\n", pl);
                table_scale("mbox", mm, lm, metrics, mnames, 1, pinned);
        }
        printf("\n## Where ipcf loses in this run\n\n");
        losses();
        if (n_notes) {
                printf("\n## Failures and gaps reported by the programs\n\n");
                for (unsigned i = 0; i < n_notes; i++)
                        printf("- %s\n", notes[i]);
        }
        return 0;
}
