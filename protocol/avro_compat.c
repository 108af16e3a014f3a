/*
 * avro_compat: parsing, canonical form and resolution checks of Avro
 * schemas.
 *
 * avro-c validates a schema (it is the reference parser we link anyway),
 * but its schema objects hide what the checks need (aliases, defaults, the
 * enum default), so the schema is also read from its JSON into a small tree
 * of our own.  Named types are nodes shared by every reference to them, so
 * a recursive schema is a cyclic graph: the checker remembers the pairs it
 * is inside of and assumes them compatible, as Avro Java does, and the
 * answer for every pair it has decided, so that a type reached by many
 * paths is checked once.
 *
 * Lookups by name (named types, fields, enum symbols, union branches) go
 * through jansson objects used as hash tables: a schema may have a
 * hundred thousand fields, and the registry parses it on the event loop.
 */
#include <math.h>
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

/* JSON values are borrowed from ac_schema.json. */
struct field {
	const char *name;
	const char **aliases; /* full names do not apply: plain names */
	size_t naliases;
	struct node *type;
	json_t *obj;	    /* the field's object, for its other attributes */
	json_t *def;	    /* the default, NULL when none */
	const char *doc;    /* NULL when none */
	const char *order;  /* "descending", "ignore"; NULL for ascending */
	int def_state;	    /* DEF_*: the default checked (check_defaults) */
	bool def_nonfinite; /* a float/double's "NaN", "Infinity", ... */
};

struct node {
	enum ac_type type;
	json_t *obj; /* the object that defined it; NULL for a bare name */
	/* Named types (record, enum, fixed). */
	const char *fullname;
	const char *name;     /* the last part of fullname */
	const char *space;    /* the namespace, "" when none */
	const char **aliases; /* full names */
	size_t naliases;
	const char *doc; /* NULL when none */
	size_t idx;	 /* its place in ac_schema.named */
	bool error;	 /* a record written as "error" */
	/* record: field name -> index; enum: symbol -> index; union:
	 * branch_key() -> index.  Owned by ac_schema.indexes. */
	json_t *index;
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
	json_t *names;	 /* full name -> index in named */
	json_t *indexes; /* every node's index, to free them */
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

/* Adds key to the set (a JSON object); false when it was there already or
 * memory ran out (failed then set). */
static bool set_add(struct parser *p, json_t *set, const char *key,
		    size_t value)
{
	if (json_object_get(set, key))
		return false;
	if (json_object_set_new(set, key, json_integer((json_int_t)value))) {
		fail(p, "out of memory");
		return false;
	}
	return true;
}

/* The index a set holds for key, or -1. */
static long long set_find(const json_t *set, const char *key)
{
	json_t *v = json_object_get(set, key);
	return v ? (long long)json_integer_value(v) : -1;
}

/* A new set, owned by the schema; NULL (failed set) without memory. */
static json_t *new_index(struct parser *p)
{
	json_t *o = json_object();
	if (!o || json_array_append_new(p->s->indexes, o)) {
		fail(p, "out of memory");
		return NULL;
	}
	return o;
}

/* What tells a union's branches apart: the name of a named type, else the
 * type ('#' is in no name). */
static const char *branch_key(const struct node *b, char key[16])
{
	if (b->fullname)
		return b->fullname;
	snprintf(key, 16, "#%s", type_names[b->type]);
	return key;
}

static struct node *find_named(const struct ac_schema *s, const char *full)
{
	long long i = set_find(s->names, full);
	return i >= 0 ? s->named[i] : NULL;
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

static struct node *new_node(struct parser *p, enum ac_type t, json_t *obj)
{
	struct node *n = palloc(p, sizeof(*n));
	if (n) {
		n->type = t;
		n->obj = obj;
	}
	return n;
}

/* A JSON string holding no NUL (names, symbols ...), else NULL. */
static const char *text_of(json_t *v)
{
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	return strlen(s) == json_string_length(v) ? s : NULL;
}

static const char *str_attr(json_t *o, const char *key)
{
	return text_of(json_object_get(o, key));
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
		if (!(v[i] = text_of(json_array_get(a, i)))) {
			fail(p, "%s must hold strings", what);
			return false;
		}
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
	n->space = *ns;
	n->doc = str_attr(o, "doc");
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
	n->idx = p->s->nnamed;
	if (!set_add(p, p->s->names, n->fullname, n->idx))
		return false;
	p->s->named[p->s->nnamed++] = n;
	return true;
}

static struct node *parse_node(struct parser *p, json_t *j, const char *ns,
			       int depth);

static void number_default(struct parser *p, struct field *fd, json_t *f);

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
	if (!n->fields || !(n->index = new_index(p)))
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
		if (!set_add(p, n->index, fd->name, i)) {
			fail(p, "duplicate field %s in %s", fd->name,
			     n->fullname);
			return false;
		}
		if (!string_array(p, json_object_get(f, "aliases"), "aliases",
				  &fd->aliases, &fd->naliases))
			return false;
		fd->obj = f;
		fd->def = json_object_get(f, "default");
		fd->doc = str_attr(f, "doc");
		json_t *order = json_object_get(f, "order");
		if (order) {
			/* Avro Java: Field.Order.valueOf(upper case) */
			const char *o_ = text_of(order);
			if (o_ && strcasecmp(o_, "descending") == 0)
				fd->order = "descending";
			else if (o_ && strcasecmp(o_, "ignore") == 0)
				fd->order = "ignore";
			else if (!o_ || strcasecmp(o_, "ascending") != 0) {
				fail(p, "invalid order of field %s", fd->name);
				return false;
			}
		}
		fd->type = parse_node(p, json_object_get(f, "type"), ns,
				      depth + 1);
		if (!fd->type)
			return false;
		number_default(p, fd, f);
		if (p->failed)
			return false;
	}
	return true;
}

/*
 * Java's Double.valueOf(s): white space (<= ' ') around, a sign, then
 * "NaN", "Infinity", a decimal or a hexadecimal (with p exponent) number,
 * an f/F/d/D after.  False when s is none of those.
 */
