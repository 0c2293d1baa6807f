/*
 * cache.c — the directory's cache of (name, host) records (see cache.h).
 *
 * The table hashes names with SipHash (libsodium's crypto_shorthash) under a
 * random key per cache, so names chosen by whoever may write to etcd cannot
 * pile into one chain. The bucket array doubles when names outnumber
 * buckets.
 *
 * INVARIANTS: a dir_name exists iff it has at least one entry;
 * n_entries == the sum of the names' n_entries <= max_entries;
 * bytes == the sizes of every name, entry and the bucket array.
 */
#include "daemon/directory/cache.h"

#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static unsigned char hash_key[crypto_shorthash_KEYBYTES];
static bool hash_key_set;

static uint64_t name_hash(const char *name) {
        uint64_t h;
        crypto_shorthash((unsigned char *)&h, (const unsigned char *)name, strlen(name), hash_key);
        return h;
}

void dir_cache_init(dir_cache *c, size_t max_entries) {
        memset(c, 0, sizeof(*c));
        c->max_entries = max_entries;
        if (!hash_key_set) {
                if (sodium_init() < 0)
                        abort(); /* libsodium cannot run at all: nothing of ours could */
                randombytes_buf(hash_key, sizeof(hash_key));
                hash_key_set = true;
        }
}

static void name_free(dir_cache *c, dir_name *n) {
        c->bytes -= sizeof(*n) + strlen(n->name) + 1;
        c->n_names--;
        free(n);
}

void dir_cache_deinit(dir_cache *c) {
        for (size_t i = 0; i < c->n_buckets; i++) {
                dir_name *n = c->buckets[i];
                while (n) {
                        dir_name *next = n->next;
                        dlist_for_each_safe(pos, tmp, &n->entries)
                                free(dlist_entry(pos, dir_entry, link));
                        free(n);
                        n = next;
                }
        }
        free(c->buckets);
        size_t max = c->max_entries;
        memset(c, 0, sizeof(*c));
        c->max_entries = max;
}

dir_name *dir_cache_find(const dir_cache *c, const char *name) {
        if (!c->n_buckets)
                return NULL;
        uint64_t h = name_hash(name);
        for (dir_name *n = c->buckets[h & (c->n_buckets - 1)]; n; n = n->next)
                if (n->hash == h && !strcmp(n->name, name))
                        return n;
        return NULL;
}

static dir_entry *entry_of(const dir_name *n, const char *host) {
        dlist_for_each(pos, &n->entries) {
                dir_entry *e = dlist_entry(pos, dir_entry, link);
                if (!strcmp(e->host, host))
                        return e;
        }
        return NULL;
}

/* Double the bucket array (or make the first one). */
static int grow(dir_cache *c) {
        size_t nb = c->n_buckets ? c->n_buckets * 2 : 64;
        dir_name **b = calloc(nb, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_buckets; i++)
                for (dir_name *n = c->buckets[i], *next; n; n = next) {
                        next = n->next;
                        n->next = b[n->hash & (nb - 1)];
                        b[n->hash & (nb - 1)] = n;
                }
        free(c->buckets);
        c->bytes += (nb - c->n_buckets) * sizeof(*b);
        c->buckets = b;
        c->n_buckets = nb;
        return 0;
}

static dir_name *name_add(dir_cache *c, const char *name) {
        if (c->n_names >= c->n_buckets && grow(c) < 0)
                return NULL;
        size_t len = strlen(name);
        dir_name *n = calloc(1, sizeof(*n) + len + 1);
        if (!n)
                return NULL;
        memcpy(n->name, name, len + 1);
        n->hash = name_hash(name);
        dlist_init(&n->entries);
        dir_name **b = &c->buckets[n->hash & (c->n_buckets - 1)];
        n->next = *b;
        *b = n;
        c->n_names++;
        c->bytes += sizeof(*n) + len + 1;
        return n;
}

static void name_unlink(dir_cache *c, dir_name *n) {
        for (dir_name **p = &c->buckets[n->hash & (c->n_buckets - 1)]; *p; p = &(*p)->next)
                if (*p == n) {
                        *p = n->next;
                        break;
                }
        name_free(c, n);
}

/* Bytes of an entry holding rec. */
static size_t entry_size(const dir_record *rec) {
        size_t s = sizeof(dir_entry) + strlen(rec->host) + strlen(rec->addr) + strlen(rec->fp) + strlen(rec->key) + 4;
        for (unsigned i = 0; i < rec->n_attrs; i++)
                s += strlen(rec->attrs[i].key) + strlen(rec->attrs[i].val) + 2;
        return s;
}

static const char *pack(char **p, const char *s) {
        size_t n = strlen(s) + 1;
        memcpy(*p, s, n);
        const char *ret = *p;
        *p += n;
        return ret;
}

static dir_entry *entry_new(const dir_record *rec, size_t size) {
        dir_entry *e = calloc(1, size);
        if (!e)
                return NULL;
        char *p = e->data;
        e->host = pack(&p, rec->host);
        e->addr = pack(&p, rec->addr);
        e->fp = pack(&p, rec->fp);
        e->key = pack(&p, rec->key);
        e->n_attrs = (uint8_t)MIN(rec->n_attrs, (unsigned)DIR_ATTRS_MAX);
        for (unsigned i = 0; i < e->n_attrs; i++) {
                e->attr_key[i] = pack(&p, rec->attrs[i].key);
                e->attr_val[i] = pack(&p, rec->attrs[i].val);
        }
        dlist_init(&e->link);
        return e;
}

