/*
 * emit.h — the code generators of ipcf-idl, each writing one part of the
 * generated header or source for a checked file (see docs/RPC.md for the
 * generated API). They write to stdio streams and cannot fail but on I/O,
 * which the caller checks with ferror().
 */
#pragma once

#include <stdio.h>

#include "idl/ast.h"

typedef struct idl_emit {
        const idl_file *f;
        const char *prefix;   /* stub prefix: calc -> calc_add() */
        const char *header;   /* the generated header's file name, for #include */
        const char *source;   /* the interface file's text, for the description */
        size_t source_len;
        FILE *h, *c;
} idl_emit;

/* C type name of a type specifier (int32_t, a definition's name, ...). */
const char *emit_ctype(const idl_type *t);
/* Constants, types and their XDR functions (emit_xdr.c). */
void emit_types(idl_emit *e);
/* Client stubs, server dispatch tables and the description (emit_rpc.c). */
void emit_rpc(idl_emit *e);
