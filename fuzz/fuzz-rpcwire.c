/*
 * fuzz-rpcwire.c — libFuzzer target for the RPC message headers
 * (src/lib/rpc/wire.c), the first thing a server reads of a request and a
 * client of a reply: a parse either fails or yields a header whose piece
 * lies within its total, and packing it again gives the same header bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/rpc/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        uint8_t *in = malloc(size ? size : 1);
        if (!in)
                return 0;
        memcpy(in, data, size);
        rpc_req rq;
        if (wire_parse_req(in, size, &rq) == 0) {
                if (rq.kind == RPC_CALL && (rq.offset > rq.total || size - RPC_REQ_HDR > rq.total - rq.offset))
                        abort();
                uint8_t out[RPC_REQ_HDR];
                wire_put_req(out, &rq);
                if (memcmp(out, in, RPC_REQ_HDR))
                        abort();
        }
        rpc_rep rp;
        if (wire_parse_rep(in, size, &rp) == 0) {
                if (rp.offset > rp.total || size - RPC_REP_HDR > rp.total - rp.offset || rp.status > RS_STATUS_MAX)
                        abort();
                uint8_t out[RPC_REP_HDR];
                wire_put_rep(out, &rp);
                if (memcmp(out, in, RPC_REP_HDR))
                        abort();
        }
        free(in);
        return 0;
}
