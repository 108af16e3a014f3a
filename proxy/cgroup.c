/*
 * cgroup: the consumer group protocol (KIP-848): members, the target
 * assignment, reconciliation, timers.
 *
 * Names follow Kafka's group coordinator (GroupMetadataManager,
 * CurrentAssignmentBuilder, UniformAssignor) so that behaviour can be
 * compared with it.
 */
#include "proxy/cgroup.h"

#include <event2/event.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/logging.h"
#include "storage/groups.h"
#include "storage/java_regex.h"
#include "storage/store.h"
#include "storage/topic_config.h"

/* A topic partition, by topic id (a topic renamed or recreated is new). */
struct tp {
	struct kuuid topic;
	int32_t part;
	/* In a member's assigned and revoking sets: the member epoch from
	 * which it holds the partition (KIP-1251's assignment epoch; not
	 * saved: a restored member holds its partitions from its epoch).
	 * Not part of the partition's identity (tp_cmp, tps_eq). */
	int32_t since;
};

/* A set of partitions, sorted by tp_cmp. */
struct tpset {
	struct tp *v;
	int n, cap;
};

enum mstate {
	M_STABLE,     /* has its target, or a target epoch it reached */
	M_UNREVOKED,  /* must give up `revoking` before it moves on */
	M_UNRELEASED, /* at the target epoch, waiting for partitions others
		       * still hold */
};

struct cmember {
	struct cgroup *cg;
	char *id;
	char *instance_id; /* NULL: none */
	char *rack_id;	   /* NULL: none */
	char *client_id, *client_host;
	int32_t epoch, prev_epoch;
	int32_t rebalance_timeout;
	char **topics; /* subscribed names, sorted */
	int ntopics;
	char *regex; /* NULL: none */
	regex_t re;
	enum mstate state;
	bool left; /* a static member gone for now (epoch -2): its instance
		    * id may take its place back until its session ends */
	struct tpset assigned; /* what it may consume */
	struct tpset revoking; /* what it must give up */
	struct tpset target;
	struct event *session, *revoke;
	/* Its state as last written to Postgres (encode_member; committed
	 * once `saving` is 0); NULL: to write. */
	uint8_t *saved;
	size_t saved_len;
	int saving;	 /* writes in flight */
	uint64_t serial; /* tells this member from a later one of its id */
	struct cmember *next;
};

struct cgroup {
	struct group *g;
	struct groups *gs;
	int32_t epoch;		  /* the group epoch */
	int32_t assignment_epoch; /* the epoch `target`s were computed for */
	uint64_t topics_sig;	  /* of the subscribed topics' partitions */
	struct cmember *members;  /* in join order */
	int nmembers;
};

/* --- partition sets -------------------------------------------------------
 */

static int tp_cmp(const void *a, const void *b)
{
	const struct tp *x = a, *y = b;
	int c = memcmp(x->topic.b, y->topic.b, sizeof(x->topic.b));
	return c ? c : (x->part > y->part) - (x->part < y->part);
}

static bool tps_has(const struct tpset *s, const struct tp *t)
{
	return s->n && bsearch(t, s->v, (size_t)s->n, sizeof(*t), tp_cmp);
}

