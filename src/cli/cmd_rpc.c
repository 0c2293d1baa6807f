/*
 * cmd_rpc.c — `ipcf rpc`: remote procedure calls from the shell.
 *
 *   ipcf rpc describe NAME                 the interface files NAME serves
 *   ipcf rpc call NAME PROC [JSON] [-t MS] [-V VERSION]
 *                                          call PROC with JSON arguments (JSON
 *                                          "-": from standard input); the
 *                                          result is printed as JSON
 *
 * `call` asks the server for its description, parses it with ipcf-idl's
 * front end (src/idl: the same checked parser, fuzzed), encodes the JSON
 * by the procedure's argument type (src/idl/dyn.c) and decodes the result
 * by its result type. Nothing of the interface needs to be compiled in.
 * Exit status: 0, 1 (the call failed: the error says which way, e.g.
 * "outcome unknown"), 2 (usage, bad JSON, no such procedure).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "idl/dyn.h"

int cmd_rpc(int argc, char **argv);

static const char rpc_usage[] =
        "usage: ipcf rpc describe NAME [-t TIMEOUT_MS]\n"
        "       ipcf rpc call NAME PROC [JSON-ARGS] [-t TIMEOUT_MS] [-V VERSION]\n"
        "Call procedures of an RPC server (made with ipcf-idl) by name.\n"
        "describe  print the interface files the server serves (.x text)\n"
        "call      call PROC (a procedure's name in the .x) with its arguments as JSON\n"
        "          (structs are objects, unions {\"<discriminant>\": v, \"<arm>\": ...},\n"
        "          opaque data hex strings, enums their names; several arguments\n"
        "          {\"arg1\": ..., \"arg2\": ...}); prints the result as JSON.\n"
        "          JSON-ARGS that start with '-' go after '--'; JSON-ARGS '-': read them\n"
        "          from standard input (a long list's JSON is longer than an argument may be).\n"
        "  -t MS       deadline of the call (default: the procedure's, else 30000)\n"
        "  -V VERSION  the program version (default: the highest that has PROC)\n";

static int describe(const char *name, int timeout_ms, char **ret) {
        ipcf_rpc_client *c;
        int r = ipcf_rpc_client_new(name, NULL, &c);
        if (r < 0)
                return r;
        r = ipcf_rpc_describe(c, timeout_ms, ret);
        ipcf_rpc_client_free(c);
        return r;
}

/* describe's error: -EPROTO there is mostly a service that is not an RPC
 * server at all (a plain `ipcf serve` echoes the request back). */
static int describe_error(const char *name, int err) {
        if (err == -EPROTO)
                return cli_fail("%s: does not answer as an RPC server (%s)", name, ipcf_strerror(err));
        if (err == -EMSGSIZE)
                return cli_fail("%s: its interface files are longer than one reply (256 KiB): it cannot describe "
                                "them (%s)", name, ipcf_strerror(err));
        return cli_error_alloc(name, err);
}

#define RPC_JSON_MAX (64u << 20) /* JSON arguments read from standard input */

/* All of standard input as a string (heap) into *ret: 0, -EMSGSIZE past
 * RPC_JSON_MAX, -EINVAL if it holds a NUL (the JSON would end there), or
 * -errno. */
static int read_stdin(char **ret) {
        size_t n = 0, cap = 4096;
        char *buf = malloc(cap);
        for (;;) {
                if (!buf)
                        return -ENOMEM;
                if (n + 1 == cap) {
                        char *nb = cap > RPC_JSON_MAX ? NULL : realloc(buf, cap * 2);
                        if (!nb) {
                                free(buf);
                                return cap > RPC_JSON_MAX ? -EMSGSIZE : -ENOMEM;
                        }
                        buf = nb;
                        cap *= 2;
                }
                ssize_t r = read(STDIN_FILENO, buf + n, cap - n - 1);
                if (r == 0)
                        break;
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        int err = -errno;
                        free(buf);
                        return err;
                }
                n += (size_t)r;
        }
        buf[n] = 0;
        if (memchr(buf, 0, n)) {
                free(buf);
                return -EINVAL;
        }
        *ret = buf;
        return 0;
}

