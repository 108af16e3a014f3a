/*
 * sink: the JDBC sink's pure parts: Connect and Avro schemas to Postgres
 * types, values as SQL text, the statements, the converters (every
 * truncated prefix of an Avro fixture is a clean error), the config and a
 * record made into a row (the seed's typed key).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/kbuf.h"
#include "storage/sink_cfg.h"
#include "storage/sink_int.h"
#include "storage/sink_sql.h"
#include "tests/support/leak_check.h"

TestSuite(sink, .fini = leak_check, .timeout = 30);

static const char *text_of(struct arena *a, const struct sk_schema *s,
			   struct sk_value v)
{
	char err[200];
	const char *out = NULL;
	v.s = s;
	cr_assert_eq(sk_sql_text(a, &v, &out, err, sizeof(err)), 0, "%s", err);
	return out;
}

Test(sink, types)
{
	struct sk_schema i8 = {.type = SK_INT8}, i32 = {.type = SK_INT32},
			 i64 = {.type = SK_INT64}, f = {.type = SK_FLOAT32},
			 d = {.type = SK_FLOAT64}, b = {.type = SK_BOOLEAN},
			 s = {.type = SK_STRING}, by = {.type = SK_BYTES},
			 st = {.type = SK_STRUCT}, m = {.type = SK_MAP};
	struct sk_schema dec = {
		.type = SK_BYTES,
		.name = "org.apache.kafka.connect.data.Decimal"};
	struct sk_schema ts = {.type = SK_INT64,
			       .name = "io.debezium.time.MicroTimestamp"};
	struct sk_schema zts = {.type = SK_STRING,
				.name = "io.debezium.time.ZonedTimestamp"};
	struct sk_schema arr = {.type = SK_ARRAY, .elem = &i32};
	cr_assert_str_eq(sk_sql_type(&i8), "SMALLINT");
	cr_assert_str_eq(sk_sql_type(&i32), "INT");
	cr_assert_str_eq(sk_sql_type(&i64), "BIGINT");
	cr_assert_str_eq(sk_sql_type(&f), "REAL");
	cr_assert_str_eq(sk_sql_type(&d), "DOUBLE PRECISION");
	cr_assert_str_eq(sk_sql_type(&b), "BOOLEAN");
	cr_assert_str_eq(sk_sql_type(&s), "TEXT");
	cr_assert_str_eq(sk_sql_type(&by), "BYTEA");
	cr_assert_str_eq(sk_sql_type(&dec), "DECIMAL");
	cr_assert_str_eq(sk_sql_type(&ts), "TIMESTAMP");
	cr_assert_str_eq(sk_sql_type(&zts), "TIMESTAMPTZ");
	cr_assert_str_eq(sk_sql_type(&arr), "INT[]");
	cr_assert_null(sk_sql_type(&st));
	cr_assert_null(sk_sql_type(&m));
}

Test(sink, value_text)
{
	struct arena a = {0};
	struct sk_schema dec = {.type = SK_BYTES,
				.name = "org.apache.kafka.connect.data.Decimal",
				.scale = 2};
	struct sk_schema dec0 = dec, dec5 = dec;
	dec0.scale = 0;
	dec5.scale = 5;
	cr_assert_str_eq(
		text_of(&a, &dec, (struct sk_value){.p = "\x30\x39", .n = 2}),
		"123.45");
	cr_assert_str_eq(
		text_of(&a, &dec, (struct sk_value){.p = "\xcf\xc7", .n = 2}),
		"-123.45");
	cr_assert_str_eq(
		text_of(&a, &dec5, (struct sk_value){.p = "\x30\x39", .n = 2}),
		"0.12345");
	cr_assert_str_eq(
		text_of(&a, &dec0, (struct sk_value){.p = "\xff", .n = 1}),
		"-1");
	cr_assert_str_eq(
		text_of(&a, &dec, (struct sk_value){.p = "\x05", .n = 1}),
		"0.05");
	/* Values wider than a word, across the 32-bit limbs they are read
	 * in, with zeros inside the nine-digit groups. */
	cr_assert_str_eq(
		text_of(&a, &dec0,
			(struct sk_value){.p = "\x12\x34\x56\x78\x9a\xbc"
					       "\xde\xf0\x11\x22\x33",
					  .n = 11}),
		"22007822920628982378471987");
	cr_assert_str_eq(
		text_of(&a, &dec0,
			(struct sk_value){.p = "\x80\0\0\0\0\0\0\0\0\0\0",
					  .n = 11}),
		"-154742504910672534362390528");
	cr_assert_str_eq(
		text_of(&a, &dec0,
			(struct sk_value){.p = "\xff\0\0\0\0\0", .n = 6}),
		"-1099511627776");
	cr_assert_str_eq(
		text_of(&a, &dec,
			(struct sk_value){.p = "\x3b\x9a\xca\0", .n = 4}),
		"10000000.00");
	static uint8_t wide[30];
	memset(wide, 0xff, sizeof(wide));
	wide[0] = 0x7f;
	cr_assert_str_eq(
		text_of(&a, &dec0,
			(struct sk_value){.p = (const char *)wide, .n = 30}),
		"88342353238919216479164875037145925791374194843780947906080"
		"3100646309887");
	struct sk_schema date = {.type = SK_INT32,
				 .name = "org.apache.kafka.connect.data.Date"};
	cr_assert_str_eq(text_of(&a, &date, (struct sk_value){.i = 19000}),
			 "2022-01-08");
	cr_assert_str_eq(text_of(&a, &date, (struct sk_value){.i = -1}),
			 "1969-12-31");
	struct sk_schema tm = {.type = SK_INT32,
			       .name = "org.apache.kafka.connect.data.Time"};
	cr_assert_str_eq(text_of(&a, &tm, (struct sk_value){.i = 3723004}),
			 "01:02:03.004000+00");
	struct sk_schema ts = {.type = SK_INT64,
			       .name = "org.apache.kafka.connect.data."
				       "Timestamp"};
	cr_assert_str_eq(
		text_of(&a, &ts, (struct sk_value){.i = 1700000000123LL}),
		"2023-11-14 22:13:20.123000+00");
	cr_assert_str_eq(text_of(&a, &ts, (struct sk_value){.i = -1}),
			 "1969-12-31 23:59:59.999000+00");
	/* before the common era: the offset before BC, as Postgres reads */
	cr_assert_str_eq(
		text_of(&a, &ts, (struct sk_value){.i = -62198755200000LL}),
		"0002-01-01 00:00:00.000000+00 BC");
	struct sk_schema d = {.type = SK_FLOAT64}, b = {.type = SK_BOOLEAN},
			 by = {.type = SK_BYTES}, s = {.type = SK_STRING};
	cr_assert_str_eq(text_of(&a, &d, (struct sk_value){.d = 0.1}),
			 "0.10000000000000001");
	/* values written without printf: the same text as %.17g / %.9g */
	static const double exact[] = {0.0,
				       -0.0,
				       12345.5,
				       -0.25,
				       1e16,
				       1e17,
				       0.0001,
				       0.0001220703125,
				       1.5e-5,
				       4503599627370495.5,
				       99999999999999984.0,
				       123456789.0};
	struct sk_schema f4 = {.type = SK_FLOAT32};
	for (size_t i = 0; i < sizeof(exact) / sizeof(*exact); i++) {
		char want[40];
		snprintf(want, sizeof(want), "%.17g", exact[i]);
		cr_assert_str_eq(
			text_of(&a, &d, (struct sk_value){.d = exact[i]}),
			want);
		float x = (float)exact[i];
		snprintf(want, sizeof(want), "%.9g", (double)x);
		cr_assert_str_eq(
			text_of(&a, &f4, (struct sk_value){.d = (double)x}),
			want);
	}
	cr_assert_str_eq(text_of(&a, &d, (struct sk_value){.d = 1.0 / 0.0}),
			 "Infinity");
	cr_assert_str_eq(text_of(&a, &b, (struct sk_value){.i = 1}), "true");
	cr_assert_str_eq(
		text_of(&a, &by, (struct sk_value){.p = "\x00\xff", .n = 2}),
		"\\x00ff");
	cr_assert_null(text_of(&a, &s, (struct sk_value){.null = true}));
	/* a NUL cannot go into text */
	char err[200];
	const char *out;
	struct sk_value v = {.s = &s, .p = "a\0b", .n = 3};
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	/* arrays as Postgres literals */
	struct sk_schema arr = {.type = SK_ARRAY, .elem = &s};
	struct sk_value items[3] = {{.s = &s, .p = "x", .n = 1},
				    {.s = &s, .p = "a\"b", .n = 3},
				    {.s = &s, .null = true}};
	cr_assert_str_eq(
		text_of(&a, &arr, (struct sk_value){.fields = items, .n = 3}),
		"{\"x\",\"a\\\"b\",NULL}");
	arena_free(&a);
}

