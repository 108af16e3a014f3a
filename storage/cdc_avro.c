/*
 * cdc_avro: Confluent's AvroConverter for the change data capture source
 * (storage/cdc_int.h): a Connect schema, in JsonConverter's JSON form as
 * cdc_event.c builds it, becomes the Avro schema AvroData.fromConnectSchema
 * makes of it, written as Avro Java's Schema.toString() writes it; a value
 * becomes Avro binary under that schema.
 *
 * AvroData's rules, as its source states them:
 * - a Connect name "a.b.X" is record "X" in namespace "a.b"; an unnamed
 *   struct is "ConnectDefault" in "io.confluent.connect.avro";
 * - INT8/INT16 are Avro int with "connect.type"; INT32 int, INT64 long,
 *   FLOAT32 float, FLOAT64 double, BYTES bytes, STRING string;
 * - Decimal is bytes with "scale" and "precision" (64 when Connect has
 *   none) and logicalType decimal; Connect Date, Time and Timestamp get the
 *   logical types date, time-millis and timestamp-millis;
 * - then, in this order, "connect.doc", "connect.version",
 *   "connect.parameters", "connect.default", "connect.name",
 *   "connect.type", then "logicalType";
 * - an optional schema is the union ["null", T], or [T, "null"] when it has
 *   a default; an optional struct is always ["null", record];
 * - a field's default is the Connect default, else null when optional;
 * - a record met again (the envelope's "after" after "before") is written
 *   as its name, relative to the enclosing namespace, as Avro Java does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/kbuf.h"
#include "storage/cdc_int.h"

#define DEFAULT_NS   "io.confluent.connect.avro"
#define DEFAULT_NAME "ConnectDefault"

static const char *str(const json_t *s, const char *key)
{
	return json_string_value(json_object_get(s, key));
}

static bool is_optional(const json_t *s)
{
	return json_is_true(json_object_get(s, "optional"));
}

static bool has_default(const json_t *s)
{
	const json_t *d = json_object_get(s, "default");
	return d && !json_is_null(d);
}

/* --- schemas ----------------------------------------------------------- */

struct actx {
	json_t *defined; /* full names already written: object used as set */
	const char *space;
};

/* The record's full name, its namespace (NULL: none) and its name. */
static void names_of(const json_t *s, char *full, size_t n, char *ns,
		     size_t nsn, const char **name)
{
	const char *cn = str(s, "name");
	if (!cn) {
		snprintf(full, n, "%s.%s", DEFAULT_NS, DEFAULT_NAME);
		snprintf(ns, nsn, "%s", DEFAULT_NS);
		*name = DEFAULT_NAME;
		return;
	}
	snprintf(full, n, "%s", cn);
	const char *dot = strrchr(cn, '.');
	if (dot) {
		snprintf(ns, nsn, "%.*s", (int)(dot - cn), cn);
		*name = dot + 1;
	} else {
		ns[0] = '\0';
		*name = cn;
	}
}

static json_t *avro_schema(struct actx *c, const json_t *s,
			   bool ignore_optional);

/* AvroData's connect.* properties onto obj. */
static void connect_props(json_t *obj, const json_t *s, const char *ctype)
{
	const char *doc = str(s, "doc");
	if (doc)
		json_object_set_new(obj, "connect.doc", json_string(doc));
	json_t *ver = json_object_get(s, "version");
	if (json_is_integer(ver))
		json_object_set_new(obj, "connect.version",
				    json_integer(json_integer_value(ver)));
	json_t *params = json_object_get(s, "parameters");
	if (json_is_object(params) && json_object_size(params))
		json_object_set_new(obj, "connect.parameters",
				    json_deep_copy(params));
	if (has_default(s))
		json_object_set_new(
			obj, "connect.default",
			json_deep_copy(json_object_get(s, "default")));
	const char *name = str(s, "name");
	if (name)
		json_object_set_new(obj, "connect.name", json_string(name));
	if (ctype)
		json_object_set_new(obj, "connect.type", json_string(ctype));
}

