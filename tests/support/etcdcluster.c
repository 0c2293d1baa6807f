/*
 * etcdcluster.c — start, break and stop a real etcd cluster on loopback (see
 * etcdcluster.h). Readiness is asked of the members over plain HTTP with a
 * linearizable range read (it needs a leader and a quorum).
 */
#include "support/etcdcluster.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <stdarg.h>

/* No dependency on the test harness (benchmarks link this too): a failure
 * says why on stderr and exits 1, which fails a test case as test_fail does. */
static _Noreturn void cluster_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static _Noreturn void cluster_die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fprintf(stderr, "etcdcluster: ");
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "\n");
        va_end(ap);
        exit(1);
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Reap pid within timeout_ms (SIGKILL first is the caller's). */
static void reap(pid_t pid, int timeout_ms) {
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        while (waitpid(pid, NULL, WNOHANG) == 0 && now_ms() < end)
                usleep(5000);
}

static void member_spawn(etcd_cluster *c, int i, bool fresh) {
        char name[16], data[300], log[300], peer[64], cluster[512] = "", arg_client[64];
        snprintf(name, sizeof(name), "m%d", i);
        snprintf(data, sizeof(data), "%s/%s", c->dir, name);
        snprintf(log, sizeof(log), "%s/%s.log", c->dir, name);
        snprintf(peer, sizeof(peer), "http://%s:2380", c->host[i]);
        snprintf(arg_client, sizeof(arg_client), "%s", c->client_url[i]);
        for (int j = 0; j < c->n; j++) {
                size_t len = strlen(cluster);
                snprintf(cluster + len, sizeof(cluster) - len, "%sm%d=http://%s:2380", j ? "," : "", j, c->host[j]);
        }
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0)
                cluster_die("fork: %s", strerror(errno));
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (getppid() != parent)
                        _exit(127);
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                int nul = open("/dev/null", O_RDONLY);
                if (nul >= 0)
                        dup2(nul, 0);
                char srv_cert[300], srv_key[300];
                snprintf(srv_cert, sizeof(srv_cert), "%s/server.pem", c->dir);
                snprintf(srv_key, sizeof(srv_key), "%s/server.key", c->dir);
                const char *argv[40] = { "etcd", "--name", name, "--data-dir", data, "--listen-client-urls",
                                         arg_client, "--advertise-client-urls", arg_client, "--listen-peer-urls",
                                         peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
                                         "--initial-cluster-state", fresh ? "new" : "existing",
                                         "--initial-cluster-token", c->dir, "--heartbeat-interval", "50",
                                         "--election-timeout", "500", "--logger", "zap", "--log-level", "warn" };
                int k = 0;
                while (argv[k])
                        k++;
                if (c->tls) {
                        argv[k++] = "--cert-file";
                        argv[k++] = srv_cert;
                        argv[k++] = "--key-file";
                        argv[k++] = srv_key;
                        argv[k++] = "--trusted-ca-file";
                        argv[k++] = c->ca;
                        argv[k++] = "--client-cert-auth";
                }
                argv[k] = NULL;
                execvp("etcd", (char *const *)argv);
                _exit(127);
        }
        c->pid[i] = pid;
}

/* Run argv (a short-lived tool) with stdout and stderr to log; its exit
 * status, or -1. Bounded: killed after timeout_ms. */
static int run_tool(const char *const *argv, const char *log, int timeout_ms) {
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execvp(argv[0], (char *const *)argv);
                _exit(127);
        }
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        int st;
        while (waitpid(pid, &st, WNOHANG) == 0) {
                if (now_ms() >= end) {
                        kill(pid, SIGKILL);
                        waitpid(pid, &st, 0);
                        return -1;
                }
                usleep(5000);
        }
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Member i over TLS: curl(1) with the client's certificate. */
static bool member_ready_tls(etcd_cluster *c, int i, int timeout_ms) {
        char url[96], tmo[16], log[300];
        snprintf(url, sizeof(url), "%s/v3/kv/range", c->client_url[i]);
        snprintf(tmo, sizeof(tmo), "%.3f", timeout_ms / 1000.0);
        snprintf(log, sizeof(log), "%s/curl.log", c->dir);
        const char *argv[] = { "curl", "-sf", "-o", "/dev/null", "--max-time", tmo, "--cacert", c->ca, "--cert",
                               c->cert, "--key", c->key, "-X", "POST", "-d", "{\"key\":\"AA==\"}", url, NULL };
        return run_tool(argv, log, timeout_ms + 1000) == 0;
}

