/*
 * pglogin: does Postgres accept this user name and password?
 *
 * samsa's Kafka listener may require clients to log in (SASL/PLAIN) as
 * Postgres roles.  The one judge of a password is Postgres itself, so a
 * login is a connection attempt to samsa's own database as that role:
 * pg_hba.conf decides, with whatever method it names for samsa's host
 * (trust accepts any password; scram-sha-256 checks it).  The connection
 * is closed as soon as it is up.  Everything runs on the event loop.
 */
#ifndef SAMSA_STORAGE_PGLOGIN_H
#define SAMSA_STORAGE_PGLOGIN_H

#include <stdbool.h>

#include <event2/event.h>

/* Called once, from the loop: ok, or why not (Postgres's or libpq's
 * message on one line, e.g. `password authentication failed for user
 * "alice"`; borrowed for the call). */
typedef void (*pg_login_cb)(void *arg, bool ok, const char *why);

/*
 * Tries to connect as user with password to where conninfo (samsa's own
 * libpq conninfo or URI) points, replacing any user and password in it.
 * An empty user or password is refused without asking (libpq would fall
 * back to samsa's own .pgpass or PGPASSWORD).  Gives up after timeout_ms.
 * Returns 0 (cb runs later, from the loop, never inside this call), or -1
 * when memory ran out (cb is then not called).
 */
int pg_login_check(struct event_base *base, const char *conninfo,
		   const char *user, const char *password, int timeout_ms,
		   pg_login_cb cb, void *arg);

#endif
