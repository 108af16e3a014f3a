/*
 * pgpool: N pgconns and a least-pending pick.  Each pgconn reconnects on
 * its own, so the pool has no state of its own beyond the array.
 */
#include "storage/pgpool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#define PG_POOL_MAX 64

struct pgpool {
	int n;
	struct pgconn *conns[PG_POOL_MAX];
};

struct pgpool *pg_pool_open(struct event_base *base, const char *conninfo,
			    const char *name, int n, void (*on_up)(void *arg),
			    void *on_up_arg)
{
	struct pgpool *p;
	char cname[128];

	if (n < 1 || n > PG_POOL_MAX)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	for (p->n = 0; p->n < n; p->n++) {
		snprintf(cname, sizeof(cname), "%s/%d", name ? name : "pg",
			 p->n);
		p->conns[p->n] =
			pg_open(base, conninfo, cname, on_up, on_up_arg);
		if (!p->conns[p->n]) {
			pg_pool_close(p);
			return NULL;
		}
	}
	return p;
}

static long pg_pool_now_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return tv.tv_sec * 1000L + tv.tv_usec / 1000;
}

int pg_pool_wait_ready(struct pgpool *p, int timeout_ms, char *err,
		       size_t errlen)
{
	long deadline = pg_pool_now_ms() + timeout_ms;
	long left;
	int i;

	for (i = 0; i < p->n; i++) {
		left = deadline - pg_pool_now_ms();
		if (left < 0)
			left = 0;
		if (pg_wait_ready(p->conns[i], (int)left, err, errlen) != 0)
			return -1;
	}
	return 0;
}

struct pgconn *pg_pool_pick(struct pgpool *p)
{
	struct pgconn *best = NULL;
	int i;

	for (i = 0; i < p->n; i++)
		if (pg_ready(p->conns[i]) &&
		    (!best || pg_pending(p->conns[i]) < pg_pending(best)))
			best = p->conns[i];
	return best;
}

int pg_pool_size(const struct pgpool *p)
{
	return p->n;
}

struct pgconn *pg_pool_conn(struct pgpool *p, int i)
{
	return i >= 0 && i < p->n ? p->conns[i] : NULL;
}

void pg_pool_close(struct pgpool *p)
{
	int i;

	if (!p)
		return;
	for (i = 0; i < p->n; i++)
		pg_close(p->conns[i]);
	free(p);
}
