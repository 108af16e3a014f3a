/*
 * kmsg: the description-driven message engine (see kmsg.h).
 *
 * The engine walks a struct description field by field.  Regular fields are
 * read or written in description order; in flexible versions every struct
 * then carries a tagged-field section: a uvarint count, then for each field
 * a uvarint tag, a uvarint size and the field's bytes.  Recursion follows the
 * nesting of the descriptions, never the input, so its depth is fixed.
 */
#include "kmsg.h"

#include <string.h>

/* Every zero-length string or byte run we make points here, never NULL. */
static const char kmsg_empty[1] = "";

static size_t type_size(uint8_t type, const struct kf_struct *sub)
{
	switch (type) {
	case KF_BOOL:
		return sizeof(bool);
	case KF_INT8:
		return sizeof(int8_t);
	case KF_INT16:
		return sizeof(int16_t);
	case KF_UINT16:
		return sizeof(uint16_t);
	case KF_INT32:
		return sizeof(int32_t);
	case KF_INT64:
		return sizeof(int64_t);
	case KF_FLOAT64:
		return sizeof(double);
	case KF_UUID:
		return sizeof(struct kuuid);
	case KF_STRING:
	case KF_BYTES:
	case KF_RECORDS:
		return sizeof(struct kstr);
	case KF_STRUCT:
		return sub != NULL ? sub->size : 0;
	case KF_ARRAY:
		return sizeof(struct karr);
	}
	return 0;
}

static void struct_set_null(const struct kf_struct *s, void *out);

/* Default of one value of a field (elements of arrays use def 0). */
static void init_value(uint8_t type, const struct kf_struct *sub, int64_t def,
		       void *p)
{
	switch (type) {
	case KF_BOOL:
		*(bool *)p = def != 0;
		break;
	case KF_INT8:
		*(int8_t *)p = (int8_t)def;
		break;
	case KF_INT16:
		*(int16_t *)p = (int16_t)def;
		break;
	case KF_UINT16:
		*(uint16_t *)p = (uint16_t)def;
		break;
	case KF_INT32:
		*(int32_t *)p = (int32_t)def;
		break;
	case KF_INT64:
		*(int64_t *)p = def;
		break;
	case KF_FLOAT64:
		*(double *)p = (double)def;
		break;
	case KF_UUID:
		memset(p, 0, sizeof(struct kuuid));
		break;
	case KF_STRING:
	case KF_BYTES:
	case KF_RECORDS:
		*(struct kstr *)p =
			def ? KSTR_NULL : (struct kstr){kmsg_empty, 0};
		break;
	case KF_STRUCT:
		if (sub != NULL && def)
			struct_set_null(sub, p); /* a struct null by default */
		else if (sub != NULL)
			kmsg_init(sub, p);
		break;
	case KF_ARRAY:
		((struct karr *)p)->count = def ? -1 : 0;
		((struct karr *)p)->items = NULL;
		break;
	}
}

void kmsg_init(const struct kf_struct *s, void *out)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		init_value(f->type, f->sub, f->def, (char *)out + f->offset);
	}
}

static bool struct_is_default(const struct kf_struct *s, const void *in);

/*
 * The embedded C struct of a nullable struct field stands for null when
 * every string, bytes and array field in it is null (kmsg.h).
 */
static bool struct_is_null(const struct kf_struct *s, const void *in)
{
	bool any = false;
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		const char *p = (const char *)in + f->offset;
		if (f->type == KF_ARRAY) {
			if (((const struct karr *)p)->count >= 0)
				return false;
			any = true;
		} else if (f->type == KF_STRING || f->type == KF_BYTES ||
			   f->type == KF_RECORDS) {
			if (((const struct kstr *)p)->len >= 0)
				return false;
			any = true;
		}
	}
	return any;
}

static void struct_set_null(const struct kf_struct *s, void *out)
{
	kmsg_init(s, out);
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		char *p = (char *)out + f->offset;
		if (f->type == KF_ARRAY)
			((struct karr *)p)->count = -1;
		else if (f->type == KF_STRING || f->type == KF_BYTES ||
			 f->type == KF_RECORDS)
			*(struct kstr *)p = KSTR_NULL;
	}
}

