/*
 * crc32c: CRC-32C (Castagnoli), the checksum of record batch v2.  Uses the
 * SSE4.2 crc32 instruction when the CPU has it (checked once at start-up),
 * else a slicing table.
 */
#ifndef SAMSA_CRC32C_H
#define SAMSA_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Extends crc (0 to start) over len bytes of buf and returns the new value;
 * crc32c(0, "123456789", 9) == 0xE3069283.
 */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

/*
 * The two implementations behind crc32c(), exposed for tests and benchmarks:
 * crc32c_sw() is the portable table walk; crc32c_hw() uses the SSE4.2
 * instruction when crc32c_hw_available() and falls back to crc32c_sw().
 */
uint32_t crc32c_sw(uint32_t crc, const void *buf, size_t len);
uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len);
bool crc32c_hw_available(void);

#endif
