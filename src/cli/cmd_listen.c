/*
 * cmd_listen.c — `ipcf listen NAME`: register NAME, accept a flow and serve
 * it, in one of three ways:
 *   (default) copy flow -> stdout and stdin -> flow (copy.c, poll-driven);
 *   --echo    send back every message (or byte) that arrives: the peer of
 *             `ipcf ping`; blocking reads/writes, so the library's spinning
 *             gives the lowest latency;
 *   --sink    read and drop everything: the peer of `ipcf perf`.
 * The flow ends when the peer deallocates (read -EPIPE): exit 0; with -k the
 * next flow is accepted instead. Flow options given here are requirements:
 * a request with another mode (--stream) or capacity (--capacity) is refused
 * with a reason; --timeout-ms bounds the wait for a flow (default: for ever).
 * --format (the default way only) cuts stdin into messages and writes what
 * arrives the same way (format.c); it needs MESSAGE mode, so a stream flow is
 * refused with a reason. -v notes each flow and, on long transfers, reports
 * progress once a second (progress.c).
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char listen_usage[] =
        "usage: ipcf listen NAME [-k] [--echo | --sink | --format=FORMAT] [-v] [flow options]\n\n"
        "Register NAME and serve the flows allocated to it: copy the flow to stdout\n"
        "and stdin to the flow (an empty message ends a direction, see docs/CLI.md).\n"
        "  -k, --keep           accept the next flow when one ends (default: exit)\n"
        "      --echo           send back what arrives instead (the peer of 'ipcf ping')\n"
        "      --sink           drop what arrives (the peer of 'ipcf perf')\n"
        "  -f, --format=FORMAT  raw (default): bytes as they come; line: a message per\n"
        "                       line; len: each message after its 4-byte big-endian\n"
        "                       length; hex: a message per line in hex digits\n"
        "  -v, --verbose        note each flow and its end on stderr, and progress\n"
        "                       once a second\n\n";

enum listen_mode { LISTEN_STDIO, LISTEN_ECHO, LISTEN_SINK };

typedef struct listen_cfg {
        const char *name;
        char what[IPCF_NAME_MAX + 16]; /* "listen NAME", for error lines */
        cli_flow_opts flow;
        enum listen_mode mode;
        const cli_format *format;
        bool keep, verbose;
        int in_fd;                     /* stdin, or -1: nothing to send */
} listen_cfg;

/* Why a request does not meet what listen was told to require, or NULL. */
static const char *qos_mismatch(const listen_cfg *cfg, const ipcf_qos *got) {
        const cli_flow_opts *want = &cfg->flow;
        if (cli_format_framed(cfg->format) && got->mode == IPCF_MODE_STREAM)
                return "message mode required";
        if (want->set_mode && want->qos.mode != got->mode)
                return want->qos.mode == IPCF_MODE_STREAM ? "stream mode required"
                                                          : "message mode required";
        if (want->set_capacity && want->qos.capacity != got->capacity) {
                switch (want->qos.capacity) {
                case IPCF_CAPACITY_ZERO: return "zero capacity required";
                case IPCF_CAPACITY_UNBOUNDED: return "unbounded capacity required";
                default: return "bounded capacity required";
                }
        }
        return NULL;
}

/* Wait for the next acceptable request and accept it. Returns the port-id
 * or a negative errno (not printed). */
static int accept_one(int reg, const listen_cfg *cfg) {
        ipcf_request req;
        for (;;) {
                int r = ipcf_request_next(reg, cfg->flow.timeout_ms, &req);
                if (r < 0)
                        return r;
                const char *why = qos_mismatch(cfg, &req.qos);
                if (why) {
                        cli_note(cfg->verbose, "%s: refused %s (pid %d): %s", cfg->what,
                                 req.from.name, (int)req.from.pid, why);
                        ipcf_request_refuse(reg, &req, why);
                        continue;
                }
                int port = ipcf_request_accept(reg, &req);
                if (port == -ECANCELED || port == -ENOENT)
                        continue; /* the requester gave up meanwhile */
                if (port >= 0 && cfg->verbose) {
                        char q[96];
                        cli_note(true, "%s: flow from %s (pid %d, uid %u): %s", cfg->what,
                                 req.from.name, (int)req.from.pid, (unsigned)req.from.uid,
                                 cli_qos_describe(q, sizeof(q), &req.qos));
                }
                return port;
        }
}

/* A buffer able to hold any message of the flow (STREAM: a good chunk). */
static char *flow_buffer(int port, size_t *ret_cap) {
        ipcf_qos q;
        size_t cap = 256u << 10;
        if (ipcf_qos_get(port, &q) == 0 && q.mode == IPCF_MODE_MESSAGE && q.max_msg_size)
                cap = q.max_msg_size;
        *ret_cap = cap;
        return malloc(cap);
}

/* --echo and --sink: blocking loop until the peer ends the flow, counting
 * into prog (whose reports bound the reads' waits). Returns 0 on a normal end
 * (-EPIPE) or the negative errno that ended it. */
