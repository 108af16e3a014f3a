/*
 * cgroup: the consumer group protocol of KIP-848 (ConsumerGroupHeartbeat,
 * ConsumerGroupDescribe; clients with group.protocol=consumer), in memory.
 *
 * The coordinator assigns partitions, not a leader member.  A change of the
 * members, their subscriptions or the subscribed topics' partitions bumps
 * the group epoch; the next heartbeat computes the target assignment of
 * that epoch (Kafka's "uniform" assignor: balanced to within one partition,
 * and sticky), and each member moves towards its target one heartbeat at a
 * time, as Kafka's CurrentAssignmentBuilder moves it: partitions it must
 * give up are taken from it first, and it keeps its epoch until a heartbeat
 * reports them gone; partitions another member still holds are handed over
 * once that member has let them go.  No partition is ever owned by two
 * members.
 *
 * A group of this type shares the group table (proxy/group.h) with classic
 * groups, and its committed offsets are stored the same way.  Each member's
 * state is saved in Postgres before an answer that changed it goes out, so
 * after a restart members carry on with their epochs and partitions (their
 * sessions starting again), and none is ever told of a partition that a
 * restart could give to another.
 *
 * Everything runs on the event loop.
 */
#ifndef SAMSA_CGROUP_H
#define SAMSA_CGROUP_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol/kbuf.h"
#include "proxy/group.h"
#include "proxy/server.h"
#include "storage/groups.h"

struct cgroup;

/* ConsumerGroupHeartbeat: answers req (once Postgres has what changed). */
void cgroup_heartbeat(struct groups *gs, struct request *req);
/* ConsumerGroupDescribe: answers req at once. */
void cgroup_describe(struct groups *gs, struct request *req);

/* For proxy/group.c. */
struct st_cmember;
/*
 * g's consumer-protocol state from its n members saved in Postgres (rows;
 * a member that cannot be read is left out, logged); NULL when memory runs
 * out.
 */
struct cgroup *cgroup_restore(struct groups *gs, struct group *g,
			      const struct st_cmember *rows, size_t n);
void cgroup_free(struct cgroup *cg);
bool cgroup_has_members(const struct cgroup *cg);
/* "Empty", "Reconciling", "Stable" (KIP-848's names). */
const char *cgroup_state(const struct cgroup *cg);
bool cgroup_subscribes(const struct cgroup *cg, const char *topic);
/*
 * Whether an OffsetCommit (or TxnOffsetCommit) of member_id at epoch may
 * commit c[0..n): KERR_NONE, UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH.  A
 * commit with epoch < 0 (no member: a tool, or a consumer without group
 * management) may commit while the group has no members.  An epoch older
 * than the member's commits partitions it has held since that epoch and
 * holds still (KIP-1251, Kafka 4.3: its epoch may move on before the
 * member hears of it).
 */
int16_t cgroup_commit_check(const struct cgroup *cg, struct kstr member_id,
			    int32_t epoch, const struct st_offset_commit *c,
			    size_t n);
/* The same for an OffsetFetch: one with neither member nor epoch may read. */
int16_t cgroup_fetch_check(const struct cgroup *cg, struct kstr member_id,
			   int32_t epoch);

#endif
