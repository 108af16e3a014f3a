/*
 * messages: the description-driven engine over every generated message.
 *
 * For every message and every version it describes, a struct is filled
 * from the descriptions with non-default values (and once more with nulls
 * wherever the version allows them), encoded, decoded, compared field by
 * field, re-encoded and compared byte for byte; then every truncated prefix
 * of the encoding must fail to decode, cleanly.  Golden fixtures written by
 * hand from the protocol guide pin the bytes of the common requests.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "protocol/arena.h"
#include "protocol/kbuf.h"
#include "protocol/kmsg.h"
#include "protocol/messages.h"
#include "tests/support/leak_check.h"

TestSuite(messages, .fini = leak_check);

/* Every generated message: requests and responses, then data structs. */
static const struct kf_message *const data_msgs[] = {
	&kmsg_ConsumerProtocolSubscription,
	&kmsg_ConsumerProtocolAssignment,
};

static size_t nmessages(void)
{
	return kmsg_napis * 2 + sizeof(data_msgs) / sizeof(data_msgs[0]);
}

static const struct kf_message *message_at(size_t i)
{
	if (i < kmsg_napis * 2)
		return i % 2 ? kmsg_apis[i / 2].response
			     : kmsg_apis[i / 2].request;
	return data_msgs[i - kmsg_napis * 2];
}

/* Hex (spaces ignored) into a malloc'd buffer; *n gets its length. */
static uint8_t *unhex(const char *s, size_t *n)
{
	uint8_t *out = malloc(strlen(s) / 2 + 1);
	size_t len = 0;
	int hi = -1;
	for (; *s; s++) {
		int v;
		if (*s >= '0' && *s <= '9')
			v = *s - '0';
		else if (*s >= 'a' && *s <= 'f')
			v = *s - 'a' + 10;
		else
			continue;
		if (hi < 0) {
			hi = v;
		} else {
			out[len++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	cr_assert_eq(hi, -1, "odd number of hex digits");
	*n = len;
	return out;
}

static void expect_hex(const struct kb_writer *w, const char *hex)
{
	size_t n;
	uint8_t *want = unhex(hex, &n);
	cr_assert(kb_writer_ok(w));
	if (w->len != n || memcmp(w->buf, want, n) != 0) {
		char got[4096] = "";
		for (size_t i = 0; i < w->len && i < 1000; i++)
			snprintf(got + 2 * i, 3, "%02x", w->buf[i]);
		free(want);
		cr_assert_fail("encoded %zu bytes, want %zu:\n%s\n%s", w->len,
			       n, got, hex);
	}
	free(want);
}

/* Filling structs from their descriptions */

struct filler {
	struct arena *a;
	int16_t version;
	bool nulls; /* null wherever the version allows it */
	unsigned seed;
};

static void fill_struct(struct filler *fl, const struct kf_struct *s,
			void *out);

static void fill_value(struct filler *fl, uint8_t type, uint8_t elem,
		       const struct kf_struct *sub, int64_t def, bool nullable,
		       const char *name, void *p)
{
	unsigned k = 1 + fl->seed++ % 5;
	switch (type) {
	case KF_BOOL:
		*(bool *)p = def == 0;
		break;
	case KF_INT8:
		*(int8_t *)p = (int8_t)(def ^ k);
		break;
	case KF_INT16:
		*(int16_t *)p = (int16_t)(def ^ k);
		break;
	case KF_UINT16:
		*(uint16_t *)p = (uint16_t)(def ^ k);
		break;
	case KF_INT32:
		*(int32_t *)p = (int32_t)(def ^ (k << 20 | k));
		break;
	case KF_INT64:
		*(int64_t *)p = def ^ ((int64_t)k << 40 | k);
		break;
	case KF_FLOAT64:
		*(double *)p = (double)def + 0.25 * k;
		break;
	case KF_UUID:
		for (int i = 0; i < 16; i++)
			((struct kuuid *)p)->b[i] = (uint8_t)(fl->seed + i + 1);
		break;
	case KF_STRING:
	case KF_BYTES:
	case KF_RECORDS: {
		struct kstr *s = p;
		if (nullable && fl->nulls) {
			*s = KSTR_NULL;
			break;
		}
		char *t = arena_printf(fl->a, "%s-%u", name, fl->seed);
		cr_assert_not_null(t);
		*s = kstr_c(t);
		break;
	}
	case KF_STRUCT:
		fill_struct(fl, sub, p);
		break;
	case KF_ARRAY: {
		struct karr *arr = p;
		if (nullable && fl->nulls) {
			arr->count = -1;
			arr->items = NULL;
			break;
		}
		size_t esz;
		switch (elem) {
		case KF_BOOL:
			esz = sizeof(bool);
			break;
		case KF_INT8:
			esz = 1;
			break;
		case KF_INT16:
		case KF_UINT16:
			esz = 2;
			break;
		case KF_INT32:
			esz = 4;
			break;
		case KF_INT64:
		case KF_FLOAT64:
			esz = 8;
			break;
		case KF_UUID:
			esz = sizeof(struct kuuid);
			break;
		case KF_STRING:
		case KF_BYTES:
		case KF_RECORDS:
			esz = sizeof(struct kstr);
			break;
		case KF_STRUCT:
			esz = sub->size;
			break;
		default:
			cr_assert_fail("%s: bad element type %d", name, elem);
			return;
		}
		arr->count = 2;
		arr->items = arena_alloc(fl->a, 2 * esz);
		cr_assert_not_null(arr->items);
		for (int i = 0; i < 2; i++) {
			void *e = (char *)arr->items + i * esz;
			if (elem == KF_STRUCT)
				kmsg_init(sub, e);
			fill_value(fl, elem, 0, sub, 0, false, name, e);
		}
		break;
	}
	default:
		cr_assert_fail("%s: bad type %d", name, type);
	}
}

static void fill_struct(struct filler *fl, const struct kf_struct *s, void *out)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		if (!kf_in(fl->version, f->vmin, f->vmax))
			continue;
		fill_value(fl, f->type, f->elem, f->sub, f->def,
			   kf_in(fl->version, f->nmin, f->nmax), f->name,
			   (char *)out + f->offset);
	}
}

/* Field-by-field comparison of two structs described by s. */
static void compare_struct(const char *path, const struct kf_struct *s,
			   const void *x, const void *y);

static void compare_value(const char *path, uint8_t type, uint8_t elem,
			  const struct kf_struct *sub, const void *x,
			  const void *y)
{
	switch (type) {
	case KF_BOOL:
		cr_assert_eq(*(const bool *)x, *(const bool *)y, "%s", path);
		break;
	case KF_INT8:
		cr_assert_eq(*(const int8_t *)x, *(const int8_t *)y, "%s",
			     path);
		break;
	case KF_INT16:
		cr_assert_eq(*(const int16_t *)x, *(const int16_t *)y, "%s",
			     path);
		break;
	case KF_UINT16:
		cr_assert_eq(*(const uint16_t *)x, *(const uint16_t *)y, "%s",
			     path);
		break;
	case KF_INT32:
		cr_assert_eq(*(const int32_t *)x, *(const int32_t *)y, "%s",
			     path);
		break;
	case KF_INT64:
		cr_assert_eq(*(const int64_t *)x, *(const int64_t *)y, "%s",
			     path);
		break;
	case KF_FLOAT64:
		cr_assert(*(const double *)x == *(const double *)y, "%s", path);
		break;
	case KF_UUID:
		cr_assert(memcmp(x, y, sizeof(struct kuuid)) == 0, "%s", path);
		break;
	case KF_STRING:
	case KF_BYTES:
	case KF_RECORDS: {
		const struct kstr *a = x, *b = y;
		cr_assert_eq(a->len, b->len, "%s: length %d vs %d", path,
			     a->len, b->len);
		if (a->len > 0)
			cr_assert(memcmp(a->ptr, b->ptr, (size_t)a->len) == 0,
				  "%s", path);
		if (a->len == 0)
			cr_assert_not_null(b->ptr, "%s: empty but NULL", path);
		break;
	}
	case KF_STRUCT:
		compare_struct(path, sub, x, y);
		break;
	case KF_ARRAY: {
		const struct karr *a = x, *b = y;
		cr_assert_eq(a->count, b->count, "%s: count %d vs %d", path,
			     a->count, b->count);
		size_t esz = 0;
		switch (elem) {
		case KF_BOOL:
		case KF_INT8:
			esz = 1;
			break;
		case KF_INT16:
		case KF_UINT16:
			esz = 2;
			break;
		case KF_INT32:
			esz = 4;
			break;
		case KF_INT64:
		case KF_FLOAT64:
			esz = 8;
			break;
		case KF_UUID:
		case KF_STRING:
		case KF_BYTES:
		case KF_RECORDS:
			esz = 16;
			break;
		case KF_STRUCT:
			esz = sub->size;
			break;
		}
		for (int32_t i = 0; i < a->count; i++)
			compare_value(path, elem, 0, sub,
				      (const char *)a->items + i * esz,
				      (const char *)b->items + i * esz);
		break;
	}
	}
}

static void compare_struct(const char *path, const struct kf_struct *s,
			   const void *x, const void *y)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		char sub[512];
		snprintf(sub, sizeof(sub), "%s.%s", path, f->name);
		compare_value(sub, f->type, f->elem, f->sub,
			      (const char *)x + f->offset,
			      (const char *)y + f->offset);
	}
}

