/*
 * handshake.c — the handshake messages of host associations, and what makes a
 * flood of them cheap (WireGuard's design, with libsodium's primitives).
 *
 *   INITIATION (161 bytes) = 3, version, 0, 0, sender index(4),
 *                            Noise IK message 1 (121: e, s, payload),
 *                            mac1(16), mac2(16)
 *   RESPONSE   (85 bytes)  = 4, version, 0, 0, sender index(4), receiver index(4),
 *                            Noise IK message 2 (57: e, payload), mac1(16)
 *   COOKIE     (64 bytes)  = 5, version, 0, 0, receiver index(4), nonce(24),
 *                            cookie sealed with XChaCha20-Poly1305 (32)
 *
 * Initiation payload (encrypted, authenticated by Noise): a timestamp (8,
 * big-endian: now + clock_offset, strictly increasing), flags (1: REKEY,
 * 4: AESGCM offered), the initiator's association id (8) and, for a rekey,
 * the responder's (8). Response payload: flags (2: NEW when the responder
 * made a new association, 4: AESGCM chosen — only when offered and the
 * responder has it too), the responder's association id (8). Unknown flag
 * bits are ignored, so a host that predates AESGCM answers ChaCha20-Poly1305.
 * The keys of the association's datagrams use the cipher the handshake that
 * made them chose; the handshake itself is always Noise's ChaChaPoly.
 *
 * mac1 = MAC(H("mac1----" || receiver's public key), message up to mac1):
 * anyone who does not know our public key is dropped for the price of one
 * BLAKE2b. Under load — more initiations than handshakes_per_sec — an
 * initiation must also carry mac2 = MAC(cookie, message up to mac2), where
 * cookie = MAC(secret, source address) and the secret changes every 120 s;
 * one without is answered by a COOKIE message (no Diffie-Hellman, no state;
 * at most cookie_replies_per_sec), sealed with H("cookie--" || responder's
 * key) and the initiation's mac1 as associated data. With a valid mac2 the
 * source address is proven, and each address gets handshakes_per_addr per
 * second. MAC is BLAKE2b-128 (crypto_generichash): libsodium has no BLAKE2s,
 * so this is WireGuard's construction, not its wire format. H is BLAKE2b-256.
 *
 * Only then does a handshake cost X25519 work; a responder keeps nothing
 * from an initiation that fails Noise, names a key that is not enrolled, or
 * carries a timestamp not newer than the last one from that key (a replay).
 * Two hosts initiating at once: the one with the smaller public key goes on
 * as initiator, the other answers; the smaller key's initiation is sent
 * again soon (at once if it had gone unanswered for a retry already, else a
 * twentieth of a retry later) rather than at the next retry, in case the
 * other host dropped it (it did not know this one yet). Every retry is a new initiation (a new
 * ephemeral key and timestamp), so only the latest initiation and its
 * response pair up.
 */
#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "efcp/host_internal.h"
#include "efcp/wire.h"

static const char prologue[] = "ipcf efcp host association v1";
#define MAC1_OFF_INIT (HS_INIT_LEN - 2 * HS_MAC_LEN)
#define MAC2_OFF_INIT (HS_INIT_LEN - HS_MAC_LEN)
#define MAC1_OFF_RESP (HS_RESP_LEN - HS_MAC_LEN)

void hs_mac(const uint8_t *key, size_t keylen, const void *a, size_t alen, uint8_t out[HS_MAC_LEN]) {
        crypto_generichash(out, HS_MAC_LEN, a, alen, key, keylen);
}

void hs_derive(const char label[8], const uint8_t pub[32], uint8_t out[32]) {
        uint8_t in[40];
        memcpy(in, label, 8);
        memcpy(in + 8, pub, 32);
        crypto_generichash(out, 32, in, sizeof(in), NULL, 0);
}