/* Appends (the caller sorts with tps_sort); false when memory runs out. */
static bool tps_add(struct tpset *s, struct tp t)
{
	if (s->n == s->cap) {
		int cap = s->cap ? s->cap * 2 : 8;
		struct tp *v = realloc(s->v, (size_t)cap * sizeof(*v));
		if (!v)
			return false;
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = t;
	return true;
}

static void tps_sort(struct tpset *s)
{
	if (s->n > 1)
		qsort(s->v, (size_t)s->n, sizeof(*s->v), tp_cmp);
}

static void tps_free(struct tpset *s)
{
	free(s->v);
	*s = (struct tpset){0};
}

/* Adds every partition of src; false when memory runs out. */
static bool tps_add_all(struct tpset *dst, const struct tpset *src)
{
	for (int i = 0; i < src->n; i++)
		if (!tps_add(dst, src->v[i]))
			return false;
	return true;
}

/* Replaces *dst with *src, which is left empty. */
static void tps_move(struct tpset *dst, struct tpset *src)
{
	tps_free(dst);
	*dst = *src;
	*src = (struct tpset){0};
}

static bool tps_eq(const struct tpset *a, const struct tpset *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (tp_cmp(&a->v[i], &b->v[i]) != 0)
			return false;
	return true;
}

static bool same_topic(const struct tp *a, const struct tp *b)
{
	return memcmp(a->topic.b, b->topic.b, sizeof(a->topic.b)) == 0;
}

/* How many partitions of s's i-th one's topic follow from i on (a set
 * keeps each topic's partitions together). */
static int run_len(const struct tpset *s, int i)
{
	int n = 1;
	while (i + n < s->n && same_topic(&s->v[i + n], &s->v[i]))
		n++;
	return n;
}

static int32_t count_topics(const struct tpset *s)
{
	int32_t n = 0;
	for (int i = 0; i < s->n; i += run_len(s, i))
		n++;
	return n;
}

/* The partitions s->v[i..i+n) as an int32 array field of req's answer. */
static bool put_partitions(struct request *req, const struct tpset *s, int i,
			   int n, void *field)
{
	int32_t *v = req_array_raw(req, field, sizeof(int32_t), n);
	for (int j = 0; v && j < n; j++)
		v[j] = s->v[i + j].part;
	return v != NULL;
}

/* The partitions of a heartbeat's TopicPartitions (owned by the member). */
struct owned {
	const struct ConsumerGroupHeartbeatRequest_TopicPartitions *v;
	int32_t n; /* -1: not sent */
};

static bool owned_has(const struct owned *o, const struct tp *t)
{
	for (int32_t i = 0; i < o->n; i++) {
		if (!same_topic(&(struct tp){o->v[i].TopicId, 0, 0}, t))
			continue;
		for (int32_t j = 0; j < o->v[i].Partitions.count; j++)
			if (o->v[i].Partitions.items[j] == t->part)
				return true;
	}
	return false;
}

/* Every owned partition is in s (false when nothing was sent). */
static bool owned_within(const struct owned *o, const struct tpset *s)
{
	if (o->n < 0)
		return false;
	for (int32_t i = 0; i < o->n; i++)
		for (int32_t j = 0; j < o->v[i].Partitions.count; j++) {
			struct tp t = {o->v[i].TopicId,
				       o->v[i].Partitions.items[j], 0};
			if (!tps_has(s, &t))
				return false;
		}
	return true;
}

/* --- members ----------------------------------------------------------------
 */

static void on_session_timeout(evutil_socket_t fd, short what, void *arg);
static void on_revoke_timeout(evutil_socket_t fd, short what, void *arg);

static void free_topics(struct cmember *m)
{
	for (int i = 0; i < m->ntopics; i++)
		free(m->topics[i]);
	free(m->topics);
	m->topics = NULL;
	m->ntopics = 0;
}

static void free_regex(struct cmember *m)
{
	if (m->regex)
		regfree(&m->re);
	free(m->regex);
	m->regex = NULL;
}

static void member_free(struct cmember *m)
{
	if (m->session)
		event_free(m->session);
	if (m->revoke)
		event_free(m->revoke);
	free_topics(m);
	free_regex(m);
	tps_free(&m->assigned);
	tps_free(&m->revoking);
	tps_free(&m->target);
	free(m->id);
	free(m->instance_id);
	free(m->rack_id);
	free(m->client_id);
	free(m->client_host);
	free(m->saved);
	free(m);
}

static struct cmember *member_find(const struct cgroup *cg, struct kstr id)
{
	for (struct cmember *m = cg->members; m; m = m->next)
		if (kstr_eq(id, m->id))
			return m;
	return NULL;
}

static struct cmember *member_by_instance(const struct cgroup *cg,
					  struct kstr instance)
{
	if (instance.len < 0)
		return NULL;
	for (struct cmember *m = cg->members; m; m = m->next)
		if (m->instance_id && kstr_eq(instance, m->instance_id))
			return m;
	return NULL;
}

/* Whether m subscribes the topic named name (a pattern never matches
 * internal topics, as in Kafka). */
static bool subscribes_name(const struct cmember *m, const char *name,
			    bool internal)
{
	for (int lo = 0, hi = m->ntopics; lo < hi;) {
		int mid = (lo + hi) / 2;
		int c = strcmp(name, m->topics[mid]);
		if (c == 0)
			return true;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return m->regex && !internal && regexec(&m->re, name, 0, NULL, 0) == 0;
}

static bool subscribes(const struct cmember *m, const struct st_topic *t)
{
	return subscribes_name(m, t->name, t->internal);
}

static bool any_subscribes(const struct cgroup *cg, const struct st_topic *t)
{
	for (struct cmember *m = cg->members; m; m = m->next)
		if (subscribes(m, t))
			return true;
	return false;
}

/* Held by another member, as assigned or still to be revoked. */
static bool held_by_other(const struct cgroup *cg, const struct cmember *m,
			  const struct tp *t)
{
	for (struct cmember *o = cg->members; o; o = o->next)
		if (o != m &&
		    (tps_has(&o->assigned, t) || tps_has(&o->revoking, t)))
			return true;
	return false;
}

static void remove_member(struct cgroup *cg, struct cmember *m, const char *why)
{
	log_info("consumer group %s: member %s %s (epoch %d)", group_id(cg->g),
		 m->id, why, m->epoch);
	for (struct cmember **pp = &cg->members; *pp; pp = &(*pp)->next)
		if (*pp == m) {
			*pp = m->next;
			break;
		}
	cg->nmembers--;
	cg->epoch++;
	group_delete_cmember(cg->g, m->id);
	member_free(m);
	if (!cg->members)
		group_now_empty(cg->g);
}

static void on_session_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cmember *m = arg;
	(void)fd;
	(void)what;
	remove_member(m->cg, m, "expired: no heartbeat within the session");
}

static void on_revoke_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct cmember *m = arg;
	(void)fd;
	(void)what;
	if (m->state == M_UNREVOKED)
		remove_member(m->cg, m,
			      "fenced: did not give up its partitions within "
			      "its rebalance timeout");
}

/* group.consumer.session.timeout.ms */
static int64_t session_ms(void)
{
	return bc_get_int("group.consumer.session.timeout.ms", 45000);
}

static void arm(struct event *ev, int64_t ms)
{
	struct timeval tv = {(time_t)(ms / 1000),
			     (suseconds_t)(ms % 1000) * 1000};
	event_add(ev, &tv);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sets the subscribed names (sorted, without duplicates): 1 when they
 * changed, 0 when not, -1 when memory runs out. */
static int set_topics(struct cmember *m, const struct kstr *names, int32_t n)
{
	char **v = calloc((size_t)n + 1, sizeof(*v));
	if (!v)
		return -1;
	int k = 0;
	for (int32_t i = 0; i < n; i++) {
		if (names[i].len < 0)
			continue;
		if (!(v[k] = strndup(names[i].ptr, (size_t)names[i].len))) {
			while (k > 0)
				free(v[--k]);
			free(v);
			return -1;
		}
		k++;
	}
	qsort(v, (size_t)k, sizeof(*v), cmp_str);
	int u = 0;
	for (int i = 0; i < k; i++) {
		if (u && strcmp(v[u - 1], v[i]) == 0)
			free(v[i]);
		else
			v[u++] = v[i];
	}
	bool same = u == m->ntopics;
	for (int i = 0; same && i < u; i++)
		same = strcmp(v[i], m->topics[i]) == 0;
	free_topics(m);
	m->topics = v;
	m->ntopics = u;
	return !same;
}

/* A Java regex matching whole names (storage/java_regex.h); 0 or -1. */
static int compile_regex(struct kstr pattern, regex_t *re)
{
	return java_regex_compile(re, pattern.ptr, (size_t)pattern.len, 0);
}

/* Sets the subscribed pattern ("" clears it): 1 when it changed, 0 when
 * not, -1 when it does not compile or memory runs out. */
static int set_regex(struct cmember *m, struct kstr pattern)
{
	if (m->regex && kstr_eq(pattern, m->regex))
		return 0;
	if (pattern.len == 0) {
		bool had = m->regex != NULL;
		free_regex(m);
		return had;
	}
	regex_t re;
	char *copy = kstr_dup(pattern);
	if (!copy || compile_regex(pattern, &re) < 0) {
		free(copy);
		return -1;
	}
	free_regex(m);
	m->re = re;
	m->regex = copy;
	return 1;
}

/* --- the target assignment ----------------------------------------------- */

/* FNV-1a over the subscribed topics' ids and partition counts: a change
 * (a topic created, deleted or grown) bumps the group epoch. */
static uint64_t topics_sig(const struct cgroup *cg, const struct store *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < st_topic_count(s); i++) {
		const struct st_topic *t = st_topic_at(s, i);
		if (!any_subscribes(cg, t))
			continue;
		for (size_t k = 0; k < sizeof(t->id.b); k++)
			h = (h ^ t->id.b[k]) * 1099511628211ULL;
		h = (h ^ (uint64_t)t->npartitions) * 1099511628211ULL;
	}
	return h;
}

