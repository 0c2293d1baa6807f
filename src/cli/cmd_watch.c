/*
 * cmd_watch.c — `ipcf watch [-n COUNT] [--json] NAME...`: print the facility's
 * notifications for these names (up, down) as they happen, one per line,
 * until interrupted or COUNT events (docs/MODELS.md). A name already up is
 * reported at once, so `ipcf watch svc -n 1` waits until svc is reachable.
 *
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"
#include "common/util.h"

#include <errno.h>
#include <string.h>

int cmd_watch(int argc, char **argv);

static const char watch_usage[] =
        "usage: ipcf watch [-n COUNT] [--json] NAME...\n\n"
        "Print when the names appear (registered, or a mailbox/group created) and\n"
        "disappear, one line per event, until ^C or COUNT events.\n"
        "  -n, --count=COUNT  stop after COUNT events\n"
        "      --json         one JSON object per line:\n"
        "                     {\"event\",\"name\",\"pid\",\"reason\",\"lost\"}\n";

static int watch_option(void *ctx, int key, const char *value) {
        return cli_parse_uint(value, UINT64_MAX, ctx); /* -n */
}

/* One event as a line of text or of JSON; false for kinds not shown. */
static bool print_event(const ipcf_event *ev, bool json) {
        static const char *const kinds[] = {
                [IPCF_EVENT_NAME_UP] = "up",
                [IPCF_EVENT_NAME_DOWN] = "down",
                [IPCF_EVENT_FLOW_ENDED] = "flow-ended",
                [IPCF_EVENT_PEER_DIED] = "peer-died",
        };
        size_t k = (size_t)ev->kind;
        if (k >= sizeof(kinds) / sizeof(kinds[0]) || !kinds[k])
                return false;
        if (json) {
                printf("{\"event\":\"%s\",\"name\":", kinds[k]);
                cli_json_string(stdout, ev->name);
                printf(",\"pid\":%d,\"reason\":", (int)ev->pid);
                cli_json_string(stdout, ev->kind == IPCF_EVENT_FLOW_ENDED ? ev->reason : "");
                printf(",\"lost\":%u}\n", ev->lost);
                return true;
        }
        if (ev->lost)
                printf("(%u event%s lost)\n", ev->lost, plural(ev->lost));
        switch (ev->kind) {
        case IPCF_EVENT_NAME_UP: printf("up %s pid %d\n", ev->name, (int)ev->pid); break;
        case IPCF_EVENT_NAME_DOWN: printf("down %s\n", ev->name); break;
        case IPCF_EVENT_FLOW_ENDED: printf("flow-ended %s reason '%s'\n", ev->name, ev->reason); break;
        default: printf("peer-died %s pid %d\n", ev->name, (int)ev->pid); break;
        }
        return true;
}

int cmd_watch(int argc, char **argv) {
        static const cli_option options[] = { { "count", 'n', true }, { 0 } };
        uint64_t count = UINT64_MAX;
        const cli_spec spec = { .cmd = "watch", .usage = watch_usage, .options = options,
                                .json = true, .min_args = 1, .max_args = -1, .args_name = "NAME" };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, watch_option, &count, &args);
        if (st != CLI_PARSED)
                return st;
        for (int i = 0; i < args.n; i++) { /* every name checked before the daemon is asked */
                if (cli_name_check("watch", args.v[i]))
                        return CLI_EXIT_USAGE;
                if (strchr(args.v[i], '@')) /* ipcf_watch: -EINVAL, a usage error here */
                        return cli_usage("watch", "'%s': a name with an '@' cannot be watched", args.v[i]);
        }
        for (int i = 0; i < args.n; i++) {
                int r = ipcf_watch(args.v[i]);
                if (r < 0)
                        return cli_error(args.v[i], r);
        }
        cli_catch_interrupts();
        for (uint64_t k = 0; k < count && !cli_interrupted;) {
                ipcf_event ev;
                int r = ipcf_notify_next(200, &ev);
                if (r == -ETIMEDOUT)
                        continue;
                if (r < 0)
                        return cli_error("watch", r);
                if (!print_event(&ev, args.json))
                        continue;
                if (cli_stdout_flush("watch"))
                        return CLI_EXIT_FAIL;
                k++;
        }
        return CLI_EXIT_OK;
}