static int serve_blocking(int port, bool echo, cli_progress *prog) {
        size_t cap;
        char *buf = flow_buffer(port, &cap);
        if (!buf)
                return -ENOMEM;
        ipcf_qos q;
        bool stream = ipcf_qos_get(port, &q) == 0 && q.mode == IPCF_MODE_STREAM;
        /* A sink sends nothing, ever: say so at once (the half-close marker),
         * without waiting — a ZERO-capacity flow may not take it now. */
        if (!echo && !stream)
                ipcf_write(port, "", 0, 0);
        int r = 0;
        for (;;) {
                ssize_t n = ipcf_read(port, buf, cap, cli_progress_timeout(prog, -1));
                cli_progress_tick(prog);
                if (n == -ETIMEDOUT || n == -EAGAIN)
                        continue; /* only with -v: a progress line was due */
                if (n == -EMSGSIZE) {
                        /* Larger than max_msg_size said; follow the flow. */
                        ssize_t need = ipcf_next_size(port, 0);
                        char *p = need > 0 ? realloc(buf, (size_t)need) : NULL;
                        if (!p) {
                                r = need < 0 ? (int)need : -ENOMEM;
                                break;
                        }
                        buf = p;
                        cap = (size_t)need;
                        continue;
                }
                if (n < 0) {
                        r = (int)n;
                        break;
                }
                if (n > 0)
                        cli_progress_received(prog, (size_t)n);
                /* Echo even empty messages: the peer's end marker comes back
                 * after all the echoes, which is what the peer waits for. */
                if (echo && (r = cli_flow_write_all(port, buf, (size_t)n, -1)) < 0)
                        break;
                if (echo && n > 0)
                        cli_progress_sent(prog, (size_t)n);
        }
        free(buf);
        return r == -EPIPE ? 0 : r;
}

/* Serve one accepted flow to its end; releases the port. 0 or -errno
 * (already printed). */
static int serve(int port, const listen_cfg *cfg) {
        int r;
        cli_progress progress;
        cli_progress_start(&progress, cfg->what, cfg->verbose);
        if (cfg->mode == LISTEN_STDIO) {
                cli_copy c = { .port = port, .in_fd = cfg->in_fd, .out_fd = 1,
                               .allocator = false, .linger_ms = -1, .what = cfg->what,
                               .verbose = cfg->verbose,
                               .end_with_peer = cfg->in_fd >= 0 && isatty(cfg->in_fd),
                               .format = cfg->format, .progress = &progress };
                return cli_copy_run(&c); /* prints its errors, deallocates */
        }
        r = serve_blocking(port, cfg->mode == LISTEN_ECHO, &progress);
        if (r == 0)
                cli_progress_end(&progress);
        if (r < 0)
                cli_error(cfg->what, r);
        ipcf_reason why;
        if (r == 0 && cfg->verbose && ipcf_end_reason(port, &why) == 0)
                cli_note(true, "%s: flow ended: %s", cfg->what, why.text[0] ? why.text : "-");
        ipcf_dealloc(port, r < 0 ? "error" : NULL);
        return r;
}

enum { OPT_ECHO = CLI_OPT_FIRST_PRIVATE, OPT_SINK };

static int listen_option(void *ctx, int key, const char *value) {
        listen_cfg *cfg = ctx;
        switch (key) {
        case 'f':
                if (!(cfg->format = cli_format_find(value)))
                        return -EINVAL;
                break;
        case 'k': cfg->keep = true; break;
        case 'v': cfg->verbose = true; break;
        case OPT_ECHO: cfg->mode = LISTEN_ECHO; break;
        case OPT_SINK: cfg->mode = LISTEN_SINK; break;
        }
        return 0;
}

int cmd_listen(int argc, char **argv) {
        static const cli_option options[] = {
                { "keep", 'k', false },
                { "verbose", 'v', false },
                { "echo", OPT_ECHO, false },
                { "sink", OPT_SINK, false },
                { "format", 'f', true },
                { 0 },
        };
        listen_cfg cfg = { .mode = LISTEN_STDIO, .format = cli_format_find("raw") };
        cli_flow_opts_init(&cfg.flow, -1);
        const cli_spec spec = { .cmd = "listen", .usage = listen_usage, .options = options,
                                .flow = &cfg.flow, .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, listen_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        cfg.name = args.v[0];
        if (cli_format_framed(cfg.format) && cfg.mode != LISTEN_STDIO)
                return cli_usage("listen", "--format applies to the copy, not to --echo or --sink");
        if (cli_format_framed(cfg.format) && cfg.flow.qos.mode == IPCF_MODE_STREAM)
                return cli_usage("listen", "--format=%s needs message mode, not --stream",
                                 cli_format_name(cfg.format));
        snprintf(cfg.what, sizeof(cfg.what), "listen %.127s", cfg.name);

        int reg = ipcf_register(cfg.name, NULL);
        if (reg < 0)
                return cli_error(cfg.what, reg);
        cli_note(cfg.verbose, "%s: registered", cfg.what);

        /* A background job reading its terminal would be stopped (SIGTTIN):
         * `ipcf listen x > file &` then just has nothing to send. */
        cfg.in_fd = 0;
        if (isatty(0) && tcgetpgrp(0) != getpgrp())
                cfg.in_fd = -1;
        if (cfg.mode == LISTEN_STDIO)
                cli_catch_interrupts(); /* ^C ends the flow with a reason */

        int status = CLI_EXIT_OK;
        do {
                int port = accept_one(reg, &cfg);
                if (port < 0) {
                        status = cli_error(cfg.what, port);
                        break;
                }
                int r = serve(port, &cfg);
                fflush(stdout);
                /* A ^C or SIGTERM that came while the flow was ending for
                 * another reason (the peer's end already read) was only
                 * noted: honour it here, or -k waits for the next flow
                 * with the signal swallowed */
                if (r == -EINTR || cli_interrupted) {
                        status = CLI_EXIT_INTERRUPTED;
                        break;
                }
                if (r < 0)
                        status = CLI_EXIT_FAIL;
        } while (cfg.keep);
        ipcf_dealloc(reg, NULL);
        return status;
}
