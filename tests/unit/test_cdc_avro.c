/*
 * cdc_avro: AvroConverter's schemas and bytes for change data capture
 * records (storage/cdc_avro.c, through cdc_event.c's cdc_rel_schemas and
 * cdc_format): the seed's admission table, the envelope's named types,
 * Decimal and int16 properties, and Confluent's wire format with Avro
 * binary under it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "protocol/avro_compat.h"
#include "protocol/kbuf.h"
#include "storage/cdc_int.h"
#include "tests/support/leak_check.h"

TestSuite(cdc_avro, .fini = leak_check);

static struct cdc_col admission_cols[] = {
	{"student_id", 23, -1, true, false, false},
	{"gre", 23, -1, false, true, false},
	{"toefl", 23, -1, false, true, false},
	{"cpga", 701, -1, false, true, false},
	{"admit_chance", 701, -1, false, true, false},
};

static void rel_init(struct cdc_rel *r, const char *topic, struct cdc_col *cols,
		     int ncols)
{
	memset(r, 0, sizeof(*r));
	r->schema = "public";
	r->table = "admission";
	r->topic = (char *)topic;
	r->cols = cols;
	r->ncols = ncols;
	r->replident = 'd';
	r->included = true;
}

static const char admission_value[] =
	"[\"null\",{\"type\":\"record\",\"name\":\"Value\",\"namespace\":"
	"\"dbserver1.public.admission\",\"fields\":["
	"{\"name\":\"student_id\",\"type\":\"int\"},"
	"{\"name\":\"gre\",\"type\":[\"null\",\"int\"],\"default\":null},"
	"{\"name\":\"toefl\",\"type\":[\"null\",\"int\"],\"default\":null},"
	"{\"name\":\"cpga\",\"type\":[\"null\",\"double\"],\"default\":null},"
	"{\"name\":\"admit_chance\",\"type\":[\"null\",\"double\"],"
	"\"default\":null}],"
	"\"connect.name\":\"dbserver1.public.admission.Value\"}]";

/* text is an Avro schema protocol/avro_compat reads (the registry's). */
static void assert_avro_parses(const char *text)
{
	char err[256];
	struct ac_schema *a =
		ac_parse(text, strlen(text), true, err, sizeof(err));
	cr_assert_not_null(a, "%s", err);
	ac_free(a);
}

Test(cdc_avro, seed_unwrapped_value_schema)
{
	struct cdc_opts o = {.prefix = "dbserver1",
			     .dbname = "students",
			     .key_conv = CONV_STRING,
			     .value_conv = CONV_AVRO,
			     .unwrap = true};
	struct cdc_rel r;
	rel_init(&r, "dbserver1.public.admission", admission_cols, 5);
	cdc_rel_schemas(&o, &r);
	cr_assert_null(r.key_avro); /* StringConverter keys */
	cr_assert_str_eq(r.value_avro, admission_value);
	cr_assert_eq(r.value_id, -1);
	assert_avro_parses(r.value_avro);
	cdc_rel_schemas_free(&r);
}

Test(cdc_avro, envelope_names_each_record_once)
{
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "d",
			     .key_conv = CONV_AVRO,
			     .value_conv = CONV_AVRO};
	struct cdc_rel r;
	rel_init(&r, "p.public.admission", admission_cols, 5);
	cdc_rel_schemas(&o, &r);
	cr_assert_str_eq(r.key_avro,
			 "{\"type\":\"record\",\"name\":\"Key\",\"namespace\":"
			 "\"p.public.admission\",\"fields\":[{\"name\":"
			 "\"student_id\",\"type\":\"int\"}],\"connect.name\":"
			 "\"p.public.admission.Key\"}");
	const char *v = r.value_avro;
	cr_assert(strncmp(v,
			  "{\"type\":\"record\",\"name\":\"Envelope\","
			  "\"namespace\":\"p.public.admission\",\"fields\":["
			  "{\"name\":\"before\",\"type\":[\"null\",{\"type\":"
			  "\"record\",\"name\":\"Value\",\"fields\":",
			  150) == 0,
		  "%s", v);
	cr_assert_not_null(strstr(v, "{\"name\":\"after\",\"type\":[\"null\","
				     "\"Value\"],\"default\":null}"));
	cr_assert_not_null(
		strstr(v, "{\"name\":\"source\",\"type\":{\"type\":\"record\","
			  "\"name\":\"Source\",\"namespace\":"
			  "\"io.debezium.connector.postgresql\""));
	cr_assert_not_null(strstr(
		v, "{\"name\":\"snapshot\",\"type\":[{\"type\":\"string\","
		   "\"connect.version\":1,\"connect.parameters\":{\"allowed\":"
		   "\"true,last,false,incremental\"},\"connect.default\":"
		   "\"false\",\"connect.name\":\"io.debezium.data.Enum\"},"
		   "\"null\"],\"default\":\"false\"}"));
	cr_assert_not_null(strstr(
		v, "{\"name\":\"transaction\",\"type\":[\"null\",{\"type\":"
		   "\"record\",\"name\":\"ConnectDefault\",\"namespace\":"
		   "\"io.confluent.connect.avro\""));
	char err[256];
	struct ac_schema *a = ac_parse(v, strlen(v), true, err, sizeof(err));
	cr_assert_not_null(a, "%s", err);
	ac_free(a);
	cdc_rel_schemas_free(&r);
}

