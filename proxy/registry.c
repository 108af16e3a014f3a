/*
 * registry: Confluent's Schema Registry REST API.
 *
 * Status and error codes follow Confluent's Errors.java: the HTTP status is
 * the first three digits of error_code.  Unknown query parameters are
 * ignored, as clients (Java's fetchMaxId, subject ...) send some we do not
 * need.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "protocol/avro_compat.h"
#include "proxy/config.h"
#include "proxy/logging.h"
#include "proxy/registry.h"
#include "proxy/http_auth.h"
#include "proxy/tls.h"
#include "proxy/server.h"
#include "storage/schemas.h"

#define MAX_SEGS     8
#define MAX_BODY     (16 * 1024 * 1024)
#define MAX_ATTEMPTS 10 /* writes that lost the race to another samsa */

static const char content_type[] = "application/vnd.schemaregistry.v1+json";

struct registry {
	struct event_base *base;
	struct evhttp *http;
	struct sr_store *store;
	struct rq *head, *tail; /* waiting, the one being handled first */
	bool busy;
	bool stopping;
	struct http_gate gate; /* --rest-auth */
};

/* One HTTP request, from arrival to answer. */
struct rq {
	struct registry *reg;
	struct evhttp_request *req; /* NULL once its connection is gone */
	enum evhttp_cmd_type method;
	char *seg[MAX_SEGS]; /* path segments, percent-decoded */
	int nseg;
	bool bad_path;
	struct evkeyvalq query;
	json_t *body;	    /* NULL when there was none */
	char body_err[160]; /* set when the body is not JSON */
	int attempts;
	bool locked;	/* holds the registry lock (sr_refresh) */
	json_t *answer; /* what a write answers once committed */
	/* An internal request (registry_register): no HTTP, the answer goes
	 * to done, exactly once. */
	registry_id_cb done;
	void *done_arg;
	struct rq *next;
};

/* A schema as a client sent it, made ready to store or compare. */
struct cand {
	const char *type; /* static: "AVRO", "JSON", "PROTOBUF" */
	char *text;	  /* as stored */
	char *refs;	  /* compact JSON array */
	const char *original;
	size_t original_len;
	struct ac_schema *avro;
};

static void pump(struct registry *reg);
static void handle(struct rq *rq);

/* --- answers ----------------------------------------------------------- */

/* Hands an internal request its answer: the id, or the registry's
 * message. */
static void rq_done(struct rq *rq, int status, const json_t *body)
{
	registry_id_cb cb = rq->done;
	if (!cb)
		return;
	rq->done = NULL;
	json_t *id = json_object_get(body, "id");
	if (status == 200 && json_is_integer(id)) {
		cb(rq->done_arg, (int32_t)json_integer_value(id), NULL);
		return;
	}
	const char *msg = json_string_value(json_object_get(body, "message"));
	json_t *code = json_object_get(body, "error_code");
	char buf[1200];
	snprintf(buf, sizeof(buf), "%s; error code: %d",
		 msg ? msg : "Schema Registry unavailable",
		 json_is_integer(code) ? (int)json_integer_value(code) : 50001);
	cb(rq->done_arg, -1, buf);
}

static void rq_free(struct rq *rq)
{
	rq_done(rq, 500, NULL);
	for (int i = 0; i < rq->nseg; i++)
		free(rq->seg[i]);
	evhttp_clear_headers(&rq->query);
	json_decref(rq->body);
	json_decref(rq->answer);
	free(rq);
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 415:
		return "Unsupported Media Type";
	case 422:
		return "Unprocessable Entity";
	default:
		return "Internal Server Error";
	}
}

/* Sends text (status) if the client is still there. */
static void send_text(struct rq *rq, int status, const char *text)
{
	if (!rq->req)
		return;
	struct evhttp_connection *evcon =
		evhttp_request_get_connection(rq->req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, NULL, NULL);
	struct evkeyvalq *h = evhttp_request_get_output_headers(rq->req);
	evhttp_add_header(h, "Content-Type", content_type);
	struct evbuffer *b = evbuffer_new();
	if (b)
		evbuffer_add(b, text, strlen(text));
	evhttp_send_reply(rq->req, status, reason(status), b);
	if (b)
		evbuffer_free(b);
	rq->req = NULL;
}

/* Drops the answered request at the head and starts the next one. */
static void next(struct rq *rq)
{
	struct registry *reg = rq->reg;
	if (rq->locked)
		sr_unlock(reg->store);
	reg->head = rq->next;
	if (!reg->head)
		reg->tail = NULL;
	rq_free(rq);
	reg->busy = false;
	pump(reg);
}

/* Answers the request at the head of the queue (body is stolen). */
static void finish(struct rq *rq, int status, json_t *body)
{
	rq_done(rq, status, body);
	char *text =
		body ? json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	json_decref(body);
	if (text) {
		send_text(rq, status, text);
		free(text);
	} else {
		send_text(
			rq, 500,
			"{\"error_code\":50001,\"message\":\"out of memory\"}");
	}
	next(rq);
}

/* finish() for an answer that is the schema text itself. */
static void finish_raw(struct rq *rq, const char *text)
{
	send_text(rq, 200, text);
	next(rq);
}

static void fail(struct rq *rq, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct rq *rq, int code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	int status = code >= 1000 ? code / 100 : code;
	finish(rq, status,
	       json_pack("{s:i,s:s}", "error_code", code, "message", msg));
}

static void fail_backend(struct rq *rq, const char *why)
{
	log_warn("registry: %s", why ? why : "backend error");
	fail(rq, 50001, "Error in the backend data store: %s",
	     why ? why : "unknown");
}

/* --- the copy ---------------------------------------------------------- */

static const struct sr_state *state(struct rq *rq)
{
	return sr_state(rq->reg->store);
}

static bool param_true(struct rq *rq, const char *name)
{
	const char *v = evhttp_find_header(&rq->query, name);
	return v && strcasecmp(v, "true") == 0;
}

/* Versions of subject (sorted), deleted ones only when asked. */
static size_t subject_versions(const struct sr_state *st, const char *subject,
			       bool deleted, const struct sr_version **out,
			       size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < st->nversions; i++) {
		const struct sr_version *v = &st->versions[i];
		if (strcmp(v->subject, subject) != 0 ||
		    (v->deleted && !deleted))
			continue;
		if (out && n < max)
			out[n] = v;
		n++;
	}
	return n;
}

