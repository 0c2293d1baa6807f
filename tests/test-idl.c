/*
 * test-idl.c — ipcf-idl, the interface compiler, run as a program on good
 * and bad interface files: each error is reported as file:line:col with
 * what is wrong, the exit status says which kind of failure it was, and a
 * good file produces a header and a source that a C compiler accepts
 * under the project's warnings.
 */
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "support/test.h"

static char dir[] = "/tmp/test-idl-XXXXXX";
static int failures; /* expect_error goes on after a mismatch, to show all */

/* Run ipcf-idl on text (written to <dir>/<file>); its exit status, and its
 * stderr in err (cap bytes). */
static int run_idl(const char *file, const char *text, const char *extra, char *err, size_t cap) {
        char path[512], cmd[2048], errpath[512];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        snprintf(errpath, sizeof(errpath), "%s/stderr", dir);
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs(text, f);
        fclose(f);
        char *rel = test_build_path("bin/ipcf-idl");
        char *idl = realpath(rel, NULL);
        CHECK(idl);
        snprintf(cmd, sizeof(cmd), "cd %s && %s %s %s 2>%s", dir, idl, extra ? extra : "", file, errpath);
        free(idl);
        free(rel);
        int st = system(cmd);
        f = fopen(errpath, "r");
        size_t n = f ? fread(err, 1, cap - 1, f) : 0;
        err[n] = 0;
        if (f)
                fclose(f);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static void expect_error(const char *text, const char *where, const char *what) {
        char err[4096];
        CHECK_EQ(run_idl("bad.x", text, NULL, err, sizeof(err)), 1);
        char want[256];
        snprintf(want, sizeof(want), "bad.x:%s: error: ", where);
        if (!strstr(err, want) || !strstr(err, what)) {
                fprintf(stderr, "for\n%s\nwanted \"%s...%s\", got:\n%s", text, want, what, err);
                failures++;
        }
}

static void setup(void) {
        CHECK(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[600];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
        CHECK_EQ(system(cmd), 0);
}

TEST(syntax_errors_have_their_position) {
        setup();
        expect_error("struct s { int a; }", "1:20", "expected ';', found end of file");
        expect_error("const X = 1;\n  typedef int;", "2:14", "expected a name");
        expect_error("struct s {\n\tint a\n};", "3:1", "expected ';'");
        expect_error("typedef string s;", "1:17", "a string needs a bound");
        expect_error("typedef opaque o;", "1:17", "opaque needs a size");
        expect_error("/* never closed", "1:1", "comment not closed");
        expect_error("#include <x.h>\n", "1:1", "preprocessor directives are not supported");
        expect_error("const A = 0x;", "1:11", "hexadecimal number without digits");
        expect_error("const A = 09;", "1:11", "bad digit in an octal number");
        expect_error("const A = 99999999999999999999;", "1:11", "number too large");
        expect_error("typedef int _x;", "1:13", "an identifier must start with a letter");
        expect_error("typedef int struct;", "1:13", "expected a name");
        expect_error("program P { version V { [sometimes] void F(void) = 1; } = 1; } = 1;", "1:26",
                     "unknown annotation 'sometimes'");
        expect_error("program P { version V { [timeout(0)] void F(void) = 1; } = 1; } = 1;", "1:26",
                     "timeout(ms) must be 1..86400000");
        expect_error("[idempotent] struct s { int a; };", "1:1", "annotations belong before");
        /* deeply nested inline types: bounded, not a stack overflow */
        char deep[4000] = "typedef ";
        for (int i = 0; i < 200; i++)
                strcat(deep, "struct { ");
        strcat(deep, "int x;");
        expect_error(deep, "1:592", "types nested too deeply");
        teardown();
        CHECK_EQ(failures, 0);
}

TEST(meaning_errors_are_all_reported) {
        setup();
        expect_error("struct a { b x; };", "1:12", "type 'b' is not defined");
        expect_error("struct a { int x; int x; };", "1:19", "member 'x' appears twice");
        expect_error("struct a { int x; };\nstruct a { int y; };", "2:1", "'a' is defined twice (first at line 1)");
        expect_error("struct a { a x; };", "1:1", "contains itself");
        expect_error("struct a { int v; a *next; };\nstruct b { b x[2]; };", "2:1", "contains itself");
        expect_error("union u switch (float f) { case 1: int x; };", "1:17", "discriminant must be int");
        expect_error("union u switch (int d) { case 1: int x; case 1: int y; };", "1:46", "case 1 appears twice");
        expect_error("enum e { A = 1, B = 2 };\nunion u switch (e d) { case 3: int x; };", "2:29",
                     "case 3 is not a value of enum e");
        expect_error("typedef int v<N>;", "1:15", "'N' is not defined");
        expect_error("typedef int v[0];", "1:15", "an array size must be 1..4294967295");
        expect_error("const N = -1;\ntypedef int v<N>;", "2:15", "a bound must be 0..4294967295");
        expect_error("enum e { A = 0x80000000 };", "1:14", "an enumerator must be");
        expect_error("struct s { void; };", "1:12", "void is allowed only as a union arm");
        expect_error("typedef int while;", "1:1", "'while' is a keyword of C");
        expect_error("typedef int x[0x7fffffff];\nstruct big { x a; x b; };", "2:1", "takes more than 2 GiB");
        expect_error("program P { version V { [oneway] int F(void) = 1; } = 1; } = 1;", "1:34",
                     "oneway procedure 'F' must return void");
        expect_error("program P { version V { void F(void) = 1; void G(void) = 1; } = 1; } = 1;", "1:58",
                     "procedure number 1 is used twice");
        expect_error("program P { version V { void F(void) = 1; } = 1;\n version W { void G(void) = 1; } = 1; } = 1;",
                     "2:36", "version number 1 is used twice");
        expect_error("program P { version V { void F(nothing) = 1; } = 1; } = 1;", "1:32",
                     "type 'nothing' is not defined");
        /* several errors in one file: all of them */
        char err[4096];
        CHECK_EQ(run_idl("bad.x", "struct a { b x; };\nstruct c { d y; };\n", NULL, err, sizeof(err)), 1);
        CHECK(strstr(err, "bad.x:1:12: error: type 'b'"));
        CHECK(strstr(err, "bad.x:2:12: error: type 'd'"));
        teardown();
        CHECK_EQ(failures, 0);
}

/* The warnings docs/RPC.md promises the generated code compiles under,
 * and the project's (with -Wshadow: no name of a file, s, h, o..., is one
 * the generated functions use for their own parameters and locals). */
#define RPC_MD_WARNINGS "-Wall -Wextra -Werror -Wno-unused-parameter"
#define PROJECT_WARNINGS RPC_MD_WARNINGS " -Wshadow -Wstrict-prototypes -Wmissing-prototypes"

/* Does the code ipcf-idl made in <dir>/<base>.c compile with those
 * warnings? (Its errors in <dir>/cc.err.) */
static bool compiles(const char *base, const char *warnings) {
        char cmd[2048];
        char *inc = realpath("include", NULL); /* tests run from the source tree */
        CHECK(inc);
        snprintf(cmd, sizeof(cmd), "cc -std=gnu11 %s -I%s -c %s/%s.c -o %s/%s.o 2>%s/cc.err", warnings, inc, dir,
                 base, dir, base, dir);
        free(inc);
        return system(cmd) == 0;
}

static const char *const good =
        "/* a calculator */\n"
        "const MAXN = 8;\n"
        "% passed through by rpcgen, skipped here\n"
        "typedef int ints<MAXN>;\n"
        "struct pair { int a; int b; };\n"
        "union outcome switch (bool ok) { case TRUE: hyper v; case FALSE: string why<>; };\n"
        "[timeout(2500)]\n"
        "program CALC {\n"
        "  version CALC_V1 {\n"
        "    outcome ADD(pair) = 1;\n"
        "    [idempotent] hyper SUM(ints) = 2;\n"
        "    [oneway] void NOTE(int) = 3;\n"
        "    int MUL(int, int) = 4;\n"
        "    void RESET(struct { int to; unsigned hyper when; }) = 5;\n"
        "  } = 1;\n"
        "  [timeout(100)] version CALC_V2 {\n"
        "    [idempotent, timeout(50)] hyper SUM(ints) = 2;\n"
        "  } = 2;\n"
        "} = 0x20000010;\n";

TEST(a_good_file_compiles_to_c_that_compiles) {
        setup();
        char err[4096];
        CHECK_EQ(run_idl("calc.x", good, NULL, err, sizeof(err)), 0);
        CHECK_EQ(strlen(err), 0);
        char path[600];
        struct stat st;
        snprintf(path, sizeof(path), "%s/calc.h", dir);
        CHECK_OK(stat(path, &st));
        snprintf(path, sizeof(path), "%s/calc.c", dir);
        CHECK_OK(stat(path, &st));
        /* the generated code compiles under the project's warnings */
        CHECK(compiles("calc", PROJECT_WARNINGS));
        char cmd[2048];
        /* --check writes nothing; -o and -p are honoured */
        CHECK_EQ(run_idl("calc.x", good, "--check -o nowhere", err, sizeof(err)), 0);
        CHECK_EQ(run_idl("calc.x", "garbage", "--check", err, sizeof(err)), 1);
        CHECK_EQ(run_idl("calc.x", good, "-o /nonexistent/dir", err, sizeof(err)), 2);
        CHECK(strstr(err, "/nonexistent/dir/calc.h"));
        CHECK_EQ(run_idl("calc.x", good, "--bogus", err, sizeof(err)), 2);
        snprintf(cmd, sizeof(cmd), "grep -q 'int32_t pair_' %s/calc.h", dir);
        CHECK_EQ(system(cmd), 256); /* the types are named as in the file */
        snprintf(cmd, sizeof(cmd), "grep -q 'struct mul_args' %s/calc.h && grep -q 'RESET_arg1' %s/calc.h", dir, dir);
        CHECK_EQ(system(cmd), 0);
        teardown();
}

/* Compile main_text with the code ipcf-idl made in <dir>/<base>.c, under
 * the project's warnings (and the build's sanitizer), against this build's
 * libipcf.a, and run it: system()'s status (0: it compiled and exited 0). */
static int build_and_run(const char *base, const char *main_text) {
        char path[600], cmd[4096];
        snprintf(path, sizeof(path), "%s/main.c", dir);
        FILE *f = fopen(path, "w");
        CHECK(f);
        fputs(main_text, f);
        fclose(f);
        char *inc = realpath("include", NULL); /* tests run from the source tree */
        char *rel = test_build_path("lib/libipcf.a");
        char *lib = realpath(rel, NULL);
        CHECK(inc && lib);
        snprintf(cmd, sizeof(cmd),
                 "%s %s -std=gnu11 " PROJECT_WARNINGS " -I%s -o %s/%s %s/main.c %s/%s.c "
                 "%s -lpthread 2>%s/cc.err && %s/%s",
                 TEST_CC, TEST_SANFLAGS, inc, dir, base, dir, dir, base, lib, dir, dir, base);
        free(inc);
        free(lib);
        free(rel);
        return system(cmd);
}

/* Names that are legal in the language but would make C that does not
 * compile (hostile test, h3): each is an error at its position, never a
 * header the C compiler rejects. Constants, programs, versions and
 * procedures are #defines; union arms are members of one C union; a
 * procedure's handler is a member named in lower case; the generated code
 * uses some names itself. */
TEST(names_that_would_break_the_generated_c_are_errors) {
        setup();
        expect_error("union u switch (int d) { case 1: int a; case 2: hyper a; };", "1:49",
                     "arm 'a' appears twice in union u");
        expect_error("union u switch (int d) { case 1: int a; default: hyper a; };", "1:50", "arm 'a' appears twice");
        expect_error("const len = 5;\nstruct s { opaque data<len>; int len; };", "1:1",
                     "'len' is a constant, a #define in the generated C, and also a member of struct s");
        expect_error("struct s { int data<>; };\nconst data_len = 1;", "2:1", "also a member of struct s");
        expect_error("union w switch (int d) { case 1: int a; };\nconst w_u = 1;", "2:1", "also the union of w");
        expect_error("struct PING { int a; };\nprogram P { version V { void PING(void) = 1; } = 1; } = 1;", "2:25",
                     "'PING' is a procedure, a #define in the generated C, and also a definition");
        expect_error("struct e { int ADD; };\nprogram P { version V { void ADD(e) = 1; } = 1; } = 1;", "2:25",
                     "also a member of struct e");
        expect_error("enum col { RED = 1 };\nprogram P { version V { void RED(void) = 1; } = 1; } = 1;", "2:25",
                     "also an enumerator");
        expect_error("program P { version V { void F(void) = 1; } = 1;\n version V { void G(void) = 1; } = 2; } = 1;",
                     "2:2", "version name 'V' is used twice");
        expect_error("program P { version V { void F(void) = 1; } = 1; } = 1;\n"
                     "program Q { version v { void G(void) = 1; } = 1; } = 2;", "2:13", "version name 'v' is used twice");
        expect_error("program P { version F { void F(void) = 1; } = 1; } = 1;", "1:13",
                     "'F' names both a version and a procedure");
        expect_error("program P { version V { void P(void) = 1; } = 1; } = 1;", "1:25",
                     "'P' names both a program and a procedure");
        expect_error("program P { version V { void ADD(void) = 1; void add(void) = 2; } = 1; } = 1;", "1:45",
                     "differ only in case");
        expect_error("program P { version V { void RETURN(void) = 1; } = 1; } = 1;", "1:25",
                     "'return' is a keyword of C");
        expect_error("struct s { int typeof; };", "1:12", "'typeof' is a keyword of C");
        expect_error("struct s { int asm; };", "1:12", "'asm' is a keyword of C");
        expect_error("typedef int constexpr;", "1:1", "'constexpr' is a keyword of C");
        expect_error("const name = 3;", "1:1", "where the generated code uses 'name' itself");
        expect_error("const arg2 = 3;", "1:1", "where the generated code uses 'arg2' itself");
        expect_error("const b = 7;\ntypedef quadruple q;", "1:1", "where the generated code uses 'b' itself");
        expect_error("typedef int size_t;", "1:1", "'size_t' is a name the generated C uses itself");
        expect_error("struct ipcf_thing { int a; };", "1:1", "'ipcf_thing' is a name the generated C uses itself");
        /* the macros of the headers the generated code includes */
        expect_error("enum endian { BIG_ENDIAN = 0, LITTLE_ENDIAN = 1 };", "1:15",
                     "'BIG_ENDIAN' is a macro of the C headers");
        expect_error("struct s { int EPERM; };", "1:12", "'EPERM' is a macro of the C headers");
        expect_error("struct s { int unix; };", "1:12", "'unix' is a macro of the C headers");
        expect_error("typedef int alloca;", "1:1", "'alloca' is a macro of the C headers");
        expect_error("program P { version V { void EXIT_SUCCESS(void) = 1; } = 1; } = 1;", "1:25",
                     "'EXIT_SUCCESS' is a macro of the C headers");
        expect_error("const WUNTRACED = 1;", "1:1", "'WUNTRACED' is a macro of the C headers");
        /* what stays legal: a member named as a type, an arm as the
         * discriminant, the same procedure in two versions, a type named s */
        char err[4096];
        const char *ok = "struct s { int s; hyper data<>; };\n"
                         "union u switch (int d) { case 1: int d; default: void; };\n"
                         "enum e { A = 1, B = A };\n"
                         "program P { version V1 { s ADD(u) = 1; } = 1; version V2 { s ADD(u) = 1; } = 2; } = 1;\n";
        CHECK_EQ(run_idl("names.x", ok, NULL, err, sizeof(err)), 0);
        CHECK(compiles("names", PROJECT_WARNINGS));
        teardown();
        CHECK_EQ(failures, 0);
}

/* The generated functions name their own parameters and locals ipcf_*
 * (hostile test, h3: a type named s, h or o compiled under -Wall -Wextra
 * but not -Wshadow, and x, c, ctx, in, u_ were refused as type names):
 * every name they used before is a legal type or constant now, and the
 * code compiles under the project's warnings (-Wshadow) and round-trips a
 * value through every kind of generated loop (a fixed and a variable
 * array, optional data, a list, a union, an enum). */
static const char *const former_locals =
        "const i0 = 2;\n"
        "const i1 = 3;\n"
        "typedef int s;\n"
        "typedef hyper h;\n"
        "enum v { VA = 1, VB = 2 };\n"
        "typedef string ctx<>;\n"
        "typedef opaque user[4];\n"
        "struct x { s a; h hs<i1>; v e; };\n"
        "struct c { x item[i0]; c *next; };\n"
        "union out switch (v d) { case VA: c list; case VB: void; };\n"
        "struct in { out o<>; ctx name_; user u; };\n"
        "typedef in handlers[2];\n"
        "typedef handlers *ret_call;\n"
        "typedef s u_;\n"
        "typedef h n_;\n"
        "typedef v b_;\n"
        "struct o { u_ a; n_ b; b_ cc; ret_call r; };\n"
        "program P { version V {\n"
        "  out ADD(o, s) = 1;\n"
        "  in GET(x) = 2;\n"
        "  [oneway] void NOTE(h) = 3;\n"
        "  handlers ALL(void) = 4;\n"
        "} = 1; } = 0x20000099;\n";

static const char *const former_locals_main =
        "#include <string.h>\n"
        "#include \"locals.h\"\n"
        "int main(void) {\n"
        "  h hs[2] = { 5, -6 };\n"
        "  c second = { .next = NULL }, first = { .next = &second };\n"
        "  second.item[0].a = 7; second.item[0].e = VB; second.item[1].e = VA;\n"
        "  first.item[0].e = VA; first.item[1].e = VB;\n"
        "  first.item[1].hs.hs_len = 2; first.item[1].hs.hs_val = hs;\n"
        "  out arms[1]; memset(arms, 0, sizeof(arms)); arms[0].d = VA; arms[0].out_u.list = first;\n"
        "  handlers two = { { .name_ = \"n\", .u = { 1, 2, 3, 4 } }, { .name_ = \"m\" } };\n"
        "  two[0].o.o_len = 1; two[0].o.o_val = arms;\n"
        "  o val = { .a = -1, .b = 1LL << 40, .cc = VB, .r = &two }, back;\n"
        "  ipcf_xdr enc; ipcf_xdr_encoder(&enc, NULL, 0);\n"
        "  if (o_encode(&enc, &val)) return 1;\n"
        "  ipcf_xdr dec; ipcf_xdr_decoder(&dec, enc.buf, enc.pos);\n"
        "  if (o_decode(&dec, &back) || ipcf_xdr_end(&dec)) return 2;\n"
        "  if (back.a != -1 || back.b != 1LL << 40 || back.cc != VB || !back.r) return 3;\n"
        "  in *got = &(*back.r)[0];\n"
        "  if (strcmp(got->name_, \"n\") || got->u[3] != 4 || strcmp((*back.r)[1].name_, \"m\")) return 4;\n"
        "  if (got->o.o_len != 1 || got->o.o_val[0].d != VA) return 5;\n"
        "  c *l = &got->o.o_val[0].out_u.list;\n"
        "  if (l->item[1].e != VB || l->item[1].hs.hs_len != 2 || l->item[1].hs.hs_val[1] != -6) return 6;\n"
        "  if (!l->next || l->next->item[0].a != 7 || l->next->item[0].e != VB || l->next->next) return 7;\n"
        "  o_free(&back); ipcf_xdr_release(&enc);\n"
        "  return 0;\n"
        "}\n";

TEST(names_the_generated_code_used_for_its_locals_are_legal) {
        setup();
        char err[4096];
        CHECK_EQ(run_idl("locals.x", former_locals, NULL, err, sizeof(err)), 0);
        CHECK_EQ(strlen(err), 0);
        if (!compiles("locals", PROJECT_WARNINGS)) {
                char cmd[700];
                snprintf(cmd, sizeof(cmd), "head -c 3000 %s/cc.err >&2", dir);
                CHECK_EQ(system(cmd), 0);
                test_fail(__FILE__, __LINE__, "the generated C does not compile under " PROJECT_WARNINGS);
        }
        CHECK_EQ(build_and_run("locals", former_locals_main), 0);
        /* as constants (each a #define) too, which would replace a local */
        const char *consts = "const x = 1;\nconst v = 2;\nconst in = 3;\nconst out = 4;\nconst ctx = 5;\n"
                             "const user = 6;\nconst s = 7;\nconst h = 8;\nconst o = 9;\nconst c = 10;\n"
                             "const u_ = 11;\nconst n_ = 12;\nconst b_ = 13;\nconst i0 = 14;\n"
                             "const handlers = 15;\nconst ret_call = 16;\n"
                             "typedef int t<x>;\nstruct l { t a[2]; l *next; };\n"
                             "union w switch (int d) { case 1: l *p; case 2: hyper q<v>; };\n"
                             "enum e { E1 = 1 };\n"
                             "program P { version V { w F(l, e) = 1; } = 1; } = 0x20000098;\n";
        CHECK_EQ(run_idl("consts.x", consts, NULL, err, sizeof(err)), 0);
        CHECK_EQ(strlen(err), 0);
        CHECK(compiles("consts", PROJECT_WARNINGS));
        teardown();
}

/* RFC 4506 §6.3: a type-specifier may be an inline union ("union switch
 * (...) {...}"), as it may be an inline struct or enum; each is named
 * <outer>_<member> in C. The generated code compiles, and a value with all
 * three survives an encode/decode round trip through libipcf. */
static const char *const inline_types =
        "struct outer {\n"
        "  struct { int a; } inner;\n"
        "  union switch (int d) { case 1: int x; case 2: string s<8>; default: void; } u;\n"
        "  enum { RED = 1, GREEN = 2 } color;\n"
        "};\n";

static const char *const inline_main =
        "#include <string.h>\n"
        "#include \"inl.h\"\n"
        "int main(void) {\n"
        "  outer v = { .inner = { .a = -7 }, .color = GREEN }, w;\n"
        "  v.u.d = 2; v.u.outer_u_u.s = \"abc\";\n"
        "  ipcf_xdr x; ipcf_xdr_encoder(&x, NULL, 0);\n"
        "  if (outer_encode(&x, &v) || x.pos != 20) return 1;\n"
        "  ipcf_xdr y; ipcf_xdr_decoder(&y, x.buf, x.pos);\n"
        "  if (outer_decode(&y, &w) || ipcf_xdr_end(&y)) return 2;\n"
        "  if (w.inner.a != -7 || w.u.d != 2 || strcmp(w.u.outer_u_u.s, \"abc\") || w.color != GREEN) return 3;\n"
        "  outer_free(&w); ipcf_xdr_release(&x);\n"
        "  return 0;\n"
        "}\n";

/* A prefix that is not a C identifier would make C that does not compile:
 * a usage error (2), nothing written; a file whose name starts with a
 * digit needs -p. */
TEST(a_prefix_must_be_a_c_identifier) {
        setup();
        char err[4096];
        const char *x = "program P { version V { int F(int) = 1; } = 1; } = 1;\n";
        CHECK_EQ(run_idl("ok.x", x, "-p a-b", err, sizeof(err)), 2);
        CHECK(strstr(err, "not a C identifier"));
        CHECK_EQ(run_idl("ok.x", x, "-p 1abc", err, sizeof(err)), 2);
        CHECK_EQ(run_idl("1calc.x", x, NULL, err, sizeof(err)), 2);
        CHECK(strstr(err, "-p"));
        CHECK_EQ(run_idl("1calc.x", x, "-p calc", err, sizeof(err)), 0);
        CHECK_EQ(run_idl("ok.x", x, "-p my_calc2", err, sizeof(err)), 0);
        teardown();
}

TEST(inline_struct_union_and_enum_types) {
        setup();
        char err[4096];
        CHECK_EQ(run_idl("inl.x", inline_types, NULL, err, sizeof(err)), 0);
        CHECK_EQ(strlen(err), 0);
        CHECK_EQ(build_and_run("inl", inline_main), 0);
        teardown();
}

/* An interface of about n definitions of every kind: per five, a constant,
 * an enum, a struct (its enum, a pointer to the struct before it, opaque
 * data bounded by the constant), a variable array of the struct and a union
 * switching on the enum; every 250th definition a program of two
 * procedures using them (one of several arguments). Malloc'ed. */
static char *many_definitions(unsigned n) {
        char *text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        CHECK(o);
        for (unsigned i = 0; i < n / 5; i++) {
                fprintf(o, "const C%u = %u;\nenum E%u { E%u_A = 0, E%u_B = 1 };\n", i, i + 1, i, i, i);
                if (i)
                        fprintf(o, "struct S%u { int a; E%u e; S%u *prev; opaque o<C%u>; };\n", i, i, i - 1, i);
                else
                        fprintf(o, "struct S0 { int a; E0 e; int prev; opaque o<C0>; };\n");
                fprintf(o, "typedef S%u T%u<>;\nunion U%u switch (E%u k) { case E%u_A: S%u s; default: void; };\n", i,
                        i, i, i, i, i);
                if (i % 50 == 49)
                        fprintf(o, "program P%u { version V%u { U%u F%u(T%u) = 1; int G%u(S%u, U%u) = 2; } = 1; } = %u;\n",
                                i, i, i, i, i, i, i, i - 1, i + 1);
        }
        CHECK_EQ(fclose(o), 0);
        return text;
}

/* CPU time (user + system) of the children waited for so far, in ms. */
static uint64_t children_cpu_ms(void) {
        struct rusage ru;
        CHECK_EQ(getrusage(RUSAGE_CHILDREN, &ru), 0);
        return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
               (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
}

/* ipcf-idl on many_definitions(n), its output to /dev/null: the CPU time it
 * took in ms (less sensitive than the wall clock to a loaded machine); its
 * wall time in *ret_wall_ms. */
static uint64_t compile_many(unsigned n, uint64_t *ret_wall_ms) {
        char *text = many_definitions(n), err[4096], file[64], cmd[1200];
        snprintf(file, sizeof(file), "many%u.x", n);
        snprintf(cmd, sizeof(cmd), "mkdir -p %s/null && ln -sf /dev/null %s/null/many%u.h && ln -sf /dev/null %s/null/many%u.c",
                 dir, dir, n, dir, n);
        CHECK_EQ(system(cmd), 0);
        uint64_t t0 = test_now_ms(), cpu0 = children_cpu_ms();
        int st = run_idl(file, text, "-o null", err, sizeof(err));
        uint64_t cpu = children_cpu_ms() - cpu0;
        *ret_wall_ms = test_now_ms() - t0;
        if (st != 0)
                test_fail(__FILE__, __LINE__, "ipcf-idl on %u definitions: exit %d\n%.2000s", n, st, err);
        free(text);
        return cpu;
}

/* The compile is linear (it was quadratic: every name looked up by a scan
 * of every definition, duplicates found by comparing each name with all
 * before it): 4x the definitions take well under 8x the time, and 100,000
 * definitions a few seconds (before: 20,000 took 19-24 s on this VM, under
 * load; 100,000 would take minutes). */
TEST_TIMEOUT(the_compile_time_grows_linearly_with_the_file, 300) {
        setup();
        uint64_t w1, w4, t1 = compile_many(25000, &w1), t4 = compile_many(100000, &w4);
        printf("ipcf-idl: 25,000 definitions %llu ms of CPU (%llu ms), 100,000 definitions %llu ms (%llu ms)\n",
               (unsigned long long)t1, (unsigned long long)w1, (unsigned long long)t4, (unsigned long long)w4);
        CHECK(t4 < 8 * t1 + 500);
        CHECK(w4 < 60000);
        teardown();
}

/* How each link of a chain holds the one before. */
enum link { BY_VALUE, OPTIONAL, UNION_OR_VOID };

/* A chain of n types, s0 { int x; } then s<k> holding s<k-1> (line k+1
 * defines s<k>) as link says. Malloc'ed. */
static char *chain(unsigned n, enum link link) {
        char *text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        CHECK(o);
        fprintf(o, "struct s0 { int x; };\n");
        for (unsigned k = 1; k < n; k++)
                if (link == BY_VALUE)
                        fprintf(o, "struct s%u { s%u x; };\n", k, k - 1);
                else if (link == OPTIONAL)
                        fprintf(o, "struct s%u { s%u *x; };\n", k, k - 1);
                else
                        fprintf(o, "union s%u switch (int d) { case 1: s%u x; default: void; };\n", k, k - 1);
        CHECK_EQ(fclose(o), 0);
        return text;
}

static const char *const deep_main =
        "#include \"deep.h\"\n"
        "int main(void) {\n"
        "  static s255 v, w;\n"
        "  ipcf_xdr x; ipcf_xdr_encoder(&x, NULL, 0);\n"
        "  if (s255_encode(&x, &v) || x.pos != 4) return 1;\n"
        "  ipcf_xdr y; ipcf_xdr_decoder(&y, x.buf, x.pos);\n"
        "  if (s255_decode(&y, &w) || ipcf_xdr_end(&y)) return 2;\n"
        "  ipcf_xdr_release(&x);\n"
        "  return 0;\n"
        "}\n";

/* Decoding enters a level for each typedef, struct and union and fails
 * -ELOOP past IPCF_XDR_MAX_DEPTH (256): a type whose every value nests
 * deeper could never be decoded, and is an error at the outermost
 * definition (hostile test: 300 structs deep were accepted). 256 levels
 * compile and a value of them goes through encoding and decoding; deep
 * chains that have a shallow value (optional data, a union's void arm)
 * are fine. */
TEST(a_type_nested_deeper_than_decoding_allows_is_an_error) {
        setup();
        char *text = chain(300, BY_VALUE);
        expect_error(text, "300:1", "a value of type 's299' nests 300 levels deep");
        expect_error(text, "300:1", "more than the 256 a decoder allows (IPCF_XDR_MAX_DEPTH)");
        char err[4096];
        CHECK_EQ(run_idl("bad.x", text, "--check", err, sizeof(err)), 1);
        CHECK(!strstr(err, "'s298'")); /* once, not at each link */
        free(text);
        /* typedefs and fixed arrays are levels too */
        text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        fprintf(o, "struct s0 { int x; };\n");
        for (unsigned k = 1; k < 150; k++)
                fprintf(o, "typedef s%u t%u[1];\nstruct s%u { int a; t%u x; };\n", k - 1, k, k, k);
        fclose(o);
        expect_error(text, "299:1", "a value of type 's149' nests 299 levels deep");
        free(text);
        text = chain(300, OPTIONAL);
        CHECK_EQ(run_idl("ok.x", text, "--check", err, sizeof(err)), 0);
        free(text);
        text = chain(300, UNION_OR_VOID);
        CHECK_EQ(run_idl("ok.x", text, "--check", err, sizeof(err)), 0);
        free(text);
        /* 256 levels: accepted, and a value of them decodes */
        text = chain(256, BY_VALUE);
        CHECK_EQ(run_idl("deep.x", text, NULL, err, sizeof(err)), 0);
        free(text);
        CHECK_EQ(build_and_run("deep", deep_main), 0);
        teardown();
        CHECK_EQ(failures, 0);
}

/* An interface of n structs, each the argument of two procedures, their
 * names namelen (8..400) characters long, all but the last four the same.
 * Malloc'ed. */
static char *many_argument_types(unsigned n, unsigned namelen) {
        char stem[400] = "", *text = NULL;
        size_t len = 0;
        CHECK(namelen >= 8 && namelen <= sizeof(stem));
        memset(stem, 't', namelen - 4);
        FILE *o = open_memstream(&text, &len);
        CHECK(o);
        for (unsigned i = 0; i < n; i++)
                fprintf(o, "struct %s%04u { int q; };\n", stem, i);
        fprintf(o, "program P {\n\tversion V {\n");
        for (unsigned i = 0; i < n; i++)
                fprintf(o, "\t\tint F%u(%s%04u) = %u;\n\t\tint G%u(%s%04u) = %u;\n", i, stem, i, 2 * i + 1, i, stem, i,
                        2 * i + 2);
        fprintf(o, "\t} = 1;\n} = 0x20000000;\n");
        CHECK_EQ(fclose(o), 0);
        return text;
}

/* The C of procedures' argument types: one set of wrappers per type, what
 * ever their names (hostile test, h2: the generator remembered the types it
 * had done in 8 KiB of text, and each name in 300 bytes; past 8 KiB of
 * names it wrote a type's wrappers again, which did not compile, and two
 * names alike in their first 300 bytes got one set, so the second's were
 * missing). */
TEST(procedures_of_many_or_long_argument_types_compile) {
        setup();
        char err[4096];
        char *text = many_argument_types(300, 40); /* 300 x 40 B of names */
        CHECK_EQ(run_idl("many.x", text, NULL, err, sizeof(err)), 0);
        free(text);
        CHECK(compiles("many", PROJECT_WARNINGS));
        text = many_argument_types(3, 350);
        CHECK_EQ(run_idl("long.x", text, NULL, err, sizeof(err)), 0);
        free(text);
        CHECK(compiles("long", PROJECT_WARNINGS));
        teardown();
}

/* The names the generated C makes from the file's (T_encode, enc_T,
 * V_handlers, PREFIX_proc, PREFIX_proc_start...) and those the C headers
 * it includes declare: a file whose names would clash with them is an
 * error at its position, never C that does not compile (hostile test, h2:
 * each of these was accepted, and its C refused by the compiler). */
TEST(names_made_by_the_generated_c_or_declared_by_its_headers_are_errors) {
        setup();
        expect_error("typedef int a;\ntypedef int a_encode;", "1:1",
                     "'a_encode', the encoder of type a in the generated C, is also type a_encode (line 2)");
        expect_error("struct s { int x1; };\nenum e { s_free = 1 };", "1:1", "is also an enumerator of e");
        expect_error("typedef int enc_q;\ntypedef int q;", "2:1", "'enc_q', the encoding function of type q");
        expect_error("program P { version V { int ADD(int) = 1; int ADD_START(int) = 2; } = 1; } = 1;", "1:43",
                     "'bad_add_start', the stub of procedure ADD_START in the generated C, is also the asynchronous "
                     "stub of procedure ADD");
        expect_error("program P { version V { int ADD(int) = 1; } = 1;\n"
                     " version W { int ADD(int) = 1; int ADD_V1(int) = 2; } = 2; } = 1;", "2:32",
                     "'bad_add_v1', the stub of procedure ADD_V1");
        expect_error("typedef int bad_add;\nprogram P { version V { int ADD(int) = 1; } = 1; } = 1;", "2:25",
                     "'bad_add', the stub of procedure ADD in the generated C, is also type bad_add");
        expect_error("typedef int v_desc;\nprogram P { version V { int ADD(int) = 1; } = 1; } = 1;", "2:13",
                     "the description of version V");
        expect_error("enum e { add_args = 1 };\nprogram P { version V { int ADD(int, hyper) = 1; } = 1; } = 1;",
                     "2:25", "'add_args', type add_args (made by ipcf-idl) in the generated C, is also an enumerator");
        expect_error("const a_encode = 1;\ntypedef int a;", "1:1",
                     "'a_encode' is a constant, a #define in the generated C, and also the encoder of type a");
        expect_error("program P { version V { void F(void) = 1; } = 1; } = 1;\nconst bad_f = 1;", "2:1",
                     "also the stub of procedure F");
        /* a #define of a handler's member: a procedure named in lower case, or a constant */
        expect_error("program P { version V { int add(int) = 1; } = 1; } = 1;", "1:25",
                     "'add' is a procedure, a #define in the generated C, and also the member of v_handlers for "
                     "procedure add's handler");
        expect_error("const add = 8;\nprogram P { version V { int ADD(int) = 1; } = 1; } = 1;", "1:1",
                     "'add' is a constant, a #define in the generated C, and also the member of v_handlers");
        expect_error("struct timeval { int sec; int usec; };", "1:1", "is declared by the C headers it includes");
        expect_error("enum e { free = 1 };", "1:10", "'free', an enumerator of e in the generated C, is declared");
        expect_error("typedef hyper time_t;", "1:1", "'time_t', type time_t");
        char err[4096];
        const char *call = "program P { version V { void CALL(void) = 1; } = 1; } = 1;\n";
        CHECK_EQ(run_idl("ipcf.x", call, NULL, err, sizeof(err)), 1);
        CHECK(strstr(err, "ipcf.x:1:25: error: 'ipcf_call', the stub of procedure CALL in the generated C, is a name "
                          "of libipcf's"));
        CHECK_EQ(run_idl("ipcf.x", call, "-p svc", err, sizeof(err)), 0);
        /* names alike but not the same stay legal, and compile; so does an
         * enum named v, as the generated functions' parameter (its decoder
         * cast to the type by name, which the parameter hid) */
        const char *near = "typedef int a;\ntypedef int a_enc;\nstruct timevalue { int sec; };\n"
                           "enum e { frees = 1 };\nenum v { VA = 1, VB = 2 };\nstruct o { v v; };\n"
                           "program P { version V { int ADD(int) = 1; int ADD_STARTED(a) = 2; } = 1;\n"
                           " version W { int ADD(int) = 1; int ADD_V3(a_enc) = 2; } = 2; } = 1;\n";
        CHECK_EQ(run_idl("near.x", near, NULL, err, sizeof(err)), 0);
        CHECK(compiles("near", PROJECT_WARNINGS));
        teardown();
        CHECK_EQ(failures, 0);
}
