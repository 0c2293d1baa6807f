/*
 * table.c — the hash table of table.h: FNV-1a for strings, a 64-bit mixer
 * (splitmix64's) for numbers; grows by doubling when half full. Nothing is
 * ever removed, so a free slot ends every probe.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idl/table.h"

static uint64_t hash(const char *key, int64_t num) {
        uint64_t h;
        if (key) {
                h = 0xcbf29ce484222325ull;
                for (const unsigned char *p = (const unsigned char *)key; *p; p++)
                        h = (h ^ *p) * 0x100000001b3ull;
        } else {
                h = (uint64_t)num + 0x9e3779b97f4a7c15ull;
        }
        h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
        h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
        return h ^ (h >> 31);
}

static bool same(const idl_slot *s, const char *key, int64_t num) {
        return key ? s->key && !strcmp(s->key, key) : !s->key && s->num == num;
}

/* The slot of key, or the free slot where it would go (cap > 0). */
static idl_slot *find(const idl_table *t, const char *key, int64_t num) {
        size_t mask = t->cap - 1;
        for (size_t i = (size_t)hash(key, num) & mask;; i = (i + 1) & mask)
                if (!t->slots[i].value || same(&t->slots[i], key, num))
                        return &t->slots[i];
}

void *idl_table_get(const idl_table *t, const char *key, int64_t num) {
        return t->cap ? find(t, key, num)->value : NULL;
}

static void grow(idl_table *t) {
        idl_table n = { .cap = t->cap ? t->cap * 2 : 16 };
        n.slots = calloc(n.cap, sizeof(*n.slots));
        if (!n.slots) {
                fputs("ipcf-idl: out of memory\n", stderr);
                abort();
        }
        for (size_t i = 0; i < t->cap; i++)
                if (t->slots[i].value)
                        *find(&n, t->slots[i].key, t->slots[i].num) = t->slots[i];
        n.n = t->n;
        free(t->slots);
        *t = n;
}

void *idl_table_put(idl_table *t, const char *key, int64_t num, void *value) {
        if (2 * (t->n + 1) > t->cap)
                grow(t);
        idl_slot *s = find(t, key, num);
        if (s->value)
                return s->value;
        *s = (idl_slot){ .key = key, .num = num, .value = value };
        t->n++;
        return NULL;
}

void idl_table_free(idl_table *t) {
        free(t->slots);
        *t = (idl_table){ 0 };
}
