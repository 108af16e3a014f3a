/*
 * avro_compat: Avro schemas as the Schema Registry needs them: parsed and
 * validated (avro-c, then a tree of our own), written in Parsing Canonical
 * Form, and checked for compatibility with Avro's schema resolution rules
 * (the reader/writer rules of the Avro specification, as Avro Java's
 * SchemaCompatibility applies them, which is what Confluent enforces).
 *
 * Pure: no I/O, no global state; every call may be made from any thread on
 * distinct schemas.
 */
#ifndef SAMSA_AVRO_COMPAT_H
#define SAMSA_AVRO_COMPAT_H

#include <stdbool.h>
#include <stddef.h>

struct ac_schema;

/* Confluent's compatibility levels. */
enum ac_level {
	AC_NONE,
	AC_BACKWARD,
	AC_BACKWARD_TRANSITIVE,
	AC_FORWARD,
	AC_FORWARD_TRANSITIVE,
	AC_FULL,
	AC_FULL_TRANSITIVE,
};

/*
 * Parses the JSON text of an Avro schema (len bytes, no NUL needed).
 * With validate_defaults every field's default must also suit its type, as
 * Confluent checks a schema it registers (AvroSchema with
 * validateDefaults, new schemas only); a schema looked up or stored is
 * parsed without, as an older samsa or Avro may have accepted it.
 * Returns the schema (caller frees with ac_free), or NULL with a one-line
 * reason in err when the text is not JSON or not a valid Avro schema.
 */
struct ac_schema *ac_parse(const char *text, size_t len, bool validate_defaults,
			   char *err, size_t errlen);
void ac_free(struct ac_schema *s);

/*
 * The schema as Avro Java's Schema.toString() writes it, which is what
 * Confluent's registry stores, returns and compares (AvroSchema
 * .canonicalString()): keys in Avro's order (type, name, namespace where it
 * differs from the enclosing one, doc, fields/symbols/items/values/size,
 * then the other attributes in their order, aliases), a named type written
 * whole once and by name after, {"type":"int"} as "int", numbers as Java
 * writes doubles.  Two texts that differ only in those ways are the same
 * schema.  Borrowed until ac_free.
 */
const char *ac_compact(const struct ac_schema *s);

/*
 * The schema as Confluent's registry normalizes it (register and lookup
 * with normalize=true: AvroSchema.normalize()), parsed: attributes sorted
 * by key after a logical type's own, aliases sorted, an empty doc dropped,
 * defaults as Avro Java converts them for their types.  Its ac_compact is
 * what Confluent stores.  Caller frees; NULL with err when memory runs out
 * or the normalized text is refused.
 */
struct ac_schema *ac_normalize(const struct ac_schema *s, char *err,
			       size_t errlen);

/*
 * The schema in Avro's Parsing Canonical Form (full names, only the
 * attributes that matter to readers, fixed key order, no white space).
 * Caller frees; NULL when memory runs out.
 */
char *ac_canonical(const struct ac_schema *s);

/*
 * Whether data written with writer can be read with reader.  When it
 * cannot, msg gets the first reason found ("" when msg is NULL or msglen is
 * 0 is fine).  Recursive schemas are handled.
 */
bool ac_can_read(const struct ac_schema *reader, const struct ac_schema *writer,
		 char *msg, size_t msglen);

/*
 * Whether cand may follow prev[0..n) (oldest first) under level: BACKWARD
 * checks that cand reads the latest, FORWARD that the latest reads cand,
 * FULL both; the _TRANSITIVE forms check against every one of prev.  The
 * first reason is put in msg.  n == 0 is always compatible.
 */
bool ac_check(enum ac_level level, const struct ac_schema *cand,
	      const struct ac_schema *const *prev, size_t n, char *msg,
	      size_t msglen);

/* "BACKWARD" ... to the level (any case); -1 when s names none. */
int ac_level_parse(const char *s, enum ac_level *out);
const char *ac_level_name(enum ac_level level);

#endif
