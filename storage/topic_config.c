/*
 * topic_config: Kafka 4.x topic configs and the broker configs behind their
 * defaults.  Both tables are sorted by name (checked by the unit test) so a
 * lookup is a binary search.
 */
#include "storage/topic_config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/compress.h"

#define LONG_MAX_S "9223372036854775807"

static const struct tc_def topic_defs[] = {
	{"cleanup.policy", "log.cleanup.policy", "delete", TC_LIST,
	 "delete, compact or both"},
	{"compression.gzip.level", "compression.gzip.level", "-1", TC_INT, ""},
	{"compression.lz4.level", "compression.lz4.level", "9", TC_INT, ""},
	{"compression.type", "compression.type", "producer", TC_STRING,
	 "uncompressed, zstd, lz4, snappy, gzip or producer"},
	{"compression.zstd.level", "compression.zstd.level", "3", TC_INT, ""},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000",
	 TC_LONG, "how long tombstones are kept on a compacted topic"},
	{"file.delete.delay.ms", "log.segment.delete.delay.ms", "60000",
	 TC_LONG, ""},
	{"flush.messages", "log.flush.interval.messages", LONG_MAX_S, TC_LONG,
	 ""},
	{"flush.ms", "log.flush.interval.ms", LONG_MAX_S, TC_LONG, ""},
	{"follower.replication.throttled.replicas",
	 "follower.replication.throttled.replicas", "", TC_LIST, ""},
	{"index.interval.bytes", "log.index.interval.bytes", "4096", TC_INT,
	 ""},
	{"leader.replication.throttled.replicas",
	 "leader.replication.throttled.replicas", "", TC_LIST, ""},
	{"local.retention.bytes", "log.local.retention.bytes", "-2", TC_LONG,
	 ""},
	{"local.retention.ms", "log.local.retention.ms", "-2", TC_LONG, ""},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms",
	 LONG_MAX_S, TC_LONG, ""},
	{"max.message.bytes", "message.max.bytes", "1048588", TC_INT,
	 "largest record batch size allowed"},
	{"message.timestamp.after.max.ms", "log.message.timestamp.after.max.ms",
	 "3600000", TC_LONG, ""},
	{"message.timestamp.before.max.ms",
	 "log.message.timestamp.before.max.ms", LONG_MAX_S, TC_LONG, ""},
	{"message.timestamp.type", "log.message.timestamp.type", "CreateTime",
	 TC_STRING, "CreateTime or LogAppendTime"},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5",
	 TC_DOUBLE, ""},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0",
	 TC_LONG, ""},
	{"min.insync.replicas", "min.insync.replicas", "1", TC_INT, ""},
	{"preallocate", "log.preallocate", "false", TC_BOOLEAN, ""},
	{"remote.log.copy.disable", NULL, "false", TC_BOOLEAN, ""},
	{"remote.log.delete.on.disable", NULL, "false", TC_BOOLEAN, ""},
	{"remote.storage.enable", NULL, "false", TC_BOOLEAN, ""},
	{"retention.bytes", "log.retention.bytes", "-1", TC_LONG,
	 "bytes kept per partition before old batches are deleted"},
	{"retention.ms", "log.retention.ms", "604800000", TC_LONG,
	 "how long batches are kept"},
	{"segment.bytes", "log.segment.bytes", "1073741824", TC_INT, ""},
	{"segment.index.bytes", "log.index.size.max.bytes", "10485760", TC_INT,
	 ""},
	{"segment.jitter.ms", "log.roll.jitter.ms", "0", TC_LONG, ""},
	{"segment.ms", "log.roll.ms", "604800000", TC_LONG, ""},
	{"unclean.leader.election.enable", "unclean.leader.election.enable",
	 "false", TC_BOOLEAN, ""},
};

#define NTOPIC (sizeof(topic_defs) / sizeof(topic_defs[0]))

