/*
 * kbuf: every wire primitive against hand-written bytes, the boundaries of
 * each (varint limits, INT32_MIN/MAX, null against empty, compact forms),
 * the sticky error, truncation, hostile lengths and back-patching.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/kbuf.h"
#include "tests/support/leak_check.h"

TestSuite(kbuf, .fini = leak_check);

/* Asserts that the writer holds exactly the n bytes at want. */
static void expect_bytes(const struct kb_writer *w, const void *want, size_t n)
{
	cr_assert(kb_writer_ok(w));
	cr_assert_eq(w->len, n, "wrote %zu bytes, expected %zu", w->len, n);
	cr_assert(memcmp(w->buf, want, n) == 0, "bytes differ");
}

#define EXPECT(w, ...)                                                         \
	do {                                                                   \
		static const uint8_t want_[] = {__VA_ARGS__};                  \
		expect_bytes((w), want_, sizeof(want_));                       \
	} while (0)

Test(kbuf, fixed_ints_big_endian)
{
	struct kb_writer w = {0};
	kb_write_i8(&w, -2);
	kb_write_i16(&w, 0x0102);
	kb_write_u16(&w, 0xfffe);
	kb_write_i32(&w, 0x01020304);
	kb_write_u32(&w, 0xfffffffe);
	kb_write_i64(&w, 0x0102030405060708);
	kb_write_bool(&w, true);
	kb_write_bool(&w, false);
	EXPECT(&w, 0xfe, 0x01, 0x02, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0xff,
	       0xff, 0xff, 0xfe, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
	       0x01, 0x00);

	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	int8_t i8;
	int16_t i16;
	uint16_t u16;
	int32_t i32;
	uint32_t u32;
	int64_t i64;
	bool b1, b2;
	kb_read_i8(&r, &i8);
	kb_read_i16(&r, &i16);
	kb_read_u16(&r, &u16);
	kb_read_i32(&r, &i32);
	kb_read_u32(&r, &u32);
	kb_read_i64(&r, &i64);
	kb_read_bool(&r, &b1);
	kb_read_bool(&r, &b2);
	cr_assert(kb_reader_ok(&r));
	cr_assert_eq(kb_remaining(&r), 0);
	cr_assert_eq(i8, -2);
	cr_assert_eq(i16, 0x0102);
	cr_assert_eq(u16, 0xfffe);
	cr_assert_eq(i32, 0x01020304);
	cr_assert_eq(u32, 0xfffffffe);
	cr_assert_eq(i64, 0x0102030405060708);
	cr_assert(b1 && !b2);
	kb_writer_free(&w);
}

Test(kbuf, int_limits)
{
	struct kb_writer w = {0};
	kb_write_i32(&w, INT32_MIN);
	kb_write_i32(&w, INT32_MAX);
	kb_write_i64(&w, INT64_MIN);
	kb_write_i64(&w, INT64_MAX);
	kb_write_i16(&w, INT16_MIN);
	kb_write_i8(&w, INT8_MIN);
	EXPECT(&w, 0x80, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x80, 0, 0, 0, 0, 0,
	       0, 0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x80, 0,
	       0x80);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	int32_t a, b;
	int64_t c, d;
	int16_t e;
	int8_t f;
	kb_read_i32(&r, &a);
	kb_read_i32(&r, &b);
	kb_read_i64(&r, &c);
	kb_read_i64(&r, &d);
	kb_read_i16(&r, &e);
	kb_read_i8(&r, &f);
	cr_assert(kb_reader_ok(&r));
	cr_assert(a == INT32_MIN && b == INT32_MAX);
	cr_assert(c == INT64_MIN && d == INT64_MAX);
	cr_assert(e == INT16_MIN && f == INT8_MIN);
	kb_writer_free(&w);
}

Test(kbuf, bool_any_nonzero_is_true)
{
	static const uint8_t in[] = {0x02, 0xff};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	bool a, b;
	cr_assert(kb_read_bool(&r, &a) && a);
	cr_assert(kb_read_bool(&r, &b) && b);
}

