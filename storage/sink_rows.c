/*
 * sink_rows: one record to one row (storage/sink_cfg.h): the converters,
 * then the key columns by pk.mode and the value columns, as Confluent's
 * FieldsMetadata and Debezium's JDBC sink take them.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/sink_cfg.h"

#define MAX_COLS 1600 /* Postgres's own limit */

/* Kafka's ShortSerializer ... DoubleSerializer: big-endian, fixed size. */
static int number(enum sk_conv conv, const uint8_t *data, int32_t len,
		  struct sk_value *v, struct sk_fault *f)
{
	static const struct sk_schema sh = {.type = SK_INT16, .optional = true},
				      in = {.type = SK_INT32, .optional = true},
				      lo = {.type = SK_INT64, .optional = true},
				      fl = {.type = SK_FLOAT32,
					    .optional = true},
				      db = {.type = SK_FLOAT64,
					    .optional = true};
	int32_t want = conv == SKC_SHORT		      ? 2
		       : conv == SKC_INT || conv == SKC_FLOAT ? 4
							      : 8;
	if (len != want) {
		snprintf(f->message, sizeof(f->message),
			 "Size of data received by %s is not %d",
			 conv == SKC_SHORT   ? "ShortDeserializer"
			 : conv == SKC_INT   ? "IntegerDeserializer"
			 : conv == SKC_LONG  ? "LongDeserializer"
			 : conv == SKC_FLOAT ? "FloatDeserializer"
					     : "DoubleDeserializer",
			 want);
		return -1;
	}
	uint64_t u = 0;
	for (int32_t i = 0; i < len; i++)
		u = u << 8 | data[i];
	switch (conv) {
	case SKC_SHORT:
		v->s = &sh;
		v->i = (int16_t)u;
		break;
	case SKC_INT:
		v->s = &in;
		v->i = (int32_t)(uint32_t)u;
		break;
	case SKC_LONG:
		v->s = &lo;
		v->i = (int64_t)u;
		break;
	case SKC_FLOAT: {
		uint32_t w = (uint32_t)u;
		float x;
		memcpy(&x, &w, 4);
		v->s = &fl;
		v->d = x;
		break;
	}
	default:
		v->s = &db;
		memcpy(&v->d, &u, 8);
		break;
	}
	return 0;
}

static int decode(const struct sink_cfg *c, struct arena *a, bool is_key,
		  const char *topic, const uint8_t *data, int32_t len,
		  sk_schema_fn lookup, void *larg, struct sk_value *v,
		  struct sk_fault *f)
{
	enum sk_conv conv = is_key ? c->key_conv : c->value_conv;
	char err[400] = "";
	f->stage = is_key ? "KEY_CONVERTER" : "VALUE_CONVERTER";
	f->class_name = sink_conv_class(conv);
	f->exception = "org.apache.kafka.connect.errors.DataException";
	memset(v, 0, sizeof(*v));
	switch (conv) {
	case SKC_STRING:
		sk_string_decode(a, data, (size_t)len, v);
		return v->p ? 0 : -1;
	case SKC_BYTES: {
		static const struct sk_schema bytes = {.type = SK_BYTES,
						       .optional = true};
		v->s = &bytes;
		v->p = (const char *)data;
		v->n = (size_t)len;
		return 0;
	}
	case SKC_JSON:
		if (sk_json_decode_cached(
			    c->jcache, a, data, (size_t)len,
			    ((is_key ? c->key_schemas : c->value_schemas)
				     ? SK_JSON_SCHEMAS
				     : 0) |
				    ((is_key ? c->key_nulls : c->value_nulls)
					     ? SK_JSON_NULLS
					     : 0),
			    v, err, sizeof(err)) == 0)
			return 0;
		snprintf(f->message, sizeof(f->message), "%s", err);
		return -1;
	case SKC_SHORT:
	case SKC_INT:
	case SKC_LONG:
	case SKC_FLOAT:
	case SKC_DOUBLE:
		return number(conv, data, len, v, f);
	case SKC_AVRO:
		break;
	}
	if (len < 5 || data[0] != 0) {
		snprintf(f->message, sizeof(f->message),
			 "Failed to deserialize data for topic %s to Avro: "
			 "Unknown magic byte!",
			 topic);
		return -1;
	}
	int32_t id =
		(int32_t)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 |
			  (uint32_t)data[3] << 8 | data[4]);
	const struct sk_schema *s = lookup ? lookup(larg, id) : NULL;
	if (!s) {
		f->schema_missing = true;
		snprintf(f->message, sizeof(f->message),
			 "Failed to deserialize data for topic %s to Avro: "
			 "Error retrieving Avro %s schema for id %d: Schema "
			 "%d not found; error code: 40403",
			 topic, is_key ? "key" : "value", id, id);
		return -1;
	}
	if (sk_avro_decode(a, s, data + 5, (size_t)len - 5, v, err,
			   sizeof(err)) < 0) {
		snprintf(f->message, sizeof(f->message),
			 "Failed to deserialize data for topic %s to Avro: %s",
			 topic, err);
		return -1;
	}
	return 0;
}

