/*
 * store: samsa's state in Postgres, and the in-memory view of it that the
 * broker serves from.
 *
 * The catalog (topics, partitions, configs) is loaded at start-up and kept in
 * memory; changes are written to Postgres first and applied in memory when
 * the write commits.  Each partition's log is one row per record batch in
 * samsa.log.  Appends are grouped: every batch that arrives while a flush is
 * in flight joins the next flush, one transaction for all of them (group
 * commit, pipelined statements); an append is acknowledged when its
 * transaction commits.  Committed batches stay in memory, in a tail cache
 * that keeps what was appended last up to a size for all partitions (every
 * partition's newest batch always), so consumers at the head, or a few
 * hundred MB behind, do not touch Postgres.
 *
 * All calls are made from the event loop.  Asynchronous calls take a
 * callback that runs exactly once, later, from the loop; they never call it
 * before returning.
 */
#ifndef SAMSA_STORE_H
#define SAMSA_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "protocol/kbuf.h"
#include "storage/topic_config.h"

/* Outcomes of storage calls; the proxy maps them to Kafka error codes. */
enum st_status {
	ST_OK = 0,
	ST_UNAVAILABLE,	 /* Postgres unreachable or the write failed: retry */
	ST_EXISTS,	 /* topic already exists */
	ST_NOT_FOUND,	 /* no such topic/partition */
	ST_INVALID,	 /* malformed batch or bad argument */
	ST_CORRUPT,	 /* CRC or framing wrong */
	ST_TOO_LARGE,	 /* batch over max.message.bytes */
	ST_OUT_OF_RANGE, /* offset outside [log start, high watermark] */
	ST_OUT_OF_ORDER, /* producer sequence gap */
	ST_BAD_EPOCH,	 /* producer epoch older than the current one */
	ST_UNKNOWN_PRODUCER,
	ST_NO_KEY,	  /* keyless record on a compacted topic */
	ST_BAD_TIMESTAMP, /* a record's timestamp too far from the clock */
	ST_DELETED,	  /* the topic was deleted meanwhile */
	/* transactions (storage/txn.h) */
	ST_TXN_STATE,	/* not allowed in the transaction's state */
	ST_FENCED,	/* a newer epoch of the transactional id exists */
	ST_PID_MAPPING, /* producer id not the transactional id's */
	ST_CONCURRENT,	/* the transaction is completing: retry */
	ST_BAD_TIMEOUT, /* transaction timeout over the broker's maximum */
};

struct store;
struct st_partition;

struct st_topic {
	int32_t tid;	 /* internal id, key of the log rows */
	struct kuuid id; /* Kafka topic id */
	char *name;
	int32_t npartitions;
	struct st_partition **partitions;
	struct tc_override *configs; /* the topic's own settings */
	size_t nconfigs;
	struct tc_values cfg; /* resolved */
	bool internal;
	bool deleting; /* a delete is in flight */
	/* Growths (st_create_partitions) in flight, and the most partitions
	 * one of them asked for (0 when none is). */
	int32_t ngrowing, growing_to;
};

struct st_options {
	const char *conninfo;
	const char *schema; /* "samsa" */
	size_t cache_bytes; /* tail cache of all partitions (0: 512 MiB) */
	int readers;	    /* Postgres connections for reads */
};

/*
 * Connects (blocking: start-up only), applies migrations, loads the catalog
 * and opens the loop's connections.  Returns NULL with a one-line reason in
 * err.  opts strings are copied.
 */
struct store *store_open(struct event_base *base, const struct st_options *opts,
			 char *err, size_t errlen);
void store_close(struct store *s);

/* Wall-clock milliseconds since the epoch, as Kafka timestamps count. */
int64_t st_now_ms(void);

/* The cluster id (22-char base64 uuid), made on first start. */
const char *store_cluster_id(const struct store *s);

/* --- catalog ----------------------------------------------------------- */

size_t st_topic_count(const struct store *s);
/* Topics in name order; valid until the next catalog change. */
struct st_topic *st_topic_at(const struct store *s, size_t i);
struct st_topic *st_topic_find(const struct store *s, struct kstr name);
struct st_topic *st_topic_find_id(const struct store *s,
				  const struct kuuid *id);
