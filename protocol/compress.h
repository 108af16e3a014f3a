/*
 * compress: the four record batch codecs, in both directions.
 *
 * Codec numbers are the batch attribute bits 0-2.  Snappy is written raw (as
 * librdkafka does) and read both raw and in xerial snappy-java framing (as
 * the Java client writes it).  LZ4 is the LZ4 frame format.
 */
#ifndef SAMSA_COMPRESS_H
#define SAMSA_COMPRESS_H

#include <stddef.h>

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

/*
 * Appends the compressed form of in[0..n) to out.  Returns 0, or -1 with a
 * message in err (errlen bytes) for an unknown codec or a codec failure.
 */
int kc_compress(int codec, const void *in, size_t n, struct kb_writer *out,
		char *err, size_t errlen);

/*
 * Appends the decompressed form of in[0..n) to out, refusing to produce more
 * than max_out bytes (a decompression bomb is an error, not an allocation).
 * Returns 0, or -1 with a message in err for corrupt input, an unknown codec
 * or output over max_out.
 */
int kc_decompress(int codec, const void *in, size_t n, struct kb_writer *out,
		  size_t max_out, char *err, size_t errlen);

#endif