static int cmp_member(const void *a, const void *b)
{
	const struct cmember *x = *(struct cmember *const *)a;
	const struct cmember *y = *(struct cmember *const *)b;
	return strcmp(x->id, y->id);
}

/* The member whose previous target has t, or -1. */
static int prev_owner(struct cmember **ms, int n, const struct tp *t)
{
	for (int i = 0; i < n; i++)
		if (tps_has(&ms[i]->target, t))
			return i;
	return -1;
}

/* Moves to `to` the last partition of `from` whose topic m subscribes
 * (the last given, the least sticky): 1 when one moved, 0 when none could,
 * -1 when memory ran out. */
static int move_one(const struct store *s, struct tpset *from, struct tpset *to,
		    const struct cmember *m)
{
	for (int j = from->n - 1; j >= 0; j--) {
		const struct st_topic *t =
			st_topic_find_id(s, &from->v[j].topic);
		if (!t || !subscribes(m, t))
			continue;
		if (!tps_add(to, from->v[j]))
			return -1;
		memmove(&from->v[j], &from->v[j + 1],
			(size_t)(from->n - j - 1) * sizeof(*from->v));
		from->n--;
		return 1;
	}
	return 0;
}

/*
 * Computes every member's target for the group epoch (UniformAssignor's
 * outcome, simply): with P partitions subscribed and M members, each keeps
 * up to P/M of the partitions it had, P%M of them one more, the rest go one
 * by one to the subscribed member holding fewest, and then partitions move
 * from members holding two more than another that subscribes them.  False when
 * memory runs out (the targets are then unchanged).
 */
static bool compute_targets(struct cgroup *cg, const struct store *s)
{
	int n = cg->nmembers;
	struct cmember **ms = calloc((size_t)n + 1, sizeof(*ms));
	struct tpset *next = calloc((size_t)n + 1, sizeof(*next));
	struct tpset all = {0};
	bool ok = ms && next;
	int k = 0;
	for (struct cmember *m = cg->members; ok && m; m = m->next)
		ms[k++] = m;
	if (ok)
		qsort(ms, (size_t)n, sizeof(*ms), cmp_member);
	/* Every subscribed partition, topics in name order. */
	for (size_t i = 0; ok && i < st_topic_count(s); i++) {
		const struct st_topic *t = st_topic_at(s, i);
		if (!any_subscribes(cg, t))
			continue;
		for (int32_t p = 0; ok && p < t->npartitions; p++)
			ok = tps_add(&all, (struct tp){t->id, p, 0});
	}
	int subscribed = 0;
	for (int i = 0; ok && i < n; i++)
		subscribed += ms[i]->ntopics > 0 || ms[i]->regex;
	int quota = subscribed ? all.n / subscribed : 0;
	int extra = subscribed ? all.n % subscribed : 0;
	bool *placed = ok ? calloc((size_t)all.n + 1, sizeof(*placed)) : NULL;
	ok = ok && placed;
	/* Sticky: each keeps what it had, up to its quota, then up to one
	 * more while there are extras to give. */
	for (int pass = 0; ok && pass < 2; pass++) {
		for (int j = 0; ok && j < all.n; j++) {
			if (placed[j])
				continue;
			int o = prev_owner(ms, n, &all.v[j]);
			const struct st_topic *t =
				o < 0 ? NULL
				      : st_topic_find_id(s, &all.v[j].topic);
			if (!t || !subscribes(ms[o], t))
				continue;
			if (pass == 0 ? next[o].n >= quota
				      : next[o].n != quota || extra == 0)
				continue;
			if (pass == 1)
				extra--;
			ok = tps_add(&next[o], all.v[j]);
			placed[j] = true;
		}
	}
	/* The rest to whoever subscribed holds fewest. */
	for (int j = 0; ok && j < all.n; j++) {
		if (placed[j])
			continue;
		const struct st_topic *t = st_topic_find_id(s, &all.v[j].topic);
		int best = -1;
		for (int i = 0; t && i < n; i++)
			if (subscribes(ms[i], t) &&
			    (best < 0 || next[i].n < next[best].n))
				best = i;
		if (best >= 0)
			ok = tps_add(&next[best], all.v[j]);
	}
	/* Different subscriptions can leave a member two short of another
	 * whose partitions it could take: move them over (each move evens
	 * the counts, so this ends). */
	for (int rc = 1; ok && rc > 0; ok = rc >= 0) {
		rc = 0;
		for (int x = 0; !rc && x < n; x++)
			for (int y = 0; !rc && y < n; y++)
				if (next[x].n >= next[y].n + 2)
					rc = move_one(s, &next[x], &next[y],
						      ms[y]);
	}
	for (int i = 0; ok && i < n; i++) {
		tps_sort(&next[i]);
		tps_move(&ms[i]->target, &next[i]);
	}
	for (int i = 0; next && i < n; i++)
		tps_free(&next[i]);
	free(placed);
	free(next);
	free(ms);
	tps_free(&all);
	return ok;
}

/* --- reconciliation --------------------------------------------------------
 */

/*
 * Moves m towards its target (CurrentAssignmentBuilder's
 * computeNextAssignment): what it has and is no longer its own must be
 * revoked first, at its current epoch; otherwise it reaches the assignment
 * epoch with what it keeps and what no one else holds.
 */
static bool next_assignment(struct cgroup *cg, struct cmember *m)
{
	struct tpset keep = {0}, revoke = {0};
	bool unreleased = false, ok = true;
	for (int i = 0; ok && i < m->assigned.n; i++)
		ok = tps_has(&m->target, &m->assigned.v[i])
			     ? tps_add(&keep, m->assigned.v[i])
			     : tps_add(&revoke, m->assigned.v[i]);
	if (ok && revoke.n) {
		tps_move(&m->assigned, &keep);
		tps_move(&m->revoking, &revoke);
		/* Each set to revoke gets the whole rebalance timeout. */
		arm(m->revoke, m->rebalance_timeout);
		m->state = M_UNREVOKED;
		return true;
	}
	for (int i = 0; ok && i < m->target.n; i++) {
		const struct tp *t = &m->target.v[i];
		if (tps_has(&m->assigned, t))
			continue;
		if (held_by_other(cg, m, t))
			unreleased = true;
		else
			ok = tps_add(&keep, (struct tp){t->topic, t->part,
							cg->assignment_epoch});
	}
	if (ok) {
		tps_sort(&keep);
		tps_move(&m->assigned, &keep);
		tps_free(&m->revoking);
		if (m->epoch != cg->assignment_epoch) {
			m->prev_epoch = m->epoch;
			m->epoch = cg->assignment_epoch;
		}
		event_del(m->revoke);
		m->state = unreleased ? M_UNRELEASED : M_STABLE;
	}
	tps_free(&keep);
	tps_free(&revoke);
	return ok;
}