/* JsonConverter keys, AvroConverter values, ExtractNewRecordState. */
static struct cdc_opts avro_unwrap(void)
{
	return (struct cdc_opts){.prefix = "p",
				 .dbname = "d",
				 .key_conv = CONV_JSON,
				 .value_conv = CONV_AVRO,
				 .unwrap = true};
}

Test(cdc_avro, decimal_and_int16_properties)
{
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"n", 1700, (10 << 16 | 2) + 4, false, true, false},
		{"s", 21, -1, false, true, false},
	};
	struct cdc_opts o = avro_unwrap();
	struct cdc_rel r;
	rel_init(&r, "p.public.t", cols, 3);
	cdc_rel_schemas(&o, &r);
	cr_assert_not_null(
		strstr(r.value_avro,
		       "{\"name\":\"n\",\"type\":[\"null\",{\"type\":\"bytes\","
		       "\"scale\":2,\"precision\":10,\"connect.version\":1,"
		       "\"connect.parameters\":{\"scale\":\"2\","
		       "\"connect.decimal.precision\":\"10\"},"
		       "\"connect.name\":"
		       "\"org.apache.kafka.connect.data.Decimal\","
		       "\"logicalType\":\"decimal\"}],\"default\":null}"),
		"%s", r.value_avro);
	cr_assert_not_null(
		strstr(r.value_avro,
		       "{\"name\":\"s\",\"type\":[\"null\",{\"type\":\"int\","
		       "\"connect.type\":\"int16\"}],\"default\":null}"));
	cdc_rel_schemas_free(&r);
}

Test(cdc_avro, connect_time_logical_types)
{
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"d", 1082, -1, false, false, false},
		{"t", 1083, -1, false, true, false},
		{"ts", 1114, -1, false, true, false},
	};
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "d",
			     .key_conv = CONV_JSON,
			     .value_conv = CONV_AVRO,
			     .unwrap = true,
			     .time_connect = true};
	struct cdc_rel r;
	rel_init(&r, "p.public.t", cols, 4);
	cdc_rel_schemas(&o, &r);
	const char *want[] = {
		"{\"name\":\"d\",\"type\":{\"type\":\"int\","
		"\"connect.version\":1,\"connect.name\":"
		"\"org.apache.kafka.connect.data.Date\",\"logicalType\":"
		"\"date\"}}",
		"{\"name\":\"t\",\"type\":[\"null\",{\"type\":\"int\","
		"\"connect.version\":1,\"connect.name\":"
		"\"org.apache.kafka.connect.data.Time\",\"logicalType\":"
		"\"time-millis\"}],\"default\":null}",
		"{\"name\":\"ts\",\"type\":[\"null\",{\"type\":\"long\","
		"\"connect.version\":1,\"connect.name\":"
		"\"org.apache.kafka.connect.data.Timestamp\",\"logicalType\":"
		"\"timestamp-millis\"}],\"default\":null}",
	};
	for (size_t i = 0; i < 3; i++)
		cr_assert_not_null(strstr(r.value_avro, want[i]), "%s in %s",
				   want[i], r.value_avro);
	assert_avro_parses(r.value_avro);
	cdc_rel_schemas_free(&r);
}

struct got {
	char *key, *val;
	size_t kl, vl;
	int n;
	bool second_null; /* the second record's value is null */
};

/* emit's bytes are borrowed: copies (NULL stays NULL) */
static char *dup_bytes(const char *p, size_t n)
{
	char *c = p ? malloc(n + 1) : NULL;
	if (c)
		memcpy(c, p, n);
	return c;
}

static void capture(void *arg, const char *key, size_t klen, const char *val,
		    size_t vlen, const struct cdc_header *h, int nh)
{
	(void)h;
	(void)nh;
	struct got *g = arg;
	if (g->n++ == 0) {
		g->key = dup_bytes(key, klen);
		g->val = dup_bytes(val, vlen);
		g->kl = klen;
		g->vl = vlen;
	} else {
		g->second_null = val == NULL && key != NULL;
	}
}

