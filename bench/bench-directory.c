/*
 * bench-directory.c — the directory on etcd (src/daemon/directory/), one
 * run, against a real three-member etcd cluster on loopback
 * (tests/support/etcdcluster.c) that it starts and removes.
 *
 * 1. A driver publishes HOSTS x NAMES names through the module's own path:
 *    HOSTS publish-only instances (one lease each, one put per name).
 * 2. One resolving instance lists and watches them all; its cache memory.
 * 3. Warm lookups: dir_lookup() of every name (3 rounds), timed one by one.
 * 4. Cold lookups: dir_resolve() (one range read of the name, answer
 *    decoded, checked and fed to the cache), interleaved one for one with
 *    the peer: the same range read as a plain HTTP request on a blocking
 *    libcurl handle with a kept-alive connection to the same member, answer
 *    not even parsed (what `etcdctl get` asks, over the same gateway).
 * 5. Watch propagation: a name published by one instance until the
 *    resolving instance's observer hears it (same process, same clock).
 * 6. A real ipcfd on the same cluster (trust_keys = yes, no host enrolled),
 *    started before the driver: when its cache holds all the names, the
 *    bytes its health counts and its resident set against when it was
 *    empty (what the cache costs a daemon, allocator included).
 *
 * Options: --quick (10 hosts, 100 samples: a smoke run), --hosts=N,
 * --names=N. Output: a Markdown table; exit 1 if anything failed (targets
 * missed are reported, not failures). Everything runs in the daemon's loop;
 * every wait is bounded.
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/directory/cache.h"
#include "ipcf.h"
#include "daemon/directory/directory.h"
#include "daemon/directory/etcdmsg.h"
#include "support/etcdcluster.h"
#include "support/loopwait.h"

static int n_hosts = 100, n_names = 100, n_cold = 2000, n_prop = 500;
static loop *L;

static _Noreturn void die(const char *what, int err) {
        fprintf(stderr, "bench-directory: %s: %s\n", what, err ? strerror(-err) : "failed");
        exit(1);
}

static int cmp_u64(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
        return x < y ? -1 : x > y;
}

typedef struct stats {
        double p50, p99, max, mean;
} stats;

static stats stats_of(uint64_t *ns, size_t n) {
        qsort(ns, n, sizeof(*ns), cmp_u64);
        double sum = 0;
        for (size_t i = 0; i < n; i++)
                sum += (double)ns[i];
        stats s = { ns[n / 2] / 1e3, ns[(n * 99) / 100] / 1e3, ns[n - 1] / 1e3, sum / n / 1e3 };
        return s;
}

/* ---- waiting in the loop without polling granularity ---------------------- */

static loop_timer guard;
static bool guard_fired;
static void guard_fn(loop_timer *t) {
        (void)t;
        guard_fired = true;
        loop_quit(L);
}
/* Run the loop until a callback calls loop_quit (or timeout_ms). */
static bool run_until_quit(int timeout_ms) {
        guard_fired = false;
        loop_timer_arm(L, &guard, now_ns() + (uint64_t)timeout_ms * 1000000u);
        loop_run(L);
        loop_timer_cancel(L, &guard);
        return !guard_fired;
}

/* ---- the pieces ----------------------------------------------------------- */

static etcd_cluster cluster;

static directory *instance(const char *host, bool publish_only, size_t cache_max) {
        dir_opts o = { .etcd = { .n_endpoints = 3 }, .prefix = "/bench/", .publish_only = publish_only,
                       .cache_max = cache_max, .request_timeout_ms = 5000 };
        static unsigned next;
        unsigned first = next++;
        for (int i = 0; i < 3; i++)
                o.etcd.endpoints[i] = cluster.client_url[(first + (unsigned)i) % 3];
        char addr[64];
        if (host) {
                snprintf(addr, sizeof(addr), "10.1.%u.%u:7000", first / 250, first % 250 + 1);
                o.host = host;
                o.addr = addr;
                o.fp = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        }
        directory *d;
        int r = dir_new(L, &o, &d);
        if (r < 0)
                die("dir_new", r);
        return d;
}

typedef struct pubs_ctx {
        directory **d;
        int n;
} pubs_ctx;