static const struct sr_version *find_version(const struct sr_state *st,
					     const char *subject,
					     int32_t version, bool deleted)
{
	const struct sr_version *best = NULL;
	for (size_t i = 0; i < st->nversions; i++) {
		const struct sr_version *v = &st->versions[i];
		if (strcmp(v->subject, subject) != 0 ||
		    (v->deleted && !deleted))
			continue;
		if (version < 0 ? (!best || v->version > best->version)
				: v->version == version)
			best = v;
	}
	return best;
}

static int32_t max_version(const struct sr_state *st, const char *subject)
{
	int32_t max = 0;
	for (size_t i = 0; i < st->nversions; i++)
		if (strcmp(st->versions[i].subject, subject) == 0 &&
		    st->versions[i].version > max)
			max = st->versions[i].version;
	return max;
}

static const struct sr_config *find_config(const struct sr_state *st,
					   const char *subject)
{
	for (size_t i = 0; i < st->nconfigs; i++)
		if (strcmp(st->configs[i].subject, subject) == 0)
			return &st->configs[i];
	return NULL;
}

/* The subject's level, else the global one, else BACKWARD. */
static enum ac_level level_of(const struct sr_state *st, const char *subject)
{
	enum ac_level l;
	const struct sr_config *c = subject ? find_config(st, subject) : NULL;
	if (c && c->compatibility && ac_level_parse(c->compatibility, &l) == 0)
		return l;
	c = find_config(st, "");
	if (c && c->compatibility && ac_level_parse(c->compatibility, &l) == 0)
		return l;
	return AC_BACKWARD;
}

static const char *mode_of(const struct sr_state *st, const char *subject)
{
	const struct sr_config *c = subject ? find_config(st, subject) : NULL;
	if (c && c->mode)
		return c->mode;
	c = find_config(st, "");
	return c && c->mode ? c->mode : "READWRITE";
}

static struct ac_schema *avro_of(struct rq *rq, int32_t id)
{
	struct sr_schema *sc = sr_schema_mut(rq->reg->store, id);
	if (!sc || strcmp(sc->type, "AVRO") != 0 || sc->parse_failed)
		return NULL;
	if (!sc->avro) {
		char err[256];
		sc->avro = ac_parse(sc->schema, strlen(sc->schema), false, err,
				    sizeof(err));
		if (!sc->avro) {
			log_warn("registry: stored schema %d does not parse: "
				 "%s",
				 (int)id, err);
			sc->parse_failed = true;
		}
	}
	return sc->avro;
}

/* {"subject","version","id","schema"[,"schemaType","references"]} */
static json_t *version_json(struct rq *rq, const struct sr_version *v)
{
	struct sr_schema *sc = sr_schema_mut(rq->reg->store, v->schema_id);
	json_t *o =
		json_pack("{s:s,s:i,s:i,s:s}", "subject", v->subject, "version",
			  (int)v->version, "id", (int)v->schema_id, "schema",
			  sc ? sc->schema : "");
	if (o && sc && strcmp(sc->type, "AVRO") != 0)
		json_object_set_new(o, "schemaType", json_string(sc->type));
	if (o && sc && strcmp(sc->refs, "[]") != 0)
		json_object_set_new(o, "references",
				    json_loads(sc->refs, 0, NULL));
	return o;
}

/* --- parsing what clients send ----------------------------------------- */

static void cand_free(struct cand *c)
{
	free(c->text);
	free(c->refs);
	ac_free(c->avro);
}

/*
 * Reads {"schema", "schemaType", "references"}; -1 after answering.  An
 * Avro schema's defaults are not checked here (see cand_defaults).
 */
static int cand_parse(struct rq *rq, struct cand *c)
{
	memset(c, 0, sizeof(*c));
	json_t *schema = rq->body ? json_object_get(rq->body, "schema") : NULL;
	if (!json_is_string(schema) || !json_string_length(schema)) {
		fail(rq, 42201, "Invalid schema: empty or missing \"schema\"");
		return -1;
	}
	c->original = json_string_value(schema);
	size_t len = json_string_length(schema);
	c->original_len = len;
	json_t *t = json_object_get(rq->body, "schemaType");
	const char *type = json_is_string(t) ? json_string_value(t) : "AVRO";
	if (strcasecmp(type, "AVRO") == 0)
		c->type = "AVRO";
	else if (strcasecmp(type, "JSON") == 0)
		c->type = "JSON";
	else if (strcasecmp(type, "PROTOBUF") == 0)
		c->type = "PROTOBUF";
	else {
		fail(rq, 42201, "Invalid schema type %s", type);
		return -1;
	}
	json_t *refs = json_object_get(rq->body, "references");
	bool refs_ok = !refs || json_is_null(refs) || json_is_array(refs);
	for (size_t i = 0;
	     refs_ok && json_is_array(refs) && i < json_array_size(refs); i++) {
		json_t *r = json_array_get(refs, i);
		refs_ok = json_is_string(json_object_get(r, "name")) &&
			  json_is_string(json_object_get(r, "subject")) &&
			  json_is_integer(json_object_get(r, "version"));
	}
	if (!refs_ok) {
		fail(rq, 42201,
		     "Invalid schema: references must be an array of "
		     "{name, subject, version}");
		return -1;
	}
	c->refs = sr_refs_text(refs);
	char err[512];
	if (c->type[0] == 'A') {
		c->avro = ac_parse(c->original, len, false, err, sizeof(err));
		if (c->avro && param_true(rq, "normalize")) {
			/* Confluent's normalize=true (register, lookup,
			 * compatibility): the normalized schema is the one. */
			struct ac_schema *n =
				ac_normalize(c->avro, err, sizeof(err));
			ac_free(c->avro);
			c->avro = n;
		}
		if (!c->avro) {
			fail(rq, 42201, "Invalid schema: %s", err);
			cand_free(c);
			return -1;
		}
		c->text = strdup(ac_compact(c->avro));
	} else if (c->type[0] == 'J') {
		json_error_t je;
		json_t *j = json_loadb(c->original, len, JSON_DECODE_ANY, &je);
		if (!j) {
			fail(rq, 42201, "Invalid schema: invalid JSON: %s",
			     je.text);
			cand_free(c);
			return -1;
		}
		if (!json_is_object(j) && !json_is_boolean(j)) {
			json_decref(j);
			fail(rq, 42201,
			     "Invalid schema: a JSON Schema is an object or a "
			     "boolean");
			cand_free(c);
			return -1;
		}
		c->text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		json_decref(j);
	} else {
		c->text = strdup(c->original);
	}
	if (!c->text || !c->refs) {
		fail(rq, 50001, "out of memory");
		cand_free(c);
		return -1;
	}
	return 0;
}

