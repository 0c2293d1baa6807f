/*
 * noise.c — Noise_IK_25519_ChaChaPoly_SHA256 from libsodium (see noise.h).
 *
 * Names follow the Noise specification, §5: the symmetric state (ck, h, the
 * cipher key k and nonce n) with MixHash, MixKey (HKDF with two outputs),
 * EncryptAndHash / DecryptAndHash; the handshake state adds the key pairs.
 * HKDF(ck, ikm): temp = HMAC(ck, ikm); out1 = HMAC(temp, 0x01);
 * out2 = HMAC(temp, out1 || 0x02). Every secret on the stack is wiped.
 */
#include "efcp/noise.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

static const char protocol_name[] = "Noise_IK_25519_ChaChaPoly_SHA256";

static void hmac(const uint8_t key[32], const uint8_t *a, size_t alen, const uint8_t *b, size_t blen,
                 uint8_t out[32]) {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, key, 32);
        crypto_auth_hmacsha256_update(&st, a, alen);
        if (blen)
                crypto_auth_hmacsha256_update(&st, b, blen);
        crypto_auth_hmacsha256_final(&st, out);
        sodium_memzero(&st, sizeof(st));
}

/* HKDF with two outputs (the spec's HKDF(chaining_key, ikm, 2)). */
static void hkdf2(const uint8_t ck[32], const uint8_t *ikm, size_t ikm_len, uint8_t out1[32],
                  uint8_t out2[32]) {
        uint8_t temp[32], one = 1, two = 2, o1[32];
        hmac(ck, ikm, ikm_len, NULL, 0, temp);
        hmac(temp, &one, 1, NULL, 0, o1);
        hmac(temp, o1, 32, &two, 1, out2);
        memcpy(out1, o1, 32);
        sodium_memzero(temp, sizeof(temp));
        sodium_memzero(o1, sizeof(o1));
}

static void mix_hash(noise_hs *hs, const void *data, size_t len) {
        crypto_hash_sha256_state st;
        crypto_hash_sha256_init(&st);
        crypto_hash_sha256_update(&st, hs->h, 32);
        crypto_hash_sha256_update(&st, data, len);
        crypto_hash_sha256_final(&st, hs->h);
}

static void mix_key(noise_hs *hs, const uint8_t ikm[32]) {
        hkdf2(hs->ck, ikm, 32, hs->ck, hs->k);
        hs->n = 0;
        hs->has_key = true;
}

/* DH and MixKey of its result; a zero result (low-order point) fails. */
static int mix_dh(noise_hs *hs, const uint8_t priv[32], const uint8_t pub[32]) {
        uint8_t shared[32];
        int r = crypto_scalarmult(shared, priv, pub);
        if (r == 0)
                mix_key(hs, shared);
        sodium_memzero(shared, sizeof(shared));
        return r == 0 ? 0 : -EBADMSG;
}

