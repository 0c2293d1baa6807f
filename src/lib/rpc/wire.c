/*
 * wire.c — packing and checking the RPC headers of wire.h.
 */
#include <errno.h>
#include <string.h>

#include "lib/rpc/wire.h"

static void p32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}

static void p64(uint8_t *p, uint64_t v) {
        p32(p, (uint32_t)(v >> 32));
        p32(p + 4, (uint32_t)v);
}

static uint32_t g32(const uint8_t *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t g64(const uint8_t *p) {
        return (uint64_t)g32(p) << 32 | g32(p + 4);
}

void wire_put_req(uint8_t *o, const rpc_req *r) {
        p32(o, RPC_MAGIC);
        p32(o + 4, r->kind);
        memcpy(o + 8, r->session, 16);
        p32(o + 24, r->slot);
        p32(o + 28, r->seq);
        p32(o + 32, r->flags);
        p32(o + 36, r->prog);
        p32(o + 40, r->vers);
        p32(o + 44, r->proc);
        p32(o + 48, r->timeout_ms);
        p32(o + 52, r->piece);
        p64(o + 56, r->total);
        p64(o + 64, r->offset);
}

void wire_put_rep(uint8_t *o, const rpc_rep *r) {
        p32(o, RPC_MAGIC);
        p32(o + 4, r->status);
        p64(o + 8, r->incarnation);
        p32(o + 16, r->slot);
        p32(o + 20, r->seq);
        p64(o + 24, r->total);
        p64(o + 32, r->offset);
        p32(o + 40, r->a);
        p32(o + 44, r->b);
}

int wire_parse_req(const uint8_t *in, size_t len, rpc_req *r) {
        if (len < RPC_REQ_HDR || g32(in) != RPC_MAGIC)
                return -EPROTO;
        r->kind = g32(in + 4);
        memcpy(r->session, in + 8, 16);
        r->slot = g32(in + 24);
        r->seq = g32(in + 28);
        r->flags = g32(in + 32);
        r->prog = g32(in + 36);
        r->vers = g32(in + 40);
        r->proc = g32(in + 44);
        r->timeout_ms = g32(in + 48);
        r->piece = g32(in + 52);
        r->total = g64(in + 56);
        r->offset = g64(in + 64);
        size_t body = len - RPC_REQ_HDR;
        if (r->kind < RPC_CALL || r->kind > RPC_CANCEL)
                return -EPROTO;
        if (r->kind == RPC_CALL && (r->offset > r->total || body > r->total - r->offset))
                return -EPROTO;
        return 0;
}

int wire_parse_rep(const uint8_t *in, size_t len, rpc_rep *r) {
        if (len < RPC_REP_HDR || g32(in) != RPC_MAGIC)
                return -EPROTO;
        r->status = g32(in + 4);
        r->incarnation = g64(in + 8);
        r->slot = g32(in + 16);
        r->seq = g32(in + 20);
        r->total = g64(in + 24);
        r->offset = g64(in + 32);
        r->a = g32(in + 40);
        r->b = g32(in + 44);
        size_t body = len - RPC_REP_HDR;
        if (r->status > RS_STATUS_MAX || r->offset > r->total || body > r->total - r->offset)
                return -EPROTO;
        return 0;
}
