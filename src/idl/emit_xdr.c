/*
 * emit_xdr.c — generates the C types of an interface and their XDR code.
 *
 * The C mapping is rpcgen's, so that code written against rpcgen's types
 * carries over: a struct, enum or union NAME is `struct NAME` with
 * `typedef struct NAME NAME`; a union is a struct of its discriminant and
 * `union { ... } NAME_u`; a variable-length array x is
 * `struct { uint32_t x_len; T *x_val; } x`; a string is `char *`; optional
 * data is a pointer; opaque is char; bool is int32_t (rpcgen's bool_t).
 *
 * For each named type T it generates
 *      int  T_encode(ipcf_xdr *x, const T *v);  // 0 or the stream's error
 *                                               //   (-ELOOP: nested deeper than
 *                                               //   decoding would take)
 *      int  T_decode(ipcf_xdr *x, T *v);        // *v is filled; on failure it
 *                                               //   is left zeroed, nothing leaks
 *      void T_free(T *v);                       // frees what decoding allocated
 * over static enc_T / dec_T / free_T that use the streams' sticky errors.
 * Every aggregate is one level of nesting (max_depth) when encoded and
 * decoded; a list's chain (list_tail) is walked in a loop, a node a level.
 * The generated code's own parameters and locals are named ipcf_x,
 * ipcf_v, ipcf_u, ipcf_i0... (as emit_rpc.c's): a user's name may not
 * start with ipcf_ (check.c), so none hides a type of the file or is
 * replaced by its #defines, and the code compiles under -Wshadow.
 * Definitions are emitted in dependency order (by-value uses first; structs
 * and unions are forward-declared, so pointers need no order).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "idl/emit.h"

const char *emit_ctype(const idl_type *t) {
        switch (t->kind) {
        case IDL_INT: return "int32_t";
        case IDL_UINT: return "uint32_t";
        case IDL_HYPER: return "int64_t";
        case IDL_UHYPER: return "uint64_t";
        case IDL_FLOAT: return "float";
        case IDL_DOUBLE: return "double";
        case IDL_QUAD: return "ipcf_xdr_quad";
        case IDL_BOOL: return "int32_t";
        case IDL_OPAQUE: return "char";
        case IDL_STRING: return "char";
        case IDL_VOID: return "void";
        default: return t->name;
        }
}

/* A C declaration of dcl under name. */
static void c_decl(FILE *o, const idl_decl *dcl, const char *name) {
        const char *ct = emit_ctype(dcl->type);
        switch (dcl->kind) {
        case IDL_D_PLAIN:
                fprintf(o, "%s %s", ct, name);
                break;
        case IDL_D_FIXED:
                fprintf(o, "%s %s[%" PRId64 "]", ct, name, dcl->bound.num);
                break;
        case IDL_D_VAR:
                if (dcl->type->kind == IDL_STRING)
                        fprintf(o, "char *%s", name);
                else
                        fprintf(o, "struct {\n\t\tuint32_t %s_len;\n\t\t%s *%s_val;\n\t} %s", name, ct, name, name);
                break;
        case IDL_D_OPT:
                fprintf(o, "%s *%s", ct, name);
                break;
        case IDL_D_VOID:
                break;
        }
}

/* ---- dependency order ------------------------------------------------------ */

static void emit_def_type(FILE *o, const idl_def *d);

static void order_visit(const idl_file *f, const idl_def *d, const idl_def **out, size_t *n, char *mark);

/* A definition reached by a declaration: by value, or through a pointer to
 * something that is not a forward-declared struct/union. */
static void order_decl(const idl_file *f, const idl_decl *dcl, const idl_def **out, size_t *n, char *mark) {
        if (dcl->kind == IDL_D_VOID || dcl->type->kind != IDL_NAMED || !dcl->type->def)
                return;
        const idl_def *r = dcl->type->def;
        bool pointer = dcl->kind == IDL_D_OPT || dcl->kind == IDL_D_VAR;
        if (pointer && (r->kind == IDL_DEF_STRUCT || r->kind == IDL_DEF_UNION))
                return;
        order_visit(f, r, out, n, mark);
}

