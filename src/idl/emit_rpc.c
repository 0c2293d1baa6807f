/*
 * emit_rpc.c — generates, for each program version of an interface:
 *
 *   numbers     #define PROG / VERSION / PROCEDURE as rpcgen does;
 *   client      int <prefix>_<proc>(ipcf_rpc_client *c, [const A *in,] [R *out,]
 *                                  const ipcf_rpc_opts *o);
 *               int <prefix>_<proc>_start(..., ipcf_rpc_call **ret_call);
 *               (void arguments or results take no parameter);
 *   server      struct <version>_handlers { int (*<proc>)(ipcf_rpc_ctx *ctx,
 *                   [const A *in,] [R *out,] void *user); ... };
 *               int <version>_serve(ipcf_rpc_server *s, const <version>_handlers *h,
 *                                   void *user);
 *   description const ipcf_rpc_version <version>_desc: numbers, names,
 *               annotations and types of every procedure, and the
 *               interface's text (what `ipcf rpc describe` prints).
 *
 * <version> is the version's name in lower case. Type-erased wrappers
 * (static, per type) adapt T_encode/T_decode/T_free to the runtime's
 * void-pointer table, and one trampoline per procedure calls its handler
 * with its real type: no function is ever called through a pointer of
 * another type.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "idl/emit.h"
#include "idl/table.h"

static char *lowered(const char *s) {
        char *l = strdup(s);
        for (char *p = l; p && *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return l;
}

/* The argument type of a procedure: NULL for void. */
static const char *arg_type(const idl_proc *p) {
        if (p->n_args == 0)
                return NULL;
        if (p->n_args > 1)
                return p->args_def->name;
        return emit_ctype(p->args[0]);
}

static const char *res_type(const idl_proc *p) {
        return p->result->kind == IDL_VOID ? NULL : emit_ctype(p->result);
}

/* The wrappers of a type, w_enc_<T>, w_dec_<T> and w_free_<T> (a base
 * type such as int32_t gets its own), once: seen holds the types done (t
 * is a string of the file's AST or a literal, which outlive it). */
static void emit_wrappers(FILE *c, const char *t, idl_table *seen) {
        if (idl_table_put(seen, t, 0, (void *)t))
                return;
        /* base C types have no generated functions: encode them here */
        static const struct {
                const char *ct, *put, *get;
        } base[] = {
                { "int32_t", "ipcf_xdr_put_u32(ipcf_x, (uint32_t)*(const int32_t *)ipcf_v)",
                  "ipcf_xdr_get_u32(ipcf_x, (uint32_t *)ipcf_v)" },
                { "uint32_t", "ipcf_xdr_put_u32(ipcf_x, *(const uint32_t *)ipcf_v)", "ipcf_xdr_get_u32(ipcf_x, (uint32_t *)ipcf_v)" },
                { "int64_t", "ipcf_xdr_put_u64(ipcf_x, (uint64_t)*(const int64_t *)ipcf_v)",
                  "ipcf_xdr_get_u64(ipcf_x, (uint64_t *)ipcf_v)" },
                { "uint64_t", "ipcf_xdr_put_u64(ipcf_x, *(const uint64_t *)ipcf_v)", "ipcf_xdr_get_u64(ipcf_x, (uint64_t *)ipcf_v)" },
                { "float", "ipcf_xdr_put_float(ipcf_x, *(const float *)ipcf_v)", "ipcf_xdr_get_float(ipcf_x, (float *)ipcf_v)" },
                { "double", "ipcf_xdr_put_double(ipcf_x, *(const double *)ipcf_v)", "ipcf_xdr_get_double(ipcf_x, (double *)ipcf_v)" },
                { "ipcf_xdr_quad", "ipcf_xdr_put_fixed(ipcf_x, ((const ipcf_xdr_quad *)ipcf_v)->b, 16)",
                  "ipcf_xdr_get_fixed(ipcf_x, ((ipcf_xdr_quad *)ipcf_v)->b, 16)" },
        };
        for (size_t i = 0; i < sizeof(base) / sizeof(base[0]); i++)
                if (!strcmp(base[i].ct, t)) {
                        fprintf(c,
                                "static int w_enc_%s(ipcf_xdr *ipcf_x, const void *ipcf_v) {\n\treturn %s;\n}\n"
                                "static int w_dec_%s(ipcf_xdr *ipcf_x, void *ipcf_v) {\n\treturn %s;\n}\n"
                                "static void w_free_%s(void *ipcf_v) {\n\t(void)ipcf_v;\n}\n\n",
                                t, base[i].put, t, base[i].get, t);
                        return;
                }
        fprintf(c,
                "static int w_enc_%s(ipcf_xdr *ipcf_x, const void *ipcf_v) {\n\treturn %s_encode(ipcf_x, ipcf_v);\n}\n"
                "static int w_dec_%s(ipcf_xdr *ipcf_x, void *ipcf_v) {\n\treturn %s_decode(ipcf_x, ipcf_v);\n}\n"
                "static void w_free_%s(void *ipcf_v) {\n\t%s_free(ipcf_v);\n}\n\n",
                t, t, t, t, t, t);
}

