/*
 * group: the classic group coordinator (state machine, timers, saving).
 *
 * Modelled on Kafka's GroupCoordinator/GroupMetadata (classic protocol):
 * the names of the steps (prepare_rebalance, complete_join, ...) follow it
 * so that behaviour can be compared line by line.
 */
#include "proxy/group.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/time.h>

#include "protocol/messages.h"
#include "proxy/cgroup.h"
#include "proxy/errors.h"
#include "proxy/logging.h"
#include "storage/groups.h"
#include "storage/topic_config.h"

/* Kafka's limit for a member that joined but never completed the join. */
#define NEW_MEMBER_JOIN_TIMEOUT_MS 300000
/* How often empty groups' offsets are checked for expiry. */
#define RETENTION_CHECK_MS 600000

enum gstate { GS_EMPTY, GS_PREPARING, GS_COMPLETING, GS_STABLE, GS_DEAD };

static const char *const state_names[] = {
	"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead",
};

struct gproto {
	char *name;
	uint8_t *meta;
	size_t len;
};

struct gmember {
	struct group *g;
	char *id;
	char *instance_id; /* NULL: dynamic member */
	char *client_id;
	char *client_host;
	int32_t session_timeout, rebalance_timeout;
	struct gproto *protos;
	int nprotos;
	uint8_t *assignment;
	size_t assignment_len;
	struct request *join_req; /* awaiting the join's completion */
	struct request *sync_req; /* awaiting the leader's assignment */
	int32_t synced;		  /* the generation it last sent SyncGroup in */
	bool is_new;
	struct event *timer; /* session expiry */
	struct gmember *next;
};

/* A member id handed out with MEMBER_ID_REQUIRED, not joined yet. */
struct gpending {
	struct group *g;
	char *id;
	struct event *timer;
	struct gpending *next;
};

struct group {
	struct groups *gs;
	char *id;
	enum gstate state;
	char *protocol_type; /* NULL: none */
	char *protocol;	     /* NULL: none */
	char *leader;	     /* NULL: none */
	int32_t generation;
	struct gmember *members; /* in join order */
	int nmembers;
	struct gpending *pending;
	int npending;
	struct event *rebalance_timer;
	bool initial;	       /* the rebalance timer is the initial delay */
	bool new_member_added; /* during the initial delay */
	int64_t delay_remaining;
	int32_t syncing; /* generation whose assignment was taken, or -1 */
	int refs;	 /* storage calls in flight */
	bool unlinked;	 /* out of the table: freed when refs drop to 0 */
	int64_t empty_since;
	struct cgroup *cg; /* the consumer protocol's state; NULL: classic */
};

struct groups {
	struct server *srv;
	struct group **v; /* sorted by id */
	size_t n, cap;
	struct event *retention_ev;
};

/* --- replies ------------------------------------------------------------ */

/*
 * Answers are queued while the state machine runs and sent once it is
 * consistent: sending may read further requests (a connection that was
 * paused resumes), which must not find a group half updated.
 */
struct reply {
	struct request *req;
	void *resp;
};
static struct reply *replies;
static size_t nreplies, capreplies;

static void reply_later(struct request *req, void *resp)
{
	if (!resp) {
		req_close_connection(req);
		return;
	}
	if (nreplies == capreplies) {
		size_t cap = capreplies ? capreplies * 2 : 64;
		struct reply *nr = realloc(replies, cap * sizeof(*nr));
		if (!nr) {
			req_reply(req, resp);
			return;
		}
		replies = nr;
		capreplies = cap;
	}
	replies[nreplies++] = (struct reply){req, resp};
}

static void replies_flush(void)
{
	while (nreplies) {
		struct reply r = replies[0];
		memmove(&replies[0], &replies[1],
			(nreplies - 1) * sizeof(*replies));
		nreplies--;
		req_reply(r.req, r.resp);
	}
}

static struct kstr arena_bytes(struct request *req, const uint8_t *p, size_t n)
{
	uint8_t *c = arena_alloc(&req->arena, n);
	if (!c)
		return (struct kstr){"", 0};
	if (n)
		memcpy(c, p, n);
	return (struct kstr){(const char *)c, (int32_t)n};
}

/* --- helpers ------------------------------------------------------------ */

static bool keq(struct kstr a, const char *b)
{
	return a.len >= 0 && b && kstr_cmp(a, b) == 0;
}

static void set_str(char **dst, const char *src)
{
	free(*dst);
	*dst = src ? strdup(src) : NULL;
}

/* A member id as Kafka makes them: prefix (as text), '-', a random UUID. */
static char *new_member_id(struct kstr prefix)
{
	uint8_t b[16];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)random();
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	char *text = kstr_dup_text(prefix);
	size_t pl = text ? strlen(text) : 0;
	char *id = text ? realloc(text, pl + 38) : NULL;
	if (!id) {
		free(text);
		return NULL;
	}
	snprintf(id + pl, 38,
		 "-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x"
		 "%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return id;
}

static void arm(struct event *ev, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	struct timeval tv = {(time_t)(ms / 1000),
			     (suseconds_t)(ms % 1000) * 1000};
	event_add(ev, &tv);
}

static struct store *store_of(struct group *g)
{
	return g->gs->srv->store;
}

/* --- members -------------------------------------------------------------- */

static void on_session_timeout(evutil_socket_t fd, short what, void *arg);

static void protos_free(struct gproto *p, int n)
{
	for (int i = 0; i < n; i++) {
		free(p[i].name);
		free(p[i].meta);
	}
	free(p);
}

static void member_free(struct gmember *m)
{
	if (m->timer)
		event_free(m->timer);
	protos_free(m->protos, m->nprotos);
	free(m->id);
	free(m->instance_id);
	free(m->client_id);
	free(m->client_host);
	free(m->assignment);
	free(m);
}

static struct gmember *member_find(struct group *g, struct kstr id)
{
	for (struct gmember *m = g->members; m; m = m->next)
		if (keq(id, m->id))
			return m;
	return NULL;
}

static struct gmember *member_by_id(struct group *g, const char *id)
{
	for (struct gmember *m = g->members; m; m = m->next)
		if (strcmp(m->id, id) == 0)
			return m;
	return NULL;
}

static struct gmember *static_member(struct group *g, struct kstr instance)
{
	if (instance.len < 0)
		return NULL;
	for (struct gmember *m = g->members; m; m = m->next)
		if (m->instance_id && keq(instance, m->instance_id))
			return m;
	return NULL;
}

static bool is_leader(const struct group *g, const struct gmember *m)
{
	return g->leader && strcmp(g->leader, m->id) == 0;
}

/* The member's metadata for protocol name (NULL: it has none). */
static const struct gproto *member_proto(const struct gmember *m,
					 const char *name)
{
	for (int i = 0; name && i < m->nprotos; i++)
		if (strcmp(m->protos[i].name, name) == 0)
			return &m->protos[i];
	return NULL;
}

/* Copies a JoinGroup's protocols (NULL on exhaustion). */
static struct gproto *protos_copy(const struct JoinGroupRequest *jr, int *n)
{
	int32_t cnt = jr->Protocols.count > 0 ? jr->Protocols.count : 0;
	struct gproto *p = calloc((size_t)cnt + 1, sizeof(*p));
	if (!p)
		return NULL;
	for (int32_t i = 0; i < cnt; i++) {
		const struct JoinGroupRequest_JoinGroupRequestProtocol *q =
			&jr->Protocols.items[i];
		size_t len = q->Metadata.len > 0 ? (size_t)q->Metadata.len : 0;
		p[i].name = kstr_dup(q->Name);
		p[i].meta = malloc(len ? len : 1);
		p[i].len = len;
		if (!p[i].name || !p[i].meta) {
			protos_free(p, i + 1);
			return NULL;
		}
		if (len)
			memcpy(p[i].meta, q->Metadata.ptr, len);
	}
	*n = cnt;
	return p;
}

