/*
 * lex.h — the tokens of an interface file.
 *
 * Comments are C's (slash-star and double slash). A line whose first
 * non-blank character is '%' is rpcgen's pass-through text: skipped. A line
 * starting with '#' (a preprocessor directive) is an error: ipcf-idl runs no
 * preprocessor. Numbers are decimal, 0x hexadecimal or 0 octal, at most
 * 64 bits; the sign is a token of its own. Every token carries its position.
 */
#pragma once

#include "idl/ast.h"

enum idl_tok {
        TOK_EOF,
        TOK_IDENT,
        TOK_NUMBER,
        TOK_PUNCT, /* one character: { } ( ) [ ] < > ; , = : * - */
        TOK_ERROR,
};

typedef struct idl_token {
        enum idl_tok kind;
        const char *text; /* into the input, len bytes */
        size_t len;
        uint64_t num;     /* TOK_NUMBER */
        idl_pos pos;
} idl_token;

typedef struct idl_lexer {
        const char *src;
        size_t len, at;
        int line, col;
        const char *file;
        const char *error; /* TOK_ERROR: what is wrong */
} idl_lexer;

void idl_lex_init(idl_lexer *lx, const char *file, const char *src, size_t len);
idl_token idl_lex_next(idl_lexer *lx);
