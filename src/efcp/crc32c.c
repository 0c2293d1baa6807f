/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Two implementations with identical results: the x86-64 SSE4.2 instruction
 * over three interleaved lanes (~0.1 cycle per byte, so integrity is nearly
 * free) chosen at first use when the CPU supports it, and a portable
 * slice-by-8 table. efcp_crc32c_sw() exposes the portable one for tests. The
 * tables are built once; the function is thread-safe (the initialisation is
 * idempotent and published with release/acquire, so a race only repeats it).
 */
#include "efcp/crc32c.h"

#include <stdbool.h>
#include <string.h>

static uint32_t crc_table[8][256];
static int crc_mode; /* 0 unknown, 1 table, 2 hardware */

/* Builds the slice-by-8 tables from the reflected polynomial. */
static void crc_init_table(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
                crc_table[0][i] = c;
        }
        for (uint32_t i = 0; i < 256; i++)
                for (int t = 1; t < 8; t++)
                        crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
                                          crc_table[0][crc_table[t - 1][i] & 0xff];
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len);

uint32_t efcp_crc32c_sw(uint32_t crc, const void *buf, size_t len) {
        if (__atomic_load_n(&crc_mode, __ATOMIC_ACQUIRE) == 0)
                (void)efcp_crc32c(0, NULL, 0);
        return ~crc_sw(~crc, buf, len);
}

static uint32_t crc_sw(uint32_t crc, const uint8_t *p, size_t len) {
        while (len >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                w ^= crc; /* little-endian: low 4 bytes take the running crc */
                crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
                      crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
                      crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
                      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
                p += 8;
                len -= 8;
        }
        while (len--)
                crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
        return crc;
}

/* GF(2) arithmetic modulo the CRC polynomial (reflected), after zlib's
 * crc32.c: a·b mod P, and x^(n·2^k) mod P from a table of x^(2^k). They let
 * the hardware path run three independent lanes and join them. */
static uint32_t crc_multmodp(uint32_t a, uint32_t b) {
        uint32_t m = 1u << 31, p = 0;
        for (;;) {
                if (a & m) {
                        p ^= b;
                        if ((a & (m - 1)) == 0)
                                break;
                }
                m >>= 1;
                b = b & 1 ? (b >> 1) ^ 0x82F63B78u : b >> 1;
        }
        return p;
}

/* x^(8·len) mod P: what appending len zero bytes multiplies a CRC by. */
static uint32_t crc_shift_factor(size_t len) {
        uint32_t p = 1u << 31, x = 1u << 30; /* x^0, x^1 */
        /* square-and-multiply over the bits of 8·len */
        for (uint64_t n = (uint64_t)len * 8; n; n >>= 1) {
                if (n & 1)
                        p = crc_multmodp(x, p);
                x = crc_multmodp(x, x);
        }
        return p;
}

/* The hardware path runs three lanes of LANE bytes; joining them multiplies
 * by x^(8·LANE), done with four table lookups (the map is linear). */
#define LANE 160
static uint32_t crc_lane_tab[4][256];

static void crc_init_lane(void) {
        uint32_t k = crc_shift_factor(LANE);
        for (int t = 0; t < 4; t++)
                for (uint32_t b = 0; b < 256; b++)
                        crc_lane_tab[t][b] = crc_multmodp(k, b << (8 * t));
}

static inline uint32_t crc_lane_shift(uint32_t v) {
        return crc_lane_tab[0][v & 0xff] ^ crc_lane_tab[1][(v >> 8) & 0xff] ^
               crc_lane_tab[2][(v >> 16) & 0xff] ^ crc_lane_tab[3][v >> 24];
}

#if defined(__x86_64__)
/* The crc32 instruction has a 3-cycle latency and 1-cycle throughput: three
 * interleaved lanes run about three times faster than one. Lanes are joined
 * by crc(A||B) = crc(A)·x^(8|B|) ⊕ crc0(B) (linearity of the CRC). */
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                         size_t len) {
        uint64_t c0 = crc;
        while (len >= 3 * LANE) {
                uint64_t c1 = 0, c2 = 0;
                for (size_t i = 0; i < LANE; i += 8) {
                        uint64_t w0, w1, w2;
                        memcpy(&w0, p + i, 8);
                        memcpy(&w1, p + LANE + i, 8);
                        memcpy(&w2, p + 2 * LANE + i, 8);
                        c0 = __builtin_ia32_crc32di(c0, w0);
                        c1 = __builtin_ia32_crc32di(c1, w1);
                        c2 = __builtin_ia32_crc32di(c2, w2);
                }
                c0 = crc_lane_shift((uint32_t)c0) ^ (uint32_t)c1;
                c0 = crc_lane_shift((uint32_t)c0) ^ (uint32_t)c2;
                p += 3 * LANE;
                len -= 3 * LANE;
        }
        while (len >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                c0 = __builtin_ia32_crc32di(c0, w);
                p += 8;
                len -= 8;
        }
        uint32_t c32 = (uint32_t)c0;
        while (len--)
                c32 = __builtin_ia32_crc32qi(c32, *p++);
        return c32;
}
#endif

uint32_t efcp_crc32c(uint32_t crc, const void *buf, size_t len) {
        int mode = __atomic_load_n(&crc_mode, __ATOMIC_ACQUIRE);
        if (mode == 0) {
                /* idempotent: a racing thread builds identical tables */
                crc_init_table();
                crc_init_lane();
#if defined(__x86_64__)
                __builtin_cpu_init();
                mode = __builtin_cpu_supports("sse4.2") ? 2 : 1;
#else
                mode = 1;
#endif
                __atomic_store_n(&crc_mode, mode, __ATOMIC_RELEASE);
        }
        crc = ~crc;
#if defined(__x86_64__)
        if (mode == 2)
                return ~crc_hw(crc, buf, len);
#endif
        return ~crc_sw(crc, buf, len);
}
