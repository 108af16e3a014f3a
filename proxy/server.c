/*
 * server: listener, connections, framing and the request queue.
 */
#include "proxy/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "protocol/messages.h"
#include "proxy/dispatch.h"
#include "proxy/group.h"
#include "proxy/logging.h"
#include "proxy/tls.h"
#include "storage/topic_config.h"

/* At most this many requests in flight per connection; then we stop
 * reading until some are answered. */
#define MAX_INFLIGHT 512
/* Stop reading while this much output waits for the client, or this much
 * request data is held by unanswered requests. */
#define MAX_OUTPUT	   (64u << 20)
#define MAX_INFLIGHT_BYTES (256u << 20)
/* Before a client has logged in its frames are small (Kafka's
 * sasl.server.max.receive.size): no one unknown fills memory. */
#define MAX_FRAME_BEFORE_LOGIN (512u << 10)
/* Answers at least this big are not copied into the output buffer. */
#define SEND_BY_REFERENCE (64u << 10)

struct conn {
	struct server *srv;
	struct bufferevent *bev;
	char peer[64];
	struct request *head, *tail; /* in arrival order */
	int inflight;
	size_t inflight_bytes; /* frames of requests not yet freed */
	/* Fetches not answered yet: as Kafka, which reads a connection's
	 * next request once it answered the last, nothing more is read
	 * meanwhile, so that pipelined fetches cannot each hold an answer
	 * of up to fetch.max.bytes. */
	int fetches;
	bool closed;	  /* socket gone; freed when inflight reaches 0 */
	bool close_after; /* close once the queue drains */
	bool paused;
	bool free_scheduled;
	bool tls; /* reads go through OpenSSL: no read_rest */
	enum login_state login;
	void *login_ctx; /* a login's state across requests (SCRAM) */
	void (*login_ctx_free)(void *ctx);
	struct conn *next, *prev;
};

static void conn_free(struct conn *c)
{
	struct server *srv = c->srv;
	if (c->prev)
		c->prev->next = c->next;
	else
		srv->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	srv->nconns--;
	if (c->login_ctx_free)
		c->login_ctx_free(c->login_ctx);
	free(c);
}

static void fetch_over(struct request *r)
{
	if (r->fetching) {
		r->fetching = false;
		r->conn->fetches--;
	}
}

static void request_free(struct request *r)
{
	fetch_over(r);
	r->conn->inflight_bytes -= r->frame_len;
	if (r->cleanup)
		r->cleanup(r->ctx);
	kb_writer_free(&r->out);
	arena_free(&r->arena);
	free(r->frame);
	free(r);
}

static void conn_free_now(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	conn_free(arg);
}

/*
 * A closed connection is freed after the current loop iteration, never
 * under the feet of the callback (a read, a storage answer) that closed it.
 */
static void conn_free_later(struct conn *c)
{
	struct timeval now = {0, 0};
	if (c->free_scheduled)
		return;
	c->free_scheduled = true;
	if (event_base_once(c->srv->base, -1, EV_TIMEOUT, conn_free_now, c,
			    &now) < 0)
		log_error("cannot schedule the release of a connection");
}

static void conn_flush(struct conn *c);

/* Requests that only wait for the client's sake (a long-polling fetch)
 * answer now; the rest finish and free themselves. */
static void abandon_waiting(struct conn *c)
{
	for (;;) {
		struct request *r = c->head;
		while (r && (r->done || !r->abandon || r->abandoned))
			r = r->next;
		if (!r)
			break;
		r->abandoned = true;
		r->abandon(r);
	}
}

static void conn_close(struct conn *c, const char *why)
{
	if (c->closed)
		return;
	if (why)
		log_info("closing connection from %s: %s", c->peer, why);
	c->closed = true;
	bufferevent_free(c->bev);
	c->bev = NULL;
	abandon_waiting(c);
	conn_flush(c);
}

/* The connection closes once what was asked before req (being answered)
 * is answered: nothing more is read (it would only be held), and nothing
 * waits for it. */
static void close_after(struct request *req)
{
	struct conn *c = req->conn;
	req->abandoned = true;
	if (c->close_after || c->closed)
		return;
	c->close_after = true;
	bufferevent_disable(c->bev, EV_READ);
	abandon_waiting(c);
}

static void conn_read(struct bufferevent *bev, void *arg);

static void maybe_resume(struct conn *c)
{
	if (c->closed || !c->paused)
		return;
	if (c->inflight < MAX_INFLIGHT && c->fetches == 0 &&
	    c->inflight_bytes < MAX_INFLIGHT_BYTES &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) < MAX_OUTPUT) {
		c->paused = false;
		bufferevent_enable(c->bev, EV_READ);
		/* Frames may already wait in the input buffer. */
		conn_read(c->bev, c);
	}
}

