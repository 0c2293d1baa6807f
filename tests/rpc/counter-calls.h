/*
 * counter-calls.h — what the RPC tests (test-rpc.c, test-rpc-hosts.c) do
 * with the counter of counter.x more than once: the WHO handler (the
 * caller's stamp as the handler saw it), and n INCR calls, each of which
 * must return the next number (it ran once, in order). Include after
 * counter.h and support/test.h.
 */
#pragma once

static inline int counter_h_who(ipcf_rpc_ctx *ctx, who *out, void *user) {
        out->pid = ctx->caller.pid;
        out->uid = ctx->caller.uid;
        out->prog = strdup(ctx->caller.name);
        out->host = strdup(ctx->host);
        out->deadline_left_ms = ctx->deadline_ns == UINT64_MAX ? -1
                                : (int64_t)(ctx->deadline_ns - test_now_ns()) / 1000000;
        return 0;
}

/* n calls through c; the transmissions they took and how many were answered
 * from the server's reply cache, added to *sent and *cached. */
static inline void counter_incr_n(ipcf_rpc_client *c, unsigned n, uint64_t *sent, uint64_t *cached) {
        for (unsigned i = 1; i <= n; i++) {
                int64_t v = 0;
                ipcf_rpc_info info;
                ipcf_rpc_opts o = { .info = &info };
                CHECK_OK(counter_incr(c, &v, &o));
                CHECK_EQ(v, i); /* each call ran once, in order */
                *sent += info.transmissions;
                *cached += info.from_cache;
        }
}
