/*
 * cmd_call.c — `ipcf call NAME` and `ipcf serve NAME -- COMMAND`: service
 * calls from the shell.
 *
 *   ipcf call NAME [-t MS]           the request is stdin, the reply goes to
 *                                    stdout; a failed call prints the
 *                                    service's code and exits 1.
 *   ipcf serve NAME [-n N] -- CMD..  inetd-style: for each request, run CMD
 *                                    with the request on its stdin; its stdout
 *                                    is the reply, a non-zero exit status fails
 *                                    the call with that code. The caller's
 *                                    stamp is in the environment:
 *                                    IPCF_CALLER_PID, _UID, _GID, _NAME.
 * Requests are served one at a time, in arrival order across callers.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"

/* Read all of fd into buf (cap bytes). Returns the length, or -EMSGSIZE if
 * there is more, or -errno. */
static ssize_t read_all(int fd, char *buf, size_t cap) {
        size_t n = 0;
        for (;;) {
                ssize_t r = read(fd, buf + n, cap - n);
                if (r == 0)
                        return (ssize_t)n;
                if (r < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                n += (size_t)r;
                if (n == cap) {
                        char extra;
                        ssize_t more = read(fd, &extra, 1);
                        return more > 0 ? -EMSGSIZE : (ssize_t)n;
                }
        }
}

static int timeout_option(void *ctx, int key, const char *value) {
        uint64_t *t = ctx;
        return cli_parse_uint(value, 0x7fffffff, t) < 0 || *t == 0 ? -EINVAL : 0;
}

int cmd_call(int argc, char **argv) {
        static const cli_option options[] = { { "timeout-ms", 't', true }, { 0 } };
        uint64_t timeout = 5000;
        const cli_spec spec = {
                .cmd = "call",
                .usage = "usage: ipcf call NAME [-t|--timeout-ms MS]\n"
                         "Call service NAME: the request is stdin, the reply goes to stdout.\n",
                .options = options, .min_args = 1, .max_args = 1, .args_name = "NAME", .first_is_name = true,
        };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, timeout_option, &timeout, &args);
        if (st != CLI_PARSED)
                return st;
        const char *name = args.v[0];
        char what[IPCF_NAME_MAX + 8];
        snprintf(what, sizeof(what), "call %s", name);
        static char req[IPCF_CALL_MAX], reply[IPCF_CALL_MAX];
        ssize_t n = read_all(0, req, sizeof(req));
        if (n < 0)
                return cli_error("reading the request", (int)n);
        int code = 0;
        ssize_t r = ipcf_call(name, req, (size_t)n, reply, sizeof(reply), (int)timeout, &code);
        if (r == -EREMOTEIO)
                return cli_fail("call %s: the service failed it with code %d", name, code);
        if (r < 0)
                return cli_error_alloc(what, (int)r);
        if (cli_write_all(1, reply, (size_t)r) < 0)
                return cli_fail("writing the reply: %s", strerror(errno));
        return CLI_EXIT_OK;
}

/* Run argv with the request on its stdin; collect its stdout into out.
 * Returns the reply length, or -(256 + exit status) for a failed command,
 * or -errno. */
