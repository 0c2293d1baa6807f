/*
 * test-daemon-lib.c — the daemon with the real library on top: the public
 * API (ipcf.h) end to end against ipcfd, for the paths the daemon decides:
 * a flow's whole life, refusal with reason, peer death seen as -ECONNRESET,
 * ENOENT, policy, and the listing. The raw-protocol tests are in
 * test-daemon-core.c, -flows.c, -names.c; this file checks the two sides agree.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <grp.h>

#include "ipcf.h"
#include "support/test.h"

TEST_TIMEOUT(lib_flow_life, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        /* ipcf_alloc blocks until accepted: a child registers and accepts
         * (a registration belongs to the connection that made it). */
        int pipefd[2];
        CHECK_OK(pipe(pipefd));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                ipcf_request rq;
                int reg = ipcf_register("lib.echo", NULL);
                if (reg < 0 || write(pipefd[1], "r", 1) != 1)
                        _exit(1);
                int port = ipcf_accept(reg, 5000, &rq);
                if (port < 0 || strcmp(rq.name, "lib.echo") != 0)
                        _exit(2);
                char buf[64];
                ssize_t n = ipcf_read(port, buf, sizeof(buf), 5000);
                if (n != 5 || memcmp(buf, "hello", 5) != 0)
                        _exit(3);
                if (ipcf_write(port, "world", 5, 5000) != 5)
                        _exit(4);
                ipcf_dealloc(port, "all done");
                _exit(0);
        }
        char ch;
        CHECK(read(pipefd[0], &ch, 1) == 1);
        ipcf_reason why;
        int port = CHECK_OK(ipcf_alloc("lib.echo", NULL, 5000, &why));
        ipcf_peer_info peer;
        CHECK_OK(ipcf_peer(port, &peer));
        CHECK(strcmp(peer.name, "lib.echo") == 0);
        CHECK_EQ(ipcf_write(port, "hello", 5, 5000), 5);
        char buf[64];
        CHECK_EQ(ipcf_read(port, buf, sizeof(buf), 5000), 5);
        CHECK_MEM(buf, "world", 5);
        CHECK_EQ(test_wait(p, 5000), 0);
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -EPIPE);
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_DEALLOC);
        CHECK(strcmp(why.text, "all done") == 0);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}

TEST_TIMEOUT(lib_refuse_and_enoent, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int pipefd[2];
        CHECK_OK(pipe(pipefd));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                ipcf_request rq;
                int reg = ipcf_register("lib.no", NULL);
                if (reg < 0 || write(pipefd[1], "r", 1) != 1)
                        _exit(1);
                if (ipcf_request_next(reg, 5000, &rq) < 0)
                        _exit(2);
                _exit(ipcf_request_refuse(reg, &rq, "go away") == 0 ? 0 : 3);
        }
        char ch;
        CHECK(read(pipefd[0], &ch, 1) == 1);
        ipcf_reason why;
        memset(&why, 0, sizeof(why));
        CHECK_ERR(ipcf_alloc("lib.no", NULL, 5000, &why), -ECONNREFUSED);
        CHECK_EQ(why.code, IPCF_END_REFUSED);
        CHECK(strcmp(why.text, "go away") == 0);
        CHECK_EQ(test_wait(p, 5000), 0);
        CHECK_ERR(ipcf_alloc("lib.nobody", NULL, 5000, NULL), -ENOENT);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(lib_peer_death, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int pipefd[2];
        CHECK_OK(pipe(pipefd));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                int reg = ipcf_register("lib.mortal", NULL);
                if (reg < 0)
                        _exit(2);
                if (write(pipefd[1], "r", 1) != 1)
                        _exit(3);
                int port = ipcf_accept(reg, 5000, NULL);
                if (port < 0)
                        _exit(4);
                for (;;)
                        pause();
        }
        char ch;
        CHECK(read(pipefd[0], &ch, 1) == 1);
        int port = CHECK_OK(ipcf_alloc("lib.mortal", NULL, 5000, NULL));
        uint64_t t0 = test_now_ns();
        kill(p, SIGKILL);
        char buf[16];
        CHECK_ERR(ipcf_read(port, buf, sizeof(buf), 5000), -ECONNRESET);
        uint64_t us = (test_now_ns() - t0) / 1000;
        printf("  read saw the death after %llu us\n", (unsigned long long)us);
        CHECK(us < 100000);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(port, &why));
        CHECK_EQ(why.code, IPCF_END_PEER_DIED);
        CHECK_ERR(ipcf_write(port, "x", 1, 1000), -ECONNRESET);
        test_wait(p, 1000);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}

TEST_TIMEOUT(lib_listing, 30) {
        test_daemon d;
        test_daemon_start(&d, NULL, NULL);
        int reg = CHECK_OK(ipcf_register("lib.listed", NULL));
        ipcf_listing *l = NULL;
        CHECK_OK(ipcf_list(&l));
        CHECK_EQ(l->daemon_pid, d.pid);
        CHECK_EQ(l->n_names, 1);
        CHECK(strcmp(l->names[0].name, "lib.listed") == 0);
        CHECK_EQ(l->names[0].pid, getpid());
        CHECK_EQ(l->n_flows, 0);
        ipcf_free(l);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        CHECK_OK(ipcf_list(&l));
        CHECK_EQ(l->n_names, 0);
        ipcf_free(l);
        test_daemon_stop(&d);
}

TEST_TIMEOUT(lib_policy, 30) {
        if (geteuid() != 0) {
                printf("  skipped: needs root to setuid(65534)\n");
                return;
        }
        test_daemon d;
        const char *shared[] = { "--shared", NULL };
        test_daemon_start(&d, "[name open.*]\nallocate = *\nregister = *\n", shared);
        int mine = CHECK_OK(ipcf_register("closed.svc", NULL));
        pid_t p = fork();
        CHECK(p >= 0);
        if (p == 0) {
                if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
                        _exit(1);
                if (ipcf_register("closed.x", NULL) != -EACCES)
                        _exit(2);
                if (ipcf_alloc("closed.svc", NULL, 1000, NULL) != -EACCES)
                        _exit(3);
                int reg = ipcf_register("open.x", NULL);
                if (reg < 0)
                        _exit(4);
                ipcf_listing *l = NULL;
                /* Only its own registration is visible to it. */
                if (ipcf_list(&l) < 0 || l->n_names != 1 || strcmp(l->names[0].name, "open.x") != 0)
                        _exit(5);
                ipcf_free(l);
                _exit(0);
        }
        CHECK_EQ(test_wait(p, 10000), 0);
        CHECK_OK(ipcf_dealloc(mine, NULL));
        test_daemon_stop(&d);
}
