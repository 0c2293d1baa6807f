/*
 * sdnotify.c — see sdnotify.h.
 */
#include "support/sdnotify.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "support/test.h"

int test_notify_open(const char *path) {
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        CHECK(fd >= 0 && strlen(path) < sizeof(sa.sun_path));
        memcpy(sa.sun_path, path, strlen(path));
        CHECK(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
        setenv("NOTIFY_SOCKET", path, 1);
        return fd;
}

const char *test_notify_next(int fd, char *buf, size_t size) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10000) != 1)
                test_fail(__FILE__, __LINE__, "no notification within 10 s");
        ssize_t n = recv(fd, buf, size - 1, 0);
        CHECK(n > 0);
        buf[n] = 0;
        return buf;
}