static void free_sent(const void *data, size_t len, void *buf)
{
	(void)data;
	(void)len;
	free(buf);
}

/* Queues an answer for the socket.  Big ones (fetches) are handed over
 * rather than copied: their buffer is freed once written. */
static void conn_send(struct conn *c, struct kb_writer *w)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	if (w->len >= SEND_BY_REFERENCE &&
	    evbuffer_add_reference(out, w->buf, w->len, free_sent, w->buf) ==
		    0) {
		kb_writer_init(w);
		return;
	}
	evbuffer_add(out, w->buf, w->len);
}

/* Sends every answered request at the head of the queue. */
static void conn_flush(struct conn *c)
{
	while (c->head && c->head->done) {
		struct request *r = c->head;
		c->head = r->next;
		if (!c->head)
			c->tail = NULL;
		c->inflight--;
		if (!c->closed && !r->silent && r->out.len)
			conn_send(c, &r->out);
		request_free(r);
	}
	if (c->closed) {
		if (c->inflight == 0)
			conn_free_later(c);
		return;
	}
	if (c->close_after && !c->head) {
		/* Let the output drain, then close. */
		bufferevent_disable(c->bev, EV_READ);
		if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
			conn_close(c, NULL);
		return;
	}
	maybe_resume(c);
}

static void finish(struct request *req)
{
	req->done = true;
	fetch_over(req);
	conn_flush(req->conn);
}

void req_reply(struct request *req, const void *resp)
{
	struct kb_writer *w = &req->out;
	bool flex = kmsg_flexible(req->resp_msg, req->hdr.RequestApiVersion);
	size_t size_at = kb_skip_bytes(w, 4);
	/* ApiVersions always answers with response header v0 (KIP-511). */
	kmsg_write_response_header(w, req->hdr.CorrelationId,
				   flex && req->hdr.RequestApiKey != 18);
	kmsg_encode(req->resp_msg, req->hdr.RequestApiVersion, w, resp);
	kb_patch_i32(w, size_at, (int32_t)(w->len - size_at - 4));
	/* An allocation that failed while the answer was built left parts
	 * of it out: the client would take it for whole. */
	if (!kb_writer_ok(w) || req->arena.exhausted) {
		log_error("out of memory building a %s response: closing "
			  "the connection",
			  req->resp_msg->name);
		kb_writer_free(w);
		close_after(req);
	}
	finish(req);
}

void req_reserve(struct request *req, size_t n)
{
	kb_writer_reserve(&req->out, n);
}

void req_finish_silent(struct request *req)
{
	req->silent = true;
	finish(req);
}

void req_close_connection(struct request *req)
{
	req->silent = true;
	close_after(req);
	finish(req);
}

void req_reply_and_close(struct request *req, const void *resp)
{
	close_after(req);
	req_reply(req, resp);
}

enum login_state req_login_state(const struct request *req)
{
	return req->conn->login;
}

void req_set_login_state(struct request *req, enum login_state st)
{
	req->conn->login = st;
}

void *req_login_ctx(const struct request *req)
{
	return req->conn->login_ctx;
}

void req_set_login_ctx(struct request *req, void *ctx,
		       void (*free_fn)(void *ctx))
{
	struct conn *c = req->conn;
	void *old = c->login_ctx;
	void (*old_free)(void *) = c->login_ctx_free;
	c->login_ctx = ctx;
	c->login_ctx_free = free_fn;
	if (old_free)
		old_free(old);
}

/* Whether a request of API key may come in login state st (server.h). */
static bool login_allows(enum login_state st, int16_t key)
{
	return st == LOGIN_DONE || key == 18 ||
	       (st == LOGIN_HANDSHAKE && key == 17) ||
	       (st == LOGIN_AUTHENTICATE && key == 36);
}

void req_begin(struct request *req, void *resp)
{
	req->held_resp = resp;
	req->holds = 1;
}

void req_hold(struct request *req)
{
	req->holds++;
}

void req_release(struct request *req)
{
	if (--req->holds == 0)
		req_reply(req, req->held_resp);
}

void *req_response(struct request *req)
{
	void *r = arena_alloc(&req->arena, req->resp_msg->body->size);
	if (r)
		kmsg_init(req->resp_msg->body, r);
	return r;
}

