/*
 * sink_conv: the sink's converters (storage/sink_int.h): Avro binary by a
 * registry schema (as Confluent's AvroConverter and AvroData see it),
 * Connect's JsonConverter with and without schemas, StringConverter.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/sink_int.h"

#define MAX_DEPTH 32
#define MAX_NAMES 256
/*
 * Array and map entries one datum may hold: at most MAX_ITEMS, and at most
 * ITEMS_SLACK more than the datum has bytes.  An entry of any useful type
 * takes a byte at least; an array of nulls takes none, and without the
 * second bound a record of a few bytes could ask for 10^12 entries
 * (nested arrays of a million nulls each).
 */
#define MAX_ITEMS   (1 << 20)
#define ITEMS_SLACK 1024

const struct sk_schema *sk_plain(const struct sk_schema *s)
{
	if (s && s->av == AV_UNION) {
		for (int i = 0; i < s->nbranches; i++)
			if (s->branches[i]->av != AV_NULL)
				return s->branches[i];
	}
	return s;
}

const struct sk_value *sk_field_get(const struct sk_value *v, const char *name)
{
	if (!v || v->null)
		return NULL;
	const struct sk_schema *s = sk_plain(v->s);
	if (!s || s->type != SK_STRUCT)
		return NULL;
	for (int i = 0; i < s->nfields; i++)
		if (strcmp(s->fields[i].name, name) == 0)
			return &v->fields[i];
	return NULL;
}

/* --- Avro schemas ------------------------------------------------------ */

struct names {
	int n;
	const char *name[MAX_NAMES];
	struct sk_schema *s[MAX_NAMES];
};

struct ap {
	struct arena *a;
	struct names nm;
	char *err;
	size_t errlen;
};

static struct sk_schema *ap_node(struct ap *p, const json_t *j, const char *ns,
				 int depth);

static struct sk_schema *new_schema(struct ap *p, enum sk_avro av,
				    enum sk_type type)
{
	struct sk_schema *s = arena_alloc(p->a, sizeof(*s));
	if (s) {
		s->av = av;
		s->type = type;
	}
	return s;
}

static const char *fullname_of(struct ap *p, const json_t *j, const char *ns)
{
	const char *name = json_string_value(json_object_get(j, "name"));
	const char *jns = json_string_value(json_object_get(j, "namespace"));
	if (!name)
		return NULL;
	if (strchr(name, '.'))
		return arena_strndup(p->a, name, strlen(name));
	const char *use = jns ? jns : ns;
	if (use && *use)
		return arena_printf(p->a, "%s.%s", use, name);
	return arena_strndup(p->a, name, strlen(name));
}

static void name_add(struct ap *p, const char *full, struct sk_schema *s)
{
	if (p->nm.n < MAX_NAMES) {
		p->nm.name[p->nm.n] = full;
		p->nm.s[p->nm.n++] = s;
	}
}

static struct sk_schema *name_find(struct ap *p, const char *name,
				   const char *ns)
{
	char buf[1024];
	for (int pass = 0; pass < 2; pass++) {
		const char *want = name;
		if (pass == 0) {
			if (!ns || !*ns || strchr(name, '.'))
				continue;
			snprintf(buf, sizeof(buf), "%s.%s", ns, name);
			want = buf;
		}
		for (int i = 0; i < p->nm.n; i++)
			if (strcmp(p->nm.name[i], want) == 0)
				return p->nm.s[i];
	}
	return NULL;
}

static int primitive(const char *t, enum sk_avro *av, enum sk_type *type)
{
	static const struct {
		const char *n;
		enum sk_avro av;
		enum sk_type t;
	} tab[] = {
		{"null", AV_NULL, SK_NONE},
		{"boolean", AV_BOOLEAN, SK_BOOLEAN},
		{"int", AV_INT, SK_INT32},
		{"long", AV_LONG, SK_INT64},
		{"float", AV_FLOAT, SK_FLOAT32},
		{"double", AV_DOUBLE, SK_FLOAT64},
		{"bytes", AV_BYTES, SK_BYTES},
		{"string", AV_STRING, SK_STRING},
	};
	for (size_t i = 0; i < sizeof(tab) / sizeof(*tab); i++)
		if (strcmp(tab[i].n, t) == 0) {
			*av = tab[i].av;
			*type = tab[i].t;
			return 0;
		}
	return -1;
}

/* Applies logicalType and connect.* properties of j to s. */
static void annotate(struct ap *p, struct sk_schema *s, const json_t *j)
{
	const char *lt = json_string_value(json_object_get(j, "logicalType"));
	const char *cn = json_string_value(json_object_get(j, "connect.name"));
	const char *ct = json_string_value(json_object_get(j, "connect.type"));
	if (ct && s->av == AV_INT) {
		if (strcmp(ct, "int8") == 0)
			s->type = SK_INT8;
		else if (strcmp(ct, "int16") == 0)
			s->type = SK_INT16;
	}
	if (lt) {
		if (strcmp(lt, "decimal") == 0 &&
		    (s->av == AV_BYTES || s->av == AV_FIXED)) {
			s->name = "org.apache.kafka.connect.data.Decimal";
			s->scale = (int32_t)json_integer_value(
				json_object_get(j, "scale"));
		} else if (strcmp(lt, "date") == 0 && s->av == AV_INT) {
			s->name = "org.apache.kafka.connect.data.Date";
		} else if (strcmp(lt, "time-millis") == 0 && s->av == AV_INT) {
			s->name = "org.apache.kafka.connect.data.Time";
		} else if (strcmp(lt, "timestamp-millis") == 0 &&
			   s->av == AV_LONG) {
			s->name = "org.apache.kafka.connect.data.Timestamp";
		} else if (strcmp(lt, "timestamp-micros") == 0 &&
			   s->av == AV_LONG) {
			s->name = "io.debezium.time.MicroTimestamp";
		} else if (strcmp(lt, "time-micros") == 0 && s->av == AV_LONG) {
			s->name = "io.debezium.time.MicroTime";
		} else if (strcmp(lt, "uuid") == 0 && s->av == AV_STRING) {
			s->name = "io.debezium.data.Uuid";
		}
	}
	if (cn && (s->av != AV_RECORD || !s->name))
		s->name = arena_strndup(p->a, cn, strlen(cn));
	const json_t *params = json_object_get(j, "connect.parameters");
	const char *sc = json_string_value(json_object_get(params, "scale"));
	if (sc && s->name &&
	    strcmp(s->name, "org.apache.kafka.connect.data.Decimal") == 0)
		s->scale = atoi(sc);
}

