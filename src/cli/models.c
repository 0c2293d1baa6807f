/*
 * models.c — what `ipcf mbox` and `ipcf mcast` share: the dispatch of their
 * subcommands (create, destroy, send, a receiving one, ls, --help), the
 * receiving subcommand's loop (-n COUNT, -v, ^C, one line per message), and
 * the listing of mailboxes and groups that both and `ipcf ls` show.
 *
 * A model command describes itself in a cli_model_cmd (cli.h); only what
 * differs (how it creates, sends, opens and takes the next message) stays in
 * its own file.
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* [-n COUNT] [-v] after NAME. 0, or the usage error's exit status. */
static int recv_opts(const char *cmd, int argc, char **argv, uint64_t *ret_count,
                     bool *ret_verbose) {
        uint64_t count = UINT64_MAX;
        bool verbose = false;
        for (int i = 2; i < argc; i++) {
                if (!strcmp(argv[i], "-v"))
                        verbose = true;
                else if (!strcmp(argv[i], "-n") && i + 1 < argc &&
                         cli_parse_uint(argv[i + 1], UINT64_MAX, &count) == 0)
                        i++;
                else
                        return cli_usage(cmd, "bad option '%s'", argv[i]);
        }
        *ret_count = count;
        *ret_verbose = verbose;
        return 0;
}

/* `recv_name NAME [-n COUNT] [-v]`: until COUNT messages, ^C, or the end of
 * the handle (a normal exit). Each message one line; -v: sender's pid first. */
static int model_receive(const cli_model_cmd *m, int argc, char **argv) {
        uint64_t count = 0;
        bool verbose = false;
        int usage = recv_opts(m->name, argc, argv, &count, &verbose);
        if (usage)
                return usage;
        int h = m->open(argv[1]);
        if (h < 0)
                return cli_error(argv[1], h);
        cli_catch_interrupts();
        char *buf = malloc(CLI_MODEL_MSG_MAX);
        int rc = buf ? CLI_EXIT_OK : cli_error(m->recv_name, -ENOMEM);
        for (uint64_t k = 0; buf && k < count && !cli_interrupted;) {
                ipcf_peer_info from;
                const char *what = "recv";
                ssize_t n = m->next(h, buf, CLI_MODEL_MSG_MAX, &from, &what);
                if (n == -EAGAIN || n == -ETIMEDOUT)
                        continue;
                if (n < 0) {
                        rc = n == -EPIPE ? CLI_EXIT_OK : cli_error(what, (int)n);
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
        ipcf_dealloc(h, m->leave_reason);
        return rc;
}

int cli_model_run(const cli_model_cmd *m, int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                FILE *out = argc < 2 ? stderr : stdout;
                fprintf(out, "usage: ipcf %s COMMAND ...\n\n%s\n%s", m->name, m->about, m->usage);
                fprintf(out, "  %s NAME [-n COUNT] [-v]\n%27s%s", m->recv_name, "", m->recv_help);
                fputs("  ls                       list mailboxes and multicast groups\n", out);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        argc--;
        argv++;
        if (!strcmp(sub, "ls")) {
                cli_ls_models(false);
                return CLI_EXIT_OK;
        }
        bool known = !strcmp(sub, "destroy") || !strcmp(sub, "create") || !strcmp(sub, "send") ||
                     !strcmp(sub, m->recv_name);
        if (!known)
                return cli_usage(m->name, "unknown command '%s'", sub);
        if (argc < 2)
                return cli_usage(m->name, "%s needs NAME", sub);
        if (!strcmp(sub, "destroy")) {
                int r = m->destroy(argv[1]);
                if (r > 0) /* a mailbox: what it held of senders that had left */
                        printf("%s: %d undelivered messages of departed senders discarded\n", argv[1], r);
                return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
        }
        if (!strcmp(sub, "create"))
                return m->create(argc, argv);
        if (!strcmp(sub, "send"))
                return m->send(argc, argv);
        return model_receive(m, argc, argv);
}

/* The listing as JSON: ,"models":[...] after `ipcf ls --json`'s other parts. */
static void ls_models_json(const ipcf_model_entry *v, size_t n) {
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
}

/* The listing as a table (nothing when there is none). */
static void ls_models_table(const ipcf_model_entry *v, size_t n) {
        static const bool right[] = { false, false, true, true, true, true, true, true };
        cli_table *t = n ? cli_table_new(8, right) : NULL;
        if (!t)
                return;
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
}

void cli_ls_models(bool json) {
        ipcf_model_entry *v = NULL;
        size_t n = 0;
        if (ipcf_model_list(&v, &n) < 0)
                n = 0;
        if (json)
                ls_models_json(v, n);
        else
                ls_models_table(v, n);
        ipcf_free(v);
}