/* Same protocols, same metadata, same order (Kafka's matches()). */
static bool member_matches(const struct gmember *m,
			   const struct JoinGroupRequest *jr)
{
	if (jr->Protocols.count != m->nprotos)
		return false;
	for (int i = 0; i < m->nprotos; i++) {
		const struct JoinGroupRequest_JoinGroupRequestProtocol *q =
			&jr->Protocols.items[i];
		size_t len = q->Metadata.len > 0 ? (size_t)q->Metadata.len : 0;
		if (!keq(q->Name, m->protos[i].name) ||
		    len != m->protos[i].len ||
		    (len && memcmp(q->Metadata.ptr, m->protos[i].meta, len)))
			return false;
	}
	return true;
}

static void heartbeat(struct gmember *m)
{
	arm(m->timer, m->session_timeout);
}

/* --- group table ------------------------------------------------------------
 */

static size_t group_pos(const struct groups *gs, struct kstr id, bool *found)
{
	size_t lo = 0, hi = gs->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = kstr_cmp(id, gs->v[mid]->id);
		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*found = false;
	return lo;
}

struct group *group_find(struct groups *gs, struct kstr id)
{
	bool found;
	size_t i = group_pos(gs, id, &found);
	return found ? gs->v[i] : NULL;
}

size_t groups_count(const struct groups *gs)
{
	return gs->n;
}

struct group *group_at(const struct groups *gs, size_t i)
{
	return i < gs->n ? gs->v[i] : NULL;
}

static void on_rebalance_timeout(evutil_socket_t fd, short what, void *arg);

static struct group *group_new(struct groups *gs, struct kstr id)
{
	bool found;
	size_t i = group_pos(gs, id, &found);
	if (found)
		return gs->v[i];
	if (gs->n == gs->cap) {
		size_t cap = gs->cap ? gs->cap * 2 : 16;
		struct group **nv = realloc(gs->v, cap * sizeof(*nv));
		if (!nv)
			return NULL;
		gs->v = nv;
		gs->cap = cap;
	}
	struct group *g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->gs = gs;
	g->id = kstr_dup(id);
	g->rebalance_timer =
		event_new(gs->srv->base, -1, 0, on_rebalance_timeout, g);
	if (!g->id || !g->rebalance_timer) {
		if (g->rebalance_timer)
			event_free(g->rebalance_timer);
		free(g->id);
		free(g);
		return NULL;
	}
	g->state = GS_EMPTY;
	g->syncing = -1;
	g->empty_since = st_now_ms();
	memmove(&gs->v[i + 1], &gs->v[i], (gs->n - i) * sizeof(*gs->v));
	gs->v[i] = g;
	gs->n++;
	return g;
}

static void group_free(struct group *g)
{
	while (g->members) {
		struct gmember *m = g->members;
		g->members = m->next;
		member_free(m);
	}
	while (g->pending) {
		struct gpending *p = g->pending;
		g->pending = p->next;
		event_free(p->timer);
		free(p->id);
		free(p);
	}
	cgroup_free(g->cg);
	event_free(g->rebalance_timer);
	free(g->id);
	free(g->protocol_type);
	free(g->protocol);
	free(g->leader);
	free(g);
}

/* Takes g out of the table; freed now or when its storage calls return. */
static void group_unlink(struct group *g)
{
	struct groups *gs = g->gs;
	bool found;
	size_t i = group_pos(gs, kstr_c(g->id), &found);
	if (found && gs->v[i] == g) {
		memmove(&gs->v[i], &gs->v[i + 1],
			(gs->n - i - 1) * sizeof(*gs->v));
		gs->n--;
	}
	g->unlinked = true;
	event_del(g->rebalance_timer);
	if (g->refs == 0)
		group_free(g);
}

/* Drops a storage reference; false when g is gone. */
static bool group_unref(struct group *g)
{
	g->refs--;
	if (g->unlinked) {
		if (g->refs == 0)
			group_free(g);
		return false;
	}
	return true;
}

/* --- answers ------------------------------------------------------------- */

static void join_error(struct request *req, int16_t err, struct kstr member)
{
	struct JoinGroupResponse *r = req_response(req);
	if (r) {
		r->ErrorCode = err;
		r->GenerationId = -1;
		r->ProtocolName = KSTR_NULL;
		/* A copy: the answer is written after the member it names
		 * may have been freed (a leave, a static member replaced). */
		r->MemberId =
			arena_bytes(req, (const uint8_t *)member.ptr,
				    member.len > 0 ? (size_t)member.len : 0);
	}
	reply_later(req, r);
}

/*
 * The join result for member m of the current generation; the leader's
 * (when with_members) lists every member with its metadata for the chosen
 * protocol.
 */
static void join_ok(struct request *req, struct group *g, struct gmember *m,
		    bool with_members, bool skip)
{
	struct JoinGroupResponse *r = req_response(req);
	if (!r) {
		reply_later(req, r);
		return;
	}
	r->GenerationId = g->generation;
	r->ProtocolType = req_str(req, g->protocol_type);
	r->ProtocolName = req_str(req, g->protocol);
	r->Leader = req_str(req, g->leader ? g->leader : "");
	r->MemberId = req_str(req, m->id);
	r->SkipAssignment = skip;
	if (with_members) {
		struct JoinGroupResponse_JoinGroupResponseMember *out = req_array(
			req, &r->Members,
			&JoinGroupResponse_JoinGroupResponseMember_struct,
			g->nmembers);
		int i = 0;
		for (struct gmember *o = g->members; out && o;
		     o = o->next, i++) {
			const struct gproto *p = member_proto(o, g->protocol);
			out[i].MemberId = req_str(req, o->id);
			out[i].GroupInstanceId = req_str(req, o->instance_id);
			out[i].Metadata = p ? arena_bytes(req, p->meta, p->len)
					    : (struct kstr){"", 0};
		}
	}
	reply_later(req, r);
}

static void sync_answer(struct request *req, struct group *g, struct gmember *m,
			int16_t err)
{
	struct SyncGroupResponse *r = req_response(req);
	if (r) {
		r->ErrorCode = err;
		/* An empty assignment is empty bytes, never missing. */
		r->Assignment = (struct kstr){"", 0};
		if (err == KERR_NONE && m) {
			r->ProtocolType = req_str(req, g->protocol_type);
			r->ProtocolName = req_str(req, g->protocol);
			r->Assignment = arena_bytes(req, m->assignment,
						    m->assignment_len);
		}
	}
	reply_later(req, r);
}

/* --- the state machine --------------------------------------------------- */

static void prepare_rebalance(struct group *g, const char *reason);
static void complete_join(struct group *g);
static void persist(struct group *g,
		    void (*done)(struct group *g, void *arg, bool ok),
		    void *arg);

static int64_t max_rebalance_timeout(const struct group *g)
{
	int64_t t = 0;
	for (struct gmember *m = g->members; m; m = m->next)
		if (m->rebalance_timeout > t)
			t = m->rebalance_timeout;
	return t;
}

/* Kafka's hasAllMembersJoined: every member rejoined, none pending. */
static bool all_joined(const struct group *g)
{
	if (g->npending)
		return false;
	for (struct gmember *m = g->members; m; m = m->next)
		if (!m->join_req)
			return false;
	return true;
}

