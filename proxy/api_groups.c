/*
 * Consumer group APIs: the classic protocol's JoinGroup, SyncGroup,
 * Heartbeat and LeaveGroup (the state machine is in group.c), the consumer
 * protocol's ConsumerGroupHeartbeat and ConsumerGroupDescribe (cgroup.c),
 * and for both OffsetCommit, OffsetFetch, ListGroups, DescribeGroups,
 * DeleteGroups, OffsetDelete (offsets in storage/groups.c).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "protocol/messages.h"
#include "proxy/cgroup.h"
#include "proxy/errors.h"
#include "proxy/group.h"
#include "proxy/handlers.h"
#include "storage/txn.h"
#include "storage/groups.h"
#include "storage/topic_config.h"

/* Answers a request whose response has a top-level ErrorCode with err. */
static void answer_error(struct request *req, int16_t err)
{
	const struct kf_message *m = req->resp_msg;
	void *resp = req_response(req);
	for (uint16_t i = 0; resp && i < m->body->nfields; i++) {
		const struct kf_field *f = &m->body->fields[i];
		if (strcmp(f->name, "ErrorCode") == 0 && f->type == KF_INT16)
			*(int16_t *)((char *)resp + f->offset) = err;
	}
	if (resp)
		req_reply(req, resp);
	else
		req_close_connection(req);
}

static struct groups *coordinator(struct request *req)
{
	struct groups *gs = groups_get(req->srv);
	if (!gs)
		answer_error(req, KERR_COORDINATOR_NOT_AVAILABLE);
	return gs;
}

void handle_JoinGroup(struct request *req)
{
	struct groups *gs = coordinator(req);
	if (gs)
		group_join(gs, req);
}

void handle_SyncGroup(struct request *req)
{
	struct groups *gs = coordinator(req);
	if (gs)
		group_sync(gs, req);
}

void handle_ConsumerGroupHeartbeat(struct request *req)
{
	struct groups *gs = coordinator(req);
	if (gs)
		cgroup_heartbeat(gs, req);
}

void handle_ConsumerGroupDescribe(struct request *req)
{
	struct groups *gs = coordinator(req);
	if (gs)
		cgroup_describe(gs, req);
}

void handle_Heartbeat(struct request *req)
{
	struct HeartbeatRequest *hr = req->body;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	answer_error(req, group_heartbeat(gs, hr->GroupId, hr->GenerationId,
					  hr->MemberId, hr->GroupInstanceId));
}

void handle_LeaveGroup(struct request *req)
{
	struct LeaveGroupRequest *lr = req->body;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct LeaveGroupResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	if (req->hdr.RequestApiVersion < 3) {
		resp->ErrorCode =
			group_leave(gs, lr->GroupId, lr->MemberId, KSTR_NULL);
		req_reply(req, resp);
		return;
	}
	int32_t n = lr->Members.count > 0 ? lr->Members.count : 0;
	struct LeaveGroupResponse_MemberResponse *out =
		req_array(req, &resp->Members,
			  &LeaveGroupResponse_MemberResponse_struct, n);
	for (int32_t i = 0; out && i < n; i++) {
		struct LeaveGroupRequest_MemberIdentity *m =
			&lr->Members.items[i];
		out[i].MemberId = m->MemberId;
		out[i].GroupInstanceId = m->GroupInstanceId;
		out[i].ErrorCode = group_leave(gs, lr->GroupId, m->MemberId,
					       m->GroupInstanceId);
	}
	req_reply(req, resp);
}

/* --- OffsetCommit ------------------------------------------------------- */

struct commit_ctx {
	struct request *req;
	int16_t **errs; /* the committed partitions' ErrorCode fields */
	size_t n;
};

static void committed(void *arg, enum st_status st, const char *msg)
{
	struct commit_ctx *c = arg;
	(void)msg;
	for (size_t i = 0; i < c->n; i++)
		*c->errs[i] = st == ST_OK ? KERR_NONE
					  : KERR_COORDINATOR_NOT_AVAILABLE;
	req_release(c->req);
}

