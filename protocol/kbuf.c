/*
 * kbuf: Kafka's wire primitives (see kbuf.h for the contract).
 *
 * Integers are big-endian.  Varints follow protobuf's base-128 encoding,
 * the signed ones zig-zag encoded, as Kafka's ByteUtils does.
 */
#include "kbuf.h"

#include <stdlib.h>
#include <string.h>

/* The empty string every zero-length read points at (never NULL). */
static const char kb_empty[1] = "";

struct kstr kstr_c(const char *s)
{
	if (s == NULL)
		return KSTR_NULL;
	size_t n = strlen(s);
	if (n > INT32_MAX)
		n = INT32_MAX;
	return (struct kstr){s, (int32_t)n};
}

/* Bytes in the well-formed UTF-8 sequence at p[0..n) (RFC 3629: no
 * overlong forms, surrogates or code points past U+10FFFF, as Postgres
 * checks), 0 when none starts there; a NUL counts as none. */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf; /* the second byte's range */
	if (c == 0)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, lo = c == 0xe0 ? 0xa0 : 0x80,
		hi = c == 0xed ? 0x9f : 0xbf;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, lo = c == 0xf0 ? 0x90 : 0x80,
		hi = c == 0xf4 ? 0x8f : 0xbf;
	else
		return 0;
	if (len > n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t k = 2; k < len; k++)
		if ((p[k] & 0xc0) != 0x80)
			return 0;
	return len;
}

bool kstr_is_text(struct kstr s)
{
	const unsigned char *p = (const unsigned char *)s.ptr;
	for (int32_t i = 0; i < s.len;) {
		size_t n = utf8_seq(p + i, (size_t)(s.len - i));
		if (!n)
			return false;
		i += (int32_t)n;
	}
	return true;
}

