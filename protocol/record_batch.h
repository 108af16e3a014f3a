/*
 * record_batch: Kafka record batch v2 (magic 2), the unit samsa stores.
 *
 * Layout (big-endian): BaseOffset i64, BatchLength i32 (bytes after this
 * field), PartitionLeaderEpoch i32, Magic i8, Crc u32 (CRC-32C of everything
 * from Attributes to the end), Attributes i16, LastOffsetDelta i32,
 * BaseTimestamp i64, MaxTimestamp i64, ProducerId i64, ProducerEpoch i16,
 * BaseSequence i32, RecordCount i32, then the records (compressed as one
 * run when the codec bits are set).
 */
#ifndef SAMSA_RECORD_BATCH_H
#define SAMSA_RECORD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbuf.h"

#define RB_HEADER_SIZE	61 /* bytes before the first record */
#define RB_LOG_OVERHEAD 12 /* BaseOffset + BatchLength */
#define RB_CRC_OFFSET	17 /* where Crc sits */
#define RB_ATTR_OFFSET	21 /* where the CRC-covered part starts */

#define RB_ATTR_CODEC_MASK	0x07
#define RB_ATTR_LOG_APPEND_TIME 0x08
#define RB_ATTR_TRANSACTIONAL	0x10
#define RB_ATTR_CONTROL		0x20
#define RB_ATTR_DELETE_HORIZON	0x40

struct rb_header {
	int64_t BaseOffset;
	int32_t BatchLength;
	int32_t PartitionLeaderEpoch;
	int8_t Magic;
	uint32_t Crc;
	int16_t Attributes;
	int32_t LastOffsetDelta;
	int64_t BaseTimestamp;
	int64_t MaxTimestamp;
	int64_t ProducerId;
	int16_t ProducerEpoch;
	int32_t BaseSequence;
	int32_t RecordCount;
};

/* One record of a batch; key/value/headers borrow the (decompressed) data. */
struct rb_record {
	int8_t Attributes;
	int64_t TimestampDelta;
	int32_t OffsetDelta;
	struct kstr Key;   /* len -1: null key */
	struct kstr Value; /* len -1: null value (tombstone) */
	int32_t HeaderCount;
	const uint8_t *Headers; /* HeaderCount headers, as on the wire */
	size_t HeadersLen;
};

/*
 * Reads the 61-byte header at p (n bytes available).  Returns 0, or -1 when
 * n is too short.  Does not check magic, length or CRC.
 */
int rb_read_header(const uint8_t *p, size_t n, struct rb_header *h);

/*
 * Checks one batch at p whose total size (RB_LOG_OVERHEAD + BatchLength) is
 * n: magic 2, BatchLength consistent with n, RecordCount > 0 and consistent
 * with LastOffsetDelta, CRC-32C.  Returns 0, or with a message in err
 * RB_BAD_CRC when only the CRC does not match (Kafka's CORRUPT_MESSAGE,
 * which clients retry) or -1 when the batch is malformed (INVALID_RECORD).
 */
#define RB_BAD_CRC (-2)
int rb_check(const uint8_t *p, size_t n, char *err, size_t errlen);

/*
 * Splits a Produce `records` field into batches.  Calls fn(arg, p, n) for each
 * whole batch in order; stops at the first error.  Returns the number of
 * batches, or -1 when fn returned non-zero (fn says why), or with a
 * message in err when the blob holds a partial batch or a batch with
 * another magic.
 */
int rb_split(const uint8_t *p, size_t n,
	     int (*fn)(void *arg, const uint8_t *batch, size_t len), void *arg,
	     char *err, size_t errlen);

/* Patch fields of a stored batch in place (caller owns the bytes). */
void rb_set_base_offset(uint8_t *batch, int64_t base_offset);
void rb_set_leader_epoch(uint8_t *batch, int32_t epoch);
/* Sets LogAppendTime: attribute bit, MaxTimestamp (and BaseTimestamp) to ts,
 * and recomputes the CRC as Kafka does. n is the batch's total size. */
void rb_set_log_append_time(uint8_t *batch, size_t n, int64_t ts);
/* The batch's MaxTimestamp set to max_ts with the CreateTime type, and the
 * CRC recomputed, unless it has both already. */
void rb_set_create_time(uint8_t *batch, size_t n, int64_t max_ts);

/*
 * Calls fn(arg, &record) for every record of the batch at p (total size n),
 * decompressing into scratch when the batch is compressed (scratch is reset
 * first and may be reused across calls; caller frees it).  max_out bounds the
 * decompressed size.  Returns 0; KC_TOO_BIG (compress.h) when the records
 * decompress to more; -1 with a message in err when the records do not
 * parse, their count differs from RecordCount, or fn returns non-zero.
 * A batch rewritten by log compaction (fewer records than LastOffsetDelta
 * + 1, offset deltas with gaps) is accepted; rb_check() refuses it.
 */
int rb_foreach_record(const uint8_t *p, size_t n, struct kb_writer *scratch,
		      size_t max_out,
		      int (*fn)(void *arg, const struct rb_record *rec),
		      void *arg, char *err, size_t errlen);

/* What rb_check_records learns of a batch's records on the way. */
struct rb_stats {
	int64_t min_ts_delta, max_ts_delta; /* of TimestampDelta */
	bool null_key;			    /* some record has a null key */
};

/*
 * Checks that every record of the batch at p parses (as rb_foreach_record,
 * in one pass) and fills st.  Returns 0; KC_TOO_BIG when its records
 * decompress to more than max_out; -1 when they do not parse (err set).
 */
int rb_check_records(const uint8_t *p, size_t n, struct kb_writer *scratch,
		     size_t max_out, struct rb_stats *st, char *err,
		     size_t errlen);

/*
 * Appends to out the batch at p (total size n, checked by rb_check) with its
 * records compressed by codec (enum kc_codec) at level (see kc_compress),
 * as a broker whose topic sets compression.type does: header fields kept
 * but for BatchLength, the codec bits and the CRC.  The records are checked
 * on the way as rb_check_records does (decompressed into scratch, at most
 * max_out bytes; st filled when not NULL).  Returns 0, or as
 * rb_check_records with a message in err and out as it was.
 */
int rb_recompress(const uint8_t *p, size_t n, int codec, int level,
		  struct kb_writer *scratch, size_t max_out,
		  struct rb_stats *st, struct kb_writer *out, char *err,
		  size_t errlen);

/* A record to write with rb_build(). Headers: HeaderCount key/value pairs. */
struct rb_new_record {
	int64_t Timestamp;
	struct kstr Key;
	struct kstr Value;
	int32_t HeaderCount;
	const struct kstr *HeaderKeys;
	const struct kstr *HeaderValues;
};

/*
 * Appends one complete batch with `count` records to w: base offset
 * base_offset, the given attributes (codec bits select the compression),
 * producer id/epoch/base sequence (-1/-1/-1 for none), timestamps from the
 * records, CRC computed.  Returns 0, or -1 with a message in err.
 */
int rb_build(struct kb_writer *w, int64_t base_offset, int16_t attributes,
	     int64_t producer_id, int16_t producer_epoch, int32_t base_sequence,
	     const struct rb_new_record *records, int count, char *err,
	     size_t errlen);

#endif