static const struct bc_def broker_defs[] = {
	{"advertised.listeners", NULL, TC_STRING, true, ""},
	{"authorizer.class.name", "", TC_STRING, true, ""},
	{"auto.create.topics.enable", "true", TC_BOOLEAN, false, ""},
	{"broker.id", "0", TC_INT, true, ""},
	{"compression.gzip.level", "-1", TC_INT, false, ""},
	{"compression.lz4.level", "9", TC_INT, false, ""},
	{"compression.type", "producer", TC_STRING, false, ""},
	{"compression.zstd.level", "3", TC_INT, false, ""},
	{"connections.max.idle.ms", "600000", TC_LONG, true,
	 "a client connection that sends nothing for this long is closed"},
	{"default.replication.factor", "1", TC_INT, true, ""},
	{"delete.topic.enable", "true", TC_BOOLEAN, true, ""},
	{"fetch.max.bytes", "57671680", TC_INT, true,
	 "the most one fetch answer holds"},
	{"follower.replication.throttled.replicas", "", TC_LIST, true, ""},
	{"group.consumer.heartbeat.interval.ms", "5000", TC_INT, false,
	 "how often members of consumer-protocol groups heartbeat"},
	{"group.consumer.session.timeout.ms", "45000", TC_INT, false,
	 "how long a consumer-protocol member lives without a heartbeat"},
	{"group.initial.rebalance.delay.ms", "3000", TC_INT, false, ""},
	{"group.max.session.timeout.ms", "1800000", TC_INT, false, ""},
	{"group.min.session.timeout.ms", "6000", TC_INT, false, ""},
	{"leader.replication.throttled.replicas", "", TC_LIST, true, ""},
	{"listeners", NULL, TC_STRING, true, ""},
	{"log.cleaner.delete.retention.ms", "86400000", TC_LONG, false, ""},
	{"log.cleaner.max.compaction.lag.ms", LONG_MAX_S, TC_LONG, false, ""},
	{"log.cleaner.min.cleanable.ratio", "0.5", TC_DOUBLE, false, ""},
	{"log.cleaner.min.compaction.lag.ms", "0", TC_LONG, false, ""},
	{"log.cleanup.policy", "delete", TC_LIST, false, ""},
	{"log.flush.interval.messages", LONG_MAX_S, TC_LONG, false, ""},
	{"log.flush.interval.ms", LONG_MAX_S, TC_LONG, false, ""},
	{"log.index.interval.bytes", "4096", TC_INT, false, ""},
	{"log.index.size.max.bytes", "10485760", TC_INT, false, ""},
	{"log.local.retention.bytes", "-2", TC_LONG, false, ""},
	{"log.local.retention.ms", "-2", TC_LONG, false, ""},
	{"log.message.timestamp.after.max.ms", "3600000", TC_LONG, false, ""},
	{"log.message.timestamp.before.max.ms", LONG_MAX_S, TC_LONG, false, ""},
	{"log.message.timestamp.type", "CreateTime", TC_STRING, false, ""},
	{"log.preallocate", "false", TC_BOOLEAN, false, ""},
	{"log.retention.bytes", "-1", TC_LONG, false, ""},
	{"log.retention.check.interval.ms", "300000", TC_LONG, true, ""},
	{"log.retention.hours", "168", TC_INT, true, ""},
	{"log.retention.ms", "604800000", TC_LONG, false, ""},
	{"log.roll.jitter.ms", "0", TC_LONG, false, ""},
	{"log.roll.ms", "604800000", TC_LONG, false, ""},
	{"log.segment.bytes", "1073741824", TC_INT, false, ""},
	{"log.segment.delete.delay.ms", "60000", TC_LONG, false, ""},
	{"message.max.bytes", "1048588", TC_INT, false, ""},
	{"min.insync.replicas", "1", TC_INT, false, ""},
	{"node.id", "0", TC_INT, true, ""},
	{"num.partitions", "1", TC_INT, false, ""},
	{"offset.metadata.max.bytes", "4096", TC_INT, true, ""},
	{"offsets.retention.minutes", "10080", TC_INT, true, ""},
	{"offsets.topic.num.partitions", "50", TC_INT, true, ""},
	{"offsets.topic.replication.factor", "1", TC_SHORT, true, ""},
	{"producer.id.expiration.check.interval.ms", "600000", TC_INT, true,
	 ""},
	{"producer.id.expiration.ms", "86400000", TC_INT, false, ""},
	{"socket.request.max.bytes", "104857600", TC_INT, true, ""},
	{"transaction.max.timeout.ms", "900000", TC_INT, true, ""},
	{"transaction.state.log.min.isr", "1", TC_INT, true, ""},
	{"transaction.state.log.replication.factor", "1", TC_SHORT, true, ""},
	{"unclean.leader.election.enable", "false", TC_BOOLEAN, false, ""},
};

#define NBROKER (sizeof(broker_defs) / sizeof(broker_defs[0]))

/* Values set at start-up, parallel to broker_defs; NULL = not set. */
static char *broker_set[NBROKER];

