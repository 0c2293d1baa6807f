/*
 * dirtest.c — what the tests of the directory in the daemon share
 * (dirtest.h).
 */
#include "support/dirtest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "support/shell.h"
#include "support/test.h"

static void echo_server(const char *name) {
        int reg = ipcf_register(name, NULL);
        if (reg < 0)
                _exit(2);
        const char *unreg = getenv("DIRTEST_UNREGISTER_MS");
        if (unreg && *unreg) { /* registered a while, then not, alive until killed */
                usleep((useconds_t)atoi(unreg) * 1000u);
                if (ipcf_dealloc(reg, NULL) < 0)
                        _exit(3);
                for (;;)
                        pause();
        }
        static char buf[1 << 16];
        for (;;) {
                int port = ipcf_accept(reg, 60000, NULL);
                if (port == -ETIMEDOUT || port == -ECANCELED)
                        continue;
                if (port < 0)
                        _exit(0);
                ssize_t n;
                while ((n = ipcf_read(port, buf, sizeof(buf), 20000)) >= 0)
                        if (ipcf_write(port, buf, (size_t)n, 20000) != n)
                                break;
                ipcf_dealloc(port, NULL);
        }
}

__attribute__((constructor)) static void maybe_serve(void) {
        const char *name = getenv("DIRTEST_SERVE");
        if (name && *name)
                echo_server(name);
}

static pid_t serve(const hostset *s, int host, const char *name, int unregister_ms) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                hostset_enter(s, host);
                setenv("DIRTEST_SERVE", name, 1);
                if (unregister_ms > 0) {
                        char ms[16];
                        snprintf(ms, sizeof(ms), "%d", unregister_ms);
                        setenv("DIRTEST_UNREGISTER_MS", ms, 1);
                }
                execl("/proc/self/exe", "dirtest-server", (char *)NULL);
                _exit(127);
        }
        return pid;
}

pid_t dirtest_serve(const hostset *s, int host, const char *name) { return serve(s, host, name, 0); }

pid_t dirtest_serve_unregister(const hostset *s, int host, const char *name, int ms) {
        return serve(s, host, name, ms);
}

void dirtest_echo_check(int port, int count) {
        static uint8_t out[8192], in[8192];
        for (int i = 0; i < count; i++) {
                size_t len = (size_t)(i * 7919u % sizeof(out)) + 1;
                test_fill(out, len, (uint64_t)i);
                CHECK_EQ(ipcf_write(port, out, len, 10000), (ssize_t)len);
                CHECK_EQ(ipcf_read(port, in, sizeof(in), 10000), (ssize_t)len);
                CHECK_MEM(in, out, len);
        }
}

int dirtest_alloc_until(const char *name, int until_not, int ms, ipcf_reason *why) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        int r;
        do {
                r = ipcf_alloc(name, NULL, 5000, why);
                if (r != until_not)
                        return r;
                usleep(50000);
        } while (test_now_ms() < end);
        return r;
}

const char *dirtest_use(const char *name, char *host, size_t size) {
        int port = CHECK_OK(dirtest_alloc_until(name, -ENOENT, 10000, NULL));
        ipcf_peer_info pi;
        CHECK_OK(ipcf_peer(port, &pi));
        const char *at = strrchr(pi.name, '@');
        if (!at)
                test_fail(__FILE__, __LINE__, "peer name %s", pi.name);
        str_copy(host, at + 1, size);
        dirtest_echo_check(port, 20);
        CHECK_OK(ipcf_dealloc(port, "done"));
        return host;
}

int dirtest_next_name_event(const char *name, int ms) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        while (test_now_ms() < end) {
                ipcf_event ev;
                int r = ipcf_notify_next(200, &ev);
                if (r == -ETIMEDOUT || r == -EAGAIN)
                        continue;
                CHECK_OK(r);
                if (strcmp(ev.name, name) == 0 && (ev.kind == IPCF_EVENT_NAME_UP || ev.kind == IPCF_EVENT_NAME_DOWN))
                        return ev.kind;
        }
        return 0;
}