/* The partition, or NULL when the index is out of range. */
struct st_partition *st_partition(const struct st_topic *t, int32_t index);

typedef void (*st_done_cb)(void *arg, enum st_status st, const char *msg);

/* Kafka's rule for topic names: 1 to 249 of [a-zA-Z0-9._-], not "." or
 * "..". */
bool st_topic_name_valid(struct kstr name);

/*
 * Creates a topic with its own configs (validated by the caller).  cb gets
 * ST_EXISTS when the name is taken (also by a creation in flight).
 */
void st_create_topic(struct store *s, struct kstr name, int32_t partitions,
		     const struct tc_override *configs, size_t nconfigs,
		     st_done_cb cb, void *arg);
/* Deletes a topic and its log; ST_NOT_FOUND while a delete of it is in
 * flight already. */
void st_delete_topic(struct store *s, struct st_topic *t, st_done_cb cb,
		     void *arg);
/* Grows the partition count to total (no change when it has that many
 * already, another growth having gone first).  Until it is done, total
 * counts in t->growing_to. */
void st_create_partitions(struct store *s, struct st_topic *t, int32_t total,
			  st_done_cb cb, void *arg);
/*
 * Edits the topic's own configs: each of configs[0..n) (copied) is set, or
 * removed when its value is NULL; with replace, every other one is removed
 * too.  Changes in flight together apply in the order they were asked for,
 * each on top of the one before.  Names must be distinct.
 */
void st_set_configs(struct store *s, struct st_topic *t, bool replace,
		    const struct tc_override *configs, size_t n, st_done_cb cb,
		    void *arg);

/* --- log --------------------------------------------------------------- */

int32_t st_partition_index(const struct st_partition *p);
struct st_topic *st_partition_topic(const struct st_partition *p);
int64_t st_high_watermark(const struct st_partition *p);
int64_t st_log_start(const struct st_partition *p);
int32_t st_leader_epoch(const struct st_partition *p);
/* Whether p's topic was deleted (p is then kept only for those who held
 * it). */
bool st_partition_deleted(const struct st_partition *p);

struct st_append_result {
	enum st_status status;
	int64_t base_offset;
	int64_t log_append_time; /* -1 unless LogAppendTime */
	int64_t log_start_offset;
	const char *message; /* detail for errors, or NULL */
};

typedef void (*st_append_cb)(void *arg, const struct st_append_result *r);

/*
 * Appends the batches of a Produce `records` field (borrowed until the call
 * returns: the bytes are copied) to p.  Checks framing, CRC, size, producer
 * sequence; duplicates of one of a producer's last five batches succeed with
 * their original offsets.  cb runs when the batches are committed or failed.
 */
void st_append(struct store *s, struct st_partition *p, const uint8_t *records,
	       size_t len, st_append_cb cb, void *arg);
/* The same, the records' decompression drawing on *inflate_left (one
 * request's budget, shared by its partitions): a batch past it is refused
 * as too large. */
void st_append_within(struct store *s, struct st_partition *p,
		      const uint8_t *records, size_t len, size_t *inflate_left,
		      st_append_cb cb, void *arg);

/*
 * A fetch's data: record batches from offset on, whole batches, stopping
 * once max_bytes is reached (the first batch always included).  Appends the
 * bytes to out (out NULL: only counts them).  Returns the number of bytes
 * (0 at the end of the log), or -1 when the range is not in the tail cache
 * (use st_read).
 */
long st_read_cached(struct st_partition *p, int64_t offset, int32_t max_bytes,
		    struct kb_writer *out);

typedef void (*st_read_cb)(void *arg, enum st_status st, const uint8_t *data,
			   size_t len);
/*
 * Reads the same from Postgres.  data is valid during the callback only.
 */
void st_read(struct store *s, struct st_partition *p, int64_t offset,
	     int32_t max_bytes, st_read_cb cb, void *arg);
/*
 * A consumer of p fetched at offset: when that is in the second half of
 * what the last st_read brought back beyond the tail cache, the next few
 * MiB are read from Postgres in the background, so that its later fetches
 * find them in memory instead of waiting for Postgres.
 */
void st_read_ahead(struct store *s, struct st_partition *p, int64_t offset);
/*
 * True while the background read st_read_ahead sent is in flight and is
 * the one to bring offset: a fetch that missed the cache there waits for it
 * (st_wait_read_ahead) rather than reading the same bytes from Postgres a
 * second time.
 */
