/*
 * cdc_event: Debezium's records for one change (storage/cdc_int.h): the
 * Postgres type mapping of PostgresValueConverter, the key struct, the
 * envelope {before, after, source, op, ts_ms, transaction}, the
 * ExtractNewRecordState transform, and the JsonConverter and
 * StringConverter encodings of the result.
 *
 * Payloads are built as jansson values next to Connect schemas in
 * JsonConverter's own JSON form; the text is written here rather than by
 * jansson so that doubles look the way Java prints them ("337.0", not
 * "337.00000000000000").
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/kbuf.h"
#include "storage/cdc_int.h"
#include "storage/store.h"

const char cdc_unchanged[] = "__debezium_unavailable_value";

/* Postgres type oids (pg_type.dat) the mapping knows. */
enum {
	OID_BOOL = 16,
	OID_BYTEA = 17,
	OID_NAME = 19,
	OID_INT8 = 20,
	OID_INT2 = 21,
	OID_INT4 = 23,
	OID_TEXT = 25,
	OID_OID = 26,
	OID_JSON = 114,
	OID_FLOAT4 = 700,
	OID_FLOAT8 = 701,
	OID_BPCHAR = 1042,
	OID_VARCHAR = 1043,
	OID_DATE = 1082,
	OID_TIME = 1083,
	OID_TIMESTAMP = 1114,
	OID_TIMESTAMPTZ = 1184,
	OID_TIMETZ = 1266,
	OID_NUMERIC = 1700,
	OID_UUID = 2950,
	OID_JSONB = 3802,
};

/* --- schemas ----------------------------------------------------------- */

/* A Connect schema in JsonConverter's key order. */
static json_t *sch(const char *type, bool optional, const char *name,
		   int version)
{
	json_t *s = json_object();
	json_object_set_new(s, "type", json_string(type));
	json_object_set_new(s, "optional", json_boolean(optional));
	if (name)
		json_object_set_new(s, "name", json_string(name));
	if (version)
		json_object_set_new(s, "version", json_integer(version));
	return s;
}

static json_t *field(json_t *s, const char *name)
{
	json_object_set_new(s, "field", json_string(name));
	return s;
}

static json_t *struct_sch(json_t *fields, bool optional, const char *name)
{
	json_t *s = json_object();
	json_object_set_new(s, "type", json_string("struct"));
	json_object_set_new(s, "fields", fields);
	json_object_set_new(s, "optional", json_boolean(optional));
	if (name)
		json_object_set_new(s, "name", json_string(name));
	return s;
}

static int typmod_precision(int32_t typmod)
{
	return typmod < 4 ? -1 : ((typmod - 4) >> 16) & 0xffff;
}

static int typmod_scale(int32_t typmod)
{
	return typmod < 4 ? -1 : (typmod - 4) & 0xffff;
}

static bool micro_timestamp(int32_t typmod)
{
	return typmod < 0 || typmod > 3;
}