/* A group id Postgres can store (text: valid UTF-8, no NUL). */
static bool group_id_valid(struct kstr id)
{
	return id.len > 0 && kstr_is_text(id);
}

void handle_OffsetCommit(struct request *req)
{
	struct OffsetCommitRequest *cr = req->body;
	struct store *s = req->srv->store;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct OffsetCommitResponse *resp = req_response(req);
	int32_t nt = cr->Topics.count > 0 ? cr->Topics.count : 0;
	struct OffsetCommitResponse_OffsetCommitResponseTopic *rt =
		resp ? req_array(
			       req, &resp->Topics,
			       &OffsetCommitResponse_OffsetCommitResponseTopic_struct,
			       nt)
		     : NULL;
	if (!resp || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	int16_t v = req->hdr.RequestApiVersion;
	size_t total = 0;
	for (int32_t i = 0; i < nt; i++)
		total += cr->Topics.items[i].Partitions.count > 0
				 ? (size_t)cr->Topics.items[i].Partitions.count
				 : 0;
	struct st_offset_commit *list =
		arena_alloc(&req->arena, (total + 1) * sizeof(*list));
	struct commit_ctx *c = arena_alloc(&req->arena, sizeof(*c));
	if (!list || !c ||
	    !(c->errs = arena_alloc(&req->arena,
				    (total + 1) * sizeof(*c->errs)))) {
		req_close_connection(req);
		return;
	}
	c->req = req;
	int64_t max_md = bc_get_int("offset.metadata.max.bytes", 4096);
	for (int32_t i = 0; i < nt; i++) {
		struct OffsetCommitRequest_OffsetCommitRequestTopic *t =
			&cr->Topics.items[i];
		struct st_topic *topic = st_topic_find(s, t->Name);
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		rt[i].Name = t->Name;
		struct OffsetCommitResponse_OffsetCommitResponsePartition *rp =
			req_array(
				req, &rt[i].Partitions,
				&OffsetCommitResponse_OffsetCommitResponsePartition_struct,
				np);
		if (np && !rp) {
			req_close_connection(req);
			return;
		}
		for (int32_t j = 0; j < np; j++) {
			struct OffsetCommitRequest_OffsetCommitRequestPartition
				*p = &t->Partitions.items[j];
			rp[j].PartitionIndex = p->PartitionIndex;
			if (!topic || !st_partition(topic, p->PartitionIndex)) {
				rp[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
			} else if (p->CommittedMetadata.len > max_md) {
				rp[j].ErrorCode =
					KERR_OFFSET_METADATA_TOO_LARGE;
			} else {
				list[c->n] = (struct st_offset_commit){
					.topic = topic,
					.partition = p->PartitionIndex,
					.offset = p->CommittedOffset,
					.leader_epoch =
						v >= 6 ? p->CommittedLeaderEpoch
						       : -1,
					.metadata = p->CommittedMetadata,
				};
				c->errs[c->n++] = &rp[j].ErrorCode;
			}
		}
	}
	/* The membership is checked against the partitions committed (an
	 * older member epoch may commit what it still holds, KIP-1251). */
	int16_t gerr =
		!group_id_valid(cr->GroupId)
			? KERR_INVALID_GROUP_ID
			: group_commit_check(
				  gs, cr->GroupId,
				  v >= 1 ? cr->GenerationIdOrMemberEpoch : -1,
				  cr->MemberId, cr->GroupInstanceId, false,
				  list, c->n);
	if (gerr != KERR_NONE) {
		for (int32_t i = 0; i < nt; i++)
			for (int32_t j = 0; j < rt[i].Partitions.count; j++)
				rt[i].Partitions.items[j].ErrorCode = gerr;
		c->n = 0;
	}
	if (c->n == 0) {
		req_reply(req, resp);
		return;
	}
	req_begin(req, resp);
	req_hold(req);
	st_offsets_commit(s, cr->GroupId, list, c->n, committed, c);
	req_release(req);
}

/* --- OffsetFetch ---------------------------------------------------------- */

/*
 * One group's answer in the shape both response layouts share: topics of
 * partitions.  Filled from the request's topics, or from every committed
 * offset when they are null.
 */
struct fetch_part {
	int32_t PartitionIndex;
	int64_t CommittedOffset;
	int32_t CommittedLeaderEpoch;
	struct kstr Metadata;
	int16_t ErrorCode;
};

struct fetch_topic {
	struct kstr name;
	int32_t n, cap;
	struct fetch_part *parts;
};

static void fill_part(struct request *req, struct store *s, struct kstr group,
		      const struct st_topic *t, int32_t index, bool stable,
		      struct fetch_part *out)
{
	out->PartitionIndex = index;
	out->CommittedOffset = -1;
	out->CommittedLeaderEpoch = -1;
	out->Metadata = (struct kstr){"", 0};
	out->ErrorCode = KERR_NONE;
	const struct st_committed *c =
		t && st_partition(t, index) ? st_offset_get(s, group, t, index)
					    : NULL;
	/* An open transaction holding an offset for it (KIP-447). */
	if (stable && t && st_txn_offset_pending(s, group, t, index)) {
		out->ErrorCode = KERR_UNSTABLE_OFFSET_COMMIT;
		return;
	}
	if (!c || !c->valid)
		return;
	out->CommittedOffset = c->offset;
	out->CommittedLeaderEpoch = c->leader_epoch;
	uint8_t *md = arena_alloc(&req->arena, c->metadata_len);
	if (md) {
		if (c->metadata_len)
			memcpy(md, c->metadata, c->metadata_len);
		out->Metadata = (struct kstr){(const char *)md,
					      (int32_t)c->metadata_len};
	}
}

struct collect {
	struct request *req;
	struct kstr group;
	struct fetch_topic *topics;
	int32_t ntopics, cap;
	bool stable;
	bool failed;
};

static void collect_one(void *arg, const struct st_committed *c)
{
	struct collect *cl = arg;
	if (cl->failed)
		return;
	struct fetch_topic *t =
		cl->ntopics ? &cl->topics[cl->ntopics - 1] : NULL;
	if (!t || !kstr_eq(t->name, c->topic)) {
		struct fetch_topic *nt =
			arena_grow(&cl->req->arena, cl->topics, cl->ntopics,
				   &cl->cap, sizeof(*nt));
		if (!nt) {
			cl->failed = true;
			return;
		}
		cl->topics = nt;
		t = &cl->topics[cl->ntopics++];
		t->name = req_str(cl->req, c->topic);
		t->n = t->cap = 0;
		t->parts = NULL;
	}
	/* Partitions come in order: the topic's array grows by doubling
	 * (a copy per partition was quadratic in a topic's partitions). */
	struct fetch_part *np = arena_grow(&cl->req->arena, t->parts, t->n,
					   &t->cap, sizeof(*np));
	if (!np) {
		cl->failed = true;
		return;
	}
	t->parts = np;
	struct fetch_part *p = &np[t->n++];
	p->PartitionIndex = c->partition;
	p->ErrorCode = KERR_NONE;
	p->CommittedOffset = c->offset;
	p->CommittedLeaderEpoch = c->leader_epoch;
	p->Metadata = (struct kstr){"", 0};
	if (cl->stable) {
		const struct st_topic *topic =
			st_topic_find(cl->req->srv->store, kstr_c(c->topic));
		if (topic &&
		    st_txn_offset_pending(cl->req->srv->store, cl->group, topic,
					  c->partition)) {
			p->ErrorCode = KERR_UNSTABLE_OFFSET_COMMIT;
			p->CommittedOffset = -1;
			p->CommittedLeaderEpoch = -1;
			return;
		}
	}
	uint8_t *md = arena_alloc(&cl->req->arena, c->metadata_len);
	if (md) {
		if (c->metadata_len)
			memcpy(md, c->metadata, c->metadata_len);
		p->Metadata = (struct kstr){(const char *)md,
					    (int32_t)c->metadata_len};
	}
}

/*
 * Builds a group's answer.  names/parts describe the requested topics
 * (ntopics < 0: all of them); returns the count, or -1 on exhaustion.
 */
static int32_t fetch_group(struct request *req, struct kstr group,
			   int32_t ntopics, const struct kstr *names,
			   const struct karr *parts, bool stable,
			   struct fetch_topic **out)
{
	struct store *s = req->srv->store;
	if (ntopics < 0) {
		struct collect cl = {
			.req = req, .group = group, .stable = stable};
		st_offsets_each(s, group, collect_one, &cl);
		if (cl.failed)
			return -1;
		*out = cl.topics;
		return cl.ntopics;
	}
	struct fetch_topic *t =
		arena_alloc(&req->arena, ((size_t)ntopics + 1) * sizeof(*t));
	if (!t)
		return -1;
	for (int32_t i = 0; i < ntopics; i++) {
		const struct st_topic *topic = st_topic_find(s, names[i]);
		const int32_t *idx = parts[i].items;
		t[i].name = names[i];
		t[i].n = parts[i].count > 0 ? parts[i].count : 0;
		t[i].parts =
			arena_alloc(&req->arena,
				    ((size_t)t[i].n + 1) * sizeof(*t[i].parts));
		if (!t[i].parts)
			return -1;
		for (int32_t j = 0; j < t[i].n; j++)
			fill_part(req, s, group, topic, idx[j], stable,
				  &t[i].parts[j]);
	}
	*out = t;
	return ntopics;
}

static void answer_offset_fetch(struct request *req)
{
	struct OffsetFetchRequest *fr = req->body;
	struct OffsetFetchResponse *resp = req_response(req);
	int16_t v = req->hdr.RequestApiVersion;
	bool stable = v >= 7 && fr->RequireStable;
	if (!resp)
		goto fail;
	if (v < 8) {
		int32_t nt = fr->Topics.count;
		struct kstr *names = NULL;
		struct karr *parts = NULL;
		if (nt > 0) {
			names = arena_alloc(&req->arena,
					    (size_t)nt * sizeof(*names));
			parts = arena_alloc(&req->arena,
					    (size_t)nt * sizeof(*parts));
			if (!names || !parts)
				goto fail;
			for (int32_t i = 0; i < nt; i++) {
				names[i] = fr->Topics.items[i].Name;
				memcpy(&parts[i],
				       &fr->Topics.items[i].PartitionIndexes,
				       sizeof(parts[i]));
			}
		}
		struct fetch_topic *ft = NULL;
		int32_t n = fetch_group(req, fr->GroupId, nt, names, parts,
					stable, &ft);
		if (n < 0)
			goto fail;
		struct OffsetFetchResponse_OffsetFetchResponseTopic *rt = req_array(
			req, &resp->Topics,
			&OffsetFetchResponse_OffsetFetchResponseTopic_struct,
			n);
		for (int32_t i = 0; rt && i < n; i++) {
			rt[i].Name = ft[i].name;
			struct OffsetFetchResponse_OffsetFetchResponsePartition
				*rp = req_array(
					req, &rt[i].Partitions,
					&OffsetFetchResponse_OffsetFetchResponsePartition_struct,
					ft[i].n);
			for (int32_t j = 0; rp && j < ft[i].n; j++) {
				rp[j].PartitionIndex =
					ft[i].parts[j].PartitionIndex;
				rp[j].CommittedOffset =
					ft[i].parts[j].CommittedOffset;
				rp[j].CommittedLeaderEpoch =
					ft[i].parts[j].CommittedLeaderEpoch;
				rp[j].Metadata = ft[i].parts[j].Metadata;
				rp[j].ErrorCode = ft[i].parts[j].ErrorCode;
			}
		}
		req_reply(req, resp);
		return;
	}
	int32_t ng = fr->Groups.count > 0 ? fr->Groups.count : 0;
	struct OffsetFetchResponse_OffsetFetchResponseGroup *rg = req_array(
		req, &resp->Groups,
		&OffsetFetchResponse_OffsetFetchResponseGroup_struct, ng);
	if (ng && !rg)
		goto fail;
	for (int32_t g = 0; g < ng; g++) {
		struct OffsetFetchRequest_OffsetFetchRequestGroup *q =
			&fr->Groups.items[g];
		int32_t nt = q->Topics.count;
		struct kstr *names = NULL;
		struct karr *parts = NULL;
		rg[g].GroupId = q->GroupId;
		if (v >= 9) {
			struct groups *gs = groups_get(req->srv);
			rg[g].ErrorCode = gs ? group_fetch_check(gs, q->GroupId,
								 q->MemberId,
								 q->MemberEpoch)
					     : KERR_COORDINATOR_NOT_AVAILABLE;
			if (rg[g].ErrorCode != KERR_NONE) {
				req_array(
					req, &rg[g].Topics,
					&OffsetFetchResponse_OffsetFetchResponseTopics_struct,
					0);
				continue;
			}
		}
		if (nt > 0) {
			names = arena_alloc(&req->arena,
					    (size_t)nt * sizeof(*names));
			parts = arena_alloc(&req->arena,
					    (size_t)nt * sizeof(*parts));
			if (!names || !parts)
				goto fail;
			for (int32_t i = 0; i < nt; i++) {
				names[i] = q->Topics.items[i].Name;
				memcpy(&parts[i],
				       &q->Topics.items[i].PartitionIndexes,
				       sizeof(parts[i]));
			}
		}
		struct fetch_topic *ft = NULL;
		int32_t n = fetch_group(req, q->GroupId, nt, names, parts,
					stable, &ft);
		if (n < 0)
			goto fail;
		struct OffsetFetchResponse_OffsetFetchResponseTopics *rt = req_array(
			req, &rg[g].Topics,
			&OffsetFetchResponse_OffsetFetchResponseTopics_struct,
			n);
		for (int32_t i = 0; rt && i < n; i++) {
			rt[i].Name = ft[i].name;
			struct OffsetFetchResponse_OffsetFetchResponsePartitions
				*rp = req_array(
					req, &rt[i].Partitions,
					&OffsetFetchResponse_OffsetFetchResponsePartitions_struct,
					ft[i].n);
			for (int32_t j = 0; rp && j < ft[i].n; j++) {
				rp[j].PartitionIndex =
					ft[i].parts[j].PartitionIndex;
				rp[j].CommittedOffset =
					ft[i].parts[j].CommittedOffset;
				rp[j].CommittedLeaderEpoch =
					ft[i].parts[j].CommittedLeaderEpoch;
				rp[j].Metadata = ft[i].parts[j].Metadata;
				rp[j].ErrorCode = ft[i].parts[j].ErrorCode;
			}
		}
	}
	req_reply(req, resp);
	return;
fail:
	req_close_connection(req);
}

static void offsets_written(void *arg)
{
	answer_offset_fetch(arg);
}

/*
 * Answers once the commits of the asked groups that came before are written:
 * a member that takes over a partition while its last owner's commit is in
 * flight must read that commit, not the one before (it would read records
 * again).  Kafka's coordinator orders these fetches after its writes too.
 */
void handle_OffsetFetch(struct request *req)
{
	struct OffsetFetchRequest *fr = req->body;
	struct store *s = req->srv->store;
	bool writing = false;
	if (req->hdr.RequestApiVersion < 8)
		writing = st_offsets_writing(s, fr->GroupId);
	for (int32_t g = 0; !writing && g < fr->Groups.count; g++)
		writing = st_offsets_writing(s, fr->Groups.items[g].GroupId);
	if (!writing || !st_offsets_after_writes(s, offsets_written, req))
		answer_offset_fetch(req);
}

/* --- ListGroups, DescribeGroups ------------------------------------------ */

static bool in_filter(const struct karr *filter, const char *value)
{
	const struct kstr *items = filter->items;
	if (filter->count <= 0)
		return true;
	for (int32_t i = 0; i < filter->count; i++)
		if (items[i].len >= 0 &&
		    (size_t)items[i].len == strlen(value) &&
		    strncasecmp(items[i].ptr, value, (size_t)items[i].len) == 0)
			return true;
	return false;
}

void handle_ListGroups(struct request *req)
{
	struct ListGroupsRequest *lr = req->body;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct ListGroupsResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	struct karr states, types;
	memcpy(&states, &lr->StatesFilter, sizeof(states));
	memcpy(&types, &lr->TypesFilter, sizeof(types));
	int32_t n = 0;
	for (size_t i = 0; i < groups_count(gs); i++) {
		struct group *g = group_at(gs, i);
		n += strcmp(group_state(g), "Dead") != 0 &&
		     in_filter(&states, group_state(g)) &&
		     in_filter(&types, group_type(g));
	}
	struct ListGroupsResponse_ListedGroup *out = req_array(
		req, &resp->Groups, &ListGroupsResponse_ListedGroup_struct, n);
	int32_t k = 0;
	for (size_t i = 0; out && i < groups_count(gs) && k < n; i++) {
		struct group *g = group_at(gs, i);
		if (strcmp(group_state(g), "Dead") == 0 ||
		    !in_filter(&states, group_state(g)) ||
		    !in_filter(&types, group_type(g)))
			continue;
		out[k].GroupId = req_str(req, group_id(g));
		out[k].ProtocolType = req_str(req, group_protocol_type(g));
		out[k].GroupState = req_str(req, group_state(g));
		out[k].GroupType = req_str(req, group_type(g));
		k++;
	}
	req_reply(req, resp);
}

void handle_DescribeGroups(struct request *req)
{
	struct DescribeGroupsRequest *dr = req->body;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct DescribeGroupsResponse *resp = req_response(req);
	int32_t n = dr->Groups.count > 0 ? dr->Groups.count : 0;
	struct DescribeGroupsResponse_DescribedGroup *out =
		resp ? req_array(req, &resp->Groups,
				 &DescribeGroupsResponse_DescribedGroup_struct,
				 n)
		     : NULL;
	if (!resp || (n && !out)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct kstr id = dr->Groups.items[i];
		struct group *g = group_find(gs, id);
		if (dr->IncludeAuthorizedOperations)
			out[i].AuthorizedOperations = GROUP_OPERATIONS;
		if (!g || group_cgroup(g)) {
			/* Before v6 an unknown group is a Dead one, and so
			 * is a group of the consumer protocol (KIP-848:
			 * ConsumerGroupDescribe describes those). */
			out[i].GroupId = id;
			out[i].GroupState = req_str(req, "Dead");
			continue;
		}
		group_describe(req, g, &out[i]);
	}
	req_reply(req, resp);
}

/* --- DeleteGroups, OffsetDelete ------------------------------------------ */

struct delete_item {
	struct request *req;
	int16_t *err;
};

static void group_deleted(void *arg, int16_t err)
{
	struct delete_item *d = arg;
	*d->err = err;
	req_release(d->req);
}

void handle_DeleteGroups(struct request *req)
{
	struct DeleteGroupsRequest *dr = req->body;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct DeleteGroupsResponse *resp = req_response(req);
	int32_t n = dr->GroupsNames.count > 0 ? dr->GroupsNames.count : 0;
	struct DeleteGroupsResponse_DeletableGroupResult *out =
		resp ? req_array(
			       req, &resp->Results,
			       &DeleteGroupsResponse_DeletableGroupResult_struct,
			       n)
		     : NULL;
	struct delete_item *items =
		arena_alloc(&req->arena, ((size_t)n + 1) * sizeof(*items));
	if (!resp || (n && !out) || !items) {
		req_close_connection(req);
		return;
	}
	req_begin(req, resp);
	for (int32_t i = 0; i < n; i++) {
		out[i].GroupId = dr->GroupsNames.items[i];
		items[i].req = req;
		items[i].err = &out[i].ErrorCode;
		if (out[i].GroupId.len <= 0) {
			out[i].ErrorCode = KERR_INVALID_GROUP_ID;
			continue;
		}
		req_hold(req);
		group_delete(gs, out[i].GroupId, group_deleted, &items[i]);
	}
	req_release(req);
}

static void offsets_deleted(void *arg, enum st_status st, const char *msg)
{
	struct commit_ctx *c = arg;
	(void)msg;
	for (size_t i = 0; i < c->n; i++)
		*c->errs[i] = st == ST_OK ? KERR_NONE
					  : KERR_COORDINATOR_NOT_AVAILABLE;
	req_release(c->req);
}

void handle_OffsetDelete(struct request *req)
{
	struct OffsetDeleteRequest *dr = req->body;
	struct store *s = req->srv->store;
	struct groups *gs = coordinator(req);
	if (!gs)
		return;
	struct OffsetDeleteResponse *resp = req_response(req);
	int32_t nt = dr->Topics.count > 0 ? dr->Topics.count : 0;
	struct OffsetDeleteResponse_OffsetDeleteResponseTopic *rt =
		resp ? req_array(
			       req, &resp->Topics,
			       &OffsetDeleteResponse_OffsetDeleteResponseTopic_struct,
			       nt)
		     : NULL;
	if (!resp || (nt && !rt)) {
		req_close_connection(req);
		return;
	}
	struct group *g = group_find(gs, dr->GroupId);
	if (!g || strcmp(group_state(g), "Dead") == 0) {
		resp->ErrorCode = KERR_GROUP_ID_NOT_FOUND;
		resp->Topics.count = 0;
		req_reply(req, resp);
		return;
	}
	if (group_has_members(g) &&
	    strcmp(group_protocol_type(g), "consumer")) {
		resp->ErrorCode = KERR_NON_EMPTY_GROUP;
		resp->Topics.count = 0;
		req_reply(req, resp);
		return;
	}
	req_begin(req, resp);
	for (int32_t i = 0; i < nt; i++) {
		struct OffsetDeleteRequest_OffsetDeleteRequestTopic *t =
			&dr->Topics.items[i];
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		rt[i].Name = t->Name;
		struct OffsetDeleteResponse_OffsetDeleteResponsePartition *rp =
			req_array(
				req, &rt[i].Partitions,
				&OffsetDeleteResponse_OffsetDeleteResponsePartition_struct,
				np);
		struct commit_ctx *c = arena_alloc(&req->arena, sizeof(*c));
		int32_t *parts = arena_alloc(&req->arena,
					     ((size_t)np + 1) * sizeof(*parts));
		if ((np && !rp) || !c || !parts ||
		    !(c->errs =
			      arena_alloc(&req->arena,
					  ((size_t)np + 1) * sizeof(*c->errs))))
			continue;
		c->req = req;
		struct st_topic *topic = st_topic_find(s, t->Name);
		char *tname = topic ? topic->name : NULL;
		bool subscribed = tname && group_subscribes(g, tname);
		for (int32_t j = 0; j < np; j++) {
			int32_t idx = t->Partitions.items[j].PartitionIndex;
			rp[j].PartitionIndex = idx;
			if (!topic || !st_partition(topic, idx))
				rp[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
			else if (subscribed)
				rp[j].ErrorCode =
					KERR_GROUP_SUBSCRIBED_TO_TOPIC;
			else {
				parts[c->n] = idx;
				c->errs[c->n++] = &rp[j].ErrorCode;
			}
		}
		if (c->n) {
			req_hold(req);
			st_offsets_delete(s, dr->GroupId, topic, parts, c->n,
					  offsets_deleted, c);
		}
	}
	req_release(req);
}
