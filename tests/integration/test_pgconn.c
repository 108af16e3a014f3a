/*
 * pgconn and pgpool against a real Postgres: SAMSA_TEST_PG holds its
 * conninfo.  Every test has its own event_base and connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <event2/event.h>

#include "storage/pgconn.h"
#include "storage/pgpool.h"
#include "tests/support/leak_check.h"

#define WAIT_MS 10000

static struct event_base *base;
static struct pgconn *pc;
static int ups;

/* What one callback saw. */
struct outcome {
	int calls;
	bool ok;
	int seq; /* order among callbacks */
	int ntuples;
	char val[64]; /* first value of the first row, text */
	char err[256];
	char sqlstate[6];
	bool in_send; /* was called from inside pg_query */
};

static int seq;
static bool sending;

static const char *conninfo(void)
{
	const char *s = getenv("SAMSA_TEST_PG");

	cr_assert(s && *s, "SAMSA_TEST_PG must hold a Postgres conninfo");
	return s;
}

static void on_up(void *arg)
{
	(void)arg;
	ups++;
}

static void record(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	struct outcome *o = arg;

	o->calls++;
	o->seq = seq++;
	o->in_send = sending;
	o->ok = res != NULL;
	snprintf(o->err, sizeof(o->err), "%s", err ? err : "");
	snprintf(o->sqlstate, sizeof(o->sqlstate), "%s", sqlstate);
	if (res) {
		o->ntuples = PQntuples(res);
		if (o->ntuples > 0 && PQnfields(res) > 0)
			snprintf(o->val, sizeof(o->val), "%s",
				 PQgetvalue(res, 0, 0));
	}
}

static void query(struct pgconn *c, const char *sql, struct outcome *o)
{
	sending = true;
	cr_assert_eq(pg_query(c, sql, 0, NULL, NULL, NULL, false, record, o),
		     0);
	sending = false;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	*(bool *)arg = true;
}

/* Runs the loop until *count reaches want, failing after WAIT_MS. */
static void run_until(const int *count, int want)
{
	bool late = false;
	struct timeval tv = {WAIT_MS / 1000, 0};
	struct event *t = evtimer_new(base, on_deadline, &late);

	evtimer_add(t, &tv);
	while (*count < want && !late)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(t);
	cr_assert_geq(*count, want, "timed out waiting (%d of %d)", *count,
		      want);
}

/* Runs one statement to completion and checks it worked. */
static void exec_ok(struct pgconn *c, const char *sql, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	query(c, sql, o);
	pg_sync(c);
	run_until(&o->calls, 1);
	cr_assert(o->ok, "%s: %s", sql, o->err);
}

static void setup(void)
{
	char err[256];

	base = event_base_new();
	cr_assert(base);
	ups = 0;
	seq = 0;
	pc = pg_open(base, conninfo(), "test", on_up, NULL);
	cr_assert(pc);
	cr_assert_eq(pg_wait_ready(pc, WAIT_MS, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert(pg_ready(pc));
	cr_assert_eq(ups, 1);
}

static void teardown(void)
{
	pg_close(pc);
	pc = NULL;
	event_base_free(base);
	base = NULL;
	leak_check();
}

TestSuite(pgconn, .init = setup, .fini = teardown, .timeout = 60);

Test(pgconn, pipelined_results_in_order)
{
	enum { N = 2000 };
	static struct outcome o[N];
	char buf[16];
	const char *v[1] = {buf};
	int i, done = 0;

	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "%d", i);
		sending = true;
		cr_assert_eq(pg_query(pc, "SELECT $1::int * 2", 1, v, NULL,
				      NULL, false, record, &o[i]),
			     0);
		sending = false;
	}
	pg_sync(pc);
	cr_assert_eq(pg_pending(pc), N);
	while (done < N) {
		run_until(&o[N - 1].calls, 1);
		done = N;
	}
	for (i = 0; i < N; i++) {
		snprintf(buf, sizeof(buf), "%d", i * 2);
		cr_assert_eq(o[i].calls, 1);
		cr_assert(o[i].ok, "%d: %s", i, o[i].err);
		cr_assert_eq(o[i].seq, i);
		cr_assert_str_eq(o[i].val, buf);
		cr_assert(!o[i].in_send);
	}
	cr_assert_eq(pg_pending(pc), 0);
}