static void order_visit(const idl_file *f, const idl_def *d, const idl_def **out, size_t *n, char *mark) {
        if (mark[d->index])
                return;
        mark[d->index] = 1;
        if (d->kind == IDL_DEF_TYPEDEF) {
                order_decl(f, &d->decl, out, n, mark);
        } else if (d->kind == IDL_DEF_STRUCT) {
                for (size_t k = 0; k < d->type->n_members; k++)
                        order_decl(f, &d->type->members[k], out, n, mark);
        } else if (d->kind == IDL_DEF_UNION) {
                order_decl(f, &d->type->disc, out, n, mark);
                for (size_t k = 0; k < d->type->n_cases; k++)
                        order_decl(f, &d->type->cases[k].arm, out, n, mark);
                if (d->type->deflt)
                        order_decl(f, d->type->deflt, out, n, mark);
        }
        out[(*n)++] = d;
}

/* Type definitions (not consts or programs) in dependency order. */
static const idl_def **ordered_types(const idl_file *f, size_t *ret_n) {
        const idl_def **out = calloc(f->n_defs + 1, sizeof(*out));
        char *mark = calloc(f->n_defs + 1, 1);
        size_t n = 0;
        if (out && mark)
                for (size_t i = 0; i < f->n_defs; i++)
                        if (f->defs[i]->kind != IDL_DEF_CONST && f->defs[i]->kind != IDL_DEF_PROGRAM)
                                order_visit(f, f->defs[i], out, &n, mark);
        free(mark);
        *ret_n = n;
        return out;
}

/* ---- the header: types ----------------------------------------------------- */

static void emit_def_type(FILE *o, const idl_def *d) {
        const idl_type *t = d->type;
        switch (d->kind) {
        case IDL_DEF_TYPEDEF:
                fputs("typedef ", o);
                c_decl(o, &d->decl, d->name);
                fputs(";\n\n", o);
                break;
        case IDL_DEF_ENUM:
                fprintf(o, "enum %s {\n", d->name);
                for (size_t i = 0; i < t->n_vals; i++)
                        fprintf(o, "\t%s = %" PRId64 ",\n", t->vals[i].name, t->vals[i].value.num);
                fprintf(o, "};\ntypedef enum %s %s;\n\n", d->name, d->name);
                break;
        case IDL_DEF_STRUCT:
                fprintf(o, "struct %s {\n", d->name);
                for (size_t i = 0; i < t->n_members; i++) {
                        fputc('\t', o);
                        c_decl(o, &t->members[i], t->members[i].name);
                        fputs(";\n", o);
                }
                fputs("};\n\n", o);
                break;
        case IDL_DEF_UNION: {
                fprintf(o, "struct %s {\n\t", d->name);
                c_decl(o, &t->disc, t->disc.name);
                fputs(";\n", o);
                bool any = t->deflt && t->deflt->kind != IDL_D_VOID;
                for (size_t i = 0; i < t->n_cases; i++)
                        any |= t->cases[i].arm.kind != IDL_D_VOID;
                if (any) {
                        fputs("\tunion {\n", o);
                        for (size_t i = 0; i <= t->n_cases; i++) {
                                const idl_decl *arm = i < t->n_cases ? &t->cases[i].arm : t->deflt;
                                if (!arm || arm->kind == IDL_D_VOID)
                                        continue;
                                fputs("\t\t", o);
                                c_decl(o, arm, arm->name);
                                fputs(";\n", o);
                        }
                        fprintf(o, "\t} %s_u;\n", d->name);
                }
                fputs("};\n\n", o);
                break;
        }
        default:
                break;
        }
}

/* ---- encode / decode / free ------------------------------------------------ */

typedef struct gen {
        FILE *o;
        int loop; /* next loop variable */
} gen;

static bool type_needs_free(const idl_type *t);

