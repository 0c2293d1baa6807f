/*
 * ast.c — the arena behind a syntax tree, and diagnostics.
 *
 * An arena is a list of blocks; idl_alloc never fails silently: on
 * exhaustion of memory it aborts (a compiler has nothing better to do, and
 * the fuzzer's inputs are small). Growable arrays (idl_push) double inside
 * the arena; the old copies stay until the file is freed (bounded by twice
 * the final size).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idl/ast.h"

struct idl_arena {
        struct idl_arena *next;
        size_t used, size;
        _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK (64u * 1024u)

static _Noreturn void out_of_memory(void) {
        fputs("ipcf-idl: out of memory\n", stderr);
        abort();
}

void *idl_alloc(idl_file *f, size_t size) {
        size = (size + 15) & ~(size_t)15;
        struct idl_arena *a = f->arena;
        if (!a || a->size - a->used < size) {
                size_t bs = size > ARENA_BLOCK ? size : ARENA_BLOCK;
                struct idl_arena *n = malloc(sizeof(*n) + bs);
                if (!n)
                        out_of_memory();
                n->next = a;
                n->used = 0;
                n->size = bs;
                f->arena = a = n;
        }
        void *p = a->data + a->used;
        a->used += size;
        memset(p, 0, size);
        return p;
}

char *idl_strndup(idl_file *f, const char *s, size_t n) {
        char *p = idl_alloc(f, n + 1);
        memcpy(p, s, n);
        return p;
}

char *idl_sprintf(idl_file *f, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        char *p = idl_alloc(f, (size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(p, (size_t)n + 1, fmt, ap);
        va_end(ap);
        return p;
}

void *idl_push(idl_file *f, void *array, size_t *n, size_t elem) {
        /* Capacity is the next power of two >= n (arrays start empty). */
        size_t cap = 1;
        while (cap < *n)
                cap *= 2;
        unsigned char *a = array;
        if (*n == 0 || *n == cap) {
                unsigned char *b = idl_alloc(f, (*n ? cap * 2 : 1) * elem);
                if (*n)
                        memcpy(b, a, *n * elem);
                a = b;
        }
        (*n)++;
        return a;
}

void idl_add_def(idl_file *f, idl_def *d) {
        d->index = f->n_defs;
        f->defs = idl_push(f, f->defs, &f->n_defs, sizeof(*f->defs));
        f->defs[d->index] = d;
}

idl_file *idl_file_new(const char *path) {
        idl_file *f = calloc(1, sizeof(*f));
        if (!f)
                out_of_memory();
        f->path = idl_strndup(f, path, strlen(path));
        return f;
}

void idl_file_free(idl_file *f) {
        if (!f)
                return;
        for (struct idl_arena *a = f->arena, *n; a; a = n) {
                n = a->next;
                free(a);
        }
        idl_table_free(&f->names);
        idl_table_free(&f->enumvals);
        free(f);
}

void idl_error(idl_diag *d, idl_pos pos, const char *fmt, ...) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        char line[700];
        int n = snprintf(line, sizeof(line), "%s:%d:%d: error: %s\n", pos.file ? pos.file : "<input>",
                         pos.line, pos.col, msg);
        if (n < 0)
                return;
        size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
        d->errors++;
        if (d->len + len + 1 > d->cap) {
                size_t cap = d->cap ? d->cap * 2 : 1024;
                while (cap < d->len + len + 1)
                        cap *= 2;
                char *t = realloc(d->text, cap);
                if (!t)
                        out_of_memory();
                d->text = t;
                d->cap = cap;
        }
        memcpy(d->text + d->len, line, len);
        d->len += len;
        d->text[d->len] = 0;
}

void idl_diag_free(idl_diag *d) {
        free(d->text);
        *d = (idl_diag){ 0 };
}
