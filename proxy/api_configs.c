/*
 * DescribeConfigs, AlterConfigs, IncrementalAlterConfigs for TOPIC and
 * BROKER resources.  Descriptions are complete: every known config with its
 * value, source and default flag, as Kafka Streams, ksqlDB and Schema
 * Registry read them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "protocol/messages.h"
#include "proxy/errors.h"
#include "proxy/handlers.h"

enum { RES_TOPIC = 2, RES_BROKER = 4, RES_BROKER_LOGGER = 8 };
enum { OP_SET = 0, OP_DELETE = 1, OP_APPEND = 2, OP_SUBTRACT = 3 };

const char *topic_config_effective(const struct tc_override *ov, size_t n,
				   const struct tc_def *d, int *source)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ov[i].name, d->name) == 0) {
			*source = TC_SRC_DYNAMIC_TOPIC;
			return ov[i].value;
		}
	}
	return tc_default(d, source);
}

int16_t topic_config_check(struct kstr name, struct kstr value, char *err,
			   size_t errlen)
{
	const struct tc_def *d =
		name.len > 0 ? tc_find(name.ptr, (size_t)name.len) : NULL;
	if (!d) {
		snprintf(err, errlen, "Unknown topic config name: %.*s",
			 name.len > 0 ? name.len : 0, name.ptr ? name.ptr : "");
		return KERR_INVALID_CONFIG;
	}
	if (value.len < 0) {
		snprintf(err, errlen,
			 "Null value not supported for topic "
			 "configs: %s",
			 d->name);
		return KERR_INVALID_CONFIG;
	}
	char v[1024];
	if (value.len >= (int32_t)sizeof(v)) {
		snprintf(err, errlen, "Value of %s is too long", d->name);
		return KERR_INVALID_CONFIG;
	}
	memcpy(v, value.ptr, (size_t)value.len);
	v[value.len] = '\0';
	return tc_validate(d, v, err, errlen) < 0 ? KERR_INVALID_CONFIG
						  : KERR_NONE;
}

static bool
wanted(const struct DescribeConfigsRequest_DescribeConfigsResource *q,
       const char *name)
{
	/* As Kafka's ConfigHelper: no keys (null or empty) means all. */
	if (q->ConfigurationKeys.count <= 0)
		return true;
	for (int32_t i = 0; i < q->ConfigurationKeys.count; i++)
		if (kstr_eq(q->ConfigurationKeys.items[i], name))
			return true;
	return false;
}

static void
add_synonym(struct request *req,
	    struct DescribeConfigsResponse_DescribeConfigsSynonym *s, int *n,
	    const char *name, const char *value, int source)
{
	s[*n].Name = req_str(req, name);
	s[*n].Value = req_str(req, value);
	s[*n].Source = (int8_t)source;
	(*n)++;
}

static void
describe_topic(struct request *req,
	       const struct DescribeConfigsRequest_DescribeConfigsResource *q,
	       struct DescribeConfigsResponse_DescribeConfigsResult *r,
	       const struct st_topic *t)
{
	const struct DescribeConfigsRequest *dr = req->body;
	size_t ndefs;
	const struct tc_def *defs = tc_defs(&ndefs);
	int32_t n = 0;
	for (size_t i = 0; i < ndefs; i++)
		n += wanted(q, defs[i].name);
	struct DescribeConfigsResponse_DescribeConfigsResourceResult *c = req_array(
		req, &r->Configs,
		&DescribeConfigsResponse_DescribeConfigsResourceResult_struct,
		n);
	for (size_t i = 0, k = 0; c && i < ndefs; i++) {
		const struct tc_def *d = &defs[i];
		if (!wanted(q, d->name))
			continue;
		int source;
		const char *v = topic_config_effective(t->configs, t->nconfigs,
						       d, &source);
		c[k].Name = req_str(req, d->name);
		c[k].Value = req_str(req, v);
		c[k].ConfigSource = (int8_t)source;
		c[k].IsDefault = source == TC_SRC_DEFAULT;
		c[k].ConfigType = (int8_t)d->type;
		if (dr->IncludeDocumentation)
			c[k].Documentation = req_str(req, d->doc);
		if (dr->IncludeSynonyms) {
			struct DescribeConfigsResponse_DescribeConfigsSynonym
				*s = req_array(
					req, &c[k].Synonyms,
					&DescribeConfigsResponse_DescribeConfigsSynonym_struct,
					3);
			int ns = 0, dsrc;
			const char *dv = tc_default(d, &dsrc);
			if (s && source == TC_SRC_DYNAMIC_TOPIC)
				add_synonym(req, s, &ns, d->name, v, source);
			if (s && d->broker && dsrc == TC_SRC_STATIC_BROKER)
				add_synonym(req, s, &ns, d->broker, dv, dsrc);
			if (s)
				add_synonym(req, s, &ns,
					    d->broker ? d->broker : d->name,
					    d->def, TC_SRC_DEFAULT);
			c[k].Synonyms.count = ns;
		}
		k++;
	}
}

