/*
 * avro_compat: parsing, canonical form and resolution checks of Avro
 * schemas.
 *
 * avro-c validates a schema (it is the reference parser we link anyway),
 * but its schema objects hide what the checks need (aliases, defaults, the
 * enum default), so the schema is also read from its JSON into a small tree
 * of our own.  Named types are nodes shared by every reference to them, so
 * a recursive schema is a cyclic graph: the checker remembers the pairs it
 * is inside of and assumes them compatible, as Avro Java does.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <avro.h>
#include <jansson.h>

#include "protocol/avro_compat.h"

enum ac_type {
	T_NULL,
	T_BOOLEAN,
	T_INT,
	T_LONG,
	T_FLOAT,
	T_DOUBLE,
	T_BYTES,
	T_STRING,
	T_RECORD,
	T_ENUM,
	T_FIXED,
	T_ARRAY,
	T_MAP,
	T_UNION,
};

static const char *const type_names[] = {
	[T_NULL] = "null",   [T_BOOLEAN] = "boolean", [T_INT] = "int",
	[T_LONG] = "long",   [T_FLOAT] = "float",     [T_DOUBLE] = "double",
	[T_BYTES] = "bytes", [T_STRING] = "string",   [T_RECORD] = "record",
	[T_ENUM] = "enum",   [T_FIXED] = "fixed",     [T_ARRAY] = "array",
	[T_MAP] = "map",     [T_UNION] = "union",
};

struct node;

struct field {
	const char *name;
	const char **aliases; /* full names do not apply: plain names */
	size_t naliases;
	struct node *type;
	bool has_default;
};

struct node {
	enum ac_type type;
	/* Named types (record, enum, fixed). */
	const char *fullname;
	const char *name;     /* the last part of fullname */
	const char **aliases; /* full names */
	size_t naliases;
	/* record */
	struct field *fields;
	size_t nfields;
	/* enum */
	const char **symbols;
	size_t nsymbols;
	const char *enum_default; /* NULL when none */
	/* fixed */
	int64_t size;
	/* array items, map values */
	struct node *items;
	/* union */
	struct node **branches;
	size_t nbranches;
};

/* Memory of a schema: one list of blocks, freed together. */
struct block {
	struct block *next;
	max_align_t data[];
};

struct ac_schema {
	json_t *json;
	char *compact;
	struct node *root;
	struct block *blocks;
	struct node **named; /* every named type, for references */
	size_t nnamed, named_cap;
};

struct parser {
	struct ac_schema *s;
	char *err;
	size_t errlen;
	bool failed;
};

static void *palloc(struct parser *p, size_t n)
{
	struct block *b = calloc(1, sizeof(*b) + n);
	if (!b) {
		p->failed = true;
		snprintf(p->err, p->errlen, "out of memory");
		return NULL;
	}
	b->next = p->s->blocks;
	p->s->blocks = b;
	return b->data;
}

static char *pstrdup(struct parser *p, const char *a, const char *dot,
		     const char *b)
{
	size_t la = strlen(a), ld = strlen(dot), lb = strlen(b);
	char *r = palloc(p, la + ld + lb + 1);
	if (!r)
		return NULL;
	memcpy(r, a, la);
	memcpy(r + la, dot, ld);
	memcpy(r + la + ld, b, lb);
	r[la + ld + lb] = '\0';
	return r;
}

