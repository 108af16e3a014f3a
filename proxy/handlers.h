/*
 * handlers: one function per served API, named after it.  Each receives a
 * request whose body is decoded and answers it with req_reply(), now or
 * later.
 */
#ifndef SAMSA_HANDLERS_H
#define SAMSA_HANDLERS_H

#include "proxy/server.h"
#include "storage/topic_config.h"

void handle_ApiVersions(struct request *req);
void handle_FindCoordinator(struct request *req);
void handle_Metadata(struct request *req);
void handle_DescribeCluster(struct request *req);
void handle_CreateTopics(struct request *req);
void handle_DeleteTopics(struct request *req);
void handle_CreatePartitions(struct request *req);
void handle_DeleteRecords(struct request *req);
void handle_DescribeLogDirs(struct request *req);
void handle_DescribeAcls(struct request *req);
void handle_CreateAcls(struct request *req);
void handle_DeleteAcls(struct request *req);
void handle_SaslHandshake(struct request *req);
void handle_SaslAuthenticate(struct request *req);
void handle_Produce(struct request *req);
void handle_Fetch(struct request *req);
void handle_ListOffsets(struct request *req);
void handle_OffsetForLeaderEpoch(struct request *req);
void handle_InitProducerId(struct request *req);
void handle_DescribeConfigs(struct request *req);
void handle_AlterConfigs(struct request *req);
void handle_IncrementalAlterConfigs(struct request *req);
void handle_JoinGroup(struct request *req);
void handle_SyncGroup(struct request *req);
void handle_Heartbeat(struct request *req);
void handle_ConsumerGroupHeartbeat(struct request *req);
void handle_ConsumerGroupDescribe(struct request *req);
void handle_LeaveGroup(struct request *req);
void handle_OffsetCommit(struct request *req);
void handle_OffsetFetch(struct request *req);
void handle_ListGroups(struct request *req);
void handle_DescribeGroups(struct request *req);
void handle_DeleteGroups(struct request *req);
void handle_OffsetDelete(struct request *req);
void handle_AddPartitionsToTxn(struct request *req);
void handle_AddOffsetsToTxn(struct request *req);
void handle_EndTxn(struct request *req);
void handle_TxnOffsetCommit(struct request *req);
void handle_DescribeProducers(struct request *req);
void handle_DescribeTransactions(struct request *req);
void handle_ListTransactions(struct request *req);

/* Shared by handlers: */

/*
 * Creates topic `name` with the broker defaults (auto-creation from Metadata
 * and Produce) when auto.create.topics.enable is true; cb runs when done.
 */
void topic_autocreate(struct request *req, struct kstr name,
		      void (*cb)(void *arg, enum st_status st, const char *msg),
		      void *arg);

/*
 * The effective value of topic config d for a topic with own settings
 * ov[0..n): its own value (source DYNAMIC_TOPIC_CONFIG) or the default (its
 * source from tc_default()).
 */
const char *topic_config_effective(const struct tc_override *ov, size_t n,
				   const struct tc_def *d, int *source);

/*
 * Checks a topic config set by a client: known name (else "Unknown topic
 * config name: x", as Kafka says it), non-null and valid value.  Returns
 * KERR_NONE or KERR_INVALID_CONFIG with a message in err.
 */
int16_t topic_config_check(struct kstr name, struct kstr value, char *err,
			   size_t errlen);

#endif
