/*
 * test-daemon-names.c — names through the raw control protocol (common/ctl.c,
 * not the library): registrations (exclusivity, load spreading, EBUSY,
 * "unregistered"), re-dispatch when a registrant dies ("target died"), the
 * access policy as uid 65534 (default deny, `*`, gid and supplementary
 * groups, LIST visibility), and activation (started once for concurrent
 * allocations, ENOEXEC, ETIMEDOUT, the per-name bound). Every case starts the
 * real daemon on a private runtime dir.
 *
 * The same binary doubles as an activated service: started as
 *   test-daemon-names --act-child NAME N
 * (detected by a constructor, before the harness's main) it registers NAME,
 * accepts N requests and lingers until the daemon goes away.
 * Split from test-daemon-proto.c by module (issue 9); the shared helpers are
 * tests/support/rawctl.c.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
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

#include "common/ctl.h"
#include "common/flowmem.h"
#include "common/ring.h"
#include "common/util.h"
#include "common/wake.h"
#include "support/rawctl.h"
#include "support/test.h"

__attribute__((constructor)) static void act_child_main(int argc, char **argv, char **envp) {
        (void)envp;
        if (argc < 4 || strcmp(argv[1], "--act-child") != 0)
                return;
        int n = atoi(argv[3]), fd = dconnect(), rs;
        uint64_t reg, req;
        flowinfo f;
        const char *nas = getenv("IPCF_NO_AUTOSTART"), *an = getenv("IPCF_ACTIVATED_NAME");
        /* The daemon's environment for activated programs. */
        if (!nas || strcmp(nas, "1") != 0 || !an || strcmp(an, argv[2]) != 0 ||
            !getenv("IPCF_RUNTIME_DIR") || isatty(0))
                _exit(5);
        if (fd < 0)
                _exit(3);
        if (do_register(fd, argv[2], 0, 0, &reg, &rs) < 0)
                _exit(4);
        for (int i = 0; i < n; i++) {
                wait_request(rs, &req, NULL, NULL);
                if (do_accept(fd, reg, req, &f) == 0)
                        flow_close(&f);
        }
        /* Linger until the daemon goes (or 10 s). */
        readable(fd, 10000);
        _exit(0);
}

