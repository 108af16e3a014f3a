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
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/kbuf.h"
#include "storage/cdc_int.h"
#include "storage/store.h"

int64_t (*cdc_clock_ms)(void) = st_now_ms;

const char cdc_unchanged[] = "__debezium_unavailable_value";

/* The placeholder in a bytes field (binary.handling.mode=bytes): its bytes,
 * as Debezium's getToastPlaceholderBinary, base64 in the JSON form. */
static const char unchanged_b64[] = "X19kZWJleml1bV91bmF2YWlsYWJsZV92YWx1ZQ==";

/* Whether column c's placeholder is unchanged_b64 rather than the text. */
static bool unchanged_as_bytes(const struct cdc_opts *o,
			       const struct cdc_col *c);

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
	OID_INTERVAL = 1186,
	OID_MONEY = 790,
	OID_JSONB = 3802,
};

/* --- schemas ----------------------------------------------------------- */

static struct cdc_render *render_new(const struct cdc_opts *o,
				     const struct cdc_rel *r);

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

/*
 * One-dimensional arrays of the types Debezium 1.9 gives an ARRAY schema
 * (PostgresValueConverter.schemaBuilder): the element's oid for an array
 * type's, 0 for another type.  bytea[], money[], name[], interval[] and
 * the rest Debezium leaves without a schema stay text here.
 */
static uint32_t array_elem(uint32_t oid)
{
	/* a switch, not a table scan: this runs for every text column */
	switch (oid) {
	case 1000:
		return OID_BOOL;
	case 1002:
		return 18; /* "char" */
	case 1005:
		return OID_INT2;
	case 1007:
		return OID_INT4;
	case 1009:
		return OID_TEXT;
	case 1014:
		return OID_BPCHAR;
	case 1015:
		return OID_VARCHAR;
	case 1016:
		return OID_INT8;
	case 1021:
		return OID_FLOAT4;
	case 1022:
		return OID_FLOAT8;
	case 1028:
		return OID_OID;
	case 1182:
		return OID_DATE;
	case 1183:
		return OID_TIME;
	case 1115:
		return OID_TIMESTAMP;
	case 1185:
		return OID_TIMESTAMPTZ;
	case 1270:
		return OID_TIMETZ;
	case 1231:
		return OID_NUMERIC;
	case 2951:
		return OID_UUID;
	case 199:
		return OID_JSON;
	case 3807:
		return OID_JSONB;
	case 1041:
		return 869; /* inet */
	case 651:
		return 650; /* cidr */
	case 1040:
		return 829; /* macaddr */
	case 775:
		return 774; /* macaddr8 */
	case 3905:
		return 3904; /* int4range */
	case 3907:
		return 3906; /* numrange */
	case 3909:
		return 3908; /* tsrange */
	case 3911:
		return 3910; /* tstzrange */
	case 3913:
		return 3912; /* daterange */
	case 3927:
		return 3926; /* int8range */
	default:
		return 0;
	}
}

/* An array column's element as a column of its own (optional, as
 * Debezium's element schemas are), and the options it is read under: a
 * time[]'s elements are MicroTime whatever time.precision.mode says. */
static void array_elem_col(const struct cdc_opts *o, const struct cdc_col *c,
			   struct cdc_col *ec, struct cdc_opts *eo)
{
	*ec = (struct cdc_col){.name = c->name,
			       .oid = array_elem(c->oid),
			       .typmod = c->typmod,
			       .optional = true};
	*eo = *o;
	if (ec->oid == OID_TIME) {
		eo->time_connect = false;
		eo->time_micro = true;
	}
}

static json_t *col_schema(const struct cdc_opts *o, const struct cdc_col *c);

/* JsonConverter's ARRAY schema: type, items, optional. */
static json_t *array_schema(const struct cdc_opts *o, const struct cdc_col *c)
{
	struct cdc_col ec;
	struct cdc_opts eo;
	array_elem_col(o, c, &ec, &eo);
	json_t *s = json_object();
	json_object_set_new(s, "type", json_string("array"));
	json_object_set_new(s, "items", col_schema(&eo, &ec));
	json_object_set_new(s, "optional", json_boolean(c->optional));
	return s;
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
		return o->time_micro || micro_timestamp(c->typmod)
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
	case OID_MONEY: /* PostgresValueConverter.moneySchema */
		if (o->decimal == DEC_DOUBLE)
			return sch("double", opt, NULL, 0);
		if (o->decimal == DEC_STRING)
			return sch("string", opt, NULL, 0);
		{
			json_t *s =
				sch("bytes", opt,
				    "org.apache.kafka.connect.data.Decimal", 1);
			json_object_set_new(s, "parameters",
					    json_pack("{s:s}", "scale", "2"));
			return s;
		}
	case OID_INTERVAL:
		return o->interval_string
			       ? sch("string", opt, "io.debezium.time.Interval",
				     1)
			       : sch("int64", opt,
				     "io.debezium.time.MicroDuration", 1);
	case OID_JSON:
	case OID_JSONB:
		return sch("string", opt, "io.debezium.data.Json", 1);
	case OID_BYTEA:
		return sch(o->binary_base64 ? "string" : "bytes", opt, NULL, 0);
	default:
		if (array_elem(c->oid))
			return array_schema(o, c);
		return sch("string", opt, NULL, 0);
	}
}

/* Whether column c is a field of a key (keys) or of a value row. */
static bool in_row(const struct cdc_col *c, bool keys)
{
	return keys ? c->key : !c->excluded;
}

static json_t *row_schema(const struct cdc_opts *o, const struct cdc_rel *r,
			  bool keys, const char *suffix, bool optional)
{
	json_t *f = json_array();
	for (int i = 0; i < r->ncols; i++)
		if (in_row(&r->cols[i], keys))
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

static void render_free(struct cdc_rel *rel);

void cdc_rel_schemas_free(struct cdc_rel *r)
{
	json_decref(r->key_schema);
	json_decref(r->value_schema);
	json_decref(r->env_schema);
	r->key_schema = r->value_schema = r->env_schema = NULL;
	free(r->key_avro);
	free(r->value_avro);
	r->key_avro = r->value_avro = NULL;
	render_free(r);
}

void cdc_rel_schemas(const struct cdc_opts *o, struct cdc_rel *r)
{
	cdc_rel_schemas_free(r);
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
	r->key_id = r->value_id = -1;
	if (o->key_conv == CONV_AVRO && r->key_schema)
		r->key_avro = cdc_avro_schema(r->key_schema);
	if (o->value_conv == CONV_AVRO) {
		json_t *vs = cdc_value_schema(o, r);
		r->value_avro = cdc_avro_schema(vs);
		json_decref(vs);
	}
	r->render = render_new(o, r);
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

/* "HH:MM:SS[.ffffff]" to microseconds; the rest of s in *end.  false
 * when s does not start so. */
static bool parse_time(const char *s, int64_t *out, const char **end)
{
	int h = 0, mi = 0, se = 0, n = 0;
	if (sscanf(s, "%2d:%2d:%2d%n", &h, &mi, &se, &n) != 3 || n != 8)
		return false;
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
	*out = us;
	if (end)
		*end = s;
	return true;
}

/* "YYYY-MM-DD" to days (" BC" anywhere after: the year before 1 is 1 BC);
 * the rest of s in *end.  false when s does not start so. */
static bool parse_date(const char *s, int64_t *days, const char **end)
{
	int y = 0, m = 0, d = 0, n = 0;
	if (sscanf(s, "%d-%2d-%2d%n", &y, &m, &d, &n) != 3 || y < 0 || m < 1 ||
	    m > 12 || d < 1 || d > 31)
		return false;
	if (end)
		*end = s + n;
	*days = days_from_civil(strstr(s, " BC") ? 1 - y : y, m, d);
	return true;
}

/*
 * Postgres's infinity and -infinity as Debezium 1.9 gives them: a
 * timestamp is the instant of pgjdbc's PGStatement.DATE_POSITIVE_INFINITY
 * (9223372036825200000 taken as microseconds) or DATE_NEGATIVE_INFINITY,
 * in µs or ms as the schema says; a date is the day of its
 * POSITIVE_INFINITY_LOCAL_DATE, -5877611-06-21 (-5877611-06-22 for
 * -infinity: the order is Debezium's).  A timestamptz stays "infinity".
 */
#define INFINITY_US	  9223372036825200000LL
#define NEG_INFINITY_US	  (-9223372036832400000LL)
#define INFINITY_DAYS	  (-2147472692LL)
#define NEG_INFINITY_DAYS (-2147472691LL)

/* Why the change being formatted cannot be (a value that does not
 * parse), or "". */
static char format_err[512];

/* A value Debezium's converters throw on (its connector stops): the
 * change's first such reason into format_err. */
static void format_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));
static void format_error(const char *fmt, ...)
{
	if (format_err[0])
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(format_err, sizeof(format_err), fmt, ap);
	va_end(ap);
}

