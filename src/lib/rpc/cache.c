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
 * Tables: sessions(id, nslots); replies(session, slot, seq, status, a, b,
 * reply) with one row per slot, replaced by each newer reply (the next seq
 * frees the last reply, as in memory). One connection, its statements
 * prepared once, serialized by a mutex.
 */
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/rpc.h"

struct rpc_cache {
        sqlite3 *db;
        sqlite3_stmt *put_session, *drop_session, *drop_replies, *put_reply;
        pthread_mutex_t lock;
};

static int prep(rpc_cache *c, const char *sql, sqlite3_stmt **st) {
        return sqlite3_prepare_v2(c->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -EIO;
}

int cache_open(const char *path, bool sync_full, rpc_cache **ret) {
        rpc_cache *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        pthread_mutex_init(&c->lock, NULL);
        int r = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                NULL) == SQLITE_OK ? 0 : -EIO;
        char sql[512];
        snprintf(sql, sizeof(sql),
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA busy_timeout=5000;"
                 "CREATE TABLE IF NOT EXISTS sessions(id BLOB PRIMARY KEY, nslots INTEGER NOT NULL);"
                 "CREATE TABLE IF NOT EXISTS replies(session BLOB NOT NULL, slot INTEGER NOT NULL,"
                 " seq INTEGER NOT NULL, status INTEGER NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL,"
                 " reply BLOB, PRIMARY KEY(session, slot));",
                 sync_full ? "FULL" : "NORMAL");
        if (r == 0 && sqlite3_exec(c->db, sql, NULL, NULL, NULL) != SQLITE_OK)
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
        sqlite3_finalize(c->put_session);
        sqlite3_finalize(c->drop_session);
        sqlite3_finalize(c->drop_replies);
        sqlite3_finalize(c->put_reply);
        sqlite3_close(c->db);
        pthread_mutex_destroy(&c->lock);
        free(c);
}

static int run(sqlite3_stmt *st) {
        int r = sqlite3_step(st);
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        return r == SQLITE_DONE ? 0 : -EIO;
}

int cache_put_session(rpc_cache *c, const uint8_t id[16], uint32_t nslots) {
        pthread_mutex_lock(&c->lock);
        sqlite3_bind_blob(c->put_session, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(c->put_session, 2, nslots);
        int r = run(c->put_session);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_drop_session(rpc_cache *c, const uint8_t id[16]) {
        pthread_mutex_lock(&c->lock);
        sqlite3_bind_blob(c->drop_session, 1, id, 16, SQLITE_STATIC);
        int r = run(c->drop_session);
        sqlite3_bind_blob(c->drop_replies, 1, id, 16, SQLITE_STATIC);
        if (r == 0)
                r = run(c->drop_replies);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_put_reply(rpc_cache *c, const uint8_t id[16], uint32_t slot, uint32_t seq, uint32_t status, uint32_t a,
                    uint32_t b, const void *reply, size_t len) {
        pthread_mutex_lock(&c->lock);
        sqlite3_stmt *st = c->put_reply;
        sqlite3_bind_blob(st, 1, id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, slot);
        sqlite3_bind_int64(st, 3, seq);
        sqlite3_bind_int64(st, 4, status);
        sqlite3_bind_int64(st, 5, a);
        sqlite3_bind_int64(st, 6, b);
        if (len)
                sqlite3_bind_blob64(st, 7, reply, len, SQLITE_STATIC);
        else
                sqlite3_bind_null(st, 7);
        int r = run(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}

int cache_load(rpc_cache *c, void (*fn)(void *arg, const rpc_cached *e), void *arg) {
        sqlite3_stmt *st = NULL;
        int r = 0;
        pthread_mutex_lock(&c->lock);
        if (sqlite3_prepare_v2(c->db, "SELECT id, nslots FROM sessions", -1, &st, NULL) != SQLITE_OK)
                r = -EIO;
        while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
                rpc_cached e = { .slot = UINT32_MAX };
                if (sqlite3_column_bytes(st, 0) != 16)
                        continue;
                memcpy(e.session, sqlite3_column_blob(st, 0), 16);
                e.nslots = (uint32_t)sqlite3_column_int64(st, 1);
                fn(arg, &e);
        }
        sqlite3_finalize(st);
        st = NULL;
        if (r == 0 && sqlite3_prepare_v2(c->db,
                                         "SELECT r.session, s.nslots, r.slot, r.seq, r.status, r.a, r.b, r.reply"
                                         " FROM replies r JOIN sessions s ON s.id = r.session",
                                         -1, &st, NULL) != SQLITE_OK)
                r = -EIO;
        while (r == 0 && sqlite3_step(st) == SQLITE_ROW) {
                rpc_cached e;
                if (sqlite3_column_bytes(st, 0) != 16)
                        continue;
                memcpy(e.session, sqlite3_column_blob(st, 0), 16);
                e.nslots = (uint32_t)sqlite3_column_int64(st, 1);
                e.slot = (uint32_t)sqlite3_column_int64(st, 2);
                e.seq = (uint32_t)sqlite3_column_int64(st, 3);
                e.status = (uint32_t)sqlite3_column_int64(st, 4);
                e.a = (uint32_t)sqlite3_column_int64(st, 5);
                e.b = (uint32_t)sqlite3_column_int64(st, 6);
                e.len = (size_t)sqlite3_column_bytes(st, 7);
                e.reply = (uint8_t *)sqlite3_column_blob(st, 7);
                fn(arg, &e);
        }
        sqlite3_finalize(st);
        pthread_mutex_unlock(&c->lock);
        return r;
}
