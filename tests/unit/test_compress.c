/*
 * compress: round trips for every codec, the framings Kafka clients write
 * (xerial snappy, concatenated gzip members and frames), and hostile input:
 * truncations, corruption and output over max_out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <zstd.h>

#include "protocol/compress.h"
#include "protocol/kbuf.h"
#include "tests/support/leak_check.h"

TestSuite(compress, .fini = leak_check);

#define MiB ((size_t)1 << 20)

static uint64_t rng_state = 0x2545F4914F6CDD1Du;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

/* Text-like bytes: compressible, but not trivially. */
static uint8_t *make_text(size_t n)
{
	static const char *const words[] = {
		"kafka ",    "record ", "batch ",     "offset ", "samsa ",
		"postgres ", "topic ",	"partition ", "\n",	 "{\"k\":42} ",
	};
	uint8_t *p = malloc(n > 0 ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n;) {
		const char *w = words[rng() % 10];

		for (; *w != '\0' && i < n; w++)
			p[i++] = (uint8_t)*w;
	}
	return p;
}

static uint8_t *make_random(size_t n)
{
	uint8_t *p = malloc(n > 0 ? n : 1);

	cr_assert_not_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng();
	return p;
}

static void compress_ok(int codec, const void *in, size_t n,
			struct kb_writer *out)
{
	char err[128] = "";

	cr_assert_eq(kc_compress(codec, KC_LEVEL_DEFAULT, in, n, out, err,
				 sizeof(err)),
		     0, "%s: %s", kc_name(codec), err);
	cr_assert(kb_writer_ok(out));
}

/* Decompresses with max_out == n and checks the bytes, then with n - 1. */
static void roundtrip(int codec, const uint8_t *in, size_t n)
{
	struct kb_writer c, d;
	char err[128] = "";

	kb_writer_init(&c);
	kb_writer_init(&d);
	compress_ok(codec, in, n, &c);
	/* Appends after what the writer already holds. */
	kb_write_raw(&d, "pre", 3);
	cr_assert_eq(
		kc_decompress(codec, c.buf, c.len, &d, n, err, sizeof(err)), 0,
		"%s n=%zu: %s", kc_name(codec), n, err);
	cr_assert_eq(d.len, 3 + n, "%s: %zu bytes out, want %zu",
		     kc_name(codec), d.len - 3, n);
	cr_assert(memcmp(d.buf, "pre", 3) == 0);
	cr_assert(n == 0 || memcmp(d.buf + 3, in, n) == 0);
	if (n > 0) {
		err[0] = '\0';
		cr_assert_eq(kc_decompress(codec, c.buf, c.len, &d, n - 1, err,
					   sizeof(err)),
			     KC_TOO_BIG, "%s: max_out not enforced",
			     kc_name(codec));
		cr_assert_neq(err[0], '\0');
		cr_assert_eq(d.len, 3 + n, "output not rolled back");
	}
	kb_writer_free(&c);
	kb_writer_free(&d);
}

