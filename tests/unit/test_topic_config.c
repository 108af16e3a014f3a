/*
 * topic_config: the two sorted tables, lookups, validation, broker
 * overrides, defaults and the typed view.  bc_set changes process-global
 * state: Criterion runs every test in a process of its own, so a test that
 * sets a broker config does not leak it into another.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/compress.h"
#include "storage/topic_config.h"
#include "tests/support/leak_check.h"

TestSuite(topic_config, .fini = leak_check);

static const struct tc_def *find(const char *name)
{
	return tc_find(name, strlen(name));
}

static bool valid(const char *name, const char *value)
{
	const struct tc_def *d = find(name);
	char err[256] = "";

	cr_assert_not_null(d, "%s is not known", name);
	int rc = tc_validate(d, value, err, sizeof(err));
	if (rc < 0) {
		cr_assert(strstr(err, name), "message names the config: %s",
			  err);
		cr_assert_null(strchr(err, '\n'));
	} else {
		cr_assert_eq(rc, 0);
	}
	return rc == 0;
}

/* --- tables ------------------------------------------------------------ */

Test(topic_config, topic_table_sorted_and_complete)
{
	size_t n;
	const struct tc_def *d = tc_defs(&n);

	cr_assert_gt(n, 20);
	for (size_t i = 0; i < n; i++) {
		cr_assert_not_null(d[i].name);
		cr_assert_not_null(d[i].def, "%s has no default", d[i].name);
		cr_assert_not_null(d[i].doc);
		cr_assert(d[i].type >= TC_BOOLEAN && d[i].type <= TC_PASSWORD,
			  "%s type %d", d[i].name, d[i].type);
		if (i > 0)
			cr_assert_lt(strcmp(d[i - 1].name, d[i].name), 0,
				     "%s before %s", d[i - 1].name, d[i].name);
	}
}

Test(topic_config, broker_table_sorted)
{
	size_t n;
	const struct bc_def *d = bc_defs(&n);

	cr_assert_gt(n, 20);
	for (size_t i = 1; i < n; i++)
		cr_assert_lt(strcmp(d[i - 1].name, d[i].name), 0,
			     "%s before %s", d[i - 1].name, d[i].name);
}

/* Every topic config found by its own name, through the binary search. */
Test(topic_config, every_topic_config_found)
{
	size_t n;
	const struct tc_def *d = tc_defs(&n);

	for (size_t i = 0; i < n; i++)
		cr_assert_eq(find(d[i].name), &d[i], "%s", d[i].name);
}

/* Every broker config found through the binary search too. */
Test(topic_config, every_broker_config_found)
{
	size_t n;
	const struct bc_def *d = bc_defs(&n);
	bool is_default = false;

	for (size_t i = 0; i < n; i++) {
		const char *v = bc_get(d[i].name, &is_default);
		cr_assert(is_default, "%s", d[i].name);
		if (d[i].def)
			cr_assert_str_eq(v, d[i].def, "%s", d[i].name);
		else
			cr_assert_null(v, "%s", d[i].name);
	}
}

/* The broker config named as a topic config's source exists, and its
 * built-in default agrees with the topic config's default. */
Test(topic_config, broker_sources_exist_and_agree)
{
	size_t n;
	const struct tc_def *d = tc_defs(&n);

	for (size_t i = 0; i < n; i++) {
		if (!d[i].broker)
			continue;
		bool is_default = false;
		const char *v = bc_get(d[i].broker, &is_default);
		cr_assert_not_null(v, "%s: broker config %s unknown", d[i].name,
				   d[i].broker);
		cr_assert_str_eq(v, d[i].def, "%s vs %s", d[i].name,
				 d[i].broker);
	}
}

/* Defaults of both tables pass their own validation. */
Test(topic_config, defaults_are_valid)
{
	size_t n;
	const struct tc_def *d = tc_defs(&n);
	char err[256];

	for (size_t i = 0; i < n; i++) {
		if (d[i].type == TC_LIST && d[i].def[0] == '\0' &&
		    strcmp(d[i].name, "cleanup.policy") != 0)
			continue; /* empty throttled-replica lists */
		cr_assert_eq(tc_validate(&d[i], d[i].def, err, sizeof(err)), 0,
			     "%s=%s: %s", d[i].name, d[i].def, err);
	}
}

