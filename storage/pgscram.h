/*
 * pgscram: a SCRAM-SHA-256 login relayed to Postgres.
 *
 * Kafka's SCRAM-SHA-256 (RFC 5802, 7677) is the exchange Postgres runs
 * for a role whose password is stored as SCRAM-SHA-256, with the same
 * messages.  samsa knows no password and no verifier: it opens a
 * connection to its own database as the role the client names and passes
 * the client's messages to Postgres and Postgres's back, byte for byte, so
 * that the proofs both sides check cover the same text.  Postgres judges
 * the proof as it would libpq's; the password never crosses the network.
 * The connection is closed as soon as Postgres has accepted or refused.
 *
 * The connection goes where samsa's conninfo points (its first host if it
 * lists several), over a Unix socket or TCP, with TLS as its sslmode asks
 * (disable, allow and prefer take what the server offers; require,
 * verify-ca and verify-full insist; sslrootcert, sslcert and sslkey are
 * used).  Everything runs on the event loop.
 */
#ifndef SAMSA_STORAGE_PGSCRAM_H
#define SAMSA_STORAGE_PGSCRAM_H

#include <stddef.h>

#include <event2/event.h>

struct pg_scram;

/* Called once per step, from the loop, never inside pg_scram_start or
 * pg_scram_finish: Postgres's next message (msg, len; borrowed for the
 * call), or why not (msg NULL; one line, Postgres's words when it
 * refused).  The callback may free s. */
typedef void (*pg_scram_cb)(void *arg, const char *msg, size_t len,
			    const char *why);

/*
 * Starts a login as user, the name the client's first message carries
 * (decoded), with client_first, the client's whole first message (gs2
 * header and all; copied).  cb gets Postgres's server-first message.
 * Gives up when timeout_ms has passed since this call, whichever step is
 * running.  NULL when memory ran out (cb is then never called).
 */
struct pg_scram *pg_scram_start(struct event_base *base, const char *conninfo,
				const char *user, const char *client_first,
				size_t len, int timeout_ms, pg_scram_cb cb,
				void *arg);

/* Passes the client's final message (copied); cb gets Postgres's
 * server-final message once Postgres has also let the role in.  Only
 * after the first step's cb had a message and before any other call. */
void pg_scram_finish(struct pg_scram *s, const char *client_final, size_t len,
		     pg_scram_cb cb, void *arg);

/* Closes the connection and frees s; no callback runs afterwards.
 * NULL-safe. */
void pg_scram_free(struct pg_scram *s);

#endif
