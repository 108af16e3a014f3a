/*
 * topic_config: the topic configs samsa knows, their broker-level defaults,
 * and validation of values.  One sorted table drives DescribeConfigs
 * (complete, with defaults), validation of CreateTopics/AlterConfigs, and
 * the typed view the log uses to enforce retention and size limits.
 */
#ifndef SAMSA_TOPIC_CONFIG_H
#define SAMSA_TOPIC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* DescribeConfigs v3+ ConfigType numbers. */
enum tc_type {
	TC_UNKNOWN = 0,
	TC_BOOLEAN = 1,
	TC_STRING = 2,
	TC_INT = 3,
	TC_SHORT = 4,
	TC_LONG = 5,
	TC_DOUBLE = 6,
	TC_LIST = 7,
	TC_CLASS = 8,
	TC_PASSWORD = 9,
};

/* DescribeConfigs ConfigSource numbers. */
enum tc_source {
	TC_SRC_DYNAMIC_TOPIC = 1,
	TC_SRC_STATIC_BROKER = 4,
	TC_SRC_DEFAULT = 5,
};

struct tc_def {
	const char *name;   /* topic config name, e.g. "retention.ms" */
	const char *broker; /* broker config supplying its default, or NULL */
	const char *def;    /* default value as text */
	uint8_t type;	    /* enum tc_type, as DescribeConfigs v3+ reports */
	const char *doc;
};

/* The known topic configs, sorted by name; *n receives the count. */
const struct tc_def *tc_defs(size_t *n);
/* The definition of name, or NULL for a config Kafka would not know. */
const struct tc_def *tc_find(const char *name, size_t len);

/*
 * Checks value for config def: numbers parse and are in range, enumerations
 * (cleanup.policy, message.timestamp.type, compression.type ...) are one of
 * their values.  Returns 0, or -1 with a Kafka-style message in err.
 */
int tc_validate(const struct tc_def *def, const char *value, char *err,
		size_t errlen);

/*
 * Broker configs: a fixed sorted table of names with built-in defaults,
 * overridable once at start-up (config file, command line).
 */
struct bc_def {
	const char *name;
	const char *def; /* built-in default; NULL = null */
	uint8_t type;
	bool read_only;
	const char *doc;
};

const struct bc_def *bc_defs(size_t *n);
/* Sets a broker config at start-up; -1 with a message for an unknown name
 * or a bad value.  The value is copied. */
int bc_set(const char *name, const char *value, char *err, size_t errlen);
/* The current value (NULL when null or unknown); *is_default when not set. */
const char *bc_get(const char *name, bool *is_default);
/* Integer view of a broker config; def when unset or unparsable. */
int64_t bc_get_int(const char *name, int64_t def);

/*
 * A topic config's value when the topic does not override it, with the
 * DescribeConfigs source it comes from (TC_SRC_STATIC_BROKER when the broker
 * config was set, else TC_SRC_DEFAULT).
 */
const char *tc_default(const struct tc_def *def, int *source);

/*
 * The values of a topic's configs the log needs, resolved against the
 * defaults (-1 means "no limit" as in Kafka).
 */
struct tc_values {
	int64_t retention_ms;
	int64_t retention_bytes;
	int32_t max_message_bytes;
	bool log_append_time; /* message.timestamp.type=LogAppendTime */
	/* message.timestamp.{before,after}.max.ms: how far a CreateTime
	 * record's timestamp may be behind or ahead of the broker's clock */
	int64_t timestamp_before_max_ms, timestamp_after_max_ms;
	bool compact;	    /* cleanup.policy contains compact */
	bool delete_policy; /* cleanup.policy contains delete */
	int64_t min_compaction_lag_ms;
	int64_t delete_retention_ms;
	int64_t max_compaction_lag_ms;
	double min_cleanable_dirty_ratio;
	int64_t segment_ms;
	int8_t codec; /* compression.type as an enum kc_codec; -1: producer */
	int32_t gzip_level, lz4_level, zstd_level; /* compression.*.level */
};

/* A topic's own settings: name/value pairs (borrowed). */
struct tc_override {
	const char *name;
	const char *value;
};

/* Resolves the typed values from a topic's overrides and the defaults. */
void tc_resolve(const struct tc_override *ov, size_t n, struct tc_values *out);

/* The topic's compression.<codec>.level for codec (enum kc_codec);
 * KC_LEVEL_DEFAULT for a codec without levels. */
int tc_level(const struct tc_values *v, int codec);

#endif