struct rb {
	struct arena *a;
	struct sk_row *row;
	int cap;
};

static int add_col(struct rb *b, const char *name, const struct sk_schema *s,
		   const char *text)
{
	int n = b->row->nkey + b->row->nval;
	if (n >= MAX_COLS)
		return -1;
	if (n == b->cap) {
		int32_t cap = b->cap;
		struct sk_col *g =
			arena_grow(b->a, b->row->cols, n, &cap, sizeof(*g));
		if (!g)
			return -1;
		b->row->cols = g;
		b->cap = cap;
	}
	b->row->cols[n] = (struct sk_col){name, s, text};
	return 0;
}

static bool listed(char *const *l, const char *name)
{
	for (; l && *l; l++)
		if (strcmp(*l, name) == 0)
			return true;
	return false;
}

static bool is_key_col(const struct sk_row *r, const char *name)
{
	for (int i = 0; i < r->nkey; i++)
		if (strcmp(r->cols[i].name, name) == 0)
			return true;
	return false;
}

static int put_fault(struct sk_fault *f, const struct sink_cfg *c,
		     const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int put_fault(struct sk_fault *f, const struct sink_cfg *c,
		     const char *fmt, ...)
{
	va_list ap;
	f->stage = "TASK_PUT";
	f->class_name =
		c->debezium ? "io.debezium.connector.jdbc.JdbcSinkConnectorTask"
			    : "io.confluent.connect.jdbc.sink.JdbcSinkTask";
	f->exception = "org.apache.kafka.connect.errors.ConnectException";
	va_start(ap, fmt);
	vsnprintf(f->message, sizeof(f->message), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * Texts (or, names false, column names) of r's columns [from, to), each
 * with its length before it ("3:abc"; NULL is "-"), so that no two lists
 * of columns give the same string whatever bytes they hold.
 */
static const char *joined(struct arena *a, const struct sk_row *r, int from,
			  int to, bool names)
{
	size_t n = 1;
	for (int i = from; i < to; i++) {
		const char *v = names ? r->cols[i].name : r->cols[i].text;
		n += (v ? strlen(v) : 0) + 24;
	}
	char *o = arena_alloc(a, n);
	if (!o)
		return NULL;
	size_t k = 0;
	for (int i = from; i < to; i++) {
		const char *v = names ? r->cols[i].name : r->cols[i].text;
		if (!v) {
			o[k++] = '-';
			continue;
		}
		size_t l = strlen(v);
		k += (size_t)snprintf(o + k, n - k, "%zu:", l);
		memcpy(o + k, v, l);
		k += l;
	}
	o[k] = '\0';
	return o;
}

static const struct sk_schema str_schema = {.type = SK_STRING};
static const struct sk_schema int_schema = {.type = SK_INT32};
static const struct sk_schema long_schema = {.type = SK_INT64};

/* Key columns by pk.mode; value v may be NULL (a delete). */
static int key_cols(const struct sink_cfg *c, struct rb *b, const char *topic,
		    int32_t partition, int64_t offset, int64_t ts,
		    const struct sk_value *k, const struct sk_value *v,
		    struct sk_fault *f)
{
	struct arena *a = b->a;
	char err[300];
	const char *text;
	switch (c->pk) {
	case PK_NONE:
		return 0;
	case PK_KAFKA: {
		const char *n0 = c->npk_fields == 3 ? c->pk_fields[0]
						    : "__connect_topic";
		const char *n1 = c->npk_fields == 3 ? c->pk_fields[1]
						    : "__connect_partition";
		const char *n2 = c->npk_fields == 3 ? c->pk_fields[2]
						    : "__connect_offset";
		const char *names[3] = {n0, n1, n2};
		const struct sk_schema *types[3] = {&str_schema, &int_schema,
						    &long_schema};
		const char *texts[3] = {topic,
					arena_printf(a, "%" PRId32, partition),
					arena_printf(a, "%" PRId64, offset)};
		for (int i = 0; i < 3; i++) {
			if (!texts[i] ||
			    add_col(b, names[i], types[i], texts[i]) < 0)
				return -1;
			b->row->nkey++;
		}
		return 0;
	}
	case PK_RECORD_KEY: {
		if (!k || k->null)
			return put_fault(
				f, c,
				"Sink connector is configured with "
				"'delete.enabled=%s' and 'pk.mode=record_key' "
				"and therefore requires records with a "
				"non-null key and non-null Struct or primitive "
				"key schema, but found record at "
				"(topic='%s',partition=%d,offset=%" PRId64
				",timestamp=%" PRId64
				") with a null key and null key schema.",
				c->delete_enabled ? "true" : "false", topic,
				partition, offset, ts);
		const struct sk_schema *ks = sk_plain(k->s);
		if (ks->type == SK_STRUCT) {
			for (int i = 0; i < c->npk_fields; i++)
				if (!sk_field_get(k, c->pk_fields[i]))
					return put_fault(
						f, c,
						"PK mode for table is "
						"RECORD_KEY with configured "
						"PK fields %s, but record key "
						"schema does not contain "
						"field: %s",
						c->pk_fields[i],
						c->pk_fields[i]);
			for (int i = 0; i < ks->nfields; i++) {
				const char *name = ks->fields[i].name;
				if (c->npk_fields &&
				    !listed(c->pk_fields, name))
					continue;
				if (sk_sql_text(a, &k->fields[i], &text, err,
						sizeof(err)) < 0)
					return put_fault(f, c, "%s", err);
				if (add_col(b, name, ks->fields[i].schema,
					    text) < 0)
					return -1;
				b->row->nkey++;
			}
			return 0;
		}
		if (c->npk_fields != 1)
			return put_fault(
				f, c,
				"Need exactly one PK column defined since the "
				"key schema for records is a primitive type, "
				"defined columns are: [%s]",
				c->npk_fields ? c->pk_fields[0] : "");
		const char *name = c->pk_fields[0];
		const struct sk_schema *s = k->s;
		if (sk_sql_text(a, k, &text, err, sizeof(err)) < 0)
			return put_fault(f, c, "%s", err);
		/* A text key takes the type of the value's field of the same
		 * name (the seed's RESEARCH: an int in the value, "0" in the
		 * key); without one, an existing column's type wins at
		 * apply time (the statements cast to the table's types). */
		const struct sk_value *vf = sk_field_get(v, name);
		if (ks->type == SK_STRING && vf && text) {
			const struct sk_schema *vs = sk_plain(vf->s);
			if (vs && vs->type != SK_STRUCT &&
			    vs->type != SK_NONE) {
				if (sk_sql_text_as(a, vs, text, &text, err,
						   sizeof(err)) < 0)
					return put_fault(f, c, "%s", err);
				s = vs;
			}
		}
		if (add_col(b, name, s, text) < 0)
			return -1;
		b->row->nkey = 1;
		return 0;
	}
	case PK_RECORD_VALUE: {
		const struct sk_schema *vs = v ? sk_plain(v->s) : NULL;
		if (!v || v->null || !vs || vs->type != SK_STRUCT)
			return put_fault(f, c,
					 "PK mode for table is RECORD_VALUE, "
					 "but record value schema is not a "
					 "Struct (topic='%s',offset=%" PRId64
					 ")",
					 topic, offset);
		for (int i = 0; i < c->npk_fields; i++)
			if (!sk_field_get(v, c->pk_fields[i]))
				return put_fault(
					f, c,
					"PK mode for table is RECORD_VALUE "
					"with configured PK fields %s, but "
					"record value schema does not contain "
					"field: %s",
					c->pk_fields[i], c->pk_fields[i]);
		for (int i = 0; i < vs->nfields; i++) {
			const char *name = vs->fields[i].name;
			if (c->npk_fields && !listed(c->pk_fields, name))
				continue;
			if (sk_sql_text(a, &v->fields[i], &text, err,
					sizeof(err)) < 0)
				return put_fault(f, c, "%s", err);
			if (add_col(b, name, vs->fields[i].schema, text) < 0)
				return -1;
			b->row->nkey++;
		}
		return 0;
	}
	}
	return 0;
}

static int value_cols(const struct sink_cfg *c, struct rb *b, const char *topic,
		      int64_t offset, const struct sk_value *v,
		      struct sk_fault *f)
{
	const struct sk_schema *vs = sk_plain(v->s);
	char err[300];
	if (!vs || vs->type != SK_STRUCT)
		return put_fault(f, c,
				 "Value schema must be of type Struct "
				 "(topic='%s',offset=%" PRId64 ")",
				 topic, offset);
	for (int i = 0; i < vs->nfields; i++) {
		const char *name = vs->fields[i].name;
		if (is_key_col(b->row, name))
			continue;
		if (c->whitelist && !listed(c->whitelist, name))
			continue;
		const struct sk_schema *fs = vs->fields[i].schema;
		if (!sk_sql_type(fs))
			return put_fault(f, c,
					 "%s (%s) type doesn't have a mapping "
					 "to the SQL database column type",
					 name,
					 sk_plain(fs)->type == SK_MAP
						 ? "MAP"
						 : "STRUCT");
		const char *text;
		if (sk_sql_text(b->a, &v->fields[i], &text, err, sizeof(err)) <
		    0)
			return put_fault(f, c, "field %s: %s", name, err);
		if (add_col(b, name, fs, text) < 0)
			return -1;
		b->row->nval++;
	}
	return 0;
}

/* Debezium's envelope: a struct with op and after. */
static bool is_envelope(const struct sk_value *v)
{
	const struct sk_value *op = sk_field_get(v, "op");
	return op && !op->null && sk_plain(op->s)->type == SK_STRING &&
	       sk_field_get(v, "after") && sk_field_get(v, "source");
}

/*
 * row->table: collection.name.format with the ${source.*} of v's source
 * block (v a Debezium envelope).  Returns 0, or -1 with f filled in.
 */
static int table_by_source(const struct sink_cfg *c, struct arena *a,
			   const char *topic, const struct sk_value *v,
			   struct sk_row *row, struct sk_fault *f)
{
	static const char *const names[3] = {"db", "schema", "table"};
	const char *src[3] = {NULL, NULL, NULL};
	const struct sk_value *sb =
		is_envelope(v) ? sk_field_get(v, "source") : NULL;
	for (int i = 0; i < 3; i++) {
		const struct sk_value *x = sk_field_get(sb, names[i]);
		if (x && !x->null && sk_plain(x->s)->type == SK_STRING &&
		    !memchr(x->p, '\0', x->n) &&
		    !(src[i] = arena_strndup(a, x->p, x->n)))
			return put_fault(f, c, "out of memory");
	}
	char full[1024];
	if (sink_cfg_name(c, topic, src, full, sizeof(full)) < 0)
		return put_fault(f, c,
				 "Failed to resolve table name with format "
				 "'%s', check source field in topic '%s'",
				 c->table_format, topic);
	/* the name is the producer's text: unquoted, it must be a plain
	 * identifier (Debezium quotes nothing and would send it as SQL) */
	char schema[256], table[256];
	sink_cfg_split(full, schema, sizeof(schema), table, sizeof(table));
	if (!c->quote &&
	    ((schema[0] && !sk_ident_plain(schema)) || !sk_ident_plain(table)))
		return put_fault(f, c,
				 "Table name '%.300s' from the source block "
				 "of the record in topic '%s' is not a plain "
				 "identifier ([A-Za-z_][A-Za-z0-9_$]* a part) "
				 "and identifiers are not quoted; set "
				 "quote.identifiers=true to write it",
				 full, topic);
	if (!(row->table = arena_strndup(a, full, strlen(full))))
		return put_fault(f, c, "out of memory");
	return 0;
}

int sink_row(const struct sink_cfg *c, struct arena *a, const char *topic,
	     int32_t partition, int64_t offset, int64_t ts, const uint8_t *key,
	     int32_t klen, const uint8_t *value, int32_t vlen,
	     sk_schema_fn lookup, void *larg, struct sk_row *row,
	     struct sk_fault *f)
{
	struct sk_value kv, vv;
	const struct sk_value *k = NULL, *v = NULL;
	memset(row, 0, sizeof(*row));
	memset(f, 0, sizeof(*f));
	row->offset = offset;
	row->op = 'u';
	bool need_key = c->pk == PK_RECORD_KEY;
	if (key && klen >= 0 && need_key) {
		if (decode(c, a, true, topic, key, klen, lookup, larg, &kv, f) <
		    0)
			return -1;
		k = &kv;
	}
	if (value && vlen >= 0) {
		if (decode(c, a, false, topic, value, vlen, lookup, larg, &vv,
			   f) < 0)
			return -1;
		v = vv.null ? NULL : &vv;
	}
	/* a tombstone has no source block to name its table by: Debezium
	 * leaves it */
	if (c->by_source && !v) {
		row->op = 's';
		return 0;
	}
	if (c->by_source && table_by_source(c, a, topic, v, row, f) < 0)
		return -1;
	if (v && c->debezium && is_envelope(v)) {
		const struct sk_value *op = sk_field_get(v, "op");
		char o = op->n ? op->p[0] : '?';
		if (o == 'd') {
			row->op = c->delete_enabled ? 'd' : 's';
			v = NULL;
		} else if (o == 'c' || o == 'r' || o == 'u') {
			v = sk_field_get(v, "after");
			if (!v || v->null)
				row->op = 's';
		} else {
			row->op = 's'; /* truncate, message */
		}
		if (row->op == 's')
			return 0;
	} else if (!v) {
		if (c->delete_enabled)
			row->op = 'd';
		else if (c->debezium)
			row->op = 's';
		else
			return put_fault(
				f, c,
				"Sink connector is configured with "
				"'delete.enabled=false' and 'pk.mode=%s' and "
				"therefore requires records with a non-null "
				"Struct value and non-null Struct schema, but "
				"found record at "
				"(topic='%s',partition=%d,offset=%" PRId64
				",timestamp=%" PRId64
				") with a null value and null value schema.",
				c->pk == PK_NONE	 ? "none"
				: c->pk == PK_KAFKA	 ? "kafka"
				: c->pk == PK_RECORD_KEY ? "record_key"
							 : "record_value",
				topic, partition, offset, ts);
		if (row->op == 's')
			return 0;
	}
	struct rb b = {a, row, 0};
	if (key_cols(c, &b, topic, partition, offset, ts, k, v, f) < 0)
		return f->message[0] ? -1
				     : put_fault(f, c,
						 "out of memory or too "
						 "many columns");
	if (row->op == 'u' && value_cols(c, &b, topic, offset, v, f) < 0)
		return f->message[0] ? -1
				     : put_fault(f, c,
						 "out of memory or too "
						 "many columns");
	/* field names are the producer's text too */
	for (int i = 0; !c->quote && i < row->nkey + row->nval; i++)
		if (!sk_ident_plain(row->cols[i].name))
			return put_fault(
				f, c,
				"Column name '%.300s' of the record "
				"in topic '%s' is not a plain "
				"identifier ([A-Za-z_][A-Za-z0-9_$]*) "
				"and identifiers are not quoted; set "
				"%s to write it",
				row->cols[i].name, topic,
				c->debezium ? "quote.identifiers=true"
					    : "quote.sql.identifiers=always");
	row->keystr = joined(a, row, 0, row->nkey, false);
	row->keysig = joined(a, row, 0, row->nkey, true);
	/* The key's names, then the values': "k" and "v" are not "kv". */
	const char *vals =
		joined(a, row, row->nkey, row->nkey + row->nval, true);
	size_t n = row->keysig && vals ? strlen(row->keysig) + strlen(vals) + 2
				       : 0;
	char *sig = n ? arena_alloc(a, n) : NULL;
	if (sig)
		snprintf(sig, n, "%s|%s", row->keysig, vals);
	row->sig = sig;
	if (!row->keystr || !row->sig)
		return put_fault(f, c, "out of memory");
	return 0;
}
