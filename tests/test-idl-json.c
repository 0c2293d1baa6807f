/*
 * test-idl-json.c — the JSON <-> XDR mapping of `ipcf rpc call`
 * (src/idl/dyn.c), in process, on types a hostile user reaches from the
 * shell: numbers that are not JSON or do not fit their type, strings with
 * escapes cut off at the end of the text, UTF-8 strings printed back,
 * quadruples given as the wrong JSON type. Each bad input fails with a
 * message (the CLI's exit status 2), never a crash or a value that is not
 * the one given.
 */
#include <inttypes.h>

#include "idl/ast.h"
#include "idl/dyn.h"
#include "support/test.h"

#define CHECK_MSG_STR(got, want)                                                                 \
        do {                                                                                      \
                if (strcmp((got), (want)))                                                        \
                        test_fail(__FILE__, __LINE__, "got %s, want %s", (got), (want));          \
        } while (0)

static const char *const iface =
        "struct nums { int i; unsigned int u; hyper h; float f; double d; };\n"
        "typedef string str<>;\n"
        "typedef quadruple quad;\n"
        "typedef int i32;\n"
        "typedef unsigned int u32;\n"
        "typedef hyper i64;\n"
        "typedef unsigned hyper u64;\n"
        "enum col { RED = 1, GREEN = 2 };\n";

static idl_file *load(void) {
        idl_file *f = idl_file_new("t.x");
        idl_diag d = { 0 };
        CHECK(f);
        CHECK_EQ(idl_parse(f, iface, strlen(iface), &d), 0);
        CHECK_EQ(idl_check(f, &d), 0);
        idl_diag_free(&d);
        return f;
}

static const idl_type *type_of(idl_file *f, const char *name) {
        static idl_type t;
        t = (idl_type){ .kind = IDL_NAMED, .name = name, .def = idl_find(f, name) };
        CHECK(t.def);
        return &t;
}

/* Encode text as a value of type name: 0 with the bytes in x, or the error
 * with its message in err (the JSON's or the encoding's). */
static int encode(idl_file *f, const char *name, const char *text, ipcf_xdr *x, char *err, size_t cap) {
        ipcf_xdr_encoder(x, NULL, 0);
        json *j = json_parse(text, err, cap);
        if (!j)
                return -EINVAL;
        int r = dyn_encode(type_of(f, name), j, x, err, cap);
        json_free(j);
        return r;
}

/* Decode buf[0..len) as a value of type name and print it as JSON: the
 * text (heap), or NULL if printing failed or left bytes over. */
static char *print_back(idl_file *f, const char *name, const void *buf, size_t len) {
        char *out = NULL;
        size_t n = 0;
        FILE *o = open_memstream(&out, &n);
        CHECK(o);
        ipcf_xdr y;
        ipcf_xdr_decoder(&y, buf, len);
        int r = dyn_print(type_of(f, name), &y, o);
        if (r == 0)
                r = ipcf_xdr_end(&y);
        fclose(o);
        if (r < 0) {
                free(out);
                return NULL;
        }
        return out;
}

static void expect_bad(idl_file *f, const char *name, const char *text, const char *what) {
        char err[256];
        ipcf_xdr x;
        int r = encode(f, name, text, &x, err, sizeof(err));
        if (r == 0 || !strstr(err, what))
                test_fail(__FILE__, __LINE__, "%s as %s: %d '%s', wanted an error with '%s'", text, name, r, err,
                          what);
        ipcf_xdr_release(&x);
}

TEST(json_numbers_are_json_numbers_of_the_types_range) {
        idl_file *f = load();
        const char *ok = "{\"i\": -2147483648, \"u\": 4294967295, \"h\": -0, \"f\": 3.5e2, \"d\": -1.25E-3}";
        char err[256];
        ipcf_xdr x;
        CHECK_EQ(encode(f, "nums", ok, &x, err, sizeof(err)), 0);
        CHECK_EQ(x.pos, 4 + 4 + 8 + 4 + 8);
        ipcf_xdr_release(&x);
        /* not JSON: before, "1-2" was taken as 1 and "01" as 1 */
        expect_bad(f, "nums", "{\"i\": 1-2, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 0}", "JSON");
        expect_bad(f, "nums", "{\"i\": 1+5, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 0}", "JSON");
        expect_bad(f, "nums", "{\"i\": 01, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 0}", "leading zero");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 1., \"d\": 0}", "after '.'");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 1.5.5}", "JSON");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 2e}", "exponent");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 1e5-3}", "JSON");
        /* out of the type's range: before, float 1e39 went as infinity */
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 1e39, \"d\": 0}", "out of range of float");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": -3.5e38, \"d\": 0}", "out of range of float");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 1e999}", "out of range of double");
        expect_bad(f, "nums", "{\"i\": 2147483648, \"u\": 0, \"h\": 0, \"f\": 0, \"d\": 0}", "out of range");
        expect_bad(f, "nums", "{\"i\": 0, \"u\": -1, \"h\": 0, \"f\": 0, \"d\": 0}", "out of range");
        idl_file_free(f);
}

