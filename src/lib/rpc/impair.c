/*
 * impair.c — the RPC runtime's impairment hook for tests (rpc.h): drops
 * replies, duplicates requests, kills the server at a chosen point. Off
 * unless IPCF_RPC_IMPAIR is set.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/rpc/rpc.h"

void impair_init(rpc_impair *im) {
        memset(im, 0, sizeof(*im));
        const char *env = getenv("IPCF_RPC_IMPAIR");
        im->rng = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
        if (!env || !*env)
                return;
        im->on = true;
        char buf[256];
        strncpy(buf, env, sizeof(buf) - 1);
        buf[sizeof(buf) - 1] = 0;
        for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                if (!eq)
                        continue;
                *eq++ = 0;
                if (!strcmp(kv, "dup"))
                        im->dup = strtod(eq, NULL);
                else if (!strcmp(kv, "drop_reply"))
                        im->drop_reply = strtod(eq, NULL);
                else if (!strcmp(kv, "kill_after"))
                        im->kill_after = strtoull(eq, NULL, 10);
                else if (!strcmp(kv, "seed"))
                        im->rng = strtoull(eq, NULL, 10) | 1;
        }
}

bool impair_chance(rpc_impair *im, double p) {
        if (!im->on || p <= 0)
                return false;
        uint64_t x = atomic_load_explicit(&im->rng, memory_order_relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        atomic_store_explicit(&im->rng, x, memory_order_relaxed);
        return (double)(x >> 11) / (double)(1ull << 53) < p;
}
