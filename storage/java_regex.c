/*
 * java_regex: Java's syntax translated to POSIX extended, then regcomp.
 */
#include "storage/java_regex.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* What a Java class escape is as the inside of a POSIX bracket expression
 * (negated: the caller writes ^), or NULL. */
static const char *class_body(char c, bool *negated)
{
	*negated = c == 'D' || c == 'W' || c == 'S';
	switch (c) {
	case 'd':
	case 'D':
		return "0-9";
	case 'w':
	case 'W':
		return "A-Za-z0-9_";
	case 's':
	case 'S':
		return "[:space:]";
	}
	return NULL;
}

/* Appends s at out + *o. */
static void put(char *out, size_t *o, const char *s)
{
	size_t n = strlen(s);
	memcpy(out + *o, s, n);
	*o += n;
}

char *java_regex_translate(const char *p, size_t len, int *icase)
{
	/* Each input byte becomes at most "[^A-Za-z0-9_]" (13 bytes). */
	char *out = malloc(len * 13 + 1);
	if (!out)
		return NULL;
	size_t i = 0, o = 0;
	bool in_class = false;
	bool quantified = false; /* the last thing written was a quantifier */
	*icase = len >= 4 && memcmp(p, "(?i)", 4) == 0;
	if (*icase)
		i = 4;
	while (i < len) {
		char c = p[i];
		bool negated, was_quantified = quantified;
		const char *body = c == '\\' && i + 1 < len
					   ? class_body(p[i + 1], &negated)
					   : NULL;
		quantified = false;
		if (in_class) {
			if (body && negated) {
				/* \D inside [...] has no POSIX form. */
				free(out);
				return NULL;
			} else if (body) {
				put(out, &o, body);
				i += 2;
			} else if (c == '\\' && i + 1 < len) {
				/* A bracket expression takes characters
				 * literally. */
				out[o++] = p[i + 1];
				i += 2;
			} else {
				in_class = c != ']';
				out[o++] = p[i++];
			}
		} else if (body) {
			put(out, &o, negated ? "[^" : "[");
			put(out, &o, body);
			out[o++] = ']';
			i += 2;
		} else if (c == '\\' && i + 1 < len) {
			out[o++] = p[i++];
			out[o++] = p[i++];
		} else if (c == '[') {
			in_class = true;
			out[o++] = p[i++];
			/* A leading ] (after an optional ^) is literal. */
			if (i < len && p[i] == '^')
				out[o++] = p[i++];
			if (i < len && p[i] == ']')
				out[o++] = p[i++];
		} else if (c == '(' && i + 2 < len && p[i + 1] == '?' &&
			   p[i + 2] == ':') {
			out[o++] = '(';
			i += 3;
		} else if (was_quantified && (c == '?' || c == '+')) {
			i++; /* lazy or possessive: the same whole match */
		} else {
			quantified =
				c == '*' || c == '+' || c == '?' || c == '}';
			out[o++] = p[i++];
		}
	}
	out[o] = '\0';
	return out;
}

int java_regex_compile(regex_t *re, const char *pattern, size_t len, int cflags)
{
	int icase;
	char *posix = java_regex_translate(pattern, len, &icase);
	char *anchored = posix ? malloc(strlen(posix) + 5) : NULL;
	int rc = -1;
	if (anchored) {
		strcpy(anchored, "^(");
		strcat(anchored, posix);
		strcat(anchored, ")$");
		rc = regcomp(re, anchored,
			     REG_EXTENDED | REG_NOSUB | cflags |
				     (icase ? REG_ICASE : 0)) == 0
			     ? 0
			     : -1;
	}
	free(anchored);
	free(posix);
	return rc;
}
