/*
 * pgscram: Postgres's frontend protocol spoken by hand, as far as the
 * login: libpq runs SCRAM itself from a password and has no way to pass
 * someone else's messages.  One state per step; every callback goes out
 * through one deferred event, so none runs inside a call of ours.
 */
#include "storage/pgscram.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <libpq-fe.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "storage/pgresolve.h"

#define MAX_MESSAGE 8192     /* the login's messages are a few hundred bytes */
#define SSL_REQUEST 80877103 /* the SSLRequest code */
#define MECHANISM   "SCRAM-SHA-256"
/* Where Debian's libpq looks when no host is given. */
#define DEFAULT_SOCKET_DIR "/var/run/postgresql"

enum step {
	CONNECTING, /* TCP or Unix socket */
	ASKING_TLS, /* SSLRequest sent, one byte awaited */
	SHAKING,    /* TLS handshake */
	STARTING,   /* startup message sent */
	SENT_FIRST, /* the client's first message sent */
	WAITING,    /* server-first delivered, the client's final awaited */
	SENT_FINAL, /* the client's final message sent */
	GOT_FINAL,  /* server-final received, AuthenticationOk awaited */
	ACCEPTED,   /* the proof passed; ReadyForQuery awaited */
	TRUSTED,    /* let in without a proof; ReadyForQuery or an error */
	OVER,	    /* delivered the end, or failed */
};

/* What samsa's conninfo says, its first host only. */
struct target {
	char host[256]; /* a name for TLS, or a socket directory */
	char addr[256]; /* a numeric address once known */
	char port[16];
	char dbname[256];
	char sslmode[16];
	char sslrootcert[512], sslcert[512], sslkey[512];
};

struct pg_scram {
	struct event_base *base;
	struct bufferevent *bev;
	struct event *timer, *defer;
	struct pg_resolve *resolving;
	SSL_CTX *ssl_ctx;
	evutil_socket_t fd; /* owned here until a TLS bufferevent takes it */
	enum step step;
	struct target t;
	char user[256];
	char addrs[2048]; /* addresses still to try, a comma list */
	char *client_first;
	size_t client_first_len;
	pg_scram_cb cb; /* the step's, NULL when none is running */
	void *arg;
	char *msg; /* what the next delivery hands over */
	size_t msg_len;
	char why[512]; /* set once it failed */
};

