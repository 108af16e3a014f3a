/*
 * Producer state that stays bounded, against a real Postgres
 * (tests/support/store_fixture.h): idle producers expire after
 * producer.id.expiration.ms (also when the state is rebuilt at start-up),
 * a transactional id whose epoch runs out moves to a new producer id, and
 * the aborted-transaction index loses what falls below the log start.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <event2/event.h>
#include <libpq-fe.h>

#include "protocol/kbuf.h"
#include "protocol/record_batch.h"
#include "storage/store.h"
#include "storage/topic_config.h"
#include "storage/txn.h"
#include "tests/support/store_fixture.h"

TestSuite(producer_state, .init = store_fixture_setup,
	  .fini = store_fixture_teardown, .timeout = 120);

#define DAY_MS 86400000LL

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct st_partition *
create_partition(const char *name, const struct tc_override *cfg, size_t n)
{
	struct done d = {0};

	st_create_topic(st, kstr_c(name), 1, cfg, n, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "create %s: %s", name, d.msg);
	return st_partition(st_topic_find(st, kstr_c(name)), 0);
}

static struct st_partition *find_partition(const char *name)
{
	struct st_topic *t = st_topic_find(st, kstr_c(name));

	cr_assert_not_null(t);
	return st_partition(t, 0);
}

/* Appends one batch of count records stamped ts and waits for it. */
/* Sends an append of count records at ts, answered into *a later. */
static void append_async(struct st_partition *p, int count, int64_t ts,
			 int16_t attrs, int64_t pid, int16_t epoch, int32_t seq,
			 struct appended *a)
{
	struct rb_new_record r[8];
	struct kb_writer w = {0};
	char err[256] = "";

	cr_assert_leq(count, 8);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < count; i++) {
		r[i].Timestamp = ts;
		r[i].Key = kstr_c("k");
		r[i].Value = kstr_c("value");
	}
	cr_assert_eq(rb_build(&w, 0, attrs, pid, epoch, seq, r, count, err,
			      sizeof(err)),
		     0, "rb_build: %s", err);
	st_append(st, p, w.buf, w.len, on_appended, a);
	kb_writer_free(&w);
}

static struct st_append_result append(struct st_partition *p, int count,
				      int64_t ts, int16_t attrs, int64_t pid,
				      int16_t epoch, int32_t seq)
{
	struct appended a = {0};

	append_async(p, count, ts, attrs, pid, epoch, seq, &a);
	run_until(&a.called);
	a.r.message = NULL;
	return a.r;
}

/* What a st_offset_cb saw (a producer id, a new log start). */
struct id_out {
	bool called;
	enum st_status st;
	int64_t id;
};

static void on_id(void *arg, enum st_status s, int64_t id, int64_t ts)
{
	struct id_out *o = arg;

	(void)ts;
	o->called = true;
	o->st = s;
	o->id = id;
}

static int64_t new_producer_id(void)
{
	struct id_out o = {0};

	st_new_producer_id(st, on_id, &o);
	run_until(&o.called);
	cr_assert_eq(o.st, ST_OK);
	return o.id;
}

/* --- the producers a partition knows ---------------------------------------
 */

struct producers {
	int n;
	int64_t want;
	bool found;
	int16_t epoch;
};

static void count_one(void *arg, const struct st_producer_info *i)
{
	struct producers *c = arg;

	c->n++;
	if (i->producer_id == c->want) {
		c->found = true;
		c->epoch = i->epoch;
	}
}

static struct producers producers(struct st_partition *p, int64_t want)
{
	struct producers c = {.want = want};

	st_producers_each(p, count_one, &c);
	return c;
}

/* --- the coordinator --------------------------------------------------------
 */

struct pid_out {
	bool called;
	enum st_status st;
	int64_t pid;
	int16_t epoch;
};

static void on_pid(void *arg, enum st_status s, int64_t pid, int16_t epoch)
{
	struct pid_out *o = arg;

	o->called = true;
	o->st = s;
	o->pid = pid;
	o->epoch = epoch;
}

static struct pid_out init_producer(const char *id, int64_t pid, int16_t epoch)
{
	struct pid_out o = {0};

