/*
 * Transactions (transaction version 1): AddPartitionsToTxn, AddOffsetsToTxn,
 * TxnOffsetCommit, EndTxn, DescribeTransactions, ListTransactions and
 * DescribeProducers.  The coordinator's state machine is storage/txn.c;
 * InitProducerId is in api_offsets.c.
 */
#include <string.h>
#include <time.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/group.h"
#include "proxy/handlers.h"
#include "storage/txn.h"

/* --- AddPartitionsToTxn ------------------------------------------------------
 */

/* One transaction's partitions (the whole request before v4). */
struct add_part {
	struct request *req;
	struct karr_topics {
		int32_t count;
		struct AddPartitionsToTxnRequest_AddPartitionsToTxnTopic *items;
	} * topics;
	struct AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult *res;
};

static void set_all(struct add_part *ap, int16_t err, bool only_clean)
{
	for (int32_t i = 0; i < ap->topics->count; i++)
		for (int32_t j = 0; j < ap->res[i].ResultsByPartition.count;
		     j++) {
			int16_t *e = &ap->res[i]
					      .ResultsByPartition.items[j]
					      .PartitionErrorCode;
			if (!only_clean || *e == KERR_NONE)
				*e = err;
		}
}

static void partitions_added(void *arg, enum st_status st, const char *msg)
{
	struct add_part *ap = arg;
	(void)msg;
	set_all(ap,
		kerr_from_coordinator(st, ap->req->hdr.RequestApiVersion, 2),
		false);
	req_release(ap->req);
}

/* Fills ap->res for ap->topics and starts the store call (holding req). */
static void add_partitions(struct request *req, struct add_part *ap,
			   struct kstr id, int64_t pid, int16_t epoch,
			   bool verify_only)
{
	struct store *s = req->srv->store;
	int32_t nt = ap->topics->count > 0 ? ap->topics->count : 0;
	int n = 0, total = 0;
	bool bad = false;
	for (int32_t i = 0; i < nt; i++)
		total += ap->topics->items[i].Partitions.count > 0
				 ? ap->topics->items[i].Partitions.count
				 : 0;
	struct st_partition **parts = arena_alloc(
		&req->arena, (size_t)(total > 0 ? total : 1) * sizeof(*parts));
	for (int32_t i = 0; i < nt; i++) {
		struct AddPartitionsToTxnRequest_AddPartitionsToTxnTopic *t =
			&ap->topics->items[i];
		struct st_topic *topic = st_topic_find(s, t->Name);
		ap->res[i].Name = t->Name;
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult
			*rp = req_array(
				req, &ap->res[i].ResultsByPartition,
				&AddPartitionsToTxnResponse_AddPartitionsToTxnPartitionResult_struct,
				np);
		for (int32_t j = 0; rp && j < np; j++) {
			rp[j].PartitionIndex = t->Partitions.items[j];
			struct st_partition *p =
				topic ? st_partition(topic,
						     t->Partitions.items[j])
				      : NULL;
			if (!p || !parts) {
				rp[j].PartitionErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
				bad = true;
				continue;
			}
			parts[n++] = p;
		}
	}
	if (bad) {
		/* All or nothing, as Kafka: the others were not tried. */
		set_all(ap, KERR_OPERATION_NOT_ATTEMPTED, true);
		return;
	}
	req_hold(req);
	st_txn_add_partitions(s, id, pid, epoch, parts, n, verify_only,
			      partitions_added, ap);
}

void handle_AddPartitionsToTxn(struct request *req)
{
	struct AddPartitionsToTxnRequest *ar = req->body;
	struct AddPartitionsToTxnResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	if (req->hdr.RequestApiVersion < 4) {
		struct add_part *ap = arena_alloc(&req->arena, sizeof(*ap));
		int32_t nt = ar->V3AndBelowTopics.count > 0
				     ? ar->V3AndBelowTopics.count
				     : 0;
		if (ap) {
			ap->req = req;
			ap->topics =
				(struct karr_topics *)&ar->V3AndBelowTopics;
			ap->res = req_array(
				req, &resp->ResultsByTopicV3AndBelow,
				&AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_struct,
				nt);
		}
		if (ap && (ap->res || nt == 0))
			add_partitions(req, ap, ar->V3AndBelowTransactionalId,
				       ar->V3AndBelowProducerId,
				       ar->V3AndBelowProducerEpoch, false);
		req_release(req);
		return;
	}
	/* v4+: the brokers' batched form, several transactions. */
	int32_t nx = ar->Transactions.count > 0 ? ar->Transactions.count : 0;
	struct AddPartitionsToTxnResponse_AddPartitionsToTxnResult *rx = req_array(
		req, &resp->ResultsByTransaction,
		&AddPartitionsToTxnResponse_AddPartitionsToTxnResult_struct,
		nx);
	for (int32_t k = 0; rx && k < nx; k++) {
		struct AddPartitionsToTxnRequest_AddPartitionsToTxnTransaction
			*x = &ar->Transactions.items[k];
		struct add_part *ap = arena_alloc(&req->arena, sizeof(*ap));
		int32_t nt = x->Topics.count > 0 ? x->Topics.count : 0;
		rx[k].TransactionalId = x->TransactionalId;
		if (!ap)
			continue;
		ap->req = req;
		ap->topics = (struct karr_topics *)&x->Topics;
		ap->res = req_array(
			req, &rx[k].TopicResults,
			&AddPartitionsToTxnResponse_AddPartitionsToTxnTopicResult_struct,
			nt);
		if (ap->res || nt == 0)
			add_partitions(req, ap, x->TransactionalId,
				       x->ProducerId, x->ProducerEpoch,
				       x->VerifyOnly);
	}
	req_release(req);
}