/* An integer may be written as any JSON number whose value is whole
 * (hostile test, h3: `ipcf rpc call` refused 1e3 for an int, "expected an
 * integer"): the value is taken exactly, from the text, never through a
 * double; a fraction, or a value past the type, is an error that says so. */
static void expect_int(idl_file *f, const char *name, const char *text, uint64_t want) {
        char err[256] = "";
        ipcf_xdr x;
        if (encode(f, name, text, &x, err, sizeof(err)) != 0)
                test_fail(__FILE__, __LINE__, "%s as %s: %s", text, name, err);
        ipcf_xdr y;
        ipcf_xdr_decoder(&y, x.buf, x.pos);
        uint64_t got = 0;
        if (!strcmp(name, "i32") || !strcmp(name, "u32") || !strcmp(name, "col")) {
                uint32_t v = 0;
                CHECK_EQ(ipcf_xdr_get_u32(&y, &v), 0);
                got = !strcmp(name, "u32") ? v : (uint64_t)(int64_t)(int32_t)v;
        } else {
                CHECK_EQ(ipcf_xdr_get_u64(&y, &got), 0);
        }
        CHECK_EQ(ipcf_xdr_end(&y), 0);
        if (got != want)
                test_fail(__FILE__, __LINE__, "%s as %s: %" PRIu64 ", want %" PRIu64, text, name, got, want);
        ipcf_xdr_release(&x);
}

TEST(an_integer_may_be_any_json_number_whose_value_is_whole) {
        idl_file *f = load();
        expect_int(f, "i32", "1e3", 1000);
        expect_int(f, "i32", "1E+3", 1000);
        expect_int(f, "i32", "1.0e3", 1000);
        expect_int(f, "i32", "1000.000", 1000);
        expect_int(f, "i32", "10000e-1", 1000);
        expect_int(f, "i32", "-2.5e2", (uint64_t)-250);
        expect_int(f, "i32", "-2147483648", (uint64_t)(int64_t)INT32_MIN);
        expect_int(f, "i32", "-2.147483648e9", (uint64_t)(int64_t)INT32_MIN);
        expect_int(f, "i32", "0e999999999999999999999", 0);
        expect_int(f, "i32", "-0.0", 0);
        expect_int(f, "u32", "4.294967295e9", UINT32_MAX);
        expect_int(f, "u64", "1.8446744073709551615e19", UINT64_MAX);
        expect_int(f, "u64", "18446744073709551615", UINT64_MAX);
        expect_int(f, "i64", "-9.223372036854775808e18", (uint64_t)INT64_MIN);
        /* exact: 2^53 + 1 is not a double, and stays itself */
        expect_int(f, "i64", "9007199254740993", 9007199254740993ull);
        expect_int(f, "i64", "9.007199254740993e15", 9007199254740993ull);
        expect_int(f, "col", "2e0", 2);
        expect_int(f, "col", "2.0", 2);
        expect_bad(f, "i32", "1.5", "integer 1.5 has a fraction");
        expect_bad(f, "i32", "1e-3", "has a fraction");
        expect_bad(f, "i32", "1000.0001e1", "has a fraction");
        expect_bad(f, "i32", "2.147483648e9", "integer 2.147483648e9 out of range");
        expect_bad(f, "u32", "-1e0", "out of range");
        expect_bad(f, "u64", "1.8446744073709551616e19", "out of range");
        expect_bad(f, "i64", "9.223372036854775808e18", "out of range");
        expect_bad(f, "u64", "1e20", "out of range");
        expect_bad(f, "u64", "1e999999999999999999999", "out of range");
        expect_bad(f, "u64", "\"12\"", "expected an integer");
        expect_bad(f, "col", "2.5", "not a value of enum col");
        expect_bad(f, "col", "3e0", "not a value of enum col");
        idl_file_free(f);
}

