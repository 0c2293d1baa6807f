/*
 * bench-dir-daemons.c — "registered on host A, allocatable from host B"
 * through the real daemons and the directory on etcd: a three-member etcd
 * cluster on loopback (tests/support/etcdcluster.c), two ipcfd ("alpha",
 * "beta", 127.0.0.1, distinct UDP ports) with [directory] backend = etcd.
 *
 *   bench-dir-daemons [--quick] [--names N]
 *
 * For each of N fresh names: beta's application watches it; alpha's takes
 * t0 and registers it (alpha's daemon publishes it: a put under its lease);
 * beta's daemon hears it on its watch of etcd, which wakes the watch
 * (NAME_UP: t_up); beta's application then allocates it by name alone and
 * alpha's accepts (the flow is there: t_alloc). Reported: t_up - t0 (watch
 * propagation, the target: p99 <= 100 ms) and t_alloc - t0
 * (allocatable, with the allocation's own cost), p50, p99, max. CLOCK_MONOTONIC
 * is one clock for the processes of one machine. Two peers, in the same
 * run, in blocks of BLOCK names alternating with the measured path:
 *   - local: the same steps with the name registered on beta itself (no
 *     etcd, no other host: what the watch and the allocation cost alone);
 *   - raw etcd: a put of a fresh key by a plain HTTP client (blocking
 *     libcurl, kept-alive) on the member the daemons use, heard by a
 *     second plain client's watch stream on it: etcd's own commit and
 *     watch delivery, with no daemon — the floor under "NAME_UP on beta".
 * The first figure is split at the moment a third plain watch (of the
 * directory's keys, on the same member) sees the name's put: before it,
 * the publishing host's part and etcd's (registration, the publisher, one
 * etcd transaction, its commit); after it, the watching host's (the watch
 * event, the cache, NAME_UP; ~0 when beta's daemon heard it first).
 * A benchmark: nothing is asserted.
 *
 * Processes: the two applications are children forked before anything uses
 * the library (it keeps the runtime directory of its first use); the
 * daemons and etcd run meanwhile, on the same 2 CPUs.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <sodium.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/etcdcluster.h"
#include "support/hostset.h"

#define BLOCK 50

static hostset S;
static etcd_cluster C;
static int n_names = 300;

static uint64_t mono_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void full_io(int fd, void *buf, size_t n, bool out) {
        uint8_t *p = buf;
        while (n) {
                ssize_t k = out ? write(fd, p, n) : read(fd, p, n);
                if (k <= 0) {
                        if (k < 0 && errno == EINTR)
                                continue;
                        _exit(3);
                }
                p += k;
                n -= (size_t)k;
        }
}

/* The registrar on host `host`: for each name, wait for beta's go, send
 * t0, register, accept one flow, unregister. */
static void registrar(int host, const char *prefix, int count, int go_rd, int t0_wr) {
        hostset_enter(&S, host);
        for (int i = 0; i < count; i++) {
                char name[64], go;
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                full_io(go_rd, &go, 1, false);
                uint64_t t0 = mono_ns();
                full_io(t0_wr, &t0, sizeof(t0), true);
                int reg = ipcf_register(name, NULL);
                if (reg < 0)
                        _exit(4);
                int port = ipcf_accept(reg, 20000, NULL);
                if (port >= 0)
                        ipcf_dealloc(port, NULL);
                ipcf_dealloc(reg, NULL);
        }
        _exit(0);
}

/* ---- the raw etcd peer ---------------------------------------------------- */

#define RAW_PREFIX "/bench-raw/"

/* The watcher's write callback: the time of each PUT event (a "kv" in a
 * frame that is not a DELETE's; tokens may straddle two chunks) to the
 * pipe; UINT64_MAX once created. */
typedef struct raw_watch {
        int fd;
        char tail[8];
        size_t tail_len;
        bool created;
} raw_watch;

