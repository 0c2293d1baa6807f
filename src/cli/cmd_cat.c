/*
 * cmd_cat.c — `ipcf cat NAME`: allocate a flow to NAME and copy stdin -> flow
 * and flow -> stdout, like netcat. At stdin's end it sends the end marker
 * (MESSAGE mode), keeps copying what the peer sends until the peer's marker,
 * then deallocates with reason "eof" (copy.c describes the convention); -q
 * bounds that wait for peers that never send a marker. --format cuts stdin
 * into messages and writes what arrives the same way (format.c); -v notes the
 * flow and reports progress once a second on long transfers (progress.c).
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char cat_usage[] =
        "usage: ipcf cat NAME [-q SECONDS] [--format=FORMAT] [-v] [flow options]\n\n"
        "Allocate a flow to NAME; copy stdin to it and what arrives to stdout.\n"
        "At the end of stdin, wait for the peer to finish too, then end the flow.\n"
        "  -q, --linger=SECONDS  after stdin ends, wait at most this long for the peer\n"
        "  -f, --format=FORMAT   raw (default): bytes as they come; line: a message per\n"
        "                        line; len: each message after its 4-byte big-endian\n"
        "                        length; hex: a message per line in hex digits\n"
        "  -v, --verbose         note the flow on stderr, and progress once a second\n\n";

/* ipcf cat NAME: parse, allocate, then the copy loop as the allocating side
 * (it ends the flow). Exit 0 when everything was copied both ways. */
typedef struct cat_cfg {
        double linger_s;
        bool verbose;
        const cli_format *format;
} cat_cfg;

static int cat_option(void *ctx, int key, const char *value) {
        cat_cfg *c = ctx;
        if (key == 'v')
                c->verbose = true;
        else if (key == 'q' && cli_parse_seconds(value, &c->linger_s) < 0)
                return -EINVAL;
        else if (key == 'f' && !(c->format = cli_format_find(value)))
                return -EINVAL;
        return 0;
}

int cmd_cat(int argc, char **argv) {
        static const cli_option options[] = {
                { "linger", 'q', true },
                { "verbose", 'v', false },
                { "format", 'f', true },
                { 0 },
        };
        cli_flow_opts fo;
        cli_flow_opts_init(&fo, 10000);
        cat_cfg cfg = { .linger_s = -1, .format = cli_format_find("raw") };
        const cli_spec spec = { .cmd = "cat", .usage = cat_usage, .options = options, .flow = &fo,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, cat_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        double linger_s = cfg.linger_s;
        bool verbose = cfg.verbose;
        const char *name = args.v[0];
        if (cli_format_framed(cfg.format) && fo.qos.mode == IPCF_MODE_STREAM)
                return cli_usage("cat", "--format=%s needs message mode, not --stream",
                                 cli_format_name(cfg.format));
        char what[IPCF_NAME_MAX + 16];
        snprintf(what, sizeof(what), "cat %.127s", name);

        int port = cli_flow_alloc("cat", name, &fo);
        if (port < 0)
                return CLI_EXIT_FAIL;
        if (verbose) {
                ipcf_qos q;
                char d[96];
                if (ipcf_qos_get(port, &q) == 0)
                        cli_note(true, "%s: flow allocated: %s", what, cli_qos_describe(d, sizeof(d), &q));
        }
        /* -q absent: wait for the peer's end marker as long as it takes. */
        cli_progress progress;
        cli_progress_start(&progress, what, verbose);
        cli_copy c = { .port = port, .in_fd = 0, .out_fd = 1, .allocator = true,
                       .linger_ms = linger_s < 0 ? -1 : (int)(linger_s * 1000), .what = what,
                       .verbose = verbose, .format = cfg.format, .progress = &progress };
        cli_catch_interrupts();
        int r = cli_copy_run(&c);
        return r == -EINTR ? CLI_EXIT_INTERRUPTED : r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
