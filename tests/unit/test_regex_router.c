/*
 * regex_router: RegexRouter's matching and replacement rules, as Java's
 * Matcher.replaceFirst applies them to a whole-name match.
 */
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "storage/regex_router.h"
#include "tests/support/leak_check.h"

TestSuite(regex_router, .fini = leak_check);

/* A chain of routers, "regex", "replacement" pairs, NULL-terminated. */
static struct regex_router *chain(const char *const *pairs, char *err,
				  size_t errlen)
{
	json_t *c = json_object();
	char names[256] = "", k[64];
	for (int i = 0; pairs[2 * i]; i++) {
		snprintf(k, sizeof(k), "transforms.r%d.type", i);
		json_object_set_new(c, k, json_string(RR_CLASS));
		snprintf(k, sizeof(k), "transforms.r%d.regex", i);
		json_object_set_new(c, k, json_string(pairs[2 * i]));
		snprintf(k, sizeof(k), "transforms.r%d.replacement", i);
		json_object_set_new(c, k, json_string(pairs[2 * i + 1]));
		snprintf(names + strlen(names), sizeof(names) - strlen(names),
			 "%sr%d", i ? "," : "", i);
	}
	json_object_set_new(c, "transforms", json_string(names));
	struct regex_router *r = NULL;
	char key[128];
	if (rr_parse(c, &r, key, sizeof(key), err, errlen) < 0)
		r = NULL;
	json_decref(c);
	return r;
}

static void routes(const char *const *pairs, const char *in, const char *want)
{
	char err[256] = "", out[256];
	struct regex_router *r = chain(pairs, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert(rr_route(r, in, out, sizeof(out)));
	cr_assert_str_eq(out, want, "%s -> %s, want %s", in, out, want);
	rr_free(r);
}

Test(regex_router, replacements)
{
	const char *const three[] = {"([^.]+)\\.([^.]+)\\.([^.]+)", "$3-$1",
				     NULL};
	routes(three, "db.public.orders", "orders-db");
	routes(three, "no-dots", "no-dots"); /* no whole match: unchanged */
	routes(three, "a.b.c.d", "a.b.c.d");
	/* The first group takes all it can, as Java's greedy .* does. */
	const char *const greedy[] = {"(.*)\\.(.*)", "$2/$1", NULL};
	routes(greedy, "a.b.c", "c/a.b");
	const char *const literal[] = {"(.*)", "\\$1\\\\x", NULL};
	routes(literal, "t", "$1\\x");
	/* $12 is group 12 only when there are 12 groups; else $1 and "2". */
	const char *const digits[] = {"(a)(b)", "$12", NULL};
	routes(digits, "ab", "a2");
	/* A group that took no part adds nothing. */
	const char *const optional[] = {"x(y)?", "[$1]", NULL};
	routes(optional, "x", "[]");
	const char *const two[] = {"p\\.(.*)", "q_$1", "q_(b|c)", "q_bc", NULL};
	routes(two, "p.b", "q_bc");
	routes(two, "p.a", "q_a");
}

Test(regex_router, refused)
{
	static const char *const bad[][3] = {
		{"(a)", "$2", "No group 2"},
		{"(a", "x", "not a regular expression"},
		{"a", "x\\", "escaped is missing"},
		{"a", "${name}", "Illegal group reference"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const pairs[] = {bad[i][0], bad[i][1], NULL};
		char err[256] = "";
		cr_assert_null(chain(pairs, err, sizeof(err)), "%s", bad[i][0]);
		cr_assert_not_null(strstr(err, bad[i][2]), "%s: %s", bad[i][0],
				   err);
	}
}

Test(regex_router, none)
{
	json_t *c =
		json_pack("{s:s, s:s}", "transforms", "u", "transforms.u.type",
			  "io.debezium.transforms.ExtractNewRecordState");
	struct regex_router *r = (void *)1;
	char key[64], err[64], out[64];
	cr_assert_eq(rr_parse(c, &r, key, sizeof(key), err, sizeof(err)), 0);
	cr_assert_null(r);
	cr_assert(rr_route(r, "a.b", out, sizeof(out)));
	cr_assert_str_eq(out, "a.b");
	cr_assert_not(rr_route(r, "a.b", out, 3)); /* does not fit */
	json_decref(c);
}