static size_t raw_watch_write(char *p, size_t size, size_t n, void *ctx) {
        raw_watch *w = ctx;
        size_t len = size * n;
        uint64_t t = mono_ns();
        char buf[8 + 16384];
        size_t take = len < 16384 ? len : 16384, bl = w->tail_len + take;
        memcpy(buf, w->tail, w->tail_len);
        memcpy(buf + w->tail_len, p, take);
        buf[bl] = 0;
        if (!w->created && memmem(buf, bl, "\"created\":true", 14)) {
                w->created = true;
                uint64_t ready = UINT64_MAX;
                full_io(w->fd, &ready, sizeof(ready), true);
        }
        long puts = 0;
        for (const char *q = buf; (q = memmem(q, bl - (size_t)(q - buf), "\"kv\"", 4)); q += 4)
                puts++;
        for (const char *q = buf; (q = memmem(q, bl - (size_t)(q - buf), "\"DELETE\"", 8)); q += 8)
                puts--;
        for (; puts > 0; puts--)
                full_io(w->fd, &t, sizeof(t), true);
        w->tail_len = bl < 7 ? bl : 7; /* a token cut at the end is whole next time */
        memcpy(w->tail, buf + bl - w->tail_len, w->tail_len);
        return len;
}

static void b64(const char *s, char *out, size_t size) {
        sodium_bin2base64(out, size, (const unsigned char *)s, strlen(s), sodium_base64_VARIANT_ORIGINAL);
}

/* The watcher: one stream on every key from key to end, until killed. */
static void raw_watcher(int wr, const char *key, const char *end) {
        char url[128], k[64], e[64], body[256];
        snprintf(url, sizeof(url), "%s/v3/watch", C.client_url[0]);
        b64(key, k, sizeof(k));
        b64(end, e, sizeof(e));
        snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", k, e);
        raw_watch w = { .fd = wr };
        CURL *c = curl_easy_init();
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, raw_watch_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_perform(c);
        _exit(6);
}

static size_t discard(char *p, size_t size, size_t n, void *ctx) {
        (void)p, (void)ctx;
        return size * n;
}

/* A watcher of key..end in a child, created: its pid and the pipe of its
 * events' times (*ret_rd), or -1. */
static pid_t raw_watch_start(const char *key, const char *end, int *ret_rd) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t w = fork();
        if (w == 0) {
                close(p[0]);
                raw_watcher(p[1], key, end);
        }
        close(p[1]);
        uint64_t t;
        struct pollfd pfd = { .fd = p[0], .events = POLLIN };
        if (poll(&pfd, 1, 10000) != 1 || read(p[0], &t, sizeof(t)) != sizeof(t) || t != UINT64_MAX) {
                kill(w, SIGKILL);
                waitpid(w, NULL, 0);
                close(p[0]);
                return -1;
        }
        *ret_rd = p[0];
        return w;
}

static void raw_watch_stop(pid_t w, int rd) {
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        close(rd);
}

/* The next event time from a watcher, after t0 (older ones skipped); 0 if
 * none within 2 s. */
static uint64_t raw_next(int rd, uint64_t t0) {
        struct pollfd pfd = { .fd = rd, .events = POLLIN };
        uint64_t t;
        while (poll(&pfd, 1, 2000) == 1 && read(rd, &t, sizeof(t)) == sizeof(t))
                if (t >= t0)
                        return t;
        return 0;
}