	st_txn_init_producer(st, kstr_c(id), 60000, pid, epoch, on_pid, &o);
	run_until(&o.called);
	return o;
}

static void add_partition(const char *id, int64_t pid, int16_t epoch,
			  struct st_partition *p)
{
	struct done d = {0};

	st_txn_add_partitions(st, kstr_c(id), pid, epoch, &p, 1, false, on_done,
			      &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "add partition: %d", d.st);
}

static void end_txn(const char *id, int64_t pid, int16_t epoch, bool commit)
{
	struct done d = {0};

	st_txn_end(st, kstr_c(id), pid, epoch, commit, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "end txn: %d", d.st);
}

/* --- 1. producer.id.expiration.ms --------------------------------------------
 */

Test(producer_state, idle_producers_expire_on_the_timer)
{
	char err[128];

	cr_assert_eq(
		bc_set("producer.id.expiration.ms", "1500", err, sizeof(err)),
		0, "%s", err);
	cr_assert_eq(bc_set("producer.id.expiration.check.interval.ms", "200",
			    err, sizeof(err)),
		     0, "%s", err);
	reopen_store(); /* the timer reads the interval */
	struct st_partition *p = create_partition("expire", NULL, 0);
	int64_t a = new_producer_id(), b = new_producer_id();

	cr_assert_eq(append(p, 3, now_ms(), 0, a, 0, 0).status, ST_OK);
	cr_assert_eq(append(p, 2, now_ms(), 0, b, 0, 0).status, ST_OK);
	/* A producer with a transaction open here is never forgotten. */
	struct pid_out t = init_producer("expire-tx", -1, -1);
	cr_assert_eq(t.st, ST_OK);
	add_partition("expire-tx", t.pid, t.epoch, p);
	cr_assert_eq(
		append(p, 1, now_ms(), RB_ATTR_TRANSACTIONAL, t.pid, t.epoch, 0)
			.status,
		ST_OK);
	cr_assert_eq(producers(p, a).n, 3);

	run_for(2500);
	struct producers c = producers(p, t.pid);
	cr_assert_eq(c.n, 1, "left: %d", c.n);
	cr_assert(c.found, "the producer in a transaction stays");

	/* Kafka takes any sequence from a producer it has no state for. */
	struct st_append_result r = append(p, 1, now_ms(), 0, a, 0, 3);
	cr_assert_eq(r.status, ST_OK, "a: %d", r.status);
	cr_assert_eq(r.base_offset, 6);
	cr_assert_eq(append(p, 1, now_ms(), 0, b, 0, 42).status, ST_OK);
	/* Known again from there on: a retry is a duplicate, a gap is not
	 * taken. */
	r = append(p, 1, now_ms(), 0, a, 0, 3);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, 6, "duplicate answered with its offset");
	cr_assert_eq(append(p, 1, now_ms(), 0, b, 0, 50).status,
		     ST_OUT_OF_ORDER);
	cr_assert_eq(st_high_watermark(p), 8);
	cr_assert_eq(producers(p, a).n, 3);

	/* The transaction ends: then its producer may expire too. */
	end_txn("expire-tx", t.pid, t.epoch, true);
	run_for(2500);
	cr_assert_eq(producers(p, -1).n, 0);
}

Test(producer_state, many_producers_some_expire)
{
	char err[128];

	cr_assert_eq(bc_set("producer.id.expiration.check.interval.ms", "200",
			    err, sizeof(err)),
		     0, "%s", err);
	reopen_store();
	struct st_partition *p = create_partition("many", NULL, 0);
	int64_t ids[120], at[120];
	int64_t old = now_ms() - 2 * DAY_MS;

	/* Every other one wrote two days ago: past the default day.  All
	 * sent at once, so that no expiry check (every 200 ms) runs before
	 * they are all in: one at a time they took longer on a busy machine. */
	static struct appended a[120];
	memset(a, 0, sizeof(a));
	for (int i = 0; i < 120; i++)
		ids[i] = new_producer_id();
	for (int i = 0; i < 120; i++)
		append_async(p, 2, i % 2 ? now_ms() : old, 0, ids[i], 0, 0,
			     &a[i]);
	for (int i = 0; i < 120; i++) {
		run_until(&a[i].called);
		cr_assert_eq(a[i].r.status, ST_OK);
		at[i] = a[i].r.base_offset;
	}
	cr_assert_eq(producers(p, -1).n, 120);
	run_for(1200);
	cr_assert_eq(producers(p, -1).n, 60);
	for (int i = 0; i < 120; i++) {
		cr_assert_eq(producers(p, ids[i]).found, i % 2 == 1, "%d", i);
		if (i % 2 == 0)
			continue;
		/* The survivors kept their batches: a retry is a
		 * duplicate. */
		struct st_append_result r =
			append(p, 2, now_ms(), 0, ids[i], 0, 0);
		cr_assert_eq(r.status, ST_OK);
		cr_assert_eq(r.base_offset, at[i], "%d", i);
	}
	cr_assert_eq(st_high_watermark(p), 240);
}