Test(kbuf, float64)
{
	struct kb_writer w = {0};
	kb_write_f64(&w, 1.0);
	kb_write_f64(&w, -0.5);
	EXPECT(&w, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0xbf, 0xe0, 0, 0, 0, 0, 0, 0);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	double x, y;
	kb_read_f64(&r, &x);
	kb_read_f64(&r, &y);
	cr_assert(kb_reader_ok(&r));
	cr_assert(x == 1.0 && y == -0.5);
	kb_writer_free(&w);
}

/* Encodes v as a zig-zag varint and checks bytes, size and the read. */
static void check_varint(int32_t v, const uint8_t *want, size_t n)
{
	struct kb_writer w = {0};
	kb_write_varint(&w, v);
	expect_bytes(&w, want, n);
	cr_assert_eq(kb_varint_size(v), n);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	int32_t got;
	cr_assert(kb_read_varint(&r, &got));
	cr_assert_eq(got, v);
	cr_assert_eq(kb_remaining(&r), 0);
	kb_writer_free(&w);
}

Test(kbuf, varint)
{
	check_varint(0, (const uint8_t[]){0x00}, 1);
	check_varint(-1, (const uint8_t[]){0x01}, 1);
	check_varint(1, (const uint8_t[]){0x02}, 1);
	check_varint(-64, (const uint8_t[]){0x7f}, 1);
	check_varint(63, (const uint8_t[]){0x7e}, 1);
	check_varint(64, (const uint8_t[]){0x80, 0x01}, 2);
	check_varint(300, (const uint8_t[]){0xd8, 0x04}, 2);
	check_varint(INT32_MAX, (const uint8_t[]){0xfe, 0xff, 0xff, 0xff, 0x0f},
		     5);
	check_varint(INT32_MIN, (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f},
		     5);
}

static void check_uvarint(uint32_t v, const uint8_t *want, size_t n)
{
	struct kb_writer w = {0};
	kb_write_uvarint(&w, v);
	expect_bytes(&w, want, n);
	cr_assert_eq(kb_uvarint_size(v), n);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	uint32_t got;
	cr_assert(kb_read_uvarint(&r, &got));
	cr_assert_eq(got, v);
	kb_writer_free(&w);
}

Test(kbuf, uvarint)
{
	check_uvarint(0, (const uint8_t[]){0x00}, 1);
	check_uvarint(127, (const uint8_t[]){0x7f}, 1);
	check_uvarint(128, (const uint8_t[]){0x80, 0x01}, 2);
	check_uvarint(16383, (const uint8_t[]){0xff, 0x7f}, 2);
	check_uvarint(16384, (const uint8_t[]){0x80, 0x80, 0x01}, 3);
	check_uvarint(UINT32_MAX,
		      (const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x0f}, 5);
}

/* Reading in must fail (and leave the reader failed). */
static void expect_uvarint_fails(const uint8_t *in, size_t n)
{
	struct kb_reader r;
	kb_reader_init(&r, in, n);
	uint32_t u;
	cr_assert_not(kb_read_uvarint(&r, &u));
	cr_assert_eq(u, 0);
	cr_assert_not(kb_reader_ok(&r));
	int32_t s;
	kb_reader_init(&r, in, n);
	cr_assert_not(kb_read_varint(&r, &s));
	cr_assert_eq(s, 0);
}