static void
describe_broker(struct request *req,
		const struct DescribeConfigsRequest_DescribeConfigsResource *q,
		struct DescribeConfigsResponse_DescribeConfigsResult *r)
{
	size_t ndefs;
	const struct bc_def *defs = bc_defs(&ndefs);
	int32_t n = 0;
	for (size_t i = 0; i < ndefs; i++)
		n += wanted(q, defs[i].name);
	struct DescribeConfigsResponse_DescribeConfigsResourceResult *c = req_array(
		req, &r->Configs,
		&DescribeConfigsResponse_DescribeConfigsResourceResult_struct,
		n);
	for (size_t i = 0, k = 0; c && i < ndefs; i++) {
		if (!wanted(q, defs[i].name))
			continue;
		bool is_default;
		const char *v = bc_get(defs[i].name, &is_default);
		c[k].Name = req_str(req, defs[i].name);
		c[k].Value = v ? req_str(req, v) : KSTR_NULL;
		c[k].ReadOnly = defs[i].read_only;
		c[k].ConfigSource = (int8_t)(is_default ? TC_SRC_DEFAULT
							: TC_SRC_STATIC_BROKER);
		c[k].IsDefault = is_default;
		c[k].ConfigType = (int8_t)defs[i].type;
		c[k].Synonyms.count = 0;
		k++;
	}
}

static bool is_our_broker(struct request *req, struct kstr name)
{
	char id[16];
	snprintf(id, sizeof(id), "%d", req->srv->cfg->broker_id);
	return name.len == 0 || kstr_eq(name, id);
}

void handle_DescribeConfigs(struct request *req)
{
	struct DescribeConfigsRequest *dr = req->body;
	struct DescribeConfigsResponse *resp = req_response(req);
	int32_t n = dr->Resources.count > 0 ? dr->Resources.count : 0;
	struct DescribeConfigsResponse_DescribeConfigsResult *res = req_array(
		req, &resp->Results,
		&DescribeConfigsResponse_DescribeConfigsResult_struct, n);
	for (int32_t i = 0; res && i < n; i++) {
		const struct DescribeConfigsRequest_DescribeConfigsResource *q =
			&dr->Resources.items[i];
		struct DescribeConfigsResponse_DescribeConfigsResult *r =
			&res[i];
		r->ResourceType = q->ResourceType;
		r->ResourceName = q->ResourceName;
		r->ErrorMessage = KSTR_NULL;
		if (q->ResourceType == RES_TOPIC) {
			const struct st_topic *t =
				st_topic_find(req->srv->store, q->ResourceName);
			if (!t) {
				r->ErrorCode = KERR_UNKNOWN_TOPIC_OR_PARTITION;
				r->ErrorMessage = req_str(
					req, "The topic does not exist.");
				continue;
			}
			describe_topic(req, q, r, t);
		} else if (q->ResourceType == RES_BROKER) {
			if (!is_our_broker(req, q->ResourceName)) {
				r->ErrorCode = KERR_INVALID_REQUEST;
				r->ErrorMessage =
					req_str(req, "Unknown broker");
				continue;
			}
			describe_broker(req, q, r);
		} else if (q->ResourceType == RES_BROKER_LOGGER) {
			r->Configs.count = 0;
		} else {
			r->ErrorCode = KERR_INVALID_REQUEST;
			r->ErrorMessage =
				req_str(req, "Unsupported resource type");
		}
	}
	req_reply(req, resp);
}

/* --- altering
 * ----------------------------------------------------------------- */

/* The edits of one resource: names set (or, with a NULL value, removed),
 * each once, in the arena. */
struct edit {
	struct tc_override *ov;
	int32_t n, cap;
};

static int edit_set(struct request *req, struct edit *e, const char *name,
		    const char *value)
{
	for (int32_t i = 0; i < e->n; i++) {
		if (strcmp(e->ov[i].name, name) == 0) {
			e->ov[i].value = value;
			return 0;
		}
	}
	struct tc_override *ov =
		arena_grow(&req->arena, e->ov, e->n, &e->cap, sizeof(*ov));
	if (!ov)
		return -1;
	e->ov = ov;
	e->ov[e->n].name = name;
	e->ov[e->n].value = value;
	e->n++;
	return 0;
}

