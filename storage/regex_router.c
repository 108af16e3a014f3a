/*
 * regex_router: RegexRouter transforms (storage/regex_router.h).
 */
#include "storage/regex_router.h"

#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/connect_cfg.h"

#define MAX_GROUPS 30

struct route {
	regex_t re;
	int ngroups; /* the user's, not counting the anchoring group */
	char *replacement;
};

struct regex_router {
	struct route *routes;
	int n;
};

/*
 * Writes replacement with its group references filled in from in's
 * matches m (m[1] is the whole name, m[2] the user's $1), or with empty
 * groups when in is NULL (checking the replacement only).  Java's rules:
 * \c is c; $ and digits name a group, taking more digits while the number
 * stays a group.  Returns 0, or -1 with a message in err.
 */
static int expand(const char *repl, int ngroups, const char *in,
		  const regmatch_t *m, char *out, size_t outlen, char *err,
		  size_t errlen)
{
	size_t len = 0;
	for (const char *p = repl; *p;) {
		const char *piece = p;
		size_t n = 1;
		if (*p == '\\') {
			if (!p[1]) {
				snprintf(err, errlen,
					 "character to be escaped is missing");
				return -1;
			}
			piece = p + 1;
			p += 2;
		} else if (*p == '$') {
			if (p[1] < '0' || p[1] > '9') {
				snprintf(err, errlen,
					 "Illegal group reference: samsa takes "
					 "$ and a group number");
				return -1;
			}
			int g = p[1] - '0';
			p += 2;
			while (*p >= '0' && *p <= '9' &&
			       g * 10 + (*p - '0') <= ngroups)
				g = g * 10 + (*p++ - '0');
			if (g > ngroups) {
				snprintf(err, errlen, "No group %d", g);
				return -1;
			}
			/* A group that took no part adds nothing. */
			bool took = in && m[g + 1].rm_so >= 0;
			piece = took ? in + m[g + 1].rm_so : "";
			n = took ? (size_t)(m[g + 1].rm_eo - m[g + 1].rm_so)
				 : 0;
		} else {
			p++;
		}
		if (len + n >= outlen) {
			snprintf(err, errlen, "the name is too long");
			return -1;
		}
		memcpy(out + len, piece, n);
		len += n;
	}
	out[len] = '\0';
	return 0;
}

int rr_parse(const json_t *c, struct regex_router **out, char *key,
	     size_t keylen, char *err, size_t errlen)
{
	*out = NULL;
	char **aliases;
	int na = cc_split(cc_get(c, "transforms"), &aliases);
	if (na < 0)
		CC_BAD("transforms", "out of memory");
	struct regex_router *r = calloc(1, sizeof(*r));
	if (!r ||
	    (na && !(r->routes = calloc((size_t)na, sizeof(*r->routes))))) {
		cc_free_list(aliases);
		rr_free(r);
		CC_BAD("transforms", "out of memory");
	}
	int rc = 0;
	for (int i = 0; i < na && rc == 0; i++) {
		char k[300], pat[1024], check[256];
		snprintf(k, sizeof(k), "transforms.%s.type", aliases[i]);
		const char *type = cc_get(c, k);
		if (!type || strcmp(type, RR_CLASS) != 0)
			continue;
		snprintf(k, sizeof(k), "transforms.%s.regex", aliases[i]);
		const char *regex = cc_get(c, k);
		struct route *x = &r->routes[r->n];
		rc = -1;
		snprintf(key, keylen, "%s", k);
		if (!regex || !*regex) {
			snprintf(err, errlen,
				 "Missing required configuration \"%s\" which "
				 "has no default value.",
				 k);
			break;
		}
		if ((size_t)snprintf(pat, sizeof(pat), "^(%s)$", regex) >=
			    sizeof(pat) ||
		    regcomp(&x->re, pat, REG_EXTENDED) != 0) {
			snprintf(err, errlen,
				 "Invalid value %s for configuration %s: not a "
				 "regular expression samsa reads (POSIX "
				 "extended)",
				 regex, k);
			break;
		}
		r->n++;
		x->ngroups = (int)x->re.re_nsub - 1;
		snprintf(k, sizeof(k), "transforms.%s.replacement", aliases[i]);
		snprintf(key, keylen, "%s", k);
		const char *repl = cc_get(c, k);
		char why[128];
		if (x->ngroups > MAX_GROUPS)
			snprintf(err, errlen,
				 "Invalid value %s for configuration "
				 "transforms.%s.regex: more than %d groups",
				 regex, aliases[i], MAX_GROUPS);
		else if (!repl)
			snprintf(err, errlen,
				 "Missing required configuration \"%s\" which "
				 "has no default value.",
				 k);
		else if (expand(repl, x->ngroups, NULL, NULL, check,
				sizeof(check), why, sizeof(why)) < 0)
			snprintf(err, errlen,
				 "Invalid value %s for configuration %s: %s",
				 repl, k, why);
		else if (!(x->replacement = strdup(repl)))
			snprintf(err, errlen, "out of memory");
		else
			rc = 0;
	}
	cc_free_list(aliases);
	if (rc < 0 || r->n == 0) {
		rr_free(r);
		return rc;
	}
	*out = r;
	return 0;
}

bool rr_route(const struct regex_router *r, const char *topic, char *out,
	      size_t outlen)
{
	char cur[1024], next[1024], err[64];
	if ((size_t)snprintf(cur, sizeof(cur), "%s", topic) >= sizeof(cur))
		return false;
	for (int i = 0; r && i < r->n; i++) {
		const struct route *x = &r->routes[i];
		regmatch_t m[MAX_GROUPS + 2];
		if (regexec(&x->re, cur, (size_t)x->ngroups + 2, m, 0) != 0)
			continue;
		if (expand(x->replacement, x->ngroups, cur, m, next,
			   sizeof(next), err, sizeof(err)) < 0)
			return false;
		memcpy(cur, next, strlen(next) + 1);
	}
	return (size_t)snprintf(out, outlen, "%s", cur) < outlen;
}

void rr_free(struct regex_router *r)
{
	if (!r)
		return;
	for (int i = 0; i < r->n; i++) {
		regfree(&r->routes[i].re);
		free(r->routes[i].replacement);
	}
	free(r->routes);
	free(r);
}
