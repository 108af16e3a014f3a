/*
 * connect: Kafka Connect's REST API (proxy/connect.h).
 *
 * Shapes and status codes follow Connect's ConnectorsResource: 201 with the
 * connector's info on creation, 409 for a duplicate name, 404 for an
 * unknown one, 400 for a bad config, 202 for pause and resume, 204 for
 * restart and delete, errors as {"error_code":N,"message":...}.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "proxy/config.h"
#include "proxy/connect.h"
#include "proxy/http_auth.h"
#include "proxy/tls.h"
#include "proxy/logging.h"
#include "proxy/registry.h"
#include "proxy/server.h"
#include "storage/cdc.h"
#include "storage/connectors.h"
#include "storage/schemas.h"
#include "storage/slotdrop.h"
#include "storage/sink.h"

#define MAX_BODY (1024 * 1024)
#define MAX_SEGS 6

struct cx {
	char *name;
	json_t *config;
	bool paused;
	bool snapshot_done;
	struct cdc_task *task;
	struct sink_task *sink; /* a JDBC sink connector's task */
	struct cx *next;
};

static struct {
	struct evhttp *http;
	struct http_gate gate; /* --rest-auth */
	struct cn_store *cn;
	struct cdc_env env;
	struct sink_env senv;
	struct cx *list;
	char worker_id[300];
	const char *pg;
	struct event *retry; /* each second: tasks that lost Postgres */
} C;

/* A request waiting for a write to commit. */
struct pend {
	struct evhttp_request *req; /* NULL once its connection closed */
	int status;
	json_t *answer;
};

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 202:
		return "Accepted";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	default:
		return "Internal Server Error";
	}
}

/* Answers req with body (stolen; NULL for none). */
static void reply(struct evhttp_request *req, int status, json_t *body)
{
	struct evbuffer *b = evbuffer_new();
	if (body && b) {
		char *text = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		if (text) {
			evbuffer_add(b, text, strlen(text));
			free(text);
		}
		evhttp_add_header(evhttp_request_get_output_headers(req),
				  "Content-Type", "application/json");
	}
	json_decref(body);
	evhttp_send_reply(req, status, reason(status), b);
	if (b)
		evbuffer_free(b);
}