static void try_complete_join(struct group *g)
{
	if (g->state == GS_PREPARING && !g->initial && all_joined(g))
		complete_join(g);
}

/* Removes m, answering what it still waits for. */
static void remove_member(struct group *g, struct gmember *m, int16_t err)
{
	if (m->join_req)
		join_error(m->join_req, err, kstr_c(m->id));
	if (m->sync_req)
		sync_answer(m->sync_req, g, NULL, err);
	m->join_req = m->sync_req = NULL;
	struct gmember **pp = &g->members;
	while (*pp && *pp != m)
		pp = &(*pp)->next;
	if (*pp)
		*pp = m->next;
	g->nmembers--;
	if (is_leader(g, m))
		set_str(&g->leader, g->members ? g->members->id : NULL);
	member_free(m);
}

static void remove_member_and_update(struct group *g, struct gmember *m,
				     const char *reason)
{
	log_info("group %s: member %s removed (%s)", g->id, m->id, reason);
	remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
	switch (g->state) {
	case GS_STABLE:
	case GS_COMPLETING:
		prepare_rebalance(g, reason);
		break;
	case GS_PREPARING:
		try_complete_join(g);
		break;
	default:
		break;
	}
}

static void maybe_prepare_rebalance(struct group *g, const char *reason)
{
	if (g->state == GS_STABLE || g->state == GS_COMPLETING ||
	    g->state == GS_EMPTY)
		prepare_rebalance(g, reason);
}

static void prepare_rebalance(struct group *g, const char *reason)
{
	if (g->state == GS_COMPLETING) {
		/* The leader's assignment will not come for this generation:
		 * members waiting in SyncGroup rejoin. */
		for (struct gmember *m = g->members; m; m = m->next) {
			free(m->assignment);
			m->assignment = NULL;
			m->assignment_len = 0;
			if (m->sync_req) {
				sync_answer(m->sync_req, g, NULL,
					    KERR_REBALANCE_IN_PROGRESS);
				m->sync_req = NULL;
			}
		}
	}
	bool from_empty = g->state == GS_EMPTY;
	int64_t timeout = max_rebalance_timeout(g);
	int64_t delay = bc_get_int("group.initial.rebalance.delay.ms", 3000);
	g->state = GS_PREPARING;
	log_info("group %s: preparing to rebalance (generation %d): %s", g->id,
		 g->generation, reason);
	if (from_empty && delay > 0) {
		/* Kafka's InitialDelayedJoin: a new group waits for more
		 * members to come before the first generation. */
		if (delay > timeout)
			delay = timeout;
		g->initial = true;
		g->new_member_added = false;
		g->delay_remaining = timeout - delay;
		arm(g->rebalance_timer, delay);
		return;
	}
	g->initial = false;
	arm(g->rebalance_timer, timeout);
	try_complete_join(g);
}

/* Kafka's selectProtocol: among the protocols every member supports, the
 * one most members prefer. */
static const char *select_protocol(const struct group *g)
{
	const struct gmember *first = g->members;
	const char *best = NULL;
	int best_votes = -1;
	for (int i = 0; first && i < first->nprotos; i++) {
		const char *cand = first->protos[i].name;
		bool everyone = true;
		for (struct gmember *m = g->members; m && everyone; m = m->next)
			everyone = member_proto(m, cand) != NULL;
		if (!everyone)
			continue;
		int votes = 0;
		for (struct gmember *m = g->members; m; m = m->next) {
			/* m votes for its first protocol all support. */
			for (int j = 0; j < m->nprotos; j++) {
				bool all = true;
				for (struct gmember *o = g->members; o && all;
				     o = o->next)
					all = member_proto(o,
							   m->protos[j].name) !=
					      NULL;
				if (all) {
					votes += strcmp(m->protos[j].name,
							cand) == 0;
					break;
				}
			}
		}
		if (votes > best_votes) {
			best = cand;
			best_votes = votes;
		}
	}
	return best;
}

/* Kafka's supportsProtocols for a member joining g. */
static bool supports_protocols(const struct group *g,
			       const struct JoinGroupRequest *jr)
{
	if (jr->ProtocolType.len <= 0 || jr->Protocols.count <= 0)
		return false;
	if (g->state == GS_EMPTY || !g->members)
		return true;
	if (!g->protocol_type || !keq(jr->ProtocolType, g->protocol_type))
		return false;
	for (int32_t i = 0; i < jr->Protocols.count; i++) {
		int n = 0;
		char *name = kstr_dup(jr->Protocols.items[i].Name);
		for (struct gmember *m = g->members; name && m; m = m->next)
			n += member_proto(m, name) != NULL;
		free(name);
		if (n == g->nmembers)
			return true;
	}
	return false;
}

static void persisted_empty(struct group *g, void *arg, bool ok)
{
	(void)arg;
	if (!ok)
		log_warn("group %s: saving the empty group failed", g->id);
}

static void complete_join(struct group *g)
{
	/* Dynamic members that did not rejoin in time are out; absent static
	 * members keep their place (KIP-345). */
	for (struct gmember *m = g->members, *next; m; m = next) {
		next = m->next;
		if (!m->join_req && !m->instance_id) {
			log_info("group %s: member %s did not rejoin in time",
				 g->id, m->id);
			remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
		}
	}
	struct gmember *joined = NULL;
	for (struct gmember *m = g->members; m && !joined; m = m->next)
		if (m->join_req)
			joined = m;
	if (!joined && g->members) {
		/* Only absent static members: wait for them, or for their
		 * session to expire. */
		g->initial = false;
		arm(g->rebalance_timer, max_rebalance_timeout(g));
		return;
	}
	event_del(g->rebalance_timer);
	g->initial = false;
	g->generation++;
	if (!g->members) {
		g->state = GS_EMPTY;
		g->empty_since = st_now_ms();
		set_str(&g->protocol, NULL);
		set_str(&g->leader, NULL);
		log_info("group %s: generation %d is empty", g->id,
			 g->generation);
		persist(g, persisted_empty, NULL);
		return;
	}
	struct gmember *leader = g->leader ? member_by_id(g, g->leader) : NULL;
	if (!leader || !leader->join_req)
		set_str(&g->leader, joined->id);
	set_str(&g->protocol, select_protocol(g));
	g->state = GS_COMPLETING;
	/* The members have the rebalance timeout to send SyncGroup. */
	arm(g->rebalance_timer, max_rebalance_timeout(g));
	log_info("group %s: generation %d with %d members, protocol %s, "
		 "leader %s",
		 g->id, g->generation, g->nmembers,
		 g->protocol ? g->protocol : "-", g->leader);
	for (struct gmember *m = g->members; m; m = m->next) {
		if (!m->join_req)
			continue;
		bool lead = is_leader(g, m);
		join_ok(m->join_req, g, m, lead, false);
		m->join_req = NULL;
		m->is_new = false;
		heartbeat(m);
	}
}

/* Kafka's pending-sync expiry: the members that sent no SyncGroup within
 * the rebalance timeout of the generation's start (the leader among them,
 * whose assignment everyone waits for, or a follower that would hold its
 * partitions unsynced) are out, and the group rebalances without them. */
static void expire_unsynced(struct group *g)
{
	bool any = false;
	for (struct gmember *m = g->members, *next; m; m = next) {
		next = m->next;
		if (m->synced != g->generation) {
			log_info("group %s: member %s sent no SyncGroup in "
				 "time",
				 g->id, m->id);
			remove_member(g, m, KERR_UNKNOWN_MEMBER_ID);
			any = true;
		}
	}
	if (any)
		prepare_rebalance(g, "members did not sync in time");
}