static struct sk_schema *ap_node(struct ap *p, const json_t *j, const char *ns,
				 int depth)
{
	enum sk_avro av;
	enum sk_type type;
	if (depth > MAX_DEPTH) {
		snprintf(p->err, p->errlen, "schema nested too deep");
		return NULL;
	}
	if (json_is_string(j)) {
		const char *t = json_string_value(j);
		if (primitive(t, &av, &type) == 0)
			return new_schema(p, av, type);
		struct sk_schema *s = name_find(p, t, ns);
		if (!s)
			snprintf(p->err, p->errlen, "unknown type %s", t);
		return s;
	}
	if (json_is_array(j)) {
		size_t n = json_array_size(j);
		struct sk_schema *s = new_schema(p, AV_UNION, SK_NONE);
		if (!s || n == 0) {
			snprintf(p->err, p->errlen, "empty union");
			return NULL;
		}
		s->branches = arena_alloc(p->a, n * sizeof(*s->branches));
		if (!s->branches)
			return NULL;
		s->nbranches = (int)n;
		for (size_t i = 0; i < n; i++) {
			s->branches[i] =
				ap_node(p, json_array_get(j, i), ns, depth + 1);
			if (!s->branches[i])
				return NULL;
			if (s->branches[i]->av == AV_NULL)
				s->optional = true;
		}
		const struct sk_schema *plain = sk_plain(s);
		s->type = plain->type;
		s->name = plain->name;
		return s;
	}
	if (!json_is_object(j)) {
		snprintf(p->err, p->errlen, "not a schema");
		return NULL;
	}
	const json_t *tj = json_object_get(j, "type");
	const char *t = json_string_value(tj);
	if (!t) {
		/* {"type": {...}} or {"type": [...]}: the inner schema */
		if (tj)
			return ap_node(p, tj, ns, depth + 1);
		snprintf(p->err, p->errlen, "schema without a type");
		return NULL;
	}
	struct sk_schema *s = NULL;
	if (primitive(t, &av, &type) == 0) {
		s = new_schema(p, av, type);
	} else if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
		s = new_schema(p, AV_RECORD, SK_STRUCT);
		if (!s)
			return NULL;
		s->fullname = fullname_of(p, j, ns);
		if (!s->fullname) {
			snprintf(p->err, p->errlen, "record without a name");
			return NULL;
		}
		s->name = s->fullname;
		name_add(p, s->fullname, s);
		const char *myns = s->fullname;
		const char *dot = strrchr(myns, '.');
		char *nsbuf =
			dot ? arena_strndup(p->a, myns, (size_t)(dot - myns))
			    : NULL;
		const json_t *fields = json_object_get(j, "fields");
		size_t n = json_array_size(fields);
		s->fields = arena_alloc(p->a, (n ? n : 1) * sizeof(*s->fields));
		if (!s->fields)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			const json_t *f = json_array_get(fields, i);
			const char *fname =
				json_string_value(json_object_get(f, "name"));
			if (!fname) {
				snprintf(p->err, p->errlen,
					 "record field without a name");
				return NULL;
			}
			s->fields[i].name =
				arena_strndup(p->a, fname, strlen(fname));
			s->fields[i].schema =
				ap_node(p, json_object_get(f, "type"), nsbuf,
					depth + 1);
			if (!s->fields[i].schema)
				return NULL;
			if (json_object_get(f, "default")) {
				/* A shared named type must not take one
				 * field's default: copy the node. */
				struct sk_schema *c =
					arena_alloc(p->a, sizeof(*c));
				if (!c)
					return NULL;
				*c = *s->fields[i].schema;
				c->has_default = true;
				s->fields[i].schema = c;
			}
		}
		s->nfields = (int)n;
	} else if (strcmp(t, "enum") == 0) {
		s = new_schema(p, AV_ENUM, SK_STRING);
		if (!s)
			return NULL;
		s->fullname = fullname_of(p, j, ns);
		if (s->fullname)
			name_add(p, s->fullname, s);
		const json_t *sym = json_object_get(j, "symbols");
		size_t n = json_array_size(sym);
		s->symbols = arena_alloc(p->a, (n ? n : 1) * sizeof(char *));
		if (!s->symbols)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			const char *v =
				json_string_value(json_array_get(sym, i));
			s->symbols[i] =
				v ? arena_strndup(p->a, v, strlen(v)) : "";
		}
		s->nsymbols = (int)n;
	} else if (strcmp(t, "array") == 0) {
		s = new_schema(p, AV_ARRAY, SK_ARRAY);
		if (!s || !(s->elem = ap_node(p, json_object_get(j, "items"),
					      ns, depth + 1)))
			return NULL;
	} else if (strcmp(t, "map") == 0) {
		s = new_schema(p, AV_MAP, SK_MAP);
		if (!s || !(s->elem = ap_node(p, json_object_get(j, "values"),
					      ns, depth + 1)))
			return NULL;
		s->kelem = new_schema(p, AV_STRING, SK_STRING);
	} else if (strcmp(t, "fixed") == 0) {
		s = new_schema(p, AV_FIXED, SK_BYTES);
		if (!s)
			return NULL;
		s->fullname = fullname_of(p, j, ns);
		if (s->fullname)
			name_add(p, s->fullname, s);
		s->fixed_size =
			(int32_t)json_integer_value(json_object_get(j, "size"));
	} else {
		struct sk_schema *r = name_find(p, t, ns);
		if (!r)
			snprintf(p->err, p->errlen, "unknown type %s", t);
		return r;
	}
	if (s)
		annotate(p, s, j);
	return s;
}

struct sk_schema *sk_avro_parse(struct arena *a, const char *text, char *err,
				size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	if (!j) {
		snprintf(err, errlen, "schema is not JSON: %s", je.text);
		return NULL;
	}
	struct ap *p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->a = a;
	p->err = err;
	p->errlen = errlen;
	err[0] = '\0';
	struct sk_schema *s = ap_node(p, j, NULL, 0);
	if (!s && !err[0])
		snprintf(err, errlen, "out of memory");
	free(p);
	json_decref(j);
	return s;
}

/* --- Avro binary ------------------------------------------------------- */

struct ad {
	struct arena *a;
	const uint8_t *p, *end;
	char *err;
	size_t errlen;
	int64_t items_left; /* entries the datum may still have */
};

static int ad_long(struct ad *d, int64_t *out)
{
	uint64_t v = 0;
	for (int shift = 0; shift < 70; shift += 7) {
		if (d->p >= d->end) {
			snprintf(d->err, d->errlen, "truncated Avro data");
			return -1;
		}
		uint8_t b = *d->p++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
			return 0;
		}
	}
	snprintf(d->err, d->errlen, "bad Avro varint");
	return -1;
}

static int ad_take(struct ad *d, size_t n, const uint8_t **out)
{
	if ((size_t)(d->end - d->p) < n) {
		snprintf(d->err, d->errlen, "truncated Avro data");
		return -1;
	}
	*out = d->p;
	d->p += n;
	return 0;
}

static int ad_value(struct ad *d, const struct sk_schema *s, struct sk_value *v,
		    int depth);