static bool java_double(const char *s, double *out)
{
	size_t len = strlen(s);
	while (len && (unsigned char)s[len - 1] <= ' ')
		len--;
	while (len && (unsigned char)*s <= ' ')
		s++, len--;
	char buf[128];
	if (!len || len >= sizeof(buf))
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	const char *q = buf + (buf[0] == '+' || buf[0] == '-');
	if (strcmp(q, "NaN") == 0 || strcmp(q, "Infinity") == 0) {
		*out = q[0] == 'N' ? NAN : buf[0] == '-' ? -INFINITY : INFINITY;
		return true;
	}
	if (strchr("fFdD", buf[len - 1]))
		buf[--len] = '\0';
	bool hex = q[0] == '0' && (q[1] == 'x' || q[1] == 'X');
	const char *c = hex ? q + 2 : q;
	size_t digits = 0;
	const char *set = hex ? "0123456789abcdefABCDEF" : "0123456789";
	for (; *c && strchr(set, *c); c++)
		digits++;
	if (*c == '.')
		for (c++; *c && strchr(set, *c); c++)
			digits++;
	if (!digits)
		return false;
	if (*c == (hex ? 'p' : 'e') || *c == (hex ? 'P' : 'E')) {
		c += 1 + (c[1] == '+' || c[1] == '-');
		if (!(*c >= '0' && *c <= '9'))
			return false;
		while (*c >= '0' && *c <= '9')
			c++;
	} else if (hex) {
		return false;
	}
	if (*c)
		return false;
	*out = strtod(buf, NULL);
	return true;
}

/*
 * A float or double field's default written as text is the number it
 * spells, as Avro Java's Schema parser takes it (Double.valueOf); NaN and
 * the infinities stay text, as Jackson writes them ("NaN").  Other text
 * is left for the default's validation.
 */
static void number_default(struct parser *p, struct field *fd, json_t *f)
{
	double d;
	if (!json_is_string(fd->def) ||
	    (fd->type->type != T_FLOAT && fd->type->type != T_DOUBLE) ||
	    !java_double(json_string_value(fd->def), &d))
		return;
	json_t *v = isnan(d)   ? json_string("NaN")
		    : isinf(d) ? json_string(d < 0 ? "-Infinity" : "Infinity")
			       : json_real(d);
	if (!v || json_object_set_new(f, "default", v) < 0) {
		fail(p, "out of memory");
		return;
	}
	fd->def = json_object_get(f, "default");
	fd->def_nonfinite = !isfinite(d);
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
	const char *t = text_of(tj);
	if (!t) {
		fail(p, "not a schema: a type name holds a NUL");
		return NULL;
	}
	int prim = primitive(t);
	if (prim >= 0)
		return new_node(p, (enum ac_type)prim,
				o); /* logicalType ignored */
	struct node *n;
	const char *inner_ns;
	if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0) {
		if (!(n = new_node(p, T_RECORD, o)))
			return NULL;
		n->error = t[0] == 'e';
		if (!define_named(p, n, o, ns, &inner_ns) ||
		    !parse_record(p, n, o, inner_ns, depth))
			return NULL;
		return n;
	}
	if (strcmp(t, "enum") == 0) {
		if (!(n = new_node(p, T_ENUM, o)) ||
		    !define_named(p, n, o, ns, &inner_ns) ||
		    !string_array(p, json_object_get(o, "symbols"), "symbols",
				  &n->symbols, &n->nsymbols))
			return NULL;
		if (!n->symbols) {
			fail(p, "enum %s needs symbols", n->fullname);
			return NULL;
		}
		if (!(n->index = new_index(p)))
			return NULL;
		for (size_t i = 0; i < n->nsymbols; i++) {
			if (!valid_name(n->symbols[i])) {
				fail(p, "invalid enum symbol: %s",
				     n->symbols[i]);
				return NULL;
			}
			if (!set_add(p, n->index, n->symbols[i], i)) {
				fail(p, "duplicate enum symbol: %s",
				     n->symbols[i]);
				return NULL;
			}
		}
		/* Avro Java reads a default that is not text as none. */
		n->enum_default = str_attr(o, "default");
		if (n->enum_default &&
		    set_find(n->index, n->enum_default) < 0) {
			fail(p,
			     "the default %s of enum %s is not one of its "
			     "symbols",
			     n->enum_default, n->fullname);
			return NULL;
		}
		return n;
	}
	if (strcmp(t, "fixed") == 0) {
		if (!(n = new_node(p, T_FIXED, o)) ||
		    !define_named(p, n, o, ns, &inner_ns))
			return NULL;
		json_t *size = json_object_get(o, "size");
		if (!json_is_integer(size) || json_integer_value(size) < 0 ||
		    json_integer_value(size) > INT32_MAX) {
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
		if (!(n = new_node(p, array ? T_ARRAY : T_MAP, o)) ||
		    !(n->items = parse_node(p, items, ns, depth + 1)))
			return NULL;
		return n;
	}
	/* {"type": "some.Named"}: a reference. */
	return resolve_ref(p, t, ns);
}

static struct node *parse_union(struct parser *p, json_t *j, const char *ns,
				int depth)
{
	struct node *n = new_node(p, T_UNION, NULL);
	if (!n)
		return NULL;
	n->nbranches = json_array_size(j);
	n->branches = palloc(p, (n->nbranches ? n->nbranches : 1) *
					sizeof(*n->branches));
	if (!n->branches || !(n->index = new_index(p)))
		return NULL;
	for (size_t i = 0; i < n->nbranches; i++) {
		struct node *b =
			parse_node(p, json_array_get(j, i), ns, depth + 1);
		if (!b)
			break;
		if (b->type == T_UNION) {
			fail(p, "unions may not contain unions");
			break;
		}
		/* The spec: one branch per type, per name for named types
		 * (a reader could not tell them apart). */
		char key[16];
		if (!set_add(p, n->index, branch_key(b, key), i)) {
			fail(p, "duplicate %s in union",
			     b->fullname ? b->fullname : type_names[b->type]);
			break;
		}
		n->branches[i] = b;
	}
	return p->failed ? NULL : n;
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
		const char *t = text_of(j);
		if (!t) {
			fail(p, "not a schema: a type name holds a NUL");
			return NULL;
		}
		int prim = primitive(t);
		if (prim >= 0)
			return new_node(p, (enum ac_type)prim, NULL);
		return resolve_ref(p, t, ns);
	}
	if (json_is_object(j))
		return parse_object(p, j, ns, depth);
	if (json_is_array(j))
		return parse_union(p, j, ns, depth);
	fail(p, "not a schema: expected a string, an object or an array");
	return NULL;
}

/*
 * The work of validating a schema's defaults.  A record field missing from
 * a default object takes its own default, which is checked once per field
 * and remembered (records whose fields' defaults are records of records
 * would otherwise be checked again at every path, 2^depth times); a union
 * tries its branches, which a default of nested unions can still make
 * exponential, so the steps are counted and past the budget the schema is
 * refused.
 */
#define DEFAULT_STEPS (1u << 21)

struct defaults {
	size_t steps; /* left */
};

enum { DEF_UNKNOWN, DEF_BUSY, DEF_VALID, DEF_INVALID };

static bool valid_default(struct defaults *d, const struct node *n, json_t *v,
			  int depth);