/* Every prefix of buf, in an exact-size copy, must fail to decode. */
static void expect_prefixes_fail(const struct kf_message *m, int16_t version,
				 const uint8_t *buf, size_t len)
{
	void *out = malloc(m->body->size);
	for (size_t n = 0; n < len; n++) {
		uint8_t *copy = malloc(n ? n : 1);
		if (n)
			memcpy(copy, buf, n);
		struct arena a = {0};
		struct kb_reader r;
		kb_reader_init(&r, copy, n);
		int rc = kmsg_decode(m, version, &r, &a, out);
		arena_free(&a);
		free(copy);
		if (rc != -1 || kb_reader_ok(&r)) {
			free(out);
			cr_assert_fail("%s v%d: prefix %zu of %zu decoded",
				       m->name, version, n, len);
		}
	}
	free(out);
}

static void roundtrip(const struct kf_message *m, int16_t version, bool nulls)
{
	const struct kf_struct *s = m->body;
	struct arena a = {0};
	struct filler fl = {&a, version, nulls, 7};
	void *x = arena_alloc(&a, s->size);
	kmsg_init(s, x);
	fill_struct(&fl, s, x);

	struct kb_writer w1 = {0}, w2 = {0};
	kmsg_encode(m, version, &w1, x);
	cr_assert(kb_writer_ok(&w1), "%s v%d: encode failed", m->name, version);

	/* Poisoned, so a field the decoder forgets shows up. */
	void *y = arena_alloc(&a, s->size);
	memset(y, 0x5a, s->size);
	struct kb_reader r;
	kb_reader_init(&r, w1.buf, w1.len);
	cr_assert_eq(kmsg_decode(m, version, &r, &a, y), 0,
		     "%s v%d: decode failed", m->name, version);
	cr_assert_eq(kb_remaining(&r), 0, "%s v%d: %zu bytes left", m->name,
		     version, kb_remaining(&r));
	char path[128];
	snprintf(path, sizeof(path), "%s v%d", m->name, version);
	compare_struct(path, s, x, y);

	kmsg_encode(m, version, &w2, y);
	cr_assert(kb_writer_ok(&w2));
	cr_assert_eq(w1.len, w2.len, "%s v%d: re-encoded length differs",
		     m->name, version);
	cr_assert(w1.len == 0 || memcmp(w1.buf, w2.buf, w1.len) == 0,
		  "%s v%d: re-encoded bytes differ", m->name, version);

	expect_prefixes_fail(m, version, w1.buf, w1.len);
	kb_writer_free(&w1);
	kb_writer_free(&w2);
	arena_free(&a);
}

