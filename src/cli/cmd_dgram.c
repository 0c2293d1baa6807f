/*
 * cmd_dgram.c — `ipcf dgram send|recv`: datagrams from the shell.
 *
 *   ipcf dgram send NAME [TEXT]          send TEXT (or stdin) as one datagram
 *                                        (256 KiB at most: longer is refused);
 *                                        -t MS waits that long for room (else
 *                                        a full queue drops it: exit 1).
 *   ipcf dgram recv NAME [-n N] [--echo] receive on NAME, print each datagram
 *                                        as "pid uid: text" lines; --echo
 *                                        answers each with itself.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"

static const char dgram_usage[] =
        "usage: ipcf dgram send NAME [TEXT] [-t|--timeout-ms MS]\n"
        "       ipcf dgram recv NAME [-n|--count N] [--echo]\n"
        "Send single datagrams to a name, or receive those sent to it.\n";

enum { OPT_ECHO = CLI_OPT_FIRST_PRIVATE };

static int send_option(void *ctx, int key, const char *value) {
        return cli_parse_uint(value, 0x7fffffff, ctx); /* -t */
}

static int dgram_send(int argc, char **argv) {
        static const cli_option options[] = { { "timeout-ms", 't', true }, { 0 } };
        uint64_t timeout = 0;
        const cli_spec spec = { .cmd = "dgram send", .usage = dgram_usage, .options = options,
                                .min_args = 1, .max_args = 2, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, send_option, &timeout, &args);
        if (st != CLI_PARSED)
                return st;
        const char *name = args.v[0];
        static char buf[256 * 1024];
        size_t len = 0;
        if (args.n > 1) {
                len = strlen(args.v[1]);
                if (len > sizeof(buf))
                        return cli_error("datagram", -EMSGSIZE);
                memcpy(buf, args.v[1], len);
        } else {
                ssize_t r = 0;
                while (len < sizeof(buf) && ((r = read(0, buf + len, sizeof(buf) - len)) > 0 ||
                                             (r < 0 && errno == EINTR)))
                        len += r > 0 ? (size_t)r : 0;
                char more;
                if (r < 0)
                        return cli_error("reading stdin", -errno);
                if (len == sizeof(buf) && read(0, &more, 1) > 0) /* longer than a datagram: not cut */
                        return cli_error("datagram", -EMSGSIZE);
        }
        int ep = ipcf_dgram_open(NULL, NULL);
        if (ep < 0)
                return cli_error("opening an endpoint", ep);
        ssize_t r = ipcf_dgram_send(ep, name, buf, len, (int)timeout);
        ipcf_dealloc(ep, NULL);
        return r < 0 ? cli_error_alloc(name, (int)r) : CLI_EXIT_OK;
}

typedef struct recv_cfg {
        uint64_t count;
        bool echo;
} recv_cfg;

static int recv_option(void *ctx, int key, const char *value) {
        recv_cfg *c = ctx;
        if (key == OPT_ECHO) {
                c->echo = true;
                return 0;
        }
        return cli_parse_uint(value, UINT32_MAX, &c->count);
}

static int dgram_recv(int argc, char **argv) {
        static const cli_option options[] = { { "count", 'n', true }, { "echo", OPT_ECHO, false }, { 0 } };
        recv_cfg cfg = { .count = UINT64_MAX }; /* -n 0: none, at once */
        const cli_spec spec = { .cmd = "dgram recv", .usage = dgram_usage, .options = options,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, recv_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        uint64_t count = cfg.count;
        int ep = ipcf_dgram_open(args.v[0], NULL);
        if (ep < 0)
                return cli_error(args.v[0], ep);
        char what[16 + IPCF_NAME_MAX];
        snprintf(what, sizeof(what), "dgram recv %s", args.v[0]);
        static char buf[256 * 1024];
        for (uint64_t n = 0; n < count; n++) {
                ipcf_dgram_src src;
                ssize_t r = ipcf_dgram_recv(ep, buf, sizeof(buf), -1, &src);
                if (r < 0)
                        return cli_error(what, (int)r);
                printf("%d %u: ", (int)src.from.pid, (unsigned)src.from.uid);
                fwrite(buf, 1, (size_t)r, stdout); /* all of it: a NUL does not end it */
                putchar('\n');
                if (cli_stdout_flush(what))
                        return CLI_EXIT_FAIL;
                if (cfg.echo)
                        ipcf_dgram_answer(ep, &src, buf, (size_t)r, 1000);
        }
        ipcf_dealloc(ep, NULL);
        return CLI_EXIT_OK;
}

int cmd_dgram(int argc, char **argv) {
        if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
                fputs(dgram_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        if (strcmp(argv[1], "send") == 0)
                return dgram_send(argc - 1, argv + 1);
        if (strcmp(argv[1], "recv") == 0)
                return dgram_recv(argc - 1, argv + 1);
        if (argv[1][0] == '-')
                return cli_usage("dgram", "unknown option '%s'", argv[1]);
        return cli_usage("dgram", "unknown action '%s'", argv[1]);
}