static json_t *col_schema(const struct cdc_opts *o, const struct cdc_col *c)
{
	bool opt = c->optional;
	char buf[32];
	switch (c->oid) {
	case OID_BOOL:
		return sch("boolean", opt, NULL, 0);
	case OID_INT2:
		return sch("int16", opt, NULL, 0);
	case OID_INT4:
		return sch("int32", opt, NULL, 0);
	case OID_INT8:
	case OID_OID:
		return sch("int64", opt, NULL, 0);
	case OID_FLOAT4:
		return sch("float", opt, NULL, 0);
	case OID_FLOAT8:
		return sch("double", opt, NULL, 0);
	case OID_NUMERIC:
		if (o->decimal == DEC_DOUBLE)
			return sch("double", opt, NULL, 0);
		if (o->decimal == DEC_STRING)
			return sch("string", opt, NULL, 0);
		if (typmod_scale(c->typmod) < 0) {
			json_t *f = json_array();
			json_array_append_new(
				f,
				field(sch("int32", false, NULL, 0), "scale"));
			json_array_append_new(
				f,
				field(sch("bytes", false, NULL, 0), "value"));
			json_t *s = struct_sch(
				f, opt,
				"io.debezium.data.VariableScaleDecimal");
			json_object_set_new(s, "version", json_integer(1));
			json_object_set_new(s, "doc",
					    json_string("Variable scaled "
							"decimal"));
			return s;
		} else {
			json_t *s =
				sch("bytes", opt,
				    "org.apache.kafka.connect.data.Decimal", 1);
			json_t *p = json_object();
			snprintf(buf, sizeof(buf), "%d",
				 typmod_scale(c->typmod));
			json_object_set_new(p, "scale", json_string(buf));
			snprintf(buf, sizeof(buf), "%d",
				 typmod_precision(c->typmod));
			json_object_set_new(p, "connect.decimal.precision",
					    json_string(buf));
			json_object_set_new(s, "parameters", p);
			return s;
		}
	case OID_DATE:
		if (o->time_connect)
			return sch("int32", opt,
				   "org.apache.kafka.connect.data.Date", 1);
		return sch("int32", opt, "io.debezium.time.Date", 1);
	case OID_TIME:
		if (o->time_connect)
			return sch("int32", opt,
				   "org.apache.kafka.connect.data.Time", 1);
		return micro_timestamp(c->typmod)
			       ? sch("int64", opt, "io.debezium.time.MicroTime",
				     1)
			       : sch("int32", opt, "io.debezium.time.Time", 1);
	case OID_TIMESTAMP:
		if (o->time_connect)
			return sch("int64", opt,
				   "org.apache.kafka.connect.data.Timestamp",
				   1);
		return micro_timestamp(c->typmod)
			       ? sch("int64", opt,
				     "io.debezium.time.MicroTimestamp", 1)
			       : sch("int64", opt, "io.debezium.time.Timestamp",
				     1);
	case OID_TIMESTAMPTZ:
		return sch("string", opt, "io.debezium.time.ZonedTimestamp", 1);
	case OID_TIMETZ:
		return sch("string", opt, "io.debezium.time.ZonedTime", 1);
	case OID_UUID:
		return sch("string", opt, "io.debezium.data.Uuid", 1);
	case OID_JSON:
	case OID_JSONB:
		return sch("string", opt, "io.debezium.data.Json", 1);
	case OID_BYTEA:
		return sch(o->binary_base64 ? "string" : "bytes", opt, NULL, 0);
	default:
		return sch("string", opt, NULL, 0);
	}
}

static json_t *row_schema(const struct cdc_opts *o, const struct cdc_rel *r,
			  bool keys, const char *suffix, bool optional)
{
	json_t *f = json_array();
	for (int i = 0; i < r->ncols; i++)
		if (!keys || r->cols[i].key)
			json_array_append_new(f,
					      field(col_schema(o, &r->cols[i]),
						    r->cols[i].name));
	char name[1024];
	snprintf(name, sizeof(name), "%s.%s", r->topic, suffix);
	return struct_sch(f, optional, name);
}

static json_t *source_schema(void)
{
	json_t *f = json_array();
	json_array_append_new(f,
			      field(sch("string", false, NULL, 0), "version"));
	json_array_append_new(
		f, field(sch("string", false, NULL, 0), "connector"));
	json_array_append_new(f, field(sch("string", false, NULL, 0), "name"));
	json_array_append_new(f, field(sch("int64", false, NULL, 0), "ts_ms"));
	json_t *snap = sch("string", true, "io.debezium.data.Enum", 1);
	json_object_set_new(
		snap, "parameters",
		json_pack("{s:s}", "allowed", "true,last,false,incremental"));
	json_object_set_new(snap, "default", json_string("false"));
	json_array_append_new(f, field(snap, "snapshot"));
	json_array_append_new(f, field(sch("string", false, NULL, 0), "db"));
	json_array_append_new(f,
			      field(sch("string", true, NULL, 0), "sequence"));
	json_array_append_new(f,
			      field(sch("string", false, NULL, 0), "schema"));
	json_array_append_new(f, field(sch("string", false, NULL, 0), "table"));
	json_array_append_new(f, field(sch("int64", true, NULL, 0), "txId"));
	json_array_append_new(f, field(sch("int64", true, NULL, 0), "lsn"));
	json_array_append_new(f, field(sch("int64", true, NULL, 0), "xmin"));
	return struct_sch(f, false, "io.debezium.connector.postgresql.Source");
}

