/*
 * sink: the JDBC sink task, an internal consumer applying topics to a
 * Postgres table (storage/sink.h).
 *
 * One batch at a time, of one partition: read committed records from the
 * store (tail cache, else Postgres), make rows (sink_rows.c), send the ones
 * that failed to convert to the dead letter queue (errors.tolerance=all),
 * make sure the table has their columns (describe, CREATE/ALTER), then one
 * unit of work on the target: the rows (a key's last write of the same
 * columns wins inside a batch: deletes first, then multi-row INSERT ... ON
 * CONFLICT, in rounds where a key's columns change) and the
 * partition's next offset, fenced on the offset it started from.  A batch
 * that Postgres refuses is replayed one record at a time to find the
 * record at fault; a lost connection is retried with back-off after
 * re-reading the offsets.  While a unit runs, the next batch of the same
 * partition is made and its unit queued behind it (prefetch), fenced on
 * the first one's end, so that the target never waits for samsa.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "protocol/kbuf.h"
#include "protocol/record_batch.h"
#include "storage/pgconn.h"
#include "storage/schemas.h"
#include "storage/sink.h"
#include "storage/sink_cfg.h"
#include "storage/store.h"

#define MAX_READ      (4 * 1024 * 1024)
#define MAX_INFLATE   (64 * 1024 * 1024)
#define MAX_PARAMS    30000
#define MAX_STMT_ROWS 1000
#define MAX_BACKOFF   30000
#define DISCOVER_MS   1000
/* ${source.*}: the tables of one batch (it ends at one more), and of the
 * task's cache of described tables (emptied when it would hold more) */
#define MAX_BATCH_TABLES 64
#define MAX_TABLES	 1024

struct sink_task;

/* One topic partition the task reads. */
struct skp {
	struct sink_task *t;
	char *topic;
	int32_t partition;
	int64_t pos;	/* next offset to read */
	int64_t stored; /* next_offset in samsa_sink_offsets */
	bool have_row;
	int64_t single_until; /* replay one record at a time until here */
	int64_t dlq_next;     /* those before that failed to convert went to
			       * the DLQ already */
	struct st_waiter w;
	struct skp *next;
};

struct sk_table {
	char *topic; /* or with ${source.*} the table's name */
	char *ident; /* quoted, qualified */
	bool described, exists;
	int ncols;
	char **cols, **types;
	struct sk_table *next;
};

struct cached {
	int32_t id;
	struct arena a;
	const struct sk_schema *s;
	struct cached *next;
};

struct loaded {
	char *topic;
	int32_t partition;
	int64_t offset;
	struct loaded *next;
};

/* A record for the dead letter queue. */
struct bad {
	int64_t offset, ts;
	struct kstr key, value;
	const uint8_t *hdrs;
	size_t hlen;
	int32_t hcount;
	struct sk_fault f;
};

struct batch {
	struct arena a;
	struct skp *p;
	int64_t start; /* its first offset */
	int64_t end;   /* next offset once applied */
	struct sk_row *rows;
	int32_t nrows, caprows;
	/* by_source: its rows' tables, each row's table pointing at one of
	 * them; cur: the one apply, table_for are at */
	const char *tables[MAX_BATCH_TABLES];
	int ntables, cur;
	struct bad *bad;
	int32_t nbad, capbad;
	bool single;
	bool refreshed;
	bool fail_after; /* stop once applied: fault at fail_offset */
	struct sk_fault fail;
	int64_t fail_offset;
	struct bad raw; /* single mode: the record, for the DLQ */
	bool have_raw;
	int ddl_rounds;
	bool dlq_created;
	bool sent;    /* its unit is queued on the target */
	int64_t unit; /* which, once sent: on_committed's count */
	struct kb_writer data;
	struct kb_writer scratch;
};

struct sink_task {
	struct sink_env env;
	char *name;
	struct sink_cfg c;
	struct pgconn *pg;
	bool failed, stopped, ready, initing, busy;
	bool warming; /* a read sent ahead by prefetch() is in flight */
	char *trace;
	struct skp *parts;
	struct skp *rr; /* where the next search for data starts */
	struct sk_table *tables;
	int ntables;
	struct cached *cache;
	struct loaded *loaded;
	struct event *retry_ev, *kick_ev, *disc_ev;
	int backoff_ms;
	int inflight; /* store and registry calls in flight */
	struct batch *b;
	struct batch *nb; /* the next one, parsed while b commits, its
			   * unit maybe sent behind b's (prefetch) */
	/* units queued by send_unit and come back (on_committed): they come
	 * back in order, so the count says whose outcome it is */
	int64_t units_sent, units_done;
	int64_t records, batches, dlq_records;
	int64_t rec_bytes; /* log bytes per record lately; 0: not known */
};

static void run(struct sink_task *t);
static void apply(struct sink_task *t);
static void dml(struct sink_task *t);
static int send_unit(struct sink_task *t, struct batch *b, bool ahead);
static void init_target(struct sink_task *t);
static void parse(struct sink_task *t);
static int parse_records(struct sink_task *t, struct batch *b,
			 struct st_partition *sp, bool *need_refresh, char *msg,
			 size_t msglen);
static int32_t cached_want(const struct sink_task *t);
static void task_free(struct sink_task *t);

/* --- small things ------------------------------------------------------ */