static void fail(struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void fail(struct parser *p, const char *fmt, ...)
{
	if (p->failed)
		return;
	p->failed = true;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
}

static int primitive(const char *name)
{
	for (int t = T_NULL; t <= T_STRING; t++)
		if (strcmp(name, type_names[t]) == 0)
			return t;
	return -1;
}

static struct node *find_named(const struct ac_schema *s, const char *full)
{
	for (size_t i = 0; i < s->nnamed; i++)
		if (strcmp(s->named[i]->fullname, full) == 0)
			return s->named[i];
	return NULL;
}

/* A reference by name: relative to the enclosing namespace first. */
static struct node *resolve_ref(struct parser *p, const char *name,
				const char *ns)
{
	struct node *n = NULL;
	if (!strchr(name, '.') && ns[0]) {
		char *full = pstrdup(p, ns, ".", name);
		if (!full)
			return NULL;
		n = find_named(p->s, full);
	}
	if (!n)
		n = find_named(p->s, name);
	if (!n)
		fail(p, "undefined name: %s", name);
	return n;
}

static struct node *new_node(struct parser *p, enum ac_type t)
{
	struct node *n = palloc(p, sizeof(*n));
	if (n)
		n->type = t;
	return n;
}

static const char *str_attr(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Names as the spec allows them: [A-Za-z_][A-Za-z0-9_]*. */
static bool valid_name(const char *s)
{
	if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
	      *s == '_'))
		return false;
	for (s++; *s; s++)
		if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

/* An array of strings into a NULL-free array; NULL on a bad element. */
static bool string_array(struct parser *p, json_t *a, const char *what,
			 const char ***out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!a)
		return true;
	if (!json_is_array(a)) {
		fail(p, "%s must be an array", what);
		return false;
	}
	size_t len = json_array_size(a);
	const char **v = palloc(p, (len ? len : 1) * sizeof(*v));
	if (!v)
		return false;
	for (size_t i = 0; i < len; i++) {
		json_t *e = json_array_get(a, i);
		if (!json_is_string(e)) {
			fail(p, "%s must hold strings", what);
			return false;
		}
		v[i] = json_string_value(e);
	}
	*out = v;
	*n = len;
	return true;
}

/*
 * Makes the full name of a named type being defined in o, registers the
 * node (before its body, so that the body may refer to it) and sets *ns to
 * the namespace its body is in.
 */
static bool define_named(struct parser *p, struct node *n, json_t *o,
			 const char *enclosing, const char **ns)
{
	const char *name = str_attr(o, "name");
	if (!name || !name[0]) {
		fail(p, "a %s needs a name", type_names[n->type]);
		return false;
	}
	const char *dot = strrchr(name, '.');
	if (dot) {
		n->fullname = name;
		n->name = dot + 1;
		char *space = palloc(p, (size_t)(dot - name) + 1);
		if (!space)
			return false;
		memcpy(space, name, (size_t)(dot - name));
		*ns = space;
	} else {
		const char *own = str_attr(o, "namespace");
		*ns = own ? own : enclosing;
		n->name = name;
		n->fullname = (*ns)[0] ? pstrdup(p, *ns, ".", name) : name;
		if (!n->fullname)
			return false;
	}
	if (!valid_name(n->name)) {
		fail(p, "invalid name: %s", n->name);
		return false;
	}
	if (primitive(n->fullname) >= 0) {
		fail(p, "a named type cannot be called %s", n->fullname);
		return false;
	}
	if (find_named(p->s, n->fullname)) {
		fail(p, "cannot redefine %s", n->fullname);
		return false;
	}
	const char **aliases;
	size_t naliases;
	if (!string_array(p, json_object_get(o, "aliases"), "aliases", &aliases,
			  &naliases))
		return false;
	for (size_t i = 0; i < naliases; i++)
		if (!strchr(aliases[i], '.') && (*ns)[0]) {
			aliases[i] = pstrdup(p, *ns, ".", aliases[i]);
			if (!aliases[i])
				return false;
		}
	n->aliases = aliases;
	n->naliases = naliases;
	if (p->s->nnamed == p->s->named_cap) {
		size_t cap = p->s->named_cap ? 2 * p->s->named_cap : 8;
		struct node **v =
			realloc(p->s->named, cap * sizeof(*p->s->named));
		if (!v) {
			fail(p, "out of memory");
			return false;
		}
		p->s->named = v;
		p->s->named_cap = cap;
	}
	p->s->named[p->s->nnamed++] = n;
	return true;
}

static struct node *parse_node(struct parser *p, json_t *j, const char *ns,
			       int depth);

