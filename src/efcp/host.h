/*
 * host.h — authenticated, encrypted host associations over the EFCP engine:
 * what the daemon drives. Sans-I/O like the engine: feed it every datagram
 * that reaches the UDP socket (with its source address) and the time; ask it
 * for datagrams to send (each with its destination address) and the next
 * deadline. It never touches a socket or a clock.
 *
 * One efcp_host is this host: its static X25519 key pair (keyfile.h), the
 * list of enrolled hosts (efcp_peer: their pinned public keys = the list of
 * authorised hosts), the cookie secret and the handshake rate limits. Each
 * peer, once a Noise IK handshake (Noise_IK_25519_ChaChaPoly_SHA256, noise.h)
 * has completed, holds one efcp_assoc whose datagrams are sealed with
 * ChaCha20-Poly1305-IETF (the 16-byte header as associated data, the packet
 * number as nonce), checked against a 2048-packet replay window, and rekeyed
 * after rekey_after_ns (120 s) or rekey_after_packets without a pause.
 * docs/PROTOCOL.md §7 has the wire format.
 *
 * What is refused, before any state is kept: a datagram that does not
 * authenticate; a handshake whose mac1 is wrong (its sender does not know our
 * public key); a handshake from a key not enrolled; a replayed initiation (its
 * timestamp is not newer than the last one from that key); and, while the
 * host is under load (more initiations than handshakes_per_sec), every
 * initiation without a valid cookie (mac2): those get a cookie reply, which
 * costs no Diffie-Hellman and is itself rate-limited.
 *
 * How the daemon drives it:
 *   efcp_host_new(&cfg, now, &h);                  cfg.private_key from keyfile
 *   efcp_host_add_peer(h, pub, addr, addrlen, &p); each enrolled host
 *   efcp_peer_connect(p, now);                     to reach it (or wait for it)
 *   loop:
 *     datagram from the socket -> efcp_host_input(h, d, n, &src, srclen, now)
 *     while ((n = efcp_host_output(h, buf, sizeof buf, now, &dst)) > 0)
 *             sendto(dst.addr)
 *     events: efcp_host_event_next(h, &ev): PEER_UP gives the association
 *       (efcp_peer_assoc(p)) on which flows are opened with efcp.h as usual;
 *       ASSOC_RETIRED hands an old association to the caller (drain its
 *       events — every open flow ends with ev.reason — then efcp_assoc_free);
 *       also drain efcp_event_next(efcp_peer_assoc(p)) for flow events
 *     sleep until efcp_host_next_deadline(h) or the socket is readable
 *
 * Conventions as in efcp.h. The host owns its peers and their current
 * associations; one thread at a time.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "efcp/efcp.h"

typedef struct efcp_host efcp_host;
typedef struct efcp_peer efcp_peer;

#define EFCP_KEY_LEN 32
#define EFCP_ADDR_MAX 32 /* bytes of an address (a struct sockaddr_in6 is 28) */

/* An opaque address: the caller's sockaddr bytes. */
typedef struct efcp_addr {
        uint8_t bytes[EFCP_ADDR_MAX];
        uint32_t len;
} efcp_addr;

typedef struct efcp_host_config {
        uint8_t private_key[EFCP_KEY_LEN]; /* this host's static X25519 key */
        efcp_config assoc;            /* every association's parameters (indices are set here) */
        uint64_t clock_offset_ns;     /* added to now for handshake timestamps: they must grow
                                       * across restarts (the daemon: CLOCK_REALTIME − CLOCK_MONOTONIC) */
        uint64_t rekey_after_ns;      /* new keys after this long (120 s) */
        uint64_t rekey_after_packets; /* or after this many datagrams sent with one key (2^30) */
        uint64_t handshake_retry_ns;  /* initiation resent after this (1 s) */
        uint32_t handshakes_per_sec;  /* initiations answered per second before cookies are
                                       * required (100; burst the same) */
        uint32_t handshakes_per_addr; /* per source address, once under load (5 per second) */
        uint32_t cookie_replies_per_sec; /* (1000) */
        uint32_t max_peers;           /* (256) */
        bool aes_gcm;                 /* offer and accept AES-256-GCM for the datagrams of an
                                       * association (default: where the CPU has it,
                                       * crypto_aead_aes256gcm_is_available(); forced off
                                       * where it has not). Used when both hosts offer it;
                                       * else ChaCha20-Poly1305-IETF */
} efcp_host_config;

