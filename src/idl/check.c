/*
 * check.c — semantic checks of an interface file, after parsing:
 *
 *  - every name is defined once (types, constants, enumerators, programs),
 *    none is a C keyword (the generated code uses them as C names);
 *  - the C the generator makes compiles: #defines (constants, programs,
 *    versions, procedures) name nothing else, union arms are distinct, and
 *    no name is one the generated code uses itself (check_c_names, last);
 *  - inline struct/union/enum types in declarations get names
 *    (<outer>_<member>) and become definitions of their own;
 *  - values resolve (a const, an enumerator, TRUE/FALSE) and fit where they
 *    are used: enumerators in int, bounds in unsigned int, fixed sizes >= 1,
 *    case labels in the discriminant's type (an enumerator of its enum);
 *  - type references name a type; a discriminant is int, unsigned int, bool
 *    or an enum; no two cases share a value; struct members are not void
 *    and have distinct names;
 *  - no type contains itself except through optional data or a
 *    variable-length array (else its size is infinite); the fewest bytes of
 *    each type's encoding (min_wire) is known and at most 2 GiB; its
 *    shallowest value nests at most IPCF_XDR_MAX_DEPTH levels (min_depth,
 *    as decoding counts them), else no value of it could be decoded;
 *  - programs, versions and procedures have distinct numbers; a oneway
 *    procedure returns void; a procedure of several arguments gets a struct
 *    <name>_args of members arg1..argN; the timeout of a version or program
 *    is the default of its procedures; stub names are unique (see
 *    idl_proc.c_name).
 * Errors are collected (all of them, up to a limit) with their positions.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "idl/ast.h"
#include "ipcf.h"

#define MAX_ERRORS 50

typedef struct checker {
        idl_file *f;
        idl_diag *d;
        int depth;        /* of enumerators valued by other names */
        bool indexed;     /* f->names has every definition so far */
        idl_table prognums; /* program numbers seen: the program */
        idl_table uses;   /* check_c_names: names of members and arms (used_in_types) */
} checker;

static const char *const c_keywords[] = {
        "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
        "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
        "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch", "typedef",
        "union", "unsigned", "void", "volatile", "while", "_Bool", "_Complex", "_Imaginary",
        "bool", "true", "false", "NULL", "main",
        /* GNU C (the default -std=gnu*) and C23 */
        "asm", "typeof", "typeof_unqual", "alignas", "alignof", "constexpr", "nullptr", "static_assert",
        "thread_local",
};

/* Names the generated C itself uses that a #define of the file would
 * replace: members of ipcf.h's types it initializes or reads (x->err, a
 * quadruple's b, .number, .procs...), library functions, macros and types
 * it calls or names. Also arg<N> (members of an arguments' struct) and
 * ipcf_ / IPCF_. Its own parameters and locals are all named ipcf_*
 * (ipcf_x, ipcf_v, ipcf_in, ipcf_i0...: emit_xdr.c, emit_rpc.c), so they
 * need no entry: no name of the file can hide them or be hidden by them. */
static const char *const generated_names[] = {
        "b", "err", "errno", "free", "memset", "number", "flags", "timeout_ms", "name", "arg_size", "arg_type",
        "res_size", "res_type", "encode_arg", "decode_arg", "free_arg", "encode_res", "decode_res", "free_res",
        "invoke", "description", "procs", "n_procs", "prog", "vers", "prog_name", "vers_name", "interface_text",
        "EBADMSG", "EINVAL", "EOPNOTSUPP", "ENOMEM", "size_t", "int8_t", "int16_t", "int32_t", "int64_t",
        "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t", "uintptr_t", "ptrdiff_t",
};

/* The macros the generated C sees from the headers it includes (<errno.h>,
 * <stdint.h>, <stdlib.h>, <string.h>, and through ipcf.h <endian.h>,
 * <sys/types.h>...; glibc on Linux, -std=gnu11, which also predefines
 * linux and unix), sorted (strcmp) for bsearch: a name of the file spelt as
 * one of them would be replaced by it (enum { BIG_ENDIAN = 0 } does not
 * compile). Made with `cc -dM -E` of a generated .c, less IPCF_* (all
 * reserved) and names starting with '_' (no identifier of the language). */