/* --- tc_find ----------------------------------------------------------- */

Test(topic_config, find_hits)
{
	const struct tc_def *d = find("retention.ms");

	cr_assert_not_null(d);
	cr_assert_str_eq(d->name, "retention.ms");
	cr_assert_str_eq(d->def, "604800000");
	cr_assert_eq(d->type, TC_LONG);
	cr_assert_str_eq(d->broker, "log.retention.ms");

	cr_assert_not_null(find("cleanup.policy"));		    /* first */
	cr_assert_not_null(find("unclean.leader.election.enable")); /* last */
	cr_assert_eq(find("max.message.bytes")->type, TC_INT);
	cr_assert_eq(find("preallocate")->type, TC_BOOLEAN);
	cr_assert_null(find("remote.storage.enable")->broker);
}

/* The name is (ptr, len), not NUL-terminated: a longer buffer matches on
 * its first len bytes only. */
Test(topic_config, find_uses_length)
{
	const char buf[] = "retention.msXYZ";
	const struct tc_def *d = tc_find(buf, 12);

	cr_assert_not_null(d);
	cr_assert_str_eq(d->name, "retention.ms");
	cr_assert_null(tc_find(buf, 13));
	cr_assert_str_eq(tc_find("segment.bytes.", 13)->name, "segment.bytes");
}

Test(topic_config, find_misses)
{
	cr_assert_null(find(""));
	cr_assert_null(tc_find("retention.ms", 0));
	cr_assert_null(find("retention")); /* prefix */
	cr_assert_null(find("retention.m"));
	cr_assert_null(find("retention.mss")); /* longer */
	cr_assert_null(find("retention.ms.x"));
	cr_assert_null(find("Retention.ms")); /* case */
	cr_assert_null(find("a"));	      /* before the first */
	cr_assert_null(find("zzz"));	      /* after the last */
	cr_assert_null(find("cleanup"));      /* prefix of the first */
	cr_assert_null(find("unclean.leader.election.enablex"));
	cr_assert_null(find("log.retention.ms")); /* broker, not topic */
	cr_assert_null(find("segment.byte"));
}

/*
 * Names come from the wire as (ptr, len) and may hold a NUL.  A name that
 * equals a config up to an embedded NUL must not match it, and must not make
 * the lookup read past the end of the table's name.
 */
Test(topic_config, find_embedded_nul)
{
	static const char name[] = "preallocate\0\0\0\0\0\0\0\0";

	cr_assert_null(tc_find(name, 12), "preallocate\\0 matched");
	cr_assert_null(tc_find(name, sizeof(name) - 1));
}

/* --- tc_validate --------------------------------------------------------- */

Test(topic_config, validate_cleanup_policy)
{
	cr_assert(valid("cleanup.policy", "delete"));
	cr_assert(valid("cleanup.policy", "compact"));
	cr_assert(valid("cleanup.policy", "compact,delete"));
	cr_assert(valid("cleanup.policy", "delete,compact"));
	cr_assert(valid("cleanup.policy", "delete, compact"));
	cr_assert(valid("cleanup.policy", " compact , delete "));
	cr_assert_not(valid("cleanup.policy", "foo"));
	cr_assert_not(valid("cleanup.policy", ""));
	cr_assert_not(valid("cleanup.policy", "delete,foo"));
	cr_assert_not(valid("cleanup.policy", "compact,,delete"));
	cr_assert_not(valid("cleanup.policy", "Delete"));
	cr_assert_not(valid("cleanup.policy", "deletecompact"));
	cr_assert_not(valid("cleanup.policy", "delet"));
}

Test(topic_config, validate_timestamp_type)
{
	cr_assert(valid("message.timestamp.type", "CreateTime"));
	cr_assert(valid("message.timestamp.type", "LogAppendTime"));
	cr_assert_not(valid("message.timestamp.type", "createtime"));
	cr_assert_not(valid("message.timestamp.type", ""));
	cr_assert_not(
		valid("message.timestamp.type", "CreateTime,LogAppendTime"));
	cr_assert_not(valid("message.timestamp.type", "Now"));
}

