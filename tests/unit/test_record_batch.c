/*
 * record_batch: a golden batch written by hand from the spec, batches built
 * with every codec and read back, the in-place patchers, and hostile input
 * (every truncation, flipped bytes, records that lie about their sizes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "protocol/compress.h"
#include "protocol/crc32c.h"
#include "protocol/kbuf.h"
#include "protocol/record_batch.h"
#include "tests/support/leak_check.h"

TestSuite(record_batch, .fini = leak_check);

#define MAX_OUT ((size_t)1 << 20)

/*
 * Two records, uncompressed, written from DefaultRecordBatch's layout by
 * hand; the CRC was computed by a separate bitwise CRC-32C.
 */
static const char golden_hex[] =
	"0000000000000000" /* BaseOffset 0 */
	"00000048"	   /* BatchLength 72 */
	"ffffffff"	   /* PartitionLeaderEpoch -1 */
	"02"		   /* Magic */
	"601d1266"	   /* Crc */
	"0000"		   /* Attributes: none, CreateTime */
	"00000001"	   /* LastOffsetDelta 1 */
	"0000018bcfe56800" /* BaseTimestamp 1700000000000 */
	"0000018bcfe56805" /* MaxTimestamp 1700000000005 */
	"ffffffffffffffff" /* ProducerId -1 */
	"ffff"		   /* ProducerEpoch -1 */
	"ffffffff"	   /* BaseSequence -1 */
	"00000002"	   /* RecordCount 2 */
	/* record 0: length 13, attributes 0, TimestampDelta 0, OffsetDelta 0,
	 * key "k", value "v1", 1 header "h" = "x" */
	"1a 00 00 00 026b 047631 02 0268 0278"
	/* record 1: length 8, attributes 0, TimestampDelta 5, OffsetDelta 1,
	 * null key, value "v2", no headers */
	"10 00 0a 02 01 047632 00";

/* Hex digits to bytes; spaces only group digits for the reader. */
static size_t unhex(const char *h, uint8_t *out, size_t cap)
{
	size_t n = 0;

	for (; *h != '\0'; h++) {
		unsigned v;

		if (*h == ' ')
			continue;
		cr_assert_lt(n, cap);
		cr_assert_eq(sscanf(h, "%2x", &v), 1);
		out[n++] = (uint8_t)v;
		h++;
	}
	return n;
}

/* Records collected by rb_foreach_record(), copied out of the scratch. */
struct seen {
	int n;
	struct rb_record rec[64];
	char key[64][32];
	char value[64][32];
	char hdr[64][64];
};

static int collect(void *arg, const struct rb_record *rec)
{
	struct seen *s = arg;

	cr_assert_lt(s->n, 64);
	s->rec[s->n] = *rec;
	if (rec->Key.len > 0)
		memcpy(s->key[s->n], rec->Key.ptr, (size_t)rec->Key.len);
	if (rec->Value.len > 0)
		memcpy(s->value[s->n], rec->Value.ptr, (size_t)rec->Value.len);
	cr_assert_leq(rec->HeadersLen, sizeof(s->hdr[0]));
	memcpy(s->hdr[s->n], rec->Headers, rec->HeadersLen);
	s->n++;
	return 0;
}

static int refuse(void *arg, const struct rb_record *rec)
{
	(void)rec;
	return ++*(int *)arg == 2;
}

