/*
 * scope.c — the names the generated C declares at file scope, checked
 * after idl_check (which knows the file's own names) once the stubs'
 * prefix is known: no two of them may be one name, none may be declared by
 * the C headers the generated code includes, and no #define of the file
 * may replace one. Else the C would not compile, however good the file:
 * `typedef int a; typedef int a_encode;` (a's encoder), procedures ADD and
 * ADD_START (ADD's asynchronous stub), `struct timeval` (<sys/types.h>'s).
 *
 * Per type T (typedefs, structs, unions, enums, also the hoisted ones and
 * the arguments' structs): T, T_encode, T_decode, T_free, and the static
 * enc_T, dec_T, free_T; its enumerators. Per version V (in lower case):
 * V_handlers, V_desc, V_serve, static V_procs, and per procedure P (its
 * c_name) static inv_V_P and the stubs PREFIX_P, PREFIX_P_start. Per type
 * of an argument or result: static w_enc_T, w_dec_T, w_free_T. With a
 * program: static interface_text. (emit_xdr.c and emit_rpc.c make them.)
 *
 * And a #define may not name a member of the handlers' structs: the
 * procedures' names in lower case (so a procedure named in lower case,
 * `int add(int) = 1;`, whose #define add would replace its own handler).
 *
 * A clash between two names of the file itself (a type defined twice, an
 * enumerator named as a type) is idl_check's to report; here, each name
 * made from another is reported at the definition it is made from.
 */
#include <stdlib.h>
#include <string.h>

#include "idl/ast.h"
#include "idl/emit.h"

/* Names (ordinary identifiers and tags) that <errno.h>, <stdlib.h>,
 * <string.h>, <stddef.h>, <stdint.h> and ipcf.h (<sys/types.h>,
 * <sys/uio.h>) declare at file scope, glibc, -std=gnu11 with _GNU_SOURCE
 * (which declares the most), sorted (strcmp) for bsearch. Made from
 * `clang -Xclang -ast-dump=json` of those headers: the names of the
 * top-level functions, variables, typedefs, struct/union/enum tags and
 * enumerators, less those starting with '_' or ipcf_ (no identifier of
 * the language; the library's, refused anyway). Their macros are
 * check.c's header_macros. */
