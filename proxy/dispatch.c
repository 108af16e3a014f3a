/*
 * dispatch: the served APIs and the decoding step before each handler.
 */
#include "proxy/dispatch.h"

#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"
#include "proxy/logging.h"

#define API(key, lo, hi, served, fn) [key] = {lo, hi, served, fn}

static const struct api_entry apis[] = {
	/* Produce is advertised from v0 (librdkafka before 2.11.1 stops
	 * compressing otherwise, KAFKA-18659) but v0-2 are refused. */
	API(0, 0, 11, 3, handle_Produce),
	API(1, 4, 16, 4, handle_Fetch),
	API(2, 1, 8, 1, handle_ListOffsets),
	API(3, 0, 12, 0, handle_Metadata),
	API(8, 0, 9, 0, handle_OffsetCommit),
	API(9, 0, 9, 0, handle_OffsetFetch),
	API(10, 0, 6, 0, handle_FindCoordinator),
	API(11, 0, 9, 0, handle_JoinGroup),
	API(12, 0, 4, 0, handle_Heartbeat),
	API(13, 0, 5, 0, handle_LeaveGroup),
	API(14, 0, 5, 0, handle_SyncGroup),
	API(15, 0, 5, 0, handle_DescribeGroups),
	API(16, 0, 5, 0, handle_ListGroups),
	/* v0 is advertised (librdkafka's SASL needs it listed) but refused:
	 * after it the client would send bare SASL tokens, not
	 * SaslAuthenticate requests. */
	API(17, 0, 1, 1, handle_SaslHandshake),
	API(18, 0, 4, 0, handle_ApiVersions),
	API(19, 2, 7, 2, handle_CreateTopics),
	API(20, 1, 6, 1, handle_DeleteTopics),
	API(21, 0, 2, 0, handle_DeleteRecords),
	API(22, 0, 5, 0, handle_InitProducerId),
	API(23, 2, 4, 2, handle_OffsetForLeaderEpoch),
	/* Transactions at transaction version 1: EndTxn v5 and
	 * TxnOffsetCommit v5 belong to version 2 (KIP-890), not served. */
	API(24, 0, 5, 0, handle_AddPartitionsToTxn),
	API(25, 0, 4, 0, handle_AddOffsetsToTxn),
	API(26, 0, 4, 0, handle_EndTxn),
	API(28, 0, 4, 0, handle_TxnOffsetCommit),
	/* No authorizer: SECURITY_DISABLED, as Kafka without one answers. */
	API(29, 0, 3, 0, handle_DescribeAcls),
	API(30, 0, 3, 0, handle_CreateAcls),
	API(31, 0, 3, 0, handle_DeleteAcls),
	API(32, 1, 4, 1, handle_DescribeConfigs),
	API(33, 0, 2, 0, handle_AlterConfigs),
	API(35, 1, 5, 1, handle_DescribeLogDirs),
	API(36, 0, 2, 0, handle_SaslAuthenticate),
	API(37, 0, 3, 0, handle_CreatePartitions),
	API(42, 0, 2, 0, handle_DeleteGroups),
	API(44, 0, 1, 0, handle_IncrementalAlterConfigs),
	API(47, 0, 0, 0, handle_OffsetDelete),
	API(60, 0, 1, 0, handle_DescribeCluster),
	API(61, 0, 0, 0, handle_DescribeProducers),
	API(65, 0, 0, 0, handle_DescribeTransactions),
	API(66, 0, 1, 0, handle_ListTransactions),
	API(68, 0, 1, 0, handle_ConsumerGroupHeartbeat),
	API(69, 0, 0, 0, handle_ConsumerGroupDescribe),
};

#define NAPIS (int16_t)(sizeof(apis) / sizeof(apis[0]))

const struct api_entry *api_lookup(int16_t key)
{
	if (key < 0 || key >= NAPIS || !apis[key].handler)
		return NULL;
	return &apis[key];
}

void handle_ApiVersions(struct request *req)
{
	struct ApiVersionsResponse *resp = req_response(req);
	int n = 0;
	for (int16_t k = 0; k < NAPIS; k++)
		n += apis[k].handler != NULL;
	struct ApiVersionsResponse_ApiVersion *v = req_array(
		req, &resp->ApiKeys, &ApiVersionsResponse_ApiVersion_struct, n);
	for (int16_t k = 0, i = 0; v && k < NAPIS; k++) {
		if (!apis[k].handler)
			continue;
		v[i].ApiKey = k;
		v[i].MinVersion = apis[k].min;
		v[i].MaxVersion = apis[k].max;
		i++;
	}
	if (req->hdr.RequestApiVersion > apis[18].max) {
		/* An ApiVersions we do not know: a v0 body listing our
		 * ranges, so the client retries with one we do (KIP-511). */
		resp->ErrorCode = KERR_UNSUPPORTED_VERSION;
		req->hdr.RequestApiVersion = 0;
	}
	req_reply(req, resp);
}

/* Answers a request of a version we do not serve, where its response can
 * carry the error; else closes the connection. */
static void unsupported(struct request *req)
{
	const struct kf_message *m = req->resp_msg;
	int16_t v = req->hdr.RequestApiVersion;
	if (m && v >= m->vmin && v <= m->vmax) {
		void *resp = req_response(req);
		for (uint16_t i = 0; resp && i < m->body->nfields; i++) {
			const struct kf_field *f = &m->body->fields[i];
			if (strcmp(f->name, "ErrorCode") == 0 &&
			    f->type == KF_INT16) {
				*(int16_t *)((char *)resp + f->offset) =
					KERR_UNSUPPORTED_VERSION;
				req_reply(req, resp);
				return;
			}
		}
	}
	log_warn("%s v%d is not served: closing the connection",
		 kmsg_api_name(req->hdr.RequestApiKey)
			 ? kmsg_api_name(req->hdr.RequestApiKey)
			 : "unknown API",
		 v);
	req_close_connection(req);
}

/* What building one answer may allocate beyond what decoding took. */
#define ANSWER_BUDGET ((size_t)512 << 20)

void dispatch(struct request *req, struct kb_reader *r)
{
	int16_t key = req->hdr.RequestApiKey;
	int16_t version = req->hdr.RequestApiVersion;
	const struct api_entry *api = api_lookup(key);
	const struct kf_message *m = kmsg_request(key);
	req->resp_msg = kmsg_response(key);

	if (key == 18 && api && version > api->max) {
		handle_ApiVersions(req);
		return;
	}
	if (!api || !m || !req->resp_msg || version < api->min ||
	    version > api->max) {
		unsupported(req);
		return;
	}
	if (kmsg_flexible(m, version) && kmsg_read_header_tags(r) < 0)
		goto bad;
	req->body = arena_alloc(&req->arena, m->body->size);
	if (!req->body ||
	    kmsg_decode(m, version, r, &req->arena, req->body) < 0)
		goto bad;
	/* The arena's limit was sized for decoding the frame; the answer
	 * may need far more than the request (a Metadata of every
	 * partition, DescribeConfigs of every topic) and gets a budget of
	 * its own, still a bound. */
	req->arena.limit += ANSWER_BUDGET;
	api->handler(req);
	return;
bad:
	log_warn("%s v%d request does not parse: closing the connection",
		 m->name, version);
	req_close_connection(req);
}