/* What Debezium's DateTimeFormat does with a text it cannot parse. */
static void bad_value(const struct cdc_col *c, const char *v)
{
	format_error("Cannot parse time/date value '%.200s' of column %s", v,
		     c->name);
}

/*
 * A date, time or timestamp column's value: days, µs or ms as its schema
 * says.  false (and format_err set) when v does not parse.
 */
static bool temporal(const struct cdc_opts *o, const struct cdc_col *c,
		     const char *v, int64_t *out)
{
	bool ms = o->time_connect || !micro_timestamp(c->typmod);
	bool inf = !strcmp(v, "infinity"), ninf = !strcmp(v, "-infinity");
	const char *rest;
	int64_t days = 0, us = 0;
	bool ok = true;
	switch (c->oid) {
	case OID_DATE:
		if (inf || ninf)
			*out = inf ? INFINITY_DAYS : NEG_INFINITY_DAYS;
		else
			ok = parse_date(v, out, NULL);
		break;
	case OID_TIME:
		ok = parse_time(v, &us, NULL);
		*out = ms && !o->time_micro ? us / 1000 : us;
		break;
	default: /* OID_TIMESTAMP */
		if (inf || ninf)
			us = inf ? INFINITY_US : NEG_INFINITY_US;
		else
			ok = parse_date(v, &days, &rest) && *rest == ' ' &&
			     parse_time(rest + 1, &us, NULL);
		if (ok && !inf && !ninf)
			us += days * 86400000000LL;
		*out = ms ? us / 1000 - (us % 1000 < 0 ? 1 : 0) : us;
	}
	if (!ok)
		bad_value(c, v);
	return ok;
}

/* The base64 of Java's BigInteger.toByteArray() of the magnitude in limbs
 * (nl base 2^32 words, little-endian), negated when neg: minimal
 * big-endian two's complement.  json_null() when memory runs out. */
static json_t *twos_complement_b64(const uint32_t *limbs, size_t nl, bool neg)
{
	size_t nb = nl * 4 + 1;
	uint8_t *out = malloc(nb);
	if (!out)
		return json_null();
	out[0] = 0;
	for (size_t i = 0; i < nl; i++)
		for (int k = 0; k < 4; k++)
			out[nb - 1 - (i * 4 + (size_t)k)] =
				(uint8_t)(limbs[i] >> (8 * k));
	if (neg) {
		int carry = 1;
		for (size_t i = nb; i-- > 0;) {
			int x = (uint8_t)~out[i] + carry;
			out[i] = (uint8_t)x;
			carry = x >> 8;
		}
	}
	/* drop the sign bytes Java would not write */
	size_t skip = 0;
	uint8_t sign = neg ? 0xff : 0;
	while (skip + 1 < nb && out[skip] == sign &&
	       (out[skip + 1] & 0x80) == (sign & 0x80))
		skip++;
	json_t *j = base64(out + skip, nb - skip);
	free(out);
	return j;
}

/*
 * A numeric's text as a Connect Decimal's bytes: the unscaled value at
 * scale (scale < 0: the text's own scale, without trailing zeros as
 * Debezium's stripTrailingZeros gives a VariableScaleDecimal, never below
 * 0), any length.  *scale_out: the scale.  NULL for NaN and the
 * infinities (no Decimal holds them); json_null() when memory runs out.
 */
static json_t *decimal_bytes(const char *text, int scale, int *scale_out)
{
	bool neg = text[0] == '-';
	const char *p = neg || text[0] == '+' ? text + 1 : text;
	size_t len = strlen(p), pad = scale > 0 ? (size_t)scale : 0;
	/* on the stack for the common sizes: this runs for every value */
	char dbuf[128];
	uint32_t lbuf[16];
	char *digits = len + pad < sizeof(dbuf) ? dbuf : malloc(len + pad + 1);
	if (!digits)
		return json_null();
	size_t nd = 0;
	int frac = -1;
	for (; *p; p++) {
		if (*p == '.' && frac < 0) {
			frac = 0;
		} else if (isdigit((unsigned char)*p)) {
			digits[nd++] = *p;
			if (frac >= 0)
				frac++;
		} else { /* NaN, Infinity, -Infinity */
			if (digits != dbuf)
				free(digits);
			return NULL;
		}
	}
	if (frac < 0)
		frac = 0;
	if (scale < 0) {
		scale = frac;
		while (scale > 0 && digits[nd - 1] == '0') {
			nd--;
			scale--;
			frac--;
		}
	}
	for (; frac < scale; frac++)
		digits[nd++] = '0';
	if (frac > scale) /* more digits than the scale: cut */
		nd -= (size_t)(frac - scale);
	*scale_out = scale;
	/* The magnitude in base 2^32, nine decimal digits at a time. */
	size_t maxl = nd / 9 + 2;
	uint32_t *limbs = maxl <= 16 ? lbuf : malloc(maxl * sizeof(*limbs));
	if (!limbs) {
		if (digits != dbuf)
			free(digits);
		return json_null();
	}
	size_t nl = 0;
	for (size_t i = 0; i < nd;) {
		size_t k = i == 0 && nd % 9 ? nd % 9 : 9;
		uint64_t mul = 1, carry = 0;
		for (size_t e = 0; e < k; e++, i++) {
			mul *= 10;
			carry = carry * 10 + (uint64_t)(digits[i] - '0');
		}
		for (size_t l = 0; l < nl; l++) {
			uint64_t x = (uint64_t)limbs[l] * mul + carry;
			limbs[l] = (uint32_t)x;
			carry = x >> 32;
		}
		if (carry)
			limbs[nl++] = (uint32_t)carry;
	}
	if (digits != dbuf)
		free(digits);
	json_t *j = twos_complement_b64(limbs, nl, neg && nl > 0);
	if (limbs != lbuf)
		free(limbs);
	return j;
}

/*
 * timestamptz as Debezium's ZonedTimestamp, ISO_OFFSET_DATE_TIME in UTC:
 * the session runs in UTC, so Postgres writes "2024-01-02 03:04:05.5+00",
 * and this is "2024-01-02T03:04:05.5Z".  Java's proleptic years: "0044-...
 * BC" is year -43, "-0043-..."; past 9999 a year takes a '+'.
 * infinity and -infinity stay as they are, as Debezium's.  Into buf (n
 * bytes).
 */
static void zoned_timestamp(const char *v, char *buf, size_t n)
{
	size_t len = strlen(v);
	/* The common case, a 4-digit year AD: the text patched in place of
	 * the year's arithmetic (this runs for every timestamptz). */
	if (len < n && len > 4 && v[4] == '-' && isdigit((unsigned char)v[0]) &&
	    isdigit((unsigned char)v[1]) && isdigit((unsigned char)v[2]) &&
	    isdigit((unsigned char)v[3]) &&
	    !(len > 3 && memcmp(v + len - 3, " BC", 3) == 0)) {
		memcpy(buf, v, len + 1);
		char *sp = memchr(buf, ' ', len);
		if (sp)
			*sp = 'T';
		if (len > 3 && memcmp(buf + len - 3, "+00", 3) == 0)
			memcpy(buf + len - 3, "Z", 2);
		return;
	}
	char *end;
	long y = isdigit((unsigned char)v[0]) ? strtol(v, &end, 10) : -1;
	if (y < 0 || *end != '-') {
		snprintf(buf, n, "%s", v);
		return;
	}
	size_t rest = strlen(end);
	bool bc = rest > 3 && strcmp(end + rest - 3, " BC") == 0;
	if (bc) {
		rest -= 3;
		y = 1 - y;
	}
	int k = snprintf(buf, n,
			 y < 0	    ? "-%04ld"
			 : y > 9999 ? "+%ld"
				    : "%04ld",
			 y < 0 ? -y : y);
	if (k < 0 || (size_t)k >= n)
		return;
	snprintf(buf + k, n - (size_t)k, "%.*s", (int)rest, end);
	char *sp = strchr(buf, ' ');
	if (sp)
		*sp = 'T';
	size_t blen = strlen(buf);
	if (blen > 3 && strcmp(buf + blen - 3, "+00") == 0)
		strcpy(buf + blen - 3, "Z");
}

