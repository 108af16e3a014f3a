/*
 * catalog: topics, partitions and topic configs.  Loaded at start-up with a
 * blocking connection; changed at run time on the catalog connection, in
 * memory only once Postgres has committed the change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store_int.h"

/* --- in-memory index -------------------------------------------------- */

/* Index of the first topic whose name is >= name. */
static size_t lower_bound(const struct store *s, struct kstr name)
{
	size_t lo = 0, hi = s->ntopics;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (kstr_cmp(name, s->topics[mid]->name) > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

size_t st_topic_count(const struct store *s)
{
	return s->ntopics;
}

struct st_topic *st_topic_at(const struct store *s, size_t i)
{
	return i < s->ntopics ? s->topics[i] : NULL;
}

struct st_topic *st_topic_find(const struct store *s, struct kstr name)
{
	if (name.len < 0)
		return NULL;
	size_t i = lower_bound(s, name);
	if (i < s->ntopics && kstr_cmp(name, s->topics[i]->name) == 0)
		return s->topics[i];
	return NULL;
}

struct st_topic *st_topic_find_id(const struct store *s, const struct kuuid *id)
{
	for (size_t i = 0; i < s->ntopics; i++)
		if (memcmp(s->topics[i]->id.b, id->b, 16) == 0)
			return s->topics[i];
	return NULL;
}

struct st_partition *st_partition(const struct st_topic *t, int32_t index)
{
	if (index < 0 || index >= t->npartitions)
		return NULL;
	return t->partitions[index];
}

static int topic_insert(struct store *s, struct st_topic *t)
{
	if (s->ntopics == s->cap_topics) {
		size_t cap = s->cap_topics ? s->cap_topics * 2 : 64;
		struct st_topic **n = realloc(s->topics, cap * sizeof(*n));
		if (!n)
			return -1;
		s->topics = n;
		s->cap_topics = cap;
	}
	size_t i = lower_bound(s, kstr_c(t->name));
	memmove(&s->topics[i + 1], &s->topics[i],
		(s->ntopics - i) * sizeof(*s->topics));
	s->topics[i] = t;
	s->ntopics++;
	return 0;
}

static void topic_remove(struct store *s, struct st_topic *t)
{
	for (size_t i = 0; i < s->ntopics; i++) {
		if (s->topics[i] == t) {
			memmove(&s->topics[i], &s->topics[i + 1],
				(s->ntopics - i - 1) * sizeof(*s->topics));
			s->ntopics--;
			return;
		}
	}
}

void st_topic_resolve(struct st_topic *t)
{
	tc_resolve(t->configs, t->nconfigs, &t->cfg);
}

static void free_configs(struct tc_override *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free((char *)c[i].name);
		free((char *)c[i].value);
	}
	free(c);
}

void st_topic_free(struct st_topic *t)
{
	if (!t)
		return;
	for (int32_t i = 0; i < t->npartitions; i++)
		st_partition_free(t->partitions[i]);
	free(t->partitions);
	free_configs(t->configs, t->nconfigs);
	free(t->name);
	free(t);
}

static int parse_uuid(const char *text, struct kuuid *id)
{
	int n = 0;
	for (const char *p = text; *p && n < 32; p++) {
		int v;
		if (*p == '-')
			continue;
		if (*p >= '0' && *p <= '9')
			v = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			v = *p - 'a' + 10;
		else
			return -1;
		if (n % 2 == 0)
			id->b[n / 2] = (uint8_t)(v << 4);
		else
			id->b[n / 2] |= (uint8_t)v;
		n++;
	}
	return n == 32 ? 0 : -1;
}

static struct st_topic *topic_new(int32_t tid, const char *uuid,
				  const char *name, int32_t npartitions)
{
	struct st_topic *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->tid = tid;
	t->name = strdup(name);
	t->partitions = calloc((size_t)npartitions + 1, sizeof(*t->partitions));
	if (!t->name || !t->partitions || parse_uuid(uuid, &t->id) < 0)
		goto fail;
	for (int32_t i = 0; i < npartitions; i++) {
		t->partitions[i] = st_partition_new(t, i);
		if (!t->partitions[i])
			goto fail;
		t->npartitions = i + 1;
	}
	/* Kafka's own internal topics only (Topic.INTERNAL_TOPICS): others
	 * whose names begin "__", as Debezium's heartbeats, are listed and
	 * matched by pattern subscriptions as any topic. */
	t->internal = strcmp(name, "__consumer_offsets") == 0 ||
		      strcmp(name, "__transaction_state") == 0 ||
		      strcmp(name, "__share_group_state") == 0;
	st_topic_resolve(t);
	return t;
fail:
	st_topic_free(t);
	return NULL;
}

static int add_config(struct st_topic *t, const char *name, const char *value)
{
	struct tc_override *c =
		realloc(t->configs, (t->nconfigs + 1) * sizeof(*c));
	if (!c)
		return -1;
	t->configs = c;
	c[t->nconfigs].name = strdup(name);
	c[t->nconfigs].value = strdup(value);
	t->nconfigs++;
	return 0;
}

int st_catalog_load(struct store *s, PGconn *conn, char *err, size_t errlen)
{
	PGresult *r = PQexec(conn, "SELECT tid, topic_id, name, partitions "
				   "FROM samsa.topics ORDER BY tid");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "loading topics: %s",
			 PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_topic *t = topic_new(
			atoi(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1),
			PQgetvalue(r, i, 2), atoi(PQgetvalue(r, i, 3)));
		if (!t || topic_insert(s, t) < 0) {
			st_topic_free(t);
			PQclear(r);
			snprintf(err, errlen, "out of memory loading topics");
			return -1;
		}
	}
	PQclear(r);

	r = PQexec(conn,
		   "SELECT t.name, c.name, c.value FROM "
		   "samsa.topic_configs c JOIN samsa.topics t USING (tid) "
		   "ORDER BY 1, 2");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "loading topic configs: %s",
			 PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		struct st_topic *t =
			st_topic_find(s, kstr_c(PQgetvalue(r, i, 0)));
		if (t && add_config(t, PQgetvalue(r, i, 1),
				    PQgetvalue(r, i, 2)) < 0) {
			PQclear(r);
			snprintf(err, errlen, "out of memory loading configs");
			return -1;
		}
	}
	PQclear(r);
	for (size_t i = 0; i < s->ntopics; i++)
		st_topic_resolve(s->topics[i]);
	return 0;
}

