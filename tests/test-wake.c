/*
 * test-wake.c — the wake-up channel (src/common/wake.h) against a hostile
 * holder of its bell: a forked process that clears O_NONBLOCK on the shared
 * description, shrinks the socket buffers, floods the ear, sends descriptors
 * along and shuts the channel down. Whatever it does, ringing and draining
 * return at once (each case's alarm would catch a block), a drain's work is
 * bounded, and a shutdown reads as the peer gone (-EPIPE) without SIGPIPE.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/wake.h"
#include "support/test.h"

/* Open descriptors of this process. */
static int fd_count(void) {
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        CHECK(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

/* Run fn(bell) in a child (the hostile holder) and wait for it to finish. */
static void as_hostile(void (*fn)(void *), int bell) {
        pid_t pid = test_fork(fn, (void *)(intptr_t)bell);
        CHECK_EQ(test_wait(pid, 10000), 0);
}

TEST(ring_then_drain_level) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        CHECK(!wake_pending(ear));
        CHECK_EQ(wake_drain(ear), 0);
        CHECK_EQ(wake_ring(bell), 0);
        CHECK(wake_pending(ear));
        CHECK(wake_pending(ear)); /* level: polling does not consume */
        CHECK_EQ(wake_drain(ear), 1);
        CHECK(!wake_pending(ear));
        /* Many rings, one drain. */
        for (int i = 0; i < 40; i++)
                CHECK_EQ(wake_ring(bell), 0);
        CHECK_EQ(wake_drain(ear), 1);
        CHECK(!wake_pending(ear));
        CHECK_EQ(fcntl(ear, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        CHECK_EQ(fcntl(bell, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
        close(ear);
        close(bell);
}

/* Clear O_NONBLOCK on the shared description, shrink both buffers, then
 * fill the ear's queue until the kernel refuses more. */
static void clog_bell(void *arg) {
        int bell = (int)(intptr_t)arg;
        int small = 1;
        CHECK_OK(fcntl(bell, F_SETFL, 0));
        CHECK_OK(setsockopt(bell, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)));
        CHECK_OK(setsockopt(bell, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)));
        char junk[4096];
        memset(junk, 0xEE, sizeof(junk));
        while (send(bell, junk, sizeof(junk), MSG_DONTWAIT) > 0)
                ;
}

TEST_TIMEOUT(a_clogged_bell_never_blocks_the_ringer_or_the_drainer, 20) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        as_hostile(clog_bell, bell);
        CHECK_EQ(fcntl(bell, F_GETFL) & O_NONBLOCK, 0); /* the hostile's change is ours too */
        /* Ringing a full queue returns at once: the ear is readable anyway. */
        uint64_t t0 = test_now_ms();
        for (int i = 0; i < 1000; i++)
                CHECK_EQ(wake_ring(bell), 0);
        CHECK(wake_pending(ear));
        /* Draining is bounded per call: a flood takes several. */
        int calls = 0;
        while (wake_pending(ear)) {
                CHECK_EQ(wake_drain(ear), 1);
                CHECK(++calls < 100000);
        }
        CHECK(calls > 1);
        CHECK_EQ(wake_drain(ear), 0);
        /* And ringing works again. */
        CHECK_EQ(wake_ring(bell), 0);
        CHECK_EQ(wake_drain(ear), 1);
        CHECK(test_now_ms() - t0 < 15000);
        close(ear);
        close(bell);
}

/* Also clear O_NONBLOCK on the ear (the owner's own description): a drain
 * of an empty ear still returns at once. */
TEST_TIMEOUT(a_drain_never_blocks_whatever_the_flags, 10) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        CHECK_OK(fcntl(ear, F_SETFL, 0));
        CHECK_EQ(wake_drain(ear), 0);
        CHECK_EQ(wake_ring(bell), 0);
        CHECK_EQ(wake_drain(ear), 1);
        CHECK_EQ(wake_drain(ear), 0);
        close(ear);
        close(bell);
}

static void hang_up(void *arg) {
        CHECK_OK(shutdown((int)(intptr_t)arg, SHUT_RDWR));
}

TEST_TIMEOUT(a_shutdown_reads_as_the_peer_gone_without_sigpipe, 10) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        CHECK_EQ(wake_ring(bell), 0);
        as_hostile(hang_up, bell);
        /* SIGPIPE's default action would end this case: the ring must not
         * raise it. */
        CHECK_ERR(wake_ring(bell), -EPIPE);
        CHECK(wake_pending(ear));
        /* The ring queued before the shutdown first, then the hang-up, for
         * good (level). */
        int r = wake_drain(ear);
        CHECK(r == 1 || r == -EPIPE);
        CHECK_ERR(wake_drain(ear), -EPIPE);
        CHECK_ERR(wake_drain(ear), -EPIPE);
        CHECK(wake_pending(ear));
        close(ear);
        close(bell);
}

TEST_TIMEOUT(ringing_a_closed_ear_is_epipe_not_sigpipe, 10) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        close(ear);
        CHECK_ERR(wake_ring(bell), -EPIPE);
        CHECK_ERR(wake_ring(bell), -EPIPE);
        close(bell);
        CHECK_ERR(wake_ring(bell), -EBADF);
        CHECK_ERR(wake_drain(bell), -EBADF);
}

TEST(every_bell_closed_hangs_up) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        close(bell);
        CHECK_ERR(wake_drain(ear), -EPIPE);
        close(ear);
}

/* Send descriptors along with the rings: a drain must not take them in. */
static void send_fds(void *arg) {
        int bell = (int)(intptr_t)arg;
        int fds[8];
        for (int i = 0; i < 8; i++)
                fds[i] = open("/dev/null", O_RDONLY);
        for (int k = 0; k < 20; k++) {
                char c = 'x';
                struct iovec iov = { &c, 1 };
                union {
                        struct cmsghdr h;
                        char buf[CMSG_SPACE(sizeof(fds))];
                } u;
                struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                                    .msg_controllen = sizeof(u.buf) };
                struct cmsghdr *c0 = CMSG_FIRSTHDR(&m);
                c0->cmsg_level = SOL_SOCKET;
                c0->cmsg_type = SCM_RIGHTS;
                c0->cmsg_len = CMSG_LEN(sizeof(fds));
                memcpy(CMSG_DATA(c0), fds, sizeof(fds));
                CHECK_EQ(sendmsg(bell, &m, MSG_DONTWAIT), 1);
        }
}

TEST_TIMEOUT(descriptors_sent_along_are_discarded, 10) {
        int ear, bell;
        CHECK_OK(wake_new(&ear, &bell));
        int before = fd_count();
        as_hostile(send_fds, bell);
        int calls = 0;
        while (wake_pending(ear)) {
                CHECK_EQ(wake_drain(ear), 1);
                CHECK(++calls <= 40);
        }
        CHECK_EQ(fd_count(), before);
        close(ear);
        close(bell);
}
