/*
 * Produce: every partition's batches go to the store's group commit; the
 * answer leaves when all of them are committed (or failed).
 */
#include <string.h>

#include "protocol/messages.h"
#include "protocol/record_batch.h"
#include "proxy/dispatch.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"

struct produce_part {
	struct request *req;
	struct ProduceResponse_PartitionProduceResponse *r;
};

static bool any_error(const struct ProduceResponse *resp)
{
	for (int32_t i = 0; i < resp->Responses.count; i++) {
		const struct ProduceResponse_TopicProduceResponse *t =
			&resp->Responses.items[i];
		for (int32_t j = 0; j < t->PartitionResponses.count; j++)
			if (t->PartitionResponses.items[j].ErrorCode)
				return true;
	}
	return false;
}

static void produce_finish(struct request *req)
{
	if (--req->holds > 0)
		return;
	struct ProduceRequest *pr = req->body;
	if (pr->Acks == 0) {
		/* Nothing to answer; an error closes the connection so the
		 * client notices (as Kafka does). */
		if (any_error(req->held_resp))
			req_close_connection(req);
		else
			req_finish_silent(req);
		return;
	}
	req_reply(req, req->held_resp);
}

static void appended(void *arg, const struct st_append_result *res)
{
	struct produce_part *pp = arg;
	struct ProduceResponse_PartitionProduceResponse *r = pp->r;
	r->ErrorCode = kerr_from_status(res->status);
	r->BaseOffset = res->status == ST_OK ? res->base_offset : -1;
	r->LogAppendTimeMs = res->log_append_time;
	r->LogStartOffset = res->log_start_offset;
	if (res->message)
		r->ErrorMessage = req_str(pp->req, res->message);
	produce_finish(pp->req);
}

void handle_Produce(struct request *req)
{
	struct ProduceRequest *pr = req->body;
	struct ProduceResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	int16_t v = req->hdr.RequestApiVersion;
	int16_t refuse = KERR_NONE;
	if (v < api_lookup(0)->served_min)
		refuse = KERR_UNSUPPORTED_VERSION;
	else if (pr->Acks != 0 && pr->Acks != 1 && pr->Acks != -1)
		refuse = KERR_INVALID_REQUIRED_ACKS;

	int32_t nt = pr->TopicData.count > 0 ? pr->TopicData.count : 0;
	struct ProduceResponse_TopicProduceResponse *rt =
		req_array(req, &resp->Responses,
			  &ProduceResponse_TopicProduceResponse_struct, nt);
	if (!resp || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	for (int32_t i = 0; i < nt; i++) {
		struct ProduceRequest_TopicProduceData *t =
			&pr->TopicData.items[i];
		struct st_topic *topic =
			v >= 13 ? st_topic_find_id(s, &t->TopicId)
				: st_topic_find(s, t->Name);
		rt[i].Name = t->Name;
		rt[i].TopicId = t->TopicId;
		int32_t np =
			t->PartitionData.count > 0 ? t->PartitionData.count : 0;
		struct ProduceResponse_PartitionProduceResponse *rp = req_array(
			req, &rt[i].PartitionResponses,
			&ProduceResponse_PartitionProduceResponse_struct, np);
		for (int32_t j = 0; rp && j < np; j++) {
			struct ProduceRequest_PartitionProduceData *d =
				&t->PartitionData.items[j];
			rp[j].Index = d->Index;
			rp[j].BaseOffset = -1;
			rp[j].LogAppendTimeMs = -1;
			rp[j].LogStartOffset = -1;
			if (refuse) {
				rp[j].ErrorCode = refuse;
				continue;
			}
			struct st_partition *p =
				topic ? st_partition(topic, d->Index) : NULL;
			if (!p) {
				rp[j].ErrorCode =
					v >= 13 && !topic
						? KERR_UNKNOWN_TOPIC_ID
						: KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (d->Records.len <= 0) {
				rp[j].ErrorCode = KERR_CORRUPT_MESSAGE;
				continue;
			}
			/* As Kafka from v3 on: one batch per partition (the
			 * producer checks run on the state before it). */
			if (rb_split((const uint8_t *)d->Records.ptr,
				     (size_t)d->Records.len, NULL, NULL, NULL,
				     0) > 1) {
				rp[j].ErrorCode = KERR_INVALID_RECORD;
				rp[j].ErrorMessage = KSTR_LIT(
					"Produce requests with version 3 and "
					"above must contain exactly one "
					"record batch per partition");
				continue;
			}
			struct produce_part *pp =
				arena_alloc(&req->arena, sizeof(*pp));
			if (!pp) {
				rp[j].ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			pp->req = req;
			pp->r = &rp[j];
			req_hold(req);
			st_append(s, p, (const uint8_t *)d->Records.ptr,
				  (size_t)d->Records.len, appended, pp);
		}
	}
	produce_finish(req);
}
