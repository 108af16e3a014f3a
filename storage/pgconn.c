/*
 * pgconn: one non-blocking libpq connection in pipeline mode, driven by
 * libevent.  See pgconn.h for the contract.
 *
 * States: DOWN (waiting for the retry timer), CONNECTING (PQconnectPoll
 * driven by one-shot socket events), READY (pipeline mode, a persistent
 * EV_READ event and an EV_WRITE event armed while libpq has unsent output)
 * and BROKEN (libpq refused a query or a write failed inside pg_query or
 * pg_sync; the teardown waits for the deferred event because callbacks
 * must not run from inside them).
 *
 * A query is handed to libpq at once by pg_query while libpq holds less
 * than PG_BACKLOG bytes not yet written (PQsendQueryParams copies the
 * parameters into its output buffer, so nothing of the caller's is kept),
 * and an entry is appended to the FIFO `q`; pg_sync appends a sync marker.
 * Past PG_BACKLOG the query, its parameters copied into one block (or the
 * caller's owned block), waits in `sendq` until the socket drains: libpq
 * memmoves all of its unsent output after every partial write and never
 * shrinks its buffer, so a deep backlog inside libpq costs CPU and memory.
 *
 * Results are matched to `q` in order: each query yields one result and
 * then a NULL, each sync a PGRES_PIPELINE_SYNC and no NULL (an error at
 * the sync itself, i.e. at the implicit commit, comes first as an error
 * result and a NULL).
 *
 * Queries that fail before being sent go to the `failed` list and are
 * answered by the deferred event, so that no callback ever runs inside
 * pg_query.  The same deferred event ends a unit the caller left open: if
 * queries were queued since the last sync when it runs (after the current
 * callback returns), it adds the sync, so a query never waits forever.
 *
 * Statements run through pg_query_prepared are kept in `stmts`, named by
 * their slot.  The first use on a connection queues a Parse (PQsendPrepare)
 * just before the query in the same unit and executes by name; the name is
 * used again in that unit at once, and in later units only once the Parse
 * is known to have succeeded (units sent meanwhile use an unnamed statement,
 * since the Parse may yet be aborted with its unit).  A failed or aborted
 * Parse leaves the slot unprepared; a new connection starts with none.
 *
 * Re-entrancy: every entry point from the loop counts `depth`; pg_close
 * from inside a callback answers everything, drops the PGconn and sets
 * `closing`, and the struct is freed when the outermost handler returns.
 */
#include "storage/pgconn.h"
#include "storage/pgresolve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG_BACKOFF_MIN_MS  100
#define PG_BACKOFF_MAX_MS  5000
#define PG_CONNECT_TIMEOUT 10		/* seconds per connection attempt */
#define PG_BACKLOG	   (512 * 1024) /* bytes given to libpq unwritten */
#define PG_MAX_PARAMS	   65535
#define PG_MAX_STMTS	   64 /* prepared statements per connection */

enum pg_state {
	PG_DOWN,
	PG_CONNECTING,
	PG_READY,
	PG_BROKEN,
};

enum pgq_kind {
	PGQ_QUERY,    /* the caller's query */
	PGQ_SYNC,     /* end of a unit, cb optional */
	PGQ_INTERNAL, /* our own ROLLBACK, no callback */
	PGQ_PREPARE,  /* Parse of stmts[stmt], no callback */
};

enum pg_stmt_state {
	STMT_NONE,	/* not prepared on this connection */
	STMT_PREPARING, /* Parse sent in unit `unit`, result not back */
	STMT_READY,
};

struct pg_stmt {
	char *sql;
	enum pg_stmt_state state;
	unsigned long unit;
};

struct pgq {
	struct pgq *next;
	enum pgq_kind kind;
	pg_cb cb;
	void *arg;
	const char *err;      /* failed list: the error to report */
	char *err_owned;      /* err when it had to be copied */
	struct pg_stmt *stmt; /* PGQ_PREPARE's, or the one a query runs */

	/* sendq only: the query, in `block` (and `owned`) */
	const char *sql;
	int nparams;
	const char **values;
	int *lengths;
	int *formats;
	bool binary;
	size_t size; /* bytes it adds to libpq's output, roughly */
	void *block;
	void *owned;
};

struct pgqlist {
	struct pgq *head;
	struct pgq *tail;
};

struct pgconn {
	struct event_base *base;
	char *conninfo;
	char *name;
	void (*on_up)(void *arg);
	void *on_up_arg;

	enum pg_state state;
	PGconn *conn;
	PostgresPollingStatusType poll;
	/* CONNECTING: the host's lookup, before conn (pgresolve.h) */
	struct pg_resolve *resolving;
	struct event *cev;   /* connect step, one-shot */
	struct event *rd;    /* READY: persistent EV_READ */
	struct event *wr;    /* READY: EV_WRITE while output is pending */
	struct event *retry; /* DOWN: back-off timer */
	struct event *defer; /* failed callbacks, implicit sync, teardown */
	int backoff_ms;

