/*
 * parse.c — the recursive-descent parser of ipcf-idl.
 *
 * The grammar is RFC 4506 §6.3 (data) and RFC 5531 §12.2 (programs), with
 * what rpcgen also accepts and real .x files use: "struct name", "enum name"
 * and "union name" as references to a definition, "unsigned" alone for
 * "unsigned int", pass-through '%' lines (skipped), several arguments to a
 * procedure. ipcf's annotations, in the style of DCE IDL, go in brackets
 * before a procedure, a version or a program:
 *
 *      [idempotent] int GET(key) = 1;
 *      [oneway] void LOG(string_t) = 2;
 *      [timeout(500)] version CALC_V1 { ... } = 1;   // default of its procedures
 *
 * The parser stops at the first syntax error, reported with its position.
 * Nesting of type specifiers is bounded (IDL_MAX_NESTING), so no input can
 * exhaust the stack.
 */
#include <setjmp.h>
#include <string.h>

#include "idl/lex.h"

typedef struct parser {
        idl_file *f;
        idl_lexer lx;
        idl_token tok;  /* the current token */
        idl_diag *d;
        jmp_buf fail;
        int depth;
} parser;

static const char *const keywords[] = {
        "bool", "case", "const", "default", "double", "quadruple", "enum", "float", "hyper", "int",
        "opaque", "string", "struct", "switch", "typedef", "union", "unsigned", "void", "program",
        "version",
};

/* Report msg at pos and stop parsing. */
static _Noreturn void fail_at(parser *p, idl_pos pos, const char *msg) {
        idl_error(p->d, pos, "%s", msg);
        longjmp(p->fail, 1);
}

static void next(parser *p) {
        p->tok = idl_lex_next(&p->lx);
        if (p->tok.kind == TOK_ERROR)
                fail_at(p, p->tok.pos, p->lx.error);
}

static bool is_punct(const parser *p, char c) {
        return p->tok.kind == TOK_PUNCT && p->tok.text[0] == c;
}

static bool is_word(const parser *p, const char *w) {
        return p->tok.kind == TOK_IDENT && p->tok.len == strlen(w) && !memcmp(p->tok.text, w, p->tok.len);
}

/* A short description of the current token, for messages. */
static const char *tok_desc(parser *p) {
        switch (p->tok.kind) {
        case TOK_EOF:
                return "end of file";
        case TOK_IDENT:
        case TOK_NUMBER:
        case TOK_PUNCT:
                return idl_sprintf(p->f, "'%.*s'", (int)(p->tok.len > 40 ? 40 : p->tok.len), p->tok.text);
        default:
                return "?";
        }
}

static void expect_punct(parser *p, char c) {
        if (!is_punct(p, c))
                fail_at(p, p->tok.pos, idl_sprintf(p->f, "expected '%c', found %s", c, tok_desc(p)));
        next(p);
}

static void expect_word(parser *p, const char *w) {
        if (!is_word(p, w))
                fail_at(p, p->tok.pos, idl_sprintf(p->f, "expected '%s', found %s", w, tok_desc(p)));
        next(p);
}

static bool is_keyword(const char *s, size_t n) {
        for (size_t i = 0; i < sizeof(keywords) / sizeof(keywords[0]); i++)
                if (strlen(keywords[i]) == n && !memcmp(keywords[i], s, n))
                        return true;
        return false;
}

/* An identifier (not a keyword); returns it in the arena. */
static const char *identifier(parser *p, const char *what) {
        if (p->tok.kind != TOK_IDENT || is_keyword(p->tok.text, p->tok.len))
                fail_at(p, p->tok.pos, idl_sprintf(p->f, "expected %s, found %s", what, tok_desc(p)));
        const char *s = idl_strndup(p->f, p->tok.text, p->tok.len);
        next(p);
        return s;
}

/* constant: ["-"] number, as a signed 64-bit value. */
static int64_t constant(parser *p) {
        bool neg = false;
        idl_pos pos = p->tok.pos;
        if (is_punct(p, '-')) {
                neg = true;
                next(p);
        }
        if (p->tok.kind != TOK_NUMBER)
                fail_at(p, p->tok.pos, idl_sprintf(p->f, "expected a number, found %s", tok_desc(p)));
        uint64_t v = p->tok.num;
        if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
                fail_at(p, pos, "constant out of range");
        next(p);
        return neg ? (int64_t)(0 - v) : (int64_t)v;
}