/* --- changes ------------------------------------------------------------ */

/*
 * One catalog change in flight: its statements are one pipeline unit, which
 * Postgres commits whole at the sync; the sync's callback applies the change
 * in memory.
 */
struct change {
	struct store *s;
	st_done_cb cb;
	void *arg;
	enum st_status failure; /* what an error means for the caller */
	char *msg;		/* first error seen */
	struct st_topic *topic; /* new or changed topic */
	int32_t tid;
	char uuid[40];
	int32_t partitions;
	struct tc_override *configs; /* create / set configs: our copy */
	bool replace;		     /* set configs: the others go */
	size_t nconfigs;
	void (*apply)(struct change *c); /* once committed */
	void (*undo)(struct change *c);	 /* once failed */
};

static void change_free(struct change *c)
{
	free_configs(c->configs, c->nconfigs);
	free(c->msg);
	free(c);
}

static void note_error(struct change *c, const char *err, const char *sqlstate)
{
	if (c->msg)
		return;
	c->msg = strdup(err);
	if (strcmp(sqlstate, "23505") == 0) /* unique_violation */
		c->failure = ST_EXISTS;
}

static void on_step(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct change *c = arg;
	if (!res)
		note_error(c, err, sqlstate);
}

static void on_created_row(void *arg, const PGresult *res, const char *err,
			   const char *sqlstate)
{
	struct change *c = arg;
	if (!res) {
		note_error(c, err, sqlstate);
		return;
	}
	if (PQntuples(res) == 1) {
		c->tid = atoi(PQgetvalue(res, 0, 0));
		snprintf(c->uuid, sizeof(c->uuid), "%s", PQgetvalue(res, 0, 1));
	}
}

static void on_commit(void *arg, const PGresult *res, const char *err,
		      const char *sqlstate)
{
	struct change *c = arg;
	(void)res;
	if (err)
		note_error(c, err, sqlstate);
	if (!c->msg && c->apply)
		c->apply(c);
	else if (c->msg && c->undo)
		c->undo(c);
	c->cb(c->arg, c->msg ? c->failure : ST_OK, c->msg);
	change_free(c);
}