void cdc_rel_schemas(const struct cdc_opts *o, struct cdc_rel *r)
{
	json_decref(r->key_schema);
	json_decref(r->value_schema);
	json_decref(r->env_schema);
	bool any_key = false;
	for (int i = 0; i < r->ncols; i++)
		any_key |= r->cols[i].key;
	r->key_schema = any_key ? row_schema(o, r, true, "Key", false) : NULL;
	r->value_schema = row_schema(o, r, false, "Value", true);
	json_t *f = json_array();
	json_array_append_new(f,
			      field(json_deep_copy(r->value_schema), "before"));
	json_array_append_new(f,
			      field(json_deep_copy(r->value_schema), "after"));
	json_array_append_new(f, field(source_schema(), "source"));
	json_array_append_new(f, field(sch("string", false, NULL, 0), "op"));
	json_array_append_new(f, field(sch("int64", true, NULL, 0), "ts_ms"));
	json_t *tf = json_array();
	json_array_append_new(tf, field(sch("string", false, NULL, 0), "id"));
	json_array_append_new(
		tf, field(sch("int64", false, NULL, 0), "total_order"));
	json_array_append_new(tf, field(sch("int64", false, NULL, 0),
					"data_collection_order"));
	json_array_append_new(f,
			      field(struct_sch(tf, true, NULL), "transaction"));
	char name[1024];
	snprintf(name, sizeof(name), "%s.Envelope", r->topic);
	r->env_schema = struct_sch(f, false, name);
	free(r->key_avro);
	free(r->value_avro);
	r->key_avro = r->value_avro = NULL;
	r->key_id = r->value_id = -1;
	if (o->key_conv == CONV_AVRO && r->key_schema)
		r->key_avro = cdc_avro_schema(r->key_schema);
	if (o->value_conv == CONV_AVRO) {
		json_t *vs = cdc_value_schema(o, r);
		r->value_avro = cdc_avro_schema(vs);
		json_decref(vs);
	}
}