/* Array and map blocks: calls item for each entry. */
static int ad_blocks(struct ad *d, const struct sk_schema *s,
		     struct sk_value *v, int depth)
{
	bool map = s->av == AV_MAP;
	int32_t cap = 0, n = 0;
	struct sk_value *items = NULL;
	for (;;) {
		int64_t count;
		if (ad_long(d, &count) < 0)
			return -1;
		if (count == 0)
			break;
		if (count < 0) {
			/* a block with its size in bytes: -count entries */
			int64_t bytes;
			count = count == INT64_MIN ? INT64_MAX : -count;
			if (ad_long(d, &bytes) < 0)
				return -1;
		}
		if (count > d->items_left) {
			snprintf(d->err, d->errlen, "Avro array too long");
			return -1;
		}
		d->items_left -= count;
		for (int64_t i = 0; i < count; i++) {
			int per = map ? 2 : 1;
			while (n + per > cap) {
				struct sk_value *g = arena_grow(
					d->a, items, n, &cap, sizeof(*items));
				if (!g)
					return -1;
				items = g;
			}
			if (map) {
				if (ad_value(d, s->kelem, &items[n], depth) <
					    0 ||
				    ad_value(d, s->elem, &items[n + 1], depth) <
					    0)
					return -1;
			} else if (ad_value(d, s->elem, &items[n], depth) < 0) {
				return -1;
			}
			n += per;
		}
	}
	v->fields = items;
	v->n = (size_t)(map ? n / 2 : n);
	return 0;
}

static int ad_value(struct ad *d, const struct sk_schema *s, struct sk_value *v,
		    int depth)
{
	const uint8_t *b;
	int64_t x;
	v->s = s;
	if (depth > MAX_DEPTH) {
		snprintf(d->err, d->errlen, "Avro data nested too deep");
		return -1;
	}
	switch (s->av) {
	case AV_NULL:
		v->null = true;
		return 0;
	case AV_BOOLEAN:
		if (ad_take(d, 1, &b) < 0)
			return -1;
		v->i = b[0] != 0;
		return 0;
	case AV_INT:
	case AV_LONG:
		return ad_long(d, &v->i);
	case AV_FLOAT: {
		if (ad_take(d, 4, &b) < 0)
			return -1;
		uint32_t u = (uint32_t)b[0] | (uint32_t)b[1] << 8 |
			     (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
		float f;
		memcpy(&f, &u, 4);
		v->d = f;
		return 0;
	}
	case AV_DOUBLE: {
		if (ad_take(d, 8, &b) < 0)
			return -1;
		uint64_t u = 0;
		for (int i = 7; i >= 0; i--)
			u = u << 8 | b[i];
		memcpy(&v->d, &u, 8);
		return 0;
	}
	case AV_BYTES:
	case AV_STRING:
		if (ad_long(d, &x) < 0)
			return -1;
		if (x < 0 || ad_take(d, (size_t)x, &b) < 0) {
			snprintf(d->err, d->errlen, "truncated Avro data");
			return -1;
		}
		v->p = (const char *)b;
		v->n = (size_t)x;
		return 0;
	case AV_FIXED:
		if (ad_take(d, (size_t)s->fixed_size, &b) < 0)
			return -1;
		v->p = (const char *)b;
		v->n = (size_t)s->fixed_size;
		return 0;
	case AV_ENUM:
		if (ad_long(d, &x) < 0)
			return -1;
		if (x < 0 || x >= s->nsymbols) {
			snprintf(d->err, d->errlen, "bad Avro enum index %lld",
				 (long long)x);
			return -1;
		}
		v->p = s->symbols[x];
		v->n = strlen(v->p);
		return 0;
	case AV_UNION:
		if (ad_long(d, &x) < 0)
			return -1;
		if (x < 0 || x >= s->nbranches) {
			snprintf(d->err, d->errlen, "bad Avro union index %lld",
				 (long long)x);
			return -1;
		}
		return ad_value(d, s->branches[x], v, depth + 1);
	case AV_RECORD:
		v->fields = arena_alloc(d->a,
					(size_t)(s->nfields ? s->nfields : 1) *
						sizeof(*v->fields));
		if (!v->fields)
			return -1;
		for (int i = 0; i < s->nfields; i++)
			if (ad_value(d, s->fields[i].schema, &v->fields[i],
				     depth + 1) < 0)
				return -1;
		v->n = (size_t)s->nfields;
		return 0;
	case AV_ARRAY:
	case AV_MAP:
		return ad_blocks(d, s, v, depth + 1);
	case AV_CONNECT:
		break;
	}
	snprintf(d->err, d->errlen, "not an Avro schema");
	return -1;
}

int sk_avro_decode(struct arena *a, const struct sk_schema *s,
		   const uint8_t *data, size_t n, struct sk_value *v, char *err,
		   size_t errlen)
{
	struct ad d = {.a = a,
		       .p = data,
		       .end = data + n,
		       .err = err,
		       .errlen = errlen,
		       .items_left = n < MAX_ITEMS - ITEMS_SLACK
					     ? (int64_t)n + ITEMS_SLACK
					     : MAX_ITEMS};
	memset(v, 0, sizeof(*v));
	snprintf(err, errlen, "out of memory");
	if (ad_value(&d, s, v, 0) < 0)
		return -1;
	if (d.p != d.end) {
		snprintf(err, errlen, "%zu bytes after the Avro datum",
			 (size_t)(d.end - d.p));
		return -1;
	}
	return 0;
}

/* --- JSON -------------------------------------------------------------- */

static struct sk_schema *cs_new(struct arena *a, enum sk_type t)
{
	struct sk_schema *s = arena_alloc(a, sizeof(*s));
	if (s) {
		s->type = t;
		s->av = AV_CONNECT;
	}
	return s;
}

/* Bytes of the JSON text: a value's own (p NULL: not known). */
struct span {
	const char *p;
	size_t n;
};

static bool is_decimal(const struct sk_schema *s)
{
	return s->name &&
	       strcmp(s->name, "org.apache.kafka.connect.data.Decimal") == 0;
}

static int cj_value(struct arena *a, const struct sk_schema *s, const json_t *j,
		    struct span raw, bool nulls, struct sk_value *v, int depth,
		    char *err, size_t errlen);

/* Connect's JSON schema ({"type":"struct","fields":[...]...}). */
static struct sk_schema *cs_parse(struct arena *a, const json_t *j, int depth,
				  char *err, size_t errlen)
{
	static const struct {
		const char *n;
		enum sk_type t;
	} tab[] = {{"int8", SK_INT8},	    {"int16", SK_INT16},
		   {"int32", SK_INT32},	    {"int64", SK_INT64},
		   {"float", SK_FLOAT32},   {"float32", SK_FLOAT32},
		   {"double", SK_FLOAT64},  {"float64", SK_FLOAT64},
		   {"boolean", SK_BOOLEAN}, {"string", SK_STRING},
		   {"bytes", SK_BYTES},	    {"array", SK_ARRAY},
		   {"map", SK_MAP},	    {"struct", SK_STRUCT}};
	const char *t = json_string_value(json_object_get(j, "type"));
	if (!t || depth > MAX_DEPTH) {
		snprintf(err, errlen, "Unknown schema type: %s",
			 t ? t : "(none)");
		return NULL;
	}
	struct sk_schema *s = NULL;
	for (size_t i = 0; i < sizeof(tab) / sizeof(*tab); i++)
		if (strcmp(tab[i].n, t) == 0)
			s = cs_new(a, tab[i].t);
	if (!s) {
		snprintf(err, errlen, "Unknown schema type: %s", t);
		return NULL;
	}
	s->optional = json_is_true(json_object_get(j, "optional"));
	s->has_default = json_object_get(j, "default") != NULL &&
			 !json_is_null(json_object_get(j, "default"));
	const char *name = json_string_value(json_object_get(j, "name"));
	if (name)
		s->name = arena_strndup(a, name, strlen(name));
	const json_t *params = json_object_get(j, "parameters");
	const char *sc = json_string_value(json_object_get(params, "scale"));
	if (sc)
		s->scale = atoi(sc);
	s->decimals = is_decimal(s);
	if (s->type == SK_STRUCT) {
		const json_t *f = json_object_get(j, "fields");
		size_t n = json_array_size(f);
		s->fields = arena_alloc(a, (n ? n : 1) * sizeof(*s->fields));
		if (!s->fields)
			return NULL;
		for (size_t i = 0; i < n; i++) {
			const json_t *fj = json_array_get(f, i);
			const char *fn =
				json_string_value(json_object_get(fj, "field"));
			if (!fn) {
				snprintf(err, errlen,
					 "struct field without a "
					 "name");
				return NULL;
			}
			s->fields[i].name = arena_strndup(a, fn, strlen(fn));
			s->fields[i].schema =
				cs_parse(a, fj, depth + 1, err, errlen);
			if (!s->fields[i].schema)
				return NULL;
			s->decimals |= s->fields[i].schema->decimals;
		}
		s->nfields = (int)n;
	} else if (s->type == SK_ARRAY) {
		s->elem = cs_parse(a, json_object_get(j, "items"), depth + 1,
				   err, errlen);
		if (!s->elem)
			return NULL;
		s->decimals = s->elem->decimals;
	} else if (s->type == SK_MAP) {
		s->kelem = cs_parse(a, json_object_get(j, "keys"), depth + 1,
				    err, errlen);
		s->elem = cs_parse(a, json_object_get(j, "values"), depth + 1,
				   err, errlen);
		if (!s->kelem || !s->elem)
			return NULL;
	}
	/* JsonConverter reads the default as a value of the schema, and
	 * gives it for a null (replace.null.with.default, true) */
	if (s->has_default) {
		struct sk_value *d = arena_alloc(a, sizeof(*d));
		if (!d)
			return NULL;
		memset(d, 0, sizeof(*d));
		if (cj_value(a, s, json_object_get(j, "default"),
			     (struct span){0}, true, d, depth, err, errlen) < 0)
			return NULL;
		s->def = d;
	}
	return s;
}

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static int b64_decode(struct arena *a, const char *in, const char **out,
		      size_t *outn)
{
	size_t n = strlen(in);
	uint8_t *o = arena_alloc(a, n * 3 / 4 + 3);
	if (!o)
		return -1;
	size_t k = 0;
	uint32_t acc = 0;
	int bits = 0;
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '=')
			break;
		int v = b64val((unsigned char)in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (uint8_t)(acc >> bits);
		}
	}
	*out = (const char *)o;
	*outn = k;
	return 0;
}

