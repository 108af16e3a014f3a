/*
 * config: samsa's settings from the command line, SAMSA_* environment
 * variables and a config file, in rising precedence: file, environment,
 * command line.  Broker configs (num.partitions, log.retention.ms ...) may
 * be set in the file as name=value and go to the broker config table.
 */
#ifndef SAMSA_CONFIG_H
#define SAMSA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

struct hostport {
	char host[256];
	int port;
};

struct config {
	char *pg;	       /* libpq conninfo */
	struct hostport kafka; /* bind address */
	struct hostport advertise;
	struct hostport registry;
	struct hostport connect;
	int broker_id;
	char *config_file;
	char *kafka_auth; /* --kafka-auth as given */
	bool kafka_login; /* --kafka-auth postgres: clients log in (SASL) */
	char *rest_auth;  /* --rest-auth as given */
	bool rest_login;  /* --rest-auth postgres: REST takes Basic logins */
	char *tls_cert;	  /* --kafka-tls-cert, NULL: no TLS */
	char *tls_key;
	char *tls_client_ca; /* --kafka-tls-client-ca: clients show certs */
	char *rest_tls_cert; /* --rest-tls-cert: HTTPS on the REST listeners */
	char *rest_tls_key;
	long long max_request_bytes;
};

/*
 * Fills cfg from argv, the environment and the config file.  Returns 0 to
 * run, 1 when --help or --version was answered (exit 0), -1 with a one-line
 * message in err for a bad flag, value or file (exit non-zero).
 */
int config_load(struct config *cfg, int argc, char **argv, char *err,
		size_t errlen);
void config_free(struct config *cfg);

#endif
