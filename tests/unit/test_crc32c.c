/*
 * crc32c: published vectors, the chaining property, and agreement of the
 * SSE4.2 and table paths over many lengths and alignments.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/crc32c.h"
#include "tests/support/leak_check.h"

TestSuite(crc32c, .fini = leak_check);

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static const crc_fn impls[] = {crc32c, crc32c_sw, crc32c_hw};
static const char *const impl_names[] = {"crc32c", "crc32c_sw", "crc32c_hw"};
#define NIMPL (sizeof(impls) / sizeof(impls[0]))

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

Test(crc32c, check_value)
{
	for (size_t i = 0; i < NIMPL; i++)
		cr_assert_eq(impls[i](0, "123456789", 9), 0xE3069283u, "%s",
			     impl_names[i]);
}

Test(crc32c, empty_input)
{
	for (size_t i = 0; i < NIMPL; i++) {
		cr_assert_eq(impls[i](0, "", 0), 0u, "%s", impl_names[i]);
		cr_assert_eq(impls[i](0xDEADBEEF, NULL, 0), 0xDEADBEEFu, "%s",
			     impl_names[i]);
	}
}

/* RFC 3720 (iSCSI) appendix B.4. */
Test(crc32c, rfc3720_vectors)
{
	uint8_t zeros[32], ones[32], inc[32], dec[32];
	static const uint8_t read10[48] = {
		0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00,
		0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00,
		0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
		0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	};

	memset(zeros, 0, sizeof(zeros));
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++) {
		inc[i] = (uint8_t)i;
		dec[i] = (uint8_t)(31 - i);
	}
	for (size_t i = 0; i < NIMPL; i++) {
		cr_assert_eq(impls[i](0, zeros, 32), 0x8A9136AAu, "%s",
			     impl_names[i]);
		cr_assert_eq(impls[i](0, ones, 32), 0x62A8AB43u, "%s",
			     impl_names[i]);
		cr_assert_eq(impls[i](0, inc, 32), 0x46DD794Eu, "%s",
			     impl_names[i]);
		cr_assert_eq(impls[i](0, dec, 32), 0x113FDB5Cu, "%s",
			     impl_names[i]);
		cr_assert_eq(impls[i](0, read10, 48), 0xD9963A56u, "%s",
			     impl_names[i]);
	}
}

/* crc32c(crc32c(0, a), b) == crc32c(0, a || b) at every split point. */
Test(crc32c, chaining)
{
	uint8_t buf[300];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)rng();
	for (size_t f = 0; f < NIMPL; f++) {
		uint32_t whole = impls[f](0, buf, sizeof(buf));

		for (size_t k = 0; k <= sizeof(buf); k++) {
			uint32_t c = impls[f](0, buf, k);

			c = impls[f](c, buf + k, sizeof(buf) - k);
			cr_assert_eq(c, whole, "%s split at %zu", impl_names[f],
				     k);
		}
	}
}

/* Every length 0..1100 at every alignment 0..15, then larger random ones. */
Test(crc32c, hw_matches_table)
{
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap + 16);

	cr_assert_not_null(buf);
	for (size_t i = 0; i < cap + 16; i++)
		buf[i] = (uint8_t)rng();
	if (!crc32c_hw_available())
		cr_log_warn("no SSE4.2: crc32c_hw is the table path here");
	for (size_t len = 0; len <= 1100; len++)
		for (size_t al = 0; al < 16; al++) {
			uint32_t seed = (uint32_t)rng();
			uint32_t sw = crc32c_sw(seed, buf + al, len);

			cr_assert_eq(crc32c_hw(seed, buf + al, len), sw,
				     "len %zu align %zu", len, al);
			cr_assert_eq(crc32c(seed, buf + al, len), sw,
				     "len %zu align %zu", len, al);
		}
	for (int i = 0; i < 200; i++) {
		size_t al = rng() % 16, len = rng() % cap;

		cr_assert_eq(crc32c_hw(0, buf + al, len),
			     crc32c_sw(0, buf + al, len), "len %zu align %zu",
			     len, al);
	}
	free(buf);
}