static bool decl_needs_free(const idl_decl *dcl) {
        switch (dcl->kind) {
        case IDL_D_VAR:
        case IDL_D_OPT:
                return true;
        case IDL_D_PLAIN:
        case IDL_D_FIXED:
                return dcl->type->kind != IDL_OPAQUE && type_needs_free(dcl->type);
        default:
                return false;
        }
}

static bool def_needs_free(const idl_def *d, int guard) {
        if (guard > 200)
                return true;
        switch (d->kind) {
        case IDL_DEF_TYPEDEF:
                return decl_needs_free(&d->decl);
        case IDL_DEF_STRUCT:
                for (size_t i = 0; i < d->type->n_members; i++)
                        if (decl_needs_free(&d->type->members[i]))
                                return true;
                return false;
        case IDL_DEF_UNION:
                for (size_t i = 0; i < d->type->n_cases; i++)
                        if (decl_needs_free(&d->type->cases[i].arm))
                                return true;
                return d->type->deflt && decl_needs_free(d->type->deflt);
        default:
                return false;
        }
}

static bool type_needs_free(const idl_type *t) {
        return t->kind == IDL_NAMED && t->def && def_needs_free(t->def, 0);
}

static void ind(gen *g, int depth) {
        for (int i = 0; i < depth; i++)
                fputc('\t', g->o);
}

/* Encode one value of type t at lvalue e. */
static void enc_type(gen *g, int d, const idl_type *t, const char *e) {
        ind(g, d);
        switch (t->kind) {
        case IDL_INT: case IDL_UINT:
                fprintf(g->o, "ipcf_xdr_put_u32(ipcf_x, (uint32_t)(%s));\n", e);
                break;
        case IDL_HYPER: case IDL_UHYPER:
                fprintf(g->o, "ipcf_xdr_put_u64(ipcf_x, (uint64_t)(%s));\n", e);
                break;
        case IDL_FLOAT:
                fprintf(g->o, "ipcf_xdr_put_float(ipcf_x, %s);\n", e);
                break;
        case IDL_DOUBLE:
                fprintf(g->o, "ipcf_xdr_put_double(ipcf_x, %s);\n", e);
                break;
        case IDL_QUAD:
                fprintf(g->o, "ipcf_xdr_put_fixed(ipcf_x, (%s).b, 16);\n", e);
                break;
        case IDL_BOOL:
                fprintf(g->o, "ipcf_xdr_put_u32(ipcf_x, (%s) ? 1u : 0u);\n", e);
                break;
        default:
                fprintf(g->o, "enc_%s(ipcf_x, &(%s));\n", t->name, e);
                break;
        }
}

static void dec_type(gen *g, int d, const idl_type *t, const char *e) {
        ind(g, d);
        switch (t->kind) {
        case IDL_INT:
                fprintf(g->o, "{ uint32_t ipcf_u = 0; ipcf_xdr_get_u32(ipcf_x, &ipcf_u); %s = (int32_t)ipcf_u; }\n", e);
                break;
        case IDL_UINT:
                fprintf(g->o, "ipcf_xdr_get_u32(ipcf_x, &(%s));\n", e);
                break;
        case IDL_HYPER:
                fprintf(g->o, "{ uint64_t ipcf_u = 0; ipcf_xdr_get_u64(ipcf_x, &ipcf_u); %s = (int64_t)ipcf_u; }\n", e);
                break;
        case IDL_UHYPER:
                fprintf(g->o, "ipcf_xdr_get_u64(ipcf_x, &(%s));\n", e);
                break;
        case IDL_FLOAT:
                fprintf(g->o, "ipcf_xdr_get_float(ipcf_x, &(%s));\n", e);
                break;
        case IDL_DOUBLE:
                fprintf(g->o, "ipcf_xdr_get_double(ipcf_x, &(%s));\n", e);
                break;
        case IDL_QUAD:
                fprintf(g->o, "ipcf_xdr_get_fixed(ipcf_x, (%s).b, 16);\n", e);
                break;
        case IDL_BOOL:
                fprintf(g->o, "ipcf_xdr_get_bool(ipcf_x, &(%s));\n", e);
                break;
        default:
                fprintf(g->o, "dec_%s(ipcf_x, &(%s));\n", t->name, e);
                break;
        }
}

