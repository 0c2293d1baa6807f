/*
 * cmd_hosts.c — `ipcf hosts [--json]` (the hosts enrolled with this host's
 * facility and the association with each: address, state, round trip,
 * loss, congestion window, flows, bytes) and `ipcf host key` (this host's
 * public key, to enrol it on the others), from ipcf_hosts(); with a
 * directory on etcd, its health and the attributes this host publishes.
 */
#include "cli/cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static const char hosts_usage[] =
        "usage: ipcf hosts [--json] [HOST...]\n\n"
        "List the hosts enrolled with this host's facility and the association\n"
        "with each: address, state, round-trip time, loss, congestion window,\n"
        "flows and bytes each way; with a directory on etcd, its health and the\n"
        "attributes this host publishes with its names.\n"
        "HOST... (shell globs) keep those that match.\n"
        "  --json    one JSON object, for scripts\n";

static const char host_usage[] =
        "usage: ipcf host key\n\n"
        "Print this host's public key (made on first use), for the key = line of\n"
        "its [host NAME] section in the other hosts' ipcfd.conf.\n";

static const char *state_name(uint32_t s) {
        return s == IPCF_HOST_UP ? "up" : s == IPCF_HOST_CONNECTING ? "connecting" : "down";
}

void cli_dir_health_text(const ipcf_dir_health *h) {
        printf("directory: etcd %s, %s, %s; %" PRIu64 " names (%" PRIu64 " records) cached, %" PRIu64
               " published (%" PRIu64 " unconfirmed), lease %" PRIx64 ", revision %" PRId64 "\n",
               h->endpoint, h->reachable ? "reachable" : "UNREACHABLE", h->live ? "live" : "not live",
               h->names, h->records, h->published, h->unconfirmed, (uint64_t)h->lease, h->revision);
        if (h->trust_keys)
                printf("directory: trust_keys = yes: %" PRIu64 " hosts enrolled with keys from etcd, %" PRIu64
                       " key changes refused\n", h->enrolled, h->keys_refused);
        if (h->last_error[0])
                printf("directory: last error: %s\n", h->last_error);
}

void cli_dir_health_json(const ipcf_dir_health *d) {
        printf("{\"endpoint\":");
        cli_json_string(stdout, d->endpoint);
        printf(",\"last_error\":");
        cli_json_string(stdout, d->last_error);
        printf(",\"reachable\":%s,\"synced\":%s,\"live\":%s,\"complete\":%s,\"revision\":%" PRId64
               ",\"lease\":%" PRId64 ",\"names\":%" PRIu64 ",\"records\":%" PRIu64 ",\"bytes\":%" PRIu64
               ",\"published\":%" PRIu64 ",\"unconfirmed\":%" PRIu64 ",\"failovers\":%" PRIu64
               ",\"leases_granted\":%" PRIu64 ",\"rejected\":%" PRIu64 ",\"resyncs\":%" PRIu64
               ",\"watch_restarts\":%" PRIu64 ",\"unusable\":%" PRIu64 ",\"trust_keys\":%s,\"keys_refused\":%" PRIu64
               ",\"enrolled\":%" PRIu64 ",\"degraded\":%s,\"host_conflict\":%s}",
               d->reachable ? "true" : "false", d->synced ? "true" : "false", d->live ? "true" : "false",
               d->complete ? "true" : "false", d->revision, d->lease, d->names, d->records, d->bytes,
               d->published, d->unconfirmed, d->failovers, d->leases_granted, d->rejected, d->resyncs,
               d->watch_restarts, d->unusable, d->trust_keys ? "true" : "false", d->keys_refused, d->enrolled,
               d->degraded ? "true" : "false", d->host_conflict ? "true" : "false");
}

