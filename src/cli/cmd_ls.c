/*
 * cmd_ls.c — `ipcf ls [--json] [NAME...]`: the facility's view of this host,
 * from ipcf_list(): every registered name with its registrant and its
 * program, and every flow with its counters, as aligned tables or as JSON
 * for scripts. NAME... (shell globs) keep the names, flows, mailboxes,
 * groups and segments whose name matches one of them.
 *
 * The JSON has one object: daemon_pid, uptime_ms, runtime_dir, "names" (array
 * of {name, pid, program, uid, flows, pending}) and "flows" (array of {id,
 * name, host ("" or the host of the flow's other side), pid_a, program_a,
 * pid_b, program_b, mode, capacity, full, max_bytes, max_msgs, max_msg_size,
 * spin_us, msgs_ab, bytes_ab, queued_ab, msgs_ba, bytes_ba, queued_ba,
 * state}), then "models" and "shm". Direction "ab" is allocator (pid_a) to
 * acceptor (pid_b). A program is /proc/PID/comm, "-" when unknown (a process
 * of another host, or pid 0: a registrant the caller may not see).
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>


static const char ls_usage[] =
        "usage: ipcf ls [--json] [NAME...]\n\n"
        "List the names registered with this host's facility, its flows, mailboxes,\n"
        "multicast groups and shared-memory groups; NAME... (shell globs such as\n"
        "'printer.*') keep only those whose name matches.\n"
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
static void print_names(const ipcf_listing *l, const cli_args *filter) {
        static const bool right[] = { false, true, false, true, true, true };
        cli_table *t = cli_table_new(6, right);
        static const char *const head[] = { "NAME", "PID", "PROGRAM", "UID", "FLOWS", "PENDING" };
        for (size_t i = 0; i < 6; i++)
                cli_table_add(t, "%s", head[i]);
        size_t shown = 0;
        for (size_t i = 0; i < l->n_names; i++) {
                const ipcf_name_entry *e = &l->names[i];
                char prog[32];
                if (!cli_name_match(filter, e->name))
                        continue;
                shown++;
                cli_table_add(t, "%s", e->name);
                cli_table_add(t, "%d", (int)e->pid);
                cli_table_add(t, "%s", cli_program(prog, sizeof(prog), e->pid));
                cli_table_add(t, "%u", (unsigned)e->uid);
                cli_table_add(t, "%u", e->flows);
                cli_table_add(t, "%u", e->pending);
        }
        if (shown)
                cli_table_print(t, stdout);
        else
                printf("no names registered\n");
        cli_table_free(t);
}

/* Is side (0: allocator, 1: acceptor) of flows[i] a process of this host?
 * On the allocating host a flow across hosts is named name@host. */
static bool side_local(const ipcf_listing *l, size_t i, int side) {
        const char *host = l->flow_hosts[i], *name = l->flows[i].name;
        if (!host[0])
                return true;
        size_t nl = strlen(name), hl = strlen(host);
        bool b_remote = nl > hl && name[nl - hl - 1] == '@' && !strcmp(name + nl - hl, host);
        return side == 0 ? b_remote : !b_remote;
}

/* The FLOW table: one row per flow, counters in both directions; numbers
 * are right-aligned so that magnitudes line up. */