static bool all_published(void *ctx) {
        pubs_ctx *p = ctx;
        for (int i = 0; i < p->n; i++) {
                dir_health h;
                dir_health_get(p->d[i], &h);
                if (!h.lease || h.unconfirmed)
                        return false;
        }
        return true;
}

static bool cache_full(void *ctx) {
        dir_health h;
        dir_health_get(ctx, &h);
        return h.live && h.entries >= (size_t)n_hosts * (size_t)n_names;
}

/* Cold lookups. */
static bool answered;
static int answer_err;
static uint64_t answer_ns;
static void on_answer(void *ctx, int err, const dir_record *rec) {
        (void)ctx, (void)rec;
        answer_ns = now_ns();
        answer_err = err;
        answered = true;
        loop_quit(L);
}

/* Propagation. */
static char prop_want[IPCF_NAME_MAX + 1];
static uint64_t prop_seen_ns;
static void observe(void *ctx, const char *name, const char *host, int change) {
        (void)ctx, (void)host;
        if (change == DIR_NAME_UP && !strcmp(name, prop_want)) {
                prop_seen_ns = now_ns();
                loop_quit(L);
        }
}

static size_t discard(char *p, size_t s, size_t n, void *u) {
        (void)p, (void)u;
        return s * n;
}

static void name_of(char *out, size_t size, int h, int n) { snprintf(out, size, "svc-%03d-%03d", h, n); }

/* ---- 6. a real daemon resolving them all ------------------------------------ */

static pid_t daemon_pid;
static char daemon_dir[64] = "/tmp/bench-dir-XXXXXX";

/* A free UDP port on 127.0.0.1 (for the daemon's [hosts] listen). */
static unsigned free_udp_port(void) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                die("a UDP port", -errno);
        close(fd);
        return ntohs(sa.sin_port);
}

/* ipcfd of this build (BUILD/bin/ipcfd beside BUILD/bench/) on a private
 * runtime dir; the library of this process talks to it. */
static void daemon_start(void) {
        char self[512], conf[600], bin[600];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n < 0 || !mkdtemp(daemon_dir))
                die("the daemon's directory", -errno);
        self[n] = 0;
        snprintf(bin, sizeof(bin), "%s/../bin/ipcfd", dirname(self));
        snprintf(conf, sizeof(conf), "%s/ipcfd.conf", daemon_dir);
        FILE *f = fopen(conf, "w");
        if (!f)
                die("the daemon's config", -errno);
        fprintf(f, "[daemon]\nstate_dir = %s\n[hosts]\nname = resolverd\nlisten = 127.0.0.1:%u\n"
                   "[directory]\nbackend = etcd\nendpoints = %s %s %s\nprefix = /bench/\ntrust_keys = yes\n",
                daemon_dir, free_udp_port(), cluster.client_url[0], cluster.client_url[1], cluster.client_url[2]);
        fclose(f);
        daemon_pid = fork();
        if (daemon_pid == 0) {
                execl(bin, "ipcfd", "--runtime-dir", daemon_dir, "--config", conf, (char *)NULL);
                _exit(127);
        }
        setenv("IPCF_RUNTIME_DIR", daemon_dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
}

/* The daemon's directory health once live with at least want records
 * (bounded by 120 s). */
static ipcf_dir_health daemon_health(size_t want) {
        uint64_t end = now_ns() + 120000000000ull;
        for (;;) {
                ipcf_host_listing *hl;
                if (ipcf_hosts(&hl) == 0) {
                        ipcf_dir_health h = hl->directory ? *hl->directory : (ipcf_dir_health){ 0 };
                        bool dir = hl->directory != NULL;
                        ipcf_free(hl);
                        if (!dir)
                                die("the daemon has no directory", 0);
                        if (h.live && h.records >= want)
                                return h;
                }
                if (now_ns() > end)
                        die("the daemon's cache did not fill in 120 s", 0);
                usleep(50000);
        }
}

