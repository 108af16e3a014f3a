/*
 * cdc_event: the records Debezium's JsonConverter and StringConverter make
 * of a change, written directly (cdc_format with rel->render) against the
 * jansson-tree reference (cdc_format_tree) byte for byte, over the
 * converters, the transform's options and the column types; and golden
 * texts for a few rows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "storage/cdc_int.h"
#include "tests/support/leak_check.h"

TestSuite(cdc_event, .fini = leak_check);

#define MAXREC 4

struct recs {
	int n;
	char *key[MAXREC], *val[MAXREC];
	size_t kl[MAXREC], vl[MAXREC];
	char hdrs[MAXREC][512]; /* "name=value;" each, "name;" for null */
};

/* emit's bytes are borrowed: copies, NUL-terminated (NULL stays NULL) */
static char *dup_bytes(const char *p, size_t n)
{
	char *c = p ? malloc(n + 1) : NULL;
	if (c) {
		memcpy(c, p, n);
		c[n] = '\0';
	}
	return c;
}

static void capture(void *arg, const char *key, size_t klen, const char *val,
		    size_t vlen, const struct cdc_header *h, int nh)
{
	struct recs *g = arg;
	cr_assert_lt(g->n, MAXREC);
	char *out = g->hdrs[g->n];
	out[0] = '\0';
	for (int i = 0; i < nh; i++) {
		size_t used = strlen(out);
		if (h[i].value.len < 0)
			snprintf(out + used, 512 - used, "%.*s;", h[i].key.len,
				 h[i].key.ptr);
		else
			snprintf(out + used, 512 - used, "%.*s=%.*s;",
				 h[i].key.len, h[i].key.ptr, h[i].value.len,
				 h[i].value.ptr);
	}
	g->key[g->n] = dup_bytes(key, klen);
	g->val[g->n] = dup_bytes(val, vlen);
	g->kl[g->n] = klen;
	g->vl[g->n] = vlen;
	g->n++;
}

static void recs_free(struct recs *g)
{
	for (int i = 0; i < g->n; i++) {
		free(g->key[i]);
		free(g->val[i]);
	}
	memset(g, 0, sizeof(*g));
}

static bool same_bytes(const char *a, size_t al, const char *b, size_t bl)
{
	if ((a == NULL) != (b == NULL))
		return false;
	return al == bl && (!a || memcmp(a, b, al) == 0);
}

static bool recs_equal(const struct recs *a, const struct recs *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++)
		if (!same_bytes(a->key[i], a->kl[i], b->key[i], b->kl[i]) ||
		    !same_bytes(a->val[i], a->vl[i], b->val[i], b->vl[i]) ||
		    strcmp(a->hdrs[i], b->hdrs[i]) != 0)
			return false;
	return true;
}

static void rel_init(struct cdc_rel *r, struct cdc_col *cols, int ncols)
{
	memset(r, 0, sizeof(*r));
	r->schema = "public";
	r->table = "t\"ab";
	r->topic = "p.public.t_ab";
	r->cols = cols;
	r->ncols = ncols;
	r->replident = 'd';
	r->included = true;
}

static int64_t fixed_clock(void)
{
	return 1795707522927;
}

/* Both renderers on one change, on a clock that stands still so that the
 * envelope's ts_ms cannot tick between the two calls. */
static void check_same(const struct cdc_opts *o, const struct cdc_rel *r,
		       const struct cdc_change *ch, const char *what)
{
	cdc_clock_ms = fixed_clock;
	struct recs fast = {0}, tree = {0};
	int nf = cdc_format(o, r, ch, capture, &fast);
	int nt = cdc_format_tree(o, r, ch, capture, &tree);
	bool ok = nf == nt && recs_equal(&fast, &tree);
	if (!ok) {
		for (int i = 0; i < fast.n || i < tree.n; i++)
			fprintf(stderr,
				"%s #%d\n fast %.*s | %.*s\n tree "
				"%.*s | %.*s\n",
				what, i, (int)fast.kl[i],
				fast.key[i] ? fast.key[i] : "", (int)fast.vl[i],
				fast.val[i] ? fast.val[i] : "", (int)tree.kl[i],
				tree.key[i] ? tree.key[i] : "", (int)tree.vl[i],
				tree.val[i] ? tree.val[i] : "");
		cr_assert_fail("%s: %d records vs %d, or bytes differ", what,
			       nf, nt);
	}
	recs_free(&fast);
	recs_free(&tree);
}

/* Postgres type oids */
enum { BOOL_ = 16, BYTEA = 17, INT8 = 20, INT2 = 21, INT4 = 23, TEXT = 25 };
enum { JSONB = 3802, FLOAT4 = 700, FLOAT8 = 701, DATE = 1082, TIME = 1083 };
enum { TS = 1114, TSTZ = 1184, TIMETZ = 1266, NUMERIC = 1700, UUID = 2950 };

