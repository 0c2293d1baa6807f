/*
 * cli.h — shared pieces of the `ipcf` command-line tool.
 *
 * The tool is one program with subcommands (main.c dispatches). Every
 * subcommand is a function `int cmd_<name>(int argc, char **argv)` returning
 * the process exit status: 0 success, 1 failure, 2 usage error (CLI_EXIT_*).
 *
 * RULES the subcommands keep:
 *  - Only the public header ipcf.h (and libc) is used; no library internals.
 *  - Every error is ONE line on stderr, "ipcf: <what>: <why>", printed through
 *    cli_error()/cli_usage(); nothing else goes to stderr except progress
 *    lines (perf) and verbose notes (-v).
 *  - Options shared by the flow commands (the qos options) are parsed in one
 *    place, cli_flow_opt(); the stdin/flow copy loop lives in copy.c.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>

#include "ipcf.h"

enum {
        CLI_EXIT_OK = 0,
        CLI_EXIT_FAIL = 1,
        CLI_EXIT_USAGE = 2,
};

/* ---- subcommands (one file each) ---------------------------------------- */
int cmd_ls(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_ping(int argc, char **argv);
int cmd_perf(int argc, char **argv);
int cmd_call(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_dgram(int argc, char **argv);
int cmd_hosts(int argc, char **argv);
int cmd_host(int argc, char **argv);

/* ---- the command line (args.c): one parser for every subcommand -------- */

/* One option: its long name (NULL: short only) and its key, which is the
 * short letter, or a code >= CLI_OPT_FIRST_PRIVATE for a long-only option. */
typedef struct cli_option {
        const char *name;
        int key;
        bool value;            /* takes a value (--name=V, --name V, -kV, -k V) */
} cli_option;

struct cli_flow_opts;

/* A subcommand's command line. */
typedef struct cli_spec {
        const char *cmd;              /* "mbox recv": errors say "ipcf: mbox recv: ..." */
        const char *usage;            /* what -h/--help prints (stdout, exit 0) */
        const cli_option *options;    /* its own, ending with a zero entry; or NULL */
        struct cli_flow_opts *flow;   /* non-NULL: takes the shared flow options too,
                                       * applied to *flow (help: cli_flow_opts_help) */
        bool json;                    /* a listing: takes --json */
        int min_args, max_args;       /* positional arguments (max -1: no bound) */
        const char *args_name;        /* "NAME": the error says "NAME missing" */
        bool first_is_name;           /* the first argument is a NAME: a usage error
                                       * unless valid (cli_name_check) */
} cli_spec;

/* What was parsed besides the options the callback took. */
typedef struct cli_args {
        int n;                        /* positional arguments... */
        char **v;                     /* ...in order (slots of argv) */
        int n_before_dashdash;        /* how many came before "--"; -1: no "--" */
        bool json;                    /* --json given */
} cli_args;

/* Take one option (key; value or NULL). Returns 0, a negative errno for a
 * bad value (the parser prints "bad value for --NAME: 'V'"), or an exit
 * status after printing the error itself. */
typedef int (*cli_option_fn)(void *ctx, int key, const char *value);

/* cli_parse's "go on" result; anything else is the exit status to return. */
#define CLI_PARSED (-1)

/* Parse argv[1..argc) by spec s (args.c states the rules): options in any
 * order with the positional arguments, "--" ends options, -h/--help prints
 * the usage. Returns CLI_PARSED with *ret filled, or the exit status to
 * return at once (0 after --help, CLI_EXIT_USAGE after a printed error). */
int cli_parse(const cli_spec *s, int argc, char **argv, cli_option_fn fn, void *ctx,
              cli_args *ret);

/* Does name match one of the patterns (fnmatch globs, `ls NAME...`)? No
 * patterns match everything. */
bool cli_name_match(const cli_args *patterns, const char *name);

/* The program of a local process, from /proc/PID/comm ("-" if unknown, as
 * for pid 0 or a process of another host; bytes outside printable ASCII as
 * '?'); buf returned. */
const char *cli_program(char *buf, size_t cap, pid_t pid);

/* ---- errors (util.c) ---------------------------------------------------- */

/* Print "ipcf: <what>: <ipcf_strerror(err)>" and return CLI_EXIT_FAIL.
 * err is a negative errno. */
int cli_error(const char *what, int err);
/* Print "ipcf: <what>: <cli_error's text for err>: <why->text>" (the reason
 * ipcf_alloc gave: a refusal's, a failed activation's) and return
 * CLI_EXIT_FAIL; with no reason (why NULL, its text empty or the same as
 * cli_error's), cli_error's line. */
int cli_error_reason(const char *what, int err, const ipcf_reason *why);
/* The same with the reason of this thread's last allocation
 * (ipcf_last_reason), for a call that allocates without a reason parameter
 * (ipcf_call, ipcf_dgram_send, ipcf_mbox_open, ipcf_mcast_join, RPC). */
int cli_error_alloc(const char *what, int err);
/* Flush stdout: 0 if all that was printed was written, else print "ipcf:
 * <what>: stdout: write failed" and return CLI_EXIT_FAIL (a closed pipe, a
 * full disk: a receiver stops there rather than take what it cannot show). */
int cli_stdout_flush(const char *what);
/* Print "ipcf: <formatted text>" and return CLI_EXIT_FAIL. */
int cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "ipcf: <cmd>: <formatted text> (try 'ipcf <cmd> --help')" and return
 * CLI_EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print a "-v" note "ipcf: <text>" on stderr if verbose is set. */
void cli_note(bool verbose, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- numbers, time, formatting (util.c) --------------------------------- */

/* Parse a decimal count with an optional binary suffix k/K (KiB), m/M, g/G.
 * Returns 0 and *ret, or -EINVAL (not a number, overflow, above max). */
int cli_parse_size(const char *s, uint64_t max, uint64_t *ret);
/* Parse a plain non-negative decimal integer up to max. 0 or -EINVAL. */
int cli_parse_uint(const char *s, uint64_t max, uint64_t *ret);
/* Parse seconds, fractional allowed ("2", "0.5"); 0 or -EINVAL. */
int cli_parse_seconds(const char *s, double *ret);

/* Monotonic clock in nanoseconds. */
uint64_t cli_now_ns(void);

/* "1.50 KiB", "64 B", "3.21 GiB" into buf (returned). */
const char *cli_fmt_bytes(char *buf, size_t cap, double bytes);
/* "950", "12.3 k", "4.56 M" into buf (returned). */
const char *cli_fmt_count(char *buf, size_t cap, double n);

/* Write all of buf to a (blocking) file descriptor; 0 or -errno. */
int cli_write_all(int fd, const void *buf, size_t len);

/* ---- qos options shared by listen/cat/ping/perf (flowopt.c) ------------- */

/* What the user asked for a flow, and which fields were given explicitly. */
typedef struct cli_flow_opts {
        ipcf_qos qos;          /* ipcf_qos_init() defaults + the options */
        int timeout_ms;        /* --timeout-ms: allocation / accept wait */
        bool set_timeout;      /* --timeout-ms given */
        bool set_mode;         /* --stream given */
        bool set_capacity;     /* --capacity given */
        bool set_max_bytes;    /* --max-bytes given */
        bool set_max_msg_size; /* --max-msg-size given */
} cli_flow_opts;

/* Option codes of the shared qos options (long only), above any short option;
 * then --json; subcommands number their own long-only options from
 * CLI_OPT_FIRST_PRIVATE. */
enum {
        CLI_OPT_STREAM = 0x100,
        CLI_OPT_CAPACITY,
        CLI_OPT_MAX_BYTES,
        CLI_OPT_MAX_MSGS,
        CLI_OPT_MAX_MSG_SIZE,
        CLI_OPT_FULL,
        CLI_OPT_SPIN_US,
        CLI_OPT_TIMEOUT_MS,
        CLI_OPT_CACHE_MSGS,
        CLI_OPT_JSON,          /* not a flow option: the listings' --json */
        CLI_OPT_FIRST_PRIVATE,
};

/* The help text of the shared options (for the subcommands' usage). */
extern const char cli_flow_opts_help[];

/* Defaults: ipcf_qos_init(), timeout_ms as given. */
void cli_flow_opts_init(cli_flow_opts *o, int default_timeout_ms);
/* The shared options, for cli_parse (a spec with .flow set takes them). */
extern const cli_option cli_flow_options[];
/* Handle one shared option (its key and value; called by cli_parse).
 * Returns 1 if it was a shared option and was valid, 0 if it is not a
 * shared option, or -EINVAL for a bad value (not printed). */
int cli_flow_opt(int opt, const char *arg, cli_flow_opts *o);
/* The limits of ipcf_qos (ipcf.h) that the options together must keep
 * (--max-bytes by --capacity, the cache of --cache-msgs messages of
 * --max-msg-size; --timeout-ms 0 for an allocation), checked as the library
 * checks them; 0, or a usage error printed (CLI_EXIT_USAGE). cli_parse calls
 * it once every option is read. */
int cli_flow_opts_check(const char *cmd, const cli_flow_opts *o);
/* ping and perf: messages of size bytes must fit the flow. Unless
 * --max-msg-size was given, a larger size raises the flow's largest message
 * to it (the allocating side chooses); given and smaller (message mode), a
 * usage error printed (CLI_EXIT_USAGE). 0 otherwise. */
int cli_flow_fit_size(const char *cmd, cli_flow_opts *o, uint64_t size);
/* A short text "message, bounded 1 MiB, block, spin 10 us" for a qos. */
const char *cli_qos_describe(char *buf, size_t cap, const ipcf_qos *q);
const char *cli_mode_name(unsigned mode);
const char *cli_capacity_name(unsigned capacity);
const char *cli_full_name(unsigned full);

/* Check that name is a valid ipcf name (1..IPCF_NAME_MAX printable ASCII
 * bytes, no spaces). Returns 0, or prints the usage error for cmd and
 * returns CLI_EXIT_USAGE. */
int cli_name_check(const char *cmd, const char *name);

/* Allocate a flow to name with o's qos and timeout. Returns the port-id, or
 * prints "ipcf: <cmd> <name>: <why>" (with the refusal reason if any) and
 * returns a negative errno. */
int cli_flow_alloc(const char *cmd, const char *name, const cli_flow_opts *o);

/* Write all len bytes of buf to port (STREAM writes may move part each
 * time) within timeout_ms overall, waiting for room also where the qos makes
 * a write fail at once (FULL_FAIL's -EAGAIN, UNBOUNDED's -ENOBUFS).
 * 0 or a negative errno. */
int cli_flow_write_all(int port, const void *buf, size_t len, int timeout_ms);
/* Read exactly len bytes (STREAM) or one message of exactly len bytes
 * (MESSAGE) from port into buf, each read waiting at most timeout_ms.
 * 0, -EBADMSG (a message of another length), or a negative errno. */
int cli_flow_read_full(int port, void *buf, size_t len, bool stream, int timeout_ms);

/* ---- message formats of cat and listen (format.c) ---------------------- */
/* A way to write messages to a byte stream and cut them out of one (raw,
 * line, len, hex: format.c says what each is). */
typedef struct cli_format cli_format;
/* "raw | line | len | hex", for usage lines. */
extern const char cli_format_names[];
/* The format called name, or NULL. Static: never freed. */
const cli_format *cli_format_find(const char *name);
const char *cli_format_name(const cli_format *f);
/* Does the input have records (every format but raw)? */
bool cli_format_framed(const cli_format *f);
/* Write one received message (len > 0) to the blocking fd. 0 or -errno. */
int cli_format_write(const cli_format *f, int fd, const void *msg, size_t len);

/* The input side of a framed format: bytes read, not yet cut into messages. */
typedef struct cli_unframe {
        const cli_format *f;
        size_t max;            /* the largest message (max_msg_size, at most 64 MiB) */
        char *buf;             /* owned; cap bytes: one record of a max-byte message */
        size_t cap, off, len;  /* buf[off..len) not yet taken */
        bool eof;              /* the input has ended */
        uint64_t records;      /* records taken so far (for error texts) */
        char err[192];         /* why next() failed */
} cli_unframe;
/* Set u up for framed format f and messages of at most max bytes (0: the
 * bound). 0, -EINVAL (raw has no records) or -ENOMEM. */
int cli_unframe_init(cli_unframe *u, const cli_format *f, size_t max);
void cli_unframe_done(cli_unframe *u);
/* Read once from fd (which poll() said is readable) into the buffer; at its
 * end set u->eof. 0 or -errno (-EINTR, -EAGAIN included). */
int cli_unframe_read(cli_unframe *u, int fd);
/* Append up to len bytes of data instead (the fuzz target's input); eof
 * says that no more will come. Returns the bytes taken. */
size_t cli_unframe_feed(cli_unframe *u, const void *data, size_t len, bool eof);
/* Take the next message into out (room for u->max bytes): its length (> 0);
 * 0 when no record is complete (with u->eof: the input is over); or
 * -EMSGSIZE (a record larger than u->max) / -EBADMSG (a malformed record)
 * with u->err saying which record and why. Empty records are skipped. */
ssize_t cli_unframe_next(cli_unframe *u, char *out);

/* ---- transfer progress of cat and listen -v (progress.c) ---------------- */
/* Counters of a transfer and when to report them. The sending side may run
 * in a thread of its own: its counters are atomic. */
typedef struct cli_progress {
        bool on;                          /* -v: report at all */
        const char *what;                 /* "cat NAME" */
        uint64_t start_ns, next_ns;       /* next_ns: the next report is due */
        uint64_t last_ns, last_bytes;     /* at the previous report, for the rate */
        _Atomic uint64_t sent_bytes, sent_msgs;
        uint64_t recv_bytes, recv_msgs;
        unsigned reports;                 /* progress lines printed */
} cli_progress;
/* Start counting now; on: print. */
void cli_progress_start(cli_progress *p, const char *what, bool on);
/* Count a message (or STREAM piece) of len bytes sent / received. */
void cli_progress_sent(cli_progress *p, size_t len);
void cli_progress_received(cli_progress *p, size_t len);
/* timeout_ms (-1: none) shortened to the time until the next report. */
int cli_progress_timeout(const cli_progress *p, int timeout_ms);
/* Print a progress line on stderr if one is due (once a second). */
void cli_progress_tick(cli_progress *p);
/* At the end: a summary line, if a progress line was printed before. */
void cli_progress_end(cli_progress *p);

/* ---- the copy loop (copy.c) --------------------------------------------- */

/* Set by the SIGINT/SIGTERM handler cli_catch_interrupts() installs; the copy
 * loop then ends the flow with reason "interrupted" (exit CLI_EXIT_INTERRUPTED). */
extern volatile sig_atomic_t cli_interrupted;
/* Set by the copy loop while it runs: only then is the signal caught. */
extern volatile sig_atomic_t cli_copy_active;
#define CLI_EXIT_INTERRUPTED 130
/* Install that handler (without SA_RESTART, so poll() returns EINTR). */
void cli_catch_interrupts(void);

/* How copy_run() ends a flow. */
typedef struct cli_copy {
        int port;         /* the flow */
        int in_fd;        /* bytes to send (stdin), or -1: nothing to send */
        int out_fd;       /* where received bytes go (stdout) */
        bool allocator;   /* true for cat: this side ends the flow at the end */
        int linger_ms;    /* allocator, MESSAGE mode: after in_fd's EOF, wait at
                           * most this long for the peer's end marker (-1: for ever) */
        const char *what; /* for error lines: "cat NAME", "listen NAME" */
        bool verbose;     /* note the peer's end reason on stderr */
        bool end_with_peer; /* MESSAGE mode: stop reading in_fd once the peer's
                             * end marker arrives (listen on a terminal) */
        const cli_format *format; /* how in_fd is cut into messages and what
                                   * arrives is written to out_fd; NULL: raw.
                                   * Framed formats need MESSAGE mode. */
        cli_progress *progress;   /* counts (and, if on, reports) the transfer;
                                   * NULL: none */
} cli_copy;

/* Copy in_fd -> flow and flow -> out_fd until done (see copy.c for the
 * half-close convention). Returns 0 when the flow ended normally (peer
 * deallocated, or this side finished and deallocated), -EINTR (not printed)
 * when interrupted, or a negative errno after printing the error. The port
 * is always released on return. */
int cli_copy_run(const cli_copy *c);

/* ---- mailboxes and multicast groups (models.c) ------------------------- */

/* What `ipcf mbox` and `ipcf mcast` differ in; cli_model_run does the rest.
 * create and send get argv[0] = the subcommand and parse the rest with
 * cli_parse (their cmd is "mbox create", ...). */
typedef struct cli_model_cmd {
        const char *name;                    /* "mbox", for messages */
        int kind;                            /* ipcf_model_entry's: 0 mailbox, 1 group */
        const char *about;                   /* one line: what it is */
        const char *usage;                   /* the --help lines of create, destroy,
                                              * send (recv_name's and ls follow) */
        int (*create)(int argc, char **argv);
        int (*destroy)(const char *name);    /* ipcf_mbox_destroy, ipcf_mcast_destroy */
        int (*send)(int argc, char **argv);
        /* The receiving subcommand, `recv_name NAME [-n COUNT] [-v]`: open the
         * handle, then print each message next() gives as a line until COUNT,
         * ^C or the end (next: -EPIPE, a normal exit; -EAGAIN: nothing yet;
         * any other error fails, *ret_what saying which operation). */
        const char *recv_name;               /* "recv", "join" */
        const char *recv_help;               /* what it does, for --help */
        int (*open)(const char *name);       /* the handle, or -errno */
        ssize_t (*next)(int h, void *buf, size_t cap, ipcf_peer_info *ret_from,
                        const char **ret_what);
        const char *leave_reason;            /* ipcf_dealloc's reason at the end */
} cli_model_cmd;

/* The largest message the receiving subcommands print. */
#define CLI_MODEL_MSG_MAX 65536

/* `ipcf <m->name> SUBCOMMAND ...`: --help, create, destroy, send, the
 * receiving subcommand, ls. Exit 0, 1 on failure, 2 on a usage error. */
int cli_model_run(const cli_model_cmd *m, int argc, char **argv);
/* Mailboxes and groups of kind (0, 1; -1 both) whose name matches filter,
 * for `ipcf mbox ls`, `ipcf mcast ls` and `ipcf ls`: a table after a blank
 * line (nothing if none), or json: "models":[...] for the caller's object.
 * Returns the table's rows (0 for json), or -errno when the facility could
 * not be asked (then nothing was printed). */
int cli_ls_models(bool json, int kind, const cli_args *filter);
/* The same for shared-memory groups and segments (cmd_shm.c): "shm":[...]. */
int cli_ls_shm(bool json, const cli_args *filter);

/* The directory's health (cmd_hosts.c; also for `ls --all-hosts`): a
 * "directory: ..." line or two, or a JSON object (no newline). */
void cli_dir_health_text(const ipcf_dir_health *h);
void cli_dir_health_json(const ipcf_dir_health *h);

/* ---- the traffic monitor's loop (cmd_monitor.c) and pcap files (pcap.c) - */

/* What to do with one event (for a DATAGRAM, dg and its dg->captured bytes
 * of data; else NULL): 0 to go on, else the exit status to end with (the
 * error already printed). */
typedef int (*cli_monitor_fn)(void *ctx, const ipcf_monitor_event *ev, const ipcf_monitor_datagram *dg,
                              const uint8_t *data);
/* Open a monitor with flags (ipcf_monitor_open's) and hand fn every event
 * whose name matches names (globs; none: all; datagrams always) until count
 * of them, ^C, or an error. Returns the exit status. */
int cli_monitor_loop(const cli_args *names, uint64_t count, uint32_t flags, cli_monitor_fn fn, void *ctx);

/* A pcap file being written (classic format, microsecond timestamps). */
typedef struct cli_pcap {
        FILE *f;
        bool close_f;  /* ours to fclose (not stdout) */
} cli_pcap;

/* Create path ("-": stdout) and write the file header for linktype.
 * 0 or -errno. */
int cli_pcap_open(cli_pcap *p, const char *path, uint32_t linktype);
/* Append one packet of len bytes taken at time_ns (CLOCK_REALTIME), and
 * flush it, so that the file is whole after every packet. 0 or -errno. */
int cli_pcap_write(cli_pcap *p, uint64_t time_ns, const void *data, size_t len);
/* Close it (stdout stays open). 0 or -errno. */
int cli_pcap_close(cli_pcap *p);

/* ---- aligned tables and JSON strings (table.c) -------------------------- */

typedef struct cli_table cli_table;

/* A table of ncols columns; right[i] true right-aligns column i. Owned by the
 * caller, freed by cli_table_free(). NULL on out of memory. */
cli_table *cli_table_new(unsigned ncols, const bool *right);
/* Append one cell (copied) to the current row; a row ends after ncols cells. */
void cli_table_add(cli_table *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print every row with columns padded to their widest cell, two spaces apart. */
void cli_table_print(const cli_table *t, FILE *out);
cli_table *cli_table_free(cli_table *t);

/* Print s as a JSON string literal (quotes and escapes included; bytes that
 * are not UTF-8 as \u00XX: common/jsonstr.h). */
void cli_json_string(FILE *out, const char *s);
/* Print directory attributes ("K=V" lines, K without '=') as a JSON object. */
void cli_json_attrs(FILE *out, const char *lines);