/* A pg_sync_cb callback: ok means the unit committed. */
static void record_sync(void *arg, const PGresult *res, const char *err,
			const char *sqlstate)
{
	struct outcome *o = arg;

	record(arg, res, err, sqlstate);
	o->ok = res == NULL && err == NULL;
}

static void sync_cb(struct pgconn *c, struct outcome *o)
{
	sending = true;
	cr_assert_eq(pg_sync_cb(c, record_sync, o), 0);
	sending = false;
}

Test(pgconn, implicit_unit_is_atomic)
{
	struct outcome o[4], u[2], chk;

	exec_ok(pc, "DROP TABLE IF EXISTS pgc_unit", &chk);
	exec_ok(pc, "CREATE TABLE pgc_unit (id int PRIMARY KEY)", &chk);
	memset(o, 0, sizeof(o));
	memset(u, 0, sizeof(u));
	query(pc, "INSERT INTO pgc_unit VALUES (1)", &o[0]);
	query(pc, "INSERT INTO pgc_unit VALUES (1)", &o[1]);
	query(pc, "INSERT INTO pgc_unit VALUES (2)", &o[2]);
	sync_cb(pc, &u[0]);
	/* Pipelined right behind: unaffected by the failure. */
	query(pc, "SELECT count(*) FROM pgc_unit", &o[3]);
	sync_cb(pc, &u[1]);
	run_until(&u[1].calls, 1);

	cr_assert(o[0].ok);
	cr_assert_str_eq(o[1].sqlstate, "23505");
	cr_assert(strstr(o[1].err, "duplicate key"), "%s", o[1].err);
	cr_assert_str_eq(o[2].err, "pipeline aborted");
	cr_assert(!u[0].ok);
	cr_assert_str_eq(u[0].err, o[1].err);
	cr_assert_str_eq(u[0].sqlstate, "23505");
	cr_assert(o[3].ok, "%s", o[3].err);
	cr_assert_str_eq(o[3].val, "0");
	cr_assert(u[1].ok);
	cr_assert_lt(u[0].seq, o[3].seq);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(o[i].calls, 1);
	cr_assert_eq(u[0].calls + u[1].calls, 2);
	cr_assert(!u[0].in_send && !u[1].in_send);
	exec_ok(pc, "DROP TABLE pgc_unit", &chk);
}

Test(pgconn, failed_begin_commit_unit_rolls_back)
{
	struct outcome o[5], u, next, chk;

	exec_ok(pc, "DROP TABLE IF EXISTS pgc_abort", &chk);
	exec_ok(pc, "CREATE TABLE pgc_abort (id int PRIMARY KEY)", &chk);
	memset(o, 0, sizeof(o));
	memset(&u, 0, sizeof(u));
	memset(&next, 0, sizeof(next));
	query(pc, "BEGIN", &o[0]);
	query(pc, "INSERT INTO pgc_abort VALUES (1)", &o[1]);
	query(pc, "INSERT INTO pgc_abort VALUES (1)", &o[2]);
	query(pc, "INSERT INTO pgc_abort VALUES (2)", &o[3]);
	query(pc, "COMMIT", &o[4]);
	sync_cb(pc, &u);
	/*
	 * Already in flight behind the failed block: fails with 25P02, as
	 * pgconn.h says.
	 */
	query(pc, "SELECT 1", &next);
	pg_sync(pc);
	run_until(&next.calls, 1);

	cr_assert(o[0].ok && o[1].ok);
	cr_assert_str_eq(o[2].sqlstate, "23505");
	cr_assert_str_eq(o[3].err, "pipeline aborted");
	cr_assert_str_eq(o[4].err, "pipeline aborted");
	cr_assert_str_eq(o[4].sqlstate, "");
	cr_assert(!u.ok);
	cr_assert_str_eq(u.sqlstate, "23505");
	cr_assert_str_eq(next.sqlstate, "25P02");
	for (int i = 0; i < 5; i++)
		cr_assert_eq(o[i].calls, 1);

	/* The automatic ROLLBACK ended the block: nothing was committed. */
	exec_ok(pc, "SELECT count(*) FROM pgc_abort", &chk);
	cr_assert_str_eq(chk.val, "0");

	/* And a unit that holds commits. */
	memset(o, 0, sizeof(o));
	memset(&u, 0, sizeof(u));
	query(pc, "BEGIN", &o[0]);
	query(pc, "INSERT INTO pgc_abort VALUES (3)", &o[1]);
	query(pc, "COMMIT", &o[2]);
	sync_cb(pc, &u);
	run_until(&u.calls, 1);
	cr_assert(o[2].ok && u.ok);
	exec_ok(pc, "SELECT count(*) FROM pgc_abort", &chk);
	cr_assert_str_eq(chk.val, "1");
	exec_ok(pc, "DROP TABLE pgc_abort", &chk);
}

