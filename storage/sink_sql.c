/*
 * sink_sql: column types, value text and statements of the JDBC sink
 * (storage/sink_int.h, storage/sink_sql.h).  Pure functions: no I/O.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/kbuf.h"
#include "storage/sink_int.h"
#include "storage/sink_sql.h"

static bool named(const struct sk_schema *s, const char *n)
{
	return s->name && strcmp(s->name, n) == 0;
}

const char *sk_sql_type(const struct sk_schema *s)
{
	s = sk_plain(s);
	if (!s)
		return NULL;
	if (s->name) {
		static const struct {
			const char *n, *t;
		} tab[] = {
			{"org.apache.kafka.connect.data.Decimal", "DECIMAL"},
			{"org.apache.kafka.connect.data.Date", "DATE"},
			{"org.apache.kafka.connect.data.Time", "TIME"},
			{"org.apache.kafka.connect.data.Timestamp",
			 "TIMESTAMP"},
			{"io.debezium.time.Date", "DATE"},
			{"io.debezium.time.Time", "TIME"},
			{"io.debezium.time.MicroTime", "TIME"},
			{"io.debezium.time.NanoTime", "TIME"},
			{"io.debezium.time.Timestamp", "TIMESTAMP"},
			{"io.debezium.time.MicroTimestamp", "TIMESTAMP"},
			{"io.debezium.time.NanoTimestamp", "TIMESTAMP"},
			{"io.debezium.time.ZonedTimestamp", "TIMESTAMPTZ"},
			{"io.debezium.time.ZonedTime", "TIMETZ"},
			{"io.debezium.data.Json", "JSONB"},
			{"io.debezium.data.Uuid", "UUID"},
			{"io.debezium.data.VariableScaleDecimal", "DECIMAL"},
		};
		for (size_t i = 0; i < sizeof(tab) / sizeof(*tab); i++)
			if (strcmp(s->name, tab[i].n) == 0)
				return tab[i].t;
	}
	switch (s->type) {
	case SK_INT8:
	case SK_INT16:
		return "SMALLINT";
	case SK_INT32:
		return "INT";
	case SK_INT64:
		return "BIGINT";
	case SK_FLOAT32:
		return "REAL";
	case SK_FLOAT64:
		return "DOUBLE PRECISION";
	case SK_BOOLEAN:
		return "BOOLEAN";
	case SK_STRING:
	case SK_NONE:
		return "TEXT";
	case SK_BYTES:
		return "BYTEA";
	case SK_ARRAY: {
		const struct sk_schema *e = sk_plain(s->elem);
		static const struct {
			enum sk_type t;
			const char *n;
		} arr[] = {{SK_INT8, "SMALLINT[]"},
			   {SK_INT16, "SMALLINT[]"},
			   {SK_INT32, "INT[]"},
			   {SK_INT64, "BIGINT[]"},
			   {SK_FLOAT32, "REAL[]"},
			   {SK_FLOAT64, "DOUBLE PRECISION[]"},
			   {SK_BOOLEAN, "BOOLEAN[]"},
			   {SK_STRING, "TEXT[]"}};
		if (e && !e->name)
			for (size_t i = 0; i < sizeof(arr) / sizeof(*arr); i++)
				if (arr[i].t == e->type)
					return arr[i].n;
		return NULL;
	}
	case SK_MAP:
	case SK_STRUCT:
		return NULL;
	}
	return NULL;
}

bool sk_sql_instant(const struct sk_schema *s)
{
	s = sk_plain(s);
	/* not Debezium's Timestamp, MicroTimestamp, NanoTimestamp: local
	 * date-times, which its sink writes unshifted (atZone(dbZone)
	 * .toLocalDateTime()), and a cast to timestamp drops their +00 */
	return s && named(s, "org.apache.kafka.connect.data.Timestamp");
}

/* --- value text -------------------------------------------------------- */

