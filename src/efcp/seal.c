/*
 * seal.c — integrity (and later confidentiality) of whole datagrams: the one
 * place that knows the trailer.
 *
 * Plain mode (EFCP_TYPE_PLAIN): the trailer is CRC32C over header and
 * frames. The authenticated mode (EFCP_TYPE_AEAD, to come with host
 * authentication) replaces exactly these two functions: efcp_seal() will
 * encrypt the frames in place with ChaCha20-Poly1305, the 16-byte header as
 * associated data and the packet number as nonce, and append the 16-byte tag;
 * efcp_unseal() will check the tag, consult the replay window, and decrypt
 * into the association's scratch buffer. Nothing else in the engine changes:
 * DATA payloads are already sized for a 16-byte trailer (assoc.c), output.c
 * only asks for a->trailer bytes of room, and input parses whatever
 * efcp_unseal() hands back.
 *
 * Callers: output.c (seal) and assoc.c (unseal), one thread at a time.
 */
#include <errno.h>

#include "efcp/internal.h"

size_t efcp_seal(efcp_assoc *a, uint8_t *dgram, size_t len) {
        efcp_wire_seal_plain(dgram, len);
        return len + a->trailer;
}

int efcp_unseal(efcp_assoc *a, const uint8_t *dgram, size_t len, const efcp_hdr *h,
                const uint8_t **ret_frames, size_t *ret_len) {
        (void)a;
        if (h->type != EFCP_TYPE_PLAIN || !efcp_wire_check_plain(dgram, len))
                return -EBADMSG;
        *ret_frames = dgram + EFCP_HDR_LEN;
        *ret_len = len - EFCP_HDR_LEN - EFCP_CRC_LEN;
        return 0;
}