Test(pgconn, error_at_commit_reaches_the_sync_callback)
{
	struct outcome o[3], u, chk;

	exec_ok(pc, "DROP TABLE IF EXISTS pgc_defer", &chk);
	exec_ok(pc,
		"CREATE TABLE pgc_defer (id int UNIQUE DEFERRABLE "
		"INITIALLY DEFERRED)",
		&chk);
	memset(o, 0, sizeof(o));
	memset(&u, 0, sizeof(u));
	query(pc, "INSERT INTO pgc_defer VALUES (1)", &o[0]);
	query(pc, "INSERT INTO pgc_defer VALUES (1)", &o[1]);
	sync_cb(pc, &u);
	query(pc, "SELECT count(*) FROM pgc_defer", &o[2]);
	pg_sync(pc);
	run_until(&o[2].calls, 1);
	cr_assert(o[0].ok && o[1].ok);
	cr_assert(!u.ok);
	cr_assert_str_eq(u.sqlstate, "23505");
	cr_assert_str_eq(o[2].val, "0");
	exec_ok(pc, "DROP TABLE pgc_defer", &chk);
}

struct blob_check {
	int calls;
	const char *want;
	size_t len;
	bool same;
	char err[256];
};

static void check_blob(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct blob_check *b = arg;

	(void)sqlstate;
	b->calls++;
	snprintf(b->err, sizeof(b->err), "%s", err ? err : "");
	b->same = res && PQntuples(res) == 1 && PQfformat(res, 0) == 1 &&
		  (size_t)PQgetlength(res, 0, 0) == b->len &&
		  memcmp(PQgetvalue(res, 0, 0), b->want, b->len) == 0;
}

Test(pgconn, bytea_binary_round_trip)
{
	enum { LEN = 1 << 20 };
	char *data = malloc(LEN), *owned;
	const char *v[1];
	int len[1] = {LEN}, fmt[1] = {1};
	struct blob_check b1 = {0}, b2 = {0};
	int i;

	cr_assert(data);
	for (i = 0; i < LEN; i++)
		data[i] = (char)(i * 7 + (i >> 11));
	v[0] = data;
	b1.want = b2.want = data;
	b1.len = b2.len = LEN;

	/* Copied: the caller's buffer is scribbled on right after. */
	owned = malloc(LEN);
	cr_assert(owned);
	memcpy(owned, data, LEN);
	v[0] = owned;
	cr_assert_eq(pg_query(pc, "SELECT $1::bytea", 1, v, len, fmt, true,
			      check_blob, &b1),
		     0);
	memset(owned, 0, LEN);
	free(owned);

	/* Owned: pgconn frees the block. */
	owned = malloc(LEN);
	cr_assert(owned);
	memcpy(owned, data, LEN);
	v[0] = owned;
	cr_assert_eq(pg_query_owned(pc, "SELECT $1::bytea", 1, v, len, fmt,
				    owned, true, check_blob, &b2),
		     0);
	pg_sync(pc);
	run_until(&b2.calls, 1);
	cr_assert_eq(b1.calls, 1);
	cr_assert(b1.same, "copied: %s", b1.err);
	cr_assert(b2.same, "owned: %s", b2.err);
	free(data);
}