static ssize_t run_handler(char **argv, const ipcf_call_req *req, const char *in, size_t in_len,
                           char *out, size_t cap) {
        int to[2], from[2];
        if (pipe2(to, O_CLOEXEC) < 0)
                return -errno;
        if (pipe2(from, O_CLOEXEC) < 0) {
                close(to[0]);
                close(to[1]);
                return -errno;
        }
        pid_t pid = fork();
        if (pid == 0) {
                char v[64];
                dup2(to[0], 0);
                dup2(from[1], 1);
                snprintf(v, sizeof(v), "%d", (int)req->from.pid);
                setenv("IPCF_CALLER_PID", v, 1);
                snprintf(v, sizeof(v), "%u", (unsigned)req->from.uid);
                setenv("IPCF_CALLER_UID", v, 1);
                snprintf(v, sizeof(v), "%u", (unsigned)req->from.gid);
                setenv("IPCF_CALLER_GID", v, 1);
                setenv("IPCF_CALLER_NAME", req->from.name, 1);
                signal(SIGPIPE, SIG_DFL); /* ours is ignored (main.c): not the command's */
                execvp(argv[0], argv);
                _exit(127);
        }
        close(to[0]);
        close(from[1]);
        /* Requests are small (<= 256 KiB): writing all before reading is safe
         * only if the command reads its input first; write from a child to be
         * safe with commands that answer while reading. */
        pid_t writer = pid > 0 ? fork() : -1;
        if (writer == 0) {
                close(from[0]);
                cli_write_all(to[1], in, in_len);
                _exit(0);
        }
        close(to[1]);
        ssize_t n = pid > 0 ? read_all(from[0], out, cap) : -errno;
        close(from[0]);
        int st = 0;
        if (writer > 0)
                waitpid(writer, NULL, 0);
        /* A reply too long (-EMSGSIZE) fails the call with 255 whatever the
         * command's status: it may have been killed by SIGPIPE when we
         * stopped reading, or have exited 0 with the rest in the pipe. */
        if (pid > 0 && waitpid(pid, &st, 0) > 0 && n != -EMSGSIZE && !(WIFEXITED(st) && WEXITSTATUS(st) == 0))
                return -(256 + (WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st)));
        return n;
}

static int count_option(void *ctx, int key, const char *value) {
        return cli_parse_uint(value, UINT32_MAX, ctx);
}

int cmd_serve(int argc, char **argv) {
        static const cli_option options[] = { { "count", 'n', true }, { 0 } };
        uint64_t count = UINT64_MAX; /* -n 0: none, at once */
        const cli_spec spec = {
                .cmd = "serve",
                .usage = "usage: ipcf serve NAME [-n|--count N] -- COMMAND [ARGS...]\n"
                         "Serve calls to NAME: run COMMAND for each request (stdin: the request,\n"
                         "stdout: the reply, non-zero exit: the call fails with that code).\n"
                         "The caller is in IPCF_CALLER_PID, IPCF_CALLER_UID, IPCF_CALLER_GID,\n"
                         "IPCF_CALLER_NAME. -n: stop after N requests.\n",
                .options = options, .min_args = 1, .max_args = -1, .args_name = "NAME", .first_is_name = true,
        };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, count_option, &count, &args);
        if (st != CLI_PARSED)
                return st;
        /* Options and NAME come before "--"; the command after it. */
        if (args.n_before_dashdash < 0 || args.n == args.n_before_dashdash)
                return cli_usage("serve", "a COMMAND expected after --");
        if (args.n_before_dashdash != 1)
                return cli_usage("serve", "one NAME expected before --");
        const char *name = args.v[0];
        char what[IPCF_NAME_MAX + 8];
        snprintf(what, sizeof(what), "serve %s", name);
        char **cmd = args.v + 1;
        args.v[args.n] = NULL; /* argv's own terminator slot, or a spent one */
        int svc = ipcf_service(name, NULL);
        if (svc < 0)
                return cli_error(what, svc);
        static char req[IPCF_CALL_MAX], reply[IPCF_CALL_MAX];
        for (uint64_t served = 0; served < count; served++) {
                ipcf_call_req r;
                ssize_t n = ipcf_service_next(svc, req, sizeof(req), -1, &r);
                if (n < 0)
                        return cli_error("taking a request", (int)n);
                ssize_t m = run_handler(cmd, &r, req, (size_t)n, reply, sizeof(reply));
                int e = m >= 0 ? ipcf_service_reply(svc, &r, reply, (size_t)m, 5000)
                      : m <= -256 ? ipcf_service_fail(svc, &r, (int)(-m - 256), 5000)
                                  : ipcf_service_fail(svc, &r, 255, 5000);
                if (e < 0 && e != -ECANCELED && e != -EPIPE && e != -ECONNRESET)
                        return cli_error("answering", e);
        }
        ipcf_dealloc(svc, NULL);
        return CLI_EXIT_OK;
}
