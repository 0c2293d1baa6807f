/*
 * autostart.c — starting a daemon for this user when none answers, and
 * saying precisely why the daemon cannot be reached when that fails.
 *
 * Each cause has its own error, found before anything waits (never a silent
 * 5 s wait for a daemon that cannot come):
 *   -EHOSTDOWN  no daemon, and autostart is off (IPCF_NO_AUTOSTART=1); or the
 *               daemon started for us exited without serving (and no other
 *               daemon holds the runtime dir's lock, i.e. none is coming);
 *   -ENOPKG     the daemon program was not found ($IPCF_DAEMON not
 *               executable; none beside the program nor in PATH);
 *   -EACCES     the runtime dir is not ours to start a daemon in: another
 *               uid owns it, group or others may write to it, or it is not
 *               a directory (the daemon would refuse it);
 * (and, from the daemon's refusal at connect, -EDQUOT/-EUSERS: conn.c).
 *
 * START. Double fork and setsid detach the daemon from the caller (it is not
 * the caller's child: no SIGCHLD, no zombie); the middle process sends the
 * daemon's pid through a pipe, and a pidfd tells the waiting caller when the
 * daemon exits. The daemon's own flock on DIR/ipcfd.lock settles races
 * between processes starting one at once: the loser exits at once, so an
 * exited daemon means "give up" only while nobody holds that lock
 * (/proc/locks, read without taking the lock: taking it would make a
 * starting daemon lose).
 *
 * ipcf_error_cause() looks at the same things again (environment, runtime
 * dir, program, the daemon's log) to put the cause into words.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "lib/core/lib.h"

/* Where is ipcfd? $IPCF_DAEMON, else beside this program, else in PATH.
 * 0 with its path in buf, or -ENOPKG. */
static int daemon_path(char *buf, size_t size) {
        const char *env = getenv("IPCF_DAEMON");
        if (env && *env) {
                str_copy(buf, env, size);
                return access(buf, X_OK) == 0 ? 0 : -ENOPKG;
        }
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n > 0) {
                self[n] = 0;
                char *slash = strrchr(self, '/');
                if (slash) {
                        *slash = 0;
                        if ((size_t)snprintf(buf, size, "%s/ipcfd", self) < size &&
                            access(buf, X_OK) == 0)
                                return 0;
                }
        }
        const char *path = getenv("PATH");
        if (!path)
                path = "/usr/local/bin:/usr/bin:/bin";
        while (*path) {
                size_t len = strcspn(path, ":");
                if (len && (size_t)snprintf(buf, size, "%.*s/ipcfd", (int)len, path) < size &&
                    access(buf, X_OK) == 0)
                        return 0;
                path += len + (path[len] == ':');
        }
        return -ENOPKG;
}

/* Is dir one we may start a daemon in (creating it if missing)? 0, or
 * -EACCES with *st describing it, or another -errno. */
static int runtime_dir_usable(const char *dir, struct stat *st) {
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return errno == EPERM ? -EACCES : -errno;
        if (lstat(dir, st) < 0)
                return -errno;
        if (!S_ISDIR(st->st_mode) || st->st_uid != geteuid() || (st->st_mode & 022))
                return -EACCES;
        return 0;
}

/* autostart_begin's "pidfd" of a daemon that has exited already. */
#define AUTOSTART_EXITED (-2)

static int pidfd_of(pid_t pid) {
        return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* Does some process hold a lock on path? From /proc/locks (device and inode
 * of each lock), without touching the lock. */
static bool lock_held(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return false;
        FILE *f = fopen("/proc/locks", "re");
        if (!f)
                return true; /* cannot tell: keep waiting, as before */
        char line[256];
        bool held = false;
        while (!held && fgets(line, sizeof(line), f)) {
                /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF" */
                for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
                        unsigned maj, min;
                        unsigned long long ino;
                        if (sscanf(tok, "%x:%x:%llu", &maj, &min, &ino) == 3) {
                                held = ino == (unsigned long long)st.st_ino &&
                                       makedev(maj, min) == st.st_dev;
                                break;
                        }
                }
        }
        fclose(f);
        return held;
}

int autostart_begin(const char *dir, int *ret_pidfd) {
        char bin[PATH_MAX], log[PATH_MAX + 16];
        struct stat st;
        int r = runtime_dir_usable(dir, &st);
        if (r < 0)
                return r;
        if ((r = daemon_path(bin, sizeof(bin))) < 0)
                return r;
        snprintf(log, sizeof(log), "%s/ipcfd.log", dir);
        int p[2];
        if (pipe2(p, O_CLOEXEC) < 0)
                return -errno;
        /* Everything the children need is prepared before fork: after it,
         * only async-signal-safe calls. */
        char *const argv[] = { bin, "--runtime-dir", (char *)dir, NULL };
        pid_t mid = fork();
        if (mid < 0) {
                r = -errno;
                close(p[0]);
                close(p[1]);
                return r;
        }
        if (mid == 0) {
                setsid();
                pid_t d = fork();
                if (d != 0) {
                        (void)!write(p[1], &d, sizeof(d));
                        _exit(0);
                }
                int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
                int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (in >= 0)
                        dup2(in, 0);
                if (out >= 0) {
                        dup2(out, 1);
                        dup2(out, 2);
                }
                execv(bin, argv);
                _exit(127);
        }
        close(p[1]);
        pid_t d = -1;
        ssize_t n;
        while ((n = read(p[0], &d, sizeof(d))) < 0 && errno == EINTR)
                ;
        close(p[0]);
        int status;
        while (waitpid(mid, &status, 0) < 0 && errno == EINTR)
                ;
        /* The daemon already gone (reaped by init before we looked: ESRCH)
         * is AUTOSTART_EXITED; without a pidfd otherwise (an old kernel),
         * -1: the wait relies on the socket and its deadline alone. */
        int fd = n == sizeof(d) && d > 0 ? pidfd_of(d) : -1;
        *ret_pidfd = fd >= 0 ? fd : n == sizeof(d) && errno == ESRCH ? AUTOSTART_EXITED : -1;
        return 0;
}

