/*
 * cmd_shm.c — `ipcf shm ...`: shared-memory groups and named segments from
 * the shell (docs/GROUPS.md). Kept apart from the multicast groups of
 * `ipcf mcast`.
 *
 *   ipcf shm create NAME SIZE [--allow-uid N]... [--allow-gid N]... [--allow-name PROG]...
 *   ipcf shm ls                     groups and segments this user may see
 *   ipcf shm info NAME              a group's entry and its members
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
void cli_ls_shm(bool json);

static const char shm_usage[] =
        "usage: ipcf shm COMMAND ...\n\n"
        "Shared-memory groups: memory the facility shares among the members it admits.\n"
        "  create NAME SIZE [--allow-uid N] [--allow-gid N] [--allow-name PROG]...\n"
        "                         create a group (members: your uid + those listed)\n"
        "  ls                     list groups and named segments\n"
        "  info NAME              a group and its members\n"
        "  resize NAME SIZE       grow or shrink a group (members are told)\n"
        "  dissolve NAME          end a group (members are told)\n"
        "  cat NAME [OFF [LEN]]   print bytes of a group (default: all of it)\n"
        "  write NAME OFF         copy stdin into a group at OFF (refused past the end)\n"
        "  unlink NAME            remove a named segment (ipcf_shm_open)\n"
        "SIZE, OFF and LEN take k, m, g suffixes.\n";

#define SHM_CAT_MAX (64u << 20)

/* create NAME SIZE [--allow-uid N | --allow-gid N | --allow-name PROG]... */
static int shm_create(int argc, char **argv) {
        if (argc < 3)
                return cli_usage("shm", "create needs NAME and SIZE");
        uint64_t size;
        if (cli_parse_size(argv[2], UINT64_MAX, &size) < 0)
                return cli_usage("shm", "bad size '%s'", argv[2]);
        const char *names[16];
        uid_t uids[16];
        gid_t gids[16];
        ipcf_group_opts o = { .size = sizeof(o), .names = names, .uids = uids, .gids = gids };
        for (int i = 3; i < argc; i += 2) {
                uint64_t v = 0;
                if (i + 1 >= argc)
                        return cli_usage("shm", "%s needs a value", argv[i]);
                bool num = strcmp(argv[i], "--allow-name") != 0;
                if (num && cli_parse_uint(argv[i + 1], UINT32_MAX, &v) < 0)
                        return cli_usage("shm", "bad id '%s'", argv[i + 1]);
                if (!strcmp(argv[i], "--allow-uid") && o.n_uids < 16)
                        uids[o.n_uids++] = (uid_t)v;
                else if (!strcmp(argv[i], "--allow-gid") && o.n_gids < 16)
                        gids[o.n_gids++] = (gid_t)v;
                else if (!strcmp(argv[i], "--allow-name") && o.n_names < 16)
                        names[o.n_names++] = argv[i + 1];
                else
                        return cli_usage("shm", "unknown option or too many: '%s'", argv[i]);
        }
        int r = ipcf_group_create(argv[1], size, &o);
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}

