/*
 * config_load: defaults, flags in both forms, SAMSA_* variables, the config
 * file, their precedence, and the one-line errors.  Every test runs in a
 * process of its own (Criterion's default), so setenv() and bc_set() do not
 * leak from one test into another.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "proxy/config.h"
#include "storage/topic_config.h"
#include "tests/support/leak_check.h"

static const char *const env_names[] = {
	"SAMSA_PG",
	"SAMSA_KAFKA",
	"SAMSA_ADVERTISE",
	"SAMSA_BROKER_ID",
	"SAMSA_REGISTRY",
	"SAMSA_CONNECT",
	"SAMSA_CONFIG",
	"SAMSA_KAFKA_AUTH",
	"SAMSA_KAFKA_TLS_CERT",
	"SAMSA_KAFKA_TLS_KEY",
	"SAMSA_REST_AUTH",
};

static char tmpfile_path[64];
static struct config cfg;
static char err[512];

static void setup(void)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
	tmpfile_path[0] = '\0';
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
}

static void teardown(void)
{
	config_free(&cfg);
	if (tmpfile_path[0])
		unlink(tmpfile_path);
	leak_check();
}

TestSuite(config, .init = setup, .fini = teardown);

/* Runs config_load on the NULL-terminated arguments after "samsa". */
static int load_v(const char *const *args)
{
	char *argv[32];
	int argc = 0;

	argv[argc++] = (char *)"samsa";
	while (*args && argc < 31)
		argv[argc++] = (char *)*args++;
	argv[argc] = NULL;
	config_free(&cfg);
	err[0] = '\0';
	return config_load(&cfg, argc, argv, err, sizeof(err));
}

#define LOAD(...) load_v((const char *const[]){__VA_ARGS__, NULL})

