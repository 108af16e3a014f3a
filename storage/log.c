/*
 * log: partitions, their appends (group commit), tail cache, reads and
 * producer state.
 *
 * Offsets are assigned in memory when a batch arrives (samsa leads the
 * partition), the batch waits in the store's queue, and one flush at a time
 * writes every queued batch and the partitions' new ends in one transaction.
 * When a flush fails, the in-memory state of the partitions it touched is no
 * longer known to match Postgres (the COMMIT may or may not have happened):
 * they refuse appends until their state is read back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "protocol/compress.h"
#include "protocol/record_batch.h"
#include "storage/store_int.h"

/* A flush takes at most this much, so a transaction stays reasonable. */
#define FLUSH_MAX_BYTES (64u << 20)
/* Produce is refused (retriable) while this much waits for a flush: a
 * Postgres that hangs must not make samsa hold every retry in memory. */
#define QUEUE_MAX_BYTES (256u << 20)

int32_t st_partition_index(const struct st_partition *p)
{
	return p->index;
}
struct st_topic *st_partition_topic(const struct st_partition *p)
{
	return p->topic;
}
int64_t st_high_watermark(const struct st_partition *p)
{
	return p->hw;
}
int64_t st_log_start(const struct st_partition *p)
{
	return p->log_start;
}
bool st_partition_deleted(const struct st_partition *p)
{
	return p->deleted;
}

int32_t st_leader_epoch(const struct st_partition *p)
{
	return p->leader_epoch;
}

struct st_partition *st_partition_new(struct st_topic *t, int32_t index)
{
	struct st_partition *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->topic = t;
	p->index = index;
	p->waiters.next = p->waiters.prev = &p->waiters;
	p->ra_waiters.next = p->ra_waiters.prev = &p->ra_waiters;
	p->clean.next_horizon = INT64_MAX;
	return p;
}

/* --- tail cache --------------------------------------------------------- */

static struct st_batch *ring_at(const struct st_partition *p, size_t i)
{
	return p->ring[(p->ring_head + i) % p->ring_cap];
}

/*
 * The tail cache keeps the batches appended last, up to the store's total,
 * as a page cache would: when it is full, the partition that appended
 * least recently gives up its oldest batches first.  Every partition keeps
 * its newest batch, so that consumers at the head never wait on Postgres:
 * the list holds only partitions with two batches or more, least recently
 * appended first.
 */
static void evictable_unlink(struct store *s, struct st_partition *p)
{
	if (!p->evictable)
		return;
	if (p->evict_prev)
		p->evict_prev->evict_next = p->evict_next;
	else
		s->evict_head = p->evict_next;
	if (p->evict_next)
		p->evict_next->evict_prev = p->evict_prev;
	else
		s->evict_tail = p->evict_prev;
	p->evict_prev = p->evict_next = NULL;
	p->evictable = false;
}

/* To the back of the list (just appended), when it has batches to spare. */
static void evictable_touch(struct store *s, struct st_partition *p)
{
	evictable_unlink(s, p);
	if (p->ring_count < 2)
		return;
	p->evict_prev = s->evict_tail;
	if (s->evict_tail)
		s->evict_tail->evict_next = p;
	else
		s->evict_head = p;
	s->evict_tail = p;
	p->evictable = true;
}

/* s may be NULL at close, when nobody counts any more. */
static void ring_pop(struct store *s, struct st_partition *p)
{
	struct st_batch *b = ring_at(p, 0);
	p->cache_bytes -= b->len;
	p->ring_head = (p->ring_head + 1) % p->ring_cap;
	p->ring_count--;
	if (s) {
		s->cache_bytes -= b->len;
		if (p->ring_count < 2)
			evictable_unlink(s, p);
	}
	free(b);
}

static void cache_clear(struct store *s, struct st_partition *p)
{
	while (p->ring_count)
		ring_pop(s, p);
}

/* Takes ownership of b. */
static void cache_push(struct store *s, struct st_partition *p,
		       struct st_batch *b)
{
	if (p->ring_count == p->ring_cap) {
		size_t cap = p->ring_cap ? p->ring_cap * 2 : 16;
		struct st_batch **r = malloc(cap * sizeof(*r));
		if (!r) {
			free(b);
			cache_clear(s, p);
			return;
		}
		for (size_t i = 0; i < p->ring_count; i++)
			r[i] = ring_at(p, i);
		free(p->ring);
		p->ring = r;
		p->ring_cap = cap;
		p->ring_head = 0;
	}
	p->ring[(p->ring_head + p->ring_count++) % p->ring_cap] = b;
	p->cache_bytes += b->len;
	s->cache_bytes += b->len;
	p->avg_batch = p->avg_batch ? (p->avg_batch * 7 + b->len) / 8 : b->len;
	evictable_touch(s, p);
	while (s->cache_bytes > s->opts.cache_bytes && s->evict_head)
		ring_pop(s, s->evict_head);
}

static void ra_clear(struct store *s, struct st_partition *p)
{
	for (size_t i = 0; i < p->ra_count; i++)
		free(p->ra[i]);
	free(p->ra);
	if (s)
		s->ra_total -= p->ra_bytes;
	p->ra = NULL;
	p->ra_count = 0;
	p->ra_bytes = 0;
}

static void pmap_clear(struct st_producer_map *m);

void st_partition_free(struct st_partition *p)
{
	if (!p)
		return;
	cache_clear(NULL, p);
	ra_clear(NULL, p);
	free(p->ring);
	while (p->txns) {
		struct st_open_txn *n = p->txns->next;
		free(p->txns);
		p->txns = n;
	}
	free(p->aborted);
	pmap_clear(&p->producers);
	free(p);
}

/* Batches oldest first, in a ring or (head 0, cap = count) an array. */
struct batch_run {
	struct st_batch *const *arr;
	size_t head, cap, count;
};

static struct st_batch *run_at(const struct batch_run *r, size_t i)
{
	return r->arr[(r->head + i) % r->cap];
}

/* Whole batches of r from the one holding offset, up to max_bytes (the
 * first always), into out with one allocation (answers are megabytes);
 * -1 when offset is not inside r. */
static long serve(const struct batch_run *r, int64_t offset, int32_t max_bytes,
		  struct kb_writer *out)
{
	if (r->count == 0 || offset < run_at(r, 0)->base ||
	    offset > run_at(r, r->count - 1)->last)
		return -1;
	size_t lo = 0, hi = r->count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (run_at(r, mid)->last < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	long len = 0;
	for (hi = lo; hi < r->count; hi++) {
		long n = (long)run_at(r, hi)->len;
		if (len > 0 && len + n > max_bytes)
			break;
		len += n;
	}
	if (!out)
		return len;
	kb_writer_reserve(out, (size_t)len);
	for (size_t i = lo; i < hi; i++)
		kb_write_raw(out, run_at(r, i)->data, run_at(r, i)->len);
	return len;
}

static long serve_array(struct st_batch *const *arr, size_t n, int64_t offset,
			int32_t max_bytes, struct kb_writer *out)
{
	struct batch_run r = {arr, 0, n ? n : 1, n};
	return serve(&r, offset, max_bytes, out);
}

long st_read_cached(struct st_partition *p, int64_t offset, int32_t max_bytes,
		    struct kb_writer *out)
{
	if (offset >= p->hw)
		return 0;
	if (p->ring_count == 0 || offset < ring_at(p, 0)->base)
		return serve_array(p->ra, p->ra_count, offset, max_bytes, out);
	struct batch_run r = {p->ring, p->ring_head, p->ring_cap,
			      p->ring_count};
	return serve(&r, offset, max_bytes, out);
}

void st_log_rewritten(struct store *s, struct st_partition *p,
		      const struct st_rewrite *rw, size_t n)
{
	/* Reads sent before the rewrite may bring the old bytes back: they
	 * answer their fetch (a consistent snapshot) but are not kept. */
	p->read_gen++;
	ra_clear(s, p);
	if (p->ring_count == 0 || n == 0)
		return;
	/* Both sorted by base offset: one walk rebuilds the ring in place,
	 * newer batches (appended meanwhile) untouched. */
	size_t j = 0, out = 0, count = p->ring_count;
	bool failed = false;
	for (size_t i = 0; i < count; i++) {
		struct st_batch *b = ring_at(p, i);
		while (j < n && rw[j].base < b->base)
			j++;
		if (j < n && rw[j].base == b->base) {
			struct st_batch *nb =
				rw[j].data ? malloc(sizeof(*nb) + rw[j].len)
					   : NULL;
			if (rw[j].data && !nb) {
				/* Stale bytes must not stay: the whole
				 * cache goes below. */
				failed = true;
			} else {
				p->cache_bytes -= b->len;
				s->cache_bytes -= b->len;
				if (nb) {
					*nb = *b;
					memcpy(nb->data, rw[j].data, rw[j].len);
					nb->len = rw[j].len;
					nb->max_ts = rw[j].max_ts;
					p->cache_bytes += nb->len;
					s->cache_bytes += nb->len;
				}
				free(b);
				b = nb;
			}
		}
		if (b)
			p->ring[(p->ring_head + out++) % p->ring_cap] = b;
	}
	p->ring_count = out;
	if (out < 2)
		evictable_unlink(s, p);
	if (failed)
		cache_clear(s, p);
}

/* --- waiters -------------------------------------------------------------- */

static void wait_on(struct st_waiter *head, struct st_partition *p,
		    struct st_waiter *w)
{
	w->p = p;
	w->next = head;
	w->prev = head->prev;
	head->prev->next = w;
	head->prev = w;
}

void st_wait(struct st_partition *p, struct st_waiter *w)
{
	wait_on(&p->waiters, p, w);
}

void st_wait_read_ahead(struct st_partition *p, struct st_waiter *w)
{
	wait_on(&p->ra_waiters, p, w);
}

void st_wait_cancel(struct st_waiter *w)
{
	if (!w->p)
		return;
	w->prev->next = w->next;
	w->next->prev = w->prev;
	w->next = w->prev = NULL;
	w->p = NULL;
}

/* Tells everyone on head's list once: a waiter that waits again from its
 * callback is told at the next wake-up, not again in this one. */
static void wake_list(struct st_waiter *head)
{
	if (head->next == head)
		return;
	struct st_waiter now = {.next = head->next, .prev = head->prev};
	now.next->prev = now.prev->next = &now;
	head->next = head->prev = head;
	while (now.next != &now) {
		struct st_waiter *w = now.next;
		st_wait_cancel(w);
		w->fn(w->arg);
	}
}

static void wake(struct st_partition *p)
{
	wake_list(&p->waiters);
}

/* --- producer state --------------------------------------------------------
 */

static size_t pmap_slot(int64_t id, size_t cap)
{
	/* Fibonacci hashing: producer ids are sequential. */
	return (size_t)(((uint64_t)id * 0x9E3779B97F4A7C15ull) >> 32) &
	       (cap - 1);
}

struct st_producer *st_producer_find(const struct st_partition *p, int64_t id)
{
	const struct st_producer_map *m = &p->producers;
	if (!m->cap)
		return NULL;
	for (size_t i = pmap_slot(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
		if (!m->slots[i])
			return NULL;
		if (m->slots[i]->id == id)
			return m->slots[i];
	}
}

/* Puts e (not in the map) into slots[0..cap), which has a free slot. */
static void pmap_place(struct st_producer **slots, size_t cap,
		       struct st_producer *e)
{
	size_t i = pmap_slot(e->id, cap);
	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

/* Rehashes m into cap slots (a power of two above its count); -1 when out
 * of memory, m unchanged. */
static int pmap_resize(struct st_producer_map *m, size_t cap)
{
	struct st_producer **slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -1;
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i])
			pmap_place(slots, cap, m->slots[i]);
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return 0;
}

/* Takes ownership of e (whose id is not in the map); -1 when out of
 * memory, e not taken. */
static int pmap_add(struct st_producer_map *m, struct st_producer *e)
{
	if ((m->count + 1) * 2 > m->cap &&
	    pmap_resize(m, m->cap ? m->cap * 2 : 16) < 0)
		return -1;
	pmap_place(m->slots, m->cap, e);
	m->count++;
	return 0;
}

/* Frees every entry and the slots: m is empty again. */
static void pmap_clear(struct st_producer_map *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i]);
	free(m->slots);
	*m = (struct st_producer_map){0};
}

