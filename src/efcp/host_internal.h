/*
 * host_internal.h — the host layer's private structures, shared by:
 *
 *   host.c       hosts and peers: life, input dispatch, output, timers, events
 *   handshake.c  the handshake messages: initiation, response, cookie reply;
 *                mac1/mac2, cookies, rate limits (WireGuard's model)
 *   session.c    an association's keys: the AEAD seal ops, key phases,
 *                rekeying, the replay window
 *
 * Nobody outside these files includes it.
 */
#pragma once

#include "efcp/host.h"
#include "efcp/noise.h"

#define HS_TYPE_INIT 3
#define HS_TYPE_RESP 4
#define HS_TYPE_COOKIE 5
#define HS_MAC_LEN 16
#define HS_INIT_PAYLOAD 25 /* timestamp(8) flags(1) initiator assoc id(8) responder assoc id(8) */
#define HS_RESP_PAYLOAD 9  /* flags(1) responder assoc id(8) */
#define HS_INIT_LEN (8 + NOISE_MSG1_LEN(HS_INIT_PAYLOAD) + 2 * HS_MAC_LEN)  /* 161 */
#define HS_RESP_LEN (12 + NOISE_MSG2_LEN(HS_RESP_PAYLOAD) + HS_MAC_LEN)     /* 85 */
#define HS_COOKIE_LEN (8 + 24 + HS_MAC_LEN + 16)                             /* 64 */
#define HS_FLAG_REKEY 0x01 /* initiation: new keys for the association named */
#define HS_FLAG_NEW 0x02   /* response: a new association (the one named is unknown) */
#define HS_FLAG_AESGCM 0x04 /* initiation: AES-256-GCM offered; response: chosen */
#define REPLAY_BITS 2048
#define RATE_SLOTS 64
#define HOST_EV_MAX 64
#define COOKIE_Q 16
#define PREV_KEY_GRACE_NS (5 * 1000000000ull)
#define COOKIE_LIFE_NS (120 * 1000000000ull)

/* A token bucket: tokens per second, burst as large. */
typedef struct bucket {
        uint64_t at;     /* last refill */
        uint32_t tokens; /* whole tokens */
} bucket;

typedef struct keyset {
        noise_aead_key send, recv; /* AES-256-GCM's expanded once, at install */
        bool valid;
        bool aes;        /* AES-256-GCM, else ChaCha20-Poly1305-IETF */
        uint8_t phase;   /* the header's key-phase bit these keys go with */
        uint64_t born;   /* when installed */
        uint64_t sent;   /* datagrams sealed */
} keyset;

typedef struct replay_win {
        uint64_t top;    /* largest number accepted */
        bool any;
        uint64_t bits[REPLAY_BITS / 64];
} replay_win;

struct efcp_peer {
        efcp_host *h;
        uint8_t pub[32];
        uint8_t mac1_key[32], cookie_key[32]; /* keyed by the peer's public key */
        efcp_addr addr;

        /* the association and its keys (session.c) */
        efcp_assoc *a;
        uint64_t assoc_id, remote_assoc_id;
        uint32_t local_index, remote_index;
        bool initiated;      /* we initiated the association: time-based rekey is ours */
        keyset cur, next;    /* next: responder's new keys, until the peer uses them */
        noise_aead_key prev_recv;
        uint8_t prev_phase;
        bool prev_valid;
        uint64_t prev_until;
        replay_win win;
        uint8_t scratch[65536]; /* decrypted frames, valid until the next datagram */

        /* our handshake in progress (handshake.c) */
        noise_hs hs;
        bool hs_pending, hs_rekey;
        uint32_t hs_index;   /* sender index of our initiation */
        uint64_t hs_assoc_id;
        uint64_t hs_next;    /* resend at */
        uint32_t hs_tries;
        uint64_t hs_hurried_at; /* an unanswered initiation last sent again early (handshake.c) */
        uint8_t last_mac1[HS_MAC_LEN];
        uint8_t cookie[HS_MAC_LEN];
        uint64_t cookie_until;
        uint64_t last_ts_sent, last_ts_seen;
        uint8_t out[HS_INIT_LEN]; /* a handshake message to send */
        size_t out_len;
};

typedef struct cookie_reply {
        efcp_addr to;
        uint8_t msg[HS_COOKIE_LEN];
} cookie_reply;

struct efcp_host {
        efcp_host_config cfg;
        uint8_t priv[32], pub[32];
        uint8_t mac1_key[32], cookie_key[32]; /* keyed by our public key */
        uint64_t now;
        efcp_peer **peers;
        uint32_t npeers, out_rr;
        efcp_host_stats st;

        /* cookies and rate limits (handshake.c) */
        uint8_t cookie_secret[32], cookie_secret_prev[32];
        uint64_t cookie_secret_at;
        bucket hs_bucket, cookie_bucket;
        struct {
                uint8_t tag[8];
                bucket b;
        } per_addr[RATE_SLOTS];
        cookie_reply cq[COOKIE_Q];
        uint32_t ncq;

        efcp_host_event ev[HOST_EV_MAX];
        uint32_t ev_head, ev_count;
};

/* host.c */
void host_event(efcp_host *h, efcp_host_event_type type, efcp_peer *p, efcp_assoc *a, uint32_t reason);
efcp_peer *host_peer_by_key(efcp_host *h, const uint8_t pub[32]);
efcp_peer *host_peer_by_index(efcp_host *h, uint32_t index);
uint32_t host_new_index(efcp_host *h);
/* Makes the peer's association new (after a handshake that did not name the
 * current one): the old one, if any, is retired to the caller. */
int host_assoc_create(efcp_peer *p, uint32_t remote_index, uint64_t remote_assoc_id);

/* handshake.c */
int hs_initiate(efcp_peer *p, bool rekey);
void hs_on_init(efcp_host *h, const uint8_t *d, size_t len, const efcp_addr *src);
void hs_on_resp(efcp_host *h, const uint8_t *d, size_t len, const efcp_addr *src);
void hs_on_cookie(efcp_host *h, const uint8_t *d, size_t len);
void hs_timeout(efcp_peer *p, uint64_t now);
void hs_rotate_secret(efcp_host *h);
/* The BLAKE2b-128 MAC (libsodium's crypto_generichash, keyed). */
void hs_mac(const uint8_t *key, size_t keylen, const void *a, size_t alen, uint8_t out[HS_MAC_LEN]);
void hs_derive(const char label[8], const uint8_t pub[32], uint8_t out[32]);

/* session.c */
extern const efcp_seal_ops session_seal_ops;
/* New keys from a finished handshake: as the initiator, used at once; as
 * the responder, kept as next until the peer uses them. fresh: the first
 * keys of a new association (replaces everything, phase 0). aes: the
 * handshake chose AES-256-GCM for them (else ChaCha20-Poly1305). */
void session_install(efcp_peer *p, const uint8_t send[32], const uint8_t recv[32], bool aes, bool initiator,
                     bool fresh);
/* Time or volume says: new keys. */
bool session_wants_rekey(const efcp_peer *p, uint64_t now);
void session_wipe(efcp_peer *p);
