/*
 * autostart.c — starting a daemon for this user when none answers, and
 * saying precisely why the daemon cannot be reached when that fails.
 *
 * Each cause has its own error, found before anything waits (never a silent
 * 5 s wait for a daemon that cannot come):
 *   -EHOSTDOWN  no daemon, and autostart is off (IPCF_NO_AUTOSTART=1); or the
 *               daemon started for us exited without serving (and no other
 *               daemon holds the runtime dir's lock, i.e. none is coming),
 *               or did not serve within AUTOSTART_TIMEOUT_MS;
 *   -ENOPKG     the daemon program was not found ($IPCF_DAEMON not
 *               executable; none beside the program nor in PATH);
 *   -EACCES     the runtime dir is not ours to start a daemon in: another
 *               uid owns it, group or others may write to it, or it is not
 *               a directory (the daemon would refuse it);
 * (and, from the daemon's refusal at connect, -EDQUOT/-EUSERS: conn.c).
 *
 * START. A double fork and setsid detach the daemon from the caller (it is
 * not the caller's child: no SIGCHLD for it, no zombie). The middle process
 * stays while the caller waits: it waits for the daemon, and if the daemon
 * exits first it writes how (status or signal) to the daemon's log and
 * through a socket to the caller, then exits; once the caller is served (or
 * gives up) it tells the middle process to go (a byte on that socket) and
 * reaps it. The daemon's process writes the line that opens its run in the
 * log itself, before exec:
 *   "ipcf: starting PATH for DIR (pid N)"   (AUTOSTART_MARK_START)
 *   "ipcf: pid N exited with status S"      (AUTOSTART_MARK_PID, the middle's)
 *   "ipcf: pid N was killed by signal S"
 * The daemon's own flock on DIR/ipcfd.lock settles races between processes
 * starting one at once: the loser exits at once, so an exited daemon means
 * "give up" only while nobody holds that lock (/proc/locks, read without
 * taking the lock: taking it would make a starting daemon lose).
 *
 * ipcf_error_cause() looks at the same things again (environment, runtime
 * dir, program, the daemon's log and those lines) to put the cause into words.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stddef.h>
#include <signal.h>
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

#define AUTOSTART_MARK_START "ipcf: starting "
#define AUTOSTART_MARK_PID "ipcf: pid "

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

/* Who holds a lock on path? From /proc/locks (the holder's pid before the
 * device and inode of each lock), without touching the lock: its pid, 0 if
 * none, -1 if it cannot be told. */
static pid_t lock_holder(const char *path) {
        struct stat st;
        if (stat(path, &st) < 0)
                return 0;
        FILE *f = fopen("/proc/locks", "re");
        if (!f)
                return -1;
        char line[256];
        pid_t holder = 0;
        while (!holder && fgets(line, sizeof(line), f)) {
                /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:56789 0 EOF" */
                long pid = 0;
                for (char *tok = strtok(line, " \n"); tok; tok = strtok(NULL, " \n")) {
                        unsigned maj, min;
                        unsigned long long ino;
                        if (sscanf(tok, "%x:%x:%llu", &maj, &min, &ino) == 3) {
                                if (ino == (unsigned long long)st.st_ino && makedev(maj, min) == st.st_dev)
                                        holder = pid > 0 ? (pid_t)pid : -1;
                                break;
                        }
                        pid = strtol(tok, NULL, 10);
                }
        }
        fclose(f);
        return holder;
}

/* ---- the start: only async-signal-safe calls after fork -------------------- */

/* Append the text s, then the decimal v, to buf at *len (cap bytes). */
static void line_put(char *buf, size_t *len, size_t cap, const char *s, long v, bool with_v) {
        while (*s && *len < cap)
                buf[(*len)++] = *s++;
        if (!with_v)
                return;
        char digits[24];
        int n = 0;
        unsigned long u = v < 0 ? 0UL - (unsigned long)v : (unsigned long)v;
        do
                digits[n++] = (char)('0' + u % 10);
        while ((u /= 10) && n < (int)sizeof(digits));
        if (v < 0 && *len < cap)
                buf[(*len)++] = '-';
        while (n && *len < cap)
                buf[(*len)++] = digits[--n];
}