/* "const A *in, R *out" for a prototype (each part only if not void). */
static void params(FILE *o, const idl_proc *p) {
        const char *a = arg_type(p), *r = res_type(p);
        if (a)
                fprintf(o, ", const %s *ipcf_in", a);
        if (r)
                fprintf(o, ", %s *ipcf_out", r);
}

static void emit_version(idl_emit *e, const idl_program *pg, const idl_version *v, idl_table *seen) {
        FILE *h = e->h, *c = e->c;
        char *vl = lowered(v->name);
        /* numbers */
        fprintf(h, "#ifndef %s\n#define %s %" PRId64 "u\n#endif\n", v->name, v->name, v->number.num);
        for (size_t i = 0; i < v->n_procs; i++)
                fprintf(h, "#ifndef %s\n#define %s %" PRId64 "u\n#endif\n", v->procs[i].name, v->procs[i].name,
                        v->procs[i].number.num);
        /* handlers */
        fprintf(h, "\ntypedef struct %s_handlers {\n", vl);
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                fprintf(h, "\tint (*%s)(ipcf_rpc_ctx *ipcf_ctx", p->c_name);
                params(h, p);
                fputs(", void *ipcf_user);\n", h);
        }
        fprintf(h, "} %s_handlers;\n\n", vl);
        fprintf(h, "extern const ipcf_rpc_version %s_desc;\n", vl);
        fprintf(h, "int %s_serve(ipcf_rpc_server *ipcf_s, const %s_handlers *ipcf_h, void *ipcf_user);\n", vl, vl);
        /* stubs */
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                fprintf(h, "int %s_%s(ipcf_rpc_client *ipcf_c", e->prefix, p->c_name);
                params(h, p);
                fputs(", const ipcf_rpc_opts *ipcf_o);\n", h);
                fprintf(h, "int %s_%s_start(ipcf_rpc_client *ipcf_c", e->prefix, p->c_name);
                params(h, p);
                fputs(", const ipcf_rpc_opts *ipcf_o, ipcf_rpc_call **ipcf_ret_call);\n", h);
        }
        fputs("\n", h);

        /* the source: wrappers, trampolines, the table */
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                if (arg_type(p))
                        emit_wrappers(c, arg_type(p), seen);
                if (res_type(p))
                        emit_wrappers(c, res_type(p), seen);
        }
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                const char *a = arg_type(p), *r = res_type(p);
                fprintf(c, "static int inv_%s_%s(const void *ipcf_handlers, ipcf_rpc_ctx *ipcf_ctx, const void *ipcf_in, void *ipcf_out,\n"
                           "\t\tvoid *ipcf_user) {\n"
                           "\tconst %s_handlers *ipcf_h = ipcf_handlers;\n"
                           "\t(void)ipcf_in;\n\t(void)ipcf_out;\n"
                           "\tif (!ipcf_h->%s)\n\t\treturn -EOPNOTSUPP;\n"
                           "\tif (!ipcf_ctx)\n\t\treturn 0;\n"
                           "\treturn ipcf_h->%s(ipcf_ctx%s%s, ipcf_user);\n}\n\n",
                        vl, p->c_name, vl, p->c_name, p->c_name, a ? ", ipcf_in" : "", r ? ", ipcf_out" : "");
        }
        fprintf(c, "static const ipcf_rpc_proc %s_procs[] = {\n", vl);
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                const char *a = arg_type(p), *r = res_type(p);
                fprintf(c, "\t{ .number = %" PRId64 "u, .flags = %s%s%s, .timeout_ms = %" PRId64 ", .name = \"%s\",\n",
                        p->number.num, p->attrs.idempotent ? "IPCF_RPC_IDEMPOTENT" : "0",
                        p->attrs.oneway ? " | " : "", p->attrs.oneway ? "IPCF_RPC_ONEWAY" : "", p->attrs.timeout_ms,
                        p->name);
                fprintf(c, "\t  .arg_type = \"%s\", .res_type = \"%s\",\n", a ? a : "void", r ? r : "void");
                if (a)
                        fprintf(c, "\t  .arg_size = sizeof(%s), .encode_arg = w_enc_%s, .decode_arg = w_dec_%s, "
                                   ".free_arg = w_free_%s,\n", a, a, a, a);
                if (r)
                        fprintf(c, "\t  .res_size = sizeof(%s), .encode_res = w_enc_%s, .decode_res = w_dec_%s, "
                                   ".free_res = w_free_%s,\n", r, r, r, r);
                fprintf(c, "\t  .invoke = inv_%s_%s },\n", vl, p->c_name);
        }
        fputs("};\n\n", c);
        fprintf(c, "const ipcf_rpc_version %s_desc = {\n"
                   "\t.prog = %" PRId64 "u, .vers = %" PRId64 "u, .prog_name = \"%s\", .vers_name = \"%s\",\n"
                   "\t.procs = %s_procs, .n_procs = %zu, .description = interface_text,\n};\n\n",
                vl, pg->number.num, v->number.num, pg->name, v->name, vl, v->n_procs);
        fprintf(c, "int %s_serve(ipcf_rpc_server *ipcf_s, const %s_handlers *ipcf_h, void *ipcf_user) {\n"
                   "\treturn ipcf_rpc_server_add(ipcf_s, &%s_desc, ipcf_h, ipcf_user);\n}\n\n", vl, vl, vl);
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                const char *a = arg_type(p), *r = res_type(p);
                fprintf(c, "int %s_%s(ipcf_rpc_client *ipcf_c", e->prefix, p->c_name);
                params(c, p);
                fprintf(c, ", const ipcf_rpc_opts *ipcf_o) {\n\treturn ipcf_rpc_invoke(ipcf_c, &%s_desc, &%s_procs[%zu], %s, %s, ipcf_o);\n}\n\n",
                        vl, vl, i, a ? "ipcf_in" : "NULL", r ? "ipcf_out" : "NULL");
                fprintf(c, "int %s_%s_start(ipcf_rpc_client *ipcf_c", e->prefix, p->c_name);
                params(c, p);
                fprintf(c, ", const ipcf_rpc_opts *ipcf_o, ipcf_rpc_call **ipcf_ret_call) {\n"
                           "\treturn ipcf_rpc_start(ipcf_c, &%s_desc, &%s_procs[%zu], %s, %s, ipcf_o, ipcf_ret_call);\n}\n\n",
                        vl, vl, i, a ? "ipcf_in" : "NULL", r ? "ipcf_out" : "NULL");
        }
        free(vl);
}