void *req_array(struct request *req, void *field, const struct kf_struct *elem,
		int32_t n)
{
	struct karr *a = field;
	a->count = 0;
	a->items = NULL;
	if (n <= 0)
		return NULL;
	uint8_t *items = arena_alloc(&req->arena, (size_t)n * elem->size);
	if (!items)
		return NULL;
	for (int32_t i = 0; i < n; i++)
		kmsg_init(elem, items + (size_t)i * elem->size);
	a->count = n;
	a->items = items;
	return items;
}

void *req_array_raw(struct request *req, void *field, size_t elem_size,
		    int32_t n)
{
	struct karr *a = field;
	a->count = 0;
	a->items = NULL;
	if (n <= 0)
		return NULL;
	a->items = arena_alloc(&req->arena, (size_t)n * elem_size);
	if (a->items)
		a->count = n;
	return a->items;
}

const char *req_peer(const struct request *req)
{
	return req->conn->peer;
}

struct kstr req_str(struct request *req, const char *s)
{
	if (!s)
		return KSTR_NULL;
	size_t n = strlen(s);
	char *p = arena_strndup(&req->arena, s, n);
	return p ? (struct kstr){p, (int32_t)n} : KSTR_LIT("");
}

struct named {
	struct kstr name;
	int32_t i;
};

static int by_name_then_index(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int32_t lx = x->name.len, ly = y->name.len; /* -1: null */
	int32_t both = lx < ly ? lx : ly;
	int c = both > 0 ? memcmp(x->name.ptr, y->name.ptr, (size_t)both) : 0;
	if (!c)
		c = (lx > ly) - (lx < ly);
	return c ? c : (x->i > y->i) - (x->i < y->i);
}

struct name_seen *req_names_seen(struct request *req, const void *items,
				 size_t stride, size_t offset, int32_t n)
{
	size_t m = n > 0 ? (size_t)n : 0;
	struct name_seen *seen = arena_alloc(&req->arena, m * sizeof(*seen));
	struct named *v = arena_alloc(&req->arena, m * sizeof(*v));
	if (!seen || !v)
		return NULL;
	for (size_t i = 0; i < m; i++) {
		memcpy(&v[i].name, (const char *)items + i * stride + offset,
		       sizeof(v[i].name));
		v[i].i = (int32_t)i;
	}
	qsort(v, m, sizeof(*v), by_name_then_index);
	for (size_t run = 0, end; run < m; run = end) {
		for (end = run + 1;
		     end < m && v[end].name.len == v[run].name.len &&
		     (v[end].name.len <= 0 ||
		      memcmp(v[end].name.ptr, v[run].name.ptr,
			     (size_t)v[end].name.len) == 0);
		     end++)
			;
		for (size_t k = run; k < end; k++)
			seen[v[k].i] = (struct name_seen){v[run].i,
							  (int32_t)(end - run)};
	}
	return seen;
}

/* Decodes and dispatches one whole frame (takes ownership of frame). */
static void conn_request(struct conn *c, uint8_t *frame, size_t len)
{
	struct request *req = calloc(1, sizeof(*req));
	if (!req) {
		free(frame);
		conn_close(c, "out of memory");
		return;
	}
	req->srv = c->srv;
	req->conn = c;
	req->frame = frame;
	req->frame_len = len;
	c->inflight_bytes += len;
	/* Decoded structures take at most a few times the frame. */
	req->arena.limit = len * 16 + (1u << 20);

	struct kb_reader r;
	kb_reader_init(&r, frame, len);
	if (kmsg_read_request_header(&r, &req->hdr) < 0) {
		request_free(req);
		conn_close(c, "request header does not parse");
		return;
	}
	if (c->tail)
		c->tail->next = req;
	else
		c->head = req;
	c->tail = req;
	c->inflight++;
	if (!login_allows(c->login, req->hdr.RequestApiKey)) {
		const char *api = kmsg_api_name(req->hdr.RequestApiKey);
		log_info("closing connection from %s: %s before it logged in "
			 "(--kafka-auth postgres: SASL/PLAIN first)",
			 c->peer, api ? api : "an unknown request");
		req_close_connection(req);
		return;
	}
	if (req->hdr.RequestApiKey == 1) {
		req->fetching = true;
		c->fetches++;
	}
	dispatch(req, &r);
}

/*
 * Reads up to want bytes of what the socket already holds, in one call.
 * libevent 2.1 reads at most 4 KiB per call whatever max_single_read says
 * (EVBUFFER_MAX_READ), so a 16 KiB produce took five trips through the
 * loop (epoll, ioctl, readv each).  Only what has arrived is reserved: a
 * frame's size alone must not make samsa allocate it.  An error or the end
 * of the stream is left for the bufferevent to find on its next read.
 */
