/*
 * config: one sorted table of options; each has a long flag, an environment
 * variable and a config file key.
 */
#include "proxy/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/topic_config.h"

static const char usage[] =
	"usage: samsa --pg CONNINFO [options]\n"
	"\n"
	"A Kafka-compatible broker that keeps its log in PostgreSQL.\n"
	"\n"
	"  --pg CONNINFO          Postgres connection (libpq conninfo or URI)\n"
	"  --kafka HOST:PORT      Kafka listener (default 0.0.0.0:9092)\n"
	"  --advertise HOST:PORT  address given to clients (default: the\n"
	"                         listener, 127.0.0.1 for 0.0.0.0)\n"
	"  --broker-id N          broker id (default 0)\n"
	"  --kafka-auth MODE      none (default), or postgres: Kafka clients\n"
	"                         log in (SASL/PLAIN, SCRAM-SHA-256) as roles\n"
	"  --kafka-tls-cert FILE  TLS on the Kafka listener: certificate "
	"chain\n"
	"  --kafka-tls-key FILE   and its private key (PEM, both or neither)\n"
	"  --kafka-tls-client-ca FILE\n"
	"                         clients must show a certificate signed by\n"
	"                         a CA in FILE (PEM)\n"
	"  --rest-auth MODE       none (default), or postgres: the Schema\n"
	"                         Registry and Connect REST APIs take HTTP\n"
	"                         Basic logins as Postgres roles\n"
	"  --rest-tls-cert FILE   HTTPS on the REST listeners: certificate\n"
	"  --rest-tls-key FILE    chain and its private key (PEM, both or\n"
	"                         neither)\n"
	"  --registry HOST:PORT   Schema Registry listener (default "
	"0.0.0.0:8081)\n"
	"  --connect HOST:PORT    Kafka Connect REST listener (default "
	"0.0.0.0:8083)\n"
	"  --config FILE          name=value lines: these options (without\n"
	"                         --) and broker configs such as\n"
	"                         num.partitions or log.retention.ms\n"
	"  --help, --version\n"
	"\n"
	"Each option is also an environment variable, SAMSA_ and its name in\n"
	"capitals with _ for -: SAMSA_PG, SAMSA_KAFKA_AUTH, SAMSA_REST_AUTH "
	"...\n";

enum opt_kind { OPT_STRING, OPT_HOSTPORT, OPT_INT };

struct option_def {
	const char *name; /* flag without --, file key */
	const char *env;
	enum opt_kind kind;
	size_t offset;
};

#define OFF(f) offsetof(struct config, f)

/* Sorted by name. */
static const struct option_def options[] = {
	{"advertise", "SAMSA_ADVERTISE", OPT_HOSTPORT, OFF(advertise)},
	{"broker-id", "SAMSA_BROKER_ID", OPT_INT, OFF(broker_id)},
	{"config", "SAMSA_CONFIG", OPT_STRING, OFF(config_file)},
	{"connect", "SAMSA_CONNECT", OPT_HOSTPORT, OFF(connect)},
	{"kafka", "SAMSA_KAFKA", OPT_HOSTPORT, OFF(kafka)},
	{"kafka-auth", "SAMSA_KAFKA_AUTH", OPT_STRING, OFF(kafka_auth)},
	{"kafka-tls-cert", "SAMSA_KAFKA_TLS_CERT", OPT_STRING, OFF(tls_cert)},
	{"kafka-tls-client-ca", "SAMSA_KAFKA_TLS_CLIENT_CA", OPT_STRING,
	 OFF(tls_client_ca)},
	{"kafka-tls-key", "SAMSA_KAFKA_TLS_KEY", OPT_STRING, OFF(tls_key)},
	{"pg", "SAMSA_PG", OPT_STRING, OFF(pg)},
	{"registry", "SAMSA_REGISTRY", OPT_HOSTPORT, OFF(registry)},
	{"rest-auth", "SAMSA_REST_AUTH", OPT_STRING, OFF(rest_auth)},
	{"rest-tls-cert", "SAMSA_REST_TLS_CERT", OPT_STRING,
	 OFF(rest_tls_cert)},
	{"rest-tls-key", "SAMSA_REST_TLS_KEY", OPT_STRING, OFF(rest_tls_key)},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static const struct option_def *find_option(const char *name)
{
	for (size_t i = 0; i < NOPTIONS; i++)
		if (strcmp(options[i].name, name) == 0)
			return &options[i];
	return NULL;
}

static int parse_hostport(const char *v, struct hostport *hp)
{
	const char *colon = strrchr(v, ':');
	if (!colon || colon == v || colon[1] == '\0')
		return -1;
	size_t hl = (size_t)(colon - v);
	if (v[0] == '[' && hl > 2 && v[hl - 1] == ']') {
		v++;
		hl -= 2;
	}
	if (hl >= sizeof(hp->host))
		return -1;
	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || port <= 0 || port > 65535)
		return -1;
	memcpy(hp->host, v, hl);
	hp->host[hl] = '\0';
	hp->port = (int)port;
	return 0;
}

