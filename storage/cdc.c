/*
 * cdc: the Postgres source task (storage/cdc.h).
 *
 * Phases, each one step of non-blocking libpq on one of the task's two
 * connections: connect (replication, then SQL) → catalog → publication →
 * slot → snapshot (SQL connection, in the slot's exported snapshot) →
 * wait until the snapshot is durable → read each topic's last LSN back
 * from the log → START_REPLICATION, then COPY BOTH until stopped.
 *
 * Appends leave through an outbox in commit order.  Each transaction is a
 * mark; the slot's flush position moves to a mark's end LSN once every
 * append of it and of the marks before it is durable.
 */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "protocol/kbuf.h"
#include "protocol/partitioner.h"
#include "protocol/record_batch.h"
#include "storage/cdc.h"
#include "storage/cdc_int.h"
#include "storage/connect_cfg.h"
#include "storage/regex_router.h"
#include "storage/topic_creation.h"
#include "storage/connectors.h"
#include "storage/pgresolve.h"
#include "storage/slotdrop.h"
#include "storage/store.h"
#include "storage/topic_config.h"

#define MAX_BATCH_BYTES (512 * 1024)	   /* one record batch at most */
#define MAX_INFLIGHT	(32 * 1024 * 1024) /* outbox bytes before reads stop */
/* Appends in flight at once: the outbox meanwhile folds the transactions
 * queued for one topic into one append, so that a backlog of small
 * transactions does not become as many appends. */
#define MAX_APPENDS	 4
#define MAX_APPEND_BYTES (4 * 1024 * 1024)
#define SNAPSHOT_CHUNK	 500		   /* snapshot records per batch */
#define PG_EPOCH_US	 946684800000000LL /* 2000-01-01 in Unix µs */

enum snap_mode {
	SNAP_INITIAL,
	SNAP_NEVER,
	SNAP_INITIAL_ONLY,
	SNAP_ALWAYS,
	SNAP_WHEN_NEEDED,
};
enum pub_mode { PUB_ALL, PUB_FILTERED, PUB_DISABLED };

struct cdc_topic {
	char *name;
	/* By partition: the log already holds everything up to it (each
	 * partition's log is a prefix in commit order, the topic's is not). */
	uint64_t *last_lsn;
	int32_t nlast;
	struct cdc_topic *next;
};

static uint64_t topic_last_lsn(const struct cdc_topic *tp, int32_t part)
{
	return part < tp->nlast ? tp->last_lsn[part] : 0;
}

/* A transaction's appends: the slot may confirm end_lsn when none is left
 * and every earlier mark is done. */
struct mark {
	uint64_t end_lsn;
	int pending;
	bool closed; /* no more appends will join */
	struct mark *next;
};

/* One append waiting its turn, or in flight: the batches of one or more
 * transactions (marks) for one topic. */
struct out {
	struct cdc_task *t;
	struct cdc_topic *tp;
	int32_t part;
	struct mark **marks;
	int nmarks;
	struct kb_writer blob;
	struct out *next;
};

static void out_free(struct out *o)
{
	kb_writer_free(&o->blob);
	free(o->marks);
	free(o);
}

struct pgc {
	struct cdc_task *t;
	PGconn *c;
	struct event *ev;
	struct pg_resolve *resolving; /* the host's lookup, before c */
	bool replication;
	bool connecting;
	bool was_up; /* it connected: losing it may pass */
	short want;
	bool busy, copy;
	void (*on_row)(struct cdc_task *t, PGresult *r);
	void (*on_done)(struct cdc_task *t);
};

/* A schema the AvroConverter registered (or is registering) under a
 * subject: one registration per schema change, not per record. */
struct avro_sub {
	char *subject, *text, *topic;
	int32_t id; /* -1 while the registration is in flight */
	struct avro_sub *next;
};

/* A decoded pgoutput tuple's texts, reused from message to message. */
struct tuple {
	char **row;
	size_t *off;
	int cap;
	struct kb_writer text;
};

static void tuple_free(struct tuple *tb)
{
	free(tb->row);
	free(tb->off);
	kb_writer_free(&tb->text);
}

/* One record in the open transaction: one allocation, key and value
 * bytes after the struct. */
struct rec {
	struct cdc_topic *tp;
	int32_t part;	 /* set by flush_records() */
	char *key, *val; /* into data, or NULL */
	size_t kl, vl;
	int nh;	   /* transforms' headers, after val in data (put_headers) */
	size_t hl; /* their bytes there */
	struct rec *next;
	char data[];
};

/* Headers as a rec keeps them: per header its key's length (4 bytes), the
 * key, its value's length (-1: null) and the value. */
static size_t headers_size(const struct cdc_header *h, int n)
{
	size_t size = 0;
	for (int i = 0; i < n; i++)
		size += 8 + (size_t)h[i].key.len +
			(h[i].value.len > 0 ? (size_t)h[i].value.len : 0);
	return size;
}

static void put_headers(char *p, const struct cdc_header *h, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 2; j++) {
			struct kstr x = j ? h[i].value : h[i].key;
			memcpy(p, &x.len, 4);
			p += 4;
			if (x.len > 0)
				memcpy(p, x.ptr, (size_t)x.len);
			p += x.len > 0 ? x.len : 0;
		}
}

/* rec's headers into keys and vals (rec->nh of each). */
static void get_headers(const struct rec *r, struct kstr *keys,
			struct kstr *vals)
{
	const char *p = r->data + r->kl + r->vl;
	for (int i = 0; i < r->nh; i++)
		for (int j = 0; j < 2; j++) {
			struct kstr *x = j ? &vals[i] : &keys[i];
			memcpy(&x->len, p, 4);
			p += 4;
			x->ptr = x->len >= 0 ? p : NULL;
			p += x->len > 0 ? x->len : 0;
		}
}

/* Connection parameters: Debezium's five, its five TLS settings, ours and
 * the terminating NULL. */
#define MAX_PARAMS 16

struct cdc_task {
	struct cdc_env env;
	char *name;
	json_t *config;
	struct cdc_opts o;
	char *kw[MAX_PARAMS], *kv[MAX_PARAMS]; /* connection parameters */
	char *slot, *pub;
	enum snap_mode snap;
	enum pub_mode pubmode;
	regex_t *inc, *exc, *sinc, *sexc, *cinc, *cexc;
	int ninc, nexc, nsinc, nsexc, ncinc, ncexc;
	regex_t *keycols; /* message.key.columns: "schema.table.column" */
	int nkeycols;
	char **literals; /* include-list entries that name one table */
	int nliterals;
	bool snapshot_done;
	bool drop_slot;	 /* slot.drop.on.stop */
	char skipped[5]; /* skipped.operations: of \"cudt\", \"\" for none */
	struct topic_creation *creation; /* topic.creation.*, or NULL */
	struct regex_router *router;	 /* RegexRouter transforms, or NULL */

	struct pgc repl, sql;
	struct event *timer;
	bool failed, stopped;
	char *trace;
	/* Postgres went away: connect.c starts the task again at retry_at
	 * (wall-clock ms; -1 when the failure is for good). */
	int64_t retry_at, retry_wait_ms;
	const char *phase;

	struct cdc_rel *rels;
	struct cdc_topic *topics;
	struct cdc_rel *snap_rel; /* the table being copied */
	struct rec *snap_recs, **snap_tail;
	int snap_nrecs;
	long long rows_copied;
	int tables_done;
	bool slot_exists;
	bool slot_lost; /* the snapshot was done, but the slot is gone */
	char snapshot_name[128];
	uint64_t consistent_point;
	struct mark *snap_mark;
	char **held_row; /* the last row read, not yet formatted */
	int held_ncols;
	struct cdc_rel *held_rel;

	/* streaming */
	struct tuple old_tuple, new_tuple;
	uint64_t received, flushed, reported;
	int64_t last_status_us;
	struct rec *txn, **txn_tail;
	int64_t txn_xid, txn_commit_ms;
	uint64_t txn_final_lsn;
	struct mark *marks, *marks_tail;
	struct out *outbox, *outbox_tail; /* not yet sent */
	size_t inflight_bytes;
	int inflight;  /* appends and creations in flight */
	int appending; /* appends in flight */
	bool creating; /* a topic creation holds the outbox */
	int dedup_pending;
	struct cdc_topic *dedup_next;
	int32_t dedup_part; /* of dedup_next, being read back */
	bool reading_paused;

	/* heartbeat.interval.ms: records to <prefix>.<topic.prefix> */
	int64_t heartbeat_ms, last_heartbeat_ms;
	char *hb_action; /* heartbeat.action.query, or NULL */
	char *hb_topic;
	char *hb_key_avro, *hb_value_avro;

	/* AvroConverter */
	struct avro_sub *subs;
	int registering; /* registrations in flight: reading waits */
	void (*after_registering)(struct cdc_task *t);
};

