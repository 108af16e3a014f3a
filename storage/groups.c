/*
 * groups: committed offsets and group metadata in Postgres and in memory.
 */
#include "storage/groups.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "storage/store_int.h"

/* One group as the store knows it. */
struct sg_group {
	char *name;
	struct st_committed *offs; /* sorted by topic, partition */
	size_t n, cap;
	struct st_group_meta *meta; /* as loaded at start-up, or NULL */
};

struct st_groups {
	struct pgconn *conn;
	struct sg_group **groups; /* sorted by name (bytes) */
	size_t n, cap;
};

/* Index of group name, or where it would go (*found false). */
static size_t group_pos(struct st_groups *gs, struct kstr name, bool *found)
{
	size_t lo = 0, hi = gs->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = kstr_cmp(name, gs->groups[mid]->name);
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

static struct sg_group *group_find(struct st_groups *gs, struct kstr name)
{
	bool found;
	size_t i = gs ? group_pos(gs, name, &found) : 0;
	return gs && found ? gs->groups[i] : NULL;
}

static struct sg_group *group_get(struct st_groups *gs, struct kstr name)
{
	bool found;
	size_t i = group_pos(gs, name, &found);
	if (found)
		return gs->groups[i];
	if (gs->n == gs->cap) {
		size_t cap = gs->cap ? gs->cap * 2 : 16;
		struct sg_group **ng = realloc(gs->groups, cap * sizeof(*ng));
		if (!ng)
			return NULL;
		gs->groups = ng;
		gs->cap = cap;
	}
	struct sg_group *g = calloc(1, sizeof(*g));
	if (!g || !(g->name = kstr_dup(name))) {
		free(g);
		return NULL;
	}
	memmove(&gs->groups[i + 1], &gs->groups[i],
		(gs->n - i) * sizeof(*gs->groups));
	gs->groups[i] = g;
	gs->n++;
	return g;
}

static void meta_free(struct st_group_meta *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nmembers; i++) {
		struct st_group_member *mb = &m->members[i];
		free(mb->member_id);
		free(mb->instance_id);
		free(mb->client_id);
		free(mb->client_host);
		free((void *)mb->metadata);
		free((void *)mb->assignment);
	}
	free(m->members);
	for (size_t i = 0; i < m->ncmembers; i++) {
		free(m->cmembers[i].member_id);
		free(m->cmembers[i].state);
	}
	free(m->cmembers);
	free(m->group_id);
	free(m->protocol_type);
	free(m->protocol);
	free(m->leader);
	free(m);
}

static void group_free(struct sg_group *g)
{
	for (size_t i = 0; i < g->n; i++) {
		free(g->offs[i].topic);
		free(g->offs[i].metadata);
	}
	free(g->offs);
	meta_free(g->meta);
	free(g->name);
	free(g);
}

/* Drops group g from the table when it holds nothing any more. */
static void group_maybe_drop(struct st_groups *gs, struct sg_group *g)
{
	if (g->n || g->meta)
		return;
	bool found;
	size_t i = group_pos(gs, kstr_c(g->name), &found);
	if (!found)
		return;
	memmove(&gs->groups[i], &gs->groups[i + 1],
		(gs->n - i - 1) * sizeof(*gs->groups));
	gs->n--;
	group_free(g);
}

static int off_cmp(const char *topic, int32_t part,
		   const struct st_committed *c)
{
	int r = strcmp(topic, c->topic);
	if (r)
		return r;
	return part < c->partition ? -1 : part > c->partition;
}

static size_t off_pos(const struct sg_group *g, const char *topic, int32_t part,
		      bool *found)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = off_cmp(topic, part, &g->offs[mid]);
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

static struct st_committed *off_find(struct sg_group *g, const char *topic,
				     int32_t part)
{
	bool found;
	size_t i = off_pos(g, topic, part, &found);
	return found ? &g->offs[i] : NULL;
}