static struct change *change_new(struct store *s, st_done_cb cb, void *arg)
{
	struct change *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = s;
	c->cb = cb;
	c->arg = arg;
	c->failure = ST_UNAVAILABLE;
	return c;
}

struct failed_call {
	st_done_cb cb;
	void *arg;
	enum st_status st;
};

static void fire_failed(void *arg)
{
	struct failed_call *f = arg;
	f->cb(f->arg, f->st,
	      f->st == ST_EXISTS      ? "topic exists"
	      : f->st == ST_NOT_FOUND ? "topic being deleted"
				      : "storage unavailable");
	free(f);
}

static void fail_soon(struct store *s, st_done_cb cb, void *arg,
		      enum st_status st)
{
	struct failed_call *f = malloc(sizeof(*f));
	if (!f)
		return; /* out of memory: nothing more we can do */
	f->cb = cb;
	f->arg = arg;
	f->st = st;
	st_defer(s, fire_failed, f);
}

static void q(struct change *c, const char *sql, int n, const char *const *v,
	      pg_cb cb)
{
	pg_query(c->s->catalog, sql, n, v, NULL, NULL, false, cb, c);
}

static bool creating(struct store *s, struct kstr name)
{
	for (size_t i = 0; i < s->ncreating; i++)
		if (kstr_cmp(name, s->creating[i]) == 0)
			return true;
	return false;
}

static void creating_done(struct store *s, const char *name)
{
	for (size_t i = 0; i < s->ncreating; i++) {
		if (strcmp(s->creating[i], name) == 0) {
			free(s->creating[i]);
			s->creating[i] = s->creating[--s->ncreating];
			return;
		}
	}
}

static void apply_create(struct change *c)
{
	struct st_topic *t = c->topic;
	t->tid = c->tid;
	if (parse_uuid(c->uuid, &t->id) < 0 || topic_insert(c->s, t) < 0) {
		c->msg = strdup("out of memory");
		return;
	}
	t->configs = c->configs;
	t->nconfigs = c->nconfigs;
	c->configs = NULL;
	c->nconfigs = 0;
	st_topic_resolve(t);
	c->topic = NULL;
}

struct create_wrap {
	st_done_cb cb;
	void *arg;
	struct store *s;
	struct st_topic *t;
};

static void create_finished(void *arg, enum st_status st, const char *msg)
{
	struct create_wrap *w = arg;
	creating_done(w->s, w->t->name);
	if (st != ST_OK)
		st_topic_free(w->t);
	w->cb(w->arg, st, msg);
	free(w);
}

void st_create_topic(struct store *s, struct kstr name, int32_t partitions,
		     const struct tc_override *configs, size_t nconfigs,
		     st_done_cb cb, void *arg)
{
	if (st_topic_find(s, name) || creating(s, name)) {
		fail_soon(s, cb, arg, ST_EXISTS);
		return;
	}
	if (!pg_ready(s->catalog)) {
		fail_soon(s, cb, arg, ST_UNAVAILABLE);
		return;
	}
	/* Not strndup: name ends where the request frame does, with no NUL
	 * after it. */
	char *cname = malloc((size_t)name.len + 1);
	if (cname) {
		memcpy(cname, name.ptr, (size_t)name.len);
		cname[name.len] = '\0';
	}
	struct create_wrap *w = calloc(1, sizeof(*w));
	char **cr = realloc(s->creating, (s->ncreating + 1) * sizeof(*cr));
	if (cr)
		s->creating = cr;
	struct st_topic *t =
		cname ? topic_new(0, "00000000000000000000000000000000", cname,
				  partitions)
		      : NULL;
	struct change *c = w ? change_new(s, create_finished, w) : NULL;
	if (!cname || !w || !cr || !t || !c) {
		free(cname);
		free(w);
		st_topic_free(t);
		free(c);
		fail_soon(s, cb, arg, ST_UNAVAILABLE);
		return;
	}
	s->creating[s->ncreating++] = cname;
	w->cb = cb;
	w->arg = arg;
	w->s = s;
	w->t = t;
	c->topic = t;
	c->apply = apply_create;
	c->configs = calloc(nconfigs + 1, sizeof(*c->configs));
	for (size_t i = 0; c->configs && i < nconfigs; i++) {
		c->configs[i].name = strdup(configs[i].name);
		c->configs[i].value = strdup(configs[i].value);
		c->nconfigs++;
	}

	char nparts[16];
	snprintf(nparts, sizeof(nparts), "%d", partitions);
	const char *v[3] = {cname, nparts, NULL};
	q(c,
	  "WITH t AS (INSERT INTO samsa.topics (topic_id, name, partitions) "
	  "VALUES (gen_random_uuid(), $1, $2::int) RETURNING tid, topic_id), "
	  "p AS (INSERT INTO samsa.partitions (tid, partition) "
	  "SELECT tid, g FROM t, generate_series(0, $2::int - 1) g) "
	  "SELECT tid, topic_id FROM t",
	  2, v, on_created_row);
	for (size_t i = 0; i < c->nconfigs; i++) {
		const char *cv[3] = {cname, c->configs[i].name,
				     c->configs[i].value};
		q(c,
		  "INSERT INTO samsa.topic_configs SELECT tid, $2::text, "
		  "$3::text "
		  "FROM samsa.topics WHERE name = $1",
		  3, cv, on_step);
	}
	pg_sync_cb(s->catalog, on_commit, c);
}