/* A chain: each callback queues the next query and syncs. */
struct chain {
	int calls;
	int last;
	char err[256];
};

static void chain_step(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct chain *ch = arg;
	char sql[64];

	(void)sqlstate;
	if (!res) {
		snprintf(ch->err, sizeof(ch->err), "%s", err);
		ch->calls = 100;
		return;
	}
	ch->last = atoi(PQgetvalue(res, 0, 0));
	if (++ch->calls < 5) {
		snprintf(sql, sizeof(sql), "SELECT %d", ch->last + 1);
		cr_assert_eq(pg_query(pc, sql, 0, NULL, NULL, NULL, false,
				      chain_step, ch),
			     0);
		pg_sync(pc);
	}
}

Test(pgconn, callback_queues_another_query)
{
	struct chain ch = {0};

	cr_assert_eq(pg_query(pc, "SELECT 1", 0, NULL, NULL, NULL, false,
			      chain_step, &ch),
		     0);
	pg_sync(pc);
	run_until(&ch.calls, 5);
	cr_assert_eq(ch.calls, 5, "%s", ch.err);
	cr_assert_eq(ch.last, 5);
	cr_assert_eq(pg_pending(pc), 0);
}

Test(pgconn, query_without_sync_completes_and_commits)
{
	struct outcome o[3], chk;
	struct pgconn *other;
	char err[256];

	exec_ok(pc, "DROP TABLE IF EXISTS pgc_nosync", &chk);
	exec_ok(pc, "CREATE TABLE pgc_nosync (id int)", &chk);
	memset(o, 0, sizeof(o));
	query(pc, "SELECT 42", &o[0]);
	query(pc, "INSERT INTO pgc_nosync VALUES (7)", &o[1]);
	run_until(&o[1].calls, 1);
	cr_assert(o[0].ok && o[1].ok);
	cr_assert_str_eq(o[0].val, "42");

	/* Seen from another session: the implicit sync committed it. */
	other = pg_open(base, conninfo(), "other", NULL, NULL);
	cr_assert_eq(pg_wait_ready(other, WAIT_MS, err, sizeof(err)), 0);
	query(other, "SELECT count(*) FROM pgc_nosync", &o[2]);
	run_until(&o[2].calls, 1);
	cr_assert_str_eq(o[2].val, "1");
	pg_close(other);
	exec_ok(pc, "DROP TABLE pgc_nosync", &chk);
}

Test(pgconn, backend_killed_mid_flight_reconnects)
{
	struct outcome pid, o[3], kill, down, after;
	struct pgconn *other;
	char err[256];
	const char *v[1] = {NULL};

	exec_ok(pc, "SELECT pg_backend_pid()", &pid);
	memset(o, 0, sizeof(o));
	query(pc, "SELECT pg_sleep(30)", &o[0]);
	query(pc, "SELECT 1", &o[1]);
	pg_sync(pc);
	query(pc, "SELECT 2", &o[2]);
	pg_sync(pc);

	other = pg_open(base, conninfo(), "killer", NULL, NULL);
	cr_assert_eq(pg_wait_ready(other, WAIT_MS, err, sizeof(err)), 0);
	memset(&kill, 0, sizeof(kill));
	v[0] = pid.val;
	cr_assert_eq(pg_query(other, "SELECT pg_terminate_backend($1::int)", 1,
			      v, NULL, NULL, false, record, &kill),
		     0);
	pg_sync(other);
	run_until(&o[2].calls, 1);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(o[i].calls, 1);
		cr_assert_str_eq(o[i].err, "connection lost");
		cr_assert_str_eq(o[i].sqlstate, "");
	}
	cr_assert(!pg_ready(pc));
	cr_assert_eq(pg_pending(pc), 0);

	/* While down: fails, but from the loop. */
	memset(&down, 0, sizeof(down));
	query(pc, "SELECT 3", &down);
	cr_assert_eq(down.calls, 0);
	run_until(&down.calls, 1);
	cr_assert(!down.in_send);
	cr_assert_str_eq(down.err, "not connected");
	/* ... and the reason is there for a user to read. */
	cr_assert(pg_last_error(pc)[0]);
	cr_assert_null(strchr(pg_last_error(pc), '\n'));

	run_until(&ups, 2);
	cr_assert(pg_ready(pc));
	cr_assert_str_eq(pg_last_error(pc), "");
	exec_ok(pc, "SELECT pg_backend_pid()", &after);
	cr_assert_str_neq(after.val, pid.val);
	run_until(&kill.calls, 1);
	cr_assert(kill.ok, "%s", kill.err);
	pg_close(other);
}

