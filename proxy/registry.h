/*
 * registry: the built-in Schema Registry, Confluent's REST API over HTTP/1.1
 * (libevent's evhttp) on cfg->registry, with its state in Postgres
 * (storage/schemas.h) and Avro compatibility enforced by
 * protocol/avro_compat.h.
 *
 * Requests are answered one at a time, in arrival order: each first
 * brings the in-memory copy up to date (one round trip), then answers from
 * it, or writes and answers once Postgres committed.  Serial handling keeps
 * "check compatibility, then add the version" free of races inside one
 * process; across processes, a request that may write decides under the
 * registry's advisory lock (sr_refresh) and writes behind the generation
 * guard (storage/schemas.h).  A registry sees few requests (clients cache
 * ids), so this costs nothing that matters.
 *
 * Not done: IMPORT mode's explicit ids and versions (the mode is stored,
 * not acted on), schema references (stored, not resolved), normalize=true,
 * contexts, metadata and rule sets.
 */
#ifndef SAMSA_REGISTRY_H
#define SAMSA_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

struct server;
struct registry;

/*
 * Loads the registry's state (blocking: start-up only, after store_open)
 * and listens on srv->cfg->registry.  Sets srv->registry.  Returns 0, or -1
 * with a one-line message in err (e.g. the port is in use).
 */
int registry_start(struct server *srv, char *err, size_t errlen);

/*
 * Stops listening, drops requests not yet answered (their connections
 * close) and frees everything.  Safe when registry_start failed or was never
 * called.
 */
void registry_stop(struct server *srv);

/*
 * The registry's answer to registry_register: the schema's id, or -1 and
 * why (the registry's message and error code, as Confluent's client
 * reports them).
 */
typedef void (*registry_id_cb)(void *arg, int32_t id, const char *err);

/*
 * Registers the Avro schema text under subject as POST
 * /subjects/{subject}/versions would (same queue, compatibility rules and
 * idempotence), without HTTP: for samsa's own producers (the Connect
 * converters).  Asynchronous; cb runs exactly once, later (or inside, when
 * the registry is stopping or memory runs out), also when the registry
 * stops first.  Strings are copied.
 */
void registry_register(struct registry *reg, const char *subject,
		       const char *schema, registry_id_cb cb, void *arg);

#endif
