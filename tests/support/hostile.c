/*
 * hostile.c — see hostile.h.
 */
#include "support/hostile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void fdset_snapshot(fdset *s) {
        memset(s, 0, sizeof(*s));
        DIR *d = opendir("/proc/self/fd");
        if (!d)
                return;
        int self = dirfd(d);
        for (struct dirent *e; (e = readdir(d));) {
                int fd = atoi(e->d_name);
                if (e->d_name[0] != '.' && fd != self && fd >= 0 && fd < HOSTILE_FDS_MAX)
                        s->open[fd] = true;
        }
        closedir(d);
}

int fdset_new_since(const fdset *before, int *ret_fds, int max) {
        fdset now;
        int n = 0;
        fdset_snapshot(&now);
        for (int fd = 0; fd < HOSTILE_FDS_MAX && n < max; fd++)
                if (now.open[fd] && !before->open[fd])
                        ret_fds[n++] = fd;
        return n;
}

static bool link_has(int fd, const char *what) {
        char path[64], target[128];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n <= 0)
                return false;
        target[n] = 0;
        return strstr(target, what) != NULL;
}

bool fd_is_eventfd(int fd) { return link_has(fd, "eventfd"); }
bool fd_is_socket(int fd) { return link_has(fd, "socket:"); }

/* Empty what can be read from fd without blocking. */
static void drain_now(int fd) {
        char buf[4096];
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return;
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        for (int i = 0; i < 100000 && read(fd, buf, sizeof(buf)) > 0; i++)
                ;
        fcntl(fd, F_SETFL, fl);
}

int hostile_fd(int fd, unsigned mode) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0)
                return -errno;
        if (mode & (HOSTILE_DRAIN | HOSTILE_FILL))
                drain_now(fd);
        if (mode & HOSTILE_FILL) {
                if (fd_is_eventfd(fd)) {
                        uint64_t v = UINT64_MAX - 1; /* the counter's maximum */
                        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                        if (write(fd, &v, sizeof(v)) != sizeof(v))
                                return -errno;
                } else if (fd_is_socket(fd)) {
                        int small = 1;
                        char junk[4096];
                        memset(junk, 0x5A, sizeof(junk));
                        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
                        for (int i = 0; i < 100000; i++)
                                if (send(fd, junk, sizeof(junk), MSG_DONTWAIT | MSG_NOSIGNAL) <= 0)
                                        break;
                }
        }
        if ((mode & HOSTILE_SHUTDOWN) && fd_is_socket(fd))
                shutdown(fd, SHUT_RDWR);
        if (mode & HOSTILE_CLEAR_NONBLOCK)
                fl &= ~O_NONBLOCK;
        return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

void hostile_ring(int fd) {
        if (fd_is_eventfd(fd)) {
                uint64_t one = 1;
                int fl = fcntl(fd, F_GETFL);
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
                (void)!write(fd, &one, sizeof(one));
                fcntl(fd, F_SETFL, fl);
        } else if (fd_is_socket(fd)) {
                (void)send(fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
        }
}

void hostile_fds(const int *fds, int n, unsigned mode) {
        for (int i = 0; i < n; i++)
                (void)hostile_fd(fds[i], mode);
}

void mapset_snapshot(mapset *s, const char *name) {
        s->n = 0;
        FILE *f = fopen("/proc/self/maps", "r");
        if (!f)
                return;
        char line[512];
        while (fgets(line, sizeof(line), f) && s->n < HOSTILE_MAPS_MAX) {
                unsigned long lo, hi;
                char perms[8];
                if (!strstr(line, name) || sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 ||
                    perms[3] != 's')
                        continue;
                s->lo[s->n] = lo;
                s->len[s->n] = hi - lo;
                s->n++;
        }
        fclose(f);
}

void *mapset_new_since(const mapset *before, const char *name, size_t *ret_len) {
        mapset now;
        mapset_snapshot(&now, name);
        for (int i = 0; i < now.n; i++) {
                bool old = false;
                for (int j = 0; j < before->n && !old; j++)
                        old = before->lo[j] == now.lo[i];
                if (!old) {
                        if (ret_len)
                                *ret_len = now.len[i];
                        return (void *)now.lo[i];
                }
        }
        return NULL;
}
