/*
 * connect: Kafka Connect's REST API (the worker's /connectors and
 * /connector-plugins) on cfg->connect, over libevent's evhttp, with the
 * connector configs kept in Postgres (storage/connectors.h).  The one
 * connector class is Debezium's Postgres source (storage/cdc.h); each
 * connector runs one task inside samsa.
 */
#ifndef SAMSA_CONNECT_H
#define SAMSA_CONNECT_H

#include <stddef.h>

struct server;

/*
 * Listens on srv->cfg->connect and resumes the stored connectors (reading
 * them is blocking: start-up only, after store_open).  Returns 0, or -1 with
 * a one-line message in err (e.g. the port is in use).
 */
int connect_start(struct server *srv, char *err, size_t errlen);

/* Stops the listener and the tasks.  Safe when connect_start failed. */
void connect_stop(void);

#endif