struct mv {
	size_t msg;
	int16_t version;
};

ParameterizedTestParameters(messages, every_version_roundtrips)
{
	static struct mv params[2048];
	size_t n = 0;
	for (size_t i = 0; i < nmessages(); i++) {
		const struct kf_message *m = message_at(i);
		for (int v = m->vmin; v <= m->vmax; v++) {
			if (n == sizeof(params) / sizeof(params[0]))
				abort();
			params[n++] = (struct mv){i, (int16_t)v};
		}
	}
	return cr_make_param_array(struct mv, params, n);
}

ParameterizedTest(struct mv *p, messages, every_version_roundtrips)
{
	const struct kf_message *m = message_at(p->msg);
	roundtrip(m, p->version, false);
	roundtrip(m, p->version, true);
}

/* The descriptions themselves: offsets inside the struct, sane ranges. */
static void check_struct(const struct kf_message *m, const struct kf_struct *s)
{
	cr_assert_gt(s->size, 0);
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		cr_assert_lt(f->offset, s->size, "%s.%s", s->name, f->name);
		cr_assert_leq(f->vmin, f->vmax, "%s.%s", s->name, f->name);
		cr_assert_geq(f->vmin, m->vmin, "%s.%s", s->name, f->name);
		if (f->tmin != KF_NEVER) {
			cr_assert_geq(f->tmin, m->flex_min,
				      "%s.%s tagged before flexible", s->name,
				      f->name);
			for (uint16_t j = 0; j < i; j++)
				cr_assert(s->fields[j].tmin == KF_NEVER ||
						  s->fields[j].tag != f->tag,
					  "%s: tag %d twice", s->name, f->tag);
		}
		bool structy = f->type == KF_STRUCT ||
			       (f->type == KF_ARRAY && f->elem == KF_STRUCT);
		cr_assert_eq(structy, f->sub != NULL, "%s.%s", s->name,
			     f->name);
		if (f->sub != NULL)
			check_struct(m, f->sub);
	}
}

Test(messages, descriptions_are_sane)
{
	cr_assert_eq(kmsg_napis, 42);
	for (size_t i = 0; i < nmessages(); i++) {
		const struct kf_message *m = message_at(i);
		cr_assert_leq(m->vmin, m->vmax, "%s", m->name);
		check_struct(m, m->body);
		if (i < kmsg_napis * 2) {
			cr_assert_eq(m->api_key, kmsg_apis[i / 2].api_key);
			cr_assert_eq(strstr(m->name, kmsg_apis[i / 2].name),
				     m->name);
		}
	}
	for (size_t i = 1; i < kmsg_napis; i++)
		cr_assert_lt(kmsg_apis[i - 1].api_key, kmsg_apis[i].api_key);
}

Test(messages, lookup)
{
	cr_assert_eq(kmsg_request(0), &kmsg_ProduceRequest);
	cr_assert_eq(kmsg_response(0), &kmsg_ProduceResponse);
	cr_assert_eq(kmsg_request(66), &kmsg_ListTransactionsRequest);
	cr_assert_eq(kmsg_response(18), &kmsg_ApiVersionsResponse);
	cr_assert_str_eq(kmsg_api_name(18), "ApiVersions");
	cr_assert_str_eq(kmsg_api_name(1), "Fetch");
	cr_assert_null(kmsg_request(4)); /* LeaderAndIsr: not served */
	cr_assert_null(kmsg_response(-1));
	cr_assert_null(kmsg_api_name(1000));
	cr_assert_null(kmsg_request(INT16_MAX));
}

Test(messages, version_ranges_cover_both_definitions)
{
	/* 3.9 keeps old versions, 4.3 adds new ones. */
	cr_assert_eq(kmsg_ProduceRequest.vmin, 0);
	cr_assert_eq(kmsg_ProduceRequest.vmax, 13);
	cr_assert_eq(kmsg_FetchRequest.vmin, 0);
	cr_assert_eq(kmsg_FetchRequest.vmax, 18);
	cr_assert_eq(kmsg_JoinGroupRequest.vmin, 0);
	cr_assert_eq(kmsg_MetadataResponse.vmax, 13);
	cr_assert_eq(kmsg_ApiVersionsRequest.flex_min, 3);
	cr_assert_eq(kmsg_SaslHandshakeRequest.flex_min, KF_VMAX);
	cr_assert_eq(kmsg_ConsumerProtocolSubscription.api_key, -1);
}

