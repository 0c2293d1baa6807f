/*
 * main.c — ipcfd, the IPC facility of a host: start-up, the main loop and
 * shut-down.
 *
 *   ipcfd [--runtime-dir DIR] [--config FILE] [--shared] [--verbose]
 *   ipcfd --check-config FILE | --version | --help
 *
 * START-UP ORDER (each step relies on the previous one):
 *   0. a listening socket handed over by systemd (LISTEN_FDS, sdglue.c) is
 *      taken: it must be DIR/ipcfd.sock, and DIR is the runtime dir;
 *   1. the runtime dir: that DIR, else --runtime-dir, $IPCF_RUNTIME_DIR,
 *      $XDG_RUNTIME_DIR/ipcf, or /tmp/ipcf-<uid>; created if missing (its
 *      mode then follows `shared`, at step 5 and at each reload: 0755 or
 *      0700); refused if another user owns it;
 *   2. an exclusive flock on DIR/ipcfd.lock: if another daemon holds it, say so
 *      and exit 0 (two clients autostarting at once is not an error; with a
 *      handed-over socket it is: exit 1);
 *   3. the config (a bad one: print the line, exit 1);
 *   4. RLIMIT_NOFILE soft raised to hard; global caps derived from it;
 *   5. DIR/ipcfd.sock: a stale one unlinked (we hold the lock, so it is
 *      stale), bound, mode 0600 (0666 when shared), listening — unless
 *      systemd handed it over (its file and mode are then systemd's);
 *   6. the modules (src/daemon/modules.c: each registers its requests,
 *      observers and resolvers); DIR/ipcfd.pid; signals through a signalfd;
 *      READY=1 to systemd; the loop.
 * SIGTERM/SIGINT end the loop; everything is released, the socket (if ours)
 * and pid file are unlinked, and the exit status is 0. SIGHUP reloads the
 * config; SIGUSR1 writes a summary of the daemon's objects to stderr.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/util.h"
#include "daemon/core/client.h"
#include "daemon/core/log.h"
#include "daemon/core/module.h"
#include "daemon/core/observe.h"
#include "daemon/core/policy.h"
#include "daemon/core/sdglue.h"

#define CONF_FILE_MAX (1u << 20)

/* The one daemon of this process (static: reachable for leak checkers). */
static ipcfd the_daemon;

static int sig_fd = -1;
static loop_io sig_io;

static void usage(FILE *f) {
        fprintf(f, "usage: ipcfd [--runtime-dir DIR] [--config FILE] [--shared] [--verbose]\n"
                   "       ipcfd --check-config FILE | --version | --help\n");
}