Test(topic_config, validate_compression_type)
{
	static const char *const ok[] = {"uncompressed", "zstd", "lz4",
					 "snappy",	 "gzip", "producer"};

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		cr_assert(valid("compression.type", ok[i]), "%s", ok[i]);
	cr_assert_not(valid("compression.type", "none"));
	cr_assert_not(valid("compression.type", "gzip,lz4"));
	cr_assert_not(valid("compression.type", ""));
	cr_assert_not(valid("compression.type", "ZSTD"));
}

Test(topic_config, validate_ints)
{
	cr_assert(valid("max.message.bytes", "0"));
	cr_assert(valid("max.message.bytes", "1048588"));
	cr_assert(valid("max.message.bytes", "2147483647"));
	cr_assert_not(valid("max.message.bytes", "2147483648"));
	cr_assert_not(valid("max.message.bytes", "-1"));
	cr_assert_not(valid("max.message.bytes", ""));
	cr_assert_not(valid("max.message.bytes", "12abc"));
	cr_assert_not(valid("max.message.bytes", "1.5"));
	cr_assert(valid("segment.bytes", "14"));
	cr_assert_not(valid("segment.bytes", "13"));
	cr_assert(valid("min.insync.replicas", "1"));
	cr_assert_not(valid("min.insync.replicas", "0"));
	cr_assert(valid("compression.gzip.level", "-1"));
	cr_assert_not(valid("compression.gzip.level", "0"));
	cr_assert(valid("compression.lz4.level", "17"));
	cr_assert_not(valid("compression.lz4.level", "18"));
	cr_assert(valid("compression.zstd.level", "-7"));
	cr_assert_not(valid("compression.zstd.level", "23"));
	cr_assert(valid("index.interval.bytes", "-2147483648"));
	cr_assert_not(valid("index.interval.bytes", "-2147483649"));
}

Test(topic_config, validate_longs)
{
	cr_assert(valid("retention.ms", "-1"));
	cr_assert(valid("retention.ms", "0"));
	cr_assert(valid("retention.ms", "9223372036854775807"));
	cr_assert_not(valid("retention.ms", "9223372036854775808"));
	cr_assert_not(valid("retention.ms", "-3"));
	cr_assert_not(valid("retention.ms", "1e3"));
	cr_assert_not(valid("retention.ms", ""));
	cr_assert(valid("retention.bytes", "-1"));
	cr_assert(valid("local.retention.bytes", "-2"));
	cr_assert_not(valid("retention.bytes", "-5"));
	cr_assert(valid("delete.retention.ms", "0"));
	cr_assert(valid("min.compaction.lag.ms", "0"));
	cr_assert_not(valid("min.compaction.lag.ms", "-1"));
	cr_assert_not(valid("max.compaction.lag.ms", "-1"));
	cr_assert(valid("segment.ms", "-100")); /* no bound */
}

Test(topic_config, validate_booleans_and_doubles)
{
	cr_assert(valid("preallocate", "true"));
	cr_assert(valid("preallocate", "false"));
	cr_assert_not(valid("preallocate", "TRUE"));
	cr_assert_not(valid("preallocate", "1"));
	cr_assert_not(valid("preallocate", ""));
	cr_assert_not(valid("unclean.leader.election.enable", "yes"));
	cr_assert(valid("min.cleanable.dirty.ratio", "0"));
	cr_assert(valid("min.cleanable.dirty.ratio", "0.25"));
	cr_assert(valid("min.cleanable.dirty.ratio", "1"));
	cr_assert_not(valid("min.cleanable.dirty.ratio", "1.5"));
	cr_assert_not(valid("min.cleanable.dirty.ratio", "-0.1"));
	cr_assert_not(valid("min.cleanable.dirty.ratio", ""));
	cr_assert_not(valid("min.cleanable.dirty.ratio", "half"));
}

Test(topic_config, validate_message_is_kafka_like)
{
	char err[256] = "";

	cr_assert_eq(tc_validate(find("retention.ms"), "abc", err, sizeof(err)),
		     -1);
	cr_assert_str_eq(err,
			 "Invalid value abc for configuration retention.ms");
}

/* --- broker configs ------------------------------------------------------ */