/* The entry for id, made empty (epoch -1, no batches) when p has none;
 * NULL when out of memory. */
static struct st_producer *producer_get(struct st_partition *p, int64_t id)
{
	struct st_producer *e = st_producer_find(p, id);
	if (e)
		return e;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->id = id;
	e->epoch = -1;
	if (pmap_add(&p->producers, e) < 0) {
		free(e);
		return NULL;
	}
	return e;
}

static void producer_record(struct st_partition *p, int64_t id, int16_t epoch,
			    int32_t first_seq, int32_t count, int64_t base,
			    int64_t last, int64_t ts)
{
	struct st_producer *e = producer_get(p, id);
	if (!e)
		return;
	if (e->epoch != epoch)
		e->n = 0;
	e->epoch = epoch;
	e->last_ts = ts;
	if (e->n == ST_PRODUCER_BATCHES) {
		memmove(&e->b[0], &e->b[1], sizeof(e->b[0]) * (e->n - 1));
		e->n--;
	}
	e->b[e->n].first_seq = first_seq;
	e->b[e->n].last_seq = (int32_t)(((int64_t)first_seq + count - 1) %
					((int64_t)INT32_MAX + 1));
	e->b[e->n].base = base;
	e->b[e->n].last = last;
	e->n++;
}

static struct st_open_txn *txn_find(const struct st_partition *p, int64_t pid);

/* Kafka's isProducerExpired: written last at or before cutoff, no
 * transaction open on p (compared so that no client timestamp overflows). */
static bool producer_expired(const struct st_partition *p,
			     const struct st_producer *e, int64_t cutoff)
{
	return e->last_ts <= cutoff && !txn_find(p, e->id);
}

/*
 * Forgets p's producers whose last write is expiry_ms or more before now,
 * unless a transaction of theirs is open on p (joined, written or ending):
 * Kafka never expires a producer with an ongoing transaction.  The
 * survivors move to a fresh table sized for them; out of memory, nothing is
 * forgotten this time.  Returns how many went.
 */
static size_t producers_expire(struct st_partition *p, int64_t now,
			       int64_t expiry_ms)
{
	struct st_producer_map *m = &p->producers;
	size_t gone = 0;
	for (size_t i = 0; i < m->cap; i++) {
		struct st_producer *e = m->slots[i];
		if (e && producer_expired(p, e, now - expiry_ms))
			gone++;
	}
	if (!gone)
		return 0;
	size_t keep = m->count - gone, cap = 16;
	while (keep * 2 > cap)
		cap *= 2;
	struct st_producer **slots = keep ? calloc(cap, sizeof(*slots)) : NULL;
	if (keep && !slots)
		return 0;
	for (size_t i = 0; i < m->cap; i++) {
		struct st_producer *e = m->slots[i];
		if (!e)
			continue;
		if (producer_expired(p, e, now - expiry_ms))
			free(e);
		else
			pmap_place(slots, cap, e);
	}
	free(m->slots);
	m->slots = slots;
	m->cap = keep ? cap : 0;
	m->count = keep;
	return gone;
}

void st_expire_producers(struct store *s, int64_t now)
{
	int64_t expiry = bc_get_int("producer.id.expiration.ms", 86400000);
	size_t gone = 0;
	for (size_t i = 0; i < s->ntopics; i++) {
		struct st_topic *t = s->topics[i];
		for (int32_t j = 0; j < t->npartitions; j++)
			if (!t->partitions[j]->deleted)
				gone += producers_expire(t->partitions[j], now,
							 expiry);
	}
	if (gone)
		fprintf(stderr,
			"samsa: forgot %zu producer state entr%s idle for "
			"producer.id.expiration.ms (%" PRId64 ")\n",
			gone, gone == 1 ? "y" : "ies", expiry);
}

/*
 * Kafka's checks (ProducerAppendInfo): older epoch fenced, a new epoch starts
 * at sequence 0, the same epoch continues at last+1; a repeat of one of the
 * last five batches is a duplicate whose original offsets are returned.
 */
static enum st_status producer_check(struct st_partition *p,
				     const struct rb_header *h,
				     int64_t *dup_base)
{
	struct st_producer *e = st_producer_find(p, h->ProducerId);
	*dup_base = -1;
	/* Unknown (new, or forgotten after producer.id.expiration.ms): any
	 * sequence is taken, as Kafka does for a producer without state. */
	if (!e || e->epoch < 0)
		return ST_OK;
	if (h->ProducerEpoch < e->epoch)
		return ST_BAD_EPOCH;
	/* A new epoch starts at 0, also one a marker raised with no batch
	 * yet (n == 0), as Kafka's ProducerStateManager checks. */
	if (h->ProducerEpoch > e->epoch || e->n == 0)
		return h->BaseSequence == 0 ? ST_OK : ST_OUT_OF_ORDER;
	int32_t last_seq =
		(int32_t)(((int64_t)h->BaseSequence + h->LastOffsetDelta) %
			  ((int64_t)INT32_MAX + 1));
	for (int i = 0; i < e->n; i++) {
		if (e->b[i].first_seq == h->BaseSequence &&
		    e->b[i].last_seq == last_seq) {
			*dup_base = e->b[i].base;
			return ST_OK;
		}
	}
	int32_t expect = e->b[e->n - 1].last_seq == INT32_MAX
				 ? 0
				 : e->b[e->n - 1].last_seq + 1;
	return h->BaseSequence == expect ? ST_OK : ST_OUT_OF_ORDER;
}

/* --- transactions on the partition -----------------------------------------
 */

static struct st_open_txn *txn_find(const struct st_partition *p, int64_t pid)
{
	for (struct st_open_txn *o = p->txns; o; o = o->next)
		if (o->pid == pid)
			return o;
	return NULL;
}

static void txn_forget(struct st_partition *p, int64_t pid)
{
	for (struct st_open_txn **pp = &p->txns; *pp; pp = &(*pp)->next) {
		if ((*pp)->pid == pid) {
			struct st_open_txn *o = *pp;
			*pp = o->next;
			free(o);
			return;
		}
	}
}

/* first == -1: joined, nothing written yet. */
static struct st_open_txn *txn_open(struct st_partition *p, int64_t pid,
				    int16_t epoch, int64_t first)
{
	struct st_open_txn *o = txn_find(p, pid);
	if (!o) {
		o = calloc(1, sizeof(*o));
		if (!o)
			return NULL;
		o->pid = pid;
		o->first = first;
		o->next = p->txns;
		p->txns = o;
	}
	if (epoch > o->epoch)
		o->epoch = epoch;
	if (o->first < 0 || (first >= 0 && first < o->first))
		o->first = first;
	return o;
}

/*
 * Kafka's transactional rules for one batch: a transactional batch needs the
 * partition added to its producer's transaction (at that epoch, before the
 * marker is on its way); a plain batch may not join an open transaction.
 */
static enum st_status txn_check(const struct st_partition *p,
				const struct rb_header *h)
{
	const struct st_open_txn *o = txn_find(p, h->ProducerId);
	if (!(h->Attributes & RB_ATTR_TRANSACTIONAL))
		return o ? ST_TXN_STATE : ST_OK;
	if (!o) {
		const struct st_producer *e =
			st_producer_find(p, h->ProducerId);
		return e && h->ProducerEpoch < e->epoch ? ST_BAD_EPOCH
							: ST_TXN_STATE;
	}
	if (h->ProducerEpoch < o->epoch)
		return ST_BAD_EPOCH;
	if (h->ProducerEpoch > o->epoch || o->ending)
		return ST_TXN_STATE;
	return ST_OK;
}

/* A marker committed at ts: the producer's epoch is at least the
 * marker's. */
static void producer_bump(struct st_partition *p, int64_t pid, int16_t epoch,
			  int64_t ts)
{
	struct st_producer *e = producer_get(p, pid);
	if (!e)
		return;
	e->last_ts = ts;
	if (epoch > e->epoch) {
		e->epoch = epoch;
		e->n = 0;
	}
}

static void aborted_add(struct st_partition *p, int64_t pid, int64_t first,
			int64_t last)
{
	if (p->naborted == p->cap_aborted) {
		size_t cap = p->cap_aborted ? p->cap_aborted * 2 : 16;
		struct st_aborted_txn *n =
			realloc(p->aborted, cap * sizeof(*n));
		if (!n)
			return;
		p->aborted = n;
		p->cap_aborted = cap;
	}
	p->aborted[p->naborted++] = (struct st_aborted_txn){
		.pid = pid, .first = first, .last = last};
}

/*
 * Drops the aborted transactions that end below the log start: a fetch
 * never starts there, so they can never be listed again (Kafka deletes
 * their index with the segment).  Postgres loses them with the same move
 * of the log start (aborted_trim_sql).
 */
static void aborted_trim(struct st_partition *p)
{
	size_t k = 0;
	while (k < p->naborted && p->aborted[k].last < p->log_start)
		k++;
	if (!k)
		return;
	p->naborted -= k;
	memmove(p->aborted, p->aborted + k, p->naborted * sizeof(*p->aborted));
	if (p->cap_aborted > 16 && p->naborted < p->cap_aborted / 4) {
		size_t cap = p->cap_aborted / 2;
		struct st_aborted_txn *n =
			realloc(p->aborted, cap * sizeof(*n));
		if (n) {
			p->aborted = n;
			p->cap_aborted = cap;
		}
	}
}

