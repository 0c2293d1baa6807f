/*
 * fuzz-idl.c — libFuzzer target for ipcf-idl's front end (src/idl: lexer,
 * parser, checker): any text either checks, or fails with errors of the form
 * "<input>:line:col: error: ..."; never a crash, a leak, unbounded recursion
 * or a read outside the input. A file that checks is also turned into C
 * (types, XDR code, stubs, description) to /dev/null, so the generators
 * see every accepted input too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idl/emit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size ? size : 1);
        if (!text)
                return 0;
        memcpy(text, data, size); /* exact size: the lexer must use len only */
        idl_file *f = idl_file_new("<input>");
        idl_diag d = { 0 };
        int r = idl_parse(f, text, size, &d);
        if (r == 0)
                r = idl_check(f, &d);
        if (r == 0)
                r = idl_check_scope(f, "p", &d);
        if (r < 0) {
                if (!d.text || strncmp(d.text, "<input>:", 8) != 0 || d.errors == 0)
                        abort();
        } else {
                if (d.errors)
                        abort();
                FILE *null = fopen("/dev/null", "w");
                if (null) {
                        idl_emit e = { .f = f, .prefix = "p", .header = "x.h", .source = text,
                                       .source_len = size, .h = null, .c = null };
                        emit_types(&e);
                        emit_rpc(&e);
                        fclose(null);
                }
        }
        idl_diag_free(&d);
        idl_file_free(f);
        free(text);
        return 0;
}