ParameterizedTestParameters(compress, roundtrip_sizes)
{
	static int codecs[] = {KC_NONE, KC_GZIP, KC_SNAPPY, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

ParameterizedTest(int *codec, compress, roundtrip_sizes)
{
	static const size_t sizes[] = {0, 1, 5, 100, 65535, 65536, 65537};
	uint8_t *text = make_text(MiB), *noise = make_random(MiB);

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		roundtrip(*codec, text, sizes[i]);
		roundtrip(*codec, noise, sizes[i]);
	}
	roundtrip(*codec, (const uint8_t *)"hello, kafka", 12);
	roundtrip(*codec, text, MiB);
	roundtrip(*codec, noise, MiB);
	free(text);
	free(noise);
}

ParameterizedTestParameters(compress, truncated)
{
	static int codecs[] = {KC_GZIP, KC_SNAPPY, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

/* Every strict prefix of a compressed stream is an error. */
ParameterizedTest(int *codec, compress, truncated)
{
	uint8_t *text = make_text(5000);
	struct kb_writer c, d;
	char err[128];

	kb_writer_init(&c);
	kb_writer_init(&d);
	compress_ok(*codec, text, 5000, &c);
	for (size_t k = 0; k < c.len; k++) {
		err[0] = '\0';
		cr_assert_eq(kc_decompress(*codec, c.buf, k, &d, MiB, err,
					   sizeof(err)),
			     -1, "%s: prefix %zu of %zu accepted",
			     kc_name(*codec), k, c.len);
		cr_assert_neq(err[0], '\0');
		cr_assert_eq(d.len, 0);
	}
	kb_writer_free(&c);
	kb_writer_free(&d);
	free(text);
}

ParameterizedTestParameters(compress, corrupt)
{
	static int codecs[] = {KC_GZIP, KC_SNAPPY, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

/* Corruption: each byte flipped, and random garbage.  Any answer but a
 * crash is acceptable (codecs without checksums may decode garbage), as
 * long as max_out holds. */
ParameterizedTest(int *codec, compress, corrupt)
{
	uint8_t *text = make_text(3000);
	struct kb_writer c, d;
	char err[128];
	int failures = 0;

	kb_writer_init(&c);
	kb_writer_init(&d);
	compress_ok(*codec, text, 3000, &c);
	for (size_t i = 0; i < c.len; i++) {
		uint8_t save = c.buf[i];

		for (int bit = 0; bit < 8; bit += 3) {
			c.buf[i] = save ^ (uint8_t)(1u << bit);
			d.len = 0;
			if (kc_decompress(*codec, c.buf, c.len, &d, 4000, err,
					  sizeof(err)) < 0) {
				failures++;
				cr_assert_eq(d.len, 0);
			}
			cr_assert_leq(d.len, 4000);
		}
		c.buf[i] = save;
	}
	cr_assert_gt(failures, 0);
	for (int i = 0; i < 2000; i++) {
		size_t n = rng() % 200;
		uint8_t *g = make_random(n);

		d.len = 0;
		kc_decompress(*codec, g, n, &d, 4000, err, sizeof(err));
		cr_assert_leq(d.len, 4000);
		free(g);
	}
	kb_writer_free(&c);
	kb_writer_free(&d);
	free(text);
}

ParameterizedTestParameters(compress, bomb)
{
	static int codecs[] = {KC_GZIP, KC_SNAPPY, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

/* 64 MiB of zeros behind a small input: refused without allocating it. */
ParameterizedTest(int *codec, compress, bomb)
{
	size_t n = 64 * MiB;
	uint8_t *zeros = calloc(1, n);
	struct kb_writer c, d;
	char err[128] = "";

	cr_assert_not_null(zeros);
	kb_writer_init(&c);
	kb_writer_init(&d);
	compress_ok(*codec, zeros, n, &c);
	free(zeros);
	cr_assert_lt(c.len, 4 * MiB);
	cr_assert_eq(
		kc_decompress(*codec, c.buf, c.len, &d, MiB, err, sizeof(err)),
		KC_TOO_BIG);
	cr_assert_eq(d.len, 0);
	cr_assert_leq(d.cap, 2 * MiB + 4096, "allocated %zu bytes", d.cap);
	cr_log_info("%s bomb: %s", kc_name(*codec), err);
	/* Exactly at the limit it is accepted. */
	cr_assert_eq(
		kc_decompress(*codec, c.buf, c.len, &d, n, err, sizeof(err)), 0,
		"%s", err);
	cr_assert_eq(d.len, n);
	kb_writer_free(&c);
	kb_writer_free(&d);
}

/* snappy-java's SnappyOutputStream framing, built by hand. */
static void xerial_header(struct kb_writer *w)
{
	kb_write_raw(w, "\x82SNAPPY\0", 8);
	kb_write_i32(w, 1); /* version */
	kb_write_i32(w, 1); /* compatible version */
}

static void xerial_chunk(struct kb_writer *w, const uint8_t *in, size_t n)
{
	size_t cl = snappy_max_compressed_length(n);
	char *tmp = malloc(cl);

	cr_assert_not_null(tmp);
	cr_assert_eq(snappy_compress((const char *)in, n, tmp, &cl), SNAPPY_OK);
	kb_write_i32(w, (int32_t)cl);
	kb_write_raw(w, tmp, cl);
	free(tmp);
}

Test(compress, snappy_xerial)
{
	uint8_t *text = make_text(100000);
	size_t cuts[] = {0, 32768, 65536, 90000, 100000};
	size_t bounds[8], nb = 0;
	struct kb_writer x, d;
	char err[128] = "";

	kb_writer_init(&x);
	kb_writer_init(&d);
	xerial_header(&x);
	bounds[nb++] = x.len;
	for (int i = 0; i < 4; i++) {
		xerial_chunk(&x, text + cuts[i], cuts[i + 1] - cuts[i]);
		bounds[nb++] = x.len;
	}
	cr_assert_eq(kc_decompress(KC_SNAPPY, x.buf, x.len, &d, MiB, err,
				   sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(d.len, 100000);
	cr_assert(memcmp(d.buf, text, 100000) == 0);

	/* max_out counts across chunks. */
	d.len = 0;
	cr_assert_eq(kc_decompress(KC_SNAPPY, x.buf, x.len, &d, 99999, err,
				   sizeof(err)),
		     KC_TOO_BIG);

	/* A prefix is valid only where a chunk ends (then it decodes the
	 * chunks so far); anywhere else it is an error. */
	for (size_t k = 0; k < x.len; k++) {
		bool boundary = false;
		size_t chunks = 0;

		for (size_t b = 0; b < nb; b++)
			if (bounds[b] == k) {
				boundary = true;
				chunks = b;
			}
		d.len = 0;
		int rc = kc_decompress(KC_SNAPPY, x.buf, k, &d, MiB, err,
				       sizeof(err));
		if (boundary) {
			cr_assert_eq(rc, 0, "prefix %zu: %s", k, err);
			cr_assert_eq(d.len, cuts[chunks]);
		} else {
			cr_assert_eq(rc, -1, "prefix %zu accepted", k);
			cr_assert_eq(d.len, 0);
		}
	}

	/* Two streams back to back, as SnappyInputStream reads them. */
	uint8_t *copy = malloc(x.len);
	size_t one = x.len;

	cr_assert_not_null(copy);
	memcpy(copy, x.buf, one);
	kb_write_raw(&x, copy, one);
	free(copy);
	d.len = 0;
	cr_assert_eq(kc_decompress(KC_SNAPPY, x.buf, x.len, &d, MiB, err,
				   sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(d.len, 200000);
	cr_assert(memcmp(d.buf + 100000, text, 100000) == 0);

	/* A chunk length past the end, and a corrupt chunk. */
	x.len = 0;
	xerial_header(&x);
	kb_write_i32(&x, 1000);
	kb_write_raw(&x, "abc", 3);
	cr_assert_eq(kc_decompress(KC_SNAPPY, x.buf, x.len, &d, MiB, err,
				   sizeof(err)),
		     -1);
	x.len = 0;
	xerial_header(&x);
	kb_write_i32(&x, 4);
	kb_write_raw(&x, "\x7f\xff\xff\xff", 4);
	cr_assert_eq(kc_decompress(KC_SNAPPY, x.buf, x.len, &d, MiB, err,
				   sizeof(err)),
		     -1);
	kb_writer_free(&x);
	kb_writer_free(&d);
	free(text);
}

ParameterizedTestParameters(compress, concatenated)
{
	static int codecs[] = {KC_GZIP, KC_LZ4, KC_ZSTD};

	return cr_make_param_array(int, codecs,
				   sizeof(codecs) / sizeof(codecs[0]));
}

/* Concatenated gzip members, LZ4 frames and zstd frames decode in order. */
ParameterizedTest(int *codec, compress, concatenated)
{
	struct kb_writer c, d;
	char err[128] = "";

	kb_writer_init(&c);
	kb_writer_init(&d);
	compress_ok(*codec, "first,", 6, &c);
	compress_ok(*codec, "second", 6, &c);
	cr_assert_eq(
		kc_decompress(*codec, c.buf, c.len, &d, 100, err, sizeof(err)),
		0, "%s: %s", kc_name(*codec), err);
	cr_assert_eq(d.len, 12);
	cr_assert(memcmp(d.buf, "first,second", 12) == 0);
	/* Trailing garbage after the last member is refused. */
	kb_write_raw(&c, "\0\0\0\0junk", 8);
	d.len = 0;
	cr_assert_eq(
		kc_decompress(*codec, c.buf, c.len, &d, 100, err, sizeof(err)),
		-1);
	kb_writer_free(&c);
	kb_writer_free(&d);
}

/* What we write is what Kafka's clients expect to read. */
Test(compress, wire_formats)
{
	struct kb_writer c;

	kb_writer_init(&c);
	compress_ok(KC_GZIP, "x", 1, &c);
	cr_assert(c.len > 2 && c.buf[0] == 0x1f && c.buf[1] == 0x8b);
	c.len = 0;
	/* LZ4 frame magic, FLG version 01 with independent blocks, BD 64K. */
	compress_ok(KC_LZ4, "x", 1, &c);
	cr_assert(c.len > 6);
	cr_assert(memcmp(c.buf, "\x04\x22\x4d\x18", 4) == 0);
	cr_assert_eq(c.buf[4], 0x60);
	cr_assert_eq(c.buf[5], 0x40);
	c.len = 0;
	compress_ok(KC_ZSTD, "x", 1, &c);
	cr_assert(memcmp(c.buf, "\x28\xb5\x2f\xfd", 4) == 0);
	c.len = 0;
	/* Raw snappy: a varint length, no framing. */
	compress_ok(KC_SNAPPY, "x", 1, &c);
	cr_assert_eq(c.buf[0], 1);
	kb_writer_free(&c);
}

/* Streams written by other writers: zstd without a content size, LZ4 with
 * content size and checksums, 4 MiB dependent blocks. */
Test(compress, foreign_writers)
{
	uint8_t *text = make_text(300000);
	struct kb_writer d;
	char err[128] = "";
	size_t cap = ZSTD_compressBound(300000) + 64;
	uint8_t *buf = malloc(cap > 400000 ? cap : 400000);
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	ZSTD_inBuffer ib = {text, 300000, 0};
	ZSTD_outBuffer ob = {buf, cap, 0};
	LZ4F_preferences_t prefs;
	size_t r;

	kb_writer_init(&d);
	cr_assert_not_null(cc);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
	r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_end);
	cr_assert_eq(r, 0);
	ZSTD_freeCCtx(cc);
	cr_assert_eq(ZSTD_getFrameContentSize(buf, ob.pos),
		     ZSTD_CONTENTSIZE_UNKNOWN);
	cr_assert_eq(kc_decompress(KC_ZSTD, buf, ob.pos, &d, 300000, err,
				   sizeof(err)),
		     0, "%s", err);
	cr_assert(d.len == 300000 && memcmp(d.buf, text, 300000) == 0);
	d.len = 0;
	cr_assert_eq(kc_decompress(KC_ZSTD, buf, ob.pos, &d, 299999, err,
				   sizeof(err)),
		     KC_TOO_BIG);

	memset(&prefs, 0, sizeof(prefs));
	prefs.frameInfo.blockSizeID = LZ4F_max4MB;
	prefs.frameInfo.blockMode = LZ4F_blockLinked;
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
	prefs.frameInfo.contentSize = 300000;
	r = LZ4F_compressFrame(buf, LZ4F_compressFrameBound(300000, &prefs),
			       text, 300000, &prefs);
	cr_assert(!LZ4F_isError(r));
	d.len = 0;
	cr_assert_eq(
		kc_decompress(KC_LZ4, buf, r, &d, 300000, err, sizeof(err)), 0,
		"%s", err);
	cr_assert(d.len == 300000 && memcmp(d.buf, text, 300000) == 0);
	/* The content checksum catches a flipped literal. */
	buf[r / 2] ^= 0x01;
	d.len = 0;
	cr_assert_eq(
		kc_decompress(KC_LZ4, buf, r, &d, 300000, err, sizeof(err)),
		-1);
	kb_writer_free(&d);
	free(buf);
	free(text);
}

Test(compress, unknown_codec)
{
	struct kb_writer w;
	char err[128] = "";

	kb_writer_init(&w);
	cr_assert_eq(
		kc_compress(5, KC_LEVEL_DEFAULT, "x", 1, &w, err, sizeof(err)),
		-1);
	cr_assert_neq(err[0], '\0');
	cr_assert_eq(kc_decompress(7, "x", 1, &w, 10, err, sizeof(err)), -1);
	cr_assert_eq(kc_decompress(-1, "x", 1, &w, 10, err, sizeof(err)), -1);
	cr_assert_eq(w.len, 0);
	cr_assert_null(kc_name(5));
	cr_assert_null(kc_name(-1));
	cr_assert_str_eq(kc_name(KC_NONE), "none");
	cr_assert_str_eq(kc_name(KC_GZIP), "gzip");
	cr_assert_str_eq(kc_name(KC_SNAPPY), "snappy");
	cr_assert_str_eq(kc_name(KC_LZ4), "lz4");
	cr_assert_str_eq(kc_name(KC_ZSTD), "zstd");
	/* NULL err buffers are allowed. */
	cr_assert_eq(kc_decompress(KC_GZIP, "x", 1, &w, 10, NULL, 0), -1);
	kb_writer_free(&w);
}

/* Kafka's compression.<codec>.level: the ranges it accepts, and every
 * level in them compresses to what the codec decompresses. */
Test(compress, levels)
{
	static const struct {
		int codec, level;
	} ok[] = {{KC_GZIP, -1}, {KC_GZIP, 1},	{KC_GZIP, 9}, {KC_LZ4, 1},
		  {KC_LZ4, 9},	 {KC_LZ4, 12},	{KC_LZ4, 17}, {KC_ZSTD, -5},
		  {KC_ZSTD, 1},	 {KC_ZSTD, 19}, {KC_ZSTD, 22}};
	size_t n = 200000;
	uint8_t *text = make_text(n);
	struct kb_writer fast, high;
	char err[128] = "";

	cr_assert_not(kc_level_valid(KC_GZIP, 0));
	cr_assert_not(kc_level_valid(KC_GZIP, 10));
	cr_assert_not(kc_level_valid(KC_LZ4, 0));
	cr_assert_not(kc_level_valid(KC_LZ4, 18));
	cr_assert_not(kc_level_valid(KC_ZSTD, 23));
	cr_assert_not(kc_level_valid(KC_SNAPPY, 1));
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		struct kb_writer c, d;

		cr_assert(kc_level_valid(ok[i].codec, ok[i].level));
		kb_writer_init(&c);
		kb_writer_init(&d);
		cr_assert_eq(kc_compress(ok[i].codec, ok[i].level, text, n, &c,
					 err, sizeof(err)),
			     0, "%s %d: %s", kc_name(ok[i].codec), ok[i].level,
			     err);
		cr_assert_eq(kc_decompress(ok[i].codec, c.buf, c.len, &d, n,
					   err, sizeof(err)),
			     0, "%s %d: %s", kc_name(ok[i].codec), ok[i].level,
			     err);
		cr_assert(d.len == n && memcmp(d.buf, text, n) == 0);
		kb_writer_free(&c);
		kb_writer_free(&d);
	}
	/* lz4 at 9 is the fast compressor; 12 is LZ4HC, which packs text
	 * tighter. */
	kb_writer_init(&fast);
	kb_writer_init(&high);
	cr_assert_eq(kc_compress(KC_LZ4, 9, text, n, &fast, err, sizeof(err)),
		     0);
	cr_assert_eq(kc_compress(KC_LZ4, 12, text, n, &high, err, sizeof(err)),
		     0);
	cr_assert_lt(high.len, fast.len);
	kb_writer_free(&fast);
	kb_writer_free(&high);
	free(text);
}
