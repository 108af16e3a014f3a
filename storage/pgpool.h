/*
 * pgpool: a fixed set of pgconns to one database, for spreading independent
 * units of work.  A unit (pg_query ... pg_sync) must stay on the connection
 * it started on: pick once per unit, not once per statement.
 */
#ifndef SAMSA_PGPOOL_H
#define SAMSA_PGPOOL_H

#include <stddef.h>

#include <event2/event.h>

#include "storage/pgconn.h"

struct pgpool;

/*
 * Opens n connections (1..64) named "<name>/<i>" in the background; on_up
 * is passed to each (see pg_open), so it runs once per connection that
 * comes up.  base is borrowed for the pool's lifetime, the strings are
 * copied.  NULL when memory runs out or n is out of range.
 */
struct pgpool *pg_pool_open(struct event_base *base, const char *conninfo,
			    const char *name, int n, void (*on_up)(void *arg),
			    void *on_up_arg);

/*
 * Start-up only (runs the loop): 0 when every connection is ready within
 * timeout_ms in all, else -1 with the first failure's message in err.
 */
int pg_pool_wait_ready(struct pgpool *p, int timeout_ms, char *err,
		       size_t errlen);

/*
 * The ready connection with the fewest pending queries, NULL when none is
 * ready.  Borrowed until pg_pool_close.
 */
struct pgconn *pg_pool_pick(struct pgpool *p);

int pg_pool_size(const struct pgpool *p);
/* Connection i (0 <= i < size), ready or not; borrowed. */
struct pgconn *pg_pool_conn(struct pgpool *p, int i);

/* pg_close on every connection (callbacks run as pg_close says), frees p. */
void pg_pool_close(struct pgpool *p);

#endif