	struct pgqlist sendq;  /* waiting for libpq's output to drain */
	struct pgqlist q;      /* given to libpq: queries and syncs, FIFO */
	struct pgqlist failed; /* answered by the deferred event */
	int npending;	       /* queries in sendq, q and failed */
	int unsynced;	       /* queries queued since the last sync */
	size_t unflushed;      /* bytes given to libpq since it drained */
	bool await_null;       /* head's result delivered, its NULL due */
	unsigned long unit; /* units ended so far: the current one's number */

	struct pg_stmt stmts[PG_MAX_STMTS];
	int nstmts;
	/* A failed Parse's error, for the query after it (aborted with it). */
	char parse_err[256];
	char parse_sqlstate[6];

	/* The unit whose results are arriving. */
	bool unit_failed;
	char unit_err[256];
	char unit_sqlstate[6];
	/* Explicit transaction block, followed by command tags. */
	bool in_block;
	bool block_failed;

	int depth;
	bool closing;
	bool wait_timeout; /* pg_wait_ready's deadline passed */

	char lasterr[256]; /* last connect/connection error */
	char logged[256];  /* last connect failure logged */
};

static void pg_on_defer(evutil_socket_t fd, short what, void *arg);
static void pg_on_retry(evutil_socket_t fd, short what, void *arg);
static void pg_on_connect_io(evutil_socket_t fd, short what, void *arg);
static void pg_on_read(evutil_socket_t fd, short what, void *arg);
static void pg_on_write(evutil_socket_t fd, short what, void *arg);
static void pg_free(struct pgconn *c);
static int pg_send(struct pgconn *c, enum pgq_kind kind, const char *sql,
		   int nparams, const char *const *values, const int *lengths,
		   const int *formats, void *owned, bool binary_result,
		   bool reuse, pg_cb cb, void *arg);
static bool pg_send_now(struct pgconn *c, const struct pgq *e, const char *sql,
			int nparams, const char *const *values,
			const int *lengths, const int *formats,
			bool binary_result);
static int pg_send_sync(struct pgconn *c, pg_cb cb, void *arg);

/* Copies libpq's (possibly multi-line) message onto one line. */
static void pg_oneline(char *dst, size_t len, const char *msg)
{
	size_t n = 0;
	bool space = false;

	if (len == 0)
		return;
	for (; msg && *msg && n + 1 < len; msg++) {
		if (*msg == '\n' || *msg == '\t' || *msg == '\r' ||
		    *msg == ' ') {
			space = n > 0;
			continue;
		}
		if (space && n + 2 < len)
			dst[n++] = ' ';
		space = false;
		dst[n++] = *msg;
	}
	dst[n] = '\0';
}

static void pg_seterr(struct pgconn *c, const char *msg)
{
	if (msg == c->lasterr)
		return;
	pg_oneline(c->lasterr, sizeof(c->lasterr),
		   msg && *msg ? msg : "unknown error");
}

static void pg_log(const struct pgconn *c, const char *fmt, const char *msg)
{
	fprintf(stderr, "samsa: pg[%s]: ", c->name);
	fprintf(stderr, fmt, msg);
	fputc('\n', stderr);
}

static void pg_push(struct pgqlist *l, struct pgq *e)
{
	e->next = NULL;
	if (l->tail)
		l->tail->next = e;
	else
		l->head = e;
	l->tail = e;
}

static struct pgq *pg_pop(struct pgqlist *l)
{
	struct pgq *e = l->head;

	if (e) {
		l->head = e->next;
		if (!l->head)
			l->tail = NULL;
		e->next = NULL;
	}
	return e;
}

/* Appends all of from to to; from ends empty. */
static void pg_splice(struct pgqlist *to, struct pgqlist *from)
{
	if (!from->head)
		return;
	if (to->tail)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	from->head = from->tail = NULL;
}

static void pg_enter(struct pgconn *c)
{
	c->depth++;
}

/* Leaves a handler; c may be freed on return. */
static void pg_leave(struct pgconn *c)
{
	if (--c->depth == 0 && c->closing)
		pg_free(c);
}

static void pg_kick(struct pgconn *c)
{
	if (!c->closing && c->defer)
		event_active(c->defer, EV_TIMEOUT, 0);
}

static void pg_free_entry(struct pgq *e)
{
	free(e->err_owned);
	free(e->block);
	free(e->owned);
	free(e);
}

/* Runs e's callback, if any, with an error and frees e. */
static void pg_answer(struct pgconn *c, struct pgq *e, const char *err)
{
	if (e->kind == PGQ_QUERY)
		c->npending--;
	if (e->cb)
		e->cb(e->arg, NULL, err, "");
	pg_free_entry(e);
}

/*
 * Puts e on the failed list, to be answered from the loop with err, or a
 * one-line copy of msg when set.  Counted in npending already.
 */
static void pg_fail_entry(struct pgconn *c, struct pgq *e, const char *err,
			  const char *msg)
{
	free(e->block);
	free(e->owned);
	e->block = e->owned = NULL;
	e->err = err;
	if (msg) {
		free(e->err_owned);
		e->err_owned = malloc(256);
		if (e->err_owned) {
			pg_oneline(e->err_owned, 256, msg);
			e->err = e->err_owned;
		} else {
			e->err = "out of memory";
		}
	}
	pg_push(&c->failed, e);
	pg_kick(c);
}

