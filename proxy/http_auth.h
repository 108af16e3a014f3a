/*
 * http_auth: HTTP Basic logins as Postgres roles on the REST listeners
 * (Schema Registry, Kafka Connect) with --rest-auth postgres.  A request
 * whose Authorization header names a user and password that Postgres
 * accepts (storage/pglogin.h, as for the Kafka listener's SASL/PLAIN)
 * goes on to the listener's handler; any other gets 401 with a
 * WWW-Authenticate challenge and a JSON error, as Confluent's Schema
 * Registry answers.  Each request is its own login: nothing is cached.
 */
#ifndef SAMSA_HTTP_AUTH_H
#define SAMSA_HTTP_AUTH_H

#include <event2/event.h>
#include <event2/http.h>

struct http_gate {
	struct event_base *base;
	const char *conninfo; /* samsa's; NULL: no logins, all pass */
	void (*next)(struct evhttp_request *req, void *arg);
	void *next_arg;
};

/* An evhttp callback (arg: a struct http_gate that outlives the
 * listener): checks req's login, then calls gate->next or answers 401. */
void http_gate(struct evhttp_request *req, void *arg);

#endif
