/*
 * store end to end against a real Postgres: SAMSA_TEST_PG holds its
 * conninfo.  The store keeps everything in the fixed schema samsa of that
 * database, so every test starts by dropping it: the tests of this binary
 * must run one at a time, which tests/run.sh does (--jobs 1).  Each test has
 * its own event_base and store; asynchronous calls are driven by running
 * the loop until their callback has run, with a deadline so that a bug fails
 * the test instead of hanging it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "protocol/crc32c.h"
#include "protocol/kbuf.h"
#include "protocol/record_batch.h"
#include "storage/store.h"
#include "storage/topic_config.h"
#include "tests/support/store_fixture.h"

TestSuite(store, .init = store_fixture_setup, .fini = store_fixture_teardown,
	  .timeout = 120);

struct offset_out {
	bool called;
	enum st_status st;
	int64_t offset, ts;
};

static void on_offset(void *arg, enum st_status s, int64_t offset, int64_t ts)
{
	struct offset_out *o = arg;

	o->called = true;
	o->st = s;
	o->offset = offset;
	o->ts = ts;
}

/* --- helpers ----------------------------------------------------------------
 */

static struct st_topic *find_topic(const char *name)
{
	return st_topic_find(st, kstr_c(name));
}

static struct st_topic *create_topic(const char *name, int32_t parts,
				     const struct tc_override *cfg, size_t n)
{
	struct done d = {0};

	st_create_topic(st, kstr_c(name), parts, cfg, n, on_done, &d);
	cr_assert_not(d.called, "callback before return");
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "create %s: %d %s", name, d.st, d.msg);
	cr_assert_eq(d.calls, 1);
	struct st_topic *t = find_topic(name);
	cr_assert_not_null(t);
	return t;
}

static void set_configs(struct st_topic *t, const struct tc_override *cfg,
			size_t n)
{
	struct done d = {0};

	st_set_configs(st, t, true, cfg, n, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "set configs: %s", d.msg);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Appends to w one batch of count records with timestamps ts, ts+1 ... (or
 * ts_each[i] when given), keyed "k<i>" unless keyless, values of vlen bytes.
 */
static void build(struct kb_writer *w, int count, int64_t ts,
		  const int64_t *ts_each, bool keys, size_t vlen, int64_t pid,
		  int16_t epoch, int32_t seq)
{
	struct rb_new_record r[16];
	char keybuf[16][8];
	static char value[4096];
	char err[256] = "";

	cr_assert_leq(count, 16);
	cr_assert_leq(vlen, sizeof(value));
	memset(value, 'v', vlen);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < count; i++) {
		snprintf(keybuf[i], sizeof(keybuf[i]), "k%d", i);
		r[i].Timestamp = ts_each ? ts_each[i] : ts + i;
		r[i].Key = keys ? kstr_c(keybuf[i]) : KSTR_NULL;
		r[i].Value = (struct kstr){value, (int32_t)vlen};
	}
	cr_assert_eq(
		rb_build(w, 0, 0, pid, epoch, seq, r, count, err, sizeof(err)),
		0, "rb_build: %s", err);
}

/* Appends the bytes and waits for the outcome. */
static struct st_append_result append_raw(struct st_partition *p,
					  const struct kb_writer *w)
{
	struct appended a = {0};

	st_append(st, p, w->buf, w->len, on_appended, &a);
	cr_assert_not(a.called, "callback before return");
	run_until(&a.called);
	cr_assert_eq(a.calls, 1);
	a.r.message = NULL; /* valid during the callback only */
	return a.r;
}

/* Builds one batch of count records and appends it; returns its offset. */
static int64_t append_ok(struct st_partition *p, int count, int64_t ts)
{
	struct kb_writer w = {0};

	build(&w, count, ts, NULL, true, 10, -1, -1, -1);
	struct st_append_result r = append_raw(p, &w);
	kb_writer_free(&w);
	cr_assert_eq(r.status, ST_OK, "append: status %d", r.status);
	return r.base_offset;
}

static struct st_append_result append_idem(struct st_partition *p, int count,
					   int64_t pid, int16_t epoch,
					   int32_t seq)
{
	struct kb_writer w = {0};

	build(&w, count, now_ms(), NULL, true, 10, pid, epoch, seq);
	struct st_append_result r = append_raw(p, &w);
	kb_writer_free(&w);
	return r;
}

/* Reads from Postgres into r (caller frees r->data). */
static void read_pg(struct st_partition *p, int64_t offset, int32_t max,
		    struct readout *r)
{
	memset(r, 0, sizeof(*r));
	st_read(st, p, offset, max, on_read, r);
	cr_assert_not(r->called, "callback before return");
	run_until(&r->called);
	cr_assert_eq(r->st, ST_OK);
}

