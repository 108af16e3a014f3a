/*
 * Log compaction (storage/compact.c) end to end against a real Postgres:
 * SAMSA_TEST_PG holds its conninfo.  Every test drops the schema samsa and
 * opens a store of its own; the cleaner runs from the store's own timer
 * while the loop runs.  Checked on the bytes the store serves, from the tail
 * cache and from Postgres alike: the latest record of every key stays at
 * its offset, batches keep their offsets and a correct CRC, tombstones go
 * after delete.retention.ms, the newest batch keeps its last record, a
 * read inside a removed range gets the next batch, and a reopened store
 * converges to the same log.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>

#include "protocol/crc32c.h"
#include "protocol/kbuf.h"
#include "protocol/record_batch.h"
#include "storage/store.h"
#include "storage/topic_config.h"
#include "tests/support/store_fixture.h"

TestSuite(compaction, .init = store_fixture_setup,
	  .fini = store_fixture_teardown, .timeout = 120);

/* --- helpers ----------------------------------------------------------- */

static struct st_topic *create_topic(const char *name,
				     const struct tc_override *cfg, size_t n)
{
	struct done d = {0};

	st_create_topic(st, kstr_c(name), 1, cfg, n, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK, "create %s: %d %s", name, d.st, d.msg);
	struct st_topic *t = st_topic_find(st, kstr_c(name));
	cr_assert_not_null(t);
	return t;
}

/* The timestamp of the records append() writes. */
static int64_t append_ts = 1000000;

/* Appends one batch of n records keys[i] = values[i] (NULL: tombstone)
 * with attributes (the codec and flags) from producer pid (-1: none) at
 * epoch 0 and base sequence seq; returns its base offset. */
static int64_t append_as(struct st_partition *p, int16_t attributes,
			 int64_t pid, int32_t seq, const char *const *keys,
			 const char *const *values, int n)
{
	struct rb_new_record r[16];
	struct kb_writer w = {0};
	char err[256] = "";
	struct appended a = {0};

	cr_assert_leq(n, 16);
	memset(r, 0, sizeof(r));
	for (int i = 0; i < n; i++) {
		r[i].Timestamp = append_ts + i;
		r[i].Key = kstr_c(keys[i]);
		r[i].Value = values[i] ? kstr_c(values[i]) : KSTR_NULL;
	}
	cr_assert_eq(rb_build(&w, 0, attributes, pid, pid < 0 ? -1 : 0,
			      pid < 0 ? -1 : seq, r, n, err, sizeof(err)),
		     0, "rb_build: %s", err);
	st_append(st, p, w.buf, w.len, on_appended, &a);
	run_until(&a.called);
	kb_writer_free(&w);
	cr_assert_eq(a.r.status, ST_OK, "append: %d %s", a.r.status, a.msg);
	return a.r.base_offset;
}

/* The same, compressed with codec, without a producer. */
static int64_t append(struct st_partition *p, int codec,
		      const char *const *keys, const char *const *values, int n)
{
	return append_as(p, (int16_t)codec, -1, -1, keys, values, n);
}

/* Ends pid's transaction on p with its marker; returns the marker's
 * offset. */
static int64_t end_txn(struct st_partition *p, int64_t pid, bool commit)
{
	struct appended a = {0};

	st_append_marker(st, p, pid, 0, commit, on_appended, &a);
	run_until(&a.called);
	cr_assert_eq(a.r.status, ST_OK, "marker: %d %s", a.r.status, a.msg);
	return a.r.base_offset;
}

/* Runs the loop (the cleaner with it) until sql counts want, or fails after
 * ms. */
static void wait_count(const char *sql, long long want, int ms)
{
	for (int waited = 0;; waited += 250) {
		long long n = sql_num(sql);
		if (n == want)
			return;
		cr_assert_lt(waited, ms, "%s: %lld, not %lld after %d ms", sql,
			     n, want, ms);
		run_for(250);
	}
}

#define MAX_RECS 1024

struct rec {
	int64_t offset;
	char key[16];
	char value[32];
	bool tombstone;
};

struct recs {
	struct rec r[MAX_RECS];
	int n;
	int batches;
	int64_t first_base, last_end; /* first base offset, last offset + 1 */
	int32_t last_count;	      /* records of the last batch */
	int64_t base;		      /* of the batch being walked */
};

