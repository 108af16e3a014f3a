/*
 * Produce: every partition's batches go to the store's group commit; the
 * answer leaves when all of them are committed (or failed).
 */
#include <string.h>

#include "protocol/compress.h"
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

/* What one Produce may decompress, all its partitions together: a few
 * kilobytes of compressed bombs must not hold the loop for seconds. */
#define PRODUCE_INFLATE_BUDGET ((size_t)256 << 20)

/*
 * Each partition entry's partition (NULL: unknown), in request order, with
 * the entries naming one partition twice marked: Kafka keeps one entry per
 * partition, and appending the same bytes twice would multiply the work a
 * small request asks for.  NULL when out of memory.
 */
static struct st_partition **entry_partitions(struct request *req,
					      bool **repeated)
{
	struct ProduceRequest *pr = req->body;
	struct store *s = req->srv->store;
	int16_t v = req->hdr.RequestApiVersion;
	int32_t n = 0;
	for (int32_t i = 0; i < pr->TopicData.count; i++)
		n += pr->TopicData.items[i].PartitionData.count > 0
			     ? pr->TopicData.items[i].PartitionData.count
			     : 0;
	struct st_partition **parts =
		arena_alloc(&req->arena, (size_t)n * sizeof(*parts));
	struct kstr *keys = arena_alloc(&req->arena, (size_t)n * sizeof(*keys));
	uintptr_t *raw = arena_alloc(&req->arena, (size_t)n * 2 * sizeof(*raw));
	*repeated = arena_alloc(&req->arena, (size_t)n);
	if (!parts || !keys || !raw || !*repeated)
		return NULL;
	int32_t k = 0;
	for (int32_t i = 0; i < pr->TopicData.count; i++) {
		struct ProduceRequest_TopicProduceData *t =
			&pr->TopicData.items[i];
		struct st_topic *topic =
			v >= 13 ? st_topic_find_id(s, &t->TopicId)
				: st_topic_find(s, t->Name);
		for (int32_t j = 0; j < t->PartitionData.count; j++, k++) {
			parts[k] =
				topic ? st_partition(
						topic,
						t->PartitionData.items[j].Index)
				      : NULL;
			/* Unknown ones are each their own key. */
			raw[2 * k] = (uintptr_t)parts[k];
			raw[2 * k + 1] = parts[k] ? 0 : (uintptr_t)k;
			keys[k] = (struct kstr){(const char *)&raw[2 * k],
						(int32_t)(2 * sizeof(*raw))};
		}
	}
	struct name_seen *seen = req_names_seen(req, keys, sizeof(*keys), 0, n);
	if (!seen)
		return NULL;
	for (k = 0; k < n; k++)
		(*repeated)[k] = seen[k].count > 1;
	return parts;
}

/* Why an entry's batch is refused before the store sees it; KERR_NONE
 * when it is not. */
static int16_t refuse_batch(struct request *req, struct kstr records,
			    struct kstr *why)
{
	const uint8_t *b = (const uint8_t *)records.ptr;
	struct rb_header h;
	/* As Kafka's validateRecords: no batch at all is an invalid
	 * record, not a corrupt (retriable) one. */
	if (records.len <= 0) {
		*why = KSTR_LIT("no record batch");
		return KERR_INVALID_RECORD;
	}
	/* As Kafka from v3 on: one batch per partition (the producer checks
	 * run on the state before it). */
	if (rb_split(b, (size_t)records.len, NULL, NULL, NULL, 0) > 1) {
		*why = KSTR_LIT("Produce requests with version 3 and above "
				"must contain exactly one record batch per "
				"partition");
		return KERR_INVALID_RECORD;
	}
	/* zstd needs Produce v7 (KIP-110). */
	if (req->hdr.RequestApiVersion < 7 &&
	    rb_read_header(b, (size_t)records.len, &h) == 0 &&
	    (h.Attributes & RB_ATTR_CODEC_MASK) == KC_ZSTD) {
		*why = KSTR_LIT("zstd compression needs Produce version 7");
		return KERR_UNSUPPORTED_COMPRESSION_TYPE;
	}
	return KERR_NONE;
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
	bool *repeated = NULL;
	struct st_partition **parts = entry_partitions(req, &repeated);
	size_t *inflate_left = arena_alloc(&req->arena, sizeof(*inflate_left));
	if (!resp || (nt && !rt) || !parts || !inflate_left) {
		req_close_connection(req);
		return;
	}
	*inflate_left = PRODUCE_INFLATE_BUDGET;
	req_begin(req, resp);
	for (int32_t i = 0, k = 0; i < nt; i++) {
		struct ProduceRequest_TopicProduceData *t =
			&pr->TopicData.items[i];
		rt[i].Name = t->Name;
		rt[i].TopicId = t->TopicId;
		int32_t np =
			t->PartitionData.count > 0 ? t->PartitionData.count : 0;
		struct ProduceResponse_PartitionProduceResponse *rp = req_array(
			req, &rt[i].PartitionResponses,
			&ProduceResponse_PartitionProduceResponse_struct, np);
		for (int32_t j = 0; j < np; j++, k++) {
			struct ProduceRequest_PartitionProduceData *d =
				&t->PartitionData.items[j];
			if (!rp)
				continue;
			rp[j].Index = d->Index;
			rp[j].BaseOffset = -1;
			rp[j].LogAppendTimeMs = -1;
			rp[j].LogStartOffset = -1;
			if (refuse) {
				rp[j].ErrorCode = refuse;
				continue;
			}
			struct st_partition *p = parts[k];
			if (!p) {
				rp[j].ErrorCode =
					v >= 13 && !st_topic_find_id(
							   s, &t->TopicId)
						? KERR_UNKNOWN_TOPIC_ID
						: KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			if (repeated[k]) {
				rp[j].ErrorCode = KERR_INVALID_REQUEST;
				rp[j].ErrorMessage = KSTR_LIT(
					"the partition is named more than "
					"once in the request");
				continue;
			}
			rp[j].ErrorCode = refuse_batch(req, d->Records,
						       &rp[j].ErrorMessage);
			if (rp[j].ErrorCode)
				continue;
			struct produce_part *pp =
				arena_alloc(&req->arena, sizeof(*pp));
			if (!pp) {
				rp[j].ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			pp->req = req;
			pp->r = &rp[j];
			req_hold(req);
			st_append_within(s, p, (const uint8_t *)d->Records.ptr,
					 (size_t)d->Records.len, inflate_left,
					 appended, pp);
		}
	}
	produce_finish(req);
}