const struct tc_def *tc_defs(size_t *n)
{
	*n = NTOPIC;
	return topic_defs;
}

const struct bc_def *bc_defs(size_t *n)
{
	*n = NBROKER;
	return broker_defs;
}

/* Compares a[0..len) (any bytes, NUL included) with the C string b. */
static int cmp_len(const char *a, size_t len, const char *b)
{
	size_t bl = strlen(b);
	int c = memcmp(a, b, len < bl ? len : bl);
	if (c != 0)
		return c;
	return len < bl ? -1 : len > bl;
}

const struct tc_def *tc_find(const char *name, size_t len)
{
	size_t lo = 0, hi = NTOPIC;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = cmp_len(name, len, topic_defs[mid].name);
		if (c == 0)
			return &topic_defs[mid];
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

static int bc_index(const char *name)
{
	size_t lo = 0, hi = NBROKER;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(name, broker_defs[mid].name);
		if (c == 0)
			return (int)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return -1;
}

static bool parse_i64(const char *s, int64_t *v)
{
	char *end;
	if (*s == '\0')
		return false;
	errno = 0;
	long long x = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*v = x;
	return true;
}

/* Every element of a comma list is one of the allowed words. */
static bool list_of(const char *value, const char *const *allowed)
{
	const char *p = value;
	if (*p == '\0')
		return false;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		while (len > 0 && *p == ' ') {
			p++;
			len--;
		}
		while (len > 0 && p[len - 1] == ' ')
			len--;
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (strlen(*a) == len && strncmp(*a, p, len) == 0)
				ok = true;
		if (!ok)
			return false;
		p = e ? e + 1 : p + strlen(p);
	}
	return true;
}

static int check_value(const char *name, uint8_t type, const char *value,
		       char *err, size_t errlen)
{
	static const char *const policies[] = {"delete", "compact", NULL};
	static const char *const ts_types[] = {"CreateTime", "LogAppendTime",
					       NULL};
	static const char *const codecs[] = {
		"uncompressed", "zstd",	    "lz4", "snappy",
		"gzip",		"producer", NULL};
	int64_t v;

	if (strcmp(name, "cleanup.policy") == 0 ||
	    strcmp(name, "log.cleanup.policy") == 0) {
		if (!list_of(value, policies))
			goto bad;
		return 0;
	}
	if (strstr(name, "timestamp.type")) {
		if (!list_of(value, ts_types) || strchr(value, ','))
			goto bad;
		return 0;
	}
	if (strcmp(name, "compression.type") == 0) {
		if (!list_of(value, codecs) || strchr(value, ','))
			goto bad;
		return 0;
	}
	switch (type) {
	case TC_BOOLEAN:
		if (strcmp(value, "true") != 0 && strcmp(value, "false") != 0)
			goto bad;
		return 0;
	case TC_INT:
	case TC_SHORT:
		if (!parse_i64(value, &v) || v < INT32_MIN || v > INT32_MAX)
			goto bad;
		break;
	case TC_LONG:
		if (!parse_i64(value, &v))
			goto bad;
		break;
	case TC_DOUBLE: {
		char *end;
		double d = strtod(value, &end);
		if (*value == '\0' || *end != '\0' || d < 0 || d > 1)
			goto bad;
		return 0;
	}
	default:
		return 0;
	}
	/* Numbers where Kafka has a lower bound. */
	if ((strstr(name, "retention.ms") || strstr(name, "retention.bytes")) &&
	    v < -2)
		goto bad;
	if ((strcmp(name, "max.message.bytes") == 0 ||
	     strcmp(name, "message.max.bytes") == 0) &&
	    v < 0)
		goto bad;
	if (strcmp(name, "segment.bytes") == 0 && v < 14)
		goto bad;
	if (strcmp(name, "min.insync.replicas") == 0 && v < 1)
		goto bad;
	if (strstr(name, "lag.ms") && v < 0)
		goto bad;
	if ((strcmp(name, "compression.gzip.level") == 0 &&
	     !kc_level_valid(KC_GZIP, v)) ||
	    (strcmp(name, "compression.lz4.level") == 0 &&
	     !kc_level_valid(KC_LZ4, v)) ||
	    (strcmp(name, "compression.zstd.level") == 0 &&
	     !kc_level_valid(KC_ZSTD, v)))
		goto bad;
	/* Kafka: producer.id.expiration.ms at least 1, its check interval
	 * at least 1. */
	if (strncmp(name, "producer.id.expiration.", 23) == 0 && v < 1)
		goto bad;
	return 0;
bad:
	snprintf(err, errlen, "Invalid value %s for configuration %s", value,
		 name);
	return -1;
}

