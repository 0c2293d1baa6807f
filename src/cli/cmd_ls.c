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
 *
 * --all-hosts: the directory's view beside this host's names, from
 * ipcf_dir_list() and ipcf_hosts(): every record of the directory's cache
 * the caller's policy lets it see (name, host, address, key fingerprint,
 * attributes, whether this host can use it and why not, etcd revision, age
 * in the cache), after the directory's health. Without a directory, the
 * enrolled hosts (the static search). Its JSON: {"self", "names" (as
 * above), "directory" (the health object of `ipcf hosts --json`, or null),
 * "truncated", "records" (array of {name, host, addr, fp, attrs {K: V},
 * usable, status, revision, lease, age_ms}), "hosts" (array of {name, addr,
 * state})}.
 */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char ls_usage[] =
        "usage: ipcf ls [--all-hosts] [--json] [NAME...]\n\n"
        "List the names registered with this host's facility, its flows, mailboxes,\n"
        "multicast groups and shared-memory groups; NAME... (shell globs such as\n"
        "'printer.*') keep only those whose name matches.\n"
        "  --all-hosts  the directory's view instead: every name it knows on any\n"
        "               host (whether this host can use it, and why not), beside\n"
        "               this host's own names; without a directory, the enrolled hosts\n"
        "  --json       one JSON object, for scripts\n";

enum { OPT_ALL_HOSTS = CLI_OPT_FIRST_PRIVATE };

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

/* ,"names":[...] of the JSON views. */
static void print_names_json(const ipcf_listing *l, const cli_args *filter) {
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
        printf("]");
}

/* The script view: the object described at the top of this file. Numbers
 * are raw (bytes, ms); only strings need escaping (cli_json_string). */