/* Base offsets of the batches in buf, in order; returns their number. */
static int batch_offsets(const uint8_t *buf, size_t len, int64_t *out, int max)
{
	int n = 0;
	size_t pos = 0;
	char err[256];

	while (pos < len) {
		struct rb_header h;
		cr_assert_eq(rb_read_header(buf + pos, len - pos, &h), 0);
		size_t size = RB_LOG_OVERHEAD + (size_t)h.BatchLength;
		cr_assert_leq(pos + size, len, "partial batch");
		cr_assert_eq(rb_check(buf + pos, size, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_lt(n, max);
		out[n++] = h.BaseOffset;
		pos += size;
	}
	return n;
}

static struct offset_out offset_for_time(struct st_partition *p, int64_t ts)
{
	struct offset_out o = {0};

	st_offset_for_time(st, p, ts, on_offset, &o);
	cr_assert_not(o.called);
	run_until(&o.called);
	cr_assert_eq(o.st, ST_OK, "st_offset_for_time: status %d", o.st);
	return o;
}

static struct offset_out offset_max_time(struct st_partition *p)
{
	struct offset_out o = {0};

	st_offset_max_time(st, p, on_offset, &o);
	cr_assert_not(o.called);
	run_until(&o.called);
	cr_assert_eq(o.st, ST_OK, "st_offset_max_time: status %d", o.st);
	return o;
}

static struct offset_out delete_records(struct st_partition *p, int64_t off)
{
	struct offset_out o = {0};

	st_delete_records(st, p, off, on_offset, &o);
	cr_assert_not(o.called);
	run_until(&o.called);
	cr_assert_eq(o.st, ST_OK);
	return o;
}

static int64_t new_producer_id(void)
{
	struct offset_out o = {0};

	st_new_producer_id(st, on_offset, &o);
	run_until(&o.called);
	cr_assert_eq(o.st, ST_OK);
	cr_assert_geq(o.offset, 0);
	return o.offset;
}

static long long log_rows(const struct st_topic *t, int32_t part)
{
	char sql[160];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d AND "
		 "partition = %d",
		 t->tid, part);
	return sql_num(sql);
}

/* --- catalog ---------------------------------------------------------------
 */

Test(store, open_migrates_empty_database)
{
	const char *id = store_cluster_id(st);
	char first[64];

	cr_assert_eq(strlen(id), 22, "cluster id '%s'", id);
	for (const char *c = id; *c; c++)
		cr_assert(
			strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstu"
			       "vwxyz0123456789-_",
			       *c),
			"cluster id '%s' is not url-safe base64", id);
	cr_assert_eq(st_topic_count(st), 0);
	cr_assert_geq(sql_num("SELECT value::int FROM samsa.meta WHERE key = "
			      "'schema_version'"),
		      1);
	/* The id is kept across restarts; migrating again is a no-op. */
	snprintf(first, sizeof(first), "%s", id);
	reopen_store();
	cr_assert_str_eq(store_cluster_id(st), first);
}

Test(store, create_topic_and_reopen)
{
	const struct tc_override cfg[] = {
		{"retention.ms", "1000"},
		{"cleanup.policy", "compact,delete"},
	};
	struct st_topic *t = create_topic("orders", 3, cfg, 2);
	struct kuuid id = t->id;
	static const uint8_t zero[16];

	cr_assert_str_eq(t->name, "orders");
	cr_assert_eq(t->npartitions, 3);
	cr_assert_neq(memcmp(id.b, zero, 16), 0, "no topic id");
	cr_assert_eq(t->nconfigs, 2);
	cr_assert_eq(t->cfg.retention_ms, 1000);
	cr_assert(t->cfg.compact);
	cr_assert(t->cfg.delete_policy);
	cr_assert_not(t->internal);
	for (int32_t i = 0; i < 3; i++) {
		struct st_partition *p = st_partition(t, i);
		cr_assert_not_null(p);
		cr_assert_eq(st_partition_index(p), i);
		cr_assert_eq(st_partition_topic(p), t);
		cr_assert_eq(st_high_watermark(p), 0);
		cr_assert_eq(st_log_start(p), 0);
	}
	cr_assert_null(st_partition(t, 3));
	cr_assert_null(st_partition(t, -1));
	cr_assert_eq(st_topic_find_id(st, &id), t);

	/* Taken, also while in flight. */
	struct done d0 = {0}, d1 = {0}, d2 = {0};
	st_create_topic(st, kstr_c("orders"), 1, NULL, 0, on_done, &d0);
	cr_assert_not(d0.called);
	run_until(&d0.called);
	cr_assert_eq(d0.st, ST_EXISTS);
	st_create_topic(st, kstr_c("new"), 1, NULL, 0, on_done, &d1);
	st_create_topic(st, kstr_c("new"), 1, NULL, 0, on_done, &d2);
	run_until(&d2.called);
	run_until(&d1.called);
	cr_assert_eq(d1.st + d2.st, ST_OK + ST_EXISTS, "%d %d", d1.st, d2.st);

	/* Topics come in name order. */
	create_topic("alpha", 1, NULL, 0);
	cr_assert_eq(st_topic_count(st), 3);
	cr_assert_str_eq(st_topic_at(st, 0)->name, "alpha");
	cr_assert_str_eq(st_topic_at(st, 1)->name, "new");
	cr_assert_str_eq(st_topic_at(st, 2)->name, "orders");
	cr_assert_null(st_topic_at(st, 3));

	reopen_store();
	t = find_topic("orders");
	cr_assert_not_null(t);
	cr_assert_eq(memcmp(t->id.b, id.b, 16), 0);
	cr_assert_eq(t->npartitions, 3);
	cr_assert_eq(t->nconfigs, 2);
	cr_assert_eq(t->cfg.retention_ms, 1000);
	cr_assert(t->cfg.compact);
	cr_assert_eq(st_topic_count(st), 3);
	cr_assert_null(find_topic("order"));
	cr_assert_null(find_topic("orders2"));
}