static size_t skip_ws(const char *p, size_t i, size_t n);
static size_t skip_string(const char *p, size_t i, size_t n);
static size_t skip_value(const char *p, size_t i, size_t n);
static size_t scan_number(const char *p, size_t i, size_t n, bool *integer);

/* One member of an object text: its key (unescaped) and value text. */
struct raw_mem {
	const char *k;
	size_t kn;
	size_t at; /* its place in the object */
	struct span v;
};

/* The members of an object text, sorted by key then place: a sort, not
 * a hash, whose worst case the producer of the keys could choose. */
struct raw_obj {
	struct raw_mem *m;
	size_t n;
};

static int key_cmp(const char *a, size_t an, const char *b, size_t bn)
{
	int c = memcmp(a, b, an < bn ? an : bn);
	return c ? c : an < bn ? -1 : an > bn;
}

static int mem_cmp(const void *x, const void *y)
{
	const struct raw_mem *a = x, *b = y;
	int c = key_cmp(a->k, a->kn, b->k, b->kn);
	return c ? c : a->at < b->at ? -1 : a->at > b->at;
}

/*
 * Parses the members of the object text obj once into o, each key
 * unescaped.  The object was parsed already: this only finds where its
 * parts are.  An object that is not one, or the arena failing, leaves o
 * empty.
 */
static void raw_members(struct arena *a, struct span obj, struct raw_obj *o)
{
	const char *p = obj.p;
	size_t n = obj.n, count = 0;
	*o = (struct raw_obj){0};
	for (int pass = 0; pass < 2; pass++) {
		size_t i = p ? skip_ws(p, 0, n) : n;
		if (i >= n || p[i] != '{')
			return;
		if (pass == 1 &&
		    !(o->m = arena_alloc(a,
					 (count ? count : 1) * sizeof(*o->m))))
			return;
		for (i = skip_ws(p, i + 1, n); i < n && p[i] == '"';) {
			size_t k = i, e = skip_string(p, i, n);
			if (!e)
				break;
			i = skip_ws(p, e, n);
			if (i >= n || p[i] != ':')
				break;
			i = skip_ws(p, i + 1, n);
			size_t end = skip_value(p, i, n);
			if (end <= i)
				break;
			struct raw_mem m = {
				p + k + 1, e - k - 2, o->n, {p + i, end - i}};
			i = skip_ws(p, end, n);
			if (i < n && p[i] == ',')
				i = skip_ws(p, i + 1, n);
			if (pass == 0) {
				count++;
				continue;
			}
			if (o->n == count)
				break;
			if (memchr(m.k, '\\', m.kn)) {
				json_t *j = json_loadb(
					p + k, e - k,
					JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
				m.kn = j ? json_string_length(j) : 0;
				m.k = j ? arena_strndup(a, json_string_value(j),
							m.kn)
					: NULL;
				json_decref(j);
				if (!m.k)
					continue;
			}
			o->m[o->n++] = m;
		}
	}
	qsort(o->m, o->n, sizeof(*o->m), mem_cmp);
}

/* The text of member name of o (the last, as jansson keeps the last), or
 * {NULL, 0}. */
static struct span raw_get(const struct raw_obj *o, const char *name)
{
	size_t nl = strlen(name), lo = 0, hi = o->n;
	/* the first member past every one keyed name */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(o->m[mid].k, o->m[mid].kn, name, nl) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo && key_cmp(o->m[lo - 1].k, o->m[lo - 1].kn, name, nl) == 0)
		return o->m[lo - 1].v;
	return (struct span){0};
}

/* The text of member name of the object text obj, or {NULL, 0}: for one
 * look-up (several: raw_members once, then raw_get). */
static struct span raw_member(struct arena *a, struct span obj,
			      const char *name)
{
	struct raw_obj o;
	raw_members(a, obj, &o);
	return raw_get(&o, name);
}

/* The text of the array text arr's next element from *at (0: the
 * first), or {NULL, 0}. */
