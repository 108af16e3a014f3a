/*
 * tls: one SSL_CTX for the listener, one SSL per connection, owned by the
 * connection's bufferevent.
 */
#include "proxy/tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "proxy/logging.h"

struct tls_server {
	SSL_CTX *ctx;
};

/* An OpenSSL error as text: its reason ("wrong version number"), or its
 * whole code when OpenSSL has no words for it. */
static void error_text(unsigned long e, char *buf, size_t len)
{
	const char *r = ERR_reason_error_string(e);
	if (r)
		snprintf(buf, len, "%s", r);
	else
		ERR_error_string_n(e, buf, len);
}

/* OpenSSL's first error as text (the later ones tend to say only which
 * layer gave up), or what when it has none. */
static const char *first_error(char *buf, size_t len, const char *what)
{
	unsigned long e = ERR_peek_error();
	if (e)
		error_text(e, buf, len);
	else
		snprintf(buf, len, "%s", what);
	ERR_clear_error();
	return buf;
}

/* Clients must present a certificate that a CA in ca_file signed; they
 * are told which CAs those are. */
static bool require_client_certs(SSL_CTX *ctx, const char *ca_file)
{
	STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
	if (!names || SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		sk_X509_NAME_pop_free(names, X509_NAME_free);
		return false;
	}
	SSL_CTX_set_client_CA_list(ctx, names);
	SSL_CTX_set_verify(
		ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return true;
}

struct tls_server *tls_server_new(const char *flags, const char *cert_file,
				  const char *key_file, const char *client_ca,
				  char *err, size_t errlen)
{
	char why[256];
	struct tls_server *t = calloc(1, sizeof(*t));
	if (!t || !(t->ctx = SSL_CTX_new(TLS_server_method()))) {
		snprintf(err, errlen, "TLS: %s",
			 first_error(why, sizeof(why), "out of memory"));
		free(t);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION);
	/* No session cache on the server: a client that resumes sessions
	 * does it with tickets, which need no state here. */
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	const char *flag = NULL, *file = NULL;
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
		flag = "-cert";
		file = cert_file;
	} else if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file,
					       SSL_FILETYPE_PEM) != 1 ||
		   SSL_CTX_check_private_key(t->ctx) != 1) {
		flag = "-key";
		file = key_file;
	} else if (client_ca && !require_client_certs(t->ctx, client_ca)) {
		flag = "-client-ca";
		file = client_ca;
	}
	if (!flag)
		return t;
	/* A file that is not there is the likeliest mistake: say it plainly. */
	if (access(file, R_OK) != 0) {
		snprintf(why, sizeof(why), "%s", strerror(errno));
		ERR_clear_error();
	} else {
		first_error(why, sizeof(why), "cannot load it");
	}
	snprintf(err, errlen, "%s%s %s: %s", flags, flag, file, why);
	tls_server_free(t);
	return NULL;
}

void tls_server_free(struct tls_server *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct bufferevent *tls_accept(struct tls_server *t, struct event_base *base,
			       evutil_socket_t fd)
{
	SSL *ssl = SSL_new(t->ctx);
	if (!ssl)
		return NULL;
	struct bufferevent *bev = bufferevent_openssl_socket_new(
		base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
		BEV_OPT_CLOSE_ON_FREE);
	if (!bev) {
		SSL_free(ssl);
		return NULL;
	}
	/* A client that just closes its socket has ended, not failed. */
	bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
	return bev;
}

/* evhttp's hook for a new connection's bufferevent; evhttp sets its
 * socket.  Out of memory it gets NULL and makes a plain one: a TLS client's
 * handshake then fails to parse as HTTP and the connection closes, so no
 * client that asked for TLS is ever answered without it. */
static struct bufferevent *http_bev(struct event_base *base, void *arg)
{
	struct bufferevent *bev = tls_accept(arg, base, -1);
	if (!bev)
		log_warn("TLS: out of memory for an HTTPS connection");
	return bev;
}

void tls_serve_http(struct tls_server *t, struct evhttp *http)
{
	evhttp_set_bevcb(http, http_bev, t);
}

bool tls_error(struct bufferevent *bev, char *buf, size_t len)
{
	unsigned long e = bufferevent_get_openssl_error(bev);
	if (!e)
		return false;
	int n = snprintf(buf, len, "TLS: ");
	if (n > 0 && (size_t)n < len)
		error_text(e, buf + n, len - (size_t)n);
	while (bufferevent_get_openssl_error(bev))
		;
	return true;
}
