/*
 * ast.h — the syntax tree of an interface file (.x): the data language of
 * RFC 4506 §6, the program/version/procedure definitions of RFC 5531 §12,
 * and ipcf's annotations ([idempotent], [oneway], [timeout(ms)]).
 *
 * Everything in a tree lives in its idl_file's arena and is freed with it
 * (idl_file_free); nothing points outside the arena but `file` names, which
 * point to the idl_file's own copy of the path.
 *
 * After idl_check() succeeds every type reference is resolved (`def`), every
 * value has its number (`num`), inline struct/union/enum types of
 * declarations have been given names and hoisted to definitions of their own
 * (so code generators see only named aggregate types), and `min_wire` of
 * every definition is known.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "idl/table.h"

typedef struct idl_pos {
        const char *file;
        int line, col;
} idl_pos;

/* The base kinds of a type specifier. */
enum idl_tkind {
        IDL_INT,
        IDL_UINT,
        IDL_HYPER,
        IDL_UHYPER,
        IDL_FLOAT,
        IDL_DOUBLE,
        IDL_QUAD,
        IDL_BOOL,
        IDL_ENUM,   /* inline body, or a named enum definition's body */
        IDL_STRUCT, /* idem */
        IDL_UNION,  /* idem */
        IDL_NAMED,  /* an identifier naming a definition */
        IDL_STRING, /* only in declarations: string name<N> */
        IDL_OPAQUE, /* only in declarations: opaque name[N] / name<N> */
        IDL_VOID,   /* only as a declaration or a procedure's argument/result */
};

/* A value: a literal constant or the name of a const / enum member. */
typedef struct idl_value {
        const char *ident; /* NULL for a literal */
        int64_t num;       /* the literal, or the resolved value */
        idl_pos pos;
} idl_value;

typedef struct idl_type idl_type;
typedef struct idl_decl idl_decl;
typedef struct idl_def idl_def;

/* How a declaration declares (RFC 4506 §6.3 "declaration"). */
enum idl_dkind {
        IDL_D_PLAIN, /* T x */
        IDL_D_FIXED, /* T x[N], opaque x[N] */
        IDL_D_VAR,   /* T x<N>, T x<>, opaque x<N>, string x<N> */
        IDL_D_OPT,   /* T *x */
        IDL_D_VOID,  /* void */
};

struct idl_decl {
        idl_type *type;
        const char *name; /* NULL for void */
        enum idl_dkind kind;
        bool bounded;     /* D_VAR: a bound was given */
        idl_value bound;  /* D_FIXED: the size; D_VAR: the maximum if bounded */
        idl_pos pos;
};

typedef struct idl_enumval {
        const char *name;
        idl_value value;
        idl_pos pos;
} idl_enumval;

typedef struct idl_case {
        idl_value *values; /* one or more "case v:" labels */
        size_t n_values;
        idl_decl arm;
} idl_case;

struct idl_type {
        enum idl_tkind kind;
        idl_pos pos;
        const char *name;       /* IDL_NAMED: the identifier; aggregates: their name once known */
        idl_def *def;           /* IDL_NAMED after checking: the definition */
        /* IDL_ENUM */
        idl_enumval *vals;
        size_t n_vals;
        /* IDL_STRUCT */
        idl_decl *members;
        size_t n_members;
        /* IDL_UNION */
        idl_decl disc;
        idl_case *cases;
        size_t n_cases;
        idl_decl *deflt;        /* NULL when there is no default arm */
};

/* Annotations of a procedure (and defaults from its version / program). */
typedef struct idl_attrs {
        bool idempotent;
        bool oneway;
        int64_t timeout_ms;     /* 0: none given */
        idl_pos pos;
} idl_attrs;

typedef struct idl_proc {
        const char *name;
        idl_value number;
        idl_type *result;       /* IDL_VOID for void */
        idl_type **args;        /* n_args == 0: void */
        size_t n_args;
        idl_def *args_def;      /* n_args > 1: the struct made of the arguments (arg1..argN) */
        idl_attrs attrs;        /* after checking: with the version's and program's defaults */
        const char *c_name;     /* after checking: the stub's name without prefix (lower case) */
        idl_pos pos;
} idl_proc;

