/*
 * measure.c — the two measurement drivers every side-by-side benchmark uses
 * (measure.h): round trips (chan_rtt_measure) and one-way streams
 * (chan_oneway_measure), each between two forked processes over one channel
 * of chan.h.
 *
 * Process layout: the parent prepares the channel (chan_prepare) and forks
 * the server (side 1) and then the client (side 0); the parent itself never
 * opens the channel, because some libraries (NNG) keep worker threads that
 * do not survive a fork of a process that used them. The client drives the
 * measurement over the server's control channel (batches announced by
 * count, results returned as structs) and reports to the parent over its
 * own. Both children carry the benchlib alarm; every wait is bounded.
 */
#include "measure.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipcf.h"

/* ---- round trips ---------------------------------------------------------- */

/* What the server child needs (the setup is the parent's, copied by fork). */
typedef struct rtt_arg {
        chan_setup *s;
        bool pinned;
        size_t size;
} rtt_arg;

/* The server: serve batches of the sizes the parent announces (0 ends),
 * answering each batch with its CPU time. */
static int rtt_child(void *p, const bench_ctl *c) {
        rtt_arg *a = p;
        bench_pin(bench_cpu_of(a->pinned, 1));
        chan ch;
        int r = chan_open(a->s, 1, c, &ch);
        if (r < 0)
                return r;
        char *buf = calloc(1, a->s->max_msg);
        /* The client announces each batch by its size, so the server always
         * knows how many requests to expect and never waits for one that
         * will not come; its CPU time per batch goes back the same way. */
        for (;;) {
                uint64_t count;
                if ((r = bench_ctl_recv(c, &count, sizeof(count))) < 0 || count == 0)
                        break;
                uint64_t cpu0 = bench_cpu_ns();
                for (uint64_t i = 0; i < count && r == 0; i++)
                        r = chan_serve(&ch, buf, a->size);
                uint64_t cpu = bench_cpu_ns() - cpu0;
                if (r < 0 || (r = bench_ctl_send(c, &cpu, sizeof(cpu))) < 0)
                        break;
        }
        chan_close(&ch);
        free(buf);
        return r;
}

/* One batch from the client side; samples (ns) into t if not NULL. */
static int rtt_batch(chan *ch, const bench_ctl *c, char *buf, size_t size, uint64_t count,
                     uint64_t *t, uint64_t *ret_server_cpu) {
        int r = bench_ctl_send(c, &count, sizeof(count));
        for (uint64_t i = 0; i < count && r == 0; i++) {
                uint64_t t0 = bench_now_ns();
                r = chan_call(ch, buf, size);
                if (t)
                        t[i] = bench_now_ns() - t0;
        }
        if (r == 0)
                r = bench_ctl_recv(c, ret_server_cpu, sizeof(*ret_server_cpu));
        return r;
}

/* ipcf's texts for ipcf kinds, the C library's for the others. */
static const char *err_text(const chan_kind *k, int r) {
        bool ipcf = k->type == CH_IPCF || k->type == CH_MBOX || k->type == CH_CALL;
        return ipcf ? ipcf_strerror(r) : strerror(-r);
}

/* What the client process reports to the parent (then n samples). */
typedef struct rtt_report {
        int err;
        char step[24];
        uint64_t n;
        double per_s, cpu_ns;
} rtt_report;

/* What the client child needs: the setup, the server's control channel
 * (inherited from the parent across fork) and the measurement's limits. */
typedef struct client_arg {
        chan_setup *s;
        bench_ctl srv;       /* the control channel to the server child */
        bool pinned;
        size_t size;
        double target_s, warm_s, dur_s;
        size_t max_iters;
} client_arg;

/* The client, in its own process (libraries like NNG do not survive a
 * fork of the process that used them, so the parent never uses one). */