/* Scales and times come from the record: out of range is an error, not
 * gigabytes of zeros or an overflow. */
Test(sink, value_text_out_of_range)
{
	struct arena a = {0};
	char err[200];
	const char *out;
	struct sk_schema dec = {.type = SK_BYTES,
				.name = "org.apache.kafka.connect.data.Decimal",
				.scale = 2000000000};
	struct sk_value v = {.s = &dec, .p = "\x01", .n = 1};
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	cr_assert(strstr(err, "scale"), "%s", err);
	dec.scale = -2000000000;
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	dec.scale = 16383;
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(out), 16385);
	/* A value past 4 KiB is refused before it is read (making digits
	 * costs the square of the length, and a 40 kB one held every
	 * listener for seconds). */
	static uint8_t huge[4097];
	memset(huge, 0x11, sizeof(huge));
	dec.scale = 0;
	v.p = (const char *)huge;
	v.n = sizeof(huge);
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	cr_assert(strstr(err, "at most 4096"), "%s", err);
	v.n = 4096;
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(strlen(out), 9863);
	v.p = "\x01";
	v.n = 1;

	/* Debezium's VariableScaleDecimal: the scale is in the value */
	struct sk_schema i32 = {.type = SK_INT32}, by = {.type = SK_BYTES};
	struct sk_field vf[2] = {{"scale", &i32}, {"value", &by}};
	struct sk_schema vsd = {.type = SK_STRUCT,
				.name = "io.debezium.data.VariableScaleDecimal",
				.nfields = 2,
				.fields = vf};
	struct sk_value parts[2] = {{.s = &i32, .i = 1},
				    {.s = &by, .p = "\x7b", .n = 1}};
	cr_assert_str_eq(
		text_of(&a, &vsd, (struct sk_value){.fields = parts, .n = 2}),
		"12.3");
	parts[0].i = INT32_MAX;
	v = (struct sk_value){.s = &vsd, .fields = parts, .n = 2};
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);

	struct sk_schema ts = {.type = SK_INT64,
			       .name = "org.apache.kafka.connect.data."
				       "Timestamp"};
	v = (struct sk_value){.s = &ts, .i = INT64_MAX};
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	cr_assert(strstr(err, "out of range"), "%s", err);
	struct sk_schema date = {.type = SK_INT64,
				 .name = "org.apache.kafka.connect.data.Date"};
	v = (struct sk_value){.s = &date, .i = INT64_MIN};
	cr_assert_eq(sk_sql_text(&a, &v, &out, err, sizeof(err)), -1);
	arena_free(&a);
}

Test(sink, key_text_as_the_value_type)
{
	struct arena a = {0};
	struct sk_schema i32 = {.type = SK_INT32}, d = {.type = SK_FLOAT64};
	char err[200];
	const char *out;
	cr_assert_eq(sk_sql_text_as(&a, &i32, "0", &out, err, sizeof(err)), 0);
	cr_assert_str_eq(out, "0");
	cr_assert_eq(sk_sql_text_as(&a, &i32, "x", &out, err, sizeof(err)), -1);
	cr_assert_eq(
		sk_sql_text_as(&a, &i32, "4294967296", &out, err, sizeof(err)),
		-1);
	cr_assert_eq(sk_sql_text_as(&a, &i32, "", &out, err, sizeof(err)), -1);
	cr_assert_eq(sk_sql_text_as(&a, &d, "1.5", &out, err, sizeof(err)), 0);
	arena_free(&a);
}

Test(sink, statements)
{
	const char *cols[3] = {"\"k\"", "\"a\"", "\"b\""};
	const char *types[3] = {"integer", NULL, "text"};
	char *s = sk_sql_insert("\"t\"", SKM_UPSERT, 1, 3, cols, types, 2);
	cr_assert_str_eq(s,
			 "INSERT INTO \"t\" (\"k\",\"a\",\"b\") VALUES "
			 "($1::integer,$2,$3::text),($4::integer,$5,$6::text)"
			 " ON CONFLICT (\"k\") DO UPDATE SET "
			 "\"a\"=EXCLUDED.\"a\",\"b\"=EXCLUDED.\"b\"");
	free(s);
	s = sk_sql_insert("\"t\"", SKM_UPSERT, 1, 1, cols, types, 1);
	cr_assert_str_eq(s, "INSERT INTO \"t\" (\"k\") VALUES ($1::integer) "
			    "ON CONFLICT (\"k\") DO NOTHING");
	free(s);
	s = sk_sql_insert("t", SKM_INSERT, 0, 2, cols + 1, NULL, 1);
	cr_assert_str_eq(s, "INSERT INTO t (\"a\",\"b\") VALUES ($1,$2)");
	free(s);
	s = sk_sql_delete("\"t\"", 1, cols, types, 3);
	cr_assert_str_eq(s, "DELETE FROM \"t\" WHERE (\"k\") IN "
			    "(($1::integer),($2::integer),($3::integer))");
	free(s);
	s = sk_sql_update("\"t\"", 1, 2, cols, types, 1);
	cr_assert_str_eq(s, "UPDATE \"t\" AS t SET \"a\"=x.\"a\" FROM "
			    "(VALUES ($1::integer,$2)) AS x(\"k\",\"a\") "
			    "WHERE t.\"k\"=x.\"k\"");
	free(s);
	const char *tps[2] = {"INT", "DOUBLE PRECISION"};
	bool nn[2] = {true, false};
	s = sk_sql_create("\"R\"", 2, cols, tps, NULL, nn, 1, cols);
	cr_assert_str_eq(s, "CREATE TABLE IF NOT EXISTS \"R\" (\"k\" INT NOT "
			    "NULL, \"a\" DOUBLE PRECISION NULL, PRIMARY "
			    "KEY(\"k\"))");
	free(s);
	const char *defs[2] = {NULL, "1.5"};
	s = sk_sql_create("\"R\"", 2, cols, tps, defs, nn, 1, cols);
	cr_assert_str_eq(s, "CREATE TABLE IF NOT EXISTS \"R\" (\"k\" INT NOT "
			    "NULL, \"a\" DOUBLE PRECISION DEFAULT '1.5' NULL, "
			    "PRIMARY KEY(\"k\"))");
	free(s);
	s = sk_sql_add_column("\"R\"", "\"x\"", "TEXT", NULL);
	cr_assert_str_eq(s, "ALTER TABLE \"R\" ADD COLUMN IF NOT EXISTS \"x\" "
			    "TEXT NULL");
	free(s);
	s = sk_sql_add_column("\"R\"", "\"x\"", "TEXT", "it's");
	cr_assert_str_eq(s, "ALTER TABLE \"R\" ADD COLUMN IF NOT EXISTS \"x\" "
			    "TEXT DEFAULT 'it''s' NULL");
	free(s);
	/* a backslash: E'' with it doubled, the same text whatever
	 * standard_conforming_strings says */
	s = sk_sql_add_column("\"R\"", "\"x\"", "TEXT",
			      "a\\' ; DROP TABLE t; --\\");
	cr_assert_str_eq(s, "ALTER TABLE \"R\" ADD COLUMN IF NOT EXISTS \"x\" "
			    "TEXT DEFAULT E'a\\\\'' ; DROP TABLE t; --\\\\' "
			    "NULL");
	free(s);
	const char *typ3[3] = {"integer", "bigint", "text"};
	s = sk_sql_insert("\"t\"", SKM_UPSERT, 1, 3, cols, typ3, SK_SQL_ARRAYS);
	cr_assert_str_eq(s, "INSERT INTO \"t\" (\"k\",\"a\",\"b\") SELECT * "
			    "FROM unnest($1::integer[],$2::bigint[],$3::text[])"
			    " ON CONFLICT (\"k\") DO UPDATE SET "
			    "\"a\"=EXCLUDED.\"a\",\"b\"=EXCLUDED.\"b\"");
	free(s);
	s = sk_sql_delete("\"t\"", 1, cols, typ3, SK_SQL_ARRAYS);
	cr_assert_str_eq(s, "DELETE FROM \"t\" WHERE (\"k\") IN (SELECT * FROM "
			    "unnest($1::integer[]))");
	free(s);
	s = sk_sql_update("\"t\"", 1, 2, cols, typ3, SK_SQL_ARRAYS);
	cr_assert_str_eq(s, "UPDATE \"t\" AS t SET \"a\"=x.\"a\" FROM "
			    "unnest($1::integer[],$2::bigint[]) AS "
			    "x(\"k\",\"a\") WHERE t.\"k\"=x.\"k\"");
	free(s);
	const char *texts[6] = {"1", "a", NULL, "b", "x\"y\\z", "c"};
	s = sk_sql_array(texts, 3, 2);
	cr_assert_str_eq(s, "{\"1\",NULL,\"x\\\"y\\\\z\"}");
	free(s);
	s = sk_sql_array(texts, 0, 1);
	cr_assert_str_eq(s, "{}");
	free(s);
	struct arena a = {0};
	cr_assert_str_eq(sk_ident(&a, "a\"b", true), "\"a\"\"b\"");
	cr_assert_str_eq(sk_ident(&a, "ab", false), "ab");
	arena_free(&a);
}

