/*
 * partitioner: the partition Kafka's Java producer gives a keyed record
 * (its BuiltInPartitioner, the DefaultPartitioner before it, and
 * librdkafka's murmur2_random): murmur2 of the serialized key bytes, made
 * positive, modulo the partition count.  Records whose keys map alike in
 * every client can be joined partition by partition (Kafka Streams'
 * co-partitioning).
 */
#ifndef SAMSA_PARTITIONER_H
#define SAMSA_PARTITIONER_H

#include <stddef.h>
#include <stdint.h>

/* Kafka's Utils.murmur2 (seed 0x9747b28c), as the Java int. */
int32_t kafka_murmur2(const void *key, size_t len);

/* The partition of a record with key (len bytes) among n > 0. */
int32_t kafka_key_partition(const void *key, size_t len, int32_t n);

#endif
