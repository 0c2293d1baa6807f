/*
 * dyn.c — JSON <-> XDR for any type of a checked interface (see dyn.h).
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/jsonstr.h"
#include "idl/dyn.h"

/* Does a value of t take a level of nesting? As generated code counts them
 * (and ipcf-idl bounds them, IPCF_XDR_MAX_DEPTH): a typedef, a struct or a
 * union does; an enum or a base type does not. */
static bool nests(const idl_type *t) {
        return t->kind == IDL_NAMED && t->def && t->def->kind != IDL_DEF_ENUM;
}

/* The last member of struct rt if rt is a list's node — a struct whose last
 * member is optional data of its own type, as ipcf-idl's list_tail — else
 * NULL. A list is walked in a loop, as generated code does: each node one
 * level, entered and left before the next, so a list of any length passes
 * both ways where recursion would take a level (and stack) per node. */
static const idl_decl *list_next(const idl_type *rt) {
        if (rt->kind != IDL_STRUCT || rt->n_members == 0)
                return NULL;
        const idl_decl *last = &rt->members[rt->n_members - 1];
        return last->kind == IDL_D_OPT && last->type->kind == IDL_NAMED && last->type->def &&
                               last->type->def->kind == IDL_DEF_STRUCT && last->type->def->type == rt
                       ? last
                       : NULL;
}

/* ---- JSON ----------------------------------------------------------------- */

enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct json {
        enum jkind kind;
        bool b;
        double num;
        char *text;     /* J_NUM: as written; J_STR: the string (NUL inside refused) */
        json **items;   /* J_ARR, J_OBJ */
        char **keys;    /* J_OBJ */
        size_t n;
        json *gc;       /* json_free's list of nodes still to free */
};

typedef struct jp {
        const char *s;
        char *err;
        size_t cap;
} jp;

static json *jfail(jp *p, const char *msg) {
        if (!*p->err)
                snprintf(p->err, p->cap, "JSON: %s near '%.20s'", msg, p->s);
        return NULL;
}

static void ws(jp *p) {
        while (*p->s == ' ' || *p->s == '\t' || *p->s == '\n' || *p->s == '\r')
                p->s++;
}

static char *jstring(jp *p) {
        if (*p->s != '"')
                return jfail(p, "expected a string"), NULL;
        p->s++;
        size_t cap = 16, n = 0;
        char *o = malloc(cap);
        while (o && *p->s != '"') {
                unsigned c = (unsigned char)*p->s;
                if (c < 0x20) { /* the text's end (never read past it), or a control character */
                        free(o);
                        return jfail(p, c ? "bad string" : "unterminated string"), NULL;
                }
                p->s++;
                if (c == '\\') {
                        char e = *p->s;
                        if (!e) { /* never past the text's end */
                                free(o);
                                return jfail(p, "bad escape"), NULL;
                        }
                        p->s++;
                        switch (e) {
                        case 'n': c = '\n'; break;
                        case 't': c = '\t'; break;
                        case 'r': c = '\r'; break;
                        case 'b': c = '\b'; break;
                        case 'f': c = '\f'; break;
                        case '/': case '\\': case '"': c = (unsigned char)e; break;
                        case 'u': {
                                unsigned v = 0;
                                for (int i = 0; i < 4; i++) {
                                        char h = *p->s;
                                        if (h)
                                                p->s++;
                                        if (!isxdigit((unsigned char)h)) {
                                                free(o);
                                                return jfail(p, "bad \\u escape"), NULL;
                                        }
                                        v = v * 16 + (unsigned)(isdigit((unsigned char)h) ? h - '0' : (tolower(h) - 'a' + 10));
                                }
                                if (v == 0 || v > 0x7f) {
                                        free(o);
                                        return jfail(p, "only ASCII \\u escapes (no NUL) are supported"), NULL;
                                }
                                c = v;
                                break;
                        }
                        default:
                                free(o);
                                return jfail(p, "bad escape"), NULL;
                        }
                }
                if (n + 2 > cap) {
                        cap *= 2;
                        char *t = realloc(o, cap);
                        if (!t)
                                free(o);
                        o = t;
                }
                if (o)
                        o[n++] = (char)c;
        }
        if (!o)
                return jfail(p, "out of memory"), NULL;
        o[n] = 0;
        p->s++;
        return o;
}

static json *jnew(enum jkind k) {
        json *j = calloc(1, sizeof(*j));
        if (j)
                j->kind = k;
        return j;
}

