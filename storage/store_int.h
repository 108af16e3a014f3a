/*
 * store_int: what the store's own files (store.c, catalog.c, log.c,
 * migrate.c) share.  Nothing outside storage/ includes this.
 */
#ifndef SAMSA_STORE_INT_H
#define SAMSA_STORE_INT_H

#include <libpq-fe.h>

#include "storage/pgconn.h"
#include "storage/store.h"

/* One record batch held in memory: in a pending append or the tail cache. */
struct st_batch {
	int64_t base, last;
	int64_t max_ts;
	int64_t producer_id;
	int16_t producer_epoch;
	int32_t base_seq;
	int32_t count;
	int16_t attributes;
	int8_t marker;	   /* ST_MARKER_* for a control batch samsa wrote */
	int64_t txn_first; /* a marker's transaction's first offset */
	size_t len;
	uint8_t data[]; /* the batch as stored */
};

#define ST_MARKER_COMMIT 1
#define ST_MARKER_ABORT	 2

/* The last batches of one producer on one partition (Kafka keeps five). */
#define ST_PRODUCER_BATCHES 5
struct st_producer {
	int64_t id;
	int16_t epoch;
	int n; /* entries used, newest last */
	/* The newest batch's or marker's max timestamp, as Kafka's
	 * ProducerStateEntry.lastTimestamp: producer.id.expiration.ms counts
	 * from it. */
	int64_t last_ts;
	struct {
		int32_t first_seq, last_seq;
		int64_t base, last;
	} b[ST_PRODUCER_BATCHES];
};

/*
 * A partition's producers by id: open addressing with linear probing, cap a
 * power of two (0 when empty), at most half full.  The map owns the
 * entries.  A zeroed struct is an empty map.
 */
struct st_producer_map {
	struct st_producer **slots; /* NULL: free */
	size_t cap, count;
};

/*
 * A producer's transaction open on one partition: joined by
 * AddPartitionsToTxn, first set by its first batch, gone when its marker
 * commits.  The oldest first offset is the partition's last stable offset.
 */
struct st_open_txn {
	int64_t pid;
	int16_t epoch;
	int64_t first; /* -1 while nothing was written */
	bool ending;   /* its marker is on its way: no more batches */
	struct st_open_txn *next;
};

/* An aborted transaction's range on a partition (the aborted index). */
struct st_aborted_txn {
	int64_t pid, first, last;
};

/* One st_append() call waiting for its transaction. */
struct st_append {
	struct st_partition *p;
	struct st_batch **batches;
	int nbatches;
	int64_t log_append_time;
	st_append_cb cb;
	void *arg;
	struct st_append *next;
	size_t bytes; /* of its batches, counted in the store's queue_bytes */
};

struct st_partition {
	struct st_topic *topic;
	int32_t index;
	int32_t leader_epoch;
	int64_t log_start;
	int64_t hw;	/* committed end of the log (next offset) */
	int64_t next;	/* next offset to assign (>= hw with appends pending) */
	bool reloading; /* state unknown after a failed flush */
	bool reload_queued; /* and its reload is under way */
	bool deleted;
	/* Its last append in the flush being built (st_flush_now only). */
	struct st_append *flush_last;

	/* Tail cache: committed batches [cache_start, hw), oldest first. */
	struct st_batch **ring;
	size_t ring_cap, ring_head, ring_count;
	size_t cache_bytes;
	/* In the store's eviction list (log.c), least recently appended
	 * first, while it holds two batches or more. */
	struct st_partition *evict_prev, *evict_next;
	bool evictable;

	/* Read-ahead: the batches of the last read from Postgres, oldest
	 * first, so a consumer catching up reads Postgres once per few MiB. */
	struct st_batch **ra;
	size_t ra_count, ra_bytes;
	bool ra_reading;  /* st_read_ahead's read is under way */
	size_t avg_batch; /* bytes per batch lately, to size reads */

	/* Log compaction (compact.c): what was written since the last
	 * cleaning pass, to tell when the next one is due. */
	struct {
		bool cleaned;		/* a pass ran since start-up */
		bool idle;		/* the last pass found nothing to do */
		size_t idle_dirty;	/* dirty_bytes it looked at then */
		int64_t first_dirty;	/* where the last pass stopped */
		size_t clean_bytes;	/* [log start, first_dirty) after it */
		size_t dirty_bytes;	/* appended since */
		int64_t first_dirty_ts; /* timestamp of the first of those */
		int64_t next_horizon;	/* earliest tombstone delete horizon */
		int64_t backoff_until;	/* no pass before (wall-clock ms) */
	} clean;
	/* Bumped when compaction rewrites batches: a read from Postgres that
	 * started before does not become the read-ahead. */
	uint32_t read_gen;