/* A config file with the given text; its path stays valid for the test. */
static const char *write_file(const char *text)
{
	snprintf(tmpfile_path, sizeof(tmpfile_path),
		 "/tmp/samsa-test-config.XXXXXX");
	int fd = mkstemp(tmpfile_path);
	cr_assert_geq(fd, 0);
	FILE *f = fdopen(fd, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return tmpfile_path;
}

/* A failure gives -1 and one line of text that mentions `what`. */
static void assert_error(int rc, const char *what)
{
	cr_assert_eq(rc, -1, "expected an error mentioning '%s'", what);
	cr_assert_neq(err[0], '\0', "no message");
	cr_assert_null(strchr(err, '\n'), "message not one line: %s", err);
	cr_assert(strstr(err, what), "'%s' not in: %s", what, err);
}

/* --- defaults and forms --------------------------------------------------- */

Test(config, defaults)
{
	cr_assert_eq(LOAD("--pg", "dbname=x"), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=x");
	cr_assert_str_eq(cfg.kafka.host, "0.0.0.0");
	cr_assert_eq(cfg.kafka.port, 9092);
	cr_assert_str_eq(cfg.registry.host, "0.0.0.0");
	cr_assert_eq(cfg.registry.port, 8081);
	cr_assert_str_eq(cfg.connect.host, "0.0.0.0");
	cr_assert_eq(cfg.connect.port, 8083);
	cr_assert_eq(cfg.broker_id, 0);
	cr_assert_not(cfg.kafka_login);
	cr_assert_null(cfg.config_file);
	cr_assert_eq(cfg.max_request_bytes, 104857600);
	/* 0.0.0.0 is not an address a client can use. */
	cr_assert_str_eq(cfg.advertise.host, "127.0.0.1");
	cr_assert_eq(cfg.advertise.port, 9092);
	/* The broker configs that mirror the settings. */
	cr_assert_str_eq(bc_get("broker.id", NULL), "0");
	cr_assert_str_eq(bc_get("node.id", NULL), "0");
	cr_assert_str_eq(bc_get("advertised.listeners", NULL),
			 "PLAINTEXT://127.0.0.1:9092");
	cr_assert_str_eq(bc_get("listeners", NULL), "PLAINTEXT://0.0.0.0:9092");
}

Test(config, flags_space_form)
{
	cr_assert_eq(LOAD("--pg", "host=h", "--kafka", "10.0.0.1:9000",
			  "--advertise", "broker.example:19000", "--broker-id",
			  "7", "--registry", "localhost:1", "--connect",
			  "localhost:65535"),
		     0, "%s", err);
	cr_assert_str_eq(cfg.pg, "host=h");
	cr_assert_str_eq(cfg.kafka.host, "10.0.0.1");
	cr_assert_eq(cfg.kafka.port, 9000);
	cr_assert_str_eq(cfg.advertise.host, "broker.example");
	cr_assert_eq(cfg.advertise.port, 19000);
	cr_assert_eq(cfg.broker_id, 7);
	cr_assert_str_eq(cfg.registry.host, "localhost");
	cr_assert_eq(cfg.registry.port, 1);
	cr_assert_eq(cfg.connect.port, 65535);
	cr_assert_str_eq(bc_get("broker.id", NULL), "7");
	cr_assert_str_eq(bc_get("node.id", NULL), "7");
	cr_assert_str_eq(bc_get("advertised.listeners", NULL),
			 "PLAINTEXT://broker.example:19000");
	cr_assert_str_eq(bc_get("listeners", NULL),
			 "PLAINTEXT://10.0.0.1:9000");
}

Test(config, flags_equals_form)
{
	cr_assert_eq(LOAD("--pg=host=h port=5", "--kafka=127.0.0.2:9001",
			  "--broker-id=3", "--advertise=a.b:1"),
		     0, "%s", err);
	/* Only the first '=' separates: conninfo keeps its own. */
	cr_assert_str_eq(cfg.pg, "host=h port=5");
	cr_assert_str_eq(cfg.kafka.host, "127.0.0.2");
	cr_assert_eq(cfg.kafka.port, 9001);
	cr_assert_eq(cfg.broker_id, 3);
	cr_assert_str_eq(cfg.advertise.host, "a.b");
	cr_assert_eq(cfg.advertise.port, 1);
}

Test(config, later_flag_wins)
{
	cr_assert_eq(
		LOAD("--pg", "a", "--pg=b", "--kafka", "h:1", "--kafka", "h:2"),
		0);
	cr_assert_str_eq(cfg.pg, "b");
	cr_assert_eq(cfg.kafka.port, 2);
}

Test(config, ipv6_brackets)
{
	cr_assert_eq(LOAD("--pg", "x", "--kafka", "[::1]:9093"), 0, "%s", err);
	cr_assert_str_eq(cfg.kafka.host, "::1");
	cr_assert_eq(cfg.kafka.port, 9093);
	cr_assert_str_eq(cfg.advertise.host, "::1");
	cr_assert_eq(LOAD("--pg", "x", "--kafka", "[::]:9094"), 0, "%s", err);
	cr_assert_str_eq(cfg.kafka.host, "::");
	cr_assert_str_eq(cfg.advertise.host, "127.0.0.1");
	cr_assert_eq(cfg.advertise.port, 9094);
}

Test(config, advertise_follows_listener)
{
	cr_assert_eq(LOAD("--pg", "x", "--kafka", "192.168.1.5:9999"), 0);
	cr_assert_str_eq(cfg.advertise.host, "192.168.1.5");
	cr_assert_eq(cfg.advertise.port, 9999);
	cr_assert_eq(LOAD("--pg", "x", "--kafka", "0.0.0.0:7777"), 0);
	cr_assert_str_eq(cfg.advertise.host, "127.0.0.1");
	cr_assert_eq(cfg.advertise.port, 7777);
	/* An explicit advertise is kept as given. */
	cr_assert_eq(LOAD("--pg", "x", "--kafka", "0.0.0.0:7777", "--advertise",
			  "0.0.0.0:1"),
		     0);
	cr_assert_str_eq(cfg.advertise.host, "0.0.0.0");
	cr_assert_eq(cfg.advertise.port, 1);
}

Test(config, kafka_auth)
{
	cr_assert_eq(LOAD("--pg", "x", "--kafka-auth", "postgres"), 0, "%s",
		     err);
	cr_assert(cfg.kafka_login);
	/* Clients see a SASL listener (DescribeConfigs). */
	cr_assert_str_eq(bc_get("advertised.listeners", NULL),
			 "SASL_PLAINTEXT://127.0.0.1:9092");
	cr_assert_str_eq(bc_get("listeners", NULL),
			 "SASL_PLAINTEXT://0.0.0.0:9092");
	cr_assert_eq(LOAD("--pg", "x", "--kafka-auth=none"), 0, "%s", err);
	cr_assert_not(cfg.kafka_login);
	assert_error(LOAD("--pg", "x", "--kafka-auth", "ldap"), "kafka-auth");
	setenv("SAMSA_KAFKA_AUTH", "postgres", 1);
	cr_assert_eq(LOAD("--pg", "x"), 0, "%s", err);
	cr_assert(cfg.kafka_login);
	cr_assert_not(cfg.rest_login);
	cr_assert_eq(LOAD("--pg", "x", "--rest-auth", "postgres"), 0, "%s",
		     err);
	cr_assert(cfg.rest_login);
	assert_error(LOAD("--pg", "x", "--rest-auth", "basic"), "rest-auth");
}

Test(config, kafka_tls)
{
	cr_assert_eq(LOAD("--pg", "x", "--kafka-tls-cert", "c.pem",
			  "--kafka-tls-key", "k.pem"),
		     0, "%s", err);
	cr_assert_str_eq(cfg.tls_cert, "c.pem");
	cr_assert_str_eq(cfg.tls_key, "k.pem");
	cr_assert_str_eq(bc_get("listeners", NULL), "SSL://0.0.0.0:9092");
	cr_assert_eq(LOAD("--pg", "x", "--kafka-tls-cert", "c.pem",
			  "--kafka-tls-key", "k.pem", "--kafka-auth",
			  "postgres"),
		     0, "%s", err);
	cr_assert_str_eq(bc_get("advertised.listeners", NULL),
			 "SASL_SSL://127.0.0.1:9092");
	/* One without the other is a mistake, not "no TLS". */
	assert_error(LOAD("--pg", "x", "--kafka-tls-cert", "c.pem"),
		     "--kafka-tls-key is missing");
	assert_error(LOAD("--pg", "x", "--kafka-tls-key", "k.pem"),
		     "--kafka-tls-cert is missing");
	cr_assert_eq(LOAD("--pg", "x", "--kafka-tls-cert", "c.pem",
			  "--kafka-tls-key", "k.pem", "--kafka-tls-client-ca",
			  "ca.pem"),
		     0, "%s", err);
	cr_assert_str_eq(cfg.tls_client_ca, "ca.pem");
	assert_error(LOAD("--pg", "x", "--kafka-tls-client-ca", "ca.pem"),
		     "--kafka-tls-client-ca needs --kafka-tls-cert");
}

Test(config, rest_tls)
{
	cr_assert_eq(LOAD("--pg", "x", "--rest-tls-cert", "c.pem",
			  "--rest-tls-key", "k.pem"),
		     0, "%s", err);
	cr_assert_str_eq(cfg.rest_tls_cert, "c.pem");
	cr_assert_str_eq(cfg.rest_tls_key, "k.pem");
	/* The Kafka listener stays as it was. */
	cr_assert_null(cfg.tls_cert);
	cr_assert_str_eq(bc_get("listeners", NULL), "PLAINTEXT://0.0.0.0:9092");
	assert_error(LOAD("--pg", "x", "--rest-tls-cert", "c.pem"),
		     "--rest-tls-key is missing");
	assert_error(LOAD("--pg", "x", "--rest-tls-key", "k.pem"),
		     "--rest-tls-cert is missing");
}

/* --- environment ------------------------------------------------------- */

Test(config, environment)
{
	setenv("SAMSA_PG", "dbname=env", 1);
	setenv("SAMSA_KAFKA", "1.2.3.4:1111", 1);
	setenv("SAMSA_ADVERTISE", "adv:2222", 1);
	setenv("SAMSA_BROKER_ID", "5", 1);
	setenv("SAMSA_REGISTRY", "reg:3333", 1);
	setenv("SAMSA_CONNECT", "con:4444", 1);
	cr_assert_eq(LOAD(NULL), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=env");
	cr_assert_str_eq(cfg.kafka.host, "1.2.3.4");
	cr_assert_eq(cfg.kafka.port, 1111);
	cr_assert_str_eq(cfg.advertise.host, "adv");
	cr_assert_eq(cfg.advertise.port, 2222);
	cr_assert_eq(cfg.broker_id, 5);
	cr_assert_str_eq(cfg.registry.host, "reg");
	cr_assert_eq(cfg.connect.port, 4444);
}

Test(config, empty_environment_ignored)
{
	setenv("SAMSA_KAFKA", "", 1);
	cr_assert_eq(LOAD("--pg", "x"), 0, "%s", err);
	cr_assert_eq(cfg.kafka.port, 9092);
}

Test(config, bad_environment)
{
	setenv("SAMSA_KAFKA", "nocolon", 1);
	assert_error(LOAD("--pg", "x"), "nocolon");
	unsetenv("SAMSA_KAFKA");
	setenv("SAMSA_BROKER_ID", "-1", 1);
	assert_error(LOAD("--pg", "x"), "broker-id");
}

Test(config, flags_beat_environment)
{
	setenv("SAMSA_PG", "dbname=env", 1);
	setenv("SAMSA_KAFKA", "env:1", 1);
	setenv("SAMSA_BROKER_ID", "5", 1);
	cr_assert_eq(LOAD("--kafka", "flag:2"), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=env");
	cr_assert_str_eq(cfg.kafka.host, "flag");
	cr_assert_eq(cfg.kafka.port, 2);
	cr_assert_eq(cfg.broker_id, 5);
}

/* --- config file --------------------------------------------------------- */

Test(config, file_options_and_broker_configs)
{
	const char *path = write_file("# a comment\n"
				      "\n"
				      "pg = dbname=file\n"
				      "  kafka=file.host:5000  \n"
				      "broker-id=9\n"
				      "config=/ignored/in/a/file\n"
				      "num.partitions = 4\n"
				      "log.retention.ms=1000\n"
				      "socket.request.max.bytes=2048\n"
				      "\t# indented comment\n");

	cr_assert_eq(LOAD("--config", path), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=file");
	cr_assert_str_eq(cfg.kafka.host, "file.host");
	cr_assert_eq(cfg.kafka.port, 5000);
	cr_assert_eq(cfg.broker_id, 9);
	cr_assert_str_eq(cfg.config_file, path);
	cr_assert_eq(cfg.max_request_bytes, 2048);
	bool is_default = true;
	cr_assert_str_eq(bc_get("num.partitions", &is_default), "4");
	cr_assert_not(is_default);
	int src = 0;
	cr_assert_str_eq(tc_default(tc_find("retention.ms", 12), &src), "1000");
	cr_assert_eq(src, TC_SRC_STATIC_BROKER);
}

Test(config, file_equals_form_and_env)
{
	const char *path = write_file("pg=dbname=file\n");

	cr_assert_eq(LOAD("--config=/dev/null", "--pg", "x"), 0, "%s", err);
	cr_assert_str_eq(cfg.config_file, "/dev/null");
	cr_assert_eq(LOAD("--config", path), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=file");
	setenv("SAMSA_CONFIG", path, 1);
	cr_assert_eq(LOAD(NULL), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=file");
}

Test(config, precedence_file_env_flags)
{
	const char *path = write_file("pg=dbname=file\n"
				      "kafka=file:1\n"
				      "registry=file:2\n"
				      "connect=file:3\n");

	setenv("SAMSA_KAFKA", "env:11", 1);
	setenv("SAMSA_REGISTRY", "env:12", 1);
	cr_assert_eq(LOAD("--config", path, "--registry", "flag:22"), 0, "%s",
		     err);
	cr_assert_str_eq(cfg.pg, "dbname=file"); /* file only */
	cr_assert_str_eq(cfg.kafka.host, "env"); /* env over file */
	cr_assert_eq(cfg.kafka.port, 11);
	cr_assert_str_eq(cfg.registry.host, "flag"); /* flag over env */
	cr_assert_eq(cfg.registry.port, 22);
	cr_assert_str_eq(cfg.connect.host, "file");
	cr_assert_eq(cfg.connect.port, 3);
}

/* The --config flag beats SAMSA_CONFIG. */
Test(config, config_flag_beats_env)
{
	const char *path = write_file("pg=dbname=flagfile\n");

	setenv("SAMSA_CONFIG", "/nonexistent/samsa.conf", 1);
	cr_assert_eq(LOAD("--config", path), 0, "%s", err);
	cr_assert_str_eq(cfg.pg, "dbname=flagfile");
}

Test(config, file_unknown_key)
{
	const char *path = write_file("pg=x\n\nno.such.key=1\n");

	assert_error(LOAD("--config", path), "no.such.key");
	cr_assert(strstr(err, ":3:"), "line number: %s", err);
}

Test(config, file_bad_values)
{
	const char *path = write_file("num.partitions=lots\n");

	assert_error(LOAD("--config", path), "num.partitions");
	cr_assert(strstr(err, ":1:"), "line number: %s", err);
	unlink(tmpfile_path);
	path = write_file("pg=x\nkafka=nope\n");
	assert_error(LOAD("--config", path), "nope");
	cr_assert(strstr(err, ":2:"), "line number: %s", err);
	unlink(tmpfile_path);
	path = write_file("pg=x\njust a line\n");
	assert_error(LOAD("--config", path), "name=value");
}

Test(config, file_missing)
{
	assert_error(LOAD("--pg", "x", "--config", "/nonexistent/samsa.conf"),
		     "/nonexistent/samsa.conf");
}

/* --- errors -------------------------------------------------------------- */

Test(config, unknown_flag)
{
	assert_error(LOAD("--pg", "x", "--nope", "1"), "--nope");
	assert_error(LOAD("--pg", "x", "--nope=1"), "--nope");
	assert_error(LOAD("--pg", "x", "stray"), "stray");
	assert_error(LOAD("--pg", "x", "-p", "1"), "-p");
	assert_error(LOAD("--pg=x", "--"), "unknown option");
}

/* A very long unknown flag: its name is cut, the message stays one line. */
Test(config, long_unknown_flag)
{
	char flag[300];

	memset(flag, 'z', sizeof(flag) - 1);
	flag[0] = flag[1] = '-';
	flag[sizeof(flag) - 1] = '\0';
	assert_error(LOAD("--pg", "x", flag), "unknown option");
}

Test(config, missing_value)
{
	assert_error(LOAD("--pg"), "--pg needs a value");
	assert_error(LOAD("--pg", "x", "--kafka"), "--kafka needs a value");
	assert_error(LOAD("--pg", "x", "--config"), "--config needs a value");
}

Test(config, bad_hostport)
{
	static const char *const bad[] = {
		"nocolon", ":9092",	 "host:",      "host:abc", "host:0",
		"host:-1", "host:65536", "host:9092x", "",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_error(LOAD("--pg", "x", "--kafka", bad[i]), "HOST:PORT");
	assert_error(LOAD("--pg", "x", "--advertise=h:99999"), "--advertise");
	assert_error(LOAD("--pg", "x", "--registry", "r"), "--registry");
	assert_error(LOAD("--pg", "x", "--connect", "c:"), "--connect");
}

Test(config, host_too_long)
{
	char hp[300];

	memset(hp, 'h', 280);
	snprintf(hp + 280, sizeof(hp) - 280, ":1");
	assert_error(LOAD("--pg", "x", "--kafka", hp), "HOST:PORT");
}

Test(config, bad_broker_id)
{
	assert_error(LOAD("--pg", "x", "--broker-id", "-1"), "--broker-id");
	assert_error(LOAD("--pg", "x", "--broker-id", "one"), "--broker-id");
	assert_error(LOAD("--pg", "x", "--broker-id", ""), "--broker-id");
	assert_error(LOAD("--pg", "x", "--broker-id", "2147483648"),
		     "--broker-id");
	cr_assert_eq(LOAD("--pg", "x", "--broker-id", "2147483647"), 0);
	cr_assert_eq(cfg.broker_id, 2147483647);
}

Test(config, missing_pg)
{
	assert_error(LOAD(NULL), "--pg");
	assert_error(LOAD("--kafka", "h:1"), "SAMSA_PG");
	assert_error(LOAD("--pg="), "--pg");
}

/* --- help and version ------------------------------------------------------
 */

Test(config, help, .init = cr_redirect_stdout)
{
	cr_assert_eq(LOAD("--help"), 1);
	cr_assert_eq(LOAD("-h"), 1);
	/* Answered even next to a bad flag, and without --pg. */
	cr_assert_eq(LOAD("--nope", "--help"), 1);
	fflush(stdout);
	cr_assert_stdout_neq_str("");
}

Test(config, version, .init = cr_redirect_stdout)
{
	cr_assert_eq(LOAD("--version"), 1);
	fflush(stdout);
	cr_assert_stdout_eq_str("samsa " SAMSA_VERSION "\n");
}