static struct span raw_next(struct span arr, size_t *at)
{
	const char *p = arr.p;
	size_t n = arr.n, i = *at;
	if (!p)
		return (struct span){0};
	if (i == 0) {
		i = skip_ws(p, 0, n);
		if (i >= n || p[i] != '[')
			return (struct span){0};
		i++;
	}
	i = skip_ws(p, i, n);
	size_t end = skip_value(p, i, n);
	if (end <= i)
		return (struct span){0};
	*at = skip_ws(p, end, n);
	if (*at < n && p[*at] == ',')
		(*at)++;
	return (struct span){p + i, end - i};
}

/*
 * A JSON payload value of schema s.  raw: j's text, where s holds a
 * Decimal (s->decimals): its number is taken as written, as Connect's
 * BigDecimal takes it, not as jansson's double.
 */
static int cj_value(struct arena *a, const struct sk_schema *s, const json_t *j,
		    struct span raw, bool nulls, struct sk_value *v, int depth,
		    char *err, size_t errlen)
{
	v->s = s;
	if ((!j || json_is_null(j)) && s->def && !nulls) {
		*v = *s->def;
		return 0;
	}
	if (!j || json_is_null(j)) {
		if (!s->optional) {
			snprintf(err, errlen,
				 "Invalid null value for required %s field",
				 s->name ? s->name : "");
			return -1;
		}
		v->null = true;
		return 0;
	}
	if (depth > MAX_DEPTH) {
		snprintf(err, errlen, "JSON nested too deep");
		return -1;
	}
	switch (s->type) {
	case SK_INT8:
	case SK_INT16:
	case SK_INT32:
	case SK_INT64:
		if (!json_is_integer(j))
			goto bad;
		v->i = json_integer_value(j);
		return 0;
	case SK_FLOAT32:
	case SK_FLOAT64:
		if (json_is_number(j)) {
			v->d = json_number_value(j);
			return 0;
		}
		if (json_is_string(j)) {
			const char *t = json_string_value(j);
			if (strcmp(t, "NaN") == 0)
				v->d = NAN;
			else if (strcmp(t, "Infinity") == 0)
				v->d = INFINITY;
			else if (strcmp(t, "-Infinity") == 0)
				v->d = -INFINITY;
			else
				goto bad;
			return 0;
		}
		goto bad;
	case SK_BOOLEAN:
		if (!json_is_boolean(j))
			goto bad;
		v->i = json_is_true(j);
		return 0;
	case SK_STRING:
		if (!json_is_string(j))
			goto bad;
		v->n = json_string_length(j);
		v->p = arena_strndup(a, json_string_value(j), v->n);
		return v->p ? 0 : -1;
	case SK_BYTES:
		if (is_decimal(s) && json_is_number(j)) {
			/* decimal.format=NUMERIC: keep the digits as text */
			bool integer;
			if (raw.p &&
			    scan_number(raw.p, 0, raw.n, &integer) == raw.n) {
				v->p = arena_strndup(a, raw.p, raw.n);
				v->n = (size_t)-1; /* marks decimal text */
				return v->p ? 0 : -1;
			}
			char *t = json_dumps(j, JSON_ENCODE_ANY);
			if (!t)
				return -1;
			v->p = arena_strndup(a, t, strlen(t));
			v->n = (size_t)-1; /* marks decimal text */
			free(t);
			return v->p ? 0 : -1;
		}
		if (!json_is_string(j) ||
		    b64_decode(a, json_string_value(j), &v->p, &v->n) < 0)
			goto bad;
		return 0;
	case SK_ARRAY: {
		if (!json_is_array(j))
			goto bad;
		size_t n = json_array_size(j);
		v->fields = arena_alloc(a, (n ? n : 1) * sizeof(*v->fields));
		if (!v->fields)
			return -1;
		size_t at = 0;
		for (size_t i = 0; i < n; i++) {
			struct span r = {0};
			if (s->elem->decimals)
				r = raw_next(raw, &at);
			if (cj_value(a, s->elem, json_array_get(j, i), r, nulls,
				     &v->fields[i], depth + 1, err, errlen) < 0)
				return -1;
		}
		v->n = n;
		return 0;
	}
	case SK_MAP:
		/* Only its presence matters: no column holds a map. */
		return 0;
	case SK_STRUCT:
		if (!json_is_object(j))
			goto bad;
		v->fields =
			arena_alloc(a, (size_t)(s->nfields ? s->nfields : 1) *
					       sizeof(*v->fields));
		if (!v->fields)
			return -1;
		struct raw_obj mem = {0};
		if (s->decimals)
			raw_members(a, raw, &mem);
		for (int i = 0; i < s->nfields; i++) {
			const struct sk_field *f = &s->fields[i];
			struct span r = {0};
			if (f->schema->decimals)
				r = raw_get(&mem, f->name);
			if (cj_value(a, f->schema, json_object_get(j, f->name),
				     r, nulls, &v->fields[i], depth + 1, err,
				     errlen) < 0)
				return -1;
		}
		v->n = (size_t)s->nfields;
		return 0;
	case SK_NONE:
		break;
	}
bad:
	snprintf(err, errlen, "JSON value does not match its schema type");
	return -1;
}

/* Schemaless JSON: the schema is what the value looks like. */
static int infer(struct arena *a, const json_t *j, struct sk_value *v, bool top,
		 char *err, size_t errlen)
{
	enum sk_type t;
	if (json_is_object(j) && top)
		t = SK_STRUCT;
	else if (json_is_integer(j))
		t = SK_INT64;
	else if (json_is_real(j))
		t = SK_FLOAT64;
	else if (json_is_boolean(j))
		t = SK_BOOLEAN;
	else if (json_is_null(j))
		t = SK_NONE;
	else
		t = SK_STRING;
	struct sk_schema *s = cs_new(a, t);
	if (!s)
		return -1;
	s->optional = true;
	v->s = s;
	switch (t) {
	case SK_INT64:
		v->i = json_integer_value(j);
		return 0;
	case SK_FLOAT64:
		v->d = json_real_value(j);
		return 0;
	case SK_BOOLEAN:
		v->i = json_is_true(j);
		return 0;
	case SK_NONE:
		v->null = true;
		return 0;
	case SK_STRUCT: {
		size_t n = json_object_size(j), i = 0;
		s->fields = arena_alloc(a, (n ? n : 1) * sizeof(*s->fields));
		v->fields = arena_alloc(a, (n ? n : 1) * sizeof(*v->fields));
		if (!s->fields || !v->fields)
			return -1;
		const char *k;
		json_t *x;
		json_object_foreach((json_t *)j, k, x)
		{
			s->fields[i].name = arena_strndup(a, k, strlen(k));
			if (infer(a, x, &v->fields[i], false, err, errlen) < 0)
				return -1;
			s->fields[i].schema =
				(struct sk_schema *)v->fields[i].s;
			i++;
		}
		s->nfields = (int)i;
		v->n = i;
		return 0;
	}
	default:
		break;
	}
	if (json_is_string(j)) {
		v->n = json_string_length(j);
		v->p = arena_strndup(a, json_string_value(j), v->n);
	} else {
		/* nested objects and arrays: their JSON text, in jsonb */
		char *txt = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!txt)
			return -1;
		v->n = strlen(txt);
		v->p = arena_strndup(a, txt, v->n);
		free(txt);
		s->name = "io.debezium.data.Json";
	}
	return v->p ? 0 : -1;
}

