/*
 * record_batch: reading, checking, patching and writing record batch v2.
 *
 * Header fields sit at fixed offsets (see the table below), so the patchers
 * write big-endian bytes in place.  Records are parsed with kb_reader: each
 * record is borrowed as a run of its announced length and parsed inside that
 * run, so a record can never read into its neighbour.
 */
#include "record_batch.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compress.h"
#include "crc32c.h"

/* Offsets of the header fields (DefaultRecordBatch.java). */
#define OFF_BASE_OFFSET	      0
#define OFF_BATCH_LENGTH      8
#define OFF_LEADER_EPOCH      12
#define OFF_MAGIC	      16
#define OFF_CRC		      17
#define OFF_ATTRIBUTES	      21
#define OFF_LAST_OFFSET_DELTA 23
#define OFF_BASE_TIMESTAMP    27
#define OFF_MAX_TIMESTAMP     35
#define OFF_PRODUCER_ID	      43
#define OFF_PRODUCER_EPOCH    51
#define OFF_BASE_SEQUENCE     53
#define OFF_RECORD_COUNT      57

#define RB_MAGIC 2
/* The smallest BatchLength: the header after BaseOffset and BatchLength. */
#define RB_MIN_BATCH_LENGTH (RB_HEADER_SIZE - RB_LOG_OVERHEAD)

_Static_assert(OFF_CRC == RB_CRC_OFFSET, "CRC offset");
_Static_assert(OFF_ATTRIBUTES == RB_ATTR_OFFSET, "attributes offset");
_Static_assert(OFF_RECORD_COUNT + 4 == RB_HEADER_SIZE, "header size");

__attribute__((format(printf, 3, 4))) static int
rb_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

