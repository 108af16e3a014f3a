/*
 * pgconn: one non-blocking libpq connection driven by the libevent loop.
 *
 * Queries are queued and sent in libpq pipeline mode, so many statements are
 * in flight on one connection and the loop never waits for Postgres.  Every
 * query's callback runs exactly once, from the loop (never from inside
 * pg_query), with either its result or an error message.
 *
 * A unit of work is the statements queued between two pg_sync() calls; in
 * pipeline mode an error aborts the rest of the unit (their callbacks get
 * the error "pipeline aborted"), so BEGIN ... COMMIT queued as one unit is a
 * transaction whose COMMIT callback tells whether it held.
 *
 * When the connection breaks, every pending callback gets an error, and the
 * connection reconnects in the background with back-off (100 ms doubling to
 * 5 s); queries queued while it is down fail at once (from the loop).
 * pg_ready() says whether it is up now.
 */
#ifndef SAMSA_PGCONN_H
#define SAMSA_PGCONN_H

#include <stdbool.h>

#include <event2/event.h>
#include <libpq-fe.h>

struct pgconn;

/*
 * res is the query's result (PGRES_TUPLES_OK or PGRES_COMMAND_OK) and is
 * freed after the callback returns; on failure res is NULL and err says why
 * (Postgres's message, "pipeline aborted", "connection lost" ...).  sqlstate
 * is Postgres's SQLSTATE for a server error, else "".
 */
typedef void (*pg_cb)(void *arg, const PGresult *res, const char *err,
		      const char *sqlstate);

/*
 * Opens a connection to conninfo in the background and returns at once
 * (NULL only when memory runs out).  name appears in log lines.  on_up, if
 * set, is called each time the connection (re)becomes ready, e.g. to reload
 * state.  base and strings are borrowed for the connection's lifetime.
 */
struct pgconn *pg_open(struct event_base *base, const char *conninfo,
		       const char *name, void (*on_up)(void *arg),
		       void *on_up_arg);

/*
 * Blocking connect used at start-up only: returns 0 when Postgres answered
 * within timeout_ms, else -1 with libpq's message in err.
 */
int pg_wait_ready(struct pgconn *c, int timeout_ms, char *err, size_t errlen);

/* Fails every pending callback with "connection closed" and frees c. */
void pg_close(struct pgconn *c);

bool pg_ready(const struct pgconn *c);
/* Number of queries queued or in flight. */
int pg_pending(const struct pgconn *c);

/*
 * Queues sql with nparams parameters.  values[i]/lengths[i]/formats[i] as in
 * PQsendQueryParams (formats NULL = all text, lengths NULL for text); the
 * parameter bytes are copied, so the caller may free them on return.
 * binary_result selects binary result format.  Returns 0; -1 only when
 * memory runs out (cb is then not called).
 */
int pg_query(struct pgconn *c, const char *sql, int nparams,
	     const char *const *values, const int *lengths, const int *formats,
	     bool binary_result, pg_cb cb, void *arg);

/*
 * Like pg_query, but takes ownership of a malloc'd params block: values
 * point into `owned`, which pgconn frees after sending.  Avoids a copy of
 * large parameters (record batches).
 */
int pg_query_owned(struct pgconn *c, const char *sql, int nparams,
		   const char *const *values, const int *lengths,
		   const int *formats, void *owned, bool binary_result,
		   pg_cb cb, void *arg);

/* Ends the current unit of work (PQpipelineSync) and flushes. */
void pg_sync(struct pgconn *c);

#endif