int dir_cache_put(dir_cache *c, const dir_record *rec, int64_t mod_revision, int64_t lease) {
        dir_name *n = dir_cache_find(c, rec->name);
        dir_entry *old = n ? entry_of(n, rec->host) : NULL;
        if (old && old->mod_revision > mod_revision) {
                old->epoch = c->epoch; /* seen, just older news */
                return DIR_SAME;
        }
        if (!old && c->n_entries >= c->max_entries) {
                c->overflowed = true;
                return -ENOSPC;
        }
        size_t size = entry_size(rec);
        dir_entry *e = entry_new(rec, size);
        if (!e)
                return -ENOMEM;
        e->size = size;
        e->mod_revision = mod_revision;
        e->lease = lease;
        e->since_ns = now_ns();
        e->epoch = c->epoch;
        bool new_name = !n;
        if (!n && !(n = name_add(c, rec->name))) {
                free(e);
                return -ENOMEM;
        }
        e->name = n;
        if (old) {
                /* Same place in the list: the round robin is not disturbed. */
                e->link.next = old->link.next;
                e->link.prev = old->link.prev;
                old->link.prev->next = &e->link;
                old->link.next->prev = &e->link;
                c->bytes -= old->size;
                free(old);
                c->bytes += size;
                return DIR_SAME;
        }
        dlist_add_tail(&n->entries, &e->link);
        n->n_entries++;
        c->n_entries++;
        c->bytes += size;
        return new_name ? DIR_NAME_UP : DIR_HOST_UP;
}

/* Unlink and free e; the name goes with its last entry. */
static int entry_remove(dir_cache *c, dir_entry *e) {
        dir_name *n = e->name;
        dlist_del(&e->link);
        c->bytes -= e->size;
        free(e);
        n->n_entries--;
        c->n_entries--;
        if (n->n_entries)
                return DIR_HOST_DOWN;
        name_unlink(c, n);
        return DIR_NAME_DOWN;
}

int dir_cache_del(dir_cache *c, const char *name, const char *host, int64_t mod_revision) {
        dir_name *n = dir_cache_find(c, name);
        dir_entry *e = n ? entry_of(n, host) : NULL;
        if (!e)
                return -ENOENT;
        if (mod_revision && e->mod_revision > mod_revision)
                return DIR_SAME; /* a delete older than what we hold */
        return entry_remove(c, e);
}

dir_entry *dir_cache_pick(dir_cache *c, const char *name, const char *host, const char *skip_host) {
        dir_name *n = dir_cache_find(c, name);
        if (!n)
                return NULL;
        if (host && *host)
                return entry_of(n, host);
        /* Start after the last one taken; at most one lap. */
        uint32_t start = n->rr % n->n_entries, i = 0;
        dir_entry *found = NULL;
        dlist_for_each(pos, &n->entries) {
                dir_entry *e = dlist_entry(pos, dir_entry, link);
                bool ok = !skip_host || strcmp(e->host, skip_host) != 0;
                if (ok && i >= start) {
                        n->rr = i + 1;
                        return e;
                }
                if (ok && !found) {
                        found = e;
                        n->rr = i + 1;
                }
                i++;
        }
        return found;
}

void dir_entry_to_record(const dir_entry *e, dir_record *ret) {
        str_copy(ret->name, e->name->name, sizeof(ret->name));
        str_copy(ret->host, e->host, sizeof(ret->host));
        str_copy(ret->addr, e->addr, sizeof(ret->addr));
        str_copy(ret->fp, e->fp, sizeof(ret->fp));
        str_copy(ret->key, e->key, sizeof(ret->key));
        ret->n_attrs = e->n_attrs;
        for (unsigned i = 0; i < e->n_attrs; i++) {
                str_copy(ret->attrs[i].key, e->attr_key[i], sizeof(ret->attrs[i].key));
                str_copy(ret->attrs[i].val, e->attr_val[i], sizeof(ret->attrs[i].val));
        }
}

void dir_cache_walk(const dir_cache *c, bool (*fn)(void *ctx, const dir_entry *e), void *ctx) {
        for (size_t i = 0; i < c->n_buckets; i++)
                for (const dir_name *n = c->buckets[i]; n; n = n->next)
                        dlist_for_each(pos, &n->entries)
                                if (!fn(ctx, dlist_entry(pos, dir_entry, link)))
                                        return;
}

void dir_cache_mark(dir_cache *c) {
        c->epoch++;
        c->overflowed = false;
}

void dir_cache_forget_revisions(dir_cache *c) {
        for (size_t i = 0; i < c->n_buckets; i++)
                for (dir_name *n = c->buckets[i]; n; n = n->next)
                        dlist_for_each(pos, &n->entries)
                                dlist_entry(pos, dir_entry, link)->mod_revision = 0;
}

size_t dir_cache_sweep(dir_cache *c, int64_t up_to,
                       void (*fn)(void *ctx, const char *name, const char *host, int change), void *ctx) {
        size_t removed = 0;
        for (size_t i = 0; i < c->n_buckets; i++) {
                dir_name *n = c->buckets[i];
                while (n) {
                        dir_name *next = n->next; /* n may go with its last entry */
                        dlist_for_each_safe(pos, tmp, &n->entries) {
                                dir_entry *e = dlist_entry(pos, dir_entry, link);
                                if (e->epoch == c->epoch || e->mod_revision > up_to)
                                        continue;
                                char name[IPCF_NAME_MAX + 1], host[DIR_HOST_MAX + 1];
                                str_copy(name, n->name, sizeof(name));
                                str_copy(host, e->host, sizeof(host));
                                bool last = n->n_entries == 1;
                                int change = entry_remove(c, e);
                                removed++;
                                if (fn)
                                        fn(ctx, name, host, change);
                                if (last)
                                        break;
                        }
                        n = next;
                }
        }
        return removed;
}
