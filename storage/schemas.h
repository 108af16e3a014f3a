/*
 * schemas: the Schema Registry's state in Postgres (samsa.schemas,
 * samsa.subject_versions, samsa.registry_config, samsa.registry_state) and
 * the in-memory copy the registry answers from.
 *
 * Several samsa processes may share one database.  Every change bumps
 * samsa.registry_state.generation in the same transaction; sr_refresh()
 * compares it with the copy's and reloads what changed, so a copy checked
 * by sr_refresh() is exactly the database's.  Every write names the
 * generation its caller decided on: if another process changed anything
 * since, the write fails with SR_STALE (nothing written) and the caller
 * refreshes and decides again.  Locking that row also serialises writers
 * across processes, so version numbers and compatibility checks never race.
 *
 * Schema ids come from Postgres (a serial) and a schema row is never
 * deleted: an id keeps its meaning across restarts and processes.
 *
 * All calls are made from the event loop except sr_open (start-up only).
 * Callbacks run later, from the loop, exactly once (also with an error
 * from sr_close when calls are still in flight).
 */
#ifndef SAMSA_SCHEMAS_H
#define SAMSA_SCHEMAS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

struct ac_schema;

/* One registered schema; immutable once loaded. */
struct sr_schema {
	int32_t id;
	char *type; /* "AVRO", "JSON" or "PROTOBUF" */
	/* The text as returned and compared: for AVRO Avro Java's form
	 * (ac_compact), made again at load from what older versions stored. */
	char *schema;
	char *refs; /* references as compact JSON, "[]" when none */
	/* Parsed on first use by the registry (AVRO only); freed with the
	 * state.  parse_failed: tried and failed, do not try again. */
	struct ac_schema *avro;
	bool parse_failed;
};

/* One version of a subject. */
struct sr_version {
	char *subject;
	int32_t version;
	int32_t schema_id;
	bool deleted; /* soft-deleted */
};

/* A subject's own settings ("" is the global one); NULL when unset. */
struct sr_config {
	char *subject;
	char *compatibility;
	char *mode;
};

/* The copy in memory. */
struct sr_state {
	int64_t generation;
	struct sr_schema **schemas; /* by id, ascending */
	size_t nschemas;
	struct sr_version *versions; /* by subject (bytewise), version */
	size_t nversions;
	struct sr_config *configs;
	size_t nconfigs;
};

enum sr_status {
	SR_OK,
	SR_STALE, /* another writer came first: refresh and decide again */
	SR_ERROR, /* Postgres failed or is unreachable; msg says why */
};

struct sr_store;

/*
 * Rewrites sc->schema, the text of an AVRO row as Postgres holds it, in
 * the form the registry compares (ac_compact; defaults not validated, as
 * an older samsa may have stored any).  A text that does not parse is left
 * as it is.  sc->avro stays NULL (parsed on demand).  0, or -1 when memory
 * runs out (sc unchanged).
 */
int sr_avro_form(struct sr_schema *sc);

typedef void (*sr_done_cb)(void *arg, enum sr_status st, const char *msg);
/* id: the schema id a registration got (-1 on failure). */
typedef void (*sr_id_cb)(void *arg, enum sr_status st, int32_t id,
			 const char *msg);

/*
 * Connects to conninfo and loads the state, blocking (start-up only, after
 * the migrations ran), then opens the connection used at run time.
 * Returns NULL with a one-line reason in err.  base is borrowed.
 */
struct sr_store *sr_open(struct event_base *base, const char *conninfo,
			 char *err, size_t errlen);

/*
 * Fails the calls in flight (their callbacks run inside, with SR_ERROR)
 * and frees everything.  NULL is fine.
 */
void sr_close(struct sr_store *s);

/*
 * The copy; valid until the next sr_refresh() completes (it may replace
 * the arrays) or sr_close.
 */
const struct sr_state *sr_state(const struct sr_store *s);

/* The same copy, for setting the lazily parsed sr_schema.avro fields. */
struct sr_schema *sr_schema_mut(struct sr_store *s, int32_t id);

/*
 * Makes the copy match the database (one round trip when nothing changed).
 * With lock, first takes the registry's session-level advisory lock, which
 * every samsa's writers take: between this refresh and sr_unlock no other
 * process changes the registry, so a decision made on the copy still holds
 * when it is written (without it, a write may come back SR_STALE).
 */
void sr_refresh(struct sr_store *s, bool lock, sr_done_cb cb, void *arg);

/*
 * Releases the lock of sr_refresh(lock = true); queued behind the calls
 * made before, so it follows their writes.  Connection loss releases it
 * too.
 */
void sr_unlock(struct sr_store *s);

/*
 * Registers a version: subject gets version `version` of the schema.  With
 * schema_id >= 0 the schema exists already (its id), and the subject's
 * soft-deleted earlier versions of it are deleted; otherwise it is
 * inserted (type, text, refs: as sr_schema holds them; original: the text
 * the client sent) with the id new_id when that is > 0 (IMPORT mode: the
 * serial then goes past it), else the one Postgres gives it, or the
 * existing one for the same type, text and references.  cb gets the id.
 * Strings are copied.
 */
void sr_register(struct sr_store *s, int64_t generation, const char *subject,
		 int32_t version, int32_t schema_id, int32_t new_id,
		 const char *type, const char *text, const char *original,
		 const char *refs, sr_id_cb cb, void *arg);

/*
 * Deletes version `version` of subject, or all its versions when version
 * is -1: soft (deleted = true) or, with permanent, the rows (and, for the
 * whole subject, its settings).  The caller checked that they exist.
 */
void sr_delete(struct sr_store *s, int64_t generation, const char *subject,
	       int32_t version, bool permanent, sr_done_cb cb, void *arg);

/*
 * References (a JSON array of {name, subject, version}, or NULL) as they
 * are stored and compared: those three keys of each, sorted, compact JSON
 * ("[]" for none): sent in any key order, or back from Postgres's jsonb,
 * the same references are the same text.  Caller frees; NULL when memory
 * runs out.
 */
char *sr_refs_text(json_t *refs);

/*
 * Sets (value != NULL) or clears the compatibility level (mode false) or
 * the mode (mode true) of subject ("" for the global setting).
 */
void sr_set_config(struct sr_store *s, int64_t generation, const char *subject,
		   bool mode, const char *value, sr_done_cb cb, void *arg);

#endif