/*
 * p[0..n) with ".0" after each integer past int64 (outside strings), which
 * jansson refuses ("too big integer") where Connect's JsonConverter reads
 * a BigInteger: a real for jansson, and a Decimal's text keeps its digits.
 * NULL when there is none (or memory ran out); the caller frees.
 */
static char *widen_integers(const char *p, size_t n, size_t *outn)
{
	char *o = NULL;
	size_t k = 0, from = 0;
	for (size_t i = 0; i < n;) {
		if (p[i] == '"') {
			size_t e = skip_string(p, i, n);
			i = e ? e : n;
			continue;
		}
		bool integer;
		size_t e = p[i] == '-' || (p[i] >= '0' && p[i] <= '9')
				   ? scan_number(p, i, n, &integer)
				   : 0;
		if (!e) {
			i++;
			continue;
		}
		char num[24];
		bool big = false;
		if (integer && e - i >= 19) {
			errno = 0;
			size_t l =
				e - i < sizeof(num) ? e - i : sizeof(num) - 1;
			memcpy(num, p + i, l);
			num[l] = '\0';
			strtoll(num, NULL, 10);
			big = errno == ERANGE || l < e - i;
		}
		if (big) {
			if (!o && !(o = malloc(n + n / 2 + 2)))
				return NULL;
			memcpy(o + k, p + from, e - from);
			k += e - from;
			memcpy(o + k, ".0", 2);
			k += 2;
			from = e;
		}
		i = e;
	}
	if (o) {
		memcpy(o + k, p + from, n - from);
		*outn = k + n - from;
	}
	return o;
}

int sk_json_decode(struct arena *a, const uint8_t *data, size_t n, int flags,
		   struct sk_value *v, char *err, size_t errlen)
{
	bool schemas = flags & SK_JSON_SCHEMAS;
	json_error_t je;
	memset(v, 0, sizeof(*v));
	json_t *j = json_loadb((const char *)data, n,
			       JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	size_t wn = 0;
	char *wide = !j && schemas ? widen_integers((const char *)data, n, &wn)
				   : NULL;
	/* the Decimals' text is read from data: the digits as written */
	if (wide)
		j = json_loadb(wide, wn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j) {
		free(wide);
		snprintf(
			err, errlen,
			"Converting byte[] to Kafka Connect data failed due to "
			"serialization error: %s",
			je.text);
		return -1;
	}
	int rc = -1;
	snprintf(err, errlen, "out of memory");
	if (!schemas) {
		rc = infer(a, j, v, true, err, errlen);
	} else if (!json_is_object(j) || json_object_size(j) != 2 ||
		   !json_object_get(j, "schema") ||
		   !json_object_get(j, "payload")) {
		snprintf(
			err, errlen,
			"JsonConverter with schemas.enable requires \"schema\" "
			"and \"payload\" fields and may not contain "
			"additional fields. If you are trying to deserialize "
			"plain JSON data, set schemas.enable=false in your "
			"converter configuration.");
	} else if (json_is_null(json_object_get(j, "schema"))) {
		rc = infer(a, json_object_get(j, "payload"), v, true, err,
			   errlen);
	} else {
		struct sk_schema *s = cs_parse(a, json_object_get(j, "schema"),
					       0, err, errlen);
		struct span raw = {0};
		if (s && s->decimals)
			raw = raw_member(a,
					 (struct span){(const char *)data, n},
					 "payload");
		if (s)
			rc = cj_value(a, s, json_object_get(j, "payload"), raw,
				      flags & SK_JSON_NULLS, v, 0, err, errlen);
	}
	json_decref(j);
	free(wide);
	return rc;
}

/* --- JsonConverter's schemas, parsed once ------------------------------ */

/*
 * With schemas.enable every record carries its schema in full, and a topic
 * has few of them: parsing it (and building jansson's objects for it) each
 * time was most of the sink's CPU.  The cache maps a schema's exact bytes
 * to its parsed form; only the payload is parsed per record.
 */
#define JC_MAX_ENTRIES 64
#define JC_MAX_BYTES   (1 << 20)

struct jc_entry {
	size_t len;
	const char *text;
	const struct sk_schema *s; /* NULL: not a schema (not cached) */
	struct jc_entry *next;
};

struct sk_jcache {
	struct arena a;
	struct jc_entry *head;
	int n;
	size_t bytes;
};

struct sk_jcache *sk_jcache_new(void)
{
	return calloc(1, sizeof(struct sk_jcache));
}

static void jc_clear(struct sk_jcache *jc)
{
	arena_free(&jc->a);
	jc->head = NULL;
	jc->n = 0;
	jc->bytes = 0;
}

bool sk_jcache_full(const struct sk_jcache *jc)
{
	return jc && (jc->n >= JC_MAX_ENTRIES || jc->bytes >= JC_MAX_BYTES);
}

void sk_jcache_trim(struct sk_jcache *jc)
{
	if (sk_jcache_full(jc))
		jc_clear(jc);
}

void sk_jcache_free(struct sk_jcache *jc)
{
	if (!jc)
		return;
	jc_clear(jc);
	free(jc);
}

/*
 * The cached schema whose text starts p[0..n), or NULL.  A cached text is
 * a whole JSON object, so where its bytes match, the object at p ends
 * where it ends: the record's schema needs neither a scan nor a hash.
 */
static const struct jc_entry *jc_prefix(const struct sk_jcache *jc,
					const char *p, size_t n)
{
	for (const struct jc_entry *e = jc->head; e; e = e->next)
		if (e->s && e->len <= n && memcmp(e->text, p, e->len) == 0)
			return e;
	return NULL;
}

/* The parsed schema of text[0..n), or NULL: not a Connect schema, or the
 * cache is full (the caller then takes the slow path, which says why). */
static const struct sk_schema *jc_schema(struct sk_jcache *jc, const char *p,
					 size_t n)
{
	for (struct jc_entry *e = jc->head; e; e = e->next)
		if (e->len == n && memcmp(e->text, p, n) == 0)
			return e->s;
	if (jc->n >= JC_MAX_ENTRIES || jc->bytes + n >= JC_MAX_BYTES)
		return NULL;
	/* counted before parsing: what a failed parse left in the arena
	 * stays bounded too */
	jc->n++;
	jc->bytes += n + 256;
	json_t *j = json_loadb(p, n, JSON_ALLOW_NUL, NULL);
	if (!j)
		return NULL;
	char err[200];
	const struct sk_schema *s =
		json_is_object(j) ? cs_parse(&jc->a, j, 0, err, sizeof(err))
				  : NULL;
	json_decref(j);
	struct jc_entry *e = arena_alloc(&jc->a, sizeof(*e));
	char *text = arena_strndup(&jc->a, p, n);
	if (!e || !text)
		return NULL;
	*e = (struct jc_entry){n, text, s, jc->head};
	jc->head = e;
	return s;
}

static bool jws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *p, size_t i, size_t n)
{
	while (i < n && jws(p[i]))
		i++;
	return i;
}

