/*
 * cmd_mbox.c — `ipcf mbox ...`: mailboxes from the shell (docs/MODELS.md),
 * and the listing of mailboxes and groups that `ipcf ls` shows.
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
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

int cmd_mbox(int argc, char **argv);
void cli_ls_models(bool json);

static const char mbox_usage[] =
        "usage: ipcf mbox COMMAND ...\n\n"
        "Mailboxes: named queues; each message goes to exactly one receiver.\n"
        "  create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N]\n"
        "                           --stream: a named pipe (reads return bytes)\n"
        "  destroy NAME             receivers end, undelivered messages are reported\n"
        "  send NAME [--receipt] [MSG...]\n"
        "                           send each MSG (none: each line of stdin);\n"
        "                           --receipt waits for and prints the receiver's pid\n"
        "  recv NAME [-n COUNT] [-v]\n"
        "                           print messages, one per line (-v: sender pid first)\n"
        "  ls                       list mailboxes and multicast groups\n";

#define MBOX_LINE_MAX 65536

/* create NAME [--exclusive] [--stream] [--max-msgs N] [--max-msg-size N] */
static int mbox_create(int argc, char **argv) {
        if (argc < 2)
                return cli_usage("mbox", "create needs NAME");
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
        if (argc < 2)
                return cli_usage("mbox", "send needs NAME");
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

/* recv NAME [-n COUNT] [-v]: until COUNT messages, ^C, or the mailbox is
 * destroyed (its end is a normal exit). Short waits so ^C is seen. */
static int mbox_recv(int argc, char **argv) {
        if (argc < 2)
                return cli_usage("mbox", "recv needs NAME");
        uint64_t count = UINT64_MAX;
        bool verbose = false;
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-v"))
                        verbose = true;
                else if (!strcmp(argv[i], "-n") && i + 1 < argc &&
                         cli_parse_uint(argv[i + 1], UINT64_MAX, &count) == 0)
                        i++;
                else
                        return cli_usage("mbox", "bad option '%s'", argv[i]);
        }
        int h = ipcf_mbox_open(argv[1], IPCF_MBOX_RECV, NULL, 5000);
        if (h < 0)
                return cli_error(argv[1], h);
        cli_catch_interrupts();
        char *buf = malloc(MBOX_LINE_MAX);
        if (!buf)
                return cli_error("recv", -ENOMEM);
        int rc = CLI_EXIT_OK;
        for (uint64_t k = 0; k < count && !cli_interrupted;) {
                ipcf_peer_info from;
                ssize_t n = ipcf_mbox_recv(h, buf, MBOX_LINE_MAX, 200, &from);
                if (n == -ETIMEDOUT)
                        continue;
                if (n < 0) {
                        rc = n == -EPIPE ? CLI_EXIT_OK : cli_error("recv", (int)n);
                        break;
                }
                if (verbose)
                        printf("%d: ", (int)from.pid);
                fwrite(buf, 1, (size_t)n, stdout);
                putchar('\n');
                fflush(stdout);
                k++;
        }
        free(buf);
        ipcf_dealloc(h, "done");
        return rc;
}

/* Mailboxes and groups, for `ipcf mbox ls`, `ipcf mcast ls` and `ipcf ls`. */
void cli_ls_models(bool json) {
        ipcf_model_entry *v = NULL;
        size_t n = 0;
        if (ipcf_model_list(&v, &n) < 0)
                n = 0;
        if (json) {
                printf(",\n\"models\":[");
                for (size_t i = 0; i < n; i++) {
                        printf("%s\n {\"name\":", i ? "," : "");
                        cli_json_string(stdout, v[i].name);
                        printf(",\"kind\":\"%s\",\"owner_uid\":%u,\"senders\":%u,\"receivers\":%u,"
                               "\"queued\":%u,\"flags\":%u,\"msgs_in\":%" PRIu64 ",\"msgs_out\":%" PRIu64
                               ",\"dropped\":%" PRIu64 "}",
                               v[i].kind ? "mcast" : "mbox", (unsigned)v[i].owner_uid, v[i].senders,
                               v[i].receivers, v[i].queued, v[i].flags, v[i].msgs_in, v[i].msgs_out,
                               v[i].dropped);
                }
                printf("]");
                ipcf_free(v);
                return;
        }
        if (!n) {
                ipcf_free(v);
                return;
        }
        static const bool right[] = { false, false, true, true, true, true, true, true };
        cli_table *t = cli_table_new(8, right);
        if (!t) {
                ipcf_free(v);
                return;
        }
        static const char *const hdr[] = { "MAILBOX/GROUP", "KIND", "SENDERS", "RECEIVERS",
                                           "QUEUED", "IN", "OUT", "DROPPED" };
        for (int i = 0; i < 8; i++)
                cli_table_add(t, "%s", hdr[i]);
        static const char *const slow[] = { "block", "drop", "remove" };
        for (size_t i = 0; i < n; i++) {
                char b[3][32];
                cli_table_add(t, "%s", v[i].name);
                if (v[i].kind)
                        cli_table_add(t, "mcast/%s", v[i].flags < 3 ? slow[v[i].flags] : "?");
                else
                        cli_table_add(t, "mbox%s%s", v[i].flags & IPCF_MBOX_EXCLUSIVE ? "/excl" : "",
                                      v[i].flags & IPCF_MBOX_STREAM ? "/stream" : "");
                cli_table_add(t, "%u", v[i].senders);
                cli_table_add(t, "%u", v[i].receivers);
                cli_table_add(t, "%u", v[i].queued);
                cli_table_add(t, "%s", cli_fmt_count(b[0], sizeof(b[0]), (double)v[i].msgs_in));
                cli_table_add(t, "%s", cli_fmt_count(b[1], sizeof(b[1]), (double)v[i].msgs_out));
                cli_table_add(t, "%s", cli_fmt_count(b[2], sizeof(b[2]), (double)v[i].dropped));
        }
        putchar('\n');
        cli_table_print(t, stdout);
        cli_table_free(t);
        ipcf_free(v);
}

/* `ipcf mbox SUBCOMMAND ...`: exit 0, 1 on failure, 2 on a usage error. */
int cmd_mbox(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(mbox_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        argc--;
        argv++;
        if (!strcmp(sub, "create"))
                return mbox_create(argc, argv);
        if (!strcmp(sub, "destroy")) {
                if (argc < 2)
                        return cli_usage("mbox", "destroy needs NAME");
                int r = ipcf_mbox_destroy(argv[1]);
                return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
        }
        if (!strcmp(sub, "send"))
                return mbox_send(argc, argv);
        if (!strcmp(sub, "recv"))
                return mbox_recv(argc, argv);
        if (!strcmp(sub, "ls")) {
                cli_ls_models(false);
                return CLI_EXIT_OK;
        }
        return cli_usage("mbox", "unknown command '%s'", sub);
}
