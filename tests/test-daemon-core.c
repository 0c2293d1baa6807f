/*
 * test-daemon-core.c — the daemon's core through the raw control protocol
 * (common/ctl.c, not the library): connections and the dispatcher (HELLO,
 * malformed messages of 14 kinds drop only their sender, random well-framed
 * requests are answered or dropped and never kill the daemon), backpressure,
 * the private socket, start-up and shut-down (a second daemon exits 0,
 * SIGTERM cleans up, a stale socket, a bad config or a foreign runtime dir
 * refused), SIGHUP reloads the config, and a tiny descriptor limit. Every
 * case starts the real daemon on a private runtime dir (test_daemon_start).
 * Split from test-daemon-proto.c by module (issue 9); the shared helpers are
 * tests/support/rawctl.c.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <grp.h>
#include <limits.h>
#include <unistd.h>

#include "ipcf.h"
#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "common/util.h"
#include "common/wake.h"
#include "support/rawctl.h"
#include "support/test.h"

TEST_TIMEOUT(hello, 20) {
        test_daemon d;
        uint32_t pid = 0;
        test_daemon_start(&d, NULL, NULL);
        int fd = CHECK_OK(dconnect());
        CHECK_OK(do_hello(fd, &pid));
        CHECK_EQ(pid, d.pid);
        /* Requests without HELLO work too. */
        int fd2 = CHECK_OK(dconnect());
        CHECK_ERR(do_simple(fd2, CTL_UNREGISTER, CTL_A_REG_ID, 12345, 0, 0, NULL), -ENOENT);
        close(fd);
        close(fd2);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(malformed_messages, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int good = CHECK_OK(dconnect());
        CHECK_OK(do_hello(good, NULL));
        ctl_builder b;

        for (int k = 0; k < 14; k++) {
                int bad = CHECK_OK(dconnect());
                int sv[2] = { -1, -1 };
                switch (k) {
                case 0: send_raw(bad, "garbage!", 8, NULL, 0); break;
                case 1: /* a header whose len disagrees with the packet */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[4] = 99;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 2: /* an attribute running past the end */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put_str(&b, CTL_A_NAME, "abc");
                        ctl_end(&b);
                        b.buf[CTL_HDR_SIZE + 2] = 200;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 3: /* a string without its NUL */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put(&b, CTL_A_NAME, "abcd", 4);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 4: /* unknown message type */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[0] = 99;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 5: /* a daemon-to-client type */
                        ctl_begin(&b, CTL_FLOW, 1);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 6: /* a known attribute of the wrong size */
                        ctl_begin(&b, CTL_UNREGISTER, 1);
                        ctl_put_u32(&b, CTL_A_REG_ID, 5);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 7: /* an fd where none belongs */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
                        send_raw(bad, b.buf, b.len, sv, 1);
                        break;
                case 8: /* ALLOC without its reply socket */
                        ctl_begin(&b, CTL_ALLOC, 1);
                        ctl_put_str(&b, CTL_A_NAME, "x");
                        ctl_put_u32(&b, CTL_A_TIMEOUT_MS, 100);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 9: /* ALLOC with two fds */
                        ctl_begin(&b, CTL_ALLOC, 1);
                        ctl_put_str(&b, CTL_A_NAME, "x");
                        ctl_end(&b);
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
                        send_raw(bad, b.buf, b.len, sv, 2);
                        break;
                case 10: /* a short packet */
                        send_raw(bad, "\x03\x00\x00\x00", 4, NULL, 0);
                        break;
                case 11: /* nonzero flags in the header */
                        ctl_begin(&b, CTL_HELLO, 1);
                        ctl_end(&b);
                        b.buf[2] = 1;
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 12: /* a known attribute of the wrong size, in a listing */
                        ctl_begin(&b, CTL_LIST, 1);
                        ctl_put_u64(&b, CTL_A_LIST_SKIP, 0);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                case 13: /* a bad value and a malformed attribute: framing wins */
                        ctl_begin(&b, CTL_REGISTER, 1);
                        ctl_put_str(&b, CTL_A_NAME, "has space");
                        ctl_put_u64(&b, CTL_A_BACKLOG, 1);
                        ctl_end(&b);
                        send_raw(bad, b.buf, b.len, NULL, 0);
                        break;
                }
                if (!closed_by_daemon(bad))
                        test_fail(__FILE__, __LINE__, "case %d: offender not dropped", k);
                safe_close(sv[0]);
                safe_close(sv[1]);
                close(bad);
                /* The well-behaved client is untouched. */
                CHECK_OK(do_hello(good, NULL));
        }
        /* An empty packet is the same as garbage; ALLOC with a non-socket fd
         * is refused politely. */
        int bad = CHECK_OK(dconnect());
        int p[2];
        CHECK_OK(pipe(p));
        ctl_begin(&b, CTL_ALLOC, 77);
        ctl_put_str(&b, CTL_A_NAME, "x");
        ctl_put_u32(&b, CTL_A_TIMEOUT_MS, 100);
        ctl_end(&b);
        send_raw(bad, b.buf, b.len, p, 1);
        rmsg r;
        CHECK_ERR(wait_reply(bad, &r, 77), -EINVAL);
        close(p[0]);
        close(p[1]);
        close(bad);
        CHECK_OK(do_hello(good, NULL));
        close(good);
        test_daemon_stop(&d);
}

