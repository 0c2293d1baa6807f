/*
 * crc32c.c — CRC32C (Castagnoli, reflected polynomial 0x82F63B78).
 *
 * Two implementations with identical results: the x86-64 SSE4.2 instruction
 * (8 bytes per instruction, ~20 GB/s, so integrity is nearly free) chosen at
 * first use when the CPU supports it, and a portable slice-by-8 table. The
 * tables are built once; the function is thread-safe after the first call
 * (the initialisation is idempotent, so a race only repeats it).
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

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                         size_t len) {
        uint64_t c = crc;
        while (len >= 8) {
                uint64_t w;
                memcpy(&w, p, 8);
                c = __builtin_ia32_crc32di(c, w);
                p += 8;
                len -= 8;
        }
        uint32_t c32 = (uint32_t)c;
        while (len--)
                c32 = __builtin_ia32_crc32qi(c32, *p++);
        return c32;
}
#endif

uint32_t efcp_crc32c(uint32_t crc, const void *buf, size_t len) {
        if (crc_mode == 0) {
                crc_init_table();
#if defined(__x86_64__)
                __builtin_cpu_init();
                crc_mode = __builtin_cpu_supports("sse4.2") ? 2 : 1;
#else
                crc_mode = 1;
#endif
        }
        crc = ~crc;
#if defined(__x86_64__)
        if (crc_mode == 2)
                return ~crc_hw(crc, buf, len);
#endif
        return ~crc_sw(crc, buf, len);
}
