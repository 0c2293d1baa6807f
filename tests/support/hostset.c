/*
 * hostset.c — several hosts for tests (hostset.h).
 *
 * NAMESPACES: host i lives in "ipcfh<pid>n<i>"; every pair (i, j) is joined
 * by a veth pair "ih<pid5>p<k>a"/"...b" on 10.199.<k>.0/24 (i has .1, j .2),
 * so each host reaches each other at an address of their own link. A
 * namespace left by a run that died (its pid is gone) is removed at the
 * next init.
 */
#include "support/hostset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "efcp/keyfile.h"
#include "ipcf.h"

static hostset *g_set; /* for the signal and exit handlers */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
        char cmd[1024];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(cmd, sizeof(cmd), fmt, ap);
        va_end(ap);
        return system(cmd);
}

static void netns_remove(const hostset *s) {
        for (int i = 0; i < s->n; i++)
                if (s->h[i].netns[0])
                        sh("ip netns del %s 2>/dev/null", s->h[i].netns);
}

static void kill_all(const hostset *s) {
        for (int i = 0; i < s->n; i++)
                if (s->h[i].running && s->h[i].d.pid > 0)
                        kill(s->h[i].d.pid, SIGKILL);
}

static void on_signal(int sig) {
        if (g_set) {
                kill_all(g_set);
                netns_remove(g_set); /* system() in a handler: a test about to die */
        }
        signal(sig, SIG_DFL);
        raise(sig);
}

static void on_exit_cleanup(void) {
        if (g_set && g_set->netns) {
                kill_all(g_set);
                netns_remove(g_set);
        }
}

/* Namespaces of runs that died. */
static void netns_sweep(void) {
        DIR *dir = opendir("/run/netns");
        if (!dir)
                return;
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
                int pid;
                if (sscanf(e->d_name, "ipcfh%dn", &pid) == 1 && pid > 0 && kill(pid, 0) < 0 && errno == ESRCH)
                        sh("ip netns del %s 2>/dev/null", e->d_name);
        }
        closedir(dir);
}

static uint16_t free_udp_port(void) {
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t l = sizeof(sa);
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &l) < 0)
                test_fail(__FILE__, __LINE__, "free port: %s", strerror(errno));
        close(fd);
        return ntohs(sa.sin_port);
}

/* The link index of the pair (i, j), i < j: 0 for (0,1), 1 for (0,2), 2 for (1,2). */
static int pair_index(int i, int j) { return i == 0 ? j - 1 : 2; }

void hostset_addr(const hostset *s, int i, int j, char *out, size_t size) {
        if (!s->netns) {
                snprintf(out, size, "127.0.0.1");
                return;
        }
        int lo = i < j ? i : j, hi = i < j ? j : i;
        snprintf(out, size, "10.199.%d.%d", pair_index(lo, hi), j == lo ? 1 : 2);
}

bool hostset_init(hostset *s, int n, int mode) {
        static const char *names[HOSTSET_MAX] = { "alpha", "beta", "gamma" };
        memset(s, 0, sizeof(*s));
        s->n = n;
        s->netns = mode == HOSTSET_NETNS;
        if (s->netns && geteuid() != 0)
                return false;
        const char *scratch = getenv("TEST_SCRATCH");
        snprintf(s->scratch, sizeof(s->scratch), "%s/hosts.XXXXXX", scratch && *scratch ? scratch : "/tmp");
        if (!mkdtemp(s->scratch))
                test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
        chmod(s->scratch, 0755);
        g_set = s;
        atexit(on_exit_cleanup);
        signal(SIGALRM, on_signal);
        signal(SIGTERM, on_signal);
        signal(SIGINT, on_signal);
        for (int i = 0; i < n; i++) {
                hostset_host *h = &s->h[i];
                snprintf(h->name, sizeof(h->name), "%s", names[i]);
                snprintf(h->state_dir, sizeof(h->state_dir), "%s/%s-state", s->scratch, h->name);
                if (mkdir(h->state_dir, 0700) < 0)
                        test_fail(__FILE__, __LINE__, "mkdir %s: %s", h->state_dir, strerror(errno));
                uint8_t priv[32], pub[32];
                CHECK_OK(efcp_keyfile_load(h->state_dir, priv, pub, NULL));
                efcp_key_format(pub, h->key, sizeof(h->key));
                h->port = s->netns ? 7700 : free_udp_port();
        }
        if (!s->netns)
                return true;
        netns_sweep();
        int pid = (int)getpid();
        for (int i = 0; i < n; i++) {
                snprintf(s->h[i].netns, sizeof(s->h[i].netns), "ipcfh%dn%d", pid, i);
                if (sh("ip netns add %s && ip -n %s link set lo up", s->h[i].netns, s->h[i].netns))
                        test_fail(__FILE__, __LINE__, "ip netns add failed");
        }
        for (int i = 0; i < n; i++)
                for (int j = i + 1; j < n; j++) {
                        int k = pair_index(i, j);
                        /* interface names: at most 15 characters */
                        char a[32], b[32];
                        snprintf(a, sizeof(a), "ih%05up%ua", (unsigned)pid % 100000u, (unsigned)k % 10u);
                        snprintf(b, sizeof(b), "ih%05up%ub", (unsigned)pid % 100000u, (unsigned)k % 10u);
                        if (sh("ip link add %s type veth peer name %s && ip link set %s netns %s && "
                               "ip link set %s netns %s && "
                               "ip -n %s addr add 10.199.%d.1/24 dev %s && ip -n %s link set %s up && "
                               "ip -n %s addr add 10.199.%d.2/24 dev %s && ip -n %s link set %s up",
                               a, b, a, s->h[i].netns, b, s->h[j].netns, s->h[i].netns, k, a, s->h[i].netns, a,
                               s->h[j].netns, k, b, s->h[j].netns, b))
                                test_fail(__FILE__, __LINE__, "veth setup failed");
                }
        return true;
}

