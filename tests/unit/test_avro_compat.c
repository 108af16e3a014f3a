/*
 * avro_compat: parsing (valid and invalid schemas), Parsing Canonical Form
 * against the specification's rules, and a table of reader/writer pairs
 * with the answer Avro's schema resolution gives, then the levels.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/avro_compat.h"
#include "tests/support/leak_check.h"

TestSuite(avro_compat, .fini = leak_check);

static struct ac_schema *parse_ok(const char *text)
{
	char err[256] = "";
	struct ac_schema *s = ac_parse(text, strlen(text), err, sizeof(err));
	cr_assert_not_null(s, "%s: %s", text, err);
	return s;
}

Test(avro_compat, invalid_schemas)
{
	static const char *const bad[] = {
		"",
		"{",
		"42",
		"\"nosuchtype\"",
		"{\"type\":\"record\",\"name\":\"R\"}",
		"{\"type\":\"record\",\"fields\":[]}",
		"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		"\"a\"}]}",
		"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		"\"a\",\"type\":\"Undefined\"}]}",
		"{\"type\":\"enum\",\"name\":\"E\"}",
		"{\"type\":\"fixed\",\"name\":\"F\"}",
		"{\"type\":\"array\"}",
		"[\"int\",[\"long\"]]",
		"[\"int\",\"string\",\"int\"]",
		"[{\"type\":\"fixed\",\"name\":\"F\",\"size\":1},\"F\"]",
		"{\"type\":\"record\",\"name\":\"1R\",\"fields\":[]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		struct ac_schema *s =
			ac_parse(bad[i], strlen(bad[i]), err, sizeof(err));
		cr_expect_null(s, "accepted: %s", bad[i]);
		cr_expect(err[0] != '\0', "no reason for: %s", bad[i]);
		ac_free(s);
	}
}

Test(avro_compat, truncated_prefixes_fail_cleanly)
{
	const char *full = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{"
			   "\"name\":\"a\",\"type\":\"int\"}]}";
	size_t n = strlen(full);
	for (size_t len = 0; len < n; len++) {
		char err[256] = "";
		struct ac_schema *s = ac_parse(full, len, err, sizeof(err));
		cr_expect_null(s, "prefix of %zu bytes accepted", len);
		ac_free(s);
	}
}

Test(avro_compat, canonical_form)
{
	static const struct {
		const char *in, *pcf;
	} cases[] = {
		{"\"int\"", "\"int\""},
		{"{\"type\":\"int\",\"logicalType\":\"date\"}", "\"int\""},
		{" { \"type\" : \"array\", \"items\" : \"long\" } ",
		 "{\"type\":\"array\",\"items\":\"long\"}"},
		{"{\"values\":\"string\",\"type\":\"map\"}",
		 "{\"type\":\"map\",\"values\":\"string\"}"},
		/* full names, attributes dropped, keys ordered, reuse by name
		 */
		{"{\"type\":\"record\",\"namespace\":\"a.b\",\"doc\":\"d\","
		 "\"name\":\"R\",\"fields\":[{\"name\":\"x\",\"type\":{"
		 "\"type\":\"fixed\",\"name\":\"F\",\"size\":4},\"default\":"
		 "\"abcd\"},{\"name\":\"y\",\"type\":\"F\"},{\"name\":\"e\","
		 "\"type\":{\"type\":\"enum\",\"name\":\"c.E\",\"symbols\":["
		 "\"A\",\"B\"]}},{\"name\":\"n\",\"type\":[\"null\",\"R\"]}]}",
		 "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":[{"
		 "\"name\":"
		 "\"x\",\"type\":{\"name\":\"a.b.F\",\"type\":\"fixed\","
		 "\"size\":4}},{\"name\":\"y\",\"type\":\"a.b.F\"},{\"name\":"
		 "\"e\",\"type\":{\"name\":\"c.E\",\"type\":\"enum\","
		 "\"symbols\":[\"A\",\"B\"]}},{\"name\":\"n\",\"type\":["
		 "\"null\",\"a.b.R\"]}]}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ac_schema *s = parse_ok(cases[i].in);
		char *pcf = ac_canonical(s);
		cr_assert_not_null(pcf);
		cr_expect_str_eq(pcf, cases[i].pcf, "case %zu", i);
		free(pcf);
		ac_free(s);
	}
}

Test(avro_compat, compact_keeps_attributes)
{
	struct ac_schema *s = parse_ok(
		"{ \"type\": \"record\", \"name\": \"R\", \"doc\": \"d\", "
		"\"fields\": [ {\"name\": \"a\", \"type\": \"int\", "
		"\"default\": 1} ] }");
	cr_expect_str_eq(ac_compact(s),
			 "{\"type\":\"record\",\"name\":\"R\",\"doc\":\"d\","
			 "\"fields\":[{\"name\":\"a\",\"type\":\"int\","
			 "\"default\":1}]}");
	ac_free(s);
}

#define REC(fields)                                                            \
	"{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"ns\","            \
	"\"fields\":[" fields "]}"
#define F(name, type) "{\"name\":\"" name "\",\"type\":" type "}"
#define FD(name, type, def)                                                    \
	"{\"name\":\"" name "\",\"type\":" type ",\"default\":" def "}"

/* reader, writer, can the reader read what the writer wrote? */
static const struct {
	const char *reader, *writer;
	bool ok;
} pairs[] = {
	/* primitives and promotions */
	{"\"int\"", "\"int\"", true},
	{"\"long\"", "\"int\"", true},
	{"\"float\"", "\"int\"", true},
	{"\"double\"", "\"int\"", true},
	{"\"float\"", "\"long\"", true},
	{"\"double\"", "\"long\"", true},
	{"\"double\"", "\"float\"", true},
	{"\"int\"", "\"long\"", false},
	{"\"long\"", "\"float\"", false},
	{"\"float\"", "\"double\"", false},
	{"\"string\"", "\"bytes\"", true},
	{"\"bytes\"", "\"string\"", true},
	{"\"string\"", "\"int\"", false},
	{"\"boolean\"", "\"null\"", false},
	/* records */
	{REC(F("a", "\"int\"")), REC(F("a", "\"int\"")), true},
	{REC(F("a", "\"long\"")), REC(F("a", "\"int\"")), true},
	{REC(F("a", "\"int\"")), REC(F("a", "\"long\"")), false},
	/* a new field needs a default to read old data */
	{REC(F("a", "\"int\"") "," F("b", "\"string\"")),
	 REC(F("a", "\"int\"")), false},
	{REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"x\"")),
	 REC(F("a", "\"int\"")), true},
	{REC(F("a", "\"int\"") "," FD("b", "[\"null\",\"string\"]", "null")),
	 REC(F("a", "\"int\"")), true},
	/* a removed field is ignored */
	{REC(F("a", "\"int\"")), REC(F("a", "\"int\"") "," F("b", "\"int\"")),
	 true},
	/* field aliases */
	{REC("{\"name\":\"b\",\"aliases\":[\"a\"],\"type\":\"int\"}"),
	 REC(F("a", "\"int\"")), true},
	/* record names: unqualified names compared, aliases */
	{"{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}",
	 "{\"type\":\"record\",\"name\":\"x.R\",\"fields\":[]}", true},
	{"{\"type\":\"record\",\"name\":\"S\",\"fields\":[]}",
	 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}", false},
	{"{\"type\":\"record\",\"name\":\"S\",\"aliases\":[\"R\"],"
	 "\"fields\":[]}",
	 "{\"type\":\"record\",\"name\":\"R\",\"fields\":[]}", true},
	/* enums */
	{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}",
	 "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}", true},
	{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}",
	 "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", false},
	{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"Z\"],"
	 "\"default\":\"Z\"}",
	 "{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"]}", true},
	{"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\"]}",
	 "{\"type\":\"enum\",\"name\":\"G\",\"symbols\":[\"A\"]}", false},
	/* fixed */
	{"{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
	 "{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}", true},
	{"{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
	 "{\"type\":\"fixed\",\"name\":\"F\",\"size\":8}", false},
	{"{\"type\":\"fixed\",\"name\":\"F\",\"size\":4}",
	 "{\"type\":\"fixed\",\"name\":\"G\",\"size\":4}", false},
	/* arrays and maps by their items */
	{"{\"type\":\"array\",\"items\":\"long\"}",
	 "{\"type\":\"array\",\"items\":\"int\"}", true},
	{"{\"type\":\"array\",\"items\":\"int\"}",
	 "{\"type\":\"array\",\"items\":\"long\"}", false},
	{"{\"type\":\"map\",\"values\":\"double\"}",
	 "{\"type\":\"map\",\"values\":\"float\"}", true},
	{"{\"type\":\"map\",\"values\":\"int\"}",
	 "{\"type\":\"array\",\"items\":\"int\"}", false},
	/* unions */
	{"[\"null\",\"int\"]", "\"int\"", true},
	{"[\"null\",\"long\"]", "\"int\"", true},
	{"[\"null\",\"string\"]", "\"int\"", false},
	{"\"int\"", "[\"null\",\"int\"]", false},
	{"[\"null\",\"int\",\"string\"]", "[\"null\",\"int\"]", true},
	{"[\"null\",\"int\"]", "[\"null\",\"int\",\"string\"]", false},
	{"\"long\"", "[\"int\",\"long\"]", true},
	/* recursive types */
	{"{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
	 "\"type\":\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}",
	 "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
	 "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}",
	 true},
	{"{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
	 "\"type\":\"int\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}",
	 "{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"v\","
	 "\"type\":\"long\"},{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}",
	 false},
	/* nested: a field of a nested record */
	{REC(F("in", "{\"type\":\"record\",\"name\":\"I\",\"fields\":["
		     "{\"name\":\"q\",\"type\":\"string\"}]}")),
	 REC(F("in", "{\"type\":\"record\",\"name\":\"I\",\"fields\":["
		     "{\"name\":\"q\",\"type\":\"int\"}]}")),
	 false},
};