static void fail(struct cdc_task *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void pump(struct cdc_task *t);
static void pgc_arm(struct pgc *p);
static char *quote(const char *s, char q);

/* --- config ------------------------------------------------------------ */

/*
 * message.key.columns, "<table regex>:<column>,<column>;<table regex>:...",
 * as Debezium's CustomKeyMapper reads it: one anchored, case-insensitive
 * regex "<table regex>.<column>" per column, matched against
 * "schema.table.column".
 */
static int compile_key_columns(const char *v, regex_t **out, int *n, char *err,
			       size_t errlen)
{
	*out = NULL;
	*n = 0;
	if (!v || !*v)
		return 0;
	char *copy = strdup(v), *save = NULL;
	int rc = 0;
	for (char *part = strtok_r(copy, ";", &save); part && rc == 0;
	     part = strtok_r(NULL, ";", &save)) {
		while (*part == ' ')
			part++;
		if (!*part)
			continue;
		char *colon = strchr(part, ':');
		if (!colon || colon == part || !colon[1]) {
			snprintf(err, errlen,
				 "Invalid value %s for configuration "
				 "message.key.columns: expected "
				 "<fully-qualified table>:<column>,... "
				 "separated "
				 "by ';'",
				 v);
			rc = -1;
			break;
		}
		*colon = '\0';
		char **cols;
		int nc = cc_split(colon + 1, &cols);
		if (nc < 0) {
			snprintf(err, errlen, "out of memory");
			rc = -1;
			break;
		}
		for (int i = 0; i < nc && rc == 0; i++) {
			char pat[1024];
			snprintf(pat, sizeof(pat), "^(%s.%s)$", part, cols[i]);
			regex_t *grown = realloc(
				*out, sizeof(regex_t) * (size_t)(*n + 1));
			if (!grown) {
				snprintf(err, errlen, "out of memory");
				rc = -1;
				break;
			}
			*out = grown;
			if (regcomp(&(*out)[*n], pat,
				    REG_EXTENDED | REG_NOSUB | REG_ICASE) !=
			    0) {
				snprintf(err, errlen,
					 "Invalid value %s for configuration "
					 "message.key.columns: invalid regular "
					 "expression %s",
					 v, part);
				rc = -1;
			} else {
				(*n)++;
			}
		}
		cc_free_list(cols);
	}
	free(copy);
	return rc;
}

static const char *const known_transforms[] = {
	"io.debezium.transforms.ExtractNewRecordState",
	"io.debezium.transforms.UnwrapFromEnvelope",
};

static bool conv_class(const char *v, enum cdc_conv *c)
{
	if (!v || strcmp(v, "org.apache.kafka.connect.json.JsonConverter") == 0)
		*c = CONV_JSON;
	else if (strcmp(v, "org.apache.kafka.connect.storage."
			   "StringConverter") == 0)
		*c = CONV_STRING;
	else if (strcmp(v, "io.confluent.connect.avro.AvroConverter") == 0)
		*c = CONV_AVRO;
	else
		return false;
	return true;
}

/* Whether the task may read on: not while a schema is being registered
 * (the records after it need its id) nor while the outbox is full. */
static bool blocked(const struct cdc_task *t)
{
	return t->reading_paused || t->registering > 0;
}

static const char *const ssl_params[][2] = {
	{"database.sslmode", "sslmode"},
	{"database.sslrootcert", "sslrootcert"},
	{"database.sslcert", "sslcert"},
	{"database.sslkey", "sslkey"},
	{"database.sslpassword", "sslpassword"},
};

/*
 * The first Debezium setting in c that asks for what samsa does not do,
 * or NULL.  Ignoring these would be worse than refusing them: masks and
 * snapshot overrides keep data out of topics, signals and transaction
 * metadata are things users wait for.  Their defaults are fine.
 */
static const char *not_done(const json_t *c)
{
	static const struct {
		const char *key;  /* or a prefix, ending in '.' */
		const char *fine; /* the value that asks for nothing */
	} rules[] = {
		{"provide.transaction.metadata", "false"},
		{"signal.data.collection", ""},
		{"snapshot.select.statement.overrides", ""},
		{"column.mask.", NULL},
		{"column.truncate.", NULL},
	};
	const char *name;
	json_t *v;
	json_object_foreach((json_t *)c, name, v)
	{
		const char *val = json_string_value(v);
		for (size_t i = 0; i < sizeof(rules) / sizeof(*rules); i++) {
			size_t n = strlen(rules[i].key);
			bool prefix = rules[i].key[n - 1] == '.';
			if (prefix ? strncmp(name, rules[i].key, n) != 0
				   : strcmp(name, rules[i].key) != 0)
				continue;
			if (!rules[i].fine || !val ||
			    strcasecmp(val, rules[i].fine) != 0)
				return name;
		}
	}
	return NULL;
}

/*
 * skipped.operations, a list of c, u, d and t or "none", as the op letters
 * into out (5 bytes, may be NULL).  Returns 0, or -1 for another word.
 */
static int skipped_ops(const char *list, char *out)
{
	char buf[5] = "";
	char **items;
	int n = cc_split(list, &items), rc = n < 0 ? -1 : 0;
	for (int i = 0; i < n && rc == 0; i++) {
		const char *v = items[i];
		if (!strcmp(v, "none"))
			continue;
		if (strlen(v) != 1 || !strchr("cudt", v[0]))
			rc = -1;
		else if (!strchr(buf, v[0]))
			buf[strlen(buf)] = v[0];
	}
	cc_free_list(items);
	if (out)
		memcpy(out, buf, sizeof(buf));
	return rc;
}

/* Whether v is word (k bytes), as Debezium's enum parse reads it:
 * ignoring case and the spaces around (" Include " is include). */
static bool mode_is(const char *v, const char *word, size_t k)
{
	while (isspace((unsigned char)*v))
		v++;
	size_t n = strlen(v);
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	return n == k && !strncasecmp(v, word, k);
}

/*
 * ExtractNewRecordState's delete.tombstone.handling.mode (Debezium 2.5 on;
 * ignoring case and the spaces around, as its parse does) as the 1.x pair
 * delete.handling.mode and drop.tombstones.  Returns 0, or -1 for another
 * word.
 */
static int delete_tombstone_mode(const char *v, enum cdc_delete *del,
				 bool *drop_tomb)
{
	static const struct {
		const char *name;
		enum cdc_delete del;
		bool drop_tomb;
	} modes[] = {
		{"drop", DEL_DROP, true},
		{"tombstone", DEL_NONE, true},
		{"rewrite", DEL_REWRITE, true},
		{"rewrite-with-tombstone", DEL_REWRITE, false},
		{"delete-to-tombstone", DEL_NONE, true},
	};
	for (size_t i = 0; i < sizeof(modes) / sizeof(*modes); i++)
		if (mode_is(v, modes[i].name, strlen(modes[i].name))) {
			*del = modes[i].del;
			*drop_tomb = modes[i].drop_tomb;
			return 0;
		}
	return -1;
}

/* Settings that take one of a few words (as Debezium's enums, ignoring
 * case): those samsa has. */
static const struct {
	const char *key, *words;
} mode_settings[] = {
	{"time.precision.mode",
	 "adaptive, adaptive_time_microseconds, connect"},
	{"interval.handling.mode", "numeric, string"},
	{"truncate.handling.mode", "skip, include"},
};

/* The words key takes, for its error. */
static const char *modes_of(const char *key)
{
	for (size_t i = 0; i < sizeof(mode_settings) / sizeof(*mode_settings);
	     i++)
		if (!strcmp(mode_settings[i].key, key))
			return mode_settings[i].words;
	return "";
}

/* The first of mode_settings in c set to a word it does not take, or NULL. */
static const char *unknown_mode(const json_t *c)
{
	for (size_t i = 0; i < sizeof(mode_settings) / sizeof(*mode_settings);
	     i++) {
		const char *v = cc_get(c, mode_settings[i].key);
		if (!v)
			continue;
		bool ok = false;
		for (const char *w = mode_settings[i].words; *w && !ok;) {
			size_t k = strcspn(w, ",");
			ok = mode_is(v, w, k);
			w += k;
			w += strspn(w, ", ");
		}
		if (!ok)
			return mode_settings[i].key;
	}
	return NULL;
}

/* Parses config into t (t NULL: only checks). */
static int parse(const json_t *c, struct cdc_task *t, char *key, size_t keylen,
		 char *err, size_t errlen)
{
	static const char *const required[] = {
		"database.hostname", "database.user", "database.dbname"};
	for (size_t i = 0; i < sizeof(required) / sizeof(*required); i++)
		if (!cc_get(c, required[i]) || !*cc_get(c, required[i]))
			CC_BAD(required[i],
			       "Missing required configuration \"%s\" which "
			       "has "
			       "no default value.",
			       required[i]);
	const char *prefix = cc_get2(c, "topic.prefix", "database.server.name");
	if (!prefix || !*prefix)
		CC_BAD("topic.prefix", "Missing required configuration "
				       "\"topic.prefix\" which has "
				       "no default value.");
	for (const char *p = prefix; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
		      *p == '-'))
			CC_BAD("topic.prefix",
			       "The 'topic.prefix' value '%s' is invalid: a "
			       "topic name may hold only [a-zA-Z0-9._-]",
			       prefix);
	const char *port = cc_get(c, "database.port");
	if (port && (atoi(port) <= 0 || atoi(port) > 65535))
		CC_BAD("database.port",
		       "Invalid value %s for configuration database.port",
		       port);
	const char *sm = cc_get(c, "snapshot.mode");
	enum snap_mode snap = SNAP_INITIAL;
	if (!sm || !strcmp(sm, "initial") || !strcmp(sm, "exported"))
		snap = SNAP_INITIAL;
	else if (!strcmp(sm, "when_needed"))
		snap = SNAP_WHEN_NEEDED;
	else if (!strcmp(sm, "never") || !strcmp(sm, "no_data"))
		snap = SNAP_NEVER;
	else if (!strcmp(sm, "initial_only"))
		snap = SNAP_INITIAL_ONLY;
	else if (!strcmp(sm, "always"))
		snap = SNAP_ALWAYS;
	else
		CC_BAD("snapshot.mode",
		       "Invalid value %s for configuration snapshot.mode", sm);
	const char *pm = cc_get(c, "publication.autocreate.mode");
	enum pub_mode pub = PUB_ALL;
	if (!pm || !strcmp(pm, "all_tables"))
		pub = PUB_ALL;
	else if (!strcmp(pm, "filtered"))
		pub = PUB_FILTERED;
	else if (!strcmp(pm, "disabled"))
		pub = PUB_DISABLED;
	else
		CC_BAD("publication.autocreate.mode",
		       "Invalid value %s for configuration "
		       "publication.autocreate.mode",
		       pm);
	static const char *const counts[] = {
		"heartbeat.interval.ms", "retriable.restart.connector.wait.ms"};
	for (size_t i = 0; i < 2; i++) {
		const char *v = cc_get(c, counts[i]);
		char *end;
		long long n = v ? strtoll(v, &end, 10) : 0;
		if (v && (n < 0 || n > INT32_MAX || *end || end == v))
			CC_BAD(counts[i],
			       "Invalid value %s for configuration %s: Not a "
			       "valid number",
			       v, counts[i]);
	}
	struct topic_creation *creation;
	if (tcr_parse(c, &creation, key, keylen, err, errlen) < 0)
		return -1;
	struct regex_router *router;
	if (rr_parse(c, &router, key, keylen, err, errlen) < 0) {
		tcr_free(creation);
		return -1;
	}
	/* The heartbeats' topic, routed too: transforms see every record. */
	const char *hbp =
		cc_get2(c, "topic.heartbeat.prefix", "heartbeat.topics.prefix");
	char hbt[1024], hb_topic[1024] = "";
	snprintf(hbt, sizeof(hbt), "%s.%s", hbp ? hbp : "__debezium-heartbeat",
		 prefix);
	const char *beats = cc_get(c, "heartbeat.interval.ms");
	if ((!rr_route(router, hbt, hb_topic, sizeof(hb_topic)) ||
	     !st_topic_name_valid(kstr_c(hb_topic))) &&
	    beats && atoll(beats) > 0) {
		tcr_free(creation);
		rr_free(router);
		CC_BAD("transforms",
		       "RegexRouter makes %s of the heartbeat topic %s: not a "
		       "topic name",
		       hb_topic, hbt);
	}
	if (t) {
		t->creation = creation;
		t->router = router;
	} else {
		tcr_free(creation);
		rr_free(router);
	}
	const char *ssl = cc_get(c, "database.sslmode");
	static const char *const sslmodes[] = {"disable",   "allow",
					       "prefer",    "require",
					       "verify-ca", "verify-full"};
	bool mode_ok = !ssl;
	for (size_t i = 0; ssl && i < 6; i++)
		mode_ok |= strcmp(ssl, sslmodes[i]) == 0;
	if (!mode_ok)
		CC_BAD("database.sslmode",
		       "Invalid value %s for configuration database.sslmode: "
		       "disable, allow, prefer, require, verify-ca or "
		       "verify-full",
		       ssl);
	const char *unsupported = not_done(c);
	if (unsupported)
		CC_BAD(unsupported,
		       "Invalid value %s for configuration %s: samsa does not "
		       "do this yet (ignoring it could send what it would "
		       "hide, or drop what it asks for)",
		       cc_get(c, unsupported), unsupported);
	const char *so = cc_get(c, "skipped.operations");
	if (so && skipped_ops(so, NULL) < 0)
		CC_BAD("skipped.operations",
		       "Invalid value %s for configuration skipped.operations: "
		       "a list of c, u, d and t, or none",
		       so);
	const char *bad = unknown_mode(c);
	if (bad)
		CC_BAD(bad, "Invalid value %s for configuration %s: %s",
		       cc_get(c, bad), bad, modes_of(bad));
	const char *pl = cc_get(c, "plugin.name");
	if (pl && strcmp(pl, "pgoutput") != 0)
		CC_BAD("plugin.name",
		       "Invalid value %s for configuration plugin.name: samsa "
		       "decodes pgoutput only",
		       pl);
	const char *dm = cc_get(c, "decimal.handling.mode");
	enum cdc_decimal dec = DEC_PRECISE;
	if (!dm || !strcmp(dm, "precise"))
		dec = DEC_PRECISE;
	else if (!strcmp(dm, "double"))
		dec = DEC_DOUBLE;
	else if (!strcmp(dm, "string"))
		dec = DEC_STRING;
	else
		CC_BAD("decimal.handling.mode",
		       "Invalid value %s for configuration "
		       "decimal.handling.mode",
		       dm);
	enum cdc_conv kc, vc;
	if (!conv_class(cc_get(c, "key.converter"), &kc))
		CC_BAD("key.converter",
		       "Invalid value %s for configuration key.converter: "
		       "samsa "
		       "has JsonConverter, StringConverter and AvroConverter",
		       cc_get(c, "key.converter"));
	if (!conv_class(cc_get(c, "value.converter"), &vc))
		CC_BAD("value.converter",
		       "Invalid value %s for configuration value.converter: "
		       "samsa has JsonConverter, StringConverter and "
		       "AvroConverter",
		       cc_get(c, "value.converter"));
	/* AvroConverter's one required setting; any URL will do, as
	 * samsa's own registry is the one used. */
	if (kc == CONV_AVRO && !cc_get(c, "key.converter.schema.registry.url"))
		CC_BAD("key.converter.schema.registry.url",
		       "Missing required configuration "
		       "\"key.converter.schema.registry.url\" which has no "
		       "default value.");
	if (vc == CONV_AVRO &&
	    !cc_get(c, "value.converter.schema.registry.url"))
		CC_BAD("value.converter.schema.registry.url",
		       "Missing required configuration "
		       "\"value.converter.schema.registry.url\" which has no "
		       "default value.");
	char **tr;
	int ntr = cc_split(cc_get(c, "transforms"), &tr);
	if (ntr < 0)
		CC_BAD("transforms", "out of memory");
	bool unwrap = false, drop_tomb = true;
	enum cdc_delete del = DEL_DROP;
	char **add = NULL;
	char headers_key[300] = ""; /* the unwrap's add.headers */
	for (int i = 0; i < ntr; i++) {
		char k[300];
		snprintf(k, sizeof(k), "transforms.%s.type", tr[i]);
		const char *type = cc_get(c, k);
		bool ok = false;
		for (size_t j = 0; type && j < 2; j++)
			ok |= strcmp(type, known_transforms[j]) == 0;
		bool routes = type && strcmp(type, RR_CLASS) == 0;
		if (!ok && !routes) {
			cc_free_list(tr);
			cc_free_list(add);
			CC_BAD(k,
			       "Invalid value %s for configuration %s: samsa "
			       "has the transforms "
			       "io.debezium.transforms.ExtractNewRecordState "
			       "and " RR_CLASS,
			       type ? type : "null", k);
		}
		snprintf(k, sizeof(k), "transforms.%s.predicate", tr[i]);
		if (cc_get(c, k)) {
			cc_free_list(tr);
			cc_free_list(add);
			CC_BAD(k, "samsa applies transforms to every record: "
				  "predicates are not supported");
		}
		if (routes)
			continue; /* regex_router.c reads it */
		unwrap = true;
		snprintf(k, sizeof(k), "transforms.%s.drop.tombstones", tr[i]);
		drop_tomb = cc_bool(cc_get(c, k), true);
		snprintf(k, sizeof(k), "transforms.%s.delete.handling.mode",
			 tr[i]);
		const char *d = cc_get(c, k);
		if (!d || !strcmp(d, "drop"))
			del = DEL_DROP;
		else if (!strcmp(d, "none"))
			del = DEL_NONE;
		else if (!strcmp(d, "rewrite"))
			del = DEL_REWRITE;
		else {
			cc_free_list(tr);
			cc_free_list(add);
			CC_BAD(k, "Invalid value %s for configuration %s", d,
			       k);
		}
		/* Debezium 3.x's one setting for both, which wins when given:
		 * tombstone (3.x's default) and delete-to-tombstone both make
		 * each delete a record with a null value; only
		 * rewrite-with-tombstone keeps the connector's tombstone. */
		snprintf(k, sizeof(k),
			 "transforms.%s.delete.tombstone.handling.mode", tr[i]);
		const char *dt = cc_get(c, k);
		if (dt && delete_tombstone_mode(dt, &del, &drop_tomb) < 0) {
			cc_free_list(tr);
			cc_free_list(add);
			CC_BAD(k,
			       "Invalid value %s for configuration %s: drop, "
			       "tombstone, rewrite, rewrite-with-tombstone or "
			       "delete-to-tombstone",
			       dt, k);
		}
		snprintf(headers_key, sizeof(headers_key),
			 "transforms.%s.add.headers", tr[i]);
		char **hl;
		int nhl = cc_split(cc_get(c, headers_key), &hl);
		cc_free_list(hl);
		if (nhl > CDC_MAX_HEADERS) {
			cc_free_list(tr);
			cc_free_list(add);
			CC_BAD(headers_key,
			       "Invalid value for configuration %s: samsa "
			       "adds at most %d headers",
			       headers_key, CDC_MAX_HEADERS);
		}
		snprintf(k, sizeof(k), "transforms.%s.add.fields", tr[i]);
		cc_free_list(add);
		if (cc_split(cc_get(c, k), &add) < 0) {
			cc_free_list(tr);
			CC_BAD(k, "out of memory");
		}
	}
	cc_free_list(tr);
	/* Debezium's filters: whole names, ignoring case. */
	enum { NLISTS = 6 };
	regex_t *r[NLISTS] = {0};
	int n[NLISTS] = {0};
	const char *lists[NLISTS][2] = {
		{"table.include.list", "table.whitelist"},
		{"table.exclude.list", "table.blacklist"},
		{"schema.include.list", "schema.whitelist"},
		{"schema.exclude.list", "schema.blacklist"},
		{"column.include.list", "column.whitelist"},
		{"column.exclude.list", "column.blacklist"}};
	if (cc_get2(c, lists[4][0], lists[4][1]) &&
	    cc_get2(c, lists[5][0], lists[5][1])) {
		cc_free_list(add);
		CC_BAD("column.exclude.list",
		       "Column include list is already specified: set "
		       "column.include.list or column.exclude.list");
	}
	for (int i = 0; i < NLISTS; i++) {
		const char *v = cc_get2(c, lists[i][0], lists[i][1]);
		if (cc_regexes(v, true, &r[i], &n[i], err, errlen) < 0) {
			snprintf(key, keylen, "%s",
				 cc_get(c, lists[i][0]) ? lists[i][0]
							: lists[i][1]);
			for (int j = 0; j <= i; j++)
				cc_free_regexes(r[j], n[j]);
			cc_free_list(add);
			return -1;
		}
	}
	regex_t *kcr;
	int nkc;
	if (compile_key_columns(cc_get(c, "message.key.columns"), &kcr, &nkc,
				err, errlen) < 0) {
		snprintf(key, keylen, "message.key.columns");
		for (int j = 0; j < NLISTS; j++)
			cc_free_regexes(r[j], n[j]);
		cc_free_regexes(kcr, nkc);
		cc_free_list(add);
		return -1;
	}
	if (!t) {
		for (int j = 0; j < NLISTS; j++)
			cc_free_regexes(r[j], n[j]);
		cc_free_regexes(kcr, nkc);
		cc_free_list(add);
		return 0;
	}
	t->keycols = kcr;
	t->nkeycols = nkc;
	t->inc = r[0], t->ninc = n[0];
	t->exc = r[1], t->nexc = n[1];
	t->sinc = r[2], t->nsinc = n[2];
	t->sexc = r[3], t->nsexc = n[3];
	t->cinc = r[4], t->ncinc = n[4];
	t->cexc = r[5], t->ncexc = n[5];
	char **lit;
	int nl = cc_split(cc_get2(c, "table.include.list", "table.whitelist"),
			  &lit);
	t->literals = calloc((size_t)nl + 1, sizeof(char *));
	for (int i = 0; i < nl; i++) {
		bool plain = true;
		for (const char *p = lit[i]; *p; p++)
			plain &= isalnum((unsigned char)*p) || *p == '_' ||
				 *p == '.';
		if (plain)
			t->literals[t->nliterals++] = strdup(lit[i]);
	}
	cc_free_list(lit);
	t->snap = snap;
	t->pubmode = pub;
	t->slot = strdup(cc_get(c, "slot.name") ? cc_get(c, "slot.name")
						: "debezium");
	t->pub = strdup(cc_get(c, "publication.name")
				? cc_get(c, "publication.name")
				: "dbz_publication");
	t->o.prefix = strdup(prefix);
	t->o.dbname = strdup(cc_get(c, "database.dbname"));
	t->o.tombstones = cc_bool(cc_get(c, "tombstones.on.delete"), true);
	t->o.decimal = dec;
	const char *tp = cc_get(c, "time.precision.mode");
	t->o.time_connect = tp && mode_is(tp, "connect", 7);
	t->o.time_micro = tp && mode_is(tp, "adaptive_time_microseconds", 26);
	const char *ih = cc_get(c, "interval.handling.mode");
	t->o.interval_string = ih && mode_is(ih, "string", 6);
	const char *bh = cc_get(c, "binary.handling.mode");
	t->o.binary_base64 =
		bh && (!strcmp(bh, "base64") || !strcmp(bh, "hex"));
	t->o.binary_hex = bh && !strcmp(bh, "hex");
	t->o.key_conv = kc;
	t->o.value_conv = vc;
	t->o.key_schemas =
		cc_bool(cc_get(c, "key.converter.schemas.enable"), true);
	t->o.value_schemas =
		cc_bool(cc_get(c, "value.converter.schemas.enable"), true);
	t->o.unwrap = unwrap;
	t->o.unwrap_drop_tombstones = drop_tomb;
	t->o.unwrap_delete = del;
	t->o.add_fields = add;
	if (cc_split(cc_get(c, headers_key), &t->o.add_headers) < 0)
		CC_BAD(headers_key, "out of memory");
	t->drop_slot = cc_bool(cc_get(c, "slot.drop.on.stop"), false);
	skipped_ops(cc_get(c, "skipped.operations"), t->skipped);
	/* TRUNCATE: with truncate.handling.mode given, Debezium 1.9.7's
	 * rule (getSkippedOperations): skip adds TRUNCATE to the skipped set,
	 * include leaves the set to skipped.operations, which has no default
	 * there; so a truncate goes out only with include and no t in
	 * skipped.operations. Without it, 3.x's: skipped.operations defaults
	 * to "t", and one given without t lets truncates through. */
	const char *th = cc_get(c, "truncate.handling.mode");
	bool truncates =
		th ? mode_is(th, "include", 7) && !strchr(t->skipped, 't')
		   : so && !strchr(t->skipped, 't');
	char *tp_skip = strchr(t->skipped, 't');
	if (truncates && tp_skip)
		memmove(tp_skip, tp_skip + 1, strlen(tp_skip));
	else if (!truncates && !tp_skip)
		t->skipped[strlen(t->skipped)] = 't';
	const char *hb = cc_get(c, "heartbeat.interval.ms");
	t->heartbeat_ms = hb ? atoll(hb) : 0;
	const char *wait = cc_get(c, "retriable.restart.connector.wait.ms");
	t->retry_wait_ms = wait ? atoll(wait) : 10000;
	const char *action = cc_get(c, "heartbeat.action.query");
	t->hb_action = action && *action ? strdup(action) : NULL;
	t->hb_topic = strdup(hb_topic);
	const char *keys[] = {"host", "port", "user", "password", "dbname"};
	const char *vals[] = {cc_get(c, "database.hostname"),
			      port ? port : "5432", cc_get(c, "database.user"),
			      cc_get(c, "database.password"),
			      cc_get(c, "database.dbname")};
	int k = 0;
	for (int i = 0; i < 5; i++)
		if (vals[i]) {
			t->kw[k] = strdup(keys[i]);
			t->kv[k++] = strdup(vals[i]);
		}
	/* Debezium's TLS settings are libpq's under database.* names. */
	for (size_t i = 0; i < sizeof(ssl_params) / sizeof(*ssl_params); i++)
		if (cc_get(c, ssl_params[i][0])) {
			t->kw[k] = strdup(ssl_params[i][1]);
			t->kv[k++] = strdup(cc_get(c, ssl_params[i][0]));
		}
	t->kw[k] = strdup("options");
	/* Text the way Debezium expects it: ISO dates, UTC, exact floats,
	 * bytea in hex (whatever the database's or role's bytea_output),
	 * money as "-$1,234.56". */
	t->kv[k++] = strdup("-c datestyle=ISO -c intervalstyle=postgres "
			    "-c extra_float_digits=3 -c TimeZone=UTC "
			    "-c bytea_output=hex -c lc_monetary=C");
	t->kw[k] = strdup("application_name");
	t->kv[k++] = strdup("samsa-cdc");
	t->kw[k] = strdup("connect_timeout");
	t->kv[k++] = strdup("10");
	t->kw[k] = strdup("replication"); /* dropped for the SQL link */
	t->kv[k++] = strdup("database");
	return 0;
}