static void on_rebalance_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct group *g = arg;
	(void)fd;
	(void)what;
	/* Armed when the generation began (complete_join); nothing else
	 * arms it until the next rebalance. */
	if (g->state == GS_COMPLETING || g->state == GS_STABLE) {
		expire_unsynced(g);
		replies_flush();
		return;
	}
	if (g->state != GS_PREPARING)
		return;
	if (g->initial && g->new_member_added && g->delay_remaining > 0) {
		int64_t delay =
			bc_get_int("group.initial.rebalance.delay.ms", 3000);
		if (delay > g->delay_remaining)
			delay = g->delay_remaining;
		g->delay_remaining -= delay;
		g->new_member_added = false;
		arm(g->rebalance_timer, delay);
		return;
	}
	complete_join(g);
	replies_flush();
}

static void on_session_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct gmember *m = arg;
	struct group *g = m->g;
	(void)fd;
	(void)what;
	if (!m->is_new && (m->join_req || m->sync_req)) {
		/* Waiting in a rebalance counts as alive. */
		heartbeat(m);
		return;
	}
	remove_member_and_update(g, m, "session timeout");
	replies_flush();
}

static void on_pending_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct gpending *p = arg;
	struct group *g = p->g;
	(void)fd;
	(void)what;
	struct gpending **pp = &g->pending;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	g->npending--;
	event_free(p->timer);
	free(p->id);
	free(p);
	try_complete_join(g);
	replies_flush();
}

static struct gpending *pending_find(struct group *g, struct kstr id)
{
	for (struct gpending *p = g->pending; p; p = p->next)
		if (keq(id, p->id))
			return p;
	return NULL;
}

static void pending_remove(struct group *g, struct gpending *p)
{
	struct gpending **pp = &g->pending;
	while (*pp && *pp != p)
		pp = &(*pp)->next;
	if (*pp)
		*pp = p->next;
	g->npending--;
	event_free(p->timer);
	free(p->id);
	free(p);
}

/* --- saving --------------------------------------------------------------- */

struct persist_ctx {
	struct group *g;
	void (*done)(struct group *g, void *arg, bool ok);
	void *arg;
};

static void persist_cb(void *arg, enum st_status st, const char *msg)
{
	struct persist_ctx *c = arg;
	struct group *g = c->g;
	if (st != ST_OK)
		log_warn("group %s: saving failed: %s", g->id, msg ? msg : "?");
	if (group_unref(g))
		c->done(g, c->arg, st == ST_OK);
	free(c);
	replies_flush();
}

/* Saves g's current state; done runs when Postgres answered. */
static void persist(struct group *g,
		    void (*done)(struct group *g, void *arg, bool ok),
		    void *arg)
{
	struct persist_ctx *c = calloc(1, sizeof(*c));
	struct st_group_member *mb =
		calloc((size_t)g->nmembers + 1, sizeof(*mb));
	if (!c || !mb) {
		free(c);
		free(mb);
		done(g, arg, false);
		return;
	}
	c->g = g;
	c->done = done;
	c->arg = arg;
	size_t n = 0;
	for (struct gmember *m = g->members; m; m = m->next, n++) {
		const struct gproto *p = member_proto(m, g->protocol);
		mb[n] = (struct st_group_member){
			.member_id = m->id,
			.instance_id = m->instance_id,
			.client_id = m->client_id,
			.client_host = m->client_host,
			.session_timeout = m->session_timeout,
			.rebalance_timeout = m->rebalance_timeout,
			.metadata = p ? p->meta : NULL,
			.metadata_len = p ? p->len : 0,
			.assignment = m->assignment,
			.assignment_len = m->assignment_len,
		};
	}
	struct st_group_meta meta = {
		.group_id = g->id,
		.protocol_type = g->protocol_type,
		.generation = g->generation,
		.protocol = g->protocol,
		.leader = g->leader,
		.nmembers = n,
		.members = mb,
	};
	g->refs++;
	st_group_save(store_of(g), &meta, persist_cb, c);
	free(mb);
}

/* --- JoinGroup -------------------------------------------------------------
 */

static struct gmember *member_new(struct group *g, struct request *req,
				  char *id)
{
	const struct JoinGroupRequest *jr = req->body;
	struct gmember *m = calloc(1, sizeof(*m));
	if (!m) {
		free(id);
		return NULL;
	}
	m->g = g;
	m->id = id;
	m->instance_id = jr->GroupInstanceId.len >= 0
				 ? kstr_dup(jr->GroupInstanceId)
				 : NULL;
	m->client_id = kstr_dup_text(req->hdr.ClientId);
	m->client_host = group_client_host(req);
	m->session_timeout = jr->SessionTimeoutMs;
	m->rebalance_timeout = req->hdr.RequestApiVersion >= 1
				       ? jr->RebalanceTimeoutMs
				       : jr->SessionTimeoutMs;
	m->protos = protos_copy(jr, &m->nprotos);
	m->timer = event_new(g->gs->srv->base, -1, 0, on_session_timeout, m);
	if (!m->id || (jr->GroupInstanceId.len >= 0 && !m->instance_id) ||
	    !m->client_id || !m->client_host || !m->protos || !m->timer) {
		member_free(m);
		return NULL;
	}
	return m;
}

static void add_member_and_rebalance(struct group *g, struct request *req,
				     char *id)
{
	struct gmember *m = member_new(g, req, id);
	if (!m) {
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, KSTR_NULL);
		return;
	}
	struct gmember **pp = &g->members;
	while (*pp)
		pp = &(*pp)->next;
	*pp = m;
	g->nmembers++;
	if (!g->protocol_type)
		g->protocol_type = kstr_dup(
			((struct JoinGroupRequest *)req->body)->ProtocolType);
	m->is_new = true;
	m->join_req = req;
	if (g->state == GS_PREPARING && g->initial)
		g->new_member_added = true;
	arm(m->timer, NEW_MEMBER_JOIN_TIMEOUT_MS);
	maybe_prepare_rebalance(g, "a new member joined");
	try_complete_join(g);
}

/* A known member joins again with (maybe) new protocols. */
static bool update_member(struct gmember *m, struct request *req)
{
	const struct JoinGroupRequest *jr = req->body;
	int n = 0;
	struct gproto *p = protos_copy(jr, &n);
	if (!p)
		return false;
	protos_free(m->protos, m->nprotos);
	m->protos = p;
	m->nprotos = n;
	m->session_timeout = jr->SessionTimeoutMs;
	m->rebalance_timeout = req->hdr.RequestApiVersion >= 1
				       ? jr->RebalanceTimeoutMs
				       : jr->SessionTimeoutMs;
	if (m->join_req && m->join_req != req)
		join_error(m->join_req, KERR_REBALANCE_IN_PROGRESS,
			   kstr_c(m->id));
	m->join_req = req;
	return true;
}

static void update_member_and_rebalance(struct group *g, struct gmember *m,
					struct request *req, const char *reason)
{
	if (!update_member(m, req)) {
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, kstr_c(m->id));
		return;
	}
	heartbeat(m);
	maybe_prepare_rebalance(g, reason);
	try_complete_join(g);
}

struct static_join {
	char *member_id;
	struct request *req;
	bool lead_view;
};