static struct st_committed *off_get(struct sg_group *g, const char *topic,
				    int32_t tid, int32_t part)
{
	bool found;
	size_t i = off_pos(g, topic, part, &found);
	if (found)
		return &g->offs[i];
	if (g->n == g->cap) {
		size_t cap = g->cap ? g->cap * 2 : 8;
		struct st_committed *no = realloc(g->offs, cap * sizeof(*no));
		if (!no)
			return NULL;
		g->offs = no;
		g->cap = cap;
	}
	struct st_committed c = {.tid = tid,
				 .partition = part,
				 .offset = -1,
				 .leader_epoch = -1};
	c.topic = strdup(topic);
	c.metadata = malloc(1);
	if (!c.topic || !c.metadata) {
		free(c.topic);
		free(c.metadata);
		return NULL;
	}
	memmove(&g->offs[i + 1], &g->offs[i], (g->n - i) * sizeof(*g->offs));
	g->offs[i] = c;
	g->n++;
	return &g->offs[i];
}

static void off_remove(struct sg_group *g, struct st_committed *c)
{
	size_t i = (size_t)(c - g->offs);
	free(c->topic);
	free(c->metadata);
	memmove(&g->offs[i], &g->offs[i + 1],
		(g->n - i - 1) * sizeof(*g->offs));
	g->n--;
}

/* An entry that is served: committed, and of the topic that now has the
 * name. */
static bool off_live(struct store *s, const struct st_committed *c)
{
	if (!c->valid)
		return false;
	struct st_topic *t = st_topic_find(s, kstr_c(c->topic));
	return t && t->tid == c->tid && c->partition < t->npartitions;
}

/* --- start-up ---------------------------------------------------------- */

static uint8_t *unescape(const char *text, size_t *len)
{
	size_t n = 0;
	unsigned char *raw = PQunescapeBytea((const unsigned char *)text, &n);
	if (!raw)
		return NULL;
	uint8_t *out = malloc(n ? n : 1);
	if (out && n)
		memcpy(out, raw, n);
	PQfreemem(raw);
	*len = n;
	return out;
}

static char *col(const PGresult *r, int row, int c)
{
	return PQgetisnull(r, row, c) ? NULL : strdup(PQgetvalue(r, row, c));
}

static int load_offsets(struct st_groups *gs, PGconn *conn, char *err,
			size_t errlen)
{
	PGresult *r =
		PQexec(conn, "SELECT o.group_id, t.name, o.tid, o.partition, "
			     "o.committed_offset, o.leader_epoch, o.metadata, "
			     "o.commit_time FROM samsa.group_offsets o "
			     "JOIN samsa.topics t USING (tid)");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "loading offsets: %s",
			 PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct sg_group *g = group_get(gs, kstr_c(PQgetvalue(r, i, 0)));
		struct st_committed *c = g ? off_get(g, PQgetvalue(r, i, 1),
						     atoi(PQgetvalue(r, i, 2)),
						     atoi(PQgetvalue(r, i, 3)))
					   : NULL;
		size_t len = 0;
		uint8_t *md = c ? unescape(PQgetvalue(r, i, 6), &len) : NULL;
		if (!md) {
			PQclear(r);
			snprintf(err, errlen, "out of memory loading offsets");
			return -1;
		}
		c->valid = true;
		c->offset = strtoll(PQgetvalue(r, i, 4), NULL, 10);
		c->leader_epoch = atoi(PQgetvalue(r, i, 5));
		free(c->metadata);
		c->metadata = md;
		c->metadata_len = len;
		c->commit_time = strtoll(PQgetvalue(r, i, 7), NULL, 10);
	}
	PQclear(r);
	return 0;
}

/* The consumer-protocol members of meta's group from c's rows. */
static int load_cmembers(struct st_group_meta *meta, PGresult *c)
{
	int n = 0;
	for (int j = 0; j < PQntuples(c); j++)
		n += strcmp(PQgetvalue(c, j, 0), meta->group_id) == 0;
	if (!(meta->cmembers = calloc((size_t)n + 1, sizeof(*meta->cmembers))))
		return -1;
	for (int j = 0; j < PQntuples(c); j++) {
		if (strcmp(PQgetvalue(c, j, 0), meta->group_id) != 0)
			continue;
		struct st_cmember *cm = &meta->cmembers[meta->ncmembers++];
		cm->member_id = col(c, j, 1);
		cm->state = unescape(PQgetvalue(c, j, 2), &cm->len);
		if (!cm->member_id || !cm->state)
			return -1;
	}
	return 0;
}