static int collect(void *arg, const struct rb_record *rec)
{
	struct recs *o = arg;

	cr_assert_lt(o->n, MAX_RECS);
	struct rec *r = &o->r[o->n++];
	r->offset = o->base + rec->OffsetDelta;
	cr_assert(rec->Key.len > 0 && rec->Key.len < 16);
	memcpy(r->key, rec->Key.ptr, (size_t)rec->Key.len);
	r->key[rec->Key.len] = '\0';
	r->tombstone = rec->Value.len < 0;
	if (!r->tombstone) {
		cr_assert_lt(rec->Value.len, 32);
		memcpy(r->value, rec->Value.ptr, (size_t)rec->Value.len);
		r->value[rec->Value.len] = '\0';
	}
	return 0;
}

/* Every record of the batches in buf, checking each batch's framing, CRC
 * and that offsets only grow. */
static void parse_all(const uint8_t *buf, size_t len, struct recs *o)
{
	struct kb_writer scratch = {0};
	size_t pos = 0;
	int64_t prev = -1;
	char err[256] = "";

	memset(o, 0, sizeof(*o));
	o->first_base = -1;
	while (pos < len) {
		struct rb_header h;
		cr_assert_eq(rb_read_header(buf + pos, len - pos, &h), 0);
		size_t total = RB_LOG_OVERHEAD + (size_t)h.BatchLength;
		cr_assert_leq(total, len - pos);
		cr_assert_eq(crc32c(0, buf + pos + RB_ATTR_OFFSET,
				    total - RB_ATTR_OFFSET),
			     h.Crc, "CRC of the batch at %" PRId64,
			     h.BaseOffset);
		cr_assert_gt(h.BaseOffset, prev);
		if (o->first_base < 0)
			o->first_base = h.BaseOffset;
		o->base = h.BaseOffset;
		int before = o->n;
		cr_assert_eq(rb_foreach_record(buf + pos, total, &scratch,
					       1u << 24, collect, o, err,
					       sizeof(err)),
			     0, "batch at %" PRId64 ": %s", h.BaseOffset, err);
		for (int i = before; i < o->n; i++) {
			cr_assert_gt(o->r[i].offset, prev);
			cr_assert_leq(o->r[i].offset,
				      h.BaseOffset + h.LastOffsetDelta);
			prev = o->r[i].offset;
		}
		prev = h.BaseOffset + h.LastOffsetDelta;
		o->last_end = prev + 1;
		o->last_count = h.RecordCount;
		o->batches++;
		pos += total;
	}
	kb_writer_free(&scratch);
}

/* The whole log as Postgres has it. */
static void read_log(struct st_partition *p, struct kb_writer *out)
{
	struct readout r = {0};

	st_read(st, p, 0, 64 << 20, on_read, &r);
	run_until(&r.called);
	cr_assert_eq(r.st, ST_OK);
	*out = r.data;
}

/* The whole log as Postgres has it, parsed into o. */
static void read_recs(struct st_partition *p, struct recs *o)
{
	struct kb_writer w = {0};

	read_log(p, &w);
	parse_all(w.buf, w.len, o);
	kb_writer_free(&w);
}

static const struct rec *find(const struct recs *o, const char *key, int *count)
{
	const struct rec *last = NULL;

	*count = 0;
	for (int i = 0; i < o->n; i++)
		if (strcmp(o->r[i].key, key) == 0) {
			last = &o->r[i];
			(*count)++;
		}
	return last;
}

#define NKEYS 13

/* What the log should say of key k: "v<offset>", "final", or a
 * tombstone. */
struct want {
	char value[32];
	bool tombstone;
};

/* Runs the loop (the cleaner with it) until every key is in the log at
 * most once, or fails after ms. */
static void wait_until(struct st_partition *p, bool (*done)(struct recs *),
		       struct recs *o, int ms)
{
	for (int waited = 0;; waited += 250) {
		read_recs(p, o);
		if (done(o))
			return;
		cr_assert_lt(waited, ms,
			     "not compacted after %d ms: %d records", ms, o->n);
		run_for(250);
	}
}

static bool once_per_key(struct recs *o)
{
	for (int i = 0; i < o->n; i++)
		for (int j = i + 1; j < o->n; j++)
			if (strcmp(o->r[i].key, o->r[j].key) == 0)
				return false;
	return true;
}

static bool no_tombstones(struct recs *o)
{
	for (int i = 0; i < o->n; i++)
		if (o->r[i].tombstone)
			return false;
	return once_per_key(o);
}

/* Once per key, and the one tombstone left is the log's last record. */
static bool only_last_tombstone(struct recs *o)
{
	int n = 0;

	for (int i = 0; i < o->n; i++)
		n += o->r[i].tombstone;
	return n == 1 && o->n > 0 && o->r[o->n - 1].tombstone &&
	       once_per_key(o);
}

