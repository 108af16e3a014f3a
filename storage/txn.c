/*
 * txn: the transaction coordinator and its state in Postgres (see txn.h).
 */
#include "storage/txn.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "storage/store_int.h"
#include "storage/topic_config.h"

enum txn_state {
	TX_EMPTY,
	TX_ONGOING,
	TX_PREPARE_COMMIT,
	TX_PREPARE_ABORT,
	TX_COMPLETE_COMMIT,
	TX_COMPLETE_ABORT,
};

static const char *const state_names[] = {
	"Empty",	"Ongoing",	  "PrepareCommit",
	"PrepareAbort", "CompleteCommit", "CompleteAbort",
};

struct txn_offset {
	char *group;
	const struct st_topic *topic;
	int32_t partition;
	int64_t offset;
	int32_t leader_epoch;
	char *metadata; /* NULL for a null one */
};

struct txn {
	char *id;
	int64_t pid;
	int16_t epoch;
	/* The producer id and epoch the last InitProducerId moved away from
	 * (a bump, or a new producer id for an exhausted epoch; pid -1:
	 * none), so that a retry of it that still holds them gets the new
	 * ones instead of PRODUCER_FENCED, as Kafka's lastProducerEpoch.  In
	 * memory only. */
	int64_t prev_pid;
	int16_t prev_epoch;
	enum txn_state state;
	int32_t timeout_ms;
	int64_t start_ms;
	struct st_partition **parts;
	int nparts, cap_parts;
	char **groups;
	int ngroups;
	struct txn_offset *offs;
	int noffs;
	/* Completing (markers, offsets, saves in flight) or being created:
	 * other calls get ST_CONCURRENT. */
	bool busy;
	int phase;	   /* completion step (complete_step) */
	int waiting;	   /* markers or offset commits in flight */
	bool failed;	   /* one of them failed: run the step again */
	st_done_cb end_cb; /* EndTxn waiting for completion */
	void *end_arg;
	struct txn *next;
};

struct st_txns {
	struct store *s;
	struct pgconn *conn;
	struct txn *list;
	struct event *timer;
	bool swept;	     /* orphan transactions in the log aborted */
	int64_t next_expiry; /* when producer state is next expired (ms) */
};

/*
 * Kafka's TransactionMetadata.isEpochExhausted: at Short.MAX_VALUE - 1 the
 * next InitProducerId moves the transactional id to a new producer id at
 * epoch 0, leaving one bump for fencing a transaction left open, so no
 * producer is ever handed an epoch that would wrap.
 */
static bool epoch_exhausted(int16_t epoch)
{
	return epoch >= INT16_MAX - 1;
}

/* The epoch after e for fencing, which never wraps: at INT16_MAX it stays
 * (only reached when the id was not rotated in time). */
static int16_t epoch_bump(int16_t e)
{
	return e < INT16_MAX ? (int16_t)(e + 1) : e;
}

static struct txn *txn_get(struct store *s, struct kstr id)
{
	if (!s->txns || id.len < 0)
		return NULL;
	for (struct txn *t = s->txns->list; t; t = t->next)
		if (strlen(t->id) == (size_t)id.len &&
		    memcmp(t->id, id.ptr, (size_t)id.len) == 0)
			return t;
	return NULL;
}

static bool open_state(enum txn_state st)
{
	return st == TX_ONGOING || st == TX_PREPARE_COMMIT ||
	       st == TX_PREPARE_ABORT;
}

static void offsets_clear(struct txn *t)
{
	for (int i = 0; i < t->noffs; i++) {
		free(t->offs[i].group);
		free(t->offs[i].metadata);
	}
	free(t->offs);
	t->offs = NULL;
	t->noffs = 0;
	for (int i = 0; i < t->ngroups; i++)
		free(t->groups[i]);
	free(t->groups);
	t->groups = NULL;
	t->ngroups = 0;
	t->nparts = 0;
}

static void txn_free(struct txn *t)
{
	offsets_clear(t);
	free(t->parts);
	free(t->id);
	free(t);
}

static bool has_part(const struct txn *t, const struct st_partition *p)
{
	for (int i = 0; i < t->nparts; i++)
		if (t->parts[i] == p)
			return true;
	return false;
}

static int add_part(struct txn *t, struct st_partition *p)
{
	if (has_part(t, p))
		return 0;
	if (t->nparts == t->cap_parts) {
		int cap = t->cap_parts ? t->cap_parts * 2 : 8;
		struct st_partition **n =
			realloc(t->parts, (size_t)cap * sizeof(*n));
		if (!n)
			return -1;
		t->parts = n;
		t->cap_parts = cap;
	}
	t->parts[t->nparts++] = p;
	return 0;
}

