/*
 * cmd_watch.c — `ipcf watch NAME... [-n COUNT]`: print the facility's
 * notifications for these names (up, down) as they happen, one per line,
 * until interrupted or COUNT events (docs/MODELS.md). A name already up is
 * reported at once, so `ipcf watch svc -n 1` waits until svc is reachable.
 *
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <string.h>

int cmd_watch(int argc, char **argv);

static const char watch_usage[] =
        "usage: ipcf watch NAME... [-n COUNT]\n\n"
        "Print when the names appear (registered, or a mailbox/group created) and\n"
        "disappear, one line per event, until ^C or COUNT events.\n";

int cmd_watch(int argc, char **argv) {
        uint64_t count = UINT64_MAX;
        int names = 0;
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(watch_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-n")) {
                        if (i + 1 >= argc || cli_parse_uint(argv[i + 1], UINT64_MAX, &count) < 0)
                                return cli_usage("watch", "-n needs a count");
                        i++;
                        continue;
                }
                int r = ipcf_watch(argv[i]);
                if (r < 0)
                        return cli_error(argv[i], r);
                names++;
        }
        if (!names)
                return cli_usage("watch", "no NAME given");
        cli_catch_interrupts();
        for (uint64_t k = 0; k < count && !cli_interrupted;) {
                ipcf_event ev;
                int r = ipcf_notify_next(200, &ev);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        return cli_error("watch", r);
                if (ev.lost)
                        printf("(%u events lost)\n", ev.lost);
                switch (ev.kind) {
                case IPCF_EVENT_NAME_UP: printf("up %s pid %d\n", ev.name, (int)ev.pid); break;
                case IPCF_EVENT_NAME_DOWN: printf("down %s\n", ev.name); break;
                case IPCF_EVENT_FLOW_ENDED:
                        printf("flow-ended %s reason '%s'\n", ev.name, ev.reason);
                        break;
                case IPCF_EVENT_PEER_DIED: printf("peer-died %s pid %d\n", ev.name, (int)ev.pid); break;
                default: continue;
                }
                fflush(stdout);
                k++;
        }
        return CLI_EXIT_OK;
}