Test(messages, defaults)
{
	struct FetchRequest f;
	memset(&f, 0x77, sizeof(f));
	kmsg_init(&FetchRequest_struct, &f);
	cr_assert_eq(f.ReplicaId, -1);
	cr_assert_eq(f.MaxBytes, 0x7fffffff);
	cr_assert_eq(f.SessionEpoch, -1);
	cr_assert_eq(f.ClusterId.len, -1); /* "null" */
	cr_assert_eq(f.RackId.len, 0);	   /* "" */
	cr_assert_not_null(f.RackId.ptr);
	cr_assert_eq(f.Topics.count, 0);
	cr_assert_null(f.Topics.items);
	cr_assert_eq(f.ReplicaState.ReplicaId, -1);

	struct ProduceRequest p;
	kmsg_init(&ProduceRequest_struct, &p);
	cr_assert_eq(p.TransactionalId.len, -1);

	struct MetadataRequest mr;
	kmsg_init(&MetadataRequest_struct, &mr);
	cr_assert(mr.AllowAutoTopicCreation);
}

/* Golden fixtures */

/* Parses a whole request (header, tags when flexible, body). */
static int parse_request(const uint8_t *buf, size_t len, struct arena *a,
			 struct RequestHeader *h, const struct kf_message **m,
			 void *body, size_t body_size)
{
	struct kb_reader r;
	kb_reader_init(&r, buf, len);
	if (kmsg_read_request_header(&r, h) < 0)
		return -1;
	*m = kmsg_request(h->RequestApiKey);
	if (*m == NULL || (*m)->body->size > body_size)
		return -1;
	if (kmsg_flexible(*m, h->RequestApiVersion) &&
	    kmsg_read_header_tags(&r) < 0)
		return -1;
	if (kmsg_decode(*m, h->RequestApiVersion, &r, a, body) < 0)
		return -1;
	return kb_remaining(&r) == 0 ? 0 : -1;
}

/*
 * Checks a request fixture: it parses, its body re-encodes to the same bytes
 * and every prefix fails.
 */
static void check_request_fixture(const char *hex, size_t header_len,
				  void *body, size_t body_size,
				  struct RequestHeader *h)
{
	size_t n;
	uint8_t *buf = unhex(hex, &n);
	struct arena a = {0};
	const struct kf_message *m = NULL;
	cr_assert_eq(parse_request(buf, n, &a, h, &m, body, body_size), 0);

	struct kb_writer w = {0};
	kmsg_encode(m, h->RequestApiVersion, &w, body);
	cr_assert(kb_writer_ok(&w));
	cr_assert_eq(w.len, n - header_len, "body %zu bytes, want %zu", w.len,
		     n - header_len);
	cr_assert(memcmp(w.buf, buf + header_len, w.len) == 0);
	kb_writer_free(&w);

	char *scratch = malloc(body_size);
	for (size_t k = 0; k < n; k++) {
		uint8_t *copy = malloc(k ? k : 1);
		memcpy(copy, buf, k);
		struct arena b = {0};
		struct RequestHeader h2;
		const struct kf_message *m2;
		int rc = parse_request(copy, k, &b, &h2, &m2, scratch,
				       body_size);
		arena_free(&b);
		free(copy);
		cr_assert_eq(rc, -1, "prefix %zu of %zu parsed", k, n);
	}
	free(scratch);
	free(buf);
	/* body borrows from buf: callers check fields before this point. */
	arena_free(&a);
}

Test(messages, apiversions_request_v3_librdkafka)
{
	/* Header v2 (ClientId keeps its int16 length), then the body. */
	static const char fixture[] =
		"0012 0003 00000001 0007 72646b61666b61 00"
		"0b 6c69627264 6b61666b61"
		"07 76322e332e30"
		"00";
	size_t n;
	uint8_t *buf = unhex(fixture, &n);
	struct arena a = {0};
	struct RequestHeader h;
	struct ApiVersionsRequest req;
	const struct kf_message *m;
	cr_assert_eq(parse_request(buf, n, &a, &h, &m, &req, sizeof(req)), 0);
	cr_assert_eq(h.RequestApiKey, 18);
	cr_assert_eq(h.RequestApiVersion, 3);
	cr_assert_eq(h.CorrelationId, 1);
	cr_assert(kstr_eq(h.ClientId, "rdkafka"));
	cr_assert(kstr_eq(req.ClientSoftwareName, "librdkafka"));
	cr_assert(kstr_eq(req.ClientSoftwareVersion, "v2.3.0"));
	free(buf);
	arena_free(&a);

	check_request_fixture(fixture, 2 + 2 + 4 + 9 + 1, &req, sizeof(req),
			      &h);
}

