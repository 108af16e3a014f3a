/*
 * store_fixture: a store against a real Postgres for the integration tests
 * (tests/support/store_fixture.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "tests/support/leak_check.h"
#include "tests/support/store_fixture.h"

struct event_base *base;
struct store *st;
PGconn *admin;

static const char *conninfo(void)
{
	const char *s = getenv("SAMSA_TEST_PG");

	cr_assert(s && *s, "SAMSA_TEST_PG must hold a Postgres conninfo");
	return s;
}

static void quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

void sql_ok(const char *sql)
{
	PGresult *r = PQexec(admin, sql);
	ExecStatusType s = PQresultStatus(r);

	cr_assert(s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK, "%s: %s", sql,
		  PQresultErrorMessage(r));
	PQclear(r);
}

long long sql_num(const char *sql)
{
	PGresult *r = PQexec(admin, sql);

	cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql,
		     PQresultErrorMessage(r));
	cr_assert_eq(PQntuples(r), 1, "%s", sql);
	long long v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	PQclear(r);
	return v;
}

/* cache_bytes 0: the store's default. */
static void open_store(size_t cache_bytes)
{
	struct st_options o = {.conninfo = conninfo(),
			       .schema = "samsa",
			       .cache_bytes = cache_bytes};
	char err[512] = "";

	st = store_open(base, &o, err, sizeof(err));
	cr_assert_not_null(st, "store_open: %s", err);
}

void reopen_store(void)
{
	reopen_store_cache(0);
}

void reopen_store_cache(size_t cache_bytes)
{
	store_close(st);
	st = NULL;
	open_store(cache_bytes);
}

void store_fixture_setup(void)
{
	admin = PQconnectdb(conninfo());
	cr_assert_eq(PQstatus(admin), CONNECTION_OK, "%s",
		     PQerrorMessage(admin));
	PQsetNoticeProcessor(admin, quiet, NULL);
	sql_ok("DROP SCHEMA IF EXISTS samsa CASCADE");
	base = event_base_new();
	cr_assert(base);
	open_store(0);
}

void store_fixture_teardown(void)
{
	store_close(st);
	st = NULL;
	if (base)
		event_base_free(base);
	base = NULL;
	PQfinish(admin);
	admin = NULL;
	leak_check();
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

void run_until(const bool *flag)
{
	bool late = false;
	struct timeval tv = {STORE_FIXTURE_WAIT_MS / 1000, 0};
	struct event *t = evtimer_new(base, on_deadline, &late);

	evtimer_add(t, &tv);
	while (!*flag && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	cr_assert(*flag, "timed out waiting for a callback");
}

void run_for(int ms)
{
	bool late = false;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
	struct event *t = evtimer_new(base, on_deadline, &late);

	evtimer_add(t, &tv);
	while (!late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
}

void on_done(void *arg, enum st_status s, const char *msg)
{
	struct done *d = arg;

	d->called = true;
	d->calls++;
	d->st = s;
	snprintf(d->msg, sizeof(d->msg), "%s", msg ? msg : "");
}

void on_appended(void *arg, const struct st_append_result *r)
{
	struct appended *a = arg;

	a->called = true;
	a->calls++;
	a->r = *r;
	snprintf(a->msg, sizeof(a->msg), "%s", r->message ? r->message : "");
}

void on_read(void *arg, enum st_status s, const uint8_t *data, size_t len)
{
	struct readout *r = arg;

	r->called = true;
	r->st = s;
	if (data)
		kb_write_raw(&r->data, data, len);
}