/* Beta: watch, go, NAME_UP, allocate; the delays go to out_wr. */
static void beta_side(const char *prefix, int count, int go_wr, int t0_rd, int out_wr) {
        hostset_enter(&S, 1);
        for (int i = 0; i < count; i++) {
                char name[64];
                snprintf(name, sizeof(name), "%s-%d", prefix, i);
                if (ipcf_watch(name) < 0)
                        _exit(5);
                full_io(go_wr, "g", 1, true);
                uint64_t t0, t_up = 0, t_alloc = 0;
                full_io(t0_rd, &t0, sizeof(t0), false);
                uint64_t until = mono_ns() + 10000000000ull;
                while (!t_up && mono_ns() < until) {
                        ipcf_event ev;
                        int r = ipcf_notify_next(1000, &ev);
                        if (r == 0 && ev.kind == IPCF_EVENT_NAME_UP && !strcmp(ev.name, name))
                                t_up = mono_ns();
                }
                int port = ipcf_alloc(name, NULL, 10000, NULL);
                if (port >= 0) {
                        t_alloc = mono_ns();
                        ipcf_dealloc(port, NULL);
                }
                ipcf_unwatch(name);
                uint64_t d[3] = { t_up ? t_up - t0 : 0, t_alloc ? t_alloc - t0 : 0, t0 };
                full_io(out_wr, d, sizeof(d), true);
        }
        _exit(0);
}

/* One phase: count names registered on host reg_host, watched and
 * allocated on beta; the delays into up[], al[]; with pub, the delay until
 * a plain watch of the directory's keys saw each name's put (the
 * publishing host's part and etcd's). Returns how many names went through. */
static int phase(int reg_host, const char *prefix, int count, uint64_t *up, uint64_t *al, uint64_t *pub) {
        int go[2], t0[2], out[2], rd = -1;
        pid_t w = pub ? raw_watch_start("/ipcf/names/", "/ipcf/names0", &rd) : -1;
        if (pipe(go) < 0 || pipe(t0) < 0 || pipe(out) < 0)
                return 0;
        pid_t a = fork();
        if (a == 0)
                registrar(reg_host, prefix, count, go[0], t0[1]);
        pid_t b = fork();
        if (b == 0)
                beta_side(prefix, count, go[1], t0[0], out[1]);
        close(out[1]);
        int got = 0;
        for (; got < count; got++) {
                uint64_t d[3];
                size_t have = 0;
                while (have < sizeof(d)) {
                        ssize_t k = read(out[0], (uint8_t *)d + have, sizeof(d) - have);
                        if (k <= 0)
                                break;
                        have += (size_t)k;
                }
                if (have < sizeof(d))
                        break;
                up[got] = d[0];
                al[got] = d[1];
                if (pub) {
                        uint64_t t = w > 0 ? raw_next(rd, d[2]) : 0;
                        pub[got] = t ? t - d[2] : 0;
                }
        }
        if (w > 0)
                raw_watch_stop(w, rd);
        kill(a, SIGKILL);
        kill(b, SIGKILL);
        waitpid(a, NULL, 0);
        waitpid(b, NULL, 0);
        close(out[0]);
        close(go[0]);
        close(go[1]);
        close(t0[0]);
        close(t0[1]);
        return got;
}

/* count puts of fresh keys, each timed to its event at the watcher. */
static int raw_phase(int block, int count, uint64_t *out) {
        int rd;
        pid_t w = raw_watch_start(RAW_PREFIX, "/bench-raw0", &rd); /* the prefix's end: '/' + 1 */
        if (w < 0)
                return 0;
        int got = 0;
        char url[128];
        snprintf(url, sizeof(url), "%s/v3/kv/put", C.client_url[0]);
        CURL *c = curl_easy_init();
        struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
        for (; got < count; got++) {
                char key[64], k[128], body[256];
                snprintf(key, sizeof(key), RAW_PREFIX "%d-%d", block, got);
                b64(key, k, sizeof(k));
                snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"eA==\"}", k);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                uint64_t t0 = mono_ns(), t;
                if (curl_easy_perform(c) != CURLE_OK || !(t = raw_next(rd, t0)))
                        break;
                out[got] = t > t0 ? t - t0 : 1;
        }
        curl_slist_free_all(hdr);
        curl_easy_cleanup(c);
        raw_watch_stop(w, rd);
        return got;
}