/* Pick the runtime dir per the rules above into out. */
static int runtime_dir_pick(const char *opt, char *out, size_t size) {
        const char *env = getenv("IPCF_RUNTIME_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
        int n;
        if (opt && *opt)
                n = snprintf(out, size, "%s", opt);
        else if (env && *env)
                n = snprintf(out, size, "%s", env);
        else if (xdg && *xdg)
                n = snprintf(out, size, "%s/ipcf", xdg);
        else
                n = snprintf(out, size, "/tmp/ipcf-%u", (unsigned)getuid());
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* The runtime dir of a handed-over socket: its path must be DIR/ipcfd.sock
 * (clients find the daemon there), and --runtime-dir, if given, must be DIR. */
static int runtime_dir_of_socket(const char *sock, const char *opt, char *out, size_t size) {
        const char *slash = strrchr(sock, '/');
        if (strcmp(slash + 1, CTL_SOCKET_NAME) != 0) {
                fprintf(stderr, "ipcfd: the handed-over socket is %s; clients look for DIR/%s\n", sock,
                        CTL_SOCKET_NAME);
                return -EINVAL;
        }
        size_t n = slash == sock ? 1 : (size_t)(slash - sock);
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(out, sock, n);
        out[n] = 0;
        char a[PATH_MAX], b[PATH_MAX];
        if (opt && *opt && (!realpath(opt, a) || !realpath(out, b) || strcmp(a, b) != 0)) {
                fprintf(stderr, "ipcfd: --runtime-dir %s, but the handed-over socket is in %s\n", opt, out);
                return -EINVAL;
        }
        return 0;
}

/* Did step 1 create the runtime dir? Then its mode follows `shared` (0755:
 * others must search it to reach a 0666 socket; else 0700); a directory
 * that was there keeps the mode its maker chose. */
static bool runtime_dir_ours;

static int runtime_dir_prepare(const char *dir) {
        struct stat st;
        if (mkdir(dir, 0700) == 0)
                runtime_dir_ours = true;
        else if (errno != EEXIST) {
                fprintf(stderr, "ipcfd: cannot create %s: %s\n", dir, strerror(errno));
                return -errno;
        }
        if (lstat(dir, &st) < 0) {
                fprintf(stderr, "ipcfd: %s: %s\n", dir, strerror(errno));
                return -errno;
        }
        if (!S_ISDIR(st.st_mode)) {
                fprintf(stderr, "ipcfd: %s is not a directory\n", dir);
                return -ENOTDIR;
        }
        if (st.st_uid != geteuid()) {
                fprintf(stderr, "ipcfd: %s belongs to uid %u, not to us: refusing it\n", dir,
                        (unsigned)st.st_uid);
                return -EPERM;
        }
        return 0;
}

/* Read a whole (bounded) file. */
static int read_file(const char *path, char **ret, size_t *ret_len) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char *buf = malloc(CONF_FILE_MAX + 1);
        size_t n = 0;
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t k = read(fd, buf + n, CONF_FILE_MAX + 1 - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        free(buf);
                        close(fd);
                        return r;
                }
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n > CONF_FILE_MAX) {
                        free(buf);
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        *ret = buf;
        *ret_len = n;
        return 0;
}

/* Raise the fd limit and derive the descriptor budget, so that the daemon can
 * never run out of descriptors through client actions. */
static void caps_init(ipcfd *d) {
        struct rlimit rl;
        size_t nofile = 1024;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
                if (rl.rlim_cur < rl.rlim_max) {
                        rl.rlim_cur = rl.rlim_max;
                        setrlimit(RLIMIT_NOFILE, &rl);
                        getrlimit(RLIMIT_NOFILE, &rl);
                }
                nofile = rl.rlim_cur == RLIM_INFINITY ? (size_t)1 << 20 : (size_t)rl.rlim_cur;
        }
        /* Budget per object: client 1 fd, reg 1, alloc 1, activation 1, flow
         * 4 (its bells; a broker's flow also its 2 ears: 6), and 5 more
         * briefly while one is made; each kind gets at most a tenth of the
         * limit (its module bounds it so), which keeps the sum below it. */
        size_t tenth = nofile > 128 ? (nofile - 64) / 10 : 6;
        d->fd_share = tenth;
        d->max_clients = MIN(tenth, (size_t)4096);
        log_debug("fd limit %zu: share %zu, clients %zu", nofile, d->fd_share, d->max_clients);
}

/* The modes `shared` sets: the socket's (if not systemd's) and that of a
 * runtime dir the daemon made. */
static void modes_follow_shared(const ipcfd *d, const char *sock_path, bool shared) {
        if (runtime_dir_ours && chmod(d->runtime_dir, shared ? 0755 : 0700) < 0)
                log_error("chmod %s: %s", d->runtime_dir, strerror(errno));
        if (sock_path && chmod(sock_path, shared ? 0666 : 0600) < 0)
                log_error("chmod %s: %s", sock_path, strerror(errno));
}

static int socket_open(ipcfd *d, bool shared) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", d->runtime_dir, CTL_SOCKET_NAME);
        if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
                fprintf(stderr, "ipcfd: socket path too long: %s/%s\n", d->runtime_dir,
                        CTL_SOCKET_NAME);
                return -ENAMETOOLONG;
        }
        int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        /* We hold the lock: any socket file there is a dead daemon's. */
        unlink(sa.sun_path);
        mode_t old = umask(0077); /* never reachable by others before chmod */
        int r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
        umask(old);
        if (r == 0)
                modes_follow_shared(d, sa.sun_path, shared);
        if (r < 0 || listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                fprintf(stderr, "ipcfd: %s: %s\n", sa.sun_path, strerror(errno));
                close(fd);
                return r;
        }
        return fd;
}