static struct cdc_col all_cols[] = {
	{"id", INT4, -1, true, false, false},
	{"code", TEXT, -1, true, false, false},
	{"b", BOOL_, -1, false, true, false},
	{"s", INT2, -1, false, true, false},
	{"big", INT8, -1, false, true, false},
	{"f4", FLOAT4, -1, false, true, false},
	{"f8", FLOAT8, -1, false, true, false},
	{"num", NUMERIC, ((10 << 16) | 2) + 4, false, true, false},
	{"vnum", NUMERIC, -1, false, true, false},
	{"d", DATE, -1, false, true, false},
	{"tm", TIME, -1, false, true, false},
	{"tm3", TIME, 3, false, true, false},
	{"ts", TS, -1, false, true, false},
	{"ts3", TS, 3, false, true, false},
	{"tstz", TSTZ, -1, false, true, false},
	{"ttz", TIMETZ, -1, false, true, false},
	{"bin", BYTEA, -1, false, true, false},
	{"u", UUID, -1, false, true, false},
	{"j", JSONB, -1, false, true, false},
	{"na\xc3\xafve \"q\"", TEXT, -1, false, true, false},
	{"ia", 1007, -1, false, true, false}, /* int4[] */
	{"fa", 1021, -1, false, true, false}, /* float4[] */
	{"iv", 1186, -1, false, true, false}, /* interval */
	{"mo", 790, -1, false, false, false}, /* money NOT NULL */
};
#define NALL ((int)(sizeof(all_cols) / sizeof(*all_cols)))

static char *rows[][NALL] = {
	{"1",
	 "a",
	 "t",
	 "-3",
	 "9223372036854775807",
	 "1.5",
	 "337",
	 "12.30",
	 "-0.000123",
	 "2024-01-02",
	 "13:14:15.123456",
	 "13:14:15.5",
	 "2024-01-02 03:04:05.678",
	 "1969-12-31 23:59:59.9995",
	 "2024-01-02 03:04:05.5+00",
	 "13:14:15.5+02",
	 "\\x00ff10",
	 "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
	 "{\"k\": [1, 2]}",
	 "plain",
	 "{1,NULL,-3}",
	 "{1.1,NaN,-0}",
	 "1 year 2 mons -3 days 04:05:06.5",
	 "$1,234.56"},
	{"2",
	 "quote\" back\\ nl\n tab\t ctl\x01\x1f del\x7f",
	 "f",
	 NULL,
	 "-9223372036854775808",
	 "NaN",
	 "-Infinity",
	 "-1.50",
	 "123456789012345678901234567890.5",
	 "0044-03-15 BC",
	 "00:00:00",
	 "23:59:59.999",
	 "2024-02-29 00:00:00",
	 "0001-01-01 00:00:00",
	 "2024-01-02 03:04:05-07",
	 "00:00:00-03:30",
	 "\\x",
	 NULL,
	 "[]",
	 "\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 /",
	 "{}",
	 "{{1,2},{3}}",
	 "-00:00:01.5",
	 "-$0.01"},
	{"3",		"bad \xff utf8",
	 NULL,		"32767",
	 "0",		"3.4028235e+38",
	 "1e-300",	"0",
	 "NaN",		NULL,
	 NULL,		NULL,
	 NULL,		NULL,
	 NULL,		NULL,
	 "not hex",	NULL,
	 NULL,		"\xed\xa0\x80 surrogate",
	 "[0:1]={7,8}", NULL,
	 NULL,		NULL},
	{"4",
	 "x",
	 "t",
	 "1",
	 "2",
	 "-0",
	 "0.1",
	 NULL,
	 "1000.000",
	 "2000-01-01",
	 "12:00:00",
	 "12:00:00",
	 "2000-01-01 00:00:00",
	 "2000-01-01 00:00:00",
	 "2000-01-01 00:00:00+00",
	 "12:00:00+00",
	 "\\x4142",
	 "00000000-0000-0000-0000-000000000000",
	 "null",
	 (char *)cdc_unchanged,
	 (char *)cdc_unchanged,
	 (char *)cdc_unchanged,
	 "00:00:00",
	 "$0.00"},
};
#define NROWS ((int)(sizeof(rows) / sizeof(*rows)))

static void changes(const struct cdc_opts *o, const struct cdc_rel *r,
		    const char *what)
{
	char label[256];
	for (int i = 0; i < NROWS; i++) {
		char **row = rows[i], **other = rows[(i + 1) % NROWS];
		struct cdc_change chs[] = {
			{.op = 'r',
			 .after = row,
			 .xid = -1,
			 .lsn = 77,
			 .commit_lsn = 77,
			 .commit_ms = 1700000000000,
			 .snapshot = true},
			{.op = 'r',
			 .after = row,
			 .xid = -1,
			 .lsn = 77,
			 .commit_lsn = 77,
			 .commit_ms = 1700000000001,
			 .snapshot = true,
			 .last_snapshot = true},
			{.op = 'c',
			 .after = row,
			 .xid = 745,
			 .lsn = 1000,
			 .commit_lsn = 2000,
			 .commit_ms = 1700000000002},
			{.op = 'u',
			 .after = row,
			 .xid = 746,
			 .lsn = 0x8000000000000001ull,
			 .commit_lsn = 5,
			 .commit_ms = 3},
			{.op = 'u',
			 .before = other,
			 .after = row,
			 .xid = 7,
			 .lsn = 9,
			 .commit_lsn = 10,
			 .commit_ms = 4},
			{.op = 'd',
			 .before = row,
			 .xid = 8,
			 .lsn = 11,
			 .commit_lsn = 12,
			 .commit_ms = 5},
			{.op = 'd',
			 .before = NULL,
			 .xid = 8,
			 .lsn = 11,
			 .commit_lsn = 12,
			 .commit_ms = 5},
			{.op = 't',
			 .xid = 9,
			 .lsn = 13,
			 .commit_lsn = 14,
			 .commit_ms = 6},
		};
		for (size_t c = 0; c < sizeof(chs) / sizeof(*chs); c++) {
			snprintf(label, sizeof(label), "%s row %d change %zu",
				 what, i, c);
			check_same(o, r, &chs[c], label);
		}
	}
}

