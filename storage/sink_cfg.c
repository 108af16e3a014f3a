/*
 * sink_cfg: the JDBC sink connectors' settings (storage/sink_cfg.h), with
 * Confluent's names and defaults, and Debezium's where its class differs.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/connect_cfg.h"
#include "storage/java_regex.h"
#include "storage/sink.h"
#include "storage/sink_cfg.h"

/* The converter classes the sink reads records with. */
static const struct {
	enum sk_conv conv;
	const char *cls;
} converters[] = {
	{SKC_JSON, "org.apache.kafka.connect.json.JsonConverter"},
	{SKC_STRING, "org.apache.kafka.connect.storage.StringConverter"},
	{SKC_AVRO, "io.confluent.connect.avro.AvroConverter"},
	{SKC_BYTES, "org.apache.kafka.connect.converters.ByteArrayConverter"},
	{SKC_SHORT, "org.apache.kafka.connect.converters.ShortConverter"},
	{SKC_INT, "org.apache.kafka.connect.converters.IntegerConverter"},
	{SKC_LONG, "org.apache.kafka.connect.converters.LongConverter"},
	{SKC_FLOAT, "org.apache.kafka.connect.converters.FloatConverter"},
	{SKC_DOUBLE, "org.apache.kafka.connect.converters.DoubleConverter"},
};

/* A converter setting (NULL: Connect's default, JsonConverter). */
static bool conv_of(const char *v, enum sk_conv *c)
{
	if (!v)
		v = converters[0].cls;
	for (size_t i = 0; i < sizeof(converters) / sizeof(*converters); i++)
		if (strcmp(v, converters[i].cls) == 0) {
			*c = converters[i].conv;
			return true;
		}
	return false;
}

const char *sink_conv_class(enum sk_conv c)
{
	for (size_t i = 0; i < sizeof(converters) / sizeof(*converters); i++)
		if (converters[i].conv == c)
			return converters[i].cls;
	return converters[0].cls;
}

/*
 * Appends key='value' (libpq quoting) to out; false, with out unchanged,
 * when it does not fit (a cut password would be a wrong one).
 */
static bool kv(char *out, size_t n, const char *key, const char *val)
{
	size_t k0 = strlen(out), k = k0;
	if (k + strlen(key) + 4 >= n)
		return false;
	k += (size_t)snprintf(out + k, n - k, "%s%s='", k ? " " : "", key);
	for (const char *p = val; *p; p++) {
		if (k + 3 >= n) {
			out[k0] = '\0';
			return false;
		}
		if (*p == '\'' || *p == '\\')
			out[k++] = '\\';
		out[k++] = *p;
	}
	out[k++] = '\'';
	out[k] = '\0';
	return true;
}