/* One HTTP exchange with member i: a linearizable range read. */
static bool member_ready(etcd_cluster *c, int i, int timeout_ms) {
        if (c->tls)
                return member_ready_tls(c, i, timeout_ms);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(2379) };
        inet_pton(AF_INET, c->host[i], &sa.sin_addr);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return false;
        bool ok = false;
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                goto out;
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        if (poll(&p, 1, timeout_ms) != 1 || (p.revents & (POLLERR | POLLHUP)))
                goto out;
        const char *body = "{\"key\":\"AA==\"}";
        char req[512], resp[4096];
        int n = snprintf(req, sizeof(req),
                         "POST /v3/kv/range HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                         c->host[i], strlen(body), body);
        if (write(fd, req, (size_t)n) != n)
                goto out;
        size_t got = 0;
        for (;;) {
                uint64_t now = now_ms();
                if (now >= end)
                        goto out;
                p.events = POLLIN;
                if (poll(&p, 1, (int)(end - now)) != 1)
                        goto out;
                ssize_t r = read(fd, resp + got, sizeof(resp) - 1 - got);
                if (r <= 0)
                        break;
                got += (size_t)r;
                if (got == sizeof(resp) - 1)
                        break;
        }
        resp[got] = 0;
        ok = strstr(resp, " 200 ") && strstr(resp, "\"revision\"");
out:
        close(fd);
        return ok;
}

bool etcd_cluster_wait_ready(etcd_cluster *c, int i, int timeout_ms) {
        uint64_t end = now_ms() + (uint64_t)timeout_ms;
        /* (every 50 ms: a member takes about a second to elect a leader, and
         * naps doubling to 320 ms saw it ready up to 320 ms late) */
        while (now_ms() < end) {
                for (int j = 0; j < c->n; j++)
                        if ((i < 0 || i == j) && c->pid[j] && member_ready(c, j, 1000))
                                return true;
                usleep(50000);
        }
        return false;
}

/* A CA, a server certificate for the members' addresses, a client one. */
static void make_certs(etcd_cluster *c) {
        char f[8][300], san[256], log[300];
        const char *names[] = { "ca.key", "ca.pem", "server.key", "server.csr", "server.pem",
                                "client.key", "client.csr", "ext.cnf" };
        for (int i = 0; i < 8; i++)
                snprintf(f[i], sizeof(f[i]), "%s/%s", c->dir, names[i]);
        snprintf(log, sizeof(log), "%s/openssl.log", c->dir);
        int n = snprintf(san, sizeof(san), "subjectAltName=");
        for (int i = 0; i < c->n; i++)
                n += snprintf(san + n, sizeof(san) - (size_t)n, "%sIP:%s", i ? "," : "", c->host[i]);
        FILE *ext = fopen(f[7], "w");
        if (!ext)
                cluster_die("%s: %s", f[7], strerror(errno));
        fprintf(ext, "[srv]\n%s\nextendedKeyUsage=serverAuth,clientAuth\n[cli]\nextendedKeyUsage=clientAuth\n", san);
        fclose(ext);
        snprintf(c->ca, sizeof(c->ca), "%s", f[1]);
        snprintf(c->cert, sizeof(c->cert), "%s/client.pem", c->dir);
        snprintf(c->key, sizeof(c->key), "%s", f[5]);
        const char *ec[] = { "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes" };
        const char *steps[][24] = {
                { "openssl", "req", "-x509", ec[0], ec[1], ec[2], ec[3], ec[4], "-keyout", f[0], "-out", f[1],
                  "-days", "2", "-subj", "/CN=ipcf-test-ca", NULL },
                { "openssl", "req", ec[0], ec[1], ec[2], ec[3], ec[4], "-keyout", f[2], "-out", f[3], "-subj",
                  "/CN=etcd", NULL },
                { "openssl", "x509", "-req", "-in", f[3], "-CA", f[1], "-CAkey", f[0], "-CAcreateserial", "-out",
                  f[4], "-days", "2", "-extfile", f[7], "-extensions", "srv", NULL },
                { "openssl", "req", ec[0], ec[1], ec[2], ec[3], ec[4], "-keyout", f[5], "-out", f[6], "-subj",
                  "/CN=ipcf-client", NULL },
                { "openssl", "x509", "-req", "-in", f[6], "-CA", f[1], "-CAkey", f[0], "-CAcreateserial", "-out",
                  c->cert, "-days", "2", "-extfile", f[7], "-extensions", "cli", NULL },
        };
        for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
                if (run_tool(steps[i], log, 30000) != 0)
                        cluster_die("openssl step %zu failed (see %s)", i, log);
}