TEST(escapes_cut_off_at_the_end_fail_inside_the_text) {
        idl_file *f = load();
        /* the text ends right after the backslash, or inside \u: the parser
         * stops there (ASan: no read past the terminator) */
        char *texts[] = { strdup("\"abc\\"), strdup("\"\\u"), strdup("\"\\u00"), strdup("\"\\u004") };
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                expect_bad(f, "str", texts[i], "JSON");
                free(texts[i]);
        }
        idl_file_free(f);
}

/* A string the text ends inside: before, the parser stepped past the
 * terminator and wrote the text after it into the message (fuzz-dyn found
 * it; ASan: a read past the end). */
TEST(a_string_cut_off_at_the_end_fails_inside_the_text) {
        idl_file *f = load();
        char *texts[] = { strdup("\""), strdup("\"abc"), strdup("[\"x") };
        for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                char err[256] = "";
                CHECK(json_parse(texts[i], err, sizeof(err)) == NULL);
                CHECK(strstr(err, "unterminated string near ''") != NULL);
                free(texts[i]);
        }
        idl_file_free(f);
}

/* A reply is held to what the generated decoders take: padding that is not
 * zero, or a string holding a NUL, fails -EBADMSG (before, both printed,
 * and the NUL as \u0000, which the parser refuses). fuzz-dyn found it. */
TEST(a_reply_with_padding_not_zero_or_a_nul_in_a_string_is_refused) {
        idl_file *f = load();
        static const uint8_t good[] = { 0, 0, 0, 2, 'h', 'i', 0, 0 };
        static const uint8_t pad[] = { 0, 0, 0, 2, 'h', 'i', 3, 0 };
        static const uint8_t nul[] = { 0, 0, 0, 3, 'h', 0, 'i', 0 };
        char *out = print_back(f, "str", good, sizeof(good));
        CHECK(out && strcmp(out, "\"hi\"") == 0);
        free(out);
        for (int i = 0; i < 2; i++) {
                ipcf_xdr y;
                ipcf_xdr_decoder(&y, i ? nul : pad, sizeof(good));
                FILE *o = fopen("/dev/null", "w");
                CHECK(o);
                CHECK_EQ(dyn_print(type_of(f, "str"), &y, o), -EBADMSG);
                fclose(o);
        }
        idl_file_free(f);
}

TEST(utf8_strings_come_back_as_they_went) {
        idl_file *f = load();
        char err[256];
        ipcf_xdr x;
        const char *in = "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \\\" \\u0001\"";
        CHECK_EQ(encode(f, "str", in, &x, err, sizeof(err)), 0);
        char *out = print_back(f, "str", x.buf, x.pos);
        CHECK(out);
        /* before: each byte of UTF-8 as \u00XX, another string when read back */
        CHECK_MSG_STR(out, in);
        free(out);
        ipcf_xdr_release(&x);
        /* bytes that are not UTF-8 are \u00XX (the JSON stays valid UTF-8) */
        uint8_t raw[] = { 0, 0, 0, 3, 0xc3, 0x28, 0xff, 0 };
        out = print_back(f, "str", raw, sizeof(raw));
        CHECK(out);
        CHECK_MSG_STR(out, "\"\\u00c3(\\u00ff\"");
        free(out);
        idl_file_free(f);
}

TEST(a_quadruple_of_the_wrong_json_type_fails_cleanly) {
        idl_file *f = load();
        /* before: n and b were read uninitialized when the value was not a
         * string (a free of garbage, or a leak of 16-byte mismatch) */
        expect_bad(f, "quad", "12", "hex");
        expect_bad(f, "quad", "[1]", "hex");
        expect_bad(f, "quad", "\"00ff\"", "16 bytes");
        char err[256];
        ipcf_xdr x;
        CHECK_EQ(encode(f, "quad", "\"000102030405060708090a0b0c0d0e0f\"", &x, err, sizeof(err)), 0);
        CHECK_EQ(x.pos, 16);
        ipcf_xdr_release(&x);
        idl_file_free(f);
}

/* ipcf rpc call counts nesting as generated code does (a level per
 * typedef, struct and union; none for an int): a value of the deepest
 * type ipcf-idl accepts (IPCF_XDR_MAX_DEPTH structs, each holding the one
 * before) is encoded from JSON and printed back. Before, the int inside
 * took a level of its own: "nested too deeply" one way, -ELOOP the other. */