static void on_listen(loop_io *io, uint32_t events) {
        client_accept_all(container_of(io, ipcfd, listen_io));
}

static void path_in_dir(const ipcfd *d, const char *file, char *out, size_t size);

/* Read, parse and resolve the config at path into *ret, and have the modules
 * check it against their state (for a daemon on runtime_dir). On error prints
 * nothing but fills err ("line N: what", or the I/O error). */
static int config_load(const char *path, const char *runtime_dir, conf *ret, char *err, size_t err_size) {
        char *text = NULL;
        size_t len = 0;
        int r = read_file(path, &text, &len);
        if (r < 0) {
                snprintf(err, err_size, "%s", strerror(-r));
                conf_init(ret);
                return r;
        }
        r = conf_parse(text, len, ret, err, err_size);
        free(text);
        if (r < 0)
                return r;
        r = policy_check_remote_hosts(ret, err, err_size);
        if (r == 0)
                r = modules_check_conf(ret, runtime_dir, err, err_size);
        if (r < 0) {
                conf_deinit(ret);
                return r;
        }
        policy_resolve(ret);
        return 0;
}

/* --check-config FILE: read, parse and resolve FILE as start-up does, say
 * what is wrong or that it is good (with a directory on etcd, a second
 * line: its endpoints and the attributes it publishes), and return the exit status (0 good, 1
 * not). The modules check it as at start (the hosts module: this host's key,
 * in the state dir the daemon would use — with --runtime-dir DIR before
 * --check-config, that of DIR — is not enrolled for another host). Nothing
 * else happens: no runtime dir, no lock, no socket, no key. Unknown
 * user and group names are reported on stderr, as start-up does (the daemon
 * would run, with those principals matching nobody). */
static int config_check(const char *path, const char *opt_dir) {
        conf c;
        char err[512], dir[PATH_MAX];
        if (runtime_dir_pick(opt_dir, dir, sizeof(dir)) < 0)
                dir[0] = 0;
        if (config_load(path, dir, &c, err, sizeof(err)) < 0) {
                fprintf(stderr, "ipcfd: config %s: %s\n", path, err);
                return 1;
        }
        printf("%s: ok (%zu [name] section%s, %zu host%s)\n", path, c.n_rules, plural(c.n_rules), c.n_hosts,
               plural(c.n_hosts));
        if (c.directory.backend == CONF_DIR_ETCD) {
                printf("%s: directory on etcd (%zu endpoint%s), %s", path, c.directory.n_endpoints,
                       plural(c.directory.n_endpoints),
                       c.directory.n_attrs ? "published with attributes" : "no attributes");
                for (size_t i = 0; i < c.directory.n_attrs; i++)
                        printf(" %s=%s", c.directory.attrs[i].key, c.directory.attrs[i].val);
                printf("\n");
        }
        conf_deinit(&c);
        return 0;
}

static const char *conf_path;   /* --config, for SIGHUP */
static bool shared_opt;         /* --shared */
static bool socket_handed;      /* the socket is systemd's: never unlinked or chmod'ed */

/* SIGHUP: load the config again. A bad one is logged and the old one kept.
 * Rules and limits apply to every later check; the socket mode follows
 * `shared`. Pointers into the old rules are never kept across loop rounds
 * (conf_match() results are used within one request), so swapping is safe. */
static void config_reload(ipcfd *d) {
        conf fresh;
        char err[512];
        if (!conf_path) {
                log_info("SIGHUP: no --config, nothing to reload");
                return;
        }
        sdglue_reloading();
        if (config_load(conf_path, d->runtime_dir, &fresh, err, sizeof(err)) < 0) {
                log_error("reload of %s failed, keeping the old config: %s", conf_path, err);
        } else {
                conf_deinit(&d->conf);
                d->conf = fresh;
                char path[PATH_MAX + 64];
                path_in_dir(d, CTL_SOCKET_NAME, path, sizeof(path));
                modes_follow_shared(d, socket_handed ? NULL : path, shared_opt || d->conf.shared);
                log_info("reloaded %s: %zu rule%s", conf_path, d->conf.n_rules, plural(d->conf.n_rules));
        }
        sdglue_ready(d->runtime_dir, shared_opt || d->conf.shared);
}

