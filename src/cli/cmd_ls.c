/*
 * cmd_ls.c — `ipcf ls [--json]`: the facility's view of this host, from
 * ipcf_list(): every registered name with its registrant, and every flow
 * with its counters, as aligned tables or as JSON for scripts.
 *
 * The JSON has one object: daemon_pid, uptime_ms, runtime_dir, "names" (array
 * of {name, pid, uid, flows, pending}) and "flows" (array of {id, name,
 * host ("" or the host of the flow's other side), pid_a, pid_b, mode, capacity, full, max_bytes, max_msgs, max_msg_size,
 * spin_us, msgs_ab, bytes_ab, queued_ab, msgs_ba, bytes_ba, queued_ba,
 * state}). Direction "ab" is allocator (pid_a) to acceptor (pid_b).
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

void cli_ls_shm(bool json); /* cmd_shm.c */

static const char ls_usage[] =
        "usage: ipcf ls [--json]\n\n"
        "List the names registered with this host's facility and its flows.\n"
        "  --json    one JSON object, for scripts\n";

/* "3h02m", "41.2s": the daemon's uptime for humans. */
static const char *fmt_uptime(char *buf, size_t cap, uint64_t ms) {
        uint64_t s = ms / 1000;
        if (s < 60)
                snprintf(buf, cap, "%.1fs", (double)ms / 1000);
        else if (s < 3600)
                snprintf(buf, cap, "%" PRIu64 "m%02" PRIu64 "s", s / 60, s % 60);
        else
                snprintf(buf, cap, "%" PRIu64 "h%02" PRIu64 "m", s / 3600, s / 60 % 60);
        return buf;
}

/* The queue limit of a flow in words: "1.00 MiB", "zero", "64 MiB max". */
static const char *fmt_limit(char *buf, size_t cap, const ipcf_qos *q) {
        char b[32];
        if (q->capacity == IPCF_CAPACITY_ZERO)
                snprintf(buf, cap, "zero");
        else
                snprintf(buf, cap, "%s %s", cli_capacity_name(q->capacity),
                         cli_fmt_bytes(b, sizeof(b), (double)q->max_bytes));
        return buf;
}

