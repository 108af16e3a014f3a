/*
 * ListOffsets, OffsetForLeaderEpoch and InitProducerId (idempotent
 * producers here; transactional ids go to the coordinator, storage/txn.c).
 */
#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"
#include "storage/txn.h"

enum {
	TS_LATEST = -1,
	TS_EARLIEST = -2,
	TS_MAX_TIMESTAMP = -3,
	TS_EARLIEST_LOCAL = -4,
	TS_LATEST_TIERED = -5,
};

struct list_item {
	struct request *req;
	struct ListOffsetsResponse_ListOffsetsPartitionResponse *r;
	struct st_partition *p;
	bool committed; /* read_committed */
};

static void offset_found(void *arg, enum st_status st, int64_t offset,
			 int64_t ts)
{
	struct list_item *li = arg;
	/* As Kafka: read_committed finds nothing at or past the last stable
	 * offset (the answer may not point into an open transaction). */
	if (li->committed && offset >= st_last_stable(li->p))
		offset = -1;
	li->r->ErrorCode = kerr_from_status(st);
	li->r->Offset = offset;
	li->r->Timestamp = offset >= 0 ? ts : -1;
	req_release(li->req);
}

void handle_ListOffsets(struct request *req)
{
	struct ListOffsetsRequest *lr = req->body;
	struct ListOffsetsResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	int32_t nt = lr->Topics.count > 0 ? lr->Topics.count : 0;
	struct ListOffsetsResponse_ListOffsetsTopicResponse *rt = req_array(
		req, &resp->Topics,
		&ListOffsetsResponse_ListOffsetsTopicResponse_struct, nt);
	if (!resp || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	for (int32_t i = 0; i < nt; i++) {
		struct ListOffsetsRequest_ListOffsetsTopic *t =
			&lr->Topics.items[i];
		struct st_topic *topic = st_topic_find(s, t->Name);
		rt[i].Name = t->Name;
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct ListOffsetsResponse_ListOffsetsPartitionResponse *rp = req_array(
			req, &rt[i].Partitions,
			&ListOffsetsResponse_ListOffsetsPartitionResponse_struct,
			np);
		for (int32_t j = 0; rp && j < np; j++) {
			struct ListOffsetsRequest_ListOffsetsPartition *q =
				&t->Partitions.items[j];
			struct ListOffsetsResponse_ListOffsetsPartitionResponse
				*r = &rp[j];
			r->PartitionIndex = q->PartitionIndex;
			r->Timestamp = -1;
			r->Offset = -1;
			struct st_partition *p =
				topic ? st_partition(topic, q->PartitionIndex)
				      : NULL;
			if (!p) {
				r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			r->LeaderEpoch = st_leader_epoch(p);
			switch (q->Timestamp) {
			case TS_LATEST:
			case TS_LATEST_TIERED:
				/* read_committed sees up to the last stable
				 * offset. */
				r->Offset = lr->IsolationLevel == 1
						    ? st_last_stable(p)
						    : st_high_watermark(p);
				continue;
			case TS_EARLIEST:
			case TS_EARLIEST_LOCAL:
				r->Offset = st_log_start(p);
				continue;
			default:
				break;
			}
			struct list_item *li =
				arena_alloc(&req->arena, sizeof(*li));
			if (!li || q->Timestamp < TS_LATEST_TIERED) {
				r->ErrorCode = li ? KERR_INVALID_REQUEST
						  : KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			li->req = req;
			li->r = r;
			li->p = p;
			li->committed = lr->IsolationLevel == 1;
			req_hold(req);
			if (q->Timestamp == TS_MAX_TIMESTAMP)
				st_offset_max_time(s, p, offset_found, li);
			else
				st_offset_for_time(s, p, q->Timestamp,
						   offset_found, li);
		}
	}
	req_release(req);
}

void handle_OffsetForLeaderEpoch(struct request *req)
{
	struct OffsetForLeaderEpochRequest *er = req->body;
	struct OffsetForLeaderEpochResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	if (!resp) {
		req_close_connection(req);
		return;
	}
	int32_t nt = er->Topics.count > 0 ? er->Topics.count : 0;
	struct OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult *rt = req_array(
		req, &resp->Topics,
		&OffsetForLeaderEpochResponse_OffsetForLeaderTopicResult_struct,
		nt);
	for (int32_t i = 0; rt && i < nt; i++) {
		struct OffsetForLeaderEpochRequest_OffsetForLeaderTopic *t =
			&er->Topics.items[i];
		struct st_topic *topic = st_topic_find(s, t->Topic);
		rt[i].Topic = t->Topic;
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct OffsetForLeaderEpochResponse_EpochEndOffset *rp = req_array(
			req, &rt[i].Partitions,
			&OffsetForLeaderEpochResponse_EpochEndOffset_struct,
			np);
		for (int32_t j = 0; rp && j < np; j++) {
			struct OffsetForLeaderEpochRequest_OffsetForLeaderPartition
				*q = &t->Partitions.items[j];
			rp[j].Partition = q->Partition;
			struct st_partition *p =
				topic ? st_partition(topic, q->Partition)
				      : NULL;
			if (!p) {
				rp[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
				rp[j].LeaderEpoch = -1;
				rp[j].EndOffset = -1;
				continue;
			}
			/* One leader epoch so far: it ends at the high
			 * watermark. */
			rp[j].LeaderEpoch = st_leader_epoch(p);
			rp[j].EndOffset = st_high_watermark(p);
		}
	}
	req_reply(req, resp);
}

static void txn_pid(void *arg, enum st_status st, int64_t id, int16_t epoch)
{
	struct request *req = arg;
	struct InitProducerIdResponse *resp = req->held_resp;
	resp->ErrorCode =
		kerr_from_coordinator(st, req->hdr.RequestApiVersion, 4);
	resp->ProducerId = st == ST_OK ? id : -1;
	resp->ProducerEpoch = st == ST_OK ? epoch : -1;
	req_release(req);
}

static void pid_allocated(void *arg, enum st_status st, int64_t id, int64_t ts)
{
	struct request *req = arg;
	struct InitProducerIdResponse *resp = req->held_resp;
	(void)ts;
	resp->ErrorCode = kerr_from_status(st);
	if (st != ST_OK)
		resp->ErrorCode = KERR_COORDINATOR_NOT_AVAILABLE;
	resp->ProducerId = st == ST_OK ? id : -1;
	resp->ProducerEpoch = st == ST_OK ? 0 : -1;
	req_release(req);
}

void handle_InitProducerId(struct request *req)
{
	struct InitProducerIdRequest *ir = req->body;
	struct InitProducerIdResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	if (!kstr_is_text(ir->TransactionalId)) {
		/* Saved as text: Postgres would refuse it at every try. */
		resp->ErrorCode = KERR_INVALID_REQUEST;
		resp->ProducerId = -1;
		resp->ProducerEpoch = -1;
	} else if (ir->TransactionalId.len >= 0) {
		req_hold(req);
		st_txn_init_producer(
			req->srv->store, ir->TransactionalId,
			ir->TransactionTimeoutMs,
			req->hdr.RequestApiVersion >= 3 ? ir->ProducerId : -1,
			ir->ProducerEpoch, txn_pid, req);
	} else if (ir->ProducerId >= 0 && ir->ProducerEpoch >= 0 &&
		   ir->ProducerEpoch < 32767) {
		/* KIP-360: an idempotent producer bumps its own epoch. */
		resp->ProducerId = ir->ProducerId;
		resp->ProducerEpoch = (int16_t)(ir->ProducerEpoch + 1);
	} else {
		req_hold(req);
		st_new_producer_id(req->srv->store, pid_allocated, req);
	}
	req_release(req);
}
