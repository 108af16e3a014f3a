/*
 * connect_cfg: reading a Kafka Connect connector config, a JSON object of
 * strings, the way the connectors samsa runs (storage/cdc.c,
 * storage/sink_cfg.c) both read theirs.
 */
#ifndef SAMSA_CONNECT_CFG_H
#define SAMSA_CONNECT_CFG_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

/* The string at key, or NULL (missing, or not a string).  Borrowed from c. */
const char *cc_get(const json_t *c, const char *key);

/* The first of two names for one setting that is set (the newer name
 * first), or NULL. */
const char *cc_get2(const json_t *c, const char *name, const char *old_name);

/*
 * For a config reader with the parameters char *key, size_t keylen,
 * char *err, size_t errlen: names the offending setting k in key, puts a
 * printf-style message in err, and returns -1 from the reader.
 */
#define CC_BAD(k, ...)                                                         \
	do {                                                                   \
		snprintf(key, keylen, "%s", k);                                \
		snprintf(err, errlen, __VA_ARGS__);                            \
		return -1;                                                     \
	} while (0)

/* A boolean setting: "true" in any case is true, NULL is def, else false. */
bool cc_bool(const char *v, bool def);

/*
 * The items of a comma-separated list, white space trimmed and empty ones
 * left out, as a new NULL-terminated array in *out, or NULL in *out when
 * there are none (list NULL too).  Returns how many, or -1 when memory ran
 * out (*out NULL).  Free it with cc_free_list.
 */
int cc_split(const char *list, char ***out);

/* Frees what cc_split made; NULL is fine. */
void cc_free_list(char **l);

/*
 * A comma-separated list of regular expressions, each matching whole
 * strings only (as Java's Pattern.matches does), compiled (storage/
 * java_regex.h; icase: ignoring case, as Debezium's filters do) into a new
 * array *out of
 * *n.  list NULL: none.  Returns 0, or -1 with a message in err naming the
 * expression that does not compile (*out is then still to be freed with
 * cc_free_regexes).
 */
int cc_regexes(const char *list, bool icase, regex_t **out, int *n, char *err,
	       size_t errlen);

/* Frees what cc_regexes made. */
void cc_free_regexes(regex_t *r, int n);

/* Whether one of the n expressions matches s. */
bool cc_matches(const regex_t *r, int n, const char *s);

#endif
