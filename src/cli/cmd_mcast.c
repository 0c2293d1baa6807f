/*
 * cmd_mcast.c — `ipcf mcast ...`: multicast groups from the shell
 * (docs/MODELS.md).
 *
 *   ipcf mcast create NAME [--slow block|drop|remove] [--max-msgs N]
 *   ipcf mcast destroy NAME
 *   ipcf mcast send NAME MSG...      join, send each MSG, leave
 *   ipcf mcast join NAME [-n COUNT] [-v]
 *                                    join; print what the others send, one per
 *                                    line, and send each line of stdin
 *   ipcf mcast ls
 *
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_mcast(int argc, char **argv);
void cli_ls_models(bool json);

static const char mcast_usage[] =
        "usage: ipcf mcast COMMAND ...\n\n"
        "Multicast groups: each message goes to every other member.\n"
        "  create NAME [--slow block|drop|remove] [--max-msgs N]\n"
        "                           what to do with a member too slow to keep up\n"
        "  destroy NAME             members end with reason \"group destroyed\"\n"
        "  send NAME MSG...         join, send each MSG, leave\n"
        "  join NAME [-n COUNT] [-v]\n"
        "                           print what others send (-v: sender pid first; lost\n"
        "                           messages are reported) and send each line of stdin\n"
        "  ls                       list mailboxes and multicast groups\n";

#define MCAST_LINE_MAX 65536

/* create NAME [--slow block|drop|remove] [--max-msgs N] */
static int mcast_create(int argc, char **argv) {
        if (argc < 2)
                return cli_usage("mcast", "create needs NAME");
        ipcf_mcast_opts o = { .size = sizeof(o) };
        for (int i = 2; i < argc; i += 2) {
                if (i + 1 >= argc)
                        return cli_usage("mcast", "'%s' needs a value", argv[i]);
                uint64_t v;
                if (!strcmp(argv[i], "--slow")) {
                        const char *s = argv[i + 1];
                        if (!strcmp(s, "block"))
                                o.slow = IPCF_MCAST_BLOCK;
                        else if (!strcmp(s, "drop"))
                                o.slow = IPCF_MCAST_DROP;
                        else if (!strcmp(s, "remove"))
                                o.slow = IPCF_MCAST_REMOVE;
                        else
                                return cli_usage("mcast", "bad policy '%s'", s);
                } else if (!strcmp(argv[i], "--max-msgs") &&
                           cli_parse_size(argv[i + 1], UINT32_MAX, &v) == 0) {
                        o.max_msgs = (uint32_t)v;
                } else {
                        return cli_usage("mcast", "bad option '%s'", argv[i]);
                }
        }
        int r = ipcf_mcast_create(argv[1], &o);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

/* send NAME MSG...: a member for the time of sending. */
static int mcast_send(int argc, char **argv) {
        if (argc < 3)
                return cli_usage("mcast", "send needs NAME and MSG");
        int h = ipcf_mcast_join(argv[1], NULL, 5000);
        if (h < 0)
                return cli_error(argv[1], h);
        int r = 0;
        for (int i = 2; i < argc && r == 0; i++) {
                ssize_t n = ipcf_mcast_send(h, argv[i], strlen(argv[i]), 10000);
                r = n < 0 ? (int)n : 0;
        }
        ipcf_dealloc(h, "left the group");
        return r < 0 ? cli_error("send", r) : CLI_EXIT_OK;
}

/* join NAME: poll the member's descriptor and stdin together; messages of
 * others go to stdout, stdin lines go to the group, losses are reported. */
static int mcast_join(int argc, char **argv) {
        if (argc < 2)
                return cli_usage("mcast", "join needs NAME");
        uint64_t count = UINT64_MAX;
        bool verbose = false;
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-v"))
                        verbose = true;
                else if (!strcmp(argv[i], "-n") && i + 1 < argc &&
                         cli_parse_uint(argv[i + 1], UINT64_MAX, &count) == 0)
                        i++;
                else
                        return cli_usage("mcast", "bad option '%s'", argv[i]);
        }
        int h = ipcf_mcast_join(argv[1], NULL, 5000);
        if (h < 0)
                return cli_error(argv[1], h);
        cli_catch_interrupts();
        char *buf = malloc(MCAST_LINE_MAX);
        if (!buf)
                return cli_error("join", -ENOMEM);
        int rc = CLI_EXIT_OK, fd = ipcf_fd(h);
        bool in_open = true;
        int64_t lost_seen = 0;
        char *line = NULL;
        size_t cap = 0;
        for (uint64_t k = 0; k < count && !cli_interrupted;) {
                struct pollfd p[2] = { { .fd = fd, .events = POLLIN },
                                       { .fd = 0, .events = POLLIN } };
                if (poll(p, in_open ? 2 : 1, 200) <= 0)
                        continue;
                if (p[1].revents && in_open) {
                        ssize_t n = getline(&line, &cap, stdin);
                        if (n <= 0) {
                                in_open = false;
                        } else {
                                if (line[n - 1] == '\n')
                                        n--;
                                ssize_t r = ipcf_mcast_send(h, line, (size_t)n, 10000);
                                if (r < 0) {
                                        rc = cli_error("send", (int)r);
                                        break;
                                }
                        }
                }
                if (!p[0].revents)
                        continue;
                ipcf_peer_info from;
                ssize_t n = ipcf_mcast_recv(h, buf, MCAST_LINE_MAX, 0, &from);
                int64_t lost = ipcf_mcast_lost(h);
                if (lost > lost_seen) {
                        fprintf(stderr, "ipcf: %lld message(s) lost (too slow)\n",
                                (long long)(lost - lost_seen));
                        lost_seen = lost;
                }
                if (n == -EAGAIN)
                        continue;
                if (n < 0) {
                        rc = n == -EPIPE ? CLI_EXIT_OK : cli_error("recv", (int)n);
                        if (n == -EPIPE) {
                                ipcf_reason why;
                                if (ipcf_end_reason(h, &why) == 0 && why.text[0])
                                        fprintf(stderr, "ipcf: %s\n", why.text);
                        }
                        break;
                }
                if (verbose)
                        printf("%d: ", (int)from.pid);
                fwrite(buf, 1, (size_t)n, stdout);
                putchar('\n');
                fflush(stdout);
                k++;
        }
        free(line);
        free(buf);
        ipcf_dealloc(h, "left the group");
        return rc;
}

/* `ipcf mcast SUBCOMMAND ...`: exit 0, 1 on failure, 2 on a usage error. */
int cmd_mcast(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(mcast_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        argc--;
        argv++;
        if (!strcmp(sub, "create"))
                return mcast_create(argc, argv);
        if (!strcmp(sub, "destroy")) {
                if (argc < 2)
                        return cli_usage("mcast", "destroy needs NAME");
                int r = ipcf_mcast_destroy(argv[1]);
                return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
        }
        if (!strcmp(sub, "send"))
                return mcast_send(argc, argv);
        if (!strcmp(sub, "join"))
                return mcast_join(argc, argv);
        if (!strcmp(sub, "ls")) {
                cli_ls_models(false);
                return CLI_EXIT_OK;
        }
        return cli_usage("mcast", "unknown command '%s'", sub);
}
