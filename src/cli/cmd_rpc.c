/*
 * cmd_rpc.c — `ipcf rpc`: remote procedure calls from the shell.
 *
 *   ipcf rpc describe NAME                 the interface files NAME serves
 *   ipcf rpc call NAME PROC [JSON] [-t MS] [-V VERSION]
 *                                          call PROC with JSON arguments; the
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

#include "cli/cli.h"
#include "idl/dyn.h"

int cmd_rpc(int argc, char **argv);

static void usage(FILE *o) {
        fputs("usage: ipcf rpc describe NAME\n"
              "       ipcf rpc call NAME PROC [JSON-ARGS] [-t TIMEOUT_MS] [-V VERSION]\n"
              "Call procedures of an RPC server (made with ipcf-idl) by name.\n"
              "describe  print the interface files the server serves (.x text)\n"
              "call      call PROC (a procedure's name in the .x) with its arguments as JSON\n"
              "          (structs are objects, unions {\"<discriminant>\": v, \"<arm>\": ...},\n"
              "          opaque data hex strings, enums their names; several arguments\n"
              "          {\"arg1\": ..., \"arg2\": ...}); prints the result as JSON\n"
              "  -t MS       deadline of the call (default: the procedure's, else 30000)\n"
              "  -V VERSION  the program version (default: the highest that has PROC)\n",
              o);
}

static int describe(const char *name, int timeout_ms, char **ret) {
        ipcf_rpc_client *c;
        int r = ipcf_rpc_client_new(name, NULL, &c);
        if (r < 0)
                return r;
        r = ipcf_rpc_describe(c, timeout_ms, ret);
        ipcf_rpc_client_free(c);
        return r;
}

static int call(const char *name, const char *proc, const char *args, int timeout_ms, uint32_t vers) {
        char *text;
        int r = describe(name, timeout_ms > 0 ? timeout_ms : 5000, &text);
        if (r < 0)
                return cli_error(name, r);
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
        char err[256];
        j = json_parse(args ? args : "null", err, sizeof(err));
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
        } else if (r < 0) {
                st = cli_error(p->name, r);
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

int cmd_rpc(int argc, char **argv) {
        int timeout_ms = 0;
        uint32_t vers = 0;
        char *pos[4];
        int n = 0;
        for (int i = 1; i < argc; i++) {
                if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
                        usage(stdout);
                        return CLI_EXIT_OK;
                }
                if ((!strcmp(argv[i], "-t") || !strcmp(argv[i], "-V")) && i + 1 < argc) {
                        uint64_t v;
                        if (cli_parse_uint(argv[i + 1], argv[i][1] == 't' ? 86400000u : UINT32_MAX, &v) < 0)
                                return cli_usage("rpc", "bad number '%s'", argv[i + 1]);
                        if (argv[i][1] == 't')
                                timeout_ms = (int)v;
                        else
                                vers = (uint32_t)v;
                        i++;
                        continue;
                }
                if (n == 4)
                        return cli_usage("rpc", "too many arguments");
                pos[n++] = argv[i];
        }
        if (n >= 2 && !strcmp(pos[0], "describe") && n == 2) {
                char *text;
                int r = describe(pos[1], timeout_ms ? timeout_ms : 5000, &text);
                if (r < 0)
                        return cli_error(pos[1], r);
                fputs(text, stdout);
                free(text);
                return CLI_EXIT_OK;
        }
        if (n >= 3 && !strcmp(pos[0], "call"))
                return call(pos[1], pos[2], n == 4 ? pos[3] : NULL, timeout_ms, vers);
        usage(stderr);
        return CLI_EXIT_USAGE;
}