size_t st_aborted_from(const struct st_partition *p, int64_t offset)
{
	size_t lo = 0, hi = p->naborted;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->aborted[mid].last < offset)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void st_aborted_forget(struct st_partition *p, int64_t last)
{
	size_t i = st_aborted_from(p, last);
	if (i == p->naborted || p->aborted[i].last != last)
		return;
	p->naborted--;
	memmove(p->aborted + i, p->aborted + i + 1,
		(p->naborted - i) * sizeof(*p->aborted));
}

/* The same in Postgres, for partition ($1, $2) after its log start moved. */
static const char aborted_trim_sql[] =
	"DELETE FROM samsa.txn_aborted a USING samsa.partitions p WHERE "
	"a.tid = $1 AND a.partition = $2 AND p.tid = $1 AND p.partition = $2 "
	"AND a.last_offset < p.log_start_offset";

/* The marker batch b of p is committed. */
static void txn_marker_done(struct st_partition *p, const struct st_batch *b)
{
	txn_forget(p, b->producer_id);
	producer_bump(p, b->producer_id, b->producer_epoch, b->max_ts);
	if (b->marker == ST_MARKER_ABORT && b->txn_first >= 0)
		aborted_add(p, b->producer_id, b->txn_first, b->base);
}

int64_t st_last_stable(const struct st_partition *p)
{
	int64_t lso = p->hw;
	for (const struct st_open_txn *o = p->txns; o; o = o->next)
		if (o->first >= 0 && o->first < lso)
			lso = o->first;
	/* Retention or DeleteRecords may have taken an open transaction's
	 * first batch: as Kafka, never below the log start. */
	return lso > p->log_start ? lso : p->log_start;
}

int st_aborted_txns(const struct st_partition *p, int64_t from, int64_t to,
		    void (*fn)(void *arg, int64_t producer_id,
			       int64_t first_offset),
		    void *arg)
{
	int n = 0;
	for (size_t i = st_aborted_from(p, from); i < p->naborted; i++) {
		if (p->aborted[i].first < to) {
			fn(arg, p->aborted[i].pid, p->aborted[i].first);
			n++;
		}
	}
	return n;
}

void st_txn_join(struct st_partition *p, int64_t producer_id, int16_t epoch)
{
	struct st_open_txn *o = txn_open(p, producer_id, epoch, -1);
	if (o && epoch >= o->epoch)
		o->ending = false;
}

void st_producers_each(const struct st_partition *p,
		       void (*fn)(void *arg, const struct st_producer_info *i),
		       void *arg)
{
	for (size_t k = 0; k < p->producers.cap; k++) {
		const struct st_producer *e = p->producers.slots[k];
		if (!e)
			continue;
		const struct st_open_txn *o = txn_find(p, e->id);
		struct st_producer_info i = {
			.producer_id = e->id,
			.epoch = e->epoch,
			.last_sequence = e->n ? e->b[e->n - 1].last_seq : -1,
			.last_timestamp = e->last_ts,
			.txn_start = o ? o->first : -1,
		};
		fn(arg, &i);
	}
}

/* --- appends -----------------------------------------------------------------
 */

static void append_free(struct st_append *a)
{
	for (int i = 0; i < a->nbatches; i++)
		free(a->batches[i]);
	free(a->batches);
	free(a);
}

struct deferred_result {
	struct st_append_result r;
	st_append_cb cb;
	void *arg;
	char msg[160];
};

static void fire_result(void *arg)
{
	struct deferred_result *d = arg;
	d->r.message = d->msg[0] ? d->msg : NULL;
	d->cb(d->arg, &d->r);
	free(d);
}

static void result_soon(struct store *s, st_append_cb cb, void *arg,
			enum st_status st, int64_t base, int64_t log_start,
			const char *msg)
{
	struct deferred_result *d = calloc(1, sizeof(*d));
	if (!d)
		return;
	d->r.status = st;
	d->r.base_offset = base;
	d->r.log_append_time = -1;
	d->r.log_start_offset = log_start;
	d->cb = cb;
	d->arg = arg;
	if (msg)
		snprintf(d->msg, sizeof(d->msg), "%s", msg);
	st_defer(s, fire_result, d);
}

struct split_ctx {
	struct st_append *a;
	struct st_topic *t;
	char err[128];
	enum st_status st;
	size_t *inflate_left;	       /* what the request may decompress */
	int64_t now;		       /* the broker's clock, ms */
	struct kb_writer scratch;      /* decompressed records */
	struct kb_writer recompressed; /* the batch in the topic's codec */
};

/* The most a batch's records may decompress to. */
#define MAX_RECORDS_BYTES (64u << 20)

/* A batch over the topic's max.message.bytes sets x's error. */
static bool too_large(struct split_ctx *x, size_t len)
{
	if (x->t->cfg.max_message_bytes < 0 ||
	    len <= (size_t)x->t->cfg.max_message_bytes)
		return false;
	snprintf(x->err, sizeof(x->err),
		 "batch of %zu bytes over max.message.bytes %d", len,
		 x->t->cfg.max_message_bytes);
	x->st = ST_TOO_LARGE;
	return true;
}

/*
 * The newest record timestamp of a CreateTime batch whose records' are
 * within message.timestamp.{before,after}.max.ms of the clock, as Kafka's
 * LogValidator checks them (NO_TIMESTAMP, -1, is never out of range); false
 * with x's error set otherwise.
 */
static bool timestamps_ok(struct split_ctx *x, const struct rb_header *h,
			  const struct rb_stats *st, int64_t *max_ts)
{
	int64_t lo, hi;
	if (__builtin_add_overflow(h->BaseTimestamp, st->min_ts_delta, &lo) ||
	    __builtin_add_overflow(h->BaseTimestamp, st->max_ts_delta, &hi)) {
		snprintf(x->err, sizeof(x->err), "record timestamp overflows");
		x->st = ST_INVALID;
		return false;
	}
	*max_ts = hi;
	const struct tc_values *c = &x->t->cfg;
	int64_t bad = INT64_MIN;
	if (hi > x->now && (uint64_t)hi - (uint64_t)x->now >
				   (uint64_t)c->timestamp_after_max_ms)
		bad = hi;
	else if (lo != -1 && lo < x->now &&
		 (uint64_t)x->now - (uint64_t)lo >
			 (uint64_t)c->timestamp_before_max_ms)
		bad = lo;
	if (bad == INT64_MIN)
		return true;
	snprintf(x->err, sizeof(x->err),
		 "timestamp %" PRId64 " is out of range: it should be within "
		 "[now - %" PRId64 ", now + %" PRId64 "] ms",
		 bad, c->timestamp_before_max_ms, c->timestamp_after_max_ms);
	x->st = ST_BAD_TIMESTAMP;
	return false;
}

/*
 * Reads every record of the batch, as Kafka's LogValidator does, so that no
 * batch a consumer cannot read past is stored; with compression.type other
 * than "producer", recompresses it into x->recompressed.  Decompressing
 * draws on the request's budget.  false with x's error set.
 */
static bool records_ok(struct split_ctx *x, const uint8_t *data, size_t len,
		       bool compressed, int codec, struct rb_stats *st)
{
	size_t limit = *x->inflate_left < MAX_RECORDS_BYTES ? *x->inflate_left
							    : MAX_RECORDS_BYTES;
	char e[96];
	x->recompressed.len = 0;
	x->scratch.len = 0;
	int rc = codec >= 0 ? rb_recompress(data, len, codec,
					    tc_level(&x->t->cfg, codec),
					    &x->scratch, limit, st,
					    &x->recompressed, e, sizeof(e))
			    : rb_check_records(data, len, &x->scratch, limit,
					       st, e, sizeof(e));
	/* A batch refused cost what came out before it failed, which its
	 * rollback hides: charged the limit, so that bombs cannot repeat. */
	size_t spent = rc < 0 && compressed ? limit : x->scratch.len;
	*x->inflate_left -= spent < *x->inflate_left ? spent : *x->inflate_left;
	if (rc == KC_TOO_BIG && limit < MAX_RECORDS_BYTES) {
		/* MESSAGE_TOO_LARGE: the Java producer splits the batch. */
		snprintf(x->err, sizeof(x->err),
			 "records decompress to more than this request may "
			 "take (%zu bytes)",
			 limit);
		x->st = ST_TOO_LARGE;
		return false;
	}
	if (rc < 0) {
		snprintf(x->err, sizeof(x->err), "records: %s", e);
		x->st = ST_INVALID;
		return false;
	}
	return true;
}

static int take_batch(void *arg, const uint8_t *data, size_t len)
{
	struct split_ctx *x = arg;
	struct rb_header h;
	int bad = rb_check(data, len, x->err, sizeof(x->err));
	if (bad < 0) {
		/* As Kafka: a CRC that does not match is retried, a batch that
		 * is malformed is not. */
		x->st = bad == RB_BAD_CRC ? ST_CORRUPT : ST_INVALID;
		return -1;
	}
	rb_read_header(data, len, &h);
	if (too_large(x, len))
		return -1;
	if (h.Attributes & RB_ATTR_CONTROL) {
		snprintf(x->err, sizeof(x->err),
			 "clients may not write control batches");
		x->st = ST_INVALID;
		return -1;
	}
	if (h.ProducerId >= 0 && h.BaseSequence < 0) {
		snprintf(x->err, sizeof(x->err),
			 "invalid sequence number %d for producer %" PRId64,
			 h.BaseSequence, h.ProducerId);
		x->st = ST_INVALID;
		return -1;
	}
	/* compression.type other than "producer": stored in that codec. */
	int codec = x->t->cfg.codec;
	if (codec == (h.Attributes & RB_ATTR_CODEC_MASK))
		codec = -1;
	struct rb_stats st;
	if (!records_ok(x, data, len, h.Attributes & RB_ATTR_CODEC_MASK, codec,
			&st))
		return -1;
	if (x->t->cfg.compact && st.null_key) {
		snprintf(x->err, sizeof(x->err),
			 "compacted topic needs a key on every record");
		x->st = ST_NO_KEY;
		return -1;
	}
	int64_t max_ts = h.MaxTimestamp;
	if (!x->t->cfg.log_append_time && !timestamps_ok(x, &h, &st, &max_ts))
		return -1;
	if (codec >= 0) {
		data = x->recompressed.buf;
		len = x->recompressed.len;
		h.Attributes =
			(int16_t)((h.Attributes & ~RB_ATTR_CODEC_MASK) | codec);
		if (too_large(x, len))
			return -1;
	}
	struct st_batch *b = malloc(sizeof(*b) + len);
	struct st_batch **nb = realloc(
		x->a->batches, (size_t)(x->a->nbatches + 1) * sizeof(*nb));
	if (!b || !nb) {
		free(b);
		if (nb)
			x->a->batches = nb;
		snprintf(x->err, sizeof(x->err), "out of memory");
		x->st = ST_UNAVAILABLE;
		return -1;
	}
	x->a->batches = nb;
	memcpy(b->data, data, len);
	/* As Kafka: MaxTimestamp is the records' newest, CreateTime. */
	if (!x->t->cfg.log_append_time)
		rb_set_create_time(b->data, len, max_ts);
	b->len = len;
	b->count = h.LastOffsetDelta + 1;
	b->max_ts = max_ts;
	b->producer_id = h.ProducerId;
	b->producer_epoch = h.ProducerEpoch;
	b->base_seq = h.BaseSequence;
	b->attributes = h.Attributes;
	b->marker = 0;
	b->txn_first = -1;
	x->a->batches[x->a->nbatches++] = b;
	return 0;
}