static struct st_topic *topic_by_tid(struct store *s, int32_t tid)
{
	for (size_t i = 0; i < s->ntopics; i++)
		if (s->topics[i]->tid == tid)
			return s->topics[i];
	return NULL;
}

/* --- deferred answers -------------------------------------------------------
 */

struct answer {
	st_done_cb cb;
	st_pid_cb pcb;
	void *arg;
	enum st_status st;
	int64_t pid;
	int16_t epoch;
};

static void fire_answer(void *arg)
{
	struct answer *a = arg;
	if (a->pcb)
		a->pcb(a->arg, a->st, a->pid, a->epoch);
	else
		a->cb(a->arg, a->st, NULL);
	free(a);
}

static void done_soon(struct store *s, st_done_cb cb, st_pid_cb pcb, void *arg,
		      enum st_status st, int64_t pid, int16_t epoch)
{
	struct answer *a = calloc(1, sizeof(*a));
	if (!a)
		return;
	*a = (struct answer){cb, pcb, arg, st, pid, epoch};
	st_defer(s, fire_answer, a);
}

/* --- saving ----------------------------------------------------------------
 */

struct save_ctx {
	struct store *s;
	struct txn *t;
	void (*then)(struct save_ctx *x, bool ok);
	st_done_cb cb;
	st_pid_cb pcb;
	void *arg;
};

/* The unit's outcome comes to on_saved. */
static void on_step(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	(void)arg;
	(void)res;
	(void)err;
	(void)sqlstate;
}

static void on_saved(void *arg, const PGresult *res, const char *err,
		     const char *sqlstate)
{
	struct save_ctx *x = arg;
	(void)res;
	(void)sqlstate;
	if (err)
		fprintf(stderr, "samsa: saving transaction %s failed: %s\n",
			x->t->id, err);
	x->then(x, err == NULL);
	free(x);
}

/*
 * Writes t as it is now (one upsert: one implicit transaction); then(x, ok)
 * runs when Postgres answered.  Saves of one connection land in order, so
 * the row always ends as the last save made.
 */
static void txn_save(struct store *s, struct txn *t,
		     void (*then)(struct save_ctx *x, bool ok), st_done_cb cb,
		     st_pid_cb pcb, void *arg)
{
	struct save_ctx *x = calloc(1, sizeof(*x));
	json_t *parts = json_array(), *groups = json_array(),
	       *offs = json_array();
	for (int i = 0; i < t->nparts; i++)
		json_array_append_new(parts,
				      json_pack("[ii]", t->parts[i]->topic->tid,
						t->parts[i]->index));
	for (int i = 0; i < t->ngroups; i++)
		json_array_append_new(groups, json_string(t->groups[i]));
	for (int i = 0; i < t->noffs; i++) {
		const struct txn_offset *o = &t->offs[i];
		json_t *md = o->metadata ? json_string(o->metadata) : NULL;
		json_array_append_new(
			offs,
			json_pack("[siiIio]", o->group, o->topic->tid,
				  o->partition, (json_int_t)o->offset,
				  o->leader_epoch, md ? md : json_null()));
	}
	char *pj = json_dumps(parts, JSON_COMPACT),
	     *gj = json_dumps(groups, JSON_COMPACT),
	     *oj = json_dumps(offs, JSON_COMPACT);
	json_decref(parts);
	json_decref(groups);
	json_decref(offs);
	if (!x || !pj || !gj || !oj) {
		free(pj);
		free(gj);
		free(oj);
		free(x);
		if (then) {
			struct save_ctx y = {s, t, then, cb, pcb, arg};
			then(&y, false);
		}
		return;
	}
	*x = (struct save_ctx){s, t, then, cb, pcb, arg};
	char pid[24], ep[8], to[16], start[24], upd[24];
	snprintf(pid, sizeof(pid), "%" PRId64, t->pid);
	snprintf(ep, sizeof(ep), "%d", t->epoch);
	snprintf(to, sizeof(to), "%d", t->timeout_ms);
	snprintf(start, sizeof(start), "%" PRId64, t->start_ms);
	snprintf(upd, sizeof(upd), "%" PRId64, st_now_ms());
	const char *v[10] = {t->id, pid,   ep,	state_names[t->state],
			     to,    start, upd, pj,
			     gj,    oj};
	pg_query(s->txns->conn,
		 "INSERT INTO samsa.transactions VALUES ($1, $2, $3, $4, $5, "
		 "$6, $7, $8, $9, $10) ON CONFLICT (transactional_id) DO "
		 "UPDATE SET producer_id = excluded.producer_id, "
		 "producer_epoch = excluded.producer_epoch, state = "
		 "excluded.state, timeout_ms = excluded.timeout_ms, "
		 "start_time = excluded.start_time, updated_at = "
		 "excluded.updated_at, partitions = excluded.partitions, "
		 "groups = excluded.groups, offsets = excluded.offsets",
		 10, v, NULL, NULL, false, on_step, NULL);
	pg_sync_cb(s->txns->conn, on_saved, x);
	free(pj);
	free(gj);
	free(oj);
}

