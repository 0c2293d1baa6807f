/*
 * cmp-lat.c — 64-byte round-trip latency of every mechanism of chan.h, side
 * by side in one run: median, p99 and p99.9, round trips per second, and
 * CPU time per round trip (both processes, plus the broker daemon a
 * mechanism routes through).
 *
 * Two forked processes: the parent is the client, the child echoes. Pinned:
 * CPUs 0 and 1; unpinned: the kernel places them. Each measurement is a
 * warm-up (>= 1,000 round trips or 0.1 s) and then as many timed round trips
 * as fit in 0.5 s (at most 100,000); it is repeated --runs times, rounds
 * going over all mechanisms in turn so that a noisy moment of the machine
 * spreads over every row; each figure is the median of the runs with their
 * min and max. Output: CSV on stdout (benchlib.h), progress on stderr;
 * --cdf=FILE writes the latency distribution of the first pinned run of
 * each mechanism (gnuplot index blocks, each opening with "# key", then
 * lines "quantile latency_us").
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "measure.h"

#define MSG 64

/* The figures of one run. */
typedef struct lat_run {
        bool ok;
        double p50, p99, p999, rate, cpu;
} lat_run;

/* Median/min/max over the runs that succeeded, of the field at offset. */
static bench_stat stat_field(const lat_run *runs, unsigned n, size_t offset) {
        double v[BENCH_MAX_RUNS];
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
                if (runs[i].ok)
                        v[k++] = *(const double *)((const char *)&runs[i] + offset);
        return bench_stat_of(v, k);
}

/* The distribution: 200 evenly spaced quantiles and the far tail. */
static void write_cdf(FILE *f, const char *key, const rtt_result *r) {
        fprintf(f, "# %s\n", key);
        for (int i = 0; i <= 200; i++) {
                double q = i / 200.0;
                if (i == 200)
                        q = 0.9999;
                fprintf(f, "%.4f %.4f\n", q,
                        (double)bench_quantile(r->samples, r->n, q) / 1000.0);
        }
        fprintf(f, "\n\n");
}

int main(int argc, char **argv) {
        bench_opts o;
        bench_opts_parse(&o, argc, argv,
                         "  64-byte round trips of every mechanism (see bench/chan.c)\n");
        int r = bench_env_start();
        if (r < 0) {
                fprintf(stderr, "cmp-lat: starting ipcfd: %s\n", strerror(-r));
                return 1;
        }
        double target_s = o.quick ? 0.02 : 0.5;
        size_t max_iters = o.quick ? 2000 : 100000;
        FILE *cdf = o.cdf ? fopen(o.cdf, "w") : NULL;
        if (o.cdf && !cdf)
                fprintf(stderr, "cmp-lat: %s: %s\n", o.cdf, strerror(errno));

        bool places[2] = { o.do_pinned, o.do_unpinned }; /* [0] pinned, [1] unpinned */
        static lat_run runs[2][32][BENCH_MAX_RUNS];
        static char errors[2][32][160];
        static bool cdf_done[32];
        unsigned total = 0, step = 0;
        for (unsigned m = 0; m < chan_n_kinds; m++)
                total += bench_selected(&o, chan_kinds[m].key) ? (places[0] + places[1]) : 0;
        total *= o.runs;

        for (unsigned run = 0; run < o.runs; run++)
                for (int p = 0; p < 2; p++) {
                        if (!places[p])
                                continue;
                        for (unsigned m = 0; m < chan_n_kinds; m++) {
                                const chan_kind *k = &chan_kinds[m];
                                if (!bench_selected(&o, k->key))
                                        continue;
                                bench_progress("cmp-lat", "[%u/%u] run %u/%u, %s: %s", ++step,
                                               total, run + 1, o.runs,
                                               p == 0 ? "pinned" : "unpinned", k->label);
                                rtt_result res;
                                lat_run *lr = &runs[p][m][run];
                                if (chan_rtt_measure(k, MSG, p == 0, target_s, max_iters, &res) <
                                    0) {
                                        snprintf(errors[p][m], sizeof(errors[p][m]), "%s",
                                                 res.error);
                                        continue;
                                }
                                lr->ok = true;
                                lr->p50 = (double)bench_quantile(res.samples, res.n, 0.5) / 1e3;
                                lr->p99 = (double)bench_quantile(res.samples, res.n, 0.99) / 1e3;
                                lr->p999 =
                                        (double)bench_quantile(res.samples, res.n, 0.999) / 1e3;
                                lr->rate = res.per_s;
                                lr->cpu = res.cpu_ns;
                                if (cdf && p == 0 && !cdf_done[m]) {
                                        write_cdf(cdf, k->key, &res);
                                        cdf_done[m] = true;
                                }
                                free(res.samples);
                        }
                }
        bench_progress_done();
        if (cdf)
                fclose(cdf);

        bench_csv_header();
        int failed = 0;
        for (int p = 0; p < 2; p++) {
                if (!places[p])
                        continue;
                for (unsigned m = 0; m < chan_n_kinds; m++) {
                        const chan_kind *k = &chan_kinds[m];
                        if (!bench_selected(&o, k->key))
                                continue;
                        lat_run *lr = runs[p][m];
                        bool pin = p == 0;
                        bench_stat s = stat_field(lr, o.runs, offsetof(lat_run, p50));
                        if (s.n == 0) {
                                bench_csv_note("FAILED %s %s: %s", k->key,
                                               pin ? "pinned" : "unpinned", errors[p][m]);
                                failed = 1;
                                continue;
                        }
                        if (s.n < o.runs)
                                bench_csv_note("%s %s: %u of %u runs failed: %s", k->key,
                                               pin ? "pinned" : "unpinned", o.runs - s.n,
                                               o.runs, errors[p][m]);
                        bench_csv(k->key, "rtt_p50", MSG, 1, pin, s, "us");
                        bench_csv(k->key, "rtt_p99", MSG, 1, pin,
                                  stat_field(lr, o.runs, offsetof(lat_run, p99)), "us");
                        bench_csv(k->key, "rtt_p999", MSG, 1, pin,
                                  stat_field(lr, o.runs, offsetof(lat_run, p999)), "us");
                        bench_csv(k->key, "rtt_rate", MSG, 1, pin,
                                  stat_field(lr, o.runs, offsetof(lat_run, rate)), "1/s");
                        bench_csv(k->key, "rtt_cpu", MSG, 1, pin,
                                  stat_field(lr, o.runs, offsetof(lat_run, cpu)), "ns");
                }
        }
        return failed;
}