bool st_read_ahead_brings(const struct st_partition *p, int64_t offset);

/*
 * Long-poll support: a waiter is told once when p's high watermark moves.
 * The waiter struct belongs to the caller and must stay put until it fires
 * or is cancelled.
 */
struct st_waiter {
	void (*fn)(void *arg);
	void *arg;
	struct st_waiter *next, *prev;
	struct st_partition *p;
};
void st_wait(struct st_partition *p, struct st_waiter *w);
/* The same, told once when p's read-ahead in flight lands, whatever came of
 * it, and not by appends. */
void st_wait_read_ahead(struct st_partition *p, struct st_waiter *w);
void st_wait_cancel(struct st_waiter *w);

typedef void (*st_offset_cb)(void *arg, enum st_status st, int64_t offset,
			     int64_t timestamp);
/* First offset whose timestamp >= ts (-1 offset when none). */
void st_offset_for_time(struct store *s, struct st_partition *p, int64_t ts,
			st_offset_cb cb, void *arg);
/* The offset and timestamp of the record with the largest timestamp. */
void st_offset_max_time(struct store *s, struct st_partition *p,
			st_offset_cb cb, void *arg);

/* Bytes of record batches stored for one partition (st_log_sizes). */
struct st_log_size {
	int32_t tid, partition;
	int64_t bytes;
};
typedef void (*st_sizes_cb)(void *arg, enum st_status st,
			    const struct st_log_size *sizes, size_t n);
/*
 * The bytes stored for every partition that holds any, sorted by tid and
 * partition (DescribeLogDirs' PartitionSize: what Postgres keeps of the
 * batches, not counting its own overhead).  A scan of the log table, on
 * the catalog's connection.  cb is called once, never before the call
 * returns; sizes is valid during the call only.
 */
void st_log_sizes(struct store *s, st_sizes_cb cb, void *arg);

/* Moves the log start to offset (<= high watermark) and deletes what lies
 * before it. */
void st_delete_records(struct store *s, struct st_partition *p, int64_t offset,
		       st_offset_cb cb, void *arg);

/* A new producer id (InitProducerId without a transactional id). */
void st_new_producer_id(struct store *s, st_offset_cb cb, void *arg);

/* --- transactions on the log ------------------------------------------- */

/*
 * The last stable offset: the first offset of the oldest transaction still
 * open on p, else the high watermark.  read_committed reads stop there.
 */
int64_t st_last_stable(const struct st_partition *p);

/*
 * Calls fn for every aborted transaction on p whose data overlaps
 * [from, to): its producer id and first offset (Fetch's
 * AbortedTransactions), oldest first.  Returns how many.
 */
int st_aborted_txns(const struct st_partition *p, int64_t from, int64_t to,
		    void (*fn)(void *arg, int64_t producer_id,
			       int64_t first_offset),
		    void *arg);

/*
 * Lets producer_id (at epoch) write transactional batches to p until its
 * marker is written (AddPartitionsToTxn); idempotent.
 */
void st_txn_join(struct st_partition *p, int64_t producer_id, int16_t epoch);

/*
 * Ends producer_id's transaction on p: appends a COMMIT or ABORT control
 * batch through the normal append path (an abort is indexed in the same
 * Postgres transaction).  When the producer wrote nothing to p it only
 * forgets the transaction.  cb as for st_append.
 */
void st_append_marker(struct store *s, struct st_partition *p,
		      int64_t producer_id, int16_t epoch, bool commit,
		      st_append_cb cb, void *arg);

/* One producer of a partition as DescribeProducers shows it. */
struct st_producer_info {
	int64_t producer_id;
	int16_t epoch;
	int32_t last_sequence;
	int64_t last_timestamp; /* its newest batch's or marker's, ms */
	int64_t txn_start; /* first offset of its open transaction, or -1 */
};
/* Calls fn for every producer p knows. */
void st_producers_each(const struct st_partition *p,
		       void (*fn)(void *arg, const struct st_producer_info *i),
		       void *arg);

/* Runs retention once over every partition (also on a timer). */
void st_enforce_retention(struct store *s);

#endif