static void free_type(gen *g, int d, const idl_type *t, const char *e) {
        if (!type_needs_free(t))
                return;
        ind(g, d);
        fprintf(g->o, "free_%s(&(%s));\n", t->name, e);
}

enum op { ENC, DEC, FREE };

static void each_type(gen *g, enum op op, int d, const idl_type *t, const char *e) {
        if (op == ENC)
                enc_type(g, d, t, e);
        else if (op == DEC)
                dec_type(g, d, t, e);
        else
                free_type(g, d, t, e);
}

static uint64_t type_min_wire(const idl_type *t) {
        switch (t->kind) {
        case IDL_HYPER: case IDL_UHYPER: case IDL_DOUBLE:
                return 8;
        case IDL_QUAD:
                return 16;
        case IDL_NAMED:
                return t->def ? t->def->min_wire : 4;
        default:
                return 4;
        }
}

/* One declaration named name at lvalue e. */
static void op_decl(gen *g, enum op op, int d, const idl_decl *dcl, const char *name, const char *e) {
        FILE *o = g->o;
        char sub[512];
        const idl_type *t = dcl->type;
        uint32_t bound = (uint32_t)dcl->bound.num;
        switch (dcl->kind) {
        case IDL_D_VOID:
                return;
        case IDL_D_PLAIN:
                each_type(g, op, d, t, e);
                return;
        case IDL_D_FIXED:
                if (t->kind == IDL_OPAQUE) {
                        if (op != FREE) {
                                ind(g, d);
                                fprintf(o, "ipcf_xdr_%s_fixed(ipcf_x, %s, %u);\n", op == ENC ? "put" : "get", e, bound);
                        }
                        return;
                }
                if (op == FREE && !type_needs_free(t))
                        return;
                {
                        int i = g->loop++;
                        ind(g, d);
                        fprintf(o, "for (uint32_t ipcf_i%d = 0; ipcf_i%d < %uu%s; ipcf_i%d++) {\n", i, i, bound,
                                op == FREE ? "" : " && !ipcf_x->err", i);
                        snprintf(sub, sizeof(sub), "(%s)[ipcf_i%d]", e, i);
                        each_type(g, op, d + 1, t, sub);
                        ind(g, d);
                        fputs("}\n", o);
                        g->loop--;
                }
                return;
        case IDL_D_VAR:
                if (t->kind == IDL_STRING) {
                        ind(g, d);
                        if (op == ENC)
                                fprintf(o, "ipcf_xdr_put_string(ipcf_x, %s, %uu);\n", e, bound);
                        else if (op == DEC)
                                fprintf(o, "ipcf_xdr_get_string(ipcf_x, &(%s), %uu);\n", e, bound);
                        else
                                fprintf(o, "free(%s);\n", e);
                        return;
                }
                if (t->kind == IDL_OPAQUE) {
                        ind(g, d);
                        if (op == ENC)
                                fprintf(o, "ipcf_xdr_put_var(ipcf_x, (%s).%s_val, (%s).%s_len, %uu);\n", e, name, e, name, bound);
                        else if (op == DEC)
                                fprintf(o, "ipcf_xdr_get_var(ipcf_x, &(%s).%s_val, &(%s).%s_len, %uu);\n", e, name, e, name, bound);
                        else
                                fprintf(o, "ipcf_xdr_free((%s).%s_val);\n", e, name);
                        return;
                }
                {
                        int i = g->loop++;
                        snprintf(sub, sizeof(sub), "(%s).%s_val[ipcf_i%d]", e, name, i);
                        if (op == ENC) {
                                ind(g, d);
                                fprintf(o, "ipcf_xdr_put_count(ipcf_x, (%s).%s_len, %uu);\n", e, name, bound);
                                ind(g, d);
                                fprintf(o, "if (!ipcf_x->err && (%s).%s_len && !(%s).%s_val) ipcf_xdr_fail(ipcf_x, -EINVAL);\n",
                                        e, name, e, name);
                                ind(g, d);
                                fprintf(o, "for (uint32_t ipcf_i%d = 0; ipcf_i%d < (%s).%s_len && !ipcf_x->err; ipcf_i%d++) {\n", i, i, e,
                                        name, i);
                                each_type(g, op, d + 1, t, sub);
                                ind(g, d);
                                fputs("}\n", o);
                        } else if (op == DEC) {
                                ind(g, d);
                                fprintf(o, "{\n");
                                ind(g, d + 1);
                                fprintf(o, "uint32_t ipcf_n = 0;\n");
                                ind(g, d + 1);
                                fprintf(o, "if (ipcf_xdr_get_count(ipcf_x, &ipcf_n, %uu, %" PRIu64 "u) == 0 && ipcf_n &&\n", bound,
                                        type_min_wire(t));
                                ind(g, d + 1);
                                fprintf(o, "    ((%s).%s_val = ipcf_xdr_alloc(ipcf_x, ipcf_n, sizeof(*(%s).%s_val)))) {\n", e,
                                        name, e, name);
                                ind(g, d + 2);
                                fprintf(o, "(%s).%s_len = ipcf_n;\n", e, name);
                                ind(g, d + 2);
                                fprintf(o, "for (uint32_t ipcf_i%d = 0; ipcf_i%d < ipcf_n && !ipcf_x->err; ipcf_i%d++) {\n", i, i, i);
                                each_type(g, op, d + 3, t, sub);
                                ind(g, d + 2);
                                fputs("}\n", o);
                                ind(g, d + 1);
                                fputs("}\n", o);
                                ind(g, d);
                                fputs("}\n", o);
                        } else {
                                if (type_needs_free(t)) {
                                        ind(g, d);
                                        fprintf(o, "for (uint32_t ipcf_i%d = 0; (%s).%s_val && ipcf_i%d < (%s).%s_len; ipcf_i%d++) {\n", i,
                                                e, name, i, e, name, i);
                                        each_type(g, op, d + 1, t, sub);
                                        ind(g, d);
                                        fputs("}\n", o);
                                }
                                ind(g, d);
                                fprintf(o, "free((%s).%s_val);\n", e, name);
                        }
                        g->loop--;
                }
                return;
        case IDL_D_OPT:
                snprintf(sub, sizeof(sub), "*(%s)", e);
                ind(g, d);
                if (op == ENC) {
                        fprintf(o, "ipcf_xdr_put_u32(ipcf_x, (%s) != NULL);\n", e);
                        ind(g, d);
                        fprintf(o, "if (%s) {\n", e);
                        each_type(g, op, d + 1, t, sub);
                        ind(g, d);
                        fputs("}\n", o);
                } else if (op == DEC) {
                        fprintf(o, "{\n");
                        ind(g, d + 1);
                        fprintf(o, "int32_t ipcf_b = 0;\n");
                        ind(g, d + 1);
                        fprintf(o, "if (ipcf_xdr_get_bool(ipcf_x, &ipcf_b) == 0 && ipcf_b && ((%s) = ipcf_xdr_alloc(ipcf_x, 1, sizeof(*(%s))))) {\n",
                                e, e);
                        each_type(g, op, d + 2, t, sub);
                        ind(g, d + 1);
                        fputs("}\n", o);
                        ind(g, d);
                        fputs("}\n", o);
                } else {
                        fprintf(o, "if (%s) {\n", e);
                        each_type(g, op, d + 1, t, sub);
                        ind(g, d + 1);
                        fprintf(o, "free(%s);\n", e);
                        ind(g, d);
                        fputs("}\n", o);
                }
                return;
        }
}

