/*
 * lex.c — the tokenizer of ipcf-idl (see lex.h for what it accepts).
 *
 * The input is a byte array of known length (no terminator is read); any
 * byte outside the language is an error token with its position, never a
 * crash. Columns count bytes from 1.
 */
#include <ctype.h>
#include <string.h>

#include "idl/lex.h"

void idl_lex_init(idl_lexer *lx, const char *file, const char *src, size_t len) {
        *lx = (idl_lexer){ .src = src, .len = len, .line = 1, .col = 1, .file = file };
}

static int peek(const idl_lexer *lx, size_t k) {
        return lx->at + k < lx->len ? (unsigned char)lx->src[lx->at + k] : -1;
}

static void advance(idl_lexer *lx) {
        if (lx->src[lx->at] == '\n') {
                lx->line++;
                lx->col = 1;
        } else {
                lx->col++;
        }
        lx->at++;
}

static idl_pos here(const idl_lexer *lx) {
        return (idl_pos){ lx->file, lx->line, lx->col };
}

static idl_token error_at(idl_lexer *lx, idl_pos pos, const char *why) {
        lx->error = why;
        return (idl_token){ .kind = TOK_ERROR, .pos = pos };
}

/* Is the current position at the start of a line (only blanks before it)? */
static bool at_line_start(const idl_lexer *lx) {
        for (size_t i = lx->at; i > 0; i--) {
                char c = lx->src[i - 1];
                if (c == '\n')
                        return true;
                if (c != ' ' && c != '\t' && c != '\r')
                        return false;
        }
        return true;
}

/* Skip blanks and comments; 0, or -1 for an unterminated comment. */
static int skip_space(idl_lexer *lx, idl_pos *ret_pos) {
        for (;;) {
                int c = peek(lx, 0);
                if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                        advance(lx);
                } else if (c == '/' && peek(lx, 1) == '*') {
                        *ret_pos = here(lx);
                        advance(lx);
                        advance(lx);
                        while (!(peek(lx, 0) == '*' && peek(lx, 1) == '/')) {
                                if (peek(lx, 0) < 0)
                                        return -1;
                                advance(lx);
                        }
                        advance(lx);
                        advance(lx);
                } else if ((c == '/' && peek(lx, 1) == '/') || (c == '%' && at_line_start(lx))) {
                        while (peek(lx, 0) >= 0 && peek(lx, 0) != '\n')
                                advance(lx);
                } else {
                        return 0;
                }
        }
}

static idl_token number(idl_lexer *lx, idl_pos pos) {
        size_t start = lx->at;
        unsigned base = 10;
        if (peek(lx, 0) == '0' && (peek(lx, 1) == 'x' || peek(lx, 1) == 'X')) {
                base = 16;
                advance(lx);
                advance(lx);
                if (!isxdigit(peek(lx, 0)))
                        return error_at(lx, pos, "hexadecimal number without digits");
        } else if (peek(lx, 0) == '0') {
                base = 8;
        }
        uint64_t v = 0;
        for (;;) {
                int c = peek(lx, 0);
                unsigned d;
                if (c >= '0' && c <= '9')
                        d = (unsigned)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        d = (unsigned)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        d = (unsigned)(c - 'A' + 10);
                else if (isalpha(c) || c == '_')
                        return error_at(lx, pos, "bad character in a number");
                else
                        break;
                if (d >= base)
                        return error_at(lx, pos, base == 8 ? "bad digit in an octal number"
                                                           : "bad digit in a number");
                if (v > (UINT64_MAX - d) / base)
                        return error_at(lx, pos, "number too large");
                v = v * base + d;
                advance(lx);
        }
        return (idl_token){ .kind = TOK_NUMBER, .text = lx->src + start, .len = lx->at - start,
                            .num = v, .pos = pos };
}

idl_token idl_lex_next(idl_lexer *lx) {
        idl_pos cpos = here(lx);
        if (skip_space(lx, &cpos) < 0)
                return error_at(lx, cpos, "comment not closed");
        idl_pos pos = here(lx);
        int c = peek(lx, 0);
        if (c < 0)
                return (idl_token){ .kind = TOK_EOF, .pos = pos };
        if (c == '#' && at_line_start(lx))
                return error_at(lx, pos, "preprocessor directives are not supported "
                                         "(ipcf-idl runs no preprocessor)");
        if (isalpha(c)) {
                size_t start = lx->at;
                while (isalnum(peek(lx, 0)) || peek(lx, 0) == '_')
                        advance(lx);
                return (idl_token){ .kind = TOK_IDENT, .text = lx->src + start,
                                    .len = lx->at - start, .pos = pos };
        }
        if (isdigit(c))
                return number(lx, pos);
        if (strchr("{}()[]<>;,=:*-", c) && c != 0) {
                advance(lx);
                return (idl_token){ .kind = TOK_PUNCT, .text = lx->src + lx->at - 1, .len = 1,
                                    .pos = pos };
        }
        return error_at(lx, pos, c == '_' ? "an identifier must start with a letter"
                                          : "unexpected character");
}
