/*
 * table.h — a small hash table for ipcf-idl's checker: names (and numbers)
 * to pointers, so every lookup of a file's check is O(1) on average and the
 * whole check O(n) in the size of the file (it was quadratic: 20,000
 * definitions took seconds).
 *
 * A key is a string (key != NULL, compared with strcmp; the table keeps the
 * pointer, not a copy: the string must outlive the table) or a number (key
 * NULL, num). Open addressing, linear probing, at most half full; memory of
 * its own (malloc), aborting when there is none, as the arena does.
 * A zeroed idl_table is empty and ready.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

typedef struct idl_slot {
        const char *key;
        int64_t num;
        void *value; /* NULL: the slot is free */
} idl_slot;

typedef struct idl_table {
        idl_slot *slots;
        size_t n, cap; /* cap: 0 or a power of two */
} idl_table;

/* The value of key (key NULL: of the number num), or NULL. */
void *idl_table_get(const idl_table *t, const char *key, int64_t num);
/* Map key to value (not NULL) unless it is mapped already: returns the
 * value it had (the table unchanged), or NULL once value is in. */
void *idl_table_put(idl_table *t, const char *key, int64_t num, void *value);
/* Free the table's memory; it is empty and ready again. */
void idl_table_free(idl_table *t);