/* Whether f's own default is valid for its type, remembered in f. */
static bool field_default(struct defaults *d, struct field *f, int depth)
{
	if (!f->def || f->def_state == DEF_INVALID)
		return false;
	if (f->def_state == DEF_VALID)
		return true;
	if (f->def_state == DEF_BUSY)
		return false; /* its default needs itself: never ends */
	if (f->def_nonfinite)
		return true; /* a double's NaN (number_default) */
	f->def_state = DEF_BUSY;
	bool ok = valid_default(d, f->type, f->def, depth);
	/* Out of steps says nothing of the default: not remembered. */
	f->def_state = ok ? DEF_VALID : d->steps ? DEF_INVALID : DEF_UNKNOWN;
	return ok;
}

/*
 * Whether v is a valid default of n, as Avro Java's Schema.isValidDefault
 * (Avro 1.12, which Confluent's registry runs with validateDefaults): a
 * union's default may be of any of its branches; a record's fields missing
 * from it take their own defaults.  depth bounds a record whose field
 * defaults refer back to it.
 */
static bool valid_default(struct defaults *d, const struct node *n, json_t *v,
			  int depth)
{
	if (!v || depth > 128 || !d->steps)
		return false;
	d->steps--;
	switch (n->type) {
	case T_STRING:
	case T_BYTES:
	case T_ENUM:
	case T_FIXED:
		return json_is_string(v);
	case T_INT:
		return json_is_integer(v) &&
		       json_integer_value(v) >= INT32_MIN &&
		       json_integer_value(v) <= INT32_MAX;
	case T_LONG:
		return json_is_integer(v);
	case T_FLOAT:
	case T_DOUBLE:
		return json_is_number(v);
	case T_BOOLEAN:
		return json_is_boolean(v);
	case T_NULL:
		return json_is_null(v);
	case T_ARRAY: {
		if (!json_is_array(v))
			return false;
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			if (!valid_default(d, n->items, e, depth + 1))
				return false;
		}
		return true;
	}
	case T_MAP: {
		if (!json_is_object(v))
			return false;
		const char *k;
		json_t *e;
		json_object_foreach(v, k, e)
		{
			if (!valid_default(d, n->items, e, depth + 1))
				return false;
		}
		return true;
	}
	case T_UNION:
		for (size_t i = 0; i < n->nbranches; i++)
			if (valid_default(d, n->branches[i], v, depth + 1))
				return true;
		return false;
	case T_RECORD:
		if (!json_is_object(v))
			return false;
		for (size_t i = 0; i < n->nfields; i++) {
			struct field *f = &n->fields[i];
			json_t *fv = json_object_get(v, f->name);
			if (fv ? !valid_default(d, f->type, fv, depth + 1)
			       : !field_default(d, f, depth + 1))
				return false;
		}
		return true;
	}
	return false;
}

/* Every field default against its type (Confluent refuses 42201). */
static void check_defaults(struct parser *p)
{
	const struct ac_schema *s = p->s;
	struct defaults d = {.steps = DEFAULT_STEPS};
	for (size_t i = 0; i < s->nnamed && !p->failed; i++) {
		const struct node *n = s->named[i];
		for (size_t k = 0; n->type == T_RECORD && k < n->nfields; k++) {
			struct field *f = &n->fields[k];
			if (f->def && !field_default(&d, f, 0)) {
				fail(p, "Invalid default for field %s of %s%s",
				     f->name, n->fullname,
				     d.steps ? "" : ": too costly to validate");
				return;
			}
		}
	}
}

/* Whether a string anywhere in j holds a NUL. */
static bool has_nul(json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;
	if (depth > 300)
		return false; /* parse_node refuses it anyway */
	switch (json_typeof(j)) {
	case JSON_STRING:
		return strlen(json_string_value(j)) != json_string_length(j);
	case JSON_OBJECT:
		json_object_foreach(j, k, v)
		{
			if (has_nul(v, depth + 1))
				return true;
		}
		return false;
	case JSON_ARRAY:
		json_array_foreach(j, i, v)
		{
			if (has_nul(v, depth + 1))
				return true;
		}
		return false;
	default:
		return false;
	}
}

/* Replaces every NUL of every string in j (a copy) by U+0001. */
static void replace_nul(json_t *j, int depth)
{
	const char *k;
	json_t *v;
	size_t i;
	if (depth > 300)
		return;
	if (json_is_string(j)) {
		size_t len = json_string_length(j);
		char *c = malloc(len ? len : 1);
		if (!c)
			return;
		memcpy(c, json_string_value(j), len);
		for (size_t x = 0; x < len; x++)
			if (!c[x])
				c[x] = 1;
		json_string_setn(j, c, len);
		free(c);
	} else if (json_is_object(j)) {
		json_object_foreach(j, k, v) replace_nul(v, depth + 1);
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v) replace_nul(v, depth + 1);
	}
}

/*
 * avro-c's verdict on the schema.  avro-c reads JSON without NULs in
 * strings, but a default may hold one ("\u0000", a bytes or decimal
 * default that Confluent's AvroData writes): it is shown a copy where they
 * are U+0001; names with a NUL are refused by our own parse.
 */
static int avro_c_check(const char *text, size_t len, json_t *j, char *err,
			size_t errlen)
{
	avro_schema_t as = NULL;
	int rc;
	if (has_nul(j, 0)) {
		json_t *copy = json_deep_copy(j);
		if (copy)
			replace_nul(copy, 0);
		char *t =
			copy ? json_dumps(copy, JSON_COMPACT | JSON_ENCODE_ANY)
			     : NULL;
		json_decref(copy);
		if (!t) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		rc = avro_schema_from_json_length(t, strlen(t), &as);
		free(t);
	} else {
		rc = avro_schema_from_json_length(text, len, &as);
	}
	if (rc != 0) {
		const char *why = avro_strerror();
		snprintf(err, errlen, "invalid Avro schema: %s",
			 why && why[0] ? why : "rejected by avro-c");
		return -1;
	}
	avro_schema_decref(as);
	return 0;
}

static char *java_text(const struct ac_schema *s);