static char *add_all[] = {"op",		 "source.ts_ms", "ts_ms",
			  "table",	 "lsn",		 "source.sequence",
			  "source.txId", "source.xmin",	 "db",
			  "name",	 "snapshot",	 "version",
			  "connector",	 "schema",	 "source.nope",
			  NULL};

Test(cdc_event, direct_matches_tree)
{
	enum cdc_conv convs[] = {CONV_JSON, CONV_STRING};
	enum cdc_delete dels[] = {DEL_DROP, DEL_NONE, DEL_REWRITE};
	enum cdc_decimal decs[] = {DEC_PRECISE, DEC_DOUBLE, DEC_STRING};
	int combos = 0;
	for (int kc = 0; kc < 2; kc++)
		for (int vc = 0; vc < 2; vc++)
			for (int sch = 0; sch < 4; sch++)
				for (int uw = 0; uw < 5; uw++) {
					struct cdc_opts o = {
						.prefix = "p",
						.dbname = "d\xc3\xa9",
						.tombstones = uw != 1,
						.key_conv = convs[kc],
						.value_conv = convs[vc],
						.key_schemas = sch & 1,
						.value_schemas = sch & 2,
						.decimal = decs[(kc + uw) % 3],
						.time_connect = uw == 2,
						.time_micro = uw == 3,
						.binary_base64 = uw >= 3,
						.binary_hex = uw == 4,
						.unwrap = uw >= 2,
						.unwrap_drop_tombstones =
							uw == 3,
						.unwrap_delete = dels[uw % 3],
						.add_fields = uw >= 3 ? add_all
								      : NULL,
						.add_headers = uw >= 2 ? add_all
								       : NULL};
					struct cdc_rel r;
					rel_init(&r, all_cols, NALL);
					cdc_rel_schemas(&o, &r);
					cr_assert_not_null(r.render);
					char what[64];
					snprintf(what, sizeof(what),
						 "k%d v%d s%d u%d", kc, vc, sch,
						 uw);
					changes(&o, &r, what);
					cdc_rel_schemas_free(&r);
					combos++;
				}
	cr_assert_eq(combos, 80);
}

Test(cdc_event, keyless_and_colliding_names)
{
	struct cdc_col cols[] = {
		{"v", TEXT, -1, false, true, false},
		{"__op", TEXT, -1, false, true, false},
	};
	char *add[] = {"op", NULL};
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "d",
			     .tombstones = true,
			     .key_conv = CONV_JSON,
			     .value_conv = CONV_JSON,
			     .unwrap = true,
			     .unwrap_delete = DEL_REWRITE,
			     .add_fields = add};
	struct cdc_rel r;
	rel_init(&r, cols, 2);
	cdc_rel_schemas(&o, &r);
	/* "__op" is a column and a transform's field: the tree path */
	cr_assert_null(r.render);
	changes(&o, &r, "colliding");
	cdc_rel_schemas_free(&r);
	o.add_fields = NULL;
	rel_init(&r, cols, 2);
	cdc_rel_schemas(&o, &r);
	cr_assert_not_null(r.render);
	cr_assert_null(r.key_schema);
	changes(&o, &r, "keyless");
	cdc_rel_schemas_free(&r);
}

/* The bench's and the README's shape: StringConverter keys, schemaless
 * JsonConverter values, ExtractNewRecordState. */
Test(cdc_event, golden_unwrapped)
{
	struct cdc_col cols[] = {
		{"id", INT8, -1, true, false, false},
		{"t_us", INT8, -1, false, false, false},
		{"note", TEXT, -1, false, true, false},
		{"price", FLOAT8, -1, false, true, false},
	};
	char *headers[] = {"op",      "source.txId",	 "source.table",
			   "nothing", "source.sequence", NULL};
	struct cdc_opts o = {.prefix = "samsa",
			     .dbname = "cdcbench",
			     .tombstones = true,
			     .key_conv = CONV_STRING,
			     .value_conv = CONV_JSON,
			     .unwrap = true,
			     .unwrap_drop_tombstones = true,
			     .add_headers = headers};
	struct cdc_rel r;
	rel_init(&r, cols, 4);
	r.table = "ev";
	r.topic = "samsa.public.ev";
	cdc_rel_schemas(&o, &r);
	cr_assert_not_null(r.render);
	char *row1[] = {"1", "1700000000000000", "x", "337", NULL};
	char *row2[] = {"2", "-5", "a \"b\"\n", NULL, NULL};
	struct cdc_change c1 = {.op = 'c', .after = row1, .xid = 5};
	struct cdc_change c2 = {.op = 'u', .after = row2, .xid = 6};
	struct cdc_change d2 = {.op = 'd', .before = row2, .xid = 7};
	struct recs g = {0};
	cr_assert_eq(cdc_format(&o, &r, &c1, capture, &g), 1);
	cr_assert_eq(cdc_format(&o, &r, &c2, capture, &g), 1);
	cr_assert_eq(cdc_format(&o, &r, &d2, capture, &g), 0);
	cr_assert_eq(g.n, 2);
	cr_assert_eq(g.kl[0], strlen("Struct{id=1}"));
	cr_assert(memcmp(g.key[0], "Struct{id=1}", g.kl[0]) == 0);
	const char *v1 = "{\"id\":1,\"t_us\":1700000000000000,\"note\":\"x\","
			 "\"price\":337.0}";
	cr_assert_eq(g.vl[0], strlen(v1), "%.*s", (int)g.vl[0], g.val[0]);
	cr_assert(memcmp(g.val[0], v1, g.vl[0]) == 0);
	const char *v2 = "{\"id\":2,\"t_us\":-5,\"note\":\"a \\\"b\\\"\\n\","
			 "\"price\":null}";
	cr_assert_eq(g.vl[1], strlen(v2), "%.*s", (int)g.vl[1], g.val[1]);
	cr_assert(memcmp(g.val[1], v2, g.vl[1]) == 0);
	/* add.headers: text values, null for a field the envelope lacks */
	cr_assert_str_eq(g.hdrs[0],
			 "__op=c;__source_txId=5;__source_table=ev;__nothing;"
			 "__source_sequence=[\"0\",\"0\"];");
	cr_assert_str_eq(g.hdrs[1],
			 "__op=u;__source_txId=6;__source_table=ev;__nothing;"
			 "__source_sequence=[\"0\",\"0\"];");
	recs_free(&g);
	cdc_rel_schemas_free(&r);
}