TEST(a_value_as_deep_as_ipcf_idl_allows_goes_both_ways) {
        char *text = NULL, *json_text = NULL;
        size_t len = 0, jlen = 0;
        FILE *o = open_memstream(&text, &len), *jo = open_memstream(&json_text, &jlen);
        CHECK(o && jo);
        fprintf(o, "struct s0 { int x; };\n");
        for (unsigned k = 1; k < IPCF_XDR_MAX_DEPTH; k++)
                fprintf(o, "struct s%u { s%u x; };\n", k, k - 1);
        for (unsigned k = 0; k < IPCF_XDR_MAX_DEPTH; k++)
                fputs("{\"x\": ", jo);
        fputs("7", jo);
        for (unsigned k = 0; k < IPCF_XDR_MAX_DEPTH; k++)
                fputs("}", jo);
        fclose(o);
        fclose(jo);
        idl_file *f = idl_file_new("deep.x");
        idl_diag d = { 0 };
        CHECK_EQ(idl_parse(f, text, len, &d), 0);
        CHECK_EQ(idl_check(f, &d), 0);
        idl_diag_free(&d);
        char err[256], name[16];
        snprintf(name, sizeof(name), "s%u", IPCF_XDR_MAX_DEPTH - 1);
        ipcf_xdr x;
        if (encode(f, name, json_text, &x, err, sizeof(err)))
                test_fail(__FILE__, __LINE__, "encoding: %s", err);
        CHECK_EQ(x.pos, 4);
        char *out = print_back(f, name, x.buf, x.pos);
        CHECK(out);
        CHECK_EQ(strlen(out), strlen(json_text));
        free(out);
        ipcf_xdr_release(&x);
        free(text);
        free(json_text);
        idl_file_free(f);
}

/* A list (a struct whose last member is optional data of its own type) of
 * any length goes both ways, its nodes a level each as in generated code;
 * other nesting stays bounded (a tree's left spine deeper than
 * IPCF_XDR_MAX_DEPTH: "nested too deeply"); the JSON parser and json_free
 * take no stack per level (a million nested arrays). Before, the parser
 * refused JSON nested deeper than 256 ("nested too deeply") and the
 * encoder and the printer recursed into each node (a level each). */
TEST(a_list_of_any_length_goes_both_ways_and_other_nesting_is_bounded) {
        static const char deep_iface[] = "struct item { int value; item *next; };\n"
                                         "struct tree { int v; tree *l; tree *r; };\n";
        idl_file *f = idl_file_new("list.x");
        idl_diag d = { 0 };
        CHECK_EQ(idl_parse(f, deep_iface, strlen(deep_iface), &d), 0);
        CHECK_EQ(idl_check(f, &d), 0);
        idl_diag_free(&d);
        enum { NODES = 100000 };
        char *text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        CHECK(o);
        for (unsigned k = 0; k < NODES; k++)
                fprintf(o, "{\"value\": %u, \"next\": ", k);
        fputs("null", o);
        for (unsigned k = 0; k < NODES; k++)
                fputc('}', o);
        fclose(o);
        char err[256];
        ipcf_xdr x;
        if (encode(f, "item", text, &x, err, sizeof(err)))
                test_fail(__FILE__, __LINE__, "encoding: %s", err);
        CHECK_EQ(x.pos, (size_t)NODES * 8);
        char *out = print_back(f, "item", x.buf, x.pos);
        CHECK(out && strcmp(out, text) == 0);
        free(out);
        ipcf_xdr_release(&x);
        free(text);
        /* a tree's left spine: a level per node, bounded */
        text = NULL;
        o = open_memstream(&text, &len);
        CHECK(o);
        for (unsigned k = 0; k < 300; k++)
                fputs("{\"v\": 1, \"r\": null, \"l\": ", o);
        fputs("null", o);
        for (unsigned k = 0; k < 300; k++)
                fputc('}', o);
        fclose(o);
        expect_bad(f, "tree", text, "nested too deeply");
        free(text);
        /* the parser: a million levels, no stack per level */
        enum { LEVELS = 1000000 };
        text = malloc(2 * LEVELS + 1);
        CHECK(text);
        memset(text, '[', LEVELS);
        memset(text + LEVELS, ']', LEVELS);
        text[2 * LEVELS] = 0;
        json *j = json_parse(text, err, sizeof(err));
        if (!j)
                test_fail(__FILE__, __LINE__, "a million nested arrays: %s", err);
        json_free(j);
        text[2 * LEVELS - 1] = 0; /* one ']' short */
        CHECK(json_parse(text, err, sizeof(err)) == NULL);
        CHECK(strstr(err, "expected , or ]") != NULL);
        free(text);
        idl_file_free(f);
}
