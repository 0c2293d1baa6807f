/*
 * activation.c — start programs on demand (see activation.h).
 *
 * The child is started with posix_spawn() (vfork-like: cheap even for a big
 * daemon, and it reports an exec failure synchronously), its signal mask
 * cleared and dispositions reset (the daemon blocks SIGTERM etc. for its
 * signalfd, and a mask survives exec). A pidfd then tells the loop when it
 * exits; waitpid() reaps it right there, so no zombie is ever left and no
 * SIGCHLD handler is needed.
 */
#include "daemon/names/activation.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "daemon/core/log.h"
#include "daemon/core/observe.h"
#include "daemon/flows/alloc.h"
#include "daemon/flows/resolve.h"
#include "daemon/names/registry.h"

extern char **environ;

typedef struct activation {
        ipcfd *d;
        struct dlist link;             /* activations */
        char name[IPCF_NAME_MAX + 1];
        pid_t pid;
        int pidfd;
        loop_io io;
        loop_timer timer;
        bool starting;                 /* waiting for the name to be registered */
        uint32_t timeout_ms;           /* the rule's activate_timeout_ms at start */
        struct dlist waiting;          /* alloc.hold_link */
} activation;

/* Children of one name alive at once (starting, or started earlier and
 * still running). */
#define ACTIVATION_PER_NAME_MAX 8
/* Children alive at once in all: at most the descriptor share (each holds
 * a pidfd), and this. */
#define ACTIVATIONS_MAX 1024

static struct dlist activations = DLIST_INIT(activations); /* activation.link */
static size_t n_activations;

static const resolver activation_resolver;

static void activation_on_exit(loop_io *io, uint32_t events);
static void activation_check(activation *act);
static void activation_on_timer(loop_timer *t);

/* Fail every allocation waiting on act with err and why (the requester
 * gets the text: ipcf_alloc's ret_reason), and stop waiting. */
static void activation_fail_waiting(activation *act, int err, const char *why) {
        act->starting = false;
        loop_timer_cancel(act->d->loop, &act->timer);
        dlist_for_each_safe(pos, tmp, &act->waiting)
                alloc_fail(dlist_entry(pos, alloc, hold_link), err, why, 0);
}

static void activation_free(activation *act) {
        loop_timer_cancel(act->d->loop, &act->timer);
        loop_io_del(act->d->loop, &act->io);
        act->pidfd = safe_close(act->pidfd);
        dlist_del(&act->link);
        n_activations--;
        loop_defer_free(act->d->loop, act);
}

/* The environment of the child: the daemon's, with the facility's variables
 * set. Returns a malloc'ed array whose strings are the environ's or vars'. */
static char **activation_env(char *vars[], size_t n_vars) {
        size_t n = 0;
        while (environ && environ[n])
                n++;
        char **env = calloc(n + n_vars + 1, sizeof(*env));
        if (!env)
                return NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                bool replaced = false;
                for (size_t j = 0; j < n_vars; j++) {
                        size_t klen = (size_t)(strchr(vars[j], '=') - vars[j]) + 1;
                        if (strncmp(environ[i], vars[j], klen) == 0)
                                replaced = true;
                }
                if (!replaced)
                        env[k++] = environ[i];
        }
        for (size_t j = 0; j < n_vars; j++)
                env[k++] = vars[j];
        env[k] = NULL;
        return env;
}

/* Spawn /bin/sh -c cmd. Returns the pid or -errno. */
static pid_t activation_spawn(ipcfd *d, const char *cmd, const char *name) {
        char v_dir[PATH_MAX + 32], v_name[IPCF_NAME_MAX + 32];
        char v_noauto[] = "IPCF_NO_AUTOSTART=1";
        snprintf(v_dir, sizeof(v_dir), "IPCF_RUNTIME_DIR=%s", d->runtime_dir);
        snprintf(v_name, sizeof(v_name), "IPCF_ACTIVATED_NAME=%s", name);
        char *vars[] = { v_dir, v_noauto, v_name };
        char **env = activation_env(vars, ARRAY_SIZE(vars));
        if (!env)
                return -ENOMEM;

        posix_spawn_file_actions_t fa;
        posix_spawnattr_t attr;
        sigset_t none, all;
        sigemptyset(&none);
        sigfillset(&all);
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &all);
        /* Its own process group, so a start that times out can be stopped
         * whole (the shell and whatever it started). */
        posix_spawnattr_setpgroup(&attr, 0);
        posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                POSIX_SPAWN_SETPGROUP);

        char *argv[] = { (char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL };
        pid_t pid;
        int r = posix_spawn(&pid, "/bin/sh", &fa, &attr, argv, env);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&attr);
        free(env);
        return r ? -r : pid;
}