static void set_trace(struct sink_task *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_trace(struct sink_task *t, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	free(t->trace);
	t->trace = strdup(msg);
}

static void batch_free(struct batch *b)
{
	if (!b)
		return;
	arena_free(&b->a);
	kb_writer_free(&b->data);
	kb_writer_free(&b->scratch);
	free(b);
}

static void waiters_cancel(struct sink_task *t)
{
	for (struct skp *p = t->parts; p; p = p->next)
		st_wait_cancel(&p->w);
}

static void fail(struct sink_task *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct sink_task *t, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	t->failed = true;
	t->busy = false;
	set_trace(t, "%s", msg);
	fprintf(stderr, "sink %s: FAILED: %s\n", t->name, t->trace);
	waiters_cancel(t);
	batch_free(t->b);
	t->b = NULL;
	batch_free(t->nb);
	t->nb = NULL;
}

/* The task failed on a record: Connect's trace, with its exception. */
static void fail_record(struct sink_task *t, const struct skp *p,
			int64_t offset, const struct sk_fault *f)
{
	fail(t,
	     "org.apache.kafka.connect.errors.ConnectException: Tolerance "
	     "exceeded in error handler\n"
	     "Caused by: %s: %s\n"
	     "\t(stage %s, class %s, topic %s, partition %d, offset %" PRId64
	     ")",
	     f->exception, f->message, f->stage, f->class_name, p->topic,
	     p->partition, offset);
}

static void kick(struct sink_task *t)
{
	if (!t->stopped && !t->failed)
		event_active(t->kick_ev, 0, 0);
}

/* Why the target database is unreachable, or "" while it is connected. */
static const char *target_down(const struct sink_task *t)
{
	return t->pg ? pg_last_error(t->pg) : "";
}

/* The target is unreachable or refused for a passing reason: try again
 * later, from the stored offsets. */
static void retry_later(struct sink_task *t, const char *why)
{
	t->ready = false;
	t->busy = false;
	batch_free(t->b);
	t->b = NULL;
	batch_free(t->nb);
	t->nb = NULL;
	/* A query sent while the target is down only says "not connected";
	 * libpq's own message says why. */
	if (*target_down(t))
		why = target_down(t);
	set_trace(t, "retrying in %d ms: %s", t->backoff_ms, why);
	fprintf(stderr, "sink %s: %s\n", t->name, t->trace);
	struct timeval tv = {t->backoff_ms / 1000,
			     (t->backoff_ms % 1000) * 1000};
	evtimer_add(t->retry_ev, &tv);
	t->backoff_ms *= 2;
	if (t->backoff_ms > MAX_BACKOFF)
		t->backoff_ms = MAX_BACKOFF;
}

static bool transient(const char *sqlstate)
{
	if (!sqlstate || !*sqlstate)
		return true; /* connection lost, not connected ... */
	return strncmp(sqlstate, "08", 2) == 0 ||
	       strncmp(sqlstate, "57", 2) == 0 ||
	       strncmp(sqlstate, "53", 2) == 0 ||
	       strncmp(sqlstate, "40", 2) == 0 ||
	       strcmp(sqlstate, "55P03") == 0;
}

/* The store's partition for p, or NULL (topic gone or not there yet). */
static struct st_partition *part_of(struct sink_task *t, const struct skp *p)
{
	struct st_topic *st = st_topic_find(t->env.store, kstr_c(p->topic));
	return st ? st_partition(st, p->partition) : NULL;
}

/* --- partitions -------------------------------------------------------- */

static struct loaded *loaded_find(struct sink_task *t, const char *topic,
				  int32_t partition)
{
	for (struct loaded *l = t->loaded; l; l = l->next)
		if (l->partition == partition && strcmp(l->topic, topic) == 0)
			return l;
	return NULL;
}

static void on_wake(void *arg)
{
	struct skp *p = arg;
	waiters_cancel(p->t);
	kick(p->t);
}

static void part_reset(struct sink_task *t, struct skp *p)
{
	struct loaded *l = loaded_find(t, p->topic, p->partition);
	p->have_row = l != NULL;
	p->stored = l ? l->offset : -1;
	p->pos = l ? l->offset : 0;
	p->single_until = 0;
}

static void add_part(struct sink_task *t, const char *topic, int32_t idx)
{
	for (struct skp *p = t->parts; p; p = p->next)
		if (p->partition == idx && strcmp(p->topic, topic) == 0)
			return;
	struct skp *p = calloc(1, sizeof(*p));
	if (!p || !(p->topic = strdup(topic))) {
		free(p);
		return;
	}
	p->t = t;
	p->partition = idx;
	p->w.fn = on_wake;
	p->w.arg = p;
	part_reset(t, p);
	struct skp **tail = &t->parts;
	while (*tail)
		tail = &(*tail)->next;
	*tail = p;
}

static bool wanted(const struct sink_task *t, const char *topic)
{
	if (t->c.has_regex)
		return regexec(&t->c.regex, topic, 0, NULL, 0) == 0;
	for (char **s = t->c.topics; s && *s; s++)
		if (strcmp(*s, topic) == 0)
			return true;
	return false;
}

/* Adds the partitions of the wanted topics that exist now. */
static void discover(struct sink_task *t)
{
	if (t->c.has_regex) {
		size_t n = st_topic_count(t->env.store);
		for (size_t i = 0; i < n; i++) {
			struct st_topic *st = st_topic_at(t->env.store, i);
			if (st->internal || !wanted(t, st->name))
				continue;
			for (int32_t k = 0; k < st->npartitions; k++)
				add_part(t, st->name, k);
		}
		return;
	}
	for (char **s = t->c.topics; s && *s; s++) {
		struct st_topic *st = st_topic_find(t->env.store, kstr_c(*s));
		for (int32_t k = 0; st && k < st->npartitions; k++)
			add_part(t, *s, k);
	}
}

static void on_discover(evutil_socket_t fd, short what, void *arg)
{
	struct sink_task *t = arg;
	(void)fd;
	(void)what;
	if (t->stopped || t->failed)
		return;
	if (!t->ready && *target_down(t))
		set_trace(t,
			  "cannot connect to the target database, retrying "
			  "with back-off: %s",
			  target_down(t));
	else if (!t->ready && !t->trace)
		set_trace(t, "connecting to the target database");
	if (t->ready) {
		struct skp *before = t->parts;
		int n0 = 0, n1 = 0;
		for (struct skp *p = before; p; p = p->next)
			n0++;
		discover(t);
		for (struct skp *p = t->parts; p; p = p->next)
			n1++;
		if (n1 != n0)
			kick(t);
	}
	struct timeval tv = {DISCOVER_MS / 1000, (DISCOVER_MS % 1000) * 1000};
	evtimer_add(t->disc_ev, &tv);
}

/* --- the target's offsets ---------------------------------------------- */

static void loaded_free(struct sink_task *t)
{
	while (t->loaded) {
		struct loaded *l = t->loaded;
		t->loaded = l->next;
		free(l->topic);
		free(l);
	}
}

static void table_clear(struct sk_table *tab);

static void tables_free(struct sink_task *t)
{
	while (t->tables) {
		struct sk_table *tab = t->tables;
		t->tables = tab->next;
		table_clear(tab);
		free(tab->topic);
		free(tab->ident);
		free(tab);
	}
	t->ntables = 0;
}

static void tables_forget(struct sink_task *t)
{
	for (struct sk_table *tab = t->tables; tab; tab = tab->next)
		tab->described = false;
}

/* The stored offsets; whether the unit held is up to on_init_done. */
static void on_offsets(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct sink_task *t = arg;
	(void)sqlstate;
	(void)err;
	if (t->stopped || t->failed || !res)
		return;
	loaded_free(t);
	for (int i = 0; i < PQntuples(res); i++) {
		struct loaded *l = calloc(1, sizeof(*l));
		if (!l || !(l->topic = strdup(PQgetvalue(res, i, 0)))) {
			free(l);
			break;
		}
		l->partition = atoi(PQgetvalue(res, i, 1));
		l->offset = strtoll(PQgetvalue(res, i, 2), NULL, 10);
		l->next = t->loaded;
		t->loaded = l;
	}
}

static void on_init_done(void *arg, const PGresult *res, const char *err,
			 const char *sqlstate)
{
	struct sink_task *t = arg;
	(void)res;
	(void)sqlstate;
	if (t->stopped)
		return;
	t->initing = false;
	if (t->failed)
		return;
	if (err) {
		retry_later(t, err);
		return;
	}
	for (struct skp *p = t->parts; p; p = p->next)
		part_reset(t, p);
	tables_forget(t);
	t->ready = true;
	discover(t);
	kick(t);
}

static void init_target(struct sink_task *t)
{
	if (t->initing || t->stopped || t->failed)
		return;
	t->initing = true;
	t->ready = false;
	const char *v[1] = {t->name};
	pg_query(t->pg,
		 "CREATE TABLE IF NOT EXISTS samsa_sink_offsets ("
		 "connector text NOT NULL, topic text NOT NULL, "
		 "\"partition\" int NOT NULL, next_offset bigint NOT NULL, "
		 "PRIMARY KEY (connector, topic, \"partition\"))",
		 0, NULL, NULL, NULL, false, NULL, NULL);
	pg_query(t->pg,
		 "SELECT topic, \"partition\", next_offset FROM "
		 "samsa_sink_offsets WHERE connector = $1",
		 1, v, NULL, NULL, false, on_offsets, t);
	pg_sync_cb(t->pg, on_init_done, t);
}

static void on_pg_up(void *arg)
{
	struct sink_task *t = arg;
	if (t->stopped || t->failed || t->ready || t->initing)
		return;
	evtimer_del(t->retry_ev);
	init_target(t);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
	struct sink_task *t = arg;
	(void)fd;
	(void)what;
	if (t->stopped || t->failed)
		return;
	if (!t->ready)
		init_target(t);
	else
		run(t);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	run(arg);
}

/* Store and registry callbacks: false when the task is gone. */
static bool back(struct sink_task *t);

/* --- reading ----------------------------------------------------------- */

static const struct sk_schema *lookup(void *arg, int32_t id)
{
	struct sink_task *t = arg;
	for (struct cached *c = t->cache; c; c = c->next)
		if (c->id == id)
			return c->s;
	if (!t->env.schemas)
		return NULL;
	const struct sr_state *st = sr_state(t->env.schemas);
	size_t lo = 0, hi = st->nschemas;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (st->schemas[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == st->nschemas || st->schemas[lo]->id != id)
		return NULL;
	const struct sr_schema *sc = st->schemas[lo];
	if (strcmp(sc->type, "AVRO") != 0)
		return NULL;
	struct cached *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	char err[256];
	c->id = id;
	c->s = sk_avro_parse(&c->a, sc->schema, err, sizeof(err));
	if (!c->s)
		fprintf(stderr, "sink %s: schema %d: %s\n", t->name, id, err);
	c->next = t->cache;
	t->cache = c;
	return c->s;
}

static void on_refreshed(void *arg, enum sr_status st, const char *msg)
{
	struct sink_task *t = arg;
	(void)st;
	(void)msg;
	if (!back(t))
		return;
	parse(t);
}

static void on_read(void *arg, enum st_status st, const uint8_t *data,
		    size_t len)
{
	struct sink_task *t = arg;
	if (!back(t))
		return;
	if (st != ST_OK) {
		/* The store's own Postgres: try again soon. */
		batch_free(t->b);
		t->b = NULL;
		t->busy = false;
		set_trace(t, "reading the log failed, retrying");
		struct timeval tv = {1, 0};
		evtimer_add(t->retry_ev, &tv);
		return;
	}
	kb_write_raw(&t->b->data, data, len);
	parse(t);
}

/*
 * What to take from the tail cache: about what one batch uses (copying
 * MAX_READ for batch.size records was a tenth of the CPU).  From Postgres
 * st_read takes MAX_READ: the store keeps it for the next batches.
 */
static int32_t cached_want(const struct sink_task *t)
{
	int32_t want = MAX_READ;
	if (t->rec_bytes > 0) {
		int64_t w = 2 * (int64_t)t->c.batch_size * t->rec_bytes + 65536;
		if (w < want)
			want = (int32_t)w;
	}
	return want;
}

static void run(struct sink_task *t)
{
	if (t->stopped || t->failed || !t->ready || t->busy)
		return;
	discover(t);
	struct skp *p = t->rr ? t->rr : t->parts, *found = NULL;
	for (struct skp *q = p; q;) {
		struct st_partition *sp = part_of(t, q);
		if (sp) {
			if (q->pos < st_log_start(sp))
				q->pos = st_log_start(sp);
			if (q->pos > st_high_watermark(sp)) {
				/* Out of range (the topic was made anew):
				 * from the start, as a sink's consumer with
				 * auto.offset.reset=earliest would. */
				fprintf(stderr,
					"sink %s: offset %" PRId64
					" of %s-%d is past the log end %" PRId64
					": starting over at %" PRId64 "\n",
					t->name, q->pos, q->topic, q->partition,
					st_high_watermark(sp),
					st_log_start(sp));
				q->pos = st_log_start(sp);
				q->dlq_next = 0;
			}
			if (q->pos < st_last_stable(sp)) {
				found = q;
				break;
			}
		}
		q = q->next ? q->next : t->parts;
		if (q == p)
			break;
	}
	if (!found) {
		for (struct skp *q = t->parts; q; q = q->next) {
			struct st_partition *sp = part_of(t, q);
			if (sp && !q->w.p)
				st_wait(sp, &q->w);
		}
		return;
	}
	t->rr = found->next;
	/* no batch holds a schema of it now */
	sk_jcache_trim(t->c.jcache);
	struct batch *b = calloc(1, sizeof(*b));
	if (!b) {
		retry_later(t, "out of memory");
		return;
	}
	b->p = found;
	b->start = b->end = found->pos;
	b->single = found->single_until > found->pos;
	t->b = b;
	t->busy = true;
	struct st_partition *sp = part_of(t, found);
	long n = st_read_cached(sp, found->pos, cached_want(t), &b->data);
	if (n >= 0) {
		parse(t);
		return;
	}
	if (t->warming) {
		/* what prefetch() asked the store for comes first: on_warmed
		 * runs this again */
		batch_free(b);
		t->b = NULL;
		t->busy = false;
		return;
	}
	t->inflight++;
	st_read(t->env.store, sp, found->pos, MAX_READ, on_read, t);
}

/* Aborted transactions of the range being read (Kafka's consumer rule). */
struct abort_txn {
	int64_t pid, first;
};
struct abort_list {
	struct abort_txn *a;
	int n, cap;
	bool failed;
};

static void add_abort(void *arg, int64_t pid, int64_t first)
{
	struct abort_list *l = arg;
	if (l->n == l->cap) {
		int cap = l->cap ? l->cap * 2 : 16;
		struct abort_txn *g = realloc(l->a, (size_t)cap * sizeof(*g));
		if (!g) {
			l->failed = true;
			return;
		}
		l->a = g;
		l->cap = cap;
	}
	l->a[l->n++] = (struct abort_txn){pid, first};
}

static int by_first(const void *x, const void *y)
{
	const struct abort_txn *a = x, *b = y;
	return a->first < b->first ? -1 : a->first > b->first;
}

struct pctx {
	struct sink_task *t;
	struct batch *b;
	int64_t base, base_ts, max_ts, lso;
	bool log_append;
	int consumed, limit;
	bool stop, need_refresh;
};

static int copy_kstr(struct arena *a, struct kstr in, struct kstr *out)
{
	if (in.len < 0) {
		*out = KSTR_NULL;
		return 0;
	}
	char *p = arena_alloc(a, (size_t)in.len + 1);
	if (!p)
		return -1;
	memcpy(p, in.ptr, (size_t)in.len);
	*out = (struct kstr){p, in.len};
	return 0;
}

static int keep_raw(struct arena *a, const struct rb_record *rec, int64_t off,
		    int64_t ts, struct bad *o)
{
	memset(o, 0, sizeof(*o));
	o->offset = off;
	o->ts = ts;
	o->hcount = rec->HeaderCount;
	o->hlen = rec->HeadersLen;
	uint8_t *h = arena_alloc(a, rec->HeadersLen + 1);
	if (!h)
		return -1;
	if (rec->HeadersLen)
		memcpy(h, rec->Headers, rec->HeadersLen);
	o->hdrs = h;
	return copy_kstr(a, rec->Key, &o->key) < 0 ||
			       copy_kstr(a, rec->Value, &o->value) < 0
		       ? -1
		       : 0;
}

static int on_record(void *arg, const struct rb_record *rec)
{
	struct pctx *x = arg;
	struct batch *b = x->b;
	struct sink_task *t = x->t;
	int64_t off = x->base + rec->OffsetDelta;
	if (off < b->start)
		return 0;
	if (off >= x->lso || x->consumed >= x->limit) {
		x->stop = true;
		return 1;
	}
	int64_t ts =
		x->log_append ? x->max_ts : x->base_ts + rec->TimestampDelta;
	struct sk_row row;
	struct sk_fault f;
	if (b->single && keep_raw(&b->a, rec, off, ts, &b->raw) == 0)
		b->have_raw = true;
	if (sink_row(&t->c, &b->a, b->p->topic, b->p->partition, off, ts,
		     (const uint8_t *)rec->Key.ptr, rec->Key.len,
		     (const uint8_t *)rec->Value.ptr, rec->Value.len, lookup, t,
		     &row, &f) == 0) {
		/* ${source.*}: a batch holds rows of several tables, each
		 * written by its statements in the batch's one unit; a record
		 * of one table too many ends it */
		if (row.op != 's' && row.table) {
			int k = 0;
			while (k < b->ntables &&
			       strcmp(b->tables[k], row.table) != 0)
				k++;
			if (k == MAX_BATCH_TABLES) {
				x->stop = true;
				return 1;
			}
			if (k == b->ntables)
				b->tables[b->ntables++] = row.table;
			row.table = b->tables[k];
		}
		x->consumed++;
		b->end = off + 1;
		if (row.op == 's')
			return 0;
		if (b->nrows == b->caprows) {
			struct sk_row *g = arena_grow(&b->a, b->rows, b->nrows,
						      &b->caprows, sizeof(*g));
			if (!g) {
				x->stop = true;
				return 1;
			}
			b->rows = g;
		}
		b->rows[b->nrows++] = row;
		return 0;
	}
	if (f.schema_missing && !b->refreshed && t->env.schemas) {
		x->need_refresh = true;
		x->stop = true;
		return 1;
	}
	if (!t->c.tolerate_all) {
		b->fail_after = true;
		b->fail = f;
		b->fail_offset = off;
		x->stop = true;
		return 1;
	}
	x->consumed++;
	b->end = off + 1;
	/* a replay (one at a time, or after a retry) meets it again */
	if (off < b->p->dlq_next)
		return 0;
	fprintf(stderr, "sink %s: skipping %s-%d@%" PRId64 ": %s\n", t->name,
		b->p->topic, b->p->partition, off, f.message);
	if (!t->c.dlq_topic)
		return 0;
	if (b->nbad == b->capbad) {
		struct bad *g = arena_grow(&b->a, b->bad, b->nbad, &b->capbad,
					   sizeof(*g));
		if (!g) {
			x->stop = true;
			return 1;
		}
		b->bad = g;
	}
	struct bad *o = &b->bad[b->nbad];
	if (keep_raw(&b->a, rec, off, ts, o) < 0) {
		x->stop = true;
		return 1;
	}
	o->f = f;
	b->nbad++;
	return 0;
}

static void dlq(struct sink_task *t);

/*
 * b's rows (and records for the DLQ) from b->data, from b->start up to
 * batch.size records below the last stable offset of sp.  Returns 0, or -1
 * with msg set when the task cannot go on (out of memory, a corrupt batch).
 */
static int parse_records(struct sink_task *t, struct batch *b,
			 struct st_partition *sp, bool *need_refresh, char *msg,
			 size_t msglen)
{
	int64_t lso = st_last_stable(sp);
	struct abort_list al = {0};
	*need_refresh = false;
	st_aborted_txns(sp, b->start, lso, add_abort, &al);
	if (al.failed) {
		free(al.a);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	if (al.n > 1)
		qsort(al.a, (size_t)al.n, sizeof(*al.a), by_first);
	/* producers inside an aborted transaction at this point */
	int64_t *active = al.n ? malloc((size_t)al.n * sizeof(*active)) : NULL;
	if (al.n && !active) {
		/* without it aborted records would be applied */
		free(al.a);
		snprintf(msg, msglen, "out of memory");
		return -1;
	}
	int nactive = 0;
	int next_abort = 0;
	struct pctx x = {.t = t,
			 .b = b,
			 .lso = lso,
			 .limit = b->single ? 1 : t->c.batch_size};
	const uint8_t *d = b->data.buf;
	size_t len = b->data.len, at = 0;
	while (at + RB_HEADER_SIZE <= len && !x.stop) {
		struct rb_header h;
		rb_read_header(d + at, len - at, &h);
		size_t total = RB_LOG_OVERHEAD + (size_t)h.BatchLength;
		if (h.BatchLength < 0 || at + total > len)
			break;
		const uint8_t *bp = d + at;
		at += total;
		int64_t last = h.BaseOffset + h.LastOffsetDelta;
		if (last < b->start)
			continue;
		if (h.BaseOffset >= lso)
			break;
		while (next_abort < al.n && al.a[next_abort].first <= last)
			active[nactive++] = al.a[next_abort++].pid;
		bool in_aborted = false;
		for (int i = 0; i < nactive; i++)
			if (active[i] == h.ProducerId)
				in_aborted = true;
		if (h.Attributes & RB_ATTR_CONTROL) {
			for (int i = 0; i < nactive; i++)
				if (active[i] == h.ProducerId)
					active[i--] = active[--nactive];
			if (x.consumed < x.limit)
				b->end = last + 1;
			continue;
		}
		/* Nothing to sink: aborted, or a batch compaction emptied
		 * (kept for its producer). */
		if (((h.Attributes & RB_ATTR_TRANSACTIONAL) && in_aborted) ||
		    h.RecordCount == 0) {
			if (x.consumed < x.limit)
				b->end = last + 1;
			continue;
		}
		if (h.LastOffsetDelta >= 0)
			t->rec_bytes = (int64_t)total /
				       ((int64_t)h.LastOffsetDelta + 1);
		x.base = h.BaseOffset;
		x.base_ts = h.BaseTimestamp;
		x.max_ts = h.MaxTimestamp;
		x.log_append = h.Attributes & RB_ATTR_LOG_APPEND_TIME;
		char err[200];
		if (rb_foreach_record(bp, total, &b->scratch, MAX_INFLATE,
				      on_record, &x, err, sizeof(err)) < 0 &&
		    !x.stop) {
			free(active);
			free(al.a);
			snprintf(msg, msglen,
				 "reading %s-%d at offset %" PRId64 ": %s",
				 b->p->topic, b->p->partition, h.BaseOffset,
				 err);
			return -1;
		}
	}
	free(active);
	free(al.a);
	*need_refresh = x.need_refresh;
	return 0;
}

static void parse(struct sink_task *t)
{
	struct batch *b = t->b;
	struct st_partition *sp = part_of(t, b->p);
	if (!sp) {
		batch_free(b);
		t->b = NULL;
		t->busy = false;
		return;
	}
	bool need_refresh;
	char msg[300];
	if (parse_records(t, b, sp, &need_refresh, msg, sizeof(msg)) < 0) {
		fail(t, "%s", msg);
		return;
	}
	if (need_refresh) {
		arena_free(&b->a);
		b->rows = NULL;
		b->nrows = b->caprows = 0;
		b->ntables = b->cur = 0;
		b->bad = NULL;
		b->nbad = b->capbad = 0;
		b->have_raw = false;
		b->end = b->start;
		b->refreshed = true;
		t->inflight++;
		sr_refresh(t->env.schemas, false, on_refreshed, t);
		return;
	}
	if (b->end == b->start && !b->fail_after) {
		/* Nothing whole to read yet (the log moved meanwhile). */
		batch_free(b);
		t->b = NULL;
		t->busy = false;
		struct timeval tv = {0, 100000};
		evtimer_add(t->retry_ev, &tv);
		return;
	}
	if (b->nbad)
		dlq(t);
	else
		apply(t);
}

/* --- the dead letter queue --------------------------------------------- */

/* The dead letter queue could not be written or made: for good, or
 * (passing: samsa's own Postgres is away) the batch again later. */
static void dlq_failed(struct sink_task *t, bool passing, const char *what,
		       const char *msg)
{
	char why[512];
	snprintf(why, sizeof(why), "%s the dead letter queue %s failed: %s",
		 what, t->c.dlq_topic, msg ? msg : "storage error");
	if (passing)
		retry_later(t, why);
	else
		fail(t, "%s", why);
}

static void on_dlq_appended(void *arg, const struct st_append_result *r)
{
	struct sink_task *t = arg;
	if (!back(t))
		return;
	if (r->status != ST_OK) {
		dlq_failed(t, r->status == ST_UNAVAILABLE, "writing to",
			   r->message);
		return;
	}
	struct batch *b = t->b;
	t->dlq_records += b->nbad;
	if (b->bad[b->nbad - 1].offset >= b->p->dlq_next)
		b->p->dlq_next = b->bad[b->nbad - 1].offset + 1;
	apply(t);
}

static void on_dlq_created(void *arg, enum st_status st, const char *msg)
{
	struct sink_task *t = arg;
	if (!back(t))
		return;
	if (st != ST_OK && st != ST_EXISTS) {
		dlq_failed(t, st == ST_UNAVAILABLE, "creating", msg);
		return;
	}
	t->b->dlq_created = true;
	dlq(t);
}

/* Appends a record's own headers (as on the wire) to keys/values. */
static int own_headers(const struct bad *o, struct kstr *keys,
		       struct kstr *vals, int max)
{
	struct kb_reader r;
	kb_reader_init(&r, o->hdrs, o->hlen);
	int n = 0;
	for (int32_t i = 0; i < o->hcount && n < max; i++) {
		struct kstr k, v;
		kb_read_varbytes(&r, &k);
		kb_read_varbytes(&r, &v);
		if (!kb_reader_ok(&r) || k.len < 0)
			break;
		keys[n] = k;
		vals[n++] = v;
	}
	return n;
}

static void dlq(struct sink_task *t)
{
	struct batch *b = t->b;
	struct st_topic *st =
		st_topic_find(t->env.store, kstr_c(t->c.dlq_topic));
	if (!st) {
		if (b->dlq_created) {
			fail(t, "the dead letter queue %s vanished",
			     t->c.dlq_topic);
			return;
		}
		t->inflight++;
		st_create_topic(t->env.store, kstr_c(t->c.dlq_topic), 1, NULL,
				0, on_dlq_created, t);
		return;
	}
	enum { OWN = 32, CTX = 10 };
	struct rb_new_record *recs =
		arena_alloc(&b->a, (size_t)b->nbad * sizeof(*recs));
	struct kstr *hk =
		arena_alloc(&b->a, (size_t)b->nbad * (OWN + CTX) * sizeof(*hk));
	struct kstr *hv =
		arena_alloc(&b->a, (size_t)b->nbad * (OWN + CTX) * sizeof(*hv));
	if (!recs || !hk || !hv) {
		fail(t, "out of memory");
		return;
	}
	for (int i = 0; i < b->nbad; i++) {
		struct bad *o = &b->bad[i];
		struct kstr *k = hk + i * (OWN + CTX),
			    *v = hv + i * (OWN + CTX);
		int n = own_headers(o, k, v, OWN);
		if (t->c.dlq_headers) {
			const char *names[CTX] = {
				"__connect.errors.topic",
				"__connect.errors.partition",
				"__connect.errors.offset",
				"__connect.errors.connector.name",
				"__connect.errors.task.id",
				"__connect.errors.stage",
				"__connect.errors.class.name",
				"__connect.errors.exception.class.name",
				"__connect.errors.exception.message",
				"__connect.errors.exception.stacktrace"};
			const char *vals[CTX] = {
				b->p->topic,
				arena_printf(&b->a, "%d", b->p->partition),
				arena_printf(&b->a, "%" PRId64, o->offset),
				t->name,
				"0",
				o->f.stage,
				o->f.class_name,
				o->f.exception,
				o->f.message,
				arena_printf(&b->a, "%s: %s\n\tat %s",
					     o->f.exception, o->f.message,
					     o->f.class_name)};
			for (int j = 0; j < CTX; j++) {
				k[n] = kstr_c(names[j]);
				v[n++] = kstr_c(vals[j] ? vals[j] : "");
			}
		}
		recs[i] = (struct rb_new_record){
			.Timestamp = o->ts,
			.Key = o->key,
			.Value = o->value,
			.HeaderCount = n,
			.HeaderKeys = k,
			.HeaderValues = v,
		};
	}
	struct kb_writer w;
	kb_writer_init(&w);
	char err[160];
	if (rb_build(&w, 0, 0, -1, -1, -1, recs, b->nbad, err, sizeof(err)) <
		    0 ||
	    !kb_writer_ok(&w)) {
		kb_writer_free(&w);
		fail(t, "building a dead letter batch: %s", err);
		return;
	}
	t->inflight++;
	st_append(t->env.store, st_partition(st, 0), w.buf, w.len,
		  on_dlq_appended, t);
	kb_writer_free(&w);
}

/* --- the table --------------------------------------------------------- */

static void tables_free(struct sink_task *t);

/* Whether row is of the table b is at (b->cur). */
static bool row_in(const struct batch *b, const struct sk_row *row)
{
	return !b->ntables || row->table == b->tables[b->cur];
}

/*
 * The table of b's rows: its topic's, or with ${source.*} b->tables[b->cur].
 * Adding one to a full cache empties it first (the names are the
 * producer's): a table returned before may be gone then, so none is kept
 * across a call.
 */
static struct sk_table *table_for(struct sink_task *t, const struct batch *b)
{
	const char *table = b->ntables ? b->tables[b->cur] : NULL;
	const char *topic = table ? table : b->p->topic;
	for (struct sk_table *tab = t->tables; tab; tab = tab->next)
		if (strcmp(tab->topic, topic) == 0)
			return tab;
	if (t->ntables >= MAX_TABLES)
		tables_free(t);
	struct sk_table *tab = calloc(1, sizeof(*tab));
	if (!tab)
		return NULL;
	char schema[256], name[256];
	if (table)
		sink_cfg_split(table, schema, sizeof(schema), name,
			       sizeof(name));
	else
		sink_cfg_table(&t->c, topic, schema, sizeof(schema), name,
			       sizeof(name));
	struct arena a = {0};
	char *id = sk_ident(&a, name, t->c.quote);
	if (schema[0]) {
		char *sid = sk_ident(&a, schema, t->c.quote);
		id = arena_printf(&a, "%s.%s", sid, id);
	}
	tab->ident = id ? strdup(id) : NULL;
	arena_free(&a);
	tab->topic = strdup(topic);
	if (!tab->ident || !tab->topic) {
		free(tab->ident);
		free(tab->topic);
		free(tab);
		return NULL;
	}
	tab->next = t->tables;
	t->tables = tab;
	t->ntables++;
	return tab;
}

static void table_clear(struct sk_table *tab)
{
	for (int i = 0; i < tab->ncols; i++) {
		free(tab->cols[i]);
		free(tab->types[i]);
	}
	free(tab->cols);
	free(tab->types);
	tab->cols = tab->types = NULL;
	tab->ncols = 0;
}

/* The table's column named like the field, or -1. */
static int col_index(const struct sink_task *t, const struct sk_table *tab,
		     const char *name)
{
	for (int i = 0; i < tab->ncols; i++)
		if (t->c.quote ? strcmp(tab->cols[i], name) == 0
			       : strcasecmp(tab->cols[i], name) == 0)
			return i;
	return -1;
}

static void on_described(void *arg, const PGresult *res, const char *err,
			 const char *sqlstate)
{
	struct sink_task *t = arg;
	if (t->stopped || t->failed || !t->b)
		return;
	if (!res) {
		if (transient(sqlstate))
			retry_later(t, err);
		else
			fail(t, "describing the table failed: %s", err);
		return;
	}
	struct sk_table *tab = table_for(t, t->b);
	if (!tab) {
		fail(t, "out of memory");
		return;
	}
	table_clear(tab);
	int n = PQntuples(res);
	tab->exists = n > 0 && PQgetvalue(res, 0, 0)[0] == 't';
	tab->cols = calloc((size_t)n + 1, sizeof(char *));
	tab->types = calloc((size_t)n + 1, sizeof(char *));
	bool oom = !tab->cols || !tab->types;
	for (int i = 0; i < n && !oom; i++) {
		if (PQgetisnull(res, i, 1))
			continue;
		char *col = strdup(PQgetvalue(res, i, 1));
		char *type = strdup(PQgetvalue(res, i, 2));
		if (!col || !type) {
			free(col);
			free(type);
			oom = true;
			break;
		}
		tab->cols[tab->ncols] = col;
		tab->types[tab->ncols++] = type;
	}
	if (oom) {
		table_clear(tab);
		fail(t, "out of memory");
		return;
	}
	tab->described = true;
	apply(t);
}

/*
 * The columns' types without their modifiers (varchar, not varchar(5)):
 * the statements cast to them, and a cast to varchar(5), char(3) or bit(3)
 * cuts or pads a value that assignment to the column refuses ("value too
 * long"), as it refuses Confluent's.  Not format_type(oid, NULL): that
 * writes char(n) as "character", which is char(1).
 */
static void describe(struct sink_task *t, struct sk_table *tab)
{
	const char *v[1] = {tab->ident};
	pg_query(t->pg,
		 "SELECT c.oid IS NOT NULL, a.attname::text, "
		 "format_type(a.atttypid, -1) "
		 "FROM (SELECT to_regclass($1) AS oid) c "
		 "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND "
		 "a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
		 1, v, NULL, NULL, false, on_described, t);
	pg_sync(t->pg);
}

static void on_ddl(void *arg, const PGresult *res, const char *err,
		   const char *sqlstate)
{
	struct sink_task *t = arg;
	(void)res;
	if (t->stopped || t->failed || !t->b)
		return;
	struct sk_table *tab = table_for(t, t->b);
	if (!tab) {
		fail(t, "out of memory");
		return;
	}
	tab->described = false;
	if (err) {
		if (transient(sqlstate) || strcmp(sqlstate, "23505") == 0 ||
		    strcmp(sqlstate, "42P07") == 0)
			retry_later(t, err);
		else
			fail(t, "altering table %s failed: %s", tab->ident,
			     err);
		return;
	}
	apply(t);
}

static bool col_optional(const struct sk_col *c)
{
	return !c->s || c->s->optional || c->s->has_default ||
	       sk_plain(c->s)->type == SK_NONE;
}

static const char *col_type(const struct sk_col *c)
{
	const char *ty = c->s ? sk_sql_type(c->s) : NULL;
	return ty ? ty : "TEXT";
}

/* The text of the column's default (JsonConverter's), or NULL: a DEFAULT
 * of the column made for it, as Confluent's writeColumnSpec. */
static const char *col_default(struct arena *a, const struct sk_col *c)
{
	const char *text = NULL;
	char err[200];
	if (!c->s || !c->s->def ||
	    sk_sql_text(a, c->s->def, &text, err, sizeof(err)) < 0)
		return NULL;
	return text;
}

/* CREATE or ALTER the table for the batch's rows; false when none was
 * needed (or the task failed). */
static bool ddl(struct sink_task *t, struct sk_table *tab)
{
	struct batch *b = t->b;
	struct arena *a = &b->a;
	int cap = 16, n = 0, nkey = 0;
	const struct sk_col **need = malloc((size_t)cap * sizeof(*need));
	if (!need) {
		fail(t, "out of memory");
		return true;
	}
	/* every column the rows use, key columns first, in first-seen order;
	 * a key's type from a write before a delete (a tombstone's string key
	 * has no value field to take its type from) */
	for (int pass = 0; pass < 3; pass++)
		for (int r = 0; r < b->nrows; r++) {
			const struct sk_row *row = &b->rows[r];
			if (!row_in(b, row) ||
			    (pass < 2 && (row->op == 'd') != (pass == 1)))
				continue;
			int from = pass == 2 ? row->nkey : 0;
			int to = pass == 2 ? row->nkey + row->nval : row->nkey;
			for (int i = from; i < to; i++) {
				const struct sk_col *c = &row->cols[i];
				if (tab->exists &&
				    col_index(t, tab, c->name) >= 0)
					continue;
				bool dup = false;
				for (int j = 0; j < n && !dup; j++)
					dup = strcmp(need[j]->name, c->name) ==
					      0;
				if (dup)
					continue;
				if (n == cap) {
					cap *= 2;
					const struct sk_col **g = realloc(
						need, (size_t)cap * sizeof(*g));
					if (!g) {
						free(need);
						fail(t, "out of memory");
						return true;
					}
					need = g;
				}
				need[n++] = c;
				if (pass < 2)
					nkey++;
			}
		}
	if (n == 0 && tab->exists) {
		free(need);
		return false;
	}
	if (++b->ddl_rounds > 3) {
		fail(t, "table %s still lacks column %s after altering it",
		     tab->ident, n ? need[0]->name : "?");
		free(need);
		return true;
	}
	if (!tab->exists) {
		if (!t->c.auto_create) {
			free(need);
			fail(t,
			     "org.apache.kafka.connect.errors.ConnectException:"
			     " "
			     "Table %s is missing and auto-creation is "
			     "disabled",
			     tab->ident);
			return true;
		}
		const char **cols =
			arena_alloc(a, (size_t)(n + 1) * sizeof(char *));
		const char **types =
			arena_alloc(a, (size_t)(n + 1) * sizeof(char *));
		const char **defs =
			arena_alloc(a, (size_t)(n + 1) * sizeof(char *));
		bool *nn = arena_alloc(a, (size_t)(n + 1) * sizeof(bool));
		if (!cols || !types || !defs || !nn) {
			free(need);
			fail(t, "out of memory");
			return true;
		}
		for (int i = 0; i < n; i++) {
			cols[i] = sk_ident(a, need[i]->name, t->c.quote);
			types[i] = col_type(need[i]);
			defs[i] = col_default(a, need[i]);
			nn[i] = i < nkey || !col_optional(need[i]);
		}
		char *sql = sk_sql_create(tab->ident, n, cols, types, defs, nn,
					  nkey, cols);
		fprintf(stderr, "sink %s: %s\n", t->name, sql ? sql : "?");
		if (sql)
			pg_query(t->pg, sql, 0, NULL, NULL, NULL, false, NULL,
				 NULL);
		free(sql);
	} else {
		if (!t->c.auto_evolve) {
			fail(t,
			     "org.apache.kafka.connect.errors.ConnectException:"
			     " "
			     "Table %s is missing fields (%s) and "
			     "auto-evolution is disabled",
			     tab->ident, need[0]->name);
			free(need);
			return true;
		}
		for (int i = 0; i < n; i++) {
			if (!col_optional(need[i])) {
				fail(t,
				     "org.apache.kafka.connect.errors."
				     "ConnectException: Cannot ALTER TABLE %s "
				     "to add missing field %s, as the field "
				     "is not optional and does not have a "
				     "default value",
				     tab->ident, need[i]->name);
				free(need);
				return true;
			}
			char *sql = sk_sql_add_column(
				tab->ident,
				sk_ident(a, need[i]->name, t->c.quote),
				col_type(need[i]), col_default(a, need[i]));
			fprintf(stderr, "sink %s: %s\n", t->name,
				sql ? sql : "?");
			if (sql)
				pg_query(t->pg, sql, 0, NULL, NULL, NULL, false,
					 NULL, NULL);
			free(sql);
		}
	}
	free(need);
	pg_sync_cb(t->pg, on_ddl, t);
	return true;
}

/* Whether tab exists with every column b's rows use (ddl() has nothing
 * to do). */
static bool columns_known(const struct sink_task *t, const struct sk_table *tab,
			  const struct batch *b)
{
	if (!tab->exists)
		return false;
	const struct sk_row *prev = NULL;
	for (int r = 0; r < b->nrows; r++) {
		const struct sk_row *row = &b->rows[r];
		if (!row_in(b, row))
			continue;
		/* rows of one shape have the same value columns */
		bool same = prev && prev->nkey == row->nkey &&
			    prev->nval == row->nval &&
			    strcmp(prev->sig, row->sig) == 0;
		for (int i = 0; i < row->nkey + (same ? 0 : row->nval); i++)
			if (col_index(t, tab, row->cols[i].name) < 0)
				return false;
		prev = row;
	}
	return true;
}

static void apply(struct sink_task *t)
{
	struct batch *b = t->b;
	if (b->nrows == 0) {
		dml(t);
		return;
	}
	/* each table (one but with ${source.*}) described and altered in
	 * turn: on_described and on_ddl come back here */
	for (b->cur = 0; b->cur < (b->ntables ? b->ntables : 1); b->cur++) {
		struct sk_table *tab = table_for(t, b);
		if (!tab) {
			fail(t, "out of memory");
			return;
		}
		if (!tab->described) {
			describe(t, tab);
			return;
		}
		if (ddl(t, tab))
			return;
	}
	b->cur = 0;
	dml(t);
}

/* --- the unit of work -------------------------------------------------- */

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

/*
 * Marks rows superseded by a later row of the same key: a delete
 * supersedes every row of its key before it, a write the row before it of
 * the same columns.  A write of other columns (the key's schema changed)
 * leaves the row before it, whose columns it does not all set, and comes
 * in a later round (gen), as Confluent flushes when the schema changes:
 * {id:1,a:1,b:2} then {id:1,a:5} is (1,5,2).  Without supersede
 * (insert.mode=insert) a write supersedes nothing: a key inserted twice is
 * the duplicate key error Confluent's INSERT meets.  Returns -1 when
 * memory ran out (nothing is marked then).
 */
static int dedup(struct batch *b, bool supersede)
{
	size_t cap = 16;
	while (cap < (size_t)b->nrows * 2)
		cap *= 2;
	int32_t *slot = malloc(cap * sizeof(*slot));
	/* the row before of the same key still to supersede, or -1 */
	int32_t *before = malloc((size_t)b->nrows * sizeof(*before));
	if (!slot || !before) {
		free(slot);
		free(before);
		return -1;
	}
	for (size_t i = 0; i < cap; i++)
		slot[i] = -1;
	for (int32_t r = 0; r < b->nrows; r++) {
		struct sk_row *row = &b->rows[r];
		if (row->op == 'd')
			row->delete_first = true;
		size_t i = hash(row->keystr) & (cap - 1);
		while (slot[i] >= 0 &&
		       (b->rows[slot[i]].table != row->table ||
			strcmp(b->rows[slot[i]].keystr, row->keystr) != 0))
			i = (i + 1) & (cap - 1);
		before[r] = slot[i];
		if (slot[i] >= 0) {
			struct sk_row *prev = &b->rows[slot[i]];
			row->gen = prev->gen;
			if (prev->delete_first)
				row->delete_first = true;
			if (row->op == 'd' || prev->op == 'd') {
				/* a chain ends at a delete: walked once */
				for (int32_t q = slot[i]; q >= 0; q = before[q])
					b->rows[q].skip = true;
				before[r] = -1;
			} else if (strcmp(prev->sig, row->sig) == 0) {
				if (supersede) {
					prev->skip = true;
					before[r] = before[slot[i]];
				}
			} else {
				row->gen++;
			}
		}
		slot[i] = r;
	}
	free(slot);
	free(before);
	return 0;
}

static void on_committed(void *arg, const PGresult *res, const char *err,
			 const char *sqlstate);

/* The statement writing (or deleting) nrows rows, or SK_SQL_ARRAYS. */
static char *statement(const struct sink_task *t, const struct sk_table *tab,
		       bool deletes, int nkey, int ncols,
		       const char *const *cols, const char *const *types,
		       int nrows)
{
	if (deletes)
		return sk_sql_delete(tab->ident, nkey, cols, types, nrows);
	if (t->c.mode == SKM_UPDATE)
		return sk_sql_update(tab->ident, nkey, ncols, cols, types,
				     nrows);
	return sk_sql_insert(tab->ident, t->c.mode, nkey, ncols, cols, types,
			     nrows);
}

/*
 * Queues the n rows (of one shape) as statements: one with an array
 * parameter per column when it can, else of up to MAX_STMT_ROWS rows.
 * Returns 0, or -1 when memory ran out.
 */
static int queue_rows(struct sink_task *t, struct batch *b,
		      struct sk_table *tab, struct sk_row **rows, int n,
		      bool deletes)
{
	struct arena *a = &b->a;
	const struct sk_row *r0 = rows[0];
	int nkey = r0->nkey;
	int ncols = deletes ? nkey : nkey + r0->nval;
	if (ncols == 0 || (!deletes && t->c.mode == SKM_UPDATE && !r0->nval))
		return 0;
	const char **cols = arena_alloc(a, (size_t)ncols * sizeof(char *));
	const char **types = arena_alloc(a, (size_t)ncols * sizeof(char *));
	if (!cols || !types)
		return -1;
	/* Arrays only when every type is known and none is an array. */
	bool arrays = true;
	for (int i = 0; i < ncols; i++) {
		if (!(cols[i] = sk_ident(a, r0->cols[i].name, t->c.quote)))
			return -1;
		int k = col_index(t, tab, r0->cols[i].name);
		types[i] = k >= 0 ? tab->types[k] : NULL;
		/* An instant goes through timestamptz: a timestamp column
		 * gets its time in the session's zone (db.timezone), as
		 * Confluent's setTimestamp with that zone's calendar. */
		if (types[i] && sk_sql_instant(r0->cols[i].s) &&
		    strcmp(types[i], "timestamp without time zone") == 0)
			types[i] = "timestamp with time zone";
		if (!types[i] || strchr(types[i], '['))
			arrays = false;
	}
	if (arrays) {
		char *sql = statement(t, tab, deletes, nkey, ncols, cols, types,
				      SK_SQL_ARRAYS);
		const char **texts = malloc((size_t)n * sizeof(char *));
		char **params = calloc((size_t)ncols, sizeof(char *));
		int rc = sql && texts && params ? 0 : -1;
		for (int c = 0; c < ncols && rc == 0; c++) {
			for (int r = 0; r < n; r++)
				texts[r] = rows[r]->cols[c].text;
			if (!(params[c] = sk_sql_array(texts, (size_t)n, 1)))
				rc = -1;
		}
		/* one text per table, operation and shape, whatever the
		 * number of rows: prepared once per connection */
		if (rc == 0)
			rc = pg_query_prepared(t->pg, sql, ncols,
					       (const char *const *)params,
					       NULL, NULL, false, NULL, NULL);
		for (int c = 0; params && c < ncols; c++)
			free(params[c]);
		free(params);
		free(texts);
		free(sql);
		return rc;
	}
	int per = MAX_PARAMS / ncols;
	if (per > MAX_STMT_ROWS)
		per = MAX_STMT_ROWS;
	if (per < 1)
		per = 1;
	for (int at = 0; at < n; at += per) {
		int m = n - at < per ? n - at : per;
		char *sql =
			statement(t, tab, deletes, nkey, ncols, cols, types, m);
		const char **vals =
			malloc((size_t)(m * ncols) * sizeof(char *));
		int rc = sql && vals ? 0 : -1;
		for (int r = 0; r < m && rc == 0; r++)
			for (int c = 0; c < ncols; c++)
				vals[r * ncols + c] =
					rows[at + r]->cols[c].text;
		/* Only a full statement's text repeats; a short one (of a
		 * row count that may not come again) is not prepared, so it
		 * takes none of the connection's statement slots. */
		if (rc == 0 && m == per)
			rc = pg_query_prepared(t->pg, sql, m * ncols, vals,
					       NULL, NULL, false, NULL, NULL);
		else if (rc == 0)
			rc = pg_query(t->pg, sql, m * ncols, vals, NULL, NULL,
				      false, NULL, NULL);
		free(sql);
		free(vals);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* The store has what prefetch() asked for in memory now (or failed). */
static void on_warmed(void *arg, enum st_status st, const uint8_t *data,
		      size_t len)
{
	struct sink_task *t = arg;
	(void)st;
	(void)data;
	(void)len;
	t->warming = false;
	t->inflight--;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	if (!t->busy)
		kick(t);
}

/*
 * While the unit of t->b runs on the target, reads and converts the batch
 * run() would take next: the target and samsa work at the same time
 * instead of taking turns.  When it is of t->b's partition and its table
 * needs nothing first, its unit is queued at once behind t->b's (two units
 * in flight at most), so that the target goes on with it without waiting
 * for the commit to come back to samsa; its fence (send_unit) rolls it
 * back when t->b's unit fails.  Otherwise it goes out when t->b's commit
 * comes back.  It is dropped when t->b fails or anything else than a plain
 * batch of rows comes up (the usual way then does it again).  Records not
 * in the store's memory are asked for (st_read keeps what it reads) and
 * left to run().
 */
static void prefetch(struct sink_task *t)
{
	struct batch *cur = t->b;
	if (t->nb || cur->single || cur->fail_after)
		return;
	struct skp *p = t->rr ? t->rr : t->parts, *found = NULL;
	struct st_partition *sp = NULL;
	int64_t pos = 0;
	for (struct skp *q = p; q;) {
		pos = q == cur->p ? cur->end : q->pos;
		sp = part_of(t, q);
		if (sp && pos >= st_log_start(sp) && pos < st_last_stable(sp)) {
			if (q->single_until <= pos)
				found = q;
			break;
		}
		q = q->next ? q->next : t->parts;
		if (q == p)
			break;
	}
	if (!found)
		return;
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return;
	b->p = found;
	b->start = b->end = pos;
	bool need_refresh;
	char msg[300];
	long got = st_read_cached(sp, pos, cached_want(t), &b->data);
	if (got < 0 && !t->warming) {
		/* Not in memory: the store reads ahead from Postgres and keeps
		 * it (st_read), meanwhile rather than after the commit. */
		t->warming = true;
		t->inflight++;
		st_read(t->env.store, sp, pos, 1, on_warmed, t);
	}
	if (got <= 0 ||
	    parse_records(t, b, sp, &need_refresh, msg, sizeof(msg)) < 0 ||
	    need_refresh || b->fail_after || b->nbad || b->end == b->start) {
		batch_free(b);
		return;
	}
	t->rr = found->next;
	t->nb = b;
	/* Behind cur's unit at once when nothing has to happen first: the
	 * target goes from one unit to the next without waiting for samsa.
	 * Only on cur's partition, whose fence then covers both; while the
	 * schema cache is full, not (run() trims it between batches). */
	if (found != cur->p || sk_jcache_full(t->c.jcache))
		return;
	for (b->cur = 0; b->cur < (b->ntables ? b->ntables : 1); b->cur++) {
		struct sk_table *tab = table_for(t, b);
		if (!tab || !tab->described || !columns_known(t, tab, b)) {
			b->cur = 0;
			return;
		}
	}
	b->cur = 0;
	if (send_unit(t, b, true) < 0)
		fail(t, "out of memory");
}

/* Whether row goes in the deletes' pass (its key deleted in the batch,
 * perhaps written again after) or the writes'. */
static bool in_pass(const struct sk_row *row, bool deletes)
{
	return !row->skip && (deletes ? row->delete_first : row->op == 'u');
}

/* Whether row, not taken yet, goes in the pass's round g (deletes have
 * one round). */
static bool in_round(const struct sk_row *row, bool taken, bool deletes,
		     int32_t g)
{
	return !taken && in_pass(row, deletes) && (deletes || row->gen == g);
}

/*
 * Queues the statements of b's rows of tab (at b->cur): sel and taken
 * are scratch of b->nrows, taken all false.  Returns 0, or -1 when memory
 * ran out.
 */
static int queue_table(struct sink_task *t, struct batch *b,
		       struct sk_table *tab, struct sk_row **sel, bool *taken,
		       int32_t rounds)
{
	int rc = 0;
	for (int pass = 0; pass < 2 && rc == 0; pass++) {
		bool deletes = pass == 0;
		for (int32_t g = 0; g < (deletes ? 1 : rounds); g++)
			for (int r = 0; r < b->nrows && rc == 0; r++) {
				if (!row_in(b, &b->rows[r]) ||
				    !in_round(&b->rows[r], taken[r], deletes,
					      g))
					continue;
				const char *shape = deletes ? b->rows[r].keysig
							    : b->rows[r].sig;
				int n = 0;
				for (int q = r; q < b->nrows; q++) {
					struct sk_row *o = &b->rows[q];
					if (!row_in(b, o) ||
					    !in_round(o, taken[q], deletes,
						      g) ||
					    strcmp(deletes ? o->keysig : o->sig,
						   shape) != 0)
						continue;
					taken[q] = true;
					sel[n++] = o;
				}
				rc = queue_rows(t, b, tab, sel, n, deletes);
			}
		memset(taken, 0, (size_t)b->nrows * sizeof(bool));
	}
	return rc;
}

/*
 * Queues b's unit of work: its rows and its partition's next offset,
 * fenced.  ahead: b follows the unit of the batch that ends at b->start,
 * which is still in flight; b's offset is then only moved from exactly
 * there, by an UPDATE, so that when that unit fails (and its offset row
 * stays where it was, or was never written) b's unit fails with 22012
 * whatever it holds.  Returns 0, or -1 when memory ran out (the unit may
 * be partly queued: the caller fails the task).
 */
static int send_unit(struct sink_task *t, struct batch *b, bool ahead)
{
	struct skp *p = b->p;
	if (b->nrows) {
		bool keyed = b->rows[0].nkey > 0;
		if (keyed && dedup(b, t->c.mode != SKM_INSERT) < 0)
			return -1;
		int32_t rounds = 0;
		for (int r = 0; r < b->nrows; r++)
			if (b->rows[r].gen >= rounds)
				rounds = b->rows[r].gen + 1;
		struct sk_row **sel = malloc((size_t)b->nrows * sizeof(*sel));
		bool *taken = calloc((size_t)b->nrows, sizeof(bool));
		if (!sel || !taken) {
			free(sel);
			free(taken);
			return -1;
		}
		/* table by table (one but with ${source.*}), deletes first
		 * (a key deleted, then written again, too), then the writes
		 * round by round, one statement per shape (of the key for
		 * deletes, of key and value for writes) */
		int rc = 0;
		int ntab = b->ntables ? b->ntables : 1;
		for (b->cur = 0; b->cur < ntab && rc == 0; b->cur++) {
			struct sk_table *tab = table_for(t, b);
			rc = tab ? queue_table(t, b, tab, sel, taken, rounds)
				 : -1;
		}
		b->cur = 0;
		free(sel);
		free(taken);
		if (rc < 0)
			return -1;
	}
	char part[16], next[24], expect[24];
	snprintf(part, sizeof(part), "%d", p->partition);
	snprintf(next, sizeof(next), "%" PRId64, b->end);
	snprintf(expect, sizeof(expect), "%" PRId64,
		 ahead	       ? b->start
		 : p->have_row ? p->stored
			       : -1);
	const char *v[5] = {t->name, p->topic, part, next, expect};
	/* Fenced: a unit built on offsets someone else moved divides by
	 * zero (22012) and rolls back whole. */
	int rc = pg_query_prepared(
		t->pg,
		ahead ? "WITH u AS (UPDATE samsa_sink_offsets SET "
			"next_offset = $4::bigint WHERE connector = $1 AND "
			"topic = $2 AND \"partition\" = $3::int AND "
			"next_offset = $5::bigint RETURNING 1) "
			"SELECT 1 / (SELECT count(*) FROM u)::int"
		      : "WITH u AS (INSERT INTO samsa_sink_offsets AS o "
			"(connector, topic, \"partition\", next_offset) "
			"VALUES ($1, $2, $3, $4) ON CONFLICT (connector, "
			"topic, \"partition\") DO UPDATE SET next_offset = "
			"EXCLUDED.next_offset WHERE o.next_offset = "
			"$5::bigint RETURNING 1) "
			"SELECT 1 / (SELECT count(*) FROM u)::int",
		5, v, NULL, NULL, false, NULL, NULL);
	if (rc < 0 || pg_sync_cb(t->pg, on_committed, t) < 0)
		return -1;
	b->sent = true;
	b->unit = ++t->units_sent;
	return 0;
}

static void dml(struct sink_task *t)
{
	if (send_unit(t, t->b, false) < 0) {
		fail(t, "out of memory");
		return;
	}
	prefetch(t);
}

static void on_committed(void *arg, const PGresult *res, const char *err,
			 const char *sqlstate)
{
	struct sink_task *t = arg;
	(void)res;
	/* the outcome of a dropped batch's unit (t->nb's, behind a unit
	 * that failed) is of no use: its batch will be read again */
	int64_t unit = ++t->units_done;
	if (t->stopped || t->failed || !t->b || t->b->unit != unit)
		return;
	struct batch *b = t->b;
	struct skp *p = b->p;
	if (!err) {
		p->pos = p->stored = b->end;
		p->have_row = true;
		t->records += b->nrows;
		t->batches++;
		t->backoff_ms = t->c.retry_backoff_ms;
		if (t->trace) {
			free(t->trace);
			t->trace = NULL;
		}
		if (b->fail_after) {
			struct sk_fault f = b->fail;
			int64_t off = b->fail_offset;
			fail_record(t, p, off, &f);
			return;
		}
		if (p->single_until && p->pos >= p->single_until)
			p->single_until = 0;
		batch_free(b);
		t->b = NULL;
		struct batch *nb = t->nb;
		t->nb = NULL;
		if (nb && nb->sent) {
			/* its unit is on the target already */
			t->b = nb;
			prefetch(t);
			return;
		}
		/* a full schema cache is trimmed by run(), between batches */
		if (nb && nb->start == nb->p->pos &&
		    !sk_jcache_full(t->c.jcache)) {
			t->b = nb;
			apply(t);
			return;
		}
		batch_free(nb);
		t->busy = false;
		kick(t);
		return;
	}
	batch_free(t->nb);
	t->nb = NULL;
	if (transient(sqlstate)) {
		retry_later(t, err);
		return;
	}
	if (strcmp(sqlstate, "22012") == 0) {
		t->backoff_ms = 100;
		retry_later(t, "the stored offsets moved (another writer?): "
			       "reloading them");
		return;
	}
	/* The data: find the record at fault, one at a time. */
	tables_forget(t);
	if (!b->single) {
		fprintf(stderr,
			"sink %s: batch %s-%d [%" PRId64 ", %" PRId64
			") failed (%s), replaying it record by record\n",
			t->name, p->topic, p->partition, p->pos, b->end, err);
		p->single_until = b->end;
		batch_free(b);
		t->b = NULL;
		t->busy = false;
		kick(t);
		return;
	}
	struct sk_fault f = {
		.stage = "TASK_PUT",
		.class_name = t->c.debezium ? "io.debezium.connector.jdbc."
					      "JdbcSinkConnectorTask"
					    : "io.confluent.connect.jdbc.sink."
					      "JdbcSinkTask",
		.exception = "java.sql.BatchUpdateException",
	};
	snprintf(f.message, sizeof(f.message), "%s (SQLSTATE %s)", err,
		 sqlstate);
	if (!t->c.tolerate_all || !b->have_raw) {
		fail_record(t, p, b->have_raw ? b->raw.offset : p->pos, &f);
		return;
	}
	/* errors.tolerance=all: the record goes to the DLQ, its offset is
	 * stored without a row. */
	fprintf(stderr, "sink %s: skipping %s-%d@%" PRId64 ": %s\n", t->name,
		p->topic, p->partition, b->raw.offset, f.message);
	b->nrows = 0;
	b->end = b->raw.offset + 1;
	b->ddl_rounds = 0;
	if (!t->c.dlq_topic) {
		apply(t);
		return;
	}
	b->bad = arena_alloc(&b->a, sizeof(*b->bad));
	if (!b->bad) {
		fail(t, "out of memory");
		return;
	}
	b->bad[0] = b->raw;
	b->bad[0].f = f;
	b->nbad = b->capbad = 1;
	dlq(t);
}

/* --- life -------------------------------------------------------------- */

bool sink_is_class(const char *cls)
{
	return cls && (strcmp(cls, SINK_CLASS_CONFLUENT) == 0 ||
		       strcmp(cls, SINK_CLASS_DEBEZIUM) == 0 ||
		       strcmp(cls, "JdbcSinkConnector") == 0);
}

int sink_validate(const json_t *config, char *key, size_t keylen, char *err,
		  size_t errlen)
{
	return sink_cfg_parse(config, NULL, key, keylen, err, errlen);
}

static void task_free(struct sink_task *t)
{
	waiters_cancel(t);
	pg_close(t->pg);
	t->pg = NULL;
	if (t->retry_ev)
		event_free(t->retry_ev);
	if (t->kick_ev)
		event_free(t->kick_ev);
	if (t->disc_ev)
		event_free(t->disc_ev);
	batch_free(t->b);
	batch_free(t->nb);
	while (t->parts) {
		struct skp *p = t->parts;
		t->parts = p->next;
		free(p->topic);
		free(p);
	}
	tables_free(t);
	while (t->cache) {
		struct cached *c = t->cache;
		t->cache = c->next;
		arena_free(&c->a);
		free(c);
	}
	loaded_free(t);
	sink_cfg_free(&t->c);
	free(t->trace);
	free(t->name);
	free(t);
}

static bool back(struct sink_task *t)
{
	t->inflight--;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return false;
	}
	return !t->failed && t->b;
}

struct sink_task *sink_start(const struct sink_env *env, const char *name,
			     const json_t *config)
{
	struct sink_task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->env = *env;
	t->name = strdup(name);
	t->retry_ev = evtimer_new(env->base, on_retry, t);
	t->kick_ev = event_new(env->base, -1, 0, on_kick, t);
	t->disc_ev = evtimer_new(env->base, on_discover, t);
	if (!t->name || !t->retry_ev || !t->kick_ev || !t->disc_ev) {
		task_free(t);
		return NULL;
	}
	char key[128], err[512];
	if (sink_cfg_parse(config, &t->c, key, sizeof(key), err, sizeof(err)) <
	    0) {
		fail(t, "%s", err);
		return t;
	}
	t->backoff_ms = t->c.retry_backoff_ms;
	if (t->c.url_ignored)
		fprintf(stderr,
			"sink %s: WARNING: connection.url parameters samsa "
			"does not use: %s\n",
			name, t->c.url_ignored);
	char pgname[300];
	snprintf(pgname, sizeof(pgname), "sink %s", name);
	t->pg = pg_open(env->base, t->c.conninfo, pgname, on_pg_up, t);
	if (!t->pg) {
		task_free(t);
		return NULL;
	}
	struct timeval tv = {DISCOVER_MS / 1000, (DISCOVER_MS % 1000) * 1000};
	evtimer_add(t->disc_ev, &tv);
	return t;
}

void sink_stop(struct sink_task *t)
{
	if (!t)
		return;
	t->stopped = true;
	waiters_cancel(t);
	evtimer_del(t->retry_ev);
	evtimer_del(t->disc_ev);
	event_del(t->kick_ev);
	pg_close(t->pg);
	t->pg = NULL;
	if (t->inflight == 0)
		task_free(t);
}

const char *sink_state(const struct sink_task *t)
{
	return t->failed ? "FAILED" : "RUNNING";
}

const char *sink_trace(const struct sink_task *t)
{
	return t->trace;
}

json_t *sink_topics(const struct sink_task *t)
{
	json_t *a = json_array();
	for (const struct skp *p = t->parts; p; p = p->next) {
		bool dup = false;
		for (size_t i = 0; i < json_array_size(a) && !dup; i++)
			dup = strcmp(json_string_value(json_array_get(a, i)),
				     p->topic) == 0;
		if (!dup)
			json_array_append_new(a, json_string(p->topic));
	}
	return a;
}

json_t *sink_progress(const struct sink_task *t)
{
	json_t *parts = json_array();
	for (const struct skp *p = t->parts; p; p = p->next)
		json_array_append_new(
			parts, json_pack("{s:s,s:i,s:I}", "topic", p->topic,
					 "partition", p->partition,
					 "next_offset", (json_int_t)p->pos));
	return json_pack("{s:I,s:I,s:I,s:o}", "records", (json_int_t)t->records,
			 "batches", (json_int_t)t->batches, "dead_letters",
			 (json_int_t)t->dlq_records, "partitions", parts);
}