static const char *const header_macros[] = {
        "BIG_ENDIAN", "BYTE_ORDER", "E2BIG", "EACCES", "EADDRINUSE", "EADDRNOTAVAIL", "EADV", "EAFNOSUPPORT",
        "EAGAIN", "EALREADY", "EBADE", "EBADF", "EBADFD", "EBADMSG", "EBADR", "EBADRQC", "EBADSLT", "EBFONT",
        "EBUSY", "ECANCELED", "ECHILD", "ECHRNG", "ECOMM", "ECONNABORTED", "ECONNREFUSED", "ECONNRESET",
        "EDEADLK", "EDEADLOCK", "EDESTADDRREQ", "EDOM", "EDOTDOT", "EDQUOT", "EEXIST", "EFAULT", "EFBIG",
        "EHOSTDOWN", "EHOSTUNREACH", "EHWPOISON", "EIDRM", "EILSEQ", "EINPROGRESS", "EINTR", "EINVAL", "EIO",
        "EISCONN", "EISDIR", "EISNAM", "EKEYEXPIRED", "EKEYREJECTED", "EKEYREVOKED", "EL2HLT", "EL2NSYNC",
        "EL3HLT", "EL3RST", "ELIBACC", "ELIBBAD", "ELIBEXEC", "ELIBMAX", "ELIBSCN", "ELNRNG", "ELOOP",
        "EMEDIUMTYPE", "EMFILE", "EMLINK", "EMSGSIZE", "EMULTIHOP", "ENAMETOOLONG", "ENAVAIL", "ENETDOWN",
        "ENETRESET", "ENETUNREACH", "ENFILE", "ENOANO", "ENOBUFS", "ENOCSI", "ENODATA", "ENODEV", "ENOENT",
        "ENOEXEC", "ENOKEY", "ENOLCK", "ENOLINK", "ENOMEDIUM", "ENOMEM", "ENOMSG", "ENONET", "ENOPKG",
        "ENOPROTOOPT", "ENOSPC", "ENOSR", "ENOSTR", "ENOSYS", "ENOTBLK", "ENOTCONN", "ENOTDIR", "ENOTEMPTY",
        "ENOTNAM", "ENOTRECOVERABLE", "ENOTSOCK", "ENOTSUP", "ENOTTY", "ENOTUNIQ", "ENXIO", "EOPNOTSUPP",
        "EOVERFLOW", "EOWNERDEAD", "EPERM", "EPFNOSUPPORT", "EPIPE", "EPROTO", "EPROTONOSUPPORT", "EPROTOTYPE",
        "ERANGE", "EREMCHG", "EREMOTE", "EREMOTEIO", "ERESTART", "ERFKILL", "EROFS", "ESHUTDOWN",
        "ESOCKTNOSUPPORT", "ESPIPE", "ESRCH", "ESRMNT", "ESTALE", "ESTRPIPE", "ETIME", "ETIMEDOUT",
        "ETOOMANYREFS", "ETXTBSY", "EUCLEAN", "EUNATCH", "EUSERS", "EWOULDBLOCK", "EXDEV", "EXFULL",
        "EXIT_FAILURE", "EXIT_SUCCESS", "FD_CLR", "FD_ISSET", "FD_SET", "FD_SETSIZE", "FD_ZERO", "INT16_C",
        "INT16_MAX", "INT16_MIN", "INT32_C", "INT32_MAX", "INT32_MIN", "INT64_C", "INT64_MAX", "INT64_MIN",
        "INT8_C", "INT8_MAX", "INT8_MIN", "INTMAX_C", "INTMAX_MAX", "INTMAX_MIN", "INTPTR_MAX", "INTPTR_MIN",
        "INT_FAST16_MAX", "INT_FAST16_MIN", "INT_FAST32_MAX", "INT_FAST32_MIN", "INT_FAST64_MAX",
        "INT_FAST64_MIN", "INT_FAST8_MAX", "INT_FAST8_MIN", "INT_LEAST16_MAX", "INT_LEAST16_MIN",
        "INT_LEAST32_MAX", "INT_LEAST32_MIN", "INT_LEAST64_MAX", "INT_LEAST64_MIN", "INT_LEAST8_MAX",
        "INT_LEAST8_MIN", "LITTLE_ENDIAN", "MB_CUR_MAX", "NFDBITS", "NULL", "PDP_ENDIAN", "PTRDIFF_MAX",
        "PTRDIFF_MIN", "RAND_MAX", "SIG_ATOMIC_MAX", "SIG_ATOMIC_MIN", "SIZE_MAX", "UINT16_C", "UINT16_MAX",
        "UINT32_C", "UINT32_MAX", "UINT64_C", "UINT64_MAX", "UINT8_C", "UINT8_MAX", "UINTMAX_C", "UINTMAX_MAX",
        "UINTPTR_MAX", "UINT_FAST16_MAX", "UINT_FAST32_MAX", "UINT_FAST64_MAX", "UINT_FAST8_MAX",
        "UINT_LEAST16_MAX", "UINT_LEAST32_MAX", "UINT_LEAST64_MAX", "UINT_LEAST8_MAX", "WCHAR_MAX",
        "WCHAR_MIN", "WCONTINUED", "WEXITED", "WEXITSTATUS", "WIFCONTINUED", "WIFEXITED", "WIFSIGNALED",
        "WIFSTOPPED", "WINT_MAX", "WINT_MIN", "WNOHANG", "WNOWAIT", "WSTOPPED", "WSTOPSIG", "WTERMSIG",
        "WUNTRACED", "alloca", "be16toh", "be32toh", "be64toh", "errno", "htobe16", "htobe32", "htobe64",
        "htole16", "htole32", "htole64", "le16toh", "le32toh", "le64toh", "linux", "offsetof", "unix",
};

int idl_cmp_name(const void *a, const void *b) {
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

#define ERR(c, pos, ...)                                     \
        do {                                                 \
                if ((c)->d->errors < MAX_ERRORS)             \
                        idl_error((c)->d, (pos), __VA_ARGS__); \
        } while (0)

static void check_c_name(checker *c, const char *name, idl_pos pos) {
        for (size_t i = 0; i < sizeof(c_keywords) / sizeof(c_keywords[0]); i++)
                if (!strcmp(c_keywords[i], name)) {
                        ERR(c, pos, "'%s' is a keyword of C, where the generated code uses it as a name", name);
                        return;
                }
        if (bsearch(&name, header_macros, sizeof(header_macros) / sizeof(header_macros[0]), sizeof(header_macros[0]),
                    idl_cmp_name))
                ERR(c, pos, "'%s' is a macro of the C headers the generated code includes (<errno.h>, <stdint.h>, "
                    "<endian.h>...), which would replace it", name);
}

/* Of those, what a type may not be named: the library's names. */
static const char *const generated_type_names[] = {
        "errno", "free", "memset", "NULL", "size_t", "int8_t", "int16_t", "int32_t",
        "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t", "uintptr_t", "ptrdiff_t",
};

/* Is name one the generated code uses itself, as a #define (macro) would
 * replace it, or as a type would clash with it? */
static bool generated_name(const char *name, bool macro) {
        const char *const *list = macro ? generated_names : generated_type_names;
        size_t n = macro ? sizeof(generated_names) / sizeof(generated_names[0])
                         : sizeof(generated_type_names) / sizeof(generated_type_names[0]);
        for (size_t i = 0; i < n; i++)
                if (!strcmp(list[i], name))
                        return true;
        if (!strncmp(name, "ipcf_", 5) || !strncmp(name, "IPCF_", 5))
                return true;
        const char *digits = macro && !strncmp(name, "arg", 3) ? name + 3 : NULL;
        if (digits && *digits) {
                while (*digits >= '0' && *digits <= '9')
                        digits++;
                return !*digits;
        }
        return false;
}

/* Through the index idl_check makes (check_names); before it, by a scan. */
idl_def *idl_find(const idl_file *f, const char *name) {
        if (f->names.n)
                return idl_table_get(&f->names, name, 0);
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->name && !strcmp(f->defs[i]->name, name))
                        return f->defs[i];
        return NULL;
}