/*
 * Whether the defaults of c, an Avro schema new to its subject, suit their
 * types: Confluent checks them for a schema it registers or tests for
 * compatibility (validateDefaults for a new schema), not for one it looks
 * up or already holds under the subject.  -1 after answering 42201.
 */
static int cand_defaults(struct rq *rq, const struct cand *c)
{
	if (!c->avro)
		return 0;
	char err[512];
	struct ac_schema *s =
		ac_parse(c->original, c->original_len, true, err, sizeof(err));
	if (!s) {
		fail(rq, 42201, "Invalid schema: %s", err);
		return -1;
	}
	ac_free(s);
	return 0;
}

/* Whether the stored schema sc is the same as c. */
static bool cand_is(const struct sr_schema *sc, const struct cand *c)
{
	return sc && strcmp(sc->type, c->type) == 0 &&
	       strcmp(sc->schema, c->text) == 0 &&
	       strcmp(sc->refs, c->refs) == 0;
}

/*
 * The id of a stored schema equal to c, or -1: the one of a version of
 * subject when subject is given (its newest such version in *found, soft
 * deleted ones only with deleted), else the first in any subject.  An
 * older samsa gave a new id to each key order of one schema, which the load
 * now writes as one text: several ids may hold it, and a subject's lookup
 * and register must find its own (Confluent compares with the subject's
 * versions), not the first of another subject.
 */
static int32_t cand_find_in(struct rq *rq, const struct cand *c,
			    const char *subject, bool deleted,
			    const struct sr_version **found)
{
	const struct sr_state *st = state(rq);
	const struct sr_version *f = NULL;
	for (size_t i = 0; subject && i < st->nversions; i++) {
		const struct sr_version *v = &st->versions[i];
		if ((!v->deleted || deleted) &&
		    strcmp(v->subject, subject) == 0 &&
		    cand_is(sr_schema_mut(rq->reg->store, v->schema_id), c))
			f = v; /* the last, i.e. newest, one wins */
	}
	if (found)
		*found = f;
	if (f || subject)
		return f ? f->schema_id : -1;
	for (size_t i = 0; i < st->nschemas; i++)
		if (cand_is(st->schemas[i], c))
			return st->schemas[i]->id;
	return -1;
}

static int32_t cand_find(struct rq *rq, const struct cand *c)
{
	return cand_find_in(rq, c, NULL, false, NULL);
}

/*
 * Parses a version segment: "latest" and -1 give -1.  Returns 0, or -1
 * after answering 42202.
 */
static int parse_version(struct rq *rq, const char *s, int32_t *out)
{
	if (strcmp(s, "latest") == 0 || strcmp(s, "-1") == 0) {
		*out = -1;
		return 0;
	}
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > INT32_MAX) {
		fail(rq, 42202,
		     "The specified version '%s' is not a valid version id. "
		     "Allowed values are between [1, 2^31-1] and the string "
		     "\"latest\"",
		     s);
		return -1;
	}
	*out = (int32_t)v;
	return 0;
}

/*
 * Whether c may be added to subject under level, checked against version
 * `only` (> 0) or as the level says (the latest or, transitive, all).  A
 * version of another schema type is incompatible (Confluent's "different
 * schema type"); beyond that only Avro schemas are checked.  msg gets the
 * reason.  A stored version that no longer parses cannot be checked
 * against: false with *broken set (never a check without it).
 */
static bool compatible(struct rq *rq, enum ac_level level, const struct cand *c,
		       const char *subject, int32_t only, char *msg,
		       size_t msglen, bool *broken)
{
	msg[0] = '\0';
	*broken = false;
	if (level == AC_NONE)
		return true;
	const struct sr_state *st = state(rq);
	size_t n = subject_versions(st, subject, false, NULL, 0);
	if (n == 0)
		return true;
	const struct sr_version **vs = calloc(n, sizeof(*vs));
	const struct ac_schema **prev = calloc(n, sizeof(*prev));
	bool ok = true;
	if (!vs || !prev) {
		snprintf(msg, msglen, "out of memory");
		ok = false;
		goto out;
	}
	subject_versions(st, subject, false, vs, n);
	bool all = only == 0 && (level == AC_BACKWARD_TRANSITIVE ||
				 level == AC_FORWARD_TRANSITIVE ||
				 level == AC_FULL_TRANSITIVE);
	for (size_t i = 0; i < n; i++) {
		const struct sr_schema *sc =
			sr_schema_mut(rq->reg->store, vs[i]->schema_id);
		if ((only > 0 ? vs[i]->version == only : all || i == n - 1) &&
		    sc && strcmp(sc->type, c->type) != 0) {
			snprintf(msg, msglen,
				 "Incompatible because of different schema "
				 "type");
			ok = false;
			goto out;
		}
	}
	if (!c->avro)
		goto out;
	size_t np = 0;
	for (size_t i = 0; i < n; i++) {
		if (only > 0 && vs[i]->version != only)
			continue;
		if (!(only > 0 || all || i == n - 1))
			continue;
		struct ac_schema *a = avro_of(rq, vs[i]->schema_id);
		if (!a) {
			snprintf(msg, msglen,
				 "Stored schema id %d of version %d does not "
				 "parse",
				 (int)vs[i]->schema_id, (int)vs[i]->version);
			*broken = true;
			ok = false;
			goto out;
		}
		prev[np++] = a;
	}
	if (only > 0) {
		/* One version, in the level's direction(s). */
		if (level == AC_BACKWARD_TRANSITIVE)
			level = AC_BACKWARD;
		else if (level == AC_FORWARD_TRANSITIVE)
			level = AC_FORWARD;
		else if (level == AC_FULL_TRANSITIVE)
			level = AC_FULL;
	}
	ok = ac_check(level, c->avro, prev, np, msg, msglen);
out:
	free(vs);
	free(prev);
	return ok;
}

