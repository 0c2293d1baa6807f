/*
 * main.c — `ipcf`, the command-line tool of the interprocess communication
 * facility: dispatch to one subcommand per file (cmd_*.c).
 *
 * Process-wide settings belong here and nowhere else: SIGPIPE is ignored (a
 * closed stdout shows up as EPIPE from write and is reported), and the soft
 * RLIMIT_NOFILE is raised to the hard limit (each port holds 7 descriptors).
 * Exit status: 0 success, 1 failure, 2 usage error, 130 interrupted.
 */
#include "cli/cli.h"

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "common/util.h"

int cmd_shm(int argc, char **argv); /* cmd_shm.c: shared-memory groups */
int cmd_mbox(int argc, char **argv);  /* cmd_mbox.c: mailboxes */
int cmd_mcast(int argc, char **argv); /* cmd_mcast.c: multicast groups */
int cmd_watch(int argc, char **argv); /* cmd_watch.c: notifications */
int cmd_rpc(int argc, char **argv);   /* cmd_rpc.c: remote procedure calls */
int cmd_monitor(int argc, char **argv); /* cmd_monitor.c: the traffic monitor */
int cmd_capture(int argc, char **argv); /* cmd_capture.c: the monitor's events as pcap */

typedef struct cli_command {
        const char *name;
        int (*run)(int argc, char **argv);
        const char *summary;
} cli_command;

static const cli_command commands[] = {
        { "ls", cmd_ls, "list names and flows of this host's facility" },
        { "listen", cmd_listen, "register a name, accept flows, copy them to stdout/stdin" },
        { "cat", cmd_cat, "allocate a flow to a name, copy stdin/stdout through it" },
        { "ping", cmd_ping, "measure round trips to an echoing listener" },
        { "perf", cmd_perf, "measure throughput to a sinking listener" },
        { "shm", cmd_shm, "shared-memory groups and named segments (create, ls, cat, ...)" },
        { "mbox", cmd_mbox, "mailboxes: create, send, recv, destroy, ls" },
        { "mcast", cmd_mcast, "multicast groups: create, join, send, destroy, ls" },
        { "watch", cmd_watch, "print when names appear and disappear" },
        { "monitor", cmd_monitor, "print allocations, flow ends and names as they happen" },
        { "capture", cmd_capture, "write those events to a pcap file (for Wireshark)" },
        { "call", cmd_call, "call a service: request from stdin, reply to stdout" },
        { "rpc", cmd_rpc, "remote procedure calls: describe a server, call a procedure with JSON" },
        { "serve", cmd_serve, "serve calls to a name by running a command for each" },
        { "dgram", cmd_dgram, "send or receive datagrams by name" },
        { "hosts", cmd_hosts, "list the enrolled hosts and the association with each" },
        { "host", cmd_host, "'ipcf host key': this host's public key, to enrol it elsewhere" },
};

static void print_help(FILE *out) {
        fputs("usage: ipcf COMMAND [OPTIONS] [ARGS]\n\n"
              "Talk to processes by name through the local IPC facility (ipcfd).\n\n"
              "commands:\n",
              out);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
        fputs("\n'ipcf COMMAND --help' describes a command.\n"
              "environment: IPCF_RUNTIME_DIR (the facility instance), IPCF_NO_AUTOSTART=1,\n"
              "IPCF_DAEMON (the ipcfd to start when none runs).\n",
              out);
}

/* Raise the soft descriptor limit to the hard one; failures are harmless. */
static void raise_nofile_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
}

/* What was printed must have reached stdout: a failed write (a closed pipe,
 * a full disk) fails the command that otherwise succeeded. */
static int flushed(const char *name, int status) {
        return status == CLI_EXIT_OK ? cli_stdout_flush(name) : status;
}

int main(int argc, char **argv) {
        signal(SIGPIPE, SIG_IGN);
        raise_nofile_limit();

        if (argc < 2) {
                fputs("ipcf: a command is needed (try 'ipcf --help')\n", stderr);
                return CLI_EXIT_USAGE;
        }
        const char *name = argv[1];
        bool help = !strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help");
        bool version = !strcmp(name, "--version");
        if ((help || version) && argc > 2) {
                /* As every command's extra argument: a usage error. */
                char shown[64];
                str_copy(shown, argv[2], sizeof(shown));
                str_printable(shown);
                fprintf(stderr, "ipcf: %s: unexpected argument '%s' (try 'ipcf --help')\n", name, shown);
                return CLI_EXIT_USAGE;
        }
        if (help) {
                print_help(stdout);
                return flushed(name, CLI_EXIT_OK);
        }
        if (version) {
                printf("ipcf %d.%d\n", IPCF_VERSION_MAJOR, IPCF_VERSION_MINOR);
                return flushed(name, CLI_EXIT_OK);
        }
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
                if (!strcmp(name, commands[i].name)) {
                        /* The subcommand sees its own name as argv[0]. */
                        return flushed(name, commands[i].run(argc - 1, argv + 1));
                }
        }
        fprintf(stderr, "ipcf: unknown command '%s' (try 'ipcf --help')\n", name);
        return CLI_EXIT_USAGE;
}