/* A query or sync that cannot be sent at all.  -1 when out of memory. */
static int pg_fail_later(struct pgconn *c, enum pgq_kind kind, pg_cb cb,
			 void *arg, const char *err)
{
	struct pgq *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->kind = kind;
	e->cb = cb;
	e->arg = arg;
	if (kind == PGQ_QUERY)
		c->npending++;
	pg_fail_entry(c, e, err, NULL);
	return 0;
}

/* Drops the PGconn and its events; the lists are left alone. */
static void pg_teardown(struct pgconn *c)
{
	pg_resolve_cancel(c->resolving);
	c->resolving = NULL;
	if (c->cev) {
		event_free(c->cev);
		c->cev = NULL;
	}
	if (c->rd) {
		event_free(c->rd);
		c->rd = NULL;
	}
	if (c->wr) {
		event_free(c->wr);
		c->wr = NULL;
	}
	if (c->conn) {
		PQfinish(c->conn);
		c->conn = NULL;
	}
	for (int i = 0; i < c->nstmts; i++)
		c->stmts[i].state = STMT_NONE;
	c->parse_err[0] = '\0';
	c->unsynced = 0;
	c->unflushed = 0;
	c->await_null = false;
	c->unit_failed = false;
	c->in_block = false;
	c->block_failed = false;
	c->state = PG_DOWN;
}

static void pg_schedule_retry(struct pgconn *c)
{
	struct timeval tv = {c->backoff_ms / 1000,
			     (c->backoff_ms % 1000) * 1000};

	c->backoff_ms *= 2;
	if (c->backoff_ms > PG_BACKOFF_MAX_MS)
		c->backoff_ms = PG_BACKOFF_MAX_MS;
	evtimer_add(c->retry, &tv);
}

/*
 * The connection broke: answer everything in flight or waiting with
 * "connection lost" and reconnect after the back-off.  Only from a handler.
 */
static void pg_lose(struct pgconn *c, const char *msg)
{
	struct pgqlist q = c->q;
	struct pgq *e;

	pg_seterr(c, msg);
	pg_log(c, "connection lost: %s; reconnecting", c->lasterr);
	c->logged[0] = '\0';
	pg_teardown(c);
	c->backoff_ms = PG_BACKOFF_MIN_MS;
	pg_schedule_retry(c);

	/* Callbacks may queue (they fail, deferred) or even pg_close. */
	c->q.head = c->q.tail = NULL;
	pg_splice(&q, &c->sendq);
	while ((e = pg_pop(&q)))
		pg_answer(c, e, "connection lost");
}

static void pg_connect_failed(struct pgconn *c, const char *msg)
{
	pg_seterr(c, msg);
	if (strcmp(c->logged, c->lasterr) != 0) {
		pg_log(c, "cannot connect: %s; retrying", c->lasterr);
		memcpy(c->logged, c->lasterr, sizeof(c->logged));
	}
	pg_teardown(c);
	pg_schedule_retry(c);
}

static void pg_notice(void *arg, const PGresult *res)
{
	struct pgconn *c = arg;
	const char *sev =
		PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
	char line[512];

	/* NOTICE, INFO, DEBUG and LOG are chatter (IF NOT EXISTS ...). */
	if (sev && strcmp(sev, "WARNING") != 0 && strcmp(sev, "ERROR") != 0 &&
	    strcmp(sev, "FATAL") != 0 && strcmp(sev, "PANIC") != 0)
		return;
	pg_oneline(line, sizeof(line), PQresultErrorMessage(res));
	pg_log(c, "%s", line);
}

static int pg_arm_connect(struct pgconn *c)
{
	struct timeval tv = {PG_CONNECT_TIMEOUT, 0};
	short what = c->poll == PGRES_POLLING_READING ? EV_READ : EV_WRITE;

	/* The socket may change between steps (several hosts, SSL retry). */
	if (c->cev)
		event_free(c->cev);
	c->cev = event_new(c->base, PQsocket(c->conn), what, pg_on_connect_io,
			   c);
	if (!c->cev || event_add(c->cev, &tv) != 0)
		return -1;
	return 0;
}

/* host and hostaddr (pgresolve.h) NULL: libpq resolves the host itself,
 * when it has one to resolve. */
static void pg_connect_to(struct pgconn *c, const char *host,
			  const char *hostaddr)
{
	const char *const kw[] = {"dbname", "fallback_application_name", "host",
				  "hostaddr", NULL};
	const char *const val[] = {c->conninfo, "samsa", host, hostaddr, NULL};

	c->conn = PQconnectStartParams(kw, val, 1);
	if (!c->conn) {
		pg_connect_failed(c, "out of memory");
		return;
	}
	if (PQstatus(c->conn) == CONNECTION_BAD) {
		pg_connect_failed(c, PQerrorMessage(c->conn));
		return;
	}
	c->poll = PGRES_POLLING_WRITING;
	if (pg_arm_connect(c) != 0)
		pg_connect_failed(c, "cannot add connect event");
}

static void pg_on_resolved(void *arg, const char *host, const char *hostaddr,
			   const char *err)
{
	struct pgconn *c = arg;

	c->resolving = NULL;
	if (err)
		pg_connect_failed(c, err);
	else
		pg_connect_to(c, host, hostaddr);
}