static const char *const header_decls[] = {
        "a64l", "abort", "abs", "aligned_alloc", "alloca", "arc4random", "arc4random_buf", "arc4random_uniform",
        "at_quick_exit", "atexit", "atof", "atoi", "atol", "atoll", "basename", "bcmp", "bcopy", "blkcnt64_t",
        "blkcnt_t", "blksize_t", "bsearch", "bzero", "caddr_t", "calloc", "canonicalize_file_name", "clearenv",
        "clock_t", "clockid_t", "comparison_fn_t", "daddr_t", "dev_t", "div", "div_t", "drand48",
        "drand48_data", "drand48_r", "ecvt", "ecvt_r", "erand48", "erand48_r", "error_t", "exit",
        "explicit_bzero", "fcvt", "fcvt_r", "fd_mask", "fd_set", "ffs", "ffsl", "ffsll", "free", "fsblkcnt64_t",
        "fsblkcnt_t", "fsfilcnt64_t", "fsfilcnt_t", "fsid_t", "gcvt", "getenv", "getloadavg", "getpt",
        "getsubopt", "gid_t", "grantpt", "id_t", "index", "initstate", "initstate_r", "ino64_t", "ino_t",
        "int16_t", "int32_t", "int64_t", "int8_t", "int_fast16_t", "int_fast32_t", "int_fast64_t",
        "int_fast8_t", "int_least16_t", "int_least32_t", "int_least64_t", "int_least8_t", "intmax_t",
        "intptr_t", "iovec", "jrand48", "jrand48_r", "key_t", "l64a", "labs", "lcong48", "lcong48_r", "ldiv",
        "ldiv_t", "llabs", "lldiv", "lldiv_t", "locale_t", "loff_t", "lrand48", "lrand48_r", "malloc",
        "max_align_t", "mblen", "mbstowcs", "mbtowc", "memccpy", "memchr", "memcmp", "memcpy", "memfrob",
        "memmem", "memmove", "mempcpy", "memrchr", "memset", "mkdtemp", "mkostemp", "mkostemp64", "mkostemps",
        "mkostemps64", "mkstemp", "mkstemp64", "mkstemps", "mkstemps64", "mktemp", "mode_t", "mrand48",
        "mrand48_r", "nlink_t", "nrand48", "nrand48_r", "off64_t", "off_t", "on_exit", "pid_t",
        "posix_memalign", "posix_openpt", "preadv", "preadv2", "preadv64", "preadv64v2", "process_vm_readv",
        "process_vm_writev", "program_invocation_name", "program_invocation_short_name", "pselect",
        "pthread_attr_t", "pthread_barrier_t", "pthread_barrierattr_t", "pthread_cond_t", "pthread_condattr_t",
        "pthread_key_t", "pthread_mutex_t", "pthread_mutexattr_t", "pthread_once_t", "pthread_rwlock_t",
        "pthread_rwlockattr_t", "pthread_spinlock_t", "pthread_t", "ptrdiff_t", "ptsname", "ptsname_r",
        "putenv", "pwritev", "pwritev2", "pwritev64", "pwritev64v2", "qecvt", "qecvt_r", "qfcvt", "qfcvt_r",
        "qgcvt", "qsort", "qsort_r", "quad_t", "quick_exit", "rand", "rand_r", "random", "random_data",
        "random_r", "rawmemchr", "readv", "realloc", "reallocarray", "realpath", "register_t", "rindex",
        "rpmatch", "secure_getenv", "seed48", "seed48_r", "select", "setenv", "setstate", "setstate_r",
        "sigabbrev_np", "sigdescr_np", "sigset_t", "size_t", "srand", "srand48", "srand48_r", "srandom",
        "srandom_r", "ssize_t", "stpcpy", "stpncpy", "strcasecmp", "strcasecmp_l", "strcasestr", "strcat",
        "strchr", "strchrnul", "strcmp", "strcoll", "strcoll_l", "strcpy", "strcspn", "strdup", "strerror",
        "strerror_l", "strerror_r", "strerrordesc_np", "strerrorname_np", "strfromd", "strfromf", "strfromf32",
        "strfromf32x", "strfromf64", "strfromf64x", "strfroml", "strfry", "strlen", "strncasecmp",
        "strncasecmp_l", "strncat", "strncmp", "strncpy", "strndup", "strnlen", "strpbrk", "strrchr", "strsep",
        "strsignal", "strspn", "strstr", "strtod", "strtod_l", "strtof", "strtof32", "strtof32_l", "strtof32x",
        "strtof32x_l", "strtof64", "strtof64_l", "strtof64x", "strtof64x_l", "strtof_l", "strtok", "strtok_r",
        "strtol", "strtol_l", "strtold", "strtold_l", "strtoll", "strtoll_l", "strtoq", "strtoul", "strtoul_l",
        "strtoull", "strtoull_l", "strtouq", "strverscmp", "strxfrm", "strxfrm_l", "suseconds_t", "system",
        "time_t", "timer_t", "timespec", "timeval", "u_char", "u_int", "u_int16_t", "u_int32_t", "u_int64_t",
        "u_int8_t", "u_long", "u_quad_t", "u_short", "uid_t", "uint", "uint16_t", "uint32_t", "uint64_t",
        "uint8_t", "uint_fast16_t", "uint_fast32_t", "uint_fast64_t", "uint_fast8_t", "uint_least16_t",
        "uint_least32_t", "uint_least64_t", "uint_least8_t", "uintmax_t", "uintptr_t", "ulong", "unlockpt",
        "unsetenv", "useconds_t", "ushort", "valloc", "wchar_t", "wcstombs", "wctomb", "writev",
};

static bool header_declared(const char *name) {
        return bsearch(&name, header_decls, sizeof(header_decls) / sizeof(header_decls[0]), sizeof(header_decls[0]),
                       idl_cmp_name) != NULL;
}

/* What declares a name: a description ("the encoder of type a"), where,
 * and the thing it is made for (two names of one owner are one name: the
 * wrappers of a type used by several procedures). */
typedef struct origin {
        const char *what;
        idl_pos pos;
        const void *owner;
        bool own; /* a name of the file itself (a type, an enumerator) */
} origin;

