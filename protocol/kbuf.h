/*
 * kbuf: Kafka's wire primitives.
 *
 * A reader walks a borrowed buffer with a sticky error: once any read runs
 * past the end or meets an impossible length, every later read fails too and
 * yields zero values, so a parser reads all its fields and checks
 * kb_reader_ok() once.  Every length and count is checked against what
 * remains in the buffer before it is used.
 *
 * A writer appends to a growable heap buffer with a sticky `failed` bit (set
 * when memory runs out), checked once before the bytes are sent, and offers
 * back-patching for sizes that are known only after the body is written.
 */
#ifndef SAMSA_KBUF_H
#define SAMSA_KBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A string or byte run as Kafka sends it: borrowed, not NUL-terminated.
 * len == -1 is a null string/bytes; ptr is then NULL.
 */
struct kstr {
	const char *ptr;
	int32_t len;
};

#define KSTR_NULL   ((struct kstr){NULL, -1})
#define KSTR_LIT(s) ((struct kstr){(s), (int32_t)(sizeof(s) - 1)})

/* A C string as a kstr (NULL gives the null kstr). Borrows s. */
struct kstr kstr_c(const char *s);
/* A malloc'd, NUL-terminated copy of s (null gives ""); NULL when memory
 * runs out. */
char *kstr_dup(struct kstr s);
/* True when s is text Postgres can store: valid UTF-8 with no NUL (null
 * and empty are). */
bool kstr_is_text(struct kstr s);
/* kstr_dup with every byte that is not part of well-formed UTF-8
 * replaced by U+FFFD, as Kafka's Java decoding reads such bytes, and every
 * NUL too (Postgres text holds none): for strings kept as text that name
 * nothing (client ids). */
char *kstr_dup_text(struct kstr s);
/* True when a equals the C string s byte for byte (null equals nothing). */
bool kstr_eq(struct kstr a, const char *s);
/* Orders a against the C string s as memcmp orders bytes (null as empty). */
int kstr_cmp(struct kstr a, const char *s);

struct kuuid {
	uint8_t b[16];
};

struct kb_reader {
	const uint8_t *buf;
	size_t len;
	size_t pos;
	bool failed;
};

/* Borrows buf until the reader and everything read from it are done. */
void kb_reader_init(struct kb_reader *r, const void *buf, size_t len);
static inline bool kb_reader_ok(const struct kb_reader *r)
{
	return !r->failed;
}
static inline size_t kb_remaining(const struct kb_reader *r)
{
	return r->failed ? 0 : r->len - r->pos;
}
/* Marks the reader failed (used by callers that find a semantic error). */
void kb_reader_fail(struct kb_reader *r);

/*
 * Each read returns true on success.  On failure (or when the reader had
 * already failed) it stores a zero value / null string and returns false.
 */
bool kb_read_i8(struct kb_reader *r, int8_t *v);
bool kb_read_i16(struct kb_reader *r, int16_t *v);
bool kb_read_u16(struct kb_reader *r, uint16_t *v);
bool kb_read_i32(struct kb_reader *r, int32_t *v);
bool kb_read_u32(struct kb_reader *r, uint32_t *v);
bool kb_read_i64(struct kb_reader *r, int64_t *v);
bool kb_read_f64(struct kb_reader *r, double *v);
bool kb_read_bool(struct kb_reader *r, bool *v);
/* Zig-zag varint (record fields); more than 5 bytes fails. */
bool kb_read_varint(struct kb_reader *r, int32_t *v);
/* Zig-zag varlong; more than 10 bytes fails. */
bool kb_read_varlong(struct kb_reader *r, int64_t *v);
/* Unsigned varint (compact lengths, tags); more than 5 bytes fails. */
bool kb_read_uvarint(struct kb_reader *r, uint32_t *v);
bool kb_read_uuid(struct kb_reader *r, struct kuuid *v);
/* int16 length, -1 = null. */
bool kb_read_string(struct kb_reader *r, struct kstr *s);
/* uvarint length+1, 0 = null. */
bool kb_read_compact_string(struct kb_reader *r, struct kstr *s);
/* int32 length, -1 = null. */
bool kb_read_bytes(struct kb_reader *r, struct kstr *s);
/* uvarint length+1, 0 = null. */
bool kb_read_compact_bytes(struct kb_reader *r, struct kstr *s);
/* Varint length, -1 = null (record keys, values, header keys/values). */
bool kb_read_varbytes(struct kb_reader *r, struct kstr *s);
/*
 * Array counts: int32 (classic) or uvarint count+1 (compact); -1 = null.
 * A count above max, or above the bytes remaining (every element takes at
 * least one byte), fails.
 */
bool kb_read_array_len(struct kb_reader *r, int32_t *n, int32_t max);
bool kb_read_compact_array_len(struct kb_reader *r, int32_t *n, int32_t max);
/* Borrow n raw bytes. */
bool kb_read_raw(struct kb_reader *r, size_t n, const uint8_t **p);
bool kb_skip(struct kb_reader *r, size_t n);

struct kb_writer {
	uint8_t *buf;
	size_t len;
	size_t cap;
	bool failed;
};

/* A zeroed writer is valid and empty. */
void kb_writer_init(struct kb_writer *w);
/* Frees the buffer; the writer is empty again. */
void kb_writer_free(struct kb_writer *w);
static inline bool kb_writer_ok(const struct kb_writer *w)
{
	return !w->failed;
}
/* Makes room for n more bytes; false (and failed) when memory runs out. */
bool kb_writer_reserve(struct kb_writer *w, size_t n);

void kb_write_i8(struct kb_writer *w, int8_t v);
void kb_write_i16(struct kb_writer *w, int16_t v);
void kb_write_u16(struct kb_writer *w, uint16_t v);
void kb_write_i32(struct kb_writer *w, int32_t v);
void kb_write_u32(struct kb_writer *w, uint32_t v);
void kb_write_i64(struct kb_writer *w, int64_t v);
void kb_write_f64(struct kb_writer *w, double v);
void kb_write_bool(struct kb_writer *w, bool v);
void kb_write_varint(struct kb_writer *w, int32_t v);
void kb_write_varlong(struct kb_writer *w, int64_t v);
void kb_write_uvarint(struct kb_writer *w, uint32_t v);
void kb_write_uuid(struct kb_writer *w, const struct kuuid *v);
void kb_write_string(struct kb_writer *w, struct kstr s);
void kb_write_compact_string(struct kb_writer *w, struct kstr s);
void kb_write_bytes(struct kb_writer *w, struct kstr s);
void kb_write_compact_bytes(struct kb_writer *w, struct kstr s);
void kb_write_varbytes(struct kb_writer *w, struct kstr s);
void kb_write_array_len(struct kb_writer *w, int32_t n);
void kb_write_compact_array_len(struct kb_writer *w, int32_t n);
void kb_write_raw(struct kb_writer *w, const void *p, size_t n);

/*
 * Back-patching: kb_skip_bytes() reserves n bytes and returns their offset;
 * kb_patch_*() fills them in later.  Patching a failed writer is a no-op.
 */
size_t kb_skip_bytes(struct kb_writer *w, size_t n);
void kb_patch_i32(struct kb_writer *w, size_t off, int32_t v);
void kb_patch_u32(struct kb_writer *w, size_t off, uint32_t v);

/* Size in bytes of v as an unsigned varint / zig-zag varint / varlong. */
size_t kb_uvarint_size(uint32_t v);
size_t kb_varint_size(int32_t v);
size_t kb_varlong_size(int64_t v);

#endif
