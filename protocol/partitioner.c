/*
 * partitioner: Kafka's key to partition mapping (protocol/partitioner.h),
 * computed in uint32_t so that the wrap-around of Java's int arithmetic is
 * defined behaviour here.
 */
#include "protocol/partitioner.h"

int32_t kafka_murmur2(const void *key, size_t len)
{
	const uint8_t *d = key;
	const uint32_t m = 0x5bd1e995;
	uint32_t h = 0x9747b28cu ^ (uint32_t)len;
	size_t i = 0;
	for (; i + 4 <= len; i += 4) {
		uint32_t k = (uint32_t)d[i] | (uint32_t)d[i + 1] << 8 |
			     (uint32_t)d[i + 2] << 16 |
			     (uint32_t)d[i + 3] << 24;
		k *= m;
		k ^= k >> 24;
		k *= m;
		h *= m;
		h ^= k;
	}
	switch (len & 3) {
	case 3:
		h ^= (uint32_t)d[i + 2] << 16;
		/* fall through */
	case 2:
		h ^= (uint32_t)d[i + 1] << 8;
		/* fall through */
	case 1:
		h ^= d[i];
		h *= m;
	}
	h ^= h >> 13;
	h *= m;
	h ^= h >> 15;
	return (int32_t)h;
}

int32_t kafka_key_partition(const void *key, size_t len, int32_t n)
{
	/* Utils.toPositive: the sign bit cleared, not the absolute value. */
	uint32_t positive = (uint32_t)kafka_murmur2(key, len) & 0x7fffffffu;
	return (int32_t)(positive % (uint32_t)n);
}
