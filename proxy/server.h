/*
 * server: the Kafka listener, its connections and the life of a request.
 *
 * A connection reads size-prefixed frames, decodes each into a request and
 * hands it to its API's handler.  Handlers answer at once or later (after
 * storage calls); responses leave in request order, as Kafka requires.  A
 * request lives until it is answered, even if its connection closes first
 * (the answer is then dropped), so storage callbacks never see a freed
 * request.
 */
#ifndef SAMSA_SERVER_H
#define SAMSA_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "protocol/arena.h"
#include "protocol/kmsg.h"
#include "proxy/config.h"
#include "storage/store.h"

struct conn;

struct server {
	struct event_base *base;
	struct store *store;
	const struct config *cfg;
	struct evconnlistener *listener;
	struct conn *conns;
	int nconns;
	struct groups *groups;	     /* proxy/group.c, made on first use */
	struct registry *registry;   /* proxy/registry.c, NULL when off */
	struct tls_server *tls;	     /* proxy/tls.h, NULL without TLS */
	struct tls_server *rest_tls; /* the REST listeners', or NULL */
	struct event *accept_retry;  /* accepting paused (out of files) */
};

struct request {
	struct server *srv;
	struct conn *conn; /* never NULL; conn->closed tells */
	struct RequestHeader hdr;
	const struct kf_message *resp_msg;
	struct arena arena; /* request and response structures */
	void *body;	    /* decoded request of hdr's API */
	uint8_t *frame;	    /* the request bytes; strings borrow them */
	size_t frame_len;
	bool done;
	bool silent; /* no response is sent (Produce acks=0) */
	struct kb_writer out;
	struct request *next;
	void *ctx;		    /* the handler's own state */
	void (*cleanup)(void *ctx); /* runs when the request is freed */
	/* Called once if the connection closes before the answer: a request
	 * that only waits for the client's sake answers (into the void) now. */
	void (*abandon)(struct request *req);
	bool abandoned;
	bool fetching;	 /* a Fetch not answered yet (conn->fetches) */
	int holds;	 /* parts still in flight (req_hold) */
	void *held_resp; /* the answer once they are all done */
};

/*
 * Binds cfg->kafka without accepting yet, so a port in use is reported
 * before anything else starts.  Returns 0, or -1 with a one-line message.
 */
int server_start(struct server *srv, char *err, size_t errlen);
/* Starts accepting connections (srv->store must be open). */
void server_accept(struct server *srv);
void server_stop(struct server *srv);

/*
 * Answers req with resp, a response structure of req's API (usually in the
 * request's arena).  Encodes it at once; it is sent when every earlier
 * request on the connection has been answered.  req must not be used
 * afterwards.
 */
void req_reply(struct request *req, const void *resp);

/* The answer will take about n bytes: one allocation for it instead of
 * doublings and their copies (a fetch answers megabytes). */
void req_reserve(struct request *req, size_t n);

/* Finishes req without a response (acks=0). */
void req_finish_silent(struct request *req);

/*
 * Closes req's connection after the responses before it, as Kafka does for
 * a request it cannot answer (acks=0 errors).  Finishes req.
 */
void req_close_connection(struct request *req);

/*
 * Answers made of parts that complete one by one: req_begin() names the
 * response and holds the request once (for the handler itself); req_hold()
 * adds a hold per part in flight; req_release() drops one, and the last
 * release answers with the response.
 */
void req_begin(struct request *req, void *resp);
void req_hold(struct request *req);
void req_release(struct request *req);

/* A response structure of req's API with every field at its default. */
void *req_response(struct request *req);

/*
 * Sets an array field of a structure in req's arena to n elements, each at
 * its defaults, and returns the elements (NULL and count 0 on exhaustion).
 * elem describes the element structure.
 */
void *req_array(struct request *req, void *field, const struct kf_struct *elem,
		int32_t n);

/* The same for an array of a primitive type of elem_size bytes. */
void *req_array_raw(struct request *req, void *field, size_t elem_size,
		    int32_t n);

/*
 * Logging in (--kafka-auth postgres; proxy/api_sasl.c).  A connection
 * starts at LOGIN_HANDSHAKE, where only ApiVersions and SaslHandshake are
 * served, then LOGIN_AUTHENTICATE (ApiVersions and SaslAuthenticate),
 * LOGIN_CHECKING while Postgres judges the password (ApiVersions only),
 * and LOGIN_DONE; without --kafka-auth it starts at LOGIN_DONE.  Any other
 * request before LOGIN_DONE closes the connection, as Kafka does.
 */
enum login_state {
	LOGIN_HANDSHAKE,
	LOGIN_AUTHENTICATE,
	LOGIN_CHECKING,
	LOGIN_DONE,
};
enum login_state req_login_state(const struct request *req);
void req_set_login_state(struct request *req, enum login_state st);

/* A login's own state across its requests (a SCRAM exchange takes two),
 * kept by the connection: free_fn (may be NULL) frees it when it is
 * replaced or when the connection goes.  NULL when none. */
void *req_login_ctx(const struct request *req);
void req_set_login_ctx(struct request *req, void *ctx,
		       void (*free_fn)(void *ctx));

/* Answers req, then closes the connection once the answer is sent (a
 * failed login).  req must not be used afterwards. */
void req_reply_and_close(struct request *req, const void *resp);

/* The client's address as "host:port" (DescribeGroups' client host). */
const char *req_peer(const struct request *req);

/* A copy of s in req's arena (for strings built while answering). */
struct kstr req_str(struct request *req, const char *s);

/*
 * How the names of a request's list repeat: the i-th of n names is the
 * struct kstr at (char *)items + i * stride + offset.  seen[i].first is the
 * index of the first entry with that name (i for the first one itself),
 * seen[i].count how many entries have it.  O(n log n), for a request may
 * name a million topics; in req's arena, NULL when out of memory.
 */
struct name_seen {
	int32_t first, count;
};
struct name_seen *req_names_seen(struct request *req, const void *items,
				 size_t stride, size_t offset, int32_t n);

#endif
