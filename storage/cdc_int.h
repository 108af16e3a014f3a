/*
 * cdc_int: what the change data capture task (storage/cdc.c) and the
 * Debezium event formatting (storage/cdc_event.c) share.
 */
#ifndef SAMSA_CDC_INT_H
#define SAMSA_CDC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "protocol/kbuf.h"

enum cdc_conv { CONV_JSON, CONV_STRING, CONV_AVRO };
enum cdc_decimal { DEC_PRECISE, DEC_DOUBLE, DEC_STRING };
enum cdc_delete { DEL_DROP, DEL_NONE, DEL_REWRITE };

/* What shapes a record (parsed from the connector config). */
struct cdc_opts {
	char *prefix;
	char *dbname;
	bool tombstones;
	enum cdc_decimal decimal;
	bool time_connect;    /* time.precision.mode=connect */
	bool time_micro;      /* =adaptive_time_microseconds: MicroTime */
	bool interval_string; /* interval.handling.mode=string */
	bool binary_base64;   /* binary.handling.mode=base64 or hex: a string */
	bool binary_hex;      /* binary.handling.mode=hex */
	enum cdc_conv key_conv, value_conv;
	bool key_schemas, value_schemas;
	bool unwrap;
	bool unwrap_drop_tombstones;
	enum cdc_delete unwrap_delete;
	char **add_fields;  /* NULL-terminated, e.g. "op", "source.ts_ms" */
	char **add_headers; /* the same for add.headers, CDC_MAX_HEADERS */
};

struct cdc_col {
	char *name;
	uint32_t oid;
	int32_t typmod;
	bool key;
	bool optional;
	bool excluded; /* column.include/exclude.list: not in values */
};

/* A captured table, from the catalog or a pgoutput Relation message. */
struct cdc_rel {
	uint32_t relid;
	char *schema, *table, *topic;
	char replident;
	int ncols;
	struct cdc_col *cols;
	bool included;
	json_t *key_schema;   /* NULL: no key columns, null keys */
	json_t *value_schema; /* <topic>.Value, optional */
	json_t *env_schema;   /* <topic>.Envelope */
	struct cdc_topic *tp;
	/* AvroConverter: the registry ids of the key and value schemas
	 * (-1 while unknown) and the subjects' schema texts. */
	int32_t key_id, value_id;
	char *key_avro, *value_avro;
	/* JsonConverter and StringConverter: the record text that does not
	 * change from row to row (cdc_event.c), built by cdc_rel_schemas;
	 * NULL: every record goes through jansson trees. */
	struct cdc_render *render;
	struct cdc_rel *next;
};

/* The text of an unchanged TOASTed column in a pgoutput tuple. */
extern const char cdc_unchanged[];

/* One change to format.  before/after: a text per column (NULL = SQL
 * null, cdc_unchanged), or the whole tuple NULL when absent. */
struct cdc_change {
	char op; /* r c u d t */
	char **before, **after;
	int64_t commit_ms;
	int64_t xid;
	uint64_t lsn;
	uint64_t commit_lsn;
	bool snapshot;
	bool last_snapshot;
};

/* The most headers ExtractNewRecordState's add.headers may name. */
#define CDC_MAX_HEADERS 16

/* A record header a transform adds (value.len -1: null). */
struct cdc_header {
	struct kstr key, value;
};

/* A record to append: key/val (NULL = null) and its headers borrowed for
 * the call only, so the formatter may hand over its reused buffers. */
typedef void (*cdc_emit_fn)(void *arg, const char *key, size_t klen,
			    const char *val, size_t vlen,
			    const struct cdc_header *hdrs, int nhdrs);

/* (Re)builds rel's schemas from its columns; with an AvroConverter also
 * their Avro texts (key_avro, value_avro), ids reset to -1; without one,
 * rel->render.  o must outlive rel's use (render borrows nothing of it, but
 * is only valid for the same options). */
void cdc_rel_schemas(const struct cdc_opts *o, struct cdc_rel *rel);

/* Frees what cdc_rel_schemas built (NULL-safe): the schemas, their Avro
 * texts and the render, all NULL after. */
void cdc_rel_schemas_free(struct cdc_rel *rel);

/* The Connect schema of rel's record values: the envelope, or what the
 * ExtractNewRecordState transform makes of it.  New reference. */
json_t *cdc_value_schema(const struct cdc_opts *o, const struct cdc_rel *rel);

/*
 * storage/cdc_avro.c: the Avro schema AvroData makes of a Connect schema
 * (JsonConverter's JSON form), as the JSON text Avro Java writes (caller
 * frees; NULL when memory runs out); and a value under it as Avro binary,
 * appended to w (-1 when the value does not fit the schema).
 */
char *cdc_avro_schema(const json_t *connect);
struct kb_writer;
int cdc_avro_encode(struct kb_writer *w, const json_t *connect,
		    const json_t *value);

/*
 * Calls emit for each record Debezium makes of ch (an event, maybe a
 * tombstone; after the transform, maybe none).  Returns the number of
 * records, or -1 when a value does not parse (a date Debezium's
 * DateTimeFormat would refuse: nothing is emitted) or the AvroConverter
 * cannot write a value under its schema (nothing more is emitted then).
 */
int cdc_format(const struct cdc_opts *o, const struct cdc_rel *rel,
	       const struct cdc_change *ch, cdc_emit_fn emit, void *arg);

/* Why the last cdc_format returned -1 when a value did not parse (valid
 * until the next call), or NULL (the AvroConverter). */
const char *cdc_format_error(void);

/*
 * cdc_format through jansson trees, whatever rel->render holds: what the
 * AvroConverter uses, and the reference the direct renderer (used when
 * rel->render is set) must match byte for byte.
 */
int cdc_format_tree(const struct cdc_opts *o, const struct cdc_rel *rel,
		    const struct cdc_change *ch, cdc_emit_fn emit, void *arg);

/*
 * The clock behind an event's own ts_ms (when samsa processed it):
 * st_now_ms, except in tests that compare two renderings byte for byte.
 */
extern int64_t (*cdc_clock_ms)(void);

/*
 * Debezium's heartbeat (heartbeat.interval.ms): the Connect schemas of its
 * key io.debezium.connector.common.ServerNameKey {serverName} and value
 * io.debezium.connector.common.Heartbeat {ts_ms} (new references), and the
 * record itself through the connector's converters (ids: the AvroConverter
 * schema ids), given to emit.
 */
void cdc_heartbeat_schemas(json_t **key, json_t **value);
void cdc_heartbeat(const struct cdc_opts *o, int32_t key_id, int32_t value_id,
		   int64_t ts_ms, cdc_emit_fn emit, void *arg);

/* Java's Double.toString / Float.toString of d, into buf (>= 32 bytes). */
void cdc_java_double(double d, bool is_float, char *buf, size_t n);

#endif