/* Runs no callback: a host name is looked up off the loop first. */
static void pg_start_connect(struct pgconn *c)
{
	const char *const kw[] = {"dbname", NULL};
	const char *const val[] = {c->conninfo, NULL};

	c->state = PG_CONNECTING;
	c->resolving = pg_resolve_start(c->base, kw, val, 1, pg_on_resolved, c);
	if (!c->resolving)
		pg_connect_to(c, NULL, NULL);
}

static void pg_connected(struct pgconn *c)
{
	evutil_socket_t fd = PQsocket(c->conn);

	if (PQsetnonblocking(c->conn, 1) != 0 ||
	    PQenterPipelineMode(c->conn) != 1) {
		pg_connect_failed(c, PQerrorMessage(c->conn));
		return;
	}
	PQsetNoticeReceiver(c->conn, pg_notice, c);
	event_free(c->cev);
	c->cev = NULL;
	c->rd = event_new(c->base, fd, EV_READ | EV_PERSIST, pg_on_read, c);
	c->wr = event_new(c->base, fd, EV_WRITE, pg_on_write, c);
	if (!c->rd || !c->wr || event_add(c->rd, NULL) != 0) {
		pg_connect_failed(c, "cannot add socket events");
		return;
	}
	c->state = PG_READY;
	c->backoff_ms = PG_BACKOFF_MIN_MS;
	c->lasterr[0] = '\0';
	c->logged[0] = '\0';
	fprintf(stderr, "samsa: pg[%s]: connected\n", c->name);
	if (c->on_up)
		c->on_up(c->on_up_arg);
}

static void pg_on_connect_io(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	(void)fd;
	pg_enter(c);
	if (what & EV_TIMEOUT) {
		pg_connect_failed(c, "timeout expired while connecting");
		goto out;
	}
	c->poll = PQconnectPoll(c->conn);
	switch (c->poll) {
	case PGRES_POLLING_READING:
	case PGRES_POLLING_WRITING:
		if (pg_arm_connect(c) != 0)
			pg_connect_failed(c, "cannot add connect event");
		break;
	case PGRES_POLLING_OK:
		pg_connected(c);
		break;
	default:
		pg_connect_failed(c, PQerrorMessage(c->conn));
		break;
	}
out:
	pg_leave(c);
}

static void pg_on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	(void)fd;
	(void)what;
	pg_enter(c);
	if (c->state == PG_DOWN && !c->closing)
		pg_start_connect(c);
	pg_leave(c);
}

/* Marks the connection for teardown by the deferred event. */
static void pg_break_later(struct pgconn *c)
{
	if (c->state != PG_READY)
		return;
	pg_seterr(c, PQerrorMessage(c->conn));
	c->state = PG_BROKEN;
	pg_kick(c);
}

/* Pushes libpq's output; arms EV_WRITE while some is left. */
static void pg_flush(struct pgconn *c)
{
	int r;

	if (c->state != PG_READY)
		return;
	r = PQflush(c->conn);
	if (r < 0)
		pg_break_later(c);
	else if (r == 0)
		c->unflushed = 0;
	else if (!event_pending(c->wr, EV_WRITE, NULL))
		event_add(c->wr, NULL);
}

/* Whether the next entry must wait in sendq (which keeps FIFO order). */
static bool pg_must_queue(struct pgconn *c)
{
	if (c->sendq.head)
		return true;
	if (c->unflushed >= PG_BACKLOG)
		pg_flush(c);
	return c->unflushed >= PG_BACKLOG;
}

/* The entry queued last, which a new sync would follow. */
static struct pgq *pg_last(struct pgconn *c)
{
	return c->sendq.tail ? c->sendq.tail : c->q.tail;
}

/*
 * libpq refused e (bad arguments, no memory, broken socket).  Its unit now
 * lacks a statement and must not commit: drop the connection, which rolls
 * the unit back, and answer e from the loop.
 */
static void pg_refused(struct pgconn *c, struct pgq *e, const char *why)
{
	pg_break_later(c);
	if (why)
		pg_seterr(c, why);
	if (e->kind == PGQ_INTERNAL || e->kind == PGQ_PREPARE ||
	    (e->kind == PGQ_SYNC && !e->cb))
		pg_free_entry(e);
	else
		pg_fail_entry(c, e, NULL, c->lasterr);
}

/* Hands a sendq entry to libpq. */
static void pg_transmit(struct pgconn *c, struct pgq *e)
{
	int ok;

	if (e->kind == PGQ_SYNC)
		ok = PQpipelineSync(c->conn) == 1;
	else
		ok = pg_send_now(c, e, e->sql, e->nparams, e->values,
				 e->lengths, e->formats, e->binary);
	if (!ok) {
		pg_refused(c, e, NULL);
		return;
	}
	free(e->block);
	free(e->owned);
	e->block = e->owned = NULL;
	pg_push(&c->q, e);
	c->unflushed += e->size;
}

/* Feeds sendq to libpq as its output drains, then flushes. */
static void pg_pump(struct pgconn *c)
{
	while (c->state == PG_READY && c->sendq.head) {
		if (c->unflushed >= PG_BACKLOG) {
			pg_flush(c);
			if (c->unflushed >= PG_BACKLOG)
				return; /* EV_WRITE is armed */
		}
		pg_transmit(c, pg_pop(&c->sendq));
	}
	pg_flush(c);
}