static void fail(struct evhttp_request *req, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(struct evhttp_request *req, int status, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	reply(req, status,
	      json_pack("{s:i,s:s}", "error_code", status, "message", msg));
}

static struct cx *find(const char *name)
{
	for (struct cx *c = C.list; c; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static bool is_sink(const struct cx *c)
{
	return sink_is_class(json_string_value(
		json_object_get(c->config, "connector.class")));
}

static void task_stop(struct cx *c)
{
	/* A task started again in this process (restart, resume) resumes as
	 * one after a crash would: without a second snapshot. */
	if (c->task && cdc_snapshot_done(c->task))
		c->snapshot_done = true;
	if (c->task)
		cdc_stop(c->task);
	c->task = NULL;
	sink_stop(c->sink);
	c->sink = NULL;
}

/* The connector is deleted, or samsa stops: a source may drop its slot
 * (cdc_retire). */
static void task_retire(struct cx *c)
{
	cdc_retire(c->task);
	c->task = NULL;
	task_stop(c);
}

static void task_start(struct cx *c)
{
	task_stop(c);
	if (!c->paused && is_sink(c))
		c->sink = sink_start(&C.senv, c->name, c->config);
	else if (!c->paused)
		c->task =
			cdc_start(&C.env, c->name, c->config, c->snapshot_done);
}

/* Sources that stopped because Postgres went away start again when their
 * wait is over (cdc_retry_at), as Debezium restarts itself. */
static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	int64_t now = st_now_ms();
	for (struct cx *c = C.list; c; c = c->next) {
		int64_t at = c->task ? cdc_retry_at(c->task) : -1;
		if (at >= 0 && now >= at) {
			log_info("connector %s: starting its task again",
				 c->name);
			task_start(c);
		}
	}
}

static json_t *tasks_of(const struct cx *c)
{
	return json_pack("[{s:s,s:i}]", "connector", c->name, "task", 0);
}

static json_t *info_of(const struct cx *c)
{
	return json_pack("{s:s,s:O,s:o,s:s}", "name", c->name, "config",
			 c->config, "tasks", tasks_of(c), "type",
			 is_sink(c) ? "sink" : "source");
}

/* The one task's status ({id, state, worker_id[, trace, progress]}). */
static json_t *task_status(const struct cx *c)
{
	const char *state = c->paused ? "PAUSED"
			    : c->task ? cdc_state(c->task)
			    : c->sink ? sink_state(c->sink)
				      : "UNASSIGNED";
	json_t *task = json_pack("{s:i,s:s,s:s}", "id", 0, "state", state,
				 "worker_id", C.worker_id);
	const char *trace = c->task   ? cdc_trace(c->task)
			    : c->sink ? sink_trace(c->sink)
				      : NULL;
	if (trace)
		json_object_set_new(task, "trace", json_string(trace));
	if (c->task)
		json_object_set_new(task, "progress", cdc_progress(c->task));
	if (c->sink)
		json_object_set_new(task, "progress", sink_progress(c->sink));
	return task;
}

static json_t *status_of(const struct cx *c)
{
	/* Connect keeps the connector RUNNING when its task fails. */
	const char *cstate = c->paused ? "PAUSED" : "RUNNING";
	return json_pack("{s:s,s:{s:s,s:s},s:[o],s:s}", "name", c->name,
			 "connector", "state", cstate, "worker_id", C.worker_id,
			 "tasks", task_status(c), "type",
			 is_sink(c) ? "sink" : "source");
}

/* --- writes ------------------------------------------------------------ */

static void on_pend_close(struct evhttp_connection *evcon, void *arg)
{
	struct pend *p = arg;
	(void)evcon;
	p->req = NULL;
}

static struct pend *pend_new(struct evhttp_request *req, int status,
			     json_t *answer)
{
	struct pend *p = calloc(1, sizeof(*p));
	if (!p) {
		json_decref(answer);
		return NULL;
	}
	p->req = req;
	p->status = status;
	p->answer = answer;
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	if (evcon)
		evhttp_connection_set_closecb(evcon, on_pend_close, p);
	return p;
}

static void on_written(void *arg, const char *err)
{
	struct pend *p = arg;
	if (p->req) {
		struct evhttp_connection *evcon =
			evhttp_request_get_connection(p->req);
		if (evcon)
			evhttp_connection_set_closecb(evcon, NULL, NULL);
		if (err) {
			log_warn("connect: storing a connector: %s", err);
			fail(p->req, 500, "storing the connector failed: %s",
			     err);
			json_decref(p->answer);
		} else {
			reply(p->req, p->status, p->answer);
		}
	} else {
		json_decref(p->answer);
	}
	free(p);
}

/* --- configs ----------------------------------------------------------- */

/* Connect's configs are string maps: other JSON scalars become strings. */
static json_t *normalize(const json_t *in, char *err, size_t errlen)
{
	if (!json_is_object(in)) {
		snprintf(err, errlen, "config must be a JSON object");
		return NULL;
	}
	json_t *out = json_object();
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)in, k, v)
	{
		if (json_is_string(v)) {
			json_object_set(out, k, v);
		} else if (json_is_null(v)) {
			continue;
		} else if (json_is_object(v) || json_is_array(v)) {
			snprintf(err, errlen, "config %s must be a string", k);
			json_decref(out);
			return NULL;
		} else {
			char *t = json_dumps(v, JSON_ENCODE_ANY);
			json_object_set_new(out, k, json_string(t ? t : ""));
			free(t);
		}
	}
	return out;
}

/* 0, or answers req with 400 naming the key and returns -1. */
static int check_config(struct evhttp_request *req, const json_t *config)
{
	char key[256] = "", err[768] = "";
	const char *cls =
		json_string_value(json_object_get(config, "connector.class"));
	if (!cls) {
		fail(req, 400,
		     "Missing required configuration \"connector.class\" "
		     "which has no default value.");
		return -1;
	}
	if (strcmp(cls, CDC_CLASS) != 0 &&
	    strcmp(cls, "PostgresConnector") != 0 && !sink_is_class(cls)) {
		fail(req, 400,
		     "Failed to find any class that implements Connector and "
		     "which name matches %s (connector.class)",
		     cls);
		return -1;
	}
	if ((sink_is_class(cls) ? sink_validate : cdc_validate)(
		    config, key, sizeof(key), err, sizeof(err)) < 0) {
		fail(req, 400,
		     "Connector configuration is invalid and contains the "
		     "following 1 error(s):\n%s",
		     err);
		return -1;
	}
	return 0;
}