Test(kbuf, varint_too_long_or_wide)
{
	/* Six bytes. */
	expect_uvarint_fails(
		(const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, 6);
	/* Five bytes, the last still continuing. */
	expect_uvarint_fails((const uint8_t[]){0x80, 0x80, 0x80, 0x80, 0x80},
			     5);
	/* Five bytes carrying a 33rd bit. */
	expect_uvarint_fails((const uint8_t[]){0xff, 0xff, 0xff, 0xff, 0x1f},
			     5);
	/* Truncated. */
	expect_uvarint_fails((const uint8_t[]){0x80}, 1);
	expect_uvarint_fails((const uint8_t[]){0}, 0);
}

static void check_varlong(int64_t v, size_t n)
{
	struct kb_writer w = {0};
	kb_write_varlong(&w, v);
	cr_assert(kb_writer_ok(&w));
	cr_assert_eq(w.len, n, "varlong %lld: %zu bytes", (long long)v, w.len);
	cr_assert_eq(kb_varlong_size(v), n);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	int64_t got;
	cr_assert(kb_read_varlong(&r, &got));
	cr_assert_eq(got, v);
	cr_assert_eq(kb_remaining(&r), 0);
	kb_writer_free(&w);
}

Test(kbuf, varlong)
{
	check_varlong(0, 1);
	check_varlong(-1, 1);
	check_varlong(63, 1);
	check_varlong(64, 2);
	check_varlong(INT32_MAX, 5);
	check_varlong(INT32_MIN, 5);
	check_varlong((int64_t)1 << 40, 6);
	check_varlong(INT64_MAX, 10);
	check_varlong(INT64_MIN, 10);

	struct kb_writer w = {0};
	kb_write_varlong(&w, INT64_MIN);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01);
	kb_writer_free(&w);

	/* Eleven bytes, and ten bytes with a 65th bit, fail. */
	static const uint8_t eleven[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					 0xff, 0xff, 0xff, 0x81, 0x00};
	static const uint8_t wide[] = {0xff, 0xff, 0xff, 0xff, 0xff,
				       0xff, 0xff, 0xff, 0xff, 0x02};
	struct kb_reader r;
	int64_t v;
	kb_reader_init(&r, eleven, sizeof(eleven));
	cr_assert_not(kb_read_varlong(&r, &v));
	kb_reader_init(&r, wide, sizeof(wide));
	cr_assert_not(kb_read_varlong(&r, &v));
}

Test(kbuf, uuid)
{
	struct kuuid u, got;
	for (int i = 0; i < 16; i++)
		u.b[i] = (uint8_t)(0xa0 + i);
	struct kb_writer w = {0};
	kb_write_uuid(&w, &u);
	expect_bytes(&w, u.b, 16);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	cr_assert(kb_read_uuid(&r, &got));
	cr_assert(memcmp(&u, &got, 16) == 0);
	kb_reader_init(&r, w.buf, 15);
	cr_assert_not(kb_read_uuid(&r, &got));
	kb_writer_free(&w);
}

Test(kbuf, string_classic)
{
	struct kb_writer w = {0};
	kb_write_string(&w, KSTR_NULL);
	kb_write_string(&w, KSTR_LIT(""));
	kb_write_string(&w, KSTR_LIT("abc"));
	EXPECT(&w, 0xff, 0xff, 0x00, 0x00, 0x00, 0x03, 'a', 'b', 'c');
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct kstr a, b, c;
	kb_read_string(&r, &a);
	kb_read_string(&r, &b);
	kb_read_string(&r, &c);
	cr_assert(kb_reader_ok(&r));
	cr_assert(a.len == -1 && a.ptr == NULL);
	cr_assert(b.len == 0 && b.ptr != NULL);
	cr_assert(kstr_eq(c, "abc"));
	/* Borrowed from the buffer, not copied. */
	cr_assert_eq((const uint8_t *)c.ptr, w.buf + 6);
	kb_writer_free(&w);
}

Test(kbuf, string_compact)
{
	struct kb_writer w = {0};
	kb_write_compact_string(&w, KSTR_NULL);
	kb_write_compact_string(&w, KSTR_LIT(""));
	kb_write_compact_string(&w, KSTR_LIT("abc"));
	EXPECT(&w, 0x00, 0x01, 0x04, 'a', 'b', 'c');
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct kstr a, b, c;
	kb_read_compact_string(&r, &a);
	kb_read_compact_string(&r, &b);
	kb_read_compact_string(&r, &c);
	cr_assert(kb_reader_ok(&r));
	cr_assert(a.len == -1 && a.ptr == NULL);
	cr_assert(b.len == 0 && b.ptr != NULL);
	cr_assert(kstr_eq(c, "abc"));
	kb_writer_free(&w);
}

Test(kbuf, string_long_compact_length)
{
	/* 200 bytes: length+1 = 201 takes two varint bytes. */
	char buf[200];
	memset(buf, 'x', sizeof(buf));
	struct kb_writer w = {0};
	kb_write_compact_string(&w, (struct kstr){buf, 200});
	cr_assert_eq(w.len, 202);
	cr_assert(w.buf[0] == 0xc9 && w.buf[1] == 0x01);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct kstr s;
	cr_assert(kb_read_compact_string(&r, &s));
	cr_assert(s.len == 200 && memcmp(s.ptr, buf, 200) == 0);
	kb_writer_free(&w);
}

