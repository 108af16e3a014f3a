/*
 * SaslHandshake, SaslAuthenticate: logging in as a Postgres role.
 *
 * With --kafka-auth postgres a connection must log in before anything but
 * ApiVersions is served (server.h's login states).  The judge of every
 * login is Postgres: a client logs in when Postgres would let that role
 * connect to samsa's database.  Two mechanisms:
 *  - PLAIN (RFC 4616): the user name and password are tried as a
 *    connection (storage/pglogin.h);
 *  - SCRAM-SHA-256 (RFC 5802, 7677): the client's two messages are relayed
 *    to Postgres, which runs the same exchange (storage/pgscram.h), so the
 *    password never crosses the network and samsa never sees it.
 * A failed login is answered with SASL_AUTHENTICATION_FAILED and the
 * connection closed, as Kafka does.  Without --kafka-auth both APIs answer
 * ILLEGAL_SASL_STATE, as Kafka's PLAINTEXT listener does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/dispatch.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"
#include "proxy/logging.h"
#include "storage/pglogin.h"
#include "storage/pgscram.h"

#define LOGIN_TIMEOUT_MS 10000
#define SCRAM		 "SCRAM-SHA-256"

/*
 * Logins under way each hold a Postgres connection (a SCRAM one across the
 * client's round trip too): at most MAX_PG_LOGINS at once, the others wait
 * their turn in arrival order, so that clients nobody knows yet cannot
 * fill Postgres's max_connections, which samsa and every other user of the
 * database need.
 */
#define MAX_PG_LOGINS 16

struct login_wait {
	struct request *req;
	struct login_wait *next;
};

static struct {
	int running;
	struct login_wait *head, *tail;
	struct event_base *base;
} slots;

/* A slot is taken for a login that starts now. */
static void slot_take(void)
{
	slots.running++;
}

static void resume_waiting(evutil_socket_t fd, short what, void *arg);
static void authenticate(struct request *req, bool turn_come);

/* A login ended: the first waiting, if any, runs from the loop (this may
 * be a connection being freed). */
static void slot_give_back(void)
{
	struct timeval now = {0, 0};
	slots.running--;
	if (slots.head && slots.base)
		event_base_once(slots.base, -1, EV_TIMEOUT, resume_waiting,
				NULL, &now);
}

static void resume_waiting(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	struct login_wait *w = slots.head;
	if (!w || slots.running >= MAX_PG_LOGINS)
		return;
	slots.head = w->next;
	if (!slots.head)
		slots.tail = NULL;
	struct request *req = w->req;
	free(w);
	req_set_login_state(req, LOGIN_AUTHENTICATE);
	authenticate(req, true);
}

/* req waits for a slot; false when out of memory. */
static bool slot_wait(struct request *req)
{
	struct login_wait *w = calloc(1, sizeof(*w));
	if (!w)
		return false;
	w->req = req;
	slots.base = req->srv->base;
	if (slots.tail)
		slots.tail->next = w;
	else
		slots.head = w;
	slots.tail = w;
	req_set_login_state(req, LOGIN_CHECKING);
	return true;
}

/* A SCRAM login between and during its two SaslAuthenticate requests, kept
 * by the connection (req_set_login_ctx). */
struct scram_login {
	struct pg_scram *relay; /* NULL until the client's first message */
	char user[256];
};

static void scram_login_free(void *ctx)
{
	struct scram_login *sl = ctx;
	if (sl->relay)
		slot_give_back();
	pg_scram_free(sl->relay);
	free(sl);
}

