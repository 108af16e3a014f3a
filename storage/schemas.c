/*
 * schemas: the Schema Registry's tables and the copy in memory.
 *
 * The copy is refreshed with one statement (one snapshot): the generation,
 * and only when it moved, the schemas newer than the copy's newest (rows
 * are never changed or deleted, so older ones are still right), every
 * subject version and every setting.  A registry holds few subjects, so
 * reloading those whole is cheaper than tracking changes.
 *
 * A write is one unit of statements (one implicit transaction): first the
 * guard, which bumps the generation only if it is still the one the caller
 * decided on and otherwise divides by zero, so the unit aborts with
 * SQLSTATE 22012 and nothing is written; then the change itself.  The row
 * lock the guard takes makes writers from every process take turns.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "protocol/avro_compat.h"
#include "storage/pgconn.h"
#include "storage/schemas.h"

struct sr_store {
	struct event_base *base;
	struct pgconn *conn;
	struct sr_state st;
};

static const char refresh_sql[] =
	"SELECT r.generation,"
	" CASE WHEN r.generation = $1 THEN NULL ELSE"
	"  (SELECT coalesce(json_agg(json_build_array(id, schema_type,"
	"   canonical, refs) ORDER BY id), '[]') FROM samsa.schemas"
	"   WHERE id > $2) END,"
	" CASE WHEN r.generation = $1 THEN NULL ELSE"
	"  (SELECT coalesce(json_agg(json_build_array(subject, version,"
	"   schema_id, deleted)), '[]') FROM samsa.subject_versions) END,"
	" CASE WHEN r.generation = $1 THEN NULL ELSE"
	"  (SELECT coalesce(json_agg(json_build_array(subject, compatibility,"
	"   mode)), '[]') FROM samsa.registry_config) END"
	" FROM samsa.registry_state r";

static void free_schema(struct sr_schema *sc)
{
	if (!sc)
		return;
	free(sc->type);
	free(sc->schema);
	free(sc->refs);
	ac_free(sc->avro);
	free(sc);
}

static void free_versions(struct sr_version *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].subject);
	free(v);
}

static void free_configs(struct sr_config *c, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(c[i].subject);
		free(c[i].compatibility);
		free(c[i].mode);
	}
	free(c);
}

/*
 * An Avro schema is held in the form this samsa writes and compares (Avro
 * Java's, ac_compact): rows written by older versions hold the client's
 * text re-dumped in its own key order, and the same schema registered now
 * must find them.  One that does not parse is left as stored (the registry
 * says so when it needs it).  The parsed tree is not kept: it is some 32
 * times its text (1,000 schemas of 15 KB held 460 MB more); the registry
 * parses a schema again when a check needs it.
 */
int sr_avro_form(struct sr_schema *sc)
{
	char err[256];
	struct ac_schema *a = ac_parse(sc->schema, strlen(sc->schema), false,
				       err, sizeof(err));
	if (!a)
		return 0;
	char *t = strdup(ac_compact(a));
	if (!t) {
		ac_free(a);
		return -1;
	}
	free(sc->schema);
	sc->schema = t;
	ac_free(a);
	return 0;
}