/* A save whose only follow-up is answering the caller. */
static void then_answer(struct save_ctx *x, bool ok)
{
	enum st_status st = ok ? ST_OK : ST_UNAVAILABLE;
	if (x->pcb)
		x->pcb(x->arg, st, x->t->pid, x->t->epoch);
	else if (x->cb)
		x->cb(x->arg, st, NULL);
}

/* --- completing a transaction -----------------------------------------------
 */

/* The store, for the callbacks of completion steps (they carry t only). */
static struct store *the_store;

static void complete_step(struct txn *t);

static void retry_tick(evutil_socket_t fd, short what, void *arg)
{
	struct txn *t = arg; /* never freed while busy */
	(void)fd;
	(void)what;
	t->phase = 0;
	complete_step(t);
}

static void then_completed(struct save_ctx *x, bool ok)
{
	struct txn *t = x->t;
	/* Not saved: the Prepare state is, and a restart finishes again
	 * (every step is idempotent); go on in memory. */
	(void)ok;
	t->busy = false;
	if (t->end_cb) {
		st_done_cb cb = t->end_cb;
		t->end_cb = NULL;
		cb(t->end_arg, ST_OK, NULL);
	}
}

static void step_done(struct txn *t)
{
	if (--t->waiting > 0)
		return;
	complete_step(t);
}

static void on_group_committed(void *arg, enum st_status st, const char *msg)
{
	struct txn *t = arg;
	(void)msg;
	if (the_store->closing)
		return; /* t may be freed: the writer and groups close last */
	if (st != ST_OK)
		t->failed = true;
	step_done(t);
}

static void on_marker(void *arg, const struct st_append_result *r)
{
	struct txn *t = arg;
	if (the_store->closing)
		return; /* as on_group_committed */
	if (r->status != ST_OK && r->status != ST_NOT_FOUND &&
	    r->status != ST_DELETED)
		t->failed = true;
	step_done(t);
}

/* Commits the held offsets of the group of t->offs[i] (its first entry). */
static void commit_group(struct store *s, struct txn *t, int i)
{
	struct st_offset_commit *c = calloc((size_t)t->noffs, sizeof(*c));
	if (!c) {
		t->failed = true;
		return;
	}
	int n = 0;
	for (int j = i; j < t->noffs; j++) {
		if (strcmp(t->offs[j].group, t->offs[i].group) != 0)
			continue;
		c[n++] = (struct st_offset_commit){
			.topic = t->offs[j].topic,
			.partition = t->offs[j].partition,
			.offset = t->offs[j].offset,
			.leader_epoch = t->offs[j].leader_epoch,
			.metadata = kstr_c(t->offs[j].metadata),
		};
	}
	t->waiting++;
	st_offsets_commit(s, kstr_c(t->offs[i].group), c, (size_t)n,
			  on_group_committed, t);
	free(c);
}

/*
 * The steps after the Prepare state is saved, in phases: 0 markers to every
 * partition, 1 the held offsets (commit only), 2 the Complete state.  A
 * failure starts again from the markers after a pause: markers and offset
 * commits are idempotent.
 */
