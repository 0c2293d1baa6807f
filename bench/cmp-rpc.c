/*
 * cmp-rpc.c — calls side by side: an ipcf call (ipcf_call to a service
 * answering with ipcf_service_next / ipcf_service_reply), an ONC RPC call
 * (rpcgen stubs, libtirpc) over TCP and over UDP, and a D-Bus method call
 * through a private dbus-daemon, all to a server in a forked process.
 *
 * Each is measured empty (the null call: ONC RPC's procedure 0, an ipcf call
 * of 0 bytes, a D-Bus call without arguments) and with 64 bytes echoed:
 * round-trip median, p99, p99.9, calls per second of one caller (closed
 * loop), and CPU time per call (caller, server and dbus-daemon or ipcfd).
 * Method as in cmp-lat (chan_rtt_measure): warm-up, then 0.5 s of calls,
 * --runs rounds, medians with min and max. CSV on stdout.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "benchlib.h"
#include "measure.h"

static const char *const calls[] = { "ipcf-call", "oncrpc-tcp", "oncrpc-udp", "dbus" };
#define N_CALLS (sizeof(calls) / sizeof(calls[0]))
static const size_t sizes[] = { 0, 64 };
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

typedef struct call_run {
        bool ok;
        double p50, p99, p999, rate, cpu;
} call_run;

static bench_stat stat_field(const call_run *runs, unsigned n, size_t offset) {
        double v[BENCH_MAX_RUNS];
        unsigned k = 0;
        for (unsigned i = 0; i < n; i++)
                if (runs[i].ok)
                        v[k++] = *(const double *)((const char *)&runs[i] + offset);
        return bench_stat_of(v, k);
}

int main(int argc, char **argv) {
        bench_opts o;
        bench_opts_parse(&o, argc, argv,
                         "  keys: ipcf-call, oncrpc-tcp, oncrpc-udp, dbus\n");
        int r = bench_env_start();
        if (r < 0) {
                fprintf(stderr, "cmp-rpc: starting ipcfd: %s\n", strerror(-r));
                return 1;
        }
        double target_s = o.quick ? 0.02 : 0.5;
        size_t max_iters = o.quick ? 2000 : 100000;
        bool places[2] = { o.do_pinned, o.do_unpinned };
        static call_run runs[2][N_CALLS][N_SIZES][BENCH_MAX_RUNS];
        static char errors[2][N_CALLS][N_SIZES][160];
        unsigned total = 0, step = 0;
        for (unsigned m = 0; m < N_CALLS; m++)
                total += bench_selected(&o, calls[m]) ? (places[0] + places[1]) * N_SIZES : 0;
        total *= o.runs;

        for (unsigned run = 0; run < o.runs; run++)
                for (int p = 0; p < 2; p++)
                        for (unsigned m = 0; m < N_CALLS; m++) {
                                const chan_kind *k = chan_find(calls[m]);
                                if (!places[p] || !bench_selected(&o, k->key))
                                        continue;
                                for (unsigned z = 0; z < N_SIZES; z++) {
                                        bench_progress("cmp-rpc", "[%u/%u] run %u/%u, %s: %s, %zu B",
                                                       ++step, total, run + 1, o.runs,
                                                       p == 0 ? "pinned" : "unpinned", k->label,
                                                       sizes[z]);
                                        rtt_result res;
                                        call_run *c = &runs[p][m][z][run];
                                        if (chan_rtt_measure(k, sizes[z], p == 0, target_s,
                                                             max_iters, &res) < 0) {
                                                snprintf(errors[p][m][z], 160, "%s", res.error);
                                                continue;
                                        }
                                        c->ok = true;
                                        c->p50 = (double)bench_quantile(res.samples, res.n, 0.5) / 1e3;
                                        c->p99 = (double)bench_quantile(res.samples, res.n, 0.99) / 1e3;
                                        c->p999 =
                                                (double)bench_quantile(res.samples, res.n, 0.999) / 1e3;
                                        c->rate = res.per_s;
                                        c->cpu = res.cpu_ns;
                                        free(res.samples);
                                }
                        }
        bench_progress_done();

        bench_csv_header();
        int failed = 0;
        for (int p = 0; p < 2; p++)
                for (unsigned m = 0; m < N_CALLS; m++) {
                        if (!places[p] || !bench_selected(&o, calls[m]))
                                continue;
                        for (unsigned z = 0; z < N_SIZES; z++) {
                                call_run *c = runs[p][m][z];
                                bool pin = p == 0;
                                bench_stat s = stat_field(c, o.runs, offsetof(call_run, p50));
                                if (s.n == 0) {
                                        bench_csv_note("FAILED %s %zu %s: %s", calls[m], sizes[z],
                                                       pin ? "pinned" : "unpinned",
                                                       errors[p][m][z]);
                                        failed = 1;
                                        continue;
                                }
                                bench_csv(calls[m], "call_p50", sizes[z], 1, pin, s, "us");
                                bench_csv(calls[m], "call_p99", sizes[z], 1, pin,
                                          stat_field(c, o.runs, offsetof(call_run, p99)), "us");
                                bench_csv(calls[m], "call_p999", sizes[z], 1, pin,
                                          stat_field(c, o.runs, offsetof(call_run, p999)), "us");
                                bench_csv(calls[m], "call_rate", sizes[z], 1, pin,
                                          stat_field(c, o.runs, offsetof(call_run, rate)), "1/s");
                                bench_csv(calls[m], "call_cpu", sizes[z], 1, pin,
                                          stat_field(c, o.runs, offsetof(call_run, cpu)), "ns");
                        }
                }
        return failed;
}
