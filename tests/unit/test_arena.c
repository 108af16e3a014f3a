/*
 * arena: alignment, zeroing, unique zero-size allocations, the byte limit,
 * big allocations, reuse after arena_free(), strndup and printf.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "protocol/arena.h"
#include "tests/support/leak_check.h"

TestSuite(arena, .fini = leak_check);

static bool all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return false;
	return true;
}

Test(arena, zeroed_struct_is_empty_arena)
{
	struct arena a = {0};
	arena_free(&a);
	cr_assert_null(a.head);
	cr_assert_eq(a.used, 0);
}

Test(arena, aligned_and_zeroed)
{
	struct arena a = {0};
	for (size_t n = 0; n < 3000; n += 7) {
		unsigned char *p = arena_alloc(&a, n);
		cr_assert_not_null(p);
		cr_assert_eq((uintptr_t)p % 16, 0, "size %zu misaligned", n);
		cr_assert(all_zero(p, n));
		memset(p, 0xab, n); /* dirty it: the next one must be zero */
	}
	arena_free(&a);
	/* Reused after free, still zeroed. */
	for (int i = 0; i < 100; i++) {
		unsigned char *p = arena_alloc(&a, 100);
		cr_assert(all_zero(p, 100));
		memset(p, 0xcd, 100);
	}
	arena_free(&a);
}

Test(arena, allocations_do_not_overlap)
{
	struct arena a = {0};
	enum { N = 2000 };
	unsigned char *ps[N];
	size_t ns[N];
	for (int i = 0; i < N; i++) {
		ns[i] = (size_t)(i * 37) % 700;
		ps[i] = arena_alloc(&a, ns[i]);
		cr_assert_not_null(ps[i]);
		memset(ps[i], i & 0xff, ns[i]);
	}
	for (int i = 0; i < N; i++)
		for (size_t j = 0; j < ns[i]; j++)
			cr_assert_eq(ps[i][j], (unsigned char)(i & 0xff));
	arena_free(&a);
}

Test(arena, zero_size_is_unique)
{
	struct arena a = {0};
	void *p = arena_alloc(&a, 0);
	void *q = arena_alloc(&a, 0);
	cr_assert_not_null(p);
	cr_assert_not_null(q);
	cr_assert_neq(p, q);
	arena_free(&a);
}

Test(arena, limit)
{
	struct arena a = {.limit = 1024};
	cr_assert_not_null(arena_alloc(&a, 1000));
	cr_assert_not(a.exhausted);
	cr_assert_null(arena_alloc(&a, 100));
	cr_assert(a.exhausted, "a refused allocation is remembered");
	cr_assert_leq(a.used, a.limit);
	/* Small ones still fit until the limit. */
	cr_assert_not_null(arena_alloc(&a, 16));
	cr_assert_null(arena_alloc(&a, 16));
	arena_free(&a);
	cr_assert_eq(a.limit, 1024, "the limit survives arena_free");
	cr_assert_eq(a.used, 0);
	cr_assert_not(a.exhausted, "arena_free forgets the failure");
	cr_assert_not_null(arena_alloc(&a, 1024));
	arena_free(&a);
	/* One allocation above the limit. */
	cr_assert_null(arena_alloc(&a, 4096));
	arena_free(&a);
}

Test(arena, huge_requests_fail_cleanly)
{
	struct arena a = {0};
	cr_assert_null(arena_alloc(&a, SIZE_MAX));
	cr_assert_null(arena_alloc(&a, SIZE_MAX - 8));
	cr_assert_null(arena_alloc(&a, SIZE_MAX / 2));
	a.exhausted = false;
	cr_assert_null(arena_strndup(&a, "x", SIZE_MAX));
	cr_assert(a.exhausted);
	/* Still usable. */
	cr_assert_not_null(arena_alloc(&a, 8));
	arena_free(&a);
}

Test(arena, big_allocation_keeps_current_chunk)
{
	struct arena a = {0};
	unsigned char *small1 = arena_alloc(&a, 32);
	unsigned char *big = arena_alloc(&a, 1 << 20);
	unsigned char *small2 = arena_alloc(&a, 32);
	cr_assert_not_null(big);
	cr_assert_eq((uintptr_t)big % 16, 0);
	cr_assert(all_zero(big, 1 << 20));
	memset(big, 0x5a, 1 << 20);
	/* The small ones keep filling the first chunk. */
	cr_assert_eq(small2, small1 + 32);
	memset(small1, 1, 32);
	memset(small2, 2, 32);
	cr_assert_eq(big[0], 0x5a);
	cr_assert_eq(big[(1 << 20) - 1], 0x5a);
	/* Several big ones in a row. */
	for (int i = 0; i < 10; i++)
		cr_assert_not_null(arena_alloc(&a, 300000));
	cr_assert_geq(a.used, (size_t)(1 << 20) + 3000000);
	arena_free(&a);
}

Test(arena, strndup)
{
	struct arena a = {0};
	char *s = arena_strndup(&a, "hello world", 5);
	cr_assert_str_eq(s, "hello");
	char *e = arena_strndup(&a, NULL, 0);
	cr_assert_str_eq(e, "");
	arena_free(&a);
}

Test(arena, printf)
{
	struct arena a = {0};
	char *s = arena_printf(&a, "%s-%d", "topic", 42);
	cr_assert_str_eq(s, "topic-42");
	char big[5000];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *t = arena_printf(&a, "<%s>", big);
	cr_assert_eq(strlen(t), sizeof(big) + 1);
	cr_assert_eq(t[0], '<');
	cr_assert_eq(t[sizeof(big)], '>');
	arena_free(&a);

	struct arena l = {.limit = 16};
	cr_assert_null(arena_printf(&l, "%s", big));
	arena_free(&l);
}