static void check_latest(const struct recs *o, const struct want *want,
			 bool tombstones_gone)
{
	for (int k = 0; k < NKEYS; k++) {
		char key[16];
		int n;
		snprintf(key, sizeof(key), "k%d", k);
		const struct rec *r = find(o, key, &n);
		if (want[k].tombstone && tombstones_gone) {
			cr_assert_eq(n, 0, "%s still there", key);
			continue;
		}
		cr_assert_eq(n, 1, "%s: %d records", key, n);
		cr_assert_eq(r->tombstone, want[k].tombstone, "%s", key);
		if (!want[k].tombstone)
			cr_assert_str_eq(r->value, want[k].value, "%s", key);
	}
}

/* --- tests --------------------------------------------------------------- */

Test(compaction, latest_values_gaps_tombstones_and_reopen)
{
	const struct tc_override cfg[] = {
		{"cleanup.policy", "compact"},
		{"segment.ms", "0"},
		{"min.cleanable.dirty.ratio", "0.01"},
		{"delete.retention.ms", "1500"},
	};
	struct st_topic *t = create_topic("compacted", cfg, 4);
	struct st_partition *p = st_partition(t, 0);
	struct want want[NKEYS];
	char keys[10][16], values[10][32];
	const char *kp[10], *vp[10];

	memset(want, 0, sizeof(want));
	/* 30 batches of 10 updates over 13 keys, in every codec. */
	for (int b = 0; b < 30; b++) {
		for (int j = 0; j < 10; j++) {
			int i = b * 10 + j;
			snprintf(keys[j], sizeof(keys[j]), "k%d", i % NKEYS);
			snprintf(values[j], sizeof(values[j]), "v%d", i);
			kp[j] = keys[j];
			vp[j] = values[j];
			snprintf(want[i % NKEYS].value, 32, "v%d", i);
		}
		cr_assert_eq(append(p, b % 5, kp, vp, 10), b * 10);
	}
	/* A last batch: an update and two tombstones. */
	const char *lk[3] = {"k1", "k2", "k5"};
	const char *lv[3] = {"final", NULL, NULL};
	cr_assert_eq(append(p, 1, lk, lv, 3), 300);
	snprintf(want[1].value, 32, "final");
	want[2].tombstone = want[5].tombstone = true;
	int64_t hw = st_high_watermark(p);
	cr_assert_eq(hw, 303);

	struct recs *o = calloc(1, sizeof(*o));
	struct recs *c = calloc(1, sizeof(*c));
	cr_assert(o && c);
	wait_until(p, once_per_key, o, 10000);
	check_latest(o, want, false);
	cr_assert_eq(o->last_end, hw, "the end of the log moved");
	cr_assert_eq(st_log_start(p), 0);
	cr_assert_eq(st_high_watermark(p), hw);
	cr_assert_lt(o->batches, 31);
	char sql[96];
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d", t->tid);
	cr_assert_eq(sql_num(sql), o->batches, "emptied batches are deleted");

	/* The tail cache serves what Postgres has, never the old bytes. */
	struct kb_writer pg = {0}, cached = {0};
	read_log(p, &pg);
	long n = st_read_cached(p, o->first_base, 64 << 20, &cached);
	cr_assert_eq(n, (long)pg.len, "cache %ld bytes, Postgres %zu", n,
		     pg.len);
	cr_assert_eq(memcmp(cached.buf, pg.buf, pg.len), 0);
	kb_writer_free(&cached);

	/* A read inside a removed range gets the next batch there is. */
	int64_t gap = -1, next = -1;
	for (int64_t off = 1; off < hw && gap < 0; off++) {
		bool present = false;
		for (int i = 0; i < o->n; i++)
			present |= o->r[i].offset == off;
		if (!present)
			gap = off;
	}
	cr_assert_geq(gap, 0);
	for (int i = 0; i < o->n && next < 0; i++)
		if (o->r[i].offset > gap)
			next = o->r[i].offset;
	struct readout r = {0};
	st_read(st, p, gap, 1, on_read, &r);
	run_until(&r.called);
	parse_all(r.data.buf, r.data.len, c);
	cr_assert_geq(c->n, 1);
	cr_assert_eq(c->r[0].offset, next, "read at %" PRId64, gap);
	kb_writer_free(&r.data);
	kb_writer_free(&pg);

	/* Tombstones go after delete.retention.ms; the newest batch stays. */
	wait_until(p, no_tombstones, o, 10000);
	check_latest(o, want, true);
	cr_assert_eq(o->last_end, hw);

	/* A newest batch of tombstones only keeps its last one, so that the
	 * log still ends at the high watermark; a newer batch lets it go. */
	const char *tk[2] = {"k1", "k4"};
	const char *tv[2] = {NULL, NULL};
	cr_assert_eq(append(p, 3, tk, tv, 2), hw);
	hw += 2;
	want[1].tombstone = want[4].tombstone = true;
	wait_until(p, only_last_tombstone, o, 10000);
	cr_assert_eq(o->last_end, hw);
	cr_assert_eq(o->last_count, 1);
	cr_assert_eq(o->r[o->n - 1].offset, hw - 1);
	const char *nk[1] = {"k0"};
	const char *nv[1] = {"last"};
	cr_assert_eq(append(p, 0, nk, nv, 1), hw);
	hw++;
	snprintf(want[0].value, 32, "last");
	wait_until(p, no_tombstones, o, 10000);
	check_latest(o, want, true);
	cr_assert_eq(o->last_end, hw);

	/* A reopened store (its first pass runs over everything) converges
	 * to the same log. */
	struct recs *before = calloc(1, sizeof(*before));
	cr_assert(before);
	*before = *o;
	reopen_store();
	p = st_partition(st_topic_find(st, kstr_c("compacted")), 0);
	run_for(2500);
	wait_until(p, no_tombstones, o, 10000);
	cr_assert_eq(o->n, before->n);
	for (int i = 0; i < o->n; i++) {
		cr_assert_eq(o->r[i].offset, before->r[i].offset);
		cr_assert_str_eq(o->r[i].key, before->r[i].key);
		cr_assert_str_eq(o->r[i].value, before->r[i].value);
	}
	cr_assert_eq(st_high_watermark(p), hw);
	free(before);
	free(o);
	free(c);
}