static bool jpush(json *j, json *item, char *key) {
        json **it = realloc(j->items, (j->n + 1) * sizeof(*it));
        if (!it)
                return false;
        j->items = it;
        if (j->kind == J_OBJ) {
                char **k = realloc(j->keys, (j->n + 1) * sizeof(*k));
                if (!k)
                        return false;
                j->keys = k;
                j->keys[j->n] = key;
        }
        j->items[j->n++] = item;
        return true;
}

/* A value that is not a container: a string, true, false, null, a number. */
static json *jscalar(jp *p) {
        if (*p->s == '"') {
                char *s = jstring(p);
                if (!s)
                        return NULL;
                json *j = jnew(J_STR);
                if (j)
                        j->text = s;
                else
                        free(s);
                return j ? j : jfail(p, "out of memory");
        }
        if (!strncmp(p->s, "true", 4) || !strncmp(p->s, "false", 5)) {
                json *j = jnew(J_BOOL);
                if (!j)
                        return jfail(p, "out of memory");
                j->b = p->s[0] == 't';
                p->s += j->b ? 4 : 5;
                return j;
        }
        if (!strncmp(p->s, "null", 4)) {
                p->s += 4;
                json *j = jnew(J_NULL);
                return j ? j : jfail(p, "out of memory");
        }
        /* RFC 8259: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
        const char *start = p->s;
        if (*p->s == '-')
                p->s++;
        if (!isdigit((unsigned char)*p->s))
                return jfail(p, "expected a value");
        if (*p->s == '0' && isdigit((unsigned char)p->s[1]))
                return jfail(p, "a number with a leading zero");
        while (isdigit((unsigned char)*p->s))
                p->s++;
        if (*p->s == '.') {
                p->s++;
                if (!isdigit((unsigned char)*p->s))
                        return jfail(p, "a number without digits after '.'");
                while (isdigit((unsigned char)*p->s))
                        p->s++;
        }
        if (*p->s == 'e' || *p->s == 'E') {
                p->s++;
                if (*p->s == '+' || *p->s == '-')
                        p->s++;
                if (!isdigit((unsigned char)*p->s))
                        return jfail(p, "a number without digits in its exponent");
                while (isdigit((unsigned char)*p->s))
                        p->s++;
        }
        json *j = jnew(J_NUM);
        if (j && !(j->text = strndup(start, (size_t)(p->s - start)))) {
                free(j);
                j = NULL;
        }
        if (!j)
                return jfail(p, "out of memory");
        j->num = strtod(j->text, NULL);
        return j;
}

/* An object's next "key": into *ret (heap), refused if the object has it
 * already (which would count?). */
static bool jkey(jp *p, const json *obj, char **ret) {
        ws(p);
        char *key = jstring(p);
        ws(p);
        if (!key || *p->s != ':') {
                free(key);
                return jfail(p, "expected \"key\":"), false;
        }
        p->s++;
        for (size_t i = 0; i < obj->n; i++)
                if (!strcmp(obj->keys[i], key)) {
                        free(key);
                        return jfail(p, "a key given twice"), false;
                }
        *ret = key;
        return true;
}

/* The containers open around the value being parsed, innermost last: each
 * with the key its next value goes under (objects). A container joins its
 * parent only once it is closed, so on an error each is freed alone. */
typedef struct jframe {
        json *j;
        char *key;
} jframe;

/* One value, containers without recursion (a stack on the heap): a list of
 * any length nests an object per node. The nesting is bounded by the
 * text's length, and what nests by the type (enc_type). */
static json *jvalue(jp *p) {
        jframe *st = NULL;
        size_t n = 0, cap = 0;
        json *v = NULL;
        for (;;) {
                ws(p);
                if (*p->s == '{' || *p->s == '[') {
                        bool obj = *p->s == '{';
                        if (n == cap) {
                                size_t nc = cap ? cap * 2 : 16;
                                jframe *ns = realloc(st, nc * sizeof(*ns));
                                if (!ns) {
                                        jfail(p, "out of memory");
                                        goto fail;
                                }
                                st = ns;
                                cap = nc;
                        }
                        json *c = jnew(obj ? J_OBJ : J_ARR);
                        if (!c) {
                                jfail(p, "out of memory");
                                goto fail;
                        }
                        st[n++] = (jframe){ c, NULL };
                        p->s++;
                        ws(p);
                        if (*p->s != (obj ? '}' : ']')) {
                                if (obj && !jkey(p, c, &st[n - 1].key))
                                        goto fail;
                                continue; /* its first value */
                        }
                        p->s++;
                        v = st[--n].j;
                } else if (!(v = jscalar(p))) {
                        goto fail;
                }
                /* v is complete: it joins the innermost open container,
                 * which may close in turn. */
                for (;;) {
                        if (n == 0) {
                                free(st);
                                return v;
                        }
                        jframe *f = &st[n - 1];
                        bool obj = f->j->kind == J_OBJ;
                        if (!jpush(f->j, v, f->key)) {
                                jfail(p, "out of memory");
                                json_free(v);
                                goto fail;
                        }
                        f->key = NULL;
                        v = NULL;
                        ws(p);
                        if (*p->s == ',') {
                                p->s++;
                                if (obj && !jkey(p, f->j, &f->key))
                                        goto fail;
                                break; /* the next value */
                        }
                        if (*p->s != (obj ? '}' : ']')) {
                                jfail(p, obj ? "expected , or }" : "expected , or ]");
                                goto fail;
                        }
                        p->s++;
                        v = st[--n].j;
                }
        }
fail:
        while (n > 0) {
                n--;
                free(st[n].key);
                json_free(st[n].j);
        }
        free(st);
        return NULL;
}

json *json_parse(const char *text, char *err, size_t errcap) {
        jp p = { text, err, errcap };
        err[0] = 0;
        json *j = jvalue(&p);
        ws(&p);
        if (j && *p.s) {
                json_free(j);
                return jfail(&p, "text after the value");
        }
        return j;
}

/* Without recursion (a list nests an object per node) and without
 * allocating: the nodes still to free are chained through their gc. */
void json_free(json *j) {
        if (j)
                j->gc = NULL;
        while (j) {
                json *next = j->gc;
                for (size_t i = 0; i < j->n; i++) {
                        if (j->keys)
                                free(j->keys[i]);
                        if (j->items[i]) {
                                j->items[i]->gc = next;
                                next = j->items[i];
                        }
                }
                free(j->items);
                free(j->keys);
                free(j->text);
                free(j);
                j = next;
        }
}

static const json *jget(const json *j, const char *key) {
        for (size_t i = 0; j && j->kind == J_OBJ && i < j->n; i++)
                if (!strcmp(j->keys[i], key))
                        return j->items[i];
        return NULL;
}

/* ---- JSON -> XDR ------------------------------------------------------------ */

typedef struct enc {
        ipcf_xdr *x;
        char *err;
        size_t cap;
        int depth;
} enc;

static int efail(enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int efail(enc *e, const char *fmt, ...) {
        if (!*e->err) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(e->err, e->cap, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static int enc_type(enc *e, const idl_type *t, const json *j);

/* A key of object j that names none of the allowed members: a misspelt
 * member is an error, never silently dropped (0 when every key is known). */
static int enc_unknown_key(enc *e, const idl_type *rt, const json *j, const char *const *allowed,
                           size_t n_allowed) {
        for (size_t i = 0; i < j->n; i++) {
                bool known = false;
                for (size_t k = 0; k < n_allowed && !known; k++)
                        known = allowed[k] && !strcmp(j->keys[i], allowed[k]);
                for (size_t k = 0; rt->kind == IDL_STRUCT && k < rt->n_members && !known; k++)
                        known = !strcmp(j->keys[i], rt->members[k].name);
                if (!known)
                        return efail(e, "%s %s has no member '%s'",
                                     rt->kind == IDL_STRUCT ? "struct" : "union", rt->name, j->keys[i]);
        }
        return 0;
}

/* The key of a union's discriminant in JSON: its name, or "switch" when an
 * arm has that name too (RFC 4506 allows it; one JSON object cannot hold
 * both under one key). "switch" is a keyword of the language: no arm or
 * member is named so. */
static const char *disc_key(const idl_type *rt) {
        for (size_t i = 0; i <= rt->n_cases; i++) {
                const idl_decl *a = i < rt->n_cases ? &rt->cases[i].arm : rt->deflt;
                if (a && a->name && !strcmp(a->name, rt->disc.name))
                        return "switch";
        }
        return rt->disc.name;
}

/* The value of a JSON number's text (valid JSON: json_parse made it) as a
 * whole number, exactly, whatever its form: 1000, 1e3, 1.0E3, 10000e-1 and
 * 1000.000 are all 1000 (a JSON writer may print a whole number so: a
 * float's 1e3 or 1000.0). 0 with its sign in *ret_neg (-0 is 0) and its
 * magnitude in *ret; -EDOM if a fraction is left (1.5, 1e-3); -ERANGE past
 * 2^64-1 (no double on the way: 9007199254740993 stays itself). */
static int json_whole(const char *text, bool *ret_neg, uint64_t *ret) {
        const char *p = text;
        bool neg = *p == '-';
        p += neg;
        char sig[21];           /* the first significant digits */
        size_t n_sig = 0;       /* significant digits: from the first non-zero on */
        size_t last_nz = 0;     /* 1 + the index (among them) of the last non-zero */
        long long frac = 0;     /* digits after the '.' */
        bool after_point = false;
        for (; isdigit((unsigned char)*p) || *p == '.'; p++) {
                if (*p == '.') {
                        after_point = true;
                        continue;
                }
                frac += after_point && frac < LLONG_MAX / 4;
                if (n_sig == 0 && *p == '0')
                        continue;
                if (n_sig < sizeof(sig))
                        sig[n_sig] = *p;
                n_sig++;
                if (*p != '0')
                        last_nz = n_sig;
        }
        long long exp = 0;
        if (*p == 'e' || *p == 'E') {
                p++;
                bool eneg = *p == '-';
                p += *p == '+' || *p == '-';
                for (; isdigit((unsigned char)*p); p++)
                        if (exp < LLONG_MAX / 40)
                                exp = exp * 10 + (*p - '0');
                if (eneg)
                        exp = -exp;
        }
        *ret_neg = false;
        *ret = 0;
        if (last_nz == 0)
                return 0; /* all zeros: 0, -0.0, 0e99 */
        /* the digits up to the last non-zero times 10^e10 */
        long long e10 = exp - frac + (long long)(n_sig - last_nz);
        if (e10 < 0)
                return -EDOM;
        if ((long long)last_nz + e10 > 20)
                return -ERANGE;
        uint64_t v = 0;
        for (size_t i = 0; i < last_nz; i++)
                if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(sig[i] - '0'), &v))
                        return -ERANGE;
        for (long long i = 0; i < e10; i++)
                if (__builtin_mul_overflow(v, 10, &v))
                        return -ERANGE;
        *ret_neg = neg;
        *ret = v;
        return 0;
}

/* An integer of [lo, hi] (lo <= 0) from any JSON number whose value is
 * whole (json_whole). */
static int jint(enc *e, const json *j, int64_t lo, uint64_t hi, uint64_t *ret) {
        if (!j || j->kind != J_NUM)
                return efail(e, "expected an integer");
        bool neg;
        uint64_t mag;
        int r = json_whole(j->text, &neg, &mag);
        if (r == -EDOM)
                return efail(e, "integer %s has a fraction (a whole value may be written 1000, 1e3 or 1000.0)",
                             j->text);
        if (r < 0 || (neg ? mag > (uint64_t)0 - (uint64_t)lo : mag > hi))
                return efail(e, "integer %s out of range", j->text);
        *ret = neg ? (uint64_t)0 - mag : mag;
        return 0;
}

static int hexbytes(enc *e, const json *j, uint8_t **ret, size_t *ret_n) {
        if (!j || j->kind != J_STR)
                return efail(e, "expected opaque data as a string of hex digits");
        size_t n = strlen(j->text);
        if (n % 2)
                return efail(e, "odd number of hex digits");
        uint8_t *b = malloc(n / 2 + 1);
        for (size_t i = 0; b && i < n / 2; i++) {
                char h[3] = { j->text[2 * i], j->text[2 * i + 1], 0 };
                if (!isxdigit((unsigned char)h[0]) || !isxdigit((unsigned char)h[1])) {
                        free(b);
                        return efail(e, "not hex: %s", h);
                }
                b[i] = (uint8_t)strtoul(h, NULL, 16);
        }
        *ret = b;
        *ret_n = n / 2;
        return b ? 0 : -ENOMEM;
}

static int enc_decl(enc *e, const idl_decl *d, const json *j) {
        uint32_t bound = (uint32_t)d->bound.num;
        switch (d->kind) {
        case IDL_D_VOID:
                return 0;
        case IDL_D_PLAIN:
                return enc_type(e, d->type, j);
        case IDL_D_OPT:
                if (!j || j->kind == J_NULL)
                        return ipcf_xdr_put_u32(e->x, 0);
                ipcf_xdr_put_u32(e->x, 1);
                return enc_type(e, d->type, j);
        case IDL_D_FIXED:
        case IDL_D_VAR:
                break;
        }
        if (d->type->kind == IDL_STRING) {
                if (!j || j->kind != J_STR)
                        return efail(e, "%s: expected a string", d->name);
                if (strlen(j->text) > bound)
                        return efail(e, "%s: longer than %u", d->name, bound);
                return ipcf_xdr_put_string(e->x, j->text, bound);
        }
        if (d->type->kind == IDL_OPAQUE) {
                uint8_t *b;
                size_t n;
                int r = hexbytes(e, j, &b, &n);
                if (r < 0)
                        return r;
                if (d->kind == IDL_D_FIXED ? n != bound : n > bound) {
                        free(b);
                        return efail(e, "%s: %zu bytes, want %s%u", d->name, n, d->kind == IDL_D_FIXED ? "" : "at most ",
                                     bound);
                }
                r = d->kind == IDL_D_FIXED ? ipcf_xdr_put_fixed(e->x, b, n) : ipcf_xdr_put_var(e->x, b, (uint32_t)n, bound);
                free(b);
                return r;
        }
        if (!j || j->kind != J_ARR)
                return efail(e, "%s: expected an array", d->name);
        if (d->kind == IDL_D_FIXED ? j->n != bound : j->n > bound)
                return efail(e, "%s: %zu elements, want %s%u", d->name, j->n, d->kind == IDL_D_FIXED ? "" : "at most ",
                             bound);
        if (d->kind == IDL_D_VAR)
                ipcf_xdr_put_count(e->x, (uint32_t)j->n, bound);
        for (size_t i = 0; i < j->n; i++) {
                int r = enc_type(e, d->type, j->items[i]);
                if (r < 0)
                        return r;
        }
        return e->x->err;
}

static int enc_enum(enc *e, const idl_type *t, const json *j) {
        bool neg = false;
        uint64_t mag = 0;
        bool whole = j->kind == J_NUM && json_whole(j->text, &neg, &mag) == 0 && mag <= (uint64_t)INT32_MAX + 1;
        int64_t num = neg ? -(int64_t)mag : (int64_t)mag;
        for (size_t i = 0; i < t->n_vals; i++)
                if ((j->kind == J_STR && !strcmp(j->text, t->vals[i].name)) || (whole && num == t->vals[i].value.num))
                        return ipcf_xdr_put_u32(e->x, (uint32_t)(int32_t)t->vals[i].value.num);
        return efail(e, "not a value of enum %s", t->name ? t->name : "");
}

static int enc_type(enc *e, const idl_type *t, const json *j) {
        if (!j)
                return efail(e, "a value is missing");
        int nest = nests(t);
        if ((e->depth += nest) > IPCF_XDR_MAX_DEPTH)
                return efail(e, "nested too deeply");
        int r = 0;
        uint64_t u;
        const idl_type *rt = t;
        if (t->kind == IDL_NAMED && t->def) {
                const idl_def *d = t->def;
                if (d->kind == IDL_DEF_TYPEDEF) {
                        r = enc_decl(e, &d->decl, j);
                        e->depth -= nest;
                        return r;
                }
                rt = d->type;
        }
        switch (rt->kind) {
        case IDL_INT:
                r = jint(e, j, INT32_MIN, INT32_MAX, &u);
                if (!r)
                        r = ipcf_xdr_put_u32(e->x, (uint32_t)u);
                break;
        case IDL_UINT:
                r = jint(e, j, 0, UINT32_MAX, &u);
                if (!r)
                        r = ipcf_xdr_put_u32(e->x, (uint32_t)u);
                break;
        case IDL_HYPER:
                r = jint(e, j, INT64_MIN, INT64_MAX, &u);
                if (!r)
                        r = ipcf_xdr_put_u64(e->x, u);
                break;
        case IDL_UHYPER:
                r = jint(e, j, 0, UINT64_MAX, &u);
                if (!r)
                        r = ipcf_xdr_put_u64(e->x, u);
                break;
        case IDL_FLOAT:
        case IDL_DOUBLE:
                if (j->kind != J_NUM)
                        r = efail(e, "expected a number");
                else if (!isfinite(j->num) || (rt->kind == IDL_FLOAT && fabs(j->num) > FLT_MAX))
                        r = efail(e, "number %s out of range of %s", j->text, rt->kind == IDL_FLOAT ? "float" : "double");
                else
                        r = rt->kind == IDL_FLOAT ? ipcf_xdr_put_float(e->x, (float)j->num)
                                                  : ipcf_xdr_put_double(e->x, j->num);
                break;
        case IDL_QUAD: {
                uint8_t *b = NULL;
                size_t n = 0;
                r = hexbytes(e, j, &b, &n);
                if (!r && n != 16)
                        r = efail(e, "a quadruple is 16 bytes of hex");
                if (!r)
                        r = ipcf_xdr_put_fixed(e->x, b, 16);
                free(b); /* NULL unless hexbytes succeeded */
                break;
        }
        case IDL_BOOL:
                if (j->kind != J_BOOL)
                        r = efail(e, "expected true or false");
                else
                        r = ipcf_xdr_put_u32(e->x, j->b);
                break;
        case IDL_ENUM:
                r = enc_enum(e, rt, j);
                break;
        case IDL_STRUCT: {
                /* A list's nodes one after the other at this level (list_next). */
                const idl_decl *next = list_next(rt);
                for (;;) {
                        if (j->kind != J_OBJ) {
                                r = efail(e, "expected an object for struct %s", rt->name);
                                break;
                        }
                        const json *m = NULL;
                        for (size_t i = 0; i < rt->n_members && !r; i++) {
                                m = jget(j, rt->members[i].name);
                                if (!m)
                                        r = efail(e, "member '%s' of %s is missing", rt->members[i].name, rt->name);
                                else if (&rt->members[i] != next || m->kind == J_NULL)
                                        r = enc_decl(e, &rt->members[i], m);
                                else
                                        r = ipcf_xdr_put_u32(e->x, 1);
                        }
                        if (!r)
                                r = enc_unknown_key(e, rt, j, NULL, 0);
                        if (r || !next || m->kind == J_NULL)
                                break;
                        j = m; /* the next node */
                }
                break;
        }
        case IDL_UNION: {
                const char *dkey = disc_key(rt);
                const json *dj = j->kind == J_OBJ ? jget(j, dkey) : NULL;
                if (!dj) {
                        r = efail(e, "union %s needs its discriminant '%s'", rt->name, dkey);
                        break;
                }
                size_t mark = e->x->pos;
                r = enc_decl(e, &rt->disc, dj);
                if (r)
                        break;
                int32_t dv = (int32_t)((uint32_t)e->x->buf[mark] << 24 | (uint32_t)e->x->buf[mark + 1] << 16 |
                                       (uint32_t)e->x->buf[mark + 2] << 8 | e->x->buf[mark + 3]);
                const idl_decl *arm = rt->deflt;
                for (size_t i = 0; i < rt->n_cases; i++)
                        for (size_t k = 0; k < rt->cases[i].n_values; k++)
                                if ((int32_t)rt->cases[i].values[k].num == dv)
                                        arm = &rt->cases[i].arm;
                if (!arm)
                        r = efail(e, "no arm of union %s for %d", rt->name, dv);
                else if (arm->kind != IDL_D_VOID)
                        r = enc_decl(e, arm, jget(j, arm->name));
                if (!r) {
                        const char *allowed[2] = { dkey, arm && arm->kind != IDL_D_VOID ? arm->name : NULL };
                        r = enc_unknown_key(e, rt, j, allowed, 2);
                }
                break;
        }
        default:
                r = efail(e, "cannot encode this type");
        }
        e->depth -= nest;
        return r < 0 ? r : e->x->err;
}

int dyn_encode(const idl_type *t, const json *j, ipcf_xdr *x, char *err, size_t errcap) {
        enc e = { x, err, errcap, 0 };
        err[0] = 0;
        if (!t)
                return !j || j->kind == J_NULL ? 0 : efail(&e, "the procedure takes no argument");
        int r = enc_type(&e, t, j);
        if (r < 0 && !*err)
                snprintf(err, errcap, "cannot encode: %s", strerror(-r));
        return r;
}

/* ---- XDR -> JSON -------------------------------------------------------------- */

static int print_type(const idl_type *t, ipcf_xdr *x, FILE *o);

static void print_hex(FILE *o, const uint8_t *p, size_t n) {
        fputc('"', o);
        for (size_t i = 0; i < n; i++)
                fprintf(o, "%02x", p[i]);
        fputc('"', o);
}

/* Take n bytes (and padding) from x without copying. */
/* n bytes and their padding, which must be zero (as ipcf_xdr_get_var and
 * the generated decoders have it: the same reply must not print here and
 * fail -EBADMSG in a stub). */
static const uint8_t *take_bytes(ipcf_xdr *x, size_t n) {
        if (x->err)
                return NULL;
        size_t pad = (4 - (n & 3)) & 3;
        if (x->cap - x->pos < n || x->cap - x->pos - n < pad) {
                ipcf_xdr_fail(x, -EBADMSG);
                return NULL;
        }
        const uint8_t *p = x->buf + x->pos;
        for (size_t i = 0; i < pad; i++)
                if (p[n + i]) {
                        ipcf_xdr_fail(x, -EBADMSG);
                        return NULL;
                }
        x->pos += n + pad;
        return p;
}

static uint64_t decl_elem_min(const idl_type *t) {
        switch (t->kind) {
        case IDL_HYPER: case IDL_UHYPER: case IDL_DOUBLE: return 8;
        case IDL_QUAD: return 16;
        case IDL_NAMED: return t->def && t->def->min_wire ? t->def->min_wire : 4;
        default: return 4;
        }
}

static int print_decl(const idl_decl *d, ipcf_xdr *x, FILE *o) {
        uint32_t bound = (uint32_t)d->bound.num;
        switch (d->kind) {
        case IDL_D_VOID:
                fputs("null", o);
                return 0;
        case IDL_D_PLAIN:
                return print_type(d->type, x, o);
        case IDL_D_OPT: {
                int32_t b;
                if (ipcf_xdr_get_bool(x, &b) < 0)
                        return x->err;
                if (!b) {
                        fputs("null", o);
                        return 0;
                }
                return print_type(d->type, x, o);
        }
        default:
                break;
        }
        uint32_t n = bound;
        if (d->kind == IDL_D_VAR &&
            ipcf_xdr_get_count(x, &n, bound, d->type->kind == IDL_OPAQUE || d->type->kind == IDL_STRING ? 1
                                                                                                  : decl_elem_min(d->type)) < 0)
                return x->err;
        if (d->type->kind == IDL_STRING || d->type->kind == IDL_OPAQUE) {
                const uint8_t *p = take_bytes(x, n);
                if (!p)
                        return x->err;
                if (d->type->kind == IDL_STRING && memchr(p, 0, n))
                        return ipcf_xdr_fail(x, -EBADMSG); /* a string holds no NUL (ipcf_xdr_get_string) */
                if (d->type->kind == IDL_STRING)
                        json_put_string(o, (const char *)p, n);
                else
                        print_hex(o, p, n);
                return 0;
        }
        fputc('[', o);
        for (uint32_t i = 0; i < n && !x->err; i++) {
                if (i)
                        fputs(", ", o);
                print_type(d->type, x, o);
        }
        fputc(']', o);
        return x->err;
}

static int print_type(const idl_type *t, ipcf_xdr *x, FILE *o) {
        bool nest = nests(t);
        if (nest && ipcf_xdr_enter(x) < 0)
                return x->err;
        const idl_type *rt = t;
        if (t->kind == IDL_NAMED && t->def) {
                if (t->def->kind == IDL_DEF_TYPEDEF) {
                        print_decl(&t->def->decl, x, o);
                        if (nest)
                                ipcf_xdr_leave(x);
                        return x->err;
                }
                rt = t->def->type;
        }
        uint32_t u;
        uint64_t h;
        float f;
        double dd;
        switch (rt->kind) {
        case IDL_INT:
                if (!ipcf_xdr_get_u32(x, &u))
                        fprintf(o, "%" PRId32, (int32_t)u);
                break;
        case IDL_UINT:
                if (!ipcf_xdr_get_u32(x, &u))
                        fprintf(o, "%" PRIu32, u);
                break;
        case IDL_HYPER:
                if (!ipcf_xdr_get_u64(x, &h))
                        fprintf(o, "%" PRId64, (int64_t)h);
                break;
        case IDL_UHYPER:
                if (!ipcf_xdr_get_u64(x, &h))
                        fprintf(o, "%" PRIu64, h);
                break;
        case IDL_FLOAT:
                if (!ipcf_xdr_get_float(x, &f))
                        fprintf(o, isfinite(f) ? "%.9g" : "null", (double)f);
                break;
        case IDL_DOUBLE:
                if (!ipcf_xdr_get_double(x, &dd))
                        fprintf(o, isfinite(dd) ? "%.17g" : "null", dd);
                break;
        case IDL_QUAD: {
                const uint8_t *p = take_bytes(x, 16);
                if (p)
                        print_hex(o, p, 16);
                break;
        }
        case IDL_BOOL: {
                int32_t b;
                if (!ipcf_xdr_get_bool(x, &b))
                        fputs(b ? "true" : "false", o);
                break;
        }
        case IDL_ENUM: {
                if (ipcf_xdr_get_u32(x, &u) < 0)
                        break;
                const char *name = NULL;
                for (size_t i = 0; i < rt->n_vals; i++)
                        if ((int32_t)rt->vals[i].value.num == (int32_t)u)
                                name = rt->vals[i].name;
                if (!name)
                        ipcf_xdr_fail(x, -EBADMSG);
                else
                        fprintf(o, "\"%s\"", name);
                break;
        }
        case IDL_STRUCT: {
                /* A list's nodes one after the other at this level
                 * (list_next); their '}'s at the end. */
                const idl_decl *next = list_next(rt);
                size_t open = 0;
                for (bool more = true; more && !x->err;) {
                        fputc('{', o);
                        open++;
                        more = false;
                        for (size_t i = 0; i < rt->n_members && !x->err; i++) {
                                fprintf(o, "%s\"%s\": ", i ? ", " : "", rt->members[i].name);
                                int32_t b;
                                if (&rt->members[i] != next)
                                        print_decl(&rt->members[i], x, o);
                                else if (ipcf_xdr_get_bool(x, &b) == 0 && !(more = b))
                                        fputs("null", o);
                        }
                }
                while (open--)
                        fputc('}', o);
                break;
        }
        case IDL_UNION: {
                fprintf(o, "{\"%s\": ", disc_key(rt));
                size_t mark = x->pos;
                if (print_decl(&rt->disc, x, o) < 0)
                        break;
                int32_t dv = (int32_t)((uint32_t)x->buf[mark] << 24 | (uint32_t)x->buf[mark + 1] << 16 |
                                       (uint32_t)x->buf[mark + 2] << 8 | x->buf[mark + 3]);
                const idl_decl *arm = rt->deflt;
                for (size_t i = 0; i < rt->n_cases; i++)
                        for (size_t k = 0; k < rt->cases[i].n_values; k++)
                                if ((int32_t)rt->cases[i].values[k].num == dv)
                                        arm = &rt->cases[i].arm;
                if (!arm) {
                        ipcf_xdr_fail(x, -EBADMSG);
                        break;
                }
                if (arm->kind != IDL_D_VOID) {
                        fprintf(o, ", \"%s\": ", arm->name);
                        print_decl(arm, x, o);
                }
                fputc('}', o);
                break;
        }
        default:
                ipcf_xdr_fail(x, -EBADMSG);
        }
        if (nest)
                ipcf_xdr_leave(x);
        return x->err;
}

int dyn_print(const idl_type *t, ipcf_xdr *x, FILE *out) {
        if (!t) {
                fputs("null", out);
                return 0;
        }
        return print_type(t, x, out);
}

const idl_proc *dyn_find_proc(const idl_file *f, const char *name, uint32_t vers, const idl_program **ret_prog,
                              const idl_version **ret_vers) {
        const idl_proc *best = NULL;
        for (size_t i = 0; i < f->n_defs; i++) {
                if (f->defs[i]->kind != IDL_DEF_PROGRAM)
                        continue;
                const idl_program *pg = f->defs[i]->prog;
                for (size_t v = 0; v < pg->n_versions; v++) {
                        const idl_version *ver = &pg->versions[v];
                        if (vers && (uint32_t)ver->number.num != vers)
                                continue;
                        for (size_t p = 0; p < ver->n_procs; p++)
                                if (!strcasecmp(ver->procs[p].name, name) &&
                                    (!best || ver->number.num > (*ret_vers)->number.num)) {
                                        best = &ver->procs[p];
                                        *ret_prog = pg;
                                        *ret_vers = ver;
                                }
                }
        }
        return best;
}

const idl_type *dyn_arg_type(const idl_file *f, const idl_proc *p) {
        (void)f;
        if (p->n_args == 0)
                return NULL;
        if (p->n_args == 1)
                return p->args[0];
        static _Thread_local idl_type t;
        t = (idl_type){ .kind = IDL_NAMED, .name = p->args_def->name, .def = p->args_def };
        return &t;
}
