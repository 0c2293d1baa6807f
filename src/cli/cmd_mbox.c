/*
 * cmd_mbox.c — `ipcf mbox ...`: mailboxes from the shell (docs/MODELS.md).
 * What it shares with `ipcf mcast` (dispatch, destroy, ls, the receiving
 * options and output) is models.c.
 *
 *   ipcf mbox create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N]
 *   ipcf mbox destroy NAME
 *   ipcf mbox send NAME [--receipt] [MSG...]   each MSG (or each stdin line) a message
 *   ipcf mbox recv NAME [-n COUNT] [-v]        print messages, one per line
 *   ipcf mbox ls
 *
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int cmd_mbox(int argc, char **argv);

enum { OPT_EXCLUSIVE = CLI_OPT_FIRST_PRIVATE, OPT_STREAM, OPT_MAX_MSGS, OPT_MAX_MSG_SIZE, OPT_RECEIPT };

static const char create_usage[] =
        "usage: ipcf mbox create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N]\n\n"
        "Create mailbox NAME.\n"
        "  --exclusive        one receiver at a time\n"
        "  --stream           a named pipe: reads return bytes, not messages\n"
        "  --max-msgs N       at most N queued messages (k/M suffixes; at most 64k)\n"
        "  --max-msg-size N   the largest message (at most 256k)\n";

static int create_option(void *ctx, int key, const char *value) {
        ipcf_mbox_opts *o = ctx;
        uint64_t v = 0;
        uint64_t max = key == OPT_MAX_MSGS ? IPCF_MODEL_MAX_MSGS : IPCF_MODEL_MAX_MSG_SIZE;
        if (value && cli_parse_size(value, max, &v) < 0)
                return -EINVAL;
        switch (key) {
        case OPT_EXCLUSIVE: o->flags |= IPCF_MBOX_EXCLUSIVE; break;
        case OPT_STREAM: o->flags |= IPCF_MBOX_STREAM; break;
        case OPT_MAX_MSGS: o->max_msgs = (uint32_t)v; break;
        case OPT_MAX_MSG_SIZE: o->max_msg_size = (uint32_t)v; break;
        }
        return 0;
}

/* create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N] */
static int mbox_create(int argc, char **argv) {
        static const cli_option options[] = {
                { "exclusive", OPT_EXCLUSIVE, false },
                { "stream", OPT_STREAM, false },
                { "max-msgs", OPT_MAX_MSGS, true },
                { "max-msg-size", OPT_MAX_MSG_SIZE, true },
                { 0 },
        };
        ipcf_mbox_opts o = { .size = sizeof(o) };
        const cli_spec spec = { .cmd = "mbox create", .usage = create_usage, .options = options,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, create_option, &o, &args);
        if (st != CLI_PARSED)
                return st;
        int r = ipcf_mbox_create(args.v[0], &o);
        return r < 0 ? cli_error(args.v[0], r) : CLI_EXIT_OK;
}

/* How long one message may wait for room, and with --receipt for its
 * receiver (ipcf(1) says so). */
#define MBOX_SEND_WAIT_MS 10000

/* Message no of `mbox send`; with --receipt, wait for and print who took it.
 * 0, or the exit status after the error line (which says when the message
 * went out but no receiver took it in time: it stays queued, ipcf.h). */
static int mbox_send_one(const char *what, int h, const char *msg, size_t len, bool receipt,
                         unsigned no) {
        ipcf_receipt rc = { 0 };
        ssize_t r = ipcf_mbox_send(h, msg, len, MBOX_SEND_WAIT_MS, receipt ? &rc : NULL);
        if (receipt && (r == -ETIMEDOUT || r == -EAGAIN) && rc.seq)
                return cli_fail("%s: no receiver took message %u within %d s: it stays queued and may "
                                "still be delivered", what, no, MBOX_SEND_WAIT_MS / 1000);
        if (r < 0)
                return cli_error(what, (int)r);
        if (receipt)
                printf("delivered to pid %d\n", (int)rc.receiver);
        return 0;
}