static bool reconcile(struct cgroup *cg, struct cmember *m,
		      const struct owned *owned)
{
	switch (m->state) {
	case M_UNREVOKED:
		/* It moves on once a heartbeat lists what it owns and the
		 * revoked partitions are not among them. */
		if (owned->n < 0)
			return true;
		for (int i = 0; i < m->revoking.n; i++)
			if (owned_has(owned, &m->revoking.v[i]))
				return true;
		break;
	case M_STABLE:
		if (m->epoch == cg->assignment_epoch)
			return true;
		break;
	case M_UNRELEASED:
		break;
	}
	return next_assignment(cg, m);
}

/* --- ConsumerGroupHeartbeat ---------------------------------------------- */

/* Kafka's checks of a heartbeat's fields: NULL, or what is wrong. */
static const char *invalid(const struct ConsumerGroupHeartbeatRequest *r)
{
	if (r->GroupId.len <= 0)
		return "GroupId can't be empty.";
	if (r->RackId.len == 0)
		return "RackId can't be empty.";
	if (r->InstanceId.len == 0)
		return "InstanceId can't be empty.";
	/* Saved as text in Postgres. */
	if (!kstr_is_text(r->GroupId) || !kstr_is_text(r->InstanceId) ||
	    !kstr_is_text(r->MemberId) || !kstr_is_text(r->RackId))
		return "Ids must be UTF-8 text without NUL.";
	if (r->MemberEpoch < -2)
		return "MemberEpoch is invalid.";
	if (r->MemberEpoch != 0 && r->MemberId.len <= 0)
		return "MemberId can't be empty.";
	if (r->MemberEpoch == -2 && r->InstanceId.len < 0)
		return "InstanceId can't be null when MemberEpoch is -2.";
	if (r->MemberEpoch == 0) {
		if (r->RebalanceTimeoutMs == -1)
			return "RebalanceTimeoutMs must be provided in first "
			       "request.";
		if (r->TopicPartitions.count != 0)
			return "TopicPartitions must be empty when "
			       "(re-)joining.";
		if (r->SubscribedTopicNames.count < 0 &&
		    r->SubscribedTopicRegex.len < 0)
			return "SubscribedTopicNames or SubscribedTopicRegex "
			       "must be set in first request.";
	}
	return NULL;
}

static void answer(struct request *req,
		   struct ConsumerGroupHeartbeatResponse *resp, int16_t err,
		   const char *msg)
{
	resp->ErrorCode = err;
	resp->ErrorMessage = req_str(req, msg);
	req_reply(req, resp);
}

/* The member's assignment, by topic. */
static bool fill_assignment(struct request *req, const struct tpset *s,
			    struct ConsumerGroupHeartbeatResponse_Assignment *a)
{
	int32_t nt = count_topics(s);
	struct ConsumerGroupHeartbeatResponse_TopicPartitions *t = req_array(
		req, &a->TopicPartitions,
		&ConsumerGroupHeartbeatResponse_TopicPartitions_struct, nt);
	if (nt && !t)
		return false;
	for (int i = 0, k = 0, n; i < s->n; i += n, k++) {
		n = run_len(s, i);
		t[k].TopicId = s->v[i].topic;
		if (!put_partitions(req, s, i, n, &t[k].Partitions))
			return false;
	}
	return true;
}

/* A member of cg with id (malloc'd, taken) and its timers, not linked;
 * NULL when memory runs out. */
static struct cmember *member_alloc(struct cgroup *cg, char *id)
{
	struct cmember *m = calloc(1, sizeof(*m));
	if (!m) {
		free(id);
		return NULL;
	}
	static uint64_t serials;
	struct event_base *base = groups_base(cg->gs);
	m->cg = cg;
	m->id = id;
	m->serial = ++serials;
	m->session = event_new(base, -1, 0, on_session_timeout, m);
	m->revoke = event_new(base, -1, 0, on_revoke_timeout, m);
	if (!m->id || !m->session || !m->revoke) {
		member_free(m);
		return NULL;
	}
	return m;
}

/* Links m last, its session starting now. */
static void member_link(struct cgroup *cg, struct cmember *m)
{
	struct cmember **tail = &cg->members;
	while (*tail)
		tail = &(*tail)->next;
	*tail = m;
	cg->nmembers++;
	arm(m->session, session_ms());
}

static struct cmember *member_new(struct cgroup *cg, struct request *req,
				  const struct ConsumerGroupHeartbeatRequest *r)
{
	struct cmember *m = member_alloc(
		cg, r->MemberId.len > 0
			    ? kstr_dup(r->MemberId)
			    : group_new_member_id(KSTR_LIT("consumer")));
	if (!m)
		return NULL;
	m->client_id = kstr_dup_text(req->hdr.ClientId);
	m->client_host = group_client_host(req);
	if (!m->client_id || !m->client_host) {
		member_free(m);
		return NULL;
	}
	member_link(cg, m);
	cg->epoch++;
	return m;
}

/* Replaces *dst with a copy of s when s is not null; false on exhaustion. */
static bool set_opt(char **dst, struct kstr s)
{
	if (s.len < 0)
		return true;
	char *c = kstr_dup(s);
	if (!c)
		return false;
	free(*dst);
	*dst = c;
	return true;
}