/*
 * An interval as Debezium 1.9 reads it through pgjdbc's PGInterval:
 * Postgres's text (intervalstyle=postgres: "1 year 2 mons -3 days
 * -04:05:06.789") to years, months, days, hours, minutes, and seconds
 * kept as whole seconds and rounded microseconds (PGInterval.setSeconds);
 * then MicroDuration.durationMicros (a month of 365.25 / 12 days, in
 * doubles, truncated) or, under interval.handling.mode=string,
 * Interval.toIsoString ("P1Y2M-3DT-4H-5M-6.789S": the seconds' exact
 * binary value cut to 9 decimals, trailing zeros gone).  Into buf (n
 * bytes) as text; false when v does not parse.
 */
static bool interval_text(const struct cdc_opts *o, const char *v, char *buf,
			  size_t n)
{
	long ymd[3] = {0, 0, 0}, h = 0, mi = 0;
	double secs = 0;
	const char *p = v;
	while (*p) {
		char *end;
		if (strchr(p, ':') && (strchr(p, ' ') == NULL ||
				       strchr(p, ':') < strchr(p, ' '))) {
			bool neg = *p == '-';
			int k = 0;
			if (sscanf(p + (*p == '-' || *p == '+'),
				   "%ld:%ld:%lf%n", &h, &mi, &secs, &k) != 3)
				return false;
			p += (*p == '-' || *p == '+') + k;
			if (neg) {
				h = -h;
				mi = -mi;
				secs = -secs;
			}
		} else {
			long x = strtol(p, &end, 10);
			if (end == p || *end != ' ')
				return false;
			p = end + 1;
			int unit = !strncmp(p, "year", 4)  ? 0
				   : !strncmp(p, "mon", 3) ? 1
				   : !strncmp(p, "day", 3) ? 2
							   : -1;
			if (unit < 0)
				return false;
			ymd[unit] = x;
			p += strcspn(p, " ");
		}
		while (*p == ' ')
			p++;
	}
	/* PGInterval.setSeconds, then getSeconds */
	long whole = (long)secs;
	long micro = (long)floor((secs - (double)whole) * 1000000 + 0.5);
	double s = (double)whole + (double)micro / 1000000.0;
	if (o->interval_string) {
		char sb[400];
		snprintf(sb, sizeof(sb), "%.60f", s);
		char *dot = strchr(sb, '.');
		dot[10] = '\0'; /* RoundingMode.DOWN to 9 decimals */
		size_t l = strlen(sb);
		while (sb[l - 1] == '0')
			sb[--l] = '\0';
		if (sb[l - 1] == '.')
			sb[--l] = '\0';
		if (!strcmp(sb, "-0"))
			strcpy(sb, "0");
		snprintf(buf, n, "P%ldY%ldM%ldDT%ldH%ldM%sS", ymd[0], ymd[1],
			 ymd[2], h, mi, sb);
		return true;
	}
	double days = (double)(ymd[0] * 12 + ymd[1]) * (365.25 / 12.0) +
		      (double)ymd[2];
	double total = (((days * 24 + (double)h) * 60) + (double)mi) * 60 + s;
	double us = total * 1e6;
	/* Java's (long): toward zero, saturating */
	long long r = us >= 9223372036854775807.0    ? LLONG_MAX
		      : us <= -9223372036854775808.0 ? LLONG_MIN
						     : (long long)us;
	snprintf(buf, n, "%lld", r);
	return true;
}

/*
 * money as Debezium 1.9 reads it (PGmoney: a double) and writes it
 * (convertMoney): a Decimal of scale 2, the double, or the double's
 * Double.toString ("12.0").  The session's lc_monetary is C, so Postgres
 * writes "-$1,234.56".  The Decimal is taken from the text itself, exact
 * where Debezium's double is not (past 2^53 cents).  NULL when v does not
 * parse.
 */
static json_t *money_value(const struct cdc_opts *o, const char *v);

/* money's text as a number's ("-$1,234.56": "-1234.56") into num (n
 * bytes); false when it is not one. */
static bool money_num(const char *v, char *num, size_t n)
{
	size_t k = 0;
	for (const char *p = v; *p; p++) {
		if (*p == '$' || *p == ',')
			continue;
		if (k + 1 >= n || !(isdigit((unsigned char)*p) || *p == '.' ||
				    (*p == '-' && k == 0)))
			return false;
		num[k++] = *p;
	}
	num[k] = '\0';
	return k && isdigit((unsigned char)num[k - 1]);
}