Test(record_batch, golden_fixture)
{
	uint8_t b[256];
	size_t n = unhex(golden_hex, b, sizeof(b));
	struct rb_header h;
	struct kb_writer scratch, w;
	static struct seen s;
	char err[128] = "";

	cr_assert_eq(n, 84);
	cr_assert_eq(rb_read_header(b, n, &h), 0);
	cr_assert_eq(h.BaseOffset, 0);
	cr_assert_eq(h.BatchLength, 72);
	cr_assert_eq(h.PartitionLeaderEpoch, -1);
	cr_assert_eq(h.Magic, 2);
	cr_assert_eq(h.Crc, 0x601d1266u);
	cr_assert_eq(h.Attributes, 0);
	cr_assert_eq(h.LastOffsetDelta, 1);
	cr_assert_eq(h.BaseTimestamp, 1700000000000);
	cr_assert_eq(h.MaxTimestamp, 1700000000005);
	cr_assert_eq(h.ProducerId, -1);
	cr_assert_eq(h.ProducerEpoch, -1);
	cr_assert_eq(h.BaseSequence, -1);
	cr_assert_eq(h.RecordCount, 2);
	cr_assert_eq(rb_check(b, n, err, sizeof(err)), 0, "%s", err);

	kb_writer_init(&scratch);
	memset(&s, 0, sizeof(s));
	cr_assert_eq(rb_foreach_record(b, n, &scratch, MAX_OUT, collect, &s,
				       err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(s.n, 2);
	cr_assert_eq(s.rec[0].Attributes, 0);
	cr_assert_eq(s.rec[0].TimestampDelta, 0);
	cr_assert_eq(s.rec[0].OffsetDelta, 0);
	cr_assert_eq(s.rec[0].Key.len, 1);
	cr_assert(memcmp(s.key[0], "k", 1) == 0);
	cr_assert_eq(s.rec[0].Value.len, 2);
	cr_assert(memcmp(s.value[0], "v1", 2) == 0);
	cr_assert_eq(s.rec[0].HeaderCount, 1);
	cr_assert_eq(s.rec[0].HeadersLen, 4);
	cr_assert(memcmp(s.hdr[0], "\x02h\x02x", 4) == 0);
	cr_assert_eq(s.rec[1].TimestampDelta, 5);
	cr_assert_eq(s.rec[1].OffsetDelta, 1);
	cr_assert_eq(s.rec[1].Key.len, -1);
	cr_assert_null(s.rec[1].Key.ptr);
	cr_assert_eq(s.rec[1].Value.len, 2);
	cr_assert(memcmp(s.value[1], "v2", 2) == 0);
	cr_assert_eq(s.rec[1].HeaderCount, 0);
	cr_assert_eq(s.rec[1].HeadersLen, 0);

	/* rb_build writes the same bytes from the same records. */
	struct kstr hk[] = {KSTR_LIT("h")}, hv[] = {KSTR_LIT("x")};
	struct rb_new_record recs[] = {
		{1700000000000, KSTR_LIT("k"), KSTR_LIT("v1"), 1, hk, hv},
		{1700000000005, KSTR_NULL, KSTR_LIT("v2"), 0, NULL, NULL},
	};
	kb_writer_init(&w);
	cr_assert_eq(rb_build(&w, 0, 0, -1, -1, -1, recs, 2, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(w.len, n);
	cr_assert(memcmp(w.buf, b, n) == 0, "rb_build differs from golden");
	kb_writer_free(&w);
	kb_writer_free(&scratch);
}

/* Every strict prefix, and every byte of the batch flipped. */
Test(record_batch, golden_truncated_and_flipped)
{
	uint8_t b[256];
	size_t n = unhex(golden_hex, b, sizeof(b));
	struct kb_writer scratch;
	char err[128];

	kb_writer_init(&scratch);
	for (size_t k = 0; k < n; k++) {
		err[0] = '\0';
		cr_assert_eq(rb_check(b, k, err, sizeof(err)), -1, "%zu", k);
		cr_assert_neq(err[0], '\0');
		cr_assert_eq(rb_split(b, k, NULL, NULL, err, sizeof(err)),
			     k == 0 ? 0 : -1, "%zu", k);
		cr_assert_eq(rb_foreach_record(b, k, &scratch, MAX_OUT, NULL,
					       NULL, err, sizeof(err)),
			     -1, "%zu", k);
	}
	for (size_t i = 0; i < n; i++) {
		/* BaseOffset and the leader epoch are outside the CRC. */
		bool free_field = i < 8 || (i >= 12 && i < 16);

		for (int bit = 0; bit < 8; bit++) {
			b[i] ^= (uint8_t)(1u << bit);
			int rc = rb_check(b, n, err, sizeof(err));
			/* The header's fields fail as malformed or by the CRC;
			 * the records' bytes by the CRC alone. */
			cr_assert(free_field	       ? rc == 0
				  : i < RB_HEADER_SIZE ? rc < 0
						       : rc == RB_BAD_CRC,
				  "byte %zu bit %d: %d", i, bit, rc);
			b[i] ^= (uint8_t)(1u << bit);
		}
	}
	cr_assert_eq(rb_check(b, n, err, sizeof(err)), 0);
	kb_writer_free(&scratch);
}

/* Rewrites the CRC so a mutated batch reaches the record parser. */
static void fix_crc(uint8_t *b, size_t n)
{
	uint32_t c = crc32c(0, b + RB_ATTR_OFFSET, n - RB_ATTR_OFFSET);

	b[RB_CRC_OFFSET] = (uint8_t)(c >> 24);
	b[RB_CRC_OFFSET + 1] = (uint8_t)(c >> 16);
	b[RB_CRC_OFFSET + 2] = (uint8_t)(c >> 8);
	b[RB_CRC_OFFSET + 3] = (uint8_t)c;
}

Test(record_batch, records_that_lie)
{
	uint8_t b[256], m[256];
	size_t n = unhex(golden_hex, b, sizeof(b));
	struct kb_writer scratch;
	char err[128];
	int calls = 0;

	kb_writer_init(&scratch);
	/* Record 0 claims 12 bytes instead of 13. */
	memcpy(m, b, n);
	m[61] = 0x18;
	fix_crc(m, n);
	cr_assert_eq(rb_check(m, n, err, sizeof(err)), 0);
	cr_assert_eq(rb_foreach_record(m, n, &scratch, MAX_OUT, NULL, NULL, err,
				       sizeof(err)),
		     -1);
	/* RecordCount 1 (LastOffsetDelta 0): a record too many. */
	memcpy(m, b, n);
	m[60] = 1;
	m[26] = 0;
	fix_crc(m, n);
	cr_assert_eq(rb_check(m, n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_foreach_record(m, n, &scratch, MAX_OUT, NULL, NULL, err,
				       sizeof(err)),
		     -1);
	/* RecordCount 3 (LastOffsetDelta 2): a record short. */
	m[60] = 3;
	m[26] = 2;
	fix_crc(m, n);
	cr_assert_eq(rb_foreach_record(m, n, &scratch, MAX_OUT, NULL, NULL, err,
				       sizeof(err)),
		     -1);
	/* RecordCount inconsistent with LastOffsetDelta, and negative. */
	m[60] = 2;
	fix_crc(m, n);
	cr_assert_eq(rb_check(m, n, err, sizeof(err)), -1);
	memset(m + 57, 0xff, 4);
	fix_crc(m, n);
	cr_assert_eq(rb_check(m, n, err, sizeof(err)), -1);
	/* A null header key (varint -1). */
	memcpy(m, b, n);
	m[71] = 0x01;
	memmove(m + 72, m + 73, n - 73);
	m[61] = 0x18;
	m[11] = 71;
	fix_crc(m, n - 1);
	cr_assert_eq(rb_check(m, n - 1, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_foreach_record(m, n - 1, &scratch, MAX_OUT, NULL, NULL,
				       err, sizeof(err)),
		     -1);
	/* A refusing callback stops the walk with an error. */
	cr_assert_eq(rb_foreach_record(b, n, &scratch, MAX_OUT, refuse, &calls,
				       err, sizeof(err)),
		     -1);
	cr_assert_eq(calls, 2);
	/* Every byte of the records set to every value: no crash. */
	for (size_t i = RB_HEADER_SIZE; i < n; i++)
		for (int v = 0; v < 256; v++) {
			memcpy(m, b, n);
			m[i] = (uint8_t)v;
			fix_crc(m, n);
			rb_foreach_record(m, n, &scratch, MAX_OUT, NULL, NULL,
					  err, sizeof(err));
		}
	kb_writer_free(&scratch);
}

/* Builds a batch of the records below with the given codec in w. */
static const int64_t ts[] = {1000, 1003, 999, 1010, 1002};
static struct kstr hkeys[] = {KSTR_LIT("trace"), KSTR_LIT(""), KSTR_LIT("k3")};
static struct kstr hvals[] = {KSTR_LIT("abc"), KSTR_NULL, KSTR_LIT("")};

static void build(struct kb_writer *w, int codec, struct rb_new_record *recs)
{
	char err[128] = "";

	recs[0] = (struct rb_new_record){
		ts[0], KSTR_LIT("key0"), KSTR_LIT("value0"), 3, hkeys, hvals};
	recs[1] = (struct rb_new_record){ts[1], KSTR_NULL, KSTR_LIT("v"),
					 0,	NULL,	   NULL};
	recs[2] = (struct rb_new_record){
		ts[2], KSTR_LIT("tomb"), KSTR_NULL, 1, hkeys, hvals};
	recs[3] = (struct rb_new_record){ts[3], KSTR_LIT(""), KSTR_LIT(""),
					 0,	NULL,	      NULL};
	recs[4] = (struct rb_new_record){ts[4], KSTR_NULL, KSTR_NULL,
					 2,	hkeys + 1, hvals + 1};
	cr_assert_eq(rb_build(w, 42, (int16_t)codec, 7000, 3, 11, recs, 5, err,
			      sizeof(err)),
		     0, "%s", err);
}

static void check_kstr(struct kstr want, struct kstr got, const char *buf,
		       int i)
{
	cr_assert_eq(got.len, want.len, "record %d", i);
	if (want.len > 0)
		cr_assert(memcmp(buf, want.ptr, (size_t)want.len) == 0,
			  "record %d", i);
}

ParameterizedTestParameters(record_batch, codecs)
{
	static int codecs[] = {KC_NONE, KC_GZIP, KC_SNAPPY, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

ParameterizedTest(int *codec, record_batch, codecs)
{
	struct kb_writer w, scratch;
	struct rb_new_record recs[5];
	struct rb_header h;
	static struct seen s;
	char err[128] = "";

	kb_writer_init(&w);
	kb_writer_init(&scratch);
	build(&w, *codec, recs);
	cr_assert_eq(rb_check(w.buf, w.len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_read_header(w.buf, w.len, &h), 0);
	cr_assert_eq(h.BaseOffset, 42);
	cr_assert_eq((size_t)h.BatchLength + RB_LOG_OVERHEAD, w.len);
	cr_assert_eq(h.Attributes & RB_ATTR_CODEC_MASK, *codec);
	cr_assert_eq(h.LastOffsetDelta, 4);
	cr_assert_eq(h.BaseTimestamp, 1000);
	cr_assert_eq(h.MaxTimestamp, 1010);
	cr_assert_eq(h.ProducerId, 7000);
	cr_assert_eq(h.ProducerEpoch, 3);
	cr_assert_eq(h.BaseSequence, 11);
	cr_assert_eq(h.RecordCount, 5);

	memset(&s, 0, sizeof(s));
	cr_assert_eq(rb_foreach_record(w.buf, w.len, &scratch, MAX_OUT, collect,
				       &s, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(s.n, 5);
	for (int i = 0; i < 5; i++) {
		struct kb_reader r;

		cr_assert_eq(s.rec[i].OffsetDelta, i);
		cr_assert_eq(s.rec[i].TimestampDelta, ts[i] - 1000);
		check_kstr(recs[i].Key, s.rec[i].Key, s.key[i], i);
		check_kstr(recs[i].Value, s.rec[i].Value, s.value[i], i);
		cr_assert_eq(s.rec[i].HeaderCount, recs[i].HeaderCount);
		kb_reader_init(&r, s.hdr[i], s.rec[i].HeadersLen);
		for (int j = 0; j < recs[i].HeaderCount; j++) {
			struct kstr k, v;

			kb_read_varbytes(&r, &k);
			kb_read_varbytes(&r, &v);
			cr_assert(kb_reader_ok(&r));
			cr_assert_eq(k.len, recs[i].HeaderKeys[j].len);
			cr_assert_eq(v.len, recs[i].HeaderValues[j].len);
			if (k.len > 0)
				cr_assert(memcmp(k.ptr,
						 recs[i].HeaderKeys[j].ptr,
						 (size_t)k.len) == 0);
			if (v.len > 0)
				cr_assert(memcmp(v.ptr,
						 recs[i].HeaderValues[j].ptr,
						 (size_t)v.len) == 0);
		}
		cr_assert_eq(kb_remaining(&r), 0);
	}

	/* One pass learns the timestamps' spread and whether a key is null
	 * (record 1's is). */
	struct rb_stats st;
	cr_assert_eq(rb_check_records(w.buf, w.len, &scratch, MAX_OUT, &st, err,
				      sizeof(err)),
		     0, "%s", err);
	int64_t lo = ts[0], hi = ts[0];
	for (int i = 1; i < 5; i++) {
		lo = ts[i] < lo ? ts[i] : lo;
		hi = ts[i] > hi ? ts[i] : hi;
	}
	cr_assert_eq(st.min_ts_delta, lo - 1000);
	cr_assert_eq(st.max_ts_delta, hi - 1000);
	cr_assert(st.null_key);

	/* Decompressed size over max_out. */
	if (*codec != KC_NONE)
		cr_assert_eq(rb_foreach_record(w.buf, w.len, &scratch, 20,
					       collect, &s, err, sizeof(err)),
			     KC_TOO_BIG);

	/* Patching offset and epoch leaves the CRC valid. */
	rb_set_base_offset(w.buf, 0x0102030405060708);
	rb_set_leader_epoch(w.buf, 77);
	cr_assert_eq(rb_check(w.buf, w.len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_read_header(w.buf, w.len, &h), 0);
	cr_assert_eq(h.BaseOffset, 0x0102030405060708);
	cr_assert_eq(h.PartitionLeaderEpoch, 77);

	/* CreateTime with the records' newest: MaxTimestamp and the CRC. */
	rb_set_create_time(w.buf, w.len, 999);
	cr_assert_eq(rb_check(w.buf, w.len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_read_header(w.buf, w.len, &h), 0);
	cr_assert_eq(h.MaxTimestamp, 999);
	cr_assert_not(h.Attributes & RB_ATTR_LOG_APPEND_TIME);

	/* LogAppendTime changes covered bytes and recomputes the CRC. */
	rb_set_log_append_time(w.buf, w.len, 1700000000123);
	cr_assert_eq(rb_check(w.buf, w.len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rb_read_header(w.buf, w.len, &h), 0);
	cr_assert(h.Attributes & RB_ATTR_LOG_APPEND_TIME);
	cr_assert_eq(h.Attributes & RB_ATTR_CODEC_MASK, *codec);
	cr_assert_eq(h.MaxTimestamp, 1700000000123);
	cr_assert_eq(h.BaseTimestamp, 1700000000123);
	cr_assert_eq(rb_foreach_record(w.buf, w.len, &scratch, MAX_OUT, NULL,
				       NULL, err, sizeof(err)),
		     0, "%s", err);

	/* Every truncation fails cleanly; so does every flipped CRC'd bit. */
	for (size_t k = 0; k < w.len; k++) {
		cr_assert_eq(rb_check(w.buf, k, err, sizeof(err)), -1);
		cr_assert_eq(rb_split(w.buf, k, NULL, NULL, err, sizeof(err)),
			     k == 0 ? 0 : -1);
	}
	for (size_t i = RB_ATTR_OFFSET; i < w.len; i++) {
		w.buf[i] ^= 0x10;
		cr_assert_lt(rb_check(w.buf, w.len, err, sizeof(err)), 0,
			     "byte %zu", i);
		w.buf[i] ^= 0x10;
	}

	/* Corrupt payloads with a valid CRC reach the codec: no crash. */
	for (size_t i = RB_HEADER_SIZE; i < w.len; i++) {
		uint8_t save = w.buf[i];

		w.buf[i] ^= 0x5a;
		fix_crc(w.buf, w.len);
		rb_foreach_record(w.buf, w.len, &scratch, MAX_OUT, NULL, NULL,
				  err, sizeof(err));
		w.buf[i] = save;
	}
	kb_writer_free(&w);
	kb_writer_free(&scratch);
}

struct split_seen {
	int n;
	size_t len[8];
};

static int on_batch(void *arg, const uint8_t *p, size_t n)
{
	struct split_seen *s = arg;
	char err[128] = "";

	cr_assert_eq(rb_check(p, n, err, sizeof(err)), 0, "%s", err);
	cr_assert_lt(s->n, 8);
	s->len[s->n++] = n;
	return 0;
}

static int stop_at_second(void *arg, const uint8_t *p, size_t n)
{
	(void)p;
	(void)n;
	return ++*(int *)arg == 2;
}

Test(record_batch, split)
{
	struct kb_writer w;
	struct rb_new_record recs[5];
	struct split_seen s = {0};
	size_t ends[3];
	char err[128] = "";
	int calls = 0;

	kb_writer_init(&w);
	build(&w, KC_NONE, recs);
	ends[0] = w.len;
	build(&w, KC_ZSTD, recs);
	ends[1] = w.len;
	build(&w, KC_SNAPPY, recs);
	ends[2] = w.len;
	cr_assert_eq(rb_split(w.buf, w.len, on_batch, &s, err, sizeof(err)), 3,
		     "%s", err);
	cr_assert_eq(s.n, 3);
	cr_assert_eq(s.len[0], ends[0]);
	cr_assert_eq(s.len[1], ends[1] - ends[0]);
	cr_assert_eq(s.len[2], ends[2] - ends[1]);
	for (size_t k = 0; k < w.len; k++) {
		int want = k == 0	  ? 0
			   : k == ends[0] ? 1
			   : k == ends[1] ? 2
					  : -1;

		cr_assert_eq(rb_split(w.buf, k, NULL, NULL, err, sizeof(err)),
			     want, "prefix %zu", k);
	}
	cr_assert_eq(rb_split(w.buf, w.len, stop_at_second, &calls, err,
			      sizeof(err)),
		     -1);
	cr_assert_eq(calls, 2);
	/* Another magic is refused (v1 message set: magic at offset 16). */
	w.buf[ends[0] + 16] = 1;
	cr_assert_eq(rb_split(w.buf, w.len, NULL, NULL, err, sizeof(err)), -1);
	/* A BatchLength below the header size. */
	w.buf[ends[0] + 16] = 2;
	memset(w.buf + 8, 0, 4);
	w.buf[11] = 48;
	cr_assert_eq(rb_split(w.buf, w.len, NULL, NULL, err, sizeof(err)), -1);
	kb_writer_free(&w);
}

Test(record_batch, build_errors_and_empty)
{
	struct kb_writer w, scratch;
	struct rb_header h;
	char err[128] = "";
	struct kstr hk[] = {KSTR_NULL}, hv[] = {KSTR_LIT("x")};
	struct rb_new_record bad[] = {
		{1, KSTR_LIT("k"), KSTR_LIT("v"), 1, hk, hv},
	};

	kb_writer_init(&w);
	kb_writer_init(&scratch);
	kb_write_raw(&w, "keep", 4);
	/* A null header key, an unknown codec, a negative count: nothing
	 * is left behind in the writer. */
	cr_assert_eq(rb_build(&w, 0, 0, -1, -1, -1, bad, 1, err, sizeof(err)),
		     -1);
	cr_assert_eq(w.len, 4);
	cr_assert_eq(rb_build(&w, 0, 5, -1, -1, -1, NULL, 0, err, sizeof(err)),
		     -1);
	cr_assert_eq(rb_build(&w, 0, 0, -1, -1, -1, NULL, -1, err, sizeof(err)),
		     -1);
	cr_assert_eq(w.len, 4);
	/* An empty batch: timestamps -1, LastOffsetDelta -1. */
	cr_assert_eq(
		rb_build(&w, 5, KC_LZ4, -1, -1, -1, NULL, 0, err, sizeof(err)),
		0, "%s", err);
	/* Kafka refuses it from a client (it claims no offset); compaction
	 * leaves such batches and they read as no records. */
	cr_assert_eq(rb_check(w.buf + 4, w.len - 4, err, sizeof(err)), -1);
	cr_assert_str_eq(err, "RecordCount 0");
	cr_assert_eq(rb_read_header(w.buf + 4, w.len - 4, &h), 0);
	cr_assert_eq(h.RecordCount, 0);
	cr_assert_eq(h.LastOffsetDelta, -1);
	cr_assert_eq(h.BaseTimestamp, -1);
	cr_assert_eq(rb_foreach_record(w.buf + 4, w.len - 4, &scratch, MAX_OUT,
				       NULL, NULL, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(rb_read_header(w.buf, 60, &h), -1);
	kb_writer_free(&w);
	kb_writer_free(&scratch);
}

/* rb_recompress: every codec to every other, records and producer fields
 * kept, the result a valid batch; a corrupt input leaves out as it was. */
Test(record_batch, recompress)
{
	struct kb_writer in, out, scratch;
	char err[128] = "";
	struct kstr hk[] = {KSTR_LIT("h")}, hv[] = {KSTR_LIT("x")};
	struct rb_new_record recs[] = {
		{1700000000000, KSTR_LIT("k"), KSTR_LIT("v1"), 1, hk, hv},
		{1700000000005, KSTR_NULL, KSTR_LIT("v2"), 0, NULL, NULL},
	};

	kb_writer_init(&scratch);
	for (int from = KC_NONE; from <= KC_ZSTD; from++) {
		for (int to = KC_NONE; to <= KC_ZSTD; to++) {
			struct rb_header a, b;
			struct seen s = {0};

			kb_writer_init(&in);
			kb_writer_init(&out);
			cr_assert_eq(rb_build(&in, 0,
					      (int16_t)(from |
							RB_ATTR_TRANSACTIONAL),
					      7, 2, 40, recs, 2, err,
					      sizeof(err)),
				     0, "%s", err);
			kb_write_raw(&out, "pre", 3);
			cr_assert_eq(rb_recompress(in.buf, in.len, to,
						   KC_LEVEL_DEFAULT, &scratch,
						   MAX_OUT, NULL, &out, err,
						   sizeof(err)),
				     0, "%d->%d: %s", from, to, err);
			cr_assert_eq(rb_check(out.buf + 3, out.len - 3, err,
					      sizeof(err)),
				     0, "%d->%d: %s", from, to, err);
			rb_read_header(in.buf, in.len, &a);
			rb_read_header(out.buf + 3, out.len - 3, &b);
			cr_assert_eq(b.Attributes,
				     (int16_t)(to | RB_ATTR_TRANSACTIONAL));
			cr_assert_eq(b.ProducerId, 7);
			cr_assert_eq(b.ProducerEpoch, 2);
			cr_assert_eq(b.BaseSequence, 40);
			cr_assert_eq(b.MaxTimestamp, a.MaxTimestamp);
			cr_assert_eq(rb_foreach_record(out.buf + 3, out.len - 3,
						       &scratch, MAX_OUT,
						       collect, &s, err,
						       sizeof(err)),
				     0, "%s", err);
			cr_assert_eq(s.n, 2);
			cr_assert_str_eq(s.key[0], "k");
			cr_assert_str_eq(s.value[1], "v2");
			cr_assert_eq(s.rec[1].TimestampDelta, 5);
			cr_assert_eq(s.rec[0].HeaderCount, 1);
			kb_writer_free(&in);
			kb_writer_free(&out);
		}
	}
	/* Records that do not parse: refused, nothing appended. */
	kb_writer_init(&in);
	kb_writer_init(&out);
	cr_assert_eq(rb_build(&in, 0, KC_NONE, -1, -1, -1, recs, 2, err,
			      sizeof(err)),
		     0);
	in.buf[RB_HEADER_SIZE] = 0x7f;
	cr_assert_eq(rb_recompress(in.buf, in.len, KC_ZSTD, KC_LEVEL_DEFAULT,
				   &scratch, MAX_OUT, NULL, &out, err,
				   sizeof(err)),
		     -1);
	cr_assert_eq(out.len, 0);
	kb_writer_free(&in);
	kb_writer_free(&out);
	kb_writer_free(&scratch);
}