Test(store, create_partitions)
{
	struct st_topic *t = create_topic("grow", 1, NULL, 0);
	struct done d = {0};

	st_create_partitions(st, t, 4, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "%s", d.msg);
	cr_assert_eq(t->npartitions, 4);
	append_ok(st_partition(t, 3), 2, now_ms());
	reopen_store();
	t = find_topic("grow");
	cr_assert_eq(t->npartitions, 4);
	cr_assert_eq(st_high_watermark(st_partition(t, 3)), 2);
}

/* --- appends and reads ------------------------------------------------------
 */

Test(store, append_then_read_cached_and_postgres)
{
	struct st_topic *t = create_topic("log", 2, NULL, 0);
	struct st_partition *p = st_partition(t, 1);
	int64_t ts = now_ms();
	struct kb_writer sent = {0};

	/* Three batches of 2, 3 and 1 records, one call each. */
	cr_assert_eq(append_ok(p, 2, ts), 0);
	cr_assert_eq(append_ok(p, 3, ts), 2);
	cr_assert_eq(append_ok(p, 1, ts), 5);
	cr_assert_eq(st_high_watermark(p), 6);
	/* Two batches in one call: the first one's offset. */
	build(&sent, 2, ts, NULL, true, 10, -1, -1, -1);
	size_t first_len = sent.len;
	build(&sent, 4, ts, NULL, true, 10, -1, -1, -1);
	struct st_append_result r = append_raw(p, &sent);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, 6);
	cr_assert_eq(r.log_append_time, -1);
	cr_assert_eq(r.log_start_offset, 0);
	cr_assert_eq(st_high_watermark(p), 12);
	cr_assert_eq(st_high_watermark(st_partition(t, 0)), 0);
	cr_assert_eq(log_rows(t, 1), 5);

	/* Everything, from the cache and from Postgres: the same bytes. */
	struct kb_writer c = {0};
	long n = st_read_cached(p, 0, 1 << 20, &c);
	cr_assert_gt(n, 0);
	cr_assert_eq((size_t)n, c.len);
	int64_t offs[16];
	int nb = batch_offsets(c.buf, c.len, offs, 16);
	cr_assert_eq(nb, 5);
	cr_assert_eq(offs[0], 0);
	cr_assert_eq(offs[1], 2);
	cr_assert_eq(offs[2], 5);
	cr_assert_eq(offs[3], 6);
	cr_assert_eq(offs[4], 8);
	struct readout pg;
	read_pg(p, 0, 1 << 20, &pg);
	cr_assert_eq(pg.data.len, c.len);
	cr_assert_eq(memcmp(pg.data.buf, c.buf, c.len), 0,
		     "Postgres and the cache differ");
	/* The stored batch is the sent one with its offset filled in: the
	 * CRC-covered part is untouched. */
	size_t tail = c.len - (sent.len - first_len);
	cr_assert_eq(memcmp(c.buf + tail + RB_CRC_OFFSET,
			    sent.buf + first_len + RB_CRC_OFFSET,
			    sent.len - first_len - RB_CRC_OFFSET),
		     0);
	kb_writer_free(&pg.data);

	/* max_bytes of 1: the first batch only, whole. */
	c.len = 0;
	n = st_read_cached(p, 0, 1, &c);
	cr_assert_eq(batch_offsets(c.buf, c.len, offs, 16), 1);
	cr_assert_eq(offs[0], 0);
	read_pg(p, 0, 1, &pg);
	cr_assert_eq(pg.data.len, c.len);
	cr_assert_eq(memcmp(pg.data.buf, c.buf, c.len), 0);
	kb_writer_free(&pg.data);

	/* An offset inside a batch gives that batch first. */
	c.len = 0;
	n = st_read_cached(p, 3, 1 << 20, &c);
	nb = batch_offsets(c.buf, c.len, offs, 16);
	cr_assert_eq(nb, 4);
	cr_assert_eq(offs[0], 2);
	read_pg(p, 3, 1 << 20, &pg);
	cr_assert_eq(pg.data.len, c.len);
	cr_assert_eq(memcmp(pg.data.buf, c.buf, c.len), 0);
	kb_writer_free(&pg.data);

	/* The last offset of the log: its batch. */
	c.len = 0;
	st_read_cached(p, 11, 1 << 20, &c);
	nb = batch_offsets(c.buf, c.len, offs, 16);
	cr_assert_eq(nb, 1);
	cr_assert_eq(offs[0], 8);
	read_pg(p, 11, 1 << 20, &pg);
	cr_assert_eq(pg.data.len, c.len);
	kb_writer_free(&pg.data);

	/* Two batches fit, the third would not. */
	c.len = 0;
	size_t two = 0;
	{
		struct rb_header h0, h1;
		struct kb_writer all = {0};
		st_read_cached(p, 0, 1 << 20, &all);
		rb_read_header(all.buf, all.len, &h0);
		two = RB_LOG_OVERHEAD + (size_t)h0.BatchLength;
		rb_read_header(all.buf + two, all.len - two, &h1);
		two += RB_LOG_OVERHEAD + (size_t)h1.BatchLength;
		kb_writer_free(&all);
	}
	st_read_cached(p, 0, (int32_t)two + 1, &c);
	cr_assert_eq(c.len, two);
	read_pg(p, 0, (int32_t)two + 1, &pg);
	cr_assert_eq(pg.data.len, two,
		     "max_bytes %zu: Postgres gave %zu bytes, the cache %zu",
		     two + 1, pg.data.len, c.len);
	kb_writer_free(&pg.data);

	/* At the end: nothing. */
	c.len = 0;
	cr_assert_eq(st_read_cached(p, 12, 1 << 20, &c), 0);
	read_pg(p, 12, 1 << 20, &pg);
	cr_assert_eq(pg.data.len, 0);
	kb_writer_free(&pg.data);
	kb_writer_free(&c);
	kb_writer_free(&sent);
}

