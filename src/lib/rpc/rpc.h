/*
 * rpc.h — what the RPC runtime's files share: limits, the impairment hook
 * for tests, and the persistent reply cache's interface (cache.c).
 */
#pragma once

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ipcf.h"
#include "lib/rpc/wire.h"

/* Bytes of arguments or result per message: what a call carries. */
#define RPC_PIECE (IPCF_CALL_MAX - RPC_REQ_HDR)
/* Bytes of a result per reply. */
#define RPC_REP_PIECE (IPCF_CALL_MAX - RPC_REP_HDR)
/* 64 MiB of data and room for the XDR around it */
#define RPC_DEFAULT_MAX_MSG ((64u << 20) + (64u << 10))
#define RPC_DEFAULT_SLOTS 16u
#define RPC_MAX_SLOTS 64u
#define RPC_DEFAULT_TIMEOUT_MS 30000

/*
 * Impairment for tests only, from the environment variable IPCF_RPC_IMPAIR
 * (read when a client or server is made), e.g. "dup=0.01,drop_reply=0.01":
 *   dup=P          the client sends each request piece twice with probability P
 *   drop_reply=P   the server drops a reply (after caching it) with probability P
 *   kill_after=N   the server kills itself (SIGKILL) right after the Nth reply
 *                  it has cached (and persisted) instead of sending it
 *   seed=N         the random sequence
 * Unset (the normal case), nothing is impaired.
 */
typedef struct rpc_impair {
        double dup, drop_reply;
        uint64_t kill_after;
        _Atomic uint64_t rng; /* racy by design (threads may draw the same number), but no data race */
        bool on;
} rpc_impair;

void impair_init(rpc_impair *im);
/* true with probability p (thread-safe enough for tests: a racy PRNG). */
bool impair_chance(rpc_impair *im, double p);

/* The persistent reply cache (cache.c, SQLite in WAL mode). */
typedef struct rpc_cache rpc_cache;

typedef struct rpc_cached {
        uint8_t session[16];
        uint32_t nslots;
        uint32_t slot, seq, status, a, b;
        uint8_t *reply; /* malloc'ed */
        size_t len;
} rpc_cached;

int cache_open(const char *path, bool sync_full, rpc_cache **ret);
void cache_close(rpc_cache *c);
int cache_put_session(rpc_cache *c, const uint8_t id[16], uint32_t nslots);
int cache_drop_session(rpc_cache *c, const uint8_t id[16]);
int cache_put_reply(rpc_cache *c, const uint8_t id[16], uint32_t slot, uint32_t seq, uint32_t status,
                    uint32_t a, uint32_t b, const void *reply, size_t len);
/* Every session (slot == UINT32_MAX, no reply) and every slot's last reply,
 * to fn in any order. */
int cache_load(rpc_cache *c, void (*fn)(void *arg, const rpc_cached *e), void *arg);