static bool parse_record(struct parser *p, struct node *n, json_t *o,
			 const char *ns, int depth)
{
	json_t *fields = json_object_get(o, "fields");
	if (!json_is_array(fields)) {
		fail(p, "record %s needs a fields array", n->fullname);
		return false;
	}
	n->nfields = json_array_size(fields);
	n->fields =
		palloc(p, (n->nfields ? n->nfields : 1) * sizeof(*n->fields));
	if (!n->fields)
		return false;
	for (size_t i = 0; i < n->nfields; i++) {
		json_t *f = json_array_get(fields, i);
		struct field *fd = &n->fields[i];
		if (!json_is_object(f) || !(fd->name = str_attr(f, "name")) ||
		    !json_object_get(f, "type")) {
			fail(p, "field %zu of %s needs a name and a type", i,
			     n->fullname);
			return false;
		}
		if (!valid_name(fd->name)) {
			fail(p, "invalid field name: %s", fd->name);
			return false;
		}
		for (size_t k = 0; k < i; k++)
			if (strcmp(n->fields[k].name, fd->name) == 0) {
				fail(p, "duplicate field %s in %s", fd->name,
				     n->fullname);
				return false;
			}
		if (!string_array(p, json_object_get(f, "aliases"), "aliases",
				  &fd->aliases, &fd->naliases))
			return false;
		fd->has_default = json_object_get(f, "default") != NULL;
		fd->type = parse_node(p, json_object_get(f, "type"), ns,
				      depth + 1);
		if (!fd->type)
			return false;
	}
	return true;
}

static struct node *parse_object(struct parser *p, json_t *o, const char *ns,
				 int depth)
{
	json_t *tj = json_object_get(o, "type");
	if (!tj) {
		fail(p, "a schema object needs a type");
		return NULL;
	}
	if (!json_is_string(tj))
		/* {"type": {...}} or {"type": [...]}: the inner schema. */
		return parse_node(p, tj, ns, depth + 1);
	const char *t = json_string_value(tj);
	int prim = primitive(t);
	if (prim >= 0)
		return new_node(p,
				(enum ac_type)prim); /* logicalType ignored */
	struct node *n;
	const char *inner_ns;
	if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
		if (!(n = new_node(p, T_RECORD)) ||
		    !define_named(p, n, o, ns, &inner_ns) ||
		    !parse_record(p, n, o, inner_ns, depth))
			return NULL;
		return n;
	}
	if (strcmp(t, "enum") == 0) {
		if (!(n = new_node(p, T_ENUM)) ||
		    !define_named(p, n, o, ns, &inner_ns) ||
		    !string_array(p, json_object_get(o, "symbols"), "symbols",
				  &n->symbols, &n->nsymbols))
			return NULL;
		if (!n->symbols) {
			fail(p, "enum %s needs symbols", n->fullname);
			return NULL;
		}
		for (size_t i = 0; i < n->nsymbols; i++) {
			if (!valid_name(n->symbols[i])) {
				fail(p, "invalid enum symbol: %s",
				     n->symbols[i]);
				return NULL;
			}
			for (size_t k = 0; k < i; k++)
				if (strcmp(n->symbols[i], n->symbols[k]) == 0) {
					fail(p, "duplicate enum symbol: %s",
					     n->symbols[i]);
					return NULL;
				}
		}
		n->enum_default = str_attr(o, "default");
		return n;
	}
	if (strcmp(t, "fixed") == 0) {
		if (!(n = new_node(p, T_FIXED)) ||
		    !define_named(p, n, o, ns, &inner_ns))
			return NULL;
		json_t *size = json_object_get(o, "size");
		if (!json_is_integer(size) || json_integer_value(size) < 0) {
			fail(p, "fixed %s needs a size", n->fullname);
			return NULL;
		}
		n->size = json_integer_value(size);
		return n;
	}
	if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
		bool array = t[0] == 'a';
		json_t *items = json_object_get(o, array ? "items" : "values");
		if (!items) {
			fail(p, "%s needs %s", t, array ? "items" : "values");
			return NULL;
		}
		if (!(n = new_node(p, array ? T_ARRAY : T_MAP)) ||
		    !(n->items = parse_node(p, items, ns, depth + 1)))
			return NULL;
		return n;
	}
	/* {"type": "some.Named"}: a reference. */
	return resolve_ref(p, t, ns);
}