/* The group of a heartbeat; NULL with resp answered. */
static struct cgroup *
heartbeat_group(struct groups *gs, struct request *req,
		struct ConsumerGroupHeartbeatResponse *resp)
{
	const struct ConsumerGroupHeartbeatRequest *r = req->body;
	struct group *g = group_find(gs, r->GroupId);
	char msg[256];
	if (g && strcmp(group_state(g), "Dead") == 0) {
		answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE,
		       "The group is being deleted.");
		return NULL;
	}
	if (g && !group_cgroup(g) && group_classic_active(g)) {
		snprintf(msg, sizeof(msg),
			 "Group %.*s is not a consumer group: its members "
			 "use the classic protocol.",
			 (int)r->GroupId.len, r->GroupId.ptr);
		answer(req, resp, KERR_GROUP_ID_NOT_FOUND, msg);
		return NULL;
	}
	if (r->MemberEpoch != 0 && (!g || !group_cgroup(g))) {
		/* Not known here (its session ended, or its group is gone):
		 * the member joins again. */
		answer(req, resp, KERR_UNKNOWN_MEMBER_ID,
		       "The member is not known to the group.");
		return NULL;
	}
	if (!g && !(g = group_open(gs, r->GroupId))) {
		answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
		return NULL;
	}
	struct cgroup *cg = group_cgroup(g);
	if (!cg) {
		/* An empty classic group (offsets only) becomes one. */
		if (!(cg = calloc(1, sizeof(*cg)))) {
			answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
			return NULL;
		}
		cg->g = g;
		cg->gs = gs;
		group_set_cgroup(g, cg);
	}
	return cg;
}

/* The member of a heartbeat, joined or checked; NULL with resp answered. */
static struct cmember *
heartbeat_member(struct cgroup *cg, struct request *req,
		 struct ConsumerGroupHeartbeatResponse *resp,
		 const struct owned *owned)
{
	const struct ConsumerGroupHeartbeatRequest *r = req->body;
	struct cmember *m =
		r->MemberId.len > 0 ? member_find(cg, r->MemberId) : NULL;
	struct cmember *same = member_by_instance(cg, r->InstanceId);
	char msg[200];
	if (r->MemberEpoch != 0) {
		if (!m) {
			answer(req, resp, KERR_UNKNOWN_MEMBER_ID,
			       "The member is not known to the group.");
			return NULL;
		}
		if (same && same != m) {
			answer(req, resp, KERR_FENCED_INSTANCE_ID,
			       "Another member has this instance id now.");
			return NULL;
		}
		/* Leaving needs no epoch.  Its answer with the new epoch was
		 * lost only if it owns no more than it was given at that
		 * epoch. */
		if (r->MemberEpoch < 0 ||
		    (!m->left && (r->MemberEpoch == m->epoch ||
				  (r->MemberEpoch == m->prev_epoch &&
				   owned_within(owned, &m->assigned)))))
			return m;
		snprintf(msg, sizeof(msg),
			 "The member's epoch %d is not the group's %d for it: "
			 "it must give up its partitions and join again.",
			 r->MemberEpoch, m->left ? -2 : m->epoch);
		answer(req, resp, KERR_FENCED_MEMBER_EPOCH, msg);
		return NULL;
	}
	if (same && same != m) {
		if (!same->left) {
			answer(req, resp, KERR_UNRELEASED_INSTANCE_ID,
			       "Another member of the group has this instance "
			       "id.");
			return NULL;
		}
		/* The static member is back, under a new member id: it gets
		 * its epoch and partitions again. */
		char *id = r->MemberId.len > 0
				   ? kstr_dup(r->MemberId)
				   : group_new_member_id(KSTR_LIT("consumer"));
		if (!id) {
			answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
			return NULL;
		}
		if (m)
			remove_member(cg, m, "replaced by its instance");
		group_delete_cmember(cg->g, same->id);
		free(same->id);
		same->id = id;
		same->left = false;
		free(same->saved);
		same->saved = NULL;
		return same;
	}
	if (m) {
		/* Joining again: it owns nothing now. */
		tps_free(&m->assigned);
		tps_free(&m->revoking);
		event_del(m->revoke);
		m->state = M_STABLE;
		m->left = false;
		m->prev_epoch = m->epoch = 0;
		cg->epoch++;
		return m;
	}
	if (!(m = member_new(cg, req, r)))
		answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
	return m;
}

/* Takes the heartbeat's fields that changed; -1 with resp answered. */
static int update_member(struct cmember *m, struct request *req,
			 struct ConsumerGroupHeartbeatResponse *resp)
{
	const struct ConsumerGroupHeartbeatRequest *r = req->body;
	struct cgroup *cg = m->cg;
	if (r->RebalanceTimeoutMs != -1)
		m->rebalance_timeout = r->RebalanceTimeoutMs;
	if (!set_opt(&m->instance_id, r->InstanceId) ||
	    !set_opt(&m->rack_id, r->RackId)) {
		answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
		return -1;
	}
	if (r->SubscribedTopicNames.count >= 0) {
		int c = set_topics(m, r->SubscribedTopicNames.items,
				   r->SubscribedTopicNames.count);
		if (c < 0) {
			answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
			return -1;
		}
		cg->epoch += c;
	}
	if (r->SubscribedTopicRegex.len >= 0) {
		int c = set_regex(m, r->SubscribedTopicRegex);
		if (c < 0) {
			answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
			return -1;
		}
		cg->epoch += c;
	}
	return 0;
}

/* Answers a heartbeat: the member is at epoch with assigned. */
static void heartbeat_ok(struct request *req,
			 struct ConsumerGroupHeartbeatResponse *resp,
			 int32_t epoch, const struct tpset *assigned,
			 bool send_assignment)
{
	resp->MemberEpoch = epoch;
	if (send_assignment &&
	    !fill_assignment(req, assigned, &resp->Assignment)) {
		req_close_connection(req);
		return;
	}
	resp->ErrorCode = KERR_NONE;
	req_reply(req, resp);
}

/* --- saving ----------------------------------------------------------------
 *
 * A member's state in Postgres (group_save_cmember), version 1: instance,
 * rack, client id and host (nullable compact strings), rebalance timeout,
 * epoch, previous epoch, state, left, the subscribed names (an array), the
 * regex (nullable), then what it is assigned and what it is revoking (arrays of
 * topic id and partition).  Targets are not saved: a restored group
 * computes them again, starting from what each member holds.
 */

#define STATE_V1 1

static void put_set(struct kb_writer *w, const struct tpset *s)
{
	kb_write_array_len(w, s->n);
	for (int i = 0; i < s->n; i++) {
		kb_write_uuid(w, &s->v[i].topic);
		kb_write_i32(w, s->v[i].part);
	}
}

static bool encode_member(const struct cmember *m, struct kb_writer *w)
{
	kb_write_i8(w, STATE_V1);
	kb_write_compact_string(w, kstr_c(m->instance_id));
	kb_write_compact_string(w, kstr_c(m->rack_id));
	kb_write_compact_string(w, kstr_c(m->client_id));
	kb_write_compact_string(w, kstr_c(m->client_host));
	kb_write_i32(w, m->rebalance_timeout);
	kb_write_i32(w, m->epoch);
	kb_write_i32(w, m->prev_epoch);
	kb_write_i8(w, (int8_t)m->state);
	kb_write_bool(w, m->left);
	kb_write_array_len(w, m->ntopics);
	for (int i = 0; i < m->ntopics; i++)
		kb_write_compact_string(w, kstr_c(m->topics[i]));
	kb_write_compact_string(w, kstr_c(m->regex));
	put_set(w, &m->assigned);
	put_set(w, &m->revoking);
	return kb_writer_ok(w);
}