/* Past the string opening at p[i], or 0 when it does not end. */
static size_t skip_string(const char *p, size_t i, size_t n)
{
	for (i++; i < n; i++) {
		if (p[i] == '\\')
			i++;
		else if (p[i] == '"')
			return i + 1;
	}
	return 0;
}

/*
 * The end of the value starting at p[i] as its brackets and strings say, or
 * 0.  Not a check: the span is parsed (or matched to bytes parsed before)
 * afterwards, which rejects what this lets through.
 */
static size_t skip_value(const char *p, size_t i, size_t n)
{
	int depth = 0;
	while (i < n) {
		char ch = p[i];
		if (ch == '"') {
			if (!(i = skip_string(p, i, n)))
				return 0;
			if (depth == 0)
				return i;
		} else if (ch == '{' || ch == '[') {
			depth++;
			i++;
		} else if (ch == '}' || ch == ']') {
			if (depth == 0)
				return i;
			i++;
			if (--depth == 0)
				return i;
		} else if (depth == 0 && (ch == ',' || jws(ch))) {
			return i;
		} else {
			i++;
		}
	}
	return depth == 0 ? i : 0;
}

/*
 * The spans of "schema" and "payload" in {"schema":...,"payload":...}: each
 * once, no other member, names without escapes.  False for anything else
 * (sk_json_decode then says what is wrong).
 */
static bool envelope(const struct sk_jcache *jc, const char *p, size_t n,
		     struct span *schema, struct span *payload,
		     const struct sk_schema **known)
{
	bool hs = false, hp = false;
	size_t i = skip_ws(p, 0, n);
	if (i >= n || p[i] != '{')
		return false;
	for (i++;;) {
		i = skip_ws(p, i, n);
		if (i >= n || p[i] != '"')
			return false;
		size_t k = i + 1, e = k;
		while (e < n && p[e] != '"' && p[e] != '\\')
			e++;
		if (e >= n || p[e] != '"')
			return false;
		i = skip_ws(p, e + 1, n);
		if (i >= n || p[i] != ':')
			return false;
		i = skip_ws(p, i + 1, n);
		const struct jc_entry *je = NULL;
		if (e - k == 6 && i < n && p[i] == '{')
			je = jc_prefix(jc, p + i, n - i);
		size_t end = je ? i + je->len : skip_value(p, i, n);
		if (end <= i)
			return false;
		struct span *sp;
		if (e - k == 6 && memcmp(p + k, "schema", 6) == 0 && !hs) {
			*known = je ? je->s : NULL;
			sp = schema;
			hs = true;
		} else if (e - k == 7 && memcmp(p + k, "payload", 7) == 0 &&
			   !hp) {
			sp = payload;
			hp = true;
		} else {
			return false;
		}
		*sp = (struct span){p + i, end - i};
		i = skip_ws(p, end, n);
		if (i >= n)
			return false;
		if (p[i] == ',') {
			i++;
			continue;
		}
		if (p[i] != '}')
			return false;
		return skip_ws(p, i + 1, n) == n && hs && hp;
	}
}

/* A flat payload's member: its name and its value's JSON text. */
struct jmember {
	const char *k, *v;
	size_t kn, vn;
	char kind; /* 's' string, 'i' integer, 'r' other number, 't', 'f',
		    * 'n' */
};

#define FLAT_MAX_MEMBERS 64

/* Past a JSON number at p[i] (strictly as RFC 8259 has it), or 0. */
static size_t scan_number(const char *p, size_t i, size_t n, bool *integer)
{
	size_t j = i;
	*integer = true;
	if (j < n && p[j] == '-')
		j++;
	if (j < n && p[j] == '0') {
		j++;
	} else if (j < n && p[j] >= '1' && p[j] <= '9') {
		while (j < n && p[j] >= '0' && p[j] <= '9')
			j++;
	} else {
		return 0;
	}
	if (j < n && p[j] == '.') {
		*integer = false;
		size_t d = ++j;
		while (j < n && p[j] >= '0' && p[j] <= '9')
			j++;
		if (j == d)
			return 0;
	}
	if (j < n && (p[j] == 'e' || p[j] == 'E')) {
		*integer = false;
		j++;
		if (j < n && (p[j] == '+' || p[j] == '-'))
			j++;
		size_t d = j;
		while (j < n && p[j] >= '0' && p[j] <= '9')
			j++;
		if (j == d)
			return 0;
	}
	return j;
}

/*
 * The members of a flat JSON object p[0..n): values strings of printable
 * ASCII without escapes, numbers, true, false, null.  Returns how many, or
 * -1 when it is not such an object (jansson then parses it, and says what
 * is wrong if anything is).
 */
static int flat_members(const char *p, size_t n, struct jmember *m)
{
	size_t i = skip_ws(p, 0, n);
	int k = 0;
	if (i >= n || p[i] != '{')
		return -1;
	i = skip_ws(p, i + 1, n);
	if (i < n && p[i] == '}')
		return skip_ws(p, i + 1, n) == n ? 0 : -1;
	for (;;) {
		if (k == FLAT_MAX_MEMBERS || i >= n || p[i] != '"')
			return -1;
		size_t ks = ++i;
		while (i < n && p[i] != '"' && p[i] != '\\' &&
		       (unsigned char)p[i] >= 0x20 &&
		       (unsigned char)p[i] < 0x7f)
			i++;
		if (i >= n || p[i] != '"')
			return -1;
		m[k].k = p + ks;
		m[k].kn = i - ks;
		i = skip_ws(p, i + 1, n);
		if (i >= n || p[i] != ':')
			return -1;
		i = skip_ws(p, i + 1, n);
		if (i >= n)
			return -1;
		size_t vs = i;
		char c = p[i];
		if (c == '"') {
			for (i++; i < n && p[i] != '"'; i++)
				if (p[i] == '\\' ||
				    (unsigned char)p[i] < 0x20 ||
				    (unsigned char)p[i] >= 0x7f)
					return -1;
			if (i >= n)
				return -1;
			m[k].kind = 's';
			m[k].v = p + vs + 1;
			m[k].vn = i - vs - 1;
			i++;
		} else if (c == '-' || (c >= '0' && c <= '9')) {
			bool integer;
			if (!(i = scan_number(p, vs, n, &integer)))
				return -1;
			m[k].kind = integer ? 'i' : 'r';
			m[k].v = p + vs;
			m[k].vn = i - vs;
		} else {
			static const char *const words[] = {"true", "false",
							    "null"};
			int w = c == 't' ? 0 : c == 'f' ? 1 : c == 'n' ? 2 : -1;
			size_t wl = w < 0 ? 0 : strlen(words[w]);
			if (w < 0 || n - vs < wl ||
			    memcmp(p + vs, words[w], wl) != 0)
				return -1;
			m[k].kind = c;
			m[k].v = p + vs;
			m[k].vn = wl;
			i = vs + wl;
		}
		k++;
		i = skip_ws(p, i, n);
		if (i < n && p[i] == ',') {
			i = skip_ws(p, i + 1, n);
			continue;
		}
		if (i < n && p[i] == '}')
			return skip_ws(p, i + 1, n) == n ? k : -1;
		return -1;
	}
}