static struct node *parse_node(struct parser *p, json_t *j, const char *ns,
			       int depth)
{
	if (p->failed)
		return NULL;
	if (depth > 256) {
		fail(p, "schema nested too deeply");
		return NULL;
	}
	if (json_is_string(j)) {
		int prim = primitive(json_string_value(j));
		if (prim >= 0)
			return new_node(p, (enum ac_type)prim);
		return resolve_ref(p, json_string_value(j), ns);
	}
	if (json_is_object(j))
		return parse_object(p, j, ns, depth);
	if (json_is_array(j)) {
		struct node *n = new_node(p, T_UNION);
		if (!n)
			return NULL;
		n->nbranches = json_array_size(j);
		n->branches = palloc(p, (n->nbranches ? n->nbranches : 1) *
						sizeof(*n->branches));
		if (!n->branches)
			return NULL;
		for (size_t i = 0; i < n->nbranches; i++) {
			struct node *b = parse_node(p, json_array_get(j, i), ns,
						    depth + 1);
			if (!b)
				return NULL;
			if (b->type == T_UNION) {
				fail(p, "unions may not contain unions");
				return NULL;
			}
			/* The spec: one branch per type, per name for named
			 * types (a reader could not tell them apart). */
			for (size_t k = 0; k < i; k++) {
				const struct node *o = n->branches[k];
				if (o->type == b->type &&
				    (!b->fullname ||
				     strcmp(o->fullname, b->fullname) == 0)) {
					fail(p, "duplicate %s in union",
					     b->fullname ? b->fullname
							 : type_names[b->type]);
					return NULL;
				}
			}
			n->branches[i] = b;
		}
		return n;
	}
	fail(p, "not a schema: expected a string, an object or an array");
	return NULL;
}