static void complete_step(struct txn *t)
{
	struct store *s = the_store;
	for (;;) {
		if (t->failed) {
			struct timeval tv = {0, 500000};
			t->failed = false;
			event_base_once(s->base, -1, EV_TIMEOUT, retry_tick, t,
					&tv);
			return;
		}
		if (t->phase == 0) {
			t->phase = 1;
			t->waiting = 1;
			for (int i = 0; i < t->nparts; i++) {
				t->waiting++;
				st_append_marker(s, t->parts[i], t->pid,
						 t->epoch,
						 t->state == TX_PREPARE_COMMIT,
						 on_marker, t);
			}
			if (--t->waiting > 0)
				return;
		} else if (t->phase == 1) {
			t->phase = 2;
			t->waiting = 1;
			for (int i = 0;
			     t->state == TX_PREPARE_COMMIT && i < t->noffs;
			     i++) {
				bool seen = false;
				for (int j = 0; j < i; j++)
					seen |= strcmp(t->offs[j].group,
						       t->offs[i].group) == 0;
				if (!seen)
					commit_group(s, t, i);
			}
			if (--t->waiting > 0)
				return;
		} else {
			t->state = t->state == TX_PREPARE_COMMIT
					   ? TX_COMPLETE_COMMIT
					   : TX_COMPLETE_ABORT;
			offsets_clear(t);
			t->start_ms = -1;
			txn_save(s, t, then_completed, NULL, NULL, NULL);
			return;
		}
	}
}

static void then_prepared(struct save_ctx *x, bool ok)
{
	struct txn *t = x->t;
	(void)ok; /* kept in memory either way; markers follow */
	if (x->s->closing)
		return; /* completed at the next start */
	t->phase = 0;
	complete_step(t);
}

/* Moves t to Prepare{Commit,Abort} and completes it; cb (may be NULL) runs
 * when it is complete. */
static void txn_complete(struct store *s, struct txn *t, bool commit,
			 st_done_cb cb, void *arg)
{
	t->state = commit ? TX_PREPARE_COMMIT : TX_PREPARE_ABORT;
	t->busy = true;
	t->failed = false;
	t->end_cb = cb;
	t->end_arg = arg;
	txn_save(s, t, then_prepared, NULL, NULL, NULL);
}

/* --- checks shared by the calls ----------------------------------------------
 */

/* Completing, or decided and to be completed: a Prepare state loaded at
 * start-up is not busy until the timer takes it up, and meanwhile an EndTxn
 * retry or a new producer's InitProducerId must wait for it as Kafka's
 * (CONCURRENT_TRANSACTIONS), not reopen it. */
static bool completing(const struct txn *t)
{
	return t->busy || t->state == TX_PREPARE_COMMIT ||
	       t->state == TX_PREPARE_ABORT;
}

static enum st_status check(struct txn *t, int64_t pid, int16_t epoch)
{
	if (!t || t->pid != pid)
		return ST_PID_MAPPING;
	if (epoch != t->epoch)
		return ST_FENCED;
	if (completing(t))
		return ST_CONCURRENT;
	return ST_OK;
}

/* Opens the transaction if it is not. */
static void txn_begin(struct txn *t)
{
	if (t->state != TX_ONGOING) {
		offsets_clear(t);
		t->state = TX_ONGOING;
		t->start_ms = st_now_ms();
	}
}

/* --- the calls
 * ---------------------------------------------------------------- */

struct pid_new {
	struct store *s;
	struct txn *t;
	st_pid_cb cb;
	void *arg;
	int32_t timeout_ms; /* rotation: the request's timeout */
	bool expected;	    /* rotation: the request named pid and epoch */
};

static void on_new_pid(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct pid_new *x = arg;
	struct txn *t = x->t;
	(void)err;
	(void)sqlstate;
	if (!res || PQntuples(res) != 1) {
		/* Forget the half-made id. */
		struct txn **pp = &x->s->txns->list;
		while (*pp != t)
			pp = &(*pp)->next;
		*pp = t->next;
		txn_free(t);
		x->cb(x->arg, ST_UNAVAILABLE, -1, -1);
		free(x);
		return;
	}
	t->pid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	t->epoch = 0;
	t->busy = false;
	txn_save(x->s, t, then_answer, NULL, x->cb, x->arg);
	free(x);
}

/* The new producer id of a transactional id whose epoch ran out: epoch 0,
 * a fresh Empty state, saved before the answer. */
static void on_rotated_pid(void *arg, const PGresult *res, const char *err,
			   const char *sqlstate)
{
	struct pid_new *x = arg;
	struct txn *t = x->t;
	(void)err;
	(void)sqlstate;
	t->busy = false;
	if (!res || PQntuples(res) != 1) {
		x->cb(x->arg, ST_UNAVAILABLE, -1, -1);
		free(x);
		return;
	}
	fprintf(stderr,
		"samsa: transactional id %s: epoch %d of producer id %" PRId64
		" exhausted, moving to a new producer id\n",
		t->id, t->epoch, t->pid);
	t->prev_pid = x->expected ? t->pid : -1;
	t->prev_epoch = t->epoch;
	t->pid = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	t->epoch = 0;
	t->timeout_ms = x->timeout_ms;
	t->state = TX_EMPTY;
	t->start_ms = -1;
	txn_save(x->s, t, then_answer, NULL, x->cb, x->arg);
	free(x);
}