/* True when the field's value equals its default (tagged fields). */
static bool is_default(const struct kf_field *f, const void *p)
{
	switch (f->type) {
	case KF_BOOL:
		return *(const bool *)p == (f->def != 0);
	case KF_INT8:
		return *(const int8_t *)p == (int8_t)f->def;
	case KF_INT16:
		return *(const int16_t *)p == (int16_t)f->def;
	case KF_UINT16:
		return *(const uint16_t *)p == (uint16_t)f->def;
	case KF_INT32:
		return *(const int32_t *)p == (int32_t)f->def;
	case KF_INT64:
		return *(const int64_t *)p == f->def;
	case KF_FLOAT64:
		return *(const double *)p == (double)f->def;
	case KF_UUID: {
		static const struct kuuid zero;
		return memcmp(p, &zero, sizeof(zero)) == 0;
	}
	case KF_STRING:
	case KF_BYTES:
	case KF_RECORDS: {
		const struct kstr *s = p;
		return f->def ? s->len < 0 : s->len == 0;
	}
	case KF_STRUCT:
		return f->sub == NULL || struct_is_default(f->sub, p);
	case KF_ARRAY: {
		const struct karr *a = p;
		return f->def ? a->count < 0 : a->count == 0;
	}
	}
	return true;
}

static bool struct_is_default(const struct kf_struct *s, const void *in)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		if (!is_default(f, (const char *)in + f->offset))
			return false;
	}
	return true;
}

/* Decoding */

static int decode_value(uint8_t type, uint8_t elem, const struct kf_struct *sub,
			bool nullable, int16_t version, bool flex,
			struct kb_reader *r, struct arena *a, void *p);

static int decode_str(bool bytes, bool nullable, bool flex, struct kb_reader *r,
		      struct kstr *s)
{
	bool ok;
	if (flex)
		ok = bytes ? kb_read_compact_bytes(r, s)
			   : kb_read_compact_string(r, s);
	else
		ok = bytes ? kb_read_bytes(r, s) : kb_read_string(r, s);
	if (!ok)
		return -1;
	if (s->len < 0 && !nullable) {
		kb_reader_fail(r);
		return -1;
	}
	return 0;
}

static int decode_array(uint8_t elem, const struct kf_struct *sub,
			bool nullable, int16_t version, bool flex,
			struct kb_reader *r, struct arena *a, struct karr *arr)
{
	int32_t n;
	bool ok = flex ? kb_read_compact_array_len(r, &n, INT32_MAX)
		       : kb_read_array_len(r, &n, INT32_MAX);
	arr->count = 0;
	arr->items = NULL;
	if (!ok)
		return -1;
	if (n < 0) {
		if (!nullable) {
			kb_reader_fail(r);
			return -1;
		}
		arr->count = -1;
		return 0;
	}
	if (n == 0)
		return 0;
	size_t esz = type_size(elem, sub);
	if (esz == 0 || (size_t)n > SIZE_MAX / esz) {
		kb_reader_fail(r);
		return -1;
	}
	char *items = arena_alloc(a, (size_t)n * esz);
	if (items == NULL) {
		kb_reader_fail(r);
		return -1;
	}
	arr->items = items;
	arr->count = n;
	for (int32_t i = 0; i < n; i++) {
		if (decode_value(elem, 0, sub, false, version, flex, r, a,
				 items + (size_t)i * esz) < 0)
			return -1;
	}
	return 0;
}

static int decode_value(uint8_t type, uint8_t elem, const struct kf_struct *sub,
			bool nullable, int16_t version, bool flex,
			struct kb_reader *r, struct arena *a, void *p)
{
	bool ok = true;
	switch (type) {
	case KF_BOOL:
		ok = kb_read_bool(r, p);
		break;
	case KF_INT8:
		ok = kb_read_i8(r, p);
		break;
	case KF_INT16:
		ok = kb_read_i16(r, p);
		break;
	case KF_UINT16:
		ok = kb_read_u16(r, p);
		break;
	case KF_INT32:
		ok = kb_read_i32(r, p);
		break;
	case KF_INT64:
		ok = kb_read_i64(r, p);
		break;
	case KF_FLOAT64:
		ok = kb_read_f64(r, p);
		break;
	case KF_UUID:
		ok = kb_read_uuid(r, p);
		break;
	case KF_STRING:
		return decode_str(false, nullable, flex, r, p);
	case KF_BYTES:
	case KF_RECORDS:
		return decode_str(true, nullable, flex, r, p);
	case KF_STRUCT:
		if (sub == NULL) {
			kb_reader_fail(r);
			return -1;
		}
		if (nullable) {
			/* Kafka's marker: -1 null, 1 present. */
			int8_t marker;
			if (!kb_read_i8(r, &marker))
				return -1;
			if (marker < 0) {
				struct_set_null(sub, p);
				return 0;
			}
		}
		return kmsg_decode_struct(sub, version, flex, r, a, p);
	case KF_ARRAY:
		return decode_array(elem, sub, nullable, version, flex, r, a,
				    p);
	default:
		kb_reader_fail(r);
		return -1;
	}
	return ok ? 0 : -1;
}

