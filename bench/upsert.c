/*
 * The plain-upsert baseline of bench/sink.py: the rows the sink benchmark
 * produces to its topic, written straight to Postgres with libpq, BATCH
 * rows per statement and per transaction:
 *
 *   INSERT INTO <table> (id, a, b, c)
 *   SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[],
 *                        $4::float8[])
 *   ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a, b = EXCLUDED.b,
 *                                  c = EXCLUDED.c
 *
 * Row i (0 <= i < N) has id = i % (N / 2) + 1, a = "row-<i>", b = i and
 * c = i / 2.0, except the last, whose b is -1 (the sentinel the sink
 * benchmark waits for); so half the rows are inserts and half conflict.
 *
 *   upsert CONNINFO TABLE N BATCH     prints "<rows> rows in <s> s"
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* appends to a growing buffer; exits on allocation failure (a tool) */
static void put(char **buf, size_t *len, size_t *cap, const char *s)
{
	size_t n = strlen(s);

	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = realloc(*buf, *cap);
		if (!*buf) {
			perror("realloc");
			exit(1);
		}
	}
	memcpy(*buf + *len, s, n + 1);
	*len += n;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: upsert CONNINFO TABLE N BATCH\n");
		return 2;
	}
	long n = atol(argv[3]), batch = atol(argv[4]);
	if (n < 2 || batch < 1) {
		fprintf(stderr, "upsert: bad N or BATCH\n");
		return 2;
	}
	PGconn *c = PQconnectdb(argv[1]);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "upsert: %s", PQerrorMessage(c));
		return 1;
	}
	char sql[512];
	snprintf(sql, sizeof sql,
		 "INSERT INTO %s (id, a, b, c) SELECT * FROM "
		 "unnest($1::bigint[], $2::text[], $3::bigint[], $4::float8[]) "
		 "ON CONFLICT (id) DO UPDATE SET a = EXCLUDED.a, "
		 "b = EXCLUDED.b, c = EXCLUDED.c",
		 argv[2]);
	PGresult *r = PQprepare(c, "up", sql, 4, NULL);
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		fprintf(stderr, "upsert: %s", PQerrorMessage(c));
		return 1;
	}
	PQclear(r);

	char *arr[4] = {NULL, NULL, NULL, NULL};
	size_t len[4], cap[4] = {0, 0, 0, 0};
	long half = n / 2;
	double t0 = now();
	for (long i = 0; i < n;) {
		for (int k = 0; k < 4; k++) {
			len[k] = 0;
			put(&arr[k], &len[k], &cap[k], "{");
		}
		for (long j = 0; j < batch && i < n; j++, i++) {
			char v[64];
			const char *sep = j ? "," : "";
			snprintf(v, sizeof v, "%s%ld", sep, i % half + 1);
			put(&arr[0], &len[0], &cap[0], v);
			snprintf(v, sizeof v, "%s\"row-%ld\"", sep, i);
			put(&arr[1], &len[1], &cap[1], v);
			snprintf(v, sizeof v, "%s%ld", sep,
				 i == n - 1 ? -1 : i);
			put(&arr[2], &len[2], &cap[2], v);
			snprintf(v, sizeof v, "%s%.1f", sep, i / 2.0);
			put(&arr[3], &len[3], &cap[3], v);
		}
		for (int k = 0; k < 4; k++)
			put(&arr[k], &len[k], &cap[k], "}");
		const char *vals[4] = {arr[0], arr[1], arr[2], arr[3]};
		r = PQexecPrepared(c, "up", 4, vals, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_COMMAND_OK) {
			fprintf(stderr, "upsert: %s", PQerrorMessage(c));
			return 1;
		}
		PQclear(r);
	}
	double dt = now() - t0;
	printf("%ld rows in %.3f s\n", n, dt);
	for (int k = 0; k < 4; k++)
		free(arr[k]);
	PQfinish(c);
	return 0;
}