Test(producer_state, expired_state_not_rebuilt_at_start_up)
{
	struct st_partition *p = create_partition("rebuild", NULL, 0);
	int64_t old = new_producer_id(), fresh = new_producer_id();
	int64_t two_days_ago = now_ms() - 2 * DAY_MS;

	/* Client timestamps count, as Kafka's lastTimestamp does. */
	cr_assert_eq(append(p, 2, two_days_ago, 0, old, 0, 0).status, ST_OK);
	cr_assert_eq(append(p, 2, two_days_ago, 0, old, 0, 2).status, ST_OK);
	cr_assert_eq(append(p, 2, now_ms(), 0, fresh, 0, 0).status, ST_OK);
	/* An open transaction's producer stays whatever its age. */
	struct pid_out t = init_producer("rebuild-tx", -1, -1);
	add_partition("rebuild-tx", t.pid, t.epoch, p);
	cr_assert_eq(append(p, 1, two_days_ago, RB_ATTR_TRANSACTIONAL, t.pid,
			    t.epoch, 0)
			     .status,
		     ST_OK);
	cr_assert_eq(producers(p, old).n, 3);

	reopen_store();
	p = find_partition("rebuild");
	struct producers c = producers(p, old);
	cr_assert_eq(c.n, 2, "rebuilt: %d", c.n);
	cr_assert_not(c.found, "a producer idle for two days is forgotten");
	cr_assert(producers(p, fresh).found);
	cr_assert(producers(p, t.pid).found);
	/* The fresh one's state is intact, the old one starts anew. */
	cr_assert_eq(append(p, 1, now_ms(), 0, fresh, 0, 5).status,
		     ST_OUT_OF_ORDER);
	struct st_append_result r = append(p, 2, now_ms(), 0, fresh, 0, 0);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, 4, "a duplicate of the fresh batch");
	cr_assert_eq(append(p, 1, now_ms(), 0, old, 0, 17).status, ST_OK);
	end_txn("rebuild-tx", t.pid, t.epoch, false);
}

/* --- 2. epoch exhaustion
 * --------------------------------------------------------
 */

Test(producer_state, exhausted_epoch_moves_to_a_new_producer_id)
{
	struct pid_out o = init_producer("ex", -1, -1);
	cr_assert_eq(o.st, ST_OK);
	int64_t first = o.pid;

	sql_ok("UPDATE samsa.transactions SET producer_epoch = 32765 WHERE "
	       "transactional_id = 'ex'");
	reopen_store();
	o = init_producer("ex", -1, -1);
	cr_assert_eq(o.st, ST_OK);
	cr_assert_eq(o.pid, first);
	cr_assert_eq(o.epoch, 32766);
	/* 32766 is exhausted (Kafka keeps 32767 for fencing): next is a new
	 * producer id at epoch 0. */
	o = init_producer("ex", first, 32766);
	cr_assert_eq(o.st, ST_OK, "status %d", o.st);
	cr_assert_neq(o.pid, first);
	cr_assert_eq(o.epoch, 0);
	int64_t second = o.pid;
	char sql[160];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM samsa.transactions WHERE "
		 "transactional_id = 'ex' AND producer_id = %" PRId64
		 " AND producer_epoch = 0",
		 second);
	cr_assert_eq(sql_num(sql), 1, "the new id is saved");
	/* A retry of that call (its answer lost) gets the same. */
	o = init_producer("ex", first, 32766);
	cr_assert_eq(o.st, ST_OK);
	cr_assert_eq(o.pid, second);
	cr_assert_eq(o.epoch, 0);
	/* Then the new id goes on as usual. */
	o = init_producer("ex", second, 0);
	cr_assert_eq(o.st, ST_OK);
	cr_assert_eq(o.pid, second);
	cr_assert_eq(o.epoch, 1);
}

