/*
 * cache.c — the persistent reply cache of an RPC server: SQLite in WAL mode.
 *
 * Why SQLite: a commit is atomic and survives a crash of the process as soon
 * as sqlite3_step returns (the WAL frame is in the kernel's page cache);
 * with synchronous=FULL (cache_sync) it survives a crash of the machine too,
 * at the price of an fsync per reply. WAL keeps a commit to one sequential
 * append, checkpoints in the background of later commits, and a torn write
 * at a crash is discarded by its checksum. A file of our own would need all
 * of that written and proven again.
 *
 * libsqlite3 is loaded when a server first opens a cache (dlopen), so
 * libipcf itself depends on nothing more: a server that asks for a cache on
 * a machine without libsqlite3.so.0 gets -ENOSYS.
 *
 * Tables: sessions(id, nslots); replies(session, slot, seq, status, a, b,
 * reply) with one row per slot, replaced by each newer reply (the next seq
 * frees the last reply, as in memory). One connection, its statements
 * prepared once, serialized by a mutex.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/rpc.h"

/* The functions of libsqlite3 we call, found at run time. */
static struct {
        int (*open_v2)(const char *, sqlite3 **, int, const char *);
        int (*exec)(sqlite3 *, const char *, int (*)(void *, int, char **, char **), void *, char **);
        int (*prepare_v2)(sqlite3 *, const char *, int, sqlite3_stmt **, const char **);
        int (*step)(sqlite3_stmt *);
        int (*reset)(sqlite3_stmt *);
        int (*clear_bindings)(sqlite3_stmt *);
        int (*finalize)(sqlite3_stmt *);
        int (*close)(sqlite3 *);
        int (*bind_blob)(sqlite3_stmt *, int, const void *, int, void (*)(void *));
        int (*bind_blob64)(sqlite3_stmt *, int, const void *, sqlite3_uint64, void (*)(void *));
        int (*bind_int64)(sqlite3_stmt *, int, sqlite3_int64);
        int (*bind_null)(sqlite3_stmt *, int);
        int (*column_bytes)(sqlite3_stmt *, int);
        const void *(*column_blob)(sqlite3_stmt *, int);
        sqlite3_int64 (*column_int64)(sqlite3_stmt *, int);
} sq;
static pthread_once_t sq_once = PTHREAD_ONCE_INIT;
static bool sq_ok;

static void sq_load(void) {
        void *h = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
        if (!h)
                return;
#define SYM(f, name) (*(void **)&sq.f = dlsym(h, name)) != NULL
        sq_ok = SYM(open_v2, "sqlite3_open_v2") && SYM(exec, "sqlite3_exec") &&
                SYM(prepare_v2, "sqlite3_prepare_v2") && SYM(step, "sqlite3_step") && SYM(reset, "sqlite3_reset") &&
                SYM(clear_bindings, "sqlite3_clear_bindings") && SYM(finalize, "sqlite3_finalize") &&
                SYM(close, "sqlite3_close") && SYM(bind_blob, "sqlite3_bind_blob") &&
                SYM(bind_blob64, "sqlite3_bind_blob64") && SYM(bind_int64, "sqlite3_bind_int64") &&
                SYM(bind_null, "sqlite3_bind_null") && SYM(column_bytes, "sqlite3_column_bytes") &&
                SYM(column_blob, "sqlite3_column_blob") && SYM(column_int64, "sqlite3_column_int64");
#undef SYM
}

struct rpc_cache {
        sqlite3 *db;
        sqlite3_stmt *put_session, *drop_session, *drop_replies, *put_reply;
        pthread_mutex_t lock;
};

static int prep(rpc_cache *c, const char *sql, sqlite3_stmt **st) {
        return sq.prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -EIO;
}