static const struct kf_field *find_tag(const struct kf_struct *s,
				       int16_t version, uint32_t tag)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		if (kf_in(version, f->tmin, f->tmax) &&
		    kf_in(version, f->vmin, f->vmax) && f->tag >= 0 &&
		    (uint32_t)f->tag == tag)
			return f;
	}
	return NULL;
}

static int decode_tags(const struct kf_struct *s, int16_t version,
		       struct kb_reader *r, struct arena *a, void *out)
{
	uint32_t n;
	if (!kb_read_uvarint(r, &n))
		return -1;
	/* Each tagged field takes at least two bytes (tag, size). */
	if (n > kb_remaining(r) / 2) {
		kb_reader_fail(r);
		return -1;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint32_t tag, size;
		const uint8_t *data;
		kb_read_uvarint(r, &tag);
		kb_read_uvarint(r, &size);
		if (!kb_read_raw(r, size, &data))
			return -1;
		const struct kf_field *f = find_tag(s, version, tag);
		if (f == NULL)
			continue; /* unknown tags are skipped */
		struct kb_reader sub;
		kb_reader_init(&sub, data, size);
		bool nullable = kf_in(version, f->nmin, f->nmax);
		if (decode_value(f->type, f->elem, f->sub, nullable, version,
				 true, &sub, a, (char *)out + f->offset) < 0) {
			kb_reader_fail(r);
			return -1;
		}
	}
	return 0;
}

int kmsg_decode_struct(const struct kf_struct *s, int16_t version, bool flex,
		       struct kb_reader *r, struct arena *a, void *out)
{
	for (uint16_t i = 0; i < s->nfields; i++) {
		const struct kf_field *f = &s->fields[i];
		void *p = (char *)out + f->offset;
		if (!kf_in(version, f->vmin, f->vmax) ||
		    (flex && kf_in(version, f->tmin, f->tmax))) {
			init_value(f->type, f->sub, f->def, p);
			continue;
		}
		bool nullable = kf_in(version, f->nmin, f->nmax);
		if (decode_value(f->type, f->elem, f->sub, nullable, version,
				 flex, r, a, p) < 0) {
			kb_reader_fail(r);
			return -1;
		}
	}
	if (flex && decode_tags(s, version, r, a, out) < 0)
		return -1;
	return kb_reader_ok(r) ? 0 : -1;
}

int kmsg_decode(const struct kf_message *m, int16_t version,
		struct kb_reader *r, struct arena *a, void *out)
{
	if (version < m->vmin || version > m->vmax) {
		kb_reader_fail(r);
		return -1;
	}
	return kmsg_decode_struct(m->body, version, kmsg_flexible(m, version),
				  r, a, out);
}

/* Encoding */

static void encode_value(uint8_t type, uint8_t elem,
			 const struct kf_struct *sub, bool nullable,
			 int16_t version, bool flex, struct kb_writer *w,
			 const void *p);

static void encode_str(bool bytes, bool nullable, bool flex,
		       struct kb_writer *w, struct kstr s)
{
	if (s.len < 0 && !nullable)
		s = (struct kstr){kmsg_empty, 0};
	if (flex) {
		if (bytes)
			kb_write_compact_bytes(w, s);
		else
			kb_write_compact_string(w, s);
	} else {
		if (bytes)
			kb_write_bytes(w, s);
		else
			kb_write_string(w, s);
	}
}

static void encode_array(uint8_t elem, const struct kf_struct *sub,
			 bool nullable, int16_t version, bool flex,
			 struct kb_writer *w, const struct karr *arr)
{
	int32_t n = arr->count;
	if (n < 0 && !nullable)
		n = 0;
	if (n > 0 && arr->items == NULL) {
		w->failed = true; /* a count without items: caller's bug */
		return;
	}
	if (flex)
		kb_write_compact_array_len(w, n);
	else
		kb_write_array_len(w, n);
	size_t esz = type_size(elem, sub);
	const char *items = arr->items;
	for (int32_t i = 0; i < n && !w->failed; i++)
		encode_value(elem, 0, sub, false, version, flex, w,
			     items + (size_t)i * esz);
}

