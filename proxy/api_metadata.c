/*
 * Metadata, DescribeCluster, FindCoordinator: what the cluster looks like.
 * samsa is one broker that leads every partition.
 */
#include <stdlib.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"
#include "storage/topic_config.h"

void topic_autocreate(struct request *req, struct kstr name,
		      void (*cb)(void *arg, enum st_status st, const char *msg),
		      void *arg)
{
	int32_t parts = (int32_t)bc_get_int("num.partitions", 1);
	st_create_topic(req->srv->store, name, parts > 0 ? parts : 1, NULL, 0,
			cb, arg);
}

static bool autocreate_enabled(void)
{
	const char *v = bc_get("auto.create.topics.enable", NULL);
	return v && strcmp(v, "true") == 0;
}

static void fill_broker(struct request *req, struct kstr *host, int32_t *port)
{
	*host = req_str(req, req->srv->cfg->advertise.host);
	*port = req->srv->cfg->advertise.port;
}

static void describe_topic(struct request *req,
			   struct MetadataResponse_MetadataResponseTopic *out,
			   const struct st_topic *t)
{
	int32_t id = req->srv->cfg->broker_id;
	out->ErrorCode = KERR_NONE;
	out->Name = req_str(req, t->name);
	out->TopicId = t->id;
	out->IsInternal = t->internal;
	struct MetadataResponse_MetadataResponsePartition *p =
		req_array(req, &out->Partitions,
			  &MetadataResponse_MetadataResponsePartition_struct,
			  t->npartitions);
	for (int32_t i = 0; p && i < t->npartitions; i++) {
		p[i].ErrorCode = KERR_NONE;
		p[i].PartitionIndex = i;
		p[i].LeaderId = id;
		p[i].LeaderEpoch = st_leader_epoch(t->partitions[i]);
		int32_t *r = req_array_raw(req, &p[i].ReplicaNodes,
					   sizeof(int32_t), 1);
		if (r)
			r[0] = id;
		r = req_array_raw(req, &p[i].IsrNodes, sizeof(int32_t), 1);
		if (r)
			r[0] = id;
	}
}

struct metadata_ctx {
	int pending;
	/* The topics asked for, each once (Kafka takes them as a set):
	 * by name, or by id when the name is null. */
	struct name_seen *seen;
};

static void metadata_answer(struct request *req)
{
	struct MetadataRequest *mr = req->body;
	struct MetadataResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	int16_t v = req->hdr.RequestApiVersion;

	struct MetadataResponse_MetadataResponseBroker *b =
		req_array(req, &resp->Brokers,
			  &MetadataResponse_MetadataResponseBroker_struct, 1);
	if (b) {
		b->NodeId = req->srv->cfg->broker_id;
		fill_broker(req, &b->Host, &b->Port);
	}
	resp->ClusterId = req_str(req, store_cluster_id(s));
	resp->ControllerId = req->srv->cfg->broker_id;

	bool all = mr->Topics.count < 0 || (v == 0 && mr->Topics.count == 0);
	if (all) {
		int32_t n = (int32_t)st_topic_count(s);
		struct MetadataResponse_MetadataResponseTopic *t = req_array(
			req, &resp->Topics,
			&MetadataResponse_MetadataResponseTopic_struct, n);
		for (int32_t i = 0; t && i < n; i++)
			describe_topic(req, &t[i], st_topic_at(s, (size_t)i));
		req_reply(req, resp);
		return;
	}
	const struct name_seen *seen = ((struct metadata_ctx *)req->ctx)->seen;
	int32_t n = 0;
	for (int32_t i = 0; i < mr->Topics.count; i++)
		n += seen[i].first == i;
	struct MetadataResponse_MetadataResponseTopic *t =
		req_array(req, &resp->Topics,
			  &MetadataResponse_MetadataResponseTopic_struct, n);
	for (int32_t i = 0, k = 0; t && i < mr->Topics.count; i++) {
		struct MetadataRequest_MetadataRequestTopic *q =
			&mr->Topics.items[i];
		if (seen[i].first != i)
			continue;
		struct MetadataResponse_MetadataResponseTopic *o = &t[k++];
		const struct st_topic *topic;
		if (q->Name.len < 0) {
			topic = st_topic_find_id(s, &q->TopicId);
			if (!topic) {
				o->ErrorCode = KERR_UNKNOWN_TOPIC_ID;
				o->TopicId = q->TopicId;
				continue;
			}
		} else {
			topic = st_topic_find(s, q->Name);
		}
		if (topic) {
			describe_topic(req, o, topic);
			continue;
		}
		o->Name = q->Name;
		o->ErrorCode = st_topic_name_valid(q->Name)
				       ? KERR_UNKNOWN_TOPIC_OR_PARTITION
				       : KERR_INVALID_TOPIC_EXCEPTION;
	}
	req_reply(req, resp);
}