/* Deferred failures of the read-side calls, so callbacks never run before
 * the call returns. */
struct later {
	st_offset_cb ocb;
	st_read_cb rcb;
	st_sizes_cb scb;
	void *arg;
};

static void fire_later(void *arg)
{
	struct later *l = arg;
	if (l->ocb)
		l->ocb(l->arg, ST_UNAVAILABLE, -1, -1);
	else if (l->rcb)
		l->rcb(l->arg, ST_UNAVAILABLE, NULL, 0);
	else
		l->scb(l->arg, ST_UNAVAILABLE, NULL, 0);
	free(l);
}

static void unavailable_soon(struct store *s, st_offset_cb ocb, st_read_cb rcb,
			     void *arg)
{
	struct later *l = calloc(1, sizeof(*l));
	if (!l)
		return;
	l->ocb = ocb;
	l->rcb = rcb;
	l->arg = arg;
	st_defer(s, fire_later, l);
}

/* Queues a for the next flush, and kicks one unless one is in flight. */
static void enqueue(struct store *s, struct st_append *a)
{
	a->bytes = 0;
	for (int i = 0; i < a->nbatches; i++)
		a->bytes += a->batches[i]->len;
	s->queue_bytes += a->bytes;
	if (s->queue_tail)
		s->queue_tail->next = a;
	else
		s->queue_head = a;
	s->queue_tail = a;
	if (!s->flush_in_flight)
		event_active(s->flush_ev, EV_TIMEOUT, 0);
}

void st_append(struct store *s, struct st_partition *p, const uint8_t *records,
	       size_t len, st_append_cb cb, void *arg)
{
	size_t budget = MAX_RECORDS_BYTES;
	st_append_within(s, p, records, len, &budget, cb, arg);
}

void st_append_within(struct store *s, struct st_partition *p,
		      const uint8_t *records, size_t len, size_t *inflate_left,
		      st_append_cb cb, void *arg)
{
	if (p->deleted) {
		result_soon(s, cb, arg, ST_NOT_FOUND, -1, -1, "topic deleted");
		return;
	}
	if (p->reloading || !pg_ready(s->writer)) {
		result_soon(s, cb, arg, ST_UNAVAILABLE, -1, p->log_start,
			    "storage unavailable, retry");
		return;
	}
	if (s->queue_bytes + len > QUEUE_MAX_BYTES) {
		result_soon(s, cb, arg, ST_UNAVAILABLE, -1, p->log_start,
			    "Postgres is behind: too much is waiting to be "
			    "written, retry");
		return;
	}
	struct split_ctx x = {.t = p->topic,
			      .st = ST_INVALID,
			      .inflate_left = inflate_left,
			      .now = st_now_ms()};
	x.a = calloc(1, sizeof(*x.a));
	if (!x.a) {
		result_soon(s, cb, arg, ST_UNAVAILABLE, -1, p->log_start,
			    "out of memory");
		return;
	}
	int n = rb_split(records, len, take_batch, &x, x.err, sizeof(x.err));
	kb_writer_free(&x.scratch);
	kb_writer_free(&x.recompressed);
	if (n <= 0) {
		if (n == 0)
			snprintf(x.err, sizeof(x.err), "no record batch");
		result_soon(s, cb, arg, x.st, -1, p->log_start, x.err);
		append_free(x.a);
		return;
	}

	/* Producer checks on every batch before any offset is given out. */
	struct st_append *a = x.a;
	for (int i = 0; i < a->nbatches; i++) {
		struct rb_header h;
		int64_t dup;
		rb_read_header(a->batches[i]->data, a->batches[i]->len, &h);
		if (h.ProducerId < 0)
			continue;
		enum st_status st = txn_check(p, &h);
		if (st == ST_OK)
			st = producer_check(p, &h, &dup);
		if (st != ST_OK) {
			result_soon(s, cb, arg, st, -1, p->log_start,
				    st == ST_BAD_EPOCH
					    ? "producer epoch is stale"
				    : st == ST_TXN_STATE
					    ? "batch does not match the "
					      "producer's transaction state"
					    : "out of order sequence number");
			append_free(a);
			return;
		}
		if (dup >= 0 && a->nbatches == 1) {
			/* A retry of a batch we already have. */
			result_soon(s, cb, arg,
				    dup < p->hw ? ST_OK : ST_UNAVAILABLE, dup,
				    p->log_start, NULL);
			append_free(a);
			return;
		}
	}

	int64_t ts = p->topic->cfg.log_append_time ? st_now_ms() : -1;
	for (int i = 0; i < a->nbatches; i++) {
		struct st_batch *b = a->batches[i];
		b->base = p->next;
		b->last = p->next + b->count - 1;
		p->next += b->count;
		rb_set_base_offset(b->data, b->base);
		rb_set_leader_epoch(b->data, p->leader_epoch);
		if (ts >= 0) {
			rb_set_log_append_time(b->data, b->len, ts);
			b->max_ts = ts;
		}
		if (b->producer_id >= 0)
			producer_record(p, b->producer_id, b->producer_epoch,
					b->base_seq, b->count, b->base, b->last,
					b->max_ts);
		if (b->attributes & RB_ATTR_TRANSACTIONAL) {
			struct st_open_txn *o = txn_find(p, b->producer_id);
			if (o && o->first < 0)
				o->first = b->base;
		}
	}
	a->p = p;
	a->cb = cb;
	a->arg = arg;
	a->log_append_time = ts;
	enqueue(s, a);
}

void st_append_marker(struct store *s, struct st_partition *p,
		      int64_t producer_id, int16_t epoch, bool commit,
		      st_append_cb cb, void *arg)
{
	if (p->deleted) {
		result_soon(s, cb, arg, ST_NOT_FOUND, -1, -1, "topic deleted");
		return;
	}
	struct st_open_txn *o = txn_find(p, producer_id);
	if (!o || o->first < 0) {
		/* Nothing of the transaction is in this log: no marker. */
		txn_forget(p, producer_id);
		result_soon(s, cb, arg, ST_OK, -1, p->log_start, NULL);
		return;
	}
	if (p->reloading || !pg_ready(s->writer)) {
		result_soon(s, cb, arg, ST_UNAVAILABLE, -1, p->log_start,
			    "storage unavailable, retry");
		return;
	}
	/* Key: version 0, type (0 abort, 1 commit); value: version 0,
	 * coordinator epoch 0 (samsa is the only coordinator). */
	static const char commit_key[4] = {0, 0, 0, 1};
	static const char abort_key[4] = {0, 0, 0, 0};
	static const char value[6] = {0, 0, 0, 0, 0, 0};
	int64_t ts = st_now_ms();
	struct rb_new_record rec = {
		.Timestamp = ts,
		.Key = {commit ? commit_key : abort_key, 4},
		.Value = {value, 6},
	};
	struct kb_writer w = {0};
	char err[128];
	struct st_append *a = calloc(1, sizeof(*a));
	struct st_batch *b = NULL;
	if (a &&
	    rb_build(&w, 0, RB_ATTR_TRANSACTIONAL | RB_ATTR_CONTROL,
		     producer_id, epoch, -1, &rec, 1, err, sizeof(err)) == 0 &&
	    kb_writer_ok(&w))
		b = malloc(sizeof(*b) + w.len);
	if (a)
		a->batches = malloc(sizeof(*a->batches));
	if (!b || !a->batches) {
		kb_writer_free(&w);
		free(b);
		if (a)
			free(a->batches);
		free(a);
		result_soon(s, cb, arg, ST_UNAVAILABLE, -1, p->log_start,
			    "out of memory");
		return;
	}
	memcpy(b->data, w.buf, w.len);
	b->len = w.len;
	kb_writer_free(&w);
	b->count = 1;
	b->max_ts = ts;
	b->producer_id = producer_id;
	b->producer_epoch = epoch;
	b->base_seq = -1;
	b->attributes = RB_ATTR_TRANSACTIONAL | RB_ATTR_CONTROL;
	b->marker = commit ? ST_MARKER_COMMIT : ST_MARKER_ABORT;
	b->txn_first = o->first;
	b->base = b->last = p->next++;
	rb_set_base_offset(b->data, b->base);
	rb_set_leader_epoch(b->data, p->leader_epoch);
	o->ending = true;
	a->batches[0] = b;
	a->nbatches = 1;
	a->p = p;
	a->cb = cb;
	a->arg = arg;
	a->log_append_time = -1;
	enqueue(s, a);
}

struct flush {
	struct store *s;
	struct st_append *appends;
	char *err;
};

static void finish_append(struct st_append *a, enum st_status st, int64_t base,
			  const char *msg)
{
	struct st_append_result r = {
		.status = st,
		.base_offset = st == ST_OK ? base : -1,
		.log_append_time = st == ST_OK ? a->log_append_time : -1,
		.log_start_offset = a->p->log_start,
		.message = msg,
	};
	a->cb(a->arg, &r);
}

static void reload_partition(struct store *s, struct st_partition *p);

/* Takes the queued appends whose partition is marked out of the queue, in
 * order, into a list of their own: callbacks run later may append again. */
static struct st_append *unqueue(struct store *s,
				 bool (*marked)(const struct st_append *))
{
	struct st_append **pp = &s->queue_head;
	struct st_append *out = NULL, **tail = &out;
	s->queue_tail = NULL;
	while (*pp) {
		struct st_append *a = *pp;
		if (marked(a)) {
			s->queue_bytes -= a->bytes;
			*pp = a->next;
			a->next = NULL;
			*tail = a;
			tail = &a->next;
		} else {
			s->queue_tail = a;
			pp = &a->next;
		}
	}
	return out;
}

/* Answers every append of list with st (and frees them). */
static void finish_all(struct st_append *list, enum st_status st,
		       const char *msg)
{
	for (struct st_append *a = list; a;) {
		struct st_append *n = a->next;
		finish_append(a, st, -1, msg);
		append_free(a);
		a = n;
	}
}

static bool deleted(const struct st_append *a)
{
	return a->p->deleted;
}

static bool reloading(const struct st_append *a)
{
	return a->p->reloading;
}

/*
 * A flush failed: its partitions' state is unknown until read back, and
 * every queued append for them was numbered after the failed ones.
 */