static int rtt_client(void *p, const bench_ctl *parent) {
        client_arg *a = p;
        const bench_ctl *c = &a->srv;
        rtt_report rep = { 0 };
        uint64_t *t = NULL;
        char *buf = NULL;
        chan ch;
        bench_pin(bench_cpu_of(a->pinned, 0));
        snprintf(rep.step, sizeof(rep.step), "connect");
        int r = chan_open(a->s, 0, c, &ch);
        if (r == 0) {
                buf = calloc(1, a->s->max_msg);
                snprintf(rep.step, sizeof(rep.step), "warm-up");
                /* Warm up with batches of 200 until 1,000 round trips or
                 * 0.1 s; the last batch's pace sizes the timed phase. */
                uint64_t cpu, done = 0, t0 = bench_now_ns(), per = 1;
                while (r == 0 && done < 1000 && bench_now_ns() - t0 < 100000000ull) {
                        uint64_t b0 = bench_now_ns();
                        r = rtt_batch(&ch, c, buf, a->size, 200, NULL, &cpu);
                        per = (bench_now_ns() - b0) / 200 + 1;
                        done += 200;
                }
                /* as many as fit in target_s at the warm-up's pace, at
                 * least 200 (a p99.9 needs them), at most max_iters */
                size_t n = (size_t)(a->target_s * 1e9 / (double)per);
                n = n < 200 ? 200 : n > a->max_iters ? a->max_iters : n;
                t = malloc(n * sizeof(uint64_t));
                snprintf(rep.step, sizeof(rep.step), "round trips");
                pid_t broker = chan_broker_pid(a->s->k);
                /* CPU: ours and the server's (getrusage, each over its own
                 * side of the batch) and the broker's (/proc, 10 ms ticks) */
                uint64_t b0 = bench_proc_cpu_ns(broker), c0 = bench_cpu_ns(),
                         w0 = bench_now_ns();
                if (r == 0)
                        r = rtt_batch(&ch, c, buf, a->size, n, t, &cpu);
                uint64_t wall = bench_now_ns() - w0, mine = bench_cpu_ns() - c0,
                         theirs = bench_proc_cpu_ns(broker) - b0;
                if (r == 0) {
                        rep.n = n;
                        rep.per_s = (double)n / ((double)wall / 1e9);
                        rep.cpu_ns = (double)(mine + cpu + theirs) / (double)n;
                        uint64_t zero = 0;
                        bench_ctl_send(c, &zero, sizeof(zero));
                }
                chan_close(&ch);
        }
        rep.err = r;
        if (r < 0)
                rep.n = 0;
        r = bench_ctl_send(parent, &rep, sizeof(rep));
        if (r == 0 && rep.n)
                r = bench_ctl_send(parent, t, rep.n * sizeof(uint64_t));
        free(t);
        free(buf);
        return r;
}

/* Fork the server (side 1) and the client (side 0); the client reports on
 * *ret_ctl. Returns 0 or -errno; pids in ret_pids. */
static int fork_pair(bench_child_fn server, void *server_arg, bench_child_fn client,
                     client_arg *ca, pid_t ret_pids[2], bench_ctl *ret_ctl) {
        ret_pids[0] = ret_pids[1] = -1;
        ret_pids[1] = bench_fork(server, server_arg, &ca->srv);
        if (ret_pids[1] < 0)
                return ret_pids[1];
        ret_pids[0] = bench_fork(client, ca, ret_ctl);
        /* the parent keeps no end of the server's channel */
        close(ca->srv.rfd);
        close(ca->srv.wfd);
        ca->srv.rfd = ca->srv.wfd = -1;
        return ret_pids[0] < 0 ? ret_pids[0] : 0;
}

/* The parent's part: prepare, fork both sides, collect the client's report
 * and samples, reap both (bounded), release the setup. Any failure is one
 * line in ret->error: "<step>: <reason>". */
int chan_rtt_measure(const chan_kind *k, size_t size, bool pinned, double target_s,
                     size_t max_iters, rtt_result *ret) {
        memset(ret, 0, sizeof(*ret));
        chan_setup s;
        rtt_report rep = { 0 };
        snprintf(rep.step, sizeof(rep.step), "setup");
        int r = chan_prepare(k, size, &s);
        bench_ctl c = { -1, -1 };
        pid_t pids[2] = { -1, -1 };
        if (r == 0) {
                rtt_arg sa = { &s, pinned, size };
                client_arg ca = { .s = &s, .pinned = pinned, .size = size,
                                  .target_s = target_s, .max_iters = max_iters };
                r = fork_pair(rtt_child, &sa, rtt_client, &ca, pids, &c);
        }
        if (r == 0) {
                r = bench_ctl_recv(&c, &rep, sizeof(rep));
                if (r < 0)
                        snprintf(rep.step, sizeof(rep.step), "client");
                else
                        r = rep.err;
        }
        if (r == 0 && rep.n) {
                ret->samples = malloc(rep.n * sizeof(uint64_t));
                r = bench_ctl_recv(&c, ret->samples, rep.n * sizeof(uint64_t));
        }
        int st0 = pids[0] > 0 ? bench_reap(pids[0], &c, 5000) : 0;
        int st1 = pids[1] > 0 ? bench_reap(pids[1], NULL, 5000) : 0;
        chan_setup_free(&s);
        if (r == 0 && (st0 != 0 || st1 != 0))
                r = -ECHILD;
        if (r == 0) {
                ret->n = rep.n;
                ret->per_s = rep.per_s;
                ret->cpu_ns = rep.cpu_ns;
                bench_sort_u64(ret->samples, ret->n);
        } else {
                snprintf(ret->error, sizeof(ret->error), "%s: %s", rep.step,
                         r == -ECHILD ? "a process failed" : err_text(k, r));
                free(ret->samples);
                ret->samples = NULL;
                ret->n = 0;
        }
        return r;
}