static void static_join_saved(struct group *g, void *arg, bool ok)
{
	struct static_join *sj = arg;
	struct gmember *m = member_by_id(g, sj->member_id);
	if (m && m->join_req == sj->req && g->state == GS_STABLE) {
		m->join_req = NULL;
		if (ok) {
			bool lead = is_leader(g, m) && sj->lead_view;
			join_ok(sj->req, g, m, lead, lead);
		} else {
			join_error(sj->req, KERR_COORDINATOR_NOT_AVAILABLE,
				   KSTR_NULL);
		}
	}
	free(sj->member_id);
	free(sj);
}

/*
 * A static member comes back with a new member id: it takes over the old
 * member's place and assignment; without a change of protocol no
 * rebalance follows.
 */
static void update_static_member(struct group *g, struct gmember *m,
				 struct request *req, char *new_id)
{
	if (m->join_req)
		join_error(m->join_req, KERR_FENCED_INSTANCE_ID, kstr_c(m->id));
	if (m->sync_req)
		sync_answer(m->sync_req, g, NULL, KERR_FENCED_INSTANCE_ID);
	m->join_req = m->sync_req = NULL;
	bool was_leader = is_leader(g, m);
	free(m->id);
	m->id = new_id;
	if (was_leader)
		set_str(&g->leader, m->id);
	if (!update_member(m, req)) {
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, KSTR_NULL);
		return;
	}
	heartbeat(m);
	switch (g->state) {
	case GS_STABLE: {
		const char *sel = select_protocol(g);
		bool lead_view = req->hdr.RequestApiVersion >= 9;
		if (!sel || !g->protocol || strcmp(sel, g->protocol) != 0 ||
		    (was_leader && !lead_view)) {
			/* A leader that cannot skip the assignment would
			 * compute one from an empty member list. */
			prepare_rebalance(g, "static member rejoined with "
					     "changes");
			return;
		}
		struct static_join *sj = calloc(1, sizeof(*sj));
		if (!sj || !(sj->member_id = strdup(m->id))) {
			free(sj);
			m->join_req = NULL;
			join_error(req, KERR_COORDINATOR_NOT_AVAILABLE,
				   KSTR_NULL);
			return;
		}
		sj->req = req;
		sj->lead_view = lead_view;
		log_info("group %s: static member %s rejoined as %s", g->id,
			 m->instance_id, m->id);
		persist(g, static_join_saved, sj);
		return;
	}
	case GS_COMPLETING:
		prepare_rebalance(g, "static member rejoined");
		return;
	case GS_PREPARING:
		try_complete_join(g);
		return;
	default:
		return;
	}
}

static void join_unknown(struct group *g, struct request *req)
{
	const struct JoinGroupRequest *jr = req->body;
	if (jr->GroupInstanceId.len >= 0) {
		char *id = new_member_id(jr->GroupInstanceId);
		if (!id) {
			join_error(req, KERR_COORDINATOR_NOT_AVAILABLE,
				   KSTR_NULL);
			return;
		}
		struct gmember *m = static_member(g, jr->GroupInstanceId);
		if (m)
			update_static_member(g, m, req, id);
		else
			add_member_and_rebalance(g, req, id);
		return;
	}
	char *id = new_member_id(req->hdr.ClientId);
	if (!id) {
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, KSTR_NULL);
		return;
	}
	if (req->hdr.RequestApiVersion < 4) {
		add_member_and_rebalance(g, req, id);
		return;
	}
	/* KIP-394: the member comes back with this id before it counts. */
	struct gpending *p = calloc(1, sizeof(*p));
	if (p) {
		p->g = g;
		p->id = id;
		p->timer = event_new(g->gs->srv->base, -1, 0,
				     on_pending_timeout, p);
	}
	if (!p || !p->timer) {
		free(p);
		free(id);
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, KSTR_NULL);
		return;
	}
	p->next = g->pending;
	g->pending = p;
	g->npending++;
	arm(p->timer, jr->SessionTimeoutMs);
	join_error(req, KERR_MEMBER_ID_REQUIRED, req_str(req, id));
}

static void join_known(struct group *g, struct request *req)
{
	const struct JoinGroupRequest *jr = req->body;
	struct gpending *p = pending_find(g, jr->MemberId);
	if (p) {
		char *id = strdup(p->id);
		pending_remove(g, p);
		if (!id)
			join_error(req, KERR_COORDINATOR_NOT_AVAILABLE,
				   jr->MemberId);
		else
			add_member_and_rebalance(g, req, id);
		return;
	}
	struct gmember *m = member_find(g, jr->MemberId);
	if (jr->GroupInstanceId.len >= 0) {
		struct gmember *sm = static_member(g, jr->GroupInstanceId);
		if (sm && sm != m) {
			join_error(req, KERR_FENCED_INSTANCE_ID, jr->MemberId);
			return;
		}
		if (!sm)
			m = NULL;
	}
	if (!m) {
		join_error(req, KERR_UNKNOWN_MEMBER_ID, jr->MemberId);
		return;
	}
	switch (g->state) {
	case GS_PREPARING:
		update_member_and_rebalance(g, m, req, "member rejoined");
		return;
	case GS_COMPLETING:
		if (member_matches(m, jr)) {
			/* Its join response was lost: the same again. */
			heartbeat(m);
			join_ok(req, g, m, is_leader(g, m), false);
			return;
		}
		update_member_and_rebalance(g, m, req,
					    "member changed its metadata");
		return;
	case GS_STABLE:
		if (is_leader(g, m) || !member_matches(m, jr)) {
			/* The leader rejoins to have the assignment redone
			 * (e.g. topic metadata changed). */
			update_member_and_rebalance(
				g, m, req,
				is_leader(g, m)
					? "leader rejoined"
					: "member changed its metadata");
			return;
		}
		heartbeat(m);
		join_ok(req, g, m, false, false);
		return;
	default:
		join_error(req, KERR_UNKNOWN_MEMBER_ID, jr->MemberId);
		return;
	}
}

static bool session_timeout_ok(int32_t ms)
{
	return ms >= bc_get_int("group.min.session.timeout.ms", 6000) &&
	       ms <= bc_get_int("group.max.session.timeout.ms", 1800000);
}

void group_join(struct groups *gs, struct request *req)
{
	const struct JoinGroupRequest *jr = req->body;
	struct group *g = NULL;
	/* Ids saved as text (an id Postgres refused failed every
	 * generation's save: an endless rebalance). */
	if (jr->GroupId.len <= 0 || !kstr_is_text(jr->GroupId) ||
	    !kstr_is_text(jr->GroupInstanceId)) {
		join_error(req, KERR_INVALID_GROUP_ID, jr->MemberId);
		goto out;
	}
	bool text = kstr_is_text(jr->ProtocolType);
	for (int32_t i = 0; text && i < jr->Protocols.count; i++)
		text = kstr_is_text(jr->Protocols.items[i].Name);
	if (!text) {
		join_error(req, KERR_INCONSISTENT_GROUP_PROTOCOL, jr->MemberId);
		goto out;
	}
	if (!session_timeout_ok(jr->SessionTimeoutMs)) {
		join_error(req, KERR_INVALID_SESSION_TIMEOUT, jr->MemberId);
		goto out;
	}
	g = group_find(gs, jr->GroupId);
	if (!g) {
		if (jr->MemberId.len > 0) {
			join_error(req, KERR_UNKNOWN_MEMBER_ID, jr->MemberId);
			goto out;
		}
		g = group_new(gs, jr->GroupId);
		if (!g) {
			join_error(req, KERR_COORDINATOR_NOT_AVAILABLE,
				   jr->MemberId);
			goto out;
		}
	}
	if (g->state == GS_DEAD) {
		join_error(req, KERR_COORDINATOR_NOT_AVAILABLE, jr->MemberId);
		goto out;
	}
	if ((g->cg && cgroup_has_members(g->cg)) ||
	    !supports_protocols(g, jr)) {
		/* Members of another protocol, or of the consumer protocol
		 * (KIP-848). */
		join_error(req, KERR_INCONSISTENT_GROUP_PROTOCOL, jr->MemberId);
		goto out;
	}
	if (g->cg) {
		/* An empty consumer group becomes a classic one. */
		cgroup_free(g->cg);
		g->cg = NULL;
	}
	if (g->state == GS_EMPTY && !g->members &&
	    (!g->protocol_type || !keq(jr->ProtocolType, g->protocol_type))) {
		free(g->protocol_type);
		g->protocol_type = kstr_dup(jr->ProtocolType);
	}
	if (jr->MemberId.len <= 0)
		join_unknown(g, req);
	else
		join_known(g, req);
out:
	replies_flush();
}