Test(topic_config, bc_set_unknown)
{
	char err[256] = "";

	cr_assert_eq(bc_set("no.such.config", "1", err, sizeof(err)), -1);
	cr_assert(strstr(err, "no.such.config"), "%s", err);
	cr_assert_eq(bc_set("retention.ms", "1", err, sizeof(err)), -1,
		     "a topic config is not a broker config");
}

Test(topic_config, bc_set_bad_value)
{
	char err[256] = "";
	bool is_default = false;

	cr_assert_eq(bc_set("num.partitions", "many", err, sizeof(err)), -1);
	cr_assert(strstr(err, "num.partitions"), "%s", err);
	cr_assert_eq(bc_set("log.cleanup.policy", "foo", err, sizeof(err)), -1);
	cr_assert_eq(
		bc_set("auto.create.topics.enable", "yes", err, sizeof(err)),
		-1);
	cr_assert_eq(
		bc_set("log.message.timestamp.type", "x", err, sizeof(err)),
		-1);
	cr_assert_eq(bc_set("message.max.bytes", "-1", err, sizeof(err)), -1);
	cr_assert_eq(bc_set("log.retention.ms", "-3", err, sizeof(err)), -1);
	cr_assert_eq(bc_set("compression.type", "brotli", err, sizeof(err)),
		     -1);
	/* A refused value leaves the default in place. */
	cr_assert_str_eq(bc_get("num.partitions", &is_default), "1");
	cr_assert(is_default);
}

