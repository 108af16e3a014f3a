/*
 * regex_router: Kafka Connect's RegexRouter transform
 * (org.apache.kafka.connect.transforms.RegexRouter) in a connector's
 * chain, which renames the topics records go to:
 *
 *   transforms = route
 *   transforms.route.type = org.apache.kafka.connect.transforms.RegexRouter
 *   transforms.route.regex = ([^.]+)\.([^.]+)\.([^.]+)
 *   transforms.route.replacement = $3
 *
 * As in Java, a router applies when its regex matches the whole topic
 * name, and the replacement takes $n for a group and \ before a character
 * meant literally.  The regex is POSIX extended, which agrees with Java's
 * for the patterns such routes use (no lazy quantifiers, lookarounds or
 * named groups).  Several routers apply in their order in the chain.
 */
#ifndef SAMSA_REGEX_ROUTER_H
#define SAMSA_REGEX_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#define RR_CLASS "org.apache.kafka.connect.transforms.RegexRouter"

struct regex_router;

/*
 * Reads the RegexRouter transforms of config c into *out, NULL when it has
 * none.  Returns 0, or -1 with the offending key in key and a message in
 * err (a missing or bad regex, a replacement naming a group the regex
 * lacks).
 */
int rr_parse(const json_t *c, struct regex_router **out, char *key,
	     size_t keylen, char *err, size_t errlen);

/* The name topic is routed to, into out; topic itself when no router
 * matches (r NULL: none).  false when the name does not fit in outlen. */
bool rr_route(const struct regex_router *r, const char *topic, char *out,
	      size_t outlen);

void rr_free(struct regex_router *r);

#endif