/* The envelope under JsonConverter with schemas: the source struct's
 * fixed and per-change fields in Debezium's order. */
Test(cdc_event, golden_envelope_source)
{
	struct cdc_col cols[] = {{"id", INT4, -1, true, false, false}};
	struct cdc_opts o = {.prefix = "p",
			     .dbname = "db",
			     .key_conv = CONV_JSON,
			     .value_conv = CONV_STRING};
	struct cdc_rel r;
	rel_init(&r, cols, 1);
	r.table = "t";
	cdc_rel_schemas(&o, &r);
	char *row[] = {"7", NULL};
	struct cdc_change c = {.op = 'c',
			       .after = row,
			       .xid = 12,
			       .lsn = 34,
			       .commit_lsn = 56,
			       .commit_ms = 78};
	struct recs g = {0};
	cr_assert_eq(cdc_format(&o, &r, &c, capture, &g), 1);
	cr_assert_eq(g.kl[0], strlen("{\"id\":7}"));
	cr_assert(memcmp(g.key[0], "{\"id\":7}", g.kl[0]) == 0);
	const char *head =
		"Struct{after=Struct{id=7},source=Struct{version=1.9.7.Final,"
		"connector=postgresql,name=p,ts_ms=78,snapshot=false,db=db,"
		"sequence=[\"56\",\"34\"],schema=public,table=t,txId=12,"
		"lsn=34},op=c,ts_ms=";
	cr_assert(g.vl[0] > strlen(head));
	cr_assert(memcmp(g.val[0], head, strlen(head)) == 0, "%.*s",
		  (int)g.vl[0], g.val[0]);
	recs_free(&g);
	cdc_rel_schemas_free(&r);
}

/* One change of row through o (either renderer: they must agree); the
 * value's text into out. */
static void value_text(const struct cdc_opts *o, struct cdc_col *cols,
		       int ncols, const struct cdc_change *ch, char *out,
		       size_t n)
{
	struct cdc_rel r;
	rel_init(&r, cols, ncols);
	cdc_rel_schemas(o, &r);
	check_same(o, &r, ch, "value_text");
	struct recs g = {0};
	cdc_clock_ms = fixed_clock;
	cr_assert_geq(cdc_format(o, &r, ch, capture, &g), 1);
	snprintf(out, n, "%.*s", (int)g.vl[0], g.val[0] ? g.val[0] : "");
	recs_free(&g);
	cdc_rel_schemas_free(&r);
}

/* ch (op, row) through o: its value's text must be want. */
static void expect_value(const struct cdc_opts *o, struct cdc_col *cols,
			 int ncols, char op, char **row, const char *want)
{
	struct cdc_change ch = {.op = op, .xid = 1};
	if (op == 'd')
		ch.before = row;
	else
		ch.after = row;
	char got[1024];
	value_text(o, cols, ncols, &ch, got, sizeof(got));
	cr_assert_str_eq(got, want);
}

/* The options of the tests below: JsonConverter keys and schemaless
 * values, ExtractNewRecordState. */
static struct cdc_opts unwrap_json(void)
{
	return (struct cdc_opts){.prefix = "p",
				 .dbname = "d",
				 .key_conv = CONV_JSON,
				 .value_conv = CONV_JSON,
				 .unwrap = true};
}

/* NaN and the infinities of float4, float8 and numeric as a double: the
 * strings Jackson writes for them under JsonConverter, Java's words in
 * Struct text (the fields were left out). */
Test(cdc_event, nonfinite_doubles)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"f4", FLOAT4, -1, false, false, false},
		{"f8", FLOAT8, -1, false, true, false},
		{"n", NUMERIC, -1, false, true, false},
	};
	char *row[] = {"1", "NaN", "Infinity", "-Infinity"};
	struct cdc_opts o = unwrap_json();
	o.decimal = DEC_DOUBLE;
	expect_value(&o, cols, 4, 'c', row,
		     "{\"id\":1,\"f4\":\"NaN\",\"f8\":\"Infinity\","
		     "\"n\":\"-Infinity\"}");
	o.value_conv = CONV_STRING;
	expect_value(&o, cols, 4, 'c', row,
		     "Struct{id=1,f4=NaN,f8=Infinity,n=-Infinity}");
}

/* A delete's before-image under REPLICA IDENTITY DEFAULT holds only the
 * key: the NOT NULL columns get the type's fallback, as Debezium's
 * JdbcValueConverters.convertValue gives them (they were null under a
 * required schema, which JsonConverter refuses to read). */