typedef struct idl_version {
        const char *name;
        idl_value number;
        idl_proc *procs;
        size_t n_procs;
        idl_attrs attrs;
        idl_pos pos;
} idl_version;

typedef struct idl_program {
        const char *name;
        idl_value number;
        idl_version *versions;
        size_t n_versions;
        idl_attrs attrs;
        idl_pos pos;
} idl_program;

enum idl_defkind {
        IDL_DEF_TYPEDEF, /* typedef declaration */
        IDL_DEF_ENUM,    /* enum name { ... } */
        IDL_DEF_STRUCT,  /* struct name { ... } */
        IDL_DEF_UNION,   /* union name switch (...) { ... } */
        IDL_DEF_CONST,   /* const name = value */
        IDL_DEF_PROGRAM, /* program name { ... } = n */
};

struct idl_def {
        enum idl_defkind kind;
        const char *name;
        idl_pos pos;
        idl_decl decl;          /* TYPEDEF */
        idl_type *type;         /* ENUM, STRUCT, UNION: the body */
        idl_value value;        /* CONST */
        idl_program *prog;      /* PROGRAM */
        bool synthetic;         /* made by the checker (hoisted inline type, argument struct) */
        size_t index;           /* its place in idl_file.defs */
        /* after checking */
        uint64_t min_wire;      /* the fewest bytes its encoding can take */
        uint32_t min_depth;     /* the nesting of its shallowest value, as decoding counts it
                                 * (a level per typedef, struct, union; enums none) */
        bool recursive;         /* reaches itself (through optional data) */
        int state;              /* checker's visiting mark */
};

typedef struct idl_file {
        const char *path;
        idl_def **defs;
        size_t n_defs;
        struct idl_arena *arena;
        /* made by idl_check: the first definition of each name, the first
         * enumerator (idl_enumval) of each name */
        idl_table names, enumvals;
} idl_file;

/* Arena allocation: zeroed memory that lives until idl_file_free. */
void *idl_alloc(idl_file *f, size_t size);
char *idl_strndup(idl_file *f, const char *s, size_t n);
char *idl_sprintf(idl_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append one element to a growable array kept in the arena. */
void *idl_push(idl_file *f, void *array, size_t *n, size_t elem);
/* Append d to f->defs (setting d->index). */
void idl_add_def(idl_file *f, idl_def *d);

idl_file *idl_file_new(const char *path);
void idl_file_free(idl_file *f);

/* Diagnostics: "file:line:col: error: message", at most cap bytes in all,
 * kept in a growable buffer; the count of errors. */
typedef struct idl_diag {
        char *text;
        size_t len, cap;
        unsigned errors;
} idl_diag;

void idl_error(idl_diag *d, idl_pos pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void idl_diag_free(idl_diag *d);

/* Parse text (len bytes, no terminator needed) into f. Returns 0, or -1 with
 * the first syntax error in d. */
int idl_parse(idl_file *f, const char *text, size_t len, idl_diag *d);
/* Resolve and check f (see the header comment). Returns 0 or -1 (errors in d). */
int idl_check(idl_file *f, idl_diag *d);

/* After idl_check succeeded: the names the generated C declares at file
 * scope, its stubs named PREFIX_proc, do not clash with one another, with
 * the C headers it includes, or with a #define of the file (scope.c).
 * Returns 0 or -1 (errors in d). */
int idl_check_scope(idl_file *f, const char *prefix, idl_diag *d);

/* strcmp of two (const char *const *), for qsort and bsearch of names. */
int idl_cmp_name(const void *a, const void *b);

/* Lookups after checking. */
idl_def *idl_find(const idl_file *f, const char *name);
/* Follow typedefs of plain declarations down to a base type specifier. */
const idl_type *idl_resolve(const idl_type *t);

/* The wire size of a whole XDR unit count: n rounded up to 4. */
static inline uint64_t idl_pad4(uint64_t n) {
        return (n + 3) & ~(uint64_t)3;
}

/* Bounds of the language as ipcf-idl accepts it. */
#define IDL_MAX_BOUND 0xffffffffu   /* array/string bounds fit in an XDR unsigned int */
#define IDL_MAX_NESTING 64          /* nesting of type specifiers in the text */
#define IDL_MAX_TIMEOUT_MS 86400000 /* [timeout(ms)] at most a day */
