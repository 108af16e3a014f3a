/*
 * java_regex: Java patterns as Kafka's consumers and Debezium's filters
 * write them, matched as Java matches whole strings.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/java_regex.h"
#include "tests/support/leak_check.h"

TestSuite(java_regex, .fini = leak_check);

static void expect_translation(const char *java, const char *posix, int icase)
{
	int ic = -1;
	char *got = java_regex_translate(java, strlen(java), &ic);
	cr_assert_not_null(got, "%s", java);
	cr_expect_str_eq(got, posix, "%s", java);
	cr_expect_eq(ic, icase, "%s", java);
	free(got);
}

Test(java_regex, translations)
{
	expect_translation("orders-.*", "orders-.*", 0);
	expect_translation("(?:a|b)-c", "(a|b)-c", 0);
	expect_translation("t\\d+", "t[0-9]+", 0);
	expect_translation("\\w\\W\\s\\S\\D",
			   "[A-Za-z0-9_][^A-Za-z0-9_][[:space:]][^[:space:]]"
			   "[^0-9]",
			   0);
	expect_translation("[\\d_.]x", "[0-9_.]x", 0);
	expect_translation("[\\.]", "[.]", 0);
	expect_translation("[]a]", "[]a]", 0);
	expect_translation("a*?b+?c??d{2}?e*+", "a*b+c?d{2}e*", 0);
	expect_translation("a\\*?", "a\\*?", 0);
	expect_translation("(?i)Orders", "Orders", 1);
	expect_translation("public\\.inventory_.*", "public\\.inventory_.*", 0);
	int ic;
	cr_expect_null(java_regex_translate("[\\D]", 4, &ic));
}

static int matches(const char *java, const char *s)
{
	regex_t re;
	cr_assert_eq(java_regex_compile(&re, java, strlen(java), 0), 0, "%s",
		     java);
	int m = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

Test(java_regex, whole_string_matches)
{
	cr_expect(matches("orders-.*", "orders-eu"));
	cr_expect_not(matches("orders", "orders-eu"));
	cr_expect_not(matches("rders-eu", "orders-eu"));
	cr_expect(matches("(?:orders|payments)-\\d+", "payments-12"));
	cr_expect_not(matches("(?:orders|payments)-\\d+", "payments-x"));
	cr_expect(matches("(?i)ORDERS-.*", "orders-eu"));
	cr_expect(matches(".*?-eu", "orders-eu"));
	cr_expect(matches("a|b", "b"));
	regex_t re;
	cr_expect_eq(java_regex_compile(&re, "a(", 2, 0), -1);
	cr_expect_eq(java_regex_compile(&re, "(?<=a)b", 7, 0), -1);
	cr_expect_eq(java_regex_compile(&re, "[\\W]", 4, 0), -1);
}
