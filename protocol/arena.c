/*
 * arena: chunked bump allocator (see arena.h).
 *
 * Chunks grow geometrically from ARENA_FIRST to ARENA_MAX_CHUNK so a small
 * request costs one malloc and a large one a handful.  An allocation bigger
 * than a quarter of the chunk size gets a chunk of its own, linked behind the
 * current one so the current chunk's free tail is not wasted.
 */
#include "arena.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN	16
#define ARENA_FIRST	4096
#define ARENA_MAX_CHUNK (1024 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t size; /* usable bytes in data */
	size_t used;
	/* Keeps data 16-aligned on every ABI we build for. */
	_Alignas(ARENA_ALIGN) unsigned char data[];
};

static struct arena_chunk *chunk_new(size_t size)
{
	if (size > SIZE_MAX - sizeof(struct arena_chunk))
		return NULL;
	struct arena_chunk *c = malloc(sizeof(*c) + size);
	if (c == NULL)
		return NULL;
	c->next = NULL;
	c->size = size;
	c->used = 0;
	return c;
}

static void *chunk_alloc(struct arena *a, size_t n)
{
	if (n == 0)
		n = 1; /* a unique pointer still takes a slot */
	/* No machine has this much; refuse before malloc sees it. */
	if (n > SIZE_MAX / 4)
		return NULL;
	size_t sz = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
	if (a->limit != 0 && (sz > a->limit || a->used > a->limit - sz))
		return NULL;

	struct arena_chunk *c = a->head;
	if (c == NULL || c->size - c->used < sz) {
		size_t next = c ? c->size * 2 : ARENA_FIRST;
		if (next > ARENA_MAX_CHUNK)
			next = ARENA_MAX_CHUNK;
		if (sz > next / 4) {
			/* A chunk of its own, behind the current one. */
			c = chunk_new(sz);
			if (c == NULL)
				return NULL;
			if (a->head != NULL) {
				c->next = a->head->next;
				a->head->next = c;
			} else {
				a->head = c;
			}
		} else {
			c = chunk_new(next);
			if (c == NULL)
				return NULL;
			c->next = a->head;
			a->head = c;
		}
	}
	void *p = c->data + c->used;
	c->used += sz;
	a->used += sz;
	memset(p, 0, n);
	return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
	void *p = chunk_alloc(a, n);
	if (p == NULL)
		a->exhausted = true;
	return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc(a, n == SIZE_MAX ? SIZE_MAX : n + 1);
	if (p == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap, aq;
	va_start(ap, fmt);
	va_copy(aq, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *p = NULL;
	if (n >= 0) {
		p = arena_alloc(a, (size_t)n + 1);
		if (p != NULL)
			vsnprintf(p, (size_t)n + 1, fmt, aq);
	}
	va_end(aq);
	return p;
}

void arena_free(struct arena *a)
{
	struct arena_chunk *c = a->head;
	while (c != NULL) {
		struct arena_chunk *next = c->next;
		free(c);
		c = next;
	}
	a->head = NULL;
	a->used = 0;
	a->exhausted = false;
}

void *arena_grow(struct arena *a, void *items, int32_t n, int32_t *cap,
		 size_t elem)
{
	if (n < *cap)
		return items;
	int32_t ncap = *cap ? *cap * 2 : 8;
	void *grown = arena_alloc(a, (size_t)ncap * elem);
	if (!grown)
		return NULL;
	if (n > 0)
		memcpy(grown, items, (size_t)n * elem);
	*cap = ncap;
	return grown;
}