static uint64_t get_be(const uint8_t *p, int n)
{
	uint64_t v = 0;

	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

int rb_read_header(const uint8_t *p, size_t n, struct rb_header *h)
{
	if (n < RB_HEADER_SIZE) {
		memset(h, 0, sizeof(*h));
		return -1;
	}
	h->BaseOffset = (int64_t)get_be(p + OFF_BASE_OFFSET, 8);
	h->BatchLength = (int32_t)get_be(p + OFF_BATCH_LENGTH, 4);
	h->PartitionLeaderEpoch = (int32_t)get_be(p + OFF_LEADER_EPOCH, 4);
	h->Magic = (int8_t)p[OFF_MAGIC];
	h->Crc = (uint32_t)get_be(p + OFF_CRC, 4);
	h->Attributes = (int16_t)get_be(p + OFF_ATTRIBUTES, 2);
	h->LastOffsetDelta = (int32_t)get_be(p + OFF_LAST_OFFSET_DELTA, 4);
	h->BaseTimestamp = (int64_t)get_be(p + OFF_BASE_TIMESTAMP, 8);
	h->MaxTimestamp = (int64_t)get_be(p + OFF_MAX_TIMESTAMP, 8);
	h->ProducerId = (int64_t)get_be(p + OFF_PRODUCER_ID, 8);
	h->ProducerEpoch = (int16_t)get_be(p + OFF_PRODUCER_EPOCH, 2);
	h->BaseSequence = (int32_t)get_be(p + OFF_BASE_SEQUENCE, 4);
	h->RecordCount = (int32_t)get_be(p + OFF_RECORD_COUNT, 4);
	return 0;
}

/*
 * The checks rb_check() and rb_foreach_record() share, CRC aside.  A batch
 * from a client (strict) holds records and claims exactly their offsets;
 * one rewritten by log compaction keeps its LastOffsetDelta over fewer
 * records, or none.
 */
static int check_header(const struct rb_header *h, size_t n, bool strict,
			char *err, size_t errlen)
{
	if (h->Magic != RB_MAGIC)
		return rb_err(err, errlen, "magic %d, only 2 is supported",
			      h->Magic);
	if (h->BatchLength < RB_MIN_BATCH_LENGTH ||
	    (size_t)h->BatchLength != n - RB_LOG_OVERHEAD)
		return rb_err(err, errlen,
			      "BatchLength %d does not match the %zu bytes "
			      "given",
			      h->BatchLength, n);
	if (h->RecordCount < 0 || (strict && h->RecordCount == 0))
		return rb_err(err, errlen, "RecordCount %d", h->RecordCount);
	/* Kafka's LogValidator: the offsets a batch claims are its records.
	 * An empty batch (left by compaction) only needs a sane delta. */
	if (h->RecordCount > 0
		    ? (strict ? h->LastOffsetDelta != h->RecordCount - 1
			      : h->LastOffsetDelta < h->RecordCount - 1)
		    : h->LastOffsetDelta < -1)
		return rb_err(err, errlen,
			      "LastOffsetDelta %d with RecordCount %d",
			      h->LastOffsetDelta, h->RecordCount);
	return 0;
}

int rb_check(const uint8_t *p, size_t n, char *err, size_t errlen)
{
	struct rb_header h;
	uint32_t crc;

	if (rb_read_header(p, n, &h) < 0)
		return rb_err(err, errlen,
			      "%zu bytes: shorter than a batch header", n);
	if (check_header(&h, n, true, err, errlen) < 0)
		return -1;
	crc = crc32c(0, p + RB_ATTR_OFFSET, n - RB_ATTR_OFFSET);
	if (crc != h.Crc) {
		rb_err(err, errlen, "CRC %08x, computed %08x", h.Crc, crc);
		return RB_BAD_CRC;
	}
	return 0;
}

int rb_split(const uint8_t *p, size_t n,
	     int (*fn)(void *arg, const uint8_t *batch, size_t len), void *arg,
	     char *err, size_t errlen)
{
	size_t pos = 0;
	int count = 0;

	while (pos < n) {
		size_t left = n - pos;
		int32_t blen;
		size_t total;

		/* Every message format keeps its magic at offset 16. */
		if (left <= OFF_MAGIC)
			return rb_err(err, errlen,
				      "partial batch: %zu trailing bytes",
				      left);
		if (p[pos + OFF_MAGIC] != RB_MAGIC)
			return rb_err(err, errlen,
				      "batch %d: magic %d, only 2 is supported",
				      count, (int8_t)p[pos + OFF_MAGIC]);
		blen = (int32_t)get_be(p + pos + OFF_BATCH_LENGTH, 4);
		if (blen < RB_MIN_BATCH_LENGTH)
			return rb_err(err, errlen,
				      "batch %d: BatchLength %d is too small",
				      count, blen);
		if ((size_t)blen > left - RB_LOG_OVERHEAD)
			return rb_err(
				err, errlen,
				"partial batch: BatchLength %d, %zu bytes "
				"left",
				blen, left - RB_LOG_OVERHEAD);
		if (count == INT_MAX)
			return rb_err(err, errlen, "too many batches");
		total = RB_LOG_OVERHEAD + (size_t)blen;
		/* fn says why itself. */
		if (fn != NULL && fn(arg, p + pos, total) != 0)
			return -1;
		count++;
		pos += total;
	}
	return count;
}

void rb_set_base_offset(uint8_t *batch, int64_t base_offset)
{
	put_be(batch + OFF_BASE_OFFSET, (uint64_t)base_offset, 8);
}

void rb_set_leader_epoch(uint8_t *batch, int32_t epoch)
{
	put_be(batch + OFF_LEADER_EPOCH, (uint32_t)epoch, 4);
}

void rb_set_create_time(uint8_t *batch, size_t n, int64_t max_ts)
{
	if (n < RB_HEADER_SIZE)
		return;
	uint16_t attr = (uint16_t)get_be(batch + OFF_ATTRIBUTES, 2);
	if (!(attr & RB_ATTR_LOG_APPEND_TIME) &&
	    (int64_t)get_be(batch + OFF_MAX_TIMESTAMP, 8) == max_ts)
		return;
	put_be(batch + OFF_ATTRIBUTES, attr & ~RB_ATTR_LOG_APPEND_TIME, 2);
	put_be(batch + OFF_MAX_TIMESTAMP, (uint64_t)max_ts, 8);
	put_be(batch + OFF_CRC,
	       crc32c(0, batch + RB_ATTR_OFFSET, n - RB_ATTR_OFFSET), 4);
}

void rb_set_log_append_time(uint8_t *batch, size_t n, int64_t ts)
{
	uint16_t attr;

	if (n < RB_HEADER_SIZE)
		return;
	attr = (uint16_t)get_be(batch + OFF_ATTRIBUTES, 2);
	put_be(batch + OFF_ATTRIBUTES, attr | RB_ATTR_LOG_APPEND_TIME, 2);
	put_be(batch + OFF_BASE_TIMESTAMP, (uint64_t)ts, 8);
	put_be(batch + OFF_MAX_TIMESTAMP, (uint64_t)ts, 8);
	put_be(batch + OFF_CRC,
	       crc32c(0, batch + RB_ATTR_OFFSET, n - RB_ATTR_OFFSET), 4);
}

/*
 * Parses the RecordCount records in data[0..len), calling fn (when not NULL)
 * for each.  rb_foreach_record() runs it once without fn to validate, so fn
 * only ever sees a batch that parses completely.
 */
static int parse_records(int32_t count, const uint8_t *data, size_t len,
			 int (*fn)(void *arg, const struct rb_record *rec),
			 void *arg, struct rb_stats *st, char *err,
			 size_t errlen)
{
	struct kb_reader r;

	kb_reader_init(&r, data, len);
	if (st)
		*st = (struct rb_stats){INT64_MAX, INT64_MIN, false};
	for (int32_t i = 0; i < count; i++) {
		struct rb_record rec;
		struct kb_reader rr;
		const uint8_t *body;
		int32_t rlen;
		size_t hstart;

		if (!kb_read_varint(&r, &rlen) || rlen < 0 ||
		    (size_t)rlen > kb_remaining(&r))
			return rb_err(err, errlen,
				      "record %d of %d: bad or truncated "
				      "length",
				      i, count);
		kb_read_raw(&r, (size_t)rlen, &body);
		kb_reader_init(&rr, body, (size_t)rlen);
		kb_read_i8(&rr, &rec.Attributes);
		kb_read_varlong(&rr, &rec.TimestampDelta);
		kb_read_varint(&rr, &rec.OffsetDelta);
		kb_read_varbytes(&rr, &rec.Key);
		kb_read_varbytes(&rr, &rec.Value);
		kb_read_varint(&rr, &rec.HeaderCount);
		if (!kb_reader_ok(&rr) || rec.HeaderCount < 0 ||
		    (size_t)rec.HeaderCount > kb_remaining(&rr) / 2)
			return rb_err(err, errlen,
				      "record %d: fields overrun its %d bytes",
				      i, rlen);
		hstart = rr.pos;
		for (int32_t j = 0; j < rec.HeaderCount; j++) {
			struct kstr hk, hv;

			kb_read_varbytes(&rr, &hk);
			kb_read_varbytes(&rr, &hv);
			if (!kb_reader_ok(&rr) || hk.len < 0)
				return rb_err(err, errlen,
					      "record %d: header %d does not "
					      "parse",
					      i, j);
		}
		if (kb_remaining(&rr) != 0)
			return rb_err(err, errlen,
				      "record %d: length %d, fields take %zu",
				      i, rlen, rr.pos);
		rec.Headers = body + hstart;
		rec.HeadersLen = rr.pos - hstart;
		if (st) {
			if (rec.TimestampDelta < st->min_ts_delta)
				st->min_ts_delta = rec.TimestampDelta;
			if (rec.TimestampDelta > st->max_ts_delta)
				st->max_ts_delta = rec.TimestampDelta;
			st->null_key |= rec.Key.len < 0;
		}
		if (fn != NULL && fn(arg, &rec) != 0)
			return rb_err(err, errlen, "record %d refused", i);
	}
	if (kb_remaining(&r) != 0)
		return rb_err(err, errlen,
			      "%zu bytes after the %d records of RecordCount",
			      kb_remaining(&r), count);
	return 0;
}

/* The records of the batch at p: decompressed into scratch when it is
 * compressed, in place otherwise.  0, or KC_TOO_BIG / -1 from
 * kc_decompress (err set). */
static int batch_records(const uint8_t *p, size_t n, const struct rb_header *h,
			 struct kb_writer *scratch, size_t max_out,
			 const uint8_t **data, size_t *len, char *err,
			 size_t errlen)
{
	int codec = h->Attributes & RB_ATTR_CODEC_MASK;
	*data = p + RB_HEADER_SIZE;
	*len = n - RB_HEADER_SIZE;
	/* An empty batch has nothing to decompress, whatever its codec. */
	if (codec == KC_NONE || (*len == 0 && h->RecordCount == 0))
		return 0;
	scratch->len = 0;
	scratch->failed = false;
	int rc = kc_decompress(codec, *data, *len, scratch, max_out, err,
			       errlen);
	if (rc < 0)
		return rc;
	*data = scratch->buf;
	*len = scratch->len;
	return 0;
}

/* rb_foreach_record and rb_check_records: the batch's records parsed
 * (st filled when not NULL), then given to fn when not NULL. */
static int each_record(const uint8_t *p, size_t n, struct kb_writer *scratch,
		       size_t max_out,
		       int (*fn)(void *arg, const struct rb_record *rec),
		       void *arg, struct rb_stats *st, char *err, size_t errlen)
{
	struct rb_header h;
	const uint8_t *data;
	size_t len;

	if (rb_read_header(p, n, &h) < 0)
		return rb_err(err, errlen,
			      "%zu bytes: shorter than a batch header", n);
	if (check_header(&h, n, false, err, errlen) < 0)
		return -1;
	int rc = batch_records(p, n, &h, scratch, max_out, &data, &len, err,
			       errlen);
	if (rc < 0)
		return rc;
	if (parse_records(h.RecordCount, data, len, NULL, NULL, st, err,
			  errlen) < 0)
		return -1;
	if (fn == NULL)
		return 0;
	return parse_records(h.RecordCount, data, len, fn, arg, NULL, err,
			     errlen);
}

int rb_foreach_record(const uint8_t *p, size_t n, struct kb_writer *scratch,
		      size_t max_out,
		      int (*fn)(void *arg, const struct rb_record *rec),
		      void *arg, char *err, size_t errlen)
{
	return each_record(p, n, scratch, max_out, fn, arg, NULL, err, errlen);
}

int rb_check_records(const uint8_t *p, size_t n, struct kb_writer *scratch,
		     size_t max_out, struct rb_stats *st, char *err,
		     size_t errlen)
{
	return each_record(p, n, scratch, max_out, NULL, NULL, st, err, errlen);
}

int rb_recompress(const uint8_t *p, size_t n, int codec, int level,
		  struct kb_writer *scratch, size_t max_out,
		  struct rb_stats *st, struct kb_writer *out, char *err,
		  size_t errlen)
{
	struct rb_header h;
	const uint8_t *recs = p + RB_HEADER_SIZE;
	size_t len = n - RB_HEADER_SIZE, start = out->len;

	int checked = rb_check_records(p, n, scratch, max_out, st, err, errlen);
	if (checked < 0)
		return checked;
	rb_read_header(p, n, &h);
	if ((h.Attributes & RB_ATTR_CODEC_MASK) != KC_NONE) {
		recs = scratch->buf;
		len = h.RecordCount > 0 ? scratch->len : 0;
	}
	kb_write_raw(out, p, RB_HEADER_SIZE);
	int rc = kc_compress(codec, level, recs, len, out, err, errlen);
	if (rc == 0 && !kb_writer_ok(out))
		rc = rb_err(err, errlen, "out of memory");
	if (rc == 0 && out->len - start - RB_LOG_OVERHEAD > INT32_MAX)
		rc = rb_err(err, errlen, "batch of %zu bytes is too large",
			    out->len - start);
	if (rc < 0) {
		out->len = start;
		return -1;
	}
	uint8_t *b = out->buf + start;
	size_t total = out->len - start;
	put_be(b + OFF_BATCH_LENGTH, total - RB_LOG_OVERHEAD, 4);
	put_be(b + OFF_ATTRIBUTES,
	       ((uint16_t)h.Attributes & ~RB_ATTR_CODEC_MASK) | (uint16_t)codec,
	       2);
	put_be(b + OFF_CRC,
	       crc32c(0, b + RB_ATTR_OFFSET, total - RB_ATTR_OFFSET), 4);
	return 0;
}

/* Encoded size of a varint-length byte run (null included). */
static uint64_t varbytes_size(struct kstr s)
{
	if (s.len < 0)
		return kb_varint_size(-1);
	return kb_varint_size(s.len) + (uint64_t)s.len;
}

static bool kstr_valid(struct kstr s)
{
	return s.len >= -1 && (s.len <= 0 || s.ptr != NULL);
}

static int write_record(struct kb_writer *w, const struct rb_new_record *rec,
			int32_t delta, int64_t base_ts, char *err,
			size_t errlen)
{
	int64_t tsd;
	uint64_t size;

	if (__builtin_sub_overflow(rec->Timestamp, base_ts, &tsd))
		return rb_err(err, errlen, "record %d: timestamp out of range",
			      delta);
	if (!kstr_valid(rec->Key) || !kstr_valid(rec->Value) ||
	    rec->HeaderCount < 0 ||
	    (rec->HeaderCount > 0 &&
	     (rec->HeaderKeys == NULL || rec->HeaderValues == NULL)))
		return rb_err(err, errlen, "record %d: invalid fields", delta);
	size = 1 + kb_varlong_size(tsd) + kb_varint_size(delta) +
	       varbytes_size(rec->Key) + varbytes_size(rec->Value) +
	       kb_varint_size(rec->HeaderCount);
	for (int32_t j = 0; j < rec->HeaderCount; j++) {
		if (rec->HeaderKeys[j].len < 0 ||
		    !kstr_valid(rec->HeaderKeys[j]) ||
		    !kstr_valid(rec->HeaderValues[j]))
			return rb_err(err, errlen,
				      "record %d: header %d: invalid (null "
				      "key?)",
				      delta, j);
		size += varbytes_size(rec->HeaderKeys[j]) +
			varbytes_size(rec->HeaderValues[j]);
	}
	if (size > INT32_MAX)
		return rb_err(err, errlen, "record %d: too large", delta);
	kb_write_varint(w, (int32_t)size);
	kb_write_i8(w, 0);
	kb_write_varlong(w, tsd);
	kb_write_varint(w, delta);
	kb_write_varbytes(w, rec->Key);
	kb_write_varbytes(w, rec->Value);
	kb_write_varint(w, rec->HeaderCount);
	for (int32_t j = 0; j < rec->HeaderCount; j++) {
		kb_write_varbytes(w, rec->HeaderKeys[j]);
		kb_write_varbytes(w, rec->HeaderValues[j]);
	}
	return 0;
}

int rb_build(struct kb_writer *w, int64_t base_offset, int16_t attributes,
	     int64_t producer_id, int16_t producer_epoch, int32_t base_sequence,
	     const struct rb_new_record *records, int count, char *err,
	     size_t errlen)
{
	size_t start = w->len, len_off, crc_off, total;
	int codec = attributes & RB_ATTR_CODEC_MASK;
	struct kb_writer tmp;
	struct kb_writer *rw;
	int64_t base_ts = -1, max_ts = -1;

	if (count < 0 || (count > 0 && records == NULL))
		return rb_err(err, errlen, "%d records", count);
	if (kc_name(codec) == NULL)
		return rb_err(err, errlen, "unknown compression codec %d",
			      codec);
	if (count > 0) {
		base_ts = max_ts = records[0].Timestamp;
		for (int i = 1; i < count; i++)
			if (records[i].Timestamp > max_ts)
				max_ts = records[i].Timestamp;
	}
	kb_writer_init(&tmp);
	kb_write_i64(w, base_offset);
	len_off = kb_skip_bytes(w, 4);
	kb_write_i32(w, -1); /* PartitionLeaderEpoch: the broker's to set */
	kb_write_i8(w, RB_MAGIC);
	crc_off = kb_skip_bytes(w, 4);
	kb_write_i16(w, attributes);
	kb_write_i32(w, count - 1);
	kb_write_i64(w, base_ts);
	kb_write_i64(w, max_ts);
	kb_write_i64(w, producer_id);
	kb_write_i16(w, producer_epoch);
	kb_write_i32(w, base_sequence);
	kb_write_i32(w, count);

	/* Compressed records are written apart, then compressed as one run. */
	rw = codec == KC_NONE ? w : &tmp;
	for (int i = 0; i < count; i++)
		if (write_record(rw, &records[i], i, base_ts, err, errlen) < 0)
			goto fail;
	if (codec != KC_NONE) {
		if (!kb_writer_ok(&tmp)) {
			rb_err(err, errlen, "out of memory");
			goto fail;
		}
		if (kc_compress(codec, KC_LEVEL_DEFAULT, tmp.buf, tmp.len, w,
				err, errlen) < 0)
			goto fail;
	}
	if (!kb_writer_ok(w)) {
		rb_err(err, errlen, "out of memory");
		goto fail;
	}
	total = w->len - start;
	if (total - RB_LOG_OVERHEAD > INT32_MAX) {
		rb_err(err, errlen, "batch of %zu bytes is too large", total);
		goto fail;
	}
	kb_patch_i32(w, len_off, (int32_t)(total - RB_LOG_OVERHEAD));
	kb_patch_u32(w, crc_off,
		     crc32c(0, w->buf + start + RB_ATTR_OFFSET,
			    total - RB_ATTR_OFFSET));
	kb_writer_free(&tmp);
	return 0;

fail:
	kb_writer_free(&tmp);
	if (w->len > start)
		w->len = start;
	return -1;
}