/* The seed's value schema and {RESEARCH: 1, AVE_CHANCE: 0.5}. */
static const char ksql[] =
	"{\"type\":\"record\",\"name\":\"KsqlDataSourceSchema\","
	"\"namespace\":\"io.confluent.ksql.avro_schemas\",\"fields\":["
	"{\"name\":\"RESEARCH\",\"type\":[\"null\",\"int\"],\"default\":null},"
	"{\"name\":\"AVE_CHANCE\",\"type\":[\"null\",\"double\"],"
	"\"default\":null}]}";
static const uint8_t ksql_datum[] = {0x02, 0x02, 0x02, 0,    0,	  0,
				     0,	   0,	 0,    0xe0, 0x3f};

Test(sink, avro_decode_and_truncations)
{
	struct arena sa = {0}, a = {0};
	char err[256];
	struct sk_schema *s = sk_avro_parse(&sa, ksql, err, sizeof(err));
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(s->type, SK_STRUCT);
	cr_assert_eq(s->nfields, 2);
	cr_assert(s->fields[0].schema->optional);
	cr_assert_eq(sk_plain(s->fields[0].schema)->type, SK_INT32);
	struct sk_value v;
	cr_assert_eq(sk_avro_decode(&a, s, ksql_datum, sizeof(ksql_datum), &v,
				    err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(sk_field_get(&v, "RESEARCH")->i, 1);
	cr_assert_eq(sk_field_get(&v, "AVE_CHANCE")->d, 0.5);
	for (size_t n = 0; n < sizeof(ksql_datum); n++)
		cr_assert_eq(sk_avro_decode(&a, s, ksql_datum, n, &v, err,
					    sizeof(err)),
			     -1, "prefix %zu", n);
	/* a union index out of range */
	const uint8_t bad[] = {0x04};
	cr_assert_eq(sk_avro_decode(&a, s, bad, 1, &v, err, sizeof(err)), -1);
	/* logical types and Connect's names */
	struct sk_schema *l = sk_avro_parse(
		&sa,
		"{\"type\":\"record\",\"name\":\"L\",\"fields\":["
		"{\"name\":\"d\",\"type\":{\"type\":\"bytes\",\"logicalType\":"
		"\"decimal\",\"precision\":10,\"scale\":3}},"
		"{\"name\":\"day\",\"type\":{\"type\":\"int\",\"logicalType\":"
		"\"date\"}},"
		"{\"name\":\"us\",\"type\":{\"type\":\"long\",\"connect.name\":"
		"\"io.debezium.time.MicroTimestamp\"}},"
		"{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"E\","
		"\"symbols\":[\"A\",\"B\"]}},"
		"{\"name\":\"again\",\"type\":\"E\"}]}",
		err, sizeof(err));
	cr_assert_not_null(l, "%s", err);
	cr_assert_str_eq(sk_sql_type(l->fields[0].schema), "DECIMAL");
	cr_assert_eq(l->fields[0].schema->scale, 3);
	cr_assert_str_eq(sk_sql_type(l->fields[1].schema), "DATE");
	cr_assert_str_eq(sk_sql_type(l->fields[2].schema), "TIMESTAMP");
	cr_assert_str_eq(sk_sql_type(l->fields[3].schema), "TEXT");
	cr_assert_eq(l->fields[4].schema, l->fields[3].schema);
	/* Entries that take no bytes cannot make a few bytes into gigabytes
	 * (a million nulls from four bytes, nested arrays of them). */
	struct sk_schema *nulls =
		sk_avro_parse(&sa, "{\"type\":\"array\",\"items\":\"null\"}",
			      err, sizeof(err));
	cr_assert_not_null(nulls, "%s", err);
	static const uint8_t ten[] = {0x14, 0x00};
	cr_assert_eq(sk_avro_decode(&a, nulls, ten, sizeof(ten), &v, err,
				    sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(v.n, 10);
	static const uint8_t many[] = {0xc0, 0x9a, 0x0c, 0x00}; /* 100000 */
	cr_assert_eq(sk_avro_decode(&a, nulls, many, sizeof(many), &v, err,
				    sizeof(err)),
		     -1);
	cr_assert(strstr(err, "too long"), "%s", err);
	static const uint8_t most_negative[] = {0xff, 0xff, 0xff, 0xff,
						0xff, 0xff, 0xff, 0xff,
						0xff, 0x01, 0x00};
	cr_assert_eq(sk_avro_decode(&a, nulls, most_negative,
				    sizeof(most_negative), &v, err,
				    sizeof(err)),
		     -1);
	cr_assert(strstr(err, "too long"), "%s", err);
	cr_assert_null(
		sk_avro_parse(&sa, "{\"type\":\"nope\"}", err, sizeof(err)));
	cr_assert_null(sk_avro_parse(&sa, "[", err, sizeof(err)));
	arena_free(&a);
	arena_free(&sa);
}

Test(sink, json_converter)
{
	struct arena a = {0};
	char err[512];
	struct sk_value v;
	const char *j =
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"id\",\"type\":\"int32\"},"
		"{\"field\":\"s\",\"type\":\"string\",\"optional\":true}"
		"]},\"payload\":{\"id\":7,\"s\":null}}";
	cr_assert_eq(sk_json_decode(&a, (const uint8_t *)j, strlen(j), true, &v,
				    err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(sk_field_get(&v, "id")->i, 7);
	cr_assert(sk_field_get(&v, "s")->null);
	/* a required field missing */
	const char *j2 = "{\"schema\":{\"type\":\"struct\",\"fields\":["
			 "{\"field\":\"id\",\"type\":\"int32\"}]},"
			 "\"payload\":{}}";
	cr_assert_eq(sk_json_decode(&a, (const uint8_t *)j2, strlen(j2), true,
				    &v, err, sizeof(err)),
		     -1);
	/* schemas.enable=true without the envelope */
	cr_assert_eq(sk_json_decode(&a, (const uint8_t *)"{\"id\":1}", 8, true,
				    &v, err, sizeof(err)),
		     -1);
	cr_assert(strstr(err, "schemas.enable"));
	/* schemaless: inferred */
	const char *j3 = "{\"id\":1,\"x\":1.5,\"o\":{\"a\":[1]},\"n\":null}";
	cr_assert_eq(sk_json_decode(&a, (const uint8_t *)j3, strlen(j3), false,
				    &v, err, sizeof(err)),
		     0);
	cr_assert_str_eq(sk_sql_type(sk_field_get(&v, "id")->s), "BIGINT");
	cr_assert_str_eq(sk_sql_type(sk_field_get(&v, "x")->s),
			 "DOUBLE PRECISION");
	cr_assert_str_eq(sk_sql_type(sk_field_get(&v, "o")->s), "JSONB");
	cr_assert_eq(sk_json_decode(&a, (const uint8_t *)"{", 1, false, &v, err,
				    sizeof(err)),
		     -1);
	arena_free(&a);
}

/* sk_json_decode, or with jc sk_json_decode_cached, of j with schemas. */
static int decode_either(struct sk_jcache *jc, struct arena *a, const char *j,
			 struct sk_value *v, char *err, size_t errlen)
{
	if (!jc)
		return sk_json_decode(a, (const uint8_t *)j, strlen(j), true, v,
				      err, errlen);
	return sk_json_decode_cached(jc, a, (const uint8_t *)j, strlen(j), true,
				     v, err, errlen);
}

/* A Decimal given as a JSON number is its text, as Connect's BigDecimal
 * reads it: not a double's (0.1 was 0.10000000000000001), and integers
 * past int64 (which jansson refuses) too; in arrays, under escaped or
 * repeated member names; with and without the schema cache. */
#define DEC                                                                    \
	"\"type\":\"bytes\",\"optional\":true,\"name\":"                       \
	"\"org.apache.kafka.connect.data.Decimal\",\"parameters\":{"           \
	"\"scale\":\"2\"}"
Test(sink, json_decimal_numbers_exact)
{
	static const char *const nums[] = {
		"12.34",
		"0.1",
		"123456789012345678901234.56",
		"-98765432109876543210987654321",
		"9223372036854775808",
		"1.5e3",
		"-0.000001",
	};
	struct sk_jcache *jc = sk_jcache_new();
	cr_assert_not_null(jc);
	for (int round = 0; round < 3; round++)
		for (size_t i = 0; i < sizeof(nums) / sizeof(*nums); i++) {
			struct arena a = {0};
			char err[512];
			struct sk_value v;
			const char *x = nums[i];
			char *j = arena_printf(
				&a,
				"{\"schema\":{\"type\":\"struct\",\"fields\":["
				"{\"field\":\"id\",\"type\":\"int64\"},"
				"{\"field\":\"d\"," DEC "},"
				"{\"field\":\"e\"," DEC "},"
				"{\"field\":\"a\",\"type\":\"array\","
				"\"items\":{" DEC "}}]},"
				"\"payload\":{\"e\":[1.5],\"id\":%s0,"
				"\"d\":7.25,\"\\u0064\":%s,\"x\":{\"d\":1},"
				"\"e\" : %s , \"a\":[\"AQ==\",%s, %s ,null]}}",
				i == 4 ? "9" : "", x, x, x, x);
			int rc = decode_either(round ? jc : NULL, &a, j, &v,
					       err, sizeof(err));
			cr_assert_eq(rc, 0, "%s: %s", x, err);
			const char *t;
			cr_assert_eq(sk_sql_text(&a, sk_field_get(&v, "d"), &t,
						 err, sizeof(err)),
				     0);
			cr_assert_str_eq(t, x);
			cr_assert_eq(sk_sql_text(&a, sk_field_get(&v, "e"), &t,
						 err, sizeof(err)),
				     0);
			cr_assert_str_eq(t, x);
			const struct sk_value *arr = sk_field_get(&v, "a");
			cr_assert_eq(arr->n, 4);
			const char *want[] = {"0.01", x, x, NULL};
			for (int k = 0; k < 4; k++) {
				cr_assert_eq(sk_sql_text(&a, &arr->fields[k],
							 &t, err, sizeof(err)),
					     0);
				cr_assert((!t && !want[k]) ||
						  strcmp(t, want[k]) == 0,
					  "%s: %s", x, t);
			}
			arena_free(&a);
		}
	sk_jcache_free(jc);
}

/* Each object's members are found once, not once a Decimal field: 40000
 * Decimal fields (half their names escaped, in reverse order) decode in
 * well under the suite's 30 s (they took minutes, each field rescanning
 * the object and unescaping its names). */
Test(sink, json_many_decimals_linear)
{
	enum { N = 40000 };
	struct arena a = {0};
	struct kb_writer w;
	kb_writer_init(&w);
	kb_write_raw(&w, "{\"schema\":{\"type\":\"struct\",\"fields\":[",
		     strlen("{\"schema\":{\"type\":\"struct\",\"fields\":["));
	char buf[256];
	for (int i = 0; i < N; i++) {
		int n = snprintf(buf, sizeof(buf),
				 "%s{\"field\":\"f%d\"," DEC "}", i ? "," : "",
				 i);
		kb_write_raw(&w, buf, (size_t)n);
	}
	kb_write_raw(&w, "]},\"payload\":{", strlen("]},\"payload\":{"));
	for (int i = N - 1; i >= 0; i--) {
		/* \u0066 is f */
		int n = snprintf(buf, sizeof(buf), "\"%s%d\":%d.%02d%s",
				 i % 2 ? "\\u0066" : "f", i, i, i % 100,
				 i ? "," : "");
		kb_write_raw(&w, buf, (size_t)n);
	}
	kb_write_raw(&w, "}}", strlen("}}"));
	cr_assert(kb_writer_ok(&w));
	char err[512];
	struct sk_value v;
	cr_assert_eq(
		sk_json_decode(&a, w.buf, w.len, true, &v, err, sizeof(err)), 0,
		"%s", err);
	for (int i = 0; i < N; i += 7777) {
		char name[16], want[32];
		snprintf(name, sizeof(name), "f%d", i);
		snprintf(want, sizeof(want), "%d.%02d", i, i % 100);
		const char *t;
		cr_assert_eq(sk_sql_text(&a, sk_field_get(&v, name), &t, err,
					 sizeof(err)),
			     0);
		cr_assert_str_eq(t, want);
	}
	kb_writer_free(&w);
	arena_free(&a);
}

/* A null (or missing) field with a default is its default, as
 * JsonConverter's convertToConnect gives schema.defaultValue(); a field
 * without one stays null.  Flat payloads (decoded without jansson) and
 * others, with and without the schema cache. */
Test(sink, json_null_takes_default)
{
	static const char *const extra[] = {
		"",
		",{\"field\":\"d\",\"type\":\"bytes\",\"optional\":true,"
		"\"name\":\"org.apache.kafka.connect.data.Decimal\","
		"\"parameters\":{\"scale\":\"2\"},\"default\":\"MDk=\"}",
	};
	struct sk_value v;
	char err[512];
	struct sk_jcache *jc = sk_jcache_new();
	cr_assert_not_null(jc);
	/* each payload three times: parsed, then from the cache */
	for (int k = 0; k < 6; k++) {
		size_t i = (size_t)k % 2;
		struct arena a = {0};
		char *j = arena_printf(
			&a,
			"{\"schema\":{\"type\":\"struct\",\"fields\":["
			"{\"field\":\"id\",\"type\":\"int32\"},"
			"{\"field\":\"dflt\",\"type\":\"int32\","
			"\"default\":5},"
			"{\"field\":\"s\",\"type\":\"string\","
			"\"optional\":true,\"default\":\"abc\"},"
			"{\"field\":\"n\",\"type\":\"int32\","
			"\"optional\":true,\"default\":null}%s]},"
			"\"payload\":{\"id\":1,\"dflt\":null,"
			"\"n\":null}}",
			extra[i]);
		int rc = decode_either(k > 1 ? jc : NULL, &a, j, &v, err,
				       sizeof(err));
		cr_assert_eq(rc, 0, "%zu: %s", i, err);
		const struct sk_value *f = sk_field_get(&v, "dflt");
		cr_assert(!f->null && f->i == 5);
		f = sk_field_get(&v, "s");
		cr_assert(!f->null && f->n == 3 && memcmp(f->p, "abc", 3) == 0);
		cr_assert(sk_field_get(&v, "n")->null);
		const char *t;
		if (i) {
			cr_assert_eq(sk_sql_text(&a, sk_field_get(&v, "d"), &t,
						 err, sizeof(err)),
				     0);
			cr_assert_str_eq(t, "123.45");
		}
		arena_free(&a);
	}
	/* replace.null.with.default=false: a null is null, and a required
	 * field's null an error, as JsonConverter has it */
	struct arena a = {0};
	static const char opt[] =
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"s\",\"type\":\"string\",\"optional\":true,"
		"\"default\":\"abc\"}]},\"payload\":{\"s\":null}}";
	static const char req[] =
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"i\",\"type\":\"int32\",\"default\":5}]},"
		"\"payload\":{}}";
	for (int k = 0; k < 4; k++) {
		struct sk_jcache *c = k % 2 ? jc : NULL;
		int flags = SK_JSON_SCHEMAS | SK_JSON_NULLS;
		const char *in = k < 2 ? opt : req;
		int rc = c ? sk_json_decode_cached(c, &a, (const uint8_t *)in,
						   strlen(in), flags, &v, err,
						   sizeof(err))
			   : sk_json_decode(&a, (const uint8_t *)in, strlen(in),
					    flags, &v, err, sizeof(err));
		if (k < 2) {
			cr_assert_eq(rc, 0, "%s", err);
			cr_assert(sk_field_get(&v, "s")->null);
		} else {
			cr_assert_eq(rc, -1);
			cr_assert(strstr(err, "Invalid null value"), "%s", err);
		}
	}
	arena_free(&a);
	sk_jcache_free(jc);
}

/* The same value (as SQL text) or the same error, with and without the
 * schema cache: every input twice, so the second one hits the cache. */
#define FLAT                                                                   \
	"{\"schema\":{\"type\":\"struct\",\"fields\":["                        \
	"{\"field\":\"i\",\"type\":\"int32\",\"optional\":true},"              \
	"{\"field\":\"l\",\"type\":\"int64\"},"                                \
	"{\"field\":\"d\",\"type\":\"double\",\"optional\":true},"             \
	"{\"field\":\"f\",\"type\":\"float\",\"optional\":true},"              \
	"{\"field\":\"b\",\"type\":\"boolean\",\"optional\":true},"            \
	"{\"field\":\"s\",\"type\":\"string\",\"optional\":true}]},"
Test(sink, json_schema_cache_same_as_full_parse)
{
	static const char *in[] = {
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"id\",\"type\":\"int64\"},"
		"{\"field\":\"a\",\"type\":\"string\",\"optional\":true}]},"
		"\"payload\":{\"id\":7,\"a\":\"x\\\"}{,\"}}",
		" { \"payload\" : {\"a\":null,\"id\":-3} , \"schema\" : "
		"{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"id\",\"type\":\"int64\"},"
		"{\"field\":\"a\",\"type\":\"string\",\"optional\":true}]} }\n",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":5}",
		"{\"schema\":{\"type\":\"string\",\"optional\":true},"
		"\"payload\":null}",
		"{\"schema\":{\"type\":\"array\",\"items\":{\"type\":\"int8\"}}"
		","
		"\"payload\":[1,2,[3]]}",
		/* required field missing */
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"id\",\"type\":\"int32\"}]},\"payload\":{}}",
		/* duplicate member: jansson keeps the last */
		"{\"schema\":{\"type\":\"int32\"},\"payload\":1,"
		"\"payload\":2}",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":1,\"x\":2}",
		"{\"schema\":null,\"payload\":{\"id\":1}}",
		"{\"schema\":{\"type\":\"nope\"},\"payload\":1}",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":1",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":1}x",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":tru}",
		"{\"schema\":{\"type\":\"int32\"}},\"payload\":1}",
		"{\"schema\":{\"type\":\"int32\",},\"payload\":1}",
		"{\"schema\":[{\"type\":\"int32\"}],\"payload\":1}",
		"{\"sch\\u0065ma\":{\"type\":\"int32\"},\"payload\":1}",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":\"1}",
		"{\"schema\":{\"type\":\"int32\"},\"payload\":}",
		"",
		"[]",
		/* flat payloads, decoded without jansson */
		FLAT "\"payload\":{\"i\":1,\"l\":-9223372036854775808,"
		     "\"d\":0.1,\"f\":-2.5e-3,\"b\":true,\"s\":\"row-1\"}}",
		FLAT "\"payload\":{ \"l\" : 3 , \"d\" : 7 , \"b\":false,"
		     "\"x\":[1,{}],\"s\":\"\"}}",
		FLAT "\"payload\":{\"l\":3,\"l\":4,\"i\":null,\"zz\":1}}",
		FLAT "\"payload\":{\"l\":9223372036854775808}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1e999}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1e-999}}",
		FLAT "\"payload\":{\"l\":1,\"d\":\"NaN\"}}",
		FLAT "\"payload\":{\"l\":1.0}}",
		/* numbers read without strtod, and those just past that */
		FLAT "\"payload\":{\"l\":-0,\"d\":-0.0,\"f\":0.1}}",
		FLAT "\"payload\":{\"l\":-999999999999999,"
		     "\"d\":0.30000000000000004,\"f\":16777217}}",
		FLAT "\"payload\":{\"l\":1000000000000000,"
		     "\"d\":99999999999999.9,\"f\":3.4028235e38}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1234567890.12345,"
		     "\"f\":-1234.5}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1234567890.123456}}",
		FLAT "\"payload\":{\"l\":1,\"d\":0.000000000000001}}",
		FLAT "\"payload\":{\"l\":1,\"d\":0.0000000000000001}}",
		FLAT "\"payload\":{\"l\":1,\"d\":12345.5,\"f\":0.0001}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1e16,\"f\":1e9}}",
		FLAT "\"payload\":{\"l\":1,\"d\":1e17,\"f\":999999999}}",
		FLAT "\"payload\":{\"l\":1,\"d\":0.00006103515625}}",
		FLAT "\"payload\":{\"l\":01}}",
		FLAT "\"payload\":{\"l\":-}}",
		FLAT "\"payload\":{\"l\":1.}}",
		FLAT "\"payload\":{\"l\":1,\"s\":7}}",
		FLAT "\"payload\":{\"l\":1,\"b\":1}}",
		FLAT "\"payload\":{\"l\":1,\"b\":tru}}",
		FLAT "\"payload\":{\"l\":1,\"s\":\"a\\\"b\\u00e9\"}}",
		FLAT "\"payload\":{\"l\":1,\"s\":\"caf\xc3\xa9\"}}",
		FLAT "\"payload\":{\"l\":1,\"s\":\"\xff\"}}",
		FLAT "\"payload\":{\"l\":1,\"s\":\"a\tb\"}}",
		FLAT "\"payload\":{\"i\":1}}",
		FLAT "\"payload\":{}}",
		FLAT "\"payload\":{\"l\":1,}}",
		FLAT "\"payload\":{\"l\":1 \"i\":2}}",
		FLAT "\"payload\":null}",
		FLAT "\"payload\":[]}",
	};
	struct sk_jcache *jc = sk_jcache_new();
	cr_assert_not_null(jc);
	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(in) / sizeof(*in); i++) {
			struct arena a = {0};
			char e1[512] = "", e2[512] = "";
			struct sk_value v1, v2;
			size_t n = strlen(in[i]);
			int r1 = sk_json_decode(&a, (const uint8_t *)in[i], n,
						true, &v1, e1, sizeof(e1));
			int r2 = sk_json_decode_cached(
				jc, &a, (const uint8_t *)in[i], n, true, &v2,
				e2, sizeof(e2));
			cr_assert_eq(r1, r2, "%zu: %d %d (%s / %s)", i, r1, r2,
				     e1, e2);
			if (r1 < 0) {
				cr_assert_str_eq(e1, e2, "%zu", i);
				arena_free(&a);
				continue;
			}
			const struct sk_schema *s1 = sk_plain(v1.s),
					       *s2 = sk_plain(v2.s);
			cr_assert_eq(s1->type, s2->type, "%zu", i);
			cr_assert_eq(v1.null, v2.null, "%zu", i);
			size_t nf = s1->type == SK_STRUCT ? v1.n : 0;
			cr_assert_eq(v1.n, v2.n, "%zu", i);
			for (size_t f = 0; f <= nf; f++) {
				const struct sk_value *x = nf ? &v1.fields[f]
							      : &v1,
						      *y = nf ? &v2.fields[f]
							      : &v2;
				if (nf && f == nf)
					break;
				const char *t1, *t2;
				char err[200];
				if (sk_plain(x->s)->type == SK_ARRAY)
					continue;
				cr_assert_eq(sk_sql_text(&a, x, &t1, err,
							 sizeof(err)),
					     0);
				cr_assert_eq(sk_sql_text(&a, y, &t2, err,
							 sizeof(err)),
					     0);
				cr_assert((!t1 && !t2) || (t1 && t2 &&
							   strcmp(t1, t2) == 0),
					  "%zu: %s / %s", i, t1, t2);
			}
			arena_free(&a);
		}
	sk_jcache_trim(jc);
	sk_jcache_free(jc);
	sk_jcache_free(NULL);
}

/* More schemas than the cache takes: the rest parse each time, alike. */
Test(sink, json_schema_cache_full)
{
	struct sk_jcache *jc = sk_jcache_new();
	cr_assert_not_null(jc);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < 100; i++) {
			struct arena a = {0};
			char err[512];
			struct sk_value v;
			char *j = arena_printf(
				&a,
				"{\"schema\":{\"type\":\"struct\",\"name\":"
				"\"s%d\",\"fields\":[{\"field\":\"id\","
				"\"type\":\"int64\"}]},\"payload\":{\"id\":%d}"
				"}",
				i, i);
			cr_assert_eq(sk_json_decode_cached(jc, &a,
							   (const uint8_t *)j,
							   strlen(j), true, &v,
							   err, sizeof(err)),
				     0, "%s", err);
			cr_assert_eq(sk_field_get(&v, "id")->i, i);
			arena_free(&a);
		}
		cr_assert(sk_jcache_full(jc));
		if (round == 1)
			sk_jcache_trim(jc);
	}
	sk_jcache_free(jc);
}

static json_t *seed_config(void)
{
	return json_pack(
		"{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "connector.class",
		"io.confluent.connect.jdbc.JdbcSinkConnector", "topics",
		"RESEARCH_AVE_BOOST", "key.converter",
		"org.apache.kafka.connect.storage.StringConverter",
		"value.converter", "io.confluent.connect.avro.AvroConverter",
		"connection.url",
		"jdbc:postgresql://postgres:5432/students?user=postgres&"
		"password=p%27w",
		"auto.create", "true", "insert.mode", "upsert", "pk.fields",
		"RESEARCH", "pk.mode", "record_key");
}

Test(sink, config)
{
	json_t *j = seed_config();
	struct sink_cfg c;
	char key[64], err[512];
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(c.conninfo,
			 "host='postgres' port='5432' "
			 "dbname='students' "
			 "options='-c TimeZone=UTC' user='postgres' "
			 "password='p\\'w'");
	cr_assert_eq(c.mode, SKM_UPSERT);
	cr_assert_eq(c.pk, PK_RECORD_KEY);
	cr_assert_eq(c.batch_size, 3000);
	cr_assert_eq(c.retry_backoff_ms, 3000);
	cr_assert(!c.key_nulls && !c.value_nulls);
	/* pgJDBC's TLS parameters go to libpq; others are left out. */
	json_t *tls = json_deep_copy(j);
	json_object_set_new(
		tls, "connection.url",
		json_string("jdbc:postgresql://h/d?sslmode=verify-"
			    "full&sslrootcert=/ca.pem&loggerLevel=OFF"
			    "&sslcert=c.pem&sslkey=k.pem"));
	struct sink_cfg t;
	cr_assert_eq(
		sink_cfg_parse(tls, &t, key, sizeof(key), err, sizeof(err)), 0,
		"%s", err);
	cr_assert_str_eq(
		t.conninfo,
		"host='h' port='5432' dbname='d' sslmode='verify-full' "
		"sslrootcert='/ca.pem' sslcert='c.pem' sslkey='k.pem' "
		"options='-c TimeZone=UTC'");
	cr_assert_str_eq(t.url_ignored, "loggerLevel");
	sink_cfg_free(&t);
	/* currentSchema is the search_path, options go as they are, and
	 * what else samsa does not use is named (for a warning) */
	json_object_set_new(
		tls, "connection.url",
		json_string("jdbc:postgresql://h/d?currentSchema=my%20s,"
			    "public&options=-c%20statement_timeout%3D5000"
			    "&prepareThreshold=0&tcpKeepAlive"));
	cr_assert_eq(
		sink_cfg_parse(tls, &t, key, sizeof(key), err, sizeof(err)), 0,
		"%s", err);
	cr_assert_str_eq(t.conninfo,
			 "host='h' port='5432' dbname='d' options='-c "
			 "search_path=my\\\\ s,public -c "
			 "statement_timeout=5000 -c TimeZone=UTC'");
	cr_assert_str_eq(t.url_ignored, "prepareThreshold, tcpKeepAlive");
	sink_cfg_free(&t);
	cr_assert_null(c.url_ignored);
	/* ssl=true alone is pgJDBC's verify-full, not libpq's prefer */
	static const char *const ssl[][2] = {
		{"?ssl=true", "sslmode='verify-full'"},
		{"?ssl&sslfactory=org.postgresql.ssl.NonValidatingFactory",
		 "sslmode='require'"},
		{"?ssl=true&sslmode=disable", "sslmode='disable'"},
		{"?ssl=false", NULL},
	};
	for (size_t i = 0; i < sizeof(ssl) / sizeof(ssl[0]); i++) {
		char url[200];
		snprintf(url, sizeof(url), "jdbc:postgresql://h/d%s",
			 ssl[i][0]);
		json_object_set_new(tls, "connection.url", json_string(url));
		cr_assert_eq(sink_cfg_parse(tls, &t, key, sizeof(key), err,
					    sizeof(err)),
			     0, "%s", err);
		if (ssl[i][1])
			cr_assert_not_null(strstr(t.conninfo, ssl[i][1]),
					   "%s: %s", url, t.conninfo);
		else
			cr_assert_null(strstr(t.conninfo, "sslmode"), "%s",
				       url);
		const char *m = strstr(t.conninfo, "sslmode");
		cr_assert(!m || !strstr(m + 1, "sslmode"), "%s", t.conninfo);
		sink_cfg_free(&t);
	}
	json_decref(tls);
	cr_assert(c.quote);
	char schema[64], table[64];
	sink_cfg_table(&c, "a.b.c", schema, sizeof(schema), table,
		       sizeof(table));
	cr_assert_str_eq(schema, "b");
	cr_assert_str_eq(table, "c");
	sink_cfg_free(&c);
	/* upsert needs a key; deletes need record_key */
	json_object_set_new(j, "pk.mode", json_string("none"));
	cr_assert_eq(
		sink_cfg_parse(j, NULL, key, sizeof(key), err, sizeof(err)),
		-1);
	cr_assert_str_eq(key, "pk.mode");
	json_object_set_new(j, "pk.mode", json_string("record_value"));
	json_object_set_new(j, "delete.enabled", json_string("true"));
	cr_assert_eq(
		sink_cfg_parse(j, NULL, key, sizeof(key), err, sizeof(err)),
		-1);
	cr_assert_str_eq(key, "delete.enabled");
	json_object_del(j, "delete.enabled");
	json_object_set_new(j, "value.converter.replace.null.with.default",
			    json_string("false"));
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert(!c.key_nulls && c.value_nulls);
	sink_cfg_free(&c);
	json_object_set_new(j, "connection.url",
			    json_string("jdbc:mysql://h/db"));
	cr_assert_eq(
		sink_cfg_parse(j, NULL, key, sizeof(key), err, sizeof(err)),
		-1);
	json_decref(j);
	/* Debezium's names and defaults */
	j = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "connector.class",
		      "io.debezium.connector.jdbc.JdbcSinkConnector",
		      "topics.regex", "srv\\.public\\..*", "connection.url",
		      "jdbc:postgresql://h/db", "connection.username", "u",
		      "primary.key.mode", "record_key", "schema.evolution",
		      "basic");
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert(c.debezium && c.has_regex && c.auto_create && !c.quote);
	cr_assert_eq(c.batch_size, 500);
	cr_assert_str_eq(c.conninfo, "host='h' port='5432' dbname='db' "
				     "options='-c TimeZone=UTC' user='u'");
	sink_cfg_table(&c, "srv.public.t", schema, sizeof(schema), table,
		       sizeof(table));
	cr_assert_str_eq(schema, "");
	cr_assert_str_eq(table, "srv_public_t");
	sink_cfg_free(&c);
	json_decref(j);
	/* topics.regex is a Java regex, matched against the whole name */
	j = json_pack("{s:s,s:s,s:s}", "connector.class",
		      "io.confluent.connect.jdbc.JdbcSinkConnector",
		      "topics.regex", "(?:orders|items)-\\d+", "connection.url",
		      "jdbc:postgresql://h/db");
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert(c.has_regex);
	cr_assert_eq(regexec(&c.regex, "orders-12", 0, NULL, 0), 0);
	cr_assert_neq(regexec(&c.regex, "orders-x", 0, NULL, 0), 0);
	cr_assert_neq(regexec(&c.regex, "old-orders-12", 0, NULL, 0), 0);
	sink_cfg_free(&c);
	json_decref(j);
}

/* The session's TimeZone: UTC, or db.timezone (database.time_zone) as
 * Postgres reads a zone. */
Test(sink, config_time_zone)
{
	static const char *const zones[][3] = {
		{"db.timezone", NULL, "-c TimeZone=UTC"},
		{"db.timezone", "America/New_York",
		 "-c TimeZone=America/New_York"},
		{"db.timezone", "Z", "-c TimeZone=UTC"},
		{"db.timezone", "+05:30", "-c TimeZone=<+0530>-05:30"},
		{"db.timezone", "UTC-3", "-c TimeZone=<-0300>+03:00"},
		{"database.time_zone", "Europe/Paris",
		 "-c TimeZone=Europe/Paris"},
		{"db.timezone", "New York", NULL},
		{"db.timezone", "+5:3", NULL},
		{"db.timezone", "Europe/Paris'", NULL},
	};
	for (size_t i = 0; i < sizeof(zones) / sizeof(*zones); i++) {
		json_t *j = json_pack("{s:s,s:s,s:s}", "connector.class",
				      "io.confluent.connect.jdbc."
				      "JdbcSinkConnector",
				      "topics", "t", "connection.url",
				      "jdbc:postgresql://h/db");
		if (zones[i][1])
			json_object_set_new(j, zones[i][0],
					    json_string(zones[i][1]));
		struct sink_cfg c;
		char key[64], err[512];
		int rc = sink_cfg_parse(j, &c, key, sizeof(key), err,
					sizeof(err));
		json_decref(j);
		if (!zones[i][2]) {
			cr_assert_eq(rc, -1, "%s", zones[i][1]);
			cr_assert_str_eq(key, "db.timezone");
			continue;
		}
		cr_assert_eq(rc, 0, "%s: %s", zones[i][1], err);
		char want[128];
		snprintf(want, sizeof(want), "options='%s'", zones[i][2]);
		cr_assert_not_null(strstr(c.conninfo, want), "%s: %s",
				   zones[i][1], c.conninfo);
		sink_cfg_free(&c);
	}
}

/* Debezium's ${source.db|schema|table}: from the record's source block;
 * a tombstone has none (left alone), a record without one fails. */
Test(sink, collection_name_from_source)
{
	json_t *j =
		json_pack("{s:s,s:s,s:s,s:s,s:s}", "connector.class",
			  "io.debezium.connector.jdbc.JdbcSinkConnector",
			  "topics", "a.b", "connection.url",
			  "jdbc:postgresql://h/db", "collection.name.format",
			  "${source.schema}.${source.table}_${topic}",
			  "value.converter.schemas.enable", "true");
	struct sink_cfg c;
	char key[64], err[512], full[256];
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert(c.by_source);
	const char *src[3] = {"d", "inv", "items"};
	cr_assert_eq(sink_cfg_name(&c, "a.b", src, full, sizeof(full)), 0);
	cr_assert_str_eq(full, "inv.items_a_b");
	char schema[64], table[64];
	sink_cfg_split(full, schema, sizeof(schema), table, sizeof(table));
	cr_assert_str_eq(schema, "inv");
	cr_assert_str_eq(table, "items_a_b");
	src[1] = NULL;
	cr_assert_eq(sink_cfg_name(&c, "a.b", src, full, sizeof(full)), -1);
	struct arena a = {0};
	struct sk_row row;
	struct sk_fault f;
	static const char env[] =
		"{\"schema\":{\"type\":\"struct\",\"fields\":["
		"{\"field\":\"op\",\"type\":\"string\"},"
		"{\"field\":\"after\",\"type\":\"struct\",\"fields\":["
		"{\"field\":\"id\",\"type\":\"int32\"}]},"
		"{\"field\":\"source\",\"type\":\"struct\",\"fields\":["
		"{\"field\":\"schema\",\"type\":\"string\"},"
		"{\"field\":\"table\",\"type\":\"string\"}]}]},"
		"\"payload\":{\"op\":\"c\",\"after\":{\"id\":1},"
		"\"source\":{\"schema\":\"inv\",\"table\":\"items\"}}}";
	cr_assert_eq(sink_row(&c, &a, "a.b", 0, 1, 0, NULL, -1,
			      (const uint8_t *)env, sizeof(env) - 1, NULL, NULL,
			      &row, &f),
		     0, "%s", f.message);
	cr_assert_str_eq(row.table, "inv.items_a_b");
	cr_assert_eq(sink_row(&c, &a, "a.b", 0, 2, 0, NULL, -1, NULL, -1, NULL,
			      NULL, &row, &f),
		     0);
	cr_assert_eq(row.op, 's');
	cr_assert_eq(
		sink_row(&c, &a, "a.b", 0, 3, 0, NULL, -1,
			 (const uint8_t *)"{\"schema\":null,\"payload\":{}}",
			 28, NULL, NULL, &row, &f),
		-1);
	cr_assert(strstr(f.message, "Failed to resolve table name"), "%s",
		  f.message);
	sink_cfg_free(&c);
	/* Confluent's table.name.format has no such placeholders */
	json_object_set_new(j, "connector.class",
			    json_string("io.confluent.connect.jdbc."
					"JdbcSinkConnector"));
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	cr_assert(!c.by_source);
	sink_cfg_free(&c);
	json_decref(j);
	arena_free(&a);
}

/* ${source.*} and field names are the producer's text: unquoted
 * (Debezium's default) they must be plain identifiers, else the record
 * fails; quoted they are written as they are. */
static int source_row(bool quote, const char *table, const char *field,
		      struct sk_row *row, struct sk_fault *f)
{
	json_t *j = json_pack(
		"{s:s,s:s,s:s,s:s,s:s,s:s}", "connector.class",
		"io.debezium.connector.jdbc.JdbcSinkConnector", "topics", "t",
		"connection.url", "jdbc:postgresql://h/db",
		"collection.name.format", "${source.schema}.${source.table}",
		"value.converter.schemas.enable", "true", "quote.identifiers",
		quote ? "true" : "false");
	struct sink_cfg c;
	char key[64], err[512], env[2048];
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0, "%s", err);
	json_decref(j);
	snprintf(env, sizeof(env),
		 "{\"schema\":{\"type\":\"struct\",\"fields\":["
		 "{\"field\":\"op\",\"type\":\"string\"},"
		 "{\"field\":\"after\",\"type\":\"struct\",\"fields\":["
		 "{\"field\":\"%s\",\"type\":\"int32\"}]},"
		 "{\"field\":\"source\",\"type\":\"struct\",\"fields\":["
		 "{\"field\":\"schema\",\"type\":\"string\"},"
		 "{\"field\":\"table\",\"type\":\"string\"}]}]},"
		 "\"payload\":{\"op\":\"c\",\"after\":{\"%s\":1},"
		 "\"source\":{\"schema\":\"inv\",\"table\":\"%s\"}}}",
		 field, field, table);
	static struct arena a;
	int rc = sink_row(&c, &a, "t", 0, 1, 0, NULL, -1, (const uint8_t *)env,
			  (int32_t)strlen(env), NULL, NULL, row, f);
	sink_cfg_free(&c);
	return rc;
}

Test(sink, source_names_unquoted_are_plain)
{
	struct sk_row row;
	struct sk_fault f;
	cr_assert_eq(source_row(false, "Items_2$x", "id", &row, &f), 0, "%s",
		     f.message);
	cr_assert_str_eq(row.table, "inv.Items_2$x");
	static const char *const bad[] = {
		"x AS SELECT * FROM secrets --",
		"a;b",
		"1a",
		"",
		"a-b",
		"x\\\"y",
		"caf\xc3\xa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		cr_assert_eq(source_row(false, bad[i], "id", &row, &f), -1,
			     "%s", bad[i]);
		cr_assert(strstr(f.message, "is not a plain identifier"), "%s",
			  f.message);
		cr_assert_eq(source_row(true, bad[i], "id", &row, &f), 0,
			     "%s: %s", bad[i], f.message);
	}
	cr_assert_eq(source_row(false, "items", "id) VALUES (1); --", &row, &f),
		     -1);
	cr_assert(strstr(f.message, "Column name"), "%s", f.message);
	cr_assert_eq(source_row(true, "items", "id) VALUES (1); --", &row, &f),
		     0, "%s", f.message);
}