typedef struct scope {
        idl_file *f;
        idl_diag *d;
        idl_table names;   /* name -> origin */
        idl_table wrapped; /* the C types whose wrappers are declared */
        idl_table members; /* c_name -> origin: the handlers' members (not file scope, but a #define
                            * replaces them too) */
} scope;

#define MAX_ERRORS 50

static void declare(scope *s, const char *name, const char *what, idl_pos pos, const void *owner, bool own) {
        origin *o = idl_alloc(s->f, sizeof(*o));
        *o = (origin){ .what = what, .pos = pos, .owner = owner, .own = own };
        const origin *first = idl_table_put(&s->names, name, 0, o);
        if (s->d->errors >= MAX_ERRORS)
                return;
        if (first && first->owner != owner && !(first->own && own))
                idl_error(s->d, pos, "'%s', %s in the generated C, is also %s (line %d)", name, what, first->what,
                          first->pos.line);
        else if (!first && header_declared(name))
                idl_error(s->d, pos, "'%s', %s in the generated C, is declared by the C headers it includes "
                          "(<stdlib.h>, <string.h>, <sys/types.h>...)", name, what);
        else if (!first && !own && (!strncmp(name, "ipcf_", 5) || !strncmp(name, "IPCF_", 5)))
                idl_error(s->d, pos, "'%s', %s in the generated C, is a name of libipcf's (ipcf_*): give the "
                          "stubs another prefix (-p)", name, what);
}

/* A name made from base: prefix base suffix, in the arena. */
static const char *made(scope *s, const char *prefix, const char *base, const char *suffix) {
        return idl_sprintf(s->f, "%s%s%s", prefix, base, suffix);
}

/* The type of a definition, and its enumerators. A type the checker made
 * is not the file's own: idl_check compares a hoisted one (made before it
 * looks at names) with the others, but an arguments' struct only with the
 * definitions, so here with the enumerators. */
static void declare_type(scope *s, const idl_def *d) {
        const char *n = d->name;
        declare(s, n, idl_sprintf(s->f, d->synthetic ? "type %s (made by ipcf-idl)" : "type %s", n), d->pos, d,
                !d->synthetic);
        if (d->kind == IDL_DEF_ENUM)
                for (size_t v = 0; v < d->type->n_vals; v++)
                        declare(s, d->type->vals[v].name, idl_sprintf(s->f, "an enumerator of %s", n),
                                d->type->vals[v].pos, &d->type->vals[v], true);
}

static void declare_functions(scope *s, const idl_def *d) {
        static const struct {
                const char *prefix, *suffix, *what;
        } fns[] = {
                { "", "_encode", "the encoder" }, { "", "_decode", "the decoder" }, { "", "_free", "the free function" },
                { "enc_", "", "the encoding function" }, { "dec_", "", "the decoding function" },
                { "free_", "", "the freeing function" },
        };
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
                declare(s, made(s, fns[i].prefix, d->name, fns[i].suffix),
                        idl_sprintf(s->f, "%s of type %s", fns[i].what, d->name), d->pos, d, false);
}

/* The wrappers of an argument's or result's C type (none for void), once
 * per type however many procedures use it. (All wrappers have one owner:
 * two are one name only if made for one type.) */
static void declare_wrappers(scope *s, const char *ctype, idl_pos pos) {
        static const char wrapper;
        if (!ctype || idl_table_put(&s->wrapped, ctype, 0, (void *)ctype))
                return;
        const char *what = idl_sprintf(s->f, "a wrapper of type %s", ctype);
        declare(s, made(s, "w_enc_", ctype, ""), what, pos, &wrapper, false);
        declare(s, made(s, "w_dec_", ctype, ""), what, pos, &wrapper, false);
        declare(s, made(s, "w_free_", ctype, ""), what, pos, &wrapper, false);
}