/* --- values ------------------------------------------------------------ */

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64(const uint8_t *p, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	if (!out)
		return json_null();
	size_t j = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		out[j++] = b64[(v >> 18) & 63];
		out[j++] = b64[(v >> 12) & 63];
		out[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		out[j++] = i + 2 < n ? b64[v & 63] : '=';
	}
	out[j] = '\0';
	json_t *s = json_string(out);
	free(out);
	return s;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* "HH:MM:SS[.ffffff]" to microseconds; the rest of s in *end. */
static int64_t parse_time(const char *s, const char **end)
{
	int h = 0, mi = 0, se = 0, n = 0;
	sscanf(s, "%d:%d:%d%n", &h, &mi, &se, &n);
	s += n;
	int64_t us = ((int64_t)h * 3600 + mi * 60 + se) * 1000000;
	if (*s == '.') {
		int64_t f = 0;
		int digits = 0;
		for (s++; isdigit((unsigned char)*s); s++)
			if (digits < 6) {
				f = f * 10 + (*s - '0');
				digits++;
			}
		while (digits++ < 6)
			f *= 10;
		us += f;
	}
	if (end)
		*end = s;
	return us;
}

/* "YYYY-MM-DD" to days; NULL-safe on odd input (0). */
static int64_t parse_date(const char *s, const char **end)
{
	int y = 1970, m = 1, d = 1, n = 0;
	sscanf(s, "%d-%d-%d%n", &y, &m, &d, &n);
	if (end)
		*end = s + n;
	int64_t days = days_from_civil(y, m, d);
	if (strstr(s, " BC"))
		days = days_from_civil(1 - y, m, d);
	return days;
}

/*
 * A decimal text's unscaled value at the given scale as Java's
 * BigInteger.toByteArray(): minimal big-endian two's complement.
 */
static json_t *decimal_bytes(const char *text, int scale, int *scale_out)
{
	bool neg = text[0] == '-';
	const char *p = neg || text[0] == '+' ? text + 1 : text;
	char digits[1100];
	size_t nd = 0;
	int frac = -1;
	for (; *p && nd + 1 < sizeof(digits); p++) {
		if (*p == '.')
			frac = 0;
		else if (isdigit((unsigned char)*p)) {
			digits[nd++] = *p;
			if (frac >= 0)
				frac++;
		} else
			return json_null(); /* NaN, Infinity */
	}
	if (frac < 0)
		frac = 0;
	if (scale < 0)
		scale = frac;
	while (frac < scale && nd + 1 < sizeof(digits)) {
		digits[nd++] = '0';
		frac++;
	}
	nd -= (size_t)(frac - scale); /* more digits than the scale: cut */
	*scale_out = scale;
	/* Magnitude to base 256 by repeated division of the digit string. */
	uint8_t mag[512];
	size_t nm = 0;
	size_t start = 0;
	while (start < nd && nm < sizeof(mag)) {
		int rem = 0;
		for (size_t i = start; i < nd; i++) {
			int cur = rem * 10 + (digits[i] - '0');
			digits[i] = (char)('0' + cur / 256);
			rem = cur % 256;
		}
		mag[nm++] = (uint8_t)rem;
		while (start < nd && digits[start] == '0')
			start++;
	}
	/* mag is little-endian; make big-endian two's complement. */
	uint8_t out[514];
	size_t no = 0;
	if (nm == 0) {
		out[no++] = 0;
	} else {
		for (size_t i = 0; i < nm; i++)
			out[no++] = mag[nm - 1 - i];
		if (neg) {
			int carry = 1;
			for (size_t i = no; i-- > 0;) {
				int v = (uint8_t)~out[i] + carry;
				out[i] = (uint8_t)v;
				carry = v >> 8;
			}
			if (!(out[0] & 0x80)) {
				memmove(out + 1, out, no++);
				out[0] = 0xff;
			}
			while (no > 1 && out[0] == 0xff && (out[1] & 0x80))
				memmove(out, out + 1, --no);
		} else if (out[0] & 0x80) {
			memmove(out + 1, out, no++);
			out[0] = 0;
		}
	}
	return base64(out, no);
}

/*
 * timetz as Debezium's ZonedTime: ISO-8601 in GMT ("11:14:15.5Z"). The
 * value keeps its own offset whatever the session's time zone, e.g.
 * "13:14:15.5+02" or "13:14:15-03:30", so shift it to UTC (mod 24 h).
 */
static json_t *zoned_time(const char *v)
{
	int h = 0, mi = 0, se = 0, n = 0;
	if (sscanf(v, "%d:%d:%d%n", &h, &mi, &se, &n) != 3)
		return json_string(v);
	const char *p = v + n;
	char frac[16] = "";
	if (*p == '.') {
		size_t k = strspn(p + 1, "0123456789");
		snprintf(frac, sizeof(frac), "%.*s", (int)(k < 9 ? k : 9),
			 p + 1);
		p += 1 + k;
	}
	int off = 0;
	if (*p == '+' || *p == '-') {
		int oh = 0, om = 0, os = 0;
		sscanf(p + 1, "%d:%d:%d", &oh, &om, &os);
		off = (oh * 3600 + om * 60 + os) * (*p == '-' ? -1 : 1);
	}
	int secs = ((h * 3600 + mi * 60 + se - off) % 86400 + 86400) % 86400;
	char buf[64];
	snprintf(buf, sizeof(buf), "%02d:%02d:%02d%s%sZ", secs / 3600,
		 secs / 60 % 60, secs % 60, frac[0] ? "." : "", frac);
	return json_string(buf);
}

static json_t *col_value(const struct cdc_opts *o, const struct cdc_col *c,
			 const char *v)
{
	if (!v)
		return json_null();
	if (v == cdc_unchanged)
		return json_string(cdc_unchanged);
	switch (c->oid) {
	case OID_BOOL:
		return json_boolean(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		return json_integer(strtoll(v, NULL, 10));
	case OID_FLOAT4:
		return json_real((double)strtof(v, NULL));
	case OID_FLOAT8:
		return json_real(strtod(v, NULL));
	case OID_NUMERIC:
		if (o->decimal == DEC_DOUBLE)
			return json_real(strtod(v, NULL));
		if (o->decimal == DEC_STRING)
			return json_string(v);
		if (typmod_scale(c->typmod) < 0) {
			int sc = 0;
			json_t *b = decimal_bytes(v, -1, &sc);
			return json_pack("{s:i,s:o}", "scale", sc, "value", b);
		} else {
			int sc;
			return decimal_bytes(v, typmod_scale(c->typmod), &sc);
		}
	case OID_DATE:
		return json_integer(parse_date(v, NULL));
	case OID_TIME: {
		int64_t us = parse_time(v, NULL);
		if (o->time_connect || !micro_timestamp(c->typmod))
			return json_integer(us / 1000);
		return json_integer(us);
	}
	case OID_TIMESTAMP: {
		const char *rest;
		int64_t days = parse_date(v, &rest);
		int64_t us = days * 86400000000LL +
			     parse_time(*rest ? rest + 1 : rest, NULL);
		if (o->time_connect || !micro_timestamp(c->typmod))
			return json_integer(us / 1000 -
					    (us % 1000 < 0 ? 1 : 0));
		return json_integer(us);
	}
	case OID_TIMETZ:
		return zoned_time(v);
	case OID_TIMESTAMPTZ: {
		/* The session runs in UTC: "2024-01-02 03:04:05.5+00" */
		char buf[128];
		snprintf(buf, sizeof(buf), "%s", v);
		char *sp = strchr(buf, ' ');
		if (sp)
			*sp = 'T';
		size_t n = strlen(buf);
		if (n > 3 && strcmp(buf + n - 3, "+00") == 0)
			strcpy(buf + n - 3, "Z");
		return json_string(buf);
	}
	case OID_BYTEA: {
		size_t n = strlen(v);
		if (n < 2 || v[0] != '\\' || v[1] != 'x')
			return json_string(v);
		if (o->binary_hex) /* Postgres's hex form without its "\\x" */
			return json_string(v + 2);
		size_t nb = (n - 2) / 2;
		uint8_t *b = malloc(nb + 1);
		if (!b)
			return json_null();
		for (size_t i = 0; i < nb; i++) {
			unsigned x = 0;
			sscanf(v + 2 + 2 * i, "%2x", &x);
			b[i] = (uint8_t)x;
		}
		json_t *j = base64(b, nb);
		free(b);
		return j;
	}
	default:
		return json_string(v);
	}
}

static json_t *row_value(const struct cdc_opts *o, const struct cdc_rel *r,
			 char **row, bool keys)
{
	if (!row)
		return json_null();
	json_t *obj = json_object();
	for (int i = 0; i < r->ncols; i++)
		if (!keys || r->cols[i].key)
			json_object_set_new(obj, r->cols[i].name,
					    col_value(o, &r->cols[i], row[i]));
	return obj;
}

/* --- text -------------------------------------------------------------- */

void cdc_java_double(double d, bool is_float, char *buf, size_t n)
{
	if (isnan(d)) {
		snprintf(buf, n, "NaN");
		return;
	}
	if (isinf(d)) {
		snprintf(buf, n, d < 0 ? "-Infinity" : "Infinity");
		return;
	}
	if (d == 0) {
		snprintf(buf, n, signbit(d) ? "-0.0" : "0.0");
		return;
	}
	/* The shortest digits that read back as d. */
	char e[64];
	int p;
	for (p = 1; p <= 17; p++) {
		snprintf(e, sizeof(e), "%.*e", p - 1, d);
		if (is_float ? strtof(e, NULL) == (float)d
			     : strtod(e, NULL) == d)
			break;
	}
	/* e = [-]D.DDDDe[+-]XX */
	bool neg = e[0] == '-';
	char digits[32];
	int nd = 0;
	const char *q = e + neg;
	for (; *q && *q != 'e'; q++)
		if (isdigit((unsigned char)*q))
			digits[nd++] = *q;
	int exp = atoi(q + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	digits[nd] = '\0';
	char out[64];
	size_t k = 0;
	if (neg)
		out[k++] = '-';
	if (exp >= -3 && exp < 7) {
		if (exp < 0) {
			out[k++] = '0';
			out[k++] = '.';
			for (int i = -1; i > exp; i--)
				out[k++] = '0';
			for (int i = 0; i < nd; i++)
				out[k++] = digits[i];
		} else {
			for (int i = 0; i <= exp; i++)
				out[k++] = i < nd ? digits[i] : '0';
			out[k++] = '.';
			if (nd > exp + 1)
				for (int i = exp + 1; i < nd; i++)
					out[k++] = digits[i];
			else
				out[k++] = '0';
		}
		out[k] = '\0';
	} else {
		out[k++] = digits[0];
		out[k++] = '.';
		if (nd > 1)
			for (int i = 1; i < nd; i++)
				out[k++] = digits[i];
		else
			out[k++] = '0';
		snprintf(out + k, sizeof(out) - k, "E%d", exp);
	}
	snprintf(buf, n, "%s", out);
}

static void put(struct kb_writer *w, const char *s)
{
	kb_write_raw(w, s, strlen(s));
}

static const json_t *field_schema(const json_t *schema, const char *name)
{
	json_t *fs = json_object_get(schema, "fields");
	size_t i;
	json_t *f;
	json_array_foreach(fs, i, f)
	{
		const char *n = json_string_value(json_object_get(f, "field"));
		if (n && strcmp(n, name) == 0)
			return f;
	}
	return NULL;
}

static bool schema_is_float(const json_t *schema)
{
	const char *t = json_string_value(json_object_get(schema, "type"));
	return t && strcmp(t, "float") == 0;
}

/* JSON text of v (schema, when known, tells float from double). */
static void write_json(struct kb_writer *w, const json_t *v,
		       const json_t *schema)
{
	char buf[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		put(w, "{");
		const char *k;
		json_t *x;
		bool first = true;
		json_object_foreach((json_t *)v, k, x)
		{
			if (!first)
				put(w, ",");
			first = false;
			json_t *ks = json_string(k);
			char *t = json_dumps(ks, JSON_ENCODE_ANY);
			put(w, t ? t : "\"\"");
			free(t);
			json_decref(ks);
			put(w, ":");
			write_json(w, x, field_schema(schema, k));
		}
		put(w, "}");
		break;
	}
	case JSON_ARRAY: {
		put(w, "[");
		size_t i;
		json_t *x;
		json_array_foreach(v, i, x)
		{
			if (i)
				put(w, ",");
			write_json(w, x, NULL);
		}
		put(w, "]");
		break;
	}
	case JSON_REAL:
		cdc_java_double(json_real_value(v), schema_is_float(schema),
				buf, sizeof(buf));
		if (buf[0] == 'N' || buf[0] == 'I' || buf[1] == 'I')
			put(w, "null");
		else
			put(w, buf);
		break;
	default: {
		char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
		put(w, t ? t : "null");
		free(t);
	}
	}
}

/* Connect's Struct.toString(): null fields left out. */
static void write_struct_text(struct kb_writer *w, const json_t *v,
			      const json_t *schema)
{
	char buf[64];
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		put(w, "Struct{");
		const char *k;
		json_t *x;
		bool first = true;
		json_object_foreach((json_t *)v, k, x)
		{
			if (json_is_null(x))
				continue;
			if (!first)
				put(w, ",");
			first = false;
			put(w, k);
			put(w, "=");
			write_struct_text(w, x, field_schema(schema, k));
		}
		put(w, "}");
		break;
	}
	case JSON_STRING:
		kb_write_raw(w, json_string_value(v), json_string_length(v));
		break;
	case JSON_REAL:
		cdc_java_double(json_real_value(v), schema_is_float(schema),
				buf, sizeof(buf));
		put(w, buf);
		break;
	default:
		write_json(w, v, schema);
	}
}