int cdc_validate(const json_t *config, char *key, size_t keylen, char *err,
		 size_t errlen)
{
	return parse(config, NULL, key, keylen, err, errlen);
}

/* --- connections ------------------------------------------------------- */

static void pgc_close(struct pgc *p)
{
	pg_resolve_cancel(p->resolving);
	p->resolving = NULL;
	if (p->ev)
		event_free(p->ev);
	p->ev = NULL;
	if (p->c)
		PQfinish(p->c);
	p->c = NULL;
	p->busy = p->copy = p->connecting = p->was_up = false;
}

/* Stops the task on msg; retriable: to be started again after the wait
 * (retriable.restart.connector.wait.ms, as Debezium restarts itself). */
static void stop_on(struct cdc_task *t, bool retriable, const char *msg)
{
	if (t->failed)
		return;
	size_t n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		n--;
	t->failed = true;
	t->retry_at = retriable ? st_now_ms() + t->retry_wait_ms : -1;
	free(t->trace);
	t->trace = strndup(msg, n);
	if (retriable)
		fprintf(stderr,
			"cdc %s: lost Postgres: %.*s; starting again in "
			"%lld ms\n",
			t->name, (int)n, msg, (long long)t->retry_wait_ms);
	else
		fprintf(stderr, "cdc %s: FAILED: %.*s\n", t->name, (int)n, msg);
	pgc_close(&t->repl);
	pgc_close(&t->sql);
}

static void fail(struct cdc_task *t, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	stop_on(t, false, msg);
}

/*
 * Whether a connection failure (libpq's words) may pass by itself:
 * Postgres restarting, starting up, shutting down or out of reach for a
 * while.  A wrong password or database is for good.
 */
static bool transient(const char *msg)
{
	static const char *const words[] = {
		"Connection refused",
		"timeout expired",
		"the database system is", /* starting up, shutting down ... */
		"server closed the connection unexpectedly",
		"terminating connection due to administrator command",
		"Temporary failure in name resolution",
		"Network is unreachable",
		"No route to host",
		"Connection reset by peer",
		"could not receive data from server",
		"could not send data to server",
		"no connection to the server",
		"SSL SYSCALL error",
		"too many clients already",
		"remaining connection slots are reserved",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(*words); i++)
		if (strstr(msg, words[i]))
			return true;
	return false;
}

/* An error Postgres sent that says the connection is going or gone
 * (class 08, or 57P01-57P03: shut down, crashed, cannot connect now) or
 * may be had later (53300: too many connections). */
static bool transient_result(const PGresult *r)
{
	const char *s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	return s && (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
		     strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
		     strcmp(s, "53300") == 0);
}

/* p's connection failed or went away: libpq says why. */
static void conn_failed(struct pgc *p)
{
	const char *msg = PQerrorMessage(p->c);
	stop_on(p->t, p->was_up || transient(msg), msg);
}

