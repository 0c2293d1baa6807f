/*
 * test-notify.c — notifications against the real daemon: watched names
 * (up, down, already up, mailboxes), flow ends with their reason, peer death,
 * timeouts, bounds and bad arguments, the descriptor's readiness.
 */
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ctl.h"
#include "ipcf.h"
#include "support/test.h"

static test_daemon d;

/* The next event, within 5 s. */
static ipcf_event next_event(void) {
        ipcf_event ev;
        CHECK_OK(ipcf_notify_next(5000, &ev));
        return ev;
}

static void register_then_exit(void *arg) {
        int reg = CHECK_OK(ipcf_register((const char *)arg, NULL));
        usleep(300 * 1000);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        usleep(100 * 1000);
}

TEST(watch_name_until_it_registers) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_watch("svc.later"));
        ipcf_event ev;
        CHECK_ERR(ipcf_notify_next(0, &ev), -EAGAIN);
        CHECK_ERR(ipcf_notify_next(50, &ev), -ETIMEDOUT);
        pid_t c = test_fork(register_then_exit, "svc.later");
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK(strcmp(ev.name, "svc.later") == 0);
        CHECK_EQ(ev.pid, c);
        CHECK_EQ(ev.lost, 0);
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_DOWN);
        CHECK(strcmp(ev.name, "svc.later") == 0);
        CHECK_EQ(test_wait(c, 5000), 0);
        /* Unwatched: nothing more. */
        CHECK_OK(ipcf_unwatch("svc.later"));
        CHECK_ERR(ipcf_unwatch("svc.later"), -ENOENT);
        c = test_fork(register_then_exit, "svc.later");
        CHECK_ERR(ipcf_notify_next(600, &ev), -ETIMEDOUT);
        CHECK_EQ(test_wait(c, 5000), 0);
        test_daemon_stop(&d);
}

TEST(watch_a_name_already_up_and_two_registrations) {
        test_daemon_start(&d, NULL, NULL);
        int r1 = CHECK_OK(ipcf_register("svc.now", NULL));
        int r2 = CHECK_OK(ipcf_register("svc.now", NULL));
        CHECK_OK(ipcf_watch("svc.now"));
        CHECK_OK(ipcf_watch("svc.now")); /* twice is once */
        ipcf_event ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK_EQ(ev.pid, getpid());
        /* One of two registrations going: still up, no event. */
        CHECK_OK(ipcf_dealloc(r1, NULL));
        CHECK_ERR(ipcf_notify_next(200, &ev), -ETIMEDOUT);
        CHECK_OK(ipcf_dealloc(r2, NULL));
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_DOWN);
        /* Mailboxes are names too. */
        CHECK_OK(ipcf_watch("box.w"));
        CHECK_OK(ipcf_mbox_create("box.w", NULL));
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK(strcmp(ev.name, "box.w") == 0);
        CHECK_OK(ipcf_mbox_destroy("box.w"));
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_DOWN);
        test_daemon_stop(&d);
}

TEST(notify_fd_is_readable_exactly_when_an_event_waits) {
        test_daemon_start(&d, NULL, NULL);
        int fd = CHECK_OK(ipcf_notify_fd());
        CHECK_EQ(ipcf_notify_fd(), fd);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 0), 0);
        int reg = CHECK_OK(ipcf_register("svc.fd", NULL));
        CHECK_OK(ipcf_watch("svc.fd"));
        CHECK_EQ(poll(&p, 1, 2000), 1);
        ipcf_event ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        CHECK_EQ(poll(&p, 1, 0), 0);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

static void accept_and_dealloc(void *arg) {
        (void)arg;
        int reg = CHECK_OK(ipcf_register("svc.end", NULL));
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        char b[8];
        CHECK_EQ(ipcf_read(port, b, sizeof(b), 5000), 2);
        CHECK_OK(ipcf_dealloc(port, "work done"));
}

static void accept_and_die(void *arg) {
        (void)arg;
        int reg = CHECK_OK(ipcf_register("svc.die", NULL));
        int port = CHECK_OK(ipcf_accept(reg, 5000, NULL));
        char b[8];
        CHECK_EQ(ipcf_read(port, b, sizeof(b), 5000), 2);
        raise(SIGKILL);
}