/* A query whose result nobody wants: no callback, the unit still says. */
Test(pgconn, query_without_a_callback)
{
	struct outcome ok = {0}, bad = {0};

	cr_assert_eq(pg_query(pc, "SELECT 1", 0, NULL, NULL, NULL, false, NULL,
			      NULL),
		     0);
	cr_assert_eq(pg_sync_cb(pc, record, &ok), 0);
	cr_assert_eq(pg_query(pc, "SELECT 1/0", 0, NULL, NULL, NULL, false,
			      NULL, NULL),
		     0);
	cr_assert_eq(pg_sync_cb(pc, record, &bad), 0);
	run_until(&bad.calls, 1);
	cr_assert_eq(ok.calls, 1);
	cr_assert_str_eq(ok.err, ""); /* committed */
	cr_assert_str_eq(bad.sqlstate, "22012");
	cr_assert_eq(pg_pending(pc), 0);
}

Test(pgconn, close_answers_pending_once)
{
	struct outcome o[5];
	int i;

	memset(o, 0, sizeof(o));
	query(pc, "SELECT pg_sleep(10)", &o[0]);
	for (i = 1; i < 5; i++)
		query(pc, "SELECT 1", &o[i]);
	pg_sync(pc);
	event_base_loop(base, EVLOOP_NONBLOCK);
	pg_close(pc);
	pc = NULL;
	for (i = 0; i < 5; i++) {
		cr_assert_eq(o[i].calls, 1);
		cr_assert_str_eq(o[i].err, "connection closed");
	}
	/* Nothing left armed on the base. */
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (i = 0; i < 5; i++)
		cr_assert_eq(o[i].calls, 1);
}

/* Closes the connection from inside a result callback. */
static struct outcome closer_o[4];

static void closer(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	record(arg, res, err, sqlstate);
	pg_close(pc);
	pc = NULL;
}

Test(pgconn, close_from_a_callback)
{
	struct outcome *o = closer_o;

	memset(closer_o, 0, sizeof(closer_o));
	query(pc, "SELECT 1", &o[0]);
	sending = true;
	cr_assert_eq(pg_query(pc, "SELECT 2", 0, NULL, NULL, NULL, false,
			      closer, &o[1]),
		     0);
	sending = false;
	query(pc, "SELECT 3", &o[2]);
	pg_sync(pc);
	/* Its own unit: Postgres sends a unit's results at its sync. */
	query(pc, "SELECT pg_sleep(10)", &o[3]);
	pg_sync(pc);
	run_until(&o[3].calls, 1);
	cr_assert(o[0].ok && o[1].ok);
	cr_assert_str_eq(o[2].err, "connection closed");
	cr_assert_str_eq(o[3].err, "connection closed");
	for (int i = 0; i < 4; i++)
		cr_assert_eq(o[i].calls, 1);
}