/* What the processes of a start need, prepared before fork. */
typedef struct autostart_plan {
        char bin[PATH_MAX];
        char log[PATH_MAX + 16];
        char start[2 * PATH_MAX + 64]; /* "ipcf: starting BIN for DIR (pid " */
        char *argv[4];
} autostart_plan;

/* The daemon's process: stdio to /dev/null and the log, the signal state of
 * a fresh process (the caller's thread may block or ignore signals), its
 * opening line in the log, then the daemon. */
static _Noreturn void autostart_exec(autostart_plan *plan) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
        int out = open(plan->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (in >= 0)
                dup2(in, 0);
        if (out >= 0) {
                dup2(out, 1);
                dup2(out, 2);
                char line[sizeof(plan->start) + 32];
                size_t len = 0;
                line_put(line, &len, sizeof(line) - 2, plan->start, (long)getpid(), true);
                line_put(line, &len, sizeof(line), ")\n", 0, false);
                (void)!write(out, line, len);
        }
        execv(plan->bin, plan->argv);
        _exit(127);
}

/* The middle process: starts the daemon, then waits until either the daemon
 * exits (it writes how to the log and the wait status on sock) or the caller
 * says it is done waiting (a byte on sock, or its end closed). */
static _Noreturn void autostart_middle(autostart_plan *plan, int sock) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigaction(SIGCHLD, &dfl, NULL); /* SIG_IGN would reap the daemon unseen */
        setsid();
        pid_t d = fork();
        if (d < 0)
                _exit(1);
        if (d == 0)
                autostart_exec(plan);
        int pidfd = (int)syscall(SYS_pidfd_open, d, 0);
        int status;
        for (;;) {
                struct pollfd pfd[2] = { { .fd = sock, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
                int n = poll(pfd, pidfd >= 0 ? 2 : 1, pidfd >= 0 ? -1 : 5);
                if (n > 0 && pfd[0].revents)
                        _exit(0); /* the caller is done */
                pid_t w = waitpid(d, &status, WNOHANG);
                if (w == d)
                        break;
                if (w < 0 && errno != EINTR)
                        _exit(0);
        }
        char line[96];
        size_t len = 0;
        line_put(line, &len, sizeof(line), AUTOSTART_MARK_PID, (long)d, true);
        if (WIFSIGNALED(status))
                line_put(line, &len, sizeof(line), " was killed by signal ", WTERMSIG(status), true);
        else
                line_put(line, &len, sizeof(line), " exited with status ", WEXITSTATUS(status), true);
        line_put(line, &len, sizeof(line), "\n", 0, false);
        int out = open(plan->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (out >= 0)
                (void)!write(out, line, len);
        (void)!write(sock, &status, sizeof(status));
        _exit(0);
}

/* Wait for the daemon of a start to serve: call try_connect until it returns
 * 0 or deadline passes — or, at once, once sock says the daemon exited (or
 * the middle process is gone) and no other daemon holds dir's lock. */
static int autostart_wait(const char *dir, int sock, uint64_t deadline, int (*try_connect)(void)) {
        char lock[PATH_MAX + 16];
        snprintf(lock, sizeof(lock), "%s/ipcfd.lock", dir);
        bool exited = false;
        int r;
        while ((r = try_connect()) < 0 && now_ns() < deadline) {
                struct pollfd pfd = { .fd = sock, .events = POLLIN };
                if (exited || poll(&pfd, 1, 2) <= 0) {
                        if (exited)
                                usleep(2000);
                        continue;
                }
                /* Ours exited (or the middle process is gone). Lost the race to another daemon (which holds
                 * the lock and will serve)? Then wait for that one. */
                exited = true;
                if ((r = try_connect()) == 0 || lock_holder(lock) == 0)
                        break;
        }
        return r < 0 ? -EHOSTDOWN : 0;
}

int autostart_run(const char *dir, uint64_t deadline, int (*try_connect)(void)) {
        struct stat st;
        int r = runtime_dir_usable(dir, &st);
        if (r < 0)
                return r;
        autostart_plan *plan = calloc(1, sizeof(*plan));
        if (!plan)
                return -ENOMEM;
        if ((r = daemon_path(plan->bin, sizeof(plan->bin))) < 0)
                goto out;
        snprintf(plan->log, sizeof(plan->log), "%s/ipcfd.log", dir);
        snprintf(plan->start, sizeof(plan->start), AUTOSTART_MARK_START "%s for %s (pid ", plan->bin, dir);
        plan->argv[0] = plan->bin;
        plan->argv[1] = "--runtime-dir";
        plan->argv[2] = (char *)dir;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
                r = -errno;
                goto out;
        }
        pid_t mid = fork();
        if (mid == 0) {
                close(sv[0]);
                autostart_middle(plan, sv[1]);
        }
        close(sv[1]);
        if (mid < 0) {
                r = -errno;
                close(sv[0]);
                goto out;
        }
        r = autostart_wait(dir, sv[0], deadline, try_connect);
        /* Done: the middle process exits (if it has not) — told with a byte,
         * as a copy of sv[0] in a process another thread forked would keep
         * the hang-up from it. */
        (void)!send(sv[0], "", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        close(sv[0]);
        while (waitpid(mid, NULL, 0) < 0 && errno == EINTR)
                ;
out:
        free(plan);
        return r;
}

/* ---- ipcf_error_cause ----------------------------------------------------- */

/* The end of the log at path (at most cap - 1 bytes, from a line's start
 * where it can), or an empty string. */
static void log_tail(const char *path, char *buf, size_t cap) {
        buf[0] = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return;
        off_t size = lseek(fd, 0, SEEK_END);
        off_t from = size > (off_t)cap - 1 ? size - (off_t)cap + 1 : 0;
        ssize_t n = size > 0 ? pread(fd, buf, (size_t)(size - from), from) : 0;
        close(fd);
        if (n <= 0)
                return;
        buf[n] = 0;
        char *nl = from > 0 ? strchr(buf, '\n') : NULL;
        if (nl)
                memmove(buf, nl + 1, strlen(nl + 1) + 1);
}

/* What the log says of the last start (autostart_exec's and
 * autostart_middle's lines, and the daemon's own). */
typedef struct start_story {
        bool started;          /* a start line was found */
        char program[PATH_MAX];
        bool served;           /* the daemon said "serving" */
        char end[64];          /* "exited with status 1", "was killed by signal 9", or "" */
        char last[200];        /* the daemon's last line, or "" */
} start_story;

static void story_of(char *tail, start_story *s) {
        memset(s, 0, sizeof(*s));
        char *from = NULL;
        for (char *p = tail; (p = strstr(p, AUTOSTART_MARK_START)); p++)
                if (p == tail || p[-1] == '\n')
                        from = p;
        long pid = 0;
        if (from) {
                char *eol = strchr(from, '\n');
                if (eol)
                        *eol = 0;
                char *pid_at = strrchr(from, '(');
                size_t head = strlen(AUTOSTART_MARK_START);
                char *for_at = pid_at ? strstr(from + head, " for ") : NULL;
                if (for_at && sscanf(pid_at, "(pid %ld)", &pid) == 1) {
                        s->started = true;
                        snprintf(s->program, sizeof(s->program), "%.*s", (int)(for_at - from - (ptrdiff_t)head),
                                 from + head);
                }
                tail = eol ? eol + 1 : from + strlen(from);
        }
        char served[64], ended[64];
        snprintf(served, sizeof(served), "ipcfd[%ld]: serving ", pid);
        snprintf(ended, sizeof(ended), AUTOSTART_MARK_PID "%ld ", pid);
        for (char *save = NULL, *line = strtok_r(tail, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                line[strcspn(line, "\r")] = 0;
                if (!*line)
                        continue;
                if (s->started && !strncmp(line, ended, strlen(ended)))
                        str_copy(s->end, line + strlen(ended), sizeof(s->end));
                else if (!strncmp(line, "ipcf: ", 6))
                        continue; /* another start's lines */
                else {
                        s->served |= s->started && !strncmp(line, served, strlen(served));
                        str_copy(s->last, line, sizeof(s->last));
                }
        }
}

/* The program of pid (/proc/PID/comm, printable), into buf (cap bytes). */
static const char *program_of(pid_t pid, char *buf, size_t cap) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
        FILE *f = fopen(path, "re");
        if (!f || !fgets(buf, (int)cap, f))
                str_copy(buf, "?", cap);
        if (f)
                fclose(f);
        buf[strcspn(buf, "\n")] = 0;
        str_printable(buf);
        return buf;
}

/* Does a daemon accept connections on sock? 0, or connect()'s -errno. A
 * full queue of connections (-EAGAIN: the socket does not block) is a
 * daemon there, that does not take them now. */
static int sock_connect_check(const char *sock) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        if (strlen(sock) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, sock);
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
        close(fd);
        return r == -EAGAIN ? 0 : r;
}

/* -EHOSTDOWN: a daemon that accepts connections but dropped ours, autostart
 * off, a runtime dir that cannot be made, or what the log says of the last
 * start. */
static int cause_hostdown(const char *dir, char *buf, size_t cap) {
        const char *no = getenv("IPCF_NO_AUTOSTART");
        char sock[PATH_MAX + 16];
        snprintf(sock, sizeof(sock), "%s/%s", dir, CTL_SOCKET_NAME);
        if (sock_connect_check(sock) == 0) /* one is there: it dropped us */
                return snprintf(buf, cap, "the daemon for %s closed the connection", dir);
        if (no && !strcmp(no, "1"))
                return snprintf(buf, cap, "no daemon serves %s, and autostart is off (IPCF_NO_AUTOSTART=1)",
                                dir);
        struct stat st;
        if (lstat(dir, &st) < 0) /* autostart would have made it */
                return snprintf(buf, cap, "no daemon serves %s, and the runtime dir cannot be made: %s", dir,
                                strerror(errno));
        char log[PATH_MAX + 16], *tail = malloc(4096);
        start_story *s = malloc(sizeof(*s));
        int n;
        if (!tail || !s) {
                n = snprintf(buf, cap, "%s at %s", ipcf_strerror(-EHOSTDOWN), dir);
                goto out;
        }
        snprintf(log, sizeof(log), "%s/ipcfd.log", dir);
        log_tail(log, tail, 4096);
        story_of(tail, s);
        char said[PATH_MAX + 300];
        if (s->last[0])
                snprintf(said, sizeof(said), "; its log (%s) ends: %s", log, s->last);
        else
                snprintf(said, sizeof(said), ", and wrote nothing to its log (%s)", log);
        char lock[PATH_MAX + 16], prog[32];
        snprintf(lock, sizeof(lock), "%s/ipcfd.lock", dir);
        pid_t holder = s->started && !s->served && s->end[0] ? lock_holder(lock) : 0;
        if (holder > 0) /* the daemon started left because another process holds the lock */
                n = snprintf(buf, cap, "no daemon serves %s: pid %d (%s) holds its lock (%s) but does not serve",
                             dir, (int)holder, program_of(holder, prog, sizeof(prog)), lock);
        else if (s->started && !s->served && s->end[0])
                n = snprintf(buf, cap, "the daemon for %s (%s) %s before serving%s", dir, s->program, s->end,
                             said);
        else if (s->started && !s->served)
                n = snprintf(buf, cap, "the daemon for %s (%s) did not serve within %d s%s", dir, s->program,
                             AUTOSTART_TIMEOUT_MS / 1000, said);
        else if (s->started && s->end[0])
                n = snprintf(buf, cap, "the daemon for %s (%s) %s%s", dir, s->program, s->end, said);
        else if (s->last[0])
                n = snprintf(buf, cap, "the daemon for %s is not answering%s", dir, said);
        else
                n = snprintf(buf, cap, "%s at %s", ipcf_strerror(-EHOSTDOWN), dir);
out:
        free(tail);
        free(s);
        return n;
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
                if (st.st_uid != geteuid() && access(dir, X_OK) < 0)
                        return snprintf(buf, cap,
                                        "runtime dir %s (uid %u, mode %04o) is not searchable by "
                                        "this user: a daemon shared with other users needs it 0755",
                                        dir, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
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