Test(avro_compat, resolution_table)
{
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		struct ac_schema *r = parse_ok(pairs[i].reader);
		struct ac_schema *w = parse_ok(pairs[i].writer);
		char msg[512] = "";
		bool ok = ac_can_read(r, w, msg, sizeof(msg));
		cr_expect_eq(ok, pairs[i].ok,
			     "case %zu: reader %s, writer %s: got %d (%s)", i,
			     pairs[i].reader, pairs[i].writer, ok, msg);
		if (!ok)
			cr_expect(msg[0] != '\0', "case %zu: no message", i);
		ac_free(r);
		ac_free(w);
	}
}

Test(avro_compat, message_names_the_path)
{
	struct ac_schema *r =
		parse_ok(REC(F("a", "\"int\"") "," F("b", "\"string\"")));
	struct ac_schema *w = parse_ok(REC(F("a", "\"int\"")));
	char msg[512];
	cr_assert_not(ac_can_read(r, w, msg, sizeof(msg)));
	cr_expect(strstr(msg, "READER_FIELD_MISSING_DEFAULT_VALUE") != NULL,
		  "%s", msg);
	cr_expect(strstr(msg, "/fields/1") != NULL, "%s", msg);
	cr_expect(strstr(msg, "'b'") != NULL, "%s", msg);
	ac_free(r);
	ac_free(w);
}