/* convert()'s *len when the value does not fit its schema. */
#define CONVERT_FAILED ((size_t)-1)

/* The converter's bytes for (schema, payload); NULL for a null value.
 * id: the registry's id of the schema (AvroConverter). */
static char *convert(enum cdc_conv conv, bool schemas, const json_t *schema,
		     const json_t *payload, int32_t id, size_t *len)
{
	if (!payload || json_is_null(payload)) {
		*len = 0;
		return NULL;
	}
	struct kb_writer w;
	kb_writer_init(&w);
	if (conv == CONV_AVRO) {
		/* Confluent's wire format: magic 0, the id big-endian. */
		kb_write_i8(&w, 0);
		kb_write_i32(&w, id);
		if (cdc_avro_encode(&w, schema, payload) < 0) {
			kb_writer_free(&w);
			*len = CONVERT_FAILED;
			return NULL;
		}
	} else if (conv == CONV_STRING) {
		write_struct_text(&w, payload, schema);
	} else if (schemas) {
		put(&w, "{\"schema\":");
		write_json(&w, schema ? schema : json_null(), NULL);
		put(&w, ",\"payload\":");
		write_json(&w, payload, schema);
		put(&w, "}");
	} else {
		write_json(&w, payload, schema);
	}
	if (!kb_writer_ok(&w)) {
		kb_writer_free(&w);
		*len = 0;
		return NULL;
	}
	*len = w.len;
	return (char *)w.buf; /* ownership passes to the caller */
}

