/*
 * leak_check: the leak gate every Criterion suite ends with.
 *
 * Criterion lets a test that leaks pass, and it ignores an assertion that
 * fails in a suite's .fini; so under ASan (make asan) leak_check() runs
 * LeakSanitizer now and aborts the process when something leaked: the
 * suite is then reported as crashed in teardown and the run exits 1.
 * Without ASan it does nothing.  Use it as the suite's .fini, or call it
 * last in a .fini of the suite's own.
 */
#ifndef SAMSA_TESTS_LEAK_CHECK_H
#define SAMSA_TESTS_LEAK_CHECK_H

void leak_check(void);

#endif