/*
 * A JSON number p[0..n) (scan_number's) of at most 15 digits and no
 * exponent, as strtoll (for an integer) and strtod would read it: an
 * integer part and a fraction of at most 15 digits in all is exact in a
 * double, and so is 10^k for k <= 22, so one division gives the correctly
 * rounded value (Clinger's fast path).  false for other numbers.
 */
static bool short_number(const char *p, size_t n, int64_t *iv, double *dv)
{
	static const double p10[] = {1e0,  1e1,	 1e2,  1e3, 1e4,  1e5,
				     1e6,  1e7,	 1e8,  1e9, 1e10, 1e11,
				     1e12, 1e13, 1e14, 1e15};
	size_t i = 0;
	bool neg = n && p[0] == '-';
	if (neg)
		i++;
	int64_t mant = 0;
	int ndig = 0, frac = -1;
	for (; i < n; i++) {
		char c = p[i];
		if (c == '.' && frac < 0) {
			frac = 0;
			continue;
		}
		if (c < '0' || c > '9' || ++ndig > 15)
			return false;
		mant = mant * 10 + (c - '0');
		if (frac >= 0)
			frac++;
	}
	if (frac < 0) {
		*iv = neg ? -mant : mant;
		*dv = (double)*iv;
	} else {
		double d = (double)mant / p10[frac];
		*dv = neg ? -d : d;
	}
	return true;
}

/*
 * cj_value for a struct of primitive fields whose payload is flat, without
 * building jansson's values: the same value or the same error.  Returns 0
 * or -1 as cj_value, or 1 when the payload is not flat or a number is out
 * of jansson's range (the caller then parses it with jansson).
 */
static int flat_payload(struct arena *a, const struct sk_schema *s,
			const char *p, size_t n, bool nulls, struct sk_value *v,
			char *err, size_t errlen)
{
	struct jmember m[FLAT_MAX_MEMBERS];
	if (s->type != SK_STRUCT)
		return 1;
	for (int f = 0; f < s->nfields; f++) {
		const struct sk_schema *fs = s->fields[f].schema;
		if (fs->type > SK_STRING)
			return 1; /* bytes, arrays, maps, structs */
	}
	int nm = flat_members(p, n, m);
	if (nm < 0)
		return 1;
	/* jansson's numbers: integers within int64, reals not overflowing */
	int64_t iv[FLAT_MAX_MEMBERS];
	double dv[FLAT_MAX_MEMBERS];
	for (int k = 0; k < nm; k++) {
		char num[64];
		if (m[k].kind != 'i' && m[k].kind != 'r')
			continue;
		if (short_number(m[k].v, m[k].vn, &iv[k], &dv[k]))
			continue;
		if (m[k].vn >= sizeof(num))
			return 1;
		memcpy(num, m[k].v, m[k].vn);
		num[m[k].vn] = '\0';
		errno = 0;
		if (m[k].kind == 'i') {
			iv[k] = strtoll(num, NULL, 10);
			if (errno == ERANGE)
				return 1;
			dv[k] = (double)iv[k];
		} else {
			dv[k] = strtod(num, NULL);
			if (errno == ERANGE &&
			    (dv[k] == HUGE_VAL || dv[k] == -HUGE_VAL))
				return 1;
		}
	}
	memset(v, 0, sizeof(*v));
	v->s = s;
	v->fields = arena_alloc(a, (size_t)(s->nfields ? s->nfields : 1) *
					   sizeof(*v->fields));
	if (!v->fields)
		return -1;
	v->n = (size_t)s->nfields;
	for (int f = 0; f < s->nfields; f++) {
		const struct sk_schema *fs = s->fields[f].schema;
		const char *name = s->fields[f].name;
		size_t nl = strlen(name);
		struct sk_value *fv = &v->fields[f];
		int k = -1; /* the last of a name wins, as in jansson */
		for (int q = 0; q < nm; q++)
			if (m[q].kn == nl && memcmp(m[q].k, name, nl) == 0)
				k = q;
		if (k < 0 || m[k].kind == 'n') {
			if (cj_value(a, fs, NULL, (struct span){0}, nulls, fv,
				     1, err, errlen) < 0)
				return -1;
			continue;
		}
		fv->s = fs;
		char kind = m[k].kind;
		switch (fs->type) {
		case SK_INT8:
		case SK_INT16:
		case SK_INT32:
		case SK_INT64:
			if (kind != 'i')
				goto bad;
			fv->i = iv[k];
			continue;
		case SK_FLOAT32:
		case SK_FLOAT64:
			if (kind == 'i' || kind == 'r') {
				fv->d = dv[k];
				continue;
			}
			if (kind == 's') /* "NaN", "Infinity": jansson's way */
				return 1;
			goto bad;
		case SK_BOOLEAN:
			if (kind != 't' && kind != 'f')
				goto bad;
			fv->i = kind == 't';
			continue;
		case SK_STRING:
			if (kind != 's')
				goto bad;
			fv->n = m[k].vn;
			fv->p = arena_strndup(a, m[k].v, m[k].vn);
			if (!fv->p)
				return -1;
			continue;
		default:
			return 1;
		}
	bad:
		snprintf(err, errlen,
			 "JSON value does not match its schema type");
		return -1;
	}
	return 0;
}

int sk_json_decode_cached(struct sk_jcache *jc, struct arena *a,
			  const uint8_t *data, size_t n, int flags,
			  struct sk_value *v, char *err, size_t errlen)
{
	bool schemas = flags & SK_JSON_SCHEMAS;
	struct span sc, pl;
	const struct sk_schema *s = NULL;
	if (jc && schemas &&
	    envelope(jc, (const char *)data, n, &sc, &pl, &s) &&
	    sc.p[0] == '{' && (s || (s = jc_schema(jc, sc.p, sc.n)))) {
		sk_oom(err, errlen);
		int rc = flat_payload(a, s, pl.p, pl.n, flags & SK_JSON_NULLS,
				      v, err, errlen);
		if (rc <= 0)
			return rc;
		json_t *j = json_loadb(pl.p, pl.n,
				       JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		if (j) {
			memset(v, 0, sizeof(*v));
			sk_oom(err, errlen);
			rc = cj_value(a, s, j, pl, flags & SK_JSON_NULLS, v, 0,
				      err, errlen);
			json_decref(j);
			return rc;
		}
	}
	return sk_json_decode(a, data, n, flags, v, err, errlen);
}

void sk_string_decode(struct arena *a, const uint8_t *data, size_t n,
		      struct sk_value *v)
{
	static const struct sk_schema str = {.type = SK_STRING,
					     .optional = true};
	memset(v, 0, sizeof(*v));
	v->s = &str;
	v->p = arena_strndup(a, (const char *)data, n);
	v->n = n;
}