int autostart_wait(const char *dir, int pidfd, uint64_t deadline, int (*try_connect)(void)) {
        char lock[PATH_MAX + 16];
        snprintf(lock, sizeof(lock), "%s/ipcfd.lock", dir);
        int r;
        while ((r = try_connect()) < 0 && now_ns() < deadline) {
                if (pidfd == -1) {
                        usleep(2000);
                        continue;
                }
                struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
                if (pidfd != AUTOSTART_EXITED && poll(&pfd, 1, 2) <= 0)
                        continue;
                /* Ours exited. Lost the race to another daemon (which holds
                 * the lock and will serve)? Then wait for that one. */
                if (pidfd >= 0)
                        close(pidfd);
                pidfd = -1;
                if ((r = try_connect()) == 0 || !lock_held(lock))
                        break;
        }
        if (pidfd >= 0)
                close(pidfd);
        return r < 0 ? -EHOSTDOWN : 0;
}

/* ---- ipcf_error_cause ----------------------------------------------------- */

/* The last non-empty line of path (at most cap - 1 bytes of its end), or
 * an empty string. */
static void last_line(const char *path, char *buf, size_t cap) {
        buf[0] = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        char tail[512];
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0;
        ssize_t n = size > 0 ? pread(fd, tail, (size_t)(size - from), from) : 0;
        close(fd);
        if (n <= 0)
                return;
        while (n > 0 && (tail[n - 1] == '\n' || tail[n - 1] == '\r'))
                n--;
        tail[n] = 0;
        char *start = strrchr(tail, '\n');
        str_copy(buf, start ? start + 1 : tail, cap);
}

/* -EHOSTDOWN: autostart off, or what the daemon said last. */
static int cause_hostdown(const char *dir, char *buf, size_t cap) {
        const char *no = getenv("IPCF_NO_AUTOSTART");
        if (no && !strcmp(no, "1"))
                return snprintf(buf, cap, "no daemon serves %s, and autostart is off (IPCF_NO_AUTOSTART=1)",
                                dir);
        char log[PATH_MAX + 16], line[200];
        snprintf(log, sizeof(log), "%s/ipcfd.log", dir);
        last_line(log, line, sizeof(line));
        if (line[0])
                return snprintf(buf, cap, "the daemon for %s did not serve; its log (%s) ends: %s", dir,
                                log, line);
        return snprintf(buf, cap, "%s at %s", ipcf_strerror(-EHOSTDOWN), dir);
}

/* -ENOPKG: where the program was looked for. */
static int cause_no_program(char *buf, size_t cap) {
        const char *env = getenv("IPCF_DAEMON");
        if (env && *env)
                return snprintf(buf, cap, "the daemon program was not found at %s (IPCF_DAEMON)", env);
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        self[n > 0 ? n : 0] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
                *slash = 0;
        return snprintf(buf, cap, "the daemon program was not found at %s/ipcfd nor as ipcfd in PATH",
                        self[0] ? self : ".");
}

/* Does a daemon accept connections on sock? 0, or connect()'s -errno. */
static int sock_connect_check(const char *sock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sock) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, sock);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/* -EACCES: the runtime dir, if it is the cause (no daemon can be reached
 * there); else the policy's refusal. */
static int cause_access(const char *dir, char *buf, size_t cap) {
        struct stat st;
        char sock[PATH_MAX + 16];
        snprintf(sock, sizeof(sock), "%s/%s", dir, CTL_SOCKET_NAME);
        int c = sock_connect_check(sock);
        if (c != 0 && lstat(dir, &st) == 0) {
                if (!S_ISDIR(st.st_mode))
                        return snprintf(buf, cap, "runtime dir %s is not a directory", dir);
                if (st.st_uid != geteuid())
                        return snprintf(buf, cap, "runtime dir %s is owned by uid %u", dir,
                                        (unsigned)st.st_uid);
                if (st.st_mode & 022)
                        return snprintf(buf, cap, "runtime dir %s has mode %04o: others may write to it",
                                        dir, (unsigned)(st.st_mode & 07777));
                if (c == -EACCES)
                        return snprintf(buf, cap, "the daemon's socket %s is not ours to use", sock);
        }
        return snprintf(buf, cap, "%s", ipcf_strerror(-EACCES));
}

/* -EDQUOT/-EUSERS: the connection caps, if connecting again is refused the
 * same way; else another quota. */
static int cause_quota(int err, char *buf, size_t cap) {
        if (ipcf_connect() != err)
                return snprintf(buf, cap, "%s", ipcf_strerror(err));
        if (err == -EDQUOT)
                return snprintf(buf, cap, "refused by quota: the daemon admits no more connections of "
                                          "this user (clients_per_user)");
        return snprintf(buf, cap, "refused by quota: the daemon has no room for another connection");
}

int ipcf_error_cause(int err, char *buf, size_t cap) {
        if (!buf || cap == 0)
                return -EINVAL;
        const char *dir = ipcf_runtime_dir();
        int n;
        switch (err) {
        case -EHOSTDOWN: n = cause_hostdown(dir, buf, cap); break;
        case -ENOPKG: n = cause_no_program(buf, cap); break;
        case -EACCES: n = cause_access(dir, buf, cap); break;
        case -EDQUOT:
        case -EUSERS: n = cause_quota(err, buf, cap); break;
        default: n = snprintf(buf, cap, "%s", ipcf_strerror(err)); break;
        }
        return n < 0 ? -EINVAL : n;
}