static void handle_copy(struct cdc_task *t, const char *buf, int len);

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
	struct pgc *p = arg;
	struct cdc_task *t = p->t;
	(void)fd;
	if (p->connecting) {
		PostgresPollingStatusType st = PQconnectPoll(p->c);
		if (st == PGRES_POLLING_FAILED) {
			conn_failed(p);
			return;
		}
		if (st == PGRES_POLLING_OK) {
			p->connecting = false;
			p->was_up = true;
			PQsetnonblocking(p->c, 1);
			p->on_done(t);
		} else {
			p->want = st == PGRES_POLLING_READING ? EV_READ
							      : EV_WRITE;
		}
		if (p->c)
			pgc_arm(p);
		return;
	}
	if (what & EV_WRITE) {
		if (PQflush(p->c) < 0) {
			conn_failed(p);
			return;
		}
	}
	if (what & EV_READ) {
		if (!PQconsumeInput(p->c)) {
			conn_failed(p);
			return;
		}
	}
	for (;;) {
		if (!p->c || t->failed)
			return;
		if (p->copy) {
			if (blocked(t))
				break;
			char *buf = NULL;
			int n = PQgetCopyData(p->c, &buf, 1);
			if (n > 0) {
				handle_copy(t, buf, n);
				PQfreemem(buf);
				continue;
			}
			if (n == 0)
				break;
			/* samsa never ends the stream itself: Postgres did,
			 * shutting down (no error), or with an error. */
			PGresult *r = PQgetResult(p->c);
			bool error =
				r && PQresultStatus(r) == PGRES_FATAL_ERROR;
			const char *why = error ? PQresultErrorMessage(r)
					  : *PQerrorMessage(p->c)
						  ? PQerrorMessage(p->c)
						  : "Postgres ended it";
			char msg[1024];
			snprintf(msg, sizeof(msg),
				 "replication stream ended: %s", why);
			stop_on(t,
				!error || transient_result(r) ||
					PQstatus(p->c) == CONNECTION_BAD,
				msg);
			PQclear(r);
			return;
		}
		if (!p->busy || PQisBusy(p->c))
			break;
		if (p->on_row && blocked(t))
			break;
		PGresult *r = PQgetResult(p->c);
		if (!r) {
			p->busy = false;
			p->on_done(t);
			continue;
		}
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_FATAL_ERROR) {
			stop_on(t,
				transient_result(r) ||
					PQstatus(p->c) == CONNECTION_BAD,
				PQresultErrorMessage(r));
			PQclear(r);
			return;
		}
		if (st == PGRES_COPY_BOTH) {
			p->copy = true;
			p->busy = false;
			PQclear(r);
			continue;
		}
		if (p->on_row)
			p->on_row(t, r);
		PQclear(r);
	}
	if (p->c)
		pgc_arm(p);
}

static void pgc_arm(struct pgc *p)
{
	if (!p->c)
		return;
	short ev = p->connecting ? p->want : EV_READ;
	if (!p->connecting && PQisnonblocking(p->c) && PQflush(p->c) == 1)
		ev |= EV_WRITE;
	if (p->ev)
		event_free(p->ev);
	p->ev = event_new(p->t->env.base, PQsocket(p->c), ev, on_sock, p);
	if (p->ev)
		event_add(p->ev, NULL);
}

/* The task's connection options into kw/kv (room for 13 more than the
 * task has), without "replication" for a SQL connection; returns how many. */
static int link_params(const struct cdc_task *t, bool replication,
		       const char **kw, const char **kv)
{
	int n = 0;
	for (int i = 0; t->kw[i]; i++) {
		if (!replication && strcmp(t->kw[i], "replication") == 0)
			continue;
		kw[n] = t->kw[i];
		kv[n++] = t->kv[i];
	}
	kw[n] = kv[n] = NULL;
	return n;
}

/* The task's options, then host and hostaddr when given (pgresolve.h). */
static void pgc_connect_to(struct pgc *p, const char *host,
			   const char *hostaddr)
{
	struct cdc_task *t = p->t;
	const char *kw[MAX_PARAMS + 2], *kv[MAX_PARAMS + 2];
	int n = link_params(t, p->replication, kw, kv);
	if (host) {
		kw[n] = "host";
		kv[n++] = host;
		kw[n] = "hostaddr";
		kv[n++] = hostaddr;
	}
	kw[n] = kv[n] = NULL;
	p->c = PQconnectStartParams(kw, kv, 0);
	if (!p->c || PQstatus(p->c) == CONNECTION_BAD) {
		fail(t, "%s", p->c ? PQerrorMessage(p->c) : "out of memory");
		return;
	}
	p->want = EV_WRITE;
	pgc_arm(p);
}

static void pgc_resolved(void *arg, const char *host, const char *hostaddr,
			 const char *err)
{
	struct pgc *p = arg;
	p->resolving = NULL;
	if (err)
		stop_on(p->t, transient(err), err);
	else
		pgc_connect_to(p, host, hostaddr);
}

static void pgc_connect(struct cdc_task *t, struct pgc *p, bool replication,
			void (*on_done)(struct cdc_task *t))
{
	p->t = t;
	p->replication = replication;
	p->connecting = true;
	p->on_done = on_done;
	p->resolving = pg_resolve_start(t->env.base, (const char *const *)t->kw,
					(const char *const *)t->kv, 0,
					pgc_resolved, p);
	if (!p->resolving)
		pgc_connect_to(p, NULL, NULL);
}

static void pgc_query(struct pgc *p, const char *sql, bool single_row,
		      void (*on_row)(struct cdc_task *t, PGresult *r),
		      void (*on_done)(struct cdc_task *t))
{
	if (!p->c)
		return;
	if (!PQsendQuery(p->c, sql)) {
		conn_failed(p);
		return;
	}
	if (single_row)
		PQsetSingleRowMode(p->c);
	p->busy = true;
	p->on_row = on_row;
	p->on_done = on_done;
	pgc_arm(p);
}

/* --- outbox ------------------------------------------------------------ */

static struct cdc_topic *topic_get(struct cdc_task *t, const char *name)
{
	for (struct cdc_topic *tp = t->topics; tp; tp = tp->next)
		if (strcmp(tp->name, name) == 0)
			return tp;
	struct cdc_topic *tp = calloc(1, sizeof(*tp));
	tp->name = strdup(name);
	tp->next = t->topics;
	t->topics = tp;
	return tp;
}

static struct mark *mark_new(struct cdc_task *t, uint64_t end_lsn)
{
	struct mark *m = calloc(1, sizeof(*m));
	m->end_lsn = end_lsn;
	if (t->marks_tail)
		t->marks_tail->next = m;
	else
		t->marks = m;
	t->marks_tail = m;
	return m;
}

static void start_streaming(struct cdc_task *t);
static void task_free(struct cdc_task *t);

/* Drops the done marks at the head, moving the flush position. */
static void marks_advance(struct cdc_task *t)
{
	while (t->marks && t->marks->closed && t->marks->pending == 0) {
		struct mark *m = t->marks;
		if (m->end_lsn > t->flushed)
			t->flushed = m->end_lsn;
		t->marks = m->next;
		if (!t->marks)
			t->marks_tail = NULL;
		if (m == t->snap_mark) {
			t->snap_mark = NULL;
			if (!t->stopped && !t->failed)
				start_streaming(t);
		}
		free(m);
	}
}

/* samsa's own store failed what for topic: for good, or (ST_UNAVAILABLE;
 * its fixed queries fail only so) because its Postgres went away, which
 * may pass. */
static void store_failed(struct cdc_task *t, enum st_status st,
			 const char *what, const char *topic, const char *msg)
{
	char why[1024];
	snprintf(why, sizeof(why), "%s %s failed: %s", what, topic,
		 msg ? msg : "storage error");
	stop_on(t, st == ST_UNAVAILABLE, why);
}

static void on_appended(void *arg, const struct st_append_result *r)
{
	struct out *o = arg;
	struct cdc_task *t = o->t;
	t->inflight--;
	t->inflight_bytes -= o->blob.len;
	if (r->status != ST_OK)
		store_failed(t, r->status, "appending to", o->tp->name,
			     r->message);
	else
		for (int i = 0; i < o->nmarks; i++)
			o->marks[i]->pending--;
	t->appending--;
	out_free(o);
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	marks_advance(t);
	pump(t);
	if (t->reading_paused && t->inflight_bytes < MAX_INFLIGHT / 2) {
		t->reading_paused = false;
		/* Resume reading what libpq already holds, too. */
		if (t->repl.c)
			on_sock(-1, 0, &t->repl);
		if (t->sql.c)
			on_sock(-1, 0, &t->sql);
	}
}

/* How pump() creates topic name: its partitions, and its configs in
 * *cfg (may be NULL when not wanted). */
static int32_t creation(const struct cdc_task *t, const char *name,
			const struct tc_override **cfg, size_t *ncfg)
{
	int32_t n;
	const struct tc_override *c;
	size_t nc;
	tcr_lookup(t->creation, name, &n, &c, &nc);
	if (n == -1)
		n = (int32_t)bc_get_int("num.partitions", 1);
	if (cfg) {
		*cfg = c;
		*ncfg = nc;
	}
	return n > 0 ? n : 1;
}

static void on_created(void *arg, enum st_status st, const char *msg)
{
	struct cdc_task *t = arg;
	t->inflight--;
	t->creating = false;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	if (st != ST_OK && st != ST_EXISTS)
		store_failed(t, st, "creating topic",
			     t->outbox ? t->outbox->tp->name : "?", msg);
	pump(t);
}

/* Sends the outbox's appends in order; waits when a topic is missing. */
static void pump(struct cdc_task *t)
{
	while (t->outbox && !t->creating && !t->failed && !t->stopped &&
	       t->appending < MAX_APPENDS) {
		struct out *o = t->outbox;
		struct st_topic *st =
			st_topic_find(t->env.store, kstr_c(o->tp->name));
		if (!st) {
			const struct tc_override *cfg;
			size_t ncfg;
			int32_t parts = creation(t, o->tp->name, &cfg, &ncfg);
			t->creating = true;
			t->inflight++;
			st_create_topic(t->env.store, kstr_c(o->tp->name),
					parts, cfg, ncfg, on_created, t);
			return;
		}
		/* Fold the next appends for the same topic into this one. */
		while (o->next && o->next->tp == o->tp &&
		       o->next->part == o->part &&
		       o->blob.len + o->next->blob.len <= MAX_APPEND_BYTES) {
			struct out *x = o->next;
			struct mark **ms = realloc(
				o->marks,
				sizeof(*ms) * (size_t)(o->nmarks + x->nmarks));
			if (!ms)
				break;
			o->marks = ms;
			kb_write_raw(&o->blob, x->blob.buf, x->blob.len);
			if (!kb_writer_ok(&o->blob)) {
				fail(t, "out of memory");
				return;
			}
			for (int i = 0; i < x->nmarks; i++)
				o->marks[o->nmarks++] = x->marks[i];
			o->next = x->next;
			if (t->outbox_tail == x)
				t->outbox_tail = o;
			x->nmarks = 0;
			out_free(x);
		}
		/* Fewer partitions than when it was routed (the topic was
		 * made elsewhere meanwhile): wrap around. */
		struct st_partition *p =
			st_partition(st, o->part % st->npartitions);
		t->outbox = o->next;
		if (!t->outbox)
			t->outbox_tail = NULL;
		t->inflight++;
		t->appending++;
		st_append(t->env.store, p, o->blob.buf, o->blob.len,
			  on_appended, o);
	}
}

/* About what r takes in a batch (lengths, header names, attributes). */
static size_t rec_size(const struct rec *r)
{
	return r->kl + r->vl + r->hl + 40;
}

/*
 * The most one batch for tp should take: MAX_BATCH_BYTES, less under the
 * topic's max.message.bytes (its own, or what creating it will give it),
 * with room for the estimate's error.
 */
static size_t batch_limit(const struct cdc_task *t, const struct cdc_topic *tp)
{
	const struct st_topic *st =
		st_topic_find(t->env.store, kstr_c(tp->name));
	struct tc_values v;
	if (st) {
		v = st->cfg;
	} else {
		const struct tc_override *cfg;
		size_t ncfg;
		creation(t, tp->name, &cfg, &ncfg);
		tc_resolve(cfg, ncfg, &v);
	}
	size_t cap = v.max_message_bytes < 0
			     ? MAX_BATCH_BYTES
			     : (size_t)v.max_message_bytes / 4 * 3;
	return cap < MAX_BATCH_BYTES ? (cap > 0 ? cap : 1) : MAX_BATCH_BYTES;
}

/* Appends a batch of n records to o's blob (failing t if it cannot). */
static void build_batch(struct cdc_task *t, struct out *o,
			const struct rb_new_record *recs, int n)
{
	char err[160];
	if (rb_build(&o->blob, 0, 0, -1, -1, -1, recs, n, err, sizeof(err)) < 0)
		fail(t, "building a batch: %s", err);
}

