/*
 * fuzz-xdr.c — libFuzzer target for the decoder ipcf-idl generates (from
 * tests/rpc/alltypes.x, every construct of the language) and the XDR
 * primitives under it (src/common/xdr.c). The first byte picks the type (its
 * low 7 bits) and the depth limit (its high bit: 8, else the default); the
 * rest is decoded. A decode either fails, leaving the value zeroed, or
 * succeeds and then re-encodes to exactly the bytes it consumed (the
 * encoding is canonical). Never a crash, a leak, a read
 * outside the input, or an allocation beyond the budget.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alltypes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROUND(T)                                                                     \
        static void round_##T(const uint8_t *in, size_t n, uint32_t depth) {         \
                T v;                                                                 \
                ipcf_xdr d;                                                          \
                ipcf_xdr_decoder(&d, in, n);                                         \
                d.max_depth = depth;                                                 \
                if (T##_decode(&d, &v) < 0) {                                        \
                        static const T zero;                                         \
                        if (memcmp(&v, &zero, sizeof(v)) != 0)                       \
                                abort();                                             \
                        return;                                                      \
                }                                                                    \
                ipcf_xdr e;                                                          \
                ipcf_xdr_encoder(&e, NULL, 0);                                       \
                if (T##_encode(&e, &v) != 0 || e.pos != d.pos || memcmp(e.buf, in, e.pos)) \
                        abort();                                                     \
                ipcf_xdr_release(&e);                                                \
                T##_free(&v);                                                        \
        }
#define EACH(X) X(everything) X(node) X(result) X(arrays) X(by_color) X(names) X(blob) X(maybe) X(by_uint) X(tree)
EACH(ROUND)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        static void (*const rounds[])(const uint8_t *, size_t, uint32_t) = {
#define REF(T) round_##T,
                EACH(REF)
        };
        unsigned pick = (data[0] & 0x7f) % (sizeof(rounds) / sizeof(rounds[0]));
        uint32_t depth = data[0] & 0x80 ? 8 : IPCF_XDR_MAX_DEPTH;
        /* exact-size copy: reads past the end are caught */
        uint8_t *in = malloc(size - 1 ? size - 1 : 1);
        if (!in)
                return 0;
        memcpy(in, data + 1, size - 1);
        rounds[pick](in, size - 1, depth);
        free(in);
        return 0;
}
