/*
 * sink_int: what the JDBC sink's files share (storage/sink.c the applier,
 * sink_conv.c the converters, sink_sql.c the SQL).  Nothing outside the
 * sink includes this.
 *
 * A record's key and value become Connect-typed values (struct sk_value,
 * typed by struct sk_schema, Kafka Connect's schema model plus what Avro
 * decoding needs), then rows of columns as SQL text.  Everything a batch
 * decodes lives in the batch's arena; schemas read from the registry live
 * in the task's schema cache.
 */
#ifndef SAMSA_SINK_INT_H
#define SAMSA_SINK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "protocol/arena.h"

/* Connect's schema types. */
enum sk_type {
	SK_INT8,
	SK_INT16,
	SK_INT32,
	SK_INT64,
	SK_FLOAT32,
	SK_FLOAT64,
	SK_BOOLEAN,
	SK_STRING,
	SK_BYTES,
	SK_ARRAY,
	SK_MAP,
	SK_STRUCT,
	SK_NONE, /* a null in schemaless JSON: type unknown */
};

/* How the bytes are laid out in Avro (AV_CONNECT: not Avro). */
enum sk_avro {
	AV_CONNECT,
	AV_NULL,
	AV_BOOLEAN,
	AV_INT,
	AV_LONG,
	AV_FLOAT,
	AV_DOUBLE,
	AV_BYTES,
	AV_STRING,
	AV_RECORD,
	AV_ENUM,
	AV_ARRAY,
	AV_MAP,
	AV_UNION,
	AV_FIXED,
};

struct sk_schema;

struct sk_field {
	const char *name;
	struct sk_schema *schema;
};

struct sk_schema {
	enum sk_type type;
	const char *name; /* Connect name, e.g. a logical type's; or NULL */
	bool optional;
	bool has_default;
	bool decimals; /* JSON: a Decimal in it, read from the number's text */
	const struct sk_value *def; /* JSON: the default, for a null */
	int32_t scale;		    /* Decimal */
	int nfields;
	struct sk_field *fields; /* STRUCT */
	struct sk_schema *elem;	 /* ARRAY element, MAP value */
	struct sk_schema *kelem; /* MAP key */
	/* Avro */
	enum sk_avro av;
	int nbranches;
	struct sk_schema **branches; /* UNION */
	int nsymbols;
	const char **symbols; /* ENUM */
	int32_t fixed_size;
	const char *fullname; /* named Avro types */
};

struct sk_value {
	const struct sk_schema *s; /* for a union: the branch taken */
	bool null;
	int64_t i; /* ints, boolean */
	double d;
	const char *p; /* STRING, BYTES (borrowed or in the arena) */
	size_t n;      /* bytes; elements of an ARRAY; entries of a MAP */
	struct sk_value *fields; /* STRUCT: schema's fields; ARRAY elements;
				  * MAP: keys then values (2n) */
};

/* The schema a union stands for (its non-null branch), else s itself. */
const struct sk_schema *sk_plain(const struct sk_schema *s);
/* A field of a struct value by name, or NULL. */
const struct sk_value *sk_field_get(const struct sk_value *v, const char *name);

/* --- converters (sink_conv.c) ------------------------------------------ */

enum sk_conv {
	SKC_STRING,
	SKC_JSON,
	SKC_AVRO,
	SKC_BYTES,
	/* Kafka's number converters (org.apache.kafka.connect.converters):
	 * big-endian, as Kafka's serializers and ksqlDB's KAFKA format */
	SKC_SHORT,
	SKC_INT,
	SKC_LONG,
	SKC_FLOAT,
	SKC_DOUBLE,
};

/*
 * An Avro schema (the registry's JSON text) as a Connect schema with its
 * decoding plan, allocated in a (long-lived) arena.  NULL with err set when
 * the text is not a schema this decoder reads.
 */
struct sk_schema *sk_avro_parse(struct arena *a, const char *text, char *err,
				size_t errlen);

/*
 * Decodes Avro binary data[0..n) of schema s into v (strings borrow data).
 * Returns 0, or -1 with err set (truncated, bad union index ...).
 */