/* Queues recs (consumed) for tp as batches with the LSN header. */
static void enqueue(struct cdc_task *t, struct cdc_topic *tp, int32_t part,
		    struct rec *recs, int n, uint64_t lsn, struct mark *m)
{
	uint8_t lsnb[8];
	for (int i = 0; i < 8; i++)
		lsnb[i] = (uint8_t)(lsn >> (56 - 8 * i));
	/* Each record's headers: the LSN's, then the transforms'. */
	size_t nhdr = 0;
	for (struct rec *r = recs; r; r = r->next)
		nhdr += 1 + (size_t)r->nh;
	struct kstr *hk = malloc(nhdr * sizeof(*hk)),
		    *hv = malloc(nhdr * sizeof(*hv));
	struct rb_new_record *arr = calloc((size_t)n, sizeof(*arr));
	struct out *o = calloc(1, sizeof(*o));
	if (o)
		o->marks = malloc(sizeof(*o->marks));
	if (!o || !arr || !o->marks || !hk || !hv) {
		if (o)
			free(o->marks);
		free(o);
		free(arr);
		free(hk);
		free(hv);
		while (recs) {
			struct rec *r = recs;
			recs = r->next;
			free(r);
		}
		fail(t, "out of memory");
		return;
	}
	o->t = t;
	o->tp = tp;
	o->part = part;
	o->marks[0] = m;
	o->nmarks = 1;
	int64_t now = st_now_ms();
	int i = 0, start = 0;
	size_t bytes = 0, h = 0, limit = batch_limit(t, tp);
	/* the batches' size, about: one allocation instead of doublings */
	for (struct rec *r = recs; r; r = r->next)
		bytes += rec_size(r);
	kb_writer_reserve(&o->blob, bytes + 64 * (bytes / limit + 1));
	bytes = 0;
	for (struct rec *r = recs; r; r = r->next, i++) {
		/* A batch ends before the record that would take it over. */
		if (i > start && bytes + rec_size(r) > limit) {
			build_batch(t, o, arr + start, i - start);
			start = i;
			bytes = 0;
		}
		arr[i].Timestamp = now;
		arr[i].Key = r->key ? (struct kstr){r->key, (int32_t)r->kl}
				    : KSTR_NULL;
		arr[i].Value = r->val ? (struct kstr){r->val, (int32_t)r->vl}
				      : KSTR_NULL;
		arr[i].HeaderCount = 1 + r->nh;
		arr[i].HeaderKeys = hk + h;
		arr[i].HeaderValues = hv + h;
		hk[h] = KSTR_LIT("__samsa.lsn");
		hv[h] = (struct kstr){(const char *)lsnb, 8};
		get_headers(r, hk + h + 1, hv + h + 1);
		h += 1 + (size_t)r->nh;
		bytes += rec_size(r);
	}
	if (n > start)
		build_batch(t, o, arr + start, n - start);
	while (recs) {
		struct rec *r = recs;
		recs = r->next;
		free(r);
	}
	free(arr);
	free(hk);
	free(hv);
	m->pending++;
	t->inflight_bytes += o->blob.len;
	if (t->outbox_tail)
		t->outbox_tail->next = o;
	else
		t->outbox = o;
	t->outbox_tail = o;
	if (t->inflight_bytes > MAX_INFLIGHT)
		t->reading_paused = true;
}

/* The partitions tp has, or will have when pump() creates it. */
static int32_t topic_partitions(const struct cdc_task *t,
				const struct cdc_topic *tp)
{
	const struct st_topic *st =
		st_topic_find(t->env.store, kstr_c(tp->name));
	return st ? st->npartitions : creation(t, tp->name, NULL, NULL);
}

/* Takes the records of list that match tp, and part unless part < 0, off
 * it in order; returns them and their count in *n. */
static struct rec *take(struct rec **list, const struct cdc_topic *tp,
			int32_t part, int *n)
{
	struct rec *mine = NULL, **mt = &mine, **pp = list;
	*n = 0;
	while (*pp) {
		struct rec *r = *pp;
		if (r->tp == tp && (part < 0 || r->part == part)) {
			*pp = r->next;
			r->next = NULL;
			*mt = r;
			mt = &r->next;
			(*n)++;
		} else {
			pp = &r->next;
		}
	}
	return mine;
}

/* Groups a transaction's records by topic and partition (in first-seen
 * order) and queues them under one mark.  A record goes to the partition
 * a Kafka producer (Kafka Connect's, for Debezium) would choose for its
 * serialized key; a change without a key (a table without a primary key)
 * to partition 0. */
static void flush_records(struct cdc_task *t, struct rec *list, uint64_t lsn,
			  struct mark *m, bool dedup)
{
	while (list) {
		struct cdc_topic *tp = list->tp;
		int n;
		struct rec *of_topic = take(&list, tp, -1, &n);
		int32_t nparts = topic_partitions(t, tp);
		for (struct rec *r = of_topic; r; r = r->next)
			r->part = nparts > 1 && r->key
					  ? kafka_key_partition(r->key, r->kl,
								nparts)
					  : 0;
		while (of_topic) {
			int32_t part = of_topic->part;
			struct rec *mine = take(&of_topic, tp, part, &n);
			if (dedup && lsn <= topic_last_lsn(tp, part)) {
				/* Already in the log before a restart. */
				while (mine) {
					struct rec *r = mine;
					mine = r->next;
					free(r);
				}
				continue;
			}
			enqueue(t, tp, part, mine, n, lsn, m);
		}
	}
	pump(t);
}

struct emit_ctx {
	struct cdc_task *t;
	struct cdc_topic *tp;
	struct rec ***tail;
	int *count;
};

static void emit(void *arg, const char *key, size_t kl, const char *val,
		 size_t vl, const struct cdc_header *hdrs, int nh)
{
	struct emit_ctx *e = arg;
	struct rec *r = malloc(sizeof(*r) + kl + vl + headers_size(hdrs, nh));
	if (!r) {
		fail(e->t, "out of memory");
		return;
	}
	r->tp = e->tp;
	r->next = NULL;
	r->key = key ? memcpy(r->data, key, kl) : NULL;
	r->kl = kl;
	r->val = val ? memcpy(r->data + kl, val, vl) : NULL;
	r->vl = vl;
	r->nh = nh;
	r->hl = headers_size(hdrs, nh);
	put_headers(r->data + kl + vl, hdrs, nh);
	**e->tail = r;
	*e->tail = &r->next;
	if (e->count)
		(*e->count)++;
}

/* --- AvroConverter: schemas in the registry ---------------------------- */

struct reg_call {
	struct cdc_task *t;
	struct avro_sub *sub;
};

static struct avro_sub *sub_find(struct cdc_task *t, const char *subject,
				 const char *text)
{
	for (struct avro_sub *s = t->subs; s; s = s->next)
		if (strcmp(s->subject, subject) == 0 &&
		    strcmp(s->text, text) == 0)
			return s;
	return NULL;
}

/* Sets rel's ids from the registrations known. */
static void avro_resolve(struct cdc_task *t, struct cdc_rel *rel)
{
	char subject[1100];
	struct avro_sub *s;
	if (!rel->tp) /* not captured */
		return;
	if (rel->key_avro) {
		snprintf(subject, sizeof(subject), "%s-key", rel->tp->name);
		s = sub_find(t, subject, rel->key_avro);
		rel->key_id = s ? s->id : -1;
	}
	if (rel->value_avro) {
		snprintf(subject, sizeof(subject), "%s-value", rel->tp->name);
		s = sub_find(t, subject, rel->value_avro);
		rel->value_id = s ? s->id : -1;
	}
}

static void on_schema_registered(void *arg, int32_t id, const char *err)
{
	struct reg_call *rc = arg;
	struct cdc_task *t = rc->t;
	struct avro_sub *sub = rc->sub;
	free(rc);
	t->inflight--;
	t->registering--;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	if (t->failed)
		return;
	if (id < 0) {
		/* As Connect reports the converter's failure. */
		fail(t, "Failed to serialize Avro data from topic %s: %s",
		     sub->topic, err ? err : "registration failed");
		return;
	}
	sub->id = id;
	for (struct cdc_rel *r = t->rels; r; r = r->next)
		avro_resolve(t, r);
	if (t->registering > 0)
		return;
	if (t->after_registering) {
		void (*then)(struct cdc_task *) = t->after_registering;
		t->after_registering = NULL;
		then(t);
		return;
	}
	/* Read on: what libpq holds already, then the socket. */
	if (t->repl.c)
		on_sock(-1, 0, &t->repl);
}

static void avro_register(struct cdc_task *t, const char *topic,
			  const char *suffix, const char *text)
{
	char subject[1100];
	snprintf(subject, sizeof(subject), "%s-%s", topic, suffix);
	if (sub_find(t, subject, text))
		return;
	if (!t->env.register_schema) {
		fail(t, "io.confluent.connect.avro.AvroConverter needs "
			"samsa's Schema Registry (--registry)");
		return;
	}
	struct avro_sub *s = calloc(1, sizeof(*s));
	struct reg_call *rc = calloc(1, sizeof(*rc));
	if (s) {
		s->subject = strdup(subject);
		s->text = strdup(text);
		s->topic = strdup(topic);
	}
	if (!s || !rc || !s->subject || !s->text || !s->topic) {
		if (s) {
			free(s->subject);
			free(s->text);
			free(s->topic);
		}
		free(s);
		free(rc);
		fail(t, "out of memory");
		return;
	}
	s->id = -1;
	s->next = t->subs;
	t->subs = s;
	rc->t = t;
	rc->sub = s;
	t->registering++;
	t->inflight++;
	t->env.register_schema(t->env.registry, subject, text,
			       on_schema_registered, rc);
}

/*
 * Makes sure rel's Avro schemas are registered: the ids come from the
 * task's cache, else registrations start and reading waits for them.
 */
static void avro_prepare(struct cdc_task *t, struct cdc_rel *rel)
{
	if (!rel->included || t->failed)
		return;
	if (rel->key_avro)
		avro_register(t, rel->tp->name, "key", rel->key_avro);
	if (rel->value_avro && !t->failed)
		avro_register(t, rel->tp->name, "value", rel->value_avro);
	avro_resolve(t, rel);
}

/* --- catalog, publication, slot ---------------------------------------- */

static bool included(struct cdc_task *t, const char *schema, const char *table)
{
	char full[512];
	snprintf(full, sizeof(full), "%s.%s", schema, table);
	if (t->nsinc && !cc_matches(t->sinc, t->nsinc, schema))
		return false;
	if (t->nsexc && cc_matches(t->sexc, t->nsexc, schema))
		return false;
	if (t->ninc && !cc_matches(t->inc, t->ninc, full))
		return false;
	if (t->nexc && cc_matches(t->exc, t->nexc, full))
		return false;
	return true;
}

static struct cdc_rel *rel_find(struct cdc_task *t, uint32_t relid)
{
	for (struct cdc_rel *r = t->rels; r; r = r->next)
		if (r->relid == relid)
			return r;
	return NULL;
}

static void rel_free(struct cdc_rel *r)
{
	for (int i = 0; i < r->ncols; i++)
		free(r->cols[i].name);
	free(r->cols);
	free(r->schema);
	free(r->table);
	free(r->topic);
	cdc_rel_schemas_free(r);
	free(r);
}

static void rel_name(struct cdc_task *t, struct cdc_rel *r)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s.%s.%s", t->o.prefix, r->schema,
		 r->table);
	/* Topic names allow [a-zA-Z0-9._-] only. */
	for (char *p = buf; *p; p++)
		if (!(isalnum((unsigned char)*p) || *p == '.' || *p == '_' ||
		      *p == '-'))
			*p = '_';
	free(r->topic);
	r->topic = strdup(buf);
	r->included = included(t, r->schema, r->table);
	r->tp = NULL;
	if (!r->included)
		return;
	/* The topic RegexRouter transforms send it to; schema names keep
	 * the table's own, as in Connect, where transforms run after the
	 * connector has named them. */
	char routed[1024] = "";
	if (!rr_route(t->router, buf, routed, sizeof(routed)) ||
	    !st_topic_name_valid(kstr_c(routed))) {
		fail(t, "RegexRouter made %s of %s: not a topic name", routed,
		     buf);
		/* Nothing of it is sent; the slot stays where it was. */
		r->included = false;
		return;
	}
	r->tp = topic_get(t, routed);
}

static void on_catalog_row(struct cdc_task *t, PGresult *res)
{
	for (int i = 0; i < PQntuples(res); i++) {
		uint32_t relid =
			(uint32_t)strtoul(PQgetvalue(res, i, 0), NULL, 10);
		struct cdc_rel *r = rel_find(t, relid);
		if (!r) {
			r = calloc(1, sizeof(*r));
			r->relid = relid;
			r->schema = strdup(PQgetvalue(res, i, 1));
			r->table = strdup(PQgetvalue(res, i, 2));
			r->replident = PQgetvalue(res, i, 3)[0];
			/* Kept in catalog order: the snapshot follows it. */
			struct cdc_rel **tail = &t->rels;
			while (*tail)
				tail = &(*tail)->next;
			*tail = r;
			rel_name(t, r);
		}
		r->cols = realloc(r->cols,
				  sizeof(*r->cols) * (size_t)(r->ncols + 1));
		struct cdc_col *c = &r->cols[r->ncols++];
		*c = (struct cdc_col){0};
		c->name = strdup(PQgetvalue(res, i, 4));
		c->oid = (uint32_t)strtoul(PQgetvalue(res, i, 5), NULL, 10);
		c->typmod = atoi(PQgetvalue(res, i, 6));
		c->key = PQgetvalue(res, i, 8)[0] == 't';
		c->optional = PQgetvalue(res, i, 7)[0] != 't' && !c->key;
	}
}