/* Days since 1970-01-01 to a civil date (H. Hinnant's algorithm). */
static void civil(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = (int64_t)yoe + era * 400;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;
	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = yy + (*m <= 2);
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

static char *fmt_date(struct arena *a, int64_t days)
{
	int64_t y;
	unsigned m, d;
	civil(days, &y, &m, &d);
	if (y <= 0)
		return arena_printf(a, "%04" PRId64 "-%02u-%02u BC", 1 - y, m,
				    d);
	return arena_printf(a, "%04" PRId64 "-%02u-%02u", y, m, d);
}

/*
 * A time of day from microseconds since midnight, in UTC as Connect's
 * times are: with its offset, so that a timetz or timestamptz column holds
 * that instant whatever the session's zone (time and timestamp columns
 * ignore it).
 */
static char *fmt_time(struct arena *a, int64_t us)
{
	us = ((us % 86400000000LL) + 86400000000LL) % 86400000000LL;
	int64_t s = us / 1000000;
	return arena_printf(a, "%02d:%02d:%02d.%06d+00", (int)(s / 3600),
			    (int)(s / 60 % 60), (int)(s % 60),
			    (int)(us % 1000000));
}

static char *fmt_timestamp(struct arena *a, int64_t us)
{
	int64_t days = floordiv(us, 86400000000LL);
	int64_t rest = us - days * 86400000000LL;
	char *d = fmt_date(a, days);
	char *t = fmt_time(a, rest);
	if (!d || !t)
		return NULL;
	const char *bc = strstr(d, " BC");
	if (bc)
		return arena_printf(a, "%.*s %s BC", (int)(bc - d), d, t);
	return arena_printf(a, "%s %s", d, t);
}

/*
 * Postgres's numeric holds up to 131072 digits before the point and 16383
 * after: a scale outside would only make text Postgres refuses, and a
 * scale from the wire near INT32_MAX would make gigabytes of zeros.
 */
#define MIN_SCALE (-131072)
#define MAX_SCALE 16383

/* The most bytes an unscaled value may take: 9,864 digits, far past any
 * column's precision.  Making the digits costs time that grows with the
 * square of the length, on the event loop: Postgres's own limit (131,072
 * digits before the point) would let one record hold every listener for
 * seconds; 4 KiB costs under a millisecond. */
#define MAX_DECIMAL_BYTES 4096

/* Big-endian two's complement unscaled value with scale, as decimal text
 * (scale within MIN_SCALE..MAX_SCALE, n within MAX_DECIMAL_BYTES). */
static char *fmt_decimal(struct arena *a, const uint8_t *b, size_t n,
			 int32_t scale)
{
	if (n == 0)
		return arena_printf(a, "0");
	/* The magnitude in 32-bit limbs, most significant first, divided by
	 * 10^9 per pass: nine digits a pass, not one. */
	size_t nl = (n + 3) / 4;
	uint32_t *mag = calloc(nl, sizeof(*mag));
	char *digits = malloc(nl * 10 + 2);
	if (!mag || !digits) {
		free(mag);
		free(digits);
		return NULL;
	}
	bool neg = b[0] & 0x80;
	for (size_t i = 0; i < n; i++) {
		/* byte i of n, big-endian, into limb (n - 1 - i) / 4 from the
		 * end */
		size_t from_end = n - 1 - i;
		uint32_t byte = neg ? (uint8_t)~b[i] : b[i];
		mag[nl - 1 - from_end / 4] |= byte << (8 * (from_end % 4));
	}
	if (neg) /* negate: inverted above, now add one */
		for (size_t i = nl; i-- > 0;)
			if (++mag[i] != 0)
				break;
	size_t nd = 0;
	size_t start = 0;
	for (;;) {
		while (start < nl && mag[start] == 0)
			start++;
		if (start == nl)
			break;
		uint64_t rem = 0;
		for (size_t i = start; i < nl; i++) {
			uint64_t cur = rem << 32 | mag[i];
			mag[i] = (uint32_t)(cur / 1000000000u);
			rem = cur % 1000000000u;
		}
		bool last = true;
		for (size_t i = start; i < nl && last; i++)
			last = mag[i] == 0;
		/* nine digits, but no leading zeros in the last group */
		for (int d = 0; d < 9 && (!last || rem); d++) {
			digits[nd++] = (char)('0' + rem % 10);
			rem /= 10;
		}
	}
	if (nd == 0)
		digits[nd++] = '0';
	/* digits are least significant first */
	size_t len = nd + (size_t)(scale > 0 ? scale : 0) + 4;
	char *out = arena_alloc(a, len + (scale < 0 ? (size_t)-scale : 0));
	if (out) {
		size_t k = 0;
		if (neg)
			out[k++] = '-';
		if (scale <= 0) {
			for (size_t i = nd; i-- > 0;)
				out[k++] = digits[i];
			for (int32_t i = 0; i < -scale; i++)
				out[k++] = '0';
		} else {
			size_t sc = (size_t)scale;
			if (nd <= sc) {
				out[k++] = '0';
				out[k++] = '.';
				for (size_t i = nd; i < sc; i++)
					out[k++] = '0';
				for (size_t i = nd; i-- > 0;)
					out[k++] = digits[i];
			} else {
				for (size_t i = nd; i-- > 0;) {
					out[k++] = digits[i];
					if (i == sc)
						out[k++] = '.';
				}
			}
		}
		out[k] = '\0';
	}
	free(mag);
	free(digits);
	return out;
}

/*
 * What snprintf's "%.<digits>g" writes for d when d's exact decimal value
 * has at most digits significant digits and %g writes it without an
 * exponent (1e-4 <= |d| < 10^digits, or 0): then it is that value, trailing
 * zeros dropped, so it is written here without printf's big-number
 * arithmetic.  Returns its length, or 0 for any other d (snprintf then).
 * Such values are common: integers, halves, quarters ...
 */
static int fmt_double_exact(char *buf, double d, int digits)
{
	uint64_t lim = 1;
	for (int i = 0; i < digits; i++)
		lim *= 10;
	int k = 0;
	if (signbit(d))
		buf[k++] = '-';
	double x = fabs(d);
	if (x == 0) {
		buf[k++] = '0';
		return k;
	}
	if (!(x >= 1e-4 && x < (double)lim))
		return 0;
	/* x = m / 2^j exactly; its decimal value is m * 5^j / 10^j */
	int j = 0;
	while (x != floor(x)) {
		if (++j > 60)
			return 0;
		x *= 2; /* exact */
	}
	if (x >= 9007199254740992.0) /* 2^53 */
		return 0;
	uint64_t m = (uint64_t)x;
	for (int i = 0; i < j; i++) {
		if (m >= lim / 5 + 1)
			return 0;
		m *= 5;
	}
	if (m >= lim)
		return 0;
	char dig[24];
	int n = 0;
	do {
		dig[n++] = (char)('0' + m % 10);
		m /= 10;
	} while (m);
	/* dig holds the digits backwards; j of them are after the point */
	if (n <= j) {
		buf[k++] = '0';
		buf[k++] = '.';
		for (int i = n; i < j; i++)
			buf[k++] = '0';
		while (n)
			buf[k++] = dig[--n];
		return k;
	}
	while (n > j)
		buf[k++] = dig[--n];
	if (j) {
		buf[k++] = '.';
		while (n)
			buf[k++] = dig[--n];
	}
	return k;
}

static char *fmt_double(struct arena *a, double d, bool is_float)
{
	if (isnan(d))
		return arena_printf(a, "NaN");
	if (isinf(d))
		return arena_printf(a, d > 0 ? "Infinity" : "-Infinity");
	char buf[40];
	int n = fmt_double_exact(buf, d, is_float ? 9 : 17);
	if (n > 0)
		return arena_strndup(a, buf, (size_t)n);
	/* one vsnprintf into a buffer, not arena_printf's two */
	n = snprintf(buf, sizeof(buf), is_float ? "%.9g" : "%.17g", d);
	return n > 0 && n < (int)sizeof(buf) ? arena_strndup(a, buf, (size_t)n)
					     : NULL;
}

/* An integer's decimal text (the sink writes one per integer column). */
static char *fmt_int(struct arena *a, int64_t x)
{
	char buf[24];
	size_t k = sizeof(buf);
	uint64_t u = x < 0 ? 0 - (uint64_t)x : (uint64_t)x;
	do {
		buf[--k] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (x < 0)
		buf[--k] = '-';
	return arena_strndup(a, buf + k, sizeof(buf) - k);
}

static char *fmt_hex(struct arena *a, const uint8_t *p, size_t n)
{
	char *o = arena_alloc(a, n * 2 + 3);
	if (!o)
		return NULL;
	static const char hx[] = "0123456789abcdef";
	o[0] = '\\';
	o[1] = 'x';
	for (size_t i = 0; i < n; i++) {
		o[2 + 2 * i] = hx[p[i] >> 4];
		o[3 + 2 * i] = hx[p[i] & 15];
	}
	o[2 + 2 * n] = '\0';
	return o;
}

static int scalar_text(struct arena *a, const struct sk_value *v,
		       const char **out, char *err, size_t errlen);

/* Room for array_literal() of these texts, its NUL included. */
static size_t array_literal_size(const char *const *texts, size_t n,
				 size_t stride)
{
	size_t size = 3; /* {}\0 */
	for (size_t i = 0; i < n; i++) {
		const char *t = texts[i * stride];
		size += (t ? strlen(t) * 2 + 2 : 4) + 1;
	}
	return size;
}

/*
 * Writes the Postgres array literal of texts[0], texts[stride], ... (n of
 * them) to o: each element double-quoted with " and \\ escaped, NULL for
 * a NULL.
 */
static void array_literal(char *o, const char *const *texts, size_t n,
			  size_t stride)
{
	size_t k = 0;
	o[k++] = '{';
	for (size_t i = 0; i < n; i++) {
		const char *t = texts[i * stride];
		if (i)
			o[k++] = ',';
		if (!t) {
			memcpy(o + k, "NULL", 4);
			k += 4;
			continue;
		}
		o[k++] = '"';
		for (; *t; t++) {
			if (*t == '"' || *t == '\\')
				o[k++] = '\\';
			o[k++] = *t;
		}
		o[k++] = '"';
	}
	o[k++] = '}';
	o[k] = '\0';
}

/* A Postgres array literal of v's elements. */
static int array_text(struct arena *a, const struct sk_value *v,
		      const char **out, char *err, size_t errlen)
{
	const char **el = arena_alloc(a, (v->n ? v->n : 1) * sizeof(char *));
	if (!el)
		return -1;
	for (size_t i = 0; i < v->n; i++)
		if (scalar_text(a, &v->fields[i], &el[i], err, errlen) < 0)
			return -1;
	char *o = arena_alloc(a, array_literal_size(el, v->n, 1));
	if (!o)
		return -1;
	array_literal(o, el, v->n, 1);
	*out = o;
	return 0;
}

static int scalar_text(struct arena *a, const struct sk_value *v,
		       const char **out, char *err, size_t errlen)
{
	const struct sk_schema *s = sk_plain(v->s);
	char *t = NULL;
	*out = NULL;
	if (v->null || !s || s->type == SK_NONE)
		return 0;
	if (s->name) {
		int64_t us = -1;
		bool time = false, ts = false, date = false, range = true;
		if (named(s, "org.apache.kafka.connect.data.Date") ||
		    named(s, "io.debezium.time.Date")) {
			date = true;
			range = v->i >= INT32_MIN && v->i <= INT32_MAX;
		} else if (named(s, "org.apache.kafka.connect.data.Time") ||
			   named(s, "io.debezium.time.Time")) {
			time = true;
			range = !__builtin_mul_overflow(v->i, 1000, &us);
		} else if (named(s, "io.debezium.time.MicroTime")) {
			time = true;
			us = v->i;
		} else if (named(s, "io.debezium.time.NanoTime")) {
			time = true;
			us = v->i / 1000;
		} else if (named(s,
				 "org.apache.kafka.connect.data.Timestamp") ||
			   named(s, "io.debezium.time.Timestamp")) {
			ts = true;
			range = !__builtin_mul_overflow(v->i, 1000, &us);
		} else if (named(s, "io.debezium.time.MicroTimestamp")) {
			ts = true;
			us = v->i;
		} else if (named(s, "io.debezium.time.NanoTimestamp")) {
			ts = true;
			us = floordiv(v->i, 1000);
		}
		if (!range) {
			/* A value from the wire: no overflow past here. */
			snprintf(err, errlen,
				 "%s value %" PRId64 " is out of range",
				 s->name, v->i);
			return -1;
		}
		if (date)
			t = fmt_date(a, v->i);
		else if (time)
			t = fmt_time(a, us);
		else if (ts)
			t = fmt_timestamp(a, us);
		if (date || time || ts) {
			*out = t;
			return t ? 0 : -1;
		}
		bool decimal =
			named(s, "org.apache.kafka.connect.data.Decimal");
		bool vsd = named(s, "io.debezium.data.VariableScaleDecimal") &&
			   s->type == SK_STRUCT;
		if (decimal && v->n == (size_t)-1) {
			/* already text: schemaless JSON's number */
			*out = arena_strndup(a, v->p, strlen(v->p));
			return *out ? 0 : -1;
		}
		if (decimal || vsd) {
			int64_t scale = s->scale;
			if (vsd) {
				const struct sk_value *sc =
					sk_field_get(v, "scale");
				v = sk_field_get(v, "value");
				if (!sc || !v || v->null) {
					snprintf(err, errlen,
						 "VariableScaleDecimal without "
						 "a value");
					return -1;
				}
				scale = sc->i;
			}
			if (scale < MIN_SCALE || scale > MAX_SCALE) {
				snprintf(err, errlen,
					 "decimal scale %" PRId64
					 " is out of range",
					 scale);
				return -1;
			}
			if (v->n > MAX_DECIMAL_BYTES) {
				snprintf(err, errlen,
					 "decimal of %zu bytes: the sink takes "
					 "at most 4096 (9,864 digits)",
					 (size_t)v->n);
				return -1;
			}
			t = fmt_decimal(a, (const uint8_t *)v->p, v->n,
					(int32_t)scale);
			*out = t;
			return t ? 0 : -1;
		}
	}
	switch (s->type) {
	case SK_INT8:
	case SK_INT16:
	case SK_INT32:
	case SK_INT64:
		t = fmt_int(a, v->i);
		break;
	case SK_FLOAT32:
		t = fmt_double(a, v->d, true);
		break;
	case SK_FLOAT64:
		t = fmt_double(a, v->d, false);
		break;
	case SK_BOOLEAN:
		t = arena_printf(a, "%s", v->i ? "true" : "false");
		break;
	case SK_STRING:
		if (memchr(v->p, '\0', v->n)) {
			snprintf(err, errlen,
				 "a string with a NUL byte cannot be stored "
				 "in Postgres text");
			return -1;
		}
		t = arena_strndup(a, v->p, v->n);
		break;
	case SK_BYTES:
		t = fmt_hex(a, (const uint8_t *)v->p, v->n);
		break;
	case SK_ARRAY:
		return array_text(a, v, out, err, errlen);
	default:
		snprintf(err, errlen, "Unsupported source data type: %s",
			 s->type == SK_MAP ? "MAP" : "STRUCT");
		return -1;
	}
	*out = t;
	return t ? 0 : -1;
}

void sk_oom(char *err, size_t errlen)
{
	static const char msg[] = "out of memory";
	if (!errlen)
		return;
	size_t n = errlen - 1 < sizeof(msg) - 1 ? errlen - 1 : sizeof(msg) - 1;
	memcpy(err, msg, n);
	err[n] = '\0';
}

int sk_sql_text(struct arena *a, const struct sk_value *v, const char **out,
		char *err, size_t errlen)
{
	sk_oom(err, errlen);
	return scalar_text(a, v, out, err, errlen);
}

int sk_sql_text_as(struct arena *a, const struct sk_schema *s, const char *text,
		   const char **out, char *err, size_t errlen)
{
	s = sk_plain(s);
	char *end = NULL;
	*out = NULL;
	switch (s ? s->type : SK_STRING) {
	case SK_INT8:
	case SK_INT16:
	case SK_INT32:
	case SK_INT64: {
		if (s->name)
			break; /* Date, Time, Timestamp: Postgres parses */
		long long x = strtoll(text, &end, 10);
		long long lo = s->type == SK_INT8    ? -128
			       : s->type == SK_INT16 ? -32768
			       : s->type == SK_INT32 ? INT32_MIN
						     : INT64_MIN;
		long long hi = s->type == SK_INT8    ? 127
			       : s->type == SK_INT16 ? 32767
			       : s->type == SK_INT32 ? INT32_MAX
						     : INT64_MAX;
		if (!*text || *end || x < lo || x > hi) {
			snprintf(err, errlen,
				 "key \"%.100s\" is not a value of the "
				 "column's type",
				 text);
			return -1;
		}
		break;
	}
	case SK_FLOAT32:
	case SK_FLOAT64:
		strtod(text, &end);
		if (!*text || *end) {
			snprintf(err, errlen, "key \"%.100s\" is not a number",
				 text);
			return -1;
		}
		break;
	default:
		break;
	}
	*out = arena_strndup(a, text, strlen(text));
	return *out ? 0 : -1;
}

bool sk_ident_plain(const char *name)
{
	if (!((*name >= 'A' && *name <= 'Z') ||
	      (*name >= 'a' && *name <= 'z') || *name == '_'))
		return false;
	for (const char *p = name + 1; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '$'))
			return false;
	return true;
}

char *sk_ident(struct arena *a, const char *name, bool quote)
{
	if (!quote)
		return arena_strndup(a, name, strlen(name));
	size_t n = strlen(name), k = 0;
	char *o = arena_alloc(a, n * 2 + 3);
	if (!o)
		return NULL;
	o[k++] = '"';
	for (size_t i = 0; i < n; i++) {
		if (name[i] == '"')
			o[k++] = '"';
		o[k++] = name[i];
	}
	o[k++] = '"';
	o[k] = '\0';
	return o;
}

/* --- statements -------------------------------------------------------- */

static void put(struct kb_writer *w, const char *s)
{
	kb_write_raw(w, s, strlen(s));
}

static void putf(struct kb_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void putf(struct kb_writer *w, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		kb_write_raw(w, buf,
			     (size_t)n < sizeof(buf) ? (size_t)n
						     : sizeof(buf) - 1);
}

static char *done(struct kb_writer *w)
{
	kb_write_raw(w, "", 1);
	if (!kb_writer_ok(w)) {
		kb_writer_free(w);
		return NULL;
	}
	return (char *)w->buf;
}

/* cols[from..to) separated by commas. */
static void col_list(struct kb_writer *w, const char *const *cols, int from,
		     int to)
{
	for (int i = from; i < to; i++) {
		put(w, i > from ? "," : "");
		put(w, cols[i]);
	}
}

/*
 * " DEFAULT 'text'" when def is not NULL, as Postgres's quote_literal
 * writes it: quotes doubled, and with a backslash E'...' with backslashes
 * doubled too, which reads the same whether standard_conforming_strings
 * is on or off (the connection's options may set it).
 */
static void put_default(struct kb_writer *w, const char *def)
{
	if (!def)
		return;
	put(w, strchr(def, '\\') ? " DEFAULT E'" : " DEFAULT '");
	for (const char *p = def; *p; p++) {
		size_t n = strcspn(p, "'\\");
		kb_write_raw(w, p, n);
		p += n;
		if (!*p)
			break;
		kb_write_raw(w, p, 1);
		kb_write_raw(w, p, 1);
	}
	put(w, "'");
}

char *sk_sql_create(const char *table, int ncols, const char *const *cols,
		    const char *const *types, const char *const *defaults,
		    const bool *notnull, int nkey, const char *const *key)
{
	struct kb_writer w;
	kb_writer_init(&w);
	putf(&w, "CREATE TABLE IF NOT EXISTS ");
	put(&w, table);
	put(&w, " (");
	for (int i = 0; i < ncols; i++) {
		put(&w, i ? ", " : "");
		put(&w, cols[i]);
		put(&w, " ");
		put(&w, types[i]);
		put_default(&w, defaults ? defaults[i] : NULL);
		put(&w, notnull[i] ? " NOT NULL" : " NULL");
	}
	if (nkey > 0) {
		put(&w, ", PRIMARY KEY(");
		col_list(&w, key, 0, nkey);
		put(&w, ")");
	}
	put(&w, ")");
	return done(&w);
}

char *sk_sql_add_column(const char *table, const char *col, const char *type,
			const char *def)
{
	struct kb_writer w;
	kb_writer_init(&w);
	put(&w, "ALTER TABLE ");
	put(&w, table);
	put(&w, " ADD COLUMN IF NOT EXISTS ");
	put(&w, col);
	put(&w, " ");
	put(&w, type);
	put_default(&w, def);
	put(&w, " NULL");
	return done(&w);
}

/* col=<src>.col for the non-key columns. */
static void assignments(struct kb_writer *w, const char *const *cols, int nkey,
			int ncols, const char *src)
{
	for (int i = nkey; i < ncols; i++) {
		put(w, i > nkey ? "," : "");
		put(w, cols[i]);
		put(w, "=");
		put(w, src);
		put(w, ".");
		put(w, cols[i]);
	}
}

/*
 * The rows' placeholders: ($1::t1,$2::t2,...),(...) for nrows rows, or
 * with SK_SQL_ARRAYS unnest($1::t1[],$2::t2[],...).
 */
static void rows(struct kb_writer *w, int nrows, int ncols,
		 const char *const *types)
{
	if (nrows == SK_SQL_ARRAYS) {
		put(w, "unnest(");
		for (int c = 0; c < ncols; c++) {
			putf(w, c ? ",$%d::" : "$%d::", c + 1);
			put(w, types[c]);
			put(w, "[]");
		}
		put(w, ")");
		return;
	}
	int p = 1;
	for (int r = 0; r < nrows; r++) {
		put(w, r ? ",(" : "(");
		for (int c = 0; c < ncols; c++) {
			putf(w, c ? ",$%d" : "$%d", p++);
			if (types && types[c]) {
				put(w, "::");
				put(w, types[c]);
			}
		}
		put(w, ")");
	}
}

char *sk_sql_insert(const char *table, enum sk_mode mode, int nkey, int ncols,
		    const char *const *cols, const char *const *types,
		    int nrows)
{
	struct kb_writer w;
	kb_writer_init(&w);
	put(&w, "INSERT INTO ");
	put(&w, table);
	put(&w, " (");
	col_list(&w, cols, 0, ncols);
	put(&w, nrows == SK_SQL_ARRAYS ? ") SELECT * FROM " : ") VALUES ");
	rows(&w, nrows, ncols, types);
	if (mode == SKM_UPSERT && nkey > 0) {
		put(&w, " ON CONFLICT (");
		col_list(&w, cols, 0, nkey);
		put(&w, ncols == nkey ? ") DO NOTHING" : ") DO UPDATE SET ");
		assignments(&w, cols, nkey, ncols, "EXCLUDED");
	}
	return done(&w);
}

char *sk_sql_update(const char *table, int nkey, int ncols,
		    const char *const *cols, const char *const *types,
		    int nrows)
{
	struct kb_writer w;
	kb_writer_init(&w);
	put(&w, "UPDATE ");
	put(&w, table);
	put(&w, " AS t SET ");
	assignments(&w, cols, nkey, ncols, "x");
	put(&w, nrows == SK_SQL_ARRAYS ? " FROM " : " FROM (VALUES ");
	rows(&w, nrows, ncols, types);
	put(&w, nrows == SK_SQL_ARRAYS ? " AS x(" : ") AS x(");
	col_list(&w, cols, 0, ncols);
	put(&w, ") WHERE ");
	for (int i = 0; i < nkey; i++) {
		put(&w, i ? " AND t." : "t.");
		put(&w, cols[i]);
		put(&w, "=x.");
		put(&w, cols[i]);
	}
	return done(&w);
}

char *sk_sql_delete(const char *table, int nkey, const char *const *cols,
		    const char *const *types, int nrows)
{
	struct kb_writer w;
	kb_writer_init(&w);
	put(&w, "DELETE FROM ");
	put(&w, table);
	put(&w, " WHERE (");
	col_list(&w, cols, 0, nkey);
	put(&w, nrows == SK_SQL_ARRAYS ? ") IN (SELECT * FROM " : ") IN (");
	rows(&w, nrows, nkey, types);
	put(&w, ")");
	return done(&w);
}

char *sk_sql_array(const char *const *texts, size_t n, size_t stride)
{
	char *o = malloc(array_literal_size(texts, n, stride));
	if (o)
		array_literal(o, texts, n, stride);
	return o;
}