static void print_text(const ipcf_host_listing *l, const cli_args *filter) {
        /* local only: nothing enrolled, and no directory (one without
         * enrolled hosts trusts etcd's keys, so takes part among hosts) */
        if (!l->n && !l->directory)
                printf("this host: %s, no host enrolled (local only), key %s\n", l->self, l->key);
        else
                printf("this host: %s, key %s\n", l->self, l->key);
        if (l->attrs[0]) {
                printf("this host's attributes:");
                for (const char *a = l->attrs; *a;) {
                        size_t n = strcspn(a, "\n");
                        printf(" %.*s", (int)n, a);
                        a += n + (a[n] == '\n');
                }
                printf("\n");
        }
        if (l->directory)
                cli_dir_health_text(l->directory);
        if (!l->n)
                return;
        printf("\n");
        static const bool right[] = { false, false, false, true, true, true, true, true, true };
        cli_table *t = cli_table_new(9, right);
        static const char *const head[] = { "HOST", "ADDRESS", "STATE", "RTT", "LOSS",
                                            "CWND", "FLOWS", "BYTES IN", "BYTES OUT" };
        for (size_t i = 0; i < 9; i++)
                cli_table_add(t, "%s", head[i]);
        for (size_t i = 0; i < l->n; i++) {
                const ipcf_host_entry *h = &l->hosts[i];
                char b[3][32];
                if (!cli_name_match(filter, h->name))
                        continue;
                cli_table_add(t, "%s", h->name);
                cli_table_add(t, "%s", h->addr[0] ? h->addr : "-");
                cli_table_add(t, "%s", state_name(h->state));
                if (h->state == IPCF_HOST_UP)
                        cli_table_add(t, "%.0f us", (double)h->rtt_ns / 1e3);
                else
                        cli_table_add(t, "-");
                cli_table_add(t, "%.2f %%", h->dgrams_out ? 100.0 * (double)h->lost / (double)h->dgrams_out : 0.0);
                cli_table_add(t, "%s", cli_fmt_bytes(b[0], sizeof(b[0]), (double)h->cwnd));
                cli_table_add(t, "%u", h->flows);
                cli_table_add(t, "%s", cli_fmt_bytes(b[1], sizeof(b[1]), (double)h->bytes_in));
                cli_table_add(t, "%s", cli_fmt_bytes(b[2], sizeof(b[2]), (double)h->bytes_out));
        }
        cli_table_print(t, stdout);
        cli_table_free(t);
}

static void print_json(const ipcf_host_listing *l, const cli_args *filter) {
        printf("{\"self\":");
        cli_json_string(stdout, l->self);
        printf(",\"key\":");
        cli_json_string(stdout, l->key);
        printf(",\"attrs\":");
        cli_json_attrs(stdout, l->attrs);
        printf(",\n\"hosts\":[");
        const char *sep = "";
        for (size_t i = 0; i < l->n; i++) {
                const ipcf_host_entry *h = &l->hosts[i];
                if (!cli_name_match(filter, h->name))
                        continue;
                printf("%s\n {\"name\":", sep);
                sep = ",";
                cli_json_string(stdout, h->name);
                printf(",\"addr\":");
                cli_json_string(stdout, h->addr);
                printf(",\"state\":\"%s\",\"flows\":%u,\"rtt_ns\":%" PRIu64 ",\"rttvar_ns\":%" PRIu64
                       ",\"cwnd\":%" PRIu64 ",\"inflight\":%" PRIu64 ",\"dgrams_in\":%" PRIu64
                       ",\"dgrams_out\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
                       ",\"lost\":%" PRIu64 ",\"retransmitted\":%" PRIu64 ",\"ups\":%" PRIu64
                       ",\"downs\":%" PRIu64 "}",
                       state_name(h->state), h->flows, h->rtt_ns, h->rttvar_ns, h->cwnd, h->inflight,
                       h->dgrams_in, h->dgrams_out, h->bytes_in, h->bytes_out, h->lost, h->retransmitted,
                       h->ups, h->downs);
        }
        printf("]");
        if (l->directory) {
                printf(",\n\"directory\":");
                cli_dir_health_json(l->directory);
        }
        printf("}\n");
}

int cmd_hosts(int argc, char **argv) {
        const cli_spec spec = { .cmd = "hosts", .usage = hosts_usage, .json = true, .max_args = -1 };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        ipcf_host_listing *l;
        int r = ipcf_hosts(&l);
        if (r < 0)
                return cli_error("hosts", r);
        if (args.json)
                print_json(l, &args);
        else
                print_text(l, &args);
        ipcf_free(l);
        return CLI_EXIT_OK;
}

int cmd_host(int argc, char **argv) {
        const cli_spec spec = { .cmd = "host", .usage = host_usage, .min_args = 1, .max_args = 1,
                                .args_name = "'key'" };
        cli_args args;
        int st = cli_parse(&spec, argc, argv, NULL, NULL, &args);
        if (st != CLI_PARSED)
                return st;
        if (strcmp(args.v[0], "key") != 0)
                return cli_usage("host", "want 'ipcf host key'");
        ipcf_host_listing *l;
        int r = ipcf_hosts(&l);
        if (r < 0)
                return cli_error("host key", r);
        printf("%s\n", l->key);
        ipcf_free(l);
        return CLI_EXIT_OK;
}