/* value: constant | identifier. */
static idl_value value(parser *p) {
        idl_value v = { .pos = p->tok.pos };
        if (p->tok.kind == TOK_IDENT)
                v.ident = identifier(p, "a constant or a name");
        else
                v.num = constant(p);
        return v;
}

static idl_type *type_spec(parser *p);
static void declaration(parser *p, idl_decl *out);

static idl_type *new_type(parser *p, enum idl_tkind kind, idl_pos pos) {
        idl_type *t = idl_alloc(p->f, sizeof(*t));
        t->kind = kind;
        t->pos = pos;
        return t;
}

static void enter(parser *p) {
        if (++p->depth > IDL_MAX_NESTING)
                fail_at(p, p->tok.pos, "types nested too deeply");
}

/* enum-body: "{" ( identifier "=" value ) ( "," identifier "=" value )* "}" */
static void enum_body(parser *p, idl_type *t) {
        expect_punct(p, '{');
        do {
                idl_enumval ev = { .pos = p->tok.pos };
                ev.name = identifier(p, "an enumerator");
                expect_punct(p, '=');
                ev.value = value(p);
                t->vals = idl_push(p->f, t->vals, &t->n_vals, sizeof(*t->vals));
                t->vals[t->n_vals - 1] = ev;
        } while (is_punct(p, ',') && (next(p), 1));
        expect_punct(p, '}');
}

/* struct-body: "{" ( declaration ";" )+ "}" */
static void struct_body(parser *p, idl_type *t) {
        expect_punct(p, '{');
        do {
                idl_decl dcl;
                declaration(p, &dcl);
                expect_punct(p, ';');
                t->members = idl_push(p->f, t->members, &t->n_members, sizeof(*t->members));
                t->members[t->n_members - 1] = dcl;
        } while (!is_punct(p, '}'));
        next(p);
}

/* union-body: "switch" "(" declaration ")" "{" case-spec+ [ "default" ":" declaration ";" ] "}" */
static void union_body(parser *p, idl_type *t) {
        expect_word(p, "switch");
        expect_punct(p, '(');
        declaration(p, &t->disc);
        expect_punct(p, ')');
        expect_punct(p, '{');
        if (!is_word(p, "case"))
                fail_at(p, p->tok.pos, idl_sprintf(p->f, "expected 'case', found %s", tok_desc(p)));
        while (is_word(p, "case")) {
                idl_case c = { 0 };
                while (is_word(p, "case")) {
                        next(p);
                        c.values = idl_push(p->f, c.values, &c.n_values, sizeof(*c.values));
                        c.values[c.n_values - 1] = value(p);
                        expect_punct(p, ':');
                }
                declaration(p, &c.arm);
                expect_punct(p, ';');
                t->cases = idl_push(p->f, t->cases, &t->n_cases, sizeof(*t->cases));
                t->cases[t->n_cases - 1] = c;
        }
        if (is_word(p, "default")) {
                next(p);
                expect_punct(p, ':');
                t->deflt = idl_alloc(p->f, sizeof(*t->deflt));
                declaration(p, t->deflt);
                expect_punct(p, ';');
        }
        expect_punct(p, '}');
}

/* An aggregate keyword followed by a body (inline type) or a name (reference).
 * An inline union's body starts with the keyword "switch", not a name. */
static idl_type *aggregate(parser *p, enum idl_tkind kind, idl_pos pos) {
        next(p);
        if (p->tok.kind == TOK_IDENT && !(kind == IDL_UNION && is_word(p, "switch"))) {
                idl_type *t = new_type(p, IDL_NAMED, pos);
                t->name = identifier(p, "a type name");
                return t;
        }
        idl_type *t = new_type(p, kind, pos);
        enter(p);
        if (kind == IDL_ENUM)
                enum_body(p, t);
        else if (kind == IDL_STRUCT)
                struct_body(p, t);
        else
                union_body(p, t);
        p->depth--;
        return t;
}