static void nonce_of(uint64_t n, uint8_t nonce[12]) {
        memset(nonce, 0, 4);
        for (int i = 0; i < 8; i++)
                nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

void noise_encrypt(const uint8_t k[32], uint64_t n, const void *ad, size_t adlen, const void *in, size_t len,
                   uint8_t *out) {
        uint8_t nonce[12];
        nonce_of(n, nonce);
        crypto_aead_chacha20poly1305_ietf_encrypt(out, NULL, in, len, ad, adlen, NULL, nonce, k);
}

int noise_decrypt(const uint8_t k[32], uint64_t n, const void *ad, size_t adlen, const uint8_t *in, size_t len,
                  uint8_t *out) {
        uint8_t nonce[12];
        if (len < NOISE_TAG_LEN)
                return -EBADMSG;
        nonce_of(n, nonce);
        if (crypto_aead_chacha20poly1305_ietf_decrypt(out, NULL, NULL, in, len, ad, adlen, nonce, k) != 0)
                return -EBADMSG;
        return (int)(len - NOISE_TAG_LEN);
}

void noise_aead_key_set(noise_aead_key *key, bool aes, const uint8_t k[32]) {
        sodium_memzero(key, sizeof(*key));
        key->aes = aes;
        if (aes)
                crypto_aead_aes256gcm_beforenm(&key->aes_state, k);
        else
                memcpy(key->k, k, NOISE_KEY_LEN);
}

void noise_aead_encrypt(const noise_aead_key *key, uint64_t n, const void *ad, size_t adlen, const void *in,
                        size_t len, uint8_t *out) {
        if (!key->aes) {
                noise_encrypt(key->k, n, ad, adlen, in, len, out);
                return;
        }
        uint8_t nonce[12];
        nonce_of(n, nonce);
        crypto_aead_aes256gcm_encrypt_afternm(out, NULL, in, len, ad, adlen, NULL, nonce, &key->aes_state);
}

int noise_aead_decrypt(const noise_aead_key *key, uint64_t n, const void *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out) {
        if (!key->aes)
                return noise_decrypt(key->k, n, ad, adlen, in, len, out);
        uint8_t nonce[12];
        if (len < NOISE_TAG_LEN)
                return -EBADMSG;
        nonce_of(n, nonce);
        if (crypto_aead_aes256gcm_decrypt_afternm(out, NULL, NULL, in, len, ad, adlen, nonce, &key->aes_state) != 0)
                return -EBADMSG;
        return (int)(len - NOISE_TAG_LEN);
}

/* EncryptAndHash: with a key, ciphertext (h as associated data) is hashed;
 * out gets len + 16 bytes. */
static size_t encrypt_and_hash(noise_hs *hs, const void *in, size_t len, uint8_t *out) {
        noise_encrypt(hs->k, hs->n++, hs->h, 32, in, len, out);
        mix_hash(hs, out, len + NOISE_TAG_LEN);
        return len + NOISE_TAG_LEN;
}

static int decrypt_and_hash(noise_hs *hs, const uint8_t *in, size_t len, uint8_t *out) {
        int r = noise_decrypt(hs->k, hs->n, hs->h, 32, in, len, out);
        if (r < 0)
                return r;
        hs->n++;
        mix_hash(hs, in, len);
        return r;
}

int noise_public_key(const uint8_t priv[32], uint8_t ret_pub[32]) {
        return crypto_scalarmult_base(ret_pub, priv) == 0 ? 0 : -EINVAL;
}

void noise_keypair(uint8_t ret_priv[32], uint8_t ret_pub[32]) {
        do
                randombytes_buf(ret_priv, 32);
        while (noise_public_key(ret_priv, ret_pub) < 0);
}

int noise_hs_init(noise_hs *hs, bool initiator, const void *prologue, size_t prologue_len,
                  const uint8_t s_priv[32], const uint8_t rs[32]) {
        if (!hs || !s_priv || (initiator && !rs) || (prologue_len && !prologue))
                return -EINVAL;
        memset(hs, 0, sizeof(*hs));
        hs->initiator = initiator;
        /* the name is exactly HASHLEN bytes: h = name, unhashed */
        memcpy(hs->h, protocol_name, 32);
        memcpy(hs->ck, hs->h, 32);
        mix_hash(hs, prologue_len ? prologue : "", prologue_len);
        memcpy(hs->s_priv, s_priv, 32);
        if (noise_public_key(s_priv, hs->s_pub) < 0)
                return -EINVAL;
        /* pre-message: <- s */
        if (initiator)
                memcpy(hs->rs, rs, 32);
        mix_hash(hs, initiator ? hs->rs : hs->s_pub, 32);
        return 0;
}

int noise_hs_set_ephemeral(noise_hs *hs, const uint8_t e_priv[32]) {
        memcpy(hs->e_priv, e_priv, 32);
        hs->fixed_e = true;
        return noise_public_key(e_priv, hs->e_pub);
}

void noise_hs_wipe(noise_hs *hs) { sodium_memzero(hs, sizeof(*hs)); }

/* The "e" token of the writer. */
static void write_e(noise_hs *hs, uint8_t *out) {
        if (!hs->fixed_e)
                noise_keypair(hs->e_priv, hs->e_pub);
        memcpy(out, hs->e_pub, 32);
        mix_hash(hs, hs->e_pub, 32);
}

int noise_write_msg1(noise_hs *hs, const void *payload, size_t plen, uint8_t *out, size_t cap) {
        if (!hs->initiator || (plen && !payload))
                return -EINVAL;
        if (cap < NOISE_MSG1_LEN(plen))
                return -ENOBUFS;
        uint8_t *p = out;
        write_e(hs, p);
        p += 32;
        if (mix_dh(hs, hs->e_priv, hs->rs) < 0)   /* es */
                return -EINVAL;
        p += encrypt_and_hash(hs, hs->s_pub, 32, p); /* s */
        if (mix_dh(hs, hs->s_priv, hs->rs) < 0)   /* ss */
                return -EINVAL;
        p += encrypt_and_hash(hs, payload, plen, p);
        return (int)(p - out);
}

int noise_read_msg1(noise_hs *hs, const uint8_t *msg, size_t len, void *payload, size_t cap) {
        if (hs->initiator || len < NOISE_MSG1_LEN(0) || len - NOISE_MSG1_LEN(0) > cap)
                return -EBADMSG;
        memcpy(hs->re, msg, 32);
        mix_hash(hs, hs->re, 32);
        if (mix_dh(hs, hs->s_priv, hs->re) < 0) /* es */
                return -EBADMSG;
        if (decrypt_and_hash(hs, msg + 32, 48, hs->rs) < 0) /* s */
                return -EBADMSG;
        if (mix_dh(hs, hs->s_priv, hs->rs) < 0) /* ss */
                return -EBADMSG;
        return decrypt_and_hash(hs, msg + 80, len - 80, payload);
}

int noise_write_msg2(noise_hs *hs, const void *payload, size_t plen, uint8_t *out, size_t cap) {
        if (hs->initiator || (plen && !payload))
                return -EINVAL;
        if (cap < NOISE_MSG2_LEN(plen))
                return -ENOBUFS;
        uint8_t *p = out;
        write_e(hs, p);
        p += 32;
        if (mix_dh(hs, hs->e_priv, hs->re) < 0 || /* ee */
            mix_dh(hs, hs->e_priv, hs->rs) < 0)   /* se */
                return -EINVAL;
        p += encrypt_and_hash(hs, payload, plen, p);
        return (int)(p - out);
}

int noise_read_msg2(noise_hs *hs, const uint8_t *msg, size_t len, void *payload, size_t cap) {
        if (!hs->initiator || len < NOISE_MSG2_LEN(0) || len - NOISE_MSG2_LEN(0) > cap)
                return -EBADMSG;
        memcpy(hs->re, msg, 32);
        mix_hash(hs, hs->re, 32);
        if (mix_dh(hs, hs->e_priv, hs->re) < 0 || /* ee */
            mix_dh(hs, hs->s_priv, hs->re) < 0)   /* se */
                return -EBADMSG;
        return decrypt_and_hash(hs, msg + 32, len - 32, payload);
}

void noise_split(const noise_hs *hs, uint8_t ret_i2r[32], uint8_t ret_r2i[32]) {
        hkdf2(hs->ck, NULL, 0, ret_i2r, ret_r2i);
}
