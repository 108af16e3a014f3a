/*
 * arena: per-request bump allocator.  Everything decoded from a request, and
 * every response structure built for it, lives in one arena that is freed in
 * one go when the response has been queued.  A zeroed struct arena is a valid
 * empty arena.  An arena has an optional byte limit so a hostile request
 * cannot make us allocate without bound.
 */
#ifndef SAMSA_ARENA_H
#define SAMSA_ARENA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used;  /* bytes handed out so far */
	size_t limit; /* 0 = no limit */
	/* Sticky: some allocation failed since the last arena_free, so
	 * whatever was being built may be missing parts. */
	bool exhausted;
};

/*
 * Returns n zeroed bytes aligned to 16, valid until arena_free(); NULL when
 * memory runs out or the limit would be exceeded (and then sets
 * exhausted).  n == 0 returns a unique non-NULL pointer.
 */
void *arena_alloc(struct arena *a, size_t n);
/* Copy of n bytes (plus a NUL) into the arena; NULL on failure. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
/* printf into the arena; NULL on failure. */
char *arena_printf(struct arena *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * A growable array in the arena: returns items, or a bigger copy of its n
 * elements of elem bytes when n == *cap (doubling *cap), so that items[n]
 * may be written.  NULL on exhaustion (items stays valid).
 */
void *arena_grow(struct arena *a, void *items, int32_t n, int32_t *cap,
		 size_t elem);
/* Frees every allocation; the arena is empty (limit kept, exhausted
 * cleared) and reusable. */
void arena_free(struct arena *a);

#endif