static json_t *record_schema(struct actx *c, const json_t *s)
{
	char full[1024], ns[1024];
	const char *name;
	names_of(s, full, sizeof(full), ns, sizeof(ns), &name);
	if (json_object_get(c->defined, full)) {
		/* Known: its name, short when in the enclosing namespace. */
		if (ns[0] && c->space && strcmp(ns, c->space) == 0)
			return json_string(name);
		if (!ns[0] && !c->space)
			return json_string(name);
		return json_string(full);
	}
	json_object_set_new(c->defined, full, json_true());
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string("record"));
	json_object_set_new(o, "name", json_string(name));
	if (ns[0]) {
		if (!c->space || strcmp(ns, c->space) != 0)
			json_object_set_new(o, "namespace", json_string(ns));
	} else if (c->space) {
		json_object_set_new(o, "namespace", json_string(""));
	}
	const char *saved = c->space;
	c->space = ns[0] ? ns : NULL; /* the fields' enclosing namespace */
	json_t *fields = json_array();
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(s, "fields"), i, f)
	{
		json_t *af = json_object();
		json_object_set_new(
			af, "name",
			json_string(str(f, "field") ? str(f, "field") : ""));
		json_object_set_new(af, "type", avro_schema(c, f, false));
		if (has_default(f))
			json_object_set_new(
				af, "default",
				json_deep_copy(json_object_get(f, "default")));
		else if (is_optional(f))
			json_object_set_new(af, "default", json_null());
		json_array_append_new(fields, af);
	}
	c->space = saved;
	json_object_set_new(o, "fields", fields);
	connect_props(o, s, NULL);
	return o;
}

static json_t *avro_schema(struct actx *c, const json_t *s,
			   bool ignore_optional)
{
	const char *type = str(s, "type");
	const char *name = str(s, "name");
	if (!type)
		type = "string";
	if (strcmp(type, "struct") == 0) {
		if (is_optional(s))
			return json_pack("[s,o]", "null", record_schema(c, s));
		return record_schema(c, s);
	}
	if (strcmp(type, "array") == 0) {
		/* AvroData: an array of the items' schema (optional items:
		 * a union), then the optional union around it */
		json_t *a = json_object();
		json_object_set_new(a, "type", json_string("array"));
		json_object_set_new(
			a, "items",
			avro_schema(c, json_object_get(s, "items"), false));
		connect_props(a, s, NULL);
		if (ignore_optional || !is_optional(s))
			return a;
		return json_pack("[s,o]", "null", a);
	}
	const char *base = type, *ctype = NULL;
	if (!strcmp(type, "int8") || !strcmp(type, "int16")) {
		ctype = type;
		base = "int";
	} else if (!strcmp(type, "int32"))
		base = "int";
	else if (!strcmp(type, "int64"))
		base = "long";
	/* float, double, boolean, string, bytes keep their names */
	json_t *o = json_object();
	json_object_set_new(o, "type", json_string(base));
	bool decimal =
		name &&
		strcmp(name, "org.apache.kafka.connect.data.Decimal") == 0;
	json_t *params = json_object_get(s, "parameters");
	if (decimal) {
		const char *sc = str(params, "scale");
		const char *pr = str(params, "connect.decimal.precision");
		json_object_set_new(o, "scale",
				    json_integer(sc ? atoi(sc) : 0));
		json_object_set_new(o, "precision",
				    json_integer(pr ? atoi(pr) : 64));
	}
	connect_props(o, s, ctype);
	const char *logical = NULL;
	if (decimal)
		logical = "decimal";
	else if (name && !strcmp(name, "org.apache.kafka.connect.data.Time"))
		logical = "time-millis";
	else if (name &&
		 !strcmp(name, "org.apache.kafka.connect.data.Timestamp"))
		logical = "timestamp-millis";
	else if (name && !strcmp(name, "org.apache.kafka.connect.data.Date"))
		logical = "date";
	if (logical)
		json_object_set_new(o, "logicalType", json_string(logical));
	json_t *t = o;
	if (json_object_size(o) == 1) { /* no properties: the bare name */
		t = json_string(base);
		json_decref(o);
	}
	if (ignore_optional || !is_optional(s))
		return t;
	if (has_default(s))
		return json_pack("[o,s]", t, "null");
	return json_pack("[s,o]", "null", t);
}

char *cdc_avro_schema(const json_t *connect)
{
	struct actx c = {json_object(), NULL};
	json_t *a = avro_schema(&c, connect, false);
	json_decref(c.defined);
	char *text = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY);
	json_decref(a);
	return text;
}

/* --- values ------------------------------------------------------------ */

static int b64val(int ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	if (ch == '+')
		return 62;
	if (ch == '/')
		return 63;
	return -1;
}

/* Bytes are base64 in the JSON form (the unchanged TOAST placeholder too);
 * a text that is not goes as its own bytes.  -1 when memory runs out. */