/* v1 {a}, v2 {a, b=default}, then candidates under each level. */
Test(avro_compat, levels)
{
	struct ac_schema *v1 = parse_ok(REC(F("a", "\"int\"")));
	struct ac_schema *v2 = parse_ok(
		REC(F("a", "\"int\"") "," FD("b", "\"string\"", "\"\"")));
	const struct ac_schema *prev[] = {v1, v2};
	/* drops a and adds c without default */
	struct ac_schema *bad = parse_ok(REC(F("c", "\"int\"")));
	/* adds b with no default: reads v2 (has b) but not v1 */
	struct ac_schema *nodef =
		parse_ok(REC(F("a", "\"int\"") "," F("b", "\"string\"")));
	/* removes b (which had a default): old readers fill it in */
	struct ac_schema *drop_b = parse_ok(REC(F("a", "\"int\"")));
	char msg[512];

	cr_expect(ac_check(AC_NONE, bad, prev, 2, msg, sizeof(msg)));
	cr_expect_not(ac_check(AC_BACKWARD, bad, prev, 2, msg, sizeof(msg)));
	cr_expect(ac_check(AC_BACKWARD, nodef, prev, 2, msg, sizeof(msg)), "%s",
		  msg);
	cr_expect_not(ac_check(AC_BACKWARD_TRANSITIVE, nodef, prev, 2, msg,
			       sizeof(msg)));
	cr_expect(ac_check(AC_FORWARD, drop_b, prev, 2, msg, sizeof(msg)), "%s",
		  msg);
	cr_expect(ac_check(AC_BACKWARD, drop_b, prev, 2, msg, sizeof(msg)),
		  "%s", msg);
	cr_expect(
		ac_check(AC_FULL_TRANSITIVE, drop_b, prev, 2, msg, sizeof(msg)),
		"%s", msg);
	/* nodef cannot be read by... v2 can read nodef; v1 too (ignores b) */
	cr_expect(ac_check(AC_FORWARD_TRANSITIVE, nodef, prev, 2, msg,
			   sizeof(msg)),
		  "%s", msg);
	cr_expect_not(
		ac_check(AC_FULL_TRANSITIVE, nodef, prev, 2, msg, sizeof(msg)));
	cr_expect(ac_check(AC_FULL, nodef, prev, 2, msg, sizeof(msg)), "%s",
		  msg);
	cr_expect(ac_check(AC_BACKWARD, bad, prev, 0, msg, sizeof(msg)));
	ac_free(v1);
	ac_free(v2);
	ac_free(bad);
	ac_free(nodef);
	ac_free(drop_b);
}

Test(avro_compat, level_names)
{
	enum ac_level l;
	cr_assert_eq(ac_level_parse("FULL_TRANSITIVE", &l), 0);
	cr_expect_eq(l, AC_FULL_TRANSITIVE);
	cr_assert_eq(ac_level_parse("backward", &l), 0);
	cr_expect_eq(l, AC_BACKWARD);
	cr_expect_str_eq(ac_level_name(AC_FORWARD), "FORWARD");
	cr_expect_eq(ac_level_parse("SIDEWAYS", &l), -1);
}