Test(cdc_event, required_columns_missing_from_before)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"b", BOOL_, -1, false, false, false},
		{"i", INT8, -1, false, false, false},
		{"f", FLOAT8, -1, false, false, false},
		{"n", NUMERIC, ((10 << 16) | 2) + 4, false, false, false},
		{"vn", NUMERIC, -1, false, false, false},
		{"d", DATE, -1, false, false, false},
		{"t", TIME, -1, false, false, false},
		{"ts", TS, -1, false, false, false},
		{"tz", TSTZ, -1, false, false, false},
		{"ttz", TIMETZ, -1, false, false, false},
		{"by", BYTEA, -1, false, false, false},
		{"tx", TEXT, -1, false, false, false},
		{"o", TEXT, -1, false, true, false},
	};
	char *row[14] = {"5"};
	struct cdc_opts o = unwrap_json();
	o.unwrap_delete = DEL_REWRITE;
	expect_value(&o, cols, 14, 'd', row,
		     "{\"id\":5,\"b\":false,\"i\":0,\"f\":0.0,"
		     "\"n\":\"AA==\",\"vn\":{\"scale\":0,\"value\":"
		     "\"AA==\"},\"d\":0,\"t\":0,\"ts\":0,\"tz\":"
		     "\"1970-01-01T00:00:00Z\",\"ttz\":\"00:00:00Z\","
		     "\"by\":\"\",\"tx\":\"\",\"o\":null,"
		     "\"__deleted\":\"true\"}");
	o.decimal = DEC_STRING;
	o.value_conv = CONV_STRING;
	expect_value(&o, cols, 14, 'd', row,
		     "Struct{id=5,b=false,i=0,f=0.0,n=0.00,vn=0,d=0,"
		     "t=0,ts=0,tz=1970-01-01T00:00:00Z,ttz=00:00:00Z,"
		     "by=,tx=,__deleted=true}");
}

/* An unchanged TOASTed bytea is the placeholder's bytes in a bytes field
 * (base64 in JSON, as Debezium's getToastPlaceholderBinary), the text in
 * a string one (hex); the placeholder text was not base64. */
Test(cdc_event, unchanged_toast_in_bytea)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"b", BYTEA, -1, false, true, false},
		{"t", TEXT, -1, false, true, false},
	};
	char *row[] = {"1", (char *)cdc_unchanged, (char *)cdc_unchanged};
	struct cdc_opts o = unwrap_json();
	expect_value(&o, cols, 3, 'u', row,
		     "{\"id\":1,\"b\":\"X19kZWJleml1bV91bmF2YWlsYWJs"
		     "ZV92YWx1ZQ==\",\"t\":\"__debezium_unavailable_"
		     "value\"}");
	o.binary_base64 = o.binary_hex = true;
	expect_value(&o, cols, 3, 'u', row,
		     "{\"id\":1,\"b\":\"__debezium_unavailable_value\","
		     "\"t\":\"__debezium_unavailable_value\"}");
}

/* infinity and -infinity in dates and timestamps are Debezium 1.9's
 * sentinels (they were 1970-01-01): pgjdbc's DATE_POSITIVE_INFINITY and
 * DATE_NEGATIVE_INFINITY as µs (÷ 1000 for ms), the epoch days of its
 * infinite LocalDates; a timestamptz stays "infinity". */
Test(cdc_event, infinite_dates_and_timestamps)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"d", DATE, -1, false, true, false},
		{"ts", TS, -1, false, true, false},
		{"ts3", TS, 3, false, true, false},
		{"tz", TSTZ, -1, false, true, false},
	};
	char *pos[] = {"1", "infinity", "infinity", "infinity", "infinity"};
	char *neg[] = {"2", "-infinity", "-infinity", "-infinity", "-infinity"};
	struct cdc_opts o = unwrap_json();
	expect_value(&o, cols, 5, 'c', pos,
		     "{\"id\":1,\"d\":-2147472692,"
		     "\"ts\":9223372036825200000,"
		     "\"ts3\":9223372036825200,\"tz\":\"infinity\"}");
	expect_value(&o, cols, 5, 'c', neg,
		     "{\"id\":2,\"d\":-2147472691,"
		     "\"ts\":-9223372036832400000,"
		     "\"ts3\":-9223372036832400,\"tz\":\"-infinity\"}");
	o.time_connect = true;
	expect_value(&o, cols, 5, 'c', neg,
		     "{\"id\":2,\"d\":-2147472691,"
		     "\"ts\":-9223372036832400,"
		     "\"ts3\":-9223372036832400,\"tz\":\"-infinity\"}");
}

/* A date or time that does not parse stops the change, as Debezium's
 * DateTimeFormat throws: no record, an error naming it (it was
 * 1970-01-01). */
Test(cdc_event, unparsable_date_is_an_error)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"d", DATE, -1, false, true, false},
		{"ts", TS, -1, false, true, false},
	};
	char *bad[][3] = {{"1", "epoch", NULL},
			  {"1", NULL, "2024-01-02"},
			  {"1", NULL, "2024-01-02 3:04"}};
	for (size_t i = 0; i < 3; i++) {
		struct cdc_change ch = {.op = 'c', .after = bad[i], .xid = 1};
		struct cdc_opts o = unwrap_json();
		struct cdc_rel r;
		rel_init(&r, cols, 3);
		cdc_rel_schemas(&o, &r);
		check_same(&o, &r, &ch, "unparsable");
		struct recs g = {0};
		cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), -1);
		cr_assert_eq(g.n, 0);
		cr_assert_not_null(cdc_format_error());
		cr_assert(strstr(cdc_format_error(), "of column ") != NULL,
			  "%s", cdc_format_error());
		cdc_rel_schemas_free(&r);
	}
}