Test(store, bad_batches_refused)
{
	struct st_topic *t = create_topic("bad", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	struct kb_writer w = {0};

	build(&w, 2, now_ms(), NULL, true, 10, -1, -1, -1);
	w.buf[w.len - 1] ^= 1; /* CRC no longer matches */
	struct st_append_result r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_CORRUPT);
	w.len -= 3; /* partial batch */
	r = append_raw(p, &w);
	cr_assert_neq(r.status, ST_OK);
	w.len = 0;
	r = append_raw(p, &w); /* nothing at all */
	cr_assert_neq(r.status, ST_OK);

	/* A batch of no records claims no offset: Kafka refuses it, and
	 * storing it broke the partition's numbering. */
	char err[128];
	cr_assert_eq(rb_build(&w, 0, 0, -1, -1, -1, NULL, 0, err, sizeof(err)),
		     0, "%s", err);
	r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_INVALID); /* INVALID_RECORD: not retried */

	/* Records that do not parse, under a CRC that matches: two records
	 * claimed as three.  A consumer could not read past it. */
	w.len = 0;
	build(&w, 2, now_ms(), NULL, true, 10, -1, -1, -1);
	w.buf[26] = 2; /* LastOffsetDelta 2 */
	w.buf[60] = 3; /* RecordCount 3 */
	uint32_t crc = crc32c(0, w.buf + 21, w.len - 21);
	for (int i = 0; i < 4; i++)
		w.buf[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
	cr_assert_eq(rb_check(w.buf, w.len, err, sizeof(err)), 0, "%s", err);
	r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_INVALID);

	cr_assert_eq(st_high_watermark(p), 0);
	cr_assert_eq(log_rows(t, 0), 0);
	cr_assert_eq(append_ok(p, 1, now_ms()), 0, "the partition still takes");
	kb_writer_free(&w);
}

