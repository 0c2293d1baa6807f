/*
 * table.c — aligned text tables and JSON string literals for `ipcf ls`.
 *
 * A table collects every cell first (copied, owned by the table), then prints
 * each column padded to its widest cell. Cells are plain ASCII or UTF-8; the
 * width counts code points, not bytes, so "µs" aligns. Out of memory while
 * adding a cell drops the cell's text (prints empty), never crashes.
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonstr.h"

struct cli_table {
        unsigned ncols;
        bool *right;    /* per column: right-aligned */
        char **cells;   /* row-major, n_cells of them */
        size_t n_cells, cap;
};

/* An empty table; alignment per column is fixed at creation. */
cli_table *cli_table_new(unsigned ncols, const bool *right) {
        cli_table *t = calloc(1, sizeof(*t));
        if (!t)
                return NULL;
        t->ncols = ncols;
        t->right = calloc(ncols, sizeof(bool));
        if (!t->right) {
                free(t);
                return NULL;
        }
        if (right)
                memcpy(t->right, right, ncols * sizeof(bool));
        return t;
}

/* Cells fill rows left to right; the array doubles as it grows. */
void cli_table_add(cli_table *t, const char *fmt, ...) {
        if (!t)
                return;
        if (t->n_cells == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 64;
                char **p = realloc(t->cells, cap * sizeof(char *));
                if (!p)
                        return;
                t->cells = p;
                t->cap = cap;
        }
        char *cell = NULL;
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&cell, fmt, ap) < 0)
                cell = NULL;
        va_end(ap);
        t->cells[t->n_cells++] = cell;
}

/* Display width of a UTF-8 string: its code points. */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (; s && *s; s++)
                if (((unsigned char)*s & 0xC0) != 0x80)
                        w++;
        return w;
}

/* Two passes: widest cell per column, then padded output. The last column
 * is not padded on the right (no trailing spaces). */
void cli_table_print(const cli_table *t, FILE *out) {
        if (!t || !t->n_cells)
                return;
        size_t *width = calloc(t->ncols, sizeof(size_t));
        if (!width)
                return;
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t w = text_width(t->cells[i]);
                if (w > width[i % t->ncols])
                        width[i % t->ncols] = w;
        }
        for (size_t i = 0; i < t->n_cells; i++) {
                unsigned col = (unsigned)(i % t->ncols);
                const char *cell = t->cells[i] ? t->cells[i] : "";
                int pad = (int)(width[col] - text_width(cell));
                bool last = col + 1 == t->ncols || i + 1 == t->n_cells;
                if (t->right[col])
                        fprintf(out, "%*s%s", pad, "", cell);
                else
                        fprintf(out, "%s%*s", cell, last ? 0 : pad, "");
                fputs(last ? "\n" : "  ", out);
        }
        free(width);
}

cli_table *cli_table_free(cli_table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

/* RFC 8259 string: quote, backslash and control bytes escaped. */
void cli_json_string(FILE *out, const char *s) {
        json_put_string(out, s ? s : "", s ? strlen(s) : 0);
}

void cli_json_attrs(FILE *out, const char *a) {
        fputc('{', out);
        for (const char *sep = ""; *a; sep = ",") {
                size_t ll = strcspn(a, "\n"), kl = strcspn(a, "=");
                char k[64], v[256];
                snprintf(k, sizeof(k), "%.*s", (int)(kl < ll ? kl : ll), a);
                snprintf(v, sizeof(v), "%.*s", kl < ll ? (int)(ll - kl - 1) : 0, a + kl + 1);
                fputs(sep, out);
                cli_json_string(out, k);
                fputc(':', out);
                cli_json_string(out, v);
                a += ll + (a[ll] == '\n');
        }
        fputc('}', out);
}