Test(producer_state, exhausted_epoch_with_a_transaction_left_open)
{
	struct st_partition *p = create_partition("exo", NULL, 0);
	struct pid_out o = init_producer("exo", -1, -1);
	int64_t first = o.pid;

	sql_ok("UPDATE samsa.transactions SET producer_epoch = 32765 WHERE "
	       "transactional_id = 'exo'");
	reopen_store();
	p = find_partition("exo");
	o = init_producer("exo", -1, -1);
	cr_assert_eq(o.epoch, 32766);
	add_partition("exo", first, 32766, p);
	cr_assert_eq(
		append(p, 2, now_ms(), RB_ATTR_TRANSACTIONAL, first, 32766, 0)
			.status,
		ST_OK);
	/* A new producer with the id: the open transaction is aborted under
	 * epoch 32767 (fencing), then the id moves to a new producer id. */
	o = init_producer("exo", -1, -1);
	cr_assert_eq(o.st, ST_CONCURRENT);
	for (int i = 0; i < 50 && o.st == ST_CONCURRENT; i++) {
		run_for(100);
		o = init_producer("exo", -1, -1);
	}
	cr_assert_eq(o.st, ST_OK, "status %d", o.st);
	cr_assert_neq(o.pid, first);
	cr_assert_eq(o.epoch, 0);
	/* The aborted transaction no longer holds the LSO; its marker
	 * fenced the old epoch on the partition. */
	cr_assert_eq(st_last_stable(p), st_high_watermark(p));
	cr_assert_eq(st_high_watermark(p), 3);
	cr_assert_eq(
		append(p, 1, now_ms(), RB_ATTR_TRANSACTIONAL, first, 32766, 2)
			.status,
		ST_BAD_EPOCH);
	struct producers c = producers(p, first);
	cr_assert(c.found);
	cr_assert_eq(c.epoch, 32767);
}

/* KIP-360: a producer bumps its own epoch with a transaction open; told
 * to retry while that transaction is aborted, it retries with the epoch it
 * had and gets the new one, not PRODUCER_FENCED. */
Test(producer_state, epoch_bump_retried_while_its_transaction_aborts)
{
	struct st_partition *p = create_partition("bump", NULL, 0);
	struct pid_out o = init_producer("bump", -1, -1);
	int64_t pid = o.pid;
	int16_t e0 = o.epoch;

	add_partition("bump", pid, e0, p);
	cr_assert_eq(append(p, 2, now_ms(), RB_ATTR_TRANSACTIONAL, pid, e0, 0)
			     .status,
		     ST_OK);
	o = init_producer("bump", pid, e0);
	cr_assert_eq(o.st, ST_CONCURRENT);
	for (int i = 0; i < 50 && o.st == ST_CONCURRENT; i++) {
		run_for(100);
		o = init_producer("bump", pid, e0);
	}
	cr_assert_eq(o.st, ST_OK, "status %d", o.st);
	cr_assert_eq(o.pid, pid);
	cr_assert_eq(o.epoch, e0 + 1);
	cr_assert_eq(st_last_stable(p), st_high_watermark(p));
	/* Answered again the same, then the epoch goes on as usual. */
	o = init_producer("bump", pid, e0);
	cr_assert_eq(o.epoch, e0 + 1);
	o = init_producer("bump", pid, e0 + 1);
	cr_assert_eq(o.st, ST_OK);
	cr_assert_eq(o.epoch, e0 + 2);
	/* An older epoch still is fenced. */
	cr_assert_eq(init_producer("bump", pid, e0).st, ST_FENCED);
}

/* --- 3. the aborted-transaction index ----------------------------------------
 */

struct aborted {
	int n;
	int64_t first[8];
};

static void aborted_one(void *arg, int64_t pid, int64_t first)
{
	struct aborted *a = arg;

	(void)pid;
	if (a->n < 8)
		a->first[a->n] = first;
	a->n++;
}