Test(compaction, delete_policy_untouched_until_altered)
{
	const struct tc_override cfg[] = {
		{"segment.ms", "0"},
		{"min.cleanable.dirty.ratio", "0.01"},
	};
	struct st_topic *t = create_topic("plain", cfg, 2);
	struct st_partition *p = st_partition(t, 0);
	const char *k[2] = {"a", "a"};
	const char *v[2] = {"1", "2"};

	for (int i = 0; i < 5; i++)
		append(p, 0, k, v, 2);
	run_for(2500);
	struct recs *o = calloc(1, sizeof(*o));
	cr_assert(o);
	read_recs(p, o);
	cr_assert_eq(o->n, 10, "a delete-policy topic was compacted");

	const struct tc_override compact[] = {
		{"cleanup.policy", "compact,delete"},
		{"segment.ms", "0"},
		{"min.cleanable.dirty.ratio", "0.01"},
	};
	struct done d = {0};
	st_set_configs(st, t, true, compact, 3, on_done, &d);
	run_until(&d.called);
	cr_assert_eq(d.st, ST_OK);
	wait_until(p, once_per_key, o, 10000);
	cr_assert_eq(o->n, 1);
	cr_assert_eq(o->r[0].offset, 9);
	cr_assert_str_eq(o->r[0].value, "2");
	free(o);
}

Test(compaction, min_compaction_lag_honoured)
{
	const struct tc_override cfg[] = {
		{"cleanup.policy", "compact"},
		{"segment.ms", "0"},
		{"min.cleanable.dirty.ratio", "0.01"},
		{"min.compaction.lag.ms", "4000"},
	};
	struct st_topic *t = create_topic("lagged", cfg, 4);
	struct st_partition *p = st_partition(t, 0);
	const char *k[2] = {"a", "a"};
	const char *v[2] = {"1", "2"};
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	append_ts = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	for (int i = 0; i < 5; i++)
		append(p, 0, k, v, 2);
	/* Younger than the lag: left alone, though the cleaner looked. */
	run_for(2500);
	struct recs *o = calloc(1, sizeof(*o));
	cr_assert(o);
	read_recs(p, o);
	cr_assert_eq(o->n, 10, "compacted before min.compaction.lag.ms");
	/* Then compacted. */
	wait_until(p, once_per_key, o, 10000);
	cr_assert_eq(o->n, 1);
	cr_assert_eq(o->r[0].offset, 9);
	free(o);
}

static void ignore_txn(void *arg, int64_t producer_id, int64_t first_offset)
{
	(void)arg;
	(void)producer_id;
	(void)first_offset;
}

