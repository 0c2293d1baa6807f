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

/* create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N] */
static int mbox_create(int argc, char **argv) {
        ipcf_mbox_opts o = { .size = sizeof(o) };
        for (int i = 2; i < argc; i++) {
                uint64_t v;
                if (!strcmp(argv[i], "--exclusive") || !strcmp(argv[i], "--stream")) {
                        o.flags |= argv[i][2] == 'e' ? IPCF_MBOX_EXCLUSIVE : IPCF_MBOX_STREAM;
                        continue;
                }
                if (i + 1 >= argc || cli_parse_size(argv[i + 1], UINT32_MAX, &v) < 0)
                        return cli_usage("mbox", "bad or missing value for '%s'", argv[i]);
                if (!strcmp(argv[i], "--max-msgs"))
                        o.max_msgs = (uint32_t)v;
                else if (!strcmp(argv[i], "--max-msg-size"))
                        o.max_msg_size = (uint32_t)v;
                else
                        return cli_usage("mbox", "unknown option '%s'", argv[i]);
                i++;
        }
        int r = ipcf_mbox_create(argv[1], &o);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

/* One message; with --receipt, wait for and print who took it. */
static int mbox_send_one(int h, const char *msg, size_t len, bool receipt) {
        ipcf_receipt rc;
        ssize_t r = ipcf_mbox_send(h, msg, len, 10000, receipt ? &rc : NULL);
        if (r < 0)
                return (int)r;
        if (receipt)
                printf("delivered to pid %d\n", (int)rc.receiver);
        return 0;
}

/* send NAME [--receipt] [MSG...]: the arguments, else stdin line by line
 * (the newline is not sent). */
static int mbox_send(int argc, char **argv) {
        bool receipt = argc > 2 && !strcmp(argv[2], "--receipt");
        int first = receipt ? 3 : 2;
        int h = ipcf_mbox_open(argv[1], IPCF_MBOX_SEND, NULL, 5000);
        if (h < 0)
                return cli_error(argv[1], h);
        int r = 0;
        if (first < argc) {
                for (int i = first; i < argc && r == 0; i++)
                        r = mbox_send_one(h, argv[i], strlen(argv[i]), receipt);
        } else {
                char *line = NULL;
                size_t cap = 0;
                ssize_t n;
                while (r == 0 && (n = getline(&line, &cap, stdin)) > 0) {
                        if (line[n - 1] == '\n')
                                n--;
                        r = mbox_send_one(h, line, (size_t)n, receipt);
                }
                free(line);
        }
        ipcf_dealloc(h, "done");
        return r < 0 ? cli_error("send", r) : CLI_EXIT_OK;
}

/* recv NAME: a receiver's handle; each message as it comes (short waits, so
 * that ^C is seen); the mailbox destroyed is the end (-EPIPE). */
static int mbox_open_recv(const char *name) {
        return ipcf_mbox_open(name, IPCF_MBOX_RECV, NULL, 5000);
}

static ssize_t mbox_next(int h, void *buf, size_t cap, ipcf_peer_info *ret_from,
                         const char **ret_what) {
        (void)ret_what; /* "recv" */
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
        /* name, about, usage, create, destroy, send; recv_name, recv_help, open,
         * next, leave_reason */
        static const cli_model_cmd mbox = {
                "mbox", "Mailboxes: named queues; each message goes to exactly one receiver.",
                mbox_usage,
                mbox_create, ipcf_mbox_destroy, mbox_send, "recv",
                "print messages, one per line (-v: sender pid first)\n", mbox_open_recv,
                mbox_next, "done"
        };
        return cli_model_run(&mbox, argc, argv);
}
