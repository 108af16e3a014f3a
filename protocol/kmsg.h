/*
 * kmsg: one description of each Kafka message drives both its decoding and
 * its encoding, for every version.
 *
 * A message is described as a tree of struct descriptions (struct kf_struct),
 * each a list of fields with the versions in which they exist, are nullable
 * or are tagged, plus the offset of the field in a plain C struct.  The C
 * representation of each field type is fixed:
 *
 *   bool, int8..int64, uint16, float64  native C type (bool, int8_t, ...)
 *   uuid                                struct kuuid
 *   string, bytes, records              struct kstr (len -1 = null)
 *   struct                              the nested C struct, embedded; a
 *                                       nullable one is null when all its
 *                                       strings, bytes and arrays are
 *                                       (len/count -1), and decodes and
 *                                       (default null) initializes so
 *   array ([]T)                         struct { int32_t count; T *items; }
 *                                       (count -1 = null; same layout as
 *                                       struct karr)
 *
 * Decoding borrows strings and bytes from the reader's buffer and allocates
 * arrays in an arena; fields absent from the version take their default.
 * Encoding writes exactly the fields of the version; tagged fields are
 * written only when they differ from their default.
 */
#ifndef SAMSA_KMSG_H
#define SAMSA_KMSG_H

#include <stdbool.h>
#include <stdint.h>

#include "arena.h"
#include "kbuf.h"

enum kf_type {
	KF_BOOL,
	KF_INT8,
	KF_INT16,
	KF_UINT16,
	KF_INT32,
	KF_INT64,
	KF_FLOAT64,
	KF_UUID,
	KF_STRING,
	KF_BYTES,
	KF_RECORDS,
	KF_STRUCT,
	KF_ARRAY,
};

#define KF_VMAX	 INT16_MAX /* "N+" in Kafka's notation */
#define KF_NEVER (-1)	   /* in a version bound: no version at all */

/* The generic view of every array field. */
struct karr {
	int32_t count;
	void *items;
};

struct kf_struct;

struct kf_field {
	const char *name;
	uint8_t type;	    /* enum kf_type */
	uint8_t elem;	    /* element type when type == KF_ARRAY */
	int16_t vmin, vmax; /* versions in which the field exists */
	int16_t nmin, nmax; /* versions in which it is nullable (KF_NEVER) */
	int16_t tmin, tmax; /* versions in which it is tagged (KF_NEVER) */
	int32_t tag;	    /* tag number when tagged */
	uint32_t offset;    /* offsetof() in the C struct */
	int64_t def;	    /* default: the value for numbers and bool; for
			     * string/bytes/records/arrays 1 means null,
			     * 0 empty */
	const struct kf_struct *sub; /* KF_STRUCT, or array of KF_STRUCT */
};

struct kf_struct {
	const char *name;
	uint32_t size; /* sizeof the C struct */
	uint16_t nfields;
	const struct kf_field *fields;
};

struct kf_message {
	const char *name; /* "ProduceRequest" */
	int16_t api_key;
	int16_t vmin, vmax; /* versions described */
	int16_t flex_min;   /* first flexible version (KF_VMAX: none) */
	const struct kf_struct *body;
};

static inline bool kf_in(int16_t v, int16_t lo, int16_t hi)
{
	return lo != KF_NEVER && v >= lo && v <= hi;
}

static inline bool kmsg_flexible(const struct kf_message *m, int16_t version)
{
	return version >= m->flex_min;
}

/*
 * Sets every field of the C struct described by s to its default (zero,
 * the declared default, null or empty), recursively for embedded structs.
 */
void kmsg_init(const struct kf_struct *s, void *out);

/*
 * Decodes a message body of version `version` from r into out (a C struct of
 * s->size bytes).  Arrays are allocated in a; strings borrow r's buffer.
 * Returns 0, or -1 when the bytes do not parse (r is then failed), a null
 * arrives where the version forbids it, or the arena is exhausted.
 */
int kmsg_decode(const struct kf_message *m, int16_t version,
		struct kb_reader *r, struct arena *a, void *out);

/*
 * Encodes in as version `version` of m, appending to w.  Null values in
 * versions that do not allow null are written as empty; fields the version
 * lacks are skipped.  Errors are the writer's sticky failure.
 */
void kmsg_encode(const struct kf_message *m, int16_t version,
		 struct kb_writer *w, const void *in);

/* The same two, for one struct (used by the engine and by tests). */
int kmsg_decode_struct(const struct kf_struct *s, int16_t version, bool flex,
		       struct kb_reader *r, struct arena *a, void *out);
void kmsg_encode_struct(const struct kf_struct *s, int16_t version, bool flex,
			struct kb_writer *w, const void *in);

/*
 * Request and response headers (hand-described: RequestHeader's ClientId is
 * never compact).  Request header v1 is used for non-flexible requests, v2
 * (with tagged fields) for flexible ones.  Response header v0 for
 * non-flexible responses and always for ApiVersions, v1 otherwise.
 */
struct RequestHeader {
	int16_t RequestApiKey;
	int16_t RequestApiVersion;
	int32_t CorrelationId;
	struct kstr ClientId;
};

/*
 * Reads the fixed part of the request header (key, version, correlation id,
 * client id).  The caller then calls kmsg_read_header_tags() when the request
 * is flexible.  Return 0 or -1.
 */
int kmsg_read_request_header(struct kb_reader *r, struct RequestHeader *h);
int kmsg_read_header_tags(struct kb_reader *r);
/* Writes a response header: correlation id, then tags when flexible. */
void kmsg_write_response_header(struct kb_writer *w, int32_t correlation_id,
				bool flexible);

#endif