static void close_link(struct pg_scram *s)
{
	pg_resolve_cancel(s->resolving);
	s->resolving = NULL;
	if (s->bev)
		bufferevent_free(s->bev);
	s->bev = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

void pg_scram_free(struct pg_scram *s)
{
	if (!s)
		return;
	close_link(s);
	if (s->timer)
		event_free(s->timer);
	if (s->defer)
		event_free(s->defer);
	SSL_CTX_free(s->ssl_ctx);
	free(s->client_first);
	free(s->msg);
	free(s);
}

/* Hands the step's result to its callback from the loop. */
static void deliver_soon(struct pg_scram *s)
{
	if (s->cb)
		event_active(s->defer, EV_TIMEOUT, 0);
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct pg_scram *s = arg;
	(void)fd;
	(void)what;
	pg_scram_cb cb = s->cb;
	if (!cb)
		return;
	s->cb = NULL;
	if (s->why[0]) {
		cb(s->arg, NULL, 0, s->why);
		return;
	}
	/* The message stays s's until the next step or the free. */
	cb(s->arg, s->msg, s->msg_len, NULL);
}

static void fail(struct pg_scram *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* The login is over: the link closes, the running step (or the next one
 * asked for) hears why. */
static void fail(struct pg_scram *s, const char *fmt, ...)
{
	if (!s->why[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(s->why, sizeof(s->why), fmt, ap);
		va_end(ap);
	}
	s->step = OVER;
	close_link(s);
	deliver_soon(s);
}

/* Keeps msg for the step's callback; -1 (failed) when out of memory. */
static int keep(struct pg_scram *s, const char *msg, size_t len)
{
	char *copy = malloc(len + 1);
	if (!copy) {
		fail(s, "out of memory");
		return -1;
	}
	memcpy(copy, msg, len);
	copy[len] = '\0';
	free(s->msg);
	s->msg = copy;
	s->msg_len = len;
	return 0;
}

/* --- the target --------------------------------------------------------- */

/* The first entry of a comma list. */
static void first_of(const char *list, char *out, size_t len)
{
	size_t n = list ? strcspn(list, ",") : 0;
	if (n >= len)
		n = len - 1;
	memcpy(out, list ? list : "", n);
	out[n] = '\0';
}

static const char *option(const PQconninfoOption *given,
			  const PQconninfoOption *defaults, const char *kw)
{
	for (const PQconninfoOption *o = given; o && o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0 && o->val && *o->val)
			return o->val;
	for (const PQconninfoOption *o = defaults; o && o->keyword; o++)
		if (strcmp(o->keyword, kw) == 0 && o->val && *o->val)
			return o->val;
	return NULL;
}

static void copy_opt(char *out, size_t len, const char *v)
{
	snprintf(out, len, "%s", v ? v : "");
}

/* samsa's conninfo, with libpq's environment and defaults for what it
 * leaves out; -1 with why when it does not parse. */
static int read_target(struct pg_scram *s, const char *conninfo)
{
	char *err = NULL;
	PQconninfoOption *given = PQconninfoParse(conninfo, &err);
	if (!given) {
		fail(s, "samsa's conninfo: %s", err ? err : "out of memory");
		PQfreemem(err);
		return -1;
	}
	PQconninfoOption *defaults = PQconndefaults();
	struct target *t = &s->t;
	first_of(option(given, defaults, "host"), t->host, sizeof(t->host));
	first_of(option(given, defaults, "hostaddr"), t->addr, sizeof(t->addr));
	first_of(option(given, defaults, "port"), t->port, sizeof(t->port));
	/* As libpq, a login without a database goes to the role's own. */
	copy_opt(t->dbname, sizeof(t->dbname),
		 option(given, defaults, "dbname"));
	if (!t->dbname[0])
		copy_opt(t->dbname, sizeof(t->dbname), s->user);
	copy_opt(t->sslmode, sizeof(t->sslmode),
		 option(given, defaults, "sslmode"));
	copy_opt(t->sslrootcert, sizeof(t->sslrootcert),
		 option(given, defaults, "sslrootcert"));
	copy_opt(t->sslcert, sizeof(t->sslcert),
		 option(given, defaults, "sslcert"));
	copy_opt(t->sslkey, sizeof(t->sslkey),
		 option(given, defaults, "sslkey"));
	PQconninfoFree(given);
	PQconninfoFree(defaults);
	if (!t->port[0])
		snprintf(t->port, sizeof(t->port), "5432");
	if (!t->sslmode[0])
		snprintf(t->sslmode, sizeof(t->sslmode), "prefer");
	if (!t->host[0] && !t->addr[0])
		snprintf(t->host, sizeof(t->host), DEFAULT_SOCKET_DIR);
	return 0;
}

static bool unix_socket(const struct target *t)
{
	return !t->addr[0] && (t->host[0] == '/' || t->host[0] == '@');
}

static bool tls_insisted(const struct target *t)
{
	return strcmp(t->sslmode, "require") == 0 ||
	       strcmp(t->sslmode, "verify-ca") == 0 ||
	       strcmp(t->sslmode, "verify-full") == 0;
}

/* --- messages ----------------------------------------------------------- */

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void send_bytes(struct pg_scram *s, const void *data, size_t len)
{
	if (s->step != OVER && bufferevent_write(s->bev, data, len) != 0)
		fail(s, "out of memory");
}

/* A message of type with body parts a and b. */
static void send_message(struct pg_scram *s, char type, const void *a,
			 size_t alen, const void *b, size_t blen)
{
	uint8_t head[5];
	head[0] = (uint8_t)type;
	put32(head + 1, (uint32_t)(4 + alen + blen));
	send_bytes(s, head, 5);
	if (alen)
		send_bytes(s, a, alen);
	if (blen)
		send_bytes(s, b, blen);
}

static void send_startup(struct pg_scram *s)
{
	char body[1024];
	int n = snprintf(body + 8, sizeof(body) - 8,
			 "user%c%s%cdatabase%c%s%capplication_name%c"
			 "samsa login%c",
			 0, s->user, 0, 0, s->t.dbname, 0, 0, 0);
	if (n < 0 || (size_t)n + 9 > sizeof(body)) {
		fail(s, "user or database name too long");
		return;
	}
	size_t len = 8 + (size_t)n + 1;
	body[len - 1] = '\0';
	put32((uint8_t *)body, (uint32_t)len);
	put32((uint8_t *)body + 4, 196608); /* protocol 3.0 */
	send_bytes(s, body, len);
	if (s->step != OVER)
		s->step = STARTING;
}

/* SASLInitialResponse: the mechanism, then the client's first message. */
static void send_first(struct pg_scram *s)
{
	uint8_t mech[sizeof(MECHANISM) + 4];
	memcpy(mech, MECHANISM, sizeof(MECHANISM));
	put32(mech + sizeof(MECHANISM), (uint32_t)s->client_first_len);
	send_message(s, 'p', mech, sizeof(mech), s->client_first,
		     s->client_first_len);
	if (s->step != OVER)
		s->step = SENT_FIRST;
}

static bool offers_scram(const char *list, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = strnlen(list + i, len - i);
		if (n == strlen(MECHANISM) &&
		    memcmp(list + i, MECHANISM, n) == 0)
			return true;
		i += n + 1;
	}
	return false;
}

/* An authentication request: R, its code, its data. */
static void on_auth(struct pg_scram *s, uint32_t code, const char *data,
		    size_t len)
{
	if (code == 10 && s->step == STARTING) { /* AuthenticationSASL */
		if (offers_scram(data, len))
			send_first(s);
		else
			fail(s,
			     "Postgres does not offer " MECHANISM
			     " for role \"%s\"",
			     s->user);
	} else if (code == 11 && s->step == SENT_FIRST) { /* continue */
		s->step = WAITING;
		if (keep(s, data, len) == 0)
			deliver_soon(s);
	} else if (code == 12 && s->step == SENT_FINAL) { /* final */
		if (keep(s, data, len) == 0)
			s->step = GOT_FINAL;
	} else if (code == 0 && s->step == GOT_FINAL) { /* AuthenticationOk */
		s->step = ACCEPTED;
	} else if (code == 0 && s->step == STARTING) {
		s->step = TRUSTED;
	} else if (code == 3 || code == 5) {
		fail(s,
		     "Postgres asks role \"%s\" for its password in %s, "
		     "not with " MECHANISM
		     " (pg_hba.conf, or the role's password is stored as "
		     "md5): use PLAIN",
		     s->user, code == 3 ? "clear text" : "md5");
	} else {
		fail(s,
		     "Postgres asked for authentication %u, which a SCRAM "
		     "login cannot answer",
		     code);
	}
}

/* ErrorResponse: Postgres's message field. */
static void on_error(struct pg_scram *s, const char *data, size_t len)
{
	for (size_t i = 0; i < len && data[i];) {
		char field = data[i++];
		size_t n = strnlen(data + i, len - i);
		if (field == 'M') {
			fail(s, "%.*s", (int)n, data + i);
			return;
		}
		i += n + 1;
	}
	fail(s, "Postgres refused the login");
}

/* ReadyForQuery: the role is in (a role without LOGIN, a database it may
 * not connect to are refused after the password). */
static void on_ready(struct pg_scram *s)
{
	if (s->step == ACCEPTED) {
		s->step = OVER;
		close_link(s);
		deliver_soon(s);
	} else {
		fail(s,
		     "Postgres let role \"%s\" in without checking a "
		     "password (pg_hba.conf trust?), so it cannot judge a "
		     "SCRAM proof: use PLAIN, or scram-sha-256 in "
		     "pg_hba.conf",
		     s->user);
	}
}

static void on_message(struct pg_scram *s, char type, const char *data,
		       size_t len)
{
	bool in = s->step == ACCEPTED || s->step == TRUSTED;
	if (in && type == 'Z')
		on_ready(s);
	else if (in && (type == 'S' || type == 'K')) /* parameters, key */
		return;
	else if (type == 'R' && len >= 4)
		on_auth(s, get32((const uint8_t *)data), data + 4, len - 4);
	else if (type == 'E')
		on_error(s, data, len);
	else if (type != 'N' && type != 'v') /* notices, protocol minor */
		fail(s,
		     "Postgres sent an unexpected '%c' message during the "
		     "login",
		     type);
}

static void start_tls(struct pg_scram *s);
static void next_address(struct pg_scram *s);

static void on_read(struct bufferevent *bev, void *arg)
{
	struct pg_scram *s = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (s->step == ASKING_TLS) {
		uint8_t answer;
		if (evbuffer_remove(in, &answer, 1) != 1)
			return;
		if (answer == 'S')
			start_tls(s);
		else if (answer != 'N')
			fail(s, "Postgres answered the TLS request with '%c'",
			     answer);
		else if (tls_insisted(&s->t))
			fail(s,
			     "Postgres does not speak TLS, and samsa's "
			     "sslmode is %s",
			     s->t.sslmode);
		else
			send_startup(s);
		return;
	}
	while (s->bev == bev && s->step != OVER) {
		uint8_t head[5];
		if (evbuffer_copyout(in, head, 5) != 5)
			return;
		uint32_t len = get32(head + 1);
		if (len < 4 || len > MAX_MESSAGE) {
			fail(s, "Postgres sent a message of %u bytes", len);
			return;
		}
		if (evbuffer_get_length(in) < 1 + (size_t)len)
			return;
		const char *body =
			(const char *)evbuffer_pullup(in, 1 + (ssize_t)len);
		if (!body) {
			fail(s, "out of memory");
			return;
		}
		/* Handled before it is drained: a failure frees the buffer. */
		char copy[MAX_MESSAGE];
		memcpy(copy, body + 5, len - 4);
		evbuffer_drain(in, 1 + (size_t)len);
		on_message(s, (char)head[0], copy, len - 4);
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct pg_scram *s = arg;
	if (what & BEV_EVENT_CONNECTED) {
		if (s->step == SHAKING) {
			send_startup(s);
		} else if (unix_socket(&s->t) ||
			   strcmp(s->t.sslmode, "disable") == 0 ||
			   strcmp(s->t.sslmode, "allow") == 0) {
			send_startup(s);
		} else {
			uint8_t req[8];
			put32(req, 8);
			put32(req + 4, SSL_REQUEST);
			s->step = ASKING_TLS;
			send_bytes(s, req, sizeof(req));
		}
		return;
	}
	if (s->step == CONNECTING && s->addrs[0]) {
		/* As libpq, the host's next address. */
		close_link(s);
		next_address(s);
		return;
	}
	char tls[300] = "";
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (e)
		ERR_error_string_n(e, tls, sizeof(tls));
	SSL *ssl = bufferevent_openssl_get_ssl(bev);
	long verified = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
	if (tls[0] && verified != X509_V_OK)
		fail(s, "TLS to Postgres: %s (%s)", tls,
		     X509_verify_cert_error_string(verified));
	else if (tls[0])
		fail(s, "TLS to Postgres: %s", tls);
	else if (what & BEV_EVENT_EOF)
		fail(s, "Postgres closed the connection during the login");
	else
		fail(s, "cannot reach Postgres at %s port %s: %s",
		     s->t.addr[0] ? s->t.addr : s->t.host, s->t.port,
		     evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

/* --- TLS ------------------------------------------------------------------ */

static int tls_context(struct pg_scram *s)
{
	struct target *t = &s->t;
	s->ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!s->ssl_ctx)
		return -1;
	SSL_CTX_set_min_proto_version(s->ssl_ctx, TLS1_2_VERSION);
	bool verify = strcmp(t->sslmode, "verify-ca") == 0 ||
		      strcmp(t->sslmode, "verify-full") == 0;
	char root[600];
	const char *home = getenv("HOME");
	if (t->sslrootcert[0])
		snprintf(root, sizeof(root), "%s", t->sslrootcert);
	else
		snprintf(root, sizeof(root), "%s/.postgresql/root.crt",
			 home ? home : "");
	/* As libpq: require checks the chain when a root file is there. */
	if (!verify && strcmp(t->sslmode, "require") == 0 &&
	    access(root, R_OK) == 0)
		verify = true;
	if (verify) {
		int ok = strcmp(root, "system") == 0
				 ? SSL_CTX_set_default_verify_paths(s->ssl_ctx)
				 : SSL_CTX_load_verify_locations(s->ssl_ctx,
								 root, NULL);
		if (ok != 1)
			return -1;
		SSL_CTX_set_verify(s->ssl_ctx, SSL_VERIFY_PEER, NULL);
	}
	if (t->sslcert[0] &&
	    (SSL_CTX_use_certificate_chain_file(s->ssl_ctx, t->sslcert) != 1 ||
	     SSL_CTX_use_PrivateKey_file(s->ssl_ctx,
					 t->sslkey[0] ? t->sslkey : t->sslcert,
					 SSL_FILETYPE_PEM) != 1))
		return -1;
	return 0;
}

static void start_tls(struct pg_scram *s)
{
	char why[300] = "out of memory";
	SSL *ssl = NULL;
	if (tls_context(s) != 0 || !(ssl = SSL_new(s->ssl_ctx)))
		goto failed;
	if (!pg_numeric_host(s->t.host) && !unix_socket(&s->t) &&
	    s->t.host[0]) {
		SSL_set_tlsext_host_name(ssl, s->t.host);
		if (strcmp(s->t.sslmode, "verify-full") == 0)
			SSL_set1_host(ssl, s->t.host);
	} else if (strcmp(s->t.sslmode, "verify-full") == 0) {
		X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
					      s->t.addr[0] ? s->t.addr
							   : s->t.host);
	}
	/* The socket passes to the TLS bufferevent, which closes it. */
	bufferevent_free(s->bev);
	s->bev = bufferevent_openssl_socket_new(s->base, s->fd, ssl,
						BUFFEREVENT_SSL_CONNECTING,
						BEV_OPT_CLOSE_ON_FREE);
	if (!s->bev) {
		SSL_free(ssl);
		fail(s, "out of memory");
		return;
	}
	s->fd = -1;
	s->step = SHAKING;
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	return;
failed:;
	unsigned long e = ERR_get_error();
	if (e)
		ERR_error_string_n(e, why, sizeof(why));
	ERR_clear_error();
	SSL_free(ssl);
	fail(s, "TLS to Postgres: %s", why);
}

/* --- connecting --------------------------------------------------------- */

static void connect_to(struct pg_scram *s)
{
	struct target *t = &s->t;
	struct sockaddr_storage ss;
	socklen_t sl;
	memset(&ss, 0, sizeof(ss));
	if (unix_socket(t)) {
		struct sockaddr_un *un = (struct sockaddr_un *)&ss;
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path, sizeof(un->sun_path),
				 "%s/.s.PGSQL.%s", t->host, t->port);
		if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
			fail(s, "socket path too long");
			return;
		}
		if (t->host[0] == '@') /* Linux's abstract namespace */
			un->sun_path[0] = '\0';
		sl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				 (size_t)n + (t->host[0] == '@' ? 0 : 1));
	} else {
		int len = (int)sizeof(ss);
		char spec[300];
		snprintf(spec, sizeof(spec),
			 strchr(t->addr, ':') ? "[%s]:%s" : "%s:%s", t->addr,
			 t->port);
		if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss,
					       &len) != 0) {
			fail(s, "cannot read Postgres's address %s", spec);
			return;
		}
		sl = (socklen_t)len;
	}
	s->fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (s->fd < 0 || evutil_make_socket_nonblocking(s->fd) != 0 ||
	    !(s->bev = bufferevent_socket_new(s->base, s->fd, 0))) {
		fail(s, "cannot open a socket");
		return;
	}
	bufferevent_setcb(s->bev, on_read, NULL, on_event, s);
	bufferevent_enable(s->bev, EV_READ | EV_WRITE);
	s->step = CONNECTING;
	if (bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss,
				       (int)sl) == 0)
		return;
	/* Refused at once (no route, no such address): as libpq, the next
	 * address, if the host has one. */
	int e = EVUTIL_SOCKET_ERROR();
	if (s->addrs[0]) {
		close_link(s);
		next_address(s);
		return;
	}
	fail(s, "cannot reach Postgres at %s port %s: %s",
	     t->addr[0] ? t->addr : t->host, t->port,
	     evutil_socket_error_to_string(e));
}