int tc_validate(const struct tc_def *def, const char *value, char *err,
		size_t errlen)
{
	return check_value(def->name, def->type, value, err, errlen);
}

int bc_set(const char *name, const char *value, char *err, size_t errlen)
{
	int i = bc_index(name);
	if (i < 0) {
		snprintf(err, errlen, "unknown broker config %s", name);
		return -1;
	}
	if (check_value(name, broker_defs[i].type, value, err, errlen) < 0)
		return -1;
	char *copy = strdup(value);
	if (!copy) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(broker_set[i]);
	broker_set[i] = copy;
	return 0;
}

const char *bc_get(const char *name, bool *is_default)
{
	int i = bc_index(name);
	if (is_default)
		*is_default = i < 0 || broker_set[i] == NULL;
	if (i < 0)
		return NULL;
	return broker_set[i] ? broker_set[i] : broker_defs[i].def;
}

int64_t bc_get_int(const char *name, int64_t def)
{
	const char *v = bc_get(name, NULL);
	int64_t x;
	return v && parse_i64(v, &x) ? x : def;
}

const char *tc_default(const struct tc_def *def, int *source)
{
	*source = TC_SRC_DEFAULT;
	if (def->broker) {
		int i = bc_index(def->broker);
		if (i >= 0 && broker_set[i]) {
			*source = TC_SRC_STATIC_BROKER;
			return broker_set[i];
		}
	}
	return def->def;
}

static const char *lookup(const struct tc_override *ov, size_t n,
			  const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ov[i].name, name) == 0)
			return ov[i].value;
	int src;
	const struct tc_def *d = tc_find(name, strlen(name));
	return d ? tc_default(d, &src) : "";
}

static int64_t lookup_i64(const struct tc_override *ov, size_t n,
			  const char *name)
{
	int64_t v = 0;
	parse_i64(lookup(ov, n, name), &v);
	return v;
}

void tc_resolve(const struct tc_override *ov, size_t n, struct tc_values *out)
{
	const char *policy = lookup(ov, n, "cleanup.policy");
	out->retention_ms = lookup_i64(ov, n, "retention.ms");
	out->retention_bytes = lookup_i64(ov, n, "retention.bytes");
	out->max_message_bytes =
		(int32_t)lookup_i64(ov, n, "max.message.bytes");
	out->log_append_time = strcmp(lookup(ov, n, "message.timestamp.type"),
				      "LogAppendTime") == 0;
	out->timestamp_before_max_ms =
		lookup_i64(ov, n, "message.timestamp.before.max.ms");
	out->timestamp_after_max_ms =
		lookup_i64(ov, n, "message.timestamp.after.max.ms");
	out->compact = strstr(policy, "compact") != NULL;
	out->delete_policy = strstr(policy, "delete") != NULL;
	out->min_compaction_lag_ms = lookup_i64(ov, n, "min.compaction.lag.ms");
	out->delete_retention_ms = lookup_i64(ov, n, "delete.retention.ms");
	out->max_compaction_lag_ms = lookup_i64(ov, n, "max.compaction.lag.ms");
	out->min_cleanable_dirty_ratio =
		strtod(lookup(ov, n, "min.cleanable.dirty.ratio"), NULL);
	out->segment_ms = lookup_i64(ov, n, "segment.ms");
	/* Kafka's topic names for the codecs; "producer" keeps the batch's. */
	static const char *const codecs[] = {"uncompressed", "gzip", "snappy",
					     "lz4", "zstd"};
	const char *type = lookup(ov, n, "compression.type");
	out->codec = -1;
	for (int8_t c = 0; c < 5; c++)
		if (strcmp(type, codecs[c]) == 0)
			out->codec = c;
	out->gzip_level = (int32_t)lookup_i64(ov, n, "compression.gzip.level");
	out->lz4_level = (int32_t)lookup_i64(ov, n, "compression.lz4.level");
	out->zstd_level = (int32_t)lookup_i64(ov, n, "compression.zstd.level");
}

int tc_level(const struct tc_values *v, int codec)
{
	switch (codec) {
	case KC_GZIP:
		return v->gzip_level;
	case KC_LZ4:
		return v->lz4_level;
	case KC_ZSTD:
		return v->zstd_level;
	default:
		return KC_LEVEL_DEFAULT;
	}
}