static void flush_failed(struct store *s, struct st_append *done,
			 const char *err)
{
	for (struct st_append *a = done; a; a = a->next)
		a->p->reloading = true;
	struct st_append *failed_queued = unqueue(s, reloading);
	finish_all(done, ST_UNAVAILABLE, err);
	finish_all(failed_queued, ST_UNAVAILABLE, err);
	/* Read back every partition marked. */
	for (size_t i = 0; i < st_topic_count(s); i++) {
		struct st_topic *t = st_topic_at(s, i);
		for (int32_t j = 0; j < t->npartitions; j++)
			if (t->partitions[j]->reloading)
				reload_partition(s, t->partitions[j]);
	}
}

static void on_flush_step(void *arg, const PGresult *res, const char *err,
			  const char *sqlstate)
{
	struct flush *f = arg;
	(void)sqlstate;
	if (!res && !f->err)
		f->err = strdup(err);
}

static void on_flush_commit(void *arg, const PGresult *res, const char *err,
			    const char *sqlstate)
{
	struct flush *f = arg;
	struct store *s = f->s;
	(void)res;
	(void)sqlstate;
	if (err && !f->err)
		f->err = strdup(err);
	s->flush_in_flight = false;
	if (f->err) {
		fprintf(stderr, "samsa: log flush failed: %s\n", f->err);
		flush_failed(s, f->appends, f->err);
	} else {
		for (struct st_append *a = f->appends; a;) {
			struct st_append *n = a->next;
			struct st_partition *p = a->p;
			int64_t base = a->batches[0]->base;
			if (p->deleted) {
				/* Deleted meanwhile: its rows go with the
				 * purge queued behind this flush. */
				finish_append(a, ST_NOT_FOUND, -1,
					      "topic deleted");
				append_free(a);
				a = n;
				continue;
			}
			for (int i = 0; i < a->nbatches; i++) {
				p->hw = a->batches[i]->last + 1;
				if (a->batches[i]->marker)
					txn_marker_done(p, a->batches[i]);
				if (p->clean.dirty_bytes == 0)
					p->clean.first_dirty_ts =
						a->batches[i]->max_ts;
				p->clean.dirty_bytes += a->batches[i]->len;
				cache_push(s, p, a->batches[i]);
				a->batches[i] = NULL;
			}
			a->nbatches = 0;
			finish_append(a, ST_OK, base, NULL);
			append_free(a);
			wake(p);
			a = n;
		}
	}
	free(f->err);
	free(f);
	if (s->queue_head)
		st_flush_now(s);
}

/* Appends queued for a partition deleted since fail: their topic is gone
 * (its log rows were deleted; these must not come after). */
static void drop_deleted(struct store *s)
{
	finish_all(unqueue(s, deleted), ST_NOT_FOUND, "topic deleted");
}

void st_flush_now(struct store *s)
{
	if (s->flush_in_flight || !s->queue_head || !s->writer)
		return;
	drop_deleted(s);
	if (!s->queue_head)
		return;
	struct flush *f = calloc(1, sizeof(*f));
	if (!f)
		return;
	f->s = s;
	/* Take appends up to the size cap (at least one). */
	size_t bytes = 0;
	struct st_append *a = s->queue_head, *last = NULL;
	while (a) {
		if (last && bytes + a->bytes > FLUSH_MAX_BYTES)
			break;
		bytes += a->bytes;
		last = a;
		a = a->next;
	}
	s->queue_bytes -= bytes;
	f->appends = s->queue_head;
	s->queue_head = last->next;
	if (!s->queue_head)
		s->queue_tail = NULL;
	last->next = NULL;
	s->flush_in_flight = true;

	struct pgconn *c = s->writer;
	for (a = f->appends; a; a = a->next) {
		struct st_partition *p = a->p;
		for (int i = 0; i < a->nbatches; i++) {
			struct st_batch *b = a->batches[i];
			char tid[16], part[16], base[24], last_o[24], ts[24],
				pid[24], ep[8], seq[16], cnt[16], len[16],
				attr[8], first[24];
			snprintf(tid, sizeof(tid), "%d", p->topic->tid);
			snprintf(part, sizeof(part), "%d", p->index);
			snprintf(base, sizeof(base), "%" PRId64, b->base);
			snprintf(last_o, sizeof(last_o), "%" PRId64, b->last);
			snprintf(ts, sizeof(ts), "%" PRId64, b->max_ts);
			snprintf(pid, sizeof(pid), "%" PRId64, b->producer_id);
			snprintf(ep, sizeof(ep), "%d", b->producer_epoch);
			snprintf(seq, sizeof(seq), "%d", b->base_seq);
			snprintf(cnt, sizeof(cnt), "%d", b->count);
			snprintf(len, sizeof(len), "%zu", b->len);
			snprintf(attr, sizeof(attr), "%d", b->attributes);
			const char *v[12] = {tid,
					     part,
					     base,
					     last_o,
					     ts,
					     pid,
					     ep,
					     seq,
					     cnt,
					     len,
					     (const char *)b->data,
					     attr};
			int lens[12] = {0, 0, 0, 0, 0,		 0,
					0, 0, 0, 0, (int)b->len, 0};
			int fmts[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
			pg_query_prepared(
				c,
				"INSERT INTO samsa.log VALUES ($1, $2, $3, $4, "
				"$5, $6, $7, $8, $9, $10, $11, $12)",
				12, v, lens, fmts, false, on_flush_step, f);
			if (b->marker == ST_MARKER_ABORT && b->txn_first >= 0) {
				/* The aborted index commits with its marker. */
				snprintf(first, sizeof(first), "%" PRId64,
					 b->txn_first);
				const char *w[5] = {tid, part, pid, first,
						    base};
				pg_query_prepared(
					c,
					"INSERT INTO samsa.txn_aborted VALUES "
					"($1, $2, $3, $4, $5)",
					5, w, NULL, NULL, false, on_flush_step,
					f);
			}
		}
		p->flush_last = a;
	}
	/* One UPDATE per partition, with its end after this flush (linear:
	 * a flush can hold tens of thousands of one-row CDC appends). */
	for (a = f->appends; a; a = a->next) {
		struct st_partition *p = a->p;
		if (p->flush_last != a)
			continue;
		char tid[16], part[16], next[24];
		snprintf(tid, sizeof(tid), "%d", p->topic->tid);
		snprintf(part, sizeof(part), "%d", p->index);
		snprintf(next, sizeof(next), "%" PRId64,
			 a->batches[a->nbatches - 1]->last + 1);
		const char *v[3] = {tid, part, next};
		pg_query_prepared(
			c,
			"UPDATE samsa.partitions SET next_offset = $3 "
			"WHERE tid = $1 AND partition = $2",
			3, v, NULL, NULL, false, on_flush_step, f);
	}
	/* One unit without BEGIN: Postgres commits it whole at the sync or
	 * not at all. */
	pg_sync_cb(c, on_flush_commit, f);
}

/* --- reloading state from Postgres -----------------------------------------
 */

struct reload {
	struct store *s;
	struct st_partition *p;
	bool ok;
};

/* One row of producer state: producer_id, epoch, base sequence, count, base
 * offset, last offset, attributes, max timestamp from col on. */
static void producer_row(struct st_partition *p, const PGresult *r, int i,
			 int col)
{
	int64_t pid = strtoll(PQgetvalue(r, i, col), NULL, 10);
	int16_t epoch = (int16_t)atoi(PQgetvalue(r, i, col + 1));
	int64_t ts = strtoll(PQgetvalue(r, i, col + 7), NULL, 10);
	if (atoi(PQgetvalue(r, i, col + 6)) & RB_ATTR_CONTROL) {
		producer_bump(p, pid, epoch, ts);
		return;
	}
	/* Its sequences span its offsets, as Kafka's lastSequence = base
	 * sequence + lastOffsetDelta: compaction may have taken records out
	 * (record_count), never offsets. */
	int64_t base = strtoll(PQgetvalue(r, i, col + 4), NULL, 10);
	int64_t last = strtoll(PQgetvalue(r, i, col + 5), NULL, 10);
	producer_record(p, pid, epoch, atoi(PQgetvalue(r, i, col + 2)),
			(int32_t)(last - base + 1), base, last, ts);
}

/* Producer state read back: what is older than producer.id.expiration.ms
 * is forgotten at once, as Kafka skips expired entries of a snapshot. */
static void producers_loaded(struct st_partition *p)
{
	producers_expire(p, st_now_ms(),
			 bc_get_int("producer.id.expiration.ms", 86400000));
}

static void load_producers(struct st_partition *p, const PGresult *r,
			   int pid_col)
{
	pmap_clear(&p->producers);
	/* Rows come oldest first per producer. */
	for (int i = 0; i < PQntuples(r); i++)
		producer_row(p, r, i, pid_col);
	producers_loaded(p);
}

/* The last five data batches and markers of each producer: markers only
 * raise the epoch. */
static const char producers_sql[] =
	"SELECT producer_id, producer_epoch, base_sequence, record_count, "
	"base_offset, last_offset, attributes, max_timestamp FROM (SELECT *, "
	"row_number() "
	"OVER (PARTITION BY producer_id, (attributes & 32) <> 0 ORDER BY "
	"base_offset DESC) AS rn FROM samsa.log WHERE tid = $1 AND "
	"partition = $2 AND producer_id >= 0) x WHERE rn <= 5 "
	"ORDER BY producer_id, base_offset";

/* Open transactions: transactional data after the producer's last marker. */
static const char open_txns_sql[] =
	"SELECT producer_id, max(producer_epoch), min(base_offset) FROM "
	"samsa.log l WHERE tid = $1 AND partition = $2 AND (attributes & 48) "
	"= 16 AND base_offset > coalesce((SELECT max(c.base_offset) FROM "
	"samsa.log c WHERE c.tid = l.tid AND c.partition = l.partition AND "
	"c.producer_id = l.producer_id AND (c.attributes & 48) = 48), -1) "
	"GROUP BY producer_id";

static const char aborted_sql[] =
	"SELECT a.producer_id, a.first_offset, a.last_offset FROM "
	"samsa.txn_aborted a JOIN samsa.partitions p USING (tid, partition) "
	"WHERE a.tid = $1 AND a.partition = $2 AND a.last_offset >= "
	"p.log_start_offset ORDER BY a.last_offset";

/* Takes p's transactions' first offsets from rows (producer, epoch, first)
 * from col on.  Every transaction known stays joined: one whose first batch
 * was in a flush that failed has nothing written, but its producer's retry
 * must still find it part of the partition. */
static void load_open_txns(struct st_partition *p, const PGresult *r, int col)
{
	for (struct st_open_txn *o = p->txns; o; o = o->next) {
		o->first = -1;
		o->ending = false;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_open_txn *o =
			txn_open(p, strtoll(PQgetvalue(r, i, col), NULL, 10),
				 (int16_t)atoi(PQgetvalue(r, i, col + 1)), -1);
		if (o)
			o->first = strtoll(PQgetvalue(r, i, col + 2), NULL, 10);
	}
}

static void load_aborted(struct st_partition *p, const PGresult *r, int col)
{
	p->naborted = 0;
	for (int i = 0; i < PQntuples(r); i++)
		aborted_add(p, strtoll(PQgetvalue(r, i, col), NULL, 10),
			    strtoll(PQgetvalue(r, i, col + 1), NULL, 10),
			    strtoll(PQgetvalue(r, i, col + 2), NULL, 10));
}

static void on_reload_txns(void *arg, const PGresult *res, const char *err,
			   const char *sqlstate)
{
	struct reload *r = arg;
	(void)err;
	(void)sqlstate;
	if (res && r->ok)
		load_open_txns(r->p, res, 0);
	else
		r->ok = false;
}

static void on_reload_aborted(void *arg, const PGresult *res, const char *err,
			      const char *sqlstate)
{
	struct reload *r = arg;
	(void)err;
	(void)sqlstate;
	if (res && r->ok)
		load_aborted(r->p, res, 0);
	else
		r->ok = false;
}

static void on_reload_offsets(void *arg, const PGresult *res, const char *err,
			      const char *sqlstate)
{
	struct reload *r = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1) {
		struct st_partition *p = r->p;
		int64_t next = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		p->log_start = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
		if (next != p->hw)
			cache_clear(r->s, p);
		p->hw = p->next = next;
		r->ok = true;
	}
}