static struct aborted aborted_from(struct st_partition *p, int64_t from)
{
	struct aborted a = {0};

	st_aborted_txns(p, from, INT64_MAX, aborted_one, &a);
	return a;
}

/* One transaction of count records on p, aborted: count + 1 offsets. */
static void aborted_txn(const char *id, struct st_partition *p, int count)
{
	struct pid_out o = init_producer(id, -1, -1);

	cr_assert_eq(o.st, ST_OK);
	add_partition(id, o.pid, o.epoch, p);
	cr_assert_eq(append(p, count, now_ms(), RB_ATTR_TRANSACTIONAL, o.pid,
			    o.epoch, 0)
			     .status,
		     ST_OK);
	end_txn(id, o.pid, o.epoch, false);
}

static long long aborted_rows(void)
{
	return sql_num("SELECT count(*) FROM samsa.txn_aborted");
}

Test(producer_state, aborted_index_trimmed_by_delete_records)
{
	struct st_partition *p = create_partition("abi", NULL, 0);

	aborted_txn("abi-1", p, 3); /* 0-2, marker 3 */
	aborted_txn("abi-2", p, 2); /* 4-5, marker 6 */
	cr_assert_eq(append(p, 1, now_ms(), 0, -1, -1, -1).status, ST_OK);
	cr_assert_eq(st_high_watermark(p), 8);
	cr_assert_eq(aborted_from(p, 0).n, 2);
	cr_assert_eq(aborted_rows(), 2);

	struct id_out d = {0};
	st_delete_records(st, p, 5, on_id, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	cr_assert_eq(st_log_start(p), 5);
	/* The first ended at 3, below the log start: gone.  The second
	 * still covers offset 5, which a read_committed fetch from 5 must
	 * be told about. */
	struct aborted a = aborted_from(p, 0);
	cr_assert_eq(a.n, 1);
	cr_assert_eq(a.first[0], 4);
	a = aborted_from(p, 5);
	cr_assert_eq(a.n, 1);
	cr_assert_eq(a.first[0], 4);
	cr_assert_eq(aborted_rows(), 1);

	reopen_store();
	p = find_partition("abi");
	cr_assert_eq(aborted_from(p, 0).n, 1);

	memset(&d, 0, sizeof(d));
	st_delete_records(st, p, 7, on_id, &d);
	run_until(&d.called);
	cr_assert_eq(aborted_from(p, 0).n, 0);
	cr_assert_eq(aborted_rows(), 0);
}

Test(producer_state, aborted_index_trimmed_by_retention)
{
	const struct tc_override cfg[] = {{"retention.bytes", "1"}};
	struct st_partition *p = create_partition("abr", cfg, 1);

	aborted_txn("abr-1", p, 2); /* 0-1, marker 2 */
	cr_assert_eq(aborted_rows(), 1);
	cr_assert_eq(append(p, 1, now_ms(), 0, -1, -1, -1).status, ST_OK);
	st_enforce_retention(st);
	for (int i = 0; i < 100 && st_log_start(p) < 3; i++)
		run_for(50);
	/* retention.bytes 1 keeps the newest batch only (Kafka keeps at
	 * least retention.bytes): the aborted transaction below it goes. */
	cr_assert_eq(st_log_start(p), 3);
	cr_assert_eq(aborted_from(p, 0).n, 0);
	cr_assert_eq(aborted_rows(), 0);
	/* A transaction aborted after that is indexed as before. */
	aborted_txn("abr-2", p, 1); /* 4, marker 5 */
	struct aborted a = aborted_from(p, 4);
	cr_assert_eq(a.n, 1);
	cr_assert_eq(a.first[0], 4);
	cr_assert_eq(aborted_rows(), 1);
}

Test(producer_state, aborted_index_of_a_deleted_topic_goes_at_start_up)
{
	struct st_partition *p = create_partition("abd", NULL, 0);

	aborted_txn("abd-1", p, 1);
	cr_assert_eq(aborted_rows(), 1);
	struct done d = {0};
	st_delete_topic(st, st_topic_find(st, kstr_c("abd")), on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	reopen_store();
	cr_assert_eq(aborted_rows(), 0);
}