void st_txn_init_producer(struct store *s, struct kstr id, int32_t timeout_ms,
			  int64_t producer_id, int16_t epoch, st_pid_cb cb,
			  void *arg)
{
	int64_t max = bc_get_int("transaction.max.timeout.ms", 900000);
	if (timeout_ms <= 0 || timeout_ms > max) {
		done_soon(s, NULL, cb, arg, ST_BAD_TIMEOUT, -1, -1);
		return;
	}
	if (!s->txns || !pg_ready(s->txns->conn)) {
		done_soon(s, NULL, cb, arg, ST_UNAVAILABLE, -1, -1);
		return;
	}
	struct txn *t = txn_get(s, id);
	if (!t) {
		struct pid_new *x = calloc(1, sizeof(*x));
		t = calloc(1, sizeof(*t));
		char *name = malloc((size_t)id.len + 1);
		if (!x || !t || !name) {
			free(x);
			free(t);
			free(name);
			done_soon(s, NULL, cb, arg, ST_UNAVAILABLE, -1, -1);
			return;
		}
		memcpy(name, id.ptr, (size_t)id.len);
		name[id.len] = '\0';
		t->id = name;
		t->pid = -1;
		t->prev_pid = -1;
		t->state = TX_EMPTY;
		t->timeout_ms = timeout_ms;
		t->start_ms = -1;
		t->busy = true;
		t->next = s->txns->list;
		s->txns->list = t;
		*x = (struct pid_new){s, t, cb, arg, timeout_ms, false};
		pg_query(s->txns->conn, "SELECT nextval('samsa.producer_ids')",
			 0, NULL, NULL, NULL, false, on_new_pid, x);
		pg_sync(s->txns->conn);
		return;
	}
	if (completing(t)) {
		done_soon(s, NULL, cb, arg, ST_CONCURRENT, -1, -1);
		return;
	}
	if (producer_id >= 0 && producer_id == t->prev_pid &&
	    epoch == t->prev_epoch && !open_state(t->state)) {
		/* A retry of the InitProducerId that moved the epoch on (its
		 * answer was lost, or it was told to retry while the
		 * transaction it left open was aborted): what that one got. */
		done_soon(s, NULL, cb, arg, ST_OK, t->pid, t->epoch);
		return;
	}
	if (producer_id >= 0 && (producer_id != t->pid || epoch != t->epoch)) {
		done_soon(s, NULL, cb, arg, ST_FENCED, -1, -1);
		return;
	}
	if (t->state != TX_ONGOING && epoch_exhausted(t->epoch)) {
		struct pid_new *x = calloc(1, sizeof(*x));
		if (!x) {
			done_soon(s, NULL, cb, arg, ST_UNAVAILABLE, -1, -1);
			return;
		}
		*x = (struct pid_new){.s = s,
				      .t = t,
				      .cb = cb,
				      .arg = arg,
				      .timeout_ms = timeout_ms,
				      .expected = producer_id >= 0};
		t->busy = true;
		pg_query(s->txns->conn, "SELECT nextval('samsa.producer_ids')",
			 0, NULL, NULL, NULL, false, on_rotated_pid, x);
		pg_sync(s->txns->conn);
		return;
	}
	/* A new epoch fences every older producer of the id.  Only a bump
	 * that named the producer may be retried for the same answer: after
	 * a new producer's (no id given), the old one's own bump, retry or
	 * not, is fenced (Kafka's lastProducerEpoch -1). */
	t->prev_pid = producer_id >= 0 ? t->pid : -1;
	t->prev_epoch = t->epoch;
	t->epoch = epoch_bump(t->epoch);
	t->timeout_ms = timeout_ms;
	if (t->state == TX_ONGOING) {
		/* The transaction left open is aborted under the new epoch;
		 * the client retries and gets the next one. */
		txn_complete(s, t, false, NULL, NULL);
		done_soon(s, NULL, cb, arg, ST_CONCURRENT, -1, -1);
		return;
	}
	t->state = TX_EMPTY;
	t->start_ms = -1;
	txn_save(s, t, then_answer, NULL, cb, arg);
}