static int set_option(struct config *cfg, const struct option_def *o,
		      const char *value, char *err, size_t errlen)
{
	void *field = (char *)cfg + o->offset;
	switch (o->kind) {
	case OPT_STRING: {
		char **s = field;
		free(*s);
		*s = strdup(value);
		return *s ? 0 : -1;
	}
	case OPT_HOSTPORT:
		if (parse_hostport(value, field) < 0) {
			snprintf(err, errlen,
				 "--%s: expected HOST:PORT, got '%s'", o->name,
				 value);
			return -1;
		}
		return 0;
	case OPT_INT: {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (errno || *value == '\0' || *end || v < 0 ||
		    v > 2147483647) {
			snprintf(err, errlen,
				 "--%s: expected a non-negative integer, got "
				 "'%s'",
				 o->name, value);
			return -1;
		}
		*(int *)field = (int)v;
		return 0;
	}
	}
	return -1;
}

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

static int load_file(struct config *cfg, const char *path, char *err,
		     size_t errlen)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "--config %s: %s", path, strerror(errno));
		return -1;
	}
	char line[4096];
	int lineno = 0, rc = 0;
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		lineno++;
		char *l = trim(line);
		if (*l == '\0' || *l == '#')
			continue;
		char *eq = strchr(l, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected name=value",
				 path, lineno);
			rc = -1;
			break;
		}
		*eq = '\0';
		char *name = trim(l), *value = trim(eq + 1);
		const struct option_def *o = find_option(name);
		char e[200];
		if (o) {
			if (strcmp(name, "config") == 0)
				continue;
			if (set_option(cfg, o, value, e, sizeof(e)) < 0) {
				snprintf(err, errlen, "%s:%d: %s", path, lineno,
					 e);
				rc = -1;
			}
		} else if (bc_set(name, value, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "%s:%d: %s", path, lineno, e);
			rc = -1;
		}
	}
	fclose(f);
	return rc;
}

/* --kafka-auth, --rest-auth: none (or unset) or postgres. */
static int parse_auth(const char *flag, const char *v, bool *login, char *err,
		      size_t errlen)
{
	*login = v && strcmp(v, "postgres") == 0;
	if (!v || *login || strcmp(v, "none") == 0)
		return 0;
	snprintf(err, errlen, "--%s: expected none or postgres, got '%s'", flag,
		 v);
	return -1;
}

/* Two flags that go together: both or neither. */
static int both_or_neither(const char *a_flag, const char *a,
			   const char *b_flag, const char *b, char *err,
			   size_t errlen)
{
	if (!a == !b)
		return 0;
	snprintf(err, errlen, "%s and %s go together: %s is missing", a_flag,
		 b_flag, a ? b_flag : a_flag);
	return -1;
}

