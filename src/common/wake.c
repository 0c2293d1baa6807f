/*
 * wake.c — wake-up channels (the rules are in wake.h).
 *
 * The socket type is SOCK_STREAM: one recv() takes every ring queued (bytes
 * coalesce), so an honest drain is one system call; and a shutdown by any
 * bell holder shows at the ear as end of stream.
 */
#include "common/wake.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

int wake_new(int *ret_ear, int *ret_bell) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return errno == ENFILE ? -EMFILE : -errno;
        *ret_ear = sv[0];
        *ret_bell = sv[1];
        return 0;
}

int wake_ring(int bell) {
        static const char one = 1;
        for (;;) {
                if (send(bell, &one, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == 1)
                        return 0;
                switch (errno) {
                case EINTR:
                        continue;
                case EAGAIN:
                case ENOBUFS:
                case ENOMEM:
                        /* The ear's queue is full (or the kernel is short):
                         * rings are queued, so the ear is readable. */
                        return 0;
                case ECONNRESET:
                case ENOTCONN:
                        return -EPIPE;
                default:
                        return -errno;
                }
        }
}

int wake_drain(int ear) {
        char buf[WAKE_DRAIN_BUF];
        int got = 0;
        for (int calls = 0; calls < WAKE_DRAIN_CALLS;) {
                ssize_t n = recv(ear, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                return got;
                        return errno == ECONNRESET ? -EPIPE : -errno;
                }
                if (n == 0)
                        return -EPIPE; /* end of stream: the channel hung up */
                got = 1;
                calls++;
                /* Less than asked: the queue is empty now (a stream recv
                 * takes what there is). Not worth a second call to see it. */
                if ((size_t)n < sizeof(buf))
                        return got;
        }
        return got;
}

bool wake_pending(int ear) {
        struct pollfd p = { .fd = ear, .events = POLLIN };
        return poll(&p, 1, 0) > 0;
}
