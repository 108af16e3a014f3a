/*
 * txn: the transaction coordinator (Kafka transactions at transaction
 * version 1), its state kept in Postgres (samsa.transactions, one row per
 * transactional id) and in memory.
 *
 * A transactional id maps to a producer id and epoch, a state (Empty,
 * Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort), a
 * timeout, the partitions and groups of its open transaction and the offsets
 * held until it commits.  Ending a transaction first saves the Prepare state,
 * then writes a marker to every partition through the log's append path,
 * then (on commit) writes the held offsets to the groups, then saves the
 * Complete state: a restart in between finds the Prepare state and finishes
 * the job (a partition already marked needs no second marker).  Transactions
 * open longer than their timeout are aborted with a bumped epoch, which
 * fences the producer that let them lapse.
 *
 * All calls are made from the event loop; callbacks run later, from the
 * loop, exactly once.  Statuses: ST_PID_MAPPING (unknown id or another
 * producer id), ST_FENCED (an older epoch), ST_CONCURRENT (the transaction
 * is completing: retry), ST_TXN_STATE, ST_BAD_TIMEOUT, ST_UNAVAILABLE.
 */
#ifndef SAMSA_TXN_H
#define SAMSA_TXN_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/kbuf.h"
#include "storage/groups.h"
#include "storage/store.h"

typedef void (*st_pid_cb)(void *arg, enum st_status st, int64_t producer_id,
			  int16_t epoch);

/*
 * InitProducerId for transactional id `id` (borrowed for the call):
 * creates it, or bumps its epoch (aborting a transaction left open, in
 * which case cb gets ST_CONCURRENT and the client retries).  producer_id /
 * epoch are the client's own (KIP-360) or -1.
 */
void st_txn_init_producer(struct store *s, struct kstr id, int32_t timeout_ms,
			  int64_t producer_id, int16_t epoch, st_pid_cb cb,
			  void *arg);

/*
 * Adds parts[0..n) to the transaction (opening it); with verify_only,
 * checks that they are in it instead (ST_TXN_STATE when not).
 */
void st_txn_add_partitions(struct store *s, struct kstr id, int64_t producer_id,
			   int16_t epoch, struct st_partition *const *parts,
			   int n, bool verify_only, st_done_cb cb, void *arg);

/* Adds group's offsets to the transaction (AddOffsetsToTxn). */
void st_txn_add_offsets(struct store *s, struct kstr id, int64_t producer_id,
			int16_t epoch, struct kstr group, st_done_cb cb,
			void *arg);

/*
 * Holds c[0..n) for group until the transaction ends (TxnOffsetCommit);
 * written to the group's offsets when it commits.  Copies what it needs.
 */
void st_txn_commit_offsets(struct store *s, struct kstr id, int64_t producer_id,
			   int16_t epoch, struct kstr group,
			   const struct st_offset_commit *c, int n,
			   st_done_cb cb, void *arg);

/* EndTxn: commits or aborts; cb runs once the transaction is complete. */
void st_txn_end(struct store *s, struct kstr id, int64_t producer_id,
		int16_t epoch, bool commit, st_done_cb cb, void *arg);

/* True while a transaction holds an offset for group/t/partition. */
bool st_txn_offset_pending(struct store *s, struct kstr group,
			   const struct st_topic *t, int32_t partition);

/* One transactional id as DescribeTransactions and ListTransactions show it;
 * borrowed for the callback. */
struct st_txn_info {
	const char *id;
	int64_t producer_id;
	int16_t epoch;
	const char *state; /* Kafka's name: "Ongoing" ... */
	int32_t timeout_ms;
	int64_t start_ms; /* -1 when no transaction is open */
	struct st_partition *const *parts;
	int nparts;
};

/* Calls fn for each transactional id (all of them when id is null, else
 * the one; returns false when it is unknown). */
bool st_txns_each(struct store *s, struct kstr id,
		  void (*fn)(void *arg, const struct st_txn_info *i),
		  void *arg);

#endif