/* ---- one-way streams ------------------------------------------------------ */

/* The phase of a one-way message, in its first byte (8 B messages too). */
enum { PH_WARM = 1, PH_TIMED = 2, PH_STOP = 3 };

/* What the receiver reports to the sender over the control channel. */
typedef struct oneway_report {
        int err;
        uint64_t msgs, ns, cpu_ns;
} oneway_report;

/* What the receiver child needs. */
typedef struct ow_arg {
        chan_setup *s;
        bool pinned;
        size_t size;
} ow_arg;

/* The receiver: counts timed messages from the first to the stop (UDP: to
 * the last one before a 1 s silence) and reports them. */
static int ow_child(void *p, const bench_ctl *c) {
        ow_arg *a = p;
        bench_pin(bench_cpu_of(a->pinned, 1));
        chan ch;
        oneway_report rep = { 0, 0, 0, 0 };
        rep.err = chan_open(a->s, 1, c, &ch);
        if (rep.err < 0)
                return 1; /* the parent's barrier reads EOF */
        char *buf = calloc(1, a->s->max_msg);
        uint64_t t0 = 0, t_last = 0, cpu0 = 0, cpu_last = 0;
        for (;;) {
                size_t got;
                buf[0] = 0;
                int r = chan_recv(&ch, buf, a->size, &got);
                if (r == -EAGAIN && a->s->k->type == CH_UDP && rep.msgs)
                        break;
                if (r < 0) {
                        rep.err = r;
                        break;
                }
                if (buf[0] == PH_TIMED) {
                        /* The clock only where the run may end without its
                         * stop (UDP: at the last message that came); a
                         * reader that read it per message spent ~25-45 ns
                         * of each message on the measurement. */
                        if (rep.msgs++ == 0) {
                                t0 = t_last = bench_now_ns();
                                cpu0 = bench_cpu_ns();
                        }
                        if (a->s->k->type == CH_UDP) {
                                t_last = bench_now_ns();
                                cpu_last = bench_cpu_ns();
                        }
                } else if (buf[0] == PH_STOP) {
                        t_last = bench_now_ns();
                        cpu_last = bench_cpu_ns();
                        break;
                }
        }
        rep.ns = t_last - t0;
        rep.cpu_ns = cpu_last - cpu0;
        bench_ctl_send(c, &rep, sizeof(rep));
        chan_close(&ch);
        free(buf);
        return rep.err ? 1 : 0;
}

/* What the sender reports to the parent. */
typedef struct ow_final {
        int err;
        char step[24];
        double msgs_per_s, cpu_ns;
} ow_final;

/* The sender, in its own process: warm-up, timed phase, stop; then the
 * receiver's report, combined with its own CPU time, goes to the parent. */