TEST_TIMEOUT(exclusive_and_spreading, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c1 = CHECK_OK(dconnect()), c2 = CHECK_OK(dconnect()), ca = CHECK_OK(dconnect());
        uint64_t r1, r2, r3, aid, req;
        int s1, s2, s3, reply;
        CHECK_OK(do_register(c1, "solo", IPCF_REG_EXCLUSIVE, 0, &r1, &s1));
        CHECK_ERR(do_register(c2, "solo", 0, 0, &r2, &s2), -EADDRINUSE);
        CHECK_ERR(do_register(c2, "solo", IPCF_REG_EXCLUSIVE, 0, &r2, &s2), -EADDRINUSE);
        CHECK_OK(do_simple(c1, CTL_UNREGISTER, CTL_A_REG_ID, r1, 0, 0, NULL));
        close(s1);
        CHECK_OK(do_register(c2, "solo", IPCF_REG_EXCLUSIVE, 0, &r2, &s2));
        close(s2);

        /* Two shared registrations with backlog 1: requests alternate, the
         * third finds both full. */
        CHECK_OK(do_register(c1, "pool", 0, 1, &r1, &s1));
        CHECK_OK(do_register(c2, "pool", 0, 1, &r3, &s3));
        int rp[3];
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[0]));
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[1]));
        CHECK(readable(s1, 1000));
        CHECK(readable(s3, 1000));
        CHECK_OK(do_alloc(ca, "pool", NULL, 5000, &aid, &rp[2]));
        CHECK_ERR(wait_outcome(rp[2], NULL, NULL, NULL, 5000), -EBUSY);

        /* Unregistering c1's hands its request to... nobody with room:
         * refused "unregistered". */
        wait_request(s1, &req, NULL, NULL);
        CHECK_OK(do_simple(c1, CTL_UNREGISTER, CTL_A_REG_ID, r1, 0, 0, NULL));
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_ERR(wait_outcome(rp[0], NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "unregistered") == 0);
        CHECK_EQ(end, IPCF_END_REFUSED);
        (void)reply;
        for (int i = 0; i < 3; i++)
                close(rp[i]);
        close(s1);
        close(s3);
        close(c1);
        close(c2);
        close(ca);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(redispatch_on_death, 20) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int c1 = CHECK_OK(dconnect()), c2 = CHECK_OK(dconnect()), ca = CHECK_OK(dconnect());
        uint64_t r1, r2, aid, req;
        int s1, s2, reply;
        flowinfo a, b;
        CHECK_OK(do_register(c1, "ha", 0, 0, &r1, &s1));
        CHECK_OK(do_alloc(ca, "ha", NULL, 5000, &aid, &reply));
        wait_request(s1, &req, NULL, NULL);
        CHECK_OK(do_register(c2, "ha", 0, 0, &r2, &s2));
        /* c1 dies with the request pending: it moves to c2. */
        close(c1);
        uint64_t req2;
        wait_request(s2, &req2, NULL, NULL);
        CHECK_EQ(req2, req);
        CHECK_OK(do_accept(c2, r2, req2, &b));
        CHECK_OK(wait_outcome(reply, &a, NULL, NULL, 5000));
        send_ok(reply);
        close(reply);
        /* With no one left, a pending requester learns the target died. */
        CHECK_OK(do_alloc(ca, "ha", NULL, 5000, &aid, &reply));
        wait_request(s2, &req, NULL, NULL);
        close(c2);
        char reason[IPCF_REASON_MAX + 1];
        uint32_t end;
        CHECK_ERR(wait_outcome(reply, NULL, reason, &end, 5000), -ECONNREFUSED);
        CHECK(strcmp(reason, "target died") == 0);
        CHECK_EQ(end, IPCF_END_PEER_DIED);
        flow_close(&a);
        flow_close(&b);
        close(reply);
        close(s1);
        close(s2);
        close(ca);
        test_daemon_stop(&d);
}

static void nobody_child(void *arg) {
        (void)arg;
        as_nobody();
        int fd = CHECK_OK(dconnect()), rs, reply;
        uint64_t reg;
        /* Default policy: only root and the daemon's uid. */
        CHECK_ERR(do_register(fd, "secret", 0, 0, &reg, &rs), -EACCES);
        CHECK_ERR(do_alloc(fd, "secret", NULL, 1000, NULL, &reply), -EACCES);
        /* A rule opening pub* to anyone. */
        CHECK_OK(do_register(fd, "pub.nobody", 0, 0, &reg, &rs));
        CHECK_OK(do_alloc(fd, "pub.none", NULL, 1000, NULL, &reply));
        CHECK_ERR(wait_outcome(reply, NULL, NULL, NULL, 5000), -ENOENT);
        close(reply);
        /* gid rules: group 65534 may allocate grp.*, register it not. */
        CHECK_ERR(do_register(fd, "grp.x", 0, 0, &reg, &rs), -EACCES);
        CHECK_OK(do_alloc(fd, "grp.x", NULL, 1000, NULL, &reply));
        close(reply);
        /* Supplementary groups count (SO_PEERGROUPS). */
        CHECK_OK(do_alloc(fd, "sup.x", NULL, 1000, NULL, &reply));
        close(reply);
        /* uid rules: only uid 4242 may allocate uid.x. */
        CHECK_ERR(do_alloc(fd, "uid.x", NULL, 1000, NULL, &reply), -EACCES);
        /* LIST shows nobody only its own registration. */
        listing l;
        do_list(fd, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "pub.nobody") == 0);
        close(fd);
}