static void nobody_connect_child(void *arg) {
        (void)arg;
        as_nobody();
        CHECK_ERR(dconnect(), -EACCES);
}

TEST_TIMEOUT(private_socket, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0600);
        if (geteuid() == 0) {
                pid_t p = test_fork(nobody_connect_child, NULL);
                CHECK_EQ(test_wait(p, 10000), 0);
        } else {
                printf("  (not root: the other-user connect is skipped)\n");
        }
        test_daemon_stop(&d);
}

/* Run ipcfd with args; returns its pid; its stderr goes to *ret_err (a pipe). */
static pid_t spawn_daemon(const char *const *args, int *ret_err) {
        int p[2];
        CHECK_OK(pipe2(p, O_CLOEXEC));
        char *bin = test_build_path("bin/ipcfd");
        const char *argv[16] = { bin };
        unsigned n = 1;
        for (; args[n - 1] && n < 15; n++)
                argv[n] = args[n - 1];
        argv[n] = NULL;
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                dup2(p[1], 2);
                execv(bin, (char *const *)argv);
                _exit(127);
        }
        free(bin);
        close(p[1]);
        *ret_err = p[0];
        return pid;
}

/* The mode bits of path (-1 if it is not there). */
static int mode_of(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 ? -1 : (int)(st.st_mode & 07777);
}

/* Can uid 65534 connect to the daemon of dir and be answered a HELLO? 0, or
 * the -errno of the connect. The library's ipcf_connect must agree, and
 * when refused, ipcf_error_cause name an unsearchable directory. */
