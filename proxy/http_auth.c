/*
 * http_auth: the login runs while the request waits; if the client goes
 * away meanwhile (evhttp frees the request with its connection), the
 * answer is dropped.  evhttp serves one request at a time per connection,
 * so one close callback per connection is enough.
 */
#include "proxy/http_auth.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "storage/pglogin.h"

#define LOGIN_TIMEOUT_MS 10000

struct check {
	struct evhttp_request *req; /* NULL once its connection is gone */
	const struct http_gate *gate;
};

static void refuse(struct evhttp_request *req, const char *why)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "WWW-Authenticate",
			  "Basic realm=\"samsa\", charset=\"UTF-8\"");
	evhttp_add_header(h, "Content-Type", "application/json");
	struct evbuffer *b = evbuffer_new();
	if (b) {
		/* why is Postgres's text or ours: no quotes or backslashes
		 * reach the JSON unescaped. */
		evbuffer_add_printf(b, "{\"error_code\":401,\"message\":\"");
		for (const char *p = why; *p; p++) {
			char ch = (unsigned char)*p < 0x20 ? '?' : *p;
			if (ch == '"' || ch == '\\')
				evbuffer_add(b, "\\", 1);
			evbuffer_add(b, &ch, 1);
		}
		evbuffer_add_printf(b, "\"}");
	}
	evhttp_send_reply(req, 401, "Unauthorized", b);
	if (b)
		evbuffer_free(b);
}

static void on_close(struct evhttp_connection *evcon, void *arg)
{
	struct check *c = arg;
	(void)evcon;
	c->req = NULL;
}

static void on_checked(void *arg, bool ok, const char *why)
{
	struct check *c = arg;
	if (c->req) {
		struct evhttp_connection *evcon =
			evhttp_request_get_connection(c->req);
		if (evcon)
			evhttp_connection_set_closecb(evcon, NULL, NULL);
		if (ok)
			c->gate->next(c->req, c->gate->next_arg);
		else
			refuse(c->req, why);
	}
	free(c);
}

/* "Basic <base64 of user:password>" into user and password; false when
 * the header is missing or malformed. */
static bool basic_credentials(const char *h, char *user, size_t ulen,
			      char *password, size_t plen)
{
	if (!h || strncasecmp(h, "Basic ", 6) != 0)
		return false;
	h += 6;
	h += strspn(h, " ");
	size_t n = strcspn(h, " \r\n");
	unsigned char buf[1024];
	if (n == 0 || n % 4 != 0 || n / 4 * 3 >= sizeof(buf))
		return false;
	int len = EVP_DecodeBlock(buf, (const unsigned char *)h, (int)n);
	if (len < 0)
		return false;
	/* EVP_DecodeBlock counts the padding (at most two '=') as zero
	 * bytes; more '=' than that is not base64 ("====" decodes to 3). */
	size_t pad = 0;
	while (pad < n && h[n - 1 - pad] == '=')
		pad++;
	if (pad > 2 || len <= (int)pad)
		return false;
	len -= (int)pad;
	const unsigned char *colon = memchr(buf, ':', (size_t)len);
	if (!colon || memchr(buf, 0, (size_t)len))
		return false;
	size_t ul = (size_t)(colon - buf), pl = (size_t)len - ul - 1;
	if (ul >= ulen || pl >= plen)
		return false;
	memcpy(user, buf, ul);
	user[ul] = '\0';
	memcpy(password, colon + 1, pl);
	password[pl] = '\0';
	return true;
}

void http_gate(struct evhttp_request *req, void *arg)
{
	const struct http_gate *g = arg;
	if (!g->conninfo) {
		g->next(req, g->next_arg);
		return;
	}
	char user[256], password[512];
	const char *h = evhttp_find_header(
		evhttp_request_get_input_headers(req), "Authorization");
	if (!basic_credentials(h, user, sizeof(user), password,
			       sizeof(password))) {
		refuse(req, "Unauthorized: log in with HTTP Basic as a "
			    "Postgres role");
		return;
	}
	struct check *c = calloc(1, sizeof(*c));
	if (!c) {
		refuse(req, "out of memory");
		return;
	}
	c->req = req;
	c->gate = g;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, on_close, c);
	int rc = pg_login_check(g->base, g->conninfo, user, password,
				LOGIN_TIMEOUT_MS, on_checked, c);
	memset(password, 0, sizeof(password));
	if (rc != 0) {
		if (evcon)
			evhttp_connection_set_closecb(evcon, NULL, NULL);
		free(c);
		refuse(req, "out of memory");
	}
}