struct ac_schema *ac_parse(const char *text, size_t len, bool validate_defaults,
			   char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *j =
		json_loadb(text, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (!j) {
		snprintf(err, errlen, "invalid JSON: %s (line %d, column %d)",
			 jerr.text, jerr.line, jerr.column);
		return NULL;
	}
	/* avro-c first: the reference parser has the last word on validity. */
	if (avro_c_check(text, len, j, err, errlen) < 0) {
		json_decref(j);
		return NULL;
	}

	struct ac_schema *s = calloc(1, sizeof(*s));
	if (!s || !(s->names = json_object()) || !(s->indexes = json_array())) {
		if (s)
			json_decref(s->names);
		free(s);
		json_decref(j);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->json = j;
	struct parser p = {.s = s, .err = err, .errlen = errlen};
	s->root = parse_node(&p, j, "", 0);
	if (s->root && !p.failed && validate_defaults)
		check_defaults(&p);
	if (s->root && !p.failed) {
		s->compact = java_text(s);
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
	json_decref(s->names);
	json_decref(s->indexes);
	json_decref(s->json);
	free(s);
}

const char *ac_compact(const struct ac_schema *s)
{
	return s->compact;
}

/* --- writing schemas --------------------------------------------------- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool failed;
	bool *seen; /* named types already written, by index */
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

/* A JSON string of n bytes, escaped as Jackson (Avro Java) escapes. */
static void sb_quotedn(struct sbuf *b, const char *s, size_t n)
{
	sb_add(b, "\"", 1);
	size_t run = 0; /* bytes copied as they are, written at once */
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\') {
			run++;
			continue;
		}
		sb_add(b, s + i - run, run);
		run = 0;
		char e[8];
		switch (c) {
		case '"':
		case '\\':
			e[0] = '\\';
			e[1] = (char)c;
			e[2] = '\0';
			break;
		case '\b':
			strcpy(e, "\\b");
			break;
		case '\f':
			strcpy(e, "\\f");
			break;
		case '\n':
			strcpy(e, "\\n");
			break;
		case '\r':
			strcpy(e, "\\r");
			break;
		case '\t':
			strcpy(e, "\\t");
			break;
		default:
			snprintf(e, sizeof(e), "\\u%04X", c);
		}
		sb_str(b, e);
	}
	sb_add(b, s + n - run, run);
	sb_add(b, "\"", 1);
}

static void sb_quoted(struct sbuf *b, const char *s)
{
	sb_quotedn(b, s, strlen(s));
}

/*
 * A double as Java's Double.toString writes it (which Jackson uses): the
 * shortest digits that read back the same, plain between 1e-3 and 1e7
 * with at least one decimal ("0.1", "100.0"), else "1.0E20", "1.5E-5";
 * single: as Float.toString writes (double)d's float.
 * jansson's own "%.17g" turns 0.1 into 0.10000000000000001.
 */
static void sb_real(struct sbuf *b, double d, bool single)
{
	char e[40];
	int prec;
	for (prec = 0; prec < 17; prec++) {
		snprintf(e, sizeof(e), "%.*e", prec, d);
		if (single ? strtof(e, NULL) == (float)d : strtod(e, NULL) == d)
			break;
	}
	/* e: [-]D[.DDD]e[+-]XX */
	char digits[24];
	size_t nd = 0;
	const char *q = e;
	bool neg = *q == '-';
	if (neg)
		q++;
	for (; *q && *q != 'e'; q++)
		if (*q >= '0' && *q <= '9' && nd < sizeof(digits) - 1)
			digits[nd++] = *q;
	digits[nd] = '\0';
	int exp = *q == 'e' ? atoi(q + 1) : 0;
	while (nd > 1 && digits[nd - 1] == '0')
		digits[--nd] = '\0';
	char out[64];
	size_t o = 0;
	if (neg)
		out[o++] = '-';
	double a = fabs(d);
	if (a == 0.0 || (a >= 1e-3 && a < 1e7)) {
		if (a == 0.0) {
			memcpy(out + o, "0.0", 3);
			o += 3;
		} else if (exp < 0) {
			out[o++] = '0';
			out[o++] = '.';
			for (int z = -1; z > exp; z--)
				out[o++] = '0';
			memcpy(out + o, digits, nd);
			o += nd;
		} else {
			size_t ip = (size_t)exp + 1; /* digits before '.' */
			for (size_t i = 0; i < ip; i++)
				out[o++] = i < nd ? digits[i] : '0';
			out[o++] = '.';
			if (nd > ip) {
				memcpy(out + o, digits + ip, nd - ip);
				o += nd - ip;
			} else {
				out[o++] = '0';
			}
		}
		out[o] = '\0';
	} else {
		out[o++] = digits[0];
		out[o++] = '.';
		if (nd > 1) {
			memcpy(out + o, digits + 1, nd - 1);
			o += nd - 1;
		} else {
			out[o++] = '0';
		}
		snprintf(out + o, sizeof(out) - o, "E%d", exp);
	}
	sb_str(b, out);
}

static void sb_json_(struct sbuf *b, json_t *v, bool sorted);

/* Any JSON value, keys in their order, numbers as Jackson writes them. */
static void sb_json(struct sbuf *b, json_t *v)
{
	sb_json_(b, v, false);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The same with the keys of every object sorted (Confluent's
 * SortingNodeFactory). */
static void sb_json_sorted(struct sbuf *b, json_t *v)
{
	sb_json_(b, v, true);
}

/* The keys of o, sorted; caller frees.  NULL (failed set) without
 * memory. */
static const char **sorted_keys(struct sbuf *b, json_t *o, size_t *n)
{
	const char *k;
	json_t *x;
	*n = 0;
	const char **v = malloc((json_object_size(o) + 1) * sizeof(*v));
	if (!v) {
		b->failed = true;
		return NULL;
	}
	json_object_foreach(o, k, x) v[(*n)++] = k;
	qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static void sb_json_(struct sbuf *b, json_t *v, bool sorted)
{
	char num[32];
	const char *k;
	json_t *e;
	size_t i;
	bool first = true;
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		sb_str(b, "{");
		if (sorted) {
			size_t n;
			const char **keys = sorted_keys(b, v, &n);
			for (size_t x = 0; x < n; x++) {
				sb_str(b, x ? "," : "");
				sb_quoted(b, keys[x]);
				sb_str(b, ":");
				sb_json_(b, json_object_get(v, keys[x]), true);
			}
			free(keys);
			sb_str(b, "}");
			return;
		}
		json_object_foreach(v, k, e)
		{
			if (!first)
				sb_str(b, ",");
			first = false;
			sb_quoted(b, k);
			sb_str(b, ":");
			sb_json(b, e);
		}
		sb_str(b, "}");
		return;
	case JSON_ARRAY:
		sb_str(b, "[");
		json_array_foreach(v, i, e)
		{
			if (i)
				sb_str(b, ",");
			sb_json_(b, e, sorted);
		}
		sb_str(b, "]");
		return;
	case JSON_STRING:
		sb_quotedn(b, json_string_value(v), json_string_length(v));
		return;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			 json_integer_value(v));
		sb_str(b, num);
		return;
	case JSON_REAL:
		sb_real(b, json_real_value(v), false);
		return;
	case JSON_TRUE:
		sb_str(b, "true");
		return;
	case JSON_FALSE:
		sb_str(b, "false");
		return;
	default:
		sb_str(b, "null");
		return;
	}
}

/* ,"symbols":[...] of an enum. */
static void sb_symbols(struct sbuf *b, const struct node *n)
{
	sb_str(b, ",\"symbols\":[");
	for (size_t i = 0; i < n->nsymbols; i++) {
		if (i)
			sb_str(b, ",");
		sb_quoted(b, n->symbols[i]);
	}
	sb_str(b, "]");
}

static bool seen_before(struct sbuf *b, const struct node *n)
{
	if (b->seen[n->idx])
		return true;
	b->seen[n->idx] = true;
	return false;
}

/* --- Avro Java's Schema.toString() ------------------------------------- */

/* Attributes Avro Java reads itself; the others are kept as properties. */
static bool reserved(const char *key, bool field, bool is_enum)
{
	static const char *const schema_keys[] = {
		"doc",	"fields",  "items",  "name", "namespace",
		"size", "symbols", "values", "type", "aliases"};
	static const char *const field_keys[] = {"default", "doc",  "name",
						 "order",   "type", "aliases"};
	if (field) {
		for (size_t i = 0; i < sizeof(field_keys) / sizeof(*field_keys);
		     i++)
			if (strcmp(key, field_keys[i]) == 0)
				return true;
		return false;
	}
	for (size_t i = 0; i < sizeof(schema_keys) / sizeof(*schema_keys); i++)
		if (strcmp(key, schema_keys[i]) == 0)
			return true;
	return is_enum && strcmp(key, "default") == 0;
}

/* ,"key":value for the properties of o, in their order; the count. */
static size_t java_props(struct sbuf *b, json_t *o, bool field, bool is_enum)
{
	const char *k;
	json_t *v;
	size_t n = 0;
	json_object_foreach(o, k, v)
	{
		if (reserved(k, field, is_enum))
			continue;
		if (b) {
			sb_str(b, ",");
			sb_quoted(b, k);
			sb_str(b, ":");
			sb_json(b, v);
		}
		n++;
	}
	return n;
}

static bool is_type_name(const char *name)
{
	for (size_t i = 0; i < sizeof(type_names) / sizeof(*type_names); i++)
		if (strcmp(name, type_names[i]) == 0)
			return true;
	return false;
}

/* Name.getQualified: the short name within its own namespace. */
static const char *qualified(const char *full, const char *space,
			     const char *name, const char *cur)
{
	if (space[0] && cur && strcmp(space, cur) == 0 && !is_type_name(name))
		return name;
	return full;
}

/* An alias's full name as Avro Java writes it within namespace space. */
static void java_alias(struct sbuf *b, const char *full, const char *space)
{
	const char *dot = strrchr(full, '.');
	size_t sl = strlen(space);
	if (dot && sl && (size_t)(dot - full) == sl &&
	    strncmp(full, space, sl) == 0 && !is_type_name(dot + 1))
		sb_quoted(b, dot + 1);
	else
		sb_quoted(b, full);
}

/* A list of strings once each, in their order (Avro's LinkedHashSet). */
static void java_aliases(struct sbuf *b, const char *const *v, size_t n,
			 const char *space)
{
	if (!n)
		return;
	json_t *once = json_object();
	if (!once) {
		b->failed = true;
		return;
	}
	sb_str(b, ",\"aliases\":[");
	bool first = true;
	for (size_t i = 0; i < n; i++) {
		if (json_object_get(once, v[i]))
			continue;
		json_object_set_new(once, v[i], json_true());
		if (!first)
			sb_str(b, ",");
		first = false;
		if (space)
			java_alias(b, v[i], space);
		else
			sb_quoted(b, v[i]);
	}
	sb_str(b, "]");
	json_decref(once);
}

/* cur: the enclosing namespace, NULL at the top (Java's null). */
static void java_node(struct sbuf *b, const struct node *n, const char *cur)
{
	char num[32];
	switch (n->type) {
	case T_RECORD:
	case T_ENUM:
	case T_FIXED:
		if (seen_before(b, n)) {
			sb_quoted(b, qualified(n->fullname, n->space, n->name,
					       cur));
			return;
		}
		sb_str(b, "{\"type\":");
		sb_quoted(b, n->error ? "error" : type_names[n->type]);
		sb_str(b, ",\"name\":");
		sb_quoted(b, n->name);
		if (n->space[0]) {
			if (!cur || strcmp(cur, n->space) != 0) {
				sb_str(b, ",\"namespace\":");
				sb_quoted(b, n->space);
			}
		} else if (cur) {
			sb_str(b, ",\"namespace\":\"\"");
		}
		if (n->doc) {
			sb_str(b, ",\"doc\":");
			sb_quoted(b, n->doc);
		}
		if (n->type == T_RECORD) {
			const char *inner = n->space[0] ? n->space : NULL;
			sb_str(b, ",\"fields\":[");
			for (size_t i = 0; i < n->nfields; i++) {
				const struct field *f = &n->fields[i];
				sb_str(b, i ? ",{\"name\":" : "{\"name\":");
				sb_quoted(b, f->name);
				sb_str(b, ",\"type\":");
				java_node(b, f->type, inner);
				if (f->doc) {
					sb_str(b, ",\"doc\":");
					sb_quoted(b, f->doc);
				}
				if (f->def) {
					sb_str(b, ",\"default\":");
					sb_json(b, f->def);
				}
				if (f->order) {
					sb_str(b, ",\"order\":");
					sb_quoted(b, f->order);
				}
				java_aliases(b, f->aliases, f->naliases, NULL);
				java_props(b, f->obj, true, false);
				sb_str(b, "}");
			}
			sb_str(b, "]");
		} else if (n->type == T_ENUM) {
			sb_symbols(b, n);
			if (n->enum_default) {
				sb_str(b, ",\"default\":");
				sb_quoted(b, n->enum_default);
			}
		} else {
			snprintf(num, sizeof(num), ",\"size\":%lld",
				 (long long)n->size);
			sb_str(b, num);
		}
		java_props(b, n->obj, false, n->type == T_ENUM);
		java_aliases(b, n->aliases, n->naliases, n->space);
		sb_str(b, "}");
		return;
	case T_ARRAY:
	case T_MAP:
		sb_str(b, n->type == T_ARRAY ? "{\"type\":\"array\",\"items\":"
					     : "{\"type\":\"map\",\"values\":");
		java_node(b, n->items, cur);
		java_props(b, n->obj, false, false);
		sb_str(b, "}");
		return;
	case T_UNION:
		sb_str(b, "[");
		for (size_t i = 0; i < n->nbranches; i++) {
			if (i)
				sb_str(b, ",");
			java_node(b, n->branches[i], cur);
		}
		sb_str(b, "]");
		return;
	default:
		if (!n->obj || !java_props(NULL, n->obj, false, false)) {
			sb_quoted(b, type_names[n->type]);
			return;
		}
		sb_str(b, "{\"type\":");
		sb_quoted(b, type_names[n->type]);
		java_props(b, n->obj, false, false);
		sb_str(b, "}");
		return;
	}
}

static char *java_text(const struct ac_schema *s)
{
	struct sbuf b = {0};
	b.seen = calloc(s->nnamed + 1, sizeof(*b.seen));
	if (!b.seen)
		return NULL;
	java_node(&b, s->root, NULL);
	free(b.seen);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* --- Confluent's normalized form ------------------------------------- */

/*
 * What AvroSchemaUtils.toNormalizedString writes (register and lookup with
 * normalize=true), read back and written as Avro Java writes it, as
 * AvroSchema.normalize() does: attributes sorted by key after a valid
 * logical type's own, aliases sorted, an empty doc of a named type
 * dropped, a default as Avro Java converts it for its field's type
 * (JacksonUtils.toObject: 1 for a double is 1.0; a union's by its first
 * branch), "error" as "record", names in full.
 */

/* The keys of o not reserved and not in skip[0..nskip), sorted; caller
 * frees (NULL, n 0, when there are none or memory runs out). */
static const char **sorted_props(json_t *o, bool field, bool is_enum,
				 const char *const *skip, size_t nskip,
				 size_t *n)
{
	*n = 0;
	size_t cap = o ? json_object_size(o) : 0;
	const char **v = cap ? malloc(cap * sizeof(*v)) : NULL;
	const char *k;
	json_t *x;
	if (!v)
		return NULL;
	json_object_foreach(o, k, x)
	{
		bool skipped = reserved(k, field, is_enum);
		for (size_t i = 0; i < nskip && !skipped; i++)
			skipped = strcmp(k, skip[i]) == 0;
		if (!skipped)
			v[(*n)++] = k;
	}
	qsort(v, *n, sizeof(*v), cmp_str);
	return v;
}

static void norm_props(struct sbuf *b, json_t *o, bool field, bool is_enum,
		       const char *const *skip, size_t nskip)
{
	size_t n;
	const char **keys = sorted_props(o, field, is_enum, skip, nskip, &n);
	for (size_t i = 0; i < n; i++) {
		sb_str(b, ",");
		sb_quoted(b, keys[i]);
		sb_str(b, ":");
		sb_json_sorted(b, json_object_get(o, keys[i]));
	}
	free(keys);
}

/* An integer attribute, or def when absent or not an integer. */
static json_int_t int_attr(json_t *o, const char *key, json_int_t def)
{
	json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

/*
 * The logical type of n that Avro 1.12 knows and finds valid
 * (LogicalTypes.fromSchemaIgnoreInvalid), NULL otherwise; *scale set for
 * a decimal.
 */
static const char *logical_type(const struct node *n, json_int_t *precision,
				json_int_t *scale)
{
	static const struct {
		const char *name;
		enum ac_type type;
		int64_t size; /* fixed */
	} known[] = {
		{"date", T_INT, 0},
		{"time-millis", T_INT, 0},
		{"time-micros", T_LONG, 0},
		{"timestamp-millis", T_LONG, 0},
		{"timestamp-micros", T_LONG, 0},
		{"timestamp-nanos", T_LONG, 0},
		{"local-timestamp-millis", T_LONG, 0},
		{"local-timestamp-micros", T_LONG, 0},
		{"local-timestamp-nanos", T_LONG, 0},
		{"uuid", T_STRING, 0},
		{"uuid", T_FIXED, 16},
		{"duration", T_FIXED, 12},
		{"big-decimal", T_BYTES, 0},
	};
	const char *lt = n->obj ? str_attr(n->obj, "logicalType") : NULL;
	if (!lt)
		return NULL;
	if (strcmp(lt, "decimal") == 0) {
		if (n->type != T_BYTES && n->type != T_FIXED)
			return NULL;
		*precision = int_attr(n->obj, "precision", 0);
		*scale = int_attr(n->obj, "scale", 0);
		if (*precision <= 0 || *scale < 0 || *scale > *precision)
			return NULL;
		if (n->type == T_FIXED &&
		    (n->size > 128 ||
		     *precision >
			     (json_int_t)floor(log10(
				     pow(2, 8.0 * (double)n->size - 1) - 1))))
			return NULL;
		return "decimal";
	}
	for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++)
		if (strcmp(lt, known[i].name) == 0 &&
		    n->type == known[i].type &&
		    (n->type != T_FIXED || n->size == known[i].size))
			return known[i].name;
	return NULL;
}

/* ,"logicalType":... then the other attributes, sorted. */
static void norm_type_props(struct sbuf *b, const struct node *n)
{
	json_int_t precision = 0, scale = 0;
	const char *lt = logical_type(n, &precision, &scale);
	static const char *const skip[] = {"logicalType", "precision", "scale"};
	size_t nskip = 0;
	if (lt) {
		char num[64];
		sb_str(b, ",\"logicalType\":");
		sb_quoted(b, lt);
		nskip = 1;
		if (strcmp(lt, "decimal") == 0) {
			snprintf(num, sizeof(num),
				 ",\"precision\":%" JSON_INTEGER_FORMAT,
				 precision);
			sb_str(b, num);
			nskip = 2;
			if (scale) {
				snprintf(num, sizeof(num),
					 ",\"scale\":%" JSON_INTEGER_FORMAT,
					 scale);
				sb_str(b, num);
				nskip = 3;
			}
		}
	}
	norm_props(b, n->obj, false, n->type == T_ENUM, skip, nskip);
}

/* Strings sorted, once each, as ,"aliases":[...]. */
static void norm_aliases(struct sbuf *b, const char *const *v, size_t n)
{
	if (!n)
		return;
	const char **s = malloc(n * sizeof(*s));
	if (!s) {
		b->failed = true;
		return;
	}
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_str);
	sb_str(b, ",\"aliases\":[");
	for (size_t i = 0; i < n; i++) {
		if (i && strcmp(s[i], s[i - 1]) == 0)
			continue;
		if (i)
			sb_str(b, ",");
		sb_quoted(b, s[i]);
	}
	sb_str(b, "]");
	free(s);
}

/* A default as JacksonUtils.toObject(value, type) and back; false when it
 * gives null (the default is then left out). */
static bool norm_value(struct sbuf *b, json_t *v, const struct node *n)
{
	while (n && n->type == T_UNION)
		n = n->nbranches ? n->branches[0] : NULL;
	enum ac_type t = n ? n->type : T_NULL;
	const char *k;
	json_t *e;
	size_t i;
	switch (json_typeof(v)) {
	case JSON_NULL:
	case JSON_TRUE:
	case JSON_FALSE:
		sb_json(b, v);
		return true;
	case JSON_INTEGER:
		if (t == T_FLOAT || t == T_DOUBLE)
			sb_real(b, (double)json_integer_value(v), t == T_FLOAT);
		else if (!n || t == T_INT || t == T_LONG)
			sb_json(b, v);
		else
			return false;
		return true;
	case JSON_REAL:
		/* No type known (JacksonUtils.toObject(v, null)): kept. */
		if (n && t != T_FLOAT && t != T_DOUBLE)
			return false;
		sb_real(b, json_real_value(v), t == T_FLOAT);
		return true;
	case JSON_STRING:
		if (n && t != T_STRING && t != T_ENUM && t != T_BYTES &&
		    t != T_FIXED &&
		    !((t == T_FLOAT || t == T_DOUBLE) &&
		      (strcmp(json_string_value(v), "NaN") == 0 ||
		       strcmp(json_string_value(v), "Infinity") == 0 ||
		       strcmp(json_string_value(v), "-Infinity") == 0)))
			return false;
		sb_json(b, v);
		return true;
	case JSON_ARRAY:
		sb_str(b, "[");
		json_array_foreach(v, i, e)
		{
			if (i)
				sb_str(b, ",");
			if (!norm_value(b, e,
					n && t == T_ARRAY ? n->items : NULL))
				sb_str(b, "null");
		}
		sb_str(b, "]");
		return true;
	case JSON_OBJECT: {
		size_t nk;
		const char **keys = sorted_keys(b, v, &nk);
		sb_str(b, "{");
		for (i = 0; i < nk; i++) {
			k = keys[i];
			e = json_object_get(v, k);
			const struct node *vn = NULL;
			if (t == T_MAP) {
				vn = n->items;
			} else if (t == T_RECORD) {
				long long f = set_find(n->index, k);
				vn = f >= 0 ? n->fields[f].type : NULL;
			}
			sb_str(b, i ? "," : "");
			sb_quoted(b, k);
			sb_str(b, ":");
			if (!norm_value(b, e, vn))
				sb_str(b, "null");
		}
		free(keys);
		sb_str(b, "}");
		return true;
	}
	default:
		return false;
	}
}

/* A field's order, doc, aliases, default and attributes, normalized. */
static void norm_field_attrs(struct sbuf *b, const struct field *f)
{
	if (f->order) {
		sb_str(b, ",\"order\":");
		sb_quoted(b, f->order);
	}
	if (f->doc) {
		sb_str(b, ",\"doc\":");
		sb_quoted(b, f->doc);
	}
	norm_aliases(b, f->aliases, f->naliases);
	if (f->def) {
		size_t at = b->len;
		sb_str(b, ",\"default\":");
		if (!norm_value(b, f->def, f->type) && !b->failed) {
			b->len = at; /* Avro Java converted it to null */
			b->p[at] = '\0';
		}
	}
	norm_props(b, f->obj, true, false, NULL, 0);
}

/*
 * The normalized form (attrs) or, without the attributes, Avro's Parsing
 * Canonical Form, from which Confluent's is adapted.
 */
static void norm_node(struct sbuf *b, const struct node *n, bool attrs)
{
	switch (n->type) {
	case T_UNION:
		sb_str(b, "[");
		for (size_t i = 0; i < n->nbranches; i++) {
			if (i)
				sb_str(b, ",");
			norm_node(b, n->branches[i], attrs);
		}
		sb_str(b, "]");
		return;
	case T_ARRAY:
	case T_MAP:
		sb_str(b, n->type == T_ARRAY ? "{\"type\":\"array\",\"items\":"
					     : "{\"type\":\"map\",\"values\":");
		norm_node(b, n->items, attrs);
		if (attrs)
			norm_type_props(b, n);
		sb_str(b, "}");
		return;
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
		if (n->type == T_ENUM) {
			sb_symbols(b, n);
		} else if (n->type == T_FIXED) {
			char num[32];
			snprintf(num, sizeof(num), ",\"size\":%lld",
				 (long long)n->size);
			sb_str(b, num);
		} else {
			sb_str(b, ",\"fields\":[");
			for (size_t i = 0; i < n->nfields; i++) {
				const struct field *f = &n->fields[i];
				sb_str(b, i ? ",{\"name\":" : "{\"name\":");
				sb_quoted(b, f->name);
				sb_str(b, ",\"type\":");
				norm_node(b, f->type, attrs);
				if (attrs)
					norm_field_attrs(b, f);
				sb_str(b, "}");
			}
			sb_str(b, "]");
		}
		if (attrs) {
			if (n->doc && n->doc[0]) {
				sb_str(b, ",\"doc\":");
				sb_quoted(b, n->doc);
			}
			norm_aliases(b, n->aliases, n->naliases);
			if (n->enum_default) {
				sb_str(b, ",\"default\":");
				sb_quoted(b, n->enum_default);
			}
			norm_type_props(b, n);
		}
		sb_str(b, "}");
		return;
	default:
		if (!attrs || !n->obj ||
		    !java_props(NULL, n->obj, false, false)) {
			sb_quoted(b, type_names[n->type]);
			return;
		}
		sb_str(b, "{\"type\":");
		sb_quoted(b, type_names[n->type]);
		norm_type_props(b, n);
		sb_str(b, "}");
		return;
	}
}

struct ac_schema *ac_normalize(const struct ac_schema *s, char *err,
			       size_t errlen)
{
	struct sbuf b = {0};
	b.seen = calloc(s->nnamed + 1, sizeof(*b.seen));
	if (b.seen)
		norm_node(&b, s->root, true);
	else
		b.failed = true;
	free(b.seen);
	if (b.failed) {
		free(b.p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	struct ac_schema *n = ac_parse(b.p, b.len, false, err, errlen);
	free(b.p);
	return n;
}

/* --- Parsing Canonical Form -------------------------------------------- */

char *ac_canonical(const struct ac_schema *s)
{
	struct sbuf b = {0};
	b.seen = calloc(s->nnamed + 1, sizeof(*b.seen));
	if (!b.seen)
		return NULL;
	norm_node(&b, s->root, false);
	free(b.seen);
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

/* --- resolution -------------------------------------------------------- */

/*
 * What the checker knows of a (reader, writer) pair: being checked (on
 * the stack: assumed compatible, as Avro Java's
 * ReaderWriterCompatibilityChecker does for recursion), or decided.  Like
 * Avro Java's memo, a pair decided compatible while an enclosing pair was
 * assumed stays so: the answer is the one Confluent gives.
 */
enum memo_state { M_NONE, M_BUSY, M_OK, M_FAIL };

struct memo_slot {
	const struct node *r, *w;
	enum memo_state st;
};

struct memo {
	struct memo_slot *v;
	size_t cap, n; /* cap a power of two, at most half full */
	bool failed;   /* out of memory: checks go on without memory */
	/* Reader union branches looked at, and tried, for a writer's type
	 * none of them is named as (see could_read). */
	size_t scans, tries;
};

/* Past these a check answers incompatible rather than hold the loop: a
 * union of n branches against another of n, none matching by name, costs
 * n^2 (3,000 each took 2.95 s and 283 MB). */
#define UNION_SCANS (1u << 24)
#define UNION_TRIES (1u << 17)

struct checker {
	char *msg;
	size_t msglen;
	char path[256];
	struct memo *memo;
};

static size_t memo_hash(const struct node *r, const struct node *w)
{
	uint64_t h = (uint64_t)(uintptr_t)r * 0x9E3779B97F4A7C15ull;
	h ^= (uint64_t)(uintptr_t)w + 0x632BE59BD9B4E019ull + (h << 6) +
	     (h >> 2);
	h ^= h >> 29;
	return (size_t)h;
}

/* The slot of the pair, added (M_NONE) when absent; NULL without memory. */
static struct memo_slot *memo_slot(struct memo *m, const struct node *r,
				   const struct node *w)
{
	if (m->failed)
		return NULL;
	if (2 * (m->n + 1) > m->cap) {
		size_t cap = m->cap ? 2 * m->cap : 64;
		struct memo_slot *v = calloc(cap, sizeof(*v));
		if (!v) {
			m->failed = true;
			return NULL;
		}
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->v[i].r)
				continue;
			size_t j = memo_hash(m->v[i].r, m->v[i].w) & (cap - 1);
			while (v[j].r)
				j = (j + 1) & (cap - 1);
			v[j] = m->v[i];
		}
		free(m->v);
		m->v = v;
		m->cap = cap;
	}
	size_t j = memo_hash(r, w) & (m->cap - 1);
	while (m->v[j].r && (m->v[j].r != r || m->v[j].w != w))
		j = (j + 1) & (m->cap - 1);
	if (!m->v[j].r) {
		m->v[j] = (struct memo_slot){r, w, M_NONE};
		m->n++;
	}
	return &m->v[j];
}

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

/*
 * Whether reader branch r may read w at all, as decide() would find: a
 * named type only one of its own kind and name (or alias), an unnamed type
 * only an unnamed one.
 */
static bool could_read(const struct node *r, const struct node *w)
{
	if (!w->fullname)
		return !r->fullname;
	return r->type == w->type && names_match(r, w);
}

static const struct field *writer_field(const struct node *w,
					const struct field *rf)
{
	long long i = set_find(w->index, rf->name);
	for (size_t a = 0; i < 0 && a < rf->naliases; a++)
		i = set_find(w->index, rf->aliases[a]);
	return i >= 0 ? &w->fields[i] : NULL;
}

static bool can_read(struct checker *c, const struct node *r,
		     const struct node *w);

static bool check_pair(struct checker *c, const struct node *r,
		       const struct node *w)
{
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
				ok = rf->def ||
				     incompatible(
					     c,
					     "READER_FIELD_MISSING_DEFAULT_"
					     "VALUE",
					     "field '%s' of the reader has no "
					     "default value and is missing in "
					     "the writer",
					     rf->name);
			else
				ok = can_read(c, rf->type, wf->type);
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
			if (set_find(r->index, w->symbols[i]) < 0) {
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
		bool ok = can_read(c, r->items, w->items);
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

/* can_read without the memory. */
static bool decide(struct checker *c, const struct node *r,
		   const struct node *w)
{
	if (w->type == T_UNION) {
		/* Every branch the writer may have written must be readable. */
		for (size_t i = 0; i < w->nbranches; i++) {
			char seg[24];
			snprintf(seg, sizeof(seg), "%zu", i);
			size_t old = path_push(c, seg);
			bool ok = can_read(c, r, w->branches[i]);
			c->path[old] = '\0';
			if (!ok)
				return false;
		}
		return true;
	}
	if (r->type == T_UNION) {
		/* The branch of the writer's own type or name first: the
		 * answer is the same, found without trying every branch. */
		struct checker quiet = {.memo = c->memo};
		struct memo *m = c->memo;
		char key[16];
		long long same = set_find(r->index, branch_key(w, key));
		if (same >= 0 && can_read(&quiet, r->branches[same], w))
			return true;
		for (size_t i = 0; i < r->nbranches; i++) {
			if ((long long)i == same)
				continue;
			if (++m->scans > UNION_SCANS || m->tries >= UNION_TRIES)
				return incompatible(
					c, "MISSING_UNION_BRANCH",
					"too many union branches to compare "
					"(over %u)",
					UNION_TRIES);
			if (!could_read(r->branches[i], w))
				continue;
			m->tries++;
			if (can_read(&quiet, r->branches[i], w))
				return true;
		}
		const char *wn =
			w->fullname ? w->fullname : type_names[w->type];
		return incompatible(c, "MISSING_UNION_BRANCH",
				    "the reader's union has no branch that "
				    "reads %s",
				    wn);
	}
	if (r->type == w->type)
		return check_pair(c, r, w);
	if (promotes(r->type, w->type))
		return true;
	return incompatible(c, "TYPE_MISMATCH",
			    "the reader's %s cannot read the writer's %s",
			    type_names[r->type], type_names[w->type]);
}

static bool can_read(struct checker *c, const struct node *r,
		     const struct node *w)
{
	struct memo_slot *m = memo_slot(c->memo, r, w);
	if (!m)
		/* Without memory for the memo no recursion can be told:
		 * refuse rather than loop. */
		return incompatible(c, "OUT_OF_MEMORY", "out of memory");
	switch (m->st) {
	case M_BUSY:
	case M_OK:
		return true;
	case M_FAIL:
		/* Decided; decided again only to say why (the pairs below
		 * are remembered, so this walks one path). */
		if (!c->msg || !c->msglen)
			return false;
		break;
	case M_NONE:
		break;
	}
	enum memo_state before = m->st;
	m->st = M_BUSY;
	bool ok = decide(c, r, w);
	/* The table may have grown meanwhile: find the slot again. */
	m = memo_slot(c->memo, r, w);
	if (m)
		m->st = before == M_FAIL || !ok ? M_FAIL : M_OK;
	if (before == M_FAIL && ok)
		return incompatible(c, "INCOMPATIBLE",
				    "the writer's data cannot be read");
	return ok;
}

bool ac_can_read(const struct ac_schema *reader, const struct ac_schema *writer,
		 char *msg, size_t msglen)
{
	struct memo memo = {0};
	struct checker c = {.msg = msg, .msglen = msglen, .memo = &memo};
	if (msg && msglen)
		msg[0] = '\0';
	bool ok = can_read(&c, reader->root, writer->root);
	free(memo.v);
	return ok;
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