static json_t *money_value(const struct cdc_opts *o, const char *v)
{
	char num[64];
	if (!money_num(v, num, sizeof(num)))
		return NULL;
	if (o->decimal == DEC_PRECISE) {
		int sc;
		return decimal_bytes(num, 2, &sc);
	}
	double d = strtod(num, NULL);
	if (o->decimal == DEC_DOUBLE)
		return json_real(d);
	char buf[64];
	cdc_java_double(d, false, buf, sizeof(buf));
	return json_string(buf);
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

/*
 * A double as JsonConverter holds it: a number, or for NaN and the
 * infinities the strings Jackson writes for them ("NaN", "Infinity",
 * "-Infinity"; jansson has no number for them).  The Avro encoder reads
 * such a string back as the double, Struct text prints the same words.
 */
static const char *nonfinite_name(double d)
{
	return isnan(d) ? "NaN" : d < 0 ? "-Infinity" : "Infinity";
}

static json_t *real_value(double d)
{
	if (isnan(d) || isinf(d))
		return json_string(nonfinite_name(d));
	return json_real(d);
}

/*
 * The text whose value stands for a null in a NOT NULL column (a delete's
 * or key change's before-image under REPLICA IDENTITY DEFAULT carries only
 * the key): JdbcValueConverters.convertValue gives the type's fallback
 * there, never a null under a required schema (JsonConverter refuses to
 * read one back).  0, false, "", empty bytes, the epoch; a numeric zero at
 * the column's scale, written to buf (n bytes; "0" when it is too short).
 */
static const char *fallback_text(const struct cdc_col *c, char *buf, size_t n)
{
	int scale = typmod_scale(c->typmod);
	switch (c->oid) {
	case OID_BOOL:
		return "f";
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
	case OID_FLOAT4:
	case OID_FLOAT8:
		return "0";
	case OID_NUMERIC:
		if (scale <= 0 || (size_t)scale + 3 > n)
			return "0";
		memset(buf, '0', (size_t)scale + 2);
		buf[1] = '.';
		buf[scale + 2] = '\0';
		return buf;
	case OID_DATE:
		return "1970-01-01";
	case OID_TIME:
		return "00:00:00";
	case OID_TIMESTAMP:
		return "1970-01-01 00:00:00";
	case OID_TIMESTAMPTZ:
		return "1970-01-01 00:00:00+00";
	case OID_TIMETZ:
		return "00:00:00+00";
	case OID_INTERVAL:
		return "00:00:00";
	case OID_MONEY:
		return "$0.00";
	case OID_BYTEA:
		return "\\x";
	default:
		return array_elem(c->oid) ? "{}" : "";
	}
}

/* A numeric under decimal.handling.mode=precise: a Decimal's bytes, or a
 * VariableScaleDecimal {scale, value} for an unconstrained numeric. */
static json_t *precise_decimal(const struct cdc_col *c, const char *v)
{
	int sc = 0;
	json_t *b = decimal_bytes(v, typmod_scale(c->typmod), &sc);
	if (!b) {
		/* SpecialValueDecimal.fromLogical's refusal, word for word */
		format_error("Got a special value (NaN/Infinity) for Decimal "
			     "type in column %s but current mode does not "
			     "handle it. If you need to support it then set "
			     "decimal handling mode to 'string'.",
			     c->name);
		return json_null();
	}
	if (typmod_scale(c->typmod) < 0)
		return json_pack("{s:i,s:o}", "scale", sc, "value", b);
	return b;
}

static bool unchanged_as_bytes(const struct cdc_opts *o,
			       const struct cdc_col *c)
{
	return c->oid == OID_BYTEA && !o->binary_base64;
}

/* A sub-array in place of an element (a multi-dimensional array). */
static const char array_nested[] = "{...}";

/*
 * The elements of Postgres's array text ("{1,NULL,\"b c\"}", maybe after
 * "[0:2]=" bounds) as texts into *out (malloc'd, each element too; NULL
 * for NULL; array_nested for a sub-array), their count in *n.  Quotes and
 * backslashes are undone as array_in does.  -1 when v is no array text or
 * memory runs out (nothing to free then).
 */
static int array_parse(const char *v, char ***out, size_t *n)
{
	if (*v == '[')
		v = strchr(v, '=') ? strchr(v, '=') + 1 : v;
	size_t len = strlen(v);
	if (len < 2 || v[0] != '{' || v[len - 1] != '}')
		return -1;
	char **el = calloc(len / 2 + 1, sizeof(*el)); /* ',' between each */
	char *buf = malloc(len + 1);
	size_t k = 0;
	const char *p = v + 1, *end = v + len - 1;
	bool ok = el && buf;
	while (ok && p < end) {
		size_t bl = 0;
		if (*p == '{') { /* a sub-array: skip it, quotes and all */
			int depth = 0;
			bool q = false;
			for (; p < end; p++) {
				if (q && *p == '\\' && p + 1 < end)
					p++;
				else if (*p == '"')
					q = !q;
				else if (!q && *p == '{')
					depth++;
				else if (!q && *p == '}' && --depth == 0) {
					p++;
					break;
				}
			}
			el[k++] = (char *)array_nested;
		} else {
			bool quoted = false, any_quote = false;
			for (; p < end && (quoted || *p != ','); p++) {
				if (*p == '\\' && p + 1 < end)
					buf[bl++] = *++p;
				else if (*p == '"') {
					quoted = !quoted;
					any_quote = true;
				} else
					buf[bl++] = *p;
			}
			while (!any_quote && bl &&
			       isspace((unsigned char)buf[bl - 1]))
				bl--;
			buf[bl] = '\0';
			if (!any_quote && strcasecmp(buf, "NULL") == 0) {
				el[k++] = NULL;
			} else {
				el[k] = strdup(buf);
				ok = el[k++] != NULL;
			}
		}
		if (p < end && *p == ',')
			p++;
		while (p < end && isspace((unsigned char)*p))
			p++;
	}
	free(buf);
	if (!ok) {
		for (size_t i = 0; el && i < k; i++)
			if (el[i] != array_nested)
				free(el[i]);
		free(el);
		return -1;
	}
	*out = el;
	*n = k;
	return 0;
}

static json_t *col_value(const struct cdc_opts *o, const struct cdc_col *c,
			 const char *v);

/*
 * An array column's value: a JSON array of its elements, each as its
 * element type's column value.  A sub-array's element is null, as
 * Debezium's element converters give for what they cannot read (its
 * handleUnknownData).  An unchanged TOASTed array is null, as Debezium
 * 1.9's convertArray makes of the placeholder ([] when NOT NULL).
 */
static json_t *array_value(const struct cdc_opts *o, const struct cdc_col *c,
			   const char *v)
{
	if (v == cdc_unchanged)
		return c->optional ? json_null() : json_array();
	char **el;
	size_t n;
	if (array_parse(v, &el, &n) < 0) {
		format_error("Cannot parse array value '%.200s' of column %s",
			     v, c->name);
		return json_null();
	}
	struct cdc_col ec;
	struct cdc_opts eo;
	array_elem_col(o, c, &ec, &eo);
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		if (el[i] == array_nested) {
			json_array_append_new(a, json_null());
			continue;
		}
		/* an element jansson refuses (a text that is not UTF-8, in a
		 * SQL_ASCII database) is a null in its place: left out, it
		 * moved the elements after it (json_array_append_new drops
		 * NULL) */
		json_t *e = col_value(&eo, &ec, el[i]);
		json_array_append_new(a, e ? e : json_null());
		free(el[i]);
	}
	free(el);
	return a;
}