/* --- SyncGroup -------------------------------------------------------------
 */

static void sync_saved(struct group *g, void *arg, bool ok)
{
	int32_t generation = (int32_t)(intptr_t)arg;
	if (g->state != GS_COMPLETING || g->generation != generation)
		return;
	if (!ok) {
		for (struct gmember *m = g->members; m; m = m->next) {
			if (m->sync_req)
				sync_answer(m->sync_req, g, NULL,
					    KERR_COORDINATOR_NOT_AVAILABLE);
			m->sync_req = NULL;
		}
		prepare_rebalance(g, "saving the assignment failed");
		return;
	}
	g->state = GS_STABLE;
	log_info("group %s: generation %d is stable", g->id, g->generation);
	for (struct gmember *m = g->members; m; m = m->next) {
		if (m->sync_req)
			sync_answer(m->sync_req, g, m, KERR_NONE);
		m->sync_req = NULL;
	}
}

/* The leader's assignments go to the members (empty for the rest). */
static bool take_assignments(struct group *g, const struct SyncGroupRequest *sr)
{
	for (struct gmember *m = g->members; m; m = m->next) {
		const struct kstr *a = NULL;
		for (int32_t i = 0; i < sr->Assignments.count; i++)
			if (keq(sr->Assignments.items[i].MemberId, m->id))
				a = &sr->Assignments.items[i].Assignment;
		size_t len = a && a->len > 0 ? (size_t)a->len : 0;
		uint8_t *copy = malloc(len ? len : 1);
		if (!copy)
			return false;
		if (len)
			memcpy(copy, a->ptr, len);
		free(m->assignment);
		m->assignment = copy;
		m->assignment_len = len;
	}
	return true;
}

void group_sync(struct groups *gs, struct request *req)
{
	const struct SyncGroupRequest *sr = req->body;
	struct group *g = group_find(gs, sr->GroupId);
	struct gmember *m = g ? member_find(g, sr->MemberId) : NULL;
	int16_t err = KERR_NONE;
	if (!g)
		err = KERR_UNKNOWN_MEMBER_ID;
	else if (g->state == GS_DEAD)
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	else if (sr->GroupInstanceId.len >= 0 &&
		 static_member(g, sr->GroupInstanceId) != m &&
		 static_member(g, sr->GroupInstanceId))
		err = KERR_FENCED_INSTANCE_ID;
	else if (!m)
		err = KERR_UNKNOWN_MEMBER_ID;
	else if (sr->GenerationId != g->generation)
		err = KERR_ILLEGAL_GENERATION;
	else if ((sr->ProtocolType.len >= 0 &&
		  !keq(sr->ProtocolType, g->protocol_type)) ||
		 (sr->ProtocolName.len >= 0 &&
		  !keq(sr->ProtocolName, g->protocol)))
		err = KERR_INCONSISTENT_GROUP_PROTOCOL;
	else if (g->state == GS_EMPTY)
		err = KERR_UNKNOWN_MEMBER_ID;
	else if (g->state == GS_PREPARING)
		err = KERR_REBALANCE_IN_PROGRESS;
	if (err != KERR_NONE) {
		sync_answer(req, g, NULL, err);
		goto out;
	}
	heartbeat(m);
	m->synced = g->generation;
	if (g->state == GS_STABLE) {
		sync_answer(req, g, m, KERR_NONE);
		goto out;
	}
	/* CompletingRebalance */
	if (m->sync_req && m->sync_req != req)
		sync_answer(m->sync_req, g, NULL, KERR_REBALANCE_IN_PROGRESS);
	m->sync_req = req;
	if (is_leader(g, m) && g->syncing != g->generation) {
		if (!take_assignments(g, sr)) {
			sync_saved(g, (void *)(intptr_t)g->generation, false);
			goto out;
		}
		g->syncing = g->generation;
		persist(g, sync_saved, (void *)(intptr_t)g->generation);
	}
out:
	replies_flush();
}

/* --- Heartbeat, LeaveGroup, OffsetCommit ---------------------------------- */

static bool fenced(struct group *g, struct kstr instance, struct kstr member)
{
	struct gmember *sm = static_member(g, instance);
	return sm && !keq(member, sm->id);
}

