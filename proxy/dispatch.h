/*
 * dispatch: the table of served APIs, [ApiKey] = {min, max, handler}.
 * ApiVersions is answered from this table, so nothing is advertised that is
 * not served.
 */
#ifndef SAMSA_DISPATCH_H
#define SAMSA_DISPATCH_H

#include <stdint.h>

#include "protocol/kbuf.h"
#include "proxy/server.h"

typedef void (*api_handler)(struct request *req);

struct api_entry {
	int16_t min, max;   /* advertised versions */
	int16_t served_min; /* lowest version actually served (Produce
			     * advertises 0 but rejects 0-2) */
	api_handler handler;
};

/* The entry for key, or NULL when the API is not served. */
const struct api_entry *api_lookup(int16_t key);

/*
 * Decodes the body of req (its header already read from r) and calls the
 * handler; unknown APIs or versions are answered with UNSUPPORTED_VERSION
 * where the API allows, else the connection is closed.
 */
void dispatch(struct request *req, struct kb_reader *r);

#endif
