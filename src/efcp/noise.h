/*
 * noise.h — the Noise IK handshake, Noise_IK_25519_ChaChaPoly_SHA256
 * (noiseprotocol.org, revision 34), built only from libsodium's primitives:
 * X25519 (crypto_scalarmult), ChaCha20-Poly1305-IETF (crypto_aead_
 * chacha20poly1305_ietf), SHA-256 (crypto_hash_sha256) and HMAC-SHA-256
 * (crypto_auth_hmacsha256) for the spec's HKDF. No cryptography of our own:
 * this file is the spec's state machine (MixHash, MixKey, EncryptAndHash,
 * Split) and nothing else. tests/test-efcp-noise.c checks it byte for byte
 * against the published cacophony and snow test vectors.
 *
 *   IK:  <- s
 *        ...
 *        -> e, es, s, ss     (message 1: 32 + 48 + payload + 16 bytes)
 *        <- e, ee, se        (message 2: 32 + payload + 16 bytes)
 *
 * The initiator knows the responder's static key beforehand; the responder
 * learns the initiator's from message 1 (encrypted) and must check it against
 * its list of authorised hosts before answering. A DH result of all zeros (a
 * low-order point) fails the handshake. The structure holds secrets:
 * noise_hs_wipe() clears it.
 *
 * Pure functions over caller-owned state; no allocation; any thread.
 */
#pragma once

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NOISE_KEY_LEN 32
#define NOISE_HASH_LEN 32
#define NOISE_TAG_LEN 16
#define NOISE_MSG1_LEN(payload) (32u + 48u + (payload) + 16u)
#define NOISE_MSG2_LEN(payload) (32u + (payload) + 16u)

typedef struct noise_hs {
        uint8_t ck[NOISE_HASH_LEN], h[NOISE_HASH_LEN];
        uint8_t k[NOISE_KEY_LEN];
        uint64_t n;
        bool has_key, initiator, fixed_e;
        uint8_t s_priv[32], s_pub[32]; /* ours, static */
        uint8_t e_priv[32], e_pub[32]; /* ours, ephemeral */
        uint8_t rs[32], re[32];        /* theirs */
} noise_hs;

/* Derives the X25519 public key of priv. 0, or -EINVAL. */
int noise_public_key(const uint8_t priv[32], uint8_t ret_pub[32]);
/* A fresh key pair from libsodium's generator. */
void noise_keypair(uint8_t ret_priv[32], uint8_t ret_pub[32]);

/* Starts a handshake. s_priv: our static private key. rs: the responder's
 * static public key (initiator only; NULL for the responder). The prologue
 * (may be empty) is mixed into the hash: both sides must use the same. */
int noise_hs_init(noise_hs *hs, bool initiator, const void *prologue, size_t prologue_len,
                  const uint8_t s_priv[32], const uint8_t rs[32]);
/* Uses e_priv as our ephemeral key instead of a random one (test vectors). */
int noise_hs_set_ephemeral(noise_hs *hs, const uint8_t e_priv[32]);
void noise_hs_wipe(noise_hs *hs);

/* Message 1 (initiator): writes NOISE_MSG1_LEN(plen) bytes; returns them, or
 * -ENOBUFS, -EINVAL. */
int noise_write_msg1(noise_hs *hs, const void *payload, size_t plen, uint8_t *out, size_t cap);
/* Message 1 (responder): checks and decrypts; the initiator's static key is
 * then in hs->rs (check it!). Returns the payload length, or -EBADMSG. */
int noise_read_msg1(noise_hs *hs, const uint8_t *msg, size_t len, void *payload, size_t cap);
/* Message 2 (responder / initiator): as above. */
int noise_write_msg2(noise_hs *hs, const void *payload, size_t plen, uint8_t *out, size_t cap);
int noise_read_msg2(noise_hs *hs, const uint8_t *msg, size_t len, void *payload, size_t cap);

/* After message 2: the transport keys (initiator to responder, responder to
 * initiator) and the handshake hash. */
void noise_split(const noise_hs *hs, uint8_t ret_i2r[32], uint8_t ret_r2i[32]);

/* ChaCha20-Poly1305-IETF with Noise's nonce (32 zero bits, then n as 64-bit
 * little-endian). out gets len + 16 bytes; decrypt returns the plaintext
 * length or -EBADMSG. out may equal in. */
void noise_encrypt(const uint8_t k[32], uint64_t n, const void *ad, size_t adlen, const void *in,
                   size_t len, uint8_t *out);
int noise_decrypt(const uint8_t k[32], uint64_t n, const void *ad, size_t adlen, const uint8_t *in,
                  size_t len, uint8_t *out);
/* A transport key of the datagrams (session.c): ChaCha20-Poly1305-IETF, or
 * AES-256-GCM when aes (the cipher two hosts may agree on; never inside the
 * handshake: the caller made sure crypto_aead_aes256gcm_is_available()).
 * For AES-256-GCM the key is expanded once, when set (libsodium's
 * crypto_aead_aes256gcm_beforenm), not on every datagram. Holds secrets:
 * sodium_memzero() it when done. The state's type is 16-byte aligned, as
 * libsodium wants it: in a struct, on the stack or from malloc it is. */
typedef struct noise_aead_key {
        crypto_aead_aes256gcm_state aes_state; /* aes: the expanded key */
        uint8_t k[NOISE_KEY_LEN];              /* !aes: the key */
        bool aes;
} noise_aead_key;

void noise_aead_key_set(noise_aead_key *key, bool aes, const uint8_t k[32]);
/* As noise_encrypt / noise_decrypt, with key's cipher and (expanded) key. */
void noise_aead_encrypt(const noise_aead_key *key, uint64_t n, const void *ad, size_t adlen, const void *in,
                        size_t len, uint8_t *out);
int noise_aead_decrypt(const noise_aead_key *key, uint64_t n, const void *ad, size_t adlen, const uint8_t *in,
                       size_t len, uint8_t *out);