Test(pgconn, unreachable_server_fails_from_the_loop)
{
	struct pgconn *bad;
	struct outcome o = {0};
	char err[256];

	bad = pg_open(base, "host=127.0.0.1 port=1 connect_timeout=2", "bad",
		      NULL, NULL);
	cr_assert(bad);
	cr_assert_eq(pg_wait_ready(bad, 300, err, sizeof(err)), -1);
	cr_assert(err[0]);
	cr_assert(!pg_ready(bad));
	/* libpq's message, not pgconn's "not connected". */
	cr_assert_str_eq(pg_last_error(bad), err);
	cr_assert(strstr(err, "port 1"), "%s", err);
	query(bad, "SELECT 1", &o);
	cr_assert_eq(o.calls, 0);
	cr_assert_eq(pg_pending(bad), 1);
	run_until(&o.calls, 1);
	cr_assert_str_eq(o.err, "not connected");
	cr_assert(!o.in_send);
	pg_close(bad);
}

/* info reaches the server over TCP, not ready before the loop runs (a host
 * name is looked up on a thread, storage/pgresolve.c). */
static void connects_over_tcp(const char *info, const char *name)
{
	char err[256];
	struct outcome o;
	struct pgconn *c = pg_open(base, info, name, NULL, NULL);

	cr_assert(c);
	cr_assert(!pg_ready(c)); /* pg_open looked nothing up */
	cr_assert_eq(pg_wait_ready(c, WAIT_MS, err, sizeof(err)), 0, "%s", err);
	exec_ok(c, "SELECT inet_server_addr() IS NOT NULL", &o);
	cr_assert_str_eq(o.val, "t");
	pg_close(c);
}

/* The host is looked up on a thread, not in PQconnectStart on the loop. */
Test(pgconn, host_name_is_resolved_off_the_loop)
{
	char info[1024];

	snprintf(info, sizeof(info), "%s host=localhost", conninfo());
	connects_over_tcp(info, "named");
}

/* With no host in the conninfo libpq takes PGHOST, and so does the lookup
 * off the loop (which hands libpq the addresses: the connection works). */
Test(pgconn, host_from_pghost_is_used)
{
	char info[1024] = "";
	PQconninfoOption *opts = PQconninfoParse(conninfo(), NULL);

	cr_assert(opts);
	for (PQconninfoOption *p = opts; p->keyword; p++)
		if (p->val && *p->val && strcmp(p->keyword, "host") != 0 &&
		    strcmp(p->keyword, "hostaddr") != 0)
			snprintf(info + strlen(info),
				 sizeof(info) - strlen(info), "%s=%s ",
				 p->keyword, p->val);
	PQconninfoFree(opts);
	cr_assert_eq(setenv("PGHOST", "localhost", 1), 0);
	connects_over_tcp(info, "pghost");
}

Test(pgconn, unknown_host_fails_from_the_loop)
{
	char err[256];
	struct pgconn *bad =
		pg_open(base, "host=samsa-no-such-host.invalid port=5432",
			"nohost", NULL, NULL);

	cr_assert(bad);
	cr_assert_eq(pg_wait_ready(bad, WAIT_MS, err, sizeof(err)), -1);
	cr_assert(strstr(err, "could not translate host name "
			      "\"samsa-no-such-host.invalid\""),
		  "%s", err);
	pg_close(bad);
}

Test(pgconn, pool_picks_least_pending)
{
	struct pgpool *p;
	struct pgconn *a, *b;
	struct outcome o[2];
	char err[256];

	memset(o, 0, sizeof(o));
	p = pg_pool_open(base, conninfo(), "pool", 3, NULL, NULL);
	cr_assert(p);
	cr_assert_eq(pg_pool_wait_ready(p, WAIT_MS, err, sizeof(err)), 0, "%s",
		     err);
	a = pg_pool_pick(p);
	cr_assert(a);
	query(a, "SELECT pg_sleep(0.2)", &o[0]);
	pg_sync(a);
	b = pg_pool_pick(p);
	cr_assert(b && b != a);
	query(b, "SELECT 1", &o[1]);
	pg_sync(b);
	run_until(&o[0].calls, 1);
	run_until(&o[1].calls, 1);
	cr_assert(o[0].ok && o[1].ok);
	pg_pool_close(p);
}

/*
 * Past pgconn's backlog limit queries wait in its own queue with their
 * parameters copied: the caller's buffer is scribbled on after each call.
 */