/* --- writes ------------------------------------------------------------ */

static void on_written(void *arg, enum sr_status st, const char *msg)
{
	struct rq *rq = arg;
	if (rq->reg->stopping) {
		rq_free(rq);
		return;
	}
	if (st == SR_OK) {
		json_t *a = rq->answer;
		rq->answer = NULL;
		finish(rq, 200, a);
	} else if (st == SR_STALE && ++rq->attempts < MAX_ATTEMPTS) {
		/* Another samsa wrote first: look again and decide again. */
		json_decref(rq->answer);
		rq->answer = NULL;
		rq->reg->busy = false;
		pump(rq->reg);
	} else {
		fail_backend(rq, msg ? msg : "too many concurrent changes");
	}
}

static void on_registered(void *arg, enum sr_status st, int32_t id,
			  const char *msg)
{
	struct rq *rq = arg;
	if (st == SR_OK && !rq->reg->stopping) {
		json_decref(rq->answer);
		rq->answer = json_pack("{s:i}", "id", (int)id);
	}
	on_written(arg, st, msg);
}

static bool read_only(struct rq *rq, const char *subject)
{
	const char *m = mode_of(state(rq), subject);
	if (strcmp(m, "READONLY") == 0 || strcmp(m, "READONLY_OVERRIDE") == 0) {
		fail(rq, 42205, "Subject %s is in read-only mode", subject);
		return true;
	}
	return false;
}

/* A positive integer field of the body ("id", "version"), or -1 when it is
 * absent, null, zero or negative (clients send -1 or 0 for "none"). */
static int32_t body_int(const struct rq *rq, const char *name)
{
	json_t *v = rq->body ? json_object_get(rq->body, name) : NULL;
	json_int_t i = json_is_integer(v) ? json_integer_value(v) : -1;
	return i > 0 && i <= INT32_MAX ? (int32_t)i : -1;
}

/*
 * IMPORT mode: the version keeps the id (and version number) it had in
 * the registry it comes from, so that records written with that id still
 * read; no compatibility check, as in Confluent's.
 */
static void do_import(struct rq *rq, const char *subject, struct cand *c)
{
	const struct sr_state *st = state(rq);
	int32_t want = body_int(rq, "id");
	int32_t version = body_int(rq, "version");
	int32_t id = cand_find(rq, c);
	if (version < 0)
		version = max_version(st, subject) + 1;
	if (want > 0 && id >= 0 && id != want) {
		fail(rq, 42207,
		     "Schema already registered with id %d instead of input id "
		     "%d",
		     id, want);
	} else if (want > 0 && id < 0 && sr_schema_mut(rq->reg->store, want)) {
		fail(rq, 42207,
		     "Overwrite new schema with id %d is not permitted.", want);
	} else {
		const struct sr_version *v =
			find_version(st, subject, version, true);
		int32_t got = id >= 0 ? id : want;
		if (v && v->schema_id == got)
			finish(rq, 200, json_pack("{s:i}", "id", got));
		else if (v)
			fail(rq, 42205,
			     "Version %d of subject %s has schema id %d",
			     version, subject, v->schema_id);
		else
			sr_register(rq->reg->store, st->generation, subject,
				    version, id, want, c->type, c->text,
				    c->original, c->refs, on_registered, rq);
	}
	cand_free(c);
}

/* POST /subjects/{s}/versions */
static void do_register(struct rq *rq, const char *subject)
{
	const struct sr_state *st = state(rq);
	struct cand c;
	bool import = strcmp(mode_of(st, subject), "IMPORT") == 0;
	if (!import && body_int(rq, "id") > 0) {
		fail(rq, 42205, "Subject %s is not in import mode", subject);
		return;
	}
	/* As Confluent's checkRegisterMode: without an id, only READWRITE
	 * registers (IMPORT takes ids from the registry it imports from). */
	if (import && body_int(rq, "id") < 0) {
		fail(rq, 42205, "Subject %s is not in read-write mode",
		     subject);
		return;
	}
	if (read_only(rq, subject) || cand_parse(rq, &c) < 0)
		return;
	if (import) {
		do_import(rq, subject, &c);
		return;
	}
	/* Already a live version of this subject: its id, no new version
	 * (idempotent); otherwise the id of the same schema elsewhere, if
	 * any, for the new version. */
	const struct sr_version *own = NULL;
	cand_find_in(rq, &c, subject, false, &own);
	if (own) {
		cand_free(&c);
		finish(rq, 200, json_pack("{s:i}", "id", (int)own->schema_id));
		return;
	}
	if (cand_defaults(rq, &c) < 0) {
		cand_free(&c);
		return;
	}
	int32_t id = cand_find(rq, &c);
	char msg[1024];
	bool broken;
	if (!compatible(rq, level_of(st, subject), &c, subject, 0, msg,
			sizeof(msg), &broken)) {
		if (broken) {
			fail(rq, 50001,
			     "Error while checking compatibility: %s", msg);
			cand_free(&c);
			return;
		}
		fail(rq, 40901,
		     "Schema being registered is incompatible with an earlier "
		     "schema for subject \"%s\", details: [%s]",
		     subject, msg);
		cand_free(&c);
		return;
	}
	sr_register(rq->reg->store, st->generation, subject,
		    max_version(st, subject) + 1, id, -1, c.type, c.text,
		    c.original, c.refs, on_registered, rq);
	cand_free(&c);
}

/* POST /subjects/{s}: is this schema registered under s? */
static void do_lookup(struct rq *rq, const char *subject)
{
	const struct sr_state *st = state(rq);
	bool deleted = param_true(rq, "deleted");
	struct cand c;
	if (!subject_versions(st, subject, deleted, NULL, 0)) {
		fail(rq, 40401, "Subject '%s' not found.", subject);
		return;
	}
	if (cand_parse(rq, &c) < 0)
		return;
	const struct sr_version *found = NULL;
	cand_find_in(rq, &c, subject, deleted, &found);
	cand_free(&c);
	if (!found) {
		fail(rq, 40403, "Schema not found");
		return;
	}
	finish(rq, 200, version_json(rq, found));
}