static void reload_tick(evutil_socket_t fd, short what, void *arg);

static void on_reload_producers(void *arg, const PGresult *res, const char *err,
				const char *sqlstate)
{
	struct reload *r = arg;
	(void)err;
	(void)sqlstate;
	if (res && r->ok) {
		load_producers(r->p, res, 0);
		r->p->reloading = false;
		r->p->reload_queued = false;
		wake(r->p);
		free(r);
		return;
	}
	/* Not yet: try again shortly (the connection may be coming back). */
	struct timeval tv = {0, 200000};
	r->ok = false;
	event_base_once(r->s->base, -1, EV_TIMEOUT, reload_tick, r, &tv);
}

static void reload_tick(evutil_socket_t fd, short what, void *arg)
{
	struct reload *r = arg;
	(void)fd;
	(void)what;
	if (r->p->deleted) {
		r->p->reload_queued = false;
		free(r);
		return;
	}
	/* On a reader, not the writer: the producers' scan of a long log
	 * takes seconds, and every other partition's flushes would wait
	 * behind it.  What it reads is committed: the failed flush is over,
	 * and nothing of this partition is written until it is done. */
	struct pgconn *c = pg_ready(r->s->writer) ? st_reader(r->s) : NULL;
	if (!c) {
		struct timeval tv = {0, 200000};
		event_base_once(r->s->base, -1, EV_TIMEOUT, reload_tick, r,
				&tv);
		return;
	}
	char tid[16], part[16];
	snprintf(tid, sizeof(tid), "%d", r->p->topic->tid);
	snprintf(part, sizeof(part), "%d", r->p->index);
	const char *v[2] = {tid, part};
	pg_query(c,
		 "SELECT next_offset, log_start_offset FROM samsa.partitions "
		 "WHERE tid = $1 AND partition = $2",
		 2, v, NULL, NULL, false, on_reload_offsets, r);
	pg_query(c, open_txns_sql, 2, v, NULL, NULL, false, on_reload_txns, r);
	pg_query(c, aborted_sql, 2, v, NULL, NULL, false, on_reload_aborted, r);
	pg_query(c, producers_sql, 2, v, NULL, NULL, false, on_reload_producers,
		 r);
	pg_sync(c);
}

/* One reload at a time: a second one, sent while the first was under way,
 * could come back after an append that the first made possible and undo
 * it in memory. */
static void reload_partition(struct store *s, struct st_partition *p)
{
	if (p->reload_queued || s->closing)
		return;
	struct reload *r = calloc(1, sizeof(*r));
	if (!r)
		return;
	p->reload_queued = true;
	r->s = s;
	r->p = p;
	struct timeval tv = {0, 0};
	event_base_once(s->base, -1, EV_TIMEOUT, reload_tick, r, &tv);
}

/* The partition of row i, whose columns 0 and 1 are tid and partition. */
static struct st_partition *load_find(struct store *s, const PGresult *r, int i)
{
	int32_t tid = atoi(PQgetvalue(r, i, 0));
	for (size_t j = 0; j < s->ntopics; j++)
		if (s->topics[j]->tid == tid)
			return st_partition(s->topics[j],
					    atoi(PQgetvalue(r, i, 1)));
	return NULL;
}

/* PQexec for st_log_load: the result, or NULL with "what: Postgres's
 * message" in err. */
static PGresult *load_exec(PGconn *conn, const char *sql, const char *what,
			   char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
		return r;
	snprintf(err, errlen, "%s: %s", what, PQresultErrorMessage(r));
	PQclear(r);
	return NULL;
}

int st_log_load(struct store *s, PGconn *conn, char *err, size_t errlen)
{
	PGresult *r = load_exec(conn,
				"SELECT tid, partition, log_start_offset, "
				"next_offset, leader_epoch FROM "
				"samsa.partitions",
				"loading partitions", err, errlen);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_partition *p = load_find(s, r, i);
		if (!p)
			continue;
		p->log_start = strtoll(PQgetvalue(r, i, 2), NULL, 10);
		p->hw = p->next = strtoll(PQgetvalue(r, i, 3), NULL, 10);
		p->leader_epoch = atoi(PQgetvalue(r, i, 4));
	}
	PQclear(r);

	/* Rows of a topic deleted while a flush committed them, if the purge
	 * behind it was lost (st_partition_retire).  The log's distinct tids
	 * come from its index, one probe each, not from a scan. */
	r = load_exec(conn,
		      "WITH RECURSIVE t(tid) AS (SELECT min(tid) FROM "
		      "samsa.log UNION ALL SELECT (SELECT min(l.tid) FROM "
		      "samsa.log l WHERE l.tid > t.tid) FROM t WHERE t.tid IS "
		      "NOT NULL) DELETE FROM samsa.log WHERE tid IN (SELECT "
		      "tid FROM t WHERE tid IS NOT NULL EXCEPT SELECT tid FROM "
		      "samsa.topics)",
		      "removing rows of deleted topics", err, errlen);
	if (!r)
		return -1;
	PQclear(r);

	r = load_exec(
		conn,
		"SELECT tid, partition, producer_id, producer_epoch, "
		"base_sequence, record_count, base_offset, last_offset, "
		"attributes, max_timestamp FROM (SELECT *, row_number() "
		"OVER (PARTITION BY "
		"tid, partition, producer_id, (attributes & 32) <> 0 ORDER "
		"BY base_offset DESC) AS rn FROM samsa.log "
		"WHERE producer_id >= 0) x WHERE rn <= 5 "
		"ORDER BY tid, partition, producer_id, base_offset",
		"loading producer state", err, errlen);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_partition *p = load_find(s, r, i);
		if (p)
			producer_row(p, r, i, 2);
	}
	PQclear(r);

	/* Transactions open in the log, and the aborted index. */
	r = load_exec(
		conn,
		"SELECT tid, partition, producer_id, max(producer_epoch), "
		"min(base_offset) FROM samsa.log l WHERE (attributes & 48) "
		"= 16 AND base_offset > coalesce((SELECT max(c.base_offset) "
		"FROM samsa.log c WHERE c.tid = l.tid AND c.partition = "
		"l.partition AND c.producer_id = l.producer_id AND "
		"(c.attributes & 48) = 48), -1) "
		"GROUP BY tid, partition, producer_id",
		"loading open transactions", err, errlen);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_partition *p = load_find(s, r, i);
		struct st_open_txn *o =
			p ? txn_open(p, strtoll(PQgetvalue(r, i, 2), NULL, 10),
				     (int16_t)atoi(PQgetvalue(r, i, 3)), -1)
			  : NULL;
		if (o)
			o->first = strtoll(PQgetvalue(r, i, 4), NULL, 10);
	}
	PQclear(r);
	/* Entries left below the log start by a version that did not trim
	 * them, and those of deleted topics. */
	r = load_exec(conn,
		      "DELETE FROM samsa.txn_aborted a WHERE NOT EXISTS "
		      "(SELECT 1 FROM samsa.partitions p WHERE p.tid = "
		      "a.tid AND p.partition = a.partition AND "
		      "a.last_offset >= p.log_start_offset)",
		      "trimming aborted transactions", err, errlen);
	if (!r)
		return -1;
	PQclear(r);
	r = load_exec(
		conn,
		"SELECT a.tid, a.partition, a.producer_id, a.first_offset, "
		"a.last_offset FROM samsa.txn_aborted a JOIN "
		"samsa.partitions p USING (tid, partition) WHERE "
		"a.last_offset >= p.log_start_offset "
		"ORDER BY a.tid, a.partition, a.last_offset",
		"loading aborted transactions", err, errlen);
	if (!r)
		return -1;
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_partition *p = load_find(s, r, i);
		if (p)
			aborted_add(p, strtoll(PQgetvalue(r, i, 2), NULL, 10),
				    strtoll(PQgetvalue(r, i, 3), NULL, 10),
				    strtoll(PQgetvalue(r, i, 4), NULL, 10));
	}
	PQclear(r);
	/* With the open transactions known, the idle producers go. */
	for (size_t i = 0; i < s->ntopics; i++)
		for (int32_t j = 0; j < s->topics[i]->npartitions; j++)
			producers_loaded(s->topics[i]->partitions[j]);
	return 0;
}

static void on_purged(void *arg, const PGresult *res, const char *err,
		      const char *sqlstate)
{
	(void)arg;
	(void)res;
	(void)sqlstate;
	if (err)
		fprintf(stderr, "samsa: removing a deleted topic's rows: %s\n",
			err);
}

void st_partition_retire(struct store *s, struct st_partition *p)
{
	p->deleted = true;
	cache_clear(s, p);
	ra_clear(s, p);
	wake(p);
	/* The catalog deleted the topic's rows on its own connection, and a
	 * flush on the writer may have committed some after that statement
	 * began, or be about to: this runs after it, on the writer. */
	if (p->index != 0)
		return;
	char tid[16];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	const char *v[1] = {tid};
	pg_query_prepared(s->writer, "DELETE FROM samsa.log WHERE tid = $1", 1,
			  v, NULL, NULL, false, on_purged, NULL);
	pg_query_prepared(s->writer,
			  "DELETE FROM samsa.txn_aborted WHERE tid = $1", 1, v,
			  NULL, NULL, false, on_purged, NULL);
	pg_sync_cb(s->writer, on_purged, NULL);
}

/* --- reads from Postgres
 * ------------------------------------------------------ */

struct read_ctx {
	struct store *s;
	struct st_partition *p;
	int64_t offset;
	int32_t max_bytes;
	st_read_cb cb;
	void *arg;
	uint32_t gen; /* p->read_gen when the read was sent */
};

/* How much one read from Postgres brings back, for one fetch and those that
 * follow it. */
#define READ_AHEAD_BYTES (4u << 20)

