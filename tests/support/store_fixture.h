/*
 * store_fixture: a store against a real Postgres for the integration tests
 * of storage (test_store.c, test_groups.c, test_compaction.c).
 *
 * SAMSA_TEST_PG holds the conninfo.  The store keeps everything in the
 * fixed schema samsa, and store_fixture_setup() drops it first, so the
 * tests of a binary that uses the fixture must run one at a time (as
 * tests/run.sh runs them).  Use it as
 *
 *   TestSuite(name, .init = store_fixture_setup,
 *             .fini = store_fixture_teardown, .timeout = 120);
 *
 * Between the two, base, st and admin below are the test's: an event_base
 * of its own, a store opened on it, and a blocking connection for checks
 * behind the store's back.  The fixture owns all three and frees them in
 * teardown, which ends with leak_check().  Asynchronous store calls are
 * driven by run_until() on a flag their callback sets, with a deadline of
 * STORE_FIXTURE_WAIT_MS so that a bug fails the test instead of hanging it.
 * Every function here fails the running test with a Criterion assertion
 * instead of returning an error.
 */
#ifndef SAMSA_TESTS_STORE_FIXTURE_H
#define SAMSA_TESTS_STORE_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/kbuf.h"
#include "storage/store.h"

#define STORE_FIXTURE_WAIT_MS 15000

struct event_base;

extern struct event_base *base;
extern struct store *st;
extern PGconn *admin;

/* Connects admin, drops the schema samsa, makes base and opens st. */
void store_fixture_setup(void);
/* Closes st, frees base and admin, then leak_check(). */
void store_fixture_teardown(void);

/* Closes st and opens it again on the same base, as a restart would. */
void reopen_store(void);
/* The same with a tail cache of cache_bytes for all partitions. */
void reopen_store_cache(size_t cache_bytes);

/* Runs sql on admin; fails the test unless it succeeded. */
void sql_ok(const char *sql);
/* The first value of a one-row query on admin, as a number. */
long long sql_num(const char *sql);

/* Runs the loop until *flag is set; fails the test after
 * STORE_FIXTURE_WAIT_MS. */
void run_until(const bool *flag);
/* Runs the loop for about ms milliseconds. */
void run_for(int ms);

/* What a st_done_cb saw: pass on_done with a zeroed struct done. */
struct done {
	bool called;
	int calls;
	enum st_status st;
	char msg[256];
};
void on_done(void *arg, enum st_status s, const char *msg);

/* What a st_append_cb saw: pass on_appended with a zeroed struct. */
struct appended {
	bool called;
	int calls;
	struct st_append_result r;
	char msg[256];
};
void on_appended(void *arg, const struct st_append_result *r);

/* What a st_read_cb saw: pass on_read with a zeroed struct readout.  The
 * bytes read are appended to data, which the caller frees. */
struct readout {
	bool called;
	enum st_status st;
	struct kb_writer data;
};
void on_read(void *arg, enum st_status s, const uint8_t *data, size_t len);

#endif