static void print_json(const ipcf_listing *l, const cli_args *filter) {
        printf("{\"daemon_pid\":%d,\"uptime_ms\":%" PRIu64 ",\"runtime_dir\":", (int)l->daemon_pid,
               l->daemon_uptime_ms);
        cli_json_string(stdout, ipcf_runtime_dir());
        print_names_json(l, filter);
        printf(",\n\"flows\":[");
        const char *sep = "";
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

/* ---- --all-hosts ---------------------------------------------------------- */

/* Why a record can be used or not, for humans and for JSON. */
static const char *status_text(uint32_t s, bool json) {
        static const char *const text[][2] = {
                [IPCF_DIR_USABLE] = { "usable", "usable" },
                [IPCF_DIR_TRUSTED] = { "usable (key from etcd)", "trusted" },
                [IPCF_DIR_TRUSTABLE] = { "usable (key from etcd, on first use)", "trustable" },
                [IPCF_DIR_SELF] = { "this host", "self" },
                [IPCF_DIR_NOT_ENROLLED] = { "UNUSABLE: host not enrolled", "not_enrolled" },
                [IPCF_DIR_FP_MISMATCH] = { "UNUSABLE: fingerprint mismatch", "fp_mismatch" },
                [IPCF_DIR_BAD_KEY] = { "UNUSABLE: key not its fingerprint's", "bad_key" },
        };
        return s < sizeof(text) / sizeof(text[0]) ? text[s][json] : json ? "unknown" : "?";
}

static bool status_usable(uint32_t s) { return s <= IPCF_DIR_SELF; }

static const char *host_state(uint32_t s) {
        return s == IPCF_HOST_UP ? "up" : s == IPCF_HOST_CONNECTING ? "connecting" : "down";
}

/* The records' table (text). */
static void print_records(const ipcf_dir_listing *dl, const cli_args *filter) {
        static const bool right[] = { false, false, false, false, false, false, true, true };
        cli_table *t = cli_table_new(8, right);
        static const char *const head[] = { "NAME", "HOST", "ADDRESS", "KEY", "ATTRIBUTES", "STATUS", "REVISION", "AGE" };
        for (size_t i = 0; i < 8; i++)
                cli_table_add(t, "%s", head[i]);
        size_t shown = 0;
        for (size_t i = 0; i < dl->n; i++) {
                const ipcf_dir_record *r = &dl->records[i];
                char age[32], attrs[1024];
                if (!cli_name_match(filter, r->name))
                        continue;
                shown++;
                snprintf(attrs, sizeof(attrs), "%s", r->attrs[0] ? r->attrs : "-");
                for (char *p = attrs; *p; p++)
                        if (*p == '\n')
                                *p = ',';
                cli_table_add(t, "%s", r->name);
                cli_table_add(t, "%s", r->host);
                cli_table_add(t, "%s", r->addr);
                cli_table_add(t, "%.19s", r->fp[0] ? r->fp : "-"); /* "sha256:" + 12 hex digits */
                cli_table_add(t, "%s", attrs);
                cli_table_add(t, "%s", status_text(r->status, false));
                cli_table_add(t, "%" PRId64, r->revision);
                cli_table_add(t, "%s", fmt_uptime(age, sizeof(age), r->age_ms));
        }
        if (shown)
                cli_table_print(t, stdout);
        else
                printf("no names in the directory\n");
        cli_table_free(t);
        if (dl->truncated)
                printf("(truncated: only the first %d records of the directory were read)\n", IPCF_DIR_LIST_MAX);
}

/* The enrolled hosts (the static view). */
static void print_enrolled(const ipcf_host_listing *hl) {
        static const bool right[] = { false, false, false };
        cli_table *t = cli_table_new(3, right);
        static const char *const head[] = { "HOST", "ADDRESS", "STATE" };
        for (size_t i = 0; i < 3; i++)
                cli_table_add(t, "%s", head[i]);
        for (size_t i = 0; i < hl->n; i++) {
                cli_table_add(t, "%s", hl->hosts[i].name);
                cli_table_add(t, "%s", hl->hosts[i].addr[0] ? hl->hosts[i].addr : "-");
                cli_table_add(t, "%s", host_state(hl->hosts[i].state));
        }
        if (hl->n)
                cli_table_print(t, stdout);
        else
                printf("no host enrolled: this host is local only\n");
        cli_table_free(t);
}

static void print_all_text(const ipcf_listing *l, const ipcf_dir_listing *dl, const ipcf_host_listing *hl,
                           const cli_args *filter) {
        printf("this host %s:\n", hl->self);
        print_names(l, filter);
        putchar('\n');
        if (!dl->directory) {
                printf("directory: off ([directory] backend = static): the enrolled hosts are asked\n");
                print_enrolled(hl);
                return;
        }
        cli_dir_health_text(dl->directory);
        print_records(dl, filter);
}

static void print_all_json(const ipcf_listing *l, const ipcf_dir_listing *dl, const ipcf_host_listing *hl,
                           const cli_args *filter) {
        printf("{\"self\":");
        cli_json_string(stdout, hl->self);
        print_names_json(l, filter);
        printf(",\n\"directory\":");
        if (dl->directory)
                cli_dir_health_json(dl->directory);
        else
                printf("null");
        printf(",\n\"truncated\":%s,\n\"records\":[", dl->truncated ? "true" : "false");
        const char *sep = "";
        for (size_t i = 0; i < dl->n; i++) {
                const ipcf_dir_record *r = &dl->records[i];
                if (!cli_name_match(filter, r->name))
                        continue;
                printf("%s\n {\"name\":", sep);
                sep = ",";
                cli_json_string(stdout, r->name);
                printf(",\"host\":");
                cli_json_string(stdout, r->host);
                printf(",\"addr\":");
                cli_json_string(stdout, r->addr);
                printf(",\"fp\":");
                cli_json_string(stdout, r->fp);
                printf(",\"attrs\":");
                cli_json_attrs(stdout, r->attrs);
                printf(",\"usable\":%s,\"status\":\"%s\",\"revision\":%" PRId64 ",\"lease\":%" PRId64
                       ",\"age_ms\":%" PRIu64 "}",
                       status_usable(r->status) ? "true" : "false", status_text(r->status, true), r->revision,
                       r->lease, r->age_ms);
        }
        printf("],\n\"hosts\":[");
        sep = "";
        for (size_t i = 0; i < hl->n; i++) {
                printf("%s\n {\"name\":", sep);
                sep = ",";
                cli_json_string(stdout, hl->hosts[i].name);
                printf(",\"addr\":");
                cli_json_string(stdout, hl->hosts[i].addr);
                printf(",\"state\":\"%s\"}", host_state(hl->hosts[i].state));
        }
        printf("]}\n");
}

/* By name, then host. */
static int record_cmp(const void *a, const void *b) {
        const ipcf_dir_record *x = a, *y = b;
        int c = strcmp(x->name, y->name);
        return c ? c : strcmp(x->host, y->host);
}

static int ls_all_hosts(const ipcf_listing *l, const cli_args *args) {
        ipcf_dir_listing *dl = NULL;
        ipcf_host_listing *hl = NULL;
        int r = ipcf_dir_list(&dl);
        if (r < 0)
                return cli_error("ls --all-hosts: directory", r);
        r = ipcf_hosts(&hl);
        if (r < 0) {
                ipcf_free(dl);
                return cli_error("ls --all-hosts: hosts", r);
        }
        qsort(dl->records, dl->n, sizeof(*dl->records), record_cmp);
        if (args->json)
                print_all_json(l, dl, hl, args);
        else
                print_all_text(l, dl, hl, args);
        ipcf_free(hl);
        ipcf_free(dl);
        return CLI_EXIT_OK;
}

static int ls_option(void *ctx, int key, const char *value) {
        (void)value;
        if (key != OPT_ALL_HOSTS)
                return -EINVAL;
        *(bool *)ctx = true;
        return 0;
}

/* ipcf ls [--all-hosts] [--json] [NAME...]: one ipcf_list() snapshot (and
 * with --all-hosts the directory's), printed one way or the other. */
int cmd_ls(int argc, char **argv) {
        static const cli_option options[] = { { "all-hosts", OPT_ALL_HOSTS, false }, { 0 } };
        const cli_spec spec = { .cmd = "ls", .usage = ls_usage, .options = options, .json = true, .max_args = -1 };
        cli_args args;
        bool all_hosts = false;
        int st = cli_parse(&spec, argc, argv, ls_option, &all_hosts, &args);
        if (st != CLI_PARSED)
                return st;
        ipcf_listing *l = NULL;
        int r = ipcf_list(&l);
        if (r < 0)
                return cli_error("ls", r);
        if (all_hosts)
                st = ls_all_hosts(l, &args);
        else if (args.json)
                print_json(l, &args);
        else
                print_text(l, &args);
        ipcf_free(l);
        return all_hosts ? st : CLI_EXIT_OK;
}