/* VariableScaleDecimal without trailing zeros, as Debezium's
 * stripTrailingZeros (the scale never below 0): 1.50 is scale 1, 15 (it
 * was scale 2, 150); the unscaled values as BigInteger.toByteArray() at
 * any length. */
Test(cdc_event, variable_scale_decimal)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"v", NUMERIC, -1, false, true, false},
	};
	static const char *const cases[][2] = {
		{"1.50", "{\"scale\":1,\"value\":\"Dw==\"}"},
		{"100", "{\"scale\":0,\"value\":\"ZA==\"}"},
		{"1000.000", "{\"scale\":0,\"value\":\"A+g=\"}"},
		{"-0.000123", "{\"scale\":6,\"value\":\"hQ==\"}"},
		{"0.00", "{\"scale\":0,\"value\":\"AA==\"}"},
		{"-128", "{\"scale\":0,\"value\":\"gA==\"}"},
		{"-129", "{\"scale\":0,\"value\":\"/38=\"}"},
		{"255", "{\"scale\":0,\"value\":\"AP8=\"}"},
		{"-9223372036854775808",
		 "{\"scale\":0,\"value\":\"gAAAAAAAAAA=\"}"},
		{"18446744073709551616",
		 "{\"scale\":0,\"value\":\"AQAAAAAAAAAA\"}"},
		{"-1000000000000000000000000000005",
		 "{\"scale\":0,\"value\":\"82DTYy+5ixIVv///+w==\"}"},
	};
	struct cdc_opts o = unwrap_json();
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		char *row[] = {"1", (char *)cases[i][0]};
		char want[256];
		snprintf(want, sizeof(want), "{\"id\":1,\"v\":%s}",
			 cases[i][1]);
		expect_value(&o, cols, 2, 'c', row, want);
	}
}

/* NaN and the infinities have no Decimal: under
 * decimal.handling.mode=precise the change stops with Debezium's
 * words (they were a null unscaled value in JSON, zero bytes in Avro). */
Test(cdc_event, special_decimal_in_precise_mode)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"v", NUMERIC, -1, false, true, false},
		{"n", NUMERIC, ((10 << 16) | 2) + 4, false, true, false},
	};
	char *rows2[][3] = {{"1", "NaN", NULL}, {"1", NULL, "-Infinity"}};
	for (size_t i = 0; i < 2; i++) {
		struct cdc_opts o = unwrap_json();
		struct cdc_rel r;
		rel_init(&r, cols, 3);
		cdc_rel_schemas(&o, &r);
		struct cdc_change ch = {.op = 'c', .after = rows2[i], .xid = 1};
		check_same(&o, &r, &ch, "special");
		struct recs g = {0};
		cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), -1);
		cr_assert_eq(g.n, 0);
		cr_assert(strstr(cdc_format_error(),
				 "set decimal handling mode to 'string'"));
		cdc_rel_schemas_free(&r);
		/* a before-image the transform leaves out counts too */
		char *after[] = {"1", "1", "1"};
		struct cdc_change u = {.op = 'u',
				       .before = rows2[i],
				       .after = after,
				       .xid = 1};
		cdc_rel_schemas(&o, &r);
		check_same(&o, &r, &u, "special before");
		cr_assert_eq(cdc_format(&o, &r, &u, capture, &g), -1);
		cdc_rel_schemas_free(&r);
	}
}

/* A text[] element that is not UTF-8 (a SQL_ASCII database) is a null in
 * its place: the array kept its length (it dropped the element). */
Test(cdc_event, array_element_not_utf8)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"a", 1009, -1, false, true, false},
	};
	char *row[] = {"1", "{x,\xff,y}"};
	struct cdc_opts o = unwrap_json();
	struct cdc_rel r;
	rel_init(&r, cols, 2);
	cdc_rel_schemas(&o, &r);
	struct cdc_change ch = {.op = 'c', .after = row, .xid = 1};
	check_same(&o, &r, &ch, "not utf8");
	struct recs g = {0};
	cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), 1);
	cr_assert_str_eq(g.val[0], "{\"id\":1,\"a\":[\"x\",null,\"y\"]}", "%s",
			 g.val[0]);
	recs_free(&g);
	cdc_rel_schemas_free(&r);
}

/* time.precision.mode=adaptive_time_microseconds: every time column is a
 * MicroTime in µs, time(3) too (it was adaptive's Time in ms); dates and
 * timestamps stay adaptive. */
Test(cdc_event, adaptive_time_microseconds)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"t3", TIME, 3, false, true, false},
		{"t", TIME, -1, false, true, false},
		{"ts3", TS, 3, false, true, false},
	};
	char *row[] = {"1", "13:14:15.123", "00:00:01",
		       "1970-01-01 00:00:01.5"};
	struct cdc_opts o = unwrap_json();
	o.time_micro = true;
	expect_value(&o, cols, 4, 'c', row,
		     "{\"id\":1,\"t3\":47655123000,\"t\":1000000,"
		     "\"ts3\":1500}");
	struct cdc_rel r;
	rel_init(&r, cols, 4);
	cdc_rel_schemas(&o, &r);
	json_t *f = json_object_get(r.value_schema, "fields");
	const char *names[] = {"io.debezium.time.MicroTime",
			       "io.debezium.time.MicroTime",
			       "io.debezium.time.Timestamp"};
	for (size_t i = 0; i < 3; i++) {
		json_t *s = json_array_get(f, i + 1);
		cr_assert_str_eq(json_string_value(json_object_get(s, "name")),
				 names[i]);
	}
	cdc_rel_schemas_free(&r);
}