	struct st_producer_map producers;
	struct st_open_txn *txns;
	struct st_aborted_txn *aborted; /* by last offset */
	size_t naborted, cap_aborted;
	struct st_waiter waiters;    /* list head */
	struct st_waiter ra_waiters; /* for the read-ahead in flight */
};

struct store {
	struct event_base *base;
	struct st_options opts;
	char *conninfo;
	char cluster_id[32];
	struct pgconn *writer;	/* log appends */
	struct pgconn *catalog; /* catalog changes */
	struct pgconn **readers;
	int nreaders;
	int next_reader;

	struct st_topic **topics; /* sorted by name */
	size_t ntopics, cap_topics;
	struct st_topic **graveyard; /* deleted topics, freed at close */
	size_t ngrave;
	char **creating; /* names with a creation in flight */
	size_t ncreating;

	size_t cache_bytes; /* in the tail caches of all partitions */
	struct st_partition *evict_head, *evict_tail;
	size_t ra_total; /* read-ahead bytes of all partitions */
	struct st_append *queue_head, *queue_tail; /* waiting for a flush */
	size_t queue_bytes;			   /* their batches' bytes */
	bool flush_in_flight;
	bool closing; /* store_close under way: no new work (reloads) */
	struct event *flush_ev;
	struct event *retention_ev;
	struct st_cleaner *cleaner; /* compact.c */
	struct st_groups *groups;   /* groups.c */
	struct st_txns *txns;	    /* txn.c */
};

/* Runs fn(arg) from the loop soon (never before returning). */
void st_defer(struct store *s, void (*fn)(void *arg), void *arg);

/* migrate.c: applies the schema migrations on a blocking connection. */
int st_migrate(PGconn *conn, char *err, size_t errlen);

/* catalog.c */
int st_catalog_load(struct store *s, PGconn *conn, char *err, size_t errlen);
void st_topic_free(struct st_topic *t);
void st_topic_resolve(struct st_topic *t);
struct st_partition *st_partition_new(struct st_topic *t, int32_t index);

/* log.c */
int st_log_load(struct store *s, PGconn *conn, char *err, size_t errlen);
void st_partition_free(struct st_partition *p);
/* p's topic is deleted: wakes its waiters; appends queued or in flight
 * for it are answered "topic deleted" and, once p is partition 0, the
 * topic's rows any of them left are deleted behind them on the writer. */
void st_partition_retire(struct store *s, struct st_partition *p);
struct pgconn *st_reader(struct store *s);
/* Starts a flush of the queued appends unless one is in flight. */
void st_flush_now(struct store *s);

/*
 * A batch compaction rewrote (data != NULL: its new bytes, borrowed) or
 * deleted (data == NULL), for st_log_rewritten().
 */
struct st_rewrite {
	int64_t base;
	const uint8_t *data;
	size_t len;
	int64_t max_ts;
};
/* log.c: rw[0..n) (by base offset) committed: the tail cache takes the new
 * bytes and drops the deleted batches; the read-ahead is dropped. */
void st_log_rewritten(struct store *s, struct st_partition *p,
		      const struct st_rewrite *rw, size_t n);

/* log.c: the first of p's aborted transactions (sorted by last offset)
 * that ends at or after offset; naborted when none does. */
size_t st_aborted_from(const struct st_partition *p, int64_t offset);
/* log.c: p's producer with that id, NULL when it has none. */
struct st_producer *st_producer_find(const struct st_partition *p, int64_t id);
/* log.c: compaction deleted the marker at offset last: p's aborted
 * transaction ending there, if any, is no longer listed by fetches. */
void st_aborted_forget(struct st_partition *p, int64_t last);

/* compact.c: the log cleaner (a timer and a connection of its own). */
int st_cleaner_start(struct store *s);
void st_cleaner_close(struct store *s);

/*
 * log.c: forgets, on every partition, the producers whose last write is
 * producer.id.expiration.ms or more before now and that have no transaction
 * open there (Kafka's ProducerStateManager.removeExpiredProducers).  In
 * memory only: the log keeps their batches.  txn.c's timer calls it every
 * producer.id.expiration.check.interval.ms.
 */
void st_expire_producers(struct store *s, int64_t now);

/* txn.c: the transaction coordinator's state (start-up, close). */
int st_txns_load(struct store *s, PGconn *conn, char *err, size_t errlen);
void st_txns_close(struct store *s);

#endif