static const char *lowered(scope *s, const char *name) {
        char *l = idl_sprintf(s->f, "%s", name);
        for (char *p = l; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                        *p = (char)(*p - 'A' + 'a');
        return l;
}

static void declare_version(scope *s, const idl_version *v, const char *prefix) {
        const char *vl = lowered(s, v->name);
        declare(s, made(s, "", vl, "_handlers"), idl_sprintf(s->f, "the handlers' struct of version %s", v->name),
                v->pos, v, false);
        declare(s, made(s, "", vl, "_desc"), idl_sprintf(s->f, "the description of version %s", v->name), v->pos,
                v, false);
        declare(s, made(s, "", vl, "_serve"), idl_sprintf(s->f, "the serving function of version %s", v->name),
                v->pos, v, false);
        declare(s, made(s, "", vl, "_procs"), idl_sprintf(s->f, "the procedure table of version %s", v->name),
                v->pos, v, false);
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                origin *m = idl_alloc(s->f, sizeof(*m));
                *m = (origin){ .what = idl_sprintf(s->f, "the member of %s_handlers for procedure %s's handler", vl,
                                                   p->name),
                               .pos = p->pos, .owner = p };
                idl_table_put(&s->members, p->c_name, 0, m);
                declare(s, idl_sprintf(s->f, "inv_%s_%s", vl, p->c_name),
                        idl_sprintf(s->f, "the trampoline of procedure %s", p->name), p->pos, p, false);
                declare(s, idl_sprintf(s->f, "%s_%s", prefix, p->c_name),
                        idl_sprintf(s->f, "the stub of procedure %s", p->name), p->pos, p, false);
                declare(s, idl_sprintf(s->f, "%s_%s_start", prefix, p->c_name),
                        idl_sprintf(s->f, "the asynchronous stub of procedure %s", p->name), p->pos, p, false);
        }
        for (size_t i = 0; i < v->n_procs; i++) {
                const idl_proc *p = &v->procs[i];
                declare_wrappers(s, p->n_args > 1 ? p->args_def->name : p->n_args ? emit_ctype(p->args[0]) : NULL,
                                 p->pos);
                declare_wrappers(s, p->result->kind == IDL_VOID ? NULL : emit_ctype(p->result), p->pos);
        }
}

/* A #define (constant, program, version, procedure) that would replace a
 * name made from another (idl_check compares it with the file's own). */
static void check_macro(scope *s, const char *name, idl_pos pos, const char *what) {
        const origin *o = idl_table_get(&s->names, name, 0);
        if (!o || o->own)
                o = idl_table_get(&s->members, name, 0);
        if (o && !o->own && s->d->errors < MAX_ERRORS)
                idl_error(s->d, pos, "'%s' is a %s, a #define in the generated C, and also %s there (line %d)", name,
                          what, o->what, o->pos.line);
}

int idl_check_scope(idl_file *f, const char *prefix, idl_diag *d) {
        scope sc = { .f = f, .d = d }, *s = &sc;
        unsigned before = d->errors;
        bool any_program = false;
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->kind != IDL_DEF_CONST && f->defs[i]->kind != IDL_DEF_PROGRAM)
                        declare_type(s, f->defs[i]);
        for (size_t i = 0; i < f->n_defs; i++)
                if (f->defs[i]->kind != IDL_DEF_CONST && f->defs[i]->kind != IDL_DEF_PROGRAM)
                        declare_functions(s, f->defs[i]);
        for (size_t i = 0; i < f->n_defs; i++) {
                const idl_def *df = f->defs[i];
                if (df->kind != IDL_DEF_PROGRAM)
                        continue;
                if (!any_program)
                        declare(s, "interface_text", "the interface's text", df->pos, NULL, false);
                any_program = true;
                for (size_t v = 0; v < df->prog->n_versions; v++)
                        declare_version(s, &df->prog->versions[v], prefix);
        }
        for (size_t i = 0; i < f->n_defs; i++) {
                const idl_def *df = f->defs[i];
                if (df->kind == IDL_DEF_CONST || df->kind == IDL_DEF_PROGRAM)
                        check_macro(s, df->name, df->pos, df->kind == IDL_DEF_CONST ? "constant" : "program");
                if (df->kind != IDL_DEF_PROGRAM)
                        continue;
                for (size_t v = 0; v < df->prog->n_versions; v++) {
                        const idl_version *ver = &df->prog->versions[v];
                        check_macro(s, ver->name, ver->pos, "version");
                        for (size_t p = 0; p < ver->n_procs; p++)
                                check_macro(s, ver->procs[p].name, ver->procs[p].pos, "procedure");
                }
        }
        idl_table_free(&s->names);
        idl_table_free(&s->wrapped);
        idl_table_free(&s->members);
        return d->errors != before ? -1 : 0;
}