int16_t group_heartbeat(struct groups *gs, struct kstr group_id,
			int32_t generation, struct kstr member_id,
			struct kstr instance_id)
{
	struct group *g = group_find(gs, group_id);
	if (!g)
		return KERR_UNKNOWN_MEMBER_ID;
	if (g->state == GS_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	if (fenced(g, instance_id, member_id))
		return KERR_FENCED_INSTANCE_ID;
	struct gmember *m = member_find(g, member_id);
	if (!m || g->state == GS_EMPTY)
		return KERR_UNKNOWN_MEMBER_ID;
	if (generation != g->generation)
		return KERR_ILLEGAL_GENERATION;
	heartbeat(m);
	return g->state == GS_PREPARING ? KERR_REBALANCE_IN_PROGRESS
					: KERR_NONE;
}

int16_t group_leave(struct groups *gs, struct kstr group_id,
		    struct kstr member_id, struct kstr instance_id)
{
	struct group *g = group_find(gs, group_id);
	int16_t err = KERR_NONE;
	struct gmember *m = NULL;
	if (!g) {
		err = KERR_UNKNOWN_MEMBER_ID;
	} else if (g->state == GS_DEAD) {
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	} else if (member_id.len <= 0 && instance_id.len >= 0) {
		m = static_member(g, instance_id);
		if (!m)
			err = KERR_UNKNOWN_MEMBER_ID;
	} else {
		struct gpending *p = pending_find(g, member_id);
		if (p) {
			pending_remove(g, p);
			try_complete_join(g);
			goto out;
		}
		if (instance_id.len >= 0 && fenced(g, instance_id, member_id))
			err = KERR_FENCED_INSTANCE_ID;
		else if (!(m = member_find(g, member_id)))
			err = KERR_UNKNOWN_MEMBER_ID;
	}
	if (m)
		remove_member_and_update(g, m, "left the group");
out:
	replies_flush();
	return err;
}

int16_t group_fetch_check(struct groups *gs, struct kstr group_id,
			  struct kstr member_id, int32_t epoch)
{
	const struct group *g = group_find(gs, group_id);
	return g && g->cg ? cgroup_fetch_check(g->cg, member_id, epoch)
			  : KERR_NONE;
}

int16_t group_commit_check(struct groups *gs, struct kstr group_id,
			   int32_t generation, struct kstr member_id,
			   struct kstr instance_id, bool transactional,
			   const struct st_offset_commit *c, size_t n)
{
	struct group *g = group_find(gs, group_id);
	if (!g) {
		if (generation >= 0)
			return KERR_ILLEGAL_GENERATION;
		/* A consumer that only stores offsets here. */
		return group_new(gs, group_id) ? KERR_NONE
					       : KERR_COORDINATOR_NOT_AVAILABLE;
	}
	if (g->state == GS_DEAD)
		return KERR_COORDINATOR_NOT_AVAILABLE;
	/* A transactional commit that names no member (TxnOffsetCommit
	 * before v3 has no fields for one; kafkajs, Sarama and a producer
	 * given only the group id send none) commits whatever the group's
	 * state, as in Kafka: the transaction is what makes it safe. */
	if (transactional && generation < 0 && member_id.len <= 0 &&
	    instance_id.len < 0)
		return KERR_NONE;
	if (g->cg)
		return cgroup_commit_check(g->cg, member_id, generation, c, n);
	if (fenced(g, instance_id, member_id))
		return KERR_FENCED_INSTANCE_ID;
	if (generation < 0 && g->state == GS_EMPTY)
		return KERR_NONE;
	struct gmember *m = member_find(g, member_id);
	if (!m)
		return KERR_UNKNOWN_MEMBER_ID;
	if (generation != g->generation)
		return KERR_ILLEGAL_GENERATION;
	/* Not for a transaction: the Java producer takes this error for
	 * fatal there. */
	if (g->state == GS_COMPLETING && !transactional)
		return KERR_REBALANCE_IN_PROGRESS;
	heartbeat(m);
	return KERR_NONE;
}

/* --- for the consumer protocol (proxy/cgroup.c) ---------------------------
 */

struct group *group_open(struct groups *gs, struct kstr id)
{
	return group_new(gs, id);
}

struct cgroup *group_cgroup(const struct group *g)
{
	return g->cg;
}

void group_set_cgroup(struct group *g, struct cgroup *cg)
{
	g->cg = cg;
}

bool group_classic_active(const struct group *g)
{
	return g->state != GS_EMPTY || g->members || g->npending;
}

struct cmember_save {
	struct group *g;
	void (*done)(struct group *g, void *arg, bool ok);
	void *arg;
};

static void cmember_saved(void *arg, enum st_status st, const char *msg)
{
	struct cmember_save *c = arg;
	if (st != ST_OK)
		log_warn("group %s: saving a member failed: %s", c->g->id,
			 msg ? msg : "?");
	bool linked = group_unref(c->g);
	if (c->done)
		c->done(linked ? c->g : NULL, c->arg, st == ST_OK);
	free(c);
	replies_flush();
}

static struct cmember_save *
cmember_save_new(struct group *g,
		 void (*done)(struct group *g, void *arg, bool ok), void *arg)
{
	struct cmember_save *c = malloc(sizeof(*c));
	if (!c) {
		if (done)
			done(g, arg, false);
		return NULL;
	}
	*c = (struct cmember_save){g, done, arg};
	g->refs++;
	return c;
}

void group_save_cmember(struct group *g, const char *member_id,
			const uint8_t *state, size_t len,
			void (*done)(struct group *g, void *arg, bool ok),
			void *arg)
{
	struct cmember_save *c = cmember_save_new(g, done, arg);
	if (c)
		st_cmember_save(store_of(g), kstr_c(g->id), member_id, state,
				len, cmember_saved, c);
}

void group_delete_cmember(struct group *g, const char *member_id)
{
	struct cmember_save *c = cmember_save_new(g, NULL, NULL);
	if (c)
		st_cmember_delete(store_of(g), kstr_c(g->id), member_id,
				  cmember_saved, c);
}

void group_now_empty(struct group *g)
{
	g->empty_since = st_now_ms();
}

struct event_base *groups_base(const struct groups *gs)
{
	return gs->srv->base;
}

char *group_new_member_id(struct kstr prefix)
{
	return new_member_id(prefix);
}

char *group_client_host(const struct request *req)
{
	const char *peer = req_peer(req);
	const char *colon = strrchr(peer, ':');
	size_t hl = colon ? (size_t)(colon - peer) : strlen(peer);
	char *host = malloc(hl + 2);
	if (host)
		snprintf(host, hl + 2, "/%.*s", (int)hl, peer);
	return host;
}

/* --- describing ------------------------------------------------------------
 */

const char *group_id(const struct group *g)
{
	return g->id;
}

const char *group_state(const struct group *g)
{
	return g->cg && g->state != GS_DEAD ? cgroup_state(g->cg)
					    : state_names[g->state];
}

const char *group_protocol_type(const struct group *g)
{
	if (g->cg)
		return "consumer";
	return g->protocol_type ? g->protocol_type : "";
}

const char *group_type(const struct group *g)
{
	return g->cg ? "consumer" : "classic";
}

const char *group_protocol(const struct group *g)
{
	return g->protocol ? g->protocol : "";
}

bool group_has_members(const struct group *g)
{
	return g->members != NULL || (g->cg && cgroup_has_members(g->cg));
}

/* Reads a ConsumerProtocolSubscription's topics (any version: they all
 * start with version and topics). */
static bool subscription_has(const uint8_t *p, size_t len, const char *topic)
{
	struct kb_reader r;
	int16_t version;
	int32_t n;
	kb_reader_init(&r, p, len);
	if (!kb_read_i16(&r, &version) || !kb_read_i32(&r, &n))
		return false;
	for (int32_t i = 0; i < n; i++) {
		struct kstr t;
		if (!kb_read_string(&r, &t))
			return false;
		if (keq(t, topic))
			return true;
	}
	return false;
}

bool group_subscribes(const struct group *g, const char *topic)
{
	if (g->cg)
		return cgroup_subscribes(g->cg, topic);
	if (!g->protocol_type || strcmp(g->protocol_type, "consumer") != 0)
		return false;
	for (struct gmember *m = g->members; m; m = m->next) {
		const struct gproto *p = member_proto(m, g->protocol);
		if (!p && m->nprotos)
			p = &m->protos[0];
		if (p && subscription_has(p->meta, p->len, topic))
			return true;
	}
	return false;
}

void group_describe(struct request *req, const struct group *g,
		    struct DescribeGroupsResponse_DescribedGroup *out)
{
	bool stable = g->state == GS_STABLE;
	out->GroupId = req_str(req, g->id);
	out->GroupState = req_str(req, state_names[g->state]);
	out->ProtocolType = req_str(req, group_protocol_type(g));
	out->ProtocolData = req_str(req, stable ? group_protocol(g) : "");
	struct DescribeGroupsResponse_DescribedGroupMember *mb =
		req_array(req, &out->Members,
			  &DescribeGroupsResponse_DescribedGroupMember_struct,
			  g->nmembers);
	int i = 0;
	for (struct gmember *m = g->members; mb && m; m = m->next, i++) {
		mb[i].MemberId = req_str(req, m->id);
		mb[i].GroupInstanceId = req_str(req, m->instance_id);
		mb[i].ClientId = req_str(req, m->client_id);
		mb[i].ClientHost = req_str(req, m->client_host);
		if (stable) {
			const struct gproto *p = member_proto(m, g->protocol);
			if (p)
				mb[i].MemberMetadata =
					arena_bytes(req, p->meta, p->len);
			mb[i].MemberAssignment = arena_bytes(req, m->assignment,
							     m->assignment_len);
		}
	}
}

/* --- DeleteGroups ------------------------------------------------------------
 */

struct delete_ctx {
	struct group *g;
	void (*cb)(void *arg, int16_t err);
	void *arg;
};

static void deleted(void *arg, enum st_status st, const char *msg)
{
	struct delete_ctx *c = arg;
	struct group *g = c->g;
	int16_t err = KERR_NONE;
	if (st != ST_OK) {
		log_warn("group %s: delete failed: %s", g->id, msg ? msg : "?");
		err = KERR_COORDINATOR_NOT_AVAILABLE;
	}
	if (group_unref(g)) {
		if (err == KERR_NONE) {
			log_info("group %s: deleted", g->id);
			group_unlink(g);
		} else if (g->state == GS_DEAD) {
			g->state = GS_EMPTY;
		}
	}
	c->cb(c->arg, err);
	free(c);
}

void group_delete(struct groups *gs, struct kstr group_id,
		  void (*cb)(void *arg, int16_t err), void *arg)
{
	struct group *g = group_find(gs, group_id);
	if (!g || g->state == GS_DEAD) {
		cb(arg, KERR_GROUP_ID_NOT_FOUND);
		return;
	}
	if (g->state != GS_EMPTY || group_has_members(g)) {
		cb(arg, KERR_NON_EMPTY_GROUP);
		return;
	}
	struct delete_ctx *c = calloc(1, sizeof(*c));
	if (!c) {
		cb(arg, KERR_COORDINATOR_NOT_AVAILABLE);
		return;
	}
	c->g = g;
	c->cb = cb;
	c->arg = arg;
	g->state = GS_DEAD;
	g->refs++;
	st_group_delete(store_of(g), kstr_c(g->id), deleted, c);
}

/* --- offsets retention ------------------------------------------------------
 */

static void removed(void *arg, enum st_status st, const char *msg)
{
	struct group *g = arg;
	(void)msg;
	if (!group_unref(g) || g->state != GS_DEAD)
		return;
	if (st == ST_OK) {
		log_info("group %s: empty without offsets: removed", g->id);
		group_unlink(g);
	} else {
		g->state = GS_EMPTY;
	}
}

/* An empty group with nothing committed goes, as in Kafka's cleanup. */
static void maybe_remove(struct group *g)
{
	if (g->state != GS_EMPTY || group_has_members(g) || g->npending ||
	    g->refs || st_group_has_offsets(store_of(g), kstr_c(g->id)))
		return;
	g->state = GS_DEAD;
	g->refs++;
	st_group_delete(store_of(g), kstr_c(g->id), removed, g);
}

static void expired(void *arg, enum st_status st, const char *msg)
{
	struct group *g = arg;
	(void)msg;
	if (group_unref(g) && st == ST_OK)
		maybe_remove(g);
}

/*
 * Runs every RETENTION_CHECK_MS: offsets of a group that has been empty for
 * offsets.retention.minutes go (KIP-211: the clock starts when the group
 * becomes empty), and so does an empty group with no offsets left.
 */
static void retention_tick(evutil_socket_t fd, short what, void *arg)
{
	struct groups *gs = arg;
	(void)fd;
	(void)what;
	int64_t keep = bc_get_int("offsets.retention.minutes", 10080) * 60000;
	int64_t now = st_now_ms();
	/* Removal unlinks groups: walk a copy of the table. */
	size_t n = gs->n;
	struct group **v = malloc((n + 1) * sizeof(*v));
	if (!v)
		return;
	memcpy(v, gs->v, n * sizeof(*v));
	for (size_t i = 0; i < n; i++) {
		struct group *g = v[i];
		if (g->state != GS_EMPTY || group_has_members(g) || g->refs)
			continue;
		if (now - g->empty_since < keep) {
			maybe_remove(g);
			continue;
		}
		g->refs++;
		st_offsets_expire(store_of(g), kstr_c(g->id), now - keep,
				  expired, g);
	}
	free(v);
}

/* --- life cycle -------------------------------------------------------------
 */

static void restore(void *arg, const char *name,
		    const struct st_group_meta *meta)
{
	struct groups *gs = arg;
	struct group *g = group_new(gs, kstr_c(name));
	if (!g || !meta)
		return;
	if (meta->ncmembers)
		g->cg = cgroup_restore(gs, g, meta->cmembers, meta->ncmembers);
	g->generation = meta->generation;
	set_str(&g->protocol_type, meta->protocol_type);
	set_str(&g->protocol, meta->protocol);
	set_str(&g->leader, meta->leader);
	struct gmember **tail = &g->members;
	for (size_t i = 0; g->protocol && i < meta->nmembers; i++) {
		const struct st_group_member *sm = &meta->members[i];
		struct gmember *m = calloc(1, sizeof(*m));
		if (!m)
			break;
		m->g = g;
		m->id = strdup(sm->member_id);
		m->instance_id =
			sm->instance_id ? strdup(sm->instance_id) : NULL;
		m->client_id = strdup(sm->client_id);
		m->client_host = strdup(sm->client_host);
		m->session_timeout = sm->session_timeout;
		m->rebalance_timeout = sm->rebalance_timeout;
		m->protos = calloc(1, sizeof(*m->protos));
		if (m->protos) {
			m->nprotos = 1;
			m->protos[0].name = strdup(g->protocol);
			m->protos[0].meta = malloc(sm->metadata_len + 1);
			m->protos[0].len = sm->metadata_len;
			if (m->protos[0].meta && sm->metadata_len)
				memcpy(m->protos[0].meta, sm->metadata,
				       sm->metadata_len);
		}
		m->assignment = malloc(sm->assignment_len + 1);
		m->assignment_len = sm->assignment_len;
		if (m->assignment && sm->assignment_len)
			memcpy(m->assignment, sm->assignment,
			       sm->assignment_len);
		m->timer =
			event_new(gs->srv->base, -1, 0, on_session_timeout, m);
		if (!m->id || (sm->instance_id && !m->instance_id) ||
		    !m->client_id || !m->client_host || !m->protos ||
		    !m->protos[0].name || !m->protos[0].meta ||
		    !m->assignment || !m->timer) {
			member_free(m);
			break;
		}
		/* Members get a session from now to find us again. */
		heartbeat(m);
		*tail = m;
		tail = &m->next;
		g->nmembers++;
	}
	if (g->members) {
		g->state = GS_STABLE;
		if (!g->leader || !member_by_id(g, g->leader))
			set_str(&g->leader, g->members->id);
	} else {
		set_str(&g->leader, NULL);
	}
}

struct groups *groups_get(struct server *srv)
{
	if (srv->groups)
		return srv->groups;
	struct groups *gs = calloc(1, sizeof(*gs));
	if (!gs)
		return NULL;
	gs->srv = srv;
	gs->retention_ev =
		event_new(srv->base, -1, EV_PERSIST, retention_tick, gs);
	if (!gs->retention_ev) {
		free(gs);
		return NULL;
	}
	arm(gs->retention_ev, RETENTION_CHECK_MS);
	srv->groups = gs;
	st_groups_each(srv->store, restore, gs);
	return gs;
}

void groups_free(struct server *srv)
{
	struct groups *gs = srv->groups;
	if (!gs)
		return;
	for (size_t i = 0; i < gs->n; i++) {
		struct group *g = gs->v[i];
		g->unlinked = true;
		/* Storage callbacks still in flight keep it alive; they
		 * run when the store closes. */
		if (g->refs == 0)
			group_free(g);
	}
	free(gs->v);
	event_free(gs->retention_ev);
	free(gs);
	srv->groups = NULL;
	free(replies);
	replies = NULL;
	nreplies = capreplies = 0;
}