void st_txn_add_partitions(struct store *s, struct kstr id, int64_t producer_id,
			   int16_t epoch, struct st_partition *const *parts,
			   int n, bool verify_only, st_done_cb cb, void *arg)
{
	struct txn *t = txn_get(s, id);
	enum st_status st = check(t, producer_id, epoch);
	if (st == ST_OK && verify_only) {
		for (int i = 0; i < n; i++)
			if (t->state != TX_ONGOING || !has_part(t, parts[i]))
				st = ST_TXN_STATE;
		done_soon(s, cb, NULL, arg, st, -1, -1);
		return;
	}
	if (st != ST_OK) {
		done_soon(s, cb, NULL, arg, st, -1, -1);
		return;
	}
	/* Saved even when every partition is in already: this may be the
	 * retry of a call whose save failed, and the row must name them
	 * (a restart aborts what a transaction's row does not name). */
	txn_begin(t);
	for (int i = 0; i < n; i++) {
		if (add_part(t, parts[i]) < 0) {
			done_soon(s, cb, NULL, arg, ST_UNAVAILABLE, -1, -1);
			return;
		}
		st_txn_join(parts[i], t->pid, t->epoch);
	}
	txn_save(s, t, then_answer, cb, NULL, arg);
}

void st_txn_add_offsets(struct store *s, struct kstr id, int64_t producer_id,
			int16_t epoch, struct kstr group, st_done_cb cb,
			void *arg)
{
	struct txn *t = txn_get(s, id);
	enum st_status st = check(t, producer_id, epoch);
	if (st != ST_OK || group.len < 0) {
		done_soon(s, cb, NULL, arg, st != ST_OK ? st : ST_INVALID, -1,
			  -1);
		return;
	}
	txn_begin(t);
	for (int i = 0; i < t->ngroups; i++)
		if (kstr_eq(group, t->groups[i])) {
			txn_save(s, t, then_answer, cb, NULL, arg);
			return;
		}
	char **g = realloc(t->groups, (size_t)(t->ngroups + 1) * sizeof(*g));
	char *name = malloc((size_t)group.len + 1);
	if (!g || !name) {
		if (g)
			t->groups = g;
		free(name);
		done_soon(s, cb, NULL, arg, ST_UNAVAILABLE, -1, -1);
		return;
	}
	memcpy(name, group.ptr, (size_t)group.len);
	name[group.len] = '\0';
	t->groups = g;
	t->groups[t->ngroups++] = name;
	txn_save(s, t, then_answer, cb, NULL, arg);
}

/* NULL for the null string. */
static char *dup_or_null(struct kstr k)
{
	if (k.len < 0)
		return NULL;
	char *c = malloc((size_t)k.len + 1);
	if (c) {
		memcpy(c, k.ptr, (size_t)k.len);
		c[k.len] = '\0';
	}
	return c;
}

void st_txn_commit_offsets(struct store *s, struct kstr id, int64_t producer_id,
			   int16_t epoch, struct kstr group,
			   const struct st_offset_commit *c, int n,
			   st_done_cb cb, void *arg)
{
	struct txn *t = txn_get(s, id);
	enum st_status st = check(t, producer_id, epoch);
	if (st == ST_OK && t->state != TX_ONGOING)
		st = ST_TXN_STATE;
	if (st != ST_OK) {
		done_soon(s, cb, NULL, arg, st, -1, -1);
		return;
	}
	for (int i = 0; i < n; i++) {
		struct txn_offset *o = NULL;
		for (int j = 0; j < t->noffs; j++)
			if (kstr_eq(group, t->offs[j].group) &&
			    t->offs[j].topic == c[i].topic &&
			    t->offs[j].partition == c[i].partition)
				o = &t->offs[j];
		if (!o) {
			struct txn_offset *no = realloc(
				t->offs, (size_t)(t->noffs + 1) * sizeof(*no));
			if (!no)
				break;
			t->offs = no;
			o = &t->offs[t->noffs++];
			memset(o, 0, sizeof(*o));
			o->group = dup_or_null(group);
			o->topic = c[i].topic;
			o->partition = c[i].partition;
		}
		free(o->metadata);
		o->metadata = dup_or_null(c[i].metadata);
		o->offset = c[i].offset;
		o->leader_epoch = c[i].leader_epoch;
	}
	txn_save(s, t, then_answer, cb, NULL, arg);
}

void st_txn_end(struct store *s, struct kstr id, int64_t producer_id,
		int16_t epoch, bool commit, st_done_cb cb, void *arg)
{
	struct txn *t = txn_get(s, id);
	enum st_status st = check(t, producer_id, epoch);
	if (st != ST_OK) {
		done_soon(s, cb, NULL, arg, st, -1, -1);
		return;
	}
	if (t->state == (commit ? TX_COMPLETE_COMMIT : TX_COMPLETE_ABORT)) {
		/* A retry of an EndTxn that completed. */
		done_soon(s, cb, NULL, arg, ST_OK, -1, -1);
		return;
	}
	if (t->state != TX_ONGOING) {
		done_soon(s, cb, NULL, arg, ST_TXN_STATE, -1, -1);
		return;
	}
	txn_complete(s, t, commit, cb, arg);
}