/* A case label for value v of a discriminant of base kind k. */
static void case_label(FILE *o, enum idl_tkind k, int64_t v) {
        if (k == IDL_UINT)
                fprintf(o, "case %" PRIu64 "u:", (uint64_t)v);
        else if (v == INT32_MIN)
                fputs("case (-2147483647 - 1):", o);
        else
                fprintf(o, "case %" PRId64 ":", v);
}

static void op_union(gen *g, enum op op, const idl_def *df) {
        FILE *o = g->o;
        const idl_type *t = df->type;
        const idl_type *dt = idl_resolve(t->disc.type);
        char e[256], arm[300];
        snprintf(e, sizeof(e), "ipcf_v->%s", t->disc.name);
        if (op != FREE)
                op_decl(g, op, 1, &t->disc, t->disc.name, e);
        fprintf(o, "\t%sswitch (ipcf_v->%s) {\n", op == FREE ? "" : "if (!ipcf_x->err)\n\t", t->disc.name);
        for (size_t i = 0; i < t->n_cases; i++) {
                const idl_case *cs = &t->cases[i];
                for (size_t k = 0; k < cs->n_values; k++) {
                        fputc('\t', o);
                        case_label(o, dt->kind, cs->values[k].num);
                        fputc('\n', o);
                }
                if (cs->arm.kind != IDL_D_VOID) {
                        snprintf(arm, sizeof(arm), "ipcf_v->%s_u.%s", df->name, cs->arm.name);
                        op_decl(g, op, 2, &cs->arm, cs->arm.name, arm);
                }
                fputs("\t\tbreak;\n", o);
        }
        fputs("\tdefault:\n", o);
        if (t->deflt) {
                if (t->deflt->kind != IDL_D_VOID) {
                        snprintf(arm, sizeof(arm), "ipcf_v->%s_u.%s", df->name, t->deflt->name);
                        op_decl(g, op, 2, t->deflt, t->deflt->name, arm);
                }
        } else if (op != FREE) {
                fprintf(o, "\t\tipcf_xdr_fail(ipcf_x, %s);\n", op == ENC ? "-EINVAL" : "-EBADMSG");
        }
        fputs("\t\tbreak;\n\t}\n", o);
}