/* The first enumerator of that name anywhere in the file, or NULL (after
 * check_names, which indexes them). */
static const idl_enumval *find_enumval(const idl_file *f, const char *name) {
        return idl_table_get(&f->enumvals, name, 0);
}

/* A copy of s in lower case (in the arena). */
static char *lowered(idl_file *f, const char *s) {
        char *l = idl_sprintf(f, "%s", s);
        for (char *p = l; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        return l;
}

const idl_type *idl_resolve(const idl_type *t) {
        for (int guard = 0; t && t->kind == IDL_NAMED && t->def && guard < 1000; guard++) {
                const idl_def *d = t->def;
                if (d->kind == IDL_DEF_TYPEDEF && d->decl.kind == IDL_D_PLAIN)
                        t = d->decl.type;
                else
                        return d->type ? d->type : t;
        }
        return t;
}

/* ---- pass 1: hoist inline aggregates into definitions ------------------ */

static void hoist_decl(checker *c, idl_decl *dcl, const char *outer);

static idl_def *add_def(checker *c, enum idl_defkind kind, const char *name, idl_pos pos) {
        idl_def *d = idl_alloc(c->f, sizeof(*d));
        d->kind = kind;
        d->name = name;
        d->pos = pos;
        d->synthetic = true;
        idl_add_def(c->f, d);
        if (c->indexed)
                idl_table_put(&c->f->names, name, 0, d);
        return d;
}

/* Members of an aggregate body, hoisted in turn (named after the aggregate). */
static void hoist_body(checker *c, idl_type *t) {
        if (t->kind == IDL_STRUCT)
                for (size_t i = 0; i < t->n_members; i++)
                        hoist_decl(c, &t->members[i], t->name);
        if (t->kind == IDL_UNION) {
                hoist_decl(c, &t->disc, t->name);
                for (size_t i = 0; i < t->n_cases; i++)
                        hoist_decl(c, &t->cases[i].arm, t->name);
                if (t->deflt)
                        hoist_decl(c, t->deflt, t->name);
        }
}

/* Replace an inline aggregate type *tp by a reference to a new definition. */
static void hoist_type(checker *c, idl_type **tp, const char *name) {
        idl_type *t = *tp;
        if (t->kind != IDL_ENUM && t->kind != IDL_STRUCT && t->kind != IDL_UNION)
                return;
        idl_def *d = add_def(c, t->kind == IDL_ENUM ? IDL_DEF_ENUM : t->kind == IDL_STRUCT ? IDL_DEF_STRUCT
                                                                                          : IDL_DEF_UNION,
                             name, t->pos);
        t->name = name;
        d->type = t;
        idl_type *ref = idl_alloc(c->f, sizeof(*ref));
        ref->kind = IDL_NAMED;
        ref->pos = t->pos;
        ref->name = name;
        *tp = ref;
        hoist_body(c, t);
}

static void hoist_decl(checker *c, idl_decl *dcl, const char *outer) {
        if (dcl->type && dcl->name)
                hoist_type(c, &dcl->type, idl_sprintf(c->f, "%s_%s", outer, dcl->name));
}

static void hoist_all(checker *c) {
        size_t n = c->f->n_defs; /* the new ones are hoisted already */
        for (size_t i = 0; i < n; i++) {
                idl_def *d = c->f->defs[i];
                if (d->kind == IDL_DEF_TYPEDEF) {
                        /* typedef struct {...} name: the struct takes the name itself */
                        idl_type *t = d->decl.type;
                        if (d->decl.kind == IDL_D_PLAIN &&
                            (t->kind == IDL_ENUM || t->kind == IDL_STRUCT || t->kind == IDL_UNION)) {
                                d->kind = t->kind == IDL_ENUM ? IDL_DEF_ENUM
                                          : t->kind == IDL_STRUCT ? IDL_DEF_STRUCT : IDL_DEF_UNION;
                                d->type = t;
                                t->name = d->name;
                                hoist_body(c, t);
                        } else if (d->decl.kind != IDL_D_VOID) {
                                hoist_type(c, &d->decl.type, idl_sprintf(c->f, "%s_elem", d->name));
                        }
                } else if (d->type) {
                        hoist_body(c, d->type);
                } else if (d->kind == IDL_DEF_PROGRAM) {
                        for (size_t v = 0; v < d->prog->n_versions; v++)
                                for (size_t p = 0; p < d->prog->versions[v].n_procs; p++) {
                                        idl_proc *pr = &d->prog->versions[v].procs[p];
                                        hoist_type(c, &pr->result, idl_sprintf(c->f, "%s_res", pr->name));
                                        for (size_t a = 0; a < pr->n_args; a++)
                                                hoist_type(c, &pr->args[a],
                                                           idl_sprintf(c->f, "%s_arg%zu", pr->name, a + 1));
                                }
                }
        }
}

/* ---- pass 2: names ------------------------------------------------------ */

/* Indexes the definitions (f->names: the first of each name) and the
 * enumerators (f->enumvals), reporting names defined twice. */
static void check_names(checker *c) {
        idl_file *f = c->f;
        for (size_t i = 0; i < f->n_defs; i++)
                idl_table_put(&f->names, f->defs[i]->name, 0, f->defs[i]);
        c->indexed = true;
        for (size_t i = 0; i < f->n_defs; i++) {
                idl_def *d = f->defs[i], *first = idl_find(f, d->name);
                check_c_name(c, d->name, d->pos);
                if (!strcmp(d->name, "TRUE") || !strcmp(d->name, "FALSE"))
                        ERR(c, d->pos, "'%s' is predefined (bool)", d->name);
                if (first != d)
                        ERR(c, d->pos, "'%s' is defined twice (first at line %d)", d->name, first->pos.line);
                if (d->kind != IDL_DEF_ENUM)
                        continue;
                for (size_t v = 0; v < d->type->n_vals; v++) {
                        idl_enumval *ev = &d->type->vals[v];
                        check_c_name(c, ev->name, ev->pos);
                        const idl_enumval *prev = idl_table_put(&f->enumvals, ev->name, 0, ev);
                        if (idl_find(f, ev->name))
                                ERR(c, ev->pos, "'%s' is both an enumerator and a definition", ev->name);
                        else if (prev)
                                ERR(c, ev->pos, "enumerator '%s' is defined twice", ev->name);
                }
        }
}

/* ---- pass 2b: the names of the generated C ------------------------------
 *
 * Constants, programs, versions and procedures become #defines (as rpcgen
 * makes them), which replace the name everywhere after them: one may not
 * also name a member, an arm, a discriminant, a type, an enumerator or
 * another #define of a different meaning, nor what the generated code uses
 * itself. A version's name in lower case names its handlers' struct, and a
 * procedure's its member there: those must be distinct and no C keyword. */

/* Is name base followed by suffix? */
static bool is_suffixed(const char *name, const char *base, const char *suffix) {
        size_t n = strlen(base);
        return !strncmp(name, base, n) && !strcmp(name + n, suffix);
}

/* Index in c->uses the names dcl (named dname) puts in the C of d: dname
 * itself unless !self, and x_len / x_val of a variable array that is not a
 * string (the first definition that uses a name keeps it). */
static void use_decl(checker *c, idl_def *d, const idl_decl *dcl, const char *dname, bool self) {
        if (!dname)
                return;
        if (self)
                idl_table_put(&c->uses, dname, 0, d);
        if (dcl->kind == IDL_D_VAR && dcl->type && dcl->type->kind != IDL_STRING) {
                idl_table_put(&c->uses, idl_sprintf(c->f, "%s_len", dname), 0, d);
                idl_table_put(&c->uses, idl_sprintf(c->f, "%s_val", dname), 0, d);
        }
}

/* c->uses: every name the types of f use besides definitions and
 * enumerators (members, arms, discriminants, and the C names derived from
 * them: x_len / x_val of a variable array, NAME_u of a union). */
static void index_uses(checker *c) {
        idl_file *f = c->f;
        for (size_t i = 0; i < f->n_defs; i++) {
                idl_def *d = f->defs[i];
                const idl_type *t = d->type;
                if (d->kind == IDL_DEF_TYPEDEF) {
                        use_decl(c, d, &d->decl, d->name, false);
                } else if (d->kind == IDL_DEF_STRUCT && t) {
                        for (size_t k = 0; k < t->n_members; k++)
                                use_decl(c, d, &t->members[k], t->members[k].name, true);
                } else if (d->kind == IDL_DEF_UNION && t) {
                        idl_table_put(&c->uses, idl_sprintf(f, "%s_u", d->name), 0, d);
                        use_decl(c, d, &t->disc, t->disc.name, true);
                        for (size_t k = 0; k < t->n_cases; k++)
                                use_decl(c, d, &t->cases[k].arm, t->cases[k].arm.name, true);
                        if (t->deflt)
                                use_decl(c, d, t->deflt, t->deflt->name, true);
                }
        }
}

/* Where name is used in the types of f besides as a definition or an
 * enumerator (see index_uses), or NULL. */
static const char *used_in_types(checker *c, const char *name) {
        const idl_def *d = idl_table_get(&c->uses, name, 0);
        if (!d)
                return NULL;
        if (d->kind == IDL_DEF_TYPEDEF)
                return idl_sprintf(c->f, "a member of typedef %s", d->name);
        if (d->kind == IDL_DEF_UNION && is_suffixed(name, d->name, "_u"))
                return idl_sprintf(c->f, "the union of %s", d->name);
        return idl_sprintf(c->f, "a member of %s %s", d->kind == IDL_DEF_STRUCT ? "struct" : "union", d->name);
}

/* A #define named name at pos (what: "constant", "program"...): not used
 * otherwise. Definitions and enumerators are checked by check_names for
 * constants and programs (which are definitions). */
static void check_macro(checker *c, const char *name, idl_pos pos, const char *what, bool vs_defs) {
        const char *use = used_in_types(c, name);
        if (use)
                ERR(c, pos, "'%s' is a %s, a #define in the generated C, and also %s", name, what, use);
        else if (generated_name(name, true))
                ERR(c, pos, "'%s' is a %s, a #define in the generated C, where the generated code uses "
                    "'%s' itself", name, what, name);
        else if (vs_defs && idl_find(c->f, name))
                ERR(c, pos, "'%s' is a %s, a #define in the generated C, and also a definition", name, what);
        else if (vs_defs && find_enumval(c->f, name))
                ERR(c, pos, "'%s' is a %s, a #define in the generated C, and also an enumerator", name, what);
}

/* Programs are taken in order: a version's name is compared with the
 * names of the programs up to its own and of their procedures (tables
 * filled as programs come), and with the versions before it. */
static void check_c_names(checker *c) {
        idl_file *f = c->f;
        idl_table versions = { 0 }, procs = { 0 }, progs = { 0 };
        index_uses(c);
        for (size_t i = 0; i < f->n_defs; i++) {
                idl_def *d = f->defs[i];
                if (d->kind == IDL_DEF_CONST || d->kind == IDL_DEF_PROGRAM) {
                        check_macro(c, d->name, d->pos, d->kind == IDL_DEF_CONST ? "constant" : "program", false);
                } else if (generated_name(d->name, false)) {
                        ERR(c, d->pos, "'%s' is a name the generated C uses itself; give the type another", d->name);
                }
                if (d->kind != IDL_DEF_PROGRAM)
                        continue;
                idl_table_put(&progs, d->name, 0, d);
                for (size_t v = 0; v < d->prog->n_versions; v++)
                        for (size_t p = 0; p < d->prog->versions[v].n_procs; p++)
                                idl_table_put(&procs, d->prog->versions[v].procs[p].name, 0, &d->prog->versions[v].procs[p]);
                for (size_t v = 0; v < d->prog->n_versions; v++) {
                        idl_version *ver = &d->prog->versions[v];
                        check_macro(c, ver->name, ver->pos, "version", true);
                        const idl_version *first = idl_table_put(&versions, lowered(f, ver->name), 0, ver);
                        if (first)
                                ERR(c, ver->pos, "version name '%s' is used twice (first at line %d; "
                                    "its handlers are %s_handlers, in lower case)", ver->name, first->pos.line, ver->name);
                        if (idl_table_get(&procs, ver->name, 0))
                                ERR(c, ver->pos, "'%s' names both a version and a procedure", ver->name);
                        if (idl_table_get(&progs, ver->name, 0))
                                ERR(c, ver->pos, "'%s' names both a program and a version", ver->name);
                        idl_table low_procs = { 0 };
                        for (size_t p = 0; p < ver->n_procs; p++) {
                                idl_proc *pr = &ver->procs[p];
                                check_macro(c, pr->name, pr->pos, "procedure", true);
                                char *low = lowered(f, pr->name);
                                if (strcmp(low, pr->name))
                                        check_c_name(c, low, pr->pos); /* its handler's member */
                                const idl_proc *same = idl_table_put(&low_procs, low, 0, pr);
                                if (same && strcmp(same->name, pr->name))
                                        ERR(c, pr->pos, "procedures '%s' and '%s' of version %s differ only in "
                                            "case (their stubs and handlers are named in lower case)",
                                            same->name, pr->name, ver->name);
                                const idl_def *named = idl_find(f, pr->name);
                                if (named && named->kind == IDL_DEF_PROGRAM)
                                        ERR(c, pr->pos, "'%s' names both a program and a procedure", pr->name);
                        }
                        idl_table_free(&low_procs);
                }
        }
        idl_table_free(&versions);
        idl_table_free(&procs);
        idl_table_free(&progs);
}

/* ---- pass 3: values ----------------------------------------------------- */

/* Resolve v; returns false (after an error) if it names nothing numeric. */
static bool resolve_value(checker *c, idl_value *v) {
        if (!v->ident)
                return true;
        if (!strcmp(v->ident, "TRUE") || !strcmp(v->ident, "FALSE")) {
                v->num = v->ident[0] == 'T';
                return true;
        }
        const idl_def *d = idl_find(c->f, v->ident);
        if (d && d->kind == IDL_DEF_CONST) {
                v->num = d->value.num;
                return true;
        }
        const idl_enumval *ev = find_enumval(c->f, v->ident);
        if (ev && !ev->value.ident) {
                v->num = ev->value.num;
                return true;
        }
        if (ev && c->depth < 16) { /* an enumerator valued by another name */
                c->depth++;
                bool ok = resolve_value(c, (idl_value *)&ev->value);
                c->depth--;
                if (ok)
                        v->num = ev->value.num;
                return ok;
        }
        ERR(c, v->pos, d ? "'%s' is not a constant" : "'%s' is not defined", v->ident);
        return false;
}

static bool value_in(checker *c, idl_value *v, int64_t lo, int64_t hi, const char *what) {
        if (!resolve_value(c, v))
                return false;
        if (v->num < lo || v->num > hi) {
                ERR(c, v->pos, "%s must be %lld..%lld, not %lld", what, (long long)lo, (long long)hi,
                    (long long)v->num);
                return false;
        }
        return true;
}

/* ---- pass 4: types ------------------------------------------------------ */

static void check_type_ref(checker *c, idl_type *t) {
        if (t->kind != IDL_NAMED)
                return;
        idl_def *d = idl_find(c->f, t->name);
        if (!d) {
                ERR(c, t->pos, "type '%s' is not defined", t->name);
        } else if (d->kind == IDL_DEF_CONST || d->kind == IDL_DEF_PROGRAM) {
                ERR(c, t->pos, "'%s' is not a type", t->name);
        } else {
                t->def = d;
        }
}

static void check_decl(checker *c, idl_decl *dcl, bool void_ok) {
        if (dcl->kind == IDL_D_VOID) {
                if (!void_ok)
                        ERR(c, dcl->pos, "void is allowed only as a union arm");
                return;
        }
        check_c_name(c, dcl->name, dcl->pos);
        check_type_ref(c, dcl->type);
        if (dcl->kind == IDL_D_FIXED)
                value_in(c, &dcl->bound, 1, IDL_MAX_BOUND, "an array size");
        if (dcl->kind == IDL_D_VAR && dcl->bounded)
                value_in(c, &dcl->bound, 0, IDL_MAX_BOUND, "a bound");
        if (dcl->kind == IDL_D_VAR && !dcl->bounded)
                dcl->bound.num = IDL_MAX_BOUND;
}

static const idl_type *disc_enum(const idl_type *t) {
        t = idl_resolve(t);
        return t && t->kind == IDL_ENUM ? t : NULL;
}

static void check_union(checker *c, idl_type *t) {
        check_decl(c, &t->disc, false);
        if (t->disc.kind != IDL_D_PLAIN) {
                ERR(c, t->disc.pos, "a discriminant is a plain int, unsigned int, bool or enum");
                return;
        }
        const idl_type *dt = idl_resolve(t->disc.type);
        if (!dt || (dt->kind != IDL_INT && dt->kind != IDL_UINT && dt->kind != IDL_BOOL && dt->kind != IDL_ENUM)) {
                ERR(c, t->disc.pos, "a discriminant must be int, unsigned int, bool or an enum");
                return;
        }
        const idl_type *en = disc_enum(t->disc.type);
        idl_table values = { 0 }, members = { 0 }; /* an enum discriminant's values; the case values */
        if (en)
                for (size_t e = 0; e < en->n_vals; e++)
                        idl_table_put(&members, NULL, en->vals[e].value.num, &en->vals[e]);
        for (size_t i = 0; i < t->n_cases; i++) {
                idl_case *cs = &t->cases[i];
                check_decl(c, &cs->arm, true);
                for (size_t k = 0; k < cs->n_values; k++) {
                        idl_value *v = &cs->values[k];
                        bool ok = dt->kind == IDL_UINT ? value_in(c, v, 0, IDL_MAX_BOUND, "a case value")
                                  : dt->kind == IDL_BOOL ? value_in(c, v, 0, 1, "a bool case value")
                                                         : value_in(c, v, INT32_MIN, INT32_MAX, "a case value");
                        if (!ok)
                                continue;
                        if (en && !idl_table_get(&members, NULL, v->num))
                                ERR(c, v->pos, "case %lld is not a value of enum %s", (long long)v->num,
                                    en->name ? en->name : "");
                        if (idl_table_put(&values, NULL, v->num, v))
                                ERR(c, v->pos, "case %lld appears twice", (long long)v->num);
                }
        }
        if (t->deflt)
                check_decl(c, t->deflt, true);
        idl_table_free(&values);
        idl_table_free(&members);
        /* the arms are members of one C union: distinct names */
        idl_table arms = { 0 };
        for (size_t i = 0; i <= t->n_cases; i++) {
                idl_decl *a = i < t->n_cases ? &t->cases[i].arm : t->deflt;
                if (a && a->name && idl_table_put(&arms, a->name, 0, a))
                        ERR(c, a->pos, "arm '%s' appears twice in union %s", a->name, t->name ? t->name : "");
        }
        idl_table_free(&arms);
}

static void check_aggregate(checker *c, idl_type *t) {
        idl_table seen = { 0 };
        if (t->kind == IDL_ENUM) {
                for (size_t i = 0; i < t->n_vals; i++) {
                        idl_enumval *ev = &t->vals[i];
                        value_in(c, &ev->value, INT32_MIN, INT32_MAX, "an enumerator");
                        const idl_enumval *first = idl_table_put(&seen, NULL, ev->value.num, ev);
                        if (first && !ev->value.ident)
                                ERR(c, ev->pos, "enumerators '%s' and '%s' have the same value", first->name, ev->name);
                }
        } else if (t->kind == IDL_STRUCT) {
                for (size_t i = 0; i < t->n_members; i++) {
                        idl_decl *m = &t->members[i];
                        check_decl(c, m, false);
                        if (m->name && idl_table_put(&seen, m->name, 0, m))
                                ERR(c, m->pos, "member '%s' appears twice", m->name);
                }
        } else if (t->kind == IDL_UNION) {
                check_union(c, t);
        }
        idl_table_free(&seen);
}

/* ---- pass 5: sizes and recursion ---------------------------------------- */

#define WIRE_LIMIT (1ull << 31)
#define MIN_U64(a, b) ((a) < (b) ? (a) : (b))
#define MAX_U32(a, b) ((a) > (b) ? (a) : (b))

static uint64_t def_min_wire(checker *c, idl_def *d);

static uint64_t type_min_wire(checker *c, const idl_type *t) {
        switch (t->kind) {
        case IDL_INT: case IDL_UINT: case IDL_FLOAT: case IDL_BOOL: case IDL_ENUM:
                return 4;
        case IDL_HYPER: case IDL_UHYPER: case IDL_DOUBLE:
                return 8;
        case IDL_QUAD:
                return 16;
        case IDL_NAMED:
                return t->def ? def_min_wire(c, t->def) : 4;
        default:
                return 4;
        }
}

static uint64_t decl_min_wire(checker *c, const idl_decl *dcl) {
        switch (dcl->kind) {
        case IDL_D_VOID:
                return 0;
        case IDL_D_VAR:
        case IDL_D_OPT:
                return 4;
        case IDL_D_FIXED: {
                uint64_t n = (uint64_t)dcl->bound.num;
                if (dcl->type->kind == IDL_OPAQUE)
                        return idl_pad4(n);
                uint64_t e = type_min_wire(c, dcl->type);
                return e && n > WIRE_LIMIT / e ? WIRE_LIMIT + 1 : n * e;
        }
        case IDL_D_PLAIN:
                return type_min_wire(c, dcl->type);
        }
        return 0;
}

/* The nesting of the shallowest value of a declaration: that of its type
 * when it holds one by value (plain, or a fixed array: N >= 1 elements);
 * 0 for optional data and variable arrays (absent, empty). After
 * decl_min_wire (which computes the type's). */
static uint32_t decl_min_depth(const idl_decl *dcl) {
        if (dcl->kind != IDL_D_PLAIN && dcl->kind != IDL_D_FIXED)
                return 0;
        return dcl->type->kind == IDL_NAMED && dcl->type->def ? dcl->type->def->min_depth : 0;
}

/* min_wire and min_depth of d (and of what it holds by value). */
static uint64_t def_min_wire(checker *c, idl_def *d) {
        if (d->state == 2)
                return d->min_wire;
        if (d->state == 1) {
                ERR(c, d->pos, "type '%s' contains itself (use optional data, '*', or a variable-length "
                    "array to make a recursive type)", d->name);
                d->min_wire = WIRE_LIMIT + 1;
                return d->min_wire;
        }
        d->state = 1;
        uint64_t w = 0;
        uint32_t depth = 0; /* of what it holds; enums are no level */
        if (d->kind == IDL_DEF_TYPEDEF) {
                w = decl_min_wire(c, &d->decl);
                depth = decl_min_depth(&d->decl);
        } else if (d->kind == IDL_DEF_ENUM) {
                w = 4;
        } else if (d->kind == IDL_DEF_STRUCT) {
                for (size_t i = 0; i < d->type->n_members && w <= WIRE_LIMIT; i++) {
                        w += decl_min_wire(c, &d->type->members[i]);
                        depth = MAX_U32(depth, decl_min_depth(&d->type->members[i]));
                }
        } else if (d->kind == IDL_DEF_UNION) {
                uint64_t arm = UINT64_MAX;
                depth = UINT32_MAX;
                for (size_t i = 0; i <= d->type->n_cases; i++) {
                        const idl_decl *a = i < d->type->n_cases ? &d->type->cases[i].arm : d->type->deflt;
                        if (a) {
                                arm = MIN_U64(arm, decl_min_wire(c, a));
                                depth = MIN_U64(depth, decl_min_depth(a));
                        }
                }
                w = 4 + (arm == UINT64_MAX ? 0 : arm);
                depth = depth == UINT32_MAX ? 0 : depth;
        }
        d->min_depth = d->kind == IDL_DEF_ENUM ? 0 : depth + 1; /* each typedef, struct, union a level */
        if (w > WIRE_LIMIT && d->state == 1)
                ERR(c, d->pos, "a value of type '%s' takes more than 2 GiB", d->name);
        d->min_wire = w;
        d->state = 2;
        return w;
}

/* A definition whose shallowest value nests deeper than decoding allows
 * (IPCF_XDR_MAX_DEPTH: generated code and ipcf rpc call enter a level for
 * each typedef, struct and union, by value or not) could never be decoded:
 * an error, reported at the outermost such definitions only (not at each
 * definition of the chain they hold). */
static void check_depth(checker *c) {
        idl_file *f = c->f;
        bool *inner = idl_alloc(f, f->n_defs * sizeof(*inner) + 1);
        for (size_t i = 0; i < f->n_defs; i++) {
                const idl_def *d = f->defs[i];
                if (d->min_depth <= IPCF_XDR_MAX_DEPTH)
                        continue;
                const idl_type *t = d->type;
                size_t n = d->kind == IDL_DEF_TYPEDEF ? 1 : d->kind == IDL_DEF_STRUCT ? t->n_members : t->n_cases + 1;
                for (size_t k = 0; k < n; k++) {
                        const idl_decl *a = d->kind == IDL_DEF_TYPEDEF  ? &d->decl
                                            : d->kind == IDL_DEF_STRUCT ? &t->members[k]
                                            : k < t->n_cases            ? &t->cases[k].arm
                                                                        : t->deflt;
                        if (a && decl_min_depth(a))
                                inner[a->type->def->index] = true;
                }
        }
        for (size_t i = 0; i < f->n_defs; i++) {
                const idl_def *d = f->defs[i];
                if (d->min_depth > IPCF_XDR_MAX_DEPTH && !inner[i])
                        ERR(c, d->pos, "a value of type '%s' nests %u levels deep (a chain of typedefs, structs and "
                            "unions held by value, a level each), more than the %d a decoder allows "
                            "(IPCF_XDR_MAX_DEPTH): no value of it could be decoded", d->name, d->min_depth,
                            IPCF_XDR_MAX_DEPTH);
        }
}

/* ---- pass 6: programs ---------------------------------------------------- */

static void check_proc_types(checker *c, idl_proc *pr) {
        if (pr->result->kind != IDL_VOID)
                check_type_ref(c, pr->result);
        for (size_t a = 0; a < pr->n_args; a++)
                check_type_ref(c, pr->args[a]);
        if (pr->attrs.oneway && pr->result->kind != IDL_VOID)
                ERR(c, pr->pos, "oneway procedure '%s' must return void", pr->name);
}

/* Several arguments: the struct <c_name>_args { arg1; ...; argN; }. */
static void make_args_struct(checker *c, idl_proc *pr) {
        if (pr->n_args < 2)
                return;
        const char *name = idl_sprintf(c->f, "%s_args", pr->c_name);
        if (idl_find(c->f, name)) {
                ERR(c, pr->pos, "the arguments' struct '%s' of procedure '%s' clashes with a definition",
                    name, pr->name);
                return;
        }
        idl_def *d = add_def(c, IDL_DEF_STRUCT, name, pr->pos);
        idl_type *t = idl_alloc(c->f, sizeof(*t));
        t->kind = IDL_STRUCT;
        t->name = name;
        t->pos = pr->pos;
        t->members = idl_alloc(c->f, pr->n_args * sizeof(*t->members));
        t->n_members = pr->n_args;
        for (size_t a = 0; a < pr->n_args; a++)
                t->members[a] = (idl_decl){ .type = pr->args[a], .name = idl_sprintf(c->f, "arg%zu", a + 1),
                                            .kind = IDL_D_PLAIN, .pos = pr->args[a]->pos };
        d->type = t;
        pr->args_def = d;
}

static void check_program(checker *c, idl_def *d, size_t *n_seen) {
        idl_program *pg = d->prog;
        value_in(c, &pg->number, 0, IDL_MAX_BOUND, "a program number");
        if (idl_table_put(&c->prognums, NULL, pg->number.num, d))
                ERR(c, pg->number.pos, "program number %lld is used twice", (long long)pg->number.num);
        if (pg->n_versions == 0)
                ERR(c, pg->pos, "program '%s' has no version", pg->name);
        idl_table vnums = { 0 };
        for (size_t v = 0; v < pg->n_versions; v++) {
                idl_version *ver = &pg->versions[v];
                check_c_name(c, ver->name, ver->pos);
                value_in(c, &ver->number, 0, IDL_MAX_BOUND, "a version number");
                if (idl_table_put(&vnums, NULL, ver->number.num, ver))
                        ERR(c, ver->number.pos, "version number %lld is used twice", (long long)ver->number.num);
                if (ver->attrs.idempotent || ver->attrs.oneway)
                        ERR(c, ver->attrs.pos, "only timeout(ms) may be given for a whole version");
                int64_t tmo = ver->attrs.timeout_ms ? ver->attrs.timeout_ms : pg->attrs.timeout_ms;
                idl_table pnums = { 0 }, pnames = { 0 };
                for (size_t p = 0; p < ver->n_procs; p++) {
                        idl_proc *pr = &ver->procs[p];
                        check_c_name(c, pr->name, pr->pos);
                        value_in(c, &pr->number, 0, IDL_MAX_BOUND, "a procedure number");
                        if (idl_table_put(&pnums, NULL, pr->number.num, pr))
                                ERR(c, pr->number.pos, "procedure number %lld is used twice in version %s",
                                    (long long)pr->number.num, ver->name);
                        if (idl_table_put(&pnames, pr->name, 0, pr))
                                ERR(c, pr->pos, "procedure '%s' is defined twice in version %s", pr->name, ver->name);
                        if (!pr->attrs.timeout_ms)
                                pr->attrs.timeout_ms = tmo;
                        check_proc_types(c, pr);
                        (*n_seen)++;
                }
                idl_table_free(&pnums);
                idl_table_free(&pnames);
        }
        idl_table_free(&vnums);
        if (pg->attrs.idempotent || pg->attrs.oneway)
                ERR(c, pg->attrs.pos, "only timeout(ms) may be given for a whole program");
}

/* Stub names: the procedure's name in lower case, with _v<version> where
 * that name occurs more than once in the file (in any case). */
static void name_stubs(checker *c) {
        idl_file *f = c->f;
        idl_table first = { 0 }, several = { 0 }, stubs = { 0 };
        for (int pass = 0; pass < 3; pass++)
                for (size_t i = 0; i < f->n_defs; i++) {
                        if (f->defs[i]->kind != IDL_DEF_PROGRAM)
                                continue;
                        idl_program *pg = f->defs[i]->prog;
                        for (size_t v = 0; v < pg->n_versions; v++)
                                for (size_t p = 0; p < pg->versions[v].n_procs; p++) {
                                        idl_proc *pr = &pg->versions[v].procs[p];
                                        if (pass == 0) { /* count the uses of each name: 1, or several */
                                                pr->c_name = lowered(f, pr->name);
                                                if (idl_table_put(&first, pr->c_name, 0, pr))
                                                        idl_table_put(&several, pr->c_name, 0, pr);
                                        } else if (pass == 1) {
                                                if (idl_table_get(&several, pr->c_name, 0))
                                                        pr->c_name = lowered(f, idl_sprintf(f, "%s_v%lld", pr->name,
                                                                             (long long)pg->versions[v].number.num));
                                        } else { /* still clashing (same name and version number in two programs)? */
                                                const idl_def *q = idl_table_put(&stubs, pr->c_name, 0, f->defs[i]);
                                                if (q && q != f->defs[i])
                                                        ERR(c, pr->pos, "procedure '%s' clashes with one of program %s "
                                                            "(same name and version)", pr->name, q->name);
                                        }
                                }
                }
        idl_table_free(&first);
        idl_table_free(&several);
        idl_table_free(&stubs);
}

int idl_check(idl_file *f, idl_diag *d) {
        checker ck = { .f = f, .d = d }, *c = &ck;
        unsigned before = d->errors;
        hoist_all(c);
        check_names(c);
        size_t n_programs = 0, n_procs = 0;
        for (size_t i = 0; i < f->n_defs; i++) {
                idl_def *df = f->defs[i];
                switch (df->kind) {
                case IDL_DEF_CONST:
                        break;
                case IDL_DEF_TYPEDEF:
                        check_decl(c, &df->decl, false);
                        break;
                case IDL_DEF_ENUM:
                case IDL_DEF_STRUCT:
                case IDL_DEF_UNION:
                        check_aggregate(c, df->type);
                        break;
                case IDL_DEF_PROGRAM:
                        n_programs++;
                        check_program(c, df, &n_procs);
                        break;
                }
        }
        if (d->errors != before) {
                check_c_names(c);
                idl_table_free(&c->prognums);
                idl_table_free(&c->uses);
                return -1;
        }
        name_stubs(c);
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->kind == IDL_DEF_PROGRAM)
                        for (size_t v = 0; v < f->defs[i]->prog->n_versions; v++)
                                for (size_t p = 0; p < f->defs[i]->prog->versions[v].n_procs; p++)
                                        make_args_struct(c, &f->defs[i]->prog->versions[v].procs[p]);
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->kind != IDL_DEF_CONST && f->defs[i]->kind != IDL_DEF_PROGRAM)
                        def_min_wire(c, f->defs[i]);
        if (d->errors == before)
                check_depth(c);
        check_c_names(c); /* last: the errors of meaning first */
        idl_table_free(&c->prognums);
        idl_table_free(&c->uses);
        return d->errors != before ? -1 : 0;
}