static int ow_client(void *p, const bench_ctl *parent) {
        client_arg *a = p;
        const bench_ctl *c = &a->srv;
        ow_final fin = { 0 };
        char *buf = NULL;
        chan ch;
        bench_pin(bench_cpu_of(a->pinned, 0));
        snprintf(fin.step, sizeof(fin.step), "connect");
        int r = chan_open(a->s, 0, c, &ch);
        if (r == 0) {
                const chan_kind *k = a->s->k;
                snprintf(fin.step, sizeof(fin.step), "send");
                buf = calloc(1, a->s->max_msg);
                pid_t broker = chan_broker_pid(k);
                /* the clock is read every 64 small messages (~1.6 µs of
                 * 26 ns reads per 64 sends at most), every large one */
                uint64_t every = a->size >= 4096 ? 1 : 64;
                uint64_t t0 = bench_now_ns();
                uint64_t warm_end = t0 + (uint64_t)(a->warm_s * 1e9);
                uint64_t end = UINT64_MAX;
                uint64_t c0 = 0, b0 = 0, c1, b1;
                buf[0] = PH_WARM;
                for (uint64_t n = 1; r == 0; n++) {
                        r = chan_send(&ch, buf, a->size);
                        if (n % every)
                                continue;
                        uint64_t now = bench_now_ns();
                        if (buf[0] == PH_TIMED && now >= end)
                                break;
                        if (now >= warm_end && buf[0] == PH_WARM) {
                                /* dur_s from here, however late */
                                end = now + (uint64_t)(a->dur_s * 1e9);
                                buf[0] = PH_TIMED;
                                c0 = bench_cpu_ns();
                                b0 = bench_proc_cpu_ns(broker);
                        }
                }
                c1 = bench_cpu_ns();
                b1 = bench_proc_cpu_ns(broker);
                /* UDP may drop the stop: send it thrice; the receiver also
                 * ends after 1 s of silence */
                buf[0] = PH_STOP;
                for (int i = 0; r == 0 && i < (k->type == CH_UDP ? 3 : 1); i++) {
                        r = chan_send(&ch, buf, a->size);
                        if (k->type == CH_UDP)
                                usleep(2000);
                }
                if (r == 0)
                        r = chan_flush(&ch);
                oneway_report rep;
                if (r == 0 || k->type == CH_UDP) {
                        snprintf(fin.step, sizeof(fin.step), "result");
                        int rr = bench_ctl_recv(c, &rep, sizeof(rep));
                        if (rr == 0 && rep.err)
                                rr = rep.err;
                        if (rr == 0 && (rep.msgs == 0 || rep.ns == 0))
                                rr = -ENODATA;
                        r = rr;
                }
                if (r == 0) {
                        fin.msgs_per_s = (double)rep.msgs / ((double)rep.ns / 1e9);
                        fin.cpu_ns = (double)(c1 - c0 + rep.cpu_ns + (b1 - b0)) / (double)rep.msgs;
                }
                chan_close(&ch);
        }
        fin.err = r;
        free(buf);
        return bench_ctl_send(parent, &fin, sizeof(fin));
}

/* The parent's part, as for round trips: prepare, fork receiver and
 * sender, collect the sender's final report, reap, release. */
int chan_oneway_measure(const chan_kind *k, size_t size, bool pinned, double warm_s,
                        double dur_s, oneway_result *ret) {
        memset(ret, 0, sizeof(*ret));
        if (!chan_oneway(k))
                return -EOPNOTSUPP;
        chan_setup s;
        ow_final fin = { 0 };
        snprintf(fin.step, sizeof(fin.step), "setup");
        int r = chan_prepare(k, size, &s);
        bench_ctl c = { -1, -1 };
        pid_t pids[2] = { -1, -1 };
        if (r == 0) {
                ow_arg ra = { &s, pinned, size };
                client_arg ca = { .s = &s, .pinned = pinned, .size = size, .warm_s = warm_s,
                                  .dur_s = dur_s };
                r = fork_pair(ow_child, &ra, ow_client, &ca, pids, &c);
        }
        if (r == 0) {
                r = bench_ctl_recv(&c, &fin, sizeof(fin));
                if (r < 0)
                        snprintf(fin.step, sizeof(fin.step), "sender");
                else
                        r = fin.err;
        }
        int st0 = pids[0] > 0 ? bench_reap(pids[0], &c, 5000) : 0;
        int st1 = pids[1] > 0 ? bench_reap(pids[1], NULL, 5000) : 0;
        chan_setup_free(&s);
        if (r == 0 && (st0 != 0 || st1 != 0))
                r = -ECHILD;
        if (r == 0) {
                ret->msgs_per_s = fin.msgs_per_s;
                ret->bytes_per_s = fin.msgs_per_s * (double)size;
                ret->cpu_ns = fin.cpu_ns;
        } else {
                snprintf(ret->error, sizeof(ret->error), "%s: %s", fin.step,
                         r == -ECHILD ? "a process failed" : err_text(k, r));
        }
        return r;
}