static void read_rest(struct bufferevent *bev, size_t want)
{
	struct evbuffer *in = bufferevent_get_input(bev);
	int ready = 0;
	if (ioctl(bufferevent_getfd(bev), FIONREAD, &ready) < 0 || ready <= 0)
		return;
	if (want > (size_t)ready)
		want = (size_t)ready;
	struct evbuffer_iovec v[2];
	/* The bufferevent keeps its input's end frozen but for its reads. */
	evbuffer_unfreeze(in, 0);
	int n = evbuffer_reserve_space(in, (ev_ssize_t)want, v, 2);
	if (n > 0) {
		/* evbuffer_iovec is laid out as struct iovec on Unix. */
		ssize_t got =
			readv(bufferevent_getfd(bev), (struct iovec *)v, n);
		size_t left = got > 0 ? (size_t)got : 0;
		int used = 0;
		for (; used < n && left; used++) {
			if (v[used].iov_len > left)
				v[used].iov_len = left;
			left -= v[used].iov_len;
		}
		evbuffer_commit_space(in, v, used);
	}
	evbuffer_freeze(in, 0);
}

static void conn_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	while (!c->closed && !c->paused && !c->close_after) {
		uint8_t hdr[4];
		if (evbuffer_copyout(in, hdr, 4) < 4)
			return;
		uint32_t size = (uint32_t)hdr[0] << 24 |
				(uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 |
				hdr[3];
		if (size < 8 ||
		    size > (uint64_t)c->srv->cfg->max_request_bytes) {
			char why[96];
			snprintf(why, sizeof(why),
				 "frame of %u bytes (limit %lld, "
				 "socket.request.max.bytes)",
				 size, c->srv->cfg->max_request_bytes);
			conn_close(c, why);
			return;
		}
		if (c->login != LOGIN_DONE && size > MAX_FRAME_BEFORE_LOGIN) {
			char why[96];
			snprintf(why, sizeof(why),
				 "frame of %u bytes before it logged in "
				 "(limit %u)",
				 size, MAX_FRAME_BEFORE_LOGIN);
			conn_close(c, why);
			return;
		}
		if (evbuffer_get_length(in) < (size_t)size + 4 && !c->tls)
			read_rest(bev,
				  (size_t)size + 4 - evbuffer_get_length(in));
		if (evbuffer_get_length(in) < (size_t)size + 4) {
			/* Wake us only when the whole frame is here. */
			bufferevent_setwatermark(bev, EV_READ, (size_t)size + 4,
						 0);
			return;
		}
		bufferevent_setwatermark(bev, EV_READ, 0, 0);
		uint8_t *frame = malloc(size);
		if (!frame) {
			conn_close(c, "out of memory");
			return;
		}
		evbuffer_drain(in, 4);
		evbuffer_remove(in, frame, size);
		conn_request(c, frame, size);
		if (!c->closed &&
		    (c->inflight >= MAX_INFLIGHT || c->fetches > 0 ||
		     c->inflight_bytes >= MAX_INFLIGHT_BYTES ||
		     evbuffer_get_length(bufferevent_get_output(bev)) >=
			     MAX_OUTPUT)) {
			c->paused = true;
			bufferevent_disable(bev, EV_READ);
		}
	}
}