static int load_groups(struct st_groups *gs, PGconn *conn, char *err,
		       size_t errlen)
{
	PGresult *r = PQexec(conn, "SELECT group_id, protocol_type, "
				   "generation, protocol, leader "
				   "FROM samsa.groups");
	PGresult *m = PQexec(conn, "SELECT group_id, member_id, instance_id, "
				   "client_id, client_host, session_timeout, "
				   "rebalance_timeout, metadata, assignment "
				   "FROM samsa.group_members "
				   "ORDER BY group_id, position");
	PGresult *c = PQexec(conn, "SELECT group_id, member_id, state "
				   "FROM samsa.consumer_members "
				   "ORDER BY group_id, member_id");
	int rc = -1;
	PGresult *bad = PQresultStatus(r) != PGRES_TUPLES_OK   ? r
			: PQresultStatus(m) != PGRES_TUPLES_OK ? m
			: PQresultStatus(c) != PGRES_TUPLES_OK ? c
							       : NULL;
	if (bad) {
		snprintf(err, errlen, "loading groups: %s",
			 PQresultErrorMessage(bad));
		goto out;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct sg_group *g = group_get(gs, kstr_c(PQgetvalue(r, i, 0)));
		struct st_group_meta *meta = calloc(1, sizeof(*meta));
		if (!g || !meta) {
			free(meta);
			goto oom;
		}
		meta_free(g->meta);
		g->meta = meta;
		meta->group_id = col(r, i, 0);
		meta->protocol_type = col(r, i, 1);
		meta->generation = atoi(PQgetvalue(r, i, 2));
		meta->protocol = col(r, i, 3);
		meta->leader = col(r, i, 4);
		int nm = 0;
		for (int j = 0; j < PQntuples(m); j++)
			nm += strcmp(PQgetvalue(m, j, 0), meta->group_id) == 0;
		meta->members = calloc((size_t)nm + 1, sizeof(*meta->members));
		if (!meta->members)
			goto oom;
		for (int j = 0; j < PQntuples(m); j++) {
			if (strcmp(PQgetvalue(m, j, 0), meta->group_id) != 0)
				continue;
			struct st_group_member *mb =
				&meta->members[meta->nmembers++];
			mb->member_id = col(m, j, 1);
			mb->instance_id = col(m, j, 2);
			mb->client_id = col(m, j, 3);
			mb->client_host = col(m, j, 4);
			mb->session_timeout = atoi(PQgetvalue(m, j, 5));
			mb->rebalance_timeout = atoi(PQgetvalue(m, j, 6));
			mb->metadata = unescape(PQgetvalue(m, j, 7),
						&mb->metadata_len);
			mb->assignment = unescape(PQgetvalue(m, j, 8),
						  &mb->assignment_len);
			if (!mb->member_id || !mb->client_id ||
			    !mb->client_host || !mb->metadata ||
			    !mb->assignment)
				goto oom;
		}
		if (load_cmembers(meta, c) < 0)
			goto oom;
	}
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "out of memory loading groups");
out:
	PQclear(r);
	PQclear(m);
	PQclear(c);
	return rc;
}

int st_groups_load(struct store *s, PGconn *conn, char *err, size_t errlen)
{
	struct st_groups *gs = calloc(1, sizeof(*gs));
	if (!gs) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->groups = gs;
	if (load_offsets(gs, conn, err, errlen) < 0 ||
	    load_groups(gs, conn, err, errlen) < 0)
		return -1;
	gs->conn = pg_open(s->base, s->conninfo, "groups", NULL, NULL);
	if (!gs->conn) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return pg_wait_ready(gs->conn, 10000, err, errlen);
}

void st_groups_close(struct store *s)
{
	struct st_groups *gs = s->groups;
	if (!gs)
		return;
	if (gs->conn)
		pg_close(gs->conn);
	for (size_t i = 0; i < gs->n; i++)
		group_free(gs->groups[i]);
	free(gs->groups);
	free(gs);
	s->groups = NULL;
}

void st_groups_each(struct store *s,
		    void (*fn)(void *arg, const char *name,
			       const struct st_group_meta *meta),
		    void *arg)
{
	struct st_groups *gs = s->groups;
	for (size_t i = 0; gs && i < gs->n; i++)
		fn(arg, gs->groups[i]->name, gs->groups[i]->meta);
}

/* --- offsets ----------------------------------------------------------- */