/* The table of groups and segments (v[0..n), n > 0) on stdout. */
static int print_table(const ipcf_group_entry *v, size_t n) {
        static const bool right[] = { false, false, true, true, true, true, false };
        cli_table *t = cli_table_new(7, right);
        if (!t)
                return -ENOMEM;
        const char *head[] = { "SHM GROUP/SEGMENT", "KIND", "SIZE", "MEMBERS", "OWNER", "GEN", "STATE" };
        for (int i = 0; i < 7; i++)
                cli_table_add(t, "%s", head[i]);
        for (size_t i = 0; i < n; i++) {
                char b[32];
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
        cli_table_print(t, stdout);
        cli_table_free(t);
        return 0;
}

/* ls: the same table as `ipcf ls` shows, or a line saying there is none. */
static int shm_ls(void) {
        ipcf_group_entry *v = NULL;
        size_t n = 0;
        int r = ipcf_group_list(&v, &n);
        if (r < 0)
                return cli_error("list", r);
        if (!n)
                printf("no groups or segments\n");
        else
                r = print_table(v, n);
        ipcf_free(v);
        return r < 0 ? cli_error("list", r) : CLI_EXIT_OK;
}

/* For `ipcf ls` (cmd_ls.c): the groups and segments table after the others
 * (nothing when there are none), or in JSON `,"shm":[...]`. */
void cli_ls_shm(bool json) {
        ipcf_group_entry *v = NULL;
        size_t n = 0;
        if (ipcf_group_list(&v, &n) < 0)
                n = 0;
        if (json) {
                printf(",\n\"shm\":[");
                for (size_t i = 0; i < n; i++) {
                        printf("%s\n {\"name\":", i ? "," : "");
                        cli_json_string(stdout, v[i].name);
                        printf(",\"kind\":\"%s\",\"size\":%" PRIu64 ",\"members\":%u,\"owner_uid\":%u,"
                               "\"generation\":%" PRIu64 ",\"state\":\"%s\",\"mode\":%u}",
                               v[i].kind ? "segment" : "group", v[i].size, v[i].members,
                               (unsigned)v[i].owner_uid, v[i].generation,
                               v[i].state ? "dissolved" : "live", v[i].mode);
                }
                printf("]");
        } else if (n) {
                putchar('\n');
                print_table(v, n);
        }
        ipcf_free(v);
}

/* info NAME: the members as the facility knows them. */
static int shm_info(const char *name) {
        ipcf_peer_info who[64];
        int n = ipcf_group_members(name, who, 64);
        if (n < 0)
                return cli_error(name, n);
        printf("group %s: %d member%s\n", name, n, n == 1 ? "" : "s");
        for (int i = 0; i < n && i < 64; i++)
                printf("  pid %d uid %u gid %u %s\n", (int)who[i].pid, (unsigned)who[i].uid,
                       (unsigned)who[i].gid, who[i].name);
        return CLI_EXIT_OK;
}

/* cat NAME [OFF [LEN]]: join, copy out through the bounds-checked API
 * (at most 64 MiB), exit. */
static int shm_cat(int argc, char **argv) {
        uint64_t off = 0, len = UINT64_MAX, size;
        if ((argc > 2 && cli_parse_size(argv[2], UINT64_MAX, &off) < 0) ||
            (argc > 3 && cli_parse_size(argv[3], UINT64_MAX, &len) < 0))
                return cli_usage("shm", "bad offset or length");
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
        if (argc < 3 || cli_parse_size(argv[2], UINT64_MAX, &off) < 0)
                return cli_usage("shm", "write needs NAME and OFFSET");
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

/* Dispatch on the subcommand; its arguments follow as argv[1..]. */
int cmd_shm(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                fputs(shm_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        const char *sub = argv[1];
        argc--, argv++;
        if (!strcmp(sub, "ls"))
                return shm_ls();
        if (argc < 2)
                return cli_usage("shm", "%s needs a NAME", sub);
        int r;
        if (!strcmp(sub, "create"))
                return shm_create(argc, argv);
        if (!strcmp(sub, "info"))
                return shm_info(argv[1]);
        if (!strcmp(sub, "cat"))
                return shm_cat(argc, argv);
        if (!strcmp(sub, "write"))
                return shm_write(argc, argv);
        if (!strcmp(sub, "dissolve")) {
                r = ipcf_group_dissolve(argv[1]);
        } else if (!strcmp(sub, "unlink")) {
                r = ipcf_shm_unlink(argv[1]);
        } else if (!strcmp(sub, "resize")) {
                uint64_t size;
                if (argc < 3 || cli_parse_size(argv[2], UINT64_MAX, &size) < 0)
                        return cli_usage("shm", "resize needs NAME and SIZE");
                r = ipcf_group_resize(argv[1], size);
        } else {
                return cli_usage("shm", "unknown command '%s'", sub);
        }
        return r < 0 ? cli_error(argv[1], r) : CLI_EXIT_OK;
}