static void encode_value(uint8_t type, uint8_t elem,
			 const struct kf_struct *sub, bool nullable,
			 int16_t version, bool flex, struct kb_writer *w,
			 const void *p)
{
	switch (type) {
	case KF_BOOL:
		kb_write_bool(w, *(const bool *)p);
		break;
	case KF_INT8:
		kb_write_i8(w, *(const int8_t *)p);
		break;
	case KF_INT16:
		kb_write_i16(w, *(const int16_t *)p);
		break;
	case KF_UINT16:
		kb_write_u16(w, *(const uint16_t *)p);
		break;
	case KF_INT32:
		kb_write_i32(w, *(const int32_t *)p);
		break;
	case KF_INT64:
		kb_write_i64(w, *(const int64_t *)p);
		break;
	case KF_FLOAT64:
		kb_write_f64(w, *(const double *)p);
		break;
	case KF_UUID:
		kb_write_uuid(w, p);
		break;
	case KF_STRING:
		encode_str(false, nullable, flex, w, *(const struct kstr *)p);
		break;
	case KF_BYTES:
	case KF_RECORDS:
		encode_str(true, nullable, flex, w, *(const struct kstr *)p);
		break;
	case KF_STRUCT:
		if (sub == NULL) {
			w->failed = true;
			break;
		}
		if (nullable && struct_is_null(sub, p)) {
			kb_write_i8(w, -1);
			break;
		}
		if (nullable)
			kb_write_i8(w, 1);
		kmsg_encode_struct(sub, version, flex, w, p);
		break;
	case KF_ARRAY:
		encode_array(elem, sub, nullable, version, flex, w, p);
		break;
	default:
		w->failed = true;
		break;
	}
}

/* Tagged fields of s to write in this version, in ascending tag order. */
static bool tag_written(const struct kf_field *f, int16_t version,
			const void *in)
{
	return kf_in(version, f->vmin, f->vmax) &&
	       kf_in(version, f->tmin, f->tmax) &&
	       !is_default(f, (const char *)in + f->offset);
}

static void encode_tags(const struct kf_struct *s, int16_t version,
			struct kb_writer *w, const void *in)
{
	uint32_t n = 0;
	for (uint16_t i = 0; i < s->nfields; i++)
		if (tag_written(&s->fields[i], version, in))
			n++;
	kb_write_uvarint(w, n);
	int64_t last = -1;
	for (uint32_t k = 0; k < n && !w->failed; k++) {
		/* Smallest tag above the last one written. */
		const struct kf_field *f = NULL;
		for (uint16_t i = 0; i < s->nfields; i++) {
			const struct kf_field *g = &s->fields[i];
			if (g->tag > last && tag_written(g, version, in) &&
			    (f == NULL || g->tag < f->tag))
				f = g;
		}
		if (f == NULL)
			break;
		last = f->tag;
		struct kb_writer tmp;
		kb_writer_init(&tmp);
		encode_value(f->type, f->elem, f->sub,
			     kf_in(version, f->nmin, f->nmax), version, true,
			     &tmp, (const char *)in + f->offset);
		if (tmp.failed || tmp.len > UINT32_MAX) {
			w->failed = true;
		} else {
			kb_write_uvarint(w, (uint32_t)f->tag);
			kb_write_uvarint(w, (uint32_t)tmp.len);
			kb_write_raw(w, tmp.buf, tmp.len);
		}
		kb_writer_free(&tmp);
	}
}

void kmsg_encode_struct(const struct kf_struct *s, int16_t version, bool flex,
			struct kb_writer *w, const void *in)
{
	for (uint16_t i = 0; i < s->nfields && !w->failed; i++) {
		const struct kf_field *f = &s->fields[i];
		if (!kf_in(version, f->vmin, f->vmax) ||
		    (flex && kf_in(version, f->tmin, f->tmax)))
			continue;
		encode_value(f->type, f->elem, f->sub,
			     kf_in(version, f->nmin, f->nmax), version, flex, w,
			     (const char *)in + f->offset);
	}
	if (flex)
		encode_tags(s, version, w, in);
}

void kmsg_encode(const struct kf_message *m, int16_t version,
		 struct kb_writer *w, const void *in)
{
	if (version < m->vmin || version > m->vmax) {
		w->failed = true;
		return;
	}
	kmsg_encode_struct(m->body, version, kmsg_flexible(m, version), w, in);
}

/* Headers */

int kmsg_read_request_header(struct kb_reader *r, struct RequestHeader *h)
{
	kb_read_i16(r, &h->RequestApiKey);
	kb_read_i16(r, &h->RequestApiVersion);
	kb_read_i32(r, &h->CorrelationId);
	/* ClientId keeps its int16 length even in flexible header v2. */
	kb_read_string(r, &h->ClientId);
	return kb_reader_ok(r) ? 0 : -1;
}

int kmsg_read_header_tags(struct kb_reader *r)
{
	static const struct kf_struct none = {"RequestHeaderTags", 0, 0, NULL};
	return decode_tags(&none, 0, r, NULL, NULL) < 0 || !kb_reader_ok(r) ? -1
									    : 0;
}

void kmsg_write_response_header(struct kb_writer *w, int32_t correlation_id,
				bool flexible)
{
	kb_write_i32(w, correlation_id);
	if (flexible)
		kb_write_uvarint(w, 0);
}