static int alloc_retry(const char *name) {
        for (int i = 0; i < 200; i++) {
                int p = ipcf_alloc(name, NULL, 2000, NULL);
                if (p != -ENOENT)
                        return p;
                usleep(10000);
        }
        return -ENOENT;
}

TEST(flow_ended_with_reason_and_peer_died) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_notify_fd());
        pid_t c = test_fork(accept_and_dealloc, NULL);
        int port = CHECK_OK(alloc_retry("svc.end"));
        CHECK_EQ(ipcf_write(port, "hi", 2, 1000), 2);
        ipcf_event ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_FLOW_ENDED);
        CHECK_EQ(ev.port, port);
        CHECK_EQ(ev.pid, c);
        CHECK_EQ(ev.end_code, IPCF_END_DEALLOC);
        CHECK(strcmp(ev.reason, "work done") == 0);
        CHECK(strcmp(ev.name, "svc.end") == 0);
        CHECK_EQ(test_wait(c, 5000), 0);
        CHECK_OK(ipcf_dealloc(port, NULL));

        c = test_fork(accept_and_die, NULL);
        port = CHECK_OK(alloc_retry("svc.die"));
        CHECK_EQ(ipcf_write(port, "hi", 2, 1000), 2);
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_PEER_DIED);
        CHECK_EQ(ev.port, port);
        CHECK_EQ(ev.pid, c);
        CHECK_EQ(ev.end_code, IPCF_END_PEER_DIED);
        CHECK_EQ(test_wait(c, 5000), 128 + SIGKILL);
        CHECK_OK(ipcf_dealloc(port, NULL));
        test_daemon_stop(&d);
}

TEST(watch_bounds_and_bad_arguments) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_ERR(ipcf_watch("bad name"), -EINVAL);
        CHECK_ERR(ipcf_watch(""), -EINVAL);
        /* a name@host: no daemon tells of another host's names by host */
        CHECK_ERR(ipcf_watch("svc@beta"), -EINVAL);
        CHECK_ERR(ipcf_unwatch("svc@beta"), -EINVAL);
        CHECK_ERR(ipcf_notify_next(0, NULL), -EINVAL);
        ipcf_event ev;
        CHECK_ERR(ipcf_notify_next(-2, &ev), -EINVAL);
        char name[32];
        for (int i = 0; i < 64; i++) {
                snprintf(name, sizeof(name), "w.%d", i);
                CHECK_OK(ipcf_watch(name));
        }
        CHECK_ERR(ipcf_watch("w.one.too.many"), -EDQUOT);
        CHECK_OK(ipcf_unwatch("w.7"));
        CHECK_OK(ipcf_watch("w.one.too.many"));
        test_daemon_stop(&d);
}

TEST(events_that_do_not_fit_are_counted) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_watch("svc.flap"));
        /* Flap the name far more often than the socket buffer holds events. */
        for (int i = 0; i < 3000; i++) {
                int reg = CHECK_OK(ipcf_register("svc.flap", NULL));
                CHECK_OK(ipcf_dealloc(reg, NULL));
        }
        uint64_t got = 0, lost = 0;
        ipcf_event ev;
        while (ipcf_notify_next(300, &ev) == 0) {
                got++;
                lost += ev.lost;
        }
        /* What was dropped at the end is told with the next event that fits. */
        int reg = CHECK_OK(ipcf_register("svc.flap", NULL));
        ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_NAME_UP);
        got++;
        lost += ev.lost;
        CHECK_EQ(got + lost, 6001);
        CHECK(lost > 0);
        CHECK_OK(ipcf_dealloc(reg, NULL));
        test_daemon_stop(&d);
}

TEST(daemon_death_ends_notifications) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_notify_fd());
        test_daemon_kill(&d);
        ipcf_event ev;
        CHECK_ERR(ipcf_notify_next(2000, &ev), -EHOSTDOWN);
        test_daemon_stop(&d);
}

/* ---- the control protocol of the models, spoken raw ------------------------- */

static int raw_connect(void) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", getenv("IPCF_RUNTIME_DIR"),
                 CTL_SOCKET_NAME);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        CHECK(fd >= 0);
        CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        return fd;
}

