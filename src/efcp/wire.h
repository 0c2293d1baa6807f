/*
 * wire.h — the EFCP wire format: datagram header, frames, integrity trailer.
 *
 * Pure encoding and parsing, no state: safe from any thread, and the only code
 * that reads untrusted bytes (the fuzz target drives it directly). Every parser
 * checks lengths before reading and returns -EBADMSG on anything malformed.
 * All integers are big-endian. docs/PROTOCOL.md has the diagrams.
 *
 *   datagram = header(16) frame* trailer
 *   header   = type(1) version(1) flags(2) receiver_index(4) packet_number(8)
 *   trailer  = CRC32C(4) over header+frames (type PLAIN), or a 16-byte
 *              Poly1305 tag with the header as associated data (type AEAD).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EFCP_VERSION 1
#define EFCP_HDR_LEN 16
#define EFCP_CRC_LEN 4
#define EFCP_TAG_LEN 16 /* AEAD mode */

enum { EFCP_TYPE_PLAIN = 1, EFCP_TYPE_AEAD = 2 };

/* Frame types. */
enum {
        EFCP_FT_PADDING = 0x00,
        EFCP_FT_PING = 0x01,
        EFCP_FT_ACK = 0x02,
        EFCP_FT_DATA = 0x03,
        EFCP_FT_CREDIT = 0x04,
        EFCP_FT_BLOCKED = 0x05,
        EFCP_FT_ALLOC = 0x06,
        EFCP_FT_DEALLOC = 0x07,
        EFCP_FT_CLOSE = 0x08,
};

/* DATA flags. */
enum { EFCP_DF_FIRST = 0x01, EFCP_DF_LAST = 0x02 };

/* Steps of the confirmed deallocation and close (DEALLOC and CLOSE frames):
 * the side that ends sends REQUEST; the other answers ACK; the ender answers
 * CONFIRM if it did send that request, DENY if it did not (a forgery). Only
 * a CONFIRM ends anything on the side that received the REQUEST. */
enum { EFCP_STEP_REQUEST = 0, EFCP_STEP_ACK = 1, EFCP_STEP_CONFIRM = 2, EFCP_STEP_DENY = 3 };
/* DEALLOC flags: the final field holds the sender's next sequence number. */
enum { EFCP_DEALLOC_FINAL = 0x01 };

/* Packet numbers: a datagram whose number lies more than this beyond the
 * largest one received is dropped (an honest peer never gets that far ahead:
 * at most max_inflight (<= 2^20) unacknowledged packets plus its ack-only
 * answers to ours). */
#define EFCP_PN_MAX_JUMP (UINT64_C(1) << 24)
#define EFCP_PN_LIMIT (UINT64_C(1) << 62) /* numbers are below this */

#define EFCP_DATA_HDR_LEN 16
#define EFCP_FLOWCTL_LEN 16  /* CREDIT */
#define EFCP_BLOCKED_LEN 20
#define EFCP_DEALLOC_LEN 20
#define EFCP_ALLOC_LEN 24
#define EFCP_CLOSE_LEN 8
#define EFCP_ACK_MAX_RANGES 32
#define EFCP_ACK_LEN(n) (18u + 8u * (n)) /* n = extra ranges */

typedef struct efcp_hdr {
        uint8_t type, version;
        uint16_t flags;
        uint32_t rx_index;
        uint64_t pn;
} efcp_hdr;

/* One acknowledged range [lo, hi], inclusive. */
typedef struct efcp_ack_range {
        uint64_t lo, hi;
} efcp_ack_range;

/* A parsed frame. Pointers (data) borrow the datagram being parsed. */
typedef struct efcp_frame {
        uint8_t type;
        union {
                struct {
                        uint64_t largest;
                        uint32_t delay_us;
                        uint32_t nranges; /* total ranges, >= 1 */
                        efcp_ack_range ranges[EFCP_ACK_MAX_RANGES + 1]; /* descending */
                } ack;
                struct {
                        uint8_t flags;
                        uint16_t len;
                        uint32_t dst, src, seq;
                        const uint8_t *data;
                } data;
                struct {
                        uint32_t dst, src, value; /* CREDIT edge, BLOCKED next sequence number */
                        uint32_t acked;           /* BLOCKED: all below it acknowledged */
                } fc;
                struct {
                        uint8_t step, flags;
                        uint32_t dst, src, reason, final;
                } dealloc;
                struct {
                        uint8_t policy;
                        uint32_t dst, src, isn, credit, max_msg;
                } alloc;
                struct {
                        uint8_t step;
                        uint32_t reason;
                } close;
        } u;
} efcp_frame;

/* Header. */
void efcp_wire_put_hdr(uint8_t *p, const efcp_hdr *h);
int efcp_wire_get_hdr(const uint8_t *p, size_t len, efcp_hdr *ret_h);

/* Plain-mode trailer: seal appends the CRC over p[0..len) at p+len; check
 * verifies the last 4 bytes of a datagram of len bytes. */
void efcp_wire_seal_plain(uint8_t *p, size_t len);
bool efcp_wire_check_plain(const uint8_t *p, size_t len);

/* Parses the frame at p (len bytes left). Returns the bytes it takes, or
 * -EBADMSG. A PADDING frame takes the rest. */
int efcp_wire_get_frame(const uint8_t *p, size_t len, efcp_frame *ret_f);

/* Encoders: each writes at p (caller made sure there is room) and returns the
 * bytes written. */
size_t efcp_wire_put_ping(uint8_t *p);
/* ranges: n >= 1 ranges in descending order, ranges[0].hi is the largest. */
size_t efcp_wire_put_ack(uint8_t *p, const efcp_ack_range *ranges, uint32_t n,
                         uint32_t delay_us);
size_t efcp_wire_put_data_hdr(uint8_t *p, uint8_t flags, uint16_t len, uint32_t dst,
                              uint32_t src, uint32_t seq);
size_t efcp_wire_put_fc(uint8_t *p, uint8_t type, uint32_t dst, uint32_t src, uint32_t value);
size_t efcp_wire_put_alloc(uint8_t *p, uint8_t policy, uint32_t dst, uint32_t src, uint32_t isn,
                           uint32_t credit, uint32_t max_msg);
/* BLOCKED: next = our next sequence number, acked = every PDU below it was
 * acknowledged to us (reliable flows). */
size_t efcp_wire_put_blocked(uint8_t *p, uint32_t dst, uint32_t src, uint32_t next, uint32_t acked);
/* DEALLOC: step EFCP_STEP_*, flags EFCP_DEALLOC_FINAL when final is meaningful. */
size_t efcp_wire_put_dealloc(uint8_t *p, uint8_t step, uint8_t flags, uint32_t dst, uint32_t src,
                             uint32_t reason, uint32_t final);
size_t efcp_wire_put_close(uint8_t *p, uint8_t step, uint32_t reason);

/* Sequence-number comparison modulo 2^32: a before b. */
static inline bool efcp_seq_lt(uint32_t a, uint32_t b) { return (int32_t)(a - b) < 0; }
static inline bool efcp_seq_le(uint32_t a, uint32_t b) { return (int32_t)(a - b) <= 0; }