static void step_slot_check(struct cdc_task *t);
static void step_publication(struct cdc_task *t);

static void on_literals(struct cdc_task *t)
{
	step_publication(t);
}

/* message.key.columns: the columns named for rel's table make its key
 * (in table order); a table it names no column of keeps its primary key. */
static void key_columns(struct cdc_task *t, struct cdc_rel *rel)
{
	if (!t->nkeycols)
		return;
	bool *m = calloc((size_t)rel->ncols + 1, sizeof(bool));
	bool any = false;
	for (int i = 0; i < rel->ncols; i++) {
		char full[1024];
		snprintf(full, sizeof(full), "%s.%s.%s", rel->schema,
			 rel->table, rel->cols[i].name);
		m[i] = cc_matches(t->keycols, t->nkeycols, full);
		any |= m[i];
	}
	for (int i = 0; any && i < rel->ncols; i++)
		rel->cols[i].key = m[i];
	free(m);
}

/* column.include.list / column.exclude.list: the columns left out of
 * rel's values (its key keeps its columns, as Debezium's does). */
static void value_columns(struct cdc_task *t, struct cdc_rel *rel)
{
	for (int i = 0; (t->ncinc || t->ncexc) && i < rel->ncols; i++) {
		char full[1024];
		snprintf(full, sizeof(full), "%s.%s.%s", rel->schema,
			 rel->table, rel->cols[i].name);
		rel->cols[i].excluded =
			t->ncinc ? !cc_matches(t->cinc, t->ncinc, full)
				 : cc_matches(t->cexc, t->ncexc, full);
	}
}

static void catalog_checked(struct cdc_task *t);

static void on_catalog(struct cdc_task *t)
{
	for (struct cdc_rel *r = t->rels; r; r = r->next) {
		key_columns(t, r);
		value_columns(t, r);
		cdc_rel_schemas(&t->o, r);
		avro_prepare(t, r);
	}
	if (t->heartbeat_ms > 0) {
		json_t *ks, *vs;
		cdc_heartbeat_schemas(&ks, &vs);
		if (t->o.key_conv == CONV_AVRO) {
			t->hb_key_avro = cdc_avro_schema(ks);
			avro_register(t, t->hb_topic, "key", t->hb_key_avro);
		}
		if (t->o.value_conv == CONV_AVRO && !t->failed) {
			t->hb_value_avro = cdc_avro_schema(vs);
			avro_register(t, t->hb_topic, "value",
				      t->hb_value_avro);
		}
		json_decref(ks);
		json_decref(vs);
	}
	if (t->failed)
		return;
	if (t->registering > 0) {
		t->phase = "registering schemas";
		t->after_registering = catalog_checked;
		return;
	}
	catalog_checked(t);
}

static void catalog_checked(struct cdc_task *t)
{
	/* A table the include list names but the database lacks: let
	 * Postgres say so, in its own words. */
	char sql[8192] = "SELECT 1";
	size_t len = strlen(sql);
	bool any = false;
	for (int i = 0; i < t->nliterals; i++) {
		bool found = false;
		char full[512];
		for (struct cdc_rel *r = t->rels; r && !found; r = r->next) {
			snprintf(full, sizeof(full), "%s.%s", r->schema,
				 r->table);
			found = strcasecmp(full, t->literals[i]) == 0;
		}
		if (found)
			continue;
		char *lit = quote(t->literals[i], '\'');
		len += (size_t)snprintf(sql + len, sizeof(sql) - len,
					", %s::regclass", lit ? lit : "''");
		free(lit);
		any = true;
	}
	t->phase = "publication";
	if (any && len < sizeof(sql))
		pgc_query(&t->sql, sql, false, NULL, on_literals);
	else
		step_publication(t);
}

static void step_catalog(struct cdc_task *t)
{
	t->phase = "catalog";
	pgc_query(&t->sql,
		  "SELECT c.oid, n.nspname, c.relname, c.relreplident, "
		  "a.attname, a.atttypid, a.atttypmod, a.attnotnull, "
		  "coalesce(a.attnum = ANY(i.indkey), false) "
		  "FROM pg_class c JOIN pg_namespace n ON n.oid = "
		  "c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid "
		  "AND a.attnum > 0 AND NOT a.attisdropped "
		  "LEFT JOIN pg_index i ON i.indrelid = c.oid AND "
		  "i.indisprimary WHERE c.relkind IN ('r', 'p') AND "
		  "n.nspname NOT IN ('pg_catalog', 'information_schema') AND "
		  "n.nspname NOT LIKE 'pg_toast%' AND NOT c.relispartition "
		  "ORDER BY n.nspname, c.relname, a.attnum",
		  false, on_catalog_row, on_catalog);
}

/* s between quote characters q, q doubled inside (no connection needed:
 * the SQL link closes after the snapshot). */
static char *quote(const char *s, char q)
{
	size_t n = strlen(s);
	char *out = malloc(2 * n + 3), *o = out;
	*o++ = q;
	for (; *s; s++) {
		if (*s == q)
			*o++ = q;
		*o++ = *s;
	}
	*o++ = q;
	*o = '\0';
	return out;
}

static char *quote_ident(struct cdc_task *t, const char *s)
{
	(void)t;
	return quote(s, '"');
}

static void step_publication(struct cdc_task *t)
{
	if (t->pubmode == PUB_DISABLED) {
		step_slot_check(t);
		return;
	}
	struct kb_writer w;
	kb_writer_init(&w);
	char *pub = quote_ident(t, t->pub);
	char *publit = quote(t->pub, '\'');
	char tables[65536] = "";
	size_t tl = 0;
	for (struct cdc_rel *r = t->rels; r; r = r->next) {
		if (!r->included)
			continue;
		char *s = quote_ident(t, r->schema),
		     *n = quote_ident(t, r->table);
		tl += (size_t)snprintf(tables + tl,
				       tl < sizeof(tables) ? sizeof(tables) - tl
							   : 0,
				       "%s%s.%s", tl ? ", " : "", s, n);
		free(s);
		free(n);
	}
	char sql[70000];
	if (t->pubmode == PUB_ALL)
		snprintf(sql, sizeof(sql),
			 "DO $samsa$ BEGIN IF NOT EXISTS (SELECT 1 FROM "
			 "pg_publication WHERE pubname = %s) THEN EXECUTE "
			 "'CREATE PUBLICATION %s FOR ALL TABLES'; END IF; "
			 "END $samsa$",
			 publit, pub);
	else {
		char *esc = quote(tables, '\'');
		/* format() keeps the quoting of the table list intact. */
		snprintf(sql, sizeof(sql),
			 "DO $samsa$ BEGIN IF NOT EXISTS (SELECT 1 FROM "
			 "pg_publication WHERE pubname = %s) THEN EXECUTE "
			 "'CREATE PUBLICATION %s' || CASE WHEN %s = '' THEN '' "
			 "ELSE ' FOR TABLE ' || %s END; ELSIF %s <> '' THEN "
			 "EXECUTE 'ALTER PUBLICATION %s SET TABLE ' || %s; "
			 "END IF; END $samsa$",
			 publit, pub, esc, esc, esc, pub, esc);
		free(esc);
	}
	free(publit);
	free(pub);
	kb_writer_free(&w);
	pgc_query(&t->sql, sql, false, NULL, step_slot_check);
}

static void on_slot_row(struct cdc_task *t, PGresult *r)
{
	if (PQntuples(r) > 0)
		t->slot_exists = true;
}

static void step_create_slot(struct cdc_task *t);
static void step_snapshot(struct cdc_task *t);
static void step_dedup(struct cdc_task *t);

static bool need_snapshot(struct cdc_task *t)
{
	if (t->snap == SNAP_NEVER)
		return false;
	if (t->snap == SNAP_ALWAYS)
		return true;
	/* when_needed: also when the stored position is gone, i.e. the
	 * slot that held it no longer exists. */
	if (t->snap == SNAP_WHEN_NEEDED && t->slot_lost)
		return true;
	return !t->snapshot_done;
}

static void on_slot_dropped(struct cdc_task *t)
{
	t->slot_exists = false;
	step_create_slot(t);
}

static void on_slot_checked(struct cdc_task *t)
{
	t->slot_lost = !t->slot_exists && t->snapshot_done;
	if (t->slot_lost && t->snap == SNAP_WHEN_NEEDED)
		fprintf(stderr,
			"cdc %s: slot %s is gone: snapshot again "
			"(snapshot.mode=when_needed)\n",
			t->name, t->slot);
	if (t->slot_exists && need_snapshot(t)) {
		/* A snapshot that never completed (or mode always): start
		 * over from a new slot and its own snapshot. */
		char *q = quote_ident(t, t->slot);
		char sql[512];
		snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT %s", q);
		free(q);
		pgc_query(&t->repl, sql, false, NULL, on_slot_dropped);
		return;
	}
	if (t->slot_exists) {
		step_dedup(t);
		return;
	}
	step_create_slot(t);
}

static void step_slot_check(struct cdc_task *t)
{
	t->phase = "slot";
	char *lit = quote(t->slot, '\'');
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "SELECT 1 FROM pg_replication_slots WHERE slot_name = %s",
		 lit);
	free(lit);
	pgc_query(&t->sql, sql, false, on_slot_row, on_slot_checked);
}

static uint64_t parse_lsn(const char *s)
{
	unsigned hi = 0, lo = 0;
	sscanf(s, "%X/%X", &hi, &lo);
	return ((uint64_t)hi << 32) | lo;
}

static void on_slot_created_row(struct cdc_task *t, PGresult *r)
{
	if (PQntuples(r) < 1 || PQnfields(r) < 3)
		return;
	t->consistent_point = parse_lsn(PQgetvalue(r, 0, 1));
	snprintf(t->snapshot_name, sizeof(t->snapshot_name), "%s",
		 PQgetisnull(r, 0, 2) ? "" : PQgetvalue(r, 0, 2));
}

static void on_slot_created(struct cdc_task *t)
{
	if (need_snapshot(t))
		step_snapshot(t);
	else
		step_dedup(t);
}

static void step_create_slot(struct cdc_task *t)
{
	char *q = quote_ident(t, t->slot);
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput %s", q,
		 need_snapshot(t) ? "EXPORT_SNAPSHOT" : "NOEXPORT_SNAPSHOT");
	free(q);
	pgc_query(&t->repl, sql, false, on_slot_created_row, on_slot_created);
}

/* --- snapshot ---------------------------------------------------------- */

static void snap_next_table(struct cdc_task *t);

static void snap_flush(struct cdc_task *t)
{
	if (!t->snap_recs)
		return;
	flush_records(t, t->snap_recs, t->consistent_point, t->snap_mark,
		      false);
	t->snap_recs = NULL;
	t->snap_tail = &t->snap_recs;
	t->snap_nrecs = 0;
}

/* The task's end when cdc_format refused a change of rel. */
static void format_failed(struct cdc_task *t, const struct cdc_rel *rel)
{
	const char *why = cdc_format_error();
	if (why)
		fail(t, "%s in table %s.%s", why, rel->schema, rel->table);
	else
		fail(t, "Failed to serialize Avro data from topic %s",
		     rel->topic);
}

/* Formats the snapshot row held back (see on_snap_row) and frees it. */
static void snap_release(struct cdc_task *t, bool last)
{
	struct cdc_rel *r = t->held_rel;
	if (!t->held_row)
		return;
	struct cdc_change ch = {.op = 'r',
				.after = t->held_row,
				.commit_ms = st_now_ms(),
				.xid = -1,
				.lsn = t->consistent_point,
				.commit_lsn = t->consistent_point,
				.snapshot = true,
				.last_snapshot = last};
	struct emit_ctx e = {t, r->tp, &t->snap_tail, &t->snap_nrecs};
	if (cdc_format(&t->o, r, &ch, emit, &e) < 0)
		format_failed(t, r);
	for (int c = 0; c < t->held_ncols; c++)
		free(t->held_row[c]);
	free(t->held_row);
	t->held_row = NULL;
}

/*
 * One row, formatted one row late: the snapshot's very last record says
 * source.snapshot "last", as Debezium's does, and that row is only known
 * when the last table ends.
 */
static void on_snap_row(struct cdc_task *t, PGresult *res)
{
	struct cdc_rel *r = t->snap_rel;
	int ncols = PQnfields(res);
	for (int i = 0; i < PQntuples(res); i++) {
		char **row = calloc((size_t)r->ncols + 1, sizeof(char *));
		for (int c = 0; c < r->ncols && c < ncols; c++)
			row[c] = PQgetisnull(res, i, c)
					 ? NULL
					 : strdup(PQgetvalue(res, i, c));
		snap_release(t, false);
		t->held_row = row;
		t->held_ncols = r->ncols;
		t->held_rel = r;
		t->rows_copied++;
	}
	if (t->snap_nrecs >= SNAPSHOT_CHUNK)
		snap_flush(t);
}