/* Enter host i's namespace (the calling thread). */
static void netns_enter(const hostset *s, int i) {
        if (!s->netns)
                return;
        char path[128];
        snprintf(path, sizeof(path), "/run/netns/%s", s->h[i].netns);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, CLONE_NEWNET) < 0)
                test_fail(__FILE__, __LINE__, "setns %s: %s", path, strerror(errno));
        close(fd);
}

void hostset_start(hostset *s, int i, const char *extra) { hostset_start_enrol(s, i, extra, ~0u, NULL); }

void hostset_start_enrol(hostset *s, int i, const char *extra, unsigned mask, const char *const *keys) {
        hostset_host *h = &s->h[i];
        char conf[8192];
        size_t n = (size_t)snprintf(conf, sizeof(conf),
                                    "[daemon]\nstate_dir = %s\n[hosts]\nname = %s\nlisten = %s:%u\n"
                                    "dead_interval_ms = %u\n%s",
                                    h->state_dir, h->name, s->netns ? "0.0.0.0" : "127.0.0.1", h->port,
                                    s->dead_interval_ms ? s->dead_interval_ms : 2000u,
                                    s->hosts_keys ? s->hosts_keys : "");
        for (int j = 0; j < s->n; j++) {
                if (j == i || !(mask & (1u << j)))
                        continue;
                char addr[32];
                hostset_addr(s, i, j, addr, sizeof(addr));
                n += (size_t)snprintf(conf + n, sizeof(conf) - n, "[host %s]\naddress = %s:%u\nkey = %s\n",
                                      s->h[j].name, addr, s->h[j].port,
                                      keys && keys[j] ? keys[j] : s->h[j].key);
        }
        if (extra)
                n += (size_t)snprintf(conf + n, sizeof(conf) - n, "%s\n", extra);
        int saved = -1;
        if (s->netns) {
                saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
                netns_enter(s, i);
        }
        test_daemon_start(&h->d, conf, s->daemon_args);
        if (saved >= 0) {
                setns(saved, CLONE_NEWNET);
                close(saved);
        }
        h->running = true;
}

void hostset_start_two(hostset *s, const char *rules_beta) {
        CHECK(hostset_init(s, 2, HOSTSET_LOOPBACK));
        hostset_start(s, 0, NULL);
        hostset_start(s, 1, rules_beta);
        CHECK(hostset_wait_up(s, 0, 10000));
        CHECK(hostset_wait_up(s, 1, 10000));
}

void hostset_stop_host(hostset *s, int i) {
        if (s->h[i].running)
                test_daemon_stop(&s->h[i].d);
        s->h[i].running = false;
}

void hostset_kill_host(hostset *s, int i) {
        if (s->h[i].running)
                test_daemon_kill(&s->h[i].d);
        s->h[i].running = false;
}

void hostset_stop(hostset *s) {
        for (int i = 0; i < s->n; i++)
                hostset_stop_host(s, i);
        netns_remove(s);
        for (int i = 0; i < s->n; i++)
                s->h[i].netns[0] = 0;
        sh("rm -rf %s", s->scratch);
        g_set = NULL;
}

void hostset_enter(const hostset *s, int i) {
        setenv("IPCF_RUNTIME_DIR", s->h[i].d.dir, 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
        netns_enter(s, i);
}

pid_t hostset_spawn(const hostset *s, int i, const char *const *argv, int in_fd, int out_fd) {
        char *bin = test_build_path(argv[0]);
        pid_t pid = fork();
        if (pid < 0)
                test_fail(__FILE__, __LINE__, "fork: %s", strerror(errno));
        if (pid == 0) {
                hostset_enter(s, i);
                int null = open("/dev/null", O_RDWR);
                dup2(in_fd >= 0 ? in_fd : null, 0);
                dup2(out_fd >= 0 ? out_fd : null, 1);
                execv(bin, (char *const *)argv);
                fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
                _exit(127);
        }
        free(bin);
        return pid;
}

typedef struct up_arg {
        const hostset *s;
        int i, timeout_ms;
} up_arg;

static void wait_up_child(void *arg) {
        up_arg *u = arg;
        hostset_enter(u->s, u->i);
        uint64_t end = test_now_ms() + (uint64_t)u->timeout_ms;
        while (test_now_ms() < end) {
                ipcf_host_listing *l = NULL;
                if (ipcf_hosts(&l) == 0) {
                        size_t up = 0;
                        for (size_t k = 0; k < l->n; k++)
                                up += l->hosts[k].state == IPCF_HOST_UP;
                        bool all = up == l->n && l->n == (size_t)u->s->n - 1;
                        ipcf_free(l);
                        if (all)
                                _exit(0);
                }
                usleep(20000);
        }
        _exit(1);
}

bool hostset_wait_up(const hostset *s, int i, int timeout_ms) {
        up_arg u = { s, i, timeout_ms };
        return test_wait(test_fork(wait_up_child, &u), timeout_ms + 5000) == 0;
}

int hostset_alloc(const char *name, const ipcf_qos *q) {
        int port = -ENOENT;
        for (int t = 0; t < 100 && (port == -ENOENT || port == -EHOSTUNREACH); t++)
                if ((port = ipcf_alloc(name, q, 10000, NULL)) == -ENOENT || port == -EHOSTUNREACH)
                        usleep(50000);
        return port;
}

int hostset_mbox_open(const char *name, int how) {
        int h = -ENOENT;
        for (int t = 0; t < 100 && h == -ENOENT; t++)
                if ((h = ipcf_mbox_open(name, how, NULL, 5000)) == -ENOENT)
                        usleep(50000);
        return h;
}
