/*
 * connect_cfg: a Kafka Connect connector config's strings, booleans and
 * lists (storage/connect_cfg.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "storage/connect_cfg.h"

#include "storage/java_regex.h"

const char *cc_get(const json_t *c, const char *key)
{
	return json_string_value(json_object_get(c, key));
}

const char *cc_get2(const json_t *c, const char *name, const char *old_name)
{
	const char *v = cc_get(c, name);
	return v ? v : cc_get(c, old_name);
}

bool cc_bool(const char *v, bool def)
{
	if (!v)
		return def;
	return strcasecmp(v, "true") == 0;
}

int cc_split(const char *list, char ***out)
{
	*out = NULL;
	if (!list)
		return 0;
	char *copy = strdup(list), *save = NULL;
	/* At most one item a comma, and the NULL. */
	size_t max = 2;
	for (const char *p = list; *p; p++)
		max += *p == ',';
	char **l = calloc(max, sizeof(char *));
	if (!copy || !l) {
		free(copy);
		free(l);
		return -1;
	}
	int n = 0;
	for (char *s = strtok_r(copy, ",", &save); s;
	     s = strtok_r(NULL, ",", &save)) {
		while (isspace((unsigned char)*s))
			s++;
		size_t len = strlen(s);
		while (len && isspace((unsigned char)s[len - 1]))
			s[--len] = '\0';
		if (!len)
			continue;
		if (!(l[n++] = strdup(s))) {
			free(copy);
			cc_free_list(l);
			return -1;
		}
	}
	free(copy);
	if (n == 0) {
		free(l);
		return 0;
	}
	*out = l;
	return n;
}

void cc_free_list(char **l)
{
	for (char **p = l; p && *p; p++)
		free(*p);
	free(l);
}

int cc_regexes(const char *list, bool icase, regex_t **out, int *n, char *err,
	       size_t errlen)
{
	char **items;
	int k = cc_split(list, &items);
	*out = k > 0 ? calloc((size_t)k, sizeof(regex_t)) : NULL;
	*n = 0;
	if (k < 0 || (k > 0 && !*out)) {
		snprintf(err, errlen, "out of memory");
		cc_free_list(items);
		return -1;
	}
	for (int i = 0; i < k; i++) {
		if (java_regex_compile(&(*out)[i], items[i], strlen(items[i]),
				       icase ? REG_ICASE : 0) < 0) {
			snprintf(err, errlen, "invalid regular expression %s",
				 items[i]);
			cc_free_list(items);
			return -1;
		}
		(*n)++;
	}
	cc_free_list(items);
	return 0;
}

void cc_free_regexes(regex_t *r, int n)
{
	for (int i = 0; i < n; i++)
		regfree(&r[i]);
	free(r);
}

bool cc_matches(const regex_t *r, int n, const char *s)
{
	for (int i = 0; i < n; i++)
		if (regexec(&r[i], s, 0, NULL, 0) == 0)
			return true;
	return false;
}