static void apply_delete(struct change *c)
{
	struct store *s = c->s;
	struct st_topic *t = c->topic;
	struct st_topic **g =
		realloc(s->graveyard, (s->ngrave + 1) * sizeof(*g));
	if (!g) {
		c->msg = strdup("out of memory");
		return;
	}
	s->graveyard = g;
	s->graveyard[s->ngrave++] = t;
	topic_remove(s, t);
	for (int32_t i = 0; i < t->npartitions; i++)
		st_partition_retire(s, t->partitions[i]);
}

static void undo_delete(struct change *c)
{
	c->topic->deleting = false;
}

void st_delete_topic(struct store *s, struct st_topic *t, st_done_cb cb,
		     void *arg)
{
	/* A second delete would bury the topic twice. */
	if (t->deleting) {
		fail_soon(s, cb, arg, ST_NOT_FOUND);
		return;
	}
	struct change *c = pg_ready(s->catalog) ? change_new(s, cb, arg) : NULL;
	if (!c) {
		fail_soon(s, cb, arg, ST_UNAVAILABLE);
		return;
	}
	t->deleting = true;
	c->topic = t;
	c->apply = apply_delete;
	c->undo = undo_delete;
	char tid[16];
	snprintf(tid, sizeof(tid), "%d", t->tid);
	const char *v[1] = {tid};
	q(c, "DELETE FROM samsa.log WHERE tid = $1::int", 1, v, on_step);
	q(c, "DELETE FROM samsa.txn_aborted WHERE tid = $1::int", 1, v,
	  on_step);
	q(c, "DELETE FROM samsa.topics WHERE tid = $1::int", 1, v, on_step);
	pg_sync_cb(s->catalog, on_commit, c);
}

static void growth_over(struct change *c)
{
	struct st_topic *t = c->topic;
	if (--t->ngrowing == 0)
		t->growing_to = 0;
}

static void apply_partitions(struct change *c)
{
	struct st_topic *t = c->topic;
	growth_over(c);
	/* A growth to more went first, or the topic went: nothing to add
	 * (and the array must not shrink under its partitions). */
	if (c->partitions <= t->npartitions ||
	    st_topic_find(c->s, kstr_c(t->name)) != t)
		return;
	struct st_partition **np = realloc(
		t->partitions, ((size_t)c->partitions + 1) * sizeof(*np));
	if (!np) {
		c->msg = strdup("out of memory");
		return;
	}
	t->partitions = np;
	for (int32_t i = t->npartitions; i < c->partitions; i++) {
		np[i] = st_partition_new(t, i);
		if (!np[i]) {
			c->msg = strdup("out of memory");
			return;
		}
		t->npartitions = i + 1;
	}
}