const struct st_committed *st_offset_get(struct store *s, struct kstr group,
					 const struct st_topic *t,
					 int32_t partition)
{
	struct sg_group *g = group_find(s->groups, group);
	struct st_committed *c = g ? off_find(g, t->name, partition) : NULL;
	if (!c || c->tid != t->tid)
		return NULL;
	return c;
}

void st_offsets_each(struct store *s, struct kstr group,
		     void (*fn)(void *arg, const struct st_committed *c),
		     void *arg)
{
	struct sg_group *g = group_find(s->groups, group);
	for (size_t i = 0; g && i < g->n; i++)
		if (off_live(s, &g->offs[i]))
			fn(arg, &g->offs[i]);
}

bool st_group_has_offsets(struct store *s, struct kstr group)
{
	struct sg_group *g = group_find(s->groups, group);
	for (size_t i = 0; g && i < g->n; i++)
		if (g->offs[i].pending || off_live(s, &g->offs[i]))
			return true;
	return false;
}

bool st_offsets_writing(struct store *s, struct kstr group)
{
	struct sg_group *g = group_find(s->groups, group);
	for (size_t i = 0; g && i < g->n; i++)
		if (g->offs[i].pending)
			return true;
	return false;
}

struct after_writes {
	void (*fn)(void *arg);
	void *arg;
};

static void writes_over(void *arg, const PGresult *res, const char *err,
			const char *sqlstate)
{
	struct after_writes *w = arg;
	(void)res;
	(void)err;
	(void)sqlstate;
	w->fn(w->arg);
	free(w);
}

bool st_offsets_after_writes(struct store *s, void (*fn)(void *arg), void *arg)
{
	struct after_writes *w = malloc(sizeof(*w));
	if (!w)
		return false;
	w->fn = fn;
	w->arg = arg;
	if (pg_sync_cb(s->groups->conn, writes_over, w) < 0) {
		free(w);
		return false;
	}
	return true;
}

/* A write in flight: what to apply to memory once it commits. */
struct op_entry {
	char *topic;
	int32_t tid, partition;
	int64_t offset;
	int32_t leader_epoch;
	uint8_t *metadata;
	size_t metadata_len;
	int64_t commit_time;
};

enum op_kind { OP_COMMIT, OP_DELETE, OP_DELETE_GROUP, OP_EXPIRE, OP_SAVE };

struct op {
	struct store *s;
	enum op_kind kind;
	char *group;
	struct op_entry *e;
	size_t n;
	int64_t cutoff;
	st_done_cb cb;
	void *arg;
};

static void op_free(struct op *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->e[i].topic);
		free(o->e[i].metadata);
	}
	free(o->e);
	free(o->group);
	free(o);
}

static struct op *op_new(struct store *s, enum op_kind kind, struct kstr group,
			 size_t n, st_done_cb cb, void *arg)
{
	struct op *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->s = s;
	o->kind = kind;
	o->cb = cb;
	o->arg = arg;
	o->group = kstr_dup(group);
	o->e = calloc(n + 1, sizeof(*o->e));
	if (!o->group || !o->e) {
		op_free(o);
		return NULL;
	}
	return o;
}

static void ignore(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	(void)arg;
	(void)res;
	(void)err;
	(void)sqlstate;
}

struct failure {
	st_done_cb cb;
	void *arg;
};

static void fail_now(void *arg)
{
	struct failure f = *(struct failure *)arg;
	free(arg);
	f.cb(f.arg, ST_UNAVAILABLE, "out of memory");
}

/* Reports ST_UNAVAILABLE from the loop (never before returning). */
static void fail_soon(struct store *s, st_done_cb cb, void *arg)
{
	struct failure *f = malloc(sizeof(*f));
	if (!f) {
		/* Nothing left to defer with: the caller copes with an early
		 * call rather than none. */
		cb(arg, ST_UNAVAILABLE, "out of memory");
		return;
	}
	f->cb = cb;
	f->arg = arg;
	st_defer(s, fail_now, f);
}

