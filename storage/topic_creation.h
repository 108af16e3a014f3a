/*
 * topic_creation: Kafka Connect's topic.creation.* settings of a source
 * connector (KIP-158), which say how the topics it writes to are created:
 *
 *   topic.creation.default.partitions / .replication.factor   (required)
 *   topic.creation.default.<topic config>                     (any)
 *   topic.creation.groups = g1, g2
 *   topic.creation.g1.include / .exclude    regexes of topic names
 *   topic.creation.g1.partitions / .replication.factor / .<topic config>
 *
 * A topic goes to the first listed group that includes and does not
 * exclude it, else to the default group.  A group without partitions takes
 * the default group's; its topic configs are its own.  Partitions -1 is the
 * broker's num.partitions.
 */
#ifndef SAMSA_TOPIC_CREATION_H
#define SAMSA_TOPIC_CREATION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "storage/topic_config.h"

struct topic_creation;

/*
 * Reads c's topic.creation.* settings into *out: NULL when c has none (the
 * connector's topics are then created as the broker would auto-create
 * them).  Values are checked as Connect and the broker check them (samsa
 * is one broker: a replication factor other than 1 or -1 is refused).
 * Returns 0, or -1 with the offending key in key and a message in err.
 */
int tcr_parse(const json_t *c, struct topic_creation **out, char *key,
	      size_t keylen, char *err, size_t errlen);

/* How topic is to be created: its partitions (the broker's num.partitions
 * for -1) and topic configs (borrowed from r).  r NULL: the broker's. */
void tcr_lookup(const struct topic_creation *r, const char *topic,
		int32_t *partitions, const struct tc_override **configs,
		size_t *nconfigs);

void tcr_free(struct topic_creation *r);

#endif
