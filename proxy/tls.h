/*
 * tls: TLS on the Kafka listener (--kafka-tls-cert, --kafka-tls-key) and on
 * the REST listeners (--rest-tls-cert, --rest-tls-key), with OpenSSL under
 * libevent's bufferevents.  TLS 1.2 or later; Kafka clients show a
 * certificate only when --kafka-tls-client-ca names who must have signed
 * it.
 */
#ifndef SAMSA_TLS_H
#define SAMSA_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

struct tls_server;

/*
 * Loads the certificate chain (PEM, the server's certificate first) and
 * its private key (PEM), and checks that they match.  client_ca (PEM CA
 * certificates, or NULL): clients must present a certificate one of them
 * signed, or the handshake fails.  NULL with a one-line message in err
 * naming the file and its flag, flags ("--kafka-tls") and "-cert", "-key"
 * or "-client-ca".
 */
struct tls_server *tls_server_new(const char *flags, const char *cert_file,
				  const char *key_file, const char *client_ca,
				  char *err, size_t errlen);
void tls_server_free(struct tls_server *t); /* NULL is fine */

/* A bufferevent that owns fd and speaks TLS as the server side of its
 * handshake; NULL when memory ran out (fd is then not closed). */
struct bufferevent *tls_accept(struct tls_server *t, struct event_base *base,
			       evutil_socket_t fd);

/* Makes the connections http accepts from now on speak TLS (HTTPS). */
void tls_serve_http(struct tls_server *t, struct evhttp *http);

/* Why bev's TLS failed, from OpenSSL's errors ("TLS: wrong version
 * number" for a client that does not speak TLS), into buf; false when
 * OpenSSL reported nothing. */
bool tls_error(struct bufferevent *bev, char *buf, size_t len);

#endif