/* Creates or replaces c's config, then answers (status, answer). */
static void put_connector(struct evhttp_request *req, const char *name,
			  json_t *config, int status, bool answer_info)
{
	struct cx *c = find(name);
	bool reset = false;
	if (!c) {
		c = calloc(1, sizeof(*c));
		if (!c || !(c->name = strdup(name))) {
			free(c);
			json_decref(config);
			fail(req, 500, "out of memory");
			return;
		}
		struct cx **tail = &C.list;
		while (*tail)
			tail = &(*tail)->next;
		*tail = c;
	} else {
		json_decref(c->config);
		/* A new config may name other tables or another database:
		 * the old snapshot says nothing about them. */
		reset = true;
		task_stop(c);
		c->snapshot_done = false;
	}
	json_object_set_new(config, "name", json_string(name));
	c->config = config;
	char *text = json_dumps(config, JSON_COMPACT);
	struct pend *p = pend_new(req, status, answer_info ? info_of(c) : NULL);
	if (text && p)
		cn_put(C.cn, name, text, c->paused, reset, on_written, p);
	else if (p)
		on_written(p, "out of memory");
	free(text);
	task_start(c);
}

/* --- handlers ---------------------------------------------------------- */

static json_t *body_json(struct evhttp_request *req)
{
	struct evbuffer *b = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(b);
	if (n == 0)
		return NULL;
	char *text = malloc(n + 1);
	if (!text)
		return NULL;
	evbuffer_copyout(b, text, n);
	text[n] = '\0';
	json_error_t je;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
	free(text);
	return j;
}

static void post_connectors(struct evhttp_request *req)
{
	json_t *body = body_json(req);
	const char *name = json_string_value(json_object_get(body, "name"));
	json_t *cfg = json_object_get(body, "config");
	char err[256];
	if (!body) {
		fail(req, 400, "Request body is not valid JSON");
	} else if (!name || !*name) {
		fail(req, 400, "Connector name is required (name)");
	} else if (!cfg) {
		fail(req, 400, "Connector config is required (config)");
	} else if (find(name)) {
		fail(req, 409, "Connector %s already exists", name);
	} else {
		json_t *n = normalize(cfg, err, sizeof(err));
		if (!n) {
			fail(req, 400, "%s", err);
		} else if (check_config(req, n) < 0) {
			json_decref(n);
		} else {
			put_connector(req, name, n, 201, true);
		}
	}
	json_decref(body);
}

static void put_config(struct evhttp_request *req, const char *name)
{
	json_t *body = body_json(req);
	char err[256];
	json_t *n = body ? normalize(body, err, sizeof(err)) : NULL;
	if (!body) {
		fail(req, 400, "Request body is not valid JSON");
	} else if (!n) {
		fail(req, 400, "%s", err);
	} else {
		const char *in = json_string_value(json_object_get(n, "name"));
		if (in && strcmp(in, name) != 0) {
			fail(req, 400,
			     "Connector name configuration (%s) doesn't match "
			     "connector name in the URL (%s)",
			     in, name);
			json_decref(n);
		} else if (check_config(req, n) < 0) {
			json_decref(n);
		} else {
			put_connector(req, name, n, find(name) ? 200 : 201,
				      true);
		}
	}
	json_decref(body);
}

