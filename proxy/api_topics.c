/*
 * CreateTopics, DeleteTopics, CreatePartitions, DeleteRecords,
 * DescribeLogDirs.
 */
#include <stdio.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"

/* Per-item callback context: the request and the item's result. */
struct item {
	struct request *req;
	int16_t *error;
	struct kstr *message;
	void *extra;
};

static void item_done(void *arg, enum st_status st, const char *msg)
{
	struct item *it = arg;
	*it->error = kerr_from_status(st);
	if (st == ST_EXISTS)
		*it->error = KERR_TOPIC_ALREADY_EXISTS;
	if (st != ST_OK && it->message)
		*it->message = req_str(it->req, msg);
	req_release(it->req);
}

static struct item *item_new(struct request *req, int16_t *error,
			     struct kstr *message)
{
	struct item *it = arena_alloc(&req->arena, sizeof(*it));
	if (it) {
		it->req = req;
		it->error = error;
		it->message = message;
	}
	return it;
}

/* --- Manual replica assignments --------------------------------------------
 * CreateTopics and CreatePartitions may name each partition's replicas.
 * samsa registers one broker, itself, so the only valid list is {self};
 * the checks and messages are Kafka's (ReplicationControlManager).
 */

/* One partition's replica list.  *rf is the replication factor of the
 * partitions before it (-1: none yet) and gets this one's.  Returns a Kafka
 * error code, the message in err. */
