/*
 * partitioner: murmur2 against the vectors of Kafka's own UtilsTest (and
 * kafkajs's port), and the key to partition mapping with toPositive (the
 * sign bit cleared: not the absolute value, not the unsigned value).
 */
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/partitioner.h"
#include "tests/support/leak_check.h"

TestSuite(partitioner, .fini = leak_check);

static int32_t hash(const char *s)
{
	return kafka_murmur2(s, strlen(s));
}

Test(partitioner, murmur2_vectors)
{
	cr_assert_eq(hash("21"), -973932308);
	cr_assert_eq(hash("foobar"), -790332482);
	cr_assert_eq(hash("a-little-bit-long-string"), -985981536);
	cr_assert_eq(hash("a-little-bit-longer-string"), -1486304829);
	cr_assert_eq(hash("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"),
		     -58897971);
	cr_assert_eq(hash("abc"), 479470107);
	cr_assert_eq(hash(""), 275646681);
	cr_assert_eq(hash("{\"id\":1}"), -56768732);
}

Test(partitioner, key_partition_clears_the_sign_bit)
{
	/* -973932308 & 0x7fffffff = 1173551340: 0 of 3, 3 of 7 (as an
	 * unsigned 3321035020 it would be 2 of 3). */
	cr_assert_eq(kafka_key_partition("21", 2, 3), 0);
	cr_assert_eq(kafka_key_partition("21", 2, 7), 3);
	cr_assert_eq(kafka_key_partition("foobar", 6, 3), 0);
	cr_assert_eq(kafka_key_partition("abc", 3, 7), 4);
	cr_assert_eq(kafka_key_partition("", 0, 3), 0);
	cr_assert_eq(kafka_key_partition("", 0, 7), 2);
	for (int32_t n = 1; n < 50; n++)
		cr_assert_lt(kafka_key_partition("foobar", 6, n), n);
}