static int hexv(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void pct_decode(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++) {
		if (*p == '%' && hexv(p[1]) >= 0 && hexv(p[2]) >= 0) {
			*o++ = (char)(hexv(p[1]) * 16 + hexv(p[2]));
			p += 2;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
}

/* pgJDBC's URL parameters that libpq has, with libpq's names. */
static const char *const jdbc_params[][2] = {
	{"sslmode", "sslmode"},
	{"sslrootcert", "sslrootcert"},
	{"sslcert", "sslcert"},
	{"sslkey", "sslkey"},
	{"sslpassword", "sslpassword"},
	{"connectTimeout", "connect_timeout"},
	{"loginTimeout", "connect_timeout"},
	{"ApplicationName", "application_name"},
	{"gssEncMode", "gssencmode"},
};

/* pgJDBC's URL parameters read here other than jdbc_params. */
static const char *const jdbc_read[] = {
	"user",	      "password",      "ssl",	  "sslmode",
	"sslfactory", "currentSchema", "options",
};

/* Appends name to the list in out (", " between); cut when it is full. */
static void list_add(char *out, size_t n, const char *name)
{
	size_t k = strlen(out);
	snprintf(out + k, n - k, "%s%s", k ? ", " : "", name);
}

/*
 * Appends " -c name=val" to the options text o (of size n), val's spaces
 * and backslashes escaped as libpq's options wants; false when it does not
 * fit.
 */
static bool opt_set(char *o, size_t n, const char *name, const char *val)
{
	size_t k = strlen(o);
	int w = snprintf(o + k, n - k, "%s-c %s=", k ? " " : "", name);
	if (w < 0 || (size_t)w >= n - k)
		return false;
	k += (size_t)w;
	for (const char *p = val; *p; p++) {
		if (k + 3 >= n)
			return false;
		if (*p == ' ' || *p == '\\')
			o[k++] = '\\';
		o[k++] = *p;
	}
	o[k] = '\0';
	return true;
}

/*
 * A Java ZoneId (db.timezone, database.time_zone) as Postgres's TimeZone:
 * a region as it is, Z and UTC/GMT/UT as UTC, an offset (+05:30,
 * UTC-3 ...) in POSIX form with its sign turned (Postgres reads "+05:30"
 * as POSIX does, west of Greenwich).  false when zone is neither.
 */
static bool pg_zone(const char *zone, char *out, size_t n)
{
	const char *z = zone;
	for (const char *pfx = "UTC\0GMT\0UT\0"; *pfx; pfx += strlen(pfx) + 1)
		if (strncmp(z, pfx, strlen(pfx)) == 0 &&
		    (!z[strlen(pfx)] || z[strlen(pfx)] == '+' ||
		     z[strlen(pfx)] == '-')) {
			z += strlen(pfx);
			break;
		}
	if (!*z || strcmp(z, "Z") == 0) {
		snprintf(out, n, "UTC");
		return true;
	}
	if (*z == '+' || *z == '-') {
		int d[6], nd = 0;
		for (const char *p = z + 1; *p; p++) {
			if (*p >= '0' && *p <= '9' && nd < 6)
				d[nd++] = *p - '0';
			else if (*p != ':' || nd % 2 || !nd)
				return false;
		}
		if (nd == 0 || nd == 5)
			return false;
		int h = nd == 1 || nd == 3 ? d[0] : d[0] * 10 + d[1];
		int m = nd == 3	  ? d[1] * 10 + d[2]
			: nd >= 4 ? d[2] * 10 + d[3]
				  : 0;
		if (h > 18 || m > 59)
			return false;
		snprintf(out, n, "<%c%02d%02d>%c%02d:%02d", *z, h, m,
			 *z == '+' ? '-' : '+', h, m);
		return true;
	}
	if (z != zone)
		return false;
	for (const char *p = z; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || strchr("/_+-", *p)))
			return false;
	snprintf(out, n, "%s", z);
	return true;
}

/*
 * jdbc:postgresql://host[:port][/db][?k=v&...] as libpq keywords; user and
 * password from the URL unless given as separate settings; currentSchema
 * as the search_path and options as they are (pgJDBC sends both at
 * start-up); the session's TimeZone is tz (a Postgres zone).  The names
 * of the URL's parameters that samsa does not use go to ignored.  Returns
 * 0, -1 when url is not such a URL, -2 when out is too small.
 */
static int jdbc_conninfo(const char *url, const char *user, const char *pw,
			 const char *tz, char *out, size_t n, char *ignored,
			 size_t ilen)
{
	static const char pfx[] = "jdbc:postgresql://";
	out[0] = '\0';
	ignored[0] = '\0';
	if (strncmp(url, pfx, sizeof(pfx) - 1) != 0)
		return -1;
	char *copy = strdup(url + sizeof(pfx) - 1);
	if (!copy)
		return -1;
	char *query = strchr(copy, '?');
	if (query)
		*query++ = '\0';
	char *path = strchr(copy, '/');
	if (path)
		*path++ = '\0';
	char *host = copy, *port = NULL;
	char *comma = strchr(host, ',');
	if (comma)
		*comma = '\0'; /* failover hosts: the first */
	if (host[0] == '[') {
		char *rb = strchr(host, ']');
		if (rb) {
			*rb = '\0';
			host++;
			if (rb[1] == ':')
				port = rb + 2;
		}
	} else if ((port = strchr(host, ':'))) {
		*port++ = '\0';
	}
	bool fits = kv(out, n, "host", *host ? host : "localhost") &&
		    kv(out, n, "port", port && *port ? port : "5432");
	if (path && *path) {
		pct_decode(path);
		fits = fits && kv(out, n, "dbname", path);
	}
	const char *u = user, *p = pw;
	/* pgJDBC's ssl=true without an sslmode verifies the server fully
	 * (only "require" with its NonValidatingFactory): not libpq's prefer.
	 */
	bool ssl = false, mode = false, validating = true;
	char opts[1024] = "";
	char *save = NULL;
	for (char *q = query ? strtok_r(query, "&", &save) : NULL; q;
	     q = strtok_r(NULL, "&", &save)) {
		char *eq = strchr(q, '=');
		if (!eq) {
			ssl |= strcmp(q, "ssl") == 0;
			if (strcmp(q, "ssl") != 0)
				list_add(ignored, ilen, q);
			continue;
		}
		*eq++ = '\0';
		pct_decode(eq);
		ssl |= strcmp(q, "ssl") == 0 && strcmp(eq, "false") != 0;
		mode |= strcmp(q, "sslmode") == 0;
		if (strcmp(q, "sslfactory") == 0 &&
		    strstr(eq, "NonValidatingFactory"))
			validating = false;
		if (strcmp(q, "user") == 0 && !user)
			u = eq;
		else if (strcmp(q, "password") == 0 && !pw)
			p = eq;
		if (strcmp(q, "options") == 0 && *eq) {
			size_t k = strlen(opts);
			fits = fits && k + strlen(eq) + 2 < sizeof(opts);
			if (fits)
				snprintf(opts + k, sizeof(opts) - k, "%s%s",
					 k ? " " : "", eq);
		}
		if (strcmp(q, "currentSchema") == 0 && *eq)
			fits = fits &&
			       opt_set(opts, sizeof(opts), "search_path", eq);
		bool used = false;
		for (size_t i = 0;
		     i < sizeof(jdbc_params) / sizeof(*jdbc_params); i++)
			if (strcmp(q, jdbc_params[i][0]) == 0) {
				fits = fits &&
				       kv(out, n, jdbc_params[i][1], eq);
				used = true;
			}
		for (size_t i = 0; i < sizeof(jdbc_read) / sizeof(*jdbc_read);
		     i++)
			used |= strcmp(q, jdbc_read[i]) == 0;
		if (!used)
			list_add(ignored, ilen, q);
	}
	if (ssl && !mode)
		fits = fits && kv(out, n, "sslmode",
				  validating ? "verify-full" : "require");
	/* Last, so that it wins: the session's zone is what a timestamp
	 * column gets of an instant, and how zone-less text reads; not the
	 * database's own (America/New_York ...). */
	fits = fits && opt_set(opts, sizeof(opts), "TimeZone", tz) &&
	       kv(out, n, "options", opts);
	if (u)
		fits = fits && kv(out, n, "user", u);
	if (p)
		fits = fits && kv(out, n, "password", p);
	free(copy);
	return fits ? 0 : -2;
}

int sink_cfg_parse(const json_t *c, struct sink_cfg *o, char *key,
		   size_t keylen, char *err, size_t errlen)
{
#define BAD(k, ...)                                                            \
	do {                                                                   \
		snprintf(key, keylen, "%s", k);                                \
		snprintf(err, errlen, __VA_ARGS__);                            \
		if (o)                                                         \
			sink_cfg_free(o);                                      \
		return -1;                                                     \
	} while (0)
	struct sink_cfg tmp;
	bool check_only = !o;
	if (check_only)
		o = &tmp;
	memset(o, 0, sizeof(*o));
	const char *cls = cc_get(c, "connector.class");
	o->debezium = cls && (strcmp(cls, SINK_CLASS_DEBEZIUM) == 0 ||
			      strstr(cls, "debezium") != NULL);
	const char *v;

	const char *topics = cc_get(c, "topics"),
		   *rx = cc_get(c, "topics.regex");
	if (topics && *topics && rx && *rx)
		BAD("topics",
		    "topics and topics.regex are mutually exclusive.");
	if ((!topics || !*topics) && (!rx || !*rx))
		BAD("topics", "Must configure one of topics or topics.regex");
	if (topics && *topics) {
		if (cc_split(topics, &o->topics) < 0)
			BAD("topics", "out of memory");
	} else {
		/* A Java regex, as Kafka's consumer takes it (\d, (?:...)). */
		if (java_regex_compile(&o->regex, rx, strlen(rx), 0) != 0)
			BAD("topics.regex", "Invalid regex: %s", rx);
		o->has_regex = true;
	}

	const char *url = cc_get(c, "connection.url");
	if (!url)
		BAD("connection.url", "Missing required configuration "
				      "\"connection.url\" which has no "
				      "default value.");
	/* Confluent's db.timezone, Debezium's database.time_zone: UTC */
	const char *tzkey = o->debezium ? "database.time_zone" : "db.timezone";
	v = cc_get2(c, tzkey,
		    o->debezium ? "db.timezone" : "database.time_zone");
	char tz[64];
	if (!pg_zone(v && *v ? v : "UTC", tz, sizeof(tz)))
		BAD(tzkey,
		    "Invalid value %s for configuration %s: not a time zone", v,
		    tzkey);
	char ci[2048], ignored[512];
	int rc = jdbc_conninfo(
		url, cc_get2(c, "connection.user", "connection.username"),
		cc_get(c, "connection.password"), tz, ci, sizeof(ci), ignored,
		sizeof(ignored));
	if (rc == -2)
		BAD("connection.url",
		    "Invalid value for configuration connection.url: "
		    "connection settings too long");
	if (rc < 0)
		BAD("connection.url",
		    "Invalid value %s for configuration connection.url: only "
		    "jdbc:postgresql:// URLs are supported",
		    url);
	if (!(o->conninfo = strdup(ci)) ||
	    (*ignored && !(o->url_ignored = strdup(ignored))))
		BAD("connection.url", "out of memory");

	v = cc_get(c, "insert.mode");
	if (!v || strcasecmp(v, "insert") == 0)
		o->mode = SKM_INSERT;
	else if (strcasecmp(v, "upsert") == 0)
		o->mode = SKM_UPSERT;
	else if (strcasecmp(v, "update") == 0)
		o->mode = SKM_UPDATE;
	else
		BAD("insert.mode",
		    "Invalid value %s for configuration insert.mode: must be "
		    "one of insert, upsert, update",
		    v);

	v = o->debezium ? cc_get2(c, "primary.key.mode", "pk.mode")
			: cc_get(c, "pk.mode");
	const char *pkkey = o->debezium ? "primary.key.mode" : "pk.mode";
	if (!v || strcasecmp(v, "none") == 0)
		o->pk = PK_NONE;
	else if (strcasecmp(v, "kafka") == 0)
		o->pk = PK_KAFKA;
	else if (strcasecmp(v, "record_key") == 0)
		o->pk = PK_RECORD_KEY;
	else if (strcasecmp(v, "record_value") == 0)
		o->pk = PK_RECORD_VALUE;
	else
		BAD(pkkey,
		    "Invalid value %s for configuration %s: must be one of "
		    "none, kafka, record_key, record_value",
		    v, pkkey);
	o->npk_fields = cc_split(
		o->debezium ? cc_get2(c, "primary.key.fields", "pk.fields")
			    : cc_get(c, "pk.fields"),
		&o->pk_fields);
	if (o->npk_fields < 0)
		BAD("pk.fields", "out of memory");
	if (o->pk == PK_KAFKA && o->npk_fields != 0 && o->npk_fields != 3)
		BAD("pk.fields",
		    "PK mode for table is KAFKA so there should either be no "
		    "field names defined for defaults to be used, or 3 PK "
		    "fields");
	if (o->mode != SKM_INSERT && o->pk == PK_NONE)
		BAD(pkkey,
		    "Write to table with %s mode requires a primary key: set "
		    "%s to record_key, record_value or kafka",
		    o->mode == SKM_UPSERT ? "upsert" : "update", pkkey);
	v = cc_get2(c, "fields.whitelist", "field.include.list");
	if (cc_split(v, &o->whitelist) < 0)
		BAD("fields.whitelist", "out of memory");

	o->delete_enabled = cc_bool(cc_get(c, "delete.enabled"), false);
	if (o->delete_enabled && o->pk != PK_RECORD_KEY)
		BAD("delete.enabled",
		    "Deletes are only supported for %s=record_key", pkkey);
	if (o->debezium) {
		v = cc_get(c, "schema.evolution");
		bool basic = v && strcasecmp(v, "basic") == 0;
		if (v && !basic && strcasecmp(v, "none") != 0 &&
		    strcasecmp(v, "validate-only") != 0)
			BAD("schema.evolution",
			    "Invalid value %s for configuration "
			    "schema.evolution",
			    v);
		o->auto_create = cc_bool(cc_get(c, "auto.create"), basic);
		o->auto_evolve = cc_bool(cc_get(c, "auto.evolve"), basic);
		o->quote = cc_bool(cc_get(c, "quote.identifiers"), false);
	} else {
		o->auto_create = cc_bool(cc_get(c, "auto.create"), false);
		o->auto_evolve = cc_bool(cc_get(c, "auto.evolve"), false);
		v = cc_get(c, "quote.sql.identifiers");
		if (v && strcasecmp(v, "always") != 0 &&
		    strcasecmp(v, "never") != 0)
			BAD("quote.sql.identifiers",
			    "Invalid value %s for configuration "
			    "quote.sql.identifiers: must be always or never",
			    v);
		o->quote = !v || strcasecmp(v, "always") == 0;
	}
	v = cc_get2(c, "table.name.format", "collection.name.format");
	if (!(o->table_format = strdup(v && *v ? v : "${topic}")))
		BAD("table.name.format", "out of memory");
	o->by_source = o->debezium && strstr(o->table_format, "${source.");

	v = cc_get(c, "batch.size");
	o->batch_size = o->debezium ? 500 : 3000;
	if (v) {
		char *end;
		long n = strtol(v, &end, 10);
		if (*end || n < 1 || n > 1000000)
			BAD("batch.size",
			    "Invalid value %s for configuration batch.size", v);
		o->batch_size = (int)n;
	}
	if (!conv_of(cc_get(c, "key.converter"), &o->key_conv))
		BAD("key.converter",
		    "Class %s could not be found (key.converter)",
		    cc_get(c, "key.converter"));
	if (!conv_of(cc_get(c, "value.converter"), &o->value_conv))
		BAD("value.converter",
		    "Class %s could not be found (value.converter)",
		    cc_get(c, "value.converter"));
	o->key_schemas =
		cc_bool(cc_get(c, "key.converter.schemas.enable"), true);
	o->value_schemas =
		cc_bool(cc_get(c, "value.converter.schemas.enable"), true);
	o->key_nulls = !cc_bool(
		cc_get(c, "key.converter.replace.null.with.default"), true);
	o->value_nulls = !cc_bool(
		cc_get(c, "value.converter.replace.null.with.default"), true);

	v = cc_get(c, "errors.tolerance");
	if (v && strcasecmp(v, "all") != 0 && strcasecmp(v, "none") != 0)
		BAD("errors.tolerance",
		    "Invalid value %s for configuration errors.tolerance: "
		    "String must be one of: none, all",
		    v);
	o->tolerate_all = v && strcasecmp(v, "all") == 0;
	v = cc_get(c, "errors.deadletterqueue.topic.name");
	if (v && *v)
		if (!(o->dlq_topic = strdup(v)))
			BAD("errors.deadletterqueue.topic.name",
			    "out of memory");
	o->dlq_headers = cc_bool(
		cc_get(c, "errors.deadletterqueue.context.headers.enable"),
		false);
	v = cc_get(c, "retry.backoff.ms");
	o->retry_backoff_ms = v ? atoi(v) : 3000; /* Confluent's default */
	if (o->retry_backoff_ms < 100)
		o->retry_backoff_ms = 100;
	if (o->retry_backoff_ms > 3000)
		o->retry_backoff_ms = 3000;
	if (check_only)
		sink_cfg_free(o);
	else
		o->jcache = sk_jcache_new(); /* NULL: parsed each time */
	return 0;
#undef BAD
}

void sink_cfg_free(struct sink_cfg *c)
{
	if (!c)
		return;
	cc_free_list(c->topics);
	if (c->has_regex)
		regfree(&c->regex);
	free(c->conninfo);
	free(c->url_ignored);
	cc_free_list(c->pk_fields);
	cc_free_list(c->whitelist);
	free(c->table_format);
	free(c->dlq_topic);
	sk_jcache_free(c->jcache);
	memset(c, 0, sizeof(*c));
}

/* Appends src to full[*k..n) (cut when full). */
static void put_name(char *full, size_t n, size_t *k, const char *src,
		     bool dots)
{
	for (; *src && *k + 1 < n; src++)
		full[(*k)++] = dots && *src == '.' ? '_' : *src;
}

int sink_cfg_name(const struct sink_cfg *c, const char *topic,
		  const char *const *source, char *full, size_t n)
{
	static const char *const keys[3] = {"${source.db}", "${source.schema}",
					    "${source.table}"};
	size_t k = 0;
	const char *f = c->table_format;
	while (*f && k + 1 < n) {
		int which = -1;
		for (int i = 0; i < 3; i++)
			if (c->debezium &&
			    strncmp(f, keys[i], strlen(keys[i])) == 0)
				which = i;
		if (strncmp(f, "${topic}", 8) == 0) {
			put_name(full, n, &k, topic, c->debezium);
			f += 8;
		} else if (which >= 0) {
			if (!source || !source[which]) {
				full[k] = '\0';
				return -1;
			}
			put_name(full, n, &k, source[which], false);
			f += strlen(keys[which]);
		} else {
			full[k++] = *f++;
		}
	}
	full[k] = '\0';
	return 0;
}

void sink_cfg_split(const char *name, char *schema, size_t slen, char *table,
		    size_t tlen)
{
	char full[1024];
	snprintf(full, sizeof(full), "%s", name);
	schema[0] = '\0';
	/* dots split catalog.schema.table; the last two count */
	char *dot = strrchr(full, '.');
	if (dot) {
		*dot = '\0';
		char *prev = strrchr(full, '.');
		snprintf(schema, slen, "%s", prev ? prev + 1 : full);
		snprintf(table, tlen, "%s", dot + 1);
	} else {
		snprintf(table, tlen, "%s", full);
	}
}

void sink_cfg_table(const struct sink_cfg *c, const char *topic, char *schema,
		    size_t slen, char *table, size_t tlen)
{
	char full[1024];
	sink_cfg_name(c, topic, NULL, full, sizeof(full));
	sink_cfg_split(full, schema, slen, table, tlen);
}