Test(pgconn, queued_backlog_keeps_order_and_copies)
{
	enum { N = 64, LEN = 64 * 1024 };
	static struct outcome o[N];
	char *buf = malloc(LEN + 1);
	char idx[16];
	const char *v[2] = {buf, idx};
	int i;

	cr_assert(buf);
	memset(o, 0, sizeof(o));
	for (i = 0; i < N; i++) {
		memset(buf, 'A' + i % 26, LEN);
		buf[LEN] = '\0';
		snprintf(idx, sizeof(idx), "%d", i);
		sending = true;
		cr_assert_eq(pg_query(pc,
				      "SELECT $1::text = repeat(chr(65 + "
				      "$2::int % 26), 65536)",
				      2, v, NULL, NULL, false, record, &o[i]),
			     0);
		sending = false;
		memset(buf, 'z', LEN);
	}
	pg_sync(pc);
	cr_assert_eq(pg_pending(pc), N);
	run_until(&o[N - 1].calls, 1);
	for (i = 0; i < N; i++) {
		cr_assert(o[i].ok, "%d: %s", i, o[i].err);
		cr_assert_str_eq(o[i].val, "t", "%d", i);
		cr_assert_eq(o[i].seq, i);
		cr_assert(!o[i].in_send);
	}
	free(buf);
}

Test(pgconn, close_with_queued_backlog)
{
	enum { N = 64, LEN = 64 * 1024 };
	static struct outcome o[N];
	const char *v[1];
	int len[1] = {LEN}, fmt[1] = {1};
	char *owned;
	int i;

	memset(o, 0, sizeof(o));
	for (i = 0; i < N; i++) {
		owned = calloc(1, LEN);
		cr_assert(owned);
		v[0] = owned;
		cr_assert_eq(pg_query_owned(pc, "SELECT length($1::bytea)", 1,
					    v, len, fmt, owned, false, record,
					    &o[i]),
			     0);
	}
	pg_sync(pc);
	pg_close(pc);
	pc = NULL;
	for (i = 0; i < N; i++) {
		cr_assert_eq(o[i].calls, 1);
		cr_assert_str_eq(o[i].err, "connection closed");
	}
}

Test(pgconn, refused_query_drops_the_unit_and_reconnects)
{
	struct outcome o[3], chk;

	exec_ok(pc, "DROP TABLE IF EXISTS pgc_refused", &chk);
	exec_ok(pc, "CREATE TABLE pgc_refused (id int)", &chk);
	memset(o, 0, sizeof(o));
	query(pc, "INSERT INTO pgc_refused VALUES (1)", &o[0]);
	sending = true;
	cr_assert_eq(pg_query(pc, "SELECT 1", -1, NULL, NULL, NULL, false,
			      record, &o[1]),
		     0);
	sending = false;
	query(pc, "INSERT INTO pgc_refused VALUES (2)", &o[2]);
	pg_sync(pc);
	cr_assert_eq(o[1].calls, 0);
	run_until(&o[2].calls, 1);
	cr_assert_str_eq(o[1].err, "invalid query arguments");
	cr_assert(!o[1].in_send);
	cr_assert(!o[0].ok && !o[2].ok);
	/* In the order asked for: the statement libpq had took its answer
	 * before the refused ones behind it (its callback ran after them,
	 * on state they had freed). */
	cr_assert_lt(o[0].seq, o[1].seq);
	cr_assert_lt(o[1].seq, o[2].seq);
	run_until(&ups, 2);
	exec_ok(pc, "SELECT count(*) FROM pgc_refused", &chk);
	cr_assert_str_eq(chk.val, "0");
	exec_ok(pc, "DROP TABLE pgc_refused", &chk);
}

static void prepared(struct pgconn *c, const char *sql, const char *arg,
		     struct outcome *o)
{
	const char *v[1] = {arg};

	memset(o, 0, sizeof(*o));
	sending = true;
	cr_assert_eq(pg_query_prepared(c, sql, arg ? 1 : 0, v, NULL, NULL,
				       false, record, o),
		     0);
	sending = false;
}

