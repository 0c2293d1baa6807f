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

static void ls_models_json(const ipcf_model_entry *v, size_t n, int kind, const cli_args *filter);
static size_t ls_models_table(const ipcf_model_entry *v, size_t n, int kind, const cli_args *filter);

typedef struct recv_cfg {
        uint64_t count;
        bool verbose;
} recv_cfg;

static int recv_option(void *ctx, int key, const char *value) {
        recv_cfg *c = ctx;
        if (key == 'v')
                c->verbose = true;
        else if (cli_parse_uint(value, UINT64_MAX, &c->count) < 0)
                return -EINVAL;
        return 0;
}

/* `recv_name NAME [-n COUNT] [-v]`: until COUNT messages, ^C, or the end of
 * the handle (a normal exit). Each message one line; -v: sender's pid first. */
static int model_receive(const cli_model_cmd *m, const char *cmd, int argc, char **argv) {
        static const cli_option options[] = { { "count", 'n', true }, { "verbose", 'v', false }, { 0 } };
        char usage[512];
        snprintf(usage, sizeof(usage), "usage: ipcf %s NAME [-n|--count COUNT] [-v|--verbose]\n\n%s", cmd,
                 m->recv_help);
        recv_cfg cfg = { .count = UINT64_MAX };
        const cli_spec spec = { .cmd = cmd, .usage = usage, .options = options, .min_args = 1,
                                .max_args = 1, .args_name = "NAME", .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, recv_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        uint64_t count = cfg.count;
        bool verbose = cfg.verbose;
        const char *name = args.v[0];
        int h = m->open(name);
        if (h < 0)
                return cli_error_alloc(name, h);
        cli_catch_interrupts();
        char shown[32 + IPCF_NAME_MAX];
        snprintf(shown, sizeof(shown), "%s %s", cmd, name);
        char *buf = malloc(CLI_MODEL_MSG_MAX);
        int rc = buf ? CLI_EXIT_OK : cli_error(m->recv_name, -ENOMEM);
        for (uint64_t k = 0; buf && k < count && !cli_interrupted;) {
                ipcf_peer_info from;
                const char *what = NULL; /* set by m->next when another step failed */
                ssize_t n = m->next(h, buf, CLI_MODEL_MSG_MAX, &from, &what);
                if (n == -EAGAIN || n == -ETIMEDOUT)
                        continue;
                if (n < 0) {
                        char step[64 + IPCF_NAME_MAX];
                        snprintf(step, sizeof(step), "%s%s%s", shown, what ? ": " : "", what ? what : "");
                        /* the broker is the daemon: its death, not a peer's */
                        rc = n == -EPIPE         ? CLI_EXIT_OK
                             : n == -ECONNRESET ? cli_fail("%s: the daemon ended (peer died)", step)
                                                : cli_error(step, (int)n);
                        break;
                }
                if (verbose)
                        printf("%d: ", (int)from.pid);
                fwrite(buf, 1, (size_t)n, stdout);
                putchar('\n');
                if ((rc = cli_stdout_flush(shown)) != 0)
                        break;
                k++;
        }
        free(buf);
        ipcf_dealloc(h, m->leave_reason);
        return rc;
}

/* `destroy NAME`. */
static int model_destroy(const cli_model_cmd *m, const char *cmd, int argc, char **argv) {
        char usage[256];
        snprintf(usage, sizeof(usage), "usage: ipcf %s NAME\n", cmd);
        const cli_spec spec = { .cmd = cmd, .usage = usage, .min_args = 1, .max_args = 1,
                                .args_name = "NAME", .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        int r = m->destroy(args.v[0]);
        if (r > 0) /* a mailbox: what it held of senders that had left */
                printf("%s: %d undelivered messages of departed senders discarded\n", args.v[0], r);
        return r < 0 ? cli_error(args.v[0], r) : CLI_EXIT_OK;
}

/* `ls [--json] [NAME...]`: this model's entries. */
static int model_ls(const cli_model_cmd *m, const char *cmd, int argc, char **argv) {
        char usage[512];
        snprintf(usage, sizeof(usage),
                 "usage: ipcf %s [--json] [NAME...]\n\n"
                 "List the %s (NAME...: shell globs, keep those that match).\n"
                 "  --json    one JSON object {\"models\":[...]}, for scripts\n",
                 cmd, m->kind ? "multicast groups" : "mailboxes");
        const cli_spec spec = { .cmd = cmd, .usage = usage, .json = true, .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        ipcf_model_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_model_list(&v, &n);
        if (r < 0)
                return cli_error(cmd, r);
        if (args.json) {
                fputs("{", stdout);
                ls_models_json(v, n, m->kind, &args);
                fputs("}\n", stdout);
        } else if (ls_models_table(v, n, m->kind, &args) == 0) {
                printf("no %s\n", m->kind ? "multicast groups" : "mailboxes");
        }
        ipcf_free(v);
        return CLI_EXIT_OK;
}

int cli_model_run(const cli_model_cmd *m, int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                FILE *out = argc < 2 ? stderr : stdout;
                fprintf(out, "usage: ipcf %s COMMAND ...\n\n%s\n%s", m->name, m->about, m->usage);
                fprintf(out, "  %s NAME [-n|--count COUNT] [-v|--verbose]\n%27s%s", m->recv_name, "",
                        m->recv_help);
                fprintf(out, "  ls [--json] [NAME...]    list the %s\n",
                        m->kind ? "multicast groups" : "mailboxes");
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "%s %s", m->name, sub);
        argc--;
        argv++;
        if (!strcmp(sub, "ls"))
                return model_ls(m, cmd, argc, argv);
        if (!strcmp(sub, "destroy"))
                return model_destroy(m, cmd, argc, argv);
        if (!strcmp(sub, "create"))
                return m->create(argc, argv);
        if (!strcmp(sub, "send"))
                return m->send(argc, argv);
        if (!strcmp(sub, m->recv_name))
                return model_receive(m, cmd, argc, argv);
        if (sub[0] == '-')
                return cli_usage(m->name, "unknown option '%s'", sub);
        return cli_usage(m->name, "unknown command '%s'", sub);
}

/* The listing as JSON: "models":[...] (the caller puts it in an object). */
static void ls_models_json(const ipcf_model_entry *v, size_t n, int kind, const cli_args *filter) {
        printf("\"models\":[");
        const char *sep = "";
        for (size_t i = 0; i < n; i++) {
                if ((kind >= 0 && v[i].kind != kind) || !cli_name_match(filter, v[i].name))
                        continue;
                printf("%s\n {\"name\":", sep);
                sep = ",";
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

/* The listing as a table after a blank line; how many rows it has (none:
 * nothing printed). */
static size_t ls_models_table(const ipcf_model_entry *v, size_t n, int kind, const cli_args *filter) {
        static const bool right[] = { false, false, true, true, true, true, true, true };
        cli_table *t = n ? cli_table_new(8, right) : NULL;
        if (!t)
                return 0;
        static const char *const hdr[] = { "MAILBOX/GROUP", "KIND", "SENDERS", "RECEIVERS",
                                           "QUEUED", "IN", "OUT", "DROPPED" };
        for (int i = 0; i < 8; i++)
                cli_table_add(t, "%s", hdr[i]);
        static const char *const slow[] = { "block", "drop", "remove" };
        size_t shown = 0;
        for (size_t i = 0; i < n; i++) {
                char b[3][32];
                if ((kind >= 0 && v[i].kind != kind) || !cli_name_match(filter, v[i].name))
                        continue;
                shown++;
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
        if (shown) {
                putchar('\n');
                cli_table_print(t, stdout);
        }
        cli_table_free(t);
        return shown;
}

int cli_ls_models(bool json, int kind, const cli_args *filter) {
        ipcf_model_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_model_list(&v, &n);
        if (r < 0)
                return r; /* nothing printed */
        size_t shown = 0;
        if (json)
                ls_models_json(v, n, kind, filter);
        else
                shown = ls_models_table(v, n, kind, filter);
        ipcf_free(v);
        return (int)shown;
}