enum decoded { DECODED, UNREADABLE, NO_MEMORY };

static enum decoded get_set(struct kb_reader *r, struct tpset *s, int32_t since)
{
	int32_t n;
	if (!kb_read_array_len(r, &n, INT32_MAX) || n < 0)
		return UNREADABLE;
	for (int32_t i = 0; i < n; i++) {
		struct tp t = {.since = since};
		if (!kb_read_uuid(r, &t.topic) || !kb_read_i32(r, &t.part))
			return UNREADABLE;
		if (!tps_add(s, t))
			return NO_MEMORY;
	}
	tps_sort(s);
	return DECODED;
}

/*
 * Reads m's state from p; m is to be freed unless DECODED.  A pattern that
 * no longer compiles is logged and dropped: the member keeps its
 * partitions, subscribed to what it names.
 */
static enum decoded decode_member(struct cmember *m, const uint8_t *p,
				  size_t len)
{
	struct kb_reader r;
	struct kstr inst, rack, client, host, regex, *names;
	int8_t version, state;
	int32_t n;
	kb_reader_init(&r, p, len);
	if (!(kb_read_i8(&r, &version) && version == STATE_V1 &&
	      kb_read_compact_string(&r, &inst) &&
	      kb_read_compact_string(&r, &rack) &&
	      kb_read_compact_string(&r, &client) && client.len >= 0 &&
	      kb_read_compact_string(&r, &host) && host.len >= 0 &&
	      kb_read_i32(&r, &m->rebalance_timeout) &&
	      kb_read_i32(&r, &m->epoch) && kb_read_i32(&r, &m->prev_epoch) &&
	      kb_read_i8(&r, &state) && state >= M_STABLE &&
	      state <= M_UNRELEASED && kb_read_bool(&r, &m->left) &&
	      kb_read_array_len(&r, &n, INT32_MAX) && n >= 0))
		return UNREADABLE;
	if (!(names = calloc((size_t)n + 1, sizeof(*names))))
		return NO_MEMORY;
	enum decoded d = DECODED;
	for (int32_t i = 0; d == DECODED && i < n; i++)
		if (!kb_read_compact_string(&r, &names[i]))
			d = UNREADABLE;
	if (d == DECODED && !kb_read_compact_string(&r, &regex))
		d = UNREADABLE;
	if (d == DECODED)
		d = get_set(&r, &m->assigned, m->epoch);
	if (d == DECODED)
		d = get_set(&r, &m->revoking, m->epoch);
	if (d == DECODED && (!kb_reader_ok(&r) || kb_remaining(&r) != 0))
		d = UNREADABLE;
	if (d == DECODED &&
	    !(set_opt(&m->instance_id, inst) && set_opt(&m->rack_id, rack) &&
	      set_opt(&m->client_id, client) &&
	      set_opt(&m->client_host, host) && set_topics(m, names, n) >= 0))
		d = NO_MEMORY;
	free(names);
	if (d == DECODED && regex.len > 0 && set_regex(m, regex) < 0)
		log_warn("consumer group %s: member %s: its pattern %.*s could "
			 "not be compiled again: dropped",
			 group_id(m->cg->g), m->id, (int)regex.len, regex.ptr);
	m->state = (enum mstate)state;
	return d;
}

struct save_wait {
	struct request *req;
	struct ConsumerGroupHeartbeatResponse *resp;
	uint64_t serial;
	bool send;
	bool joining; /* the member's first answer */
	/* What the answer tells: the state written, whatever the member's
	 * state is by the time Postgres has it. */
	int32_t epoch;
	struct tpset assigned;
};

static void save_wait_free(struct save_wait *w)
{
	tps_free(&w->assigned);
	free(w);
}

