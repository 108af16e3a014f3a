/*
 * libFuzzer target for the request decoder: the bytes are one request frame
 * without its size prefix, as the server hands it to the dispatcher.  The
 * header is read, the request described by its key is decoded into an arena
 * with the server's limit, and a request that decodes is encoded again.  A
 * re-encoded request must decode once more and encode to the same bytes:
 * encode(decode(x)) is a fixed point after one round.
 *
 * Nothing here may crash, read out of bounds, leak or allocate without
 * bound, whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/arena.h"
#include "protocol/kbuf.h"
#include "protocol/kmsg.h"
#include "protocol/messages.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Decodes body bytes as version v of m and encodes the result into w;
 * returns 0, or -1 when they do not decode. */
static int round_trip(const struct kf_message *m, int16_t v,
		      const uint8_t *body, size_t len, struct kb_writer *w)
{
	struct kb_reader r;
	struct arena a = {.limit = len * 16 + (1u << 20)};
	int rc = -1;

	kb_reader_init(&r, body, len);
	void *out = arena_alloc(&a, m->body->size);
	if (out && kmsg_decode(m, v, &r, &a, out) == 0) {
		kmsg_encode(m, v, w, out);
		rc = 0;
	}
	arena_free(&a);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kb_reader r;
	struct RequestHeader h;

	kb_reader_init(&r, data, size);
	if (kmsg_read_request_header(&r, &h) < 0)
		return 0;
	const struct kf_message *m = kmsg_request(h.RequestApiKey);
	if (!m || h.RequestApiVersion < m->vmin ||
	    h.RequestApiVersion > m->vmax)
		return 0;
	if (kmsg_flexible(m, h.RequestApiVersion) &&
	    kmsg_read_header_tags(&r) < 0)
		return 0;

	const uint8_t *body = data + r.pos;
	size_t len = size - r.pos;
	struct kb_writer w1 = {0}, w2 = {0};

	if (round_trip(m, h.RequestApiVersion, body, len, &w1) == 0 &&
	    kb_writer_ok(&w1)) {
		/* What we encode, we must read back, to the same bytes. */
		if (round_trip(m, h.RequestApiVersion, w1.buf, w1.len, &w2) < 0)
			abort();
		if (kb_writer_ok(&w2) &&
		    (w1.len != w2.len ||
		     (w1.len > 0 && memcmp(w1.buf, w2.buf, w1.len) != 0)))
			abort();
	}
	kb_writer_free(&w1);
	kb_writer_free(&w2);
	return 0;
}