/* DELETE /subjects/{s}[/versions/{v}] */
static void do_delete(struct rq *rq, const char *subject, const char *vseg)
{
	const struct sr_state *st = state(rq);
	bool permanent = param_true(rq, "permanent");
	int32_t version = -1;
	size_t all = subject_versions(st, subject, true, NULL, 0);
	if (!all) {
		fail(rq, 40401, "Subject '%s' not found.", subject);
		return;
	}
	if (read_only(rq, subject))
		return;
	if (vseg) {
		if (parse_version(rq, vseg, &version) < 0)
			return;
		const struct sr_version *v =
			find_version(st, subject, version, permanent);
		const struct sr_version *gone =
			v || version <= 0
				? NULL
				: find_version(st, subject, version, true);
		if (gone) {
			fail(rq, 40406,
			     "Subject '%s' Version %d was soft deleted. Set "
			     "permanent=true to delete permanently",
			     subject, (int)gone->version);
			return;
		}
		if (!v) {
			fail(rq, 40402, "Version %s not found.", vseg);
			return;
		}
		if (permanent && !v->deleted) {
			fail(rq, 40407,
			     "Subject '%s' Version %d was not deleted first "
			     "before being permanently deleted",
			     subject, (int)v->version);
			return;
		}
		version = v->version;
		rq->answer = json_integer(version);
	} else {
		size_t live = subject_versions(st, subject, false, NULL, 0);
		if (permanent && live) {
			fail(rq, 40405,
			     "Subject '%s' was not deleted first before being "
			     "permanently deleted",
			     subject);
			return;
		}
		if (!permanent && !live) {
			fail(rq, 40404,
			     "Subject '%s' was soft deleted.Set permanent=true "
			     "to delete permanently",
			     subject);
			return;
		}
		rq->answer = json_array();
		for (size_t i = 0; i < st->nversions; i++) {
			const struct sr_version *v = &st->versions[i];
			if (strcmp(v->subject, subject) == 0 &&
			    (permanent || !v->deleted))
				json_array_append_new(rq->answer,
						      json_integer(v->version));
		}
	}
	sr_delete(rq->reg->store, st->generation, subject, version, permanent,
		  on_written, rq);
}

/* POST /compatibility/subjects/{s}/versions[/{v}] */
static void do_compat(struct rq *rq, const char *subject, const char *vseg)
{
	const struct sr_state *st = state(rq);
	int32_t version = -1;
	if (vseg && parse_version(rq, vseg, &version) < 0)
		return;
	struct cand c;
	if (cand_parse(rq, &c) < 0)
		return;
	if (cand_defaults(rq, &c) < 0) {
		cand_free(&c);
		return;
	}
	bool live = subject_versions(st, subject, false, NULL, 0) > 0;
	if (version > 0) {
		if (!live) {
			cand_free(&c);
			fail(rq, 40401, "Subject '%s' not found.", subject);
			return;
		}
		if (!find_version(st, subject, version, false)) {
			cand_free(&c);
			fail(rq, 40402, "Version %s not found.", vseg);
			return;
		}
	}
	/* A version named, "latest" too, is the one checked, whatever the
	 * level (Confluent's testCompatibilityBySubjectName); without one,
	 * the level says which (all of them when transitive). */
	int32_t only = version;
	if (vseg && version < 0) {
		const struct sr_version *latest =
			find_version(st, subject, -1, false);
		only = latest ? latest->version : 0;
	}
	char msg[1024];
	bool broken;
	bool ok = compatible(rq, level_of(st, subject), &c, subject,
			     only > 0 ? only : 0, msg, sizeof(msg), &broken);
	cand_free(&c);
	if (broken) {
		fail(rq, 50001, "Error while checking compatibility: %s", msg);
		return;
	}
	json_t *a = json_pack("{s:b}", "is_compatible", ok);
	if (a && param_true(rq, "verbose")) {
		json_t *m = json_array();
		if (!ok)
			json_array_append_new(m, json_string(msg));
		json_object_set_new(a, "messages", m);
	}
	finish(rq, 200, a);
}

/* Whether GET /config/{s} (or /mode/{s}) has a level to answer with: the
 * global one always, a subject's only when set for it, unless the caller
 * asks for the global one in its place (?defaultToGlobal=true), as in
 * Confluent's, whose clients tell "not set here" from "set" by the 404. */
static bool own_setting(struct rq *rq, const char *subject, bool mode)
{
	if (!subject || param_true(rq, "defaultToGlobal"))
		return true;
	const struct sr_config *c = find_config(state(rq), subject);
	return c && (mode ? c->mode : c->compatibility);
}

/* GET/PUT/DELETE /config[/{s}] */
static void do_config(struct rq *rq, const char *subject)
{
	const struct sr_state *st = state(rq);
	const char *key = subject ? subject : "";
	if (rq->method == EVHTTP_REQ_GET) {
		if (!own_setting(rq, subject, false)) {
			fail(rq, 40408,
			     "Subject '%s' does not have subject-level "
			     "compatibility configured",
			     subject);
			return;
		}
		finish(rq, 200,
		       json_pack("{s:s}", "compatibilityLevel",
				 ac_level_name(level_of(st, subject))));
		return;
	}
	if (rq->method == EVHTTP_REQ_DELETE) {
		if (subject && !subject_versions(st, subject, true, NULL, 0) &&
		    !find_config(st, subject)) {
			fail(rq, 40401, "Subject '%s' not found.", subject);
			return;
		}
		rq->answer = json_pack("{s:s}", "compatibilityLevel",
				       ac_level_name(level_of(st, subject)));
		sr_set_config(rq->reg->store, st->generation, key, false, NULL,
			      on_written, rq);
		return;
	}
	json_t *v =
		rq->body ? json_object_get(rq->body, "compatibility") : NULL;
	if (!v && rq->body)
		v = json_object_get(rq->body, "compatibilityLevel");
	enum ac_level l;
	if (!json_is_string(v) || ac_level_parse(json_string_value(v), &l)) {
		fail(rq, 42203,
		     "Invalid compatibility level. Valid values are none, "
		     "backward, forward, full, backward_transitive, "
		     "forward_transitive, and full_transitive");
		return;
	}
	rq->answer = json_pack("{s:s}", "compatibility", ac_level_name(l));
	sr_set_config(rq->reg->store, st->generation, key, false,
		      ac_level_name(l), on_written, rq);
}

