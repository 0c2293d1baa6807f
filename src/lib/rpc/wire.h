/*
 * wire.h — the RPC messages inside service calls (ipcf_call payloads), in
 * network byte order. A request is a 72-byte header and a piece of the
 * arguments' XDR; a reply a 48-byte header and a piece of the result's XDR.
 *
 * request: magic kind session[16] slot seq flags prog vers proc timeout_ms
 *          piece(u32) total(u64) offset(u64)
 * reply:   magic status incarnation(u64) slot seq total(u64) offset(u64) a b
 *
 * Both sides parse what the other sent as hostile: wire_parse_* check the
 * magic, the kind/status, and that offset + the piece stays within total.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_MAGIC 0x49525031u /* "IRP1" */
#define RPC_REQ_HDR 72u
#define RPC_REP_HDR 48u
#define RPC_NO_TIMEOUT 0xffffffffu

enum rpc_kind {
        RPC_CALL = 1,    /* a piece of a call's arguments */
        RPC_FETCH = 2,   /* a piece of a finished call's result (offset) */
        RPC_CREATE = 3,  /* make session (slot = slots wanted) */
        RPC_DESTROY = 4, /* end session */
        RPC_DESCRIBE = 5,/* the interface texts */
        RPC_CANCEL = 6,  /* the caller cancelled call (slot, seq): its handler is told; the answer is
                          * its verdict (server.c, on_cancel) */
};

enum rpc_flags {
        RPCF_RETRY = 1u,      /* sent again after the channel broke */
        RPCF_IDEMPOTENT = 2u,
        RPCF_ONEWAY = 4u,
};

enum rpc_status {
        RS_OK = 0,            /* a piece of the result (or of the answer to CREATE...) */
        RS_IN_PROGRESS = 1,   /* a copy of a call that runs: dropped */
        RS_PIECE_OK = 2,      /* a piece of the arguments is kept */
        RS_PROG_UNAVAIL = 3,  /* a, b: the versions served (0, 0: the program is not) */
        RS_PROC_UNAVAIL = 4,
        RS_GARBAGE_ARGS = 5,
        RS_SYSTEM_ERR = 6,    /* a: the handler's negative errno */
        RS_BADSESSION = 7,
        RS_MISORDERED = 8,
        RS_DEADLINE = 9,      /* not started: its deadline had passed */
        RS_CANCELLED = 10,    /* not started: cancelled */
        RS_UNKNOWN = 11,      /* a retry the server cannot answer (restarted) */
        RS_TOO_BIG = 12,
        RS_BUSY = 13,         /* memory or sessions exhausted: not started */
        RS_SLOT_BUSY = 14,    /* the slot still runs an earlier call: try again */
        RS_STATUS_MAX = 14,
};

typedef struct rpc_req {
        uint32_t kind;
        uint8_t session[16];
        uint32_t slot, seq, flags, prog, vers, proc, timeout_ms, piece;
        uint64_t total, offset;
} rpc_req;

typedef struct rpc_rep {
        uint32_t status;
        uint64_t incarnation;
        uint32_t slot, seq;
        uint64_t total, offset;
        uint32_t a, b;
} rpc_rep;

void wire_put_req(uint8_t *out, const rpc_req *r);
void wire_put_rep(uint8_t *out, const rpc_rep *r);
/* Parse a message of len bytes; the piece after the header is len - header
 * bytes. 0, or -EPROTO. */
int wire_parse_req(const uint8_t *in, size_t len, rpc_req *ret);
int wire_parse_rep(const uint8_t *in, size_t len, rpc_rep *ret);