Test(messages, apiversions_response_v0)
{
	struct ApiVersionsResponse_ApiVersion keys[2] = {
		{.ApiKey = 0, .MinVersion = 0, .MaxVersion = 13},
		{.ApiKey = 18, .MinVersion = 0, .MaxVersion = 4},
	};
	struct ApiVersionsResponse resp;
	kmsg_init(&ApiVersionsResponse_struct, &resp);
	resp.ErrorCode = 0;
	resp.ApiKeys.count = 2;
	resp.ApiKeys.items = keys;
	resp.ThrottleTimeMs = 100; /* v1+: not written in v0 */

	struct kb_writer w = {0};
	/* ApiVersions answers with response header v0, always. */
	kmsg_write_response_header(&w, 7, false);
	kmsg_encode(&kmsg_ApiVersionsResponse, 0, &w, &resp);
	static const char want[] = "00000007"
				   "0000"
				   "00000002"
				   "0000 0000 000d"
				   "0012 0000 0004";
	expect_hex(&w, want);

	struct arena a = {0};
	struct ApiVersionsResponse got;
	struct kb_reader r;
	kb_reader_init(&r, w.buf + 4, w.len - 4);
	cr_assert_eq(kmsg_decode(&kmsg_ApiVersionsResponse, 0, &r, &a, &got),
		     0);
	cr_assert_eq(got.ApiKeys.count, 2);
	cr_assert_eq(got.ApiKeys.items[1].ApiKey, 18);
	cr_assert_eq(got.ApiKeys.items[1].MaxVersion, 4);
	cr_assert_eq(got.ThrottleTimeMs, 0);
	expect_prefixes_fail(&kmsg_ApiVersionsResponse, 0, w.buf + 4,
			     w.len - 4);
	arena_free(&a);
	kb_writer_free(&w);
}

Test(messages, apiversions_response_v3_tags_ascending)
{
	struct ApiVersionsResponse_SupportedFeatureKey feat = {
		.Name = KSTR_LIT("f"), .MinVersion = 1, .MaxVersion = 2};
	struct ApiVersionsResponse resp;
	kmsg_init(&ApiVersionsResponse_struct, &resp);
	resp.ZkMigrationReady = true;
	resp.SupportedFeatures.count = 1;
	resp.SupportedFeatures.items = &feat;
	struct kb_writer w = {0};
	kmsg_encode(&kmsg_ApiVersionsResponse, 3, &w, &resp);
	/* FinalizedFeaturesEpoch (tag 1) is at its default -1: not sent. */
	expect_hex(&w, "0000 01 00000000"
		       "02"
		       "00 08 02 0266 0001 0002 00"
		       "03 01 01");
	kb_writer_free(&w);
}

Test(messages, metadata_request_v1)
{
	static const char fixture[] = "0003 0001 00000005 0004 74657374"
				      "00000001 0003 666f6f";
	struct MetadataRequest req;
	struct RequestHeader h;
	size_t n;
	uint8_t *buf = unhex(fixture, &n);
	struct arena a = {0};
	const struct kf_message *m;
	cr_assert_eq(parse_request(buf, n, &a, &h, &m, &req, sizeof(req)), 0);
	cr_assert_eq(h.RequestApiVersion, 1);
	cr_assert(kstr_eq(h.ClientId, "test"));
	cr_assert_eq(req.Topics.count, 1);
	cr_assert(kstr_eq(req.Topics.items[0].Name, "foo"));
	cr_assert(req.AllowAutoTopicCreation); /* v4+: default true */
	free(buf);
	arena_free(&a);
	check_request_fixture(fixture, 14, &req, sizeof(req), &h);

	/* v1 allows a null topic list ("all topics"), v0 does not. */
	static const uint8_t null_topics[] = {0xff, 0xff, 0xff, 0xff};
	struct kb_reader r;
	kb_reader_init(&r, null_topics, 4);
	cr_assert_eq(kmsg_decode(&kmsg_MetadataRequest, 1, &r, &a, &req), 0);
	cr_assert_eq(req.Topics.count, -1);
	kb_reader_init(&r, null_topics, 4);
	cr_assert_eq(kmsg_decode(&kmsg_MetadataRequest, 0, &r, &a, &req), -1);
	/* ... and a null list encoded as v0 becomes an empty one. */
	struct kb_writer w = {0};
	kmsg_encode(&kmsg_MetadataRequest, 0, &w, &req);
	expect_hex(&w, "00000000");
	kb_writer_free(&w);
	arena_free(&a);
}

Test(messages, metadata_request_v12)
{
	static const char fixture[] =
		"0003 000c 00000008 0004 74657374 00" /* header v2 */
		"02"				      /* one topic */
		"00000000000000000000000000000000"    /* TopicId */
		"04 666f6f 00"			      /* Name, tags */
		"01"  /* AllowAutoTopicCreation */
		"00"  /* IncludeTopicAuthz */
		"00"; /* tags */
	struct MetadataRequest req;
	struct RequestHeader h;
	size_t n;
	uint8_t *buf = unhex(fixture, &n);
	struct arena a = {0};
	const struct kf_message *m;
	cr_assert_eq(parse_request(buf, n, &a, &h, &m, &req, sizeof(req)), 0);
	cr_assert_eq(h.RequestApiVersion, 12);
	cr_assert_eq(req.Topics.count, 1);
	cr_assert(kstr_eq(req.Topics.items[0].Name, "foo"));
	cr_assert(req.AllowAutoTopicCreation);
	cr_assert_not(req.IncludeTopicAuthorizedOperations);
	free(buf);
	arena_free(&a);
	check_request_fixture(fixture, 15, &req, sizeof(req), &h);
}

