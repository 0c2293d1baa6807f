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
 * What it shares with `ipcf mbox` (dispatch, destroy, ls, the receiving
 * options and output) is models.c. Only the public API is used; every error
 * is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_mcast(int argc, char **argv);

enum { OPT_SLOW = CLI_OPT_FIRST_PRIVATE, OPT_MAX_MSGS };

static const char create_usage[] =
        "usage: ipcf mcast create NAME [--slow block|drop|remove] [--max-msgs N]\n\n"
        "Create multicast group NAME.\n"
        "  --slow POLICY   what to do with a member too slow to keep up\n"
        "  --max-msgs N    messages the group queues in the facility, not yet taken\n"
        "                  by every member (default 1024, at most 64k)\n";

static int create_option(void *ctx, int key, const char *value) {
        ipcf_mcast_opts *o = ctx;
        uint64_t v;
        if (key == OPT_MAX_MSGS) {
                if (cli_parse_size(value, IPCF_MODEL_MAX_MSGS, &v) < 0)
                        return -EINVAL;
                o->max_msgs = (uint32_t)v;
        } else if (!strcmp(value, "block")) {
                o->slow = IPCF_MCAST_BLOCK;
        } else if (!strcmp(value, "drop")) {
                o->slow = IPCF_MCAST_DROP;
        } else if (!strcmp(value, "remove")) {
                o->slow = IPCF_MCAST_REMOVE;
        } else {
                return -EINVAL;
        }
        return 0;
}

/* create NAME [--slow block|drop|remove] [--max-msgs N] */
static int mcast_create(int argc, char **argv) {
        static const cli_option options[] = {
                { "slow", OPT_SLOW, true },
                { "max-msgs", OPT_MAX_MSGS, true },
                { 0 },
        };
        ipcf_mcast_opts o = { .size = sizeof(o) };
        const cli_spec spec = { .cmd = "mcast create", .usage = create_usage, .options = options,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, create_option, &o, &args);
        if (st != CLI_PARSED)
                return st;
        int r = ipcf_mcast_create(args.v[0], &o);
        return r < 0 ? cli_error(args.v[0], r) : CLI_EXIT_OK;
}

static const char send_usage[] =
        "usage: ipcf mcast send NAME MSG...\n\n"
        "Join group NAME, send each MSG, leave. A MSG that starts with '-' goes after '--'.\n";

/* send NAME MSG...: a member for the time of sending. */
static int mcast_send(int argc, char **argv) {
        const cli_spec spec = { .cmd = "mcast send", .usage = send_usage, .min_args = 2,
                                .max_args = -1, .args_name = "NAME and MSG", .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        int h = ipcf_mcast_join(args.v[0], NULL, 5000);
        if (h < 0)
                return cli_error_alloc(args.v[0], h);
        int r = 0;
        for (int i = 1; i < args.n && r == 0; i++) {
                ssize_t n = ipcf_mcast_send(h, args.v[i], strlen(args.v[i]), 10000);
                r = n < 0 ? (int)n : 0;
        }
        ipcf_dealloc(h, "left the group");
        return r < 0 ? cli_error("send", r) : CLI_EXIT_OK;
}

/* join NAME: poll the member's descriptor and stdin together; messages of
 * others go to stdout, stdin lines go to the group, losses are reported, and
 * the group's end (destroyed, or this member removed) is the end, with its
 * reason on stderr. The one join of this process keeps its state here. */
static struct {
        bool in_closed;          /* stdin reached its end */
        int64_t lost_seen;       /* losses reported so far */
        char *line;              /* getline's buffer */
        size_t cap;
} join;

static int mcast_open_member(const char *name) {
        return ipcf_mcast_join(name, NULL, 5000);
}

/* Send the next line of stdin to the group (the newline is not sent); at
 * its end, stop reading it. 0 or the send's -errno. */
static int send_stdin_line(int h) {
        ssize_t n = getline(&join.line, &join.cap, stdin);
        if (n <= 0) {
                join.in_closed = true;
                return 0;
        }
        if (join.line[n - 1] == '\n')
                n--;
        ssize_t r = ipcf_mcast_send(h, join.line, (size_t)n, 10000);
        return r < 0 ? (int)r : 0;
}

/* The --help lines of create, destroy and send (cli_model_run adds the rest). */
static const char mcast_usage[] =
        "  create NAME [--slow block|drop|remove] [--max-msgs N]\n"
        "                           what to do with a member too slow to keep up\n"
        "  destroy NAME             members end with reason \"group destroyed\"\n"
        "  send NAME MSG...         join, send each MSG, leave\n";

static ssize_t mcast_next(int h, void *buf, size_t cap, ipcf_peer_info *ret_from,
                          const char **ret_what) {
        struct pollfd p[2] = { { .fd = ipcf_fd(h), .events = POLLIN },
                               { .fd = 0, .events = POLLIN } };
        if (poll(p, join.in_closed ? 1 : 2, 200) <= 0)
                return -EAGAIN;
        if (p[1].revents && !join.in_closed) {
                int r = send_stdin_line(h);
                if (r < 0) {
                        *ret_what = "send";
                        return r;
                }
        }
        if (!p[0].revents)
                return -EAGAIN;
        ssize_t n = ipcf_mcast_recv(h, buf, cap, 0, ret_from);
        int64_t lost = ipcf_mcast_lost(h);
        if (lost > join.lost_seen) {
                fprintf(stderr, "ipcf: %lld message(s) lost (too slow)\n",
                        (long long)(lost - join.lost_seen));
                join.lost_seen = lost;
        }
        ipcf_reason why;
        if (n == -EPIPE && ipcf_end_reason(h, &why) == 0 && why.text[0])
                fprintf(stderr, "ipcf: %s\n", why.text);
        return n;
}

/* `ipcf mcast SUBCOMMAND ...`: exit 0, 1 on failure, 2 on a usage error. */
int cmd_mcast(int argc, char **argv) {
        static const cli_model_cmd mcast = {
                .name = "mcast",
                .kind = 1,
                .about = "Multicast groups: each message goes to every other member.",
                .usage = mcast_usage,
                .create = mcast_create,
                .destroy = ipcf_mcast_destroy,
                .send = mcast_send,
                .recv_name = "join",
                .recv_help = "print what others send (-v: sender pid first; lost\n"
                             "                           messages are reported) and send each line of stdin\n",
                .open = mcast_open_member,
                .next = mcast_next,
                .leave_reason = "left the group",
        };
        int rc = cli_model_run(&mcast, argc, argv);
        free(join.line);
        return rc;
}