static void apply(struct op *o)
{
	struct st_groups *gs = o->s->groups;
	struct sg_group *g = group_find(gs, kstr_c(o->group));
	switch (o->kind) {
	case OP_COMMIT:
		if (!g)
			g = group_get(gs, kstr_c(o->group));
		for (size_t i = 0; g && i < o->n; i++) {
			struct op_entry *e = &o->e[i];
			struct st_committed *c =
				off_get(g, e->topic, e->tid, e->partition);
			if (!c)
				continue;
			c->valid = true;
			c->tid = e->tid;
			c->offset = e->offset;
			c->leader_epoch = e->leader_epoch;
			free(c->metadata);
			c->metadata = e->metadata;
			c->metadata_len = e->metadata_len;
			e->metadata = NULL;
			c->commit_time = e->commit_time;
		}
		break;
	case OP_DELETE:
		for (size_t i = 0; g && i < o->n; i++) {
			struct st_committed *c =
				off_find(g, o->e[i].topic, o->e[i].partition);
			if (c && c->tid == o->e[i].tid) {
				if (c->pending)
					c->valid = false;
				else
					off_remove(g, c);
			}
		}
		break;
	case OP_DELETE_GROUP:
	case OP_EXPIRE:
		for (size_t i = 0; g && i < g->n;) {
			struct st_committed *c = &g->offs[i];
			if (o->kind == OP_EXPIRE &&
			    c->commit_time >= o->cutoff) {
				i++;
			} else if (c->pending) {
				c->valid = false;
				i++;
			} else {
				off_remove(g, c);
			}
		}
		if (g && o->kind == OP_DELETE_GROUP) {
			meta_free(g->meta);
			g->meta = NULL;
		}
		break;
	case OP_SAVE:
		break;
	}
	if (g)
		group_maybe_drop(gs, g);
}

/* Undoes the pending marks of a commit (after it is over either way). */
static void unmark(struct op *o)
{
	struct sg_group *g = group_find(o->s->groups, kstr_c(o->group));
	for (size_t i = 0; g && i < o->n; i++) {
		struct st_committed *c =
			off_find(g, o->e[i].topic, o->e[i].partition);
		if (c && c->pending > 0)
			c->pending--;
		if (c && !c->pending && !c->valid)
			off_remove(g, c);
	}
	if (g)
		group_maybe_drop(o->s->groups, g);
}

static void op_done(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct op *o = arg;
	(void)res;
	(void)sqlstate;
	if (!err)
		apply(o);
	if (o->kind == OP_COMMIT)
		unmark(o);
	o->cb(o->arg, err ? ST_UNAVAILABLE : ST_OK, err);
	op_free(o);
}

/* Ends o's statements as one unit; op_done runs when Postgres answered. */
static void op_sync(struct store *s, struct op *o)
{
	st_done_cb cb = o->cb;
	void *arg = o->arg;
	if (pg_sync_cb(s->groups->conn, op_done, o) < 0) {
		op_free(o);
		fail_soon(s, cb, arg);
	}
}

