/*
 * seal.c — integrity (and confidentiality) of whole datagrams: the seam.
 *
 * The engine never knows how a datagram is protected: it writes the 16-byte
 * header with the type and flags the installed efcp_seal_ops give, asks them
 * to seal header + frames, and asks them to open what arrives. Every
 * association starts with the plain ops below: CRC32C over header and frames
 * (noise only: anyone can compute it; benchmarks only). host.c installs the
 * authenticated ops (ChaCha20-Poly1305, the header as associated data, the
 * packet number as nonce, a replay window). DATA payloads are sized for a
 * 16-byte trailer in every mode (assoc.c), so both carry the same PDUs.
 *
 * Callers: output.c (seal) and assoc.c (open), one thread at a time.
 */
#include <errno.h>

#include "efcp/internal.h"

static uint16_t plain_flags(void *ctx) {
        (void)ctx;
        return 0;
}

static size_t plain_seal(void *ctx, uint8_t *dgram, size_t len) {
        (void)ctx;
        efcp_wire_seal_plain(dgram, len);
        return len + EFCP_CRC_LEN;
}

static int plain_open(void *ctx, const uint8_t *dgram, size_t len, uint64_t pn, uint16_t flags,
                      const uint8_t **ret_frames, size_t *ret_len) {
        (void)ctx;
        (void)pn;
        if (flags || !efcp_wire_check_plain(dgram, len))
                return -EBADMSG;
        *ret_frames = dgram + EFCP_HDR_LEN;
        *ret_len = len - EFCP_HDR_LEN - EFCP_CRC_LEN;
        return 0;
}

const efcp_seal_ops efcp_seal_plain = {
        .type = EFCP_TYPE_PLAIN,
        .trailer = EFCP_CRC_LEN,
        .flags = plain_flags,
        .seal = plain_seal,
        .open = plain_open,
};

int efcp_assoc_set_seal(efcp_assoc *a, const efcp_seal_ops *ops, void *ctx) {
        if (!a || !ops || !ops->seal || !ops->open || !ops->flags || ops->trailer > EFCP_TAG_LEN)
                return -EINVAL;
        a->seal = ops;
        a->seal_ctx = ctx;
        a->trailer = ops->trailer;
        return 0;
}

void efcp_seal_header(efcp_assoc *a, uint8_t *dgram, uint64_t pn) {
        efcp_hdr h = {.type = a->seal->type, .version = EFCP_VERSION,
                      .flags = a->seal->flags(a->seal_ctx), .rx_index = a->cfg.remote_index, .pn = pn};
        efcp_wire_put_hdr(dgram, &h);
}

size_t efcp_seal(efcp_assoc *a, uint8_t *dgram, size_t len) {
        return a->seal->seal(a->seal_ctx, dgram, len);
}

int efcp_unseal(efcp_assoc *a, const uint8_t *dgram, size_t len, const efcp_hdr *h,
                const uint8_t **ret_frames, size_t *ret_len) {
        if (h->type != a->seal->type || len < EFCP_HDR_LEN + a->trailer)
                return -EBADMSG;
        return a->seal->open(a->seal_ctx, dgram, len, h->pn, h->flags, ret_frames, ret_len);
}
