/*
 * sink: the JDBC sink connectors (Confluent's
 * io.confluent.connect.jdbc.JdbcSinkConnector and Debezium's
 * io.debezium.connector.jdbc.JdbcSinkConnector) run inside samsa.
 *
 * A task is an internal consumer of its topics' logs: it reads committed
 * records (up to each partition's last stable offset, aborted transactions
 * left out) from the store, converts a batch of at most batch.size records
 * of one partition, and applies it to the target database in ONE
 * transaction together with the partition's next offset in the table
 * samsa_sink_offsets(connector, topic, partition, next_offset) of that
 * database, which is where it resumes from: exactly once into the table
 * across crashes.  It wakes when a partition's high watermark moves;
 * producers never wait for it.  All Postgres work is non-blocking on the
 * loop (storage/pgconn.h).
 */
#ifndef SAMSA_SINK_H
#define SAMSA_SINK_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

struct store;
struct sr_store;

#define SINK_CLASS_CONFLUENT "io.confluent.connect.jdbc.JdbcSinkConnector"
#define SINK_CLASS_DEBEZIUM  "io.debezium.connector.jdbc.JdbcSinkConnector"

struct sink_env {
	struct event_base *base;
	struct store *store;
	struct sr_store
		*schemas; /* the registry's schemas by id; may be NULL */
};

/* True for a connector.class this module runs (full or short name). */
bool sink_is_class(const char *cls);

/*
 * Checks a connector config (an object of strings).  Returns 0, or -1 with
 * the offending key in key and a message in err.
 */
int sink_validate(const json_t *config, char *key, size_t keylen, char *err,
		  size_t errlen);

struct sink_task;

/*
 * Starts a task for connector name with config (validated; copied).  env
 * is borrowed for the task's life.  NULL only when memory runs out;
 * failures later show in sink_state()/sink_trace().
 */
struct sink_task *sink_start(const struct sink_env *env, const char *name,
			     const json_t *config);

/* Stops the task (its memory goes once calls in flight came back). */
void sink_stop(struct sink_task *t);

/* "RUNNING" or "FAILED". */
const char *sink_state(const struct sink_task *t);
/* Why it failed or what it is retrying, or NULL. */
const char *sink_trace(const struct sink_task *t);
/* The topics it reads: a new array (caller frees). */
json_t *sink_topics(const struct sink_task *t);
/* Counters and offsets: a new object (caller frees). */
json_t *sink_progress(const struct sink_task *t);

#endif
