/*
 * crc32c.h — CRC32C (Castagnoli), the plain-mode integrity check of EFCP.
 *
 * Pure function, any thread. Uses the SSE4.2 crc32 instruction when the CPU
 * has it (checked once), else a slice-by-8 table.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* CRC32C of buf[0..len) (borrowed), continuing from crc (0 to start). */
uint32_t efcp_crc32c(uint32_t crc, const void *buf, size_t len);
/* The same with the portable table code only (tests compare the two). */
uint32_t efcp_crc32c_sw(uint32_t crc, const void *buf, size_t len);