/*
 * The rows of res (one batch each) as batches, after `room` slots left
 * free at the front; *count of them (fewer than the rows when memory runs
 * out or a row is not a batch), *bytes in all.  NULL when out of memory.
 */
static struct st_batch **read_batches(const PGresult *res, size_t room,
				      size_t *count, size_t *bytes)
{
	size_t n = (size_t)PQntuples(res);
	struct st_batch **ra = calloc(room + n + 1, sizeof(*ra));

	*count = *bytes = 0;
	for (size_t i = 0; ra && i < n; i++) {
		size_t len = (size_t)PQgetlength(res, (int)i, 0);
		const uint8_t *data =
			(const uint8_t *)PQgetvalue(res, (int)i, 0);
		struct rb_header h;
		struct st_batch *b = malloc(sizeof(*b) + len);
		if (!b || rb_read_header(data, len, &h) < 0) {
			free(b);
			break;
		}
		memcpy(b->data, data, len);
		b->len = len;
		b->base = h.BaseOffset;
		b->last = h.BaseOffset + h.LastOffsetDelta;
		b->max_ts = h.MaxTimestamp;
		ra[room + (*count)++] = b;
		*bytes += len;
	}
	return ra;
}

static void on_read_ahead(struct read_ctx *r, const PGresult *res);

static void on_read(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct read_ctx *r = arg;
	struct store *s = r->s;
	struct st_partition *p = r->p;
	(void)err;
	(void)sqlstate;
	if (!r->cb) {
		on_read_ahead(r, res);
		return;
	}
	if (!res) {
		r->cb(r->arg, ST_UNAVAILABLE, NULL, 0);
		free(r);
		return;
	}
	size_t n = (size_t)PQntuples(res), bytes = 0, count = 0;
	struct st_batch **ra = read_batches(res, 0, &count, &bytes);
	struct kb_writer w = {0};
	/* The log may start after offset (records deleted meanwhile): then
	 * the answer starts at the first batch there is. */
	if (count > 0 && r->offset < ra[0]->base)
		serve_array(ra, count, ra[0]->base, r->max_bytes, &w);
	else
		serve_array(ra, count, r->offset, r->max_bytes, &w);
	/* Keep the rest for the next fetches while the budget allows. */
	if (ra && !p->deleted && r->gen == p->read_gen &&
	    s->ra_total - p->ra_bytes + bytes <= s->opts.cache_bytes / 2) {
		ra_clear(s, p);
		p->ra = ra;
		p->ra_count = count;
		p->ra_bytes = bytes;
		s->ra_total += bytes;
	} else {
		for (size_t i = 0; i < count; i++)
			free(ra[i]);
		free(ra);
	}
	if (!kb_writer_ok(&w) || (!ra && n > 0))
		r->cb(r->arg, ST_UNAVAILABLE, NULL, 0);
	else
		r->cb(r->arg, ST_OK, w.buf, w.len);
	kb_writer_free(&w);
	free(r);
}

static void send_read(struct pgconn *c, struct read_ctx *r, size_t want);

struct pgconn *st_reader(struct store *s)
{
	for (int i = 0; i < s->nreaders; i++) {
		struct pgconn *c =
			s->readers[(s->next_reader + i) % s->nreaders];
		if (pg_ready(c)) {
			s->next_reader = (s->next_reader + i + 1) % s->nreaders;
			return c;
		}
	}
	return NULL;
}

void st_read(struct store *s, struct st_partition *p, int64_t offset,
	     int32_t max_bytes, st_read_cb cb, void *arg)
{
	struct pgconn *c = st_reader(s);
	struct read_ctx *r = c ? malloc(sizeof(*r)) : NULL;
	if (!r) {
		unavailable_soon(s, NULL, cb, arg);
		return;
	}
	*r = (struct read_ctx){s, p, offset, max_bytes, cb, arg, p->read_gen};
	size_t want = READ_AHEAD_BYTES;
	if (max_bytes > 0 && (size_t)max_bytes > want)
		want = (size_t)max_bytes;
	send_read(c, r, want);
}

/* Sends r's query for about want bytes from r->offset on, on c. */
static void send_read(struct pgconn *c, struct read_ctx *r, size_t want)
{
	struct st_partition *p = r->p;
	int64_t offset = r->offset;
	size_t avg = p->avg_batch ? p->avg_batch : 16384;
	/* At least two: the first row may be the batch before a gap that
	 * compaction left where offset falls. */
	size_t rows = want / avg + 2;
	if (rows > 20000)
		rows = 20000;
	char tid[16], part[16], off[24], limit[24], hw[24];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	snprintf(part, sizeof(part), "%d", p->index);
	snprintf(off, sizeof(off), "%" PRId64, offset);
	snprintf(limit, sizeof(limit), "%zu", rows);
	snprintf(hw, sizeof(hw), "%" PRId64, p->hw);
	const char *v[5] = {tid, part, off, limit, hw};
	/* Whole batches from the one holding offset on, by the primary key,
	 * below the high watermark: a flush whose commit samsa has not heard
	 * of (its connection broke) may have rows there, which consumers must
	 * not see before the partition is read back. */
	pg_query_prepared(
		c,
		"SELECT batch FROM samsa.log WHERE tid = $1 AND partition = $2 "
		"AND base_offset >= (SELECT coalesce(max(base_offset), 0) FROM "
		"samsa.log WHERE tid = $1 AND partition = $2 AND "
		"base_offset <= $3) AND base_offset < $5 "
		"ORDER BY base_offset LIMIT $4",
		5, v, NULL, NULL, true, on_read, r);
	pg_sync(c);
}

void st_read_ahead(struct store *s, struct st_partition *p, int64_t offset)
{
	if (p->ra_reading || p->ra_count < 2 || p->deleted ||
	    offset < p->ra[p->ra_count / 2]->base)
		return;
	int64_t next = p->ra[p->ra_count - 1]->last + 1;
	if (next >= p->hw || (p->ring_count > 0 && next >= ring_at(p, 0)->base))
		return; /* the rest is in the tail cache */
	struct pgconn *c = st_reader(s);
	struct read_ctx *r = c ? malloc(sizeof(*r)) : NULL;
	if (!r)
		return;
	*r = (struct read_ctx){s, p, next, 0, NULL, NULL, p->read_gen};
	p->ra_reading = true;
	send_read(c, r, READ_AHEAD_BYTES);
}

/*
 * The read st_read_ahead sent: its batches go after the read-ahead's, and
 * the first half of those (behind the consumer) goes, if they still follow
 * on and the budget allows; else they are dropped and the next fetch past
 * the read-ahead reads Postgres itself.
 */
static void add_read_ahead(struct read_ctx *r, const PGresult *res)
{
	struct store *s = r->s;
	struct st_partition *p = r->p;
	size_t keep = p->ra_count / 2, kept = p->ra_count - keep;
	size_t count = 0, bytes = 0, kept_bytes = 0;
	struct st_batch **ra = NULL;

	if (res && !p->deleted && r->gen == p->read_gen && p->ra_count >= 2 &&
	    p->ra[p->ra_count - 1]->last + 1 == r->offset)
		ra = read_batches(res, kept, &count, &bytes);
	free(r);
	if (!ra)
		return;
	for (size_t i = keep; i < p->ra_count; i++)
		kept_bytes += p->ra[i]->len;
	if (count == 0 || ra[kept]->base != p->ra[p->ra_count - 1]->last + 1 ||
	    s->ra_total - p->ra_bytes + kept_bytes + bytes >
		    s->opts.cache_bytes / 2) {
		for (size_t i = 0; i < count; i++)
			free(ra[kept + i]);
		free(ra);
		return;
	}
	memcpy(ra, p->ra + keep, kept * sizeof(*ra));
	for (size_t i = 0; i < keep; i++)
		free(p->ra[i]);
	free(p->ra);
	s->ra_total = s->ra_total - p->ra_bytes + kept_bytes + bytes;
	p->ra = ra;
	p->ra_count = kept + count;
	p->ra_bytes = kept_bytes + bytes;
}

/* Fetches waiting for it (st_wait_read_ahead) look again, whatever came of
 * it. */
static void on_read_ahead(struct read_ctx *r, const PGresult *res)
{
	struct st_partition *p = r->p;
	p->ra_reading = false;
	add_read_ahead(r, res);
	wake_list(&p->ra_waiters);
}

bool st_read_ahead_brings(const struct st_partition *p, int64_t offset)
{
	return p->ra_reading && p->ra_count > 0 &&
	       offset > p->ra[p->ra_count - 1]->last;
}

/* --- offsets by time, delete records, producer ids
 * ------------------------------ */

struct offset_ctx {
	struct store *s;
	struct st_partition *p;
	int64_t ts; /* wanted timestamp, or INT64_MIN for the max */
	int64_t new_start;
	st_offset_cb cb;
	void *arg;
	int64_t found_offset, found_ts;
};

struct find_ctx {
	int64_t base_ts, base_offset, want, max_ts;
	bool log_append;
	int64_t off, ts;
	bool want_max;
};

static int find_cb(void *arg, const struct rb_record *rec)
{
	struct find_ctx *f = arg;
	int64_t ts =
		f->log_append ? f->max_ts : f->base_ts + rec->TimestampDelta;
	int64_t off = f->base_offset + rec->OffsetDelta;
	if (f->off >= 0)
		return 0;
	if (f->want_max ? ts == f->max_ts : ts >= f->want) {
		f->off = off;
		f->ts = ts;
	}
	return 0;
}

static void on_offset_row(void *arg, const PGresult *res, const char *err,
			  const char *sqlstate)
{
	struct offset_ctx *o = arg;
	(void)err;
	(void)sqlstate;
	if (!res) {
		o->cb(o->arg, ST_UNAVAILABLE, -1, -1);
		free(o);
		return;
	}
	if (PQntuples(res) == 0) {
		o->cb(o->arg, ST_OK, -1, -1);
		free(o);
		return;
	}
	const uint8_t *data = (const uint8_t *)PQgetvalue(res, 0, 0);
	size_t len = (size_t)PQgetlength(res, 0, 0);
	struct rb_header h;
	struct find_ctx f = {.off = -1,
			     .ts = -1,
			     .want = o->ts,
			     .want_max = o->ts == INT64_MIN};
	char e[128];
	struct kb_writer scratch = {0};
	if (rb_read_header(data, len, &h) == 0) {
		f.base_ts = h.BaseTimestamp;
		f.base_offset = h.BaseOffset;
		f.max_ts = h.MaxTimestamp;
		f.log_append = (h.Attributes & RB_ATTR_LOG_APPEND_TIME) != 0;
		rb_foreach_record(data, len, &scratch, 256u << 20, find_cb, &f,
				  e, sizeof(e));
	}
	kb_writer_free(&scratch);
	if (f.off >= 0 && f.off < o->p->log_start)
		f.off = o->p->log_start;
	o->cb(o->arg, ST_OK, f.off, f.ts);
	free(o);
}