static idl_type *type_spec(parser *p) {
        idl_pos pos = p->tok.pos;
        if (p->tok.kind != TOK_IDENT)
                fail_at(p, pos, idl_sprintf(p->f, "expected a type, found %s", tok_desc(p)));
        static const struct {
                const char *w;
                enum idl_tkind k;
        } simple[] = {
                { "int", IDL_INT },         { "hyper", IDL_HYPER }, { "float", IDL_FLOAT },
                { "double", IDL_DOUBLE },   { "quadruple", IDL_QUAD }, { "bool", IDL_BOOL },
        };
        if (is_word(p, "unsigned")) {
                next(p);
                if (is_word(p, "int")) {
                        next(p);
                        return new_type(p, IDL_UINT, pos);
                }
                if (is_word(p, "hyper")) {
                        next(p);
                        return new_type(p, IDL_UHYPER, pos);
                }
                return new_type(p, IDL_UINT, pos); /* rpcgen: "unsigned" alone */
        }
        for (size_t i = 0; i < sizeof(simple) / sizeof(simple[0]); i++)
                if (is_word(p, simple[i].w)) {
                        next(p);
                        return new_type(p, simple[i].k, pos);
                }
        if (is_word(p, "enum"))
                return aggregate(p, IDL_ENUM, pos);
        if (is_word(p, "struct"))
                return aggregate(p, IDL_STRUCT, pos);
        if (is_word(p, "union"))
                return aggregate(p, IDL_UNION, pos);
        if (is_keyword(p->tok.text, p->tok.len))
                fail_at(p, pos, idl_sprintf(p->f, "%s cannot be used as a type here", tok_desc(p)));
        idl_type *t = new_type(p, IDL_NAMED, pos);
        t->name = identifier(p, "a type");
        return t;
}

/* "<" [ value ] ">" after a name: a variable-length declaration. */
static void var_bound(parser *p, idl_decl *out) {
        expect_punct(p, '<');
        out->kind = IDL_D_VAR;
        if (!is_punct(p, '>')) {
                out->bounded = true;
                out->bound = value(p);
        }
        expect_punct(p, '>');
}

static void declaration(parser *p, idl_decl *out) {
        *out = (idl_decl){ .pos = p->tok.pos };
        if (is_word(p, "void")) {
                next(p);
                out->kind = IDL_D_VOID;
                out->type = new_type(p, IDL_VOID, out->pos);
                return;
        }
        if (is_word(p, "opaque") || is_word(p, "string")) {
                bool str = is_word(p, "string");
                out->type = new_type(p, str ? IDL_STRING : IDL_OPAQUE, out->pos);
                next(p);
                out->name = identifier(p, "a name");
                if (!str && is_punct(p, '[')) {
                        next(p);
                        out->kind = IDL_D_FIXED;
                        out->bound = value(p);
                        expect_punct(p, ']');
                } else if (is_punct(p, '<')) {
                        var_bound(p, out);
                } else {
                        fail_at(p, p->tok.pos,
                                str ? "a string needs a bound: string name<N> or name<>"
                                    : "opaque needs a size: opaque name[N] or name<N>");
                }
                return;
        }
        out->type = type_spec(p);
        if (is_punct(p, '*')) {
                next(p);
                out->kind = IDL_D_OPT;
                out->name = identifier(p, "a name");
                return;
        }
        out->name = identifier(p, "a name");
        if (is_punct(p, '[')) {
                next(p);
                out->kind = IDL_D_FIXED;
                out->bound = value(p);
                expect_punct(p, ']');
        } else if (is_punct(p, '<')) {
                var_bound(p, out);
        } else {
                out->kind = IDL_D_PLAIN;
        }
}

/* [ attr ( "," attr )* ] — or nothing. */
static idl_attrs attributes(parser *p) {
        idl_attrs a = { .pos = p->tok.pos };
        if (!is_punct(p, '['))
                return a;
        next(p);
        do {
                idl_pos pos = p->tok.pos;
                if (is_word(p, "idempotent")) {
                        next(p);
                        a.idempotent = true;
                } else if (is_word(p, "oneway")) {
                        next(p);
                        a.oneway = true;
                } else if (is_word(p, "timeout")) {
                        next(p);
                        expect_punct(p, '(');
                        int64_t ms = constant(p);
                        if (ms <= 0 || ms > IDL_MAX_TIMEOUT_MS)
                                fail_at(p, pos, "timeout(ms) must be 1..86400000 milliseconds");
                        a.timeout_ms = ms;
                        expect_punct(p, ')');
                } else {
                        fail_at(p, pos, idl_sprintf(p->f, "unknown annotation %s (known: idempotent, "
                                                          "oneway, timeout(ms))", tok_desc(p)));
                }
        } while (is_punct(p, ',') && (next(p), 1));
        expect_punct(p, ']');
        return a;
}