/* The distinct values of an enum (aliases appear once). */
static void enum_cases(FILE *o, const idl_type *t) {
        idl_table seen = { 0 };
        for (size_t i = 0; i < t->n_vals; i++)
                if (!idl_table_put(&seen, NULL, t->vals[i].value.num, (void *)&t->vals[i])) {
                        fputc('\t', o);
                        case_label(o, IDL_INT, t->vals[i].value.num);
                        fputc('\n', o);
                }
        idl_table_free(&seen);
}

/* The body of enc_/dec_/free_ of a typedef, struct or union. */
/* The first n members of struct df, at lvalue v, indented d. */
static void op_members(gen *g, enum op op, int d, const idl_def *df, size_t n) {
        char e[256];
        for (size_t i = 0; i < n; i++) {
                snprintf(e, sizeof(e), "ipcf_v->%s", df->type->members[i].name);
                op_decl(g, op, d, &df->type->members[i], df->type->members[i].name, e);
        }
}

static void op_body(gen *g, enum op op, const idl_def *df) {
        if (df->kind == IDL_DEF_TYPEDEF) {
                op_decl(g, op, 1, &df->decl, df->name, "(*ipcf_v)");
        } else if (df->kind == IDL_DEF_STRUCT) {
                op_members(g, op, 1, df, df->type->n_members);
        } else {
                op_union(g, op, df);
        }
}

/* The same one level deeper (encoding and decoding: max_depth). */
static void op_nested(gen *g, enum op op, const idl_def *df) {
        fputs("\tif (ipcf_xdr_enter(ipcf_x) < 0)\n\t\treturn;\n", g->o);
        op_body(g, op, df);
        fputs("\tipcf_xdr_leave(ipcf_x);\n", g->o);
}

/* A list: a struct whose last member is optional data of its own type
 * (`struct node { ...; node *next; }`, as NFS's directory entries). Its
 * chain is walked in a loop, not by recursion: each node is one level of
 * nesting, entered and left before the next, so a list of any length
 * encodes and decodes (within the decoding budget) where recursion would
 * take max_depth, or the stack, per node. The bytes are the same. */
static const idl_decl *list_tail(const idl_def *df) {
        if (df->kind != IDL_DEF_STRUCT || df->type->n_members == 0)
                return NULL;
        const idl_decl *last = &df->type->members[df->type->n_members - 1];
        return last->kind == IDL_D_OPT && last->type->kind == IDL_NAMED && last->type->def == df ? last : NULL;
}