static void member_saved(struct group *g, void *arg, bool ok)
{
	struct save_wait *w = arg;
	struct cgroup *cg = g ? group_cgroup(g) : NULL;
	/* By serial: a static member's id changes when it comes back. */
	struct cmember *m = cg ? cg->members : NULL;
	while (m && m->serial != w->serial)
		m = m->next;
	if (m)
		m->saving--;
	if (!m) {
		answer(w->req, w->resp, KERR_UNKNOWN_MEMBER_ID,
		       "The member left the group meanwhile.");
	} else if (!ok) {
		/* Written again at its next heartbeat.  A joining member
		 * never heard of its partitions: it goes.  Any other may be
		 * reading them: it stays, to retry. */
		free(m->saved);
		m->saved = NULL;
		if (w->joining)
			remove_member(cg, m,
				      "not taken in: saving the group failed");
		answer(w->req, w->resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
	} else {
		heartbeat_ok(w->req, w->resp, w->epoch, &w->assigned, w->send);
	}
	save_wait_free(w);
}

/*
 * Answers m's heartbeat once Postgres has committed its state as the
 * answer tells it: an answer is all a member goes by, so what it is told
 * must survive a restart.  No write when that state is committed already.
 */
static void save_then_answer(struct request *req,
			     struct ConsumerGroupHeartbeatResponse *resp,
			     struct cmember *m, bool send)
{
	const struct ConsumerGroupHeartbeatRequest *r = req->body;
	bool joining = r->MemberEpoch == 0;
	struct kb_writer st = {0};
	struct save_wait *w = NULL;
	if (!encode_member(m, &st))
		goto failed;
	if (!m->saving && m->saved && m->saved_len == st.len &&
	    memcmp(m->saved, st.buf, st.len) == 0) {
		kb_writer_free(&st);
		heartbeat_ok(req, resp, m->epoch, &m->assigned, send);
		return;
	}
	if (!(w = calloc(1, sizeof(*w))) ||
	    !tps_add_all(&w->assigned, &m->assigned))
		goto failed;
	w->req = req;
	w->resp = resp;
	w->serial = m->serial;
	w->send = send;
	w->joining = joining;
	w->epoch = m->epoch;
	free(m->saved);
	m->saved = st.buf;
	m->saved_len = st.len;
	m->saving++;
	group_save_cmember(m->cg->g, m->id, m->saved, m->saved_len,
			   member_saved, w);
	return;
failed:
	if (w)
		save_wait_free(w);
	kb_writer_free(&st);
	if (joining)
		remove_member(m->cg, m, "not taken in: out of memory");
	answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
}

/* Saves that a static member left for now, without waiting: should it be
 * lost, the member is loaded as not left and its session ends it. */
static void save_left(struct cmember *m)
{
	struct kb_writer st = {0};
	if (encode_member(m, &st))
		group_save_cmember(m->cg->g, m->id, st.buf, st.len, NULL, NULL);
	kb_writer_free(&st);
	/* Not known to be committed: the next change writes again. */
	free(m->saved);
	m->saved = NULL;
}

struct cgroup *cgroup_restore(struct groups *gs, struct group *g,
			      const struct st_cmember *rows, size_t n)
{
	struct cgroup *cg = calloc(1, sizeof(*cg));
	if (!cg)
		return NULL;
	cg->g = g;
	cg->gs = gs;
	for (size_t i = 0; i < n; i++) {
		struct cmember *m = member_alloc(cg, strdup(rows[i].member_id));
		uint8_t *saved = malloc(rows[i].len + 1);
		enum decoded d =
			m ? decode_member(m, rows[i].state, rows[i].len)
			  : NO_MEMORY;
		if (d == DECODED &&
		    (!saved || !tps_add_all(&m->target, &m->assigned)))
			d = NO_MEMORY;
		if (d != DECODED) {
			log_warn("consumer group %s: member %s could not be "
				 "loaded: %s",
				 group_id(g), rows[i].member_id,
				 d == UNREADABLE
					 ? "its saved state is unreadable, "
					   "deleted"
					 : "out of memory");
			if (d == UNREADABLE)
				group_delete_cmember(g, rows[i].member_id);
			free(saved);
			if (m)
				member_free(m);
			continue;
		}
		memcpy(saved, rows[i].state, rows[i].len);
		m->saved = saved;
		m->saved_len = rows[i].len;
		/* Its session, and any revocation it owes, start again now. */
		member_link(cg, m);
		if (m->state == M_UNREVOKED)
			arm(m->revoke, m->rebalance_timeout);
		if (m->epoch > cg->assignment_epoch)
			cg->assignment_epoch = m->epoch;
	}
	/* A new epoch: targets are computed again at the next heartbeat. */
	cg->epoch = cg->assignment_epoch + 1;
	log_info("consumer group %s: %d member(s) loaded at epoch %d",
		 group_id(g), cg->nmembers, cg->assignment_epoch);
	return cg;
}

void cgroup_heartbeat(struct groups *gs, struct request *req)
{
	const struct ConsumerGroupHeartbeatRequest *r = req->body;
	struct ConsumerGroupHeartbeatResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	const char *bad = invalid(r);
	if (bad) {
		answer(req, resp, KERR_INVALID_REQUEST, bad);
		return;
	}
	if (r->ServerAssignor.len >= 0 &&
	    !kstr_eq(r->ServerAssignor, "uniform")) {
		answer(req, resp, KERR_UNSUPPORTED_ASSIGNOR,
		       "The server's only assignor is uniform.");
		return;
	}
	regex_t re;
	if (r->SubscribedTopicRegex.len > 0) {
		if (compile_regex(r->SubscribedTopicRegex, &re) < 0) {
			char msg[300];
			int n = r->SubscribedTopicRegex.len;
			snprintf(msg, sizeof(msg),
				 "SubscribedTopicRegex %.*s does not compile "
				 "(no lookarounds, backreferences or named "
				 "groups).",
				 n < 200 ? n : 200,
				 r->SubscribedTopicRegex.ptr);
			answer(req, resp, KERR_INVALID_REGULAR_EXPRESSION, msg);
			return;
		}
		regfree(&re);
	}
	struct owned owned = {r->TopicPartitions.items,
			      r->TopicPartitions.count};
	struct cgroup *cg = heartbeat_group(gs, req, resp);
	struct cmember *m = cg ? heartbeat_member(cg, req, resp, &owned) : NULL;
	if (!m)
		return;
	resp->MemberId = req_str(req, m->id);
	resp->HeartbeatIntervalMs = (int32_t)bc_get_int(
		"group.consumer.heartbeat.interval.ms", 5000);
	if (r->MemberEpoch == -2) {
		/* A static member keeps its partitions for its instance until
		 * its session ends. */
		m->left = true;
		arm(m->session, session_ms());
		save_left(m);
	} else if (r->MemberEpoch == -1) {
		remove_member(cg, m, "left the group");
	}
	if (r->MemberEpoch < 0) {
		resp->MemberEpoch = r->MemberEpoch;
		answer(req, resp, KERR_NONE, NULL);
		return;
	}
	if (update_member(m, req, resp) < 0)
		return;
	uint64_t sig = topics_sig(cg, req->srv->store);
	if (sig != cg->topics_sig) {
		cg->topics_sig = sig;
		cg->epoch++;
	}
	if (cg->epoch > cg->assignment_epoch &&
	    compute_targets(cg, req->srv->store))
		cg->assignment_epoch = cg->epoch;
	struct tpset before = {0};
	bool ok = true;
	for (int i = 0; ok && i < m->assigned.n; i++)
		ok = tps_add(&before, m->assigned.v[i]);
	ok = ok && reconcile(cg, m, &owned);
	arm(m->session, session_ms());
	/* The assignment goes with a join, a full heartbeat and a change. */
	bool send = r->MemberEpoch == 0 || owned.n >= 0 ||
		    !tps_eq(&before, &m->assigned);
	tps_free(&before);
	if (!ok)
		answer(req, resp, KERR_COORDINATOR_NOT_AVAILABLE, NULL);
	else
		save_then_answer(req, resp, m, send);
}

/* --- ConsumerGroupDescribe -------------------------------------------------
 */

static bool describe_set(struct request *req, const struct tpset *s,
			 struct ConsumerGroupDescribeResponse_Assignment *a)
{
	int32_t nt = count_topics(s);
	struct ConsumerGroupDescribeResponse_TopicPartitions *t = req_array(
		req, &a->TopicPartitions,
		&ConsumerGroupDescribeResponse_TopicPartitions_struct, nt);
	if (nt && !t)
		return false;
	for (int i = 0, k = 0, n; i < s->n; i += n, k++) {
		n = run_len(s, i);
		const struct st_topic *topic =
			st_topic_find_id(req->srv->store, &s->v[i].topic);
		t[k].TopicId = s->v[i].topic;
		t[k].TopicName = req_str(req, topic ? topic->name : "");
		if (!put_partitions(req, s, i, n, &t[k].Partitions))
			return false;
	}
	return true;
}

static bool
describe_group(struct request *req, const struct cgroup *cg,
	       struct ConsumerGroupDescribeResponse_DescribedGroup *out)
{
	out->GroupState = req_str(req, cgroup_state(cg));
	out->GroupEpoch = cg->epoch;
	out->AssignmentEpoch = cg->assignment_epoch;
	out->AssignorName = req_str(req, "uniform");
	struct ConsumerGroupDescribeResponse_Member *mb = req_array(
		req, &out->Members,
		&ConsumerGroupDescribeResponse_Member_struct, cg->nmembers);
	if (cg->nmembers && !mb)
		return false;
	int i = 0;
	for (const struct cmember *m = cg->members; m; m = m->next, i++) {
		mb[i].MemberId = req_str(req, m->id);
		mb[i].InstanceId = req_str(req, m->instance_id);
		mb[i].RackId = req_str(req, m->rack_id);
		mb[i].MemberEpoch = m->epoch;
		mb[i].ClientId = req_str(req, m->client_id);
		mb[i].ClientHost = req_str(req, m->client_host);
		mb[i].SubscribedTopicRegex = req_str(req, m->regex);
		struct kstr *names =
			req_array_raw(req, &mb[i].SubscribedTopicNames,
				      sizeof(*names), m->ntopics);
		if (m->ntopics && !names)
			return false;
		for (int k = 0; k < m->ntopics; k++)
			names[k] = req_str(req, m->topics[k]);
		if (!describe_set(req, &m->assigned, &mb[i].Assignment) ||
		    !describe_set(req, &m->target, &mb[i].TargetAssignment))
			return false;
	}
	return true;
}

void cgroup_describe(struct groups *gs, struct request *req)
{
	const struct ConsumerGroupDescribeRequest *r = req->body;
	struct ConsumerGroupDescribeResponse *resp = req_response(req);
	int32_t n = r->GroupIds.count > 0 ? r->GroupIds.count : 0;
	struct ConsumerGroupDescribeResponse_DescribedGroup *out =
		resp ? req_array(
			       req, &resp->Groups,
			       &ConsumerGroupDescribeResponse_DescribedGroup_struct,
			       n)
		     : NULL;
	if (!resp || (n && !out)) {
		req_close_connection(req);
		return;
	}
	for (int32_t i = 0; i < n; i++) {
		struct kstr id = r->GroupIds.items[i];
		const struct group *g = group_find(gs, id);
		const struct cgroup *cg = g ? group_cgroup(g) : NULL;
		out[i].GroupId = id;
		if (r->IncludeAuthorizedOperations)
			out[i].AuthorizedOperations = GROUP_OPERATIONS;
		if (!cg) {
			/* Kafka's answer, on which its admin client asks
			 * DescribeGroups instead. */
			char msg[300];
			snprintf(msg, sizeof(msg),
				 g ? "Group %.*s is not a consumer group."
				   : "Group %.*s not found.",
				 (int)(id.len > 0 ? id.len : 0),
				 id.ptr ? id.ptr : "");
			out[i].ErrorCode = KERR_GROUP_ID_NOT_FOUND;
			out[i].ErrorMessage = req_str(req, msg);
			out[i].GroupState = req_str(req, "");
			continue;
		}
		if (!describe_group(req, cg, &out[i])) {
			req_close_connection(req);
			return;
		}
	}
	req_reply(req, resp);
}

/* --- for the group table ----------------------------------------------------
 */

void cgroup_free(struct cgroup *cg)
{
	if (!cg)
		return;
	while (cg->members) {
		struct cmember *m = cg->members;
		cg->members = m->next;
		member_free(m);
	}
	free(cg);
}

bool cgroup_has_members(const struct cgroup *cg)
{
	return cg->members != NULL;
}

const char *cgroup_state(const struct cgroup *cg)
{
	if (!cg->members)
		return "Empty";
	if (cg->epoch > cg->assignment_epoch)
		return "Assigning";
	for (const struct cmember *m = cg->members; m; m = m->next)
		if (m->state != M_STABLE || m->epoch != cg->assignment_epoch)
			return "Reconciling";
	return "Stable";
}

bool cgroup_subscribes(const struct cgroup *cg, const char *topic)
{
	for (const struct cmember *m = cg->members; m; m = m->next)
		if (subscribes_name(m, topic, false))
			return true;
	return false;
}

static int16_t epoch_check(const struct cgroup *cg, struct kstr member_id,
			   int32_t epoch)
{
	const struct cmember *m = member_find(cg, member_id);
	if (!m)
		return KERR_UNKNOWN_MEMBER_ID;
	return epoch == m->epoch ? KERR_NONE : KERR_STALE_MEMBER_EPOCH;
}

/* m holds t (assigned, or still to revoke) since epoch or before. */
static bool held_since(const struct cmember *m, const struct tp *t,
		       int32_t epoch)
{
	const struct tpset *sets[2] = {&m->assigned, &m->revoking};
	for (int i = 0; i < 2; i++) {
		const struct tp *h =
			sets[i]->n ? bsearch(t, sets[i]->v, (size_t)sets[i]->n,
					     sizeof(*t), tp_cmp)
				   : NULL;
		if (h)
			return h->since <= epoch;
	}
	return false;
}

int16_t cgroup_commit_check(const struct cgroup *cg, struct kstr member_id,
			    int32_t epoch, const struct st_offset_commit *c,
			    size_t n)
{
	if (epoch < 0 && !cg->members)
		return KERR_NONE;
	const struct cmember *m = member_find(cg, member_id);
	if (!m)
		return KERR_UNKNOWN_MEMBER_ID;
	if (epoch == m->epoch)
		return KERR_NONE;
	if (epoch > m->epoch || epoch < 0)
		return KERR_STALE_MEMBER_EPOCH;
	/* KIP-1251: a member whose epoch moved on before it heard of it
	 * commits what it held at the epoch it sends and holds still. */
	for (size_t i = 0; i < n; i++) {
		struct tp t = {c[i].topic->id, c[i].partition, 0};
		if (!held_since(m, &t, epoch))
			return KERR_STALE_MEMBER_EPOCH;
	}
	return KERR_NONE;
}

int16_t cgroup_fetch_check(const struct cgroup *cg, struct kstr member_id,
			   int32_t epoch)
{
	if (member_id.len < 0 && epoch < 0)
		return KERR_NONE;
	return epoch_check(cg, member_id, epoch);
}
