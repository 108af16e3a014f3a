/*
 * leak_check: LeakSanitizer at the end of a suite (tests/support/leak_check.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "tests/support/leak_check.h"

/* clang before 16 has no __SANITIZE_ADDRESS__, only __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#if defined(TEST_ASAN)
#include <sanitizer/lsan_interface.h>
#endif

void leak_check(void)
{
#if defined(TEST_ASAN)
	if (__lsan_do_recoverable_leak_check() != 0) {
		fprintf(stderr, "memory leaked\n");
		abort();
	}
#endif
}