/* Connects to the first of the addresses left. */
static void next_address(struct pg_scram *s)
{
	first_of(s->addrs, s->t.addr, sizeof(s->t.addr));
	const char *rest = strchr(s->addrs, ',');
	memmove(s->addrs, rest ? rest + 1 : "", rest ? strlen(rest) : 1);
	connect_to(s);
}

static void on_resolved(void *arg, const char *host, const char *hostaddr,
			const char *err)
{
	struct pg_scram *s = arg;
	(void)host;
	s->resolving = NULL;
	if (err) {
		fail(s, "%s", err);
		return;
	}
	snprintf(s->addrs, sizeof(s->addrs), "%s", hostaddr);
	next_address(s);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	fail(arg, "Postgres did not answer in time");
}

/* The first step, from the loop. */
static void on_start(struct pg_scram *s, const char *conninfo)
{
	if (read_target(s, conninfo) != 0)
		return;
	struct target *t = &s->t;
	if (!t->addr[0] && !unix_socket(t) && pg_numeric_host(t->host))
		snprintf(t->addr, sizeof(t->addr), "%s", t->host);
	if (t->addr[0] || unix_socket(t)) {
		connect_to(s);
		return;
	}
	const char *const kw[] = {"host", "port", NULL};
	const char *const val[] = {t->host, t->port, NULL};
	s->resolving = pg_resolve_start(s->base, kw, val, 0, on_resolved, s);
	if (!s->resolving)
		fail(s, "cannot look up %s", t->host);
}