Test(messages, produce_request_v3)
{
	static const char fixture[] = "0000 0003 0000002a 0001 78" /* header */
				      "ffff"	 /* TransactionalId null */
				      "ffff"	 /* Acks -1 */
				      "00007530" /* TimeoutMs 30000 */
				      "00000001 0001 74"   /* topic "t" */
				      "00000001 00000000"  /* partition 0 */
				      "00000004 deadbeef"; /* Records */
	struct ProduceRequest req;
	struct RequestHeader h;
	size_t n;
	uint8_t *buf = unhex(fixture, &n);
	struct arena a = {0};
	const struct kf_message *m;
	cr_assert_eq(parse_request(buf, n, &a, &h, &m, &req, sizeof(req)), 0);
	cr_assert_eq(h.CorrelationId, 42);
	cr_assert_eq(req.TransactionalId.len, -1);
	cr_assert_eq(req.Acks, -1);
	cr_assert_eq(req.TimeoutMs, 30000);
	cr_assert(kstr_eq(req.TopicData.items[0].Name, "t"));
	const struct ProduceRequest_PartitionProduceData *pd =
		&req.TopicData.items[0].PartitionData.items[0];
	cr_assert_eq(pd->Index, 0);
	cr_assert_eq(pd->Records.len, 4);
	cr_assert(memcmp(pd->Records.ptr, "\xde\xad\xbe\xef", 4) == 0);
	free(buf);
	arena_free(&a);
	check_request_fixture(fixture, 11, &req, sizeof(req), &h);
}

Test(messages, produce_request_v9)
{
	static const char fixture[] = "0000 0009 0000002b 0001 78 00" /* hdr */
				      "00"	    /* TransactionalId null */
				      "ffff"	    /* Acks -1 */
				      "00007530"    /* TimeoutMs */
				      "02 0274"	    /* one topic "t" */
				      "02 00000000" /* partition 0 */
				      "05 deadbeef 00" /* Records, tags */
				      "00"	       /* topic tags */
				      "00";	       /* body tags */
	struct ProduceRequest req;
	struct RequestHeader h;
	size_t n;
	uint8_t *buf = unhex(fixture, &n);
	struct arena a = {0};
	const struct kf_message *m;
	cr_assert_eq(parse_request(buf, n, &a, &h, &m, &req, sizeof(req)), 0);
	cr_assert_eq(h.RequestApiVersion, 9);
	cr_assert(kstr_eq(h.ClientId, "x"));
	cr_assert_eq(req.TopicData.count, 1);
	cr_assert_eq(req.TopicData.items[0].PartitionData.items[0].Records.len,
		     4);
	free(buf);
	arena_free(&a);
	check_request_fixture(fixture, 12, &req, sizeof(req), &h);

	/* A null Name (not nullable) is written as the empty string. */
	struct ProduceRequest_PartitionProduceData pd = {.Index = 1,
							 .Records = KSTR_NULL};
	struct ProduceRequest_TopicProduceData td = {.Name = KSTR_NULL,
						     .PartitionData = {1, &pd}};
	kmsg_init(&ProduceRequest_struct, &req);
	req.TopicData.count = 1;
	req.TopicData.items = &td;
	req.Acks = 1;
	req.TimeoutMs = 5;
	struct kb_writer w = {0};
	kmsg_encode(&kmsg_ProduceRequest, 9, &w, &req);
	expect_hex(&w, "00 0001 00000005 02 01 02 00000001 00 00 00 00");
	kb_writer_free(&w);
}

Test(messages, request_header_v1)
{
	static const uint8_t in[] = {0x00, 0x01, 0x00, 0x04, 0x00, 0x00,
				     0x01, 0x00, 0xff, 0xff, 0xaa};
	struct kb_reader r;
	struct RequestHeader h;
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_read_request_header(&r, &h), 0);
	cr_assert_eq(h.RequestApiKey, 1);
	cr_assert_eq(h.RequestApiVersion, 4);
	cr_assert_eq(h.CorrelationId, 256);
	cr_assert_eq(h.ClientId.len, -1); /* null client id */
	cr_assert_eq(kb_remaining(&r), 1);
	for (size_t n = 0; n < 10; n++) {
		kb_reader_init(&r, in, n);
		cr_assert_eq(kmsg_read_request_header(&r, &h), -1);
	}
}

Test(messages, request_header_v2_with_tags)
{
	/* ClientId keeps its int16 length; then two unknown tags. */
	static const uint8_t in[] = {0x00, 0x03, 0x00, 0x0c, 0x00, 0x00, 0x00,
				     0x09, 0x00, 0x02, 'i',  'd',  0x02, 0x00,
				     0x02, 0xab, 0xcd, 0x05, 0x00, 0x77};
	struct kb_reader r;
	struct RequestHeader h;
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_read_request_header(&r, &h), 0);
	cr_assert(kstr_eq(h.ClientId, "id"));
	cr_assert_eq(kmsg_read_header_tags(&r), 0);
	cr_assert_eq(kb_remaining(&r), 1);
	for (size_t n = 12; n < sizeof(in) - 1; n++) {
		kb_reader_init(&r, in, n);
		int rc = kmsg_read_request_header(&r, &h);
		if (rc == 0)
			rc = kmsg_read_header_tags(&r);
		cr_assert_eq(rc, -1, "prefix %zu", n);
	}
	/* A tag count no buffer could hold. */
	static const uint8_t many[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0, 0};
	kb_reader_init(&r, many, sizeof(many));
	cr_assert_eq(kmsg_read_header_tags(&r), -1);
	/* A tag size past the end. */
	static const uint8_t big[] = {0x01, 0x00, 0xff, 0xff, 0x03, 0x00};
	kb_reader_init(&r, big, sizeof(big));
	cr_assert_eq(kmsg_read_header_tags(&r), -1);
}

Test(messages, response_header)
{
	struct kb_writer w = {0};
	kmsg_write_response_header(&w, 0x01020304, false);
	kmsg_write_response_header(&w, -1, true);
	expect_hex(&w, "01020304 ffffffff 00");
	kb_writer_free(&w);
}

