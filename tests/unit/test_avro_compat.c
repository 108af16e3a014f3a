/*
 * avro_compat: parsing (valid and invalid schemas), Parsing Canonical Form
 * against the specification's rules, and a table of reader/writer pairs
 * with the answer Avro's schema resolution gives, then the levels.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/avro_compat.h"
#include "tests/support/leak_check.h"

TestSuite(avro_compat, .fini = leak_check, .timeout = 30);

static struct ac_schema *parse_ok(const char *text)
{
	char err[256] = "";
	struct ac_schema *s =
		ac_parse(text, strlen(text), true, err, sizeof(err));
	cr_assert_not_null(s, "%s: %s", text, err);
	return s;
}

/* text is refused, with a reason. */
static void parse_bad(const char *text)
{
	char err[256] = "";
	struct ac_schema *s =
		ac_parse(text, strlen(text), true, err, sizeof(err));
	cr_expect_null(s, "accepted: %s", text);
	cr_expect(err[0] != '\0', "no reason for: %s", text);
	ac_free(s);
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
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

Test(avro_compat, truncated_prefixes_fail_cleanly)
{
	const char *full = "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{"
			   "\"name\":\"a\",\"type\":\"int\"}]}";
	size_t n = strlen(full);
	for (size_t len = 0; len < n; len++) {
		char err[256] = "";
		struct ac_schema *s =
			ac_parse(full, len, true, err, sizeof(err));
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

/* s with ' for ", as JSON is easier to read that way; caller frees. */
static char *dq(const char *s)
{
	char *r = strdup(s);
	cr_assert_not_null(r);
	for (char *p = r; *p; p++)
		if (*p == '\'')
			*p = '"';
	return r;
}

/*
 * What Confluent stores, returns and compares: Avro Java's
 * Schema.toString() (AvroSchema.canonicalString()).  Each expected text is
 * Avro 1.12.1's output for the input.
 */
Test(avro_compat, java_form)
{
	static const struct {
		const char *in, *java;
	} cases[] = {
		/* Avro's user.avsc, namespace first, as Python sends it */
		{"{'namespace': 'example.avro', 'type': 'record', 'name': "
		 "'User', 'fields': [{'name': 'name', 'type': 'string'}, "
		 "{'name': 'favorite_number',  'type': ['int', 'null']}]}",
		 "{'type':'record','name':'User','namespace':'example.avro',"
		 "'fields':[{'name':'name','type':'string'},{'name':"
		 "'favorite_number','type':['int','null']}]}"},
		{"{'type':'record','name':'n.X','fields':[{'name':'a','type':"
		 "{'type':'int'}},{'name':'b','type':{'type':'int',"
		 "'logicalType':'date'}},{'name':'c','type':{'type':'string',"
		 "'doc':'x'}}]}",
		 "{'type':'record','name':'X','namespace':'n','fields':[{"
		 "'name':'a','type':'int'},{'name':'b','type':{'type':'int',"
		 "'logicalType':'date'}},{'name':'c','type':'string'}]}"},
		/* namespaces inherited, changed, references short or full */
		{"{'type':'record','name':'R','namespace':'a.b','fields':[{"
		 "'name':'in','type':{'type':'record','name':'I','fields':[]}},"
		 "{'name':'in2','type':'I'},{'name':'o','type':{'type':"
		 "'record','name':'O','namespace':'c','fields':[{'name':'back',"
		 "'type':'a.b.I'},{'name':'self','type':'O'}]}}]}",
		 "{'type':'record','name':'R','namespace':'a.b','fields':[{"
		 "'name':'in','type':{'type':'record','name':'I','fields':[]}},"
		 "{'name':'in2','type':'I'},{'name':'o','type':{'type':"
		 "'record','name':'O','namespace':'c','fields':[{'name':'back',"
		 "'type':'a.b.I'},{'name':'self','type':'O'}]}}]}"},
		/* a field's keys; numbers as Java writes doubles */
		{"{'type':'record','name':'R','fields':[{'default':1,'type':"
		 "'int','doc':'d','name':'a','x-prop':true,'order':"
		 "'descending','aliases':['b','b']},{'name':'f','type':"
		 "'double','default':0.1},{'name':'g','type':'double',"
		 "'default':1e20},{'name':'h','type':'double','default':100.0},"
		 "{'name':'i','type':'double','default':1.5e-5},{'name':'j',"
		 "'type':'float','default':12345678.5},{'name':'k','type':"
		 "'double','default':-0.0},{'name':'l','type':'double',"
		 "'default':0.001},{'name':'m','type':'double','default':1e7}]"
		 "}",
		 "{'type':'record','name':'R','fields':[{'name':'a','type':"
		 "'int','doc':'d','default':1,'order':'descending','aliases':["
		 "'b'],'x-prop':true},{'name':'f','type':'double','default':"
		 "0.1},{'name':'g','type':'double','default':1.0E20},{'name':"
		 "'h','type':'double','default':100.0},{'name':'i','type':"
		 "'double','default':1.5E-5},{'name':'j','type':'float',"
		 "'default':1.23456785E7},{'name':'k','type':'double',"
		 "'default':-0.0},{'name':'l','type':'double','default':0.001},"
		 "{'name':'m','type':'double','default':1.0E7}]}"},
		{"{'symbols':['A'],'name':'E','type':'enum','default':'A',"
		 "'aliases':['F','x.G'],'doc':'d','x':1}",
		 "{'type':'enum','name':'E','doc':'d','symbols':['A'],"
		 "'default':'A','x':1,'aliases':['F','x.G']}"},
		{"{'size':16,'type':'fixed','name':'md5','logicalType':'x',"
		 "'namespace':'q','aliases':['q.old','other.o']}",
		 "{'type':'fixed','name':'md5','namespace':'q','size':16,"
		 "'logicalType':'x','aliases':['old','other.o']}"},
		{"{'items':'int','type':'array','x':'y'}",
		 "{'type':'array','items':'int','x':'y'}"},
		{"{'type':'map','values':{'type':'long','connect.name':'z','n':"
		 "[1,2.5,{'a':null}]}}",
		 "{'type':'map','values':{'type':'long','connect.name':'z','n':"
		 "[1,2.5,{'a':null}]}}"},
		/* attributes after the fields, aliases last; escapes */
		{"{'type':'record','name':'R','doc':'r','x':{'b':1,'a':2},"
		 "'aliases':['S'],'fields':[{'name':'s','type':'string',"
		 "'default':'t\\u0000\\n\\u0001/\xc3\xa9'}]}",
		 "{'type':'record','name':'R','doc':'r','fields':[{'name':'s',"
		 "'type':'string','default':'t\\u0000\\n\\u0001/\xc3\xa9'}],"
		 "'x':{'b':1,'a':2},'aliases':['S']}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *in = dq(cases[i].in), *java = dq(cases[i].java);
		struct ac_schema *s = parse_ok(in);
		cr_expect_str_eq(ac_compact(s), java, "case %zu", i);
		/* and it reads back as itself */
		struct ac_schema *again = parse_ok(ac_compact(s));
		cr_expect_str_eq(ac_compact(again), java, "case %zu again", i);
		ac_free(again);
		ac_free(s);
		free(in);
		free(java);
	}
}

/*
 * normalize=true: Confluent's AvroSchemaUtils.toNormalizedString read back
 * and written by Avro Java.  Each expected text is that code's output (run
 * on Avro 1.12.1) for the input.
 */
Test(avro_compat, normalized_form)
{
	static const struct {
		const char *in, *norm;
	} cases[] = {
		/* Confluent's own test (testNormalization...MetadataFor...) */
		{"{'connect.name':'s.Envelope','fields':[{'default':null,"
		 "'name':'before','type':['null',{'connect.name':'s.Value',"
		 "'fields':[{'name':'t','type':{'connect.name':"
		 "'io.debezium.time.Timestamp','connect.version':1,'type':"
		 "'long'}}],'name':'Value','type':'record'}]}],'name':"
		 "'Envelope','namespace':'s','type':'record'}",
		 "{'type':'record','name':'Envelope','namespace':'s','fields':"
		 "[{'name':'before','type':['null',{'type':'record','name':"
		 "'Value','fields':[{'name':'t','type':{'type':'long',"
		 "'connect.name':'io.debezium.time.Timestamp',"
		 "'connect.version':1}}],'connect.name':'s.Value'}],"
		 "'default':null}],'connect.name':'s.Envelope'}"},
		/* attributes, aliases and object values sorted; an empty doc
		 * of a record dropped, of a field kept; defaults converted */
		{"{'type':'record','name':'R','namespace':'n','doc':'',"
		 "'aliases':['Z','A','x.B'],'z':1,'a':{'y':1,'b':[{'d':1,'c':"
		 "2}]},'fields':[{'name':'d','type':'double','default':1,'zz':"
		 "true,'aa':false,'aliases':['q','b']},{'name':'f','type':"
		 "'float','default':0.1},{'name':'l','type':'long','default':"
		 "5,'order':'descending','doc':''},{'name':'m','type':{'type':"
		 "'map','values':'double'},'default':{'b':1,'a':2.5}}]}",
		 "{'type':'record','name':'R','namespace':'n','fields':[{'name'"
		 ":"
		 "'d','type':'double','default':1.0,'aliases':['b','q'],'aa':"
		 "false,'zz':true},{'name':'f','type':'float','default':0.1},"
		 "{'name':'l','type':'long','doc':'','default':5,'order':"
		 "'descending'},{'name':'m','type':{'type':'map','values':"
		 "'double'},'default':{'a':2.5,'b':1.0}}],'a':{'b':[{'c':2,"
		 "'d':1}],'y':1},'z':1,'aliases':['A','Z','x.B']}"},
		/* a valid logical type's attributes first, the others sorted */
		{"{'type':'bytes','logicalType':'decimal','scale':2,"
		 "'precision':10,'connect.name':'x','a':1}",
		 "{'type':'bytes','logicalType':'decimal','precision':10,"
		 "'scale':2,'a':1,'connect.name':'x'}"},
		{"{'type':'bytes','logicalType':'decimal','precision':2,'scale'"
		 ":"
		 "5,'a':1}",
		 "{'type':'bytes','a':1,'logicalType':'decimal','precision':2,"
		 "'scale':5}"},
		{"{'type':'long','logicalType':'date','a':1}",
		 "{'type':'long','a':1,'logicalType':'date'}"},
		{"{'type':'enum','name':'E','symbols':['B','A'],'default':'A',"
		 "'doc':'d','aliases':['Y','X'],'p':1}",
		 "{'type':'enum','name':'E','doc':'d','symbols':['B','A'],"
		 "'default':'A','p':1,'aliases':['X','Y']}"},
		/* a union's default by its first branch: "x" is no int */
		{"{'type':'record','name':'R','fields':[{'name':'a','type':["
		 "'int','string'],'default':'x'},{'name':'b','type':{'type':"
		 "'array','items':'float'},'default':[1,2.5,12345678.5]}]}",
		 "{'type':'record','name':'R','fields':[{'name':'a','type':["
		 "'int','string']},{'name':'b','type':{'type':'array','items':"
		 "'float'},'default':[1.0,2.5,1.2345678E7]}]}"},
		/* ... a null first: the object's values have no type known,
		 * and are kept (not made null) */
		{"{'type':'record','name':'R','fields':[{'name':'a','type':["
		 "'null',{'type':'record','name':'S','fields':[{'name':'s',"
		 "'type':'string'},{'name':'x','type':'double'}]}],'default':"
		 "{'x':1.5,'s':'t'}}]}",
		 "{'type':'record','name':'R','fields':[{'name':'a','type':["
		 "'null',{'type':'record','name':'S','fields':[{'name':'s',"
		 "'type':'string'},{'name':'x','type':'double'}]}],'default':"
		 "{'s':'t','x':1.5}}]}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *in = dq(cases[i].in), *norm = dq(cases[i].norm);
		char err[256] = "";
		struct ac_schema *s = parse_ok(in);
		struct ac_schema *n = ac_normalize(s, err, sizeof(err));
		cr_assert_not_null(n, "case %zu: %s", i, err);
		cr_expect_str_eq(ac_compact(n), norm, "case %zu", i);
		ac_free(n);
		ac_free(s);
		free(in);
		free(norm);
	}
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

/* A growing JSON text for the big schemas below. */
struct text {
	char *p;
	size_t len, cap;
};

static void add(struct text *t, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL,
				  t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (t->p && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		t->cap = t->cap ? 2 * t->cap + (size_t)n : 4096;
		t->p = realloc(t->p, t->cap);
		cr_assert_not_null(t->p);
	}
}

/*
 * Records T0..Tn, each with two fields of type T(i+1), the last one's field
 * of type last: T(i+1) is reached by 2^(i+1) paths.  A check that
 * remembered only the pairs it is inside of took 24 s at n = 25 on the
 * event loop; every pair is decided once now.
 */
static struct ac_schema *dag(int n, const char *last)
{
	struct text t = {0};
	for (int i = 0; i < n; i++)
		add(&t,
		    "{\"type\":\"record\",\"name\":\"T%d\",\"fields\":["
		    "{\"name\":\"a\",\"type\":",
		    i);
	add(&t,
	    "{\"type\":\"record\",\"name\":\"T%d\",\"fields\":[{\"name\":"
	    "\"v\",\"type\":\"%s\"}]}",
	    n, last);
	for (int i = n - 1; i >= 0; i--)
		add(&t, "},{\"name\":\"b\",\"type\":\"T%d\"}]}", i + 1);
	struct ac_schema *s = parse_ok(t.p);
	free(t.p);
	return s;
}

Test(avro_compat, shared_types_checked_once)
{
	struct ac_schema *ints = dag(40, "int");
	struct ac_schema *longs = dag(40, "long");
	char msg[512];
	cr_expect(ac_can_read(longs, ints, msg, sizeof(msg)), "%s", msg);
	cr_expect_not(ac_can_read(ints, longs, msg, sizeof(msg)));
	cr_expect(strstr(msg, "TYPE_MISMATCH") != NULL, "%s", msg);
	cr_expect(strstr(msg, "/fields/0/fields/0") != NULL, "%s", msg);
	const struct ac_schema *prev[] = {ints};
	cr_expect_not(ac_check(AC_FULL, longs, prev, 1, msg, sizeof(msg)));
	ac_free(ints);
	ac_free(longs);
}

/* Duplicates are looked up by hashing: a 40k-field record took 8.5 s. */
Test(avro_compat, big_schemas_parse_fast)
{
	enum { N = 100000 };
	struct text t = {0};
	add(&t, "{\"type\":\"record\",\"name\":\"Big\",\"fields\":[");
	for (int i = 0; i < N; i++)
		add(&t, "%s{\"name\":\"f%d\",\"type\":\"int\"}", i ? "," : "",
		    i);
	add(&t, ",{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
		"\"symbols\":[");
	for (int i = 0; i < N; i++)
		add(&t, "%s\"S%d\"", i ? "," : "", i);
	add(&t, "]}},{\"name\":\"u\",\"type\":[");
	for (int i = 0; i < N / 4; i++)
		add(&t, "%s{\"type\":\"fixed\",\"name\":\"F%d\",\"size\":1}",
		    i ? "," : "", i);
	add(&t, "]}]}");
	struct ac_schema *s = parse_ok(t.p);
	char msg[512];
	cr_expect(ac_can_read(s, s, msg, sizeof(msg)), "%s", msg);
	ac_free(s);

	/* and a duplicate at the end is still found */
	memcpy(strstr(t.p, "\"f99999\""), "\"f7\"    ", 8);
	char err[256] = "";
	s = ac_parse(t.p, t.len, true, err, sizeof(err));
	cr_expect_null(s);
	cr_expect(strstr(err, "duplicate") != NULL, "%s", err);
	ac_free(s);
	free(t.p);
}

/*
 * A default holding U+0000 (Confluent's AvroData writes "\u0000" for a
 * bytes/decimal default: Debezium with decimal.handling.mode=precise) is a
 * valid default; a name holding one is not a name.
 */
Test(avro_compat, nul_in_defaults)
{
	const char *ok = "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
			 "{\"name\":\"d\",\"type\":{\"type\":\"bytes\","
			 "\"logicalType\":\"decimal\",\"precision\":10,"
			 "\"scale\":2},\"default\":\"\\u0000\"}]}";
	struct ac_schema *s = parse_ok(ok);
	cr_expect(strstr(ac_compact(s), "\"default\":\"\\u0000\"") != NULL,
		  "%s", ac_compact(s));
	ac_free(s);
	static const char *const bad[] = {
		"{\"type\":\"record\",\"name\":\"R\\u0000x\",\"fields\":[]}",
		("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		 "\"a\\u0000b\",\"type\":\"int\"}]}"),
		"\"int\\u0000\"",
		"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\\u0000\"]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

/* Defaults are checked against their types as Avro 1.12's
 * Schema.isValidDefault does; an enum's default is one of its symbols. */
Test(avro_compat, defaults_match_their_types)
{
	static const char *const good[] = {
		REC(FD("a", "\"int\"", "1")),
		REC(FD("a", "\"long\"", "-9223372036854775808")),
		REC(FD("a", "\"double\"", "1")),
		REC(FD("a", "\"float\"", "0.5")),
		REC(FD("a", "\"bytes\"", "\"\\u00ff\"")),
		REC(FD("a", "[\"null\",\"int\"]", "null")),
		/* Avro 1.12: any branch */
		REC(FD("a", "[\"null\",\"int\"]", "5")),
		REC(FD("a", "{\"type\":\"array\",\"items\":\"int\"}", "[1,2]")),
		REC(FD("a", "{\"type\":\"map\",\"values\":\"string\"}",
		       "{\"k\":\"v\"}")),
		REC(FD("a",
		       "{\"type\":\"record\",\"name\":\"I\",\"fields\":["
		       "{\"name\":\"x\",\"type\":\"int\"},{\"name\":\"y\","
		       "\"type\":\"int\",\"default\":0}]}",
		       "{\"x\":1}")),
		("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],"
		 "\"default\":\"B\"}"),
	};
	static const char *const bad[] = {
		REC(FD("a", "\"int\"", "\"x\"")),
		REC(FD("a", "\"int\"", "2147483648")),
		REC(FD("a", "\"int\"", "1.0")),
		REC(FD("a", "\"long\"", "1.5")),
		REC(FD("a", "\"string\"", "null")),
		REC(FD("a", "\"boolean\"", "0")),
		REC(FD("a", "[\"null\",\"int\"]", "\"x\"")),
		REC(FD("a", "{\"type\":\"array\",\"items\":\"int\"}",
		       "[1,\"2\"]")),
		REC(FD("a",
		       "{\"type\":\"record\",\"name\":\"I\",\"fields\":["
		       "{\"name\":\"x\",\"type\":\"int\"}]}",
		       "{}")),
		("{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"B\"],"
		 "\"default\":\"C\"}"),
	};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		ac_free(parse_ok(good[i]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		parse_bad(bad[i]);
}

/* Defaults are checked only when asked (a schema new to its subject): a
 * stored one an older samsa accepted still parses, and is the same schema. */
Test(avro_compat, defaults_validated_only_when_asked)
{
	const char *t =
		"{\"type\":\"record\",\"name\":\"V\",\"fields\":[{"
		"\"name\":\"s\",\"type\":\"string\",\"default\":null}]}";
	char err[256] = "";
	struct ac_schema *s = ac_parse(t, strlen(t), true, err, sizeof(err));
	cr_expect_null(s);
	cr_expect(strstr(err, "default") != NULL, "%s", err);
	ac_free(s);
	s = ac_parse(t, strlen(t), false, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_expect_str_eq(ac_compact(s), t);
	ac_free(s);
}

/*
 * Records L1..Lk, each with two fields of type L(i-1) whose default is {}:
 * a field missing from a default takes its own default, which was checked
 * again at every path (k = 25 held the event loop 7.7 s); each field's
 * default is checked once now.
 */
Test(avro_compat, nested_record_defaults_checked_once)
{
	enum { K = 40 };
	struct text t = {0};
	add(&t, "{\"type\":\"record\",\"name\":\"Top\",\"fields\":[{\"name\":"
		"\"t\",\"type\":");
	for (int i = K; i > 0; i--)
		add(&t,
		    "{\"type\":\"record\",\"name\":\"L%d\",\"fields\":[{"
		    "\"name\":\"a\",\"type\":",
		    i);
	add(&t, "{\"type\":\"record\",\"name\":\"L0\",\"fields\":[{\"name\":"
		"\"v\",\"type\":\"int\",\"default\":0}]}");
	for (int i = 1; i <= K; i++)
		add(&t,
		    ",\"default\":{}},{\"name\":\"b\",\"type\":\"L%d\","
		    "\"default\":{}}]}",
		    i - 1);
	add(&t, ",\"default\":{}}]}");
	struct ac_schema *s = parse_ok(t.p);
	ac_free(s);

	/* and one invalid default deep down is still found */
	char *v = strstr(t.p, "\"default\":0");
	cr_assert_not_null(v);
	memcpy(v, "\"default\":\"", 11);
	memmove(v + 12, v + 11, strlen(v + 11) + 1);
	v[11] = '"';
	parse_bad(t.p);
	free(t.p);
}

/*
 * A default of nested objects for a union of two records that each hold
 * the union and a field the default lacks: every level tries both branches
 * to the bottom (2^depth).  The work is bounded: the schema is refused.
 */
Test(avro_compat, union_defaults_bounded)
{
	enum { D = 60 };
	struct text t = {0};
	add(&t, "{\"type\":\"record\",\"name\":\"Top\",\"fields\":[{\"name\":"
		"\"t\",\"type\":{\"type\":\"record\",\"name\":\"R1\","
		"\"fields\":[{\"name\":\"a\",\"type\":[\"null\",\"R1\",{"
		"\"type\":\"record\",\"name\":\"R2\",\"fields\":[{\"name\":"
		"\"a\",\"type\":[\"null\",\"R1\",\"R2\"]},{\"name\":\"y\","
		"\"type\":\"int\"}]}]},{\"name\":\"z\",\"type\":\"int\"}]},"
		"\"default\":");
	for (int i = 0; i < D; i++)
		add(&t, "{\"a\":");
	add(&t, "1");
	for (int i = 0; i < D; i++)
		add(&t, "}");
	add(&t, "}]}");
	char err[256] = "";
	struct ac_schema *s = ac_parse(t.p, t.len, true, err, sizeof(err));
	cr_expect_null(s);
	cr_expect(strstr(err, "too costly") != NULL, "%s", err);
	ac_free(s);
	s = ac_parse(t.p, t.len, false, err, sizeof(err));
	cr_expect_not_null(s, "%s", err);
	ac_free(s);
	free(t.p);
}

/* A union of n records named name (namespace prefix i), each with field a
 * of type atype, the last one's of type last. */
static struct ac_schema *union_of(int n, const char *prefix, const char *name,
				  const char *atype, const char *last)
{
	struct text t = {0};
	add(&t, "[");
	for (int i = 0; i < n; i++)
		add(&t,
		    "%s{\"type\":\"record\",\"name\":\"%s%d.%s\",\"fields\":"
		    "[{\"name\":\"a\",\"type\":\"%s\"}]}",
		    i ? "," : "", prefix, i, name, i == n - 1 ? last : atype);
	add(&t, "]");
	struct ac_schema *s = parse_ok(t.p);
	free(t.p);
	return s;
}

/*
 * A writer's union branch without a namesake in the reader's union: only
 * the reader's branches of its kind and short name (or alias) are tried,
 * and the pairs tried are bounded (n = 3,000 of each took 2.95 s and
 * 283 MB, every branch against every branch).
 */
Test(avro_compat, union_branches_bounded)
{
	enum { N = 3000 };
	char msg[512];
	/* other names: none tried */
	struct ac_schema *r = union_of(N, "r", "R", "int", "int");
	struct ac_schema *w = union_of(N, "w", "W", "int", "int");
	cr_expect_not(ac_can_read(r, w, msg, sizeof(msg)));
	cr_expect(strstr(msg, "has no branch that reads w0.W") != NULL, "%s",
		  msg);
	ac_free(r);
	ac_free(w);

	/* one short name, only the last reader's branch reads them: every
	 * pair would be tried */
	r = union_of(N / 2, "r", "X", "int", "string");
	w = union_of(N / 2, "w", "X", "string", "string");
	cr_expect_not(ac_can_read(r, w, msg, sizeof(msg)));
	cr_expect(strstr(msg, "too many union branches") != NULL, "%s", msg);
	ac_free(r);
	ac_free(w);

	/* a reader's branch of the writer's short name still reads it */
	r = union_of(N / 2, "r", "X", "boolean", "long");
	w = union_of(1, "w", "X", "int", "int");
	cr_expect(ac_can_read(r, w, msg, sizeof(msg)), "%s", msg);
	ac_free(r);
	ac_free(w);
	r = parse_ok("[\"null\",{\"type\":\"record\",\"name\":\"n.New\","
		     "\"aliases\":[\"w0.X\"],\"fields\":[{\"name\":\"a\","
		     "\"type\":\"int\"}]}]");
	w = union_of(1, "w", "X", "int", "int");
	cr_expect(ac_can_read(r, w, msg, sizeof(msg)), "%s", msg);
	ac_free(r);
	ac_free(w);
}

/*
 * A float or double field's default written as text is the number it
 * spells, as Avro Java's parser makes it (Double.valueOf); NaN and the
 * infinities are written as text, as Jackson writes them.  Other text, and
 * text deeper in a default, is no number.
 */
Test(avro_compat, textual_number_defaults)
{
	static const struct {
		const char *def, *compact;
	} cases[] = {
		{"\"1.5\"", "1.5"},
		{"\" 1e3f \"", "1000.0"},
		{"\"-0x1p3\"", "-8.0"},
		{"\"NaN\"", "\"NaN\""},
		{"\"+Infinity\"", "\"Infinity\""},
		{"\"-Infinity\"", "\"-Infinity\""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int single = 0; single < 2; single++) {
			struct text t = {0}, want = {0};
			add(&t,
			    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{"
			    "\"name\":\"d\",\"type\":\"%s\",\"default\":%s}]}",
			    single ? "float" : "double", cases[i].def);
			add(&want,
			    "{\"type\":\"record\",\"name\":\"R\",\"fields\":[{"
			    "\"name\":\"d\",\"type\":\"%s\",\"default\":%s}]}",
			    single ? "float" : "double", cases[i].compact);
			struct ac_schema *s = parse_ok(t.p);
			cr_expect_str_eq(ac_compact(s), want.p);
			char err[256] = "";
			struct ac_schema *n = ac_normalize(s, err, sizeof(err));
			cr_assert_not_null(n, "%s", err);
			cr_expect_str_eq(ac_compact(n), want.p);
			ac_free(n);
			ac_free(s);
			free(t.p);
			free(want.p);
		}
	}
	parse_bad("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		  "\"d\",\"type\":\"double\",\"default\":\"1e\"}]}");
	parse_bad("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		  "\"d\",\"type\":\"double\",\"default\":\"nan\"}]}");
	parse_bad("{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":"
		  "\"d\",\"type\":{\"type\":\"array\",\"items\":\"double\"},"
		  "\"default\":[\"NaN\"]}]}");
}