static int nobody_connects(const char *dir) {
        int p[2];
        CHECK_OK(pipe(p));
        pid_t c = fork();
        CHECK(c >= 0);
        if (c == 0) {
                close(p[0]);
                int r = -EPERM;
                if (setgroups(0, NULL) == 0 && setgid(65534) == 0 && setuid(65534) == 0) {
                        setenv("IPCF_RUNTIME_DIR", dir, 1);
                        setenv("IPCF_NO_AUTOSTART", "1", 1);
                        int fd = dconnect();
                        r = fd < 0 ? fd : do_hello(fd, NULL);
                        int lib = ipcf_connect();
                        char why[256] = "";
                        if (lib < 0)
                                ipcf_error_cause(lib, why, sizeof(why));
                        if (lib != r || (r == -EACCES && !strstr(why, "is not searchable")))
                                r = -ENOTRECOVERABLE;
                }
                _exit(write(p[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
        }
        close(p[1]);
        int r = -EIO;
        CHECK_EQ(read(p[0], &r, sizeof(r)), sizeof(r));
        close(p[0]);
        CHECK_EQ(test_wait(c, 5000), 0);
        return r;
}

/* Wait (5 s at most) until path has mode m. */
static void wait_mode(const char *path, int m) {
        for (int i = 0; i < 500 && mode_of(path) != m; i++)
                usleep(10000);
        CHECK_EQ(mode_of(path), m);
}

/* A runtime dir the daemon creates follows `shared`: 0700, then 0755 once a
 * reload makes the daemon shared (another user can then connect, not
 * before), and 0755 from the start with --shared; a dir that was there keeps
 * its maker's mode. (Before, it was 0700 whatever `shared` said, and the
 * 0666 socket of a shared daemon was out of every other user's reach.) */
TEST_TIMEOUT(a_shared_daemon_makes_its_runtime_dir_reachable, 30) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        char top[] = "/tmp/ipcf-shared.XXXXXX", run[64], conf[64], sock[96];
        CHECK(mkdtemp(top) != NULL);
        CHECK_OK(chmod(top, 0755));
        snprintf(conf, sizeof(conf), "%s/ipcfd.conf", top);
        for (int round = 0; round < 3; round++) {
                snprintf(run, sizeof(run), "%s/run%d", top, round);
                snprintf(sock, sizeof(sock), "%s/%s", run, CTL_SOCKET_NAME);
                if (round == 2)
                        CHECK_OK(mkdir(run, 0700)); /* made by someone else */
                FILE *f = fopen(conf, "w");
                CHECK(f != NULL);
                fputs("[daemon]\nshared = no\n[name *]\nallocate = *\n", f);
                fclose(f);
                const char *plain[] = { "--runtime-dir", run, "--config", conf, NULL };
                const char *shared[] = { "--runtime-dir", run, "--config", conf, "--shared", NULL };
                int e;
                pid_t p = spawn_daemon(round == 0 ? plain : shared, &e);
                for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                        usleep(10000);
                CHECK_OK(access(sock, F_OK));
                if (round == 0) {
                        CHECK_EQ(mode_of(run), 0700);
                        CHECK_ERR(nobody_connects(run), -EACCES);
                        f = fopen(conf, "w");
                        CHECK(f != NULL);
                        fputs("[daemon]\nshared = yes\n[name *]\nallocate = *\n", f);
                        fclose(f);
                        kill(p, SIGHUP);
                        wait_mode(run, 0755);
                        CHECK_EQ(mode_of(sock), 0666);
                        CHECK_OK(nobody_connects(run));
                } else if (round == 1) {
                        /* made 0700, then 0755 just after the socket is
                         * bound: the socket's file may be seen first */
                        wait_mode(run, 0755);
                        CHECK_OK(nobody_connects(run));
                } else {
                        CHECK_EQ(mode_of(run), 0700);
                        CHECK_ERR(nobody_connects(run), -EACCES);
                }
                kill(p, SIGTERM);
                CHECK_EQ(test_wait(p, 5000), 0);
                close(e);
        }
        CHECK_OK(nftw(top, test_rm_entry, 16, FTW_DEPTH | FTW_PHYS));
}

TEST_TIMEOUT(second_daemon_and_sigterm, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), e;
        /* A second daemon on the same dir steps aside with status 0. */
        const char *args[] = { "--runtime-dir", d.dir, NULL };
        pid_t p = spawn_daemon(args, &e);
        CHECK_EQ(test_wait(p, 5000), 0);
        close(e);
        CHECK_OK(do_hello(c, NULL));

        /* SIGTERM: exit 0, socket and pid file gone. */
        char sock[300], pidf[300];
        snprintf(sock, sizeof(sock), "%s/%s", d.dir, CTL_SOCKET_NAME);
        snprintf(pidf, sizeof(pidf), "%s/ipcfd.pid", d.dir);
        CHECK_OK(access(pidf, F_OK));
        kill(d.pid, SIGTERM);
        CHECK_EQ(test_wait(d.pid, 5000), 0);
        d.pid = 0;
        CHECK(access(sock, F_OK) < 0);
        CHECK(access(pidf, F_OK) < 0);
        CHECK(closed_by_daemon(c));
        close(c);

        /* A stale socket (daemon killed) does not stop the next one. */
        p = spawn_daemon(args, &e);
        for (int i = 0; i < 500 && access(sock, F_OK) < 0; i++)
                usleep(10000);
        c = -1;
        for (int i = 0; i < 500 && (c = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(c >= 0);
        kill(p, SIGKILL);
        test_wait(p, 5000);
        close(c);
        CHECK_OK(access(sock, F_OK));
        p = spawn_daemon(args, &e);
        c = -1;
        for (int i = 0; i < 500 && (c = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(c >= 0);
        CHECK_OK(do_hello(c, NULL));
        close(c);
        d.pid = p;
        test_daemon_stop(&d);
}

TEST_TIMEOUT(bad_config_and_dir, 20) {
        char dir[] = "/tmp/ipcf-test-cfg.XXXXXX", conf[300], buf[512];
        CHECK(mkdtemp(dir));
        snprintf(conf, sizeof(conf), "%s/bad.conf", dir);
        FILE *f = fopen(conf, "w");
        fputs("[daemon]\nshared = no\n[limits]\nflows_per_user = lots\n", f);
        fclose(f);
        const char *args[] = { "--runtime-dir", dir, "--config", conf, NULL };
        int e;
        pid_t p = spawn_daemon(args, &e);
        CHECK_EQ(test_wait(p, 5000), 1);
        ssize_t n = read(e, buf, sizeof(buf) - 1);
        CHECK(n > 0);
        buf[n] = 0;
        CHECK(strstr(buf, "line 4") != NULL);
        close(e);
        unlink(conf);
        if (geteuid() == 0) {
                /* A runtime dir that belongs to someone else is refused. */
                CHECK_OK(chown(dir, 65534, 65534));
                const char *args2[] = { "--runtime-dir", dir, NULL };
                p = spawn_daemon(args2, &e);
                CHECK_EQ(test_wait(p, 5000), 1);
                close(e);
        }
        char lock[300];
        snprintf(lock, sizeof(lock), "%s/ipcfd.lock", dir);
        unlink(lock);
        CHECK_OK(rmdir(dir));
}

TEST_TIMEOUT(backpressure, 30) {
        /* A client that sends many requests and reads no replies is not
         * dropped: the daemon stops reading it until it reads. Others go on. */
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c = CHECK_OK(dconnect()), other = CHECK_OK(dconnect());
        int rs[200];
        uint64_t reg;
        char name[32];
        for (int i = 0; i < 200; i++) {
                snprintf(name, sizeof(name), "bp.%d", i);
                CHECK_OK(do_register(c, name, 0, 0, &reg, &rs[i]));
        }
        enum { N = 60 };
        uint32_t first = next_seq;
        for (int i = 0; i < N; i++) {
                ctl_builder b;
                ctl_begin(&b, CTL_LIST, next_seq++);
                CHECK_OK(ctl_end(&b));
                CHECK_OK(ctl_send(c, &b, NULL, 0));
        }
        usleep(100000);
        CHECK_OK(do_hello(other, NULL));
        rmsg *r = malloc(sizeof(*r));
        for (int i = 0; i < N; i++) {
                CHECK_OK(wait_reply(c, r, first + (uint32_t)i));
                size_t cur = 0;
                uint16_t t, len;
                const void *v;
                unsigned names = 0;
                while (ctl_attr_next(&r->m, &cur, &t, &v, &len))
                        names += t == CTL_A_NAME_ENTRY;
                CHECK_EQ(names, 200);
        }
        free(r);
        CHECK_OK(do_hello(c, NULL));
        for (int i = 0; i < 200; i++)
                close(rs[i]);
        close(c);
        close(other);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(sighup_reloads_config, 20) {
        test_daemon d;
        test_daemon_start(&d, "[limits]\nregistrations_per_user = 1\n", NULL);
        int c = CHECK_OK(dconnect()), rs[3];
        uint64_t reg;
        char conf[300];
        snprintf(conf, sizeof(conf), "%s/ipcfd.conf", d.dir);
        CHECK_OK(do_register(c, "h.1", 0, 0, &reg, &rs[0]));
        CHECK_ERR(do_register(c, "h.2", 0, 0, &reg, &rs[1]), -EDQUOT);

        /* A bad config is refused; the old one stays. */
        FILE *f = fopen(conf, "w");
        fputs("[limits]\nregistrations_per_user = many\n", f);
        fclose(f);
        kill(d.pid, SIGHUP);
        usleep(100000); /* a reload that would succeed shows here */
        sync_daemon(c);
        CHECK_ERR(do_register(c, "h.2", 0, 0, &reg, &rs[1]), -EDQUOT);

        f = fopen(conf, "w");
        fputs("[daemon]\nshared = yes\n[limits]\nregistrations_per_user = 3\n", f);
        fclose(f);
        kill(d.pid, SIGHUP);
        int r = -EDQUOT;
        for (int i = 0; i < 200 && r == -EDQUOT; i++) {
                r = do_register(c, "h.2", 0, 0, &reg, &rs[1]);
                if (r == -EDQUOT)
                        usleep(10000);
        }
        CHECK_OK(r);
        CHECK_OK(do_register(c, "h.3", 0, 0, &reg, &rs[2]));
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0666);
        for (int i = 0; i < 3; i++)
                close(rs[i]);
        close(c);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(random_requests_never_crash, 120) {
        test_daemon d;
        test_daemon_start(&d, "[name r.*]\nallocate = *\nregister = *\nactivate = exit 0\n", NULL);
        unsigned seed = 777;
        int c = -1, drops = 0, answers = 0;
        ctl_builder *b = malloc(sizeof(*b));
        rmsg *r = malloc(sizeof(*r));
        static const char *names[] = { "r.a", "r.b", "x", "", "has space", "r.*" };

        for (int it = 0; it < 4000; it++) {
                if (c < 0)
                        c = CHECK_OK(dconnect());
                uint16_t type = (uint16_t)(1 + rand_r(&seed) % (CTL_TYPE_MAX_ + 1));
                ctl_begin(b, type, (uint32_t)it);
                int n_attrs = rand_r(&seed) % 6;
                for (int k = 0; k < n_attrs; k++) {
                        uint16_t at = (uint16_t)(1 + rand_r(&seed) % (CTL_A_TYPE_MAX_ + 1));
                        uint8_t val[300];
                        size_t len;
                        switch (rand_r(&seed) % 5) {
                        case 0: len = 4; break;
                        case 1: len = 8; break;
                        case 2: len = sizeof(struct ctl_qos_wire); break;
                        case 3: { /* a string */
                                const char *s = names[rand_r(&seed) % ARRAY_SIZE(names)];
                                len = strlen(s) + 1;
                                memcpy(val, s, len);
                                goto put;
                        }
                        default: len = (size_t)(rand_r(&seed) % sizeof(val)); break;
                        }
                        for (size_t i = 0; i < len; i++)
                                val[i] = (uint8_t)rand_r(&seed);
                        /* Small ids often, so some refer to live objects. */
                        if (len == 8 && rand_r(&seed) % 2)
                                memset(val + 1, 0, 7);
                        if (at == CTL_A_TIMEOUT_MS && len == 4)
                                memcpy(val, "\x32\x00\x00\x00", 4);
                put:
                        ctl_put(b, at, val, len);
                }
                CHECK_OK(ctl_end(b));
                int sv[2] = { -1, -1 };
                unsigned nfds = 0;
                if (type == CTL_ALLOC ? rand_r(&seed) % 8 != 0 : rand_r(&seed) % 16 == 0) {
                        CHECK_OK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
                        nfds = 1;
                }
                int e = ctl_send(c, b, sv, nfds);
                safe_close(sv[1]);
                if (e < 0) { /* dropped already */
                        safe_close(sv[0]);
                        c = safe_close(c);
                        drops++;
                        continue;
                }
                int k = recv_msg(c, r, 5000);
                if (k == 1) {
                        answers++;
                        close_fds(r);
                } else {
                        CHECK(k == 0 || k == -ECONNRESET); /* dropped, never silent */
                        c = safe_close(c);
                        drops++;
                }
                safe_close(sv[0]);
        }
        printf("  %d answered, %d dropped\n", answers, drops);
        CHECK(answers > 100 && drops > 100);
        safe_close(c);
        c = CHECK_OK(dconnect());
        CHECK_OK(do_hello(c, NULL));
        close(c);
        free(b);
        free(r);
        test_daemon_stop(&d);
}

/* HELLO that tolerates a connection the daemon turned away: 0 or -errno. */
static int try_hello(int fd) {
        ctl_builder b;
        rmsg r;
        ctl_begin(&b, CTL_HELLO, next_seq++);
        CHECK_OK(ctl_end(&b));
        int e = ctl_send(fd, &b, NULL, 0);
        if (e < 0)
                return e;
        e = recv_msg(fd, &r, 5000);
        return e == 1 && r.m.type == CTL_OK ? 0 : e < 0 ? e : -ECONNRESET;
}

TEST_TIMEOUT(tiny_fd_limit, 60) {
        char dir[] = "/tmp/ipcf-test-fd.XXXXXX";
        CHECK(mkdtemp(dir));
        setenv("IPCF_RUNTIME_DIR", dir, 1);
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                struct rlimit rl = { 64, 64 };
                setrlimit(RLIMIT_NOFILE, &rl);
                char *bin = test_build_path("bin/ipcfd");
                execl(bin, bin, "--runtime-dir", dir, (char *)NULL);
                _exit(127);
        }
        int probe = -1;
        for (int i = 0; i < 500 && (probe = dconnect()) < 0; i++)
                usleep(10000);
        CHECK(probe >= 0);

        /* Far more of everything than 64 descriptors allow. */
        enum { N = 24 };
        int conn[N], rs[N], reply[N];
        uint64_t reg[N];
        flowinfo fa[N], fb[N];
        int n_conn = 0, n_reg = 0, n_flow = 0, refused = 0;
        for (int i = 0; i < N; i++) {
                conn[i] = dconnect();
                rs[i] = reply[i] = -1;
                fa[i].fds[0] = fb[i].fds[0] = -1;
                if (conn[i] < 0 || try_hello(conn[i]) < 0) {
                        /* Turned away: the daemon closed it. */
                        safe_close(conn[i]);
                        conn[i] = -1;
                        refused++;
                        continue;
                }
                n_conn++;
        }
        for (int i = 0; i < N; i++) {
                char name[16];
                if (conn[i] < 0)
                        continue;
                snprintf(name, sizeof(name), "fd.%d", i);
                if (do_register(conn[i], name, 0, 0, &reg[i], &rs[i]) < 0) {
                        rs[i] = -1;
                        continue;
                }
                n_reg++;
                int e = do_alloc(probe, name, NULL, 2000, NULL, &reply[i]);
                if (e < 0) {
                        CHECK(e == -EDQUOT || e == -EMFILE || e == -ENOMEM);
                        reply[i] = -1;
                        continue;
                }
                uint64_t req;
                wait_request(rs[i], &req, NULL, NULL);
                e = do_accept(conn[i], reg[i], req, &fb[i]);
                if (e < 0) {
                        CHECK(e == -EDQUOT || e == -EMFILE);
                        fb[i].fds[0] = -1;
                        continue;
                }
                CHECK_OK(wait_outcome(reply[i], &fa[i], NULL, NULL, 5000));
                send_ok(reply[i]);
                n_flow++;
        }
        printf("  %d connections (%d turned away), %d registrations, %d flows\n", n_conn, refused,
               n_reg, n_flow);
        CHECK(refused > 0 && n_flow > 0 && n_flow < N);
        CHECK_OK(do_hello(probe, NULL));
        /* Release everything; the daemon is whole again. */
        for (int i = 0; i < N; i++) {
                if (fa[i].fds[0] >= 0)
                        flow_close(&fa[i]);
                if (fb[i].fds[0] >= 0)
                        flow_close(&fb[i]);
                safe_close(reply[i]);
                safe_close(rs[i]);
                safe_close(conn[i]);
        }
        close(probe);
        probe = -1;
        for (int i = 0; i < 500 && probe < 0; i++) {
                probe = dconnect();
                if (probe >= 0 && try_hello(probe) < 0)
                        probe = safe_close(probe);
                if (probe < 0)
                        usleep(10000);
        }
        CHECK(probe >= 0);
        listing l;
        for (int i = 0; i < 200; i++) {
                do_list(probe, &l);
                if (l.n_flows == 0 && l.n_names == 0)
                        break;
                usleep(10000);
        }
        CHECK_EQ(l.n_flows, 0);
        CHECK_EQ(l.n_names, 0);
        close(probe);
        kill(p, SIGTERM);
        CHECK_EQ(test_wait(p, 5000), 0);
        char path[300];
        snprintf(path, sizeof(path), "%s/ipcfd.lock", dir);
        unlink(path);
        CHECK_OK(rmdir(dir));
}
