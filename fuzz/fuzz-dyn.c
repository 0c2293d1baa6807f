/*
 * fuzz-dyn.c — libFuzzer target for `ipcf rpc call`'s values without
 * generated code (src/idl/dyn.c): a server's reply decoded by its
 * description and printed as JSON, and the user's JSON parsed and encoded.
 * A reply's bytes are untrusted (any server may answer), so is the JSON.
 *
 * Input: byte 0 picks the direction, byte 1 the type (among the named
 * types of INTERFACE below: every construct of the language, lists and
 * recursion included), the rest is the data.
 *   even: XDR in. dyn_print must not crash, leak, recurse past its bound
 *         or read outside the input; when it succeeds, what it printed
 *         parses and encodes back to the very bytes it consumed (unless it
 *         printed what the parser is documented to refuse: a \u00XX escape
 *         of a byte that is not ASCII, or null for a float that was NaN or
 *         infinite).
 *   odd:  JSON in (NUL-terminated here). json_parse and dyn_encode must not
 *         crash; when both succeed, the bytes decode and print, consuming
 *         them all, and that printed JSON encodes to the same bytes again.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idl/dyn.h"
#include "idl/emit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char INTERFACE[] =
        "const MAXNAME = 16;\n"
        "enum color { RED = 0, GREEN = 1, BLUE = 2, FAR = -100, BIG = 0x7fffffff };\n"
        "typedef string name<MAXNAME>;\n"
        "typedef opaque digest[4];\n"
        "struct scalars { int i; unsigned int u; hyper h; unsigned hyper uh; float f; double d; bool b;"
        " color c; };\n"
        "struct arrays { int fixed[3]; opaque fb[5]; color colors<3>; opaque small<7>; string label<MAXNAME>;"
        " scalars many<>; digest sums[2]; name names<2>; };\n"
        "struct node { int value; name tag; node *next; };\n"
        "struct tree { int value; tree *left; tree *right; };\n"
        "union result switch (int status) { case 0: scalars ok; case 1: case 2: string why<64>;"
        " case -5: void; default: opaque raw<16>; };\n"
        "union kinded switch (int kind) { case 1: int kind; case 2: name label; };\n"
        "union maybe switch (bool present) { case TRUE: node n; case FALSE: void; };\n"
        "union by_uint switch (unsigned int k) { case 4000000000: double big; case 7: digest o; };\n"
        "struct everything { scalars s; arrays a; node *list; result r; kinded k; maybe m; by_uint bu;"
        " tree *t; result results<4>; };\n";

static idl_file *file;
static const idl_def *types[64];
static size_t n_types;

static void setup(void) {
        file = idl_file_new("<fuzz>");
        idl_diag d = { 0 };
        if (idl_parse(file, INTERFACE, sizeof(INTERFACE) - 1, &d) < 0 || idl_check(file, &d) < 0)
                abort();
        idl_diag_free(&d);
        for (size_t i = 0; i < file->n_defs && n_types < 64; i++) {
                const idl_def *df = file->defs[i];
                if (df->kind != IDL_DEF_CONST && df->kind != IDL_DEF_PROGRAM)
                        types[n_types++] = df;
        }
}

/* Print a value of t from in[0..n): the text (malloc'ed, NULL if it did
 * not decode) and the bytes it took. */
static char *print(const idl_type *t, const uint8_t *in, size_t n, size_t *used) {
        char *text = NULL;
        size_t len = 0;
        FILE *o = open_memstream(&text, &len);
        if (!o)
                abort();
        ipcf_xdr x;
        ipcf_xdr_decoder(&x, in, n);
        int r = dyn_print(t, &x, o);
        fclose(o);
        *used = x.pos;
        if (r < 0) {
                free(text);
                return NULL;
        }
        return text;
}

/* Encode JSON text as t: 0 with the bytes in *x (release it), or < 0. */
static int encode(const idl_type *t, const char *text, ipcf_xdr *x) {
        char err[256];
        json *j = json_parse(text, err, sizeof(err));
        if (!j)
                return -1;
        ipcf_xdr_encoder(x, NULL, 0);
        int r = dyn_encode(t, j, x, err, sizeof(err));
        json_free(j);
        if (r < 0)
                ipcf_xdr_release(x);
        return r;
}

/* What the printer writes that the parser refuses by design. */
static bool refused_by_design(const char *text) {
        if (strstr(text, "null"))
                return true; /* a float that was NaN or infinite (or optional data: then it encodes) */
        for (const char *p = text; (p = strstr(p, "\\u00")); p += 4)
                if (p[4] >= '8')
                        return true;
        return false;
}

static void xdr_in(const idl_type *t, const uint8_t *in, size_t n) {
        size_t used;
        char *text = print(t, in, n, &used);
        if (!text)
                return;
        ipcf_xdr x;
        if (encode(t, text, &x) < 0) {
                if (!refused_by_design(text))
                        abort();
        } else {
                if (x.pos != used || memcmp(x.buf, in, used) != 0)
                        abort();
                ipcf_xdr_release(&x);
        }
        free(text);
}

static void json_in(const idl_type *t, const uint8_t *in, size_t n) {
        char *text = malloc(n + 1);
        if (!text)
                return;
        memcpy(text, in, n);
        text[n] = 0;
        ipcf_xdr x;
        if (encode(t, text, &x) == 0) {
                size_t used;
                char *back = print(t, x.buf, x.pos, &used);
                if (!back || used != x.pos)
                        abort();
                ipcf_xdr y;
                if (encode(t, back, &y) == 0) {
                        if (y.pos != x.pos || memcmp(y.buf, x.buf, x.pos) != 0)
                                abort();
                        ipcf_xdr_release(&y);
                } else if (!refused_by_design(back)) {
                        abort();
                }
                free(back);
                ipcf_xdr_release(&x);
        }
        free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!file)
                setup();
        if (size < 2)
                return 0;
        const idl_def *df = types[data[1] % n_types];
        idl_type t = { .kind = IDL_NAMED, .name = df->name, .def = (idl_def *)df };
        if (data[0] & 1)
                json_in(&t, data + 2, size - 2);
        else
                xdr_in(&t, data + 2, size - 2);
        return 0;
}