static void on_snap_table(struct cdc_task *t)
{
	snap_flush(t);
	t->tables_done++;
	t->snap_rel = t->snap_rel->next;
	snap_next_table(t);
}

static void on_snap_committed(struct cdc_task *t)
{
	/* The snapshot is queued: its mark closes, and streaming starts
	 * when it is durable (marks_advance). */
	pgc_close(&t->sql);
	t->phase = "snapshot: writing";
	t->snap_mark->closed = true;
	marks_advance(t);
}

static void snap_next_table(struct cdc_task *t)
{
	while (t->snap_rel && !t->snap_rel->included)
		t->snap_rel = t->snap_rel->next;
	if (!t->snap_rel) {
		snap_release(t, true);
		snap_flush(t);
		pgc_query(&t->sql, "COMMIT", false, NULL, on_snap_committed);
		return;
	}
	char *s = quote_ident(t, t->snap_rel->schema);
	char *n = quote_ident(t, t->snap_rel->table);
	char sql[1024];
	snprintf(sql, sizeof(sql), "SELECT * FROM %s.%s", s, n);
	free(s);
	free(n);
	pgc_query(&t->sql, sql, true, on_snap_row, on_snap_table);
}

static void step_snapshot(struct cdc_task *t)
{
	t->phase = "snapshot";
	t->snap_mark = mark_new(t, t->consistent_point);
	t->snap_recs = NULL;
	t->snap_tail = &t->snap_recs;
	char *lit = quote(t->snapshot_name, '\'');
	char sql[512];
	snprintf(sql, sizeof(sql),
		 "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
		 "SET TRANSACTION SNAPSHOT %s",
		 lit);
	free(lit);
	t->snap_rel = t->rels;
	pgc_query(&t->sql, sql, false, NULL, snap_next_table);
}

static void on_snapshot_stored(void *arg, const char *err)
{
	struct cdc_task *t = arg;
	t->inflight--;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	if (err) {
		store_failed(t, ST_UNAVAILABLE, "storing the snapshot's end of",
			     t->name, err);
		return;
	}
	t->snapshot_done = true;
	step_dedup(t);
}

/* The snapshot is durable: remember it, then stream. */
static void start_streaming(struct cdc_task *t)
{
	if (t->snap == SNAP_INITIAL_ONLY) {
		t->phase = "snapshot complete (initial_only)";
		pgc_close(&t->repl);
	}
	t->inflight++;
	cn_set_snapshot_done(t->env.cn, t->name, on_snapshot_stored, t);
}

/* --- restart: each topic's last LSN from the log ----------------------- */

static void step_start(struct cdc_task *t);

static void dedup_next(struct cdc_task *t);

static int find_lsn(void *arg, const struct rb_record *rec)
{
	uint64_t *lsn = arg;
	struct kb_reader r;
	kb_reader_init(&r, rec->Headers, rec->HeadersLen);
	for (int i = 0; i < rec->HeaderCount; i++) {
		struct kstr k, v;
		if (!kb_read_varbytes(&r, &k) || !kb_read_varbytes(&r, &v))
			return 0;
		if (kstr_eq(k, "__samsa.lsn") && v.len == 8) {
			uint64_t x = 0;
			for (int j = 0; j < 8; j++)
				x = (x << 8) | (uint8_t)v.ptr[j];
			if (x > *lsn)
				*lsn = x;
		}
	}
	return 0;
}

static void on_last_batch(void *arg, const char *err, const uint8_t *data,
			  size_t len)
{
	struct cdc_task *t = arg;
	t->inflight--;
	if (t->stopped) {
		if (t->inflight == 0)
			task_free(t);
		return;
	}
	if (err) {
		store_failed(t, ST_UNAVAILABLE, "reading back",
			     t->dedup_next->name, err);
		return;
	}
	struct cdc_topic *tp = t->dedup_next;
	int32_t part = t->dedup_part;
	if (data && part >= tp->nlast) {
		uint64_t *l =
			realloc(tp->last_lsn, (size_t)(part + 1) * sizeof(*l));
		if (!l) {
			fail(t, "out of memory");
			return;
		}
		for (int32_t i = tp->nlast; i <= part; i++)
			l[i] = 0;
		tp->last_lsn = l;
		tp->nlast = part + 1;
	}
	if (data) {
		struct kb_writer scratch;
		kb_writer_init(&scratch);
		char e[128];
		uint64_t lsn = 0;
		rb_foreach_record(data, len, &scratch, 64 << 20, find_lsn, &lsn,
				  e, sizeof(e));
		kb_writer_free(&scratch);
		if (lsn > tp->last_lsn[part])
			tp->last_lsn[part] = lsn;
	}
	t->dedup_part++;
	dedup_next(t);
}

/* Reads back the last batch of the next partition of the topics. */
static void dedup_next(struct cdc_task *t)
{
	for (; t->dedup_next;
	     t->dedup_next = t->dedup_next->next, t->dedup_part = 0) {
		struct st_topic *st = st_topic_find(
			t->env.store, kstr_c(t->dedup_next->name));
		if (!st || t->dedup_part >= st->npartitions)
			continue;
		t->inflight++;
		cn_last_batch(t->env.cn, st->tid, t->dedup_part, on_last_batch,
			      t);
		return;
	}
	step_start(t);
}

static void step_dedup(struct cdc_task *t)
{
	if (t->snap == SNAP_INITIAL_ONLY)
		return;
	t->phase = "resuming";
	t->dedup_next = t->topics;
	t->dedup_part = 0;
	dedup_next(t);
}

/* --- streaming --------------------------------------------------------- */

static int64_t now_pg_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000 - PG_EPOCH_US;
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static void send_status(struct cdc_task *t, bool reply)
{
	if (!t->repl.c || !t->repl.copy)
		return;
	uint8_t m[34];
	m[0] = 'r';
	/* Write and apply say what arrived; only flush moves the slot. */
	put64(m + 1, t->received);
	put64(m + 9, t->flushed);
	put64(m + 17, t->flushed);
	put64(m + 25, (uint64_t)now_pg_us());
	m[33] = reply ? 1 : 0;
	if (PQputCopyData(t->repl.c, (const char *)m, sizeof(m)) != 1) {
		conn_failed(&t->repl);
		return;
	}
	t->reported = t->flushed;
	t->last_status_us = now_pg_us();
	pgc_arm(&t->repl);
}

static void on_action_done(struct cdc_task *t)
{
	pgc_close(&t->sql);
}

static void on_action_link(struct cdc_task *t)
{
	pgc_query(&t->sql, t->hb_action, false, NULL, on_action_done);
}

/*
 * heartbeat.action.query, while streaming: on a connection of its own for
 * the while, so that a database without changes of its own (its slot held
 * back by other databases' WAL) gets one to move the slot along.  A beat
 * finding the last one's still under way skips it.
 */
static void heartbeat_action(struct cdc_task *t)
{
	if (t->hb_action && strcmp(t->phase, "streaming") == 0 && !t->sql.c &&
	    !t->sql.resolving)
		pgc_connect(t, &t->sql, false, on_action_link);
}

/* Debezium's heartbeat record, appended like a transaction of its own
 * that moves nothing. */
static void heartbeat(struct cdc_task *t)
{
	int32_t kid = -1, vid = -1;
	char subject[1100];
	struct avro_sub *s;
	if (t->hb_key_avro) {
		snprintf(subject, sizeof(subject), "%s-key", t->hb_topic);
		s = sub_find(t, subject, t->hb_key_avro);
		if (!s || s->id < 0)
			return;
		kid = s->id;
	}
	if (t->hb_value_avro) {
		snprintf(subject, sizeof(subject), "%s-value", t->hb_topic);
		s = sub_find(t, subject, t->hb_value_avro);
		if (!s || s->id < 0)
			return;
		vid = s->id;
	}
	int64_t now = st_now_ms();
	t->last_heartbeat_ms = now;
	struct rec *list = NULL, **tail = &list;
	struct emit_ctx e = {t, topic_get(t, t->hb_topic), &tail, NULL};
	cdc_heartbeat(&t->o, kid, vid, now, emit, &e);
	struct mark *m = mark_new(t, t->flushed);
	flush_records(t, list, t->flushed, m, false);
	m->closed = true;
	marks_advance(t);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cdc_task *t = arg;
	(void)fd;
	(void)what;
	if (t->failed || t->stopped)
		return;
	if (t->flushed != t->reported ||
	    now_pg_us() - t->last_status_us > 10000000)
		send_status(t, false);
	if (t->failed)
		return;
	if (t->heartbeat_ms > 0 &&
	    st_now_ms() - t->last_heartbeat_ms >= t->heartbeat_ms) {
		heartbeat(t);
		heartbeat_action(t);
	}
}

static void step_start(struct cdc_task *t)
{
	/* The SQL link's work is done (catalog, slot, snapshot); a
	 * heartbeat.action.query opens its own. */
	pgc_close(&t->sql);
	t->phase = "streaming";
	char *q = quote_ident(t, t->slot);
	char *publit = quote_ident(t, t->pub);
	char *lit = quote(publit, '\'');
	char sql[1024];
	snprintf(sql, sizeof(sql),
		 "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', "
		 "publication_names %s)",
		 q, lit);
	free(q);
	free(publit);
	free(lit);
	pgc_query(&t->repl, sql, false, NULL, NULL);
	struct timeval one = {1, 0};
	t->timer = event_new(t->env.base, -1, EV_PERSIST, on_timer, t);
	if (t->timer)
		event_add(t->timer, &one);
}

/* pgoutput's fields, read with a sticky failure flag. */
struct pr {
	const uint8_t *p, *end;
	bool bad;
};

static uint8_t pr_u8(struct pr *r)
{
	if (r->p + 1 > r->end) {
		r->bad = true;
		return 0;
	}
	return *r->p++;
}

static uint32_t pr_u32(struct pr *r)
{
	uint32_t v = 0;
	for (int i = 0; i < 4; i++)
		v = (v << 8) | pr_u8(r);
	return v;
}

static uint64_t pr_u64(struct pr *r)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | pr_u8(r);
	return v;
}

static uint16_t pr_u16(struct pr *r)
{
	uint16_t hi = pr_u8(r);
	return (uint16_t)((hi << 8) | pr_u8(r));
}

static const char *pr_str(struct pr *r)
{
	const uint8_t *s = r->p;
	while (r->p < r->end && *r->p)
		r->p++;
	if (r->p >= r->end) {
		r->bad = true;
		return "";
	}
	r->p++;
	return (const char *)s;
}

#define TUPLE_NULL	((size_t)-1)
#define TUPLE_UNCHANGED ((size_t)-2)

/*
 * A tuple as texts (cdc_unchanged as is), at least ncols of them, in tb's
 * reused row array and text buffer: valid until tb decodes the next one.
 * NULL (and r->bad) when malformed or out of memory.
 */
static char **pr_tuple(struct pr *r, int ncols, struct tuple *tb)
{
	int n = pr_u16(r);
	int need = (ncols > n ? ncols : n) + 1;
	if (need > tb->cap) {
		char **row = realloc(tb->row, sizeof(*row) * (size_t)need);
		if (row)
			tb->row = row;
		size_t *off = realloc(tb->off, sizeof(*off) * (size_t)need);
		if (off)
			tb->off = off;
		if (!row || !off) {
			r->bad = true;
			return NULL;
		}
		tb->cap = need;
	}
	tb->text.len = 0;
	for (int i = 0; i < need; i++)
		tb->off[i] = TUPLE_NULL;
	for (int i = 0; i < n && !r->bad; i++) {
		uint8_t k = pr_u8(r);
		if (k == 'n') {
			tb->off[i] = TUPLE_NULL;
		} else if (k == 'u') {
			tb->off[i] = TUPLE_UNCHANGED;
		} else if (k == 't' || k == 'b') {
			uint32_t len = pr_u32(r);
			if ((size_t)(r->end - r->p) < len) {
				r->bad = true;
				break;
			}
			tb->off[i] = tb->text.len;
			kb_write_raw(&tb->text, r->p, len);
			kb_write_raw(&tb->text, "", 1);
			r->p += len;
		} else {
			r->bad = true;
		}
	}
	if (!kb_writer_ok(&tb->text)) {
		tb->text.failed = false;
		r->bad = true;
	}
	if (r->bad)
		return NULL;
	/* the text buffer is final now: offsets become pointers */
	for (int i = 0; i < need; i++)
		tb->row[i] = tb->off[i] == TUPLE_NULL ? NULL
			     : tb->off[i] == TUPLE_UNCHANGED
				     ? (char *)cdc_unchanged
				     : (char *)tb->text.buf + tb->off[i];
	return tb->row;
}

