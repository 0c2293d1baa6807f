/*
 * cmd_shm.c — `ipcf shm ...`: shared-memory groups and named segments from
 * the shell (docs/GROUPS.md). Kept apart from the multicast groups of
 * `ipcf mcast`.
 *
 *   ipcf shm create NAME SIZE [--allow-uid N]... [--allow-gid N]... [--allow-name PROG]...
 *   ipcf shm ls [--json] [NAME...]  groups and segments this user may see
 *   ipcf shm info NAME [--json]     a group's members
 *   ipcf shm resize NAME SIZE
 *   ipcf shm dissolve NAME
 *   ipcf shm cat NAME [OFFSET [LEN]]     join, copy bytes to stdout
 *   ipcf shm write NAME OFFSET           join, copy stdin into the group
 *   ipcf shm unlink NAME            remove a named segment
 *
 * Only the public API is used; every error is one line on stderr.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_shm(int argc, char **argv);

static const char shm_usage[] =
        "usage: ipcf shm COMMAND ...\n\n"
        "Shared-memory groups: memory the facility shares among the members it admits.\n"
        "  create NAME SIZE [--allow-uid N] [--allow-gid N] [--allow-name PROG]...\n"
        "                         create a group (members: your uid + those listed)\n"
        "  ls [--json] [NAME...]  list groups and named segments (NAME...: globs)\n"
        "  info NAME [--json]     a group's members\n"
        "  resize NAME SIZE       grow or shrink a group (members are told)\n"
        "  dissolve NAME          end a group (members are told)\n"
        "  cat NAME [OFF [LEN]]   print bytes of a group (default: all of it)\n"
        "  write NAME OFF         copy stdin into a group at OFF (refused past the end)\n"
        "  unlink NAME            remove a named segment (ipcf_shm_open)\n"
        "SIZE, OFF and LEN take k, m, g suffixes.\n";

#define SHM_CAT_MAX (64u << 20)

enum { OPT_ALLOW_UID = CLI_OPT_FIRST_PRIVATE, OPT_ALLOW_GID, OPT_ALLOW_NAME };

/* What create's --allow-* options add up to (16 of each at most). */
typedef struct create_cfg {
        const char *names[16];
        uid_t uids[16];
        gid_t gids[16];
        ipcf_group_opts o;
} create_cfg;

static int create_option(void *ctx, int key, const char *value) {
        create_cfg *c = ctx;
        uint64_t v = 0;
        if (key != OPT_ALLOW_NAME && cli_parse_uint(value, UINT32_MAX, &v) < 0)
                return -EINVAL;
        if (key == OPT_ALLOW_UID && c->o.n_uids < 16)
                c->uids[c->o.n_uids++] = (uid_t)v;
        else if (key == OPT_ALLOW_GID && c->o.n_gids < 16)
                c->gids[c->o.n_gids++] = (gid_t)v;
        else if (key == OPT_ALLOW_NAME && c->o.n_names < 16)
                c->names[c->o.n_names++] = value;
        else
                return cli_usage("shm create", "at most 16 of each --allow option");
        return 0;
}

/* A group's size: 1 byte to 16 GiB (ipcf.h, ipcf_group_create: -EINVAL
 * otherwise), checked here so a bad one is a usage error. 0 or a printed
 * usage error (CLI_EXIT_USAGE). */
#define SHM_GROUP_SIZE_MAX (16ull << 30)
static int parse_group_size(const char *cmd, const char *text, uint64_t *ret) {
        if (cli_parse_size(text, SHM_GROUP_SIZE_MAX, ret) < 0 || *ret == 0)
                return cli_usage(cmd, "bad size '%s' (1 byte to 16G)", text);
        return 0;
}