/* SIGUSR1: one summary line, then one line per client, on stderr (whatever
 * --verbose says): a look inside a running daemon without a debugger. */
static void state_dump(ipcfd *d) {
        char mods[1024];
        modules_dump(d, mods, sizeof(mods));
        size_t timers = loop_timers(d->loop);
        log_info("state: %zu client%s, %s, %zu timer%s", d->n_clients, plural(d->n_clients), mods, timers,
                 plural(timers));
        client_dump_all(d);
}

static void on_signal(loop_io *io, uint32_t events) {
        struct signalfd_siginfo si;
        while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
                if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
                        log_info("signal %u: exiting", si.ssi_signo);
                        loop_quit(the_daemon.loop);
                } else if (si.ssi_signo == SIGHUP) {
                        config_reload(&the_daemon);
                } else if (si.ssi_signo == SIGUSR1) {
                        state_dump(&the_daemon);
                } else if (si.ssi_signo == SIGCHLD) {
                        observe_emit(&the_daemon, &(observe_ev){ .kind = OBSERVE_CHILD });
                }
        }
}

/* DIR/file into out; an over-long result is cut (runtime_dir_pick() bounds
 * DIR well below PATH_MAX, so it never is). */
static void path_in_dir(const ipcfd *d, const char *file, char *out, size_t size) {
        size_t n = str_copy(out, d->runtime_dir, size);
        if (n + 1 < size) {
                out[n] = '/';
                str_copy(out + n + 1, file, size - n - 1);
        }
}