struct pg_scram *pg_scram_start(struct event_base *base, const char *conninfo,
				const char *user, const char *client_first,
				size_t len, int timeout_ms, pg_scram_cb cb,
				void *arg)
{
	struct pg_scram *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->base = base;
	s->fd = -1;
	s->cb = cb;
	s->arg = arg;
	snprintf(s->user, sizeof(s->user), "%s", user);
	s->client_first = malloc(len ? len : 1);
	s->timer = evtimer_new(base, on_timeout, s);
	s->defer = event_new(base, -1, 0, on_defer, s);
	struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	if (!s->client_first || !s->timer || !s->defer ||
	    evtimer_add(s->timer, &tv) != 0) {
		pg_scram_free(s);
		return NULL;
	}
	memcpy(s->client_first, client_first, len);
	s->client_first_len = len;
	on_start(s, conninfo);
	return s;
}

/* An attribute's value in a SCRAM message ("k=value,..."), or NULL. */
static const char *attr(const char *msg, size_t len, char k, size_t *vlen)
{
	for (size_t i = 0; i + 1 < len;) {
		const char *comma = memchr(msg + i, ',', len - i);
		size_t n = comma ? (size_t)(comma - (msg + i)) : len - i;
		if (n >= 2 && msg[i] == k && msg[i + 1] == '=') {
			*vlen = n - 2;
			return msg + i + 2;
		}
		i += n + 1;
	}
	return NULL;
}

/* librdkafka before 2.6.1 answers with its nonce, then the server's whole
 * nonce, which already begins with its own: Postgres would only say
 * "invalid SCRAM response". */
static bool repeats_nonce(const char *server_first, const char *final,
			  size_t len)
{
	size_t sl, fl;
	const char *sn = attr(server_first, strlen(server_first), 'r', &sl);
	const char *fn = attr(final, len, 'r', &fl);
	return sn && fn && fl > sl && memcmp(fn + fl - sl, sn, sl) == 0;
}

void pg_scram_finish(struct pg_scram *s, const char *client_final, size_t len,
		     pg_scram_cb cb, void *arg)
{
	s->cb = cb;
	s->arg = arg;
	if (s->step != WAITING) {
		fail(s, "the SCRAM login is not waiting for a final message");
		return;
	}
	if (repeats_nonce(s->msg, client_final, len)) {
		fail(s, "the client put its own nonce before the server's in "
			"its final SCRAM message (librdkafka before 2.6.1 "
			"does; Kafka 4 refuses it too): upgrade the client, "
			"or use PLAIN");
		return;
	}
	send_message(s, 'p', client_final, len, NULL, 0);
	if (s->step == WAITING)
		s->step = SENT_FINAL;
}
