/*
 * xdr.h — what the library itself needs of the XDR streams besides ipcf.h:
 * the region of input this thread's decoders lent out (ipcf_xdr_borrow), so
 * that ipcf_xdr_free leaves it alone. The RPC server sets it around decoding,
 * running and freeing a handler's arguments; (NULL, 0) clears it.
 */
#pragma once

#include <stddef.h>

void xdr_borrow_region(const void *p, size_t len);
