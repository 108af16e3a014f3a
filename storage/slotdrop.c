/*
 * slotdrop: one detached thread per drop; a count under a mutex says how
 * many are running, for slot_drop_wait.
 */
#include "storage/slotdrop.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#define MAX_KW 16

struct drop {
	char *kw[MAX_KW + 1], *val[MAX_KW + 1];
	char *slot, *connector;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;
static int running;

static void drop_free(struct drop *d)
{
	for (int i = 0; i < MAX_KW; i++) {
		free(d->kw[i]);
		free(d->val[i]);
	}
	free(d->slot);
	free(d->connector);
	free(d);
}

/* The statement: wait for the walsender to let go, then drop.  A slot that
 * is gone already is fine (dropped by hand, or never made). */
static char *drop_sql(PGconn *c, const char *slot)
{
	char *lit = PQescapeLiteral(c, slot, strlen(slot));
	if (!lit)
		return NULL;
	const char *fmt =
		"DO $samsa$ BEGIN FOR i IN 1..100 LOOP "
		"IF NOT EXISTS (SELECT 1 FROM pg_replication_slots "
		"WHERE slot_name = %s AND active) THEN "
		"PERFORM pg_drop_replication_slot(slot_name) "
		"FROM pg_replication_slots WHERE slot_name = %s; RETURN; "
		"END IF; PERFORM pg_sleep(0.1); END LOOP; "
		"RAISE EXCEPTION 'still in use after 10 s'; END $samsa$";
	size_t n = strlen(fmt) + 2 * strlen(lit) + 1;
	char *sql = malloc(n);
	if (sql)
		snprintf(sql, n, fmt, lit, lit);
	PQfreemem(lit);
	return sql;
}

static void *drop_thread(void *arg)
{
	struct drop *d = arg;
	PGconn *c = PQconnectdbParams((const char *const *)d->kw,
				      (const char *const *)d->val, 0);
	char *sql =
		c && PQstatus(c) == CONNECTION_OK ? drop_sql(c, d->slot) : NULL;
	PGresult *r = sql ? PQexec(c, sql) : NULL;
	if (r && PQresultStatus(r) == PGRES_COMMAND_OK) {
		fprintf(stderr,
			"cdc %s: replication slot %s dropped "
			"(slot.drop.on.stop)\n",
			d->connector, d->slot);
	} else {
		const char *why = r   ? PQresultErrorMessage(r)
				  : c ? PQerrorMessage(c)
				      : "out of memory";
		fprintf(stderr,
			"cdc %s: could not drop replication slot %s "
			"(slot.drop.on.stop): %.*s\n",
			d->connector, d->slot, (int)strcspn(why, "\n"), why);
	}
	PQclear(r);
	free(sql);
	PQfinish(c);
	drop_free(d);
	pthread_mutex_lock(&mu);
	running--;
	pthread_cond_broadcast(&done_cv);
	pthread_mutex_unlock(&mu);
	return NULL;
}

int slot_drop_start(const char *const *kw, const char *const *val,
		    const char *slot, const char *connector)
{
	struct drop *d = calloc(1, sizeof(*d));
	bool ok = d && (d->slot = strdup(slot)) &&
		  (d->connector = strdup(connector));
	for (int i = 0; ok && kw[i] && i < MAX_KW; i++)
		ok = (d->kw[i] = strdup(kw[i])) && (d->val[i] = strdup(val[i]));
	pthread_t th;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_mutex_lock(&mu);
	int rc = ok ? pthread_create(&th, &attr, drop_thread, d) : ENOMEM;
	if (rc == 0)
		running++;
	pthread_mutex_unlock(&mu);
	pthread_attr_destroy(&attr);
	if (rc != 0) {
		fprintf(stderr,
			"cdc %s: could not drop replication slot %s "
			"(slot.drop.on.stop): %s\n",
			connector, slot, strerror(rc));
		if (d)
			drop_free(d);
		return -1;
	}
	return 0;
}

int slot_drop_wait(int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&mu);
	while (running > 0 &&
	       pthread_cond_timedwait(&done_cv, &mu, &until) != ETIMEDOUT)
		;
	int left = running;
	pthread_mutex_unlock(&mu);
	return left;
}
