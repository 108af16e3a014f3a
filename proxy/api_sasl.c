/*
 * SaslHandshake, SaslAuthenticate: logging in as a Postgres role.
 *
 * With --kafka-auth postgres a connection must log in before anything but
 * ApiVersions is served (server.h's login states).  The one mechanism is
 * PLAIN (RFC 4616), and the judge of the user name and password is
 * Postgres (storage/pglogin.h): a client logs in when Postgres would let
 * that role connect to samsa's database.  A failed login is answered with
 * SASL_AUTHENTICATION_FAILED and the connection closed, as Kafka does.
 * Without --kafka-auth both APIs answer ILLEGAL_SASL_STATE, as Kafka's
 * PLAINTEXT listener does.
 */
#include <stdio.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/dispatch.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"
#include "proxy/logging.h"
#include "storage/pglogin.h"

#define LOGIN_TIMEOUT_MS 10000

void handle_SaslHandshake(struct request *req)
{
	struct SaslHandshakeRequest *hr = req->body;
	struct SaslHandshakeResponse *resp = req_response(req);
	if (!resp) {
		req_close_connection(req);
		return;
	}
	if (req_login_state(req) != LOGIN_HANDSHAKE) {
		/* Logged in already, or no logins here: Kafka then lists no
		 * mechanism either. */
		resp->ErrorCode = KERR_ILLEGAL_SASL_STATE;
		req_reply(req, resp);
		return;
	}
	struct kstr *m =
		req_array_raw(req, &resp->Mechanisms, sizeof(struct kstr), 1);
	if (!m) {
		req_close_connection(req);
		return;
	}
	m[0] = KSTR_LIT("PLAIN");
	int len = hr->Mechanism.len > 0 ? hr->Mechanism.len : 0;
	if (req->hdr.RequestApiVersion < api_lookup(17)->served_min) {
		log_info("closing connection from %s: SaslHandshake v0 (SASL "
			 "without SaslAuthenticate) is not served",
			 req_peer(req));
		resp->ErrorCode = KERR_UNSUPPORTED_VERSION;
		req_reply_and_close(req, resp);
	} else if (len != 5 || memcmp(hr->Mechanism.ptr, "PLAIN", 5) != 0) {
		log_info("closing connection from %s: SASL mechanism '%.*s' "
			 "asked for; samsa offers PLAIN",
			 req_peer(req), len, len ? hr->Mechanism.ptr : "");
		resp->ErrorCode = KERR_UNSUPPORTED_SASL_MECHANISM;
		req_reply_and_close(req, resp);
	} else {
		req_set_login_state(req, LOGIN_AUTHENTICATE);
		req_reply(req, resp);
	}
}

static void refuse(struct request *req, struct SaslAuthenticateResponse *resp,
		   const char *user, const char *why)
{
	/* The name is the client's: no control characters into the log. */
	char shown[64];
	size_t n = 0;
	for (; user[n] && n < sizeof(shown) - 1; n++)
		shown[n] = (unsigned char)user[n] < 0x20 ? '?' : user[n];
	shown[n] = '\0';
	log_info("login of %s from %s refused: %s", n ? shown : "(no user)",
		 req_peer(req), why);
	char msg[600];
	snprintf(msg, sizeof(msg), "Authentication failed: %s", why);
	resp->ErrorCode = KERR_SASL_AUTHENTICATION_FAILED;
	resp->ErrorMessage = req_str(req, msg);
	req_reply_and_close(req, resp);
}

struct login {
	struct request *req;
	struct SaslAuthenticateResponse *resp;
	char user[256];
};

static void on_checked(void *arg, bool ok, const char *why)
{
	struct login *l = arg;
	if (ok) {
		req_set_login_state(l->req, LOGIN_DONE);
		req_reply(l->req, l->resp);
	} else {
		refuse(l->req, l->resp, l->user, why);
	}
}

/*
 * PLAIN's message: [authzid] NUL authcid NUL passwd.  Copies the user name
 * and the password into user and password; returns NULL, or why the
 * message is refused (Kafka's PlainSaslServer's words).
 */
static const char *parse_plain(struct kstr b, char *user, size_t ulen,
			       char *password, size_t plen)
{
	const char *p = b.ptr, *end = b.ptr + (b.len > 0 ? b.len : 0);
	const char *nul1 = p ? memchr(p, 0, (size_t)(end - p)) : NULL;
	const char *nul2 =
		nul1 ? memchr(nul1 + 1, 0, (size_t)(end - nul1 - 1)) : NULL;
	if (!nul2 || memchr(nul2 + 1, 0, (size_t)(end - nul2 - 1)))
		return "Invalid SASL/PLAIN response: expected 3 tokens";
	size_t zl = (size_t)(nul1 - p), ul = (size_t)(nul2 - nul1 - 1),
	       pl = (size_t)(end - nul2 - 1);
	if (ul == 0)
		return "username not specified";
	if (pl == 0)
		return "password not specified";
	if (zl && (zl != ul || memcmp(p, nul1 + 1, ul) != 0))
		return "Client requested an authorization id that is "
		       "different from username";
	if (ul >= ulen || pl >= plen)
		return "username or password too long";
	memcpy(user, nul1 + 1, ul);
	user[ul] = '\0';
	memcpy(password, nul2 + 1, pl);
	password[pl] = '\0';
	return NULL;
}

void handle_SaslAuthenticate(struct request *req)
{
	struct SaslAuthenticateRequest *ar = req->body;
	struct SaslAuthenticateResponse *resp = req_response(req);
	struct login *l = resp ? arena_alloc(&req->arena, sizeof(*l)) : NULL;
	if (!l) {
		req_close_connection(req);
		return;
	}
	resp->AuthBytes = KSTR_LIT("");
	if (req_login_state(req) != LOGIN_AUTHENTICATE) {
		/* Logged in already, or this listener takes no logins. */
		resp->ErrorCode = KERR_ILLEGAL_SASL_STATE;
		resp->ErrorMessage =
			req->srv->cfg->kafka_login
				? KSTR_LIT("SaslAuthenticate request received "
					   "after successful authentication")
				: KSTR_LIT("this listener takes no SASL logins "
					   "(samsa runs without --kafka-auth)");
		req_reply(req, resp);
		return;
	}
	char password[1024];
	const char *bad = parse_plain(ar->AuthBytes, l->user, sizeof(l->user),
				      password, sizeof(password));
	if (bad) {
		refuse(req, resp, "", bad);
		return;
	}
	l->req = req;
	l->resp = resp;
	req_set_login_state(req, LOGIN_CHECKING);
	int rc = pg_login_check(req->srv->base, req->srv->cfg->pg, l->user,
				password, LOGIN_TIMEOUT_MS, on_checked, l);
	memset(password, 0, sizeof(password));
	if (rc != 0)
		refuse(req, resp, l->user, "out of memory");
}