Test(store, watermark_and_log_start_survive_reopen)
{
	struct st_topic *t = create_topic("keep", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t ts = now_ms();

	append_ok(p, 2, ts);
	append_ok(p, 3, ts);
	append_ok(p, 4, ts);
	cr_assert_eq(delete_records(p, 2).offset, 2);
	reopen_store();
	t = find_topic("keep");
	p = st_partition(t, 0);
	cr_assert_eq(st_high_watermark(p), 9);
	cr_assert_eq(st_log_start(p), 2);
	/* The cache starts empty; Postgres serves. */
	struct kb_writer c = {0};
	cr_assert_eq(st_read_cached(p, 2, 1 << 20, &c), -1);
	kb_writer_free(&c);
	struct readout pg;
	int64_t offs[8];
	read_pg(p, 2, 1 << 20, &pg);
	cr_assert_eq(batch_offsets(pg.data.buf, pg.data.len, offs, 8), 2);
	cr_assert_eq(offs[0], 2);
	cr_assert_eq(offs[1], 5);
	kb_writer_free(&pg.data);
	/* Appends continue after the watermark. */
	cr_assert_eq(append_ok(p, 1, ts), 9);
}

/* The first offset of p in the tail cache (its high watermark when none)
 * and, in *bytes, what the cache holds from there. */
static int64_t first_cached(struct st_partition *p, long *bytes)
{
	int64_t o = 0;
	*bytes = 0;
	for (; o < st_high_watermark(p); o++) {
		struct kb_writer c = {0};
		*bytes = st_read_cached(p, o, INT32_MAX, &c);
		kb_writer_free(&c);
		if (*bytes >= 0)
			break;
	}
	return o;
}

/* The cache keeps the batches appended last within its size: the
 * partition that appended least recently gives way first, down to its
 * newest batch. */
Test(store, cache_keeps_what_was_appended_last)
{
	reopen_store_cache(8192);
	struct st_partition *a = st_partition(create_topic("a", 1, NULL, 0), 0);
	struct st_partition *b = st_partition(create_topic("b", 1, NULL, 0), 0);
	int64_t ts = now_ms();
	long a_bytes, b_bytes;

	for (int i = 0; i < 200; i++)
		append_ok(a, 1, ts);
	int64_t a_first = first_cached(a, &a_bytes);
	cr_assert(a_first > 0 && a_first < 150, "a alone fills it: %" PRId64,
		  a_first);
	cr_assert(a_bytes <= 8192 && a_bytes > 8192 - 200, "%ld", a_bytes);
	for (int i = 0; i < 200; i++)
		append_ok(b, 1, ts);
	cr_assert_eq(first_cached(a, &a_bytes), 199, "a keeps its newest");
	int64_t b_first = first_cached(b, &b_bytes);
	cr_assert_lt(b_first, a_first + 10);
	cr_assert(a_bytes + b_bytes <= 8192 && a_bytes + b_bytes > 8192 - 200,
		  "%ld + %ld bytes", a_bytes, b_bytes);
	/* Now b appended least recently: it gives way to a. */
	for (int i = 0; i < 50; i++)
		append_ok(a, 1, ts);
	cr_assert_eq(first_cached(a, &a_bytes), 199);
	cr_assert_eq(first_cached(b, &b_bytes), b_first + 50);
	cr_assert(a_bytes + b_bytes <= 8192, "%ld + %ld", a_bytes, b_bytes);
}

/* Counts its wake-ups. */
static void on_wake(void *arg)
{
	*(int *)arg += 1;
}

/* A consumer past the middle of the read-ahead: the next batches are read
 * in the background and its later fetches find them in memory. */
Test(store, read_ahead_reads_on_in_the_background)
{
	struct st_topic *t = create_topic("ahead", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t ts = now_ms();

	for (int i = 0; i < 600; i++)
		append_ok(p, 1, ts);
	reopen_store();
	p = st_partition(find_topic("ahead"), 0);
	struct readout pg;
	read_pg(p, 0, 1 << 20, &pg); /* one read: about 257 batches */
	kb_writer_free(&pg.data);
	struct kb_writer c = {0};
	cr_assert_gt(st_read_cached(p, 200, 1 << 20, &c), 0);
	cr_assert_eq(st_read_cached(p, 300, 1 << 20, &c), -1);
	st_read_ahead(st, p, 200);
	/* A fetch past it waits for the read in flight, not a second one. */
	cr_assert(st_read_ahead_brings(p, 300));
	cr_assert_not(st_read_ahead_brings(p, 100));
	int landed = 0;
	struct st_waiter w = {.fn = on_wake, .arg = &landed};
	st_wait_read_ahead(p, &w);
	for (int i = 0; i < 100 && !landed; i++)
		run_for(50);
	cr_assert_eq(landed, 1, "waiters are told when the read-ahead lands");
	cr_assert_not(st_read_ahead_brings(p, 300));
	kb_writer_free(&c);
	c = (struct kb_writer){0};
	cr_assert_gt(st_read_cached(p, 300, 100, &c), 0);
	int64_t offs[1];
	cr_assert_eq(batch_offsets(c.buf, c.len, offs, 1), 1);
	cr_assert_eq(offs[0], 300);
	/* What the consumer had passed is let go; the rest stays. */
	cr_assert_eq(st_read_cached(p, 50, 100, &c), -1);
	cr_assert_gt(st_read_cached(p, 150, 100, &c), 0);
	kb_writer_free(&c);
}

/* --- idempotent producer -----------------------------------------------------
 */

Test(store, idempotent_duplicates)
{
	struct st_topic *t = create_topic("idem", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t pid = new_producer_id();
	int64_t first[6];
	int32_t seq = 0;

	cr_assert_neq(new_producer_id(), pid, "ids are unique");
	for (int i = 0; i < 6; i++) {
		struct st_append_result r = append_idem(p, 2, pid, 0, seq);
		cr_assert_eq(r.status, ST_OK, "batch %d: %d", i, r.status);
		first[i] = r.base_offset;
		cr_assert_eq(first[i], 2 * i);
		seq += 2;
	}
	cr_assert_eq(st_high_watermark(p), 12);
	cr_assert_eq(log_rows(t, 0), 6);

	/* Retries of each of the last five: their offsets, nothing stored. */
	for (int i = 1; i < 6; i++) {
		struct st_append_result r = append_idem(p, 2, pid, 0, 2 * i);
		cr_assert_eq(r.status, ST_OK, "dup %d: %d", i, r.status);
		cr_assert_eq(r.base_offset, first[i], "dup %d", i);
	}
	cr_assert_eq(st_high_watermark(p), 12);
	cr_assert_eq(log_rows(t, 0), 6);

	/* The first is too old to be known: out of order. */
	struct st_append_result r = append_idem(p, 2, pid, 0, 0);
	cr_assert_eq(r.status, ST_OUT_OF_ORDER);

	/* The producer state is rebuilt from Postgres on restart. */
	reopen_store();
	p = st_partition(find_topic("idem"), 0);
	r = append_idem(p, 2, pid, 0, 8);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, first[4]);
	r = append_idem(p, 2, pid, 0, seq);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, 12);
	t = find_topic("idem");
	cr_assert_eq(log_rows(t, 0), 7);
}

Test(store, idempotent_retry_of_a_batch_not_yet_committed)
{
	struct st_topic *t = create_topic("inflight", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t pid = new_producer_id();
	struct kb_writer w = {0};
	struct appended first = {0}, retry = {0};

	/* The retry arrives before the first's flush commits: it is not
	 * acknowledged (the first may yet fail), but told to retry. */
	build(&w, 2, now_ms(), NULL, true, 10, pid, 0, 0);
	st_append(st, p, w.buf, w.len, on_appended, &first);
	st_append(st, p, w.buf, w.len, on_appended, &retry);
	run_until(&retry.called);
	cr_assert_eq(retry.r.status, ST_UNAVAILABLE);
	run_until(&first.called);
	cr_assert_eq(first.r.status, ST_OK);
	/* Once committed, a retry gets the first's offset. */
	struct st_append_result r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_OK);
	cr_assert_eq(r.base_offset, 0);
	cr_assert_eq(log_rows(t, 0), 1);
	kb_writer_free(&w);
}

Test(store, idempotent_out_of_order_and_stale_epoch)
{
	struct st_topic *t = create_topic("fence", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t pid = new_producer_id();
	struct st_append_result r;

	cr_assert_eq(append_idem(p, 3, pid, 0, 0).status, ST_OK);
	/* A gap. */
	r = append_idem(p, 1, pid, 0, 10);
	cr_assert_eq(r.status, ST_OUT_OF_ORDER);
	cr_assert_eq(r.base_offset, -1);
	/* Overlapping but not a duplicate. */
	cr_assert_eq(append_idem(p, 1, pid, 0, 1).status, ST_OUT_OF_ORDER);
	cr_assert_eq(append_idem(p, 1, pid, 0, 3).status, ST_OK);
	/* A new epoch must start at 0. */
	cr_assert_eq(append_idem(p, 1, pid, 1, 4).status, ST_OUT_OF_ORDER);
	cr_assert_eq(append_idem(p, 1, pid, 1, 0).status, ST_OK);
	/* The old epoch is fenced. */
	r = append_idem(p, 1, pid, 0, 4);
	cr_assert_eq(r.status, ST_BAD_EPOCH);
	cr_assert_eq(st_high_watermark(p), 5);
	cr_assert_eq(log_rows(t, 0), 3);
	/* Another producer is independent. */
	int64_t other = new_producer_id();
	cr_assert_eq(append_idem(p, 1, other, 0, 0).status, ST_OK);
}

/* --- limits
 * -------------------------------------------------------------------- */

Test(store, max_message_bytes)
{
	const struct tc_override cfg[] = {{"max.message.bytes", "200"}};
	struct st_topic *t = create_topic("small", 1, cfg, 1);
	struct st_partition *p = st_partition(t, 0);
	struct kb_writer w = {0};

	cr_assert_eq(t->cfg.max_message_bytes, 200);
	build(&w, 1, now_ms(), NULL, true, 300, -1, -1, -1);
	struct st_append_result r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_TOO_LARGE);
	cr_assert_eq(st_high_watermark(p), 0);
	cr_assert_eq(log_rows(t, 0), 0);
	/* A small one passes. */
	cr_assert_eq(append_ok(p, 1, now_ms()), 0);
	/* One bad batch among good ones refuses the whole call. */
	w.len = 0;
	build(&w, 1, now_ms(), NULL, true, 10, -1, -1, -1);
	build(&w, 1, now_ms(), NULL, true, 300, -1, -1, -1);
	r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_TOO_LARGE);
	cr_assert_eq(st_high_watermark(p), 1);
	kb_writer_free(&w);
}

