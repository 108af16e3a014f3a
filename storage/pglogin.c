/*
 * pglogin: a login is one connection attempt, polled on the loop, closed
 * once Postgres has answered.  The host name is looked up off the loop
 * first (pgresolve.h), as for every other connection samsa makes.
 */
#include "storage/pglogin.h"

#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "storage/pgresolve.h"

struct pg_login {
	struct event_base *base;
	struct event *ev;    /* the socket, for the next connect step */
	struct event *start; /* the first step */
	struct event *timer; /* gives up after the timeout */
	struct pg_resolve *resolving;
	PGconn *conn;
	PostgresPollingStatusType poll;
	pg_login_cb cb;
	void *arg;
	char *conninfo, *user, *password;
};

static void login_free(struct pg_login *l)
{
	pg_resolve_cancel(l->resolving);
	if (l->ev)
		event_free(l->ev);
	if (l->start)
		event_free(l->start);
	if (l->timer)
		event_free(l->timer);
	if (l->conn)
		PQfinish(l->conn);
	if (l->password)
		memset(l->password, 0, strlen(l->password));
	free(l->conninfo);
	free(l->user);
	free(l->password);
	free(l);
}

/* Postgres's reason without libpq's "connection to server at ... failed:"
 * and "FATAL:" framing, on one line. */
static void one_reason(const char *msg, char *out, size_t len)
{
	const char *p = strstr(msg, "FATAL:");
	if (p)
		p += strlen("FATAL:");
	else if ((p = strstr(msg, "failed: ")))
		p += strlen("failed: ");
	else
		p = msg;
	p += strspn(p, " ");
	size_t n = strcspn(p, "\n");
	if (n >= len)
		n = len - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static void finish(struct pg_login *l, bool ok, const char *why)
{
	char reason[512];
	one_reason(why ? why : "", reason, sizeof(reason));
	l->cb(l->arg, ok, ok ? "" : reason);
	login_free(l);
}

static int arm(struct pg_login *l);

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct pg_login *l = arg;
	(void)fd;
	(void)what;
	l->poll = PQconnectPoll(l->conn);
	if (l->poll == PGRES_POLLING_OK)
		finish(l, true, NULL);
	else if (l->poll == PGRES_POLLING_FAILED)
		finish(l, false, PQerrorMessage(l->conn));
	else if (arm(l) != 0)
		finish(l, false, "cannot add a socket event");
}

/* The socket may change between steps (several hosts, SSL retry). */
static int arm(struct pg_login *l)
{
	if (l->ev)
		event_free(l->ev);
	l->ev = event_new(l->base, PQsocket(l->conn),
			  l->poll == PGRES_POLLING_READING ? EV_READ : EV_WRITE,
			  on_io, l);
	return l->ev && event_add(l->ev, NULL) == 0 ? 0 : -1;
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, false, "Postgres did not answer in time");
}

/* host and hostaddr NULL: libpq resolves the host itself, if it has one. */
static void connect_to(struct pg_login *l, const char *host,
		       const char *hostaddr)
{
	/* Options after the expanded conninfo override what it says. */
	const char *const kw[] = {"dbname", "fallback_application_name",
				  "user",   "password",
				  "host",   "hostaddr",
				  NULL};
	const char *const val[] = {l->conninfo, "samsa login", l->user,
				   l->password, host,	       hostaddr,
				   NULL};
	l->conn = PQconnectStartParams(kw, val, 1);
	if (!l->conn) {
		finish(l, false, "out of memory");
		return;
	}
	if (PQstatus(l->conn) == CONNECTION_BAD) {
		finish(l, false, PQerrorMessage(l->conn));
		return;
	}
	l->poll = PGRES_POLLING_WRITING;
	if (arm(l) != 0)
		finish(l, false, "cannot add a socket event");
}

static void on_resolved(void *arg, const char *host, const char *hostaddr,
			const char *err)
{
	struct pg_login *l = arg;
	l->resolving = NULL;
	if (err)
		finish(l, false, err);
	else
		connect_to(l, host, hostaddr);
}

/* The first step, from the loop, so that cb never runs inside
 * pg_login_check. */
static void on_start(evutil_socket_t fd, short what, void *arg)
{
	struct pg_login *l = arg;
	(void)fd;
	(void)what;
	if (!*l->user || !*l->password) {
		finish(l, false, "empty user name or password");
		return;
	}
	const char *const kw[] = {"dbname", NULL};
	const char *const val[] = {l->conninfo, NULL};
	l->resolving = pg_resolve_start(l->base, kw, val, 1, on_resolved, l);
	if (!l->resolving)
		connect_to(l, NULL, NULL);
}

int pg_login_check(struct event_base *base, const char *conninfo,
		   const char *user, const char *password, int timeout_ms,
		   pg_login_cb cb, void *arg)
{
	struct pg_login *l = calloc(1, sizeof(*l));
	if (!l)
		return -1;
	l->base = base;
	l->cb = cb;
	l->arg = arg;
	l->conninfo = strdup(conninfo);
	l->user = strdup(user);
	l->password = strdup(password);
	l->start = evtimer_new(base, on_start, l);
	l->timer = evtimer_new(base, on_timeout, l);
	struct timeval now = {0, 0};
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	if (!l->conninfo || !l->user || !l->password || !l->start ||
	    !l->timer || evtimer_add(l->timer, &tv) != 0 ||
	    evtimer_add(l->start, &now) != 0) {
		login_free(l);
		return -1;
	}
	return 0;
}
