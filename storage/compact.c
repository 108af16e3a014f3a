/*
 * compact: log compaction, for topics whose cleanup.policy has "compact".
 *
 * What Kafka's log cleaner does, over the rows of samsa.log: the latest
 * record of every key stays, older ones go; a tombstone (null value) stays
 * for delete.retention.ms after a pass first finds it cleanable (the delete
 * horizon, stored in the batch as Kafka does since KIP-534: attribute bit
 * 0x40 and BaseTimestamp), then goes too.  Rewritten batches keep their base
 * offset, LastOffsetDelta (so offsets keep their gaps and the next offset is
 * unchanged), producer fields, attributes and codec; a batch left without
 * records is deleted, unless it is its producer's newest (then it stays as
 * a header without records, as Kafka's cleaner keeps it: producers'
 * sequences are read back from the log).  Records of aborted transactions are
 * dropped and never supersede anything; records without a key (written before
 * the policy changed) are dropped as Kafka's cleaner drops them.  A
 * transaction's marker (control batch) stays while any batch of its
 * transaction does; then it is a tombstone of its own: it gets a delete
 * horizon and goes after delete.retention.ms, an abort marker with its row
 * of the aborted index (a read_committed consumer told of an aborted
 * transaction skips its producer's batches until it meets the marker).
 * The log start offset does not move.
 *
 * samsa has no segments, so "the active segment is never cleaned" becomes:
 * a pass cleans only batches below the last stable offset and older than
 * min.compaction.lag.ms, and never the newest batch of the partition while
 * it is younger than segment.ms (a newer batch, or segment.ms, "rolls" it).
 * The newest batch is never deleted and keeps at least its last record, so
 * the log never ends in a gap or in an empty batch.
 *
 * A pass over one partition: (0) find those bounds; (1) read the dirty
 * batches (written since the last pass) and map every key to its latest
 * offset; (2) read every batch below the bound and write back those that
 * lose records, a bounded chunk per Postgres transaction.  Each chunk is
 * atomic, and whatever a crash leaves, a rerun converges: a record is only
 * removed when a newer record of its key is in the log (or it is a tombstone
 * past its horizon).  Passes run one at a time, on a connection of their
 * own, started by a timer that looks at in-memory counters only: the share
 * of bytes written since the last pass (min.cleanable.dirty.ratio),
 * max.compaction.lag.ms, and the earliest delete horizon.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/compress.h"
#include "protocol/crc32c.h"
#include "protocol/record_batch.h"
#include "storage/store_int.h"

#define TICK_MS		 1000 /* how often the timer looks */
#define IDLE_MS		 2000 /* after a pass that found nothing to clean */
#define BACKOFF_MS	 5000 /* after a pass that failed */
#define CHUNK_BYTES	 (1u << 20) /* one read (and one rewrite transaction) */
#define CHUNK_RECORDS	 16384	    /* records decoded in one loop callback */
#define MAP_MAX_BYTES	 (64u << 20)
#define MAX_DECOMPRESSED (64u << 20)

struct km_slot {
	uint64_t hash;
	int64_t offset; /* -1: empty */
	uint32_t key_off, key_len;
};

/* Key -> latest offset, keys copied into one buffer. */
struct keymap {
	struct km_slot *slots;
	size_t cap, n;
	struct kb_writer keys;
};

/* A change of the chunk in hand: new bytes at out[off, off + len), or a
 * deletion. */
struct change {
	int64_t base;
	size_t off, len;
	int64_t max_ts;
	int16_t attributes;
	bool deleted;
	bool marker; /* a transaction's marker */
};

/* A producer's transaction as a pass meets its batches: whether any batch
 * of it stays (then so does its marker). */
struct txn_seen {
	int64_t pid;
	bool retained;
};

struct pass {
	struct st_cleaner *c;
	struct st_partition *p;
	int phase; /* 0 bounds, 1 map, 2 rewrite */
	int64_t now;
	int64_t lso;
	int64_t end;	   /* batches with a base offset below are cleaned */
	int64_t last_base; /* the newest batch: never deleted */
	int64_t last_max_ts;
	int64_t young; /* first dirty batch younger than the lag, or -1 */
	int64_t dirty_from;
	int64_t cursor;
	int64_t started;
	size_t rows_asked;
	uint64_t seen_batches, seen_records; /* to size the reads */
	struct keymap map;
	struct kb_writer scratch; /* decompressed records */
	struct kb_writer recs;	  /* kept records, re-encoded */
	struct kb_writer out;	  /* the chunk's rewritten batches */
	struct change *chg;
	size_t nchg, capchg;
	struct txn_seen *txns; /* few: one per transactional producer */
	size_t ntxns, captxns;
	bool txns_lost; /* out of memory: every marker stays */
	size_t dirty_scanned, kept_bytes, bytes_in;
	int64_t next_horizon;
	uint64_t records_in, records_out, rewritten, deleted;
};

struct st_cleaner {
	struct store *s;
	struct pgconn *conn;
	struct event *tick;
	struct pass *pass;
	bool closing;
};

/* --- key map ---------------------------------------------------------- */

