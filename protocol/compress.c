/*
 * compress: gzip (zlib), snappy (raw and xerial framing), LZ4 frame and zstd
 * behind one pair of calls.
 *
 * Decompression never trusts sizes announced by the input: output goes into
 * the caller's writer through a window that never extends past max_out, and
 * once max_out bytes are out a one-byte probe outside the writer tells
 * whether the codec still had something to say (then the input is refused).
 * On any error the writer is rolled back to the length it had on entry.
 */
#include "compress.h"

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

/* Record batches carry int32 sizes; larger runs are not ours to handle. */
#define KC_MAX_IN ((size_t)INT32_MAX)

static const uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
#define XERIAL_HEADER_SIZE 16 /* magic, version, compat */

static const uint8_t empty_input[1];

__attribute__((format(printf, 3, 4))) static int
kc_err(char *err, size_t errlen, const char *fmt, ...)
{
	if (err != NULL && errlen > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

const char *kc_name(int codec)
{
	switch (codec) {
	case KC_NONE:
		return "none";
	case KC_GZIP:
		return "gzip";
	case KC_SNAPPY:
		return "snappy";
	case KC_LZ4:
		return "lz4";
	case KC_ZSTD:
		return "zstd";
	default:
		return NULL;
	}
}

/*
 * The bounded output of one decompression.  start is the writer's length on
 * entry (what an error rolls back to); probing is set while the window handed
 * out is the probe byte rather than the writer.
 */
struct sink {
	struct kb_writer *w;
	size_t start;
	size_t max_out;
	size_t step;
	uint8_t probe;
	bool probing;
	bool over; /* more than max_out would come out */
};

static void sink_init(struct sink *s, struct kb_writer *w, size_t max_out,
		      size_t first_step)
{
	s->w = w;
	s->start = w->len;
	s->max_out = max_out;
	s->step = first_step > 0 ? first_step : 1;
	s->probe = 0;
	s->probing = false;
	s->over = false;
}

static size_t sink_produced(const struct sink *s)
{
	return s->w->len - s->start;
}

/*
 * The next window to decompress into: free room in the writer, grown by
 * doubling but never past max_out; the probe byte once max_out is reached.
 * Returns -1 when memory runs out.
 */
static int sink_window(struct sink *s, uint8_t **p, size_t *avail)
{
	size_t produced = sink_produced(s);
	size_t budget = s->max_out - produced;
	size_t room;

	if (budget == 0) {
		s->probing = true;
		*p = &s->probe;
		*avail = 1;
		return 0;
	}
	s->probing = false;
	if (s->w->failed)
		return -1;
	if (s->w->cap == s->w->len) {
		size_t want = produced > s->step ? produced : s->step;

		if (want > budget)
			want = budget;
		if (!kb_writer_reserve(s->w, want))
			return -1;
	}
	room = s->w->cap - s->w->len;
	*p = s->w->buf + s->w->len;
	*avail = room < budget ? room : budget;
	return 0;
}

/* Accounts for n bytes written to the last window; -1 if they hit the probe. */
static int sink_commit(struct sink *s, size_t n)
{
	if (s->probing) {
		s->over = n > 0;
		return n > 0 ? -1 : 0;
	}
	s->w->len += n;
	return 0;
}

static void sink_rollback(struct sink *s)
{
	s->w->len = s->start;
}

/* A first guess at the output size: a few times the input. */
static size_t first_step(size_t n)
{
	size_t g = n <= (SIZE_MAX / 4) ? n * 4 : SIZE_MAX;

	if (g < 1024)
		g = 1024;
	if (g > ((size_t)1 << 20))
		g = (size_t)1 << 20;
	return g;
}

/* Makes room for bound bytes at the end of out and returns where they go. */
static uint8_t *reserve_tail(struct kb_writer *out, size_t bound)
{
	if (out->failed || !kb_writer_reserve(out, bound))
		return NULL;
	return out->buf + out->len;
}

/* ---- gzip ---- */

static int gzip_compress(const uint8_t *in, size_t n, int level,
			 struct kb_writer *out, char *err, size_t errlen)
{
	z_stream zs;
	uLong bound;
	uint8_t *dst;
	int rc;

	memset(&zs, 0, sizeof(zs));
	/* 15 + 16: the largest window with a gzip header and trailer. */
	if (deflateInit2(&zs,
			 level == KC_LEVEL_DEFAULT ? Z_DEFAULT_COMPRESSION
						   : level,
			 Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return kc_err(err, errlen, "gzip: deflateInit2 failed");
	bound = deflateBound(&zs, (uLong)n);
	if (bound > UINT_MAX || (dst = reserve_tail(out, bound)) == NULL) {
		deflateEnd(&zs);
		return kc_err(err, errlen, "gzip: out of memory");
	}
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	zs.next_out = dst;
	zs.avail_out = (uInt)bound;
	rc = deflate(&zs, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&zs);
		return kc_err(err, errlen, "gzip: deflate failed (%d)", rc);
	}
	out->len += bound - zs.avail_out;
	deflateEnd(&zs);
	return 0;
}

static int gzip_decompress(const uint8_t *in, size_t n, struct sink *s,
			   char *err, size_t errlen)
{
	z_stream zs;
	int rc;

	memset(&zs, 0, sizeof(zs));
	/* 15 + 32: gzip (or zlib) header detected automatically. */
	if (inflateInit2(&zs, 15 + 32) != Z_OK)
		return kc_err(err, errlen, "gzip: inflateInit2 failed");
	zs.next_in = (Bytef *)in;
	zs.avail_in = (uInt)n;
	for (;;) {
		uint8_t *p;
		size_t avail;
		uInt before;

		if (sink_window(s, &p, &avail) < 0) {
			rc = kc_err(err, errlen, "gzip: out of memory");
			break;
		}
		before = avail > UINT_MAX ? UINT_MAX : (uInt)avail;
		zs.next_out = p;
		zs.avail_out = before;
		rc = inflate(&zs, Z_NO_FLUSH);
		if (sink_commit(s, before - zs.avail_out) < 0) {
			rc = kc_err(err, errlen,
				    "gzip: output exceeds %zu bytes",
				    s->max_out);
			break;
		}
		if (rc == Z_STREAM_END) {
			if (zs.avail_in == 0) {
				rc = 0;
				break;
			}
			/* Concatenated members, as gzip(1) and Java read. */
			if (inflateReset(&zs) != Z_OK) {
				rc = kc_err(err, errlen, "gzip: reset failed");
				break;
			}
			continue;
		}
		if (rc == Z_OK)
			continue;
		if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
			rc = kc_err(err, errlen, "gzip: truncated input");
			break;
		}
		rc = kc_err(err, errlen, "gzip: corrupt input (%s)",
			    zs.msg != NULL ? zs.msg : "no progress");
		break;
	}
	inflateEnd(&zs);
	return rc;
}

/* ---- snappy ---- */

static int snappy_compress_raw(const uint8_t *in, size_t n,
			       struct kb_writer *out, char *err, size_t errlen)
{
	size_t bound = snappy_max_compressed_length(n);
	uint8_t *dst = reserve_tail(out, bound);

	if (dst == NULL)
		return kc_err(err, errlen, "snappy: out of memory");
	if (snappy_compress((const char *)in, n, (char *)dst, &bound) !=
	    SNAPPY_OK)
		return kc_err(err, errlen, "snappy: compress failed");
	out->len += bound;
	return 0;
}

/* One raw snappy block appended to the sink; its size is announced first. */
static int snappy_block(const uint8_t *in, size_t n, struct sink *s, char *err,
			size_t errlen)
{
	size_t ulen, got;
	uint8_t dummy;
	uint8_t *dst;

	if (snappy_uncompressed_length((const char *)in, n, &ulen) != SNAPPY_OK)
		return kc_err(err, errlen, "snappy: corrupt block header");
	if (ulen > s->max_out - sink_produced(s)) {
		s->over = true;
		return kc_err(err, errlen, "snappy: output exceeds %zu bytes",
			      s->max_out);
	}
	if (ulen == 0) {
		dst = &dummy;
	} else {
		dst = reserve_tail(s->w, ulen);
		if (dst == NULL)
			return kc_err(err, errlen, "snappy: out of memory");
	}
	got = ulen;
	if (snappy_uncompress((const char *)in, n, (char *)dst, &got) !=
		    SNAPPY_OK ||
	    got != ulen)
		return kc_err(err, errlen, "snappy: corrupt input");
	s->w->len += ulen;
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/*
 * snappy-java's SnappyOutputStream: magic, version, compat, then chunks of
 * [u32 big-endian length][raw snappy block].  A later magic (streams written
 * back to back) restarts the header, as SnappyInputStream allows; no valid
 * chunk length can begin with 0x82.
 */
static int snappy_xerial(const uint8_t *in, size_t n, struct sink *s, char *err,
			 size_t errlen)
{
	size_t pos = XERIAL_HEADER_SIZE;

	if (n < XERIAL_HEADER_SIZE)
		return kc_err(err, errlen, "snappy: truncated xerial header");
	while (pos < n) {
		uint32_t clen;

		if (n - pos >= XERIAL_HEADER_SIZE &&
		    memcmp(in + pos, xerial_magic, sizeof(xerial_magic)) == 0) {
			pos += XERIAL_HEADER_SIZE;
			continue;
		}
		if (n - pos < 4)
			return kc_err(err, errlen,
				      "snappy: truncated xerial chunk length");
		clen = be32(in + pos);
		pos += 4;
		if (clen > n - pos)
			return kc_err(
				err, errlen,
				"snappy: xerial chunk of %u bytes exceeds "
				"the %zu left",
				clen, n - pos);
		if (snappy_block(in + pos, clen, s, err, errlen) < 0)
			return -1;
		pos += clen;
	}
	return 0;
}

static int snappy_decompress(const uint8_t *in, size_t n, struct sink *s,
			     char *err, size_t errlen)
{
	if (n >= sizeof(xerial_magic) &&
	    memcmp(in, xerial_magic, sizeof(xerial_magic)) == 0)
		return snappy_xerial(in, n, s, err, errlen);
	return snappy_block(in, n, s, err, errlen);
}

/* ---- LZ4 frame ---- */

static int lz4_compress(const uint8_t *in, size_t n, int level,
			struct kb_writer *out, char *err, size_t errlen)
{
	LZ4F_preferences_t prefs;
	size_t bound, r;
	uint8_t *dst;

	/* What Java's Lz4BlockOutputStream writes: 64 KiB independent
	 * blocks, no block or content checksum, no content size. */
	memset(&prefs, 0, sizeof(prefs));
	prefs.frameInfo.blockSizeID = LZ4F_max64KB;
	prefs.frameInfo.blockMode = LZ4F_blockIndependent;
	prefs.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum;
	/* Java, too, takes the fast compressor at the default level 9 and
	 * LZ4HC at any other. */
	prefs.compressionLevel =
		level == KC_LEVEL_DEFAULT || level == 9 ? 0 : level;
	bound = LZ4F_compressFrameBound(n, &prefs);
	dst = reserve_tail(out, bound);
	if (dst == NULL)
		return kc_err(err, errlen, "lz4: out of memory");
	r = LZ4F_compressFrame(dst, bound, in, n, &prefs);
	if (LZ4F_isError(r))
		return kc_err(err, errlen, "lz4: %s", LZ4F_getErrorName(r));
	out->len += r;
	return 0;
}

static int lz4_decompress(const uint8_t *in, size_t n, struct sink *s,
			  char *err, size_t errlen)
{
	LZ4F_dctx *ctx;
	size_t pos = 0;
	int rc;

	if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
		return kc_err(err, errlen, "lz4: out of memory");
	for (;;) {
		uint8_t *p;
		size_t dsz, ssz, r;

		if (sink_window(s, &p, &dsz) < 0) {
			rc = kc_err(err, errlen, "lz4: out of memory");
			break;
		}
		ssz = n - pos;
		r = LZ4F_decompress(ctx, p, &dsz, in + pos, &ssz, NULL);
		if (LZ4F_isError(r)) {
			rc = kc_err(err, errlen, "lz4: corrupt input (%s)",
				    LZ4F_getErrorName(r));
			break;
		}
		pos += ssz;
		if (sink_commit(s, dsz) < 0) {
			rc = kc_err(err, errlen,
				    "lz4: output exceeds %zu bytes",
				    s->max_out);
			break;
		}
		/* r == 0: a frame ended; more input is a following frame. */
		if (r == 0 && pos == n) {
			rc = 0;
			break;
		}
		if (ssz == 0 && dsz == 0) {
			rc = kc_err(err, errlen, "lz4: truncated input");
			break;
		}
	}
	LZ4F_freeDecompressionContext(ctx);
	return rc;
}

/* ---- zstd ---- */

static int zstd_compress(const uint8_t *in, size_t n, int level,
			 struct kb_writer *out, char *err, size_t errlen)
{
	size_t bound = ZSTD_compressBound(n), r;
	uint8_t *dst = reserve_tail(out, bound);

	if (dst == NULL)
		return kc_err(err, errlen, "zstd: out of memory");
	r = ZSTD_compress(dst, bound, in, n,
			  level == KC_LEVEL_DEFAULT ? ZSTD_CLEVEL_DEFAULT
						    : level);
	if (ZSTD_isError(r))
		return kc_err(err, errlen, "zstd: %s", ZSTD_getErrorName(r));
	out->len += r;
	return 0;
}

static int zstd_decompress(const uint8_t *in, size_t n, struct sink *s,
			   char *err, size_t errlen)
{
	ZSTD_DCtx *d;
	ZSTD_inBuffer ib = {in, n, 0};
	unsigned long long fcs = ZSTD_getFrameContentSize(in, n);
	int rc;

	/* A frame that announces more than max_out will produce it (zstd
	 * checks the announced size), so refuse it before decoding. */
	if (fcs != ZSTD_CONTENTSIZE_UNKNOWN && fcs != ZSTD_CONTENTSIZE_ERROR) {
		if (fcs > s->max_out) {
			s->over = true;
			return kc_err(err, errlen,
				      "zstd: output exceeds %zu bytes",
				      s->max_out);
		}
		if (fcs > 0)
			s->step = (size_t)fcs;
	}
	d = ZSTD_createDCtx();
	if (d == NULL)
		return kc_err(err, errlen, "zstd: out of memory");
	for (;;) {
		uint8_t *p;
		size_t avail, before_in = ib.pos, r;
		ZSTD_outBuffer ob;

		if (sink_window(s, &p, &avail) < 0) {
			rc = kc_err(err, errlen, "zstd: out of memory");
			break;
		}
		ob.dst = p;
		ob.size = avail;
		ob.pos = 0;
		r = ZSTD_decompressStream(d, &ob, &ib);
		if (ZSTD_isError(r)) {
			rc = kc_err(err, errlen, "zstd: corrupt input (%s)",
				    ZSTD_getErrorName(r));
			break;
		}
		if (sink_commit(s, ob.pos) < 0) {
			rc = kc_err(err, errlen,
				    "zstd: output exceeds %zu bytes",
				    s->max_out);
			break;
		}
		/* r == 0: a frame is decoded and flushed. */
		if (r == 0 && ib.pos == n) {
			rc = 0;
			break;
		}
		if (ib.pos == before_in && ob.pos == 0) {
			rc = kc_err(err, errlen, "zstd: truncated input");
			break;
		}
	}
	ZSTD_freeDCtx(d);
	return rc;
}

/* ---- entry points ---- */

bool kc_level_valid(int codec, int64_t level)
{
	switch (codec) {
	case KC_GZIP:
		return level == -1 || (level >= 1 && level <= 9);
	case KC_LZ4:
		return level >= 1 && level <= 17;
	case KC_ZSTD:
		return level >= ZSTD_minCLevel() && level <= ZSTD_maxCLevel();
	default:
		return false;
	}
}

int kc_compress(int codec, int level, const void *in, size_t n,
		struct kb_writer *out, char *err, size_t errlen)
{
	const uint8_t *src = n > 0 ? in : empty_input;
	size_t start = out->len;
	int rc;

	if (n > KC_MAX_IN)
		return kc_err(err, errlen, "%zu bytes: too large to compress",
			      n);
	switch (codec) {
	case KC_NONE:
		kb_write_raw(out, src, n);
		rc = 0;
		break;
	case KC_GZIP:
		rc = gzip_compress(src, n, level, out, err, errlen);
		break;
	case KC_SNAPPY:
		rc = snappy_compress_raw(src, n, out, err, errlen);
		break;
	case KC_LZ4:
		rc = lz4_compress(src, n, level, out, err, errlen);
		break;
	case KC_ZSTD:
		rc = zstd_compress(src, n, level, out, err, errlen);
		break;
	default:
		return kc_err(err, errlen, "unknown compression codec %d",
			      codec);
	}
	if (rc == 0 && !kb_writer_ok(out))
		rc = kc_err(err, errlen, "%s: out of memory", kc_name(codec));
	if (rc < 0 && out->len > start)
		out->len = start;
	return rc;
}

int kc_decompress(int codec, const void *in, size_t n, struct kb_writer *out,
		  size_t max_out, char *err, size_t errlen)
{
	const uint8_t *src = n > 0 ? in : empty_input;
	struct sink s;
	int rc;

	if (n > KC_MAX_IN)
		return kc_err(err, errlen, "%zu bytes: too large to decompress",
			      n);
	sink_init(&s, out, max_out, first_step(n));
	switch (codec) {
	case KC_NONE:
		if (n > max_out) {
			kc_err(err, errlen, "output exceeds %zu bytes",
			       max_out);
			return KC_TOO_BIG;
		}
		kb_write_raw(out, src, n);
		rc = kb_writer_ok(out) ? 0
				       : kc_err(err, errlen, "out of memory");
		break;
	case KC_GZIP:
		rc = gzip_decompress(src, n, &s, err, errlen);
		break;
	case KC_SNAPPY:
		rc = snappy_decompress(src, n, &s, err, errlen);
		break;
	case KC_LZ4:
		rc = lz4_decompress(src, n, &s, err, errlen);
		break;
	case KC_ZSTD:
		rc = zstd_decompress(src, n, &s, err, errlen);
		break;
	default:
		return kc_err(err, errlen, "unknown compression codec %d",
			      codec);
	}
	if (rc < 0)
		sink_rollback(&s);
	return rc < 0 && s.over ? KC_TOO_BIG : rc;
}