Test(kbuf, string_too_long_for_int16_fails_writer)
{
	static char big[40000];
	struct kb_writer w = {0};
	kb_write_string(&w, (struct kstr){big, sizeof(big)});
	cr_assert_not(kb_writer_ok(&w));
	kb_writer_free(&w);
}

Test(kbuf, bytes_classic_and_compact)
{
	struct kb_writer w = {0};
	kb_write_bytes(&w, KSTR_NULL);
	kb_write_bytes(&w, KSTR_LIT(""));
	kb_write_bytes(&w, KSTR_LIT("\x01\x02"));
	kb_write_compact_bytes(&w, KSTR_NULL);
	kb_write_compact_bytes(&w, KSTR_LIT(""));
	kb_write_compact_bytes(&w, KSTR_LIT("\x01\x02"));
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2, 0x00,
	       0x01, 0x03, 1, 2);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct kstr s[6];
	for (int i = 0; i < 3; i++)
		kb_read_bytes(&r, &s[i]);
	for (int i = 3; i < 6; i++)
		kb_read_compact_bytes(&r, &s[i]);
	cr_assert(kb_reader_ok(&r));
	cr_assert_eq(kb_remaining(&r), 0);
	for (int i = 0; i < 6; i += 3) {
		cr_assert_eq(s[i].len, -1);
		cr_assert_eq(s[i + 1].len, 0);
		cr_assert_eq(s[i + 2].len, 2);
		cr_assert(memcmp(s[i + 2].ptr, "\x01\x02", 2) == 0);
	}
	kb_writer_free(&w);
}

Test(kbuf, varbytes)
{
	struct kb_writer w = {0};
	kb_write_varbytes(&w, KSTR_NULL);
	kb_write_varbytes(&w, KSTR_LIT(""));
	kb_write_varbytes(&w, KSTR_LIT("ab"));
	EXPECT(&w, 0x01, 0x00, 0x04, 'a', 'b');
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	struct kstr a, b, c;
	kb_read_varbytes(&r, &a);
	kb_read_varbytes(&r, &b);
	kb_read_varbytes(&r, &c);
	cr_assert(kb_reader_ok(&r));
	cr_assert(a.len == -1 && b.len == 0 && kstr_eq(c, "ab"));
	kb_writer_free(&w);

	/* A varint length of -2 (zig-zag 3) is impossible. */
	static const uint8_t bad[] = {0x03, 'a', 'b'};
	kb_reader_init(&r, bad, sizeof(bad));
	cr_assert_not(kb_read_varbytes(&r, &a));
	cr_assert_eq(a.len, -1);
}

Test(kbuf, negative_lengths_below_minus_one_fail)
{
	static const uint8_t s16[] = {0xff, 0xfe, 'a', 'b'};
	static const uint8_t s32[] = {0xff, 0xff, 0xff, 0xfe, 'a', 'b'};
	struct kb_reader r;
	struct kstr s;
	kb_reader_init(&r, s16, sizeof(s16));
	cr_assert_not(kb_read_string(&r, &s));
	kb_reader_init(&r, s32, sizeof(s32));
	cr_assert_not(kb_read_bytes(&r, &s));
	int32_t n;
	kb_reader_init(&r, s32, sizeof(s32));
	cr_assert_not(kb_read_array_len(&r, &n, 100));
}