/* timestamptz as Java's ISO_OFFSET_DATE_TIME writes it: a BC year is the
 * proleptic one ("0044-... BC" is -0043; 1 BC is 0000, it was the text
 * with " BC"), a year past 9999 takes a '+'. */
Test(cdc_event, zoned_timestamp_years)
{
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"a", TSTZ, -1, false, true, false},
		{"b", TSTZ, -1, false, true, false},
		{"c", TSTZ, -1, false, true, false},
	};
	char *row[] = {"1", "0044-03-15 12:00:00+00 BC",
		       "0001-01-01 00:00:00.25+00 BC",
		       "10000-01-01 00:00:00+00"};
	struct cdc_opts o = unwrap_json();
	expect_value(&o, cols, 4, 'c', row,
		     "{\"id\":1,\"a\":\"-0043-03-15T12:00:00Z\","
		     "\"b\":\"0000-01-01T00:00:00.25Z\","
		     "\"c\":\"+10000-01-01T00:00:00Z\"}");
}

/* One-dimensional arrays as Debezium's ARRAY schemas of the optional
 * element type, JSON arrays of the elements (they were the text "{1,2}");
 * Postgres's quoting, backslashes and NULL undone; a sub-array's element
 * null, as Debezium's element converters give; time[] a MicroTime even
 * in connect mode; an unchanged TOASTed array null, a NOT NULL one the
 * before-image lacks []. */
Test(cdc_event, arrays)
{
	enum { INT4A = 1007, TEXTA = 1009, NUMA = 1231, FLOAT4A = 1021 };
	enum { TIMEA = 1183, BYTEAA = 1001 };
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"i", INT4A, -1, false, true, false},
		{"t", TEXTA, -1, false, true, false},
		{"n", NUMA, -1, false, true, false},
		{"f", FLOAT4A, -1, false, true, false},
		{"tm", TIMEA, 3, false, true, false},
		{"by", BYTEAA, -1, false, true, false},
		{"r", INT4A, -1, false, false, false},
	};
	char *row[] = {"1",
		       "{1,NULL,-3}",
		       "{a,NULL,\"b c\",\"NULL\",\"q\\\"\\\\x\",\"\"}",
		       "{1.50,NaN}",
		       "{1.1,NaN}",
		       "{13:14:15.123}",
		       "{\"\\\\x01\"}",
		       "[0:1]={5,6}"};
	struct cdc_opts o = unwrap_json();
	o.decimal = DEC_STRING;
	o.time_connect = true;
	expect_value(&o, cols, 8, 'c', row,
		     "{\"id\":1,\"i\":[1,null,-3],\"t\":[\"a\",null,\"b c\","
		     "\"NULL\",\"q\\\"\\\\x\",\"\"],\"n\":[\"1.50\",\"NaN\"],"
		     "\"f\":[1.1,\"NaN\"],\"tm\":[47655123000],"
		     "\"by\":\"{\\\"\\\\\\\\x01\\\"}\",\"r\":[5,6]}");
	o.value_conv = CONV_STRING;
	expect_value(&o, cols, 8, 'c', row,
		     "Struct{id=1,i=[1, null, -3],t=[a, null, b c, NULL, "
		     "q\"\\x, ],n=[1.50, NaN],f=[1.1, NaN],tm=[47655123000],"
		     "by={\"\\\\x01\"},r=[5, 6]}");
	/* two dimensions; unchanged; a required one the before lacks */
	char *row2[] = {"2",
			"{{1,2},{3,4}}",
			(char *)cdc_unchanged,
			NULL,
			NULL,
			NULL,
			NULL,
			NULL};
	o.value_conv = CONV_JSON;
	o.unwrap_delete = DEL_REWRITE;
	expect_value(&o, cols, 8, 'd', row2,
		     "{\"id\":2,\"i\":[null,null],\"t\":null,\"n\":null,"
		     "\"f\":null,\"tm\":null,\"by\":null,\"r\":[],"
		     "\"__deleted\":\"true\"}");
	/* the schemas: ARRAY of the optional element */
	o.decimal = DEC_PRECISE;
	struct cdc_rel r;
	rel_init(&r, cols, 8);
	cdc_rel_schemas(&o, &r);
	json_t *f = json_object_get(r.value_schema, "fields");
	char *txt = json_dumps(json_array_get(f, 1), JSON_COMPACT);
	cr_assert_str_eq(txt, "{\"type\":\"array\",\"items\":{\"type\":"
			      "\"int32\",\"optional\":true},\"optional\":true,"
			      "\"field\":\"i\"}");
	free(txt);
	json_t *n = json_object_get(json_array_get(f, 3), "items");
	cr_assert_str_eq(json_string_value(json_object_get(n, "name")),
			 "io.debezium.data.VariableScaleDecimal");
	cr_assert(json_is_true(json_object_get(n, "optional")));
	json_t *tm = json_object_get(json_array_get(f, 5), "items");
	cr_assert_str_eq(json_string_value(json_object_get(tm, "name")),
			 "io.debezium.time.MicroTime");
	cr_assert_str_eq(json_string_value(
				 json_object_get(json_array_get(f, 6), "type")),
			 "string");
	cdc_rel_schemas_free(&r);
	/* precise mode: a NaN element stops the change as a NaN value does */
	char *row3[] = {"3", NULL, NULL, "{1,NaN}", NULL, NULL, NULL, "{}"};
	rel_init(&r, cols, 8);
	cdc_rel_schemas(&o, &r);
	struct cdc_change ch = {.op = 'c', .after = row3, .xid = 1};
	check_same(&o, &r, &ch, "NaN element");
	struct recs g = {0};
	cr_assert_eq(cdc_format(&o, &r, &ch, capture, &g), -1);
	cdc_rel_schemas_free(&r);
}