static int call(const char *name, const char *proc, const char *args, int timeout_ms, uint32_t vers) {
        char *text;
        int r = describe(name, timeout_ms > 0 ? timeout_ms : 5000, &text);
        if (r < 0)
                return describe_error(name, r);
        idl_file *f = idl_file_new(name);
        idl_diag d = { 0 };
        r = idl_parse(f, text, strlen(text), &d);
        if (r == 0)
                r = idl_check(f, &d);
        int st = CLI_EXIT_OK;
        json *j = NULL;
        const idl_program *pg = NULL;
        const idl_version *ver = NULL;
        const idl_proc *p = NULL;
        ipcf_xdr x;
        ipcf_xdr_encoder(&x, NULL, 0);
        if (r < 0) {
                st = cli_fail("%s: its description does not parse: %s", name, d.text ? d.text : "?");
                goto out;
        }
        p = dyn_find_proc(f, proc, vers, &pg, &ver);
        if (!p) {
                st = cli_usage("rpc", "%s serves no procedure %s%s", name, proc, vers ? " in that version" : "");
                goto out;
        }
        char err[256], *in = NULL;
        if (args && !strcmp(args, "-")) {
                r = read_stdin(&in);
                if (r < 0) {
                        st = r == -EINVAL ? cli_usage("rpc", "JSON from standard input: a NUL byte")
                                          : cli_error("reading the JSON from standard input", r);
                        goto out;
                }
                args = in;
        }
        j = json_parse(args ? args : "null", err, sizeof(err));
        free(in);
        if (!j) {
                st = cli_usage("rpc", "%s", err);
                goto out;
        }
        if (dyn_encode(dyn_arg_type(f, p), j, &x, err, sizeof(err)) < 0) {
                st = cli_usage("rpc", "arguments of %s: %s", p->name, err);
                goto out;
        }
        ipcf_rpc_client *c;
        r = ipcf_rpc_client_new(name, NULL, &c);
        if (r < 0) {
                st = cli_error(name, r);
                goto out;
        }
        void *res = NULL;
        size_t len = 0;
        ipcf_rpc_info info = { 0 };
        ipcf_rpc_opts o = { .timeout_ms = timeout_ms ? timeout_ms : (int)p->attrs.timeout_ms, .info = &info };
        uint32_t flags = (p->attrs.idempotent ? IPCF_RPC_IDEMPOTENT : 0) | (p->attrs.oneway ? IPCF_RPC_ONEWAY : 0);
        r = ipcf_rpc_call_raw(c, (uint32_t)pg->number.num, (uint32_t)ver->number.num, (uint32_t)p->number.num, flags,
                              x.buf, x.pos, &o, &res, &len);
        ipcf_rpc_client_free(c);
        if (r == -EREMOTEIO) {
                st = cli_fail("%s: %s failed in the server: %s", name, p->name, strerror(-info.remote_error));
        } else if (r == -EPROTONOSUPPORT) {
                st = cli_fail("%s: version %u of %s is not served (versions %u..%u are)", name,
                              (unsigned)ver->number.num, pg->name, info.vers_low, info.vers_high);
        } else if (r == -IPCF_EUNKNOWN) { /* (cli_error takes -ENOLINK for an allocation's) */
                st = cli_fail("%s: %s", p->name, ipcf_strerror(r));
        } else if (r < 0) {
                st = cli_error_alloc(p->name, r);
        } else {
                ipcf_xdr dx;
                ipcf_xdr_decoder(&dx, res, len);
                const idl_type *rt = p->result->kind == IDL_VOID ? NULL : p->result;
                r = dyn_print(rt, &dx, stdout);
                if (r == 0)
                        r = ipcf_xdr_end(&dx);
                fputc('\n', stdout);
                if (r < 0)
                        st = cli_error("decoding the result", r);
        }
        free(res);
out:
        ipcf_xdr_release(&x);
        json_free(j);
        idl_diag_free(&d);
        idl_file_free(f);
        free(text);
        return st;
}

typedef struct rpc_cfg {
        int timeout_ms;
        uint32_t vers;
} rpc_cfg;

static int rpc_option(void *ctx, int key, const char *value) {
        rpc_cfg *c = ctx;
        uint64_t v;
        if (cli_parse_uint(value, key == 't' ? 86400000u : UINT32_MAX, &v) < 0)
                return -EINVAL;
        if (key == 't')
                c->timeout_ms = (int)v;
        else
                c->vers = (uint32_t)v;
        return 0;
}

int cmd_rpc(int argc, char **argv) {
        if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
                fputs(rpc_usage, argc < 2 ? stderr : stdout);
                return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
        }
        static const cli_option describe_options[] = { { NULL, 't', true }, { 0 } };
        static const cli_option call_options[] = { { NULL, 't', true }, { NULL, 'V', true }, { 0 } };
        const char *sub = argv[1];
        bool is_call = !strcmp(sub, "call");
        if (!is_call && strcmp(sub, "describe") != 0)
                return cli_usage("rpc", "unknown %s '%s'", sub[0] == '-' ? "option" : "command", sub);
        rpc_cfg cfg = { 0 };
        const cli_spec spec = { .cmd = is_call ? "rpc call" : "rpc describe", .usage = rpc_usage,
                                .options = is_call ? call_options : describe_options,
                                .min_args = is_call ? 2 : 1, .max_args = is_call ? 3 : 1,
                                .args_name = is_call ? "NAME or PROC" : "NAME", .first_is_name = true };
        cli_args args;
        int st = cli_parse(&spec, argc - 1, argv + 1, rpc_option, &cfg, &args);
        if (st != CLI_PARSED)
                return st;
        if (is_call)
                return call(args.v[0], args.v[1], args.n == 3 ? args.v[2] : NULL, cfg.timeout_ms, cfg.vers);
        char *text;
        int r = describe(args.v[0], cfg.timeout_ms ? cfg.timeout_ms : 5000, &text);
        if (r < 0)
                return describe_error(args.v[0], r);
        fputs(text, stdout);
        free(text);
        return CLI_EXIT_OK;
}