Test(cdc_avro, wire_format_and_binary)
{
	struct cdc_opts o = {.prefix = "dbserver1",
			     .dbname = "students",
			     .key_conv = CONV_AVRO,
			     .value_conv = CONV_AVRO,
			     .unwrap = true};
	struct cdc_rel r;
	rel_init(&r, "dbserver1.public.admission", admission_cols, 5);
	cdc_rel_schemas(&o, &r);
	r.key_id = 7;
	r.value_id = 0x01020304;
	char *row[] = {"1", "337", NULL, "0.5", "0.92", NULL};
	struct cdc_change ch = {.op = 'r', .after = row, .xid = -1};
	struct got g = {0};
	cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), 1);
	/* key: magic, id 7, student_id 1 (zigzag 2) */
	const uint8_t key[] = {0, 0, 0, 0, 7, 2};
	cr_assert_eq(g.kl, sizeof(key));
	cr_assert(memcmp(g.key, key, sizeof(key)) == 0);
	/* value: magic, id, union branch 1 (the record), student_id 1,
	 * gre: branch 1 + 337 (zigzag 674), toefl: branch 0 (null),
	 * cpga: branch 1 + 0.5 LE, admit_chance: branch 1 + 0.92 LE. */
	uint8_t want[64];
	size_t n = 0;
	const uint8_t head[] = {0, 1, 2, 3, 4, 2, 2, 2, 0xa2, 0x05, 0, 2};
	memcpy(want, head, sizeof(head));
	n = sizeof(head);
	double d = 0.5;
	memcpy(want + n, &d, 8);
	n += 8;
	want[n++] = 2;
	d = 0.92;
	memcpy(want + n, &d, 8);
	n += 8;
	cr_assert_eq(g.vl, n);
	cr_assert(memcmp(g.val, want, n) == 0);
	free(g.key);
	free(g.val);
	cdc_rel_schemas_free(&r);
}

Test(cdc_avro, delete_before_with_required_columns)
{
	/* A NOT NULL column that a DEFAULT identity delete leaves out. */
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"code", 25, -1, false, false, false},
		{"n", 20, -1, false, false, false},
	};
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "d",
			     .key_conv = CONV_JSON,
			     .value_conv = CONV_AVRO};
	struct cdc_rel r;
	rel_init(&r, "p.public.t", cols, 3);
	cdc_rel_schemas(&o, &r);
	r.value_id = 3;
	char *row[] = {"5", NULL, NULL, NULL};
	struct cdc_change ch = {.op = 'd', .before = row, .xid = 9};
	struct got g = {0};
	cdc_format(&o, &r, &ch, capture, &g);
	cr_assert_not_null(g.val);
	/* magic, id, before: branch 1, id 5, code "", n 0 */
	const uint8_t head[] = {0, 0, 0, 0, 3, 2, 10, 0, 0};
	cr_assert(g.vl > sizeof(head));
	cr_assert(memcmp(g.val, head, sizeof(head)) == 0);
	free(g.key);
	free(g.val);
	cdc_rel_schemas_free(&r);
}

Test(cdc_avro, tombstone_stays_null)
{
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "d",
			     .key_conv = CONV_AVRO,
			     .value_conv = CONV_AVRO,
			     .tombstones = true};
	struct cdc_rel r;
	rel_init(&r, "p.public.admission", admission_cols, 5);
	cdc_rel_schemas(&o, &r);
	r.key_id = 1;
	r.value_id = 2;
	char *row[] = {"5", NULL, NULL, NULL, NULL, NULL};
	struct cdc_change ch = {.op = 'd', .before = row, .xid = 9};
	struct got g = {0};
	cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), 2);
	/* the first is the delete event; the second (freed) the tombstone */
	cr_assert_not_null(g.val);
	cr_assert_eq((uint8_t)g.val[0], 0);
	cr_assert(g.second_null);
	free(g.key);
	free(g.val);
	cdc_rel_schemas_free(&r);
}

Test(cdc_avro, bytes_from_base64_and_strings)
{
	json_t *s = json_pack("{s:s,s:b}", "type", "bytes", "optional", 0);
	json_t *v = json_string("AQI=");
	struct kb_writer w;
	kb_writer_init(&w);
	cr_assert_eq(cdc_avro_encode(&w, s, v), 0);
	const uint8_t want[] = {4, 1, 2};
	cr_assert_eq(w.len, sizeof(want));
	cr_assert(memcmp(w.buf, want, sizeof(want)) == 0);
	/* null for a required schema: Debezium's fallback, empty bytes */
	cr_assert_eq(cdc_avro_encode(&w, s, json_null()), 0);
	cr_assert_eq(w.len, sizeof(want) + 1);
	cr_assert_eq(w.buf[sizeof(want)], 0);
	/* a number is no bytes */
	json_t *n = json_integer(5);
	cr_assert_eq(cdc_avro_encode(&w, s, n), -1);
	json_decref(n);
	kb_writer_free(&w);
	json_decref(s);
	json_decref(v);
}