/* interval as Debezium 1.9 makes it through pgjdbc's PGInterval: a
 * MicroDuration (months of 365.25 / 12 days, in doubles, truncated as
 * Java's (long) does), or with interval.handling.mode=string
 * Interval.toIsoString (the seconds' exact binary value cut to 9
 * decimals: 6.789 s is "6.788999999S", as Debezium writes it); it was
 * Postgres's text. */
Test(cdc_event, interval)
{
	enum { INTERVAL = 1186 };
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"a", INTERVAL, -1, false, true, false},
		{"b", INTERVAL, -1, false, true, false},
		{"c", INTERVAL, -1, false, true, false},
		{"d", INTERVAL, -1, false, true, false},
		{"e", INTERVAL, -1, false, true, false},
		{"f", INTERVAL, -1, false, true, false},
	};
	char *row[] = {"1",
		       "1 year 2 mons 3 days 04:05:06.789",
		       "-1 days +02:00:00",
		       "00:00:00.000001",
		       "-00:00:01.5",
		       "3 mons",
		       "00:00:00.3"};
	struct cdc_opts o = unwrap_json();
	expect_value(&o, cols, 7, 'c', row,
		     "{\"id\":1,\"a\":37091106789000,\"b\":-79200000000,"
		     "\"c\":1,\"d\":-1500000,\"e\":7889400000000,"
		     "\"f\":300000}");
	o.interval_string = true;
	expect_value(
		&o, cols, 7, 'c', row,
		"{\"id\":1,\"a\":\"P1Y2M3DT4H5M6.788999999S\","
		"\"b\":\"P0Y0M-1DT2H0M0S\",\"c\":\"P0Y0M0DT0H0M0.000000999S\","
		"\"d\":\"P0Y0M0DT0H0M-1.5S\",\"e\":\"P0Y3M0DT0H0M0S\","
		"\"f\":\"P0Y0M0DT0H0M0.299999999S\"}");
	struct cdc_rel r;
	rel_init(&r, cols, 7);
	cdc_rel_schemas(&o, &r);
	json_t *f =
		json_array_get(json_object_get(r.value_schema, "fields"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(f, "name")),
			 "io.debezium.time.Interval");
	cdc_rel_schemas_free(&r);
	o.interval_string = false;
	rel_init(&r, cols, 7);
	cdc_rel_schemas(&o, &r);
	f = json_array_get(json_object_get(r.value_schema, "fields"), 1);
	cr_assert_str_eq(json_string_value(json_object_get(f, "name")),
			 "io.debezium.time.MicroDuration");
	cr_assert_str_eq(json_string_value(json_object_get(f, "type")),
			 "int64");
	cdc_rel_schemas_free(&r);
}

/* money as Debezium 1.9 writes it: a Decimal of scale 2, a double, or the
 * double as Java's Double.toString (it was Postgres's text "$1,234.56");
 * a NOT NULL one a before-image lacks is 0.00. */
Test(cdc_event, money)
{
	enum { MONEY = 790 };
	struct cdc_col cols[] = {
		{"id", INT4, -1, true, false, false},
		{"a", MONEY, -1, false, true, false},
		{"b", MONEY, -1, false, true, false},
		{"c", MONEY, -1, false, false, false},
	};
	char *row[] = {"1", "$1,234.56", "-$0.01", "$12.00"};
	char *before[] = {"1", NULL, NULL, NULL};
	struct cdc_opts o = unwrap_json();
	expect_value(&o, cols, 4, 'c', row,
		     "{\"id\":1,\"a\":\"AeJA\",\"b\":\"/w==\",\"c\":\"BLA=\"}");
	o.unwrap_delete = DEL_REWRITE;
	expect_value(&o, cols, 4, 'd', before,
		     "{\"id\":1,\"a\":null,\"b\":null,\"c\":\"AA==\","
		     "\"__deleted\":\"true\"}");
	o.unwrap_delete = DEL_DROP;
	o.decimal = DEC_DOUBLE;
	expect_value(&o, cols, 4, 'c', row,
		     "{\"id\":1,\"a\":1234.56,\"b\":-0.01,\"c\":12.0}");
	o.decimal = DEC_STRING;
	expect_value(
		&o, cols, 4, 'c', row,
		"{\"id\":1,\"a\":\"1234.56\",\"b\":\"-0.01\",\"c\":\"12.0\"}");
	o.decimal = DEC_PRECISE;
	struct cdc_rel r;
	rel_init(&r, cols, 4);
	cdc_rel_schemas(&o, &r);
	json_t *f =
		json_array_get(json_object_get(r.value_schema, "fields"), 1);
	char *txt = json_dumps(f, JSON_COMPACT);
	cr_assert_str_eq(txt, "{\"type\":\"bytes\",\"optional\":true,\"name\":"
			      "\"org.apache.kafka.connect.data.Decimal\","
			      "\"version\":1,\"parameters\":{\"scale\":\"2\"},"
			      "\"field\":\"a\"}");
	free(txt);
	cdc_rel_schemas_free(&r);
}