static void print_flows(const ipcf_listing *l, const cli_args *filter) {
        size_t shown = 0;
        for (size_t i = 0; i < l->n_flows; i++)
                shown += cli_name_match(filter, l->flows[i].name);
        if (!shown) {
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
                char b[5][32], pa[32], pb[32];
                if (!cli_name_match(filter, f->name))
                        continue;
                cli_table_add(t, "%" PRIu64, f->id);
                cli_table_add(t, "%s", f->name);
                const char *host = l->flow_hosts[i];
                cli_program(pa, sizeof(pa), side_local(l, i, 0) ? f->pid_a : 0);
                cli_program(pb, sizeof(pb), side_local(l, i, 1) ? f->pid_b : 0);
                if (!host[0])
                        cli_table_add(t, "%d %s -> %d %s", (int)f->pid_a, pa, (int)f->pid_b, pb);
                else if (side_local(l, i, 0))
                        cli_table_add(t, "%d %s -> %d@%s", (int)f->pid_a, pa, (int)f->pid_b, host);
                else
                        cli_table_add(t, "%d@%s -> %d %s", (int)f->pid_a, host, (int)f->pid_b, pb);
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
static void print_text(const ipcf_listing *l, const cli_args *filter) {
        char up[32];
        printf("facility %s: ipcfd pid %d, up %s\n\n", ipcf_runtime_dir(), (int)l->daemon_pid,
               fmt_uptime(up, sizeof(up), l->daemon_uptime_ms));
        print_names(l, filter);
        putchar('\n');
        print_flows(l, filter);
        cli_ls_models(false, -1, filter); /* models.c: mailboxes and groups, if any */
        cli_ls_shm(false, filter);        /* cmd_shm.c: groups and segments, if any */
}

/* The script view: the object described at the top of this file. Numbers
 * are raw (bytes, ms); only strings need escaping (cli_json_string). */
static void print_json(const ipcf_listing *l, const cli_args *filter) {
        printf("{\"daemon_pid\":%d,\"uptime_ms\":%" PRIu64 ",\"runtime_dir\":", (int)l->daemon_pid,
               l->daemon_uptime_ms);
        cli_json_string(stdout, ipcf_runtime_dir());
        printf(",\n\"names\":[");
        const char *sep = "";
        for (size_t i = 0; i < l->n_names; i++) {
                const ipcf_name_entry *e = &l->names[i];
                char prog[32];
                if (!cli_name_match(filter, e->name))
                        continue;
                printf("%s\n {\"name\":", sep);
                sep = ",";
                cli_json_string(stdout, e->name);
                printf(",\"pid\":%d,\"program\":", (int)e->pid);
                cli_json_string(stdout, cli_program(prog, sizeof(prog), e->pid));
                printf(",\"uid\":%u,\"flows\":%u,\"pending\":%u}", (unsigned)e->uid, e->flows,
                       e->pending);
        }
        printf("],\n\"flows\":[");
        sep = "";
        for (size_t i = 0; i < l->n_flows; i++) {
                const ipcf_flow_entry *f = &l->flows[i];
                const ipcf_qos *q = &f->qos;
                char prog[32];
                if (!cli_name_match(filter, f->name))
                        continue;
                printf("%s\n {\"id\":%" PRIu64 ",\"name\":", sep, f->id);
                sep = ",";
                cli_json_string(stdout, f->name);
                printf(",\"host\":");
                cli_json_string(stdout, l->flow_hosts[i]);
                printf(",\"program_a\":");
                cli_json_string(stdout, cli_program(prog, sizeof(prog), side_local(l, i, 0) ? f->pid_a : 0));
                printf(",\"program_b\":");
                cli_json_string(stdout, cli_program(prog, sizeof(prog), side_local(l, i, 1) ? f->pid_b : 0));
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
        printf("],\n");
        if (cli_ls_models(true, -1, filter) < 0) /* models.c: "models":[...] */
                printf("\"models\":[]");
        printf(",\n");
        if (cli_ls_shm(true, filter) < 0) /* cmd_shm.c: "shm":[...] */
                printf("\"shm\":[]");
        printf("}\n");
}

/* ipcf ls [--json] [NAME...]: one ipcf_list() snapshot, printed one way or
 * the other. */
int cmd_ls(int argc, char **argv) {
        const cli_spec spec = { .cmd = "ls", .usage = ls_usage, .json = true, .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        ipcf_listing *l = NULL;
        int r = ipcf_list(&l);
        if (r < 0)
                return cli_error("ls", r);
        if (args.json)
                print_json(l, &args);
        else
                print_text(l, &args);
        ipcf_free(l);
        return CLI_EXIT_OK;
}