static void metadata_created(void *arg, enum st_status st, const char *msg)
{
	struct request *req = arg;
	struct metadata_ctx *x = req->ctx;
	(void)st;
	(void)msg;
	if (--x->pending == 0)
		metadata_answer(req);
}

/* A topic named by id is told apart from every name by a leading 0xff,
 * a byte no UTF-8 text has. */
static struct kstr id_key(struct request *req, struct kuuid id)
{
	char *k = arena_alloc(&req->arena, 1 + sizeof(id.b));
	if (k) {
		k[0] = (char)0xff;
		memcpy(k + 1, id.b, sizeof(id.b));
	}
	return (struct kstr){k, 1 + (int32_t)sizeof(id.b)};
}

void handle_Metadata(struct request *req)
{
	struct MetadataRequest *mr = req->body;
	struct store *s = req->srv->store;
	/* Before v4 a request always allowed auto-creation. */
	bool allow =
		req->hdr.RequestApiVersion < 4 || mr->AllowAutoTopicCreation;
	struct metadata_ctx *x = arena_alloc(&req->arena, sizeof(*x));
	int32_t n = mr->Topics.count > 0 ? mr->Topics.count : 0;
	struct kstr *keys = arena_alloc(&req->arena, (size_t)n * sizeof(*keys));
	for (int32_t i = 0; keys && i < n; i++) {
		const struct MetadataRequest_MetadataRequestTopic *q =
			&mr->Topics.items[i];
		keys[i] = q->Name.len >= 0 ? q->Name : id_key(req, q->TopicId);
		if (!keys[i].ptr)
			keys = NULL;
	}
	if (x && keys)
		x->seen = req_names_seen(req, keys, sizeof(*keys), 0, n);
	if (!x || !keys || !x->seen) {
		req_close_connection(req);
		return;
	}
	req->ctx = x;
	if (allow && autocreate_enabled()) {
		const struct name_seen *seen = x->seen;
		x->pending = 1;
		for (int32_t i = 0; i < mr->Topics.count; i++) {
			struct kstr name = mr->Topics.items[i].Name;
			/* Duplicates in one request create once. */
			if (name.len < 0 || seen[i].first != i ||
			    !st_topic_name_valid(name) ||
			    st_topic_find(s, name))
				continue;
			x->pending++;
			topic_autocreate(req, name, metadata_created, req);
		}
		if (--x->pending > 0)
			return;
	}
	metadata_answer(req);
}

void handle_DescribeCluster(struct request *req)
{
	struct DescribeClusterResponse *resp = req_response(req);
	resp->ClusterId = req_str(req, store_cluster_id(req->srv->store));
	resp->ControllerId = req->srv->cfg->broker_id;
	struct DescribeClusterResponse_DescribeClusterBroker *b = req_array(
		req, &resp->Brokers,
		&DescribeClusterResponse_DescribeClusterBroker_struct, 1);
	if (b) {
		b->BrokerId = req->srv->cfg->broker_id;
		fill_broker(req, &b->Host, &b->Port);
	}
	req_reply(req, resp);
}

void handle_FindCoordinator(struct request *req)
{
	struct FindCoordinatorRequest *fr = req->body;
	struct FindCoordinatorResponse *resp = req_response(req);
	int32_t id = req->srv->cfg->broker_id;
	/* Groups (0) and transactions (1); share groups (2, v6) are not
	 * served: Kafka answers an unknown key type with INVALID_REQUEST. */
	bool known = fr->KeyType == 0 || fr->KeyType == 1;
	/* Every coordinator is this broker. */
	resp->NodeId = known ? id : -1;
	resp->ErrorCode = known ? KERR_NONE : KERR_INVALID_REQUEST;
	if (known)
		fill_broker(req, &resp->Host, &resp->Port);
	int32_t n =
		fr->CoordinatorKeys.count > 0 ? fr->CoordinatorKeys.count : 0;
	struct FindCoordinatorResponse_Coordinator *c =
		req_array(req, &resp->Coordinators,
			  &FindCoordinatorResponse_Coordinator_struct, n);
	for (int32_t i = 0; c && i < n; i++) {
		c[i].Key = fr->CoordinatorKeys.items[i];
		c[i].NodeId = known ? id : -1;
		c[i].ErrorCode = resp->ErrorCode;
		if (known)
			fill_broker(req, &c[i].Host, &c[i].Port);
	}
	req_reply(req, resp);
}