static void conn_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	(void)bev;
	if (c->close_after && !c->head) {
		conn_close(c, NULL);
		return;
	}
	maybe_resume(c);
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	char why[200];
	if (what & BEV_EVENT_TIMEOUT) {
		/* Nothing read for connections.max.idle.ms: as Kafka, an idle
		 * connection is closed; one with requests in flight is not
		 * idle (libevent stopped reading it: read on). */
		if (c->inflight > 0 || c->close_after) {
			if (!c->paused && !c->close_after)
				bufferevent_enable(bev, EV_READ);
			return;
		}
		snprintf(why, sizeof(why),
			 "idle for connections.max.idle.ms (%lld ms)",
			 (long long)bc_get_int("connections.max.idle.ms",
					       600000));
		conn_close(c, why);
		return;
	}
	if (what & BEV_EVENT_EOF)
		conn_close(c, NULL);
	else if (what & BEV_EVENT_ERROR && c->tls &&
		 tls_error(bev, why, sizeof(why)))
		conn_close(c, why);
	else if (what & BEV_EVENT_ERROR)
		conn_close(c, strerror(EVUTIL_SOCKET_ERROR()));
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct server *srv = arg;
	(void)l;
	(void)salen;
	struct conn *c = calloc(1, sizeof(*c));
	if (!c) {
		evutil_closesocket(fd);
		return;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->srv = srv;
	c->login = srv->cfg->kafka_login ? LOGIN_HANDSHAKE : LOGIN_DONE;
	c->tls = srv->tls != NULL;
	c->bev = c->tls ? tls_accept(srv->tls, srv->base, fd)
			: bufferevent_socket_new(srv->base, fd,
						 BEV_OPT_CLOSE_ON_FREE);
	if (!c->bev) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	/* libevent writes 16 KiB per call by default: fetches answer in much
	 * larger pieces.  (Reads stop at 4 KiB in libevent 2.1 anyway: see
	 * read_rest.) */
	bufferevent_set_max_single_read(c->bev, 1u << 20);
	bufferevent_set_max_single_write(c->bev, 1u << 20);
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		struct sockaddr_in6 *in = (struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
		port = ntohs(in->sin6_port);
	}
	snprintf(c->peer, sizeof(c->peer), "%s:%d", host, port);
	c->next = srv->conns;
	if (srv->conns)
		srv->conns->prev = c;
	srv->conns = c;
	srv->nconns++;
	bufferevent_setcb(c->bev, conn_read, conn_write, conn_event, c);
	int64_t idle = bc_get_int("connections.max.idle.ms", 600000);
	struct timeval tv = {idle / 1000, (idle % 1000) * 1000};
	if (idle > 0)
		bufferevent_set_timeouts(c->bev, &tv, NULL);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void accept_again(evutil_socket_t fd, short what, void *arg)
{
	struct server *srv = arg;
	(void)fd;
	(void)what;
	evconnlistener_enable(srv->listener);
}

/* accept() failed: out of file descriptors, most likely.  Retrying at once
 * would spin the loop (and the log) until one is freed: accepting pauses
 * for a second instead. */
static void on_accept_error(struct evconnlistener *l, void *arg)
{
	struct server *srv = arg;
	int e = EVUTIL_SOCKET_ERROR();
	log_warn("accepting connections: %s (%d open); pausing for a second",
		 evutil_socket_error_to_string(e), srv->nconns);
	struct timeval tv = {1, 0};
	if (!srv->accept_retry)
		srv->accept_retry = evtimer_new(srv->base, accept_again, srv);
	if (srv->accept_retry && evtimer_add(srv->accept_retry, &tv) == 0)
		evconnlistener_disable(l);
}

int server_start(struct server *srv, char *err, size_t errlen)
{
	const struct hostport *hp = &srv->cfg->kafka;
	const struct config *cfg = srv->cfg;
	if (cfg->tls_cert &&
	    !(srv->tls =
		      tls_server_new("--kafka-tls", cfg->tls_cert, cfg->tls_key,
				     cfg->tls_client_ca, err, errlen)))
		return -1;
	/* Here too, so that a bad file stops samsa before Postgres. */
	if (cfg->rest_tls_cert &&
	    !(srv->rest_tls =
		      tls_server_new("--rest-tls", cfg->rest_tls_cert,
				     cfg->rest_tls_key, NULL, err, errlen)))
		return -1;
	struct evutil_addrinfo hints = {0}, *ai = NULL;
	char port[16];
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	snprintf(port, sizeof(port), "%d", hp->port);
	int rc = evutil_getaddrinfo(hp->host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(err, errlen, "--kafka %s:%d: %s", hp->host, hp->port,
			 evutil_gai_strerror(rc));
		return -1;
	}
	srv->listener = evconnlistener_new_bind(
		srv->base, on_accept, srv,
		LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_DISABLED,
		1024, ai->ai_addr, (int)ai->ai_addrlen);
	evutil_freeaddrinfo(ai);
	if (!srv->listener) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", hp->host,
			 hp->port, strerror(errno));
		return -1;
	}
	evconnlistener_set_error_cb(srv->listener, on_accept_error);
	return 0;
}

void server_accept(struct server *srv)
{
	evconnlistener_enable(srv->listener);
}

void server_stop(struct server *srv)
{
	if (srv->listener)
		evconnlistener_free(srv->listener);
	srv->listener = NULL;
	if (srv->accept_retry)
		event_free(srv->accept_retry);
	srv->accept_retry = NULL;
	groups_free(srv);
	for (struct conn *c = srv->conns; c; c = c->next)
		conn_close(c, NULL);
	/* The loop no longer runs: free now what conn_free_later scheduled.
	 * A connection with a request still waiting for Postgres stays: that
	 * request will still touch it while the store shuts down. */
	for (struct conn *c = srv->conns, *next; c; c = next) {
		next = c->next;
		if (c->inflight == 0)
			conn_free(c);
	}
	/* Each connection's SSL holds the context too (OpenSSL counts). */
	tls_server_free(srv->tls);
	tls_server_free(srv->rest_tls);
	srv->tls = srv->rest_tls = NULL;
}
