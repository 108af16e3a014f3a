/*
 * group: the classic consumer group coordinator, in memory.
 *
 * One state machine per group, as Kafka's GroupCoordinator has it: Empty ->
 * PreparingRebalance (members join; answers held until every known member
 * rejoined or the rebalance timeout passed) -> CompletingRebalance (the
 * leader computes assignments; SyncGroup answers held until it sends them
 * and they are saved) -> Stable; Dead while being deleted.  Session timeouts
 * are libevent timers per member.  Saved state (generation, members,
 * assignments) goes to Postgres through storage/groups.h at the end of each
 * rebalance, and the coordinator is rebuilt from it on start, so members
 * carry on across a restart.
 *
 * Everything runs on the event loop.  Handlers that answer later hold their
 * request (a request lives until answered).
 */
#ifndef SAMSA_GROUP_H
#define SAMSA_GROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/kbuf.h"
#include "proxy/server.h"
#include "storage/groups.h"

struct groups;
struct group;

/*
 * The coordinator of srv, made (and restored from the store's saved groups)
 * on first use.  NULL only when memory runs out.
 */
struct groups *groups_get(struct server *srv);
/* Fails held requests' answers are dropped; frees every group and timer. */
void groups_free(struct server *srv);

/*
 * JoinGroup / SyncGroup: req's body is a decoded request of that API.  They
 * answer req, at once or when the rebalance gets there.
 */
void group_join(struct groups *gs, struct request *req);
void group_sync(struct groups *gs, struct request *req);

/* Heartbeat: the error code to answer with. */
int16_t group_heartbeat(struct groups *gs, struct kstr group_id,
			int32_t generation, struct kstr member_id,
			struct kstr instance_id);

/*
 * LeaveGroup of one member (member_id empty: the static member of
 * instance_id).  Returns the member's error code.
 */
int16_t group_leave(struct groups *gs, struct kstr group_id,
		    struct kstr member_id, struct kstr instance_id);

/*
 * Whether an OffsetFetch (v9+) by member_id (null: none) at epoch may read
 * the group's offsets: KERR_NONE, UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH
 * for a consumer-protocol group; other groups are not checked, as in
 * Kafka.
 */
int16_t group_fetch_check(struct groups *gs, struct kstr group_id,
			  struct kstr member_id, int32_t epoch);

/*
 * Whether an OffsetCommit with these credentials may commit c[0..n) (the
 * partitions of known topics it commits): KERR_NONE, or the error every
 * partition gets.  Creates the group (Empty, no protocol) for a standalone
 * commit (generation < 0) to a group that does not exist, and counts a
 * member's commit as a heartbeat.  A transactional one (TxnOffsetCommit)
 * that names no generation, member or instance may commit in any state.
 */
int16_t group_commit_check(struct groups *gs, struct kstr group_id,
			   int32_t generation, struct kstr member_id,
			   struct kstr instance_id, bool transactional,
			   const struct st_offset_commit *c, size_t n);

/* The group, or NULL (Dead groups being deleted are found). */
struct group *group_find(struct groups *gs, struct kstr group_id);
size_t groups_count(const struct groups *gs);
/* Groups in id order. */
struct group *group_at(const struct groups *gs, size_t i);

const char *group_id(const struct group *g);
/* "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead". */
const char *group_state(const struct group *g);
/* "" when none ("consumer" for a group of the consumer protocol). */
const char *group_protocol_type(const struct group *g);
/* ListGroups' GroupType: "classic" or "consumer" (KIP-848). */
const char *group_type(const struct group *g);
/* The selected protocol, "" before one was chosen. */
const char *group_protocol(const struct group *g);
bool group_has_members(const struct group *g);
/* True when a member of g subscribes topic (classic groups: of the
 * "consumer" protocol type only). */
bool group_subscribes(const struct group *g, const char *topic);

/* READ, DELETE and DESCRIBE: what anyone may do to a group here (the
 * describe APIs' AuthorizedOperations). */
#define GROUP_OPERATIONS ((1 << 3) | (1 << 6) | (1 << 8))

/*
 * Fills a DescribeGroups entry of req's response (strings copied into req's
 * arena).
 */
struct DescribeGroupsResponse_DescribedGroup;
void group_describe(struct request *req, const struct group *g,
		    struct DescribeGroupsResponse_DescribedGroup *out);

/*
 * Deletes an empty group with its offsets (DeleteGroups); cb gets the Kafka
 * error code: GROUP_ID_NOT_FOUND, NON_EMPTY_GROUP, COORDINATOR_NOT_AVAILABLE
 * when Postgres did not commit, or NONE.  cb may run before this returns.
 */
void group_delete(struct groups *gs, struct kstr group_id,
		  void (*cb)(void *arg, int16_t err), void *arg);

/* --- for proxy/cgroup.c: groups of the consumer protocol (KIP-848) --- */

struct cgroup;
struct event_base;

/* The group, made (Empty, classic) when unknown; NULL when memory runs out. */
struct group *group_open(struct groups *gs, struct kstr group_id);
/* Its consumer-protocol state (freed with the group); NULL: classic. */
struct cgroup *group_cgroup(const struct group *g);
void group_set_cgroup(struct group *g, struct cgroup *cg);
/* True while classic members are in it or joining it. */
bool group_classic_active(const struct group *g);
/*
 * Saves a consumer-protocol member's state (cgroup's encoding, copied) in
 * Postgres; done runs once, from the loop unless memory ran out, with ok
 * false when Postgres did not commit and g NULL when the group was deleted
 * meanwhile.
 */
void group_save_cmember(struct group *g, const char *member_id,
			const uint8_t *state, size_t len,
			void (*done)(struct group *g, void *arg, bool ok),
			void *arg);
/* Deletes it there (a failure only logs: the member, loaded again after a
 * restart, expires then). */
void group_delete_cmember(struct group *g, const char *member_id);
/* Its last member left: the retention of its offsets starts now. */
void group_now_empty(struct group *g);
struct event_base *groups_base(const struct groups *gs);
/* A new member id, "<prefix>-<uuid>" (malloc'd; NULL on exhaustion). */
char *group_new_member_id(struct kstr prefix);
/* The client's host as Kafka describes members: "/127.0.0.1" (malloc'd). */
char *group_client_host(const struct request *req);

#endif
