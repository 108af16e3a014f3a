/*
 * sink_sql: the statements the JDBC sink sends (Postgres dialect).
 *
 * Identifiers come in already quoted (sk_ident) and types as Postgres
 * spells them; every builder returns a malloc'd string (caller frees), or
 * NULL when memory runs out.  Placeholders are numbered row by row, column
 * by column, from $1, each cast to its column's type (types[i] NULL: no
 * cast).
 */
#ifndef SAMSA_SINK_SQL_H
#define SAMSA_SINK_SQL_H

#include <stdbool.h>
#include <stddef.h>

enum sk_mode { SKM_INSERT, SKM_UPSERT, SKM_UPDATE };

/* CREATE TABLE IF NOT EXISTS table (col type [DEFAULT 'text'] NULL|NOT
 * NULL, ..., PRIMARY KEY(key...)); no key clause when nkey is 0, no
 * DEFAULT when defaults (or its element) is NULL. */
char *sk_sql_create(const char *table, int ncols, const char *const *cols,
		    const char *const *types, const char *const *defaults,
		    const bool *notnull, int nkey, const char *const *key);

/* ALTER TABLE table ADD COLUMN IF NOT EXISTS col type [DEFAULT 'def']
 * NULL */
char *sk_sql_add_column(const char *table, const char *col, const char *type,
			const char *def);

/*
 * The rows of the three statements below: nrows rows of $n placeholders
 * (VALUES), or with nrows SK_SQL_ARRAYS one array parameter per column,
 * $1::t1[] ... as unnest() takes them (sk_sql_array), far less for
 * Postgres to parse; every type must then be known and none an array type.
 */
#define SK_SQL_ARRAYS 0

/*
 * INSERT of the rows of cols (the first nkey are the key); with
 * SKM_UPSERT and a key, ON CONFLICT (key) DO UPDATE SET the others (DO
 * NOTHING when there are none).
 */
char *sk_sql_insert(const char *table, enum sk_mode mode, int nkey, int ncols,
		    const char *const *cols, const char *const *types,
		    int nrows);

/* UPDATE table SET the non-key cols FROM the rows, matching the key. */
char *sk_sql_update(const char *table, int nkey, int ncols,
		    const char *const *cols, const char *const *types,
		    int nrows);

/* DELETE FROM table WHERE (key...) IN (the rows): nkey params a row. */
char *sk_sql_delete(const char *table, int nkey, const char *const *cols,
		    const char *const *types, int nrows);

/*
 * A Postgres array literal of texts[0], texts[stride], ... (n of them;
 * NULL elements as NULL): the parameter for one unnest() column.
 */
char *sk_sql_array(const char *const *texts, size_t n, size_t stride);

#endif