/* Ends the unit; with cb, -1 when out of memory (cb then not called). */
static int pg_send_sync(struct pgconn *c, pg_cb cb, void *arg)
{
	struct pgq *e, *last = pg_last(c);

	if (c->unsynced == 0 &&
	    (!cb || (last && last->kind == PGQ_SYNC && !last->cb))) {
		/* Nothing since the last sync: it stands for this unit. */
		if (cb) {
			last->cb = cb;
			last->arg = arg;
		}
		pg_pump(c);
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return cb ? -1 : 0;
	e->kind = PGQ_SYNC;
	e->cb = cb;
	e->arg = arg;
	e->size = 5;
	c->unsynced = 0;
	c->unit++;
	if (pg_must_queue(c)) {
		pg_push(&c->sendq, e);
		pg_kick(c);
		return 0;
	}
	if (PQpipelineSync(c->conn) != 1) {
		pg_refused(c, e, NULL);
		return 0;
	}
	pg_push(&c->q, e);
	pg_flush(c);
	return 0;
}

static bool pg_fatal(const PGresult *res)
{
	const char *sev =
		PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);

	return sev && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0);
}

/* The first error of the unit is what its sync callback reports. */
static void pg_unit_error(struct pgconn *c, const char *err,
			  const char *sqlstate)
{
	if (c->unit_failed)
		return;
	c->unit_failed = true;
	snprintf(c->unit_err, sizeof(c->unit_err), "%s",
		 err ? err : "unknown error");
	snprintf(c->unit_sqlstate, sizeof(c->unit_sqlstate), "%s",
		 sqlstate ? sqlstate : "");
}

/* Follows BEGIN/COMMIT so that a failed block can be rolled back. */
static void pg_track_block(struct pgconn *c, const PGresult *res)
{
	const char *tag = PQcmdStatus((PGresult *)res);

	if (strcmp(tag, "BEGIN") == 0 || strcmp(tag, "START TRANSACTION") == 0)
		c->in_block = true;
	else if (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "ROLLBACK") == 0 ||
		 strcmp(tag, "PREPARE TRANSACTION") == 0)
		c->in_block = false;
}

/* Hands one result to the head entry, a query. */
static void pg_deliver(struct pgconn *c, struct pgq *e, const PGresult *res)
{
	const char *state = "", *text = NULL;
	char msg[64];

	switch (PQresultStatus(res)) {
	case PGRES_TUPLES_OK:
	case PGRES_COMMAND_OK:
		pg_track_block(c, res);
		break;
	case PGRES_PIPELINE_ABORTED:
		text = "pipeline aborted";
		if (e->kind == PGQ_QUERY && c->parse_err[0]) {
			/* Its own Parse failed just before it. */
			text = c->parse_err;
			state = c->parse_sqlstate;
		}
		break;
	case PGRES_FATAL_ERROR:
		state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		if (!state)
			state = "";
		text = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
		if (!text)
			text = PQresultErrorMessage(res);
		if (c->in_block)
			c->block_failed = true;
		break;
	default:
		snprintf(msg, sizeof(msg), "unexpected result %s",
			 PQresStatus(PQresultStatus(res)));
		text = msg;
		break;
	}
	if (text)
		pg_unit_error(c, text, state);
	if (e->kind == PGQ_PREPARE) {
		e->stmt->state = text ? STMT_NONE : STMT_READY;
		if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
			snprintf(c->parse_err, sizeof(c->parse_err), "%s",
				 text);
			snprintf(c->parse_sqlstate, sizeof(c->parse_sqlstate),
				 "%s", state);
		}
	} else if (e->kind == PGQ_QUERY) {
		c->npending--;
		if (e->cb)
			e->cb(e->arg, text ? NULL : res, text, state);
		c->parse_err[0] = '\0';
	}
	pg_free_entry(e);
}

/*
 * A unit is over: tell its sync callback how it went.  A unit that failed
 * inside BEGIN leaves the session in an aborted block where every later
 * statement fails (25P02) until a ROLLBACK, so send one now.
 */
static void pg_unit_end(struct pgconn *c, struct pgq *e)
{
	bool failed = c->unit_failed;
	char sqlstate[sizeof(c->unit_sqlstate)];
	char err[sizeof(c->unit_err)];

	memcpy(err, c->unit_err, sizeof(err));
	memcpy(sqlstate, c->unit_sqlstate, sizeof(sqlstate));
	c->unit_failed = false;
	if (c->block_failed) {
		c->block_failed = false;
		c->in_block = false;
		pg_send(c, PGQ_INTERNAL, "ROLLBACK", 0, NULL, NULL, NULL, NULL,
			false, false, NULL, NULL);
		pg_send_sync(c, NULL, NULL);
	}
	if (e->cb)
		e->cb(e->arg, NULL, failed ? err : NULL,
		      failed ? sqlstate : "");
	pg_free_entry(e);
}

/*
 * Reads every result libpq has parsed and matches it to q.  Stops when
 * libpq needs more input, on close or when the connection went.
 */