static int16_t check_replicas(int32_t self, const int32_t *ids, int32_t n,
			      int16_t *rf, char *err, size_t len)
{
	if (n <= 0) {
		snprintf(err, len,
			 "The manual partition assignment includes an empty "
			 "replica list.");
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	for (int32_t k = 0; k < n; k++) {
		for (int32_t m = 0; m < k; m++)
			if (ids[m] == ids[k]) {
				snprintf(err, len,
					 "The manual partition assignment "
					 "includes the broker %d more than "
					 "once.",
					 ids[k]);
				return KERR_INVALID_REPLICA_ASSIGNMENT;
			}
		if (ids[k] != self) {
			snprintf(err, len,
				 "The manual partition assignment includes "
				 "broker %d, but no such broker is registered.",
				 ids[k]);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
	}
	if (*rf >= 0 && n != *rf) {
		snprintf(err, len,
			 "The manual partition assignment includes a partition "
			 "with %d replica(s), but this is not consistent with "
			 "previous partitions, which have %d replica(s).",
			 n, *rf);
		return KERR_INVALID_REPLICA_ASSIGNMENT;
	}
	*rf = (int16_t)n;
	return KERR_NONE;
}

/* A CreateTopics assignment: partition indexes 0..n-1, each once, with
 * valid replica lists; *rf gets the replication factor.  n is at most
 * 100000 (the caller's partition limit). */
static int16_t
check_topic_assignment(struct request *req,
		       const struct CreateTopicsRequest_CreatableTopic *t,
		       int16_t *rf, char *err, size_t len)
{
	int32_t n = t->Assignments.count;
	int32_t self = req->srv->cfg->broker_id;
	if (t->ReplicationFactor != -1 || t->NumPartitions != -1) {
		snprintf(err, len,
			 "A manual partition assignment was specified, but %s "
			 "was not set to -1.",
			 t->ReplicationFactor != -1 ? "replication factor"
						    : "numPartitions");
		return KERR_INVALID_REQUEST;
	}
	bool *seen = arena_alloc(&req->arena, (size_t)n);
	if (!seen) {
		snprintf(err, len, "out of memory");
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	memset(seen, 0, (size_t)n);
	*rf = -1;
	for (int32_t j = 0; j < n; j++) {
		const struct CreateTopicsRequest_CreatableReplicaAssignment *a =
			&t->Assignments.items[j];
		int32_t p = a->PartitionIndex;
		if (p >= 0 && p < n && seen[p]) {
			snprintf(err, len,
				 "Found multiple manual partition assignments "
				 "for partition %d",
				 p);
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
		if (p < 0 || p >= n) {
			snprintf(err, len,
				 "partitions should be a consecutive 0-based "
				 "integer sequence");
			return KERR_INVALID_REPLICA_ASSIGNMENT;
		}
		seen[p] = true;
		int16_t e = check_replicas(self, a->BrokerIds.items,
					   a->BrokerIds.count, rf, err, len);
		if (e != KERR_NONE)
			return e;
	}
	return KERR_NONE;
}

/* --- CreateTopics --------------------------------------------------------- */

static void
describe_new_topic(struct request *req,
		   struct CreateTopicsResponse_CreatableTopicResult *r,
		   const struct tc_override *ov, size_t n)
{
	size_t ndefs;
	const struct tc_def *defs = tc_defs(&ndefs);
	struct CreateTopicsResponse_CreatableTopicConfigs *c =
		req_array(req, &r->Configs,
			  &CreateTopicsResponse_CreatableTopicConfigs_struct,
			  (int32_t)ndefs);
	for (size_t i = 0; c && i < ndefs; i++) {
		int source;
		c[i].Name = req_str(req, defs[i].name);
		c[i].Value = req_str(
			req, topic_config_effective(ov, n, &defs[i], &source));
		c[i].ConfigSource = (int8_t)source;
	}
}

struct create_item {
	struct item it;
	struct CreateTopicsResponse_CreatableTopicResult *r;
};

static void topic_created(void *arg, enum st_status st, const char *msg)
{
	struct create_item *ci = arg;
	if (st == ST_OK) {
		const struct st_topic *t =
			st_topic_find(ci->it.req->srv->store, ci->r->Name);
		if (t)
			ci->r->TopicId = t->id;
	} else {
		ci->r->Configs.count = -1;
		ci->r->NumPartitions = -1;
		ci->r->ReplicationFactor = -1;
	}
	item_done(&ci->it, st, msg);
}

/*
 * The configs a CreateTopics entry gives, checked, into *ov (in the arena),
 * each name once: as Kafka, a name given twice takes its last value.  An
 * error code with its message in err, else KERR_NONE.
 */
static int16_t topic_configs_given(
	struct request *req, const struct CreateTopicsRequest_CreatableTopic *t,
	struct tc_override **ov, size_t *n, char *err, size_t errlen)
{
	int32_t nc = t->Configs.count;
	struct name_seen *seen = req_names_seen(
		req, t->Configs.items, sizeof(*t->Configs.items),
		offsetof(struct CreateTopicsRequest_CreatableTopicConfig, Name),
		nc);
	*ov = arena_alloc(&req->arena, (size_t)nc * sizeof(**ov));
	int32_t *slot = arena_alloc(&req->arena, (size_t)nc * sizeof(*slot));
	if (!seen || !*ov || !slot) {
		snprintf(err, errlen, "out of memory");
		return KERR_UNKNOWN_SERVER_ERROR;
	}
	*n = 0;
	for (int32_t j = 0; j < nc; j++) {
		const struct CreateTopicsRequest_CreatableTopicConfig *c =
			&t->Configs.items[j];
		int16_t code =
			topic_config_check(c->Name, c->Value, err, errlen);
		if (code)
			return code;
		if (seen[j].first == j) {
			slot[j] = (int32_t)(*n)++;
			(*ov)[slot[j]].name = arena_strndup(
				&req->arena, c->Name.ptr, (size_t)c->Name.len);
		}
		const char *v = arena_strndup(&req->arena, c->Value.ptr,
					      (size_t)c->Value.len);
		struct tc_override *o = &(*ov)[slot[seen[j].first]];
		o->value = v;
		if (!o->name || !v) {
			snprintf(err, errlen, "out of memory");
			return KERR_UNKNOWN_SERVER_ERROR;
		}
	}
	return KERR_NONE;
}

void handle_CreateTopics(struct request *req)
{
	struct CreateTopicsRequest *cr = req->body;
	struct CreateTopicsResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	req_begin(req, resp);
	int32_t n = cr->Topics.count > 0 ? cr->Topics.count : 0;
	struct CreateTopicsResponse_CreatableTopicResult *res =
		req_array(req, &resp->Topics,
			  &CreateTopicsResponse_CreatableTopicResult_struct, n);
	if (!resp || (n && !res)) {
		req_close_connection(req);
		return;
	}
	struct name_seen *seen = req_names_seen(
		req, cr->Topics.items, sizeof(*cr->Topics.items),
		offsetof(struct CreateTopicsRequest_CreatableTopic, Name), n);
	if (!seen) {
		req_close_connection(req);
		return;
	}
	int32_t def_parts = (int32_t)bc_get_int("num.partitions", 1);
	int16_t def_rf = (int16_t)bc_get_int("default.replication.factor", 1);

	for (int32_t i = 0; i < n; i++) {
		struct CreateTopicsRequest_CreatableTopic *t =
			&cr->Topics.items[i];
		struct CreateTopicsResponse_CreatableTopicResult *r = &res[i];
		char err[256] = "";
		r->Name = t->Name;
		r->ErrorMessage = KSTR_NULL; /* as Kafka's, when no error */
		r->Configs.count = -1;
		r->NumPartitions = -1;
		r->ReplicationFactor = -1;

		int32_t parts =
			t->NumPartitions == -1 ? def_parts : t->NumPartitions;
		int16_t rf = t->ReplicationFactor == -1 ? def_rf
							: t->ReplicationFactor;
		bool manual = t->Assignments.count > 0;
		if (manual)
			parts = t->Assignments.count;
		if (seen[i].count > 1) {
			r->ErrorCode = KERR_INVALID_REQUEST;
			snprintf(err, sizeof(err),
				 "Create topics request from client contains "
				 "multiple entries for the topic");
		} else if (!st_topic_name_valid(t->Name)) {
			r->ErrorCode = KERR_INVALID_TOPIC_EXCEPTION;
			snprintf(err, sizeof(err),
				 "Topic name is invalid: it must be 1 to 249 "
				 "characters of [a-zA-Z0-9._-]");
		} else if (st_topic_find(s, t->Name)) {
			r->ErrorCode = KERR_TOPIC_ALREADY_EXISTS;
			snprintf(err, sizeof(err),
				 "Topic '%.*s' already exists.", t->Name.len,
				 t->Name.ptr);
		} else if (parts <= 0 || parts > 100000) {
			r->ErrorCode = KERR_INVALID_PARTITIONS;
			snprintf(err, sizeof(err),
				 "Number of partitions must be larger than 0.");
		} else if (manual) {
			r->ErrorCode = check_topic_assignment(req, t, &rf, err,
							      sizeof(err));
		} else if (rf <= 0) {
			r->ErrorCode = KERR_INVALID_REPLICATION_FACTOR;
			snprintf(err, sizeof(err),
				 "Replication factor must be larger than 0, or "
				 "-1 to use the default value.");
		} else if (rf > 1) {
			r->ErrorCode = KERR_INVALID_REPLICATION_FACTOR;
			snprintf(
				err, sizeof(err),
				"Unable to replicate the partition %d time(s): "
				"The target replication factor of %d cannot be "
				"reached because only 1 broker(s) are "
				"registered.",
				rf, rf);
		}
		struct tc_override *ov = NULL;
		size_t nc = 0;
		if (!r->ErrorCode && t->Configs.count > 0)
			r->ErrorCode = topic_configs_given(req, t, &ov, &nc,
							   err, sizeof(err));
		if (r->ErrorCode) {
			r->ErrorMessage = req_str(req, err);
			continue;
		}
		r->NumPartitions = parts;
		r->ReplicationFactor = rf;
		describe_new_topic(req, r, ov, nc);
		if (cr->validateOnly)
			continue;
		struct create_item *ci = arena_alloc(&req->arena, sizeof(*ci));
		if (!ci) {
			r->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		ci->it.req = req;
		ci->it.error = &r->ErrorCode;
		ci->it.message = &r->ErrorMessage;
		ci->r = r;
		req_hold(req);
		st_create_topic(s, t->Name, parts, ov, nc, topic_created, ci);
	}
	req_release(req);
}

/* --- DeleteTopics ------------------------------------------------------------
 */

void handle_DeleteTopics(struct request *req)
{
	struct DeleteTopicsRequest *dr = req->body;
	struct DeleteTopicsResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	req_begin(req, resp);
	bool by_state = req->hdr.RequestApiVersion >= 6;
	int32_t n = by_state ? dr->Topics.count : dr->TopicNames.count;
	if (n < 0)
		n = 0;
	struct DeleteTopicsResponse_DeletableTopicResult *res =
		req_array(req, &resp->Responses,
			  &DeleteTopicsResponse_DeletableTopicResult_struct, n);
	if (!resp || (n && !res)) {
		req_close_connection(req);
		return;
	}
	/* As Kafka: a name given twice deletes nothing. */
	struct name_seen *seen =
		by_state
			? req_names_seen(
				  req, dr->Topics.items,
				  sizeof(*dr->Topics.items),
				  offsetof(struct
					   DeleteTopicsRequest_DeleteTopicState,
					   Name),
				  n)
			: req_names_seen(req, dr->TopicNames.items,
					 sizeof(*dr->TopicNames.items), 0, n);
	if (!seen) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct DeleteTopicsResponse_DeletableTopicResult *r = &res[i];
		struct st_topic *t;
		if (seen[i].count > 1 &&
		    (!by_state || dr->Topics.items[i].Name.len >= 0)) {
			r->Name = by_state ? dr->Topics.items[i].Name
					   : dr->TopicNames.items[i];
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage = req_str(req, "Duplicate topic name.");
			continue;
		}
		bool named = !by_state || dr->Topics.items[i].Name.len >= 0;
		static const struct kuuid zero;
		bool by_id = by_state && memcmp(&dr->Topics.items[i].TopicId,
						&zero, sizeof(zero)) != 0;
		if (by_state && named == by_id) {
			/* As Kafka: a name or an id, one of them. */
			r->Name = dr->Topics.items[i].Name;
			r->TopicId = dr->Topics.items[i].TopicId;
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage = req_str(
				req, named ? "You may not specify both topic "
					     "name and topic id."
					   : "Neither topic name nor id were "
					     "specified.");
			continue;
		}
		if (!named) {
			r->TopicId = dr->Topics.items[i].TopicId;
			r->Name = KSTR_NULL;
			t = st_topic_find_id(s, &r->TopicId);
			if (!t) {
				r->ErrorCode = KERR_UNKNOWN_TOPIC_ID;
				continue;
			}
			r->Name = req_str(req, t->name);
		} else {
			r->Name = by_state ? dr->Topics.items[i].Name
					   : dr->TopicNames.items[i];
			t = st_topic_find(s, r->Name);
			if (!t) {
				r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				r->ErrorMessage = req_str(
					req, "This server does not host this "
					     "topic-partition.");
				continue;
			}
		}
		r->TopicId = t->id;
		struct item *it =
			item_new(req, &r->ErrorCode, &r->ErrorMessage);
		if (!it) {
			r->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		req_hold(req);
		st_delete_topic(s, t, item_done, it);
	}
	req_release(req);
}

/* --- CreatePartitions
 * ---------------------------------------------------------- */

/* The partitions a topic has once the growths in flight are done: a
 * request is judged against those, as Kafka's controller, taking them one
 * at a time, would. */
static int32_t partitions_after(const struct st_topic *t)
{
	return t->growing_to > t->npartitions ? t->growing_to : t->npartitions;
}

void handle_CreatePartitions(struct request *req)
{
	struct CreatePartitionsRequest *cr = req->body;
	struct CreatePartitionsResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	req_begin(req, resp);
	int32_t n = cr->Topics.count > 0 ? cr->Topics.count : 0;
	struct CreatePartitionsResponse_CreatePartitionsTopicResult *res = req_array(
		req, &resp->Results,
		&CreatePartitionsResponse_CreatePartitionsTopicResult_struct,
		n);
	struct name_seen *seen = req_names_seen(
		req, cr->Topics.items, sizeof(*cr->Topics.items),
		offsetof(struct CreatePartitionsRequest_CreatePartitionsTopic,
			 Name),
		n);
	if (!resp || (n && !res) || !seen) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct CreatePartitionsRequest_CreatePartitionsTopic *t =
			&cr->Topics.items[i];
		struct CreatePartitionsResponse_CreatePartitionsTopicResult *r =
			&res[i];
		char err[200] = "";
		int32_t have = 0;
		r->Name = t->Name;
		struct st_topic *topic = st_topic_find(s, t->Name);
		if (topic && topic->deleting)
			topic = NULL;
		if (seen[i].count > 1) {
			r->ErrorCode = KERR_INVALID_REQUEST;
			snprintf(err, sizeof(err), "Duplicate topic name.");
		} else if (!topic) {
			r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
			snprintf(err, sizeof(err),
				 "The topic '%.*s' does not exist.",
				 t->Name.len, t->Name.ptr);
		} else if (t->Count < (have = partitions_after(topic))) {
			r->ErrorCode = KERR_INVALID_PARTITIONS;
			snprintf(err, sizeof(err),
				 "Topic currently has %d partitions, which is "
				 "higher than the requested %d.",
				 have, t->Count);
		} else if (t->Count == have) {
			r->ErrorCode = KERR_INVALID_PARTITIONS;
			snprintf(err, sizeof(err),
				 "Topic already has %d partitions.", have);
		} else if (t->Count > 100000) {
			r->ErrorCode = KERR_INVALID_PARTITIONS;
			snprintf(err, sizeof(err), "Too many partitions.");
		} else if (t->Assignments.count >= 0) {
			/* The new partitions' replicas, as many lists as new
			 * partitions, each like the existing ones' (one). */
			int32_t add = t->Count - have;
			if (t->Assignments.count != add) {
				r->ErrorCode = KERR_INVALID_REPLICA_ASSIGNMENT;
				snprintf(err, sizeof(err),
					 "Attempted to add %d additional "
					 "partition(s), but only %d "
					 "assignment(s) were specified.",
					 add, t->Assignments.count);
			}
			int16_t rf = 1;
			for (int32_t j = 0; !r->ErrorCode && j < add; j++)
				r->ErrorCode = check_replicas(
					req->srv->cfg->broker_id,
					t->Assignments.items[j].BrokerIds.items,
					t->Assignments.items[j].BrokerIds.count,
					&rf, err, sizeof(err));
		}
		if (r->ErrorCode) {
			r->ErrorMessage = req_str(req, err);
			continue;
		}
		if (cr->ValidateOnly)
			continue;
		struct item *it =
			item_new(req, &r->ErrorCode, &r->ErrorMessage);
		if (!it) {
			r->ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		req_hold(req);
		st_create_partitions(s, topic, t->Count, item_done, it);
	}
	req_release(req);
}

/* --- DeleteRecords
 * ---------------------------------------------------------------- */

struct delete_item {
	struct request *req;
	struct DeleteRecordsResponse_DeleteRecordsPartitionResult *r;
};

static void records_deleted(void *arg, enum st_status st, int64_t offset,
			    int64_t ts)
{
	struct delete_item *d = arg;
	(void)ts;
	d->r->ErrorCode = kerr_from_status(st);
	d->r->LowWatermark = st == ST_OK ? offset : -1;
	req_release(d->req);
}

void handle_DeleteRecords(struct request *req)
{
	struct DeleteRecordsRequest *dr = req->body;
	struct DeleteRecordsResponse *resp = req_response(req);
	struct store *s = req->srv->store;
	req_begin(req, resp);
	int32_t n = dr->Topics.count > 0 ? dr->Topics.count : 0;
	struct DeleteRecordsResponse_DeleteRecordsTopicResult *res = req_array(
		req, &resp->Topics,
		&DeleteRecordsResponse_DeleteRecordsTopicResult_struct, n);
	if (!resp || (n && !res)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct DeleteRecordsRequest_DeleteRecordsTopic *t =
			&dr->Topics.items[i];
		res[i].Name = t->Name;
		struct st_topic *topic = st_topic_find(s, t->Name);
		int32_t np = t->Partitions.count > 0 ? t->Partitions.count : 0;
		struct DeleteRecordsResponse_DeleteRecordsPartitionResult *pr =
			req_array(
				req, &res[i].Partitions,
				&DeleteRecordsResponse_DeleteRecordsPartitionResult_struct,
				np);
		for (int32_t j = 0; pr && j < np; j++) {
			struct DeleteRecordsRequest_DeleteRecordsPartition *q =
				&t->Partitions.items[j];
			pr[j].PartitionIndex = q->PartitionIndex;
			pr[j].LowWatermark = -1;
			struct st_partition *p =
				topic ? st_partition(topic, q->PartitionIndex)
				      : NULL;
			if (!p) {
				pr[j].ErrorCode =
					KERR_UNKNOWN_TOPIC_OR_PARTITION;
				continue;
			}
			/* -1 means "up to the high watermark". */
			int64_t off = q->Offset == -1 ? st_high_watermark(p)
						      : q->Offset;
			if (off < 0 || off > st_high_watermark(p)) {
				pr[j].ErrorCode = KERR_OFFSET_OUT_OF_RANGE;
				continue;
			}
			struct delete_item *d =
				arena_alloc(&req->arena, sizeof(*d));
			if (!d) {
				pr[j].ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
				continue;
			}
			d->req = req;
			d->r = &pr[j];
			req_hold(req);
			st_delete_records(s, p, off, records_deleted, d);
		}
	}
	req_release(req);
}

/* --- DescribeLogDirs ------------------------------------------------------ */

/* samsa's one "log directory": the table every batch is a row of. */
#define LOG_DIR "postgresql:samsa.log"

struct logdirs {
	struct request *req;
	struct DescribeLogDirsRequest *dr;
	struct DescribeLogDirsResponse_DescribeLogDirsResult *dir;
};

static int64_t size_of(const struct st_log_size *v, size_t n, int32_t tid,
		       int32_t partition)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid].tid < tid ||
		    (v[mid].tid == tid && v[mid].partition < partition))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].tid == tid && v[lo].partition == partition
		       ? v[lo].bytes
		       : 0;
}

/* Fills out with topic's partitions: want (count < 0: all of them). */
static void
describe_dir_topic(struct request *req,
		   struct DescribeLogDirsResponse_DescribeLogDirsTopic *out,
		   const struct st_topic *topic, const int32_t *want,
		   int32_t nwant, const struct st_log_size *v, size_t n)
{
	int32_t np = nwant < 0 ? topic->npartitions : nwant;
	out->Name = kstr_c(topic->name);
	struct DescribeLogDirsResponse_DescribeLogDirsPartition *pp = req_array(
		req, &out->Partitions,
		&DescribeLogDirsResponse_DescribeLogDirsPartition_struct, np);
	int32_t k = 0;
	for (int32_t j = 0; pp && j < np; j++) {
		int32_t idx = nwant < 0 ? j : want[j];
		if (idx < 0 || idx >= topic->npartitions)
			continue; /* Kafka leaves out what it does not host */
		pp[k].PartitionIndex = idx;
		pp[k].PartitionSize = size_of(v, n, topic->tid, idx);
		k++;
	}
	out->Partitions.count = pp ? k : 0;
}

static void on_log_sizes(void *arg, enum st_status st,
			 const struct st_log_size *v, size_t n)
{
	struct logdirs *x = arg;
	struct request *req = x->req;
	struct store *s = req->srv->store;
	struct DescribeLogDirsRequest *dr = x->dr;
	x->dir->LogDir = kstr_c(LOG_DIR);
	x->dir->TotalBytes = x->dir->UsableBytes = -1;
	if (st != ST_OK) {
		x->dir->ErrorCode = KERR_KAFKA_STORAGE_ERROR;
		req_release(req);
		return;
	}
	bool all = dr->Topics.count < 0;
	int32_t nt = all ? (int32_t)st_topic_count(s) : dr->Topics.count;
	struct DescribeLogDirsResponse_DescribeLogDirsTopic *tt = req_array(
		req, &x->dir->Topics,
		&DescribeLogDirsResponse_DescribeLogDirsTopic_struct, nt);
	int32_t k = 0;
	for (int32_t i = 0; tt && i < nt; i++) {
		const struct st_topic *topic =
			all ? st_topic_at(s, (size_t)i) : NULL;
		const int32_t *want = NULL;
		int32_t nwant = -1; /* all partitions */
		if (!all) {
			struct DescribeLogDirsRequest_DescribableLogDirTopic
				*q = &dr->Topics.items[i];
			topic = st_topic_find(s, q->Topic);
			want = q->Partitions.items;
			nwant = q->Partitions.count > 0 ? q->Partitions.count
							: 0;
		}
		if (topic)
			describe_dir_topic(req, &tt[k++], topic, want, nwant, v,
					   n);
	}
	x->dir->Topics.count = tt ? k : 0;
	req_release(req);
}

void handle_DescribeLogDirs(struct request *req)
{
	struct DescribeLogDirsResponse *resp = req_response(req);
	req_begin(req, resp);
	struct logdirs *x = arena_alloc(&req->arena, sizeof(*x));
	if (x)
		x->dir = req_array(
			req, &resp->Results,
			&DescribeLogDirsResponse_DescribeLogDirsResult_struct,
			1);
	if (!resp || !x || !x->dir) {
		req_close_connection(req);
		return;
	}
	x->req = req;
	x->dr = req->body;
	req_hold(req);
	st_log_sizes(req->srv->store, on_log_sizes, x);
	req_release(req);
}