/* --- records ----------------------------------------------------------- */

static json_t *add_field_schema(const char *name, const char **out_type)
{
	const char *t = "string";
	if (strcmp(name, "lsn") == 0 || strcmp(name, "source.ts_ms") == 0 ||
	    strcmp(name, "ts_ms") == 0 || strcmp(name, "txId") == 0 ||
	    strcmp(name, "source.lsn") == 0 || strcmp(name, "source.txId") == 0)
		t = "int64";
	*out_type = t;
	return sch(t, true, NULL, 0);
}

/* "__source_ts_ms" of "source.ts_ms". */
static void add_field_name(const char *name, char *out, size_t n)
{
	snprintf(out, n, "__%s", name);
	for (char *p = out; *p; p++)
		if (*p == '.')
			*p = '_';
}

/* ExtractNewRecordState on an envelope; returns the new value (or NULL to
 * drop the record) and its schema in *schema_out. */
static json_t *unwrap(const struct cdc_opts *o, const struct cdc_rel *r,
		      const json_t *env, json_t **schema_out)
{
	const char *op = json_string_value(json_object_get(env, "op"));
	json_t *source = json_object_get(env, "source");
	json_t *row;
	bool deleted = op[0] == 'd';
	if (op[0] == 't')
		return NULL;
	if (deleted) {
		if (o->unwrap_delete == DEL_DROP)
			return NULL;
		if (o->unwrap_delete == DEL_NONE) {
			*schema_out = json_deep_copy(r->value_schema);
			return json_null();
		}
		row = json_deep_copy(json_object_get(env, "before"));
	} else {
		row = json_deep_copy(json_object_get(env, "after"));
	}
	if (!json_is_object(row)) {
		json_decref(row);
		return NULL;
	}
	for (char **f = o->add_fields; f && *f; f++) {
		const char *name = *f;
		const char *leaf =
			strncmp(name, "source.", 7) == 0 ? name + 7 : name;
		json_t *val = NULL;
		if (strcmp(name, "op") == 0 || strcmp(name, "ts_ms") == 0)
			val = json_object_get(env, name);
		else
			val = json_object_get(source, leaf);
		char fname[128];
		add_field_name(name, fname, sizeof(fname));
		json_object_set(row, fname, val ? val : json_null());
	}
	if (o->unwrap_delete == DEL_REWRITE)
		json_object_set_new(row, "__deleted",
				    json_string(deleted ? "true" : "false"));
	*schema_out = cdc_value_schema(o, r);
	return row;
}