int main(int argc, char **argv) {
        static const struct option opts[] = {
                { "runtime-dir", required_argument, NULL, 'd' },
                { "config", required_argument, NULL, 'c' },
                { "shared", no_argument, NULL, 's' },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                { "check-config", required_argument, NULL, 'C' },
                { "version", no_argument, NULL, 'V' },
                {},
        };
        const char *opt_dir = NULL, *opt_conf = NULL;
        bool shared = false;
        ipcfd *d = &the_daemon;
        char path[PATH_MAX + 64];
        int c, r, lock_fd = -1, exit_code = 1;

        while ((c = getopt_long(argc, argv, "d:c:svh", opts, NULL)) != -1) {
                switch (c) {
                case 'd': opt_dir = optarg; break;
                case 'c': opt_conf = optarg; break;
                case 's': shared = true; break;
                case 'v': log_verbose = true; break;
                case 'h': usage(stdout); return 0;
                case 'C': return optind < argc ? (usage(stderr), 2) : config_check(optarg, opt_dir);
                case 'V': printf("ipcfd %u.%u\n", ipcf_version() >> 16, ipcf_version() & 0xffff); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        /* An empty value (a script's unset variable) would fall back to
         * the user's own facility: name it instead. */
        if ((opt_dir && !*opt_dir) || (opt_conf && !*opt_conf)) {
                fprintf(stderr, "ipcfd: --%s: an empty path\n", opt_dir && !*opt_dir ? "runtime-dir" : "config");
                usage(stderr);
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        /* Started with 0, 1 or 2 closed (an autostart may do that), the
         * daemon's own sockets would land there and logs into them: fill
         * the holes with /dev/null first. */
        for (int fd = 0; fd < 3; fd++) {
                if (fcntl(fd, F_GETFD) < 0) {
                        int n = open("/dev/null", O_RDWR);
                        if (n >= 0 && n != fd) {
                                dup2(n, fd);
                                close(n);
                        }
                }
        }

        /* The object graph starts empty. */
        conf_init(&d->conf);
        d->listen_fd = -1;
        dlist_init(&d->clients);
        dlist_init(&d->users);
        d->uid = geteuid();
        d->gid = getegid();
        d->pid = getpid();
        d->start_ns = now_ns();

        /* 0: a socket from systemd; 1, 2: runtime dir and lock. */
        char handed[sizeof(((struct sockaddr_un *)NULL)->sun_path)];
        r = sdglue_take(&d->listen_fd, handed, sizeof(handed));
        if (r < 0)
                return 1;
        socket_handed = r > 0;
        if (socket_handed) {
                if (runtime_dir_of_socket(handed, opt_dir, d->runtime_dir, sizeof(d->runtime_dir)) < 0)
                        return 1;
        } else if (runtime_dir_pick(opt_dir, d->runtime_dir, sizeof(d->runtime_dir)) < 0) {
                fprintf(stderr, "ipcfd: runtime dir path too long\n");
                return 1;
        }
        if (runtime_dir_prepare(d->runtime_dir) < 0)
                return 1;
        /* Absolute from here on: it is handed to activated programs, which
         * may run elsewhere. */
        char abs_dir[PATH_MAX];
        if (realpath(d->runtime_dir, abs_dir) && strlen(abs_dir) < sizeof(d->runtime_dir))
                strcpy(d->runtime_dir, abs_dir);
        path_in_dir(d, "ipcfd.lock", path, sizeof(path));
        lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (lock_fd < 0) {
                fprintf(stderr, "ipcfd: %s: %s\n", path, strerror(errno));
                return 1;
        }
        if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK) {
                        fprintf(stderr, "ipcfd: another ipcfd already serves %s\n", d->runtime_dir);
                        return socket_handed ? 1 : 0;
                }
                fprintf(stderr, "ipcfd: lock %s: %s\n", path, strerror(errno));
                return 1;
        }

        /* 3: config. */
        if (opt_conf) {
                char err[512];
                if (config_load(opt_conf, d->runtime_dir, &d->conf, err, sizeof(err)) < 0) {
                        fprintf(stderr, "ipcfd: config %s: %s\n", opt_conf, err);
                        return 1;
                }
        }
        conf_path = opt_conf;
        shared_opt = shared;
        shared = shared || d->conf.shared;

        /* 4: limits. */
        caps_init(d);

        /* 5, 6: the socket, signals, the loop. */
        r = loop_new(&d->loop);
        if (r < 0) {
                fprintf(stderr, "ipcfd: epoll: %s\n", strerror(-r));
                goto out;
        }
        loop_timer_init(&d->accept_pause, client_accept_resume);
        if (modules_init(d) < 0)
                goto out;
        if (!socket_handed)
                d->listen_fd = socket_open(d, shared);
        if (d->listen_fd < 0)
                goto out;
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGCHLD); /* only for children without a pidfd */
        sigprocmask(SIG_BLOCK, &mask, NULL);
        sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sig_fd < 0 || loop_io_add(d->loop, &sig_io, sig_fd, EPOLLIN, on_signal) < 0 ||
            loop_io_add(d->loop, &d->listen_io, d->listen_fd, EPOLLIN, on_listen) < 0) {
                fprintf(stderr, "ipcfd: setup: %s\n", strerror(errno));
                goto out;
        }
        path_in_dir(d, "ipcfd.pid", path, sizeof(path));
        FILE *pf = fopen(path, "we");
        if (pf) {
                fprintf(pf, "%d\n", (int)d->pid);
                fclose(pf);
        }
        log_info("serving %s (%s%s)", d->runtime_dir, shared ? "shared" : "private",
                  socket_handed ? ", socket from systemd" : "");
        sdglue_ready(d->runtime_dir, shared);

        r = loop_run(d->loop);
        if (r < 0)
                log_error("epoll_wait: %s", strerror(-r));
        exit_code = r < 0 ? 1 : 0;
        sdglue_stopping();

out:
        /* Tear down in dependency order, telling nobody anything: flows in
         * other processes keep working without the daemon. */
        d->shutdown = true;
        if (d->loop) {
                modules_shutdown(d); /* in reverse order: broker sides before their flows */
                client_free_all(d);
                loop_timer_cancel(d->loop, &d->accept_pause);
        }
        if (d->listen_fd >= 0) {
                path_in_dir(d, CTL_SOCKET_NAME, path, sizeof(path));
                if (!socket_handed)
                        unlink(path);
                close(d->listen_fd);
        }
        path_in_dir(d, "ipcfd.pid", path, sizeof(path));
        if (exit_code == 0)
                unlink(path);
        safe_close(sig_fd);
        d->loop = loop_free(d->loop);
        conf_deinit(&d->conf);
        safe_close(lock_fd);
        return exit_code;
}