/* GET/PUT/DELETE /mode[/{s}] */
static void do_mode(struct rq *rq, const char *subject)
{
	static const char *const modes[] = {"READWRITE", "READONLY",
					    "READONLY_OVERRIDE", "IMPORT"};
	const struct sr_state *st = state(rq);
	const char *key = subject ? subject : "";
	if (rq->method == EVHTTP_REQ_GET) {
		if (!own_setting(rq, subject, true)) {
			fail(rq, 40409,
			     "Subject '%s' does not have subject-level mode "
			     "configured",
			     subject);
			return;
		}
		finish(rq, 200,
		       json_pack("{s:s}", "mode", mode_of(st, subject)));
		return;
	}
	if (rq->method == EVHTTP_REQ_DELETE) {
		rq->answer = json_pack("{s:s}", "mode", mode_of(st, subject));
		sr_set_config(rq->reg->store, st->generation, key, true, NULL,
			      on_written, rq);
		return;
	}
	json_t *v = rq->body ? json_object_get(rq->body, "mode") : NULL;
	const char *m = NULL;
	for (size_t i = 0; json_is_string(v) && i < 4; i++)
		if (strcasecmp(json_string_value(v), modes[i]) == 0)
			m = modes[i];
	if (!m) {
		fail(rq, 42204,
		     "Invalid mode. Valid values are READWRITE, READONLY, "
		     "READONLY_OVERRIDE and IMPORT");
		return;
	}
	/* As Confluent's: importing goes into an empty registry (or
	 * subject) unless forced, lest imported ids meet existing ones. */
	bool empty = subject ? !subject_versions(st, subject, true, NULL, 0)
			     : st->nversions == 0;
	if (strcmp(m, "IMPORT") == 0 && !empty && !param_true(rq, "force")) {
		fail(rq, 42205,
		     "Cannot import since found existing subjects (use "
		     "force=true)");
		return;
	}
	rq->answer = json_pack("{s:s}", "mode", m);
	sr_set_config(rq->reg->store, st->generation, key, true, m, on_written,
		      rq);
}

/* --- reads ------------------------------------------------------------- */

static void do_schema_by_id(struct rq *rq)
{
	char *end;
	long id = strtol(rq->seg[2], &end, 10);
	struct sr_schema *sc = NULL;
	if (*end == '\0' && end != rq->seg[2] && id > 0 && id <= INT32_MAX)
		sc = sr_schema_mut(rq->reg->store, (int32_t)id);
	if (!sc) {
		fail(rq, 40403, "Schema %s not found", rq->seg[2]);
		return;
	}
	const struct sr_state *st = state(rq);
	bool deleted = param_true(rq, "deleted");
	if (rq->nseg == 3) {
		json_t *o = json_pack("{s:s}", "schema", sc->schema);
		if (o && strcmp(sc->type, "AVRO") != 0)
			json_object_set_new(o, "schemaType",
					    json_string(sc->type));
		if (o && strcmp(sc->refs, "[]") != 0)
			json_object_set_new(o, "references",
					    json_loads(sc->refs, 0, NULL));
		finish(rq, 200, o);
		return;
	}
	if (strcmp(rq->seg[3], "schema") == 0) {
		finish_raw(rq, sc->schema);
		return;
	}
	bool subjects = strcmp(rq->seg[3], "subjects") == 0;
	json_t *a = json_array();
	const char *last = NULL;
	for (size_t i = 0; i < st->nversions; i++) {
		const struct sr_version *v = &st->versions[i];
		if (v->schema_id != sc->id || (v->deleted && !deleted))
			continue;
		if (subjects) {
			if (!last || strcmp(last, v->subject) != 0)
				json_array_append_new(a,
						      json_string(v->subject));
			last = v->subject;
		} else {
			json_array_append_new(
				a, json_pack("{s:s,s:i}", "subject", v->subject,
					     "version", (int)v->version));
		}
	}
	finish(rq, 200, a);
}

static void do_subjects(struct rq *rq)
{
	const struct sr_state *st = state(rq);
	bool deleted = param_true(rq, "deleted");
	const char *prefix = evhttp_find_header(&rq->query, "subjectPrefix");
	json_t *a = json_array();
	const char *last = NULL;
	for (size_t i = 0; i < st->nversions; i++) {
		const struct sr_version *v = &st->versions[i];
		if ((v->deleted && !deleted) ||
		    (prefix && strncmp(v->subject, prefix, strlen(prefix))))
			continue;
		if (!last || strcmp(last, v->subject) != 0)
			json_array_append_new(a, json_string(v->subject));
		last = v->subject;
	}
	finish(rq, 200, a);
}

/* GET /subjects/{s}/versions[/{v}[/schema|referencedby]] */
static void do_get_versions(struct rq *rq, const char *subject)
{
	const struct sr_state *st = state(rq);
	bool deleted = param_true(rq, "deleted");
	size_t n = subject_versions(st, subject, deleted, NULL, 0);
	if (!n) {
		fail(rq, 40401, "Subject '%s' not found.", subject);
		return;
	}
	if (rq->nseg == 3) {
		json_t *a = json_array();
		for (size_t i = 0; i < st->nversions; i++) {
			const struct sr_version *v = &st->versions[i];
			if (strcmp(v->subject, subject) == 0 &&
			    (!v->deleted || deleted))
				json_array_append_new(a,
						      json_integer(v->version));
		}
		finish(rq, 200, a);
		return;
	}
	int32_t version;
	if (parse_version(rq, rq->seg[3], &version) < 0)
		return;
	const struct sr_version *v =
		find_version(st, subject, version, deleted);
	if (!v) {
		fail(rq, 40402, "Version %s not found.", rq->seg[3]);
		return;
	}
	if (rq->nseg == 4) {
		finish(rq, 200, version_json(rq, v));
		return;
	}
	if (strcmp(rq->seg[4], "referencedby") == 0) {
		/* References are stored, not resolved: nothing refers. */
		finish(rq, 200, json_array());
		return;
	}
	struct sr_schema *sc = sr_schema_mut(rq->reg->store, v->schema_id);
	finish_raw(rq, sc ? sc->schema : "");
}