void st_create_partitions(struct store *s, struct st_topic *t, int32_t total,
			  st_done_cb cb, void *arg)
{
	struct change *c = pg_ready(s->catalog) ? change_new(s, cb, arg) : NULL;
	if (!c) {
		fail_soon(s, cb, arg, ST_UNAVAILABLE);
		return;
	}
	c->topic = t;
	c->partitions = total;
	c->apply = apply_partitions;
	c->undo = growth_over;
	t->ngrowing++;
	if (total > t->growing_to)
		t->growing_to = total;
	char tid[16], to[16];
	snprintf(tid, sizeof(tid), "%d", t->tid);
	snprintf(to, sizeof(to), "%d", total);
	const char *v[2] = {tid, to};
	/* From the count committed before it, not the one seen when asked:
	 * another growth may be in flight ahead of this one. */
	q(c,
	  "INSERT INTO samsa.partitions (tid, partition) "
	  "SELECT $1::int, g FROM generate_series((SELECT partitions FROM "
	  "samsa.topics WHERE tid = $1::int), $2::int - 1) g",
	  2, v, on_step);
	q(c,
	  "UPDATE samsa.topics SET partitions = greatest(partitions, "
	  "$2::int) WHERE tid = $1::int",
	  2, v, on_step);
	pg_sync_cb(s->catalog, on_commit, c);
}

/* Takes c->configs' edits onto the topic's settings: those it had (none
 * with c->replace) less those named,
 * plus those named with a value.  Edits, not the whole set, so that two
 * changes in flight together both count, in the order they commit. */
static void apply_configs(struct change *c)
{
	struct st_topic *t = c->topic;
	size_t have = c->replace ? 0 : t->nconfigs;
	struct tc_override *next =
		calloc(have + c->nconfigs + 1, sizeof(*next));
	if (!next) {
		c->msg = strdup("out of memory");
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < t->nconfigs; i++) {
		bool named = i >= have;
		for (size_t j = 0; !named && j < c->nconfigs; j++)
			named = strcmp(t->configs[i].name,
				       c->configs[j].name) == 0;
		if (named) {
			free((char *)t->configs[i].name);
			free((char *)t->configs[i].value);
		} else {
			next[n++] = t->configs[i];
		}
	}
	for (size_t j = 0; j < c->nconfigs; j++) {
		if (c->configs[j].value) {
			next[n++] = c->configs[j];
		} else {
			free((char *)c->configs[j].name);
		}
	}
	free(t->configs);
	free(c->configs);
	c->configs = NULL;
	c->nconfigs = 0;
	t->configs = next;
	t->nconfigs = n;
	st_topic_resolve(t);
}

void st_set_configs(struct store *s, struct st_topic *t, bool replace,
		    const struct tc_override *configs, size_t n, st_done_cb cb,
		    void *arg)
{
	struct change *c = pg_ready(s->catalog) ? change_new(s, cb, arg) : NULL;
	if (c)
		c->configs = calloc(n + 1, sizeof(*c->configs));
	bool copied = c && c->configs;
	for (size_t i = 0; copied && i < n; i++) {
		c->configs[i].name = strdup(configs[i].name);
		c->configs[i].value =
			configs[i].value ? strdup(configs[i].value) : NULL;
		c->nconfigs++;
		copied = c->configs[i].name &&
			 (c->configs[i].value || !configs[i].value);
	}
	if (!copied) {
		if (c)
			change_free(c);
		fail_soon(s, cb, arg, ST_UNAVAILABLE);
		return;
	}
	c->topic = t;
	c->replace = replace;
	c->apply = apply_configs;
	char tid[16];
	snprintf(tid, sizeof(tid), "%d", t->tid);
	const char *v[3] = {tid, NULL, NULL};
	if (replace)
		q(c, "DELETE FROM samsa.topic_configs WHERE tid = $1::int", 1,
		  v, on_step);
	for (size_t i = 0; i < c->nconfigs; i++) {
		v[1] = c->configs[i].name;
		v[2] = c->configs[i].value;
		if (!replace)
			q(c,
			  "DELETE FROM samsa.topic_configs "
			  "WHERE tid = $1::int AND name = $2",
			  2, v, on_step);
		if (v[2])
			q(c,
			  "INSERT INTO samsa.topic_configs "
			  "VALUES ($1::int, $2, $3)",
			  3, v, on_step);
	}
	pg_sync_cb(s->catalog, on_commit, c);
}

bool st_topic_name_valid(struct kstr name)
{
	if (name.len <= 0 || name.len > 249)
		return false;
	if ((name.len == 1 && name.ptr[0] == '.') ||
	    (name.len == 2 && name.ptr[0] == '.' && name.ptr[1] == '.'))
		return false;
	for (int32_t i = 0; i < name.len; i++) {
		char c = name.ptr[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-'))
			return false;
	}
	return true;
}
