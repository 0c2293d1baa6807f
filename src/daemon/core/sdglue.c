/*
 * sdglue.c — see sdglue.h; the only file of the daemon that uses libsystemd.
 *
 * NOTIFY_SOCKET is kept here, not in the environment: each notification puts
 * it back just for sd_notify(unset_environment = 1), which removes it again.
 * The daemon is one thread and forks only from its loop, so no child is ever
 * started in between.
 */
#include "daemon/core/sdglue.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

static char *notify_socket; /* NOTIFY_SOCKET as we were started with, or NULL */

int sdglue_take(int *ret_fd, char *ret_path, size_t path_size) {
        const char *ns = getenv("NOTIFY_SOCKET");
        if (ns && *ns && !notify_socket)
                notify_socket = strdup(ns);
        unsetenv("NOTIFY_SOCKET");
        int n = sd_listen_fds(1); /* 1: unset LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES */
        if (n == 0)
                return 0;
        if (n < 0) {
                fprintf(stderr, "ipcfd: LISTEN_FDS: %s\n", strerror(-n));
                return n;
        }
        if (n != 1) {
                fprintf(stderr, "ipcfd: systemd handed over %d sockets, want one (ListenSequentialPacket=)\n", n);
                return -EINVAL;
        }
        int fd = SD_LISTEN_FDS_START;
        if (sd_is_socket_unix(fd, SOCK_SEQPACKET, 1, NULL, 0) <= 0) {
                fprintf(stderr, "ipcfd: the handed-over socket is not a listening AF_UNIX SOCK_SEQPACKET "
                                "socket (ListenSequentialPacket=)\n");
                return -EINVAL;
        }
        struct sockaddr_un sa;
        socklen_t len = sizeof(sa);
        memset(&sa, 0, sizeof(sa));
        if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                return -errno;
        size_t plen = len > offsetof(struct sockaddr_un, sun_path)
                              ? strnlen(sa.sun_path, len - offsetof(struct sockaddr_un, sun_path))
                              : 0;
        if (plen == 0 || sa.sun_path[0] != '/') {
                fprintf(stderr, "ipcfd: the handed-over socket is not bound to an absolute path "
                                "(abstract or unnamed sockets cannot be found by clients)\n");
                return -EINVAL;
        }
        if (plen >= path_size)
                return -ENAMETOOLONG;
        memcpy(ret_path, sa.sun_path, plen);
        ret_path[plen] = 0;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return -errno;
        *ret_fd = fd;
        return 1;
}

/* Send one notification, if systemd asked for them. */
static void notify(const char *state) {
        if (!notify_socket || setenv("NOTIFY_SOCKET", notify_socket, 1) < 0)
                return;
        sd_notify(1, state);
}

void sdglue_ready(const char *runtime_dir, bool shared) {
        char state[PATH_MAX + 64];
        snprintf(state, sizeof(state), "READY=1\nSTATUS=serving %s (%s)", runtime_dir,
                 shared ? "shared" : "private");
        notify(state);
}

void sdglue_reloading(void) {
        notify("RELOADING=1");
}

void sdglue_stopping(void) {
        notify("STOPPING=1");
}