Test(store, compacted_topic_needs_keys)
{
	const struct tc_override cfg[] = {{"cleanup.policy", "compact"}};
	struct st_topic *t = create_topic("table", 1, cfg, 1);
	struct st_partition *p = st_partition(t, 0);
	struct kb_writer w = {0};

	build(&w, 2, now_ms(), NULL, false, 10, -1, -1, -1);
	struct st_append_result r = append_raw(p, &w);
	cr_assert_eq(r.status, ST_NO_KEY);
	cr_assert_eq(st_high_watermark(p), 0);
	cr_assert_eq(append_ok(p, 2, now_ms()), 0);
	kb_writer_free(&w);

	/* Keyless is fine on a delete topic. */
	struct st_topic *d = create_topic("stream", 1, NULL, 0);
	w = (struct kb_writer){0};
	build(&w, 2, now_ms(), NULL, false, 10, -1, -1, -1);
	cr_assert_eq(append_raw(st_partition(d, 0), &w).status, ST_OK);
	kb_writer_free(&w);
}

/* --- delete records, offsets by time
 * --------------------------------------------- */

Test(store, delete_records_moves_log_start)
{
	struct st_topic *t = create_topic("trim", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t ts = now_ms();

	append_ok(p, 2, ts); /* 0-1 */
	append_ok(p, 3, ts); /* 2-4 */
	append_ok(p, 1, ts); /* 5 */
	struct offset_out o = delete_records(p, 3);
	cr_assert_eq(o.offset, 3);
	cr_assert_eq(st_log_start(p), 3);
	cr_assert_eq(st_high_watermark(p), 6);
	/* The batch wholly below is gone; the one holding 3 stays. */
	cr_assert_eq(log_rows(t, 0), 2);
	cr_assert_eq(sql_num("SELECT log_start_offset FROM samsa.partitions "
			     "WHERE partition = 0"),
		     3);
	/* Offsets below the log start are not in the cache any more (the
	 * caller answers OFFSET_OUT_OF_RANGE against st_log_start). */
	struct kb_writer c = {0};
	cr_assert_eq(st_read_cached(p, 0, 1 << 20, &c), -1);
	cr_assert_gt(st_read_cached(p, 3, 1 << 20, &c), 0);
	int64_t offs[4];
	cr_assert_eq(batch_offsets(c.buf, c.len, offs, 4), 2);
	cr_assert_eq(offs[0], 2);
	kb_writer_free(&c);
	/* It never moves back. */
	cr_assert_eq(delete_records(p, 1).offset, 3);
	cr_assert_eq(st_log_start(p), 3);
	/* -1 and beyond the watermark mean the watermark. */
	cr_assert_eq(delete_records(p, -1).offset, 6);
	cr_assert_eq(st_log_start(p), 6);
	cr_assert_eq(delete_records(p, 100).offset, 6);
	cr_assert_eq(log_rows(t, 0), 0);
	cr_assert_eq(st_read_cached(p, 6, 1 << 20, &c), 0);
	/* Appends go on at the watermark. */
	cr_assert_eq(append_ok(p, 1, ts), 6);
	kb_writer_free(&c);
}

/* Offsets 0-1 at 1000, 1100; 2-4 at 2000, 9000, 2500; 5 at 3000. */
static struct st_partition *timed_log(void)
{
	struct st_topic *t = create_topic("times", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	struct kb_writer w = {0};
	const int64_t a[] = {1000, 1100};
	const int64_t b[] = {2000, 9000, 2500};
	const int64_t c[] = {3000};

	build(&w, 2, 0, a, true, 10, -1, -1, -1);
	cr_assert_eq(append_raw(p, &w).status, ST_OK);
	w.len = 0;
	build(&w, 3, 0, b, true, 10, -1, -1, -1);
	cr_assert_eq(append_raw(p, &w).status, ST_OK);
	w.len = 0;
	build(&w, 1, 0, c, true, 10, -1, -1, -1);
	cr_assert_eq(append_raw(p, &w).status, ST_OK);
	kb_writer_free(&w);
	return p;
}

Test(store, offsets_for_time)
{
	struct st_partition *p = timed_log();
	struct offset_out o = offset_for_time(p, 0);

	cr_assert_eq(o.offset, 0);
	cr_assert_eq(o.ts, 1000);
	o = offset_for_time(p, 1050);
	cr_assert_eq(o.offset, 1);
	cr_assert_eq(o.ts, 1100);
	o = offset_for_time(p, 1500);
	cr_assert_eq(o.offset, 2);
	cr_assert_eq(o.ts, 2000);
	o = offset_for_time(p, 2001);
	cr_assert_eq(o.offset, 3);
	cr_assert_eq(o.ts, 9000);
	o = offset_for_time(p, 9000);
	cr_assert_eq(o.offset, 3);
	o = offset_for_time(p, 9001);
	cr_assert_eq(o.offset, -1, "nothing that late: %" PRId64, o.offset);

	/* Below the log start: answers start at the log start. */
	delete_records(p, 3);
	o = offset_for_time(p, 0);
	cr_assert_eq(o.offset, 3);
}

Test(store, offset_max_time)
{
	struct st_partition *p = timed_log();
	struct offset_out o = offset_max_time(p);

	cr_assert_eq(o.offset, 3);
	cr_assert_eq(o.ts, 9000);
}

/* --- retention
 * ------------------------------------------------------------------ */

Test(store, retention_ms)
{
	struct st_topic *t = create_topic("old", 2, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int64_t now = now_ms(), old = now - 10LL * 86400000;

	append_ok(p, 2, old); /* 0-1 */
	append_ok(p, 3, old); /* 2-4 */
	append_ok(p, 1, now); /* 5 */
	append_ok(p, 2, now); /* 6-7 */
	append_ok(st_partition(t, 1), 1, now);
	/* The default (7 days) keeps... nothing 10 days old: first make sure
	 * a long retention keeps everything. */
	const struct tc_override keep[] = {{"retention.ms", "-1"}};
	set_configs(t, keep, 1);
	cr_assert_eq(t->cfg.retention_ms, -1);
	st_enforce_retention(st);
	run_for(500);
	cr_assert_eq(st_log_start(p), 0);
	cr_assert_eq(log_rows(t, 0), 4);

	const struct tc_override one_day[] = {{"retention.ms", "86400000"}};
	set_configs(t, one_day, 1);
	cr_assert_eq(t->cfg.retention_ms, 86400000);
	cr_assert_eq(t->nconfigs, 1);
	st_enforce_retention(st);
	bool moved = false;
	for (int i = 0; i < 100 && !moved; i++) {
		run_for(100);
		moved = st_log_start(p) != 0;
	}
	cr_assert(moved, "retention did not move the log start");
	cr_assert_eq(st_log_start(p), 5);
	cr_assert_eq(st_high_watermark(p), 8);
	cr_assert_eq(log_rows(t, 0), 2);
	cr_assert_eq(st_log_start(st_partition(t, 1)), 0);
	cr_assert_eq(log_rows(t, 1), 1);
	struct readout pg;
	int64_t offs[4];
	read_pg(p, 5, 1 << 20, &pg);
	cr_assert_eq(batch_offsets(pg.data.buf, pg.data.len, offs, 4), 2);
	cr_assert_eq(offs[0], 5);
	kb_writer_free(&pg.data);
	struct kb_writer c = {0};
	cr_assert_eq(st_read_cached(p, 0, 1 << 20, &c), -1);
	cr_assert_gt(st_read_cached(p, 5, 1 << 20, &c), 0);
	kb_writer_free(&c);

	/* The configs and the new start are in Postgres. */
	reopen_store();
	t = find_topic("old");
	cr_assert_eq(t->cfg.retention_ms, 86400000);
	cr_assert_eq(st_log_start(st_partition(t, 0)), 5);
}

Test(store, retention_bytes)
{
	const struct tc_override cfg[] = {{"retention.ms", "-1"}};
	struct st_topic *t = create_topic("big", 1, cfg, 1);
	struct st_partition *p = st_partition(t, 0);
	struct kb_writer w = {0};

	for (int i = 0; i < 4; i++)
		append_ok(p, 1, now_ms()); /* 0, 1, 2, 3 */
	build(&w, 1, now_ms(), NULL, true, 10, -1, -1, -1);
	size_t one = w.len;
	kb_writer_free(&w);
	char keep[32];
	snprintf(keep, sizeof(keep), "%zu", 2 * one); /* the newest two */
	const struct tc_override two[] = {{"retention.ms", "-1"},
					  {"retention.bytes", keep}};
	set_configs(t, two, 2);
	st_enforce_retention(st);
	for (int i = 0; i < 100 && st_log_start(p) == 0; i++)
		run_for(100);
	cr_assert_eq(st_log_start(p), 2, "retention.bytes: log start %" PRId64,
		     st_log_start(p));
	cr_assert_eq(log_rows(t, 0), 2);

	/* As Kafka's segments: a batch goes only while what is newer holds
	 * retention.bytes, so a limit under one batch keeps the newest (it
	 * emptied the partition: consumers got OFFSET_OUT_OF_RANGE). */
	snprintf(keep, sizeof(keep), "%zu", one - 1);
	set_configs(t, two, 2);
	st_enforce_retention(st);
	for (int i = 0; i < 100 && st_log_start(p) == 2; i++)
		run_for(100);
	run_for(300);
	cr_assert_eq(st_log_start(p), 3, "retention.bytes: log start %" PRId64,
		     st_log_start(p));
	cr_assert_eq(log_rows(t, 0), 1);
}

/* --- deleting a topic
 * ------------------------------------------------------------- */

Test(store, delete_topic)
{
	struct st_topic *t = create_topic("gone", 2, NULL, 0);
	struct st_partition *p = st_partition(t, 1);
	int32_t tid = t->tid;
	struct done d = {0};

	append_ok(p, 2, now_ms());
	create_topic("stays", 1, NULL, 0);
	/* An append racing the deletion: whichever commits first, none of
	 * its rows outlives the topic. */
	struct kb_writer racing = {0};
	struct appended ra = {0};
	build(&racing, 1, now_ms(), NULL, true, 10, -1, -1, -1);
	st_append(st, p, racing.buf, racing.len, on_appended, &ra);
	st_delete_topic(st, t, on_done, &d);
	cr_assert_not(d.called);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "%s", d.msg);
	run_until(&ra.called);
	kb_writer_free(&racing);
	run_for(200); /* the purge behind the flush */
	cr_assert_null(find_topic("gone"));
	cr_assert_not_null(find_topic("stays"));
	cr_assert_eq(st_topic_count(st), 1);
	/* A partition held across the deletion refuses appends. */
	struct kb_writer w = {0};
	build(&w, 1, now_ms(), NULL, true, 10, -1, -1, -1);
	cr_assert_eq(append_raw(p, &w).status, ST_NOT_FOUND);
	kb_writer_free(&w);
	char sql[256];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d", tid);
	cr_assert_eq(sql_num(sql), 0);
	/* Rows a lost purge left behind go at the next start. */
	snprintf(sql, sizeof(sql),
		 "INSERT INTO samsa.log (tid, partition, base_offset, "
		 "last_offset, max_timestamp, producer_id, producer_epoch, "
		 "base_sequence, record_count, bytes, batch) VALUES (%d, 0, 0, "
		 "0, 0, -1, -1, -1, 1, 1, '\\x00')",
		 tid);
	sql_ok(sql);
	/* The name is free again; the deletion survives a restart. */
	reopen_store();
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d", tid);
	cr_assert_eq(sql_num(sql), 0);
	cr_assert_null(find_topic("gone"));
	t = create_topic("gone", 1, NULL, 0);
	cr_assert_eq(st_high_watermark(st_partition(t, 0)), 0);
}

/* --- waiters
 * ------------------------------------------------------------------------ */

Test(store, waiters_woken_by_append)
{
	struct st_topic *t = create_topic("wait", 1, NULL, 0);
	struct st_partition *p = st_partition(t, 0);
	int woken = 0, other = 0;
	struct st_waiter w1 = {.fn = on_wake, .arg = &woken};
	struct st_waiter w2 = {.fn = on_wake, .arg = &other};

	st_wait(p, &w1);
	st_wait(p, &w2);
	st_wait_cancel(&w2);
	append_ok(p, 1, now_ms());
	cr_assert_eq(woken, 1);
	cr_assert_eq(other, 0);
	append_ok(p, 1, now_ms()); /* told once only */
	cr_assert_eq(woken, 1);
	st_wait_cancel(&w1); /* harmless after it fired */
}

struct rewaiter {
	struct st_waiter w;
	struct st_partition *p;
	int woken;
};

static void wait_again(void *arg)
{
	struct rewaiter *r = arg;
	r->woken++;
	st_wait(r->p, &r->w);
}

/* A waiter that waits again from its callback is told at the next wake-up,
 * not again and again in this one. */
Test(store, waiter_waiting_again_is_told_next_time)
{
	struct st_topic *t = create_topic("rewait", 1, NULL, 0);
	struct rewaiter r = {.p = st_partition(t, 0)};
	r.w = (struct st_waiter){.fn = wait_again, .arg = &r};

	st_wait(r.p, &r.w);
	append_ok(r.p, 1, now_ms());
	cr_assert_eq(r.woken, 1);
	append_ok(r.p, 1, now_ms());
	cr_assert_eq(r.woken, 2);
	st_wait_cancel(&r.w);
}