/* --- routing ----------------------------------------------------------- */

static bool is(const struct rq *rq, int i, const char *s)
{
	return i < rq->nseg && strcmp(rq->seg[i], s) == 0;
}

static void not_found(struct rq *rq)
{
	fail(rq, 404, "HTTP 404 Not Found");
}

static void bad_method(struct rq *rq)
{
	fail(rq, 405, "HTTP 405 Method Not Allowed");
}

/* Routes a request on the fresh copy; every path ends in one answer. */
static void route_schemas(struct rq *rq)
{
	int n = rq->nseg;
	if (rq->method != EVHTTP_REQ_GET)
		bad_method(rq);
	else if (n == 2 && is(rq, 1, "types"))
		finish(rq, 200,
		       json_pack("[s,s,s]", "JSON", "PROTOBUF", "AVRO"));
	else if (is(rq, 1, "ids") &&
		 (n == 3 ||
		  (n == 4 && (is(rq, 3, "schema") || is(rq, 3, "versions") ||
			      is(rq, 3, "subjects")))))
		do_schema_by_id(rq);
	else
		not_found(rq);
}

static void route_subjects(struct rq *rq)
{
	enum evhttp_cmd_type m = rq->method;
	int n = rq->nseg;
	const char *subject = n > 1 ? rq->seg[1] : NULL;
	if (n == 1) {
		if (m == EVHTTP_REQ_GET)
			do_subjects(rq);
		else
			bad_method(rq);
	} else if (n == 2) {
		if (m == EVHTTP_REQ_POST)
			do_lookup(rq, subject);
		else if (m == EVHTTP_REQ_DELETE)
			do_delete(rq, subject, NULL);
		else
			bad_method(rq);
	} else if (!is(rq, 2, "versions") || n > 5 ||
		   (n == 5 &&
		    !(is(rq, 4, "schema") || is(rq, 4, "referencedby")))) {
		not_found(rq);
	} else if (n == 3 && m == EVHTTP_REQ_POST) {
		do_register(rq, subject);
	} else if (n == 4 && m == EVHTTP_REQ_DELETE) {
		do_delete(rq, subject, rq->seg[3]);
	} else if (m == EVHTTP_REQ_GET) {
		do_get_versions(rq, subject);
	} else {
		bad_method(rq);
	}
}

static void handle(struct rq *rq)
{
	enum evhttp_cmd_type m = rq->method;
	int n = rq->nseg;

	if (rq->bad_path) {
		not_found(rq);
	} else if (rq->body_err[0] &&
		   (m == EVHTTP_REQ_POST || m == EVHTTP_REQ_PUT)) {
		fail(rq, 400, "Invalid JSON: %s", rq->body_err);
	} else if (n == 0) {
		if (m == EVHTTP_REQ_GET)
			finish(rq, 200, json_object());
		else
			bad_method(rq);
	} else if (is(rq, 0, "schemas")) {
		route_schemas(rq);
	} else if (is(rq, 0, "subjects")) {
		route_subjects(rq);
	} else if (is(rq, 0, "compatibility")) {
		if (!is(rq, 1, "subjects") || n < 4 || n > 5 ||
		    !is(rq, 3, "versions"))
			not_found(rq);
		else if (m != EVHTTP_REQ_POST)
			bad_method(rq);
		else
			do_compat(rq, rq->seg[2], n == 5 ? rq->seg[4] : NULL);
	} else if ((is(rq, 0, "config") || is(rq, 0, "mode")) && n <= 2) {
		const char *subject = n > 1 ? rq->seg[1] : NULL;
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_PUT &&
		    m != EVHTTP_REQ_DELETE)
			bad_method(rq);
		else if (is(rq, 0, "config"))
			do_config(rq, subject);
		else
			do_mode(rq, subject);
	} else {
		not_found(rq);
	}
}

/* --- the queue --------------------------------------------------------- */

static void on_refreshed(void *arg, enum sr_status st, const char *msg)
{
	struct rq *rq = arg;
	if (rq->reg->stopping) {
		rq_free(rq);
		return;
	}
	if (st != SR_OK)
		fail_backend(rq, msg);
	else
		handle(rq);
}

/*
 * Whether rq may change the registry: it then decides under the registry
 * lock (sr_refresh), so that no other samsa changes what it decided on.
 */
static bool may_write(const struct rq *rq)
{
	if (rq->method == EVHTTP_REQ_PUT || rq->method == EVHTTP_REQ_DELETE)
		return true;
	/* POST /subjects/{s}/versions; lookups and checks only read. */
	return rq->method == EVHTTP_REQ_POST && rq->nseg == 3 &&
	       strcmp(rq->seg[0], "subjects") == 0;
}

/* Starts the request at the head of the queue unless one is running. */
static void pump(struct registry *reg)
{
	if (reg->busy || !reg->head || reg->stopping)
		return;
	struct rq *rq = reg->head;
	bool lock = !rq->locked && may_write(rq);
	rq->locked = rq->locked || lock;
	reg->busy = true;
	sr_refresh(reg->store, lock, on_refreshed, rq);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
	struct rq *rq = arg;
	(void)evcon;
	rq->req = NULL; /* libevent frees the request: answer into the void */
}

static bool content_type_ok(struct evhttp_request *req)
{
	const char *ct = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Content-Type");
	if (!ct)
		return true;
	static const char *const ok[] = {
		"application/vnd.schemaregistry.v1+json",
		"application/vnd.schemaregistry+json",
		"application/json",
		"application/octet-stream",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strncasecmp(ct, ok[i], strlen(ok[i])) == 0)
			return true;
	return false;
}