char *sr_refs_text(json_t *refs)
{
	json_t *a = json_array();
	for (size_t i = 0; a && i < json_array_size(refs); i++) {
		json_t *r = json_array_get(refs, i);
		json_array_append_new(
			a, json_pack("{s:O*,s:O*,s:O*}", "name",
				     json_object_get(r, "name"), "subject",
				     json_object_get(r, "subject"), "version",
				     json_object_get(r, "version")));
	}
	char *t = a ? json_dumps(a, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(a);
	return t;
}

static char *dup_or_null(json_t *v)
{
	return json_is_string(v) ? strdup(json_string_value(v)) : NULL;
}

static int cmp_version(const void *a, const void *b)
{
	const struct sr_version *x = a, *y = b;
	int c = strcmp(x->subject, y->subject);
	if (c)
		return c;
	return (x->version > y->version) - (x->version < y->version);
}

/*
 * Applies one refresh row's text columns to the copy: schemas appended,
 * versions and configs replaced.  All or nothing: returns -1 with err and
 * the copy unchanged when anything is malformed or memory runs out.
 */
static int apply(struct sr_state *st, int64_t gen, const char *schemas,
		 const char *versions, const char *configs, char *err,
		 size_t errlen)
{
	json_error_t je;
	json_t *js = json_loads(schemas, 0, &je);
	json_t *jv = json_loads(versions, 0, &je);
	json_t *jc = json_loads(configs, 0, &je);
	struct sr_schema **ns = NULL;
	struct sr_version *nv = NULL;
	struct sr_config *nc = NULL;
	size_t nns = 0, nnv = 0, nnc = 0;
	int rc = -1;

	if (!json_is_array(js) || !json_is_array(jv) || !json_is_array(jc)) {
		snprintf(err, errlen, "registry refresh: malformed result");
		goto out;
	}
	size_t add = json_array_size(js);
	ns = malloc((st->nschemas + add + 1) * sizeof(*ns));
	nv = calloc(json_array_size(jv) + 1, sizeof(*nv));
	nc = calloc(json_array_size(jc) + 1, sizeof(*nc));
	if (!ns || !nv || !nc)
		goto oom;
	for (size_t i = 0; i < add; i++) {
		json_t *row = json_array_get(js, i);
		struct sr_schema *sc = calloc(1, sizeof(*sc));
		if (!sc)
			goto oom;
		ns[nns++] = sc;
		sc->id = (int32_t)json_integer_value(json_array_get(row, 0));
		sc->type = dup_or_null(json_array_get(row, 1));
		sc->schema = dup_or_null(json_array_get(row, 2));
		sc->refs = sr_refs_text(json_array_get(row, 3));
		if (!sc->type || !sc->schema || !sc->refs ||
		    (strcmp(sc->type, "AVRO") == 0 && sr_avro_form(sc) < 0))
			goto oom;
	}
	for (size_t i = 0; i < json_array_size(jv); i++) {
		json_t *row = json_array_get(jv, i);
		struct sr_version *v = &nv[nnv++];
		v->subject = dup_or_null(json_array_get(row, 0));
		v->version =
			(int32_t)json_integer_value(json_array_get(row, 1));
		v->schema_id =
			(int32_t)json_integer_value(json_array_get(row, 2));
		v->deleted = json_is_true(json_array_get(row, 3));
		if (!v->subject)
			goto oom;
	}
	qsort(nv, nnv, sizeof(*nv), cmp_version);
	for (size_t i = 0; i < json_array_size(jc); i++) {
		json_t *row = json_array_get(jc, i);
		struct sr_config *c = &nc[nnc++];
		c->subject = dup_or_null(json_array_get(row, 0));
		c->compatibility = dup_or_null(json_array_get(row, 1));
		c->mode = dup_or_null(json_array_get(row, 2));
		if (!c->subject)
			goto oom;
	}

	/* Commit: older schemas move over, the new ones follow. */
	struct sr_schema **all =
		malloc((st->nschemas + add + 1) * sizeof(*all));
	if (!all)
		goto oom;
	if (st->nschemas) /* memcpy from NULL is undefined even for 0 */
		memcpy(all, st->schemas, st->nschemas * sizeof(*all));
	if (add)
		memcpy(all + st->nschemas, ns, add * sizeof(*all));
	free(st->schemas);
	st->schemas = all;
	st->nschemas += add;
	nns = 0;
	free_versions(st->versions, st->nversions);
	st->versions = nv;
	st->nversions = nnv;
	nv = NULL;
	nnv = 0;
	free_configs(st->configs, st->nconfigs);
	st->configs = nc;
	st->nconfigs = nnc;
	nc = NULL;
	nnc = 0;
	st->generation = gen;
	rc = 0;
	goto out;
oom:
	snprintf(err, errlen, "registry refresh: out of memory");
out:
	for (size_t i = 0; i < nns; i++)
		free_schema(ns[i]);
	free(ns);
	free_versions(nv, nnv);
	free_configs(nc, nnc);
	json_decref(js);
	json_decref(jv);
	json_decref(jc);
	return rc;
}

/* The refresh statement's parameters for the copy st. */
static void refresh_params(const struct sr_state *st, char gen[24],
			   char maxid[16])
{
	snprintf(gen, 24, "%lld", (long long)st->generation);
	snprintf(maxid, 16, "%d",
		 st->nschemas ? (int)st->schemas[st->nschemas - 1]->id : 0);
}

/* Applies a refresh result; 0, or -1 with err. */
static int apply_result(struct sr_state *st, const PGresult *r, char *err,
			size_t errlen)
{
	if (PQntuples(r) != 1 || PQnfields(r) != 4) {
		snprintf(err, errlen,
			 "registry refresh: no registry_state row");
		return -1;
	}
	int64_t gen = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (PQgetisnull(r, 0, 1))
		return 0; /* unchanged */
	return apply(st, gen, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
		     PQgetvalue(r, 0, 3), err, errlen);
}

struct sr_store *sr_open(struct event_base *base, const char *conninfo,
			 char *err, size_t errlen)
{
	struct sr_store *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->st.generation = -1;

	PGconn *conn = PQconnectdb(conninfo);
	if (PQstatus(conn) != CONNECTION_OK) {
		snprintf(err, errlen,
			 "registry: cannot connect to Postgres: %s",
			 PQerrorMessage(conn));
		PQfinish(conn);
		free(s);
		return NULL;
	}
	char gen[24], maxid[16];
	refresh_params(&s->st, gen, maxid);
	const char *params[2] = {gen, maxid};
	PGresult *r =
		PQexecParams(conn, refresh_sql, 2, NULL, params, NULL, NULL, 0);
	int rc;
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "registry: loading schemas: %s",
			 PQresultErrorMessage(r));
		rc = -1;
	} else {
		rc = apply_result(&s->st, r, err, errlen);
	}
	PQclear(r);
	PQfinish(conn);
	if (rc < 0) {
		sr_close(s);
		return NULL;
	}
	s->conn = pg_open(base, conninfo, "registry", NULL, NULL);
	if (!s->conn || pg_wait_ready(s->conn, 10000, err, errlen) != 0) {
		if (s->conn == NULL)
			snprintf(err, errlen, "out of memory");
		sr_close(s);
		return NULL;
	}
	return s;
}