static json_t *col_value(const struct cdc_opts *o, const struct cdc_col *c,
			 const char *v)
{
	char fb[1100];
	if (!v && c->optional)
		return json_null();
	if (!v)
		v = fallback_text(c, fb, sizeof(fb));
	if (v == cdc_unchanged && array_elem(c->oid))
		return array_value(o, c, v);
	if (v == cdc_unchanged)
		return json_string(unchanged_as_bytes(o, c) ? unchanged_b64
							    : cdc_unchanged);
	switch (c->oid) {
	case OID_BOOL:
		return json_boolean(v[0] == 't');
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		return json_integer(strtoll(v, NULL, 10));
	case OID_FLOAT4:
		return real_value((double)strtof(v, NULL));
	case OID_FLOAT8:
		return real_value(strtod(v, NULL));
	case OID_NUMERIC:
		if (o->decimal == DEC_DOUBLE)
			return real_value(strtod(v, NULL));
		if (o->decimal == DEC_STRING)
			return json_string(v);
		return precise_decimal(c, v);
	case OID_DATE:
	case OID_TIME:
	case OID_TIMESTAMP: {
		int64_t t;
		return temporal(o, c, v, &t) ? json_integer(t) : json_null();
	}
	case OID_TIMETZ:
		return zoned_time(v);
	case OID_MONEY: {
		json_t *m = money_value(o, v);
		if (!m)
			format_error("Cannot parse money value '%.200s' of "
				     "column %s",
				     v, c->name);
		return m ? m : json_null();
	}
	case OID_INTERVAL: {
		char buf[160];
		if (!interval_text(o, v, buf, sizeof(buf))) {
			format_error("Cannot parse interval value '%.200s' of "
				     "column %s",
				     v, c->name);
			return json_null();
		}
		if (o->interval_string)
			return json_string(buf);
		return json_integer(strtoll(buf, NULL, 10));
	}
	case OID_TIMESTAMPTZ: {
		char buf[128];
		zoned_timestamp(v, buf, sizeof(buf));
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
	case OID_TEXT:
	case OID_VARCHAR:
	case OID_BPCHAR:
		return json_string(v);
	default: /* arrays are looked for last: the common types come first */
		if (array_elem(c->oid))
			return array_value(o, c, v);
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
		if (in_row(&r->cols[i], keys))
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
		const json_t *items = json_object_get(schema, "items");
		json_array_foreach(v, i, x)
		{
			if (i)
				put(w, ",");
			write_json(w, x, items);
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
	case JSON_ARRAY: { /* Java's List.toString() */
		const json_t *items = json_object_get(schema, "items");
		size_t i;
		json_t *x;
		put(w, "[");
		json_array_foreach(v, i, x)
		{
			if (i)
				put(w, ", ");
			if (json_is_null(x))
				put(w, "null");
			else
				write_struct_text(w, x, items);
		}
		put(w, "]");
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

/* add.headers' names and texts take at most this many bytes. */
#define HEADERS_TEXT 2048
static int added_headers(const struct cdc_opts *o, const struct cdc_rel *r,
			 const struct cdc_change *ch, int64_t now,
			 struct cdc_header *h, int max, char *buf, size_t len);

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

int cdc_format_tree(const struct cdc_opts *o, const struct cdc_rel *r,
		    const struct cdc_change *ch, cdc_emit_fn emit, void *arg)
{
	char **keyrow = ch->op == 'd' ? ch->before : ch->after;
	json_t *key = NULL;
	format_err[0] = '\0';
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
	int64_t now = cdc_clock_ms();
	json_object_set_new(env, "ts_ms", json_integer(now));
	json_object_set_new(env, "transaction", json_null());

	json_t *value = env, *vschema = r->env_schema;
	json_t *owned_schema = NULL;
	if (o->unwrap) {
		value = unwrap(o, r, env, &owned_schema);
		vschema = owned_schema;
	}
	int n = format_err[0] ? -1 : 0;
	size_t kl = 0, vl = 0;
	const json_t *kschema = r->key_schema;
	if (value && n == 0) {
		char *k = convert(o->key_conv, o->key_schemas, kschema, key,
				  r->key_id, &kl);
		char *v = convert(o->value_conv, o->value_schemas, vschema,
				  value, r->value_id, &vl);
		if (kl == CONVERT_FAILED || vl == CONVERT_FAILED) {
			free(k);
			free(v);
			n = -1;
		} else {
			struct cdc_header h[CDC_MAX_HEADERS];
			char hbuf[HEADERS_TEXT];
			int nh = o->unwrap ? added_headers(o, r, ch, now, h,
							   CDC_MAX_HEADERS,
							   hbuf, sizeof(hbuf))
					   : 0;
			emit(arg, k, kl, v, vl, h, nh);
			n++;
		}
		free(k);
		free(v);
	}
	bool tomb = ch->op == 'd' && o->tombstones &&
		    !(o->unwrap && o->unwrap_drop_tombstones) && key;
	if (tomb && n >= 0) {
		char *k = convert(o->key_conv, o->key_schemas, kschema, key,
				  r->key_id, &kl);
		if (kl == CONVERT_FAILED) {
			n = -1;
		} else {
			emit(arg, k, kl, NULL, 0, NULL, 0);
			n++;
		}
		free(k);
	}
	if (value != env)
		json_decref(value);
	json_decref(env);
	json_decref(owned_schema);
	json_decref(key);
	return n;
}

const char *cdc_format_error(void)
{
	return format_err[0] ? format_err : NULL;
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
	emit(arg, k, kl, v, vl, NULL, 0);
	free(k);
	free(v);
	json_decref(key);
	json_decref(val);
	json_decref(ks);
	json_decref(vs);
}

/* --- direct rendering ---------------------------------------------------- */

/*
 * JsonConverter and StringConverter records written straight into a
 * reused buffer, the same bytes cdc_format_tree gives (the unit tests
 * compare the two): what stays the same from row to row (the schemas'
 * JSON, the escaped field names, the source struct's fixed fields) is
 * written once per relation change, and a change of the common types
 * costs no allocation: emit borrows the buffers.
 *
 * jansson's quirks are kept: a value jansson refuses (a text that is not
 * UTF-8) leaves its field out, as json_object_set_new does with a NULL
 * value.  Relations whose names jansson would refuse, or
 * where a transform's field repeats a column's name, keep the tree path.
 */

enum rmode { R_JSON, R_TEXT };

struct cdc_render {
	/* per column: the JSON key with its colon, e.g. "\"id\":" */
	char **jkey;
	size_t *jkeylen;
	char *key_schema, *value_schema; /* JsonConverter schemas, or NULL */
	size_t key_schema_len, value_schema_len;
	/* add.fields: "\"__op\":" and "__op=" */
	char **add_jkey;
	int nadd;
	/* the source struct's fixed parts */
	char *src_head_json, *src_db_json, *src_tbl_json;
	char *src_head_text, *src_db_text, *src_tbl_text;
};

/* A scratch buffer per side, reused from change to change (one thread). */
static struct kb_writer key_buf, value_buf;

static bool utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		uint32_t v;
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2;
			v = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3;
			v = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4;
			v = c & 0x07;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			v = (v << 6) | (s[i + k] & 0x3f);
		}
		if (v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ||
		    (len == 3 && v < 0x800) || (len == 4 && v < 0x10000))
			return false;
		i += len;
	}
	return true;
}

/* s as jansson writes a JSON string; false (nothing written) when jansson
 * would refuse it. */
static bool put_jstr(struct kb_writer *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	if (!utf8_valid(p, n))
		return false;
	kb_write_raw(w, "\"", 1);
	size_t run = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = p[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		kb_write_raw(w, p + run, i - run);
		run = i + 1;
		char seq[8];
		const char *e = seq;
		switch (c) {
		case '"':
			e = "\\\"";
			break;
		case '\\':
			e = "\\\\";
			break;
		case '\b':
			e = "\\b";
			break;
		case '\f':
			e = "\\f";
			break;
		case '\n':
			e = "\\n";
			break;
		case '\r':
			e = "\\r";
			break;
		case '\t':
			e = "\\t";
			break;
		default:
			snprintf(seq, sizeof(seq), "\\u%04X", c);
		}
		put(w, e);
	}
	kb_write_raw(w, p + run, n - run);
	kb_write_raw(w, "\"", 1);
	return true;
}

static void put_i64(struct kb_writer *w, int64_t v)
{
	char b[24];
	size_t k = sizeof(b);
	uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
	do {
		b[--k] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (v < 0)
		b[--k] = '-';
	kb_write_raw(w, b + k, sizeof(b) - k);
}

/* A column's value without a jansson tree where the type allows it. */
struct cval {
	enum {
		CV_NULL,
		CV_BOOL,
		CV_INT,
		CV_NUM, /* s, n: Postgres's text is the JSON number */
		CV_REAL,
		CV_STR,
		CV_TREE
	} k;
	int64_t i;
	double d;
	bool is_float;
	const char *s;
	size_t n;
	json_t *tree; /* owned */
	char buf[128];
};

static void cval_of(const struct cdc_opts *o, const struct cdc_col *c,
		    const char *v, struct cval *cv)
{
	cv->tree = NULL;
	cv->is_float = false;
	if (!v && c->optional) {
		cv->k = CV_NULL;
		return;
	}
	if (!v && c->oid == OID_NUMERIC) {
		cv->k = CV_TREE; /* the fallback text may not fit cv->buf */
		cv->tree = col_value(o, c, v);
		return;
	}
	if (!v) /* a literal: only a numeric's fallback needs the buffer */
		v = fallback_text(c, NULL, 0);
	cv->k = CV_STR;
	cv->s = v;
	if (v == cdc_unchanged && array_elem(c->oid))
		goto tree;
	if (v == cdc_unchanged && unchanged_as_bytes(o, c)) {
		cv->s = unchanged_b64;
		cv->n = sizeof(unchanged_b64) - 1;
		return;
	}
	if (v == cdc_unchanged) {
		cv->n = sizeof(cdc_unchanged) - 1;
		return;
	}
	switch (c->oid) {
	case OID_BOOL:
		cv->k = CV_BOOL;
		cv->i = v[0] == 't';
		return;
	case OID_INT2:
	case OID_INT4:
	case OID_INT8:
	case OID_OID:
		/* int2out..int8out, oidout: an optional '-' and digits without
		 * leading zeros, already a JSON number (parsing and printing it
		 * again took about a tenth of samsa's CPU in CDC). */
		cv->k = CV_NUM;
		cv->n = strlen(v);
		return;
	case OID_FLOAT4:
		cv->d = (double)strtof(v, NULL);
		cv->is_float = true;
		break;
	case OID_FLOAT8:
		cv->d = strtod(v, NULL);
		cv->is_float = false;
		break;
	case OID_NUMERIC:
		if (o->decimal == DEC_DOUBLE) {
			cv->d = strtod(v, NULL);
			cv->is_float = false;
			break;
		}
		if (o->decimal == DEC_STRING)
			goto text;
		goto tree;
	case OID_DATE:
	case OID_TIME:
	case OID_TIMESTAMP:
		cv->k = temporal(o, c, v, &cv->i) ? CV_INT : CV_NULL;
		return;
	case OID_TIMESTAMPTZ:
		zoned_timestamp(v, cv->buf, sizeof(cv->buf));
		cv->s = cv->buf;
		cv->n = strlen(cv->buf);
		return;
	case OID_BYTEA: {
		size_t n = strlen(v);
		if (n < 2 || v[0] != '\\' || v[1] != 'x')
			goto text;
		if (o->binary_hex) {
			cv->s = v + 2;
			cv->n = n - 2;
			return;
		}
		goto tree;
	}
	case OID_TIMETZ:
	case OID_INTERVAL:
	case OID_MONEY:
		goto tree;
	case OID_TEXT:
	case OID_VARCHAR:
	case OID_BPCHAR:
		goto text;
	default: /* arrays are looked for last: the common types come first */
		if (!array_elem(c->oid))
			goto text;
		/* a float4[]'s elements print as Java's floats */
		cv->is_float = array_elem(c->oid) == OID_FLOAT4;
		goto tree;
	}
	/* a real; NaN and the infinities as real_value writes them */
	cv->k = CV_REAL;
	if (isnan(cv->d) || isinf(cv->d)) {
		cv->k = CV_STR;
		cv->s = nonfinite_name(cv->d);
		cv->n = strlen(cv->s);
	}
	return;
text:
	cv->n = strlen(v);
	return;
tree:
	cv->k = CV_TREE;
	cv->tree = col_value(o, c, v);
}

/* {"type":"array","items":{"type":"float"}}, made once (one thread). */
static const json_t *float_array_schema(void)
{
	static json_t *s;
	if (!s)
		s = json_pack("{s:s,s:{s:s}}", "type", "array", "items", "type",
			      "float");
	return s;
}

/* Writes cv (and frees what it owns); false when the field is left out
 * (nothing written then). */
static bool put_cval(struct kb_writer *w, enum rmode m, struct cval *cv)
{
	char buf[64];
	switch (cv->k) {
	case CV_NULL:
		if (m == R_TEXT)
			return false;
		put(w, "null");
		return true;
	case CV_BOOL:
		put(w, cv->i ? "true" : "false");
		return true;
	case CV_INT:
		put_i64(w, cv->i);
		return true;
	case CV_NUM:
		kb_write_raw(w, cv->s, cv->n);
		return true;
	case CV_REAL:
		cdc_java_double(cv->d, cv->is_float, buf, sizeof(buf));
		put(w, buf);
		return true;
	case CV_STR:
		if (m == R_JSON)
			return put_jstr(w, cv->s, cv->n);
		if (!utf8_valid((const unsigned char *)cv->s, cv->n))
			return false;
		kb_write_raw(w, cv->s, cv->n);
		return true;
	case CV_TREE: {
		json_t *j = cv->tree;
		cv->tree = NULL;
		bool ok = j && !(m == R_TEXT && json_is_null(j));
		/* a float4[]'s elements print as Java's floats */
		const json_t *sc = cv->is_float ? float_array_schema() : NULL;
		if (ok && m == R_JSON)
			write_json(w, j, sc);
		else if (ok)
			write_struct_text(w, j, sc);
		json_decref(j);
		return ok;
	}
	}
	return false;
}

/* One field of a struct: comma, name, value; rolled back when the value
 * is left out.  *first: no field written yet. */
static void put_field(struct kb_writer *w, enum rmode m, const char *jkey,
		      size_t jkeylen, const char *name, struct cval *cv,
		      bool *first)
{
	size_t mark = w->len;
	if (!*first)
		kb_write_raw(w, ",", 1);
	if (m == R_JSON) {
		kb_write_raw(w, jkey, jkeylen);
	} else {
		put(w, name);
		kb_write_raw(w, "=", 1);
	}
	if (put_cval(w, m, cv))
		*first = false;
	else
		w->len = mark;
}

static void open_struct(struct kb_writer *w, enum rmode m)
{
	put(w, m == R_JSON ? "{" : "Struct{");
}

/* row's columns (the key columns only: keys), as fields of the struct
 * already open. */
static void put_columns(struct kb_writer *w, enum rmode m,
			const struct cdc_opts *o, const struct cdc_rel *r,
			char **row, bool keys, bool *first)
{
	const struct cdc_render *R = r->render;
	for (int i = 0; i < r->ncols; i++) {
		if (!in_row(&r->cols[i], keys))
			continue;
		struct cval cv;
		cval_of(o, &r->cols[i], row[i], &cv);
		put_field(w, m, R->jkey[i], R->jkeylen[i], r->cols[i].name, &cv,
			  first);
	}
}

/* Whether row's values would all be written (format_err says which is
 * not), for an image the transform leaves out. */
/* Whether decimal_bytes takes a numeric's text (not NaN or an infinity). */
static bool decimal_digits(const char *v)
{
	bool dot = false;
	for (const char *p = v + (*v == '-' || *v == '+'); *p; p++)
		if (*p == '.' && !dot)
			dot = true;
		else if (!isdigit((unsigned char)*p))
			return false;
	return true;
}

/* Whether v is sure to be written without an error, found without the
 * jansson tree cval_of would build for it (false: ask cval_of, which
 * says why). */
static bool value_fine(const struct cdc_opts *o, const struct cdc_col *c,
		       const char *v)
{
	char buf[160];
	if (!v || v == cdc_unchanged)
		return true;
	switch (c->oid) {
	case OID_NUMERIC:
		return o->decimal != DEC_PRECISE || decimal_digits(v);
	case OID_MONEY:
		return money_num(v, buf, 64) &&
		       (o->decimal != DEC_PRECISE || decimal_digits(buf));
	case OID_INTERVAL:
		return interval_text(o, v, buf, sizeof(buf));
	default:
		return false;
	}
}

static void check_row(const struct cdc_opts *o, const struct cdc_rel *r,
		      char **row)
{
	for (int i = 0; i < r->ncols; i++) {
		uint32_t oid = r->cols[i].oid;
		if (!in_row(&r->cols[i], false) ||
		    (oid != OID_DATE && oid != OID_TIME &&
		     oid != OID_TIMESTAMP && oid != OID_NUMERIC &&
		     oid != OID_INTERVAL && oid != OID_MONEY &&
		     !array_elem(oid)))
			continue;
		if (value_fine(o, &r->cols[i], row[i]))
			continue;
		struct cval cv;
		cval_of(o, &r->cols[i], row[i], &cv);
		json_decref(cv.tree);
	}
}

/* The per-change parts of the source struct. */
struct src_vals {
	const char *snapshot;
	char seq[80]; /* "" when null */
};

static void src_vals_of(const struct cdc_change *ch, struct src_vals *s)
{
	s->snapshot = !ch->snapshot	  ? "false"
		      : ch->last_snapshot ? "last"
					  : "true";
	s->seq[0] = '\0';
	if (!ch->snapshot)
		snprintf(s->seq, sizeof(s->seq), "[\"%llu\",\"%llu\"]",
			 (unsigned long long)ch->commit_lsn,
			 (unsigned long long)ch->lsn);
}

static void put_source(struct kb_writer *w, enum rmode m,
		       const struct cdc_render *R, const struct cdc_change *ch,
		       const struct src_vals *s)
{
	if (m == R_JSON) {
		put(w, R->src_head_json);
		put_i64(w, ch->commit_ms);
		put(w, ",\"snapshot\":\"");
		put(w, s->snapshot);
		put(w, "\"");
		put(w, R->src_db_json);
		if (s->seq[0])
			put_jstr(w, s->seq, strlen(s->seq));
		else
			put(w, "null");
		put(w, R->src_tbl_json);
		if (ch->xid >= 0)
			put_i64(w, ch->xid);
		else
			put(w, "null");
		put(w, ",\"lsn\":");
		put_i64(w, (int64_t)ch->lsn);
		put(w, ",\"xmin\":null}");
	} else {
		put(w, R->src_head_text);
		put_i64(w, ch->commit_ms);
		put(w, ",snapshot=");
		put(w, s->snapshot);
		put(w, R->src_db_text);
		if (s->seq[0]) {
			put(w, ",sequence=");
			put(w, s->seq);
		}
		put(w, R->src_tbl_text);
		if (ch->xid >= 0) {
			put(w, ",txId=");
			put_i64(w, ch->xid);
		}
		put(w, ",lsn=");
		put_i64(w, (int64_t)ch->lsn);
		put(w, "}");
	}
}

/* A row struct, or null (left out in text) when row is NULL. */
static void put_row_field(struct kb_writer *w, enum rmode m, const char *name,
			  const struct cdc_opts *o, const struct cdc_rel *r,
			  char **row, bool *first)
{
	if (!row && m == R_TEXT)
		return;
	if (!*first)
		put(w, ",");
	*first = false;
	if (m == R_JSON) {
		put(w, "\"");
		put(w, name);
		put(w, "\":");
	} else {
		put(w, name);
		put(w, "=");
	}
	if (!row) {
		put(w, "null");
		return;
	}
	bool f = true;
	open_struct(w, m);
	put_columns(w, m, o, r, row, false, &f);
	put(w, "}");
}

static void put_envelope(struct kb_writer *w, enum rmode m,
			 const struct cdc_opts *o, const struct cdc_rel *r,
			 const struct cdc_change *ch, int64_t now)
{
	struct src_vals s;
	src_vals_of(ch, &s);
	bool first = true;
	open_struct(w, m);
	put_row_field(w, m, "before", o, r, ch->op == 't' ? NULL : ch->before,
		      &first);
	put_row_field(w, m, "after", o, r, ch->after, &first);
	if (!first)
		put(w, ",");
	put(w, m == R_JSON ? "\"source\":" : "source=");
	put_source(w, m, r->render, ch, &s);
	if (m == R_JSON) {
		put(w, ",\"op\":\"");
		kb_write_raw(w, &ch->op, 1);
		put(w, "\",\"ts_ms\":");
		put_i64(w, now);
		put(w, ",\"transaction\":null}");
	} else {
		put(w, ",op=");
		kb_write_raw(w, &ch->op, 1);
		put(w, ",ts_ms=");
		put_i64(w, now);
		put(w, "}");
	}
}

static const char *const op_names[] = {"c", "u", "d", "r", "t"};

/* The op letter as a string that outlives the call. */
static const char *op_name(char op)
{
	for (size_t i = 0; i < sizeof(op_names) / sizeof(*op_names); i++)
		if (op_names[i][0] == op)
			return op_names[i];
	return "";
}

/*
 * The value ExtractNewRecordState's add.fields and add.headers give name
 * ("op", "ts_ms", "source.<field>") for change ch; null for a name the
 * envelope lacks.  now: the envelope's ts_ms.
 */
static void added_value(const struct cdc_opts *o, const struct cdc_rel *r,
			const struct cdc_change *ch, const struct src_vals *s,
			int64_t now, const char *name, struct cval *cv)
{
	const char *leaf = strncmp(name, "source.", 7) == 0 ? name + 7 : name;
	*cv = (struct cval){.k = CV_NULL};
	if (strcmp(name, "op") == 0) {
		cv->k = CV_STR;
		cv->s = op_name(ch->op);
	} else if (strcmp(name, "ts_ms") == 0) {
		cv->k = CV_INT;
		cv->i = now;
	} else if (strcmp(leaf, "version") == 0) {
		cv->k = CV_STR;
		cv->s = "1.9.7.Final";
	} else if (strcmp(leaf, "connector") == 0) {
		cv->k = CV_STR;
		cv->s = "postgresql";
	} else if (strcmp(leaf, "name") == 0) {
		cv->k = CV_STR;
		cv->s = o->prefix;
	} else if (strcmp(leaf, "ts_ms") == 0) {
		cv->k = CV_INT;
		cv->i = ch->commit_ms;
	} else if (strcmp(leaf, "snapshot") == 0) {
		cv->k = CV_STR;
		cv->s = s->snapshot;
	} else if (strcmp(leaf, "db") == 0) {
		cv->k = CV_STR;
		cv->s = o->dbname;
	} else if (strcmp(leaf, "sequence") == 0) {
		if (s->seq[0]) {
			cv->k = CV_STR;
			cv->s = s->seq;
		}
	} else if (strcmp(leaf, "schema") == 0) {
		cv->k = CV_STR;
		cv->s = r->schema;
	} else if (strcmp(leaf, "table") == 0) {
		cv->k = CV_STR;
		cv->s = r->table;
	} else if (strcmp(leaf, "txId") == 0) {
		if (ch->xid >= 0) {
			cv->k = CV_INT;
			cv->i = ch->xid;
		}
	} else if (strcmp(leaf, "lsn") == 0) {
		cv->k = CV_INT;
		cv->i = (int64_t)ch->lsn;
	}
	if (cv->k == CV_STR)
		cv->n = strlen(cv->s);
}

/*
 * add.headers: the headers ExtractNewRecordState puts on ch's record,
 * "__<name>" ('.' as '_') with the value as Connect's SimpleHeaderConverter
 * writes it (text; null stays null).  Names and texts go to buf; returns
 * how many (at most max).
 */
static int added_headers(const struct cdc_opts *o, const struct cdc_rel *r,
			 const struct cdc_change *ch, int64_t now,
			 struct cdc_header *h, int max, char *buf, size_t len)
{
	struct src_vals s;
	src_vals_of(ch, &s);
	int n = 0;
	size_t used = 0;
	for (char **f = o->add_headers; f && *f && n < max; f++) {
		struct cval cv;
		added_value(o, r, ch, &s, now, *f, &cv);
		char *name = buf + used;
		add_field_name(*f, name, len - used);
		used += strlen(name) + 1;
		h[n].key = (struct kstr){name, (int32_t)strlen(name)};
		h[n].value = KSTR_NULL;
		/* The text goes to buf: some values live in s, this frame's. */
		int k = used >= len	 ? -1
			: cv.k == CV_STR ? snprintf(buf + used, len - used,
						    "%.*s", (int)cv.n, cv.s)
			: cv.k == CV_INT ? snprintf(buf + used, len - used,
						    "%lld", (long long)cv.i)
					 : 0;
		if (k < 0 || used + (size_t)k >= len)
			break;
		if (cv.k == CV_STR || cv.k == CV_INT) {
			h[n].value = (struct kstr){buf + used, k};
			used += (size_t)k + 1;
		}
		n++;
	}
	return n;
}

/* ExtractNewRecordState's value of row (not NULL). */
static void put_unwrapped(struct kb_writer *w, enum rmode m,
			  const struct cdc_opts *o, const struct cdc_rel *r,
			  const struct cdc_change *ch, char **row, int64_t now)
{
	const struct cdc_render *R = r->render;
	struct src_vals s;
	if (R->nadd)
		src_vals_of(ch, &s);
	bool first = true;
	open_struct(w, m);
	put_columns(w, m, o, r, row, false, &first);
	for (int i = 0; i < R->nadd; i++) {
		struct cval cv;
		added_value(o, r, ch, &s, now, o->add_fields[i], &cv);
		char fname[128];
		add_field_name(o->add_fields[i], fname, sizeof(fname));
		put_field(w, m, R->add_jkey[i], strlen(R->add_jkey[i]), fname,
			  &cv, &first);
	}
	if (o->unwrap_delete == DEL_REWRITE) {
		struct cval cv = {.k = CV_STR};
		cv.s = ch->op == 'd' ? "true" : "false";
		cv.n = strlen(cv.s);
		put_field(w, m, "\"__deleted\":", 12, "__deleted", &cv, &first);
	}
	put(w, "}");
}

/* The converter's frame around a payload the callback writes. */
static void begin_conv(struct kb_writer *w, enum cdc_conv conv, bool schemas,
		       const char *schema, size_t schema_len)
{
	w->len = 0;
	w->failed = false;
	if (conv == CONV_JSON && schemas) {
		put(w, "{\"schema\":");
		if (schema)
			kb_write_raw(w, schema, schema_len);
		else
			put(w, "null");
		put(w, ",\"payload\":");
	}
}

static void end_conv(struct kb_writer *w, enum cdc_conv conv, bool schemas)
{
	if (conv == CONV_JSON && schemas)
		put(w, "}");
}

/* w's bytes for emit: NULL (a null, as the tree path gives) when memory
 * ran out. */
static const char *bytes_of(const struct kb_writer *w, size_t *len)
{
	*len = kb_writer_ok(w) ? w->len : 0;
	return kb_writer_ok(w) ? (const char *)w->buf : NULL;
}

int cdc_format(const struct cdc_opts *o, const struct cdc_rel *r,
	       const struct cdc_change *ch, cdc_emit_fn emit, void *arg)
{
	const struct cdc_render *R = r->render;
	if (!R)
		return cdc_format_tree(o, r, ch, emit, arg);
	format_err[0] = '\0';
	char **keyrow = ch->op == 'd' ? ch->before : ch->after;
	bool has_key = false;
	if (r->key_schema && ch->op != 't') {
		if (!keyrow) /* a delete under REPLICA IDENTITY NOTHING */
			return 0;
		has_key = true;
	}
	enum rmode km = o->key_conv == CONV_STRING ? R_TEXT : R_JSON;
	enum rmode vm = o->value_conv == CONV_STRING ? R_TEXT : R_JSON;
	int64_t now = cdc_clock_ms();
	/* The value: the envelope, the transform's row, null or none. */
	bool have_value = true, null_value = false;
	char **row = NULL;
	if (o->unwrap) {
		bool deleted = ch->op == 'd';
		if (ch->op == 't' || (deleted && o->unwrap_delete == DEL_DROP))
			have_value = false;
		else if (deleted && o->unwrap_delete == DEL_NONE)
			null_value = true;
		else if (!(row = deleted ? ch->before : ch->after))
			have_value = false;
	}
	if (have_value && !null_value) {
		begin_conv(&value_buf, o->value_conv, o->value_schemas,
			   R->value_schema, R->value_schema_len);
		if (o->unwrap)
			put_unwrapped(&value_buf, vm, o, r, ch, row, now);
		else
			put_envelope(&value_buf, vm, o, r, ch, now);
		end_conv(&value_buf, o->value_conv, o->value_schemas);
	}
	if (has_key) {
		begin_conv(&key_buf, o->key_conv, o->key_schemas, R->key_schema,
			   R->key_schema_len);
		bool first = true;
		open_struct(&key_buf, km);
		put_columns(&key_buf, km, o, r, keyrow, true, &first);
		put(&key_buf, "}");
		end_conv(&key_buf, o->key_conv, o->key_schemas);
	}
	/* Debezium converts both images before the transform drops one: a
	 * value it refuses there stops the change too. */
	if (o->unwrap && ch->before && row != ch->before)
		check_row(o, r, ch->before);
	if (format_err[0])
		return -1;
	int n = 0;
	size_t kl = 0, vl = 0;
	const char *k = has_key ? bytes_of(&key_buf, &kl) : NULL;
	if (have_value) {
		const char *v = null_value ? NULL : bytes_of(&value_buf, &vl);
		struct cdc_header h[CDC_MAX_HEADERS];
		char hbuf[HEADERS_TEXT];
		int nh = o->unwrap ? added_headers(o, r, ch, now, h,
						   CDC_MAX_HEADERS, hbuf,
						   sizeof(hbuf))
				   : 0;
		emit(arg, k, kl, v, vl, h, nh);
		n++;
	}
	if (ch->op == 'd' && o->tombstones &&
	    !(o->unwrap && o->unwrap_drop_tombstones) && has_key) {
		emit(arg, k, kl, NULL, 0, NULL, 0);
		n++;
	}
	return n;
}

/* jkey: "\"name\":" (NULL when jansson would refuse name). */
static char *json_key(const char *name)
{
	struct kb_writer w;
	kb_writer_init(&w);
	if (!put_jstr(&w, name, strlen(name))) {
		kb_writer_free(&w);
		return NULL;
	}
	kb_write_raw(&w, ":", 2); /* with the terminating NUL */
	if (!kb_writer_ok(&w)) {
		kb_writer_free(&w);
		return NULL;
	}
	return (char *)w.buf;
}

/* A malloc'd text of pieces: JSON strings escaped (NULL: refused). */
static char *src_part(bool json, const char *fmt_head, const char *a,
		      const char *mid, const char *b, const char *tail)
{
	struct kb_writer w;
	kb_writer_init(&w);
	put(&w, fmt_head);
	bool ok = true;
	if (json) {
		ok &= put_jstr(&w, a, strlen(a));
	} else {
		ok &= utf8_valid((const unsigned char *)a, strlen(a));
		put(&w, a);
	}
	if (mid) {
		put(&w, mid);
		if (json) {
			ok &= put_jstr(&w, b, strlen(b));
		} else {
			ok &= utf8_valid((const unsigned char *)b, strlen(b));
			put(&w, b);
		}
	}
	put(&w, tail);
	kb_write_raw(&w, "", 1);
	if (!ok || !kb_writer_ok(&w)) {
		kb_writer_free(&w);
		return NULL;
	}
	return (char *)w.buf;
}

static char *schema_text(const json_t *schema, size_t *len)
{
	struct kb_writer w;
	kb_writer_init(&w);
	write_json(&w, schema, NULL);
	if (!kb_writer_ok(&w)) {
		kb_writer_free(&w);
		return NULL;
	}
	*len = w.len;
	kb_write_raw(&w, "", 1);
	return (char *)w.buf;
}

static struct cdc_render *render_new(const struct cdc_opts *o,
				     const struct cdc_rel *r)
{
	if (o->key_conv == CONV_AVRO || o->value_conv == CONV_AVRO)
		return NULL;
	struct cdc_render *R = calloc(1, sizeof(*R));
	if (!R)
		return NULL;
	struct cdc_rel tmp = *r;
	tmp.render = R; /* for render_free on failure */
	bool ok = true;
	R->jkey = calloc((size_t)r->ncols + 1, sizeof(char *));
	R->jkeylen = calloc((size_t)r->ncols + 1, sizeof(size_t));
	ok &= R->jkey && R->jkeylen;
	/* every name a field may take, to find repeats (jansson would
	 * replace the earlier field's value) */
	int nadd = 0;
	for (char **f = o->add_fields; f && *f; f++)
		nadd++;
	R->nadd = nadd;
	R->add_jkey = calloc((size_t)nadd + 1, sizeof(char *));
	ok &= R->add_jkey != NULL;
	for (int i = 0; ok && i < r->ncols; i++) {
		R->jkey[i] = json_key(r->cols[i].name);
		ok &= R->jkey[i] != NULL;
		if (ok)
			R->jkeylen[i] = strlen(R->jkey[i]);
		for (int j = 0; ok && j < i; j++)
			ok &= strcmp(r->cols[i].name, r->cols[j].name) != 0;
	}
	for (int i = 0; ok && i < nadd; i++) {
		char fname[128];
		add_field_name(o->add_fields[i], fname, sizeof(fname));
		R->add_jkey[i] = json_key(fname);
		ok &= R->add_jkey[i] != NULL;
		for (int j = 0; ok && j < r->ncols; j++)
			ok &= strcmp(fname, r->cols[j].name) != 0;
		for (int j = 0; ok && j < i; j++) {
			char other[128];
			add_field_name(o->add_fields[j], other, sizeof(other));
			ok &= strcmp(fname, other) != 0;
		}
		ok &= strcmp(fname, "__deleted") != 0 ||
		      o->unwrap_delete != DEL_REWRITE;
	}
	for (int j = 0; ok && j < r->ncols; j++)
		ok &= strcmp(r->cols[j].name, "__deleted") != 0 ||
		      o->unwrap_delete != DEL_REWRITE;
	if (ok) {
		R->src_head_json =
			src_part(true,
				 "{\"version\":\"1.9.7.Final\",\"connector\":"
				 "\"postgresql\",\"name\":",
				 o->prefix, NULL, NULL, ",\"ts_ms\":");
		R->src_db_json = src_part(true, ",\"db\":", o->dbname, NULL,
					  NULL, ",\"sequence\":");
		R->src_tbl_json =
			src_part(true, ",\"schema\":", r->schema,
				 ",\"table\":", r->table, ",\"txId\":");
		R->src_head_text = src_part(
			false,
			"Struct{version=1.9.7.Final,connector=postgresql,"
			"name=",
			o->prefix, NULL, NULL, ",ts_ms=");
		R->src_db_text =
			src_part(false, ",db=", o->dbname, NULL, NULL, "");
		R->src_tbl_text = src_part(false, ",schema=", r->schema,
					   ",table=", r->table, "");
		ok &= R->src_head_json && R->src_db_json && R->src_tbl_json &&
		      R->src_head_text && R->src_db_text && R->src_tbl_text;
	}
	if (ok && o->key_conv == CONV_JSON && o->key_schemas && r->key_schema) {
		R->key_schema = schema_text(r->key_schema, &R->key_schema_len);
		ok &= R->key_schema != NULL;
	}
	if (ok && o->value_conv == CONV_JSON && o->value_schemas) {
		json_t *vs = cdc_value_schema(o, r);
		R->value_schema = schema_text(vs, &R->value_schema_len);
		json_decref(vs);
		ok &= R->value_schema != NULL;
	}
	if (!ok) {
		render_free(&tmp);
		return NULL;
	}
	return R;
}

/* Frees rel->render only (NULL-safe); rel->render is NULL after. */
static void render_free(struct cdc_rel *rel)
{
	struct cdc_render *R = rel->render;
	if (!R)
		return;
	for (int i = 0; R->jkey && i < rel->ncols; i++)
		free(R->jkey[i]);
	free(R->jkey);
	free(R->jkeylen);
	for (int i = 0; R->add_jkey && i < R->nadd; i++)
		free(R->add_jkey[i]);
	free(R->add_jkey);
	free(R->key_schema);
	free(R->value_schema);
	free(R->src_head_json);
	free(R->src_db_json);
	free(R->src_tbl_json);
	free(R->src_head_text);
	free(R->src_db_text);
	free(R->src_tbl_text);
	free(R);
	rel->render = NULL;
}
