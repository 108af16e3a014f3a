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
 * the error "pipeline aborted").  Without BEGIN, Postgres runs the unit as
 * one implicit transaction, committed at the sync and rolled back whole if
 * any statement fails; pg_sync_cb's callback says whether it committed.
 * That is the way to write atomic units.
 *
 * BEGIN ... COMMIT in one unit also works while it succeeds (the COMMIT
 * callback tells whether it held), but when a statement fails the COMMIT is
 * skipped and the session stays in an aborted transaction block: units
 * already sent behind it fail with SQLSTATE 25P02 until pgconn's automatic
 * ROLLBACK (sent when the failed unit's sync comes back) ends the block.
 * So ROLLBACK TO SAVEPOINT recovery is not supported.
 *
 * A unit should be queued in one go: if queries were queued without a
 * pg_sync when the loop gets back to pgconn (after the current callback),
 * pgconn ends the unit itself, so a query is never left waiting, but a unit
 * spread over several callbacks is then several transactions.
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
 * state.  base is borrowed for the connection's lifetime; the strings are
 * copied.  State changes are logged to stderr, one line each.
 */
struct pgconn *pg_open(struct event_base *base, const char *conninfo,
		       const char *name, void (*on_up)(void *arg),
		       void *on_up_arg);

/*
 * Blocking connect used at start-up only: runs the loop (EVLOOP_ONCE, so
 * other events on base may fire; never call it from a callback), retrying
 * with back-off, until c is ready.  Returns 0 when Postgres answered within
 * timeout_ms, else -1 with the last libpq message in err.
 */
int pg_wait_ready(struct pgconn *c, int timeout_ms, char *err, size_t errlen);

/*
 * Fails every pending callback with "connection closed" (queries that had
 * already failed keep their error) and frees c.  Those callbacks run inside
 * pg_close, so it works after the loop has stopped; it may be called from
 * a callback of c.  An open unit is rolled back by Postgres.
 */
void pg_close(struct pgconn *c);

/* Whether c takes queries now (false for NULL: a connection closed). */
bool pg_ready(const struct pgconn *c);
/*
 * Why c is not ready: libpq's message for the last failed connect or the
 * lost connection, on one line ("connection to server at ... failed:
 * Connection refused ...").  "" while c is ready and while a first attempt
 * is still under way.  Borrowed until c's next event.  Queries sent while
 * c is down only say "not connected"; this is the reason to show a user.
 */
const char *pg_last_error(const struct pgconn *c);
/* Number of queries queued or in flight. */
int pg_pending(const struct pgconn *c);

/*
 * Queues sql with nparams parameters.  values[i]/lengths[i]/formats[i] as in
 * PQsendQueryParams (formats NULL = all text, lengths NULL for text); the
 * parameter bytes are copied, so the caller may free them on return.
 * binary_result selects binary result format.  Returns 0; -1 only when
 * memory runs out (cb is then not called).  When c is not ready cb gets
 * "not connected", from the loop.  cb may be NULL when only the unit's
 * outcome matters (pg_sync_cb says it).
 */
int pg_query(struct pgconn *c, const char *sql, int nparams,
	     const char *const *values, const int *lengths, const int *formats,
	     bool binary_result, pg_cb cb, void *arg);

/*
 * pg_query for a statement that c runs again and again: it is prepared on
 * the connection the first time (in the same unit, so it commits or fails
 * with it) and executed by name after that, which spares Postgres parsing
 * and planning it each time.  sql is the statement's key, compared by
 * content; up to 64 per connection, past that it runs as pg_query does.
 */
int pg_query_prepared(struct pgconn *c, const char *sql, int nparams,
		      const char *const *values, const int *lengths,
		      const int *formats, bool binary_result, pg_cb cb,
		      void *arg);

/*
 * Like pg_query, but takes ownership of a malloc'd params block: values
 * point into `owned`, which pgconn frees in every case (also on -1).
 * libpq copies parameters into its output buffer when the query is queued,
 * so this saves the caller's own copy, not libpq's.
 */
int pg_query_owned(struct pgconn *c, const char *sql, int nparams,
		   const char *const *values, const int *lengths,
		   const int *formats, void *owned, bool binary_result,
		   pg_cb cb, void *arg);

/*
 * Ends the current unit of work (PQpipelineSync) and flushes; a no-op when
 * nothing was queued since the last sync or c is not ready.
 */
void pg_sync(struct pgconn *c);

/*
 * pg_sync, and cb runs once when the unit is over: res is always NULL; err
 * NULL when every statement succeeded and the unit committed, else the
 * unit's first error and its SQLSTATE (an error at commit, e.g. a deferred
 * constraint, included), "connection lost" (outcome unknown), "not
 * connected" or "connection closed".  With nothing queued since the last
 * sync, cb reports on that unit.  Returns 0; -1 only when memory runs out
 * (cb is then not called).
 */
int pg_sync_cb(struct pgconn *c, pg_cb cb, void *arg);

#endif