/* enc_/dec_/free_ of a list (ipcf_v walks the chain; free_ leaves the
 * first node, the caller's, and frees the others). */
static void op_list(gen *g, enum op op, const idl_def *df) {
        FILE *o = g->o;
        const char *next = list_tail(df)->name;
        if (op == FREE) {
                fputs("\tfor (void *ipcf_first = ipcf_v, *ipcf_next;;) {\n", o);
                op_members(g, op, 2, df, df->type->n_members - 1); /* all but the tail */
                fprintf(o, "\t\tipcf_next = ipcf_v->%s;\n\t\tif (ipcf_v != ipcf_first)\n\t\t\tfree(ipcf_v);\n"
                           "\t\tif (!ipcf_next)\n\t\t\treturn;\n\t\tipcf_v = ipcf_next;\n\t}\n",
                        next);
                return;
        }
        fputs("\tfor (;;) {\n\t\tif (ipcf_xdr_enter(ipcf_x) < 0)\n\t\t\treturn;\n", o);
        op_members(g, op, 2, df, df->type->n_members - 1);
        if (op == ENC)
                fprintf(o, "\t\tipcf_xdr_put_u32(ipcf_x, ipcf_v->%s != NULL);\n", next);
        else
                fprintf(o, "\t\t{\n\t\t\tint32_t ipcf_b = 0;\n\t\t\tif (ipcf_xdr_get_bool(ipcf_x, &ipcf_b) == 0 && ipcf_b)\n"
                           "\t\t\t\tipcf_v->%s = ipcf_xdr_alloc(ipcf_x, 1, sizeof(*ipcf_v->%s));\n\t\t}\n",
                        next, next);
        fprintf(o, "\t\tipcf_xdr_leave(ipcf_x);\n\t\tif (ipcf_x->err || !ipcf_v->%s)\n\t\t\treturn;\n\t\tipcf_v = ipcf_v->%s;\n\t}\n", next,
                next);
}

/* The body of enc_ or dec_: nesting counted as decoding counts it, so
 * what encodes decodes (-ELOOP here, not at the peer) and no chain of
 * optional data exhausts the stack. */
static void op_coded(gen *g, enum op op, const idl_def *df) {
        if (list_tail(df))
                op_list(g, op, df);
        else
                op_nested(g, op, df);
}

