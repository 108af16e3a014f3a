/*
 * compress: the four record batch codecs, in both directions.
 *
 * Codec numbers are the batch attribute bits 0-2.  Snappy is written raw (as
 * librdkafka does) and read both raw and in xerial snappy-java framing (as
 * the Java client writes it).  LZ4 is the LZ4 frame format.
 */
#ifndef SAMSA_COMPRESS_H
#define SAMSA_COMPRESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kbuf.h"

enum kc_codec {
	KC_NONE = 0,
	KC_GZIP = 1,
	KC_SNAPPY = 2,
	KC_LZ4 = 3,
	KC_ZSTD = 4,
};

/* "none", "gzip", ... ; NULL for an unknown number. */
const char *kc_name(int codec);

/* Whether Kafka accepts level for codec's compression.<codec>.level. */
bool kc_level_valid(int codec, int64_t level);

/* A compression level meaning "the codec's default". */
#define KC_LEVEL_DEFAULT INT_MIN

/*
 * Appends the compressed form of in[0..n) to out.  level is as Kafka's
 * compression.<codec>.level configs name it (gzip 1-9 or -1, lz4 1-17 with
 * 9 the fast compressor, zstd as zstd's levels; snappy has none), or
 * KC_LEVEL_DEFAULT.  Returns 0, or -1 with a message in err (errlen bytes)
 * for an unknown codec or a codec failure.
 */
int kc_compress(int codec, int level, const void *in, size_t n,
		struct kb_writer *out, char *err, size_t errlen);

/* kc_decompress's answer for output over max_out. */
#define KC_TOO_BIG (-2)

/*
 * Appends the decompressed form of in[0..n) to out, refusing to produce more
 * than max_out bytes (a decompression bomb is an error, not an allocation).
 * Returns 0, or with a message in err: KC_TOO_BIG for output over max_out,
 * -1 for corrupt input or an unknown codec.
 */
int kc_decompress(int codec, const void *in, size_t n, struct kb_writer *out,
		  size_t max_out, char *err, size_t errlen);

#endif