static struct sk_schema *the_schema;
static const struct sk_schema *lookup(void *arg, int32_t id)
{
	(void)arg;
	return id == 1 ? the_schema : NULL;
}

Test(sink, seed_row_key_typed_by_value)
{
	struct arena sa = {0}, a = {0};
	char err[256];
	the_schema = sk_avro_parse(&sa, ksql, err, sizeof(err));
	json_t *j = seed_config();
	struct sink_cfg c;
	char key[64];
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0);
	uint8_t val[5 + sizeof(ksql_datum)] = {0, 0, 0, 0, 1};
	memcpy(val + 5, ksql_datum, sizeof(ksql_datum));
	struct sk_row row;
	struct sk_fault f;
	cr_assert_eq(sink_row(&c, &a, "T", 0, 5, 0, (const uint8_t *)"1", 1,
			      val, sizeof(val), lookup, NULL, &row, &f),
		     0, "%s", f.message);
	cr_assert_eq(row.op, 'u');
	cr_assert_eq(row.nkey, 1);
	cr_assert_eq(row.nval, 1);
	cr_assert_str_eq(row.cols[0].name, "RESEARCH");
	cr_assert_str_eq(sk_sql_type(row.cols[0].s), "INT");
	cr_assert_str_eq(row.cols[0].text, "1");
	cr_assert_str_eq(row.cols[1].name, "AVE_CHANCE");
	cr_assert_str_eq(row.cols[1].text, "0.5");
	/* a key that is no int */
	cr_assert_eq(sink_row(&c, &a, "T", 0, 6, 0, (const uint8_t *)"x", 1,
			      val, sizeof(val), lookup, NULL, &row, &f),
		     -1);
	cr_assert_str_eq(f.stage, "TASK_PUT");
	/* an unknown schema id */
	val[4] = 9;
	cr_assert_eq(sink_row(&c, &a, "T", 0, 7, 0, (const uint8_t *)"1", 1,
			      val, sizeof(val), lookup, NULL, &row, &f),
		     -1);
	cr_assert(f.schema_missing);
	cr_assert_str_eq(f.stage, "VALUE_CONVERTER");
	/* a tombstone without delete.enabled is an error; with it, a delete */
	cr_assert_eq(sink_row(&c, &a, "T", 0, 8, 0, (const uint8_t *)"1", 1,
			      NULL, -1, lookup, NULL, &row, &f),
		     -1);
	sink_cfg_free(&c);
	json_object_set_new(j, "delete.enabled", json_string("true"));
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0);
	cr_assert_eq(sink_row(&c, &a, "T", 0, 8, 0, (const uint8_t *)"1", 1,
			      NULL, -1, lookup, NULL, &row, &f),
		     0);
	cr_assert_eq(row.op, 'd');
	cr_assert_eq(row.nkey, 1);
	cr_assert_str_eq(row.cols[0].text, "1");
	sink_cfg_free(&c);
	/* ksqlDB 0.10 and later: a 4-byte big-endian INT key */
	json_object_set_new(j, "key.converter",
			    json_string("org.apache.kafka.connect.converters."
					"IntegerConverter"));
	cr_assert_eq(sink_cfg_parse(j, &c, key, sizeof(key), err, sizeof(err)),
		     0);
	val[4] = 1;
	cr_assert_eq(sink_row(&c, &a, "T", 0, 9, 0,
			      (const uint8_t *)"\xff\xff\xff\xfe", 4, val,
			      sizeof(val), lookup, NULL, &row, &f),
		     0, "%s", f.message);
	cr_assert_str_eq(sk_sql_type(row.cols[0].s), "INT");
	cr_assert_str_eq(row.cols[0].text, "-2");
	cr_assert_eq(sink_row(&c, &a, "T", 0, 9, 0, (const uint8_t *)"1", 1,
			      val, sizeof(val), lookup, NULL, &row, &f),
		     -1);
	cr_assert_str_eq(f.stage, "KEY_CONVERTER");
	sink_cfg_free(&c);
	json_decref(j);
	arena_free(&a);
	arena_free(&sa);
}