/* Send b; return the reply's type and errno (0 for OK), or -1 at EOF. */
static int raw_call(int fd, ctl_builder *b, uint32_t *ret_errno) {
        CHECK(ctl_end(b) > 0);
        CHECK_OK(ctl_send(fd, b, NULL, 0));
        static uint8_t buf[CTL_MSG_MAX];
        int fds[CTL_FDS_MAX];
        unsigned n_fds = 0;
        struct pollfd p = { .fd = fd, .events = POLLIN };
        CHECK_EQ(poll(&p, 1, 5000), 1);
        ssize_t n = ctl_recv(fd, buf, sizeof(buf), fds, &n_fds, MSG_DONTWAIT);
        for (unsigned i = 0; i < n_fds; i++)
                close(fds[i]);
        if (n <= 0)
                return -1;
        ctl_msg m;
        CHECK_OK(ctl_msg_parse(buf, (size_t)n, &m));
        *ret_errno = 0;
        if (m.type == CTL_ERROR)
                CHECK_OK(ctl_get_u32(&m, CTL_A_ERRNO, ret_errno));
        return m.type;
}

TEST(strict_parsing_of_model_requests) {
        test_daemon_start(&d, NULL, NULL);
        static ctl_builder b;
        uint32_t e;
        int fd = raw_connect();
        /* Bad values: an error answer, the client stays. */
        struct ctl_mcast_opts_wire co = { .slow = 7 };
        ctl_begin(&b, CTL_MCAST_CREATE, 1);
        ctl_put_str(&b, CTL_A_NAME, "grp.bad");
        ctl_put(&b, CTL_A_MCAST_OPTS, &co, sizeof(co));
        CHECK_EQ(raw_call(fd, &b, &e), CTL_ERROR);
        CHECK_EQ(e, EINVAL);
        struct ctl_mbox_opts_wire mo = { .flags = 0x80 };
        ctl_begin(&b, CTL_MBOX_CREATE, 2);
        ctl_put_str(&b, CTL_A_NAME, "box.bad");
        ctl_put(&b, CTL_A_MBOX_OPTS, &mo, sizeof(mo));
        CHECK_EQ(raw_call(fd, &b, &e), CTL_ERROR);
        CHECK_EQ(e, EINVAL);
        ctl_begin(&b, CTL_WATCH, 3);
        ctl_put_str(&b, CTL_A_NAME, "svc.x");
        CHECK_EQ(raw_call(fd, &b, &e), CTL_ERROR); /* no notification socket yet */
        CHECK_EQ(e, ENOTCONN);
        ctl_begin(&b, CTL_MBOX_DESTROY, 4);
        CHECK_EQ(raw_call(fd, &b, &e), CTL_ERROR); /* no NAME */
        CHECK_EQ(e, EINVAL);
        /* A known attribute of the wrong size is a violation: dropped. */
        ctl_begin(&b, CTL_MBOX_CREATE, 5);
        ctl_put_str(&b, CTL_A_NAME, "box.bad");
        ctl_put(&b, CTL_A_MBOX_OPTS, &mo, 3);
        CHECK_EQ(raw_call(fd, &b, &e), -1);
        close(fd);
        /* So is a daemon-to-client type. */
        fd = raw_connect();
        ctl_begin(&b, CTL_EVENT, 6);
        ctl_put_u32(&b, CTL_A_EVENT_KIND, 1);
        CHECK_EQ(raw_call(fd, &b, &e), -1);
        close(fd);
        /* The daemon is fine. */
        CHECK_OK(ipcf_mbox_create("box.good", NULL));
        test_daemon_stop(&d);
}

TEST(a_destroyed_mailbox_is_a_flow_ended_with_its_reason) {
        test_daemon_start(&d, NULL, NULL);
        CHECK_OK(ipcf_notify_fd());
        CHECK_OK(ipcf_mbox_create("box.n", NULL));
        int rx = CHECK_OK(ipcf_mbox_open("box.n", IPCF_MBOX_RECV, NULL, 2000));
        CHECK_OK(ipcf_mbox_destroy("box.n"));
        ipcf_event ev = next_event();
        CHECK_EQ(ev.kind, IPCF_EVENT_FLOW_ENDED);
        CHECK_EQ(ev.port, rx);
        CHECK(strcmp(ev.name, "box.n") == 0);
        CHECK(strcmp(ev.reason, "mailbox destroyed") == 0);
        test_daemon_stop(&d);
}
