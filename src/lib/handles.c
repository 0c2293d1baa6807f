/*
 * handles.c — the table that turns small integers (port-ids, registration
 * handles) into objects.
 *
 * Rules: the table owns one reference to each object in it. A lookup takes a
 * reference under the table lock, so an object removed by one thread stays
 * alive until every call that looked it up has dropped its reference. Numbers
 * are reused lowest-first, like file descriptors.
 */
#include <errno.h>
#include <stdlib.h>

#include "lib/lib.h"

#define HANDLE_MAX (1 << 20)

struct slot {
        enum handle_kind kind;
        void *obj;
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table;
static int table_size;   /* allocated slots */
static int table_low;    /* no free slot below this index */

int handle_add(enum handle_kind kind, void *obj) {
        pthread_mutex_lock(&table_lock);
        int h = table_low;
        while (h < table_size && table[h].obj)
                h++;
        if (h == table_size) {
                int n = table_size ? table_size * 2 : 64;
                struct slot *t = n <= HANDLE_MAX ? realloc(table, sizeof(*t) * (size_t)n) : NULL;
                if (!t) {
                        pthread_mutex_unlock(&table_lock);
                        return -EMFILE;
                }
                for (int i = table_size; i < n; i++)
                        t[i] = (struct slot){ 0 };
                table = t;
                table_size = n;
        }
        table[h].kind = kind;
        table[h].obj = obj;
        table_low = h + 1;
        pthread_mutex_unlock(&table_lock);
        return h;
}

static void *handle_get(int h, enum handle_kind kind) {
        void *obj = NULL;
        pthread_mutex_lock(&table_lock);
        if (h >= 0 && h < table_size && table[h].obj && table[h].kind == kind) {
                obj = table[h].obj;
                /* refs is the first member of both port and reg */
                atomic_fetch_add((_Atomic int *)obj, 1);
        }
        pthread_mutex_unlock(&table_lock);
        return obj;
}

struct port *handle_get_port(int h) { return handle_get(h, HANDLE_PORT); }
struct reg *handle_get_reg(int h) { return handle_get(h, HANDLE_REG); }

void *handle_remove(int h, enum handle_kind kind) {
        void *obj = NULL;
        pthread_mutex_lock(&table_lock);
        if (h >= 0 && h < table_size && table[h].obj && table[h].kind == kind) {
                obj = table[h].obj;
                table[h].obj = NULL;
                if (h < table_low)
                        table_low = h;
        }
        pthread_mutex_unlock(&table_lock);
        return obj;
}
