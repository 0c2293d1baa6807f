/*
 * wire.c — encoding and parsing of EFCP datagrams (see wire.h).
 *
 * Invariant: a parser never reads past len and never trusts a length field
 * before comparing it with what is left. Parsers fill only their out-struct.
 */
#include "efcp/wire.h"

#include <errno.h>
#include <string.h>

#include "efcp/crc32c.h"

/* Big-endian helpers. */
static inline void put16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
}
static inline void put32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t)(v >> 24);
        p[1] = (uint8_t)(v >> 16);
        p[2] = (uint8_t)(v >> 8);
        p[3] = (uint8_t)v;
}
static inline void put64(uint8_t *p, uint64_t v) {
        put32(p, (uint32_t)(v >> 32));
        put32(p + 4, (uint32_t)v);
}
static inline uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }
static inline uint32_t get32(const uint8_t *p) {
        return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint64_t get64(const uint8_t *p) {
        return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

/* The 16-byte header; in the AEAD mode it is the associated data, so it
 * must stay in clear and fixed-size. */
void efcp_wire_put_hdr(uint8_t *p, const efcp_hdr *h) {
        p[0] = h->type;
        p[1] = h->version;
        put16(p + 2, h->flags);
        put32(p + 4, h->rx_index);
        put64(p + 8, h->pn);
}

/* Unknown versions and types are refused here: a future version is a new
 * type or version number, never a reinterpretation. */
int efcp_wire_get_hdr(const uint8_t *p, size_t len, efcp_hdr *ret_h) {
        if (len < EFCP_HDR_LEN)
                return -EBADMSG;
        ret_h->type = p[0];
        ret_h->version = p[1];
        ret_h->flags = get16(p + 2);
        ret_h->rx_index = get32(p + 4);
        ret_h->pn = get64(p + 8);
        if (ret_h->version != EFCP_VERSION ||
            (ret_h->type != EFCP_TYPE_PLAIN && ret_h->type != EFCP_TYPE_AEAD))
                return -EBADMSG;
        /* Packet numbers live in 62 bits so that arithmetic on them never wraps. */
        if (ret_h->pn >= EFCP_PN_LIMIT)
                return -EBADMSG;
        return 0;
}

void efcp_wire_seal_plain(uint8_t *p, size_t len) { put32(p + len, efcp_crc32c(0, p, len)); }

/* The CRC covers the header too: a flipped bit in the packet number or the
 * receiver index is caught like any other. */
bool efcp_wire_check_plain(const uint8_t *p, size_t len) {
        if (len < EFCP_HDR_LEN + EFCP_CRC_LEN)
                return false;
        return efcp_crc32c(0, p, len - EFCP_CRC_LEN) == get32(p + len - EFCP_CRC_LEN);
}

/* ACK: type(1) n(1) delay_us(4) largest(8) first_len(4) {gap(4) len(4)}*n.
 * first_len = how many packet numbers below largest the first range covers;
 * gap = how many unacknowledged numbers lie between two ranges, minus one. */
static int get_ack(const uint8_t *p, size_t len, efcp_frame *f) {
        if (len < EFCP_ACK_LEN(0))
                return -EBADMSG;
        uint32_t n = p[1];
        if (n > EFCP_ACK_MAX_RANGES || len < EFCP_ACK_LEN(n))
                return -EBADMSG;
        f->u.ack.delay_us = get32(p + 2);
        uint64_t hi = get64(p + 6);
        uint64_t first = get32(p + 14);
        if (hi >= EFCP_PN_LIMIT || first > hi)
                return -EBADMSG;
        f->u.ack.largest = hi;
        f->u.ack.ranges[0].hi = hi;
        f->u.ack.ranges[0].lo = hi - first;
        uint64_t lo = hi - first;
        const uint8_t *q = p + 18;
        for (uint32_t i = 0; i < n; i++, q += 8) {
                uint64_t gap = get32(q), rlen = get32(q + 4);
                /* next hi = lo - gap - 2; must stay >= 0 with room for rlen */
                if (lo < gap + 2 || lo - gap - 2 < rlen)
                        return -EBADMSG;
                hi = lo - gap - 2;
                lo = hi - rlen;
                f->u.ack.ranges[i + 1].hi = hi;
                f->u.ack.ranges[i + 1].lo = lo;
        }
        f->u.ack.nranges = n + 1;
        return (int)EFCP_ACK_LEN(n);
}

/* Each case checks its fixed size first, then any variable length against
 * what is left; semantic checks (ports, windows) are the engine's job. */
int efcp_wire_get_frame(const uint8_t *p, size_t len, efcp_frame *ret_f) {
        if (len < 1)
                return -EBADMSG;
        ret_f->type = p[0];
        switch (p[0]) {
        case EFCP_FT_PADDING:
                return (int)len;
        case EFCP_FT_PING:
                return 1;
        case EFCP_FT_ACK:
                return get_ack(p, len, ret_f);
        case EFCP_FT_DATA: {
                if (len < EFCP_DATA_HDR_LEN)
                        return -EBADMSG;
                uint16_t dlen = get16(p + 2);
                if (len - EFCP_DATA_HDR_LEN < dlen || (p[1] & ~(EFCP_DF_FIRST | EFCP_DF_LAST)))
                        return -EBADMSG;
                ret_f->u.data.flags = p[1];
                ret_f->u.data.len = dlen;
                ret_f->u.data.dst = get32(p + 4);
                ret_f->u.data.src = get32(p + 8);
                ret_f->u.data.seq = get32(p + 12);
                ret_f->u.data.data = p + EFCP_DATA_HDR_LEN;
                return EFCP_DATA_HDR_LEN + dlen;
        }
        case EFCP_FT_DEALLOC:
                if (len < EFCP_DEALLOC_LEN || p[1] > EFCP_STEP_DENY ||
                    (p[2] & ~EFCP_DEALLOC_FINAL) || p[3])
                        return -EBADMSG;
                ret_f->u.dealloc.step = p[1];
                ret_f->u.dealloc.flags = p[2];
                ret_f->u.dealloc.dst = get32(p + 4);
                ret_f->u.dealloc.src = get32(p + 8);
                ret_f->u.dealloc.reason = get32(p + 12);
                ret_f->u.dealloc.final = get32(p + 16);
                return EFCP_DEALLOC_LEN;
        case EFCP_FT_BLOCKED:
                if (len < EFCP_BLOCKED_LEN)
                        return -EBADMSG;
                ret_f->u.fc.dst = get32(p + 4);
                ret_f->u.fc.src = get32(p + 8);
                ret_f->u.fc.value = get32(p + 12);
                ret_f->u.fc.acked = get32(p + 16);
                return EFCP_BLOCKED_LEN;
        case EFCP_FT_CREDIT:
                if (len < EFCP_FLOWCTL_LEN)
                        return -EBADMSG;
                ret_f->u.fc.dst = get32(p + 4);
                ret_f->u.fc.src = get32(p + 8);
                ret_f->u.fc.value = get32(p + 12);
                return EFCP_FLOWCTL_LEN;
        case EFCP_FT_ALLOC:
                if (len < EFCP_ALLOC_LEN)
                        return -EBADMSG;
                ret_f->u.alloc.policy = p[1];
                ret_f->u.alloc.dst = get32(p + 4);
                ret_f->u.alloc.src = get32(p + 8);
                ret_f->u.alloc.isn = get32(p + 12);
                ret_f->u.alloc.credit = get32(p + 16);
                ret_f->u.alloc.max_msg = get32(p + 20);
                return EFCP_ALLOC_LEN;
        case EFCP_FT_CLOSE:
                if (len < EFCP_CLOSE_LEN || p[1] > EFCP_STEP_DENY || p[2] || p[3])
                        return -EBADMSG;
                ret_f->u.close.step = p[1];
                ret_f->u.close.reason = get32(p + 4);
                return EFCP_CLOSE_LEN;
        default:
                return -EBADMSG;
        }
}

size_t efcp_wire_put_ping(uint8_t *p) {
        p[0] = EFCP_FT_PING;
        return 1;
}

/* r: n disjoint ranges, newest first, as recovery.c keeps them; anything
 * beyond 1 + EFCP_ACK_MAX_RANGES is left out (older holes matter least). */
size_t efcp_wire_put_ack(uint8_t *p, const efcp_ack_range *r, uint32_t n, uint32_t delay_us) {
        if (n > EFCP_ACK_MAX_RANGES + 1)
                n = EFCP_ACK_MAX_RANGES + 1;
        p[0] = EFCP_FT_ACK;
        p[1] = (uint8_t)(n - 1);
        put32(p + 2, delay_us);
        put64(p + 6, r[0].hi);
        put32(p + 14, (uint32_t)(r[0].hi - r[0].lo));
        uint8_t *q = p + 18;
        for (uint32_t i = 1; i < n; i++, q += 8) {
                put32(q, (uint32_t)(r[i - 1].lo - r[i].hi - 2));
                put32(q + 4, (uint32_t)(r[i].hi - r[i].lo));
        }
        return EFCP_ACK_LEN(n - 1);
}

size_t efcp_wire_put_data_hdr(uint8_t *p, uint8_t flags, uint16_t len, uint32_t dst,
                              uint32_t src, uint32_t seq) {
        p[0] = EFCP_FT_DATA;
        p[1] = flags;
        put16(p + 2, len);
        put32(p + 4, dst);
        put32(p + 8, src);
        put32(p + 12, seq);
        return EFCP_DATA_HDR_LEN;
}

size_t efcp_wire_put_fc(uint8_t *p, uint8_t type, uint32_t dst, uint32_t src, uint32_t value) {
        p[0] = type;
        p[1] = p[2] = p[3] = 0;
        put32(p + 4, dst);
        put32(p + 8, src);
        put32(p + 12, value);
        return EFCP_FLOWCTL_LEN;
}

size_t efcp_wire_put_alloc(uint8_t *p, uint8_t policy, uint32_t dst, uint32_t src, uint32_t isn,
                           uint32_t credit, uint32_t max_msg) {
        p[0] = EFCP_FT_ALLOC;
        p[1] = policy;
        p[2] = p[3] = 0;
        put32(p + 4, dst);
        put32(p + 8, src);
        put32(p + 12, isn);
        put32(p + 16, credit);
        put32(p + 20, max_msg);
        return EFCP_ALLOC_LEN;
}

size_t efcp_wire_put_blocked(uint8_t *p, uint32_t dst, uint32_t src, uint32_t next, uint32_t acked) {
        efcp_wire_put_fc(p, EFCP_FT_BLOCKED, dst, src, next);
        put32(p + 16, acked);
        return EFCP_BLOCKED_LEN;
}

size_t efcp_wire_put_dealloc(uint8_t *p, uint8_t step, uint8_t flags, uint32_t dst, uint32_t src,
                             uint32_t reason, uint32_t final) {
        p[0] = EFCP_FT_DEALLOC;
        p[1] = step;
        p[2] = flags;
        p[3] = 0;
        put32(p + 4, dst);
        put32(p + 8, src);
        put32(p + 12, reason);
        put32(p + 16, final);
        return EFCP_DEALLOC_LEN;
}

size_t efcp_wire_put_close(uint8_t *p, uint8_t step, uint32_t reason) {
        p[0] = EFCP_FT_CLOSE;
        p[1] = step;
        p[2] = p[3] = 0;
        put32(p + 4, reason);
        return EFCP_CLOSE_LEN;
}