/* The daemon's resident set, KiB. */
static long daemon_rss_kib(void) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)daemon_pid);
        FILE *f = fopen(path, "r");
        long kib = -1;
        while (f && fgets(line, sizeof(line), f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

static void daemon_stop(void) {
        kill(daemon_pid, SIGTERM);
        waitpid(daemon_pid, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", daemon_dir);
        if (system(cmd) != 0)
                fprintf(stderr, "bench-directory: could not remove %s\n", daemon_dir);
}

int main(int argc, char **argv) {
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "--quick")) {
                        n_hosts = 10;
                        n_cold = n_prop = 100;
                } else if (!strncmp(argv[i], "--hosts=", 8)) {
                        n_hosts = atoi(argv[i] + 8);
                } else if (!strncmp(argv[i], "--names=", 8)) {
                        n_names = atoi(argv[i] + 8);
                } else {
                        fprintf(stderr, "usage: bench-directory [--quick] [--hosts=N] [--names=N]\n");
                        return 2;
                }
        }
        if (n_hosts < 1 || n_names < 1 || n_hosts > 1000 || n_names > 1000)
                die("hosts and names: 1..1000", 0);
        size_t total = (size_t)n_hosts * (size_t)n_names;
        etcd_cluster_start(&cluster, 3);
        if (loop_new(&L) < 0)
                die("loop_new", -ENOMEM);
        loop_timer_init(&guard, guard_fn);

        /* 6, before anything is published: the daemon, its cache empty. */
        daemon_start();
        ipcf_dir_health dh0 = daemon_health(0);
        long rss0 = daemon_rss_kib();

        /* 1. The driver: HOSTS publishers, NAMES names each. */
        directory **pub = calloc((size_t)n_hosts, sizeof(*pub));
        uint64_t t0 = now_ns();
        for (int h = 0; h < n_hosts; h++) {
                char host[32], name[64];
                snprintf(host, sizeof(host), "h%03d", h);
                pub[h] = instance(host, true, 0);
                for (int n = 0; n < n_names; n++) {
                        name_of(name, sizeof(name), h, n);
                        dir_attr a = { "zone", "r1" };
                        int r = dir_publish(pub[h], name, &a, 1);
                        if (r < 0)
                                die("dir_publish", r);
                }
        }
        pubs_ctx pc = { pub, n_hosts };
        if (!loop_wait(L, all_published, &pc, 300000))
                die("publishing did not complete in 300 s", 0);
        double publish_s = (now_ns() - t0) / 1e9;

        /* 2. The resolving instance: list + watch everything. */
        t0 = now_ns();
        directory *res = instance("resolver", false, 0);
        dir_set_observer(res, observe, NULL);
        if (!loop_wait(L, cache_full, res, 120000))
                die("the resolver's cache did not fill in 120 s", 0);
        double sync_s = (now_ns() - t0) / 1e9;
        dir_health hh;
        dir_health_get(res, &hh);

        /* 6: the daemon with every name cached. */
        ipcf_dir_health dh = daemon_health(total);
        long rss1 = daemon_rss_kib();
        daemon_stop();

        /* 3. Warm lookups, every name, 3 rounds. */
        size_t n_warm = 3 * total;
        uint64_t *warm = malloc(n_warm * sizeof(*warm));
        size_t k = 0;
        for (int round = 0; round < 3; round++)
                for (int h = 0; h < n_hosts; h++)
                        for (int n = 0; n < n_names; n++) {
                                char name[64];
                                dir_record r;
                                name_of(name, sizeof(name), (h * 7 + round) % n_hosts, (n * 13 + h) % n_names);
                                uint64_t a = now_ns();
                                int x = dir_lookup(res, name, NULL, &r);
                                warm[k++] = now_ns() - a;
                                if (x != 1)
                                        die("a warm lookup missed", x);
                        }
        stats sw = stats_of(warm, n_warm);

        /* 4. Cold lookups vs the plain range read, one for one. */
        CURL *c = curl_easy_init();
        char url[128];
        snprintf(url, sizeof(url), "%s/v3/kv/range", cluster.client_url[0]);
        struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
        uint64_t *cold = malloc((size_t)n_cold * sizeof(*cold)), *raw = malloc((size_t)n_cold * sizeof(*raw));
        for (int i = 0; i < n_cold; i++) {
                char name[64], key[128];
                int h = (i * 31) % n_hosts, n = (i * 17) % n_names;
                name_of(name, sizeof(name), h, n);
                /* The resolver's range read (its client's first endpoint is member 0 too). */
                answered = false;
                uint64_t a = now_ns();
                int r = dir_resolve(res, name, NULL, a + 5000000000ull, on_answer, NULL, NULL);
                if (r < 0 || !run_until_quit(10000) || !answered || answer_err)
                        die("a cold lookup failed", r < 0 ? r : answer_err);
                cold[i] = answer_ns - a;
                /* The plain read of the same range. */
                int kl = snprintf(key, sizeof(key), "/bench/names/%s/", name);
                uint8_t end[128];
                size_t el = etcd_prefix_end(key, (size_t)kl, end);
                char *body = etcd_body_range(key, (size_t)kl, end, el, 1000, 0);
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
                a = now_ns();
                CURLcode cc = curl_easy_perform(c);
                raw[i] = now_ns() - a;
                free(body);
                if (cc != CURLE_OK)
                        die(curl_easy_strerror(cc), 0);
        }
        curl_easy_cleanup(c);
        curl_slist_free_all(hdr);
        stats sc = stats_of(cold, (size_t)n_cold), sr = stats_of(raw, (size_t)n_cold);

        /* 5. Watch propagation: publish on one instance, heard by the other. */
        uint64_t *prop = malloc((size_t)n_prop * sizeof(*prop));
        for (int i = 0; i < n_prop; i++) {
                snprintf(prop_want, sizeof(prop_want), "fresh-%d", i);
                prop_seen_ns = 0;
                uint64_t a = now_ns();
                int r = dir_publish(pub[i % n_hosts], prop_want, NULL, 0);
                if (r < 0 || !run_until_quit(10000) || !prop_seen_ns)
                        die("a published name was not seen within 10 s", r);
                prop[i] = prop_seen_ns - a;
        }
        stats sp = stats_of(prop, (size_t)n_prop);

        printf("\n### Directory on etcd: %d hosts x %d names = %zu names, 3-member etcd 3.4 on loopback\n\n",
               n_hosts, n_names, total);
        printf("Publishing %zu names through the module (%d leases): %.2f s; the resolver listed and "
               "watched them in %.2f s.\n\n", total, n_hosts, publish_s, sync_s);
        printf("| measure | samples | p50 us | p99 us | max us | target | |\n|---|---:|---:|---:|---:|---|---|\n");
        printf("| warm lookup (dir_lookup, cache hit) | %zu | %.2f | %.2f | %.1f | p99 <= 10 us | %s |\n", n_warm,
               sw.p50, sw.p99, sw.max, sw.p99 <= 10 ? "met" : "MISSED");
        printf("| cold lookup (dir_resolve: range read, decode, check, cache) | %d | %.1f | %.1f | %.1f | "
               "<= 2x plain | p50 %.2fx, p99 %.2fx: %s |\n",
               n_cold, sc.p50, sc.p99, sc.max, sc.p50 / sr.p50, sc.p99 / sr.p99,
               sc.p50 / sr.p50 <= 2 && sc.p99 / sr.p99 <= 2 ? "met" : "MISSED");
        printf("| plain etcd range read (same request, blocking libcurl, kept-alive) | %d | %.1f | %.1f | %.1f | "
               "(peer) | |\n", n_cold, sr.p50, sr.p99, sr.max);
        printf("| watch propagation (publish on A -> observer on B) | %d | %.0f | %.0f | %.0f | p99 <= 100 ms | %s |\n",
               n_prop, sp.p50, sp.p99, sp.max, sp.p99 <= 100000 ? "met" : "MISSED");
        printf("\nCache: %zu names, %zu entries, %zu bytes (%.0f bytes per entry, hash table included).\n",
               hh.names, hh.entries, hh.bytes, (double)hh.bytes / (double)hh.entries);
        printf("A real ipcfd caching them: %" PRIu64 " records in %" PRIu64 " bytes by its count (%" PRIu64
               " empty); resident set %ld KiB empty, %ld KiB with them (+%.0f bytes per record).\n",
               dh.records, dh.bytes, dh0.bytes, rss0, rss1, (double)(rss1 - rss0) * 1024.0 / (double)dh.records);

        dir_free(res);
        for (int h = 0; h < n_hosts; h++)
                dir_free(pub[h]);
        free(pub);
        free(warm);
        free(cold);
        free(raw);
        free(prop);
        loop_free(L);
        etcd_cluster_stop(&cluster);
        return 0;
}