static uint64_t key_hash(const char *k, int32_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (int32_t i = 0; i < n; i++) {
		h ^= (uint8_t)k[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static bool map_full(const struct keymap *m)
{
	return m->cap * sizeof(struct km_slot) + m->keys.len > MAP_MAX_BYTES;
}

static struct km_slot *map_slot(const struct keymap *m, uint64_t h,
				const char *k, int32_t n)
{
	size_t i = h & (m->cap - 1);
	for (;;) {
		struct km_slot *s = &m->slots[i];
		if (s->offset < 0 ||
		    (s->hash == h && s->key_len == (uint32_t)n &&
		     memcmp(m->keys.buf + s->key_off, k, (size_t)n) == 0))
			return s;
		i = (i + 1) & (m->cap - 1);
	}
}

static int map_grow(struct keymap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 1024;
	struct km_slot *old = m->slots;
	size_t oldcap = m->cap;
	m->slots = malloc(cap * sizeof(*m->slots));
	if (!m->slots) {
		m->slots = old;
		return -1;
	}
	m->cap = cap;
	for (size_t i = 0; i < cap; i++)
		m->slots[i].offset = -1;
	for (size_t i = 0; i < oldcap; i++) {
		if (old[i].offset < 0)
			continue;
		size_t j = old[i].hash & (cap - 1);
		while (m->slots[j].offset >= 0)
			j = (j + 1) & (cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
	return 0;
}

static int map_put(struct keymap *m, struct kstr key, int64_t offset)
{
	if ((m->n + 1) * 2 > m->cap && map_grow(m) < 0)
		return -1;
	uint64_t h = key_hash(key.ptr, key.len);
	struct km_slot *s = map_slot(m, h, key.ptr, key.len);
	if (s->offset >= 0) {
		if (offset > s->offset)
			s->offset = offset;
		return 0;
	}
	if (m->keys.len + (size_t)key.len > UINT32_MAX)
		return -1;
	s->hash = h;
	s->key_off = (uint32_t)m->keys.len;
	s->key_len = (uint32_t)key.len;
	kb_write_raw(&m->keys, key.ptr, (size_t)key.len);
	if (!kb_writer_ok(&m->keys))
		return -1;
	s->offset = offset;
	m->n++;
	return 0;
}

/* The latest offset of key, or -1. */
static int64_t map_get(const struct keymap *m, struct kstr key)
{
	if (m->n == 0)
		return -1;
	return map_slot(m, key_hash(key.ptr, key.len), key.ptr, key.len)
		->offset;
}

static void map_free(struct keymap *m)
{
	free(m->slots);
	kb_writer_free(&m->keys);
	memset(m, 0, sizeof(*m));
}

/* --- the partition's transactions --------------------------------------- */

/* Whether the transactional batch of pid at offset belongs to an aborted
 * transaction (below the last stable offset every transaction has ended). */
static bool aborted(const struct st_partition *p, int64_t pid, int64_t offset)
{
	for (size_t i = st_aborted_from(p, offset); i < p->naborted; i++)
		if (p->aborted[i].pid == pid && p->aborted[i].first <= offset)
			return true;
	return false;
}

/* --- a pass ------------------------------------------------------------- */

static void pass_read(struct pass *x);
static void pass_finish(struct pass *x, const char *err);
static void tick(evutil_socket_t fd, short what, void *arg);

static void pass_free(struct pass *x)
{
	map_free(&x->map);
	kb_writer_free(&x->scratch);
	kb_writer_free(&x->recs);
	kb_writer_free(&x->out);
	free(x->chg);
	free(x->txns);
	free(x);
}

static bool pass_gone(const struct pass *x)
{
	return x->c->closing || x->p->deleted || !x->p->topic->cfg.compact;
}

static void pass_finish(struct pass *x, const char *err)
{
	struct st_cleaner *c = x->c;
	struct st_partition *p = x->p;
	int64_t now = st_now_ms();
	c->pass = NULL;
	if (err) {
		if (!c->closing && !p->deleted && strcmp(err, "stopped") != 0)
			fprintf(stderr,
				"samsa: compaction of %s-%d failed: %s\n",
				p->topic->name, p->index, err);
		p->clean.backoff_until = now + BACKOFF_MS;
		pass_free(x);
		return;
	}
	bool worked = x->phase == 2;
	p->clean.idle = !worked;
	p->clean.idle_dirty = p->clean.dirty_bytes;
	if (worked) {
		p->clean.cleaned = true;
		if (x->end > p->clean.first_dirty)
			p->clean.first_dirty = x->end;
		p->clean.clean_bytes = x->kept_bytes;
		p->clean.dirty_bytes =
			p->clean.dirty_bytes > x->dirty_scanned
				? p->clean.dirty_bytes - x->dirty_scanned
				: 0;
		p->clean.first_dirty_ts = now;
		p->clean.next_horizon = x->next_horizon;
		/* At most one pass a second per partition, however fast it
		 * is written. */
		p->clean.backoff_until = now + TICK_MS;
		if (x->rewritten || x->deleted)
			fprintf(stderr,
				"samsa: compacted %s-%d below offset %" PRId64
				": %" PRIu64 " -> %" PRIu64
				" records, %zu -> %zu bytes (%" PRIu64
				" batches rewritten, %" PRIu64
				" deleted) in %" PRId64 " ms\n",
				p->topic->name, p->index, x->end, x->records_in,
				x->records_out, x->bytes_in, x->kept_bytes,
				x->rewritten, x->deleted, now - x->started);
	} else {
		/* Nothing cleanable yet (the lag, an open transaction, the
		 * newest batch): look again later. */
		p->clean.backoff_until = now + IDLE_MS;
	}
	pass_free(x);
	/* After real work, the next partition due need not wait for the
	 * timer (this one is not due for a second). */
	if (worked && !c->closing)
		tick(-1, 0, c);
}

static int add_change(struct pass *x, const struct change *ch)
{
	if (x->nchg == x->capchg) {
		size_t cap = x->capchg ? x->capchg * 2 : 64;
		struct change *n = realloc(x->chg, cap * sizeof(*n));
		if (!n)
			return -1;
		x->chg = n;
		x->capchg = cap;
	}
	x->chg[x->nchg++] = *ch;
	return 0;
}

/* Phase 1: every key of a dirty batch, at its offset. */
struct map_ctx {
	struct pass *x;
	int64_t base;
	int failed;
};

static int map_record(void *arg, const struct rb_record *rec)
{
	struct map_ctx *m = arg;
	if (rec->Key.len < 0)
		return 0; /* keyless (from before the policy): dropped */
	if (map_put(&m->x->map, rec->Key, m->base + rec->OffsetDelta) < 0) {
		m->failed = 1;
		return -1;
	}
	return 0;
}

/* Returns 1 when the map is full and the pass stops before this batch. */
static int map_batch(struct pass *x, const uint8_t *data, size_t len,
		     const struct rb_header *h, char *err, size_t errlen)
{
	if (h->Attributes & RB_ATTR_CONTROL)
		return 0;
	if ((h->Attributes & RB_ATTR_TRANSACTIONAL) &&
	    aborted(x->p, h->ProducerId, h->BaseOffset))
		return 0;
	if (map_full(&x->map) && x->map.n > 0)
		return 1;
	struct map_ctx m = {x, h->BaseOffset, 0};
	if (rb_foreach_record(data, len, &x->scratch, MAX_DECOMPRESSED,
			      map_record, &m, err, errlen) < 0) {
		if (m.failed)
			snprintf(err, errlen, "out of memory for the key map");
		return -1;
	}
	return 0;
}

/* Phase 2: which records of a batch stay. */
struct keep_ctx {
	struct pass *x;
	const struct rb_header *h;
	int64_t old_base_ts;
	int64_t horizon; /* the batch's delete horizon, or -1 */
	int32_t kept, dropped;
	bool tombstones;       /* a tombstone stays */
	struct rb_record last; /* the batch's last record */
	struct rb_record *keep;
	int32_t nkeep, capkeep;
	bool failed;
};

static int keep_push(struct keep_ctx *k, const struct rb_record *rec)
{
	if (k->nkeep == k->capkeep) {
		int32_t cap = k->capkeep ? k->capkeep * 2 : 64;
		struct rb_record *n =
			realloc(k->keep, (size_t)cap * sizeof(*n));
		if (!n) {
			k->failed = true;
			return -1;
		}
		k->keep = n;
		k->capkeep = cap;
	}
	k->keep[k->nkeep++] = *rec;
	k->kept++;
	return 0;
}

static int keep_record(void *arg, const struct rb_record *rec)
{
	struct keep_ctx *k = arg;
	struct pass *x = k->x;
	int64_t offset = k->h->BaseOffset + rec->OffsetDelta;
	bool keep = true;
	k->last = *rec;
	if (rec->Key.len < 0)
		keep = false;
	else if (map_get(&x->map, rec->Key) > offset)
		keep = false; /* a newer record of the key is in the log */
	else if (rec->Value.len < 0) {
		if (k->horizon >= 0 && x->now >= k->horizon)
			keep = false;
		else
			k->tombstones = true;
	}
	if (!keep) {
		k->dropped++;
		return 0;
	}
	return keep_push(k, rec);
}

/* Every record stays (a marker's control record). */
static int keep_all(void *arg, const struct rb_record *rec)
{
	struct keep_ctx *k = arg;
	k->last = *rec;
	return keep_push(k, rec);
}

static void put_be(uint8_t *p, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static size_t varbytes_size(struct kstr s)
{
	return s.len < 0 ? 1 : kb_varint_size(s.len) + (size_t)s.len;
}

/*
 * Writes the batch h with only k->keep[] to x->out: the header as it was but
 * for length, attributes, timestamps, record count and CRC; records with
 * their offset deltas, timestamps relative to base_ts, the codec of
 * attributes (the batch's own).
 */
static int rebuild(struct pass *x, const struct rb_header *h,
		   const struct keep_ctx *k, int16_t attributes,
		   int64_t base_ts, int64_t *max_ts, char *err, size_t errlen)
{
	struct kb_writer *rw = &x->recs;
	int codec = attributes & RB_ATTR_CODEC_MASK;
	int64_t mts = -1;
	rw->len = 0;
	rw->failed = false;
	for (int32_t i = 0; i < k->nkeep; i++) {
		const struct rb_record *r = &k->keep[i];
		int64_t ts = k->old_base_ts + r->TimestampDelta;
		int64_t delta = ts - base_ts;
		if (ts > mts)
			mts = ts;
		size_t size = 1 + kb_varlong_size(delta) +
			      kb_varint_size(r->OffsetDelta) +
			      varbytes_size(r->Key) + varbytes_size(r->Value) +
			      kb_varint_size(r->HeaderCount) + r->HeadersLen;
		kb_write_varint(rw, (int32_t)size);
		kb_write_i8(rw, r->Attributes);
		kb_write_varlong(rw, delta);
		kb_write_varint(rw, r->OffsetDelta);
		kb_write_varbytes(rw, r->Key);
		kb_write_varbytes(rw, r->Value);
		kb_write_varint(rw, r->HeaderCount);
		kb_write_raw(rw, r->Headers, r->HeadersLen);
	}
	if ((h->Attributes & RB_ATTR_LOG_APPEND_TIME) || !k->nkeep)
		mts = h->MaxTimestamp;
	struct kb_writer *w = &x->out;
	size_t start = w->len;
	kb_write_i64(w, h->BaseOffset);
	size_t len_off = kb_skip_bytes(w, 4);
	kb_write_i32(w, h->PartitionLeaderEpoch);
	kb_write_i8(w, 2);
	size_t crc_off = kb_skip_bytes(w, 4);
	kb_write_i16(w, attributes);
	kb_write_i32(w, h->LastOffsetDelta);
	kb_write_i64(w, base_ts);
	kb_write_i64(w, mts);
	kb_write_i64(w, h->ProducerId);
	kb_write_i16(w, h->ProducerEpoch);
	kb_write_i32(w, h->BaseSequence);
	kb_write_i32(w, k->nkeep);
	if (!kb_writer_ok(rw)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (kc_compress(codec, tc_level(&x->p->topic->cfg, codec), rw->buf,
			rw->len, w, err, errlen) < 0)
		return -1;
	if (!kb_writer_ok(w)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t total = w->len - start;
	put_be(w->buf + len_off, total - RB_LOG_OVERHEAD, 4);
	put_be(w->buf + crc_off,
	       crc32c(0, w->buf + start + RB_ATTR_OFFSET,
		      total - RB_ATTR_OFFSET),
	       4);
	*max_ts = mts;
	return 0;
}

/* The batch h stays with k's records only, as ch; frees them. */
static int rewrite(struct pass *x, const struct rb_header *h,
		   struct keep_ctx *k, struct change *ch, int16_t attributes,
		   int64_t base_ts, char *err, size_t errlen)
{
	ch->off = x->out.len;
	int rc =
		rebuild(x, h, k, attributes, base_ts, &ch->max_ts, err, errlen);
	free(k->keep);
	if (rc < 0)
		return -1;
	ch->len = x->out.len - ch->off;
	ch->attributes = attributes;
	x->kept_bytes += ch->len;
	x->records_out += (uint64_t)k->kept;
	x->rewritten++;
	return add_change(x, ch);
}

/* The batch's header alone, no records, as Kafka's cleaner writes a batch
 * it must keep for its producer: offsets, producer fields and sequences
 * as they were, uncompressed, both timestamps its max timestamp. */
static int rewrite_empty(struct pass *x, const struct rb_header *h,
			 struct change *ch, char *err, size_t errlen)
{
	struct keep_ctx none = {
		.x = x, .h = h, .old_base_ts = h->BaseTimestamp};
	int16_t attributes =
		h->Attributes & ~RB_ATTR_CODEC_MASK & ~RB_ATTR_DELETE_HORIZON;
	return rewrite(x, h, &none, ch, attributes, h->MaxTimestamp, err,
		       errlen);
}

/* The batch stays as it is. */
static void keep_as_is(struct pass *x, size_t len, const struct rb_header *h)
{
	x->kept_bytes += len;
	x->records_out += (uint64_t)(h->RecordCount > 0 ? h->RecordCount : 0);
}

/* The delete horizon a batch made a tombstone now gets. */
static int64_t new_horizon(const struct pass *x)
{
	int64_t keep_ms = x->p->topic->cfg.delete_retention_ms;
	if (keep_ms < 0 || keep_ms > INT64_MAX / 2)
		keep_ms = INT64_MAX / 2;
	return x->now + keep_ms;
}

/* pid's transaction in this pass, NULL when out of memory. */
static struct txn_seen *txn_seen(struct pass *x, int64_t pid)
{
	for (size_t i = 0; i < x->ntxns; i++)
		if (x->txns[i].pid == pid)
			return &x->txns[i];
	if (x->ntxns == x->captxns) {
		size_t cap = x->captxns ? x->captxns * 2 : 8;
		struct txn_seen *n = realloc(x->txns, cap * sizeof(*n));
		if (!n)
			return NULL;
		x->txns = n;
		x->captxns = cap;
	}
	x->txns[x->ntxns] = (struct txn_seen){.pid = pid};
	return &x->txns[x->ntxns++];
}

/* A transaction's data batches come before its marker, so by the marker
 * the pass knows whether any stayed. */
static int clean_marker(struct pass *x, const uint8_t *data, size_t len,
			const struct rb_header *h, bool newest, char *err,
			size_t errlen)
{
	struct txn_seen *t = txn_seen(x, h->ProducerId);
	bool retained = !t || t->retained || x->txns_lost;
	if (t)
		t->retained = false; /* the producer's next transaction */
	bool has_horizon = (h->Attributes & RB_ATTR_DELETE_HORIZON) != 0;
	struct change ch = {.base = h->BaseOffset, .marker = true};
	if (retained || newest) {
		keep_as_is(x, len, h);
		return 0;
	}
	if (h->RecordCount <= 0 ||
	    (has_horizon && x->now >= h->BaseTimestamp)) {
		ch.deleted = true;
		x->deleted++;
		return add_change(x, &ch);
	}
	if (has_horizon) {
		keep_as_is(x, len, h);
		if (h->BaseTimestamp < x->next_horizon)
			x->next_horizon = h->BaseTimestamp;
		return 0;
	}
	/* Nothing of its transaction is left: from now on it waits out
	 * delete.retention.ms, as a tombstone does. */
	struct keep_ctx k = {
		.x = x, .h = h, .old_base_ts = h->BaseTimestamp, .horizon = -1};
	if (rb_foreach_record(data, len, &x->scratch, MAX_DECOMPRESSED,
			      keep_all, &k, err, errlen) < 0) {
		free(k.keep);
		if (k.failed)
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	int64_t horizon = new_horizon(x);
	if (horizon < x->next_horizon)
		x->next_horizon = horizon;
	return rewrite(x, h, &k, &ch, h->Attributes | RB_ATTR_DELETE_HORIZON,
		       horizon, err, errlen);
}

/* Whether h is its producer's newest batch in Postgres (a newer one may be
 * in a flush still, and the one before must stay until it commits). */
static bool producers_last(const struct st_partition *p,
			   const struct rb_header *h)
{
	const struct st_producer *e =
		h->ProducerId >= 0 ? st_producer_find(p, h->ProducerId) : NULL;
	for (int i = e ? e->n - 1 : -1; i >= 0; i--)
		if (e->b[i].base < p->hw)
			return e->b[i].base == h->BaseOffset;
	/* All it has written lately is in a flush still: which of its
	 * batches in Postgres is the newest is not known here, so none is
	 * deleted (emptied ones go at a later pass). */
	return e && e->n > 0;
}

static int clean_data(struct pass *x, const uint8_t *data, size_t len,
		      const struct rb_header *h, bool newest, char *err,
		      size_t errlen)
{
	struct change ch = {.base = h->BaseOffset};
	/* A producer's newest batch is never deleted, only emptied, as by
	 * Kafka's cleaner: producers' sequences are read back from the log
	 * at start-up and after a failed flush, and without it an idempotent
	 * producer's next batch was refused as out of order, fatally. */
	bool keep_empty = !newest && producers_last(x->p, h);
	if (keep_empty && h->RecordCount == 0) {
		keep_as_is(x, len, h); /* emptied already */
		return 0;
	}
	if ((h->Attributes & RB_ATTR_TRANSACTIONAL) && !newest &&
	    aborted(x->p, h->ProducerId, h->BaseOffset)) {
		if (keep_empty)
			return rewrite_empty(x, h, &ch, err, errlen);
		ch.deleted = true;
		x->deleted++;
		return add_change(x, &ch);
	}
	bool has_horizon = (h->Attributes & RB_ATTR_DELETE_HORIZON) != 0;
	struct keep_ctx k = {
		.x = x,
		.h = h,
		.old_base_ts = h->BaseTimestamp,
		.horizon = has_horizon ? h->BaseTimestamp : -1,
	};
	if (rb_foreach_record(data, len, &x->scratch, MAX_DECOMPRESSED,
			      keep_record, &k, err, errlen) < 0) {
		free(k.keep);
		if (k.failed)
			snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (k.kept == 0 && newest && h->RecordCount > 0) {
		/* The newest batch keeps its last record (an expired
		 * tombstone, or a keyless record from before the policy), as
		 * Kafka's active segment would: the log still ends at the
		 * high watermark, where a consumer reading to the end must
		 * get (a gap there would leave it short), not an empty
		 * batch.  A newer batch lets it go. */
		if (h->RecordCount == 1) {
			k.dropped = 0;
		} else {
			struct rb_record *one = malloc(sizeof(*one));
			if (!one) {
				free(k.keep);
				snprintf(err, errlen, "out of memory");
				return -1;
			}
			free(k.keep);
			*one = k.last;
			k.keep = one;
			k.nkeep = k.kept = 1;
		}
	}
	bool set_horizon = k.tombstones && !has_horizon;
	if (h->RecordCount == 0 && !newest) {
		/* An empty batch (Kafka's cleaner writes them, and so does
		 * this one for a producer) is no use below the newest once
		 * its producer wrote again. */
		free(k.keep);
		ch.deleted = true;
		x->deleted++;
		return add_change(x, &ch);
	}
	if (k.dropped == 0 && !set_horizon) {
		free(k.keep);
		keep_as_is(x, len, h);
		if (k.tombstones && has_horizon && !newest &&
		    k.horizon < x->next_horizon)
			x->next_horizon = k.horizon;
		return 0;
	}
	if (k.kept == 0 && keep_empty) {
		free(k.keep);
		return rewrite_empty(x, h, &ch, err, errlen);
	}
	if (k.kept == 0) {
		free(k.keep);
		ch.deleted = true;
		x->deleted++;
		return add_change(x, &ch);
	}
	int64_t base_ts = h->BaseTimestamp;
	int16_t attributes = h->Attributes;
	if (set_horizon) {
		base_ts = new_horizon(x);
		attributes |= RB_ATTR_DELETE_HORIZON;
	}
	if (k.tombstones && base_ts < x->next_horizon)
		x->next_horizon = base_ts;
	return rewrite(x, h, &k, &ch, attributes, base_ts, err, errlen);
}

static int clean_batch(struct pass *x, const uint8_t *data, size_t len,
		       const struct rb_header *h, char *err, size_t errlen)
{
	x->bytes_in += len;
	x->records_in += (uint64_t)h->RecordCount;
	bool newest = h->BaseOffset == x->last_base;
	if (h->Attributes & RB_ATTR_CONTROL)
		return clean_marker(x, data, len, h, newest, err, errlen);
	uint64_t deleted = x->deleted;
	if (clean_data(x, data, len, h, newest, err, errlen) < 0)
		return -1;
	if ((h->Attributes & RB_ATTR_TRANSACTIONAL) && x->deleted == deleted) {
		struct txn_seen *t = txn_seen(x, h->ProducerId);
		if (t)
			t->retained = true;
		else
			x->txns_lost = true;
	}
	return 0;
}

static void on_written(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct pass *x = arg;
	(void)res;
	(void)sqlstate;
	if (err) {
		pass_finish(x, err);
		return;
	}
	/* Committed: the cache must not serve the old bytes any more. */
	struct st_rewrite one, *rw = calloc(x->nchg, sizeof(*rw));
	for (size_t i = 0; i < x->nchg; i++) {
		struct st_rewrite *r = rw ? &rw[i] : &one;
		*r = (struct st_rewrite){
			.base = x->chg[i].base,
			.data = x->chg[i].deleted ? NULL
						  : x->out.buf + x->chg[i].off,
			.len = x->chg[i].len,
			.max_ts = x->chg[i].max_ts,
		};
		if (!rw) /* out of memory: one at a time */
			st_log_rewritten(x->c->s, x->p, r, 1);
	}
	if (rw)
		st_log_rewritten(x->c->s, x->p, rw, x->nchg);
	free(rw);
	for (size_t i = 0; i < x->nchg; i++)
		if (x->chg[i].deleted && x->chg[i].marker)
			st_aborted_forget(x->p, x->chg[i].base);
	x->nchg = 0;
	x->out.len = 0;
	if (pass_gone(x)) {
		pass_finish(x, "stopped");
		return;
	}
	if (x->cursor >= x->end) {
		pass_finish(x, NULL);
		return;
	}
	pass_read(x);
}

/* Statement results of a write unit: its sync callback has the outcome. */
static void ignore(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	(void)arg;
	(void)res;
	(void)err;
	(void)sqlstate;
}

/* Writes the chunk's changes in one transaction. */
static void write_changes(struct pass *x)
{
	struct pgconn *c = x->c->conn;
	char tid[16], part[16];
	snprintf(tid, sizeof(tid), "%d", x->p->topic->tid);
	snprintf(part, sizeof(part), "%d", x->p->index);
	struct kb_writer del = {0}, markers = {0};
	kb_write_raw(&del, "{", 1);
	kb_write_raw(&markers, "{", 1);
	size_t ndel = 0, nmarkers = 0;
	for (size_t i = 0; i < x->nchg; i++) {
		struct change *ch = &x->chg[i];
		char base[24];
		snprintf(base, sizeof(base), "%" PRId64, ch->base);
		if (ch->deleted) {
			if (ndel++)
				kb_write_raw(&del, ",", 1);
			kb_write_raw(&del, base, strlen(base));
			if (ch->marker) {
				if (nmarkers++)
					kb_write_raw(&markers, ",", 1);
				kb_write_raw(&markers, base, strlen(base));
			}
			continue;
		}
		char bytes[16], mts[24], attr[8];
		snprintf(bytes, sizeof(bytes), "%zu", ch->len);
		snprintf(mts, sizeof(mts), "%" PRId64, ch->max_ts);
		snprintf(attr, sizeof(attr), "%d", ch->attributes);
		const char *v[7] = {
			tid,   part, base, (const char *)x->out.buf + ch->off,
			bytes, mts,  attr};
		int lens[7] = {0, 0, 0, (int)ch->len, 0, 0, 0};
		int fmts[7] = {0, 0, 0, 1, 0, 0, 0};
		pg_query(c,
			 "UPDATE samsa.log SET batch = $4, bytes = $5, "
			 "max_timestamp = $6, attributes = $7 WHERE tid = $1 "
			 "AND partition = $2 AND base_offset = $3",
			 7, v, lens, fmts, false, ignore, NULL);
	}
	kb_write_raw(&del, "}", 2);
	kb_write_raw(&markers, "}", 2);
	bool ok = kb_writer_ok(&del) && kb_writer_ok(&markers);
	if (ndel && ok) {
		const char *v[3] = {tid, part, (const char *)del.buf};
		pg_query(c,
			 "DELETE FROM samsa.log WHERE tid = $1 AND partition "
			 "= $2 AND base_offset = ANY ($3::bigint[])",
			 3, v, NULL, NULL, false, ignore, NULL);
	}
	if (nmarkers && ok) {
		/* An abort marker's row of the aborted index goes with it. */
		const char *v[3] = {tid, part, (const char *)markers.buf};
		pg_query(c,
			 "DELETE FROM samsa.txn_aborted WHERE tid = $1 AND "
			 "partition = $2 AND last_offset = ANY ($3::bigint[])",
			 3, v, NULL, NULL, false, ignore, NULL);
	}
	kb_writer_free(&del);
	kb_writer_free(&markers);
	if (!ok) {
		/* Nothing was deleted: the unit must not commit half. */
		pg_query(c, "SELECT 1/0", 0, NULL, NULL, NULL, false, ignore,
			 NULL);
	}
	pg_sync_cb(c, on_written, x);
}

static void on_rows(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct pass *x = arg;
	char e[160];
	(void)sqlstate;
	if (!res) {
		pass_finish(x, err);
		return;
	}
	if (pass_gone(x)) {
		pass_finish(x, "stopped");
		return;
	}
	int n = PQntuples(res);
	bool stop = false, more = (size_t)n == x->rows_asked;
	uint64_t records = 0;
	for (int i = 0; i < n && !stop; i++) {
		const uint8_t *data = (const uint8_t *)PQgetvalue(res, i, 0);
		size_t len = (size_t)PQgetlength(res, i, 0);
		struct rb_header h;
		if (rb_read_header(data, len, &h) < 0) {
			pass_finish(x, "a stored batch is shorter than its "
				       "header");
			return;
		}
		if (records >= CHUNK_RECORDS) {
			/* Enough work for one turn of the loop: the rest is
			 * read again. */
			more = true;
			break;
		}
		records += (uint64_t)(h.RecordCount > 0 ? h.RecordCount : 1);
		x->seen_batches++;
		x->seen_records += (uint64_t)h.RecordCount;
		int rc;
		if (x->phase == 1) {
			rc = map_batch(x, data, len, &h, e, sizeof(e));
			if (rc == 1) {
				/* The map is full: clean up to here. */
				x->end = h.BaseOffset;
				stop = true;
				break;
			}
			x->dirty_scanned += len;
		} else {
			rc = clean_batch(x, data, len, &h, e, sizeof(e));
		}
		if (rc < 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "batch at %" PRId64 ": %s",
				 h.BaseOffset, e);
			pass_finish(x, msg);
			return;
		}
		x->cursor = h.BaseOffset + 1;
	}
	if (stop || !more)
		x->cursor = x->end;
	if (x->phase == 1) {
		if (x->cursor >= x->end) {
			x->phase = 2;
			x->cursor = 0;
		}
		pass_read(x);
		return;
	}
	if (x->nchg) {
		write_changes(x);
		return;
	}
	if (x->cursor >= x->end) {
		pass_finish(x, NULL);
		return;
	}
	pass_read(x);
}

/* The next chunk of [cursor, end) for the phase in hand. */
static void pass_read(struct pass *x)
{
	struct st_partition *p = x->p;
	size_t avg = p->avg_batch ? p->avg_batch : 16384;
	size_t rows = CHUNK_BYTES / avg + 1;
	if (x->seen_records > 0) {
		/* As many batches as CHUNK_RECORDS records take. */
		size_t per = (size_t)(x->seen_records / x->seen_batches) + 1;
		if (rows > CHUNK_RECORDS / per + 1)
			rows = CHUNK_RECORDS / per + 1;
	}
	if (rows < 4)
		rows = 4;
	if (rows > 1000)
		rows = 1000;
	x->rows_asked = rows;
	char tid[16], part[16], from[24], to[24], limit[16];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	snprintf(part, sizeof(part), "%d", p->index);
	snprintf(from, sizeof(from), "%" PRId64, x->cursor);
	snprintf(to, sizeof(to), "%" PRId64, x->end);
	snprintf(limit, sizeof(limit), "%zu", rows);
	const char *v[5] = {tid, part, from, to, limit};
	pg_query(x->c->conn,
		 "SELECT batch FROM samsa.log WHERE tid = $1 AND partition = "
		 "$2 AND base_offset >= $3 AND base_offset < $4 ORDER BY "
		 "base_offset LIMIT $5",
		 5, v, NULL, NULL, true, on_rows, x);
	pg_sync(x->c->conn);
}

static void on_last(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct pass *x = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1) {
		x->last_base = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		x->last_max_ts = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
	}
}

static void on_young(void *arg, const PGresult *res, const char *err,
		     const char *sqlstate)
{
	struct pass *x = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
		x->young = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
}

static void on_bounds(void *arg, const PGresult *res, const char *err,
		      const char *sqlstate)
{
	struct pass *x = arg;
	struct st_partition *p = x->p;
	const struct tc_values *cfg = &p->topic->cfg;
	(void)res;
	(void)sqlstate;
	if (err) {
		pass_finish(x, err);
		return;
	}
	if (pass_gone(x) || x->last_base < 0) {
		pass_finish(x, NULL);
		return;
	}
	int64_t end = x->lso;
	if (x->last_base < end && cfg->segment_ms >= 0 &&
	    x->now - x->last_max_ts < cfg->segment_ms)
		end = x->last_base; /* the "active segment" */
	if (x->young >= 0 && x->young < end)
		end = x->young;
	x->end = end;
	x->dirty_from = p->clean.cleaned ? p->clean.first_dirty : 0;
	if (x->dirty_from > end)
		x->dirty_from = end;
	if (x->dirty_from < p->log_start && p->log_start < end)
		x->dirty_from = p->log_start;
	bool dirty = x->dirty_from < end && end > p->log_start;
	bool expired = p->clean.next_horizon <= x->now;
	if (!dirty && !expired) {
		pass_finish(x, NULL);
		return;
	}
	x->phase = dirty ? 1 : 2;
	x->cursor = dirty ? x->dirty_from : 0;
	pass_read(x);
}

static void pass_start(struct st_cleaner *c, struct st_partition *p)
{
	struct pass *x = calloc(1, sizeof(*x));
	if (!x)
		return;
	x->c = c;
	x->p = p;
	x->now = x->started = st_now_ms();
	x->lso = st_last_stable(p);
	x->last_base = -1;
	x->young = -1;
	x->next_horizon = INT64_MAX;
	c->pass = x;
	char tid[16], part[16], from[24], cutoff[24];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	snprintf(part, sizeof(part), "%d", p->index);
	const char *v[4] = {tid, part, from, cutoff};
	pg_query(c->conn,
		 "SELECT base_offset, max_timestamp FROM samsa.log WHERE tid "
		 "= $1 AND partition = $2 ORDER BY base_offset DESC LIMIT 1",
		 2, v, NULL, NULL, false, on_last, x);
	int64_t lag = p->topic->cfg.min_compaction_lag_ms;
	if (lag > 0) {
		snprintf(from, sizeof(from), "%" PRId64,
			 p->clean.cleaned ? p->clean.first_dirty : 0);
		snprintf(cutoff, sizeof(cutoff), "%" PRId64, x->now - lag);
		pg_query(c->conn,
			 "SELECT min(base_offset) FROM samsa.log WHERE tid = "
			 "$1 AND partition = $2 AND base_offset >= $3 AND "
			 "max_timestamp > $4",
			 4, v, NULL, NULL, false, on_young, x);
	}
	pg_sync_cb(c->conn, on_bounds, x);
}

/* --- the timer ---------------------------------------------------------- */

/*
 * How much p wants a pass: < 0 not at all, 2 most.  For one whose last
 * pass found nothing cleanable (its newest batch, the lag, an open
 * transaction held everything back) only what was appended since counts
 * as dirty, as Kafka's cleaner counts only cleanable bytes; with nothing
 * new it is looked at again (for time to have freed something) only when
 * no other partition is due.  So partitions waiting on time cannot take
 * every pass from those with work.
 */
static double due(const struct st_partition *p, int64_t now)
{
	const struct tc_values *cfg = &p->topic->cfg;
	if (p->deleted || p->reloading || now < p->clean.backoff_until ||
	    p->hw == p->log_start)
		return -1;
	if (p->clean.idle) {
		size_t seen = p->clean.idle_dirty, dirty = p->clean.dirty_bytes;
		double fresh = dirty > seen ? (double)(dirty - seen) : 0;
		double ratio = fresh / (double)(dirty + p->clean.clean_bytes);
		return ratio >= cfg->min_cleanable_dirty_ratio && fresh > 0
			       ? ratio
			       : 0;
	}
	if (!p->clean.cleaned || p->clean.next_horizon <= now)
		return 2;
	size_t dirty = p->clean.dirty_bytes;
	if (dirty == 0)
		return -1;
	if (cfg->max_compaction_lag_ms >= 0 &&
	    now - p->clean.first_dirty_ts >= cfg->max_compaction_lag_ms)
		return 2;
	double ratio = (double)dirty / (double)(dirty + p->clean.clean_bytes);
	return ratio >= cfg->min_cleanable_dirty_ratio ? ratio : -1;
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct st_cleaner *c = arg;
	(void)fd;
	(void)what;
	if (c->pass || !pg_ready(c->conn))
		return;
	struct store *s = c->s;
	int64_t now = st_now_ms();
	struct st_partition *best = NULL;
	double best_due = -1;
	for (size_t i = 0; i < s->ntopics; i++) {
		struct st_topic *t = s->topics[i];
		if (!t->cfg.compact)
			continue;
		for (int32_t j = 0; j < t->npartitions; j++) {
			/* Of equals, the one waiting longest. */
			struct st_partition *p = t->partitions[j];
			double d = due(p, now);
			if (d >= 0 && (d > best_due ||
				       (d == best_due &&
					p->clean.backoff_until <
						best->clean.backoff_until))) {
				best_due = d;
				best = p;
			}
		}
	}
	if (best)
		pass_start(c, best);
}

int st_cleaner_start(struct store *s)
{
	struct st_cleaner *c = calloc(1, sizeof(*c));
	if (!c)
		return -1;
	c->s = s;
	c->conn = pg_open(s->base, s->conninfo, "cleaner", NULL, NULL);
	c->tick = event_new(s->base, -1, EV_PERSIST, tick, c);
	if (!c->conn || !c->tick) {
		if (c->conn)
			pg_close(c->conn);
		if (c->tick)
			event_free(c->tick);
		free(c);
		return -1;
	}
	struct timeval tv = {TICK_MS / 1000, (TICK_MS % 1000) * 1000};
	event_add(c->tick, &tv);
	s->cleaner = c;
	return 0;
}

void st_cleaner_close(struct store *s)
{
	struct st_cleaner *c = s->cleaner;
	if (!c)
		return;
	c->closing = true;
	event_free(c->tick);
	/* A pass in flight ends in its callbacks, run by pg_close. */
	pg_close(c->conn);
	if (c->pass)
		pass_free(c->pass);
	free(c);
	s->cleaner = NULL;
}
