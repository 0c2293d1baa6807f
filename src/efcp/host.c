/*
 * host.c — this host and its enrolled peers (host.h): life, input dispatch by
 * datagram type and receiver index, output across peers, timers, events.
 *
 * Input: the first byte says what a datagram is. AEAD datagrams (type 2) go
 * to the association whose receiver index they carry, which authenticates
 * them (session.c) before anything is acted on; only an authenticated one
 * moves the peer's address (roaming). Handshake messages (3, 4, 5) go to
 * handshake.c. Plain datagrams (type 1) are never accepted here: plain mode
 * exists only for an efcp_assoc driven directly (benchmarks). Anything else
 * is counted and dropped.
 *
 * Output: pending cookie replies first (to their source addresses), then
 * each peer in turn: its handshake message, else its association's output.
 *
 * An association that a new handshake replaces (the peer restarted) is
 * retired: it dies with EFCP_REASON_PEER_RESTARTED (every open flow is told)
 * and is handed to the caller with EFCP_HOST_EV_ASSOC_RETIRED.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "efcp/host_internal.h"
#include "efcp/wire.h"

void efcp_host_config_default(efcp_host_config *c) {
        *c = (efcp_host_config){
                .rekey_after_ns = 120 * 1000000000ull,
                .rekey_after_packets = UINT64_C(1) << 30,
                .handshake_retry_ns = 1000000000ull,
                .handshakes_per_sec = 100,
                .handshakes_per_addr = 5,
                .cookie_replies_per_sec = 1000,
                .max_peers = 256,
                .aes_gcm = sodium_init() >= 0 && crypto_aead_aes256gcm_is_available(),
        };
        efcp_config_default(&c->assoc);
}

int efcp_host_new(const efcp_host_config *cfg, uint64_t now, efcp_host **ret) {
        if (!cfg || !ret || cfg->max_peers == 0 || cfg->handshake_retry_ns == 0 || cfg->rekey_after_ns == 0 ||
            cfg->rekey_after_packets == 0 || sodium_init() < 0)
                return -EINVAL;
        efcp_host *h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->cfg = *cfg;
        if (!crypto_aead_aes256gcm_is_available())
                h->cfg.aes_gcm = false; /* offered only where this CPU has it */
        h->now = now;
        memcpy(h->priv, cfg->private_key, 32);
        sodium_memzero(h->cfg.private_key, 32);
        if (noise_public_key(h->priv, h->pub) < 0) {
                efcp_host_free(h);
                return -EINVAL;
        }
        hs_derive("mac1----", h->pub, h->mac1_key);
        hs_derive("cookie--", h->pub, h->cookie_key);
        randombytes_buf(h->cookie_secret, 32);
        hs_rotate_secret(h);
        h->peers = calloc(cfg->max_peers, sizeof(*h->peers));
        if (!h->peers) {
                efcp_host_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

efcp_host *efcp_host_free(efcp_host *h) {
        if (!h)
                return NULL;
        for (uint32_t i = 0; i < h->npeers; i++) {
                efcp_peer *p = h->peers[i];
                efcp_assoc_free(p->a);
                session_wipe(p);
                noise_hs_wipe(&p->hs);
                free(p);
        }
        /* associations retired but never collected */
        for (uint32_t k = 0; k < h->ev_count; k++) {
                efcp_host_event *e = &h->ev[(h->ev_head + k) % HOST_EV_MAX];
                if (e->type == EFCP_HOST_EV_ASSOC_RETIRED)
                        efcp_assoc_free(e->assoc);
        }
        free(h->peers);
        sodium_memzero(h, sizeof(*h));
        free(h);
        return NULL;
}

void efcp_host_public_key(const efcp_host *h, uint8_t ret_pub[32]) { memcpy(ret_pub, h->pub, 32); }

/* ---- peers --------------------------------------------------------------------- */

efcp_peer *host_peer_by_key(efcp_host *h, const uint8_t pub[32]) {
        for (uint32_t i = 0; i < h->npeers; i++)
                if (sodium_memcmp(h->peers[i]->pub, pub, 32) == 0)
                        return h->peers[i];
        return NULL;
}

efcp_peer *efcp_host_find_peer(efcp_host *h, const uint8_t pub[32]) { return h && pub ? host_peer_by_key(h, pub) : NULL; }

efcp_peer *host_peer_by_index(efcp_host *h, uint32_t index) {
        for (uint32_t i = 0; i < h->npeers; i++) {
                efcp_peer *p = h->peers[i];
                if ((p->hs_pending && p->hs_index == index) || (p->a && p->local_index == index))
                        return p;
        }
        return NULL;
}

/* A random receiver index no peer uses (0 is never one). */
uint32_t host_new_index(efcp_host *h) {
        for (;;) {
                uint32_t x = randombytes_random();
                if (x && !host_peer_by_index(h, x))
                        return x;
        }
}

int efcp_host_add_peer(efcp_host *h, const uint8_t pub[32], const void *addr, size_t addrlen, efcp_peer **ret) {
        static const uint8_t zero[32];
        if (!h || !pub || !ret || addrlen > EFCP_ADDR_MAX || (addrlen && !addr) ||
            sodium_memcmp(pub, h->pub, 32) == 0 || sodium_memcmp(pub, zero, 32) == 0)
                return -EINVAL;
        if (host_peer_by_key(h, pub))
                return -EEXIST;
        if (h->npeers == h->cfg.max_peers)
                return -ENOSPC;
        efcp_peer *p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->h = h;
        memcpy(p->pub, pub, 32);
        hs_derive("mac1----", pub, p->mac1_key);
        hs_derive("cookie--", pub, p->cookie_key);
        if (addrlen)
                memcpy(p->addr.bytes, addr, addrlen);
        p->addr.len = (uint32_t)addrlen;
        h->peers[h->npeers++] = p;
        *ret = p;
        return 0;
}

int efcp_peer_connect(efcp_peer *p, uint64_t now) {
        if (!p)
                return -EINVAL;
        p->h->now = now;
        p->hs_pending = false; /* a fresh attempt */
        return hs_initiate(p, false);
}

efcp_assoc *efcp_peer_assoc(const efcp_peer *p) { return p ? p->a : NULL; }
void efcp_peer_public_key(const efcp_peer *p, uint8_t ret_pub[32]) { memcpy(ret_pub, p->pub, 32); }
const efcp_addr *efcp_peer_addr(const efcp_peer *p) { return &p->addr; }
bool efcp_peer_handshaking(const efcp_peer *p) { return p->hs_pending; }

int efcp_peer_cipher(const efcp_peer *p) {
        if (!p->cur.valid)
                return -ENOTCONN;
        return p->cur.aes ? EFCP_CIPHER_AES256_GCM : EFCP_CIPHER_CHACHA20_POLY1305;
}

/* ---- associations ------------------------------------------------------------ */

int host_assoc_create(efcp_peer *p, uint32_t remote_index, uint64_t remote_assoc_id) {
        efcp_host *h = p->h;
        efcp_config c = h->cfg.assoc;
        c.local_index = p->local_index;
        c.remote_index = remote_index;
        randombytes_buf(&c.seed, sizeof(c.seed));
        efcp_assoc *a;
        int r = efcp_assoc_new(&c, h->now, &a);
        if (r < 0)
                return r;
        efcp_assoc_set_seal(a, &session_seal_ops, p);
        if (p->a) {
                /* the peer started a new association: the old one is over */
                efcp_assoc_abort(p->a, EFCP_REASON_PEER_RESTARTED);
                host_event(h, EFCP_HOST_EV_ASSOC_RETIRED, p, p->a, EFCP_REASON_PEER_RESTARTED);
                h->st.restarts++;
        }
        p->a = a;
        p->remote_index = remote_index;
        p->remote_assoc_id = remote_assoc_id;
        host_event(h, EFCP_HOST_EV_PEER_UP, p, a, 0);
        return 0;
}

/* ---- events ----------------------------------------------------------------------- */

void host_event(efcp_host *h, efcp_host_event_type type, efcp_peer *p, efcp_assoc *a, uint32_t reason) {
        if (h->ev_count == HOST_EV_MAX) {
                /* the caller does not drain: keep what must not leak */
                efcp_host_event *old = &h->ev[h->ev_head];
                if (old->type == EFCP_HOST_EV_ASSOC_RETIRED)
                        efcp_assoc_free(old->assoc);
                h->ev_head = (h->ev_head + 1) % HOST_EV_MAX;
                h->ev_count--;
        }
        h->ev[(h->ev_head + h->ev_count++) % HOST_EV_MAX] =
                (efcp_host_event){.type = type, .peer = p, .assoc = a, .reason = reason};
}

int efcp_host_event_next(efcp_host *h, efcp_host_event *ret) {
        if (!h || !ret || !h->ev_count)
                return 0;
        *ret = h->ev[h->ev_head];
        h->ev_head = (h->ev_head + 1) % HOST_EV_MAX;
        h->ev_count--;
        return 1;
}

const efcp_host_stats *efcp_host_stats_get(const efcp_host *h) { return &h->st; }

/* ---- input ----------------------------------------------------------------------- */

int efcp_host_input(efcp_host *h, const void *dgram, size_t len, const void *src, size_t srclen, uint64_t now) {
        if (!h || (!dgram && len) || srclen > EFCP_ADDR_MAX || (srclen && !src))
                return -EINVAL;
        h->now = now;
        h->st.dgrams_in++;
        const uint8_t *d = dgram;
        efcp_addr from = {.len = (uint32_t)srclen};
        if (srclen)
                memcpy(from.bytes, src, srclen);
        if (len < 8 || d[1] != EFCP_VERSION) {
                h->st.dropped_short++;
                return -EBADMSG;
        }
        switch (d[0]) {
        case EFCP_TYPE_AEAD: {
                uint32_t idx;
                efcp_peer *p;
                if (efcp_datagram_index(d, len, &idx) < 0 || !(p = host_peer_by_index(h, idx)) || !p->a ||
                    p->local_index != idx) {
                        h->st.dropped_index++;
                        return -ENOENT;
                }
                uint64_t bad = efcp_assoc_stats(p->a)->bad_crc;
                int r = efcp_input(p->a, d, len, now);
                if (efcp_assoc_stats(p->a)->bad_crc != bad) {
                        h->st.dropped_auth++;
                        return r;
                }
                if (r == 0 || r == -ENOTCONN)
                        p->addr = from; /* authenticated: the peer is there now */
                return r;
        }
        case HS_TYPE_INIT:
                hs_on_init(h, d, len, &from);
                return 0;
        case HS_TYPE_RESP:
                hs_on_resp(h, d, len, &from);
                return 0;
        case HS_TYPE_COOKIE:
                hs_on_cookie(h, d, len);
                return 0;
        default:
                h->st.dropped_type++;
                return -EBADMSG;
        }
}

/* ---- output and timers -------------------------------------------------------------- */

void efcp_host_timeout(efcp_host *h, uint64_t now) {
        h->now = now;
        if (now >= h->cookie_secret_at + COOKIE_LIFE_NS)
                hs_rotate_secret(h);
        for (uint32_t i = 0; i < h->npeers; i++) {
                efcp_peer *p = h->peers[i];
                hs_timeout(p, now);
                if (p->a)
                        efcp_timeout(p->a, now);
        }
}

int efcp_host_output(efcp_host *h, void *buf, size_t cap, uint64_t now, efcp_addr *ret_dst) {
        if (!h || !buf || !ret_dst || cap < h->cfg.assoc.max_datagram)
                return -EINVAL;
        efcp_host_timeout(h, now);
        if (h->ncq) {
                cookie_reply *c = &h->cq[--h->ncq];
                memcpy(buf, c->msg, HS_COOKIE_LEN);
                *ret_dst = c->to;
                return HS_COOKIE_LEN;
        }
        for (uint32_t k = 0; k < h->npeers; k++) {
                efcp_peer *p = h->peers[(h->out_rr + k) % h->npeers];
                int n = 0;
                if (p->out_len) {
                        memcpy(buf, p->out, p->out_len);
                        n = (int)p->out_len;
                        p->out_len = 0;
                } else if (p->a) {
                        n = efcp_output(p->a, buf, cap, now);
                }
                if (n > 0) {
                        *ret_dst = p->addr;
                        h->out_rr = (h->out_rr + k + 1) % h->npeers;
                        return n;
                }
        }
        return 0;
}

uint64_t efcp_host_next_deadline(const efcp_host *h) {
        if (!h)
                return UINT64_MAX;
        if (h->ncq)
                return h->now;
        uint64_t d = h->cookie_secret_at + COOKIE_LIFE_NS;
        for (uint32_t i = 0; i < h->npeers; i++) {
                const efcp_peer *p = h->peers[i];
                if (p->out_len)
                        return h->now;
                if (p->hs_pending && p->hs_next < d)
                        d = p->hs_next;
                if (p->a) {
                        uint64_t t = efcp_next_deadline(p->a);
                        if (t < d)
                                d = t;
                        if (p->cur.valid && !p->hs_pending) {
                                t = p->cur.born + h->cfg.rekey_after_ns + (p->initiated ? 0 : h->cfg.rekey_after_ns / 2);
                                if (t < d)
                                        d = t;
                        }
                }
        }
        return d;
}