static void split_path(struct rq *rq, const char *path)
{
	const char *p = path ? path : "/";
	while (*p) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (rq->nseg == MAX_SEGS) {
			rq->bad_path = true;
			return;
		}
		char *raw = strndup(p, len);
		size_t dlen = 0;
		char *seg = raw ? evhttp_uridecode(raw, 0, &dlen) : NULL;
		free(raw);
		/* An embedded NUL, or bytes that are not UTF-8 (as jansson,
		 * which writes every answer, checks): no subject can be
		 * called that. */
		json_t *utf8 = seg ? json_stringn(seg, dlen) : NULL;
		if (!utf8 || strlen(seg) != dlen) {
			json_decref(utf8);
			free(seg);
			rq->bad_path = true;
			return;
		}
		json_decref(utf8);
		rq->seg[rq->nseg++] = seg;
		p += len;
	}
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct registry *reg = arg;
	if (!content_type_ok(req)) {
		struct evbuffer *b = evbuffer_new();
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", content_type);
		if (b)
			evbuffer_add_printf(b, "{\"error_code\":415,"
					       "\"message\":\"HTTP 415 "
					       "Unsupported Media Type\"}");
		evhttp_send_reply(req, 415, "Unsupported Media Type", b);
		if (b)
			evbuffer_free(b);
		return;
	}
	struct rq *rq = calloc(1, sizeof(*rq));
	if (!rq) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	rq->reg = reg;
	rq->req = req;
	rq->method = evhttp_request_get_command(req);
	/* An empty evkeyvalq (TAILQ_INIT without sys/queue.h). */
	rq->query.tqh_first = NULL;
	rq->query.tqh_last = &rq->query.tqh_first;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	split_path(rq, evhttp_uri_get_path(uri));
	const char *q = evhttp_uri_get_query(uri);
	if (q && evhttp_parse_query_str(q, &rq->query) != 0)
		evhttp_clear_headers(&rq->query);

	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	if (len) {
		const char *data = (const char *)evbuffer_pullup(in, -1);
		json_error_t je;
		rq->body = data ? json_loadb(data, len, 0, &je) : NULL;
		if (!rq->body)
			snprintf(rq->body_err, sizeof(rq->body_err), "%s",
				 data ? je.text : "out of memory");
		else if (!json_is_object(rq->body))
			snprintf(rq->body_err, sizeof(rq->body_err),
				 "expected an object");
	}
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, on_conn_close, rq);
	if (reg->tail)
		reg->tail->next = rq;
	else
		reg->head = rq;
	reg->tail = rq;
	pump(reg);
}

void registry_register(struct registry *reg, const char *subject,
		       const char *schema, registry_id_cb cb, void *arg)
{
	struct rq *rq = calloc(1, sizeof(*rq));
	json_t *body = json_pack("{s:s}", "schema", schema);
	char *segs[3] = {strdup("subjects"), strdup(subject),
			 strdup("versions")};
	if (!rq || !body || !segs[0] || !segs[1] || !segs[2] || reg->stopping) {
		free(rq);
		json_decref(body);
		for (int i = 0; i < 3; i++)
			free(segs[i]);
		cb(arg, -1,
		   reg->stopping ? "Schema Registry stopped" : "out of memory");
		return;
	}
	rq->reg = reg;
	rq->method = EVHTTP_REQ_POST;
	rq->query.tqh_first = NULL;
	rq->query.tqh_last = &rq->query.tqh_first;
	for (int i = 0; i < 3; i++)
		rq->seg[rq->nseg++] = segs[i];
	rq->body = body;
	rq->done = cb;
	rq->done_arg = arg;
	if (reg->tail)
		reg->tail->next = rq;
	else
		reg->head = rq;
	reg->tail = rq;
	pump(reg);
}

/* --- start and stop ---------------------------------------------------- */

int registry_start(struct server *srv, char *err, size_t errlen)
{
	const struct hostport *hp = &srv->cfg->registry;
	struct registry *reg = calloc(1, sizeof(*reg));
	if (!reg) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	reg->base = srv->base;
	reg->store = sr_open(srv->base, srv->cfg->pg, err, errlen);
	if (!reg->store)
		goto fail;
	reg->http = evhttp_new(srv->base);
	if (!reg->http) {
		snprintf(err, errlen, "registry: cannot create the listener");
		goto fail;
	}
	if (srv->rest_tls)
		tls_serve_http(srv->rest_tls, reg->http);
	evhttp_set_max_body_size(reg->http, MAX_BODY);
	evhttp_set_allowed_methods(reg->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
						      EVHTTP_REQ_PUT |
						      EVHTTP_REQ_DELETE);
	evhttp_set_timeout(reg->http, 120);
	reg->gate = (struct http_gate){
		srv->base, srv->cfg->rest_login ? srv->cfg->pg : NULL,
		on_request, reg};
	evhttp_set_gencb(reg->http, http_gate, &reg->gate);
	errno = 0;
	if (!evhttp_bind_socket_with_handle(reg->http, hp->host,
					    (ev_uint16_t)hp->port)) {
		snprintf(err, errlen,
			 "cannot listen on %s:%d (Schema Registry): %s",
			 hp->host, hp->port,
			 errno ? strerror(errno) : "bind failed");
		goto fail;
	}
	srv->registry = reg;
	log_info("Schema Registry on %s://%s:%d (%zu schemas, %zu "
		 "subject versions)",
		 srv->rest_tls ? "https" : "http", hp->host, hp->port,
		 sr_state(reg->store)->nschemas,
		 sr_state(reg->store)->nversions);
	return 0;
fail:
	if (reg->http)
		evhttp_free(reg->http);
	sr_close(reg->store);
	free(reg);
	return -1;
}

void registry_stop(struct server *srv)
{
	struct registry *reg = srv->registry;
	if (!reg)
		return;
	srv->registry = NULL;
	reg->stopping = true;
	/* No close callback may find a freed request later. */
	for (struct rq *r = reg->head; r; r = r->next)
		if (r->req) {
			struct evhttp_connection *evcon =
				evhttp_request_get_connection(r->req);
			if (evcon)
				evhttp_connection_set_closecb(evcon, NULL,
							      NULL);
			r->req = NULL;
		}
	/* The request in flight, if any, is freed by its callback, which
	 * sr_close runs; those still waiting are freed here. */
	struct rq *rq = reg->head;
	if (rq && reg->busy)
		rq = rq->next;
	sr_close(reg->store);
	while (rq) {
		struct rq *next = rq->next;
		rq_free(rq);
		rq = next;
	}
	evhttp_free(reg->http);
	free(reg);
}