static void put32(uint8_t *p, uint32_t v) {
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t)(v >> (24 - 8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
        put32(p, (uint32_t)(v >> 32));
        put32(p + 4, (uint32_t)v);
}
static uint32_t get32(const uint8_t *p) {
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static uint64_t get64(const uint8_t *p) { return ((uint64_t)get32(p) << 32) | get32(p + 4); }

/* A token bucket of rate per second (burst: rate). */
static bool bucket_take(bucket *b, uint32_t rate, uint64_t now) {
        if (rate == 0)
                return false;
        uint64_t per = 1000000000ull / rate;
        if (b->at == 0 || now < b->at) {
                b->at = now;
                b->tokens = rate;
        }
        uint64_t add = (now - b->at) / per;
        if (add) {
                b->tokens = add + b->tokens >= rate ? rate : b->tokens + (uint32_t)add;
                b->at = b->tokens == rate ? now : b->at + add * per;
        }
        if (!b->tokens)
                return false;
        b->tokens--;
        return true;
}

void hs_rotate_secret(efcp_host *h) {
        memcpy(h->cookie_secret_prev, h->cookie_secret, 32);
        randombytes_buf(h->cookie_secret, 32);
        h->cookie_secret_at = h->now;
}

static void cookie_for(const uint8_t secret[32], const efcp_addr *a, uint8_t out[HS_MAC_LEN]) {
        hs_mac(secret, 32, a->bytes, a->len, out);
}

/* ---- initiator ------------------------------------------------------------- */

int hs_initiate(efcp_peer *p, bool rekey) {
        efcp_host *h = p->h;
        if (rekey && !p->a)
                return -ENOTCONN;
        noise_hs_wipe(&p->hs);
        int r = noise_hs_init(&p->hs, true, prologue, sizeof(prologue) - 1, h->priv, p->pub);
        if (r < 0)
                return r;
        if (!p->hs_pending || p->hs_rekey != rekey) {
                /* a new attempt; retries keep the index and association id */
                p->hs_rekey = rekey;
                p->hs_index = rekey ? p->local_index : host_new_index(h);
                if (rekey)
                        p->hs_assoc_id = p->assoc_id;
                else
                        randombytes_buf(&p->hs_assoc_id, sizeof(p->hs_assoc_id));
                p->hs_tries = 0;
        }
        uint64_t ts = h->now + h->cfg.clock_offset_ns;
        if (ts <= p->last_ts_sent)
                ts = p->last_ts_sent + 1;
        p->last_ts_sent = ts;
        uint8_t pl[HS_INIT_PAYLOAD];
        put64(pl, ts);
        pl[8] = (rekey ? HS_FLAG_REKEY : 0) | (h->cfg.aes_gcm ? HS_FLAG_AESGCM : 0);
        put64(pl + 9, p->hs_assoc_id);
        put64(pl + 17, rekey ? p->remote_assoc_id : 0);
        uint8_t *m = p->out;
        m[0] = HS_TYPE_INIT;
        m[1] = EFCP_VERSION;
        m[2] = m[3] = 0;
        put32(m + 4, p->hs_index);
        r = noise_write_msg1(&p->hs, pl, sizeof(pl), m + 8, HS_INIT_LEN - 8);
        if (r < 0)
                return r;
        h->st.dh_done++;
        hs_mac(p->mac1_key, 32, m, MAC1_OFF_INIT, m + MAC1_OFF_INIT);
        memcpy(p->last_mac1, m + MAC1_OFF_INIT, HS_MAC_LEN);
        if (p->cookie_until > h->now)
                hs_mac(p->cookie, HS_MAC_LEN, m, MAC2_OFF_INIT, m + MAC2_OFF_INIT);
        else
                memset(m + MAC2_OFF_INIT, 0, HS_MAC_LEN);
        p->out_len = HS_INIT_LEN;
        p->hs_pending = true;
        p->hs_tries++;
        p->hs_next = h->now + h->cfg.handshake_retry_ns;
        return 0;
}

void hs_timeout(efcp_peer *p, uint64_t now) {
        if (p->hs_pending && now >= p->hs_next)
                hs_initiate(p, p->hs_rekey);
        else if (!p->hs_pending && p->a && !efcp_assoc_dead(p->a) && session_wants_rekey(p, now))
                hs_initiate(p, true);
}

/* ---- responder -------------------------------------------------------------- */

/* Queues a cookie reply to src for the initiation d (no state, no DH). */
static void cookie_reply_to(efcp_host *h, const uint8_t *d, const efcp_addr *src) {
        if (h->ncq == COOKIE_Q || !bucket_take(&h->cookie_bucket, h->cfg.cookie_replies_per_sec, h->now)) {
                h->st.cookie_limited++;
                return;
        }
        cookie_reply *c = &h->cq[h->ncq++];
        c->to = *src;
        uint8_t *m = c->msg, cookie[HS_MAC_LEN];
        m[0] = HS_TYPE_COOKIE;
        m[1] = EFCP_VERSION;
        m[2] = m[3] = 0;
        memcpy(m + 4, d + 4, 4); /* the initiation's sender index */
        randombytes_buf(m + 8, 24);
        cookie_for(h->cookie_secret, src, cookie);
        crypto_aead_xchacha20poly1305_ietf_encrypt(m + 32, NULL, cookie, HS_MAC_LEN, d + MAC1_OFF_INIT,
                                                   HS_MAC_LEN, NULL, m + 8, h->cookie_key);
        h->st.cookie_replies_out++;
}

static bool mac2_ok(efcp_host *h, const uint8_t *d, const efcp_addr *src) {
        uint8_t cookie[HS_MAC_LEN], mac[HS_MAC_LEN];
        for (int k = 0; k < 2; k++) {
                cookie_for(k ? h->cookie_secret_prev : h->cookie_secret, src, cookie);
                hs_mac(cookie, HS_MAC_LEN, d, MAC2_OFF_INIT, mac);
                if (sodium_memcmp(mac, d + MAC2_OFF_INIT, HS_MAC_LEN) == 0)
                        return true;
        }
        return false;
}

/* Once the source address is proven: a bucket per address (hashed). */
static bool addr_take(efcp_host *h, const efcp_addr *src) {
        uint8_t tag[8];
        crypto_generichash(tag, sizeof(tag), src->bytes, src->len, h->cookie_secret, 32);
        typeof(h->per_addr[0]) *s = &h->per_addr[tag[0] % RATE_SLOTS];
        if (memcmp(s->tag, tag, 8) != 0) {
                memcpy(s->tag, tag, 8);
                s->b = (bucket){0};
        }
        return bucket_take(&s->b, h->cfg.handshakes_per_addr, h->now);
}

/* Does the initiation name p's current association? */
static bool names_current(const efcp_peer *p, uint32_t sender, uint64_t init_id, uint64_t resp_id) {
        return p->a && !efcp_assoc_dead(p->a) && init_id == p->remote_assoc_id && resp_id == p->assoc_id &&
               sender == p->remote_index;
}

void hs_on_init(efcp_host *h, const uint8_t *d, size_t len, const efcp_addr *src) {
        h->st.init_in++;
        if (len != HS_INIT_LEN) {
                h->st.dropped_short++;
                return;
        }
        uint8_t mac[HS_MAC_LEN];
        hs_mac(h->mac1_key, 32, d, MAC1_OFF_INIT, mac);
        if (sodium_memcmp(mac, d + MAC1_OFF_INIT, HS_MAC_LEN) != 0) {
                h->st.init_bad_mac1++;
                return;
        }
        if (!bucket_take(&h->hs_bucket, h->cfg.handshakes_per_sec, h->now)) {
                /* under load: only proven source addresses, each rate-limited */
                if (!mac2_ok(h, d, src)) {
                        h->st.init_need_cookie++;
                        cookie_reply_to(h, d, src);
                        return;
                }
                if (!addr_take(h, src)) {
                        h->st.init_rate_limited++;
                        return;
                }
        }
        noise_hs hs;
        uint8_t pl[HS_INIT_PAYLOAD];
        h->st.dh_done++;
        if (noise_hs_init(&hs, false, prologue, sizeof(prologue) - 1, h->priv, NULL) < 0 ||
            noise_read_msg1(&hs, d + 8, NOISE_MSG1_LEN(HS_INIT_PAYLOAD), pl, sizeof(pl)) != HS_INIT_PAYLOAD) {
                h->st.dropped_auth++;
                goto out;
        }
        efcp_peer *p = host_peer_by_key(h, hs.rs);
        if (!p) {
                h->st.init_bad_key++; /* not an enrolled host */
                goto out;
        }
        uint64_t ts = get64(pl), init_id = get64(pl + 9), resp_id = get64(pl + 17);
        uint32_t sender = get32(d + 4);
        if (ts <= p->last_ts_seen) {
                h->st.init_replayed++;
                goto out;
        }
        if (p->hs_pending && memcmp(h->pub, p->pub, 32) < 0) {
                /* both initiating: the smaller key stays initiator. The peer
                 * may have dropped ours (it did not know us yet, or was
                 * down): its initiation says it is there now, so ours goes
                 * again soon rather than up to a retry later — at once if it
                 * has gone unanswered for a retry already, else after a
                 * twentieth of one (the answer to a true crossing comes
                 * first, within a round trip, and the resend is moot). At
                 * most once per retry interval: a replayed initiation cannot
                 * make us initiate faster than that. */
                h->st.init_tie_ignored++;
                if (!p->hs_hurried_at || h->now >= p->hs_hurried_at + h->cfg.handshake_retry_ns) {
                        uint64_t at = h->now + (p->hs_tries > 1 ? 0 : h->cfg.handshake_retry_ns / 20);
                        p->hs_hurried_at = h->now;
                        if (at < p->hs_next)
                                p->hs_next = at;
                }
                goto out;
        }
        p->last_ts_seen = ts;
        p->hs_pending = false;
        p->addr = *src;
        bool rekey = (pl[8] & HS_FLAG_REKEY) && names_current(p, sender, init_id, resp_id);
        bool repeat = !rekey && !(pl[8] & HS_FLAG_REKEY) && p->a && !efcp_assoc_dead(p->a) &&
                      init_id == p->remote_assoc_id;
        if (repeat) {
                p->remote_index = sender;
                efcp_assoc_set_remote_index(p->a, sender);
        } else if (!rekey) {
                p->local_index = host_new_index(h);
                randombytes_buf(&p->assoc_id, sizeof(p->assoc_id));
                p->initiated = false;
                if (host_assoc_create(p, sender, init_id) < 0)
                        goto out;
        }
        uint8_t rp[HS_RESP_PAYLOAD];
        /* AES-256-GCM when both offer it; a host that does not know the
         * flag ignores it and answers without: ChaCha20-Poly1305 */
        bool aes = (pl[8] & HS_FLAG_AESGCM) && h->cfg.aes_gcm;
        rp[0] = (rekey ? 0 : HS_FLAG_NEW) | (aes ? HS_FLAG_AESGCM : 0);
        put64(rp + 1, p->assoc_id);
        uint8_t *m = p->out;
        m[0] = HS_TYPE_RESP;
        m[1] = EFCP_VERSION;
        m[2] = m[3] = 0;
        put32(m + 4, p->local_index);
        put32(m + 8, sender);
        if (noise_write_msg2(&hs, rp, sizeof(rp), m + 12, HS_RESP_LEN - 12) < 0)
                goto out;
        hs_mac(p->mac1_key, 32, m, MAC1_OFF_RESP, m + MAC1_OFF_RESP);
        p->out_len = HS_RESP_LEN;
        uint8_t i2r[32], r2i[32];
        noise_split(&hs, i2r, r2i);
        session_install(p, r2i, i2r, aes, false, !rekey);
        sodium_memzero(i2r, 32);
        sodium_memzero(r2i, 32);
        if (rekey)
                h->st.rekeys++;
        else
                h->st.handshakes_done++;
out:
        noise_hs_wipe(&hs);
}

/* ---- initiator, answered ------------------------------------------------------ */

void hs_on_resp(efcp_host *h, const uint8_t *d, size_t len, const efcp_addr *src) {
        h->st.resp_in++;
        if (len != HS_RESP_LEN) {
                h->st.dropped_short++;
                return;
        }
        efcp_peer *p = host_peer_by_index(h, get32(d + 8));
        uint8_t mac[HS_MAC_LEN];
        hs_mac(h->mac1_key, 32, d, MAC1_OFF_RESP, mac);
        if (!p || !p->hs_pending || p->hs_index != get32(d + 8) ||
            sodium_memcmp(mac, d + MAC1_OFF_RESP, HS_MAC_LEN) != 0) {
                h->st.resp_bad++;
                return;
        }
        /* work on a copy: a forged response must not spoil the real one */
        noise_hs hs = p->hs;
        uint8_t rp[HS_RESP_PAYLOAD];
        h->st.dh_done++;
        if (noise_read_msg2(&hs, d + 12, NOISE_MSG2_LEN(HS_RESP_PAYLOAD), rp, sizeof(rp)) != HS_RESP_PAYLOAD) {
                h->st.resp_bad++;
                noise_hs_wipe(&hs);
                return;
        }
        uint32_t sender = get32(d + 4);
        uint64_t resp_id = get64(rp + 1);
        bool aes = rp[0] & HS_FLAG_AESGCM;
        if (aes && !h->cfg.aes_gcm) {
                /* chosen without our offer: this responder breaks the protocol */
                h->st.resp_bad++;
                noise_hs_wipe(&hs);
                return;
        }
        uint8_t i2r[32], r2i[32];
        noise_split(&hs, i2r, r2i);
        noise_hs_wipe(&hs);
        noise_hs_wipe(&p->hs);
        p->hs_pending = false;
        p->addr = *src;
        bool rekey = p->hs_rekey && !(rp[0] & HS_FLAG_NEW) && p->a && resp_id == p->remote_assoc_id;
        if (rekey) {
                session_install(p, i2r, r2i, aes, true, false);
                h->st.rekeys++;
                host_event(h, EFCP_HOST_EV_REKEYED, p, NULL, 0);
        } else {
                bool repeat = p->a && !efcp_assoc_dead(p->a) && p->assoc_id == p->hs_assoc_id &&
                              p->remote_assoc_id == resp_id;
                if (repeat) {
                        p->remote_index = sender;
                        efcp_assoc_set_remote_index(p->a, sender);
                } else {
                        p->local_index = p->hs_index;
                        p->assoc_id = p->hs_assoc_id;
                        if (host_assoc_create(p, sender, resp_id) < 0)
                                goto out;
                }
                p->initiated = true;
                session_install(p, i2r, r2i, aes, true, true);
                h->st.handshakes_done++;
        }
out:
        sodium_memzero(i2r, 32);
        sodium_memzero(r2i, 32);
}

void hs_on_cookie(efcp_host *h, const uint8_t *d, size_t len) {
        h->st.cookie_replies_in++;
        if (len != HS_COOKIE_LEN)
                return;
        efcp_peer *p = host_peer_by_index(h, get32(d + 4));
        if (!p || !p->hs_pending || p->hs_index != get32(d + 4))
                return;
        uint8_t cookie[HS_MAC_LEN];
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, d + 32, HS_MAC_LEN + 16,
                                                       p->last_mac1, HS_MAC_LEN, d + 8, p->cookie_key) != 0)
                return;
        memcpy(p->cookie, cookie, HS_MAC_LEN);
        p->cookie_until = h->now + COOKIE_LIFE_NS - 10 * 1000000000ull;
        hs_initiate(p, p->hs_rekey); /* again at once, now with mac2 */
}