static void cluster_start(etcd_cluster *c, int n, bool tls);

void etcd_cluster_start(etcd_cluster *c, int n) { cluster_start(c, n, false); }
void etcd_cluster_start_tls(etcd_cluster *c, int n) { cluster_start(c, n, true); }

static void cluster_start(etcd_cluster *c, int n, bool tls) {
        memset(c, 0, sizeof(*c));
        c->tls = tls;
        if (n < 1 || n > ETCD_CLUSTER_MAX)
                cluster_die("a cluster of %d members", n);
        c->n = n;
        const char *scratch = getenv("TEST_SCRATCH");
        snprintf(c->dir, sizeof(c->dir), "%s/etcd.XXXXXX", scratch && *scratch ? scratch : "/tmp");
        if (!mkdtemp(c->dir))
                cluster_die("mkdtemp: %s", strerror(errno));
        /* 127.X.Y.*: X in 2..254, Y in 1..254, from the pid and the clock. */
        uint64_t seed = (uint64_t)getpid() * 2654435761u ^ (uint64_t)now_ms() * 1000003u;
        uint64_t rnd;
        if (getrandom(&rnd, sizeof(rnd), 0) == sizeof(rnd))
                seed ^= rnd;
        unsigned x = 2 + (unsigned)(seed % 253), y = 1 + (unsigned)((seed >> 16) % 254);
        for (int i = 0; i < n; i++) {
                snprintf(c->host[i], sizeof(c->host[i]), "127.%u.%u.%d", x, y, i + 1);
                snprintf(c->client_url[i], sizeof(c->client_url[i]), "%s://%s:2379", tls ? "https" : "http",
                         c->host[i]);
        }
        if (tls)
                make_certs(c);
        for (int i = 0; i < n; i++)
                member_spawn(c, i, true);
        for (int i = 0; i < n; i++)
                if (!etcd_cluster_wait_ready(c, i, 30000))
                        cluster_die("etcd member %d did not become ready (see %s/m%d.log)", i, c->dir, i);
}

static void member_reap(etcd_cluster *c, int i) {
        if (!c->pid[i])
                return;
        kill(c->pid[i], SIGKILL);
        reap(c->pid[i], 10000);
        c->pid[i] = 0;
}

void etcd_cluster_kill(etcd_cluster *c, int i) { member_reap(c, i); }

void etcd_cluster_restart(etcd_cluster *c, int i) {
        if (!c->pid[i])
                member_spawn(c, i, false);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st, (void)flag, (void)ftw;
        remove(path);
        return 0;
}

void etcd_cluster_wipe(etcd_cluster *c) {
        char data[300];
        for (int i = 0; i < c->n; i++) {
                member_reap(c, i);
                snprintf(data, sizeof(data), "%s/m%d", c->dir, i);
                nftw(data, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        }
        for (int i = 0; i < c->n; i++)
                member_spawn(c, i, true);
        for (int i = 0; i < c->n; i++)
                if (!etcd_cluster_wait_ready(c, i, 30000))
                        cluster_die("etcd member %d did not become ready (see %s/m%d.log)", i, c->dir, i);
}

void etcd_cluster_stop(etcd_cluster *c) {
        for (int i = 0; i < c->n; i++)
                member_reap(c, i);
        if (c->dir[0])
                nftw(c->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        c->dir[0] = 0;
}
