/*
 * sink_cfg: a JDBC sink connector's config, parsed (storage/sink_cfg.c),
 * and the record-to-row conversion it drives (storage/sink_rows.c).
 */
#ifndef SAMSA_SINK_CFG_H
#define SAMSA_SINK_CFG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "storage/sink_int.h"
#include "storage/sink_sql.h"

enum sk_pk { PK_NONE, PK_KAFKA, PK_RECORD_KEY, PK_RECORD_VALUE };

struct sink_cfg {
	bool debezium; /* io.debezium.connector.jdbc.JdbcSinkConnector */
	char **topics; /* NULL-terminated, or NULL with topics.regex */
	regex_t regex;
	bool has_regex;
	char *conninfo;	   /* libpq keyword=value text */
	char *url_ignored; /* connection.url parameters not used, or NULL */
	enum sk_mode mode;
	enum sk_pk pk;
	char **pk_fields; /* NULL-terminated, or NULL when none */
	int npk_fields;
	char **whitelist; /* NULL: every field */
	bool delete_enabled;
	bool auto_create, auto_evolve;
	char *table_format; /* ${topic} */
	bool by_source;	    /* Debezium's ${source.*}: a table per record */
	bool quote;
	int batch_size;
	enum sk_conv key_conv, value_conv;
	bool key_schemas, value_schemas;
	bool key_nulls, value_nulls; /* replace.null.with.default=false */
	bool tolerate_all;
	char *dlq_topic; /* NULL: none */
	bool dlq_headers;
	int retry_backoff_ms;
	struct sk_jcache *jcache; /* JsonConverter schemas seen; or NULL */
};

/*
 * Parses config into c (c NULL: only checks).  Returns 0, or -1 with the
 * offending key and a message.
 */
int sink_cfg_parse(const json_t *config, struct sink_cfg *c, char *key,
		   size_t keylen, char *err, size_t errlen);
void sink_cfg_free(struct sink_cfg *c);

/* The class name of a converter, as Connect's error context gives it. */
const char *sink_conv_class(enum sk_conv c);

/*
 * The table name c's table.name.format (collection.name.format) gives:
 * ${topic} (Debezium: dots as underscores) and, for Debezium,
 * ${source.db}, ${source.schema}, ${source.table} from source[0..2] (the
 * record's source block, as DefaultCollectionNamingStrategy).  Returns 0,
 * or -1 when a placeholder's value is missing (source or its element
 * NULL).
 */
int sink_cfg_name(const struct sink_cfg *c, const char *topic,
		  const char *const *source, char *full, size_t n);

/* A table name's unquoted parts: dots split catalog.schema.table, the last
 * two count (schema "" when there is none). */
void sink_cfg_split(const char *name, char *schema, size_t slen, char *table,
		    size_t tlen);

/* The table a topic goes to (sink_cfg_name, then sink_cfg_split). */
void sink_cfg_table(const struct sink_cfg *c, const char *topic, char *schema,
		    size_t slen, char *table, size_t tlen);

/* One record made into a row. */
struct sk_row {
	int64_t offset;
	char op;	   /* 'u' write, 'd' delete, 's' nothing to do */
	bool delete_first; /* the key was deleted earlier in the batch */
	bool skip;	   /* a later record of the key supersedes it */
	int32_t gen;	   /* writes go in rounds, in order: a key's row
			    * of other columns than its row before comes
			    * a round after it */
	int nkey, nval;
	struct sk_col *cols; /* key columns, then value columns */
	const char *keysig;  /* key column names: deletes alike share a
			      * statement */
	const char *sig;     /* key and value column names: writes alike
			      * share a statement */
	const char *keystr;  /* the key's identity in the batch */
	const char *table;   /* by_source: its table's name, else NULL */
};

/* Why a record could not be made a row (Connect's error context). */
struct sk_fault {
	const char *stage;	/* KEY_CONVERTER, VALUE_CONVERTER, TASK_PUT */
	const char *class_name; /* the converter or the task class */
	const char *exception;	/* Java exception class */
	char message[512];
	bool schema_missing; /* an unknown registry id: refresh and retry */
};

/* Looks a registry schema up by id (NULL when unknown). */
typedef const struct sk_schema *(*sk_schema_fn)(void *arg, int32_t id);

/*
 * Makes a row of one record into *row (in the arena).  key/value: the
 * record's bytes (len -1 for null).  Returns 0 (row->op 's' when there is
 * nothing to apply), or -1 with f filled in.
 */
int sink_row(const struct sink_cfg *c, struct arena *a, const char *topic,
	     int32_t partition, int64_t offset, int64_t timestamp,
	     const uint8_t *key, int32_t klen, const uint8_t *value,
	     int32_t vlen, sk_schema_fn lookup, void *larg, struct sk_row *row,
	     struct sk_fault *f);

#endif
