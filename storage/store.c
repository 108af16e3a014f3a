/*
 * store: opening and closing the storage, and what its files share.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "storage/groups.h"
#include "storage/store_int.h"

struct deferred {
	void (*fn)(void *arg);
	void *arg;
};

static void run_deferred(evutil_socket_t fd, short what, void *arg)
{
	struct deferred d = *(struct deferred *)arg;
	(void)fd;
	(void)what;
	free(arg);
	d.fn(d.arg);
}

void st_defer(struct store *s, void (*fn)(void *arg), void *arg)
{
	struct deferred *d = malloc(sizeof(*d));
	struct timeval now = {0, 0};
	if (!d) {
		/* Out of memory: running it late beats never running it. */
		fn(arg);
		return;
	}
	d->fn = fn;
	d->arg = arg;
	if (event_base_once(s->base, -1, EV_TIMEOUT, run_deferred, d, &now) <
	    0) {
		free(d);
		fn(arg);
	}
}

int64_t st_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *store_cluster_id(const struct store *s)
{
	return s->cluster_id;
}

static void flush_kick(evutil_socket_t fd, short what, void *arg);
static void retention_tick(evutil_socket_t fd, short what, void *arg);

static void quiet(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static int load(struct store *s, char *err, size_t errlen)
{
	PGconn *conn = PQconnectdb(s->conninfo);
	int rc = -1;
	/* Migrations' "already exists, skipping" notices are not news. */
	PQsetNoticeProcessor(conn, quiet, NULL);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to Postgres: %s",
			 PQerrorMessage(conn));
		goto out;
	}
	if (st_migrate(conn, err, errlen) < 0 ||
	    st_catalog_load(s, conn, err, errlen) < 0 ||
	    st_log_load(s, conn, err, errlen) < 0 ||
	    st_groups_load(s, conn, err, errlen) < 0 ||
	    st_txns_load(s, conn, err, errlen) < 0)
		goto out;
	PGresult *r = PQexec(conn, "SELECT value FROM samsa.meta "
				   "WHERE key = 'cluster_id'");
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		snprintf(s->cluster_id, sizeof(s->cluster_id), "%s",
			 PQgetvalue(r, 0, 0));
	PQclear(r);
	rc = 0;
out:
	if (rc < 0) {
		/* One line: libpq's messages come with newlines and tabs. */
		for (char *c = err; *c; c++)
			if (*c == '\n' || *c == '\t')
				*c = ' ';
		size_t n = strlen(err);
		while (n > 0 && err[n - 1] == ' ')
			err[--n] = '\0';
	}
	PQfinish(conn);
	return rc;
}

struct store *store_open(struct event_base *base, const struct st_options *opts,
			 char *err, size_t errlen)
{
	struct store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->opts = *opts;
	s->conninfo = strdup(opts->conninfo);
	s->opts.conninfo = s->conninfo;
	if (s->opts.cache_bytes == 0)
		s->opts.cache_bytes = 512u << 20;
	if (s->opts.readers <= 0)
		s->opts.readers = 2;
	if (!s->conninfo || load(s, err, errlen) < 0)
		goto fail;

	s->writer = pg_open(base, s->conninfo, "log", NULL, NULL);
	s->catalog = pg_open(base, s->conninfo, "catalog", NULL, NULL);
	s->nreaders = s->opts.readers;
	s->readers = calloc((size_t)s->nreaders, sizeof(*s->readers));
	if (!s->writer || !s->catalog || !s->readers)
		goto oom;
	for (int i = 0; i < s->nreaders; i++) {
		s->readers[i] = pg_open(base, s->conninfo, "read", NULL, NULL);
		if (!s->readers[i])
			goto oom;
	}
	if (pg_wait_ready(s->writer, 10000, err, errlen) < 0 ||
	    pg_wait_ready(s->catalog, 10000, err, errlen) < 0)
		goto fail;
	for (int i = 0; i < s->nreaders; i++)
		if (pg_wait_ready(s->readers[i], 10000, err, errlen) < 0)
			goto fail;

	s->flush_ev = event_new(base, -1, 0, flush_kick, s);
	s->retention_ev = event_new(base, -1, EV_PERSIST, retention_tick, s);
	if (!s->flush_ev || !s->retention_ev || st_cleaner_start(s) < 0)
		goto oom;
	int64_t every = bc_get_int("log.retention.check.interval.ms", 300000);
	struct timeval tv = {every / 1000, (every % 1000) * 1000};
	event_add(s->retention_ev, &tv);
	return s;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	store_close(s);
	return NULL;
}

static void close_conn(struct pgconn **c)
{
	struct pgconn *closing = *c;
	*c = NULL;
	pg_close(closing);
}

void store_close(struct store *s)
{
	if (!s)
		return;
	/* Closing the writer fails a flush in flight, which would schedule a
	 * reload on a loop that no longer runs. */
	s->closing = true;
	st_cleaner_close(s);
	st_txns_close(s);
	st_groups_close(s);
	/* What each close answers may ask for more (a fetch reads its next
	 * partition): no pointer may lead to a connection closed already,
	 * so each is cleared before its close. */
	close_conn(&s->writer);
	close_conn(&s->catalog);
	for (int i = 0; i < s->nreaders; i++)
		close_conn(&s->readers[i]);
	free(s->readers);
	/* After the connections: what they answered as they closed may
	 * have kicked the flush. */
	if (s->flush_ev)
		event_free(s->flush_ev);
	if (s->retention_ev)
		event_free(s->retention_ev);
	for (size_t i = 0; i < s->ntopics; i++)
		st_topic_free(s->topics[i]);
	free(s->topics);
	for (size_t i = 0; i < s->ngrave; i++)
		st_topic_free(s->graveyard[i]);
	free(s->graveyard);
	for (size_t i = 0; i < s->ncreating; i++)
		free(s->creating[i]);
	free(s->creating);
	free(s->conninfo);
	free(s);
}

static void flush_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	st_flush_now(arg);
}

static void retention_tick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	st_enforce_retention(arg);
}
