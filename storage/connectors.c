/*
 * connectors: connector configs in samsa.connectors (storage/connectors.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "storage/connectors.h"
#include "storage/pgconn.h"

struct cn_store {
	struct pgconn *pg;
};

struct cn_op {
	cn_done_cb done;
	cn_batch_cb batch;
	void *arg;
};

struct cn_store *cn_open(struct event_base *base, const char *conninfo,
			 char *err, size_t errlen)
{
	struct cn_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "connectors: out of memory");
		return NULL;
	}
	s->pg = pg_open(base, conninfo, "connect", NULL, NULL);
	if (!s->pg) {
		snprintf(err, errlen, "connectors: out of memory");
		free(s);
		return NULL;
	}
	if (pg_wait_ready(s->pg, 10000, err, errlen) != 0) {
		cn_close(s);
		return NULL;
	}
	return s;
}

void cn_close(struct cn_store *s)
{
	if (!s)
		return;
	pg_close(s->pg);
	free(s);
}

static void trim(char *s)
{
	size_t n = strlen(s);
	while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' '))
		s[--n] = '\0';
}

int cn_load(const char *conninfo,
	    void (*fn)(void *arg, const char *name, const char *config,
		       bool paused, bool snapshot_done),
	    void *arg, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(conninfo);
	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "connectors: %s", PQerrorMessage(c));
		trim(err);
		PQfinish(c);
		return -1;
	}
	PGresult *r = PQexec(c, "SELECT name, config, paused, snapshot_done "
				"FROM samsa.connectors ORDER BY seq");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "connectors: %s",
			 PQresultErrorMessage(r));
		trim(err);
		PQclear(r);
		PQfinish(c);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		fn(arg, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
		   PQgetvalue(r, i, 2)[0] == 't',
		   PQgetvalue(r, i, 3)[0] == 't');
	PQclear(r);
	PQfinish(c);
	return 0;
}

static void on_done(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct cn_op *op = arg;
	(void)res;
	(void)sqlstate;
	if (op->done)
		op->done(op->arg, err);
	free(op);
}

/* Runs sql as a unit of its own; cb gets its outcome. */
static void run(struct cn_store *s, const char *sql, int n,
		const char *const *values, cn_done_cb cb, void *arg)
{
	struct cn_op *op = calloc(1, sizeof(*op));
	if (!op) {
		/* Out of memory: the caller hears it, later is not possible
		 * without memory, so now. */
		if (cb)
			cb(arg, "out of memory");
		return;
	}
	op->done = cb;
	op->arg = arg;
	if (pg_query(s->pg, sql, n, values, NULL, NULL, false, on_done, op) <
	    0) {
		free(op);
		if (cb)
			cb(arg, "out of memory");
		return;
	}
	pg_sync(s->pg);
}

void cn_put(struct cn_store *s, const char *name, const char *config,
	    bool paused, bool reset_snapshot, cn_done_cb cb, void *arg)
{
	const char *v[4] = {name, config, paused ? "t" : "f",
			    reset_snapshot ? "t" : "f"};
	run(s,
	    "INSERT INTO samsa.connectors (name, config, paused) "
	    "VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET "
	    "config = excluded.config, paused = excluded.paused, "
	    "snapshot_done = samsa.connectors.snapshot_done AND NOT $4",
	    4, v, cb, arg);
}

void cn_set_paused(struct cn_store *s, const char *name, bool paused,
		   cn_done_cb cb, void *arg)
{
	const char *v[2] = {name, paused ? "t" : "f"};
	run(s, "UPDATE samsa.connectors SET paused = $2 WHERE name = $1", 2, v,
	    cb, arg);
}

void cn_set_snapshot_done(struct cn_store *s, const char *name, cn_done_cb cb,
			  void *arg)
{
	const char *v[1] = {name};
	run(s,
	    "UPDATE samsa.connectors SET snapshot_done = true "
	    "WHERE name = $1",
	    1, v, cb, arg);
}

void cn_delete(struct cn_store *s, const char *name, cn_done_cb cb, void *arg)
{
	const char *v[1] = {name};
	run(s, "DELETE FROM samsa.connectors WHERE name = $1", 1, v, cb, arg);
}

static void on_batch(void *arg, const PGresult *res, const char *err,
		     const char *sqlstate)
{
	struct cn_op *op = arg;
	(void)sqlstate;
	if (err || !res)
		op->batch(op->arg, err ? err : "no result", NULL, 0);
	else if (PQntuples(res) == 0)
		op->batch(op->arg, NULL, NULL, 0);
	else
		op->batch(op->arg, NULL, (const uint8_t *)PQgetvalue(res, 0, 0),
			  (size_t)PQgetlength(res, 0, 0));
	free(op);
}

void cn_last_batch(struct cn_store *s, int32_t tid, int32_t partition,
		   cn_batch_cb cb, void *arg)
{
	struct cn_op *op = calloc(1, sizeof(*op));
	if (!op) {
		cb(arg, "out of memory", NULL, 0);
		return;
	}
	op->batch = cb;
	op->arg = arg;
	char t[16], p[16];
	snprintf(t, sizeof(t), "%d", (int)tid);
	snprintf(p, sizeof(p), "%d", (int)partition);
	const char *v[2] = {t, p};
	/* Control batches (transaction markers) carry no records of ours. */
	if (pg_query(s->pg,
		     "SELECT batch FROM samsa.log WHERE tid = $1 AND "
		     "partition = $2 AND (attributes & 32) = 0 "
		     "ORDER BY base_offset DESC LIMIT 1",
		     2, v, NULL, NULL, true, on_batch, op) < 0) {
		free(op);
		cb(arg, "out of memory", NULL, 0);
		return;
	}
	pg_sync(s->pg);
}