Test(messages, tagged_string_default_not_written)
{
	struct FetchRequest f;
	kmsg_init(&FetchRequest_struct, &f);
	struct kb_writer w0 = {0}, w1 = {0};
	kmsg_encode(&kmsg_FetchRequest, 12, &w0, &f);
	f.ClusterId = KSTR_LIT(""); /* differs from the null default */
	kmsg_encode(&kmsg_FetchRequest, 12, &w1, &f);
	cr_assert(kb_writer_ok(&w0) && kb_writer_ok(&w1));
	/* Tag 0, size 1, compact "" = 01; the count goes from 0 to 1. */
	cr_assert_eq(w1.len, w0.len + 3);
	cr_assert_eq(w0.buf[w0.len - 1], 0x00);
	cr_assert(memcmp(w1.buf + w1.len - 4, "\x01\x00\x01\x01", 4) == 0);

	struct arena a = {0};
	struct FetchRequest g;
	struct kb_reader r;
	kb_reader_init(&r, w1.buf, w1.len);
	cr_assert_eq(kmsg_decode(&kmsg_FetchRequest, 12, &r, &a, &g), 0);
	cr_assert_eq(g.ClusterId.len, 0);
	kb_reader_init(&r, w0.buf, w0.len);
	cr_assert_eq(kmsg_decode(&kmsg_FetchRequest, 12, &r, &a, &g), 0);
	cr_assert_eq(g.ClusterId.len, -1);
	arena_free(&a);
	kb_writer_free(&w0);
	kb_writer_free(&w1);
}

/* A hand-made description: tags out of order and a nullable struct. */
struct inner {
	int32_t A;
};
struct outer {
	int32_t Plain;
	int32_t Five;
	struct kstr One;
	struct inner Maybe;
};
static const struct kf_field inner_fields[] = {
	{.name = "A",
	 .type = KF_INT32,
	 .vmin = 0,
	 .vmax = KF_VMAX,
	 .nmin = KF_NEVER,
	 .nmax = KF_NEVER,
	 .tmin = KF_NEVER,
	 .tmax = KF_NEVER,
	 .offset = offsetof(struct inner, A),
	 .def = 3},
};
static const struct kf_struct inner_struct = {"Inner", sizeof(struct inner), 1,
					      inner_fields};
static const struct kf_field outer_fields[] = {
	{.name = "Plain",
	 .type = KF_INT32,
	 .vmin = 0,
	 .vmax = KF_VMAX,
	 .nmin = KF_NEVER,
	 .nmax = KF_NEVER,
	 .tmin = KF_NEVER,
	 .tmax = KF_NEVER,
	 .offset = offsetof(struct outer, Plain)},
	{.name = "Five",
	 .type = KF_INT32,
	 .vmin = 0,
	 .vmax = KF_VMAX,
	 .nmin = KF_NEVER,
	 .nmax = KF_NEVER,
	 .tmin = 0,
	 .tmax = KF_VMAX,
	 .tag = 5,
	 .offset = offsetof(struct outer, Five)},
	{.name = "One",
	 .type = KF_STRING,
	 .vmin = 0,
	 .vmax = KF_VMAX,
	 .nmin = 0,
	 .nmax = KF_VMAX,
	 .tmin = 0,
	 .tmax = KF_VMAX,
	 .tag = 1,
	 .offset = offsetof(struct outer, One),
	 .def = 1},
	{.name = "Maybe",
	 .type = KF_STRUCT,
	 .vmin = 1,
	 .vmax = KF_VMAX,
	 .nmin = 1,
	 .nmax = KF_VMAX,
	 .tmin = KF_NEVER,
	 .tmax = KF_NEVER,
	 .offset = offsetof(struct outer, Maybe),
	 .sub = &inner_struct},
};
static const struct kf_struct outer_struct = {"Outer", sizeof(struct outer), 4,
					      outer_fields};

Test(messages, tags_written_in_ascending_order)
{
	struct outer o;
	kmsg_init(&outer_struct, &o);
	cr_assert_eq(o.One.len, -1);
	cr_assert_eq(o.Maybe.A, 3);
	o.Plain = 1;
	o.Five = 2;
	o.One = KSTR_LIT("x");
	struct kb_writer w = {0};
	kmsg_encode_struct(&outer_struct, 0, true, &w, &o);
	expect_hex(&w, "00000001 02 01 02 0278 05 04 00000002");

	/* Decoding accepts any order and skips unknown tags. */
	static const uint8_t in[] = {0,	   0,	 0,    9,    0x03, 0x05,
				     0x04, 0,	 0,    0,    7,	   0x09,
				     0x02, 0xee, 0xee, 0x01, 0x01, 0x00};
	struct arena a = {0};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_decode_struct(&outer_struct, 0, true, &r, &a, &o), 0);
	cr_assert_eq(kb_remaining(&r), 0);
	cr_assert_eq(o.Plain, 9);
	cr_assert_eq(o.Five, 7);
	cr_assert_eq(o.One.len, -1);
	/* A known tag whose bytes do not parse fails the whole read. */
	static const uint8_t bad[] = {0, 0, 0, 9, 0x01, 0x05, 0x02, 0, 0};
	kb_reader_init(&r, bad, sizeof(bad));
	cr_assert_eq(kmsg_decode_struct(&outer_struct, 0, true, &r, &a, &o),
		     -1);
	cr_assert_not(kb_reader_ok(&r));
	arena_free(&a);
	kb_writer_free(&w);
}

