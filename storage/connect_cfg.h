/*
 * connect_cfg: reading a Kafka Connect connector config, a JSON object of
 * strings, the way the connectors samsa runs (storage/cdc.c,
 * storage/sink_cfg.c) both read theirs.
 */
#ifndef SAMSA_CONNECT_CFG_H
#define SAMSA_CONNECT_CFG_H

#include <stdbool.h>

#include <jansson.h>

/* The string at key, or NULL (missing, or not a string).  Borrowed from c. */
const char *cc_get(const json_t *c, const char *key);

/* The first of two names for one setting that is set (the newer name
 * first), or NULL. */
const char *cc_get2(const json_t *c, const char *name, const char *old_name);

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

#endif
