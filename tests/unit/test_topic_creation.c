/*
 * topic_creation: which group a topic falls in, what it inherits, and the
 * settings refused.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "storage/topic_creation.h"
#include "tests/support/leak_check.h"

TestSuite(topic_creation, .fini = leak_check);

static json_t *cfg(const char *text)
{
	json_error_t e;
	json_t *c = json_loads(text, 0, &e);
	cr_assert_not_null(c, "%s", e.text);
	return c;
}

static const char *value_of(const struct tc_override *ov, size_t n,
			    const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(ov[i].name, name) == 0)
			return ov[i].value;
	return NULL;
}

Test(topic_creation, none_means_broker_defaults)
{
	json_t *c = cfg("{\"topic.prefix\": \"p\"}");
	struct topic_creation *r = (void *)1;
	char key[64], err[256];
	int32_t parts;
	const struct tc_override *ov;
	size_t n;

	cr_assert_eq(tcr_parse(c, &r, key, sizeof(key), err, sizeof(err)), 0);
	cr_assert_null(r);
	tcr_lookup(r, "p.public.t", &parts, &ov, &n);
	cr_assert_eq(parts, -1);
	cr_assert_eq(n, 0);
	json_decref(c);
}

Test(topic_creation, first_matching_group_wins)
{
	json_t *c =
		cfg("{\"topic.creation.default.partitions\": \"4\","
		    " \"topic.creation.default.replication.factor\": \"1\","
		    " \"topic.creation.default.cleanup.policy\": \"compact\","
		    " \"topic.creation.groups\": \"a, b\","
		    " \"topic.creation.a.include\": \"p\\\\.x.*\","
		    " \"topic.creation.a.exclude\": \"p\\\\.xz\","
		    " \"topic.creation.a.retention.ms\": \"1000\","
		    " \"topic.creation.b.include\": \"p\\\\..*\","
		    " \"topic.creation.b.partitions\": \"2\"}");
	struct topic_creation *r;
	char key[64], err[256];
	int32_t parts;
	const struct tc_override *ov;
	size_t n;

	cr_assert_eq(tcr_parse(c, &r, key, sizeof(key), err, sizeof(err)), 0,
		     "%s: %s", key, err);
	json_decref(c); /* the rules keep their own copies */
	tcr_lookup(r, "p.xy", &parts, &ov, &n);
	cr_assert_eq(parts, 4); /* a has none: the default group's */
	cr_assert_str_eq(value_of(ov, n, "retention.ms"), "1000");
	cr_assert_null(value_of(ov, n, "cleanup.policy"));
	tcr_lookup(r, "p.xz", &parts, &ov, &n); /* a excludes it */
	cr_assert_eq(parts, 2);
	cr_assert_eq(n, 0);
	tcr_lookup(r, "q.other", &parts, &ov, &n); /* only the default */
	cr_assert_eq(parts, 4);
	cr_assert_str_eq(value_of(ov, n, "cleanup.policy"), "compact");
	tcr_free(r);
}

Test(topic_creation, refused)
{
	static const struct {
		const char *json, *key, *word;
	} bad[] = {
		{"{\"topic.creation.groups\": \"a\"}",
		 "topic.creation.default.partitions", "Missing required"},
		{"{\"topic.creation.default.partitions\": \"1\"}",
		 "topic.creation.default.replication.factor", "Missing"},
		{"{\"topic.creation.default.partitions\": \"0\","
		 " \"topic.creation.default.replication.factor\": \"1\"}",
		 "topic.creation.default.partitions", "at least 1"},
		{"{\"topic.creation.default.partitions\": \"1\","
		 " \"topic.creation.default.replication.factor\": \"2\"}",
		 "topic.creation.default.replication.factor", "one broker"},
		{"{\"topic.creation.default.partitions\": \"1\","
		 " \"topic.creation.default.replication.factor\": \"1\","
		 " \"topic.creation.default.segment.bytes\": \"x\"}",
		 "topic.creation.default.segment.bytes", "segment.bytes"},
		{"{\"topic.creation.default.partitions\": \"1\","
		 " \"topic.creation.default.replication.factor\": \"1\","
		 " \"topic.creation.groups\": \"default\"}",
		 "topic.creation.groups", "default"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *c = cfg(bad[i].json);
		struct topic_creation *r = (void *)1;
		char key[64] = "", err[256] = "";

		cr_assert_eq(
			tcr_parse(c, &r, key, sizeof(key), err, sizeof(err)),
			-1, "%s", bad[i].json);
		cr_assert_null(r);
		cr_assert_str_eq(key, bad[i].key, "%s", bad[i].json);
		cr_assert_not_null(strstr(err, bad[i].word), "%s: %s",
				   bad[i].json, err);
		json_decref(c);
	}
}