static void delete_connector(struct evhttp_request *req, struct cx *c)
{
	task_retire(c);
	for (struct cx **pp = &C.list; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	struct pend *p = pend_new(req, 204, NULL);
	if (p)
		cn_delete(C.cn, c->name, on_written, p);
	json_decref(c->config);
	free(c->name);
	free(c);
}

static void set_paused(struct evhttp_request *req, struct cx *c, bool paused)
{
	if (c->paused != paused) {
		c->paused = paused;
		if (paused)
			task_stop(c);
		else
			task_start(c);
	}
	struct pend *p = pend_new(req, 202, NULL);
	if (p)
		cn_set_paused(C.cn, c->name, paused, on_written, p);
}

static void validate(struct evhttp_request *req, const char *cls)
{
	json_t *body = body_json(req);
	char err[768] = "", key[256] = "";
	json_t *n = body ? normalize(body, err, sizeof(err)) : NULL;
	if (!n) {
		json_decref(body);
		fail(req, 400, "%s", body ? err : "Request body is not JSON");
		return;
	}
	int bad = 0;
	if (strcmp(cls, CDC_CLASS) != 0 &&
	    strcmp(cls, "PostgresConnector") != 0 && !sink_is_class(cls)) {
		json_decref(body);
		json_decref(n);
		fail(req, 400,
		     "Failed to find any class that implements Connector and "
		     "which name matches %s",
		     cls);
		return;
	}
	if ((sink_is_class(cls) ? sink_validate : cdc_validate)(
		    n, key, sizeof(key), err, sizeof(err)) < 0)
		bad = 1;
	json_t *configs = json_array();
	const char *k;
	json_t *v;
	json_object_foreach(n, k, v)
	{
		json_t *errs = json_array();
		if (bad && strcmp(k, key) == 0)
			json_array_append_new(errs, json_string(err));
		json_array_append_new(configs,
				      json_pack("{s:{s:s,s:O,s:[],s:o,s:b}}",
						"value", "name", k, "value", v,
						"recommended_values", "errors",
						errs, "visible", 1));
	}
	if (bad && !json_object_get(n, key))
		json_array_append_new(configs,
				      json_pack("{s:{s:s,s:n,s:[],s:[s],s:b}}",
						"value", "name", key, "value",
						"recommended_values", "errors",
						err, "visible", 1));
	reply(req, 200,
	      json_pack("{s:s,s:i,s:[s],s:o}", "name", cls, "error_count", bad,
			"groups", "Common", "configs", configs));
	json_decref(n);
	json_decref(body);
}

/* Whether the query string qs sets name to true. */
static bool query_true(const char *qs, const char *name)
{
	struct evkeyvalq q; /* initialised by the parse */
	if (!qs || evhttp_parse_query_str(qs, &q) != 0)
		return false;
	const char *v = evhttp_find_header(&q, name);
	bool yes = v && strcasecmp(v, "true") == 0;
	evhttp_clear_headers(&q);
	return yes;
}

static void on_request(struct evhttp_request *req, void *arg)
{
	(void)arg;
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	char *seg[MAX_SEGS];
	int nseg = 0;
	bool bad = false;
	char *copy = path ? strdup(path) : NULL;
	for (char *save = NULL, *s = copy ? strtok_r(copy, "/", &save) : NULL;
	     s; s = strtok_r(NULL, "/", &save)) {
		if (nseg == MAX_SEGS) {
			bad = true;
			break;
		}
		size_t dlen = 0;
		seg[nseg] = evhttp_uridecode(s, 0, &dlen);
		if (!seg[nseg]) {
			bad = true;
			break;
		}
		nseg++;
		/* %00: no connector can be called that ("a%00b" was "a"). */
		if (strlen(seg[nseg - 1]) != dlen) {
			bad = true;
			break;
		}
	}
	bool get = m == EVHTTP_REQ_GET, post = m == EVHTTP_REQ_POST,
	     put = m == EVHTTP_REQ_PUT, del = m == EVHTTP_REQ_DELETE;
	struct cx *c = nseg >= 2 && strcmp(seg[0], "connectors") == 0
			       ? find(seg[1])
			       : NULL;
	const char *sub = nseg >= 3 ? seg[2] : "";

	if (bad) {
		fail(req, 404, "Unknown path");
	} else if (nseg == 0 && get) {
		reply(req, 200,
		      json_pack("{s:s,s:s,s:s}", "version", "3.6.0", "commit",
				"samsa-" SAMSA_VERSION, "kafka_cluster_id",
				store_cluster_id(C.env.store)));
	} else if (nseg == 1 && strcmp(seg[0], "connector-plugins") == 0) {
		reply(req, 200,
		      json_pack("[{s:s,s:s,s:s},{s:s,s:s,s:s},{s:s,s:s,s:s}]",
				"class", CDC_CLASS, "type", "source", "version",
				"1.9.7.Final", "class", SINK_CLASS_CONFLUENT,
				"type", "sink", "version", "10.7.4", "class",
				SINK_CLASS_DEBEZIUM, "type", "sink", "version",
				"2.5.0.Final"));
	} else if (nseg == 4 && strcmp(seg[0], "connector-plugins") == 0 &&
		   strcmp(seg[2], "config") == 0 &&
		   strcmp(seg[3], "validate") == 0 && put) {
		validate(req, seg[1]);
	} else if (nseg == 1 && strcmp(seg[0], "connectors") == 0) {
		if (post) {
			post_connectors(req);
		} else if (get) {
			bool st = qs && strstr(qs, "expand=status");
			bool in = qs && strstr(qs, "expand=info");
			json_t *out = st || in ? json_object() : json_array();
			for (struct cx *x = C.list; x; x = x->next) {
				if (!st && !in) {
					json_array_append_new(
						out, json_string(x->name));
					continue;
				}
				json_t *e = json_object();
				if (st)
					json_object_set_new(e, "status",
							    status_of(x));
				if (in)
					json_object_set_new(e, "info",
							    info_of(x));
				json_object_set_new(out, x->name, e);
			}
			reply(req, 200, out);
		} else {
			fail(req, 405, "HTTP 405 Method Not Allowed");
		}
	} else if (nseg >= 2 && strcmp(seg[0], "connectors") == 0 && !c &&
		   !(nseg == 3 && put && strcmp(sub, "config") == 0)) {
		fail(req, 404, "Connector %s not found", seg[1]);
	} else if (nseg == 2 && get) {
		reply(req, 200, info_of(c));
	} else if (nseg == 2 && del) {
		delete_connector(req, c);
	} else if (nseg == 3 && strcmp(sub, "config") == 0 && get) {
		reply(req, 200, json_incref(c->config));
	} else if (nseg == 3 && strcmp(sub, "config") == 0 && put) {
		put_config(req, seg[1]);
	} else if (nseg == 3 && strcmp(sub, "status") == 0 && get) {
		reply(req, 200, status_of(c));
	} else if (nseg == 3 && strcmp(sub, "tasks") == 0 && get) {
		reply(req, 200,
		      json_pack("[{s:{s:s,s:i},s:O}]", "id", "connector",
				c->name, "task", 0, "config", c->config));
	} else if (nseg == 3 && strcmp(sub, "topics") == 0 && get) {
		json_t *t = c->task   ? cdc_topics(c->task)
			    : c->sink ? sink_topics(c->sink)
				      : json_array();
		reply(req, 200, json_pack("{s:{s:o}}", c->name, "topics", t));
	} else if (((nseg == 3 && strcmp(sub, "restart") == 0) ||
		    (nseg == 5 && strcmp(sub, "tasks") == 0 &&
		     strcmp(seg[4], "restart") == 0)) &&
		   post) {
		/* KIP-745: includeTasks=true or onlyFailed=true answers 202
		 * with the status, and onlyFailed restarts only a failed
		 * task; neither, 204 as before it. */
		bool tasks = nseg == 3 && query_true(qs, "includeTasks");
		bool failed_only = nseg == 3 && query_true(qs, "onlyFailed");
		json_t *task = task_status(c);
		bool failed = strcmp(json_string_value(
					     json_object_get(task, "state")),
				     "FAILED") == 0;
		json_decref(task);
		if (!failed_only || failed)
			task_start(c);
		if (tasks || failed_only)
			reply(req, 202, status_of(c));
		else
			reply(req, 204, NULL);
	} else if (nseg == 5 && strcmp(sub, "tasks") == 0 &&
		   strcmp(seg[4], "status") == 0 && get) {
		if (strcmp(seg[3], "0") == 0)
			reply(req, 200, task_status(c));
		else
			fail(req, 404, "Task %s-%s not found", c->name, seg[3]);
	} else if (nseg == 4 && strcmp(sub, "tasks") == 0 &&
		   strcmp(seg[3], "status") != 0 && get) {
		reply(req, 404, NULL);
	} else if (nseg == 3 && strcmp(sub, "pause") == 0 && (put || post)) {
		set_paused(req, c, true);
	} else if (nseg == 3 && strcmp(sub, "resume") == 0 && (put || post)) {
		set_paused(req, c, false);
	} else {
		fail(req, 404, "Unknown endpoint");
	}
	for (int i = 0; i < nseg; i++)
		free(seg[i]);
	free(copy);
}

/* --- start and stop ---------------------------------------------------- */

static void on_loaded(void *arg, const char *name, const char *config,
		      bool paused, bool snapshot_done)
{
	(void)arg;
	json_error_t je;
	json_t *j = json_loads(config, 0, &je);
	struct cx *c = calloc(1, sizeof(*c));
	if (!j || !c || !(c->name = strdup(name))) {
		log_warn("connect: connector %s: unreadable stored config",
			 name);
		json_decref(j);
		free(c);
		return;
	}
	c->config = j;
	c->paused = paused;
	c->snapshot_done = snapshot_done;
	struct cx **tail = &C.list;
	while (*tail)
		tail = &(*tail)->next;
	*tail = c;
}

/* The AvroConverter's registrations go to samsa's own registry. */
static void register_schema(void *reg, const char *subject, const char *schema,
			    cdc_schema_cb cb, void *arg)
{
	registry_register(reg, subject, schema, cb, arg);
}

int connect_start(struct server *srv, char *err, size_t errlen)
{
	const struct hostport *hp = &srv->cfg->connect;
	C.env.base = srv->base;
	C.env.store = srv->store;
	C.env.registry = srv->registry;
	C.env.register_schema = srv->registry ? register_schema : NULL;
	snprintf(C.worker_id, sizeof(C.worker_id), "%s:%d", hp->host, hp->port);
	C.http = evhttp_new(srv->base);
	if (!C.http) {
		snprintf(err, errlen, "connect: out of memory");
		return -1;
	}
	if (srv->rest_tls)
		tls_serve_http(srv->rest_tls, C.http);
	evhttp_set_max_body_size(C.http, MAX_BODY);
	evhttp_set_allowed_methods(C.http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
						   EVHTTP_REQ_PUT |
						   EVHTTP_REQ_DELETE);
	evhttp_set_timeout(C.http, 120);
	C.gate = (struct http_gate){srv->base,
				    srv->cfg->rest_login ? srv->cfg->pg : NULL,
				    on_request, NULL};
	evhttp_set_gencb(C.http, http_gate, &C.gate);
	if (cn_load(srv->cfg->pg, on_loaded, NULL, err, errlen) < 0) {
		connect_stop();
		return -1;
	}
	C.cn = cn_open(srv->base, srv->cfg->pg, err, errlen);
	if (!C.cn) {
		connect_stop();
		return -1;
	}
	C.env.cn = C.cn;
	/* The sinks' AvroConverter reads schemas by id from a copy of the
	 * registry's store (refreshed when an id is new to it). */
	C.senv.base = srv->base;
	C.senv.store = srv->store;
	C.senv.schemas = sr_open(srv->base, srv->cfg->pg, err, errlen);
	if (!C.senv.schemas) {
		connect_stop();
		return -1;
	}
	C.retry = event_new(srv->base, -1, EV_PERSIST, on_retry_timer, NULL);
	struct timeval second = {1, 0};
	if (!C.retry || event_add(C.retry, &second) < 0) {
		snprintf(err, errlen, "connect: out of memory");
		connect_stop();
		return -1;
	}
	/* The port opens once all is loaded: waiting for the stores runs
	 * the event loop, and a request served before the connectors' store
	 * is open would find none.  Nothing runs between here and the
	 * tasks. */
	errno = 0;
	if (!evhttp_bind_socket_with_handle(C.http, hp->host,
					    (ev_uint16_t)hp->port)) {
		snprintf(err, errlen, "cannot listen on %s:%d (Connect): %s",
			 hp->host, hp->port,
			 errno ? strerror(errno) : "bind failed");
		connect_stop();
		return -1;
	}
	int n = 0;
	for (struct cx *c = C.list; c; c = c->next, n++)
		task_start(c);
	log_info("Kafka Connect on %s://%s:%d, %d connector(s)",
		 srv->rest_tls ? "https" : "http", hp->host, hp->port, n);
	return 0;
}

void connect_stop(void)
{
	while (C.list) {
		struct cx *c = C.list;
		C.list = c->next;
		task_retire(c);
		json_decref(c->config);
		free(c->name);
		free(c);
	}
	if (C.retry)
		event_free(C.retry);
	C.retry = NULL;
	if (C.http)
		evhttp_free(C.http);
	C.http = NULL;
	cn_close(C.cn);
	C.cn = NULL;
	sr_close(C.senv.schemas);
	C.senv.schemas = NULL;
	/* Slots being dropped (slot.drop.on.stop) wait a moment at most for
	 * their walsenders to go. */
	int left = slot_drop_wait(15000);
	if (left)
		log_warn("%d replication slot(s) not dropped yet at exit",
			 left);
}