bool st_txn_offset_pending(struct store *s, struct kstr group,
			   const struct st_topic *topic, int32_t partition)
{
	if (!s->txns)
		return false;
	for (struct txn *t = s->txns->list; t; t = t->next) {
		if (!open_state(t->state))
			continue;
		for (int i = 0; i < t->noffs; i++)
			if (t->offs[i].topic == topic &&
			    t->offs[i].partition == partition &&
			    kstr_eq(group, t->offs[i].group))
				return true;
	}
	return false;
}

bool st_txns_each(struct store *s, struct kstr id,
		  void (*fn)(void *arg, const struct st_txn_info *i), void *arg)
{
	if (!s->txns)
		return false;
	bool found = false;
	for (struct txn *t = s->txns->list; t; t = t->next) {
		if (t->pid < 0 || (id.len >= 0 && !kstr_eq(id, t->id)))
			continue;
		struct st_txn_info i = {
			.id = t->id,
			.producer_id = t->pid,
			.epoch = t->epoch,
			.state = state_names[t->state],
			.timeout_ms = t->timeout_ms,
			.start_ms = open_state(t->state) ? t->start_ms : -1,
			.parts = t->parts,
			.nparts = open_state(t->state) ? t->nparts : 0,
		};
		fn(arg, &i);
		found = true;
	}
	return found;
}

/* --- timer: timeouts, recovery, orphans -------------------------------------
 */

/*
 * A partition's open transaction that no coordinator state owns (its
 * transactional id is gone, or completed while the log lost track) would
 * hold the LSO forever: abort it.
 */
static void on_orphan_marker(void *arg, const struct st_append_result *r)
{
	(void)arg;
	(void)r;
}

static void sweep_orphans(struct store *s)
{
	for (size_t i = 0; i < s->ntopics; i++) {
		struct st_topic *tp = s->topics[i];
		for (int32_t j = 0; j < tp->npartitions; j++) {
			struct st_partition *p = tp->partitions[j];
			for (struct st_open_txn *o = p->txns; o;) {
				struct st_open_txn *next = o->next;
				bool owned = false;
				for (struct txn *t = s->txns->list; t;
				     t = t->next)
					if (t->pid == o->pid &&
					    open_state(t->state) &&
					    has_part(t, p))
						owned = true;
				if (!owned && o->first >= 0 && !o->ending)
					st_append_marker(
						s, p, o->pid,
						epoch_bump(o->epoch), false,
						on_orphan_marker, NULL);
				o = next;
			}
		}
	}
}

static void tick(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;
	(void)fd;
	(void)what;
	int64_t now = st_now_ms();
	/* Producer state (log.c) expires on this timer too: memory only, so
	 * whether Postgres answers does not matter. */
	if (now >= s->txns->next_expiry) {
		s->txns->next_expiry =
			now +
			bc_get_int("producer.id.expiration.check.interval.ms",
				   600000);
		st_expire_producers(s, now);
	}
	if (!s->writer || !pg_ready(s->txns->conn) || !pg_ready(s->writer))
		return;
	if (!s->txns->swept) {
		s->txns->swept = true;
		sweep_orphans(s);
	}
	for (struct txn *t = s->txns->list; t; t = t->next) {
		if (t->busy)
			continue;
		if (t->state == TX_PREPARE_COMMIT ||
		    t->state == TX_PREPARE_ABORT) {
			/* Found so at start-up: finish it. */
			txn_complete(s, t, t->state == TX_PREPARE_COMMIT, NULL,
				     NULL);
		} else if (t->state == TX_ONGOING &&
			   now - t->start_ms > t->timeout_ms) {
			fprintf(stderr,
				"samsa: transaction %s timed out: aborting\n",
				t->id);
			/* The new epoch fences the producer that let it
			 * lapse. */
			t->epoch = epoch_bump(t->epoch);
			txn_complete(s, t, false, NULL, NULL);
		}
	}
}

/* --- start-up and close -----------------------------------------------------
 */

