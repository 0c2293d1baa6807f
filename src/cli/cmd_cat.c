/*
 * cmd_cat.c — `ipcf cat NAME`: allocate a flow to NAME and copy stdin -> flow
 * and flow -> stdout, like netcat. At stdin's end it sends the end marker
 * (MESSAGE mode), keeps copying what the peer sends until the peer's marker,
 * then deallocates with reason "eof" (copy.c describes the convention); -q
 * bounds that wait for peers that never send a marker.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char cat_usage[] =
        "usage: ipcf cat NAME [-q SECONDS] [-v] [flow options]\n\n"
        "Allocate a flow to NAME; copy stdin to it and what arrives to stdout.\n"
        "At the end of stdin, wait for the peer to finish too, then end the flow.\n"
        "  -q, --linger=SECONDS  after stdin ends, wait at most this long for the peer\n"
        "  -v, --verbose         note the flow's characteristics on stderr\n\n";

/* ipcf cat NAME: parse, allocate, then the copy loop as the allocating side
 * (it ends the flow). Exit 0 when everything was copied both ways. */
int cmd_cat(int argc, char **argv) {
        static const struct option longopts[] = {
                CLI_FLOW_LONGOPTS,
                { "linger", required_argument, NULL, 'q' },
                { "verbose", no_argument, NULL, 'v' },
                { 0 },
        };
        cli_flow_opts fo;
        cli_flow_opts_init(&fo, 10000);
        double linger_s = -1;
        bool verbose = false;
        int opt;
        cli_getopt_reset();
        while ((opt = getopt_long(argc, argv, ":q:vh", longopts, NULL)) != -1) {
                int r = cli_flow_opt("cat", opt, optarg, &fo);
                if (r < 0)
                        return CLI_EXIT_USAGE;
                if (r > 0)
                        continue;
                switch (opt) {
                case 'q':
                        if (cli_parse_seconds(optarg, &linger_s) < 0)
                                return cli_usage("cat", "bad value for --linger: '%s'", optarg);
                        break;
                case 'v': verbose = true; break;
                case 'h':
                case CLI_OPT_HELP:
                        fputs(cat_usage, stdout);
                        fputs(cli_flow_opts_help, stdout);
                        return CLI_EXIT_OK;
                default: return cli_bad_option("cat", opt, argv);
                }
        }
        if (optind + 1 != argc)
                return cli_usage("cat", optind < argc ? "one NAME expected" : "NAME missing");
        const char *name = argv[optind];
        if (cli_name_check("cat", name))
                return CLI_EXIT_USAGE;
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
        cli_copy c = { .port = port, .in_fd = 0, .out_fd = 1, .allocator = true,
                       .linger_ms = linger_s < 0 ? -1 : (int)(linger_s * 1000), .what = what };
        cli_catch_interrupts();
        int r = cli_copy_run(&c);
        return r == -EINTR ? CLI_EXIT_INTERRUPTED : r < 0 ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