static void procedure(parser *p, idl_version *v, idl_attrs attrs) {
        idl_proc pr = { .attrs = attrs, .pos = p->tok.pos };
        if (is_word(p, "void")) {
                pr.result = new_type(p, IDL_VOID, p->tok.pos);
                next(p);
        } else {
                pr.result = type_spec(p);
        }
        pr.name = identifier(p, "a procedure name");
        expect_punct(p, '(');
        if (is_word(p, "void")) {
                next(p);
        } else {
                do {
                        idl_type *t = type_spec(p);
                        pr.args = idl_push(p->f, pr.args, &pr.n_args, sizeof(*pr.args));
                        pr.args[pr.n_args - 1] = t;
                } while (is_punct(p, ',') && (next(p), 1));
        }
        expect_punct(p, ')');
        expect_punct(p, '=');
        pr.number = value(p);
        expect_punct(p, ';');
        v->procs = idl_push(p->f, v->procs, &v->n_procs, sizeof(*v->procs));
        v->procs[v->n_procs - 1] = pr;
}

static void version(parser *p, idl_program *prog, idl_attrs attrs) {
        idl_version v = { .attrs = attrs, .pos = p->tok.pos };
        expect_word(p, "version");
        v.name = identifier(p, "a version name");
        expect_punct(p, '{');
        do
                procedure(p, &v, attributes(p));
        while (!is_punct(p, '}'));
        next(p);
        expect_punct(p, '=');
        v.number = value(p);
        expect_punct(p, ';');
        prog->versions = idl_push(p->f, prog->versions, &prog->n_versions, sizeof(*prog->versions));
        prog->versions[prog->n_versions - 1] = v;
}

static idl_def *new_def(parser *p, enum idl_defkind kind, idl_pos pos) {
        idl_def *d = idl_alloc(p->f, sizeof(*d));
        d->kind = kind;
        d->pos = pos;
        idl_add_def(p->f, d);
        return d;
}

static void definition(parser *p) {
        idl_pos pos = p->tok.pos;
        bool annotated = is_punct(p, '[');
        idl_attrs attrs = attributes(p);
        if (annotated && !is_word(p, "program"))
                fail_at(p, pos, "annotations belong before a program, a version or a procedure");
        if (is_word(p, "typedef")) {
                next(p);
                idl_def *d = new_def(p, IDL_DEF_TYPEDEF, pos);
                declaration(p, &d->decl);
                if (d->decl.kind == IDL_D_VOID)
                        fail_at(p, pos, "typedef of void");
                d->name = d->decl.name;
        } else if (is_word(p, "enum") || is_word(p, "struct") || is_word(p, "union")) {
                enum idl_defkind k = is_word(p, "enum") ? IDL_DEF_ENUM
                                     : is_word(p, "struct") ? IDL_DEF_STRUCT : IDL_DEF_UNION;
                next(p);
                idl_def *d = new_def(p, k, pos);
                d->name = identifier(p, "a type name");
                d->type = new_type(p, k == IDL_DEF_ENUM ? IDL_ENUM : k == IDL_DEF_STRUCT ? IDL_STRUCT : IDL_UNION, pos);
                d->type->name = d->name;
                enter(p);
                if (k == IDL_DEF_ENUM)
                        enum_body(p, d->type);
                else if (k == IDL_DEF_STRUCT)
                        struct_body(p, d->type);
                else
                        union_body(p, d->type);
                p->depth--;
        } else if (is_word(p, "const")) {
                next(p);
                idl_def *d = new_def(p, IDL_DEF_CONST, pos);
                d->name = identifier(p, "a constant name");
                expect_punct(p, '=');
                d->value = (idl_value){ .pos = p->tok.pos };
                d->value.num = constant(p);
        } else if (is_word(p, "program")) {
                next(p);
                idl_def *d = new_def(p, IDL_DEF_PROGRAM, pos);
                d->prog = idl_alloc(p->f, sizeof(*d->prog));
                d->prog->attrs = attrs;
                d->prog->pos = pos;
                d->name = d->prog->name = identifier(p, "a program name");
                expect_punct(p, '{');
                do
                        version(p, d->prog, attributes(p));
                while (!is_punct(p, '}'));
                next(p);
                expect_punct(p, '=');
                d->prog->number = value(p);
        } else {
                fail_at(p, pos, idl_sprintf(p->f, "expected a definition (typedef, enum, struct, union, "
                                                  "const or program), found %s", tok_desc(p)));
        }
        expect_punct(p, ';');
}

int idl_parse(idl_file *f, const char *text, size_t len, idl_diag *d) {
        parser *p = idl_alloc(f, sizeof(*p));
        p->f = f;
        p->d = d;
        idl_lex_init(&p->lx, f->path, text, len);
        if (setjmp(p->fail))
                return -1;
        next(p);
        while (p->tok.kind != TOK_EOF)
                definition(p);
        return 0;
}