/* ch's first record under o (value schema id 3) into g; the value's
 * length. */
static size_t avro_record(const struct cdc_opts *o, struct cdc_col *cols,
			  int ncols, const struct cdc_change *ch, struct got *g)
{
	struct cdc_rel r;
	rel_init(&r, "p.public.t", cols, ncols);
	cdc_rel_schemas(o, &r);
	r.value_id = 3;
	cr_assert_geq(cdc_format(o, &r, ch, capture, g), 1);
	cdc_rel_schemas_free(&r);
	cr_assert_not_null(g->val);
	return g->vl;
}

/* NaN and the infinities are the doubles themselves in Avro (a required
 * NaN was written as 0.0, a nullable infinity as null). */
Test(cdc_avro, nonfinite_doubles)
{
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"f4", 700, -1, false, false, false},
		{"f8", 701, -1, false, true, false},
	};
	struct cdc_opts o = avro_unwrap();
	char *row[] = {"1", "NaN", "-Infinity"};
	struct cdc_change ch = {.op = 'c', .after = row, .xid = 9};
	struct got g = {0};
	/* magic, id 3, union branch 1, id 1, f4 NaN, f8 branch 1 -inf */
	cr_assert_eq(avro_record(&o, cols, 3, &ch, &g), 5 + 1 + 1 + 4 + 1 + 8);
	const uint8_t head[] = {0, 0, 0, 0, 3, 2, 2};
	cr_assert(memcmp(g.val, head, sizeof(head)) == 0);
	float f;
	memcpy(&f, g.val + 7, 4);
	cr_assert(isnan(f));
	cr_assert_eq((uint8_t)g.val[11], 2);
	double d;
	memcpy(&d, g.val + 12, 8);
	cr_assert(isinf(d) && d < 0);
	free(g.key);
	free(g.val);
}

/* A NOT NULL numeric a DEFAULT identity delete leaves out is Debezium's
 * fallback zero: one byte 0, as BigInteger.ZERO.toByteArray() (zero bytes
 * are no BigInteger: Java's AvroConverter threw on them). */
Test(cdc_avro, delete_before_required_decimal_is_zero)
{
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"n", 1700, ((10 << 16) | 2) + 4, false, false, false},
	};
	struct cdc_opts o = avro_unwrap();
	o.unwrap_delete = DEL_REWRITE;
	char *row[] = {"5", NULL};
	struct cdc_change ch = {.op = 'd', .before = row, .xid = 9};
	struct got g = {0};
	avro_record(&o, cols, 2, &ch, &g);
	/* magic, id 3, branch 1, id 5, n: length 1, 0; __deleted */
	const uint8_t want[] = {0, 0, 0, 0, 3, 2, 10, 2, 0};
	cr_assert(g.vl > sizeof(want));
	cr_assert(memcmp(g.val, want, sizeof(want)) == 0);
	free(g.key);
	free(g.val);
}

/* An int[] is AvroData's optional array of optional ints: the schema, and
 * the items in one block (they were a string). */
Test(cdc_avro, int_array)
{
	struct cdc_col cols[] = {
		{"id", 23, -1, true, false, false},
		{"a", 1007, -1, false, true, false},
	};
	struct cdc_opts o = avro_unwrap();
	struct cdc_rel r;
	rel_init(&r, "p.public.t", cols, 2);
	cdc_rel_schemas(&o, &r);
	cr_assert(strstr(r.value_avro,
			 "{\"name\":\"a\",\"type\":[\"null\",{\"type\":"
			 "\"array\",\"items\":[\"null\",\"int\"]}],"
			 "\"default\":null}") != NULL,
		  "%s", r.value_avro);
	assert_avro_parses(r.value_avro);
	cdc_rel_schemas_free(&r);
	char *row[] = {"1", "{7,NULL,-1}"};
	struct cdc_change ch = {.op = 'c', .after = row, .xid = 9};
	struct got g = {0};
	/* magic, id 3, branch 1, id 1, a: branch 1, block of 3: 7 (branch
	 * 1), null (branch 0), -1 (branch 1), end of blocks */
	const uint8_t want[] = {0, 0, 0, 0, 3, 2, 2, 2, 6, 2, 14, 0, 2, 1, 0};
	cr_assert_eq(avro_record(&o, cols, 2, &ch, &g), sizeof(want));
	cr_assert(memcmp(g.val, want, sizeof(want)) == 0);
	free(g.key);
	free(g.val);
}
