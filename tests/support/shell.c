/*
 * shell.c — see shell.h. The output goes to an unlinked temporary file (not a
 * pipe: a command that prints more than a pipe holds while we wait would
 * block), read back once the command has ended.
 */
#include "support/shell.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <unistd.h>

/* What the child does: its own process group, stdin /dev/null, stdout and
 * stderr into the output file, then the shell. */
typedef struct sh_child {
        const char *cmd;
        int out;
} sh_child;

static void sh_exec(void *arg) {
        const sh_child *c = arg;
        setpgid(0, 0);
        int in = open("/dev/null", O_RDONLY);
        dup2(in, 0);
        dup2(c->out, 1);
        dup2(c->out, 2);
        execl("/bin/sh", "sh", "-c", c->cmd, (char *)NULL);
        _exit(127);
}

__attribute__((format(printf, 3, 0))) static int sh_run(char **ret_out, unsigned timeout_s,
                                                         const char *fmt, va_list ap) {
        char *cmd = NULL;
        if (vasprintf(&cmd, fmt, ap) < 0)
                abort();
        char path[] = "/tmp/ipcf-sh.XXXXXX";
        int out = mkstemp(path);
        if (out < 0)
                test_fail(__FILE__, __LINE__, "mkstemp: %s", strerror(errno));
        unlink(path);
        pid_t pid = test_fork(sh_exec, &(sh_child){ cmd, out });
        setpgid(pid, pid);
        int status = test_wait(pid, (int)timeout_s * 1000);
        kill(-pid, SIGKILL); /* whatever it left running */
        if (ret_out) {
                off_t len = lseek(out, 0, SEEK_END);
                char *buf = malloc((size_t)(len > 0 ? len : 0) + 1);
                ssize_t n = len > 0 ? pread(out, buf, (size_t)len, 0) : 0;
                buf[n > 0 ? n : 0] = 0;
                *ret_out = buf;
        }
        close(out);
        free(cmd);
        return status;
}

int test_sh(char **ret_out, unsigned timeout_s, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = sh_run(ret_out, timeout_s, fmt, ap);
        va_end(ap);
        return r;
}

char *test_sh_ok(const char *file, int line, const char *fmt, ...) {
        char *out = NULL, *cmd = NULL;
        va_list ap, ap2;
        va_start(ap, fmt);
        va_copy(ap2, ap);
        int r = sh_run(&out, 300, fmt, ap);
        va_end(ap);
        if (r != 0) {
                if (vasprintf(&cmd, fmt, ap2) < 0)
                        cmd = NULL;
                va_end(ap2);
                test_fail(file, line, "`%s` exited %d:\n%s", cmd ? cmd : fmt, r, out);
        }
        va_end(ap2);
        return out;
}

static void sh_exec_bg(void *cmd) {
        execl("/bin/sh", "sh", "-c", (const char *)cmd, (char *)NULL);
        _exit(127);
}

pid_t test_sh_bg(const char *fmt, ...) {
        char *cmd = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&cmd, fmt, ap) < 0)
                abort();
        va_end(ap);
        pid_t pid = test_fork(sh_exec_bg, cmd);
        free(cmd);
        return pid;
}

const char *test_scratch(const char *name) {
        static char buf[8][PATH_MAX];
        static unsigned next;
        char *b = buf[next++ % 8];
        const char *dir = getenv("TEST_SCRATCH");
        snprintf(b, PATH_MAX, "%s/%s", dir && *dir ? dir : "/tmp", name);
        return b;
}

char *test_built(const char *rel) {
        char *p = test_build_path(rel), *abs = realpath(p, NULL);
        if (!abs)
                test_fail(__FILE__, __LINE__, "%s: not built", p);
        free(p);
        return abs;
}

const char *test_build_abs(void) {
        static char dir[PATH_MAX];
        if (!dir[0]) {
                char *abs = test_built("");
                snprintf(dir, sizeof(dir), "%s", abs);
                free(abs);
        }
        return dir;
}

const char *test_install_root(void) {
        static char root[PATH_MAX];
        snprintf(root, sizeof(root), "%s", test_scratch("root"));
        return root;
}

void test_use_installed(const char *root, const char *runtime_dir) {
        char path[PATH_MAX + 32];
        snprintf(path, sizeof(path), "%s/usr/local/lib", root);
        setenv("LD_LIBRARY_PATH", path, 1);
        setenv("IPCF_RUNTIME_DIR", runtime_dir, 1);
        unsetenv("IPCF_NO_AUTOSTART");
        snprintf(path, sizeof(path), "%s/usr/local/bin/ipcfd", root);
        setenv("IPCF_DAEMON", path, 1);
}