void st_offsets_commit(struct store *s, struct kstr group,
		       const struct st_offset_commit *c, size_t n,
		       st_done_cb cb, void *arg)
{
	struct st_groups *gs = s->groups;
	struct op *o = op_new(s, OP_COMMIT, group, n, cb, arg);
	struct sg_group *g = o ? group_get(gs, group) : NULL;
	if (!g) {
		if (o)
			op_free(o);
		fail_soon(s, cb, arg);
		return;
	}
	int64_t now = st_now_ms();
	for (size_t i = 0; i < n; i++) {
		struct op_entry *e = &o->e[i];
		size_t ml =
			c[i].metadata.len > 0 ? (size_t)c[i].metadata.len : 0;
		e->topic = strdup(c[i].topic->name);
		e->tid = c[i].topic->tid;
		e->partition = c[i].partition;
		e->offset = c[i].offset;
		e->leader_epoch = c[i].leader_epoch;
		e->metadata = malloc(ml ? ml : 1);
		e->metadata_len = ml;
		e->commit_time = now;
		o->n++;
		if (!e->topic || !e->metadata) {
			op_free(o);
			group_maybe_drop(gs, g);
			fail_soon(s, cb, arg);
			return;
		}
		if (ml)
			memcpy(e->metadata, c[i].metadata.ptr, ml);
	}
	for (size_t i = 0; i < n; i++) {
		struct op_entry *e = &o->e[i];
		struct st_committed *sc =
			off_get(g, e->topic, e->tid, e->partition);
		if (sc) {
			if (sc->tid != e->tid && !sc->pending) {
				/* An offset of an earlier topic of the name:
				 * forget it. */
				sc->valid = false;
				sc->tid = e->tid;
			}
			sc->pending++;
		}
		char tid[16], part[16], off[24], epoch[16], ts[24];
		snprintf(tid, sizeof(tid), "%d", e->tid);
		snprintf(part, sizeof(part), "%d", e->partition);
		snprintf(off, sizeof(off), "%lld", (long long)e->offset);
		snprintf(epoch, sizeof(epoch), "%d", e->leader_epoch);
		snprintf(ts, sizeof(ts), "%lld", (long long)e->commit_time);
		const char *v[7] = {o->group, tid,   part,
				    off,      epoch, (const char *)e->metadata,
				    ts};
		int len[7] = {0, 0, 0, 0, 0, (int)e->metadata_len, 0};
		int fmt[7] = {0, 0, 0, 0, 0, 1, 0};
		pg_query(gs->conn,
			 /* Not for a topic deleted meanwhile (its offsets go
			  * with it): a transaction holding offsets for it
			  * would fail its commit again and again. */
			 "INSERT INTO samsa.group_offsets SELECT $1, $2::int, "
			 "$3::int, $4::bigint, $5::int, $6::bytea, $7::bigint "
			 "WHERE EXISTS (SELECT FROM samsa.topics WHERE tid = "
			 "$2::int) "
			 "ON CONFLICT (group_id, tid, partition) DO UPDATE SET "
			 "committed_offset = excluded.committed_offset, "
			 "leader_epoch = excluded.leader_epoch, "
			 "metadata = excluded.metadata, "
			 "commit_time = excluded.commit_time",
			 7, v, len, fmt, false, ignore, NULL);
	}
	if (pg_sync_cb(gs->conn, op_done, o) < 0) {
		/* Out of memory: the statements run as the next unit; the
		 * caller hears of a failure it may retry. */
		unmark(o);
		op_free(o);
		fail_soon(s, cb, arg);
	}
}

void st_offsets_delete(struct store *s, struct kstr group,
		       const struct st_topic *t, const int32_t *partitions,
		       size_t n, st_done_cb cb, void *arg)
{
	struct st_groups *gs = s->groups;
	struct op *o = op_new(s, OP_DELETE, group, n, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		o->e[i].topic = strdup(t->name);
		o->e[i].tid = t->tid;
		o->e[i].partition = partitions[i];
		o->n++;
		if (!o->e[i].topic) {
			op_free(o);
			fail_soon(s, cb, arg);
			return;
		}
		char tid[16], part[16];
		snprintf(tid, sizeof(tid), "%d", t->tid);
		snprintf(part, sizeof(part), "%d", partitions[i]);
		const char *v[3] = {o->group, tid, part};
		pg_query(gs->conn,
			 "DELETE FROM samsa.group_offsets WHERE group_id = $1 "
			 "AND tid = $2::int AND partition = $3::int",
			 3, v, NULL, NULL, false, ignore, NULL);
	}
	op_sync(s, o);
}

void st_offsets_topic_deleted(struct store *s, int32_t tid)
{
	struct st_groups *gs = s->groups;
	for (size_t i = 0; gs && i < gs->n;) {
		struct sg_group *g = gs->groups[i];
		for (size_t j = 0; j < g->n;) {
			if (g->offs[j].tid == tid && !g->offs[j].pending)
				off_remove(g, &g->offs[j]);
			else
				j++;
		}
		if (!g->n && !g->meta)
			group_maybe_drop(gs, g);
		else
			i++;
	}
}

