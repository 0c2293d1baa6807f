/*
 * calc-server.c — serves calc.x under a name: `calc-server NAME`.
 * The handlers are plain functions; ipcf-idl's calc_v1_serve() puts them in
 * the server's dispatch table. ACCUMULATE keeps a running total: the RPC
 * runtime makes sure a retransmitted call never adds twice, and prints who
 * asked for it as the facility stamped the caller (ctx->caller, ctx->host:
 * another host's name for a call from there) — one line on stdout each.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

#include "calc.h"

static int add(ipcf_rpc_ctx *ctx, const operands *in, int64_t *out, void *user) {
        /* a result past 64 bits fails the call (the caller: -EREMOTEIO,
         * remote_error -ERANGE), never wraps */
        return __builtin_add_overflow(in->a, in->b, out) ? -ERANGE : 0;
}

static int mul(ipcf_rpc_ctx *ctx, const operands *in, int64_t *out, void *user) {
        return __builtin_mul_overflow(in->a, in->b, out) ? -ERANGE : 0;
}

static int divide(ipcf_rpc_ctx *ctx, const operands *in, quotient *out, void *user) {
        if (in->b == 0) {
                out->err = EDOM;
                return 0;
        }
        if (in->a == INT64_MIN && in->b == -1) {
                out->err = ERANGE; /* the one quotient past 64 bits */
                return 0;
        }
        out->err = 0;
        out->quotient_u.value = in->a / in->b;
        return 0;
}

static int accumulate(ipcf_rpc_ctx *ctx, const int64_t *n, int64_t *out, void *user) {
        int64_t *total = user;
        if (__builtin_add_overflow(*total, *n, out))
                return -ERANGE; /* the total stays as it was */
        *total = *out;
        printf("ACCUMULATE %" PRId64 " by %s (pid %d, uid %u) on %s\n", *n, ctx->caller.name, (int)ctx->caller.pid,
               (unsigned)ctx->caller.uid, ctx->host);
        return 0;
}

int main(int argc, char **argv) {
        if (argc != 2) {
                fprintf(stderr, "usage: calc-server NAME\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        int64_t total = 0;
        static const calc_v1_handlers handlers = { .add = add, .mul = mul, .div = divide,
                                                   .accumulate = accumulate };
        ipcf_rpc_server *s;
        int r = ipcf_rpc_server_new(argv[1], NULL, &s);
        if (r == 0)
                r = calc_v1_serve(s, &handlers, &total);
        if (r == 0)
                r = ipcf_rpc_server_run(s, 2, -1); /* until killed */
        if (r < 0)
                fprintf(stderr, "calc-server: %s\n", ipcf_strerror(r));
        ipcf_rpc_server_free(s);
        return r < 0;
}
