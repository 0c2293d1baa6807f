/*
 * session.c — the keys of one host association, and the seal ops that use
 * them (the engine's seam, efcp.h: efcp_seal_ops).
 *
 * Sealing (noise_aead_encrypt): ChaCha20-Poly1305-IETF, or AES-256-GCM when
 * the handshake that made the keys chose it (both hosts offered it:
 * HS_FLAG_AESGCM; its key expanded once, when installed, not per datagram),
 * key = our current send key, nonce = the datagram's packet number (never reused within an
 * association, whatever the keys), associated data = the 16-byte header
 * (type AEAD, version, flags with the key-phase bit, receiver index, packet
 * number): the frames are encrypted in place and a 16-byte tag appended.
 *
 * Opening, in this order, so that nothing is kept about a datagram that
 * does not authenticate: flags other than the key phase refused; the replay
 * window (2048 packet numbers: older ones and repeats refused); the key the
 * phase bit names — current, next (the responder's new keys before the
 * initiator has used them: the first datagram under them promotes them), or
 * previous (for reordered stragglers, PREV_KEY_GRACE_NS after a switch); the
 * tag; only then is the packet number entered in the window.
 *
 * Rekeying never pauses traffic: the initiator of a rekey switches its send
 * key when the response arrives (flipping the phase bit) and keeps the old
 * receive key for stragglers; the responder keeps sending with the old keys
 * until the first datagram under the new phase proves the initiator has them.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "efcp/host_internal.h"
#include "efcp/wire.h"

/* ---- the replay window --------------------------------------------------- */

static bool win_ok(const replay_win *w, uint64_t pn) {
        if (!w->any || pn > w->top)
                return true;
        if (w->top - pn >= REPLAY_BITS)
                return false;
        return !(w->bits[(pn % REPLAY_BITS) / 64] & (UINT64_C(1) << (pn % 64)));
}

static void win_add(replay_win *w, uint64_t pn) {
        if (!w->any) {
                w->any = true;
                w->top = pn;
        } else if (pn > w->top) {
                if (pn - w->top >= REPLAY_BITS) {
                        memset(w->bits, 0, sizeof(w->bits));
                } else {
                        for (uint64_t k = w->top + 1; k <= pn; k++)
                                w->bits[(k % REPLAY_BITS) / 64] &= ~(UINT64_C(1) << (k % 64));
                }
                w->top = pn;
        }
        w->bits[(pn % REPLAY_BITS) / 64] |= UINT64_C(1) << (pn % 64);
}

/* ---- keys ---------------------------------------------------------------------- */

void session_install(efcp_peer *p, const uint8_t send[32], const uint8_t recv[32], bool aes, bool initiator,
                     bool fresh) {
        uint64_t now = p->h->now;
        uint8_t phase = fresh ? 0 : (uint8_t)!p->cur.phase;
        keyset *k;
        if (fresh) {
                session_wipe(p);
                k = &p->cur;
        } else if (initiator) {
                p->prev_recv = p->cur.recv;
                p->prev_phase = p->cur.phase;
                p->prev_valid = true;
                p->prev_until = now + PREV_KEY_GRACE_NS;
                k = &p->cur;
        } else {
                k = &p->next;
        }
        sodium_memzero(k, sizeof(*k));
        *k = (keyset){.valid = true, .aes = aes, .phase = phase, .born = now};
        noise_aead_key_set(&k->send, aes, send);
        noise_aead_key_set(&k->recv, aes, recv);
}

void session_wipe(efcp_peer *p) {
        sodium_memzero(&p->cur, sizeof(p->cur));
        sodium_memzero(&p->next, sizeof(p->next));
        sodium_memzero(&p->prev_recv, sizeof(p->prev_recv));
        p->prev_valid = false;
        memset(&p->win, 0, sizeof(p->win));
}

bool session_wants_rekey(const efcp_peer *p, uint64_t now) {
        const efcp_host_config *c = &p->h->cfg;
        if (!p->cur.valid || p->next.valid)
                return false;
        if (p->cur.sent >= c->rekey_after_packets)
                return true;
        /* on time, the side that initiated the association rekeys; the other
         * only if that has not happened half a period later */
        uint64_t age = now - p->cur.born;
        return age >= c->rekey_after_ns + (p->initiated ? 0 : c->rekey_after_ns / 2);
}

/* The responder's new keys were used by the peer: they become current. */
static void promote_next(efcp_peer *p) {
        p->prev_recv = p->cur.recv;
        p->prev_phase = p->cur.phase;
        p->prev_valid = true;
        p->prev_until = p->h->now + PREV_KEY_GRACE_NS;
        p->cur = p->next;
        sodium_memzero(&p->next, sizeof(p->next));
}

/* ---- the seal ops ---------------------------------------------------------------- */

static uint16_t aead_flags(void *ctx) {
        efcp_peer *p = ctx;
        return p->cur.phase;
}

static size_t aead_seal(void *ctx, uint8_t *dgram, size_t len) {
        efcp_peer *p = ctx;
        efcp_hdr h;
        efcp_wire_get_hdr(dgram, len, &h);
        noise_aead_encrypt(&p->cur.send, h.pn, dgram, EFCP_HDR_LEN, dgram + EFCP_HDR_LEN,
                           len - EFCP_HDR_LEN, dgram + EFCP_HDR_LEN);
        p->cur.sent++;
        return len + EFCP_TAG_LEN;
}

static int aead_open(void *ctx, const uint8_t *dgram, size_t len, uint64_t pn, uint16_t flags,
                     const uint8_t **ret_frames, size_t *ret_len) {
        efcp_peer *p = ctx;
        if ((flags & ~1u) || !p->cur.valid || !win_ok(&p->win, pn))
                return -EBADMSG;
        const noise_aead_key *key;
        bool use_next = false;
        if (flags == p->cur.phase)
                key = &p->cur.recv;
        else if (p->next.valid && flags == p->next.phase)
                key = &p->next.recv, use_next = true;
        else if (p->prev_valid && flags == p->prev_phase && p->h->now < p->prev_until)
                key = &p->prev_recv;
        else
                return -EBADMSG;
        int n = noise_aead_decrypt(key, pn, dgram, EFCP_HDR_LEN, dgram + EFCP_HDR_LEN, len - EFCP_HDR_LEN,
                                   p->scratch);
        if (n < 0)
                return -EBADMSG;
        win_add(&p->win, pn);
        if (use_next)
                promote_next(p);
        *ret_frames = p->scratch;
        *ret_len = (size_t)n;
        return 0;
}

const efcp_seal_ops session_seal_ops = {
        .type = EFCP_TYPE_AEAD,
        .trailer = EFCP_TAG_LEN,
        .flags = aead_flags,
        .seal = aead_seal,
        .open = aead_open,
};