void st_offsets_expire(struct store *s, struct kstr group, int64_t cutoff_ms,
		       st_done_cb cb, void *arg)
{
	struct st_groups *gs = s->groups;
	struct op *o = op_new(s, OP_EXPIRE, group, 0, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	o->cutoff = cutoff_ms;
	char cut[24];
	snprintf(cut, sizeof(cut), "%lld", (long long)cutoff_ms);
	const char *v[2] = {o->group, cut};
	pg_query(gs->conn,
		 "DELETE FROM samsa.group_offsets WHERE group_id = $1 "
		 "AND commit_time < $2::bigint",
		 2, v, NULL, NULL, false, ignore, NULL);
	op_sync(s, o);
}

/* --- group metadata ---------------------------------------------------- */

void st_group_save(struct store *s, const struct st_group_meta *g,
		   st_done_cb cb, void *arg)
{
	struct st_groups *gs = s->groups;
	struct op *o = op_new(s, OP_SAVE, kstr_c(g->group_id), 0, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	char gen[16];
	snprintf(gen, sizeof(gen), "%d", g->generation);
	const char *v[5] = {g->group_id, g->protocol_type, gen, g->protocol,
			    g->leader};
	pg_query(gs->conn,
		 "INSERT INTO samsa.groups VALUES ($1, $2, $3::int, $4, $5, "
		 "now()) ON CONFLICT (group_id) DO UPDATE SET "
		 "protocol_type = excluded.protocol_type, "
		 "generation = excluded.generation, "
		 "protocol = excluded.protocol, leader = excluded.leader, "
		 "updated_at = excluded.updated_at",
		 5, v, NULL, NULL, false, ignore, NULL);
	pg_query(gs->conn,
		 "DELETE FROM samsa.group_members WHERE group_id = $1", 1, v,
		 NULL, NULL, false, ignore, NULL);
	for (size_t i = 0; i < g->nmembers; i++) {
		const struct st_group_member *m = &g->members[i];
		char pos[24], st[16], rt[16];
		snprintf(pos, sizeof(pos), "%zu", i);
		snprintf(st, sizeof(st), "%d", m->session_timeout);
		snprintf(rt, sizeof(rt), "%d", m->rebalance_timeout);
		const char *mv[10] = {
			g->group_id,
			m->member_id,
			pos,
			m->instance_id,
			m->client_id,
			m->client_host,
			st,
			rt,
			m->metadata ? (const char *)m->metadata : "",
			m->assignment ? (const char *)m->assignment : ""};
		int len[10] = {0,
			       0,
			       0,
			       0,
			       0,
			       0,
			       0,
			       0,
			       (int)m->metadata_len,
			       (int)m->assignment_len};
		int fmt[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1};
		pg_query(gs->conn,
			 "INSERT INTO samsa.group_members VALUES ($1, $2, "
			 "$3::int, $4, $5, $6, $7::int, $8::int, $9::bytea, "
			 "$10::bytea)",
			 10, mv, len, fmt, false, ignore, NULL);
	}
	op_sync(s, o);
}

void st_cmember_save(struct store *s, struct kstr group, const char *member_id,
		     const uint8_t *state, size_t len, st_done_cb cb, void *arg)
{
	struct op *o = op_new(s, OP_SAVE, group, 0, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	const char *v[3] = {o->group, member_id, (const char *)state};
	int lens[3] = {0, 0, (int)len};
	int fmt[3] = {0, 0, 1};
	pg_query(s->groups->conn,
		 "INSERT INTO samsa.groups (group_id, generation) "
		 "VALUES ($1, 0) ON CONFLICT (group_id) DO NOTHING",
		 1, v, NULL, NULL, false, ignore, NULL);
	pg_query(s->groups->conn,
		 "INSERT INTO samsa.consumer_members VALUES ($1, $2, "
		 "$3::bytea) ON CONFLICT (group_id, member_id) DO UPDATE "
		 "SET state = excluded.state",
		 3, v, lens, fmt, false, ignore, NULL);
	op_sync(s, o);
}

void st_cmember_delete(struct store *s, struct kstr group,
		       const char *member_id, st_done_cb cb, void *arg)
{
	struct op *o = op_new(s, OP_SAVE, group, 0, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	const char *v[2] = {o->group, member_id};
	pg_query(s->groups->conn,
		 "DELETE FROM samsa.consumer_members WHERE group_id = $1 "
		 "AND member_id = $2",
		 2, v, NULL, NULL, false, ignore, NULL);
	op_sync(s, o);
}

void st_group_delete(struct store *s, struct kstr group, st_done_cb cb,
		     void *arg)
{
	struct st_groups *gs = s->groups;
	struct op *o = op_new(s, OP_DELETE_GROUP, group, 0, cb, arg);
	if (!o) {
		fail_soon(s, cb, arg);
		return;
	}
	const char *v[1] = {o->group};
	pg_query(gs->conn,
		 "DELETE FROM samsa.group_offsets WHERE group_id = $1", 1, v,
		 NULL, NULL, false, ignore, NULL);
	pg_query(gs->conn, "DELETE FROM samsa.groups WHERE group_id = $1", 1, v,
		 NULL, NULL, false, ignore, NULL);
	op_sync(s, o);
}
