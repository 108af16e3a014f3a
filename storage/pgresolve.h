/*
 * Postgres host names looked up off the event loop.
 *
 * libpq resolves a connection's host inside PQconnectStart* with
 * getaddrinfo, which blocks for as long as the resolver takes (seconds
 * when a DNS server is slow or gone), and samsa's one loop serves every
 * client meanwhile.  pg_resolve_start looks the name up on a thread of its
 * own and hands back libpq options naming the addresses (hostaddr), so
 * that PQconnectStart* makes no DNS query.
 */
#ifndef SAMSA_STORAGE_PGRESOLVE_H
#define SAMSA_STORAGE_PGRESOLVE_H

#include <stdbool.h>

#include <event2/event.h>

struct pg_resolve;

/* Called once, from the loop: host and hostaddr are comma lists with one
 * entry per address found (the name repeated, for TLS and .pgpass), to
 * add to the connection's options after the others; or both NULL and err
 * (libpq's wording) when the name did not resolve.  The strings are
 * borrowed for the call. */
typedef void (*pg_resolved_fn)(void *arg, const char *host,
			       const char *hostaddr, const char *err);

/* Starts looking up the host that libpq would look up for these options
 * (keywords and values as PQconnectStartParams takes them, expand_dbname
 * too; borrowed for the call; PGHOST, PGHOSTADDR and PGPORT stand in for
 * options not given, as in libpq).  NULL when there is nothing to look up
 * (no host, a Unix socket directory, a numeric address, hostaddr set, a
 * list of hosts or ports: left to libpq) or no thread could start: done is
 * then never called.  Otherwise done is called once, from base's loop, unless
 * pg_resolve_cancel comes first. */
struct pg_resolve *pg_resolve_start(struct event_base *base,
				    const char *const *kw,
				    const char *const *val, int expand_dbname,
				    pg_resolved_fn done, void *arg);

/* Whether host is a numeric IPv4 or IPv6 address (nothing to look up). */
bool pg_numeric_host(const char *host);

/* Forgets a lookup whose callback has not run; done is not called (the
 * thread finishes on its own).  NULL-safe. */
void pg_resolve_cancel(struct pg_resolve *r);

#endif