static bool is(struct kstr s, const char *lit)
{
	return s.len == (int32_t)strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

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
		req_array_raw(req, &resp->Mechanisms, sizeof(struct kstr), 2);
	if (!m) {
		req_close_connection(req);
		return;
	}
	m[0] = KSTR_LIT("PLAIN");
	m[1] = KSTR_LIT(SCRAM);
	int len = hr->Mechanism.len > 0 ? hr->Mechanism.len : 0;
	struct scram_login *sl = NULL;
	if (req->hdr.RequestApiVersion < api_lookup(17)->served_min) {
		log_info("closing connection from %s: SaslHandshake v0 (SASL "
			 "without SaslAuthenticate) is not served",
			 req_peer(req));
		resp->ErrorCode = KERR_UNSUPPORTED_VERSION;
		req_reply_and_close(req, resp);
	} else if (!is(hr->Mechanism, "PLAIN") && !is(hr->Mechanism, SCRAM)) {
		log_info("closing connection from %s: SASL mechanism '%.*s' "
			 "asked for; samsa offers PLAIN and " SCRAM,
			 req_peer(req), len, len ? hr->Mechanism.ptr : "");
		resp->ErrorCode = KERR_UNSUPPORTED_SASL_MECHANISM;
		req_reply_and_close(req, resp);
	} else if (is(hr->Mechanism, SCRAM) && !(sl = calloc(1, sizeof(*sl)))) {
		req_close_connection(req);
	} else {
		req_set_login_ctx(req, sl, sl ? scram_login_free : NULL);
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
	slot_give_back();
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

/*
 * SCRAM's client-first message: gs2 header ("n" or "y", an optional
 * authorization id, a comma), then n=user,r=nonce[,extensions].  Copies
 * the user name (its =2C and =3D decoded) into user; returns NULL, or why
 * the message is refused.
 */
static const char *parse_scram_first(struct kstr b, char *user, size_t ulen)
{
	const char *p = b.ptr, *end = b.ptr + (b.len > 0 ? b.len : 0);
	if (b.len <= 0 || memchr(p, 0, (size_t)b.len))
		return "Invalid SCRAM client first message";
	if (end - p >= 2 && p[0] == 'p' && p[1] == '=')
		return "SCRAM channel binding is not supported";
	if (end - p < 3 || (p[0] != 'n' && p[0] != 'y') || p[1] != ',')
		return "Invalid SCRAM client first message";
	p += 2;
	if (*p != ',') /* an authorization id */
		return "Client requested an authorization id that is "
		       "different from username";
	p++;
	if (end - p < 2 || p[0] != 'n' || p[1] != '=')
		return "Invalid SCRAM client first message";
	size_t n = 0;
	for (p += 2; p < end && *p != ','; p++) {
		char c = *p;
		if (c == '=') {
			if (end - p >= 3 && p[1] == '2' && p[2] == 'C')
				c = ',';
			else if (end - p >= 3 && p[1] == '3' && p[2] == 'D')
				c = '=';
			else
				return "Invalid SCRAM user name";
			p += 2;
		}
		if (n + 1 >= ulen)
			return "username too long";
		user[n++] = c;
	}
	user[n] = '\0';
	if (n == 0)
		return "username not specified";
	if (end - p < 3 || p[1] != 'r' || p[2] != '=')
		return "Invalid SCRAM client first message";
	return NULL;
}

/* One SaslAuthenticate of a SCRAM login waiting for Postgres. */
struct scram_step {
	struct request *req;
	struct SaslAuthenticateResponse *resp;
	struct scram_login *sl;
	bool final;
};

static void on_scram(void *arg, const char *msg, size_t len, const char *why)
{
	struct scram_step *w = arg;
	struct request *req = w->req;
	if (!msg) {
		refuse(req, w->resp, w->sl->user, why);
		return;
	}
	w->resp->AuthBytes = req_str(req, msg);
	w->resp->AuthBytes.len = (int32_t)len;
	if (w->final) {
		/* Frees the relay, whose callback this is: it allows that. */
		req_set_login_ctx(req, NULL, NULL);
		req_set_login_state(req, LOGIN_DONE);
	} else {
		req_set_login_state(req, LOGIN_AUTHENTICATE);
	}
	req_reply(req, w->resp);
}

static void scram_authenticate(struct request *req,
			       struct SaslAuthenticateResponse *resp,
			       struct scram_login *sl)
{
	struct SaslAuthenticateRequest *ar = req->body;
	struct scram_step *w = arena_alloc(&req->arena, sizeof(*w));
	if (!w) {
		req_close_connection(req);
		return;
	}
	*w = (struct scram_step){req, resp, sl, sl->relay != NULL};
	int32_t len = ar->AuthBytes.len > 0 ? ar->AuthBytes.len : 0;
	if (w->final) {
		req_set_login_state(req, LOGIN_CHECKING);
		pg_scram_finish(sl->relay, ar->AuthBytes.ptr, (size_t)len,
				on_scram, w);
		return;
	}
	const char *bad =
		parse_scram_first(ar->AuthBytes, sl->user, sizeof(sl->user));
	if (bad) {
		refuse(req, resp, "", bad);
		return;
	}
	req_set_login_state(req, LOGIN_CHECKING);
	sl->relay = pg_scram_start(req->srv->base, req->srv->cfg->pg, sl->user,
				   ar->AuthBytes.ptr, (size_t)len,
				   LOGIN_TIMEOUT_MS, on_scram, w);
	if (!sl->relay)
		refuse(req, resp, sl->user, "out of memory");
	else
		slot_take();
}

void handle_SaslAuthenticate(struct request *req)
{
	authenticate(req, false);
}

/* turn_come: req waited for a slot and has one now. */
static void authenticate(struct request *req, bool turn_come)
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
	struct scram_login *sl = req_login_ctx(req);
	/* What opens a Postgres connection (PLAIN, SCRAM's first message)
	 * waits while MAX_PG_LOGINS are under way. */
	if ((!sl || !sl->relay) && !turn_come &&
	    (slots.running >= MAX_PG_LOGINS || slots.head)) {
		if (!slot_wait(req))
			req_close_connection(req);
		return;
	}
	if (sl) {
		scram_authenticate(req, resp, sl);
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
	else
		slot_take();
}