struct ac_schema *ac_parse(const char *text, size_t len, char *err,
			   size_t errlen)
{
	json_error_t jerr;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
	if (!j) {
		snprintf(err, errlen, "invalid JSON: %s (line %d, column %d)",
			 jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	/* avro-c first: the reference parser has the last word on validity. */
	avro_schema_t as = NULL;
	if (avro_schema_from_json_length(text, len, &as) != 0) {
		const char *why = avro_strerror();
		snprintf(err, errlen, "invalid Avro schema: %s",
			 why && why[0] ? why : "rejected by avro-c");
		json_decref(j);
		return NULL;
	}
	avro_schema_decref(as);

	struct ac_schema *s = calloc(1, sizeof(*s));
	if (!s) {
		json_decref(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->json = j;
	struct parser p = {.s = s, .err = err, .errlen = errlen};
	s->root = parse_node(&p, j, "", 0);
	if (s->root && !p.failed) {
		s->compact = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!s->compact)
			fail(&p, "out of memory");
	}
	if (!s->root || p.failed) {
		if (!p.failed)
			snprintf(err, errlen, "invalid Avro schema");
		ac_free(s);
		return NULL;
	}
	return s;
}

void ac_free(struct ac_schema *s)
{
	if (!s)
		return;
	while (s->blocks) {
		struct block *b = s->blocks;
		s->blocks = b->next;
		free(b);
	}
	free(s->named);
	free(s->compact);
	json_decref(s->json);
	free(s);
}

const char *ac_compact(const struct ac_schema *s)
{
	return s->compact;
}

/* --- Parsing Canonical Form -------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
	const struct node **seen; /* named types already written */
	size_t nseen, seen_cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->failed = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* A JSON string; names are plain identifiers, but be safe. */
static void sb_quoted(struct sbuf *b, const char *s)
{
	sb_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char e[2] = {'\\', (char)c};
			sb_add(b, e, 2);
		} else if (c < 0x20) {
			char e[8];
			snprintf(e, sizeof(e), "\\u%04x", c);
			sb_str(b, e);
		} else {
			sb_add(b, (const char *)&c, 1);
		}
	}
	sb_add(b, "\"", 1);
}

static bool seen_before(struct sbuf *b, const struct node *n)
{
	for (size_t i = 0; i < b->nseen; i++)
		if (b->seen[i] == n)
			return true;
	if (b->nseen == b->seen_cap) {
		size_t cap = b->seen_cap ? 2 * b->seen_cap : 8;
		const struct node **v = realloc(b->seen, cap * sizeof(*v));
		if (!v) {
			b->failed = true;
			return true;
		}
		b->seen = v;
		b->seen_cap = cap;
	}
	b->seen[b->nseen++] = n;
	return false;
}

static void pcf(struct sbuf *b, const struct node *n)
{
	char num[32];
	switch (n->type) {
	case T_RECORD:
	case T_ENUM:
	case T_FIXED:
		if (seen_before(b, n)) {
			sb_quoted(b, n->fullname);
			return;
		}
		sb_str(b, "{\"name\":");
		sb_quoted(b, n->fullname);
		sb_str(b, ",\"type\":");
		sb_quoted(b, type_names[n->type]);
		if (n->type == T_RECORD) {
			sb_str(b, ",\"fields\":[");
			for (size_t i = 0; i < n->nfields; i++) {
				sb_str(b, i ? ",{\"name\":" : "{\"name\":");
				sb_quoted(b, n->fields[i].name);
				sb_str(b, ",\"type\":");
				pcf(b, n->fields[i].type);
				sb_str(b, "}");
			}
			sb_str(b, "]");
		} else if (n->type == T_ENUM) {
			sb_str(b, ",\"symbols\":[");
			for (size_t i = 0; i < n->nsymbols; i++) {
				if (i)
					sb_str(b, ",");
				sb_quoted(b, n->symbols[i]);
			}
			sb_str(b, "]");
		} else {
			snprintf(num, sizeof(num), ",\"size\":%lld",
				 (long long)n->size);
			sb_str(b, num);
		}
		sb_str(b, "}");
		return;
	case T_ARRAY:
		sb_str(b, "{\"type\":\"array\",\"items\":");
		pcf(b, n->items);
		sb_str(b, "}");
		return;
	case T_MAP:
		sb_str(b, "{\"type\":\"map\",\"values\":");
		pcf(b, n->items);
		sb_str(b, "}");
		return;
	case T_UNION:
		sb_str(b, "[");
		for (size_t i = 0; i < n->nbranches; i++) {
			if (i)
				sb_str(b, ",");
			pcf(b, n->branches[i]);
		}
		sb_str(b, "]");
		return;
	default:
		sb_quoted(b, type_names[n->type]);
		return;
	}
}

char *ac_canonical(const struct ac_schema *s)
{
	struct sbuf b = {0};
	pcf(&b, s->root);
	free(b.seen);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* --- resolution -------------------------------------------------------- */

/* The (reader, writer) pairs being checked, for recursive types. */
struct pair {
	const struct node *r, *w;
	const struct pair *up;
};

struct checker {
	char *msg;
	size_t msglen;
	char path[256];
};

static bool incompatible(struct checker *c, const char *kind, const char *fmt,
			 ...) __attribute__((format(printf, 3, 4)));
static bool incompatible(struct checker *c, const char *kind, const char *fmt,
			 ...)
{
	if (!c->msg || c->msglen == 0)
		return false;
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(c->msg, c->msglen, "%s at '%s': %s", kind,
		 c->path[0] ? c->path : "/", why);
	return false;
}

/* Appends /seg to the path; returns the old length to restore. */
static size_t path_push(struct checker *c, const char *seg)
{
	size_t old = strlen(c->path);
	snprintf(c->path + old, sizeof(c->path) - old, "/%s", seg);
	return old;
}

/*
 * Named types match when the unqualified names are equal or the reader has
 * the writer's full name among its aliases (Avro Java's schemaNameEquals).
 */
static bool names_match(const struct node *r, const struct node *w)
{
	if (strcmp(r->name, w->name) == 0)
		return true;
	for (size_t i = 0; i < r->naliases; i++)
		if (strcmp(r->aliases[i], w->fullname) == 0)
			return true;
	return false;
}

static const struct field *writer_field(const struct node *w,
					const struct field *rf)
{
	for (size_t i = 0; i < w->nfields; i++)
		if (strcmp(w->fields[i].name, rf->name) == 0)
			return &w->fields[i];
	for (size_t a = 0; a < rf->naliases; a++)
		for (size_t i = 0; i < w->nfields; i++)
			if (strcmp(w->fields[i].name, rf->aliases[a]) == 0)
				return &w->fields[i];
	return NULL;
}

static bool can_read(struct checker *c, const struct node *r,
		     const struct node *w, const struct pair *up);

static bool check_pair(struct checker *c, const struct node *r,
		       const struct node *w, const struct pair *up)
{
	struct pair here = {r, w, up};
	char seg[32];
	size_t old;

	switch (r->type) {
	case T_RECORD:
		if (!names_match(r, w))
			return incompatible(c, "NAME_MISMATCH",
					    "expected %s, found %s",
					    r->fullname, w->fullname);
		for (size_t i = 0; i < r->nfields; i++) {
			const struct field *rf = &r->fields[i];
			snprintf(seg, sizeof(seg), "fields/%zu", i);
			old = path_push(c, seg);
			const struct field *wf = writer_field(w, rf);
			bool ok;
			if (!wf)
				ok = rf->has_default ||
				     incompatible(
					     c,
					     "READER_FIELD_MISSING_DEFAULT_"
					     "VALUE",
					     "field '%s' of the reader has no "
					     "default value and is missing in "
					     "the writer",
					     rf->name);
			else
				ok = can_read(c, rf->type, wf->type, &here);
			c->path[old] = '\0';
			if (!ok)
				return false;
		}
		return true;
	case T_ENUM:
		if (!names_match(r, w))
			return incompatible(c, "NAME_MISMATCH",
					    "expected %s, found %s",
					    r->fullname, w->fullname);
		if (r->enum_default)
			return true;
		for (size_t i = 0; i < w->nsymbols; i++) {
			bool found = false;
			for (size_t k = 0; k < r->nsymbols && !found; k++)
				found = strcmp(w->symbols[i], r->symbols[k]) ==
					0;
			if (!found) {
				old = path_push(c, "symbols");
				incompatible(c, "MISSING_ENUM_SYMBOLS",
					     "the reader's enum %s lacks the "
					     "writer's symbol %s",
					     r->fullname, w->symbols[i]);
				c->path[old] = '\0';
				return false;
			}
		}
		return true;
	case T_FIXED:
		if (!names_match(r, w))
			return incompatible(c, "NAME_MISMATCH",
					    "expected %s, found %s",
					    r->fullname, w->fullname);
		if (r->size != w->size) {
			old = path_push(c, "size");
			incompatible(c, "FIXED_SIZE_MISMATCH",
				     "expected size %lld, found %lld",
				     (long long)r->size, (long long)w->size);
			c->path[old] = '\0';
			return false;
		}
		return true;
	case T_ARRAY:
	case T_MAP: {
		old = path_push(c, r->type == T_ARRAY ? "items" : "values");
		bool ok = can_read(c, r->items, w->items, &here);
		c->path[old] = '\0';
		return ok;
	}
	default:
		return true; /* the same primitive */
	}
}

/* Writer types each reader type accepts besides its own (promotions). */
static bool promotes(enum ac_type r, enum ac_type w)
{
	switch (r) {
	case T_LONG:
		return w == T_INT;
	case T_FLOAT:
		return w == T_INT || w == T_LONG;
	case T_DOUBLE:
		return w == T_INT || w == T_LONG || w == T_FLOAT;
	case T_STRING:
		return w == T_BYTES;
	case T_BYTES:
		return w == T_STRING;
	default:
		return false;
	}
}

static bool can_read(struct checker *c, const struct node *r,
		     const struct node *w, const struct pair *up)
{
	for (const struct pair *p = up; p; p = p->up)
		if (p->r == r && p->w == w)
			return true; /* inside this very check: recursion */

	if (w->type == T_UNION) {
		/* Every branch the writer may have written must be readable. */
		for (size_t i = 0; i < w->nbranches; i++) {
			char seg[24];
			snprintf(seg, sizeof(seg), "%zu", i);
			size_t old = path_push(c, seg);
			bool ok = can_read(c, r, w->branches[i], up);
			c->path[old] = '\0';
			if (!ok)
				return false;
		}
		return true;
	}
	if (r->type == T_UNION) {
		struct checker quiet = {0};
		for (size_t i = 0; i < r->nbranches; i++)
			if (can_read(&quiet, r->branches[i], w, up))
				return true;
		const char *wn =
			w->fullname ? w->fullname : type_names[w->type];
		return incompatible(c, "MISSING_UNION_BRANCH",
				    "the reader's union has no branch that "
				    "reads %s",
				    wn);
	}
	if (r->type == w->type)
		return check_pair(c, r, w, up);
	if (promotes(r->type, w->type))
		return true;
	return incompatible(c, "TYPE_MISMATCH",
			    "the reader's %s cannot read the writer's %s",
			    type_names[r->type], type_names[w->type]);
}

bool ac_can_read(const struct ac_schema *reader, const struct ac_schema *writer,
		 char *msg, size_t msglen)
{
	struct checker c = {.msg = msg, .msglen = msglen};
	if (msg && msglen)
		msg[0] = '\0';
	return can_read(&c, reader->root, writer->root, NULL);
}

bool ac_check(enum ac_level level, const struct ac_schema *cand,
	      const struct ac_schema *const *prev, size_t n, char *msg,
	      size_t msglen)
{
	if (msg && msglen)
		msg[0] = '\0';
	if (level == AC_NONE || n == 0)
		return true;
	bool transitive = level == AC_BACKWARD_TRANSITIVE ||
			  level == AC_FORWARD_TRANSITIVE ||
			  level == AC_FULL_TRANSITIVE;
	bool backward = level != AC_FORWARD && level != AC_FORWARD_TRANSITIVE;
	bool forward = level != AC_BACKWARD && level != AC_BACKWARD_TRANSITIVE;
	/* Newest first, as the first failure is the most telling. */
	for (size_t i = n; i-- > 0;) {
		if (backward && !ac_can_read(cand, prev[i], msg, msglen))
			return false;
		if (forward && !ac_can_read(prev[i], cand, msg, msglen))
			return false;
		if (!transitive)
			break;
	}
	return true;
}

static const char *const level_names[] = {
	[AC_NONE] = "NONE",
	[AC_BACKWARD] = "BACKWARD",
	[AC_BACKWARD_TRANSITIVE] = "BACKWARD_TRANSITIVE",
	[AC_FORWARD] = "FORWARD",
	[AC_FORWARD_TRANSITIVE] = "FORWARD_TRANSITIVE",
	[AC_FULL] = "FULL",
	[AC_FULL_TRANSITIVE] = "FULL_TRANSITIVE",
};

int ac_level_parse(const char *s, enum ac_level *out)
{
	for (int i = AC_NONE; i <= AC_FULL_TRANSITIVE; i++)
		if (strcasecmp(s, level_names[i]) == 0) {
			*out = (enum ac_level)i;
			return 0;
		}
	return -1;
}

const char *ac_level_name(enum ac_level level)
{
	if ((int)level < AC_NONE || level > AC_FULL_TRANSITIVE)
		return "NONE";
	return level_names[level];
}