/* create NAME SIZE [--allow-uid N | --allow-gid N | --allow-name PROG]... */
static int shm_create(int argc, char **argv) {
        static const cli_option options[] = {
                { "allow-uid", OPT_ALLOW_UID, true },
                { "allow-gid", OPT_ALLOW_GID, true },
                { "allow-name", OPT_ALLOW_NAME, true },
                { 0 },
        };
        create_cfg c = { .o = { .size = sizeof(c.o) } };
        c.o.names = c.names;
        c.o.uids = c.uids;
        c.o.gids = c.gids;
        const cli_spec spec = { .cmd = "shm create",
                                .usage = "usage: ipcf shm create NAME SIZE [--allow-uid N] [--allow-gid N] "
                                         "[--allow-name PROG]...\n\n"
                                         "Create a shared-memory group of SIZE bytes (k, m, g suffixes); its\n"
                                         "members: your uid and those allowed (16 of each at most).\n",
                                .options = options,
                                .min_args = 2, .max_args = 2, .args_name = "NAME or SIZE",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, create_option, &c, &args);
        if (st != CLI_PARSED)
                return st;
        uint64_t size;
        if (parse_group_size("shm create", args.v[1], &size) != 0)
                return CLI_EXIT_USAGE;
        int r = ipcf_group_create(args.v[0], size, &c.o);
        return r < 0 ? cli_error(args.v[0], r) : CLI_EXIT_OK;
}

/* The table of the groups and segments of v[0..n) that match filter, on
 * stdout; how many rows (none: nothing printed), or -ENOMEM. */
static int print_table(const ipcf_group_entry *v, size_t n, const cli_args *filter) {
        static const bool right[] = { false, false, true, true, true, true, false };
        cli_table *t = cli_table_new(7, right);
        if (!t)
                return -ENOMEM;
        const char *head[] = { "SHM GROUP/SEGMENT", "KIND", "SIZE", "MEMBERS", "OWNER", "GEN", "STATE" };
        for (int i = 0; i < 7; i++)
                cli_table_add(t, "%s", head[i]);
        int shown = 0;
        for (size_t i = 0; i < n; i++) {
                char b[32];
                if (!cli_name_match(filter, v[i].name))
                        continue;
                shown++;
                cli_table_add(t, "%s", v[i].name);
                cli_table_add(t, "%s", v[i].kind ? "segment" : "group");
                cli_table_add(t, "%s", cli_fmt_bytes(b, sizeof(b), (double)v[i].size));
                cli_table_add(t, "%u", v[i].members);
                cli_table_add(t, "%u", (unsigned)v[i].owner_uid);
                cli_table_add(t, "%" PRIu64, v[i].generation);
                if (v[i].kind)
                        cli_table_add(t, "mode %03o", v[i].mode);
                else
                        cli_table_add(t, "%s", v[i].state ? "dissolved" : "live");
        }
        if (shown)
                cli_table_print(t, stdout);
        cli_table_free(t);
        return shown;
}

/* "shm":[...] of the entries that match filter. */
static void print_json(const ipcf_group_entry *v, size_t n, const cli_args *filter) {
        printf("\"shm\":[");
        const char *sep = "";
        for (size_t i = 0; i < n; i++) {
                if (!cli_name_match(filter, v[i].name))
                        continue;
                printf("%s\n {\"name\":", sep);
                sep = ",";
                cli_json_string(stdout, v[i].name);
                printf(",\"kind\":\"%s\",\"size\":%" PRIu64 ",\"members\":%u,\"owner_uid\":%u,"
                       "\"generation\":%" PRIu64 ",\"state\":\"%s\",\"mode\":%u}",
                       v[i].kind ? "segment" : "group", v[i].size, v[i].members,
                       (unsigned)v[i].owner_uid, v[i].generation,
                       v[i].state ? "dissolved" : "live", v[i].mode);
        }
        printf("]");
}

/* For `ipcf ls` (cmd_ls.c): the groups and segments table after a blank
 * line (nothing when there are none), or "shm":[...]; -errno (nothing
 * printed) when the facility could not be asked. */
int cli_ls_shm(bool json, const cli_args *filter) {
        ipcf_group_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_group_list(&v, &n);
        if (r < 0)
                return r; /* nothing printed */
        int shown = 0;
        if (json) {
                print_json(v, n, filter);
        } else if (n) {
                putchar('\n');
                shown = print_table(v, n, filter);
        }
        ipcf_free(v);
        return shown;
}

/* ls [--json] [NAME...]: the table `ipcf ls` shows, or a line saying there
 * is none; or {"shm":[...]}. */