/* d's value once the edits so far are made: its edit, else the topic's
 * own setting, else the default. */
static const char *edit_get(const struct edit *e, const struct st_topic *t,
			    const struct tc_def *d)
{
	int source;
	for (int32_t i = 0; i < e->n; i++)
		if (strcmp(e->ov[i].name, d->name) == 0)
			return e->ov[i].value ? e->ov[i].value
					      : tc_default(d, &source);
	return topic_config_effective(t->configs, t->nconfigs, d, &source);
}

/* APPEND / SUBTRACT on a list config; NULL when out of memory. */
static const char *list_edit(struct request *req, const char *cur,
			     struct kstr item, bool append)
{
	char *out =
		arena_alloc(&req->arena, strlen(cur) + (size_t)item.len + 2);
	if (!out)
		return NULL;
	char *o = out;
	bool present = false;
	const char *p = cur;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		bool same = len == (size_t)item.len &&
			    memcmp(p, item.ptr, len) == 0;
		present |= same;
		if (!(same && !append) && len) {
			if (o != out)
				*o++ = ',';
			memcpy(o, p, len);
			o += len;
		}
		p = e ? e + 1 : p + len;
	}
	if (append && !present) {
		if (o != out)
			*o++ = ',';
		memcpy(o, item.ptr, (size_t)item.len);
		o += item.len;
	}
	*o = '\0';
	return out;
}

struct alter_item {
	struct request *req;
	int16_t *error;
	struct kstr *message;
};

static void altered(void *arg, enum st_status st, const char *msg)
{
	struct alter_item *a = arg;
	*a->error = kerr_from_status(st);
	if (st != ST_OK)
		*a->message = req_str(a->req, msg);
	req_release(a->req);
}

/*
 * One resource of AlterConfigs (incremental == false: the given set replaces
 * the topic's settings) or IncrementalAlterConfigs.  names/values/ops are
 * parallel arrays of n entries.
 */
static void alter_resource(struct request *req, int8_t type, struct kstr rname,
			   int32_t n, const struct kstr *names,
			   const struct kstr *values, const int8_t *ops,
			   bool incremental, bool validate_only, int16_t *error,
			   struct kstr *message)
{
	char err[300] = "";
	if (type == RES_BROKER || type == RES_BROKER_LOGGER) {
		*error = KERR_INVALID_REQUEST;
		*message = req_str(req, "samsa's broker configs are set at "
					"start-up (--config) and cannot be "
					"altered at run time");
		return;
	}
	if (type != RES_TOPIC) {
		*error = KERR_INVALID_REQUEST;
		*message = req_str(req, "Unsupported resource type");
		return;
	}
	struct st_topic *t = st_topic_find(req->srv->store, rname);
	if (!t) {
		*error = KERR_UNKNOWN_TOPIC_OR_PARTITION;
		*message = req_str(req, "The topic does not exist.");
		return;
	}
	/* As Kafka: a key given twice is refused (APPENDs of one list
	 * would otherwise copy it once per item). */
	struct name_seen *seen =
		req_names_seen(req, names, sizeof(*names), 0, n);
	for (int32_t i = 0; seen && i < n; i++) {
		if (seen[i].count > 1) {
			*error = KERR_INVALID_REQUEST;
			*message = req_str(req, "Error due to duplicate "
						"config keys");
			return;
		}
	}
	if (!seen)
		goto oom;
	struct edit e = {0};
	for (int32_t i = 0; i < n; i++) {
		int8_t op = ops ? ops[i] : OP_SET;
		const struct tc_def *d =
			names[i].len > 0
				? tc_find(names[i].ptr, (size_t)names[i].len)
				: NULL;
		if (!d && op == OP_DELETE)
			continue; /* as Kafka: nothing to remove */
		if (!d) {
			topic_config_check(names[i], values[i], err,
					   sizeof(err));
			*error = KERR_INVALID_CONFIG;
			*message = req_str(req, err);
			return;
		}
		if (op == OP_DELETE) {
			if (edit_set(req, &e, d->name, NULL) < 0)
				goto oom;
			continue;
		}
		if ((op == OP_APPEND || op == OP_SUBTRACT) &&
		    d->type != TC_LIST) {
			*error = KERR_INVALID_CONFIG;
			snprintf(err, sizeof(err),
				 "Config value append/subtract is not allowed "
				 "for config key %s",
				 d->name);
			*message = req_str(req, err);
			return;
		}
		if (op > OP_SUBTRACT || op < OP_SET) {
			*error = KERR_INVALID_REQUEST;
			*message = req_str(req, "Unknown config operation");
			return;
		}
		int16_t code = topic_config_check(names[i], values[i], err,
						  sizeof(err));
		if (code) {
			*error = code;
			*message = req_str(req, err);
			return;
		}
		const char *v = arena_strndup(&req->arena, values[i].ptr,
					      (size_t)values[i].len);
		if (v && (op == OP_APPEND || op == OP_SUBTRACT))
			v = list_edit(req, edit_get(&e, t, d), values[i],
				      op == OP_APPEND);
		if (!v || edit_set(req, &e, d->name, v) < 0)
			goto oom;
	}
	if (validate_only)
		return;
	struct alter_item *a = arena_alloc(&req->arena, sizeof(*a));
	if (!a)
		goto oom;
	a->req = req;
	a->error = error;
	a->message = message;
	req_hold(req);
	st_set_configs(req->srv->store, t, !incremental, e.ov, (size_t)e.n,
		       altered, a);
	return;
oom:
	*error = KERR_UNKNOWN_SERVER_ERROR;
	*message = req_str(req, "out of memory");
}