/* A Relation message: the table's current shape. */
static void on_relation(struct cdc_task *t, struct pr *r)
{
	uint32_t relid = pr_u32(r);
	const char *nsp = pr_str(r), *name = pr_str(r);
	char replident = (char)pr_u8(r);
	int ncols = pr_u16(r);
	struct cdc_rel *old = rel_find(t, relid);
	struct cdc_rel *rel = calloc(1, sizeof(*rel));
	rel->relid = relid;
	rel->schema = strdup(*nsp ? nsp : "pg_catalog");
	rel->table = strdup(name);
	rel->replident = replident;
	rel->cols = calloc((size_t)ncols + 1, sizeof(*rel->cols));
	rel->ncols = ncols;
	for (int i = 0; i < ncols && !r->bad; i++) {
		struct cdc_col *c = &rel->cols[i];
		uint8_t flags = pr_u8(r);
		c->name = strdup(pr_str(r));
		c->oid = pr_u32(r);
		c->typmod = (int32_t)pr_u32(r);
		c->optional = true;
		/* The replica identity; under FULL that is every column,
		 * so the primary key from the catalog wins when known. */
		c->key = (flags & 1) && replident != 'f';
		if (old)
			for (int j = 0; j < old->ncols; j++)
				if (strcmp(old->cols[j].name, c->name) == 0) {
					c->key = old->cols[j].key;
					c->optional = old->cols[j].optional;
				}
	}
	rel_name(t, rel);
	key_columns(t, rel);
	value_columns(t, rel);
	cdc_rel_schemas(&t->o, rel);
	avro_prepare(t, rel);
	if (old) {
		for (struct cdc_rel **pp = &t->rels; *pp; pp = &(*pp)->next)
			if (*pp == old) {
				*pp = old->next;
				break;
			}
		rel_free(old);
	}
	rel->next = t->rels;
	t->rels = rel;
}

/* skipped.operations names op. */
static bool skipped(const struct cdc_task *t, char op)
{
	return strchr(t->skipped, op) != NULL;
}

static void change(struct cdc_task *t, struct cdc_rel *rel, char op,
		   char **before, char **after, uint64_t lsn)
{
	struct cdc_change ch = {.op = op,
				.before = before,
				.after = after,
				.commit_ms = t->txn_commit_ms,
				.xid = t->txn_xid,
				.lsn = lsn,
				.commit_lsn = t->txn_final_lsn};
	struct emit_ctx e = {t, rel->tp, &t->txn_tail, NULL};
	if (cdc_format(&t->o, rel, &ch, emit, &e) < 0)
		format_failed(t, rel);
}

/* Key columns changed: is before's key other than after's? */
static bool key_changed(struct cdc_rel *rel, char **before, char **after)
{
	if (!before || !after)
		return false;
	for (int i = 0; i < rel->ncols; i++) {
		if (!rel->cols[i].key)
			continue;
		const char *a = before[i], *b = after[i];
		if (b == cdc_unchanged)
			continue;
		if ((a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0))
			return true;
	}
	return false;
}

static void on_xlog(struct cdc_task *t, struct pr *r, uint64_t wal_start)
{
	uint8_t kind = pr_u8(r);
	switch (kind) {
	case 'B':
		t->txn_final_lsn = pr_u64(r);
		t->txn_commit_ms = (int64_t)(pr_u64(r) + PG_EPOCH_US) / 1000;
		t->txn_xid = pr_u32(r);
		t->txn = NULL;
		t->txn_tail = &t->txn;
		break;
	case 'C': {
		pr_u8(r);
		pr_u64(r);
		uint64_t end = pr_u64(r);
		struct rec *recs = t->txn;
		t->txn = NULL;
		t->txn_tail = &t->txn;
		if (!recs && !t->marks) {
			/* Nothing of ours and nothing pending. */
			if (end > t->flushed)
				t->flushed = end;
			break;
		}
		struct mark *m = mark_new(t, end);
		flush_records(t, recs, end, m, true);
		m->closed = true;
		marks_advance(t);
		break;
	}
	case 'R':
		on_relation(t, r);
		break;
	case 'I': {
		struct cdc_rel *rel = rel_find(t, pr_u32(r));
		pr_u8(r); /* 'N' */
		int n = rel ? rel->ncols : 0;
		char **after = pr_tuple(r, n, &t->new_tuple);
		if (rel && rel->included && !r->bad && !skipped(t, 'c'))
			change(t, rel, 'c', NULL, after, wal_start);
		break;
	}
	case 'U': {
		struct cdc_rel *rel = rel_find(t, pr_u32(r));
		int n = rel ? rel->ncols : 0;
		char **before = NULL, **after = NULL;
		uint8_t k = pr_u8(r);
		if (k == 'K' || k == 'O') {
			before = pr_tuple(r, n, &t->old_tuple);
			k = pr_u8(r);
		}
		if (k == 'N')
			after = pr_tuple(r, n, &t->new_tuple);
		/* A key change is a delete and a create, but an update to
		 * skipped.operations, as to Debezium. */
		if (rel && rel->included && !r->bad && !skipped(t, 'u')) {
			/* Unchanged TOAST in the new row: take the old text
			 * when the old row is known. */
			for (int i = 0; before && after && i < n; i++)
				if (after[i] == cdc_unchanged && before[i] &&
				    before[i] != cdc_unchanged)
					after[i] = before[i];
			if (key_changed(rel, before, after)) {
				change(t, rel, 'd', before, NULL, wal_start);
				change(t, rel, 'c', NULL, after, wal_start);
			} else {
				/* DEFAULT identity: before only under FULL */
				change(t, rel, 'u',
				       rel->replident == 'f' ? before : NULL,
				       after, wal_start);
			}
		}
		break;
	}
	case 'D': {
		struct cdc_rel *rel = rel_find(t, pr_u32(r));
		int n = rel ? rel->ncols : 0;
		pr_u8(r); /* 'K' or 'O' */
		char **before = pr_tuple(r, n, &t->old_tuple);
		if (rel && rel->included && !r->bad && !skipped(t, 'd'))
			change(t, rel, 'd', before, NULL, wal_start);
		break;
	}
	case 'T': {
		uint32_t nrel = pr_u32(r);
		pr_u8(r);
		for (uint32_t i = 0; i < nrel && !r->bad; i++) {
			struct cdc_rel *rel = rel_find(t, pr_u32(r));
			if (rel && rel->included && !skipped(t, 't'))
				change(t, rel, 't', NULL, NULL, wal_start);
		}
		break;
	}
	default: /* 'Y' type, 'O' origin, 'M' message */
		break;
	}
	if (r->bad)
		fail(t, "malformed pgoutput message '%c'", kind);
}

static void handle_copy(struct cdc_task *t, const char *buf, int len)
{
	struct pr r = {(const uint8_t *)buf, (const uint8_t *)buf + len, false};
	uint8_t kind = pr_u8(&r);
	if (kind == 'w') {
		uint64_t start = pr_u64(&r);
		uint64_t end = pr_u64(&r);
		pr_u64(&r);
		if (end > t->received)
			t->received = end;
		if (!r.bad)
			on_xlog(t, &r, start);
	} else if (kind == 'k') {
		uint64_t end = pr_u64(&r);
		pr_u64(&r);
		uint8_t reply = pr_u8(&r);
		if (end > t->received)
			t->received = end;
		/* Idle and nothing pending: the slot may move up to here, so
		 * it does not pin WAL while the tables are quiet. */
		if (!t->marks && !t->txn && !t->outbox && t->inflight == 0 &&
		    end > t->flushed)
			t->flushed = end;
		if (reply)
			send_status(t, false);
	}
}

/* --- life -------------------------------------------------------------- */

static void on_sql_up(struct cdc_task *t)
{
	step_catalog(t);
}

static void on_repl_up(struct cdc_task *t)
{
	t->phase = "connecting";
	pgc_connect(t, &t->sql, false, on_sql_up);
}

struct cdc_task *cdc_start(const struct cdc_env *env, const char *name,
			   const json_t *config, bool snapshot_done)
{
	struct cdc_task *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->env = *env;
	t->name = strdup(name);
	t->config = json_deep_copy(config);
	t->snapshot_done = snapshot_done;
	t->txn_tail = &t->txn;
	t->phase = "connecting";
	t->repl.t = t->sql.t = t;
	char key[128], err[512];
	if (parse(config, t, key, sizeof(key), err, sizeof(err)) < 0) {
		fail(t, "%s", err);
		return t;
	}
	pgc_connect(t, &t->repl, true, on_repl_up);
	return t;
}

static void task_free(struct cdc_task *t)
{
	pgc_close(&t->repl);
	pgc_close(&t->sql);
	if (t->timer)
		event_free(t->timer);
	while (t->rels) {
		struct cdc_rel *r = t->rels;
		t->rels = r->next;
		rel_free(r);
	}
	while (t->topics) {
		struct cdc_topic *tp = t->topics;
		t->topics = tp->next;
		free(tp->name);
		free(tp->last_lsn);
		free(tp);
	}
	for (int c = 0; t->held_row && c < t->held_ncols; c++)
		free(t->held_row[c]);
	free(t->held_row);
	tuple_free(&t->old_tuple);
	tuple_free(&t->new_tuple);
	while (t->subs) {
		struct avro_sub *s = t->subs;
		t->subs = s->next;
		free(s->subject);
		free(s->text);
		free(s->topic);
		free(s);
	}
	while (t->marks) {
		struct mark *m = t->marks;
		t->marks = m->next;
		free(m);
	}
	while (t->outbox) {
		struct out *o = t->outbox;
		t->outbox = o->next;
		out_free(o);
	}
	for (struct rec *lists[2] = {t->txn, t->snap_recs}, **l = lists;
	     l < lists + 2; l++)
		while (*l) {
			struct rec *r = *l;
			*l = r->next;
			free(r);
		}
	cc_free_regexes(t->inc, t->ninc);
	cc_free_regexes(t->exc, t->nexc);
	cc_free_regexes(t->sinc, t->nsinc);
	cc_free_regexes(t->sexc, t->nsexc);
	cc_free_regexes(t->cinc, t->ncinc);
	cc_free_regexes(t->cexc, t->ncexc);
	cc_free_regexes(t->keycols, t->nkeycols);
	tcr_free(t->creation);
	rr_free(t->router);
	for (int i = 0; i < t->nliterals; i++)
		free(t->literals[i]);
	free(t->literals);
	for (int i = 0; t->kw[i]; i++) {
		free(t->kw[i]);
		free(t->kv[i]);
	}
	free(t->slot);
	free(t->pub);
	free(t->hb_topic);
	free(t->hb_action);
	free(t->hb_key_avro);
	free(t->hb_value_avro);
	free(t->o.prefix);
	free(t->o.dbname);
	cc_free_list(t->o.add_fields);
	cc_free_list(t->o.add_headers);
	json_decref(t->config);
	free(t->trace);
	free(t->name);
	free(t);
}

void cdc_stop(struct cdc_task *t)
{
	if (!t)
		return;
	t->stopped = true;
	pgc_close(&t->repl);
	pgc_close(&t->sql);
	if (t->timer)
		event_del(t->timer);
	if (t->inflight == 0)
		task_free(t);
}

void cdc_retire(struct cdc_task *t)
{
	if (t && t->drop_slot) {
		const char *kw[MAX_PARAMS], *kv[MAX_PARAMS];
		link_params(t, false, kw, kv);
		slot_drop_start(kw, kv, t->slot, t->name);
	}
	cdc_stop(t);
}

bool cdc_snapshot_done(const struct cdc_task *t)
{
	return t->snapshot_done;
}

const char *cdc_state(const struct cdc_task *t)
{
	/* Waiting to start again is running, as with Debezium. */
	return t->failed && t->retry_at < 0 ? "FAILED" : "RUNNING";
}

int64_t cdc_retry_at(const struct cdc_task *t)
{
	return t->failed ? t->retry_at : -1;
}

const char *cdc_trace(const struct cdc_task *t)
{
	return t->trace;
}

json_t *cdc_topics(const struct cdc_task *t)
{
	json_t *a = json_array();
	for (const struct cdc_topic *tp = t->topics; tp; tp = tp->next)
		if (st_topic_find(t->env.store, kstr_c(tp->name)))
			json_array_append_new(a, json_string(tp->name));
	return a;
}

json_t *cdc_progress(const struct cdc_task *t)
{
	char f[32], r[32];
	snprintf(f, sizeof(f), "%X/%X", (unsigned)(t->flushed >> 32),
		 (unsigned)t->flushed);
	snprintf(r, sizeof(r), "%X/%X", (unsigned)(t->received >> 32),
		 (unsigned)t->received);
	return json_pack(
		"{s:s,s:i,s:I,s:s,s:s,s:I}", "phase", t->phase, "tables_done",
		t->tables_done, "rows_copied", (json_int_t)t->rows_copied,
		"received_lsn", r, "flushed_lsn", f, "lag_bytes",
		(json_int_t)(t->received > t->flushed ? t->received - t->flushed
						      : 0));
}