Test(kbuf, hostile_lengths)
{
	struct kb_reader r;
	struct kstr s;
	/* A 2 GB byte run announced with ten bytes behind it. */
	static const uint8_t bytes2g[] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3,
					  4,	5,    6,    7,	  8, 9, 10};
	kb_reader_init(&r, bytes2g, sizeof(bytes2g));
	cr_assert_not(kb_read_bytes(&r, &s));
	cr_assert(s.len == -1 && s.ptr == NULL);
	cr_assert_eq(kb_remaining(&r), 0);
	/* The compact form of 4 GB - 2. */
	static const uint8_t c4g[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 1, 2};
	kb_reader_init(&r, c4g, sizeof(c4g));
	cr_assert_not(kb_read_compact_string(&r, &s));
	/* A compact length of exactly 2^31 - 1 + 1. */
	static const uint8_t c2g[] = {0x80, 0x80, 0x80, 0x80, 0x08, 1};
	kb_reader_init(&r, c2g, sizeof(c2g));
	cr_assert_not(kb_read_compact_bytes(&r, &s));
	/* 32767-byte string, three bytes present. */
	static const uint8_t s32k[] = {0x7f, 0xff, 'a', 'b', 'c'};
	kb_reader_init(&r, s32k, sizeof(s32k));
	cr_assert_not(kb_read_string(&r, &s));
	/* A varint length of INT32_MAX. */
	static const uint8_t vmax[] = {0xfe, 0xff, 0xff, 0xff, 0x0f, 'a'};
	kb_reader_init(&r, vmax, sizeof(vmax));
	cr_assert_not(kb_read_varbytes(&r, &s));
}

Test(kbuf, array_len_classic)
{
	static const uint8_t null[] = {0xff, 0xff, 0xff, 0xff};
	static const uint8_t three[] = {0, 0, 0, 3, 1, 2, 3};
	static const uint8_t huge[] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
	struct kb_reader r;
	int32_t n;
	kb_reader_init(&r, null, sizeof(null));
	cr_assert(kb_read_array_len(&r, &n, 10) && n == -1);
	kb_reader_init(&r, three, sizeof(three));
	cr_assert(kb_read_array_len(&r, &n, 10) && n == 3);
	/* Above the caller's maximum. */
	kb_reader_init(&r, three, sizeof(three));
	cr_assert_not(kb_read_array_len(&r, &n, 2));
	cr_assert_eq(n, 0);
	/* More elements than bytes left (each takes at least one). */
	kb_reader_init(&r, three, 6);
	cr_assert_not(kb_read_array_len(&r, &n, 10));
	kb_reader_init(&r, huge, sizeof(huge));
	cr_assert_not(kb_read_array_len(&r, &n, INT32_MAX));
	/* An empty array needs no bytes after the count. */
	static const uint8_t zero[] = {0, 0, 0, 0};
	kb_reader_init(&r, zero, sizeof(zero));
	cr_assert(kb_read_array_len(&r, &n, 0) && n == 0);

	struct kb_writer w = {0};
	kb_write_array_len(&w, -1);
	kb_write_array_len(&w, 0);
	kb_write_array_len(&w, 3);
	EXPECT(&w, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 3);
	kb_writer_free(&w);
}

Test(kbuf, array_len_compact)
{
	static const uint8_t in[] = {0x00, 0x01, 0x03, 7, 8};
	struct kb_reader r;
	int32_t a, b, c;
	kb_reader_init(&r, in, sizeof(in));
	kb_read_compact_array_len(&r, &a, 10);
	kb_read_compact_array_len(&r, &b, 10);
	kb_read_compact_array_len(&r, &c, 10);
	cr_assert(kb_reader_ok(&r));
	cr_assert(a == -1 && b == 0 && c == 2);
	/* Count 3 with two bytes left. */
	static const uint8_t short_[] = {0x04, 7, 8};
	kb_reader_init(&r, short_, sizeof(short_));
	cr_assert_not(kb_read_compact_array_len(&r, &a, 10));
	/* Count UINT32_MAX - 1. */
	static const uint8_t huge[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 1};
	kb_reader_init(&r, huge, sizeof(huge));
	cr_assert_not(kb_read_compact_array_len(&r, &a, INT32_MAX));

	struct kb_writer w = {0};
	kb_write_compact_array_len(&w, -1);
	kb_write_compact_array_len(&w, 0);
	kb_write_compact_array_len(&w, 2);
	kb_write_compact_array_len(&w, 127);
	EXPECT(&w, 0x00, 0x01, 0x03, 0x80, 0x01);
	kb_writer_free(&w);
}