static void pg_results(struct pgconn *c)
{
	PGresult *res;
	struct pgq *e;
	char msg[256];
	const char *st;

	while (c->state == PG_READY && !c->closing && !PQisBusy(c->conn)) {
		res = PQgetResult(c->conn);
		if (!res) {
			if (!c->await_null)
				break; /* idle: nothing in flight */
			c->await_null = false;
			continue;
		}
		e = c->q.head;
		if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
			PQclear(res);
			c->await_null = false;
			if (!e || e->kind != PGQ_SYNC) {
				pg_lose(c, "sync result out of order");
				return;
			}
			pg_pop(&c->q);
			pg_unit_end(c, e);
			continue;
		}
		if (c->await_null) {
			PQclear(res); /* more than one result: not ours */
			continue;
		}
		if (PQresultStatus(res) == PGRES_FATAL_ERROR &&
		    (pg_fatal(res) || PQstatus(c->conn) == CONNECTION_BAD)) {
			/* The backend is going away: a lost connection. */
			pg_oneline(msg, sizeof(msg), PQresultErrorMessage(res));
			PQclear(res);
			pg_lose(c, msg);
			return;
		}
		if (!e) {
			PQclear(res);
			pg_lose(c, "result out of order");
			return;
		}
		if (e->kind == PGQ_SYNC) {
			/* An error at Sync: the implicit commit failed. */
			if (PQresultStatus(res) == PGRES_FATAL_ERROR) {
				st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
				pg_unit_error(
					c,
					PQresultErrorField(
						res, PG_DIAG_MESSAGE_PRIMARY),
					st);
			}
			PQclear(res);
			c->await_null = true;
			continue;
		}
		pg_pop(&c->q);
		c->await_null = true;
		pg_deliver(c, e, res);
		PQclear(res);
	}
}

static void pg_drain_notifies(struct pgconn *c)
{
	PGnotify *n;

	while ((n = PQnotifies(c->conn)))
		PQfreemem(n);
}

static void pg_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	int ok;

	(void)fd;
	(void)what;
	pg_enter(c);
	if (c->state != PG_READY)
		goto out;
	ok = PQconsumeInput(c->conn);
	/* Results that arrived before an EOF still count. */
	pg_results(c);
	if (c->closing)
		goto out;
	if (c->state == PG_READY &&
	    (!ok || PQstatus(c->conn) == CONNECTION_BAD)) {
		pg_lose(c, PQerrorMessage(c->conn));
		goto out;
	}
	if (c->state == PG_READY) {
		pg_drain_notifies(c);
		/* The server may have been waiting for us to read. */
		if (c->sendq.head || event_pending(c->wr, EV_WRITE, NULL))
			pg_pump(c);
	}
	if (c->state == PG_BROKEN)
		pg_lose(c, c->lasterr);
out:
	pg_leave(c);
}

static void pg_on_write(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	(void)fd;
	(void)what;
	pg_enter(c);
	pg_pump(c);
	if (c->state == PG_BROKEN && !c->closing)
		pg_lose(c, c->lasterr);
	pg_leave(c);
}

static void pg_on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;
	struct pgqlist failed = c->failed;
	struct pgq *e;

	(void)fd;
	(void)what;
	pg_enter(c);
	/* Only what failed so far: a callback that retries at once waits. */
	c->failed.head = c->failed.tail = NULL;
	/* Broken while a unit was being sent: what libpq took (q, sendq)
	 * was asked for before what it refused, and is answered first (a
	 * unit's sync, refused, must not be answered before its
	 * statements). */
	if (c->state == PG_BROKEN && !c->closing)
		pg_lose(c, c->lasterr);
	while ((e = pg_pop(&failed)))
		pg_answer(c, e, e->err);
	if (c->closing)
		goto out;
	if (c->state == PG_READY && c->unsynced > 0)
		pg_send_sync(c, NULL, NULL); /* the caller left a unit open */
	if (c->state == PG_READY && c->sendq.head)
		pg_pump(c);
	if (c->state == PG_BROKEN)
		pg_lose(c, c->lasterr);
out:
	pg_leave(c);
}

struct pgconn *pg_open(struct event_base *base, const char *conninfo,
		       const char *name, void (*on_up)(void *arg),
		       void *on_up_arg)
{
	struct pgconn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->base = base;
	c->on_up = on_up;
	c->on_up_arg = on_up_arg;
	c->backoff_ms = PG_BACKOFF_MIN_MS;
	c->conninfo = strdup(conninfo);
	c->name = strdup(name ? name : "pg");
	c->retry = evtimer_new(base, pg_on_retry, c);
	c->defer = event_new(base, -1, 0, pg_on_defer, c);
	if (!c->conninfo || !c->name || !c->retry || !c->defer) {
		pg_free(c);
		return NULL;
	}
	pg_start_connect(c); /* runs no callback */
	return c;
}

static void pg_on_wait_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct pgconn *c = arg;

	(void)fd;
	(void)what;
	c->wait_timeout = true;
}