Test(topic_config, bc_get_and_is_default)
{
	char err[256] = "";
	bool is_default = false;

	cr_assert_str_eq(bc_get("num.partitions", &is_default), "1");
	cr_assert(is_default);
	cr_assert_eq(bc_get_int("num.partitions", 99), 1);

	cr_assert_eq(bc_set("num.partitions", "6", err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(bc_get("num.partitions", &is_default), "6");
	cr_assert_not(is_default);
	cr_assert_eq(bc_get_int("num.partitions", 99), 6);

	/* Set again: replaces (the old copy is freed: leak check). */
	cr_assert_eq(bc_set("num.partitions", "8", err, sizeof(err)), 0);
	cr_assert_str_eq(bc_get("num.partitions", NULL), "8");

	/* The value is copied. */
	char v[8] = "12";
	cr_assert_eq(bc_set("num.partitions", v, err, sizeof(err)), 0);
	v[0] = '9';
	cr_assert_str_eq(bc_get("num.partitions", NULL), "12");

	/* Null defaults and unknown names. */
	cr_assert_null(bc_get("listeners", &is_default));
	cr_assert(is_default);
	cr_assert_null(bc_get("no.such", &is_default));
	cr_assert(is_default);
	cr_assert_eq(bc_get_int("no.such", 42), 42);
	cr_assert_eq(bc_get_int("listeners", 43), 43);
	cr_assert_eq(bc_get_int("log.cleanup.policy", 44), 44);
	cr_assert_eq(bc_get_int("log.retention.ms", 0), 604800000);
}

/* --- tc_default ---------------------------------------------------------- */

Test(topic_config, default_source_default)
{
	int src = 0;
	const char *v = tc_default(find("retention.ms"), &src);

	cr_assert_str_eq(v, "604800000");
	cr_assert_eq(src, TC_SRC_DEFAULT);
	v = tc_default(find("remote.storage.enable"), &src); /* no broker */
	cr_assert_str_eq(v, "false");
	cr_assert_eq(src, TC_SRC_DEFAULT);
}

Test(topic_config, default_source_static_broker)
{
	char err[256] = "";
	int src = 0;

	cr_assert_eq(bc_set("log.retention.ms", "1000", err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(tc_default(find("retention.ms"), &src), "1000");
	cr_assert_eq(src, TC_SRC_STATIC_BROKER);
	/* Another config keeps its built-in default. */
	cr_assert_str_eq(tc_default(find("retention.bytes"), &src), "-1");
	cr_assert_eq(src, TC_SRC_DEFAULT);

	cr_assert_eq(bc_set("message.max.bytes", "2000", err, sizeof(err)), 0);
	cr_assert_str_eq(tc_default(find("max.message.bytes"), &src), "2000");
	cr_assert_eq(src, TC_SRC_STATIC_BROKER);
}

/* --- tc_resolve ---------------------------------------------------------- */

Test(topic_config, resolve_defaults)
{
	struct tc_values v;

	memset(&v, 0xa5, sizeof(v));
	tc_resolve(NULL, 0, &v);
	cr_assert_eq(v.retention_ms, 604800000);
	cr_assert_eq(v.retention_bytes, -1);
	cr_assert_eq(v.max_message_bytes, 1048588);
	cr_assert_not(v.log_append_time);
	cr_assert_not(v.compact);
	cr_assert(v.delete_policy);
	cr_assert_eq(v.min_compaction_lag_ms, 0);
	cr_assert_eq(v.delete_retention_ms, 86400000);
	cr_assert_eq(v.codec, -1); /* producer */
	cr_assert_eq(tc_level(&v, KC_LZ4), 9);
	cr_assert_eq(tc_level(&v, KC_ZSTD), 3);
	cr_assert_eq(tc_level(&v, KC_SNAPPY), KC_LEVEL_DEFAULT);
}

Test(topic_config, resolve_compression)
{
	static const char *const names[] = {"uncompressed", "gzip", "snappy",
					    "lz4", "zstd"};
	struct tc_values v;

	for (int c = KC_NONE; c <= KC_ZSTD; c++) {
		const struct tc_override ov[] = {
			{"compression.type", names[c]},
			{"compression.gzip.level", "4"},
			{"compression.zstd.level", "-2"}};

		tc_resolve(ov, 3, &v);
		cr_assert_eq(v.codec, c, "%s", names[c]);
		cr_assert_eq(tc_level(&v, KC_GZIP), 4);
		cr_assert_eq(tc_level(&v, KC_ZSTD), -2);
	}
}

Test(topic_config, resolve_overrides)
{
	const struct tc_override ov[] = {
		{"retention.ms", "1234"},
		{"retention.bytes", "5678"},
		{"max.message.bytes", "100"},
		{"message.timestamp.type", "LogAppendTime"},
		{"cleanup.policy", "compact"},
		{"min.compaction.lag.ms", "10"},
		{"delete.retention.ms", "20"},
	};
	struct tc_values v;

	tc_resolve(ov, sizeof(ov) / sizeof(ov[0]), &v);
	cr_assert_eq(v.retention_ms, 1234);
	cr_assert_eq(v.retention_bytes, 5678);
	cr_assert_eq(v.max_message_bytes, 100);
	cr_assert(v.log_append_time);
	cr_assert(v.compact);
	cr_assert_not(v.delete_policy);
	cr_assert_eq(v.min_compaction_lag_ms, 10);
	cr_assert_eq(v.delete_retention_ms, 20);
}

Test(topic_config, resolve_both_policies)
{
	const struct tc_override a[] = {{"cleanup.policy", "delete, compact"}};
	const struct tc_override b[] = {{"cleanup.policy", "compact,delete"}};
	struct tc_values v;

	tc_resolve(a, 1, &v);
	cr_assert(v.compact);
	cr_assert(v.delete_policy);
	tc_resolve(b, 1, &v);
	cr_assert(v.compact);
	cr_assert(v.delete_policy);
}

Test(topic_config, resolve_uses_broker_defaults)
{
	char err[256] = "";
	struct tc_values v;
	const struct tc_override ov[] = {{"retention.ms", "-1"}};

	cr_assert_eq(bc_set("log.retention.ms", "3600000", err, sizeof(err)),
		     0);
	cr_assert_eq(bc_set("log.cleanup.policy", "compact", err, sizeof(err)),
		     0);
	cr_assert_eq(bc_set("log.message.timestamp.type", "LogAppendTime", err,
			    sizeof(err)),
		     0);
	tc_resolve(NULL, 0, &v);
	cr_assert_eq(v.retention_ms, 3600000);
	cr_assert(v.compact);
	cr_assert_not(v.delete_policy);
	cr_assert(v.log_append_time);
	/* The topic's own value wins over the broker's. */
	tc_resolve(ov, 1, &v);
	cr_assert_eq(v.retention_ms, -1);
}
