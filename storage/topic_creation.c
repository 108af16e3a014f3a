/*
 * topic_creation: a source connector's topic.creation.* settings
 * (storage/topic_creation.h).
 */
#include "storage/topic_creation.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/connect_cfg.h"

#define PREFIX "topic.creation."

struct group {
	char *name;
	regex_t *inc, *exc;
	int ninc, nexc;
	int32_t partitions; /* 0: the default group's */
	struct tc_override *configs;
	size_t nconfigs;
};

struct topic_creation {
	struct group *groups; /* as listed, then "default" last */
	int ngroups;
};

/* The settings a group has besides topic configs. */
static bool own_setting(const char *s)
{
	return !strcmp(s, "include") || !strcmp(s, "exclude") ||
	       !strcmp(s, "partitions") || !strcmp(s, "replication.factor");
}

/* A number that is -1 or at least 1; *v gets it. */
static bool count_ok(const char *s, int32_t *v)
{
	char *end;
	long x = s ? strtol(s, &end, 10) : 0;
	if (!s || !*s || *end || (x != -1 && (x < 1 || x > 100000)))
		return false;
	*v = (int32_t)x;
	return true;
}

#define MISSING                                                                \
	"Missing required configuration \"%s\" which has no default value."

/* For a message already in err: names the key, returns -1. */
static int at(char *key, size_t keylen, const char *k)
{
	snprintf(key, keylen, "%s", k);
	return -1;
}

/* Reads group g (named g->name) from c. */
static int parse_group(const json_t *c, struct group *g, bool is_default,
		       char *key, size_t keylen, char *err, size_t errlen)
{
	char k[512];
	size_t plen = (size_t)snprintf(k, sizeof(k), PREFIX "%s.", g->name);
	if (plen >= sizeof(k))
		CC_BAD(PREFIX "groups", "group name %s is too long", g->name);

	snprintf(k + plen, sizeof(k) - plen, "partitions");
	const char *parts = cc_get(c, k);
	if (is_default && !parts)
		CC_BAD(k, MISSING, k);
	if (parts && !count_ok(parts, &g->partitions))
		CC_BAD(k,
		       "Invalid value %s for configuration %s: the number of "
		       "partitions must be at least 1, or -1 for the broker's "
		       "default",
		       parts, k);
	snprintf(k + plen, sizeof(k) - plen, "replication.factor");
	const char *rf = cc_get(c, k);
	int32_t r = -1;
	if (is_default && !rf)
		CC_BAD(k, MISSING, k);
	if (rf && !count_ok(rf, &r))
		CC_BAD(k,
		       "Invalid value %s for configuration %s: the replication "
		       "factor must be at least 1, or -1 for the broker's "
		       "default",
		       rf, k);
	if (r > 1)
		CC_BAD(k,
		       "Invalid value %s for configuration %s: samsa is one "
		       "broker, so a replication factor of 1 (or -1)",
		       rf, k);
	for (int i = 0; i < 2 && !is_default; i++) {
		char e[256];
		snprintf(k + plen, sizeof(k) - plen, i ? "exclude" : "include");
		if (cc_regexes(cc_get(c, k), false, i ? &g->exc : &g->inc,
			       i ? &g->nexc : &g->ninc, e, sizeof(e)) < 0)
			CC_BAD(k, "Invalid value %s for configuration %s: %s",
			       cc_get(c, k), k, e);
	}

	/* The topic configs: every other key under the group's prefix. */
	const char *name;
	json_t *v;
	k[plen] = '\0';
	json_object_foreach((json_t *)c, name, v)
	{
		if (strncmp(name, k, plen) != 0 || own_setting(name + plen))
			continue;
		const char *cfg = name + plen;
		const struct tc_def *def = tc_find(cfg, strlen(cfg));
		if (!def)
			CC_BAD(name, "Unknown topic config name: %s", cfg);
		if (!json_is_string(v))
			CC_BAD(name, "Invalid value for configuration %s",
			       name);
		if (tc_validate(def, json_string_value(v), err, errlen) < 0)
			return at(key, keylen, name);
		struct tc_override *grown =
			realloc(g->configs, (g->nconfigs + 1) * sizeof(*grown));
		if (!grown)
			CC_BAD(name, "out of memory");
		g->configs = grown;
		g->configs[g->nconfigs].name = def->name;
		g->configs[g->nconfigs].value = strdup(json_string_value(v));
		if (!g->configs[g->nconfigs++].value)
			CC_BAD(name, "out of memory");
	}
	return 0;
}

int tcr_parse(const json_t *c, struct topic_creation **out, char *key,
	      size_t keylen, char *err, size_t errlen)
{
	*out = NULL;
	const char *name;
	json_t *v;
	bool any = false;
	json_object_foreach((json_t *)c, name, v) any |=
		strncmp(name, PREFIX, strlen(PREFIX)) == 0;
	if (!any)
		return 0;

	char **names;
	int n = cc_split(cc_get(c, PREFIX "groups"), &names);
	struct topic_creation *r = calloc(1, sizeof(*r));
	if (n < 0 || !r ||
	    !(r->groups = calloc((size_t)n + 1, sizeof(*r->groups)))) {
		cc_free_list(names);
		free(r);
		CC_BAD(PREFIX "groups", "out of memory");
	}
	int rc = 0;
	for (int i = 0; i <= n && rc == 0; i++) {
		const char *gn = i < n ? names[i] : "default";
		if (i < n && !strcmp(gn, "default")) {
			snprintf(key, keylen, PREFIX "groups");
			snprintf(err, errlen,
				 "the default group is not listed in %s", key);
			rc = -1;
			break;
		}
		struct group *g = &r->groups[r->ngroups++];
		g->name = strdup(gn);
		if (!g->name) {
			snprintf(key, keylen, PREFIX "groups");
			snprintf(err, errlen, "out of memory");
			rc = -1;
		} else
			rc = parse_group(c, g, i == n, key, keylen, err,
					 errlen);
	}
	cc_free_list(names);
	if (rc < 0) {
		tcr_free(r);
		return -1;
	}
	*out = r;
	return 0;
}

void tcr_lookup(const struct topic_creation *r, const char *topic,
		int32_t *partitions, const struct tc_override **configs,
		size_t *nconfigs)
{
	*partitions = -1;
	*configs = NULL;
	*nconfigs = 0;
	if (!r)
		return;
	const struct group *def = &r->groups[r->ngroups - 1], *g = def;
	for (int i = 0; i < r->ngroups - 1; i++) {
		const struct group *x = &r->groups[i];
		if (cc_matches(x->inc, x->ninc, topic) &&
		    !cc_matches(x->exc, x->nexc, topic)) {
			g = x;
			break;
		}
	}
	*partitions = g->partitions ? g->partitions : def->partitions;
	*configs = g->configs;
	*nconfigs = g->nconfigs;
}

void tcr_free(struct topic_creation *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->ngroups; i++) {
		free(r->groups[i].name);
		cc_free_regexes(r->groups[i].inc, r->groups[i].ninc);
		cc_free_regexes(r->groups[i].exc, r->groups[i].nexc);
		for (size_t j = 0; j < r->groups[i].nconfigs; j++)
			free((char *)r->groups[i].configs[j].value);
		free(r->groups[i].configs);
	}
	free(r->groups);
	free(r);
}