static int load_row(struct store *s, const PGresult *r, int i)
{
	struct txn *t = calloc(1, sizeof(*t));
	if (!t)
		return -1;
	t->id = strdup(PQgetvalue(r, i, 0));
	t->pid = strtoll(PQgetvalue(r, i, 1), NULL, 10);
	t->prev_pid = -1;
	t->epoch = (int16_t)atoi(PQgetvalue(r, i, 2));
	const char *st = PQgetvalue(r, i, 3);
	for (int k = 0; k < 6; k++)
		if (strcmp(st, state_names[k]) == 0)
			t->state = (enum txn_state)k;
	t->timeout_ms = atoi(PQgetvalue(r, i, 4));
	t->start_ms = strtoll(PQgetvalue(r, i, 5), NULL, 10);
	t->next = s->txns->list;
	s->txns->list = t;
	if (!t->id)
		return -1;
	json_t *parts = json_loads(PQgetvalue(r, i, 6), 0, NULL);
	json_t *groups = json_loads(PQgetvalue(r, i, 7), 0, NULL);
	json_t *offs = json_loads(PQgetvalue(r, i, 8), 0, NULL);
	size_t k;
	json_t *e;
	json_array_foreach(parts, k, e)
	{
		struct st_topic *tp = topic_by_tid(
			s, (int32_t)json_integer_value(json_array_get(e, 0)));
		struct st_partition *p =
			tp ? st_partition(tp, (int32_t)json_integer_value(
						      json_array_get(e, 1)))
			   : NULL;
		if (p && add_part(t, p) == 0 && open_state(t->state))
			st_txn_join(p, t->pid, t->epoch);
	}
	json_array_foreach(groups, k, e)
	{
		char **g = realloc(t->groups,
				   (size_t)(t->ngroups + 1) * sizeof(*g));
		if (!g)
			break;
		t->groups = g;
		t->groups[t->ngroups++] = strdup(
			json_string_value(e) ? json_string_value(e) : "");
	}
	json_array_foreach(offs, k, e)
	{
		struct st_topic *tp = topic_by_tid(
			s, (int32_t)json_integer_value(json_array_get(e, 1)));
		if (!tp)
			continue;
		struct txn_offset *no =
			realloc(t->offs, (size_t)(t->noffs + 1) * sizeof(*no));
		if (!no)
			break;
		t->offs = no;
		struct txn_offset *o = &t->offs[t->noffs++];
		const char *g = json_string_value(json_array_get(e, 0));
		const char *md = json_string_value(json_array_get(e, 5));
		o->group = strdup(g ? g : "");
		o->topic = tp;
		o->partition =
			(int32_t)json_integer_value(json_array_get(e, 2));
		o->offset = json_integer_value(json_array_get(e, 3));
		o->leader_epoch =
			(int32_t)json_integer_value(json_array_get(e, 4));
		o->metadata = md ? strdup(md) : NULL;
	}
	json_decref(parts);
	json_decref(groups);
	json_decref(offs);
	return 0;
}

int st_txns_load(struct store *s, PGconn *conn, char *err, size_t errlen)
{
	s->txns = calloc(1, sizeof(*s->txns));
	if (!s->txns) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	s->txns->s = s;
	the_store = s;
	PGresult *r =
		PQexec(conn, "SELECT transactional_id, producer_id, "
			     "producer_epoch, state, timeout_ms, start_time, "
			     "partitions, groups, offsets FROM "
			     "samsa.transactions");
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "loading transactions: %s",
			 PQresultErrorMessage(r));
		PQclear(r);
		return -1;
	}
	for (int i = 0; i < PQntuples(r); i++)
		if (load_row(s, r, i) < 0) {
			PQclear(r);
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	PQclear(r);
	s->txns->conn = pg_open(s->base, s->conninfo, "txn", NULL, NULL);
	s->txns->timer = event_new(s->base, -1, EV_PERSIST, tick, s);
	if (!s->txns->conn || !s->txns->timer) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (pg_wait_ready(s->txns->conn, 10000, err, errlen) < 0)
		return -1;
	s->txns->next_expiry =
		st_now_ms() +
		bc_get_int("producer.id.expiration.check.interval.ms", 600000);
	struct timeval tv = {0, 500000};
	event_add(s->txns->timer, &tv);
	return 0;
}

void st_txns_close(struct store *s)
{
	if (!s->txns)
		return;
	if (s->txns->timer)
		event_free(s->txns->timer);
	if (s->txns->conn)
		pg_close(s->txns->conn);
	while (s->txns->list) {
		struct txn *n = s->txns->list->next;
		txn_free(s->txns->list);
		s->txns->list = n;
	}
	free(s->txns);
	s->txns = NULL;
}