int config_load(struct config *cfg, int argc, char **argv, char *err,
		size_t errlen)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->kafka.host, sizeof(cfg->kafka.host), "0.0.0.0");
	cfg->kafka.port = 9092;
	snprintf(cfg->registry.host, sizeof(cfg->registry.host), "0.0.0.0");
	cfg->registry.port = 8081;
	snprintf(cfg->connect.host, sizeof(cfg->connect.host), "0.0.0.0");
	cfg->connect.port = 8083;

	/* The config file named anywhere comes first, then env, then flags. */
	const char *file = getenv("SAMSA_CONFIG");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 ||
		    strcmp(argv[i], "-h") == 0) {
			fputs(usage, stdout);
			return 1;
		}
		if (strcmp(argv[i], "--version") == 0) {
			printf("samsa %s\n", SAMSA_VERSION);
			return 1;
		}
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			file = argv[i] + 9;
	}
	if (file && load_file(cfg, file, err, errlen) < 0)
		return -1;
	for (size_t i = 0; i < NOPTIONS; i++) {
		const char *v = getenv(options[i].env);
		if (v && *v && set_option(cfg, &options[i], v, err, errlen) < 0)
			return -1;
	}
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		if (strncmp(arg, "--", 2) != 0) {
			snprintf(err, errlen,
				 "unexpected argument '%s' (try --help)", arg);
			return -1;
		}
		char name[64];
		const char *eq = strchr(arg, '=');
		size_t nl = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
		if (nl >= sizeof(name))
			nl = sizeof(name) - 1;
		memcpy(name, arg + 2, nl);
		name[nl] = '\0';
		const struct option_def *o = find_option(name);
		if (!o) {
			snprintf(err, errlen,
				 "unknown option --%s (try --help)", name);
			return -1;
		}
		if (eq) {
			value = eq + 1;
		} else if (i + 1 < argc) {
			value = argv[++i];
		} else {
			snprintf(err, errlen, "--%s needs a value", name);
			return -1;
		}
		if (set_option(cfg, o, value, err, errlen) < 0)
			return -1;
	}
	if (!cfg->pg || !*cfg->pg) {
		snprintf(
			err, errlen,
			"no Postgres given: pass --pg CONNINFO or set SAMSA_PG "
			"(try --help)");
		return -1;
	}
	if (parse_auth("kafka-auth", cfg->kafka_auth, &cfg->kafka_login, err,
		       errlen) < 0 ||
	    parse_auth("rest-auth", cfg->rest_auth, &cfg->rest_login, err,
		       errlen) < 0)
		return -1;
	if (both_or_neither("--kafka-tls-cert", cfg->tls_cert,
			    "--kafka-tls-key", cfg->tls_key, err, errlen) < 0 ||
	    both_or_neither("--rest-tls-cert", cfg->rest_tls_cert,
			    "--rest-tls-key", cfg->rest_tls_key, err,
			    errlen) < 0)
		return -1;
	if (cfg->tls_client_ca && !cfg->tls_cert) {
		snprintf(err, errlen,
			 "--kafka-tls-client-ca needs --kafka-tls-cert and "
			 "--kafka-tls-key");
		return -1;
	}
	if (cfg->advertise.port == 0) {
		cfg->advertise = cfg->kafka;
		if (strcmp(cfg->kafka.host, "0.0.0.0") == 0 ||
		    strcmp(cfg->kafka.host, "::") == 0)
			snprintf(cfg->advertise.host,
				 sizeof(cfg->advertise.host), "127.0.0.1");
	}
	cfg->max_request_bytes =
		bc_get_int("socket.request.max.bytes", 104857600);
	char id[16];
	snprintf(id, sizeof(id), "%d", cfg->broker_id);
	bc_set("broker.id", id, err, errlen);
	bc_set("node.id", id, err, errlen);
	/* Kafka's names for the listener's security protocol. */
	const char *proto =
		cfg->kafka_login
			? (cfg->tls_cert ? "SASL_SSL" : "SASL_PLAINTEXT")
		: cfg->tls_cert ? "SSL"
				: "PLAINTEXT";
	char adv[300];
	snprintf(adv, sizeof(adv), "%s://%s:%d", proto, cfg->advertise.host,
		 cfg->advertise.port);
	bc_set("advertised.listeners", adv, err, errlen);
	snprintf(adv, sizeof(adv), "%s://%s:%d", proto, cfg->kafka.host,
		 cfg->kafka.port);
	bc_set("listeners", adv, err, errlen);
	return 0;
}

void config_free(struct config *cfg)
{
	free(cfg->pg);
	free(cfg->config_file);
	free(cfg->kafka_auth);
	free(cfg->rest_auth);
	free(cfg->tls_cert);
	free(cfg->tls_key);
	free(cfg->tls_client_ca);
	free(cfg->rest_tls_cert);
	free(cfg->rest_tls_key);
	memset(cfg, 0, sizeof(*cfg));
}