/* How many aborted transactions a fetch of the whole of p lists. */
static int count_aborted(struct st_partition *p)
{
	return st_aborted_txns(p, 0, INT64_MAX, ignore_txn, NULL);
}

/* Kafka's cleaner keeps a transaction's marker while any batch of the
 * transaction stays, then treats it as a tombstone. */
Test(compaction, markers_go_with_their_transactions)
{
	const struct tc_override cfg[] = {
		{"cleanup.policy", "compact"},
		{"segment.ms", "0"},
		{"min.cleanable.dirty.ratio", "0.01"},
		{"delete.retention.ms", "3000"},
	};
	struct st_topic *t = create_topic("txns", cfg, 4);
	struct st_partition *p = st_partition(t, 0);
	const char *k4[4] = {"k0", "k1", "k2", "k3"};
	const char *a4[4] = {"a0", "a1", "a2", "a3"};
	const char *b2[2] = {"b0", "b1"};
	const char *c4[4] = {"c0", "c1", "c2", "c3"};
	const char *zk[1] = {"z"}, *zv[1] = {"z"};
	const int16_t txn = RB_ATTR_TRANSACTIONAL;
	const int64_t pid = 7;

	/* A: committed, then superseded by C; B: aborted; C: committed and
	 * the latest of its keys. */
	st_txn_join(p, pid, 0);
	cr_assert_eq(append_as(p, txn, pid, 0, k4, a4, 4), 0);
	cr_assert_eq(end_txn(p, pid, true), 4);
	st_txn_join(p, pid, 0);
	cr_assert_eq(append_as(p, txn, pid, 4, k4, b2, 2), 5);
	cr_assert_eq(end_txn(p, pid, false), 7);
	st_txn_join(p, pid, 0);
	cr_assert_eq(append_as(p, txn, pid, 6, k4, c4, 4), 8);
	cr_assert_eq(end_txn(p, pid, true), 12);
	cr_assert_eq(append(p, 0, zk, zv, 1), 13);
	cr_assert_eq(count_aborted(p), 1);

	char rows[96], markers[128], waiting[128], aborted[96];
	snprintf(rows, sizeof(rows),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d", t->tid);
	snprintf(markers, sizeof(markers),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d AND "
		 "attributes & 32 <> 0",
		 t->tid);
	snprintf(waiting, sizeof(waiting),
		 "SELECT count(*) FROM samsa.log WHERE tid = %d AND "
		 "attributes & 96 = 96",
		 t->tid);
	snprintf(aborted, sizeof(aborted),
		 "SELECT count(*) FROM samsa.txn_aborted WHERE tid = %d",
		 t->tid);

	/* A's and B's data go at once; their markers first wait out
	 * delete.retention.ms, and the aborted transaction stays listed. */
	wait_count(waiting, 2, 10000);
	cr_assert_eq(sql_num(markers), 3);
	cr_assert_eq(sql_num(aborted), 1);
	cr_assert_eq(count_aborted(p), 1);

	/* Then they go, B's row of the aborted index with it; C's marker
	 * stays with C's records. */
	wait_count(markers, 1, 10000);
	cr_assert_eq(sql_num(rows), 3, "C, its marker and z");
	cr_assert_eq(sql_num(aborted), 0);
	cr_assert_eq(count_aborted(p), 0);
	snprintf(rows, sizeof(rows),
		 "SELECT base_offset FROM samsa.log WHERE tid = %d AND "
		 "attributes & 32 <> 0",
		 t->tid);
	cr_assert_eq(sql_num(rows), 12);
	cr_assert_eq(st_high_watermark(p), 14);
	cr_assert_eq(st_last_stable(p), 14);

	/* What the log serves is whole: every batch framed, CRC right, and
	 * from a reopened store (the producer's transactions as they were
	 * read back) the same. */
	struct recs *o = calloc(1, sizeof(*o));
	cr_assert(o);
	read_recs(p, o);
	cr_assert_eq(o->batches, 3);
	cr_assert_eq(o->n, 6, "C's four, its marker's and z");
	reopen_store();
	p = st_partition(st_topic_find(st, kstr_c("txns")), 0);
	cr_assert_eq(st_last_stable(p), 14);
	cr_assert_eq(count_aborted(p), 0);
	st_txn_join(p, pid, 0);
	const char *dk[1] = {"k0"}, *dv[1] = {"d0"};
	cr_assert_eq(append_as(p, txn, pid, 10, dk, dv, 1), 14);
	cr_assert_eq(end_txn(p, pid, true), 15);
	free(o);
}