void sr_close(struct sr_store *s)
{
	if (!s)
		return;
	if (s->conn)
		pg_close(s->conn);
	for (size_t i = 0; i < s->st.nschemas; i++)
		free_schema(s->st.schemas[i]);
	free(s->st.schemas);
	free_versions(s->st.versions, s->st.nversions);
	free_configs(s->st.configs, s->st.nconfigs);
	free(s);
}

const struct sr_state *sr_state(const struct sr_store *s)
{
	return &s->st;
}

struct sr_schema *sr_schema_mut(struct sr_store *s, int32_t id)
{
	size_t lo = 0, hi = s->st.nschemas;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int32_t v = s->st.schemas[mid]->id;
		if (v == id)
			return s->st.schemas[mid];
		if (v < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* --- refresh ----------------------------------------------------------- */

struct refresh {
	struct sr_store *s;
	sr_done_cb cb;
	void *arg;
};

static void on_refresh(void *arg, const PGresult *res, const char *err,
		       const char *sqlstate)
{
	struct refresh *rf = arg;
	char why[256];
	(void)sqlstate;
	if (!res) {
		rf->cb(rf->arg, SR_ERROR, err);
	} else if (apply_result(&rf->s->st, res, why, sizeof(why)) < 0) {
		rf->cb(rf->arg, SR_ERROR, why);
	} else {
		rf->cb(rf->arg, SR_OK, NULL);
	}
	free(rf);
}

/* Any constant of ours; migrate.c's is 7238467. */
#define REGISTRY_LOCK "7238468"

void sr_unlock(struct sr_store *s)
{
	pg_query(s->conn, "SELECT pg_advisory_unlock(" REGISTRY_LOCK ")", 0,
		 NULL, NULL, NULL, false, NULL, NULL);
	pg_sync(s->conn);
}

void sr_refresh(struct sr_store *s, bool lock, sr_done_cb cb, void *arg)
{
	struct refresh *rf = malloc(sizeof(*rf));
	if (!rf) {
		cb(arg, SR_ERROR, "out of memory");
		return;
	}
	*rf = (struct refresh){s, cb, arg};
	char gen[24], maxid[16];
	refresh_params(&s->st, gen, maxid);
	const char *params[2] = {gen, maxid};
	/* A failure here fails the refresh below too (same unit). */
	if (lock)
		pg_query(s->conn, "SELECT pg_advisory_lock(" REGISTRY_LOCK ")",
			 0, NULL, NULL, NULL, false, NULL, NULL);
	if (pg_query(s->conn, refresh_sql, 2, params, NULL, NULL, false,
		     on_refresh, rf) < 0) {
		free(rf);
		cb(arg, SR_ERROR, "out of memory");
		return;
	}
	pg_sync(s->conn);
}

/* --- writes ------------------------------------------------------------ */

struct write {
	struct sr_store *s;
	sr_done_cb done;
	sr_id_cb idcb;
	void *arg;
	int32_t id;
	bool stale;
};

static const char guard_sql[] =
	"UPDATE samsa.registry_state SET generation = generation + 1"
	" WHERE 1 / (CASE WHEN generation = $1 THEN 1 ELSE 0 END) = 1";

static void on_guard(void *arg, const PGresult *res, const char *err,
		     const char *sqlstate)
{
	struct write *w = arg;
	(void)res;
	(void)err;
	if (sqlstate && strcmp(sqlstate, "22012") == 0)
		w->stale = true;
}

static void on_id(void *arg, const PGresult *res, const char *err,
		  const char *sqlstate)
{
	struct write *w = arg;
	(void)err;
	(void)sqlstate;
	if (res && PQntuples(res) == 1)
		w->id = (int32_t)strtol(PQgetvalue(res, 0, 0), NULL, 10);
}

static void on_unit(void *arg, const PGresult *res, const char *err,
		    const char *sqlstate)
{
	struct write *w = arg;
	enum sr_status st = SR_OK;
	(void)res;
	(void)sqlstate;
	if (err)
		st = w->stale ? SR_STALE : SR_ERROR;
	else
		/* Ours or not, the copy is behind now: the next refresh
		 * reloads. */
		w->s->st.generation = -1;
	if (w->idcb)
		w->idcb(w->arg, st, st == SR_OK ? w->id : -1, err);
	else
		w->done(w->arg, st, err);
	free(w);
}

static struct write *write_begin(struct sr_store *s, int64_t generation,
				 sr_done_cb done, sr_id_cb idcb, void *arg)
{
	struct write *w = calloc(1, sizeof(*w));
	if (!w)
		goto oom;
	*w = (struct write){
		.s = s, .done = done, .idcb = idcb, .arg = arg, .id = -1};
	char gen[24];
	snprintf(gen, sizeof(gen), "%lld", (long long)generation);
	const char *params[1] = {gen};
	if (pg_query(s->conn, guard_sql, 1, params, NULL, NULL, false, on_guard,
		     w) == 0)
		return w;
	free(w);
oom:
	if (idcb)
		idcb(arg, SR_ERROR, -1, "out of memory");
	else
		done(arg, SR_ERROR, "out of memory");
	return NULL;
}

static void write_end(struct write *w)
{
	if (pg_sync_cb(w->s->conn, on_unit, w) < 0) {
		/* The unit still ends (pgconn closes it itself); only our
		 * report of it is lost. */
		if (w->idcb)
			w->idcb(w->arg, SR_ERROR, -1, "out of memory");
		else
			w->done(w->arg, SR_ERROR, "out of memory");
		free(w);
	}
}

void sr_register(struct sr_store *s, int64_t generation, const char *subject,
		 int32_t version, int32_t schema_id, int32_t new_id,
		 const char *type, const char *text, const char *original,
		 const char *refs, sr_id_cb cb, void *arg)
{
	struct write *w = write_begin(s, generation, NULL, cb, arg);
	if (!w)
		return;
	char ver[16], id[16];
	snprintf(ver, sizeof(ver), "%d", (int)version);
	if (schema_id >= 0) {
		snprintf(id, sizeof(id), "%d", (int)schema_id);
		const char *p[3] = {subject, ver, id};
		w->id = schema_id;
		/* A soft-deleted earlier version of this schema goes, as
		 * Confluent's register tombstones it. */
		pg_query(s->conn,
			 "DELETE FROM samsa.subject_versions WHERE subject = $1"
			 " AND version < $2 AND schema_id = $3 AND deleted",
			 3, p, NULL, NULL, false, NULL, NULL);
		pg_query(s->conn,
			 "INSERT INTO samsa.subject_versions (subject, version,"
			 " schema_id) VALUES ($1, $2, $3)",
			 3, p, NULL, NULL, false, NULL, NULL);
	} else if (new_id > 0) {
		char nid[16];
		snprintf(nid, sizeof(nid), "%d", (int)new_id);
		const char *p[7] = {type,    text, original, refs,
				    subject, ver,  nid};
		/* The id as given; the serial moves past it, so that ids it
		 * hands out later never collide with imported ones. */
		pg_query(
			s->conn,
			"WITH s AS (INSERT INTO samsa.schemas (id, schema_type,"
			" canonical, original, refs, fingerprint) VALUES"
			" ($7::int, $1, $2, $3, $4::jsonb, md5($1 || chr(10)"
			" || $2 || chr(10) || $4::jsonb::text)) RETURNING id),"
			" q AS (SELECT setval('samsa.schemas_id_seq',"
			" greatest($7::int, (SELECT last_value FROM"
			" samsa.schemas_id_seq))))"
			" INSERT INTO samsa.subject_versions (subject,"
			" version, schema_id) SELECT $5, $6, id FROM s, q"
			" RETURNING schema_id",
			7, p, NULL, NULL, false, on_id, w);
	} else {
		/* ON CONFLICT ... DO UPDATE (a no-op change) so that RETURNING
		 * gives the id of a row that exists already. */
		const char *p[6] = {type, text, original, refs, subject, ver};
		pg_query(s->conn,
			 "WITH s AS (INSERT INTO samsa.schemas (schema_type,"
			 " canonical, original, refs, fingerprint) VALUES ($1,"
			 " $2, $3, $4::jsonb, md5($1 || chr(10) || $2 ||"
			 " chr(10) || $4::jsonb::text)) ON CONFLICT"
			 " (fingerprint) DO UPDATE SET fingerprint ="
			 " excluded.fingerprint RETURNING id)"
			 " INSERT INTO samsa.subject_versions (subject,"
			 " version, schema_id) SELECT $5, $6, id FROM s"
			 " RETURNING schema_id",
			 6, p, NULL, NULL, false, on_id, w);
	}
	write_end(w);
}

void sr_delete(struct sr_store *s, int64_t generation, const char *subject,
	       int32_t version, bool permanent, sr_done_cb cb, void *arg)
{
	struct write *w = write_begin(s, generation, cb, NULL, arg);
	if (!w)
		return;
	char ver[16];
	snprintf(ver, sizeof(ver), "%d", (int)version);
	const char *p[2] = {subject, ver};
	if (version < 0 && permanent) {
		pg_query(
			s->conn,
			"DELETE FROM samsa.subject_versions WHERE subject = $1",
			1, p, NULL, NULL, false, NULL, NULL);
		pg_query(s->conn,
			 "DELETE FROM samsa.registry_config WHERE subject = $1",
			 1, p, NULL, NULL, false, NULL, NULL);
	} else if (version < 0) {
		pg_query(s->conn,
			 "UPDATE samsa.subject_versions SET deleted = true"
			 " WHERE subject = $1",
			 1, p, NULL, NULL, false, NULL, NULL);
	} else if (permanent) {
		pg_query(s->conn,
			 "DELETE FROM samsa.subject_versions"
			 " WHERE subject = $1 AND version = $2",
			 2, p, NULL, NULL, false, NULL, NULL);
	} else {
		pg_query(s->conn,
			 "UPDATE samsa.subject_versions SET deleted = true"
			 " WHERE subject = $1 AND version = $2",
			 2, p, NULL, NULL, false, NULL, NULL);
	}
	write_end(w);
}

void sr_set_config(struct sr_store *s, int64_t generation, const char *subject,
		   bool mode, const char *value, sr_done_cb cb, void *arg)
{
	struct write *w = write_begin(s, generation, cb, NULL, arg);
	if (!w)
		return;
	const char *p[2] = {subject, value};
	/* The column name is one of two constants, never client text. */
	const char *sql;
	if (value && mode)
		sql = "INSERT INTO samsa.registry_config (subject, mode)"
		      " VALUES ($1, $2) ON CONFLICT (subject) DO UPDATE"
		      " SET mode = excluded.mode";
	else if (value)
		sql = "INSERT INTO samsa.registry_config (subject,"
		      " compatibility) VALUES ($1, $2) ON CONFLICT (subject)"
		      " DO UPDATE SET compatibility = excluded.compatibility";
	else if (mode)
		sql = "UPDATE samsa.registry_config SET mode = NULL"
		      " WHERE subject = $1";
	else
		sql = "UPDATE samsa.registry_config SET compatibility = NULL"
		      " WHERE subject = $1";
	pg_query(s->conn, sql, value ? 2 : 1, p, NULL, NULL, false, NULL, NULL);
	write_end(w);
}