int pg_wait_ready(struct pgconn *c, int timeout_ms, char *err, size_t errlen)
{
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	struct event *t;

	if (c->state == PG_READY)
		return 0;
	t = evtimer_new(c->base, pg_on_wait_timeout, c);
	if (!t || evtimer_add(t, &tv) != 0) {
		if (t)
			event_free(t);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	c->wait_timeout = false;
	while (c->state != PG_READY && !c->wait_timeout && !c->closing)
		if (event_base_loop(c->base, EVLOOP_ONCE) < 0)
			break;
	event_free(t);
	if (c->state == PG_READY)
		return 0;
	snprintf(err, errlen, "%s",
		 c->lasterr[0] ? c->lasterr
			       : "timeout expired while connecting");
	return -1;
}

static void pg_free(struct pgconn *c)
{
	struct pgq *e;

	/* Queries queued by callbacks while closing: still answered once. */
	while ((e = pg_pop(&c->failed)))
		pg_answer(c, e, e->err);
	pg_teardown(c);
	if (c->retry)
		event_free(c->retry);
	if (c->defer)
		event_free(c->defer);
	for (int i = 0; i < c->nstmts; i++)
		free(c->stmts[i].sql);
	free(c->conninfo);
	free(c->name);
	free(c);
}

void pg_close(struct pgconn *c)
{
	struct pgqlist q;
	struct pgq *e;

	if (!c || c->closing)
		return;
	c->closing = true;
	pg_enter(c);
	q = c->q;
	c->q.head = c->q.tail = NULL;
	pg_splice(&q, &c->sendq);
	/* Closing the socket ends the session: an open unit rolls back. */
	pg_teardown(c);
	evtimer_del(c->retry);
	event_del(c->defer);
	while ((e = pg_pop(&q)))
		pg_answer(c, e, "connection closed");
	while ((e = pg_pop(&c->failed)))
		pg_answer(c, e, e->err);
	pg_leave(c);
}

bool pg_ready(const struct pgconn *c)
{
	return c && c->state == PG_READY && !c->closing;
}

const char *pg_last_error(const struct pgconn *c)
{
	return c->state == PG_READY ? "" : c->lasterr;
}

int pg_pending(const struct pgconn *c)
{
	return c->npending;
}

/* Bytes of parameter i as libpq sends it (text: with its NUL here). */
static size_t pg_param_len(int i, const char *const *values, const int *lengths,
			   const int *formats)
{
	if (!values || !values[i])
		return 0;
	if (formats && formats[i])
		return lengths && lengths[i] > 0 ? (size_t)lengths[i] : 0;
	return strlen(values[i]) + 1;
}

/*
 * A sendq entry holding a copy of the query: one block with the pointer
 * array, lengths, formats, sql and, unless owned, the parameter bytes.
 */
static struct pgq *pg_copy_query(const char *sql, int nparams,
				 const char *const *values, const int *lengths,
				 const int *formats, void *owned)
{
	size_t sqllen = strlen(sql) + 1, bytes = 0, len;
	struct pgq *e = calloc(1, sizeof(*e));
	char *p;
	int i;

	if (!e)
		return NULL;
	for (i = 0; i < nparams; i++)
		bytes += pg_param_len(i, values, lengths, formats);
	e->size = sqllen + bytes + 32 + 4 * (size_t)nparams;
	if (owned)
		bytes = 0;
	e->block = malloc((size_t)nparams * (sizeof(char *) + 2 * sizeof(int)) +
			  sqllen + bytes);
	if (!e->block) {
		free(e);
		return NULL;
	}
	e->values = e->block;
	e->lengths = (int *)(e->values + nparams);
	e->formats = e->lengths + nparams;
	p = (char *)(e->formats + nparams);
	memcpy(p, sql, sqllen);
	e->sql = p;
	p += sqllen;
	for (i = 0; i < nparams; i++) {
		len = pg_param_len(i, values, lengths, formats);
		e->lengths[i] = lengths ? lengths[i] : 0;
		e->formats[i] = formats ? formats[i] : 0;
		if (!values || !values[i]) {
			e->values[i] = NULL;
		} else if (owned) {
			e->values[i] = values[i];
		} else {
			memcpy(p, values[i], len);
			e->values[i] = p;
			p += len;
		}
	}
	e->nparams = nparams;
	e->owned = owned;
	return e;
}

/*
 * The prepared-statement slot of sql, taken when sql is new; NULL when all
 * are taken or memory runs out.
 */
static struct pg_stmt *pg_stmt_of(struct pgconn *c, const char *sql)
{
	char *copy;

	for (int i = 0; i < c->nstmts; i++)
		if (strcmp(c->stmts[i].sql, sql) == 0)
			return &c->stmts[i];
	if (c->nstmts == PG_MAX_STMTS || !(copy = strdup(sql)))
		return NULL;
	c->stmts[c->nstmts] = (struct pg_stmt){copy, STMT_NONE, 0};
	return &c->stmts[c->nstmts++];
}

/* Gives libpq a query (by name when e has a statement) or a Parse. */
static bool pg_send_now(struct pgconn *c, const struct pgq *e, const char *sql,
			int nparams, const char *const *values,
			const int *lengths, const int *formats,
			bool binary_result)
{
	char name[24];

	if (!e->stmt)
		return PQsendQueryParams(c->conn, sql, nparams, NULL, values,
					 lengths, formats,
					 binary_result ? 1 : 0) == 1;
	snprintf(name, sizeof(name), "samsa_%d", (int)(e->stmt - c->stmts));
	if (e->kind == PGQ_PREPARE)
		return PQsendPrepare(c->conn, name, e->stmt->sql, 0, NULL) == 1;
	return PQsendQueryPrepared(c->conn, name, nparams, values, lengths,
				   formats, binary_result ? 1 : 0) == 1;
}

/* Queues the Parse of st in the current unit, ahead of its first query. */
static int pg_send_parse(struct pgconn *c, struct pg_stmt *st)
{
	struct pgq *e = calloc(1, sizeof(*e));

	if (!e)
		return -1;
	e->kind = PGQ_PREPARE;
	e->stmt = st;
	e->size = strlen(st->sql) + 32;
	st->state = STMT_PREPARING;
	st->unit = c->unit;
	c->unsynced++;
	pg_kick(c);
	if (pg_must_queue(c)) {
		pg_push(&c->sendq, e);
		return 0;
	}
	if (!pg_send_now(c, e, NULL, 0, NULL, NULL, NULL, false)) {
		pg_refused(c, e, NULL);
		return 0;
	}
	pg_push(&c->q, e);
	c->unflushed += e->size;
	return 0;
}

/*
 * Takes ownership of owned in every case.  reuse: run sql as a prepared
 * statement of c when it can be (see the top of the file).
 */
static int pg_send(struct pgconn *c, enum pgq_kind kind, const char *sql,
		   int nparams, const char *const *values, const int *lengths,
		   const int *formats, void *owned, bool binary_result,
		   bool reuse, pg_cb cb, void *arg)
{
	bool valid = sql && nparams >= 0 && nparams <= PG_MAX_PARAMS &&
		     (nparams == 0 || values);
	struct pg_stmt *st = NULL;
	struct pgq *e;
	int i;

	if (c->closing || c->state != PG_READY) {
		free(owned);
		return pg_fail_later(c, kind, cb, arg,
				     c->closing ? "connection closed"
						: "not connected");
	}
	if (reuse && valid && (st = pg_stmt_of(c, sql))) {
		if (st->state == STMT_NONE) {
			if (pg_send_parse(c, st) != 0) {
				free(owned);
				return -1;
			}
		} else if (st->state == STMT_PREPARING && st->unit != c->unit) {
			st = NULL; /* that Parse may yet fail with its unit */
		}
	}
	if (valid && pg_must_queue(c)) {
		e = pg_copy_query(sql, nparams, values, lengths, formats,
				  owned);
		if (!e) {
			free(owned);
			return -1;
		}
		e->binary = binary_result;
	} else {
		e = calloc(1, sizeof(*e));
		if (!e) {
			free(owned);
			return -1;
		}
	}
	e->kind = kind;
	e->cb = cb;
	e->arg = arg;
	e->stmt = st;
	if (kind == PGQ_QUERY)
		c->npending++;
	c->unsynced++;
	pg_kick(c);
	if (e->block) {
		pg_push(&c->sendq, e);
		return 0;
	}
	if (!valid || c->state != PG_READY ||
	    !pg_send_now(c, e, sql, nparams, values, lengths, formats,
			 binary_result)) {
		free(owned);
		pg_refused(c, e, valid ? NULL : "invalid query arguments");
		return 0;
	}
	free(owned); /* libpq has copied the parameters */
	e->size = strlen(sql) + 32;
	for (i = 0; i < nparams; i++)
		e->size += 4 + pg_param_len(i, values, lengths, formats);
	pg_push(&c->q, e);
	c->unflushed += e->size;
	return 0;
}

int pg_query(struct pgconn *c, const char *sql, int nparams,
	     const char *const *values, const int *lengths, const int *formats,
	     bool binary_result, pg_cb cb, void *arg)
{
	return pg_send(c, PGQ_QUERY, sql, nparams, values, lengths, formats,
		       NULL, binary_result, false, cb, arg);
}

int pg_query_prepared(struct pgconn *c, const char *sql, int nparams,
		      const char *const *values, const int *lengths,
		      const int *formats, bool binary_result, pg_cb cb,
		      void *arg)
{
	return pg_send(c, PGQ_QUERY, sql, nparams, values, lengths, formats,
		       NULL, binary_result, true, cb, arg);
}

int pg_query_owned(struct pgconn *c, const char *sql, int nparams,
		   const char *const *values, const int *lengths,
		   const int *formats, void *owned, bool binary_result,
		   pg_cb cb, void *arg)
{
	return pg_send(c, PGQ_QUERY, sql, nparams, values, lengths, formats,
		       owned, binary_result, false, cb, arg);
}

void pg_sync(struct pgconn *c)
{
	if (c->state == PG_READY && !c->closing)
		pg_send_sync(c, NULL, NULL);
}

int pg_sync_cb(struct pgconn *c, pg_cb cb, void *arg)
{
	if (c->closing || c->state != PG_READY)
		return pg_fail_later(c, PGQ_SYNC, cb, arg,
				     c->closing ? "connection closed"
						: "not connected");
	return pg_send_sync(c, cb, arg);
}