json_t *cdc_value_schema(const struct cdc_opts *o, const struct cdc_rel *r)
{
	if (!o->unwrap)
		return json_deep_copy(r->env_schema);
	json_t *schema = json_deep_copy(r->value_schema);
	json_t *fields = json_object_get(schema, "fields");
	for (char **f = o->add_fields; f && *f; f++) {
		const char *type;
		char fname[128];
		add_field_name(*f, fname, sizeof(fname));
		json_array_append_new(
			fields, field(add_field_schema(*f, &type), fname));
	}
	if (o->unwrap_delete == DEL_REWRITE)
		json_array_append_new(
			fields,
			field(sch("string", true, NULL, 0), "__deleted"));
	return schema;
}

int cdc_format(const struct cdc_opts *o, const struct cdc_rel *r,
	       const struct cdc_change *ch, cdc_emit_fn emit, void *arg)
{
	char **keyrow = ch->op == 'd' ? ch->before : ch->after;
	json_t *key = NULL;
	if (r->key_schema && ch->op != 't') {
		if (!keyrow) /* a delete under REPLICA IDENTITY NOTHING */
			return 0;
		key = row_value(o, r, keyrow, true);
	}
	char op[2] = {ch->op, 0};
	char seq[80];
	snprintf(seq, sizeof(seq), "[\"%llu\",\"%llu\"]",
		 (unsigned long long)ch->commit_lsn,
		 (unsigned long long)ch->lsn);
	json_t *source = json_object();
	json_object_set_new(source, "version", json_string("1.9.7.Final"));
	json_object_set_new(source, "connector", json_string("postgresql"));
	json_object_set_new(source, "name", json_string(o->prefix));
	json_object_set_new(source, "ts_ms", json_integer(ch->commit_ms));
	json_object_set_new(source, "snapshot",
			    json_string(!ch->snapshot	    ? "false"
					: ch->last_snapshot ? "last"
							    : "true"));
	json_object_set_new(source, "db", json_string(o->dbname));
	json_object_set_new(source, "sequence",
			    ch->snapshot ? json_null() : json_string(seq));
	json_object_set_new(source, "schema", json_string(r->schema));
	json_object_set_new(source, "table", json_string(r->table));
	json_object_set_new(source, "txId",
			    ch->xid >= 0 ? json_integer(ch->xid) : json_null());
	json_object_set_new(source, "lsn", json_integer((json_int_t)ch->lsn));
	json_object_set_new(source, "xmin", json_null());
	json_t *before = ch->op == 't' ? json_null()
				       : row_value(o, r, ch->before, false);
	json_t *env = json_object();
	json_object_set_new(env, "before", before);
	json_object_set_new(env, "after", row_value(o, r, ch->after, false));
	json_object_set_new(env, "source", source);
	json_object_set_new(env, "op", json_string(op));
	json_object_set_new(env, "ts_ms", json_integer(st_now_ms()));
	json_object_set_new(env, "transaction", json_null());

	json_t *value = env, *vschema = r->env_schema;
	json_t *owned_schema = NULL;
	if (o->unwrap) {
		value = unwrap(o, r, env, &owned_schema);
		vschema = owned_schema;
	}
	int n = 0;
	size_t kl = 0, vl = 0;
	const json_t *kschema = r->key_schema;
	if (value) {
		char *k = convert(o->key_conv, o->key_schemas, kschema, key,
				  r->key_id, &kl);
		char *v = convert(o->value_conv, o->value_schemas, vschema,
				  value, r->value_id, &vl);
		if (kl == CONVERT_FAILED || vl == CONVERT_FAILED) {
			free(k);
			free(v);
			n = -1;
		} else {
			emit(arg, k, kl, v, vl);
			n++;
		}
	}
	bool tomb = ch->op == 'd' && o->tombstones &&
		    !(o->unwrap && o->unwrap_drop_tombstones) && key;
	if (tomb && n >= 0) {
		char *k = convert(o->key_conv, o->key_schemas, kschema, key,
				  r->key_id, &kl);
		if (kl == CONVERT_FAILED) {
			n = -1;
		} else {
			emit(arg, k, kl, NULL, 0);
			n++;
		}
	}
	if (value != env)
		json_decref(value);
	json_decref(env);
	json_decref(owned_schema);
	json_decref(key);
	return n;
}