/* How many statements Postgres holds prepared for c's session. */
static int prepared_count(struct pgconn *c)
{
	struct outcome o;

	exec_ok(c, "SELECT count(*) FROM pg_prepared_statements", &o);
	return atoi(o.val);
}

Test(pgconn, prepared_statement_is_parsed_once_and_reused)
{
	struct outcome o[3], u[2];
	const char *sql = "SELECT $1::int + 1";

	memset(o, 0, sizeof(o));
	memset(u, 0, sizeof(u));
	/* Its first Parse is aborted with a failing unit; the unit queued
	 * behind it cannot count on the name and still runs. */
	query(pc, "SELECT 1/0", &o[0]);
	prepared(pc, sql, "1", &o[1]);
	sync_cb(pc, &u[0]);
	prepared(pc, sql, "2", &o[2]);
	sync_cb(pc, &u[1]);
	run_until(&u[1].calls, 1);
	cr_assert_str_eq(o[1].err, "pipeline aborted");
	cr_assert(o[2].ok, "%s", o[2].err);
	cr_assert_str_eq(o[2].val, "3");
	cr_assert_eq(prepared_count(pc), 0);

	/* Prepared now, then run by name: still one statement. */
	for (int i = 0; i < 5; i++) {
		char arg[8];
		snprintf(arg, sizeof(arg), "%d", i);
		prepared(pc, sql, arg, &o[0]);
		pg_sync(pc);
		run_until(&o[0].calls, 1);
		cr_assert(o[0].ok, "%s", o[0].err);
		cr_assert_eq(atoi(o[0].val), i + 1);
	}
	cr_assert_eq(prepared_count(pc), 1);
}

Test(pgconn, prepared_statement_reports_its_own_error)
{
	struct outcome o, u;

	memset(&u, 0, sizeof(u));
	prepared(pc, "SELECT no_such_column FROM pg_class", NULL, &o);
	sync_cb(pc, &u);
	run_until(&u.calls, 1);
	cr_assert(!o.ok);
	cr_assert_str_eq(o.sqlstate, "42703");
	cr_assert(strstr(o.err, "no_such_column"), "%s", o.err);
	cr_assert_str_eq(u.sqlstate, "42703");
	/* The statements after it are unaffected. */
	exec_ok(pc, "SELECT 1", &o);
}

Test(pgconn, prepared_statements_after_reconnect_and_past_the_cap)
{
	struct outcome pid, kill, o[70];
	struct pgconn *other;
	char err[256], sql[70][64];

	for (int i = 0; i < 70; i++)
		snprintf(sql[i], sizeof(sql[i]), "SELECT %d + $1::int", i);
	for (int i = 0; i < 70; i++)
		prepared(pc, sql[i], "1", &o[i]);
	pg_sync(pc);
	run_until(&o[69].calls, 1);
	for (int i = 0; i < 70; i++) {
		cr_assert(o[i].ok, "%d: %s", i, o[i].err);
		cr_assert_eq(atoi(o[i].val), i + 1);
	}
	cr_assert_eq(prepared_count(pc), 64);

	/* A new session has none: they are prepared again. */
	exec_ok(pc, "SELECT pg_backend_pid()", &pid);
	other = pg_open(base, conninfo(), "killer", NULL, NULL);
	cr_assert_eq(pg_wait_ready(other, WAIT_MS, err, sizeof(err)), 0);
	const char *v[1] = {pid.val};
	memset(&kill, 0, sizeof(kill));
	pg_query(other, "SELECT pg_terminate_backend($1::int)", 1, v, NULL,
		 NULL, false, record, &kill);
	pg_sync(other);
	run_until(&kill.calls, 1);
	run_until(&ups, 2);
	for (int i = 0; i < 3; i++) {
		prepared(pc, sql[i], "2", &o[i]);
		pg_sync(pc);
		run_until(&o[i].calls, 1);
		cr_assert(o[i].ok, "%s", o[i].err);
		cr_assert_eq(atoi(o[i].val), i + 2);
	}
	cr_assert_eq(prepared_count(pc), 3);
	pg_close(other);
}
