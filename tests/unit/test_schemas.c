/*
 * test_schemas: what the registry's load makes of a stored row.
 */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/schemas.h"
#include "tests/support/leak_check.h"

TestSuite(schemas, .fini = leak_check);

/* A row of an older samsa (its own key order, a default Avro accepts but
 * Confluent would not register) is read in Java's form, and no parsed tree
 * is kept for it (one is 32 times its text). */
Test(schemas, avro_form_keeps_text_only)
{
	struct sr_schema sc = {
		.schema = strdup(
			"{\"namespace\":\"ex\",\"type\":\"record\",\"name\":"
			"\"U\",\"fields\":[{\"name\":\"s\",\"type\":"
			"\"string\",\"default\":null}]}"),
	};
	cr_assert_not_null(sc.schema);
	cr_assert_eq(sr_avro_form(&sc), 0);
	cr_expect_str_eq(sc.schema,
			 "{\"type\":\"record\",\"name\":\"U\",\"namespace\":"
			 "\"ex\",\"fields\":[{\"name\":\"s\",\"type\":"
			 "\"string\",\"default\":null}]}");
	cr_expect_null(sc.avro);
	free(sc.schema);

	/* one that does not parse is left as stored */
	sc.schema = strdup("{\"type\":\"nosuch\"}");
	cr_assert_not_null(sc.schema);
	cr_assert_eq(sr_avro_form(&sc), 0);
	cr_expect_str_eq(sc.schema, "{\"type\":\"nosuch\"}");
	cr_expect_null(sc.avro);
	free(sc.schema);
}