Test(kbuf, sticky_error)
{
	static const uint8_t in[] = {0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	int16_t a;
	int64_t b;
	cr_assert(kb_read_i16(&r, &a) && a == 1);
	/* A run larger than the ten bytes left fails the reader. */
	const uint8_t *p;
	cr_assert_not(kb_read_raw(&r, 11, &p));
	cr_assert_null(p);
	cr_assert_not(kb_reader_ok(&r));
	cr_assert_eq(kb_remaining(&r), 0);
	/* Bytes remain in the buffer, yet every later read fails. */
	cr_assert_not(kb_read_i64(&r, &b));
	cr_assert_eq(b, 0);
	int16_t c = 5;
	cr_assert_not(kb_read_i16(&r, &c));
	cr_assert_eq(c, 0);
	struct kstr s = KSTR_LIT("x");
	cr_assert_not(kb_read_string(&r, &s));
	cr_assert(s.len == -1 && s.ptr == NULL);
	struct kuuid u;
	memset(&u, 0xaa, sizeof(u));
	cr_assert_not(kb_read_uuid(&r, &u));
	cr_assert_eq(u.b[0], 0);
	cr_assert_not(kb_skip(&r, 0));
}

Test(kbuf, reader_fail_is_sticky)
{
	static const uint8_t in[] = {1, 2, 3, 4};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	kb_reader_fail(&r);
	int8_t v;
	cr_assert_not(kb_read_i8(&r, &v));
	cr_assert_eq(kb_remaining(&r), 0);
}

/* Every primitive read from every too-short prefix fails cleanly. */
Test(kbuf, truncation)
{
	static const uint8_t full[] = {0x00, 0x05, 'h', 'e', 'l', 'l', 'o'};
	struct kb_reader r;
	for (size_t n = 0; n < sizeof(full); n++) {
		struct kstr s;
		kb_reader_init(&r, full, n);
		cr_assert_not(kb_read_string(&r, &s), "prefix %zu", n);
		cr_assert_eq(s.len, -1);
	}
	static const uint8_t eight[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	for (size_t n = 0; n < 8; n++) {
		int64_t v64;
		double f;
		kb_reader_init(&r, eight, n);
		cr_assert_not(kb_read_i64(&r, &v64));
		kb_reader_init(&r, eight, n);
		cr_assert_not(kb_read_f64(&r, &f));
		if (n < 4) {
			int32_t v32;
			uint32_t u32;
			kb_reader_init(&r, eight, n);
			cr_assert_not(kb_read_i32(&r, &v32));
			kb_reader_init(&r, eight, n);
			cr_assert_not(kb_read_u32(&r, &u32));
		}
		if (n < 2) {
			int16_t v16;
			uint16_t u16;
			kb_reader_init(&r, eight, n);
			cr_assert_not(kb_read_i16(&r, &v16));
			kb_reader_init(&r, eight, n);
			cr_assert_not(kb_read_u16(&r, &u16));
		}
	}
	int8_t v8;
	bool b;
	kb_reader_init(&r, NULL, 0);
	cr_assert_not(kb_read_i8(&r, &v8));
	kb_reader_init(&r, NULL, 0);
	cr_assert_not(kb_read_bool(&r, &b));
}

Test(kbuf, raw_and_skip)
{
	static const uint8_t in[] = {1, 2, 3, 4, 5};
	struct kb_reader r;
	kb_reader_init(&r, in, sizeof(in));
	const uint8_t *p;
	cr_assert(kb_skip(&r, 1));
	cr_assert(kb_read_raw(&r, 3, &p));
	cr_assert(p == in + 1);
	cr_assert_eq(kb_remaining(&r), 1);
	cr_assert(kb_read_raw(&r, 0, &p));
	cr_assert_not(kb_skip(&r, 2));
	cr_assert_not(kb_reader_ok(&r));
	kb_reader_init(&r, in, sizeof(in));
	cr_assert_not(kb_skip(&r, SIZE_MAX));
}

Test(kbuf, writer_grows)
{
	struct kb_writer w;
	kb_writer_init(&w);
	for (int i = 0; i < 100000; i++)
		kb_write_i32(&w, i);
	cr_assert(kb_writer_ok(&w));
	cr_assert_eq(w.len, 400000);
	cr_assert_geq(w.cap, w.len);
	struct kb_reader r;
	kb_reader_init(&r, w.buf, w.len);
	for (int i = 0; i < 100000; i++) {
		int32_t v;
		kb_read_i32(&r, &v);
		cr_assert_eq(v, i);
	}
	cr_assert(kb_reader_ok(&r));
	kb_writer_free(&w);
	cr_assert(w.buf == NULL && w.len == 0 && w.cap == 0);
	/* A freed writer is usable again. */
	kb_write_i8(&w, 1);
	cr_assert_eq(w.len, 1);
	kb_writer_free(&w);
}

Test(kbuf, writer_reserve_overflow_sets_failed)
{
	struct kb_writer w = {0};
	kb_write_i8(&w, 1);
	cr_assert_not(kb_writer_reserve(&w, SIZE_MAX));
	cr_assert_not(kb_writer_ok(&w));
	/* Sticky: nothing more is written. */
	kb_write_i32(&w, 7);
	cr_assert_eq(w.len, 1);
	kb_writer_free(&w);
}

Test(kbuf, back_patching)
{
	struct kb_writer w = {0};
	size_t off = kb_skip_bytes(&w, 4);
	kb_write_string(&w, KSTR_LIT("hi"));
	size_t off2 = kb_skip_bytes(&w, 4);
	kb_patch_i32(&w, off, (int32_t)(w.len - off - 4));
	kb_patch_u32(&w, off2, 0xdeadbeef);
	EXPECT(&w, 0, 0, 0, 8, 0, 2, 'h', 'i', 0xde, 0xad, 0xbe, 0xef);
	/* A patch past the end is a bug: it fails the writer. */
	kb_patch_i32(&w, w.len - 2, 1);
	cr_assert_not(kb_writer_ok(&w));
	kb_writer_free(&w);

	/* Patching a failed writer changes nothing. */
	kb_write_i32(&w, 0);
	w.failed = true;
	kb_patch_i32(&w, 0, -1);
	cr_assert(w.buf[0] == 0 && w.buf[3] == 0);
	kb_writer_free(&w);
}

Test(kbuf, kstr_helpers)
{
	struct kstr s = kstr_c("topic");
	cr_assert_eq(s.len, 5);
	cr_assert(kstr_eq(s, "topic"));
	cr_assert_not(kstr_eq(s, "topi"));
	cr_assert_not(kstr_eq(s, "topics"));
	cr_assert_not(kstr_eq(s, NULL));
	struct kstr n = kstr_c(NULL);
	cr_assert(n.len == -1 && n.ptr == NULL);
	cr_assert_not(kstr_eq(n, ""));
	cr_assert(kstr_eq(kstr_c(""), ""));
	cr_assert(kstr_eq(KSTR_LIT("a\0b"), "a") == false);
}

Test(kstr, text_as_postgres_stores_it)
{
	cr_assert(kstr_is_text(KSTR_LIT("caf\xc3\xa9 \xf0\x9f\x98\x80")));
	cr_assert(kstr_is_text(KSTR_NULL));
	cr_assert(kstr_is_text(KSTR_LIT("")));
	cr_assert_not(kstr_is_text(KSTR_LIT("caf\xe9")));
	cr_assert_not(kstr_is_text((struct kstr){"a\0b", 3}));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xc3")));	   /* cut short */
	cr_assert_not(kstr_is_text(KSTR_LIT("\xe2\x82"))); /* cut short */
	/* What Postgres refuses too: overlong forms (Java's NUL among them),
	 * surrogates, past U+10FFFF. */
	cr_assert_not(kstr_is_text(KSTR_LIT("\xc0\x80")));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xe0\x80\xaf")));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xf0\x80\x80\xaf")));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xed\xa0\x80")));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xf4\x90\x80\x80")));
	cr_assert_not(kstr_is_text(KSTR_LIT("\xf5\x80\x80\x80")));
	cr_assert(kstr_is_text(KSTR_LIT("\xed\x9f\xbf \xf4\x8f\xbf\xbf")));
	char *t = kstr_dup_text((struct kstr){"caf\xe9\0\xc3\xa9", 7});
	cr_assert_str_eq(t, "caf\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
	free(t);
	t = kstr_dup_text(KSTR_NULL);
	cr_assert_str_eq(t, "");
	free(t);
}