static int write_bytes(struct kb_writer *w, const char *s, size_t n)
{
	uint8_t *out = malloc(n / 4 * 3 + 3);
	if (!out)
		return -1;
	size_t k = 0;
	bool ok = n % 4 == 0;
	for (size_t i = 0; ok && i < n; i += 4) {
		int v[4];
		for (int j = 0; j < 4; j++) {
			v[j] = s[i + j] == '=' ? 0 : b64val(s[i + j]);
			if (v[j] < 0)
				ok = false;
		}
		if (!ok)
			break;
		uint32_t x = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
			     (uint32_t)v[2] << 6 | (uint32_t)v[3];
		out[k++] = (uint8_t)(x >> 16);
		if (s[i + 2] != '=')
			out[k++] = (uint8_t)(x >> 8);
		if (s[i + 3] != '=')
			out[k++] = (uint8_t)x;
	}
	if (ok) {
		kb_write_varlong(w, (int64_t)k);
		kb_write_raw(w, out, k);
	} else {
		kb_write_varlong(w, (int64_t)n);
		kb_write_raw(w, s, n);
	}
	free(out);
	return 0;
}

static int encode(struct kb_writer *w, const json_t *s, const json_t *v,
		  bool ignore_optional);

/* A float or double of the JSON form: a number, or NaN and the infinities
 * as the strings cdc_event.c writes for them ("NaN", "-Infinity"). */
static double real_of(const json_t *v)
{
	if (json_is_string(v))
		return strtod(json_string_value(v), NULL);
	return json_number_value(v);
}

static int encode_base(struct kb_writer *w, const json_t *s, const json_t *v)
{
	const char *type = str(s, "type");
	if (!type)
		type = "string";
	if (!v || json_is_null(v)) {
		/* A required column the change does not carry (a delete's
		 * before under REPLICA IDENTITY DEFAULT): Debezium's value
		 * converters put the type's fallback there, 0, "" or false. */
		v = NULL;
	}
	if (!strcmp(type, "struct")) {
		size_t i;
		json_t *f;
		json_array_foreach(json_object_get(s, "fields"), i, f)
		{
			const char *fn = str(f, "field");
			if (encode(w, f, fn ? json_object_get(v, fn) : NULL,
				   false) < 0)
				return -1;
		}
		return 0;
	}
	if (!strcmp(type, "array")) {
		/* one block of all the items, then the empty block */
		if (v && !json_is_array(v))
			return -1;
		const json_t *items = json_object_get(s, "items");
		size_t i, n = json_array_size(v);
		json_t *x;
		if (n)
			kb_write_varlong(w, (int64_t)n);
		json_array_foreach(v, i, x)
		{
			if (encode(w, items, x, false) < 0)
				return -1;
		}
		kb_write_varlong(w, 0);
		return 0;
	}
	if (!strcmp(type, "int8") || !strcmp(type, "int16") ||
	    !strcmp(type, "int32")) {
		kb_write_varint(w, (int32_t)json_integer_value(v));
	} else if (!strcmp(type, "int64")) {
		kb_write_varlong(w, (int64_t)json_integer_value(v));
	} else if (!strcmp(type, "float")) {
		float f = (float)real_of(v);
		uint8_t b[4];
		memcpy(b, &f, 4); /* Avro: little-endian, as this host */
		kb_write_raw(w, b, 4);
	} else if (!strcmp(type, "double")) {
		double d = real_of(v);
		uint8_t b[8];
		memcpy(b, &d, 8);
		kb_write_raw(w, b, 8);
	} else if (!strcmp(type, "boolean")) {
		kb_write_i8(w, json_is_true(v) ? 1 : 0);
	} else if (!strcmp(type, "bytes")) {
		if (v && !json_is_string(v))
			return -1;
		return write_bytes(w, v ? json_string_value(v) : "",
				   v ? json_string_length(v) : 0);
	} else {
		/* string, and whatever else the JSON form holds as text */
		if (!v) {
			kb_write_varlong(w, 0);
		} else if (json_is_string(v)) {
			kb_write_varlong(w, (int64_t)json_string_length(v));
			kb_write_raw(w, json_string_value(v),
				     json_string_length(v));
		} else {
			char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
			size_t n = t ? strlen(t) : 0;
			kb_write_varlong(w, (int64_t)n);
			kb_write_raw(w, t ? t : "", n);
			free(t);
		}
	}
	return 0;
}

static int encode(struct kb_writer *w, const json_t *s, const json_t *v,
		  bool ignore_optional)
{
	bool null = !v || json_is_null(v);
	const char *type = str(s, "type");
	bool strct = type && strcmp(type, "struct") == 0;
	if (is_optional(s) && (strct || !ignore_optional)) {
		/* ["null", T], or [T, "null"] for a non-struct default */
		bool t_first = !strct && has_default(s);
		if (null) {
			kb_write_varint(w, t_first ? 1 : 0);
			return 0;
		}
		kb_write_varint(w, t_first ? 0 : 1);
	}
	if (null && has_default(s))
		v = json_object_get(s, "default");
	return encode_base(w, s, v);
}

int cdc_avro_encode(struct kb_writer *w, const json_t *connect,
		    const json_t *value)
{
	return encode(w, connect, value, false);
}