Test(messages, nullable_struct_marker)
{
	struct outer o;
	kmsg_init(&outer_struct, &o);
	o.Maybe.A = 4;
	struct kb_writer w = {0};
	kmsg_encode_struct(&outer_struct, 1, true, &w, &o);
	/* Plain, marker 1 (present), A, inner tags, outer tags. */
	expect_hex(&w, "00000000 01 00000004 00 00");
	kb_writer_free(&w);

	struct arena a = {0};
	struct kb_reader r;
	static const uint8_t null_in[] = {0, 0, 0, 0, 0xff, 0x00};
	kb_reader_init(&r, null_in, sizeof(null_in));
	cr_assert_eq(kmsg_decode_struct(&outer_struct, 1, true, &r, &a, &o), 0);
	cr_assert_eq(o.Maybe.A, 3); /* null: the default */
	static const uint8_t some[] = {0, 0, 0, 0, 0x01, 0, 0, 0, 8, 0, 0};
	kb_reader_init(&r, some, sizeof(some));
	cr_assert_eq(kmsg_decode_struct(&outer_struct, 1, true, &r, &a, &o), 0);
	cr_assert_eq(o.Maybe.A, 8);
	arena_free(&a);
}

/* A nullable struct with arrays (ConsumerGroupHeartbeatResponse's
 * Assignment) is null when they are, and an empty assignment is not. */
Test(messages, nullable_struct_null_when_its_arrays_are)
{
	struct ConsumerGroupHeartbeatResponse resp;
	kmsg_init(&ConsumerGroupHeartbeatResponse_struct, &resp);
	/* Its default is null. */
	cr_assert_eq(resp.Assignment.TopicPartitions.count, -1);
	struct kb_writer w = {0};
	kmsg_encode(&kmsg_ConsumerGroupHeartbeatResponse, 1, &w, &resp);
	/* throttle, error, message null, member id null, epoch, interval,
	 * Assignment -1, tags */
	expect_hex(&w, "00000000 0000 00 00 00000000 00000000 ff 00");
	kb_writer_free(&w);

	resp.Assignment.TopicPartitions.count = 0;
	w = (struct kb_writer){0};
	kmsg_encode(&kmsg_ConsumerGroupHeartbeatResponse, 1, &w, &resp);
	/* Present (1), no topics (compact 0 + 1), its tags, the tags. */
	expect_hex(&w, "00000000 0000 00 00 00000000 00000000 01 01 00 00");

	struct arena a = {0};
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct ConsumerGroupHeartbeatResponse back;
	cr_assert_eq(kmsg_decode(&kmsg_ConsumerGroupHeartbeatResponse, 1, &r,
				 &a, &back),
		     0);
	cr_assert_eq(back.Assignment.TopicPartitions.count, 0);
	/* 16 bytes up to the interval, then a null Assignment, then tags. */
	static const uint8_t null_in[] = {[16] = 0xff, [17] = 0};
	kb_reader_init(&r, null_in, sizeof(null_in));
	cr_assert_eq(kmsg_decode(&kmsg_ConsumerGroupHeartbeatResponse, 1, &r,
				 &a, &back),
		     0);
	cr_assert_eq(back.Assignment.TopicPartitions.count, -1);
	arena_free(&a);
	kb_writer_free(&w);
}

Test(messages, version_out_of_range)
{
	static const uint8_t in[64];
	struct ProduceRequest req;
	struct arena a = {0};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_decode(&kmsg_ProduceRequest, 14, &r, &a, &req), -1);
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_decode(&kmsg_ProduceRequest, -1, &r, &a, &req), -1);
	kmsg_init(&ProduceRequest_struct, &req);
	struct kb_writer w = {0};
	kmsg_encode(&kmsg_ProduceRequest, 14, &w, &req);
	cr_assert_not(kb_writer_ok(&w));
	kb_writer_free(&w);
}

Test(messages, arena_limit_fails_decode)
{
	/* DescribeGroups v0: an array of 1000 group-id strings. */
	struct kb_writer w = {0};
	kb_write_array_len(&w, 1000);
	for (int i = 0; i < 1000; i++)
		kb_write_string(&w, KSTR_LIT("g"));
	struct DescribeGroupsRequest req;
	struct arena a = {.limit = 1024};
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	cr_assert_eq(kmsg_decode(&kmsg_DescribeGroupsRequest, 0, &r, &a, &req),
		     -1);
	cr_assert_not(kb_reader_ok(&r));
	arena_free(&a);
	a.limit = 0;
	kb_reader_init(&r, w.buf, w.len);
	cr_assert_eq(kmsg_decode(&kmsg_DescribeGroupsRequest, 0, &r, &a, &req),
		     0);
	cr_assert_eq(req.Groups.count, 1000);
	arena_free(&a);
	kb_writer_free(&w);
}

Test(messages, hostile_array_count)
{
	/* DescribeGroups v0 claiming 2^31 - 1 groups in 8 bytes. */
	static const uint8_t in[] = {0x7f, 0xff, 0xff, 0xff, 0, 1, 'g', 0};
	struct DescribeGroupsRequest req;
	struct arena a = {0};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_eq(kmsg_decode(&kmsg_DescribeGroupsRequest, 0, &r, &a, &req),
		     -1);
	cr_assert_eq(a.used, 0, "nothing allocated for a hostile count");
	arena_free(&a);
}