/* Park a on the activation of its name, starting one if none is starting.
 * Returns 0 (a waits), or -errno with why (for the requester) filled:
 * -ENOEXEC the program cannot be started, -EBUSY too many activations. */
static int activation_join(ipcfd *d, const conf_rule *rule, alloc *a, char *why, size_t why_size) {
        activation *act = NULL;
        unsigned live = 0;
        dlist_for_each(pos, &activations) {
                activation *x = dlist_entry(pos, activation, link);
                if (strcmp(x->name, a->name) != 0)
                        continue;
                live++;
                if (x->starting) {
                        act = x;
                        break;
                }
        }
        if (!act) {
                /* Bounds: children still alive (started before, detached)
                 * count too, so repeated failing starts cannot pile up
                 * processes. */
                if (live >= ACTIVATION_PER_NAME_MAX) {
                        snprintf(why, why_size, "activation: %u programs started for this name still run",
                                 live);
                        return -EBUSY;
                }
                if (n_activations >= MIN(d->fd_share, (size_t)ACTIVATIONS_MAX)) {
                        snprintf(why, why_size, "activation: too many programs being started");
                        return -EBUSY;
                }
                act = calloc(1, sizeof(*act));
                if (!act) {
                        snprintf(why, why_size, "activation: out of memory");
                        return -ENOMEM;
                }
                act->d = d;
                str_copy(act->name, a->name, sizeof(act->name));
                dlist_init(&act->waiting);
                loop_timer_init(&act->timer, activation_on_timer);
                act->pidfd = -1;
                pid_t pid = activation_spawn(d, rule->activate, a->name);
                if (pid < 0) {
                        log_error("activation of %s: spawn: %s", a->name, strerror((int)-pid));
                        snprintf(why, why_size, "activation: cannot start /bin/sh: %s",
                                 strerror((int)-pid));
                        free(act);
                        return -ENOEXEC;
                }
                act->pid = pid;
                act->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
                /* Without pidfds (a kernel older than 5.3, or valgrind), the
                 * SIGCHLD on the daemon's signalfd does the same job:
                 * activation_on_child(). */
                bool no_pidfd = act->pidfd < 0 && (errno == ENOSYS || errno == EPERM);
                if ((act->pidfd < 0 && !no_pidfd) ||
                    (act->pidfd >= 0 && loop_io_add(d->loop, &act->io, act->pidfd, EPOLLIN,
                                                    activation_on_exit) < 0) ||
                    loop_timer_arm(d->loop, &act->timer,
                                   now_ns() + (uint64_t)rule->activate_timeout_ms * 1000000u) < 0) {
                        log_error("activation of %s: cannot watch pid %d", a->name, (int)pid);
                        snprintf(why, why_size, "activation: cannot watch the started program");
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        loop_io_del(d->loop, &act->io);
                        loop_timer_cancel(d->loop, &act->timer);
                        safe_close(act->pidfd);
                        free(act);
                        return -ENOEXEC;
                }
                act->starting = true;
                act->timeout_ms = rule->activate_timeout_ms;
                dlist_add_tail(&activations, &act->link);
                n_activations++;
                log_debug("activation of %s: started pid %d: %s", a->name, (int)pid, rule->activate);
        }
        alloc_hold(a, &activation_resolver, act, &act->waiting);
        return 0;
}

/* The resolver: a name no resolver before took, whose rule says how to
 * start its program. */
static int activation_resolve(ipcfd *d, alloc *a) {
        const conf_rule *rule = conf_match(&d->conf, a->name);
        if (!rule || !rule->activate)
                return RESOLVE_NEXT;
        char why[IPCF_REASON_MAX + 1];
        int r = activation_join(d, rule, a, why, sizeof(why));
        if (r < 0)
                alloc_fail(a, r, why, 0); /* with the reason: taken (a is gone) */
        return 0;
}

static const resolver activation_resolver = {
        .name = "activation",
        .rank = RESOLVE_RANK_ACTIVATION,
        .roles = RESOLVE_ROLE(CTL_ROLE_FLOW) | RESOLVE_ROLE(CTL_ROLE_CALL) | RESOLVE_ROLE(CTL_ROLE_DGRAM),
        .resolve = activation_resolve,
};

