/*
 * groups: consumer groups' committed offsets and group metadata, kept in
 * Postgres (samsa.group_offsets, samsa.groups, samsa.group_members) and in
 * memory.
 *
 * Everything is loaded at start-up (st_groups_load, from store_open) and
 * served from memory afterwards.  Changes are written through the groups'
 * own Postgres connection, one implicit transaction per call, and applied in
 * memory only once Postgres committed them, so an acknowledged offset commit
 * survives a crash.  Calls on one group are applied in the order they were
 * made (one connection, pipelined in order).
 *
 * Offsets are keyed by the topic's internal id as well as its name: an offset
 * whose topic was deleted (or deleted and created again) is not returned, and
 * Postgres drops its row with the topic (ON DELETE CASCADE).
 *
 * All calls are made from the event loop; callbacks run later, from the
 * loop, exactly once.
 */
#ifndef SAMSA_GROUPS_H
#define SAMSA_GROUPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "protocol/kbuf.h"
#include "storage/store.h"

/* One committed offset as OffsetFetch returns it. */
struct st_committed {
	char *topic;
	int32_t tid;
	int32_t partition;
	bool valid; /* false while only a commit in flight exists */
	int64_t offset;
	int32_t leader_epoch; /* -1 when unknown */
	uint8_t *metadata;    /* never NULL (a null commit is stored as "") */
	size_t metadata_len;
	int64_t commit_time; /* ms since the epoch */
	int pending;	     /* commits in flight for this partition */
};

/* One member of a group as saved at the end of a rebalance. */
struct st_group_member {
	char *member_id;
	char *instance_id; /* NULL for a dynamic member */
	char *client_id;
	char *client_host;
	int32_t session_timeout;
	int32_t rebalance_timeout;
	const uint8_t *metadata; /* the selected protocol's metadata */
	size_t metadata_len;
	const uint8_t *assignment;
	size_t assignment_len;
};

/* A group's state as saved (and as loaded at start-up). */
/* A consumer-protocol (KIP-848) member as proxy/cgroup.c saved it. */
struct st_cmember {
	char *member_id;
	uint8_t *state; /* cgroup's encoding */
	size_t len;
};

struct st_group_meta {
	char *group_id;
	char *protocol_type; /* NULL when none */
	int32_t generation;
	char *protocol; /* NULL when none */
	char *leader;	/* NULL when none */
	size_t nmembers;
	struct st_group_member *members;
	/* consumer-protocol members (st_cmember_save), in member id order */
	size_t ncmembers;
	struct st_cmember *cmembers;
};

/*
 * Start-up (called from store_open's load): reads every group and offset
 * through the blocking conn, then opens and waits for the groups' own
 * connection.  Returns 0, or -1 with a one-line reason in err.
 */
int st_groups_load(struct store *s, PGconn *conn, char *err, size_t errlen);
/* Frees the groups' memory and closes their connection (store_close). */
void st_groups_close(struct store *s);

/*
 * Calls fn once for every group the store knows (one with saved metadata or
 * committed offsets), meta NULL when it has offsets only.  name and meta are
 * borrowed for the call.
 */
void st_groups_each(struct store *s,
		    void (*fn)(void *arg, const char *name,
			       const struct st_group_meta *meta),
		    void *arg);

/* --- offsets ----------------------------------------------------------- */

/*
 * The committed offset of group/topic/partition, or NULL when none (also
 * when it belongs to an earlier topic of that name).  Valid until the next
 * change of the group's offsets.
 */
const struct st_committed *st_offset_get(struct store *s, struct kstr group,
					 const struct st_topic *t,
					 int32_t partition);

/*
 * Every committed offset of group, sorted by topic then partition, with
 * stale entries (deleted topics, only pending) skipped: calls fn for each.
 * Entries are borrowed for the call.
 */
void st_offsets_each(struct store *s, struct kstr group,
		     void (*fn)(void *arg, const struct st_committed *c),
		     void *arg);

/* True when group has a live committed offset or a commit in flight. */
bool st_group_has_offsets(struct store *s, struct kstr group);

/* True while a commit of group's offsets is being written. */
bool st_offsets_writing(struct store *s, struct kstr group);

/*
 * Calls fn(arg) from the loop once every offset write queued so far is over,
 * whatever its outcome (they are written in order on one connection): an
 * OffsetFetch that waits for it sees the commits that came before it, as a
 * member taking over a partition must.  Returns false when it cannot (out of
 * memory); fn is then not called.
 */
bool st_offsets_after_writes(struct store *s, void (*fn)(void *arg), void *arg);

/* One partition's commit; strings borrowed until st_offsets_commit returns */
struct st_offset_commit {
	const struct st_topic *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	struct kstr metadata; /* null is stored as "" */
};

/*
 * Commits c[0..n) for group in one transaction; cb gets ST_OK once Postgres
 * committed (the offsets are then served), ST_UNAVAILABLE when it did not.
 * While it is in flight the partitions count as pending (st_committed
 * .pending, for require_stable).  Copies what it needs.
 */
void st_offsets_commit(struct store *s, struct kstr group,
		       const struct st_offset_commit *c, size_t n,
		       st_done_cb cb, void *arg);

/*
 * Deletes group's offsets of topic t for partitions[0..n) (OffsetDelete).
 */
void st_offsets_delete(struct store *s, struct kstr group,
		       const struct st_topic *t, const int32_t *partitions,
		       size_t n, st_done_cb cb, void *arg);

/*
 * Forgets in memory every offset of the topic with internal id tid (its rows
 * went with the topic).  Optional: lookups skip them anyway.
 */
void st_offsets_topic_deleted(struct store *s, int32_t tid);

/* --- group metadata ---------------------------------------------------- */

/*
 * Saves g (replacing what was saved for the group, its classic members
 * included; consumer-protocol members stay as they are); cb gets ST_OK once
 * committed.  Copies what it needs before returning.
 */
void st_group_save(struct store *s, const struct st_group_meta *g,
		   st_done_cb cb, void *arg);

/*
 * Saves (replaces) a consumer-protocol member of group: state is the
 * caller's encoding, copied.  The group gets a metadata row if it had none
 * (generation 0, no protocol).  cb gets ST_OK once committed.
 */
void st_cmember_save(struct store *s, struct kstr group, const char *member_id,
		     const uint8_t *state, size_t len, st_done_cb cb,
		     void *arg);
/* Deletes a consumer-protocol member of group; cb as above. */
void st_cmember_delete(struct store *s, struct kstr group,
		       const char *member_id, st_done_cb cb, void *arg);

/*
 * Deletes the group's saved metadata and all its offsets (DeleteGroups).
 */
void st_group_delete(struct store *s, struct kstr group, st_done_cb cb,
		     void *arg);

/*
 * Deletes every offset of group committed before cutoff_ms (retention of
 * an empty group's offsets); cb as above.
 */
void st_offsets_expire(struct store *s, struct kstr group, int64_t cutoff_ms,
		       st_done_cb cb, void *arg);

#endif