static int cmp_ns(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

/* Sorts v[0..n) (zeros: failures, left out) and prints its quantiles. */
static void report(const char *what, uint64_t *v, int n) {
        int k = 0;
        for (int i = 0; i < n; i++)
                if (v[i])
                        v[k++] = v[i];
        qsort(v, (size_t)k, sizeof(*v), cmp_ns);
        if (k == 0) {
                printf("%-48s no sample (%d failed)\n", what, n);
                return;
        }
        printf("%-48s p50 %8.2f ms  p99 %8.2f ms  max %8.2f ms  (%d, %d failed)\n", what, v[k / 2] / 1e6,
               v[(size_t)k * 99 / 100] / 1e6, v[k - 1] / 1e6, k, n - k);
}

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick"))
                        n_names = 30;
                else if (!strncmp(argv[i], "--names=", 8))
                        n_names = atoi(argv[i] + 8);
                else {
                        fprintf(stderr, "usage: bench-dir-daemons [--quick] [--names=N]\n");
                        return 2;
                }
        }
        if (n_names < 1 || n_names > 100000)
                return 2;
        etcd_cluster_start(&C, 3);
        if (!hostset_init(&S, 2, HOSTSET_LOOPBACK))
                return 1;
        char conf[2048];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s %s %s\nttl_s = 5\n[name *]\nremote_allocate = *@*\n",
                 C.client_url[0], C.client_url[1], C.client_url[2]);
        hostset_start(&S, 0, conf);
        hostset_start(&S, 1, conf);
        if (!hostset_wait_up(&S, 0, 15000) || !hostset_wait_up(&S, 1, 15000)) {
                fprintf(stderr, "bench-dir-daemons: the hosts did not come up\n");
                hostset_stop(&S);
                etcd_cluster_stop(&C);
                return 1;
        }
        size_t n = (size_t)n_names;
        uint64_t *up = calloc(n, sizeof(*up)), *al = calloc(n, sizeof(*al));
        uint64_t *lup = calloc(n, sizeof(*up)), *lal = calloc(n, sizeof(*al)), *raw = calloc(n, sizeof(*raw));
        uint64_t *pub = calloc(n, sizeof(*pub)), *sub = calloc(n, sizeof(*sub));
        int got = 0, lgot = 0, rgot = 0;
        /* Blocks of BLOCK names, the measured path and its peers in turn. */
        for (int b = 0; b * BLOCK < n_names; b++) {
                int count = n_names - b * BLOCK < BLOCK ? n_names - b * BLOCK : BLOCK;
                char prefix[32];
                snprintf(prefix, sizeof(prefix), "prop%d", b);
                int k = phase(0, prefix, count, up + got, al + got, pub + got);
                for (int i = got; i < got + k; i++) /* beta's part: after the plain watch saw the put */
                        sub[i] = !pub[i] || !up[i] ? 0 : up[i] > pub[i] ? up[i] - pub[i] : 1; /* beta first: ~0 */
                got += k;
                rgot += raw_phase(b, count, raw + rgot);
                snprintf(prefix, sizeof(prefix), "local%d", b);
                lgot += phase(1, prefix, count, lup + lgot, lal + lgot, NULL);
        }
        double load[3] = { 0 };
        getloadavg(load, 3);
        printf("bench-dir-daemons: 3-member etcd, 2 daemons on 127.0.0.1, %d names, load average %.1f %.1f %.1f\n",
               got, load[0], load[1], load[2]);
        report("registered on alpha -> NAME_UP on beta", up, got);
        report("registered on alpha -> allocated from beta", al, got);
        report("  of which: registered -> put seen by a plain watch", pub, got);
        report("  of which: put seen by a plain watch -> NAME_UP", sub, got);
        report("peer: raw etcd put -> event on a plain watch", raw, rgot);
        report("peer: registered on beta -> NAME_UP on beta", lup, lgot);
        report("peer: registered on beta -> allocated on beta", lal, lgot);
        free(up);
        free(al);
        free(lup);
        free(lal);
        free(raw);
        free(pub);
        free(sub);
        hostset_stop(&S);
        etcd_cluster_stop(&C);
        return got == n_names && lgot == n_names && rgot == n_names ? 0 : 1;
}