/* The interface's text as a C string literal. */
static void emit_text(FILE *c, const char *s, size_t n) {
        fputs("static const char interface_text[] =\n\t\"", c);
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char)s[i];
                if (ch == '\n')
                        fputs(i + 1 < n ? "\\n\"\n\t\"" : "\\n", c);
                else if (ch == '"' || ch == '\\')
                        fprintf(c, "\\%c", ch);
                else if (ch < 32 || ch >= 127)
                        fprintf(c, "\\%03o", ch);
                else
                        fputc(ch, c);
        }
        fputs("\";\n\n", c);
}

void emit_rpc(idl_emit *e) {
        const idl_file *f = e->f;
        bool any = false;
        for (size_t i = 0; i < f->n_defs; i++)
                any |= f->defs[i]->kind == IDL_DEF_PROGRAM;
        if (!any)
                return;
        emit_text(e->c, e->source ? e->source : "", e->source ? e->source_len : 0);
        idl_table seen = { 0 };
        for (size_t i = 0; i < f->n_defs; i++) {
                if (f->defs[i]->kind != IDL_DEF_PROGRAM)
                        continue;
                const idl_program *pg = f->defs[i]->prog;
                fprintf(e->h, "#ifndef %s\n#define %s %" PRId64 "u\n#endif\n", pg->name, pg->name, pg->number.num);
                for (size_t v = 0; v < pg->n_versions; v++)
                        emit_version(e, pg, &pg->versions[v], &seen);
        }
        idl_table_free(&seen);
}