int sk_avro_decode(struct arena *a, const struct sk_schema *s,
		   const uint8_t *data, size_t n, struct sk_value *v, char *err,
		   size_t errlen);

/* sk_json_decode's flags: JsonConverter's schemas.enable, and
 * replace.null.with.default=false (a null stays null; by default a field's
 * default stands for it). */
#define SK_JSON_SCHEMAS 1
#define SK_JSON_NULLS	2

/*
 * JsonConverter: with SK_JSON_SCHEMAS, data is {"schema":...,
 * "payload":...}; without, a plain JSON value whose schema is inferred
 * (integers INT64, other numbers FLOAT64, objects STRUCT).  Returns 0, or
 * -1 with err.
 */
int sk_json_decode(struct arena *a, const uint8_t *data, size_t n, int flags,
		   struct sk_value *v, char *err, size_t errlen);

/*
 * JsonConverter schemas by their bytes, parsed once (a task's, for its
 * life).  What sk_json_decode_cached returns may point into it: trim only
 * while nothing decoded is in use.
 */
struct sk_jcache;
/* NULL when memory runs out. */
struct sk_jcache *sk_jcache_new(void);
/* Full: it takes no more schemas (those parse each time) until trimmed. */
bool sk_jcache_full(const struct sk_jcache *jc);
/* Empties it when full. */
void sk_jcache_trim(struct sk_jcache *jc);
void sk_jcache_free(struct sk_jcache *jc);

/*
 * sk_json_decode, with the schema of {"schema":...,"payload":...} from jc
 * (which may be NULL): the same values and the same errors.
 */
int sk_json_decode_cached(struct sk_jcache *jc, struct arena *a,
			  const uint8_t *data, size_t n, int flags,
			  struct sk_value *v, char *err, size_t errlen);

/* StringConverter: an optional STRING (data copied into the arena). */
void sk_string_decode(struct arena *a, const uint8_t *data, size_t n,
		      struct sk_value *v);

/* --- SQL (sink_sql.c) -------------------------------------------------- */

/*
 * Postgres's type for a Connect schema, as Confluent's
 * PostgreSqlDatabaseDialect (and Debezium's io.debezium.time.* names);
 * NULL when no column can hold it (a nested STRUCT, a MAP).
 */
const char *sk_sql_type(const struct sk_schema *s);

/*
 * Whether values of s are instants (Connect's Timestamp): their text is
 * UTC with its offset, and a timestamp column gets the time of the
 * instant in the session's zone.  Debezium's Timestamp, MicroTimestamp and
 * NanoTimestamp are local date-times (their text, written with +00 too,
 * goes into a timestamp column as it is).
 */
bool sk_sql_instant(const struct sk_schema *s);

/*
 * The SQL text of a value for a column of type sk_sql_type(v->s): into the
 * arena, or NULL for SQL NULL.  Returns 0, or -1 with err when the value
 * cannot be written (a NUL in a string, a STRUCT ...).
 */
int sk_sql_text(struct arena *a, const struct sk_value *v, const char **out,
		char *err, size_t errlen);

/*
 * Parses text as a value of schema s (a string key typed by the value's
 * field of the same name): out gets the value's SQL text (in the arena).
 * Returns 0, or -1 with err when text is not such a value.
 */
int sk_sql_text_as(struct arena *a, const struct sk_schema *s, const char *text,
		   const char **out, char *err, size_t errlen);

/*
 * Puts "out of memory" in err: what the decoders and sk_sql_text say when
 * the arena fails, preset per value (cheaper than snprintf).
 */
void sk_oom(char *err, size_t errlen);

/* Appends the identifier, quoted when quote, to buf (grown in arena). */
char *sk_ident(struct arena *a, const char *name, bool quote);

/*
 * Whether name may go into SQL unquoted: [A-Za-z_][A-Za-z0-9_$]*.  Names
 * from record data (${source.*}, field names) must pass it when
 * identifiers are not quoted, or they would be SQL text of the producer's.
 */
bool sk_ident_plain(const char *name);

/* One column of a row. */
struct sk_col {
	const char *name;
	const struct sk_schema *s; /* for the SQL type; NULL: existing col */
	const char *text;	   /* NULL: SQL NULL */
};

#endif