void handle_AlterConfigs(struct request *req)
{
	struct AlterConfigsRequest *ar = req->body;
	struct AlterConfigsResponse *resp = req_response(req);
	int32_t n = ar->Resources.count > 0 ? ar->Resources.count : 0;
	struct AlterConfigsResponse_AlterConfigsResourceResponse *res = req_array(
		req, &resp->Responses,
		&AlterConfigsResponse_AlterConfigsResourceResponse_struct, n);
	req_begin(req, resp);
	for (int32_t i = 0; res && i < n; i++) {
		struct AlterConfigsRequest_AlterConfigsResource *q =
			&ar->Resources.items[i];
		res[i].ResourceType = q->ResourceType;
		res[i].ResourceName = q->ResourceName;
		res[i].ErrorMessage = KSTR_NULL;
		int32_t nc = q->Configs.count > 0 ? q->Configs.count : 0;
		struct kstr *names = arena_alloc(
			&req->arena, (size_t)nc * sizeof(*names) + 1);
		struct kstr *values = arena_alloc(
			&req->arena, (size_t)nc * sizeof(*values) + 1);
		if (!names || !values) {
			res[i].ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		for (int32_t j = 0; j < nc; j++) {
			names[j] = q->Configs.items[j].Name;
			values[j] = q->Configs.items[j].Value;
		}
		alter_resource(req, q->ResourceType, q->ResourceName, nc, names,
			       values, NULL, false, ar->ValidateOnly,
			       &res[i].ErrorCode, &res[i].ErrorMessage);
	}
	req_release(req);
}

void handle_IncrementalAlterConfigs(struct request *req)
{
	struct IncrementalAlterConfigsRequest *ar = req->body;
	struct IncrementalAlterConfigsResponse *resp = req_response(req);
	int32_t n = ar->Resources.count > 0 ? ar->Resources.count : 0;
	struct IncrementalAlterConfigsResponse_AlterConfigsResourceResponse
		*res = req_array(
			req, &resp->Responses,
			&IncrementalAlterConfigsResponse_AlterConfigsResourceResponse_struct,
			n);
	req_begin(req, resp);
	for (int32_t i = 0; res && i < n; i++) {
		struct IncrementalAlterConfigsRequest_AlterConfigsResource *q =
			&ar->Resources.items[i];
		res[i].ResourceType = q->ResourceType;
		res[i].ResourceName = q->ResourceName;
		res[i].ErrorMessage = KSTR_NULL;
		int32_t nc = q->Configs.count > 0 ? q->Configs.count : 0;
		struct kstr *names = arena_alloc(
			&req->arena, (size_t)nc * sizeof(*names) + 1);
		struct kstr *values = arena_alloc(
			&req->arena, (size_t)nc * sizeof(*values) + 1);
		int8_t *ops = arena_alloc(&req->arena, (size_t)nc + 1);
		if (!names || !values || !ops) {
			res[i].ErrorCode = KERR_UNKNOWN_SERVER_ERROR;
			continue;
		}
		for (int32_t j = 0; j < nc; j++) {
			names[j] = q->Configs.items[j].Name;
			values[j] = q->Configs.items[j].Value;
			ops[j] = q->Configs.items[j].ConfigOperation;
		}
		alter_resource(req, q->ResourceType, q->ResourceName, nc, names,
			       values, ops, true, ar->ValidateOnly,
			       &res[i].ErrorCode, &res[i].ErrorMessage);
	}
	req_release(req);
}