/* The NAME table: one row per registration (a name may have several). */
static void print_names(const ipcf_listing *l) {
        if (!l->n_names) {
                printf("no names registered\n");
                return;
        }
        static const bool right[] = { false, true, true, true, true };
        cli_table *t = cli_table_new(5, right);
        cli_table_add(t, "NAME");
        cli_table_add(t, "PID");
        cli_table_add(t, "UID");
        cli_table_add(t, "FLOWS");
        cli_table_add(t, "PENDING");
        for (size_t i = 0; i < l->n_names; i++) {
                const ipcf_name_entry *e = &l->names[i];
                cli_table_add(t, "%s", e->name);
                cli_table_add(t, "%d", (int)e->pid);
                cli_table_add(t, "%u", (unsigned)e->uid);
                cli_table_add(t, "%u", e->flows);
                cli_table_add(t, "%u", e->pending);
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
}

/* The FLOW table: one row per flow, counters in both directions; numbers
 * are right-aligned so that magnitudes line up. */
static void print_flows(const ipcf_listing *l) {
        if (!l->n_flows) {
                printf("no flows\n");
                return;
        }
        static const bool right[] = { true, false, false, false, false,
                                      true, true, true, true, true, true, false };
        cli_table *t = cli_table_new(12, right);
        static const char *const head[] = { "ID", "NAME", "A -> B", "MODE", "QUEUE",
                                            "MSGS A>B", "BYTES A>B", "QUEUED", "MSGS B>A",
                                            "BYTES B>A", "QUEUED", "STATE" };
        for (size_t i = 0; i < 12; i++)
                cli_table_add(t, "%s", head[i]);
        for (size_t i = 0; i < l->n_flows; i++) {
                const ipcf_flow_entry *f = &l->flows[i];
                char b[5][32];
                cli_table_add(t, "%" PRIu64, f->id);
                cli_table_add(t, "%s", f->name);
                const char *host = l->flow_hosts[i];
                if (!host[0]) {
                        cli_table_add(t, "%d -> %d", (int)f->pid_a, (int)f->pid_b);
                } else {
                        /* on the allocating host the flow is named name@host */
                        size_t nl = strlen(f->name), hl = strlen(host);
                        bool b_remote = nl > hl && f->name[nl - hl - 1] == '@' && !strcmp(f->name + nl - hl, host);
                        if (b_remote)
                                cli_table_add(t, "%d -> %d@%s", (int)f->pid_a, (int)f->pid_b, host);
                        else
                                cli_table_add(t, "%d@%s -> %d", (int)f->pid_a, host, (int)f->pid_b);
                }
                cli_table_add(t, "%s", cli_mode_name(f->qos.mode));
                cli_table_add(t, "%s", fmt_limit(b[0], sizeof(b[0]), &f->qos));
                cli_table_add(t, "%s", cli_fmt_count(b[1], sizeof(b[1]), (double)f->msgs_ab));
                cli_table_add(t, "%s", cli_fmt_bytes(b[2], sizeof(b[2]), (double)f->bytes_ab));
                cli_table_add(t, "%s", cli_fmt_bytes(b[3], sizeof(b[3]), (double)f->queued_ab));
                cli_table_add(t, "%s", cli_fmt_count(b[4], sizeof(b[4]), (double)f->msgs_ba));
                cli_table_add(t, "%s", cli_fmt_bytes(b[1], sizeof(b[1]), (double)f->bytes_ba));
                cli_table_add(t, "%s", cli_fmt_bytes(b[2], sizeof(b[2]), (double)f->queued_ba));
                cli_table_add(t, "%s", f->state == 0 ? "live" : "closing");
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
}

/* The human view: a header line about the daemon, then both tables. */
static void print_text(const ipcf_listing *l) {
        char up[32];
        printf("facility %s: ipcfd pid %d, up %s\n\n", ipcf_runtime_dir(), (int)l->daemon_pid,
               fmt_uptime(up, sizeof(up), l->daemon_uptime_ms));
        print_names(l);
        putchar('\n');
        print_flows(l);
        cli_ls_models(false); /* models.c: mailboxes and groups, if any */
        cli_ls_shm(false);    /* cmd_shm.c: shared-memory groups and segments, if any */
}

/* The script view: the object described at the top of this file. Numbers
 * are raw (bytes, ms); only strings need escaping (cli_json_string). */
static void print_json(const ipcf_listing *l) {
        printf("{\"daemon_pid\":%d,\"uptime_ms\":%" PRIu64 ",\"runtime_dir\":", (int)l->daemon_pid,
               l->daemon_uptime_ms);
        cli_json_string(stdout, ipcf_runtime_dir());
        printf(",\n\"names\":[");
        for (size_t i = 0; i < l->n_names; i++) {
                const ipcf_name_entry *e = &l->names[i];
                printf("%s\n {\"name\":", i ? "," : "");
                cli_json_string(stdout, e->name);
                printf(",\"pid\":%d,\"uid\":%u,\"flows\":%u,\"pending\":%u}", (int)e->pid,
                       (unsigned)e->uid, e->flows, e->pending);
        }
        printf("],\n\"flows\":[");
        for (size_t i = 0; i < l->n_flows; i++) {
                const ipcf_flow_entry *f = &l->flows[i];
                const ipcf_qos *q = &f->qos;
                printf("%s\n {\"id\":%" PRIu64 ",\"name\":", i ? "," : "", f->id);
                cli_json_string(stdout, f->name);
                printf(",\"host\":");
                cli_json_string(stdout, l->flow_hosts[i]);
                printf(",\"pid_a\":%d,\"pid_b\":%d,\"mode\":\"%s\",\"capacity\":\"%s\","
                       "\"full\":\"%s\",\"max_bytes\":%" PRIu64 ",\"max_msgs\":%u,"
                       "\"max_msg_size\":%u,\"spin_us\":%u,",
                       (int)f->pid_a, (int)f->pid_b, cli_mode_name(q->mode),
                       cli_capacity_name(q->capacity), cli_full_name(q->full), q->max_bytes,
                       q->max_msgs, q->max_msg_size, q->spin_us);
                printf("\"msgs_ab\":%" PRIu64 ",\"bytes_ab\":%" PRIu64 ",\"queued_ab\":%" PRIu64
                       ",\"msgs_ba\":%" PRIu64 ",\"bytes_ba\":%" PRIu64 ",\"queued_ba\":%" PRIu64
                       ",\"state\":\"%s\"}",
                       f->msgs_ab, f->bytes_ab, f->queued_ab, f->msgs_ba, f->bytes_ba,
                       f->queued_ba, f->state == 0 ? "live" : "closing");
        }
        printf("]");
        cli_ls_models(true); /* models.c: ,"models":[...] */
        cli_ls_shm(true);    /* cmd_shm.c: ,"shm":[...] */
        printf("}\n");
}

/* ipcf ls [--json]: one ipcf_list() snapshot, printed one way or the other. */
int cmd_ls(int argc, char **argv) {
        static const struct option longopts[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        bool json = false;
        int opt;
        cli_getopt_reset();
        while ((opt = getopt_long(argc, argv, ":jh", longopts, NULL)) != -1) {
                switch (opt) {
                case 'j': json = true; break;
                case 'h': fputs(ls_usage, stdout); return CLI_EXIT_OK;
                default: return cli_bad_option("ls", opt, argv);
                }
        }
        if (optind < argc)
                return cli_usage("ls", "unexpected argument '%s'", argv[optind]);

        ipcf_listing *l = NULL;
        int r = ipcf_list(&l);
        if (r < 0)
                return cli_error("ls", r);
        if (json)
                print_json(l);
        else
                print_text(l);
        ipcf_free(l);
        return CLI_EXIT_OK;
}