static void offset_query(struct store *s, struct st_partition *p, int64_t ts,
			 st_offset_cb cb, void *arg)
{
	struct pgconn *c = st_reader(s);
	struct offset_ctx *o = c ? calloc(1, sizeof(*o)) : NULL;
	if (!o) {
		unavailable_soon(s, cb, NULL, arg);
		return;
	}
	o->s = s;
	o->p = p;
	o->ts = ts;
	o->cb = cb;
	o->arg = arg;
	char tid[16], part[16], t[24], start[24];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	snprintf(part, sizeof(part), "%d", p->index);
	snprintf(t, sizeof(t), "%" PRId64, ts);
	snprintf(start, sizeof(start), "%" PRId64, p->log_start);
	const char *v[4] = {tid, part, t, start};
	/* Batches with records only: compaction leaves a producer's newest
	 * batch empty (its header, its max timestamp), and the answer is a
	 * record's offset, as Kafka's search moving on past such a batch. */
	if (ts == INT64_MIN) {
		const char *w[3] = {tid, part, start};
		pg_query(c,
			 "SELECT batch FROM samsa.log WHERE tid = $1 AND "
			 "partition = $2 AND last_offset >= $3 AND bytes > 61 "
			 "ORDER BY max_timestamp DESC, base_offset LIMIT 1",
			 3, w, NULL, NULL, true, on_offset_row, o);
	} else
		pg_query(c,
			 "SELECT batch FROM samsa.log WHERE tid = $1 AND "
			 "partition = $2 AND last_offset >= $4 AND bytes > 61 "
			 "AND max_timestamp >= $3 ORDER BY base_offset LIMIT 1",
			 4, v, NULL, NULL, true, on_offset_row, o);
	pg_sync(c);
}

void st_offset_for_time(struct store *s, struct st_partition *p, int64_t ts,
			st_offset_cb cb, void *arg)
{
	offset_query(s, p, ts < 0 ? 0 : ts, cb, arg);
}

void st_offset_max_time(struct store *s, struct st_partition *p,
			st_offset_cb cb, void *arg)
{
	offset_query(s, p, INT64_MIN, cb, arg);
}

struct sizes_ctx {
	st_sizes_cb cb;
	void *arg;
};

static void on_sizes(void *arg, const PGresult *res, const char *err,
		     const char *sqlstate)
{
	struct sizes_ctx *x = arg;
	(void)err;
	(void)sqlstate;
	int n = res ? PQntuples(res) : 0;
	struct st_log_size *v = n ? calloc((size_t)n, sizeof(*v)) : NULL;
	if (!res || (n && !v)) {
		x->cb(x->arg, ST_UNAVAILABLE, NULL, 0);
	} else {
		for (int i = 0; i < n; i++)
			v[i] = (struct st_log_size){
				atoi(PQgetvalue(res, i, 0)),
				atoi(PQgetvalue(res, i, 1)),
				strtoll(PQgetvalue(res, i, 2), NULL, 10)};
		x->cb(x->arg, ST_OK, v, (size_t)n);
	}
	free(v);
	free(x);
}

void st_log_sizes(struct store *s, st_sizes_cb cb, void *arg)
{
	/* On the catalog's connection, not a reader's: the sum scans the
	 * whole table, and fetches queued behind it would wait. */
	struct pgconn *c = pg_ready(s->catalog) ? s->catalog : NULL;
	struct sizes_ctx *x = c ? malloc(sizeof(*x)) : NULL;
	if (x) {
		*x = (struct sizes_ctx){cb, arg};
		if (pg_query(c,
			     "SELECT tid, partition, sum(bytes)::bigint FROM "
			     "samsa.log GROUP BY tid, partition ORDER BY tid, "
			     "partition",
			     0, NULL, NULL, NULL, false, on_sizes, x) == 0) {
			pg_sync(c);
			return;
		}
		free(x);
	}
	/* From the loop, as pgconn would call back. */
	struct later *l = calloc(1, sizeof(*l));
	if (l) {
		l->scb = cb;
		l->arg = arg;
		st_defer(s, fire_later, l);
	}
}

static void on_deleted_records(void *arg, const PGresult *res, const char *err,
			       const char *sqlstate)
{
	struct offset_ctx *o = arg;
	(void)res;
	(void)sqlstate;
	if (err) {
		o->cb(o->arg, ST_UNAVAILABLE, -1, -1);
		free(o);
		return;
	}
	struct st_partition *p = o->p;
	if (o->new_start > p->log_start)
		p->log_start = o->new_start;
	while (p->ring_count && ring_at(p, 0)->last < p->log_start)
		ring_pop(o->s, p);
	aborted_trim(p);
	o->cb(o->arg, ST_OK, p->log_start, -1);
	free(o);
}

static void on_step_ignore(void *arg, const PGresult *res, const char *err,
			   const char *sqlstate)
{
	(void)arg;
	(void)res;
	(void)err;
	(void)sqlstate;
}

void st_delete_records(struct store *s, struct st_partition *p, int64_t offset,
		       st_offset_cb cb, void *arg)
{
	struct offset_ctx *o =
		pg_ready(s->catalog) ? calloc(1, sizeof(*o)) : NULL;
	if (!o) {
		unavailable_soon(s, cb, NULL, arg);
		return;
	}
	if (offset < 0 || offset > p->hw)
		offset = p->hw;
	o->s = s;
	o->p = p;
	o->new_start = offset;
	o->cb = cb;
	o->arg = arg;
	char tid[16], part[16], off[24];
	snprintf(tid, sizeof(tid), "%d", p->topic->tid);
	snprintf(part, sizeof(part), "%d", p->index);
	snprintf(off, sizeof(off), "%" PRId64, offset);
	const char *v[3] = {tid, part, off};
	pg_query(s->catalog,
		 "UPDATE samsa.partitions SET log_start_offset = "
		 "greatest(log_start_offset, $3) WHERE tid = $1 AND "
		 "partition = $2",
		 3, v, NULL, NULL, false, on_step_ignore, NULL);
	pg_query(s->catalog,
		 "DELETE FROM samsa.log WHERE tid = $1 AND partition = $2 "
		 "AND last_offset < $3",
		 3, v, NULL, NULL, false, on_step_ignore, NULL);
	pg_query(s->catalog, aborted_trim_sql, 2, v, NULL, NULL, false,
		 on_step_ignore, NULL);
	pg_sync_cb(s->catalog, on_deleted_records, o);
}

struct pid_ctx {
	st_offset_cb cb;
	void *arg;
};

static void on_pid(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	struct pid_ctx *x = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1)
		x->cb(x->arg, ST_OK, strtoll(PQgetvalue(res, 0, 0), NULL, 10),
		      0);
	else
		x->cb(x->arg, ST_UNAVAILABLE, -1, -1);
	free(x);
}

void st_new_producer_id(struct store *s, st_offset_cb cb, void *arg)
{
	struct pid_ctx *x = pg_ready(s->catalog) ? malloc(sizeof(*x)) : NULL;
	if (!x) {
		unavailable_soon(s, cb, NULL, arg);
		return;
	}
	x->cb = cb;
	x->arg = arg;
	pg_query(s->catalog, "SELECT nextval('samsa.producer_ids')", 0, NULL,
		 NULL, NULL, false, on_pid, x);
	pg_sync(s->catalog);
}

/* --- retention
 * ---------------------------------------------------------------- */

struct retention_ctx {
	struct store *s;
	struct st_partition *p;
};

static void on_retention(void *arg, const PGresult *res, const char *err,
			 const char *sqlstate)
{
	struct retention_ctx *r = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
		int64_t start = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
		struct st_partition *p = r->p;
		if (!p->deleted && start > p->log_start) {
			p->log_start = start;
			while (p->ring_count && ring_at(p, 0)->last < start)
				ring_pop(r->s, p);
			aborted_trim(p);
		}
	}
	free(r);
}

void st_enforce_retention(struct store *s)
{
	if (!pg_ready(s->catalog))
		return;
	int64_t now = st_now_ms();
	for (size_t i = 0; i < s->ntopics; i++) {
		struct st_topic *t = s->topics[i];
		if (!t->cfg.delete_policy ||
		    (t->cfg.retention_ms < 0 && t->cfg.retention_bytes < 0))
			continue;
		for (int32_t j = 0; j < t->npartitions; j++) {
			struct st_partition *p = t->partitions[j];
			if (p->hw == p->log_start)
				continue;
			struct retention_ctx *r = calloc(1, sizeof(*r));
			if (!r)
				return;
			r->s = s;
			r->p = p;
			char tid[16], part[16], cutoff[24], bytes[24], hw[24];
			snprintf(tid, sizeof(tid), "%d", t->tid);
			snprintf(part, sizeof(part), "%d", p->index);
			snprintf(cutoff, sizeof(cutoff), "%" PRId64,
				 t->cfg.retention_ms < 0
					 ? INT64_MIN
					 : now - t->cfg.retention_ms);
			snprintf(bytes, sizeof(bytes), "%" PRId64,
				 t->cfg.retention_bytes < 0
					 ? INT64_MAX
					 : t->cfg.retention_bytes);
			snprintf(hw, sizeof(hw), "%" PRId64, p->hw);
			const char *v[5] = {tid, part, cutoff, bytes, hw};
			/* Batches wholly older than retention.ms go, and, as
			 * Kafka's segments, the oldest while what is newer
			 * than them still holds retention.bytes; only below
			 * the high watermark (a flush samsa has not heard
			 * commit yet is not counted).  The log start moves
			 * to the first batch kept.  One short transaction per
			 * partition that locks its row only when it deleted
			 * something: flushes lock the same rows. */
			pg_query(
				s->catalog,
				"WITH doomed AS (SELECT base_offset FROM "
				"(SELECT base_offset, every(max_timestamp < "
				"$3::bigint OR newer - bytes >= $4::bigint) "
				"OVER "
				"(ORDER BY base_offset) AS prefix FROM (SELECT "
				"base_offset, bytes, max_timestamp, sum(bytes) "
				"OVER (ORDER BY base_offset DESC) AS newer "
				"FROM "
				"samsa.log WHERE tid = $1 AND partition = $2 "
				"AND base_offset < $5::bigint) x) y WHERE "
				"prefix), gone AS (DELETE FROM samsa.log l "
				"USING doomed d WHERE l.tid = $1 AND "
				"l.partition = $2 AND l.base_offset = "
				"d.base_offset RETURNING l.last_offset) "
				"UPDATE samsa.partitions SET log_start_offset "
				"= "
				"greatest(log_start_offset, (SELECT "
				"max(last_offset) + 1 FROM gone)) WHERE tid = "
				"$1 "
				"AND partition = $2 AND EXISTS (SELECT FROM "
				"gone) RETURNING log_start_offset",
				5, v, NULL, NULL, false, on_retention, r);
			if (p->naborted)
				pg_query(s->catalog, aborted_trim_sql, 2, v,
					 NULL, NULL, false, on_step_ignore,
					 NULL);
			pg_sync(s->catalog);
		}
	}
}