/* --- AddOffsetsToTxn, EndTxn
 * ---------------------------------------------------- */

static void error_done(void *arg, enum st_status st, const char *msg)
{
	struct request *req = arg;
	int16_t *err = req->ctx;
	(void)msg;
	*err = kerr_from_coordinator(st, req->hdr.RequestApiVersion, 2);
	req_release(req);
}

void handle_AddOffsetsToTxn(struct request *req)
{
	struct AddOffsetsToTxnRequest *ar = req->body;
	struct AddOffsetsToTxnResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	if (!kstr_is_text(ar->GroupId)) {
		/* Saved as text with the transaction. */
		resp->ErrorCode = KERR_INVALID_GROUP_ID;
		req_release(req);
		return;
	}
	req->ctx = &resp->ErrorCode;
	req_hold(req);
	st_txn_add_offsets(req->srv->store, ar->TransactionalId, ar->ProducerId,
			   ar->ProducerEpoch, ar->GroupId, error_done, req);
	req_release(req);
}

void handle_EndTxn(struct request *req)
{
	struct EndTxnRequest *er = req->body;
	struct EndTxnResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	resp->ProducerId = -1;
	resp->ProducerEpoch = -1;
	req->ctx = &resp->ErrorCode;
	req_hold(req);
	st_txn_end(req->srv->store, er->TransactionalId, er->ProducerId,
		   er->ProducerEpoch, er->Committed, error_done, req);
	req_release(req);
}

/* --- TxnOffsetCommit
 * ----------------------------------------------------------- */

struct txn_commit {
	struct request *req;
	struct TxnOffsetCommitResponse *resp;
};

static void set_commit_errors(struct TxnOffsetCommitResponse *resp, int16_t err)
{
	for (int32_t i = 0; i < resp->Topics.count; i++)
		for (int32_t j = 0; j < resp->Topics.items[i].Partitions.count;
		     j++) {
			int16_t *e = &resp->Topics.items[i]
					      .Partitions.items[j]
					      .ErrorCode;
			if (*e == KERR_NONE)
				*e = err;
		}
}

static void offsets_held(void *arg, enum st_status st, const char *msg)
{
	struct txn_commit *tc = arg;
	(void)msg;
	set_commit_errors(tc->resp, kerr_from_coordinator(st, 0, 0));
	req_release(tc->req);
}