int cache_open(const char *path, bool sync_full, rpc_cache **ret) {
        pthread_once(&sq_once, sq_load);
        if (!sq_ok)
                return -ENOSYS;
        rpc_cache *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        int r = sq.open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                NULL) == SQLITE_OK ? 0 : -EIO;
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA busy_timeout=5000;"
                 "CREATE TABLE IF NOT EXISTS sessions(id BLOB PRIMARY KEY, nslots INTEGER NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS replies(session BLOB NOT NULL, slot INTEGER NOT NULL,"
                 " seq INTEGER NOT NULL, status INTEGER NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL,"
                 " reply BLOB, PRIMARY KEY(session, slot));",
                 sync_full ? "FULL" : "NORMAL");
        if (r == 0 && sq.exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
                r = -EIO;
        if (r == 0)
                r = prep(c, "INSERT OR REPLACE INTO sessions(id, nslots) VALUES(?, ?)", &c->put_session);
        if (r == 0)
                r = prep(c, "DELETE FROM sessions WHERE id = ?", &c->drop_session);
        if (r == 0)
                r = prep(c, "DELETE FROM replies WHERE session = ?", &c->drop_replies);
        if (r == 0)
                r = prep(c, "INSERT OR REPLACE INTO replies(session, slot, seq, status, a, b, reply)"
                            " VALUES(?, ?, ?, ?, ?, ?, ?)", &c->put_reply);
        if (r < 0) {
                cache_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

void cache_close(rpc_cache *c) {
        if (!c)
                return;
        sq.finalize(c->put_session);
        sq.finalize(c->drop_session);
        sq.finalize(c->drop_replies);
        sq.finalize(c->put_reply);
        sq.close(c->db);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static int run(sqlite3_stmt *st) {
        int r = sq.step(st);
        sq.reset(st);
        sq.clear_bindings(st);
        return r == SQLITE_DONE ? 0 : -EIO;
}

int cache_put_session(rpc_cache *c, const uint8_t id[16], uint32_t nslots) {
        pthread_mutex_lock(&c->lock);
        sq.bind_blob(c->put_session, 1, id, 16, SQLITE_STATIC);
        sq.bind_int64(c->put_session, 2, nslots);
        int r = run(c->put_session);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_drop_session(rpc_cache *c, const uint8_t id[16]) {
        pthread_mutex_lock(&c->lock);
        sq.bind_blob(c->drop_session, 1, id, 16, SQLITE_STATIC);
        int r = run(c->drop_session);
        sq.bind_blob(c->drop_replies, 1, id, 16, SQLITE_STATIC);
        if (r == 0)
                r = run(c->drop_replies);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_put_reply(rpc_cache *c, const uint8_t id[16], uint32_t slot, uint32_t seq, uint32_t status, uint32_t a,
                    uint32_t b, const void *reply, size_t len) {
        pthread_mutex_lock(&c->lock);
        sqlite3_stmt *st = c->put_reply;
        sq.bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sq.bind_int64(st, 2, slot);
        sq.bind_int64(st, 3, seq);
        sq.bind_int64(st, 4, status);
        sq.bind_int64(st, 5, a);
        sq.bind_int64(st, 6, b);
        if (len)
                sq.bind_blob64(st, 7, reply, len, SQLITE_STATIC);
        else
                sq.bind_null(st, 7);
        int r = run(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_load(rpc_cache *c, void (*fn)(void *arg, const rpc_cached *e), void *arg) {
        sqlite3_stmt *st = NULL;
        int r = 0;
        pthread_mutex_lock(&c->lock);
        if (sq.prepare_v2(c->db, "SELECT id, nslots FROM sessions", -1, &st, NULL) != SQLITE_OK)
                r = -EIO;
        while (r == 0 && sq.step(st) == SQLITE_ROW) {
                rpc_cached e = { .slot = UINT32_MAX };
                if (sq.column_bytes(st, 0) != 16)
                        continue;
                memcpy(e.session, sq.column_blob(st, 0), 16);
                e.nslots = (uint32_t)sq.column_int64(st, 1);
                fn(arg, &e);
        }
        sq.finalize(st);
        st = NULL;
        if (r == 0 && sq.prepare_v2(c->db,
                                         "SELECT r.session, s.nslots, r.slot, r.seq, r.status, r.a, r.b, r.reply"
                                         " FROM replies r JOIN sessions s ON s.id = r.session",
                                         -1, &st, NULL) != SQLITE_OK)
                r = -EIO;
        while (r == 0 && sq.step(st) == SQLITE_ROW) {
                rpc_cached e;
                if (sq.column_bytes(st, 0) != 16)
                        continue;
                memcpy(e.session, sq.column_blob(st, 0), 16);
                e.nslots = (uint32_t)sq.column_int64(st, 1);
                e.slot = (uint32_t)sq.column_int64(st, 2);
                e.seq = (uint32_t)sq.column_int64(st, 3);
                e.status = (uint32_t)sq.column_int64(st, 4);
                e.a = (uint32_t)sq.column_int64(st, 5);
                e.b = (uint32_t)sq.column_int64(st, 6);
                e.len = (size_t)sq.column_bytes(st, 7);
                e.reply = (uint8_t *)sq.column_blob(st, 7);
                fn(arg, &e);
        }
        sq.finalize(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}
