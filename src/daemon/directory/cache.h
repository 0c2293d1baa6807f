/*
 * cache.h — the directory's local copy of (name, host) records: a hash table
 * of names, each with the list of hosts that publish it. Pure data
 * structure: no I/O (sync.c feeds it from etcd, directory.c reads it).
 *
 * ORDER: every entry keeps the etcd mod_revision it came from; a put or a
 * delete older than what an entry holds is ignored, so answers of range
 * reads and watch events may arrive in any order and the newest wins.
 *
 * MARK AND SWEEP: a full re-listing stamps what it sees with a new epoch;
 * dir_cache_sweep() then removes the entries it did not see (they were
 * deleted while the cache was not watching).
 *
 * BOUNDS: at most max_entries entries; a put past it is refused (-ENOSPC)
 * and the cache is no longer complete (a miss then proves nothing). Each
 * entry is one allocation of its exact size; `bytes` counts the memory.
 *
 * LOOKUP SPREADING: dir_cache_pick() takes the hosts of a name round robin.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/core/dlist.h"
#include "daemon/directory/record.h"

typedef struct dir_entry {
        struct dlist link;           /* dir_name.entries */
        struct dir_name *name;
        int64_t mod_revision, lease;
        uint64_t since_ns;           /* CLOCK_MONOTONIC: when this version came in */
        uint64_t epoch;
        size_t size;                 /* of this allocation */
        const char *host, *addr, *fp, *key; /* into data[] */
        uint8_t n_attrs;
        const char *attr_key[DIR_ATTRS_MAX], *attr_val[DIR_ATTRS_MAX];
        char data[];
} dir_entry;

typedef struct dir_name {
        struct dir_name *next;       /* hash chain */
        uint64_t hash;
        struct dlist entries;        /* dir_entry.link */
        uint32_t n_entries;
        uint32_t rr;                 /* round robin position */
        char name[];
} dir_name;

typedef struct dir_cache {
        dir_name **buckets;
        size_t n_buckets;            /* a power of two, or 0 */
        size_t n_names, n_entries, max_entries;
        size_t bytes;
        uint64_t epoch;
        bool overflowed;             /* a put was refused since the last full listing */
} dir_cache;

/* What a put or delete did to the name's set of hosts. */
enum dir_change {
        DIR_SAME = 0,       /* nothing visible (older revision, same host updated) */
        DIR_HOST_UP = 1,    /* a host was added to a name that had others */
        DIR_NAME_UP = 2,    /* the name's first host */
        DIR_HOST_DOWN = 3,  /* a host left, others remain */
        DIR_NAME_DOWN = 4,  /* the name's last host left */
};

void dir_cache_init(dir_cache *c, size_t max_entries);
void dir_cache_deinit(dir_cache *c);

/* Insert or update rec (name, host, addr, fp, attrs) at mod_revision.
 * Returns an enum dir_change, -ENOSPC (full), -ENOMEM. */
int dir_cache_put(dir_cache *c, const dir_record *rec, int64_t mod_revision, int64_t lease);
/* Remove (name, host) if its entry is not newer than mod_revision
 * (0: whatever it is). Returns an enum dir_change, or -ENOENT. */
int dir_cache_del(dir_cache *c, const char *name, const char *host, int64_t mod_revision);

dir_name *dir_cache_find(const dir_cache *c, const char *name);
/* A host of name for a request: host if non-empty (that host only), else
 * the next one round robin, skipping skip_host (may be NULL). NULL if none. */
dir_entry *dir_cache_pick(dir_cache *c, const char *name, const char *host, const char *skip_host);
/* Copy an entry out into a record. */
void dir_entry_to_record(const dir_entry *e, dir_record *ret);

/* Call fn for each entry (in the table's order, stable while the cache
 * does not change) until it returns false. fn must not change the cache. */
void dir_cache_walk(const dir_cache *c, bool (*fn)(void *ctx, const dir_entry *e), void *ctx);

/* Start a new listing epoch (puts stamp it). */
void dir_cache_mark(dir_cache *c);
/* Forget every entry's revision (as if it were 0): etcd's revisions went
 * back (a cluster rebuilt empty), so any put of the new store is newer and
 * the next sweep removes what its listing did not see. */
void dir_cache_forget_revisions(dir_cache *c);
/* Remove entries not stamped since dir_cache_mark() whose revision is at
 * most up_to (newer ones came from elsewhere); call fn for each removal.
 * Returns how many were removed. */
size_t dir_cache_sweep(dir_cache *c, int64_t up_to,
                       void (*fn)(void *ctx, const char *name, const char *host, int change), void *ctx);