static void emit_functions(gen *g, const idl_def *df) {
        FILE *o = g->o;
        const char *n = df->name;
        /* encode */
        fprintf(o, "static void enc_%s(ipcf_xdr *ipcf_x, const %s *ipcf_v) {\n", n, n);
        if (df->kind == IDL_DEF_ENUM) {
                fprintf(o, "\tswitch ((int32_t)*ipcf_v) {\n");
                enum_cases(o, df->type);
                fprintf(o, "\t\tipcf_xdr_put_u32(ipcf_x, (uint32_t)(int32_t)*ipcf_v);\n\t\tbreak;\n"
                           "\tdefault:\n\t\tipcf_xdr_fail(ipcf_x, -EINVAL);\n\t}\n");
        } else {
                op_coded(g, ENC, df);
        }
        fputs("}\n\n", o);
        /* decode */
        fprintf(o, "static void dec_%s(ipcf_xdr *ipcf_x, %s *ipcf_v) {\n", n, n);
        if (df->kind == IDL_DEF_ENUM) {
                fprintf(o, "\tuint32_t ipcf_u = 0;\n\tif (ipcf_xdr_get_u32(ipcf_x, &ipcf_u) < 0)\n\t\treturn;\n"
                           "\tswitch ((int32_t)ipcf_u) {\n");
                enum_cases(o, df->type);
                fputs("\t\t*ipcf_v = (__typeof__(*ipcf_v))(int32_t)ipcf_u;\n\t\tbreak;\n\tdefault:\n\t\tipcf_xdr_fail(ipcf_x, -EBADMSG);\n\t}\n", o);
        } else {
                op_coded(g, DEC, df);
        }
        fputs("}\n\n", o);
        /* free */
        fprintf(o, "static void free_%s(%s *ipcf_v) {\n", n, n);
        if (!def_needs_free(df, 0))
                fputs("\t(void)ipcf_v;\n", o);
        else if (list_tail(df))
                op_list(g, FREE, df);
        else
                op_body(g, FREE, df);
        fputs("}\n\n", o);
        /* public wrappers */
        fprintf(o,
                "int %s_encode(ipcf_xdr *ipcf_x, const %s *ipcf_v) {\n"
                "\tif (!ipcf_x || !ipcf_v)\n\t\treturn -EINVAL;\n"
                "\tenc_%s(ipcf_x, ipcf_v);\n\treturn ipcf_x->err;\n}\n\n"
                "int %s_decode(ipcf_xdr *ipcf_x, %s *ipcf_v) {\n"
                "\tif (!ipcf_x || !ipcf_v)\n\t\treturn -EINVAL;\n"
                "\tmemset(ipcf_v, 0, sizeof(*ipcf_v));\n\tdec_%s(ipcf_x, ipcf_v);\n"
                "\tif (ipcf_x->err) {\n\t\tfree_%s(ipcf_v);\n\t\tmemset(ipcf_v, 0, sizeof(*ipcf_v));\n\t}\n\treturn ipcf_x->err;\n}\n\n"
                "void %s_free(%s *ipcf_v) {\n\tif (ipcf_v) {\n\t\tfree_%s(ipcf_v);\n\t\tmemset(ipcf_v, 0, sizeof(*ipcf_v));\n\t}\n}\n\n",
                n, n, n, n, n, n, n, n, n, n);
}

void emit_types(idl_emit *e) {
        const idl_file *f = e->f;
        size_t n;
        const idl_def **order = ordered_types(f, &n);
        FILE *h = e->h;
        /* constants */
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->kind == IDL_DEF_CONST) {
                        int64_t v = f->defs[i]->value.num;
                        if (v == INT64_MIN)
                                fprintf(h, "#define %s (-9223372036854775807LL - 1)\n", f->defs[i]->name);
                        else
                                fprintf(h, "#define %s %s%" PRId64 "%s%s\n", f->defs[i]->name, v < 0 ? "(" : "", v,
                                        v > INT32_MAX || v < INT32_MIN ? "LL" : "", v < 0 ? ")" : "");
                }
        fputs("\n", h);
        /* forward declarations of structs and unions */
        for (size_t i = 0; i < n; i++)
                if (order[i]->kind == IDL_DEF_STRUCT || order[i]->kind == IDL_DEF_UNION)
                        fprintf(h, "typedef struct %s %s;\n", order[i]->name, order[i]->name);
        fputs("\n", h);
        for (size_t i = 0; i < n; i++)
                emit_def_type(h, order[i]);
        for (size_t i = 0; i < n; i++)
                fprintf(h, "int %s_encode(ipcf_xdr *ipcf_x, const %s *ipcf_v);\nint %s_decode(ipcf_xdr *ipcf_x, %s *ipcf_v);\n"
                           "void %s_free(%s *ipcf_v);\n",
                        order[i]->name, order[i]->name, order[i]->name, order[i]->name, order[i]->name,
                        order[i]->name);
        fputs("\n", h);
        /* the source: prototypes first (mutual recursion through pointers) */
        gen g = { .o = e->c };
        for (size_t i = 0; i < n; i++)
                fprintf(e->c, "static void enc_%s(ipcf_xdr *ipcf_x, const %s *ipcf_v);\nstatic void dec_%s(ipcf_xdr *ipcf_x, %s *ipcf_v);\n"
                              "static void free_%s(%s *ipcf_v);\n",
                        order[i]->name, order[i]->name, order[i]->name, order[i]->name, order[i]->name,
                        order[i]->name);
        fputs("\n", e->c);
        for (size_t i = 0; i < n; i++)
                emit_functions(&g, order[i]);
        free((void *)order);
}
