/*
 * cmp-thr.c — one-way throughput against message size, side by side: every
 * message mechanism of chan.h (the call mechanisms have no one-way form)
 * sends messages of 8 B, 64 B, 512 B, 4 KiB, 64 KiB and 1 MiB as fast as it
 * can from one process to another, which receives them whole.
 *
 * Per (mechanism, size): a 0.05 s warm-up, then 0.25 s timed; the receiver
 * counts messages from the first timed one to the stop message. Reported:
 * messages/s, bytes/s, and CPU time per message (getrusage of sender and
 * receiver over the timed phase, plus the broker daemon's CPU from
 * /proc/<pid>/stat for mechanisms that route through one). UDP may drop:
 * its figure is what arrived. A size a mechanism cannot carry here (UDP
 * over 64 KiB, POSIX mq over msgsize_max, mailboxes over 256 KiB) is
 * reported as n/a in a comment line.
 * Pinned (CPUs 0 and 1): every size; unpinned: 64 B and 64 KiB only.
 * Repeated --runs times in rounds; medians with min and max. CSV on stdout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "measure.h"

static const size_t sizes[] = { 8, 64, 512, 4096, 65536, 1048576 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

typedef struct thr_run {
        bool ok;
        double msgs, bytes, cpu;
} thr_run;

/* Is size measured in this placement? */
static bool size_wanted(const bench_opts *o, int place, size_t size) {
        if (o->quick || place == 1)
                return size == 64 || size == 65536;
        return true;
}

int main(int argc, char **argv) {
        bench_opts o;
        bench_opts_parse(&o, argc, argv,
                         "  one-way throughput, 8 B .. 1 MiB, of every message mechanism\n");
        int r = bench_env_start();
        if (r < 0) {
                fprintf(stderr, "cmp-thr: starting ipcfd: %s\n", strerror(-r));
                return 1;
        }
        double warm_s = o.quick ? 0.01 : 0.05, dur_s = o.quick ? 0.03 : 0.25;
        bool places[2] = { o.do_pinned, o.do_unpinned };
        static thr_run runs[2][32][N_SIZES][BENCH_MAX_RUNS];
        static char errors[2][32][N_SIZES][160];
        static bool unsupported[32][N_SIZES];

        unsigned total = 0, step = 0;
        for (int p = 0; p < 2; p++)
                for (unsigned m = 0; m < chan_n_kinds; m++)
                        for (unsigned z = 0; z < N_SIZES; z++)
                                total += places[p] && bench_selected(&o, chan_kinds[m].key) &&
                                         chan_oneway(&chan_kinds[m]) &&
                                         size_wanted(&o, p, sizes[z]);
        total *= o.runs;

        for (unsigned run = 0; run < o.runs; run++)
                for (int p = 0; p < 2; p++)
                        for (unsigned m = 0; m < chan_n_kinds; m++) {
                                const chan_kind *k = &chan_kinds[m];
                                if (!places[p] || !bench_selected(&o, k->key) || !chan_oneway(k))
                                        continue;
                                for (unsigned z = 0; z < N_SIZES; z++) {
                                        if (!size_wanted(&o, p, sizes[z]))
                                                continue;
                                        bench_progress("cmp-thr",
                                                       "[%u/%u] run %u/%u, %s: %s, %zu B", ++step,
                                                       total, run + 1, o.runs,
                                                       p == 0 ? "pinned" : "unpinned", k->label,
                                                       sizes[z]);
                                        if (unsupported[m][z])
                                                continue;
                                        oneway_result res;
                                        r = chan_oneway_measure(k, sizes[z], p == 0, warm_s, dur_s,
                                                                &res);
                                        thr_run *t = &runs[p][m][z][run];
                                        if (r == -EMSGSIZE) {
                                                unsupported[m][z] = true;
                                        } else if (r < 0) {
                                                snprintf(errors[p][m][z], 160, "%s", res.error);
                                        } else {
                                                t->ok = true;
                                                t->msgs = res.msgs_per_s;
                                                t->bytes = res.bytes_per_s;
                                                t->cpu = res.cpu_ns;
                                        }
                                }
                        }
        bench_progress_done();

        bench_csv_header();
        int failed = 0;
        for (int p = 0; p < 2; p++)
                for (unsigned m = 0; m < chan_n_kinds; m++) {
                        const chan_kind *k = &chan_kinds[m];
                        if (!places[p] || !bench_selected(&o, k->key) || !chan_oneway(k))
                                continue;
                        for (unsigned z = 0; z < N_SIZES; z++) {
                                if (!size_wanted(&o, p, sizes[z]))
                                        continue;
                                bool pin = p == 0;
                                if (unsupported[m][z]) {
                                        bench_csv_note("n/a %s %zu: larger than it carries here",
                                                       k->key, sizes[z]);
                                        continue;
                                }
                                double v[3][BENCH_MAX_RUNS];
                                unsigned n = 0;
                                for (unsigned i = 0; i < o.runs; i++) {
                                        thr_run *t = &runs[p][m][z][i];
                                        if (!t->ok)
                                                continue;
                                        v[0][n] = t->msgs, v[1][n] = t->bytes, v[2][n] = t->cpu;
                                        n++;
                                }
                                if (n == 0) {
                                        bench_csv_note("FAILED %s %zu %s: %s", k->key, sizes[z],
                                                       pin ? "pinned" : "unpinned",
                                                       errors[p][m][z]);
                                        failed = 1;
                                        continue;
                                }
                                if (n < o.runs)
                                        bench_csv_note("%s %zu: %u of %u runs failed: %s", k->key,
                                                       sizes[z], o.runs - n, o.runs,
                                                       errors[p][m][z]);
                                bench_csv(k->key, "thr_msgs", sizes[z], 1, pin,
                                          bench_stat_of(v[0], n), "1/s");
                                bench_csv(k->key, "thr_bytes", sizes[z], 1, pin,
                                          bench_stat_of(v[1], n), "B/s");
                                bench_csv(k->key, "thr_cpu", sizes[z], 1, pin,
                                          bench_stat_of(v[2], n), "ns");
                        }
                }
        return failed;
}
