/*
 * cdc: the change data capture source, Debezium's PostgresConnector
 * (io.debezium.connector.postgresql.PostgresConnector) run inside samsa.
 *
 * A task connects to the configured database twice (a replication
 * connection, replication=database, and a plain one), makes the
 * publication and the pgoutput slot, copies the included tables from the
 * slot's exported snapshot (op "r"), then streams the slot's changes and
 * appends Debezium's records to `<prefix>.<schema>.<table>` through the
 * store, in commit order.  Everything runs on the event loop with
 * non-blocking libpq.
 *
 * Keys and values go through the connector's converters: JsonConverter,
 * StringConverter, or Confluent's AvroConverter, whose schemas the task
 * registers in samsa's registry (cdc_env.register_schema) once per schema
 * change, reading nothing further until the id is known.
 *
 * Exactly once: every record carries its transaction's commit end LSN in
 * the header `__samsa.lsn` (8 bytes big-endian), appended in the same
 * Postgres transaction as the record itself.  On start the task reads the
 * last LSN of each topic back from the log and drops changes at or below
 * it; the slot's flush position is confirmed only up to transactions whose
 * appends are durable.
 */
#ifndef SAMSA_CDC_H
#define SAMSA_CDC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct store;
struct cn_store;

#define CDC_CLASS "io.debezium.connector.postgresql.PostgresConnector"

/* The registry's answer: the schema's id, or -1 and why. */
typedef void (*cdc_schema_cb)(void *arg, int32_t id, const char *err);

struct cdc_env {
	struct event_base *base;
	struct store *store;
	struct cn_store *cn;
	/*
	 * Registers an Avro schema under a subject in samsa's Schema
	 * Registry, asynchronously (proxy/registry.h's registry_register;
	 * NULL when there is none): what the AvroConverter does.  cb runs
	 * exactly once.
	 */
	void (*register_schema)(void *registry, const char *subject,
				const char *schema, cdc_schema_cb cb,
				void *arg);
	void *registry;
};

/*
 * Checks a connector config (an object of strings).  Returns 0, or -1 with
 * the offending config key in key and a message naming it in err.
 */
int cdc_validate(const json_t *config, char *key, size_t keylen, char *err,
		 size_t errlen);

struct cdc_task;

/*
 * Starts a task for connector name with config (validated; copied).
 * snapshot_done: the connector's snapshot completed before (stored by
 * connectors.h).  env is borrowed for the task's life.  NULL only when
 * memory runs out.  Failures later show in cdc_state()/cdc_trace().
 */
struct cdc_task *cdc_start(const struct cdc_env *env, const char *name,
			   const json_t *config, bool snapshot_done);

/*
 * Stops the task: closes its connections at once; the memory goes when the
 * appends still in flight have called back.  t must not be used after.
 */
void cdc_stop(struct cdc_task *t);

/*
 * Stops the task for good, its connector deleted or samsa stopping: as
 * cdc_stop, and with slot.drop.on.stop=true its replication slot is
 * dropped once Postgres lets go of it (storage/slotdrop.h; samsa waits
 * for that with slot_drop_wait as it exits).  Pausing, restarting and
 * reconfiguring use cdc_stop and keep the slot.
 */
void cdc_retire(struct cdc_task *t);

/* Whether the task's snapshot completed and is stored as such. */
bool cdc_snapshot_done(const struct cdc_task *t);

/* "RUNNING" or "FAILED" (not while it waits to start again). */
const char *cdc_state(const struct cdc_task *t);
/*
 * When the task, stopped because Postgres went away (restarted, out of
 * reach), is to be started again (wall-clock ms, st_now_ms): its owner
 * does that (cdc_stop, cdc_start).  -1 when it runs or failed for good.
 */
int64_t cdc_retry_at(const struct cdc_task *t);
/* Why it failed (Postgres's message), or NULL. */
const char *cdc_trace(const struct cdc_task *t);
/* The topics it wrote to or will write to: a new array (caller frees). */
json_t *cdc_topics(const struct cdc_task *t);
/* Progress for the status: phase, tables and rows copied, LSNs. New
 * object, caller frees. */
json_t *cdc_progress(const struct cdc_task *t);

#endif