char *kstr_dup_text(struct kstr s)
{
	size_t n = s.len > 0 ? (size_t)s.len : 0;
	char *out = malloc(3 * n + 1), *o = out;
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s.ptr;
	for (size_t i = 0; i < n;) {
		size_t k = utf8_seq(p + i, n - i);
		if (k) {
			memcpy(o, p + i, k);
			o += k;
			i += k;
		} else {
			memcpy(o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	*o = '\0';
	return out;
}

char *kstr_dup(struct kstr s)
{
	size_t n = s.len > 0 ? (size_t)s.len : 0;
	char *p = malloc(n + 1);
	if (p) {
		if (n)
			memcpy(p, s.ptr, n);
		p[n] = '\0';
	}
	return p;
}

bool kstr_eq(struct kstr a, const char *s)
{
	if (a.len < 0 || s == NULL)
		return false;
	size_t n = strlen(s);
	if (n != (size_t)a.len)
		return false;
	return n == 0 || memcmp(a.ptr, s, n) == 0;
}

int kstr_cmp(struct kstr a, const char *s)
{
	size_t sl = strlen(s);
	size_t al = a.len > 0 ? (size_t)a.len : 0;
	int c = al && sl ? memcmp(a.ptr, s, al < sl ? al : sl) : 0;
	if (c != 0)
		return c;
	return al < sl ? -1 : al > sl;
}

/* Reader */

void kb_reader_init(struct kb_reader *r, const void *buf, size_t len)
{
	r->buf = buf;
	r->len = buf != NULL ? len : 0;
	r->pos = 0;
	r->failed = false;
}

void kb_reader_fail(struct kb_reader *r)
{
	r->failed = true;
}

/* Returns a pointer to the next n bytes and consumes them, or NULL. */
static const uint8_t *take(struct kb_reader *r, size_t n)
{
	if (r->failed)
		return NULL;
	if (n > r->len - r->pos) {
		r->failed = true;
		return NULL;
	}
	const uint8_t *p = r->buf + r->pos;
	r->pos += n;
	return p;
}

static uint64_t be_get(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

bool kb_read_i8(struct kb_reader *r, int8_t *v)
{
	const uint8_t *p = take(r, 1);
	*v = p ? (int8_t)p[0] : 0;
	return p != NULL;
}

bool kb_read_i16(struct kb_reader *r, int16_t *v)
{
	const uint8_t *p = take(r, 2);
	*v = p ? (int16_t)(uint16_t)be_get(p, 2) : 0;
	return p != NULL;
}

bool kb_read_u16(struct kb_reader *r, uint16_t *v)
{
	const uint8_t *p = take(r, 2);
	*v = p ? (uint16_t)be_get(p, 2) : 0;
	return p != NULL;
}

bool kb_read_i32(struct kb_reader *r, int32_t *v)
{
	const uint8_t *p = take(r, 4);
	*v = p ? (int32_t)(uint32_t)be_get(p, 4) : 0;
	return p != NULL;
}

bool kb_read_u32(struct kb_reader *r, uint32_t *v)
{
	const uint8_t *p = take(r, 4);
	*v = p ? (uint32_t)be_get(p, 4) : 0;
	return p != NULL;
}

bool kb_read_i64(struct kb_reader *r, int64_t *v)
{
	const uint8_t *p = take(r, 8);
	*v = p ? (int64_t)be_get(p, 8) : 0;
	return p != NULL;
}

bool kb_read_f64(struct kb_reader *r, double *v)
{
	const uint8_t *p = take(r, 8);
	uint64_t bits = p ? be_get(p, 8) : 0;
	memcpy(v, &bits, sizeof(*v));
	return p != NULL;
}

bool kb_read_bool(struct kb_reader *r, bool *v)
{
	const uint8_t *p = take(r, 1);
	*v = p ? p[0] != 0 : false;
	return p != NULL;
}

/*
 * Reads an unsigned base-128 varint of at most maxbytes bytes whose value
 * fits in maxbits bits; anything longer or wider fails.
 */
static bool read_uvar(struct kb_reader *r, int maxbytes, int maxbits,
		      uint64_t *v)
{
	uint64_t val = 0;
	*v = 0;
	for (int i = 0; i < maxbytes; i++) {
		const uint8_t *p = take(r, 1);
		if (p == NULL)
			return false;
		uint64_t b = p[0] & 0x7f;
		int shift = 7 * i;
		if (shift + 7 > maxbits && (b >> (maxbits - shift)) != 0)
			break; /* bits beyond the type's width */
		val |= b << shift;
		if (!(p[0] & 0x80)) {
			*v = val;
			return true;
		}
	}
	r->failed = true;
	return false;
}

bool kb_read_uvarint(struct kb_reader *r, uint32_t *v)
{
	uint64_t u;
	bool ok = read_uvar(r, 5, 32, &u);
	*v = (uint32_t)u;
	return ok;
}

bool kb_read_varint(struct kb_reader *r, int32_t *v)
{
	uint64_t u;
	bool ok = read_uvar(r, 5, 32, &u);
	uint32_t z = (uint32_t)u;
	*v = (int32_t)((z >> 1) ^ (~(z & 1) + 1));
	return ok;
}

bool kb_read_varlong(struct kb_reader *r, int64_t *v)
{
	uint64_t z;
	bool ok = read_uvar(r, 10, 64, &z);
	*v = (int64_t)((z >> 1) ^ (~(z & 1) + 1));
	return ok;
}

bool kb_read_uuid(struct kb_reader *r, struct kuuid *v)
{
	const uint8_t *p = take(r, 16);
	if (p)
		memcpy(v->b, p, 16);
	else
		memset(v->b, 0, 16);
	return p != NULL;
}

/* Borrows len bytes as s; len < 0 must have been handled by the caller. */
static bool read_run(struct kb_reader *r, int64_t len, struct kstr *s)
{
	*s = KSTR_NULL;
	if (r->failed)
		return false;
	if (len < 0 || len > INT32_MAX || (uint64_t)len > kb_remaining(r)) {
		r->failed = true;
		return false;
	}
	const uint8_t *p = take(r, (size_t)len);
	s->ptr = len > 0 ? (const char *)p : kb_empty;
	s->len = (int32_t)len;
	return true;
}

/* A classic length: -1 is null, below -1 fails. */
static bool read_classic(struct kb_reader *r, int64_t len, bool ok,
			 struct kstr *s)
{
	*s = KSTR_NULL;
	if (!ok)
		return false;
	if (len == -1)
		return true;
	return read_run(r, len, s);
}

bool kb_read_string(struct kb_reader *r, struct kstr *s)
{
	int16_t n;
	bool ok = kb_read_i16(r, &n);
	return read_classic(r, n, ok, s);
}

bool kb_read_bytes(struct kb_reader *r, struct kstr *s)
{
	int32_t n;
	bool ok = kb_read_i32(r, &n);
	return read_classic(r, n, ok, s);
}

bool kb_read_varbytes(struct kb_reader *r, struct kstr *s)
{
	int32_t n;
	bool ok = kb_read_varint(r, &n);
	return read_classic(r, n, ok, s);
}

bool kb_read_compact_string(struct kb_reader *r, struct kstr *s)
{
	uint32_t n;
	*s = KSTR_NULL;
	if (!kb_read_uvarint(r, &n))
		return false;
	if (n == 0)
		return true;
	return read_run(r, (int64_t)n - 1, s);
}

bool kb_read_compact_bytes(struct kb_reader *r, struct kstr *s)
{
	return kb_read_compact_string(r, s);
}

static bool check_count(struct kb_reader *r, int64_t n, int32_t max,
			int32_t *out)
{
	*out = 0;
	if (r->failed)
		return false;
	if (n == -1) {
		*out = -1;
		return true;
	}
	if (n < -1 || n > max || (uint64_t)n > kb_remaining(r)) {
		r->failed = true;
		return false;
	}
	*out = (int32_t)n;
	return true;
}

bool kb_read_array_len(struct kb_reader *r, int32_t *n, int32_t max)
{
	int32_t v;
	kb_read_i32(r, &v);
	return check_count(r, v, max, n);
}

bool kb_read_compact_array_len(struct kb_reader *r, int32_t *n, int32_t max)
{
	uint32_t v;
	kb_read_uvarint(r, &v);
	return check_count(r, (int64_t)v - 1, max, n);
}

bool kb_read_raw(struct kb_reader *r, size_t n, const uint8_t **p)
{
	*p = take(r, n);
	return *p != NULL;
}

bool kb_skip(struct kb_reader *r, size_t n)
{
	return take(r, n) != NULL;
}

/* Writer */

void kb_writer_init(struct kb_writer *w)
{
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->failed = false;
}

void kb_writer_free(struct kb_writer *w)
{
	free(w->buf);
	kb_writer_init(w);
}

bool kb_writer_reserve(struct kb_writer *w, size_t n)
{
	if (w->failed)
		return false;
	if (n <= w->cap - w->len)
		return true;
	if (n > SIZE_MAX / 2 - w->len) {
		w->failed = true;
		return false;
	}
	size_t need = w->len + n;
	size_t cap = w->cap ? w->cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *buf = realloc(w->buf, cap);
	if (buf == NULL) {
		w->failed = true;
		return false;
	}
	w->buf = buf;
	w->cap = cap;
	return true;
}

void kb_write_raw(struct kb_writer *w, const void *p, size_t n)
{
	if (!kb_writer_reserve(w, n) || n == 0)
		return;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void be_put(struct kb_writer *w, uint64_t v, int n)
{
	uint8_t b[8];
	for (int i = n - 1; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
	kb_write_raw(w, b, (size_t)n);
}

void kb_write_i8(struct kb_writer *w, int8_t v)
{
	be_put(w, (uint8_t)v, 1);
}

void kb_write_i16(struct kb_writer *w, int16_t v)
{
	be_put(w, (uint16_t)v, 2);
}

void kb_write_u16(struct kb_writer *w, uint16_t v)
{
	be_put(w, v, 2);
}

void kb_write_i32(struct kb_writer *w, int32_t v)
{
	be_put(w, (uint32_t)v, 4);
}

void kb_write_u32(struct kb_writer *w, uint32_t v)
{
	be_put(w, v, 4);
}

void kb_write_i64(struct kb_writer *w, int64_t v)
{
	be_put(w, (uint64_t)v, 8);
}

void kb_write_f64(struct kb_writer *w, double v)
{
	uint64_t bits;
	memcpy(&bits, &v, sizeof(bits));
	be_put(w, bits, 8);
}

void kb_write_bool(struct kb_writer *w, bool v)
{
	be_put(w, v ? 1 : 0, 1);
}

static void write_uvar(struct kb_writer *w, uint64_t v)
{
	uint8_t b[10];
	size_t n = 0;
	while (v >= 0x80) {
		b[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	b[n++] = (uint8_t)v;
	kb_write_raw(w, b, n);
}

void kb_write_uvarint(struct kb_writer *w, uint32_t v)
{
	write_uvar(w, v);
}

void kb_write_varint(struct kb_writer *w, int32_t v)
{
	write_uvar(w, ((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

void kb_write_varlong(struct kb_writer *w, int64_t v)
{
	write_uvar(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void kb_write_uuid(struct kb_writer *w, const struct kuuid *v)
{
	kb_write_raw(w, v->b, 16);
}

/* Writes s's bytes; a length that does not fit fails the writer. */
static void write_run(struct kb_writer *w, struct kstr s)
{
	if (s.len > 0)
		kb_write_raw(w, s.ptr, (size_t)s.len);
}

void kb_write_string(struct kb_writer *w, struct kstr s)
{
	if (s.len < 0) {
		kb_write_i16(w, -1);
		return;
	}
	if (s.len > INT16_MAX) {
		w->failed = true;
		return;
	}
	kb_write_i16(w, (int16_t)s.len);
	write_run(w, s);
}

void kb_write_compact_string(struct kb_writer *w, struct kstr s)
{
	if (s.len < 0) {
		kb_write_uvarint(w, 0);
		return;
	}
	kb_write_uvarint(w, (uint32_t)s.len + 1);
	write_run(w, s);
}

void kb_write_bytes(struct kb_writer *w, struct kstr s)
{
	kb_write_i32(w, s.len < 0 ? -1 : s.len);
	write_run(w, s);
}

void kb_write_compact_bytes(struct kb_writer *w, struct kstr s)
{
	kb_write_compact_string(w, s);
}

void kb_write_varbytes(struct kb_writer *w, struct kstr s)
{
	kb_write_varint(w, s.len < 0 ? -1 : s.len);
	write_run(w, s);
}

void kb_write_array_len(struct kb_writer *w, int32_t n)
{
	kb_write_i32(w, n < 0 ? -1 : n);
}

void kb_write_compact_array_len(struct kb_writer *w, int32_t n)
{
	kb_write_uvarint(w, n < 0 ? 0 : (uint32_t)n + 1);
}

size_t kb_skip_bytes(struct kb_writer *w, size_t n)
{
	size_t off = w->len;
	if (!kb_writer_reserve(w, n))
		return off;
	if (n > 0)
		memset(w->buf + w->len, 0, n);
	w->len += n;
	return off;
}

static void patch(struct kb_writer *w, size_t off, uint32_t v)
{
	if (w->failed)
		return;
	if (off > w->len || w->len - off < 4) {
		w->failed = true; /* a caller's bug: never past the end */
		return;
	}
	w->buf[off] = (uint8_t)(v >> 24);
	w->buf[off + 1] = (uint8_t)(v >> 16);
	w->buf[off + 2] = (uint8_t)(v >> 8);
	w->buf[off + 3] = (uint8_t)v;
}

void kb_patch_i32(struct kb_writer *w, size_t off, int32_t v)
{
	patch(w, off, (uint32_t)v);
}

void kb_patch_u32(struct kb_writer *w, size_t off, uint32_t v)
{
	patch(w, off, v);
}

size_t kb_uvarint_size(uint32_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

size_t kb_varint_size(int32_t v)
{
	return kb_uvarint_size(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

size_t kb_varlong_size(int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
	size_t n = 1;
	while (z >= 0x80) {
		z >>= 7;
		n++;
	}
	return n;
}