static const char send_usage[] =
        "usage: ipcf mbox send NAME [--receipt] [MSG...]\n\n"
        "Send each MSG as a message (none: each line of stdin, without its newline).\n"
        "A MSG that starts with '-' goes after '--'.\n"
        "A full mailbox is waited for up to 10 s per message.\n"
        "  --receipt    wait for and print the pid of the receiver of each (up to\n"
        "               10 s; a message no receiver took by then stays queued)\n";

static int send_option(void *ctx, int key, const char *value) {
        (void)key, (void)value;
        *(bool *)ctx = true; /* --receipt */
        return 0;
}

/* send NAME [--receipt] [MSG...]: the arguments, else stdin line by line
 * (the newline is not sent). */
static int mbox_send(int argc, char **argv) {
        static const cli_option options[] = { { "receipt", OPT_RECEIPT, false }, { 0 } };
        bool receipt = false;
        const cli_spec spec = { .cmd = "mbox send", .usage = send_usage, .options = options,
                                .min_args = 1, .max_args = -1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, send_option, &receipt, &args);
        if (st != CLI_PARSED)
                return st;
        int h = ipcf_mbox_open(args.v[0], IPCF_MBOX_SEND, NULL, 5000);
        if (h < 0)
                return cli_error_alloc(args.v[0], h);
        char what[16 + IPCF_NAME_MAX];
        snprintf(what, sizeof(what), "mbox send %s", args.v[0]);
        int r = 0;
        unsigned no = 0;
        if (args.n > 1) {
                for (int i = 1; i < args.n && r == 0; i++)
                        r = mbox_send_one(what, h, args.v[i], strlen(args.v[i]), receipt, ++no);
        } else {
                char *line = NULL;
                size_t cap = 0;
                ssize_t n;
                while (r == 0 && (n = getline(&line, &cap, stdin)) > 0) {
                        if (line[n - 1] == '\n')
                                n--;
                        r = mbox_send_one(what, h, line, (size_t)n, receipt, ++no);
                }
                free(line);
        }
        ipcf_dealloc(h, "done");
        return r;
}

/* recv NAME: a receiver's handle; each message as it comes (short waits, so
 * that ^C is seen); the mailbox destroyed is the end (-EPIPE). */
static int mbox_open_recv(const char *name) {
        return ipcf_mbox_open(name, IPCF_MBOX_RECV, NULL, 5000);
}

static ssize_t mbox_next(int h, void *buf, size_t cap, ipcf_peer_info *ret_from,
                         const char **ret_what) {
        (void)ret_what; /* only the receive can fail */
        return ipcf_mbox_recv(h, buf, cap, 200, ret_from);
}

/* The --help lines of create, destroy and send (cli_model_run adds the rest). */
static const char mbox_usage[] =
        "  create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N]\n"
        "                           --stream: a named pipe (reads return bytes)\n"
        "  destroy NAME             receivers end, undelivered messages are reported\n"
        "  send NAME [--receipt] [MSG...]\n"
        "                           send each MSG (none: each line of stdin);\n"
        "                           --receipt waits for and prints the receiver's pid\n";

/* `ipcf mbox SUBCOMMAND ...`: exit 0, 1 on failure, 2 on a usage error. */
int cmd_mbox(int argc, char **argv) {
        static const cli_model_cmd mbox = {
                .name = "mbox",
                .kind = 0,
                .about = "Mailboxes: named queues; each message goes to exactly one receiver.",
                .usage = mbox_usage,
                .create = mbox_create,
                .destroy = ipcf_mbox_destroy,
                .send = mbox_send,
                .recv_name = "recv",
                .recv_help = "print messages, one per line (-v: sender pid first)\n",
                .open = mbox_open_recv,
                .next = mbox_next,
                .leave_reason = "done",
        };
        return cli_model_run(&mbox, argc, argv);
}