TEST_TIMEOUT(policy_nobody, 20) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d,
                          "[name pub*]\n"
                          "allocate = *\n"
                          "register = *\n"
                          "[name grp.*]   # by group\n"
                          "allocate = gid:65534 group:root\n"
                          "[name uid.*]\n"
                          "allocate = uid:4242\n"
                          "[name sup.*]\n"
                          "allocate = gid:4321\n",
                          shared);
        struct stat st;
        char path[300];
        snprintf(path, sizeof(path), "%s/%s", d.dir, CTL_SOCKET_NAME);
        CHECK_OK(stat(path, &st));
        CHECK_EQ(st.st_mode & 0777, 0666);
        int c = CHECK_OK(dconnect()), rs;
        uint64_t reg;
        CHECK_OK(do_register(c, "secret.root", 0, 0, &reg, &rs));
        pid_t p = test_fork(nobody_child, NULL);
        CHECK_EQ(test_wait(p, 10000), 0);
        /* Root sees everything, nobody's registration included (it is gone
         * with its connection by now, so just ours). */
        listing l;
        do_list(c, &l);
        CHECK(l.n_names >= 1);
        close(rs);
        close(c);
        test_daemon_stop(&d);
}

static char *self_exe(void) {
        static char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        CHECK(n > 0);
        buf[n] = 0;
        return buf;
}

TEST_TIMEOUT(activation, 30) {
        test_daemon d;
        char conf[PATH_MAX * 2];
        snprintf(conf, sizeof(conf),
                 "[name act.svc]\n"
                 "activate = '%s' --act-child act.svc 2\n"
                 "[name act.false]\n"
                 "activate = exit 3\n"
                 "[name act.slow]\n"
                 "activate = sleep 3\n"
                 "activate_timeout_ms = 300\n"
                 "[name act.stubborn]\n"
                 /* long enough to outlive the 8 starts below on a loaded
                  * machine: one that exits frees its slot; and given time to
                  * set its trap before the daemon's SIGTERM comes (with 50 ms
                  * a loaded machine let the shell die of it: a 9th start
                  * then timed out instead of -EBUSY) */
                 "activate = trap '' TERM; sleep 30\n"
                 "activate_timeout_ms = 1000\n",
                 self_exe());
        test_daemon_start(&d, conf, NULL);
        int ca = CHECK_OK(dconnect()), r1, r2;
        flowinfo f1, f2;
        /* Two allocations while the program starts: it is started once and
         * gets both. */
        CHECK_OK(do_alloc(ca, "act.svc", NULL, 5000, NULL, &r1));
        CHECK_OK(do_alloc(ca, "act.svc", NULL, 5000, NULL, &r2));
        CHECK_OK(wait_outcome(r1, &f1, NULL, NULL, 5000));
        CHECK_OK(wait_outcome(r2, &f2, NULL, NULL, 5000));
        send_ok(r1);
        send_ok(r2);
        CHECK_EQ(f1.peer.pid, f2.peer.pid);
        listing l;
        do_list(ca, &l);
        CHECK_EQ(l.n_names, 1);
        CHECK(strcmp(l.names[0].name, "act.svc") == 0);
        CHECK_EQ(l.names[0].pid, f1.peer.pid);
        flow_close(&f1);
        flow_close(&f2);
        close(r1);
        close(r2);

        /* A program that exits without registering. */
        CHECK_OK(do_alloc(ca, "act.false", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ENOEXEC);
        close(r1);
        /* One that never registers: activate_timeout_ms. */
        uint64_t t0 = test_now_ms();
        CHECK_OK(do_alloc(ca, "act.slow", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        CHECK(test_now_ms() - t0 < 3000);
        close(r1);
        /* The allocation's own timeout is shorter than the activation's. */
        CHECK_OK(do_alloc(ca, "act.slow", NULL, 100, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
        close(r1);
        /* Failed starts that survive SIGTERM do not pile up: 8 per name. */
        for (int i = 0; i < 8; i++) {
                CHECK_OK(do_alloc(ca, "act.stubborn", NULL, 5000, NULL, &r1));
                CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -ETIMEDOUT);
                close(r1);
        }
        CHECK_OK(do_alloc(ca, "act.stubborn", NULL, 5000, NULL, &r1));
        CHECK_ERR(wait_outcome(r1, NULL, NULL, NULL, 5000), -EBUSY);
        close(r1);
        close(ca);
        test_daemon_stop(&d);
}