/* --- heartbeats -------------------------------------------------------- */

void cdc_heartbeat_schemas(json_t **key, json_t **value)
{
	json_t *kf = json_array();
	json_array_append_new(
		kf, field(sch("string", false, NULL, 0), "serverName"));
	*key = struct_sch(kf, false,
			  "io.debezium.connector.common.ServerNameKey");
	json_t *vf = json_array();
	json_array_append_new(vf, field(sch("int64", false, NULL, 0), "ts_ms"));
	*value =
		struct_sch(vf, false, "io.debezium.connector.common.Heartbeat");
}

void cdc_heartbeat(const struct cdc_opts *o, int32_t key_id, int32_t value_id,
		   int64_t ts_ms, cdc_emit_fn emit, void *arg)
{
	json_t *ks, *vs;
	cdc_heartbeat_schemas(&ks, &vs);
	json_t *key = json_pack("{s:s}", "serverName", o->prefix);
	json_t *val = json_pack("{s:I}", "ts_ms", (json_int_t)ts_ms);
	size_t kl = 0, vl = 0;
	char *k = convert(o->key_conv, o->key_schemas, ks, key, key_id, &kl);
	char *v = convert(o->value_conv, o->value_schemas, vs, val, value_id,
			  &vl);
	emit(arg, k, kl, v, vl);
	json_decref(key);
	json_decref(val);
	json_decref(ks);
	json_decref(vs);
}