void handle_TxnOffsetCommit(struct request *req)
{
	struct TxnOffsetCommitRequest *cr = req->body;
	struct TxnOffsetCommitResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	int16_t v = req->hdr.RequestApiVersion;
	int32_t nt = cr->Topics.count > 0 ? cr->Topics.count : 0;
	struct TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic *rt = req_array(
		req, &resp->Topics,
		&TxnOffsetCommitResponse_TxnOffsetCommitResponseTopic_struct,
		nt);
	struct txn_commit *tc = arena_alloc(&req->arena, sizeof(*tc));
	if (!resp || !tc || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	int total = 0, n = 0;
	for (int32_t i = 0; i < nt; i++)
		total += cr->Topics.items[i].Partitions.count > 0
				 ? cr->Topics.items[i].Partitions.count
				 : 0;
	struct st_offset_commit *c = arena_alloc(
		&req->arena, (size_t)(total > 0 ? total : 1) * sizeof(*c));
	for (int32_t i = 0; i < nt; i++) {
		struct TxnOffsetCommitRequest_TxnOffsetCommitRequestTopic *t =
			&cr->Topics.items[i];
		struct st_topic *topic = st_topic_find(s, t->Name);
		rt[i].Name = t->Name;
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition
			*rp = req_array(
				req, &rt[i].Partitions,
				&TxnOffsetCommitResponse_TxnOffsetCommitResponsePartition_struct,
				np);
		for (int32_t j = 0; rp && j < np; j++) {
			struct TxnOffsetCommitRequest_TxnOffsetCommitRequestPartition
				*q = &t->Partitions.items[j];
			rp[j].PartitionIndex = q->PartitionIndex;
			if (!topic || !st_partition(topic, q->PartitionIndex) ||
			    !c) {
				rp[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			c[n++] = (struct st_offset_commit){
				.topic = topic,
				.partition = q->PartitionIndex,
				.offset = q->CommittedOffset,
				.leader_epoch =
					v >= 2 ? q->CommittedLeaderEpoch : -1,
				.metadata = q->CommittedMetadata,
			};
		}
	}
	/* The consumer's group membership, as an OffsetCommit's (v3+). */
	int16_t gerr =
		!kstr_is_text(cr->GroupId)
			? KERR_INVALID_GROUP_ID
			: group_commit_check(groups_get(req->srv), cr->GroupId,
					     v >= 3 ? cr->GenerationId : -1,
					     v >= 3 ? cr->MemberId : KSTR_NULL,
					     v >= 3 ? cr->GroupInstanceId
						    : KSTR_NULL,
					     true, c, (size_t)n);
	/* Kafka answers a transactional commit at a stale member epoch (the
	 * consumer protocol) as one of a stale generation. */
	if (gerr == KERR_STALE_MEMBER_EPOCH)
		gerr = KERR_ILLEGAL_GENERATION;
	if (gerr != KERR_NONE) {
		set_commit_errors(resp, gerr);
	} else if (n > 0) {
		tc->req = req;
		tc->resp = resp;
		req_hold(req);
		st_txn_commit_offsets(s, cr->TransactionalId, cr->ProducerId,
				      cr->ProducerEpoch, cr->GroupId, c, n,
				      offsets_held, tc);
	}
	req_release(req);
}

/* --- DescribeTransactions, ListTransactions
 * ---------------------------------------- */

struct describe_one {
	struct request *req;
	struct DescribeTransactionsResponse_TransactionState *out;
};

static void describe_fill(void *arg, const struct st_txn_info *i)
{
	struct describe_one *d = arg;
	struct request *req = d->req;
	struct DescribeTransactionsResponse_TransactionState *o = d->out;
	o->TransactionState = req_str(req, i->state);
	o->TransactionTimeoutMs = i->timeout_ms;
	o->TransactionStartTimeMs = i->start_ms;
	o->ProducerId = i->producer_id;
	o->ProducerEpoch = i->epoch;
	/* One entry per topic, its partitions listed. */
	int nt = 0;
	struct st_topic **seen = arena_alloc(
		&req->arena, (size_t)(i->nparts + 1) * sizeof(*seen));
	for (int k = 0; seen && k < i->nparts; k++) {
		struct st_topic *t = st_partition_topic(i->parts[k]);
		bool dup = false;
		for (int j = 0; j < nt; j++)
			dup |= seen[j] == t;
		if (!dup)
			seen[nt++] = t;
	}
	struct DescribeTransactionsResponse_TopicData *td =
		req_array(req, &o->Topics,
			  &DescribeTransactionsResponse_TopicData_struct, nt);
	for (int j = 0; td && j < nt; j++) {
		td[j].Topic = req_str(req, seen[j]->name);
		int np = 0;
		for (int k = 0; k < i->nparts; k++)
			np += st_partition_topic(i->parts[k]) == seen[j];
		int32_t *pp = req_array_raw(req, &td[j].Partitions,
					    sizeof(int32_t), np);
		np = 0;
		for (int k = 0; pp && k < i->nparts; k++)
			if (st_partition_topic(i->parts[k]) == seen[j])
				pp[np++] = st_partition_index(i->parts[k]);
	}
}

void handle_DescribeTransactions(struct request *req)
{
	struct DescribeTransactionsRequest *dr = req->body;
	struct DescribeTransactionsResponse *resp = req_response(req);
	int32_t n =
		dr->TransactionalIds.count > 0 ? dr->TransactionalIds.count : 0;
	struct DescribeTransactionsResponse_TransactionState *out = req_array(
		req, &resp->TransactionStates,
		&DescribeTransactionsResponse_TransactionState_struct, n);
	if (!resp || (n && !out)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct kstr id = dr->TransactionalIds.items[i];
		struct describe_one d = {req, &out[i]};
		out[i].TransactionalId = id;
		out[i].TransactionState = KSTR_LIT("");
		out[i].ProducerId = -1;
		out[i].ProducerEpoch = -1;
		out[i].TransactionStartTimeMs = -1;
		if (id.len < 0 ||
		    !st_txns_each(req->srv->store, id, describe_fill, &d))
			out[i].ErrorCode = KERR_TRANSACTIONAL_ID_NOT_FOUND;
	}
	req_reply(req, resp);
}

struct list_ctx {
	struct request *req;
	struct ListTransactionsRequest *lr;
	struct ListTransactionsResponse_TransactionState *items;
	int32_t n, cap;
	int64_t now;
};

static void list_one(void *arg, const struct st_txn_info *i)
{
	struct list_ctx *l = arg;
	struct ListTransactionsRequest *lr = l->lr;
	bool ok = lr->StateFilters.count <= 0;
	for (int32_t k = 0; k < lr->StateFilters.count; k++)
		ok |= kstr_eq(lr->StateFilters.items[k], i->state);
	bool pid_ok = lr->ProducerIdFilters.count <= 0;
	for (int32_t k = 0; k < lr->ProducerIdFilters.count; k++)
		pid_ok |= lr->ProducerIdFilters.items[k] == i->producer_id;
	if (!ok || !pid_ok)
		return;
	if (l->req->hdr.RequestApiVersion >= 1 && lr->DurationFilter >= 0 &&
	    (i->start_ms < 0 || l->now - i->start_ms < lr->DurationFilter))
		return;
	struct ListTransactionsResponse_TransactionState *items = arena_grow(
		&l->req->arena, l->items, l->n, &l->cap, sizeof(*items));
	if (!items)
		return;
	l->items = items;
	struct ListTransactionsResponse_TransactionState *o = &l->items[l->n++];
	memset(o, 0, sizeof(*o));
	o->TransactionalId = req_str(l->req, i->id);
	o->ProducerId = i->producer_id;
	o->TransactionState = req_str(l->req, i->state);
}

void handle_ListTransactions(struct request *req)
{
	struct ListTransactionsRequest *lr = req->body;
	struct ListTransactionsResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct list_ctx l = {
		.req = req,
		.lr = lr,
		.now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
	};
	st_txns_each(req->srv->store, KSTR_NULL, list_one, &l);
	struct ListTransactionsResponse_TransactionState *out = req_array(
		req, &resp->TransactionStates,
		&ListTransactionsResponse_TransactionState_struct, l.n);
	if (out && l.n)
		memcpy(out, l.items, (size_t)l.n * sizeof(*out));
	/* Every state name is known (Kafka lists the unknown ones). */
	req_array_raw(req, &resp->UnknownStateFilters, sizeof(struct kstr), 0);
	req_reply(req, resp);
}

/* --- DescribeProducers
 * ------------------------------------------------------------ */

struct producers_ctx {
	struct request *req;
	struct DescribeProducersResponse_ProducerState *items;
	int32_t n, cap;
};

static void producer_one(void *arg, const struct st_producer_info *i)
{
	struct producers_ctx *c = arg;
	struct DescribeProducersResponse_ProducerState *items = arena_grow(
		&c->req->arena, c->items, c->n, &c->cap, sizeof(*items));
	if (!items)
		return;
	c->items = items;
	c->items[c->n++] = (struct DescribeProducersResponse_ProducerState){
		.ProducerId = i->producer_id,
		.ProducerEpoch = i->epoch,
		.LastSequence = i->last_sequence,
		.LastTimestamp = i->last_timestamp,
		.CoordinatorEpoch = -1,
		.CurrentTxnStartOffset = i->txn_start,
	};
}

void handle_DescribeProducers(struct request *req)
{
	struct DescribeProducersRequest *dr = req->body;
	struct DescribeProducersResponse *resp = req_response(req);
	int32_t nt = dr->Topics.count > 0 ? dr->Topics.count : 0;
	struct DescribeProducersResponse_TopicResponse *rt =
		req_array(req, &resp->Topics,
			  &DescribeProducersResponse_TopicResponse_struct, nt);
	if (!resp || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < nt; i++) {
		struct DescribeProducersRequest_TopicRequest *t =
			&dr->Topics.items[i];
		struct st_topic *topic =
			st_topic_find(req->srv->store, t->Name);
		rt[i].Name = t->Name;
		int32_t np = t->PartitionIndexes.count > 0
				     ? t->PartitionIndexes.count
				     : 0;
		struct DescribeProducersResponse_PartitionResponse *rp = req_array(
			req, &rt[i].Partitions,
			&DescribeProducersResponse_PartitionResponse_struct,
			np);
		for (int32_t j = 0; rp && j < np; j++) {
			rp[j].PartitionIndex = t->PartitionIndexes.items[j];
			struct st_partition *p =
				topic ? st_partition(topic,
						     rp[j].PartitionIndex)
				      : NULL;
			if (!p) {
				rp[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			struct producers_ctx c = {.req = req};
			st_producers_each(p, producer_one, &c);
			struct DescribeProducersResponse_ProducerState *o = req_array(
				req, &rp[j].ActiveProducers,
				&DescribeProducersResponse_ProducerState_struct,
				c.n);
			if (o && c.n)
				memcpy(o, c.items, (size_t)c.n * sizeof(*o));
		}
	}
	req_reply(req, resp);
}
