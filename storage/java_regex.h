/*
 * java_regex: Java regular expressions (java.util.regex, as Kafka's
 * consumers and Debezium's filters take them) compiled for POSIX regexec,
 * matching whole strings.
 *
 * POSIX extended syntax agrees with Java's for ordinary patterns; what Java
 * spells differently is translated first: (?:...) groups, the classes \d \w
 * \s and their negations (also inside [...]), a leading (?i), and lazy or
 * possessive quantifiers (*? ++ ...), which change nothing for a yes/no
 * whole-string match.  Lookarounds, backreferences and named groups are
 * not translated, and such a pattern fails to compile.
 */
#ifndef SAMSA_JAVA_REGEX_H
#define SAMSA_JAVA_REGEX_H

#include <regex.h>
#include <stddef.h>

/*
 * Compiles pattern[0..len) to match whole strings (REG_EXTENDED |
 * REG_NOSUB, plus cflags such as REG_ICASE).  0, or -1 when it does not
 * compile or memory runs out (re is then not to be freed).
 */
int java_regex_compile(regex_t *re, const char *pattern, size_t len,
		       int cflags);

/* The POSIX extended form of pattern[0..len) (malloc'd), *icase set when
 * it began with (?i); NULL when memory runs out or it holds a negated class
 * inside [...] (\D, \W, \S), which POSIX cannot say. */
char *java_regex_translate(const char *pattern, size_t len, int *icase);

#endif