static int shm_ls(int argc, char **argv) {
        const cli_spec spec = { .cmd = "shm ls",
                                .usage = "usage: ipcf shm ls [--json] [NAME...]\n\n"
                                         "List the shared-memory groups and named segments (NAME...: shell\n"
                                         "globs, keep those that match).\n"
                                         "  --json    one JSON object {\"shm\":[...]}, for scripts\n",
                                .json = true, .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        ipcf_group_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_group_list(&v, &n);
        if (r < 0)
                return cli_error("shm ls", r);
        if (args.json) {
                fputs("{", stdout);
                print_json(v, n, &args);
                fputs("}\n", stdout);
        } else if ((r = n ? print_table(v, n, &args) : 0) == 0) {
                printf("no groups or segments\n");
        }
        ipcf_free(v);
        return r < 0 ? cli_error("shm ls", r) : CLI_EXIT_OK;
}

/* info NAME [--json]: the members as the facility knows them. */
static int shm_info(int argc, char **argv) {
        const cli_spec spec = { .cmd = "shm info",
                                .usage = "usage: ipcf shm info NAME [--json]\n\n"
                                         "The members of shared-memory group NAME.\n"
                                         "  --json    one JSON object {\"name\",\"members\":[...]}, for scripts\n",
                                .json = true,
                                .min_args = 1, .max_args = 1, .args_name = "NAME",
                                .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        const char *name = args.v[0];
        ipcf_peer_info who[64];
        int n = ipcf_group_members(name, who, 64);
        if (n < 0)
                return cli_error(name, n);
        if (n > 64)
                n = 64;
        if (args.json) {
                printf("{\"name\":");
                cli_json_string(stdout, name);
                printf(",\"members\":[");
                for (int i = 0; i < n; i++) {
                        printf("%s\n {\"pid\":%d,\"uid\":%u,\"gid\":%u,\"program\":", i ? "," : "",
                               (int)who[i].pid, (unsigned)who[i].uid, (unsigned)who[i].gid);
                        cli_json_string(stdout, who[i].name);
                        printf("}");
                }
                printf("]}\n");
                return CLI_EXIT_OK;
        }
        printf("group %s: %d member%s\n", name, n, n == 1 ? "" : "s");
        for (int i = 0; i < n; i++)
                printf("  pid %d uid %u gid %u %s\n", (int)who[i].pid, (unsigned)who[i].uid,
                       (unsigned)who[i].gid, who[i].name);
        return CLI_EXIT_OK;
}

/* cat NAME [OFF [LEN]]: join, copy out through the bounds-checked API
 * (at most 64 MiB), exit. */
static int shm_cat(int argc, char **argv) {
        uint64_t off = 0, len = UINT64_MAX, size;
        if (argc > 2 && cli_parse_size(argv[2], UINT64_MAX, &off) < 0)
                return cli_usage("shm cat", "bad offset '%s'", argv[2]);
        if (argc > 3 && cli_parse_size(argv[3], UINT64_MAX, &len) < 0)
                return cli_usage("shm cat", "bad length '%s'", argv[3]);
        int g = ipcf_group_join(argv[1]);
        if (g < 0)
                return cli_error(argv[1], g);
        void *p;
        int r = ipcf_group_ptr(g, &p, &size);
        if (r == 0 && len == UINT64_MAX)
                len = off < size ? size - off : 0;
        if (r == 0 && len > SHM_CAT_MAX)
                r = -EFBIG;
        char *buf = r == 0 ? malloc(len ? len : 1) : NULL;
        if (r == 0 && !buf)
                r = -ENOMEM;
        if (r == 0) {
                ssize_t k = ipcf_group_read(g, off, buf, len);
                r = k < 0 ? (int)k : 0;
        }
        if (r == 0)
                r = cli_write_all(1, buf, len);
        free(buf);
        ipcf_dealloc(g, NULL);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

/* write NAME OFF: read stdin whole (at most 64 MiB), then one bounds-
 * checked write: past the end, nothing is written and the tool says so. */
static int shm_write(int argc, char **argv) {
        uint64_t off;
        if (cli_parse_size(argv[2], UINT64_MAX, &off) < 0)
                return cli_usage("shm write", "bad offset '%s'", argv[2]);
        size_t cap = 1 << 16, n = 0;
        char *buf = malloc(cap);
        if (!buf)
                return cli_error("stdin", -ENOMEM);
        for (;;) {
                if (n == cap) {
                        char *nb = cap < SHM_CAT_MAX ? realloc(buf, cap * 2) : NULL;
                        if (!nb) {
                                free(buf);
                                return cli_error("stdin", -EFBIG);
                        }
                        buf = nb;
                        cap *= 2;
                }
                ssize_t k = read(0, buf + n, cap - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        free(buf);
                        return cli_error("stdin", -errno);
                }
                if (k == 0)
                        break;
                n += (size_t)k;
        }
        int g = ipcf_group_join(argv[1]);
        ssize_t r = g < 0 ? g : ipcf_group_write(g, off, buf, n);
        if (g >= 0)
                ipcf_dealloc(g, NULL);
        free(buf);
        if (r == -ERANGE)
                return cli_fail("%s: %zu bytes at offset %" PRIu64 " do not fit: refused, nothing written",
                                argv[1], n, off);
        return r < 0 ? cli_error(argv[1], (int)r) : CLI_EXIT_OK;
}

/* dissolve NAME, unlink NAME, resize NAME SIZE: one call each. */
static int shm_dissolve(int argc, char **argv) {
        int r = ipcf_group_dissolve(argv[1]);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

static int shm_unlink(int argc, char **argv) {
        int r = ipcf_shm_unlink(argv[1]);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

static int shm_resize(int argc, char **argv) {
        uint64_t size;
        if (parse_group_size("shm resize", argv[2], &size) != 0)
                return CLI_EXIT_USAGE;
        int r = ipcf_group_resize(argv[1], size);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

/* The subcommands. Those with a parse of their own (options) take argv as
 * given; the others take no option: their positional arguments are checked
 * here and handed on as argv[1..argc). */
static const struct shm_sub {
        const char *name;
        int (*run)(int argc, char **argv);
        bool parses;              /* run calls cli_parse itself */
        int min_args, max_args;   /* otherwise */
        const char *args_name;
        const char *usage;
} shm_subs[] = {
        { "create", shm_create, true, 0, 0, NULL, NULL },
        { "ls", shm_ls, true, 0, 0, NULL, NULL },
        { "info", shm_info, true, 0, 0, NULL, NULL },
        { "resize", shm_resize, false, 2, 2, "NAME or SIZE",
          "usage: ipcf shm resize NAME SIZE\n\nGrow or shrink group NAME (members are told).\n" },
        { "dissolve", shm_dissolve, false, 1, 1, "NAME",
          "usage: ipcf shm dissolve NAME\n\nEnd group NAME (members are told).\n" },
        { "cat", shm_cat, false, 1, 3, "NAME",
          "usage: ipcf shm cat NAME [OFF [LEN]]\n\nJoin group NAME and print LEN bytes from OFF "
          "(default: all of it, at most 64 MiB).\n" },
        { "write", shm_write, false, 2, 2, "NAME or OFFSET",
          "usage: ipcf shm write NAME OFF\n\nJoin group NAME and copy stdin into it at OFF (refused, "
          "nothing written, past the end).\n" },
        { "unlink", shm_unlink, false, 1, 1, "NAME",
          "usage: ipcf shm unlink NAME\n\nRemove named segment NAME (ipcf_shm_open).\n" },
};

/* Dispatch on the subcommand; its arguments follow as argv[1..]. */
int cmd_shm(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(shm_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        argc--, argv++;
        for (size_t i = 0; i < sizeof(shm_subs) / sizeof(shm_subs[0]); i++) {
                const struct shm_sub *c = &shm_subs[i];
                if (strcmp(sub, c->name) != 0)
                        continue;
                if (c->parses)
                        return c->run(argc, argv);
                char cmd[32];
                snprintf(cmd, sizeof(cmd), "shm %s", sub);
                const cli_spec spec = { .cmd = cmd, .usage = c->usage, .min_args = c->min_args,
                                        .max_args = c->max_args, .args_name = c->args_name,
                                        .first_is_name = true };
                cli_args args;
                int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
                return st != CLI_PARSED ? st : c->run(1 + args.n, argv);
        }
        if (sub[0] == '-')
                return cli_usage("shm", "unknown option '%s'", sub);
        return cli_usage("shm", "unknown command '%s'", sub);
}
