/*
 * test-pipe.c — ordinary pipes: full duplex in one process, handed to a child
 * by fork() and by exec(), orderly end and death of the other side, and no
 * daemon needed.
 */
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ipcf.h"
#include "support/flowpair.h"
#include "support/test.h"

static void no_daemon(void) {
        setenv("IPCF_RUNTIME_DIR", "/nonexistent/ipcf-no-daemon", 1);
        setenv("IPCF_NO_AUTOSTART", "1", 1);
}

TEST(pipe_full_duplex_without_a_daemon) {
        no_daemon();
        int p[2];
        CHECK_OK(ipcf_pipe(NULL, p));
        char buf[16];
        CHECK_EQ(ipcf_write(p[0], "ping", 4, 0), 4);
        CHECK_EQ(ipcf_write(p[1], "pong", 4, 0), 4);
        CHECK_EQ(ipcf_read(p[1], buf, sizeof(buf), 0), 4);
        CHECK_MEM(buf, "ping", 4);
        CHECK_EQ(ipcf_read(p[0], buf, sizeof(buf), 0), 4);
        CHECK_MEM(buf, "pong", 4);
        ipcf_peer_info peer;
        CHECK_OK(ipcf_peer(p[0], &peer));
        CHECK_EQ(peer.uid, getuid());
        CHECK_OK(ipcf_dealloc(p[0], "closed"));
        CHECK_ERR(ipcf_read(p[1], buf, sizeof(buf), 0), -EPIPE);
        ipcf_qos q;
        ipcf_qos_init(&q);
        q.mode = 9;
        CHECK_ERR(ipcf_pipe(&q, p), -EINVAL);
}

static int pipe_ends[2];

static void child_uses_end1(void *arg) {
        (void)arg;
        CHECK_OK(ipcf_detach(pipe_ends[0]));
        char buf[16];
        CHECK_EQ(ipcf_read(pipe_ends[1], buf, sizeof(buf), 5000), 5);
        CHECK_EQ(ipcf_write(pipe_ends[1], "reply", 5, 5000), 5);
        CHECK_OK(ipcf_dealloc(pipe_ends[1], "child done"));
}

TEST(pipe_across_fork_then_orderly_end) {
        no_daemon();
        CHECK_OK(ipcf_pipe(NULL, pipe_ends));
        pid_t c = test_fork(child_uses_end1, NULL);
        CHECK_OK(ipcf_detach(pipe_ends[1]));
        char buf[16];
        CHECK_EQ(ipcf_write(pipe_ends[0], "hello", 5, 5000), 5);
        CHECK_EQ(ipcf_read(pipe_ends[0], buf, sizeof(buf), 5000), 5);
        CHECK_MEM(buf, "reply", 5);
        CHECK_ERR(ipcf_read(pipe_ends[0], buf, sizeof(buf), 5000), -EPIPE);
        ipcf_reason why;
        CHECK_OK(ipcf_end_reason(pipe_ends[0], &why));
        CHECK(strcmp(why.text, "child done") == 0);
        CHECK_EQ(test_wait(c, 5000), 0);
}

static void child_dies(void *arg) {
        (void)arg;
        CHECK_OK(ipcf_detach(pipe_ends[0]));
        CHECK_EQ(ipcf_write(pipe_ends[1], "last", 4, 5000), 4);
        raise(SIGKILL);
}

TEST(pipe_peer_death_is_seen) {
        no_daemon();
        CHECK_OK(ipcf_pipe(NULL, pipe_ends));
        pid_t c = test_fork(child_dies, NULL);
        CHECK_OK(ipcf_detach(pipe_ends[1]));
        char buf[16];
        CHECK_EQ(ipcf_read(pipe_ends[0], buf, sizeof(buf), 5000), 4);
        uint64_t t0 = test_now_ms();
        CHECK_ERR(ipcf_read(pipe_ends[0], buf, sizeof(buf), -1), -ECONNRESET);
        CHECK(test_now_ms() - t0 < 1000);
        test_wait(c, 1000);
}

TEST(pipe_across_exec) {
        no_daemon();
        CHECK_OK(ipcf_pipe(NULL, pipe_ends));
        int fd = CHECK_OK(ipcf_port_export(pipe_ends[1]));
        char *prog = test_build_path("examples/pipe-echo");
        pid_t c = fork();
        if (c == 0) {
                char num[16];
                snprintf(num, sizeof(num), "%d", fd);
                setenv("IPCF_PORT_FD", num, 1);
                execl(prog, prog, (char *)NULL);
                _exit(127);
        }
        close(fd);
        CHECK_OK(ipcf_detach(pipe_ends[1]));
        for (int i = 0; i < 100; i++) {
                int v = -1;
                CHECK_EQ(ipcf_write(pipe_ends[0], &i, sizeof(i), 5000), sizeof(i));
                CHECK_EQ(ipcf_read(pipe_ends[0], &v, sizeof(v), 5000), sizeof(v));
                CHECK_EQ(v, i);
        }
        CHECK_OK(ipcf_dealloc(pipe_ends[0], "enough"));
        CHECK_EQ(test_wait(c, 5000), 0);
        free(prog);
}

TEST(export_and_import_errors) {
        no_daemon();
        int a, b;
        CHECK_OK(flowpair_make(NULL, 0, 0, &a, &b));
        CHECK_ERR(ipcf_port_export(a), -EOPNOTSUPP); /* not a pipe end */
        CHECK_ERR(ipcf_port_export(12345), -EBADF);
        int sp[2];
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp) == 0);
        CHECK(write(sp[1], "garbage", 7) == 7);
        CHECK_ERR(ipcf_port_import(sp[0]), -EPROTO);
        close(sp[1]);
        int pfd[2];
        CHECK(pipe(pfd) == 0);
        CHECK_ERR(ipcf_port_import(pfd[0]), -EBADF); /* not a socket */
        close(pfd[1]);
}