void dirtest_fresh_key(char key[64], char fp[80]) {
        uint8_t pub[32], h[crypto_hash_sha256_BYTES];
        randombytes_buf(pub, sizeof(pub));
        sodium_bin2base64(key, 64, pub, sizeof(pub), sodium_base64_VARIANT_ORIGINAL);
        crypto_hash_sha256(h, pub, sizeof(pub));
        memcpy(fp, "sha256:", 7);
        sodium_bin2hex(fp + 7, 80 - 7, h, sizeof(h));
}

char *dirtest_record_range(const char *url, const char *name, const char *host, const char *more) {
        char key[128], k64[256];
        snprintf(key, sizeof(key), "/ipcf/names/%s/%s", name, host);
        sodium_bin2base64(k64, sizeof(k64), (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_ORIGINAL);
        return TEST_SH_OK("curl -sf --max-time 5 -X POST %s/v3/kv/range -d '{\"key\":\"%s\"%s}'", url, k64, more);
}

const char *dirtest_conf_with(const char *endpoint, const char *dir_keys) {
        static char conf[1024];
        snprintf(conf, sizeof(conf),
                 "[directory]\nbackend = etcd\nendpoints = %s\nttl_s = 2\nrequest_timeout_ms = 1500\n%s"
                 "[name *]\nremote_allocate = *@*\n",
                 endpoint, dir_keys);
        return conf;
}

const char *dirtest_conf(const char *endpoint) { return dirtest_conf_with(endpoint, ""); }

ipcf_dir_health dirtest_health(void) {
        ipcf_host_listing *hl;
        CHECK_OK(ipcf_hosts(&hl));
        CHECK(hl->directory != NULL);
        ipcf_dir_health h = *hl->directory;
        ipcf_free(hl);
        return h;
}

void dirtest_start_logged(hostset *s, int i, const char *extra, unsigned mask, const char *log_path) {
        int saved = dup(2);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        CHECK(saved >= 0 && fd >= 0);
        CHECK(dup2(fd, 2) == 2);
        hostset_start_enrol(s, i, extra, mask, NULL);
        CHECK(dup2(saved, 2) == 2);
        close(saved);
        close(fd);
}

bool dirtest_live_becomes(bool want_live, int ms, ipcf_dir_health *ret) {
        uint64_t end = test_now_ms() + (uint64_t)ms;
        for (;;) {
                *ret = dirtest_health();
                if (!!ret->live == want_live)
                        return true;
                if (test_now_ms() > end)
                        return false;
                usleep(100000);
        }
}

int dirtest_ipcf_on(const hostset *s, int i, unsigned uid, const char *args, char **ret_out) {
        char *bin = test_built("bin/ipcf");
        char who[96] = "";
        if (uid)
                snprintf(who, sizeof(who), "setpriv --reuid=%u --regid=%u --clear-groups ", uid, uid);
        int st = test_sh(ret_out, 30, "IPCF_RUNTIME_DIR='%s' IPCF_NO_AUTOSTART=1 %s'%s' %s", s->h[i].d.dir, who, bin,
                         args);
        free(bin);
        return st;
}

void dirtest_put_raw(const char *url, const char *key, const char *value) {
        char k64[1024], v64[12000];
        CHECK(strlen(key) < 700 && strlen(value) < 8000);
        sodium_bin2base64(k64, sizeof(k64), (const unsigned char *)key, strlen(key), sodium_base64_VARIANT_ORIGINAL);
        sodium_bin2base64(v64, sizeof(v64), (const unsigned char *)value, strlen(value),
                          sodium_base64_VARIANT_ORIGINAL);
        char *out = NULL;
        int st = test_sh(&out, 30,
                         "curl -sf --max-time 5 -o /dev/null -X POST %s/v3/kv/put -d '{\"key\":\"%s\",\"value\":\"%s\"}'",
                         url, k64, v64);
        if (st != 0)
                test_fail(__FILE__, __LINE__, "put %s through %s: exit %d %s", key, url, st, out ? out : "");
        free(out);
}

int dirtest_listen(int *port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        CHECK(fd >= 0);
        CHECK_OK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)));
        CHECK_OK(listen(fd, 64));
        socklen_t len = sizeof(sa);
        CHECK_OK(getsockname(fd, (struct sockaddr *)&sa, &len));
        *port = ntohs(sa.sin_port);
        return fd;
}