/* A name changed: if it is now registered, the program started for it did
 * its job. Only an exact name match counts: a program started for
 * "printer-2" that registers "printer" does not satisfy allocations of
 * "printer-2". The waiting allocations are resolved again by the resolvers
 * before this one. */
static void activation_on_name(ipcfd *d, const observe_ev *ev) {
        const char *name = ev->name;
        dlist_for_each(pos, &activations) {
                activation *act = dlist_entry(pos, activation, link);
                if (!act->starting || strcmp(act->name, name) != 0 || !registry_has(d, name))
                        continue;
                act->starting = false;
                loop_timer_cancel(d->loop, &act->timer);
                log_debug("activation of %s: registered", name);
                dlist_for_each_safe(p2, t2, &act->waiting) {
                        alloc *a = dlist_entry(p2, alloc, hold_link);
                        alloc_unhold(a);
                        int r = alloc_resolve(a, &activation_resolver);
                        if (r != 0)
                                alloc_fail(a, r == RESOLVE_NEXT ? -EBUSY : r,
                                           "activation: the started program's registration took no request", 0);
                }
        }
}

/* The pidfd is readable: the child exited (it is a zombie until reaped). */
static void activation_on_exit(loop_io *io, uint32_t events) {
        activation_check(container_of(io, activation, io));
}

/* SIGCHLD: reap children watched without a pidfd. */
static void activation_on_child(ipcfd *d, const observe_ev *ev) {
        dlist_for_each_safe(pos, tmp, &activations) {
                activation *act = dlist_entry(pos, activation, link);
                if (act->pidfd < 0)
                        activation_check(act);
        }
}

/* Reap act's child if it has exited, and act on it. */
static void activation_check(activation *act) {
        int st = 0;
        pid_t r = waitpid(act->pid, &st, WNOHANG);
        if (r == 0)
                return; /* not yet */
        if (act->starting) {
                char why[IPCF_REASON_MAX + 1];
                /* 127 and 126 are the shell's: the command was not found, or
                 * could not be executed. */
                if (WIFEXITED(st))
                        snprintf(why, sizeof(why),
                                 "activation: the program exited with status %d%s before registering the name",
                                 WEXITSTATUS(st),
                                 WEXITSTATUS(st) == 127   ? " (command not found)"
                                 : WEXITSTATUS(st) == 126 ? " (command not executable)"
                                                          : "");
                else
                        snprintf(why, sizeof(why),
                                 "activation: the program was killed by signal %d before registering the name",
                                 WTERMSIG(st));
                log_error("activation of %s: pid %d: %s", act->name, (int)act->pid, why);
                activation_fail_waiting(act, -ENOEXEC, why);
        } else {
                log_debug("activation of %s: pid %d exited", act->name, (int)act->pid);
        }
        activation_free(act);
}

static void activation_on_timer(loop_timer *t) {
        activation *act = container_of(t, activation, timer);
        log_error("activation of %s: pid %d did not register in %s; stopping it", act->name,
                  (int)act->pid, "time");
        /* The start failed: stop the program (its whole process group) so
         * failed starts do not accumulate; it stays watched until it exits.
         * The next allocation starts it afresh. */
        if (kill(-act->pid, SIGTERM) < 0)
                kill(act->pid, SIGTERM);
        char why[IPCF_REASON_MAX + 1];
        snprintf(why, sizeof(why), "activation: the program did not register the name within %u ms (stopped)",
                 (unsigned)act->timeout_ms);
        activation_fail_waiting(act, -ETIMEDOUT, why);
}

/* Forget every activation (daemon shutdown; the children keep running). */
static void activation_shutdown(ipcfd *d) {
        dlist_for_each_safe(pos, tmp, &activations) {
                activation *act = dlist_entry(pos, activation, link);
                dlist_for_each_safe(p2, t2, &act->waiting)
                        alloc_unhold(dlist_entry(p2, alloc, hold_link));
                activation_free(act);
        }
}

static int activation_init(ipcfd *d) {
        int r = resolver_add(&activation_resolver);
        if (r == 0)
                r = observe(d, OBSERVE_NAME_CHANGED, activation_on_name);
        if (r == 0)
                r = observe(d, OBSERVE_CHILD, activation_on_child);
        return r;
}

static void activation_dump(ipcfd *d, char *buf, size_t size) {
        snprintf(buf, size, "%zu activation%s", n_activations, plural(n_activations));
}

const daemon_module activation_module = {
        .name = "activation",
        .init = activation_init,
        .shutdown = activation_shutdown,
        .dump = activation_dump,
};