/* The AEAD of an association's datagrams (efcp_peer_cipher). */
enum {
        EFCP_CIPHER_CHACHA20_POLY1305 = 1,
        EFCP_CIPHER_AES256_GCM = 2,
};

void efcp_host_config_default(efcp_host_config *ret_cfg);

typedef enum efcp_host_event_type {
        EFCP_HOST_EV_PEER_UP = 1,       /* a new association with peer: efcp_peer_assoc() */
        EFCP_HOST_EV_ASSOC_RETIRED = 2, /* assoc (now the caller's) was replaced: reason says why
                                         * (EFCP_REASON_PEER_RESTARTED) */
        EFCP_HOST_EV_REKEYED = 3,       /* the peer's association has new keys */
} efcp_host_event_type;

typedef struct efcp_host_event {
        efcp_host_event_type type;
        efcp_peer *peer;
        efcp_assoc *assoc; /* RETIRED: owned by the caller from now on */
        uint32_t reason;
} efcp_host_event;

typedef struct efcp_host_stats {
        uint64_t dgrams_in, dropped_short, dropped_type, dropped_index, dropped_auth;
        uint64_t init_in, init_bad_mac1, init_need_cookie, init_bad_key, init_replayed, init_rate_limited;
        uint64_t init_tie_ignored;
        uint64_t dh_done;          /* handshake messages that cost Diffie-Hellman work */
        uint64_t resp_in, resp_bad, cookie_replies_out, cookie_replies_in, cookie_limited;
        uint64_t handshakes_done, rekeys, restarts;
} efcp_host_stats;

int efcp_host_new(const efcp_host_config *cfg, uint64_t now_ns, efcp_host **ret_host);
/* Frees the host, its peers and their current associations. NULL is fine. */
efcp_host *efcp_host_free(efcp_host *h);
/* This host's public key. */
void efcp_host_public_key(const efcp_host *h, uint8_t ret_pub[EFCP_KEY_LEN]);

/* Enrols a host by its public key, reachable at addr (may be empty: a peer
 * that only calls us). -EEXIST if enrolled already, -ENOSPC, -EINVAL (its key
 * is ours or not a usable key). The peer lives as long as the host. */
int efcp_host_add_peer(efcp_host *h, const uint8_t pub[EFCP_KEY_LEN], const void *addr, size_t addrlen,
                       efcp_peer **ret_peer);
efcp_peer *efcp_host_find_peer(efcp_host *h, const uint8_t pub[EFCP_KEY_LEN]);

/* Starts a handshake for a new association with the peer (resent every
 * handshake_retry_ns until answered). A current association is kept until
 * the new one is up. */
int efcp_peer_connect(efcp_peer *p, uint64_t now_ns);
/* The peer's current association, or NULL before the first handshake. */
efcp_assoc *efcp_peer_assoc(const efcp_peer *p);
void efcp_peer_public_key(const efcp_peer *p, uint8_t ret_pub[EFCP_KEY_LEN]);
/* Where the peer's datagrams go (updated from every authenticated datagram). */
const efcp_addr *efcp_peer_addr(const efcp_peer *p);
/* Handshakes in progress? */
bool efcp_peer_handshaking(const efcp_peer *p);
/* The AEAD the peer's current keys use (EFCP_CIPHER_*), -ENOTCONN without keys. */
int efcp_peer_cipher(const efcp_peer *p);

/* One datagram from the socket (borrowed for the call) and its source
 * address. 0 when it was used, a negative errno saying why it was dropped
 * (informative only). */
int efcp_host_input(efcp_host *h, const void *dgram, size_t len, const void *src, size_t srclen,
                    uint64_t now_ns);
/* The next datagram to send, into buf (cap >= the association's
 * max_datagram), and its destination. Returns its length, 0 when nothing is
 * due. Call until 0. */
int efcp_host_output(efcp_host *h, void *buf, size_t cap, uint64_t now_ns, efcp_addr *ret_dst);
/* Runs every timer (handshake retries, rekeying, the associations'). */
void efcp_host_timeout(efcp_host *h, uint64_t now_ns);
/* When to call efcp_host_timeout/output next, absent input (UINT64_MAX: never). */
uint64_t efcp_host_next_deadline(const efcp_host *h);
/* 1 and the next event, or 0. */
int efcp_host_event_next(efcp_host *h, efcp_host_event *ret_ev);
const efcp_host_stats *efcp_host_stats_get(const efcp_host *h);
